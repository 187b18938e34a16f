/*
 * test-ctl.c — every taskrouterctl subcommand end to end against taskrouterd and
 * taskrouter-sim: exit status, human output, --json output parsed and compared with
 * direct RPC and with the simulator's state, watch (also across a daemon restart),
 * usage and connection errors.
 */
#include "common.h"

#include <inttypes.h>
#include <poll.h>

#define CTL_MAX_ARGS 32

static const char *ctl_bin;

/*
 * Run taskrouterctl --socket S [--json] ARGS... with stderr merged into stdout (through
 * sh, so messages on stderr can be checked too). Returns the exit status; *out is the
 * captured output (caller frees).
 */
static int ctl_v(bool json, bool merge_err, const char *socket, const char *input, char **out,
	va_list ap) {
	const char *argv[CTL_MAX_ARGS];
	size_t n = 0;
	const char *a;
	int r;

	if (merge_err) {
		argv[n++] = "/bin/sh";
		argv[n++] = "-c";
		argv[n++] = "exec \"$0\" \"$@\" 2>&1";
	}
	argv[n++] = ctl_bin;
	argv[n++] = "--socket";
	argv[n++] = socket ? socket : e2e.env.daemon.socket_path;
	if (json) {
		argv[n++] = "--json";
	}
	while ((a = va_arg(ap, const char *)) && n < CTL_MAX_ARGS - 1) {
		argv[n++] = a;
	}
	argv[n] = NULL;
	r = trt_run(argv, NULL, input, E2E_WAIT, out);
	assert_non_null(*out);
	return r;
}

/* Human output, stderr merged, on another socket (NULL: the daemon's) and with input on
 * stdin (may be NULL). */
static int ctl_with(const char *socket, const char *input, char **out, ...) {
	va_list ap;
	int r;
	va_start(ap, out);
	r = ctl_v(false, true, socket, input, out, ap);
	va_end(ap);
	return r;
}

/* Human output, stderr merged: ctl(&out, ARGS..., NULL). */
#define ctl(out, ...) ctl_with(NULL, NULL, out, __VA_ARGS__)

/* --json output on stdout only; parsed into *ret (NULL when not one JSON document). */
static int ctl_json(struct tr_json **ret, ...) {
	va_list ap;
	char *out;
	int r;
	va_start(ap, ret);
	r = ctl_v(true, false, NULL, NULL, &out, ap);
	va_end(ap);
	*ret = NULL;
	if (tr_json_parse(out, strlen(out), ret, NULL) < 0) {
		fprintf(stderr, "# not one JSON document: %s\n", out);
		*ret = NULL;
	}
	free(out);
	return r;
}

