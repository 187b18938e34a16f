/*
 * test-resilience.c — the upstream session survives what networks and
 * servers do, and afterwards the cache equals the simulator's state:
 * websocket drops with and without a close frame, paused heartbeats (the
 * watchdog), a simulator restart, tasks that end while the daemon is
 * disconnected (resync events), REST failures during bootstrap.
 */
#include "common.h"

#include <errno.h>

static struct trt_env env;
static struct trt_conn *rpc, *sub;

static const char *const sim_args[] = {"--heartbeat-ms", "200", NULL};
static const char *const daemon_args[] = {"--heartbeat-timeout-ms", "1500", "--rest-timeout-ms",
	"2000", NULL};

static int setup(void **state) {
	struct tr_json *r;
	(void)state;
	if (e2e_start(&env, sim_args, daemon_args) < 0) {
		return -1;
	}
	if (trt_connect(env.daemon.socket_path, &rpc) < 0 ||
		trt_connect(env.daemon.socket_path, &sub) < 0) {
		return -1;
	}
	r = trt_call_ok(sub, "events.subscribe", "{}");
	tr_json_free(r);
	return r ? 0 : -1;
}

static int teardown(void **state) {
	(void)state;
	trt_conn_free(rpc);
	trt_conn_free(sub);
	rpc = sub = NULL;
	return e2e_stop(&env) == 0 ? 0 : -1;
}

/* Wait for disconnected then ready on the event stream. */
static void wait_reconnected(const char *why) {
	struct tr_json *ev = NULL;
	if (trt_wait_event(sub, "disconnected", NULL, E2E_WAIT, &ev) != 0) {
		fprintf(stderr, "# no disconnected event after %s\n", why);
		fail();
	}
	tr_json_free(ev);
	if (trt_wait_event(sub, "ready", NULL, E2E_WAIT, &ev) != 0) {
		fprintf(stderr, "# no ready event after %s\n", why);
		fail();
	}
	tr_json_free(ev);
}

static void test_drop_with_close_frame(void **state) {
	char sid[35], res[35];
	(void)state;
	e2e_new_task(&env, sub, true, sid, res);
	assert_int_equal(trt_sim_http(&env, "POST", "/sim/faults/drop",
				 "{\"close\":true,\"code\":1011,\"reason\":\"maintenance\"}", NULL),
		200);
	wait_reconnected("a drop with a close frame");
	e2e_assert_cache_matches(&env, rpc);
}

static void test_drop_without_close_frame(void **state) {
	char sid[35], res[35];
	(void)state;
	e2e_new_task(&env, sub, true, sid, res);
	assert_int_equal(trt_sim_http(&env, "POST", "/sim/faults/drop", "{\"close\":false}", NULL),
		200);
	wait_reconnected("a drop without a close frame");
	e2e_assert_cache_matches(&env, rpc);
}

