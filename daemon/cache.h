/*
 * cache.h — the task model: one record per task SID seen through this worker's
 * reservations, updated from wire events, REST replies and resyncs.
 *
 * Plain data plus one observer callback: no I/O, no loop, no logging. Time is
 * passed in (now_ms) so tests drive it. The records are task.h's. Depends on task-wire
 * (a payload's members read into a record), task-index (the sid index) and proto/json.h
 * only; never on task-json (a record's RPC text), which reads this header.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "task.h"

struct tr_json;

enum {
	TR_CACHE_EV_RESYNC = 1 << 0,
	TR_CACHE_EV_STALE = 1 << 1,
	TR_CACHE_EV_VANISHED = 1 << 2, /* resync: the task was gone upstream */
};

/* What the observer gets; everything is borrowed until it returns. */
struct tr_cache_event {
	const char *name;            /* "updated", "reservationCreated", "transferInitiated", ... */
	const struct tr_cache_task *task;
	const char *reservation_sid; /* may be NULL */
	/* reservation* events: the reservation after the change (its sid is reservation_sid;
	 * NULL only when it could not be kept), with whose it is */
	const struct tr_cache_res *reservation;
	const struct tr_cache_ident *ident;
	const struct tr_cache_transfer *transfer; /* transfer events only */
	unsigned flags;              /* TR_CACHE_EV_* */
	const char *event_type;      /* the wire event_type, "resync" for resync events */
	/* TR_CACHE_EV_VANISHED only: why the task's final state is unknown ("deleted", ...), NULL
	 * when it was fetched; http_status is the fetch's HTTP status (0: none). */
	const char *unknown_reason;
	long http_status;
};

typedef void (*tr_cache_event_cb)(void *userdata, const struct tr_cache_event *ev);

struct tr_cache_counters {
	uint64_t ignored_unknown_task;
	uint64_t transfer_events_dropped;
	uint64_t stale_payloads;
	uint64_t malformed;
	uint64_t oversize_omitted; /* attributes/add-ons over TR_TASK_EMBEDDED_MAX not kept */
};

struct tr_cache;

/* closed_grace_ms <= 0 means TR_TASK_CLOSED_GRACE_MS_DEFAULT. NULL on ENOMEM. */
struct tr_cache *tr_cache_new(int closed_grace_ms, tr_cache_event_cb cb, void *userdata);
struct tr_cache *tr_cache_free(struct tr_cache *c);

/*
 * The event hub keeps a published event as a reference to the record it was written from
 * rather than as text, while that record stays as it was (subs.c). A record counts those
 * references (subs_holds, changed with tr_cache_task_hold). In each call that changes a
 * record that has any, before the first change, the cache calls cb with freeing false, and
 * before it frees one, with freeing true: cb must take the record's text while it is still
 * the same (and, when freeing, let go of the record). cb must not call the cache.
 */
typedef void (*tr_cache_change_cb)(void *userdata, const struct tr_cache_task *t, bool freeing);
void tr_cache_set_change_cb(struct tr_cache *c, tr_cache_change_cb cb, void *userdata);
void tr_cache_task_hold(const struct tr_cache_task *t, int delta);

/*
 * Apply one wire event. Returns 0 (applied, events emitted), -ENOENT (the task or the
 * reservation is unknown: ignored, counted; the caller logs at debug), -ESRCH (a reservation
 * this worker should hold is unknown: the caller should request a resync), -EBADMSG
 * (malformed payload, counted), -ENOMEM. worker.* and unknown types return 0 and do nothing.
 */
int tr_cache_apply(struct tr_cache *c, const char *event_type, const struct tr_json *payload,
	uint64_t now_ms);

/* A Task payload from a REST reply (no event is emitted). Returns 0 applied, 1 valid but
 * older than the cache (not applied), -ENOENT unknown task, -EBADMSG, -ENOMEM. */
int tr_cache_apply_task(struct tr_cache *c, const struct tr_json *payload);

/*
 * A Reservation payload from a REST reply (accept, reject, wrap, complete, the instructions,
 * fetchLatestVersion), of either shape (task-wire.h): updates this worker's live or recently
 * ended reservation of that sid under the version rule, and its task when the payload embeds
 * one (also under the task's version rule). The reservation stays live until its cleanup
 * event, like the SDK's. No event is emitted. Returns 0 applied, 1 valid but older than the
 * cache (not applied), -ENOENT unknown reservation, -EBADMSG, -ENOMEM.
 */
int tr_cache_apply_res(struct tr_cache *c, const struct tr_json *payload);

/*
 * This worker's reservation sid: a WR… sid names a live or recently ended one; a task sid
 * (WT…) names the task's live reservation (accepted or wrapping first, else the first
 * pending one). *ret_task (may be NULL) gets its task. NULL when there is none. Borrowed
 * until the next change.
 */
const struct tr_cache_res *tr_cache_find_res(const struct tr_cache *c, const char *sid,
	const struct tr_cache_task **ret_task);

/* Who the reservations belong to (the session's account, workspace and worker), for the
 * Reservation object; NULL members leave "" there. */
void tr_cache_set_ident(struct tr_cache *c, const char *account_sid, const char *workspace_sid,
	const char *worker_sid);
const struct tr_cache_ident *tr_cache_get_ident(const struct tr_cache *c);

