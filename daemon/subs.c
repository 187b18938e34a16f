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
#include "outq.h"
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

/* The name of tr_subs_event_names that name is, in any letter case, or NULL. The daemon's own
 * names (every publish) are found spelt as they are first. */
static const char *event_name(const char *name) {
	for (size_t i = 0; tr_subs_event_names[i]; i++) {
		if (tr_subs_event_names[i][0] == name[0] && strcmp(tr_subs_event_names[i], name) == 0) {
			return tr_subs_event_names[i];
		}
	}
	for (size_t i = 0; tr_subs_event_names[i]; i++) {
		if (strcasecmp(tr_subs_event_names[i], name) == 0) {
			return tr_subs_event_names[i];
		}
	}
	return NULL;
}

/*
 * A task event written from a task record can give its text up while the record stays as it
 * was, and write it again from the record when it is replayed: most of an event's text is its
 * Task, which the cache holds anyway. What the record does not hold is kept here.
 *
 * An entry is first a candidate: it keeps its text until tr_subs_settle, which runs when no
 * cache call is under way, writes it again and compares; only an identical text is let go
 * (settled). A change of the record later in the call that published it is caught so.
 * Before any later change, and before the record is freed, the cache calls
 * tr_subs_task_changing, which writes the settled entries' texts out again (they become
 * candidates once more: a resync that changed nothing lets them go again).
 */
struct lazy {
	const struct tr_cache_task *task;
	uint16_t res_at;        /* res_in: the reservation's index in the task's res or ended */
	uint8_t flags;          /* TR_CACHE_EV_* */
	uint8_t type_at;        /* event_type: index in event_types, or TYPE_IN_STRS */
	unsigned transfer : 2;  /* 0: none, 1: the task's incoming, 2: its outgoing transfer */
	unsigned res_in : 2;    /* the reservation object: 0 none, 1 res[res_at], 2 ended[res_at] */
	unsigned rsid : 3;      /* reservationSid: an RSID_* */
	unsigned settled : 1;   /* the text was let go (kept in check mode) */
	char *strs; /* NULL, or what is RSID_IN_STRS / TYPE_IN_STRS, NUL-terminated, in order */
};

enum { RSID_NULL, RSID_OF_RES, RSID_LIVE, RSID_LAST, RSID_IN_STRS };
#define TYPE_IN_STRS UINT8_MAX

/* The event types the cache publishes with: kept as an index. Another is copied. */
static const char *const event_types[] = {
	"", "resync", "reservation.created", "reservation.accepted", "reservation.rejected",
	"reservation.timeout", "reservation.canceled", "reservation.rescinded",
	"reservation.completed", "reservation.wrapup", "reservation.failed", "task.updated",
	"task.canceled", "task.completed", "task.wrapup", "task.deleted", "task.system-deleted",
	"task.transfer-initiated", "task.transfer-attempt-failed", "task.transfer-completed",
	"task.transfer-failed", "task.transfer-canceled",
};

struct ring_entry {
	uint64_t seq;     /* 0: empty */
	const char *name; /* tr_subs_event_names' copy */
	char *task_sid;   /* NULL for daemon events, and while lazy (the task's own) */
	char *body;       /* the params object's text after its opening '{'; NULL when settled */
	size_t body_len;  /* that text's length, also while it is not held */
	/* NULL, or &lz: the entry is written from a task record. Kept in the ring itself, not
	 * on the heap: small blocks left between the texts that are let go would hold on to
	 * every page of them. */
	struct lazy *lazy;
	struct lazy lz;
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
	uint64_t settled_upto; /* entries after it may be candidates (struct lazy) */
	bool check;            /* tr_subs_set_check */
	/* where task events are written: sent texts are copied out at their size, and the
	 * settle's and the replay's writings need no allocation at all */
	char *scratch;
	size_t scratch_cap;
	const struct tr_cache_ident *ident; /* the one ident of the lazy entries */
	struct ring_entry ring[TR_EVENT_RING_SIZE];
	struct sub *subs;
	size_t n_subs;
};

static const char *entry_task_sid(const struct ring_entry *e) {
	return e->lazy ? e->lazy->task->sid : e->task_sid;
}

