/*
 * Unit tests of daemon/methods.c (pure request builders, table-driven) and, over a
 * real Unix socket on a real loop, rpcsrv.c + core.c + subs.c with the bridge stubbed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "bridge.h"
#include "core.h"
#include "daemon.h"
#include "config.h"
#include "json.h"
#include "tr-limits.h"
#include "cache.h"
#include "local-methods.h"
#include "task-methods.h"
#include "subs.h"
#include "rpc.h"
#include "bridge-stub.h"
#include "rpc-client.h"
#include "trtest.h"
#include "rpcsrv.h"

#define WT "WT0fbc4e6335fcc52ed96c632c85599ed7"
#define WR "WR8a81d7d820fcf01ee85c778912a385f0"

/* ---- fixtures ---- */

static char *task_text(const char *status, int version) {
	static char b[1024];

	snprintf(b, sizeof(b),
		"{\"sid\":\"" WT "\",\"assignment_status\":\"%s\",\"attributes\":\"{}\",\"addons\":\"{}\","
		"\"age\":1,\"priority\":0,\"reason\":null,\"timeout\":3600,\"queue_sid\":\"WQ1\","
		"\"queue_name\":\"Q\",\"workflow_sid\":\"WW1\",\"workflow_name\":\"W\","
		"\"task_channel_sid\":\"TC1\",\"task_channel_unique_name\":\"voice\","
		"\"routing_target\":null,\"date_created\":1735819200,\"date_updated\":1735819200,"
		"\"virtual_start_time\":1735819200,\"version\":%d}", status, version);
	return b;
}

static struct tr_json *parse(const char *s) {
	struct tr_json *j = NULL;

	assert_int_equal(tr_json_parse(s, strlen(s), &j, NULL), 0);
	return j;
}

static struct tr_cache *make_cache(const char *res_status) {
	struct tr_cache *c = tr_cache_new(0, NULL, NULL);
	char buf[2048];
	struct tr_json *j;

	assert_non_null(c);
	snprintf(buf, sizeof(buf), "{\"sid\":\"" WR "\",\"reservation_status\":\"%s\",\"task\":%s}",
		res_status, task_text("assigned", 7));
	j = parse(buf);
	assert_int_equal(tr_cache_apply(c, "reservation.created", j, 0), 0);
	tr_json_free(j);
	return c;
}

/* ---- table: bad params ---- */

static void test_bad_params(void **state) {
	static const struct {
		const char *method;
		const char *params;
		int code;
		const char *param;
	} cases[] = {
		{ "task.complete", "{}", TR_RPC_INVALID_PARAMS, "sid" },
		{ "task.complete", "{\"sid\":1}", TR_RPC_INVALID_PARAMS, "sid" },
		{ "task.complete", "{\"sid\":\"\"}", TR_RPC_INVALID_PARAMS, "sid" },
		{ "task.complete", "{\"sid\":\"" WT "\"}", TR_RPC_INVALID_PARAMS, "reason" },
		{ "task.complete", "{\"sid\":\"" WT "\",\"reason\":5}", TR_RPC_INVALID_PARAMS, "reason" },
		{ "task.complete", "{\"sid\":\"WTnope\",\"reason\":\"x\"}", TR_RPC_NOT_FOUND, "sid" },
		{ "task.wrapUp", "{\"sid\":\"" WT "\",\"reason\":true}", TR_RPC_INVALID_PARAMS, "reason" },
		{ "task.setAttributes", "{\"sid\":\"" WT "\"}", TR_RPC_INVALID_PARAMS, "attributes" },
		{ "task.setAttributes", "{\"sid\":\"" WT "\",\"attributes\":\"{}\"}", TR_RPC_INVALID_PARAMS, "attributes" },
		{ "task.setAttributes", "{\"sid\":\"" WT "\",\"attributes\":null}", TR_RPC_INVALID_PARAMS, "attributes" },
		{ "task.setVirtualStartTime", "{\"sid\":\"" WT "\"}", TR_RPC_INVALID_PARAMS, "time" },
		{ "task.setVirtualStartTime", "{\"sid\":\"" WT "\",\"time\":\"yesterday\"}", TR_RPC_INVALID_PARAMS, "time" },
		{ "task.setVirtualStartTime", "{\"sid\":\"" WT "\",\"time\":\"2025-13-01T00:00:00Z\"}", TR_RPC_INVALID_PARAMS, "time" },
		{ "task.setVirtualStartTime", "{\"sid\":\"" WT "\",\"time\":\"2025-01-01T00:00:00\"}", TR_RPC_INVALID_PARAMS, "time" },
		{ "task.setVirtualStartTime", "{\"sid\":\"" WT "\",\"time\":1.5}", TR_RPC_INVALID_PARAMS, "time" },
		{ "task.hold", "{\"sid\":\"" WT "\",\"onHold\":true}", TR_RPC_INVALID_PARAMS, "targetWorkerSid" },
		{ "task.hold", "{\"sid\":\"" WT "\",\"targetWorkerSid\":\"WK2\"}", TR_RPC_INVALID_PARAMS, "onHold" },
		{ "task.hold", "{\"sid\":\"" WT "\",\"targetWorkerSid\":\"WK2\",\"onHold\":1}", TR_RPC_INVALID_PARAMS, "onHold" },
		{ "task.hold", "{\"sid\":\"" WT "\",\"targetWorkerSid\":\"WK2\",\"onHold\":true,\"holdUrl\":1}", TR_RPC_INVALID_PARAMS, "holdUrl" },
		{ "task.hold", "{\"sid\":\"" WT "\",\"targetWorkerSid\":\"WK2\",\"onHold\":true,\"holdMethod\":[]}", TR_RPC_INVALID_PARAMS, "holdMethod" },
		{ "task.kick", "{\"sid\":\"" WT "\"}", TR_RPC_INVALID_PARAMS, "workerSid" },
		{ "task.kick", "{\"sid\":\"" WT "\",\"workerSid\":{}}", TR_RPC_INVALID_PARAMS, "workerSid" },
		{ "task.transfer", "{\"sid\":\"" WT "\"}", TR_RPC_INVALID_PARAMS, "to" },
		{ "task.transfer", "{\"sid\":\"" WT "\",\"to\":\"WK2\",\"mode\":\"HOT\"}", TR_RPC_INVALID_PARAMS, "mode" },
		{ "task.transfer", "{\"sid\":\"" WT "\",\"to\":\"WK2\",\"mode\":\"WARMER\"}", TR_RPC_INVALID_PARAMS, "mode" },
		{ "task.transfer", "{\"sid\":\"" WT "\",\"to\":\"WK2\",\"priority\":-1}", TR_RPC_INVALID_PARAMS, "priority" },
		{ "task.transfer", "{\"sid\":\"" WT "\",\"to\":\"WK2\",\"priority\":\"1\"}", TR_RPC_INVALID_PARAMS, "priority" },
		{ "task.transfer", "{\"sid\":\"" WT "\",\"to\":\"WK2\",\"attributes\":[]}", TR_RPC_INVALID_PARAMS, "attributes" },
		{ "task.updateParticipant", "{\"sid\":\"" WT "\",\"hold\":\"yes\"}", TR_RPC_INVALID_PARAMS, "hold" },
		{ "task.updateParticipant", "{\"sid\":\"" WT "\",\"holdUrl\":false}", TR_RPC_INVALID_PARAMS, "holdUrl" },
		{ "task.cancelTransfer", "{\"sid\":\"" WT "\"}", TR_RPC_INVALID_STATE, "sid" },
		{ "task.fetchLatestVersion", "{\"sid\":\"WT9\"}", TR_RPC_NOT_FOUND, "sid" },
	};
	struct tr_cache *c = make_cache("accepted");

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tr_json *p = parse(cases[i].params);
		struct tr_methods_req r = { 0 };
		struct tr_methods_err e = { 0 };
		const struct tr_cache_task *t = tr_cache_get(c, tr_json_get_string(p, "sid"));

		print_message("# case %zu: %s %s\n", i, cases[i].method, cases[i].params);
		assert_int_equal(tr_task_methods_build(cases[i].method, p, t, WS, WK, true, &r, &e), -EINVAL);
		assert_int_equal(e.code, cases[i].code);
		assert_string_equal(e.param, cases[i].param);
		assert_non_null(e.reason);
		assert_null(r.params);
		tr_json_free(p);
	}
	{
		struct tr_json *p = parse("{\"sid\":\"" WT "\"}");
		struct tr_methods_req r = { 0 };
		struct tr_methods_err e = { 0 };

		assert_int_equal(tr_task_methods_build("task.get", p, tr_cache_get(c, WT), WS, WK, true, &r,
			&e), -ENOENT);
		tr_json_free(p);
	}
	/* attributes past TaskRouter's limit (compact JSON bytes) are refused before sending;
	 * exactly at the limit they go */
	for (int over = 0; over < 2; over++) {
		/* {"sid":"WT…","attributes":{"k":"xxx…"}}: the object is {"k":"…"}, 8 bytes + n */
		size_t n = TR_TASK_ATTRIBUTES_MAX - 8 + (size_t)over;
		char *text = malloc(n + 200);
		struct tr_json *p;
		struct tr_methods_req r = { 0 };
		struct tr_methods_err e = { 0 };
		const char *const methods[] = { "task.setAttributes", "task.transfer" };

		assert_non_null(text);
		for (size_t k = 0; k < 2; k++) {
			int len = snprintf(text, 200, "{\"sid\":\"" WT "\",\"to\":\"WK2\",\"attributes\":{\"k\":\"");
			memset(text + len, 'x', n);
			strcpy(text + len + n, "\"}}");
			p = parse(text);
			r = (struct tr_methods_req){ 0 };
			e = (struct tr_methods_err){ 0 };
			if (over) {
				assert_int_equal(tr_task_methods_build(methods[k], p, tr_cache_get(c, WT), WS,
					WK, true, &r, &e), -EINVAL);
				assert_string_equal(e.param, "attributes");
				assert_non_null(strstr(e.reason, "too large"));
				assert_null(r.params);
			} else {
				assert_int_equal(tr_task_methods_build(methods[k], p, tr_cache_get(c, WT), WS,
					WK, true, &r, &e), 0);
				tr_task_methods_req_done(&r);
			}
			tr_json_free(p);
		}
		free(text);
	}
	tr_cache_free(c);
}

