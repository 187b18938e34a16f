/* bridge-stub.c — see bridge-stub.h. */
#include "bridge-stub.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "core.h"
#include "daemon.h"
#include "json.h"


enum tr_bridge_state stub_state = TR_BRIDGE_READY;
int stub_request_ret;
const char *stub_worker_sid = WK;
int stub_resyncs;
struct stub_req reqs[STUB_MAX_REQS];
size_t n_reqs;

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
	return stub_worker_sid;
}
int tr_bridge_request(struct tr_bridge *b, const struct tr_upstream_request *req, tr_upstream_cb cb,
	void *userdata) {
	(void)b;
	if (stub_request_ret < 0) {
		return stub_request_ret;
	}
	assert_true(n_reqs < STUB_MAX_REQS);
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
int tr_bridge_update_token(struct tr_bridge *b, const char *token, bool allow_switch) {
	(void)b;
	if (strcmp(token, "expired") == 0) {
		return -EKEYEXPIRED;
	}
	if (strcmp(token, "other-worker") == 0) {
		return allow_switch ? 0 : -EXDEV;
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

void reqs_clear(void) {
	for (size_t i = 0; i < n_reqs; i++) {
		assert_null(reqs[i].cb); /* every request was answered */
		free(reqs[i].params);
	}
	n_reqs = 0;
}

void stub_daemon_init(struct tr_daemon *d, uv_loop_t *loop, struct tr_config *cfg) {
	static int opaque; /* the bridge the stubs are given: never dereferenced */

	assert_int_equal(uv_loop_init(loop), 0);
	cfg->version_check = true;
	*d = (struct tr_daemon){ .loop = loop, .cfg = cfg, .bridge = (struct tr_bridge *)&opaque };
	assert_int_equal(tr_core_init(d), 0);
	stub_state = TR_BRIDGE_READY;
	stub_request_ret = 0;
	stub_resyncs = 0;
}
