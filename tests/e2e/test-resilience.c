/*
 * test-resilience.c — the upstream session survives what networks and
 * servers do, and afterwards the cache equals the simulator's state:
 * websocket drops with and without a close frame, paused heartbeats (the
 * watchdog), a simulator restart, tasks that end while the daemon is
 * disconnected (resync events), REST failures during bootstrap.
 */
#include "common.h"

#include <errno.h>

static const char *const sim_args[] = {"--heartbeat-ms", "200", NULL};
static const char *const daemon_args[] = {"--heartbeat-timeout-ms", "1500", "--rest-timeout-ms",
	"2000", NULL};
static struct e2e_args args = {sim_args, daemon_args};

/* Refuse websocket upgrades, then drop the session (drop: the fault's body): the daemon stays
 * disconnected until the upgrades are accepted again. */
static void stay_disconnected(const char *drop) {
	e2e_sim_post(&e2e.env, "/sim/faults/refuse-ws", "{\"refuse\":true}");
	e2e_sim_post(&e2e.env, "/sim/faults/drop", drop);
	e2e_wait_event(e2e.sub, "disconnected", NULL);
}

static void test_drop_with_close_frame(void **state) {
	char sid[35], res[35];
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	e2e_sim_post(&e2e.env, "/sim/faults/drop",
		"{\"close\":true,\"code\":1011,\"reason\":\"maintenance\"}");
	e2e_wait_reconnected(e2e.sub, "a drop with a close frame");
	e2e_assert_cache_matches(&e2e.env, e2e.rpc);
}

static void test_drop_without_close_frame(void **state) {
	char sid[35], res[35];
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	e2e_sim_post(&e2e.env, "/sim/faults/drop", "{\"close\":false}");
	e2e_wait_reconnected(e2e.sub, "a drop without a close frame");
	e2e_assert_cache_matches(&e2e.env, e2e.rpc);
}

static void test_heartbeats_paused(void **state) {
	(void)state;
	e2e_sim_post(&e2e.env, "/sim/faults/heartbeats", "{\"paused\":true}");
	/* the watchdog (1.5 s here) declares the half-open socket dead */
	e2e_wait_event(e2e.sub, "disconnected", NULL);
	e2e_sim_post(&e2e.env, "/sim/faults/heartbeats", "{\"paused\":false}");
	e2e_wait_event(e2e.sub, "ready", NULL);
	e2e_assert_cache_matches(&e2e.env, e2e.rpc);
}

/* Tasks that end while the daemon cannot connect produce resync events. */
static void test_missed_while_disconnected(void **state) {
	char done[35], gone[35], res1[35], res2[35], kept[35], res3[35];
	struct tr_json *ev = NULL;
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, true, done, res1);
	e2e_new_task(&e2e.env, e2e.sub, false, gone, res2);
	e2e_new_task(&e2e.env, e2e.sub, true, kept, res3);

	stay_disconnected("{\"close\":false}");

	e2e_sim_post(&e2e.env, trt_fmt("/sim/tasks/%s/complete", done), NULL);
	e2e_sim_post(&e2e.env, trt_fmt("/sim/tasks/%s/cancel", gone), "{\"reason\":\"abandoned\"}");
	e2e_sim_post(&e2e.env, trt_fmt("/sim/tasks/%s/update", kept),
		"{\"attributes\":{\"note\":\"changed offline\"}}");

	e2e_sim_post(&e2e.env, "/sim/faults/refuse-ws", "{\"refuse\":false}");
	/* each change is reported, marked resync */
	assert_int_equal(trt_wait_event(e2e.sub, "completed", done, E2E_WAIT, &ev), 0);
	assert_true(tr_json_get(ev, "resync") && tr_json_get(ev, "resync")->type == TR_JSON_TRUE);
	tr_json_free(ev);
	e2e_wait_event(e2e.sub, "ready", NULL);
	e2e_assert_cache_matches(&e2e.env, e2e.rpc);
	{
		struct tr_json *t =
			trt_call_ok(e2e.rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", kept));
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
	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		e2e_sim_post(&e2e.env, "/sim/faults/rest", faults[i]);
		e2e_sim_post(&e2e.env, "/sim/faults/drop", "{\"close\":true}");
		e2e_wait_reconnected(e2e.sub, faults[i]);
		e2e_assert_cache_matches(&e2e.env, e2e.rpc);
	}
}

/* A call while the upstream session is down fails fast with not-connected. */
static void test_call_while_disconnected_fails_fast(void **state) {
	char sid[35], res[35];
	struct tr_json *ev = NULL, *err = NULL;
	int code;
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	stay_disconnected("{\"close\":true}");
	/* reads still answer from the cache; writes are refused at once */
	ev = trt_call_ok(e2e.rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(ev);
	tr_json_free(ev);
	code = trt_call_err(e2e.rpc, "task.wrapUp", trt_fmt("{\"sid\":\"%s\"}", sid), &err);
	assert_int_equal(code, TR_RPC_NOT_CONNECTED);
	tr_json_free(err);
	e2e_sim_post(&e2e.env, "/sim/faults/refuse-ws", "{\"refuse\":false}");
	e2e_wait_event(e2e.sub, "ready", NULL);
}

/* The simulator restarts (new process, same port, empty world): the daemon reconnects and
 * reports the tasks it lost. */
static void test_simulator_restart(void **state) {
	char sid[35], res[35];
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	e2e.env.sim.want_port = e2e.env.sim.port;
	assert_int_equal(trt_sim_stop(&e2e.env), 0);
	e2e_wait_event(e2e.sub, "disconnected", NULL);
	{
		/* same port, same token directory (same signing key: the token stays valid) */
		assert_int_equal(trt_sim_start(&e2e.env, sim_args), 0);
	}
	e2e_wait_event(e2e.sub, "ready", NULL);
	e2e_assert_cache_matches(&e2e.env, e2e.rpc);
}

/* Each test on a simulator and a daemon of its own, with short heartbeats and timeouts. */
#define CASE(fn) cmocka_unit_test_prestate_setup_teardown(fn, e2e_setup, e2e_teardown, &args)

int main(void) {
	const struct CMUnitTest tests[] = {
		CASE(test_drop_with_close_frame),
		CASE(test_drop_without_close_frame),
		CASE(test_heartbeats_paused),
		CASE(test_missed_while_disconnected),
		CASE(test_rest_failures_during_bootstrap),
		CASE(test_call_while_disconnected_fails_fast),
		CASE(test_simulator_restart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
