/*
 * test-tray-model.c — taskrouter-tray's model without GTK: the daemon's answers and every
 * event it publishes (the list is read from daemon/subs.c, so a new event cannot go
 * unhandled), gaps and restarts, every state of the menu and of the icon, the error words,
 * the attributes' indentation and the user's autostart entry.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "autostart.h"
#include "tray-model.h"

#define NOW 100000 /* "now" in every test, epoch seconds */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
	char *s = NULL;
	va_list ap;

	va_start(ap, f);
	assert_true(vasprintf(&s, f, ap) >= 0);
	va_end(ap);
	return s;
}

/* A Task object as the daemon writes it. */
static char *task_json(const char *sid, const char *status, const char *channel, const char *queue,
	int64_t created) {
	return fmt("{\"sid\":\"%s\",\"status\":\"%s\",\"wireStatus\":\"%s\",\"queueName\":\"%s\","
		   "\"taskChannelUniqueName\":\"%s\",\"dateCreated\":%lld,\"age\":3,"
		   "\"priority\":5,\"version\":\"1\",\"attributes\":{\"lang\":\"fr\"}}",
		sid, status, strcmp(status, "transferring") == 0 ? "assigned" : status, queue, channel,
		(long long)created);
}

/* A Reservation object without its task. */
static char *res_json(const char *sid, const char *status, const char *task_sid, int64_t created) {
	return fmt("{\"sid\":\"%s\",\"status\":\"%s\",\"version\":\"0\",\"timeout\":120,"
		   "\"taskSid\":\"%s\",\"workerSid\":\"WK1\",\"dateCreated\":%lld}",
		sid, status, task_sid, (long long)created);
}

/* reservation.list's result for n (res sid, status, task sid, task status) rows. */
static char *list_json(size_t n, const char *const rows[][4]) {
	char *out = strdup("{\"reservations\":[");

	for (size_t i = 0; i < n; i++) {
		char *t = task_json(rows[i][2], rows[i][3], "voice", "Support", NOW - 90);
		char *r = res_json(rows[i][0], rows[i][1], rows[i][2], NOW - 90);
		char *joined;

		r[strlen(r) - 1] = '\0'; /* drop the closing brace to add the task */
		joined = fmt("%s%s%s,\"task\":%s}", out, i ? "," : "", r, t);
		free(out);
		free(t);
		free(r);
		out = joined;
	}
	{
		char *done = fmt("%s]}", out);

		free(out);
		return done;
	}
}

static const char WORKER[] =
	"{\"sid\":\"WK1\",\"name\":\"alice\",\"activitySid\":\"WA1\",\"activityName\":\"Available\","
	"\"available\":true,\"attributes\":{},\"version\":\"3\"}";
static const char ACTIVITIES[] =
	"{\"activities\":[{\"sid\":\"WA1\",\"name\":\"Available\",\"available\":true,\"isCurrent\":true},"
	"{\"sid\":\"WA2\",\"name\":\"Break\",\"available\":false,\"isCurrent\":false},"
	"{\"sid\":\"WA3\",\"name\":\"Offline\",\"available\":false,\"isCurrent\":false}]}";

/* An event as the client library hands it over. task: Task JSON or NULL; extra: more
 * members of params ("\"reservation\":{…}") or NULL. */
static struct tr_client_event *ev_new(const char *name, int64_t seq, const char *task_sid,
	const char *res_sid, const char *task, const char *extra) {
	struct tr_client_event *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->name = strdup(name);
	e->seq = seq;
	e->epoch = strdup("E1");
	e->task_sid = task_sid ? strdup(task_sid) : NULL;
	e->reservation_sid = res_sid ? strdup(res_sid) : NULL;
	if (task) {
		assert_int_equal(tr_task_parse(task, &e->task), 0);
	}
	e->json = fmt("{\"subscription\":1,\"epoch\":\"E1\",\"seq\":%lld,\"event\":\"%s\"%s%s%s%s%s}",
		(long long)seq, name, task ? ",\"task\":" : "", task ? task : "", extra ? "," : "",
		extra ? extra : "", "");
	return e;
}

static void ev_free(struct tr_client_event *e) {
	free(e->name);
	free(e->epoch);
	free(e->task_sid);
	free(e->reservation_sid);
	tr_task_free(e->task);
	free(e->json);
	free(e);
}

/* Every event name a test fed (test_every_daemon_event_fed, last, checks them). */
static char *fed_names[64];
static size_t n_fed;

static void note_fed(const char *name) {
	for (size_t i = 0; i < n_fed; i++) {
		if (strcmp(fed_names[i], name) == 0) {
			return;
		}
	}
	assert_true(n_fed < sizeof(fed_names) / sizeof(fed_names[0]));
	fed_names[n_fed++] = strdup(name);
}

/* Apply an event; returns what apply said. */
static bool apply(struct tr_tray_model *m, const char *name, const char *task_sid,
	const char *res_sid, const char *task, const char *extra) {
	static int64_t seq = 10;
	struct tr_client_event *e = ev_new(name, ++seq, task_sid, res_sid, task, extra);

	note_fed(name);
	bool changed = tr_tray_model_apply(m, e);

	assert_int_equal(m->since, seq + 1);
	assert_string_equal(m->epoch, "E1");
	ev_free(e);
	return changed;
}

/* A reservation event for (res, task) with both objects; the task names live (a JSON array
 * of this worker's live reservations) or, with live NULL, this reservation when it is live. */
