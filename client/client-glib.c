/*
 * client-glib.c — libtaskrouter-glib: a GSource that drives a struct tr_client.
 *
 * Each main loop iteration asks the client what its fd needs (tr_client_events) and when it
 * has work without input (tr_client_timeout_ms), and calls tr_client_process when either
 * comes. Asking every time, rather than once, is what makes a request queued from another
 * source's callback go out and its deadline count. Uses only the public client API.
 */
#include "taskrouter/client-glib.h"

#include <errno.h>
#include <poll.h>

struct tr_client_glib {
	GSource source; /* first: the struct is allocated by g_source_new */
	struct tr_client *c;
	gpointer tag; /* the fd watch, NULL once the connection is dead */
	tr_client_glib_dead_cb dead_cb;
	void *userdata;
};

static GIOCondition condition_of(int events) {
	GIOCondition cond = 0;

	if (events & POLLIN) {
		cond |= G_IO_IN;
	}
	if (events & POLLOUT) {
		cond |= G_IO_OUT;
	}
	return cond;
}

static gboolean src_prepare(GSource *s, gint *timeout) {
	struct tr_client_glib *g = (struct tr_client_glib *)s;
	int events;

	*timeout = -1;
	if (!g->tag) {
		return FALSE;
	}
	events = tr_client_events(g->c);
	if (events < 0) {
		return TRUE; /* dead: dispatch reports it */
	}
	g_source_modify_unix_fd(s, g->tag, condition_of(events));
	*timeout = tr_client_timeout_ms(g->c);
	return *timeout == 0;
}

static gboolean src_check(GSource *s) {
	struct tr_client_glib *g = (struct tr_client_glib *)s;

	if (!g->tag) {
		return FALSE;
	}
	/* revents may also hold G_IO_HUP or G_IO_ERR, which tr_client_process turns into the
	 * connection's error. */
	return g_source_query_unix_fd(s, g->tag) != 0 || tr_client_timeout_ms(g->c) == 0 ||
	       tr_client_events(g->c) < 0;
}

static gboolean src_dispatch(GSource *s, GSourceFunc cb, gpointer cb_data) {
	struct tr_client_glib *g = (struct tr_client_glib *)s;
	int r;

	(void)cb;
	(void)cb_data;
	if (!g->tag) {
		return G_SOURCE_CONTINUE;
	}
	r = tr_client_process(g->c);
	/* A callback may have detached us: GLib holds a reference while we dispatch, so g is
	 * still valid, but nothing more is to be done for the client. */
	if (r >= 0 || r == -EDEADLK || g_source_is_destroyed(s)) {
		return G_SOURCE_CONTINUE;
	}
	/* The connection is dead: stop watching a fd that would stay readable (EOF) for ever,
	 * then tell the application, which may detach and close from there. Touch nothing after
	 * the callback. */
	g_source_remove_unix_fd(s, g->tag);
	g->tag = NULL;
	if (g->dead_cb) {
		g->dead_cb(g->c, r, g->userdata);
	}
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs funcs = {
	.prepare = src_prepare,
	.check = src_check,
	.dispatch = src_dispatch,
};

int tr_client_glib_attach(struct tr_client *c, GMainContext *context,
	tr_client_glib_dead_cb dead_cb, void *userdata, struct tr_client_glib **ret) {
	struct tr_client_glib *g;
	GSource *s;
	int events;

	if (!c || !ret) {
		return -EINVAL;
	}
	events = tr_client_events(c);
	if (events < 0) {
		return -EINVAL;
	}
	/* GLib aborts rather than return NULL when memory runs out. */
	s = g_source_new(&funcs, sizeof(*g));
	g = (struct tr_client_glib *)s;
	g->c = c;
	g->dead_cb = dead_cb;
	g->userdata = userdata;
	g->tag = g_source_add_unix_fd(s, tr_client_fd(c), condition_of(events));
	g_source_set_name(s, "taskrouter client");
	(void)g_source_attach(s, context);
	*ret = g;
	return 0;
}

struct tr_client_glib *tr_client_glib_detach(struct tr_client_glib *g) {
	if (g) {
		g_source_destroy(&g->source);
		g_source_unref(&g->source);
	}
	return NULL;
}

GSource *tr_client_glib_source(struct tr_client_glib *g) {
	return g ? &g->source : NULL;
}
