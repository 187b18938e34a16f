/*
 * worker-methods.c — the Reservation, Worker, Activity and Channel methods (see
 * worker-methods.h).
 */
#include "worker-methods.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
#include "task-methods.h"
#include "tr-limits.h"
#include "upcall.h"
#include "worker-state.h"

/* ---- request builders ---- */

static int fail(struct tr_methods_err *err, int code, const char *param, const char *reason) {
	err->code = code;
	err->param = param;
	err->reason = reason;
	return -EINVAL;
}

/* Reservation instance route (spec §2.1): POST or GET v1, under the worker. */
static void res_path(const struct tr_methods_ctx *x, struct tr_methods_req *r, bool if_match) {
	snprintf(r->path, sizeof(r->path), "Workspaces/%s/Workers/%s/Reservations/%s",
		x->workspace_sid, x->worker_sid, x->res->sid);
	r->api_version = "v1";
	r->kind = TR_METHODS_RESERVATION;
	r->if_match = if_match && x->version_check && x->res->version >= 0 ? x->res->version : -1;
}

/* The worker's own route, v1, If-Match with its version on the versioned writes. */
static void worker_path(const struct tr_methods_ctx *x, struct tr_methods_req *r, bool if_match) {
	const struct tr_wstate_worker *w = tr_wstate_get_worker(x->wstate);

	snprintf(r->path, sizeof(r->path), "Workspaces/%s/Workers/%s", x->workspace_sid,
		x->worker_sid);
	r->api_version = "v1";
	r->kind = TR_METHODS_WORKER;
	r->if_match = if_match && x->version_check && w && w->version >= 0 ? w->version : -1;
}

/* An option of the SDK and the member it is sent as. */
struct opt_map {
	const char *param, *key;
};

/*
 * The SDK copies options in the caller's key order after the fixed members (§3.2): every
 * member of params that map names (null counts as absent) goes to o under its key, with its
 * JSON type. The row refused any member it does not list.
 */
static void put_options(const struct tr_json *params, const struct opt_map *map,
	struct tr_json *o, int *e) {
	for (size_t i = 0; params && i < params->u.obj.n; i++) {
		const struct tr_json *v = params->u.obj.vals[i];

		if (v->type == TR_JSON_NULL) {
			continue;
		}
		for (const struct opt_map *m = map; m->param; m++) {
			if (strcmp(m->param, params->u.obj.keys[i]) == 0) {
				tr_json_put(o, m->key, tr_json_dup(v), e);
				break;
			}
		}
	}
}

/* conference and updateParticipant send every option with its first letter upper-cased, in
 * the caller's order; sid is the method's, not an option. */
static void put_upper_first(const struct tr_json *params, struct tr_json *o, int *e) {
	for (size_t i = 0; params && i < params->u.obj.n; i++) {
		const char *k = params->u.obj.keys[i];
		char key[64];

		if (params->u.obj.vals[i]->type == TR_JSON_NULL || strcmp(k, "sid") == 0) {
			continue;
		}
		snprintf(key, sizeof(key), "%s", k); /* row names are short */
		if (key[0] >= 'a' && key[0] <= 'z') {
			key[0] = (char)(key[0] - 'a' + 'A');
		}
		tr_json_put(o, key, tr_json_dup(params->u.obj.vals[i]), e);
	}
}

static int build_status(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	const char *status) {
	int e = 0;

	res_path(x, r, true);
	tr_json_put(r->params, "ReservationStatus", tr_json_new_string(status), &e);
	return e;
}

static int build_accept(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	return build_status(x, r, "accepted");
}

/* An activity sid the worker model does not list (when it lists any) is refused. */
static bool activity_unknown(const struct tr_methods_ctx *x, const char *sid) {
	size_t n = 0;

	(void)tr_wstate_activities(x->wstate, &n);
	return n > 0 && !tr_wstate_find_activity(x->wstate, sid);
}

static int build_reject(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	const char *act = tr_json_get_string(x->params, "activitySid");
	int e;

	if (act && (strncmp(act, "WA", 2) != 0 || activity_unknown(x, act))) {
		err->unknown_activity = true;
		return fail(err, TR_RPC_INVALID_PARAMS, "activitySid", "unknown activity");
	}
	e = build_status(x, r, "rejected");
	if (act) {
		tr_json_put(r->params, "WorkerActivitySid", tr_json_new_string(act), &e);
	}
	return e;
}

static int build_wrap(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	return build_status(x, r, "wrapping");
}

static int build_complete(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	return build_status(x, r, "completed");
}

