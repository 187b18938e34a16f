/*
 * methods.h — the JSON-RPC method table: validation, the exact upstream request of each
 * Task method (spec §4.2), reply handling, events.*, daemon.* and rpc.describe.
 *
 * The request builders are pure (tr_methods_build) so tests check them without a loop.
 * Replies go back through struct tr_call, which rpcsrv.c implements.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tr_json;
struct tr_daemon;
struct tr_rpcsrv;
struct tr_cache_task;

/* ---- implemented by rpcsrv.c ---- */

/* One request being answered. Exactly one of result/error ends it (and frees it). */
struct tr_call;
/* Takes ownership of result (NULL: internal error). */
void tr_call_result(struct tr_call *call, struct tr_json *result);
/* Takes ownership of data (may be NULL). */
void tr_call_error(struct tr_call *call, int code, const char *message, struct tr_json *data);
/* The connection, for subscriptions; NULL when it is closing. Valid until the call ends. */
void *tr_call_owner(struct tr_call *call);
/* tr_subs_send_cb for connections: queue a framed buffer (takes ownership). */
int tr_rpcsrv_send(void *owner, char *buf, size_t len);
/* Add "connections" to status and the server's counters to counters. s may be NULL. */
void tr_rpcsrv_fill_status(const struct tr_rpcsrv *s, struct tr_json *status,
	struct tr_json *counters);

/* ---- methods.c ---- */

/* Handle one request. Always ends call (now or when the upstream answers). params is
 * borrowed (NULL when absent). */
void tr_methods_dispatch(struct tr_daemon *d, struct tr_call *call, const char *method,
	const struct tr_json *params);

/* A connection closed: drop its subscriptions. */
void tr_methods_conn_closed(struct tr_daemon *d, void *owner);

enum tr_methods_kind {
	TR_METHODS_TASK,     /* the reply is a Task */
	TR_METHODS_TRANSFER, /* the reply is a Transfer (transfer, cancelTransfer) */
};

struct tr_methods_req {
	char path[256];
	const char *method;      /* "GET" or "POST" */
	const char *api_version; /* "v1" or "v2" */
	struct tr_json *params;  /* owned: free with tr_methods_req_done */
	int64_t if_match;        /* -1: none */
	enum tr_methods_kind kind;
};

struct tr_methods_err {
	int code;           /* TR_RPC_INVALID_PARAMS, TR_RPC_NOT_FOUND, TR_RPC_INVALID_STATE, ... */
	const char *param;  /* for invalid params */
	const char *reason; /* static text */
};

/*
 * Validate a Task method's params and build its upstream request. task is the cached task
 * named by params.sid (NULL when unknown): params are checked first, then the task.
 * Returns 0 and fills ret, -EINVAL with err filled in, -ENOENT when method is not a Task
 * method that sends a request, or -ENOMEM.
 */
int tr_methods_build(const char *method, const struct tr_json *params,
	const struct tr_cache_task *task, const char *workspace_sid, const char *worker_sid,
	bool version_check, struct tr_methods_req *ret, struct tr_methods_err *err);
void tr_methods_req_done(struct tr_methods_req *r);

/* The rpc.describe result. Caller owns it. */
struct tr_json *tr_methods_describe(void);
