/*
 * cache-resync.c — the cache's resync (the active reservations fetched after each init,
 * reconciled with what the cache held) and its vanished tasks (see cache.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache-internal.h"
#include "json.h"
#include "task-res.h"
#include "task-wire.h"

/* ---- resync ---- */

void tr_cache_resync_begin(struct tr_cache *c) {
	tr_cache_staged_clear(c);
	c->in_resync = true;
}

int tr_cache_resync_add(struct tr_cache *c, const struct tr_json *reservation) {
	struct staged st = { NULL, 0 };

	if (!c->in_resync) {
		return -EINVAL;
	}
	if (!tr_json_get_string(reservation, "sid") ||
		!tr_json_get_string(tr_json_get(reservation, "task"), "sid")) {
		c->counters.malformed++;
		return -EBADMSG;
	}
	if (c->n_staged == c->cap_staged) {
		size_t cap = c->cap_staged ? c->cap_staged * 2 : 8;
		struct staged *n = realloc(c->staged, cap * sizeof(*n));

		if (!n) {
			return -ENOMEM;
		}
		c->staged = n;
		c->cap_staged = cap;
	}
	if (tr_task_wire_keep(reservation, &st.text, &st.len) < 0) {
		return -ENOMEM;
	}
	c->staged[c->n_staged++] = st;
	return 0;
}

/* What a task the cache knew was before the resync: kept aside while it runs only, so that
 * the records do not carry it. */
struct tr_cache_resync_mark {
	struct tr_cache_res *old; /* the live reservations before it (to tell what changed) */
	size_t n_old;
	int64_t version;
	char status[16];
};

static void resync_emit_changes(struct tr_cache *c, struct tr_cache_task *t) {
	const char *name = NULL;
	unsigned flags = TR_CACHE_EV_RESYNC;

	if (strcmp(t->resync->status, t->status) != 0) {
		if (strcmp(t->status, "wrapping") == 0) {
			name = "wrapup";
		} else if (strcmp(t->status, "completed") == 0) {
			name = "completed";
		} else if (strcmp(t->status, "canceled") == 0) {
			name = "canceled";
		} else {
			name = "updated";
		}
	} else if (t->resync->version != t->version) {
		name = "updated";
	}
	if (name) {
		if (strcmp(name, "completed") == 0 || strcmp(name, "canceled") == 0) {
			t->final_sent = true;
		}
		tr_cache_emit(c, name, t, tr_cache_task_reservation(t), NULL, flags, "resync");
	}
}

/* The reservations of a task the cache knew that are new, or moved to accepted or wrapping,
 * since before the resync: what the events would have said. */
static void resync_emit_res_changes(struct tr_cache *c, struct tr_cache_task *t) {
	for (size_t i = 0; i < t->n_res; i++) {
		const struct tr_cache_res *r = &t->res[i], *old = NULL;
		const char *name = NULL;

		for (size_t j = 0; j < t->resync->n_old && !old; j++) {
			old = strcmp(t->resync->old[j].sid, r->sid) == 0 ? &t->resync->old[j] : NULL;
		}
		if (!old) {
			name = "reservationCreated";
		} else if (strcmp(old->status, r->status) != 0) {
			name = strcmp(r->status, "accepted") == 0 ? "reservationAccepted" :
				strcmp(r->status, "wrapping") == 0 ? "reservationWrapup" : NULL;
		}
		if (name) {
			tr_cache_emit_full(c, name, t, NULL, r, NULL, TR_CACHE_EV_RESYNC, "resync");
		}
	}
}

/* The reservations of a task the resync still shows that it no longer lists: they ended
 * while the daemon was away. Kept as ended, gone, until their fetch says how. */
static void resync_keep_gone(struct tr_cache *c, struct tr_cache_task *t) {
	for (size_t j = 0; j < t->resync->n_old; j++) {
		struct tr_cache_res *old = &t->resync->old[j], *kept;

		if (!old->sid || tr_task_res_find(t, old->sid)) {
			continue;
		}
		kept = tr_task_res_keep_ended(t, old);
		if (kept) {
			kept->gone = true;
			kept->fetching = false;
			c->n_gone_due++;
		}
	}
}