static bool apply_res_live(struct tr_tray_model *m, const char *name, const char *res_sid,
	const char *res_status, const char *task_sid, const char *task_status, const char *live) {
	char *t = task_json(task_sid, task_status, "chat", "Sales", NOW - 30);
	char *r = res_json(res_sid, res_status, task_sid, NOW - 30);
	char *extra = fmt("\"reservation\":%s", r);
	bool is_live = strcmp(res_status, "pending") == 0 || strcmp(res_status, "accepted") == 0 ||
		       strcmp(res_status, "wrapping") == 0;
	char *mine = is_live ? fmt("[{\"sid\":\"%s\",\"status\":\"%s\"}]", res_sid, res_status)
			     : strdup("[]");
	char *tl;
	bool changed;

	t[strlen(t) - 1] = '\0';
	tl = fmt("%s,\"reservations\":%s}", t, live ? live : mine);
	changed = apply(m, name, task_sid, res_sid, tl, extra);
	free(t);
	free(tl);
	free(mine);
	free(r);
	free(extra);
	return changed;
}

static bool apply_res(struct tr_tray_model *m, const char *name, const char *res_sid,
	const char *res_status, const char *task_sid, const char *task_status) {
	return apply_res_live(m, name, res_sid, res_status, task_sid, task_status, NULL);
}

/* One page of reservation.list. */
static int set_list(struct tr_tray_model *m, const char *page) {
	const char *pages[] = {page};

	return tr_tray_model_set_reservations(m, pages, 1);
}

static char *menu_text(const struct tr_tray_model *m, int64_t now) {
	struct tr_tray_menu menu;
	char *text;

	assert_int_equal(tr_tray_model_menu(m, now, &menu), 0);
	text = tr_tray_menu_to_text(&menu);
	assert_non_null(text);
	tr_tray_menu_done(&menu);
	return text;
}

static void assert_menu(const struct tr_tray_model *m, const char *want) {
	char *got = menu_text(m, NOW);

	if (strcmp(got, want) != 0) {
		print_error("menu:\n%s\nwanted:\n%s\n", got, want);
	}
	assert_string_equal(got, want);
	free(got);
}

static void assert_menu_has(const struct tr_tray_model *m, const char *piece, bool has) {
	char *got = menu_text(m, NOW);

	if ((strstr(got, piece) != NULL) != has) {
		print_error("menu:\n%s\n%s: %s\n", got, has ? "missing" : "unexpected", piece);
	}
	assert_true((strstr(got, piece) != NULL) == has);
	free(got);
}

/* A model that is up and ready, with the rows' reservations. */
static void model_up(struct tr_tray_model *m, size_t n, const char *const rows[][4]) {
	char *list = list_json(n, rows);

	tr_tray_model_init(m);
	tr_tray_model_set_connecting(m);
	assert_int_equal(tr_tray_model_subscribed(m, "{\"subscription\":1,\"epoch\":\"E1\",\"seq\":10}", false), 0);
	assert_int_equal(set_list(m, list), 0);
	assert_int_equal(tr_tray_model_set_worker(m, WORKER), 0);
	assert_int_equal(tr_tray_model_set_activities(m, ACTIVITIES), 0);
	assert_int_equal(tr_tray_model_set_status(m, "{\"state\":\"ready\"}"), 0);
	tr_tray_model_set_up(m);
	free(list);
}

static const char ACTIVITY_MENU[] = "Activity: Available >\n"
				    "  (*) Available -> set activity WA1\n"
				    "  ( ) Break -> set activity WA2\n"
				    "  ( ) Offline -> set activity WA3\n"
				    "---\n"
				    "Quit -> quit\n";

/* ------------------------------------------------------------------ snapshot and menu */

static void test_snapshot_menu(void **state) {
	static const char *const rows[][4] = {
		{"WR1", "pending", "WT1", "reserved"},
		{"WR2", "accepted", "WT2", "assigned"},
		{"WR3", "wrapping", "WT3", "wrapping"},
		{"WR4", "accepted", "WT4", "transferring"},
	};
	struct tr_tray_model m;
	char *want;
	(void)state;

	model_up(&m, 4, rows);
	assert_int_equal(m.n_entries, 4);
	assert_int_equal(m.since, 11);
	want = fmt("[alice: Available]\n"
		   "---\n"
		   "Accept voice task from Support -> accept WR1\n"
		   "Reject voice task from Support -> reject WR1\n"
		   "---\n"
		   "voice · Support · reserved · 1 min >\n"
		   "  Accept -> accept WR1\n"
		   "  Reject -> reject WR1\n"
		   "  Attributes… -> attributes WT1\n"
		   "voice · Support · assigned · 1 min >\n"
		   "  Wrap up -> wrap up WT2\n"
		   "  Complete -> complete WT2\n"
		   "  Attributes… -> attributes WT2\n"
		   "voice · Support · wrapping · 1 min >\n"
		   "  Complete -> complete WT3\n"
		   "  Attributes… -> attributes WT3\n"
		   "voice · Support · transferring · 1 min >\n"
		   "  Attributes… -> attributes WT4\n"
		   "---\n%s",
		ACTIVITY_MENU);
	assert_menu(&m, want);
	free(want);
	/* lookups and times */
	assert_non_null(tr_tray_model_entry(&m, "WT2"));
	assert_null(tr_tray_model_entry(&m, "WT9"));
	assert_ptr_equal(tr_tray_model_entry_by_res(&m, "WR3"), tr_tray_model_entry(&m, "WT3"));
	assert_true(tr_tray_entry_pending(tr_tray_model_entry(&m, "WT1")));
	assert_false(tr_tray_entry_pending(tr_tray_model_entry(&m, "WT2")));
	assert_int_equal(tr_tray_entry_seconds_left(tr_tray_model_entry(&m, "WT1"), NOW), 30);
	assert_int_equal(tr_tray_entry_seconds_left(tr_tray_model_entry(&m, "WT1"), NOW + 500), 0);
	assert_int_equal(tr_tray_entry_seconds_left(tr_tray_model_entry(&m, "WT2"), NOW), -1);
	assert_int_equal(tr_tray_entry_age(tr_tray_model_entry(&m, "WT1"), NOW), 90);
	tr_tray_model_done(&m);
}

