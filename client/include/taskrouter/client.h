/*
 * taskrouter/client.h — libtaskrouter, the C client of taskrouterd.
 *
 * The library talks to taskrouterd over its Unix socket (4-byte big-endian length + UTF-8
 * JSON, JSON-RPC 2.0). It offers:
 *   - blocking calls with a timeout (tr_client_call and the typed tr_client_task_* helpers);
 *   - subscriptions with a blocking tr_client_next_event;
 *   - an asynchronous interface for programs with their own main loop (GLib, Qt, libuv,
 *     poll): tr_client_fd, tr_client_events, tr_client_timeout_ms, tr_client_process,
 *     tr_client_call_async and an event callback; for GLib, the optional
 *     libtaskrouter-glib (taskrouter/client-glib.h) does all of it in one call;
 *   - struct tr_task accessors so callers do not have to parse JSON themselves;
 *   - typed helpers for reservations, the worker and its activities (tr_client_reservation_*,
 *     tr_client_worker_*, tr_client_activity_list) with struct tr_reservation, struct
 *     tr_worker and struct tr_activity accessors read the same way as struct tr_task;
 *   - struct tr_result, read by dotted paths ("upstream.state", "tasks.0.sid"), for every
 *     other result (daemon.status, rpc.describe, ...): no JSON parsing in the caller.
 *
 * The protocol (methods, parameters, results, events, error codes) is PROTOCOL.md, installed
 * with taskrouterd's documentation (<datadir>/doc/taskrouterd/PROTOCOL.md; see
 * taskrouter-client(3), FILES).
 *
 * The library never aborts, exits, prints or installs signal handlers (it writes with
 * MSG_NOSIGNAL). A struct tr_client is not thread safe: use it from one thread at a time.
 *
 * Return values: functions returning int give 0 (or a count) on success and a negative
 * errno on failure:
 *   -EINVAL        bad arguments (NULL client, params that are not a JSON object, ...)
 *   -ENOMEM        out of memory
 *   -ENOENT, -ECONNREFUSED, -EACCES, -ENAMETOOLONG   connecting failed
 *   -ETIMEDOUT     the timeout expired (connect, call or next_event)
 *   -ECONNRESET    the daemon closed the connection (the client is then dead)
 *   -EMSGSIZE      the daemon sent a frame above the size limit (the client is then dead)
 *   -EBADMSG       the daemon sent something that is not JSON-RPC (the client is then dead)
 *   -ENOBUFS       too many unread events were queued (the client is then dead), or
 *                  too many unsent requests (tr_client_call_async; the client lives on)
 *   -EDEADLK       a blocking call, tr_client_next_event or tr_client_process was
 *                  called from inside a callback (not allowed; use tr_client_call_async)
 *   -EREMOTEIO     the daemon answered with a JSON-RPC error; see struct tr_client_error
 * Once a client is dead every later call returns the same error; close it and reconnect.
 *
 * Output parameters are named ret_* and written only on success, except struct
 * tr_client_error which is filled in on every failure (when not NULL). Pass it
 * zero-initialised (struct tr_client_error err = { 0 };) or as left by an earlier call:
 * the library releases its previous contents before filling it in.
 *
 * Strings returned as "char *" are malloc'd and belong to the caller: free them with free().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TR_EXPORT __attribute__((visibility("default")))

/* JSON-RPC error codes the daemon uses (the same values as PROTOCOL.md). */
#define TR_CLIENT_PARSE_ERROR -32700
#define TR_CLIENT_INVALID_REQUEST -32600
#define TR_CLIENT_METHOD_NOT_FOUND -32601
#define TR_CLIENT_INVALID_PARAMS -32602
#define TR_CLIENT_INTERNAL_ERROR -32603
#define TR_CLIENT_NOT_FOUND -32001
#define TR_CLIENT_NOT_CONNECTED -32002
#define TR_CLIENT_UPSTREAM_ERROR -32003   /* data: httpStatus, twilioCode, message */
#define TR_CLIENT_VERSION_CONFLICT -32004 /* data: currentVersion, ... */
#define TR_CLIENT_TIMEOUT -32005          /* upstream did not answer in time */
#define TR_CLIENT_RATE_LIMITED -32006
#define TR_CLIENT_TOO_MANY_REQUESTS -32007
#define TR_CLIENT_OVERLOADED -32008
#define TR_CLIENT_TOKEN_EXPIRED -32009
#define TR_CLIENT_REFRESH_PENDING -32010
#define TR_CLIENT_REPLAY_GONE -32011 /* data: reason, epoch, oldestSeq, currentSeq */
#define TR_CLIENT_INVALID_STATE -32012
#define TR_CLIENT_NETWORK_ERROR -32013
#define TR_CLIENT_NOT_PERMITTED -32014 /* data: reason ("owner", "identity") */