/* ---- table: exact requests ---- */

static void test_requests(void **state) {
	static const struct {
		const char *method;
		const char *params;
		bool version_check;
		const char *path;
		const char *http;
		const char *api;
		const char *body;
		int64_t if_match;
	} cases[] = {
		{ "task.complete", "{\"sid\":\"" WT "\",\"reason\":\"done\"}", true,
			"Workspaces/" WS "/Tasks/" WT, "POST", "v1",
			"{\"AssignmentStatus\":\"completed\",\"Reason\":\"done\"}", 7 },
		{ "task.complete", "{\"sid\":\"" WT "\",\"reason\":\"\"}", false,
			"Workspaces/" WS "/Tasks/" WT, "POST", "v1",
			"{\"AssignmentStatus\":\"completed\",\"Reason\":\"\"}", -1 },
		{ "task.wrapUp", "{\"sid\":\"" WT "\"}", true, "Workspaces/" WS "/Tasks/" WT, "POST", "v1",
			"{\"AssignmentStatus\":\"wrapping\"}", 7 },
		{ "task.wrapUp", "{\"sid\":\"" WT "\",\"reason\":\"\"}", true, "Workspaces/" WS "/Tasks/" WT,
			"POST", "v1", "{\"AssignmentStatus\":\"wrapping\"}", 7 },
		{ "task.wrapUp", "{\"sid\":\"" WT "\",\"reason\":\"r\"}", true, "Workspaces/" WS "/Tasks/" WT,
			"POST", "v1", "{\"AssignmentStatus\":\"wrapping\",\"Reason\":\"r\"}", 7 },
		{ "task.setAttributes", "{\"sid\":\"" WT "\",\"attributes\":{\"a\":[1,{\"b\":null}]}}", true,
			"Workspaces/" WS "/Tasks/" WT, "POST", "v1", "{\"Attributes\":{\"a\":[1,{\"b\":null}]}}", 7 },
		{ "task.setVirtualStartTime", "{\"sid\":\"" WT "\",\"time\":\"2025-01-02T12:00:00.789Z\"}", true,
			"Workspaces/" WS "/Tasks/" WT, "POST", "v1", "{\"VirtualStartTime\":\"2025-01-02T12:00:00Z\"}", 7 },
		{ "task.setVirtualStartTime", "{\"sid\":\"" WT "\",\"time\":\"2025-01-02T14:30:00+02:30\"}", true,
			"Workspaces/" WS "/Tasks/" WT, "POST", "v1", "{\"VirtualStartTime\":\"2025-01-02T12:00:00Z\"}", 7 },
		{ "task.setVirtualStartTime", "{\"sid\":\"" WT "\",\"time\":1735819200}", true,
			"Workspaces/" WS "/Tasks/" WT, "POST", "v1", "{\"VirtualStartTime\":\"2025-01-02T12:00:00Z\"}", 7 },
		{ "task.fetchLatestVersion", "{\"sid\":\"" WT "\"}", true, "Workspaces/" WS "/Tasks/" WT, "GET",
			"v1", "{}", -1 },
		{ "task.hold", "{\"sid\":\"" WT "\",\"targetWorkerSid\":\"WK2\",\"onHold\":false}", true,
			"Workspaces/" WS "/Workers/" WK "/HoldWorkerParticipant", "POST", "v2",
			"{\"TaskSid\":\"" WT "\",\"TargetWorkerSid\":\"WK2\",\"Hold\":false}", -1 },
		{ "task.hold", "{\"sid\":\"" WT "\",\"targetWorkerSid\":\"WK2\",\"onHold\":true,\"holdUrl\":\"u\",\"holdMethod\":\"GET\"}",
			true, "Workspaces/" WS "/Workers/" WK "/HoldWorkerParticipant", "POST", "v2",
			"{\"TaskSid\":\"" WT "\",\"TargetWorkerSid\":\"WK2\",\"Hold\":true,\"HoldUrl\":\"u\",\"HoldMethod\":\"GET\"}", -1 },
		{ "task.kick", "{\"sid\":\"" WT "\",\"workerSid\":\"WK3\"}", true,
			"Workspaces/" WS "/Workers/" WK "/KickWorkerParticipant", "POST", "v2",
			"{\"TaskSid\":\"" WT "\",\"TargetWorkerSid\":\"WK3\"}", -1 },
		{ "task.updateParticipant", "{\"sid\":\"" WT "\"}", true,
			"Workspaces/" WS "/Workers/" WK "/CustomerParticipant", "POST", "v2",
			"{\"TaskSid\":\"" WT "\"}", -1 },
		{ "task.updateParticipant", "{\"sid\":\"" WT "\",\"hold\":true,\"holdUrl\":\"u\",\"holdMethod\":\"POST\"}", true,
			"Workspaces/" WS "/Workers/" WK "/CustomerParticipant", "POST", "v2",
			"{\"TaskSid\":\"" WT "\",\"Hold\":true,\"HoldUrl\":\"u\",\"HoldMethod\":\"POST\"}", -1 },
		{ "task.transfer", "{\"sid\":\"" WT "\",\"to\":\"WK2\"}", true,
			"Workspaces/" WS "/Workers/" WK "/Transfers", "POST", "v2",
			"{\"ReservationSid\":\"" WR "\",\"TaskSid\":\"" WT "\",\"To\":\"WK2\"}", -1 },
		{ "task.transfer", "{\"sid\":\"" WT "\",\"to\":\"WQ2\",\"mode\":\"cold\",\"priority\":0,\"attributes\":{}}", true,
			"Workspaces/" WS "/Workers/" WK "/Transfers", "POST", "v2",
			"{\"ReservationSid\":\"" WR "\",\"TaskSid\":\"" WT "\",\"To\":\"WQ2\",\"Mode\":\"COLD\",\"Priority\":0,\"Attributes\":{}}", -1 },
	};
	struct tr_cache *c = make_cache("accepted");

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tr_json *p = parse(cases[i].params), *want = parse(cases[i].body);
		struct tr_methods_req r = { 0 };
		struct tr_methods_err e = { 0 };

		print_message("# case %zu: %s %s\n", i, cases[i].method, cases[i].params);
		assert_int_equal(tr_task_methods_build(cases[i].method, p, tr_cache_get(c, WT), WS, WK,
			cases[i].version_check, &r, &e), 0);
		assert_string_equal(r.path, cases[i].path);
		assert_string_equal(r.method, cases[i].http);
		assert_string_equal(r.api_version, cases[i].api);
		assert_int_equal(r.if_match, cases[i].if_match);
		assert_true(tr_json_equal(r.params, want));
		/* key order as documented */
		{
			char *a, *b;

			assert_int_equal(tr_json_dump(r.params, &a, NULL), 0);
			assert_int_equal(tr_json_dump(want, &b, NULL), 0);
			assert_string_equal(a, b);
			free(a);
			free(b);
		}
		tr_task_methods_req_done(&r);
		tr_json_free(p);
		tr_json_free(want);
	}
	tr_cache_free(c);
}