int tr_cache_resync_end(struct tr_cache *c, int err, uint64_t now_ms) {
	struct tr_cache_resync_mark *marks = NULL;
	size_t n_tasks = 0, i_task = 0;
	int ret = 0;

	if (!c->in_resync) {
		return -EINVAL;
	}
	c->in_resync = false;
	if (err < 0) {
		tr_cache_staged_clear(c);
		return 0;
	}
	for (const struct tr_cache_task *t = c->tasks; t; t = t->next) {
		n_tasks++;
	}
	if (n_tasks && !(marks = calloc(n_tasks, sizeof(*marks)))) {
		tr_cache_staged_clear(c);
		return -ENOMEM;
	}
	for (struct tr_cache_task *t = c->tasks; t; t = t->next) {
		t->seen = false;
		t->resync_new = t->closed;
		t->resync = &marks[i_task++];
		t->resync->version = t->version;
		snprintf(t->resync->status, sizeof(t->resync->status), "%s", t->status);
	}
	for (size_t i = 0; i < c->n_staged; i++) {
		struct tr_json *rp = NULL;
		const struct tr_json *tp;
		const char *rstatus;
		struct tr_cache_task *t;
		int r;

		/* Our own dump of a tree that parsed: only ENOMEM can fail here. */
		r = tr_json_parse(c->staged[i].text, c->staged[i].len, &rp, NULL);
		free(c->staged[i].text);
		c->staged[i].text = NULL;
		if (r < 0) {
			ret = -ENOMEM;
			continue;
		}
		tp = tr_json_get(rp, "task");
		rstatus = tr_json_get_string(rp, "reservation_status");
		if (rstatus && !tr_task_res_live(rstatus)) {
			tr_json_free(rp);
			continue;
		}
		t = tr_cache_find_task(c, tr_json_get_string(tp, "sid"));
		if (!t) {
			t = tr_cache_task_new(c);
			if (!t) {
				tr_json_free(rp);
				ret = -ENOMEM;
				break;
			}
			r = tr_cache_task_apply(c, t, tp);
			if (r < 0) {
				tr_cache_task_unlink(c, t);
				tr_json_free(rp);
				ret = r;
				continue;
			}
			t->resync_new = true;
		} else {
			(void)tr_cache_task_apply(c, t, tp);
		}
		if (!t->seen) {
			t->seen = true;
			tr_cache_vanish_clear(c, t);
			/* kept aside to tell which reservations are new or changed (a task new to
			 * this resync has none yet, and no mark) */
			if (t->resync) {
				tr_task_res_free_all(&t->resync->old, &t->resync->n_old);
				t->resync->old = t->res;
				t->resync->n_old = t->n_res;
				t->res = NULL;
				t->n_res = 0;
			}
			if (t->closed) {
				t->closed = false;
				t->final_sent = false;
			}
		}
		r = tr_task_res_put(t, rp, NULL);
		if (r >= 0) {
			r = tr_cache_res_transfers(t, rp);
		}
		if (r < 0) {
			ret = r;
		}
		tr_json_free(rp);
	}
	tr_cache_staged_clear(c);
	for (struct tr_cache_task *t = c->tasks; t; t = t->next) {
		if (t->seen && t->resync_new) {
			for (size_t i = 0; i < t->n_res; i++) {
				tr_cache_emit_full(c, "reservationCreated", t, NULL, &t->res[i], NULL,
					TR_CACHE_EV_RESYNC, "resync");
			}
		} else if (t->seen) {
			resync_emit_res_changes(c, t);
			resync_emit_changes(c, t);
			resync_keep_gone(c, t);
		}
		if (t->resync) {
			tr_task_res_free_all(&t->resync->old, &t->resync->n_old);
			t->resync = NULL;
		}
		if (t->seen) {
			continue;
		} else if (!t->closed && !t->vanished) {
			/* It ended for this worker while we were away, how is unknown: kept as it
			 * is until the caller fetched its final state (tr_cache_vanish_resolve). */
			t->vanished = true;
			c->n_vanish_due++;
		}
	}
	free(marks);
	(void)now_ms;
	return ret;
}

const char *tr_cache_vanish_next(const struct tr_cache *c) {
	for (const struct tr_cache_task *t = c->n_vanish_due ? c->tasks : NULL; t; t = t->next) {
		if (t->vanished && !t->fetching) {
			return t->sid;
		}
	}
	return NULL;
}

