/*
 * test-sim.c — taskrouter-sim's own tests (suite 'sim', TAP): the model's transitions,
 * 412 on stale versions, pagination, token validation, event routing per worker,
 * closeExistingSessions, setWorkerOfflineIfDisconnected, every fault injector and a clean
 * shutdown; and the Worker side (reservation routes and shapes, status rules, instructions,
 * WorkerParticipant, activities, worker versions, channel frames, reservation.failed,
 * createTask). The simulator runs as a child; waits are poll() with deadlines.
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

/* ---- the Worker side (issue #14): reservations, instructions, the worker, channels ---- */

#define RES_TIMEOUT_DEFAULT 120 /* the simulator's default reservation timeout */

static bool eq(const char *a, const char *b) {
	return a && b && strcmp(a, b) == 0;
}

static const char *nz(const char *s) {
	return s ? s : "";
}

/* /sim/state as a yajl tree (caller frees), NULL on failure. */
static yajl_val sim_state(void) {
	yajl_val v = NULL;

	if (sc_http(&env, "GET", "/sim/state", NULL, &v) != 200) {
		yajl_tree_free(v);
		return NULL;
	}
	return v;
}

/* The element of array `list` of v whose member `key` is the string value (borrowed). */
static yajl_val jfind(yajl_val v, const char *list, const char *key, const char *value) {
	yajl_val arr = jget(v, list);

	for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
		if (eq(jstr(arr->u.array.values[i], key), value)) {
			return arr->u.array.values[i];
		}
	}
	return NULL;
}

/* A value at path of v as text (a string, or an integer or boolean written out). */
static const char *jtext(yajl_val v, const char *path) {
	static char buf[4][64];
	static int i;
	char *b = buf[i++ % 4];

	v = jget(v, path);
	if (!v) {
		return NULL;
	}
	if (YAJL_IS_STRING(v)) {
		return v->u.string;
	}
	if (YAJL_IS_INTEGER(v)) {
		snprintf(b, 64, "%lld", (long long)v->u.number.i);
		return b;
	}
	if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
		return YAJL_IS_TRUE(v) ? "true" : "false";
	}
	return YAJL_IS_NULL(v) ? "null" : NULL;
}

/* A member of one reservation (or worker, ...) in /sim/state, as text ("" when absent). */
static const char *st_text(const char *list, const char *key, const char *value,
	const char *path) {
	static char out[4][512];
	static int i;
	char *o = out[i++ % 4];
	yajl_val s = sim_state();
	const char *t = jtext(jfind(s, list, key, value), path);

	snprintf(o, 512, "%s", t ? t : "");
	yajl_tree_free(s);
	return o;
}

static const char *res_text(const char *sid, const char *path) {
	return st_text("reservations", "sid", sid, path);
}

static const char *alice_text(const char *path) {
	return st_text("workers", "name", "alice", path);
}

static bool frame_matches(yajl_val v, const char *type, const char *path, const char *value) {
	return v && eq(jstr(v, "event_type"), type) && (!path || eq(jtext(v, path), value));
}

/* Wait for the event `type` whose payload member at path equals value (NULL path: any). */
static yajl_val wait_match(struct ws *w, const char *type, const char *path, const char *value) {
	int64_t deadline = trt_now_ms() + T;
	struct wsframe f;

	while (w && ws_next_event(w, trt_remaining(deadline), &f) == 0) {
		yajl_val v;
		if (f.opcode != WS_TEXT) {
			ws_frame_done(&f);
			return NULL;
		}
		v = yajl_tree_parse(f.data, NULL, 0);
		ws_frame_done(&f);
		if (frame_matches(v, type, path, value)) {
			return v;
		}
		yajl_tree_free(v);
	}
	return NULL;
}

/* The first event arrives (matching), then the second, and the second not before the first. */
static bool in_order(struct ws *w, const char *t1, const char *p1, const char *v1,
	const char *t2, const char *p2, const char *v2) {
	int64_t deadline = trt_now_ms() + T;
	struct wsframe f;
	bool first = false;

	while (w && ws_next_event(w, trt_remaining(deadline), &f) == 0) {
		yajl_val v;
		bool m1, m2;
		if (f.opcode != WS_TEXT) {
			ws_frame_done(&f);
			return false;
		}
		v = yajl_tree_parse(f.data, NULL, 0);
		ws_frame_done(&f);
		m1 = frame_matches(v, t1, p1, v1);
		m2 = frame_matches(v, t2, p2, v2);
		yajl_tree_free(v);
		if (!first && m2) {
			return false;
		}
		if (first && m2) {
			return true;
		}
		first = first || m1;
	}
	return false;
}

static const char *res_url(const char *worker_sid, const char *res) {
	return trt_fmt("Workspaces/%s/Workers/%s/Reservations/%s", ws_sid, worker_sid, res);
}

/* A reservation POST as alice; *ret (if given) gets the answer. */
static int res_post(const char *res, const char *params, const char *if_match, yajl_val *ret) {
	return sc_rest(&env, tok("alice"), "v1", "POST", res_url(alice, res), params, if_match,
		ret);
}

static int participant(const char *params, yajl_val *ret) {
	return sc_rest(&env, tok("alice"), "v2", "POST", wk("/WorkerParticipant"), params, NULL,
		ret);
}

static int worker_post(const char *params, const char *if_match, yajl_val *ret) {
	return sc_rest(&env, tok("alice"), "v1", "POST", wk(""), params, if_match, ret);
}

