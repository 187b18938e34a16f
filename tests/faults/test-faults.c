/*
 * test-faults.c — the fault matrix (issue 8): every fault the simulator can
 * inject, each case on its own simulator + daemon, each followed by the same
 * after-checks:
 *   - the daemon process is alive;
 *   - every call made during the case got an answer (a result or an error);
 *   - the daemon's cache equals the simulator's state (e2e_assert_cache_matches);
 *   - every tracked subscriber saw contiguous seqs, or an explicit gap
 *     (TR_RPC_REPLAY_GONE when resubscribing with since).
 * A summary table is printed on stderr as TAP comments at the end.
 */
#include "common.h"

#include <errno.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- per-case state ---- */

struct fsub {
	struct trt_conn *c;
	int64_t last;          /* last seq seen (0: none yet) */
	char epoch[64];        /* the daemon run that counted it */
	unsigned events;       /* events seen */
	unsigned violations;   /* seq jumps without an explicit gap */
	unsigned gaps;         /* explicit gaps (replay gone) */
	unsigned disconnects;  /* "disconnected" events seen */
};

#define MAX_SUBS 520

static struct trt_env env;
static struct trt_conn *rpc;
static struct fsub subs[MAX_SUBS]; /* subs[0] is the main subscriber */
static size_t n_subs;
static unsigned calls_made, calls_answered;

enum stage { ST_BODY, ST_AFTER, ST_DONE };
static enum stage stage;

struct row {
	const char *name;
	const char *result;
	const char *after;
	char note[160];
};
static struct row rows[32];
static size_t n_rows;
static struct row *cur;

static const char *const sim_args[] = {"--heartbeat-ms", "200", NULL};
static const char *const daemon_args[] = {"--heartbeat-timeout-ms", "1500", "--rest-timeout-ms",
	"2000", NULL};

#define NOTE(...) snprintf(cur->note + strlen(cur->note), sizeof(cur->note) - strlen(cur->note), \
	__VA_ARGS__)

/* ---- calls: every one must be answered ---- */

static int fcall(struct trt_conn *c, const char *method, const char *params,
	struct tr_json **ret_result, struct tr_json **ret_error) {
	int r;
	calls_made++;
	r = trt_call(c, method, params, E2E_WAIT, ret_result, ret_error);
	if (r >= 0) {
		calls_answered++;
	} else {
		fprintf(stderr, "# call %s got no answer: %s\n", method, strerror(-r));
	}
	return r;
}

static struct tr_json *fcall_ok(struct trt_conn *c, const char *method, const char *params) {
	struct tr_json *res = NULL, *err = NULL;
	int r = fcall(c, method, params, &res, &err);
	if (r == 1) {
		char *text = NULL;
		if (tr_json_dump(err, &text, NULL) == 0) {
			fprintf(stderr, "# %s failed: %s\n", method, text);
		}
		free(text);
	}
	tr_json_free(err);
	return r == 0 ? res : NULL;
}

/* Expect an error; returns its code (0 on success, -errno when unanswered). */
static int fcall_err(struct trt_conn *c, const char *method, const char *params,
	struct tr_json **ret_error) {
	struct tr_json *res = NULL, *err = NULL;
	int64_t code = 0;
	int r = fcall(c, method, params, &res, &err);
	tr_json_free(res);
	if (r == 1) {
		(void)tr_json_get_int(err, "code", &code);
	} else if (r < 0) {
		code = r;
	}
	if (ret_error) {
		*ret_error = err;
	} else {
		tr_json_free(err);
	}
	return (int)code;
}

static void send_request(struct trt_conn *c, int64_t id, const char *method, const char *params) {
	assert_int_equal(trt_send_request(c, id, method, params), 0);
	calls_made++;
}

/* Read the reply to a raw request with this id (the connection is not subscribed). */
static struct tr_json *read_reply(struct trt_conn *c, int64_t id) {
	for (;;) {
		struct tr_json *msg = NULL;
		int64_t got = 0;
		int r = trt_read_frame(c, E2E_WAIT, &msg);
		if (r < 0) {
			fprintf(stderr, "# no reply to request %lld: %s\n", (long long)id, strerror(-r));
			return NULL;
		}
		if (tr_json_get_int(msg, "id", &got) == 0 && got == id) {
			calls_answered++;
			return msg;
		}
		tr_json_free(msg);
	}
}

