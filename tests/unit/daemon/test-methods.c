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
#include "methods.h"
#include "subs.h"
#include "rpc.h"
#include "rpcsrv.h"

#define WS "WS0acbd5dc35263341780bd09152200e87"
#define WK "WKe26e96b8336b262c51a660cfb175a96b"
#define WT "WT0fbc4e6335fcc52ed96c632c85599ed7"
#define WR "WR8a81d7d820fcf01ee85c778912a385f0"

/* ---- bridge stubs ---- */

static enum tr_bridge_state stub_state = TR_BRIDGE_READY;
static int stub_request_ret;
static int stub_resyncs;
static struct {
	char path[256];
	char method[8];
	char api[4];
	char *params;
	int64_t if_match;
	tr_upstream_cb cb;
	void *userdata;
} reqs[32];
static size_t n_reqs;

const char *tr_bridge_state_str(enum tr_bridge_state s) {
	return s == TR_BRIDGE_READY ? "ready" : "other";
}
enum tr_bridge_state tr_bridge_get_state(const struct tr_bridge *b) {
	(void)b;
	return stub_state;
}
const char *tr_bridge_workspace_sid(const struct tr_bridge *b) {
	(void)b;
	return WS;
}
const char *tr_bridge_worker_sid(const struct tr_bridge *b) {
	(void)b;
	return WK;
}
int tr_bridge_request(struct tr_bridge *b, const struct tr_upstream_request *req, tr_upstream_cb cb,
	void *userdata) {
	(void)b;
	if (stub_request_ret < 0) {
		return stub_request_ret;
	}
	assert_true(n_reqs < 32);
	snprintf(reqs[n_reqs].path, sizeof(reqs[n_reqs].path), "%s", req->path);
	snprintf(reqs[n_reqs].method, sizeof(reqs[n_reqs].method), "%s", req->method);
	snprintf(reqs[n_reqs].api, sizeof(reqs[n_reqs].api), "%s", req->api_version);
	assert_int_equal(tr_json_dump(req->params, &reqs[n_reqs].params, NULL), 0);
	reqs[n_reqs].if_match = req->if_match;
	reqs[n_reqs].cb = cb;
	reqs[n_reqs].userdata = userdata;
	n_reqs++;
	return 0;
}
void tr_bridge_request_resync(struct tr_bridge *b) {
	(void)b;
	stub_resyncs++;
}
int tr_bridge_update_token(struct tr_bridge *b, const char *token) {
	(void)b;
	if (strcmp(token, "expired") == 0) {
		return -EKEYEXPIRED;
	}
	return strcmp(token, "good") == 0 ? 0 : -EINVAL;
}
struct tr_json *tr_bridge_status(const struct tr_bridge *b) {
	(void)b;
	return tr_json_new_object();
}
int64_t tr_bridge_token_expires_at(const struct tr_bridge *b) {
	(void)b;
	return 1900000000;
}
char *tr_config_default_socket(bool system_service) {
	(void)system_service;
	return NULL;
}

