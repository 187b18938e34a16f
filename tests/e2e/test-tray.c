/*
 * test-tray.c — the tray example (client/examples/tray.c) against taskrouterd and
 * taskrouter-sim: it must see a task created in the simulator, whether the task exists
 * before it starts (task.list) or arrives afterwards (an event), and exit 0.
 */
#include "common.h"

static const char *tray_bin;

/* The task exists before the helper starts: it finds it in its first task.list. */
static void test_task_before_start(void **state) {
	char sid[35], res[35], *out = NULL;
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, false, sid, res);
	{
		const char *argv[] = {tray_bin, "--socket", e2e.env.daemon.socket_path,
			"--exit-on-task", sid, NULL};
		assert_int_equal(trt_run(argv, NULL, NULL, E2E_WAIT, &out), 0);
	}
	e2e_assert_contains(out, sid);
	e2e_assert_contains(out, trt_fmt("saw task %s, exiting", sid));
	free(out);
}

/* The task is created while the helper runs: it learns about it from an event. The helper
 * says "subscribed" once the daemon has its subscription; the task is created after that,
 * so it cannot be in the helper's first task.list. */
static void test_task_after_start(void **state) {
	const char *argv[] = {
		tray_bin, "--socket", e2e.env.daemon.socket_path, "--max-events", "1", NULL};
	struct trt_spawn_opts opts = {.pipe_stdout = true};
	char sid[35], res[35];
	struct tr_json *ev = NULL;
	struct trt_proc tray;
	const char *out, *ts;
	(void)state;

	assert_int_equal(trt_proc_spawn(&tray, "tray", argv, &opts), 0);
	assert_int_equal(trt_proc_wait_output(&tray, "subscribed\n", E2E_WAIT), 0);
	assert_int_equal(trt_sim_create_task(&e2e.env, "alice", "chat", "{\"type\":\"sales\"}",
				 false, sid, res),
		0);
	/* --max-events 1: it exits after the event */
	assert_int_equal(trt_proc_wait_exit(&tray, E2E_WAIT), 0);
	out = tray.out.data;
	e2e_assert_contains(out, "subscribed");
	e2e_assert_contains(out, "event seq=");
	assert_int_equal(trt_wait_event(e2e.sub, "reservationCreated", NULL, E2E_WAIT, &ev), 0);
	ts = tr_json_get_string(ev, "taskSid");
	assert_non_null(ts);
	e2e_assert_contains(out, ts);
	tr_json_free(ev);
	trt_proc_done(&tray);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_task_before_start),
		cmocka_unit_test(test_task_after_start),
	};
	tray_bin = e2e_binary("TR_TRAY");
	return tray_bin ? cmocka_run_group_tests(tests, e2e_setup, e2e_teardown) : 1;
}
