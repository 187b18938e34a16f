/*
 * cache-internal.h — what cache.c (the model, its events and lookups) and cache-resync.c (the
 * resync and the vanished tasks) share: the cache's struct and the helpers both use. Not
 * for any other module.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "task-index.h"

struct tr_json;

struct tr_cache_pending {
	char *event_type;
	struct tr_json *payload;
	uint64_t at_ms;
	struct tr_cache_pending *next;
};

struct tr_cache {
	struct tr_cache_task *tasks;  /* in arrival order */
	struct tr_cache_task **tailp; /* &last->next, or &tasks */
	struct tr_task_index index;
	bool expiry_hint; /* a task closed or an event was parked since the last look */
	uint64_t grace_ms;
	tr_cache_event_cb cb;
	void *userdata;
	tr_cache_change_cb change_cb;
	void *change_userdata;
	struct tr_cache_counters counters;
	struct tr_cache_ident ident;
	bool in_resync;
	size_t n_vanish_due; /* vanished tasks whose fetch has not started */
	size_t n_gone_due;   /* gone reservations whose fetch has not started (at most) */
	/* Reservations fetched by the resync, kept as compact text until it ends: a page's
	 * tree costs several times its text, and 10,000 of them made a peak of tens of MB. */
	struct staged {
		char *text;
		size_t len;
	} *staged;
	size_t n_staged, cap_staged;
};

/* The record of task sid (NULL: unknown), to change: it is touched (below). */
struct tr_cache_task *tr_cache_find_task(const struct tr_cache *c, const char *sid);
/* Tell the change callback that t is about to change or be freed, when anything refers to it
 * (tr_cache_set_change_cb). Every call that changes a record touches it first; code that
 * finds a record to change without tr_cache_find_task touches it itself. */
void tr_cache_touch(const struct tr_cache *c, const struct tr_cache_task *t);
/* The same before t is freed. */
void tr_cache_touch_free(const struct tr_cache *c, const struct tr_cache_task *t);
/* A new zeroed record at the end of the list (not indexed until its sid is set). */
struct tr_cache_task *tr_cache_task_new(struct tr_cache *c);
/* Remove t from the list and the index, and free it. */
void tr_cache_task_unlink(struct tr_cache *c, struct tr_cache_task *t);
/* Apply a Task payload to t under the version rule. 0 applied, 1 stale, <0 error. */
int tr_cache_task_apply(struct tr_cache *c, struct tr_cache_task *t, const struct tr_json *p);
/* Free t's live reservations. */
void tr_cache_res_clear(struct tr_cache_task *t);
/* The transfers embedded in a reservation payload, into t. 0 or -ENOMEM. */
int tr_cache_res_transfers(struct tr_cache_task *t, const struct tr_json *rp);
/* Publish an event (res: the reservation of a reservation event, whose sid is res_sid). */
void tr_cache_emit_full(struct tr_cache *c, const char *name, const struct tr_cache_task *t,
	const char *res_sid, const struct tr_cache_res *res, const struct tr_cache_transfer *x,
	unsigned flags, const char *type);
void tr_cache_emit(struct tr_cache *c, const char *name, const struct tr_cache_task *t,
	const char *res_sid, const struct tr_cache_transfer *x, unsigned flags, const char *type);
/* The task is ours again, or closed: it no longer waits for its final state. */
void tr_cache_vanish_clear(struct tr_cache *c, struct tr_cache_task *t);
/* Drop the resync's staged reservations. */
void tr_cache_staged_clear(struct tr_cache *c);