static void test_empty_and_bad_answers(void **state) {
	struct tr_tray_model m;
	char *want;
	(void)state;

	model_up(&m, 0, NULL);
	want = fmt("[alice: Available]\n---\n[No tasks]\n---\n%s", ACTIVITY_MENU);
	assert_menu(&m, want);
	free(want);
	/* an unreadable answer changes nothing */
	assert_true(set_list(&m, "{\"reservations\":7}") < 0);
	assert_true(set_list(&m, "not json") < 0);
	assert_true(tr_tray_model_set_worker(&m, "[]") < 0);
	assert_true(tr_tray_model_set_activities(&m, "{}") < 0);
	assert_true(tr_tray_model_set_status(&m, "{\"version\":\"1\"}") < 0);
	assert_true(tr_tray_model_subscribed(&m, "{\"epoch\":\"E2\"}", false) < 0);
	assert_string_equal(m.epoch, "E1");
	assert_string_equal(m.session, "ready");
	assert_non_null(m.worker);
	assert_int_equal(m.n_activities, 3);
	/* two reservations of one task: one entry, the first listed */
	{
		static const char *const rows[][4] = {
			{"WR1", "accepted", "WT1", "assigned"},
			{"WR2", "pending", "WT1", "assigned"},
		};
		char *list = list_json(2, rows);

		assert_int_equal(set_list(&m, list), 0);
		assert_int_equal(m.n_entries, 1);
		assert_string_equal(tr_reservation_sid(m.entries[0].res), "WR1");
		free(list);
	}
	tr_tray_model_done(&m);
}

/* Every state of the first line, and what goes with it. */
static void test_connection_states(void **state) {
	static const char *const rows[][4] = {{"WR1", "accepted", "WT1", "assigned"}};
	struct tr_tray_model m;
	struct tr_tray_summary s;
	(void)state;

	tr_tray_model_init(&m);
	assert_menu(&m, "[taskrouterd is not running (not connected); retrying]\n"
			"---\n"
			"[Activity: unknown] >\n"
			"---\n"
			"Quit -> quit\n");
	tr_tray_model_summary(&m, &s);
	assert_string_equal(s.icon, "network-offline");
	assert_string_equal(s.label, "daemon down");
	tr_tray_model_done(&m);

	model_up(&m, 1, rows);
	tr_tray_model_summary(&m, &s);
	assert_string_equal(s.icon, "user-available");
	assert_string_equal(s.label, "Available · 1 task");
	assert_false(s.attention);

	/* the daemon goes away: no task and no activity offered, the tasks kept for a resume */
	tr_tray_model_set_down(&m, "connection lost", true);
	assert_menu(&m, "[taskrouterd is not running (connection lost); retrying]\n"
			"---\n"
			"[Activity: unknown] >\n"
			"  ( ) [Available] -> set activity WA1\n"
			"  ( ) [Break] -> set activity WA2\n"
			"  ( ) [Offline] -> set activity WA3\n"
			"---\n"
			"Quit -> quit\n");
	assert_int_equal(m.n_entries, 1);
	/* refused or answered nonsense: not "not running" */
	tr_tray_model_set_down(&m, "Permission denied", false);
	assert_menu_has(&m, "[No connection to taskrouterd (Permission denied); retrying]\n", true);
	tr_tray_model_set_connecting(&m);
	assert_menu_has(&m, "[Connecting to taskrouterd…]\n", true);
	assert_menu_has(&m, "WT1", false);
	tr_tray_model_summary(&m, &s);
	assert_string_equal(s.label, "connecting");
	tr_tray_model_set_up(&m);

	/* upstream down with the daemon up: the tasks stay, the activity cannot change */
	assert_true(apply(&m, "disconnected", NULL, NULL, NULL, "\"reason\":\"network down\""));
	assert_menu_has(&m, "[TaskRouter unreachable (network down); reconnecting]\n", true);
	/* the tasks stay, their actions cannot go upstream now */
	assert_menu_has(&m, "Attributes… -> attributes WT1", true);
	assert_menu_has(&m, "  [Wrap up] -> wrap up WT1\n  [Complete] -> complete WT1\n", true);
	assert_menu_has(&m, "[Activity: Available] >\n  (*) [Available]", true);
	tr_tray_model_summary(&m, &s);
	assert_string_equal(s.icon, "network-error");
	assert_string_equal(s.label, "offline · 1 task");
	assert_true(apply(&m, "connected", NULL, NULL, NULL, NULL));
	assert_string_equal(m.session, "initializing");
	assert_true(apply(&m, "ready", NULL, NULL, NULL, NULL));
	assert_menu_has(&m, "[alice: Available]\n", true);
	assert_null(m.session_why);

	/* the token */
	assert_false(apply(&m, "tokenWillExpire", NULL, NULL, NULL, "\"expiresAt\":5"));
	assert_true(apply(&m, "tokenExpired", NULL, NULL, NULL, NULL));
	assert_menu_has(&m, "[Token expired: renew it with taskrouterctl update-token]\n", true);
	tr_tray_model_summary(&m, &s);
	assert_string_equal(s.icon, "dialog-warning");
	assert_string_equal(s.label, "token expired");
	/* the session ends after the expiry: still the token's fault */
	assert_true(apply(&m, "disconnected", NULL, NULL, NULL, "\"reason\":\"token expired\""));
	assert_menu_has(&m, "[Token expired:", true);
	assert_true(apply(&m, "tokenUpdated", NULL, NULL, NULL, "\"expiresAt\":9"));
	assert_menu_has(&m, "[TaskRouter unreachable (token expired); reconnecting]\n", true);
	assert_true(apply(&m, "ready", NULL, NULL, NULL, NULL));
	assert_menu_has(&m, "[alice: Available]\n", true);

	/* daemon.status says where the session is */
	assert_int_equal(tr_tray_model_set_status(&m,
				 "{\"state\":\"reconnecting\",\"upstream\":{\"lastError\":\"connect "
				 "refused\"}}"),
		0);
	assert_menu_has(&m, "[TaskRouter unreachable (connect refused); reconnecting]\n", true);
	assert_int_equal(tr_tray_model_set_status(&m, "{\"state\":\"token_expired\"}"), 0);
	assert_menu_has(&m, "[Token expired:", true);
	assert_int_equal(tr_tray_model_set_status(&m, "{\"state\":\"stopped\"}"), 0);
	assert_menu_has(&m, "[TaskRouter session stopped (by taskrouterd)]\n", true);
	assert_int_equal(tr_tray_model_set_status(&m, "{\"state\":\"ready\"}"), 0);
	assert_menu_has(&m, "[alice: Available]\n", true);
	tr_tray_model_done(&m);
}

