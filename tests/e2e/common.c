/* common.c — see common.h. */
#include "common.h"

#include <errno.h>

const char *e2e_binary(const char *var) {
	const char *path = getenv(var);
	if (!path || !*path) {
		fprintf(stderr, "# %s not set\n", var);
		return NULL;
	}
	return path;
}

int e2e_start(struct trt_env *env, const char *const *sim_extra, const char *const *daemon_extra) {
	int r = trt_env_init(env);
	if (r < 0) {
		return r;
	}
	if ((r = trt_sim_start(env, sim_extra)) < 0 ||
		(r = trt_daemon_start(env, "alice", daemon_extra)) < 0 ||
		(r = trt_daemon_wait_status(env, "ready", E2E_WAIT)) < 0) {
		/* cmocka does not run the teardown of a failed setup: clean up here */
		trt_env_done(env);
		return r;
	}
	return 0;
}

/* The worker token must never show up in the daemon's log. */
static bool token_logged(struct trt_env *env) {
	char tok[8192];
	if (!env->daemon.token_file ||
		trt_read_token(env->daemon.token_file, tok, sizeof(tok)) <= 20 ||
		!trt_proc_log_contains(&env->daemon.proc, tok)) {
		return false;
	}
	fprintf(stderr, "# the worker token appears in the daemon's log\n");
	return true;
}

int e2e_stop(struct trt_env *env) {
	int d = trt_daemon_stop(env);
	int s = trt_sim_stop(env);
	bool leaked = token_logged(env);
	trt_env_done(env);
	if (d != 0) {
		fprintf(stderr, "# taskrouterd exit status %d\n", d);
	}
	if (s != 0) {
		fprintf(stderr, "# taskrouter-sim exit status %d\n", s);
	}
	return d != 0 ? d : s != 0 ? s : leaked ? -EPERM : 0;
}

struct e2e e2e;

int e2e_connect(void) {
	struct tr_json *r;
	if (trt_connect(e2e.env.daemon.socket_path, &e2e.rpc) < 0 ||
		trt_connect(e2e.env.daemon.socket_path, &e2e.sub) < 0) {
		return -1;
	}
	r = trt_call_ok(e2e.sub, "events.subscribe", "{}");
	tr_json_free(r);
	return r ? 0 : -1;
}

void e2e_disconnect(void) {
	trt_conn_free(e2e.rpc);
	trt_conn_free(e2e.sub);
	e2e.rpc = e2e.sub = NULL;
}

struct trt_conn *e2e_open(void) {
	struct trt_conn *c = NULL;
	assert_int_equal(trt_connect(e2e.env.daemon.socket_path, &c), 0);
	return c;
}

struct trt_conn *e2e_open_subscribed(const char *params) {
	struct trt_conn *c = e2e_open();
	tr_json_free(e2e_subscribe(c, params));
	return c;
}

int e2e_setup(void **state) {
	const struct e2e_args *args = *state;
	if (e2e_start(&e2e.env, args ? args->sim : NULL, args ? args->daemon : NULL) < 0) {
		return -1;
	}
	if (e2e_connect() < 0) {
		/* no teardown follows a failed setup */
		e2e_disconnect();
		(void)e2e_stop(&e2e.env);
		return -1;
	}
	return 0;
}

int e2e_teardown(void **state) {
	(void)state;
	e2e_disconnect();
	return e2e_stop(&e2e.env) == 0 ? 0 : -1;
}

void e2e_restart_daemon(struct trt_env *env, const char *const *daemon_extra) {
	assert_int_equal(trt_daemon_stop(env), 0);
	assert_int_equal(trt_daemon_start(env, "alice", daemon_extra), 0);
	assert_int_equal(trt_daemon_wait_status(env, "ready", E2E_WAIT), 0);
}

void e2e_restart_with_task_while_down(char sid[35], char res[35]) {
	e2e_disconnect();
	assert_int_equal(trt_daemon_stop(&e2e.env), 0);
	assert_int_equal(trt_sim_create_task(&e2e.env, "alice", "voice", "{\"while\":\"down\"}",
				 false, sid, res),
		0);
	assert_int_equal(trt_daemon_start(&e2e.env, "alice", NULL), 0);
	assert_int_equal(trt_daemon_wait_status(&e2e.env, "ready", E2E_WAIT), 0);
	assert_int_equal(e2e_connect(), 0);
}