static void test_cancel_transfer_request(void **state) {
	struct tr_cache *c = make_cache("accepted");
	struct tr_json *p = parse("{\"sid\":\"" WT "\"}"), *x;
	struct tr_methods_req r = { 0 };
	struct tr_methods_err e = { 0 };
	char *text;

	(void)state;
	x = parse("{\"sid\":\"TT1\",\"task_sid\":\"" WT "\",\"transfer_type\":\"WORKER\","
		"\"transfer_mode\":\"WARM\",\"transfer_to\":\"WK2\",\"transfer_status\":\"initiated\","
		"\"initiating_reservation_sid\":\"" WR "\",\"date_created\":1,\"date_updated\":1}");
	assert_int_equal(tr_cache_apply_transfer_response(c, WT, x, 0), 0);
	tr_json_free(x);
	assert_int_equal(tr_task_methods_build("task.cancelTransfer", p, tr_cache_get(c, WT), WS, WK, true,
		&r, &e), 0);
	assert_string_equal(r.path, "Workspaces/" WS "/Workers/" WK "/Transfers/TT1");
	assert_string_equal(r.api_version, "v2");
	assert_int_equal(r.kind, TR_METHODS_TRANSFER);
	assert_int_equal(tr_json_dump(r.params, &text, NULL), 0);
	assert_string_equal(text, "{\"TaskSid\":\"" WT "\",\"TransferStatus\":\"canceled\"}");
	free(text);
	tr_task_methods_req_done(&r);
	/* a final transfer cannot be canceled */
	x = parse("{\"sid\":\"TT1\",\"transfer_status\":\"canceled\"}");
	assert_int_equal(tr_cache_apply_transfer_response(c, WT, x, 0), 0);
	tr_json_free(x);
	assert_int_equal(tr_task_methods_build("task.cancelTransfer", p, tr_cache_get(c, WT), WS, WK, true,
		&r, &e), -EINVAL);
	assert_int_equal(e.code, TR_RPC_INVALID_STATE);
	tr_json_free(p);
	tr_cache_free(c);
}

static void test_describe(void **state) {
	struct tr_json *d = tr_methods_describe(tr_daemon_methods, tr_subs_event_names);
	const struct tr_json *ms;
	bool found = false;

	(void)state;
	assert_non_null(d);
	ms = tr_json_get(d, "methods");
	assert_int_equal(ms->u.arr.n, 36);
	for (size_t i = 0; i < ms->u.arr.n; i++) {
		if (strcmp(tr_json_get_string(ms->u.arr.items[i], "name"), "task.transfer") == 0) {
			const struct tr_json *ps = tr_json_get(ms->u.arr.items[i], "params");

			assert_int_equal(ps->u.arr.n, 5);
			assert_string_equal(tr_json_get_string(ps->u.arr.items[3], "name"), "priority");
			assert_string_equal(tr_json_get_string(ps->u.arr.items[3], "type"), "integer");
			found = true;
		}
	}
	assert_true(found);
	assert_int_equal(tr_json_get(d, "events")->u.arr.n, 29);
	/* events.subscribe's `events` takes exactly the names rpc.describe lists */
	found = false;
	for (size_t i = 0; i < ms->u.arr.n; i++) {
		if (strcmp(tr_json_get_string(ms->u.arr.items[i], "name"), "events.subscribe") == 0) {
			const struct tr_json *p0 = tr_json_get(ms->u.arr.items[i], "params")->u.arr.items[0];

			assert_string_equal(tr_json_get_string(p0, "name"), "events");
			assert_true(tr_json_equal(tr_json_get(p0, "values"), tr_json_get(d, "events")));
			found = true;
		}
	}
	assert_true(found);
	tr_json_free(d);
}

/* Every row of the method table is in rpc.describe, in order, with the same parameters; and
 * the dispatcher's parameter checks come from the same rows. */
static void test_describe_is_the_table(void **state) {
	static const char *const types[] = { "string", "boolean", "integer", "object", "array",
		"string|integer", "boolean|string" };
	struct tr_json *d = tr_methods_describe(tr_daemon_methods, tr_subs_event_names);
	const struct tr_json *ms = tr_json_get(d, "methods");
	size_t k = 0;

	(void)state;
	for (const struct tr_method_table *const *t = tr_daemon_methods; *t; t++) {
		for (size_t i = 0; i < (*t)->n; i++, k++) {
			const struct tr_method *m = &(*t)->rows[i];
			const struct tr_json *dm = ms->u.arr.items[k], *ps = tr_json_get(dm, "params");
			size_t np = 0;

			assert_true(k < ms->u.arr.n);
			assert_string_equal(tr_json_get_string(dm, "name"), m->name);
			assert_ptr_equal(tr_methods_find(tr_daemon_methods, m->name), m);
			assert_non_null(m->handle);
			for (; m->params[np].name; np++) {
				const struct tr_json *dp = ps->u.arr.items[np];
				bool req = false;

				assert_true(np < ps->u.arr.n);
				assert_string_equal(tr_json_get_string(dp, "name"), m->params[np].name);
				assert_string_equal(tr_json_get_string(dp, "type"),
					types[m->params[np].type]);
				assert_int_equal(tr_json_get_bool(dp, "required", &req), 0);
				assert_int_equal(req, m->params[np].required);
				for (size_t q = 0; q < np; q++) { /* each parameter once */
					assert_string_not_equal(m->params[q].name, m->params[np].name);
				}
			}
			assert_int_equal(ps->u.arr.n, np);
		}
	}
	assert_int_equal(k, ms->u.arr.n);
	tr_json_free(d);
	assert_null(tr_methods_find(tr_daemon_methods, "task.nope"));
}

/* ---- over the socket ---- */

struct env {
	uv_loop_t loop;
	struct tr_config cfg;
	struct tr_daemon d;
	char dir[64];
	char path[128];
	bool closed;
};


static int env_setup(void **state) {
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	rpc_test_dir("tr-methods", e->dir, sizeof(e->dir), e->path, sizeof(e->path));
	stub_daemon_init(&e->d, &e->loop, &e->cfg);
	{
		const struct tr_rpcsrv_options opts = {
			.socket_path = e->path,
			.listen_fd = -1,
			.max_connections = 3,
		};
		const struct tr_rpcsrv_handlers h = {
			.dispatch = tr_local_methods_dispatch,
			.closed = tr_local_methods_conn_closed,
			.userdata = &e->d,
		};

		assert_int_equal(tr_rpcsrv_new(&e->loop, &opts, &h, &e->d.rpcsrv), 0);
	}
	*state = e;
	return 0;
}

static void on_closed(void *userdata) {
	struct env *e = userdata;

	e->closed = true;
}

static int env_teardown(void **state) {
	struct env *e = *state;

	tr_rpcsrv_close(e->d.rpcsrv, on_closed, e);
	while (!e->closed) {
		assert_int_equal(uv_run(&e->loop, UV_RUN_ONCE) >= 0, 1);
	}
	/* requests still pending upstream answer with -ECANCELED, as the bridge would */
	for (size_t i = 0; i < n_reqs; i++) {
		struct tr_upstream_reply rep = { .err = -ECANCELED, .message = "shutting down" };

		if (reqs[i].cb) {
			tr_upstream_cb cb = reqs[i].cb;

			reqs[i].cb = NULL;
			cb(reqs[i].userdata, &rep);
		}
	}
	reqs_clear();
	tr_core_done(&e->d);
	e->d.rpcsrv = tr_rpcsrv_free(e->d.rpcsrv);
	rpc_test_finish(&e->loop, e->dir, e->path);
	free(e);
	return 0;
}

