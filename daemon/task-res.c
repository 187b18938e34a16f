/*
 * task-res.c — a task record's reservations (see task-res.h).
 */
#include "task-res.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "task-wire.h"
#include "task.h"

void tr_task_res_free_all(struct tr_cache_res **a, size_t *n) {
	for (size_t i = 0; i < *n; i++) {
		tr_task_wire_res_done(&(*a)[i]);
	}
	free(*a);
	*a = NULL;
	*n = 0;
}

bool tr_task_res_live(const char *status) {
	return status && (strcmp(status, "pending") == 0 || strcmp(status, "accepted") == 0 ||
		strcmp(status, "wrapping") == 0);
}

struct tr_cache_res *tr_task_res_find(struct tr_cache_task *t, const char *sid) {
	for (size_t i = 0; sid && i < t->n_res; i++) {
		if (strcmp(t->res[i].sid, sid) == 0) {
			return &t->res[i];
		}
	}
	return NULL;
}

struct tr_cache_res *tr_task_res_find_any(struct tr_cache_task *t, const char *sid) {
	struct tr_cache_res *r = tr_task_res_find(t, sid);

	for (size_t i = 0; !r && sid && i < t->n_ended; i++) {
		r = strcmp(t->ended[i].sid, sid) == 0 ? &t->ended[i] : NULL;
	}
	return r;
}

struct tr_cache_res *tr_task_res_current(struct tr_cache_task *t) {
	for (size_t i = 0; i < t->n_res; i++) {
		if (strcmp(t->res[i].status, "accepted") == 0 ||
			strcmp(t->res[i].status, "wrapping") == 0) {
			return &t->res[i];
		}
	}
	for (size_t i = 0; i < t->n_res; i++) {
		if (strcmp(t->res[i].status, "pending") == 0) {
			return &t->res[i];
		}
	}
	return NULL;
}

int tr_task_res_set_last(struct tr_cache_task *t, const char *sid) {
	char *n;

	if (t->last_res_sid && strcmp(t->last_res_sid, sid) == 0) {
		return 0;
	}
	n = tr_task_wire_intern(sid);
	if (!n) {
		return -ENOMEM;
	}
	tr_task_wire_unintern(t->last_res_sid);
	t->last_res_sid = n;
	return 0;
}

bool tr_task_res_stale(const struct tr_cache_res *r, const struct tr_json *p) {
	int64_t v;

	return r->version >= 0 && tr_json_get_int(p, "version", &v) == 0 && v < r->version;
}

int tr_task_res_put(struct tr_cache_task *t, const struct tr_json *rp, struct tr_cache_res **ret) {
	const char *sid = tr_json_get_string(rp, "sid");
	struct tr_cache_res *r = tr_task_res_find(t, sid), *n, fresh = { 0 };
	int e;

	if (!sid) {
		return -EBADMSG;
	}
	if (r) {
		if (ret) {
			*ret = r;
		}
		if (tr_task_res_stale(r, rp)) {
			return 1;
		}
		e = tr_task_wire_res_update(r, rp);
		return e < 0 ? e : tr_task_res_set_last(t, sid);
	}
	e = tr_task_wire_res_update(&fresh, rp);
	if (e < 0) {
		return e;
	}
	n = realloc(t->res, (t->n_res + 1) * sizeof(*n));
	if (!n) {
		tr_task_wire_res_done(&fresh);
		return -ENOMEM;
	}
	t->res = n;
	t->res[t->n_res] = fresh;
	if (ret) {
		*ret = &t->res[t->n_res];
	}
	t->n_res++;
	return tr_task_res_set_last(t, sid);
}

int tr_task_res_set_status(struct tr_cache_res *r, const char *status) {
	char *n = tr_task_wire_intern(status);

	if (!n) {
		return -ENOMEM;
	}
	tr_task_wire_unintern(r->status);
	r->status = n;
	return 0;
}

struct tr_cache_res *tr_task_res_keep_ended(struct tr_cache_task *t, struct tr_cache_res *r) {
	if (t->n_ended == TR_TASK_ENDED_RES_MAX) {
		tr_task_wire_res_done(&t->ended[0]);
		memmove(&t->ended[0], &t->ended[1], (t->n_ended - 1) * sizeof(t->ended[0]));
		t->n_ended--;
	} else {
		struct tr_cache_res *n = realloc(t->ended, (t->n_ended + 1) * sizeof(*n));

		if (!n) {
			tr_task_wire_res_done(r);
			return NULL;
		}
		t->ended = n;
	}
	t->ended[t->n_ended] = *r;
	memset(r, 0, sizeof(*r));
	return &t->ended[t->n_ended++];
}

struct tr_cache_res *tr_task_res_end(struct tr_cache_task *t, const char *sid) {
	for (size_t i = 0; i < t->n_res; i++) {
		struct tr_cache_res r = t->res[i];

		if (strcmp(r.sid, sid) != 0) {
			continue;
		}
		memmove(&t->res[i], &t->res[i + 1], (t->n_res - i - 1) * sizeof(t->res[0]));
		t->n_res--;
		return tr_task_res_keep_ended(t, &r);
	}
	return NULL;
}
