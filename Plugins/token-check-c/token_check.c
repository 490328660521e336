/*
 * token-check: admits a connection only with a known token, checked on a thread of the
 * plugin's own — the way a real plugin asks a database or an HTTP service without blocking
 * the server's network thread (ABI 1.3's defer and complete).
 *
 *   const socket = io({ auth: { token: "s3cret" } });
 *
 * The tokens live in a file, one "TOKEN USER" per line, read again for every check (so it can
 * change under a running server): $TOKEN_CHECK_FILE, or tokens.txt in the server's directory.
 * $TOKEN_CHECK_DELAY_MS adds a delay to each check, to watch a slow service at work.
 *
 * What it shows:
 *   on_connect  defers, and a worker thread completes: accepted, or refused "invalid token".
 *   on_message  "whoami" is answered later too (the ack travels in api->complete), and every
 *               event the client sends meanwhile waits behind it, in order.
 *   retire      stops the worker after it has answered every check still queued, so a reload
 *               leaves no connection waiting for a thread that is gone.
 *
 * Build: cc -shared -fPIC -O2 -Iinclude -o plugins/token-check.so Plugins/token-check-c/token_check.c -lpthread
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sio_plugin.h"

static const sio_host_api *api;
static sio_plugin *self;

static sio_buf cstr(const char *s) { return (sio_buf){ s, strlen(s) }; }

/* One check waiting for the worker. */
typedef struct check {
    struct check *next;
    sio_ticket ticket;
    int is_whoami;     /* 0: a connection's token; 1: "whoami", answered with the user */
    char token[128];
} check;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static check *head, *tail;
static int stopping;
static pthread_t worker;

static void enqueue(check *c) {
    pthread_mutex_lock(&lock);
    if (tail) tail->next = c; else head = c;
    tail = c;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
}

/* The user of `token` in the tokens file, into `user`; 0 when the token is unknown. */
static int lookup(const char *token, char *user, size_t size) {
    const char *path = getenv("TOKEN_CHECK_FILE");
    FILE *file = fopen(path && *path ? path : "tokens.txt", "r");
    if (!file) return 0;
    char line[512], known[256], name[256];
    int found = 0;
    while (!found && fgets(line, sizeof line, file)) {
        if (sscanf(line, "%255s %255s", known, name) == 2 && strcmp(known, token) == 0) {
            snprintf(user, size, "%s", name);
            found = 1;
        }
    }
    fclose(file);
    return found;
}

static void answer(check *c) {
    const char *delay = getenv("TOKEN_CHECK_DELAY_MS");
    if (delay && atoi(delay) > 0) usleep((useconds_t)atoi(delay) * 1000);
    char user[256];
    int known = lookup(c->token, user, sizeof user);
    sio_status status;
    if (c->is_whoami) {
        /* The user name as a JSON string; names in the file have no quotes or backslashes. */
        char ack[300];
        snprintf(ack, sizeof ack, "[\"%s\"]", known ? user : "");
        status = api->complete(self, c->ticket, SIO_OK, cstr(""), cstr(ack));
    } else {
        status = api->complete(self, c->ticket, known ? SIO_OK : SIO_REFUSE, cstr("invalid token"), cstr(""));
    }
    /* SIO_ERR_STATE: the client left (or the check timed out) before the answer. */
    if (status != SIO_OK) api->log(self, SIO_LOG_INFO, cstr("token-check: the socket was gone before its answer"));
}

static void *work(void *unused) {
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (!head && !stopping) pthread_cond_wait(&wake, &lock);
        check *c = head;
        if (c) {
            head = c->next;
            if (!head) tail = NULL;
        }
        pthread_mutex_unlock(&lock);
        if (!c) return NULL; /* stopping, and nothing left to answer */
        answer(c);
        free(c);
    }
}

/* Takes the event's ticket and queues the check; the handler returns what this returns. */
static sio_status check_later(const sio_event *e, int is_whoami, sio_buf token) {
    check *c = calloc(1, sizeof *c);
    if (!c) return SIO_FAIL;
    if (api->defer(e->socket, &c->ticket) != SIO_OK) {
        free(c);
        return SIO_FAIL;
    }
    c->is_whoami = is_whoami;
    memcpy(c->token, token.ptr, token.len < sizeof c->token - 1 ? token.len : sizeof c->token - 1);
    enqueue(c);
    return SIO_PENDING;
}

static sio_status on_connect(const sio_event *e, void *user_data) {
    (void)user_data;
    sio_buf token;
    if (e->auth_json.len == 0 || api->json_get_string(e->socket, e->auth_json, "token", &token) != SIO_OK || token.len == 0) {
        api->set_reason(e->socket, cstr("a token is required"));
        return SIO_REFUSE;
    }
    /* Kept for "whoami": the context lives as long as the socket. */
    api->context_set(e->socket, cstr("token"), token);
    return check_later(e, 0, token);
}

static sio_status on_message(const sio_event *e, void *user_data) {
    (void)user_data;
    const sio_buf name = e->message->event;
    if (name.len != 6 || memcmp(name.ptr, "whoami", 6) != 0) return SIO_OK;
    sio_buf token;
    if (api->context_get(e->socket, cstr("token"), &token) != SIO_OK) return SIO_FAIL;
    return check_later(e, 1, token);
}

static sio_status init(const sio_host_api *host, sio_plugin *plugin, sio_buf previous_state) {
    (void)previous_state;
    api = host;
    self = plugin;
    if (host->struct_size <= offsetof(sio_host_api, complete)) {
        host->log(plugin, SIO_LOG_ERROR, cstr("token-check needs a host with ABI 1.3 (defer and complete)"));
        return SIO_FAIL;
    }
    stopping = 0;
    if (pthread_create(&worker, NULL, work, NULL) != 0) return SIO_FAIL;
    host->register_handler(plugin, SIO_EVENT_CONNECT, NULL, on_connect, NULL);
    host->register_handler(plugin, SIO_EVENT_MESSAGE, NULL, on_message, NULL);
    return SIO_OK;
}

/* The plugin handle still works until retire returns: the queue is answered, then the worker
 * ends, before the library can be unloaded. */
static sio_buf retire(sio_plugin *plugin) {
    (void)plugin;
    pthread_mutex_lock(&lock);
    stopping = 1;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    pthread_join(worker, NULL);
    return (sio_buf){ NULL, 0 };
}

static const sio_plugin_info info = {
    .struct_size = sizeof(sio_plugin_info),
    .abi_major = SIO_ABI_MAJOR,
    .abi_minor = SIO_ABI_MINOR,
    .name = "token-check",
    .version = "1.0.0",
    .init = init,
    .retire = retire,
};

SIO_EXPORT const sio_plugin_info *sio_plugin_entry(void) { return &info; }
