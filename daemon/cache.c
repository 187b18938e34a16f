/*
 * cache.c — the task model (see cache.h). Tasks live in a list in arrival order, which
 * task.list and expiry walk, and in a sid index (task-index.h) for the lookup every event
 * does.
 */
#include "cache.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache-internal.h"
#include "json.h"
#include "task-index.h"
#include "task-res.h"
#include "task-wire.h"
#include "tr-limits.h"

/* struct tr_cache and struct tr_cache_pending are in cache-internal.h. */

/* ---- tasks ---- */

static void pending_free_all(struct tr_cache_pending *p) {
	while (p) {
		struct tr_cache_pending *n = p->next;

		free(p->event_type);
		tr_json_free(p->payload);
		free(p);
		p = n;
	}
}

void tr_cache_res_clear(struct tr_cache_task *t) {
	tr_task_res_free_all(&t->res, &t->n_res);
}

static void task_free(struct tr_cache_task *t) {
	if (!t) {
		return;
	}
	tr_task_wire_task_done(t);
	tr_cache_res_clear(t);
	tr_task_res_free_all(&t->ended, &t->n_ended);
	tr_task_wire_unintern(t->last_res_sid);
	tr_task_wire_transfer_free(t->incoming);
	tr_task_wire_transfer_free(t->outgoing);
	pending_free_all(t->pending);
	free(t);
}

/* Apply a Task payload to t under the version rule. 0 applied, 1 stale, <0 error. */
int tr_cache_task_apply(struct tr_cache *c, struct tr_cache_task *t, const struct tr_json *p) {
	struct tr_cache_task n = { 0 };
	int64_t keep_created;
	bool first;
	int r;

	r = tr_task_wire_task_read(p, &n);
	if (r < 0) {
		if (r == -EBADMSG) {
			c->counters.malformed++;
		}
		return r;
	}
	if (t->sid && strcmp(n.sid, t->sid) != 0) {
		tr_task_wire_task_done(&n);
		return -EBADMSG;
	}
	if (t->sid && n.version < t->version) {
		c->counters.stale_payloads++;
		tr_task_wire_task_done(&n);
		return 1;
	}
	if (n.attributes_omitted || n.addons_omitted) {
		c->counters.oversize_omitted++;
	}
	/* The SDK never changes dateCreated once known. */
	keep_created = t->sid ? t->date_created : n.date_created;
	first = !t->sid;
	tr_task_wire_task_move(t, &n);
	t->date_created = keep_created;
	if (first) {
		tr_task_index_add(&c->index, t);
	}
	return 0;
}

void tr_cache_touch(const struct tr_cache *c, const struct tr_cache_task *t) {
	if (t && t->subs_holds && c->change_cb) {
		c->change_cb(c->change_userdata, t, false);
	}
}

void tr_cache_touch_free(const struct tr_cache *c, const struct tr_cache_task *t) {
	if (t && t->subs_holds && c->change_cb) {
		c->change_cb(c->change_userdata, t, true);
	}
}

struct tr_cache_task *tr_cache_find_task(const struct tr_cache *c, const char *sid) {
	struct tr_cache_task *t = tr_task_index_find(&c->index, sid);

	tr_cache_touch(c, t);
	return t;
}

/* Publish one event: res is the reservation of a reservation event (its sid is res_sid). */
void tr_cache_emit_full(struct tr_cache *c, const char *name, const struct tr_cache_task *t,
	const char *res_sid, const struct tr_cache_res *res, const struct tr_cache_transfer *x,
	unsigned flags, const char *type) {
	struct tr_cache_event ev = {
		.name = name,
		.task = t,
		.reservation_sid = res ? res->sid : res_sid,
		.reservation = res,
		.ident = &c->ident,
		.transfer = x,
		.flags = flags,
		.event_type = type,
	};

	if (c->cb) {
		c->cb(c->userdata, &ev);
	}
}

