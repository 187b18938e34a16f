/*
 * upcall.h — what every method that goes upstream shares: sending a built request through
 * the bridge once the session is ready, and the replies for the outcomes that do not depend
 * on the method (timeout, network failure, 401, 429, another non-2xx), with the same codes
 * and data for the Task, Reservation and Worker methods (doc/PROTOCOL.md).
 *
 * The methods' own modules (task-methods.c, worker-methods.c) build the request, apply a 2xx
 * to their model and handle a 412. Depends on bridge.h, rpcsrv.h (struct tr_call) and
 * methods.h (struct tr_methods_req).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "rest.h"

struct tr_call;
struct tr_daemon;
struct tr_json;
struct tr_methods_req;

/*
 * Send req for call when the session is ready. Returns 0 (cb gets the reply, once), or a
 * negative errno after answering call itself (-32002 not connected, -32009 token expired,
 * -32603): cb is then never called.
 */
int tr_upcall_send(struct tr_daemon *d, struct tr_call *call, const struct tr_methods_req *req,
	tr_upstream_cb cb, void *userdata);

/* Is reply a 2xx. */
bool tr_upcall_ok(const struct tr_upstream_reply *reply);

/*
 * Answer call for a reply that is neither a 2xx nor a 412 nor a 2xx body that could not be
 * read (-EBADMSG, which the caller answers as refresh pending): -32005 timeout, -32013
 * network error {message, maybeSent}, -32009 (401), -32006 (429), else -32003 {httpStatus,
 * twilioCode, message}.
 */
void tr_upcall_reply_error(struct tr_call *call, const struct tr_upstream_reply *reply);

/* {httpStatus, twilioCode?, message?} for an error's data; NULL on ENOMEM. */
struct tr_json *tr_upcall_data(long status, int64_t code, const char *message);