/* A CLI task result must equal the daemon's own task.get (same sid/version/status/attrs). */
static void assert_task_matches_rpc(const struct tr_json *cli, const char *sid) {
	struct tr_json *t = trt_call_ok(e2e.rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(t);
	assert_non_null(cli);
	assert_string_equal(e2e_str(cli, "sid"), sid);
	assert_string_equal(e2e_str(cli, "version"), e2e_str(t, "version"));
	assert_string_equal(e2e_str(cli, "status"), e2e_str(t, "status"));
	assert_true(tr_json_equal(tr_json_get(cli, "attributes"), tr_json_get(t, "attributes")));
	tr_json_free(t);
}

static void test_list_get(void **state) {
	char sid[35], res[35], *out;
	struct tr_json *j, *l;
	const struct tr_json *tasks, *rtasks;
	bool found = false;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	assert_int_equal(ctl(&out, "list", NULL), 0);
	e2e_assert_contains(out, "SID");
	e2e_assert_contains(out, "STATUS");
	e2e_assert_contains(out, "PRIORITY");
	e2e_assert_contains(out, "QUEUE");
	e2e_assert_contains(out, "CHANNEL");
	{
		/* the task's row says it is assigned */
		const char *row = strstr(out, sid);
		assert_non_null(row);
		const char *eol = strchr(row, '\n');
		char line[512];
		snprintf(line, sizeof(line), "%.*s", eol ? (int)(eol - row) : (int)strlen(row), row);
		e2e_assert_contains(line, "assigned");
	}
	free(out);

	/* --json list is exactly task.list over RPC (same sids, versions, statuses) */
	assert_int_equal(ctl_json(&j, "list", NULL), 0);
	assert_non_null(j);
	l = trt_call_ok(e2e.rpc, "task.list", "{}");
	assert_non_null(l);
	tasks = tr_json_get(j, "tasks");
	rtasks = tr_json_get(l, "tasks");
	assert_true(tr_json_is(tasks, TR_JSON_ARRAY));
	assert_true(tr_json_is(rtasks, TR_JSON_ARRAY));
	assert_int_equal(tasks->u.arr.n, rtasks->u.arr.n);
	for (size_t i = 0; i < tasks->u.arr.n; i++) {
		const struct tr_json *a = tasks->u.arr.items[i], *b = rtasks->u.arr.items[i];
		assert_string_equal(e2e_str(a, "sid"), e2e_str(b, "sid"));
		assert_string_equal(e2e_str(a, "version"), e2e_str(b, "version"));
		assert_string_equal(e2e_str(a, "status"), e2e_str(b, "status"));
		found = found || strcmp(e2e_str(a, "sid"), sid) == 0;
	}
	assert_true(found);
	tr_json_free(j);
	tr_json_free(l);

	/* get: human key: value lines and --json equal to task.get */
	assert_int_equal(ctl(&out, "get", sid, NULL), 0);
	e2e_assert_contains(out, sid);
	e2e_assert_contains(out, "status: assigned");
	free(out);
	assert_int_equal(ctl_json(&j, "get", sid, NULL), 0);
	assert_task_matches_rpc(j, sid);
	assert_string_equal(e2e_str(j, "reservationSid"), res);
	tr_json_free(j);

	/* an unknown sid: the daemon's error, exit 4 */
	assert_int_equal(ctl(&out, "get", "WT00000000000000000000000000000000", NULL), 4);
	free(out);
	assert_int_equal(ctl(&out, "call", "task.get", "{\"sid\":\"WTnope\"}", NULL), 4);
	free(out);
}

/* The simulator's task sid has this assignment status. */
static void assert_sim_status(const char *sid, const char *status) {
	struct tr_json *sim = trt_sim_task(&e2e.env, sid);
	assert_non_null(sim);
	assert_string_equal(e2e_str(sim, "assignment_status"), status);
	tr_json_free(sim);
}

static void test_wrapup_complete(void **state) {
	char sid[35], res[35], *out;
	struct tr_json *j;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	assert_int_equal(ctl_json(&j, "wrapup", "--reason", "call ended", sid, NULL), 0);
	assert_non_null(j);
	assert_string_equal(e2e_str(j, "status"), "wrapping");
	assert_task_matches_rpc(j, sid);
	tr_json_free(j);
	e2e_wait_event(e2e.sub, "wrapup", sid);
	assert_sim_status(sid, "wrapping");

	assert_int_equal(ctl(&out, "complete", sid, "resolved", NULL), 0);
	e2e_assert_contains(out, "completed");
	free(out);
	e2e_wait_event(e2e.sub, "completed", sid);
	assert_sim_status(sid, "completed");

	/* again: the server refuses, exit 4 */
	assert_int_equal(ctl(&out, "complete", sid, "again", NULL), 4);
	free(out);
}

static void test_set_attributes_vst_fetch(void **state) {
	char sid[35], res[35], *out;
	struct tr_json *j, *sim, *attrs, *want;
	(void)state;

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	assert_int_equal(ctl_json(&j, "set-attributes", sid,
				 "{\"case\":\"CS-9\",\"n\":3,\"deep\":{\"x\":[1,2]}}", NULL),
		0);
	assert_non_null(j);
	assert_int_equal(tr_json_parse("{\"case\":\"CS-9\",\"n\":3,\"deep\":{\"x\":[1,2]}}",
				 strlen("{\"case\":\"CS-9\",\"n\":3,\"deep\":{\"x\":[1,2]}}"), &want,
				 NULL),
		0);
	assert_true(tr_json_equal(tr_json_get(j, "attributes"), want));
	sim = trt_sim_task(&e2e.env, sid);
	assert_non_null(sim);
	attrs = e2e_sim_attributes(sim);
	assert_true(tr_json_equal(attrs, want));
	assert_int_equal(e2e_version(j), e2e_int(sim, "version"));
	tr_json_free(attrs);
	tr_json_free(sim);
	tr_json_free(want);
	tr_json_free(j);

	/* not a JSON object: usage error, nothing sent */
	{
		int before = trt_sim_request_count(&e2e.env);
		assert_int_equal(ctl(&out, "set-attributes", sid, "[1,2", NULL), 2);
		free(out);
		assert_int_equal(trt_sim_request_count(&e2e.env), before);
	}

	assert_int_equal(ctl(&out, "set-virtual-start-time", sid, "2026-01-02T03:04:05Z", NULL), 0);
	free(out);
	{
		struct tr_json *req = e2e_last_request(&e2e.env);
		assert_non_null(req);
		e2e_assert_contains(e2e_str(req, "url"), sid);
		tr_json_free(req);
	}
	assert_int_equal(ctl(&out, "set-virtual-start-time", sid, "1767322800", NULL), 0);
	free(out);

	/* fetch after an outside change brings the new version */
	assert_int_equal(ctl_json(&j, "fetch", sid, NULL), 0);
	assert_non_null(j);
	sim = trt_sim_task(&e2e.env, sid);
	assert_int_equal(e2e_version(j), e2e_int(sim, "version"));
	tr_json_free(sim);
	tr_json_free(j);
}

/* The last REST request went to route with Hold true or false (hold: its JSON type). */
static void assert_last_hold(const char *route, enum tr_json_type hold) {
	struct tr_json *req = e2e_last_request(&e2e.env);
	const struct tr_json *h;
	assert_non_null(req);
	e2e_assert_contains(e2e_str(req, "url"), route);
	h = tr_json_get(tr_json_get(req, "params"), "Hold");
	assert_non_null(h);
	assert_int_equal(h->type, hold);
	tr_json_free(req);
}

static void test_hold_kick_participant(void **state) {
	char sid[35], res[35], alice[64], bob[64], *out;
	struct tr_json *j;
	(void)state;
	snprintf(alice, sizeof(alice), "%s", e2e_worker_sid(&e2e.env, "alice"));
	snprintf(bob, sizeof(bob), "%s", e2e_worker_sid(&e2e.env, "bob"));
	assert_true(alice[0] && bob[0]);

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	assert_int_equal(ctl(&out, "update-participant", "--hold", "on", sid, NULL), 0);
	free(out);
	assert_last_hold("CustomerParticipant", TR_JSON_TRUE);
	assert_int_equal(ctl(&out, "hold", sid, alice, "on", NULL), 0);
	free(out);
	assert_int_equal(ctl(&out, "hold", "--hold-url", "https://example.org/hold",
				 "--hold-method", "GET", sid, alice, "off", NULL),
		0);
	free(out);
	assert_last_hold("HoldWorkerParticipant", TR_JSON_FALSE);
	/* hold with neither on nor off: usage */
	assert_int_equal(ctl(&out, "hold", sid, alice, "maybe", NULL), 2);
	free(out);

	/* bob is not in the conference: exit 4 and the server's message on stderr */
	assert_int_equal(ctl(&out, "kick", sid, bob, NULL), 4);
	e2e_assert_contains(out, "not in the conference");
	free(out);
	/* with --json the error document is on stdout */
	assert_int_equal(ctl_json(&j, "kick", sid, bob, NULL), 4);
	assert_non_null(j);
	assert_int_equal(e2e_int(tr_json_get(j, "error"), "code"), TR_RPC_UPSTREAM_ERROR);
	tr_json_free(j);
}

static void test_transfer_cancel(void **state) {
	char sid[35], res[35], bob[64], *out;
	struct tr_json *j;
	const struct tr_json *o;
	(void)state;
	snprintf(bob, sizeof(bob), "%s", e2e_worker_sid(&e2e.env, "bob"));

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	assert_int_equal(ctl_json(&j, "transfer", "--mode", "warm", "--priority", "0",
				 "--attributes", "{\"why\":\"billing\"}", sid, bob, NULL),
		0);
	assert_non_null(j);
	o = tr_json_get(tr_json_get(j, "transfers"), "outgoing");
	assert_non_null(o);
	assert_string_equal(e2e_str(o, "status"), "initiated");
	tr_json_free(j);
	{
		struct tr_json *req = e2e_last_request(&e2e.env);
		const struct tr_json *p = tr_json_get(req, "params");
		assert_string_equal(e2e_str(p, "Mode"), "WARM");
		assert_int_equal(e2e_int(p, "Priority"), 0);
		assert_string_equal(e2e_str(p, "To"), bob);
		tr_json_free(req);
	}
	e2e_wait_event(e2e.sub, "transferInitiated", sid);

	assert_int_equal(ctl(&out, "transfer", "--mode", "lukewarm", sid, bob, NULL), 2);
	free(out);

	assert_int_equal(ctl(&out, "cancel-transfer", sid, NULL), 0);
	free(out);
	e2e_wait_event(e2e.sub, "transferCanceled", sid);
	/* nothing left to cancel: the daemon's refusal, exit 4 */
	assert_int_equal(ctl(&out, "cancel-transfer", sid, NULL), 4);
	free(out);
}

/* ---- watch: a child process with its stdout on a pipe ---- */

/* Start taskrouterctl [--json] watch --since NEXT ARGS..., NEXT being the daemon's next seq so
 * that nothing from now on can be missed. */
static void watch_start(struct trt_proc *w, bool json, const char *const *args) {
	struct trt_spawn_opts opts = {.pipe_stdout = true};
	struct tr_json *st = trt_call_ok(e2e.rpc, "daemon.status", "{}");
	const char *argv[CTL_MAX_ARGS];
	size_t n = 0;

	assert_non_null(st);
	argv[n++] = ctl_bin;
	argv[n++] = "--socket";
	argv[n++] = e2e.env.daemon.socket_path;
	if (json) {
		argv[n++] = "--json";
	}
	argv[n++] = "watch";
	argv[n++] = "--since";
	argv[n++] = trt_fmt("%" PRId64, e2e_int(st, "seq") + 1);
	for (; *args && n < CTL_MAX_ARGS - 1; args++) {
		argv[n++] = *args;
	}
	argv[n] = NULL;
	tr_json_free(st);
	assert_int_equal(trt_proc_spawn(w, "taskrouterctl watch", argv, &opts), 0);
}

/* Parse every line; check seqs strictly increase for event lines; count events for sid. */
static int watch_check_lines(const char *text, const char *sid, int *n_gap) {
	int64_t last = -1;
	int hits = 0;
	const char *p = text;
	*n_gap = 0;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		struct tr_json *v = NULL;
		if (n) {
			if (tr_json_parse(p, n, &v, NULL) < 0) {
				fprintf(stderr, "# watch line not JSON: %.*s\n", (int)n, p);
				fail();
			}
			if (tr_json_get(v, "gap")) {
				(*n_gap)++;
				last = -1; /* seqs restart after a resubscription from now */
			} else {
				int64_t seq = e2e_int(v, "seq");
				const char *ts = tr_json_get_string(v, "taskSid");
				assert_non_null(tr_json_get_string(v, "event"));
				assert_true(seq > last);
				last = seq;
				hits += ts && strcmp(ts, sid) == 0;
			}
			tr_json_free(v);
		}
		p += n + (eol ? 1 : 0);
	}
	return hits;
}

