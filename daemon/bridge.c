/*
 * bridge.c — the bridge object: construction and asynchronous teardown (every
 * timer of struct tr_bridge is initialised and closed here), the state, the
 * public queries, REST requests and the status. The work is done in
 * bridge-session.c, bridge-resync.c and bridge-token.c.
 */
#include "bridge.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge-internal.h"
#include "config.h"
#include "json.h"
#include "tr-limits.h"
#include "log.h"
#include "netwatch.h"
#include "rest.h"

const char *tr_bridge_state_str(enum tr_bridge_state s) {
	static const char *const names[] = {
		[TR_BRIDGE_CONNECTING] = "connecting",
		[TR_BRIDGE_OPEN] = "open",
		[TR_BRIDGE_INITIALIZING] = "initializing",
		[TR_BRIDGE_READY] = "ready",
		[TR_BRIDGE_RECONNECTING] = "reconnecting",
		[TR_BRIDGE_TOKEN_EXPIRED] = "token_expired",
		[TR_BRIDGE_STOPPED] = "stopped",
	};
	if ((int)s < 0 || s >= _TR_BRIDGE_STATE_MAX) {
		return "unknown";
	}
	return names[s];
}

void tr_bridge_set_state(struct tr_bridge *b, enum tr_bridge_state s, const char *reason) {
	if (b->state == s && !reason) {
		return;
	}
	b->state = s;
	if (s == TR_BRIDGE_RECONNECTING) {
		tr_log_info("upstream: reconnecting in %" PRIu64 " ms (%s)",
			b->session.reconnect_delay, reason ? reason : "disconnected");
	} else if (reason) {
		tr_log_info("upstream: %s (%s)", tr_bridge_state_str(s), reason);
	} else {
		tr_log_info("upstream: %s", tr_bridge_state_str(s));
	}
	if (b->ev && b->ev->state) {
		b->ev->state(b->ud, s, reason);
	}
}

int tr_bridge_reconfigure(struct tr_bridge *b) {
	int e;

	if (b->closing) {
		return -ESHUTDOWN;
	}
	e = tr_bridge_proxy_choose(b);
	if (e < 0) {
		tr_log_warning("upstream: SIGHUP: keeping the proxies used so far");
	}
	e = tr_bridge_session_reconfigure(b);
	if (e < 0) {
		return -EBADF; /* REST keeps the old file too: both trust the same CAs */
	}
	e = tr_rest_set_ca_file(b->rest, b->cfg->ca_file);
	if (e < 0) {
		tr_log_warning("upstream: SIGHUP: %s", strerror(-e));
	}
	return e;
}

/* ---- construction and teardown ---- */

static uv_timer_t *timers(struct tr_bridge *b, size_t i) {
	uv_timer_t *all[] = {&b->session.t_reconnect, &b->session.t_silence, &b->session.t_init,
		&b->token.timer, &b->session.t_check, &b->session.t_destroy, &b->resync.t_retry};
	return i < sizeof(all) / sizeof(all[0]) ? all[i] : NULL;
}

int tr_bridge_new(uv_loop_t *loop, const struct tr_config *cfg, const struct tr_bridge_events *ev,
	void *userdata, struct tr_bridge **ret) {
	struct tr_rest_opts ro = {0};
	struct tr_bridge *b;
	int e;

	b = calloc(1, sizeof(*b));
	if (!b) {
		return -ENOMEM;
	}
	b->loop = loop;
	b->cfg = cfg;
	b->ev = ev;
	b->ud = userdata;
	b->state = TR_BRIDGE_STOPPED;
	b->rng = (uint32_t)wall_ms() ^ ((uint32_t)getpid() << 12) ^ 0x2545f491u;
	e = tr_bridge_session_init(b);
	if (e < 0) {
		goto fail;
	}
	ro.url = cfg->eventbridge_url;
	ro.ca_file = cfg->ca_file;
	ro.client_version = cfg->client_version;
	ro.default_timeout_ms = cfg->rest_timeout_ms;
	e = tr_rest_new(loop, &ro, &b->rest);
	if (e < 0) {
		tr_log_err("upstream: cannot set up libcurl: %s", strerror(-e));
		goto fail;
	}
	for (size_t i = 0; timers(b, i); i++) {
		/* uv_timer_init cannot fail on Linux (it only fills the struct). */
		(void)uv_timer_init(loop, timers(b, i));
		timers(b, i)->data = b;
	}
	e = tr_bridge_proxy_choose(b);
	if (e == 0) {
		e = tr_bridge_session_create_context(b);
	}
	/* Even without a context the timers and REST exist: the caller must still
	 * tr_bridge_close and run the loop. */
	*ret = b;
	return e;
fail:
	tr_bridge_session_done(b);
	free(b);
	return e;
}

