/*
 * bridge-stub.h — the bridge functions the local side calls, stubbed for unit tests that
 * compile methods.c and core.c without the upstream session: requests are recorded in reqs[]
 * and answered by the test through their callback.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "bridge.h"

#define WS "WS0acbd5dc35263341780bd09152200e87"
#define WK "WKe26e96b8336b262c51a660cfb175a96b"

#define STUB_MAX_REQS 32

struct stub_req {
	char path[256];
	char method[8];
	char api[4];
	char *params; /* the request's params, dumped */
	int64_t if_match;
	tr_upstream_cb cb; /* NULL once answered */
	void *userdata;
};

extern enum tr_bridge_state stub_state; /* what tr_bridge_get_state says */
extern const char *stub_worker_sid; /* tr_bridge_worker_sid's answer (WK) */
extern int stub_request_ret;            /* < 0: tr_bridge_request fails with it */
extern int stub_resyncs;                /* tr_bridge_request_resync calls */
extern struct stub_req reqs[STUB_MAX_REQS];
extern size_t n_reqs;

/* Forget the recorded requests; asserts each was answered. */
void reqs_clear(void);

struct tr_daemon;
struct tr_config;

/* A daemon for the local side on a new loop: cfg (version check on, the rest as the caller
 * set it), a stubbed bridge, and the cache, subscriptions and core of tr_core_init. Asserts. */
void stub_daemon_init(struct tr_daemon *d, uv_loop_t *loop, struct tr_config *cfg);