/* Human watch lines: "SEQ EVENT task=SID status=S reservation=R", filtered by --task. */
static void test_watch_human(void **state) {
	static const char *const args[] = {"--event", "reservationCreated", "--count", "1", NULL};
	char sid[35], res[35];
	struct trt_proc w;
	(void)state;

	watch_start(&w, false, args);
	e2e_new_task(&e2e.env, e2e.sub, false, sid, res);
	assert_int_equal(trt_proc_wait_exit(&w, E2E_WAIT), 0);
	e2e_assert_contains(w.out.data,
		trt_fmt(" reservationCreated task=%s status=reserved reservation=%s\n", sid, res));
	assert_true(w.out.data[0] >= '1' && w.out.data[0] <= '9');
	assert_null(strchr(w.out.data, '{'));
	trt_proc_done(&w);
}

static void test_watch_count(void **state) {
	static const char *const args[] = {"--event", "reservationCreated", "--event",
		"reservationAccepted", "--count", "2", NULL};
	char sid[35], res[35];
	struct trt_proc w;
	int gaps;
	(void)state;

	watch_start(&w, true, args);
	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	assert_int_equal(trt_proc_wait_exit(&w, E2E_WAIT), 0);
	assert_int_equal(watch_check_lines(w.out.data, sid, &gaps), 2);
	assert_int_equal(gaps, 0);
	e2e_assert_contains(w.out.data, "reservationCreated");
	e2e_assert_contains(w.out.data, "reservationAccepted");
	trt_proc_done(&w);
}

