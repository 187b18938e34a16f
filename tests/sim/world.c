/* world.c — the TaskRouter model of taskrouter-sim (see world.h). */
#include "world.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BIT(i) (UINT64_C(1) << (i))
#define VST_MIN (-2208988800LL) /* 1900-01-01T00:00:00Z */

static void route(struct sim_world *w, struct sim_task *t);
static void route_all(struct sim_world *w);
static void post_work(struct sim_world *w, struct sim_reservation *r);
static void post_work_task(struct sim_world *w, struct sim_task *t);

int64_t world_now(void) {
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t world_now_ms(void) {
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sim_err_set(struct sim_err *err, int status, int code, const char *fmt, ...) {
	va_list ap;

	err->status = status;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

static uint64_t splitmix(uint64_t *x) {
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Deterministic SIDs: the same world always gets the same SIDs, in order. */
static void new_sid(struct sim_world *w, const char *prefix, char out[SIM_SID_SIZE]) {
	uint64_t x = ++w->sid_counter * 1000003u + (uint64_t)(unsigned char)prefix[0] * 131u +
		(unsigned char)prefix[1];
	uint64_t a = splitmix(&x), b = splitmix(&x);

	snprintf(out, SIM_SID_SIZE, "%c%c%016llx%016llx", prefix[0], prefix[1],
		(unsigned long long)a, (unsigned long long)b);
}

const char *task_status_str(enum sim_task_status s) {
	static const char *const n[] = {"pending", "reserved", "assigned", "wrapping", "completed",
		"canceled"};
	return n[s];
}

const char *res_status_str(enum sim_res_status s) {
	static const char *const n[] = {"pending", "accepted", "rejected", "timeout", "canceled",
		"rescinded", "wrapping", "completed"};
	return n[s];
}

const char *xfer_status_str(enum sim_xfer_status s) {
	static const char *const n[] = {"initiated", "failed", "complete", "canceled"};
	return n[s];
}

bool res_live(const struct sim_reservation *r) {
	return r->status == RS_PENDING || r->status == RS_ACCEPTED || r->status == RS_WRAPPING;
}

static bool grow(void **arr, size_t *cap, size_t n, size_t size) {
	size_t c;
	void *p;

	if (n < *cap) {
		return true;
	}
	c = *cap ? *cap * 2 : 64;
	p = realloc(*arr, c * size);
	if (!p) {
		return false;
	}
	*arr = p;
	*cap = c;
	return true;
}

/* ---- events ---- */

void world_begin(struct sim_world *w) {
	w->gen++;
}

static void queue_event(struct sim_world *w, struct sim_worker *k, enum sim_ev_cat cat,
	const char *type, struct sbuf *payload) {
	struct sbuf f;
	struct sim_event *e;

	sb_init(&f);
	sb_puts(&f, "{\"event_type\":");
	sb_quote(&f, type);
	sb_puts(&f, ",\"payload\":");
	sb_putn(&f, payload->p ? payload->p : "null", payload->p ? payload->len : 4);
	sb_puts(&f, "}");
	sb_done(payload);
	if (f.oom || !grow((void **)&w->events, &w->cap_events, w->n_events, sizeof(*w->events))) {
		sb_done(&f);
		w->oom = true;
		return;
	}
	e = &w->events[w->n_events];
	e->type = strdup(type);
	if (!e->type) {
		sb_done(&f);
		w->oom = true;
		return;
	}
	e->worker = k;
	e->cat = cat;
	e->len = f.len;
	e->frame = sb_steal(&f);
	w->n_events++;
}

static void ev_res(struct sim_world *w, struct sim_reservation *r, const char *type) {
	struct sbuf b;
	struct jw j;

	sb_init(&b);
	jw_init(&j, &b);
	render_res(w, &j, r, RES_EVENT);
	queue_event(w, r->worker, EV_RES, type, &b);
}

static void ev_task_to(struct sim_world *w, struct sim_worker *k, struct sim_task *t,
	const char *type) {
	struct sbuf b;
	struct jw j;

	sb_init(&b);
	jw_init(&j, &b);
	render_task(w, &j, t);
	queue_event(w, k, EV_TASK, type, &b);
}

/* To every worker holding a live reservation of t, or one this operation just ended. */
static void ev_task(struct sim_world *w, struct sim_task *t, const char *type) {
	uint64_t done = 0;
	size_t i;

	for (i = 0; i < w->n_res; i++) {
		struct sim_reservation *r = w->res[i];
		if (r->task != t || (done & BIT(r->worker->idx))) {
			continue;
		}
		if (res_live(r) || r->gen == w->gen) {
			done |= BIT(r->worker->idx);
			ev_task_to(w, r->worker, t, type);
		}
	}
}

static void ev_xfer(struct sim_world *w, struct sim_transfer *x, const char *type) {
	struct sbuf b;
	struct jw j;

	sb_init(&b);
	jw_init(&j, &b);
	render_xfer(w, &j, x, true);
	queue_event(w, x->init_worker, EV_XFER, type, &b);
}

static void ev_worker(struct sim_world *w, struct sim_worker *k, const char *type) {
	struct sbuf b;
	struct jw j;

	sb_init(&b);
	jw_init(&j, &b);
	render_worker(w, &j, k);
	queue_event(w, k, EV_WORKER, type, &b);
}

static void ev_wchannel(struct sim_world *w, struct sim_worker *k, int ch, const char *type) {
	struct sbuf b;
	struct jw j;

	sb_init(&b);
	jw_init(&j, &b);
	render_wchannel(w, &j, k, ch);
	queue_event(w, k, EV_WORKER, type, &b);
}

static void deliver(struct sim_world *w) {
	static const enum sim_ev_cat order[] = {EV_RES, EV_TASK, EV_XFER, EV_WORKER};
	size_t i;
	int c;

	for (c = 0; c < 4; c++) {
		enum sim_ev_cat cat = order[w->reverse_order ? 3 - c : c];
		for (i = 0; i < w->n_events; i++) {
			struct sim_event *e = &w->events[i];
			if (e->cat == cat && w->on_event) {
				w->on_event(w->ud, e->worker, e->type, e->frame, e->len);
			}
		}
	}
	for (i = 0; i < w->n_events; i++) {
		free(w->events[i].type);
		free(w->events[i].frame);
	}
	w->n_events = 0;
}

/* Routing that a change made possible (a worker became available, a channel changed,
 * capacity was freed) is TaskRouter's next step, not part of the change: its
 * reservation.created (and the worker version it raises) comes after the change's own
 * frames and after the REST answer was rendered, as the SDK's version bookkeeping expects
 * (spec reservation-worker §4.5). */
void world_flush(struct sim_world *w) {
	deliver(w);
	while (w->route_later && !w->closing) {
		w->route_later = false;
		world_begin(w);
		route_all(w);
		deliver(w);
	}
}

/* ---- rendering ---- */

static void tristate(struct jw *j, const char *k, int v) {
	if (v < 0) {
		jw_knull(j, k);
	} else {
		jw_kbool(j, k, v != 0);
	}
}

static void common(struct sim_world *w, struct jw *j) {
	jw_kstr(j, "account_sid", w->account_sid);
	jw_kstr(j, "workspace_sid", w->workspace_sid);
}

static void task_members(struct sim_world *w, struct jw *j, const struct sim_task *t) {
	int64_t now = world_now();

	common(w, j);
	jw_kstr(j, "sid", t->sid);
	jw_kstr(j, "assignment_status", task_status_str(t->status));
	jw_kstr(j, "attributes", t->attributes);
	jw_kstr(j, "addons", "{}");
	jw_kint(j, "age", now > t->created ? now - t->created : 0);
	jw_kint(j, "priority", t->priority);
	jw_kstr(j, "reason", t->reason);
	jw_kint(j, "timeout", t->timeout);
	jw_kstr(j, "queue_sid", w->queue.sid);
	jw_kstr(j, "queue_name", w->queue.name);
	jw_kstr(j, "workflow_sid", w->workflow.sid);
	jw_kstr(j, "workflow_name", w->workflow.name);
	jw_kstr(j, "task_channel_sid", w->channels[t->channel].sid);
	jw_kstr(j, "task_channel_unique_name", w->channels[t->channel].name);
	jw_kstr(j, "routing_target",
		t->worker_target >= 0 ? w->workers[t->worker_target]->sid : NULL);
	jw_kint(j, "date_created", t->created);
	jw_kint(j, "date_updated", t->updated);
	jw_kint(j, "virtual_start_time", t->vst);
	jw_kint(j, "version", t->version);
}

void render_task(struct sim_world *w, struct jw *j, const struct sim_task *t) {
	jw_obj(j);
	task_members(w, j, t);
	jw_obj_end(j);
}

void render_xfer(struct sim_world *w, struct jw *j, const struct sim_transfer *x, bool task_sid) {
	jw_obj(j);
	if (task_sid) {
		common(w, j);
		jw_kstr(j, "task_sid", x->task->sid);
	}
	jw_kstr(j, "sid", x->sid);
	jw_kstr(j, "transfer_type", x->to_queue ? "QUEUE" : "WORKER");
	jw_kstr(j, "transfer_mode", x->cold ? "COLD" : "WARM");
	jw_kstr(j, "transfer_to", x->to);
	jw_kstr(j, "transfer_status", xfer_status_str(x->status));
	if (x->failed_reason) {
		jw_kstr(j, "transfer_failed_reason", x->failed_reason);
	}
	jw_kstr(j, "initiating_reservation_sid", x->init_res->sid);
	jw_kstr(j, "initiating_worker_sid", x->init_worker->sid);
	jw_kstr(j, "initiating_queue_sid", w->queue.sid);
	jw_kstr(j, "initiating_workflow_sid", w->workflow.sid);
	jw_kint(j, "date_created", x->created);
	jw_kint(j, "date_updated", x->updated);
	jw_obj_end(j);
}

void render_res(struct sim_world *w, struct jw *j, const struct sim_reservation *r,
	enum sim_res_shape shape) {
	jw_obj(j);
	common(w, j);
	jw_kstr(j, "sid", r->sid);
	jw_kstr(j, "worker_sid", r->worker->sid);
	jw_kstr(j, "worker_name", r->worker->name);
	jw_kstr(j, "task_sid", r->task->sid);
	jw_kstr(j, "task_channel_sid", w->channels[r->task->channel].sid);
	jw_kstr(j, "worker_previous_activity_sid", w->activities[r->prev_activity].sid);
	jw_kstr(j, "reservation_status", res_status_str(r->status));
	if (shape != RES_INSTANCE) {
		jw_kint(j, "reservation_timeout", r->timeout);
	}
	if (r->canceled_reason_code) {
		jw_kint(j, "canceled_reason_code", r->canceled_reason_code);
	}
	jw_kint(j, "date_created", r->created);
	jw_kint(j, "date_updated", r->updated);
	jw_kint(j, "version", r->version);
	if (shape == RES_EVENT) {
		jw_key(j, "task");
		render_task(w, j, r->task);
		if (r->incoming) {
			jw_key(j, "task_transfer");
			render_xfer(w, j, r->incoming, false);
		}
		if (r->outgoing) {
			jw_key(j, "active_outgoing_task_transfer");
			render_xfer(w, j, r->outgoing, false);
		}
	}
	if (shape == RES_STATE) {
		/* the simulator's records, for tests: what the instructions and WorkerParticipant
		 * calls did */
		jw_key(j, "instruction");
		if (r->instruction) {
			jw_obj(j);
			jw_kstr(j, "name", r->instruction);
			jw_kraw(j, "params", r->instruction_params ? r->instruction_params : "{}");
			jw_kint(j, "count", r->n_instructions);
			jw_kstr(j, "post_work_activity_sid",
				r->post_work_activity >= 0 ? w->activities[r->post_work_activity].sid
							   : NULL);
			jw_obj_end(j);
		} else {
			jw_null(j);
		}
		jw_key(j, "participant");
		jw_obj(j);
		tristate(j, "mute", r->p_mute);
		tristate(j, "end_conference_on_exit", r->p_end_on_exit);
		tristate(j, "beep_on_exit", r->p_beep_on_exit);
		jw_kint(j, "updates", r->n_participant_updates);
		jw_obj_end(j);
	}
	jw_obj_end(j);
}

void render_worker(struct sim_world *w, struct jw *j, const struct sim_worker *k) {
	const struct sim_activity *a = &w->activities[k->activity];

	jw_obj(j);
	common(w, j);
	jw_kstr(j, "sid", k->sid);
	jw_kstr(j, "friendly_name", k->name);
	jw_kstr(j, "activity_sid", a->sid);
	jw_kstr(j, "activity_name", a->name);
	jw_kbool(j, "available", a->available);
	jw_kstr(j, "attributes", k->attributes);
	jw_kint(j, "date_created", k->created);
	jw_kint(j, "date_updated", k->updated);
	jw_kint(j, "date_status_changed", k->status_changed);
	jw_kint(j, "version", k->version);
	jw_obj_end(j);
}

void render_activity(struct sim_world *w, struct jw *j, const struct sim_activity *a) {
	jw_obj(j);
	common(w, j);
	jw_kstr(j, "sid", a->sid);
	jw_kstr(j, "friendly_name", a->name);
	jw_kbool(j, "available", a->available);
	jw_kint(j, "date_created", w->created);
	jw_kint(j, "date_updated", w->created);
	jw_obj_end(j);
}

static int channel_load(struct sim_world *w, const struct sim_worker *k, int ch) {
	int n = 0;
	size_t i;

	for (i = 0; i < w->n_res; i++) {
		const struct sim_reservation *r = w->res[i];
		if (r->worker == k && r->task->channel == ch &&
			(r->status == RS_ACCEPTED || r->status == RS_WRAPPING ||
				r->status == RS_PENDING)) {
			n++;
		}
	}
	return n;
}

void render_wchannel(struct sim_world *w, struct jw *j, const struct sim_worker *k, int ch) {
	const struct sim_wchannel *c = &k->ch[ch];
	int load = channel_load(w, k, ch);
	int pct = c->capacity > 0 && load < c->capacity ? (c->capacity - load) * 100 / c->capacity
							: 0;

	jw_obj(j);
	common(w, j);
	jw_kstr(j, "sid", c->sid);
	jw_kstr(j, "worker_sid", k->sid);
	jw_kstr(j, "task_channel_sid", w->channels[ch].sid);
	jw_kstr(j, "task_channel_unique_name", w->channels[ch].name);
	jw_kint(j, "configured_capacity", c->capacity);
	jw_kint(j, "available", c->available ? 1 : 0);
	jw_kint(j, "assigned_tasks", load);
	jw_kint(j, "available_capacity_percentage", pct);
	jw_kint(j, "date_created", k->created);
	jw_kint(j, "date_updated", c->updated);
	jw_kint(j, "last_reserved_time", c->last_reserved_ms);
	jw_kint(j, "version", c->version);
	jw_obj_end(j);
}

void render_conf(struct sim_world *w, struct jw *j, const struct sim_task *t) {
	int i;

	jw_obj(j);
	jw_kstr(j, "task_sid", t->sid);
	jw_kbool(j, "customer_in", t->customer_in);
	jw_kbool(j, "customer_hold", t->customer_hold);
	jw_key(j, "workers");
	jw_arr(j);
	for (i = 0; i < w->n_workers; i++) {
		if (t->conf_members & BIT(i)) {
			jw_obj(j);
			jw_kstr(j, "worker_sid", w->workers[i]->sid);
			jw_kstr(j, "name", w->workers[i]->name);
			jw_kbool(j, "hold", (t->conf_hold & BIT(i)) != 0);
			jw_kbool(j, "muted", (t->conf_muted & BIT(i)) != 0);
			jw_obj_end(j);
		}
	}
	jw_arr_end(j);
	jw_obj_end(j);
}

/* ---- lookups ---- */

/* Return the element of arr[0..n) whose sid is sid (NULL: none). */
#define FIND_BY_SID(arr, n, key)                                                                   \
	do {                                                                                       \
		for (size_t i_ = 0; (key) && i_ < (n); i_++) {                                     \
			if (strcmp((arr)[i_]->sid, (key)) == 0) {                                  \
				return (arr)[i_];                                                  \
			}                                                                          \
		}                                                                                  \
		return NULL;                                                                       \
	} while (0)

struct sim_worker *world_worker(struct sim_world *w, const char *s) {
	int i;

	for (i = 0; s && i < w->n_workers; i++) {
		if (strcmp(w->workers[i]->sid, s) == 0 || strcmp(w->workers[i]->name, s) == 0) {
			return w->workers[i];
		}
	}
	return NULL;
}

struct sim_task *world_task(struct sim_world *w, const char *sid) {
	for (size_t i = 0; sid && i < w->n_tasks; i++) {
		if (!w->tasks[i]->deleted && strcmp(w->tasks[i]->sid, sid) == 0) {
			return w->tasks[i];
		}
	}
	return NULL;
}

struct sim_reservation *world_res(struct sim_world *w, const char *sid) {
	FIND_BY_SID(w->res, w->n_res, sid);
}

struct sim_transfer *world_xfer(struct sim_world *w, const char *sid) {
	FIND_BY_SID(w->xfers, w->n_xfers, sid);
}

int world_activity(struct sim_world *w, const char *sid) {
	int i;

	for (i = 0; sid && i < 2; i++) {
		if (strcmp(w->activities[i].sid, sid) == 0 || strcmp(w->activities[i].name, sid) == 0) {
			return i;
		}
	}
	return -1;
}

int world_channel(struct sim_world *w, const char *s) {
	int i;

	for (i = 0; s && i < SIM_N_CHANNELS; i++) {
		if (strcmp(w->channels[i].sid, s) == 0 || strcmp(w->channels[i].name, s) == 0) {
			return i;
		}
	}
	return -1;
}

/* ---- mutation helpers ---- */

static void touch_task(struct sim_task *t) {
	t->version++;
	t->updated = world_now();
}

static void set_task(struct sim_task *t, enum sim_task_status s) {
	t->status = s;
	touch_task(t);
}

static void set_res(struct sim_world *w, struct sim_reservation *r, enum sim_res_status s) {
	if (res_live(r) && s != RS_PENDING && s != RS_ACCEPTED && s != RS_WRAPPING) {
		w->route_later = true; /* capacity freed */
	}
	r->status = s;
	r->version++;
	r->updated = world_now();
	r->gen = w->gen;
}

static void set_reason(struct sim_task *t, const char *reason) {
	char *d = reason ? strdup(reason) : NULL;

	if (reason && !d) {
		return; /* keep the old reason rather than fail the change */
	}
	free(t->reason);
	t->reason = d;
}

static void set_xfer(struct sim_transfer *x, enum sim_xfer_status s, const char *reason) {
	x->status = s;
	x->updated = world_now();
	if (reason) {
		char *d = strdup(reason);
		if (d) {
			free(x->failed_reason);
			x->failed_reason = d;
		}
	}
}

static bool is_voice(struct sim_world *w, const struct sim_task *t) {
	return strcmp(w->channels[t->channel].name, "voice") == 0;
}

static void conf_join(struct sim_world *w, struct sim_task *t, struct sim_worker *k) {
	if (is_voice(w, t)) {
		t->conf_members |= BIT(k->idx);
		t->conf_hold &= ~BIT(k->idx);
		t->conf_muted &= ~BIT(k->idx);
	}
}

static void conf_leave(struct sim_task *t, struct sim_worker *k) {
	t->conf_members &= ~BIT(k->idx);
	t->conf_hold &= ~BIT(k->idx);
	t->conf_muted &= ~BIT(k->idx);
}

static struct sim_reservation *res_new(struct sim_world *w, struct sim_task *t,
	struct sim_worker *k, int64_t timeout) {
	struct sim_reservation *r;

	if (!grow((void **)&w->res, &w->cap_res, w->n_res, sizeof(*w->res))) {
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		return NULL;
	}
	new_sid(w, "WR", r->sid);
	r->seq = ++w->seq;
	r->task = t;
	r->worker = k;
	r->status = RS_PENDING;
	r->timeout = timeout > 0 ? timeout : SIM_RESERVATION_TIMEOUT;
	r->created = r->updated = world_now();
	r->gen = w->gen;
	r->prev_activity = k->activity;
	r->post_work_activity = -1;
	r->p_mute = r->p_end_on_exit = r->p_beep_on_exit = -1;
	w->res[w->n_res++] = r;
	return r;
}

/* Offer t to k: a pending reservation, task reserved, worker version + 1. */
static struct sim_reservation *reserve(struct sim_world *w, struct sim_task *t,
	struct sim_worker *k, struct sim_transfer *x, int64_t timeout) {
	struct sim_reservation *r = res_new(w, t, k, timeout);

	if (!r) {
		w->oom = true;
		return NULL;
	}
	r->incoming = x;
	if (x) {
		x->target_res = r;
	}
	set_task(t, TS_RESERVED);
	k->version++;
	k->ch[t->channel].last_reserved_ms = world_now_ms();
	ev_res(w, r, "reservation.created");
	return r;
}

static bool has_pending_res(struct sim_world *w, const struct sim_task *t) {
	size_t i;

	for (i = 0; i < w->n_res; i++) {
		if (w->res[i]->task == t && w->res[i]->status == RS_PENDING) {
			return true;
		}
	}
	return false;
}

static bool can_take(struct sim_world *w, struct sim_worker *k, const struct sim_task *t) {
	const struct sim_wchannel *c = &k->ch[t->channel];

	return w->activities[k->activity].available && c->available &&
		channel_load(w, k, t->channel) < c->capacity && !(t->declined & BIT(k->idx));
}

/* The workflow: offer a pending task to the first worker that can take it. */
static void route(struct sim_world *w, struct sim_task *t) {
	int i;

	if (t->status != TS_PENDING || has_pending_res(w, t)) {
		return;
	}
	for (i = 0; i < w->n_workers; i++) {
		struct sim_worker *k = w->workers[i];
		if (t->worker_target >= 0 && t->worker_target != i) {
			continue;
		}
		if (can_take(w, k, t)) {
			struct sim_transfer *x = t->xfer && t->xfer->status == XS_INITIATED ? t->xfer
											      : NULL;
			(void)reserve(w, t, k, x, 0);
			return;
		}
	}
}

static void route_all(struct sim_world *w) {
	size_t i;

	for (i = 0; i < w->n_tasks; i++) {
		route(w, w->tasks[i]);
	}
}

static struct sim_reservation *holder_res(struct sim_world *w, struct sim_task *t,
	enum sim_res_status s) {
	size_t i;

	for (i = 0; i < w->n_res; i++) {
		if (w->res[i]->task == t && w->res[i]->status == s) {
			return w->res[i];
		}
	}
	return NULL;
}

/* ---- world ---- */

static void on_handle_closed(uv_handle_t *h) {
	struct sim_world *w = h->data;
	size_t i;
	int k;

	if (--w->open_handles > 0) {
		return;
	}
	for (i = 0; i < w->n_tasks; i++) {
		free(w->tasks[i]->attributes);
		free(w->tasks[i]->reason);
		free(w->tasks[i]);
	}
	for (i = 0; i < w->n_res; i++) {
		free(w->res[i]->instruction_params);
		free(w->res[i]);
	}
	for (i = 0; i < w->n_xfers; i++) {
		free(w->xfers[i]->failed_reason);
		free(w->xfers[i]);
	}
	for (k = 0; k < w->n_workers; k++) {
		free(w->workers[k]->attributes);
		free(w->workers[k]->token);
		free(w->workers[k]);
	}
	w->n_events = 0;
	free(w->events);
	free(w->tasks);
	free(w->res);
	free(w->xfers);
	free(w);
}

void world_close(struct sim_world *w) {
	int k;

	if (!w || w->closing) {
		return;
	}
	w->closing = true;
	world_flush(w);
	w->on_event = NULL;
	uv_close((uv_handle_t *)&w->tick, on_handle_closed);
	for (k = 0; k < w->n_workers; k++) {
		uv_close((uv_handle_t *)&w->workers[k]->offline_timer, on_handle_closed);
	}
}

static void expire_res(struct sim_world *w, struct sim_reservation *r);

static void on_tick(uv_timer_t *h) {
	struct sim_world *w = h->data;
	int64_t now = world_now();
	size_t i;

	world_begin(w);
	for (i = 0; i < w->n_res; i++) {
		struct sim_reservation *r = w->res[i];
		if (r->status == RS_PENDING && now >= r->created + r->timeout) {
			expire_res(w, r);
		}
	}
	for (i = 0; i < w->n_tasks; i++) {
		struct sim_task *t = w->tasks[i];
		struct sim_err err;
		if ((t->status == TS_PENDING || t->status == TS_RESERVED) &&
			now >= t->created + t->timeout) {
			(void)world_task_cancel(w, t, "Task TTL Exceeded", &err);
		}
	}
	world_flush(w);
}

static struct sim_worker *worker_new(struct sim_world *w, const char *name) {
	struct sim_worker *k = calloc(1, sizeof(*k));
	int c;

	if (!k) {
		return NULL;
	}
	k->world = w;
	k->idx = w->n_workers;
	new_sid(w, "WK", k->sid);
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->attributes = malloc(96);
	if (!k->attributes || uv_timer_init(w->loop, &k->offline_timer) < 0) {
		free(k->attributes);
		free(k);
		return NULL;
	}
	snprintf(k->attributes, 96, "{\"name\":\"%s\",\"languages\":[\"en\"]}", name);
	k->offline_timer.data = w;
	w->open_handles++;
	k->activity = w->available_activity;
	k->created = k->updated = k->status_changed = w->created;
	k->version = 1;
	for (c = 0; c < SIM_N_CHANNELS; c++) {
		new_sid(w, "WC", k->ch[c].sid);
		k->ch[c].capacity = strcmp(w->channels[c].name, "voice") == 0 ? 1 : 3;
		k->ch[c].available = true;
		k->ch[c].version = 1;
		k->ch[c].updated = w->created;
	}
	w->workers[w->n_workers++] = k;
	return k;
}

struct sim_world *world_new(uv_loop_t *loop, sim_event_cb cb, void *ud) {
	struct sim_world *w = calloc(1, sizeof(*w));

	if (!w) {
		return NULL;
	}
	w->loop = loop;
	w->on_event = cb;
	w->ud = ud;
	w->created = world_now() - 86400;
	new_sid(w, "AC", w->account_sid);
	new_sid(w, "WS", w->workspace_sid);
	new_sid(w, "SK", w->key_sid);
	snprintf(w->workspace_name, sizeof(w->workspace_name), "Simulated");
	new_sid(w, "WA", w->activities[0].sid);
	snprintf(w->activities[0].name, sizeof(w->activities[0].name), "Available");
	w->activities[0].available = true;
	new_sid(w, "WA", w->activities[1].sid);
	snprintf(w->activities[1].name, sizeof(w->activities[1].name), "Offline");
	w->available_activity = 0;
	w->offline_activity = 1;
	new_sid(w, "TC", w->channels[0].sid);
	snprintf(w->channels[0].name, sizeof(w->channels[0].name), "voice");
	new_sid(w, "TC", w->channels[1].sid);
	snprintf(w->channels[1].name, sizeof(w->channels[1].name), "chat");
	new_sid(w, "WQ", w->queue.sid);
	snprintf(w->queue.name, sizeof(w->queue.name), "Support");
	new_sid(w, "WW", w->workflow.sid);
	snprintf(w->workflow.name, sizeof(w->workflow.name), "Default");

	if (uv_timer_init(loop, &w->tick) < 0) {
		free(w);
		return NULL;
	}
	w->tick.data = w;
	w->open_handles = 1;
	if (!worker_new(w, "alice") || !worker_new(w, "bob")) {
		world_close(w);
		return NULL;
	}
	(void)uv_timer_start(&w->tick, on_tick, 1000, 1000);
	return w;
}

/* ---- tasks ---- */

int world_task_create(struct sim_world *w, const struct sim_task_spec *spec,
	struct sim_task **ret_task, struct sim_reservation **ret_res, struct sim_err *err) {
	struct sim_task *t;
	struct sim_reservation *r = NULL;
	int64_t now = world_now();

	if (spec->channel < 0 || spec->channel >= SIM_N_CHANNELS) {
		sim_err_set(err, 400, 20001, "Unknown task channel");
		return -1;
	}
	if (spec->timeout < 1 || spec->timeout > SIM_TASK_TIMEOUT_MAX) {
		sim_err_set(err, 400, 20001, "Timeout must be between 1 and %d seconds",
			SIM_TASK_TIMEOUT_MAX);
		return -1;
	}
	if (spec->priority < 0 || spec->priority > INT32_MAX) {
		sim_err_set(err, 400, 20001, "Priority must be between 0 and 2147483647");
		return -1;
	}
	if (spec->vst > now) {
		sim_err_set(err, 400, 20001, "VirtualStartTime cannot be in the future");
		return -1;
	}
	if (spec->vst != 0 && spec->vst < VST_MIN) {
		sim_err_set(err, 400, 20001, "VirtualStartTime cannot be before 1900");
		return -1;
	}
	if (!grow((void **)&w->tasks, &w->cap_tasks, w->n_tasks, sizeof(*w->tasks))) {
		goto nomem;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		goto nomem;
	}
	t->attributes = strdup(spec->attributes ? spec->attributes : "{}");
	if (!t->attributes) {
		free(t);
		goto nomem;
	}
	new_sid(w, "WT", t->sid);
	t->seq = ++w->seq;
	t->status = TS_PENDING;
	t->priority = spec->priority;
	t->timeout = spec->timeout;
	t->channel = spec->channel;
	t->worker_target = spec->worker_target;
	t->created = t->updated = now;
	t->vst = spec->vst ? spec->vst : now;
	t->version = 0;
	t->customer_in = is_voice(w, t);
	w->tasks[w->n_tasks++] = t;
	if (spec->no_route) {
		r = NULL;
	} else if (spec->force && spec->worker_target >= 0) {
		r = reserve(w, t, w->workers[spec->worker_target], NULL, spec->reservation_timeout);
	} else {
		route(w, t);
		r = holder_res(w, t, RS_PENDING);
	}
	*ret_task = t;
	if (ret_res) {
		*ret_res = r;
	}
	return 0;
nomem:
	sim_err_set(err, 500, 20500, "Out of memory");
	return -1;
}

int world_task_update(struct sim_world *w, struct sim_task *t, const char *attributes,
	int64_t priority, int64_t timeout, int64_t vst, struct sim_err *err) {
	char *a = NULL;

	if (vst != -1 && vst > world_now()) {
		sim_err_set(err, 400, 20001,
			"VirtualStartTime cannot be in the future for Task %s", t->sid);
		return -1;
	}
	if (vst != -1 && vst < VST_MIN) {
		sim_err_set(err, 400, 20001, "VirtualStartTime cannot be before 1900 for Task %s",
			t->sid);
		return -1;
	}
	if (priority != -1 && (priority < 0 || priority > INT32_MAX)) {
		sim_err_set(err, 400, 20001, "Priority must be between 0 and 2147483647");
		return -1;
	}
	if (timeout != -1 && (timeout < 1 || timeout > SIM_TASK_TIMEOUT_MAX)) {
		sim_err_set(err, 400, 20001, "Timeout must be between 1 and %d seconds",
			SIM_TASK_TIMEOUT_MAX);
		return -1;
	}
	if (attributes) {
		a = strdup(attributes);
		if (!a) {
			sim_err_set(err, 500, 20500, "Out of memory");
			return -1;
		}
		free(t->attributes);
		t->attributes = a;
	}
	if (priority != -1) {
		t->priority = priority;
	}
	if (timeout != -1) {
		t->timeout = timeout;
	}
	if (vst != -1) {
		t->vst = vst;
	}
	touch_task(t);
	ev_task(w, t, "task.updated");
	return 0;
}

int world_task_complete(struct sim_world *w, struct sim_task *t, const char *reason,
	struct sim_err *err) {
	size_t i;

	if (t->status != TS_ASSIGNED && t->status != TS_WRAPPING) {
		sim_err_set(err, 400, 20001,
			"Task %s cannot be completed: it is %s, not assigned or wrapping", t->sid,
			task_status_str(t->status));
		return -1;
	}
	set_reason(t, reason);
	set_task(t, TS_COMPLETED);
	t->conf_members = t->conf_hold = t->conf_muted = 0;
	t->customer_in = t->customer_hold = false;
	for (i = 0; i < w->n_res; i++) {
		struct sim_reservation *r = w->res[i];
		if (r->task == t && (r->status == RS_ACCEPTED || r->status == RS_WRAPPING)) {
			set_res(w, r, RS_COMPLETED);
			ev_res(w, r, "reservation.completed");
		}
	}
	ev_task(w, t, "task.completed");
	post_work_task(w, t);
	return 0;
}

int world_task_wrap(struct sim_world *w, struct sim_task *t, const char *reason,
	struct sim_err *err) {
	size_t i;

	if (t->status != TS_ASSIGNED) {
		sim_err_set(err, 400, 20001, "Task %s cannot be wrapped up: it is %s, not assigned",
			t->sid, task_status_str(t->status));
		return -1;
	}
	if (reason) {
		set_reason(t, reason);
	}
	set_task(t, TS_WRAPPING);
	t->customer_in = t->customer_hold = false;
	for (i = 0; i < w->n_res; i++) {
		struct sim_reservation *r = w->res[i];
		if (r->task == t && r->status == RS_ACCEPTED) {
			set_res(w, r, RS_WRAPPING);
			conf_leave(t, r->worker);
			ev_res(w, r, "reservation.wrapup");
		}
	}
	ev_task(w, t, "task.wrapup");
	post_work_task(w, t);
	return 0;
}

int world_task_cancel(struct sim_world *w, struct sim_task *t, const char *reason,
	struct sim_err *err) {
	size_t i;

	if (t->status != TS_PENDING && t->status != TS_RESERVED) {
		sim_err_set(err, 400, 20001,
			"Task %s cannot be canceled: it is %s (only pending or reserved tasks can "
			"be canceled)",
			t->sid, task_status_str(t->status));
		return -1;
	}
	if (t->xfer && t->xfer->status == XS_INITIATED) {
		sim_err_set(err, 400, 20001, "Task %s cannot be canceled while transfer %s is in "
					     "progress", t->sid, t->xfer->sid);
		return -1;
	}
	set_reason(t, reason);
	set_task(t, TS_CANCELED);
	t->customer_in = t->customer_hold = false;
	t->conf_members = t->conf_hold = t->conf_muted = 0;
	for (i = 0; i < w->n_res; i++) {
		struct sim_reservation *r = w->res[i];
		if (r->task == t && r->status == RS_PENDING) {
			set_res(w, r, RS_CANCELED);
			ev_res(w, r, "reservation.canceled");
		}
	}
	ev_task(w, t, "task.canceled");
	return 0;
}

int world_task_delete(struct sim_world *w, struct sim_task *t, struct sim_err *err) {
	int rc = 0;

	if (t->status == TS_ASSIGNED || t->status == TS_WRAPPING) {
		rc = world_task_complete(w, t, "deleted", err);
	} else if (t->status == TS_PENDING || t->status == TS_RESERVED) {
		rc = world_task_cancel(w, t, "deleted", err);
	}
	if (rc == 0) {
		t->deleted = true;
	}
	return rc;
}

void world_task_fail(struct sim_world *w, struct sim_task *t, struct sim_worker *k) {
	set_reason(t, "No reservation could be created: the routing target is not available");
	set_task(t, TS_CANCELED);
	t->customer_in = t->customer_hold = false;
	{
		/* Task-like, with the workflow and queue that tried (SDK-test fixture) */
		struct sbuf b;
		struct jw j;
		sb_init(&b);
		jw_init(&j, &b);
		jw_obj(&j);
		task_members(w, &j, t);
		jw_kstr(&j, "initiating_workflow_sid", w->workflow.sid);
		jw_kstr(&j, "initiating_queue_sid", w->queue.sid);
		jw_obj_end(&j);
		queue_event(w, k, EV_RES, "reservation.failed", &b);
	}
}

/* ---- reservations ---- */

/* TaskRouter's text for a reservation update from the wrong state (as Flex users see it:
 * "Reservation WR… not in expected state [pending] and cannot be updated to [onHold]"). */
static void res_state_err(struct sim_err *err, const struct sim_reservation *r,
	const char *expected, const char *to) {
	sim_err_set(err, 400, 20001,
		"Reservation %s not in expected state [%s] and cannot be updated to [%s]: it is %s",
		r->sid, expected, to, res_status_str(r->status));
}

/* The worker's call for r ended (wrap or complete): a dequeue's post-work activity applies. */
static void post_work(struct sim_world *w, struct sim_reservation *r) {
	struct sim_err err;
	int a = r->post_work_activity;

	if (a < 0 || r->status == RS_PENDING || r->status == RS_ACCEPTED) {
		return;
	}
	r->post_work_activity = -1;
	(void)world_worker_update(w, r->worker, NULL, a, false, &err);
}

static void post_work_task(struct sim_world *w, struct sim_task *t) {
	for (size_t i = 0; i < w->n_res; i++) {
		if (w->res[i]->task == t) {
			post_work(w, w->res[i]);
		}
	}
}

/* Where the task goes when its transfer ends without the target taking it. */
static void xfer_fall_back(struct sim_world *w, struct sim_transfer *x) {
	struct sim_task *t = x->task;

	t->customer_hold = false;
	if (x->init_res->status == RS_ACCEPTED) {
		set_task(t, TS_ASSIGNED);
	} else if (x->init_res->status == RS_WRAPPING) {
		set_task(t, TS_WRAPPING);
	} else {
		set_task(t, TS_PENDING);
	}
	ev_task_to(w, x->init_worker, t, "task.updated");
}

int world_res_accept(struct sim_world *w, struct sim_reservation *r, struct sim_err *err) {
	struct sim_task *t = r->task;
	struct sim_transfer *x = r->incoming;

	if (r->status != RS_PENDING) {
		res_state_err(err, r, "pending", "accepted");
		return -1;
	}
	set_res(w, r, RS_ACCEPTED);
	set_task(t, TS_ASSIGNED);
	conf_join(w, t, r->worker);
	ev_res(w, r, "reservation.accepted");
	if (x && x->status == XS_INITIATED && x->target_res == r) {
		set_xfer(x, XS_COMPLETE, NULL);
		t->customer_hold = false;
		if (x->init_worker != r->worker) {
			ev_task_to(w, x->init_worker, t, "task.updated");
		}
		ev_xfer(w, x, "task.transfer-completed");
	}
	return 0;
}

static void res_end(struct sim_world *w, struct sim_reservation *r, enum sim_res_status s) {
	struct sim_task *t = r->task;
	struct sim_transfer *x = r->incoming;
	const char *why = s == RS_TIMEOUT ? "timed out" : "was rejected";
	char reason[128];

	set_res(w, r, s);
	t->declined |= BIT(r->worker->idx);
	if (x && x->status == XS_INITIATED && x->target_res == r) {
		if (x->to_queue) {
			snprintf(reason, sizeof(reason),
				"Transfer attempt failed because the reservation %s", why);
			set_xfer(x, XS_INITIATED, reason);
			set_task(t, TS_PENDING);
			ev_res(w, r, s == RS_TIMEOUT ? "reservation.timeout" : "reservation.rejected");
			ev_xfer(w, x, "task.transfer-attempt-failed");
			route(w, t);
			return;
		}
		snprintf(reason, sizeof(reason), "Transfer failed because the reservation %s", why);
		set_xfer(x, XS_FAILED, reason);
		ev_res(w, r, s == RS_TIMEOUT ? "reservation.timeout" : "reservation.rejected");
		xfer_fall_back(w, x);
		ev_xfer(w, x, "task.transfer-failed");
		if (t->status == TS_PENDING) {
			route(w, t);
		}
		return;
	}
	if (t->status == TS_RESERVED && !has_pending_res(w, t)) {
		set_task(t, TS_PENDING);
	}
	ev_res(w, r, s == RS_TIMEOUT ? "reservation.timeout" : "reservation.rejected");
	route(w, t);
}

int world_res_rescind(struct sim_world *w, struct sim_reservation *r, struct sim_err *err) {
	struct sim_task *t = r->task;

	if (r->status != RS_PENDING) {
		sim_err_set(err, 400, 20001, "Reservation %s cannot be rescinded: it is %s", r->sid,
			res_status_str(r->status));
		return -1;
	}
	if (r->incoming && r->incoming->status == XS_INITIATED && r->incoming->target_res == r) {
		sim_err_set(err, 400, 20001, "Reservation %s belongs to transfer %s; drive the "
					     "transfer instead", r->sid, r->incoming->sid);
		return -1;
	}
	set_res(w, r, RS_RESCINDED);
	t->declined |= BIT(r->worker->idx);
	if (t->status == TS_RESERVED && !has_pending_res(w, t)) {
		set_task(t, TS_PENDING);
	}
	ev_res(w, r, "reservation.rescinded");
	route(w, t);
	return 0;
}

static void expire_res(struct sim_world *w, struct sim_reservation *r) {
	res_end(w, r, RS_TIMEOUT);
}

int world_res_reject(struct sim_world *w, struct sim_reservation *r, int activity,
	struct sim_err *err) {
	if (r->status != RS_PENDING) {
		res_state_err(err, r, "pending", "rejected");
		return -1;
	}
	if (activity >= 2) {
		sim_err_set(err, 400, 20001, "Unknown WorkerActivitySid");
		return -1;
	}
	/* The order of reservation.rejected and worker.activity.update is unknown (spec
	 * reservation-worker §10.3). The simulator rejects first and then moves the worker, so
	 * the frames go reservation.rejected, (task.*), worker.activity.update, and the task is
	 * re-routed while the worker still has its old activity (it declined the task, so it is
	 * never offered the same task again). */
	res_end(w, r, RS_REJECTED);
	if (activity >= 0) {
		(void)world_worker_update(w, r->worker, NULL, activity, false, err);
	}
	return 0;
}

int world_res_timeout(struct sim_world *w, struct sim_reservation *r, struct sim_err *err) {
	if (r->status != RS_PENDING) {
		sim_err_set(err, 400, 20001, "Reservation %s cannot time out: it is %s", r->sid,
			res_status_str(r->status));
		return -1;
	}
	res_end(w, r, RS_TIMEOUT);
	return 0;
}

static bool other_holder(struct sim_world *w, const struct sim_reservation *r) {
	size_t i;

	for (i = 0; i < w->n_res; i++) {
		const struct sim_reservation *o = w->res[i];
		if (o != r && o->task == r->task &&
			(o->status == RS_ACCEPTED || o->status == RS_WRAPPING)) {
			return true;
		}
	}
	return false;
}

static bool xfer_from(const struct sim_reservation *r) {
	const struct sim_transfer *x = r->task->xfer;

	return x && x->status == XS_INITIATED && x->init_res == r;
}

int world_res_wrap(struct sim_world *w, struct sim_reservation *r, struct sim_err *err) {
	struct sim_task *t = r->task;

	if (r->status != RS_ACCEPTED) {
		res_state_err(err, r, "accepted", "wrapping");
		return -1;
	}
	set_res(w, r, RS_WRAPPING);
	conf_leave(t, r->worker);
	ev_res(w, r, "reservation.wrapup");
	if (t->status == TS_ASSIGNED && !other_holder(w, r)) {
		set_task(t, TS_WRAPPING);
		t->customer_in = t->customer_hold = false;
		ev_task(w, t, "task.wrapup");
	}
	post_work(w, r);
	return 0;
}

int world_res_complete(struct sim_world *w, struct sim_reservation *r, struct sim_err *err) {
	struct sim_task *t = r->task;

	if (r->status != RS_ACCEPTED && r->status != RS_WRAPPING) {
		res_state_err(err, r, "accepted, wrapping", "completed");
		return -1;
	}
	set_res(w, r, RS_COMPLETED);
	conf_leave(t, r->worker);
	ev_res(w, r, "reservation.completed");
	if ((t->status == TS_ASSIGNED || t->status == TS_WRAPPING) && !other_holder(w, r) &&
		!xfer_from(r)) {
		set_task(t, TS_COMPLETED);
		t->customer_in = t->customer_hold = false;
		t->conf_members = t->conf_hold = t->conf_muted = 0;
		ev_task(w, t, "task.completed");
	}
	post_work(w, r);
	return 0;
}

/* ---- instructions and the worker's conference leg ---- */

/* TaskRouter's error for an instruction on a reservation that is no longer pending. */
static int instruction_code(const char *name) {
	if (strcmp(name, "call") == 0) {
		return 40114;
	}
	if (strcmp(name, "redirect") == 0) {
		return 40123;
	}
	if (strcmp(name, "dequeue") == 0) {
		return 40135;
	}
	return 40136; /* conference */
}

int world_res_instruction(struct sim_world *w, struct sim_reservation *r,
	const struct sim_instruction *in, struct sim_err *err) {
	char *params;

	if (r->status != RS_PENDING) {
		sim_err_set(err, 400, instruction_code(in->name),
			"The %s instruction needs a pending reservation: reservation %s is %s",
			in->name, r->sid, res_status_str(r->status));
		return -1;
	}
	if (in->post_work_activity >= 2) {
		sim_err_set(err, 400, 20001, "Unknown DequeuePostWorkActivitySid");
		return -1;
	}
	params = strdup(in->params ? in->params : "{}");
	if (!params) {
		sim_err_set(err, 500, 20500, "Out of memory");
		return -1;
	}
	/* Accepting changes nothing but what world_res_accept changes; it cannot fail here. */
	if (in->accept && world_res_accept(w, r, err) < 0) {
		free(params);
		return -1;
	}
	free(r->instruction_params);
	r->instruction = in->name;
	r->instruction_params = params;
	r->n_instructions++;
	r->gen = w->gen;
	if (in->post_work_activity >= 0) {
		r->post_work_activity = in->post_work_activity;
	}
	if (in->mute >= 0) {
		r->p_mute = in->mute;
	}
	if (in->end_on_exit >= 0) {
		r->p_end_on_exit = in->end_on_exit;
	}
	if (in->beep_on_exit >= 0) {
		r->p_beep_on_exit = in->beep_on_exit;
	}
	if (r->status == RS_ACCEPTED && r->p_mute == 1 && (r->task->conf_members &
								BIT(r->worker->idx))) {
		r->task->conf_muted |= BIT(r->worker->idx);
	}
	return 0;
}

int world_res_participant(struct sim_world *w, struct sim_reservation *r, int mute,
	int end_on_exit, int beep_on_exit, struct sim_err *err) {
	struct sim_task *t = r->task;
	uint64_t me = BIT(r->worker->idx);

	(void)w;
	if (r->status != RS_ACCEPTED || !(t->conf_members & me)) {
		sim_err_set(err, 400, 20001,
			"Worker %s has no leg in a conference for reservation %s (it is %s)",
			r->worker->sid, r->sid, res_status_str(r->status));
		return -1;
	}
	if (mute >= 0) {
		r->p_mute = mute;
		if (mute) {
			t->conf_muted |= me;
		} else {
			t->conf_muted &= ~me;
		}
	}
	if (end_on_exit >= 0) {
		r->p_end_on_exit = end_on_exit;
	}
	if (beep_on_exit >= 0) {
		r->p_beep_on_exit = beep_on_exit;
	}
	r->n_participant_updates++;
	return 0;
}

/* ---- transfers ---- */

int world_transfer_create(struct sim_world *w, struct sim_worker *by, struct sim_reservation *r,
	struct sim_task *t, const char *to, const char *mode, const char *attributes,
	int64_t priority, struct sim_transfer **ret, struct sim_err *err) {
	struct sim_worker *target = NULL;
	struct sim_transfer *x;
	bool cold = false;

	if (!t) {
		sim_err_set(err, 400, 20001, "TaskSid is required and must name an existing task");
		return -1;
	}
	if (!r || r->task != t || r->worker != by) {
		sim_err_set(err, 400, 20001,
			"ReservationSid must name this worker's reservation for task %s", t->sid);
		return -1;
	}
	if (r->status != RS_ACCEPTED || t->status != TS_ASSIGNED) {
		sim_err_set(err, 400, 20001,
			"Task %s cannot be transferred: it is not assigned to worker %s", t->sid,
			by->sid);
		return -1;
	}
	if (t->xfer && t->xfer->status == XS_INITIATED) {
		sim_err_set(err, 400, 20001, "Task %s already has transfer %s in progress", t->sid,
			t->xfer->sid);
		return -1;
	}
	if (mode && strcmp(mode, "COLD") == 0) {
		cold = true;
	} else if (mode && strcmp(mode, "WARM") != 0) {
		sim_err_set(err, 400, 20001, "Mode must be WARM or COLD");
		return -1;
	}
	if (!to) {
		sim_err_set(err, 400, 20001, "To is required");
		return -1;
	}
	if (strncmp(to, "WK", 2) == 0) {
		target = world_worker(w, to);
		if (!target) {
			sim_err_set(err, 400, 20001, "Worker %s does not exist", to);
			return -1;
		}
		if (target == by) {
			sim_err_set(err, 400, 20001, "A task cannot be transferred to its own worker");
			return -1;
		}
		if (!w->activities[target->activity].available ||
			!target->ch[t->channel].available) {
			sim_err_set(err, 400, 20001,
				"Worker %s is not available to take task %s", to, t->sid);
			return -1;
		}
	} else if (strcmp(to, w->queue.sid) != 0) {
		sim_err_set(err, 400, 20001, "To must be a worker or queue SID, got %s", to);
		return -1;
	}
	if (priority != -1 && (priority < 0 || priority > INT32_MAX)) {
		sim_err_set(err, 400, 20001, "Priority must be between 0 and 2147483647");
		return -1;
	}
	if (!grow((void **)&w->xfers, &w->cap_xfers, w->n_xfers, sizeof(*w->xfers)) ||
		!(x = calloc(1, sizeof(*x)))) {
		sim_err_set(err, 500, 20500, "Out of memory");
		return -1;
	}
	if (attributes) {
		char *a = strdup(attributes);
		if (!a) {
			free(x);
			sim_err_set(err, 500, 20500, "Out of memory");
			return -1;
		}
		free(t->attributes);
		t->attributes = a;
	}
	if (priority != -1) {
		t->priority = priority;
	}
	new_sid(w, "TT", x->sid);
	x->task = t;
	x->to_queue = target == NULL;
	x->cold = cold;
	snprintf(x->to, sizeof(x->to), "%s", to);
	x->status = XS_INITIATED;
	x->init_res = r;
	x->init_worker = by;
	x->created = x->updated = world_now();
	w->xfers[w->n_xfers++] = x;
	t->xfer = x;
	r->outgoing = x;
	r->gen = w->gen;
	if (t->customer_in) {
		t->customer_hold = true;
	}
	/* the transferee's reservation is offered after the transferor's events */
	set_task(t, x->to_queue ? TS_PENDING : TS_RESERVED);
	if (cold) {
		set_res(w, r, RS_WRAPPING);
		conf_leave(t, by);
		ev_res(w, r, "reservation.wrapup");
	}
	ev_task_to(w, by, t, "task.updated");
	ev_xfer(w, x, "task.transfer-initiated");
	if (target) {
		t->declined &= ~BIT(target->idx);
		(void)reserve(w, t, target, x, 0);
	} else {
		t->declined = BIT(by->idx);
		t->worker_target = -1;
		route(w, t);
	}
	post_work(w, r);
	*ret = x;
	return 0;
}

int world_transfer_cancel(struct sim_world *w, struct sim_transfer *x, struct sim_err *err) {
	struct sim_reservation *tr = x->target_res;

	if (x->status != XS_INITIATED) {
		sim_err_set(err, 400, 20001, "Transfer %s is already %s . Cannot cancel transfer.",
			x->sid, xfer_status_str(x->status));
		return -1;
	}
	set_xfer(x, XS_CANCELED, NULL);
	if (tr && tr->status == RS_PENDING) {
		set_res(w, tr, RS_CANCELED);
		ev_res(w, tr, "reservation.canceled");
	}
	xfer_fall_back(w, x);
	ev_xfer(w, x, "task.transfer-canceled");
	if (x->task->status == TS_PENDING) {
		route(w, x->task);
	}
	return 0;
}

int world_transfer_drive(struct sim_world *w, struct sim_transfer *x, int how,
	struct sim_err *err) {
	struct sim_reservation *tr = x->target_res;

	if (x->status != XS_INITIATED) {
		sim_err_set(err, 400, 20001, "Transfer %s is %s, not initiated", x->sid,
			xfer_status_str(x->status));
		return -1;
	}
	if (how == 2 && x->to_queue) {
		set_xfer(x, XS_FAILED, "Transfer failed because it timed out in the queue");
		if (tr && tr->status == RS_PENDING) {
			set_res(w, tr, RS_CANCELED);
			ev_res(w, tr, "reservation.canceled");
		}
		xfer_fall_back(w, x);
		ev_xfer(w, x, "task.transfer-failed");
		return 0;
	}
	if (!tr || tr->status != RS_PENDING) {
		sim_err_set(err, 400, 20001, "Transfer %s has no pending reservation to act on",
			x->sid);
		return -1;
	}
	if (how == 0) {
		return world_res_accept(w, tr, err);
	}
	return how == 1 ? world_res_reject(w, tr, -1, err) : world_res_timeout(w, tr, err);
}

/* ---- workers ---- */

int world_worker_update(struct sim_world *w, struct sim_worker *k, const char *attrs,
	int activity, bool reject_pending, struct sim_err *err) {
	char *dup = NULL;
	size_t i;

	if (activity < -1 || activity >= 2) {
		sim_err_set(err, 400, 20001, "Unknown ActivitySid");
		return -1;
	}
	if (reject_pending && (activity < 0 || w->activities[activity].available)) {
		sim_err_set(err, 400, 20001,
			"RejectPendingReservations is only allowed with an unavailable activity");
		return -1;
	}
	if (attrs && !(dup = strdup(attrs))) {
		sim_err_set(err, 500, 20500, "Out of memory");
		return -1;
	}
	/* one change, one version */
	k->version++;
	k->updated = world_now();
	if (dup) {
		free(k->attributes);
		k->attributes = dup;
	}
	if (activity >= 0) {
		if (k->activity != activity) {
			k->status_changed = world_now();
		}
		k->activity = activity;
	}
	if (dup) {
		ev_worker(w, k, "worker.attributes.update");
	}
	if (activity < 0) {
		return 0;
	}
	ev_worker(w, k, "worker.activity.update");
	/* The reservation.rejected frames go out before worker.activity.update (the category
	 * order of world_flush); TaskRouter's order is unknown (spec reservation-worker §10.3). */
	if (reject_pending) {
		for (i = 0; i < w->n_res; i++) {
			if (w->res[i]->worker == k && w->res[i]->status == RS_PENDING) {
				res_end(w, w->res[i], RS_REJECTED);
			}
		}
	}
	if (w->activities[activity].available) {
		w->route_later = true;
	}
	return 0;
}

int world_worker_set_activity(struct sim_world *w, struct sim_worker *k, int activity,
	bool reject_pending, struct sim_err *err) {
	if (activity < 0) {
		sim_err_set(err, 400, 20001, "Unknown ActivitySid");
		return -1;
	}
	return world_worker_update(w, k, NULL, activity, reject_pending, err);
}

int world_worker_set_attributes(struct sim_world *w, struct sim_worker *k, const char *attrs,
	struct sim_err *err) {
	return world_worker_update(w, k, attrs, -1, false, err);
}

int world_worker_set_channel(struct sim_world *w, struct sim_worker *k, int ch, int capacity,
	int available, struct sim_err *err) {
	struct sim_wchannel *c;

	if (ch < 0 || ch >= SIM_N_CHANNELS) {
		sim_err_set(err, 400, 20001, "Unknown channel");
		return -1;
	}
	if (capacity != -1 && (capacity < 0 || capacity > 50)) {
		sim_err_set(err, 400, 20001, "Capacity must be between 0 and 50");
		return -1;
	}
	c = &k->ch[ch];
	if (capacity != -1) {
		c->capacity = capacity;
		c->version++;
		c->updated = world_now();
		k->version++;
		ev_wchannel(w, k, ch, "worker.capacity.update");
	}
	if (available != -1) {
		c->available = available != 0;
		c->version++;
		c->updated = world_now();
		k->version++;
		ev_wchannel(w, k, ch, "worker.channel.availability.update");
	}
	w->route_later = true;
	return 0;
}

static void on_offline_timer(uv_timer_t *h) {
	struct sim_world *w = h->data;
	struct sim_worker *k = (struct sim_worker *)((char *)h - offsetof(struct sim_worker,
								      offline_timer));
	struct sim_err err;

	if (k->sessions > 0 || k->activity == w->offline_activity) {
		return;
	}
	world_begin(w);
	(void)world_worker_set_activity(w, k, w->offline_activity, false, &err);
	world_flush(w);
}

void world_worker_disconnected(struct sim_world *w, struct sim_worker *k) {
	if (w->closing) {
		return;
	}
	(void)uv_timer_start(&k->offline_timer, on_offline_timer,
		(uint64_t)(w->offline_grace_ms > 0 ? w->offline_grace_ms : 0), 0);
}

/* ---- conference ---- */

static int conf_check(struct sim_world *w, struct sim_worker *by, struct sim_task *t,
	struct sim_err *err) {
	if (!is_voice(w, t) || (t->status != TS_ASSIGNED && t->status != TS_RESERVED &&
				       t->status != TS_PENDING)) {
		sim_err_set(err, 400, 20001, "Task %s has no active conference", t->sid);
		return -1;
	}
	if (!(t->conf_members & BIT(by->idx))) {
		sim_err_set(err, 400, 20001, "Worker %s is not in the conference of task %s",
			by->sid, t->sid);
		return -1;
	}
	return 0;
}

int world_conf_customer(struct sim_world *w, struct sim_worker *by, struct sim_task *t, int hold,
	struct sim_err *err) {
	if (conf_check(w, by, t, err) < 0) {
		return -1;
	}
	if (!t->customer_in) {
		sim_err_set(err, 400, 20001, "The customer is not in the conference of task %s",
			t->sid);
		return -1;
	}
	if (hold != -1) {
		t->customer_hold = hold != 0;
	}
	return 0;
}

int world_conf_hold(struct sim_world *w, struct sim_worker *by, struct sim_task *t,
	struct sim_worker *target, bool hold, struct sim_err *err) {
	if (conf_check(w, by, t, err) < 0) {
		return -1;
	}
	if (!target || !(t->conf_members & BIT(target->idx))) {
		sim_err_set(err, 400, 20001, "Worker %s is not in the conference of task %s",
			target ? target->sid : "(unknown)", t->sid);
		return -1;
	}
	if (hold) {
		t->conf_hold |= BIT(target->idx);
	} else {
		t->conf_hold &= ~BIT(target->idx);
	}
	return 0;
}

int world_conf_kick(struct sim_world *w, struct sim_worker *by, struct sim_task *t,
	struct sim_worker *target, struct sim_err *err) {
	if (conf_check(w, by, t, err) < 0) {
		return -1;
	}
	if (!target || !(t->conf_members & BIT(target->idx))) {
		sim_err_set(err, 400, 20001, "Worker %s is not in the conference of task %s",
			target ? target->sid : "(unknown)", t->sid);
		return -1;
	}
	conf_leave(t, target);
	return 0;
}