/* ------------------------------------------------------------------ events */

static void test_reservation_lifecycle(void **state) {
	struct tr_tray_model m;
	struct tr_tray_summary s;
	(void)state;

	model_up(&m, 0, NULL);
	assert_true(apply_res(&m, "reservationCreated", "WR5", "pending", "WT5", "reserved"));
	assert_int_equal(m.n_entries, 1);
	assert_menu_has(&m, "Accept chat task from Sales -> accept WR5\n"
			    "Reject chat task from Sales -> reject WR5\n---\n"
			    "chat · Sales · reserved · <1 min >\n",
		true);
	tr_tray_model_summary(&m, &s);
	assert_true(s.attention);
	assert_string_equal(s.icon, "call-start");
	assert_string_equal(s.label, "Available · 1 task · 1 waiting");
	assert_int_equal(tr_tray_entry_seconds_left(tr_tray_model_entry(&m, "WT5"), NOW), 90);

	assert_true(apply_res(&m, "reservationAccepted", "WR5", "accepted", "WT5", "assigned"));
	assert_menu_has(&m, "Accept", false);
	assert_menu_has(&m, "chat · Sales · assigned · <1 min >\n  Wrap up -> wrap up WT5\n"
			    "  Complete -> complete WT5\n",
		true);
	tr_tray_model_summary(&m, &s);
	assert_false(s.attention);

	/* task.wrapup, then the reservation's own wrapup */
	assert_true(apply(&m, "wrapup", "WT5", "WR5", "{\"sid\":\"WT5\",\"status\":\"wrapping\"}", NULL));
	assert_menu_has(&m, "? · ? · wrapping · <1 min >\n  Complete -> complete WT5\n", true);
	assert_string_equal(tr_reservation_status(tr_tray_model_entry(&m, "WT5")->res), "accepted");
	assert_true(apply_res(&m, "reservationWrapup", "WR5", "wrapping", "WT5", "wrapping"));
	assert_string_equal(tr_reservation_status(tr_tray_model_entry(&m, "WT5")->res), "wrapping");
	assert_menu_has(&m, "chat · Sales · wrapping", true);

	assert_true(apply_res(&m, "reservationCompleted", "WR5", "completed", "WT5", "completed"));
	assert_int_equal(m.n_entries, 0);
	assert_menu_has(&m, "[No tasks]", true);
	/* the late task.completed of a task already gone changes nothing */
	assert_false(apply(&m, "completed", "WT5", "WR5", "{\"sid\":\"WT5\",\"status\":\"completed\"}", NULL));
	tr_tray_model_done(&m);
}

/* Every way a reservation ends removes its task; an older reservation's end does not. */
static void test_reservation_ends(void **state) {
	static const char *const ends[] = {"reservationRejected", "reservationTimeout",
		"reservationCanceled", "reservationRescinded", "reservationCompleted"};
	(void)state;

	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		struct tr_tray_model m;

		model_up(&m, 0, NULL);
		assert_true(apply_res(&m, "reservationCreated", "WR6", "pending", "WT6", "reserved"));
		/* another reservation of the same task ending: the entry stays, as it is */
		assert_true(apply_res_live(&m, ends[i], "WR0", "rejected", "WT6", "reserved",
			"[{\"sid\":\"WR6\",\"status\":\"pending\"}]"));
		assert_int_equal(m.n_entries, 1);
		assert_string_equal(tr_reservation_sid(m.entries[0].res), "WR6");
		assert_true(apply_res(&m, ends[i], "WR6", "rejected", "WT6", "pending"));
		assert_int_equal(m.n_entries, 0);
		/* the shown reservation ends while the task names another live one: the task
		 * stays, without a reservation to accept (it is not known) */
		assert_true(apply_res(&m, "reservationCreated", "WR8", "pending", "WT8", "reserved"));
		assert_true(apply_res_live(&m, ends[i], "WR8", "rejected", "WT8", "reserved",
			"[{\"sid\":\"WR9\",\"status\":\"pending\"}]"));
		assert_int_equal(m.n_entries, 1);
		assert_null(m.entries[0].res);
		assert_menu_has(&m, "Accept", false);
		/* an event without its task: the entry goes when the reservation it shows ended */
		assert_true(apply_res(&m, "reservationCreated", "WR10", "pending", "WT10", "reserved"));
		assert_true(apply(&m, ends[i], "WT10", "WR10", NULL, NULL));
		assert_null(tr_tray_model_entry(&m, "WT10"));
		/* for a task not held: nothing */
		assert_false(apply_res(&m, ends[i], "WR7", "rejected", "WT7", "pending"));
		tr_tray_model_done(&m);
	}
}

