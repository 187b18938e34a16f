/*
 * test-methods.c — every Task method end to end: taskrouterd against
 * taskrouter-sim, through the socket. Happy paths check the simulator's state
 * and the exact request sent; bad input checks the documented error and that
 * no request went out.
 */
#include "common.h"

#include <signal.h>

/* The simulator's state of a task must match the daemon's reply. */
static void assert_same_task(const struct tr_json *reply, const char *sid) {
	struct tr_json *sim = trt_sim_task(&e2e.env, sid);
	assert_non_null(sim);
	assert_string_equal(e2e_str(reply, "sid"), sid);
	assert_int_equal(e2e_version(reply), e2e_int(sim, "version"));
	assert_string_equal(e2e_str(reply, "wireStatus"), e2e_str(sim, "assignment_status"));
	{
		struct tr_json *attrs = e2e_sim_attributes(sim);
		assert_true(tr_json_equal(attrs, tr_json_get(reply, "attributes")));
		tr_json_free(attrs);
	}
	tr_json_free(sim);
}

/* The last REST call must have this route, proxied method and apiVersion. */
static struct tr_json *assert_last_request(const char *url_suffix, const char *method,
	const char *api_version) {
	struct tr_json *req = e2e_last_request(&e2e.env);
	const char *url, *m, *v;
	assert_non_null(req);
	url = e2e_str(req, "url");
	m = e2e_str(req, "method");
	v = e2e_str(req, "apiVersion");
	if (strlen(url) < strlen(url_suffix) ||
		strcmp(url + strlen(url) - strlen(url_suffix), url_suffix) != 0) {
		fprintf(stderr, "# last url %s does not end with %s\n", url, url_suffix);
		fail();
	}
	assert_string_equal(m, method);
	assert_string_equal(v, api_version);
	return req;
}

