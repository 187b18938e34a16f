/*
 * test-tray.c — taskrouter-tray end to end (issue #16): the real tray against taskrouterd and
 * taskrouter-sim, on an X server (Xvfb) and a D-Bus bus of the test's own. This process plays
 * the desktop around it: an org.kde.StatusNotifierWatcher the tray's indicator registers with
 * and an org.freedesktop.Notifications server that records what the tray notifies and clicks
 * its buttons. The menu is read and clicked through com.canonical.dbusmenu, as a panel would,
 * and the attributes window is photographed on the X server. The tray's side of all this is
 * specified in the tray's contract (the menu's items, the notifications, the log lines).
 *
 * Nothing sleeps: the tray prints "taskrouter-tray: menu updated" after each rebuild of its
 * menu, and its menu server signals each change; a wait for a state re-reads the menu on
 * either, until a deadline. The fakes run in a thread of their own (own GMainContext), so they
 * answer while this thread blocks in the harness, and wake it through an eventfd.
 *
 * Environment (from meson): TR_TRAY_APP the tray; TR_TRAY_LSAN_SUPP LeakSanitizer
 * suppressions for the tray's third-party libraries (GTK, fontconfig, ...), given to the tray
 * only; TR_TRAY_SCREENSHOT where the screenshot goes. Without Xvfb or dbus-daemon in PATH every
 * test is skipped (the program says "1..0 # SKIP ...").
 */
#include "common.h"

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <gio/gio.h>

#include <X11/Xatom.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/Xdamage.h>

#define WATCHER_NAME "org.kde.StatusNotifierWatcher"
#define WATCHER_PATH "/StatusNotifierWatcher"
#define NOTIFY_NAME "org.freedesktop.Notifications"
#define NOTIFY_PATH "/org/freedesktop/Notifications"
#define ITEM_IFACE "org.kde.StatusNotifierItem"
#define DBUSMENU "com.canonical.dbusmenu"
#define MENU_UPDATED "taskrouter-tray: menu updated"
#define RES_TIMEOUT_S 120 /* the reservations' timeout: the notifications' expiry follows it */

/* What the fake notification server was asked to show. */
struct note {
	uint32_t id;
	uint32_t replaces_id;
	char *app_name;
	char *summary;
	char *body;
	char **actions; /* key, label, key, label, ...; NULL-terminated */
	int32_t expire_timeout;
};

/* One group's desktop: X server, bus, the fakes and what they recorded. */
static struct {
	char *xvfb_bin, *bus_bin; /* found in PATH */
	char *dir;            /* temporary: the logs, the bus's config and socket */
	struct trt_proc xvfb, bus;
	char display[32];
	char *bus_address;
	GDBusConnection *conn;
	GMainContext *ctx; /* the fakes' */
	GMainLoop *loop;
	GThread *thread;
	int wake_fd; /* eventfd: the fakes recorded something */
	Display *x;  /* ours, for the screenshot (opened on first use) */

	GMutex lock; /* for what follows: written by the fakes' thread */
	char *error; /* the fakes' thread could not start */
	int names;   /* well-known names owned; -1 once one was lost */
	unsigned n_registrations;
	char *item_service, *item_path; /* the last item registered */
	GPtrArray *items;               /* RegisteredStatusNotifierItems: "service/path" */
	GArray *watches;                /* bus name watches of the items (guint) */
	bool host;
	GPtrArray *notes; /* struct note *, in the order of the Notify calls */
	GArray *closed;   /* uint32_t: the ids of the CloseNotification calls */
	uint32_t last_id;
	unsigned menu_signals; /* com.canonical.dbusmenu signals seen */
} fx;

/* The tray of the current test. */
static struct {
	const char *bin;
	struct trt_proc proc; /* stdout and stderr both in proc.out */
	size_t scanned;       /* bytes of proc.out looked at for lines */
	unsigned updates;     /* "menu updated" lines */
	char *service, *path; /* its StatusNotifierItem */
	char *menu;           /* its dbusmenu object */
} tray;

/* ---------------------------------------------------------------------------------------
 * The fakes (their own thread and GMainContext)
 */

static const char fakes_xml[] =
	"<node>"
	" <interface name='org.kde.StatusNotifierWatcher'>"
	"  <method name='RegisterStatusNotifierItem'>"
	"   <arg name='service' type='s' direction='in'/>"
	"  </method>"
	"  <method name='RegisterStatusNotifierHost'>"
	"   <arg name='service' type='s' direction='in'/>"
	"  </method>"
	"  <property name='RegisteredStatusNotifierItems' type='as' access='read'/>"
	"  <property name='IsStatusNotifierHostRegistered' type='b' access='read'/>"
	"  <property name='ProtocolVersion' type='i' access='read'/>"
	"  <signal name='StatusNotifierItemRegistered'><arg type='s'/></signal>"
	"  <signal name='StatusNotifierItemUnregistered'><arg type='s'/></signal>"
	"  <signal name='StatusNotifierHostRegistered'/>"
	" </interface>"
	" <interface name='org.freedesktop.Notifications'>"
	"  <method name='GetCapabilities'><arg type='as' direction='out'/></method>"
	"  <method name='Notify'>"
	"   <arg name='app_name' type='s' direction='in'/>"
	"   <arg name='replaces_id' type='u' direction='in'/>"
	"   <arg name='app_icon' type='s' direction='in'/>"
	"   <arg name='summary' type='s' direction='in'/>"
	"   <arg name='body' type='s' direction='in'/>"
	"   <arg name='actions' type='as' direction='in'/>"
	"   <arg name='hints' type='a{sv}' direction='in'/>"
	"   <arg name='expire_timeout' type='i' direction='in'/>"
	"   <arg name='id' type='u' direction='out'/>"
	"  </method>"
	"  <method name='CloseNotification'><arg name='id' type='u' direction='in'/></method>"
	"  <method name='GetServerInformation'>"
	"   <arg name='name' type='s' direction='out'/>"
	"   <arg name='vendor' type='s' direction='out'/>"
	"   <arg name='version' type='s' direction='out'/>"
	"   <arg name='spec_version' type='s' direction='out'/>"
	"  </method>"
	"  <signal name='NotificationClosed'>"
	"   <arg name='id' type='u'/><arg name='reason' type='u'/>"
	"  </signal>"
	"  <signal name='ActionInvoked'>"
	"   <arg name='id' type='u'/><arg name='action_key' type='s'/>"
	"  </signal>"
	" </interface>"
	"</node>";

static void wake(void) {
	uint64_t one = 1;
	(void)!write(fx.wake_fd, &one, sizeof(one));
}

static void emit(const char *path, const char *iface, const char *signal, GVariant *params) {
	GError *err = NULL;
	if (!g_dbus_connection_emit_signal(fx.conn, NULL, path, iface, signal, params, &err)) {
		fprintf(stderr, "# emitting %s.%s: %s\n", iface, signal, err->message);
		g_error_free(err);
	}
}

static void note_free(gpointer p) {
	struct note *n = p;
	g_free(n->app_name);
	g_free(n->summary);
	g_free(n->body);
	g_strfreev(n->actions);
	g_free(n);
}

/* An item's bus name went away: it is no longer registered (what a real watcher does). */
static void on_item_vanished(GDBusConnection *conn, const gchar *name, gpointer data) {
	const char *entry = data;
	bool had = false;
	(void)conn;
	(void)name;
	g_mutex_lock(&fx.lock);
	for (guint i = 0; i < fx.items->len && !had; i++) {
		if (strcmp(g_ptr_array_index(fx.items, i), entry) == 0) {
			g_ptr_array_remove_index(fx.items, i);
			had = true;
		}
	}
	g_mutex_unlock(&fx.lock);
	if (had) {
		emit(WATCHER_PATH, WATCHER_NAME, "StatusNotifierItemUnregistered",
			g_variant_new("(s)", entry));
	}
}

