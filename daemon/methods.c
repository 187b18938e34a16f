/*
 * methods.c — the method table (see methods.h).
 */
#include "methods.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bridge.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "cache.h"
#include "tr-build.h"
#include "json.h"
#include "tr-limits.h"
#include "rpc.h"
#include "subs.h"
#include "task-json.h"

/* ---- small helpers ---- */

static void put(struct tr_json *o, const char *k, struct tr_json *v, int *err) {
	if (tr_json_object_set(o, k, v) < 0) {
		*err = -ENOMEM;
	}
}

static int fail(struct tr_methods_err *err, int code, const char *param, const char *reason) {
	err->code = code;
	err->param = param;
	err->reason = reason;
	return -EINVAL;
}

static bool absent(const struct tr_json *v) {
	return !v || v->type == TR_JSON_NULL;
}

/* A string member: required → must be present. *ret NULL when absent. */
static int want_string(const struct tr_json *p, const char *key, bool required, bool nonempty,
	const char **ret, struct tr_methods_err *err) {
	const struct tr_json *v = tr_json_get(p, key);

	*ret = NULL;
	if (absent(v)) {
		return required ? fail(err, TR_RPC_INVALID_PARAMS, key, "missing") : 0;
	}
	if (v->type != TR_JSON_STRING) {
		return fail(err, TR_RPC_INVALID_PARAMS, key, "must be a string");
	}
	if (nonempty && v->u.str.len == 0) {
		return fail(err, TR_RPC_INVALID_PARAMS, key, "must not be empty");
	}
	*ret = v->u.str.s;
	return 0;
}

/* A boolean member: 0 absent, 1 present (*ret set), <0 error. */
static int want_bool(const struct tr_json *p, const char *key, bool required, bool *ret,
	struct tr_methods_err *err) {
	const struct tr_json *v = tr_json_get(p, key);

	if (absent(v)) {
		return required ? fail(err, TR_RPC_INVALID_PARAMS, key, "missing") : 0;
	}
	if (!tr_json_is_bool(v)) {
		return fail(err, TR_RPC_INVALID_PARAMS, key, "must be a boolean");
	}
	*ret = v->type == TR_JSON_TRUE;
	return 1;
}

/* ---- request builders ---- */

void tr_methods_req_done(struct tr_methods_req *r) {
	r->params = tr_json_free(r->params);
}

static int task_path(struct tr_methods_req *r, const char *ws, const struct tr_cache_task *t) {
	snprintf(r->path, sizeof(r->path), "Workspaces/%s/Tasks/%s", ws, t->sid);
	r->api_version = "v1";
	r->kind = TR_METHODS_TASK;
	return 0;
}

static void worker_path(struct tr_methods_req *r, const char *ws, const char *wk, const char *tail) {
	snprintf(r->path, sizeof(r->path), "Workspaces/%s/Workers/%s/%s", ws, wk, tail);
	r->api_version = "v2";
	r->method = "POST";
	r->if_match = -1;
	r->kind = TR_METHODS_TASK;
}

