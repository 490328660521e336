/*
 * sio_plugin.h — the stable C ABI between the sio server and its handler plugins.
 *
 * A plugin is a shared library that exports one symbol, `sio_plugin_entry`, returning a
 * description of itself (sio_plugin_info). The host checks the ABI major version, then calls
 * `init` with a table of host functions (sio_host_api); `init` registers the plugin's handlers.
 * From then on the host calls the handlers for the seven events of a socket's life.
 *
 * Versioning
 *   SIO_ABI_MAJOR changes only when something is removed or changes meaning; the host refuses a
 *   plugin built against another major. SIO_ABI_MINOR grows when fields or functions are
 *   appended. Every struct that may grow starts with `struct_size`: a reader looks at a field
 *   only if `struct_size` covers it. Fields are only ever appended.
 *
 * Buffers
 *   Strings and bytes travel as sio_buf {ptr, len}: not NUL-terminated unless said so, UTF-8
 *   for text. A sio_buf with len 0 may have ptr NULL.
 *
 * Ownership
 *   Every pointer below carries an OWNERSHIP note. "host-owned, event" means: owned by the host,
 *   valid until the handler that received it returns; copy what you keep. The host copies every
 *   buffer a plugin passes to a host function before that function returns.
 *
 * Threading
 *   - The events of one socket are never delivered concurrently, and arrive in order.
 *   - Events of different sockets may run concurrently on different threads.
 *   - Host functions may be called from any thread, at any time after init returned, except
 *     those marked "during an event only" (they take the event's socket handle).
 *   - Handlers should not block: a handler runs on the server's network thread of its socket.
 *     One that blocks stalls the sockets of that thread only; the server logs it, reloads wait
 *     for it at most 1 s, and shutdown gives up on it after --shutdown-timeout.
 *
 * Handles
 *   No handle is an address the host dereferences: a stale, foreign or made-up handle makes the
 *   host function return SIO_ERR_STATE, from any thread, without undefined behaviour.
 *
 * Reloads
 *   A replaced version's `retire` runs exactly once, with no handler of it running or to come;
 *   its state goes to the new version's `adopt` (or `init` without adopt). A refused build never
 *   touches the serving version when it has `adopt`. docs/abi.md, "Reloads".
 */
#ifndef SIO_PLUGIN_H
#define SIO_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIO_ABI_MAJOR 1
#define SIO_ABI_MINOR 4

#if defined(_WIN32)
#define SIO_EXPORT __declspec(dllexport)
#else
#define SIO_EXPORT __attribute__((visibility("default")))
#endif

/* A view of bytes. OWNERSHIP: as stated wherever a sio_buf appears. */
typedef struct sio_buf {
    const char *ptr;
    size_t len;
} sio_buf;

/* Status codes returned by handlers and host functions. */
typedef int32_t sio_status;
#define SIO_OK 0
/* A handler refuses: a connection (on_connect) or a subscription (on_subscribe). */
#define SIO_REFUSE 1
/* A handler failed; the host raises on_error for the socket. */
#define SIO_FAIL 2
/* Host function results. */
#define SIO_ERR_NO_SOCKET 3       /* nobody to send to: no socket, no subscriber, unknown id */
#define SIO_ERR_INVALID 4         /* an argument is malformed (bad JSON, bad channel name, ...) */
#define SIO_ERR_STATE 5           /* not allowed now (e.g. registering after init, stale socket) */
#define SIO_ERR_NOT_FOUND 6       /* a looked-up key or value does not exist */
#define SIO_ERR_TIMEOUT 7         /* ABI 1.2: emit_with_ack's client did not answer in time */
/* ABI 1.3: a handler of on_connect, on_subscribe or on_message that called api->defer returns
 * it: the event is finished later, by api->complete. */
#define SIO_PENDING 8

/* ABI 1.3: names one deferred event of one plugin, from api->defer to api->complete. Never 0,
 * never reused. */
typedef uint64_t sio_ticket;

/* The seven events. */
typedef enum sio_event_kind {
    SIO_EVENT_CONNECT = 0,
    SIO_EVENT_MESSAGE = 1,
    SIO_EVENT_SUBSCRIBE = 2,
    SIO_EVENT_UNSUBSCRIBE = 3,
    SIO_EVENT_ERROR = 4,
    SIO_EVENT_DISCONNECT = 5,
    SIO_EVENT_FINISH = 6
} sio_event_kind;
#define SIO_EVENT_KIND_COUNT 7

