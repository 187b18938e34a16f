/*
 * tray.c — taskrouter-tray: the agent's tray icon on top of taskrouterd.
 *
 * A StatusNotifierItem (libayatana-appindicator) whose icon and label show the worker's
 * state, whose menu accepts, rejects, wraps up and completes tasks and switches the
 * activity, and desktop notifications (libnotify) for new reservations. Everything it shows
 * comes from the model (tray-model.c); this file renders the model and turns clicks into
 * asynchronous calls on the daemon's socket (libtaskrouter on the GLib loop). It follows the
 * daemon through restarts: the event stream is resumed where it stopped, and when the daemon
 * cannot replay it (another run, events no longer kept) the tasks are listed again.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib-unix.h>
#include <gtk/gtk.h>
#include <libayatana-appindicator/app-indicator.h>
#include <libnotify/notify.h>

#include <taskrouter/client-glib.h>
#include <taskrouter/client.h>

#include "autostart.h"
#include "tr-build.h"
#include "tray-model.h"

#define PROG "taskrouter-tray"
#define CALL_TIMEOUT_MS 20000   /* above the daemon's upstream REST timeout (15 s) */
#define CONNECT_TIMEOUT_MS 500   /* a local socket: a daemon that does not accept is busy */
#define REFETCH_MIN_MS 1000
#define REFETCH_MAX_MS 30000
#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 5000
#define AGE_REFRESH_S 60
#define WATCHER_NAME "org.kde.StatusNotifierWatcher"
#define IND_CHECK_MS 1500   /* how long the icon may take to register with the panel */

struct tray;

/* A notification for a pending reservation. */
struct note {
	struct tray *t;
	char *res_sid;
	NotifyNotification *n;
	bool closed; /* closed by the server or the agent: not shown again */
};

struct tray {
	char *socket_path;
	bool notifications;
	struct tr_tray_model model;
	struct tr_client *c;
	struct tr_client_glib *g;
	unsigned generation;  /* bumps on every connection, so late replies are told apart */
	int answers_missing;  /* replies still awaited before the model is up */
	guint retry_id;
	guint retry_ms;
	guint age_id;
	guint error_id;
	AppIndicator *ind;
	guint watcher_watch;   /* who owns org.kde.StatusNotifierWatcher (the panel) */
	bool watcher_up;
	guint ind_check_id;    /* the icon's registration is checked after the panel appears */
	GtkWidget *menu;
	char *menu_text; /* what the menu shows now, to skip rebuilding the same */
	bool building;
	bool in_activate; /* inside a menu item's "activate": rebuild the menu later */
	bool resuming;  /* the events.subscribe in flight asked for a replay */
	bool relist;    /* the tasks must be listed (a gap, or the last list failed) */
	bool refetch;   /* a state fetch failed or a "ready" came meanwhile: fetch again */
	guint refetch_id; /* the retry of a failed state fetch */
	guint refetch_ms;
	GPtrArray *pages; /* reservation.list's pages so far (JSON text) */
	guint lost_id;  /* the connection is being closed (from the loop, not a callback) */
	guint render_id; /* a menu rebuild after a click, from the loop */
	GHashTable *notes; /* reservation sid -> struct note */
	bool server_actions;
	bool server_caps_known;
	GMainLoop *loop;
};

static void refresh(struct tray *t);
static void connect_now(struct tray *t);
static void answer_in(struct tray *t);
static void lost(struct tray *t, const char *why, bool not_running);
static void render_later(struct tray *t);

static int64_t now_s(void) {
	return (int64_t)time(NULL);
}