/* End every live reservation of a worker (the later tests count alice's). */
static void clear_live(const char *name) {
	yajl_val s = sim_state(), list = jget(s, "reservations");
	const char *sid = jstr(jfind(s, "workers", "name", name), "sid");
	bool ok = list && sid;

	for (size_t i = 0; ok && i < list->u.array.len; i++) {
		yajl_val r = list->u.array.values[i];
		const char *st = jstr(r, "reservation_status");
		if (!eq(jstr(r, "worker_sid"), sid) || !st) {
			continue;
		}
		if (eq(st, "pending")) {
			ok = ctl(trt_fmt("/sim/reservations/%s/reject", jstr(r, "sid")), NULL) == 200;
		} else if (eq(st, "accepted") || eq(st, "wrapping")) {
			ok = ctl(trt_fmt("/sim/reservations/%s/complete", jstr(r, "sid")), NULL) ==
				200;
		}
	}
	yajl_tree_free(s);
	CHECK(ok, "%s's live reservations ended", name);
}

static char wa_available[64], wa_offline[64], tc_chat[64];

static void load_sids(void) {
	yajl_val s = sim_state();

	snprintf(wa_available, sizeof(wa_available), "%s",
		nz(jstr(jfind(s, "activities", "friendly_name", "Available"), "sid")));
	snprintf(wa_offline, sizeof(wa_offline), "%s",
		nz(jstr(jfind(s, "activities", "friendly_name", "Offline"), "sid")));
	snprintf(tc_chat, sizeof(tc_chat), "%s",
		nz(jstr(jfind(s, "task_channels", "unique_name", "chat"), "sid")));
	yajl_tree_free(s);
}

/* Routes, If-Match and the answer shapes of spec reservation-worker §2.1, §3.3. */
static void test_reservation_routes(void) {
	struct ws *a = connect_ws("alice", "&setWorkerOfflineIfDisconnected=false");
	char t[64], r[64];
	yajl_val v = NULL;
	int st;

	CHECK(a && ctl("/sim/workers/alice/activity", "{\"activity\":\"Available\"}") == 200 &&
			new_task("alice", "voice", t, r) == 200,
		"worker side: alice connected, a pending reservation");
	st = sc_rest(&env, tok("alice"), "v1", "GET", res_url(alice, r), "{}", NULL, &v);
	CHECK(st == 200 && eq(jstr(v, "payload.task.sid"), t) &&
			jint(v, "payload.reservation_timeout") == RES_TIMEOUT_DEFAULT &&
			eq(jstr(v, "payload.worker_previous_activity_sid"), wa_available) &&
			eq(jstr(v, "payload.task_sid"), t) && eq(jstr(v, "payload.worker_name"), "alice"),
		"reservation GET (v1, under the worker): the event shape, task embedded");
	yajl_tree_free(v);
	CHECK(ctl("/sim/faults/reservation-shape", "{\"get\":\"instance\"}") == 200 &&
			sc_rest(&env, tok("alice"), "v1", "GET", res_url(alice, r), "{}", NULL,
				&v) == 200 &&
			!jget(v, "payload.task") && !jget(v, "payload.reservation_timeout") &&
			eq(jstr(v, "payload.task_sid"), t),
		"reservation-shape instance: the GET answers the instance shape");
	yajl_tree_free(v);
	CHECK(ctl("/sim/faults/reservation-shape", "{\"get\":\"event\"}") == 200 &&
			ctl("/sim/faults/reservation-shape", "{\"get\":\"x\"}") == 400,
		"reservation-shape back to event; a bad shape: 400");
	st = sc_rest(&env, tok("alice"), "v2", "GET", res_url(alice, r), "{}", NULL, NULL);
	CHECK(st == 404, "reservation GET with apiVersion v2: 404 (%d)", st);
	st = sc_rest(&env, tok("bob"), "v1", "GET", res_url(bob, r), "{}", NULL, NULL);
	CHECK(st == 404, "the reservation under another worker: 404 (%d)", st);
	st = res_post(r, "{\"ReservationStatus\":\"accepted\"}", "1", &v);
	CHECK(st == 412 && jint(v, "code") == 20412 && jstr(v, "message") &&
			strstr(jstr(v, "message"), "current version (0)") &&
			eq(res_text(r, "reservation_status"), "pending"),
		"accept with a stale If-Match: 412 naming the current version, nothing changed");
	yajl_tree_free(v);
	st = res_post(r, "{\"ReservationStatus\":\"accepted\"}", "0", &v);
	CHECK(st == 200 && eq(jstr(v, "payload.reservation_status"), "accepted") &&
			jint(v, "payload.version") == 1 && !jget(v, "payload.task") &&
			!jget(v, "payload.reservation_timeout") && eq(jstr(v, "payload.task_sid"), t) &&
			eq(jstr(v, "payload.worker_name"), "alice") &&
			jstr(v, "payload.task_channel_sid") &&
			eq(jstr(v, "payload.worker_previous_activity_sid"), wa_available),
		"accept with the current If-Match: 200, version 1, the public instance shape");
	yajl_tree_free(v);
	v = wait_match(a, "reservation.accepted", "payload.sid", r);
	CHECK(v && jint(v, "payload.reservation_timeout") == RES_TIMEOUT_DEFAULT &&
			eq(jstr(v, "payload.task.assignment_status"), "assigned"),
		"reservation.accepted keeps the event shape");
	yajl_tree_free(v);
	CHECK(res_post(r, "{\"ReservationStatus\":\"completed\"}", NULL, NULL) == 200,
		"complete it");
	ws_free(a);
}

/* Status rules: accept and reject need pending, wrap accepted, complete accepted or
 * wrapping; unknown or mistyped params are refused. */