static void test_task_events(void **state) {
	static const char *const rows[][4] = {
		{"WR1", "accepted", "WT1", "assigned"},
		{"WR2", "accepted", "WT2", "assigned"},
		{"WR3", "accepted", "WT3", "assigned"},
	};
	static const char *const transfers[] = {"transferInitiated", "transferAttemptFailed",
		"transferCompleted", "transferFailed", "transferCanceled"};
	struct tr_tray_model m;
	char *t;
	(void)state;

	model_up(&m, 3, rows);
	/* updated: the task after the change, the reservation kept */
	t = task_json("WT1", "assigned", "voice", "Billing", NOW - 600);
	assert_true(apply(&m, "updated", "WT1", "WR1", t, NULL));
	free(t);
	assert_menu_has(&m, "voice · Billing · assigned · 10 min >", true);
	assert_string_equal(tr_reservation_sid(tr_tray_model_entry(&m, "WT1")->res), "WR1");
	/* transfer events move the task too */
	for (size_t i = 0; i < sizeof(transfers) / sizeof(transfers[0]); i++) {
		const char *status = i == 0 ? "transferring" : "assigned";

		t = task_json("WT2", status, "voice", "Support", NOW - 3700);
		assert_true(apply(&m, transfers[i], "WT2", "WR2", t, "\"transfer\":{\"sid\":\"TT1\"}"));
		free(t);
		t = fmt("voice · Support · %s · 1 h 01 min >", status);
		assert_menu_has(&m, t, true);
		free(t);
	}
	/* a task event for a task not held adds nothing (the daemon publishes one after this
	 * worker's reservations ended: the task is not this worker's) */
	t = task_json("WT9", "assigned", "sms", "Support", NOW);
	assert_false(apply(&m, "updated", "WT9", NULL, t, NULL));
	assert_false(apply(&m, "transferCompleted", "WT9", NULL, t, NULL));
	free(t);
	assert_null(tr_tray_model_entry(&m, "WT9"));
	/* a held task that names no live reservation of this worker leaves (a late transfer
	 * event after a cold transfer, an update after the reservation ended) */
	assert_true(apply(&m, "updated", "WT3", NULL,
		"{\"sid\":\"WT3\",\"status\":\"pending\",\"reservations\":[]}", NULL));
	assert_null(tr_tray_model_entry(&m, "WT3"));
	assert_true(apply_res(&m, "reservationCreated", "WR3", "pending", "WT3", "reserved"));
	assert_true(apply(&m, "updated", "WT3", NULL,
		"{\"sid\":\"WT3\",\"status\":\"assigned\",\"reservations\":[{\"sid\":\"WR3\","
		"\"status\":\"accepted\"}]}", NULL));
	assert_non_null(tr_tray_model_entry(&m, "WT3"));
	/* an updated task whose status is final leaves */
	assert_true(apply(&m, "updated", "WT3", NULL, "{\"sid\":\"WT3\",\"status\":\"canceled\"}", NULL));
	assert_null(tr_tray_model_entry(&m, "WT3"));
	assert_true(apply_res(&m, "reservationCreated", "WR3", "accepted", "WT3", "assigned"));
	/* completed, canceled and vanished remove theirs */
	assert_true(apply(&m, "completed", "WT1", "WR1", "{\"sid\":\"WT1\",\"status\":\"completed\"}", NULL));
	assert_true(apply(&m, "canceled", "WT2", "WR2", "{\"sid\":\"WT2\",\"status\":\"canceled\"}", NULL));
	assert_true(apply(&m, "vanished", "WT3", NULL, "{\"sid\":\"WT3\",\"status\":\"assigned\"}",
		"\"vanished\":true,\"resync\":true"));
	assert_int_equal(m.n_entries, 0);
	/* an event without a task (finalState unknown) still removes */
	assert_true(apply_res(&m, "reservationCreated", "WR4", "accepted", "WT4", "assigned"));
	assert_true(apply(&m, "vanished", "WT4", NULL, NULL, "\"finalState\":\"unknown\""));
	assert_int_equal(m.n_entries, 0);
	tr_tray_model_done(&m);
}

static void test_worker_events(void **state) {
	struct tr_tray_model m;
	struct tr_tray_summary s;
	(void)state;

	model_up(&m, 0, NULL);
	assert_true(apply(&m, "activityUpdated", NULL, NULL, NULL,
		"\"eventType\":\"worker.activity.update\",\"worker\":{\"sid\":\"WK1\",\"name\":\"alice\","
		"\"activitySid\":\"WA2\",\"activityName\":\"Break\",\"available\":false,\"version\":\"4\"}"));
	assert_menu_has(&m, "[alice: Break]\n", true);
	assert_menu_has(&m, "Activity: Break >\n  ( ) Available -> set activity WA1\n"
			    "  (*) Break -> set activity WA2\n",
		true);
	tr_tray_model_summary(&m, &s);
	assert_string_equal(s.icon, "user-away");
	assert_string_equal(s.label, "Break · 0 tasks");
	/* the name from the activities when the worker has none */
	assert_true(apply(&m, "attributesUpdated", NULL, NULL, NULL,
		"\"worker\":{\"sid\":\"WK1\",\"name\":\"alice\",\"activitySid\":\"WA3\","
		"\"attributes\":{\"skill\":\"fr\"}}"));
	assert_menu_has(&m, "[alice: Offline]\n", true);
	/* without a worker in it: ignored */
	assert_false(apply(&m, "activityUpdated", NULL, NULL, NULL, "\"eventType\":\"x\""));
	assert_menu_has(&m, "[alice: Offline]\n", true);
	tr_tray_model_done(&m);
}

/* The events the tray does not show leave the menu as it was. */
static void test_events_not_shown(void **state) {
	static const char *const quiet[] = {"channelCapacityUpdated", "channelAvailabilityUpdated",
		"reservationFailed", "tokenWillExpire"};
	static const char *const rows[][4] = {{"WR1", "pending", "WT1", "reserved"}};
	struct tr_tray_model m;
	(void)state;

	model_up(&m, 1, rows);
	for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++) {
		char *before = menu_text(&m, NOW), *after;

		assert_false(apply(&m, quiet[i], strcmp(quiet[i], "reservationFailed") == 0 ? "WT1" : NULL,
			NULL, NULL, "\"channel\":{\"sid\":\"WC1\"},\"failure\":{}"));
		after = menu_text(&m, NOW);
		assert_string_equal(before, after);
		free(before);
		free(after);
	}
	/* garbage */
	assert_false(tr_tray_model_apply(&m, NULL));
	{
		struct tr_client_event e = {.seq = -1};

		assert_false(tr_tray_model_apply(&m, &e));
		e.name = "someFutureEvent";
		assert_false(tr_tray_model_apply(&m, &e));
		assert_int_equal(m.n_entries, 1);
	}
	tr_tray_model_done(&m);
}

