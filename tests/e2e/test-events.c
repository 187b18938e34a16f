/*
 * test-events.c — event streams: snapshot + stream without a gap, filters by
 * event name and task, one daemon-wide seq, replay with `since`, and
 * unsubscribe.
 */
#include "common.h"

static struct trt_env env;
static struct trt_conn *rpc, *all, *sub;

static int group_setup(void **state) {
	struct tr_json *r;
	(void)state;
	if (e2e_start(&env, NULL, NULL) < 0) {
		return -1;
	}
	if (trt_connect(env.daemon.socket_path, &rpc) < 0 ||
		trt_connect(env.daemon.socket_path, &all) < 0) {
		return -1;
	}
	r = trt_call_ok(all, "events.subscribe", "{}");
	tr_json_free(r);
	return r ? 0 : -1;
}

static int group_teardown(void **state) {
	(void)state;
	trt_conn_free(rpc);
	trt_conn_free(all);
	return e2e_stop(&env) == 0 ? 0 : -1;
}

/* Collect events from c until one named `last` for task `sid` arrives. */
static size_t collect(struct trt_conn *c, const char *last, const char *sid, struct tr_json **out,
	size_t max) {
	size_t n = 0;
	for (;;) {
		struct tr_json *ev = NULL;
		const char *name, *ts;
		assert_int_equal(trt_next_event(c, E2E_WAIT, &ev), 0);
		assert_true(n < max);
		out[n++] = ev;
		name = tr_json_get_string(ev, "event");
		ts = tr_json_get_string(ev, "taskSid");
		if (name && strcmp(name, last) == 0 && ts && strcmp(ts, sid) == 0) {
			return n;
		}
	}
}

