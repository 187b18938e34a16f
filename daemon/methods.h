/*
 * methods.h — the JSON-RPC method table: one row per method (name, parameters, result, and
 * the handler or, for a method that sends one upstream request, its request builder). The
 * dispatcher validates every request's parameters from its row and names the bad parameter;
 * rpc.describe is generated from the same rows.
 *
 * This is the engine: row types, lookup, validation, dispatch and describe over a list of
 * table slices. The rows live with the code that serves them: task-methods.c (the Task
 * methods that go upstream) and local-methods.c (the rest, and the daemon's whole table).
 * Depends on rpcsrv.h (struct tr_call), task-json.h (the time format of TIME parameters)
 * and proto; handlers get the daemon as an opaque struct tr_daemon.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tr_json;
struct tr_call;
struct tr_daemon;
struct tr_cache_task;
struct tr_cache_res;
struct tr_wstate;

enum tr_param_type {
	TR_PARAM_STRING,
	TR_PARAM_BOOLEAN,
	TR_PARAM_INTEGER, /* within [min, max] */
	TR_PARAM_OBJECT,
	TR_PARAM_STRINGS, /* an array of strings */
	TR_PARAM_TIME,    /* an RFC 3339 string or integer epoch seconds, within [min, max] */
	TR_PARAM_BOOLEAN_OR_STRING, /* true, false or a string (the SDK's beep, conferenceRecord) */
	_TR_PARAM_TYPE_MAX,
};

/* One parameter. A member that is absent or null is "absent". */
struct tr_param {
	const char *name;
	enum tr_param_type type;
	bool required;
	bool nonempty;    /* TR_PARAM_STRING: "" is refused */
	int64_t min, max; /* TR_PARAM_INTEGER, TR_PARAM_TIME: inclusive bounds */
	/* TR_PARAM_STRING, TR_PARAM_STRINGS: NULL, or the allowed values (NULL-terminated, any
	 * letter case; for STRINGS, of every item), and the reason given for another value (NULL:
	 * "unknown value \"X\""). The error's data lists the allowed values. */
	const char *const *values;
	const char *values_reason;
	size_t max_bytes; /* TR_PARAM_OBJECT: its compact JSON text at most this long (0: any) */
};

/* A row's parameter list: TR_PARAMS(TR_P_SID, TR_P_STRING(...), ...), or TR_P_NONE. */
#define TR_PARAMS(...) ((const struct tr_param[]){ __VA_ARGS__, { .name = NULL } })
#define TR_P_NONE ((const struct tr_param[]){ { .name = NULL } })

/* Parameter rows, for the tables. */
#define TR_P_STRING(n, req, ne) { .name = (n), .type = TR_PARAM_STRING, .required = (req), \
	.nonempty = (ne) }
#define TR_P_BOOLEAN(n, req) { .name = (n), .type = TR_PARAM_BOOLEAN, .required = (req) }
#define TR_P_BOOLEAN_OR_STRING(n) { .name = (n), .type = TR_PARAM_BOOLEAN_OR_STRING }
#define TR_P_OBJECT(n, req) { .name = (n), .type = TR_PARAM_OBJECT, .required = (req) }
/* A Task's attributes: an object within TaskRouter's size limit. */
#define TR_P_ATTRIBUTES(req) { .name = "attributes", .type = TR_PARAM_OBJECT, .required = (req), \
	.max_bytes = TR_TASK_ATTRIBUTES_MAX }
#define TR_P_STRINGS(n) { .name = (n), .type = TR_PARAM_STRINGS }
/* An array of strings, each one of vals (a NULL-terminated array). */
#define TR_P_STRINGS_OF(n, vals) { .name = (n), .type = TR_PARAM_STRINGS, .values = (vals) }
#define TR_P_INTEGER(n, lo, hi) { .name = (n), .type = TR_PARAM_INTEGER, .min = (lo), .max = (hi) }
/* The SID that names a method's object: a required, non-empty string. */
#define TR_P_SID TR_P_STRING("sid", true, true)

/* What a validated request's upstream call is about. */
enum tr_methods_kind {
	TR_METHODS_TASK,        /* the reply is a Task */
	TR_METHODS_TRANSFER,    /* the reply is a Transfer (transfer, cancelTransfer) */
	TR_METHODS_RESERVATION, /* the reply is the Reservation */
	TR_METHODS_RES_IGNORED, /* the reply is not read (conference, updateParticipant) */
	TR_METHODS_WORKER,      /* the reply is the Worker */
	TR_METHODS_CREATED,     /* the reply is a new Task: only its sid is returned */
};