static void watcher_call(const char *sender, const char *method, GVariant *params,
	GDBusMethodInvocation *inv) {
	const char *arg = NULL, *service, *path;
	char *entry;
	bool known = false;

	g_variant_get(params, "(&s)", &arg);
	if (strcmp(method, "RegisterStatusNotifierHost") == 0) {
		g_mutex_lock(&fx.lock);
		fx.host = true;
		g_mutex_unlock(&fx.lock);
		g_dbus_method_invocation_return_value(inv, NULL);
		emit(WATCHER_PATH, WATCHER_NAME, "StatusNotifierHostRegistered", NULL);
		wake();
		return;
	}
	/* RegisterStatusNotifierItem: an object path on the caller's connection (what
	 * libayatana-appindicator sends), or a bus name whose item is at /StatusNotifierItem
	 * (the KDE convention). Watchers keep "service/path". */
	service = arg[0] == '/' ? sender : arg;
	path = arg[0] == '/' ? arg : "/StatusNotifierItem";
	if (!g_dbus_is_name(service) || !g_variant_is_object_path(path)) {
		g_dbus_method_invocation_return_error(inv, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
			"not a bus name or an object path: %s", arg);
		return;
	}
	entry = g_strconcat(service, path, NULL);
	g_mutex_lock(&fx.lock);
	for (guint i = 0; i < fx.items->len && !known; i++) {
		known = strcmp(g_ptr_array_index(fx.items, i), entry) == 0;
	}
	if (!known) {
		g_ptr_array_add(fx.items, g_strdup(entry));
	}
	g_free(fx.item_service);
	g_free(fx.item_path);
	fx.item_service = g_strdup(service);
	fx.item_path = g_strdup(path);
	fx.n_registrations++;
	g_mutex_unlock(&fx.lock);

	if (!known) {
		guint watch = g_bus_watch_name_on_connection(fx.conn, service,
			G_BUS_NAME_WATCHER_FLAGS_NONE, NULL, on_item_vanished, g_strdup(entry),
			g_free);
		g_mutex_lock(&fx.lock);
		g_array_append_val(fx.watches, watch);
		g_mutex_unlock(&fx.lock);
	}
	g_dbus_method_invocation_return_value(inv, NULL);
	emit(WATCHER_PATH, WATCHER_NAME, "StatusNotifierItemRegistered",
		g_variant_new("(s)", entry));
	g_free(entry);
	wake();
}

static void notifications_call(const char *method, GVariant *params, GDBusMethodInvocation *inv) {
	if (strcmp(method, "GetCapabilities") == 0) {
		static const char *const caps[] = {"actions", "body", NULL};
		g_dbus_method_invocation_return_value(inv, g_variant_new("(^as)", caps));
	} else if (strcmp(method, "GetServerInformation") == 0) {
		g_dbus_method_invocation_return_value(inv, g_variant_new("(ssss)",
			"trt-fake-notifications", "taskrouterd tests", "1.0", "1.2"));
	} else if (strcmp(method, "Notify") == 0) {
		struct note *n = g_new0(struct note, 1);
		GVariant *hints = NULL;
		const char *icon = NULL;
		uint32_t id;

		g_variant_get(params, "(su&sss^as@a{sv}i)", &n->app_name, &n->replaces_id, &icon,
			&n->summary, &n->body, &n->actions, &hints, &n->expire_timeout);
		g_variant_unref(hints);
		g_mutex_lock(&fx.lock);
		n->id = id = n->replaces_id ? n->replaces_id : ++fx.last_id;
		g_ptr_array_add(fx.notes, n);
		g_mutex_unlock(&fx.lock);
		g_dbus_method_invocation_return_value(inv, g_variant_new("(u)", id));
		wake();
	} else if (strcmp(method, "CloseNotification") == 0) {
		uint32_t id;

		g_variant_get(params, "(u)", &id);
		g_mutex_lock(&fx.lock);
		g_array_append_val(fx.closed, id);
		g_mutex_unlock(&fx.lock);
		g_dbus_method_invocation_return_value(inv, NULL);
		/* 3: closed by a call to CloseNotification */
		emit(NOTIFY_PATH, NOTIFY_NAME, "NotificationClosed", g_variant_new("(uu)", id, 3));
		wake();
	} else {
		g_dbus_method_invocation_return_error(inv, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
			"no method %s", method);
	}
}

static void on_call(GDBusConnection *conn, const gchar *sender, const gchar *path,
	const gchar *iface, const gchar *method, GVariant *params, GDBusMethodInvocation *inv,
	gpointer data) {
	(void)conn;
	(void)path;
	(void)data;
	if (strcmp(iface, WATCHER_NAME) == 0) {
		watcher_call(sender, method, params, inv);
	} else {
		notifications_call(method, params, inv);
	}
}

static GVariant *on_get_property(GDBusConnection *conn, const gchar *sender, const gchar *path,
	const gchar *iface, const gchar *prop, GError **error, gpointer data) {
	(void)conn;
	(void)sender;
	(void)path;
	(void)iface;
	(void)data;
	if (strcmp(prop, "RegisteredStatusNotifierItems") == 0) {
		GVariantBuilder b;
		g_variant_builder_init(&b, G_VARIANT_TYPE("as"));
		g_mutex_lock(&fx.lock);
		for (guint i = 0; i < fx.items->len; i++) {
			g_variant_builder_add(&b, "s", (const char *)g_ptr_array_index(fx.items, i));
		}
		g_mutex_unlock(&fx.lock);
		return g_variant_builder_end(&b);
	}
	if (strcmp(prop, "IsStatusNotifierHostRegistered") == 0) {
		return g_variant_new_boolean(TRUE);
	}
	if (strcmp(prop, "ProtocolVersion") == 0) {
		return g_variant_new_int32(0);
	}
	g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "no property %s", prop);
	return NULL;
}

static void on_menu_signal(GDBusConnection *conn, const gchar *sender, const gchar *path,
	const gchar *iface, const gchar *signal, GVariant *params, gpointer data) {
	(void)conn;
	(void)sender;
	(void)path;
	(void)iface;
	(void)signal;
	(void)params;
	(void)data;
	g_mutex_lock(&fx.lock);
	fx.menu_signals++;
	g_mutex_unlock(&fx.lock);
	wake();
}

static void on_name_acquired(GDBusConnection *conn, const gchar *name, gpointer data) {
	(void)conn;
	(void)name;
	(void)data;
	g_mutex_lock(&fx.lock);
	if (fx.names >= 0) {
		fx.names++;
	}
	g_mutex_unlock(&fx.lock);
	wake();
}

static void on_name_lost(GDBusConnection *conn, const gchar *name, gpointer data) {
	(void)conn;
	(void)data;
	g_mutex_lock(&fx.lock);
	if (fx.names >= 0) {
		fprintf(stderr, "# the fakes lost (or could not own) %s\n", name);
	}
	fx.names = -1;
	g_mutex_unlock(&fx.lock);
	wake();
}

/* The fakes' thread: registers the two objects, owns their names and serves them until
 * fx.loop is quit. */
static gpointer fakes_main(gpointer data) {
	static const GDBusInterfaceVTable vtable = {
		.method_call = on_call, .get_property = on_get_property};
	GDBusNodeInfo *node;
	GError *err = NULL;
	guint reg[2] = {0, 0}, own[2] = {0, 0}, sub = 0;
	(void)data;

	g_main_context_push_thread_default(fx.ctx);
	node = g_dbus_node_info_new_for_xml(fakes_xml, &err);
	if (node) {
		reg[0] = g_dbus_connection_register_object(fx.conn, WATCHER_PATH,
			g_dbus_node_info_lookup_interface(node, WATCHER_NAME), &vtable, NULL, NULL,
			&err);
	}
	if (reg[0]) {
		reg[1] = g_dbus_connection_register_object(fx.conn, NOTIFY_PATH,
			g_dbus_node_info_lookup_interface(node, NOTIFY_NAME), &vtable, NULL, NULL,
			&err);
	}
	if (reg[1]) {
		sub = g_dbus_connection_signal_subscribe(fx.conn, NULL, DBUSMENU, NULL, NULL, NULL,
			G_DBUS_SIGNAL_FLAGS_NONE, on_menu_signal, NULL, NULL);
		own[0] = g_bus_own_name_on_connection(fx.conn, WATCHER_NAME,
			G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE, on_name_acquired, on_name_lost, NULL,
			NULL);
		own[1] = g_bus_own_name_on_connection(fx.conn, NOTIFY_NAME,
			G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE, on_name_acquired, on_name_lost, NULL,
			NULL);
		g_main_loop_run(fx.loop);
	} else {
		g_mutex_lock(&fx.lock);
		fx.error = g_strdup(err ? err->message : "?");
		g_mutex_unlock(&fx.lock);
		wake();
	}
	for (size_t i = 0; i < 2; i++) {
		if (own[i]) {
			g_bus_unown_name(own[i]);
		}
		if (reg[i]) {
			g_dbus_connection_unregister_object(fx.conn, reg[i]);
		}
	}
	if (sub) {
		g_dbus_connection_signal_unsubscribe(fx.conn, sub);
	}
	g_mutex_lock(&fx.lock);
	for (guint i = 0; i < fx.watches->len; i++) {
		g_bus_unwatch_name(g_array_index(fx.watches, guint, i));
	}
	g_array_set_size(fx.watches, 0);
	g_mutex_unlock(&fx.lock);
	while (g_main_context_iteration(fx.ctx, FALSE)) {
	}
	if (node) {
		g_dbus_node_info_unref(node);
	}
	g_clear_error(&err);
	g_main_context_pop_thread_default(fx.ctx);
	return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Waiting (this thread): for the fakes, the tray's output and its menu
 */

/* Print what the tray wrote, as TAP comments (its last 60 lines). */
static void tray_dump(void) {
	const char *s = tray.proc.out.data, *p;
	size_t lines = 0;

	if (!s || !*s) {
		fprintf(stderr, "# (taskrouter-tray wrote nothing)\n");
		return;
	}
	p = s + strlen(s);
	if (p[-1] == '\n') {
		p--;
	}
	while (p > s && lines < 60) {
		p--;
		if (*p == '\n') {
			lines++;
		}
	}
	if (*p == '\n') {
		p++;
	}
	fprintf(stderr, "# taskrouter-tray's output%s:\n", p > s ? " (its end)" : "");
	while (*p) {
		size_t n = strcspn(p, "\n");
		fprintf(stderr, "#   %.*s\n", (int)n, p);
		p += n + (p[n] == '\n');
	}
}

/* Count the complete "menu updated" lines the tray wrote since the last look. */
static void tray_scan(void) {
	const char *data = tray.proc.out.data;
	size_t len = tray.proc.out.len;

	while (data && tray.scanned < len) {
		const char *line = data + tray.scanned;
		const char *nl = memchr(line, '\n', len - tray.scanned);
		if (!nl) {
			break;
		}
		if ((size_t)(nl - line) == strlen(MENU_UPDATED) &&
			memcmp(line, MENU_UPDATED, strlen(MENU_UPDATED)) == 0) {
			tray.updates++;
		}
		tray.scanned += (size_t)(nl - line) + 1;
	}
}

/* Block until the fakes wake us, the tray writes something or the deadline passes; extra_fd
 * (-1: none) too. A tray that closes its output (exits) fails the test. */
static void wait_wakeup(int64_t deadline, int extra_fd) {
	struct pollfd p[3] = {
		{.fd = fx.wake_fd, .events = POLLIN},
		{.fd = tray.proc.out.fd, .events = POLLIN},
		{.fd = extra_fd, .events = POLLIN},
	};

	if (poll(p, 3, trt_remaining(deadline)) <= 0) {
		return;
	}
	if (p[0].revents & POLLIN) {
		uint64_t v;
		(void)!read(fx.wake_fd, &v, sizeof(v));
	}
	if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
		if (trt_rbuf_read(&tray.proc.out, 0) == 0) {
			close(tray.proc.out.fd);
			tray.proc.out.fd = -1;
			fprintf(stderr, "# taskrouter-tray closed its output: it exited\n");
			tray_dump();
			fail();
		}
	}
}

