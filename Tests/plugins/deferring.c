/* A test plugin for ABI 1.3's defer/complete: each event names what to do, and completions
 * come from threads of the plugin's own, after a delay the client chooses. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sio_plugin.h"

static const sio_host_api *api;
static sio_plugin *self;

static sio_buf cstr(const char *s) { return (sio_buf){ s, strlen(s) }; }
static int eq(sio_buf b, const char *s) { return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0; }
static int starts(sio_buf b, const char *s) { return b.len >= strlen(s) && memcmp(b.ptr, s, strlen(s)) == 0; }

/* A number given as a string at `path`, or a bare number as the first element of an array. */
static long number(const sio_event *e, sio_buf json, const char *path) {
    sio_buf out;
    if (api->json_get_string(e->socket, json, path, &out) != SIO_OK) {
        if (strcmp(path, "0") != 0 || json.len < 2 || json.ptr[0] != '[') return 0;
        return strtol(json.ptr + 1, NULL, 10);
    }
    char text[32] = { 0 };
    memcpy(text, out.ptr, out.len < sizeof text - 1 ? out.len : sizeof text - 1);
    return atol(text);
}

static void logf_(const char *format, long a, long b) {
    char line[160];
    snprintf(line, sizeof line, format, a, b);
    api->log(self, SIO_LOG_INFO, cstr(line));
}

/* One completion to make later. */
typedef struct job {
    sio_ticket ticket;
    long delay_ms;
    sio_status decision;
    char reason[64];
    char ack[128];
} job;

static void *completer(void *arg) {
    job *j = arg;
    usleep((useconds_t)j->delay_ms * 1000);
    sio_status status = api->complete(self, j->ticket, j->decision, cstr(j->reason), cstr(j->ack));
    logf_("deferring: completed ticket %ld with status %ld", (long)(j->ticket & 0xffff), status);
    free(j);
    return NULL;
}

static sio_status later(const sio_event *e, long delay_ms, sio_status decision, const char *reason, const char *ack) {
    job *j = calloc(1, sizeof *j);
    if (api->defer(e->socket, &j->ticket) != SIO_OK) { free(j); return SIO_FAIL; }
    j->delay_ms = delay_ms;
    j->decision = decision;
    snprintf(j->reason, sizeof j->reason, "%s", reason);
    snprintf(j->ack, sizeof j->ack, "%s", ack);
    pthread_t thread;
    pthread_create(&thread, NULL, completer, j);
    pthread_detach(thread);
    return SIO_PENDING;
}

static sio_status on_connect(const sio_event *e, void *ud) {
    (void)ud;
    sio_buf mode = { NULL, 0 };
    if (e->auth_json.len) api->json_get_string(e->socket, e->auth_json, "mode", &mode);
    long delay = e->auth_json.len ? number(e, e->auth_json, "delay") : 0;
    if (eq(mode, "accept")) return later(e, delay, SIO_OK, "", "");
    if (eq(mode, "refuse")) return later(e, delay, SIO_REFUSE, "bad token", "");
    if (eq(mode, "fail")) return later(e, delay, SIO_FAIL, "token service down", "");
    if (eq(mode, "never")) { sio_ticket t; api->defer(e->socket, &t); return SIO_PENDING; }
    if (eq(mode, "pending-without-defer")) return SIO_PENDING;
    return SIO_OK;
}

