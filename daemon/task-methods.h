/*
 * task-methods.h — the Task methods that send one upstream request each (spec §4.2): their
 * table rows, request builders and the upstream round trip (412 → GET → version conflict,
 * refresh after a reply that could not be applied, error mapping).
 */
#pragma once

#include "methods.h"

extern const struct tr_method_table tr_task_methods;
