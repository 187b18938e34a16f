/*
 * test-worker.c — the Worker side end to end (issue #14): reservations accepted, rejected and
 * instructed through the daemon, the worker's activity and attributes, activities, channels
 * and the worker events, against taskrouter-sim. Each test checks the simulator's state and
 * the request the daemon sent; bad input checks that nothing went out.
 */
#include "common.h"

/* /sim/state (caller frees). */
static struct tr_json *sim_state(void) {
	struct tr_json *st = NULL;

	assert_int_equal(trt_sim_http(&e2e.env, "GET", "/sim/state", NULL, &st), 200);
	return st;
}

/* A copy of the simulator's member `key` == value in array `list` of /sim/state. */
static struct tr_json *sim_find(const char *list, const char *key, const char *value) {
	struct tr_json *st = sim_state(), *r;

	r = tr_json_dup(trt_json_find(tr_json_get(st, list), key, value));
	tr_json_free(st);
	assert_non_null(r);
	return r;
}

static const char *alice(void) {
	return e2e_worker_sid(&e2e.env, "alice");
}

/* An activity's sid from activity.list, by name (static buffer). */
static const char *activity_sid(const char *name) {
	static char sid[64];
	struct tr_json *l = trt_call_ok(e2e.rpc, "activity.list", "{}");

	assert_non_null(l);
	snprintf(sid, sizeof(sid), "%s",
		e2e_str(trt_json_find(tr_json_get(l, "activities"), "name", name), "sid"));
	tr_json_free(l);
	return sid;
}

/* The last REST request with this method whose route ends with url_suffix, with this
 * apiVersion, exactly these params (JSON text, compared in order) and If-Match (-1: none). */
static void assert_request(const char *url_suffix, const char *method, const char *version,
	const char *params, int64_t if_match) {
	struct tr_json *all = trt_sim_requests(&e2e.env), *want = NULL;
	const struct tr_json *req = NULL, *p, *im;
	char *got = NULL, *w = NULL;

	assert_true(tr_json_is(all, TR_JSON_ARRAY));
	for (size_t i = all->u.arr.n; i-- > 0 && !req;) {
		const struct tr_json *r = all->u.arr.items[i];
		const char *url = tr_json_get_string(r, "url");
		const char *m = tr_json_get_string(r, "method");

		if (url && m && strcmp(m, method) == 0 && strlen(url) >= strlen(url_suffix) &&
			strcmp(url + strlen(url) - strlen(url_suffix), url_suffix) == 0) {
			req = r;
		}
	}
	if (!req) {
		fprintf(stderr, "# no %s request to ...%s\n", method, url_suffix);
		fail();
	}
	assert_string_equal(e2e_str(req, "apiVersion"), version);
	p = tr_json_get(req, "params");
	assert_int_equal(tr_json_parse(params, strlen(params), &want, NULL), 0);
	assert_int_equal(tr_json_dump(p, &got, NULL), 0);
	assert_int_equal(tr_json_dump(want, &w, NULL), 0);
	if (strcmp(w, got) != 0) { /* the same members in the same order */
		fprintf(stderr, "# params %s, expected %s\n", got, w);
		fail();
	}
	im = tr_json_get(req, "ifMatch");
	if (!im) {
		im = tr_json_get(req, "If-Match");
	}
	if (if_match < 0) {
		assert_true(!im || im->type == TR_JSON_NULL ||
			(tr_json_is(im, TR_JSON_STRING) && im->u.str.len == 0));
	} else {
		assert_non_null(im);
		assert_int_equal(tr_json_is(im, TR_JSON_STRING) ? strtoll(im->u.str.s, NULL, 10) :
				 im->u.num.i, if_match);
	}
	free(got);
	free(w);
	tr_json_free(want);
	tr_json_free(all);
}

static int64_t res_version(const char *res) {
	struct tr_json *r = trt_call_ok(e2e.rpc, "reservation.get", trt_fmt("{\"sid\":\"%s\"}", res));
	int64_t v;

	assert_non_null(r);
	v = e2e_version(r);
	tr_json_free(r);
	return v;
}

