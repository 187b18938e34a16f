/*
 * Loop test of the bridge (daemon/bridge*.c) against taskrouter-sim (started by the test
 * harness, tests/lib, on 127.0.0.1 port 0 from $TR_SIM; skipped with 77 when it is absent).
 * The bridge runs in this process with recording callbacks; the simulator's control API is
 * driven with the harness's blocking calls (a test, not the daemon). Scenario, each step triggered by the previous event, no sleeps:
 *   ready → a REST GET through the bridge → two tasks created → their events →
 *   drop without close frame → reconnect + resync with both reservations → heartbeats
 *   paused → "Connection lost" → resumed → ready → malformed frame (session stays up) →
 *   another task → its event → close → uv_loop_close() == 0.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "bridge.h"
#include "config.h"
#include "json.h"
#include "trtest.h"

struct t {
	uv_loop_t loop;
	uv_timer_t deadline;
	uv_timer_t quiet;
	struct trt_env env; /* the simulator and the temporary directory */
	char token_file[128];
	char ws[96], eb[96];
	struct tr_config cfg;
	struct tr_bridge *b;
	int step;
	int ready;
	int events_created;
	int reservations_in_resync;
	int resync_begins, resync_ends_ok;
	bool got_get_reply;
	bool closed;
	char reasons[1024];
	int state_changes_since_ready;
	int mode; /* 0: session scenario; 1: token expiry; 2: token command */
	char command[600];
	int token_events;
};

static struct t T;

static void ctl(const char *path, const char *body) {
	assert_int_equal(trt_sim_http(&T.env, "POST", path, body, NULL), 200);
}

static void on_bridge_closed(void *userdata) {
	struct t *t = userdata;
	t->closed = true;
}

static void finish(void) {
	tr_bridge_close(T.b, on_bridge_closed, &T);
}

static void on_get_reply(void *userdata, const struct tr_upstream_reply *rep) {
	struct t *t = userdata;
	assert_int_equal(rep->err, 0);
	assert_int_equal(rep->http_status, 200);
	assert_string_equal(tr_json_get_string(rep->payload, "sid"), tr_bridge_worker_sid(t->b));
	t->got_get_reply = true;
	ctl("/sim/bulk-tasks", "{\"count\":2,\"worker\":\"alice\"}");
}

static void on_quiet_over(uv_timer_t *tm) {
	struct t *t = tm->data;
	uv_close((uv_handle_t *)tm, NULL);
	assert_int_equal(t->state_changes_since_ready, 0);
	ctl("/sim/faults/ws-message", "{\"kind\":\"malformed\"}");
	ctl("/sim/faults/ws-message", "{\"kind\":\"raw\",\"data\":\"{\\\"event_type\\\":\\\"x.unknown\\\"}\"}");
	ctl("/sim/bulk-tasks", "{\"count\":1,\"worker\":\"alice\"}");
}