static void say(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void say(const char *fmt, ...) {
	va_list ap;

	va_start(ap, fmt);
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ------------------------------------------------------------------ calls */

/* What a reply belongs to. */
struct call {
	struct tray *t;
	unsigned generation;
	char *what; /* "Accept", ...: for the error message */
	void (*done)(struct tray *t, const char *result_json);
	bool state;  /* a state fetch: a failure is logged and retried, not shown as an action's */
	/* an action: what to read again after a version conflict (method and its params) */
	char *reread_method, *reread_params;
};

static void call_free(struct call *k) {
	g_free(k->what);
	g_free(k->reread_method);
	g_free(k->reread_params);
	g_free(k);
}

static void show_error(struct tray *t, const char *what, const struct tr_client_error *err) {
	const char *text = tr_tray_model_set_error(&t->model, what, err, now_s());
	char *summary, *words;
	NotifyNotification *n;
	GError *e = NULL;

	say("%s", text ? text : "an action failed");
	if (t->error_id) {
		g_source_remove(t->error_id);
	}
	t->error_id = 0;
	refresh(t);
	if (!t->notifications || !text) {
		return;
	}
	summary = g_strdup_printf(PROG ": %s %s", what, tr_tray_outcome_text(tr_tray_error_outcome(err)));
	words = tr_tray_error_words(err);
	n = notify_notification_new(summary, words, "dialog-warning");
	if (!notify_notification_show(n, &e)) {
		say("cannot show a notification: %s", e ? e->message : "?");
		g_clear_error(&e);
	}
	g_object_unref(n);
	free(words);
	g_free(summary);
}

static void fetch_state(struct tray *t, bool relist);

static gboolean on_refetch(gpointer userdata) {
	struct tray *t = userdata;

	t->refetch_id = 0;
	if (t->c && !t->lost_id) {
		fetch_state(t, false);
	}
	return G_SOURCE_REMOVE;
}

/* A state fetch failed: keep what the model has and fetch again, at the next "ready" when
 * the session is not there (-32002) or the token expired (-32009), else after a backoff. */
static void state_failed(struct tray *t, const char *what, const struct tr_client_error *err) {
	char *words = tr_tray_error_words(err);
	bool wait_ready = err->errnum == -EREMOTEIO && (err->code == TR_CLIENT_NOT_CONNECTED ||
							       err->code == TR_CLIENT_TOKEN_EXPIRED);

	say("%s failed: %s; %s", what, words ? words : "?",
		wait_ready ? "again when the session is ready" : "retrying");
	free(words);
	t->refetch = true;
	if (!wait_ready && !t->refetch_id) {
		t->refetch_id = g_timeout_add(t->refetch_ms, on_refetch, t);
		t->refetch_ms = MIN(t->refetch_ms * 2, REFETCH_MAX_MS);
	}
}

static void call_k(struct tray *t, struct call *k, const char *method, const char *params);

static void on_reply(struct tr_client *c, const char *result_json, const struct tr_client_error *err,
	void *userdata) {
	struct call *k = userdata;
	struct tray *t = k->t;
	(void)c;

	if (k->generation != t->generation) {
		call_free(k); /* a reply for a connection that is gone */
		return;
	}
	if (err && err->errnum != -EREMOTEIO && err->errnum != -ETIMEDOUT) {
		/* the connection died: the dead callback says so and reconnects (which fetches
		 * again); an action's click is lost with it, which the menu's first line shows */
	} else if (err && k->state) {
		state_failed(t, k->what, err);
		answer_in(t);
	} else if (err) {
		show_error(t, k->what, err);
		if (err->errnum == -EREMOTEIO && err->code == TR_CLIENT_VERSION_CONFLICT &&
				k->reread_method) {
			/* the daemon refreshed its copy without an event: read it to show it */
			struct call *r = g_new0(struct call, 1);

			r->what = g_strdup("Reading it again");
			r->done = k->done;
			call_k(t, r, k->reread_method, k->reread_params);
		}
	} else if (k->done) {
		k->done(t, result_json);
	}
	call_free(k);
}

/* Send k's call (k is consumed). A failure to send is an action's error, or for a state
 * fetch a reason to reconnect. */
static void call_k(struct tray *t, struct call *k, const char *method, const char *params) {
	struct tr_client_error err = {.errnum = -ENOTCONN, .message = "not connected to taskrouterd"};
	int r = -ENOTCONN;

	k->t = t;
	k->generation = t->generation;
	if (t->c && !t->lost_id) {
		r = tr_client_call_async(t->c, method, params, CALL_TIMEOUT_MS, on_reply, k, NULL);
		if (r == 0) {
			return;
		}
		err.errnum = r;
		err.message = (char *)g_strerror(-r);
	}
	if (k->state) {
		if (t->c && !t->lost_id) {
			lost(t, g_strerror(-r), false);
		}
	} else {
		show_error(t, k->what, &err);
	}
	call_free(k);
}

/* A state fetch: done gets the result. */
static void fetch(struct tray *t, const char *what, const char *method, const char *params,
	void (*done)(struct tray *t, const char *result_json)) {
	struct call *k = g_new0(struct call, 1);

	k->what = g_strdup(what);
	k->done = done;
	k->state = true;
	call_k(t, k, method, params);
}

/* An action; after a version conflict, reread_method with reread_params (may be NULL) is
 * read and given to reread_done. */
static void action(struct tray *t, const char *what, const char *method, const char *params,
	const char *reread_method, const char *reread_params,
	void (*reread_done)(struct tray *t, const char *result_json)) {
	struct call *k = g_new0(struct call, 1);

	k->what = g_strdup(what);
	k->reread_method = g_strdup(reread_method);
	k->reread_params = g_strdup(reread_params);
	k->done = reread_done;
	call_k(t, k, method, params);
}

/* params {"<key>": "<value>"} */
/* s as a JSON string, quotes included (g_strescape's octal escapes are not JSON). */
static char *json_quote(const char *s) {
	GString *q = g_string_new("\"");

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			g_string_append_c(q, '\\');
			g_string_append_c(q, (char)ch);
		} else if (ch < 0x20) {
			g_string_append_printf(q, "\\u%04x", ch);
		} else {
			g_string_append_c(q, (char)ch); /* UTF-8 passes as it is */
		}
	}
	g_string_append_c(q, '"');
	return g_string_free(q, FALSE);
}

static char *params1(const char *key, const char *value) {
	char *v = json_quote(value);
	char *p = g_strdup_printf("{\"%s\":%s}", key, v);

	g_free(v);
	return p;
}

/* ------------------------------------------------------------------ actions */

