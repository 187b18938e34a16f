/*
 * core.h — glue between the bridge and the local side: creates the cache and
 * the subscription hub, applies bridge callbacks to the cache, and publishes
 * task and daemon events to subscribers. After each resync it fetches the final
 * state of the tasks that vanished (through tr_bridge_request) for the cache.
 */
#pragma once

struct tr_daemon;
struct tr_bridge_events;

/* Create d->cache, d->subs and d->core. Returns 0 or negative errno. */
int tr_core_init(struct tr_daemon *d);
/* The callbacks to hand to tr_bridge_new, with d as userdata. */
const struct tr_bridge_events *tr_core_bridge_events(void);
/* Free d->cache and d->subs, close d->core's timers (after the rpcsrv and bridge are closed). */
void tr_core_done(struct tr_daemon *d);