static void ev_state(void *ud, enum tr_bridge_state s, const char *reason) {
	struct t *t = ud;
	if (reason) {
		strncat(t->reasons, reason, sizeof(t->reasons) - strlen(t->reasons) - 2);
		strcat(t->reasons, "|");
	}
	t->state_changes_since_ready++;
	if (s == TR_BRIDGE_RECONNECTING && t->step == 2) {
		/* the silence was detected: let the heartbeats flow again */
		ctl("/sim/faults/heartbeats", "{\"paused\":false}");
	}
	if (s != TR_BRIDGE_READY) {
		return;
	}
	t->ready++;
	t->state_changes_since_ready = 0;
	if (t->mode == 2) {
		return;
	}
	if (t->mode == 1) {
		if (t->token_events == 3 && t->resync_ends_ok < 2) {
			/* The socket outlived the old token (kept, like the SDK does): force a
			 * reconnect so a resync runs with the new token. */
			ctl("/sim/faults/drop", "{\"close\":false}");
		} else if (t->token_events == 3) {
			struct tr_json *st = tr_bridge_status(t->b);
			assert_true(tr_json_get(tr_json_get(st, "rest"), "retries")->u.num.i >= 2);
			assert_int_equal(tr_json_get(st, "tokenExpired")->type, TR_JSON_FALSE);
			tr_json_free(st);
			finish();
		}
		return;
	}
	switch (t->ready) {
	case 1: {
		struct tr_upstream_request req = {.method = "GET", .api_version = "v1",
			.if_match = -1, .retry_transient = true};
		char path[160];
		snprintf(path, sizeof(path), "Workspaces/%s/Workers/%s", tr_bridge_workspace_sid(t->b),
			tr_bridge_worker_sid(t->b));
		req.path = path;
		assert_int_equal(tr_bridge_request(t->b, &req, on_get_reply, t), 0);
		break;
	}
	case 2:
		/* the resync found both reservations */
		assert_int_equal(t->reservations_in_resync, 2);
		assert_non_null(strstr(t->reasons, "Websocket closed with errorCode=1006"));
		t->step = 2;
		ctl("/sim/faults/heartbeats", "{\"paused\":true}");
		break;
	case 3:
		assert_non_null(strstr(t->reasons, "Connection lost"));
		t->step = 3;
		/* Stay quiet for longer than the silence timeout: heartbeats alone keep the
		 * session up (a reconnect would show as a state change). */
		assert_int_equal(uv_timer_init(&t->loop, &t->quiet), 0);
		t->quiet.data = t;
		assert_int_equal(uv_timer_start(&t->quiet, on_quiet_over, 1200, 0), 0);
		break;
	default:
		fail_msg("unexpected ready #%d", t->ready);
	}
}

static void ev_resync_begin(void *ud) {
	struct t *t = ud;
	t->resync_begins++;
	t->reservations_in_resync = 0;
}

static void ev_resync_worker(void *ud, const struct tr_json *w) {
	struct t *t = ud;
	assert_string_equal(tr_json_get_string(w, "sid"), tr_bridge_worker_sid(t->b));
}

static void ev_resync_reservation(void *ud, const struct tr_json *r) {
	struct t *t = ud;
	assert_true(tr_json_is(tr_json_get(r, "task"), TR_JSON_OBJECT));
	t->reservations_in_resync++;
}

static void ev_resync_end(void *ud, int err) {
	struct t *t = ud;
	if (err == 0) {
		t->resync_ends_ok++;
	}
}

static void ev_event(void *ud, const char *type, const struct tr_json *payload) {
	struct t *t = ud;
	struct tr_json *st;
	if (strcmp(type, "reservation.created") != 0) {
		return;
	}
	assert_non_null(payload);
	t->events_created++;
	if (t->events_created == 2) {
		/* both tasks seen: drop the socket without a close frame */
		ctl("/sim/faults/drop", "{\"close\":false}");
	} else if (t->events_created == 3) {
		/* the malformed frame did not end the session */
		assert_int_equal(t->step, 3);
		assert_int_equal(t->state_changes_since_ready, 0);
		st = tr_bridge_status(t->b);
		assert_non_null(st);
		assert_int_equal(tr_json_get(tr_json_get(st, "websocket"), "malformed")->u.num.i, 1);
		assert_int_equal(tr_json_get(tr_json_get(st, "websocket"), "unknownEvents")->u.num.i, 1);
		assert_true(tr_json_get(tr_json_get(st, "websocket"), "heartbeats")->u.num.i > 0);
		tr_json_free(st);
		finish();
	}
}

/* A fresh token for alice, valid ttl seconds (negative: already expired). Caller frees. */
static char *mint(int ttl) {
	struct tr_json *j = NULL;
	char *tok;

	assert_int_equal(trt_sim_http(&T.env, "POST", "/sim/tokens",
		trt_fmt("{\"worker\":\"alice\",\"ttl\":%d}", ttl), &j), 200);
	tok = strdup(tr_json_get_string(j, "token"));
	assert_non_null(tok);
	tr_json_free(j);
	return tok;
}

