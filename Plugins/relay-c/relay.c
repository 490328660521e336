/*
 * The benchmark relay: a client's message {"ch": CHANNEL, ...} goes to every other subscriber
 * of CHANNEL, as the reference python-socketio app does with emit(room=ch, skip_sid=sid).
 * Built with -DRELAY_NOOP it receives the messages and sends nothing (the cost of dispatch).
 *
 * Build: cc -std=c11 -shared -fPIC -O2 -Iinclude -o relay.so Plugins/relay-c/relay.c
 */
#include <string.h>

#include "sio_plugin.h"

static const sio_host_api *api;

static sio_status on_message(const sio_event *event, void *user_data) {
    (void)user_data;
#ifdef RELAY_NOOP
    (void)event;
    return SIO_OK;
#else
    const sio_message *m = event->message;
    sio_buf channel;
    if (m->args_json.len < 2 || api->json_get_string(event->socket, m->args_json, "0.ch", &channel) != SIO_OK) {
        return SIO_OK;
    }
    /* args_json is "[{...}]": relay the object itself. */
    sio_buf message = { m->args_json.ptr + 1, m->args_json.len - 2 };
    return api->broadcast_channel(event->socket, message, channel);
#endif
}

static sio_status init(const sio_host_api *host, sio_plugin *plugin, sio_buf previous_state) {
    (void)previous_state;
    api = host;
    return api->register_handler(plugin, SIO_EVENT_MESSAGE, NULL, on_message, NULL);
}

static const sio_plugin_info info = {
    .struct_size = sizeof(sio_plugin_info), .abi_major = SIO_ABI_MAJOR, .abi_minor = SIO_ABI_MINOR,
#ifdef RELAY_NOOP
    .name = "noop-c",
#else
    .name = "relay-c",
#endif
    .version = "1.0.0", .init = init,
};

SIO_EXPORT const sio_plugin_info *sio_plugin_entry(void) { return &info; }
