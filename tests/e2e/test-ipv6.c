/*
 * test-ipv6.c — the simulator and taskrouterd on IPv6 loopback (issue #18): the simulator
 * listens on [::1], the daemon's websocket and REST URLs are ws://[::1]:P and
 * http://[::1]:P; the session becomes ready, a task routed to alice arrives as an event and
 * a Task call goes upstream and back. Where [::1] cannot be bound (a machine without IPv6)
 * the test says so and passes.
 */
#include "common.h"

#include <string.h>

static void test_ipv6_loopback(void **state) {
	struct trt_env env;
	const struct tr_json *up;
	struct tr_json *st;
	(void)state;

	if (!e2e_env_ipv6(&env, false)) {
		return;
	}
	assert_int_equal(trt_sim_start(&env, NULL), 0);
	assert_true(strncmp(env.sim.base_url, "http://[::1]:", 13) == 0);
	assert_int_equal(trt_daemon_start(&env, "alice", NULL), 0);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);

	st = e2e_upstream(&env, &up);
	e2e_assert_contains(e2e_str(up, "websocketUrl"), "ws://[::1]:");
	e2e_assert_contains(e2e_str(up, "restUrl"), "http://[::1]:");
	tr_json_free(st);

	/* an event over the websocket, a call over REST */
	e2e_task_round_trip(&env, "ipv6");
	assert_int_equal(e2e_stop(&env), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv6_loopback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