void tr_cache_emit(struct tr_cache *c, const char *name, const struct tr_cache_task *t,
	const char *res_sid, const struct tr_cache_transfer *x, unsigned flags, const char *type) {
	tr_cache_emit_full(c, name, t, res_sid, NULL, x, flags, type);
}

/* The task is ours again, or closed: it no longer waits for its final state. */
void tr_cache_vanish_clear(struct tr_cache *c, struct tr_cache_task *t) {
	if (t->vanished && !t->fetching) {
		c->n_vanish_due--;
	}
	t->vanished = t->fetching = false;
}

static void task_close(struct tr_cache *c, struct tr_cache_task *t, uint64_t now_ms,
	unsigned flags, const char *type) {
	const char *fin = NULL;

	if (strcmp(t->status, "completed") == 0) {
		fin = "completed";
	} else if (strcmp(t->status, "canceled") == 0) {
		fin = "canceled";
	}
	if (fin && !t->final_sent) {
		t->final_sent = true;
		tr_cache_emit(c, fin, t, t->last_res_sid, NULL, flags, type);
	}
	t->closed = true;
	t->closed_at_ms = now_ms;
	c->expiry_hint = true;
	tr_cache_vanish_clear(c, t);
}

/* ---- public ---- */

struct tr_cache *tr_cache_new(int closed_grace_ms, tr_cache_event_cb cb, void *userdata) {
	struct tr_cache *c = calloc(1, sizeof(*c));

	if (!c) {
		return NULL;
	}
	if (tr_task_index_init(&c->index) < 0) {
		free(c);
		return NULL;
	}
	c->tailp = &c->tasks;
	c->grace_ms = closed_grace_ms > 0 ? (uint64_t)closed_grace_ms : TR_TASK_CLOSED_GRACE_MS_DEFAULT;
	c->cb = cb;
	c->userdata = userdata;
	return c;
}

void tr_cache_staged_clear(struct tr_cache *c) {
	for (size_t i = 0; i < c->n_staged; i++) {
		free(c->staged[i].text);
	}
	free(c->staged);
	c->staged = NULL;
	c->n_staged = c->cap_staged = 0;
}

struct tr_cache *tr_cache_free(struct tr_cache *c) {
	if (!c) {
		return NULL;
	}
	while (c->tasks) {
		struct tr_cache_task *n = c->tasks->next;

		tr_cache_touch_free(c, c->tasks);
		task_free(c->tasks);
		c->tasks = n;
	}
	tr_cache_staged_clear(c);
	tr_task_index_done(&c->index);
	free(c);
	return NULL;
}

struct tr_cache_task *tr_cache_task_new(struct tr_cache *c) {
	struct tr_cache_task *t = calloc(1, sizeof(*t));

	if (!t) {
		return NULL;
	}
	*c->tailp = t;
	c->tailp = &t->next;
	return t;
}

/* Remove *pp (a link of the task list) from the list and the index, and free it. */
static void task_drop_at(struct tr_cache *c, struct tr_cache_task **pp) {
	struct tr_cache_task *t = *pp;

	tr_cache_touch_free(c, t);
	*pp = t->next;
	if (c->tailp == &t->next) {
		c->tailp = pp;
	}
	tr_task_index_del(&c->index, t);
	task_free(t);
}

void tr_cache_task_unlink(struct tr_cache *c, struct tr_cache_task *t) {
	for (struct tr_cache_task **pp = &c->tasks; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			task_drop_at(c, pp);
			return;
		}
	}
}

/* Embedded transfers of a reservation payload. */
int tr_cache_res_transfers(struct tr_cache_task *t, const struct tr_json *rp) {
	int r = tr_task_wire_transfer_set(&t->incoming, tr_json_get(rp, "task_transfer"), t->sid);

	if (r < 0 && r != -EBADMSG) {
		return r;
	}
	r = tr_task_wire_transfer_set(&t->outgoing, tr_json_get(rp, "active_outgoing_task_transfer"),
		t->sid);
	if (r < 0 && r != -EBADMSG) {
		return r;
	}
	return 0;
}