static void ev_token(void *ud, const char *what, int64_t exp) {
	struct t *t = ud;
	char *tok, tmp[160];
	FILE *f;
	if (t->mode == 2) {
		/* --token-command: refreshed ahead of expiry, without a warning or a gap */
		assert_string_equal(what, "tokenUpdated");
		assert_true(exp > time(NULL) + 600);
		assert_int_equal(t->ready, 1);
		assert_int_equal(tr_bridge_get_state(t->b), TR_BRIDGE_READY);
		t->token_events++;
		finish();
		return;
	}
	if (t->mode != 1) {
		fail_msg("unexpected token event %s %lld", what, (long long)exp);
	}
	assert_true(exp > 0);
	if (strcmp(what, "tokenWillExpire") == 0) {
		assert_int_equal(t->token_events, 0);
		t->token_events++;
		/* refused updates leave everything as it was */
		assert_int_equal(tr_bridge_update_token(t->b, "not-a-jwt", false), -EINVAL);
		tok = mint(-60);
		assert_int_equal(tr_bridge_update_token(t->b, tok, false), -EKEYEXPIRED);
		free(tok);
	} else if (strcmp(what, "tokenExpired") == 0) {
		struct tr_upstream_request req = {.path = "x", .method = "GET", .api_version = "v1",
			.if_match = -1};
		assert_int_equal(t->token_events, 1);
		t->token_events++;
		/* announced before the session's end: still open (the server closes it with
		 * 4001), or already gone when the server's close came first */
		assert_true(tr_bridge_get_state(t->b) == TR_BRIDGE_TOKEN_EXPIRED ||
			tr_bridge_get_state(t->b) == TR_BRIDGE_READY);
		assert_int_equal(tr_bridge_request(t->b, &req, on_get_reply, t), -EKEYEXPIRED);
		/* the next resync meets two 500s on a list: the GET retries absorb them */
		ctl("/sim/faults/rest", "{\"count\":2,\"status\":500,\"match\":\"Activities\"}");
		/* a new token file, replaced by rename */
		tok = mint(3600);
		snprintf(tmp, sizeof(tmp), "%s.new", t->token_file);
		f = fopen(tmp, "w");
		assert_non_null(f);
		fprintf(f, "%s\n", tok);
		fclose(f);
		free(tok);
		assert_int_equal(rename(tmp, t->token_file), 0);
	} else if (strcmp(what, "tokenUpdated") == 0) {
		assert_int_equal(t->token_events, 2);
		t->token_events++;
	} else {
		fail_msg("unknown token event %s", what);
	}
}

static const struct tr_bridge_events events = {
	.state = ev_state,
	.resync_begin = ev_resync_begin,
	.resync_worker = ev_resync_worker,
	.resync_reservation = ev_resync_reservation,
	.resync_end = ev_resync_end,
	.event = ev_event,
	.token = ev_token,
};

static void on_deadline(uv_timer_t *t) {
	(void)t;
	fail_msg("deadline hit at step %d (ready %d, events %d)", T.step, T.ready, T.events_created);
}

/* Our own copy of alice's token, away from the directory the simulator writes into. */
static void copy_token(void) {
	char tok[4096];
	int n = trt_sim_token(&T.env, "alice", tok, sizeof(tok));
	FILE *f;

	assert_true(n > 0);
	f = fopen(T.token_file, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(tok, 1, (size_t)n, f), (size_t)n);
	assert_int_equal(fclose(f), 0);
}

/* The simulator listens: create the bridge (not connected yet: requests are refused) and
 * start it. */
static void start_bridge(void) {
	snprintf(T.ws, sizeof(T.ws), "ws://127.0.0.1:%d/v1/wschannels", T.env.sim.port);
	snprintf(T.eb, sizeof(T.eb), "http://127.0.0.1:%d/v1/wschannels", T.env.sim.port);
	copy_token();
	if (T.mode == 2) {
		/* the first run prints the short-lived token, later runs a fresh one */
		char *tok = mint(3600), next[160];
		FILE *f;
		snprintf(next, sizeof(next), "%s/own/next", T.env.dir);
		f = fopen(next, "w");
		assert_non_null(f);
		fprintf(f, "%s\n", tok);
		fclose(f);
		free(tok);
		snprintf(T.command, sizeof(T.command),
			"if [ -e %s/own/used ]; then cat %s; else touch %s/own/used; cat %s; fi",
			T.env.dir, next, T.env.dir, T.token_file);
		T.cfg.token_command = T.command;
		T.cfg.token_file = NULL;
	}
	assert_int_equal(tr_bridge_new(&T.loop, &T.cfg, &events, &T, &T.b), 0);
	assert_int_equal(tr_bridge_get_state(T.b), TR_BRIDGE_STOPPED);
	assert_null(tr_bridge_worker_sid(T.b));
	{
		struct tr_upstream_request req = {.path = "x", .method = "GET", .api_version = "v1",
			.if_match = -1};
		assert_int_equal(tr_bridge_request(T.b, &req, on_get_reply, &T), -ENOTCONN);
	}
	assert_int_equal(tr_bridge_start(T.b), 0);
}

