/*
 * core.c — bridge callbacks → cache → subscribers (see core.h). Its timers and the last
 * bridge state live in struct tr_core, which the daemon holds (d->core).
 */
#include "core.h"

#include <errno.h>
#include <malloc.h>
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
#include "json.h"
#include "subs.h"
#include "tr-limits.h"
#include "worker-state.h"

/* The glue's own state, owned by the daemon (d->core). */
struct tr_core {
	uv_timer_t expiry;
	uv_timer_t trim; /* one-shot: malloc_trim once the resync's last page is freed */
	/* each loop turn, before it waits: the events published in the turn let go of their
	 * texts where their task records write them the same (tr_subs_settle) */
	uv_prepare_t settle;
	unsigned open_timers; /* the three handles above, until closed */
	enum tr_bridge_state last;
	bool oversize_logged;
	unsigned vanish_fetches; /* GETs of vanished tasks in flight */
	char worker[64];         /* the worker of the last resync */
	bool switched;           /* that resync was another worker's: the old tasks are not ours */
};

/* GETs of vanished tasks in flight at once: the rest of REST's 8 connections stay free for
 * calls, and thousands queued at once would time out waiting behind each other. */
#define VANISH_FETCHES_MAX 4

static void on_cache_event(void *userdata, const struct tr_cache_event *ev) {
	struct tr_daemon *d = userdata;

	if (tr_subs_publish_task(d->subs, ev) < 0) {
		tr_log_warning("event %s for %s not published: out of memory", ev->name, ev->task->sid);
	}
}

/* The cache is about to change or free t, which events of the ring are written from. */
static void on_cache_change(void *userdata, const struct tr_cache_task *t, bool freeing) {
	struct tr_daemon *d = userdata;

	if (d->subs) {
		tr_subs_task_changing(d->subs, t, freeing);
	}
}

/* A worker event: the Worker (activity, attributes) or the Channel, as a daemon-wide event. */
static void on_wstate_event(void *userdata, const struct tr_wstate *ws,
	const struct tr_wstate_event *ev) {
	struct tr_daemon *d = userdata;
	struct tr_json *o = tr_json_new_object();
	int e = 0;

	tr_json_put(o, "eventType", tr_json_new_string(ev->event_type), &e);
	if (ev->channel) {
		tr_json_put(o, "channel", tr_wstate_channel_json(ev->channel), &e);
	} else {
		tr_json_put(o, "worker", tr_wstate_worker_json(ws), &e);
	}
	if (ev->flags & TR_WSTATE_EV_RESYNC) {
		tr_json_put(o, "resync", tr_json_new_bool(true), &e);
	}
	if (e < 0 || tr_subs_publish_daemon(d->subs, ev->name, o) < 0) {
		tr_log_warning("event %s not published: out of memory", ev->name);
	}
	tr_json_free(o);
}

/* Is there anything for the expiry timer to do: a recently-closed task, or transfer events
 * waiting for their POST reply? */
static bool cache_needs_expiry(const struct tr_cache *c) {
	for (const struct tr_cache_task *t = tr_cache_first(c); t; t = t->next) {
		if (t->closed || t->pending) {
			return true;
		}
	}
	return false;
}

static void on_timer(uv_timer_t *t) {
	struct tr_daemon *d = t->data;
	int n = tr_cache_expire(d->cache, uv_now(d->loop));

	if (n > 0) {
		tr_log_debug("dropped %d transfer event(s) whose transfer reply never matched", n);
	}
	/* An idle daemon must not wake up every second: the timer runs only while there is
	 * something to expire, and the next change that may need it starts it again. */
	if (!cache_needs_expiry(d->cache)) {
		(void)uv_timer_stop(t);
	}
}

/* After a change to the cache: make sure the expiry timer runs if it has work. The hint is
 * O(1); walking every task after every event cost more than the event itself at 10,000
 * tasks. The timer's own full check (once a second, while running) stops it. */
static void arm_expiry(struct tr_daemon *d) {
	if (tr_cache_take_expiry_hint(d->cache) && d->core &&
		!uv_is_active((uv_handle_t *)&d->core->expiry)) {
		(void)uv_timer_start(&d->core->expiry, on_timer, 1000, 1000);
	}
}

/* ---- the final state of the tasks a resync found gone (tr_cache_vanish_*) ---- */

