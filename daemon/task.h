/*
 * task.h — the records of the task model: a task, its transfers and this worker's
 * reservations for it. Types only.
 *
 * cache.c owns the collection of records and every field after "The cache's own";
 * task-wire.c fills the wire fields from TaskRouter's payloads; task-json.c writes records
 * as the protocol's objects. Depends on nothing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tr_cache_transfer {
	char *sid, *type, *mode, *to, *status, *failed_reason;
	char *reservation_sid, *worker_sid, *queue_sid, *workflow_sid, *task_sid;
	int64_t date_created, date_updated;
};

/* One of this worker's reservations for a task, as TaskRouter last said (spec §3.1). Its
 * worker, workspace and account are the session's (struct tr_cache_ident), not kept here. */
struct tr_cache_res {
	char *sid;
	char *status;         /* reservation_status */
	int64_t version;      /* -1: not known (a reservation known only by its sid) */
	int64_t timeout;      /* reservation_timeout, seconds; -1: never said */
	int64_t date_created, date_updated;
	int64_t canceled_reason_code; /* 0: none */
	/* Ended ones only: a resync no longer listed it, how it ended is still to be fetched
	 * (fetching: the GET is out). */
	bool gone, fetching;
};

/* Whose reservations they are: the worker of the session, for the Reservation object. */
struct tr_cache_ident {
	char account_sid[40], workspace_sid[40], worker_sid[40];
};

/* Ended reservations kept per task (the newest), for reservation.get after the end. */
#define TR_TASK_ENDED_RES_MAX 4

struct tr_cache_pending; /* transfer events waiting for the POST reply */
struct tr_cache_resync_mark; /* cache-resync.c */

struct tr_cache_task {
	/* The wire fields, sid through version: what a Task payload sets (task-wire.h). */
	char *sid;
	char *status; /* wire assignment_status */
	/* Compact JSON text, validated once on the way in: kept as text (not a tree) because it
	 * is only ever written out, and a tree costs several times the memory. */
	char *attributes_json;
	size_t attributes_len;
	char *addons_json;
	size_t addons_len;
	/* Bytes of a value over TR_TASK_EMBEDDED_MAX that was not kept ({} instead), or 0. */
	size_t attributes_omitted, addons_omitted;
	int64_t age, priority, timeout;
	char *reason; /* NULL: null */
	char *queue_sid, *queue_name, *workflow_sid, *workflow_name;
	char *task_channel_sid, *task_channel_unique_name;
	char *routing_target; /* NULL: null */
	int64_t date_created, date_updated, virtual_start_time, version;

	/* The cache's own. */
	struct tr_cache_res *res; /* this worker's live reservations, in insertion order */
	size_t n_res;
	char *last_res_sid; /* the last reservation seen, kept after the task closed */
	struct tr_cache_res *ended; /* this worker's reservations that ended, oldest first */
	size_t n_ended;
	struct tr_cache_transfer *incoming, *outgoing;
	struct tr_cache_pending *pending;
	uint64_t closed_at_ms;
	int transfers_in_flight; /* POST Transfers sent, no reply yet */
	/* Events of the event hub's replay ring written from this record and kept as a
	 * reference to it, not as text (subs.c; tr_cache_task_hold): before the cache changes or
	 * frees a record with any, it tells the hub, which writes their text out first. */
	unsigned subs_holds;
	bool closed;          /* in the recently-closed area */
	bool final_sent;      /* completed/canceled already published */
	/* A resync found none of this worker's reservations for it (it ended while the daemon was
	 * away): kept as it is until its final state is fetched (fetching: the GET is out). */
	bool vanished, fetching;
	/* resync bookkeeping (cache-resync.c): seen by this resync, new to it, and what the
	 * record was before it (only while tr_cache_resync_end runs) */
	bool seen, resync_new;
	struct tr_cache_resync_mark *resync;
	struct tr_cache_task *next;
	struct tr_cache_task *hnext; /* the sid index's bucket chain */
};
