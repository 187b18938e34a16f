/*
 * rpcsrv.h — the Unix-socket JSON-RPC server: the listening socket, peer credential checks,
 * per-connection framing, the in-flight, output-queue and connection limits, and write
 * batching. It parses requests and hands each one to a dispatch callback as a struct tr_call,
 * which the callee ends exactly once with tr_call_result or tr_call_error.
 *
 * It knows nothing of methods, the cache or the daemon: it depends on libuv, proto/ and the
 * logger only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct tr_json;
struct tr_outq_shared;
struct tr_rpcsrv;

/* One request being answered. Exactly one of tr_call_result/tr_call_error ends it (and frees
 * it); until then the connection stays allocated, even if the client has gone. */
struct tr_call;

/* Takes ownership of result (NULL: an internal error is sent instead). */
void tr_call_result(struct tr_call *call, struct tr_json *result);
/* Takes ownership of data (may be NULL). message is copied. */
void tr_call_error(struct tr_call *call, int code, const char *message, struct tr_json *data);
/* The connection, as an opaque owner for subscriptions and tr_rpcsrv_send; NULL when it is
 * closing. Valid until the closed handler runs for it. */
void *tr_call_owner(struct tr_call *call);
/* The caller's uid (SO_PEERCRED at accept). */
uid_t tr_call_peer_uid(const struct tr_call *call);
/* Is the caller the daemon's own uid or root (not a member of --allow-group)? */
bool tr_call_from_owner(const struct tr_call *call);

/* Queue a framed message for the connection `owner` (from tr_call_owner): head, then the whole
 * of tail when it is not NULL (a buffer shared with other connections, of which the queue takes
 * a reference of its own: see outq.h). Takes ownership of head in all cases. Returns 0, or
 * negative errno when the connection is closing or over its hard output limit (the connection
 * is then being closed). Matches tr_subs_send_cb. */
int tr_rpcsrv_send(void *owner, char *head, size_t head_len, struct tr_outq_shared *tail);

struct tr_rpcsrv_options {
	/* Bound when listen_fd < 0. It must fit sun_path. Its directory is created (0700, or
	 * 0710 with allow_group's group) and must be owned by our uid or root and not writable
	 * by group or others. A live socket there is refused, a stale one replaced. The socket
	 * is made 0600 (0660 with allow_group's group) and unlinked at close. */
	const char *socket_path;
	int listen_fd;          /* >= 0: an already-listening socket (socket activation) */
	size_t max_connections; /* 0: TR_MAX_CONNECTIONS_DEFAULT */
	bool allow_group_set;   /* besides our uid and root, members of allow_group may connect */
	gid_t allow_group;
	unsigned frame_idle_ms; /* 0: TR_FRAME_IDLE_MS_DEFAULT */
};

struct tr_rpcsrv_handlers {
	/* A request: end call exactly once, now or later. method and params are borrowed for the
	 * duration of the callback (params NULL when absent; any JSON type). */
	void (*dispatch)(void *userdata, struct tr_call *call, const char *method,
		const struct tr_json *params);
	/* A connection is gone: forget everything keyed by owner. Calls still in flight for it
	 * end later as usual (their replies are dropped). */
	void (*closed)(void *userdata, void *owner);
	void *userdata;
};

/* The server's counters, for the status method. */
struct tr_rpcsrv_stats {
	size_t connections;        /* accepted and open */
	uint64_t refused_limit;    /* over max_connections */
	uint64_t refused_quota;    /* over the per-uid share (another user than the owner) */
	uint64_t refused_fds;      /* accept failed for want of file descriptors */
	uint64_t refused_cred;     /* no credentials, or a peer that may not connect */
	uint64_t idle_timeouts;    /* closed: a partial frame and silence for frame_idle_ms */
	uint64_t slow;             /* disconnected for their output queue */
	uint64_t inflight_pauses;  /* reading paused at TR_RPC_MAX_INFLIGHT */
	uint64_t frame_errors;     /* bad length prefix: closed */
	uint64_t parse_errors;     /* not JSON-RPC: refused with an error reply */
};

/*
 * Start listening. opts and h are copied. Returns 0 and *ret, or negative errno: -EINVAL
 * for options that name no socket or handlers without dispatch (a caller's mistake, not
 * logged); any other error is logged. On an error after a handle was opened, the caller must
 * still run the loop to drain it.
 */
int tr_rpcsrv_new(uv_loop_t *loop, const struct tr_rpcsrv_options *opts,
	const struct tr_rpcsrv_handlers *h, struct tr_rpcsrv **ret);

/* Stop accepting, flush clients (bounded by a deadline), close every handle; done fires
 * when all are closed. Then tr_rpcsrv_free. s may be NULL (done fires at once). */
void tr_rpcsrv_close(struct tr_rpcsrv *s, void (*done)(void *userdata), void *userdata);
struct tr_rpcsrv *tr_rpcsrv_free(struct tr_rpcsrv *s);

/* The connection limit in force (max_connections, lowered to fit the fd limit). */
size_t tr_rpcsrv_max_connections(const struct tr_rpcsrv *s);

/* Fill *ret. s may be NULL (all zero). */
void tr_rpcsrv_get_stats(const struct tr_rpcsrv *s, struct tr_rpcsrv_stats *ret);