static void reqs_clear(void) {
	for (size_t i = 0; i < n_reqs; i++) {
		assert_null(reqs[i].cb); /* every request was answered */
		free(reqs[i].params);
	}
	n_reqs = 0;
}

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
		assert_int_equal(tr_methods_build(cases[i].method, p, t, WS, WK, true, &r, &e), -EINVAL);
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

		assert_int_equal(tr_methods_build("task.get", p, tr_cache_get(c, WT), WS, WK, true, &r,
			&e), -ENOENT);
		tr_json_free(p);
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
		assert_int_equal(tr_methods_build(cases[i].method, p, tr_cache_get(c, WT), WS, WK,
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
		tr_methods_req_done(&r);
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
	assert_int_equal(tr_methods_build("task.cancelTransfer", p, tr_cache_get(c, WT), WS, WK, true,
		&r, &e), 0);
	assert_string_equal(r.path, "Workspaces/" WS "/Workers/" WK "/Transfers/TT1");
	assert_string_equal(r.api_version, "v2");
	assert_int_equal(r.kind, TR_METHODS_TRANSFER);
	assert_int_equal(tr_json_dump(r.params, &text, NULL), 0);
	assert_string_equal(text, "{\"TaskSid\":\"" WT "\",\"TransferStatus\":\"canceled\"}");
	free(text);
	tr_methods_req_done(&r);
	/* a final transfer cannot be canceled */
	x = parse("{\"sid\":\"TT1\",\"transfer_status\":\"canceled\"}");
	assert_int_equal(tr_cache_apply_transfer_response(c, WT, x, 0), 0);
	tr_json_free(x);
	assert_int_equal(tr_methods_build("task.cancelTransfer", p, tr_cache_get(c, WT), WS, WK, true,
		&r, &e), -EINVAL);
	assert_int_equal(e.code, TR_RPC_INVALID_STATE);
	tr_json_free(p);
	tr_cache_free(c);
}

static void test_describe(void **state) {
	struct tr_json *d = tr_methods_describe();
	const struct tr_json *ms;
	bool found = false;

	(void)state;
	assert_non_null(d);
	ms = tr_json_get(d, "methods");
	assert_int_equal(ms->u.arr.n, 17);
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
	assert_int_equal(tr_json_get(d, "events")->u.arr.n, 23);
	tr_json_free(d);
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

struct client {
	int fd;
	char *buf;
	size_t have;
};

static int env_setup(void **state) {
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/tr-methods-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/run/socket", e->dir);
	assert_int_equal(uv_loop_init(&e->loop), 0);
	e->cfg.socket_path = e->path;
	e->cfg.version_check = true;
	e->cfg.max_connections = 3;
	e->d.loop = &e->loop;
	e->d.cfg = &e->cfg;
	e->d.bridge = (struct tr_bridge *)e; /* opaque to the stubs */
	assert_int_equal(tr_core_init(&e->d), 0);
	assert_int_equal(tr_rpcsrv_new(&e->d, -1, &e->d.rpcsrv), 0);
	stub_state = TR_BRIDGE_READY;
	stub_request_ret = 0;
	stub_resyncs = 0;
	*state = e;
	return 0;
}

static void on_closed(void *userdata) {
	struct env *e = userdata;

	e->closed = true;
}

static int env_teardown(void **state) {
	struct env *e = *state;
	char run[160];
	struct stat st;

	tr_rpcsrv_close(e->d.rpcsrv, on_closed, e);
	while (!e->closed) {
		assert_int_equal(uv_run(&e->loop, UV_RUN_ONCE) >= 0, 1);
	}
	assert_int_not_equal(stat(e->path, &st), 0); /* unlinked */
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
	assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	snprintf(run, sizeof(run), "%s/run", e->dir);
	assert_int_equal(stat(run, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	rmdir(run);
	rmdir(e->dir);
	free(e);
	return 0;
}

static struct client *client_new(struct env *e) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct client *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->buf = malloc(4u << 20);
	assert_non_null(c->buf);
	strcpy(sa.sun_path, e->path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
	return c;
}

static void client_free(struct client *c) {
	close(c->fd);
	free(c->buf);
	free(c);
}

static void client_send_raw(struct client *c, const void *data, size_t len) {
	assert_int_equal(send(c->fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void client_send(struct client *c, const char *json) {
	uint8_t hdr[4];
	size_t n = strlen(json);

	hdr[0] = (uint8_t)(n >> 24);
	hdr[1] = (uint8_t)(n >> 16);
	hdr[2] = (uint8_t)(n >> 8);
	hdr[3] = (uint8_t)n;
	client_send_raw(c, hdr, 4);
	client_send_raw(c, json, n);
}

/* Run the loop until a frame arrives (NULL on EOF). 5 s deadline. */
static struct tr_json *client_recv(struct env *e, struct client *c) {
	uint64_t deadline = uv_hrtime() + 5000000000ull;

	for (;;) {
		if (c->have >= 4) {
			size_t n = (size_t)(uint8_t)c->buf[0] << 24 | (size_t)(uint8_t)c->buf[1] << 16 |
				(size_t)(uint8_t)c->buf[2] << 8 | (uint8_t)c->buf[3];

			if (c->have >= 4 + n) {
				struct tr_json *j = NULL;

				assert_int_equal(tr_json_parse(c->buf + 4, n, &j, NULL), 0);
				memmove(c->buf, c->buf + 4 + n, c->have - 4 - n);
				c->have -= 4 + n;
				return j;
			}
		}
		assert_true(uv_hrtime() < deadline);
		(void)uv_run(&e->loop, UV_RUN_NOWAIT);
		{
			struct pollfd p = { .fd = c->fd, .events = POLLIN };
			ssize_t r;

			(void)poll(&p, 1, 5);
			r = recv(c->fd, c->buf + c->have, (4u << 20) - c->have, 0);
			if (r == 0) {
				return NULL;
			}
			if (r > 0) {
				c->have += (size_t)r;
			}
		}
	}
}

static struct tr_json *call(struct env *e, struct client *c, const char *json) {
	client_send(c, json);
	return client_recv(e, c);
}

static int64_t err_code(const struct tr_json *m) {
	int64_t code = 0;

	assert_int_equal(tr_json_get_int(tr_json_get(m, "error"), "code", &code), 0);
	return code;
}

static const char *err_param(const struct tr_json *m) {
	return tr_json_get_string(tr_json_get(tr_json_get(m, "error"), "data"), "param");
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
	struct client *c = client_new(e);
	struct tr_json *m;
	struct stat st;

	assert_int_equal(stat(e->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	m = call(e, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"rpc.describe\"}");
	assert_non_null(tr_json_get(tr_json_get(m, "result"), "methods"));
	tr_json_free(m);
	m = call(e, c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"}");
	assert_int_equal(err_code(m), TR_RPC_METHOD_NOT_FOUND);
	tr_json_free(m);
	m = call(e, c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"task.get\",\"params\":[1]}");
	assert_int_equal(err_code(m), TR_RPC_INVALID_PARAMS);
	assert_string_equal(err_param(m), "params");
	tr_json_free(m);
	m = call(e, c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"task.get\",\"params\":{\"sid\":\"" WT "\"}}");
	assert_int_equal(err_code(m), TR_RPC_NOT_FOUND);
	tr_json_free(m);
	m = call(e, c, "{not json");
	assert_int_equal(err_code(m), TR_RPC_PARSE_ERROR);
	tr_json_free(m);
	/* a notification gets no reply: the next reply is for id 5 */
	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.status\"}");
	add_task(e);
	m = call(e, c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"task.list\"}");
	assert_int_equal(tr_json_get(m, "id")->u.num.i, 5);
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "tasks")->u.arr.n, 1);
	tr_json_free(m);
	m = call(e, c, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"task.list\",\"params\":{\"status\":\"pending\"}}");
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "tasks")->u.arr.n, 0);
	tr_json_free(m);
	m = call(e, c, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"task.get\",\"params\":{\"sid\":\"" WT "\"}}");
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "version"), "7");
	tr_json_free(m);
	m = call(e, c, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"daemon.status\"}");
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
	m = call(e, c, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"daemon.updateToken\",\"params\":{\"token\":\"\"}}");
	assert_string_equal(err_param(m), "token");
	tr_json_free(m);
	m = call(e, c, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"daemon.updateToken\",\"params\":{\"token\":\"expired\"}}");
	assert_string_equal(tr_json_get_string(tr_json_get(tr_json_get(m, "error"), "data"), "reason"), "expired");
	tr_json_free(m);
	m = call(e, c, "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"daemon.updateToken\",\"params\":{\"token\":\"good\"}}");
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "expiresAt")->u.num.i, 1900000000);
	tr_json_free(m);
	client_free(c);
}

