/*
 * The chat demo, in C: rooms are channels "room-<id>"; a user picks a name that is free in the
 * room, sees who is there, and everyone in the room sees joins, leaves and messages (with the
 * sender's name and the time, HTML stripped). Behaviour is identical to Plugins/chat-swift.
 *
 * Client protocol (JSON objects, as the seed's demo):
 *   emit "rooms" (ack)                          -> [{"id","name","users"}...]
 *   emit "create_room", name (ack)              -> {"id"} or {"error"}
 *   subscribe "room-<id>", then
 *   send {"action":"start","name":N}            -> send {"action":"started","name","users":[...]}
 *                                                  or send {"action":"in-use","name"}
 *                                                  and to the room {"action":"join","name"}
 *   send {"action":"message","message":M}       -> to the room and sender {"action":"message","name","message","time"}
 *   unsubscribe / disconnect                    -> to the room {"action":"leave","name"}
 *
 * Who is in a room, and under which name, is presence (ABI 1.4): a user is a socket subscribed
 * to the room's channel whose presence value is its name. With `sio serve --cluster` that covers
 * every node, so users on different nodes see each other and the same names in use. Rooms live
 * here: one created on a node is listed there; a room with people in it can be entered from
 * every node. The room list survives a reload: retire() hands it to the next version as text.
 *
 * Build: cc -std=c11 -shared -fPIC -O2 -Iinclude -o chat.so Plugins/chat-c/chat.c -lpthread
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sio_plugin.h"

#define MAX_ROOMS 256
#define NAME_MAX_LEN 64

typedef struct { int id; char name[NAME_MAX_LEN]; } room;

static const sio_host_api *api;
static sio_plugin *self;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static room rooms[MAX_ROOMS];
static int room_count, next_room_id = 1;
static char *retired_state;

static sio_buf cstr(const char *s) { return (sio_buf){ s, strlen(s) }; }
static int eq(sio_buf b, const char *s) { return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0; }

/* Copies `in` without HTML tags, tabs or newlines, at most cap-1 bytes, trimmed. */
static void clean(sio_buf in, char *out, size_t cap) {
    size_t n = 0;
    int in_tag = 0;
    for (size_t i = 0; i < in.len && n + 1 < cap; i++) {
        char c = in.ptr[i];
        if (c == '<') { in_tag = 1; continue; }
        if (c == '>' && in_tag) { in_tag = 0; continue; }
        if (in_tag) continue;
        if (c == '\t' || c == '\n' || c == '\r') c = ' ';
        if (n == 0 && c == ' ') continue;
        out[n++] = c;
    }
    while (n > 0 && out[n - 1] == ' ') n--;
    out[n] = 0;
}

/* Room id from a channel "room-<id>", or -1. */
static int room_of_channel(sio_buf channel) {
    if (channel.len < 6 || memcmp(channel.ptr, "room-", 5) != 0) return -1;
    int id = 0;
    for (size_t i = 5; i < channel.len; i++) {
        if (channel.ptr[i] < '0' || channel.ptr[i] > '9') return -1;
        id = id * 10 + (channel.ptr[i] - '0');
    }
    return id;
}

static room *find_room(int id) {
    for (int i = 0; i < room_count; i++) if (rooms[i].id == id) return &rooms[i];
    return NULL;
}

/* A room is known here, or has people in it somewhere in the cluster. */
static int room_exists(int id) {
    if (id < 0) return 0;
    if (find_room(id)) return 1;
    char channel[32];
    snprintf(channel, sizeof channel, "room-%d", id);
    size_t count = 0;
    return api->oob_presence_count(self, cstr(""), cstr(channel), &count) == SIO_OK && count > 0;
}

/* A growing JSON text. */
typedef struct { char *p; size_t len, cap; } text;

static void put(text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}
static void puts_(text *t, const char *s) { put(t, s, strlen(s)); }
static void put_quoted(text *t, const sio_event *e, const char *s) {
    sio_buf q;
    api->json_quote(e->socket, cstr(s), &q);
    put(t, q.ptr, q.len);
}
static sio_buf buf(text *t) { return (sio_buf){ t->p, t->len }; }

