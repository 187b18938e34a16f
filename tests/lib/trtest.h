/*
 * trtest.h — the harness of the end-to-end, fault and simulator tests: a temporary
 * directory with taskrouter-sim and, if wanted, taskrouterd as child processes (proc.h);
 * the simulator's control API over HTTP (libcurl easy: blocking is fine in a test
 * process); the daemon's socket (length-prefixed JSON-RPC, through proto/).
 *
 * Nothing here sleeps to synchronise: every wait is a poll() with a deadline on a pipe, a
 * socket or a pidfd. Binaries come from the environment set by meson: TR_SIM, TR_DAEMON.
 * With TR_UNDER_VALGRIND=1 (the 'valgrind' test setup) the daemon and the simulator run
 * under valgrind and a leak or error makes their exit status 99, which trt_*_stop reports.
 * TR_KEEP_TMP=1 keeps the temporary directory (logs) for a post-mortem.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certs.h"
#include "json.h"
#include "proc.h"

struct trt_sim {
	struct trt_proc proc;
	int want_port; /* 0: ephemeral; else listen on this port (simulator restarts) */
	const char *host; /* the loopback address to listen on: NULL for 127.0.0.1, or "::1" */
	int port;
	char base_url[96]; /* http://127.0.0.1:PORT (or http://[::1]:PORT, https://…) */
	char *token_dir;
	/* TLS: serve wss/https with this certificate and key (NULL: plain ws/http); the daemon
	 * then connects with wss/https and trusts env->certs' CA (see trt_env_tls) */
	const char *tls_cert, *tls_key;
	const char *url_host; /* the name the daemon dials (e.g. "localhost"); NULL: the address */
};

struct trt_daemon {
	struct trt_proc proc;
	char *socket_path;
	char *token_file;
	int notify_fd;        /* NOTIFY_SOCKET datagram socket we read */
	char *notify_path;
	char last_status[512]; /* last STATUS= seen */
	char statuses[32][512]; /* STATUS= seen since the last trt_daemon_wait_status */
	size_t n_statuses;
	bool ready_seen;
	/* Set before trt_daemon_start: "K=V" entries added to its environment (NULL-terminated,
	 * borrowed), e.g. HTTPS_PROXY; the proxy variables of the test's own environment never
	 * reach a child (proc.c). */
	const char *const *env;
	bool no_ca_file; /* with TLS: do not pass --ca-file (the daemon trusts the system store) */
};

/* A test's world: its temporary directory, the simulator and the daemon. A test of the
 * simulator alone (or of daemon code in its own process) starts only the simulator. */
struct trt_env {
	char *dir; /* temporary directory, removed by trt_env_done */
	struct trt_sim sim;
	struct trt_daemon daemon;
	struct trt_certs *certs; /* throwaway CA and certificates (trt_env_tls), or NULL */
};

/* Make a temporary directory and fill env->dir; ignore SIGPIPE. Returns 0 or -errno. */
int trt_env_init(struct trt_env *env);
/* Whether this machine can listen on [::1] (tests of IPv6 say so and pass where not). */
bool trt_have_ipv6_loopback(void);

/* Make the throwaway certificates (once per env, in DIR/certs; certs.h) and serve the
 * simulator over TLS with the good one from its next start: the daemon then dials
 * wss://localhost and https://localhost with --ca-file. trt_env_init calls it when the
 * environment has TRT_TLS=1, so that whole suites run over TLS. Returns 0 or -errno. */
int trt_env_tls(struct trt_env *env);
/* Stop what still runs (SIGTERM, then SIGKILL after a deadline), remove the directory.
 * Does nothing on an env that was never initialised (all zero) or is done already. */
void trt_env_done(struct trt_env *env);

/* Start the simulator on 127.0.0.1 (port sim.want_port, 0: ephemeral), its tokens in
 * DIR/tokens, its log in DIR/sim.log; argv extras are appended (NULL-terminated, may be
 * NULL). Waits for its "listening on" line and fills sim.port and sim.base_url. Starting it
 * again after trt_sim_stop keeps the token directory; tokens stay valid across the restart
 * as long as the signing secret is the same (the default one). Returns 0 or -errno. */
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

/* ---- simulator control API (HTTP) ---- */

/* An HTTP request to the simulator: its control API (/sim/...) or its REST endpoint. body
 * (JSON text, sent with its content type) may be NULL; a POST without one has an empty body.
 * headers: extra "Name: value" lines, NULL-terminated, or NULL. Returns the HTTP status or
 * -errno (-EIO: no answer), and with ret_body the response body (caller frees; NULL when
 * empty). A status >= 400 is printed as a TAP comment. */
int trt_sim_request(struct trt_env *env, const char *method, const char *path, const char *body,
	const char *const *headers, char **ret_body);
/* trt_sim_request without headers, the body parsed: *ret gets the JSON (caller frees; NULL
 * when empty or not JSON). */
