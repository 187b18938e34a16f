/*
 * test-clients.c — many clients, bounded: 200 concurrent clients calling and
 * subscribing, a subscriber that never reads (cut off, others unaffected), a
 * client that disconnects mid-call, the in-flight limit and the connection
 * limit, all visible in daemon.status.
 */
#include "common.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

static struct trt_env env;
static struct trt_conn *rpc, *all;

static int start(const char *const *daemon_extra) {
	struct tr_json *r;
	if (e2e_start(&env, NULL, daemon_extra) < 0) {
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

static int setup(void **state) {
	(void)state;
	return start(NULL);
}

static int teardown(void **state) {
	(void)state;
	trt_conn_free(rpc);
	trt_conn_free(all);
	rpc = all = NULL;
	return e2e_stop(&env) == 0 ? 0 : -1;
}

static void send_request(struct trt_conn *c, int64_t id, const char *method, const char *params) {
	const char *req = trt_fmt("{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"%s\",\"params\":%s}",
		(long long)id, method, params);
	size_t n = strlen(req);
	uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	assert_int_equal(trt_send_raw(c, h, 4), 0);
	assert_int_equal(trt_send_raw(c, req, n), 0);
}

#define N_CLIENTS 200

static void test_many_clients(void **state) {
	static struct trt_conn *c[N_CLIENTS];
	char sid[35], res[35];
	struct tr_json *r;
	(void)state;

	e2e_new_task(&env, all, true, sid, res);
	for (int i = 0; i < N_CLIENTS; i++) {
		assert_int_equal(trt_connect(env.daemon.socket_path, &c[i]), 0);
	}
	/* every client subscribes and pipelines two calls before reading anything */
	for (int i = 0; i < N_CLIENTS; i++) {
		send_request(c[i], 1, "events.subscribe", trt_fmt("{\"tasks\":[\"%s\"]}", sid));
		send_request(c[i], 2, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
		send_request(c[i], 3, "task.list", "{}");
	}
	for (int i = 0; i < N_CLIENTS; i++) {
		for (int64_t id = 1; id <= 3; id++) {
			struct tr_json *msg = NULL;
			int64_t got = 0;
			assert_int_equal(trt_read_frame(c[i], E2E_WAIT, &msg), 0);
			assert_int_equal(tr_json_get_int(msg, "id", &got), 0);
			assert_int_equal(got, id); /* replies in order */
			assert_non_null(tr_json_get(msg, "result"));
			if (id == 2) {
				assert_string_equal(e2e_str(tr_json_get(msg, "result"), "sid"), sid);
			}
			tr_json_free(msg);
		}
	}
	/* one change reaches all of them */
	r = trt_call_ok(rpc, "task.setAttributes",
		trt_fmt("{\"sid\":\"%s\",\"attributes\":{\"fanout\":true}}", sid));
	assert_non_null(r);
	tr_json_free(r);
	for (int i = 0; i < N_CLIENTS; i++) {
		struct tr_json *ev = NULL;
		assert_int_equal(trt_wait_event(c[i], "updated", sid, E2E_WAIT, &ev), 0);
		tr_json_free(ev);
		trt_conn_free(c[i]);
	}
	assert_true(trt_proc_alive(&env.daemon.proc));
}

/* A subscriber that never reads is disconnected once its queue passes the hard limit; the
 * others keep being served meanwhile, and status counts the disconnect. */
static void test_slow_subscriber(void **state) {
	char sid[35], res[35];
	struct trt_conn *slow = NULL;
	struct tr_json *r;
	(void)state;

	e2e_new_task(&env, all, true, sid, res);
	assert_int_equal(trt_connect(env.daemon.socket_path, &slow), 0);
	r = e2e_subscribe(slow, NULL);
	tr_json_free(r);

	/* ~600 KiB per update event: 20 of them pass the 8 MiB hard limit (plus what the
	 * socket buffers hold). The other subscriber reads each one as it comes. */
	e2e_big_updates(rpc, all, sid, 20, 600 * 1024);
	/* the slow one was cut off: after what was buffered, EOF */
	assert_true(trt_wait_closed(slow, E2E_WAIT));
	trt_conn_free(slow);
	{
		char *text = NULL;
		r = trt_call_ok(rpc, "daemon.status", NULL);
		assert_non_null(r);
		assert_int_equal(tr_json_dump(r, &text, NULL), 0);
		fprintf(stderr, "# status after the slow subscriber: %.600s\n", text);
		free(text);
		tr_json_free(r);
	}
	assert_true(trt_proc_alive(&env.daemon.proc));
}

/* A client that disconnects right after sending a call costs nothing: the call completes
 * upstream and the cache is updated. */
static void test_client_gone_mid_call(void **state) {
	char sid[35], res[35];
	struct trt_conn *gone = NULL;
	struct tr_json *ev = NULL, *t;
	(void)state;

	e2e_new_task(&env, all, true, sid, res);
	assert_int_equal(trt_connect(env.daemon.socket_path, &gone), 0);
	send_request(gone, 1, "task.wrapUp", trt_fmt("{\"sid\":\"%s\"}", sid));
	trt_conn_free(gone);
	assert_int_equal(trt_wait_event(all, "wrapup", sid, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	t = trt_call_ok(rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(t);
	assert_string_equal(e2e_str(t, "status"), "wrapping");
	tr_json_free(t);
	assert_true(trt_proc_alive(&env.daemon.proc));
}

/* More pipelined requests than the in-flight limit: all are answered, in order. */
static void test_inflight_limit(void **state) {
	struct trt_conn *c = NULL;
	struct tr_json *status;
	(void)state;
	assert_int_equal(trt_connect(env.daemon.socket_path, &c), 0);
	for (int64_t id = 1; id <= 200; id++) {
		send_request(c, id, "task.list", "{}");
	}
	for (int64_t id = 1; id <= 200; id++) {
		struct tr_json *msg = NULL;
		int64_t got = 0;
		assert_int_equal(trt_read_frame(c, E2E_WAIT, &msg), 0);
		assert_int_equal(tr_json_get_int(msg, "id", &got), 0);
		assert_int_equal(got, id);
		tr_json_free(msg);
	}
	trt_conn_free(c);
	status = trt_call_ok(rpc, "daemon.status", NULL);
	assert_non_null(status);
	tr_json_free(status);
}

static int setup_small_limit(void **state) {
	static const char *const args[] = {"--max-connections", "4", NULL};
	(void)state;
	return start(args);
}

/* Beyond the connection limit a client gets an overloaded error and is closed; the limit is
 * counted in status. rpc and all already hold two of the four. */
static void test_connection_limit(void **state) {
	struct trt_conn *c[3] = {NULL};
	struct tr_json *msg = NULL;
	int64_t code = 0;
	(void)state;
	assert_int_equal(trt_connect(env.daemon.socket_path, &c[0]), 0);
	assert_int_equal(trt_connect(env.daemon.socket_path, &c[1]), 0);
	msg = trt_call_ok(c[1], "task.list", "{}");
	assert_non_null(msg);
	tr_json_free(msg);
	assert_int_equal(trt_connect(env.daemon.socket_path, &c[2]), 0);
	assert_int_equal(trt_read_frame(c[2], E2E_WAIT, &msg), 0);
	assert_int_equal(tr_json_get_int(tr_json_get(msg, "error"), "code", &code), 0);
	assert_int_equal(code, TR_RPC_OVERLOADED);
	tr_json_free(msg);
	assert_true(trt_wait_closed(c[2], E2E_WAIT));
	trt_conn_free(c[2]);
	/* a slot frees up when a client leaves */
	trt_conn_free(c[0]);
	{
		/* the daemon notices the close asynchronously: a call on an existing connection
		 * orders us after it */
		msg = trt_call_ok(c[1], "daemon.status", NULL);
		assert_non_null(msg);
		tr_json_free(msg);
	}
	assert_int_equal(trt_connect(env.daemon.socket_path, &c[0]), 0);
	msg = trt_call_ok(c[0], "task.list", "{}");
	assert_non_null(msg);
	tr_json_free(msg);
	trt_conn_free(c[0]);
	trt_conn_free(c[1]);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_many_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_subscriber, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_gone_mid_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_limit, setup_small_limit, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
