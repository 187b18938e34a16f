/*
 * test-ctl.c — every taskrouterctl subcommand end to end against taskrouterd and
 * taskrouter-sim: exit status, human output, --json output parsed and compared with
 * direct RPC and with the simulator's state, watch (also across a daemon restart),
 * usage and connection errors.
 */
#include "common.h"

#include <inttypes.h>

#define CTL_MAX_ARGS 32

static const char *ctl_bin;

/*
 * Fill argv with taskrouterctl --socket S [--json] ARGS... (args NULL-terminated). With
 * merge_err it runs through sh with stderr merged into stdout, so messages on stderr can
 * be checked too.
 */
static void ctl_argv(
	const char **argv, bool merge_err, bool json, const char *socket, const char *const *args) {
	size_t n = 0;

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
	for (; *args && n < CTL_MAX_ARGS - 1; args++) {
		argv[n++] = *args;
	}
	argv[n] = NULL;
}

/* Run it with input on stdin (may be NULL). Returns the exit status; *out is the output
 * (caller frees). */
static int ctl_run(bool json, bool merge_err, const char *socket, const char *input,
	const char *const *args, char **out) {
	const char *argv[CTL_MAX_ARGS];
	int r;

	ctl_argv(argv, merge_err, json, socket, args);
	r = trt_run(argv, NULL, input, E2E_WAIT, out);
	assert_non_null(*out);
	return r;
}

/* The NULL-terminated arguments that follow a variadic function's last named one. */
static void collect_args(const char **args, va_list ap) {
	size_t n = 0;

	while (n < CTL_MAX_ARGS - 1 && (args[n] = va_arg(ap, const char *))) {
		n++;
	}
	args[n] = NULL;
}

/* Human output, stderr merged, on another socket (NULL: the daemon's) and with input on
 * stdin (may be NULL). */
static int ctl_with(const char *socket, const char *input, char **out, ...) {
	const char *args[CTL_MAX_ARGS];
	va_list ap;

	va_start(ap, out);
	collect_args(args, ap);
	va_end(ap);
	return ctl_run(false, true, socket, input, args, out);
}

/* Human output, stderr merged: ctl(&out, ARGS..., NULL). */
#define ctl(out, ...) ctl_with(NULL, NULL, out, __VA_ARGS__)

/* --json output on stdout only; parsed into *ret (NULL when not one JSON document). */
static int ctl_json(struct tr_json **ret, ...) {
	const char *args[CTL_MAX_ARGS];
	va_list ap;
	char *out;
	int r;

	va_start(ap, ret);
	collect_args(args, ap);
	va_end(ap);
	r = ctl_run(true, false, NULL, NULL, args, &out);
	*ret = NULL;
	if (tr_json_parse(out, strlen(out), ret, NULL) < 0) {
		fprintf(stderr, "# not one JSON document: %s\n", out);
		*ret = NULL;
	}
	free(out);
	return r;
}

/*
 * Run taskrouterctl ARGS... (human output, stderr merged) and check its exit status and,
 * unless has is NULL, that the output holds has. On a mismatch, say what ran and what it
 * printed. Returns whether it matched.
 */
static bool run_case(const char *const *args, int status, const char *has) {
	char *out;
	int r = ctl_run(false, true, NULL, NULL, args, &out);
	bool ok = r == status && (!has || strstr(out, has));

	if (!ok) {
		fprintf(stderr, "#");
		for (const char *const *a = args; *a; a++) {
			fprintf(stderr, " %s", *a);
		}
		fprintf(stderr, ": exit %d, expected %d: %s\n", r, status, out);
	}
	free(out);
	return ok;
}

/* run_case() on the NULL-terminated arguments after status; fails the test on a mismatch. */
static void ctl_expect(int status, ...) {
	const char *args[CTL_MAX_ARGS];
	va_list ap;

	va_start(ap, status);
	collect_args(args, ap);
	va_end(ap);
	assert_true(run_case(args, status, NULL));
}

/* A run of which only the exit status, and maybe a piece of the output, matter. */
struct ctl_case {
	const char *argv[8];
	int status;
	const char *has; /* in stdout or stderr, or NULL */
};

/* Run every case, then fail if any did not match: one run reports them all. */
static void check_cases(const struct ctl_case *cases, size_t n) {
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		bad += !run_case(cases[i].argv, cases[i].status, cases[i].has);
	}
	assert_int_equal(bad, 0);
}

/* The simulator's last REST request (caller frees), which must have gone to a URL holding
 * url_part. */
static struct tr_json *last_request_to(const char *url_part) {
	struct tr_json *req = e2e_last_request(&e2e.env);

	assert_non_null(req);
	e2e_assert_contains(e2e_str(req, "url"), url_part);
	return req;
}

