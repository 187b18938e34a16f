/*
 * glib.c — libtaskrouter on a GLib main loop through libtaskrouter-glib: asks
 * daemon.status, subscribes to every event and prints one line per event, all with
 * asynchronous calls. One call (tr_client_glib_attach) hooks the client into the loop;
 * requests, replies, events and timeouts then need nothing more from the application.
 *
 * Usage: taskrouter-glib-example [--socket PATH] [--max-events N]
 * Exit status: 0 on a clean exit, 1 on a failure (connection lost, call failed), 2 usage.
 */
#include <errno.h>
#include <glib-unix.h>
#include <glib.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <taskrouter/client-glib.h>
#include <taskrouter/client.h>

#define CALL_TIMEOUT_MS 10000

struct app {
	GMainLoop *loop;
	long max_events;
	long n_events;
	bool done;
	int status;
};

static void finish(struct app *a, int status) {
	if (!a->done) {
		a->done = true;
		a->status = status;
		g_main_loop_quit(a->loop);
	}
}

static void fail(struct app *a, const char *what, const struct tr_client_error *err) {
	fprintf(stderr, "glib-example: %s failed: %s\n", what,
		err && err->message ? err->message : "?");
	finish(a, 1);
}

static void on_event(struct tr_client *c, const struct tr_client_event *ev, void *userdata) {
	struct app *a = userdata;
	const char *status = ev->task ? tr_task_status(ev->task) : NULL;

	if (a->done) {
		return; /* more events came in the same read; we are leaving */
	}
	printf("event seq=%" PRId64 " %s task=%s status=%s\n", ev->seq, ev->name,
		ev->task_sid ? ev->task_sid : "-", status ? status : "-");
	fflush(stdout);
	if (a->max_events > 0 && ++a->n_events >= a->max_events) {
		finish(a, 0);
	}
}

static void on_subscribed(struct tr_client *c, const char *result,
	const struct tr_client_error *err, void *userdata) {
	struct app *a = userdata;
	struct tr_result *r = NULL;
	int64_t seq = -1;

	if (err) {
		if (!a->done) {
			fail(a, "events.subscribe", err);
		}
		return;
	}
	if (tr_result_parse(result, &r) == 0) {
		(void)tr_result_get_int(r, "seq", &seq);
	}
	printf("subscribed seq=%" PRId64 "\n", seq);
	fflush(stdout);
	tr_result_free(r);
}

/* The first reply: print the daemon's state, then subscribe (a call from a callback). */
static void on_status(struct tr_client *c, const char *result, const struct tr_client_error *err,
	void *userdata) {
	struct app *a = userdata;
	struct tr_result *r = NULL;
	const char *state;
	int64_t conns = -1;
	int e;

	if (err) {
		if (!a->done) {
			fail(a, "daemon.status", err);
		}
		return;
	}
	if (tr_result_parse(result, &r) < 0) {
		fail(a, "reading daemon.status", NULL);
		return;
	}
	state = tr_result_get_string(r, "state");
	(void)tr_result_get_int(r, "connections", &conns);
	printf("status state=%s connections=%" PRId64 "\n", state ? state : "-", conns);
	fflush(stdout);
	tr_result_free(r);
	e = tr_client_call_async(
		c, "events.subscribe", "{}", CALL_TIMEOUT_MS, on_subscribed, a, NULL);
	if (e < 0) {
		fprintf(stderr, "glib-example: events.subscribe: %s\n", strerror(-e));
		finish(a, 1);
	}
}

static void on_dead(struct tr_client *c, int errnum, void *userdata) {
	fprintf(stderr, "glib-example: connection lost: %s\n", strerror(-errnum));
	finish(userdata, 1);
}

static gboolean on_signal(gpointer userdata) {
	printf("signal, exiting\n");
	finish(userdata, 0);
	return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv) {
	struct app a = {0};
	struct tr_client *c = NULL;
	struct tr_client_glib *g = NULL;
	const char *path = NULL;
	int r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--max-events") == 0 && i + 1 < argc) {
			a.max_events = strtol(argv[++i], NULL, 10);
			if (a.max_events <= 0) {
				fprintf(stderr, "glib-example: invalid --max-events\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("Usage: %s [--socket PATH] [--max-events N]\n", argv[0]);
			return 0;
		} else {
			fprintf(stderr, "glib-example: unexpected argument %s\n", argv[i]);
			return 2;
		}
	}

	r = tr_client_connect(path, CALL_TIMEOUT_MS, &c);
	if (r < 0) {
		fprintf(stderr, "glib-example: cannot connect: %s\n", strerror(-r));
		return 1;
	}
	a.loop = g_main_loop_new(NULL, FALSE);
	r = tr_client_glib_attach(c, NULL, on_dead, &a, &g);
	if (r < 0) {
		fprintf(stderr, "glib-example: attach: %s\n", strerror(-r));
		tr_client_close(c);
		g_main_loop_unref(a.loop);
		return 1;
	}
	tr_client_set_event_cb(c, on_event, &a);
	(void)g_unix_signal_add(SIGINT, on_signal, &a);
	(void)g_unix_signal_add(SIGTERM, on_signal, &a);

	r = tr_client_call_async(c, "daemon.status", NULL, CALL_TIMEOUT_MS, on_status, &a, NULL);
	if (r < 0) {
		fprintf(stderr, "glib-example: daemon.status: %s\n", strerror(-r));
		finish(&a, 1);
	} else {
		g_main_loop_run(a.loop);
	}

	g = tr_client_glib_detach(g);
	c = tr_client_close(c);
	g_main_loop_unref(a.loop);
	fflush(stdout);
	return a.status;
}
