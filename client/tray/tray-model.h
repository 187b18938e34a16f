/*
 * tray-model.h — what taskrouter-tray knows and shows, without GTK.
 *
 * The model holds the connection state, the daemon's session state, the worker, the
 * workspace's activities and one entry per live task of the worker (with its reservation).
 * It is fed the daemon's answers (reservation.list, worker.get, activity.list,
 * daemon.status) and its events, and it says what to show: the icon and label
 * (tr_tray_model_summary) and the menu (tr_tray_model_menu), a flat list of items that the
 * GTK layer renders as it is. Times are passed in (epoch seconds), so tests decide them.
 *
 * Owner: the tray. The GTK layer (tray.c) only renders the model and turns clicks into
 * calls; every decision about what the agent sees is made here.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <taskrouter/client.h>

/* The connection to the daemon. */
enum tr_tray_conn {
	TR_TRAY_CONN_DOWN,       /* no connection; retrying */
	TR_TRAY_CONN_CONNECTING, /* connected, the first answers not in yet */
	TR_TRAY_CONN_UP,         /* subscribed, lists in */
};

/* How long a failed action's message stays in the menu. */
#define TR_TRAY_ERROR_SECONDS 60

/* One live task of the worker. */
struct tr_tray_entry {
	struct tr_task *task;
	struct tr_reservation *res; /* the reservation it came with; NULL when not known */
};

struct tr_tray_model {
	enum tr_tray_conn conn;
	char *conn_why;       /* with DOWN: why (strerror, "connection lost") */
	bool not_running;     /* with DOWN: the daemon is not there (no socket, refused, EOF) */
	char *session;        /* daemon.status state: ready, reconnecting, token_expired, ... */
	char *session_why;    /* the reason of the last "disconnected" event, or NULL */
	struct tr_worker *worker;
	struct tr_activity **activities;
	size_t n_activities;
	struct tr_tray_entry *entries; /* in arrival order */
	size_t n_entries;
	/* where to resume the event stream: the daemon run and the next seq wanted */
	char *epoch;
	int64_t since; /* -1: from now */
	/* the last failed action, shown until error_until */
	char *error;
	int64_t error_until;
};

void tr_tray_model_init(struct tr_tray_model *m);
void tr_tray_model_done(struct tr_tray_model *m);

/* The connection went down (why: a short reason; not_running: the daemon is not there, as
 * opposed to refusing us or answering nonsense) / is being set up / is up. Going down keeps
 * the tasks for a resume but the menu stops showing them. */
void tr_tray_model_set_down(struct tr_tray_model *m, const char *why, bool not_running);
void tr_tray_model_set_connecting(struct tr_tray_model *m);
void tr_tray_model_set_up(struct tr_tray_model *m);
/* A gap: what the model knew of the tasks is no longer true; nothing is shown until the
 * list comes (tr_tray_model_set_reservations). */
void tr_tray_model_forget_tasks(struct tr_tray_model *m);

/*
 * The daemon's answers, as result JSON text. Each replaces what it covers: set_reservations
 * the entries (the live reservations, each with its task: every page of reservation.list),
 * set_worker the worker, set_activities the activities, set_status the session state. Return
 * 0, or a negative errno (-EBADMSG: the text is not what the method answers) with the model
 * unchanged.
 */
int tr_tray_model_set_reservations(
	struct tr_tray_model *m, const char *const *pages, size_t n_pages);
/* A Reservation (reservation.get, with its task) or a Task (task.get) read again, after a
 * version conflict: updates the entry it belongs to (or removes it, when it ended). Only
 * entries the model holds are touched. 0 or a negative errno. */
int tr_tray_model_update_reservation(struct tr_tray_model *m, const char *res_json);
int tr_tray_model_update_task(struct tr_tray_model *m, const char *task_json);
int tr_tray_model_set_worker(struct tr_tray_model *m, const char *worker_json);
int tr_tray_model_set_activities(struct tr_tray_model *m, const char *list_json);
int tr_tray_model_set_status(struct tr_tray_model *m, const char *status_json);

/*
 * The events.subscribe result (JSON text). From now (resumed false): the stream goes on from
 * its epoch and seq + 1. Resumed: the replay starts where the model stands, and the resume
 * position moves only with the events applied. Returns 0 or -EBADMSG.
 */
int tr_tray_model_subscribed(struct tr_tray_model *m, const char *result_json, bool resumed);

/*
 * Apply one event. Returns true when what the model shows changed. The resume position
 * moves past the event whatever it is.
 */
bool tr_tray_model_apply(struct tr_tray_model *m, const struct tr_client_event *ev);

/* What a failed call means for the action: it failed, it was done all the same (-32010), or
 * nobody knows (a timeout, a network error after sending). */
