/*
 * world.h — taskrouter-sim's TaskRouter model: one workspace with workers, activities,
 * task channels, worker channels, a queue, a workflow, tasks, reservations, transfers
 * and a conference stand-in per voice task (spec §7.3).
 *
 * Every operation validates first and changes nothing when it refuses (a 4xx error with a
 * TaskRouter-style message). Each change bumps the right `version` by one and queues the
 * events of spec §6; world_flush() hands them to the event hook, reservation.* first,
 * then task.*, then task.transfer-*, then worker.* (or reversed, for tests).
 *
 * Owns its objects (freed by world_free). Uses the uv loop only for its timers
 * (reservation timeouts, task TTLs, the offline grace period). No I/O.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "jw.h"

#define SIM_SID_SIZE 35 /* 2-letter prefix + 32 hex + NUL */
#define SIM_MAX_WORKERS 64
#define SIM_N_CHANNELS 2 /* voice, chat */
#define SIM_RESERVATION_TIMEOUT 120
#define SIM_TASK_TIMEOUT_DEFAULT 86400
#define SIM_TASK_TIMEOUT_MAX 1209600

enum sim_task_status {
	TS_PENDING,
	TS_RESERVED,
	TS_ASSIGNED,
	TS_WRAPPING,
	TS_COMPLETED,
	TS_CANCELED,
};

enum sim_res_status {
	RS_PENDING,
	RS_ACCEPTED,
	RS_REJECTED,
	RS_TIMEOUT,
	RS_CANCELED,
	RS_RESCINDED,
	RS_WRAPPING,
	RS_COMPLETED,
};

enum sim_xfer_status {
	XS_INITIATED,
	XS_FAILED,
	XS_COMPLETE,
	XS_CANCELED,
};

/* Event categories, in delivery order for one change. */
enum sim_ev_cat {
	EV_RES,
	EV_TASK,
	EV_XFER,
	EV_WORKER,
};

struct sim_activity {
	char sid[SIM_SID_SIZE];
	char name[32];
	bool available;
};

struct sim_named {
	char sid[SIM_SID_SIZE];
	char name[64];
};

struct sim_wchannel {
	char sid[SIM_SID_SIZE];
	int capacity;
	bool available;
	int64_t last_reserved_ms;
	int64_t version;
	int64_t updated;
};

struct sim_world;

struct sim_worker {
	struct sim_world *world;
	int idx;
	char sid[SIM_SID_SIZE];
	char name[32];
	char *attributes; /* JSON text */
	int activity;
	int64_t version, created, updated, status_changed;
	struct sim_wchannel ch[SIM_N_CHANNELS];
	char *token; /* the last token minted for it */
	int sessions; /* open websockets, kept by the server */
	uv_timer_t offline_timer;
};

struct sim_transfer;

struct sim_task {
	char sid[SIM_SID_SIZE];
	int64_t seq;
	enum sim_task_status status;
	char *attributes; /* JSON text */
	int64_t priority, timeout;
	char *reason;
	int channel; /* index into task channels */
	int worker_target; /* routing_target worker index, -1: none */
	int64_t created, updated, vst, version;
	uint64_t declined; /* workers who rejected or let it time out */
	/* conference stand-in (voice tasks) */
	bool customer_in, customer_hold;
	uint64_t conf_members, conf_hold, conf_muted;
	struct sim_transfer *xfer; /* latest transfer */
	bool deleted; /* gone: lookups and lists skip it (records stay, for the pointers to it) */
};

struct sim_reservation {
	char sid[SIM_SID_SIZE];
	int64_t seq;
	struct sim_task *task;
	struct sim_worker *worker;
	enum sim_res_status status;
	int64_t timeout, created, updated, version;
	int canceled_reason_code;
	struct sim_transfer *incoming; /* the transfer that created it */
	struct sim_transfer *outgoing; /* latest transfer initiated through it */
	uint64_t gen; /* world generation of its last change */
	int prev_activity; /* the worker's activity when it was created */
	/* The last instruction (call, dequeue, redirect, conference) and its params as sent
	 * (JSON text), how many were received, and the dequeue post-work activity (-1: none)
	 * still to apply when the call ends (wrap or complete). */
	const char *instruction;
	char *instruction_params;
	int n_instructions;
	int post_work_activity;
	/* The worker's conference leg (WorkerParticipant and the conference instruction):
	 * -1 never set, else 0/1. */
	int p_mute, p_end_on_exit, p_beep_on_exit;
	int n_participant_updates;
};

/* Shapes of a Reservation (spec reservation-worker §3.3, §7.2). */
enum sim_res_shape {
	RES_EVENT,    /* frames, lists, GET: reservation_timeout and the embedded task */
	RES_INSTANCE, /* REST write answers: no task, no reservation_timeout */
	RES_STATE,    /* /sim/state: the instance plus reservation_timeout and the sim's records */
};