static const struct opt_map call_opts[] = {
	{ "accept", "CallAccept" },
	{ "record", "CallRecord" },
	{ "statusCallbackUrl", "CallStatusCallbackUrl" },
	{ "timeout", "CallTimeout" },
	{ "to", "CallTo" },
	{ NULL, NULL },
};

static int build_call(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	int e = 0;

	res_path(x, r, false);
	tr_json_put(r->params, "Instruction", tr_json_new_string("call"), &e);
	tr_json_put(r->params, "CallFrom",
		tr_json_new_string(tr_json_get_string(x->params, "from")), &e);
	tr_json_put(r->params, "CallUrl", tr_json_new_string(tr_json_get_string(x->params, "url")),
		&e);
	put_options(x->params, call_opts, r->params, &e);
	return e;
}

static const struct opt_map dequeue_opts[] = {
	{ "from", "DequeueFrom" },
	{ "to", "DequeueTo" },
	{ "postWorkActivitySid", "DequeuePostWorkActivitySid" },
	{ "record", "DequeueRecord" },
	{ "timeout", "DequeueTimeout" },
	{ "statusCallbackUrl", "DequeueStatusCallbackUrl" },
	{ "statusCallbackEvents", "DequeueStatusCallbackEvents" },
	{ NULL, NULL },
};

static int build_dequeue(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	const char *post = tr_json_get_string(x->params, "postWorkActivitySid");
	int e = 0;

	if (post && (strncmp(post, "WA", 2) != 0 || activity_unknown(x, post))) {
		err->unknown_activity = true;
		return fail(err, TR_RPC_INVALID_PARAMS, "postWorkActivitySid", "unknown activity");
	}
	res_path(x, r, false);
	tr_json_put(r->params, "Instruction", tr_json_new_string("dequeue"), &e);
	put_options(x->params, dequeue_opts, r->params, &e);
	return e;
}

static const struct opt_map redirect_opts[] = {
	{ "accept", "RedirectAccept" },
	{ NULL, NULL },
};

static int build_redirect(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	int e = 0;

	res_path(x, r, false);
	tr_json_put(r->params, "Instruction", tr_json_new_string("redirect"), &e);
	tr_json_put(r->params, "RedirectCallSid",
		tr_json_new_string(tr_json_get_string(x->params, "callSid")), &e);
	tr_json_put(r->params, "RedirectUrl",
		tr_json_new_string(tr_json_get_string(x->params, "url")), &e);
	put_options(x->params, redirect_opts, r->params, &e);
	return e;
}

static int build_conference(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	int e = 0;

	res_path(x, r, false);
	r->kind = TR_METHODS_RES_IGNORED; /* the SDK never reads the answer (§3.3) */
	tr_json_put(r->params, "Instruction", tr_json_new_string("conference"), &e);
	put_upper_first(x->params, r->params, &e);
	return e;
}

static int build_res_participant(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	int e = 0;

	snprintf(r->path, sizeof(r->path), "Workspaces/%s/Workers/%s/WorkerParticipant",
		x->workspace_sid, x->worker_sid);
	r->api_version = "v2";
	r->kind = TR_METHODS_RES_IGNORED;
	tr_json_put(r->params, "ReservationSid", tr_json_new_string(x->res->sid), &e);
	put_upper_first(x->params, r->params, &e);
	return e;
}

static int build_res_fetch(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	res_path(x, r, false);
	r->method = "GET";
	return 0;
}

static int build_worker_attributes(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	int e = 0;

	worker_path(x, r, true);
	tr_json_put(r->params, "Attributes", tr_json_dup(tr_json_get(x->params, "attributes")), &e);
	return e;
}

static int build_worker_fetch(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	worker_path(x, r, false);
	r->method = "GET";
	return 0;
}

static int build_set_activity(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	const struct tr_wstate_activity *a =
		tr_wstate_find_activity(x->wstate, tr_json_get_string(x->params, "activity"));
	const struct tr_json *rp = tr_json_get(x->params, "rejectPendingReservations");
	int e = 0;

	if (!a) {
		err->unknown_activity = true;
		return fail(err, TR_RPC_INVALID_PARAMS, "activity", "unknown activity");
	}
	if (rp && rp->type == TR_JSON_TRUE && a->available) {
		/* the SDK's own check (§5.2), and TaskRouter's */
		return fail(err, TR_RPC_INVALID_PARAMS, "rejectPendingReservations",
			"not allowed when moving to an available activity");
	}
	worker_path(x, r, true);
	tr_json_put(r->params, "ActivitySid", tr_json_new_string(a->sid), &e);
	if (rp && rp->type != TR_JSON_NULL) {
		/* false is sent too (§9.8) */
		tr_json_put(r->params, "RejectPendingReservations", tr_json_dup(rp), &e);
	}
	return e;
}

