/*
 * test-sim.c — taskrouter-sim's own tests (suite 'sim', TAP): the model's transitions,
 * 412 on stale versions, pagination, token validation, event routing per worker,
 * closeExistingSessions, setWorkerOfflineIfDisconnected, every fault injector and a clean
 * shutdown. The simulator runs as a child; waits are poll() with deadlines.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simclient.h"

static int n_tests, n_failed;
static struct trt_env env;
static char ws_sid[64], alice[64], bob[64], queue_sid[64], jstr_workflow[64];
static int T; /* default wait, ms */

#define CHECK(cond, ...)                                                                     \
	do {                                                                                 \
		n_tests++;                                                                   \
		if (cond) {                                                                  \
			printf("ok %d - ", n_tests);                                         \
		} else {                                                                     \
			n_failed++;                                                          \
			printf("not ok %d - ", n_tests);                                     \
		}                                                                            \
		printf(__VA_ARGS__);                                                         \
		printf("\n");                                                                \
		fflush(stdout);                                                              \
	} while (0)

/* A worker's token; two stay valid at once. */
static const char *tok(const char *w) {
	static char t[2][4096];
	static int i;
	char *b = t[i++ % 2];

	if (trt_sim_token(&env, w, b, sizeof(t[0])) < 0) {
		b[0] = '\0';
	}
	return b;
}

static const char *q(const char *worker, const char *extra) {
	return trt_fmt("token=%s&closeExistingSessions=false&clientVersion=test-1%s", tok(worker),
		extra ? extra : "");
}

static struct ws *connect_ws(const char *worker, const char *extra) {
	struct ws *w = NULL;
	yajl_val init;

	if (ws_open(&env, q(worker, extra), &w) != 101) {
		return NULL;
	}
	init = ws_wait(w, "init", T);
	if (!init) {
		ws_free(w);
		return NULL;
	}
	yajl_tree_free(init);
	return w;
}

/* A member (a string, or an integer as text) of the object in /sim/state's array `list`
 * whose `key` is value; "" when there is none. Four static buffers in turn. */
static const char *state_field(
	const char *list, const char *key, const char *value, const char *field) {
	static char out[4][256];
	static int i;
	char *o = out[i++ % 4];
	struct tr_json *st = NULL;
	const struct tr_json *obj;
	int64_t n;

	o[0] = '\0';
	if (trt_sim_http(&env, "GET", "/sim/state", NULL, &st) == 200) {
		obj = trt_json_find(tr_json_get(st, list), key, value);
		if (tr_json_get_string(obj, field)) {
			snprintf(o, 256, "%s", tr_json_get_string(obj, field));
		} else if (tr_json_get_int(obj, field, &n) == 0) {
			snprintf(o, 256, "%lld", (long long)n);
		}
	}
	tr_json_free(st);
	return o;
}

static const char *task_field(const char *sid, const char *field) {
	return state_field("tasks", "sid", sid, field);
}

static const char *worker_activity(const char *name) {
	return state_field("workers", "name", name, "activity_name");
}

static int new_task(const char *worker, const char *channel, char task[64], char res[64]) {
	yajl_val r = NULL;
	int st = sc_http(&env, "POST", "/sim/tasks",
		trt_fmt("{\"worker\":\"%s\",\"channel\":\"%s\",\"attributes\":{\"k\":1}}", worker,
			channel),
		&r);

	snprintf(task, 64, "%s", jstr(r, "task") ? jstr(r, "task") : "");
	snprintf(res, 64, "%s", jstr(r, "reservation") ? jstr(r, "reservation") : "");
	yajl_tree_free(r);
	return st;
}

static int ctl(const char *path, const char *body) {
	return sc_http(&env, "POST", path, body, NULL);
}

static const char *wk(const char *rest) {
	return trt_fmt("Workspaces/%s/Workers/%s%s", ws_sid, alice, rest);
}

static const char *tk(const char *sid) {
	return trt_fmt("Workspaces/%s/Tasks/%s", ws_sid, sid);
}

/* ---- tests ---- */

static void test_init_and_heartbeat(void) {
	struct ws *w = NULL;
	struct wsframe f;
	yajl_val v;
	int st = ws_open(&env, q("alice", NULL), &w);
	long long life;

	CHECK(st == 101, "websocket upgrade with alice's token (%d)", st);
	if (st != 101) {
		return;
	}
	CHECK(ws_next(w, T, &f) == 0 && f.opcode == WS_TEXT, "a first frame arrives");
	v = yajl_tree_parse(f.data ? f.data : "", NULL, 0);
	ws_frame_done(&f);
	life = jint(v, "payload.token_lifetime");
	CHECK(jstr(v, "event_type") && strcmp(jstr(v, "event_type"), "init") == 0 &&
			strcmp(jstr(v, "payload.channel_id"), alice) == 0 &&
			strcmp(jstr(v, "payload.workspace_sid"), ws_sid) == 0 &&
			life > 3500000 && life <= 3600000,
		"the first frame is init with channel_id, workspace_sid and token_lifetime in ms");
	yajl_tree_free(v);
	CHECK(ws_next(w, T, &f) == 0 && f.opcode == WS_TEXT && strcmp(f.data, " ") == 0,
		"a single-space heartbeat frame follows");
	ws_frame_done(&f);
	ws_free(w);
}