/*
 * Every event the daemon publishes (daemon/subs.c's tr_subs_event_names, read from the
 * source) was fed to the model by one of the tests above, which check what it does (runs
 * last). A new event in the daemon fails here until a test feeds it to the tray.
 */
static void test_every_daemon_event_fed(void **state) {
	const char *path = getenv("TR_SUBS_SOURCE");
	char *text = NULL, *p, *end;
	size_t len = 0, n = 0;
	FILE *f;
	(void)state;

	assert_non_null(path);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_true(getdelim(&text, &len, '\0', f) > 0);
	fclose(f);
	p = strstr(text, "tr_subs_event_names[] = {");
	assert_non_null(p);
	end = strstr(p, "NULL,");
	assert_non_null(end);
	while ((p = strchr(p, '"')) && p < end) {
		char *q = strchr(p + 1, '"');
		bool known = false;

		assert_non_null(q);
		*q = '\0';
		for (size_t i = 0; i < n_fed; i++) {
			known = known || strcmp(fed_names[i], p + 1) == 0;
		}
		if (!known) {
			print_error("the daemon publishes '%s', which no test feeds to the tray\n", p + 1);
		}
		assert_true(known);
		n++;
		p = q + 1;
	}
	assert_true(n >= 29);
	free(text);
	for (size_t i = 0; i < n_fed; i++) {
		free(fed_names[i]);
	}
}

/* ------------------------------------------------------------------ gaps and restarts */

static void test_resume_and_gap(void **state) {
	static const char *const rows[][4] = {
		{"WR1", "accepted", "WT1", "assigned"},
		{"WR2", "pending", "WT2", "reserved"},
	};
	static const char *const later[][4] = {{"WR2", "accepted", "WT2", "assigned"}};
	struct tr_tray_model m;
	char *list;
	(void)state;

	model_up(&m, 2, rows);
	assert_true(apply_res(&m, "reservationAccepted", "WR2", "accepted", "WT2", "assigned"));
	int64_t since = m.since;

	/* the daemon restarts: the model keeps its tasks and where the stream was */
	tr_tray_model_set_down(&m, "connection lost", true);
	assert_int_equal(m.n_entries, 2);
	assert_int_equal(m.since, since);
	assert_string_equal(m.epoch, "E1");
	/* resumed in the same run: the replayed events apply on top */
	tr_tray_model_set_connecting(&m);
	assert_true(apply(&m, "completed", "WT1", "WR1", "{\"sid\":\"WT1\",\"status\":\"completed\"}", NULL));
	tr_tray_model_set_up(&m);
	assert_null(tr_tray_model_entry(&m, "WT1"));
	assert_non_null(tr_tray_model_entry(&m, "WT2"));

	/* a gap (another run): the new subscription and the list replace everything; a task that
	 * ended meanwhile is not shown */
	tr_tray_model_set_down(&m, "connection lost", true);
	assert_true(apply_res(&m, "reservationCreated", "WR3", "pending", "WT3", "reserved"));
	tr_tray_model_set_connecting(&m);
	assert_int_equal(tr_tray_model_subscribed(&m, "{\"subscription\":2,\"epoch\":\"E2\",\"seq\":4}", false), 0);
	assert_string_equal(m.epoch, "E2");
	assert_int_equal(m.since, 5);
	list = list_json(1, later);
	assert_int_equal(set_list(&m, list), 0);
	free(list);
	tr_tray_model_set_up(&m);
	assert_int_equal(m.n_entries, 1);
	assert_null(tr_tray_model_entry(&m, "WT3"));
	assert_menu_has(&m, "WT3", false);
	assert_menu_has(&m, "wrap up WT2", true);
	tr_tray_model_done(&m);
}

/* A resumed subscription does not move the resume position: the replay does, event by
 * event, so a connection lost before the replay resumes from the same place. */
static void test_resume_position(void **state) {
	struct tr_tray_model m;
	int64_t since;
	(void)state;

	model_up(&m, 0, NULL);
	assert_true(apply_res(&m, "reservationCreated", "WR1", "pending", "WT1", "reserved"));
	since = m.since;
	tr_tray_model_set_down(&m, "connection lost", true);
	assert_int_equal(tr_tray_model_subscribed(&m, "{\"subscription\":3,\"epoch\":\"E1\",\"seq\":90}", true), 0);
	assert_int_equal(m.since, since);
	/* lost again before any replayed event: the next resume asks for the same */
	tr_tray_model_set_down(&m, "connection lost", true);
	assert_int_equal(m.since, since);
	/* a replayed event moves it */
	assert_true(apply_res(&m, "reservationAccepted", "WR1", "accepted", "WT1", "assigned"));
	assert_true(m.since > since);
	/* a gap: the tasks are forgotten until the list comes */
	tr_tray_model_forget_tasks(&m);
	assert_int_equal(m.n_entries, 0);
	tr_tray_model_set_up(&m);
	assert_menu_has(&m, "[No tasks]", true);
	tr_tray_model_done(&m);
}

/* reservation.list in pages: the entries are the union, in order; one bad page changes
 * nothing. */
static void test_list_pages(void **state) {
	static const char *const one[][4] = {{"WR1", "pending", "WT1", "reserved"}};
	static const char *const two[][4] = {
		{"WR2", "accepted", "WT2", "assigned"}, {"WR3", "wrapping", "WT3", "wrapping"}};
	struct tr_tray_model m;
	char *p1 = list_json(1, one), *p2 = list_json(2, two);
	const char *pages[] = {p1, p2}, *bad[] = {p1, "{\"reservations\":3}"};
	(void)state;

	model_up(&m, 0, NULL);
	assert_int_equal(tr_tray_model_set_reservations(&m, pages, 2), 0);
	assert_int_equal(m.n_entries, 3);
	assert_string_equal(tr_task_sid(m.entries[2].task), "WT3");
	assert_true(tr_tray_model_set_reservations(&m, bad, 2) < 0);
	assert_int_equal(m.n_entries, 3);
	assert_int_equal(tr_tray_model_set_reservations(&m, NULL, 0), 0);
	assert_int_equal(m.n_entries, 0);
	free(p1);
	free(p2);
	tr_tray_model_done(&m);
}

