/*
 * test-resilience.c — the upstream session survives what networks and
 * servers do, and afterwards the cache equals the simulator's state:
 * websocket drops with and without a close frame, paused heartbeats (the
 * watchdog), a simulator restart, tasks that end while the daemon is
 * disconnected (resync events, each vanished task reported as it really ended),
 * REST failures during bootstrap.
 */
#include "common.h"

#include <errno.h>

static const char *const sim_args[] = {"--heartbeat-ms", "200", NULL};
static const char *const daemon_args[] = {"--heartbeat-timeout-ms", "1500", "--rest-timeout-ms",
	"2000", NULL};
static struct e2e_args args = {sim_args, daemon_args};
/* REST answers may come late without timing out (a GET held back by the simulator) */
static const char *const patient_daemon_args[] = {"--heartbeat-timeout-ms", "1500",
	"--rest-timeout-ms", "60000", NULL};
static struct e2e_args patient_args = {sim_args, patient_daemon_args};

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

/* Wait for ready and, in any order, the vanished event (resync and vanished true) of each of
 * the n tasks sids[], skipping other events; ret[i] gets sids[i]'s params (caller frees). A
 * second vanished event for a task fails the test. */
static void wait_vanished(size_t n, const char *const *sids, struct tr_json **ret) {
	int64_t deadline = trt_now_ms() + E2E_WAIT;
	size_t got = 0;
	bool ready = false;

	memset(ret, 0, n * sizeof(*ret));
	while (got < n || !ready) {
		struct tr_json *p = NULL;
		const char *ts;
		int r = trt_next_event(e2e.sub, trt_remaining(deadline), &p);

		if (r < 0) {
			fprintf(stderr, "# %zu of %zu vanished events, %s: %s\n", got, n,
				ready ? "ready" : "no ready", strerror(-r));
			fail();
		}
		ready = ready || trt_event_is(p, "ready", NULL);
		ts = tr_json_get_string(p, "taskSid");
		for (size_t i = 0; ts && i < n; i++) {
			if (strcmp(ts, sids[i]) == 0 && tr_json_is(tr_json_get(p, "vanished"), TR_JSON_TRUE)) {
				assert_null(ret[i]);
				assert_true(tr_json_is(tr_json_get(p, "resync"), TR_JSON_TRUE));
				ret[i] = p;
				p = NULL;
				got++;
				break;
			}
		}
		tr_json_free(p);
	}
}

/* The simulator's wire task sid (from /sim/state; caller frees), or NULL when it is gone. */
static struct tr_json *sim_task(const char *sid) {
	struct tr_json *state = NULL, *t;

	assert_int_equal(trt_sim_http(&e2e.env, "GET", "/sim/state", NULL, &state), 200);
	t = tr_json_dup(trt_json_find(tr_json_get(state, "tasks"), "sid", sid));
	tr_json_free(state);
	return t;
}

