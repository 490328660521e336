/*
 * The cluster tests' plugin: each event calls one host function of the sending
 * and presence API, so a test drives cross-node behaviour from python-socketio clients.
 *   "who"   [channel]            -> ack [presence list JSON text, count]
 *   "set"   [value]              -> presence_set; ack [status]
 *   "count" [channel]            -> oob_presence_count; ack [status, count]
 *   "join"  [sid, channel]       -> oob_socket_join; ack [status]   ("leave" likewise)
 *   "kick"  [sid]                -> oob_socket_disconnect; ack [status]
 *   "to"    [sid, text]          -> oob_send of the text; ack [status]
 *   "room"  [channel, text]      -> broadcast_channel of the text (sender excluded); ack [status]
 *   "all"   [text]               -> broadcast of the text; ack [status]
 *   "bin"   [channel, size]      -> emit_to channel: event "bin" with one attachment of `size`
 *                                   bytes (i % 251), sender excluded; ack [status]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sio_plugin.h"

static const sio_host_api *api;
static sio_plugin *self;

static sio_buf cstr(const char *s) { return (sio_buf){ s, strlen(s) }; }
static int eq(sio_buf b, const char *s) { return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0; }

static sio_buf arg(const sio_event *e, const char *path) {
    sio_buf out = { 0, 0 };
    api->json_get_string(e->socket, e->message->args_json, path, &out);
    return out;
}

static sio_status ack_status(const sio_event *e, sio_status status) {
    if (e->message->ack_id < 0) return SIO_OK;
    char json[32];
    snprintf(json, sizeof json, "[%d]", (int)status);
    return api->ack(e->socket, e->message->ack_id, cstr(json), NULL, 0);
}

static sio_status on_message(const sio_event *e, void *ud) {
    (void)ud;
    const sio_buf name = e->message->event;
    if (eq(name, "who")) {
        sio_buf list, quoted;
        size_t count = 0;
        sio_status s = api->presence_list(e->socket, arg(e, "0"), &list, &count);
        if (s != SIO_OK) return ack_status(e, s);
        api->json_quote(e->socket, list, &quoted);
        char *json = malloc(quoted.len + 32);
        int n = snprintf(json, quoted.len + 32, "[%.*s,%zu]", (int)quoted.len, quoted.ptr, count);
        s = api->ack(e->socket, e->message->ack_id, (sio_buf){ json, (size_t)n }, NULL, 0);
        free(json);
        return s;
    }
    if (eq(name, "set")) return ack_status(e, api->presence_set(e->socket, arg(e, "0")));
    if (eq(name, "count")) {
        size_t count = 0;
        sio_status s = api->oob_presence_count(self, cstr(""), arg(e, "0"), &count);
        char json[48];
        snprintf(json, sizeof json, "[%d,%zu]", (int)s, count);
        return api->ack(e->socket, e->message->ack_id, cstr(json), NULL, 0);
    }
    if (eq(name, "join")) return ack_status(e, api->oob_socket_join(self, cstr(""), arg(e, "0"), arg(e, "1")));
    if (eq(name, "leave")) return ack_status(e, api->oob_socket_leave(self, cstr(""), arg(e, "0"), arg(e, "1")));
    if (eq(name, "kick")) return ack_status(e, api->oob_socket_disconnect(self, cstr(""), arg(e, "0")));
    if (eq(name, "to") || eq(name, "room") || eq(name, "all")) {
        sio_buf text = arg(e, eq(name, "all") ? "0" : "1"), quoted;
        api->json_quote(e->socket, text, &quoted);
        sio_status s;
        if (eq(name, "to")) s = api->oob_send(self, cstr(""), arg(e, "0"), quoted);
        else if (eq(name, "room")) s = api->broadcast_channel(e->socket, quoted, arg(e, "0"));
        else s = api->broadcast(e->socket, quoted);
        return ack_status(e, s);
    }
    if (eq(name, "bin")) {
        sio_buf size_text = arg(e, "1");
        char tmp[16];
        snprintf(tmp, sizeof tmp, "%.*s", (int)size_text.len, size_text.ptr);
        size_t size = (size_t)atol(tmp);
        char *bytes = malloc(size ? size : 1);
        for (size_t i = 0; i < size; i++) bytes[i] = (char)(i % 251);
        sio_buf attachment = { bytes, size };
        sio_status s = api->emit_to(e->socket, arg(e, "0"), cstr("bin"),
                                    cstr("[{\"_placeholder\":true,\"num\":0}]"), &attachment, 1, 0);
        free(bytes);
        return ack_status(e, s);
    }
    return SIO_OK;
}

static sio_status init(const sio_host_api *host, sio_plugin *plugin, sio_buf previous_state) {
    (void)previous_state;
    api = host;
    self = plugin;
    if (host->struct_size <= offsetof(sio_host_api, oob_socket_disconnect)) return SIO_FAIL;
    return api->register_handler(plugin, SIO_EVENT_MESSAGE, NULL, on_message, NULL);
}

static const sio_plugin_info info = {
    .struct_size = sizeof(sio_plugin_info), .abi_major = SIO_ABI_MAJOR, .abi_minor = SIO_ABI_MINOR,
    .name = "cluster-probe", .version = "1.0.0", .init = init,
};

SIO_EXPORT const sio_plugin_info *sio_plugin_entry(void) { return &info; }