static void test_reservation_status_rules(void) {
	char t[64], r[64], t2[64], r2[64];
	yajl_val v = NULL;
	int st;

	CHECK(new_task("alice", "chat", t, r) == 200 && new_task("alice", "chat", t2, r2) == 200,
		"two pending reservations");
	st = res_post(r, "{\"ReservationStatus\":\"wrapping\"}", NULL, &v);
	CHECK(st == 400 && jint(v, "code") == 20001 && jstr(v, "message") &&
			strstr(jstr(v, "message"), "not in expected state [accepted]"),
		"wrap a pending reservation: 400 \"not in expected state [accepted]\"");
	yajl_tree_free(v);
	st = res_post(r, "{\"ReservationStatus\":\"completed\"}", NULL, NULL);
	CHECK(st == 400, "complete a pending reservation: 400");
	st = res_post(r, "{\"ReservationStatus\":\"rejected\",\"undefined\":\"bar\"}", NULL, &v);
	CHECK(st == 400 && strstr(nz(jstr(v, "message")), "undefined") &&
			eq(res_text(r, "reservation_status"), "pending"),
		"reject with the SDK's \"undefined\" key: 400 naming it, nothing changed");
	yajl_tree_free(v);
	st = res_post(r, "{\"ReservationStatus\":\"rejected\",\"WorkerActivitySid\":7}", NULL, &v);
	CHECK(st == 400 && strstr(nz(jstr(v, "message")), "WorkerActivitySid"),
		"a WorkerActivitySid that is not a string: 400 naming it");
	yajl_tree_free(v);
	st = res_post(r, "{\"ReservationStatus\":\"rejected\",\"WorkerActivitySid\":\"Offline\"}",
		NULL, NULL);
	CHECK(st == 400, "a WorkerActivitySid that is a name, not a SID: 400");
	st = res_post(r, "{\"ReservationStatus\":\"accepted\",\"WorkerActivitySid\":\"x\"}", NULL,
		NULL);
	CHECK(st == 400, "WorkerActivitySid on an accept: 400");
	CHECK(res_post(r, "{\"ReservationStatus\":\"bogus\"}", NULL, NULL) == 400 &&
			res_post(r, "{\"ReservationStatus\":true}", NULL, NULL) == 400 &&
			res_post(r, "{}", NULL, NULL) == 400,
		"an unknown, mistyped or missing ReservationStatus: 400");
	CHECK(res_post(r, "{\"ReservationStatus\":\"accepted\"}", NULL, NULL) == 200,
		"accept a pending reservation: 200");
	st = res_post(r, "{\"ReservationStatus\":\"accepted\"}", NULL, &v);
	CHECK(st == 400 && strstr(nz(jstr(v, "message")), "not in expected state [pending]"),
		"accept it again: 400 \"not in expected state [pending]\"");
	yajl_tree_free(v);
	CHECK(res_post(r, "{\"ReservationStatus\":\"rejected\"}", NULL, NULL) == 400,
		"reject an accepted reservation: 400");
	CHECK(res_post(r, "{\"ReservationStatus\":\"wrapping\"}", NULL, NULL) == 200 &&
			eq(res_text(r, "reservation_status"), "wrapping"),
		"wrap an accepted reservation: 200");
	CHECK(res_post(r, "{\"ReservationStatus\":\"wrapping\"}", NULL, NULL) == 400,
		"wrap a wrapping reservation: 400");
	CHECK(res_post(r, "{\"ReservationStatus\":\"completed\"}", NULL, NULL) == 200 &&
			eq(res_text(r, "reservation_status"), "completed"),
		"complete a wrapping reservation: 200");
	CHECK(res_post(r, "{\"ReservationStatus\":\"completed\"}", NULL, NULL) == 400 &&
			res_post(r, "{\"ReservationStatus\":\"rejected\"}", NULL, NULL) == 400,
		"complete or reject a completed reservation: 400");
	CHECK(res_post(r2, "{\"ReservationStatus\":\"accepted\"}", NULL, NULL) == 200 &&
			res_post(r2, "{\"ReservationStatus\":\"completed\"}", NULL, NULL) == 200,
		"complete an accepted reservation: 200");
	CHECK(res_post(r2, "{\"ReservationStatus\":\"rejected\"}", NULL, NULL) == 400,
		"reject a completed one: 400");
}

/* Instructions need a pending reservation; conference and dequeue accept it, call and
 * redirect with CallAccept / RedirectAccept; each is recorded. WorkerParticipant. */