static void test_token_validation(void) {
	struct ws *w = NULL;
	char bad[4096];
	yajl_val r = NULL;
	int st;

	st = ws_open(&env, "closeExistingSessions=false&clientVersion=x", &w);
	CHECK(st == 401, "upgrade without a token: 401 (%d)", st);
	st = ws_open(&env, "token=not.a.jwt&closeExistingSessions=false&clientVersion=x", &w);
	CHECK(st == 403, "upgrade with a malformed token: 403 (%d)", st);
	snprintf(bad, sizeof(bad), "%s", tok("alice"));
	bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
	st = ws_open(
		&env, trt_fmt("token=%s&closeExistingSessions=false&clientVersion=x", bad), &w);
	CHECK(st == 403, "upgrade with a bad signature: 403 (%d)", st);
	st = sc_rest(&env, bad, "v1", "GET", wk(""), NULL, NULL, NULL);
	CHECK(st == 403, "REST with a bad signature: 403 (%d)", st);
	st = sc_http(&env, "POST", "/sim/tokens", "{\"worker\":\"bob\",\"ttl\":-10}", &r);
	CHECK(st == 200 && jstr(r, "token"), "an expired token for bob is minted");
	if (jstr(r, "token")) {
		const char *et = trt_fmt("%s", jstr(r, "token"));
		st = ws_open(&env,
			trt_fmt("token=%s&closeExistingSessions=false&clientVersion=x", et), &w);
		CHECK(st == 401, "upgrade with an expired token: 401 (%d)", st);
		st = sc_rest(&env, et, "v1", "GET",
			trt_fmt("Workspaces/%s/Workers/%s", ws_sid, bob), NULL, NULL, NULL);
		CHECK(st == 401, "REST with an expired token: 401 (%d)", st);
	}
	yajl_tree_free(r);
	st = sc_http(&env, "POST", "/sim/tokens", "{\"worker\":\"bob\"}", NULL);
	CHECK(st == 200, "bob's token is renewed");
	st = sc_rest(&env, tok("alice"), "v1", "GET",
		trt_fmt("Workspaces/%s/Workers/%s", ws_sid, bob), NULL, NULL, NULL);
	CHECK(st == 403, "REST on another worker's path: 403 (%d)", st);
	st = sc_rest(&env, tok("alice"), "v1", "GET",
		trt_fmt("Workspaces/WS00000000000000000000000000000000/Workers/%s", alice), NULL,
		NULL, NULL);
	CHECK(st == 403, "REST on another workspace: 403 (%d)", st);
	st = sc_rest(&env, tok("alice"), "v2", "GET", wk(""), NULL, NULL, NULL);
	CHECK(st == 404, "REST with the wrong apiVersion: 404 (%d)", st);
	st = sc_rest(&env, tok("alice"), "v1", "GET", wk("/Nope"), NULL, NULL, &r);
	CHECK(st == 404 && jstr(r, "message") && strstr(jstr(r, "message"), "was not found"),
		"REST on an unknown path: 404 with a message");
	yajl_tree_free(r);
	st = sc_http(&env, "POST", "/v1/wschannels", "{not json", NULL);
	CHECK(st == 400, "REST with a malformed body: 400 (%d)", st);
}

