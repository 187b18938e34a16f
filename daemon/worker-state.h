/*
 * worker-state.h — the worker model: this worker as TaskRouter last said (its activity,
 * availability, attributes and version), the workspace's activities and the worker's
 * channels. Filled by each resync, kept current by the worker.* frames and by the REST
 * answers of the worker methods, and written as the protocol's Worker, Activity and Channel
 * objects.
 *
 * Where the SDK goes stale (reservation-worker.md §4.2, §9), this does not: every Worker
 * payload updates every field, the activity included, and the version follows the server's
 * (the SDK's +1 on reservation.created and channel frames, §4.5, which the server makes
 * without sending the worker).
 *
 * Plain data plus one observer callback, like the cache: no I/O, no loop, no logging.
 * Depends on proto/json.h and task-json.h (the time format) only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tr_json;

struct tr_wstate_worker {
	char *sid, *name, *activity_sid, *activity_name, *account_sid, *workspace_sid;
	char *attributes_json; /* compact JSON text of the attributes object */
	bool available;
	int64_t version; /* -1: not known yet */
	int64_t date_created, date_updated, date_status_changed;
};

struct tr_wstate_activity {
	char *sid, *name;
	bool available;
	int64_t date_created, date_updated;
};

struct tr_wstate_channel {
	char *sid, *task_channel_sid, *task_channel_unique_name;
	int64_t capacity, assigned_tasks, available_capacity_percentage;
	int64_t last_reserved_time; /* ms; -1: null */
	bool available;
	int64_t date_created, date_updated;
};

enum {
	TR_WSTATE_EV_RESYNC = 1 << 0, /* found by a resync: it changed while the daemon was away */
};

/* What the observer gets (borrowed until it returns): activityUpdated and attributesUpdated
 * carry the worker, channelCapacityUpdated and channelAvailabilityUpdated the channel. */
struct tr_wstate_event {
	const char *name;
	const char *event_type; /* the wire event_type, "resync" for resync events */
	unsigned flags;
	const struct tr_wstate_channel *channel; /* channel events only */
};

struct tr_wstate;
typedef void (*tr_wstate_event_cb)(void *userdata, const struct tr_wstate *ws,
	const struct tr_wstate_event *ev);

struct tr_wstate_counters {
	uint64_t malformed;       /* worker or channel payloads that could not be read */
	uint64_t unknown_channel; /* channel frames for a channel the resync did not list */
	uint64_t stale;           /* worker payloads older than the worker held: not applied */
};

/* NULL on ENOMEM. */
struct tr_wstate *tr_wstate_new(tr_wstate_event_cb cb, void *userdata);
struct tr_wstate *tr_wstate_free(struct tr_wstate *ws);

/*
 * Resync: begin, the worker, every activity and channel, end. end(0) replaces the model with
 * what was fetched (the worker unless an answer newer than its GET came in meanwhile) and,
 * with publish, publishes (with TR_WSTATE_EV_RESYNC) what changed since the last one:
 * activityUpdated, attributesUpdated, and a channel's capacity or availability; nothing after
 * the first, nor without publish (another worker's session: nothing "changed"). end(err)
 * discards it. The add functions return 0, -EBADMSG (not usable: skipped, counted) or
 * -ENOMEM (the resync must fail).
 */
void tr_wstate_resync_begin(struct tr_wstate *ws);
int tr_wstate_resync_worker(struct tr_wstate *ws, const struct tr_json *worker);
int tr_wstate_resync_activity(struct tr_wstate *ws, const struct tr_json *activity);
int tr_wstate_resync_channel(struct tr_wstate *ws, const struct tr_json *channel);
int tr_wstate_resync_end(struct tr_wstate *ws, int err, bool publish);

/*
 * A wire event. worker.activity.update / worker.attributes.update: the worker is updated
 * (unless the payload is older than the worker held) and activityUpdated / attributesUpdated
 * published (even when the payload could not be read, like the SDK; it is then counted as
 * malformed and -EBADMSG returned after publishing). worker.capacity.update /
 * worker.channel.availability.update: the worker version +1, the channel updated, the
 * channel event published; -ENOENT for a channel the model does not know (nothing
 * published: the caller should resync), -EALREADY when the same unknown channel was
 * reported last time (its resync was asked already), -EBADMSG without a sid.
 * reservation.created: the worker version +1. Any other type: 0, nothing.
 */
int tr_wstate_apply(struct tr_wstate *ws, const char *event_type, const struct tr_json *payload);

/* A Worker payload from a REST answer: every field, nothing published. 0, 1 (older than the
 * worker held: not applied, counted), -EBADMSG, -ENOMEM. */
int tr_wstate_apply_worker(struct tr_wstate *ws, const struct tr_json *worker);

/* The worker (NULL before the first resync), the activities and channels in the order the
 * resync listed them. Borrowed until the next change. */
const struct tr_wstate_worker *tr_wstate_get_worker(const struct tr_wstate *ws);
const struct tr_wstate_activity *tr_wstate_activities(const struct tr_wstate *ws, size_t *n);
const struct tr_wstate_channel *tr_wstate_channels(const struct tr_wstate *ws, size_t *n);
/* The activity whose sid is s, else the one whose friendly name is exactly s; NULL. */
const struct tr_wstate_activity *tr_wstate_find_activity(const struct tr_wstate *ws,
	const char *s);
const struct tr_wstate_counters *tr_wstate_get_counters(const struct tr_wstate *ws);

/* The protocol's objects (doc/PROTOCOL.md), as trees the caller owns; NULL on ENOMEM. */
struct tr_json *tr_wstate_worker_json(const struct tr_wstate *ws);
struct tr_json *tr_wstate_activity_json(const struct tr_wstate *ws,
	const struct tr_wstate_activity *a);
struct tr_json *tr_wstate_channel_json(const struct tr_wstate_channel *ch);
