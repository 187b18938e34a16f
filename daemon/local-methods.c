/*
 * local-methods.c — the rows answered without an upstream request (task.list, task.get,
 * events.*, daemon.*, rpc.describe) and the daemon's whole method table (see
 * local-methods.h).
 */
#include "local-methods.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridge.h"
#include "cache.h"
#include "config.h"
#include "daemon.h"
#include "json.h"
#include "log.h"
#include "rpc.h"
#include "rpcsrv.h"
#include "subs.h"
#include "task-json.h"
#include "task-methods.h"
#include "tr-build.h"
#include "tr-limits.h"
#include "worker-methods.h"
#include "worker-state.h"

/* ---- pages of tasks (task.list, the events.subscribe snapshot) ---- */

static int cmp_task_sid(const void *a, const void *b) {
	const struct tr_cache_task *x = *(const struct tr_cache_task *const *)a;
	const struct tr_cache_task *y = *(const struct tr_cache_task *const *)b;

	return strcmp(x->sid, y->sid);
}

/* The optional `limit` member (the row checked its range). */
static int64_t page_limit(const struct tr_json *params) {
	int64_t limit;

	return tr_json_get_int(params, "limit", &limit) == 0 ? limit : TR_LIST_PAGE_DEFAULT;
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
	int e = 0;

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

		if (want && status && strcasecmp(status, t->status) != 0 &&
			strcasecmp(status, tr_cache_task_status(t)) != 0) {
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
		if (tr_json_push(arr, j, &e) < 0) {
			free(all);
			return tr_json_free(arr);
		}
	}
	free(all);
	return arr;
}

/* ---- the rows served here ---- */

static void m_task_list(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	struct tr_json *o = tr_json_new_object(), *arr;
	const char *next;
	int e = 0;

	arr = task_page(d, tr_json_get_string(params, "status"), NULL,
		tr_json_get_string(params, "after"), page_limit(params), &next);
	tr_json_put(o, "tasks", arr, &e);
	tr_json_put(o, "next", next ? tr_json_new_string(next) : tr_json_new_null(), &e);
	tr_call_result(call, e < 0 ? tr_json_free(o) : o);
}

static void m_task_get(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	const char *sid = tr_json_get_string(params, "sid");
	const struct tr_cache_task *t = tr_cache_get(d->cache, sid);

	if (!t) {
		tr_methods_unknown_task(call, sid);
		return;
	}
	tr_call_result(call, tr_task_json_task_raw(t));
}

/* The one answer to a `since` that cannot be replayed, whatever the reason: the client
 * subscribes again without it and lists the tasks again. */
static void replay_gone(struct tr_daemon *d, struct tr_call *call, enum tr_subs_gap gap) {
	struct tr_json *data = tr_json_new_object();
	char msg[96];
	int e = 0;

	tr_json_put(data, "reason", tr_json_new_string(tr_subs_gap_str(gap)), &e);
	tr_json_put(data, "epoch", tr_json_new_string(tr_subs_epoch(d->subs)), &e);
	tr_json_put(data, "oldestSeq", tr_json_new_int((int64_t)tr_subs_oldest(d->subs)), &e);
	tr_json_put(data, "currentSeq", tr_json_new_int((int64_t)tr_subs_seq(d->subs)), &e);
	snprintf(msg, sizeof(msg), "replay gone (%s); subscribe without since and list again",
		tr_subs_gap_str(gap));
	tr_call_error(call, TR_RPC_REPLAY_GONE, msg, e < 0 ? tr_json_free(data) : data);
}