/* Wait until cond(arg), called with fx.lock held, holds; false at the deadline. */
static bool wait_until(bool (*cond)(const void *arg), const void *arg, int64_t deadline) {
	for (;;) {
		bool ok;
		tray_scan();
		g_mutex_lock(&fx.lock);
		ok = cond(arg);
		g_mutex_unlock(&fx.lock);
		if (ok) {
			return true;
		}
		if (trt_remaining(deadline) == 0) {
			return false;
		}
		wait_wakeup(deadline, -1);
	}
}

/* ---------------------------------------------------------------------------------------
 * The menu, as com.canonical.dbusmenu shows it
 */

struct item {
	int32_t id;
	char *label;
	char *type;             /* "standard" or "separator" */
	char *toggle_type;      /* "radio", "checkmark" or "" */
	char *children_display; /* "submenu" or "" */
	bool enabled, visible;
	int32_t toggle_state; /* -1 when absent */
	struct item **kids;
	size_t n;
};

static void item_free(struct item *it) {
	if (!it) {
		return;
	}
	for (size_t i = 0; i < it->n; i++) {
		item_free(it->kids[i]);
	}
	g_free(it->kids);
	g_free(it->label);
	g_free(it->type);
	g_free(it->toggle_type);
	g_free(it->children_display);
	g_free(it);
}

/* One (ia{sv}av) of GetLayout, with the protocol's defaults for absent properties. */
static struct item *item_parse(GVariant *v) {
	struct item *it = g_new0(struct item, 1);
	GVariant *props = NULL, *kids = NULL;
	gboolean b;
	size_t n;

	g_variant_get(v, "(i@a{sv}@av)", &it->id, &props, &kids);
	it->enabled = it->visible = true;
	it->toggle_state = -1;
	if (!g_variant_lookup(props, "label", "s", &it->label)) {
		it->label = g_strdup("");
	}
	if (!g_variant_lookup(props, "type", "s", &it->type)) {
		it->type = g_strdup("standard");
	}
	if (!g_variant_lookup(props, "toggle-type", "s", &it->toggle_type)) {
		it->toggle_type = g_strdup("");
	}
	if (!g_variant_lookup(props, "children-display", "s", &it->children_display)) {
		it->children_display = g_strdup("");
	}
	(void)g_variant_lookup(props, "toggle-state", "i", &it->toggle_state);
	if (g_variant_lookup(props, "enabled", "b", &b)) {
		it->enabled = b;
	}
	if (g_variant_lookup(props, "visible", "b", &b)) {
		it->visible = b;
	}
	n = g_variant_n_children(kids);
	it->kids = g_new0(struct item *, n + 1);
	for (size_t i = 0; i < n; i++) {
		GVariant *c = g_variant_get_child_value(kids, i), *inner = g_variant_get_variant(c);
		if (g_variant_is_of_type(inner, G_VARIANT_TYPE("(ia{sv}av)"))) {
			it->kids[it->n++] = item_parse(inner);
		}
		g_variant_unref(inner);
		g_variant_unref(c);
	}
	g_variant_unref(props);
	g_variant_unref(kids);
	return it;
}

/* GetLayout(0, -1, []): the whole menu (caller frees), or NULL (said on stderr). */
static struct item *menu_read(void) {
	GError *err = NULL;
	GVariant *r, *layout;
	struct item *root;

	r = g_dbus_connection_call_sync(fx.conn, tray.service, tray.menu, DBUSMENU, "GetLayout",
		g_variant_new("(ii@as)", 0, -1, g_variant_new_strv(NULL, 0)),
		G_VARIANT_TYPE("(u(ia{sv}av))"), G_DBUS_CALL_FLAGS_NONE, trt_ms(5000), NULL, &err);
	if (!r) {
		fprintf(stderr, "# GetLayout on %s %s: %s\n", tray.service, tray.menu, err->message);
		g_error_free(err);
		return NULL;
	}
	layout = g_variant_get_child_value(r, 1);
	root = item_parse(layout);
	g_variant_unref(layout);
	g_variant_unref(r);
	return root;
}

static bool is_separator(const struct item *it) {
	return strcmp(it->type, "separator") == 0;
}

static bool is_submenu(const struct item *it) {
	return strcmp(it->children_display, "submenu") == 0 || it->n > 0;
}

static void menu_print(const struct item *it, int depth) {
	if (!it) {
		fprintf(stderr, "#   (no menu)\n");
		return;
	}
	for (size_t i = 0; i < it->n; i++) {
		const struct item *k = it->kids[i];
		fprintf(stderr, "#   %*s%s%s%s%s%s\n", depth * 2, "",
			is_separator(k) ? "--------" : k->label, k->enabled ? "" : " [disabled]",
			k->visible ? "" : " [hidden]",
			strcmp(k->toggle_type, "radio") != 0 ? ""
			: k->toggle_state == 1               ? " (*)"
							     : " ( )",
			is_submenu(k) ? " >" : "");
		menu_print(k, depth + 1);
	}
}

/* The visible children of it, in order, into out (at most max); returns how many. */
static size_t visible(const struct item *it, const struct item **out, size_t max) {
	size_t n = 0;
	for (size_t i = 0; it && i < it->n && n < max; i++) {
		if (it->kids[i]->visible) {
			out[n++] = it->kids[i];
		}
	}
	return n;
}

/* A visible child labelled exactly label (or starting with it, with prefix); NULL if none. */
static const struct item *child(const struct item *it, const char *label, bool prefix) {
	for (size_t i = 0; it && i < it->n; i++) {
		const struct item *k = it->kids[i];
		if (k->visible && !is_separator(k) &&
			(prefix ? g_str_has_prefix(k->label, label) : strcmp(k->label, label) == 0)) {
			return k;
		}
	}
	return NULL;
}

/* The status line: the first visible item. */
static const char *status_line(const struct item *m) {
	const struct item *v[1];
	return visible(m, v, 1) == 1 ? v[0]->label : "";
}

/* A task's age in whole minutes: "<1 min", "12 min", "1 h 05 min". */
static bool is_age(const char *s) {
	size_t n = strspn(s, "0123456789");
	if (strcmp(s, "<1 min") == 0) {
		return true;
	}
	if (n == 0) {
		return false;
	}
	if (strcmp(s + n, " min") == 0) {
		return true;
	}
	s += n;
	return g_str_has_prefix(s, " h ") && g_ascii_isdigit(s[3]) && g_ascii_isdigit(s[4]) &&
	       strcmp(s + 5, " min") == 0;
}

/* The submenu of a task: "<channel> · <queue> · <status> · <age>"; NULL if none. */
static const struct item *task_menu(
	const struct item *m, const char *channel, const char *queue, const char *status) {
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "%s · %s · %s · ", channel, queue, status);
	for (size_t i = 0; m && i < m->n; i++) {
		const struct item *k = m->kids[i];
		if (k->visible && g_str_has_prefix(k->label, prefix) &&
			is_age(k->label + strlen(prefix)) && is_submenu(k)) {
			return k;
		}
	}
	return NULL;
}

