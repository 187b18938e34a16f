/*
 * subs.c — the event hub (see subs.h).
 */
#include "subs.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "frame.h"
#include "json.h"
#include "task-json.h"
#include "tr-limits.h"

const char *const tr_subs_event_names[] = {
	/* task events (cache.c) */
	"updated", "wrapup", "completed", "canceled", "vanished", "transferInitiated",
	"transferAttemptFailed", "transferCompleted", "transferFailed", "transferCanceled",
	"reservationCreated", "reservationAccepted", "reservationRejected", "reservationTimeout",
	"reservationCanceled", "reservationRescinded", "reservationCompleted", "reservationWrapup",
	/* worker events (core.c, from worker-state.c) */
	"activityUpdated", "attributesUpdated", "channelCapacityUpdated",
	"channelAvailabilityUpdated", "reservationFailed",
	/* daemon events (core.c) */
	"connected", "disconnected", "ready", "tokenWillExpire", "tokenExpired", "tokenUpdated",
	NULL,
};

/* The name of tr_subs_event_names that name is, in any letter case, or NULL. */
static const char *event_name(const char *name) {
	for (size_t i = 0; tr_subs_event_names[i]; i++) {
		if (strcasecmp(tr_subs_event_names[i], name) == 0) {
			return tr_subs_event_names[i];
		}
	}
	return NULL;
}

struct ring_entry {
	uint64_t seq; /* 0: empty */
	char *name;
	char *task_sid; /* NULL for daemon events */
	char *body;     /* the params object's text after its opening '{' */
	size_t body_len;
};

struct strset {
	char **v;
	size_t n;
	bool all;
};

struct sub {
	char id[24];
	struct strset events, tasks;
	void *owner;
	tr_subs_send_cb send;
	struct sub *next;
};

struct tr_subs {
	char epoch[TR_SUBS_EPOCH_MAX];
	char epoch_member[TR_SUBS_EPOCH_MAX + 16]; /* `","epoch":"E",` for the frames */
	size_t epoch_member_len;
	uint64_t seq;
	uint64_t oldest_kept; /* lowest seq still in the ring (0 before the first event) */
	size_t ring_bytes;    /* bytes held by the ring, bounded by TR_EVENT_RING_BYTES */
	uint64_t published;
	uint64_t refused_cap; /* subscriptions refused at TR_SUBS_PER_CONNECTION */
	uint64_t next_id;
	struct ring_entry ring[TR_EVENT_RING_SIZE];
	struct sub *subs;
	size_t n_subs;
};

static void entry_clear(struct ring_entry *e) {
	free(e->name);
	free(e->task_sid);
	free(e->body);
	memset(e, 0, sizeof(*e));
}

static void strset_done(struct strset *s) {
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i]);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* names: each string must be an event name, stored as tr_subs_event_names spells it, so that
 * matching stays a strcmp. */
static int strset_init(struct strset *s, const struct tr_json *arr, bool names) {
	memset(s, 0, sizeof(*s));
	if (!arr) {
		s->all = true;
		return 0;
	}
	if (!tr_json_is(arr, TR_JSON_ARRAY)) {
		return -EINVAL;
	}
	s->v = calloc(arr->u.arr.n ? arr->u.arr.n : 1, sizeof(char *));
	if (!s->v) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < arr->u.arr.n; i++) {
		const struct tr_json *it = arr->u.arr.items[i];

		const char *name = names && tr_json_is(it, TR_JSON_STRING) ?
			event_name(it->u.str.s) : NULL;

		if (!tr_json_is(it, TR_JSON_STRING) || (names && !name)) {
			strset_done(s);
			return -EINVAL;
		}
		s->v[i] = strdup(names ? name : it->u.str.s);
		if (!s->v[i]) {
			strset_done(s);
			return -ENOMEM;
		}
		s->n = i + 1;
	}
	return 0;
}

static bool strset_has(const struct strset *s, const char *x) {
	if (s->all) {
		return true;
	}
	if (!x) {
		return false;
	}
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->v[i], x) == 0) {
			return true;
		}
	}
	return false;
}

static bool sub_matches(const struct sub *b, const struct ring_entry *e) {
	if (!strset_has(&b->events, e->name)) {
		return false;
	}
	/* A task filter lets daemon events (no taskSid) through: they concern every task. */
	if (!b->tasks.all && e->task_sid && !strset_has(&b->tasks, e->task_sid)) {
		return false;
	}
	return true;
}

static struct sub *sub_free(struct sub *b) {
	strset_done(&b->events);
	strset_done(&b->tasks);
	free(b);
	return NULL;
}

