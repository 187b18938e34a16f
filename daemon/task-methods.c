/*
 * task-methods.c — the Task methods that go upstream (see task-methods.h).
 *
 * Each row's builder turns validated params into the exact request of the official SDK; the
 * shared round trip sends it through the bridge and maps the reply: the Task (or Transfer)
 * applied to the cache and returned, a 412 answered with the current version after a GET, a
 * reply that cannot be applied answered "refresh pending" while a GET brings the cache up.
 */
#include "task-methods.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bridge.h"
#include "cache.h"
#include "config.h"
#include "daemon.h"
#include "json.h"
#include "log.h"
#include "rpc.h"
#include "rpcsrv.h"
#include "task-json.h"
#include "tr-limits.h"
#include "upcall.h"

/* ---- request builders ---- */

static int fail(struct tr_methods_err *err, int code, const char *param, const char *reason) {
	err->code = code;
	err->param = param;
	err->reason = reason;
	return -EINVAL;
}

static bool present(const struct tr_json *v) {
	return v && v->type != TR_JSON_NULL;
}

/* v1 Task update: POST (or GET) Workspaces/WS/Tasks/WT, If-Match with the version check. */
static void task_path(const struct tr_methods_ctx *x, struct tr_methods_req *r, bool if_match) {
	snprintf(r->path, sizeof(r->path), "Workspaces/%s/Tasks/%s", x->workspace_sid,
		x->task->sid);
	r->api_version = "v1";
	r->if_match = if_match && x->version_check ? x->task->version : -1;
}

/* v2 worker participant calls: POST Workspaces/WS/Workers/WK/<tail>. */
static void worker_path(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	const char *tail) {
	snprintf(r->path, sizeof(r->path), "Workspaces/%s/Workers/%s/%s", x->workspace_sid,
		x->worker_sid, tail);
	r->api_version = "v2";
}

/* Copy the optional string params[name] to o[key]. */
static void put_opt_string(struct tr_json *o, const char *key, const struct tr_json *params,
	const char *name, int *e) {
	const char *s = tr_json_get_string(params, name);

	if (s) {
		tr_json_put(o, key, tr_json_new_string(s), e);
	}
}

static int build_close(const struct tr_methods_ctx *x, struct tr_methods_req *r, bool complete) {
	const char *reason = tr_json_get_string(x->params, "reason");
	int e = 0;

	task_path(x, r, true);
	tr_json_put(r->params, "AssignmentStatus",
		tr_json_new_string(complete ? "completed" : "wrapping"), &e);
	if (complete || (reason && *reason)) {
		tr_json_put(r->params, "Reason", tr_json_new_string(reason), &e);
	}
	return e;
}

static int build_complete(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	return build_close(x, r, true);
}

static int build_wrapup(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	return build_close(x, r, false);
}

static int build_set_attributes(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	int e = 0;

	task_path(x, r, true);
	tr_json_put(r->params, "Attributes", tr_json_dup(tr_json_get(x->params, "attributes")), &e);
	return e;
}

static int build_set_vst(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	const struct tr_json *v = tr_json_get(x->params, "time");
	int64_t when = 0;
	char buf[40];
	int e = 0;

	/* the row checked that it parses and is in range */
	if (tr_json_is_int(v)) {
		when = v->u.num.i;
	} else {
		(void)tr_task_json_time_parse(v->u.str.s, &when);
	}
	task_path(x, r, true);
	tr_task_json_time_format(when, buf, sizeof(buf));
	tr_json_put(r->params, "VirtualStartTime", tr_json_new_string(buf), &e);
	return e;
}

static int build_fetch(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	task_path(x, r, false);
	r->method = "GET";
	return 0;
}

static int build_hold(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	bool on = false;
	int e = 0;

	(void)tr_json_get_bool(x->params, "onHold", &on);
	worker_path(x, r, "HoldWorkerParticipant");
	tr_json_put(r->params, "TaskSid", tr_json_new_string(x->task->sid), &e);
	tr_json_put(r->params, "TargetWorkerSid",
		tr_json_new_string(tr_json_get_string(x->params, "targetWorkerSid")), &e);
	tr_json_put(r->params, "Hold", tr_json_new_bool(on), &e);
	put_opt_string(r->params, "HoldUrl", x->params, "holdUrl", &e);
	put_opt_string(r->params, "HoldMethod", x->params, "holdMethod", &e);
	return e;
}