static const struct opt_map create_task_opts[] = {
	{ "taskChannelUniqueName", "TaskChannelUniqueName" },
	{ "taskChannelSid", "TaskChannelSid" },
	{ NULL, NULL },
};

/* {...attributes, outbound_to: to, from: from}: the caller's members in order, the two
 * required ones overwriting theirs in place or appended (§4.3). */
static struct tr_json *create_task_attributes(const struct tr_json *params, int *e) {
	const struct tr_json *in = tr_json_get(params, "attributes");
	const char *to = tr_json_get_string(params, "to");
	const char *from = tr_json_get_string(params, "from");
	struct tr_json *o = tr_json_new_object();

	for (size_t i = 0; tr_json_is(in, TR_JSON_OBJECT) && i < in->u.obj.n; i++) {
		const char *k = in->u.obj.keys[i];

		if (strcmp(k, "outbound_to") == 0) {
			tr_json_put(o, k, tr_json_new_string(to), e);
		} else if (strcmp(k, "from") == 0) {
			tr_json_put(o, k, tr_json_new_string(from), e);
		} else {
			tr_json_put(o, k, tr_json_dup(in->u.obj.vals[i]), e);
		}
	}
	if (o && !tr_json_get(o, "outbound_to")) {
		tr_json_put(o, "outbound_to", tr_json_new_string(to), e);
	}
	if (o && !tr_json_get(o, "from")) {
		tr_json_put(o, "from", tr_json_new_string(from), e);
	}
	return o;
}

static int build_create_task(const struct tr_methods_ctx *x, struct tr_methods_req *r,
	struct tr_methods_err *err) {
	const struct tr_json *vst = tr_json_get(x->params, "virtualStartTime");
	int e = 0;

	snprintf(r->path, sizeof(r->path), "Workspaces/%s/Tasks", x->workspace_sid);
	r->api_version = "v1";
	r->kind = TR_METHODS_CREATED;
	tr_json_put(r->params, "WorkflowSid",
		tr_json_new_string(tr_json_get_string(x->params, "workflowSid")), &e);
	tr_json_put(r->params, "TaskQueueSid",
		tr_json_new_string(tr_json_get_string(x->params, "taskQueueSid")), &e);
	tr_json_put(r->params, "RoutingTarget", tr_json_new_string(x->worker_sid), &e);
	if (vst && vst->type != TR_JSON_NULL) {
		int64_t when = 0;
		char buf[40];

		/* the row checked that it parses and is in range */
		if (tr_json_is_int(vst)) {
			when = vst->u.num.i;
		} else {
			(void)tr_task_json_time_parse(vst->u.str.s, &when);
		}
		tr_task_json_time_format(when, buf, sizeof(buf));
		tr_json_put(r->params, "VirtualStartTime", tr_json_new_string(buf), &e);
	}
	put_options(x->params, create_task_opts, r->params, &e);
	tr_json_put(r->params, "Attributes", create_task_attributes(x->params, &e), &e);
	return e;
}

/* ---- the upstream round trip ---- */

enum phase {
	PH_CALL,
	PH_CONFLICT_GET, /* the GET after a 412 */
	PH_REFRESH,      /* background GET, no caller */
	PH_WORKER_AFTER, /* the worker GET after a call that moved the worker: the answer waits */
};

struct op {
	struct tr_daemon *d;
	struct tr_call *call; /* NULL for PH_REFRESH */
	enum phase phase;
	enum tr_methods_kind kind;
	char res_sid[64];    /* the reservation rows' */
	bool refresh_worker; /* the call moved the worker without answering with it */
	int64_t twilio_code;
	char *message;
	/* The answer, held while the worker is fetched (PH_WORKER_AFTER): result, or an error
	 * (err_code != 0) with err_data. */
	struct tr_json *result;
	int err_code;
	const char *err_text; /* static */
	struct tr_json *err_data;
	bool refresh_res; /* after answering, refresh the reservation in the background */
};

static void op_free(struct op *op) {
	free(op->message);
	tr_json_free(op->result);
	tr_json_free(op->err_data);
	free(op);
}

static void on_reply(void *userdata, const struct tr_upstream_reply *reply);