static void run_scenario(int mode, const char *const *sim_extra, int warn_s) {
	const char *extra[16] = { "--heartbeat-ms", "150" };
	size_t n = 2;

	memset(&T, 0, sizeof(T));
	T.mode = mode;
	for (size_t i = 0; sim_extra && sim_extra[i]; i++) {
		extra[n++] = sim_extra[i];
	}
	assert_int_equal(trt_env_init(&T.env), 0);
	snprintf(T.token_file, sizeof(T.token_file), "%s/own", T.env.dir);
	assert_int_equal(mkdir(T.token_file, 0700), 0);
	snprintf(T.token_file, sizeof(T.token_file), "%s/own/alice.token", T.env.dir);
	T.cfg = (struct tr_config){
		.websocket_url = T.ws,
		.eventbridge_url = T.eb,
		.token_file = T.token_file,
		.client_version = "0.0.0-test",
		.set_offline_on_disconnect = -1,
		.rest_timeout_ms = 3000,
		.silence_timeout_ms = 800,
		.token_warn_s = warn_s,
		.token_command_timeout_ms = 1000,
	};
	assert_int_equal(uv_loop_init(&T.loop), 0);
	assert_int_equal(uv_timer_init(&T.loop, &T.deadline), 0);
	assert_int_equal(uv_timer_start(&T.deadline, on_deadline, 30000, 0), 0);
	uv_unref((uv_handle_t *)&T.deadline);
	assert_int_equal(trt_sim_start(&T.env, extra), 0);
	start_bridge();

	assert_int_equal(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
	assert_true(T.closed);
	assert_int_equal(trt_sim_stop(&T.env), 0);
	T.b = tr_bridge_free(T.b);
	uv_close((uv_handle_t *)&T.deadline, NULL);
	assert_int_equal(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&T.loop), 0);
	trt_env_done(&T.env);
}

static void test_session(void **state) {
	(void)state;
	run_scenario(0, NULL, 60);
	assert_true(T.got_get_reply);
	assert_int_equal(T.ready, 3);
	assert_int_equal(T.resync_ends_ok, 3);
	assert_int_equal(T.events_created, 3);
}

/* Token lifecycle: 8 s tokens, warning 5 s ahead: tokenWillExpire, refused updates,
 * tokenExpired (no reconnect, REST refused), a new token file → tokenUpdated → ready again,
 * with two REST 500s during that resync absorbed by retries. */
static void test_token_expiry(void **state) {
	static const char *const extra[] = {"--token-ttl", "8", NULL};
	(void)state;
	run_scenario(1, extra, 5);
	assert_int_equal(T.token_events, 3);
	assert_int_equal(T.resync_ends_ok, 2);
	assert_non_null(strstr(T.reasons, "token expired"));
}

/* --token-command: 7 s tokens, warning 5 s ahead: the command runs and the token switches
 * while the session stays ready. */
static void test_token_command(void **state) {
	static const char *const extra[] = {"--token-ttl", "7", NULL};
	(void)state;
	run_scenario(2, extra, 5);
	assert_int_equal(T.token_events, 1);
	assert_int_equal(T.ready, 1);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session),
		cmocka_unit_test(test_token_expiry),
		cmocka_unit_test(test_token_command),
	};

	if (!getenv("TR_SIM") || access(getenv("TR_SIM"), X_OK) < 0) {
		fprintf(stderr, "# TR_SIM not set or not executable; skipping\n");
		return 77;
	}
	/* the harness kills a simulator left running by a failed test when the program exits */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