static void show_attributes(struct tray *t, const char *task_sid) {
	const struct tr_tray_entry *e = tr_tray_model_entry(&t->model, task_sid);
	GtkWidget *win, *grid, *scroll, *view;
	char *attrs, *pretty, *title, age[32];
	const char *rows[][2] = {
		{"Channel", tr_task_channel(e ? e->task : NULL)},
		{"Queue", tr_task_queue_name(e ? e->task : NULL)},
		{"Status", tr_task_status(e ? e->task : NULL)},
		{"Age", age},
		{"Priority", NULL},
		{"Reservation", e && e->res ? tr_reservation_sid(e->res) : NULL},
	};
	char prio[32];
	int row = 0;

	if (!e) {
		return; /* gone since the menu was built */
	}
	tr_tray_age_text(tr_tray_entry_age(e, now_s()), age, sizeof(age));
	snprintf(prio, sizeof(prio), "%lld", (long long)tr_task_priority(e->task));
	rows[4][1] = prio;
	title = g_strdup_printf("Task %s", task_sid);
	win = gtk_window_new(GTK_WINDOW_TOPLEVEL);
	gtk_window_set_title(GTK_WINDOW(win), title);
	gtk_window_set_default_size(GTK_WINDOW(win), 460, 380);
	grid = gtk_grid_new();
	gtk_grid_set_row_spacing(GTK_GRID(grid), 4);
	gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
	gtk_container_set_border_width(GTK_CONTAINER(grid), 12);
	for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
		GtkWidget *k = gtk_label_new(rows[i][0]), *v = gtk_label_new(rows[i][1] ? rows[i][1] : "—");

		gtk_widget_set_halign(k, GTK_ALIGN_END);
		gtk_widget_set_halign(v, GTK_ALIGN_START);
		gtk_grid_attach(GTK_GRID(grid), k, 0, row, 1, 1);
		gtk_grid_attach(GTK_GRID(grid), v, 1, row++, 1, 1);
	}
	attrs = tr_task_get_json(e->task, "attributes");
	pretty = attrs ? tr_tray_json_pretty(attrs) : NULL;
	view = gtk_text_view_new();
	gtk_text_view_set_editable(GTK_TEXT_VIEW(view), FALSE);
	gtk_text_view_set_monospace(GTK_TEXT_VIEW(view), TRUE);
	gtk_text_buffer_set_text(gtk_text_view_get_buffer(GTK_TEXT_VIEW(view)),
		pretty ? pretty : (attrs ? attrs : "{}"), -1);
	scroll = gtk_scrolled_window_new(NULL, NULL);
	gtk_widget_set_hexpand(scroll, TRUE);
	gtk_widget_set_vexpand(scroll, TRUE);
	gtk_container_add(GTK_CONTAINER(scroll), view);
	{
		GtkWidget *k = gtk_label_new("Attributes");

		gtk_widget_set_halign(k, GTK_ALIGN_END);
		gtk_widget_set_valign(k, GTK_ALIGN_START);
		gtk_grid_attach(GTK_GRID(grid), k, 0, row, 1, 1);
	}
	gtk_grid_attach(GTK_GRID(grid), scroll, 1, row, 1, 1);
	gtk_container_add(GTK_CONTAINER(win), grid);
	gtk_widget_show_all(win);
	say("attributes of %s shown", task_sid);
	free(pretty);
	free(attrs);
	g_free(title);
}

static void on_reread_res(struct tray *t, const char *json) {
	if (tr_tray_model_update_reservation(&t->model, json) == 0) {
		refresh(t);
	}
}

static void on_reread_task(struct tray *t, const char *json) {
	if (tr_tray_model_update_task(&t->model, json) == 0) {
		refresh(t);
	}
}

static void on_reread_worker(struct tray *t, const char *json) {
	if (tr_tray_model_set_worker(&t->model, json) == 0) {
		refresh(t);
	}
}

static void act(struct tray *t, enum tr_tray_action a, const char *arg) {
	char *p = NULL;

	say("%s %s", tr_tray_action_name(a), arg ? arg : "");
	switch (a) {
	case TR_TRAY_ACT_ACCEPT:
		p = params1("sid", arg);
		action(t, "Accept", "reservation.accept", p, "reservation.get", p, on_reread_res);
		break;
	case TR_TRAY_ACT_REJECT:
		p = params1("sid", arg);
		action(t, "Reject", "reservation.reject", p, "reservation.get", p, on_reread_res);
		break;
	case TR_TRAY_ACT_WRAP_UP:
		p = params1("sid", arg);
		action(t, "Wrap up", "task.wrapUp", p, "task.get", p, on_reread_task);
		break;
	case TR_TRAY_ACT_COMPLETE: {
		char *v = json_quote(arg), *get = params1("sid", arg);

		p = g_strdup_printf("{\"sid\":%s,\"reason\":\"completed from the tray\"}", v);
		g_free(v);
		action(t, "Complete", "task.complete", p, "task.get", get, on_reread_task);
		g_free(get);
		break;
	}
	case TR_TRAY_ACT_ACTIVITY:
		p = params1("activity", arg);
		action(t, "Changing the activity", "worker.setActivity", p, "worker.get", NULL,
			on_reread_worker);
		break;
	case TR_TRAY_ACT_ATTRIBUTES:
		show_attributes(t, arg);
		break;
	case TR_TRAY_ACT_QUIT:
		g_main_loop_quit(t->loop);
		break;
	case TR_TRAY_ACT_NONE:
		break;
	}
	g_free(p);
}

/* ------------------------------------------------------------------ the menu */

static void on_activate(GtkMenuItem *item, gpointer userdata) {
	struct tray *t = userdata;
	enum tr_tray_action a = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(item), "tr-action"));
	char *arg = g_strdup(g_object_get_data(G_OBJECT(item), "tr-arg"));

	if (t->building) {
		g_free(arg);
		return;
	}
	/* the menu is rebuilt from the loop, not under the item's own signal */
	t->in_activate = true;
	if (a != TR_TRAY_ACT_ACTIVITY || !t->model.worker ||
			g_strcmp0(arg, tr_worker_activity_sid(t->model.worker)) != 0) {
		act(t, a, arg);
	}
	t->in_activate = false;
	if (a == TR_TRAY_ACT_ACTIVITY) {
		/* GTK toggled the item: the mark follows the worker's activity when it changes
		 * (and goes back on an error, or for the current activity) */
		g_free(t->menu_text);
		t->menu_text = NULL;
		render_later(t);
	}
	g_free(arg);
}