static void test_upstream_replies(void **state) {
	struct env *e = *state;
	struct client *c = client_new(e);
	struct tr_json *m;
	const char *complete = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"task.complete\","
		"\"params\":{\"sid\":\"" WT "\",\"reason\":\"ok\"}}";

	add_task(e);
	/* not connected / token expired: nothing sent */
	stub_state = TR_BRIDGE_RECONNECTING;
	m = call(e, c, complete);
	assert_int_equal(err_code(m), TR_RPC_NOT_CONNECTED);
	tr_json_free(m);
	stub_state = TR_BRIDGE_TOKEN_EXPIRED;
	m = call(e, c, complete);
	assert_int_equal(err_code(m), TR_RPC_TOKEN_EXPIRED);
	tr_json_free(m);
	stub_state = TR_BRIDGE_READY;
	stub_request_ret = -ENOTCONN;
	m = call(e, c, complete);
	assert_int_equal(err_code(m), TR_RPC_NOT_CONNECTED);
	tr_json_free(m);
	stub_request_ret = 0;
	assert_int_equal(n_reqs, 0);

	/* 2xx: the cache takes the new version and the reply is the Task */
	client_send(c, complete);
	while (n_reqs == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	assert_string_equal(reqs[0].path, "Workspaces/" WS "/Tasks/" WT);
	assert_int_equal(reqs[0].if_match, 7);
	assert_string_equal(reqs[0].params, "{\"AssignmentStatus\":\"completed\",\"Reason\":\"ok\"}");
	deliver(0, 200, task_text("completed", 8), 0);
	m = client_recv(e, c);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "version"), "8");
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "status"), "completed");
	tr_json_free(m);
	reqs_clear();

	/* 412: a GET follows, then the conflict names the current version */
	client_send(c, complete);
	while (n_reqs == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	deliver(0, 412, NULL, 0);
	assert_int_equal(n_reqs, 2);
	assert_string_equal(reqs[1].method, "GET");
	assert_int_equal(reqs[1].if_match, -1);
	deliver(1, 200, task_text("completed", 11), 0);
	m = client_recv(e, c);
	assert_int_equal(err_code(m), TR_RPC_VERSION_CONFLICT);
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
			client_send(c, complete);
			while (n_reqs == 0) {
				(void)uv_run(&e->loop, UV_RUN_ONCE);
			}
			deliver(0, cases[i].status, NULL, cases[i].err);
			m = client_recv(e, c);
			assert_int_equal(err_code(m), cases[i].code);
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
	client_send(c, complete);
	while (n_reqs == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	deliver(0, 200, "{\"sid\":\"" WT "\"}", 0);
	m = client_recv(e, c);
	assert_int_equal(err_code(m), TR_RPC_REFRESH_PENDING);
	tr_json_free(m);
	assert_int_equal(n_reqs, 2);
	assert_string_equal(reqs[1].method, "GET");
	deliver(1, 503, NULL, 0); /* a failed refresh is only logged */
	reqs_clear();

	/* the client leaves mid-call: the reply still updates the cache */
	client_send(c, complete);
	while (n_reqs == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	client_free(c);
	for (int i = 0; i < 20; i++) {
		(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	}
	deliver(0, 200, task_text("completed", 13), 0);
	assert_int_equal(tr_cache_get(e->d.cache, WT)->version, 13);
	reqs_clear();
}

static void test_events(void **state) {
	struct env *e = *state;
	struct client *a = client_new(e), *b = client_new(e);
	struct tr_json *m;
	const struct tr_json *p;
	int64_t seq;

	m = call(e, a, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}");
	assert_string_equal(tr_json_get_string(tr_json_get(m, "result"), "subscription"), "s1");
	seq = tr_json_get(tr_json_get(m, "result"), "seq")->u.num.i;
	tr_json_free(m);
	m = call(e, b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\","
		"\"params\":{\"events\":[\"ready\"]}}");
	tr_json_free(m);
	tr_core_bridge_events()->state(&e->d, TR_BRIDGE_OPEN, NULL);
	add_task(e);
	tr_core_bridge_events()->state(&e->d, TR_BRIDGE_READY, NULL);
	tr_core_bridge_events()->state(&e->d, TR_BRIDGE_RECONNECTING, "network");
	tr_core_bridge_events()->token(&e->d, "tokenWillExpire", 1900000000);

	m = client_recv(e, a);
	p = tr_json_get(m, "params");
	assert_string_equal(tr_json_get_string(m, "method"), "event");
	assert_string_equal(tr_json_get_string(p, "event"), "connected");
	assert_int_equal(tr_json_get(p, "seq")->u.num.i, seq + 1);
	tr_json_free(m);
	m = client_recv(e, a);
	p = tr_json_get(m, "params");
	assert_string_equal(tr_json_get_string(p, "event"), "reservationCreated");
	assert_string_equal(tr_json_get_string(p, "taskSid"), WT);
	assert_string_equal(tr_json_get_string(tr_json_get(p, "task"), "sid"), WT);
	assert_int_equal(tr_json_get(p, "seq")->u.num.i, seq + 2);
	tr_json_free(m);
	m = client_recv(e, a);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "params"), "event"), "ready");
	tr_json_free(m);
	m = client_recv(e, a);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "params"), "event"), "disconnected");
	assert_string_equal(tr_json_get_string(tr_json_get(m, "params"), "reason"), "network");
	tr_json_free(m);
	m = client_recv(e, a);
	assert_int_equal(tr_json_get(tr_json_get(m, "params"), "expiresAt")->u.num.i, 1900000000);
	tr_json_free(m);
	/* b only sees ready */
	m = client_recv(e, b);
	assert_string_equal(tr_json_get_string(tr_json_get(m, "params"), "event"), "ready");
	assert_int_equal(tr_json_get(tr_json_get(m, "params"), "seq")->u.num.i, seq + 3);
	tr_json_free(m);

	/* replay, with a snapshot */
	m = call(e, b, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"events.subscribe\","
		"\"params\":{\"since\":2,\"tasks\":[\"" WT "\"]}}");
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "tasks")->u.arr.n, 1);
	tr_json_free(m);
	m = client_recv(e, b); /* seq 2: the task event */
	assert_int_equal(tr_json_get(tr_json_get(m, "params"), "seq")->u.num.i, 2);
	tr_json_free(m);
	for (int64_t q = 3; q <= 5; q++) { /* daemon events pass a task filter */
		m = client_recv(e, b);
		assert_int_equal(tr_json_get(tr_json_get(m, "params"), "seq")->u.num.i, q);
		tr_json_free(m);
	}

	m = call(e, b, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"events.subscribe\",\"params\":{\"since\":99}}");
	assert_int_equal(err_code(m), TR_RPC_REPLAY_GONE);
	assert_int_equal(tr_json_get(tr_json_get(tr_json_get(m, "error"), "data"), "currentSeq")->u.num.i, 5);
	tr_json_free(m);
	m = call(e, b, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"events.subscribe\",\"params\":{\"since\":0}}");
	assert_string_equal(err_param(m), "since");
	tr_json_free(m);
	m = call(e, b, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"events.subscribe\",\"params\":{\"events\":[1]}}");
	assert_string_equal(err_param(m), "events");
	tr_json_free(m);
	m = call(e, b, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"events.unsubscribe\",\"params\":{\"subscription\":\"s1\"}}");
	assert_string_equal(err_param(m), "subscription"); /* a's, not b's */
	tr_json_free(m);
	m = call(e, a, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"events.unsubscribe\",\"params\":{\"subscription\":\"s1\"}}");
	assert_true(tr_json_is(tr_json_get(tr_json_get(m, "result"), "ok"), TR_JSON_TRUE));
	tr_json_free(m);
	client_free(a);
	client_free(b);
}

