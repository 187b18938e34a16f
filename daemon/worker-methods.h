/*
 * worker-methods.h — the Worker side of the SDK as methods (reservation-worker.md): the
 * Reservation methods (reservation.*), the Worker's (worker.*), activity.list and
 * channel.list. The rows that go upstream build exactly the SDK's request (§2.1 and the
 * method tables), after stricter checks than the SDK's: a member the row does not list, a
 * wrong type, an unknown activity or rejectPendingReservations on an available activity
 * are refused and nothing is sent. A 2xx updates the cache (reservations) or the worker
 * model and returns the object; a 412 answers with the current version, fetched.
 *
 * Depends on methods.h (the row types), cache.h and worker-state.h (the models), upcall.h
 * (sending and the shared errors), bridge.h, task-json.h.
 */
#pragma once

#include <stdbool.h>

#include "methods.h"

extern const struct tr_method_table tr_worker_methods;

/*
 * Validate params against the row of method and build its upstream request from ctx (its
 * params member is ignored: params is used), as the daemon would send it. For tests and the
 * fuzz target. Returns 0 (free with tr_task_methods_req_done), -ENOENT (no such row, or a
 * row that sends nothing), -EINVAL (err filled in: a bad parameter, an unknown reservation
 * with code TR_RPC_NOT_FOUND, or a state the request cannot be built in), -ENOMEM.
 */
int tr_worker_methods_build(const char *method, const struct tr_json *params,
	const struct tr_methods_ctx *ctx, struct tr_methods_req *ret, struct tr_methods_err *err);