static void test_routing_and_transitions(void) {
	struct ws *a = connect_ws("alice", NULL), *b = connect_ws("bob", NULL);
	char t[64], r[64], t2[64], r2[64];
	yajl_val v, resp = NULL;
	long long ver;
	int st;

	CHECK(a && b, "alice and bob connected");
	if (!a || !b) {
		goto out;
	}
	CHECK(new_task("alice", "voice", t, r) == 200 && t[0] == 'W' && r[0] == 'W',
		"control: a task for alice");
	v = ws_wait(a, "reservation.created", T);
	CHECK(v && strcmp(jstr(v, "payload.sid"), r) == 0 &&
			strcmp(jstr(v, "payload.task.sid"), t) == 0 &&
			strcmp(jstr(v, "payload.task.assignment_status"), "reserved") == 0 &&
			strcmp(jstr(v, "payload.task.attributes"), "{\"k\":1}") == 0 &&
			jget(v, "payload.task.addons") && jget(v, "payload.task.virtual_start_time"),
		"alice gets reservation.created with the embedded task");
	yajl_tree_free(v);
	CHECK(new_task("bob", "chat", t2, r2) == 200, "control: a task for bob");
	v = ws_wait(b, "reservation.created", T);
	CHECK(v && strcmp(jstr(v, "payload.sid"), r2) == 0,
		"bob's first event is his own reservation (alice's did not reach him)");
	yajl_tree_free(v);

	st = sc_rest(&env, tok("alice"), "v1", "POST", wk(trt_fmt("/Reservations/%s", r)),
		"{\"ReservationStatus\":\"accepted\"}", NULL, &resp);
	CHECK(st == 200 && strcmp(jstr(resp, "payload.reservation_status"), "accepted") == 0 &&
			!jget(resp, "payload.task") && jstr(resp, "payload.task_sid"),
		"REST accept answers a reservation without an embedded task");
	yajl_tree_free(resp);
	v = ws_wait(a, "reservation.accepted", T);
	CHECK(v && strcmp(jstr(v, "payload.task.assignment_status"), "assigned") == 0,
		"reservation.accepted shows the task assigned");
	yajl_tree_free(v);
	ver = atoll(task_field(t, "version"));

	/* 412 */
	st = sc_rest(&env, tok("alice"), "v1", "POST", tk(t), "{\"Attributes\":{\"k\":2}}",
		trt_fmt("%lld", ver - 1), &resp);
	CHECK(st == 412 && jint(resp, "code") == 20412, "stale If-Match on a task: 412 (%d)", st);
	yajl_tree_free(resp);
	CHECK(atoll(task_field(t, "version")) == ver, "the refused write changed nothing");
	st = sc_rest(&env, tok("alice"), "v1", "POST", tk(t), "{\"Attributes\":\"{\\\"k\\\":3}\"}",
		trt_fmt("\"%lld\"", ver), &resp);
	CHECK(st == 200 && jint(resp, "payload.version") == ver + 1 &&
			strcmp(jstr(resp, "payload.attributes"), "{\"k\":3}") == 0,
		"a quoted current If-Match and string Attributes: 200, version + 1");
	yajl_tree_free(resp);
	v = ws_wait(a, "task.updated", T);
	CHECK(v && jint(v, "payload.version") == ver + 1, "task.updated follows");
	yajl_tree_free(v);
	st = sc_rest(&env, tok("alice"), "v1", "POST", wk(""), "{\"Attributes\":{}}", "0", NULL);
	CHECK(st == 412, "stale If-Match on the worker: 412");
	st = sc_rest(&env, tok("alice"), "v1", "POST", wk(trt_fmt("/Reservations/%s", r)),
		"{\"ReservationStatus\":\"wrapping\"}", "77", NULL);
	CHECK(st == 412, "stale If-Match on a reservation: 412");

	/* refusals */
	st = sc_rest(&env, tok("alice"), "v1", "POST", tk(t), "{\"AssignmentStatus\":\"canceled\"}",
		NULL, NULL);
	CHECK(st == 400, "canceling an assigned task: 400");
	st = sc_rest(&env, tok("alice"), "v1", "POST", tk(t),
		"{\"VirtualStartTime\":\"2999-01-01T00:00:00Z\"}", NULL, &resp);
	CHECK(st == 400 && strstr(jstr(resp, "message"), "future"), "a future VirtualStartTime: 400");
	yajl_tree_free(resp);

	/* wrap then complete, with the event order reservation.* then task.* */
	ver = atoll(task_field(t, "version"));
	st = sc_rest(&env, tok("alice"), "v1", "POST", tk(t), "{\"AssignmentStatus\":\"wrapping\"}",
		NULL, NULL);
	CHECK(st == 200 && atoll(task_field(t, "version")) == ver + 1, "wrapUp: 200, version + 1");
	v = ws_wait(a, "reservation.wrapup", T);
	CHECK(v != NULL, "reservation.wrapup");
	yajl_tree_free(v);
	v = ws_wait(a, "task.wrapup", T);
	CHECK(v && strcmp(jstr(v, "payload.assignment_status"), "wrapping") == 0,
		"then task.wrapup");
	yajl_tree_free(v);
	st = sc_rest(&env, tok("alice"), "v1", "POST", tk(t), "{\"AssignmentStatus\":\"wrapping\"}",
		NULL, NULL);
	CHECK(st == 400, "wrapping a wrapping task: 400");
	st = sc_rest(&env, tok("alice"), "v1", "POST", tk(t),
		"{\"AssignmentStatus\":\"completed\",\"Reason\":\"done\"}", NULL, NULL);
	CHECK(st == 200, "complete: 200");
	v = ws_wait(a, "reservation.completed", T);
	CHECK(v != NULL, "reservation.completed");
	yajl_tree_free(v);
	v = ws_wait(a, "task.completed", T);
	CHECK(v && strcmp(jstr(v, "payload.reason"), "done") == 0, "then task.completed");
	yajl_tree_free(v);
	st = sc_rest(&env, tok("alice"), "v1", "POST", tk(t),
		"{\"AssignmentStatus\":\"completed\"}", NULL, NULL);
	CHECK(st == 400, "completing a completed task: 400");

	/* reject -> pending */
	st = sc_rest(&env, tok("bob"), "v1", "POST",
		trt_fmt("Workspaces/%s/Workers/%s/Reservations/%s", ws_sid, bob, r2),
		"{\"ReservationStatus\":\"rejected\"}", NULL, NULL);
	CHECK(st == 200 && strcmp(task_field(t2, "assignment_status"), "pending") == 0,
		"reject: the task goes back to pending");
	v = ws_wait(b, "reservation.rejected", T);
	CHECK(v != NULL, "reservation.rejected to bob");
	yajl_tree_free(v);

	/* cancel from outside */
	CHECK(ctl(trt_fmt("/sim/tasks/%s/cancel", t2), "{\"reason\":\"gone\"}") == 200 &&
			strcmp(task_field(t2, "assignment_status"), "canceled") == 0,
		"control cancel of a pending task");
	CHECK(ctl(trt_fmt("/sim/tasks/%s/cancel", t), NULL) == 400, "control cancel of a completed "
								    "task: 400");
out:
	ws_free(a);
	ws_free(b);
}

/* Control delete: a live task ends as complete or cancel would end it, then is gone (404). */
static void test_delete(void) {
	struct ws *a = connect_ws("alice", NULL);
	char t[64], r[64], t2[64], r2[64];
	yajl_val v = NULL;
	int st;

	CHECK(a != NULL, "alice connected");
	if (!a) {
		return;
	}
	CHECK(new_task("alice", "voice", t, r) == 200 &&
			ctl(trt_fmt("/sim/reservations/%s/accept", r), NULL) == 200 &&
			new_task("alice", "chat", t2, r2) == 200,
		"two tasks for alice, the first accepted");
	CHECK(ctl(trt_fmt("/sim/tasks/%s/delete", t), NULL) == 200, "control delete of an assigned task");
	v = ws_wait(a, "task.completed", T);
	CHECK(v && strcmp(jstr(v, "payload.sid"), t) == 0 &&
			strcmp(jstr(v, "payload.reason"), "deleted") == 0,
		"it ends completed, reason \"deleted\"");
	yajl_tree_free(v);
	st = sc_rest(&env, tok("alice"), "v1", "GET", tk(t), "{}", NULL, NULL);
	CHECK(st == 404, "GET of a deleted task: 404 (%d)", st);
	CHECK(task_field(t, "sid")[0] == '\0', "/sim/state no longer lists it");
	CHECK(ctl(trt_fmt("/sim/tasks/%s/delete", t), NULL) == 404, "deleting it twice: 404");
	CHECK(ctl(trt_fmt("/sim/tasks/%s/delete", t2), NULL) == 200 &&
			(v = ws_wait(a, "reservation.canceled", T)) != NULL &&
			strcmp(jstr(v, "payload.sid"), r2) == 0,
		"a reserved task ends canceled (reservation.canceled)");
	yajl_tree_free(v);
	st = sc_rest(&env, tok("alice"), "v1", "GET", tk(t2), "{}", NULL, NULL);
	CHECK(st == 404, "GET of the second deleted task: 404 (%d)", st);
	ws_free(a);
}