static int64_t worker_version(void) {
	struct tr_json *w = trt_call_ok(e2e.rpc, "worker.get", "{}");
	int64_t v;

	assert_non_null(w);
	v = e2e_version(w);
	tr_json_free(w);
	return v;
}

/* A task arrives, one client accepts it through the daemon, another sees reservationAccepted
 * with the reservation and the task assigned; then wrap and complete. */
static void test_accept_wrap_complete(void **state) {
	char sid[35], res[35];
	struct tr_json *r, *ev = NULL, *sim;
	int64_t v;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, false, sid, res);
	/* the list and the get, by the reservation's sid and by its task's */
	r = trt_call_ok(e2e.rpc, "reservation.list", "{\"status\":\"pending\"}");
	assert_non_null(trt_json_find(tr_json_get(r, "reservations"), "sid", res));
	tr_json_free(r);
	r = trt_call_ok(e2e.rpc, "reservation.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_string_equal(e2e_str(r, "sid"), res);
	assert_string_equal(e2e_str(r, "status"), "pending");
	assert_string_equal(e2e_str(r, "taskSid"), sid);
	assert_string_equal(e2e_str(r, "workerSid"), alice());
	assert_string_equal(e2e_str(tr_json_get(r, "task"), "wireStatus"), "reserved");
	tr_json_free(r);

	v = res_version(res);
	r = trt_call_ok(e2e.rpc, "reservation.accept", trt_fmt("{\"sid\":\"%s\"}", res));
	assert_non_null(r);
	assert_string_equal(e2e_str(r, "status"), "accepted");
	assert_int_equal(e2e_version(r), v + 1);
	tr_json_free(r);
	assert_request(trt_fmt("Workers/%s/Reservations/%s", alice(), res), "POST", "v1",
		"{\"ReservationStatus\":\"accepted\"}", v);
	sim = sim_find("reservations", "sid", res);
	assert_string_equal(e2e_str(sim, "reservation_status"), "accepted");
	tr_json_free(sim);
	/* the other client */
	assert_int_equal(trt_wait_event(e2e.sub, "reservationAccepted", sid, E2E_WAIT, &ev), 0);
	assert_string_equal(e2e_str(tr_json_get(ev, "reservation"), "status"), "accepted");
	assert_string_equal(e2e_str(tr_json_get(ev, "reservation"), "sid"), res);
	assert_string_equal(e2e_str(tr_json_get(ev, "task"), "wireStatus"), "assigned");
	tr_json_free(ev);

	r = trt_call_ok(e2e.rpc, "reservation.wrap", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_string_equal(e2e_str(r, "status"), "wrapping");
	tr_json_free(r);
	e2e_wait_event(e2e.sub, "reservationWrapup", sid);
	r = trt_call_ok(e2e.rpc, "reservation.complete", trt_fmt("{\"sid\":\"%s\"}", res));
	assert_string_equal(e2e_str(r, "status"), "completed");
	tr_json_free(r);
	assert_request(trt_fmt("Reservations/%s", res), "POST", "v1",
		"{\"ReservationStatus\":\"completed\"}", v + 2);
	e2e_wait_event(e2e.sub, "reservationCompleted", sid);
	/* an ended reservation is still there for a while, with its last status */
	r = trt_call_ok(e2e.rpc, "reservation.get", trt_fmt("{\"sid\":\"%s\"}", res));
	assert_string_equal(e2e_str(r, "status"), "completed");
	tr_json_free(r);
}

/* Reject with an activity moves the worker; setActivity by name and by sid; the next
 * versioned write goes out with the fresh version (no 412). */
static void test_reject_and_activity(void **state) {
	char sid[35], res[35];
	char offline[64], available[64];
	struct tr_json *r, *ev = NULL, *sim;
	int64_t v;
	(void)state;

	snprintf(offline, sizeof(offline), "%s", activity_sid("Offline"));
	snprintf(available, sizeof(available), "%s", activity_sid("Available"));
	e2e_new_task(&e2e.env, e2e.sub, false, sid, res);
	v = res_version(res);
	r = trt_call_ok(e2e.rpc, "reservation.reject",
		trt_fmt("{\"sid\":\"%s\",\"activitySid\":\"%s\"}", res, offline));
	assert_string_equal(e2e_str(r, "status"), "rejected");
	tr_json_free(r);
	assert_request(trt_fmt("Reservations/%s", res), "POST", "v1",
		trt_fmt("{\"ReservationStatus\":\"rejected\",\"WorkerActivitySid\":\"%s\"}", offline),
		v);
	e2e_wait_event(e2e.sub, "reservationRejected", sid);
	assert_int_equal(trt_wait_event(e2e.sub, "activityUpdated", NULL, E2E_WAIT, &ev), 0);
	assert_string_equal(e2e_str(tr_json_get(ev, "worker"), "activityName"), "Offline");
	tr_json_free(ev);
	sim = sim_find("workers", "name", "alice");
	assert_string_equal(e2e_str(sim, "activity_name"), "Offline");
	tr_json_free(sim);
	r = trt_call_ok(e2e.rpc, "activity.list", "{}");
	assert_true(trt_json_find(tr_json_get(r, "activities"), "name", "Offline") != NULL);
	{
		const struct tr_json *off = trt_json_find(tr_json_get(r, "activities"), "name",
			"Offline");
		bool cur = false;

		assert_int_equal(tr_json_get_bool(off, "isCurrent", &cur), 0);
		assert_true(cur);
	}
	tr_json_free(r);

	/* by name: the worker the daemon holds has the server's version, so no 412 */
	r = trt_call_ok(e2e.rpc, "worker.setActivity", "{\"activity\":\"Available\"}");
	assert_non_null(r);
	assert_string_equal(e2e_str(r, "activityName"), "Available");
	assert_string_equal(e2e_str(r, "activitySid"), available);
	tr_json_free(r);
	sim = sim_find("workers", "name", "alice");
	assert_string_equal(e2e_str(sim, "activity_name"), "Available");
	assert_int_equal(worker_version(), e2e_int(sim, "version"));
	tr_json_free(sim);
	/* by sid */
	r = trt_call_ok(e2e.rpc, "worker.setActivity", trt_fmt("{\"activity\":\"%s\"}", offline));
	assert_string_equal(e2e_str(r, "activityName"), "Offline");
	tr_json_free(r);
	assert_request(trt_fmt("Workers/%s", alice()), "POST", "v1",
		trt_fmt("{\"ActivitySid\":\"%s\"}", offline), worker_version() - 1);
	r = trt_call_ok(e2e.rpc, "worker.setActivity", trt_fmt("{\"activity\":\"%s\"}", available));
	assert_string_equal(e2e_str(r, "activityName"), "Available");
	tr_json_free(r);
}

/* setActivity with rejectPendingReservations rejects the pending reservation upstream. */
static void test_reject_pending(void **state) {
	char sid[35], res[35];
	struct tr_json *r, *sim;
	int64_t v;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, false, sid, res);
	v = worker_version();
	r = trt_call_ok(e2e.rpc, "worker.setActivity",
		"{\"activity\":\"Offline\",\"rejectPendingReservations\":true}");
	assert_string_equal(e2e_str(r, "activityName"), "Offline");
	tr_json_free(r);
	e2e_wait_event(e2e.sub, "reservationRejected", sid);
	sim = sim_find("reservations", "sid", res);
	assert_string_equal(e2e_str(sim, "reservation_status"), "rejected");
	tr_json_free(sim);
	/* a versioned write right after goes out with the server's version */
	r = trt_call_ok(e2e.rpc, "worker.setActivity", "{\"activity\":\"Available\"}");
	assert_non_null(r);
	tr_json_free(r);
	assert_true(worker_version() > v);
}