static void m_subscribe(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	const struct tr_json *events = tr_json_get(params, "events");
	const struct tr_json *tasks = tr_json_get(params, "tasks");
	const char *epoch = tr_json_get_string(params, "epoch");
	void *owner = tr_call_owner(call);
	struct tr_json *o, *arr;
	enum tr_subs_gap gap;
	const char *next = NULL;
	int64_t since = 0;
	char id[24];
	int e = 0, r;

	events = tr_json_is(events, TR_JSON_ARRAY) ? events : NULL;
	tasks = tr_json_is(tasks, TR_JSON_ARRAY) ? tasks : NULL;
	if (tr_json_get_int(params, "since", &since) < 0) {
		since = 0;
		if (epoch) {
			tr_methods_invalid_param(call, "epoch", "only with since");
			return;
		}
	} else if ((gap = tr_subs_check_since(d->subs, epoch, (uint64_t)since)) !=
		TR_SUBS_GAP_NONE) {
		replay_gone(d, call, gap);
		return;
	}
	if (!owner) {
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "connection closing", NULL);
		return;
	}
	r = tr_subs_add(d->subs, events, tasks, owner, tr_rpcsrv_send, id, sizeof(id));
	if (r == -EDQUOT) {
		struct tr_json *data = tr_json_new_object();

		if (tr_subs_refused_cap(d->subs) == 1) {
			tr_log_warning("a connection asked for more than %d subscriptions: refused "
				       "(logged once; counted in daemon.status)", TR_SUBS_PER_CONNECTION);
		}
		tr_json_put(data, "limit", tr_json_new_int(TR_SUBS_PER_CONNECTION), &e);
		tr_json_put(data, "value", tr_json_new_int(TR_SUBS_PER_CONNECTION + 1), &e);
		tr_call_error(call, TR_RPC_TOO_MANY_REQUESTS, "too many subscriptions on this "
			"connection", e < 0 ? tr_json_free(data) : data);
		return;
	}
	o = tr_json_new_object();
	arr = task_page(d, NULL, tasks, NULL, page_limit(params), &next);
	if (r < 0 || !o || !arr) {
		if (r == 0) {
			(void)tr_subs_remove(d->subs, id, owner);
		}
		tr_json_free(o);
		tr_json_free(arr);
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	tr_json_put(o, "subscription", tr_json_new_string(id), &e);
	tr_json_put(o, "epoch", tr_json_new_string(tr_subs_epoch(d->subs)), &e);
	tr_json_put(o, "seq", tr_json_new_int((int64_t)tr_subs_seq(d->subs)), &e);
	tr_json_put(o, "tasks", arr, &e);
	/* more tasks than fit in one reply: the rest with task.list {after: next}; changes
	 * to them after `seq` arrive as events on this subscription */
	tr_json_put(o, "next", next ? tr_json_new_string(next) : tr_json_new_null(), &e);
	if (e < 0) {
		(void)tr_subs_remove(d->subs, id, owner);
		tr_json_free(o);
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	/* The reply is queued first, then the replay, before any new event. */
	tr_call_result(call, o);
	if (since > 0) {
		(void)tr_subs_replay(d->subs, id, (uint64_t)since);
	}
}

static void m_unsubscribe(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	struct tr_json *o;
	int e = 0;

	if (tr_subs_remove(d->subs, tr_json_get_string(params, "subscription"),
		tr_call_owner(call)) < 0) {
		tr_methods_invalid_param(call, "subscription", "unknown subscription");
		return;
	}
	o = tr_json_new_object();
	tr_json_put(o, "ok", tr_json_new_bool(true), &e);
	tr_call_result(call, e < 0 ? tr_json_free(o) : o);
}

/* The JSON names of every status counter live here, and only here. */
static struct tr_json *status_counters(struct tr_daemon *d, const struct tr_rpcsrv_stats *rs,
	int *e) {
	const struct tr_cache_counters *cc = tr_cache_get_counters(d->cache);
	const struct tr_wstate_counters *wc = tr_wstate_get_counters(d->wstate);
	const struct {
		const char *name;
		uint64_t value;
	} rows[] = {
		{ "eventsPublished", tr_subs_published(d->subs) },
		{ "subscriptionsRefusedCap", tr_subs_refused_cap(d->subs) },
		{ "eventsIgnoredUnknownTask", cc->ignored_unknown_task },
		{ "transferEventsDropped", cc->transfer_events_dropped },
		{ "stalePayloads", cc->stale_payloads },
		{ "malformedPayloads", cc->malformed },
		{ "oversizeValuesOmitted", cc->oversize_omitted },
		{ "workerPayloadsMalformed", wc->malformed },
		{ "eventsIgnoredUnknownChannel", wc->unknown_channel },
		{ "connectionsRefusedLimit", rs->refused_limit },
		{ "connectionsRefusedCred", rs->refused_cred },
		{ "connectionsRefusedUserQuota", rs->refused_quota },
		{ "connectionsDroppedNoFds", rs->refused_fds },
		{ "idleMidFrameDisconnects", rs->idle_timeouts },
		{ "slowClientsDisconnected", rs->slow },
		{ "inflightPauses", rs->inflight_pauses },
		{ "frameErrors", rs->frame_errors },
		{ "parseErrors", rs->parse_errors },
	};
	struct tr_json *o = tr_json_new_object();

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		tr_json_put(o, rows[i].name, tr_json_new_int((int64_t)rows[i].value), e);
	}
	return o;
}