static void test_instructions(void) {
	struct ws *a = connect_ws("alice", "&setWorkerOfflineIfDisconnected=false");
	char t[64], r[64];
	yajl_val v = NULL, s;
	int st;

	CHECK(a && new_task("alice", "voice", t, r) == 200, "a pending voice reservation");
	st = res_post(r,
		"{\"Instruction\":\"conference\",\"From\":\"+15005550006\",\"To\":"
		"\"client:alice\",\"EndConferenceOnExit\":true,\"Muted\":true,\"Timeout\":30,"
		"\"Beep\":\"onEnter\",\"ConferenceRecord\":false,\"BogusOption\":1}",
		NULL, &v);
	CHECK(st == 400 && strstr(nz(jstr(v, "message")), "BogusOption") &&
			eq(res_text(r, "reservation_status"), "pending") &&
			eq(res_text(r, "instruction"), "null"),
		"conference with an unknown option: 400 naming it, nothing recorded");
	yajl_tree_free(v);
	CHECK(res_post(r, "{\"Instruction\":\"conference\",\"Timeout\":\"30\"}", NULL, NULL) ==
			400,
		"conference with a string Timeout: 400");
	st = res_post(r,
		"{\"Instruction\":\"conference\",\"From\":\"+15005550006\",\"To\":"
		"\"client:alice\",\"EndConferenceOnExit\":true,\"Muted\":true,\"Timeout\":30,"
		"\"Beep\":\"onEnter\",\"ConferenceRecord\":false,\"BeepOnCustomerEntrance\":true}",
		NULL, &v);
	CHECK(st == 200 && eq(jstr(v, "payload.reservation_status"), "accepted") &&
			!jget(v, "payload.task"),
		"conference: 200, the reservation accepted (instance shape)");
	yajl_tree_free(v);
	v = wait_match(a, "reservation.accepted", "payload.sid", r);
	CHECK(v != NULL, "reservation.accepted follows the conference instruction");
	yajl_tree_free(v);
	s = sim_state();
	{
		yajl_val rs = jfind(s, "reservations", "sid", r);
		yajl_val cf = jfind(s, "conferences", "task_sid", t);
		yajl_val me = jfind(cf, "workers", "worker_sid", alice);
		CHECK(eq(jtext(rs, "instruction.name"), "conference") &&
				eq(jtext(rs, "instruction.params.Beep"), "onEnter") &&
				eq(jtext(rs, "instruction.params.Timeout"), "30") &&
				eq(jtext(rs, "instruction.count"), "1") &&
				eq(jtext(rs, "participant.mute"), "true") &&
				eq(jtext(rs, "participant.end_conference_on_exit"), "true") &&
				eq(jtext(me, "muted"), "true") && eq(jtext(cf, "customer_in"), "true"),
			"/sim/state records the conference instruction; alice is in the "
			"conference, muted");
	}
	yajl_tree_free(s);
	st = res_post(r, "{\"Instruction\":\"conference\"}", NULL, &v);
	CHECK(st == 400 && jint(v, "code") == 40136, "conference on an accepted reservation: 400 "
						       "code 40136 (%lld)", jint(v, "code"));
	yajl_tree_free(v);
	/* WorkerParticipant (v2) */
	st = participant(trt_fmt("{\"ReservationSid\":\"%s\",\"Mute\":false,\"BeepOnExit\":true}",
				 r),
		&v);
	CHECK(st == 200 && eq(jstr(v, "payload.sid"), r), "WorkerParticipant: 200");
	yajl_tree_free(v);
	s = sim_state();
	{
		yajl_val rs = jfind(s, "reservations", "sid", r);
		yajl_val me = jfind(jfind(s, "conferences", "task_sid", t), "workers", "worker_sid",
			alice);
		CHECK(eq(jtext(rs, "participant.mute"), "false") &&
				eq(jtext(rs, "participant.beep_on_exit"), "true") &&
				eq(jtext(rs, "participant.end_conference_on_exit"), "true") &&
				eq(jtext(rs, "participant.updates"), "1") && eq(jtext(me, "muted"), "false"),
			"the worker's leg is unmuted, BeepOnExit recorded");
	}
	yajl_tree_free(s);
	CHECK(participant(trt_fmt("{\"ReservationSid\":\"%s\",\"EndConferenceOnExit\":false}", r),
		      NULL) == 200 &&
			eq(res_text(r, "participant.end_conference_on_exit"), "false"),
		"WorkerParticipant EndConferenceOnExit false");
	CHECK(participant(trt_fmt("{\"ReservationSid\":\"%s\",\"Hold\":true}", r), NULL) == 400 &&
			participant(trt_fmt("{\"ReservationSid\":\"%s\",\"Mute\":\"yes\"}", r),
				NULL) == 400 &&
			participant("{\"Mute\":true}", NULL) == 400,
		"WorkerParticipant with an unknown key, a mistyped Mute or no ReservationSid: 400");
	st = sc_rest(&env, tok("alice"), "v1", "POST", wk("/WorkerParticipant"),
		trt_fmt("{\"ReservationSid\":\"%s\"}", r), NULL, NULL);
	CHECK(st == 404, "WorkerParticipant with apiVersion v1: 404 (%d)", st);
	CHECK(res_post(r, "{\"ReservationStatus\":\"completed\"}", NULL, NULL) == 200 &&
			participant(trt_fmt("{\"ReservationSid\":\"%s\",\"Mute\":true}", r),
				NULL) == 400,
		"WorkerParticipant once the reservation completed: 400");

	/* call: without CallAccept the reservation stays pending */
	CHECK(new_task("alice", "voice", t, r) == 200, "another pending voice reservation");
	CHECK(res_post(r, "{\"Instruction\":\"call\",\"CallFrom\":\"+15005550006\"}", NULL,
		      NULL) == 400 &&
			res_post(r,
				"{\"Instruction\":\"call\",\"CallFrom\":\"+1\",\"CallUrl\":\"http://"
				"x/\",\"CallTimeout\":\"20\"}",
				NULL, NULL) == 400 &&
			res_post(r,
				"{\"Instruction\":\"call\",\"CallFrom\":\"+1\",\"CallUrl\":\"http://"
				"x/\",\"CallRecord\":true}",
				NULL, NULL) == 400 &&
			res_post(r,
				"{\"Instruction\":\"call\",\"CallFrom\":\"+1\",\"CallUrl\":\"http://"
				"x/\",\"undefined\":\"x\"}",
				NULL, NULL) == 400,
		"call without CallUrl, with a string CallTimeout, a boolean CallRecord or "
		"\"undefined\": 400");
	st = res_post(r,
		"{\"Instruction\":\"call\",\"CallFrom\":\"+15005550006\",\"CallUrl\":"
		"\"https://example.com/twiml\",\"CallTo\":\"client:alice\",\"CallTimeout\":20,"
		"\"CallRecord\":\"record-from-answer\",\"CallStatusCallbackUrl\":\"https://"
		"example.com/cb\"}",
		NULL, &v);
	CHECK(st == 200 && eq(jstr(v, "payload.reservation_status"), "pending") &&
			eq(res_text(r, "instruction.name"), "call") &&
			eq(res_text(r, "instruction.params.CallTimeout"), "20") &&
			eq(res_text(r, "reservation_status"), "pending"),
		"call without CallAccept: 200, recorded, the reservation still pending");
	yajl_tree_free(v);
	st = res_post(r,
		"{\"Instruction\":\"call\",\"CallFrom\":\"+15005550006\",\"CallUrl\":"
		"\"https://example.com/twiml\",\"CallAccept\":true}",
		NULL, &v);
	CHECK(st == 200 && eq(jstr(v, "payload.reservation_status"), "accepted") &&
			eq(res_text(r, "instruction.count"), "2") &&
			eq(res_text(r, "instruction.params.CallAccept"), "true") &&
			eq(task_field(t, "assignment_status"), "assigned"),
		"call with CallAccept true: accepted, the task assigned, 2 instructions recorded");
	yajl_tree_free(v);
	st = res_post(r, "{\"Instruction\":\"call\",\"CallFrom\":\"+1\",\"CallUrl\":\"u\"}", NULL,
		&v);
	CHECK(st == 400 && jint(v, "code") == 40114, "call on an accepted reservation: 400 code "
						       "40114 (%lld)", jint(v, "code"));
	yajl_tree_free(v);
	CHECK(res_post(r, "{\"ReservationStatus\":\"completed\"}", NULL, NULL) == 200, "complete");

	/* redirect */
	CHECK(new_task("alice", "voice", t, r) == 200, "a third pending voice reservation");
	CHECK(res_post(r, "{\"Instruction\":\"redirect\",\"RedirectUrl\":\"u\"}", NULL, NULL) ==
			400,
		"redirect without RedirectCallSid: 400");
	st = res_post(r,
		"{\"Instruction\":\"redirect\",\"RedirectCallSid\":\"CA0123456789abcdef0123456789"
		"abcdef\",\"RedirectUrl\":\"https://example.com/twiml\"}",
		NULL, NULL);
	CHECK(st == 200 && eq(res_text(r, "reservation_status"), "pending") &&
			eq(res_text(r, "instruction.name"), "redirect"),
		"redirect without RedirectAccept: recorded, still pending");
	st = res_post(r,
		"{\"Instruction\":\"redirect\",\"RedirectCallSid\":\"CA0123456789abcdef0123456789"
		"abcdef\",\"RedirectUrl\":\"https://example.com/twiml\",\"RedirectAccept\":true}",
		NULL, NULL);
	CHECK(st == 200 && eq(res_text(r, "reservation_status"), "accepted") &&
			eq(res_text(r, "instruction.params.RedirectAccept"), "true"),
		"redirect with RedirectAccept true: accepted");
	st = res_post(r, "{\"Instruction\":\"redirect\",\"RedirectCallSid\":\"CA1\","
			 "\"RedirectUrl\":\"u\"}",
		NULL, &v);
	CHECK(st == 400 && jint(v, "code") == 40123, "redirect on an accepted reservation: 400 "
						       "code 40123 (%lld)", jint(v, "code"));
	yajl_tree_free(v);
	CHECK(res_post(r, "{\"ReservationStatus\":\"completed\"}", NULL, NULL) == 200, "complete");

	/* dequeue with a post-work activity: accepted; the worker moves when the call ends */
	CHECK(new_task("alice", "voice", t, r) == 200, "a fourth pending voice reservation");
	CHECK(res_post(r, "{\"Instruction\":\"dequeue\",\"DequeuePostWorkActivitySid\":"
			  "\"WA00000000000000000000000000000000\"}",
		      NULL, NULL) == 400 &&
			res_post(r, "{\"Instruction\":\"dequeue\",\"DequeueTimeout\":1.5}", NULL,
				NULL) == 400,
		"dequeue with an unknown post-work activity or a fractional timeout: 400");
	st = res_post(r,
		trt_fmt("{\"Instruction\":\"dequeue\",\"DequeueFrom\":\"+15005550006\","
			"\"DequeueTo\":\"client:alice\",\"DequeuePostWorkActivitySid\":\"%s\","
			"\"DequeueRecord\":\"record-from-answer\",\"DequeueTimeout\":25,"
			"\"DequeueStatusCallbackUrl\":\"https://example.com/cb\","
			"\"DequeueStatusCallbackEvents\":\"initiated,completed\"}",
			wa_offline),
		NULL, NULL);
	CHECK(st == 200 && eq(res_text(r, "reservation_status"), "accepted") &&
			eq(res_text(r, "instruction.name"), "dequeue") &&
			eq(res_text(r, "instruction.post_work_activity_sid"), wa_offline) &&
			eq(alice_text("activity_name"), "Available"),
		"dequeue: accepted at once, post-work activity recorded, alice still Available");
	st = res_post(r, "{\"Instruction\":\"dequeue\"}", NULL, &v);
	CHECK(st == 400 && jint(v, "code") == 40135, "dequeue on an accepted reservation: 400 "
						       "code 40135 (%lld)", jint(v, "code"));
	yajl_tree_free(v);
	CHECK(res_post(r, "{\"ReservationStatus\":\"wrapping\"}", NULL, NULL) == 200 &&
			in_order(a, "reservation.wrapup", "payload.sid", r,
				"worker.activity.update", "payload.activity_sid", wa_offline) &&
			eq(alice_text("activity_name"), "Offline"),
		"the call ends (wrap): reservation.wrapup, then worker.activity.update to the "
		"post-work activity");
	CHECK(res_post(r, "{\"ReservationStatus\":\"completed\"}", NULL, NULL) == 200 &&
			ctl("/sim/workers/alice/activity", "{\"activity\":\"Available\"}") == 200,
		"complete; alice Available again");
	CHECK(res_post(r, "{\"Instruction\":\"supervise\"}", NULL, NULL) == 400 &&
			res_post(r, "{\"Instruction\":\"call\",\"ReservationStatus\":\"accepted\"}",
				NULL, NULL) == 400 &&
			res_post(r, "{\"Instruction\":5}", NULL, NULL) == 400,
		"an unknown instruction, an instruction with a status, a mistyped one: 400");
	ws_free(a);
}