/* Each instruction changes the simulator's reservation as the spec says, with exactly the
 * SDK's params, and none carries If-Match. */
static void test_instructions(void **state) {
	static const struct {
		const char *method, *params, *want, *name;
		bool accepts;
	} cases[] = {
		{ "reservation.call", "\"from\":\"+15550100\",\"url\":\"https://x/twiml\","
			"\"timeout\":25,\"accept\":true",
			"{\"Instruction\":\"call\",\"CallFrom\":\"+15550100\",\"CallUrl\":"
			"\"https://x/twiml\",\"CallTimeout\":25,\"CallAccept\":true}", "call", true },
		{ "reservation.dequeue", "\"from\":\"+15550100\",\"postWorkActivitySid\":null,"
			"\"record\":\"record-from-answer\"",
			"{\"Instruction\":\"dequeue\",\"DequeueFrom\":\"+15550100\","
			"\"DequeueRecord\":\"record-from-answer\"}", "dequeue", true },
		{ "reservation.redirect", "\"callSid\":\"CA0000000000000000000000000000000a\","
			"\"url\":\"https://x/r\",\"accept\":true",
			"{\"Instruction\":\"redirect\",\"RedirectCallSid\":"
			"\"CA0000000000000000000000000000000a\",\"RedirectUrl\":\"https://x/r\","
			"\"RedirectAccept\":true}", "redirect", true },
		{ "reservation.conference", "\"endConferenceOnExit\":true,\"beep\":\"onEnter\","
			"\"timeout\":20",
			"{\"Instruction\":\"conference\",\"EndConferenceOnExit\":true,\"Beep\":"
			"\"onEnter\",\"Timeout\":20}", "conference", true },
		{ "reservation.call", "\"from\":\"+15550100\",\"url\":\"https://x/twiml\"",
			"{\"Instruction\":\"call\",\"CallFrom\":\"+15550100\",\"CallUrl\":"
			"\"https://x/twiml\"}", "call", false },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char sid[35], res[35];
		struct tr_json *r, *sim;
		const struct tr_json *ins;

		e2e_new_task(&e2e.env, e2e.sub, false, sid, res);
		r = trt_call_ok(e2e.rpc, cases[i].method,
			trt_fmt("{\"sid\":\"%s\",%s}", res, cases[i].params));
		assert_non_null(r);
		assert_string_equal(e2e_str(r, "sid"), res);
		tr_json_free(r);
		assert_request(trt_fmt("Workers/%s/Reservations/%s", alice(), res), "POST", "v1",
			cases[i].want, -1);
		sim = sim_find("reservations", "sid", res);
		ins = tr_json_get(sim, "instruction");
		assert_string_equal(e2e_str(ins, "name"), cases[i].name);
		assert_string_equal(e2e_str(sim, "reservation_status"),
			cases[i].accepts ? "accepted" : "pending");
		tr_json_free(sim);
		if (cases[i].accepts) {
			e2e_wait_event(e2e.sub, "reservationAccepted", sid);
		}
		/* an instruction needs a pending reservation: the second one is refused upstream */
		if (cases[i].accepts) {
			assert_int_equal(trt_call_err(e2e.rpc, cases[i].method,
				trt_fmt("{\"sid\":\"%s\",%s}", res, cases[i].params), NULL),
				TR_RPC_UPSTREAM_ERROR);
		}
	}
}

