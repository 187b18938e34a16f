/*
 * common.h — shared bits of the end-to-end tests: one simulator + one daemon
 * per test group, started in the group setup, and helpers on top of trtest.
 */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "rpc.h"
#include "trtest.h"

/* Start the simulator and a daemon for alice, wait until the upstream session is ready. */
int e2e_start(struct trt_env *env, const char *const *sim_extra, const char *const *daemon_extra);
/* Stop both; returns 0 when both exited cleanly (status 0: no leak under valgrind). */
int e2e_stop(struct trt_env *env);
/* The usual group setup: e2e_start() without extra arguments, then a connection for calls
 * (*ret_rpc, unless ret_rpc is NULL) and one subscribed to every event (*ret_sub). Returns
 * 0, or -1 after stopping everything again (cmocka runs no teardown for a failed setup). */
int e2e_start_connected(struct trt_env *env, struct trt_conn **ret_rpc, struct trt_conn **ret_sub);

/* The SID of a simulator worker by name ("alice", "bob"), from /sim/state. Static buffer. */
const char *e2e_worker_sid(struct trt_env *env, const char *name);

/* Create a task for alice through the simulator and wait until `sub` (a connection subscribed
 * to all events) has seen it arrive in the daemon (event reservationCreated). With accept,
 * also accept it and wait until the daemon shows it assigned. */
void e2e_new_task(struct trt_env *env, struct trt_conn *sub, bool accept, char sid[35],
	char res[35]);

/* Subscribe a connection to everything; returns the subscription result (caller frees). */
struct tr_json *e2e_subscribe(struct trt_conn *c, const char *params);

/* Assertions on JSON. */
const char *e2e_str(const struct tr_json *obj, const char *key);
int64_t e2e_int(const struct tr_json *obj, const char *key);
/* version as a string in RPC results */
int64_t e2e_version(const struct tr_json *task);
/* The simulator's wire task: attributes parsed from its JSON string. */
struct tr_json *e2e_sim_attributes(const struct tr_json *sim_task);

/* The last REST request the simulator recorded (caller frees), or NULL. */
struct tr_json *e2e_last_request(struct trt_env *env);

#define E2E_WAIT trt_ms(TRT_DEADLINE_MS)

/* Set `count` large attribute objects (a blob of blob_len bytes each) on task sid through rpc,
 * waiting after each for its `updated` event on watcher (a subscriber that keeps up). */
void e2e_big_updates(struct trt_conn *rpc, struct trt_conn *watcher, const char *sid, int count,
	size_t blob_len);

/* Every open task, following task.list's pages: {"tasks":[…]} (caller frees). */
struct tr_json *e2e_list_all(struct trt_conn *c);

/* The daemon's cache (task.list) must hold exactly the tasks of alice's live reservations in
 * the simulator (pending, accepted, wrapping), with the same versions and wire statuses.
 * Tasks the daemon keeps in its recently-closed area (final status) are ignored. */
void e2e_assert_cache_matches(struct trt_env *env, struct trt_conn *c);