static GtkWidget *item_widget(struct tray *t, const struct tr_tray_item *it) {
	GtkWidget *w;

	switch (it->kind) {
	case TR_TRAY_ITEM_SEPARATOR:
		return gtk_separator_menu_item_new();
	case TR_TRAY_ITEM_RADIO:
		w = gtk_check_menu_item_new_with_label(it->label);
		gtk_check_menu_item_set_draw_as_radio(GTK_CHECK_MENU_ITEM(w), TRUE);
		gtk_check_menu_item_set_active(GTK_CHECK_MENU_ITEM(w), it->checked);
		break;
	default:
		w = gtk_menu_item_new_with_label(it->label);
	}
	gtk_widget_set_sensitive(w, it->sensitive);
	if (it->action != TR_TRAY_ACT_NONE) {
		g_object_set_data(G_OBJECT(w), "tr-action", GINT_TO_POINTER(it->action));
		g_object_set_data_full(G_OBJECT(w), "tr-arg", g_strdup(it->arg), g_free);
		g_signal_connect(w, "activate", G_CALLBACK(on_activate), t);
	}
	return w;
}

/* Append the items from *i on to shell, up to the matching END; *i ends past it. */
static void build_items(struct tray *t, GtkWidget *shell, const struct tr_tray_menu *m, size_t *i) {
	while (*i < m->n) {
		const struct tr_tray_item *it = &m->items[(*i)++];
		GtkWidget *w;

		if (it->kind == TR_TRAY_ITEM_END) {
			return;
		}
		w = item_widget(t, it);
		if (it->kind == TR_TRAY_ITEM_SUBMENU) {
			GtkWidget *sub = gtk_menu_new();

			build_items(t, sub, m, i);
			gtk_menu_item_set_submenu(GTK_MENU_ITEM(w), sub);
		}
		gtk_menu_shell_append(GTK_MENU_SHELL(shell), w);
		gtk_widget_show(w);
	}
}

static void remove_child(GtkWidget *w, gpointer shell) {
	gtk_container_remove(GTK_CONTAINER(shell), w);
}

static void render_menu(struct tray *t);

static gboolean on_render(gpointer userdata) {
	struct tray *t = userdata;

	t->render_id = 0;
	render_menu(t);
	return G_SOURCE_REMOVE;
}

static void render_later(struct tray *t) {
	if (!t->render_id) {
		t->render_id = g_idle_add(on_render, t);
	}
}

static void render_menu(struct tray *t) {
	struct tr_tray_menu m;
	char *text;
	size_t i = 0;

	if (t->in_activate) {
		render_later(t);
		return;
	}
	if (tr_tray_model_menu(&t->model, now_s(), &m) < 0) {
		say("out of memory building the menu");
		return;
	}
	text = tr_tray_menu_to_text(&m);
	if (text && t->menu_text && strcmp(text, t->menu_text) == 0) {
		free(text);
		tr_tray_menu_done(&m);
		return;
	}
	g_free(t->menu_text);
	t->menu_text = g_strdup(text);
	free(text);
	t->building = true;
	gtk_container_foreach(GTK_CONTAINER(t->menu), remove_child, t->menu);
	build_items(t, t->menu, &m, &i);
	t->building = false;
	tr_tray_menu_done(&m);
	say("menu updated");
}

/* ------------------------------------------------------------------ notifications */

static void note_free(gpointer p) {
	struct note *n = p;

	if (n->n) {
		g_signal_handlers_disconnect_by_data(n->n, n);
		if (!n->closed) {
			(void)notify_notification_close(n->n, NULL);
		}
		g_object_unref(n->n);
	}
	g_free(n->res_sid);
	g_free(n);
}

static void on_note_action(NotifyNotification *nn, char *action, gpointer userdata) {
	struct note *n = userdata;
	char *sid = g_strdup(n->res_sid);

	/* libnotify uses the notification after this returns, and act() may drop the note */
	g_object_ref(nn);
	n->closed = true; /* the server closes a notification whose action was invoked */
	act(n->t, strcmp(action, "accept") == 0 ? TR_TRAY_ACT_ACCEPT : TR_TRAY_ACT_REJECT, sid);
	g_free(sid);
	g_object_unref(nn);
}

static void on_note_closed(NotifyNotification *nn, gpointer userdata) {
	struct note *n = userdata;
	(void)nn;

	n->closed = true;
}

static void server_caps(struct tray *t) {
	GList *caps;

	if (t->server_caps_known) {
		return;
	}
	caps = notify_get_server_caps();
	t->server_actions = g_list_find_custom(caps, "actions", (GCompareFunc)strcmp) != NULL;
	t->server_caps_known = caps != NULL; /* none: no server yet, ask again next time */
	g_list_free_full(caps, g_free);
}