static struct tr_json *status_limits(struct tr_daemon *d, int *e) {
	struct tr_json *o = tr_json_new_object();

	tr_json_put(o, "maxConnections",
		tr_json_new_int((int64_t)tr_rpcsrv_max_connections(d->rpcsrv)), e);
	tr_json_put(o, "inflight", tr_json_new_int(TR_RPC_MAX_INFLIGHT), e);
	tr_json_put(o, "outqSoft", tr_json_new_int(TR_OUTQ_SOFT_LIMIT), e);
	tr_json_put(o, "outqHard", tr_json_new_int(TR_OUTQ_HARD_LIMIT), e);
	tr_json_put(o, "frameMax", tr_json_new_int(TR_FRAME_MAX_PAYLOAD_DEFAULT), e);
	return o;
}

static void m_status(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	struct tr_json *o = tr_json_new_object();
	struct tr_rpcsrv_stats rs;
	int e = 0;

	tr_rpcsrv_get_stats(d->rpcsrv, &rs);
	tr_json_put(o, "version", tr_json_new_string(TR_VERSION), &e);
	tr_json_put(o, "state",
		tr_json_new_string(tr_bridge_state_str(tr_bridge_get_state(d->bridge))), &e);
	tr_json_put(o, "upstream", d->bridge ? tr_bridge_status(d->bridge) : tr_json_new_null(),
		&e);
	tr_json_put(o, "tasks", tr_json_new_int((int64_t)tr_cache_count(d->cache, false)), &e);
	tr_json_put(o, "closedTasks", tr_json_new_int((int64_t)tr_cache_count(d->cache, true)), &e);
	tr_json_put(o, "subscriptions", tr_json_new_int((int64_t)tr_subs_count(d->subs)), &e);
	tr_json_put(o, "epoch", tr_json_new_string(tr_subs_epoch(d->subs)), &e);
	tr_json_put(o, "seq", tr_json_new_int((int64_t)tr_subs_seq(d->subs)), &e);
	{
		struct tr_json *rp = tr_json_new_object();
		struct tr_subs_ring_stats st;

		tr_subs_ring_stats(d->subs, &st);
		tr_json_put(rp, "oldestSeq", tr_json_new_int((int64_t)tr_subs_oldest(d->subs)), &e);
		tr_json_put(rp, "events", tr_json_new_int((int64_t)st.events), &e);
		tr_json_put(rp, "textBytes", tr_json_new_int((int64_t)st.text_bytes), &e);
		tr_json_put(rp, "fromRecords", tr_json_new_int((int64_t)st.from_records), &e);
		tr_json_put(o, "replay", rp, &e);
	}
	tr_json_put(o, "connections", tr_json_new_int((int64_t)rs.connections), &e);
	tr_json_put(o, "limits", status_limits(d, &e), &e);
	tr_json_put(o, "counters", status_counters(d, &rs, &e), &e);
	tr_call_result(call, e < 0 ? tr_json_free(o) : o);
}

static void not_permitted(struct tr_call *call, const char *reason, const char *message) {
	struct tr_json *data = tr_json_new_object();
	int e = 0;

	tr_json_put(data, "reason", tr_json_new_string(reason), &e);
	tr_call_error(call, TR_RPC_NOT_PERMITTED, message, e < 0 ? tr_json_free(data) : data);
}

/* The token decides whose work the session is: only the daemon's own uid or root may
 * replace it (not an --allow-group member), and a token for another account, workspace or
 * worker only with switchWorker: true. */