/* Wait until the (restarted) daemon reports at least n subscriptions. */
static void wait_subscriptions(struct trt_conn *c, int64_t n) {
	int64_t deadline = trt_now_ms() + E2E_WAIT;
	for (;;) {
		struct tr_json *st = trt_call_ok(c, "daemon.status", "{}");
		int64_t have = 0;
		assert_non_null(st);
		tr_json_get_int(st, "subscriptions", &have);
		tr_json_free(st);
		if (have >= n) {
			return;
		}
		assert_true(trt_now_ms() < deadline);
		poll(NULL, 0, 20); /* re-check the condition; bounded by the deadline */
	}
}

static void test_watch_restart(void **state) {
	static const char *const args[] = {"--event", "reservationCreated", "--count", "2", NULL};
	char a[35], ra[35], b[35], rb[35];
	struct trt_proc w;
	int gaps, status;
	(void)state;

	watch_start(&w, true, args);
	e2e_new_task(&e2e.env, e2e.sub, false, a, ra);
	assert_int_equal(trt_proc_wait_output(&w, a, E2E_WAIT), 0);

	/* restart the daemon on the same socket */
	e2e_disconnect();
	e2e_restart_daemon(&e2e.env, NULL);
	assert_int_equal(e2e_connect(), 0);
	/* the watcher must have come back (beside e2e.sub) before we create the next task */
	wait_subscriptions(e2e.rpc, 2);

	e2e_new_task(&e2e.env, e2e.sub, false, b, rb);
	status = trt_proc_wait_exit(&w, E2E_WAIT);
	fprintf(stderr, "# watch output across restart:\n%s", w.out.data);
	assert_int_equal(status, 0);
	assert_int_equal(watch_check_lines(w.out.data, a, &gaps), 1);
	assert_int_equal(watch_check_lines(w.out.data, b, &gaps), 1);
	/* either the replay continued (no gap) or one clear gap line */
	assert_true(gaps <= 1);
	trt_proc_done(&w);
}