/* After a version conflict the tray reads the object again: held entries follow it. */
static void test_reread(void **state) {
	static const char *const rows[][4] = {
		{"WR1", "pending", "WT1", "reserved"}, {"WR2", "accepted", "WT2", "assigned"}};
	struct tr_tray_model m;
	char *t, *r, *full;
	(void)state;

	model_up(&m, 2, rows);
	/* the reservation was accepted meanwhile */
	t = task_json("WT1", "assigned", "voice", "Support", NOW - 90);
	r = res_json("WR1", "accepted", "WT1", NOW - 90);
	r[strlen(r) - 1] = '\0';
	full = fmt("%s,\"task\":%s}", r, t);
	assert_int_equal(tr_tray_model_update_reservation(&m, full), 0);
	assert_false(tr_tray_entry_pending(tr_tray_model_entry(&m, "WT1")));
	assert_menu_has(&m, "wrap up WT1", true);
	free(full);
	free(r);
	/* it ended meanwhile */
	r = res_json("WR1", "canceled", "WT1", NOW - 90);
	r[strlen(r) - 1] = '\0';
	full = fmt("%s,\"task\":%s}", r, t);
	assert_int_equal(tr_tray_model_update_reservation(&m, full), 0);
	assert_null(tr_tray_model_entry(&m, "WT1"));
	/* one not held is not added */
	assert_int_equal(tr_tray_model_update_reservation(&m, full), 0);
	assert_null(tr_tray_model_entry(&m, "WT1"));
	free(full);
	free(r);
	free(t);
	/* a task read again */
	t = task_json("WT2", "wrapping", "voice", "Support", NOW - 90);
	assert_int_equal(tr_tray_model_update_task(&m, t), 0);
	assert_menu_has(&m, "voice · Support · wrapping", true);
	free(t);
	assert_int_equal(tr_tray_model_update_task(&m, "{\"sid\":\"WT2\",\"status\":\"completed\"}"), 0);
	assert_null(tr_tray_model_entry(&m, "WT2"));
	assert_true(tr_tray_model_update_task(&m, "[1]") < 0);
	assert_true(tr_tray_model_update_reservation(&m, "nope") < 0);
	tr_tray_model_done(&m);
}

/* ------------------------------------------------------------------ errors */

static void test_errors_in_words(void **state) {
	static const struct {
		int errnum, code;
		const char *data, *want;
	} cases[] = {
		{-EREMOTEIO, TR_CLIENT_VERSION_CONFLICT, NULL, "changed meanwhile (version conflict)"},
		{-EREMOTEIO, TR_CLIENT_NOT_FOUND, NULL, "taskrouterd no longer has it"},
		{-EREMOTEIO, TR_CLIENT_NOT_CONNECTED, NULL, "not connected to TaskRouter"},
		{-EREMOTEIO, TR_CLIENT_TIMEOUT, NULL, "did not answer in time"},
		{-EREMOTEIO, TR_CLIENT_RATE_LIMITED, NULL, "rate limiting"},
		{-EREMOTEIO, TR_CLIENT_TOKEN_EXPIRED, NULL, "token expired"},
		{-EREMOTEIO, TR_CLIENT_NETWORK_ERROR, NULL, "could not be reached"},
		{-EREMOTEIO, TR_CLIENT_UPSTREAM_ERROR,
			"{\"httpStatus\":400,\"message\":\"Worker not available\"}",
			"TaskRouter refused it (HTTP 400: Worker not available)"},
		{-EREMOTEIO, TR_CLIENT_UPSTREAM_ERROR, NULL, "TaskRouter refused it"},
		{-EREMOTEIO, TR_CLIENT_INVALID_PARAMS, NULL, "bad sid (invalid params)"},
		{-ETIMEDOUT, 0, NULL, "taskrouterd did not answer in time"},
		{-ECONNRESET, 0, NULL, "connection to taskrouterd was lost"},
	};
	struct tr_tray_model m;
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tr_client_error e = {.errnum = cases[i].errnum, .code = cases[i].code,
			.message = "bad sid", .data = (char *)cases[i].data};
		char *w = tr_tray_error_words(&e);

		assert_non_null(w);
		if (!strstr(w, cases[i].want)) {
			print_error("case %zu: '%s' lacks '%s'\n", i, w, cases[i].want);
		}
		assert_non_null(strstr(w, cases[i].want));
		free(w);
	}
	/* what the failure means for the action */
	{
		struct tr_client_error done = {.errnum = -EREMOTEIO, .code = TR_CLIENT_REFRESH_PENDING},
				       unknown = {.errnum = -EREMOTEIO, .code = TR_CLIENT_TIMEOUT},
				       net = {.errnum = -EREMOTEIO, .code = TR_CLIENT_NETWORK_ERROR},
				       late = {.errnum = -ETIMEDOUT},
				       refused = {.errnum = -EREMOTEIO, .code = TR_CLIENT_UPSTREAM_ERROR};
		char *w = tr_tray_error_words(&done);

		assert_non_null(strstr(w, "it was done"));
		free(w);
		assert_int_equal(tr_tray_error_outcome(&done), TR_TRAY_OUTCOME_DONE);
		assert_int_equal(tr_tray_error_outcome(&unknown), TR_TRAY_OUTCOME_UNKNOWN);
		assert_int_equal(tr_tray_error_outcome(&net), TR_TRAY_OUTCOME_UNKNOWN);
		assert_int_equal(tr_tray_error_outcome(&late), TR_TRAY_OUTCOME_UNKNOWN);
		assert_int_equal(tr_tray_error_outcome(&refused), TR_TRAY_OUTCOME_FAILED);
		assert_int_equal(tr_tray_error_outcome(NULL), TR_TRAY_OUTCOME_FAILED);
		assert_string_equal(tr_tray_outcome_text(TR_TRAY_OUTCOME_DONE), "done");
		assert_string_equal(tr_tray_outcome_text(TR_TRAY_OUTCOME_UNKNOWN), "outcome unknown");
		assert_string_equal(tr_tray_outcome_text(TR_TRAY_OUTCOME_FAILED), "failed");
		model_up(&m, 0, NULL);
		assert_non_null(strstr(tr_tray_model_set_error(&m, "Accept", &done, NOW), "Accept done: "));
		assert_non_null(strstr(tr_tray_model_set_error(&m, "Accept", &late, NOW),
			"Accept outcome unknown: "));
		tr_tray_model_done(&m);
	}
	/* in the menu for a minute */
	model_up(&m, 0, NULL);
	{
		struct tr_client_error e = {.errnum = -EREMOTEIO, .code = TR_CLIENT_VERSION_CONFLICT,
			.message = "version conflict"};
		const char *text = tr_tray_model_set_error(&m, "Accept", &e, NOW);

		assert_non_null(strstr(text, "Accept failed: it changed meanwhile"));
	}
	assert_menu_has(&m, "[alice: Available]\n[Error: Accept failed: it changed meanwhile", true);
	{
		char *later = menu_text(&m, NOW + TR_TRAY_ERROR_SECONDS);

		assert_null(strstr(later, "Error:"));
		free(later);
	}
	tr_tray_model_done(&m);
}

