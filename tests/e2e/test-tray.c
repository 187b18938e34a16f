/*
 * test-tray.c — the tray example (client/examples/tray.c) against taskrouterd and
 * taskrouter-sim: it must see a task created in the simulator, whether the task exists
 * before it starts (task.list) or arrives afterwards (an event), and exit 0.
 */
#include "common.h"

#include <errno.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

static struct trt_env env;
static struct trt_conn *sub;
static const char *tray_bin;

static int group_setup(void **state) {
	struct tr_json *r;
	(void)state;
	tray_bin = getenv("TR_TRAY");
	if (!tray_bin) {
		fprintf(stderr, "# TR_TRAY not set\n");
		return -1;
	}
	if (e2e_start(&env, NULL, NULL) < 0 || trt_connect(env.daemon.socket_path, &sub) < 0) {
		return -1;
	}
	r = trt_call_ok(sub, "events.subscribe", "{}");
	if (!r) {
		return -1;
	}
	tr_json_free(r);
	return 0;
}

static int group_teardown(void **state) {
	(void)state;
	trt_conn_free(sub);
	return e2e_stop(&env) == 0 ? 0 : -1;
}

static void assert_contains(const char *hay, const char *needle) {
	if (!hay || !strstr(hay, needle)) {
		fprintf(stderr, "# expected '%s' in output:\n%s\n", needle, hay ? hay : "(null)");
		fail();
	}
}

/* The task exists before the helper starts: it finds it in its first task.list. */
static void test_task_before_start(void **state) {
	char sid[35], res[35], *out = NULL;
	(void)state;
	e2e_new_task(&env, sub, false, sid, res);
	{
		const char *argv[] = {tray_bin, "--socket", env.daemon.socket_path, "--exit-on-task",
			sid, NULL};
		assert_int_equal(trt_run(argv, NULL, NULL, E2E_WAIT, &out), 0);
	}
	assert_contains(out, sid);
	assert_contains(out, trt_fmt("saw task %s, exiting", sid));
	free(out);
}

/* The task is created while the helper runs: it learns about it from an event. The helper
 * is started by trt_run (blocking), so the task is created from a child process. */
static void test_task_after_start(void **state) {
	char sid[35], res[35], *out = NULL;
	struct tr_json *ev = NULL;
	(void)state;
	/* Create a task the helper will not see in its list: not yet existing. The helper
	 * runs with --max-events so it cannot wait forever; the creation happens through the
	 * simulator's control API from a forked child once the daemon has a second
	 * subscription (the helper's). */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* child: wait for the helper's subscription, then create the task */
		struct trt_conn *c = NULL;
		int64_t n = 0;
		int tries = 0;
		if (trt_connect(env.daemon.socket_path, &c) < 0) {
			_exit(1);
		}
		while (n < 2 && tries++ < 1000) {
			struct tr_json *st = trt_call_ok(c, "daemon.status", "{}");
			if (!st) {
				_exit(1);
			}
			tr_json_get_int(st, "subscriptions", &n);
			tr_json_free(st);
			if (n < 2) {
				poll(NULL, 0, 20); /* re-check; bounded by the tries */
			}
		}
		if (trt_sim_create_task(&env, "alice", "chat", "{\"type\":\"sales\"}", false, sid,
			    res) < 0) {
			_exit(1);
		}
		/* hand the sid to the parent on stdout of this process is not possible here;
		 * the parent checks the helper's output for the sid reported by the event */
		trt_conn_free(c);
		_exit(0);
	}
	{
		const char *argv[] = {tray_bin, "--socket", env.daemon.socket_path, "--max-events",
			"1", NULL};
		int st = 0;
		assert_int_equal(trt_run(argv, NULL, NULL, E2E_WAIT, &out), 0);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_contains(out, "subscribed");
	assert_contains(out, "event seq=");
	assert_int_equal(trt_wait_event(sub, "reservationCreated", NULL, E2E_WAIT, &ev), 0);
	{
		const char *ts = tr_json_get_string(ev, "taskSid");
		assert_non_null(ts);
		assert_contains(out, ts);
	}
	tr_json_free(ev);
	free(out);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_task_before_start),
		cmocka_unit_test(test_task_after_start),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