/* How many top-level items look like a task's submenu ("a · b · c · <age>"). */
static size_t task_menus(const struct item *m) {
	size_t n = 0;
	for (size_t i = 0; m && i < m->n; i++) {
		const struct item *k = m->kids[i];
		char **parts = g_strsplit(k->label, " · ", -1);
		if (k->visible && g_strv_length(parts) == 4 && is_age(parts[3])) {
			n++;
		}
		g_strfreev(parts);
	}
	return n;
}

/* How many top-level items start with prefix. */
static size_t count_prefix(const struct item *m, const char *prefix) {
	size_t n = 0;
	for (size_t i = 0; m && i < m->n; i++) {
		n += m->kids[i]->visible && g_str_has_prefix(m->kids[i]->label, prefix);
	}
	return n;
}

/* The visible children of it are exactly these labels, in this order. */
static bool kids_are(const struct item *it, const char *const *labels) {
	const struct item *v[32];
	size_t n = visible(it, v, 32), i;
	for (i = 0; labels[i]; i++) {
		if (i >= n || strcmp(v[i]->label, labels[i]) != 0) {
			return false;
		}
	}
	return i == n;
}

struct changed {
	unsigned updates, signals;
};

/* Called with fx.lock held. */
static bool menu_changed(const void *arg) {
	const struct changed *c = arg;
	return tray.updates > c->updates || fx.menu_signals > c->signals;
}

typedef bool (*menu_pred)(const struct item *menu, const void *arg);

/* Re-read the menu until pred holds: after each "menu updated" line of the tray and each
 * dbusmenu signal, until the deadline (then the test fails, showing the menu). Returns the
 * menu (caller frees). */
static struct item *menu_wait(menu_pred pred, const void *arg, const char *what) {
	int64_t deadline = trt_now_ms() + E2E_WAIT;
	for (;;) {
		struct changed mark;
		struct item *m;

		tray_scan();
		g_mutex_lock(&fx.lock);
		mark.signals = fx.menu_signals;
		g_mutex_unlock(&fx.lock);
		mark.updates = tray.updates;
		m = menu_read();
		if (m && pred(m, arg)) {
			return m;
		}
		if (!wait_until(menu_changed, &mark, deadline)) {
			fprintf(stderr, "# the menu did not show %s within %d ms; it shows:\n", what,
				E2E_WAIT);
			menu_print(m, 0);
			tray_dump();
			item_free(m);
			fail();
		}
		item_free(m);
	}
}

/* Click an item as a panel does: Event(id, "clicked", int32 0, timestamp). */
static void menu_click(const struct item *it) {
	GError *err = NULL;
	GVariant *r;

	assert_non_null(it);
	fprintf(stderr, "# click '%s'\n", it->label);
	r = g_dbus_connection_call_sync(fx.conn, tray.service, tray.menu, DBUSMENU, "Event",
		g_variant_new("(isvu)", it->id, "clicked", g_variant_new_int32(0),
			(guint32)time(NULL)),
		NULL, G_DBUS_CALL_FLAGS_NONE, trt_ms(5000), NULL, &err);
	if (!r) {
		fprintf(stderr, "# Event(%d, clicked) on '%s': %s\n", it->id, it->label,
			err->message);
		g_error_free(err);
		fail();
	}
	g_variant_unref(r);
}

/* ---------------------------------------------------------------------------------------
 * Notifications
 */

struct note_match {
	const char *summary; /* exactly, or NULL */
	const char *summary_has; /* contained, or NULL */
	size_t from;         /* among the notes from this index */
	const struct note *found;
};

/* Called with fx.lock held. */
static bool note_arrived(const void *arg) {
	struct note_match *m = (struct note_match *)arg;
	for (guint i = (guint)m->from; i < fx.notes->len; i++) {
		const struct note *n = g_ptr_array_index(fx.notes, i);
		if ((!m->summary || strcmp(n->summary, m->summary) == 0) &&
			(!m->summary_has || strstr(n->summary, m->summary_has))) {
			m->found = n;
			return true;
		}
	}
	return false;
}

static void notes_print(void) {
	g_mutex_lock(&fx.lock);
	fprintf(stderr, "# %u notifications:\n", fx.notes->len);
	for (guint i = 0; i < fx.notes->len; i++) {
		const struct note *n = g_ptr_array_index(fx.notes, i);
		char *actions = g_strjoinv(",", n->actions);
		fprintf(stderr, "#   id %u (replaces %u) app '%s' summary '%s' body '%s' actions [%s] "
				"expire %d\n",
			n->id, n->replaces_id, n->app_name, n->summary, n->body, actions,
			n->expire_timeout);
		g_free(actions);
	}
	g_mutex_unlock(&fx.lock);
}

/* Wait for a Notify whose summary is `summary` (or contains `has`); the record stays valid
 * until the next test. */
static const struct note *note_wait(const char *summary, const char *has) {
	struct note_match m = {.summary = summary, .summary_has = has};
	if (!wait_until(note_arrived, &m, trt_now_ms() + E2E_WAIT)) {
		fprintf(stderr, "# no notification '%s%s'\n", summary ? summary : "…",
			has ? has : "");
		notes_print();
		tray_dump();
		fail();
	}
	fprintf(stderr, "# notification %u: '%s' / '%s', expire_timeout %d\n", m.found->id,
		m.found->summary, m.found->body, m.found->expire_timeout);
	return m.found;
}

/* Called with fx.lock held. */
static bool note_closed(const void *arg) {
	uint32_t id = *(const uint32_t *)arg;
	for (guint i = 0; i < fx.closed->len; i++) {
		if (g_array_index(fx.closed, uint32_t, i) == id) {
			return true;
		}
	}
	return false;
}

/* The server side of a click on a notification's button: ActionInvoked, then, as servers
 * do for a notification that is not resident, NotificationClosed (2: dismissed). */
static void note_click(const struct note *n, const char *key) {
	fprintf(stderr, "# notification %u: action '%s'\n", n->id, key);
	emit(NOTIFY_PATH, NOTIFY_NAME, "ActionInvoked", g_variant_new("(us)", n->id, key));
	emit(NOTIFY_PATH, NOTIFY_NAME, "NotificationClosed", g_variant_new("(uu)", n->id, 2));
	g_dbus_connection_flush_sync(fx.conn, NULL, NULL);
}

/* The notification for a new pending reservation, as the contract has it. */
static void assert_task_note(
	const struct note *n, const char *queue, const char *sid, int64_t created_ms) {
	static const char *const actions[] = {"accept", "Accept", "reject", "Reject", NULL};
	char *body = g_strdup_printf("Queue %s — %s", queue, sid);
	int64_t waited = trt_now_ms() - created_ms;

	assert_string_equal(n->body, body);
	g_free(body);
	assert_int_equal(g_strv_length(n->actions), 4);
	for (size_t i = 0; actions[i]; i++) {
		assert_string_equal(n->actions[i], actions[i]);
	}
	/* the reservation's remaining time: at most its timeout, less what has passed (and a
	 * second more, for whole seconds) */
	if (n->expire_timeout <= 0 || n->expire_timeout > RES_TIMEOUT_S * 1000 ||
		n->expire_timeout < RES_TIMEOUT_S * 1000 - waited - 2000) {
		fprintf(stderr, "# expire_timeout %d: expected %d ms less at most %lld ms\n",
			n->expire_timeout, RES_TIMEOUT_S * 1000, (long long)waited + 2000);
		fail();
	}
}

/* ---------------------------------------------------------------------------------------
 * The simulator and the daemon
 */

struct sim_info {
	char worker[64];   /* alice's friendly name */
	char activity[64]; /* her activity's */
	char queue[64];
	char activities[8][64];
	size_t n_activities;
};

static void sim_info(struct sim_info *si) {
	struct tr_json *st = NULL;
	const struct tr_json *w, *acts;

	memset(si, 0, sizeof(*si));
	assert_int_equal(trt_sim_http(&e2e.env, "GET", "/sim/state", NULL, &st), 200);
	w = trt_json_find(tr_json_get(st, "workers"), "name", "alice");
	assert_non_null(w);
	snprintf(si->worker, sizeof(si->worker), "%s", e2e_str(w, "friendly_name"));
	snprintf(si->activity, sizeof(si->activity), "%s", e2e_str(w, "activity_name"));
	snprintf(si->queue, sizeof(si->queue), "%s", e2e_str(tr_json_get(st, "queue"), "name"));
	acts = tr_json_get(st, "activities");
	assert_true(tr_json_is(acts, TR_JSON_ARRAY));
	for (size_t i = 0; i < acts->u.arr.n && si->n_activities < 8; i++) {
		snprintf(si->activities[si->n_activities++], 64, "%s",
			e2e_str(acts->u.arr.items[i], "friendly_name"));
	}
	tr_json_free(st);
}