int tr_cache_vanish_fetching(struct tr_cache *c, const char *sid) {
	struct tr_cache_task *t = tr_cache_find_task(c, sid);

	if (!t || !t->vanished || t->fetching) {
		return -ENOENT;
	}
	t->fetching = true;
	c->n_vanish_due--;
	return 0;
}

int tr_cache_vanish_resolve(struct tr_cache *c, const char *sid, const struct tr_json *payload,
	const char *unknown_reason, long http_status, uint64_t now_ms) {
	struct tr_cache_task *t = tr_cache_find_task(c, sid);
	const char *name = "vanished";
	struct tr_cache_event ev = { .flags = TR_CACHE_EV_RESYNC | TR_CACHE_EV_VANISHED,
		.event_type = "resync", .http_status = http_status };

	if (!t || !t->vanished || !t->fetching) {
		return -ENOENT;
	}
	if (payload) {
		/* A stale payload (older than the cache) leaves the newer cached state. */
		int r = tr_cache_task_apply(c, t, payload);

		unknown_reason = r == -EBADMSG ? "malformed" : r < 0 ? "error" : NULL;
	} else if (!unknown_reason) {
		unknown_reason = "error";
	}
	if (!unknown_reason && (strcmp(t->status, "completed") == 0 ||
			strcmp(t->status, "canceled") == 0)) {
		name = t->status;
	}
	ev.unknown_reason = unknown_reason;
	tr_cache_vanish_clear(c, t);
	tr_cache_res_clear(t);
	t->closed = true;
	t->closed_at_ms = now_ms;
	c->expiry_hint = true;
	if (!t->final_sent) {
		t->final_sent = strcmp(name, "vanished") != 0;
		ev.name = name;
		ev.task = t;
		ev.reservation_sid = t->last_res_sid;
		if (c->cb) {
			c->cb(c->userdata, &ev);
		}
	}
	return 0;
}

/* ---- reservations gone while the daemon was away ---- */

/* The gone reservation sid (fetching or not) and its task, to change (touched). */
static struct tr_cache_res *gone_find(const struct tr_cache *c, const char *sid,
	struct tr_cache_task **ret_task) {
	for (struct tr_cache_task *t = c->tasks; t && sid; t = t->next) {
		for (size_t i = 0; i < t->n_ended; i++) {
			if (t->ended[i].gone && strcmp(t->ended[i].sid, sid) == 0) {
				tr_cache_touch(c, t);
				*ret_task = t;
				return &t->ended[i];
			}
		}
	}
	return NULL;
}

const char *tr_cache_res_gone_next(struct tr_cache *c) {
	for (const struct tr_cache_task *t = c->n_gone_due ? c->tasks : NULL; t; t = t->next) {
		for (size_t i = 0; i < t->n_ended; i++) {
			if (t->ended[i].gone && !t->ended[i].fetching) {
				return t->ended[i].sid;
			}
		}
	}
	/* none left (the ended ones kept per task are bounded: a gone one may have been
	 * dropped before its fetch) */
	c->n_gone_due = 0;
	return NULL;
}

int tr_cache_res_gone_fetching(struct tr_cache *c, const char *sid) {
	struct tr_cache_task *t;
	struct tr_cache_res *r = gone_find(c, sid, &t);

	if (!r || r->fetching) {
		return -ENOENT;
	}
	r->fetching = true;
	if (c->n_gone_due > 0) {
		c->n_gone_due--;
	}
	return 0;
}

int tr_cache_res_gone_resolve(struct tr_cache *c, const char *sid, const struct tr_json *payload) {
	static const char *const names[][2] = {
		{ "completed", "reservationCompleted" },
		{ "rejected", "reservationRejected" },
		{ "timeout", "reservationTimeout" },
		{ "canceled", "reservationCanceled" },
		{ "rescinded", "reservationRescinded" },
	};
	struct tr_cache_task *t = NULL;
	struct tr_cache_res *r = gone_find(c, sid, &t);
	const char *name = NULL;

	if (!r || !r->fetching) {
		return -ENOENT;
	}
	r->gone = r->fetching = false;
	if (payload && !tr_task_res_stale(r, payload) &&
		tr_task_wire_res_update(r, payload) == 0) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			name = strcmp(r->status, names[i][0]) == 0 ? names[i][1] : name;
		}
	}
	if (name) {
		tr_cache_emit_full(c, name, t, NULL, r, NULL, TR_CACHE_EV_RESYNC, "resync");
	}
	return name ? 0 : 1;
}
