/*
 * A test plugin: records every event it sees as one line in $SIO_TRACE_FILE (prefixed with
 * $SIO_PROBE_NAME, default "probe") and carries out commands sent as events, so that tests can
 * drive every host function from a real client.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sio_plugin.h"

static const sio_host_api *api;
static sio_plugin *self;
static const char *probe_name = "probe";
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;

static void trace(const char *fmt_kind, const sio_event *e, sio_buf extra) {
    const char *path = getenv("SIO_TRACE_FILE");
    if (!path) return;
    pthread_mutex_lock(&trace_lock);
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "%s %s %.*s %.*s %.*s\n", probe_name, fmt_kind, (int)e->socket_id.len, e->socket_id.ptr,
                (int)e->nsp.len, e->nsp.ptr, (int)extra.len, extra.ptr ? extra.ptr : "");
        fclose(f);
    }
    pthread_mutex_unlock(&trace_lock);
}

static sio_buf cstr(const char *s) { return (sio_buf){ s, strlen(s) }; }

static int eq(sio_buf b, const char *s) { return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0; }

/* The string at `path` in the event's arguments, quoted as JSON, or "null". */
static sio_buf arg_json(const sio_event *e, const char *path) {
    sio_buf s, q;
    if (api->json_get_string(e->socket, e->message->args_json, path, &s) != SIO_OK) return cstr("null");
    api->json_quote(e->socket, s, &q);
    return q;
}

static sio_buf arg_string(const sio_event *e, const char *path) {
    sio_buf s = { NULL, 0 };
    api->json_get_string(e->socket, e->message->args_json, path, &s);
    return s;
}

static void ack_status(const sio_event *e, sio_status status) {
    char json[32];
    snprintf(json, sizeof json, "[%d]", (int)status);
    if (e->message->ack_id >= 0) api->ack(e->socket, e->message->ack_id, cstr(json), NULL, 0);
}

/* ABI 1.2 emit_with_ack: the reply is traced as "probe ack SOCKET / STATUS ARGS"; an answer is
 * sent back to the client as a "message" (the answer's arguments), a timeout as "timeout". */
static void on_ack_reply(const sio_ack_reply *reply, void *user_data) {
    const char *path = getenv("SIO_TRACE_FILE");
    if (path) {
        pthread_mutex_lock(&trace_lock);
        FILE *f = fopen(path, "a");
        if (f) {
            fprintf(f, "%s ack %.*s / %d%s%.*s\n", probe_name, (int)reply->socket_id.len, reply->socket_id.ptr, (int)reply->status,
                    (const char *)user_data, (int)reply->args_json.len, reply->args_json.ptr ? reply->args_json.ptr : "");
            fclose(f);
        }
        pthread_mutex_unlock(&trace_lock);
    }
    if (reply->status == SIO_OK) api->send(reply->socket, reply->args_json);
    else if (reply->status == SIO_ERR_TIMEOUT) api->send(reply->socket, cstr("\"timeout\""));
}

/* A background thread that broadcasts out of band until told to stop. */
static volatile int thread_running;
static pthread_t thread;
static long thread_sent, thread_nobody;
static char thread_channel[64];

static void *broadcaster(void *unused) {
    (void)unused;
    while (thread_running) {
        sio_status s = api->oob_broadcast_channel(self, cstr("/"), cstr("\"tick\""), cstr(thread_channel));
        if (s == SIO_OK) thread_sent++; else if (s == SIO_ERR_NO_SOCKET) thread_nobody++;
        usleep(1000);
    }
    return NULL;
}

/* Handles used where they are no longer valid: after the event, from another thread, forged. */
static sio_socket *kept_handle;
static sio_status late_status = -1;

static void *send_later(void *unused) {
    (void)unused;
    usleep(300 * 1000);
    late_status = api->send(kept_handle, cstr("\"late\""));
    return NULL;
}

static void *send_now(void *handle) {
    static sio_status status;
    status = api->send((sio_socket *)handle, cstr("\"from another thread\""));
    return &status;
}

static sio_status on_connect(const sio_event *e, void *ud) {
    (void)ud;
    trace("connect", e, e->auth_json);
    sio_buf refuse;
    if (e->auth_json.len && api->json_get_string(e->socket, e->auth_json, "refuse", &refuse) == SIO_OK) {
        api->set_reason(e->socket, refuse);
        return SIO_REFUSE;
    }
    sio_buf name;
    if (e->auth_json.len && api->json_get_string(e->socket, e->auth_json, "name", &name) == SIO_OK) {
        api->context_set(e->socket, cstr("name"), name);
    }
    return SIO_OK;
}

