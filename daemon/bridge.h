/*
 * bridge.h — the upstream side: one Event Bridge websocket session for the
 * worker (lws on the uv loop), the resync after every init, the token's
 * lifecycle, and REST requests over the Event Bridge proxy (rest.h). It reports
 * to the callbacks in struct tr_bridge_events and answers tr_bridge_request().
 *
 * Depends on libuv, libwebsockets, rest, token, backoff, config and proto/json.
 * Knows nothing about RPC or the task cache: never includes rpcsrv, methods,
 * subs, cache or core.
 *
 * bridge.c holds the object and the queries below; the work is split into
 * bridge-session.c, bridge-resync.c and bridge-token.c around the struct in
 * bridge-internal.h.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "rest.h"

struct tr_json;
struct tr_config;

enum tr_bridge_state {
	TR_BRIDGE_CONNECTING,   /* ws connect in progress */
	TR_BRIDGE_OPEN,         /* upgrade done, waiting for init */
	TR_BRIDGE_INITIALIZING, /* init received, resync in progress */
	TR_BRIDGE_READY,
	TR_BRIDGE_RECONNECTING, /* waiting for the backoff timer */
	TR_BRIDGE_TOKEN_EXPIRED,
	TR_BRIDGE_STOPPED,
	_TR_BRIDGE_STATE_MAX,
};

/* "connecting", "open", "initializing", "ready", "reconnecting", "token_expired", "stopped" */
const char *tr_bridge_state_str(enum tr_bridge_state s);

/* Callbacks the bridge calls, all on the loop thread. userdata is given to tr_bridge_new. */
struct tr_bridge_events {
	/* Every state change. reason is a short human text for disconnects, else NULL. */
	void (*state)(void *userdata, enum tr_bridge_state state, const char *reason);
	/* Resync after each init: begin, the worker, every activity and worker channel, every
	 * active reservation (all pages, each with its embedded task), then end. end's err is 0 when the resync completed; on error
	 * the cache must be left as it was (a reconnect or retry follows). */
	void (*resync_begin)(void *userdata);
	void (*resync_worker)(void *userdata, const struct tr_json *worker);
	void (*resync_activity)(void *userdata, const struct tr_json *activity);
	void (*resync_channel)(void *userdata, const struct tr_json *channel);
	void (*resync_reservation)(void *userdata, const struct tr_json *reservation);
	void (*resync_end)(void *userdata, int err);
	/* A wire event ({"event_type", "payload"}) after ready. Events that arrive during a resync
	 * are buffered and delivered, in order, right after resync_end(0). payload may be NULL. */
	void (*event)(void *userdata, const char *event_type, const struct tr_json *payload);
	/* Token lifecycle: "tokenWillExpire", "tokenExpired", "tokenUpdated"; expires_at is epoch
	 * seconds (0 when unknown). */
	void (*token)(void *userdata, const char *what, int64_t expires_at);
};

struct tr_bridge;

/* Create the bridge; nothing connects until tr_bridge_start. Returns 0 or negative errno. On
 * -EIO (no libwebsockets context) *ret is set all the same: close and free it as usual. */
int tr_bridge_new(uv_loop_t *loop, const struct tr_config *cfg, const struct tr_bridge_events *ev,
	void *userdata, struct tr_bridge **ret);

/* Load the token (file, credential or command) and connect. */
int tr_bridge_start(struct tr_bridge *b);

/*
 * Asynchronous teardown: sends a close frame, cancels REST requests (their callbacks fire
 * with -ECANCELED), destroys the lws context and closes every handle. done fires once
 * everything is closed; then tr_bridge_free.
 */
void tr_bridge_close(struct tr_bridge *b, void (*done)(void *userdata), void *userdata);
struct tr_bridge *tr_bridge_free(struct tr_bridge *b);

/*
 * Send a REST request through the proxy. Returns 0 and then calls cb exactly once, or returns
 * a negative errno and never calls cb: -ENOTCONN (no init yet, so no workspace/worker),
 * -EKEYEXPIRED (token expired), -ESHUTDOWN, -ENOMEM.
 */
int tr_bridge_request(struct tr_bridge *b, const struct tr_upstream_request *req, tr_upstream_cb cb,
	void *userdata);

enum tr_bridge_state tr_bridge_get_state(const struct tr_bridge *b);
/* From the last init; NULL before the first one. */
const char *tr_bridge_workspace_sid(const struct tr_bridge *b);
const char *tr_bridge_worker_sid(const struct tr_bridge *b);

/* Ask for a resync (e.g. the cache met an unknown reservation). Coalesced. */
void tr_bridge_request_resync(struct tr_bridge *b);

/*
 * Replace the token at run time (daemon.updateToken). Returns 0, -EINVAL (not a JWT with
 * exp), -EKEYEXPIRED (already expired), -EXDEV (another account, workspace or worker than
 * the running token's, and allow_switch is false). A switch is logged and starts a new
 * session. The token is copied; the caller should wipe its own copy.
 */
int tr_bridge_update_token(struct tr_bridge *b, const char *token, bool allow_switch);

/* A JSON object for daemon.status: state, sids, reconnects, last error, token expiry,
 * REST in flight/queued, ws frames, malformed/oversize counters. Caller owns it. */
struct tr_json *tr_bridge_status(const struct tr_bridge *b);

/* Delay of the pending reconnect in ms (meaningful in TR_BRIDGE_RECONNECTING), for STATUS=. */
uint64_t tr_bridge_reconnect_delay_ms(const struct tr_bridge *b);

/* Expiry (epoch seconds) of the current token, 0 when none. */
int64_t tr_bridge_token_expires_at(const struct tr_bridge *b);

/* SIGHUP: re-read the token file (or run the token command). A changed valid token is
 * applied as by tr_bridge_update_token. Returns 0 or negative errno (logged here). */
int tr_bridge_reload_token(struct tr_bridge *b);

/* SIGHUP, after the configuration was re-read into the struct the bridge was made with:
 * trust the CA file as it is now (read again even when the path is the same) for the next
 * websocket handshake and REST request, and retry at once when waiting to reconnect. A live
 * session is kept. Returns 0 or negative errno (logged here; the old settings stay):
 * -EBADF when the CA file was refused (the caller keeps the old file's name). */
int tr_bridge_reconfigure(struct tr_bridge *b);

/* ---- pure helpers (unit-tested without a loop) ---- */

/*
 * The websocket query string of spec §1.2, percent-encoded, in the SDK's order:
 * token=…&closeExistingSessions=…&clientVersion=…[&setWorkerOfflineIfDisconnected=…]
 * (set_offline < 0: not sent). *ret is malloc'd and holds the token: wipe it. 0 or -ENOMEM.
 */
int tr_bridge_ws_query(const char *token, bool close_existing, const char *client_version,
	int set_offline, char **ret);

/* Is this one of the 22 event types of spec §6.1. */
bool tr_bridge_event_known(const char *event_type);