static void test_limits(void **state) {
	struct env *e = *state;
	struct client *c[4];
	struct tr_json *m;
	uint8_t big[4] = { 0x7f, 0xff, 0xff, 0xff };

	for (int i = 0; i < 4; i++) {
		c[i] = client_new(e);
	}
	for (int i = 0; i < 3; i++) {
		m = call(e, c[i], "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"rpc.describe\"}");
		assert_non_null(tr_json_get(m, "result"));
		tr_json_free(m);
	}
	m = client_recv(e, c[3]);
	assert_int_equal(err_code(m), TR_RPC_OVERLOADED);
	assert_int_equal(tr_json_get(tr_json_get(tr_json_get(m, "error"), "data"), "limit")->u.num.i, 3);
	tr_json_free(m);
	assert_null(client_recv(e, c[3]));
	client_free(c[3]);

	/* framing error: best-effort error, then close */
	client_send_raw(c[0], big, 4);
	m = client_recv(e, c[0]);
	assert_int_equal(err_code(m), TR_RPC_INVALID_REQUEST);
	tr_json_free(m);
	assert_null(client_recv(e, c[0]));
	client_free(c[0]);

	/* in-flight limit: reading pauses, and resumes as replies go out */
	add_task(e);
	for (int i = 0; i < TR_RPC_MAX_INFLIGHT + 2; i++) {
		char buf[200];

		snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"task.fetchLatestVersion\","
			"\"params\":{\"sid\":\"" WT "\"}}", i);
		client_send(c[1], buf);
	}
	m = call(e, c[2], "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}");
	tr_json_free(m);
	for (int i = 0; i < 50 && n_reqs < TR_RPC_MAX_INFLIGHT; i++) {
		(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	}
	for (int i = 0; i < 20; i++) {
		(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	}
	assert_int_equal(n_reqs, TR_RPC_MAX_INFLIGHT);
	m = call(e, c[2], "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"daemon.status\"}");
	assert_true(tr_json_get(tr_json_get(tr_json_get(m, "result"), "counters"),
		"inflightPauses")->u.num.i >= 1);
	tr_json_free(m);
	deliver(0, 200, task_text("assigned", 7), 0);
	assert_int_equal(n_reqs, TR_RPC_MAX_INFLIGHT + 1); /* the stashed frame went out */
	deliver(1, 200, task_text("assigned", 7), 0);
	assert_int_equal(n_reqs, TR_RPC_MAX_INFLIGHT + 2);
	for (size_t i = 2; i < n_reqs; i++) {
		deliver(i, 200, task_text("assigned", 7), 0);
	}
	for (int i = 0; i < TR_RPC_MAX_INFLIGHT + 2; i++) {
		m = client_recv(e, c[1]);
		assert_non_null(tr_json_get(m, "result"));
		assert_int_equal(tr_json_get(m, "id")->u.num.i, i);
		tr_json_free(m);
	}
	reqs_clear();
	client_free(c[1]);
	client_free(c[2]);
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
	struct client *s = client_new(e), *o = client_new(e);
	struct tr_json *m, *data = blob_data();
	int frames = 0;

	m = call(e, s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}");
	tr_json_free(m);
	m = call(e, o, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\","
		"\"params\":{\"events\":[\"ready\"]}}");
	tr_json_free(m);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(tr_subs_publish_daemon(e->d.subs, "tokenUpdated", data), 0);
	}
	tr_json_free(data);
	(void)uv_run(&e->loop, UV_RUN_NOWAIT); /* the close callback */
	m = call(e, o, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"daemon.status\"}");
	assert_int_equal(tr_json_get(tr_json_get(tr_json_get(m, "result"), "counters"),
		"slowClientsDisconnected")->u.num.i, 1);
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "connections")->u.num.i, 1);
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "subscriptions")->u.num.i, 1);
	tr_json_free(m);
	while ((m = client_recv(e, s)) != NULL) {
		frames++;
		tr_json_free(m);
	}
	assert_true(frames > 0 && frames < 200);
	client_free(s);
	client_free(o);
}