static const char *res_event_name(const char *type) {
	static const char *const map[][2] = {
		{ "reservation.created", "reservationCreated" },
		{ "reservation.accepted", "reservationAccepted" },
		{ "reservation.rejected", "reservationRejected" },
		{ "reservation.timeout", "reservationTimeout" },
		{ "reservation.canceled", "reservationCanceled" },
		{ "reservation.rescinded", "reservationRescinded" },
		{ "reservation.completed", "reservationCompleted" },
		{ "reservation.wrapup", "reservationWrapup" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(type, map[i][0]) == 0) {
			return map[i][1];
		}
	}
	return NULL;
}

static int apply_reservation(struct tr_cache *c, const char *type, const struct tr_json *p,
	uint64_t now_ms) {
	const struct tr_json *tp = tr_json_get(p, "task");
	const char *rsid = tr_json_get_string(p, "sid");
	const char *tsid = tr_json_get_string(tp, "sid");
	const char *name = res_event_name(type);
	bool created = strcmp(type, "reservation.created") == 0;
	bool wrapup = strcmp(type, "reservation.wrapup") == 0;
	bool cleanup = !created && strcmp(type, "reservation.accepted") != 0 && !wrapup;
	struct tr_cache_res *res = NULL;
	struct tr_cache_task *t;
	unsigned flags = 0;
	int r;

	if (!rsid || !tsid) {
		c->counters.malformed++;
		return -EBADMSG;
	}
	t = tr_cache_find_task(c, tsid);
	if (created) {
		bool fresh = false;

		if (!t) {
			t = tr_cache_task_new(c);
			if (!t) {
				return -ENOMEM;
			}
			fresh = true;
		}
		r = tr_cache_task_apply(c, t, tp);
		if (r < 0) {
			if (fresh) {
				tr_cache_task_unlink(c, t);
			}
			return r;
		}
		if (r == 1) {
			flags |= TR_CACHE_EV_STALE;
		}
		if (t->closed) {
			t->closed = false;
			t->final_sent = false;
		}
		tr_cache_vanish_clear(c, t);
		r = tr_task_res_put(t, p, &res);
		if (r < 0) {
			return r;
		}
	} else {
		if (!t || (!tr_task_res_find(t, rsid) && !cleanup)) {
			if (!cleanup) {
				return -ESRCH;
			}
			c->counters.ignored_unknown_task++;
			return -ENOENT;
		}
		if (cleanup && !tr_task_res_find(t, rsid)) {
			c->counters.ignored_unknown_task++;
			return -ENOENT;
		}
		r = tr_cache_task_apply(c, t, tp);
		if (r < 0) {
			return r;
		}
		if (r == 1) {
			flags |= TR_CACHE_EV_STALE;
		}
		r = tr_task_res_put(t, p, &res);
		if (r < 0) {
			return r;
		}
		if (cleanup) {
			res = tr_task_res_end(t, rsid);
			r = tr_task_res_set_last(t, rsid);
			if (r == 0 && res && tr_task_res_live(res->status)) {
				/* a stale payload left its live status: the event says how it ended */
				r = tr_task_res_set_status(res, type + strlen("reservation."));
			}
		} else if (r == 0 && !tr_task_res_live(res->status)) {
			/* an accepted or wrapup event says the reservation lives on, whatever the
			 * payload's status says */
			r = tr_task_res_set_status(res, wrapup ? "wrapping" : "accepted");
		}
		if (r < 0) {
			return r;
		}
	}
	r = tr_cache_res_transfers(t, p);
	if (r < 0) {
		return r;
	}
	tr_cache_emit_full(c, name, t, rsid, res, NULL, flags, type);
	if (cleanup && t->n_res == 0 && !t->closed) {
		task_close(c, t, now_ms, flags, type);
	}
	return 0;
}