/* ------------------------------------------------------------------ small things */

static void test_text_helpers(void **state) {
	char buf[32], *p;
	(void)state;

	tr_tray_age_text(0, buf, sizeof(buf));
	assert_string_equal(buf, "<1 min");
	tr_tray_age_text(59, buf, sizeof(buf));
	assert_string_equal(buf, "<1 min");
	tr_tray_age_text(60, buf, sizeof(buf));
	assert_string_equal(buf, "1 min");
	tr_tray_age_text(3599, buf, sizeof(buf));
	assert_string_equal(buf, "59 min");
	tr_tray_age_text(3600 * 25 + 5 * 60, buf, sizeof(buf));
	assert_string_equal(buf, "25 h 05 min");

	p = tr_tray_json_pretty("{\"a\":[1,{\"b\":\"x,{y}:\\\"\"}],\"e\":{},\"f\":[]}");
	assert_string_equal(p, "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"x,{y}:\\\"\"\n    }\n  ],\n"
			       "  \"e\": {},\n  \"f\": []\n}");
	free(p);
	assert_null(tr_tray_json_pretty(NULL));
	for (int a = TR_TRAY_ACT_NONE; a <= TR_TRAY_ACT_QUIT; a++) {
		assert_string_not_equal(tr_tray_action_name((enum tr_tray_action)a), "?");
	}
}

static void test_autostart(void **state) {
	char dir[] = "/tmp/tr-tray-XXXXXX", *path = NULL, *text = NULL, *want;
	size_t len = 0;
	struct stat st;
	FILE *f;
	(void)state;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(tr_tray_autostart_set(true, dir, "/opt/tr/bin/taskrouter-tray", &path), 0);
	want = fmt("%s/autostart/" TR_TRAY_DESKTOP_ID, dir);
	assert_string_equal(path, want);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_true(getdelim(&text, &len, '\0', f) > 0);
	fclose(f);
	assert_non_null(strstr(text, "\nExec=/opt/tr/bin/taskrouter-tray\n"));
	assert_non_null(strstr(text, "\nHidden=false\n"));
	assert_non_null(strstr(text, "\nX-GNOME-Autostart-enabled=true\n"));
	free(text);
	text = NULL;
	free(path);
	path = NULL;
	/* off: the same file, disabled */
	assert_int_equal(tr_tray_autostart_set(false, dir, "taskrouter-tray", &path), 0);
	f = fopen(want, "r");
	assert_non_null(f);
	assert_true(getdelim(&text, &len, '\0', f) > 0);
	fclose(f);
	assert_non_null(strstr(text, "\nHidden=true\n"));
	assert_non_null(strstr(text, "\nX-GNOME-Autostart-enabled=false\n"));
	free(text);
	free(path);
	/* refused without a place or a command */
	assert_int_equal(tr_tray_autostart_set(true, dir, "", NULL), -EINVAL);
	{
		char *blocked = fmt("%s/file", dir);

		f = fopen(blocked, "w");
		assert_non_null(f);
		fclose(f);
		assert_int_equal(tr_tray_autostart_set(true, blocked, "x", NULL), -ENOTDIR);
		unlink(blocked);
		free(blocked);
	}
	unlink(want);
	free(want);
	want = fmt("%s/autostart", dir);
	assert_int_equal(rmdir(want), 0);
	free(want);
	assert_int_equal(rmdir(dir), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_menu),
		cmocka_unit_test(test_empty_and_bad_answers),
		cmocka_unit_test(test_connection_states),
		cmocka_unit_test(test_reservation_lifecycle),
		cmocka_unit_test(test_reservation_ends),
		cmocka_unit_test(test_task_events),
		cmocka_unit_test(test_worker_events),
		cmocka_unit_test(test_events_not_shown),
		cmocka_unit_test(test_resume_and_gap),
		cmocka_unit_test(test_resume_position),
		cmocka_unit_test(test_list_pages),
		cmocka_unit_test(test_reread),
		cmocka_unit_test(test_errors_in_words),
		cmocka_unit_test(test_text_helpers),
		cmocka_unit_test(test_autostart),
		/* last: every event the daemon publishes was fed by a test above */
		cmocka_unit_test(test_every_daemon_event_fed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
