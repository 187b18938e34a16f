/*
 * fuzz-dispatch.c — libFuzzer target for request dispatch with arbitrary params: the
 * method validation and upstream request building of daemon/methods.c
 * (tr_task_methods_build and tr_worker_methods_build, the pure part of tr_methods_dispatch)
 * and the RFC 3339 time parser they use (tr_task_json_time_parse, daemon/task-json.c).
 *
 * Input layout: byte 0 picks the method name from the method table (plus names that are
 * not Task request methods); byte 1 holds flags: bit 0 version_check, bit 1 no
 * workspace/worker SIDs, bit 2 look the task up in an empty cache instead of the
 * pre-populated one, bit 3 also parse the rest as an RFC 3339 time. The rest is the params
 * JSON. As tr_methods_dispatch does, params that are not an object are not passed on and
 * the task is the cached task named by params.sid (the reservation, for the Reservation
 * methods: by a WR… or WT… sid). The cache is populated once with tasks in several states
 * (reserved, assigned, wrapping, transferring, closed), the worker model with a worker, two
 * activities and a channel (an empty model with bit 2).
 * Checks: the return value is one of the documented ones; a refusal names a code and a
 * reason (and a param for invalid params); a built request has a path, GET or POST, v1 or
 * v2, object params that dump and parse back, and no If-Match unless version_check.
 *
 * The bridge, the RPC server and the reply paths are not used: their symbols are stubs
 * that abort.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "cache.h"
#include "json.h"
#include "task-methods.h"
#include "rpc.h"
#include "rpcsrv.h"
#include "task-json.h"
#include "worker-methods.h"
#include "worker-state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
	if (!cond) {
		abort();
	}
}

/* ---- stubs: never reached from tr_task_methods_build ---- */

const char *tr_bridge_state_str(enum tr_bridge_state s) {
	(void)s;
	abort();
}
enum tr_bridge_state tr_bridge_get_state(const struct tr_bridge *b) {
	(void)b;
	abort();
}
const char *tr_bridge_workspace_sid(const struct tr_bridge *b) {
	(void)b;
	abort();
}
const char *tr_bridge_worker_sid(const struct tr_bridge *b) {
	(void)b;
	abort();
}
int tr_bridge_request(struct tr_bridge *b, const struct tr_upstream_request *req, tr_upstream_cb cb,
	void *userdata) {
	(void)b, (void)req, (void)cb, (void)userdata;
	abort();
}
int tr_bridge_update_token(struct tr_bridge *b, const char *token, bool allow_switch) {
	(void)b, (void)token, (void)allow_switch;
	abort();
}
struct tr_json *tr_bridge_status(const struct tr_bridge *b) {
	(void)b;
	abort();
}
int64_t tr_bridge_token_expires_at(const struct tr_bridge *b) {
	(void)b;
	abort();
}
void tr_call_result(struct tr_call *call, struct tr_json *result) {
	(void)call, (void)result;
	abort();
}
void tr_call_error(struct tr_call *call, int code, const char *message, struct tr_json *data) {
	(void)call, (void)code, (void)message, (void)data;
	abort();
}
void *tr_call_owner(struct tr_call *call) {
	(void)call;
	abort();
}
int tr_rpcsrv_send(void *owner, char *head, size_t head_len, struct tr_outq_shared *tail) {
	(void)owner, (void)head, (void)head_len, (void)tail;
	abort();
}

/* ---- the cache ---- */

static const char *const names[] = {
	"task.complete", "task.wrapUp", "task.setAttributes", "task.setVirtualStartTime",
	"task.fetchLatestVersion", "task.hold", "task.kick", "task.transfer",
	"task.cancelTransfer", "task.updateParticipant", "task.get", "task.list",
	"events.subscribe", "daemon.status", "rpc.describe", "task.nope",
	"reservation.accept", "reservation.reject", "reservation.wrap", "reservation.complete",
	"reservation.call", "reservation.dequeue", "reservation.redirect",
	"reservation.conference", "reservation.updateParticipant",
	"reservation.fetchLatestVersion", "reservation.get", "reservation.list",
	"worker.setAttributes", "worker.fetchLatestVersion", "worker.setActivity",
	"worker.createTask", "worker.get", "activity.list", "channel.list",
};