/* updateParticipant goes to the v2 WorkerParticipant route; fetchLatestVersion GETs. */
static void test_participant_and_fetch(void **state) {
	char sid[35], res[35];
	struct tr_json *r, *sim;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, false, sid, res);
	r = trt_call_ok(e2e.rpc, "reservation.conference", trt_fmt("{\"sid\":\"%s\"}", res));
	tr_json_free(r);
	e2e_wait_event(e2e.sub, "reservationAccepted", sid);
	r = trt_call_ok(e2e.rpc, "reservation.updateParticipant",
		trt_fmt("{\"sid\":\"%s\",\"mute\":true,\"beepOnExit\":false}", res));
	assert_non_null(r);
	assert_string_equal(e2e_str(r, "status"), "accepted");
	tr_json_free(r);
	assert_request(trt_fmt("Workers/%s/WorkerParticipant", alice()), "POST", "v2",
		trt_fmt("{\"ReservationSid\":\"%s\",\"Mute\":true,\"BeepOnExit\":false}", res), -1);
	sim = sim_find("reservations", "sid", res);
	assert_non_null(tr_json_get(sim, "participant"));
	tr_json_free(sim);

	r = trt_call_ok(e2e.rpc, "reservation.fetchLatestVersion", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_string_equal(e2e_str(r, "status"), "accepted");
	assert_string_equal(e2e_str(tr_json_get(r, "task"), "wireStatus"), "assigned");
	tr_json_free(r);
	assert_request(trt_fmt("Workers/%s/Reservations/%s", alice(), res), "GET", "v1", "{}", -1);
	r = trt_call_ok(e2e.rpc, "worker.fetchLatestVersion", "{}");
	sim = sim_find("workers", "name", "alice");
	assert_int_equal(e2e_version(r), e2e_int(sim, "version"));
	tr_json_free(sim);
	tr_json_free(r);
	assert_request(trt_fmt("Workers/%s", alice()), "GET", "v1", "{}", -1);
}