int trt_sim_http(struct trt_env *env, const char *method, const char *path, const char *body,
	struct tr_json **ret);
/* POST /sim/tasks for `worker` on `channel` with attributes JSON text; optionally accept.
 * Fills task_sid / res_sid (35 bytes each). Returns 0 or -errno. */
int trt_sim_create_task(struct trt_env *env, const char *worker, const char *channel,
	const char *attributes, bool accept, char task_sid[35], char res_sid[35]);
/* GET /sim/state's task object for sid (caller frees), or NULL. */
struct tr_json *trt_sim_task(struct trt_env *env, const char *sid);
/* The REST calls recorded by the simulator so far, oldest first (GET /sim/requests): an
 * array (caller frees), or NULL. */
struct tr_json *trt_sim_requests(struct trt_env *env);
/* How many there are, or -EIO. */
int trt_sim_request_count(struct trt_env *env);
/* A worker's current token as the simulator wrote it (DIR/tokens/WORKER.token). Returns its
 * length or -errno. */
int trt_sim_token(struct trt_env *env, const char *worker, char *buf, size_t size);

/* The first line of a token file into buf. Returns its length or -errno. */
int trt_read_token(const char *path, char *buf, size_t size);
/* The first object in array arr whose string member `key` equals value, or NULL. */
const struct tr_json *trt_json_find(const struct tr_json *arr, const char *key, const char *value);

/* ---- daemon RPC client ---- */

struct trt_conn {
	struct trt_rbuf sock; /* the socket and what was read from it */
	int64_t next_id;
	/* notifications received while waiting for a reply, in order */
	struct tr_json **events;
	size_t n_events, cap_events;
	/* if set, sees every event trt_next_event (and so trt_wait_event) hands out or skips */
	void (*on_event)(void *data, const struct tr_json *params);
	void *on_event_data;
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
/* Send text as one frame (length header + bytes), whatever it holds. */
int trt_send_frame(struct trt_conn *c, const char *text);
/* Send a request with this id without waiting (for pipelining); params is JSON text. */
int trt_send_request(struct trt_conn *c, int64_t id, const char *method, const char *params);
/* Read the next frame whatever it is (reply or notification). 0 / -ETIMEDOUT / -ECONNRESET. */
int trt_read_frame(struct trt_conn *c, int timeout_ms, struct tr_json **ret);
/* Next event notification's params (caller frees), waiting up to timeout_ms. */
int trt_next_event(struct trt_conn *c, int timeout_ms, struct tr_json **ret_params);
/* Is this event's params the event `name` (and with task_sid, of that task)? */
bool trt_event_is(const struct tr_json *params, const char *name, const char *task_sid);
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

/* printf into a static rotating buffer: for building params in tests. */
const char *trt_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- HTTP CONNECT proxy (trt-connect-proxy, tests/lib/connect-proxy.c) ---- */

struct trt_proxy {
	struct trt_proc proc; /* its stderr: DIR/proxy.stderr.log (proxy-N.stderr.log) */
	int port;
	char url[80];   /* http://127.0.0.1:PORT, or http://[::1]:PORT */
	char *log_path; /* DIR/proxy.log (proxy-N.log): one line per finished request */
};

/* Start trt-connect-proxy (the binary in TR_CONNECT_PROXY) on 127.0.0.1, an ephemeral port,
 * with extra arguments (NULL-terminated, may be NULL: "--require-auth", "USER:PASS",
 * "--refuse", "403", "--listen", "::1", ...). The first proxy of an env logs to DIR/proxy.log,
 * later ones (or a restarted one) to DIR/proxy-2.log, -3, .... Under the valgrind setup it
 * runs under valgrind. Waits for its "listening on" line and fills port and url. p needs no
 * initialisation. Returns 0 or -errno; on failure p holds nothing (trt_proxy_stop returns 0).
 * trt_env_done does not know about proxies: stop them before it (a proxy still running when
 * the test program exits is killed then, as every child). */
int trt_proxy_start(struct trt_env *env, struct trt_proxy *p, const char *const *extra);
/* SIGTERM and wait: the tunnels still open are logged and closed. Frees what p holds (the
 * log file stays in DIR). Returns the exit status (0: clean; 99: valgrind found leaks or
 * errors) or -ETIMEDOUT. 0 for a proxy never started or stopped already. */
int trt_proxy_stop(struct trt_proxy *p);
/* How many lines of the proxy's log contain needle (e.g. "CONNECT localhost:", "status=407",
 * "user=alice "), or -errno. A request is logged when it finishes: count after the client
 * side is done and the proxy saw it, or use trt_proxy_wait_count. */
int trt_proxy_count(const struct trt_proxy *p, const char *needle);
/* Wait (inotify on the log, no sleeping) until trt_proxy_count(p, needle) >= n. Returns 0,
 * -ETIMEDOUT, or -ECHILD when the proxy exited first. */
int trt_proxy_wait_count(const struct trt_proxy *p, const char *needle, int n, int timeout_ms);