/* {"action":A,"name":N} */
static text notice(const sio_event *e, const char *action, const char *name) {
    text t = { 0 };
    puts_(&t, "{\"action\":");
    put_quoted(&t, e, action);
    puts_(&t, ",\"name\":");
    put_quoted(&t, e, name);
    puts_(&t, "}");
    return t;
}

/* The names in a room on every node: the presence values of its channel's sockets. With
 * `in_use`, only whether that name is among them. */
static int users_json(text *t, const sio_event *e, int room_id, const char *in_use) {
    char channel[32];
    snprintf(channel, sizeof channel, "room-%d", room_id);
    sio_buf list;
    size_t count = 0;
    if (api->presence_list(e->socket, cstr(channel), &list, &count) != SIO_OK) count = 0;
    if (t) puts_(t, "[");
    int first = 1;
    for (size_t i = 0; i < count; i++) {
        char path[32];
        sio_buf name;
        snprintf(path, sizeof path, "%zu.value", i);
        if (api->json_get_string(e->socket, list, path, &name) != SIO_OK) continue;
        if (in_use) {
            if (eq(name, in_use)) return 1;
            continue;
        }
        if (!first) puts_(t, ",");
        first = 0;
        char copy[NAME_MAX_LEN];
        snprintf(copy, sizeof copy, "%.*s", (int)name.len, name.ptr);
        put_quoted(t, e, copy);
    }
    if (t) puts_(t, "]");
    return 0;
}

/* The name this socket started with, from its context. */
static int started_name(const sio_event *e, char *out, size_t cap) {
    sio_buf name;
    if (api->context_get(e->socket, cstr("name"), &name) != SIO_OK) return 0;
    snprintf(out, cap, "%.*s", (int)name.len, name.ptr);
    return 1;
}

static sio_status list_rooms(const sio_event *e) {
    text t = { 0 };
    puts_(&t, "[[");
    for (int i = 0; i < room_count; i++) {
        char head[32];
        snprintf(head, sizeof head, "%s{\"id\":%d,\"name\":", i ? "," : "", rooms[i].id);
        puts_(&t, head);
        put_quoted(&t, e, rooms[i].name);
        puts_(&t, ",\"users\":");
        users_json(&t, e, rooms[i].id, NULL);
        puts_(&t, "}");
    }
    puts_(&t, "]]");
    sio_status s = api->ack(e->socket, e->message->ack_id, buf(&t), NULL, 0);
    free(t.p);
    return s;
}

static sio_status create_room(const sio_event *e) {
    sio_buf raw;
    char name[NAME_MAX_LEN];
    const char *answer;
    char json[128];
    if (api->json_get_string(e->socket, e->message->args_json, "0", &raw) != SIO_OK) raw = cstr("");
    clean(raw, name, sizeof name);
    if (!name[0]) {
        answer = "[{\"error\":\"a room needs a name\"}]";
    } else if (room_count == MAX_ROOMS) {
        answer = "[{\"error\":\"too many rooms\"}]";
    } else {
        room *r = &rooms[room_count++];
        r->id = next_room_id++;
        snprintf(r->name, sizeof r->name, "%s", name);
        snprintf(json, sizeof json, "[{\"id\":%d}]", r->id);
        answer = json;
    }
    return api->ack(e->socket, e->message->ack_id, cstr(answer), NULL, 0);
}

static sio_status on_lobby_message(const sio_event *e, void *ud) {
    (void)ud;
    if (e->message->ack_id < 0) return SIO_OK;
    sio_status s = SIO_OK;
    pthread_mutex_lock(&lock);
    if (eq(e->message->event, "rooms")) s = list_rooms(e);
    else if (eq(e->message->event, "create_room")) s = create_room(e);
    pthread_mutex_unlock(&lock);
    return s;
}