struct vanish_op {
	struct tr_daemon *d;
	char *sid;
	bool res; /* a gone reservation (tr_cache_res_gone_*), not a vanished task */
};

static void vanish_op_free(struct vanish_op *op) {
	if (op) {
		free(op->sid);
		free(op);
	}
}

static void vanish_pump(struct tr_daemon *d);

/* Why a failed GET leaves the final state unknown: the finalStateReason of the event. */
static const char *vanish_reason(const struct tr_upstream_reply *rep) {
	switch (rep->err) {
	case 0:
		return rep->http_status == 404 ? "deleted" : "http-error";
	case -ETIMEDOUT:
		return "timeout";
	case -EBADMSG:
		return "malformed";
	default:
		return "network-error";
	}
}

static void on_vanish_reply(void *userdata, const struct tr_upstream_reply *rep) {
	struct vanish_op *op = userdata;
	struct tr_daemon *d = op->d;
	bool ok = rep->err == 0 && rep->http_status >= 200 && rep->http_status < 300;
	const char *why = ok ? NULL : vanish_reason(rep);

	d->core->vanish_fetches--;
	if (rep->err == -ECANCELED) {
		/* the daemon is shutting down (the cache is still there): nothing is published */
		vanish_op_free(op);
		return;
	}
	if (op->res) {
		if (tr_cache_res_gone_resolve(d->cache, op->sid, ok ? rep->payload : NULL) == 1) {
			tr_log_info("reservation %s: ended while disconnected; how is unknown (%s)",
				op->sid, ok ? "not a final status" : why);
		}
		vanish_op_free(op);
		vanish_pump(d);
		return;
	}
	if (tr_cache_vanish_resolve(d->cache, op->sid, ok ? rep->payload : NULL, why,
		    rep->http_status, uv_now(d->loop)) < 0) {
		tr_log_debug("task %s: final state fetched, no longer needed, ignoring", op->sid);
	} else if (why) {
		tr_log_info("task %s: ended while disconnected; its final state is unknown (%s)",
			op->sid, why);
	}
	vanish_op_free(op);
	arm_expiry(d);
	vanish_pump(d);
}

/*
 * GET the final state of vanished task sid (Workspaces/WS/Tasks/WT) or, with res, of gone
 * reservation sid (Workspaces/WS/Workers/WK/Reservations/WR); its answer goes to
 * on_vanish_reply. Returns 0 (sent and counted), -EAGAIN (no session or token now: try after
 * the next resync) or another negative errno (not sent).
 */
static int fetch_final(struct tr_daemon *d, const char *sid, bool res) {
	const char *ws = tr_bridge_workspace_sid(d->bridge);
	const char *wk = tr_bridge_worker_sid(d->bridge);
	struct vanish_op *op = calloc(1, sizeof(*op));
	struct tr_upstream_request req = { .method = "GET", .api_version = "v1", .if_match = -1,
		.retry_transient = true };
	char path[256];
	int r = -ENOMEM;

	if (res) {
		snprintf(path, sizeof(path), "Workspaces/%s/Workers/%s/Reservations/%s",
			ws ? ws : "", wk ? wk : "", sid);
	} else {
		snprintf(path, sizeof(path), "Workspaces/%s/Tasks/%s", ws ? ws : "", sid);
	}
	req.path = path;
	if (op && (op->sid = strdup(sid))) {
		op->d = d;
		op->res = res;
		r = tr_bridge_request(d->bridge, &req, on_vanish_reply, op);
	}
	if (r < 0) {
		vanish_op_free(op);
		return r == -ENOTCONN || r == -EKEYEXPIRED || r == -ESHUTDOWN ? -EAGAIN : r;
	}
	d->core->vanish_fetches++;
	return 0;
}

/* Fetch the final state of vanished tasks and gone reservations, VANISH_FETCHES_MAX at a
 * time. A GET that cannot be sent for want of a session or token is tried again after the
 * next resync. */