/* ---- subscribers: seqs contiguous or an explicit gap ---- */

/* Every event a subscriber's connection hands out passes here (its on_event). */
static void sub_note(void *data, const struct tr_json *p) {
	struct fsub *s = data;
	int64_t seq = 0;
	const char *ev = tr_json_get_string(p, "event");
	if (tr_json_get_int(p, "seq", &seq) < 0) {
		fprintf(stderr, "# event without seq\n");
		s->violations++;
		return;
	}
	if (strcmp(tr_json_get_string(p, "epoch") ? tr_json_get_string(p, "epoch") : "",
		    s->epoch) != 0) {
		fprintf(stderr, "# subscriber %td: an event of another epoch\n", s - subs);
		s->violations++;
	}
	if (s->last && seq != s->last + 1) {
		fprintf(stderr, "# subscriber %td: seq %lld after %lld (%s)\n", s - subs,
			(long long)seq, (long long)s->last, ev ? ev : "?");
		s->violations++;
	}
	s->last = seq;
	s->events++;
	if (ev && strcmp(ev, "disconnected") == 0) {
		s->disconnects++;
	}
}

/* Connect s to the daemon, its events counted by sub_note. */
static int sub_connect(struct fsub *s) {
	int r = trt_connect(env.daemon.socket_path, &s->c);
	if (r == 0) {
		s->c->on_event = sub_note;
		s->c->on_event_data = s;
	}
	return r;
}

/* Subscribe to everything (since > 0: resume, with the epoch of the last event seen).
 * Returns 0, or 1 for an explicit gap (then subscribed afresh), or -1. */
static int sub_subscribe(struct fsub *s, int64_t since) {
	struct tr_json *res = NULL, *err = NULL;
	int64_t code = 0, seq = 0;
	int r = fcall(s->c, "events.subscribe",
		since > 0 ? trt_fmt("{\"since\":%lld,\"epoch\":\"%s\"}", (long long)since, s->epoch) :
			    "{}",
		&res, &err);
	if (r == 1) {
		(void)tr_json_get_int(err, "code", &code);
		tr_json_free(err);
		if (code != TR_RPC_REPLAY_GONE || since <= 0) {
			fprintf(stderr, "# events.subscribe failed with %lld\n", (long long)code);
			return -1;
		}
		s->gaps++;
		r = sub_subscribe(s, 0);
		return r < 0 ? r : 1;
	}
	if (r < 0 || tr_json_get_int(res, "seq", &seq) < 0 || !tr_json_get_string(res, "epoch")) {
		tr_json_free(res);
		return -1;
	}
	snprintf(s->epoch, sizeof(s->epoch), "%s", tr_json_get_string(res, "epoch"));
	tr_json_free(res);
	/* replayed events start at since; live ones after seq */
	s->last = since > 0 ? since - 1 : seq;
	return 0;
}

static struct fsub *sub_add(void) {
	struct fsub *s;
	assert_true(n_subs < MAX_SUBS);
	s = &subs[n_subs];
	memset(s, 0, sizeof(*s));
	assert_int_equal(sub_connect(s), 0);
	n_subs++;
	assert_int_equal(sub_subscribe(s, 0), 0);
	return s;
}

/* REST calls recorded by the simulator with this method whose url contains `sub`. */
static int count_requests(const char *method, const char *sub) {
	struct tr_json *list = trt_sim_requests(&env);
	int n = 0;
	assert_non_null(list);
	for (size_t i = 0; i < list->u.arr.n; i++) {
		const char *m = tr_json_get_string(list->u.arr.items[i], "method");
		const char *u = tr_json_get_string(list->u.arr.items[i], "url");
		if (m && u && strcasecmp(m, method) == 0 && strstr(u, sub)) {
			n++;
		}
	}
	tr_json_free(list);
	return n;
}

static const char *set_attrs(const char *sid, const char *attrs) {
	return trt_fmt("{\"sid\":\"%s\",\"attributes\":%s}", sid, attrs);
}

/* task.setAttributes on sid (params: its JSON text) through rpc; every tracked subscriber
 * sees the updated event. */