static void test_pagination(void) {
	char after[64] = "";
	int pages = 0, total = 0, st;

	st = ctl("/sim/bulk-tasks", "{\"worker\":\"alice\",\"count\":7,\"accept\":true}");
	CHECK(st == 200, "bulk-tasks: 7 accepted tasks for alice");
	for (;;) {
		yajl_val r = NULL, c;
		const char *as;
		const char *p = after[0] ? trt_fmt("{\"Active\":\"true\",\"PageSize\":3,"
						   "\"AfterSid\":\"%s\"}",
						   after)
					 : "{\"Active\":\"true\",\"PageSize\":3}";
		st = sc_rest(&env, tok("alice"), "v2", "GET", wk("/Reservations"), p, NULL, &r);
		c = jget(r, "payload.contents");
		if (st != 200 || !c || !YAJL_IS_ARRAY(c)) {
			CHECK(0, "page %d fetched (%d)", pages + 1, st);
			yajl_tree_free(r);
			break;
		}
		pages++;
		total += (int)c->u.array.len;
		as = jstr(r, "payload.after_sid");
		if (as) {
			CHECK(c->u.array.len == 3 &&
					strcmp(as, jstr(c->u.array.values[2], "sid")) == 0 &&
					jget(c->u.array.values[0], "task.sid"),
				"page %d: 3 reservations with tasks, after_sid is the last SID", pages);
			snprintf(after, sizeof(after), "%s", as);
		}
		yajl_tree_free(r);
		if (!as || pages > 10) {
			break;
		}
	}
	CHECK(pages == 3 && total == 7, "3 pages hold the 7 active reservations (%d pages, %d)",
		pages, total);
}

static void test_close_existing_and_offline(void) {
	struct ws *a1 = connect_ws("alice", NULL), *a2 = connect_ws("alice", NULL), *a3;
	char why[128];
	int st;

	CHECK(a1 && a2, "two sessions for alice coexist");
	a3 = NULL;
	st = ws_open(&env,
		trt_fmt("token=%s&closeExistingSessions=true&clientVersion=x"
			"&setWorkerOfflineIfDisconnected=false",
			tok("alice")),
		&a3);
	CHECK(st == 101, "a third with closeExistingSessions=true");
	if (a1 && a2) {
		bool c1 = ws_wait_close(a1, T, why, sizeof(why)) == 4002;
		bool c2 = ws_wait_close(a2, T, why, sizeof(why)) == 4002;
		CHECK(c1 && c2, "both older sessions get close 4002");
	}
	ws_free(a1);
	ws_free(a2);
	{
		/* wait until the simulator has seen both close, so only a3 remains */
		int64_t deadline = trt_now_ms() + T;
		while (strcmp(state_field("workers", "name", "alice", "sessions"), "1") != 0 &&
			trt_now_ms() < deadline) {
		}
	}
	CHECK(ctl("/sim/workers/alice/activity", "{\"activity\":\"Available\"}") == 200,
		"alice available while only a3 is open");
	/* a3 asked not to go offline: close it and alice stays available */
	ws_free(a3);
	{
		struct ws *probe = connect_ws("bob", NULL); /* a round trip after a3's close */
		ws_free(probe);
	}
	CHECK(strcmp(worker_activity("alice"), "Available") == 0,
		"setWorkerOfflineIfDisconnected=false keeps alice available");
	a1 = connect_ws("alice", NULL);
	ws_free(a1);
	{
		int64_t deadline = trt_now_ms() + T;
		while (strcmp(worker_activity("alice"), "Offline") != 0 &&
			trt_now_ms() < deadline) {
		}
	}
	CHECK(strcmp(worker_activity("alice"), "Offline") == 0,
		"by default the worker goes offline when its last session closes");
	CHECK(ctl("/sim/workers/alice/activity", "{\"activity\":\"Available\"}") == 200,
		"alice made available again");
}


static const char *xfer_status(const char *sid) {
	return state_field("transfers", "sid", sid, "transfer_status");
}