/* Log levels for sio_host_api.log. */
typedef enum sio_log_level {
    SIO_LOG_DEBUG = 0,
    SIO_LOG_INFO = 1,
    SIO_LOG_WARNING = 2,
    SIO_LOG_ERROR = 3
} sio_log_level;

/* Opaque handles. */
typedef struct sio_socket sio_socket; /* one socket, during one handler call, on its thread only */
typedef struct sio_plugin sio_plugin; /* this plugin, as the host knows it, until it is retired */

typedef struct sio_header {
    sio_buf name;  /* OWNERSHIP: host-owned, event */
    sio_buf value; /* OWNERSHIP: host-owned, event */
} sio_header;

/* The HTTP request that opened the session. */
typedef struct sio_request {
    size_t struct_size;
    sio_buf method;       /* OWNERSHIP: host-owned, event */
    sio_buf path;         /* OWNERSHIP: host-owned, event */
    sio_buf query;        /* OWNERSHIP: host-owned, event; raw, without '?' */
    sio_buf remote_addr;  /* OWNERSHIP: host-owned, event; X-Forwarded-For only from trusted proxies */
    const sio_header *headers; /* OWNERSHIP: host-owned, event; header_count entries */
    size_t header_count;
} sio_request;

/* What a client emitted (on_message). */
typedef struct sio_message {
    size_t struct_size;
    sio_buf event;        /* OWNERSHIP: host-owned, event; the event name ("message" for send()) */
    sio_buf args_json;    /* OWNERSHIP: host-owned, event; JSON array of the arguments; binary
                             arguments appear as {"_placeholder":true,"num":N} */
    const sio_buf *attachments; /* OWNERSHIP: host-owned, event; attachment_count binary buffers */
    size_t attachment_count;
    int64_t ack_id;       /* >= 0 when the client waits for an ack (answer with api->ack) */
} sio_message;

/* One event delivered to a handler. Fields that do not apply to the kind are empty. */
typedef struct sio_event {
    size_t struct_size;
    sio_event_kind kind;
    sio_socket *socket;          /* OWNERSHIP: host-owned, event; pass to host functions */
    const sio_request *request;  /* OWNERSHIP: host-owned, event */
    sio_buf socket_id;           /* OWNERSHIP: host-owned, event; the id the client sees as socket.id */
    sio_buf nsp;                 /* OWNERSHIP: host-owned, event; the namespace, e.g. "/" */
    sio_buf channel;             /* SUBSCRIBE, UNSUBSCRIBE; OWNERSHIP: host-owned, event */
    const sio_message *message;  /* MESSAGE; OWNERSHIP: host-owned, event; NULL otherwise */
    sio_buf error;               /* ERROR: what went wrong; OWNERSHIP: host-owned, event */
    sio_buf auth_json;           /* CONNECT: the client's auth object, or empty; OWNERSHIP: host-owned, event */
    sio_buf reason;              /* DISCONNECT: why, e.g. "transport close"; OWNERSHIP: host-owned, event */
} sio_event;

/*
 * ABI 1.2: how an emit_with_ack ended, handed to its callback. The callback runs on the
 * socket's thread like a handler: with SIO_OK and SIO_ERR_TIMEOUT the socket is still there
 * and `socket` takes the host functions marked "during an event only" until the callback
 * returns (send, emit, ack, ...); with SIO_ERR_NO_SOCKET it disconnected first and `socket` is
 * NULL.
 */
typedef struct sio_ack_reply {
    size_t struct_size;
    sio_status status;           /* SIO_OK: answered; SIO_ERR_TIMEOUT: not in time; SIO_ERR_NO_SOCKET: gone first */
    sio_socket *socket;          /* OWNERSHIP: host-owned, callback; NULL with SIO_ERR_NO_SOCKET */
    sio_buf socket_id;           /* OWNERSHIP: host-owned, callback */
    sio_buf nsp;                 /* the socket's namespace; OWNERSHIP: host-owned, callback */
    sio_buf args_json;           /* SIO_OK: the client's answer, a JSON array; OWNERSHIP: host-owned, callback */
    const sio_buf *attachments;  /* SIO_OK: binary arguments; OWNERSHIP: host-owned, callback */
    size_t attachment_count;
} sio_ack_reply;

typedef void (*sio_ack_fn)(const sio_ack_reply *reply, void *user_data);

/*
 * A handler. Return SIO_OK; SIO_REFUSE to refuse a connection or subscription; SIO_FAIL when
 * something went wrong; SIO_PENDING after api->defer (ABI 1.3). Give the reason with
 * api->set_reason before returning.
 */
