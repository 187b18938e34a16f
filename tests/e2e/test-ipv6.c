/*
 * test-ipv6.c — the simulator and taskrouterd on IPv6 loopback (issue #18): the simulator
 * listens on [::1], the daemon's websocket and REST URLs are ws://[::1]:P and
 * http://[::1]:P; the session becomes ready, a task routed to alice arrives as an event and
 * a Task call goes upstream and back. Where [::1] cannot be bound (a machine without IPv6)
 * the test says so and passes.
 */
#include "common.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_ipv6_loopback(void **state) {
	struct trt_env env;
	struct trt_conn *c = NULL, *sub = NULL;
	struct tr_json *st, *ev = NULL, *task;
	char sid[35], res[35];
	(void)state;

	if (!trt_have_ipv6_loopback()) {
		print_message("# [::1] cannot be bound here: nothing tried\n");
		return;
	}
	assert_int_equal(trt_env_init(&env), 0);
	env.sim.host = "::1";
	assert_int_equal(trt_sim_start(&env, NULL), 0);
	assert_true(strncmp(env.sim.base_url, "http://[::1]:", 13) == 0);
	assert_int_equal(trt_daemon_start(&env, "alice", NULL), 0);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
	assert_int_equal(trt_connect(env.daemon.socket_path, &c), 0);
	assert_int_equal(trt_connect(env.daemon.socket_path, &sub), 0);
	tr_json_free(e2e_subscribe(sub, NULL));

	st = trt_call_ok(c, "daemon.status", NULL);
	e2e_assert_contains(e2e_str(tr_json_get(st, "upstream"), "websocketUrl"), "ws://[::1]:");
	e2e_assert_contains(e2e_str(tr_json_get(st, "upstream"), "restUrl"), "http://[::1]:");
	tr_json_free(st);

	/* an event over the websocket, a call over REST */
	assert_int_equal(trt_sim_create_task(&env, "alice", "voice", "{\"via\":\"ipv6\"}", false, sid,
				 res),
		0);
	assert_int_equal(trt_wait_event(sub, "reservationCreated", sid, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	task = trt_call_ok(c, "reservation.accept", trt_fmt("{\"sid\":\"%s\"}", res));
	assert_non_null(task);
	tr_json_free(task);
	task = trt_call_ok(c, "task.setAttributes",
		trt_fmt("{\"sid\":\"%s\",\"attributes\":{\"via\":\"ipv6\",\"ok\":true}}", sid));
	assert_non_null(task);
	tr_json_free(task);
	e2e_wait_event(sub, "updated", sid);

	trt_conn_free(sub);
	trt_conn_free(c);
	assert_int_equal(e2e_stop(&env), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv6_loopback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
