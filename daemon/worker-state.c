/*
 * worker-state.c — the worker model (see worker-state.h).
 */
#include "worker-state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "task-json.h"

struct tr_wstate {
	struct tr_wstate_worker worker;
	bool have_worker;
	/* The version TaskRouter last gave (worker.version adds the local bumps to it); a
	 * payload older than it is not applied. -1: none yet. */
	int64_t server_version;
	char unknown_channel[64]; /* the last channel sid a frame named that the model lacks */
	struct tr_wstate_activity *acts;
	size_t n_acts;
	struct tr_wstate_channel *chans;
	size_t n_chans;
	/* the resync being fetched */
	struct tr_wstate_worker new_worker;
	bool have_new_worker, in_resync;
	struct tr_wstate_activity *new_acts;
	size_t n_new_acts;
	struct tr_wstate_channel *new_chans;
	size_t n_new_chans;
	struct tr_wstate_counters counters;
	tr_wstate_event_cb cb;
	void *userdata;
};

/* ---- reading payloads ---- */

static int dup_member(char **dst, const struct tr_json *o, const char *key) {
	const char *s = tr_json_get_string(o, key);

	*dst = s ? strdup(s) : NULL;
	return s && !*dst ? -ENOMEM : 0;
}

static int64_t int_member(const struct tr_json *o, const char *key, int64_t dflt) {
	int64_t v;

	return tr_json_get_int(o, key, &v) == 0 ? v : dflt;
}

/* true/false, or 0/1 (channels send either). */
static bool bool_member(const struct tr_json *o, const char *key) {
	bool b = false;
	int64_t v;

	if (tr_json_get_bool(o, key, &b) == 0) {
		return b;
	}
	return tr_json_get_int(o, key, &v) == 0 && v != 0;
}

static void worker_done(struct tr_wstate_worker *w) {
	free(w->sid);
	free(w->name);
	free(w->activity_sid);
	free(w->activity_name);
	free(w->account_sid);
	free(w->workspace_sid);
	free(w->attributes_json);
	memset(w, 0, sizeof(*w));
	w->version = -1;
}

/* The worker's attributes: a JSON string holding an object (or an object), as compact text. */
static int attributes_text(const struct tr_json *p, char **ret) {
	const struct tr_json *v = tr_json_get(p, "attributes");
	struct tr_json *tree = NULL;
	size_t len;
	int r;

	if (!v || v->type == TR_JSON_NULL || (v->type == TR_JSON_STRING && v->u.str.len == 0)) {
		*ret = strdup("{}");
		return *ret ? 0 : -ENOMEM;
	}
	if (v->type == TR_JSON_OBJECT) {
		return tr_json_dump(v, ret, &len) < 0 ? -ENOMEM : 0;
	}
	if (v->type != TR_JSON_STRING) {
		return -EBADMSG;
	}
	r = tr_json_parse(v->u.str.s, v->u.str.len, &tree, NULL);
	if (r < 0) {
		return r == -ENOMEM ? -ENOMEM : -EBADMSG;
	}
	r = tree->type == TR_JSON_OBJECT ? (tr_json_dump(tree, ret, &len) < 0 ? -ENOMEM : 0) :
					   -EBADMSG;
	tr_json_free(tree);
	return r;
}

/* A Worker payload (reservation-worker.md §7.2, the 12 members) into *w (zeroed): the sid is
 * needed, the rest is taken as it comes (a member that is absent reads as empty). */
static int worker_read(const struct tr_json *p, struct tr_wstate_worker *w) {
	int r = 0;

	worker_done(w);
	if (!tr_json_is(p, TR_JSON_OBJECT) || !tr_json_get_string(p, "sid")) {
		return -EBADMSG;
	}
	r = attributes_text(p, &w->attributes_json);
	if (r < 0) {
		return r;
	}
	r |= dup_member(&w->sid, p, "sid");
	r |= dup_member(&w->name, p, "friendly_name");
	r |= dup_member(&w->activity_sid, p, "activity_sid");
	r |= dup_member(&w->activity_name, p, "activity_name");
	r |= dup_member(&w->account_sid, p, "account_sid");
	r |= dup_member(&w->workspace_sid, p, "workspace_sid");
	if (r) {
		worker_done(w);
		return -ENOMEM;
	}
	w->available = bool_member(p, "available");
	w->version = int_member(p, "version", -1);
	w->date_created = int_member(p, "date_created", 0);
	w->date_updated = int_member(p, "date_updated", 0);
	w->date_status_changed = int_member(p, "date_status_changed", 0);
	return 0;
}

