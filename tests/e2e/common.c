/* common.c — see common.h. */
#include "common.h"

#include <errno.h>

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

int e2e_start_connected(struct trt_env *env, struct trt_conn **ret_rpc, struct trt_conn **ret_sub) {
	struct trt_conn *rpc = NULL, *sub = NULL;
	struct tr_json *r = NULL;

	if (e2e_start(env, NULL, NULL) < 0) {
		return -1;
	}
	if ((ret_rpc && trt_connect(env->daemon.socket_path, &rpc) < 0) ||
		trt_connect(env->daemon.socket_path, &sub) < 0 ||
		!(r = trt_call_ok(sub, "events.subscribe", "{}"))) {
		trt_conn_free(rpc);
		trt_conn_free(sub);
		(void)e2e_stop(env);
		return -1;
	}
	tr_json_free(r);
	if (ret_rpc) {
		*ret_rpc = rpc;
	}
	*ret_sub = sub;
	return 0;
}

/* The worker token must never show up in the daemon's log. */
static void check_token_not_logged(struct trt_env *env) {
	char tok[8192];
	FILE *f;
	size_t n;
	if (!env->daemon.token_file || !(f = fopen(env->daemon.token_file, "r"))) {
		return;
	}
	n = fread(tok, 1, sizeof(tok) - 1, f);
	fclose(f);
	tok[n] = '\0';
	tok[strcspn(tok, "\r\n")] = '\0';
	if (strlen(tok) > 20 && trt_proc_log_contains(&env->daemon.proc, tok)) {
		fprintf(stderr, "# the worker token appears in the daemon's log\n");
		fail();
	}
}

int e2e_stop(struct trt_env *env) {
	int d = trt_daemon_stop(env);
	int s = trt_sim_stop(env);
	check_token_not_logged(env);
	trt_env_done(env);
	if (d != 0) {
		fprintf(stderr, "# taskrouterd exit status %d\n", d);
	}
	if (s != 0) {
		fprintf(stderr, "# taskrouter-sim exit status %d\n", s);
	}
	return d != 0 ? d : s;
}

const char *e2e_worker_sid(struct trt_env *env, const char *name) {
	static char sid[64];
	struct tr_json *state = NULL;
	const struct tr_json *workers;
	sid[0] = '\0';
	if (trt_sim_http(env, "GET", "/sim/state", NULL, &state) != 200 || !state) {
		tr_json_free(state);
		return sid;
	}
	workers = tr_json_get(state, "workers");
	if (tr_json_is(workers, TR_JSON_ARRAY)) {
		for (size_t i = 0; i < workers->u.arr.n; i++) {
			const struct tr_json *w = workers->u.arr.items[i];
			const char *fn = tr_json_get_string(w, "friendly_name");
			if (!fn) {
				fn = tr_json_get_string(w, "name");
			}
			if (fn && strcmp(fn, name) == 0 && tr_json_get_string(w, "sid")) {
				snprintf(sid, sizeof(sid), "%s", tr_json_get_string(w, "sid"));
			}
		}
	} else if (tr_json_is(workers, TR_JSON_OBJECT)) {
		const struct tr_json *w = tr_json_get(workers, name);
		if (w && tr_json_get_string(w, "sid")) {
			snprintf(sid, sizeof(sid), "%s", tr_json_get_string(w, "sid"));
		}
	}
	tr_json_free(state);
	return sid;
}

void e2e_new_task(struct trt_env *env, struct trt_conn *sub, bool accept, char sid[35],
	char res[35]) {
	struct tr_json *ev = NULL;
	assert_int_equal(trt_sim_create_task(env, "alice", "voice", "{\"type\":\"support\"}", false,
				 sid, res),
		0);
	assert_int_equal(trt_wait_event(sub, "reservationCreated", sid, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	if (accept) {
		assert_int_equal(trt_sim_http(env, "POST", trt_fmt("/sim/reservations/%s/accept", res),
					 NULL, NULL),
			200);
		assert_int_equal(trt_wait_event(sub, "reservationAccepted", sid, E2E_WAIT, &ev), 0);
		tr_json_free(ev);
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
	struct tr_json *r = NULL, *last = NULL;
	const struct tr_json *list;
	if (trt_sim_http(env, "GET", "/sim/requests", NULL, &r) != 200 || !r) {
		tr_json_free(r);
		return NULL;
	}
	list = tr_json_is(r, TR_JSON_ARRAY) ? r : tr_json_get(r, "requests");
	if (tr_json_is(list, TR_JSON_ARRAY) && list->u.arr.n) {
		last = tr_json_dup(list->u.arr.items[list->u.arr.n - 1]);
	}
	tr_json_free(r);
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

void e2e_big_updates(struct trt_conn *rpc, struct trt_conn *watcher, const char *sid, int count,
	size_t blob_len) {
	char *big = malloc(blob_len + 1), *params = NULL;
	assert_non_null(big);
	memset(big, 'b', blob_len);
	big[blob_len] = '\0';
	for (int i = 0; i < count; i++) {
		struct tr_json *r, *ev = NULL;
		assert_true(asprintf(&params, "{\"sid\":\"%s\",\"attributes\":{\"i\":%d,\"b\":\"%s\"}}",
				    sid, i, big) > 0);
		r = trt_call_ok(rpc, "task.setAttributes", params);
		free(params);
		assert_non_null(r);
		tr_json_free(r);
		assert_int_equal(trt_wait_event(watcher, "updated", sid, E2E_WAIT, &ev), 0);
		tr_json_free(ev);
	}
	free(big);
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
		struct tr_json *simtask;
		bool found = false;
		if (!ws || strcmp(ws, alice) != 0 || !st || !ts ||
			!(strcmp(st, "pending") == 0 || strcmp(st, "accepted") == 0 ||
				strcmp(st, "wrapping") == 0)) {
			continue;
		}
		live++;
		simtask = NULL;
		{
			/* from the same state dump (one GET, not one per task) */
			const struct tr_json *st_tasks = tr_json_get(state, "tasks");
			for (size_t k = 0; st_tasks && k < st_tasks->u.arr.n; k++) {
				const char *s2 = tr_json_get_string(st_tasks->u.arr.items[k], "sid");
				if (s2 && strcmp(s2, ts) == 0) {
					simtask = tr_json_dup(st_tasks->u.arr.items[k]);
					break;
				}
			}
		}
		assert_non_null(simtask);
		for (size_t j = 0; j < tasks->u.arr.n; j++) {
			const struct tr_json *t = tasks->u.arr.items[j];
			if (strcmp(e2e_str(t, "sid"), ts) != 0) {
				continue;
			}
			found = true;
			if (e2e_version(t) != e2e_int(simtask, "version") ||
				strcmp(e2e_str(t, "wireStatus"),
					e2e_str(simtask, "assignment_status")) != 0) {
				fprintf(stderr, "# task %s: daemon v%lld %s, simulator v%lld %s\n", ts,
					(long long)e2e_version(t), e2e_str(t, "wireStatus"),
					(long long)e2e_int(simtask, "version"),
					e2e_str(simtask, "assignment_status"));
				fail();
			}
		}
		if (!found) {
			fprintf(stderr, "# task %s (reservation %s, %s) missing from the daemon\n", ts,
				e2e_str(r, "sid"), st);
			fail();
		}
		tr_json_free(simtask);
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