/* A stale worker version gets the conflict error with the fresh version; the retry works. */
static void test_worker_conflict(void **state) {
	struct tr_json *err = NULL, *r, *sim;
	const struct tr_json *data;
	(void)state;

	/* the simulator changes the worker without telling the daemon */
	e2e_sim_post(&e2e.env, "/sim/workers/alice/attributes",
		"{\"attributes\":{\"skill\":\"fr\"},\"silent\":true}");
	assert_int_equal(trt_call_err(e2e.rpc, "worker.setAttributes",
		"{\"attributes\":{\"skill\":\"de\"}}", &err), TR_RPC_VERSION_CONFLICT);
	data = tr_json_get(err, "data");
	sim = sim_find("workers", "name", "alice");
	assert_int_equal(strtoll(e2e_str(data, "currentVersion"), NULL, 10),
		e2e_int(sim, "version"));
	tr_json_free(sim);
	tr_json_free(err);
	r = trt_call_ok(e2e.rpc, "worker.setAttributes", "{\"attributes\":{\"skill\":\"de\"}}");
	assert_non_null(r);
	assert_string_equal(e2e_str(tr_json_get(r, "attributes"), "skill"), "de");
	tr_json_free(r);
}

/* Channels, their events, reservationFailed and createTask. */
static void test_channels_failed_create(void **state) {
	struct tr_json *r, *ev = NULL, *st;
	char sid[35];
	const char *tsid;
	(void)state;

	r = trt_call_ok(e2e.rpc, "channel.list", "{}");
	assert_non_null(trt_json_find(tr_json_get(r, "channels"), "taskChannelUniqueName", "voice"));
	tr_json_free(r);
	e2e_sim_post(&e2e.env, "/sim/workers/alice/channels/voice", "{\"capacity\":3}");
	assert_int_equal(trt_wait_event(e2e.sub, "channelCapacityUpdated", NULL, E2E_WAIT, &ev), 0);
	assert_int_equal(e2e_int(tr_json_get(ev, "channel"), "capacity"), 3);
	tr_json_free(ev);
	r = trt_call_ok(e2e.rpc, "channel.list", "{}");
	assert_int_equal(e2e_int(trt_json_find(tr_json_get(r, "channels"), "taskChannelUniqueName",
		"voice"), "capacity"), 3);
	tr_json_free(r);
	e2e_sim_post(&e2e.env, "/sim/workers/alice/channels/voice", "{\"capacity\":1}");
	e2e_wait_event(e2e.sub, "channelCapacityUpdated", NULL);

	e2e_sim_post(&e2e.env, "/sim/tasks", "{\"worker\":\"alice\",\"fail\":true}");
	assert_int_equal(trt_wait_event(e2e.sub, "reservationFailed", NULL, E2E_WAIT, &ev), 0);
	assert_non_null(tr_json_get(ev, "failure"));
	tr_json_free(ev);

	st = sim_state();
	r = trt_call_ok(e2e.rpc, "worker.createTask",
		trt_fmt("{\"to\":\"+15550101\",\"from\":\"+15550102\",\"workflowSid\":\"%s\","
			"\"taskQueueSid\":\"%s\",\"attributes\":{\"a\":1,\"from\":\"me\"},"
			"\"taskChannelUniqueName\":\"voice\"}",
			e2e_str(tr_json_get(st, "workflow"), "sid"),
			e2e_str(tr_json_get(st, "queue"), "sid")));
	assert_non_null(r);
	tsid = e2e_str(r, "sid");
	snprintf(sid, sizeof(sid), "%s", tsid);
	assert_request("Tasks", "POST", "v1",
		trt_fmt("{\"WorkflowSid\":\"%s\",\"TaskQueueSid\":\"%s\",\"RoutingTarget\":\"%s\","
			"\"TaskChannelUniqueName\":\"voice\",\"Attributes\":{\"a\":1,\"from\":"
			"\"+15550102\",\"outbound_to\":\"+15550101\"}}",
			e2e_str(tr_json_get(st, "workflow"), "sid"),
			e2e_str(tr_json_get(st, "queue"), "sid"), alice()), -1);
	tr_json_free(st);
	tr_json_free(r);
	/* the task exists upstream, targeted at alice */
	r = trt_sim_task(&e2e.env, sid);
	assert_non_null(r);
	assert_string_equal(e2e_str(r, "routing_target"), alice());
	tr_json_free(r);
}