static void m_update_token(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	const struct tr_json *sw = tr_json_get(params, "switchWorker");
	struct tr_json *o;
	int e = 0, r;

	if (!tr_call_from_owner(call)) {
		tr_log_warning("daemon.updateToken refused for uid %ld: only the daemon's owner may "
			       "replace the token", (long)tr_call_peer_uid(call));
		not_permitted(call, "owner",
			"only the daemon's own user (or root) may replace the token");
		return;
	}
	r = tr_bridge_update_token(d->bridge, tr_json_get_string(params, "token"),
		sw && sw->type == TR_JSON_TRUE);
	if (r == -EXDEV) {
		not_permitted(call, "identity", "the token is for another account, workspace or "
			"worker; pass switchWorker: true to switch");
		return;
	} else if (r == -EINVAL) {
		tr_methods_invalid_param(call, "token", "not a JWT with an exp claim");
		return;
	} else if (r == -EKEYEXPIRED) {
		tr_methods_invalid_param(call, "token", "expired");
		return;
	} else if (r < 0) {
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "internal error", NULL);
		return;
	}
	o = tr_json_new_object();
	tr_json_put(o, "ok", tr_json_new_bool(true), &e);
	tr_json_put(o, "expiresAt", tr_json_new_int(tr_bridge_token_expires_at(d->bridge)), &e);
	tr_call_result(call, e < 0 ? tr_json_free(o) : o);
}

static void m_describe(struct tr_daemon *d, struct tr_call *call, const struct tr_method *m,
	const struct tr_json *params) {
	tr_call_result(call, tr_methods_describe(tr_daemon_methods, tr_subs_event_names));
}

#define LIMIT TR_P_INTEGER("limit", 1, TR_LIST_PAGE_MAX)

/* task.list's status: a wire status, or the derived "transferring". */
static const char *const task_statuses[] = { "pending", "reserved", "assigned", "wrapping",
	"completed", "canceled", "transferring", NULL };

static const struct tr_method rows_local[] = {
	{ "task.list", TR_PARAMS(
		{ .name = "status", .type = TR_PARAM_STRING, .values = task_statuses },
		TR_P_STRING("after", false, true), LIMIT), "{tasks: [Task], next}", m_task_list,
		NULL, false },
	{ "task.get", TR_PARAMS(TR_P_SID), "Task", m_task_get, NULL, false },
};

static const struct tr_method rows_daemon[] = {
	{ "events.subscribe", TR_PARAMS(TR_P_STRINGS_OF("events", tr_subs_event_names),
		TR_P_STRINGS("tasks"), TR_P_INTEGER("since", 1, INT64_MAX),
		TR_P_STRING("epoch", false, true), LIMIT),
		"{subscription, epoch, seq, tasks: [Task], next}", m_subscribe, NULL, false },
	{ "events.unsubscribe", TR_PARAMS(TR_P_STRING("subscription", true, false)), "{ok}",
		m_unsubscribe, NULL, false },
	{ "daemon.status", TR_P_NONE, "Status", m_status, NULL, false },
	{ "daemon.updateToken", TR_PARAMS(TR_P_STRING("token", true, true),
		TR_P_BOOLEAN("switchWorker", false)), "{ok, expiresAt}", m_update_token, NULL, false },
	{ "rpc.describe", TR_P_NONE, "{methods, events}", m_describe, NULL, false },
};

static const struct tr_method_table cache_rows = {
	rows_local, sizeof(rows_local) / sizeof(rows_local[0])
};
static const struct tr_method_table daemon_rows = {
	rows_daemon, sizeof(rows_daemon) / sizeof(rows_daemon[0])
};

/* The order rpc.describe lists them in. */
const struct tr_method_table *const tr_daemon_methods[] = {
	&cache_rows,
	&tr_task_methods,
	&tr_worker_methods,
	&daemon_rows,
	NULL,
};

void tr_local_methods_dispatch(void *userdata, struct tr_call *call, const char *method,
	const struct tr_json *params) {
	tr_methods_dispatch(tr_daemon_methods, userdata, call, method, params);
}

void tr_local_methods_conn_closed(void *userdata, void *owner) {
	struct tr_daemon *d = userdata;

	if (d->subs) {
		tr_subs_remove_owner(d->subs, owner);
	}
}
