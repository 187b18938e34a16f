/*
 * upcall.c — sending a method's request upstream and the shared error replies (see upcall.h).
 */
#include "upcall.h"

#include <errno.h>
#include <string.h>

#include "bridge.h"
#include "daemon.h"
#include "json.h"
#include "methods.h"
#include "rpc.h"
#include "rpcsrv.h"

int tr_upcall_send(struct tr_daemon *d, struct tr_call *call, const struct tr_methods_req *req,
	tr_upstream_cb cb, void *userdata) {
	const struct tr_upstream_request up = {
		.path = req->path,
		.method = req->method,
		.api_version = req->api_version,
		.params = req->params,
		.if_match = req->if_match,
		.retry_transient = strcmp(req->method, "GET") == 0,
	};
	enum tr_bridge_state st = tr_bridge_get_state(d->bridge);
	int r;

	if (st != TR_BRIDGE_READY) {
		r = st == TR_BRIDGE_TOKEN_EXPIRED ? -EKEYEXPIRED : -ENOTCONN;
	} else {
		r = tr_bridge_request(d->bridge, &up, cb, userdata);
	}
	if (r == -EKEYEXPIRED) {
		tr_call_error(call, TR_RPC_TOKEN_EXPIRED, "the worker token expired", NULL);
	} else if (r == -ENOTCONN || r == -ESHUTDOWN) {
		tr_call_error(call, TR_RPC_NOT_CONNECTED, "not connected", NULL);
	} else if (r < 0) {
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "internal error", NULL);
	}
	return r;
}

bool tr_upcall_ok(const struct tr_upstream_reply *reply) {
	return reply->err == 0 && reply->http_status >= 200 && reply->http_status < 300;
}

struct tr_json *tr_upcall_data(long status, int64_t code, const char *message) {
	struct tr_json *o = tr_json_new_object();
	int e = 0;

	tr_json_put(o, "httpStatus", tr_json_new_int(status), &e);
	if (code) {
		tr_json_put(o, "twilioCode", tr_json_new_int(code), &e);
	}
	if (message) {
		tr_json_put(o, "message", tr_json_new_string(message), &e);
	}
	return e < 0 ? tr_json_free(o) : o;
}

void tr_upcall_reply_error(struct tr_call *call, const struct tr_upstream_reply *reply) {
	if (reply->err == -ETIMEDOUT) {
		tr_call_error(call, TR_RPC_TIMEOUT, "upstream timeout; outcome unknown", NULL);
	} else if (reply->err < 0) {
		struct tr_json *data = tr_json_new_object();
		int e = 0;

		tr_json_put(data, "message",
			tr_json_new_string(reply->message ? reply->message : "network error"), &e);
		tr_json_put(data, "maybeSent", tr_json_new_bool(reply->maybe_sent), &e);
		tr_call_error(call, TR_RPC_NETWORK_ERROR, "network error",
			e < 0 ? tr_json_free(data) : data);
	} else if (reply->http_status == 401) {
		/* the proxy no longer accepts the token (expired or revoked) */
		tr_call_error(call, TR_RPC_TOKEN_EXPIRED, "the worker token is not accepted",
			tr_upcall_data(401, reply->twilio_code, reply->message));
	} else if (reply->http_status == 429) {
		tr_call_error(call, TR_RPC_RATE_LIMITED, "rate limited",
			tr_upcall_data(429, reply->twilio_code, reply->message));
	} else {
		tr_call_error(call, TR_RPC_UPSTREAM_ERROR,
			reply->message ? reply->message : "upstream error",
			tr_upcall_data(reply->http_status, reply->twilio_code, reply->message));
	}
}