/* What changed while the daemon was away comes out of the resync, marked resync. */
static void test_resync_worker_events(void **state) {
	struct tr_json *ev = NULL, *w;
	const struct tr_json *rs;
	(void)state;

	/* silently (no frame), then the session drops: only the resync can tell */
	e2e_sim_post(&e2e.env, "/sim/workers/alice/activity",
		"{\"activity\":\"Offline\",\"silent\":true}");
	e2e_sim_post(&e2e.env, "/sim/workers/alice/channels/voice",
		"{\"capacity\":4,\"silent\":true}");
	e2e_sim_post(&e2e.env, "/sim/faults/drop", "{\"close\":true}");
	e2e_wait_event(e2e.sub, "disconnected", NULL);
	assert_int_equal(trt_wait_event(e2e.sub, "channelCapacityUpdated", NULL, E2E_WAIT, &ev), 0);
	rs = tr_json_get(ev, "resync");
	assert_true(rs && rs->type == TR_JSON_TRUE);
	assert_int_equal(e2e_int(tr_json_get(ev, "channel"), "capacity"), 4);
	tr_json_free(ev);
	assert_int_equal(trt_wait_event(e2e.sub, "activityUpdated", NULL, E2E_WAIT, &ev), 0);
	rs = tr_json_get(ev, "resync");
	assert_true(rs && rs->type == TR_JSON_TRUE);
	assert_string_equal(e2e_str(tr_json_get(ev, "worker"), "activityName"), "Offline");
	tr_json_free(ev);
	e2e_wait_event(e2e.sub, "ready", NULL);
	w = trt_call_ok(e2e.rpc, "worker.get", "{}");
	assert_string_equal(e2e_str(w, "activityName"), "Offline");
	tr_json_free(w);
	w = trt_call_ok(e2e.rpc, "worker.setActivity", "{\"activity\":\"Available\"}");
	assert_non_null(w);
	tr_json_free(w);
	e2e_sim_post(&e2e.env, "/sim/workers/alice/channels/voice", "{\"capacity\":1}");
	e2e_wait_event(e2e.sub, "channelCapacityUpdated", NULL);
}

/* Bad input: a clear error, and nothing goes upstream. */
/* params with its "@" replaced by sid (static buffer). */
static const char *with_sid(const char *params, const char *sid) {
	static char buf[512];
	const char *at = strchr(params, '@');

	if (!at) {
		return params;
	}
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - params), params, sid, at + 1);
	return buf;
}