static int apply_task_event(struct tr_cache *c, const char *type, const struct tr_json *p) {
	const char *name = type + strlen("task.");
	struct tr_cache_task *t = tr_cache_find_task(c, tr_json_get_string(p, "sid"));
	unsigned flags = 0;
	int r;

	if (!tr_json_get_string(p, "sid")) {
		c->counters.malformed++;
		return -EBADMSG;
	}
	if (!t) {
		c->counters.ignored_unknown_task++;
		return -ENOENT;
	}
	/* The server does not order reservation.completed and task.completed: when the last
	 * reservation's cleanup already published this final event, the task event that follows
	 * in the grace period refreshes the record but is not published a second time. */
	bool duplicate = t->closed && t->final_sent && strcmp(t->status, name) == 0;
	r = tr_cache_task_apply(c, t, p);
	if (r < 0) {
		return r;
	}
	if (duplicate) {
		return 0;
	}
	if (r == 1) {
		flags |= TR_CACHE_EV_STALE;
	}
	if (strcmp(name, "completed") == 0 || strcmp(name, "canceled") == 0) {
		t->final_sent = true;
	}
	if (t->n_res == 0) {
		tr_cache_emit(c, name, t, t->last_res_sid, NULL, flags, type);
		return 0;
	}
	/* Once per live reservation, like the SDK (§6.4). Copy the sids: an observer may not
	 * change the cache, but be safe against the array moving. */
	for (size_t i = 0; i < t->n_res; i++) {
		tr_cache_emit(c, name, t, t->res[i].sid, NULL, flags, type);
	}
	return 0;
}

static const char *transfer_event_name(const char *type) {
	if (strcmp(type, "task.transfer-initiated") == 0) {
		return "transferInitiated";
	} else if (strcmp(type, "task.transfer-attempt-failed") == 0) {
		return "transferAttemptFailed";
	} else if (strcmp(type, "task.transfer-completed") == 0) {
		return "transferCompleted";
	} else if (strcmp(type, "task.transfer-failed") == 0) {
		return "transferFailed";
	} else if (strcmp(type, "task.transfer-canceled") == 0) {
		return "transferCanceled";
	}
	return NULL;
}

/* The outgoing transfer matches: update it and emit. */
static int transfer_deliver(struct tr_cache *c, struct tr_cache_task *t, const char *type,
	const struct tr_json *p) {
	bool initiated = strcmp(type, "task.transfer-initiated") == 0;
	const char *rsid = tr_json_get_string(p, "initiating_reservation_sid");
	int r = tr_task_wire_transfer_update(t->outgoing, p, initiated, t->sid);

	if (r < 0) {
		return r;
	}
	tr_cache_emit(c, transfer_event_name(type), t, rsid, t->outgoing, 0, type);
	return 0;
}

static int apply_transfer_event(struct tr_cache *c, const char *type, const struct tr_json *p,
	uint64_t now_ms) {
	const char *rsid = tr_json_get_string(p, "initiating_reservation_sid");
	const char *tsid = tr_json_get_string(p, "task_sid");
	const char *sid = tr_json_get_string(p, "sid");
	struct tr_cache_task *t;
	struct tr_cache_pending *pe, **pp;

	if (!rsid || !tsid || !sid) {
		c->counters.malformed++;
		return -EBADMSG;
	}
	t = tr_cache_find_task(c, tsid);
	/* A live reservation of the task, or (deviation, §6.6) the last one of a closed task. */
	if (!t || (!tr_task_res_find(t, rsid) &&
			!(t->closed && t->last_res_sid && strcmp(t->last_res_sid, rsid) == 0))) {
		c->counters.ignored_unknown_task++;
		return -ENOENT;
	}
	if (t->outgoing && t->outgoing->sid && strcmp(t->outgoing->sid, sid) == 0) {
		return transfer_deliver(c, t, type, p);
	}
	/* The POST reply is not here yet: wait for it, in arrival order. */
	pe = calloc(1, sizeof(*pe));
	if (!pe) {
		return -ENOMEM;
	}
	pe->event_type = strdup(type);
	pe->payload = tr_json_dup(p);
	pe->at_ms = now_ms;
	if (!pe->event_type || !pe->payload) {
		pending_free_all(pe);
		return -ENOMEM;
	}
	for (pp = &t->pending; *pp; pp = &(*pp)->next) {
	}
	*pp = pe;
	c->expiry_hint = true;
	return 0;
}