static void vanish_pump(struct tr_daemon *d) {
	const char *next;

	/* After daemon.updateToken {switchWorker}, the old worker's tasks are gone from this
	 * session but not ended: fetching them with the new worker's token would report them
	 * deleted. Say why they left instead. */
	while (d->core->switched && (next = tr_cache_vanish_next(d->cache))) {
		(void)tr_cache_vanish_fetching(d->cache, next);
		(void)tr_cache_vanish_resolve(d->cache, next, NULL, "identity-switch", 0,
			uv_now(d->loop));
	}
	d->core->switched = false;

	while (d->core->vanish_fetches < VANISH_FETCHES_MAX &&
		tr_bridge_get_state(d->bridge) != TR_BRIDGE_STOPPED &&
		(next = tr_cache_vanish_next(d->cache))) {
		int r = fetch_final(d, next, false);

		if (r == -EAGAIN) {
			return;
		}
		/* next is still the cache's: sending changed nothing there */
		(void)tr_cache_vanish_fetching(d->cache, next);
		if (r < 0) {
			tr_log_warning("task %s: final state not fetched (%s); reported unknown", next,
				strerror(-r));
			(void)tr_cache_vanish_resolve(d->cache, next, NULL, "error", 0, uv_now(d->loop));
		}
	}
	/* The same for the reservations a resync found ended on tasks this worker still
	 * holds. */
	while (d->core->vanish_fetches < VANISH_FETCHES_MAX &&
		tr_bridge_get_state(d->bridge) != TR_BRIDGE_STOPPED &&
		(next = tr_cache_res_gone_next(d->cache))) {
		int r = fetch_final(d, next, true);

		if (r == -EAGAIN) {
			return;
		}
		(void)tr_cache_res_gone_fetching(d->cache, next);
		if (r < 0) {
			tr_log_warning("reservation %s: final state not fetched (%s)", next,
				strerror(-r));
			(void)tr_cache_res_gone_resolve(d->cache, next, NULL);
		}
	}
}

static void on_handle_closed(uv_handle_t *h) {
	struct tr_core *core = h->data;

	if (--core->open_timers == 0) {
		free(core);
	}
}

static void on_trim(uv_timer_t *t) {
	struct tr_daemon *d = t->data;

	/* The resync's events first let go of their texts (the loop's prepare step, which would
	 * do it, comes after the timers). */
	tr_subs_settle(d->subs);
	(void)malloc_trim(0);
}

static void on_settle(uv_prepare_t *h) {
	struct tr_daemon *d = h->data;

	tr_subs_settle(d->subs);
}

int tr_core_init(struct tr_daemon *d) {
	d->cache = tr_cache_new(d->cfg->closed_grace_ms, on_cache_event, d);
	d->wstate = tr_wstate_new(on_wstate_event, d);
	d->subs = tr_subs_new();
	d->core = calloc(1, sizeof(*d->core));
	if (!d->cache || !d->wstate || !d->subs || !d->core) {
		free(d->core);
		d->core = NULL;
		d->cache = tr_cache_free(d->cache);
		d->wstate = tr_wstate_free(d->wstate);
		d->subs = tr_subs_free(d->subs);
		return -ENOMEM;
	}
	tr_cache_set_change_cb(d->cache, on_cache_change, d);
	/* Tests run every daemon in the replay check mode (subs.h). */
	tr_subs_set_check(d->subs, getenv("TASKROUTERD_CHECK_REPLAY") != NULL);
	/* uv_timer_init and uv_prepare_init cannot fail on Linux (they only fill the struct). */
	(void)uv_timer_init(d->loop, &d->core->expiry);
	(void)uv_timer_init(d->loop, &d->core->trim);
	(void)uv_prepare_init(d->loop, &d->core->settle);
	d->core->expiry.data = d;
	d->core->trim.data = d;
	d->core->settle.data = d;
	(void)uv_prepare_start(&d->core->settle, on_settle);
	uv_unref((uv_handle_t *)&d->core->settle); /* it never keeps the loop alive */
	d->core->open_timers = 3;
	d->core->last = TR_BRIDGE_CONNECTING;
	return 0;
}

void tr_core_done(struct tr_daemon *d) {
	if (d->core) {
		/* freed by the last close callback */
		d->core->expiry.data = d->core;
		d->core->trim.data = d->core;
		d->core->settle.data = d->core;
		uv_close((uv_handle_t *)&d->core->expiry, on_handle_closed);
		uv_close((uv_handle_t *)&d->core->trim, on_handle_closed);
		uv_close((uv_handle_t *)&d->core->settle, on_handle_closed);
		d->core = NULL;
	}
	/* The hub first: it lets go of the records it refers to, which the cache then frees
	 * without writing their events out. */
	d->subs = tr_subs_free(d->subs);
	d->cache = tr_cache_free(d->cache);
	d->wstate = tr_wstate_free(d->wstate);
}