static void test_transfers_and_channels(void) {
	struct ws *a = connect_ws("alice", NULL), *b = connect_ws("bob", NULL);
	char t[64], r[64], x[64] = "";
	yajl_val v = NULL, e;
	int st;

	CHECK(a && b && ctl("/sim/workers/alice/activity", "{\"activity\":\"Available\"}") == 200 &&
			ctl("/sim/workers/bob/activity", "{\"activity\":\"Available\"}") == 200,
		"alice and bob connected and available for the transfer tests");
	if (!a || !b) {
		goto out;
	}
	CHECK(new_task("alice", "voice", t, r) == 200 &&
			ctl(trt_fmt("/sim/reservations/%s/accept", r), NULL) == 200,
		"an assigned voice task for alice");
	/* warm transfer to bob, rejected */
	st = sc_rest(&env, tok("alice"), "v2", "POST", wk("/Transfers"),
		trt_fmt("{\"TaskSid\":\"%s\",\"ReservationSid\":\"%s\",\"To\":\"%s\"}", t, r, bob),
		NULL, &v);
	CHECK(st == 200 && jstr(v, "payload.sid") &&
			strcmp(jstr(v, "payload.transfer_mode"), "WARM") == 0 &&
			strcmp(jstr(v, "payload.transfer_type"), "WORKER") == 0 &&
			strcmp(jstr(v, "payload.task_sid"), t) == 0,
		"transfer to bob: a WARM WORKER transfer");
	snprintf(x, sizeof(x), "%s", jstr(v, "payload.sid") ? jstr(v, "payload.sid") : "");
	yajl_tree_free(v);
	e = ws_wait(b, "reservation.created", T);
	CHECK(e && strcmp(jstr(e, "payload.task_transfer.sid"), x) == 0 &&
			strcmp(jstr(e, "payload.task.assignment_status"), "reserved") == 0,
		"bob gets reservation.created with task_transfer");
	yajl_tree_free(e);
	st = sc_rest(&env, tok("alice"), "v2", "POST", wk("/Transfers"),
		trt_fmt("{\"TaskSid\":\"%s\",\"ReservationSid\":\"%s\",\"To\":\"%s\"}", t, r, bob),
		NULL, NULL);
	CHECK(st == 400, "a second transfer while one is initiated: 400");
	e = ws_wait(a, "task.transfer-initiated", T);
	CHECK(e && strcmp(jstr(e, "payload.sid"), x) == 0, "alice gets task.transfer-initiated");
	yajl_tree_free(e);
	CHECK(ctl(trt_fmt("/sim/transfers/%s/reject", x), NULL) == 200, "control: bob rejects");
	e = ws_wait(a, "task.updated", T);
	CHECK(e && strcmp(jstr(e, "payload.assignment_status"), "assigned") == 0,
		"alice: task.updated back to assigned");
	yajl_tree_free(e);
	e = ws_wait(a, "task.transfer-failed", T);
	CHECK(e && strcmp(jstr(e, "payload.transfer_status"), "failed") == 0 &&
			strstr(jstr(e, "payload.transfer_failed_reason"), "rejected"),
		"then task.transfer-failed with the reason");
	yajl_tree_free(e);
	/* to a queue: an attempt fails, then the transfer times out */
	st = sc_rest(&env, tok("alice"), "v2", "POST", wk("/Transfers"),
		trt_fmt("{\"TaskSid\":\"%s\",\"ReservationSid\":\"%s\",\"To\":\"%s\"}", t, r,
			queue_sid),
		NULL, &v);
	snprintf(x, sizeof(x), "%s", jstr(v, "payload.sid") ? jstr(v, "payload.sid") : "");
	CHECK(st == 200 && strcmp(jstr(v, "payload.transfer_type"), "QUEUE") == 0 &&
			strcmp(task_field(t, "assignment_status"), "reserved") == 0,
		"transfer to the queue: offered to bob at once");
	yajl_tree_free(v);
	CHECK(ctl(trt_fmt("/sim/transfers/%s/reject", x), NULL) == 200, "bob rejects the attempt");
	e = ws_wait(a, "task.transfer-attempt-failed", T);
	CHECK(e && strcmp(jstr(e, "payload.transfer_status"), "initiated") == 0 &&
			strcmp(task_field(t, "assignment_status"), "pending") == 0,
		"task.transfer-attempt-failed, transfer still initiated, task pending in the queue");
	yajl_tree_free(e);
	CHECK(ctl(trt_fmt("/sim/transfers/%s/timeout", x), NULL) == 200 &&
			strcmp(xfer_status(x), "failed") == 0 &&
			strcmp(task_field(t, "assignment_status"), "assigned") == 0,
		"queue transfer timeout: failed, task back with alice");
	/* event order reversed */
	CHECK(ctl("/sim/faults/event-order", "{\"reverse\":true}") == 200, "reverse event order");
	st = sc_rest(&env, tok("alice"), "v1", "POST", tk(t), "{\"AssignmentStatus\":\"wrapping\"}",
		NULL, NULL);
	{
		struct wsframe f;
		bool task_first = false;
		while (ws_next_event(a, T, &f) == 0 && f.opcode == WS_TEXT) {
			bool is_task = strstr(f.data, "\"task.wrapup\"") != NULL;
			bool is_res = strstr(f.data, "\"reservation.wrapup\"") != NULL;
			ws_frame_done(&f);
			if (is_task || is_res) {
				task_first = is_task;
				break;
			}
		}
		CHECK(st == 200 && task_first, "reversed: task.wrapup comes before reservation.wrapup");
	}
	CHECK(ctl("/sim/faults/event-order", "{\"reverse\":false}") == 200, "normal event order");
	/* worker channels */
	CHECK(ctl("/sim/workers/alice/channels/chat", "{\"capacity\":5,\"available\":false}") == 200,
		"control: alice's chat channel capacity 5, unavailable");
	e = ws_wait(a, "worker.capacity.update", T);
	CHECK(e && jint(e, "payload.configured_capacity") == 5, "worker.capacity.update");
	yajl_tree_free(e);
	e = ws_wait(a, "worker.channel.availability.update", T);
	CHECK(e && jint(e, "payload.available") == 0, "worker.channel.availability.update");
	yajl_tree_free(e);
	st = sc_rest(&env, tok("alice"), "v1", "POST", wk(""),
		"{\"Attributes\":{\"skill\":\"fr\"}}", NULL, NULL);
	e = ws_wait(a, "worker.attributes.update", T);
	CHECK(st == 200 && e && strcmp(jstr(e, "payload.attributes"), "{\"skill\":\"fr\"}") == 0,
		"worker attributes: worker.attributes.update");
	yajl_tree_free(e);
	/* createTask for oneself while unavailable: reservation.failed */
	CHECK(ctl("/sim/workers/bob/activity", "{\"activity\":\"Offline\"}") == 200,
		"bob offline");
	st = sc_rest(&env, tok("bob"), "v1", "POST", trt_fmt("Workspaces/%s/Tasks", ws_sid),
		trt_fmt("{\"WorkflowSid\":\"%s\",\"TaskQueueSid\":\"%s\",\"RoutingTarget\":\"%s\","
			"\"Attributes\":{\"outbound_to\":\"+1\"},\"TaskChannelUniqueName\":"
			"\"voice\"}",
			jstr_workflow, queue_sid, bob),
		NULL, &v);
	e = ws_wait(b, "reservation.failed", T);
	CHECK(st == 200 && e && strcmp(jstr(e, "payload.sid"), jstr(v, "payload.sid")) == 0 &&
			strcmp(jstr(e, "payload.assignment_status"), "canceled") == 0,
		"createTask with an unavailable routing target: reservation.failed (Task-shaped)");
	yajl_tree_free(e);
	yajl_tree_free(v);
	st = sc_rest(&env, tok("bob"), "v1", "POST", trt_fmt("Workspaces/%s/Tasks", ws_sid),
		"{\"WorkflowSid\":\"WWbad\"}", NULL, NULL);
	CHECK(st == 400, "createTask with a malformed WorkflowSid: 400");
	CHECK(ctl("/sim/workers/bob/activity", "{\"activity\":\"Available\"}") == 200 &&
			sc_rest(&env, tok("bob"), "v1", "POST",
				trt_fmt("Workspaces/%s/Tasks", ws_sid),
				trt_fmt("{\"WorkflowSid\":\"%s\",\"RoutingTarget\":\"%s\","
					"\"TaskChannelUniqueName\":\"chat\"}",
					jstr_workflow, bob),
				NULL, NULL) == 200,
		"createTask for an available bob");
	e = ws_wait(b, "reservation.created", T);
	CHECK(e != NULL, "the workflow offers it to bob");
	yajl_tree_free(e);
out:
	ws_free(a);
	ws_free(b);
}