static void update_seen_by_all(const char *sid, const char *params) {
	struct tr_json *r = fcall_ok(rpc, "task.setAttributes", params);
	assert_non_null(r);
	tr_json_free(r);
	for (size_t k = 0; k < n_subs; k++) {
		e2e_wait_event(subs[k].c, "updated", sid);
	}
}

/* The reply to a raw request on a subscribed connection; events read meanwhile are tracked
 * (and then dropped: use only where no event is awaited). */
static struct tr_json *sub_read_reply(struct fsub *s, int64_t id) {
	for (;;) {
		struct tr_json *msg = NULL;
		int64_t got = 0;
		int r = trt_read_frame(s->c, E2E_WAIT, &msg);
		if (r < 0) {
			fprintf(stderr, "# no reply to request %lld: %s\n", (long long)id, strerror(-r));
			return NULL;
		}
		if (tr_json_get_string(msg, "method")) {
			sub_note(s, tr_json_get(msg, "params"));
		} else if (tr_json_get_int(msg, "id", &got) == 0 && got == id) {
			calls_answered++;
			return msg;
		}
		tr_json_free(msg);
	}
}

/* ---- the after-checks ---- */

static void after_checks(void) {
	stage = ST_AFTER;
	if (!trt_proc_alive(&env.daemon.proc)) {
		fprintf(stderr, "# after: the daemon is not alive\n");
		fail();
	}
	/* a call on each subscriber orders it after what the daemon already sent */
	for (size_t i = 0; i < n_subs; i++) {
		struct tr_json *p = NULL, *st;
		if (!subs[i].c) {
			continue;
		}
		st = fcall_ok(subs[i].c, "daemon.status", NULL);
		assert_non_null(st);
		tr_json_free(st);
		while (trt_next_event(subs[i].c, 0, &p) == 0) {
			tr_json_free(p);
		}
	}
	if (calls_made != calls_answered) {
		fprintf(stderr, "# after: %u calls, %u answered\n", calls_made, calls_answered);
		fail();
	}
	e2e_assert_cache_matches(&env, rpc);
	{
		unsigned v = 0, g = 0;
		for (size_t i = 0; i < n_subs; i++) {
			v += subs[i].violations;
			g += subs[i].gaps;
		}
		NOTE("calls %u/%u, subs %zu, gaps %u", calls_answered, calls_made, n_subs, g);
		if (v) {
			fprintf(stderr, "# after: %u seq discontinuities without a gap notice\n", v);
			fail();
		}
	}
	stage = ST_DONE;
}

/* ---- setup / teardown ---- */

/* One case of the matrix: a row, run on a simulator and a daemon of its own. */
struct fcase {
	const char *test; /* cmocka's name (TR_FAULTS_FILTER matches it) */
	const char *name; /* the summary table's */
	void (*run)(const struct fcase *c);
	const char *fault;         /* drop_case: the drop's body */
	int status, hang_ms;       /* rest_case: the REST fault */
	const char *const *daemon; /* the daemon's extra arguments; NULL: daemon_args */
};

/* Close the case's connections and stop its daemon and simulator: e2e_stop's result. */
static int close_case(void) {
	for (size_t i = 0; i < n_subs; i++) {
		trt_conn_free(subs[i].c);
		subs[i].c = NULL;
	}
	n_subs = 0;
	trt_conn_free(rpc);
	rpc = NULL;
	return e2e_stop(&env);
}

static int setup(void **state) {
	const struct fcase *c = *state;
	const char *name = c->name;
	struct fsub *s;
	cur = &rows[n_rows++];
	cur->name = name;
	cur->result = "FAIL";
	cur->after = "-";
	cur->note[0] = '\0';
	stage = ST_BODY;
	calls_made = calls_answered = 0;
	n_subs = 0;
	rpc = NULL;
	if (e2e_start(&env, sim_args, c->daemon ? c->daemon : daemon_args) < 0) {
		fprintf(stderr, "# %s: could not start the simulator and the daemon\n", name);
		goto fail;
	}
	if (trt_connect(env.daemon.socket_path, &rpc) < 0) {
		goto fail;
	}
	s = &subs[n_subs++];
	memset(s, 0, sizeof(*s));
	if (sub_connect(s) < 0 || sub_subscribe(s, 0) < 0) {
		goto fail;
	}
	return 0;
fail:
	cur->after = "not run (setup)";
	(void)close_case();
	return -1;
}

