/*
 * The smallest useful plugin: whatever a client sends comes back to it.
 *   socket.send(x)           -> the client receives the "message" event with x
 *   socket.emit("e", a, b)   -> the client receives "e" with a, b (and an ack with a, b if asked)
 *
 * Build: cc -std=c11 -shared -fPIC -O2 -Iinclude -o echo.so Plugins/echo-c/echo.c
 */
#include <string.h>

#include "sio_plugin.h"

static const sio_host_api *api;

static int is_message(sio_buf event) {
    return event.len == 7 && memcmp(event.ptr, "message", 7) == 0;
}

static sio_status on_message(const sio_event *event, void *user_data) {
    (void)user_data;
    const sio_message *m = event->message;
    if (is_message(m->event) && m->attachment_count == 0) {
        /* args_json is "[x]": send x back. */
        sio_buf value = { m->args_json.ptr + 1, m->args_json.len - 2 };
        if (value.len > 0 && api->send(event->socket, value) != SIO_OK) {
            api->set_reason(event->socket, (sio_buf){ "cannot echo the message", 23 });
            return SIO_FAIL;
        }
    } else {
        api->emit(event->socket, m->event, m->args_json, m->attachments, m->attachment_count);
    }
    if (m->ack_id >= 0) {
        api->ack(event->socket, m->ack_id, m->args_json, m->attachments, m->attachment_count);
    }
    return SIO_OK;
}

static sio_status init(const sio_host_api *host, sio_plugin *plugin, sio_buf previous_state) {
    (void)previous_state;
    api = host;
    return api->register_handler(plugin, SIO_EVENT_MESSAGE, NULL, on_message, NULL);
}

static const sio_plugin_info info = {
    .struct_size = sizeof(sio_plugin_info), .abi_major = SIO_ABI_MAJOR, .abi_minor = SIO_ABI_MINOR,
    .name = "echo-c", .version = "1.0.0", .init = init,
};

SIO_EXPORT const sio_plugin_info *sio_plugin_entry(void) { return &info; }