/* Timeouts are in milliseconds; a negative value waits forever. */
#define TR_CLIENT_TIMEOUT_INFINITE (-1)

struct tr_client;
struct tr_task;
struct tr_reservation;
struct tr_worker;
struct tr_activity;
struct tr_result;

/*
 * Why a call failed. errnum is the negative errno the function returned. When errnum is
 * -EREMOTEIO the daemon replied with a JSON-RPC error: code is its code, message its text
 * and data its "data" member as JSON text (NULL when absent). For local failures code is 0,
 * message describes the failure and data is NULL.
 *
 * The strings belong to the struct; release them with tr_client_error_done. A zeroed
 * struct (= {0}) is a valid empty error; tr_client_error_done on it is a no-op.
 */
struct tr_client_error {
	int errnum;
	int code;
	char *message;
	char *data;
};

TR_EXPORT void tr_client_error_done(struct tr_client_error *e);

/* A short English name for a JSON-RPC code ("version conflict", ...). Never NULL; static. */
TR_EXPORT const char *tr_client_code_str(int code);

/*
 * One event notification. Fields point into the struct and live as long as it does.
 *   name          event name ("reservationCreated", "updated", "disconnected", ...: the
 *                 list is in PROTOCOL.md and in rpc.describe's "events")
 *   seq           daemon-wide sequence number (-1 when absent); it counts within one run of
 *                 the daemon, which epoch names
 *   subscription  the subscription id as JSON text (a number or a quoted string), or NULL
 *   task_sid      the task the event is about, or NULL (daemon events)
 *   reservation_sid  or NULL
 *   resync, stale    flags the daemon may set (see PROTOCOL.md)
 *   task          the task after the event, or NULL when the event carried none
 *   json          the whole "params" object as compact JSON text
 *   epoch         the daemon run that published the event, or NULL (a daemon older than
 *                 epochs): pass it with seq + 1 to tr_client_subscribe_resume
 */
struct tr_client_event {
	char *name;
	int64_t seq;
	char *subscription;
	char *task_sid;
	char *reservation_sid;
	bool resync;
	bool stale;
	struct tr_task *task;
	char *json;
	char *epoch;
};

/* Free an event returned by tr_client_next_event (NULL is fine). Returns NULL. */
TR_EXPORT struct tr_client_event *tr_client_event_free(struct tr_client_event *ev);

/* ---------------------------------------------------------------------------------------
 * Connecting
 */

/*
 * The default socket path, resolved like taskrouterd does: $TASKROUTERD_SOCKET when set and
 * non-empty, else $XDG_RUNTIME_DIR/taskrouterd/socket, else /run/taskrouterd/socket.
 * Returns a malloc'd string (caller frees) or NULL on ENOMEM.
 */
TR_EXPORT char *tr_client_default_socket_path(void);

/*
 * Connect to the daemon at path (NULL: tr_client_default_socket_path()), waiting at most
 * timeout_ms. Before anything is sent, the server's credentials (SO_PEERCRED) are checked:
 * it must run as the caller's uid or root, or as the uid named in $TASKROUTERD_TRUST_UID
 * (for a member of the daemon's --allow-group group); otherwise -EPERM. On success *ret is
 * a new client the caller owns (tr_client_close). Returns 0, -EINVAL, -ENOMEM,
 * -ENAMETOOLONG, -ETIMEDOUT, -EPERM or the errno of connect(2) (-ENOENT, -ECONNREFUSED,
 * -EACCES, ...).
 */
TR_EXPORT int tr_client_connect(const char *path, int timeout_ms, struct tr_client **ret);

/*
 * Close the connection and free the client (NULL is fine). Pending asynchronous calls get
 * their reply callback with errnum -ECANCELED before this returns. Queued events are
 * dropped. Must not be called from inside a callback of the same client. Returns NULL.
 */
TR_EXPORT struct tr_client *tr_client_close(struct tr_client *c);

/* ---------------------------------------------------------------------------------------
 * Blocking calls
 *
 * These wait up to timeout_ms for the reply. While waiting they also read other traffic:
 * replies to asynchronous calls fire their callbacks, and events go to the event callback
 * if one is set, otherwise to the queue read by tr_client_next_event. A call that times
 * out leaves the connection usable; its late reply is discarded.
 */

/*
 * Call method with params (JSON object text, or NULL for no params). On success returns 0
 * and, if ret_result is not NULL, *ret_result gets the "result" as compact JSON text (caller
 * frees). On failure returns a negative errno and fills *ret_err when not NULL (release it
 * with tr_client_error_done).
 */
TR_EXPORT int tr_client_call(struct tr_client *c, const char *method, const char *params_json,
	int timeout_ms, char **ret_result, struct tr_client_error *ret_err);