static int build_kick(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	int e = 0;

	worker_path(x, r, "KickWorkerParticipant");
	tr_json_put(r->params, "TaskSid", tr_json_new_string(x->task->sid), &e);
	tr_json_put(r->params, "TargetWorkerSid",
		tr_json_new_string(tr_json_get_string(x->params, "workerSid")), &e);
	return e;
}

static int build_update_participant(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	bool hold;
	int e = 0;

	worker_path(x, r, "CustomerParticipant");
	tr_json_put(r->params, "TaskSid", tr_json_new_string(x->task->sid), &e);
	if (tr_json_get_bool(x->params, "hold", &hold) == 0) {
		tr_json_put(r->params, "Hold", tr_json_new_bool(hold), &e);
	}
	put_opt_string(r->params, "HoldUrl", x->params, "holdUrl", &e);
	put_opt_string(r->params, "HoldMethod", x->params, "holdMethod", &e);
	return e;
}

static int build_transfer(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	const char *res = tr_cache_task_reservation(x->task);
	const char *mode_in = tr_json_get_string(x->params, "mode");
	const struct tr_json *v;
	char mode[8] = "";
	int64_t prio;
	int e = 0;

	if (mode_in) { /* WARM or COLD in any case (the row checked): the SDK sends capitals */
		for (size_t i = 0; mode_in[i] && i < sizeof(mode) - 1; i++) {
			mode[i] = (char)toupper((unsigned char)mode_in[i]);
		}
	}
	if (!res || x->task->n_res == 0) {
		return fail(err, TR_RPC_INVALID_STATE, "sid", "no live reservation for this task");
	}
	worker_path(x, r, "Transfers");
	r->kind = TR_METHODS_TRANSFER;
	tr_json_put(r->params, "ReservationSid", tr_json_new_string(res), &e);
	tr_json_put(r->params, "TaskSid", tr_json_new_string(x->task->sid), &e);
	tr_json_put(r->params, "To", tr_json_new_string(tr_json_get_string(x->params, "to")), &e);
	if (mode[0]) {
		tr_json_put(r->params, "Mode", tr_json_new_string(mode), &e);
	}
	if (tr_json_get_int(x->params, "priority", &prio) == 0) {
		tr_json_put(r->params, "Priority", tr_json_new_int(prio), &e);
	}
	v = tr_json_get(x->params, "attributes");
	if (present(v)) {
		tr_json_put(r->params, "Attributes", tr_json_dup(v), &e);
	}
	return e;
}

static int build_cancel_transfer(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	const struct tr_cache_transfer *out = x->task->outgoing;
	char tail[128];
	int e = 0;

	if (!out || !out->sid) {
		return fail(err, TR_RPC_INVALID_STATE, "sid", "no outgoing transfer");
	}
	if (tr_cache_transfer_is_final(out)) {
		return fail(err, TR_RPC_INVALID_STATE, "sid", "the outgoing transfer has ended");
	}
	snprintf(tail, sizeof(tail), "Transfers/%s", out->sid);
	worker_path(x, r, tail);
	r->kind = TR_METHODS_TRANSFER;
	tr_json_put(r->params, "TaskSid",
		tr_json_new_string(out->task_sid ? out->task_sid : x->task->sid), &e);
	tr_json_put(r->params, "TransferStatus", tr_json_new_string("canceled"), &e);
	return e;
}

void tr_task_methods_req_done(struct tr_methods_req *r) {
	r->params = tr_json_free(r->params);
}

/* Build m's request for validated params: the task must be known, then the row's builder. */
static int build_request(const struct tr_method *m, const struct tr_methods_ctx *x,
	struct tr_methods_req *ret, struct tr_methods_err *err) {
	if (!x->task) {
		return fail(err, TR_RPC_NOT_FOUND, "sid", "unknown task");
	}
	return tr_methods_build(m, x, ret, err);
}

static const struct tr_method *find_row(const char *method);

int tr_task_methods_build(const char *method, const struct tr_json *params,
	const struct tr_cache_task *task, const char *ws, const char *wk, bool version_check,
	struct tr_methods_req *ret, struct tr_methods_err *err) {
	const struct tr_method *m = find_row(method);
	const struct tr_methods_ctx x = {
		.params = params,
		.task = task,
		.workspace_sid = ws ? ws : "",
		.worker_sid = wk ? wk : "",
		.version_check = version_check,
	};

	if (!m || !m->build) {
		return -ENOENT;
	}
	if (tr_methods_validate(m, params, err) < 0) {
		return -EINVAL;
	}
	return build_request(m, &x, ret, err);
}

/* ---- the upstream round trip ---- */