int tr_methods_build(const char *method, const struct tr_json *params,
	const struct tr_cache_task *task, const char *ws, const char *wk, bool version_check,
	struct tr_methods_req *ret, struct tr_methods_err *err) {
	struct tr_methods_req r = { .method = "POST", .if_match = -1 };
	struct tr_json *o = NULL;
	const char *sid, *s1 = NULL, *s2 = NULL, *s3 = NULL;
	const struct tr_json *v;
	bool b = false, has_b = false;
	int64_t when = 0, prio = -1;
	char mode[8] = "";
	int e = 0, rr;

	ws = ws ? ws : "";
	wk = wk ? wk : "";
	if (want_string(params, "sid", true, true, &sid, err) < 0) {
		return -EINVAL;
	}
	/* Per-method validation, before looking at the task. */
	if (strcmp(method, "task.complete") == 0) {
		if (want_string(params, "reason", true, false, &s1, err) < 0) {
			return -EINVAL;
		}
	} else if (strcmp(method, "task.wrapUp") == 0) {
		if (want_string(params, "reason", false, false, &s1, err) < 0) {
			return -EINVAL;
		}
	} else if (strcmp(method, "task.setAttributes") == 0) {
		v = tr_json_get(params, "attributes");
		if (!v) {
			return fail(err, TR_RPC_INVALID_PARAMS, "attributes", "missing");
		}
		if (v->type != TR_JSON_OBJECT) {
			return fail(err, TR_RPC_INVALID_PARAMS, "attributes", "must be an object");
		}
	} else if (strcmp(method, "task.setVirtualStartTime") == 0) {
		v = tr_json_get(params, "time");
		if (absent(v)) {
			return fail(err, TR_RPC_INVALID_PARAMS, "time", "missing");
		}
		if (tr_json_is_int(v)) {
			when = v->u.num.i;
		} else if (v->type != TR_JSON_STRING ||
			tr_task_json_time_parse(v->u.str.s, &when) < 0) {
			return fail(err, TR_RPC_INVALID_PARAMS, "time",
				"must be an RFC 3339 time or integer epoch seconds");
		}
		if (when < -2208988800LL || when > 253402300799LL) {
			return fail(err, TR_RPC_INVALID_PARAMS, "time", "out of range");
		}
	} else if (strcmp(method, "task.fetchLatestVersion") == 0 ||
		strcmp(method, "task.cancelTransfer") == 0) {
		/* sid only */
	} else if (strcmp(method, "task.hold") == 0) {
		if (want_string(params, "targetWorkerSid", true, true, &s1, err) < 0 ||
			want_bool(params, "onHold", true, &b, err) < 0 ||
			want_string(params, "holdUrl", false, false, &s2, err) < 0 ||
			want_string(params, "holdMethod", false, false, &s3, err) < 0) {
			return -EINVAL;
		}
	} else if (strcmp(method, "task.kick") == 0) {
		if (want_string(params, "workerSid", true, true, &s1, err) < 0) {
			return -EINVAL;
		}
	} else if (strcmp(method, "task.updateParticipant") == 0) {
		rr = want_bool(params, "hold", false, &b, err);
		if (rr < 0 || want_string(params, "holdUrl", false, false, &s2, err) < 0 ||
			want_string(params, "holdMethod", false, false, &s3, err) < 0) {
			return -EINVAL;
		}
		has_b = rr == 1;
	} else if (strcmp(method, "task.transfer") == 0) {
		if (want_string(params, "to", true, true, &s1, err) < 0 ||
			want_string(params, "mode", false, false, &s2, err) < 0) {
			return -EINVAL;
		}
		if (s2) {
			size_t i;

			for (i = 0; s2[i] && i < sizeof(mode) - 1; i++) {
				mode[i] = (char)toupper((unsigned char)s2[i]);
			}
			mode[i] = '\0';
			if (s2[i] || (strcmp(mode, "WARM") != 0 && strcmp(mode, "COLD") != 0)) {
				return fail(err, TR_RPC_INVALID_PARAMS, "mode", "must be WARM or COLD");
			}
		}
		v = tr_json_get(params, "priority");
		if (!absent(v)) {
			if (!tr_json_is_int(v) || v->u.num.i < 0 || v->u.num.i > INT32_MAX) {
				return fail(err, TR_RPC_INVALID_PARAMS, "priority",
					"must be an integer from 0 to 2147483647");
			}
			prio = v->u.num.i;
		}
		v = tr_json_get(params, "attributes");
		if (!absent(v) && v->type != TR_JSON_OBJECT) {
			return fail(err, TR_RPC_INVALID_PARAMS, "attributes", "must be an object");
		}
	} else {
		return -ENOENT;
	}
	if (!task) {
		return fail(err, TR_RPC_NOT_FOUND, "sid", "unknown task");
	}

	o = tr_json_new_object();
	if (!o) {
		return -ENOMEM;
	}
	if (strcmp(method, "task.complete") == 0 || strcmp(method, "task.wrapUp") == 0) {
		bool complete = method[5] == 'c';

		task_path(&r, ws, task);
		put(o, "AssignmentStatus", tr_json_new_string(complete ? "completed" : "wrapping"), &e);
		if (complete || (s1 && *s1)) {
			put(o, "Reason", tr_json_new_string(s1), &e);
		}
		r.if_match = version_check ? task->version : -1;
	} else if (strcmp(method, "task.setAttributes") == 0) {
		task_path(&r, ws, task);
		put(o, "Attributes", tr_json_dup(tr_json_get(params, "attributes")), &e);
		r.if_match = version_check ? task->version : -1;
	} else if (strcmp(method, "task.setVirtualStartTime") == 0) {
		char buf[40];

		task_path(&r, ws, task);
		tr_task_json_time_format(when, buf, sizeof(buf));
		put(o, "VirtualStartTime", tr_json_new_string(buf), &e);
		r.if_match = version_check ? task->version : -1;
	} else if (strcmp(method, "task.fetchLatestVersion") == 0) {
		task_path(&r, ws, task);
		r.method = "GET";
	} else if (strcmp(method, "task.hold") == 0) {
		worker_path(&r, ws, wk, "HoldWorkerParticipant");
		put(o, "TaskSid", tr_json_new_string(task->sid), &e);
		put(o, "TargetWorkerSid", tr_json_new_string(s1), &e);
		put(o, "Hold", tr_json_new_bool(b), &e);
		if (s2) {
			put(o, "HoldUrl", tr_json_new_string(s2), &e);
		}
		if (s3) {
			put(o, "HoldMethod", tr_json_new_string(s3), &e);
		}
	} else if (strcmp(method, "task.kick") == 0) {
		worker_path(&r, ws, wk, "KickWorkerParticipant");
		put(o, "TaskSid", tr_json_new_string(task->sid), &e);
		put(o, "TargetWorkerSid", tr_json_new_string(s1), &e);
	} else if (strcmp(method, "task.updateParticipant") == 0) {
		worker_path(&r, ws, wk, "CustomerParticipant");
		put(o, "TaskSid", tr_json_new_string(task->sid), &e);
		if (has_b) {
			put(o, "Hold", tr_json_new_bool(b), &e);
		}
		if (s2) {
			put(o, "HoldUrl", tr_json_new_string(s2), &e);
		}
		if (s3) {
			put(o, "HoldMethod", tr_json_new_string(s3), &e);
		}
	} else if (strcmp(method, "task.transfer") == 0) {
		const char *res = tr_cache_task_reservation(task);

		if (!res || task->n_res == 0) {
			tr_json_free(o);
			return fail(err, TR_RPC_INVALID_STATE, "sid", "no live reservation for this task");
		}
		worker_path(&r, ws, wk, "Transfers");
		r.kind = TR_METHODS_TRANSFER;
		put(o, "ReservationSid", tr_json_new_string(res), &e);
		put(o, "TaskSid", tr_json_new_string(task->sid), &e);
		put(o, "To", tr_json_new_string(s1), &e);
		if (mode[0]) {
			put(o, "Mode", tr_json_new_string(mode), &e);
		}
		if (prio >= 0) {
			put(o, "Priority", tr_json_new_int(prio), &e);
		}
		v = tr_json_get(params, "attributes");
		if (!absent(v)) {
			put(o, "Attributes", tr_json_dup(v), &e);
		}
	} else { /* task.cancelTransfer */
		char tail[128];

		if (!task->outgoing || !task->outgoing->sid) {
			tr_json_free(o);
			return fail(err, TR_RPC_INVALID_STATE, "sid", "no outgoing transfer");
		}
		if (tr_cache_transfer_is_final(task->outgoing)) {
			tr_json_free(o);
			return fail(err, TR_RPC_INVALID_STATE, "sid", "the outgoing transfer has ended");
		}
		snprintf(tail, sizeof(tail), "Transfers/%s", task->outgoing->sid);
		worker_path(&r, ws, wk, tail);
		r.kind = TR_METHODS_TRANSFER;
		put(o, "TaskSid", tr_json_new_string(task->outgoing->task_sid ?
			task->outgoing->task_sid : task->sid), &e);
		put(o, "TransferStatus", tr_json_new_string("canceled"), &e);
	}
	if (e) {
		tr_json_free(o);
		return -ENOMEM;
	}
	r.params = o;
	*ret = r;
	return 0;
}