/* Deliver the pending events that match the outgoing transfer now. */
static int flush_pending(struct tr_cache *c, struct tr_cache_task *t) {
	struct tr_cache_pending **pp = &t->pending;
	int ret = 0;

	while (*pp) {
		struct tr_cache_pending *pe = *pp;
		const char *sid = tr_json_get_string(pe->payload, "sid");

		if (t->outgoing && t->outgoing->sid && sid && strcmp(sid, t->outgoing->sid) == 0) {
			int r;

			*pp = pe->next;
			pe->next = NULL;
			r = transfer_deliver(c, t, pe->event_type, pe->payload);
			if (r < 0) {
				ret = r;
			}
			pending_free_all(pe);
		} else {
			pp = &pe->next;
		}
	}
	return ret;
}

int tr_cache_apply(struct tr_cache *c, const char *event_type, const struct tr_json *payload,
	uint64_t now_ms) {
	if (!event_type) {
		return -EBADMSG;
	}
	if (strncmp(event_type, "reservation.", 12) == 0) {
		if (!res_event_name(event_type)) {
			return 0; /* reservation.failed: nothing to cache */
		}
		return apply_reservation(c, event_type, payload, now_ms);
	}
	if (transfer_event_name(event_type)) {
		return apply_transfer_event(c, event_type, payload, now_ms);
	}
	if (strcmp(event_type, "task.updated") == 0 || strcmp(event_type, "task.canceled") == 0 ||
		strcmp(event_type, "task.completed") == 0 || strcmp(event_type, "task.wrapup") == 0) {
		return apply_task_event(c, event_type, payload);
	}
	return 0; /* worker.* and anything else */
}

int tr_cache_apply_task(struct tr_cache *c, const struct tr_json *payload) {
	struct tr_cache_task *t = tr_cache_find_task(c, tr_json_get_string(payload, "sid"));

	if (!tr_json_get_string(payload, "sid")) {
		return -EBADMSG;
	}
	if (!t) {
		return -ENOENT;
	}
	return tr_cache_task_apply(c, t, payload);
}

int tr_cache_apply_transfer_response(struct tr_cache *c, const char *task_sid,
	const struct tr_json *payload, uint64_t now_ms) {
	struct tr_cache_task *t = tr_cache_find_task(c, task_sid);
	int r;

	(void)now_ms;
	if (!t) {
		return -ENOENT;
	}
	r = tr_task_wire_transfer_set(&t->outgoing, payload, t->sid);
	if (r < 0) {
		return r;
	}
	return flush_pending(c, t);
}

void tr_cache_drop_pending(struct tr_cache *c, const char *task_sid) {
	struct tr_cache_task *t = tr_cache_find_task(c, task_sid);

	if (!t) {
		return;
	}
	for (struct tr_cache_pending *p = t->pending; p; p = p->next) {
		c->counters.transfer_events_dropped++;
	}
	pending_free_all(t->pending);
	t->pending = NULL;
}

void tr_cache_transfer_in_flight(struct tr_cache *c, const char *task_sid, int delta) {
	struct tr_cache_task *t = tr_cache_find_task(c, task_sid);

	if (t) {
		t->transfers_in_flight += delta;
		if (t->transfers_in_flight < 0) {
			t->transfers_in_flight = 0;
		}
	}
}

