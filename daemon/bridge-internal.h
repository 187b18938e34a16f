/*
 * bridge-internal.h — struct tr_bridge, shared by the files of the bridge module
 * (daemon/bridge*.c) and by nothing else.
 *
 * The struct has a shared part and one sub-struct per concern: the websocket
 * session, the resync after each init, the token's lifecycle. Each sub-struct
 * is written by the code that owns it; the rest of the module only reads it.
 *
 * Depends on bridge.h, token.h and libuv. Holds no lws or curl types, so that
 * only the session code includes libwebsockets.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "bridge.h"
#include "json.h"
#include "proxy.h"
#include "tls.h"
#include "token.h"

struct lws;
struct lws_context;
struct lws_vhost;
struct tr_tunnel_probe;
struct tr_rest;

/* The websocket session: connect, receive, reconnect, suspend and network checks. */
struct tr_bridge_session {
	struct lws_context *ctx;
	/* The one live connection. A connection we give up on is forgotten at once (NULL) and
	 * killed asynchronously; whatever lws still reports about it is ignored. */
	struct lws *wsi;
	bool established, send_close, resolving, destroyed_once;
	uv_getaddrinfo_t gai;
	/* From the websocket URL. host: for Host and SNI (no default port); hostport: for
	 * messages (always with the port). */
	char *address, *path, *host, *hostport;
	int port;
	bool tls;
	bool v6_literal; /* the host is an IPv6 address: its certificate is checked here */
	char *host_v6;   /* "[address]" of an IPv6 literal host, for a proxy's CONNECT */
	struct ssl_ctx_st *ssl_ctx; /* ours, lent to lws (tls.h); NULL for ws:// */
	struct tr_tls_failure tls_failure; /* of the connection being made */
	int timeout_s; /* connect + TLS handshake + upgrade deadline, lws's timeout_secs */
	uint64_t connect_ms; /* loop time the connection was handed to lws */
	/* The HTTP proxy the websocket goes through (host NULL: direct), chosen by bridge.c at
	 * start and on SIGHUP, and the vhost for it: lws cannot take a proxy off a vhost, so
	 * the default vhost stays direct and proxied connections use their own. */
	struct tr_proxy proxy;
	const char *proxy_source; /* "config", "https_proxy", … (static) */
	struct lws_vhost *vh_proxied;
	struct tr_proxy dial;     /* the proxy of the connection being made (proxy may change
	                           * meanwhile, on SIGHUP) */
	bool via_proxy;           /* the connection being made goes through dial */
	bool tunnel_up;           /* ... and the proxy opened the tunnel (TLS or the upgrade
	                           * began): a failure from then on is not the proxy's */
	char proxy_ip[48];        /* the proxy's address, resolved here (lws would block) */
	struct tr_tunnel_probe *probe; /* asking the proxy why it refused the tunnel */
	char *conn_path; /* path and query; holds the token: wiped */
	uint16_t close_code;
	char close_reason[128];
	bool have_close;
	char *rx; /* the message being reassembled from its fragments */
	size_t rx_len, rx_cap;
	struct tr_json_arena arena; /* each message's tree, let go once it is handled */

	uv_timer_t t_reconnect, t_silence, t_init, t_check, t_destroy;
	uint64_t open_ms;
	unsigned attempt;
	unsigned quick_closes;
	uint64_t reconnect_delay;
	char account_sid[40], workspace_sid[40], worker_sid[40];
	bool have_init; /* this session */
	bool ever_init; /* any session: the sids are known */

	uint64_t reconnects, frames, heartbeats, malformed, oversize, unknown_events;
	uint64_t suspends, net_changes;
	uint64_t last_malformed_log;
	uint64_t boot_ref, mono_ref; /* suspend detection: boot-time and loop clocks last seen */
	uint64_t net_sig;            /* signature of the machine's addresses last seen */
	struct tr_netwatch *netwatch; /* network changes and resumes, as events */
};