/* The soft output limit: a subscriber over TR_OUTQ_SOFT_LIMIT (but under the hard limit)
 * is kept for TR_OUTQ_SOFT_SECONDS, then disconnected and counted; the others stay. */
static void test_soft_output_limit(void **state) {
	struct env *e = *state;
	struct client *s = client_new(e), *o = client_new(e);
	struct tr_json *m, *data = blob_data();
	uint64_t t0, deadline;
	bool gone = false;

	m = call(e, s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\","
		"\"params\":{\"events\":[\"tokenUpdated\"]}}");
	tr_json_free(m);
	/* 40 x 64 KiB: over the 1 MiB soft limit once the socket buffers are full, well under
	 * the 8 MiB hard one */
	for (int i = 0; i < 40; i++) {
		assert_int_equal(tr_subs_publish_daemon(e->d.subs, "tokenUpdated", data), 0);
		(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	}
	tr_json_free(data);
	t0 = uv_hrtime();
	m = call(e, o, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}");
	assert_int_equal(tr_json_get(tr_json_get(tr_json_get(m, "result"), "counters"),
		"slowClientsDisconnected")->u.num.i, 0);
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "connections")->u.num.i, 2);
	tr_json_free(m);
	/* wait for the disconnect (an event with a deadline), without reading s */
	deadline = t0 + (uint64_t)(TR_OUTQ_SOFT_SECONDS + 5) * 1000000000ull;
	while (!gone) {
		struct pollfd p = { .fd = s->fd, .events = POLLRDHUP };

		assert_true(uv_hrtime() < deadline);
		(void)uv_run(&e->loop, UV_RUN_ONCE);
		gone = poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP));
	}
	/* tolerated for the whole soft period first (a lower bound only: not a timing test) */
	assert_true(uv_hrtime() - t0 >= (uint64_t)(TR_OUTQ_SOFT_SECONDS - 1) * 1000000000ull);
	(void)uv_run(&e->loop, UV_RUN_NOWAIT); /* the close callback */
	m = call(e, o, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"daemon.status\"}");
	assert_int_equal(tr_json_get(tr_json_get(tr_json_get(m, "result"), "counters"),
		"slowClientsDisconnected")->u.num.i, 1);
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "connections")->u.num.i, 1);
	tr_json_free(m);
	client_free(s);
	client_free(o);
}