static struct rpc_client *client_new(struct env *e) {
	return rpc_client_new(&e->loop, e->path);
}

static void add_task(struct env *e) {
	char buf[2048];
	struct tr_json *j;

	snprintf(buf, sizeof(buf), "{\"sid\":\"" WR "\",\"reservation_status\":\"accepted\",\"task\":%s}",
		task_text("assigned", 7));
	j = parse(buf);
	tr_core_bridge_events()->event(&e->d, "reservation.created", j);
	tr_json_free(j);
}

static void deliver(size_t i, long status, const char *payload, int err) {
	struct tr_json *p = payload ? parse(payload) : NULL;
	struct tr_upstream_reply rep = {
		.err = err,
		.http_status = status,
		.payload = p,
		.twilio_code = status >= 300 ? 20001 : 0,
		.message = status >= 300 || err ? "nope" : NULL,
	};
	tr_upstream_cb cb = reqs[i].cb;

	reqs[i].cb = NULL;
	cb(reqs[i].userdata, &rep);
	tr_json_free(p);
}

static void test_socket_basics(void **state) {
	struct env *e = *state;
	struct rpc_client *c = client_new(e);
	struct tr_json *m;

	/* the socket layer's own behaviour is test-rpcsrv's; here, dispatch through it */
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"rpc.describe\"}");
	assert_non_null(tr_json_get(tr_json_get(m, "result"), "methods"));
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"}");
	assert_int_equal(rpc_err_code(m), TR_RPC_METHOD_NOT_FOUND);
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"task.get\",\"params\":[1]}");
	assert_int_equal(rpc_err_code(m), TR_RPC_INVALID_PARAMS);
	assert_string_equal(rpc_err_param(m), "params");
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"task.get\",\"params\":{\"sid\":\"" WT "\"}}");
	assert_int_equal(rpc_err_code(m), TR_RPC_NOT_FOUND);
	tr_json_free(m);
	m = rpc_client_call(c, "{not json");
	assert_int_equal(rpc_err_code(m), TR_RPC_PARSE_ERROR);
	tr_json_free(m);
	/* a notification gets no reply: the next reply is for id 5 */
	rpc_client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.status\"}");
	add_task(e);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"task.list\"}");
	assert_int_equal(tr_json_get(m, "id")->u.num.i, 5);
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "tasks")->u.arr.n, 1);
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"task.list\",\"params\":{\"status\":\"pending\"}}");
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "tasks")->u.arr.n, 0);
	tr_json_free(m);
	/* a status in any letter case; an unknown one is refused, naming the values */
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"task.list\",\"params\":{\"status\":\"ASSIGNED\"}}");
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "tasks")->u.arr.n, 1);
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"task.list\",\"params\":{\"status\":\"bogus\"}}");
	assert_int_equal(rpc_err_code(m), TR_RPC_INVALID_PARAMS);
	assert_string_equal(rpc_err_param(m), "status");
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"task.get\",\"params\":{\"sid\":\"" WT "\"}}");
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "version"), "7");
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"daemon.status\"}");
	{
		const struct tr_json *r = tr_json_get(m, "result");

		assert_string_equal(tr_json_get_string(r, "state"), "ready");
		assert_int_equal(tr_json_get(r, "tasks")->u.num.i, 1);
		assert_int_equal(tr_json_get(r, "connections")->u.num.i, 1);
		assert_int_equal(tr_json_get(tr_json_get(r, "counters"), "parseErrors")->u.num.i, 1);
		assert_int_equal(tr_json_get(tr_json_get(r, "limits"), "inflight")->u.num.i,
			TR_RPC_MAX_INFLIGHT);
	}
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"daemon.updateToken\",\"params\":{\"token\":\"\"}}");
	assert_string_equal(rpc_err_param(m), "token");
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"daemon.updateToken\",\"params\":{\"token\":\"expired\"}}");
	assert_string_equal(tr_json_get_string(tr_json_get(tr_json_get(m, "error"), "data"), "reason"), "expired");
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"daemon.updateToken\",\"params\":{\"token\":\"good\"}}");
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "expiresAt")->u.num.i, 1900000000);
	tr_json_free(m);
	/* another worker's token: refused unless the switch is asked for */
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":12,\"method\":\"daemon.updateToken\",\"params\":{\"token\":\"other-worker\"}}");
	assert_int_equal(rpc_err_code(m), TR_RPC_NOT_PERMITTED);
	assert_string_equal(tr_json_get_string(tr_json_get(tr_json_get(m, "error"), "data"), "reason"), "identity");
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":13,\"method\":\"daemon.updateToken\",\"params\":{\"token\":\"other-worker\",\"switchWorker\":true}}");
	assert_non_null(tr_json_get(m, "result"));
	tr_json_free(m);
	rpc_client_free(c);
}

/* One connection holds at most TR_SUBS_PER_CONNECTION subscriptions: the next is refused
 * with -32007 {limit, value}, counted; another connection is not affected. */
static void test_subscription_cap(void **state) {
	struct env *e = *state;
	struct rpc_client *c = client_new(e), *o = client_new(e);
	struct tr_json *m;
	const char *sub = NULL;
	char req[160];

	for (int i = 0; i < TR_SUBS_PER_CONNECTION; i++) {
		snprintf(req, sizeof(req), "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"events.subscribe\"}", i);
		m = rpc_client_call(c, req);
		assert_non_null(tr_json_get(m, "result"));
		tr_json_free(m);
	}
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"events.subscribe\"}");
	assert_int_equal(rpc_err_code(m), TR_RPC_TOO_MANY_REQUESTS);
	assert_int_equal(tr_json_get(tr_json_get(tr_json_get(m, "error"), "data"), "limit")->u.num.i,
		TR_SUBS_PER_CONNECTION);
	tr_json_free(m);
	m = rpc_client_call(o, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}");
	sub = tr_json_get_string(tr_json_get(m, "result"), "subscription");
	assert_non_null(sub);
	tr_json_free(m);
	m = rpc_client_call(o, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"daemon.status\"}");
	assert_int_equal(tr_json_get(tr_json_get(tr_json_get(m, "result"), "counters"),
				 "subscriptionsRefusedCap")->u.num.i, 1);
	tr_json_free(m);
	rpc_client_free(c);
	rpc_client_free(o);
}

/* As nobody (a member of the allowed group 65534): call daemon.updateToken, then task.list.
 * Exit 0 when the first is refused with -32014 reason "owner" and the second answered. */
static int group_member_child(const char *path, int unused) {
	static const char *const calls[] = {
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.updateToken\",\"params\":{\"token\":\"good\"}}",
		"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"task.list\"}",
	};
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[4096];
	int fd;

	(void)unused;
	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0) {
		return 10;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		return 11;
	}
	for (int i = 0; i < 2; i++) {
		uint32_t n = (uint32_t)strlen(calls[i]);
		unsigned char hdr[4] = { n >> 24, n >> 16, n >> 8, n };
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t k;

		(void)send(fd, hdr, 4, MSG_NOSIGNAL);
		(void)send(fd, calls[i], n, MSG_NOSIGNAL);
		if (poll(&pfd, 1, 20000) <= 0 || (k = read(fd, buf, sizeof(buf) - 1)) <= 4) {
			return 12 + i;
		}
		buf[k] = '\0';
		if (i == 0 && !(strstr(buf + 4, "-32014") && strstr(buf + 4, "\"owner\""))) {
			return 20;
		}
		if (i == 1 && !strstr(buf + 4, "\"result\"")) {
			return 21;
		}
	}
	return 0;
}

/* daemon.updateToken is the owner's: an allowed group's member may use the daemon but not
 * replace its token. */