struct sim_transfer {
	char sid[SIM_SID_SIZE];
	struct sim_task *task;
	bool to_queue, cold;
	char to[SIM_SID_SIZE];
	enum sim_xfer_status status;
	char *failed_reason;
	struct sim_reservation *init_res;
	struct sim_worker *init_worker;
	struct sim_reservation *target_res; /* the current attempt */
	int64_t created, updated;
};

/* Called by world_flush for each event, in order. frame is the whole ws message. */
typedef void (*sim_event_cb)(void *ud, struct sim_worker *w, const char *event_type,
	const char *frame, size_t len);

struct sim_event {
	struct sim_worker *worker;
	enum sim_ev_cat cat;
	char *type;
	char *frame;
	size_t len;
};

struct sim_err {
	int status; /* HTTP status */
	int code;   /* Twilio error code */
	char message[384];
};

struct sim_world {
	uv_loop_t *loop;
	char account_sid[SIM_SID_SIZE], workspace_sid[SIM_SID_SIZE], key_sid[SIM_SID_SIZE];
	char workspace_name[32];
	int64_t created;
	uint64_t sid_counter;
	uint64_t gen;
	int64_t seq;

	struct sim_activity activities[2]; /* Available, Offline */
	int offline_activity, available_activity;
	struct sim_named channels[SIM_N_CHANNELS];
	struct sim_named queue, workflow;

	struct sim_worker *workers[SIM_MAX_WORKERS];
	int n_workers;
	struct sim_task **tasks;
	size_t n_tasks, cap_tasks;
	struct sim_reservation **res;
	size_t n_res, cap_res;
	struct sim_transfer **xfers;
	size_t n_xfers, cap_xfers;

	struct sim_event *events;
	size_t n_events, cap_events;
	bool reverse_order;
	bool oom;
	bool route_later; /* world_flush routes pending tasks once the change's events are out */

	sim_event_cb on_event;
	void *ud;
	int64_t offline_grace_ms;
	uv_timer_t tick;
	int open_handles;
	bool closing;
};

/* Create the default world (spec: alice, bob, Available/Offline, voice/chat, one queue, one
 * workflow). Returns NULL on ENOMEM. */
struct sim_world *world_new(uv_loop_t *loop, sim_event_cb cb, void *ud);
/* Close the timers; the world is freed once they are closed (after uv_run drains). */
void world_close(struct sim_world *w);

int64_t world_now(void); /* epoch seconds */
int64_t world_now_ms(void);

/* Deliver queued events through the hook (and clear the queue), then make the routing the
 * change allowed and deliver its events. */
void world_flush(struct sim_world *w);
/* Start a new operation (for "which reservations did this change touch"). */
void world_begin(struct sim_world *w);

/* Lookups (NULL when absent). */
struct sim_worker *world_worker(struct sim_world *w, const char *sid_or_name);
struct sim_task *world_task(struct sim_world *w, const char *sid);
struct sim_reservation *world_res(struct sim_world *w, const char *sid);
struct sim_transfer *world_xfer(struct sim_world *w, const char *sid);
int world_activity(struct sim_world *w, const char *sid);
int world_channel(struct sim_world *w, const char *sid_or_name);

const char *task_status_str(enum sim_task_status s);
const char *res_status_str(enum sim_res_status s);
const char *xfer_status_str(enum sim_xfer_status s);

/* ---- operations: 0 on success, else -1 with *err filled (nothing changed) ---- */

struct sim_task_spec {
	const char *attributes; /* JSON text of an object; NULL: "{}" */
	int channel;
	int64_t priority, timeout;
	int64_t vst; /* 0: now */
	int worker_target; /* -1: workflow routing to any available worker */
	bool force; /* route to worker_target even if unavailable */
	int64_t reservation_timeout; /* 0: default */
	bool no_route; /* leave it pending, offered to nobody */
};
int world_task_create(struct sim_world *w, const struct sim_task_spec *spec,
	struct sim_task **ret_task, struct sim_reservation **ret_res, struct sim_err *err);

/* A createTask whose routing target could not take it: canceled, reservation.failed to k.
 * The task must be pending (no reservation); the payload is the task plus
 * initiating_workflow_sid and initiating_queue_sid (spec reservation-worker §7.2). */
void world_task_fail(struct sim_world *w, struct sim_task *t, struct sim_worker *k);

int world_res_accept(struct sim_world *w, struct sim_reservation *r, struct sim_err *err);
int world_res_reject(struct sim_world *w, struct sim_reservation *r, int activity,
	struct sim_err *err);
int world_res_timeout(struct sim_world *w, struct sim_reservation *r, struct sim_err *err);
/* The offer is withdrawn (another worker took the task, in TaskRouter's multi-reservation
 * routing): reservation.rescinded, the task goes back to the workflow. */
int world_res_rescind(struct sim_world *w, struct sim_reservation *r, struct sim_err *err);
int world_res_wrap(struct sim_world *w, struct sim_reservation *r, struct sim_err *err);
int world_res_complete(struct sim_world *w, struct sim_reservation *r, struct sim_err *err);