/* Shutdown drains queued output (bounded) before closing. */
static void test_close_flushes(void **state) {
	struct env *e = *state;
	struct client *s = client_new(e);
	struct tr_json *m, *data = blob_data();
	int frames = 0;

	m = call(e, s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}");
	tr_json_free(m);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(tr_subs_publish_daemon(e->d.subs, "tokenUpdated", data), 0);
	}
	tr_json_free(data);
	tr_rpcsrv_close(e->d.rpcsrv, on_closed, e);
	while ((m = client_recv(e, s)) != NULL) {
		frames++;
		tr_json_free(m);
	}
	assert_int_equal(frames, 20);
	while (!e->closed) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	client_free(s);
}

static void test_live_and_stale_socket(void **state) {
	struct env *e = *state;
	struct tr_rpcsrv *s2 = NULL;
	struct tr_config cfg2 = e->cfg;
	struct tr_daemon d2 = e->d;
	char path2[160];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	d2.cfg = &cfg2;
	assert_int_equal(tr_rpcsrv_new(&d2, -1, &s2), -EADDRINUSE);
	/* a stale socket (bound, nobody listening) is replaced */
	snprintf(path2, sizeof(path2), "%s/run/stale", e->dir);
	strcpy(sa.sun_path, path2);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	cfg2.socket_path = path2;
	assert_int_equal(tr_rpcsrv_new(&d2, -1, &s2), 0);
	/* a regular file in the way is not removed */
	{
		char path3[160];
		struct tr_rpcsrv *s3 = NULL;
		int f;

		snprintf(path3, sizeof(path3), "%s/run/file", e->dir);
		f = open(path3, O_CREAT | O_WRONLY, 0600);
		assert_true(f >= 0);
		close(f);
		cfg2.socket_path = path3;
		assert_int_equal(tr_rpcsrv_new(&d2, -1, &s3), -EEXIST);
		assert_null(s3);
		assert_int_equal(access(path3, F_OK), 0);
		unlink(path3);
	}
	tr_rpcsrv_close(s2, on_closed, e);
	while (!e->closed) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	e->closed = false;
	tr_rpcsrv_free(s2);
	assert_int_not_equal(access(path2, F_OK), 0);
}