/* ---- the method table ---- */

struct pdesc {
	const char *name;
	const char *type;
	bool required;
};

typedef void (*method_fn)(struct tr_daemon *d, struct tr_call *call, const char *name,
	const struct tr_json *params);

struct mdesc {
	const char *name;
	method_fn fn;
	struct pdesc params[7];
	const char *result;
};

static void m_task_list(struct tr_daemon *, struct tr_call *, const char *, const struct tr_json *);
static void m_task_get(struct tr_daemon *, struct tr_call *, const char *, const struct tr_json *);
static void m_task_request(struct tr_daemon *, struct tr_call *, const char *, const struct tr_json *);
static void m_subscribe(struct tr_daemon *, struct tr_call *, const char *, const struct tr_json *);
static void m_unsubscribe(struct tr_daemon *, struct tr_call *, const char *, const struct tr_json *);
static void m_status(struct tr_daemon *, struct tr_call *, const char *, const struct tr_json *);
static void m_update_token(struct tr_daemon *, struct tr_call *, const char *, const struct tr_json *);
static void m_describe(struct tr_daemon *, struct tr_call *, const char *, const struct tr_json *);

#define SID { "sid", "string", true }
static const struct mdesc methods[] = {
	{ "task.list", m_task_list, { { "status", "string", false }, { "after", "string", false },
		{ "limit", "integer", false } }, "{tasks: [Task], next}" },
	{ "task.get", m_task_get, { SID }, "Task" },
	{ "task.complete", m_task_request, { SID, { "reason", "string", true } }, "Task" },
	{ "task.wrapUp", m_task_request, { SID, { "reason", "string", false } }, "Task" },
	{ "task.setAttributes", m_task_request, { SID, { "attributes", "object", true } }, "Task" },
	{ "task.setVirtualStartTime", m_task_request, { SID, { "time", "string|integer", true } },
		"Task" },
	{ "task.fetchLatestVersion", m_task_request, { SID }, "Task" },
	{ "task.hold", m_task_request, { SID, { "targetWorkerSid", "string", true },
		{ "onHold", "boolean", true }, { "holdUrl", "string", false },
		{ "holdMethod", "string", false } }, "Task" },
	{ "task.kick", m_task_request, { SID, { "workerSid", "string", true } }, "Task" },
	{ "task.transfer", m_task_request, { SID, { "to", "string", true },
		{ "mode", "string", false }, { "priority", "integer", false },
		{ "attributes", "object", false } }, "Task" },
	{ "task.cancelTransfer", m_task_request, { SID }, "Task" },
	{ "task.updateParticipant", m_task_request, { SID, { "hold", "boolean", false },
		{ "holdUrl", "string", false }, { "holdMethod", "string", false } }, "Task" },
	{ "events.subscribe", m_subscribe, { { "events", "array", false },
		{ "tasks", "array", false }, { "since", "integer", false },
		{ "limit", "integer", false } },
		"{subscription, seq, tasks: [Task], next}" },
	{ "events.unsubscribe", m_unsubscribe, { { "subscription", "string", true } }, "{ok}" },
	{ "daemon.status", m_status, { { NULL, NULL, false } }, "Status" },
	{ "daemon.updateToken", m_update_token, { { "token", "string", true } }, "{ok, expiresAt}" },
	{ "rpc.describe", m_describe, { { NULL, NULL, false } }, "{methods, events}" },
};
#undef SID