char *e2e_mint_token(struct trt_env *env, int ttl) {
	struct tr_json *r = NULL;
	char *tok;
	assert_int_equal(trt_sim_http(env, "POST", "/sim/tokens",
				 trt_fmt("{\"worker\":\"alice\",\"ttl\":%d}", ttl), &r),
		200);
	tok = strdup(e2e_str(r, "token"));
	assert_non_null(tok);
	tr_json_free(r);
	return tok;
}

void e2e_assert_contains(const char *text, const char *needle) {
	if (!text || !strstr(text, needle)) {
		fprintf(stderr, "# expected '%s' in output:\n%s\n", needle, text ? text : "(null)");
		fail();
	}
}

void e2e_sim_post(struct trt_env *env, const char *path, const char *body) {
	int st = trt_sim_http(env, "POST", path, body, NULL);
	if (st != 200) {
		fprintf(stderr, "# POST %s %s: %d\n", path, body ? body : "", st);
		fail();
	}
}

void e2e_wait_event(struct trt_conn *c, const char *name, const char *sid) {
	int r = trt_wait_event(c, name, sid, E2E_WAIT, NULL);
	if (r < 0) {
		fprintf(stderr, "# no %s event%s%s: %s\n", name, sid ? " for " : "", sid ? sid : "",
			strerror(-r));
		fail();
	}
}

void e2e_wait_reconnected(struct trt_conn *c, const char *why) {
	static const char *const events[] = {"disconnected", "ready"};
	for (size_t i = 0; i < 2; i++) {
		if (trt_wait_event(c, events[i], NULL, E2E_WAIT, NULL) != 0) {
			fprintf(stderr, "# no %s event after %s\n", events[i], why);
			fail();
		}
	}
}

int64_t e2e_task_version(struct trt_conn *c, const char *sid) {
	struct tr_json *t = trt_call_ok(c, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid));
	int64_t v;
	assert_non_null(t);
	v = e2e_version(t);
	tr_json_free(t);
	return v;
}

const char *e2e_worker_sid(struct trt_env *env, const char *name) {
	static char sid[64];
	struct tr_json *state = NULL;
	const char *s = NULL;
	if (trt_sim_http(env, "GET", "/sim/state", NULL, &state) == 200) {
		s = tr_json_get_string(
			trt_json_find(tr_json_get(state, "workers"), "name", name), "sid");
	}
	snprintf(sid, sizeof(sid), "%s", s ? s : "");
	tr_json_free(state);
	return sid;
}

void e2e_new_task(
	struct trt_env *env, struct trt_conn *sub, bool accept, char sid[35], char res[35]) {
	assert_int_equal(trt_sim_create_task(env, "alice", "voice", "{\"type\":\"support\"}", false,
				 sid, res),
		0);
	e2e_wait_event(sub, "reservationCreated", sid);
	if (accept) {
		e2e_sim_post(env, trt_fmt("/sim/reservations/%s/accept", res), NULL);
		e2e_wait_event(sub, "reservationAccepted", sid);
	}
}

struct tr_json *e2e_subscribe(struct trt_conn *c, const char *params) {
	struct tr_json *r = trt_call_ok(c, "events.subscribe", params ? params : "{}");
	assert_non_null(r);
	return r;
}

const char *e2e_str(const struct tr_json *obj, const char *key) {
	const char *s = tr_json_get_string(obj, key);
	if (!s) {
		fprintf(stderr, "# member %s missing or not a string\n", key);
	}
	assert_non_null(s);
	return s;
}

int64_t e2e_int(const struct tr_json *obj, const char *key) {
	int64_t v = 0;
	if (tr_json_get_int(obj, key, &v) < 0) {
		fprintf(stderr, "# member %s missing or not an integer\n", key);
		fail();
	}
	return v;
}