static void test_get_and_list(void **state) {
	char sid[35], res[35];
	struct tr_json *t, *l;
	const struct tr_json *tasks;
	bool found = false;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	t = trt_call_ok(e2e.rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(t);
	assert_string_equal(e2e_str(t, "status"), "assigned");
	assert_string_equal(e2e_str(t, "reservationSid"), res);
	assert_same_task(t, sid);
	tr_json_free(t);

	l = trt_call_ok(e2e.rpc, "task.list", "{}");
	assert_non_null(l);
	tasks = tr_json_get(l, "tasks");
	assert_true(tr_json_is(tasks, TR_JSON_ARRAY));
	for (size_t i = 0; i < tasks->u.arr.n; i++) {
		const char *s = tr_json_get_string(tasks->u.arr.items[i], "sid");
		found = found || (s && strcmp(s, sid) == 0);
	}
	assert_true(found);
	tr_json_free(l);

	l = trt_call_ok(e2e.rpc, "task.list", "{\"status\":\"completed\"}");
	assert_non_null(l);
	tasks = tr_json_get(l, "tasks");
	for (size_t i = 0; i < tasks->u.arr.n; i++) {
		assert_string_equal(e2e_str(tasks->u.arr.items[i], "status"), "completed");
	}
	tr_json_free(l);
}

static void test_set_attributes(void **state) {
	char sid[35], res[35];
	struct tr_json *t, *req;
	int64_t v0;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	v0 = e2e_task_version(e2e.rpc, sid);

	t = trt_call_ok(e2e.rpc, "task.setAttributes",
		trt_fmt("{\"sid\":\"%s\",\"attributes\":{\"case\":\"CS-1\",\"n\":2,\"deep\":{\"x\":"
			"[1,2]}}}",
			sid));
	assert_non_null(t);
	assert_int_equal(e2e_version(t), v0 + 1);
	assert_same_task(t, sid);
	tr_json_free(t);

	/* Exactly the SDK's request: Attributes as an object, If-Match with the old version. */
	req = assert_last_request(trt_fmt("Tasks/%s", sid), "POST", "v1");
	{
		const struct tr_json *p = tr_json_get(req, "params");
		assert_true(tr_json_is(tr_json_get(p, "Attributes"), TR_JSON_OBJECT));
		assert_int_equal(p->u.obj.n, 1);
		const struct tr_json *im = tr_json_get(req, "ifMatch");
		if (!im) {
			im = tr_json_get(req, "If-Match");
		}
		assert_non_null(im);
		if (tr_json_is(im, TR_JSON_STRING)) {
			assert_int_equal(strtoll(im->u.str.s, NULL, 10), v0);
		} else {
			assert_true(tr_json_is_int(im));
			assert_int_equal(im->u.num.i, v0);
		}
	}
	tr_json_free(req);
	e2e_wait_event(e2e.sub, "updated", sid);
}

static void test_virtual_start_time(void **state) {
	char sid[35], res[35];
	struct tr_json *t, *req;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	t = trt_call_ok(e2e.rpc, "task.setVirtualStartTime",
		trt_fmt("{\"sid\":\"%s\",\"time\":\"2025-01-02T12:00:00.250Z\"}", sid));
	assert_non_null(t);
	assert_int_equal(e2e_int(t, "virtualStartTime"), 1735819200);
	assert_same_task(t, sid);
	tr_json_free(t);
	req = assert_last_request(trt_fmt("Tasks/%s", sid), "POST", "v1");
	assert_string_equal(e2e_str(tr_json_get(req, "params"), "VirtualStartTime"),
		"2025-01-02T12:00:00Z");
	tr_json_free(req);

	/* epoch seconds are accepted too */
	t = trt_call_ok(e2e.rpc, "task.setVirtualStartTime",
		trt_fmt("{\"sid\":\"%s\",\"time\":1735819000}", sid));
	assert_non_null(t);
	assert_int_equal(e2e_int(t, "virtualStartTime"), 1735819000);
	tr_json_free(t);

	/* the server refuses a time in the future: an upstream error with its message */
	{
		struct tr_json *err = NULL;
		int code = trt_call_err(e2e.rpc, "task.setVirtualStartTime",
			trt_fmt("{\"sid\":\"%s\",\"time\":\"2999-01-01T00:00:00Z\"}", sid), &err);
		assert_int_equal(code, TR_RPC_UPSTREAM_ERROR);
		assert_int_equal(e2e_int(tr_json_get(err, "data"), "httpStatus"), 400);
		assert_non_null(strstr(e2e_str(tr_json_get(err, "data"), "message"), "future"));
		tr_json_free(err);
	}
}

static void test_fetch_latest_version(void **state) {
	char sid[35], res[35];
	struct tr_json *t;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	/* Someone else changes the task upstream. */
	e2e_sim_post(&e2e.env, trt_fmt("/sim/tasks/%s/update", sid),
		"{\"attributes\":{\"from\":\"outside\"}}");
	t = trt_call_ok(e2e.rpc, "task.fetchLatestVersion", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(t);
	assert_same_task(t, sid);
	tr_json_free(t);
	{
		struct tr_json *req = assert_last_request(trt_fmt("Tasks/%s", sid), "GET", "v1");
		assert_int_equal(tr_json_get(req, "params")->u.obj.n, 0);
		tr_json_free(req);
	}
}

static void test_version_conflict(void **state) {
	char sid[35], res[35];
	struct tr_json *err = NULL;
	int64_t v;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	v = e2e_task_version(e2e.rpc, sid);
	/* A concurrent writer bumps the version. "silent" keeps the simulator from pushing the
	 * task.updated event (as if it were still in flight), so our cache is stale for sure. */
	e2e_sim_post(&e2e.env, trt_fmt("/sim/tasks/%s/update", sid),
		"{\"attributes\":{\"by\":\"plugin\"},\"silent\":true}");
	int code = trt_call_err(e2e.rpc, "task.setAttributes",
		trt_fmt("{\"sid\":\"%s\",\"attributes\":{\"by\":\"us\"}}", sid), &err);
	assert_int_equal(code, TR_RPC_VERSION_CONFLICT);
	assert_int_equal(e2e_int(tr_json_get(err, "data"), "httpStatus"), 412);
	assert_int_equal(strtoll(e2e_str(tr_json_get(err, "data"), "currentVersion"), NULL, 10),
		v + 1);
	tr_json_free(err);
	/* the plugin's write was not lost */
	{
		struct tr_json *sim = trt_sim_task(&e2e.env, sid);
		struct tr_json *attrs = e2e_sim_attributes(sim);
		assert_string_equal(e2e_str(attrs, "by"), "plugin");
		tr_json_free(attrs);
		tr_json_free(sim);
	}
}

static void test_hold_kick_participant(void **state) {
	char sid[35], res[35];
	struct tr_json *t, *req;
	char alice[64], bob[64];
	(void)state;
	snprintf(alice, sizeof(alice), "%s", e2e_worker_sid(&e2e.env, "alice"));
	snprintf(bob, sizeof(bob), "%s", e2e_worker_sid(&e2e.env, "bob"));

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	t = trt_call_ok(e2e.rpc, "task.updateParticipant",
		trt_fmt("{\"sid\":\"%s\",\"hold\":true,\"holdUrl\":\"https://example.org/hold\","
			"\"holdMethod\":\"GET\"}",
			sid));
	assert_non_null(t);
	tr_json_free(t);
	req = assert_last_request("/CustomerParticipant", "POST", "v2");
	{
		const struct tr_json *p = tr_json_get(req, "params");
		assert_string_equal(e2e_str(p, "TaskSid"), sid);
		assert_int_equal(tr_json_get(p, "Hold")->type, TR_JSON_TRUE);
		assert_string_equal(e2e_str(p, "HoldUrl"), "https://example.org/hold");
		assert_string_equal(e2e_str(p, "HoldMethod"), "GET");
	}
	tr_json_free(req);

	t = trt_call_ok(e2e.rpc, "task.hold",
		trt_fmt("{\"sid\":\"%s\",\"targetWorkerSid\":\"%s\",\"onHold\":true}", sid, alice));
	assert_non_null(t);
	tr_json_free(t);
	req = assert_last_request("/HoldWorkerParticipant", "POST", "v2");
	assert_string_equal(e2e_str(tr_json_get(req, "params"), "TargetWorkerSid"), alice);
	assert_int_equal(tr_json_get(tr_json_get(req, "params"), "Hold")->type, TR_JSON_TRUE);
	tr_json_free(req);

	/* bob is not in the conference: the server refuses, the error says so */
	{
		struct tr_json *err = NULL;
		assert_int_equal(
			trt_call_err(e2e.rpc, "task.kick",
				trt_fmt("{\"sid\":\"%s\",\"workerSid\":\"%s\"}", sid, bob), &err),
			TR_RPC_UPSTREAM_ERROR);
		assert_int_equal(e2e_int(tr_json_get(err, "data"), "httpStatus"), 400);
		tr_json_free(err);
	}
	req = assert_last_request("/KickWorkerParticipant", "POST", "v2");
	assert_string_equal(e2e_str(tr_json_get(req, "params"), "TargetWorkerSid"), bob);
	tr_json_free(req);

	/* bring bob in with a warm transfer he accepts, then kick him */
	{
		const struct tr_json *out;
		t = trt_call_ok(e2e.rpc, "task.transfer",
			trt_fmt("{\"sid\":\"%s\",\"to\":\"%s\",\"mode\":\"warm\"}", sid, bob));
		assert_non_null(t);
		out = tr_json_get(tr_json_get(t, "transfers"), "outgoing");
		assert_non_null(out);
		e2e_sim_post(
			&e2e.env, trt_fmt("/sim/transfers/%s/accept", e2e_str(out, "sid")), NULL);
		tr_json_free(t);
		e2e_wait_event(e2e.sub, "transferCompleted", sid);
	}
	t = trt_call_ok(
		e2e.rpc, "task.kick", trt_fmt("{\"sid\":\"%s\",\"workerSid\":\"%s\"}", sid, bob));
	assert_non_null(t);
	tr_json_free(t);
}

static void test_transfer_and_cancel(void **state) {
	char sid[35], res[35], bob[64], tt[64];
	struct tr_json *t, *req;
	const struct tr_json *out;
	(void)state;
	snprintf(bob, sizeof(bob), "%s", e2e_worker_sid(&e2e.env, "bob"));

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	t = trt_call_ok(e2e.rpc, "task.transfer",
		trt_fmt("{\"sid\":\"%s\",\"to\":\"%s\",\"mode\":\"warm\",\"priority\":0,"
			"\"attributes\":{\"why\":\"billing\"}}",
			sid, bob));
	assert_non_null(t);
	out = tr_json_get(tr_json_get(t, "transfers"), "outgoing");
	assert_non_null(out);
	assert_string_equal(e2e_str(out, "status"), "initiated");
	snprintf(tt, sizeof(tt), "%s", e2e_str(out, "sid"));
	tr_json_free(t);
	req = assert_last_request("/Transfers", "POST", "v2");
	{
		const struct tr_json *p = tr_json_get(req, "params");
		assert_string_equal(e2e_str(p, "TaskSid"), sid);
		assert_string_equal(e2e_str(p, "ReservationSid"), res);
		assert_string_equal(e2e_str(p, "To"), bob);
		assert_string_equal(e2e_str(p, "Mode"), "WARM");
		assert_int_equal(e2e_int(p, "Priority"), 0);
		assert_true(tr_json_is(tr_json_get(p, "Attributes"), TR_JSON_OBJECT));
	}
	tr_json_free(req);
	e2e_wait_event(e2e.sub, "transferInitiated", sid);

	t = trt_call_ok(e2e.rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_string_equal(e2e_str(t, "status"), "transferring");
	tr_json_free(t);

	t = trt_call_ok(e2e.rpc, "task.cancelTransfer", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(t);
	tr_json_free(t);
	req = assert_last_request(trt_fmt("/Transfers/%s", tt), "POST", "v2");
	assert_string_equal(e2e_str(tr_json_get(req, "params"), "TransferStatus"), "canceled");
	tr_json_free(req);
	e2e_wait_event(e2e.sub, "transferCanceled", sid);

	/* a second cancel is refused locally: nothing in flight */
	{
		int before = trt_sim_request_count(&e2e.env);
		assert_int_equal(trt_call_err(e2e.rpc, "task.cancelTransfer",
					 trt_fmt("{\"sid\":\"%s\"}", sid), NULL),
			TR_RPC_INVALID_STATE);
		assert_int_equal(trt_sim_request_count(&e2e.env), before);
	}
}

static void test_wrapup_complete(void **state) {
	char sid[35], res[35];
	struct tr_json *t, *req;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	t = trt_call_ok(
		e2e.rpc, "task.wrapUp", trt_fmt("{\"sid\":\"%s\",\"reason\":\"call ended\"}", sid));
	assert_non_null(t);
	assert_string_equal(e2e_str(t, "status"), "wrapping");
	assert_same_task(t, sid);
	tr_json_free(t);
	req = assert_last_request(trt_fmt("Tasks/%s", sid), "POST", "v1");
	assert_string_equal(e2e_str(tr_json_get(req, "params"), "AssignmentStatus"), "wrapping");
	assert_string_equal(e2e_str(tr_json_get(req, "params"), "Reason"), "call ended");
	tr_json_free(req);
	e2e_wait_event(e2e.sub, "wrapup", sid);

	t = trt_call_ok(
		e2e.rpc, "task.complete", trt_fmt("{\"sid\":\"%s\",\"reason\":\"resolved\"}", sid));
	assert_non_null(t);
	assert_string_equal(e2e_str(t, "status"), "completed");
	assert_string_equal(e2e_str(t, "reason"), "resolved");
	assert_same_task(t, sid);
	tr_json_free(t);
	req = assert_last_request(trt_fmt("Tasks/%s", sid), "POST", "v1");
	assert_string_equal(e2e_str(tr_json_get(req, "params"), "AssignmentStatus"), "completed");
	tr_json_free(req);
	e2e_wait_event(e2e.sub, "completed", sid);

	/* completing a task that is already completed: the server's refusal comes back */
	assert_int_equal(trt_call_err(e2e.rpc, "task.complete",
				 trt_fmt("{\"sid\":\"%s\",\"reason\":\"again\"}", sid), NULL),
		TR_RPC_UPSTREAM_ERROR);
}

static void test_canceled_from_outside(void **state) {
	char sid[35], res[35];
	struct tr_json *ev = NULL;
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, false, sid, res);
	e2e_sim_post(&e2e.env, trt_fmt("/sim/tasks/%s/cancel", sid),
		"{\"reason\":\"customer hung up\"}");
	assert_int_equal(trt_wait_event(e2e.sub, "canceled", sid, E2E_WAIT, &ev), 0);
	assert_string_equal(e2e_str(tr_json_get(ev, "task"), "status"), "canceled");
	tr_json_free(ev);
}

/* Each bad call gets its documented error and sends nothing upstream. */
static void test_bad_input_sends_nothing(void **state) {
	char sid[35], res[35];
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);

	const struct {
		const char *method;
		const char *params;
		int code;
		const char *param; /* the parameter the error must name, for -32602 */
	} cases[] = {
		{"task.get", "{}", TR_RPC_INVALID_PARAMS, "sid"},
		{"task.get", "{\"sid\":5}", TR_RPC_INVALID_PARAMS, "sid"},
		{"task.get", "[\"x\"]", TR_RPC_INVALID_PARAMS, NULL},
		{"task.get", "{\"sid\":\"WT00000000000000000000000000000000\"}", TR_RPC_NOT_FOUND, NULL},
		{"task.complete", trt_fmt("{\"sid\":\"%s\"}", sid), TR_RPC_INVALID_PARAMS, "reason"},
		{"task.complete", trt_fmt("{\"sid\":\"%s\",\"reason\":5}", sid), TR_RPC_INVALID_PARAMS, "reason"},
		{"task.complete", "{\"sid\":\"WT00000000000000000000000000000000\",\"reason\":\"x\"}", TR_RPC_NOT_FOUND, NULL},
		{"task.wrapUp", trt_fmt("{\"sid\":\"%s\",\"reason\":[1]}", sid), TR_RPC_INVALID_PARAMS, "reason"},
		{"task.setAttributes", trt_fmt("{\"sid\":\"%s\"}", sid), TR_RPC_INVALID_PARAMS, "attributes"},
		{"task.setAttributes", trt_fmt("{\"sid\":\"%s\",\"attributes\":\"{}\"}", sid), TR_RPC_INVALID_PARAMS, "attributes"},
		{"task.setAttributes", trt_fmt("{\"sid\":\"%s\",\"attributes\":null}", sid), TR_RPC_INVALID_PARAMS, "attributes"},
		{"task.setVirtualStartTime", trt_fmt("{\"sid\":\"%s\",\"time\":\"yesterday\"}", sid), TR_RPC_INVALID_PARAMS, "time"},
		{"task.setVirtualStartTime", trt_fmt("{\"sid\":\"%s\",\"time\":true}", sid), TR_RPC_INVALID_PARAMS, "time"},
		{"task.hold", trt_fmt("{\"sid\":\"%s\",\"targetWorkerSid\":5,\"onHold\":true}", sid), TR_RPC_INVALID_PARAMS, "targetWorkerSid"},
		{"task.hold", trt_fmt("{\"sid\":\"%s\",\"targetWorkerSid\":\"WK1\",\"onHold\":\"yes\"}", sid), TR_RPC_INVALID_PARAMS, "onHold"},
		{"task.hold", trt_fmt("{\"sid\":\"%s\",\"targetWorkerSid\":\"WK1\",\"onHold\":true,\"holdUrl\":5}", sid), TR_RPC_INVALID_PARAMS, "holdUrl"},
		{"task.kick", trt_fmt("{\"sid\":\"%s\"}", sid), TR_RPC_INVALID_PARAMS, "workerSid"},
		{"task.transfer", trt_fmt("{\"sid\":\"%s\"}", sid), TR_RPC_INVALID_PARAMS, "to"},
		{"task.transfer", trt_fmt("{\"sid\":\"%s\",\"to\":\"WK1\",\"mode\":\"lukewarm\"}", sid), TR_RPC_INVALID_PARAMS, "mode"},
		{"task.transfer", trt_fmt("{\"sid\":\"%s\",\"to\":\"WK1\",\"priority\":-1}", sid), TR_RPC_INVALID_PARAMS, "priority"},
		{"task.transfer", trt_fmt("{\"sid\":\"%s\",\"to\":\"WK1\",\"attributes\":\"x\"}", sid), TR_RPC_INVALID_PARAMS, "attributes"},
		{"task.updateParticipant", trt_fmt("{\"sid\":\"%s\",\"hold\":\"on\"}", sid), TR_RPC_INVALID_PARAMS, "hold"},
		{"task.cancelTransfer", trt_fmt("{\"sid\":\"%s\"}", sid), TR_RPC_INVALID_STATE, NULL},
		{"task.nosuch", "{}", TR_RPC_METHOD_NOT_FOUND, NULL},
		{"events.unsubscribe", "{\"subscription\":\"x\"}", TR_RPC_INVALID_PARAMS, "subscription"},
	};
	int before = trt_sim_request_count(&e2e.env);
	assert_true(before >= 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tr_json *err = NULL;
		int code = trt_call_err(e2e.rpc, cases[i].method, cases[i].params, &err);
		if (code != cases[i].code) {
			fprintf(stderr, "# case %zu: %s %s -> %d, expected %d\n", i, cases[i].method,
				cases[i].params, code, cases[i].code);
			fail();
		}
		if (cases[i].param) {
			const struct tr_json *data = tr_json_get(err, "data");
			const char *p = tr_json_get_string(data, "param");
			if (!p || strcmp(p, cases[i].param) != 0) {
				fprintf(stderr, "# case %zu: error names %s, expected %s\n", i,
					p ? p : "(nothing)", cases[i].param);
				fail();
			}
		}
		tr_json_free(err);
	}
	assert_int_equal(trt_sim_request_count(&e2e.env), before);
}

/* Protocol-level errors: bad JSON, batches, invalid requests; the connection survives them. */
static void test_protocol_errors(void **state) {
	struct trt_conn *c = NULL;
	struct tr_json *msg = NULL;
	const struct {
		const char *text;
		int code;
	} cases[] = {
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":", TR_RPC_PARSE_ERROR},
		{"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"task.list\"}]", TR_RPC_INVALID_REQUEST},
		{"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"task.list\"}", TR_RPC_INVALID_REQUEST},
		{"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"task.list\"}", TR_RPC_INVALID_REQUEST},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"task.list\",\"params\":5}", TR_RPC_INVALID_REQUEST},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"task.get\",\"params\":{\"sid\":\"\xff\xfe\"}}", TR_RPC_PARSE_ERROR},
	};
	static const uint8_t bad_headers[][4] = {{0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 0}};
	(void)state;
	c = e2e_open();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t code = 0;
		assert_int_equal(trt_send_frame(c, cases[i].text), 0);
		assert_int_equal(trt_read_frame(c, E2E_WAIT, &msg), 0);
		assert_int_equal(tr_json_get_int(tr_json_get(msg, "error"), "code", &code), 0);
		if (code != cases[i].code) {
			fprintf(stderr, "# case %zu: got %lld, expected %d\n", i, (long long)code,
				cases[i].code);
			fail();
		}
		tr_json_free(msg);
	}
	/* still usable */
	msg = trt_call_ok(c, "task.list", "{}");
	assert_non_null(msg);
	tr_json_free(msg);

	/* an oversize frame header: an error, then the connection is closed; a zero-length
	 * frame (on a new connection): closed too */
	for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
		if (i > 0) {
			c = e2e_open();
		}
		assert_int_equal(trt_send_raw(c, bad_headers[i], 4), 0);
		assert_true(trt_wait_closed(c, E2E_WAIT));
		trt_conn_free(c);
	}

	/* the daemon is fine */
	assert_true(trt_proc_alive(&e2e.env.daemon.proc));
}