enum tr_tray_outcome {
	TR_TRAY_OUTCOME_FAILED,
	TR_TRAY_OUTCOME_DONE,
	TR_TRAY_OUTCOME_UNKNOWN,
};
enum tr_tray_outcome tr_tray_error_outcome(const struct tr_client_error *err);
/* "failed", "done", "outcome unknown" */
const char *tr_tray_outcome_text(enum tr_tray_outcome o);

/*
 * An action's error: what (e.g. "Accept") and the error, as "Accept failed: <words>" (or
 * "done: …", "outcome unknown: …"). Kept until now + TR_TRAY_ERROR_SECONDS; returns the text
 * (borrowed from the model).
 */
const char *tr_tray_model_set_error(struct tr_tray_model *m, const char *what,
	const struct tr_client_error *err, int64_t now);
/* The error in words, for a notification: "the reservation changed meanwhile (version
 * conflict)". Returns a malloc'd string, NULL on ENOMEM. */
char *tr_tray_error_words(const struct tr_client_error *err);

/* Lookups: NULL when absent. */
const struct tr_tray_entry *tr_tray_model_entry(const struct tr_tray_model *m, const char *task_sid);
const struct tr_tray_entry *tr_tray_model_entry_by_res(
	const struct tr_tray_model *m, const char *res_sid);
/* Whether the entry's reservation is pending (its Accept/Reject apply). */
bool tr_tray_entry_pending(const struct tr_tray_entry *e);
/* Seconds left for a pending reservation at now, or -1 when unknown. */
int64_t tr_tray_entry_seconds_left(const struct tr_tray_entry *e, int64_t now);
/* The task's age at now, in seconds (0 when unknown). */
int64_t tr_tray_entry_age(const struct tr_tray_entry *e, int64_t now);
/* An age in whole minutes, as the menu shows it: "<1 min", "12 min", "1 h 05 min". */
void tr_tray_age_text(int64_t secs, char *buf, size_t size);
/* JSON text indented by two spaces per level, for the attributes window (malloc'd; NULL on
 * ENOMEM). The text must be valid JSON; strings are copied as they are. */
char *tr_tray_json_pretty(const char *json);

/* ---------------------------------------------------------------------------------------
 * What to show
 */

/* The icon and the label next to it. */
struct tr_tray_summary {
	const char *icon; /* a freedesktop icon name */
	char label[96];   /* short: "Available · 2 tasks · 1 waiting" */
	char title[256];  /* one line for the tooltip and the accessible name */
	bool attention;   /* a reservation is waiting */
};
void tr_tray_model_summary(const struct tr_tray_model *m, struct tr_tray_summary *out);

enum tr_tray_item_kind {
	TR_TRAY_ITEM_LABEL,     /* text, clickable when it has an action */
	TR_TRAY_ITEM_SEPARATOR,
	TR_TRAY_ITEM_RADIO,     /* an activity */
	TR_TRAY_ITEM_SUBMENU,   /* opens the items up to the matching TR_TRAY_ITEM_END */
	TR_TRAY_ITEM_END,
};

enum tr_tray_action {
	TR_TRAY_ACT_NONE,
	TR_TRAY_ACT_ACCEPT,     /* arg: reservation sid */
	TR_TRAY_ACT_REJECT,     /* arg: reservation sid */
	TR_TRAY_ACT_WRAP_UP,    /* arg: task sid */
	TR_TRAY_ACT_COMPLETE,   /* arg: task sid */
	TR_TRAY_ACT_ATTRIBUTES, /* arg: task sid */
	TR_TRAY_ACT_ACTIVITY,   /* arg: activity sid */
	TR_TRAY_ACT_QUIT,
};

struct tr_tray_item {
	enum tr_tray_item_kind kind;
	char *label;
	bool sensitive;
	bool checked; /* radio */
	enum tr_tray_action action;
	char *arg;
};

struct tr_tray_menu {
	struct tr_tray_item *items;
	size_t n;
};

/* Build the menu at now. Returns 0 or -ENOMEM (*out then empty). */
int tr_tray_model_menu(const struct tr_tray_model *m, int64_t now, struct tr_tray_menu *out);
void tr_tray_menu_done(struct tr_tray_menu *menu);
/* The menu as text, one item per line, submenus indented by two spaces; disabled items in
 * [brackets], radio items with (*) or ( ), actions after " -> ". For tests and --dump.
 * malloc'd; NULL on ENOMEM. */
char *tr_tray_menu_to_text(const struct tr_tray_menu *menu);

/* The name of an action ("accept", ...), for logs. */
const char *tr_tray_action_name(enum tr_tray_action a);