int tr_bridge_start(struct tr_bridge *b) {
	int e;

	if (b->closing || b->started || !b->session.ctx) {
		return -EINVAL;
	}
	if (b->cfg->token_command) {
		b->started = true;
		tr_bridge_set_state(b, TR_BRIDGE_CONNECTING, "waiting for the token command");
		tr_bridge_token_run_command(b);
		return 0;
	}
	e = tr_bridge_token_load(b);
	if (e < 0) {
		return e;
	}
	b->started = true;
	tr_bridge_session_connect(b);
	return 0;
}

static void close_one(struct tr_bridge *b);

static void on_handle_closed(uv_handle_t *h) {
	close_one(h->data);
}

static void on_sub_closed(void *userdata) {
	close_one(userdata);
}

static void close_one(struct tr_bridge *b) {
	if (--b->pending_closes == 0 && b->done) {
		b->done(b->done_ud);
	}
}

void tr_bridge_close_handles(struct tr_bridge *b) {
	for (size_t i = 0; timers(b, i); i++) {
		b->pending_closes++;
		uv_close((uv_handle_t *)timers(b, i), on_handle_closed);
	}
	close_one(b); /* the guard taken in tr_bridge_close */
}

void tr_bridge_close(struct tr_bridge *b, void (*done)(void *userdata), void *userdata) {
	if (b->closing) {
		return;
	}
	b->closing = true;
	b->done = done;
	b->done_ud = userdata;
	b->pending_closes = 1; /* released by tr_bridge_close_handles */
	for (size_t i = 0; timers(b, i); i++) {
		(void)uv_timer_stop(timers(b, i));
	}
	tr_bridge_resync_stop(b, -ECANCELED);
	b->pending_closes++;
	tr_bridge_token_close(b, on_sub_closed);
	tr_bridge_set_state(b, TR_BRIDGE_STOPPED, "shutdown");
	b->pending_closes++;
	tr_rest_close(b->rest, on_sub_closed, b);
	tr_bridge_session_close(b);
}

struct tr_bridge *tr_bridge_free(struct tr_bridge *b) {
	if (!b) {
		return NULL;
	}
	tr_bridge_session_done(b);
	b->rest = tr_rest_free(b->rest);
	tr_bridge_proxy_done(b);
	tr_bridge_token_done(b);
	tr_bridge_resync_done(b);
	free(b);
	return NULL;
}

/* ---- queries ---- */

int tr_bridge_request(struct tr_bridge *b, const struct tr_upstream_request *req, tr_upstream_cb cb,
	void *userdata) {
	int e;

	if (b->closing) {
		return -ESHUTDOWN;
	}
	if (!b->session.ever_init) {
		return -ENOTCONN;
	}
	if (b->token.expired || !b->token.value) {
		return -EKEYEXPIRED;
	}
	e = tr_rest_send(b->rest, req, cb, userdata);
	if (e == -ENOKEY) {
		return -EKEYEXPIRED;
	}
	return e;
}

enum tr_bridge_state tr_bridge_get_state(const struct tr_bridge *b) {
	return b->state;
}

const char *tr_bridge_workspace_sid(const struct tr_bridge *b) {
	return b->session.ever_init ? b->session.workspace_sid : NULL;
}

const char *tr_bridge_worker_sid(const struct tr_bridge *b) {
	return b->session.ever_init ? b->session.worker_sid : NULL;
}

uint64_t tr_bridge_reconnect_delay_ms(const struct tr_bridge *b) {
	return b->session.reconnect_delay;
}

static int set_int(struct tr_json *o, const char *k, int64_t v) {
	return tr_json_object_set(o, k, tr_json_new_int(v));
}

static int set_str(struct tr_json *o, const char *k, const char *v) {
	return tr_json_object_set(o, k, v ? tr_json_new_string(v) : tr_json_new_null());
}

struct tr_json *tr_bridge_status(const struct tr_bridge *b) {
	struct tr_json *o = tr_json_new_object(), *ws = tr_json_new_object(),
		       *rest = tr_json_new_object();
	struct tr_rest_stats rs;
	int e = 0;

