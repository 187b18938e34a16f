/*
 * trtest.h — the end-to-end test harness: start taskrouter-sim and taskrouterd
 * as child processes in a temporary directory, talk to the daemon over its
 * socket (length-prefixed JSON-RPC, through proto/) and to the simulator's
 * control API (HTTP, libcurl easy: blocking is fine in a test process).
 *
 * Nothing here sleeps to synchronise: every wait is a poll() with a deadline
 * on a pipe, a socket or a pidfd. Binaries come from the environment set by
 * meson: TR_SIM, TR_DAEMON, TR_CTL. With TR_UNDER_VALGRIND=1 (the 'valgrind'
 * test setup) the daemon and the simulator run under valgrind and a leak or
 * error makes their exit status 99, which trt_*_stop reports.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "json.h"

#define TRT_DEADLINE_MS 20000 /* default wait for anything; x10 under valgrind */

/* A child process with its stdout (and stderr) captured to files in the temp dir. */
struct trt_proc {
	pid_t pid;
	int pidfd;
	char *name;
	char *log_path; /* stderr+stdout of the child */
	int status;     /* exit status after stop, -1 while running */
};

struct trt_sim {
	struct trt_proc proc;
	int want_port; /* 0: ephemeral; else listen on this port (simulator restarts) */
	int port;
	char base_url[64]; /* http://127.0.0.1:PORT */
	char *token_dir;
};

struct trt_daemon {
	struct trt_proc proc;
	char *socket_path;
	char *token_file;
	int notify_fd;        /* NOTIFY_SOCKET datagram socket we read */
	char *notify_path;
	char last_status[256]; /* last STATUS= seen */
	char statuses[32][256]; /* STATUS= seen since the last trt_daemon_wait_status */
	size_t n_statuses;
	bool ready_seen;
};

struct trt_env {
	char *dir; /* temporary directory, removed by trt_env_done */
	struct trt_sim sim;
	struct trt_daemon daemon;
};

/* Scale a timeout for valgrind runs. */
int trt_ms(int ms);
bool trt_under_valgrind(void);

/* Make a temporary directory and fill env->dir. Returns 0 or -errno. */
int trt_env_init(struct trt_env *env);
/* Stop what still runs (SIGTERM, then SIGKILL after a deadline), remove the directory. */
void trt_env_done(struct trt_env *env);

/* Start the simulator: argv extras are appended (NULL-terminated, may be NULL). Waits for its
 * "listening on" line. Returns 0 or -errno. */
int trt_sim_start(struct trt_env *env, const char *const *extra);
/* SIGTERM and wait; returns the exit status (0 clean), or -ETIMEDOUT. */
int trt_sim_stop(struct trt_env *env);

/* Start taskrouterd against the simulator as worker `worker` (token file from the sim's token
 * dir), with extra args. Waits for READY=1 (socket listening). Returns 0 or -errno. */
int trt_daemon_start(struct trt_env *env, const char *worker, const char *const *extra);
/* Wait until a STATUS= notification contains `needle` (e.g. "ready"), counting those that
 * arrived since the previous wait. 0 or -ETIMEDOUT. */
int trt_daemon_wait_status(struct trt_env *env, const char *needle, int timeout_ms);
/* SIGTERM and wait; returns the exit status (0 clean) or -ETIMEDOUT. */
int trt_daemon_stop(struct trt_env *env);
/* SIGKILL without cleanup (crash simulation). */
void trt_daemon_kill(struct trt_env *env);

/* Does the process still run? */
bool trt_proc_alive(struct trt_proc *p);
/* Does the process log contain this text? (for "the token never appears" checks) */
bool trt_proc_log_contains(const struct trt_proc *p, const char *needle);

/* ---- simulator control API (HTTP) ---- */

/* Perform an HTTP request on the simulator's port. body may be NULL. On success returns the
 * HTTP status and, if ret is not NULL, the parsed JSON body (NULL when empty or not JSON). */
int trt_sim_http(struct trt_env *env, const char *method, const char *path, const char *body,
	struct tr_json **ret);
/* POST /sim/tasks for `worker` on `channel` with attributes JSON text; optionally accept.
 * Fills task_sid / res_sid (35 bytes each). Returns 0 or -errno. */
int trt_sim_create_task(struct trt_env *env, const char *worker, const char *channel,
	const char *attributes, bool accept, char task_sid[35], char res_sid[35]);
/* GET /sim/state's task object for sid (caller frees), or NULL. */
struct tr_json *trt_sim_task(struct trt_env *env, const char *sid);
/* Number of REST calls recorded by the simulator so far (GET /sim/requests). */
int trt_sim_request_count(struct trt_env *env);

/* ---- daemon RPC client ---- */

struct trt_conn {
	int fd;
	int64_t next_id;
	char *rbuf;
	size_t rlen, rcap;
	/* notifications received while waiting for a reply, in order */
	struct tr_json **events;
	size_t n_events, cap_events;
};

int trt_connect(const char *socket_path, struct trt_conn **ret);
void trt_conn_free(struct trt_conn *c);
/* Send one request (params: JSON text or NULL) and wait for its reply. Returns 0 with the
 * result (*ret_result, caller frees), or 1 with the error object (*ret_error: {code, message,
 * data}), or -errno (-ETIMEDOUT, -ECONNRESET). Notifications that arrive meanwhile are kept
 * for trt_next_event. */
int trt_call(struct trt_conn *c, const char *method, const char *params, int timeout_ms,
	struct tr_json **ret_result, struct tr_json **ret_error);
/* Send raw bytes (for malformed-input tests). */
int trt_send_raw(struct trt_conn *c, const void *data, size_t len);
/* Read the next frame whatever it is (reply or notification). 0 / -ETIMEDOUT / -ECONNRESET. */
int trt_read_frame(struct trt_conn *c, int timeout_ms, struct tr_json **ret);
/* Next event notification's params (caller frees), waiting up to timeout_ms. */
int trt_next_event(struct trt_conn *c, int timeout_ms, struct tr_json **ret_params);
/* Wait for an event named `name` (optionally for task `task_sid`), discarding others.
 * Returns 0 and the params, or -ETIMEDOUT. */
int trt_wait_event(struct trt_conn *c, const char *name, const char *task_sid, int timeout_ms,
	struct tr_json **ret_params);
/* True when the peer has closed the connection (waits up to timeout_ms for EOF). */
bool trt_wait_closed(struct trt_conn *c, int timeout_ms);

/* Convenience: call and expect success; returns the result or NULL (and prints why). */
struct tr_json *trt_call_ok(struct trt_conn *c, const char *method, const char *params);
/* Convenience: call and expect a JSON-RPC error; returns its code (0 if the call succeeded,
 * or a negative errno); *ret_error optional. */
int trt_call_err(struct trt_conn *c, const char *method, const char *params,
	struct tr_json **ret_error);

/* Run a command (argv NULL-terminated) with stdin from `input` (may be NULL), capture stdout
 * into *ret_out (caller frees) and return its exit status (or -errno), waiting up to
 * timeout_ms. Used for CLI tests. env_extra: NULL-terminated "K=V" list or NULL. */
int trt_run(const char *const *argv, const char *const *env_extra, const char *input,
	int timeout_ms, char **ret_out);

/* printf into a static rotating buffer: for building params in tests. */
const char *trt_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