/*
 * events.subscribe. events and tasks are NULL-terminated arrays of event names and task sids
 * (NULL for all); an event name the daemon does not publish is refused (-EREMOTEIO, code
 * TR_CLIENT_INVALID_PARAMS, data {param: "events", reason, values: [the valid names]});
 * since is the first seq wanted, or -1 for "from now". On success *ret_result (if not NULL)
 * gets the result JSON text: {"subscription":..,"epoch":..,"seq":N,"tasks":[...],"next":..}.
 * A since sent without its epoch cannot be replayed (seqs restart in every daemon run): the
 * daemon answers -EREMOTEIO with code TR_CLIENT_REPLAY_GONE, as it does when the events are
 * no longer kept; then subscribe again without since and re-list. To resume, use
 * tr_client_subscribe_resume, which sends the epoch and handles the gap.
 */
TR_EXPORT int tr_client_subscribe(struct tr_client *c, const char *const *events,
	const char *const *tasks, int64_t since, int timeout_ms, char **ret_result,
	struct tr_client_error *ret_err);

/*
 * Where a subscription starts (tr_client_subscribe_resume). Free with
 * tr_client_subscription_free.
 *   id          the subscription id (for events.unsubscribe)
 *   epoch       the daemon run's epoch, or NULL from a daemon older than epochs
 *   seq         the last seq assigned when subscribing: live events follow from seq + 1 (a
 *               replay, when there is one, comes first and starts at since)
 *   gap         true when the events from since on could not be replayed (the daemon
 *               restarted, they are no longer kept, ...): they are lost to this client. The
 *               subscription is then from now, and the tasks of json are the current state:
 *               replace what you knew with them (and the pages after its "next", with
 *               task.list {after}). False for a replay or a subscription from now.
 *   gap_reason  with gap: the daemon's reason ("epoch", "no-epoch", "expired", "future", or
 *               "unknown" when it gave none); NULL otherwise
 *   gap_data    with gap: the data of the daemon's refusal as JSON text, or NULL
 *   json        the events.subscribe result as JSON text (for tr_task_list_parse)
 */
struct tr_client_subscription {
	char *id;
	char *epoch;
	int64_t seq;
	bool gap;
	char *gap_reason;
	char *gap_data;
	char *json;
};

TR_EXPORT struct tr_client_subscription *tr_client_subscription_free(
	struct tr_client_subscription *s);

/*
 * events.subscribe that resumes a stream: after a lost connection or a daemon restart, pass
 * the epoch and seq + 1 of the last event handled (ev->epoch, ev->seq + 1; or the epoch and
 * seq + 1 of the last subscription when no event came). since < 0 subscribes from now (epoch
 * is then ignored). When the daemon cannot replay from there (TR_CLIENT_REPLAY_GONE: another
 * daemon run, events no longer kept, no epoch), this subscribes again from now and succeeds
 * with (*ret)->gap set: the caller must re-list. So nothing is ever skipped silently.
 * Returns 0 and *ret (caller frees), or a negative errno as tr_client_call (the daemon's
 * refusal of the filters, for example).
 */
TR_EXPORT int tr_client_subscribe_resume(struct tr_client *c, const char *const *events,
	const char *const *tasks, const char *epoch, int64_t since, int timeout_ms,
	struct tr_client_subscription **ret, struct tr_client_error *ret_err);

/*
 * Wait up to timeout_ms for the next event (0 only checks what is already readable).
 * Returns 1 with *ret set to a new event (free with tr_client_event_free), 0 when none came
 * in time (timeout_ms >= 0), or a negative errno when the connection failed. Events only
 * arrive here when no event callback is set (with one set this returns -EINVAL).
 */
TR_EXPORT int tr_client_next_event(
	struct tr_client *c, int timeout_ms, struct tr_client_event **ret);

/* ---------------------------------------------------------------------------------------
 * Asynchronous interface
 *
 * Typical use with poll():
 *   pfd.fd = tr_client_fd(c);
 *   pfd.events = tr_client_events(c);     // POLLIN, plus POLLOUT while output is queued
 *   poll(&pfd, 1, tr_client_timeout_ms(c));
 *   r = tr_client_process(c);             // r < 0: the connection is dead
 * Call tr_client_process when the fd is ready *and* when the timeout expires with no input:
 * that is where calls whose deadline passed fail with -ETIMEDOUT. Re-read tr_client_events
 * and tr_client_timeout_ms before every wait (after any callback or tr_client_call_async:
 * both can change). A loop that only ever watches for POLLIN still works: requests are
 * written by tr_client_call_async itself, and POLLOUT is needed only for a request that did
 * not fit in the socket buffer (then tr_client_events says so). The GLib adapter
 * (taskrouter/client-glib.h) does all this for a GMainContext.
 *
 * The socket is non-blocking. Callbacks fire only from inside tr_client_process, the
 * blocking calls, tr_client_next_event and tr_client_close, never from tr_client_call_async.
 */