/* A reservation instruction (spec reservation-worker §3.2). The reservation must be pending
 * (TaskRouter errors 40114 call, 40123 redirect, 40135 dequeue, 40136 conference). It is
 * recorded (name, params JSON text, count); with accept the reservation is accepted as
 * world_res_accept would. post_work_activity (dequeue, -1: none) moves the worker when the
 * call ends; mute / end_on_exit (conference, -1: not given) seed the worker's leg. */
struct sim_instruction {
	const char *name; /* "call", "dequeue", "redirect" or "conference" (static) */
	const char *params; /* JSON text, copied */
	bool accept;
	int post_work_activity;
	int mute, end_on_exit, beep_on_exit;
};
int world_res_instruction(struct sim_world *w, struct sim_reservation *r,
	const struct sim_instruction *in, struct sim_err *err);
/* WorkerParticipant: update the worker's leg in the task's conference (-1: unchanged). The
 * reservation must be accepted and its worker in the conference of a voice task. */
int world_res_participant(struct sim_world *w, struct sim_reservation *r, int mute,
	int end_on_exit, int beep_on_exit, struct sim_err *err);

int world_task_complete(struct sim_world *w, struct sim_task *t, const char *reason,
	struct sim_err *err);
int world_task_wrap(struct sim_world *w, struct sim_task *t, const char *reason,
	struct sim_err *err);
int world_task_cancel(struct sim_world *w, struct sim_task *t, const char *reason,
	struct sim_err *err);
/* Delete the task (TaskRouter's DELETE): a live task first ends as complete (assigned,
 * wrapping) or cancel (pending, reserved) would end it, with reason "deleted" and the same
 * events; then world_task no longer finds it, so its REST routes answer 404. */
int world_task_delete(struct sim_world *w, struct sim_task *t, struct sim_err *err);
/* Change attributes (JSON text, may be NULL), priority (<0: keep), timeout (<0: keep),
 * virtual start time (<0: keep). One version bump, one task.updated. */
int world_task_update(struct sim_world *w, struct sim_task *t, const char *attributes,
	int64_t priority, int64_t timeout, int64_t vst, struct sim_err *err);

int world_transfer_create(struct sim_world *w, struct sim_worker *by, struct sim_reservation *r,
	struct sim_task *t, const char *to, const char *mode, const char *attributes,
	int64_t priority, struct sim_transfer **ret, struct sim_err *err);
int world_transfer_cancel(struct sim_world *w, struct sim_transfer *x, struct sim_err *err);
/* Control: how=0 accept, 1 reject, 2 timeout. */
int world_transfer_drive(struct sim_world *w, struct sim_transfer *x, int how,
	struct sim_err *err);

/* One worker update (the worker POST): attributes (JSON text, NULL: keep) and/or activity
 * (-1: keep), with RejectPendingReservations. One version bump; worker.attributes.update
 * and/or worker.activity.update, after the reservation.rejected frames of the pending
 * reservations it rejects. An available activity lets pending tasks route to the worker. */
int world_worker_update(struct sim_world *w, struct sim_worker *k, const char *attrs,
	int activity, bool reject_pending, struct sim_err *err);
int world_worker_set_activity(struct sim_world *w, struct sim_worker *k, int activity,
	bool reject_pending, struct sim_err *err);
int world_worker_set_attributes(struct sim_world *w, struct sim_worker *k, const char *attrs,
	struct sim_err *err);
int world_worker_set_channel(struct sim_world *w, struct sim_worker *k, int channel,
	int capacity, int available, struct sim_err *err);
/* A worker's last websocket closed: start the offline grace period. */
void world_worker_disconnected(struct sim_world *w, struct sim_worker *k);

/* Conference (voice tasks). */
int world_conf_customer(struct sim_world *w, struct sim_worker *by, struct sim_task *t, int hold,
	struct sim_err *err);
int world_conf_hold(struct sim_world *w, struct sim_worker *by, struct sim_task *t,
	struct sim_worker *target, bool hold, struct sim_err *err);
int world_conf_kick(struct sim_world *w, struct sim_worker *by, struct sim_task *t,
	struct sim_worker *target, struct sim_err *err);

/* ---- rendering (wire shapes of spec §5) ---- */
void render_task(struct sim_world *w, struct jw *j, const struct sim_task *t);
void render_res(struct sim_world *w, struct jw *j, const struct sim_reservation *r,
	enum sim_res_shape shape);
void render_xfer(struct sim_world *w, struct jw *j, const struct sim_transfer *x, bool task_sid);
void render_worker(struct sim_world *w, struct jw *j, const struct sim_worker *k);
void render_activity(struct sim_world *w, struct jw *j, const struct sim_activity *a);
void render_wchannel(struct sim_world *w, struct jw *j, const struct sim_worker *k, int ch);
/* Conference of a task, for /sim/state. */
void render_conf(struct sim_world *w, struct jw *j, const struct sim_task *t);

bool res_live(const struct sim_reservation *r); /* pending, accepted or wrapping */
void sim_err_set(struct sim_err *err, int status, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
