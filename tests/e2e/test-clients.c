/*
 * test-clients.c — many clients, bounded: 200 concurrent clients calling and
 * subscribing, a subscriber that never reads (cut off, others unaffected), a
 * client that disconnects mid-call, the in-flight limit and the connection
 * limit, all visible in daemon.status.
 */
#include "common.h"

#include <sys/resource.h>

#include "tr-limits.h"

#define N_CLIENTS 200

static void test_many_clients(void **state) {
	static struct trt_conn *c[N_CLIENTS];
	char sid[35], res[35];
	struct tr_json *r;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	for (int i = 0; i < N_CLIENTS; i++) {
		c[i] = e2e_open();
	}
	/* every client subscribes and pipelines two calls before reading anything */
	for (int i = 0; i < N_CLIENTS; i++) {
		assert_int_equal(trt_send_request(c[i], 1, "events.subscribe",
					 trt_fmt("{\"tasks\":[\"%s\"]}", sid)),
			0);
		assert_int_equal(
			trt_send_request(c[i], 2, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid)), 0);
		assert_int_equal(trt_send_request(c[i], 3, "task.list", "{}"), 0);
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
	r = trt_call_ok(e2e.rpc, "task.setAttributes",
		trt_fmt("{\"sid\":\"%s\",\"attributes\":{\"fanout\":true}}", sid));
	assert_non_null(r);
	tr_json_free(r);
	for (int i = 0; i < N_CLIENTS; i++) {
		struct tr_json *ev = NULL;
		assert_int_equal(trt_wait_event(c[i], "updated", sid, E2E_WAIT, &ev), 0);
		tr_json_free(ev);
		trt_conn_free(c[i]);
	}
	assert_true(trt_proc_alive(&e2e.env.daemon.proc));
}

/* A subscriber that never reads is disconnected once its queue passes the hard limit; the
 * others keep being served meanwhile, and status counts the disconnect. */
static void test_slow_subscriber(void **state) {
	char sid[35], res[35];
	struct trt_conn *slow = NULL;
	struct tr_json *r;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	slow = e2e_open_subscribed(NULL);

	/* ~350 KiB per update event (set upstream; the cache keeps up to 384 KiB): 30 of them
	 * pass the 8 MiB hard limit (plus what the socket buffers hold). The other subscriber
	 * reads each one as it comes. */
	e2e_big_updates(&e2e.env, e2e.sub, sid, 30, 350 * 1024);
	/* the slow one was cut off: after what was buffered, EOF */
	assert_true(trt_wait_closed(slow, E2E_WAIT));
	trt_conn_free(slow);
	{
		char *text = NULL;
		r = trt_call_ok(e2e.rpc, "daemon.status", NULL);
		assert_non_null(r);
		assert_int_equal(tr_json_dump(r, &text, NULL), 0);
		fprintf(stderr, "# status after the slow subscriber: %.600s\n", text);
		free(text);
		tr_json_free(r);
	}
	assert_true(trt_proc_alive(&e2e.env.daemon.proc));
}

/* A client that disconnects right after sending a call costs nothing: the call completes
 * upstream and the cache is updated. */