/* Reject with an activity, RejectPendingReservations, availability and routing. */
static void test_activities(void) {
	struct ws *a = connect_ws("alice", "&setWorkerOfflineIfDisconnected=false");
	char t[64], r[64], t2[64], r2[64];
	yajl_val v = NULL;
	long long ver;
	int st;

	CHECK(a && ctl("/sim/workers/alice/activity", "{\"activity\":\"Available\"}") == 200 &&
			new_task("alice", "chat", t, r) == 200,
		"alice available with a pending reservation");
	ver = atoll(alice_text("version"));
	st = res_post(r,
		trt_fmt("{\"ReservationStatus\":\"rejected\",\"WorkerActivitySid\":\"%s\"}",
			wa_offline),
		NULL, &v);
	CHECK(st == 200 && eq(jstr(v, "payload.reservation_status"), "rejected") &&
			eq(alice_text("activity_name"), "Offline") &&
			atoll(alice_text("version")) == ver + 1,
		"reject with WorkerActivitySid: the worker is Offline, its version + 1");
	yajl_tree_free(v);
	CHECK(in_order(a, "reservation.rejected", "payload.sid", r, "worker.activity.update",
		      "payload.activity_sid", wa_offline),
		"reservation.rejected, then worker.activity.update");
	CHECK(ctl("/sim/workers/bob/activity", "{\"activity\":\"Offline\"}") == 200 &&
			sc_http(&env, "POST", "/sim/tasks", "{\"channel\":\"chat\"}", &v) == 200 &&
			jget(v, "reservation") && YAJL_IS_NULL(jget(v, "reservation")),
		"with alice and bob Offline a new task gets no reservation");
	snprintf(t2, sizeof(t2), "%s", nz(jstr(v, "task")));
	yajl_tree_free(v);
	CHECK(eq(task_field(t2, "assignment_status"), "pending"), "it waits, pending");
	ver = atoll(alice_text("version"));
	st = worker_post(trt_fmt("{\"ActivitySid\":\"%s\"}", wa_available), NULL, &v);
	CHECK(st == 200 && eq(jstr(v, "payload.activity_name"), "Available") &&
			jint(v, "payload.version") == ver + 1,
		"alice sets Available (worker POST): 200, version + 1");
	yajl_tree_free(v);
	v = wait_match(a, "reservation.created", "payload.task.sid", t2);
	CHECK(v != NULL, "the waiting task routes to alice once she is available");
	snprintf(r2, sizeof(r2), "%s", v ? jstr(v, "payload.sid") : "");
	yajl_tree_free(v);
	CHECK(atoll(alice_text("version")) == ver + 2,
		"the reservation raised alice's version once more");
	st = worker_post(trt_fmt("{\"ActivitySid\":\"%s\",\"RejectPendingReservations\":true}",
				 wa_available),
		NULL, &v);
	CHECK(st == 400 && eq(res_text(r2, "reservation_status"), "pending"),
		"RejectPendingReservations on an available activity: 400, nothing changed");
	yajl_tree_free(v);
	CHECK(worker_post(trt_fmt("{\"ActivitySid\":\"%s\",\"RejectPendingReservations\":"
				  "\"true\"}",
				  wa_offline),
		      NULL, NULL) == 400 &&
			worker_post("{\"RejectPendingReservations\":true}", NULL, NULL) == 400 &&
			worker_post(trt_fmt("{\"ActivitySid\":\"%s\",\"undefined\":1}", wa_offline),
				NULL, NULL) == 400 &&
			worker_post("{\"ActivitySid\":\"Offline\"}", NULL, NULL) == 400 &&
			worker_post("{}", NULL, NULL) == 400 &&
			eq(alice_text("activity_name"), "Available"),
		"a string RejectPendingReservations, one without ActivitySid, \"undefined\", an "
		"activity name, nothing: 400, nothing changed");
	CHECK(worker_post(trt_fmt("{\"ActivitySid\":\"%s\",\"RejectPendingReservations\":false}",
				  wa_available),
		      NULL, NULL) == 200,
		"RejectPendingReservations false on an available activity: 200");
	st = worker_post(trt_fmt("{\"ActivitySid\":\"%s\",\"RejectPendingReservations\":true}",
				 wa_offline),
		NULL, NULL);
	CHECK(st == 200 && eq(res_text(r2, "reservation_status"), "rejected") &&
			eq(alice_text("activity_name"), "Offline"),
		"Offline with RejectPendingReservations: the pending reservation is rejected");
	CHECK(in_order(a, "reservation.rejected", "payload.sid", r2, "worker.activity.update",
		      "payload.activity_sid", wa_offline),
		"reservation.rejected, then worker.activity.update");
	CHECK(ctl("/sim/workers/alice/activity", "{\"activity\":\"Available\"}") == 200 &&
			ctl("/sim/workers/bob/activity", "{\"activity\":\"Available\"}") == 200,
		"alice and bob Available again");
	CHECK(eq(task_field(t2, "assignment_status"), "reserved"),
		"the task alice rejected routes on to bob once he is available");
	/* control: reject with an activity, set an activity rejecting pending reservations */
	CHECK(new_task("alice", "chat", t, r) == 200 &&
			ctl(trt_fmt("/sim/reservations/%s/reject", r),
				"{\"activity\":\"Offline\"}") == 200 &&
			eq(alice_text("activity_name"), "Offline"),
		"control reject with an activity moves alice");
	CHECK(ctl("/sim/workers/alice/activity", "{\"activity\":\"Available\"}") == 200 &&
			new_task("alice", "chat", t, r) == 200 &&
			ctl("/sim/workers/alice/activity",
				"{\"activity\":\"Offline\",\"reject_pending\":true}") == 200 &&
			eq(res_text(r, "reservation_status"), "rejected"),
		"control activity with reject_pending rejects the pending reservation");
	CHECK(ctl("/sim/workers/alice/activity", "{\"activity\":\"Available\"}") == 200,
		"alice Available");
	ws_free(a);
}

