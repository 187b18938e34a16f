/*
 * subs.h — the event hub: one daemon-wide seq, a ring of the last
 * TR_EVENT_RING_SIZE events (for events.subscribe {since}), and the
 * subscriptions with their filters.
 *
 * Seqs count within one run of the daemon, which the epoch names: a string made once per
 * hub (per daemon run), unique without being secret. Every notification carries it, and a
 * `since` is only honoured with the epoch it was counted in.
 *
 * Each event is serialised once; a subscriber's notification is that text with its
 * subscription id spliced in and a frame header. No I/O: frames go out through each
 * subscription's send callback (rpcsrv's connection write queue).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tr_json;
struct tr_outq_shared;
struct tr_cache_event;
struct tr_cache_task;
struct tr_subs;

/* Queue a framed message for owner: head, then the whole of tail when it is not NULL (an
 * event's text and the frame's closing brace, shared by every subscriber it goes to: the
 * callee takes a reference of its own if it keeps it, tr_outq_shared). Takes ownership of head
 * in every case. Returns 0 or a negative errno (the subscriber is then left alone; its
 * connection handles the failure). */
typedef int (*tr_subs_send_cb)(void *owner, char *head, size_t head_len,
	struct tr_outq_shared *tail);
/* The callback must not remove subscriptions synchronously (a connection being dropped
 * removes its subscriptions from its close callback). */

/* Every event name the daemon publishes, task events then daemon events, NULL-terminated:
 * the allowed values of events.subscribe's `events` and the `events` of rpc.describe. */
extern const char *const tr_subs_event_names[];

/* Why a `since` cannot be replayed. */
enum tr_subs_gap {
	TR_SUBS_GAP_NONE,
	TR_SUBS_GAP_NO_EPOCH, /* a seq without its epoch: which run counted it is unknown */
	TR_SUBS_GAP_EPOCH,    /* the seq of another run (the daemon restarted) */
	TR_SUBS_GAP_EXPIRED,  /* older than the oldest kept event */
	TR_SUBS_GAP_FUTURE,   /* beyond the next seq */
	_TR_SUBS_GAP_MAX,
};

/* The gap's name on the wire ("no-epoch", "epoch", "expired", "future"); NULL for none. */
const char *tr_subs_gap_str(enum tr_subs_gap gap);

/* A hub with a new epoch (from getrandom without blocking, and the start time). NULL on
 * ENOMEM. */
struct tr_subs *tr_subs_new(void);
struct tr_subs *tr_subs_free(struct tr_subs *s);

/* This run's epoch: at most TR_SUBS_EPOCH_MAX - 1 printable ASCII characters, no quote or
 * backslash. Borrowed for the hub's life. */
#define TR_SUBS_EPOCH_MAX 40
const char *tr_subs_epoch(const struct tr_subs *s);

/* The last assigned seq (0 before the first event). */
uint64_t tr_subs_seq(const struct tr_subs *s);
/* The oldest seq still in the ring (seq + 1 when the ring is empty). */
uint64_t tr_subs_oldest(const struct tr_subs *s);
size_t tr_subs_count(const struct tr_subs *s);
uint64_t tr_subs_published(const struct tr_subs *s);
/* Subscriptions refused because their connection held TR_SUBS_PER_CONNECTION already. */
uint64_t tr_subs_refused_cap(const struct tr_subs *s);

/* Publish a task event from the cache observer. Returns 0 or -ENOMEM. */
int tr_subs_publish_task(struct tr_subs *s, const struct tr_cache_event *ev);

/*
 * A task event's text need not be kept while its task record is unchanged: it is written
 * again from the record when replayed. The record's owner must call tr_subs_settle when no
 * change of a record is under way (each loop turn), which lets go of the texts of the events
 * published since that the record still writes the same, and tr_subs_task_changing before a
 * record that refers to any (subs_holds) changes, in each call that changes it, or is freed
 * (freeing): their texts are written out again while it is the same (the cache's change
 * callback). If that fails (ENOMEM), the events up to it are dropped from the ring, so a
 * `since` before them is "expired" rather than answered wrongly.
 */
void tr_subs_settle(struct tr_subs *s);
void tr_subs_task_changing(struct tr_subs *s, const struct tr_cache_task *t, bool freeing);
/* The ring: events kept, bytes of text held, events written from their records instead. */
struct tr_subs_ring_stats {
	size_t events, text_bytes, from_records;
};
void tr_subs_ring_stats(const struct tr_subs *s, struct tr_subs_ring_stats *st);
/* Check mode, for tests: texts are kept all the same, and each one written again from its
 * record is compared with it; a difference aborts the daemon with both texts. */
void tr_subs_set_check(struct tr_subs *s, bool check);
/* Publish a daemon event ("connected", ...); data's members (borrowed, may be NULL) are
 * added to the params. */
int tr_subs_publish_daemon(struct tr_subs *s, const char *name, const struct tr_json *data);

/*
 * Subscribe. events and tasks are arrays of strings (borrowed; NULL: everything); event names
 * are those of tr_subs_event_names in any letter case. The id is copied into ret_id (size >=
 * 24). Returns 0, -EINVAL (not an array of strings, or an unknown event name), -EDQUOT (owner
 * holds TR_SUBS_PER_CONNECTION subscriptions already; counted), -ENOMEM.
 */
int tr_subs_add(struct tr_subs *s, const struct tr_json *events, const struct tr_json *tasks,
	void *owner, tr_subs_send_cb send, char *ret_id, size_t id_size);
/* Can the events from since on, counted in epoch (NULL: not given), be replayed: NONE, or why
 * not. */
enum tr_subs_gap tr_subs_check_since(const struct tr_subs *s, const char *epoch, uint64_t since);
/* Send the ring's events with seq >= since that match id's filter. 0, -ENOENT, -ENOMEM. */
int tr_subs_replay(struct tr_subs *s, const char *id, uint64_t since);
/* Remove one subscription of owner. 0 or -ENOENT. */
int tr_subs_remove(struct tr_subs *s, const char *id, void *owner);
/* Remove every subscription of owner (connection closed). */
void tr_subs_remove_owner(struct tr_subs *s, void *owner);
