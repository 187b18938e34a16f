/*
 * sim.h — taskrouter-sim's shared state: options, the world, websocket sessions, the REST
 * request log and the fault switches. server.c owns the lws context and the sessions;
 * rest.c serves the Event Bridge REST proxy; control.c serves /sim/.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "jw.h"
#include "world.h"

struct lws;
struct lws_context;
struct lws_vhost;

struct sim_opts {
	const char *listen_host;
	int port;
	const char *port_file;
	const char *token_dir;
	int64_t heartbeat_ms;
	const char *key_secret;
	bool verify;
	int64_t token_ttl;
	bool verbose;
	const char *tls_cert, *tls_key;
	int64_t offline_grace_ms;
	int64_t init_delay_ms;
};

struct session {
	struct sim *sim;
	struct lws *wsi; /* NULL once closed */
	struct session *next;
	uint64_t id;
	struct sim_worker *worker;
	char *token;
	char client_version[64];
	bool close_existing;
	int set_offline; /* -1 absent, 0 false, 1 true */
	int64_t connected_at;
	int64_t token_exp;
	bool init_sent;
	/* outgoing text frames */
	struct outmsg *q_head, *q_tail;
	size_t q_bytes;
	int close_code; /* >0: send a close frame with this code after the queue */
	char close_reason[124];
	bool drop; /* cut the TCP connection without a close frame */
	uv_timer_t expiry;
	uv_timer_t init_timer;
	int open_handles; /* timers still closing */
};

struct outmsg {
	struct outmsg *next;
	size_t len;
	unsigned char *buf; /* LWS_PRE bytes of headroom, then the frame */
};

struct reqlog {
	char *url, *method, *params, *api_version, *if_match, *client_version;
	char *worker_sid;
	int status;
	int64_t time_ms;
};

struct rest_fault {
	int count;
	int status;
	int64_t hang_ms;
	bool reset; /* read the request in full, then close the connection without a reply */
	char match[256];
	char message[256];
};

struct sim {
	uv_loop_t *loop;
	struct sim_opts opts;
	struct sim_world *world;
	struct lws_context *ctx;
	struct lws_vhost *vhost;
	int port;
	struct session *sessions;
	uint64_t next_session_id;
	struct reqlog *log;
	size_t n_log, cap_log;
	/* faults */
	bool heartbeats_paused;
	bool refuse_ws;   /* faults/refuse-ws: answer upgrades with 503 */
	bool mute_events; /* a "silent" control change: its events are not pushed */
	struct rest_fault rest_fault;
	int xfer_order; /* 0 normal, 1 event before reply, 2 event after reply */
	bool res_get_instance; /* the reservation GET answers the instance shape */
	int64_t xfer_delay_ms;
	/* revoked tokens */
	char **revoked;
	size_t n_revoked;
	/* handles */
	uv_timer_t heartbeat;
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t shutdown_timer;
	bool shutting_down;
	int exit_code;
	struct pending *pendings; /* delayed HTTP replies */
	struct deferred *deferred; /* events held back until after a reply */
};

/* server.c */
void sim_log(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_vlog(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* world event hook */
void sim_on_event(void *ud, struct sim_worker *k, const char *type, const char *frame,
	size_t len);
/* Queue a close frame on every session of k (or all when k is NULL). */
void sim_close_sessions(struct sim *s, struct sim_worker *k, int code, const char *reason);
/* Drop every session (close frame or not). */
/* Close (4001 "token expired") the sessions of k whose token is revoked. */
void sim_expire_sessions(struct sim *s, struct sim_worker *k);
void sim_drop_all(struct sim *s, bool close_frame, int code, const char *reason);
/* Queue a raw text frame to every session. */
void sim_send_raw_all(struct sim *s, const char *data, size_t len);
bool sim_token_revoked(struct sim *s, const char *token);
int sim_token_revoke(struct sim *s, const char *token);
/* Mint a token for k with ttl and remember it; also written to the token dir. 0 or -errno. */
int sim_mint_token(struct sim *s, struct sim_worker *k, int64_t ttl);
void sim_begin_shutdown(struct sim *s);

/* rest.c: handle one proxied REST call. Returns the HTTP status and fills out. */
struct rest_req {
	const char *body;
	const char *api_version, *if_match, *client_version;
};
int sim_rest_handle(struct sim *s, const struct rest_req *rq, struct sbuf *out,
	int64_t *ret_hang_ms, bool *ret_is_transfer);

/* control.c: /sim/ API. Returns the HTTP status and fills out. */
int sim_control_handle(struct sim *s, const char *method, const char *path, const char *body,
	struct sbuf *out);
void sim_requests_clear(struct sim *s);
/* Free one log entry's strings. */
void sim_reqlog_done(struct reqlog *l);
void sim_error_body(struct sbuf *out, int status, int code, const char *message);