	if (!o || !ws || !rest) {
		tr_json_free(o);
		tr_json_free(ws);
		tr_json_free(rest);
		return NULL;
	}
	tr_rest_get_stats(b->rest, &rs);
	e |= set_str(o, "state", tr_bridge_state_str(b->state));
	e |= set_str(o, "accountSid", b->session.ever_init ? b->session.account_sid : NULL);
	e |= set_str(o, "workspaceSid", b->session.ever_init ? b->session.workspace_sid : NULL);
	e |= set_str(o, "workerSid", b->session.ever_init ? b->session.worker_sid : NULL);
	e |= set_str(o, "activityName", tr_json_get_string(b->resync.worker, "activity_name"));
	e |= set_str(o, "activitySid", tr_json_get_string(b->resync.worker, "activity_sid"));
	e |= set_int(o, "reconnects", (int64_t)b->session.reconnects);
	e |= set_int(o, "reconnectAttempt", b->session.attempt);
	e |= set_int(o, "reconnectDelayMs",
		b->state == TR_BRIDGE_RECONNECTING ? (int64_t)b->session.reconnect_delay : 0);
	e |= tr_json_object_set(o, "sessionDisplaced",
		tr_json_new_bool(tr_bridge_session_displaced(b)));
	e |= set_str(o, "lastError", b->last_error[0] ? b->last_error : NULL);
	/* the hosts in use (the configured URLs: the token is never part of them) */
	e |= set_str(o, "websocketUrl", b->cfg->websocket_url);
	e |= set_str(o, "restUrl", b->cfg->eventbridge_url);
	e |= set_str(o, "caFile", b->cfg->ca_file);
	{
		char hp[300];
		e |= set_str(o, "websocketProxy",
			b->session.proxy.host &&
					tr_proxy_format(&b->session.proxy, hp, sizeof(hp)) >= 0 ?
				hp :
				NULL);
		e |= set_str(o, "restProxy",
			b->rest_proxy.host && tr_proxy_format(&b->rest_proxy, hp, sizeof(hp)) >= 0 ?
				hp :
				NULL);
	}
	e |= set_int(o, "tokenExpiresAt", b->token.value ? b->token.jwt.exp : 0);
	e |= tr_json_object_set(o, "tokenExpired", tr_json_new_bool(b->token.expired));
	e |= set_int(o, "resyncs", (int64_t)b->resync.resyncs);
	e |= set_int(o, "resyncErrors", (int64_t)b->resync.errors);
	e |= set_int(o, "activities", (int64_t)b->resync.n_activities);
	e |= set_int(o, "channels", (int64_t)b->resync.n_channels);
	e |= set_int(o, "suspendsDetected", (int64_t)b->session.suspends);
	e |= set_int(o, "networkChanges", (int64_t)b->session.net_changes);
	/* how suspends and network changes are noticed: kernel events, or the 5 s poll */
	e |= set_str(o, "changeDetection",
		tr_netwatch_watching(b->session.netwatch) == (TR_NETWATCH_NETWORK | TR_NETWATCH_CLOCK) &&
				!uv_is_active((uv_handle_t *)&b->session.t_check)
			? "events"
			: "polling");
	e |= set_int(ws, "frames", (int64_t)b->session.frames);
	e |= set_int(ws, "heartbeats", (int64_t)b->session.heartbeats);
	e |= set_int(ws, "events", (int64_t)b->resync.events);
	e |= set_int(ws, "malformed", (int64_t)b->session.malformed);
	e |= set_int(ws, "oversize", (int64_t)b->session.oversize);
	e |= set_int(ws, "unknownEvents", (int64_t)b->session.unknown_events);
	e |= set_int(ws, "buffered", (int64_t)b->resync.buf_n);
	e |= set_int(ws, "bufferOverflows", (int64_t)b->resync.buffer_overflows);
	e |= set_int(ws, "maxMessage", TR_WS_MAX_MESSAGE);
	e |= set_int(rest, "inFlight", rs.in_flight);
	e |= set_int(rest, "requests", (int64_t)rs.requests);
	e |= set_int(rest, "attempts", (int64_t)rs.attempts);
	e |= set_int(rest, "retries", (int64_t)rs.retries);
	e |= set_int(rest, "failures", (int64_t)rs.failures);
	e |= set_int(rest, "maxConcurrency", TR_REST_MAX_CONCURRENCY);
	e |= tr_json_object_set(o, "websocket", ws);
	e |= tr_json_object_set(o, "rest", rest);
	if (e) {
		tr_json_free(o);
		return NULL;
	}
	return o;
}
