/*
 * task-index.c — the cache's sid index (see task-index.h).
 */
#include "task-index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"

#define INITIAL_BUCKETS 64 /* a power of two: the hash is masked */

static size_t sid_hash(const char *s) {
	size_t h = 14695981039346656037ULL; /* FNV-1a */

	for (; *s; s++) {
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	}
	return h;
}

int tr_task_index_init(struct tr_task_index *x) {
	x->buckets = calloc(INITIAL_BUCKETS, sizeof(*x->buckets));
	if (!x->buckets) {
		return -ENOMEM;
	}
	x->n_buckets = INITIAL_BUCKETS;
	x->n = 0;
	return 0;
}

void tr_task_index_done(struct tr_task_index *x) {
	free(x->buckets);
	x->buckets = NULL;
	x->n_buckets = x->n = 0;
}

/* Double the table once it holds more tasks than buckets. If that allocation fails the
 * chains just get longer: lookups stay correct. */
static void grow(struct tr_task_index *x) {
	size_t nb = x->n_buckets * 2;
	struct tr_cache_task **b = calloc(nb, sizeof(*b));

	if (!b) {
		return;
	}
	for (size_t i = 0; i < x->n_buckets; i++) {
		struct tr_cache_task *t = x->buckets[i];

		while (t) {
			struct tr_cache_task *n = t->hnext;
			size_t k = sid_hash(t->sid) & (nb - 1);

			t->hnext = b[k];
			b[k] = t;
			t = n;
		}
	}
	free(x->buckets);
	x->buckets = b;
	x->n_buckets = nb;
}

void tr_task_index_add(struct tr_task_index *x, struct tr_cache_task *t) {
	size_t k;

	if (x->n >= x->n_buckets) {
		grow(x);
	}
	k = sid_hash(t->sid) & (x->n_buckets - 1);
	t->hnext = x->buckets[k];
	x->buckets[k] = t;
	x->n++;
}

void tr_task_index_del(struct tr_task_index *x, struct tr_cache_task *t) {
	struct tr_cache_task **pp;

	if (!t->sid) {
		return; /* never indexed: its first payload failed */
	}
	for (pp = &x->buckets[sid_hash(t->sid) & (x->n_buckets - 1)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == t) {
			*pp = t->hnext;
			x->n--;
			return;
		}
	}
}

struct tr_cache_task *tr_task_index_find(const struct tr_task_index *x, const char *sid) {
	if (!sid) {
		return NULL;
	}
	for (struct tr_cache_task *t = x->buckets[sid_hash(sid) & (x->n_buckets - 1)]; t;
		t = t->hnext) {
		if (strcmp(t->sid, sid) == 0) {
			return t;
		}
	}
	return NULL;
}