static void test_snapshot_then_stream(void **state) {
	char sid[35], res[35];
	struct tr_json *r, *ev = NULL;
	const struct tr_json *tasks;
	int64_t seq;
	bool found = false;
	(void)state;

	e2e_new_task(&env, all, true, sid, res);
	assert_int_equal(trt_connect(env.daemon.socket_path, &sub), 0);
	r = e2e_subscribe(sub, NULL);
	assert_non_null(tr_json_get(r, "subscription"));
	seq = e2e_int(r, "seq");
	tasks = tr_json_get(r, "tasks");
	assert_true(tr_json_is(tasks, TR_JSON_ARRAY));
	for (size_t i = 0; i < tasks->u.arr.n; i++) {
		found = found || strcmp(e2e_str(tasks->u.arr.items[i], "sid"), sid) == 0;
	}
	assert_true(found);
	tr_json_free(r);

	/* the next event continues right after the snapshot's seq */
	r = trt_call_ok(rpc, "task.wrapUp", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(r);
	tr_json_free(r);
	assert_int_equal(trt_next_event(sub, E2E_WAIT, &ev), 0);
	assert_int_equal(e2e_int(ev, "seq"), seq + 1);
	tr_json_free(ev);
	trt_conn_free(sub);
	sub = NULL;
}

/* Two clients with different filters see exactly their events, in the same relative order as
 * the unfiltered stream, which has contiguous seqs. */
static void test_filters(void **state) {
	char a[35], ra[35], b[35], rb[35];
	struct trt_conn *by_name = NULL, *by_task = NULL;
	struct tr_json *r, *seen[256], *got[256];
	size_t n_all, n_got;
	(void)state;

	e2e_new_task(&env, all, true, a, ra);
	e2e_new_task(&env, all, true, b, rb);
	assert_int_equal(trt_connect(env.daemon.socket_path, &by_name), 0);
	assert_int_equal(trt_connect(env.daemon.socket_path, &by_task), 0);
	r = e2e_subscribe(by_name, "{\"events\":[\"completed\",\"wrapup\"]}");
	tr_json_free(r);
	r = e2e_subscribe(by_task, trt_fmt("{\"tasks\":[\"%s\"]}", b));
	tr_json_free(r);

	for (const char *const *s = (const char *const[]){a, b, NULL}; *s; s++) {
		r = trt_call_ok(rpc, "task.setAttributes",
			trt_fmt("{\"sid\":\"%s\",\"attributes\":{\"step\":1}}", *s));
		tr_json_free(r);
		r = trt_call_ok(rpc, "task.wrapUp", trt_fmt("{\"sid\":\"%s\"}", *s));
		tr_json_free(r);
		r = trt_call_ok(rpc, "task.complete",
			trt_fmt("{\"sid\":\"%s\",\"reason\":\"done\"}", *s));
		tr_json_free(r);
	}
	n_all = collect(all, "completed", b, seen, 256);
	/* contiguous seqs on the unfiltered stream */
	for (size_t i = 1; i < n_all; i++) {
		assert_int_equal(e2e_int(seen[i], "seq"), e2e_int(seen[i - 1], "seq") + 1);
	}
	/* by name: exactly the completed/wrapup events, same seqs, same order */
	n_got = collect(by_name, "completed", b, got, 256);
	{
		size_t j = 0;
		for (size_t i = 0; i < n_all; i++) {
			const char *e = e2e_str(seen[i], "event");
			if (strcmp(e, "completed") != 0 && strcmp(e, "wrapup") != 0) {
				continue;
			}
			assert_true(j < n_got);
			assert_int_equal(e2e_int(got[j], "seq"), e2e_int(seen[i], "seq"));
			assert_string_equal(e2e_str(got[j], "event"), e);
			j++;
		}
		assert_int_equal(j, n_got);
	}
	for (size_t i = 0; i < n_got; i++) {
		tr_json_free(got[i]);
	}
	/* by task: exactly the events of b */
	n_got = collect(by_task, "completed", b, got, 256);
	{
		size_t j = 0;
		for (size_t i = 0; i < n_all; i++) {
			const char *ts = tr_json_get_string(seen[i], "taskSid");
			if (!ts || strcmp(ts, b) != 0) {
				continue;
			}
			assert_true(j < n_got);
			assert_int_equal(e2e_int(got[j], "seq"), e2e_int(seen[i], "seq"));
			j++;
		}
		assert_int_equal(j, n_got);
	}
	for (size_t i = 0; i < n_got; i++) {
		tr_json_free(got[i]);
	}
	for (size_t i = 0; i < n_all; i++) {
		tr_json_free(seen[i]);
	}
	trt_conn_free(by_name);
	trt_conn_free(by_task);
}

/* since: a client that lost its connection resumes without a gap. */
static void test_since_replay(void **state) {
	char sid[35], res[35];
	struct tr_json *r, *ev = NULL, *first = NULL;
	int64_t from;
	(void)state;

	e2e_new_task(&env, all, true, sid, res);
	r = trt_call_ok(rpc, "task.setAttributes",
		trt_fmt("{\"sid\":\"%s\",\"attributes\":{\"k\":1}}", sid));
	tr_json_free(r);
	assert_int_equal(trt_wait_event(all, "updated", sid, E2E_WAIT, &first), 0);
	from = e2e_int(first, "seq");
	r = trt_call_ok(rpc, "task.wrapUp", trt_fmt("{\"sid\":\"%s\"}", sid));
	tr_json_free(r);
	assert_int_equal(trt_wait_event(all, "wrapup", sid, E2E_WAIT, &ev), 0);
	tr_json_free(ev);

	assert_int_equal(trt_connect(env.daemon.socket_path, &sub), 0);
	r = e2e_subscribe(sub, trt_fmt("{\"since\":%lld}", (long long)from));
	tr_json_free(r);
	/* replay starts at `since` itself */
	assert_int_equal(trt_next_event(sub, E2E_WAIT, &ev), 0);
	assert_int_equal(e2e_int(ev, "seq"), from);
	assert_string_equal(e2e_str(ev, "event"), "updated");
	tr_json_free(ev);
	assert_int_equal(trt_wait_event(sub, "wrapup", sid, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	tr_json_free(first);
	trt_conn_free(sub);
	sub = NULL;

	/* a seq from the future or far past is refused with a clear error */
	assert_int_equal(trt_connect(env.daemon.socket_path, &sub), 0);
	{
		struct tr_json *err = NULL;
		int code = trt_call_err(sub, "events.subscribe", "{\"since\":-5}", &err);
		assert_int_equal(code, TR_RPC_INVALID_PARAMS);
		tr_json_free(err);
	}
	trt_conn_free(sub);
	sub = NULL;
}

/* The replay ring is bounded in bytes (TR_EVENT_RING_BYTES, 4 MiB): after a few large
 * events, a `since` from before them is refused with replay-gone and its data, and a
 * subscriber that kept up missed nothing. */
static void test_replay_gone(void **state) {
	char sid[35], res[35];
	struct tr_json *ev = NULL, *err = NULL, *r;
	int64_t first;
	int code;
	(void)state;

	e2e_new_task(&env, all, true, sid, res);
	r = trt_call_ok(rpc, "task.setAttributes",
		trt_fmt("{\"sid\":\"%s\",\"attributes\":{\"k\":0}}", sid));
	tr_json_free(r);
	assert_int_equal(trt_wait_event(all, "updated", sid, E2E_WAIT, &ev), 0);
	first = e2e_int(ev, "seq");
	tr_json_free(ev);
	e2e_big_updates(rpc, all, sid, 8, 700 * 1024);
	assert_int_equal(trt_connect(env.daemon.socket_path, &sub), 0);
	code = trt_call_err(sub, "events.subscribe", trt_fmt("{\"since\":%lld}", (long long)first),
		&err);
	assert_int_equal(code, TR_RPC_REPLAY_GONE);
	assert_true(e2e_int(tr_json_get(err, "data"), "oldestSeq") > first);
	assert_true(e2e_int(tr_json_get(err, "data"), "currentSeq") >= first + 8);
	tr_json_free(err);
	trt_conn_free(sub);
	sub = NULL;
}

static void test_unsubscribe(void **state) {
	char sid[35], res[35];
	struct tr_json *r, *ev = NULL;
	const char *subid;
	char id[128];
	(void)state;
	assert_int_equal(trt_connect(env.daemon.socket_path, &sub), 0);
	r = e2e_subscribe(sub, NULL);
	{
		const struct tr_json *s = tr_json_get(r, "subscription");
		assert_non_null(s);
		if (tr_json_is(s, TR_JSON_STRING)) {
			snprintf(id, sizeof(id), "\"%s\"", s->u.str.s);
		} else {
			snprintf(id, sizeof(id), "%s", s->u.num.raw);
		}
	}
	subid = id;
	tr_json_free(r);
	r = trt_call_ok(sub, "events.unsubscribe", trt_fmt("{\"subscription\":%s}", subid));
	assert_non_null(r);
	tr_json_free(r);
	e2e_new_task(&env, all, false, sid, res);
	/* The daemon has published the task's arrival (`all` saw it). A reply on `sub` is queued
	 * behind anything published to it before, so no event may precede it. */
	r = trt_call_ok(sub, "task.list", "{}");
	assert_non_null(r);
	tr_json_free(r);
	assert_int_equal(sub->n_events, 0);
	(void)ev;
	trt_conn_free(sub);
	sub = NULL;
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_then_stream),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_since_replay),
		cmocka_unit_test(test_replay_gone),
		cmocka_unit_test(test_unsubscribe),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