static int teardown(void **state) {
	if (strcmp(cur->result, "SKIP") != 0) {
		cur->result = stage >= ST_AFTER ? "pass" : "FAIL";
	}
	cur->after = stage == ST_DONE ? "ok" : stage == ST_AFTER ? "FAIL" : "not run";
	if (close_case() != 0) {
		cur->after = "FAIL (exit status)";
		return -1;
	}
	return 0;
}

/* ---- websocket ---- */

static void drop_case(const struct fcase *c) {
	const char *body = c->fault;
	char sid[35], res[35];
	int r;
	struct tr_json *x = NULL, *e = NULL;
	e2e_new_task(&env, subs[0].c, true, sid, res);
	e2e_sim_post(&env, "/sim/faults/drop", body);
	/* a write during the drop: a result or an error, never silence */
	r = fcall(rpc, "task.setAttributes", set_attrs(sid, "{\"during\":\"drop\"}"), &x, &e);
	assert_true(r >= 0);
	NOTE("write during drop: %s; ", r == 0 ? "ok" : "error");
	tr_json_free(x);
	tr_json_free(e);
	e2e_wait_reconnected(subs[0].c, body);
	after_checks();
}

static void half_open(const struct fcase *c) {
	char sid[35], res[35];
	struct tr_json *t;
	e2e_new_task(&env, subs[0].c, true, sid, res);
	e2e_sim_post(&env, "/sim/faults/heartbeats", "{\"paused\":true}");
	/* reads are served from the cache meanwhile */
	t = fcall_ok(rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(t);
	tr_json_free(t);
	/* nothing closes: only the watchdog (1.5 s) notices */
	e2e_wait_event(subs[0].c, "disconnected", NULL);
	e2e_sim_post(&env, "/sim/faults/heartbeats", "{\"paused\":false}");
	e2e_wait_event(subs[0].c, "ready", NULL);
	after_checks();
}

static void sim_restart(const struct fcase *c) {
	char sid[35], res[35];
	int code;
	e2e_new_task(&env, subs[0].c, true, sid, res);
	env.sim.want_port = env.sim.port;
	assert_int_equal(trt_sim_stop(&env), 0);
	e2e_wait_event(subs[0].c, "disconnected", NULL);
	code = fcall_err(rpc, "task.setAttributes", set_attrs(sid, "{\"during\":\"restart\"}"), NULL);
	assert_true(code == TR_RPC_NOT_CONNECTED || code == TR_RPC_NETWORK_ERROR);
	assert_int_equal(trt_sim_start(&env, sim_args), 0);
	e2e_wait_event(subs[0].c, "ready", NULL);
	after_checks();
}

/* ---- REST faults: during bootstrap, then during a method call ---- */

static void rest_case(const struct fcase *c) {
	int status = c->status, hang_ms = c->hang_ms;
	char sid[35], res[35];
	struct tr_json *err = NULL;
	const char *fault;
	int before, after, code, expect;
	int64_t http = 0;

	e2e_new_task(&env, subs[0].c, true, sid, res);
	/* bootstrap: the first REST calls after a reconnect fail; the daemon retries them */
	fault = hang_ms ? trt_fmt("{\"count\":1,\"hang_ms\":%d}", hang_ms)
			: trt_fmt("{\"count\":2,\"status\":%d}", status);
	e2e_sim_post(&env, "/sim/faults/rest", fault);
	e2e_sim_post(&env, "/sim/faults/drop", "{\"close\":true}");
	e2e_wait_reconnected(subs[0].c, fault);
	e2e_assert_cache_matches(&env, rpc);

	/* method call: exactly one POST, the documented error */
	before = count_requests("POST", sid);
	fault = hang_ms ? trt_fmt("{\"count\":1,\"hang_ms\":%d,\"match\":\"%s\"}", hang_ms, sid)
			: trt_fmt("{\"count\":1,\"status\":%d,\"match\":\"%s\"}", status, sid);
	e2e_sim_post(&env, "/sim/faults/rest", fault);
	code = fcall_err(rpc, "task.setAttributes", set_attrs(sid, "{\"during\":\"fault\"}"), &err);
	expect = hang_ms ? TR_RPC_TIMEOUT : status == 429 ? TR_RPC_RATE_LIMITED
							  : TR_RPC_UPSTREAM_ERROR;
	if (code != expect) {
		fprintf(stderr, "# setAttributes under %s: code %d, expected %d\n", fault, code,
			expect);
		fail();
	}
	if (!hang_ms) {
		assert_int_equal(tr_json_get_int(tr_json_get(err, "data"), "httpStatus", &http), 0);
		assert_int_equal(http, status);
	}
	tr_json_free(err);
	if (hang_ms) {
		/* the simulator applied the change before hanging: its event still arrives */
		e2e_wait_event(subs[0].c, "updated", sid);
	}
	after = count_requests("POST", sid);
	NOTE("POSTs %d; ", after - before);
	if (after - before != 1) {
		fprintf(stderr, "# the POST was sent %d times (no retry allowed)\n", after - before);
		fail();
	}
	after_checks();
}

/* ---- the server carries out a write, then drops the connection without answering ----
 * On a reused connection libcurl would send the request again by itself; a write must
 * instead be sent once and fail with a network error that says it may have been sent. */
static void rest_reset(const struct fcase *c) {
	char sid[35], res[35];
	struct tr_json *err = NULL, *r;
	const struct tr_json *sent;
	int before, after, code;
	(void)c;
	e2e_new_task(&env, subs[0].c, true, sid, res);
	/* a read first, so that a kept-alive connection is there to be reused */
	r = fcall_ok(rpc, "task.fetchLatestVersion", trt_fmt("{\"sid\":\"%s\"}", sid));
	tr_json_free(r);
	before = count_requests("POST", sid);
	e2e_sim_post(&env, "/sim/faults/rest",
		trt_fmt("{\"count\":1,\"reset\":true,\"match\":\"%s\"}", sid));
	code = fcall_err(rpc, "task.setAttributes", set_attrs(sid, "{\"during\":\"reset\"}"), &err);
	if (code != TR_RPC_NETWORK_ERROR) {
		fprintf(stderr, "# setAttributes after a reset: code %d, expected %d\n", code,
			TR_RPC_NETWORK_ERROR);
		fail();
	}
	sent = tr_json_get(tr_json_get(err, "data"), "maybeSent");
	assert_non_null(sent);
	assert_int_equal(sent->type, TR_JSON_TRUE);
	tr_json_free(err);
	after = count_requests("POST", sid);
	NOTE("POSTs %d; ", after - before);
	if (after - before != 1) {
		fprintf(stderr, "# the POST was sent %d times (never replayed)\n", after - before);
		fail();
	}
	/* the change was applied upstream: its event still arrives */
	e2e_wait_event(subs[0].c, "updated", sid);
	after_checks();
}

/* ---- 412 from a concurrent writer ---- */

static void conflict(const struct fcase *c) {
	char sid[35], res[35];
	struct tr_json *err = NULL, *simtask;
	const char *cv;
	int code;
	e2e_new_task(&env, subs[0].c, true, sid, res);
	/* another writer changes the task; its event is still "in flight" */
	e2e_sim_post(&env, trt_fmt("/sim/tasks/%s/update", sid),
		"{\"attributes\":{\"writer\":\"other\"},\"silent\":true}");
	simtask = trt_sim_task(&env, sid);
	assert_non_null(simtask);
	code = fcall_err(rpc, "task.setAttributes", set_attrs(sid, "{\"writer\":\"us\"}"), &err);
	assert_int_equal(code, TR_RPC_VERSION_CONFLICT);
	cv = tr_json_get_string(tr_json_get(err, "data"), "currentVersion");
	assert_non_null(cv);
	assert_int_equal(strtoll(cv, NULL, 10), e2e_int(simtask, "version"));
	tr_json_free(err);
	tr_json_free(simtask);
	after_checks();
}

/* ---- token expiry in the middle of a call ---- */

/* Give the daemon a fresh token for alice valid ttl seconds. */
static void update_token(int ttl) {
	char *tok = e2e_mint_token(&env, ttl);
	struct tr_json *r = fcall_ok(rpc, "daemon.updateToken", trt_fmt("{\"token\":\"%s\"}", tok));
	assert_non_null(r);
	tr_json_free(r);
	free(tok);
}

/* Until daemon.status says the session is ready; between checks, wait for any event on
 * the first subscriber (the ones that matter here), a short time at most. */
static void wait_state_ready(void) {
	int64_t deadline = trt_now_ms() + trt_ms(TRT_DEADLINE_MS);
	for (;;) {
		struct tr_json *st = fcall_ok(rpc, "daemon.status", NULL), *p = NULL;
		bool ready = st && strcmp(e2e_str(st, "state"), "ready") == 0;
		tr_json_free(st);
		if (ready) {
			return;
		}
		assert_true(trt_now_ms() < deadline);
		if (trt_next_event(subs[0].c, 200, &p) == 0) {
			tr_json_free(p); /* its on_event hook has tracked it */
		}
	}
}

/* After the token expired: writes fail fast, a new token brings the session back. */
static void recover_token(const char *sid) {
	int code;
	code = fcall_err(rpc, "task.setAttributes", set_attrs(sid, "{\"after\":\"expiry\"}"), NULL);
	NOTE("write after expiry %d; ", code);
	assert_true(code == TR_RPC_TOKEN_EXPIRED || code == TR_RPC_NOT_CONNECTED);
	update_token(3600);
	e2e_wait_event(subs[0].c, "tokenUpdated", NULL);
	/* The session may have stayed open across the expiry (it ends only when the server
	 * closes it): then there is no disconnect and no new "ready". Wait for the state. */
	wait_state_ready();
	update_seen_by_all(sid, set_attrs(sid, "{\"after\":\"new token\"}"));
}

/* The token's own lifetime ends while a call hangs upstream. */
static const char *const token_daemon_args[] = {"--heartbeat-timeout-ms", "1500",
	"--rest-timeout-ms", "8000", NULL};
static void token_mid_call(const struct fcase *c) {
	char sid[35], res[35];
	struct tr_json *x = NULL, *e = NULL;
	int r;
	update_token(4); /* expires 3..4 s from now */
	e2e_new_task(&env, subs[0].c, true, sid, res);
	e2e_sim_post(&env, "/sim/faults/rest",
		trt_fmt("{\"count\":1,\"hang_ms\":5000,\"match\":\"%s\"}", sid));
	r = fcall(rpc, "task.setAttributes", set_attrs(sid, "{\"during\":\"expiry\"}"), &x, &e);
	assert_true(r >= 0);
	NOTE("call across expiry: %s; ", r == 0 ? "ok" : "error");
	tr_json_free(x);
	tr_json_free(e);
	e2e_wait_event(subs[0].c, "tokenExpired", NULL);
	recover_token(sid);
	after_checks();
}

/* The server revokes the token (close 4001, REST 401) while a call hangs. */
static void token_revoked(const struct fcase *c) {
	char sid[35], res[35];
	struct tr_json *reply, *p = NULL;
	int64_t code = 0;
	bool expired = false;
	e2e_new_task(&env, subs[0].c, true, sid, res);
	e2e_sim_post(&env, "/sim/faults/rest",
		trt_fmt("{\"count\":1,\"hang_ms\":1000,\"match\":\"%s\"}", sid));
	send_request(rpc, 1000, "task.setAttributes", set_attrs(sid, "{\"during\":\"revoke\"}"));
	e2e_sim_post(&env, "/sim/faults/expire-token", "{\"worker\":\"alice\"}");
	reply = read_reply(rpc, 1000);
	assert_non_null(reply);
	if (tr_json_get(reply, "error")) {
		(void)tr_json_get_int(tr_json_get(reply, "error"), "code", &code);
	}
	NOTE("call: %lld; ", (long long)code);
	tr_json_free(reply);
	/* the daemon should stop reconnecting and say tokenExpired */
	while (trt_next_event(subs[0].c, trt_ms(5000), &p) == 0) {
		const char *ev = tr_json_get_string(p, "event");
		expired = ev && strcmp(ev, "tokenExpired") == 0;
		tr_json_free(p);
		if (expired) {
			break;
		}
	}
	if (!expired) {
		fprintf(stderr, "# no tokenExpired after the server revoked the token\n");
	}
	assert_true(expired);
	/* the call that raced the revocation got an answer; a REST 401 is token-expired */
	assert_true(code == 0 || code == TR_RPC_TOKEN_EXPIRED || code == TR_RPC_TIMEOUT);
	recover_token(sid);
	after_checks();
}

/* ---- malformed and oversize websocket messages ---- */

static void ws_malformed(const struct fcase *c) {
	char sid[35], res[35], sid2[35], res2[35];
	struct tr_json *st;
	int64_t n = -1;
	e2e_new_task(&env, subs[0].c, true, sid, res);
	e2e_sim_post(&env, "/sim/faults/ws-message", "{\"kind\":\"malformed\"}");
	/* the next event travels behind the malformed one on the same socket */
	e2e_new_task(&env, subs[0].c, false, sid2, res2);
	assert_int_equal(subs[0].disconnects, 0);
	st = fcall_ok(rpc, "daemon.status", NULL);
	assert_non_null(st);
	(void)tr_json_get_int(tr_json_get(tr_json_get(st, "upstream"), "websocket"), "malformed", &n);
	NOTE("upstream.websocket.malformed %lld; ", (long long)n);
	tr_json_free(st);
	assert_true(n >= 1);
	after_checks();
}

static void ws_oversize(const struct fcase *c) {
	char sid[35], res[35];
	e2e_new_task(&env, subs[0].c, true, sid, res);
	e2e_sim_post(&env, "/sim/faults/ws-message", "{\"kind\":\"oversize\",\"bytes\":2000000}");
	/* over TR_WS_MAX_MESSAGE: the session is dropped and reconnected */
	e2e_wait_reconnected(subs[0].c, "an oversize message");
	after_checks();
}

/* ---- clients ---- */

static void client_gone(const struct fcase *c) {
	char sid[35], res[35];
	struct trt_conn *gone = NULL;
	e2e_new_task(&env, subs[0].c, true, sid, res);
	/* both calls hang as long: the simulator answers them in order */
	e2e_sim_post(&env, "/sim/faults/rest",
		trt_fmt("{\"count\":2,\"hang_ms\":600,\"match\":\"%s\"}", sid));
	assert_int_equal(trt_connect(env.daemon.socket_path, &gone), 0);
	send_request(gone, 1, "task.setAttributes", set_attrs(sid, "{\"by\":\"gone\"}"));
	calls_made--; /* its reply has nowhere to go, by design */
	e2e_wait_event(subs[0].c, "updated", sid);
	trt_conn_free(gone);
	/* our call returns after the orphaned reply was handled */
	update_seen_by_all(sid, set_attrs(sid, "{\"by\":\"us\"}"));
	after_checks();
}

static void slow_sub(const struct fcase *c) {
	char sid[35], res[35];
	struct trt_conn *slow = NULL;
	struct tr_json *r;
	e2e_new_task(&env, subs[0].c, true, sid, res);
	assert_int_equal(trt_connect(env.daemon.socket_path, &slow), 0);
	r = trt_call_ok(slow, "events.subscribe", "{}");
	assert_non_null(r);
	tr_json_free(r);
	/* ~350 KiB per event, set upstream: 30 of them pass the 8 MiB hard limit */
	for (int i = 0; i < 30; i++) {
		e2e_sim_big_update(&env, sid, i, 350 * 1024);
		for (size_t k = 0; k < n_subs; k++) {
			e2e_wait_event(subs[k].c, "updated", sid);
		}
	}
	assert_true(trt_wait_closed(slow, E2E_WAIT));
	trt_conn_free(slow);
	after_checks();
}

#define N_CLIENTS 500

static void many(const struct fcase *c) {
	char sid[35], res[35];
	struct tr_json *r;
	e2e_new_task(&env, subs[0].c, true, sid, res);
	for (int i = 0; i < N_CLIENTS; i++) {
		(void)sub_add();
	}
	/* all of them call at once: every request is sent before any reply is read */
	for (size_t i = 1; i < n_subs; i++) {
		send_request(subs[i].c, 7000, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	}
	for (size_t i = 1; i < n_subs; i++) {
		r = sub_read_reply(&subs[i], 7000);
		assert_non_null(r);
		assert_string_equal(e2e_str(tr_json_get(r, "result"), "sid"), sid);
		tr_json_free(r);
	}
	update_seen_by_all(sid, set_attrs(sid, "{\"fanout\":500}"));
	after_checks();
}

/* ---- daemon restart while clients are subscribed ---- */

static void daemon_restart(const struct fcase *c) {
	char sid[35], res[35];
	int gaps = 0;
	(void)sub_add();
	(void)sub_add();
	e2e_new_task(&env, subs[0].c, true, sid, res);
	/* move seq forward so that the old position is ahead of the restarted daemon's */
	for (int i = 0; i < 5; i++) {
		update_seen_by_all(sid, set_attrs(sid, trt_fmt("{\"n\":%d}", i)));
	}
	assert_int_equal(trt_daemon_stop(&env), 0);
	for (size_t k = 0; k < n_subs; k++) {
		assert_true(trt_wait_closed(subs[k].c, E2E_WAIT));
		trt_conn_free(subs[k].c);
		subs[k].c = NULL;
	}
	trt_conn_free(rpc);
	rpc = NULL;
	assert_int_equal(trt_daemon_start(&env, "alice", daemon_args), 0);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
	assert_int_equal(trt_connect(env.daemon.socket_path, &rpc), 0);
	for (size_t k = 0; k < n_subs; k++) {
		int g;
		assert_int_equal(sub_connect(&subs[k]), 0);
		g = sub_subscribe(&subs[k], subs[k].last + 1);
		assert_true(g >= 0);
		gaps += g;
	}
	NOTE("replay gone %d/%zu; ", gaps, n_subs);
	/* the restarted daemon counts seqs anew: every resume is an explicit gap */
	assert_int_equal(gaps, (int)n_subs);
	/* the stream goes on after the resubscription */
	update_seen_by_all(sid, set_attrs(sid, "{\"after\":\"restart\"}"));
	after_checks();
}

static void raise_nofile(void) {
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			fprintf(stderr, "# setrlimit: %s\n", strerror(errno));
		}
	}
}