static void lazy_drop(struct ring_entry *e) {
	if (e->lazy) {
		tr_cache_task_hold(e->lazy->task, -1);
		free(e->lazy->strs);
		memset(&e->lz, 0, sizeof(e->lz));
		e->lazy = NULL;
	}
}

static void entry_clear(struct ring_entry *e) {
	lazy_drop(e);
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
	if (!b->tasks.all && entry_task_sid(e) && !strset_has(&b->tasks, entry_task_sid(e))) {
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
	free(s->scratch);
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

/* The head of one subscriber's frame: the frame header, for a payload tail_len bytes longer
 * than the head, then the message's start, the subscription id and the epoch; extra bytes
 * more are allocated after it. Built with memcpy, not snprintf: this runs once per event per
 * subscriber, and snprintf was a third of the fan-out cost. */
static int frame_head(const struct tr_subs *s, const struct sub *b, size_t tail_len,
	size_t extra, char **ret, size_t *ret_len) {
	static const char pre[] = "{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":"
				  "{\"subscription\":\"";
	const size_t pl = sizeof(pre) - 1, idl = strlen(b->id);
	size_t head = pl + idl + s->epoch_member_len, payload = head + tail_len;
	char *buf, *p;

	if (tail_len > UINT32_MAX || payload > UINT32_MAX) {
		return -EMSGSIZE;
	}
	buf = malloc(TR_FRAME_HEADER_SIZE + head + extra);
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
	*ret = buf;
	*ret_len = TR_FRAME_HEADER_SIZE + head;
	return 0;
}

/* One entry's whole frame for one subscriber, in one buffer (a replay). */
static int build_frame(const struct tr_subs *s, const struct sub *b, const char *body,
	size_t body_len, char **ret, size_t *ret_len) {
	int r = frame_head(s, b, body_len + 1, body_len + 1, ret, ret_len);

	if (r == 0) {
		memcpy(*ret + *ret_len, body, body_len);
		(*ret)[*ret_len + body_len] = '}';
		*ret_len += body_len + 1;
	}
	return r;
}

/* A new entry to every subscriber it matches: each gets a head of its own, and all of them
 * the one copy of the entry's text and the closing brace (outq.h), instead of a copy of the
 * whole frame each. */
static void deliver(struct tr_subs *s, const struct ring_entry *e) {
	struct tr_outq_shared *tail = NULL;
	struct sub *b = s->subs;

	while (b) {
		/* send may drop the owner's connection, which removes its subscriptions (b):
		 * remember the next one first. */
		struct sub *next = b->next;

		if (sub_matches(b, e)) {
			char *head;
			size_t len;

			if (!tail) {
				tail = tr_outq_shared_new(e->body_len + 1);
				if (!tail) {
					return; /* out of memory: its since still replays it */
				}
				memcpy(tail->data, e->body, e->body_len);
				tail->data[e->body_len] = '}';
			}
			if (frame_head(s, b, tail->len, 0, &head, &len) == 0) {
				(void)b->send(b->owner, head, len, tail);
			}
		}
		b = next;
	}
	tr_outq_shared_unref(tail);
}

/* The text of an event's params (an object, taken) with seq added, after its opening '{'
 * (each subscriber's frame adds its own head), fitted to size: the ring keeps it a while. */
static int event_text(struct tr_json *params, uint64_t seq, char **ret, size_t *ret_len) {
	char *text = NULL, *fit;
	size_t len;
	int r = 0;

	if (!params) {
		return -ENOMEM;
	}
	if (tr_json_put(params, "seq", tr_json_new_int((int64_t)seq), &r) >= 0) {
		r = tr_json_dump(params, &text, &len);
	}
	tr_json_free(params);
	if (r < 0) {
		return r;
	}
	memmove(text, text + 1, len);
	fit = realloc(text, len);
	*ret = fit ? fit : text;
	*ret_len = len - 1;
	return 0;
}

/* Stores text (taken; seq s->seq + 1) with lazy (taken, may be NULL) and delivers it. */
static int publish(struct tr_subs *s, const char *name, const char *task_sid, char *text,
	size_t len, const struct lazy *lazy) {
	struct ring_entry *e;

	e = &s->ring[(s->seq + 1) % TR_EVENT_RING_SIZE];
	s->ring_bytes -= e->body_len;
	entry_clear(e);
	e->name = event_name(name);
	assert(e->name); /* a new event is named in tr_subs_event_names */
	e->task_sid = task_sid && !lazy ? strdup(task_sid) : NULL;
	if (task_sid && !lazy && !e->task_sid) {
		free(text);
		return -ENOMEM;
	}
	e->body = text;
	e->body_len = len;
	if (lazy) {
		e->lz = *lazy;
		e->lazy = &e->lz;
		tr_cache_task_hold(lazy->task, +1);
	}
	e->seq = ++s->seq;
	s->ring_bytes += e->body_len;
	if (s->oldest_kept == 0 || s->seq - s->oldest_kept >= TR_EVENT_RING_SIZE) {
		s->oldest_kept = s->seq >= TR_EVENT_RING_SIZE ? s->seq - TR_EVENT_RING_SIZE + 1 : 1;
	}
	/* The ring is bounded in bytes too (events carry whole tasks, whose attributes can be
	 * large): drop the oldest events beyond the budget, always keeping the newest. A settled
	 * entry counts the text it would have. */
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

/* Append "key": and a string (NULL: null) to the buffer. */
static int put_str(const char *key, const char *v, char **buf, size_t *len, size_t *cap) {
	if (tr_json_text_append(key, strlen(key), buf, len, cap) < 0) {
		return -ENOMEM;
	}
	return v ? tr_json_quote_append(v, strlen(v), buf, len, cap) :
		   tr_json_text_append("null", 4, buf, len, cap);
}

static int put_int(const char *key, int64_t v, char **buf, size_t *len, size_t *cap) {
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	if (tr_json_text_append(key, strlen(key), buf, len, cap) < 0) {
		return -ENOMEM;
	}
	return tr_json_text_append(num, (size_t)n, buf, len, cap);
}

/*
 * The text of a task event's params with seq, after the object's opening '{' (each
 * subscriber's frame adds its own head), fitted to size: the ring keeps it a while. Written
 * straight into one buffer, the Task and Reservation objects included: this runs once per
 * event to send it and once more before the ring lets the text go (tr_subs_settle), and a
 * tree of the params cost a dozen allocations and a copy of the Task each time. The members
 * and their order are those of doc/PROTOCOL.md's event.
 */
static int task_event_text(struct tr_subs *s, const struct tr_cache_event *ev, uint64_t seq,
	const char **ret, size_t *ret_len) {
	const struct tr_cache_task *t = ev->task;
	char **buf = &s->scratch, ver[24];
	size_t *cap = &s->scratch_cap, len = 0, want = t->attributes_len + t->addons_len + 2048;
	int r;

	if (*cap < want) {
		char *n = realloc(*buf, want);

		if (!n) {
			return -ENOMEM;
		}
		*buf = n;
		*cap = want;
	}
	(*buf)[0] = '\0';
	snprintf(ver, sizeof(ver), "%" PRId64, t->version);
	r = put_str("\"event\":", ev->name, buf, &len, cap);
	r |= put_str(",\"taskSid\":", t->sid, buf, &len, cap);
	r |= put_str(",\"reservationSid\":", ev->reservation_sid, buf, &len, cap);
	r |= put_str(",\"eventType\":", ev->event_type ? ev->event_type : "", buf, &len, cap);
	r |= tr_json_text_append(",\"task\":", 8, buf, &len, cap);
	r |= tr_task_json_task_text(t, buf, &len, cap);
	if (ev->reservation) {
		r |= tr_json_text_append(",\"reservation\":", 15, buf, &len, cap);
		r |= tr_task_json_res_text(ev->reservation, t, ev->ident, false, buf, &len, cap);
	}
	if (ev->transfer) {
		r |= tr_json_text_append(",\"transfer\":", 12, buf, &len, cap);
		r |= tr_task_json_transfer_text(ev->transfer, buf, &len, cap);
	}
	r |= put_str(",\"version\":", ver, buf, &len, cap);
	if (ev->flags & TR_CACHE_EV_RESYNC) {
		r |= tr_json_text_append(",\"resync\":true", 14, buf, &len, cap);
	}
	if (ev->flags & TR_CACHE_EV_STALE) {
		r |= tr_json_text_append(",\"stale\":true", 13, buf, &len, cap);
	}
	if (ev->flags & TR_CACHE_EV_VANISHED) {
		r |= tr_json_text_append(",\"vanished\":true", 16, buf, &len, cap);
	}
	if (ev->unknown_reason) {
		/* the fetch of a vanished task failed: task is the last state known */
		r |= put_str(",\"finalState\":", "unknown", buf, &len, cap);
		r |= put_str(",\"finalStateReason\":", ev->unknown_reason, buf, &len, cap);
		if (ev->http_status > 0) {
			r |= put_int(",\"httpStatus\":", ev->http_status, buf, &len, cap);
		}
	}
	r |= put_int(",\"seq\":", (int64_t)seq, buf, &len, cap);
	r |= tr_json_text_append("}", 1, buf, &len, cap);
	if (r < 0) {
		return -ENOMEM;
	}
	*ret = *buf;
	*ret_len = len;
	return 0;
}

/* After a task event was written: a scratch buffer grown for a large task is given back. */
static void scratch_trim(struct tr_subs *s) {
	if (s->scratch_cap > 16 * 1024) {
		free(s->scratch);
		s->scratch = NULL;
		s->scratch_cap = 0;
	}
}

/* A copy of text, at its size. */
static char *text_dup(const char *text, size_t len) {
	char *c = malloc(len + 1);

	if (c) {
		memcpy(c, text, len);
		c[len] = '\0';
	}
	return c;
}

/* Where reservation r is in t: 1 res[*at], 2 ended[*at], 0 neither (it is written again
 * from there, by index). */
static int res_where(const struct tr_cache_task *t, const struct tr_cache_res *r, uint16_t *at) {
	if (r >= t->res && r < t->res + t->n_res && t->n_res <= UINT16_MAX) {
		*at = (uint16_t)(r - t->res);
		return 1;
	}
	if (r >= t->ended && r < t->ended + t->n_ended && t->n_ended <= UINT16_MAX) {
		*at = (uint16_t)(r - t->ended);
		return 2;
	}
	return 0;
}

/* What ev's text is written from beside its task, into *ret, when all of it is the task's or
 * can be kept there; false (the text is kept as text) otherwise, or on ENOMEM. */
static bool lazy_new(struct tr_subs *s, const struct tr_cache_event *ev, struct lazy *ret) {
	const struct tr_cache_task *t = ev->task;
	struct lazy z = { .task = t, .flags = (uint8_t)ev->flags, .type_at = TYPE_IN_STRS };
	const char *rsid = ev->reservation_sid, *type = ev->event_type ? ev->event_type : "";
	size_t rl = 0, tl = 0;

	if (ev->unknown_reason || ev->http_status || ev->flags > UINT8_MAX ||
		(s->ident && ev->ident != s->ident) ||
		(ev->transfer && ev->transfer != t->incoming && ev->transfer != t->outgoing)) {
		return false;
	}
	z.transfer = !ev->transfer ? 0 : ev->transfer == t->incoming ? 1 : 2;
	if (ev->reservation) {
		z.res_in = res_where(t, ev->reservation, &z.res_at);
		if (!z.res_in) {
			return false;
		}
	}
	/* reservationSid: the reservation's own, a live one's (by index), the last one's, or a
	 * copy */
	if (!rsid) {
		z.rsid = RSID_NULL;
	} else if (ev->reservation) {
		z.rsid = rsid == ev->reservation->sid ? RSID_OF_RES : RSID_IN_STRS;
	} else {
		z.rsid = RSID_IN_STRS;
		for (size_t i = 0; i < t->n_res && i <= UINT16_MAX; i++) {
			if (strcmp(t->res[i].sid, rsid) == 0) {
				z.rsid = RSID_LIVE;
				z.res_at = (uint16_t)i;
				break;
			}
		}
	}
	if (z.rsid == RSID_IN_STRS && t->last_res_sid && strcmp(rsid, t->last_res_sid) == 0) {
		z.rsid = RSID_LAST;
	}
	if (z.rsid == RSID_IN_STRS) {
		rl = strlen(rsid) + 1;
	}
	for (size_t i = 0; i < sizeof(event_types) / sizeof(event_types[0]); i++) {
		if (strcmp(event_types[i], type) == 0) {
			z.type_at = (uint8_t)i;
			break;
		}
	}
	if (z.type_at == TYPE_IN_STRS) {
		tl = strlen(type) + 1;
	}
	if (rl + tl) {
		z.strs = malloc(rl + tl);
		if (!z.strs) {
			return false;
		}
		memcpy(z.strs, rsid ? rsid : "", rl);
		memcpy(z.strs + rl, type, tl);
	}
	s->ident = ev->ident;
	*ret = z;
	return true;
}

/* Write entry e's text again from its task record. */
static int lazy_text(struct tr_subs *s, const struct ring_entry *e, const char **ret,
	size_t *ret_len) {
	const struct lazy *z = e->lazy;
	const struct tr_cache_task *t = z->task;
	const char *strs = z->strs;
	struct tr_cache_event ev = {
		.name = e->name,
		.task = t,
		.ident = s->ident,
		.transfer = z->transfer == 1 ? t->incoming : z->transfer == 2 ? t->outgoing : NULL,
		.flags = z->flags,
	};

	/* A record changed without a touch is a bug of the cache: refused, never read amiss. */
	if (z->res_in == 1 && z->res_at < t->n_res) {
		ev.reservation = &t->res[z->res_at];
	} else if (z->res_in == 2 && z->res_at < t->n_ended) {
		ev.reservation = &t->ended[z->res_at];
	} else if (z->res_in) {
		return -ESTALE;
	}
	switch (z->rsid) {
	case RSID_NULL:
		break;
	case RSID_OF_RES:
		ev.reservation_sid = ev.reservation->sid;
		break;
	case RSID_LIVE:
		if (z->res_at >= t->n_res) {
			return -ESTALE;
		}
		ev.reservation_sid = t->res[z->res_at].sid;
		break;
	case RSID_LAST:
		ev.reservation_sid = t->last_res_sid;
		break;
	default:
		ev.reservation_sid = strs;
		strs += strlen(strs) + 1;
		break;
	}
	if ((z->transfer && !ev.transfer) || (z->rsid != RSID_NULL && !ev.reservation_sid)) {
		return -ESTALE;
	}
	ev.event_type = z->type_at == TYPE_IN_STRS ? strs : event_types[z->type_at];
	return task_event_text(s, &ev, e->seq, ret, ret_len);
}

/* e stops being written from its record but stays in the ring: it takes the task's sid. */
static int lazy_release(struct ring_entry *e) {
	char *sid = strdup(e->lazy->task->sid);

	if (!sid) {
		return -ENOMEM;
	}
	lazy_drop(e);
	e->task_sid = sid;
	return 0;
}

/* Is text the one entry e was sent with (its body)? */
static bool same_text(const struct ring_entry *e, const char *text, size_t len) {
	return len == e->body_len && memcmp(text, e->body, len) == 0;
}

/* Check mode: a settled entry's text, written again, must be the one it was sent with. */
static void check_same(const struct ring_entry *e, const char *text, size_t len) {
	if (!same_text(e, text, len)) {
		fprintf(stderr, "taskrouterd: replay check: event %" PRIu64 " (%s of %s) is written "
			"differently from its record than it was sent:\nsent: %.*s\nnow:  %.*s\n",
			e->seq, e->name, entry_task_sid(e), (int)e->body_len, e->body, (int)len, text);
		abort();
	}
}

/* Forget every event up to seq: the ring cannot give them as they were (ENOMEM while writing
 * one out). A `since` before seq + 1 is then "expired", so a client resyncs, losing nothing. */
static void forget_upto(struct tr_subs *s, uint64_t seq) {
	while (s->oldest_kept && s->oldest_kept <= seq) {
		struct ring_entry *old = &s->ring[s->oldest_kept % TR_EVENT_RING_SIZE];

		if (old->seq == s->oldest_kept) {
			s->ring_bytes -= old->body_len;
			entry_clear(old);
		}
		s->oldest_kept++;
	}
}

void tr_subs_settle(struct tr_subs *s) {
	for (uint64_t q = s->settled_upto + 1; q <= s->seq; q++) {
		struct ring_entry *e = &s->ring[q % TR_EVENT_RING_SIZE];
		const char *text;
		size_t len;

		if (e->seq != q || !e->lazy || e->lazy->settled) {
			continue;
		}
		if (lazy_text(s, e, &text, &len) == 0 && same_text(e, text, len)) {
			e->lazy->settled = true;
			if (!s->check) {
				free(e->body);
				e->body = NULL;
			}
			continue;
		}
		/* the record changed after the event, in the call that published it: kept as text */
		if (lazy_release(e) < 0) {
			forget_upto(s, q);
		}
	}
	s->settled_upto = s->seq;
	scratch_trim(s);
}

void tr_subs_task_changing(struct tr_subs *s, const struct tr_cache_task *t, bool freeing) {
	unsigned seen = 0;

	for (uint64_t q = s->seq; q >= tr_subs_oldest(s) && q > 0 && seen < t->subs_holds; q--) {
		struct ring_entry *e = &s->ring[q % TR_EVENT_RING_SIZE];

		if (e->seq != q || !e->lazy || e->lazy->task != t) {
			continue;
		}
		if (e->lazy->settled) {
			const char *text;
			char *copy;
			size_t len;

			if (lazy_text(s, e, &text, &len) < 0 || !(copy = text_dup(text, len))) {
				forget_upto(s, q);
				return;
			}
			if (s->check) {
				check_same(e, text, len);
				free(e->body);
			}
			e->body = copy;
			e->lazy->settled = false;
			if (q <= s->settled_upto) {
				s->settled_upto = q - 1; /* settle looks at it again */
			}
		}
		if (!freeing) {
			seen++;
		} else if (lazy_release(e) < 0) {
			forget_upto(s, q);
			return;
		}
	}
}

void tr_subs_ring_stats(const struct tr_subs *s, struct tr_subs_ring_stats *st) {
	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < TR_EVENT_RING_SIZE; i++) {
		const struct ring_entry *e = &s->ring[i];

		if (!e->seq) {
			continue;
		}
		st->events++;
		st->text_bytes += e->body ? e->body_len : 0;
		st->from_records += e->lazy && e->lazy->settled;
	}
}

void tr_subs_set_check(struct tr_subs *s, bool check) {
	s->check = check;
}

int tr_subs_publish_task(struct tr_subs *s, const struct tr_cache_event *ev) {
	const char *text;
	char *copy;
	size_t len;
	struct lazy z;
	int r = task_event_text(s, ev, s->seq + 1, &text, &len);

	copy = r < 0 ? NULL : text_dup(text, len);
	scratch_trim(s);
	if (!copy) {
		return -ENOMEM;
	}
	return publish(s, ev->name, ev->task->sid, copy, len, lazy_new(s, ev, &z) ? &z : NULL);
}

int tr_subs_publish_daemon(struct tr_subs *s, const char *name, const struct tr_json *data) {
	struct tr_json *p = tr_json_new_object();
	char *text;
	size_t len;
	int err = 0, r;

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
	r = event_text(p, s->seq + 1, &text, &len);
	return r < 0 ? r : publish(s, name, NULL, text, len, NULL);
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
		const char *text;
		char *buf;
		size_t len, text_len;
		int r;

		if (e->seq != q || !sub_matches(b, e)) {
			continue;
		}
		if (e->lazy && e->lazy->settled) {
			r = lazy_text(s, e, &text, &text_len);
			if (r < 0) {
				return r == -ESTALE ? -EIO : r;
			}
			if (s->check) {
				check_same(e, text, text_len);
			}
			r = build_frame(s, b, text, text_len, &buf, &len);
			scratch_trim(s);
		} else {
			r = build_frame(s, b, e->body, e->body_len, &buf, &len);
		}
		if (r < 0) {
			return r;
		}
		if (b->send(b->owner, buf, len, NULL) < 0) {
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