/* The resync after each init, and the events that arrive meanwhile. */
struct tr_bridge_resync {
	bool running, again, flushing;
	bool synced; /* a resync completed in this session: events are delivered as they come */
	int pending; /* lists still being fetched */
	unsigned failures;
	/* Bumped whenever a session or a resync ends, so late REST replies of an old resync are
	 * recognised and dropped. */
	uint64_t gen;
	uv_timer_t t_retry;
	struct buffered_event *buf;
	size_t buf_n, buf_cap;
	/* The last snapshot, for the status; new_* fill up during a resync. */
	struct tr_json *worker;
	/* activities and channels of the last resync, and of the one running (for status) */
	size_t n_activities, n_channels, new_n_activities, new_n_channels;
	uint64_t events, buffer_overflows, resyncs, errors;
};

/* The token: the current one, its expiry timers, the token command and the file watch. */
struct tr_bridge_token {
	char *value; /* wiped when replaced */
	struct tr_jwt jwt;
	bool expired;
	uint64_t exp_loop;  /* loop time of expiry */
	uint64_t warn_loop; /* loop time of the warning */
	bool warned;
	uv_timer_t timer;
	struct tr_token_cmd *cmd;
	struct tr_token_watch *watch;
};

struct tr_bridge {
	uv_loop_t *loop;
	const struct tr_config *cfg;
	const struct tr_bridge_events *ev;
	void *ud;
	enum tr_bridge_state state;
	bool started, closing;
	struct tr_rest *rest;
	uint32_t rng; /* jitter for the backoffs */
	char last_error[512];
	/* Basic credentials for the proxies (proxy-credentials-file), or NULL; wiped. */
	char *proxy_user, *proxy_password;
	struct tr_proxy rest_proxy; /* REST's proxy (host NULL: direct), for the status */
	/* tr_bridge_close: the handles and sub-objects still closing, and who to tell. */
	int pending_closes;
	void (*done)(void *);
	void *done_ud;

	struct tr_bridge_session session;
	struct tr_bridge_resync resync;
	struct tr_bridge_token token;
};

/* ---- bridge.c: the object, its state and its public queries ---- */

/* Change the state, log it and tell the daemon. The same state again is reported only with a
 * reason. */
void tr_bridge_set_state(struct tr_bridge *b, enum tr_bridge_state s, const char *reason);
/* The lws context is on its way out (tr_bridge_close): close every timer, then release the
 * close guard; done fires once all are closed. */
void tr_bridge_close_handles(struct tr_bridge *b);

/* ---- bridge-net.c: suspends and network changes ---- */

/* Watch for them (netwatch, or the 5 s poll), from the session's context creation. */
void tr_bridge_net_start(struct tr_bridge *b);
void tr_bridge_net_stop(struct tr_bridge *b);

/* ---- bridge-proxy.c: the proxies ---- */

/* Choose the websocket's and REST's proxies (proxy.c) and read the credentials; applied to
 * the session and REST only when all went well. 0 or -errno (logged). */
int tr_bridge_proxy_choose(struct tr_bridge *b);
/* Set the proxied vhost's proxy to the resolved ip (and the credentials) before a
 * connection. 0 or -EINVAL (lws refused it: credentials over 93 bytes). */
int tr_bridge_proxy_set_address(struct tr_bridge *b, const char *ip);
/* A connection through the proxy failed with lws' text in: when it is the proxy's doing,
 * its words into text and true; text "" then means a probe was started to learn the
 * proxy's status code and will end the session (tr_bridge_session_lost). */
bool tr_bridge_proxy_failure(struct tr_bridge *b, const char *in, char *text, size_t size);
/* Free the REST proxy and wipe the credentials. */
void tr_bridge_proxy_done(struct tr_bridge *b);

/* ---- bridge-session.c: the websocket session ---- */

/* Parse the websocket URL of the configuration. Returns 0, -EINVAL or -ENOMEM (logged here). */
int tr_bridge_session_init(struct tr_bridge *b);
/* Route lws logging to ours, create the lws context on our loop and start the suspend and
 * network checks. The timers must be initialised. Returns 0 or -EIO (logged here). */