static void run_case(void **state) {
	const struct fcase *c = *state;
	c->run(c);
}

static struct fcase cases[] = {
	{"test_drop_close", "ws drop, close frame", drop_case,
		.fault = "{\"close\":true,\"code\":1011,\"reason\":\"maintenance\"}"},
	{"test_drop_noclose", "ws drop, no close frame", drop_case, .fault = "{\"close\":false}"},
	{"test_half_open", "half-open (heartbeats stop)", .run = half_open},
	{"test_sim_restart", "simulator restart", .run = sim_restart},
	{"test_rest_500", "REST 500 (bootstrap + call)", rest_case, .status = 500},
	{"test_rest_503", "REST 503 (bootstrap + call)", rest_case, .status = 503},
	{"test_rest_429", "REST 429 (bootstrap + call)", rest_case, .status = 429},
	{"test_rest_hang", "REST hang > timeout (b + call)", rest_case, .hang_ms = 3000},
	{"test_rest_reset", "REST write read, then conn dropped", .run = rest_reset},
	{"test_conflict", "412 concurrent writer", .run = conflict},
	{"test_token_mid_call", "token expiry mid-call", token_mid_call,
		.daemon = token_daemon_args},
	{"test_token_revoked", "token revoked mid-call (4001)", .run = token_revoked},
	{"test_ws_malformed", "ws message malformed", .run = ws_malformed},
	{"test_ws_oversize", "ws message oversize", .run = ws_oversize},
	{"test_client_gone", "client gone mid-call", .run = client_gone},
	{"test_slow_sub", "subscriber never reads", .run = slow_sub},
	{"test_many", "500 concurrent clients", .run = many},
	{"test_daemon_restart", "daemon restart, subscribed", .run = daemon_restart},
};

int main(void) {
	struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0])];
	int r;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tests[i] = (struct CMUnitTest){.name = cases[i].test,
			.test_func = run_case,
			.setup_func = setup,
			.teardown_func = teardown,
			.initial_state = &cases[i]};
	}
	raise_nofile();
	if (getenv("TR_FAULTS_FILTER")) { /* e.g. TR_FAULTS_FILTER='test_token*' */
		cmocka_set_test_filter(getenv("TR_FAULTS_FILTER"));
	}
	r = cmocka_run_group_tests(tests, NULL, NULL);
	fprintf(stderr, "# %-32s | %-6s | %-18s | %s\n", "case", "result", "after-checks", "notes");
	for (size_t i = 0; i < n_rows; i++) {
		fprintf(stderr, "# %-32s | %-6s | %-18s | %s\n", rows[i].name, rows[i].result,
			rows[i].after, rows[i].note);
	}
	return r;
}