/* The oldest expired transfer-initiated of a task with a transfer POST in flight becomes
 * the outgoing transfer (see tr_cache_transfer_in_flight). */
static void adopt_expired(struct tr_cache *c, struct tr_cache_task *t, uint64_t now_ms) {
	if (t->transfers_in_flight <= 0) {
		return;
	}
	for (struct tr_cache_pending *pe = t->pending; pe; pe = pe->next) {
		if (now_ms - pe->at_ms >= TR_TRANSFER_PENDING_MS &&
			strcmp(pe->event_type, "task.transfer-initiated") == 0 &&
			tr_task_res_find(t, tr_json_get_string(pe->payload, "initiating_reservation_sid"))) {
			tr_cache_touch(c, t);
			if (tr_task_wire_transfer_set(&t->outgoing, pe->payload, t->sid) == 0) {
				(void)flush_pending(c, t);
			}
			return;
		}
	}
}

int tr_cache_expire(struct tr_cache *c, uint64_t now_ms) {
	struct tr_cache_task **pp = &c->tasks;
	int dropped = 0;

	while (*pp) {
		struct tr_cache_task *t = *pp;
		struct tr_cache_pending **qq = &t->pending;

		adopt_expired(c, t, now_ms);
		qq = &t->pending;

		while (*qq) {
			struct tr_cache_pending *pe = *qq;

			if (now_ms - pe->at_ms >= TR_TRANSFER_PENDING_MS) {
				*qq = pe->next;
				pe->next = NULL;
				pending_free_all(pe);
				c->counters.transfer_events_dropped++;
				dropped++;
			} else {
				qq = &pe->next;
			}
		}
		if (t->closed && now_ms - t->closed_at_ms >= c->grace_ms && !c->in_resync) {
			task_drop_at(c, pp);
		} else {
			pp = &t->next;
		}
	}
	return dropped;
}

/* ---- reservations ---- */

/* Reservation sid and its task: a scan of every task's few reservations (the RPC calls that
 * name a reservation are rare next to the events, which find the task by its sid). */
static struct tr_cache_res *res_lookup(const struct tr_cache *c, const char *sid,
	struct tr_cache_task **ret_task) {
	for (struct tr_cache_task *t = c->tasks; t; t = t->next) {
		struct tr_cache_res *r = tr_task_res_find_any(t, sid);

		if (r) {
			*ret_task = t;
			return r;
		}
	}
	return NULL;
}

int tr_cache_apply_res(struct tr_cache *c, const struct tr_json *payload) {
	const char *sid = tr_json_get_string(payload, "sid");
	const struct tr_json *tp = tr_json_get(payload, "task");
	struct tr_cache_task *t = NULL;
	struct tr_cache_res *r;
	int e;

	if (!tr_json_is(payload, TR_JSON_OBJECT) || !sid) {
		c->counters.malformed++;
		return -EBADMSG;
	}
	r = res_lookup(c, sid, &t);
	if (!r) {
		return -ENOENT;
	}
	tr_cache_touch(c, t);
	if (tr_task_res_stale(r, payload)) {
		c->counters.stale_payloads++;
		return 1;
	}
	if (tr_json_is(tp, TR_JSON_OBJECT)) {
		/* the event shape: its task, when it is this one, goes by the task's own rule */
		const char *tsid = tr_json_get_string(tp, "sid");

		if (tsid && strcmp(tsid, t->sid) == 0) {
			e = tr_cache_task_apply(c, t, tp);
			if (e < 0 && e != -EBADMSG) {
				return e;
			}
		}
	}
	e = tr_task_wire_res_update(r, payload);
	return e < 0 ? e : 0;
}