int tr_bridge_session_create_context(struct tr_bridge *b);
/* Teardown: cancel a name resolution, send a close frame and wait (bounded) for the answer,
 * then destroy the lws context and tr_bridge_close_handles. */
void tr_bridge_session_close(struct tr_bridge *b);
/* Free the lws context (after the loop drained) and the session's memory. */
void tr_bridge_session_done(struct tr_bridge *b);
/* Connect now, dropping a pending reconnect. Does nothing while connecting or connected. */
void tr_bridge_session_connect(struct tr_bridge *b);
/* SIGHUP: the CA file again; retry now when waiting to reconnect. 0 or -errno (logged). */
int tr_bridge_session_reconfigure(struct tr_bridge *b);
/* Has the connection being made run for its whole deadline (lws reports a refusal and a
 * timeout in the same words)? */
bool tr_bridge_session_timed_out(const struct tr_bridge *b);
/* Retry at once, backing off from the start again (waiting to reconnect). */
void tr_bridge_session_retry_now(struct tr_bridge *b);
/* The connection being made failed (b->session.wsi already cleared): back off and retry. */
void tr_bridge_session_lost(struct tr_bridge *b, const char *reason);
/* No token to connect with yet: state "reconnecting", and connect after the next backoff. */
void tr_bridge_session_backoff(struct tr_bridge *b, const char *reason);
/* Drop a pending reconnect (the token expired: only a new one reconnects). */
void tr_bridge_session_cancel_reconnect(struct tr_bridge *b);
/* Give up on the connection (lws kills it asynchronously) and schedule a reconnect, at once
 * when immediate. */
void tr_bridge_session_drop(struct tr_bridge *b, const char *reason, bool immediate);
/* Has the server closed so many sessions so quickly that another session seems to displace
 * this one? */
bool tr_bridge_session_displaced(const struct tr_bridge *b);

/* ---- bridge-resync.c: the resync after each init ---- */

/* Start a resync (after init, or when asked). One already running is redone once it ends. */
void tr_bridge_resync_start(struct tr_bridge *b);
/* A known wire event arrived: delivered once the session's resync completed, buffered while
 * one is due or running (an overflow restarts it), dropped before init. */
void tr_bridge_resync_event(struct tr_bridge *b, const char *type, const struct tr_json *payload);
/* The session ended or the bridge closes: end a running resync with err, drop the buffered
 * events, and ignore replies still on their way. */
void tr_bridge_resync_stop(struct tr_bridge *b, int err);
/* A new session starts: no resync completed or failed in it yet. */
void tr_bridge_resync_reset(struct tr_bridge *b);
/* Free the buffer and the snapshots. */
void tr_bridge_resync_done(struct tr_bridge *b);

/* ---- bridge-token.c: the token's lifecycle ---- */

/* Read and validate the token file or credential, hand the token to REST, arm the expiry
 * timers and watch the file. Returns 0 or a negative errno (logged here). */
int tr_bridge_token_load(struct tr_bridge *b);
/* The token is no longer usable: state "token_expired", no reconnects until a new one. */
void tr_bridge_token_expire(struct tr_bridge *b);
/* Run the token command, unless it is running already or the bridge is closing. */
void tr_bridge_token_run_command(struct tr_bridge *b);
/* Rearm the warning and expiry timers; lifetime_ms > 0 (init's token_lifetime) brings the
 * expiry forward when it comes before the token's exp. */
void tr_bridge_token_set_lifetime(struct tr_bridge *b, int64_t lifetime_ms);
/* Cancel the token command and close the file watch; done(b) fires once the watch is closed
 * (at once when there is none). */
void tr_bridge_token_close(struct tr_bridge *b, void (*done)(void *userdata));
/* Wipe and free the token. */
void tr_bridge_token_done(struct tr_bridge *b);

static inline int64_t wall_ms(void) {
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