int64_t e2e_version(const struct tr_json *task) {
	const char *v = tr_json_get_string(task, "version");
	assert_non_null(v);
	return strtoll(v, NULL, 10);
}

struct tr_json *e2e_sim_attributes(const struct tr_json *sim_task) {
	const char *s = tr_json_get_string(sim_task, "attributes");
	struct tr_json *v = NULL;
	assert_non_null(s);
	assert_int_equal(tr_json_parse(s, strlen(s), &v, NULL), 0);
	return v;
}

struct tr_json *e2e_last_request(struct trt_env *env) {
	struct tr_json *list = trt_sim_requests(env), *last = NULL;
	if (list && list->u.arr.n) {
		last = tr_json_dup(list->u.arr.items[list->u.arr.n - 1]);
	}
	tr_json_free(list);
	return last;
}

static const char *res_task_sid(const struct tr_json *r) {
	const char *s = tr_json_get_string(r, "task_sid");
	if (!s) {
		s = tr_json_get_string(tr_json_get(r, "task"), "sid");
	}
	return s;
}

static bool final_status(const char *s) {
	return s && (strcmp(s, "completed") == 0 || strcmp(s, "canceled") == 0);
}

void e2e_big_updates(struct trt_env *env, struct trt_conn *watcher, const char *sid, int count,
	size_t blob_len) {
	for (int i = 0; i < count; i++) {
		e2e_sim_big_update(env, sid, i, blob_len);
		e2e_wait_event(watcher, "updated", sid);
	}
}

void e2e_sim_big_update(struct trt_env *env, const char *sid, int i, size_t blob_len) {
	char *blob = malloc(blob_len + 1), *body = NULL;
	assert_non_null(blob);
	memset(blob, 'b', blob_len);
	blob[blob_len] = '\0';
	assert_true(asprintf(&body, "{\"attributes\":{\"i\":%d,\"b\":\"%s\"}}", i, blob) > 0);
	free(blob);
	e2e_sim_post(env, trt_fmt("/sim/tasks/%s/update", sid), body);
	free(body);
}

struct tr_json *e2e_list_all(struct trt_conn *c) {
	struct tr_json *all = tr_json_new_object(), *arr = tr_json_new_array();
	char after[64] = "";
	assert_non_null(all);
	assert_non_null(arr);
	for (;;) {
		struct tr_json *page = trt_call_ok(c, "task.list",
			after[0] ? trt_fmt("{\"after\":\"%s\"}", after) : "{}");
		const struct tr_json *tasks, *next;
		assert_non_null(page);
		tasks = tr_json_get(page, "tasks");
		assert_true(tr_json_is(tasks, TR_JSON_ARRAY));
		for (size_t i = 0; i < tasks->u.arr.n; i++) {
			assert_int_equal(tr_json_array_append(arr, tr_json_dup(tasks->u.arr.items[i])), 0);
		}
		next = tr_json_get(page, "next");
		if (!tr_json_is(next, TR_JSON_STRING)) {
			tr_json_free(page);
			break;
		}
		snprintf(after, sizeof(after), "%s", next->u.str.s);
		tr_json_free(page);
	}
	assert_int_equal(tr_json_object_set(all, "tasks", arr), 0);
	return all;
}