static struct tr_cache *cache, *empty;
static struct tr_wstate *wstate, *wempty;

static void wfeed(int (*add)(struct tr_wstate *, const struct tr_json *), const char *text) {
	struct tr_json *j = NULL;

	check(tr_json_parse(text, strlen(text), &j, NULL) == 0);
	check(add(wstate, j) == 0);
	tr_json_free(j);
}

static void apply(const char *type, const char *text) {
	struct tr_json *j = NULL;

	check(tr_json_parse(text, strlen(text), &j, NULL) == 0);
	check(tr_cache_apply(cache, type, j, 1000) == 0);
	tr_json_free(j);
}

#define TASK(sid, st, v) "{\"sid\":\"" sid "\",\"assignment_status\":\"" st "\"," \
	"\"attributes\":\"{\\\"type\\\":\\\"support\\\"}\",\"addons\":\"{}\",\"age\":95," \
	"\"priority\":5,\"reason\":null,\"timeout\":3600,\"queue_sid\":\"WQ1\"," \
	"\"queue_name\":\"Support\",\"workflow_sid\":\"WW1\",\"workflow_name\":\"Inbound\"," \
	"\"task_channel_sid\":\"TC1\",\"task_channel_unique_name\":\"voice\"," \
	"\"routing_target\":null,\"date_created\":1735819200,\"date_updated\":1735819295," \
	"\"virtual_start_time\":1735819200,\"version\":" #v "}"
#define RES(rsid, rst, task) "{\"sid\":\"" rsid "\",\"worker_sid\":\"WK1\"," \
	"\"reservation_status\":\"" rst "\",\"task\":" task "}"
#define XFER(sid, st, rsid) "{\"sid\":\"" sid "\",\"task_sid\":\"WT4\",\"transfer_type\":\"WORKER\"," \
	"\"transfer_mode\":\"WARM\",\"transfer_to\":\"WK2\",\"transfer_status\":\"" st "\"," \
	"\"initiating_reservation_sid\":\"" rsid "\",\"initiating_worker_sid\":\"WK1\"," \
	"\"initiating_queue_sid\":\"WQ1\",\"initiating_workflow_sid\":\"WW1\"," \
	"\"date_created\":1,\"date_updated\":2}"

static void populate(void) {
	cache = tr_cache_new(0, NULL, NULL);
	empty = tr_cache_new(0, NULL, NULL);
	check(cache != NULL && empty != NULL);
	apply("reservation.created", RES("WR1", "pending", TASK("WT1", "reserved", 1)));
	apply("reservation.created", RES("WR2", "pending", TASK("WT2", "reserved", 1)));
	apply("reservation.accepted", RES("WR2", "accepted", TASK("WT2", "assigned", 2)));
	apply("reservation.created", RES("WR3", "accepted", TASK("WT3", "assigned", 1)));
	apply("reservation.wrapup", RES("WR3", "wrapping", TASK("WT3", "wrapping", 2)));
	apply("reservation.created", RES("WR4", "accepted", TASK("WT4", "assigned", 7)));
	tr_cache_transfer_in_flight(cache, "WT4", 1);
	{
		struct tr_json *j = NULL;
		const char *x = XFER("TT1", "initiated", "WR4");

		check(tr_json_parse(x, strlen(x), &j, NULL) == 0);
		check(tr_cache_apply_transfer_response(cache, "WT4", j, 1000) == 0);
		tr_json_free(j);
	}
	apply("reservation.created", RES("WR5", "accepted", TASK("WT5", "assigned", 1)));
	apply("task.canceled", TASK("WT5", "canceled", 2));
	wstate = tr_wstate_new(NULL, NULL);
	wempty = tr_wstate_new(NULL, NULL);
	check(wstate != NULL && wempty != NULL);
	tr_wstate_resync_begin(wstate);
	wfeed(tr_wstate_resync_worker, "{\"sid\":\"WK1\",\"activity_sid\":\"WA1\","
		"\"activity_name\":\"Available\",\"available\":true,\"attributes\":\"{}\","
		"\"version\":3}");
	wfeed(tr_wstate_resync_activity, "{\"sid\":\"WA1\",\"friendly_name\":\"Available\","
		"\"available\":true}");
	wfeed(tr_wstate_resync_activity, "{\"sid\":\"WA2\",\"friendly_name\":\"Offline\","
		"\"available\":false}");
	wfeed(tr_wstate_resync_channel, "{\"sid\":\"WC1\",\"task_channel_unique_name\":"
		"\"voice\",\"configured_capacity\":1,\"available\":1}");
	check(tr_wstate_resync_end(wstate, 0, true) == 0);
}