static void note_new(struct tray *t, const struct tr_tray_entry *e) {
	const char *res_sid = tr_reservation_sid(e->res);
	struct note *n = g_new0(struct note, 1);
	char *summary, *body;
	int64_t left = tr_tray_entry_seconds_left(e, now_s());
	GError *err = NULL;

	n->t = t;
	n->res_sid = g_strdup(res_sid);
	g_hash_table_insert(t->notes, n->res_sid, n);
	summary = g_strdup_printf("New %s task", tr_task_channel(e->task) ? tr_task_channel(e->task) : "");
	body = g_strdup_printf("Queue %s — %s",
		tr_task_queue_name(e->task) ? tr_task_queue_name(e->task) : "?", tr_task_sid(e->task));
	n->n = notify_notification_new(summary, body, "call-start");
	notify_notification_set_timeout(n->n, left > 0 ? (gint)MIN(left * 1000, G_MAXINT) : NOTIFY_EXPIRES_DEFAULT);
	notify_notification_set_category(n->n, "x-taskrouter.reservation");
	server_caps(t);
	if (t->server_actions) {
		notify_notification_add_action(n->n, "accept", "Accept", on_note_action, n, NULL);
		notify_notification_add_action(n->n, "reject", "Reject", on_note_action, n, NULL);
	}
	g_signal_connect(n->n, "closed", G_CALLBACK(on_note_closed), n);
	if (!notify_notification_show(n->n, &err)) {
		say("cannot show a notification: %s", err ? err->message : "?");
		g_clear_error(&err);
		n->closed = true;
	}
	g_free(summary);
	g_free(body);
}

/* One notification per pending reservation, closed once it is no longer pending. */
static void sync_notes(struct tray *t) {
	GHashTableIter it;
	gpointer key, value;

	g_hash_table_iter_init(&it, t->notes);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		const struct tr_tray_entry *e = tr_tray_model_entry_by_res(&t->model, key);

		/* kept while the daemon is away: the stream resumes where it was */
		if (t->model.conn != TR_TRAY_CONN_UP || tr_tray_entry_pending(e)) {
			continue;
		}
		g_hash_table_iter_remove(&it); /* note_free closes it */
	}
	if (!t->notifications || t->model.conn != TR_TRAY_CONN_UP) {
		return;
	}
	for (size_t i = 0; i < t->model.n_entries; i++) {
		const struct tr_tray_entry *e = &t->model.entries[i];

		if (tr_tray_entry_pending(e) && tr_reservation_sid(e->res) &&
				!g_hash_table_contains(t->notes, tr_reservation_sid(e->res))) {
			note_new(t, e);
		}
	}
}

/* ------------------------------------------------------------------ rendering */

static gboolean on_age_tick(gpointer userdata) {
	struct tray *t = userdata;

	render_menu(t);
	return G_SOURCE_CONTINUE;
}

static gboolean on_error_expired(gpointer userdata) {
	struct tray *t = userdata;

	t->error_id = 0;
	render_menu(t);
	return G_SOURCE_REMOVE;
}

static void refresh(struct tray *t) {
	struct tr_tray_summary s;

	tr_tray_model_summary(&t->model, &s);
	app_indicator_set_icon_full(t->ind, s.icon, s.title);
	app_indicator_set_label(t->ind, s.label, "Available · 99 tasks · 9 waiting");
	app_indicator_set_title(t->ind, s.title);
	app_indicator_set_status(t->ind, s.attention ? APP_INDICATOR_STATUS_ATTENTION
						     : APP_INDICATOR_STATUS_ACTIVE);
	render_menu(t);
	sync_notes(t);
	/* ages move on by the minute while tasks are shown; nothing wakes up otherwise */
	bool shown = t->model.n_entries > 0 && t->model.conn == TR_TRAY_CONN_UP;

	if (shown && !t->age_id) {
		t->age_id = g_timeout_add_seconds(AGE_REFRESH_S, on_age_tick, t);
	} else if (!shown && t->age_id) {
		g_source_remove(t->age_id);
		t->age_id = 0;
	}
	if (t->model.error && t->model.error_until > now_s() && !t->error_id) {
		t->error_id = g_timeout_add_seconds(
			(guint)(t->model.error_until - now_s() + 1), on_error_expired, t);
	}
}

/* ------------------------------------------------------------------ the connection */

static void disconnect(struct tray *t) {
	t->generation++;
	t->g = tr_client_glib_detach(t->g);
	t->c = tr_client_close(t->c);
	if (t->refetch_id) {
		g_source_remove(t->refetch_id);
		t->refetch_id = 0;
	}
	g_ptr_array_set_size(t->pages, 0);
	t->answers_missing = 0;
}

static gboolean on_retry(gpointer userdata) {
	struct tray *t = userdata;

	t->retry_id = 0;
	connect_now(t);
	return G_SOURCE_REMOVE;
}

static void retry_later(struct tray *t) {
	if (!t->retry_id) {
		t->retry_id = g_timeout_add(t->retry_ms, on_retry, t);
		t->retry_ms = MIN(t->retry_ms * 2, RETRY_MAX_MS);
	}
}

static gboolean on_lost(gpointer userdata) {
	struct tray *t = userdata;

	t->lost_id = 0;
	disconnect(t);
	retry_later(t);
	return G_SOURCE_REMOVE;
}

/*
 * The connection is no good: show it, and close it from the loop (this may run inside one
 * of the client's callbacks, where the client must not be closed). Replies still coming are
 * ignored from here on (the generation moved). not_running: the daemon is not there (as
 * opposed to refusing us or answering nonsense).
 */
static void lost(struct tray *t, const char *why, bool not_running) {
	if (t->lost_id) {
		return;
	}
	say("connection to %s lost: %s", t->socket_path, why);
	t->generation++;
	tr_tray_model_set_down(&t->model, why, not_running);
	refresh(t);
	t->lost_id = g_idle_add(on_lost, t);
}