static void test_client_gone_mid_call(void **state) {
	char sid[35], res[35];
	struct trt_conn *gone = NULL;
	struct tr_json *t;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	gone = e2e_open();
	assert_int_equal(
		trt_send_request(gone, 1, "task.wrapUp", trt_fmt("{\"sid\":\"%s\"}", sid)), 0);
	trt_conn_free(gone);
	e2e_wait_event(e2e.sub, "wrapup", sid);
	t = trt_call_ok(e2e.rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(t);
	assert_string_equal(e2e_str(t, "status"), "wrapping");
	tr_json_free(t);
	assert_true(trt_proc_alive(&e2e.env.daemon.proc));
}

/* More pipelined requests than the in-flight limit: all are answered, in order. */
static void test_inflight_limit(void **state) {
	struct trt_conn *c = NULL;
	struct tr_json *status;
	(void)state;
	c = e2e_open();
	for (int64_t id = 1; id <= 200; id++) {
		assert_int_equal(trt_send_request(c, id, "task.list", "{}"), 0);
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
	status = trt_call_ok(e2e.rpc, "daemon.status", NULL);
	assert_non_null(status);
	tr_json_free(status);
}

/* Beyond the connection limit a client gets an overloaded error and is closed; the limit is
 * counted in status. The fixture's two connections already hold two of the four. */
static void test_connection_limit(void **state) {
	struct trt_conn *c[3] = {NULL};
	struct tr_json *msg = NULL;
	int64_t code = 0;
	(void)state;
	c[0] = e2e_open();
	c[1] = e2e_open();
	msg = trt_call_ok(c[1], "task.list", "{}");
	assert_non_null(msg);
	tr_json_free(msg);
	c[2] = e2e_open();
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
	c[0] = e2e_open();
	msg = trt_call_ok(c[0], "task.list", "{}");
	assert_non_null(msg);
	tr_json_free(msg);
	trt_conn_free(c[0]);
	trt_conn_free(c[1]);
}

/* The daemon runs with a low open-file limit (soft 64, hard 150) and the default
 * --max-connections 1024: it raises the soft limit to the hard one, and lowers the
 * connection limit to leave TR_FD_RESERVE descriptors, so a client past it gets -32008
 * rather than a bare EOF from a failed accept(). */
#define FD_HARD 150
static int fd_setup(void **state) {
	struct rlimit low = {64, FD_HARD}, mine = {FD_HARD, FD_HARD};
	int r;
	if (setrlimit(RLIMIT_NOFILE, &low) < 0) {
		return -1;
	}
	r = e2e_setup(state); /* the daemon and the simulator inherit the low limit */
	(void)setrlimit(RLIMIT_NOFILE, &mine);
	return r;
}

static void test_fd_limit(void **state) {
	const int64_t want = FD_HARD - TR_FD_RESERVE;
	struct trt_conn *c[FD_HARD];
	struct tr_json *st, *msg = NULL;
	int64_t max = 0, code = 0, refused = 0;
	int n = 0;
	(void)state;
	st = trt_call_ok(e2e.rpc, "daemon.status", NULL);
	assert_int_equal(tr_json_get_int(tr_json_get(st, "limits"), "maxConnections", &max), 0);
	tr_json_free(st);
	assert_int_equal(max, want);
	/* the fixture holds two; fill the rest, each served */
	for (; n < want - 2; n++) {
		c[n] = e2e_open();
		msg = trt_call_ok(c[n], "daemon.status", NULL);
		assert_non_null(msg);
		tr_json_free(msg);
	}
	/* one more: a clear refusal, not an EOF */
	c[n] = e2e_open();
	assert_int_equal(trt_read_frame(c[n], E2E_WAIT, &msg), 0);
	assert_int_equal(tr_json_get_int(tr_json_get(msg, "error"), "code", &code), 0);
	assert_int_equal(code, TR_RPC_OVERLOADED);
	tr_json_free(msg);
	n++;
	st = trt_call_ok(e2e.rpc, "daemon.status", NULL);
	assert_int_equal(tr_json_get_int(tr_json_get(st, "counters"), "connectionsRefusedLimit",
				 &refused), 0);
	assert_int_equal(refused, 1);
	tr_json_free(st);
	while (n > 0) {
		trt_conn_free(c[--n]);
	}
}

static const char *const four_connections[] = {"--max-connections", "4", NULL};
static struct e2e_args small_limit = {.daemon = four_connections};

/* Each test on a daemon of its own: a flood or a cut-off client must not affect the next. */
#define CASE(fn) cmocka_unit_test_setup_teardown(fn, e2e_setup, e2e_teardown)

int main(void) {
	const struct CMUnitTest tests[] = {
		CASE(test_many_clients),
		CASE(test_slow_subscriber),
		CASE(test_client_gone_mid_call),
		CASE(test_inflight_limit),
		cmocka_unit_test_prestate_setup_teardown(
			test_connection_limit, e2e_setup, e2e_teardown, &small_limit),
		/* last: it lowers this process's hard limit for good */
		cmocka_unit_test_setup_teardown(test_fd_limit, fd_setup, e2e_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
