/*
 * client-private.h — internals of libtaskrouter shared by client.c and its unit tests.
 * Nothing here is exported (see libtaskrouter.map).
 */
#pragma once

#include "taskrouter/client.h"

struct tr_json;

/* Unread events kept for tr_client_next_event; one more kills the connection (-ENOBUFS),
 * and a watcher resubscribes with since. */
#define TR_CLIENT_MAX_QUEUED_EVENTS 4096

/* Bytes of unsent requests; tr_client_call_async beyond it fails with -ENOBUFS. */
#define TR_CLIENT_MAX_OUTQ (8u * 1024u * 1024u)

/* recv() calls per tr_client_process (64 KiB each), so one busy connection cannot starve
 * the caller's loop. */
#define TR_CLIENT_READS_PER_PROCESS 16

/* tr_client_call on a JSON tree (params borrowed; NULL for none). On success *ret_result
 * (if not NULL) owns the result tree. */
int tr_client_call_tree(struct tr_client *c, const char *method, const struct tr_json *params,
	int timeout_ms, struct tr_json **ret_result, struct tr_client_error *ret_err);