static sio_status start(const sio_event *e, int room_id) {
    sio_buf raw;
    char name[NAME_MAX_LEN];
    if (api->json_get_string(e->socket, e->message->args_json, "0.name", &raw) != SIO_OK) raw = cstr("");
    clean(raw, name, sizeof name);
    char started[NAME_MAX_LEN];
    if (!name[0] || started_name(e, started, sizeof started)) {
        api->set_reason(e->socket, cstr(name[0] ? "already started" : "a name is needed"));
        return SIO_FAIL;
    }
    if (users_json(NULL, e, room_id, name)) {
        text t = notice(e, "in-use", name);
        api->send(e->socket, buf(&t));
        free(t.p);
        return SIO_OK;
    }
    api->presence_set(e->socket, cstr(name));
    api->context_set(e->socket, cstr("name"), cstr(name));
    char room_text[16];
    snprintf(room_text, sizeof room_text, "%d", room_id);
    api->context_set(e->socket, cstr("room"), cstr(room_text));

    text t = { 0 };
    puts_(&t, "{\"action\":\"started\",\"name\":");
    put_quoted(&t, e, name);
    puts_(&t, ",\"users\":");
    users_json(&t, e, room_id, NULL);
    puts_(&t, "}");
    api->send(e->socket, buf(&t));
    free(t.p);
    char channel[32];
    snprintf(channel, sizeof channel, "room-%d", room_id);
    text j = notice(e, "join", name);
    api->broadcast_channel(e->socket, buf(&j), cstr(channel));
    free(j.p);
    return SIO_OK;
}

static sio_status say(const sio_event *e) {
    char name[NAME_MAX_LEN];
    sio_buf room_text;
    if (!started_name(e, name, sizeof name) || api->context_get(e->socket, cstr("room"), &room_text) != SIO_OK) {
        api->set_reason(e->socket, cstr("start with a name first"));
        return SIO_FAIL;
    }
    char channel[32];
    snprintf(channel, sizeof channel, "room-%.*s", (int)room_text.len, room_text.ptr);
    sio_buf raw;
    char message[1024];
    if (api->json_get_string(e->socket, e->message->args_json, "0.message", &raw) != SIO_OK) raw = cstr("");
    clean(raw, message, sizeof message);
    if (!message[0]) return SIO_OK;
    char clock[16];
    time_t now = time(NULL);
    struct tm local;
    localtime_r(&now, &local);
    strftime(clock, sizeof clock, "%H:%M:%S", &local);
    text t = { 0 };
    puts_(&t, "{\"action\":\"message\",\"name\":");
    put_quoted(&t, e, name);
    puts_(&t, ",\"message\":");
    put_quoted(&t, e, message);
    puts_(&t, ",\"time\":");
    put_quoted(&t, e, clock);
    puts_(&t, "}");
    api->send_and_broadcast_channel(e->socket, buf(&t), cstr(channel));
    free(t.p);
    return SIO_OK;
}

/* Bound to "^room-": runs only for sockets that are in a room channel. */
static sio_status on_room_message(const sio_event *e, void *ud) {
    (void)ud;
    if (!eq(e->message->event, "message")) return SIO_OK;
    sio_buf action;
    if (api->json_get_string(e->socket, e->message->args_json, "0.action", &action) != SIO_OK) return SIO_OK;
    sio_buf room_arg;
    int room_id = -1;
    if (api->json_get_string(e->socket, e->message->args_json, "0.room", &room_arg) == SIO_OK) {
        char tmp[16];
        snprintf(tmp, sizeof tmp, "%.*s", (int)room_arg.len, room_arg.ptr);
        room_id = atoi(tmp);
    }
    sio_status s = SIO_OK;
    pthread_mutex_lock(&lock);
    if (eq(action, "start")) {
        if (!room_exists(room_id)) {
            api->set_reason(e->socket, cstr("no such room"));
            s = SIO_FAIL;
        } else {
            s = start(e, room_id);
        }
    } else if (eq(action, "message")) {
        s = say(e);
    }
    pthread_mutex_unlock(&lock);
    return s;
}