/*
 * Reply callback. On success err is NULL and result_json is the result as JSON text; on
 * failure result_json is NULL and err describes it. Both are borrowed until the callback
 * returns. The callback may start new asynchronous calls (tr_client_call_async) but must
 * not close the client, make blocking calls or call tr_client_process (-EDEADLK).
 */
typedef void (*tr_client_reply_cb)(struct tr_client *c, const char *result_json,
	const struct tr_client_error *err, void *userdata);

/*
 * Event callback: ev is borrowed until the callback returns (copy what you keep, e.g. with
 * tr_task_dup). Same restrictions as the reply callback.
 */
typedef void (*tr_client_event_cb)(
	struct tr_client *c, const struct tr_client_event *ev, void *userdata);

/* The socket to watch; -1 when c is NULL. Owned by the client: do not close or read it. */
TR_EXPORT int tr_client_fd(const struct tr_client *c);

/*
 * The poll(2) events to watch the fd for now: POLLIN always, plus POLLOUT while output is
 * queued (what tr_client_call_async could not write at once). Returns the bits (> 0), the
 * connection's errno once it is dead (stop watching; tr_client_process returns the same),
 * or -EINVAL when c is NULL. For GIOCondition, POLLIN and POLLOUT are G_IO_IN and G_IO_OUT.
 */
TR_EXPORT int tr_client_events(const struct tr_client *c);

/*
 * True when output is queued: watch the fd for POLLOUT as well. The same as
 * (tr_client_events(c) & POLLOUT), kept for existing callers; not deprecated.
 */
TR_EXPORT bool tr_client_wants_write(const struct tr_client *c);

/*
 * Milliseconds until tr_client_process has work to do without input: until the earliest
 * asynchronous call deadline (0 when one has passed), or 0 at once when a send found the
 * connection broken or events are queued for a newly set event callback. -1 when there is
 * nothing of the kind (wait for the fd only). Use it as the poll timeout and call
 * tr_client_process when it expires.
 */
TR_EXPORT int tr_client_timeout_ms(const struct tr_client *c);

/*
 * Do the non-blocking work: write queued output, read what is available, dispatch complete
 * replies (reply callbacks) and events (event callback or queue), and fail expired calls
 * with -ETIMEDOUT. Safe to call at any time (nothing to do is not an error). Returns 0, or
 * a negative errno when the connection is dead; in that case every pending call's callback
 * has fired with that errno.
 */
TR_EXPORT int tr_client_process(struct tr_client *c);

/*
 * Send a request without waiting. params_json is a JSON object text or NULL. timeout_ms < 0
 * means no deadline. The request is written at once, as far as the socket takes it without
 * blocking; the rest stays queued (tr_client_events then includes POLLOUT). A connection
 * found broken while writing is reported by the next tr_client_process (tr_client_timeout_ms
 * is then 0), not here. On success returns 0, stores the request id in *ret_id (if not
 * NULL), and cb (which may be NULL) fires exactly once later: with the reply, with
 * -ETIMEDOUT at the deadline (from tr_client_process, see tr_client_timeout_ms), with the
 * connection error, or with -ECANCELED from tr_client_close. If this returns an error, cb
 * is never called.
 */
TR_EXPORT int tr_client_call_async(struct tr_client *c, const char *method, const char *params_json,
	int timeout_ms, tr_client_reply_cb cb, void *userdata, int64_t *ret_id);

/*
 * Set (or with cb NULL, clear) the event callback. While set, events are delivered to it
 * instead of the tr_client_next_event queue; events already queued are delivered from the
 * next tr_client_process.
 */
TR_EXPORT void tr_client_set_event_cb(struct tr_client *c, tr_client_event_cb cb, void *userdata);

/* ---------------------------------------------------------------------------------------
 * Tasks
 *
 * struct tr_task is an immutable snapshot of one Task object (the daemon's camelCase JSON).
 * String accessors return pointers borrowed from the task (valid until tr_task_free) or NULL
 * when the member is absent or not a string.
 */

/* Parse a Task JSON object. Returns 0 and a new task (*ret), -EBADMSG or -ENOMEM. */
TR_EXPORT int tr_task_parse(const char *json, struct tr_task **ret);
TR_EXPORT struct tr_task *tr_task_dup(const struct tr_task *t); /* NULL on ENOMEM */
TR_EXPORT struct tr_task *tr_task_free(struct tr_task *t);      /* NULL is fine; returns NULL */