void e2e_assert_cache_matches(struct trt_env *env, struct trt_conn *c) {
	struct tr_json *state = NULL, *list;
	const struct tr_json *reservations, *tasks;
	char alice[64];
	size_t live = 0;

	snprintf(alice, sizeof(alice), "%s", e2e_worker_sid(env, "alice"));
	assert_int_equal(trt_sim_http(env, "GET", "/sim/state", NULL, &state), 200);
	list = e2e_list_all(c);
	assert_non_null(list);
	tasks = tr_json_get(list, "tasks");
	assert_true(tr_json_is(tasks, TR_JSON_ARRAY));
	reservations = tr_json_get(state, "reservations");
	assert_true(tr_json_is(reservations, TR_JSON_ARRAY));

	for (size_t i = 0; i < reservations->u.arr.n; i++) {
		const struct tr_json *r = reservations->u.arr.items[i];
		const char *ws = tr_json_get_string(r, "worker_sid");
		const char *st = tr_json_get_string(r, "reservation_status");
		const char *ts = res_task_sid(r);
		const struct tr_json *simtask, *t;
		if (!ws || strcmp(ws, alice) != 0 || !st || !ts ||
			!(strcmp(st, "pending") == 0 || strcmp(st, "accepted") == 0 ||
				strcmp(st, "wrapping") == 0)) {
			continue;
		}
		live++;
		/* from the same state dump (one GET, not one per task) */
		simtask = trt_json_find(tr_json_get(state, "tasks"), "sid", ts);
		assert_non_null(simtask);
		t = trt_json_find(tasks, "sid", ts);
		if (!t) {
			fprintf(stderr, "# task %s (reservation %s, %s) missing from the daemon\n", ts,
				e2e_str(r, "sid"), st);
			fail();
		}
		if (e2e_version(t) != e2e_int(simtask, "version") ||
			strcmp(e2e_str(t, "wireStatus"), e2e_str(simtask, "assignment_status")) !=
				0) {
			fprintf(stderr, "# task %s: daemon v%lld %s, simulator v%lld %s\n", ts,
				(long long)e2e_version(t), e2e_str(t, "wireStatus"),
				(long long)e2e_int(simtask, "version"),
				e2e_str(simtask, "assignment_status"));
			fail();
		}
	}
	/* nothing else, except recently closed tasks */
	{
		size_t open = 0;
		for (size_t j = 0; j < tasks->u.arr.n; j++) {
			if (!final_status(e2e_str(tasks->u.arr.items[j], "wireStatus"))) {
				open++;
			}
		}
		if (open != live) {
			fprintf(stderr, "# the daemon holds %zu open tasks, the simulator %zu\n", open,
				live);
			fail();
		}
	}
	tr_json_free(list);
	tr_json_free(state);
}

struct tr_json *e2e_upstream(struct trt_env *env, const struct tr_json **ret_up) {
	struct trt_conn *c = NULL;
	struct tr_json *st;

	assert_int_equal(trt_connect(env->daemon.socket_path, &c), 0);
	st = trt_call_ok(c, "daemon.status", NULL);
	assert_non_null(st);
	trt_conn_free(c);
	*ret_up = tr_json_get(st, "upstream");
	assert_non_null(*ret_up);
	return st;
}

bool e2e_env_ipv6(struct trt_env *env, bool tls) {
	if (!trt_have_ipv6_loopback()) {
		print_message("# [::1] cannot be bound here: nothing tried\n");
		return false;
	}
	assert_int_equal(trt_env_init(env), 0);
	if (tls) {
		assert_int_equal(trt_env_tls(env), 0);
	}
	env->sim.host = "::1";
	env->sim.url_host = NULL;
	return true;
}

void e2e_task_round_trip(struct trt_env *env, const char *tag) {
	struct trt_conn *c = NULL, *sub = NULL;
	struct tr_json *ev = NULL, *r;
	char sid[35], res[35];

	assert_int_equal(trt_connect(env->daemon.socket_path, &c), 0);
	assert_int_equal(trt_connect(env->daemon.socket_path, &sub), 0);
	tr_json_free(e2e_subscribe(sub, NULL));
	assert_int_equal(trt_sim_create_task(env, "alice", "voice",
				 trt_fmt("{\"via\":\"%s\"}", tag), false, sid, res),
		0);
	assert_int_equal(trt_wait_event(sub, "reservationCreated", sid, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	r = trt_call_ok(c, "reservation.accept", trt_fmt("{\"sid\":\"%s\"}", res));
	assert_non_null(r);
	tr_json_free(r);
	r = trt_call_ok(c, "task.setAttributes",
		trt_fmt("{\"sid\":\"%s\",\"attributes\":{\"via\":\"%s\",\"ok\":true}}", sid,
			tag));
	assert_non_null(r);
	tr_json_free(r);
	e2e_wait_event(sub, "updated", sid);
	trt_conn_free(sub);
	trt_conn_free(c);
}