/* ... and its "Hold" parameter is of type hold (TR_JSON_TRUE or TR_JSON_FALSE). */
static void assert_hold_sent(const char *url_part, enum tr_json_type hold) {
	struct tr_json *req = last_request_to(url_part);
	const struct tr_json *h = tr_json_get(tr_json_get(req, "params"), "Hold");

	assert_non_null(h);
	assert_int_equal(h->type, hold);
	tr_json_free(req);
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
	ctl_expect(4, "get", "WT00000000000000000000000000000000", NULL);
	ctl_expect(4, "call", "task.get", "{\"sid\":\"WTnope\"}", NULL);
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
	ctl_expect(4, "complete", sid, "again", NULL);
}

static void test_set_attributes_vst_fetch(void **state) {
	char sid[35], res[35];
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
		ctl_expect(2, "set-attributes", sid, "[1,2", NULL);
		assert_int_equal(trt_sim_request_count(&e2e.env), before);
	}

	ctl_expect(0, "set-virtual-start-time", sid, "2026-01-02T03:04:05Z", NULL);
	tr_json_free(last_request_to(sid));
	ctl_expect(0, "set-virtual-start-time", sid, "1767322800", NULL);

	/* fetch after an outside change brings the new version */
	assert_int_equal(ctl_json(&j, "fetch", sid, NULL), 0);
	assert_non_null(j);
	sim = trt_sim_task(&e2e.env, sid);
	assert_int_equal(e2e_version(j), e2e_int(sim, "version"));
	tr_json_free(sim);
	tr_json_free(j);
}

static void test_hold_kick_participant(void **state) {
	char sid[35], res[35], alice[64], bob[64], *out;
	struct tr_json *j;
	(void)state;
	snprintf(alice, sizeof(alice), "%s", e2e_worker_sid(&e2e.env, "alice"));
	snprintf(bob, sizeof(bob), "%s", e2e_worker_sid(&e2e.env, "bob"));
	assert_true(alice[0] && bob[0]);

	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	ctl_expect(0, "update-participant", "--hold", "on", sid, NULL);
	assert_hold_sent("CustomerParticipant", TR_JSON_TRUE);
	ctl_expect(0, "hold", sid, alice, "on", NULL);
	ctl_expect(0, "hold", "--hold-url", "https://example.org/hold", "--hold-method", "GET", sid,
		alice, "off", NULL);
	assert_hold_sent("HoldWorkerParticipant", TR_JSON_FALSE);
	/* hold with neither on nor off: usage */
	ctl_expect(2, "hold", sid, alice, "maybe", NULL);

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
	char sid[35], res[35], bob[64];
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

	ctl_expect(2, "transfer", "--mode", "lukewarm", sid, bob, NULL);

	ctl_expect(0, "cancel-transfer", sid, NULL);
	e2e_wait_event(e2e.sub, "transferCanceled", sid);
	/* nothing left to cancel: the daemon's refusal, exit 4 */
	ctl_expect(4, "cancel-transfer", sid, NULL);
}

/* ---- watch: a child process with its stdout on a pipe ---- */

/*
 * Start taskrouterctl [--json] watch ARGS... with --since the daemon's current seq + 1 and
 * --epoch its epoch, so that nothing the test does afterwards can be missed; its stdout is
 * piped, with merge_err its stderr too (its "watch: ..." messages about the connection).
 */
static void watch_start(struct trt_proc *w, bool merge_err, bool json, const char *const *args) {
	struct trt_spawn_opts opts = {.pipe_stdout = true};
	struct tr_json *st = trt_call_ok(e2e.rpc, "daemon.status", "{}");
	const char *wargs[CTL_MAX_ARGS], *argv[CTL_MAX_ARGS];
	static char epoch[128]; /* read by the spawn below only */
	size_t n = 0;

	assert_non_null(st);
	wargs[n++] = "watch";
	wargs[n++] = "--since";
	wargs[n++] = trt_fmt("%" PRId64, e2e_int(st, "seq") + 1);
	snprintf(epoch, sizeof(epoch), "%s", e2e_str(st, "epoch"));
	wargs[n++] = "--epoch";
	wargs[n++] = epoch;
	tr_json_free(st);
	for (; *args && n < CTL_MAX_ARGS - 1; args++) {
		wargs[n++] = *args;
	}
	wargs[n] = NULL;
	ctl_argv(argv, merge_err, json, NULL, wargs);
	assert_int_equal(trt_proc_spawn(w, "taskrouterctl watch", argv, &opts), 0);
}

/* The prefix of the watcher's messages on stderr (in its output when merged). */
#define WATCH_NOTE "taskrouterctl: watch: "

/* Parse every line but the watcher's notes; check seqs strictly increase for event lines;
 * count events for sid. */