static bool is_worker_op(const struct op *op) {
	return op->kind == TR_METHODS_WORKER;
}

/* GET the worker, or the op's reservation: for a 412, a refresh, or after a call that moved
 * the worker. Takes op; returns the bridge's error. */
static int send_get(struct op *op, bool worker) {
	const char *ws = tr_bridge_workspace_sid(op->d->bridge);
	const char *wk = tr_bridge_worker_sid(op->d->bridge);
	struct tr_upstream_request req = {
		.method = "GET",
		.api_version = "v1",
		.if_match = -1,
		.retry_transient = op->phase == PH_REFRESH,
	};
	char path[256];

	if (worker) {
		snprintf(path, sizeof(path), "Workspaces/%s/Workers/%s", ws ? ws : "",
			wk ? wk : "");
	} else {
		snprintf(path, sizeof(path), "Workspaces/%s/Workers/%s/Reservations/%s",
			ws ? ws : "", wk ? wk : "", op->res_sid);
	}
	req.path = path;
	return tr_bridge_request(op->d->bridge, &req, on_reply, op);
}

/* Refresh the worker (kind TR_METHODS_WORKER) or a reservation in the background. */
static void start_refresh(struct tr_daemon *d, enum tr_methods_kind kind, const char *res_sid) {
	struct op *op;

	if (kind != TR_METHODS_WORKER && (!res_sid || !*res_sid)) {
		return; /* nothing to fetch (createTask) */
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		return;
	}
	op->d = d;
	op->phase = PH_REFRESH;
	op->kind = kind;
	snprintf(op->res_sid, sizeof(op->res_sid), "%s", res_sid ? res_sid : "");
	if (send_get(op, kind == TR_METHODS_WORKER) < 0) {
		tr_log_debug("%s: refresh not sent, ignoring", res_sid ? res_sid : "worker");
		op_free(op);
	}
}

/* The Reservation object of sid as the cache holds it, with its task; NULL when gone. */
static struct tr_json *res_object(struct tr_daemon *d, const char *sid) {
	const struct tr_cache_task *t = NULL;
	const struct tr_cache_res *r = tr_cache_find_res(d->cache, sid, &t);

	return r ? tr_task_json_res_raw(r, t, tr_cache_get_ident(d->cache), true) : NULL;
}

/* Apply a 2xx payload of the worker or the op's reservation; <0 when it could not be. */
static int apply_payload(struct op *op, const struct tr_json *payload, bool worker) {
	if (worker) {
		return tr_wstate_apply_worker(op->d->wstate, payload);
	}
	return tr_cache_apply_res(op->d->cache, payload);
}

/* Hold an error answer (data taken). */
static void hold_error(struct op *op, int code, const char *text, struct tr_json *data) {
	op->err_code = code;
	op->err_text = text;
	op->err_data = data;
}