static void publish(struct tr_daemon *d, const char *name, struct tr_json *data) {
	if (tr_subs_publish_daemon(d->subs, name, data) < 0) {
		tr_log_warning("event %s not published: out of memory", name);
	}
	tr_json_free(data);
}

static bool up(enum tr_bridge_state s) {
	return s == TR_BRIDGE_OPEN || s == TR_BRIDGE_INITIALIZING || s == TR_BRIDGE_READY;
}

static void ev_state(void *userdata, enum tr_bridge_state state, const char *reason) {
	struct tr_daemon *d = userdata;
	enum tr_bridge_state prev;

	if (!d->core || !d->subs) {
		return;
	}
	prev = d->core->last;
	d->core->last = state;
	if (state == prev) {
		return;
	}
	if (state == TR_BRIDGE_OPEN) {
		publish(d, "connected", NULL);
	} else if (state == TR_BRIDGE_READY) {
		publish(d, "ready", NULL);
	} else if (up(prev) && (state == TR_BRIDGE_RECONNECTING ||
		state == TR_BRIDGE_TOKEN_EXPIRED || state == TR_BRIDGE_STOPPED)) {
		struct tr_json *o = tr_json_new_object();
		int e = 0;

		tr_json_put(o, "reason", reason ? tr_json_new_string(reason) : tr_json_new_null(), &e);
		publish(d, "disconnected", e < 0 ? tr_json_free(o) : o);
	}
}

static void ev_resync_begin(void *userdata) {
	struct tr_daemon *d = userdata;

	tr_cache_resync_begin(d->cache);
	tr_wstate_resync_begin(d->wstate);
}

static void ev_resync_worker(void *userdata, const struct tr_json *worker) {
	struct tr_daemon *d = userdata;

	if (tr_wstate_resync_worker(d->wstate, worker) < 0) {
		tr_log_warning("resync: the worker's payload is not usable; keeping the last one");
	}
}

static void ev_resync_activity(void *userdata, const struct tr_json *activity) {
	struct tr_daemon *d = userdata;

	if (tr_wstate_resync_activity(d->wstate, activity) < 0) {
		tr_log_debug("resync: an activity is not usable, ignoring");
	}
}

static void ev_resync_channel(void *userdata, const struct tr_json *channel) {
	struct tr_daemon *d = userdata;

	if (tr_wstate_resync_channel(d->wstate, channel) < 0) {
		tr_log_debug("resync: a worker channel is not usable, ignoring");
	}
}

static void ev_resync_reservation(void *userdata, const struct tr_json *reservation) {
	struct tr_daemon *d = userdata;
	int r = tr_cache_resync_add(d->cache, reservation);

	if (r < 0) {
		tr_log_debug("resync: reservation %s not usable (%d), ignoring",
			tr_json_get_string(reservation, "sid") ? tr_json_get_string(reservation, "sid") :
			"(no sid)", r);
	}
}

static void ev_resync_end(void *userdata, int err) {
	struct tr_daemon *d = userdata;
	const char *wk = d->bridge ? tr_bridge_worker_sid(d->bridge) : NULL;
	/* another worker's session (daemon.updateToken {switchWorker}): its worker did not
	 * "change", it is another one */
	bool other = err == 0 && d->core && wk && d->core->worker[0] &&
		strcmp(d->core->worker, wk) != 0;
	const struct tr_wstate_worker *w;
	int r;

	if (tr_wstate_resync_end(d->wstate, err, !other) < 0) {
		tr_log_warning("resync: no usable worker; the worker model is unchanged");
	}
	w = tr_wstate_get_worker(d->wstate);
	if (err == 0 && w) {
		tr_cache_set_ident(d->cache, w->account_sid, w->workspace_sid, w->sid);
	}
	r = tr_cache_resync_end(d->cache, err, uv_now(d->loop));
	if (r < 0) {
		tr_log_warning("resync: the cache could not take every reservation (%d)", r);
	}
	if (err == 0 && d->core && wk) {
		d->core->switched = other;
		snprintf(d->core->worker, sizeof(d->core->worker), "%s", wk);
	}
	if (err == 0 && d->core && d->bridge) {
		vanish_pump(d);
	}
	arm_expiry(d);
	/* A resync parses pages of up to 1000 reservations: give the transient trees' memory
	 * back to the system instead of keeping the peak for the months the daemon runs. From
	 * a timer, because the last page's tree is freed only after this callback returns. */
	if (err == 0 && d->core) {
		(void)uv_timer_start(&d->core->trim, on_trim, 0, 0);
	}
}