static void test_bad_input_sends_nothing(void **state) {
	static const struct {
		const char *method, *params, *param;
		int code;
	} cases[] = {
		{ "reservation.accept", "{\"sid\":\"WR00000000000000000000000000000000\"}", NULL,
			TR_RPC_NOT_FOUND },
		{ "reservation.accept", "{\"sid\":\"@\",\"foo\":\"bar\"}", "foo",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.reject", "{\"sid\":\"@\",\"activitySid\":\"WAnope\"}", "activitySid",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.reject", "{\"sid\":\"@\",\"activitySid\":5}", "activitySid",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.call", "{\"sid\":\"@\",\"from\":\"x\",\"url\":\"y\",\"timeout\":\"20\"}",
			"timeout", TR_RPC_INVALID_PARAMS },
		{ "reservation.call", "{\"sid\":\"@\",\"url\":\"y\"}", "from", TR_RPC_INVALID_PARAMS },
		{ "reservation.redirect", "{\"sid\":\"@\",\"callSid\":\"CA1\",\"url\":\"y\","
			"\"accept\":\"yes\"}", "accept", TR_RPC_INVALID_PARAMS },
		{ "reservation.conference", "{\"sid\":\"@\",\"hold\":true}", "hold",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.conference", "{\"sid\":\"@\",\"beep\":1}", "beep",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.updateParticipant", "{\"sid\":\"@\",\"mute\":\"no\"}", "mute",
			TR_RPC_INVALID_PARAMS },
		{ "worker.setActivity", "{\"activity\":\"Lunch\"}", "activity", TR_RPC_INVALID_PARAMS },
		{ "worker.setActivity", "{\"activity\":\"Available\",\"rejectPendingReservations\":true}",
			"rejectPendingReservations", TR_RPC_INVALID_PARAMS },
		{ "worker.setAttributes", "{\"attributes\":[1]}", "attributes", TR_RPC_INVALID_PARAMS },
		{ "worker.createTask", "{\"to\":\"a\",\"from\":\"b\",\"workflowSid\":\"WW1\"}",
			"taskQueueSid", TR_RPC_INVALID_PARAMS },
	};
	char sid[35], res[35];
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, false, sid, res);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int before = trt_sim_request_count(&e2e.env);
		struct tr_json *err = NULL;
		const struct tr_json *data;

		fprintf(stderr, "# case %zu: %s\n", i, cases[i].method);
		assert_int_equal(trt_call_err(e2e.rpc, cases[i].method, with_sid(cases[i].params, res),
			&err), cases[i].code);
		data = tr_json_get(err, "data");
		if (cases[i].param) {
			assert_string_equal(e2e_str(data, "param"), cases[i].param);
		}
		if (strcmp(cases[i].params, "{\"activity\":\"Lunch\"}") == 0) {
			/* the activities are listed */
			assert_true(tr_json_is(tr_json_get(data, "values"), TR_JSON_ARRAY));
		}
		tr_json_free(err);
		assert_int_equal(trt_sim_request_count(&e2e.env), before);
	}
	/* the reservation is still pending upstream */
	{
		struct tr_json *sim = sim_find("reservations", "sid", res);

		assert_string_equal(e2e_str(sim, "reservation_status"), "pending");
		tr_json_free(sim);
	}
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_wrap_complete),
		cmocka_unit_test(test_reject_and_activity),
		cmocka_unit_test(test_reject_pending),
		cmocka_unit_test(test_instructions),
		cmocka_unit_test(test_participant_and_fetch),
		cmocka_unit_test(test_worker_conflict),
		cmocka_unit_test(test_channels_failed_create),
		cmocka_unit_test(test_resync_worker_events),
		cmocka_unit_test(test_bad_input_sends_nothing),
	};
	return cmocka_run_group_tests(tests, e2e_setup, e2e_teardown);
}
