/*
 * task-res.h — one task record's reservations (task.h's res and ended arrays): this worker's
 * reservations for the task, added and updated from Reservation payloads under the version
 * rule, ended, looked up. The cache decides when; this keeps the arrays right.
 *
 * Pure: no I/O, no loop, no logging. Depends on task.h, task-wire.h (a payload's members)
 * and proto/json.h only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct tr_json;
struct tr_cache_task;
struct tr_cache_res;

/* Free every record of the array *a of *n, and the array; both are zero after. */
void tr_task_res_free_all(struct tr_cache_res **a, size_t *n);

/* pending, accepted or wrapping. */
bool tr_task_res_live(const char *status);

/* The live reservation sid of t (NULL: none, or sid NULL). */
struct tr_cache_res *tr_task_res_find(struct tr_cache_task *t, const char *sid);
/* The same among the live, then the ended ones. */
struct tr_cache_res *tr_task_res_find_any(struct tr_cache_task *t, const char *sid);
/* The one a task sid stands for: the accepted or wrapping one, else the first pending one. */
struct tr_cache_res *tr_task_res_current(struct tr_cache_task *t);

/* Is payload p's version older than r's (both known). */
bool tr_task_res_stale(const struct tr_cache_res *r, const struct tr_json *p);

/*
 * Add a live reservation from payload rp, or update the live one of that sid under the
 * version rule; either way it becomes t's last seen. *ret (may be NULL) gets the record.
 * Returns 0 applied, 1 stale (not applied), -EBADMSG (no sid), -ENOMEM.
 */
int tr_task_res_put(struct tr_cache_task *t, const struct tr_json *rp, struct tr_cache_res **ret);

/* Move live reservation sid to t's ended ones (the oldest goes when TR_TASK_ENDED_RES_MAX
 * are kept). Returns the moved record; NULL when sid is not live, or on ENOMEM (it is then
 * dropped). */
struct tr_cache_res *tr_task_res_end(struct tr_cache_task *t, const char *sid);

/* Keep record *r (taken: *r is zeroed) as t's newest ended one, the oldest going when
 * TR_TASK_ENDED_RES_MAX are kept. Returns it, or NULL on ENOMEM (it is then freed). */
struct tr_cache_res *tr_task_res_keep_ended(struct tr_cache_task *t, struct tr_cache_res *r);

/* r->status = status. 0 or -ENOMEM. */
int tr_task_res_set_status(struct tr_cache_res *r, const char *status);

/* t's last seen reservation is sid (kept after the task closed). 0 or -ENOMEM. */
int tr_task_res_set_last(struct tr_cache_task *t, const char *sid);