/*
 * The epoch: the start time (seconds, hex) and 64 random bits. getrandom must not block (early
 * at boot the pool may not be ready yet, and the daemon does not wait for it): then the clocks'
 * nanoseconds, the pid and an address stand in. Unique per run is what counts, not secrecy.
 */
static void make_epoch(char *buf, size_t size) {
	struct timespec rt = { 0 }, mono = { 0 };
	uint64_t rnd = 0;

	(void)clock_gettime(CLOCK_REALTIME, &rt);
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		(void)clock_gettime(CLOCK_MONOTONIC, &mono);
		rnd = ((uint64_t)mono.tv_nsec << 32) ^ (uint64_t)mono.tv_sec ^
			((uint64_t)getpid() << 20) ^ (uint64_t)(uintptr_t)buf ^
			(uint64_t)rt.tv_nsec * UINT64_C(0x9e3779b97f4a7c15);
	}
	snprintf(buf, size, "%" PRIx64 "-%016" PRIx64, (uint64_t)rt.tv_sec, rnd);
}

struct tr_subs *tr_subs_new(void) {
	struct tr_subs *s = calloc(1, sizeof(struct tr_subs));
	int n;

	if (!s) {
		return NULL;
	}
	make_epoch(s->epoch, sizeof(s->epoch));
	n = snprintf(s->epoch_member, sizeof(s->epoch_member), "\",\"epoch\":\"%s\",", s->epoch);
	s->epoch_member_len = (size_t)n;
	return s;
}

const char *tr_subs_epoch(const struct tr_subs *s) {
	return s->epoch;
}

const char *tr_subs_gap_str(enum tr_subs_gap gap) {
	static const char *const names[_TR_SUBS_GAP_MAX] = {
		[TR_SUBS_GAP_NO_EPOCH] = "no-epoch",
		[TR_SUBS_GAP_EPOCH] = "epoch",
		[TR_SUBS_GAP_EXPIRED] = "expired",
		[TR_SUBS_GAP_FUTURE] = "future",
	};

	return gap > TR_SUBS_GAP_NONE && gap < _TR_SUBS_GAP_MAX ? names[gap] : NULL;
}

struct tr_subs *tr_subs_free(struct tr_subs *s) {
	if (!s) {
		return NULL;
	}
	for (size_t i = 0; i < TR_EVENT_RING_SIZE; i++) {
		entry_clear(&s->ring[i]);
	}
	while (s->subs) {
		struct sub *n = s->subs->next;

		sub_free(s->subs);
		s->subs = n;
	}
	free(s);
	return NULL;
}

uint64_t tr_subs_seq(const struct tr_subs *s) {
	return s->seq;
}

uint64_t tr_subs_oldest(const struct tr_subs *s) {
	return s->oldest_kept ? s->oldest_kept : 1;
}

size_t tr_subs_count(const struct tr_subs *s) {
	return s->n_subs;
}

uint64_t tr_subs_published(const struct tr_subs *s) {
	return s->published;
}

uint64_t tr_subs_refused_cap(const struct tr_subs *s) {
	return s->refused_cap;
}

/* Frame one entry for one subscriber: the head, its subscription id, the epoch, the entry's
 * text. Built with memcpy, not snprintf: this runs once per event per subscriber, and
 * snprintf was a third of the fan-out cost. */
static int build_frame(const struct tr_subs *s, const struct sub *b, const struct ring_entry *e,
	char **ret, size_t *ret_len) {
	static const char pre[] = "{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":"
				  "{\"subscription\":\"";
	const size_t pl = sizeof(pre) - 1, idl = strlen(b->id);
	size_t payload = pl + idl + s->epoch_member_len + e->body_len + 1;
	char *buf, *p;

	if (payload > UINT32_MAX) {
		return -EMSGSIZE;
	}
	buf = malloc(TR_FRAME_HEADER_SIZE + payload);
	if (!buf) {
		return -ENOMEM;
	}
	tr_frame_put_header((uint8_t *)buf, (uint32_t)payload);
	p = buf + TR_FRAME_HEADER_SIZE;
	memcpy(p, pre, pl);
	p += pl;
	memcpy(p, b->id, idl); /* ids are short ASCII made by this module */
	p += idl;
	memcpy(p, s->epoch_member, s->epoch_member_len); /* closes the id's string */
	p += s->epoch_member_len;
	memcpy(p, e->body, e->body_len);
	p[e->body_len] = '}';
	*ret = buf;
	*ret_len = TR_FRAME_HEADER_SIZE + payload;
	return 0;
}