TR_EXPORT const char *tr_task_sid(const struct tr_task *t);
TR_EXPORT const char *tr_task_status(const struct tr_task *t); /* derived, e.g. "transferring" */
TR_EXPORT const char *tr_task_wire_status(const struct tr_task *t);
TR_EXPORT const char *tr_task_queue_name(const struct tr_task *t);
TR_EXPORT const char *tr_task_channel(const struct tr_task *t); /* taskChannelUniqueName */
TR_EXPORT const char *tr_task_reason(const struct tr_task *t);
TR_EXPORT const char *tr_task_version(const struct tr_task *t);
TR_EXPORT const char *tr_task_reservation_sid(const struct tr_task *t);
/* Integer members; -1 when absent. */
TR_EXPORT int64_t tr_task_priority(const struct tr_task *t);
TR_EXPORT int64_t tr_task_age(const struct tr_task *t);

/* Any string member by its JSON name ("queueSid", "workflowName", ...). */
TR_EXPORT const char *tr_task_get_string(const struct tr_task *t, const char *key);
/* Any integer member: 0 and *ret, -ENOENT when absent or null, -EINVAL when not an integer. */
TR_EXPORT int tr_task_get_int(const struct tr_task *t, const char *key, int64_t *ret);
/* Any member as JSON text ("attributes", "transfers", ...): malloc'd, or NULL when absent or
 * on ENOMEM. */
TR_EXPORT char *tr_task_get_json(const struct tr_task *t, const char *key);
/* The whole task as compact JSON text: malloc'd, NULL on ENOMEM. */
TR_EXPORT char *tr_task_to_json(const struct tr_task *t);

/*
 * Parse the "tasks" array of a task.list or events.subscribe result (JSON text, as from
 * tr_client_call or a reply callback). Returns 0 with a malloc'd array of *ret_n tasks
 * (free with tr_task_list_free), -EBADMSG or -ENOMEM.
 */
TR_EXPORT int tr_task_list_parse(const char *json, struct tr_task ***ret_tasks, size_t *ret_n);

/* Free an array of tasks from tr_client_task_list or tr_task_list_parse (NULL is fine). */
TR_EXPORT void tr_task_list_free(struct tr_task **tasks, size_t n);

/* ---------------------------------------------------------------------------------------
 * Any result
 *
 * struct tr_result is an immutable parsed JSON value, for results without a type of their
 * own (daemon.status, rpc.describe, events.subscribe, daemon.updateToken, ...; the members
 * are in PROTOCOL.md). Values are found by a path: member names separated by '.', and a
 * decimal segment indexes an array:
 *   "state", "upstream.state", "limits.maxConnections", "tasks.0.sid", "methods.3.name"
 * NULL or "" is the whole value. A member whose name contains '.' cannot be reached by a
 * path (no daemon result has one). Accessors take a NULL result as "absent".
 *
 *   const char *tr_result_get_string(r, path)   borrowed from r (valid until it is freed);
 *                                               NULL when absent or not a string
 *   int tr_result_get_int(r, path, int64_t *ret)  0 and *ret; -ENOENT when absent or null;
 *   int tr_result_get_bool(r, path, bool *ret)    -EINVAL when of another type (a number
 *                                                 that is not an integer, for get_int) or
 *                                                 when r or ret is NULL
 *   int tr_result_length(r, path)     items of an array, or members of an object (>= 0);
 *                                     -ENOENT when absent or null, -EINVAL for another type
 *   const char *tr_result_key(r, path, i)   the name of the i-th member of the object at
 *                                     path (document order), borrowed; NULL past the end or
 *                                     when not an object: iterate with tr_result_length
 *   char *tr_result_get_json(r, path) the value as compact JSON text: malloc'd, or NULL when
 *                                     absent or on ENOMEM. With path NULL, the whole result;
 *                                     pass an object's text on to tr_task_parse,
 *                                     tr_reservation_parse, ... to read it as one
 *
 * Example, daemon.status:
 *   struct tr_result *st = NULL;
 *   int64_t conns;
 *   if (tr_client_call_result(c, "daemon.status", NULL, 5000, &st, &err) == 0) {
 *           printf("%s\n", tr_result_get_string(st, "state"));
 *           if (tr_result_get_int(st, "connections", &conns) == 0) ...
 *           tr_result_free(st);
 *   }
 */

/* Parse any JSON text (a result from tr_client_call or a reply callback). Returns 0 and a
 * new result (*ret, the caller's), -EINVAL, -EBADMSG or -ENOMEM. */
TR_EXPORT int tr_result_parse(const char *json, struct tr_result **ret);
TR_EXPORT struct tr_result *tr_result_dup(const struct tr_result *r); /* NULL on ENOMEM */
TR_EXPORT struct tr_result *tr_result_free(struct tr_result *r); /* NULL is fine; returns NULL */
TR_EXPORT const char *tr_result_get_string(const struct tr_result *r, const char *path);
TR_EXPORT int tr_result_get_int(const struct tr_result *r, const char *path, int64_t *ret);
TR_EXPORT int tr_result_get_bool(const struct tr_result *r, const char *path, bool *ret);
TR_EXPORT int tr_result_length(const struct tr_result *r, const char *path);
TR_EXPORT const char *tr_result_key(const struct tr_result *r, const char *path, size_t i);
TR_EXPORT char *tr_result_get_json(const struct tr_result *r, const char *path);