typedef sio_status (*sio_handler_fn)(const sio_event *event, void *user_data);

/* The host functions. OWNERSHIP of the table: host-owned, valid until the plugin is retired. */
typedef struct sio_host_api {
    size_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;

    /* Registration, during init only. pattern: NUL-terminated regular expression matched at the
     * start of channel names (Python re.match), or NULL for every event of the kind. Patterns run
     * on RE2, in time linear in the name: backreferences and lookaround are not supported
     * (docs/events.md, "Pattern syntax"). A pattern on SIO_EVENT_CONNECT, or one that does not
     * compile, fails the load.
     * OWNERSHIP: pattern is copied; user_data is the plugin's, passed back unchanged. */
    sio_status (*register_handler)(sio_plugin *plugin, sio_event_kind kind, const char *pattern,
                                   sio_handler_fn handler, void *user_data);

    /* Why a handler refuses or fails; copied. During an event only. */
    sio_status (*set_reason)(sio_socket *socket, sio_buf reason);

    /* Sending on a socket, during an event only. message_json: one JSON value, delivered as the
     * event "message" with one argument. OWNERSHIP: buffers are copied. */
    sio_status (*send)(sio_socket *socket, sio_buf message_json);
    sio_status (*broadcast)(sio_socket *socket, sio_buf message_json);
    /* channel empty: every channel the socket is in (each recipient once). */
    sio_status (*broadcast_channel)(sio_socket *socket, sio_buf message_json, sio_buf channel);
    sio_status (*send_and_broadcast)(sio_socket *socket, sio_buf message_json);
    sio_status (*send_and_broadcast_channel)(sio_socket *socket, sio_buf message_json, sio_buf channel);
    /* Any event name, args_json a JSON array; attachments referenced by placeholders. */
    sio_status (*emit)(sio_socket *socket, sio_buf event, sio_buf args_json,
                       const sio_buf *attachments, size_t attachment_count);
    /* Answers message->ack_id with a JSON array of arguments. */
    sio_status (*ack)(sio_socket *socket, int64_t ack_id, sio_buf args_json,
                      const sio_buf *attachments, size_t attachment_count);
    sio_status (*subscribe)(sio_socket *socket, sio_buf channel);
    sio_status (*unsubscribe)(sio_socket *socket, sio_buf channel);
    sio_status (*disconnect)(sio_socket *socket);

    /* The per-socket context: a key/value store owned by the host, shared by all handlers of
     * the socket, alive from connect to finish, surviving reloads. During an event only.
     * context_get: *value is host-owned, valid until the handler returns or the key is set. */
    sio_status (*context_set)(sio_socket *socket, sio_buf key, sio_buf value);
    sio_status (*context_get)(sio_socket *socket, sio_buf key, sio_buf *value);
    sio_status (*context_delete)(sio_socket *socket, sio_buf key);

    /* Out-of-band sending: any thread, any time after init returned. SIO_ERR_NO_SOCKET when no
     * socket is connected / nobody is on the channel / no socket has that id. nsp empty = "/". */
    sio_status (*oob_broadcast)(sio_plugin *plugin, sio_buf nsp, sio_buf message_json);
    sio_status (*oob_broadcast_channel)(sio_plugin *plugin, sio_buf nsp, sio_buf message_json, sio_buf channel);
    sio_status (*oob_send)(sio_plugin *plugin, sio_buf nsp, sio_buf socket_id, sio_buf message_json);

    /* One log line, attributed to the plugin. Any thread. */
    void (*log)(sio_plugin *plugin, sio_log_level level, sio_buf message);

    /* JSON helpers, so that C plugins need no JSON library. During an event only; results are
     * host-owned, valid until the handler returns.
     * json_get_string: the string at `path` in `json`, unescaped. path: NUL-terminated, elements
     * separated by '.', array indexes as numbers ("0.name"). SIO_ERR_NOT_FOUND when absent or not
     * a string.
     * json_quote: `text` as a JSON string literal, quotes included. */
    sio_status (*json_get_string)(sio_socket *socket, sio_buf json, const char *path, sio_buf *out);
    sio_status (*json_quote)(sio_socket *socket, sio_buf text, sio_buf *out);

    /* ---- ABI 1.2: check `struct_size > offsetof(sio_host_api, emit_to)` before calling. ---- */

    /* Any event name to many, as socket.io's socket.broadcast.emit (channel empty: every socket
     * of the namespace) and socket.to(channel).emit (the channel's subscribers), each recipient
     * once; the sender is left out unless flags has SIO_EMIT_INCLUDE_SELF (io.to(channel).emit).
     * args_json: a JSON array; attachments referenced by {"_placeholder":true,"num":N}.
     * During an event only. SIO_ERR_INVALID for an empty event name, arguments that are not a
     * JSON array, an invalid channel name or unknown flag bits. OWNERSHIP: everything is copied. */
    sio_status (*emit_to)(sio_socket *socket, sio_buf channel, sio_buf event, sio_buf args_json,
                          const sio_buf *attachments, size_t attachment_count, uint32_t flags);
    /* Out of band, any thread, any time after init returned: any event name to every socket of
     * the namespace (channel empty) or to the subscribers of `channel` (oob_emit), or to one
     * socket by id (oob_emit_to_socket). nsp empty = "/". SIO_ERR_NO_SOCKET when nobody was
     * reached. OWNERSHIP: everything is copied. */
    sio_status (*oob_emit)(sio_plugin *plugin, sio_buf nsp, sio_buf channel, sio_buf event, sio_buf args_json,
                           const sio_buf *attachments, size_t attachment_count);
    sio_status (*oob_emit_to_socket)(sio_plugin *plugin, sio_buf nsp, sio_buf socket_id, sio_buf event,
                                     sio_buf args_json, const sio_buf *attachments, size_t attachment_count);
    /* Emits an event and asks this client to acknowledge it (socket.io's emitWithAck). During
     * an event only. `callback` runs exactly once, later, on the socket's thread (never before
     * emit_with_ack returns): with the answer, after timeout_ms without one (0: no timeout), or
     * when the socket disconnects first (after on_disconnect, before on_finish). A late answer
     * is dropped. A callback whose plugin version was replaced or removed before it is due is
     * not called: its code may be gone; the next version never sees its predecessor's waits.
     * OWNERSHIP: event, args_json and attachments are copied; user_data is the plugin's,
     * passed back unchanged. */
    sio_status (*emit_with_ack)(sio_socket *socket, sio_buf event, sio_buf args_json, const sio_buf *attachments,
                                size_t attachment_count, uint32_t timeout_ms, sio_ack_fn callback, void *user_data);

    /* ---- ABI 1.3: check `struct_size > offsetof(sio_host_api, defer)` before calling. ---- */

    /* Finishing an event later, for handlers that must ask something slow (a token checked
     * against a database or an HTTP service) without blocking the socket's thread.
     *
     * defer: during on_connect, on_subscribe or on_message only, once per handler call. Writes
     * a ticket to *ticket; the handler then returns SIO_PENDING. The socket waits: a connection
     * is not acknowledged, a subscription receives nothing from its channel, and the socket's
     * later events (messages, subscriptions, acknowledgements) are held, in order, until every
     * handler that deferred the event completed it. Other handlers of the event run at once,
     * as usual. A handler that called defer and returns anything but SIO_PENDING withdraws the
     * ticket; SIO_PENDING without defer is a failure. SIO_ERR_STATE for other events, a second
     * defer in one call, or a stale handle.
     *
     * complete: any thread, any time (also before the handler returned). decision: SIO_OK
     * (accept; done), SIO_REFUSE (refuse a connection or subscription with `reason`), SIO_FAIL
     * (failed: on_error with `reason`; a connection is refused). ack_args_json: for on_message
     * whose client waits for an acknowledgement, the answer as a JSON array (empty: none; the
     * first completion that gives one answers). The event's outcome: refused if any handler
     * refused, accepted when all accepted. SIO_ERR_STATE when the ticket is unknown, already
     * completed, withdrawn, expired (--pending-timeout: a connection or subscription is then
     * refused "timed out", a message released with on_error), or its socket is gone. A ticket
     * may be completed by the version that took it, also after that version was replaced
     * (through the handle it had), or by a later version of the same plugin (hand the ticket
     * over through retire).
     * SIO_ERR_INVALID for another decision, or ack arguments that are not a JSON array.
     * OWNERSHIP: *ticket is the caller's, written by defer; reason and ack_args_json are
     * copied by complete. */
    sio_status (*defer)(sio_socket *socket, sio_ticket *ticket);
    sio_status (*complete)(sio_plugin *plugin, sio_ticket ticket, sio_status decision, sio_buf reason,
                           sio_buf ack_args_json);

    /* ---- ABI 1.4: check `struct_size > offsetof(sio_host_api, presence_set)` before calling. ---- */

    /* Presence: which sockets are in a channel on every node of the cluster (sio serve
     * --cluster; this process alone without it), each with a small value its plugin set (the
     * chat's user name). Other nodes' changes arrive within one notification's delay
     * (docs/deployment.md); a node that dies leaves presence within the node timeout (5 s).
     *
     * presence_set: the socket's value, at most 256 bytes of UTF-8 (empty: none). It lives until
     * the socket finishes, through reloads. During an event only. SIO_ERR_INVALID when too long
     * or not UTF-8.
     * presence_list: the sockets of `channel` (empty: of the socket's namespace) on every node,
     * as a JSON array of {"id": "...", "value": "..." or null}, this node's first; their number
     * in *count when count is not NULL. During an event only. OWNERSHIP: *out_json host-owned,
     * valid until the handler returns. */
    sio_status (*presence_set)(sio_socket *socket, sio_buf value);
    sio_status (*presence_list)(sio_socket *socket, sio_buf channel, sio_buf *out_json, size_t *count);
    /* How many sockets are in `channel` (empty: in the namespace) on every node. Any thread.
     * OWNERSHIP: *count is the caller's. */
    sio_status (*oob_presence_count)(sio_plugin *plugin, sio_buf nsp, sio_buf channel, size_t *count);
    /* socket.io's socketsJoin, socketsLeave and disconnectSockets for one socket by id, on
     * whichever node has it. Any thread. SIO_ERR_NO_SOCKET when no node has it; SIO_ERR_INVALID
     * for an invalid channel name. A join skips on_subscribe, as subscribe does; a leave runs
     * on_unsubscribe. OWNERSHIP: everything is copied. */
    sio_status (*oob_socket_join)(sio_plugin *plugin, sio_buf nsp, sio_buf socket_id, sio_buf channel);
    sio_status (*oob_socket_leave)(sio_plugin *plugin, sio_buf nsp, sio_buf socket_id, sio_buf channel);
    sio_status (*oob_socket_disconnect)(sio_plugin *plugin, sio_buf nsp, sio_buf socket_id);
} sio_host_api;

