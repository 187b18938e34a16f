/*
 * task-json.h — the task model as the RPC protocol shows it (doc/PROTOCOL.md): the Task and
 * Transfer objects written as JSON text, and the ISO time format, written and read.
 *
 * Owns those objects' (and the Reservation's) member names, order and text, and the one time format of the daemon
 * (the *Iso fields, the time sent upstream, the time a client sends). It reads the cache's
 * records and never changes them; the cache does not know this module.
 *
 * Pure: no I/O, no loop, no logging, no globals. Depends on task.h (the records), cache.h
 * (two queries of a record: its protocol status and its live reservation) and proto/json.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tr_json;
struct tr_cache_task;
struct tr_cache_transfer;
struct tr_cache_res;
struct tr_cache_ident;

/*
 * Append the Task object of t to the growing buffer (*buf, *len, *cap) of
 * tr_json_text_append, kept NUL-terminated. Its attributes and addOns are the cached texts,
 * spliced in as they are. Returns 0 or -ENOMEM; on error the buffer may hold part of the
 * object, and the caller frees *buf in any case.
 */
int tr_task_json_task_text(const struct tr_cache_task *t, char **buf, size_t *len, size_t *cap);
/* The same for the Transfer object of x; NULL writes null. */
int tr_task_json_transfer_text(const struct tr_cache_transfer *x, char **buf, size_t *len,
	size_t *cap);

/* That text in a new TR_JSON_RAW node, which replies and events splice into their trees
 * without parsing it back. The caller owns the node; NULL on ENOMEM. */
struct tr_json *tr_task_json_task_raw(const struct tr_cache_task *t);
struct tr_json *tr_task_json_transfer_raw(const struct tr_cache_transfer *x);

/* That text parsed back into a tree, for callers that look inside (tests, fuzzing). The
 * caller owns the tree; NULL on ENOMEM. */
struct tr_json *tr_task_json_task_tree(const struct tr_cache_task *t);
struct tr_json *tr_task_json_transfer_tree(const struct tr_cache_transfer *x);

/*
 * The Reservation object of r, one of task t's reservations, whose worker, workspace and
 * account id names (NULL: ""), with t as its `task` when with_task (an event, which carries
 * the task itself, leaves it out): text appended as for the Task, a raw node, or a tree.
 */
int tr_task_json_res_text(const struct tr_cache_res *r, const struct tr_cache_task *t,
	const struct tr_cache_ident *id, bool with_task, char **buf, size_t *len, size_t *cap);
struct tr_json *tr_task_json_res_raw(const struct tr_cache_res *r, const struct tr_cache_task *t,
	const struct tr_cache_ident *id, bool with_task);
struct tr_json *tr_task_json_res_tree(const struct tr_cache_res *r, const struct tr_cache_task *t,
	const struct tr_cache_ident *id, bool with_task);

/*
 * Epoch seconds → "YYYY-MM-DDTHH:MM:SSZ" (UTC). A time outside the years 0000-9999, which
 * the form cannot show, is written as the epoch, "1970-01-01T00:00:00Z". The text is cut
 * to size - 1 bytes and NUL-terminated (nothing is written when size is 0); 21 bytes hold
 * it all.
 */
void tr_task_json_time_format(int64_t epoch, char *buf, size_t size);

/*
 * RFC 3339 → epoch seconds: "YYYY-MM-DD", 'T', 't' or ' ', "HH:MM:SS", an optional
 * fraction (cut), then 'Z', 'z' or ±HH:MM. The numbers are read with sscanf, so one may
 * also start with blanks or a sign. Returns 0 and sets *ret_epoch, or -EINVAL.
 */
int tr_task_json_time_parse(const char *s, int64_t *ret_epoch);