enum op_kind {
	OP_TASK,
	OP_TRANSFER,
	OP_CONFLICT_GET, /* the GET after a 412 */
	OP_REFRESH,      /* background GET, no caller */
};

struct op {
	struct tr_daemon *d;
	struct tr_call *call; /* NULL for OP_REFRESH */
	enum op_kind kind;
	char task_sid[64];
	bool new_transfer; /* task.transfer: counted in tr_cache_transfer_in_flight */
	int64_t twilio_code;
	char *message;
};

static void op_free(struct op *op) {
	free(op->message);
	free(op);
}

static void on_reply(void *userdata, const struct tr_upstream_reply *reply);

/* A GET of the task, for a 412 or a refresh. Takes op; returns the bridge's error. */
static int send_get(struct op *op) {
	const char *ws = tr_bridge_workspace_sid(op->d->bridge);
	struct tr_upstream_request req = {
		.method = "GET",
		.api_version = "v1",
		.if_match = -1,
		.retry_transient = op->kind == OP_REFRESH,
	};
	char path[256];

	snprintf(path, sizeof(path), "Workspaces/%s/Tasks/%s", ws ? ws : "", op->task_sid);
	req.path = path;
	return tr_bridge_request(op->d->bridge, &req, on_reply, op);
}

static void start_refresh(struct tr_daemon *d, const char *task_sid) {
	struct op *op = calloc(1, sizeof(*op));

	if (!op) {
		return;
	}
	op->d = d;
	op->kind = OP_REFRESH;
	snprintf(op->task_sid, sizeof(op->task_sid), "%s", task_sid);
	if (send_get(op) < 0) {
		tr_log_debug("task %s: refresh not sent, ignoring", task_sid);
		op_free(op);
	}
}

static void refresh_pending(struct op *op, long status, const char *message) {
	tr_call_error(op->call, TR_RPC_REFRESH_PENDING,
		"applied upstream, local refresh pending", tr_upcall_data(status, 0, message));
	start_refresh(op->d, op->task_sid);
}

static void finish_conflict(struct op *op) {
	const struct tr_cache_task *t = tr_cache_get(op->d->cache, op->task_sid);
	struct tr_json *data = tr_upcall_data(412, op->twilio_code, op->message);
	char ver[32];
	int e = 0;

	if (data && t) {
		snprintf(ver, sizeof(ver), "%" PRId64, t->version);
		if (tr_json_put(data, "currentVersion", tr_json_new_string(ver), &e) < 0) {
			data = tr_json_free(data);
		}
	}
	tr_call_error(op->call, TR_RPC_VERSION_CONFLICT, "version conflict", data);
}