static sio_status on_message(const sio_event *e, void *ud) {
    (void)ud;
    const sio_message *m = e->message;
    trace("message", e, m->event);
    sio_buf ev = m->event;
    if (eq(ev, "send")) { ack_status(e, api->send(e->socket, arg_json(e, "0"))); }
    else if (eq(ev, "broadcast")) { ack_status(e, api->broadcast(e->socket, arg_json(e, "0"))); }
    else if (eq(ev, "broadcast_channel")) { ack_status(e, api->broadcast_channel(e->socket, arg_json(e, "0"), arg_string(e, "1"))); }
    else if (eq(ev, "send_and_broadcast")) { ack_status(e, api->send_and_broadcast(e->socket, arg_json(e, "0"))); }
    else if (eq(ev, "send_and_broadcast_channel")) { ack_status(e, api->send_and_broadcast_channel(e->socket, arg_json(e, "0"), arg_string(e, "1"))); }
    else if (eq(ev, "emit_back")) { api->emit(e->socket, cstr("emitted"), m->args_json, m->attachments, m->attachment_count); }
    else if (eq(ev, "ack_back")) { api->ack(e->socket, m->ack_id, m->args_json, m->attachments, m->attachment_count); }
    else if (eq(ev, "bad_json")) { ack_status(e, api->send(e->socket, cstr("{not json"))); }
    else if (eq(ev, "ctx_set")) { ack_status(e, api->context_set(e->socket, arg_string(e, "0"), arg_string(e, "1"))); }
    else if (eq(ev, "ctx_get")) {
        sio_buf v, q;
        if (api->context_get(e->socket, arg_string(e, "0"), &v) == SIO_OK) {
            api->json_quote(e->socket, v, &q);
            char json[512];
            snprintf(json, sizeof json, "[%.*s]", (int)q.len, q.ptr);
            api->ack(e->socket, m->ack_id, cstr(json), NULL, 0);
        } else {
            api->ack(e->socket, m->ack_id, cstr("[null]"), NULL, 0);
        }
    }
    else if (eq(ev, "fail")) { api->set_reason(e->socket, arg_string(e, "0")); return SIO_FAIL; }
    else if (eq(ev, "server_subscribe")) { ack_status(e, api->subscribe(e->socket, arg_string(e, "0"))); }
    else if (eq(ev, "server_unsubscribe")) { ack_status(e, api->unsubscribe(e->socket, arg_string(e, "0"))); }
    else if (eq(ev, "disconnect_me")) { api->disconnect(e->socket); }
    else if (eq(ev, "oob_broadcast")) { ack_status(e, api->oob_broadcast(self, cstr("/"), arg_json(e, "0"))); }
    else if (eq(ev, "oob_broadcast_channel")) { ack_status(e, api->oob_broadcast_channel(self, cstr("/"), arg_json(e, "0"), arg_string(e, "1"))); }
    /* ABI 1.2: named events to many. The recipients get this message's own arguments (with its
     * binary attachments): [channel, event, mode, ...]. */
    else if (eq(ev, "emit_to")) {
        uint32_t flags = eq(arg_string(e, "2"), "self") ? SIO_EMIT_INCLUDE_SELF : eq(arg_string(e, "2"), "bad") ? 2u : 0u;
        ack_status(e, api->emit_to(e->socket, arg_string(e, "0"), arg_string(e, "1"), m->args_json, m->attachments, m->attachment_count, flags));
    }
    else if (eq(ev, "emit_to_bad_json")) { ack_status(e, api->emit_to(e->socket, cstr(""), cstr("x"), cstr("{\"not\": \"an array\"}"), NULL, 0, 0)); }
    else if (eq(ev, "ask")) {
        sio_buf timeout = arg_string(e, "1");
        char digits[16] = {0};
        memcpy(digits, timeout.ptr ? timeout.ptr : "", timeout.len < 15 ? timeout.len : 15);
        ack_status(e, api->emit_with_ack(e->socket, arg_string(e, "0"), cstr("[\"what is it?\"]"), NULL, 0,
                                         (uint32_t)atoi(digits), on_ack_reply, (void *)" "));
    }
    else if (eq(ev, "ask_bad")) { ack_status(e, api->emit_with_ack(e->socket, cstr("q"), cstr("[]"), NULL, 0, 0, NULL, NULL)); }
    else if (eq(ev, "oob_emit")) { ack_status(e, api->oob_emit(self, cstr("/"), arg_string(e, "0"), arg_string(e, "1"), m->args_json, m->attachments, m->attachment_count)); }
    else if (eq(ev, "oob_emit_to_socket")) { ack_status(e, api->oob_emit_to_socket(self, cstr("/"), arg_string(e, "0"), arg_string(e, "1"), m->args_json, m->attachments, m->attachment_count)); }
    else if (eq(ev, "oob_send")) { ack_status(e, api->oob_send(self, cstr("/"), arg_string(e, "0"), arg_json(e, "1"))); }
    else if (eq(ev, "request")) {
        const sio_request *r = e->request;
        sio_buf mq, pq, qq, aq, hq = cstr("null");
        api->json_quote(e->socket, r->method, &mq);
        api->json_quote(e->socket, r->path, &pq);
        api->json_quote(e->socket, r->query, &qq);
        api->json_quote(e->socket, r->remote_addr, &aq);
        for (size_t i = 0; i < r->header_count; i++) {
            if (r->headers[i].name.len == 6 && strncasecmp(r->headers[i].name.ptr, "x-test", 6) == 0) {
                api->json_quote(e->socket, r->headers[i].value, &hq);
            }
        }
        char json[1024];
        snprintf(json, sizeof json, "[{\"method\":%.*s,\"path\":%.*s,\"query\":%.*s,\"remote\":%.*s,\"x_test\":%.*s}]",
                 (int)mq.len, mq.ptr, (int)pq.len, pq.ptr, (int)qq.len, qq.ptr, (int)aq.len, aq.ptr, (int)hq.len, hq.ptr);
        api->ack(e->socket, m->ack_id, cstr(json), NULL, 0);
    }
    else if (eq(ev, "start_thread")) {
        sio_buf ch = arg_string(e, "0");
        snprintf(thread_channel, sizeof thread_channel, "%.*s", (int)ch.len, ch.ptr);
        thread_sent = thread_nobody = 0;
        thread_running = 1;
        pthread_create(&thread, NULL, broadcaster, NULL);
        ack_status(e, SIO_OK);
    }
    else if (eq(ev, "keep_handle")) {
        /* The handle goes to a thread that uses it 300 ms after this handler returned. */
        kept_handle = e->socket;
        pthread_t later;
        pthread_create(&later, NULL, send_later, NULL);
        pthread_detach(later);
        ack_status(e, SIO_OK);
    }
    else if (eq(ev, "late_status")) { ack_status(e, late_status); }
    else if (eq(ev, "thread")) {
        char json[64];
        snprintf(json, sizeof json, "[\"%lu\"]", (unsigned long)pthread_self());
        api->ack(e->socket, m->ack_id, cstr(json), NULL, 0);
    }
    else if (eq(ev, "block")) { for (;;) sleep(1000); }  /* a handler that never returns */
    else if (eq(ev, "foreign_handle")) {
        /* The live handle, used from another thread while this handler waits for it. */
        pthread_t other;
        void *result;
        pthread_create(&other, NULL, send_now, e->socket);
        pthread_join(other, &result);
        ack_status(e, *(sio_status *)result);
    }
    else if (eq(ev, "forged_handle")) {
        sio_status statuses[4];
        uintptr_t live = (uintptr_t)e->socket;
        statuses[0] = api->send((sio_socket *)(uintptr_t)0xdeadbeef, cstr("1"));
        statuses[1] = api->send((sio_socket *)(live + 1), cstr("1"));
        statuses[2] = api->send((sio_socket *)(live ^ ((uintptr_t)1 << 44)), cstr("1"));
        statuses[3] = api->context_set((sio_socket *)(live - 1), cstr("k"), cstr("v"));
        char json[64];
        snprintf(json, sizeof json, "[[%d,%d,%d,%d]]", statuses[0], statuses[1], statuses[2], statuses[3]);
        api->ack(e->socket, m->ack_id, cstr(json), NULL, 0);
    }
    else if (eq(ev, "stop_thread")) {
        thread_running = 0;
        pthread_join(thread, NULL);
        char json[64];
        snprintf(json, sizeof json, "[%ld,%ld]", thread_sent, thread_nobody);
        api->ack(e->socket, m->ack_id, cstr(json), NULL, 0);
    }
    return SIO_OK;
}