/* The worker version: raised by reservation.created and channel changes; the worker POST
 * checks If-Match against it. Channel frames carry the 13 members. */
static void test_worker_version_and_channels(void) {
	static const char *const members[] = {"account_sid", "workspace_sid", "sid", "worker_sid",
		"task_channel_sid", "task_channel_unique_name", "configured_capacity", "available",
		"assigned_tasks", "available_capacity_percentage", "date_created", "date_updated",
		"last_reserved_time"};
	struct ws *a = connect_ws("alice", "&setWorkerOfflineIfDisconnected=false");
	char t[64], r[64];
	yajl_val v = NULL;
	long long ver;
	bool all;
	int st;

	CHECK(a != NULL, "alice connected");
	ver = atoll(alice_text("version"));
	CHECK(new_task("alice", "chat", t, r) == 200 &&
			(v = wait_match(a, "reservation.created", "payload.sid", r)) != NULL &&
			atoll(alice_text("version")) == ver + 1,
		"reservation.created raises the worker version by one");
	yajl_tree_free(v);
	st = worker_post("{\"Attributes\":{\"skill\":\"fr\"}}", trt_fmt("%lld", ver), &v);
	CHECK(st == 412 && jint(v, "code") == 20412 &&
			strstr(nz(jstr(v, "message")), trt_fmt("(%lld)", ver + 1)),
		"a worker POST with the version from before it: 412 naming the current version");
	yajl_tree_free(v);
	st = worker_post("{\"Attributes\":{\"skill\":\"fr\"}}", trt_fmt("%lld", ver + 1), &v);
	CHECK(st == 200 && jint(v, "payload.version") == ver + 2 &&
			eq(jstr(v, "payload.attributes"), "{\"skill\":\"fr\"}"),
		"with the current version: 200, version + 1");
	yajl_tree_free(v);
	v = wait_match(a, "worker.attributes.update", "payload.version", trt_fmt("%lld", ver + 2));
	CHECK(v != NULL, "worker.attributes.update with the new version");
	yajl_tree_free(v);
	st = worker_post(trt_fmt("{\"Attributes\":{\"skill\":\"de\"},\"ActivitySid\":\"%s\"}",
				 wa_available),
		trt_fmt("\"%lld\"", ver + 2), &v);
	CHECK(st == 200 && jint(v, "payload.version") == ver + 3,
		"Attributes and ActivitySid in one POST (quoted If-Match): one version");
	yajl_tree_free(v);
	CHECK(worker_post("{\"Attributes\":5}", NULL, NULL) == 400, "Attributes 5: 400");
	/* channels */
	ver = atoll(alice_text("version"));
	CHECK(ctl("/sim/workers/alice/channels/chat", "{\"capacity\":4}") == 200,
		"control: alice's chat capacity 4");
	v = wait_match(a, "worker.capacity.update", "payload.configured_capacity", "4");
	all = v != NULL;
	for (size_t i = 0; v && i < sizeof(members) / sizeof(members[0]); i++) {
		all = all && jget(v, trt_fmt("payload.%s", members[i])) != NULL;
	}
	CHECK(all && eq(jstr(v, "payload.worker_sid"), alice) &&
			eq(jstr(v, "payload.task_channel_unique_name"), "chat") &&
			jint(v, "payload.assigned_tasks") == 1 &&
			jint(v, "payload.available_capacity_percentage") == 75 &&
			jint(v, "payload.last_reserved_time") > 1000000000000LL,
		"worker.capacity.update carries the 13 worker-channel members");
	yajl_tree_free(v);
	CHECK(atoll(alice_text("version")) == ver + 1, "the capacity change raised the version");
	CHECK(ctl("/sim/workers/alice/channels/chat", "{\"available\":false}") == 200 &&
			(v = wait_match(a, "worker.channel.availability.update", "payload.available",
				 "0")) != NULL &&
			atoll(alice_text("version")) == ver + 2,
		"control: chat unavailable: worker.channel.availability.update, version + 1");
	all = v != NULL;
	for (size_t i = 0; v && i < sizeof(members) / sizeof(members[0]); i++) {
		all = all && jget(v, trt_fmt("payload.%s", members[i])) != NULL;
	}
	CHECK(all, "worker.channel.availability.update carries the 13 members");
	yajl_tree_free(v);
	CHECK(worker_post("{\"Attributes\":{}}", trt_fmt("%lld", ver + 1), NULL) == 412,
		"a worker POST that missed the channel change: 412");
	CHECK(sc_http(&env, "POST", "/sim/tasks", "{\"channel\":\"chat\"}", &v) == 200 &&
			(eq(task_field(nz(jstr(v, "task")), "assignment_status"), "pending") ||
				!eq(st_text("reservations", "task_sid", nz(jstr(v, "task")),
					    "worker_sid"),
					alice)),
		"a channel made unavailable takes no tasks");
	yajl_tree_free(v);
	CHECK(ctl("/sim/workers/alice/channels/chat", "{\"capacity\":3,\"available\":true}") ==
				200 &&
			ctl(trt_fmt("/sim/reservations/%s/reject", r), NULL) == 200,
		"chat back to capacity 3, available");
	ws_free(a);
}