static void test_status_describe_call(void **state) {
	char *out;
	struct tr_json *j, *r;
	(void)state;

	assert_int_equal(ctl(&out, "status", NULL), 0);
	e2e_assert_contains(out, "state: ready");
	e2e_assert_contains(out, "limits.");
	free(out);
	assert_int_equal(ctl_json(&j, "status", NULL), 0);
	assert_non_null(j);
	assert_string_equal(e2e_str(j, "state"), "ready");
	assert_non_null(tr_json_get(j, "counters"));
	tr_json_free(j);

	assert_int_equal(ctl(&out, "describe", NULL), 0);
	e2e_assert_contains(out, "task.list");
	e2e_assert_contains(out, "transferCanceled");
	free(out);
	assert_int_equal(ctl_json(&j, "describe", NULL), 0);
	r = trt_call_ok(e2e.rpc, "rpc.describe", "{}");
	assert_non_null(j);
	assert_non_null(r);
	assert_true(tr_json_equal(j, r));
	tr_json_free(j);
	tr_json_free(r);

	assert_int_equal(ctl_json(&j, "call", "task.list", "{}", NULL), 0);
	assert_non_null(j);
	assert_true(tr_json_is(tr_json_get(j, "tasks"), TR_JSON_ARRAY));
	tr_json_free(j);
	/* call without --json also prints the result JSON */
	assert_int_equal(ctl(&out, "call", "daemon.status", NULL), 0);
	assert_int_equal(tr_json_parse(out, strlen(out), &j, NULL), 0);
	tr_json_free(j);
	free(out);
	/* an unknown method: exit 4 with the JSON-RPC error */
	assert_int_equal(ctl_json(&j, "call", "no.such.method", "{}", NULL), 4);
	assert_non_null(j);
	assert_int_equal(e2e_int(tr_json_get(j, "error"), "code"), TR_RPC_METHOD_NOT_FOUND);
	tr_json_free(j);
}