static void test_faults(void) {
	struct ws *a = connect_ws("alice", NULL);
	struct wsframe f;
	yajl_val v;
	int st, got;
	char t[64], r[64], why[128];

	CHECK(a != NULL, "alice connected for the fault tests");
	if (!a) {
		return;
	}
	/* malformed and oversize messages */
	CHECK(ctl("/sim/faults/ws-message", "{\"kind\":\"malformed\"}") == 200, "malformed fault");
	st = ws_next_event(a, T, &f);
	v = st == 0 ? yajl_tree_parse(f.data, NULL, 0) : NULL;
	CHECK(st == 0 && f.opcode == WS_TEXT && !v, "a frame that is not JSON arrives");
	yajl_tree_free(v);
	ws_frame_done(&f);
	CHECK(ctl("/sim/faults/ws-message", "{\"kind\":\"oversize\",\"bytes\":2000000}") == 200,
		"oversize fault");
	st = ws_next_event(a, T, &f);
	CHECK(st == 0 && f.len == 2000000, "a 2 MB frame arrives (%zu)", f.len);
	ws_frame_done(&f);
	CHECK(ctl("/sim/faults/ws-message", "{\"kind\":\"bogus\"}") == 400, "unknown kind: 400");

	/* heartbeats paused */
	CHECK(ctl("/sim/faults/heartbeats", "{\"paused\":true}") == 200, "pause heartbeats");
	st = ws_next(a, 700, &f);
	if (st == 0 && f.opcode == WS_TEXT && strcmp(f.data, " ") == 0) {
		/* one heartbeat may already have been queued before the pause (a slow run, e.g.
		 * under valgrind, writes it after answering the control call) */
		ws_frame_done(&f);
		st = ws_next(a, 700, &f);
	}
	CHECK(st == -ETIMEDOUT, "no frame for 3 intervals while paused");
	if (st == 0) {
		ws_frame_done(&f);
	}
	CHECK(ctl("/sim/faults/heartbeats", "{\"paused\":false}") == 200, "resume heartbeats");
	st = ws_next(a, T, &f);
	CHECK(st == 0 && f.opcode == WS_TEXT && strcmp(f.data, " ") == 0, "heartbeats resume");
	ws_frame_done(&f);

	/* REST failures and hangs */
	CHECK(ctl("/sim/faults/rest", "{\"count\":2,\"status\":503,\"match\":\"Activities\"}") ==
			200,
		"REST fault: next 2 Activities calls 503");
	got = sc_rest(&env, tok("alice"), "v1", "GET", wk(""), NULL, NULL, NULL);
	CHECK(got == 200, "a non-matching call still succeeds");
	st = sc_rest(&env, tok("alice"), "v1", "GET", trt_fmt("Workspaces/%s/Activities", ws_sid),
		NULL, NULL, NULL);
	got = sc_rest(&env, tok("alice"), "v1", "GET", trt_fmt("Workspaces/%s/Activities", ws_sid),
		NULL, NULL, NULL);
	CHECK(st == 503 && got == 503, "two 503s");
	st = sc_rest(&env, tok("alice"), "v1", "GET", trt_fmt("Workspaces/%s/Activities", ws_sid),
		NULL, NULL, NULL);
	CHECK(st == 200, "then 200 again");
	CHECK(ctl("/sim/faults/rest", "{\"count\":1,\"hang_ms\":400}") == 200, "REST hang fault");
	st = sc_rest(&env, tok("alice"), "v1", "GET", wk(""), NULL, NULL, NULL);
	CHECK(st == 200 && sc_last_ms() >= 380, "the call answers after the hang (%lld ms)",
		(long long)sc_last_ms());
	CHECK(ctl("/sim/faults/rest", "{\"count\":1}") == 400, "a REST fault needs a status or "
								"hang: 400");

	/* transfer events after / before the reply */
	CHECK(ctl("/sim/workers/bob/activity", "{\"activity\":\"Available\"}") == 200 &&
			new_task("alice", "voice", t, r) == 200 &&
			ctl(trt_fmt("/sim/reservations/%s/accept", r), NULL) == 200,
		"an assigned voice task for the transfer tests");
	CHECK(ctl("/sim/faults/transfer-event-order", "{\"mode\":\"after\",\"delay_ms\":300}") ==
			200,
		"transfer events after the reply");
	st = sc_rest(&env, tok("alice"), "v2", "POST", wk("/Transfers"),
		trt_fmt("{\"TaskSid\":\"%s\",\"ReservationSid\":\"%s\",\"To\":\"%s\"}", t, r, bob),
		NULL, &v);
	{
		int64_t t0 = trt_now_ms();
		yajl_val e = ws_wait(a, "task.transfer-initiated", T);
		CHECK(st == 200 && e && trt_now_ms() - t0 >= 250 &&
				strcmp(jstr(e, "payload.sid"), jstr(v, "payload.sid")) == 0,
			"task.transfer-initiated arrives ~300 ms after the reply");
		yajl_tree_free(e);
	}
	if (jstr(v, "payload.sid")) {
		st = sc_rest(&env, tok("alice"), "v2", "POST",
			wk(trt_fmt("/Transfers/%s", jstr(v, "payload.sid"))),
			trt_fmt("{\"TaskSid\":\"%s\",\"TransferStatus\":\"canceled\"}", t), NULL,
			NULL);
		CHECK(st == 200, "cancel the transfer");
		st = sc_rest(&env, tok("alice"), "v2", "POST",
			wk(trt_fmt("/Transfers/%s", jstr(v, "payload.sid"))),
			trt_fmt("{\"TaskSid\":\"%s\",\"TransferStatus\":\"canceled\"}", t), NULL,
			NULL);
		CHECK(st == 400, "cancel it twice: 400");
	}
	yajl_tree_free(v);
	CHECK(ctl("/sim/faults/transfer-event-order", "{\"mode\":\"before\",\"delay_ms\":300}") ==
			200,
		"transfer events before the reply");
	st = sc_rest(&env, tok("alice"), "v2", "POST", wk("/Transfers"),
		trt_fmt("{\"TaskSid\":\"%s\",\"ReservationSid\":\"%s\",\"To\":\"%s\",\"Mode\":"
			"\"COLD\"}",
			t, r, bob),
		NULL, &v);
	{
		yajl_val e = ws_wait(a, "task.transfer-initiated", 50);
		CHECK(st == 200 && sc_last_ms() >= 280 && e,
			"the reply is held ~300 ms and the event is already there");
		yajl_tree_free(e);
	}
	if (jstr(v, "payload.sid")) {
		CHECK(ctl(trt_fmt("/sim/transfers/%s/accept", jstr(v, "payload.sid")), NULL) ==
					200 &&
				strcmp(task_field(t, "assignment_status"), "assigned") == 0,
			"control: bob accepts the cold transfer");
		{
			yajl_val e = ws_wait(a, "task.transfer-completed", T);
			CHECK(e != NULL, "alice gets task.transfer-completed");
			yajl_tree_free(e);
		}
	}
	yajl_tree_free(v);
	CHECK(ctl("/sim/faults/transfer-event-order", "{\"mode\":\"normal\"}") == 200,
		"transfer event order back to normal");

	/* drop with and without a close frame */
	CHECK(ctl("/sim/faults/drop", "{\"close\":true,\"code\":4321,\"reason\":\"bye\"}") == 200,
		"drop with a close frame");
	got = ws_wait_close(a, T, why, sizeof(why));
	CHECK(got == 4321 && strcmp(why, "bye") == 0, "close frame 4321 \"bye\" received");
	ws_free(a);
	a = connect_ws("alice", NULL);
	CHECK(ctl("/sim/faults/drop", "{\"close\":false}") == 200, "drop without a close frame");
	got = ws_wait_close(a, T, why, sizeof(why));
	CHECK(got == WS_EOF, "the connection ends without a close frame");
	ws_free(a);

	/* token expiry */
	a = connect_ws("alice", NULL);
	CHECK(ctl("/sim/faults/expire-token", "{\"worker\":\"alice\"}") == 200, "expire alice's token");
	got = ws_wait_close(a, T, why, sizeof(why));
	CHECK(got == 4001 && strcmp(why, "token expired") == 0, "close 4001 \"token expired\"");
	ws_free(a);
	st = sc_rest(&env, tok("alice"), "v1", "GET", wk(""), NULL, NULL, NULL);
	CHECK(st == 401, "REST with the expired token: 401 (%d)", st);
	CHECK(ctl("/sim/tokens", "{\"worker\":\"alice\",\"ttl\":2}") == 200, "a 2 s token");
	a = connect_ws("alice", NULL);
	/* the token lives 2 s; heartbeats keep coming until then */
	got = ws_wait_close(a, trt_ms(6000), why, sizeof(why));
	CHECK(got == 4001, "a token that expires while connected closes the socket with 4001");
	ws_free(a);
	CHECK(ctl("/sim/tokens", "{\"worker\":\"alice\"}") == 200, "alice's token renewed");
}