static void test_update_token_owner_only(void **state) {
	struct env *e = *state;
	char dir[128], path[160];
	struct tr_rpcsrv *srv = NULL;
	const struct tr_rpcsrv_handlers h = {
		.dispatch = tr_local_methods_dispatch,
		.closed = tr_local_methods_conn_closed,
		.userdata = &e->d,
	};
	struct tr_rpcsrv_options opts = { .listen_fd = -1, .allow_group_set = true,
		.allow_group = 65534 };

	if (getuid() != 0) {
		skip();
	}
	snprintf(dir, sizeof(dir), "%s/g", e->dir);
	snprintf(path, sizeof(path), "%s/g/run/socket", e->dir);
	assert_int_equal(chmod(e->dir, 0711), 0);
	assert_int_equal(mkdir(dir, 0711), 0);
	opts.socket_path = path;
	assert_int_equal(tr_rpcsrv_new(&e->loop, &opts, &h, &srv), 0);
	assert_int_equal(rpc_test_fork(&e->loop, group_member_child, path, 0), 0);
	e->closed = false;
	tr_rpcsrv_close(srv, on_closed, e);
	while (!e->closed) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	tr_rpcsrv_free(srv);
	e->closed = false; /* the teardown waits for the fixture's server with it */
	snprintf(path, sizeof(path), "%s/g/run", e->dir);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(chmod(e->dir, 0700), 0);
}