/* errnos that mean nobody is there (or no longer) */
static bool errno_not_running(int errnum) {
	return errnum == -ENOENT || errnum == -ECONNREFUSED || errnum == -ECONNRESET ||
	       errnum == -EPIPE || errnum == -ENOTCONN || errnum == -ECONNABORTED;
}

static void on_dead(struct tr_client *c, int errnum, void *userdata) {
	struct tray *t = userdata;
	(void)c;

	lost(t, errnum == -ECONNRESET || errnum == -EPIPE || errnum == -ENOTCONN ? "connection lost"
										 : g_strerror(-errnum),
		errno_not_running(errnum));
}

static void answer_in(struct tray *t) {
	if (t->answers_missing > 0 && --t->answers_missing == 0) {
		if (t->model.conn != TR_TRAY_CONN_UP) {
			tr_tray_model_set_up(&t->model);
			t->retry_ms = RETRY_MIN_MS;
			say("ready: %zu tasks, activity %s", t->model.n_entries,
				t->model.worker && tr_worker_activity_name(t->model.worker)
					? tr_worker_activity_name(t->model.worker)
					: "unknown");
		}
		if (!t->refetch) {
			t->refetch_ms = REFETCH_MIN_MS;
		} else if (!t->refetch_id && t->model.session &&
			   strcmp(t->model.session, "ready") == 0) {
			/* a "ready" came while fetching, and nothing else is planned: again soon */
			t->refetch_id = g_timeout_add(t->refetch_ms, on_refetch, t);
			t->refetch_ms = MIN(t->refetch_ms * 2, REFETCH_MAX_MS);
		}
	}
	refresh(t);
}

static void bad_answer(struct tray *t, const char *what) {
	say("taskrouterd's answer to %s cannot be read; reconnecting", what);
	lost(t, "unreadable answer", false);
}

static void on_reservations(struct tray *t, const char *json) {
	struct tr_result *r = NULL;
	const char *next = NULL;
	char *after;

	if (tr_result_parse(json, &r) < 0) {
		bad_answer(t, "reservation.list");
		return;
	}
	g_ptr_array_add(t->pages, g_strdup(json));
	next = tr_result_get_string(r, "next");
	if (next) {
		/* another page: the list is whole only with the last one */
		after = params1("after", next);
		fetch(t, "Listing the tasks", "reservation.list", after, on_reservations);
		g_free(after);
		tr_result_free(r);
		return;
	}
	tr_result_free(r);
	if (tr_tray_model_set_reservations(&t->model, (const char *const *)t->pages->pdata,
		    t->pages->len) < 0) {
		bad_answer(t, "reservation.list");
		return;
	}
	g_ptr_array_set_size(t->pages, 0);
	t->relist = false;
	answer_in(t);
}

static void on_worker(struct tray *t, const char *json) {
	if (tr_tray_model_set_worker(&t->model, json) < 0) {
		bad_answer(t, "worker.get");
		return;
	}
	answer_in(t);
}

static void on_activities(struct tray *t, const char *json) {
	if (tr_tray_model_set_activities(&t->model, json) < 0) {
		bad_answer(t, "activity.list");
		return;
	}
	answer_in(t);
}

static void on_status(struct tray *t, const char *json) {
	if (tr_tray_model_set_status(&t->model, json) < 0) {
		bad_answer(t, "daemon.status");
		return;
	}
	answer_in(t);
}

/* The answers that make the model whole: the session state, the worker and the activities
 * always; the reservations (with their tasks, every page) when the stream could not be
 * resumed or the last list failed. */
static void fetch_state(struct tray *t, bool relist) {
	if (t->answers_missing > 0) {
		t->refetch = true; /* answers are still out: again once they are in */
		return;
	}
	if (t->refetch_id) {
		g_source_remove(t->refetch_id);
		t->refetch_id = 0;
	}
	t->relist = relist || t->relist;
	t->refetch = false;
	g_ptr_array_set_size(t->pages, 0);
	t->answers_missing = t->relist ? 4 : 3;
	fetch(t, "Reading the session", "daemon.status", NULL, on_status);
	fetch(t, "Reading the worker", "worker.get", NULL, on_worker);
	fetch(t, "Reading the activities", "activity.list", NULL, on_activities);
	if (t->relist) {
		fetch(t, "Listing the tasks", "reservation.list", NULL, on_reservations);
	}
}

static void subscribe(struct tray *t, bool resume);

static void on_subscribe_reply(struct tr_client *c, const char *result_json,
	const struct tr_client_error *err, void *userdata) {
	struct call *k = userdata;
	struct tray *t = k->t;
	bool resumed = t->resuming;
	(void)c;

	if (k->generation != t->generation) {
		call_free(k);
		return;
	}
	call_free(k);
	if (err && err->errnum == -EREMOTEIO && err->code == TR_CLIENT_REPLAY_GONE) {
		/* the gap rule: the events since our position are lost; what the model knew of the
		 * tasks is not true any more. Start from now and list again. */
		say("events since %lld cannot be replayed (%s); listing again", (long long)t->model.since,
			err->message ? err->message : "replay gone");
		tr_tray_model_forget_tasks(&t->model);
		subscribe(t, false);
		return;
	}
	if (err) {
		if (err->errnum == -EREMOTEIO) {
			say("events.subscribe refused: %s", err->message ? err->message : "?");
		}
		lost(t, err->errnum == -EREMOTEIO ? "subscription refused" : g_strerror(-err->errnum),
			false);
		return;
	}
	if (tr_tray_model_subscribed(&t->model, result_json, resumed) < 0) {
		bad_answer(t, "events.subscribe");
		return;
	}
	say("subscribed (epoch %s, %s)", t->model.epoch ? t->model.epoch : "-",
		resumed ? "resumed" : "from now");
	if (!resumed) {
		tr_tray_model_forget_tasks(&t->model); /* the list says what is true now */
	}
	fetch_state(t, !resumed);
}