static void test_heartbeats_paused(void **state) {
	struct tr_json *ev = NULL;
	(void)state;
	assert_int_equal(trt_sim_http(&env, "POST", "/sim/faults/heartbeats", "{\"paused\":true}",
				 NULL),
		200);
	/* the watchdog (1.5 s here) declares the half-open socket dead */
	assert_int_equal(trt_wait_event(sub, "disconnected", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	assert_int_equal(trt_sim_http(&env, "POST", "/sim/faults/heartbeats", "{\"paused\":false}",
				 NULL),
		200);
	assert_int_equal(trt_wait_event(sub, "ready", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	e2e_assert_cache_matches(&env, rpc);
}

/* Tasks that end while the daemon cannot connect produce resync events. */
static void test_missed_while_disconnected(void **state) {
	char done[35], gone[35], res1[35], res2[35], kept[35], res3[35];
	struct tr_json *ev = NULL;
	(void)state;
	e2e_new_task(&env, sub, true, done, res1);
	e2e_new_task(&env, sub, false, gone, res2);
	e2e_new_task(&env, sub, true, kept, res3);

	/* refuse websocket upgrades, then drop the session: the daemon stays disconnected */
	assert_int_equal(trt_sim_http(&env, "POST", "/sim/faults/refuse-ws", "{\"refuse\":true}",
				 NULL),
		200);
	assert_int_equal(trt_sim_http(&env, "POST", "/sim/faults/drop", "{\"close\":false}", NULL),
		200);
	assert_int_equal(trt_wait_event(sub, "disconnected", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);

	assert_int_equal(trt_sim_http(&env, "POST", trt_fmt("/sim/tasks/%s/complete", done), NULL,
				 NULL),
		200);
	assert_int_equal(trt_sim_http(&env, "POST", trt_fmt("/sim/tasks/%s/cancel", gone),
				 "{\"reason\":\"abandoned\"}", NULL),
		200);
	assert_int_equal(trt_sim_http(&env, "POST", trt_fmt("/sim/tasks/%s/update", kept),
				 "{\"attributes\":{\"note\":\"changed offline\"}}", NULL),
		200);

	assert_int_equal(trt_sim_http(&env, "POST", "/sim/faults/refuse-ws", "{\"refuse\":false}",
				 NULL),
		200);
	/* each change is reported, marked resync */
	assert_int_equal(trt_wait_event(sub, "completed", done, E2E_WAIT, &ev), 0);
	assert_true(tr_json_get(ev, "resync") && tr_json_get(ev, "resync")->type == TR_JSON_TRUE);
	tr_json_free(ev);
	assert_int_equal(trt_wait_event(sub, "ready", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	e2e_assert_cache_matches(&env, rpc);
	{
		struct tr_json *t = trt_call_ok(rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", kept));
		assert_non_null(t);
		assert_string_equal(e2e_str(tr_json_get(t, "attributes"), "note"), "changed offline");
		tr_json_free(t);
	}
	(void)gone;
}

/* Each REST failure class during bootstrap is retried until the cache is complete. */
static void test_rest_failures_during_bootstrap(void **state) {
	const char *faults[] = {
		"{\"count\":2,\"status\":500}",
		"{\"count\":2,\"status\":429}",
		"{\"count\":1,\"hang_ms\":5000}", /* past the 2 s REST timeout */
	};
	char sid[35], res[35];
	(void)state;
	e2e_new_task(&env, sub, true, sid, res);
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		assert_int_equal(trt_sim_http(&env, "POST", "/sim/faults/rest", faults[i], NULL), 200);
		assert_int_equal(trt_sim_http(&env, "POST", "/sim/faults/drop", "{\"close\":true}",
					 NULL),
			200);
		wait_reconnected(faults[i]);
		e2e_assert_cache_matches(&env, rpc);
	}
}

/* A call while the upstream session is down fails fast with not-connected. */
static void test_call_while_disconnected_fails_fast(void **state) {
	char sid[35], res[35];
	struct tr_json *ev = NULL, *err = NULL;
	int code;
	(void)state;
	e2e_new_task(&env, sub, true, sid, res);
	assert_int_equal(trt_sim_http(&env, "POST", "/sim/faults/refuse-ws", "{\"refuse\":true}",
				 NULL),
		200);
	assert_int_equal(trt_sim_http(&env, "POST", "/sim/faults/drop", "{\"close\":true}", NULL),
		200);
	assert_int_equal(trt_wait_event(sub, "disconnected", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	/* reads still answer from the cache; writes are refused at once */
	ev = trt_call_ok(rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(ev);
	tr_json_free(ev);
	code = trt_call_err(rpc, "task.wrapUp", trt_fmt("{\"sid\":\"%s\"}", sid), &err);
	assert_int_equal(code, TR_RPC_NOT_CONNECTED);
	tr_json_free(err);
	assert_int_equal(trt_sim_http(&env, "POST", "/sim/faults/refuse-ws", "{\"refuse\":false}",
				 NULL),
		200);
	assert_int_equal(trt_wait_event(sub, "ready", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
}

/* The simulator restarts (new process, same port, empty world): the daemon reconnects and
 * reports the tasks it lost. */
static void test_simulator_restart(void **state) {
	char sid[35], res[35];
	struct tr_json *ev = NULL;
	(void)state;
	e2e_new_task(&env, sub, true, sid, res);
	env.sim.want_port = env.sim.port;
	assert_int_equal(trt_sim_stop(&env), 0);
	assert_int_equal(trt_wait_event(sub, "disconnected", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	{
		/* same port, same token directory (same signing key: the token stays valid) */
		assert_int_equal(trt_sim_start(&env, sim_args), 0);
	}
	assert_int_equal(trt_wait_event(sub, "ready", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	e2e_assert_cache_matches(&env, rpc);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_drop_with_close_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_without_close_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeats_paused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missed_while_disconnected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rest_failures_during_bootstrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_while_disconnected_fails_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(test_simulator_restart, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