static void activity_done(struct tr_wstate_activity *a) {
	free(a->sid);
	free(a->name);
}

static int activity_read(const struct tr_json *p, struct tr_wstate_activity *a) {
	int r = 0;

	memset(a, 0, sizeof(*a));
	if (!tr_json_get_string(p, "sid") || !tr_json_get_string(p, "friendly_name")) {
		return -EBADMSG;
	}
	r |= dup_member(&a->sid, p, "sid");
	r |= dup_member(&a->name, p, "friendly_name");
	if (r) {
		activity_done(a);
		return -ENOMEM;
	}
	a->available = bool_member(p, "available");
	a->date_created = int_member(p, "date_created", 0);
	a->date_updated = int_member(p, "date_updated", 0);
	return 0;
}

static void channel_done(struct tr_wstate_channel *c) {
	free(c->sid);
	free(c->task_channel_sid);
	free(c->task_channel_unique_name);
}

/* The live members of a worker channel (what its frames change). */
static void channel_live(struct tr_wstate_channel *c, const struct tr_json *p) {
	const struct tr_json *lr = tr_json_get(p, "last_reserved_time");

	c->capacity = int_member(p, "configured_capacity", c->capacity);
	c->available = bool_member(p, "available");
	c->assigned_tasks = int_member(p, "assigned_tasks", c->assigned_tasks);
	c->available_capacity_percentage = int_member(p, "available_capacity_percentage",
		c->available_capacity_percentage);
	c->date_updated = int_member(p, "date_updated", c->date_updated);
	if (lr && lr->type == TR_JSON_NULL) {
		c->last_reserved_time = -1;
	} else {
		c->last_reserved_time = int_member(p, "last_reserved_time", c->last_reserved_time);
	}
}

static int channel_read(const struct tr_json *p, struct tr_wstate_channel *c) {
	int r = 0;

	memset(c, 0, sizeof(*c));
	c->last_reserved_time = -1;
	if (!tr_json_get_string(p, "sid")) {
		return -EBADMSG;
	}
	r |= dup_member(&c->sid, p, "sid");
	r |= dup_member(&c->task_channel_sid, p, "task_channel_sid");
	r |= dup_member(&c->task_channel_unique_name, p, "task_channel_unique_name");
	if (r) {
		channel_done(c);
		return -ENOMEM;
	}
	c->date_created = int_member(p, "date_created", 0);
	channel_live(c, p);
	return 0;
}

static void acts_free(struct tr_wstate_activity **a, size_t *n) {
	for (size_t i = 0; i < *n; i++) {
		activity_done(&(*a)[i]);
	}
	free(*a);
	*a = NULL;
	*n = 0;
}

static void chans_free(struct tr_wstate_channel **c, size_t *n) {
	for (size_t i = 0; i < *n; i++) {
		channel_done(&(*c)[i]);
	}
	free(*c);
	*c = NULL;
	*n = 0;
}

/* ---- the object ---- */

struct tr_wstate *tr_wstate_new(tr_wstate_event_cb cb, void *userdata) {
	struct tr_wstate *ws = calloc(1, sizeof(*ws));

	if (!ws) {
		return NULL;
	}
	ws->worker.version = -1;
	ws->new_worker.version = -1;
	ws->server_version = -1;
	ws->cb = cb;
	ws->userdata = userdata;
	return ws;
}

static void staged_clear(struct tr_wstate *ws) {
	worker_done(&ws->new_worker);
	ws->have_new_worker = false;
	acts_free(&ws->new_acts, &ws->n_new_acts);
	chans_free(&ws->new_chans, &ws->n_new_chans);
}

struct tr_wstate *tr_wstate_free(struct tr_wstate *ws) {
	if (!ws) {
		return NULL;
	}
	staged_clear(ws);
	worker_done(&ws->worker);
	acts_free(&ws->acts, &ws->n_acts);
	chans_free(&ws->chans, &ws->n_chans);
	free(ws);
	return NULL;
}

static void emit(struct tr_wstate *ws, const char *name, const char *type, unsigned flags,
	const struct tr_wstate_channel *ch) {
	struct tr_wstate_event ev = { .name = name, .event_type = type, .flags = flags,
		.channel = ch };

	if (ws->cb) {
		ws->cb(ws->userdata, ws, &ev);
	}
}