struct tr_methods_req {
	char path[256];
	const char *method;      /* "GET" or "POST" */
	const char *api_version; /* "v1" or "v2" */
	struct tr_json *params;  /* owned: free with tr_task_methods_req_done */
	int64_t if_match;        /* -1: none */
	enum tr_methods_kind kind;
};

struct tr_methods_err {
	int code;           /* TR_RPC_INVALID_PARAMS, TR_RPC_NOT_FOUND, TR_RPC_INVALID_STATE, ... */
	const char *param;  /* the parameter at fault */
	const char *reason; /* static text, or text in buf */
	const char *const *values; /* a value outside the row's values: the allowed ones */
	bool unknown_activity;     /* param names no activity: the reply lists the activities */
	char buf[96];
};

/* What a request builder sees: validated params and the task they name (never NULL for the
 * Task and Reservation rows), the reservation (Reservation rows) and the worker model (Worker
 * rows, and Reservation rows that name an activity). */
struct tr_methods_ctx {
	const struct tr_json *params;
	const struct tr_cache_task *task;
	const struct tr_cache_res *res;
	const struct tr_wstate *wstate;
	const char *workspace_sid, *worker_sid; /* "" when unknown */
	bool version_check;
};

struct tr_method {
	const char *name;
	const struct tr_param *params; /* ends at the first row without a name (TR_PARAMS) */
	const char *result; /* for rpc.describe */
	/* Serves a request whose params passed the row's checks (params is an object or NULL).
	 * Must end call. Rows with a builder use the upstream round trip of their module
	 * (task-methods.c, worker-methods.c). */
	void (*handle)(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
		const struct tr_json *params);
	/* Builds the upstream request into r (path, method, params object already allocated in
	 * r->params). Returns 0, -EINVAL with err filled in (a state the row cannot check, such
	 * as TR_RPC_INVALID_STATE: parameters were checked before), or -ENOMEM. */
	int (*build)(const struct tr_methods_ctx *ctx, struct tr_methods_req *r,
		struct tr_methods_err *err);
	/* Members the row does not list are refused (-32602 naming the member) instead of
	 * ignored: the SDK would send them upstream under a made-up key ("undefined"). */
	bool strict;
};

/* A table slice: the rows of one module. */
struct tr_method_table {
	const struct tr_method *rows;
	size_t n;
};

/* Run m's builder in x: r starts as a POST with an empty params object, no If-Match, kind
 * TR_METHODS_TASK. Returns 0 (*ret owns its params), -EINVAL (err filled in by the builder)
 * or -ENOMEM. */
int tr_methods_build(const struct tr_method *m, const struct tr_methods_ctx *x,
	struct tr_methods_req *ret, struct tr_methods_err *err);

/* The row named name in tables (NULL-terminated), or NULL. */
const struct tr_method *tr_methods_find(const struct tr_method_table *const *tables,
	const char *name);

/* Check params (an object, or NULL when absent) against m's parameter rows, in order, then
 * (strict rows) that it has no other member. Returns 0, or -EINVAL with err filled in (code
 * TR_RPC_INVALID_PARAMS; err->param may point into params). */
int tr_methods_validate(const struct tr_method *m, const struct tr_json *params,
	struct tr_methods_err *err);

/* Find method in tables, validate params from its row (an object, or NULL when absent; any
 * other type is refused as "params must be an object") and call its handler with d. Always
 * ends call, now or later. */
void tr_methods_dispatch(const struct tr_method_table *const *tables, struct tr_daemon *d,
	struct tr_call *call, const char *method, const struct tr_json *params);

/* Reply to call with an invalid-params error naming param (data: {param, reason}). */
void tr_methods_invalid_param(struct tr_call *call, const char *param, const char *reason);
/* The same for a failed validation: err's values, when set, are listed in the message and in
 * data.values. */
void tr_methods_invalid_params(struct tr_call *call, const struct tr_methods_err *err);
/* Reply with TR_RPC_NOT_FOUND "unknown task" and data {sid}. */
void tr_methods_unknown_task(struct tr_call *call, const char *sid);

/* The rpc.describe result, generated from tables and the event names events (NULL-terminated).
 * Caller owns it; NULL on ENOMEM. */
struct tr_json *tr_methods_describe(const struct tr_method_table *const *tables,
	const char *const *events);