/*
 * tr_client_call returning the result parsed: on success 0 and, if ret_result is not NULL,
 * *ret_result gets a new struct tr_result (caller frees with tr_result_free). Errors as for
 * tr_client_call.
 */
TR_EXPORT int tr_client_call_result(struct tr_client *c, const char *method,
	const char *params_json, int timeout_ms, struct tr_result **ret_result,
	struct tr_client_error *ret_err);

/* ---------------------------------------------------------------------------------------
 * Typed helpers for the task methods. Each is a blocking call with timeout_ms. On success
 * they return 0 and, if ret_task is not NULL, *ret_task gets the updated Task (caller
 * frees with tr_task_free). Errors are as for tr_client_call. Optional string arguments
 * may be NULL (omitted from the request).
 */

/* task.list {status?}: *ret_tasks gets a malloc'd array of *ret_n tasks (tr_task_list_free). */
TR_EXPORT int tr_client_task_list(struct tr_client *c, const char *status, int timeout_ms,
	struct tr_task ***ret_tasks, size_t *ret_n, struct tr_client_error *ret_err);
TR_EXPORT int tr_client_task_get(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_task **ret_task, struct tr_client_error *ret_err);
TR_EXPORT int tr_client_task_complete(struct tr_client *c, const char *sid, const char *reason,
	int timeout_ms, struct tr_task **ret_task, struct tr_client_error *ret_err);
TR_EXPORT int tr_client_task_wrap_up(struct tr_client *c, const char *sid, const char *reason,
	int timeout_ms, struct tr_task **ret_task, struct tr_client_error *ret_err);
/* attributes_json must be a JSON object text. */
TR_EXPORT int tr_client_task_set_attributes(struct tr_client *c, const char *sid,
	const char *attributes_json, int timeout_ms, struct tr_task **ret_task,
	struct tr_client_error *ret_err);
/* time: an RFC 3339 string, or all digits for epoch seconds (sent as a JSON integer). */
TR_EXPORT int tr_client_task_set_virtual_start_time(struct tr_client *c, const char *sid,
	const char *time, int timeout_ms, struct tr_task **ret_task,
	struct tr_client_error *ret_err);
TR_EXPORT int tr_client_task_fetch_latest_version(struct tr_client *c, const char *sid,
	int timeout_ms, struct tr_task **ret_task, struct tr_client_error *ret_err);
TR_EXPORT int tr_client_task_hold(struct tr_client *c, const char *sid,
	const char *target_worker_sid, bool on_hold, const char *hold_url, const char *hold_method,
	int timeout_ms, struct tr_task **ret_task, struct tr_client_error *ret_err);
TR_EXPORT int tr_client_task_kick(struct tr_client *c, const char *sid, const char *worker_sid,
	int timeout_ms, struct tr_task **ret_task, struct tr_client_error *ret_err);
/* mode: "WARM", "COLD" or NULL; priority < 0 omits it; attributes_json NULL or an object. */
TR_EXPORT int tr_client_task_transfer(struct tr_client *c, const char *sid, const char *to,
	const char *mode, int64_t priority, const char *attributes_json, int timeout_ms,
	struct tr_task **ret_task, struct tr_client_error *ret_err);
TR_EXPORT int tr_client_task_cancel_transfer(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_task **ret_task, struct tr_client_error *ret_err);
/* hold: 1 on, 0 off, -1 omitted. */
TR_EXPORT int tr_client_task_update_participant(struct tr_client *c, const char *sid, int hold,
	const char *hold_url, const char *hold_method, int timeout_ms, struct tr_task **ret_task,
	struct tr_client_error *ret_err);

/* ---------------------------------------------------------------------------------------
 * Reservations, the worker and its activities
 *
 * struct tr_reservation, struct tr_worker and struct tr_activity are immutable snapshots of
 * the daemon's Reservation, Worker and Activity objects (camelCase JSON, see
 * PROTOCOL.md), read like struct tr_task: string accessors return pointers borrowed from
 * the object (valid until it is freed) or NULL when the member is absent or not a string;
 * integer accessors return -1 when the member is absent or null; boolean accessors return
 * false when it is absent or not a boolean (use *_get_bool to tell these apart).
 *
 * For each TYPE of reservation, worker and activity:
 *   int tr_TYPE_parse(const char *json, struct tr_TYPE **ret)   0, -EINVAL, -EBADMSG, -ENOMEM
 *   struct tr_TYPE *tr_TYPE_dup(const struct tr_TYPE *o)        NULL on ENOMEM
 *   struct tr_TYPE *tr_TYPE_free(struct tr_TYPE *o)             NULL is fine; returns NULL
 *   const char *tr_TYPE_get_string(const struct tr_TYPE *o, const char *key)
 *   int tr_TYPE_get_int(const struct tr_TYPE *o, const char *key, int64_t *ret)
 *   int tr_TYPE_get_bool(const struct tr_TYPE *o, const char *key, bool *ret)
 *            0 and *ret, -ENOENT when absent or null, -EINVAL when of another type
 *   char *tr_TYPE_get_json(const struct tr_TYPE *o, const char *key)   malloc'd, or NULL
 *   char *tr_TYPE_to_json(const struct tr_TYPE *o)                     malloc'd, or NULL
 */

