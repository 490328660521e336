/* A test plugin that fails the hard ways, for isolated mode: each event name is a way to die.
 * It counts the messages it handled and hands the count over through retire. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sio_plugin.h"

static const sio_host_api *api;
static sio_plugin *self;
static long handled;

static sio_buf cstr(const char *s) { return (sio_buf){ s, strlen(s) }; }
static int eq(sio_buf b, const char *s) { return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0; }

/* Runs out of stack: the bound is never reached, but the compiler cannot know that. */
static volatile int stack_bound = -1;

static int recurse(int depth) {
    volatile char frame[512];
    frame[0] = (char)depth;
    if (depth == stack_bound) return 0;
    return recurse(depth + 1) + frame[0];
}

static sio_status on_connect(const sio_event *e, void *ud) {
    (void)ud;
    sio_buf name;
    if (e->auth_json.len && api->json_get_string(e->socket, e->auth_json, "name", &name) == SIO_OK) {
        api->context_set(e->socket, cstr("name"), name);
    }
    return SIO_OK;
}

static sio_status on_message(const sio_event *e, void *ud) {
    (void)ud;
    sio_buf ev = e->message->event;
    handled++;
    if (eq(ev, "segv")) { volatile int *nothing = NULL; *nothing = 1; }
    if (eq(ev, "abort")) abort();
    if (eq(ev, "exit")) exit(3);
    if (eq(ev, "stack")) recurse(0);
    if (eq(ev, "hang")) for (;;) pause();
    if (eq(ev, "nap")) {
        /* ["nap", ms]: a slow but finite handler, answered [ms]. */
        long ms = e->message->args_json.len > 1 ? strtol(e->message->args_json.ptr + 1, NULL, 10) : 0;
        usleep((useconds_t)ms * 1000);
        char args[32];
        snprintf(args, sizeof args, "[%ld]", ms);
        return api->ack(e->socket, e->message->ack_id, cstr(args), NULL, 0);
    }
    if (eq(ev, "echo")) {
        char args[64];
        snprintf(args, sizeof args, "[%ld,%d]", handled, (int)getpid());
        return api->ack(e->socket, e->message->ack_id, cstr(args), NULL, 0);
    }
    if (eq(ev, "whoami")) {
        sio_buf name;
        if (api->context_get(e->socket, cstr("name"), &name) != SIO_OK) return SIO_FAIL;
        sio_buf quoted;
        api->json_quote(e->socket, name, &quoted);
        char args[300];
        snprintf(args, sizeof args, "[%.*s]", (int)quoted.len, quoted.ptr);
        return api->ack(e->socket, e->message->ack_id, cstr(args), NULL, 0);
    }
    if (eq(ev, "shout")) return api->send_and_broadcast(e->socket, e->message->args_json);
    return SIO_OK;
}

static sio_status on_error(const sio_event *e, void *ud) {
    (void)ud;
    char args[400];
    sio_buf quoted;
    if (api->json_quote(e->socket, e->error, &quoted) != SIO_OK) return SIO_OK;
    snprintf(args, sizeof args, "[%.*s]", (int)quoted.len, quoted.ptr);
    api->emit(e->socket, cstr("error_seen"), cstr(args), NULL, 0);
    return SIO_OK;
}

static char state[32];

static sio_buf retire(sio_plugin *plugin) {
    (void)plugin;
    if (getenv("CRASH_IN_RETIRE")) abort();
    snprintf(state, sizeof state, "%ld", handled);
    return cstr(state);
}

static sio_status init(const sio_host_api *host, sio_plugin *plugin, sio_buf previous_state) {
    api = host;
    self = plugin;
    if (getenv("CRASH_IN_INIT")) { volatile int *nothing = NULL; *nothing = 1; }
    if (previous_state.len) {
        char text[32] = { 0 };
        memcpy(text, previous_state.ptr, previous_state.len < 31 ? previous_state.len : 31);
        handled = atol(text);
    }
    host->register_handler(plugin, SIO_EVENT_CONNECT, NULL, on_connect, NULL);
    host->register_handler(plugin, SIO_EVENT_MESSAGE, NULL, on_message, NULL);
    host->register_handler(plugin, SIO_EVENT_ERROR, NULL, on_error, NULL);
    return SIO_OK;
}

static const sio_plugin_info info = {
    .struct_size = sizeof(sio_plugin_info),
    .abi_major = SIO_ABI_MAJOR,
    .abi_minor = SIO_ABI_MINOR,
    .name = "crashing",
    .version = CRASHING_VERSION,
    .init = init,
    .retire = retire,
};

SIO_EXPORT const sio_plugin_info *sio_plugin_entry(void) { return &info; }