/* The event's task and task.get (in the recently-closed grace) show the simulator's state. */
static void assert_final_state(const struct tr_json *ev, const char *sid, const char *status,
	const char *reason) {
	struct tr_json *st = sim_task(sid), *got;
	const struct tr_json *task = tr_json_get(ev, "task");

	assert_non_null(st);
	assert_string_equal(e2e_str(st, "assignment_status"), status);
	assert_string_equal(e2e_str(task, "wireStatus"), status);
	assert_string_equal(e2e_str(task, "reason"), reason);
	assert_int_equal(e2e_version(task), e2e_int(st, "version"));
	assert_int_equal(strtoll(e2e_str(ev, "version"), NULL, 10), e2e_int(st, "version"));
	assert_null(tr_json_get(ev, "finalState"));
	assert_int_equal(tr_json_get(task, "reservations")->u.arr.n, 0);
	got = trt_call_ok(e2e.rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(got);
	assert_string_equal(e2e_str(got, "wireStatus"), status);
	assert_int_equal(e2e_version(got), e2e_int(st, "version"));
	tr_json_free(got);
	tr_json_free(st);
}

/* Tasks that end while the daemon cannot connect produce resync events: each vanished task is
 * reported as it really ended (completed or canceled, with its final version and reason), once
 * the daemon has fetched it, after ready. */
static void test_missed_while_disconnected(void **state) {
	char done[35], gone[35], res1[35], res2[35], kept[35], res3[35];
	const char *sids[2] = {done, gone};
	struct tr_json *fin[2];
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, true, done, res1);
	e2e_new_task(&e2e.env, e2e.sub, false, gone, res2);
	e2e_new_task(&e2e.env, e2e.sub, true, kept, res3);

	stay_disconnected("{\"close\":false}");

	e2e_sim_post(&e2e.env, trt_fmt("/sim/tasks/%s/complete", done), "{\"reason\":\"resolved\"}");
	e2e_sim_post(&e2e.env, trt_fmt("/sim/tasks/%s/cancel", gone), "{\"reason\":\"abandoned\"}");
	e2e_sim_post(&e2e.env, trt_fmt("/sim/tasks/%s/update", kept),
		"{\"attributes\":{\"note\":\"changed offline\"}}");

	e2e_sim_post(&e2e.env, "/sim/faults/refuse-ws", "{\"refuse\":false}");
	/* the vanished ones as they really ended (after ready: they are fetched first) */
	wait_vanished(2, sids, fin);
	assert_string_equal(e2e_str(fin[0], "event"), "completed");
	assert_final_state(fin[0], done, "completed", "resolved");
	assert_string_equal(e2e_str(fin[1], "event"), "canceled");
	assert_final_state(fin[1], gone, "canceled", "abandoned");
	tr_json_free(fin[0]);
	tr_json_free(fin[1]);
	e2e_assert_cache_matches(&e2e.env, e2e.rpc);
	{
		struct tr_json *t =
			trt_call_ok(e2e.rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", kept));
		assert_non_null(t);
		assert_string_equal(e2e_str(tr_json_get(t, "attributes"), "note"), "changed offline");
		tr_json_free(t);
	}
}

/* A task deleted while the daemon is away cannot be fetched: the event says its final state
 * is unknown and why, and the task keeps the last state the daemon knew. */
static void test_deleted_while_disconnected(void **state) {
	char sid[35], res[35];
	const char *sids[1] = {sid};
	struct tr_json *ev, *got;
	int64_t version;
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	version = e2e_task_version(e2e.rpc, sid);
	stay_disconnected("{\"close\":true}");
	e2e_sim_post(&e2e.env, trt_fmt("/sim/tasks/%s/delete", sid), NULL);
	assert_null(sim_task(sid));
	e2e_sim_post(&e2e.env, "/sim/faults/refuse-ws", "{\"refuse\":false}");
	wait_vanished(1, sids, &ev);
	assert_string_equal(e2e_str(ev, "event"), "vanished");
	assert_string_equal(e2e_str(ev, "finalState"), "unknown");
	assert_string_equal(e2e_str(ev, "finalStateReason"), "deleted");
	assert_int_equal(e2e_int(ev, "httpStatus"), 404);
	assert_string_equal(e2e_str(tr_json_get(ev, "task"), "wireStatus"), "assigned");
	assert_int_equal(e2e_version(tr_json_get(ev, "task")), version);
	tr_json_free(ev);
	/* still there for the grace period, as last known, with no live reservation */
	got = trt_call_ok(e2e.rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(got);
	assert_string_equal(e2e_str(got, "wireStatus"), "assigned");
	assert_int_equal(tr_json_get(got, "reservations")->u.arr.n, 0);
	tr_json_free(got);
	e2e_assert_cache_matches(&e2e.env, e2e.rpc);
}

/* Reconnect with the task sid completed meanwhile and its GET held back by the simulator for
 * hang_ms; wait until the session is ready. */
static void reconnect_with_late_get(const char *sid, int hang_ms) {
	stay_disconnected("{\"close\":true}");
	e2e_sim_post(&e2e.env, trt_fmt("/sim/tasks/%s/complete", sid), "{\"reason\":\"resolved\"}");
	e2e_sim_post(&e2e.env, "/sim/faults/rest",
		trt_fmt("{\"count\":1,\"hang_ms\":%d,\"match\":\"Tasks/%s\"}", hang_ms, sid));
	e2e_sim_post(&e2e.env, "/sim/faults/refuse-ws", "{\"refuse\":false}");
	e2e_wait_event(e2e.sub, "ready", NULL);
}

/* The session drops again while the final state of a vanished task is being fetched: the
 * fetch carries on, the next resync does not start another, and the task is reported once,
 * as it ended. */
static void test_reconnect_while_fetching(void **state) {
	char sid[35], res[35], other[35], res2[35];
	const char *sids[1] = {sid};
	struct tr_json *ev;
	int64_t deadline;
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	reconnect_with_late_get(sid, trt_under_valgrind() ? 15000 : 3000);
	stay_disconnected("{\"close\":false}");
	e2e_sim_post(&e2e.env, "/sim/faults/refuse-ws", "{\"refuse\":false}");
	wait_vanished(1, sids, &ev); /* with the second ready, in any order */
	assert_string_equal(e2e_str(ev, "event"), "completed");
	assert_final_state(ev, sid, "completed", "resolved");
	tr_json_free(ev);
	/* no second report: none before the next event */
	assert_int_equal(trt_sim_create_task(&e2e.env, "alice", "voice", "{}", false, other, res2), 0);
	deadline = trt_now_ms() + E2E_WAIT;
	for (;;) {
		struct tr_json *p = NULL;
		assert_int_equal(trt_next_event(e2e.sub, trt_remaining(deadline), &p), 0);
		assert_false(trt_event_is(p, "completed", sid) || trt_event_is(p, "vanished", sid));
		if (trt_event_is(p, "reservationCreated", other)) {
			tr_json_free(p);
			break;
		}
		tr_json_free(p);
	}
	/* one GET of the task in all */
	{
		struct tr_json *log = trt_sim_requests(&e2e.env);
		size_t gets = 0;
		assert_true(tr_json_is(log, TR_JSON_ARRAY));
		for (size_t i = 0; i < log->u.arr.n; i++) {
			const char *url = tr_json_get_string(log->u.arr.items[i], "url");
			const char *m = tr_json_get_string(log->u.arr.items[i], "method");
			gets += url && m && strcmp(m, "GET") == 0 && strstr(url, trt_fmt("Tasks/%s", sid));
		}
		tr_json_free(log);
		assert_int_equal(gets, 1);
	}
	e2e_assert_cache_matches(&e2e.env, e2e.rpc);
}

/* The daemon stops while the final state of a vanished task is being fetched: it exits cleanly
 * (status 0: every handle closed and, under valgrind, nothing leaked). */
static void test_shutdown_while_fetching(void **state) {
	char sid[35], res[35];
	struct tr_json *st;
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	/* held back longer than the test lasts; the simulator drops it when the daemon goes */
	reconnect_with_late_get(sid, trt_under_valgrind() ? 120000 : 30000);
	st = trt_call_ok(e2e.rpc, "daemon.status", NULL);
	assert_non_null(st);
	assert_true(e2e_int(tr_json_get(tr_json_get(st, "upstream"), "rest"), "inFlight") >= 1);
	tr_json_free(st);
	/* not published yet: the task is still as the daemon last knew it */
	st = trt_call_ok(e2e.rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(st);
	assert_string_equal(e2e_str(st, "wireStatus"), "assigned");
	tr_json_free(st);
	e2e_disconnect();
	e2e_restart_daemon(&e2e.env, patient_daemon_args);
	assert_int_equal(e2e_connect(), 0);
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
		CASE(test_deleted_while_disconnected),
		cmocka_unit_test_prestate_setup_teardown(test_reconnect_while_fetching, e2e_setup,
			e2e_teardown, &patient_args),
		cmocka_unit_test_prestate_setup_teardown(test_shutdown_while_fetching, e2e_setup,
			e2e_teardown, &patient_args),
		CASE(test_rest_failures_during_bootstrap),
		CASE(test_call_while_disconnected_fails_fast),
		CASE(test_simulator_restart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
