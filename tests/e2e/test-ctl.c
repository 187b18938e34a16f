/*
 * test-ctl.c — every taskrouterctl subcommand end to end against taskrouterd and
 * taskrouter-sim: exit status, human output (stdout is not a terminal here: no colours, no
 * alignment), --json output parsed and compared with direct RPC and with the simulator's
 * state, watch (also across a daemon restart), usage and connection errors (the daemon's
 * invalid params too: exit 2).
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

/*
 * --json output, parsed into *ret (NULL when not one JSON document): the result on stdout,
 * or the error on stderr. Both are read, merged: a run that wrote to both is not one
 * document.
 */
static int ctl_json(struct tr_json **ret, ...) {
	const char *args[CTL_MAX_ARGS];
	va_list ap;
	char *out;
	int r;

	va_start(ap, ret);
	collect_args(args, ap);
	va_end(ap);
	r = ctl_run(true, true, NULL, NULL, args, &out);
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

	/* get: --json equal to task.get; human key: value lines with dates for people: the
	 * task's epoch seconds appear nowhere, its dateCreated is a local date with its age */
	assert_int_equal(ctl_json(&j, "get", sid, NULL), 0);
	assert_task_matches_rpc(j, sid);
	assert_string_equal(e2e_str(j, "reservationSid"), res);
	assert_int_equal(ctl(&out, "get", sid, NULL), 0);
	e2e_assert_contains(out, sid);
	e2e_assert_contains(out, "status: assigned");
	assert_true(e2e_int(j, "dateCreated") > 0);
	assert_null(strstr(out, trt_fmt("%" PRId64, e2e_int(j, "dateCreated"))));
	assert_null(strstr(out, trt_fmt("%" PRId64, e2e_int(j, "dateUpdated"))));
	e2e_assert_contains(out, "\ndateCreated: ");
	/* "2026-01-02 10:11:12 CET (just now)" */
	assert_non_null(strstr(strstr(out, "\ndateCreated: "), " ("));
	free(out);
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

/* ---- the Worker side: reservations, the worker, activities, channels, instructions ---- */

/* The simulator's whole state (GET /sim/state; caller frees). */
static struct tr_json *sim_state(void) {
	struct tr_json *st = NULL;

	assert_int_equal(trt_sim_http(&e2e.env, "GET", "/sim/state", NULL, &st), 200);
	assert_non_null(st);
	return st;
}

/* The simulator's reservation res (its /sim/state record), copied (caller frees). */
static struct tr_json *sim_res(const char *res) {
	struct tr_json *st = sim_state(), *r;
	const struct tr_json *found = trt_json_find(tr_json_get(st, "reservations"), "sid", res);

	if (!found) {
		fprintf(stderr, "# reservation %s not in the simulator's state\n", res);
	}
	assert_non_null(found);
	r = tr_json_dup(found);
	tr_json_free(st);
	assert_non_null(r);
	return r;
}

/* The simulator says reservation res is in status. */
static void assert_sim_res_status(const char *res, const char *status) {
	struct tr_json *r = sim_res(res);

	assert_string_equal(e2e_str(r, "reservation_status"), status);
	tr_json_free(r);
}

/* The simulator says alice's activity is name. */
static void assert_sim_alice_activity(const char *name) {
	struct tr_json *st = sim_state();
	const struct tr_json *w = trt_json_find(tr_json_get(st, "workers"), "name", "alice");

	assert_non_null(w);
	assert_string_equal(e2e_str(w, "activity_name"), name);
	tr_json_free(st);
}

/* The sid of the workspace's activity called name, from the simulator. Static buffer (one
 * per name: Available and Offline, the two of the default world). */
static const char *sim_activity_sid(const char *name) {
	static char sids[2][64];
	char *buf = sids[strcmp(name, "Offline") == 0];
	struct tr_json *st = sim_state();
	const struct tr_json *a =
		trt_json_find(tr_json_get(st, "activities"), "friendly_name", name);

	assert_non_null(a);
	snprintf(buf, sizeof(sids[0]), "%s", e2e_str(a, "sid"));
	tr_json_free(st);
	return buf;
}

/* The REST writes (not the GETs: the daemon refreshes the worker in the background after a
 * call that moved it) the simulator received so far. */
static int count_writes(void) {
	struct tr_json *list = trt_sim_requests(&e2e.env);
	int n = 0;

	assert_non_null(list);
	for (size_t i = 0; i < list->u.arr.n; i++) {
		const char *m = tr_json_get_string(list->u.arr.items[i], "method");

		n += m && strcmp(m, "GET") != 0;
	}
	tr_json_free(list);
	return n;
}

/* The last REST write to a URL holding url_part: its params, copied (caller frees). */
static struct tr_json *last_write_params(const char *url_part) {
	struct tr_json *list = trt_sim_requests(&e2e.env), *p = NULL;

	assert_non_null(list);
	for (size_t i = list->u.arr.n; i-- > 0 && !p;) {
		const struct tr_json *r = list->u.arr.items[i];
		const char *m = tr_json_get_string(r, "method");
		const char *url = tr_json_get_string(r, "url");

		if (m && strcmp(m, "GET") != 0 && url && strstr(url, url_part)) {
			p = tr_json_dup(tr_json_get(r, "params"));
			assert_non_null(p);
		}
	}
	if (!p) {
		fprintf(stderr, "# no write to %s recorded\n", url_part);
	}
	assert_non_null(p);
	tr_json_free(list);
	return p;
}

/* The line of text that holds needle (static buffer); fails when there is none. */
static const char *line_with(const char *text, const char *needle) {
	static char line[1024];
	const char *p = strstr(text, needle), *bol, *eol;

	if (!p) {
		fprintf(stderr, "# no line with '%s' in:\n%s\n", needle, text);
		fail();
	}
	for (bol = p; bol > text && bol[-1] != '\n'; bol--) {
	}
	eol = strchr(p, '\n');
	snprintf(line, sizeof(line), "%.*s", eol ? (int)(eol - bol) : (int)strlen(bol), bol);
	return line;
}

/* The value of the "key: value" line of human output (static buffer); fails when none. */
static const char *field(const char *text, const char *key) {
	static char value[1024];
	char want[128];
	const char *p = text;
	size_t n;

	snprintf(want, sizeof(want), "%s: ", key);
	n = strlen(want);
	while (p && *p) {
		const char *eol = strchr(p, '\n');

		if (strncmp(p, want, n) == 0) {
			snprintf(value, sizeof(value), "%.*s",
				eol ? (int)(eol - p - n) : (int)strlen(p + n), p + n);
			return value;
		}
		p = eol ? eol + 1 : NULL;
	}
	fprintf(stderr, "# no '%s' line in:\n%s\n", want, text);
	fail();
	return NULL;
}

/* taskrouterctl ARGS... (human output, stderr merged) must exit with status; the output
 * (caller frees). */
static char *ctl_out(int status, ...) {
	const char *args[CTL_MAX_ARGS];
	va_list ap;
	char *out;
	int r;

	va_start(ap, status);
	collect_args(args, ap);
	va_end(ap);
	r = ctl_run(false, true, NULL, NULL, args, &out);
	if (r != status) {
		fprintf(stderr, "# %s ...: exit %d, expected %d: %s\n", args[0], r, status, out);
	}
	assert_int_equal(r, status);
	return out;
}

/*
 * Wait until the daemon's worker (worker.get) has activity name: the daemon hears of a
 * change upstream on the websocket, which need not come before the REST answer the
 * command waited for. Between looks, wait for the next event on e2e.sub (the activity
 * change publishes activityUpdated), up to the deadline.
 */
static void wait_daemon_activity(const char *name) {
	int64_t deadline = trt_now_ms() + E2E_WAIT;

	for (;;) {
		struct tr_json *w = trt_call_ok(e2e.rpc, "worker.get", "{}"), *ev = NULL;
		bool done;
		int r;

		assert_non_null(w);
		done = strcmp(e2e_str(w, "activityName"), name) == 0;
		tr_json_free(w);
		if (done) {
			return;
		}
		r = trt_next_event(e2e.sub, trt_remaining(deadline), &ev);
		tr_json_free(ev);
		if (r < 0) {
			fprintf(stderr, "# the daemon's worker never became %s\n", name);
			fail();
		}
	}
}

/* Start from alice Available, in the simulator and in the daemon (whatever a failed test
 * before left). */
static void alice_available(void) {
	struct tr_json *st = sim_state();
	const struct tr_json *w = trt_json_find(tr_json_get(st, "workers"), "name", "alice");

	assert_non_null(w);
	if (strcmp(e2e_str(w, "activity_name"), "Available") != 0) {
		e2e_sim_post(&e2e.env, "/sim/workers/alice/activity",
			"{\"activity\":\"Available\"}");
	}
	tr_json_free(st);
	wait_daemon_activity("Available");
}

/* A pending reservation for alice that the daemon has (task sid and reservation). */
static void new_pending(char sid[35], char res[35]) {
	e2e_new_task(&e2e.env, e2e.sub, false, sid, res);
}

/* --json reservations: every reservation.list page as one document; res is in it with
 * status. */
static void assert_listed(const char *res, const char *status_filter, const char *status) {
	struct tr_json *j, *rpc;
	const struct tr_json *arr, *it;
	int r = status_filter ? ctl_json(&j, "reservations", "--status", status_filter, NULL)
			      : ctl_json(&j, "reservations", NULL);

	assert_int_equal(r, 0);
	assert_non_null(j);
	arr = tr_json_get(j, "reservations");
	assert_true(tr_json_is(arr, TR_JSON_ARRAY));
	assert_true(tr_json_is(tr_json_get(j, "next"), TR_JSON_NULL));
	it = trt_json_find(arr, "sid", res);
	if (!status) {
		assert_null(it);
	} else {
		assert_non_null(it);
		assert_string_equal(e2e_str(it, "status"), status);
	}
	/* the same sids as reservation.list (one page: fewer than 200 here) */
	rpc = trt_call_ok(e2e.rpc, "reservation.list",
		status_filter ? trt_fmt("{\"status\":\"%s\"}", status_filter) : "{}");
	assert_non_null(rpc);
	assert_true(tr_json_is(tr_json_get(rpc, "next"), TR_JSON_NULL));
	{
		const struct tr_json *ra = tr_json_get(rpc, "reservations");

		assert_int_equal(arr->u.arr.n, ra->u.arr.n);
		for (size_t i = 0; i < arr->u.arr.n; i++) {
			assert_string_equal(e2e_str(arr->u.arr.items[i], "sid"),
				e2e_str(ra->u.arr.items[i], "sid"));
			assert_string_equal(e2e_str(arr->u.arr.items[i], "status"),
				e2e_str(ra->u.arr.items[i], "status"));
		}
	}
	tr_json_free(rpc);
	tr_json_free(j);
}

static void test_reservations_accept(void **state) {
	char sid[35], res[35], *out;
	const char *row;
	struct tr_json *j, *r;
	(void)state;

	new_pending(sid, res);

	/* reservations: a table with the pending reservation's row */
	out = ctl_out(0, "reservations", NULL);
	row = line_with(out, "SID");
	e2e_assert_contains(row, "STATUS");
	e2e_assert_contains(row, "TIMEOUT");
	e2e_assert_contains(row, "TASK");
	e2e_assert_contains(row, "QUEUE");
	e2e_assert_contains(row, "CHANNEL");
	row = line_with(out, res);
	e2e_assert_contains(row, " pending ");
	e2e_assert_contains(row, sid);
	e2e_assert_contains(row, " 2m "); /* the simulator's reservation timeout, 120 s */
	e2e_assert_contains(row, "voice");
	free(out);
	assert_listed(res, NULL, "pending");
	assert_listed(res, "pending", "pending");

	/* reservation RES: key: value lines, with its task's */
	out = ctl_out(0, "reservation", res, NULL);
	assert_string_equal(field(out, "sid"), res);
	assert_string_equal(field(out, "status"), "pending");
	assert_string_equal(field(out, "taskSid"), sid);
	assert_string_equal(field(out, "workerSid"), e2e_worker_sid(&e2e.env, "alice"));
	assert_string_equal(field(out, "task.status"), "reserved");
	assert_string_equal(field(out, "task.taskChannelUniqueName"), "voice");
	free(out);
	/* by its task's sid, with --json: reservation.get's object */
	assert_int_equal(ctl_json(&j, "reservation", sid, NULL), 0);
	assert_non_null(j);
	r = trt_call_ok(e2e.rpc, "reservation.get", trt_fmt("{\"sid\":\"%s\"}", res));
	assert_non_null(r);
	assert_string_equal(e2e_str(j, "sid"), res);
	assert_string_equal(e2e_str(j, "taskSid"), sid);
	assert_string_equal(e2e_str(j, "status"), e2e_str(r, "status"));
	assert_string_equal(e2e_str(j, "version"), e2e_str(r, "version"));
	assert_string_equal(e2e_str(tr_json_get(j, "task"), "sid"), sid);
	tr_json_free(r);
	tr_json_free(j);

	/* accept: the simulator has it accepted when the command returns */
	out = ctl_out(0, "accept", res, NULL);
	assert_string_equal(field(out, "sid"), res);
	assert_string_equal(field(out, "status"), "accepted");
	free(out);
	assert_sim_res_status(res, "accepted");
	assert_sim_status(sid, "assigned");
	/* and the daemon, once the websocket said so: the task is assigned */
	e2e_wait_event(e2e.sub, "reservationAccepted", sid);
	out = ctl_out(0, "get", sid, NULL);
	assert_string_equal(field(out, "status"), "assigned");
	assert_string_equal(field(out, "reservationSid"), res);
	free(out);
	j = trt_call_ok(e2e.rpc, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	assert_non_null(j);
	assert_string_equal(e2e_str(j, "status"), "assigned");
	tr_json_free(j);
	assert_listed(res, NULL, "accepted");
	assert_listed(res, "pending", NULL);
	assert_listed(res, "accepted", "accepted");

	/* not pending any more: TaskRouter's refusal, exit 4 */
	out = ctl_out(4, "accept", res, NULL);
	e2e_assert_contains(out, "not in expected state");
	free(out);
	/* --json accept prints the reservation */
	new_pending(sid, res);
	assert_int_equal(ctl_json(&j, "accept", sid, NULL), 0);
	assert_non_null(j);
	assert_string_equal(e2e_str(j, "sid"), res);
	assert_string_equal(e2e_str(j, "status"), "accepted");
	tr_json_free(j);
	assert_sim_res_status(res, "accepted");
	e2e_wait_event(e2e.sub, "reservationAccepted", sid);
}

static void test_reject_activity(void **state) {
	char sid[35], res[35], *out;
	const char *offline = sim_activity_sid("Offline");
	struct tr_json *j;
	(void)state;

	alice_available();

	new_pending(sid, res);
	out = ctl_out(0, "reject", res, "--activity", "Offline", NULL);
	assert_string_equal(field(out, "sid"), res);
	assert_string_equal(field(out, "status"), "rejected");
	free(out);
	/* the simulator rejected it and moved alice */
	assert_sim_res_status(res, "rejected");
	assert_sim_alice_activity("Offline");
	{
		struct tr_json *p = last_write_params(res);

		assert_string_equal(e2e_str(p, "ReservationStatus"), "rejected");
		assert_string_equal(e2e_str(p, "WorkerActivitySid"), offline);
		tr_json_free(p);
	}
	e2e_wait_event(e2e.sub, "reservationRejected", sid);
	wait_daemon_activity("Offline");

	out = ctl_out(0, "worker", NULL);
	assert_string_equal(field(out, "name"), "alice");
	assert_string_equal(field(out, "activity"), trt_fmt("Offline (%s)", offline));
	assert_string_equal(field(out, "available"), "no");
	free(out);
	assert_int_equal(ctl_json(&j, "worker", NULL), 0);
	assert_non_null(j);
	{
		struct tr_json *w = trt_call_ok(e2e.rpc, "worker.get", "{}");

		assert_non_null(w);
		assert_true(tr_json_equal(j, w));
		tr_json_free(w);
	}
	assert_string_equal(e2e_str(j, "activityName"), "Offline");
	assert_string_equal(e2e_str(j, "sid"), e2e_worker_sid(&e2e.env, "alice"));
	tr_json_free(j);

	/* the rejected reservation is no longer live, but is still shown */
	assert_listed(res, NULL, NULL);
	assert_listed(res, "rejected", "rejected");
	out = ctl_out(0, "reservation", res, NULL);
	assert_string_equal(field(out, "status"), "rejected");
	free(out);

	/* back to Available, by name */
	out = ctl_out(0, "activity", "Available", NULL);
	assert_string_equal(field(out, "activity"),
		trt_fmt("Available (%s)", sim_activity_sid("Available")));
	assert_string_equal(field(out, "available"), "yes");
	free(out);
	assert_sim_alice_activity("Available");
	wait_daemon_activity("Available");

	/* reject with the activity's sid, and without an activity */
	new_pending(sid, res);
	ctl_expect(0, "reject", "--activity", offline, sid, NULL);
	assert_sim_res_status(res, "rejected");
	assert_sim_alice_activity("Offline");
	wait_daemon_activity("Offline");
	ctl_expect(0, "activity", "Available", NULL);
	wait_daemon_activity("Available");
	new_pending(sid, res);
	assert_int_equal(ctl_json(&j, "reject", res, NULL), 0);
	assert_non_null(j);
	assert_string_equal(e2e_str(j, "status"), "rejected");
	tr_json_free(j);
	assert_sim_res_status(res, "rejected");
	assert_sim_alice_activity("Available");
}

/* --json activities: activity.list's document; exactly one current, the named one. */
static void assert_current_activity(const char *name) {
	struct tr_json *j, *l;
	const struct tr_json *arr;
	int current = 0;

	assert_int_equal(ctl_json(&j, "activities", NULL), 0);
	assert_non_null(j);
	l = trt_call_ok(e2e.rpc, "activity.list", "{}");
	assert_non_null(l);
	assert_true(tr_json_equal(j, l));
	arr = tr_json_get(j, "activities");
	assert_true(tr_json_is(arr, TR_JSON_ARRAY));
	assert_int_equal(arr->u.arr.n, 2);
	for (size_t i = 0; i < arr->u.arr.n; i++) {
		const struct tr_json *a = arr->u.arr.items[i];

		if (tr_json_is(tr_json_get(a, "isCurrent"), TR_JSON_TRUE)) {
			current++;
			assert_string_equal(e2e_str(a, "name"), name);
		}
		assert_string_equal(e2e_str(a, "sid"), sim_activity_sid(e2e_str(a, "name")));
	}
	assert_int_equal(current, 1);
	tr_json_free(l);
	tr_json_free(j);
}

static void test_activities(void **state) {
	char *out, offline[64], available[64];
	const char *row;
	(void)state;

	alice_available();

	snprintf(offline, sizeof(offline), "%s", sim_activity_sid("Offline"));
	snprintf(available, sizeof(available), "%s", sim_activity_sid("Available"));

	/* the table marks the current activity, and only it */
	out = ctl_out(0, "activities", NULL);
	row = line_with(out, "NAME");
	e2e_assert_contains(row, "SID");
	e2e_assert_contains(row, "AVAILABLE");
	e2e_assert_contains(row, "CURRENT");
	row = line_with(out, available);
	e2e_assert_contains(row, "Available");
	e2e_assert_contains(row, " yes");
	assert_non_null(strstr(row, " *"));
	row = line_with(out, offline);
	e2e_assert_contains(row, " no");
	assert_null(strchr(row, '*'));
	free(out);
	assert_current_activity("Available");

	/* by sid */
	out = ctl_out(0, "activity", offline, NULL);
	assert_string_equal(field(out, "activity"), trt_fmt("Offline (%s)", offline));
	free(out);
	assert_sim_alice_activity("Offline");
	wait_daemon_activity("Offline");
	out = ctl_out(0, "activities", NULL);
	assert_non_null(strstr(line_with(out, offline), " *"));
	assert_null(strchr(line_with(out, available), '*'));
	free(out);
	assert_current_activity("Offline");

	/* --json activity: the updated worker */
	{
		struct tr_json *j;

		assert_int_equal(ctl_json(&j, "activity", available, NULL), 0);
		assert_non_null(j);
		assert_string_equal(e2e_str(j, "activitySid"), available);
		assert_string_equal(e2e_str(j, "activityName"), "Available");
		assert_true(tr_json_is(tr_json_get(j, "available"), TR_JSON_TRUE));
		tr_json_free(j);
	}
	assert_sim_alice_activity("Available");
	wait_daemon_activity("Available");
	assert_current_activity("Available");
}

static void test_activity_reject_pending(void **state) {
	char sid[35], res[35], sid2[35], res2[35], *out;
	int before;
	(void)state;

	alice_available();

	new_pending(sid, res);
	e2e_new_task(&e2e.env, e2e.sub, true, sid2, res2); /* accepted: stays */

	/* not allowed for an available activity: the daemon refuses, nothing is sent */
	before = count_writes();
	out = ctl_out(2, "activity", "Available", "--reject-pending", NULL);
	e2e_assert_contains(out, "rejectPendingReservations");
	free(out);
	assert_int_equal(count_writes(), before);
	assert_sim_res_status(res, "pending");

	out = ctl_out(0, "activity", "Offline", "--reject-pending", NULL);
	assert_string_equal(field(out, "activity"),
		trt_fmt("Offline (%s)", sim_activity_sid("Offline")));
	assert_string_equal(field(out, "available"), "no");
	free(out);
	assert_sim_res_status(res, "rejected");
	assert_sim_res_status(res2, "accepted");
	assert_sim_alice_activity("Offline");
	{
		struct tr_json *p = last_write_params(e2e_worker_sid(&e2e.env, "alice"));

		assert_string_equal(e2e_str(p, "ActivitySid"), sim_activity_sid("Offline"));
		assert_true(tr_json_is(tr_json_get(p, "RejectPendingReservations"), TR_JSON_TRUE));
		tr_json_free(p);
	}
	/* the daemon hears of the rejection too */
	e2e_wait_event(e2e.sub, "reservationRejected", sid);
	out = ctl_out(0, "reservation", res, NULL);
	assert_string_equal(field(out, "status"), "rejected");
	free(out);
	assert_listed(res, NULL, NULL);
	assert_listed(res2, NULL, "accepted");
	wait_daemon_activity("Offline");
	ctl_expect(0, "activity", "Available", NULL);
	assert_sim_alice_activity("Available");
	wait_daemon_activity("Available");
}

static void test_channels(void **state) {
	struct tr_json *st = sim_state(), *j, *l;
	const struct tr_json *alice = trt_json_find(tr_json_get(st, "workers"), "name", "alice");
	const struct tr_json *simvoice, *voice;
	char *out;
	const char *row;
	(void)state;

	assert_non_null(alice);
	simvoice = trt_json_find(
		tr_json_get(alice, "channels"), "task_channel_unique_name", "voice");
	assert_non_null(simvoice);

	out = ctl_out(0, "channels", NULL);
	row = line_with(out, "CHANNEL");
	e2e_assert_contains(row, "SID");
	e2e_assert_contains(row, "AVAILABLE");
	e2e_assert_contains(row, "CAPACITY");
	e2e_assert_contains(row, "ASSIGNED");
	e2e_assert_contains(row, "FREE%");
	row = line_with(out, e2e_str(simvoice, "sid"));
	assert_int_equal(strncmp(row, "voice ", 6), 0);
	e2e_assert_contains(row, " yes ");
	e2e_assert_contains(line_with(out, "chat "), "WC");
	free(out);

	assert_int_equal(ctl_json(&j, "channels", NULL), 0);
	assert_non_null(j);
	l = trt_call_ok(e2e.rpc, "channel.list", "{}");
	assert_non_null(l);
	assert_true(tr_json_equal(j, l));
	voice = trt_json_find(tr_json_get(j, "channels"), "taskChannelUniqueName", "voice");
	assert_non_null(voice);
	assert_string_equal(e2e_str(voice, "sid"), e2e_str(simvoice, "sid"));
	assert_string_equal(
		e2e_str(voice, "taskChannelSid"), e2e_str(simvoice, "task_channel_sid"));
	assert_int_equal(e2e_int(voice, "capacity"), e2e_int(simvoice, "configured_capacity"));
	assert_true(tr_json_is(tr_json_get(voice, "available"), TR_JSON_TRUE));
	tr_json_free(l);
	tr_json_free(j);
	tr_json_free(st);
}

/* The simulator's record of the last instruction on reservation res: its name, its count,
 * and (for each key, value pair of want, a JSON object) its params. */
static void assert_instruction(const char *res, const char *name, int64_t count,
	const char *want_params) {
	struct tr_json *r = sim_res(res), *want = NULL;
	const struct tr_json *in = tr_json_get(r, "instruction"), *p;

	if (!tr_json_is(in, TR_JSON_OBJECT)) {
		fprintf(stderr, "# no instruction recorded on %s\n", res);
		fail();
	}
	assert_string_equal(e2e_str(in, "name"), name);
	assert_int_equal(e2e_int(in, "count"), count);
	p = tr_json_get(in, "params");
	assert_int_equal(tr_json_parse(want_params, strlen(want_params), &want, NULL), 0);
	if (!tr_json_equal(p, want)) {
		char *got = NULL;

		(void)tr_json_dump(p, &got, NULL);
		fprintf(stderr, "# %s params: %s, expected %s\n", name, got ? got : "?",
			want_params);
		free(got);
		fail();
	}
	tr_json_free(want);
	tr_json_free(r);
}

/* What the simulator records of the second call instruction of test_instructions. */
#define CALL_ACCEPTED \
	"{\"Instruction\":\"call\",\"CallFrom\":\"+15550111\"," \
	"\"CallUrl\":\"https://example.org/twiml/call\",\"CallAccept\":true," \
	"\"CallTimeout\":25,\"CallRecord\":\"record-from-answer\",\"CallTo\":\"+15550122\"}"

static void test_instructions(void **state) {
	char sid[4][35], res[4][35], *out;
	const char *available = sim_activity_sid("Available");
	struct tr_json *j;
	(void)state;

	for (int i = 0; i < 4; i++) {
		new_pending(sid[i], res[i]);
	}

	/* call without --accept: recorded, still pending; then with it, by the task's sid */
	out = ctl_out(0, "call", res[0], "--from", "+15550111", "--url",
		"https://example.org/twiml/call", NULL);
	assert_string_equal(field(out, "sid"), res[0]);
	free(out);
	assert_instruction(res[0], "call", 1,
		"{\"Instruction\":\"call\",\"CallFrom\":\"+15550111\","
		"\"CallUrl\":\"https://example.org/twiml/call\"}");
	assert_sim_res_status(res[0], "pending");
	/* the call's own timeout goes before the name; --timeout after it is CallTimeout */
	assert_int_equal(ctl_json(&j, "--timeout", "10", "call", sid[0], "--from", "+15550111",
				 "--url", "https://example.org/twiml/call", "--accept", "--timeout",
				 "25", "--record", "record-from-answer", "--to", "+15550122", NULL),
		0);
	assert_non_null(j);
	assert_string_equal(e2e_str(j, "sid"), res[0]);
	tr_json_free(j);
	assert_instruction(res[0], "call", 2, CALL_ACCEPTED);
	assert_sim_res_status(res[0], "accepted");
	e2e_wait_event(e2e.sub, "reservationAccepted", sid[0]);
	/* no longer pending: TaskRouter's refusal (40114), exit 4 */
	out = ctl_out(4, "call", res[0], "--from", "+15550111", "--url", "https://x.example", NULL);
	e2e_assert_contains(out, "needs a pending reservation");
	free(out);
	assert_instruction(res[0], "call", 2, CALL_ACCEPTED);

	/* dequeue accepts at once; the post-work activity is recorded */
	out = ctl_out(0, "dequeue", res[1], "--from", "+15550111", "--post-work-activity-sid",
		available, "--timeout", "20", "--status-callback-url", "https://example.org/cb",
		NULL);
	assert_string_equal(field(out, "sid"), res[1]);
	free(out);
	assert_instruction(res[1], "dequeue", 1,
		trt_fmt("{\"Instruction\":\"dequeue\",\"DequeueFrom\":\"+15550111\","
			"\"DequeuePostWorkActivitySid\":\"%s\",\"DequeueTimeout\":20,"
			"\"DequeueStatusCallbackUrl\":\"https://example.org/cb\"}",
			available));
	{
		struct tr_json *r = sim_res(res[1]);
		const struct tr_json *in = tr_json_get(r, "instruction");

		assert_string_equal(e2e_str(in, "post_work_activity_sid"), available);
		tr_json_free(r);
	}
	assert_sim_res_status(res[1], "accepted");
	e2e_wait_event(e2e.sub, "reservationAccepted", sid[1]);

	/* redirect with --accept */
	out = ctl_out(0, "redirect", res[2], "--call-sid", "CA0123456789abcdef0123456789abcdef",
		"--url", "https://example.org/twiml/redirect", "--accept", NULL);
	assert_string_equal(field(out, "sid"), res[2]);
	free(out);
	assert_instruction(res[2], "redirect", 1,
		"{\"Instruction\":\"redirect\","
		"\"RedirectCallSid\":\"CA0123456789abcdef0123456789abcdef\","
		"\"RedirectUrl\":\"https://example.org/twiml/redirect\",\"RedirectAccept\":true}");
	assert_sim_res_status(res[2], "accepted");
	e2e_wait_event(e2e.sub, "reservationAccepted", sid[2]);

	/* conference (by the task's sid, --json): accepted at once, the leg muted */
	assert_int_equal(ctl_json(&j, "conference", sid[3], "--from", "+15550111", "--timeout",
				 "15", "--muted", "--beep", "false", "--no-end-conference-on-exit",
				 "--conference-record", "record-from-start", NULL),
		0);
	assert_non_null(j);
	assert_string_equal(e2e_str(j, "sid"), res[3]);
	tr_json_free(j);
	assert_instruction(res[3], "conference", 1,
		"{\"Instruction\":\"conference\",\"From\":\"+15550111\",\"Timeout\":15,"
		"\"Muted\":true,\"Beep\":false,\"EndConferenceOnExit\":false,"
		"\"ConferenceRecord\":\"record-from-start\"}");
	assert_sim_res_status(res[3], "accepted");
	{
		struct tr_json *r = sim_res(res[3]);
		const struct tr_json *p = tr_json_get(r, "participant");

		assert_true(tr_json_is(tr_json_get(p, "mute"), TR_JSON_TRUE));
		assert_true(tr_json_is(tr_json_get(p, "end_conference_on_exit"), TR_JSON_FALSE));
		tr_json_free(r);
	}
	e2e_wait_event(e2e.sub, "reservationAccepted", sid[3]);
	out = ctl_out(0, "reservation", res[3], NULL);
	assert_string_equal(field(out, "status"), "accepted");
	free(out);

	/* a required option missing: a usage error, nothing sent */
	{
		int before = count_writes();

		ctl_expect(2, "call", res[0], "--from", "+15550111", NULL);
		ctl_expect(2, "redirect", res[0], "--url", "https://x.example", NULL);
		ctl_expect(2, "conference", res[0], "--max-participants", "many", NULL);
		assert_int_equal(count_writes(), before);
	}
}

/*
 * A change upstream the daemon did not hear of (the simulator's silent control calls): the
 * versioned write is refused with 412, the CLI reports the daemon's version conflict (exit
 * 4, currentVersion in the data), and the same command then succeeds, the daemon having
 * fetched the current version.
 */
static void test_version_conflict(void **state) {
	char sid[35], res[35], *out;
	struct tr_json *j, *st;
	int64_t version;
	(void)state;

	alice_available();
	e2e_sim_post(&e2e.env, "/sim/workers/alice/attributes",
		"{\"attributes\":{\"name\":\"alice\",\"languages\":[\"en\"]},\"silent\":true}");
	st = sim_state();
	version = e2e_int(trt_json_find(tr_json_get(st, "workers"), "name", "alice"), "version");
	tr_json_free(st);
	assert_int_equal(ctl_json(&j, "activity", "Offline", NULL), 4);
	assert_non_null(j);
	{
		const struct tr_json *e = tr_json_get(j, "error");

		assert_int_equal(e2e_int(e, "code"), TR_RPC_VERSION_CONFLICT);
		assert_string_equal(e2e_str(tr_json_get(e, "data"), "currentVersion"),
			trt_fmt("%" PRId64, version));
	}
	tr_json_free(j);
	assert_sim_alice_activity("Available");
	out = ctl_out(0, "activity", "Offline", NULL);
	assert_string_equal(field(out, "activity"),
		trt_fmt("Offline (%s)", sim_activity_sid("Offline")));
	free(out);
	assert_sim_alice_activity("Offline");
	wait_daemon_activity("Offline");
	ctl_expect(0, "activity", "Available", NULL);
	wait_daemon_activity("Available");

	/* a reservation accepted behind the daemon's back */
	new_pending(sid, res);
	e2e_sim_post(&e2e.env, trt_fmt("/sim/reservations/%s/accept", res), "{\"silent\":true}");
	out = ctl_out(4, "accept", res, NULL);
	e2e_assert_contains(out, "version conflict");
	e2e_assert_contains(out, "\"currentVersion\":\"1\"");
	free(out);
	out = ctl_out(0, "reservation", res, NULL);
	assert_string_equal(field(out, "status"), "accepted");
	assert_string_equal(field(out, "version"), "1");
	free(out);
}

#define NO_RES "WR00000000000000000000000000000000"

static const struct ctl_case worker_errors[] = {
	/* an unknown reservation: the daemon's error, exit 4 */
	{{"reservation", NO_RES}, .status = 4, .has = "unknown reservation"},
	{{"accept", NO_RES}, .status = 4, .has = "unknown reservation"},
	{{"reject", NO_RES}, .status = 4, .has = "unknown reservation"},
	{{"reject", NO_RES, "--activity", "Offline"}, .status = 4, .has = "unknown reservation"},
	{{"call", NO_RES, "--from", "+1", "--url", "https://x.example"}, .status = 4,
		.has = "unknown reservation"},
	{{"dequeue", NO_RES}, .status = 4, .has = "unknown reservation"},
	{{"redirect", NO_RES, "--call-sid", "CA1", "--url", "https://x.example"}, .status = 4,
		.has = "unknown reservation"},
	{{"conference", NO_RES}, .status = 4, .has = "unknown reservation"},
	/* an unknown activity: exit 4, the names listed */
	/* the daemon's invalid params: a usage error */
	{{"activity", "Lunch"}, .status = 2, .has = "\"values\":[\"Available\",\"Offline\"]"},
	{{"activity", "offline"}, .status = 2, .has = "Available"},
	{{"activity", "WA00000000000000000000000000000000"}, .status = 2, .has = "Offline"},
	{{"activity", ""}, .status = 2},
	{{"activity"}, .status = 2},
	{{"reservations", "--status", "bogus"}, .status = 2, .has = "rescinded"},
	{{"reservation"}, .status = 2},
	{{"accept", NO_RES, "extra"}, .status = 2},
};

static void test_worker_errors(void **state) {
	char sid[35], res[35], *out;
	struct tr_json *j;
	int before;
	(void)state;

	alice_available();

	before = count_writes();
	check_cases(worker_errors, sizeof(worker_errors) / sizeof(worker_errors[0]));
	/* none of them reached TaskRouter */
	assert_int_equal(count_writes(), before);

	/* --json: the error document on stdout */
	assert_int_equal(ctl_json(&j, "accept", NO_RES, NULL), 4);
	assert_non_null(j);
	assert_int_equal(e2e_int(tr_json_get(j, "error"), "code"), TR_RPC_NOT_FOUND);
	assert_string_equal(e2e_str(tr_json_get(tr_json_get(j, "error"), "data"), "sid"), NO_RES);
	tr_json_free(j);
	assert_int_equal(ctl_json(&j, "activity", "Lunch", NULL), 2);
	assert_non_null(j);
	{
		const struct tr_json *e = tr_json_get(j, "error");
		const struct tr_json *v = tr_json_get(tr_json_get(e, "data"), "values");

		assert_int_equal(e2e_int(e, "code"), TR_RPC_INVALID_PARAMS);
		assert_true(tr_json_is(v, TR_JSON_ARRAY));
		assert_int_equal(v->u.arr.n, 2);
		e2e_assert_contains(e2e_str(e, "message"), "unknown activity");
	}
	tr_json_free(j);

	/* reject --activity with an unknown name: the names listed, nothing rejected */
	new_pending(sid, res);
	before = count_writes();
	out = ctl_out(2, "reject", res, "--activity", "Lunch", NULL);
	e2e_assert_contains(out, "unknown activity 'Lunch'");
	e2e_assert_contains(out, "Available, Offline");
	free(out);
	assert_int_equal(count_writes(), before);
	assert_sim_res_status(res, "pending");
	assert_sim_alice_activity("Available");
	ctl_expect(0, "reject", res, NULL);
	assert_sim_res_status(res, "rejected");
}
#undef NO_RES

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

/* Worker events through watch: activityUpdated has no task, and its --json line carries the
 * worker. */
static void test_watch_worker_events(void **state) {
	static const char *const args[] = {"--event", "activityUpdated", "--count", "1", NULL};
	struct tr_json *v = NULL;
	struct trt_proc w;
	(void)state;

	alice_available();
	/* --json */
	watch_start(&w, false, true, args);
	ctl_expect(0, "activity", "Offline", NULL);
	assert_int_equal(trt_proc_wait_exit(&w, E2E_WAIT), 0);
	assert_int_equal(tr_json_parse(w.out.data, strlen(w.out.data), &v, NULL), 0);
	assert_string_equal(e2e_str(v, "event"), "activityUpdated");
	assert_null(tr_json_get(v, "taskSid"));
	assert_string_equal(e2e_str(tr_json_get(v, "worker"), "activityName"), "Offline");
	tr_json_free(v);
	trt_proc_done(&w);

	/* human: "SEQ activityUpdated" */
	watch_start(&w, false, false, args);
	ctl_expect(0, "activity", "Available", NULL);
	assert_int_equal(trt_proc_wait_exit(&w, E2E_WAIT), 0);
	e2e_assert_contains(w.out.data, " activityUpdated\n");
	assert_null(strstr(w.out.data, "task="));
	trt_proc_done(&w);
	wait_daemon_activity("Available");
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

	/* a short summary; every member behind --verbose */
	assert_int_equal(ctl(&out, "status", NULL), 0);
	e2e_assert_contains(out, "\nSession: ready");
	e2e_assert_contains(out, "\nUpstream: ws://127.0.0.1:");
	e2e_assert_contains(out, "/v1/wschannels, directly\n");
	e2e_assert_contains(out, "\nToken: expires ");
	e2e_assert_contains(out, "\nTasks: ");
	{
		int lines = 0;

		for (const char *p = out; *p; p++) {
			lines += *p == '\n';
		}
		assert_true(lines <= 15);
	}
	assert_null(strstr(out, "counters."));
	free(out);
	assert_int_equal(ctl(&out, "status", "--verbose", NULL), 0);
	e2e_assert_contains(out, "\nSession: ready");
	e2e_assert_contains(out, "\nlimits.maxConnections: ");
	e2e_assert_contains(out, "\ncounters.eventsPublished: ");
	e2e_assert_contains(out, "\nupstream.tokenExpiresAt: ");
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
	{{"watch", "--event", "task.created"}, .status = 2, .has = "reservationCreated"},
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
		cmocka_unit_test(test_reservations_accept),
		cmocka_unit_test(test_reject_activity),
		cmocka_unit_test(test_activities),
		cmocka_unit_test(test_activity_reject_pending),
		cmocka_unit_test(test_channels),
		cmocka_unit_test(test_instructions),
		cmocka_unit_test(test_worker_errors),
		cmocka_unit_test(test_version_conflict),
		cmocka_unit_test(test_watch_human),
		cmocka_unit_test(test_watch_count),
		cmocka_unit_test(test_watch_worker_events),
		cmocka_unit_test(test_watch_restart),
	};
	ctl_bin = e2e_binary("TR_CTL");
	return ctl_bin ? cmocka_run_group_tests(tests, e2e_setup, e2e_teardown) : 1;
}
