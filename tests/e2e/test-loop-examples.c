/*
 * test-loop-examples.c — the foreign-loop examples against taskrouterd and taskrouter-sim:
 * client/examples/poll.c (a plain poll() loop) and client/examples/glib.c (a GMainLoop via
 * libtaskrouter-glib). Each must read daemon.status, subscribe, print the event of a task
 * created afterwards, leave cleanly on SIGTERM, and notice when the daemon goes away. The
 * GLib tests are skipped when the GLib example was not built (no glib-2.0).
 */
#include "common.h"

static const char *poll_bin, *glib_bin;

/* Start bin with --socket and extra arguments (NULL-terminated, at most 2) and wait until it
 * has subscribed; its stdout is piped. */
static void start_example(struct trt_proc *p, const char *bin, const char *a1, const char *a2) {
	const char *argv[] = {bin, "--socket", e2e.env.daemon.socket_path, a1, a2, NULL};
	struct trt_spawn_opts opts = {.pipe_stdout = true};

	assert_int_equal(trt_proc_spawn(p, "example", argv, &opts), 0);
	assert_int_equal(trt_proc_wait_output(p, "subscribed seq=", E2E_WAIT), 0);
	/* The call before the subscription: daemon.status read through struct tr_result. */
	e2e_assert_contains(p->out.data, "status state=ready connections=");
}

/* A task created after the example subscribed reaches it as an event; --max-events 1 makes
 * it exit 0 after printing it. */
static void check_event(const char *bin) {
	struct tr_json *ev = NULL;
	struct trt_proc p;
	char sid[35], res[35];
	const char *ts;

	trt_proc_init(&p);
	start_example(&p, bin, "--max-events", "1");
	assert_int_equal(trt_sim_create_task(&e2e.env, "alice", "chat", "{\"type\":\"sales\"}",
				 false, sid, res),
		0);
	assert_int_equal(trt_proc_wait_exit(&p, E2E_WAIT), 0);
	assert_int_equal(trt_wait_event(e2e.sub, "reservationCreated", NULL, E2E_WAIT, &ev), 0);
	ts = tr_json_get_string(ev, "taskSid");
	assert_non_null(ts);
	e2e_assert_contains(p.out.data, trt_fmt(" reservationCreated task=%s status=", ts));
	tr_json_free(ev);
	trt_proc_done(&p);
}

/* SIGTERM ends the loop cleanly. */
static void check_signal(const char *bin) {
	struct trt_proc p;

	trt_proc_init(&p);
	start_example(&p, bin, NULL, NULL);
	assert_int_equal(trt_proc_stop(&p, E2E_WAIT), 0);
	e2e_assert_contains(p.out.data, "signal, exiting");
	trt_proc_done(&p);
}

/* The daemon stops: the example learns it from its loop (no call pending) and exits 1. */
static void check_daemon_gone(const char *bin) {
	struct trt_proc p;

	trt_proc_init(&p);
	start_example(&p, bin, NULL, NULL);
	e2e_disconnect();
	assert_int_equal(trt_daemon_stop(&e2e.env), 0);
	assert_int_equal(trt_proc_wait_exit(&p, E2E_WAIT), 1);
	trt_proc_done(&p);
	assert_int_equal(trt_daemon_start(&e2e.env, "alice", NULL), 0);
	assert_int_equal(trt_daemon_wait_status(&e2e.env, "ready", E2E_WAIT), 0);
	assert_int_equal(e2e_connect(), 0);
}

static void test_poll_event(void **state) {
	(void)state;
	check_event(poll_bin);
}

static void test_poll_signal(void **state) {
	(void)state;
	check_signal(poll_bin);
}

static void test_poll_daemon_gone(void **state) {
	(void)state;
	check_daemon_gone(poll_bin);
}

static void test_glib_event(void **state) {
	(void)state;
	if (!glib_bin) {
		skip();
	}
	check_event(glib_bin);
}

static void test_glib_signal(void **state) {
	(void)state;
	if (!glib_bin) {
		skip();
	}
	check_signal(glib_bin);
}

static void test_glib_daemon_gone(void **state) {
	(void)state;
	if (!glib_bin) {
		skip();
	}
	check_daemon_gone(glib_bin);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_poll_event),
		cmocka_unit_test(test_glib_event),
		cmocka_unit_test(test_poll_signal),
		cmocka_unit_test(test_glib_signal),
		cmocka_unit_test(test_poll_daemon_gone),
		cmocka_unit_test(test_glib_daemon_gone),
	};
	const char *g = getenv("TR_GLIB_EXAMPLE");

	poll_bin = e2e_binary("TR_POLL_EXAMPLE");
	glib_bin = g && *g ? g : NULL; /* optional: set only when GLib was found */
	return poll_bin ? cmocka_run_group_tests(tests, e2e_setup, e2e_teardown) : 1;
}
