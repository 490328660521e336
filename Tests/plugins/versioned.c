/*
 * A plugin built in several versions for the reload tests: it answers every "ping" with its
 * version, and hands a counter of the events it saw to its successor.
 *   -DVERSION='"v1"'     the version it answers with
 *   -DBROKEN_ABI         built for another ABI major
 *   -DBROKEN_INIT        init fails
 *   -DBROKEN_NO_ENTRY    no entry symbol
 *   -DNO_ADOPT           described as an ABI 1.0 build: no `adopt`, the state arrives in init
 * Every ping's ack carries the count after it, so that a test sees a handover lose or repeat
 * an event. With $SIO_RETIRE_LOG set, each retire appends "VERSION INSTANCE COUNT" to it.
 * ["slow", ms] sleeps that long before it answers like a ping.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sio_plugin.h"

#ifndef VERSION
#define VERSION "v1"
#endif

static const sio_host_api *api;
static atomic_long seen;        /* events answered by this version */
static long inherited;          /* what the previous versions had answered */
static char retire_buffer[64];
static long long instance;      /* tells apart two loads of the same build */

static void take_state(sio_buf previous_state) {
    if (previous_state.len > 0 && previous_state.len < 32) {
        char text[32];
        memcpy(text, previous_state.ptr, previous_state.len);
        text[previous_state.len] = 0;
        inherited = strtol(text, NULL, 10);
    }
}

static sio_status on_message(const sio_event *event, void *user_data) {
    (void)user_data;
    const sio_message *m = event->message;
    if (m->ack_id < 0) return SIO_OK;
    long count = inherited + atomic_fetch_add(&seen, 1) + 1;
    char answer[96];
    const char *args = m->args_json.ptr;
    size_t len = m->args_json.len;
    if (m->event.len == 4 && memcmp(m->event.ptr, "slow", 4) == 0) {
        /* ["slow", ms] or ["slow", ms, seq]: answers [VERSION, seq (or ms), count] after sleeping,
         * still running while reloads happen. */
        char *end;
        long ms = strtol(args + 1, &end, 10);
        long seq = *end == ',' ? strtol(end + 1, NULL, 10) : ms;
        usleep((useconds_t)ms * 1000);
        int n = snprintf(answer, sizeof answer, "[\"%s\",%ld,%ld]", VERSION, seq, count);
        return api->ack(event->socket, m->ack_id, (sio_buf){ answer, (size_t)n }, NULL, 0);
    }
    if (m->event.len == 5 && memcmp(m->event.ptr, "state", 5) == 0) {
        int n = snprintf(answer, sizeof answer, "[\"%s\",%ld]", VERSION, inherited + atomic_load(&seen));
        return api->ack(event->socket, m->ack_id, (sio_buf){ answer, (size_t)n }, NULL, 0);
    }
    /* args is "[seq]": answer "[VERSION,seq,count]". */
    int n = snprintf(answer, sizeof answer, "[\"%s\",%.*s,%ld]", VERSION, (int)(len > 2 ? len - 2 : 1), len > 2 ? args + 1 : "0", count);
    return api->ack(event->socket, m->ack_id, (sio_buf){ answer, (size_t)n }, NULL, 0);
}

static sio_status init(const sio_host_api *host, sio_plugin *plugin, sio_buf previous_state) {
    api = host;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    instance = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    take_state(previous_state);
#ifdef BROKEN_INIT
    (void)plugin;
    return SIO_FAIL;
#else
    return api->register_handler(plugin, SIO_EVENT_MESSAGE, NULL, on_message, NULL);
#endif
}

#ifndef NO_ADOPT
static void adopt(sio_plugin *plugin, sio_buf previous_state) {
    (void)plugin;
    take_state(previous_state);
}
#endif

static sio_buf retire(sio_plugin *plugin) {
    (void)plugin;
    int n = snprintf(retire_buffer, sizeof retire_buffer, "%ld", inherited + atomic_load(&seen));
    const char *log = getenv("SIO_RETIRE_LOG");
    FILE *f = log ? fopen(log, "a") : NULL;
    if (f) {
        fprintf(f, "%s %lld %s\n", VERSION, instance, retire_buffer);
        fclose(f);
    }
    return (sio_buf){ retire_buffer, (size_t)n };
}

#ifdef BROKEN_ABI
#define MAJOR (SIO_ABI_MAJOR + 1)
#else
#define MAJOR SIO_ABI_MAJOR
#endif

#ifdef NO_ADOPT
static const sio_plugin_info info = {
    .struct_size = offsetof(sio_plugin_info, adopt), .abi_major = MAJOR, .abi_minor = 0,
    .name = "versioned", .version = VERSION, .init = init, .retire = retire,
};
#else
static const sio_plugin_info info = {
    .struct_size = sizeof(sio_plugin_info), .abi_major = MAJOR, .abi_minor = SIO_ABI_MINOR,
    .name = "versioned", .version = VERSION, .init = init, .retire = retire, .adopt = adopt,
};
#endif

#ifndef BROKEN_NO_ENTRY
SIO_EXPORT const sio_plugin_info *sio_plugin_entry(void) { return &info; }
#else
SIO_EXPORT const sio_plugin_info *sio_plugin_entry_missing(void) { return &info; }
#endif