const struct tr_cache_res *tr_cache_find_res(const struct tr_cache *c, const char *sid,
	const struct tr_cache_task **ret_task) {
	struct tr_cache_task *t = NULL;
	const struct tr_cache_res *r = NULL;

	if (!sid) {
		return NULL;
	}
	if (strncmp(sid, "WT", 2) == 0) {
		t = tr_task_index_find(&c->index, sid);
		r = t ? tr_task_res_current(t) : NULL;
	} else {
		r = res_lookup(c, sid, &t);
	}
	if (r && ret_task) {
		*ret_task = t;
	}
	return r;
}

static bool ident_same(const char *have, const char *v) {
	return strcmp(have, v ? v : "") == 0;
}

void tr_cache_set_ident(struct tr_cache *c, const char *account_sid, const char *workspace_sid,
	const char *worker_sid) {
	if (!ident_same(c->ident.account_sid, account_sid) ||
		!ident_same(c->ident.workspace_sid, workspace_sid) ||
		!ident_same(c->ident.worker_sid, worker_sid)) {
		/* every Reservation object is written with these */
		for (const struct tr_cache_task *t = c->tasks; t; t = t->next) {
			tr_cache_touch(c, t);
		}
	}
	snprintf(c->ident.account_sid, sizeof(c->ident.account_sid), "%s",
		account_sid ? account_sid : "");
	snprintf(c->ident.workspace_sid, sizeof(c->ident.workspace_sid), "%s",
		workspace_sid ? workspace_sid : "");
	snprintf(c->ident.worker_sid, sizeof(c->ident.worker_sid), "%s",
		worker_sid ? worker_sid : "");
}

void tr_cache_set_change_cb(struct tr_cache *c, tr_cache_change_cb cb, void *userdata) {
	c->change_cb = cb;
	c->change_userdata = userdata;
}

void tr_cache_task_hold(const struct tr_cache_task *t, int delta) {
	/* The count is the cache's field that the hub keeps (cache.h): the one write through a
	 * pointer the cache hands out as const. */
	struct tr_cache_task *m = (struct tr_cache_task *)t;

	assert(delta > 0 || m->subs_holds >= (unsigned)-delta);
	m->subs_holds = (unsigned)((int)m->subs_holds + delta);
}

const struct tr_cache_ident *tr_cache_get_ident(const struct tr_cache *c) {
	return &c->ident;
}

/* ---- lookups ---- */

const struct tr_cache_task *tr_cache_get(const struct tr_cache *c, const char *sid) {
	return tr_task_index_find(&c->index, sid);
}

const struct tr_cache_task *tr_cache_first(const struct tr_cache *c) {
	return c->tasks;
}

size_t tr_cache_count(const struct tr_cache *c, bool closed) {
	size_t n = 0;

	for (const struct tr_cache_task *t = c->tasks; t; t = t->next) {
		if (t->closed == closed) {
			n++;
		}
	}
	return n;
}

bool tr_cache_take_expiry_hint(struct tr_cache *c) {
	bool h = c->expiry_hint;

	c->expiry_hint = false;
	return h;
}

const struct tr_cache_counters *tr_cache_get_counters(const struct tr_cache *c) {
	return &c->counters;
}

const char *tr_cache_task_status(const struct tr_cache_task *t) {
	if (t->outgoing && t->outgoing->status && strcmp(t->outgoing->status, "initiated") == 0) {
		return "transferring";
	}
	return t->status;
}

const char *tr_cache_task_reservation(const struct tr_cache_task *t) {
	for (size_t i = 0; i < t->n_res; i++) {
		if (strcmp(t->res[i].status, "accepted") == 0 ||
			strcmp(t->res[i].status, "wrapping") == 0) {
			return t->res[i].sid;
		}
	}
	if (t->n_res > 0) {
		return t->res[0].sid;
	}
	return t->last_res_sid;
}

bool tr_cache_transfer_is_final(const struct tr_cache_transfer *x) {
	return x && x->status && (strcmp(x->status, "complete") == 0 ||
		strcmp(x->status, "failed") == 0 || strcmp(x->status, "canceled") == 0);
}