/* reservation.failed from control and from createTask; createTask routes to its target. */
static void test_failed_and_create_task(void) {
	struct ws *a = connect_ws("alice", "&setWorkerOfflineIfDisconnected=false");
	yajl_val v = NULL, e;
	char t[64];
	int st;

	CHECK(a && ctl("/sim/workers/alice/activity", "{\"activity\":\"Available\"}") == 200,
		"alice connected and available");
	st = sc_http(&env, "POST", "/sim/tasks",
		"{\"worker\":\"alice\",\"fail\":true,\"channel\":\"chat\",\"attributes\":{\"x\":1}}",
		&v);
	snprintf(t, sizeof(t), "%s", nz(jstr(v, "task")));
	yajl_tree_free(v);
	e = wait_match(a, "reservation.failed", "payload.sid", t);
	CHECK(st == 200 && e && eq(jstr(e, "payload.assignment_status"), "canceled") &&
			eq(jstr(e, "payload.initiating_workflow_sid"), jstr_workflow) &&
			eq(jstr(e, "payload.initiating_queue_sid"), queue_sid) &&
			eq(jstr(e, "payload.attributes"), "{\"x\":1}") &&
			eq(task_field(t, "assignment_status"), "canceled"),
		"control fail: reservation.failed (Task-like, initiating workflow and queue), the "
		"task canceled");
	yajl_tree_free(e);
	CHECK(ctl("/sim/tasks", "{\"fail\":true}") == 400 &&
			ctl("/sim/tasks", "{\"worker\":\"alice\",\"fail\":1}") == 400,
		"fail without a worker or not a boolean: 400");
	st = sc_rest(&env, tok("alice"), "v1", "POST", trt_fmt("Workspaces/%s/Tasks", ws_sid),
		trt_fmt("{\"WorkflowSid\":\"%s\",\"TaskQueueSid\":\"%s\",\"RoutingTarget\":\"%s\","
			"\"VirtualStartTime\":\"2025-11-24T15:30:45Z\",\"TaskChannelSid\":\"%s\","
			"\"Attributes\":{\"lang\":\"fr\",\"outbound_to\":\"+15005550006\","
			"\"from\":\"+15005550001\"}}",
			jstr_workflow, queue_sid, alice, tc_chat),
		NULL, &v);
	snprintf(t, sizeof(t), "%s", nz(jstr(v, "payload.sid")));
	CHECK(st == 200 && eq(jstr(v, "payload.routing_target"), alice) &&
			jint(v, "payload.virtual_start_time") == 1763998245LL &&
			eq(jstr(v, "payload.task_channel_unique_name"), "chat") &&
			strstr(nz(jstr(v, "payload.attributes")), "\"outbound_to\""),
		"createTask (WorkflowSid, TaskQueueSid, RoutingTarget, VirtualStartTime, "
		"TaskChannelSid, Attributes): 200, the task as asked");
	yajl_tree_free(v);
	e = wait_match(a, "reservation.created", "payload.task.sid", t);
	CHECK(e && eq(task_field(t, "assignment_status"), "reserved"),
		"the created task routes to alice");
	if (e) {
		CHECK(ctl(trt_fmt("/sim/reservations/%s/reject", jstr(e, "payload.sid")), NULL) ==
				200,
			"reject it");
	}
	yajl_tree_free(e);
	st = sc_rest(&env, tok("alice"), "v1", "POST", trt_fmt("Workspaces/%s/Tasks", ws_sid),
		trt_fmt("{\"WorkflowSid\":\"%s\",\"TaskQueueSid\":\"%s\",\"RoutingTarget\":\"%s\","
			"\"undefined\":\"x\",\"Attributes\":{}}",
			jstr_workflow, queue_sid, alice),
		NULL, &v);
	CHECK(st == 400 && strstr(nz(jstr(v, "message")), "undefined"),
		"createTask with the SDK's \"undefined\" key: 400 naming it");
	yajl_tree_free(v);
	CHECK(sc_rest(&env, tok("alice"), "v1", "POST", trt_fmt("Workspaces/%s/Tasks", ws_sid),
		      trt_fmt("{\"WorkflowSid\":\"%s\",\"TaskChannelUniqueName\":7}",
			      jstr_workflow),
		      NULL, NULL) == 400,
		"createTask with a mistyped TaskChannelUniqueName: 400");
	CHECK(ctl("/sim/workers/alice/activity", "{\"activity\":\"Offline\"}") == 200,
		"alice Offline");
	st = sc_rest(&env, tok("alice"), "v1", "POST", trt_fmt("Workspaces/%s/Tasks", ws_sid),
		trt_fmt("{\"WorkflowSid\":\"%s\",\"TaskQueueSid\":\"%s\",\"RoutingTarget\":\"%s\","
			"\"TaskChannelUniqueName\":\"chat\",\"Attributes\":{}}",
			jstr_workflow, queue_sid, alice),
		NULL, &v);
	e = wait_match(a, "reservation.failed", "payload.sid", (jstr(v, "payload.sid") ? jstr(v, "payload.sid") : "-"));
	CHECK(st == 200 && e, "createTask while the target is Offline: reservation.failed");
	yajl_tree_free(e);
	yajl_tree_free(v);
	CHECK(ctl("/sim/workers/alice/activity", "{\"activity\":\"Available\"}") == 200,
		"alice Available");
	ws_free(a);
	clear_live("alice");
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
	load_sids();
	test_reservation_routes();
	test_reservation_status_rules();
	test_instructions();
	test_activities();
	test_worker_version_and_channels();
	test_failed_and_create_task();
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