/* A reservation's status in the simulator (static buffer). */
static const char *sim_res_status(const char *res) {
	static char status[32];
	struct tr_json *st = NULL;
	const struct tr_json *r;

	assert_int_equal(trt_sim_http(&e2e.env, "GET", "/sim/state", NULL, &st), 200);
	r = trt_json_find(tr_json_get(st, "reservations"), "sid", res);
	assert_non_null(r);
	snprintf(status, sizeof(status), "%s", e2e_str(r, "reservation_status"));
	tr_json_free(st);
	return status;
}

/* A task for alice on channel, reserved for her (pending), or accepted too. */
static void new_task(const char *channel, bool accept, char sid[35], char res[35]) {
	struct tr_json *r = NULL;
	int st = trt_sim_http(&e2e.env, "POST", "/sim/tasks",
		trt_fmt("{\"worker\":\"alice\",\"channel\":\"%s\",\"attributes\":{\"type\":"
			"\"support\",\"customer\":\"Zoë\"},\"reservation_timeout\":%d}",
			channel, RES_TIMEOUT_S),
		&r);

	assert_int_equal(st, 200);
	snprintf(sid, 35, "%s", e2e_str(r, "task"));
	snprintf(res, 35, "%s", e2e_str(r, "reservation"));
	tr_json_free(r);
	if (accept) {
		e2e_sim_post(&e2e.env, trt_fmt("/sim/reservations/%s/accept", res), NULL);
	}
}

/* ---------------------------------------------------------------------------------------
 * The X server: windows and the screenshot
 */

static int x_ignore_errors(Display *d, XErrorEvent *e) {
	(void)d;
	(void)e;
	return 0; /* a window may vanish while we look at it */
}

static Display *x_display(void) {
	if (!fx.x) {
		fx.x = XOpenDisplay(fx.display);
		assert_non_null(fx.x);
		XSetErrorHandler(x_ignore_errors);
	}
	return fx.x;
}

/* A window's title (_NET_WM_NAME, else WM_NAME); caller frees (g_free). */
static char *window_title(Display *d, Window w) {
	Atom net = XInternAtom(d, "_NET_WM_NAME", False);
	Atom utf8 = XInternAtom(d, "UTF8_STRING", False);
	Atom type = None;
	int format = 0;
	unsigned long n = 0, after = 0;
	unsigned char *data = NULL;
	char *name = NULL, *title = NULL;

	if (XGetWindowProperty(d, w, net, 0, 1024, False, utf8, &type, &format, &n, &after,
		    &data) == Success &&
		data && type == utf8 && format == 8) {
		title = g_strndup((const char *)data, n);
	}
	if (data) {
		XFree(data);
	}
	if (!title && XFetchName(d, w, &name) && name) {
		title = g_strdup(name);
		XFree(name);
	}
	return title;
}

/* Wait for a window titled `title` to be mapped (MapNotify on the root window, which was
 * selected for SubstructureNotify before the click that opens it). */
static Window wait_window_mapped(Display *d, const char *title) {
	int64_t deadline = trt_now_ms() + E2E_WAIT;
	for (;;) {
		while (XPending(d)) {
			XEvent ev;
			XNextEvent(d, &ev);
			if (ev.type == MapNotify) {
				char *t = window_title(d, ev.xmap.window);
				bool match = t && strcmp(t, title) == 0;
				fprintf(stderr, "# window 0x%lx '%s' mapped\n", ev.xmap.window,
					t ? t : "");
				g_free(t);
				if (match) {
					return ev.xmap.window;
				}
			}
		}
		if (trt_remaining(deadline) == 0) {
			fprintf(stderr, "# no window '%s' was mapped within %d ms\n", title,
				E2E_WAIT);
			tray_dump();
			fail();
		}
		wait_wakeup(deadline, ConnectionNumber(d));
	}
}

/* The distinct colours of an image, up to max + 1. */
static size_t colours(XImage *img, size_t max) {
	unsigned long seen[16];
	size_t n = 0;
	for (int y = 0; y < img->height; y++) {
		for (int x = 0; x < img->width; x++) {
			unsigned long px = XGetPixel(img, x, y);
			size_t i;
			for (i = 0; i < n && seen[i] != px; i++) {
			}
			if (i == n) {
				if (n == max || n == G_N_ELEMENTS(seen)) {
					return n + 1;
				}
				seen[n++] = px;
			}
		}
	}
	return n;
}

/* Whether window w shows something: more than one colour (a window not drawn yet is all
 * background). */
static bool window_drawn(Display *d, Window w) {
	XWindowAttributes a;
	XImage *img;
	size_t n;

	if (!XGetWindowAttributes(d, w, &a) || a.map_state != IsViewable) {
		return false;
	}
	img = XGetImage(d, w, 0, 0, (unsigned)a.width, (unsigned)a.height, AllPlanes, ZPixmap);
	if (!img) {
		return false;
	}
	n = colours(img, 1);
	XDestroyImage(img);
	return n > 1;
}

/* Wait until the window has been drawn: look again after each of its damage events. Raw
 * rectangles: every drawing raises one, so none made after a look goes unnoticed (with
 * ReportNonEmpty, a drawing before the look would silence the ones after it). */
static void wait_window_drawn(Display *d, Window w) {
	int64_t deadline = trt_now_ms() + E2E_WAIT;
	int dmg_event, dmg_error;
	Damage dmg;

	assert_true(XDamageQueryExtension(d, &dmg_event, &dmg_error));
	dmg = XDamageCreate(d, w, XDamageReportRawRectangles);
	XSync(d, False);
	while (!window_drawn(d, w)) {
		if (trt_remaining(deadline) == 0) {
			fprintf(stderr, "# window 0x%lx was not drawn within %d ms\n", w, E2E_WAIT);
			fail();
		}
		if (!XPending(d)) {
			wait_wakeup(deadline, ConnectionNumber(d));
		}
		while (XPending(d)) {
			XEvent ev;
			XNextEvent(d, &ev); /* damage: look again */
		}
	}
	XDamageDestroy(d, dmg);
	XSync(d, False);
}

static int mask_shift(unsigned long mask) {
	int s = 0;
	while (mask && !(mask & 1)) {
		mask >>= 1;
		s++;
	}
	return s;
}

/* Save the root window as a PNG at path; returns its number of colours (up to 16). */
static size_t screenshot(Display *d, const char *path) {
	Window root = DefaultRootWindow(d);
	XWindowAttributes a;
	XImage *img;
	GdkPixbuf *pb;
	GError *err = NULL;
	guchar *pixels;
	int stride, rs, gs, bs;
	size_t n;

	assert_true(XGetWindowAttributes(d, root, &a));
	img = XGetImage(d, root, 0, 0, (unsigned)a.width, (unsigned)a.height, AllPlanes, ZPixmap);
	assert_non_null(img);
	pb = gdk_pixbuf_new(GDK_COLORSPACE_RGB, FALSE, 8, a.width, a.height);
	assert_non_null(pb);
	pixels = gdk_pixbuf_get_pixels(pb);
	stride = gdk_pixbuf_get_rowstride(pb);
	rs = mask_shift(img->red_mask);
	gs = mask_shift(img->green_mask);
	bs = mask_shift(img->blue_mask);
	for (int y = 0; y < a.height; y++) {
		for (int x = 0; x < a.width; x++) {
			unsigned long px = XGetPixel(img, x, y);
			guchar *p = pixels + (size_t)y * (size_t)stride + (size_t)x * 3;
			p[0] = (guchar)((px & img->red_mask) >> rs);
			p[1] = (guchar)((px & img->green_mask) >> gs);
			p[2] = (guchar)((px & img->blue_mask) >> bs);
		}
	}
	n = colours(img, 16);
	XDestroyImage(img);
	if (!gdk_pixbuf_save(pb, path, "png", &err, NULL)) {
		fprintf(stderr, "# saving %s: %s\n", path, err->message);
		g_error_free(err);
		fail();
	}
	g_object_unref(pb);
	return n;
}

/* ---------------------------------------------------------------------------------------
 * The fixture: the desktop for the group, the tray for each test
 */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
	(void)st;
	(void)flag;
	(void)ftw;
	(void)remove(path);
	return 0;
}

static const char bus_conf[] =
	"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
	" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	"<busconfig>\n"
	"  <type>session</type>\n"
	"  <listen>unix:dir=%s</listen>\n"
	"  <auth>EXTERNAL</auth>\n"
	"  <policy context=\"default\">\n"
	"    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
	"    <allow eavesdrop=\"true\"/>\n"
	"    <allow own=\"*\"/>\n"
	"  </policy>\n"
	"</busconfig>\n";

/* Start a helper whose first line on stdout says it is ready (Xvfb -displayfd 1,
 * dbus-daemon --print-address=1); returns that line (caller frees) or NULL. */