static int watch_check_lines(const char *text, const char *sid, int *n_gap) {
	int64_t last = -1;
	int hits = 0;
	const char *p = text;
	*n_gap = 0;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		struct tr_json *v = NULL;
		if (n && strncmp(p, WATCH_NOTE, strlen(WATCH_NOTE)) != 0) {
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

/* Human watch lines: "SEQ EVENT task=SID status=S reservation=R", filtered by --event. */
static void test_watch_human(void **state) {
	static const char *const args[] = {"--event", "reservationCreated", "--count", "1", NULL};
	char sid[35], res[35];
	struct trt_proc w;
	(void)state;

	watch_start(&w, false, false, args);
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

	watch_start(&w, false, true, args);
	e2e_new_task(&e2e.env, e2e.sub, true, sid, res);
	assert_int_equal(trt_proc_wait_exit(&w, E2E_WAIT), 0);
	assert_int_equal(watch_check_lines(w.out.data, sid, &gaps), 2);
	assert_int_equal(gaps, 0);
	e2e_assert_contains(w.out.data, "reservationCreated");
	e2e_assert_contains(w.out.data, "reservationAccepted");
	trt_proc_done(&w);
}

/* The daemon holds at least n subscriptions. */
static void assert_subscriptions(struct trt_conn *c, int64_t n) {
	struct tr_json *st = trt_call_ok(c, "daemon.status", "{}");

	assert_non_null(st);
	assert_true(e2e_int(st, "subscriptions") >= n);
	tr_json_free(st);
}

/*
 * watch across a daemon restart, with a task created while the daemon is down: the restarted
 * daemon counts seqs from 1 again, so resuming "after seq N" would skip that task. watch
 * must report one explicit gap (the epoch changed) and re-list, and then go on.
 */
static void test_watch_restart(void **state) {
	static const char *const args[] = {"--event", "reservationCreated", NULL};
	char a[35], ra[35], b[35], rb[35], c[35], rc[35];
	const char *gap;
	struct trt_proc w;
	int gaps;
	(void)state;

	watch_start(&w, true, true, args);
	e2e_new_task(&e2e.env, e2e.sub, false, a, ra);
	assert_int_equal(trt_proc_wait_output(&w, a, E2E_WAIT), 0);

	/* the daemon stops; a task arrives upstream meanwhile; the daemon starts again on the
	 * same socket */
	e2e_restart_with_task_while_down(c, rc);
	/* the watcher must have come back (beside e2e.sub) before we create the next task: it
	 * says so once the restarted daemon has answered its subscription */
	assert_int_equal(trt_proc_wait_output(&w, WATCH_NOTE "reconnected", E2E_WAIT), 0);
	assert_subscriptions(e2e.rpc, 2);

	e2e_new_task(&e2e.env, e2e.sub, false, b, rb);
	assert_int_equal(trt_proc_wait_output(&w, b, E2E_WAIT), 0);
	fprintf(stderr, "# watch output across restart:\n%s", w.out.data);
	assert_true(watch_check_lines(w.out.data, a, &gaps) >= 1);
	assert_int_equal(watch_check_lines(w.out.data, b, &gaps), 1);
	/* exactly one gap, said to be the restart, on stdout and stderr */
	assert_int_equal(gaps, 1);
	gap = strstr(w.out.data, "{\"gap\":");
	assert_non_null(gap);
	assert_non_null(strstr(gap, "\"reason\":\"epoch\""));
	e2e_assert_contains(w.out.data, WATCH_NOTE "skipped events: the daemon restarted (epoch ");
	/* the task created while the daemon was down comes after the gap: in its re-list, or
	 * as an event when the watcher subscribed before the daemon's first resync */
	assert_non_null(strstr(gap, c));
	trt_proc_kill(&w);
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

static const struct ctl_case usage_cases[] = {
	{{"frobnicate"}, .status = 2, .has = "unknown command"},
	{{"get"}, .status = 2},
	{{"list", "--bogus"}, .status = 2},
	{{"watch", "--count", "0"}, .status = 2},
	/* an event name the daemon does not publish: its refusal lists the valid ones */
	{{"watch", "--event", "task.created"}, .status = 4, .has = "reservationCreated"},
	{{"get", "--help"}, .status = 0, .has = "Usage"},
};

static void test_usage_and_connection_errors(void **state) {
	char *out, *bad;
	(void)state;

	check_cases(usage_cases, sizeof(usage_cases) / sizeof(usage_cases[0]));

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
#define NOPE "WT00000000000000000000000000000000"
static const struct ctl_case options_after_positionals[] = {
	{{"wrapup", NOPE, "--reason", "x"}, .status = 4},
	{{"transfer", NOPE, "WKbob", "--mode", "warm", "--priority", "0"}, .status = 4},
	{{"hold", NOPE, "WKbob", "on", "--hold-url", "https://example.org/h"}, .status = 4},
	{{"update-participant", NOPE, "--hold", "on"}, .status = 4},
};
#undef NOPE

static void test_options_after_positionals(void **state) {
	(void)state;
	check_cases(options_after_positionals,
		sizeof(options_after_positionals) / sizeof(options_after_positionals[0]));
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