static void test_update_token(void **state) {
	char *out = NULL, *tok = e2e_mint_token(&e2e.env, 4321), *input;
	(void)state;

	assert_true(asprintf(&input, "%s\n", tok) > 0);
	assert_int_equal(ctl_with(NULL, input, &out, "update-token", NULL), 0);
	e2e_assert_contains(out, "ok");
	assert_null(strstr(out, tok));
	free(out);
	free(input);
	e2e_wait_event(e2e.sub, "tokenUpdated", NULL);
	assert_false(trt_proc_log_contains(&e2e.env.daemon.proc, tok));

	/* an empty token: a usage error */
	assert_int_equal(ctl_with(NULL, "\n", &out, "update-token", NULL), 2);
	free(out);

	/* "surrounding white space is ignored" (taskrouterctl(1)): leading blanks too */
	assert_true(asprintf(&input, " \t%s \n", tok) > 0);
	{
		int r = ctl_with(NULL, input, &out, "update-token", NULL);
		if (r != 0) {
			fprintf(stderr, "# token with leading blanks: exit %d: %s", r, out);
		}
		assert_null(strstr(out, tok));
		free(out);
		free(input);
		free(tok);
		assert_int_equal(r, 0);
	}
}

static void test_usage_and_connection_errors(void **state) {
	char *out, *bad;
	(void)state;

	assert_int_equal(ctl(&out, "frobnicate", NULL), 2);
	e2e_assert_contains(out, "unknown command");
	free(out);
	assert_int_equal(ctl(&out, "get", NULL), 2);
	free(out);
	assert_int_equal(ctl(&out, "list", "--bogus", NULL), 2);
	free(out);
	assert_int_equal(ctl(&out, "watch", "--count", "0", NULL), 2);
	free(out);
	assert_int_equal(ctl(&out, "get", "--help", NULL), 0);
	e2e_assert_contains(out, "Usage");
	free(out);

	/* a socket nobody listens on: exit 3 */
	assert_true(asprintf(&bad, "%s/nobody.sock", e2e.env.dir) > 0);
	assert_int_equal(ctl_with(bad, NULL, &out, "status", NULL), 3);
	e2e_assert_contains(out, "nobody.sock");
	free(out);
	free(bad);
}

/*
 * The documented synopsis puts a subcommand's options after its positional arguments
 * ("wrapup SID [--reason R]"). With an unknown sid the daemon answers not found (exit 4);
 * a usage error (exit 2) means the CLI refused the documented syntax.
 */
static void test_options_after_positionals(void **state) {
	const char *nope = "WT00000000000000000000000000000000";
	char *out;
	int bad = 0;
	(void)state;
#define TRY(...)                                                                                   \
	do {                                                                                       \
		int r_ = ctl(&out, __VA_ARGS__, NULL);                                             \
		if (r_ != 4) {                                                                     \
			fprintf(stderr, "# %s: exit %d, expected 4: %s", #__VA_ARGS__, r_, out);   \
			bad++;                                                                     \
		}                                                                                  \
		free(out);                                                                         \
	} while (0)
	TRY("wrapup", nope, "--reason", "x");
	TRY("transfer", nope, "WKbob", "--mode", "warm", "--priority", "0");
	TRY("hold", nope, "WKbob", "on", "--hold-url", "https://example.org/h");
	TRY("update-participant", nope, "--hold", "on");
#undef TRY
	assert_int_equal(bad, 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_get),
		cmocka_unit_test(test_wrapup_complete),
		cmocka_unit_test(test_set_attributes_vst_fetch),
		cmocka_unit_test(test_hold_kick_participant),
		cmocka_unit_test(test_transfer_cancel),
		cmocka_unit_test(test_status_describe_call),
		cmocka_unit_test(test_update_token),
		cmocka_unit_test(test_usage_and_connection_errors),
		cmocka_unit_test(test_options_after_positionals),
		cmocka_unit_test(test_watch_human),
		cmocka_unit_test(test_watch_count),
		cmocka_unit_test(test_watch_restart),
	};
	ctl_bin = e2e_binary("TR_CTL");
	return ctl_bin ? cmocka_run_group_tests(tests, e2e_setup, e2e_teardown) : 1;
}
