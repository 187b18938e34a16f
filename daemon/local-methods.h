/*
 * local-methods.h — the daemon's method table: the rows answered locally (task.list,
 * task.get, events.*, daemon.*, rpc.describe) plus the Task rows of task-methods.h, and the
 * two handlers main.c gives the socket server.
 */
#pragma once

#include "methods.h"

/* Every slice of the daemon's table, in rpc.describe order; NULL-terminated. */
extern const struct tr_method_table *const tr_daemon_methods[];

/* The rpcsrv dispatch handler (userdata: struct tr_daemon *). Always ends call, now or when
 * the upstream answers. */
void tr_local_methods_dispatch(void *userdata, struct tr_call *call, const char *method,
	const struct tr_json *params);

/* The rpcsrv closed handler (userdata: struct tr_daemon *): drop owner's subscriptions. */
void tr_local_methods_conn_closed(void *userdata, void *owner);
