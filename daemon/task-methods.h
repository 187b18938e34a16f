/*
 * task-methods.h — the Task methods that send one upstream request each (spec §4.2): their
 * table rows, request builders and the upstream round trip (412 → GET → version conflict,
 * refresh after a reply that could not be applied, error mapping).
 */
#pragma once

#include "methods.h"

extern const struct tr_method_table tr_task_methods;

/*
 * Validate a Task method's params from its row and build its upstream request. task is the cached
 * task named by params.sid (NULL when unknown): params are checked first, then the task.
 * Returns 0 and fills ret, -EINVAL with err filled in, -ENOENT when method is not a method
 * that sends a request, or -ENOMEM. Pure: tests and the fuzz target call it directly.
 */
int tr_task_methods_build(const char *method, const struct tr_json *params,
	const struct tr_cache_task *task, const char *workspace_sid, const char *worker_sid,
	bool version_check, struct tr_methods_req *ret, struct tr_methods_err *err);
void tr_task_methods_req_done(struct tr_methods_req *r);