/* A Transfer payload from the reply to POST Transfers (or a cancel): replaces (or, same sid,
 * updates) task_sid's outgoing transfer, then applies the pending transfer events that now
 * match, in arrival order. Returns 0, -ENOENT, -EBADMSG, -ENOMEM. */
int tr_cache_apply_transfer_response(struct tr_cache *c, const char *task_sid,
	const struct tr_json *payload, uint64_t now_ms);

/* A POST Transfers for task_sid was sent (+1) or answered (-1). While one is in flight, a
 * pending transfer-initiated event for one of the task's live reservations is adopted as
 * the outgoing transfer when its 10 s wait ends, instead of being dropped (a deviation from
 * the SDK: better publish transferInitiated than lose it when the reply never comes). */
void tr_cache_transfer_in_flight(struct tr_cache *c, const char *task_sid, int delta);

/* The transfer POST failed: drop the task's pending transfer events (counted). */
void tr_cache_drop_pending(struct tr_cache *c, const char *task_sid);

/* Drop closed tasks past the grace period and pending transfer events older than
 * TR_TRANSFER_PENDING_MS. Returns the number of transfer events dropped. */
int tr_cache_expire(struct tr_cache *c, uint64_t now_ms);

/* Resync: begin, add every active reservation, end. end(0) reconciles (emitting with
 * TR_CACHE_EV_RESYNC), end(err) discards and leaves the cache as it was. */
void tr_cache_resync_begin(struct tr_cache *c);
int tr_cache_resync_add(struct tr_cache *c, const struct tr_json *reservation);
int tr_cache_resync_end(struct tr_cache *c, int err, uint64_t now_ms);

/*
 * Vanished tasks. tr_cache_resync_end(0) marks a task that is neither closed nor among the
 * active reservations as vanished and leaves it as it is (nothing is published). The caller
 * fetches its final state: tr_cache_vanish_next names one whose fetch has not started,
 * tr_cache_vanish_fetching marks it started, and tr_cache_vanish_resolve reports the answer.
 * A vanished task that a later resync or a reservation.created shows live again, or that an
 * event closes meanwhile, is no longer vanished: resolving it then does nothing.
 */
/* The sid of a vanished task whose fetch has not started (borrowed until the next change), or
 * NULL. O(1) when there is none. */
const char *tr_cache_vanish_next(const struct tr_cache *c);
/* The fetch of vanished task sid has started. 0, or -ENOENT when it is not waiting for one. */
int tr_cache_vanish_fetching(struct tr_cache *c, const char *sid);
/*
 * The fetch of vanished task sid answered. payload: the Task fetched (a 2xx), applied under the
 * version rule; or NULL and unknown_reason says why the final state is unknown (the record
 * is kept as it was), with the fetch's http_status (0: none). The task moves to the
 * recently-closed area and one event is published (TR_CACHE_EV_RESYNC | TR_CACHE_EV_VANISHED):
 * "completed" or "canceled" when the fetched status is final, else "vanished" (the task lives
 * on without this worker, or its state is unknown); none when its final event was published
 * already. A payload that cannot be read counts as unknown_reason "malformed", no payload
 * and no reason as "error". Returns 0, or
 * -ENOENT when sid is not a vanished task whose fetch started (the answer is dropped).
 */
int tr_cache_vanish_resolve(struct tr_cache *c, const char *sid, const struct tr_json *payload,
	const char *unknown_reason, long http_status, uint64_t now_ms);

/*
 * Reservations that ended while the daemon was away, on a task it still holds (a resync no
 * longer lists them): kept as ended reservations until their final status is fetched, like
 * vanished tasks. tr_cache_res_gone_next names one whose fetch has not started (NULL: none),
 * tr_cache_res_gone_fetching marks it started (0, or -ENOENT), and tr_cache_res_gone_resolve
 * reports the answer: payload (a Reservation) or NULL when the fetch failed. A final status
 * publishes its reservation event (reservationRejected, …Timeout, …Canceled, …Rescinded,
 * …Completed) with TR_CACHE_EV_RESYNC and returns 0; no answer, or a status that is not
 * final, publishes nothing and returns 1; -ENOENT when sid is not a gone reservation whose
 * fetch started.
 */
const char *tr_cache_res_gone_next(struct tr_cache *c);
int tr_cache_res_gone_fetching(struct tr_cache *c, const char *sid);
int tr_cache_res_gone_resolve(struct tr_cache *c, const char *sid, const struct tr_json *payload);

/* Lookups (live or recently closed). Borrowed until the next change. */
const struct tr_cache_task *tr_cache_get(const struct tr_cache *c, const char *sid);
const struct tr_cache_task *tr_cache_first(const struct tr_cache *c);
size_t tr_cache_count(const struct tr_cache *c, bool closed);
/* True (once) if a task closed or a transfer event was parked since the last call: then
 * tr_cache_expire has work. O(1), so the caller can ask after every event. */
bool tr_cache_take_expiry_hint(struct tr_cache *c);
const struct tr_cache_counters *tr_cache_get_counters(const struct tr_cache *c);

/* "transferring" while the outgoing transfer is initiated, else the wire status. */
const char *tr_cache_task_status(const struct tr_cache_task *t);
/* The accepted/wrapping reservation, else the first live one, else the last seen. */
const char *tr_cache_task_reservation(const struct tr_cache_task *t);

/* complete, failed or canceled. */
bool tr_cache_transfer_is_final(const struct tr_cache_transfer *x);