static void test_upstream_replies(void **state) {
	struct env *e = *state;
	struct rpc_client *c = client_new(e);
	struct tr_json *m;
	const char *complete = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"task.complete\","
		"\"params\":{\"sid\":\"" WT "\",\"reason\":\"ok\"}}";

	add_task(e);
	/* not connected / token expired: nothing sent */
	stub_state = TR_BRIDGE_RECONNECTING;
	m = rpc_client_call(c, complete);
	assert_int_equal(rpc_err_code(m), TR_RPC_NOT_CONNECTED);
	tr_json_free(m);
	stub_state = TR_BRIDGE_TOKEN_EXPIRED;
	m = rpc_client_call(c, complete);
	assert_int_equal(rpc_err_code(m), TR_RPC_TOKEN_EXPIRED);
	tr_json_free(m);
	stub_state = TR_BRIDGE_READY;
	stub_request_ret = -ENOTCONN;
	m = rpc_client_call(c, complete);
	assert_int_equal(rpc_err_code(m), TR_RPC_NOT_CONNECTED);
	tr_json_free(m);
	stub_request_ret = 0;
	assert_int_equal(n_reqs, 0);

	/* 2xx: the cache takes the new version and the reply is the Task */
	rpc_client_send(c, complete);
	while (n_reqs == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	assert_string_equal(reqs[0].path, "Workspaces/" WS "/Tasks/" WT);
	assert_int_equal(reqs[0].if_match, 7);
	assert_string_equal(reqs[0].params, "{\"AssignmentStatus\":\"completed\",\"Reason\":\"ok\"}");
	deliver(0, 200, task_text("completed", 8), 0);
	m = rpc_client_recv(c);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "version"), "8");
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "status"), "completed");
	tr_json_free(m);
	reqs_clear();

	/* 412: a GET follows, then the conflict names the current version */
	rpc_client_send(c, complete);
	while (n_reqs == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	deliver(0, 412, NULL, 0);
	assert_int_equal(n_reqs, 2);
	assert_string_equal(reqs[1].method, "GET");
	assert_int_equal(reqs[1].if_match, -1);
	deliver(1, 200, task_text("completed", 11), 0);
	m = rpc_client_recv(c);
	assert_int_equal(rpc_err_code(m), TR_RPC_VERSION_CONFLICT);
	assert_string_equal(tr_json_get_string(tr_json_get(tr_json_get(m, "error"), "data"),
		"currentVersion"), "11");
	tr_json_free(m);
	reqs_clear();

	/* 429, 500, timeout, network, malformed 2xx */
	{
		static const struct {
			long status;
			int err;
			int code;
		} cases[] = {
			{ 429, 0, TR_RPC_RATE_LIMITED },
			{ 400, 0, TR_RPC_UPSTREAM_ERROR },
			{ 0, -ETIMEDOUT, TR_RPC_TIMEOUT },
			{ 0, -ECONNREFUSED, TR_RPC_NETWORK_ERROR },
			{ 200, -EBADMSG, TR_RPC_REFRESH_PENDING },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			rpc_client_send(c, complete);
			while (n_reqs == 0) {
				(void)uv_run(&e->loop, UV_RUN_ONCE);
			}
			deliver(0, cases[i].status, NULL, cases[i].err);
			m = rpc_client_recv(c);
			assert_int_equal(rpc_err_code(m), cases[i].code);
			if (cases[i].status >= 400) {
				assert_int_equal(tr_json_get(tr_json_get(tr_json_get(m, "error"), "data"),
					"httpStatus")->u.num.i, cases[i].status);
			}
			tr_json_free(m);
			if (cases[i].code == TR_RPC_REFRESH_PENDING) {
				assert_int_equal(n_reqs, 2); /* the refresh GET */
				assert_string_equal(reqs[1].method, "GET");
				deliver(1, 200, task_text("completed", 12), 0);
			}
			reqs_clear();
		}
	}
	assert_int_equal(tr_cache_get(e->d.cache, WT)->version, 12);

	/* a 2xx whose payload is not a Task: refresh pending */
	rpc_client_send(c, complete);
	while (n_reqs == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	deliver(0, 200, "{\"sid\":\"" WT "\"}", 0);
	m = rpc_client_recv(c);
	assert_int_equal(rpc_err_code(m), TR_RPC_REFRESH_PENDING);
	tr_json_free(m);
	assert_int_equal(n_reqs, 2);
	assert_string_equal(reqs[1].method, "GET");
	deliver(1, 503, NULL, 0); /* a failed refresh is only logged */
	reqs_clear();

	/* the client leaves mid-call: the reply still updates the cache */
	rpc_client_send(c, complete);
	while (n_reqs == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	rpc_client_free(c);
	for (int i = 0; i < 20; i++) {
		(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	}
	deliver(0, 200, task_text("completed", 13), 0);
	assert_int_equal(tr_cache_get(e->d.cache, WT)->version, 13);
	reqs_clear();
}

/* The Reservation and Worker rows share the round trip's outcomes with the Task rows, and
 * add their own: the reply applied to the reservation or the worker, a 412 answered after a
 * GET of that object, the worker fetched after a reject that moved it. */
static void test_worker_upstream_replies(void **state) {
	struct env *e = *state;
	struct rpc_client *c = client_new(e);
	const struct tr_bridge_events *ev = tr_core_bridge_events();
	struct tr_json *m, *j;
	const char *accept = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reservation.accept\","
		"\"params\":{\"sid\":\"" WT "\"}}";

	add_task(e);
	/* the worker model, from a resync */
	ev->resync_begin(&e->d);
	j = parse("{\"sid\":\"" WK "\",\"activity_sid\":\"WA1\",\"activity_name\":\"Available\","
		"\"available\":true,\"attributes\":\"{}\",\"version\":4}");
	ev->resync_worker(&e->d, j);
	tr_json_free(j);
	j = parse("{\"sid\":\"WA1\",\"friendly_name\":\"Available\",\"available\":true}");
	ev->resync_activity(&e->d, j);
	tr_json_free(j);
	j = parse("{\"sid\":\"WA2\",\"friendly_name\":\"Offline\",\"available\":false}");
	ev->resync_activity(&e->d, j);
	tr_json_free(j);
	{
		char buf[2048];

		snprintf(buf, sizeof(buf), "{\"sid\":\"" WR "\",\"reservation_status\":\"accepted\","
			"\"task\":%s}", task_text("assigned", 7));
		j = parse(buf);
		ev->resync_reservation(&e->d, j); /* the task stays ours: nothing vanishes */
		tr_json_free(j);
	}
	ev->resync_end(&e->d, 0);
	reqs_clear();

	/* 2xx in the instance shape: the reservation takes it, the reply is the Reservation */
	rpc_client_send(c, accept);
	while (n_reqs == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	assert_string_equal(reqs[0].path, "Workspaces/" WS "/Workers/" WK "/Reservations/" WR);
	deliver(0, 200, "{\"sid\":\"" WR "\",\"reservation_status\":\"accepted\",\"version\":3,"
		"\"task_sid\":\"" WT "\"}", 0);
	m = rpc_client_recv(c);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "version"), "3");
	assert_string_equal(tr_json_get_string(tr_json_get(tr_json_get(m, "result"), "task"), "sid"),
		WT);
	tr_json_free(m);
	reqs_clear();

	/* 412: the reservation is fetched, the conflict names its version */
	rpc_client_send(c, accept);
	while (n_reqs == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	assert_int_equal(reqs[0].if_match, 3);
	deliver(0, 412, NULL, 0);
	assert_int_equal(n_reqs, 2);
	assert_string_equal(reqs[1].method, "GET");
	assert_string_equal(reqs[1].path, "Workspaces/" WS "/Workers/" WK "/Reservations/" WR);
	deliver(1, 200, "{\"sid\":\"" WR "\",\"reservation_status\":\"accepted\",\"version\":5}", 0);
	m = rpc_client_recv(c);
	assert_int_equal(rpc_err_code(m), TR_RPC_VERSION_CONFLICT);
	assert_string_equal(tr_json_get_string(tr_json_get(tr_json_get(m, "error"), "data"),
		"currentVersion"), "5");
	tr_json_free(m);
	reqs_clear();

	/* the shared outcomes, and a 2xx that is not a reservation: refresh pending */
	{
		static const struct {
			long status;
			int err;
			int code;
		} cases[] = {
			{ 429, 0, TR_RPC_RATE_LIMITED },
			{ 400, 0, TR_RPC_UPSTREAM_ERROR },
			{ 503, 0, TR_RPC_UPSTREAM_ERROR },
			{ 401, 0, TR_RPC_TOKEN_EXPIRED },
			{ 0, -ETIMEDOUT, TR_RPC_TIMEOUT },
			{ 0, -ECONNREFUSED, TR_RPC_NETWORK_ERROR },
			{ 200, -EBADMSG, TR_RPC_REFRESH_PENDING },
			{ 200, 0, TR_RPC_REFRESH_PENDING },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			rpc_client_send(c, accept);
			while (n_reqs == 0) {
				(void)uv_run(&e->loop, UV_RUN_ONCE);
			}
			deliver(0, cases[i].status, cases[i].status == 200 && !cases[i].err ? "[]" :
				NULL, cases[i].err);
			m = rpc_client_recv(c);
			assert_int_equal(rpc_err_code(m), cases[i].code);
			tr_json_free(m);
			if (cases[i].code == TR_RPC_REFRESH_PENDING) {
				assert_int_equal(n_reqs, 2); /* the refresh GET of the reservation */
				assert_string_equal(reqs[1].method, "GET");
				deliver(1, 200, "{\"sid\":\"" WR "\",\"reservation_status\":\"accepted\","
					"\"version\":6}", 0);
			}
			reqs_clear();
		}
	}
	assert_int_equal(tr_cache_find_res(e->d.cache, WR, NULL)->version, 6);

	/* a reject that moves the worker: the worker is fetched after the answer */
	rpc_client_send(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"reservation.reject\","
		"\"params\":{\"sid\":\"" WR "\",\"activitySid\":\"WA2\"}}");
	while (n_reqs == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	assert_string_equal(reqs[0].params,
		"{\"ReservationStatus\":\"rejected\",\"WorkerActivitySid\":\"WA2\"}");
	deliver(0, 200, "{\"sid\":\"" WR "\",\"reservation_status\":\"rejected\",\"version\":7}", 0);
	/* the answer waits for the worker, so the caller's next write has its version */
	assert_int_equal(n_reqs, 2);
	assert_string_equal(reqs[1].method, "GET");
	assert_string_equal(reqs[1].path, "Workspaces/" WS "/Workers/" WK);
	{
		struct tr_json *early = NULL;

		for (int i = 0; i < 20; i++) { /* the server is on this loop: let it write */
			(void)uv_run(&e->loop, UV_RUN_NOWAIT);
		}
		assert_int_equal(trt_read_frame(c->conn, 0, &early), -ETIMEDOUT);
	}
	deliver(1, 200, "{\"sid\":\"" WK "\",\"activity_sid\":\"WA2\",\"activity_name\":"
		"\"Offline\",\"available\":false,\"attributes\":\"{}\",\"version\":6}", 0);
	m = rpc_client_recv(c);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "status"), "rejected");
	tr_json_free(m);
	reqs_clear();

	/* a worker write goes out with the fetched version; a 412 fetches the worker */
	rpc_client_send(c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"worker.setActivity\","
		"\"params\":{\"activity\":\"Available\"}}");
	while (n_reqs == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	assert_int_equal(reqs[0].if_match, 6);
	deliver(0, 412, NULL, 0);
	assert_int_equal(n_reqs, 2);
	assert_string_equal(reqs[1].path, "Workspaces/" WS "/Workers/" WK);
	deliver(1, 200, "{\"sid\":\"" WK "\",\"activity_sid\":\"WA2\",\"activity_name\":"
		"\"Offline\",\"available\":false,\"attributes\":\"{}\",\"version\":9}", 0);
	m = rpc_client_recv(c);
	assert_int_equal(rpc_err_code(m), TR_RPC_VERSION_CONFLICT);
	assert_string_equal(tr_json_get_string(tr_json_get(tr_json_get(m, "error"), "data"),
		"currentVersion"), "9");
	tr_json_free(m);
	reqs_clear();

	/* A resync that shows the task under another reservation: the old one ended while the
	 * daemon was away; it is fetched, and its final status taken. */
	stub_state = TR_BRIDGE_READY;
	ev->resync_begin(&e->d);
	j = parse("{\"sid\":\"" WK "\",\"activity_sid\":\"WA2\",\"version\":9}");
	ev->resync_worker(&e->d, j);
	tr_json_free(j);
	{
		char buf[2048];

		snprintf(buf, sizeof(buf), "{\"sid\":\"WR2\",\"reservation_status\":\"pending\","
			"\"task\":%s}", task_text("reserved", 8));
		j = parse(buf);
		ev->resync_reservation(&e->d, j);
		tr_json_free(j);
	}
	ev->resync_end(&e->d, 0);
	assert_int_equal(n_reqs, 1);
	assert_string_equal(reqs[0].method, "GET");
	assert_string_equal(reqs[0].path, "Workspaces/" WS "/Workers/" WK "/Reservations/" WR);
	assert_string_equal(tr_cache_find_res(e->d.cache, WR, NULL)->status, "rejected");
	deliver(0, 200, "{\"sid\":\"" WR "\",\"reservation_status\":\"timeout\",\"version\":8}",
		0);
	assert_string_equal(tr_cache_find_res(e->d.cache, WR, NULL)->status, "timeout");
	assert_string_equal(tr_cache_find_res(e->d.cache, WT, NULL)->sid, "WR2");
	reqs_clear();
	rpc_client_free(c);
}

static void test_events(void **state) {
	struct env *e = *state;
	struct rpc_client *a = client_new(e), *b = client_new(e), *c = client_new(e);
	struct tr_json *m;
	const struct tr_json *p;
	char epoch[TR_SUBS_EPOCH_MAX], req[256];
	int64_t seq;

	m = rpc_client_call(a, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}");
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "subscription"), "s1");
	seq = tr_json_get(tr_json_get(m, "result"), "seq")->u.num.i;
	/* the subscription, every event and daemon.status name this run's epoch */
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "epoch"),
		tr_subs_epoch(e->d.subs));
	snprintf(epoch, sizeof(epoch), "%s", tr_subs_epoch(e->d.subs));
	tr_json_free(m);
	m = rpc_client_call(a, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}");
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "epoch"), epoch);
	tr_json_free(m);
	m = rpc_client_call(b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\","
		"\"params\":{\"events\":[\"ready\"]}}");
	tr_json_free(m);
	tr_core_bridge_events()->state(&e->d, TR_BRIDGE_OPEN, NULL);
	add_task(e);
	tr_core_bridge_events()->state(&e->d, TR_BRIDGE_READY, NULL);
	tr_core_bridge_events()->state(&e->d, TR_BRIDGE_RECONNECTING, "network");
	tr_core_bridge_events()->token(&e->d, "tokenWillExpire", 1900000000);

	m = rpc_client_recv(a);
	p = tr_json_get(m, "params");
	assert_string_equal(tr_json_get_string(m, "method"), "event");
	assert_string_equal(tr_json_get_string(p, "event"), "connected");
	assert_int_equal(tr_json_get(p, "seq")->u.num.i, seq + 1);
	assert_string_equal(tr_json_get_string(p, "epoch"), epoch);
	tr_json_free(m);
	m = rpc_client_recv(a);
	p = tr_json_get(m, "params");
	assert_string_equal(tr_json_get_string(p, "event"), "reservationCreated");
	assert_string_equal(tr_json_get_string(p, "taskSid"), WT);
	assert_string_equal(tr_json_get_string(tr_json_get(p, "task"), "sid"), WT);
	assert_int_equal(tr_json_get(p, "seq")->u.num.i, seq + 2);
	tr_json_free(m);
	m = rpc_client_recv(a);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "params"), "event"), "ready");
	tr_json_free(m);
	m = rpc_client_recv(a);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "params"), "event"), "disconnected");
	assert_string_equal(tr_json_get_string(tr_json_get(m, "params"), "reason"), "network");
	tr_json_free(m);
	m = rpc_client_recv(a);
	assert_int_equal(tr_json_get(tr_json_get(m, "params"), "expiresAt")->u.num.i, 1900000000);
	tr_json_free(m);
	/* b only sees ready */
	m = rpc_client_recv(b);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "params"), "event"), "ready");
	assert_int_equal(tr_json_get(tr_json_get(m, "params"), "seq")->u.num.i, seq + 3);
	tr_json_free(m);

	/* a seq alone, or with another run's epoch, is a gap: never a replay that could skip
	 * events the client did not see */
	m = rpc_client_call(b, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"events.subscribe\","
		"\"params\":{\"since\":2}}");
	assert_int_equal(rpc_err_code(m), TR_RPC_REPLAY_GONE);
	p = tr_json_get(tr_json_get(m, "error"), "data");
	assert_string_equal(tr_json_get_string(p, "reason"), "no-epoch");
	assert_string_equal(tr_json_get_string(p, "epoch"), epoch);
	tr_json_free(m);
	m = rpc_client_call(b, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"events.subscribe\","
		"\"params\":{\"since\":2,\"epoch\":\"0-0\"}}");
	assert_int_equal(rpc_err_code(m), TR_RPC_REPLAY_GONE);
	p = tr_json_get(tr_json_get(m, "error"), "data");
	assert_string_equal(tr_json_get_string(p, "reason"), "epoch");
	assert_string_equal(tr_json_get_string(p, "epoch"), epoch);
	assert_int_equal(tr_json_get(p, "currentSeq")->u.num.i, 5);
	assert_non_null(strstr(tr_json_get_string(tr_json_get(m, "error"), "message"), "epoch"));
	tr_json_free(m);
	m = rpc_client_call(b, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"events.subscribe\","
		"\"params\":{\"epoch\":\"0-0\"}}");
	assert_string_equal(rpc_err_param(m), "epoch");
	tr_json_free(m);
	m = rpc_client_call(b, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"events.subscribe\","
		"\"params\":{\"since\":2,\"epoch\":\"\"}}");
	assert_string_equal(rpc_err_param(m), "epoch");
	tr_json_free(m);

	/* replay, with a snapshot */
	snprintf(req, sizeof(req), "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"events.subscribe\","
		"\"params\":{\"since\":2,\"epoch\":\"%s\",\"tasks\":[\"" WT "\"]}}", epoch);
	m = rpc_client_call(b, req);
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "tasks")->u.arr.n, 1);
	tr_json_free(m);
	m = rpc_client_recv(b); /* seq 2: the task event */
	assert_int_equal(tr_json_get(tr_json_get(m, "params"), "seq")->u.num.i, 2);
	tr_json_free(m);
	for (int64_t q = 3; q <= 5; q++) { /* daemon events pass a task filter */
		m = rpc_client_recv(b);
		assert_int_equal(tr_json_get(tr_json_get(m, "params"), "seq")->u.num.i, q);
		tr_json_free(m);
	}

	snprintf(req, sizeof(req), "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"events.subscribe\","
		"\"params\":{\"since\":99,\"epoch\":\"%s\"}}", epoch);
	m = rpc_client_call(b, req);
	assert_int_equal(rpc_err_code(m), TR_RPC_REPLAY_GONE);
	assert_int_equal(tr_json_get(tr_json_get(tr_json_get(m, "error"), "data"), "currentSeq")->u.num.i, 5);
	assert_string_equal(tr_json_get_string(tr_json_get(tr_json_get(m, "error"), "data"), "reason"),
		"future");
	tr_json_free(m);
	m = rpc_client_call(b, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"events.subscribe\",\"params\":{\"since\":0}}");
	assert_string_equal(rpc_err_param(m), "since");
	tr_json_free(m);
	m = rpc_client_call(b, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"events.subscribe\",\"params\":{\"events\":[1]}}");
	assert_string_equal(rpc_err_param(m), "events");
	tr_json_free(m);
	/* an event name the daemon never publishes: refused, with the valid names */
	m = rpc_client_call(b, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"events.subscribe\","
		"\"params\":{\"events\":[\"updated\",\"task.created\"]}}");
	assert_int_equal(rpc_err_code(m), TR_RPC_INVALID_PARAMS);
	assert_string_equal(rpc_err_param(m), "events");
	{
		const struct tr_json *err = tr_json_get(m, "error"), *data = tr_json_get(err, "data");
		const struct tr_json *vals = tr_json_get(data, "values");

		assert_non_null(strstr(tr_json_get_string(data, "reason"), "task.created"));
		assert_true(tr_json_is(vals, TR_JSON_ARRAY));
		assert_int_equal(vals->u.arr.n, 29);
		for (size_t i = 0; tr_subs_event_names[i]; i++) {
			assert_string_equal(vals->u.arr.items[i]->u.str.s, tr_subs_event_names[i]);
			assert_non_null(strstr(tr_json_get_string(err, "message"),
				tr_subs_event_names[i]));
		}
	}
	tr_json_free(m);
	m = rpc_client_call(b, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"events.subscribe\","
		"\"params\":{\"events\":[\"\"]}}");
	assert_string_equal(rpc_err_param(m), "events");
	tr_json_free(m);
	/* names match in any letter case, like every `values` row */
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"events.subscribe\","
		"\"params\":{\"events\":[\"TOKENEXPIRED\"]}}");
	assert_non_null(tr_json_get_string(tr_json_get(m, "result"), "subscription"));
	tr_json_free(m);
	tr_core_bridge_events()->token(&e->d, "tokenExpired", 0);
	m = rpc_client_recv(c);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "params"), "event"), "tokenExpired");
	tr_json_free(m);
	rpc_client_free(c);
	/* a and b were subscribed to it too */
	m = rpc_client_recv(a);
	tr_json_free(m);
	m = rpc_client_recv(b);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "params"), "event"), "tokenExpired");
	tr_json_free(m);
	m = rpc_client_call(b, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"events.unsubscribe\",\"params\":{\"subscription\":\"s1\"}}");
	assert_string_equal(rpc_err_param(m), "subscription"); /* a's, not b's */
	tr_json_free(m);
	m = rpc_client_call(a, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"events.unsubscribe\",\"params\":{\"subscription\":\"s1\"}}");
	assert_true(tr_json_is(tr_json_get(tr_json_get(m, "result"), "ok"), TR_JSON_TRUE));
	tr_json_free(m);
	rpc_client_free(a);
	rpc_client_free(b);
}