static void subscribe(struct tray *t, bool resume) {
	struct call *k = g_new0(struct call, 1);
	char *params = NULL;
	int r;

	k->t = t;
	k->generation = t->generation;
	k->what = g_strdup("Subscribing");
	resume = resume && t->model.since >= 0 && t->model.epoch;
	if (resume) {
		char *e = json_quote(t->model.epoch);

		params = g_strdup_printf("{\"since\":%lld,\"epoch\":%s}", (long long)t->model.since, e);
		g_free(e);
	}
	t->resuming = resume;
	r = tr_client_call_async(t->c, "events.subscribe", params, CALL_TIMEOUT_MS,
		on_subscribe_reply, k, NULL);
	g_free(params);
	if (r < 0) {
		call_free(k);
		lost(t, g_strerror(-r), errno_not_running(r));
	}
}

static void on_event(struct tr_client *c, const struct tr_client_event *ev, void *userdata) {
	struct tray *t = userdata;
	(void)c;

	if (t->lost_id) {
		return; /* being closed: the resume position stays at the last event applied */
	}
	if (tr_tray_model_apply(&t->model, ev)) {
		refresh(t);
	}
	if (strcmp(ev->name, "ready") == 0 || strcmp(ev->name, "tokenUpdated") == 0) {
		/* a new upstream session: the worker and the workspace's activities as it sees
		 * them, and the tasks when a list is due (once the answers out are in) */
		fetch_state(t, false);
	}
}

static void connect_now(struct tray *t) {
	int r;

	r = tr_client_connect(t->socket_path, CONNECT_TIMEOUT_MS, &t->c);
	if (r == 0) {
		r = tr_client_glib_attach(t->c, NULL, on_dead, t, &t->g);
		if (r < 0) {
			t->c = tr_client_close(t->c);
		}
	}
	if (r < 0) {
		t->c = NULL;
		if (t->model.conn != TR_TRAY_CONN_DOWN || !t->model.conn_why ||
				strcmp(t->model.conn_why, g_strerror(-r)) != 0) {
			say("cannot connect to %s: %s; retrying", t->socket_path, g_strerror(-r));
		}
		tr_tray_model_set_down(&t->model, g_strerror(-r), errno_not_running(r));
		refresh(t);
		retry_later(t);
		return;
	}
	say("connected to %s", t->socket_path);
	tr_client_set_event_cb(t->c, on_event, t);
	tr_tray_model_set_connecting(&t->model);
	refresh(t);
	subscribe(t, true);
}

/* ------------------------------------------------------------------ the icon */

static void indicator_new(struct tray *t) {
	t->ind = app_indicator_new(PROG, "network-offline", APP_INDICATOR_CATEGORY_COMMUNICATIONS);
	app_indicator_set_attention_icon_full(t->ind, "call-start", "a reservation is waiting");
	app_indicator_set_menu(t->ind, GTK_MENU(t->menu));
}

/*
 * libayatana-appindicator 0.5.90 can miss its registration with the panel: when the panel's
 * watcher is already on the bus, it may build its watcher proxy before its own bus
 * connection is set (g_dbus_proxy_new: assertion 'G_IS_DBUS_CONNECTION (connection)'
 * failed). It then exports the item but never tells the watcher, until the watcher
 * restarts, and the icon is missing. (Newer versions create the proxy once connected.) So
 * when the watcher is there and the item still says it is not connected after IND_CHECK_MS,
 * we make the registration call ourselves, on the same bus connection (the watcher takes
 * the sender's name and the item's path, as from the library).
 */
#define ITEM_PATH "/org/ayatana/NotificationItem/taskrouter_tray" /* the id, '-' -> '_' */

static void on_registered(GObject *bus, GAsyncResult *res, gpointer userdata) {
	GError *err = NULL;
	GVariant *v = g_dbus_connection_call_finish(G_DBUS_CONNECTION(bus), res, &err);
	(void)userdata;

	if (v) {
		g_variant_unref(v);
		say("tray icon registered with the panel");
	} else {
		say("cannot register the tray icon with the panel: %s", err ? err->message : "?");
		g_clear_error(&err);
	}
}

static gboolean on_indicator_check(gpointer userdata) {
	struct tray *t = userdata;
	gboolean connected = FALSE;
	GDBusConnection *bus;

	t->ind_check_id = 0;
	g_object_get(t->ind, "connected", &connected, NULL);
	if (connected || !t->watcher_up) {
		return G_SOURCE_REMOVE;
	}
	bus = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, NULL);
	if (!bus) {
		return G_SOURCE_REMOVE;
	}
	say("the tray icon did not register with the panel; registering it");
	g_dbus_connection_call(bus, WATCHER_NAME, "/StatusNotifierWatcher", WATCHER_NAME,
		"RegisterStatusNotifierItem", g_variant_new("(s)", ITEM_PATH), NULL,
		G_DBUS_CALL_FLAGS_NONE, -1, NULL, on_registered, NULL);
	g_object_unref(bus);
	return G_SOURCE_REMOVE;
}