static void test_requests_log(void) {
	yajl_val r = NULL, list;
	int st = sc_http(&env, "GET", "/sim/requests", NULL, &r);
	bool ok = st == 200, redacted = true;

	list = jget(r, "requests");
	ok = ok && list && YAJL_IS_ARRAY(list) && list->u.array.len > 10;
	for (size_t i = 0; ok && i < list->u.array.len; i++) {
		yajl_val e = list->u.array.values[i];
		if (!jstr(e, "token") || strcmp(jstr(e, "token"), "[redacted]") != 0 ||
			jint(e, "status") < 200) {
			redacted = false;
		}
	}
	CHECK(ok && redacted, "/sim/requests lists the calls with status, token redacted");
	CHECK(ok && strcmp(jstr(list, "0.clientVersion"), "test-1") == 0 &&
			jstr(list, "0.apiVersion"),
		"the log keeps apiVersion and clientVersion");
	yajl_tree_free(r);
	CHECK(ctl("/sim/reset-requests", NULL) == 200 &&
			sc_http(&env, "GET", "/sim/requests", NULL, &r) == 200 &&
			jget(r, "requests")->u.array.len == 0,
		"reset-requests empties the log");
	yajl_tree_free(r);
	CHECK(ctl("/sim/nope", NULL) == 404, "unknown control path: 404");
	CHECK(ctl("/sim/tasks", "[1]") == 400, "control body that is not an object: 400");
}

static void test_shutdown(void) {
	struct ws *a = connect_ws("alice", NULL);
	char why[128];
	int got, st;

	CHECK(a != NULL, "a session open at shutdown");
	kill(env.sim.proc.pid, SIGTERM);
	got = ws_wait_close(a, T, why, sizeof(why));
	CHECK(got == 1001 && strcmp(why, "server shutdown") == 0,
		"SIGTERM closes sessions with 1001 \"server shutdown\"");
	ws_free(a);
	st = trt_sim_stop(&env);
	CHECK(st == 0, "the simulator exits with status 0 (%d)", st);
}


