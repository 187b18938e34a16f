/*
 * daemon.h — the daemon's top-level object: who owns what.
 *
 * main.c creates the loop, the config, the bridge (upstream session + REST),
 * and calls tr_core_init() (cache + subscriptions) and tr_rpcsrv_new() (local
 * socket). Every module gets this struct and reaches its peers through it;
 * only main.c writes the pointers.
 */
#pragma once

#include <uv.h>

struct tr_config;
struct tr_bridge;
struct tr_cache;
struct tr_subs;
struct tr_rpcsrv;
struct tr_core;
struct tr_wstate;

struct tr_daemon {
	uv_loop_t *loop;
	const struct tr_config *cfg;
	struct tr_bridge *bridge;  /* owned by main.c; bridge.c */
	struct tr_cache *cache;    /* created by tr_core_init; cache.c */
	struct tr_wstate *wstate;  /* created by tr_core_init; worker-state.c */
	struct tr_subs *subs;      /* created by tr_core_init; subs.c */
	struct tr_rpcsrv *rpcsrv;  /* rpcsrv.c */
	struct tr_core *core;      /* created by tr_core_init; core.c */
};
