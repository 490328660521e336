/*
 * The application of socket.io-protocol's reference server, for the protocol's test suite:
 * every connection gets the event "auth" with its auth payload ({} without one), "message" is
 * echoed as "message-back" and "message-with-ack" is answered with its arguments, binary
 * attachments included.
 */
#include <string.h>

#include "sio_plugin.h"

static const sio_host_api *api;

static int is(sio_buf b, const char *s) { return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0; }

static sio_status on_connect(const sio_event *e, void *user_data) {
    (void)user_data;
    char json[4096];
    size_t n = 0;
    const char *auth = e->auth_json.len ? e->auth_json.ptr : "{}";
    size_t len = e->auth_json.len ? e->auth_json.len : 2;
    if (len + 2 > sizeof json) return SIO_FAIL;
    json[n++] = '[';
    memcpy(json + n, auth, len);
    n += len;
    json[n++] = ']';
    return api->emit(e->socket, (sio_buf){ "auth", 4 }, (sio_buf){ json, n }, NULL, 0);
}

static sio_status on_message(const sio_event *e, void *user_data) {
    (void)user_data;
    const sio_message *m = e->message;
    if (is(m->event, "message")) {
        return api->emit(e->socket, (sio_buf){ "message-back", 12 }, m->args_json, m->attachments, m->attachment_count);
    }
    if (is(m->event, "message-with-ack") && m->ack_id >= 0) {
        return api->ack(e->socket, m->ack_id, m->args_json, m->attachments, m->attachment_count);
    }
    return SIO_OK;
}

static sio_status init(const sio_host_api *host, sio_plugin *plugin, sio_buf previous_state) {
    (void)previous_state;
    api = host;
    api->register_handler(plugin, SIO_EVENT_CONNECT, NULL, on_connect, NULL);
    return api->register_handler(plugin, SIO_EVENT_MESSAGE, NULL, on_message, NULL);
}

static const sio_plugin_info info = {
    .struct_size = sizeof(sio_plugin_info), .abi_major = SIO_ABI_MAJOR, .abi_minor = SIO_ABI_MINOR,
    .name = "conformance", .version = "1.0.0", .init = init,
};

SIO_EXPORT const sio_plugin_info *sio_plugin_entry(void) { return &info; }