/* Task sid WTv<i>: task_text with another sid (same length). */
static char *vtask_text(int i, const char *status, int version) {
	char *b = task_text(status, version);
	char *s = strstr(b, WT);

	snprintf(s, 6, "WTv%02d", i);
	s[5] = WT[5]; /* snprintf's NUL */
	return b;
}

static struct tr_json *next_event(struct rpc_client *c, const char *name, int i) {
	struct tr_json *m = rpc_client_recv(c);
	const struct tr_json *p = tr_json_get(m, "params");
	char sid[40];

	snprintf(sid, sizeof(sid), "%s", WT);
	memcpy(sid, "WTv", 3);
	sid[3] = (char)('0' + i / 10);
	sid[4] = (char)('0' + i % 10);
	assert_string_equal(tr_json_get_string(p, "event"), name);
	assert_string_equal(tr_json_get_string(p, "taskSid"), sid);
	return m;
}

/* Tasks 0..n-1 of vtask_text, each with an accepted reservation, seen by subscriber a. */
static void add_vtasks(struct env *e, struct rpc_client *a, int n) {
	char buf[2048];
	struct tr_json *m;

	for (int i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "{\"sid\":\"WRv%02d\",\"reservation_status\":\"accepted\","
			"\"task\":%s}", i, vtask_text(i, "assigned", 3));
		m = parse(buf);
		tr_core_bridge_events()->event(&e->d, "reservation.created", m);
		tr_json_free(m);
		tr_json_free(next_event(a, "reservationCreated", i));
	}
}