/* ---- resync ---- */

void tr_wstate_resync_begin(struct tr_wstate *ws) {
	staged_clear(ws);
	ws->in_resync = true;
}

int tr_wstate_resync_worker(struct tr_wstate *ws, const struct tr_json *worker) {
	int r;

	if (!ws->in_resync) {
		return -EINVAL;
	}
	r = worker_read(worker, &ws->new_worker);
	if (r == -EBADMSG) {
		ws->counters.malformed++;
	}
	ws->have_new_worker = r == 0;
	return r;
}

/* Append *item (size sz) to the array *arr of *n items; takes the item's contents. */
static int append(void **arr, size_t *n, const void *item, size_t sz) {
	char *p = realloc(*arr, (*n + 1) * sz);

	if (!p) {
		return -ENOMEM;
	}
	memcpy(p + *n * sz, item, sz);
	*arr = p;
	(*n)++;
	return 0;
}

int tr_wstate_resync_activity(struct tr_wstate *ws, const struct tr_json *activity) {
	struct tr_wstate_activity a;
	int r;

	if (!ws->in_resync) {
		return -EINVAL;
	}
	r = activity_read(activity, &a);
	if (r == -EBADMSG) {
		ws->counters.malformed++;
	}
	if (r == 0 && (r = append((void **)&ws->new_acts, &ws->n_new_acts, &a, sizeof(a))) < 0) {
		activity_done(&a);
	}
	return r;
}

int tr_wstate_resync_channel(struct tr_wstate *ws, const struct tr_json *channel) {
	struct tr_wstate_channel c;
	int r;

	if (!ws->in_resync) {
		return -EINVAL;
	}
	r = channel_read(channel, &c);
	if (r == -EBADMSG) {
		ws->counters.malformed++;
	}
	if (r == 0 && (r = append((void **)&ws->new_chans, &ws->n_new_chans, &c, sizeof(c))) < 0) {
		channel_done(&c);
	}
	return r;
}