static void deliver(struct tr_subs *s, const struct ring_entry *e) {
	struct sub *b = s->subs;

	while (b) {
		/* send may drop the owner's connection, which removes its subscriptions (b):
		 * remember the next one first. */
		struct sub *next = b->next;

		if (sub_matches(b, e)) {
			char *buf;
			size_t len;

			if (build_frame(s, b, e, &buf, &len) == 0) {
				(void)b->send(b->owner, buf, len);
			}
		}
		b = next;
	}
}

/* Takes ownership of params (an object); adds seq, stores and delivers. */
static int publish(struct tr_subs *s, const char *name, const char *task_sid,
	struct tr_json *params) {
	struct ring_entry *e;
	char *text = NULL;
	size_t len;
	int r;

	if (!params) {
		return -ENOMEM;
	}
	assert(event_name(name)); /* a new event is named in tr_subs_event_names */
	r = 0;
	if (tr_json_put(params, "seq", tr_json_new_int((int64_t)(s->seq + 1)), &r) >= 0) {
		r = tr_json_dump(params, &text, &len);
	}
	tr_json_free(params);
	if (r < 0) {
		return r;
	}
	e = &s->ring[(s->seq + 1) % TR_EVENT_RING_SIZE];
	s->ring_bytes -= e->body_len;
	entry_clear(e);
	e->name = strdup(name);
	e->task_sid = task_sid ? strdup(task_sid) : NULL;
	if (!e->name || (task_sid && !e->task_sid)) {
		free(text);
		entry_clear(e);
		return -ENOMEM;
	}
	/* Keep the text after '{': each subscriber's frame adds its own head. The ring keeps it
	 * for a while, so give back the dump buffer's slack (up to half of it). */
	memmove(text, text + 1, len);
	{
		char *fit = realloc(text, len);

		text = fit ? fit : text;
	}
	e->body = text;
	e->body_len = len - 1;
	e->seq = ++s->seq;
	s->ring_bytes += e->body_len;
	if (s->oldest_kept == 0 || s->seq - s->oldest_kept >= TR_EVENT_RING_SIZE) {
		s->oldest_kept = s->seq >= TR_EVENT_RING_SIZE ? s->seq - TR_EVENT_RING_SIZE + 1 : 1;
	}
	/* The ring is bounded in bytes too (events carry whole tasks, whose attributes can be
	 * large): drop the oldest events beyond the budget, always keeping the newest. */
	while (s->ring_bytes > TR_EVENT_RING_BYTES && s->oldest_kept < s->seq) {
		struct ring_entry *old = &s->ring[s->oldest_kept % TR_EVENT_RING_SIZE];
		if (old->seq == s->oldest_kept) {
			s->ring_bytes -= old->body_len;
			entry_clear(old);
		}
		s->oldest_kept++;
	}
	s->published++;
	deliver(s, e);
	return 0;
}

int tr_subs_publish_task(struct tr_subs *s, const struct tr_cache_event *ev) {
	struct tr_json *p = tr_json_new_object();
	char ver[32];
	int err = 0;

	if (!p) {
		return -ENOMEM;
	}
	snprintf(ver, sizeof(ver), "%" PRId64, ev->task->version);
	tr_json_put(p, "event", tr_json_new_string(ev->name), &err);
	tr_json_put(p, "taskSid", tr_json_new_string(ev->task->sid), &err);
	tr_json_put(p, "reservationSid", ev->reservation_sid ? tr_json_new_string(ev->reservation_sid) :
		tr_json_new_null(), &err);
	tr_json_put(p, "eventType", tr_json_new_string(ev->event_type ? ev->event_type : ""), &err);
	tr_json_put(p, "task", tr_task_json_task_raw(ev->task), &err);
	if (ev->reservation) {
		tr_json_put(p, "reservation",
			tr_task_json_res_raw(ev->reservation, ev->task, ev->ident, false), &err);
	}
	if (ev->transfer) {
		tr_json_put(p, "transfer", tr_task_json_transfer_raw(ev->transfer), &err);
	}
	tr_json_put(p, "version", tr_json_new_string(ver), &err);
	if (ev->flags & TR_CACHE_EV_RESYNC) {
		tr_json_put(p, "resync", tr_json_new_bool(true), &err);
	}
	if (ev->flags & TR_CACHE_EV_STALE) {
		tr_json_put(p, "stale", tr_json_new_bool(true), &err);
	}
	if (ev->flags & TR_CACHE_EV_VANISHED) {
		tr_json_put(p, "vanished", tr_json_new_bool(true), &err);
	}
	if (ev->unknown_reason) {
		/* the fetch of a vanished task failed: task is the last state known */
		tr_json_put(p, "finalState", tr_json_new_string("unknown"), &err);
		tr_json_put(p, "finalStateReason", tr_json_new_string(ev->unknown_reason), &err);
		if (ev->http_status > 0) {
			tr_json_put(p, "httpStatus", tr_json_new_int(ev->http_status), &err);
		}
	}
	if (err) {
		tr_json_free(p);
		return err;
	}
	return publish(s, ev->name, ev->task->sid, p);
}