/* A resync finds tasks gone: their final state is fetched, at most 4 at a time, and each is
 * published as its answer comes: completed or canceled as fetched, vanished with the reason
 * when it cannot be known. A fetch still out at shutdown publishes nothing. */
static void test_vanish_fetch(void **state) {
	struct env *e = *state;
	const struct tr_bridge_events *ev = tr_core_bridge_events();
	struct rpc_client *a = client_new(e);
	const struct tr_json *p;
	struct tr_json *m;
	char buf[2048];

	m = rpc_client_call(a, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}");
	tr_json_free(m);
	add_vtasks(e, a, 7);
	/* no token: nothing is sent, the tasks wait for the next resync */
	stub_request_ret = -EKEYEXPIRED;
	ev->resync_begin(&e->d);
	ev->resync_end(&e->d, 0);
	stub_request_ret = 0;
	assert_int_equal(n_reqs, 0);
	ev->resync_begin(&e->d);
	ev->resync_end(&e->d, 0);
	assert_int_equal(n_reqs, 4);
	for (int i = 0; i < 4; i++) {
		snprintf(buf, sizeof(buf), "Workspaces/" WS "/Tasks/%.35s", vtask_text(i, "x", 1) + 8);
		assert_string_equal(reqs[i].method, "GET");
		assert_string_equal(reqs[i].api, "v1");
		assert_int_equal(reqs[i].if_match, -1);
		assert_true(strncmp(reqs[i].path, buf, strlen("Workspaces/" WS "/Tasks/WTv00")) == 0);
	}
	/* a third reconnect while the fetches are out sends nothing twice */
	ev->resync_begin(&e->d);
	ev->resync_end(&e->d, 0);
	assert_int_equal(n_reqs, 4);

	deliver(0, 200, vtask_text(0, "completed", 9), 0);
	assert_int_equal(n_reqs, 5); /* the next one goes out */
	m = next_event(a, "completed", 0);
	p = tr_json_get(m, "params");
	assert_true(tr_json_is(tr_json_get(p, "vanished"), TR_JSON_TRUE));
	assert_true(tr_json_is(tr_json_get(p, "resync"), TR_JSON_TRUE));
	assert_string_equal(tr_json_get_string(p, "version"), "9");
	assert_string_equal(tr_json_get_string(tr_json_get(p, "task"), "wireStatus"), "completed");
	assert_null(tr_json_get(p, "finalState"));
	tr_json_free(m);
	/* task.get in the grace period: the fetched state */
	m = rpc_client_call(a, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"task.get\","
		"\"params\":{\"sid\":\"WTv00c4e6335fcc52ed96c632c85599ed7\"}}");
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "wireStatus"), "completed");
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "version"), "9");
	tr_json_free(m);

	deliver(1, 404, NULL, 0);
	m = next_event(a, "vanished", 1);
	p = tr_json_get(m, "params");
	assert_string_equal(tr_json_get_string(p, "finalState"), "unknown");
	assert_string_equal(tr_json_get_string(p, "finalStateReason"), "deleted");
	assert_int_equal(tr_json_get(p, "httpStatus")->u.num.i, 404);
	assert_string_equal(tr_json_get_string(tr_json_get(p, "task"), "wireStatus"), "assigned");
	assert_string_equal(tr_json_get_string(p, "version"), "3");
	tr_json_free(m);

	deliver(2, 0, NULL, -ETIMEDOUT);
	m = next_event(a, "vanished", 2);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "params"), "finalStateReason"), "timeout");
	assert_null(tr_json_get(tr_json_get(m, "params"), "httpStatus"));
	tr_json_free(m);

	deliver(3, 200, vtask_text(3, "canceled", 4), 0);
	tr_json_free(next_event(a, "canceled", 3));

	deliver(4, 200, vtask_text(4, "pending", 5), 0); /* back in the queue, not ours */
	m = next_event(a, "vanished", 4);
	p = tr_json_get(m, "params");
	assert_null(tr_json_get(p, "finalState"));
	assert_string_equal(tr_json_get_string(tr_json_get(p, "task"), "wireStatus"), "pending");
	tr_json_free(m);
	assert_int_equal(n_reqs, 7);
	/* 5 and 6 are still out: the teardown cancels them, as a shutdown would */
	rpc_client_free(a);
}

/* After a switch to another worker (daemon.updateToken {switchWorker}), the old worker's
 * tasks leave the cache as vanished with finalStateReason "identity-switch", without a GET
 * that the new worker's token could only answer with 404. */
static void test_vanish_after_switch(void **state) {
	struct env *e = *state;
	const struct tr_bridge_events *ev = tr_core_bridge_events();
	struct rpc_client *a = client_new(e);
	const struct tr_json *p;
	struct tr_json *m;

	m = rpc_client_call(a, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}");
	tr_json_free(m);
	ev->resync_begin(&e->d);
	ev->resync_end(&e->d, 0); /* the first worker's session */
	add_vtasks(e, a, 2);
	stub_worker_sid = "WKe26e96b8336b262c51a660cfb175a999";
	ev->resync_begin(&e->d);
	ev->resync_end(&e->d, 0);
	stub_worker_sid = WK;
	assert_int_equal(n_reqs, 0);
	for (int i = 0; i < 2; i++) {
		m = next_event(a, "vanished", i);
		p = tr_json_get(m, "params");
		assert_string_equal(tr_json_get_string(p, "finalState"), "unknown");
		assert_string_equal(tr_json_get_string(p, "finalStateReason"), "identity-switch");
		tr_json_free(m);
	}
	rpc_client_free(a);
}

/* Event data of about 64 KiB ({"blob":"xxx..."}), to fill a client's output queue fast. */
static struct tr_json *blob_data(void) {
	struct tr_json *data = tr_json_new_object();
	char *blob = malloc(64 * 1024 + 1);

	assert_non_null(data);
	assert_non_null(blob);
	memset(blob, 'x', 64 * 1024);
	blob[64 * 1024] = '\0';
	assert_int_equal(tr_json_object_set(data, "blob", tr_json_new_string(blob)), 0);
	free(blob);
	return data;
}

/* A subscriber that never reads is cut off at the hard limit; the others carry on. */
static void test_slow_subscriber(void **state) {
	struct env *e = *state;
	struct rpc_client *s = client_new(e), *o = client_new(e);
	struct tr_json *m, *data = blob_data();
	int frames = 0;

	m = rpc_client_call(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}");
	tr_json_free(m);
	m = rpc_client_call(o, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\","
		"\"params\":{\"events\":[\"ready\"]}}");
	tr_json_free(m);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(tr_subs_publish_daemon(e->d.subs, "tokenUpdated", data), 0);
	}
	tr_json_free(data);
	(void)uv_run(&e->loop, UV_RUN_NOWAIT); /* the close callback */
	m = rpc_client_call(o, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"daemon.status\"}");
	assert_int_equal(tr_json_get(tr_json_get(tr_json_get(m, "result"), "counters"),
		"slowClientsDisconnected")->u.num.i, 1);
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "connections")->u.num.i, 1);
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "subscriptions")->u.num.i, 1);
	tr_json_free(m);
	frames = rpc_client_drain(s);
	assert_true(frames > 0 && frames < 200);
	rpc_client_free(s);
	rpc_client_free(o);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_cancel_transfer_request),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_describe_is_the_table),
		cmocka_unit_test_setup_teardown(test_socket_basics, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_worker_upstream_replies, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_upstream_replies, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_update_token_owner_only, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_subscription_cap, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_vanish_after_switch, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_events, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_vanish_fetch, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_slow_subscriber, env_setup, env_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
