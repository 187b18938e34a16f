/*
 * simclient.h — helpers for taskrouter-sim's own tests: start the simulator as a child
 * (reading its "listening on" line with a poll() deadline), call its HTTP endpoints with
 * libcurl easy (blocking is fine in a test process), and a minimal raw-socket websocket
 * client for its event stream.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <yajl/yajl_tree.h>

struct simproc {
	pid_t pid;
	int pidfd;
	int port;
	int out_fd;
	char dir[256];
};

/* Start $TR_SIM with extra args (NULL-terminated). 0 or -errno. */
int sc_start(struct simproc *p, const char *const *extra);
/* SIGTERM, wait up to timeout_ms; returns the exit status (or -ETIMEDOUT, 128+sig). */
int sc_stop(struct simproc *p, int timeout_ms);
/* Read a worker's token file (static buffer). */
const char *sc_token(struct simproc *p, const char *worker);

/* HTTP on the simulator port. Returns the status; *ret gets the parsed JSON (caller frees
 * with yajl_tree_free; NULL if none). headers: NULL-terminated list or NULL. */
int sc_http(struct simproc *p, const char *method, const char *path, const char *body,
	const char *const *headers, yajl_val *ret);
/* The REST proxy: POST /v1/wschannels with {url, method, params, token}. params is JSON text. */
int sc_rest(struct simproc *p, const char *token, const char *api, const char *method,
	const char *url, const char *params, const char *if_match, yajl_val *ret);
/* Elapsed ms of the last sc_http call. */
int64_t sc_last_ms(void);

/* ---- websocket ---- */
struct ws {
	int fd;
	unsigned char *buf;
	size_t len, cap;
};

/* Connect and upgrade with the given query string. Returns the HTTP status (101 on success,
 * with *ret filled) or -errno. */
int ws_open(struct simproc *p, const char *query, struct ws **ret);
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

/* JSON helpers */
yajl_val jget(yajl_val v, const char *path); /* dotted path */
const char *jstr(yajl_val v, const char *path);
long long jint(yajl_val v, const char *path);
int64_t now_ms(void);
const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