int tr_subs_publish_daemon(struct tr_subs *s, const char *name, const struct tr_json *data) {
	struct tr_json *p = tr_json_new_object();
	int err = 0;

	if (!p) {
		return -ENOMEM;
	}
	tr_json_put(p, "event", tr_json_new_string(name), &err);
	if (tr_json_is(data, TR_JSON_OBJECT)) {
		for (size_t i = 0; i < data->u.obj.n; i++) {
			tr_json_put(p, data->u.obj.keys[i], tr_json_dup(data->u.obj.vals[i]), &err);
		}
	}
	if (err) {
		tr_json_free(p);
		return err;
	}
	return publish(s, name, NULL, p);
}

int tr_subs_add(struct tr_subs *s, const struct tr_json *events, const struct tr_json *tasks,
	void *owner, tr_subs_send_cb send, char *ret_id, size_t id_size) {
	struct sub *b, **pp;
	size_t mine = 0;
	int r;

	for (struct sub *o = s->subs; o; o = o->next) {
		mine += o->owner == owner;
	}
	if (mine >= TR_SUBS_PER_CONNECTION) {
		s->refused_cap++;
		return -EDQUOT;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		return -ENOMEM;
	}
	r = strset_init(&b->events, events, true);
	if (r >= 0) {
		r = strset_init(&b->tasks, tasks, false);
	}
	if (r < 0) {
		sub_free(b);
		return r;
	}
	snprintf(b->id, sizeof(b->id), "s%" PRIu64, ++s->next_id);
	b->owner = owner;
	b->send = send;
	for (pp = &s->subs; *pp; pp = &(*pp)->next) {
	}
	*pp = b;
	s->n_subs++;
	snprintf(ret_id, id_size, "%s", b->id);
	return 0;
}

enum tr_subs_gap tr_subs_check_since(const struct tr_subs *s, const char *epoch, uint64_t since) {
	if (!epoch) {
		return TR_SUBS_GAP_NO_EPOCH;
	}
	if (strcmp(epoch, s->epoch) != 0) {
		return TR_SUBS_GAP_EPOCH;
	}
	if (since < tr_subs_oldest(s)) {
		return TR_SUBS_GAP_EXPIRED;
	}
	if (since > s->seq + 1) {
		return TR_SUBS_GAP_FUTURE;
	}
	return TR_SUBS_GAP_NONE;
}

static struct sub *find_sub(struct tr_subs *s, const char *id) {
	for (struct sub *b = s->subs; b; b = b->next) {
		if (strcmp(b->id, id) == 0) {
			return b;
		}
	}
	return NULL;
}

int tr_subs_replay(struct tr_subs *s, const char *id, uint64_t since) {
	struct sub *b = find_sub(s, id);

	if (!b) {
		return -ENOENT;
	}
	for (uint64_t q = since; q <= s->seq; q++) {
		const struct ring_entry *e = &s->ring[q % TR_EVENT_RING_SIZE];
		char *buf;
		size_t len;
		int r;

		if (e->seq != q || !sub_matches(b, e)) {
			continue;
		}
		r = build_frame(s, b, e, &buf, &len);
		if (r < 0) {
			return r;
		}
		if (b->send(b->owner, buf, len) < 0) {
			return -EPIPE;
		}
		/* The send may have closed the connection and removed b. */
		b = find_sub(s, id);
		if (!b) {
			return -EPIPE;
		}
	}
	return 0;
}

int tr_subs_remove(struct tr_subs *s, const char *id, void *owner) {
	for (struct sub **pp = &s->subs; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id) == 0 && (*pp)->owner == owner) {
			struct sub *b = *pp;

			*pp = b->next;
			sub_free(b);
			s->n_subs--;
			return 0;
		}
	}
	return -ENOENT;
}

void tr_subs_remove_owner(struct tr_subs *s, void *owner) {
	struct sub **pp = &s->subs;

	while (*pp) {
		if ((*pp)->owner == owner) {
			struct sub *b = *pp;

			*pp = b->next;
			sub_free(b);
			s->n_subs--;
		} else {
			pp = &(*pp)->next;
		}
	}
}