static char *start_helper(struct trt_proc *p, const char *name, const char *const *argv) {
	char *log = g_strdup_printf("%s/%s.log", fx.dir, name);
	struct trt_spawn_opts opts = {.pipe_stdout = true, .log_path = log};
	char *line = NULL;
	int r = trt_proc_spawn(p, name, argv, &opts);

	if (r == 0) {
		r = trt_proc_wait_output(p, "\n", E2E_WAIT);
	}
	if (r < 0) {
		char *out = NULL;
		fprintf(stderr, "# %s did not start: %s\n", name, strerror(-r));
		if (g_file_get_contents(log, &out, NULL, NULL)) {
			fprintf(stderr, "# %s\n", out);
			g_free(out);
		}
	} else {
		line = g_strndup(p->out.data, strcspn(p->out.data, "\n"));
	}
	g_free(log);
	return line;
}

/* Called with fx.lock held. */
static bool fakes_ready(const void *arg) {
	(void)arg;
	return fx.names == 2 || fx.names < 0 || fx.error;
}

static int group_teardown(void **state);

static int group_setup(void **state) {
	char *conf_path = NULL, *conf = NULL, *line = NULL;
	GError *err = NULL;
	int ok = -1;

	trt_proc_init(&fx.xvfb);
	trt_proc_init(&fx.bus);
	trt_proc_init(&tray.proc);
	fx.wake_fd = -1;
	g_mutex_init(&fx.lock);
	fx.items = g_ptr_array_new_with_free_func(g_free);
	fx.watches = g_array_new(FALSE, FALSE, sizeof(guint));
	fx.notes = g_ptr_array_new_with_free_func(note_free);
	fx.closed = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	fx.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fx.dir = g_dir_make_tmp("trt-tray-XXXXXX", &err);
	if (fx.wake_fd < 0 || !fx.dir) {
		fprintf(stderr, "# eventfd or temporary directory: %s\n",
			err ? err->message : strerror(errno));
		goto out;
	}

	/* -displayfd: Xvfb picks a free display and writes its number once it accepts
	 * connections */
	{
		const char *argv[] = {fx.xvfb_bin, "-displayfd", "1", "-nolisten", "tcp", "-noreset",
			"-screen", "0", "1024x768x24", NULL};
		if (!(line = start_helper(&fx.xvfb, "Xvfb", argv))) {
			goto out;
		}
		snprintf(fx.display, sizeof(fx.display), ":%s", line);
		g_free(line);
	}
	/* a bus of our own, without the session bus's service activation (which would start
	 * the accessibility bus or dconf for GTK) */
	conf_path = g_strdup_printf("%s/bus.conf", fx.dir);
	conf = g_strdup_printf(bus_conf, fx.dir);
	if (!g_file_set_contents(conf_path, conf, -1, &err)) {
		fprintf(stderr, "# %s: %s\n", conf_path, err->message);
		goto out;
	}
	{
		char *opt = g_strdup_printf("--config-file=%s", conf_path);
		const char *argv[] = {fx.bus_bin, opt, "--nofork", "--nopidfile", "--print-address=1",
			NULL};
		fx.bus_address = start_helper(&fx.bus, "dbus-daemon", argv);
		g_free(opt);
		if (!fx.bus_address) {
			goto out;
		}
	}
	fprintf(stderr, "# Xvfb on %s, D-Bus at %s\n", fx.display, fx.bus_address);

	fx.conn = g_dbus_connection_new_for_address_sync(fx.bus_address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &err);
	if (!fx.conn) {
		fprintf(stderr, "# connecting to %s: %s\n", fx.bus_address, err->message);
		goto out;
	}
	fx.ctx = g_main_context_new();
	fx.loop = g_main_loop_new(fx.ctx, FALSE);
	fx.thread = g_thread_new("fakes", fakes_main, NULL);
	if (!wait_until(fakes_ready, NULL, trt_now_ms() + E2E_WAIT) || fx.names != 2) {
		fprintf(stderr, "# the fakes did not start: %s\n",
			fx.error ? fx.error : "their names were not acquired");
		goto out;
	}
	ok = 0;
out:
	g_clear_error(&err);
	g_free(conf);
	g_free(conf_path);
	if (ok < 0) {
		(void)group_teardown(state);
	}
	return ok;
}