static bool str_differ(const char *a, const char *b) {
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* Is a worker payload of version v older than what TaskRouter said last? */
static bool worker_stale(const struct tr_wstate *ws, int64_t v) {
	return ws->have_worker && v >= 0 && ws->server_version >= 0 && v < ws->server_version;
}

/* Take n (its fields move) as the worker: what TaskRouter said last. */
static void worker_take(struct tr_wstate *ws, struct tr_wstate_worker *n) {
	worker_done(&ws->worker);
	ws->worker = *n;
	memset(n, 0, sizeof(*n));
	n->version = -1;
	ws->server_version = ws->worker.version;
	ws->have_worker = true;
}

int tr_wstate_resync_end(struct tr_wstate *ws, int err, bool publish) {
	bool had = ws->have_worker && publish;
	bool act_changed = false, attrs_changed = false;

	if (!ws->in_resync) {
		return -EINVAL;
	}
	ws->in_resync = false;
	if (err < 0 || !ws->have_new_worker) {
		staged_clear(ws);
		return err < 0 ? 0 : -EBADMSG;
	}
	/* A worker answer that came in while the resync ran may be newer than its GET. */
	if (publish && worker_stale(ws, ws->new_worker.version)) {
		worker_done(&ws->new_worker);
		ws->new_worker.version = -1;
	} else {
		act_changed = had &&
			str_differ(ws->worker.activity_sid, ws->new_worker.activity_sid);
		attrs_changed = had &&
			str_differ(ws->worker.attributes_json, ws->new_worker.attributes_json);
		worker_take(ws, &ws->new_worker);
	}
	ws->have_new_worker = false;
	ws->unknown_channel[0] = '\0';
	acts_free(&ws->acts, &ws->n_acts);
	ws->acts = ws->new_acts;
	ws->n_acts = ws->n_new_acts;
	ws->new_acts = NULL;
	ws->n_new_acts = 0;
	/* Channels: publish a change against the old list, then swap. */
	for (size_t i = 0; had && i < ws->n_new_chans; i++) {
		const struct tr_wstate_channel *n = &ws->new_chans[i];

		for (size_t j = 0; j < ws->n_chans; j++) {
			const struct tr_wstate_channel *o = &ws->chans[j];

			if (strcmp(o->sid, n->sid) != 0) {
				continue;
			}
			if (o->capacity != n->capacity) {
				emit(ws, "channelCapacityUpdated", "resync", TR_WSTATE_EV_RESYNC, n);
			}
			if (o->available != n->available) {
				emit(ws, "channelAvailabilityUpdated", "resync", TR_WSTATE_EV_RESYNC, n);
			}
		}
	}
	chans_free(&ws->chans, &ws->n_chans);
	ws->chans = ws->new_chans;
	ws->n_chans = ws->n_new_chans;
	ws->new_chans = NULL;
	ws->n_new_chans = 0;
	if (act_changed) {
		emit(ws, "activityUpdated", "resync", TR_WSTATE_EV_RESYNC, NULL);
	}
	if (attrs_changed) {
		emit(ws, "attributesUpdated", "resync", TR_WSTATE_EV_RESYNC, NULL);
	}
	return 0;
}

/* ---- events and answers ---- */

int tr_wstate_apply_worker(struct tr_wstate *ws, const struct tr_json *worker) {
	struct tr_wstate_worker n = { .version = -1 };
	int r = worker_read(worker, &n);

	if (r < 0) {
		if (r == -EBADMSG) {
			ws->counters.malformed++;
		}
		return r;
	}
	if (worker_stale(ws, n.version)) {
		ws->counters.stale++;
		worker_done(&n);
		return 1;
	}
	worker_take(ws, &n);
	return 0;
}

static struct tr_wstate_channel *find_channel(struct tr_wstate *ws, const char *sid) {
	for (size_t i = 0; sid && i < ws->n_chans; i++) {
		if (strcmp(ws->chans[i].sid, sid) == 0) {
			return &ws->chans[i];
		}
	}
	return NULL;
}

/* The server raised the worker's version without sending the worker (spec §4.5). */
static void bump(struct tr_wstate *ws) {
	if (ws->have_worker && ws->worker.version >= 0) {
		ws->worker.version++;
	}
}

int tr_wstate_apply(struct tr_wstate *ws, const char *event_type, const struct tr_json *payload) {
	bool activity = strcmp(event_type, "worker.activity.update") == 0;
	bool capacity = strcmp(event_type, "worker.capacity.update") == 0;

	if (strcmp(event_type, "reservation.created") == 0) {
		bump(ws);
		return 0;
	}
	if (activity || strcmp(event_type, "worker.attributes.update") == 0) {
		int r = tr_wstate_apply_worker(ws, payload);

		if (r == -ENOMEM) {
			return r;
		}
		emit(ws, activity ? "activityUpdated" : "attributesUpdated", event_type, 0, NULL);
		return r < 0 ? r : 0;
	}
	if (capacity || strcmp(event_type, "worker.channel.availability.update") == 0) {
		struct tr_wstate_channel *ch;

		const char *sid = tr_json_get_string(payload, "sid");

		bump(ws);
		if (!sid) {
			ws->counters.malformed++;
			return -EBADMSG;
		}
		ch = find_channel(ws, sid);
		if (!ch) {
			ws->counters.unknown_channel++;
			if (strcmp(ws->unknown_channel, sid) == 0) {
				return -EALREADY; /* a resync for it was asked already */
			}
			snprintf(ws->unknown_channel, sizeof(ws->unknown_channel), "%s", sid);
			return -ENOENT;
		}
		channel_live(ch, payload);
		emit(ws, capacity ? "channelCapacityUpdated" : "channelAvailabilityUpdated",
			event_type, 0, ch);
		return 0;
	}
	return 0;
}

/* ---- queries ---- */

const struct tr_wstate_worker *tr_wstate_get_worker(const struct tr_wstate *ws) {
	return ws->have_worker ? &ws->worker : NULL;
}

const struct tr_wstate_activity *tr_wstate_activities(const struct tr_wstate *ws, size_t *n) {
	*n = ws->n_acts;
	return ws->acts;
}

const struct tr_wstate_channel *tr_wstate_channels(const struct tr_wstate *ws, size_t *n) {
	*n = ws->n_chans;
	return ws->chans;
}

const struct tr_wstate_activity *tr_wstate_find_activity(const struct tr_wstate *ws,
	const char *s) {
	for (size_t i = 0; s && i < ws->n_acts; i++) {
		if (strcmp(ws->acts[i].sid, s) == 0) {
			return &ws->acts[i];
		}
	}
	for (size_t i = 0; s && i < ws->n_acts; i++) {
		if (strcmp(ws->acts[i].name, s) == 0) {
			return &ws->acts[i];
		}
	}
	return NULL;
}

const struct tr_wstate_counters *tr_wstate_get_counters(const struct tr_wstate *ws) {
	return &ws->counters;
}

/* ---- the protocol's objects ---- */

static void put_str(struct tr_json *o, const char *k, const char *v, int *e) {
	tr_json_put(o, k, v ? tr_json_new_string(v) : tr_json_new_null(), e);
}

static void put_time(struct tr_json *o, const char *k, const char *kiso, int64_t v, int *e) {
	char iso[32];

	tr_task_json_time_format(v, iso, sizeof(iso));
	tr_json_put(o, k, tr_json_new_int(v), e);
	tr_json_put(o, kiso, tr_json_new_string(iso), e);
}

struct tr_json *tr_wstate_worker_json(const struct tr_wstate *ws) {
	const struct tr_wstate_worker *w = &ws->worker;
	struct tr_json *o = tr_json_new_object(), *attrs = NULL;
	char ver[24], *text;
	int e = 0;

	if (!o || !ws->have_worker) {
		return tr_json_free(o);
	}
	snprintf(ver, sizeof(ver), "%lld", (long long)w->version); /* null when never said */
	/* our own compact dump, spliced in as it is */
	text = strdup(w->attributes_json);
	attrs = text ? tr_json_new_raw_take(text, strlen(text)) : NULL;
	put_str(o, "sid", w->sid, &e);
	put_str(o, "name", w->name, &e);
	put_str(o, "activitySid", w->activity_sid, &e);
	put_str(o, "activityName", w->activity_name, &e);
	tr_json_put(o, "available", tr_json_new_bool(w->available), &e);
	tr_json_put(o, "attributes", attrs, &e);
	put_str(o, "version", w->version >= 0 ? ver : NULL, &e);
	put_str(o, "accountSid", w->account_sid, &e);
	put_str(o, "workspaceSid", w->workspace_sid, &e);
	put_time(o, "dateCreated", "dateCreatedIso", w->date_created, &e);
	put_time(o, "dateUpdated", "dateUpdatedIso", w->date_updated, &e);
	put_time(o, "dateStatusChanged", "dateStatusChangedIso", w->date_status_changed, &e);
	return e < 0 ? tr_json_free(o) : o;
}

struct tr_json *tr_wstate_activity_json(const struct tr_wstate *ws,
	const struct tr_wstate_activity *a) {
	struct tr_json *o = tr_json_new_object();
	bool current = ws->have_worker && ws->worker.activity_sid &&
		strcmp(ws->worker.activity_sid, a->sid) == 0;
	int e = 0;

	put_str(o, "sid", a->sid, &e);
	put_str(o, "name", a->name, &e);
	tr_json_put(o, "available", tr_json_new_bool(a->available), &e);
	tr_json_put(o, "isCurrent", tr_json_new_bool(current), &e);
	put_time(o, "dateCreated", "dateCreatedIso", a->date_created, &e);
	put_time(o, "dateUpdated", "dateUpdatedIso", a->date_updated, &e);
	return e < 0 ? tr_json_free(o) : o;
}

struct tr_json *tr_wstate_channel_json(const struct tr_wstate_channel *ch) {
	struct tr_json *o = tr_json_new_object();
	int e = 0;

	put_str(o, "sid", ch->sid, &e);
	put_str(o, "taskChannelSid", ch->task_channel_sid, &e);
	put_str(o, "taskChannelUniqueName", ch->task_channel_unique_name, &e);
	tr_json_put(o, "capacity", tr_json_new_int(ch->capacity), &e);
	tr_json_put(o, "available", tr_json_new_bool(ch->available), &e);
	tr_json_put(o, "assignedTasks", tr_json_new_int(ch->assigned_tasks), &e);
	tr_json_put(o, "availableCapacityPercentage",
		tr_json_new_int(ch->available_capacity_percentage), &e);
	tr_json_put(o, "lastReservedTime", ch->last_reserved_time >= 0 ?
		tr_json_new_int(ch->last_reserved_time) : tr_json_new_null(), &e);
	put_time(o, "dateCreated", "dateCreatedIso", ch->date_created, &e);
	put_time(o, "dateUpdated", "dateUpdatedIso", ch->date_updated, &e);
	return e < 0 ? tr_json_free(o) : o;
}