static void check_req(const struct tr_methods_req *r, bool version_check) {
	char *text = NULL;
	size_t len = 0;
	struct tr_json *back = NULL;

	check(memchr(r->path, '\0', sizeof(r->path)) != NULL);
	check(r->path[0] != '\0');
	check(r->method && (strcmp(r->method, "GET") == 0 || strcmp(r->method, "POST") == 0));
	check(r->api_version && (strcmp(r->api_version, "v1") == 0 ||
		strcmp(r->api_version, "v2") == 0));
	check(r->kind == TR_METHODS_TASK || r->kind == TR_METHODS_TRANSFER ||
		r->kind == TR_METHODS_RESERVATION || r->kind == TR_METHODS_RES_IGNORED ||
		r->kind == TR_METHODS_WORKER || r->kind == TR_METHODS_CREATED);
	check(r->if_match >= -1);
	check(version_check || r->if_match == -1);
	if (r->params) {
		check(r->params->type == TR_JSON_OBJECT);
		if (tr_json_dump(r->params, &text, &len) == 0) {
			check(tr_json_parse(text, len, &back, NULL) == 0);
			check(tr_json_equal(r->params, back));
			tr_json_free(back);
			free(text);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct tr_methods_req req;
	struct tr_methods_err err;
	struct tr_json *params = NULL;
	const struct tr_cache_task *t;
	const char *method, *ws = "WS1", *wk = "WK1";
	bool vc;
	uint8_t flags;
	int r;

	if (cache == NULL) {
		populate();
	}
	if (size < 2) {
		return 0;
	}
	method = names[data[0] % (sizeof(names) / sizeof(names[0]))];
	flags = data[1];
	vc = flags & 1;
	if (flags & 2) {
		ws = NULL;
		wk = NULL;
	}
	if (flags & 8) {
		char buf[128];
		size_t n = size - 2 < sizeof(buf) - 1 ? size - 2 : sizeof(buf) - 1;
		int64_t when = 0;

		memcpy(buf, data + 2, n);
		buf[n] = '\0';
		r = tr_task_json_time_parse(buf, &when);
		check(r == 0 || r == -EINVAL);
	}
	if (tr_json_parse((const char *)data + 2, size - 2, &params, NULL) != 0) {
		params = NULL;
		if (size > 2) {
			return 0;
		}
	}
	if (params && params->type != TR_JSON_OBJECT) {
		tr_json_free(params);
		return 0; /* tr_methods_dispatch refuses these first */
	}
	t = tr_cache_get((flags & 4) ? empty : cache, tr_json_get_string(params, "sid"));
	memset(&req, 0, sizeof(req));
	memset(&err, 0, sizeof(err));
	if (strncmp(method, "task.", 5) == 0) {
		r = tr_task_methods_build(method, params, t, ws, wk, vc, &req, &err);
	} else {
		struct tr_methods_ctx x = { .wstate = (flags & 4) ? wempty : wstate,
			.workspace_sid = ws ? ws : "", .worker_sid = wk ? wk : "",
			.version_check = vc };

		t = NULL;
		x.res = tr_cache_find_res((flags & 4) ? empty : cache,
			tr_json_get_string(params, "sid"), &t);
		x.task = t;
		r = tr_worker_methods_build(method, params, &x, &req, &err);
	}
	if (r == 0) {
		check_req(&req, vc);
		tr_task_methods_req_done(&req);
		check(req.params == NULL);
	} else if (r == -EINVAL) {
		check(err.code != 0 && err.reason != NULL);
		check(err.code != TR_RPC_INVALID_PARAMS || err.param != NULL);
	} else {
		check(r == -ENOENT || r == -ENOMEM);
	}
	tr_json_free(params);
	return 0;
}