static void test_describe_and_status(void **state) {
	struct tr_json *d, *s;
	(void)state;
	d = trt_call_ok(e2e.rpc, "rpc.describe", NULL);
	assert_non_null(d);
	assert_true(tr_json_is(tr_json_get(d, "methods"), TR_JSON_ARRAY));
	assert_true(tr_json_get(d, "methods")->u.arr.n >= 16);
	assert_true(tr_json_is(tr_json_get(d, "events"), TR_JSON_ARRAY));
	tr_json_free(d);
	s = trt_call_ok(e2e.rpc, "daemon.status", NULL);
	assert_non_null(s);
	{
		char *text = NULL;
		char tok[4096] = "";
		assert_int_equal(tr_json_dump(s, &text, NULL), 0);
		/* the token never appears in a reply */
		assert_true(trt_read_token(e2e.env.daemon.token_file, tok, sizeof(tok)) > 20);
		assert_null(strstr(text, tok));
		free(text);
	}
	tr_json_free(s);
}

/* SIGTERM while a call is upstream: the daemon stops reading, but the call's answer still
 * reaches the client before the connection closes (taskrouterd(8), doc/PROTOCOL.md §1).
 * Last: it restarts the daemon for the group's teardown. */
static void test_sigterm_answers_calls(void **state) {
	char sid[35], res[35];
	struct tr_json *msg = NULL;
	int64_t id = 0;
	bool sent = false;
	(void)state;
	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	e2e_sim_post(&e2e.env, "/sim/faults/rest",
		trt_fmt("{\"count\":1,\"hang_ms\":1500,\"match\":\"%s\"}", sid));
	assert_int_equal(trt_send_request(e2e.rpc, 77, "task.setAttributes",
				 trt_fmt("{\"sid\":\"%s\",\"attributes\":{\"at\":\"stop\"}}", sid)),
		0);
	/* the signal must come once the POST is upstream: wait until the simulator has it */
	for (int i = 0; i < 2000 && !sent; i++) {
		struct tr_json *list = trt_sim_requests(&e2e.env);
		assert_non_null(list);
		for (size_t k = 0; k < list->u.arr.n; k++) {
			const char *m = tr_json_get_string(list->u.arr.items[k], "method");
			const char *u = tr_json_get_string(list->u.arr.items[k], "url");
			sent = sent || (m && u && strcmp(m, "POST") == 0 && strstr(u, sid));
		}
		tr_json_free(list);
	}
	assert_true(sent);
	assert_int_equal(kill(e2e.env.daemon.proc.pid, SIGTERM), 0);
	assert_int_equal(trt_read_frame(e2e.rpc, E2E_WAIT, &msg), 0);
	assert_int_equal(tr_json_get_int(msg, "id", &id), 0);
	assert_int_equal(id, 77);
	assert_non_null(tr_json_get(msg, "result"));
	tr_json_free(msg);
	assert_true(trt_wait_closed(e2e.rpc, E2E_WAIT));
	e2e_disconnect();
	assert_int_equal(trt_daemon_stop(&e2e.env), 0);
	assert_int_equal(trt_daemon_start(&e2e.env, "alice", NULL), 0);
	assert_int_equal(trt_daemon_wait_status(&e2e.env, "ready", E2E_WAIT), 0);
	assert_int_equal(e2e_connect(), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_and_list),
		cmocka_unit_test(test_set_attributes),
		cmocka_unit_test(test_virtual_start_time),
		cmocka_unit_test(test_fetch_latest_version),
		cmocka_unit_test(test_version_conflict),
		cmocka_unit_test(test_hold_kick_participant),
		cmocka_unit_test(test_transfer_and_cancel),
		cmocka_unit_test(test_wrapup_complete),
		cmocka_unit_test(test_canceled_from_outside),
		cmocka_unit_test(test_bad_input_sends_nothing),
		cmocka_unit_test(test_protocol_errors),
		cmocka_unit_test(test_describe_and_status),
		cmocka_unit_test(test_sigterm_answers_calls),
	};
	return cmocka_run_group_tests(tests, e2e_setup, e2e_teardown);
}