static sio_status on_message(const sio_event *e, void *ud) {
    (void)ud;
    sio_buf ev = e->message->event, args = e->message->args_json;
    char ack[128];
    if (eq(ev, "later")) {
        /* ["later", delay_ms, tag]: answered [tag, "done"] after the delay. */
        sio_buf tag = { NULL, 0 };
        api->json_get_string(e->socket, args, "1", &tag);
        snprintf(ack, sizeof ack, "[\"%.*s\",\"done\"]", (int)tag.len, tag.ptr);
        return later(e, number(e, args, "0"), SIO_OK, "", ack);
    }
    if (eq(ev, "fail_later")) return later(e, number(e, args, "0"), SIO_FAIL, "database down", "");
    if (eq(ev, "refuse_later")) return later(e, number(e, args, "0"), SIO_REFUSE, "", "");
    if (eq(ev, "bad_ack_later")) return later(e, 0, SIO_OK, "", "{\"not\":\"an array\"}");
    if (eq(ev, "never")) { sio_ticket t; api->defer(e->socket, &t); return SIO_PENDING; }
    if (eq(ev, "note")) {
        api->emit(e->socket, cstr("noted"), args, NULL, 0);
        return SIO_OK;
    }
    if (eq(ev, "misuse")) {
        /* Defer twice, return SIO_OK (withdrawing the ticket), then try to complete it, an
         * unknown ticket, and bad arguments; the ack carries each status. */
        sio_ticket ticket = 0, second = 0;
        sio_status first = api->defer(e->socket, &ticket);
        sio_status again = api->defer(e->socket, &second);
        sio_status invalid = api->complete(self, ticket, 42, cstr(""), cstr(""));
        sio_status bad_json = api->complete(self, ticket, SIO_OK, cstr(""), cstr("[1,"));
        sio_status unknown = api->complete(self, ticket + 1000000, SIO_OK, cstr(""), cstr(""));
        sio_status stale_plugin = api->complete(NULL, ticket, SIO_OK, cstr(""), cstr(""));
        snprintf(ack, sizeof ack, "[%d,%d,%d,%d,%d,%d,%d]", first, again, invalid, bad_json, unknown, stale_plugin,
                 ticket != 0);
        api->ack(e->socket, e->message->ack_id, cstr(ack), NULL, 0);
        /* Remembered for "complete_withdrawn": the ticket dies when this handler returns SIO_OK. */
        static char keep[32];
        snprintf(keep, sizeof keep, "%llu", (unsigned long long)ticket);
        api->context_set(e->socket, cstr("withdrawn"), cstr(keep));
        return SIO_OK;
    }
    if (eq(ev, "complete_withdrawn")) {
        sio_buf kept;
        if (api->context_get(e->socket, cstr("withdrawn"), &kept) != SIO_OK) return SIO_FAIL;
        char text[32] = { 0 };
        memcpy(text, kept.ptr, kept.len < 31 ? kept.len : 31);
        sio_status status = api->complete(self, strtoull(text, NULL, 10), SIO_OK, cstr(""), cstr(""));
        snprintf(ack, sizeof ack, "[%d]", status);
        api->ack(e->socket, e->message->ack_id, cstr(ack), NULL, 0);
        return SIO_OK;
    }
    if (eq(ev, "pending-without-defer")) return SIO_PENDING;
    return SIO_OK;
}

static sio_status on_subscribe(const sio_event *e, void *ud) {
    (void)ud;
    if (eq(e->channel, "vip-ok")) return later(e, 100, SIO_OK, "", "");
    if (starts(e->channel, "vip-")) return later(e, 100, SIO_REFUSE, "members only", "");
    return SIO_OK;
}

/* Not deferrable: the status goes to the log. */
static sio_status on_unsubscribe(const sio_event *e, void *ud) {
    (void)ud;
    sio_ticket ticket = 0;
    logf_("deferring: defer in on_unsubscribe returned %ld (ticket %ld)", api->defer(e->socket, &ticket), (long)ticket);
    return SIO_OK;
}

static sio_status on_error(const sio_event *e, void *ud) {
    (void)ud;
    char args[300];
    sio_buf quoted;
    if (api->json_quote(e->socket, e->error, &quoted) != SIO_OK) return SIO_OK;
    snprintf(args, sizeof args, "[%.*s]", (int)quoted.len, quoted.ptr);
    api->emit(e->socket, cstr("error_seen"), cstr(args), NULL, 0);
    return SIO_OK;
}

static sio_status on_finish(const sio_event *e, void *ud) {
    (void)ud;
    api->log(self, SIO_LOG_INFO, (sio_buf){ "deferring: finish", 17 });
    (void)e;
    return SIO_OK;
}

static sio_status init(const sio_host_api *host, sio_plugin *plugin, sio_buf previous_state) {
    (void)previous_state;
    api = host;
    self = plugin;
    if (host->struct_size <= offsetof(sio_host_api, defer)) return SIO_FAIL;
    host->register_handler(plugin, SIO_EVENT_CONNECT, NULL, on_connect, NULL);
    host->register_handler(plugin, SIO_EVENT_MESSAGE, NULL, on_message, NULL);
    host->register_handler(plugin, SIO_EVENT_SUBSCRIBE, NULL, on_subscribe, NULL);
    host->register_handler(plugin, SIO_EVENT_UNSUBSCRIBE, NULL, on_unsubscribe, NULL);
    host->register_handler(plugin, SIO_EVENT_ERROR, NULL, on_error, NULL);
    host->register_handler(plugin, SIO_EVENT_FINISH, NULL, on_finish, NULL);
    return SIO_OK;
}

static const sio_plugin_info info = {
    .struct_size = sizeof(sio_plugin_info),
    .abi_major = SIO_ABI_MAJOR,
    .abi_minor = SIO_ABI_MINOR,
    .name = "deferring",
    .version = "1.0.0",
    .init = init,
};

SIO_EXPORT const sio_plugin_info *sio_plugin_entry(void) { return &info; }