static const char *const event_names[] = {
	"updated", "wrapup", "completed", "canceled", "transferInitiated",
	"transferAttemptFailed", "transferCompleted", "transferFailed", "transferCanceled",
	"reservationCreated", "reservationAccepted", "reservationRejected", "reservationTimeout",
	"reservationCanceled", "reservationRescinded", "reservationCompleted", "reservationWrapup",
	"connected", "disconnected", "ready", "tokenWillExpire", "tokenExpired", "tokenUpdated",
};

struct tr_json *tr_methods_describe(void) {
	struct tr_json *o = tr_json_new_object(), *ms = tr_json_new_array(), *es = tr_json_new_array();
	int e = 0;

	if (!o || !ms || !es) {
		tr_json_free(ms);
		tr_json_free(es);
		return tr_json_free(o);
	}
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		struct tr_json *m = tr_json_new_object(), *ps = tr_json_new_array();

		for (size_t j = 0; ps && j < 7 && methods[i].params[j].name; j++) {
			struct tr_json *p = tr_json_new_object();

			if (p) {
				put(p, "name", tr_json_new_string(methods[i].params[j].name), &e);
				put(p, "type", tr_json_new_string(methods[i].params[j].type), &e);
				put(p, "required", tr_json_new_bool(methods[i].params[j].required), &e);
			}
			if (tr_json_array_append(ps, p) < 0) {
				e = -ENOMEM;
			}
		}
		if (m) {
			put(m, "name", tr_json_new_string(methods[i].name), &e);
			put(m, "params", ps, &e);
			put(m, "result", tr_json_new_string(methods[i].result), &e);
		} else {
			tr_json_free(ps);
		}
		if (tr_json_array_append(ms, m) < 0) {
			e = -ENOMEM;
		}
	}
	for (size_t i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++) {
		if (tr_json_array_append(es, tr_json_new_string(event_names[i])) < 0) {
			e = -ENOMEM;
		}
	}
	put(o, "methods", ms, &e);
	put(o, "events", es, &e);
	if (e) {
		return tr_json_free(o);
	}
	return o;
}

static struct tr_json *param_data(const char *param, const char *reason) {
	struct tr_json *o = tr_json_new_object();
	int e = 0;

	if (!o) {
		return NULL;
	}
	put(o, "param", tr_json_new_string(param), &e);
	put(o, "reason", tr_json_new_string(reason), &e);
	if (e) {
		return tr_json_free(o);
	}
	return o;
}

static void invalid_param(struct tr_call *call, const char *param, const char *reason) {
	char msg[160];

	snprintf(msg, sizeof(msg), "invalid params: %s %s", param, reason);
	tr_call_error(call, TR_RPC_INVALID_PARAMS, msg, param_data(param, reason));
}

void tr_methods_dispatch(struct tr_daemon *d, struct tr_call *call, const char *method,
	const struct tr_json *params) {
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (strcmp(methods[i].name, method) == 0) {
			if (params && params->type != TR_JSON_OBJECT) {
				invalid_param(call, "params", "must be an object");
				return;
			}
			methods[i].fn(d, call, method, params);
			return;
		}
	}
	tr_call_error(call, TR_RPC_METHOD_NOT_FOUND, "method not found", NULL);
}

void tr_methods_conn_closed(struct tr_daemon *d, void *owner) {
	if (d->subs) {
		tr_subs_remove_owner(d->subs, owner);
	}
}

static void reply_task(struct tr_call *call, const struct tr_cache_task *t) {
	struct tr_json *j = tr_task_json_task_raw(t);

	tr_call_result(call, j);
}

/* ---- pages of tasks (task.list, the events.subscribe snapshot) ---- */

static int cmp_task_sid(const void *a, const void *b) {
	const struct tr_cache_task *x = *(const struct tr_cache_task *const *)a;
	const struct tr_cache_task *y = *(const struct tr_cache_task *const *)b;

	return strcmp(x->sid, y->sid);
}

/* The optional `limit` member: 1 … TR_LIST_PAGE_MAX, default TR_LIST_PAGE_DEFAULT. */
static int want_limit(const struct tr_json *p, int64_t *ret, struct tr_methods_err *err) {
	const struct tr_json *v = tr_json_get(p, "limit");

	*ret = TR_LIST_PAGE_DEFAULT;
	if (absent(v)) {
		return 0;
	}
	if (!tr_json_is_int(v) || v->u.num.i < 1 || v->u.num.i > TR_LIST_PAGE_MAX) {
		return fail(err, TR_RPC_INVALID_PARAMS, "limit", "must be an integer from 1 to 1000");
	}
	*ret = v->u.num.i;
	return 0;
}