/* reservation.failed: a task meant for this worker could not be reserved; its payload (a
 * Task-like object for a task this worker never held) goes out as it came. */
static void publish_failed(struct tr_daemon *d, const struct tr_json *payload) {
	const char *sid = tr_json_get_string(payload, "sid");
	struct tr_json *o = tr_json_new_object();
	int e = 0;

	tr_json_put(o, "eventType", tr_json_new_string("reservation.failed"), &e);
	tr_json_put(o, "taskSid", sid ? tr_json_new_string(sid) : tr_json_new_null(), &e);
	tr_json_put(o, "failure", payload ? tr_json_dup(payload) : tr_json_new_null(), &e);
	publish(d, "reservationFailed", e < 0 ? tr_json_free(o) : o);
}

/* worker.* frames and the worker's version bump on reservation.created. */
static void apply_worker_event(struct tr_daemon *d, const char *event_type,
	const struct tr_json *payload) {
	int r = tr_wstate_apply(d->wstate, event_type, payload);

	if (r == -ENOENT) {
		tr_log_info("%s for a channel the daemon does not know: resyncing", event_type);
		if (d->bridge) {
			tr_bridge_request_resync(d->bridge);
		}
	} else if (r == -EALREADY) {
		tr_log_debug("%s for the same unknown channel again, ignoring", event_type);
	} else if (r == -EBADMSG) {
		tr_log_info("%s: malformed payload; the worker is unchanged", event_type);
	} else if (r < 0) {
		tr_log_warning("%s: not applied: out of memory", event_type);
	}
}

static void ev_event(void *userdata, const char *event_type, const struct tr_json *payload) {
	struct tr_daemon *d = userdata;
	int r;

	if (strcmp(event_type, "reservation.failed") == 0) {
		publish_failed(d, payload);
		return;
	}
	if (strncmp(event_type, "worker.", 7) == 0 ||
		strcmp(event_type, "reservation.created") == 0) {
		apply_worker_event(d, event_type, payload);
		if (event_type[0] == 'w') {
			return;
		}
	}
	r = tr_cache_apply(d->cache, event_type, payload, uv_now(d->loop));

	if (d->core && !d->core->oversize_logged &&
		tr_cache_get_counters(d->cache)->oversize_omitted > 0) {
		d->core->oversize_logged = true;
		tr_log_warning("%s: a task's attributes or add-ons exceed %u bytes and were not kept "
			       "(clients see {} and attributesOmitted; logged once, counted in status)",
			event_type, TR_TASK_EMBEDDED_MAX);
	}
	if (r == -ENOENT) {
		tr_log_debug("%s for an unknown task or reservation, ignoring", event_type);
	} else if (r == -ESRCH) {
		tr_log_info("%s for a reservation the cache does not know: resyncing", event_type);
		if (d->bridge) {
			tr_bridge_request_resync(d->bridge);
		}
	} else if (r == -EBADMSG) {
		tr_log_info("%s: malformed payload, ignoring", event_type);
	} else if (r < 0) {
		tr_log_warning("%s: not applied: out of memory", event_type);
	}
	arm_expiry(d);
}

static void ev_token(void *userdata, const char *what, int64_t expires_at) {
	struct tr_daemon *d = userdata;
	struct tr_json *o = NULL;
	int e = 0;

	if (expires_at > 0) {
		o = tr_json_new_object();
		if (tr_json_put(o, "expiresAt", tr_json_new_int(expires_at), &e) < 0) {
			o = tr_json_free(o);
		}
	}
	if (d->subs) {
		publish(d, what, o);
	} else {
		tr_json_free(o);
	}
}

static const struct tr_bridge_events events = {
	.state = ev_state,
	.resync_begin = ev_resync_begin,
	.resync_worker = ev_resync_worker,
	.resync_activity = ev_resync_activity,
	.resync_channel = ev_resync_channel,
	.resync_reservation = ev_resync_reservation,
	.resync_end = ev_resync_end,
	.event = ev_event,
	.token = ev_token,
};

const struct tr_bridge_events *tr_core_bridge_events(void) {
	return &events;
}
