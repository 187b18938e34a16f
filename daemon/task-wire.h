/*
 * task-wire.h — the upstream's Task and Transfer payloads (TaskRouter's JSON, from events,
 * REST replies and resyncs) read into the cache's records, and those records freed.
 *
 * Owns the wire member names and their defaults. It fills records one at a time and knows
 * nothing of the collection they live in: the version rule, reservations, events and
 * expiry are the cache's. The cache calls it; it calls nothing of the cache and never
 * sees struct tr_cache.
 *
 * Pure: no I/O, no loop, no logging, no globals. Depends on task.h (the record types) and
 * proto/json.h only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct tr_json;
struct tr_cache_task;
struct tr_cache_transfer;
struct tr_cache_res;

/*
 * Read a Task payload into the wire fields (sid through version) of t, a zeroed record:
 * the cache reads into a scratch record, then moves the fields over. attributes and addons
 * (JSON text in a string, or an object) are checked and kept as compact text, "{}" when
 * absent, null or empty. Returns 0, -EBADMSG (no sid, assignment_status or integer
 * version, or attributes or addons that are not JSON) or -ENOMEM; on error t is zero again.
 */
int tr_task_wire_task_read(const struct tr_json *p, struct tr_cache_task *t);

/* Free dst's wire fields and give it src's: src's pointers then belong to dst. */
void tr_task_wire_task_move(struct tr_cache_task *dst, struct tr_cache_task *src);

/* Free t's wire fields (not t, nor the rest of it). */
void tr_task_wire_task_done(struct tr_cache_task *t);

/*
 * Update x from a Transfer payload: every field (full), or only the status, the failed
 * reason and date_updated. A transfer embedded in a reservation has no task_sid: task_sid
 * (the enclosing task's, may be NULL) fills it then. Returns 0 or -ENOMEM.
 */
int tr_task_wire_transfer_update(struct tr_cache_transfer *x, const struct tr_json *p, bool full,
	const char *task_sid);

/*
 * Set *slot from a Transfer payload: one with the same sid is updated in place, any other
 * replaced (and freed). A p that is not an object changes nothing. Returns 0, -EBADMSG (no
 * sid or transfer_status: *slot is left alone) or -ENOMEM.
 */
int tr_task_wire_transfer_set(struct tr_cache_transfer **slot, const struct tr_json *p,
	const char *task_sid);

/* Free x and everything it holds (NULL is fine). Returns NULL. */
struct tr_cache_transfer *tr_task_wire_transfer_free(struct tr_cache_transfer *x);

/*
 * v as compact text to keep for a long time (an embedded JSON value, a staged payload): the
 * dump's buffer grows by doubling, so its slack is given back. *ret_text is the caller's.
 * Returns 0 or -ENOMEM.
 */
int tr_task_wire_keep(const struct tr_json *v, char **ret_text, size_t *ret_len);

/*
 * Update r from a Reservation payload, of the event shape (spec reservation-worker §7.2) or the
 * REST instance shape (§3.3: no task, no reservation_timeout). r is either zeroed (its sid and
 * the rest are then taken from p; version and timeout start at -1, unknown) or holds the same
 * reservation. A member that is absent leaves its field as it was: the SDK clears the timeout
 * when a REST answer lacks it, the daemon keeps what TaskRouter said last. The version rule is
 * the caller's; so is a status that does not fit the event (without reservation_status the
 * status stays, "pending" for a new record). Returns 0, -EBADMSG (not an object or no sid: r
 * unchanged) or -ENOMEM (r unchanged).
 */
int tr_task_wire_res_update(struct tr_cache_res *r, const struct tr_json *p);

/* The one shared copy of a short string with few distinct values (a status, a queue's name),
 * or held in several places (a reservation's sid, which is also its task's last one): one
 * more reference, or NULL on ENOMEM. Give it back with tr_task_wire_unintern (NULL is fine),
 * never with free. A reservation's sid and status and a task's last_res_sid are such. */
char *tr_task_wire_intern(const char *s);
void tr_task_wire_unintern(char *s);

/* Free r's strings (not r). */
void tr_task_wire_res_done(struct tr_cache_res *r);