TR_EXPORT int tr_reservation_parse(const char *json, struct tr_reservation **ret);
TR_EXPORT struct tr_reservation *tr_reservation_dup(const struct tr_reservation *r);
TR_EXPORT struct tr_reservation *tr_reservation_free(struct tr_reservation *r);
TR_EXPORT const char *tr_reservation_get_string(const struct tr_reservation *r, const char *key);
TR_EXPORT int tr_reservation_get_int(const struct tr_reservation *r, const char *key, int64_t *ret);
TR_EXPORT int tr_reservation_get_bool(const struct tr_reservation *r, const char *key, bool *ret);
TR_EXPORT char *tr_reservation_get_json(const struct tr_reservation *r, const char *key);
TR_EXPORT char *tr_reservation_to_json(const struct tr_reservation *r);
TR_EXPORT const char *tr_reservation_sid(const struct tr_reservation *r);
/* pending, accepted, rejected, timeout, canceled, rescinded, wrapping or completed */
TR_EXPORT const char *tr_reservation_status(const struct tr_reservation *r);
TR_EXPORT const char *tr_reservation_version(const struct tr_reservation *r);
TR_EXPORT const char *tr_reservation_task_sid(const struct tr_reservation *r);
TR_EXPORT const char *tr_reservation_worker_sid(const struct tr_reservation *r);
/* Seconds the reservation stays pending; -1 when unknown (absent or null). */
TR_EXPORT int64_t tr_reservation_timeout(const struct tr_reservation *r);
/* The embedded Task (member "task"), borrowed from r: do not free it; copy it with
 * tr_task_dup to keep it. NULL when absent. */
TR_EXPORT const struct tr_task *tr_reservation_task(const struct tr_reservation *r);

/*
 * Parse the "reservations" array of a reservation.list result (JSON text). Returns 0 with
 * a malloc'd array of *ret_n reservations (free with tr_reservation_list_free), -EINVAL,
 * -EBADMSG or -ENOMEM.
 */
TR_EXPORT int tr_reservation_list_parse(
	const char *json, struct tr_reservation ***ret_reservations, size_t *ret_n);
/* Free an array of reservations (NULL is fine). */
TR_EXPORT void tr_reservation_list_free(struct tr_reservation **reservations, size_t n);

TR_EXPORT int tr_worker_parse(const char *json, struct tr_worker **ret);
TR_EXPORT struct tr_worker *tr_worker_dup(const struct tr_worker *w);
TR_EXPORT struct tr_worker *tr_worker_free(struct tr_worker *w);
TR_EXPORT const char *tr_worker_get_string(const struct tr_worker *w, const char *key);
TR_EXPORT int tr_worker_get_int(const struct tr_worker *w, const char *key, int64_t *ret);
TR_EXPORT int tr_worker_get_bool(const struct tr_worker *w, const char *key, bool *ret);
TR_EXPORT char *tr_worker_get_json(const struct tr_worker *w, const char *key);
TR_EXPORT char *tr_worker_to_json(const struct tr_worker *w);
TR_EXPORT const char *tr_worker_sid(const struct tr_worker *w);
TR_EXPORT const char *tr_worker_name(const struct tr_worker *w);
TR_EXPORT const char *tr_worker_activity_sid(const struct tr_worker *w);
TR_EXPORT const char *tr_worker_activity_name(const struct tr_worker *w);
TR_EXPORT const char *tr_worker_version(const struct tr_worker *w);
/* Whether TaskRouter may route to the worker (its activity is an available one). */
TR_EXPORT bool tr_worker_available(const struct tr_worker *w);
/* The worker's attributes as JSON text (an object): malloc'd, or NULL when absent or on
 * ENOMEM. */
TR_EXPORT char *tr_worker_attributes(const struct tr_worker *w);