static sio_status on_subscribe(const sio_event *e, void *ud) {
    (void)ud;
    trace("subscribe", e, e->channel);
    if (eq(e->channel, "forbidden")) {
        api->set_reason(e->socket, cstr("no entry"));
        return SIO_REFUSE;
    }
    return SIO_OK;
}

static sio_status on_unsubscribe(const sio_event *e, void *ud) { (void)ud; trace("unsubscribe", e, e->channel); return SIO_OK; }

static sio_status on_error(const sio_event *e, void *ud) {
    (void)ud;
    trace("error", e, e->error);
    /* An on_error handler that fails must not be raised again. */
    if (e->error.len >= 10 && memmem(e->error.ptr, e->error.len, "fail-error", 10)) return SIO_FAIL;
    return SIO_OK;
}

static sio_status on_disconnect(const sio_event *e, void *ud) { (void)ud; trace("disconnect", e, e->reason); return SIO_OK; }

static sio_status on_finish(const sio_event *e, void *ud) {
    (void)ud;
    sio_buf name = { NULL, 0 };
    api->context_get(e->socket, cstr("name"), &name);
    trace("finish", e, name);
    return SIO_OK;
}

/* Channel-bound handlers: they record which events reached them. */
static sio_status room_message(const sio_event *e, void *ud) { (void)ud; trace("room-message", e, e->message->event); return SIO_OK; }
static sio_status room_subscribe(const sio_event *e, void *ud) { (void)ud; trace("room-subscribe", e, e->channel); return SIO_OK; }
static sio_status room_unsubscribe(const sio_event *e, void *ud) { (void)ud; trace("room-unsubscribe", e, e->channel); return SIO_OK; }
static sio_status room_disconnect(const sio_event *e, void *ud) { (void)ud; trace("room-disconnect", e, e->reason); return SIO_OK; }
static sio_status room_finish(const sio_event *e, void *ud) { (void)ud; trace("room-finish", e, (sio_buf){ NULL, 0 }); return SIO_OK; }
static sio_status dash_message(const sio_event *e, void *ud) { (void)ud; trace("dashboard-message", e, e->message->event); return SIO_OK; }