/* emit_to flags. */
#define SIO_EMIT_INCLUDE_SELF 1u

/*
 * What a plugin says about itself. OWNERSHIP: plugin-owned, static: it must stay valid while the
 * library is loaded (a `static const` object is the usual choice).
 */
typedef struct sio_plugin_info {
    size_t struct_size;
    uint32_t abi_major;       /* SIO_ABI_MAJOR the plugin was built against */
    uint32_t abi_minor;       /* SIO_ABI_MINOR the plugin was built against */
    const char *name;         /* NUL-terminated; OWNERSHIP: plugin-owned, static */
    const char *version;      /* NUL-terminated; OWNERSHIP: plugin-owned, static */
    /* Registers the handlers. previous_state: what the retiring version's `retire` returned
     * (empty on a first load, and always empty when `adopt` is set: adopt receives it instead);
     * OWNERSHIP: host-owned, valid until init returns.
     * Return SIO_OK, or SIO_FAIL to refuse the load (give the reason with api->log). */
    sio_status (*init)(const sio_host_api *api, sio_plugin *plugin, sio_buf previous_state);
    /* Optional (NULL). Called exactly once per loaded version, when it is replaced or removed,
     * with dispatch paused: no handler of this version is running, and none will be called
     * again. It may return state for the next version (its `adopt`, or its `init`). It is never
     * called because another build was refused. OWNERSHIP: plugin-owned; the host copies it
     * before the next call into the plugin, so a static buffer is enough. */
    sio_buf (*retire)(sio_plugin *plugin);
    /* Optional (NULL); ABI 1.1. Set it, and a reload runs this version's `init` (with an empty
     * previous_state) while the serving version still serves, so an init that fails leaves the
     * serving version untouched; then dispatch pauses, the serving version's `retire` runs and
     * its state arrives here, before this version's first event. Also called, with an empty
     * state, on a first load. It cannot refuse. OWNERSHIP of previous_state: host-owned, valid
     * until adopt returns. */
    void (*adopt)(sio_plugin *plugin, sio_buf previous_state);
} sio_plugin_info;

/* The one exported symbol of a plugin. */
#define SIO_PLUGIN_ENTRY_SYMBOL "sio_plugin_entry"
typedef const sio_plugin_info *(*sio_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* SIO_PLUGIN_H */