static void on_watcher_appeared(GDBusConnection *bus, const gchar *name, const gchar *owner,
	gpointer userdata) {
	struct tray *t = userdata;
	(void)bus;
	(void)name;
	(void)owner;

	t->watcher_up = true;
	if (!t->ind_check_id) {
		t->ind_check_id = g_timeout_add(IND_CHECK_MS, on_indicator_check, t);
	}
}

static void on_watcher_vanished(GDBusConnection *bus, const gchar *name, gpointer userdata) {
	struct tray *t = userdata;
	(void)bus;
	(void)name;

	t->watcher_up = false;
}

/* ------------------------------------------------------------------ main */

static gboolean on_signal(gpointer userdata) {
	struct tray *t = userdata;

	say("signal received, leaving");
	g_main_loop_quit(t->loop);
	return G_SOURCE_CONTINUE;
}

#ifndef TR_TRAY_EXEC
#define TR_TRAY_EXEC "taskrouter-tray"
#endif

/* --autostart=on|off: the user's autostart entry. Exit status 0, 1 on failure, 2 usage. */
static int set_autostart(const char *how) {
	bool on = g_strcmp0(how, "on") == 0;
	char *path = NULL;
	int r;

	if (!on && g_strcmp0(how, "off") != 0) {
		fprintf(stderr, PROG ": --autostart takes on or off, not '%s'\n", how);
		return 2;
	}
	r = tr_tray_autostart_set(on, NULL, TR_TRAY_EXEC, &path);
	if (r < 0) {
		fprintf(stderr, PROG ": cannot write the autostart entry: %s\n", g_strerror(-r));
		return 1;
	}
	printf("%s: autostart %s (%s)\n", PROG, on ? "on" : "off", path);
	free(path);
	return 0;
}

int main(int argc, char **argv) {
	struct tray t = {.retry_ms = RETRY_MIN_MS, .refetch_ms = REFETCH_MIN_MS, .notifications = true};
	gboolean no_notes = FALSE, version = FALSE;
	char *socket_path = NULL, *autostart = NULL;
	GError *err = NULL;
	GOptionContext *ctx;
	GOptionEntry entries[] = {
		{"socket", 's', 0, G_OPTION_ARG_FILENAME, &socket_path,
			"taskrouterd's socket (default: as taskrouterd)", "PATH"},
		{"no-notifications", 0, 0, G_OPTION_ARG_NONE, &no_notes,
			"no desktop notifications for new reservations", NULL},
		{"autostart", 0, 0, G_OPTION_ARG_STRING, &autostart,
			"start (on) or do not start (off) with the desktop session, for this user", "on|off"},
		{"version", 0, 0, G_OPTION_ARG_NONE, &version, "print the version and exit", NULL},
		{NULL, 0, 0, 0, NULL, NULL, NULL},
	};

	ctx = g_option_context_new("- the TaskRouter worker's tray icon, on top of taskrouterd");
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_add_group(ctx, gtk_get_option_group(FALSE));
	if (!g_option_context_parse(ctx, &argc, &argv, &err) || argc > 1) {
		fprintf(stderr, PROG ": %s (see --help)\n", err ? err->message : "unexpected argument");
		g_clear_error(&err);
		g_option_context_free(ctx);
		return 2;
	}
	g_option_context_free(ctx);
	if (version) {
		printf(PROG " %s\n", TR_VERSION);
		return 0;
	}
	if (autostart) {
		int r = set_autostart(autostart);

		g_free(autostart);
		return r;
	}
	if (!gtk_init_check(&argc, &argv)) {
		fprintf(stderr, PROG ": cannot open the display (is DISPLAY set?)\n");
		return 1;
	}
	t.notifications = !no_notes && notify_init(PROG);
	t.socket_path = socket_path ? socket_path : tr_client_default_socket_path();
	if (!t.socket_path) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	tr_tray_model_init(&t.model);
	t.notes = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, note_free);
	t.pages = g_ptr_array_new_with_free_func(g_free);
	t.loop = g_main_loop_new(NULL, FALSE);
	t.menu = gtk_menu_new();
	g_object_ref_sink(t.menu);
	indicator_new(&t);
	t.watcher_watch = g_bus_watch_name(G_BUS_TYPE_SESSION, WATCHER_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
		on_watcher_appeared, on_watcher_vanished, &t, NULL);
	g_unix_signal_add(SIGTERM, on_signal, &t);
	g_unix_signal_add(SIGINT, on_signal, &t);

	connect_now(&t);
	g_main_loop_run(t.loop);

	if (t.retry_id) {
		g_source_remove(t.retry_id);
	}
	if (t.lost_id) {
		g_source_remove(t.lost_id);
	}
	if (t.render_id) {
		g_source_remove(t.render_id);
	}
	if (t.age_id) {
		g_source_remove(t.age_id);
	}
	if (t.error_id) {
		g_source_remove(t.error_id);
	}
	disconnect(&t);
	g_ptr_array_free(t.pages, TRUE);
	g_hash_table_destroy(t.notes);
	g_bus_unwatch_name(t.watcher_watch);
	if (t.ind_check_id) {
		g_source_remove(t.ind_check_id);
	}
	g_object_unref(t.ind);
	gtk_widget_destroy(t.menu);
	g_object_unref(t.menu);
	g_main_loop_unref(t.loop);
	tr_tray_model_done(&t.model);
	g_free(t.menu_text);
	if (socket_path) {
		g_free(socket_path);
	} else {
		free(t.socket_path);
	}
	if (t.notifications) {
		notify_uninit();
	}
	say("bye");
	return 0;
}