static sio_status init(const sio_host_api *host, sio_plugin *plugin, sio_buf previous_state) {
    (void)previous_state;
    api = host;
    self = plugin;
    if (getenv("SIO_PROBE_NAME")) probe_name = getenv("SIO_PROBE_NAME");
    api->register_handler(plugin, SIO_EVENT_CONNECT, NULL, on_connect, NULL);
    api->register_handler(plugin, SIO_EVENT_MESSAGE, NULL, on_message, NULL);
    api->register_handler(plugin, SIO_EVENT_SUBSCRIBE, NULL, on_subscribe, NULL);
    api->register_handler(plugin, SIO_EVENT_UNSUBSCRIBE, NULL, on_unsubscribe, NULL);
    api->register_handler(plugin, SIO_EVENT_ERROR, NULL, on_error, NULL);
    api->register_handler(plugin, SIO_EVENT_DISCONNECT, NULL, on_disconnect, NULL);
    api->register_handler(plugin, SIO_EVENT_FINISH, NULL, on_finish, NULL);
    api->register_handler(plugin, SIO_EVENT_MESSAGE, "^room-", room_message, NULL);
    api->register_handler(plugin, SIO_EVENT_MESSAGE, "dashboard", dash_message, NULL);
    api->register_handler(plugin, SIO_EVENT_SUBSCRIBE, "room-", room_subscribe, NULL);
    api->register_handler(plugin, SIO_EVENT_UNSUBSCRIBE, "room-", room_unsubscribe, NULL);
    api->register_handler(plugin, SIO_EVENT_DISCONNECT, "room-", room_disconnect, NULL);
    api->register_handler(plugin, SIO_EVENT_FINISH, "room-", room_finish, NULL);
    /* A pattern from the environment, for the tests of hostile patterns. */
    if (getenv("SIO_PROBE_PATTERN")) {
        return api->register_handler(plugin, SIO_EVENT_SUBSCRIBE, getenv("SIO_PROBE_PATTERN"), room_subscribe, NULL);
    }
    return SIO_OK;
}

static const sio_plugin_info info = {
    .struct_size = sizeof(sio_plugin_info), .abi_major = SIO_ABI_MAJOR, .abi_minor = SIO_ABI_MINOR,
    .name = "probe", .version = "1.0.0", .init = init,
};

SIO_EXPORT const sio_plugin_info *sio_plugin_entry(void) { return &info; }