/* ---- peer credentials: a child running as nobody ---- */

/* The child connects as uid/gid 65534, asks daemon.status and reports: 0 the daemon
 * closed the connection without a reply, 2 it answered, 3 nothing within 5 s, 1 setup. */
static int nobody_child(const char *path) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}";
	unsigned char hdr[4] = { 0, 0, 0, sizeof(req) - 1 };
	struct pollfd pfd;
	char buf[256];
	int fd;

	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0) {
		return 1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		return 1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		return 1;
	}
	/* the daemon may already have closed it: no SIGPIPE */
	(void)send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL);
	(void)send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, 5000) <= 0) {
		return 3;
	}
	ssize_t n = read(fd, buf, sizeof(buf));

	return n > 0 ? 2 : 0;
}

static void on_tick(uv_timer_t *t) {
	(void)t;
}

static int run_nobody(struct env *e) {
	uv_timer_t tick;
	uint64_t deadline;
	int status = -1;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		_exit(nobody_child(e->path));
	}
	assert_int_equal(uv_timer_init(&e->loop, &tick), 0);
	assert_int_equal(uv_timer_start(&tick, on_tick, 5, 5), 0);
	uv_update_time(&e->loop);
	deadline = uv_now(&e->loop) + 10000;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		assert_true(uv_now(&e->loop) < deadline);
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	uv_close((uv_handle_t *)&tick, NULL);
	(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_peer_credentials(void **state) {
	struct env *e = *state;
	char run[160];
	struct client *c;
	struct tr_json *m;

	if (getuid() != 0) {
		skip();
	}
	snprintf(run, sizeof(run), "%s/run", e->dir);
	assert_int_equal(chmod(e->dir, 0711), 0);
	assert_int_equal(chmod(run, 0711), 0);
	assert_int_equal(chmod(e->path, 0666), 0);
	/* not our uid, not root, no --allow-group: closed without a reply */
	assert_int_equal(run_nobody(e), 0);
	/* its group allowed: served */
	e->cfg.allow_group = 65534;
	e->cfg.allow_group_set = true;
	assert_int_equal(run_nobody(e), 2);
	/* another group: refused again */
	e->cfg.allow_group = 65533;
	assert_int_equal(run_nobody(e), 0);
	c = client_new(e);
	m = call(e, c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}");
	assert_int_equal(tr_json_get(tr_json_get(tr_json_get(m, "result"), "counters"),
		"connectionsRefusedCred")->u.num.i, 2);
	tr_json_free(m);
	client_free(c);
	assert_int_equal(chmod(run, 0700), 0);
	assert_int_equal(chmod(e->dir, 0700), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_cancel_transfer_request),
		cmocka_unit_test(test_describe),
		cmocka_unit_test_setup_teardown(test_socket_basics, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_upstream_replies, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_events, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_limits, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_slow_subscriber, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_soft_output_limit, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_close_flushes, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_live_and_stale_socket, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_peer_credentials, env_setup, env_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
