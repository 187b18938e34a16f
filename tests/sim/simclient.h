/*
 * simclient.h — what taskrouter-sim's own tests need beyond the harness (trtest.h, which
 * starts and stops the simulator and sends its HTTP requests): the answers as yajl trees
 * (the simulator's own JSON library), its REST endpoint called as a worker, and a minimal
 * raw-socket websocket client for its event stream.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "trtest.h"

/* HTTP on the simulator's port. Returns the status; *ret gets the parsed JSON (caller frees
 * with yajl_tree_free; NULL if none). */
int sc_http(
	struct trt_env *env, const char *method, const char *path, const char *body, yajl_val *ret);
/* The REST proxy: POST /v1/wschannels with {url, method, params, token}. params is JSON text. */
int sc_rest(struct trt_env *env, const char *token, const char *api, const char *method,
	const char *url, const char *params, const char *if_match, yajl_val *ret);
/* Elapsed ms of the last sc_http or sc_rest call. */
int64_t sc_last_ms(void);

/* ---- websocket ---- */
struct ws {
	struct trt_rbuf sock; /* the connection and what was read from it */
};

/* Connect and upgrade with the given query string. Returns the HTTP status (101 on success,
 * with *ret filled) or -errno. */
int ws_open(struct trt_env *env, const char *query, struct ws **ret);
void ws_free(struct ws *w);

enum { WS_TEXT = 1, WS_CLOSE = 8, WS_EOF = -1 };
struct wsframe {
	int opcode; /* WS_TEXT, WS_CLOSE, other opcodes, or WS_EOF */
	char *data; /* NUL-terminated payload (malloc'd) */
	size_t len;
	int close_code;
};
/* Next frame within timeout_ms: 0, -ETIMEDOUT. */
int ws_next(struct ws *w, int timeout_ms, struct wsframe *f);
void ws_frame_done(struct wsframe *f);
/* Next non-heartbeat text frame (or a close/EOF). 0, -ETIMEDOUT. */
int ws_next_event(struct ws *w, int timeout_ms, struct wsframe *f);
/* Wait for an event of this type (skipping others); returns the parsed frame or NULL. */
yajl_val ws_wait(struct ws *w, const char *type, int timeout_ms);
/* Read until the connection ends: the close frame's code, its reason copied into reason;
 * WS_EOF when it ends without a close frame; -ETIMEDOUT; -ENOTCONN when w is NULL. */
int ws_wait_close(struct ws *w, int timeout_ms, char *reason, size_t size);

/* JSON helpers */
yajl_val jget(yajl_val v, const char *path); /* dotted path */
const char *jstr(yajl_val v, const char *path);
long long jint(yajl_val v, const char *path);
