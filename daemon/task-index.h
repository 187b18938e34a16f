/*
 * task-index.h — the cache's sid index: a chained hash table of task records by sid
 * (through each record's hnext), so a lookup stays O(1) with 10,000 tasks.
 *
 * It only links records it is given; the cache owns them and their list. Pure: no I/O, no
 * loop, no logging. Depends on task.h (the record type) only.
 */
#pragma once

#include <stddef.h>

struct tr_cache_task;

struct tr_task_index {
	struct tr_cache_task **buckets; /* chains through hnext */
	size_t n_buckets, n;
};

/* An empty index in x (caller's memory). 0 or -ENOMEM. */
int tr_task_index_init(struct tr_task_index *x);
/* Free the table (not the records). */
void tr_task_index_done(struct tr_task_index *x);
/* Link t (its sid set, not linked yet). Never fails: when the table cannot grow, the chains
 * get longer. */
void tr_task_index_add(struct tr_task_index *x, struct tr_cache_task *t);
/* Unlink t; nothing when it is not linked (a record whose sid is NULL never was). */
void tr_task_index_del(struct tr_task_index *x, struct tr_cache_task *t);
/* The record whose sid is sid (NULL: none, or sid NULL). */
struct tr_cache_task *tr_task_index_find(const struct tr_task_index *x, const char *sid);