/*
 * One page of the open tasks, in SID order: those after `after` (NULL: from the start) that
 * pass the filters, at most `limit` of them and at most TR_LIST_PAGE_BYTES of JSON, so that a
 * reply always fits in a frame whatever the number of tasks. *ret_next is the SID to pass as
 * `after` for the next page, or NULL on the last one (it points into the cache: use it before
 * the cache changes). Returns the array, or NULL on ENOMEM.
 */
static struct tr_json *task_page(struct tr_daemon *d, const char *status,
	const struct tr_json *sids, const char *after, int64_t limit, const char **ret_next) {
	const struct tr_cache_task **all;
	struct tr_json *arr = tr_json_new_array();
	size_t n = 0, cap = 0, bytes = 0;
	int64_t taken = 0;

	*ret_next = NULL;
	for (const struct tr_cache_task *t = tr_cache_first(d->cache); t; t = t->next) {
		cap++;
	}
	all = calloc(cap ? cap : 1, sizeof(*all));
	if (!arr || !all) {
		free(all);
		return tr_json_free(arr);
	}
	for (const struct tr_cache_task *t = tr_cache_first(d->cache); t; t = t->next) {
		bool want = !t->closed && (!after || strcmp(t->sid, after) > 0);

		if (want && status && strcmp(status, t->status) != 0 &&
			strcmp(status, tr_cache_task_status(t)) != 0) {
			want = false;
		}
		if (want && sids) {
			want = false;
			for (size_t i = 0; i < sids->u.arr.n; i++) {
				want = want || strcmp(sids->u.arr.items[i]->u.str.s, t->sid) == 0;
			}
		}
		if (want) {
			all[n++] = t;
		}
	}
	qsort(all, n, sizeof(*all), cmp_task_sid);
	for (size_t i = 0; i < n; i++) {
		struct tr_json *j = tr_task_json_task_raw(all[i]);
		size_t len;

		if (!j) {
			free(all);
			return tr_json_free(arr);
		}
		len = j->u.str.len; /* a raw node: the Task's text */
		if (taken == limit || (taken > 0 && bytes + len > TR_LIST_PAGE_BYTES)) {
			*ret_next = all[i - 1]->sid;
			tr_json_free(j);
			break;
		}
		bytes += len + 1;
		taken++;
		if (tr_json_array_append(arr, j) < 0) {
			free(all);
			return tr_json_free(arr);
		}
	}
	free(all);
	return arr;
}