/* A second simulator: --port-file, --init-delay-ms, reservation timeouts and task TTLs. */
static void test_options_and_timers(void) {
	char pf[128], buf[32] = "", t[64], r[64];
	const char *args[] = {"--heartbeat-ms", "5000", "--init-delay-ms", "300", "--port-file",
		pf, NULL};
	struct ws *w = NULL;
	struct wsframe f;
	yajl_val v = NULL;
	int64_t t0;
	FILE *fp;
	int st;

	snprintf(pf, sizeof(pf), "%s/port", env.dir);
	st = trt_sim_start(&env, args);
	CHECK(st == 0, "a second simulator with --init-delay-ms and --port-file");
	if (st < 0) {
		return;
	}
	fp = fopen(pf, "r");
	if (fp) {
		if (!fgets(buf, sizeof(buf), fp)) {
			buf[0] = '\0';
		}
		fclose(fp);
	}
	buf[strcspn(buf, "\n")] = '\0';
	unlink(pf);
	CHECK(atoi(buf) == env.sim.port, "the port file holds the port (%s)", buf);
	/* The delay runs from the session's start, so it is timed from before the upgrade: under
	 * valgrind the upgrade's answer alone can take most of it. */
	t0 = trt_now_ms();
	st = ws_open(&env, q("alice", NULL), &w);
	CHECK(st == 101 && ws_next(w, T, &f) == 0 && strstr(f.data, "\"init\"") &&
			trt_now_ms() - t0 >= 250,
		"init arrives only after the configured delay");
	if (st == 101) {
		ws_frame_done(&f);
	}
	/* rescind */
	st = new_task("alice", "chat", t, r);
	CHECK(st == 200 && ctl(trt_fmt("/sim/reservations/%s/rescind", r), NULL) == 200 &&
			(v = ws_wait(w, "reservation.rescinded", T)) != NULL &&
			strcmp(task_field(t, "assignment_status"), "pending") == 0,
		"control rescind: reservation.rescinded, task pending");
	yajl_tree_free(v);
	CHECK(ctl(trt_fmt("/sim/reservations/%s/rescind", r), NULL) == 400, "rescind twice: 400");
	/* reservation timeout */
	st = sc_http(&env, "POST", "/sim/tasks",
		"{\"worker\":\"alice\",\"channel\":\"chat\",\"reservation_timeout\":1}", &v);
	snprintf(t, sizeof(t), "%s", jstr(v, "task") ? jstr(v, "task") : "");
	snprintf(r, sizeof(r), "%s", jstr(v, "reservation") ? jstr(v, "reservation") : "");
	yajl_tree_free(v);
	v = w ? ws_wait(w, "reservation.timeout", T) : NULL;
	CHECK(st == 200 && v && strcmp(jstr(v, "payload.sid"), r) == 0 &&
			strcmp(task_field(t, "assignment_status"), "pending") == 0,
		"an unanswered reservation times out (reservation.timeout), task pending");
	yajl_tree_free(v);
	/* task TTL */
	st = new_task("alice", "voice", t, r);
	(void)st;
	st = sc_http(&env, "POST", "/sim/tasks", "{\"worker\":\"alice\",\"timeout\":1}", &v);
	snprintf(t, sizeof(t), "%s", jstr(v, "task") ? jstr(v, "task") : "");
	yajl_tree_free(v);
	v = NULL;
	while (w && (v = ws_wait(w, "task.canceled", T))) {
		if (strcmp(jstr(v, "payload.sid"), t) == 0) {
			break;
		}
		yajl_tree_free(v);
		v = NULL;
	}
	CHECK(st == 200 && v && strcmp(jstr(v, "payload.reason"), "Task TTL Exceeded") == 0,
		"a task past its TTL is canceled with \"Task TTL Exceeded\"");
	yajl_tree_free(v);
	ws_free(w);
	st = trt_sim_stop(&env);
	CHECK(st == 0, "the second simulator exits with status 0 (%d)", st);
}

int main(void) {
	static const char *const args[] = {"--heartbeat-ms", "200", NULL};
	yajl_val s = NULL;
	int r;

	T = trt_under_valgrind() ? 30000 : 5000;
	r = trt_env_init(&env);
	if (r == 0) {
		r = trt_sim_start(&env, args);
	}
	CHECK(r == 0, "taskrouter-sim starts and reports its port (%d)", r);
	if (r < 0) {
		trt_env_done(&env);
		printf("1..%d\n", n_tests);
		return 1;
	}
	CHECK(sc_http(&env, "GET", "/sim/state", NULL, &s) == 200 && jstr(s, "workspace_sid"),
		"GET /sim/state");
	snprintf(ws_sid, sizeof(ws_sid), "%s", jstr(s, "workspace_sid"));
	snprintf(alice, sizeof(alice), "%s", jstr(s, "workers.0.sid"));
	snprintf(bob, sizeof(bob), "%s", jstr(s, "workers.1.sid"));
	snprintf(queue_sid, sizeof(queue_sid), "%s", jstr(s, "queue.sid"));
	snprintf(jstr_workflow, sizeof(jstr_workflow), "%s", jstr(s, "workflow.sid"));
	CHECK(strcmp(jstr(s, "workers.0.name"), "alice") == 0 &&
			strcmp(jstr(s, "workers.1.name"), "bob") == 0 &&
			strlen(alice) == 34 && strncmp(alice, "WK", 2) == 0,
		"the default world has alice and bob");
	yajl_tree_free(s);

	test_init_and_heartbeat();
	test_token_validation();
	test_routing_and_transitions();
	test_delete();
	test_pagination();
	test_close_existing_and_offline();
	test_transfers_and_channels();
	test_faults();
	test_requests_log();
	test_shutdown();
	test_options_and_timers();

	trt_env_done(&env);
	printf("1..%d\n", n_tests);
	return n_failed ? 1 : 0;
}