/* Send the held answer, then the reservation's refresh if one is due. */
static void answer(struct op *op) {
	if (op->err_code) {
		tr_call_error(op->call, op->err_code, op->err_text, op->err_data);
		op->err_data = NULL;
	} else if (op->result) {
		tr_call_result(op->call, op->result);
		op->result = NULL;
	} else {
		tr_call_error(op->call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
	}
	if (op->refresh_res) {
		start_refresh(op->d, op->kind, op->res_sid);
	}
}

static void finish_conflict(struct op *op) {
	struct tr_json *data = tr_upcall_data(412, op->twilio_code, op->message);
	int64_t version = -1;
	char ver[32];
	int e = 0;

	if (is_worker_op(op)) {
		const struct tr_wstate_worker *w = tr_wstate_get_worker(op->d->wstate);

		version = w ? w->version : -1;
	} else {
		const struct tr_cache_res *r = tr_cache_find_res(op->d->cache, op->res_sid, NULL);

		version = r ? r->version : -1;
	}
	if (data && version >= 0) {
		snprintf(ver, sizeof(ver), "%" PRId64, version);
		if (tr_json_put(data, "currentVersion", tr_json_new_string(ver), &e) < 0) {
			data = tr_json_free(data);
		}
	}
	tr_call_error(op->call, TR_RPC_VERSION_CONFLICT, "version conflict", data);
}

/* A 2xx (payload NULL: its body could not be read): apply it and make the answer. */
static void take_reply(struct op *op, const struct tr_upstream_reply *reply) {
	struct tr_daemon *d = op->d;
	const struct tr_json *payload = reply->err == 0 ? reply->payload : NULL;
	int r = 0;

	switch (op->kind) {
	case TR_METHODS_CREATED: {
		const char *sid = tr_json_get_string(payload, "sid");
		int e = 0;

		if (!sid) { /* created, but which task is unknown: nothing to refresh */
			hold_error(op, TR_RPC_REFRESH_PENDING, "applied upstream; the answer names "
				"no task", tr_upcall_data(reply->http_status, 0, reply->message));
			return;
		}
		op->result = tr_json_new_object();
		tr_json_put(op->result, "sid", tr_json_new_string(sid), &e);
		op->result = e < 0 ? tr_json_free(op->result) : op->result;
		return;
	}
	case TR_METHODS_RES_IGNORED:
		/* the SDK never reads this answer: whatever its body, the call succeeded */
		op->result = res_object(d, op->res_sid);
		r = op->result ? 0 : -ENOENT;
		break;
	case TR_METHODS_WORKER:
		r = payload ? tr_wstate_apply_worker(d->wstate, payload) : -EBADMSG;
		op->result = r < 0 ? NULL : tr_wstate_worker_json(d->wstate);
		break;
	default:
		r = payload ? tr_cache_apply_res(d->cache, payload) : -EBADMSG;
		op->result = r < 0 ? NULL : res_object(d, op->res_sid);
		break;
	}
	if (r == -EBADMSG) {
		hold_error(op, TR_RPC_REFRESH_PENDING, "applied upstream, local refresh pending",
			tr_upcall_data(reply->http_status, 0, reply->message ? reply->message :
				"the reply could not be applied"));
		op->refresh_res = true;
	} else if (r == -ENOENT) {
		hold_error(op, TR_RPC_REFRESH_PENDING,
			"applied upstream; the reservation is no longer cached",
			tr_upcall_data(reply->http_status, 0, NULL));
	}
}

static void on_reply(void *userdata, const struct tr_upstream_reply *reply) {
	struct op *op = userdata;
	bool ok = tr_upcall_ok(reply);

	if (op->phase != PH_CALL) {
		bool worker = op->phase == PH_WORKER_AFTER || is_worker_op(op);

		if (ok && apply_payload(op, reply->payload, worker) < 0) {
			tr_log_debug("%s: the refreshed state could not be applied",
				worker ? "worker" : op->res_sid);
		}
		if (op->phase == PH_CONFLICT_GET) {
			finish_conflict(op);
		} else if (op->phase == PH_WORKER_AFTER) {
			answer(op);
		}
		op_free(op);
		return;
	}
	if (ok || (reply->err == -EBADMSG && reply->http_status >= 200 &&
			reply->http_status < 300)) {
		take_reply(op, reply);
		/* The call moved the worker and its answer is not the worker: answer once the
		 * worker is fetched, so that the caller's next versioned write has the version. */
		if (op->refresh_worker) {
			op->phase = PH_WORKER_AFTER;
			if (send_get(op, true) == 0) {
				return;
			}
		}
		answer(op);
	} else if (reply->err == -EBADMSG) {
		op->refresh_res = !is_worker_op(op);
		hold_error(op, TR_RPC_REFRESH_PENDING, "applied upstream, local refresh pending",
			tr_upcall_data(reply->http_status, 0, reply->message));
		answer(op);
		if (is_worker_op(op)) {
			start_refresh(op->d, TR_METHODS_WORKER, NULL);
		}
	} else if (reply->http_status == 412 && op->kind != TR_METHODS_CREATED) {
		op->phase = PH_CONFLICT_GET;
		op->twilio_code = reply->twilio_code;
		op->message = reply->message ? strdup(reply->message) : NULL;
		if (send_get(op, is_worker_op(op)) == 0) {
			return;
		}
		finish_conflict(op);
	} else {
		tr_upcall_reply_error(op->call, reply);
	}
	op_free(op);
}

/* ---- building and sending ---- */

static void no_worker(struct tr_call *call) {
	tr_call_error(call, TR_RPC_NOT_CONNECTED, "the worker is not known yet (no session)", NULL);
}

/* Reply for a failed build: a bad parameter (with the activities when one was unknown), an
 * unknown reservation, a state. */
static void build_failed(struct tr_daemon *d, struct tr_call *call,
	const struct tr_methods_err *err, const char *sid) {
	if (err->code == TR_RPC_NOT_FOUND) {
		struct tr_json *data = tr_json_new_object();
		int e = 0;

		tr_json_put(data, "sid", tr_json_new_string(sid ? sid : ""), &e);
		tr_call_error(call, TR_RPC_NOT_FOUND, "unknown reservation",
			e < 0 ? tr_json_free(data) : data);
	} else if (err->unknown_activity) {
		size_t n = 0;
		const struct tr_wstate_activity *a = tr_wstate_activities(d->wstate, &n);
		const char **names = calloc(n + 1, sizeof(*names));
		struct tr_methods_err e2 = *err;

		for (size_t i = 0; names && i < n; i++) {
			names[i] = a[i].name;
		}
		e2.values = names;
		tr_methods_invalid_params(call, &e2);
		free(names);
	} else if (err->code == TR_RPC_INVALID_PARAMS) {
		tr_methods_invalid_params(call, err);
	} else {
		tr_call_error(call, err->code, err->reason, NULL);
	}
}

/* Build m's request in ctx x: the reservation rows need their reservation. */
static int build_request(const struct tr_method *m, const struct tr_methods_ctx *x,
	struct tr_methods_req *ret, struct tr_methods_err *err) {
	if (strncmp(m->name, "reservation.", 12) == 0 && !x->res) {
		return fail(err, TR_RPC_NOT_FOUND, "sid", "unknown reservation");
	}
	return tr_methods_build(m, x, ret, err);
}

/* The handler of the rows that go upstream. */
static void upstream_request(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	const char *sid = tr_json_get_string(params, "sid");
	const char *ws = tr_bridge_workspace_sid(d->bridge), *wk = tr_bridge_worker_sid(d->bridge);
	const struct tr_cache_task *t = NULL;
	const struct tr_cache_res *res = sid ? tr_cache_find_res(d->cache, sid, &t) : NULL;
	const struct tr_methods_ctx x = {
		.params = params,
		.task = t,
		.res = res,
		.wstate = d->wstate,
		.workspace_sid = ws ? ws : "",
		.worker_sid = wk ? wk : "",
		.version_check = d->cfg->version_check,
	};
	struct tr_methods_req req = { 0 };
	struct tr_methods_err err = { 0 };
	struct op *op;
	int r;

	if (strncmp(m->name, "worker.", 7) == 0 && !tr_wstate_get_worker(d->wstate)) {
		/* before the first resync there is no worker, activity or version to build from */
		no_worker(call);
		return;
	}
	r = build_request(m, &x, &req, &err);
	if (r == -EINVAL) {
		build_failed(d, call, &err, sid);
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
	op->kind = req.kind;
	if (res) {
		snprintf(op->res_sid, sizeof(op->res_sid), "%s", res->sid);
	}
	/* A reject that moves the worker answers with the reservation, and rejecting the pending
	 * reservations raises the worker's version after its answer: fetch the worker after
	 * both, so the next versioned write does not go out with a stale If-Match (§4.5). */
	op->refresh_worker = (m->build == build_reject && tr_json_get_string(params, "activitySid")) ||
		(m->build == build_set_activity &&
			tr_json_get(params, "rejectPendingReservations") &&
			tr_json_get(params, "rejectPendingReservations")->type == TR_JSON_TRUE);
	r = tr_upcall_send(d, call, &req, on_reply, op);
	tr_task_methods_req_done(&req);
	if (r < 0) {
		op_free(op);
	}
}

/* ---- the rows answered from the models ---- */

/* A reservation and its task, for a page. */
struct res_item {
	const struct tr_cache_res *r;
	const struct tr_cache_task *t;
};

static int cmp_res_sid(const void *a, const void *b) {
	return strcmp(((const struct res_item *)a)->r->sid, ((const struct res_item *)b)->r->sid);
}

static int collect(struct res_item **all, size_t *n, size_t *cap, const struct tr_cache_res *r,
	const struct tr_cache_task *t) {
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct res_item *p = realloc(*all, c * sizeof(*p));

		if (!p) {
			return -ENOMEM;
		}
		*all = p;
		*cap = c;
	}
	(*all)[(*n)++] = (struct res_item){ r, t };
	return 0;
}

/* reservation.list: like task.list, one page in SID order of the live reservations (with a
 * status: those in it, the recently ended ones included). */
static void m_res_list(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	const char *status = tr_json_get_string(params, "status");
	const char *after = tr_json_get_string(params, "after");
	const struct tr_cache_ident *id = tr_cache_get_ident(d->cache);
	struct tr_json *o = tr_json_new_object(), *arr = tr_json_new_array();
	struct res_item *all = NULL;
	size_t n = 0, cap = 0, bytes = 0;
	const char *next = NULL;
	int64_t limit = TR_LIST_PAGE_DEFAULT, taken = 0;
	int e = 0;

	(void)tr_json_get_int(params, "limit", &limit);
	for (const struct tr_cache_task *t = tr_cache_first(d->cache); t && e == 0; t = t->next) {
		for (size_t i = 0; i < t->n_res + t->n_ended && e == 0; i++) {
			const struct tr_cache_res *r = i < t->n_res ? &t->res[i] : &t->ended[i - t->n_res];
			bool want = (i < t->n_res || status) && (!after || strcmp(r->sid, after) > 0) &&
				(!status || strcasecmp(status, r->status) == 0);

			if (want) {
				e = collect(&all, &n, &cap, r, t);
			}
		}
	}
	if (n) {
		qsort(all, n, sizeof(*all), cmp_res_sid);
	}
	for (size_t i = 0; i < n && e == 0; i++) {
		struct tr_json *j = tr_task_json_res_raw(all[i].r, all[i].t, id, true);
		size_t len = j ? j->u.str.len : 0;

		if (!j) {
			e = -ENOMEM;
			break;
		}
		if (taken == limit || (taken > 0 && bytes + len > TR_LIST_PAGE_BYTES)) {
			next = all[i - 1].r->sid;
			tr_json_free(j);
			break;
		}
		bytes += len + 1;
		taken++;
		tr_json_push(arr, j, &e);
	}
	tr_json_put(o, "reservations", arr, &e);
	tr_json_put(o, "next", next ? tr_json_new_string(next) : tr_json_new_null(), &e);
	free(all);
	if (e < 0) {
		tr_json_free(o);
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	tr_call_result(call, o);
}

static void m_res_get(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	const char *sid = tr_json_get_string(params, "sid");
	struct tr_methods_err err = { .code = TR_RPC_NOT_FOUND };
	struct tr_json *o;

	if (!tr_cache_find_res(d->cache, sid, NULL)) {
		build_failed(d, call, &err, sid);
		return;
	}
	o = res_object(d, sid);
	if (!o) {
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	tr_call_result(call, o);
}

static void m_worker_get(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	struct tr_json *o;

	if (!tr_wstate_get_worker(d->wstate)) {
		no_worker(call);
		return;
	}
	o = tr_wstate_worker_json(d->wstate);
	if (!o) {
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	tr_call_result(call, o);
}

static void m_list(struct tr_daemon *d, struct tr_call *call, bool activities) {
	struct tr_json *o = tr_json_new_object(), *arr = tr_json_new_array();
	size_t n = 0;
	int e = 0;

	if (!tr_wstate_get_worker(d->wstate)) {
		tr_json_free(o);
		tr_json_free(arr);
		no_worker(call);
		return;
	}
	if (activities) {
		const struct tr_wstate_activity *a = tr_wstate_activities(d->wstate, &n);

		for (size_t i = 0; i < n; i++) {
			tr_json_push(arr, tr_wstate_activity_json(d->wstate, &a[i]), &e);
		}
	} else {
		const struct tr_wstate_channel *c = tr_wstate_channels(d->wstate, &n);

		for (size_t i = 0; i < n; i++) {
			tr_json_push(arr, tr_wstate_channel_json(&c[i]), &e);
		}
	}
	tr_json_put(o, activities ? "activities" : "channels", arr, &e);
	if (e < 0) {
		tr_json_free(o);
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	tr_call_result(call, o);
}

static void m_activity_list(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	m_list(d, call, true);
}

static void m_channel_list(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	m_list(d, call, false);
}

/* ---- the rows ---- */

static const char *const res_statuses[] = { "pending", "accepted", "rejected", "timeout",
	"canceled", "rescinded", "wrapping", "completed", NULL };

#define S(n) TR_P_STRING(n, false, false)
#define SR(n) TR_P_STRING(n, true, true)
#define B(n) TR_P_BOOLEAN(n, false)
#define I(n) TR_P_INTEGER(n, 0, INT32_MAX)
#define BS(n) TR_P_BOOLEAN_OR_STRING(n)
#define UP(name, b, result, ...) { name, TR_PARAMS(__VA_ARGS__), result, upstream_request, b, true }
#define LOCAL(name, h, result, ...) { name, TR_PARAMS(__VA_ARGS__), result, h, NULL, true }

static const struct tr_method rows[] = {
	LOCAL("reservation.list", m_res_list, "{reservations: [Reservation], next}",
		{ .name = "status", .type = TR_PARAM_STRING, .values = res_statuses },
		TR_P_STRING("after", false, true), TR_P_INTEGER("limit", 1, TR_LIST_PAGE_MAX)),
	LOCAL("reservation.get", m_res_get, "Reservation", TR_P_SID),
	UP("reservation.accept", build_accept, "Reservation", TR_P_SID),
	UP("reservation.reject", build_reject, "Reservation", TR_P_SID,
		TR_P_STRING("activitySid", false, true)),
	UP("reservation.wrap", build_wrap, "Reservation", TR_P_SID),
	UP("reservation.complete", build_complete, "Reservation", TR_P_SID),
	UP("reservation.call", build_call, "Reservation", TR_P_SID, SR("from"), SR("url"),
		B("accept"), S("record"), S("statusCallbackUrl"), I("timeout"), S("to")),
	UP("reservation.dequeue", build_dequeue, "Reservation", TR_P_SID, S("from"), S("to"),
		TR_P_STRING("postWorkActivitySid", false, true), S("record"), I("timeout"),
		S("statusCallbackUrl"), S("statusCallbackEvents")),
	UP("reservation.redirect", build_redirect, "Reservation", TR_P_SID, SR("callSid"), SR("url"),
		B("accept")),
	UP("reservation.conference", build_conference, "Reservation", TR_P_SID,
		S("to"), S("from"), I("timeout"), S("statusCallback"), S("statusCallbackMethod"),
		S("statusCallbackEvent"), S("record"), B("muted"), BS("beep"),
		B("startConferenceOnEnter"), B("endConferenceOnExit"), B("endConferenceOnCustomerExit"),
		S("waitUrl"), S("waitMethod"), B("earlyMedia"), I("maxParticipants"),
		S("conferenceStatusCallback"), S("conferenceStatusCallbackMethod"),
		S("conferenceStatusCallbackEvent"), BS("conferenceRecord"), S("conferenceTrim"),
		S("recordingChannels"), S("recordingStatusCallback"),
		S("recordingStatusCallbackMethod"), S("conferenceRecordingStatusCallback"),
		S("conferenceRecordingStatusCallbackMethod"), S("region"), S("sipAuthUsername"),
		S("sipAuthPassword"), B("transcribe"), S("transcriptionConfiguration"),
		B("beepOnCustomerEntrance")),
	UP("reservation.updateParticipant", build_res_participant, "Reservation", TR_P_SID,
		B("endConferenceOnExit"), B("mute"), B("beepOnExit")),
	UP("reservation.fetchLatestVersion", build_res_fetch, "Reservation", TR_P_SID),
	{ "worker.get", TR_P_NONE, "Worker", m_worker_get, NULL, true },
	UP("worker.setAttributes", build_worker_attributes, "Worker",
		TR_P_OBJECT("attributes", true)),
	{ "worker.fetchLatestVersion", TR_P_NONE, "Worker", upstream_request, build_worker_fetch,
		true },
	UP("worker.setActivity", build_set_activity, "Worker", SR("activity"),
		B("rejectPendingReservations")),
	UP("worker.createTask", build_create_task, "{sid}", SR("to"), SR("from"), SR("workflowSid"),
		SR("taskQueueSid"), TR_P_OBJECT("attributes", false),
		TR_P_STRING("taskChannelUniqueName", false, true),
		TR_P_STRING("taskChannelSid", false, true),
		{ .name = "virtualStartTime", .type = TR_PARAM_TIME, .min = -2208988800LL,
			.max = 253402300799LL }),
	{ "activity.list", TR_P_NONE, "{activities: [Activity]}", m_activity_list, NULL, true },
	{ "channel.list", TR_P_NONE, "{channels: [Channel]}", m_channel_list, NULL, true },
};

const struct tr_method_table tr_worker_methods = { rows, sizeof(rows) / sizeof(rows[0]) };

int tr_worker_methods_build(const char *method, const struct tr_json *params,
	const struct tr_methods_ctx *ctx, struct tr_methods_req *ret, struct tr_methods_err *err) {
	const struct tr_method_table *const tables[] = { &tr_worker_methods, NULL };
	const struct tr_method *m = tr_methods_find(tables, method);
	struct tr_methods_ctx x = *ctx;

	if (!m || !m->build) {
		return -ENOENT;
	}
	if (params && params->type != TR_JSON_OBJECT) {
		return fail(err, TR_RPC_INVALID_PARAMS, "params", "must be an object");
	}
	if (tr_methods_validate(m, params, err) < 0) {
		return -EINVAL;
	}
	x.params = params;
	return build_request(m, &x, ret, err);
}