static void m_task_list(struct tr_daemon *d, struct tr_call *call, const char *name,
	const struct tr_json *params) {
	struct tr_json *o, *arr;
	const char *status, *after, *next;
	struct tr_methods_err err;
	int64_t limit;
	int e = 0;

	(void)name;
	if (want_string(params, "status", false, false, &status, &err) < 0 ||
		want_string(params, "after", false, true, &after, &err) < 0 ||
		want_limit(params, &limit, &err) < 0) {
		invalid_param(call, err.param, err.reason);
		return;
	}
	o = tr_json_new_object();
	arr = task_page(d, status, NULL, after, limit, &next);
	if (!o || !arr) {
		tr_json_free(o);
		tr_json_free(arr);
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	put(o, "tasks", arr, &e);
	put(o, "next", next ? tr_json_new_string(next) : tr_json_new_null(), &e);
	tr_call_result(call, e ? tr_json_free(o) : o);
}

static void m_task_get(struct tr_daemon *d, struct tr_call *call, const char *name,
	const struct tr_json *params) {
	const struct tr_cache_task *t;
	struct tr_methods_err err;
	const char *sid;

	(void)name;
	if (want_string(params, "sid", true, true, &sid, &err) < 0) {
		invalid_param(call, err.param, err.reason);
		return;
	}
	t = tr_cache_get(d->cache, sid);
	if (!t) {
		struct tr_json *data = tr_json_new_object();

		if (data && tr_json_object_set(data, "sid", tr_json_new_string(sid)) < 0) {
			data = NULL;
		}
		tr_call_error(call, TR_RPC_NOT_FOUND, "unknown task", data);
		return;
	}
	reply_task(call, t);
}

/* ---- upstream requests ---- */

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

static int bridge_err_code(int r) {
	switch (r) {
	case -EKEYEXPIRED:
		return TR_RPC_TOKEN_EXPIRED;
	case -ENOTCONN:
	case -ESHUTDOWN:
		return TR_RPC_NOT_CONNECTED;
	default:
		return TR_RPC_INTERNAL_ERROR;
	}
}

/* A GET of the task, for a 412 or a refresh. Takes op; returns the bridge's error. */
static int send_get(struct op *op) {
	struct tr_upstream_request req = {
		.method = "GET",
		.api_version = "v1",
		.if_match = -1,
		.retry_transient = op->kind == OP_REFRESH,
	};
	char path[256];

	snprintf(path, sizeof(path), "Workspaces/%s/Tasks/%s",
		tr_bridge_workspace_sid(op->d->bridge) ? tr_bridge_workspace_sid(op->d->bridge) : "",
		op->task_sid);
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

static struct tr_json *upstream_data(long status, int64_t code, const char *message) {
	struct tr_json *o = tr_json_new_object();
	int e = 0;

	if (!o) {
		return NULL;
	}
	put(o, "httpStatus", tr_json_new_int(status), &e);
	if (code) {
		put(o, "twilioCode", tr_json_new_int(code), &e);
	}
	if (message) {
		put(o, "message", tr_json_new_string(message), &e);
	}
	if (e) {
		return tr_json_free(o);
	}
	return o;
}

static void refresh_pending(struct op *op, long status, const char *message) {
	tr_call_error(op->call, TR_RPC_REFRESH_PENDING,
		"applied upstream, local refresh pending", upstream_data(status, 0, message));
	start_refresh(op->d, op->task_sid);
}

static void finish_conflict(struct op *op) {
	const struct tr_cache_task *t = tr_cache_get(op->d->cache, op->task_sid);
	struct tr_json *data = upstream_data(412, op->twilio_code, op->message);
	char ver[32];

	if (data && t) {
		snprintf(ver, sizeof(ver), "%" PRId64, t->version);
		if (tr_json_object_set(data, "currentVersion", tr_json_new_string(ver)) < 0) {
			data = NULL;
		}
	}
	tr_call_error(op->call, TR_RPC_VERSION_CONFLICT, "version conflict", data);
}

static void on_reply(void *userdata, const struct tr_upstream_reply *reply) {
	struct op *op = userdata;
	struct tr_daemon *d = op->d;
	bool ok = reply->err == 0 && reply->http_status >= 200 && reply->http_status < 300;
	int r;

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
	if (reply->err == -ETIMEDOUT) {
		tr_call_error(op->call, TR_RPC_TIMEOUT, "upstream timeout; outcome unknown", NULL);
	} else if (reply->err == -EBADMSG) {
		refresh_pending(op, reply->http_status, reply->message);
	} else if (reply->err < 0) {
		struct tr_json *data = tr_json_new_object();

		if (data && (tr_json_object_set(data, "message", tr_json_new_string(
			reply->message ? reply->message : "network error")) < 0 ||
			tr_json_object_set(data, "maybeSent", tr_json_new_bool(reply->maybe_sent)) < 0)) {
			data = NULL;
		}
		tr_call_error(op->call, TR_RPC_NETWORK_ERROR, "network error", data);
	} else if (ok) {
		const struct tr_cache_task *t;

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
				upstream_data(reply->http_status, 0, NULL));
		} else if (r == -ENOMEM) {
			tr_call_error(op->call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		} else {
			reply_task(op->call, t);
		}
	} else if (reply->http_status == 412) {
		op->kind = OP_CONFLICT_GET;
		op->twilio_code = reply->twilio_code;
		op->message = reply->message ? strdup(reply->message) : NULL;
		if (send_get(op) == 0) {
			return;
		}
		finish_conflict(op);
	} else if (reply->http_status == 401) {
		/* the proxy no longer accepts the token (expired or revoked) */
		tr_call_error(op->call, TR_RPC_TOKEN_EXPIRED, "the worker token is not accepted",
			upstream_data(401, reply->twilio_code, reply->message));
	} else if (reply->http_status == 429) {
		tr_call_error(op->call, TR_RPC_RATE_LIMITED, "rate limited",
			upstream_data(429, reply->twilio_code, reply->message));
	} else {
		tr_call_error(op->call, TR_RPC_UPSTREAM_ERROR,
			reply->message ? reply->message : "upstream error",
			upstream_data(reply->http_status, reply->twilio_code, reply->message));
	}
	op_free(op);
}

static void m_task_request(struct tr_daemon *d, struct tr_call *call, const char *name,
	const struct tr_json *params) {
	struct tr_methods_req req = { 0 };
	struct tr_methods_err err = { 0 };
	struct tr_upstream_request up;
	enum tr_bridge_state st;
	const struct tr_cache_task *t;
	struct op *op;
	int r;

	t = tr_cache_get(d->cache, tr_json_get_string(params, "sid"));
	r = tr_methods_build(name, params, t, tr_bridge_workspace_sid(d->bridge),
		tr_bridge_worker_sid(d->bridge), d->cfg->version_check, &req, &err);
	if (r == -EINVAL) {
		if (err.code == TR_RPC_INVALID_PARAMS) {
			invalid_param(call, err.param, err.reason);
		} else if (err.code == TR_RPC_NOT_FOUND) {
			struct tr_json *data = tr_json_new_object();

			if (data && tr_json_object_set(data, "sid",
				tr_json_new_string(tr_json_get_string(params, "sid"))) < 0) {
				data = NULL;
			}
			tr_call_error(call, TR_RPC_NOT_FOUND, "unknown task", data);
		} else {
			tr_call_error(call, err.code, err.reason, NULL);
		}
		return;
	}
	if (r < 0) {
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "internal error", NULL);
		return;
	}
	st = tr_bridge_get_state(d->bridge);
	if (st != TR_BRIDGE_READY) {
		tr_methods_req_done(&req);
		if (st == TR_BRIDGE_TOKEN_EXPIRED) {
			tr_call_error(call, TR_RPC_TOKEN_EXPIRED, "the worker token expired", NULL);
		} else {
			tr_call_error(call, TR_RPC_NOT_CONNECTED, "not connected", NULL);
		}
		return;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		tr_methods_req_done(&req);
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	op->d = d;
	op->call = call;
	op->kind = req.kind == TR_METHODS_TRANSFER ? OP_TRANSFER : OP_TASK;
	snprintf(op->task_sid, sizeof(op->task_sid), "%s", t->sid);
	up = (struct tr_upstream_request){
		.path = req.path,
		.method = req.method,
		.api_version = req.api_version,
		.params = req.params,
		.if_match = req.if_match,
		.retry_transient = strcmp(req.method, "GET") == 0,
	};
	op->new_transfer = strcmp(name, "task.transfer") == 0;
	r = tr_bridge_request(d->bridge, &up, on_reply, op);
	tr_methods_req_done(&req);
	if (r >= 0 && op->new_transfer) {
		tr_cache_transfer_in_flight(d->cache, op->task_sid, +1);
	}
	if (r < 0) {
		tr_call_error(call, bridge_err_code(r), r == -EKEYEXPIRED ? "the worker token expired" :
			"not connected", NULL);
		op_free(op);
	}
}

/* ---- events.*, daemon.*, rpc.describe ---- */

static void m_subscribe(struct tr_daemon *d, struct tr_call *call, const char *name,
	const struct tr_json *params) {
	const struct tr_json *events = tr_json_get(params, "events");
	const struct tr_json *tasks = tr_json_get(params, "tasks");
	const struct tr_json *since = tr_json_get(params, "since");
	void *owner = tr_call_owner(call);
	struct tr_json *o, *arr;
	struct tr_methods_err err;
	const char *next = NULL;
	uint64_t since_v = 0;
	int64_t limit;
	char id[24];
	int r, e = 0;

	(void)name;
	if (want_limit(params, &limit, &err) < 0) {
		invalid_param(call, err.param, err.reason);
		return;
	}
	if (absent(events)) {
		events = NULL;
	}
	if (absent(tasks)) {
		tasks = NULL;
	}
	if (events && events->type != TR_JSON_ARRAY) {
		invalid_param(call, "events", "must be an array of strings");
		return;
	}
	if (tasks && tasks->type != TR_JSON_ARRAY) {
		invalid_param(call, "tasks", "must be an array of strings");
		return;
	}
	for (size_t i = 0; events && i < events->u.arr.n; i++) {
		if (!tr_json_is(events->u.arr.items[i], TR_JSON_STRING)) {
			invalid_param(call, "events", "must be an array of strings");
			return;
		}
	}
	for (size_t i = 0; tasks && i < tasks->u.arr.n; i++) {
		if (!tr_json_is(tasks->u.arr.items[i], TR_JSON_STRING)) {
			invalid_param(call, "tasks", "must be an array of strings");
			return;
		}
	}
	if (!absent(since)) {
		if (!tr_json_is_int(since) || since->u.num.i < 1) {
			invalid_param(call, "since", "must be an integer >= 1");
			return;
		}
		since_v = (uint64_t)since->u.num.i;
		if (tr_subs_check_since(d->subs, since_v) < 0) {
			struct tr_json *data = tr_json_new_object();

			if (data && (tr_json_object_set(data, "oldestSeq",
				tr_json_new_int((int64_t)tr_subs_oldest(d->subs))) < 0 ||
				tr_json_object_set(data, "currentSeq",
				tr_json_new_int((int64_t)tr_subs_seq(d->subs))) < 0)) {
				data = NULL;
			}
			tr_call_error(call, TR_RPC_REPLAY_GONE, "replay gone; list again", data);
			return;
		}
	}
	if (!owner) {
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "connection closing", NULL);
		return;
	}
	o = tr_json_new_object();
	arr = task_page(d, NULL, tasks, NULL, limit, &next);
	if (!o || !arr || e) {
		tr_json_free(o);
		tr_json_free(arr);
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	r = tr_subs_add(d->subs, events, tasks, owner, tr_rpcsrv_send, id, sizeof(id));
	if (r < 0) {
		tr_json_free(o);
		tr_json_free(arr);
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	put(o, "subscription", tr_json_new_string(id), &e);
	put(o, "seq", tr_json_new_int((int64_t)tr_subs_seq(d->subs)), &e);
	put(o, "tasks", arr, &e);
	/* more tasks than fit in one reply: the rest with task.list {after: next}; changes
	 * to them after `seq` arrive as events on this subscription */
	put(o, "next", next ? tr_json_new_string(next) : tr_json_new_null(), &e);
	if (e) {
		(void)tr_subs_remove(d->subs, id, owner);
		tr_json_free(o);
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	/* The reply is queued first, then the replay, before any new event. */
	tr_call_result(call, o);
	if (since_v) {
		(void)tr_subs_replay(d->subs, id, since_v);
	}
}

static void m_unsubscribe(struct tr_daemon *d, struct tr_call *call, const char *name,
	const struct tr_json *params) {
	struct tr_methods_err err;
	const char *id;
	struct tr_json *o;

	(void)name;
	if (want_string(params, "subscription", true, false, &id, &err) < 0) {
		invalid_param(call, err.param, err.reason);
		return;
	}
	if (tr_subs_remove(d->subs, id, tr_call_owner(call)) < 0) {
		invalid_param(call, "subscription", "unknown subscription");
		return;
	}
	o = tr_json_new_object();
	if (o && tr_json_object_set(o, "ok", tr_json_new_bool(true)) < 0) {
		o = NULL;
	}
	tr_call_result(call, o);
}

static void m_status(struct tr_daemon *d, struct tr_call *call, const char *name,
	const struct tr_json *params) {
	struct tr_json *o = tr_json_new_object(), *lim = tr_json_new_object();
	struct tr_json *cnt = tr_json_new_object();
	const struct tr_cache_counters *cc = tr_cache_get_counters(d->cache);
	enum tr_bridge_state st = tr_bridge_get_state(d->bridge);
	int e = 0;

	(void)name;
	(void)params;
	if (!o || !lim || !cnt) {
		tr_json_free(lim);
		tr_json_free(cnt);
		tr_json_free(o);
		tr_call_result(call, NULL);
		return;
	}
	put(o, "version", tr_json_new_string(TR_VERSION), &e);
	put(o, "state", tr_json_new_string(tr_bridge_state_str(st)), &e);
	put(o, "upstream", d->bridge ? tr_bridge_status(d->bridge) : tr_json_new_null(), &e);
	put(o, "tasks", tr_json_new_int((int64_t)tr_cache_count(d->cache, false)), &e);
	put(o, "closedTasks", tr_json_new_int((int64_t)tr_cache_count(d->cache, true)), &e);
	put(o, "subscriptions", tr_json_new_int((int64_t)tr_subs_count(d->subs)), &e);
	put(o, "seq", tr_json_new_int((int64_t)tr_subs_seq(d->subs)), &e);
	put(lim, "maxConnections", tr_json_new_int(d->cfg->max_connections > 0 ?
		d->cfg->max_connections : TR_MAX_CONNECTIONS_DEFAULT), &e);
	put(lim, "inflight", tr_json_new_int(TR_RPC_MAX_INFLIGHT), &e);
	put(lim, "outqSoft", tr_json_new_int(TR_OUTQ_SOFT_LIMIT), &e);
	put(lim, "outqHard", tr_json_new_int(TR_OUTQ_HARD_LIMIT), &e);
	put(lim, "frameMax", tr_json_new_int(TR_FRAME_MAX_PAYLOAD_DEFAULT), &e);
	put(cnt, "eventsPublished", tr_json_new_int((int64_t)tr_subs_published(d->subs)), &e);
	put(cnt, "eventsIgnoredUnknownTask", tr_json_new_int((int64_t)cc->ignored_unknown_task), &e);
	put(cnt, "transferEventsDropped", tr_json_new_int((int64_t)cc->transfer_events_dropped), &e);
	put(cnt, "stalePayloads", tr_json_new_int((int64_t)cc->stale_payloads), &e);
	put(cnt, "malformedPayloads", tr_json_new_int((int64_t)cc->malformed), &e);
	tr_rpcsrv_fill_status(d->rpcsrv, o, cnt);
	put(o, "limits", lim, &e);
	put(o, "counters", cnt, &e);
	tr_call_result(call, e ? tr_json_free(o) : o);
}

static void m_update_token(struct tr_daemon *d, struct tr_call *call, const char *name,
	const struct tr_json *params) {
	struct tr_methods_err err;
	const char *token;
	struct tr_json *o;
	int r, e = 0;

	(void)name;
	if (want_string(params, "token", true, true, &token, &err) < 0) {
		invalid_param(call, err.param, err.reason);
		return;
	}
	r = tr_bridge_update_token(d->bridge, token);
	if (r == -EINVAL) {
		invalid_param(call, "token", "not a JWT with an exp claim");
		return;
	} else if (r == -EKEYEXPIRED) {
		invalid_param(call, "token", "expired");
		return;
	} else if (r < 0) {
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "internal error", NULL);
		return;
	}
	o = tr_json_new_object();
	if (!o) {
		tr_call_result(call, NULL);
		return;
	}
	put(o, "ok", tr_json_new_bool(true), &e);
	put(o, "expiresAt", tr_json_new_int(tr_bridge_token_expires_at(d->bridge)), &e);
	tr_call_result(call, e ? tr_json_free(o) : o);
}

static void m_describe(struct tr_daemon *d, struct tr_call *call, const char *name,
	const struct tr_json *params) {
	(void)d;
	(void)name;
	(void)params;
	tr_call_result(call, tr_methods_describe());
}