static int group_teardown(void **state) {
	(void)state;
	if (fx.thread) {
		g_main_loop_quit(fx.loop);
		g_thread_join(fx.thread);
		fx.thread = NULL;
	}
	if (fx.x) {
		XCloseDisplay(fx.x);
		fx.x = NULL;
	}
	if (fx.conn) {
		(void)g_dbus_connection_close_sync(fx.conn, NULL, NULL);
		g_clear_object(&fx.conn);
	}
	if (fx.loop) {
		g_main_loop_unref(fx.loop);
		g_main_context_unref(fx.ctx);
		fx.loop = NULL;
		fx.ctx = NULL;
	}
	/* the bus first: the tray is gone, Xvfb has no client left */
	(void)trt_proc_stop(&fx.bus, E2E_WAIT);
	trt_proc_done(&fx.bus);
	(void)trt_proc_stop(&fx.xvfb, E2E_WAIT);
	trt_proc_done(&fx.xvfb);
	if (fx.dir) {
		if (!getenv("TR_KEEP_TMP")) {
			(void)nftw(fx.dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
		}
		g_free(fx.dir);
		fx.dir = NULL;
	}
	g_free(fx.bus_address);
	g_free(fx.error);
	g_free(fx.item_service);
	g_free(fx.item_path);
	fx.bus_address = fx.error = fx.item_service = fx.item_path = NULL;
	if (fx.items) {
		g_ptr_array_unref(fx.items);
		g_array_unref(fx.watches);
		g_ptr_array_unref(fx.notes);
		g_array_unref(fx.closed);
		g_mutex_clear(&fx.lock);
		fx.items = fx.notes = NULL;
		fx.watches = fx.closed = NULL;
	}
	if (fx.wake_fd >= 0) {
		close(fx.wake_fd);
		fx.wake_fd = -1;
	}
	return 0;
}

/* Called with fx.lock held. */
static bool registered_since(const void *arg) {
	return fx.n_registrations > *(const unsigned *)arg && fx.item_service;
}

/* Start the tray on the fixture's daemon and find its menu. 0 or -1 (said on stderr). */
static int tray_start(void) {
	char *display = g_strdup_printf("DISPLAY=%s", fx.display);
	char *bus = g_strdup_printf("DBUS_SESSION_BUS_ADDRESS=%s", fx.bus_address);
	const char *supp = getenv("TR_TRAY_LSAN_SUPP");
	char *lsan = supp && *supp ? g_strdup_printf("LSAN_OPTIONS=suppressions=%s:"
						     "print_suppressions=0",
					     supp)
				   : NULL;
	/* stderr joins stdout (the pipe we read); env(1) sets the tray's own environment: the
	 * display and the bus, GTK kept from dconf and the accessibility bus, which the test's
	 * bus does not offer, and LeakSanitizer's suppressions for the tray alone */
	const char *argv[] = {"/bin/sh", "-c", "exec \"$@\" 2>&1", "sh", "/usr/bin/env", "-u",
		"WAYLAND_DISPLAY", display, bus, "GDK_BACKEND=x11", "NO_AT_BRIDGE=1",
		"GSETTINGS_BACKEND=memory", lsan ? lsan : "LSAN_OPTIONS=", tray.bin, "--socket",
		e2e.env.daemon.socket_path, NULL};
	struct trt_spawn_opts opts = {.pipe_stdout = true};
	unsigned mark;
	GError *err = NULL;
	GVariant *r = NULL, *v = NULL;
	int ok = -1;

	g_mutex_lock(&fx.lock);
	mark = fx.n_registrations;
	g_ptr_array_set_size(fx.notes, 0);
	g_array_set_size(fx.closed, 0);
	g_mutex_unlock(&fx.lock);
	tray.scanned = 0;
	tray.updates = 0;

	if (trt_proc_spawn(&tray.proc, "taskrouter-tray", argv, &opts) < 0) {
		goto out;
	}
	if (!wait_until(registered_since, &mark, trt_now_ms() + E2E_WAIT)) {
		fprintf(stderr, "# taskrouter-tray did not register a StatusNotifierItem\n");
		tray_dump();
		goto out;
	}
	g_mutex_lock(&fx.lock);
	tray.service = g_strdup(fx.item_service);
	tray.path = g_strdup(fx.item_path);
	g_mutex_unlock(&fx.lock);
	r = g_dbus_connection_call_sync(fx.conn, tray.service, tray.path,
		"org.freedesktop.DBus.Properties", "Get", g_variant_new("(ss)", ITEM_IFACE, "Menu"),
		G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, trt_ms(5000), NULL, &err);
	if (r) {
		g_variant_get(r, "(v)", &v);
	}
	if (!v || !g_variant_is_of_type(v, G_VARIANT_TYPE_OBJECT_PATH)) {
		fprintf(stderr, "# the item %s%s has no Menu (an object path): %s\n", tray.service,
			tray.path, err ? err->message : "wrong type");
		goto out;
	}
	tray.menu = g_variant_dup_string(v, NULL);
	fprintf(stderr, "# taskrouter-tray's item %s%s, menu %s\n", tray.service, tray.path,
		tray.menu);
	ok = 0;
out:
	if (v) {
		g_variant_unref(v);
	}
	if (r) {
		g_variant_unref(r);
	}
	g_clear_error(&err);
	g_free(display);
	g_free(bus);
	g_free(lsan);
	return ok;
}

/* SIGTERM: the tray must exit 0 (under ASan: without a leak of ours). */
static int tray_stop(void) {
	int st = 0;

	if (tray.proc.name) {
		st = trt_proc_stop(&tray.proc, E2E_WAIT);
		if (st != 0) {
			fprintf(stderr, "# taskrouter-tray exit status %d after SIGTERM\n", st);
			tray_dump();
		}
	}
	trt_proc_done(&tray.proc);
	g_free(tray.service);
	g_free(tray.path);
	g_free(tray.menu);
	tray.service = tray.path = tray.menu = NULL;
	return st;
}

static int tray_setup(void **state) {
	if (e2e_setup(state) < 0) {
		return -1;
	}
	if (tray_start() < 0) {
		/* no teardown follows a failed setup */
		(void)tray_stop();
		e2e_disconnect();
		(void)e2e_stop(&e2e.env);
		return -1;
	}
	return 0;
}

static int tray_teardown(void **state) {
	int t, r;

	t = tray_stop();
	r = e2e_teardown(state);
	return t == 0 && r == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------
 * Menu states
 */

/* The status line of a ready session, from the simulator: "alice: <activity>". */
static bool status_is_ready(const struct item *m, const struct sim_info *si) {
	char want[160];
	snprintf(want, sizeof(want), "%s: %s", si->worker, si->activity);
	return strcmp(status_line(m), want) == 0;
}

/* "Activity: <current>" with one radio per activity, the current one on. */
static bool activities_shown(const struct item *m, const struct sim_info *si) {
	const struct item *sub = child(m, trt_fmt("Activity: %s", si->activity), false);
	const struct item *v[16];
	size_t n = visible(sub, v, 16);

	if (!sub || !sub->enabled || !is_submenu(sub) || n != si->n_activities) {
		return false;
	}
	for (size_t i = 0; i < si->n_activities; i++) {
		const struct item *a = child(sub, si->activities[i], false);
		if (!a || strcmp(a->toggle_type, "radio") != 0 ||
			a->toggle_state != (strcmp(a->label, si->activity) == 0 ? 1 : 0)) {
			return false;
		}
	}
	return true;
}

static bool shows_idle(const struct item *m, const void *arg) {
	const struct sim_info *si = arg;
	return status_is_ready(m, si) && child(m, "No tasks", false) && activities_shown(m, si);
}

struct task_state {
	const char *channel, *queue, *status;
	const char *const *kids;
	bool pending; /* the Accept/Reject items are there */
};

static bool shows_task(const struct item *m, const void *arg) {
	const struct task_state *t = arg;
	const struct item *sub = task_menu(m, t->channel, t->queue, t->status);
	bool accept = child(m, trt_fmt("Accept %s task from %s", t->channel, t->queue), false);
	bool reject = child(m, trt_fmt("Reject %s task from %s", t->channel, t->queue), false);
	return sub && kids_are(sub, t->kids) && accept == t->pending && reject == t->pending;
}

/* The menu shows what the daemon holds (task.list): an Accept and a Reject item per reserved
 * task, a submenu per live task, and "No tasks" when there is none; the status line says the
 * session is ready with alice's activity in the simulator. */
static bool matches_daemon(const struct item *m, const void *arg) {
	struct tr_json *all = e2e_list_all(e2e.rpc);
	const struct tr_json *tasks = tr_json_get(all, "tasks");
	struct sim_info si;
	size_t live = 0, reserved = 0;
	bool ok;
	(void)arg;

	sim_info(&si);
	ok = status_is_ready(m, &si);
	for (size_t i = 0; ok && i < tasks->u.arr.n; i++) {
		const struct tr_json *t = tasks->u.arr.items[i];
		const char *st = e2e_str(t, "status");
		const char *ch = e2e_str(t, "taskChannelUniqueName");
		const char *q = e2e_str(t, "queueName");
		if (strcmp(st, "completed") == 0 || strcmp(st, "canceled") == 0) {
			continue; /* recently closed */
		}
		live++;
		ok = task_menu(m, ch, q, st) != NULL;
		if (strcmp(st, "reserved") == 0) {
			reserved++;
			ok = ok && child(m, trt_fmt("Accept %s task from %s", ch, q), false) &&
			     child(m, trt_fmt("Reject %s task from %s", ch, q), false);
		}
	}
	ok = ok && task_menus(m) == live && count_prefix(m, "Accept ") == reserved &&
	     count_prefix(m, "Reject ") == reserved &&
	     (live > 0) != (child(m, "No tasks", false) != NULL);
	tr_json_free(all);
	return ok;
}

/* ---------------------------------------------------------------------------------------
 * Tests
 */

/* Idle: the worker's status, no tasks, every activity of the workspace with the current one
 * on; the items in the contract's order. */
static void test_idle_menu(void **state) {
	static const char *const kinds[] = {
		"status", "-", "No tasks", "-", "Activity", "-", "Quit"};
	struct sim_info si;
	const struct item *v[16];
	struct item *m;
	size_t n;
	(void)state;

	sim_info(&si);
	assert_string_equal(si.worker, "alice");
	m = menu_wait(shows_idle, &si,
		trt_fmt("'%s: %s', 'No tasks' and the activities", si.worker, si.activity));
	n = visible(m, v, 16);
	if (n != G_N_ELEMENTS(kinds)) {
		fprintf(stderr, "# %zu top-level items, expected %zu\n", n, G_N_ELEMENTS(kinds));
		menu_print(m, 0);
		fail();
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(kinds[i], "-") == 0) {
			assert_true(is_separator(v[i]));
		} else if (i > 0) {
			assert_true(g_str_has_prefix(v[i]->label, kinds[i]));
		}
	}
	assert_false(v[0]->enabled); /* the status line */
	assert_false(v[2]->enabled); /* No tasks */
	assert_true(v[4]->enabled);  /* Activity */
	assert_true(v[6]->enabled);  /* Quit */
	item_free(m);
}

/* A new reservation: the Accept/Reject items, a task submenu and a notification with Accept and
 * Reject that expires with the reservation; Accept in the menu accepts it upstream, the task
 * becomes assigned with Wrap up and Complete, and the notification is closed. */
static void test_accept_from_menu(void **state) {
	static const char *const reserved[] = {"Accept", "Reject", "Attributes…", NULL};
	static const char *const assigned[] = {"Wrap up", "Complete", "Attributes…", NULL};
	struct sim_info si;
	struct task_state want;
	char sid[35], res[35];
	const struct note *n;
	struct item *m;
	int64_t created;
	uint32_t id;
	(void)state;

	sim_info(&si);
	created = trt_now_ms();
	new_task("voice", false, sid, res);
	want = (struct task_state){"voice", si.queue, "reserved", reserved, true};
	m = menu_wait(shows_task, &want, "the reserved voice task with Accept and Reject");
	n = note_wait("New voice task", NULL);
	assert_task_note(n, si.queue, sid, created);
	id = n->id;

	menu_click(child(m, trt_fmt("Accept voice task from %s", si.queue), false));
	item_free(m);
	e2e_wait_event(e2e.sub, "reservationAccepted", sid);
	assert_string_equal(sim_res_status(res), "accepted");

	want = (struct task_state){"voice", si.queue, "assigned", assigned, false};
	item_free(menu_wait(shows_task, &want, "the assigned voice task, Wrap up and Complete"));
	if (!wait_until(note_closed, &id, trt_now_ms() + E2E_WAIT)) {
		fprintf(stderr, "# notification %u was not closed (CloseNotification)\n", id);
		fail();
	}
}

/* The notification's buttons: ActionInvoked(id, key) accepts or rejects the reservation. */
static void notification_action(const char *key) {
	static const char *const assigned[] = {"Wrap up", "Complete", "Attributes…", NULL};
	struct sim_info si;
	char sid[35], res[35];
	const struct note *n;
	int64_t created;
	bool accept = strcmp(key, "accept") == 0;

	sim_info(&si);
	created = trt_now_ms();
	new_task("chat", false, sid, res);
	n = note_wait("New chat task", NULL);
	assert_task_note(n, si.queue, sid, created);
	note_click(n, key);
	e2e_wait_event(e2e.sub, accept ? "reservationAccepted" : "reservationRejected", sid);
	assert_string_equal(sim_res_status(res), accept ? "accepted" : "rejected");
	if (accept) {
		struct task_state want = {"chat", si.queue, "assigned", assigned, false};
		item_free(menu_wait(shows_task, &want, "the assigned chat task"));
	}
	item_free(menu_wait(matches_daemon, NULL, "the daemon's tasks"));
}

static void test_accept_from_notification(void **state) {
	(void)state;
	notification_action("accept");
}

static void test_reject_from_notification(void **state) {
	(void)state;
	notification_action("reject");
}

/* The Activity submenu: a click on another activity's radio item moves the worker upstream,
 * and the submenu, its radio items and the status line follow; and back. */
static void test_switch_activity(void **state) {
	struct sim_info si;
	char from[64], to[64] = "";
	struct item *m;
	(void)state;

	sim_info(&si);
	assert_true(si.n_activities >= 2);
	snprintf(from, sizeof(from), "%s", si.activity);
	m = menu_wait(shows_idle, &si, "the activities");
	for (size_t i = 0; i < si.n_activities && !to[0]; i++) {
		if (strcmp(si.activities[i], from) != 0) {
			snprintf(to, sizeof(to), "%s", si.activities[i]);
		}
	}
	for (int round = 0; round < 2; round++) {
		const char *target = round == 0 ? to : from;
		const struct item *sub = child(m, trt_fmt("Activity: %s", si.activity), false);

		menu_click(child(sub, target, false));
		item_free(m);
		e2e_wait_event(e2e.sub, "activityUpdated", NULL);
		sim_info(&si);
		assert_string_equal(si.activity, target);
		m = menu_wait(
			shows_idle, &si, trt_fmt("'Activity: %s' with its radio item on", target));
	}
	item_free(m);
}

/* Errors in words: Accept refused upstream (400) puts an "Error: …" line in the menu and a
 * "… failed" notification up; the reservation stays pending. */
static bool shows_error(const struct item *m, const void *arg) {
	const struct item *v[3];
	(void)arg;
	return visible(m, v, 3) >= 2 && g_str_has_prefix(v[1]->label, "Error: ") && !v[1]->enabled;
}

static void test_error_shown(void **state) {
	static const char *const reserved[] = {"Accept", "Reject", "Attributes…", NULL};
	struct sim_info si;
	struct task_state want;
	char sid[35], res[35];
	const struct note *n;
	const struct item *v[3] = {NULL, NULL, NULL};
	struct item *m;
	(void)state;

	sim_info(&si);
	new_task("voice", false, sid, res);
	want = (struct task_state){"voice", si.queue, "reserved", reserved, true};
	m = menu_wait(shows_task, &want, "the reserved voice task");
	(void)note_wait("New voice task", NULL);
	e2e_sim_post(&e2e.env, "/sim/faults/rest",
		"{\"count\":1,\"status\":400,\"match\":\"Reservations\","
		"\"message\":\"Refused by the test\"}");
	menu_click(child(m, trt_fmt("Accept voice task from %s", si.queue), false));
	item_free(m);

	m = menu_wait(shows_error, NULL, "a line 'Error: …'");
	assert_true(visible(m, v, 3) >= 2);
	fprintf(stderr, "# error line: '%s'\n", v[1]->label);
	item_free(m);
	n = note_wait(NULL, "failed");
	fprintf(stderr, "# failure notification: '%s' / '%s'\n", n->summary, n->body);
	assert_string_equal(sim_res_status(res), "pending");
}

/* The daemon goes away and comes back: the tray says it is not running and shows no task,
 * reconnects by itself, and then shows the daemon's tasks: not the one completed while the
 * daemon was down, and the one created meanwhile. */
static bool shows_daemon_down(const struct item *m, const void *arg) {
	const char *s = status_line(m);
	const struct item *act = child(m, "Activity", true);
	(void)arg;
	return g_str_has_prefix(s, "taskrouterd is not running (") &&
	       g_str_has_suffix(s, "); retrying") && task_menus(m) == 0 &&
	       count_prefix(m, "Accept ") == 0 && count_prefix(m, "Reject ") == 0 && act &&
	       !act->enabled;
}

static void test_daemon_restart(void **state) {
	static const char *const assigned[] = {"Wrap up", "Complete", "Attributes…", NULL};
	struct sim_info si;
	struct task_state want;
	char a[35], ra[35], b[35], rb[35], c[35], rc[35];
	struct item *m;
	(void)state;

	sim_info(&si);
	new_task("voice", true, a, ra);
	new_task("chat", true, b, rb);
	want = (struct task_state){"voice", si.queue, "assigned", assigned, false};
	item_free(menu_wait(shows_task, &want, "the assigned voice task"));
	want.channel = "chat";
	item_free(menu_wait(shows_task, &want, "the assigned chat task"));

	e2e_disconnect();
	assert_int_equal(trt_daemon_stop(&e2e.env), 0);
	m = menu_wait(shows_daemon_down, NULL,
		"'taskrouterd is not running (…); retrying', no task, Activity disabled");
	fprintf(stderr, "# status line: '%s'\n", status_line(m));
	item_free(m);

	/* meanwhile, upstream: the voice task is completed, a new one comes in */
	e2e_sim_post(&e2e.env, trt_fmt("/sim/tasks/%s/complete", a), NULL);
	new_task("voice", false, c, rc);

	assert_int_equal(trt_daemon_start(&e2e.env, "alice", NULL), 0);
	assert_int_equal(trt_daemon_wait_status(&e2e.env, "ready", E2E_WAIT), 0);
	assert_int_equal(e2e_connect(), 0);
	m = menu_wait(matches_daemon, NULL, "the daemon's tasks after its restart");
	assert_null(task_menu(m, "voice", si.queue, "assigned")); /* completed meanwhile */
	assert_non_null(task_menu(m, "voice", si.queue, "reserved"));
	assert_non_null(task_menu(m, "chat", si.queue, "assigned"));
	item_free(m);
}

/* The attributes window, photographed: "Attributes…" of a task opens a window titled
 * "Task WT…"; once it is mapped and drawn the screen is saved as a PNG. */
static void test_attributes_screenshot(void **state) {
	static const char *const assigned[] = {"Wrap up", "Complete", "Attributes…", NULL};
	struct sim_info si;
	struct task_state want;
	char sid[35], res[35], *title, *path;
	const char *env_path = getenv("TR_TRAY_SCREENSHOT");
	Display *d;
	Window w;
	struct item *m;
	size_t n;
	struct stat st;
	(void)state;

	sim_info(&si);
	new_task("voice", true, sid, res);
	want = (struct task_state){"voice", si.queue, "assigned", assigned, false};
	m = menu_wait(shows_task, &want, "the assigned voice task");

	d = x_display();
	XSelectInput(d, DefaultRootWindow(d), SubstructureNotifyMask);
	XSync(d, False);
	menu_click(child(task_menu(m, "voice", si.queue, "assigned"), "Attributes…", false));
	item_free(m);
	title = g_strdup_printf("Task %s", sid);
	w = wait_window_mapped(d, title);
	wait_window_drawn(d, w);

	if (env_path && *env_path) {
		path = g_strdup(env_path);
	} else {
		const char *root = getenv("MESON_BUILD_ROOT");
		path = g_strdup_printf("%s/tray-screenshot.png", root ? root : ".");
	}
	n = screenshot(d, path);
	assert_int_equal(stat(path, &st), 0);
	fprintf(stderr, "# screenshot of '%s': %s (%lld bytes, %s colours)\n", title, path,
		(long long)st.st_size, n > 16 ? "more than 16" : trt_fmt("%zu", n));
	printf("# screenshot: %s\n", path);
	fflush(stdout);
	assert_true(n > 1);
	XSelectInput(d, DefaultRootWindow(d), NoEventMask);
	g_free(title);
	g_free(path);
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, tray_setup, tray_teardown)

int main(void) {
	const struct CMUnitTest tests[] = {
		CASE(test_idle_menu),
		CASE(test_accept_from_menu),
		CASE(test_accept_from_notification),
		CASE(test_reject_from_notification),
		CASE(test_switch_activity),
		CASE(test_error_shown),
		CASE(test_daemon_restart),
		CASE(test_attributes_screenshot),
	};
	int r;

	tray.bin = e2e_binary("TR_TRAY_APP");
	if (!tray.bin) {
		return 1;
	}
	fx.xvfb_bin = g_find_program_in_path("Xvfb");
	fx.bus_bin = g_find_program_in_path("dbus-daemon");
	if (!fx.xvfb_bin || !fx.bus_bin) {
		/* the whole program, as TAP has it (cmocka's skip() says "not ok # SKIP", which
		 * meson counts as a failure); CI has both (packages xvfb and dbus) */
		printf("1..0 # SKIP %s is not installed\n", !fx.xvfb_bin ? "Xvfb" : "dbus-daemon");
		return 0;
	}
	r = cmocka_run_group_tests(tests, group_setup, group_teardown);
	g_free(fx.xvfb_bin);
	g_free(fx.bus_bin);
	return r;
}