TR_EXPORT int tr_activity_parse(const char *json, struct tr_activity **ret);
TR_EXPORT struct tr_activity *tr_activity_dup(const struct tr_activity *a);
TR_EXPORT struct tr_activity *tr_activity_free(struct tr_activity *a);
TR_EXPORT const char *tr_activity_get_string(const struct tr_activity *a, const char *key);
TR_EXPORT int tr_activity_get_int(const struct tr_activity *a, const char *key, int64_t *ret);
TR_EXPORT int tr_activity_get_bool(const struct tr_activity *a, const char *key, bool *ret);
TR_EXPORT char *tr_activity_get_json(const struct tr_activity *a, const char *key);
TR_EXPORT char *tr_activity_to_json(const struct tr_activity *a);
TR_EXPORT const char *tr_activity_sid(const struct tr_activity *a);
TR_EXPORT const char *tr_activity_name(const struct tr_activity *a);
/* Whether the activity makes the worker available for routing. */
TR_EXPORT bool tr_activity_available(const struct tr_activity *a);
/* Whether it is the worker's current activity. */
TR_EXPORT bool tr_activity_is_current(const struct tr_activity *a);

/* Parse the "activities" array of an activity.list result; as tr_reservation_list_parse. */
TR_EXPORT int tr_activity_list_parse(
	const char *json, struct tr_activity ***ret_activities, size_t *ret_n);
TR_EXPORT void tr_activity_list_free(struct tr_activity **activities, size_t n);
/*
 * The activity of the n in activities whose sid is name_or_sid or, when none is, whose name
 * is exactly name_or_sid (letter case counts, as for worker.setActivity). Borrowed from the
 * array; NULL when there is none or an argument is NULL.
 */
TR_EXPORT const struct tr_activity *tr_activity_list_find(
	struct tr_activity *const *activities, size_t n, const char *name_or_sid);

/* ---------------------------------------------------------------------------------------
 * Typed helpers for the reservation, worker and activity methods. Blocking calls with
 * timeout_ms, like the task helpers: on success they return 0 and, if the ret_ pointer is
 * not NULL, store the updated object there (the caller frees it). Errors are as for
 * tr_client_call; -EINVAL when c or a required argument is NULL (nothing is sent).
 * Wherever a reservation sid is taken, the sid of a task (WT...) means this worker's live
 * reservation for that task.
 */

/*
 * reservation.list {status?}, every page: *ret_reservations gets a malloc'd array of *ret_n
 * reservations (tr_reservation_list_free). status NULL lists the live ones (pending,
 * accepted, wrapping); an ended status lists the recently ended ones the daemon still holds.
 */
TR_EXPORT int tr_client_reservation_list(struct tr_client *c, const char *status, int timeout_ms,
	struct tr_reservation ***ret_reservations, size_t *ret_n, struct tr_client_error *ret_err);
TR_EXPORT int tr_client_reservation_get(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_reservation **ret_reservation, struct tr_client_error *ret_err);
/* reservation.accept: the reservation must be pending. */
TR_EXPORT int tr_client_reservation_accept(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_reservation **ret_reservation, struct tr_client_error *ret_err);
/*
 * reservation.reject {sid, activitySid?}: activity_sid (a WA... sid, or NULL to leave the
 * worker's activity alone) is the activity TaskRouter moves the worker to. To reject into an
 * activity known by name, look its sid up with tr_client_activity_list and
 * tr_activity_list_find.
 */
TR_EXPORT int tr_client_reservation_reject(struct tr_client *c, const char *sid,
	const char *activity_sid, int timeout_ms, struct tr_reservation **ret_reservation,
	struct tr_client_error *ret_err);
/* reservation.wrap (accepted -> wrapping) and reservation.complete. */
TR_EXPORT int tr_client_reservation_wrap(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_reservation **ret_reservation, struct tr_client_error *ret_err);
TR_EXPORT int tr_client_reservation_complete(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_reservation **ret_reservation, struct tr_client_error *ret_err);

/* worker.get {}: the worker as the daemon last heard of it. */
TR_EXPORT int tr_client_worker_get(struct tr_client *c, int timeout_ms,
	struct tr_worker **ret_worker, struct tr_client_error *ret_err);
/*
 * worker.setActivity {activity, rejectPendingReservations?}: activity is a WA... sid or an
 * activity's exact name. With reject_pending, TaskRouter also rejects the worker's pending
 * reservations (refused for an available activity); without it the member is left out.
 * An unknown activity is refused with TR_CLIENT_INVALID_PARAMS, data {param: "activity",
 * values: [the activity names]}. *ret_worker gets the updated worker.
 */
TR_EXPORT int tr_client_worker_set_activity(struct tr_client *c, const char *activity,
	bool reject_pending, int timeout_ms, struct tr_worker **ret_worker,
	struct tr_client_error *ret_err);

/* activity.list {}: the workspace's activities, the current one marked (tr_activity_is_current).
 * *ret_activities gets a malloc'd array of *ret_n activities (tr_activity_list_free). */
TR_EXPORT int tr_client_activity_list(struct tr_client *c, int timeout_ms,
	struct tr_activity ***ret_activities, size_t *ret_n, struct tr_client_error *ret_err);

#ifdef __cplusplus
}
#endif