/* Joining a room channel is allowed only for rooms that exist. */
static sio_status on_room_subscribe(const sio_event *e, void *ud) {
    (void)ud;
    int id = room_of_channel(e->channel);
    pthread_mutex_lock(&lock);
    int exists = room_exists(id);
    pthread_mutex_unlock(&lock);
    if (!exists) {
        api->set_reason(e->socket, cstr("no such room"));
        return SIO_REFUSE;
    }
    return SIO_OK;
}

/* Before the socket leaves its room: tell the others, forget the name. */
static sio_status on_room_unsubscribe(const sio_event *e, void *ud) {
    (void)ud;
    char name[NAME_MAX_LEN];
    sio_buf room_text;
    if (started_name(e, name, sizeof name) && api->context_get(e->socket, cstr("room"), &room_text) == SIO_OK
        && e->channel.len == 5 + room_text.len && memcmp(e->channel.ptr + 5, room_text.ptr, room_text.len) == 0) {
        text t = notice(e, "leave", name);
        api->broadcast_channel(e->socket, buf(&t), e->channel);
        free(t.p);
        api->presence_set(e->socket, cstr(""));
        api->context_delete(e->socket, cstr("name"));
        api->context_delete(e->socket, cstr("room"));
    }
    return SIO_OK;
}

static sio_status init(const sio_host_api *host, sio_plugin *plugin, sio_buf previous_state) {
    api = host;
    self = plugin;
    if (host->struct_size <= offsetof(sio_host_api, presence_set)) return SIO_FAIL; /* needs ABI 1.4 */
    /* Restore "R\t<id>\t<name>\n" lines from the last version (users are presence, kept by the host). */
    char *copy = malloc(previous_state.len + 1);
    memcpy(copy, previous_state.ptr ? previous_state.ptr : "", previous_state.len);
    copy[previous_state.len] = 0;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f1 = strchr(line, '\t'), *f2 = f1 ? strchr(f1 + 1, '\t') : NULL;
        if (!f2) continue;
        *f1 = *f2 = 0;
        if (line[0] == 'R' && room_count < MAX_ROOMS) {
            room *r = &rooms[room_count++];
            r->id = atoi(f1 + 1);
            snprintf(r->name, sizeof r->name, "%s", f2 + 1);
            if (r->id >= next_room_id) next_room_id = r->id + 1;
        }
    }
    free(copy);
    if (room_count == 0) {
        rooms[0].id = next_room_id++;
        snprintf(rooms[0].name, sizeof rooms[0].name, "Lobby");
        room_count = 1;
    }
    api->register_handler(plugin, SIO_EVENT_MESSAGE, NULL, on_lobby_message, NULL);
    api->register_handler(plugin, SIO_EVENT_MESSAGE, "^room-", on_room_message, NULL);
    api->register_handler(plugin, SIO_EVENT_SUBSCRIBE, "^room-", on_room_subscribe, NULL);
    api->register_handler(plugin, SIO_EVENT_UNSUBSCRIBE, "^room-", on_room_unsubscribe, NULL);
    return SIO_OK;
}

static sio_buf retire(sio_plugin *plugin) {
    (void)plugin;
    pthread_mutex_lock(&lock);
    text t = { 0 };
    char line[256];
    for (int i = 0; i < room_count; i++) {
        snprintf(line, sizeof line, "R\t%d\t%s\n", rooms[i].id, rooms[i].name);
        puts_(&t, line);
    }
    pthread_mutex_unlock(&lock);
    free(retired_state);
    retired_state = t.p;
    return (sio_buf){ t.p, t.len };
}

static const sio_plugin_info info = {
    .struct_size = sizeof(sio_plugin_info), .abi_major = SIO_ABI_MAJOR, .abi_minor = SIO_ABI_MINOR,
    .name = "chat-c", .version = "1.1.0", .init = init, .retire = retire,
};

SIO_EXPORT const sio_plugin_info *sio_plugin_entry(void) { return &info; }