static void reply_applied(struct op *op, const struct tr_upstream_reply *reply) {
	struct tr_daemon *d = op->d;
	const struct tr_cache_task *t;
	int r;

	if (op->kind == OP_TRANSFER) {
		r = tr_cache_apply_transfer_response(d->cache, op->task_sid, reply->payload,
			uv_now(d->loop));
	} else {
		r = tr_cache_apply_task(d->cache, reply->payload);
	}
	t = tr_cache_get(d->cache, op->task_sid);
	if (r < 0 && r != -ENOMEM && t) {
		refresh_pending(op, reply->http_status, "the reply could not be applied");
	} else if (!t) {
		tr_call_error(op->call, TR_RPC_REFRESH_PENDING,
			"applied upstream; the task is no longer cached",
			tr_upcall_data(reply->http_status, 0, NULL));
	} else if (r == -ENOMEM) {
		tr_call_error(op->call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
	} else {
		tr_call_result(op->call, tr_task_json_task_raw(t));
	}
}

static void on_reply(void *userdata, const struct tr_upstream_reply *reply) {
	struct op *op = userdata;
	struct tr_daemon *d = op->d;
	bool ok = tr_upcall_ok(reply);

	if (op->kind == OP_REFRESH || op->kind == OP_CONFLICT_GET) {
		if (ok) {
			(void)tr_cache_apply_task(d->cache, reply->payload);
		}
		if (op->kind == OP_CONFLICT_GET) {
			finish_conflict(op);
		}
		op_free(op);
		return;
	}
	if (op->new_transfer) {
		tr_cache_transfer_in_flight(d->cache, op->task_sid, -1);
	}
	if (!ok && op->kind == OP_TRANSFER && reply->err != -ETIMEDOUT) {
		tr_cache_drop_pending(d->cache, op->task_sid);
	}
	if (reply->err == -EBADMSG) {
		refresh_pending(op, reply->http_status, reply->message);
	} else if (ok) {
		reply_applied(op, reply);
	} else if (reply->http_status == 412) {
		op->kind = OP_CONFLICT_GET;
		op->twilio_code = reply->twilio_code;
		op->message = reply->message ? strdup(reply->message) : NULL;
		if (send_get(op) == 0) {
			return;
		}
		finish_conflict(op);
	} else {
		tr_upcall_reply_error(op->call, reply);
	}
	op_free(op);
}

/* The handler of every row below: build, check the session, send. */
static void task_request(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	const char *sid = tr_json_get_string(params, "sid");
	const char *ws = tr_bridge_workspace_sid(d->bridge), *wk = tr_bridge_worker_sid(d->bridge);
	const struct tr_cache_task *t = tr_cache_get(d->cache, sid);
	const struct tr_methods_ctx x = {
		.params = params,
		.task = t,
		.workspace_sid = ws ? ws : "",
		.worker_sid = wk ? wk : "",
		.version_check = d->cfg->version_check,
	};
	struct tr_methods_req req = { 0 };
	struct tr_methods_err err = { 0 };
	struct op *op;
	int r;

	/* the dispatcher has checked params against m's row */
	r = build_request(m, &x, &req, &err);
	if (r == -EINVAL) {
		if (err.code == TR_RPC_NOT_FOUND) {
			tr_methods_unknown_task(call, sid);
		} else {
			tr_call_error(call, err.code, err.reason, NULL);
		}
		return;
	}
	if (r < 0) {
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "internal error", NULL);
		return;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		tr_task_methods_req_done(&req);
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	op->d = d;
	op->call = call;
	op->kind = req.kind == TR_METHODS_TRANSFER ? OP_TRANSFER : OP_TASK;
	snprintf(op->task_sid, sizeof(op->task_sid), "%s", t->sid);
	op->new_transfer = m->build == build_transfer;
	r = tr_upcall_send(d, call, &req, on_reply, op);
	tr_task_methods_req_done(&req);
	if (r < 0) {
		op_free(op);
	} else if (op->new_transfer) {
		tr_cache_transfer_in_flight(d->cache, op->task_sid, +1);
	}
}

/* ---- the rows ---- */

/* The SDK's range for a virtual start time: 1900-01-01 to 9999-12-31T23:59:59Z. */
#define TIME(n) { .name = (n), .type = TR_PARAM_TIME, .required = true, .min = -2208988800LL, \
	.max = 253402300799LL }
#define ROW(name, b, ...) { name, TR_PARAMS(__VA_ARGS__), "Task", task_request, b, false }

static const char *const transfer_modes[] = { "WARM", "COLD", NULL };

static const struct tr_method rows[] = {
	ROW("task.complete", build_complete, TR_P_SID, TR_P_STRING("reason", true, false)),
	ROW("task.wrapUp", build_wrapup, TR_P_SID, TR_P_STRING("reason", false, false)),
	ROW("task.setAttributes", build_set_attributes, TR_P_SID,
		TR_P_ATTRIBUTES(true)),
	ROW("task.setVirtualStartTime", build_set_vst, TR_P_SID, TIME("time")),
	ROW("task.fetchLatestVersion", build_fetch, TR_P_SID),
	ROW("task.hold", build_hold, TR_P_SID, TR_P_STRING("targetWorkerSid", true, true),
		TR_P_BOOLEAN("onHold", true), TR_P_STRING("holdUrl", false, false),
		TR_P_STRING("holdMethod", false, false)),
	ROW("task.kick", build_kick, TR_P_SID, TR_P_STRING("workerSid", true, true)),
	ROW("task.transfer", build_transfer, TR_P_SID, TR_P_STRING("to", true, true),
		{ .name = "mode", .type = TR_PARAM_STRING, .values = transfer_modes,
			.values_reason = "must be WARM or COLD" },
		TR_P_INTEGER("priority", 0, INT32_MAX), TR_P_ATTRIBUTES(false)),
	ROW("task.cancelTransfer", build_cancel_transfer, TR_P_SID),
	ROW("task.updateParticipant", build_update_participant, TR_P_SID,
		TR_P_BOOLEAN("hold", false), TR_P_STRING("holdUrl", false, false),
		TR_P_STRING("holdMethod", false, false)),
};

const struct tr_method_table tr_task_methods = { rows, sizeof(rows) / sizeof(rows[0]) };

static const struct tr_method *find_row(const char *method) {
	const struct tr_method_table *const tables[] = { &tr_task_methods, NULL };

	return tr_methods_find(tables, method);
}
