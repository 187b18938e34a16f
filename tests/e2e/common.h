/*
 * common.h — shared bits of the end-to-end and fault tests: the fixture (one simulator, one
 * daemon and two connections, started in a group's or a test's setup) and cmocka assertions
 * on top of the harness (trtest.h).
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

/* The path of a program the test runs, from the environment variable var (set by meson);
 * NULL, said on stderr, when it is not set. */
const char *e2e_binary(const char *var);

/* Start the simulator and a daemon for alice, wait until the upstream session is ready.
 * On failure, what was started is stopped again (cmocka runs no teardown after a failed
 * setup). */
int e2e_start(struct trt_env *env, const char *const *sim_extra, const char *const *daemon_extra);
/* Stop both; returns 0 when both exited cleanly (status 0: no leak under valgrind) and the
 * worker's token is not in the daemon's log. */
int e2e_stop(struct trt_env *env);

/* The fixture: a simulator and a daemon, a connection for calls and one subscribed to every
 * event. A test program runs one fixture at a time, so there is one, shared by its tests. */
struct e2e {
	struct trt_env env;
	struct trt_conn *rpc; /* for calls */
	struct trt_conn *sub; /* subscribed to every event */
};
extern struct e2e e2e;

/* Extra arguments for the fixture: a test's cmocka initial state (prestate). */
struct e2e_args {
	const char *const *sim;
	const char *const *daemon;
};

/* cmocka setup, of a group or of one test: start the fixture with the arguments in *state (a
 * struct e2e_args, NULL for none) and connect. */
int e2e_setup(void **state);
/* cmocka teardown: disconnect and e2e_stop; fails unless both exited cleanly. */
int e2e_teardown(void **state);
/* Connect rpc and sub to the running daemon and subscribe sub (after a start or a restart).
 * 0 or -1. */
int e2e_connect(void);
/* Close rpc and sub. */
void e2e_disconnect(void);
/* Another connection to the fixture's daemon (asserted; caller frees). */
struct trt_conn *e2e_open(void);
/* Another connection, subscribed with params (NULL: to everything). */
struct trt_conn *e2e_open_subscribed(const char *params);

/* Stop the daemon (asserting a clean exit) and start it again for alice with these extra
 * arguments; wait until it is ready. */
void e2e_restart_daemon(struct trt_env *env, const char *const *daemon_extra);
/* Disconnect, stop the daemon (or reap it, if it stopped already), create a task for alice
 * upstream while it is down (sid and reservation into sid/res), start it again, wait until
 * it is ready and connect. */
void e2e_restart_with_task_while_down(char sid[35], char res[35]);
/* A fresh token for alice from the simulator, valid ttl seconds (caller frees). */
char *e2e_mint_token(struct trt_env *env, int ttl);
/* Assert that text contains needle (printing the text when not). */
void e2e_assert_contains(const char *text, const char *needle);

/* POST to the simulator's control API and assert 200. body may be NULL. */
void e2e_sim_post(struct trt_env *env, const char *path, const char *body);
/* Assert that event `name` (for task sid, if not NULL) arrives on c. */
void e2e_wait_event(struct trt_conn *c, const char *name, const char *sid);
/* Assert that c sees the upstream session drop (disconnected) and come back (ready); why
 * names the cause in the message. */
void e2e_wait_reconnected(struct trt_conn *c, const char *why);
/* The version of a task from task.get on c. */
int64_t e2e_task_version(struct trt_conn *c, const char *sid);
/* Upstream (the simulator's control API), set task sid's attributes to {"i": i, "b": blob},
 * the blob blob_len bytes long. */
void e2e_sim_big_update(struct trt_env *env, const char *sid, int i, size_t blob_len);

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

/* An environment whose simulator will listen on [::1], named by that address (over TLS when
 * tls): false, after saying so, where [::1] cannot be bound (the test then passes having
 * tried nothing). */
bool e2e_env_ipv6(struct trt_env *env, bool tls);

/* daemon.status over a connection of its own: the whole status (caller frees) and, in
 * *ret_up, its upstream object. */
struct tr_json *e2e_upstream(struct trt_env *env, const struct tr_json **ret_up);
/* Through the daemon of env: a task for alice arrives as an event (the websocket), and an
 * accept and an attribute write go upstream (REST, each a fresh connection). tag goes into
 * the attributes. */
void e2e_task_round_trip(struct trt_env *env, const char *tag);

/* Set `count` large attribute objects (a blob of blob_len bytes each) on task sid upstream (the
 * simulator's control API: task.setAttributes refuses more than TaskRouter's 32 KiB), waiting
 * after each for its `updated` event on watcher (a subscriber that keeps up). */
void e2e_big_updates(struct trt_env *env, struct trt_conn *watcher, const char *sid, int count,
	size_t blob_len);

/* Every open task, following task.list's pages: {"tasks":[…]} (caller frees). */
struct tr_json *e2e_list_all(struct trt_conn *c);

/* The daemon's cache (task.list) must hold exactly the tasks of alice's live reservations in
 * the simulator (pending, accepted, wrapping), with the same versions and wire statuses.
 * Tasks the daemon keeps in its recently-closed area (final status) are ignored. */
void e2e_assert_cache_matches(struct trt_env *env, struct trt_conn *c);
