/*
 * bridge-session.c — the Event Bridge websocket session (struct tr_bridge_session):
 * libwebsockets on our uv loop, name resolution on the uv thread pool, receiving
 * and parsing messages, init, silence and init timeouts, reconnects with backoff,
 * and reconnecting at once after a suspend or when our address goes away.
 *
 * A connection we give up on (silence, missing init, oversize message, suspend)
 * is forgotten at once (session.wsi = NULL) and killed asynchronously; whatever
 * lws still reports about it is ignored.
 *
 * Never logs the token or the websocket URL (it carries the token).
 */
#include <errno.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <openssl/x509.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "bridge-internal.h"
#include "config.h"
#include "json.h"
#include "tr-limits.h"
#include "log.h"
#include "tunnel-probe.h"

#define QUICK_CLOSE_MS 5000         /* a session closed sooner than this counts as "quick" */
#define DISPLACED_AFTER 3           /* quick closes in a row before "session displaced" */
#define CLOSE_GRACE_MS 1000         /* wait this long for the close handshake at shutdown */
#define EXPIRY_SLACK_MS 1500        /* a close this close to expiry counts as expiry */
#define MALFORMED_LOG_INTERVAL_MS 10000

static struct tr_bridge *log_bridge; /* for scrubbing lws log lines */

/* ---- pure helpers ---- */

bool tr_bridge_event_known(const char *t) {
	static const char *const known[] = {
		"worker.activity.update",
		"worker.attributes.update",
		"worker.capacity.update",
		"worker.channel.availability.update",
		"reservation.created",
		"reservation.failed",
		"reservation.accepted",
		"reservation.wrapup",
		"reservation.completed",
		"reservation.rejected",
		"reservation.timeout",
		"reservation.canceled",
		"reservation.rescinded",
		"task.updated",
		"task.canceled",
		"task.completed",
		"task.wrapup",
		"task.transfer-initiated",
		"task.transfer-attempt-failed",
		"task.transfer-completed",
		"task.transfer-failed",
		"task.transfer-canceled",
	};
	if (!t) {
		return false;
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcmp(t, known[i]) == 0) {
			return true;
		}
	}
	return false;
}

static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 256;
		char *p;
		while (c < *len + n + 1) {
			c *= 2;
		}
		p = realloc(*buf, c);
		if (!p) {
			return -ENOMEM;
		}
		*buf = p;
		*cap = c;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

static int append_enc(char **buf, size_t *len, size_t *cap, const char *s) {
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3];
		int r;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~') {
			r = append(buf, len, cap, (const char *)&c, 1);
		} else {
			e[0] = '%';
			e[1] = hex[c >> 4];
			e[2] = hex[c & 15];
			r = append(buf, len, cap, e, 3);
		}
		if (r < 0) {
			return r;
		}
	}
	return 0;
}

int tr_bridge_ws_query(const char *token, bool close_existing, const char *client_version,
	int set_offline, char **ret) {
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int r = 0;

#define A(s) (r = r < 0 ? r : append(&buf, &len, &cap, (s), strlen(s)))
#define E(s) (r = r < 0 ? r : append_enc(&buf, &len, &cap, (s)))
	A("token=");
	E(token ? token : "");
	A("&closeExistingSessions=");
	A(close_existing ? "true" : "false");
	A("&clientVersion=");
	E(client_version ? client_version : "");
	if (set_offline >= 0) {
		A("&setWorkerOfflineIfDisconnected=");
		A(set_offline ? "true" : "false");
	}
#undef A
#undef E
	if (r < 0) {
		if (buf) {
			explicit_bzero(buf, cap);
		}
		free(buf);
		return r;
	}
	*ret = buf;
	return 0;
}

/* ---- lws logging: routed to our logger, tokens scrubbed ---- */

static void lws_emit(int level, const char *line) {
	char buf[512];
	const char *t;
	char *p;
	size_t n;

	snprintf(buf, sizeof(buf), "%s", line);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
		buf[--n] = '\0';
	}
	/* Never let a token through, even if lws prints a URL. */
	p = strstr(buf, "token=");
	if (p) {
		snprintf(p, sizeof(buf) - (size_t)(p - buf), "token=<redacted>");
	}
	if (log_bridge && log_bridge->token.value &&
		(t = strstr(buf, log_bridge->token.value)) != NULL) {
		snprintf(buf, sizeof(buf), "libwebsockets: (line redacted)");
	}
	if (strncmp(buf, "SSL error:", 10) == 0 || strstr(buf, "proxy did not reply")) {
		/* a refused certificate or tunnel: the session logs it in words, naming the
		 * host and the proxy */
		tr_log_debug("lws: %s", buf);
		return;
	}
	tr_log(level == LLL_ERR ? TR_LOG_ERR : TR_LOG_WARNING, "lws: %s", buf);
}

/* ---- connecting and reconnecting ---- */

static void connect_now(struct tr_bridge *b);

static void on_reconnect_timer(uv_timer_t *t) {
	struct tr_bridge *b = t->data;

	connect_now(b);
}

static void schedule_reconnect(struct tr_bridge *b, const char *reason, bool immediate) {
	char text[600];

	if (b->closing) {
		return;
	}
	if (b->token.expired) {
		tr_bridge_set_state(b, TR_BRIDGE_TOKEN_EXPIRED, reason);
		return;
	}
	if (b->token.value && b->token.jwt.exp * 1000 - wall_ms() < EXPIRY_SLACK_MS) {
		tr_bridge_token_expire(b);
		return;
	}
	b->session.attempt++;
	b->session.reconnects++;
	b->session.reconnect_delay =
		immediate ? 0 : tr_backoff_ms(b->session.attempt, tr_backoff_rand_next(&b->rng));
	if (b->session.quick_closes >= DISPLACED_AFTER) {
		snprintf(text, sizeof(text), "session displaced: %s", reason);
		tr_log_warning(
			"upstream: the server closed %u sessions in a row within %d s; another "
			"session may be displacing this one (closeExistingSessions)",
			b->session.quick_closes, QUICK_CLOSE_MS / 1000);
	} else {
		snprintf(text, sizeof(text), "%s", reason);
	}
	(void)uv_timer_start(
		&b->session.t_reconnect, on_reconnect_timer, b->session.reconnect_delay, 0);
	tr_bridge_set_state(b, TR_BRIDGE_RECONNECTING, text);
}

void tr_bridge_session_backoff(struct tr_bridge *b, const char *reason) {
	b->session.attempt++;
	b->session.reconnect_delay =
		tr_backoff_ms(b->session.attempt, tr_backoff_rand_next(&b->rng));
	tr_bridge_set_state(b, TR_BRIDGE_RECONNECTING, reason);
	(void)uv_timer_start(&b->session.t_reconnect, on_reconnect_timer,
		b->session.reconnect_delay, 0);
}

void tr_bridge_session_cancel_reconnect(struct tr_bridge *b) {
	(void)uv_timer_stop(&b->session.t_reconnect);
}

void tr_bridge_session_connect(struct tr_bridge *b) {
	tr_bridge_session_cancel_reconnect(b);
	connect_now(b);
}

int tr_bridge_session_reconfigure(struct tr_bridge *b) {
	if (b->session.ssl_ctx) {
		char *err = NULL;
		int e = tr_tls_ctx_reload(b->session.ssl_ctx, b->cfg->ca_file, &err);
		if (e < 0) {
			tr_log_warning("upstream: SIGHUP: %s; keeping the CAs trusted so far",
				err ? err : strerror(-e));
			free(err);
			return e;
		}
		tr_log_info("upstream: trusting the system store%s%s from the next connection on",
			b->cfg->ca_file ? " and " : "", b->cfg->ca_file ? b->cfg->ca_file : "");
	}
	if (b->state == TR_BRIDGE_RECONNECTING && !b->closing) {
		/* the reason to wait may be gone (a new CA): try now */
		tr_bridge_session_retry_now(b);
	}
	return 0;
}

bool tr_bridge_session_timed_out(const struct tr_bridge *b) {
	/* lws' timeouts tick in whole seconds: allow for the tick landing a little early */
	return uv_now(b->loop) - b->session.connect_ms + 100 >=
	       (uint64_t)b->session.timeout_s * 1000u;
}

void tr_bridge_session_retry_now(struct tr_bridge *b) {
	b->session.attempt = 0;
	b->session.reconnect_delay = 0;
	(void)uv_timer_start(&b->session.t_reconnect, on_reconnect_timer, 0, 0);
}

static void session_lost_ex(struct tr_bridge *b, const char *reason, bool immediate,
	bool by_server);

/* The connection is gone (b->session.wsi already cleared); we ended it. */
static void session_lost(struct tr_bridge *b, const char *reason, bool immediate) {
	session_lost_ex(b, reason, immediate, false);
}

void tr_bridge_session_lost(struct tr_bridge *b, const char *reason) {
	session_lost(b, reason, false);
}

/* The connection is gone (b->session.wsi already cleared). */
static void session_lost_ex(struct tr_bridge *b, const char *reason, bool immediate,
	bool by_server) {
	uint64_t now = uv_now(b->loop);

	(void)uv_timer_stop(&b->session.t_silence);
	(void)uv_timer_stop(&b->session.t_init);
	b->session.rx_len = 0;
	tr_bridge_resync_stop(b, -ECONNRESET);
	if (b->session.established) {
		if (by_server && now - b->session.open_ms < QUICK_CLOSE_MS) {
			b->session.quick_closes++;
		} else if (b->resync.synced) {
			/* A healthy session: the next retry comes quickly again (k = 1). */
			b->session.attempt = 0;
			b->session.quick_closes = 0;
		}
	}
	b->session.established = false;
	b->session.have_init = false;
	tr_bridge_resync_reset(b);
	snprintf(b->last_error, sizeof(b->last_error), "%s", reason);
	if (b->closing) {
		return;
	}
	schedule_reconnect(b, reason, immediate);
}

void tr_bridge_session_drop(struct tr_bridge *b, const char *reason, bool immediate) {
	struct lws *wsi = b->session.wsi;

	b->session.wsi = NULL;
	if (wsi) {
		/* Do not wait for a close handshake on a dead network. */
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	}
	session_lost(b, reason, immediate);
}

static void on_silence(uv_timer_t *t) {
	struct tr_bridge *b = t->data;

	tr_log_notice("upstream: nothing received for %d ms", b->cfg->silence_timeout_ms);
	tr_bridge_session_drop(b, "Connection lost", false);
}

static void on_init_timeout(uv_timer_t *t) {
	struct tr_bridge *b = t->data;

	tr_log_warning("upstream: no init within %d ms", TR_WS_INIT_TIMEOUT_MS);
	tr_bridge_session_drop(b, "no init from the server", false);
}

/* Step 2 of a connect: the address is known, hand the connection to lws. */
static void connect_to(struct tr_bridge *b, const char *ip) {
	struct lws_client_connect_info i = {0};

	i.context = b->session.ctx;
	/* Through a proxy lws asks it for a tunnel to this address: the name, which the proxy
	 * resolves (and may filter on); directly, our resolved address. */
	i.address = b->session.via_proxy ? b->session.address : ip;
	if (b->session.via_proxy && b->session.v6_literal) {
		/* lws writes "CONNECT <address>:<port>": an IPv6 address needs its brackets (TLS
		 * and Host use i.host) */
		i.address = b->session.host_v6;
	}
	i.vhost = b->session.via_proxy ? b->session.vh_proxied : NULL;
	i.port = b->session.port;
	i.ssl_connection = b->session.tls ? LCCSCF_USE_SSL : 0;
	if (b->session.tls && b->session.v6_literal) {
		/* lws 4.1.6 cuts the name for the check at the first ':' ("[::1]" becomes "["):
		 * the IP address is checked in the verify callback instead. */
		i.ssl_connection |= LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
	}
	b->session.tls_failure = (struct tr_tls_failure){0};
	b->session.tunnel_up = false;
	tr_tls_forget(b->session.ssl_ctx);
	b->session.connect_ms = uv_now(b->loop);
	i.path = b->session.conn_path;
	/* Host (also the TLS SNI name and the name the certificate is checked against). */
	i.host = b->session.host;
	i.origin = b->session.host;
	i.protocol = NULL; /* the SDK sends no subprotocol */
	i.local_protocol_name = "tr-eventbridge";
	i.ietf_version_or_minus_one = -1;
	i.pwsi = &b->session.wsi;
	if (!lws_client_connect_via_info(&i)) {
		/* A synchronous failure may already have gone through the callback. */
		b->session.wsi = NULL;
		if (b->state == TR_BRIDGE_CONNECTING) {
			session_lost(b, "cannot start the connection", false);
		}
	}
}

/* The upgrade's path with the token as it is now: built once the name is resolved, so that a
 * token replaced during the resolution is the one the socket opens with. */
static int make_conn_path(struct tr_bridge *b) {
	char *query = NULL;
	size_t n;
	int e;

	e = tr_bridge_ws_query(b->token.value, b->cfg->close_existing_sessions,
		b->cfg->client_version, b->cfg->set_offline_on_disconnect, &query);
	if (e < 0) {
		return e;
	}
	if (b->session.conn_path) {
		explicit_bzero(b->session.conn_path, strlen(b->session.conn_path));
		free(b->session.conn_path);
	}
	n = strlen(b->session.path) + strlen(query) + 3;
	b->session.conn_path = malloc(n);
	if (b->session.conn_path) {
		snprintf(b->session.conn_path, n, "%s?%s", b->session.path, query);
	}
	explicit_bzero(query, strlen(query));
	free(query);
	return b->session.conn_path ? 0 : -ENOMEM;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
	struct tr_bridge *b = req->data;
	char ip[INET6_ADDRSTRLEN] = "";
	char text[160];

	b->session.resolving = false;
	if (status == UV_ECANCELED || b->closing) {
		uv_freeaddrinfo(res);
		return;
	}
	if (status < 0 || !res) {
		uv_freeaddrinfo(res);
		snprintf(text, sizeof(text), "cannot resolve %s%s: %s",
			b->session.via_proxy ? "the proxy " : "",
			b->session.via_proxy ? b->session.dial.host : b->session.address,
			uv_strerror(status));
		tr_log_info("upstream: %s", text);
		session_lost(b, text, false);
		return;
	}
	if (res->ai_family == AF_INET6) {
		(void)uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, ip, sizeof(ip));
	} else {
		(void)uv_ip4_name((struct sockaddr_in *)res->ai_addr, ip, sizeof(ip));
	}
	uv_freeaddrinfo(res);
	if (b->token.expired || !b->token.value) {
		/* it expired while the name was being resolved */
		tr_bridge_set_state(b, TR_BRIDGE_TOKEN_EXPIRED, NULL);
		return;
	}
	if (make_conn_path(b) < 0) {
		schedule_reconnect(b, "out of memory", false);
		return;
	}
	if (b->session.via_proxy && tr_bridge_proxy_set_address(b, ip) < 0) {
		session_lost(b, "libwebsockets refused the proxy's address", false);
		return;
	}
	connect_to(b, ip);
}

/* The options and protocols of every vhost (the default one is made with the context). */
static void vhost_info(struct tr_bridge *b, struct lws_context_creation_info *info);

/* The vhost of proxied connections. lws never reads the environment for it: its proxy is
 * given (and set again with the resolved address before each connection). */
static int make_proxied_vhost(struct tr_bridge *b) {
	struct lws_context_creation_info info = {0};
	char hp[300];

	if (tr_proxy_format(&b->session.dial, hp, sizeof(hp)) < 0) {
		return -EINVAL;
	}
	vhost_info(b, &info);
	info.vhost_name = "proxied";
	info.http_proxy_address = hp;
	b->session.vh_proxied = lws_create_vhost(b->session.ctx, &info);
	if (!b->session.vh_proxied) {
		tr_log_err("upstream: libwebsockets cannot make the vhost for the proxy");
		return -ENOMEM;
	}
	return 0;
}

static void connect_now(struct tr_bridge *b) {
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int e;

	if (b->closing || b->session.wsi || b->session.resolving) {
		return;
	}
	/* the probe only explains the last failure: a connection wanted now (a new token, a
	 * SIGHUP) goes ahead without it */
	b->session.probe = tr_tunnel_probe_cancel(b->session.probe);
	if (b->token.expired) {
		tr_bridge_set_state(b, TR_BRIDGE_TOKEN_EXPIRED, NULL);
		return;
	}
	if (!b->token.value) {
		if (b->cfg->token_command) {
			tr_bridge_set_state(b, TR_BRIDGE_CONNECTING,
				"waiting for the token command");
			tr_bridge_token_run_command(b);
			return;
		}
		tr_bridge_token_expire(b);
		return;
	}
	b->session.established = false;
	b->session.have_close = false;
	b->session.close_code = 0;
	b->session.close_reason[0] = '\0';
	tr_bridge_set_state(b, TR_BRIDGE_CONNECTING, NULL);

	/* Through a proxy: its own vhost (made when first needed; lws cannot take a proxy off
	 * a vhost, so the default one stays direct). */
	tr_proxy_done(&b->session.dial);
	if (b->session.proxy.host) {
		b->session.dial.host = strdup(b->session.proxy.host);
		if (!b->session.dial.host) {
			session_lost(b, "out of memory", false);
			return;
		}
		b->session.dial.port = b->session.proxy.port;
	}
	b->session.via_proxy = b->session.dial.host != NULL;
	if (b->session.via_proxy && !b->session.vh_proxied && make_proxied_vhost(b) < 0) {
		session_lost(b, "cannot set up the proxied connection", false);
		return;
	}
	/* This lws build resolves names synchronously (no LWS_WITH_SYS_ASYNC_DNS), which would
	 * block the loop: resolve on libuv's thread pool and give lws a numeric address (the
	 * proxy's, when there is one). */
	b->session.gai.data = b;
	e = uv_getaddrinfo(b->loop, &b->session.gai, on_resolved,
		b->session.via_proxy ? b->session.dial.host : b->session.address, NULL, &hints);
	if (e < 0) {
		char text[160];
		snprintf(text, sizeof(text), "cannot resolve %s: %s",
			b->session.via_proxy ? b->session.dial.host : b->session.address,
			uv_strerror(e));
		session_lost(b, text, false);
		return;
	}
	b->session.resolving = true;
}

/* ---- receiving ---- */

static void malformed(struct tr_bridge *b, const char *why) {
	uint64_t now = uv_now(b->loop);

	b->session.malformed++;
	if (b->session.last_malformed_log == 0 ||
		now - b->session.last_malformed_log >= MALFORMED_LOG_INTERVAL_MS) {
		tr_log_warning("upstream: malformed frame (%s); %" PRIu64 " so far, ignoring", why,
			b->session.malformed);
		b->session.last_malformed_log = now;
	}
}

static void handle_init(struct tr_bridge *b, const struct tr_json *p) {
	const char *ch = tr_json_get_string(p, "channel_id");
	const char *ac = tr_json_get_string(p, "account_sid");
	const char *ws = tr_json_get_string(p, "workspace_sid");
	int64_t life = 0;

	if (!ch || !ws || strlen(ch) >= sizeof(b->session.worker_sid) ||
		strlen(ws) >= sizeof(b->session.workspace_sid) ||
		(ac && strlen(ac) >= sizeof(b->session.account_sid)) || strchr(ch, '/') ||
		strchr(ws, '/')) {
		malformed(b, "init without valid channel_id/workspace_sid");
		tr_bridge_session_drop(b, "invalid init from the server", false);
		return;
	}
	(void)uv_timer_stop(&b->session.t_init);
	snprintf(b->session.worker_sid, sizeof(b->session.worker_sid), "%s", ch);
	snprintf(b->session.workspace_sid, sizeof(b->session.workspace_sid), "%s", ws);
	snprintf(b->session.account_sid, sizeof(b->session.account_sid), "%s", ac ? ac : "");
	if ((b->token.jwt.worker_sid[0] && strcmp(b->token.jwt.worker_sid, ch) != 0) ||
		(b->token.jwt.workspace_sid[0] && strcmp(b->token.jwt.workspace_sid, ws) != 0)) {
		tr_log_warning(
			"upstream: init names worker %s in %s, but the token's grant says %s in %s",
			ch, ws, b->token.jwt.worker_sid, b->token.jwt.workspace_sid);
	}
	b->session.have_init = true;
	b->session.ever_init = true;
	if (tr_json_get_int(p, "token_lifetime", &life) == 0 && life > 0) {
		tr_bridge_token_set_lifetime(b, life);
	}
	tr_log_info("upstream: init for worker %s in workspace %s", ch, ws);
	tr_bridge_resync_start(b);
}

static void handle_message(struct tr_bridge *b, const char *msg, size_t len) {
	const struct tr_json *doc = NULL, *payload;
	const char *type;
	size_t a = 0;
	int e;

	while (a < len && (msg[a] == ' ' || msg[a] == '\t' || msg[a] == '\r' || msg[a] == '\n')) {
		a++;
	}
	if (a == len) {
		b->session.heartbeats++;
		return;
	}
	/* Built in the session's arena: the tree is only read (the cache and the resync copy
	 * what they keep), and a Task's frame makes about a hundred pieces. */
	e = tr_json_parse_in(&b->session.arena, msg, len, &doc, NULL);
	if (e < 0 || !tr_json_is(doc, TR_JSON_OBJECT)) {
		tr_json_arena_reset(&b->session.arena);
		malformed(b, "not a JSON object");
		return;
	}
	type = tr_json_get_string(doc, "event_type");
	if (!type) {
		tr_json_arena_reset(&b->session.arena);
		malformed(b, "no event_type");
		return;
	}
	payload = tr_json_get(doc, "payload");
	if (payload && payload->type == TR_JSON_NULL) {
		payload = NULL;
	}
	if (strcmp(type, "init") == 0) {
		handle_init(b, payload);
	} else if (!tr_bridge_event_known(type)) {
		b->session.unknown_events++;
		tr_log_debug("upstream: unknown event type %s, ignoring", type);
	} else {
		tr_bridge_resync_event(b, type, payload);
	}
	tr_json_arena_reset(&b->session.arena);
}

static int on_receive(struct tr_bridge *b, struct lws *wsi, const char *in, size_t len) {
	if (lws_is_first_fragment(wsi)) {
		b->session.rx_len = 0;
	}
	(void)uv_timer_start(
		&b->session.t_silence, on_silence, (uint64_t)b->cfg->silence_timeout_ms, 0);
	if (b->session.rx_len + len > TR_WS_MAX_MESSAGE) {
		b->session.oversize++;
		if (b->session.oversize == 1) {
			tr_log_warning("upstream: websocket message larger than %u bytes; dropping the "
				       "session",
				TR_WS_MAX_MESSAGE);
		} else {
			tr_log_debug("upstream: oversize websocket message #%" PRIu64,
				b->session.oversize);
		}
		b->session.wsi = NULL;
		session_lost(b, "message too large", false);
		return -1;
	}
	if (append(&b->session.rx, &b->session.rx_len, &b->session.rx_cap, in, len) < 0) {
		b->session.wsi = NULL;
		session_lost(b, "out of memory", false);
		return -1;
	}
	if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
		b->session.frames++;
		handle_message(b, b->session.rx, b->session.rx_len);
		b->session.rx_len = 0;
	}
	return 0;
}

static void on_destroy_timer(uv_timer_t *t);

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
	size_t len) {
	struct lws_context *cx = lws_get_context(wsi);
	struct tr_bridge *b = cx ? lws_context_user(cx) : NULL;
	char text[512];

	(void)user;
	if (!b) {
		return 0;
	}
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (wsi != b->session.wsi) {
			return 0;
		}
		b->session.wsi = NULL;
		if (b->session.via_proxy && tr_bridge_proxy_failure(b, in, text, sizeof(text))) {
			if (!text[0]) {
				return 0; /* the probe tells the rest */
			}
		} else if (b->session.tls_failure.err) {
			tr_tls_describe(&b->session.tls_failure, b->session.hostport,
				b->cfg->ca_file != NULL, text, sizeof(text));
		} else {
			/* lws gives the same text for a refused connection and a timeout */
			tr_tls_describe_lws_error(in, tr_tls_reason(b->session.ssl_ctx),
				b->session.hostport, b->session.timeout_s,
				tr_bridge_session_timed_out(b), text, sizeof(text));
		}
		tr_log_info("upstream: connection failed: %s", text);
		tr_log_debug("upstream: libwebsockets said: %s", in ? (const char *)in : "(nothing)");
		if (in && strstr(in, "unauthorized")) {
			/* HTTP 401 on the upgrade: the server no longer accepts this token
			 * (revoked, or expired by its clock). Retrying with it would loop for
			 * ever, as SDK clients do; wait for a new one (a token command is asked
			 * at once). */
			tr_bridge_token_expire(b);
			if (b->cfg->token_command) {
				tr_bridge_token_run_command(b);
			}
		}
		session_lost(b, text, false);
		return 0;
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		/* the upgrade request is being written: any tunnel is open */
		if (wsi == b->session.wsi) {
			b->session.tunnel_up = true;
		}
		return 0;
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		/* user: the X509_STORE_CTX, len: OpenSSL's verdict so far. Return 0 to keep it. */
		if (wsi != b->session.wsi) {
			return 0;
		}
		b->session.tunnel_up = true; /* the server's certificate came through */
		if (!len) {
			tr_tls_capture(&b->session.tls_failure, user);
			return 0;
		}
		if (b->session.v6_literal &&
			X509_STORE_CTX_get_error_depth((X509_STORE_CTX *)user) == 0 &&
			!tr_tls_check_ip(user, b->session.address)) {
			tr_tls_capture(&b->session.tls_failure, user);
			return 1;
		}
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (wsi != b->session.wsi) {
			return -1;
		}
		b->session.established = true;
		b->session.open_ms = uv_now(b->loop);
		b->session.rx_len = 0;
		(void)uv_timer_start(
			&b->session.t_silence, on_silence, (uint64_t)b->cfg->silence_timeout_ms, 0);
		(void)uv_timer_start(&b->session.t_init, on_init_timeout, TR_WS_INIT_TIMEOUT_MS, 0);
		if (!b->token.expired) {
			tr_bridge_set_state(b, TR_BRIDGE_OPEN, NULL);
		}
		if (b->closing) {
			b->session.send_close = true;
			lws_callback_on_writable(wsi);
		}
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (wsi != b->session.wsi || b->closing) {
			return b->closing ? 0 : -1;
		}
		return on_receive(b, wsi, in, len);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		tr_log_debug("upstream: close frame from the server (%zu bytes)", len);
		if (wsi == b->session.wsi && len >= 2) {
			const unsigned char *p = in;
			size_t n = len - 2 < sizeof(b->session.close_reason) - 1 ?
					   len - 2 :
					   sizeof(b->session.close_reason) - 1;
			b->session.close_code = (uint16_t)(p[0] << 8 | p[1]);
			memcpy(b->session.close_reason, p + 2, n);
			b->session.close_reason[n] = '\0';
			b->session.have_close = true;
		}
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (wsi == b->session.wsi && b->session.send_close) {
			unsigned char buf[LWS_PRE + 16];
			static const char why[] = "shutdown";
			buf[LWS_PRE] = 1000 >> 8;
			buf[LWS_PRE + 1] = 1000 & 0xff;
			memcpy(buf + LWS_PRE + 2, why, sizeof(why) - 1);
			/* 4 is LWS_WRITE_CLOSE, not in the public enum of 4.1. */
			(void)lws_write(wsi, buf + LWS_PRE, 2 + sizeof(why) - 1,
				(enum lws_write_protocol)4);
			b->session.send_close = false;
		}
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (wsi != b->session.wsi) {
			return 0;
		}
		b->session.wsi = NULL;
		if (b->closing) {
			/* The close handshake is done: destroy the context now. */
			(void)uv_timer_start(&b->session.t_destroy, on_destroy_timer, 0, 0);
			return 0;
		}
		if (b->session.have_close && b->session.close_reason[0]) {
			snprintf(text, sizeof(text), "%s", b->session.close_reason);
		} else {
			snprintf(text, sizeof(text), "Websocket closed with errorCode=%u",
				b->session.have_close ? b->session.close_code : 1006);
		}
		tr_log_info("upstream: websocket closed (code %u)",
			b->session.have_close ? b->session.close_code : 1006);
		session_lost_ex(b, text, false, true);
		return 0;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{"tr-eventbridge", ws_callback, 0, 65536, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- setting up and closing ---- */

static int parse_ws_url(struct tr_bridge *b, const char *url) {
	char *copy = strdup(url);
	const char *prot, *ads, *path;
	int port;

	if (!copy) {
		return -ENOMEM;
	}
	if (lws_parse_uri(copy, &prot, &ads, &port, &path)) {
		free(copy);
		return -EINVAL;
	}
	b->session.tls = strcmp(prot, "wss") == 0;
	if (!b->session.tls && strcmp(prot, "ws") != 0) {
		free(copy);
		return -EINVAL;
	}
	b->session.address = strdup(ads);
	b->session.port = port;
	if (asprintf(&b->session.path, "/%s", path) < 0) {
		b->session.path = NULL;
	}
	b->session.v6_literal = strchr(ads, ':') != NULL;
	if (b->session.v6_literal && asprintf(&b->session.host_v6, "[%s]", ads) < 0) {
		b->session.host_v6 = NULL;
		free(copy);
		return -ENOMEM;
	}
	if (asprintf(&b->session.hostport, b->session.v6_literal ? "[%s]:%d" : "%s:%d", ads,
		    port) < 0) {
		b->session.hostport = NULL;
	}
	{
		bool v6 = b->session.v6_literal; /* an IPv6 literal needs its brackets back */
		bool default_port =
			(b->session.tls && port == 443) || (!b->session.tls && port == 80);
		int r = default_port ?
				asprintf(&b->session.host, v6 ? "[%s]" : "%s", ads) :
				asprintf(&b->session.host, v6 ? "[%s]:%d" : "%s:%d", ads, port);
		if (r < 0) {
			b->session.host = NULL;
		}
	}
	free(copy);
	if (!b->session.address || !b->session.path || !b->session.host || !b->session.hostport) {
		return -ENOMEM;
	}
	return 0;
}

int tr_bridge_session_init(struct tr_bridge *b) {
	int e = parse_ws_url(b, b->cfg->websocket_url);

	if (e < 0) {
		tr_log_err("upstream: cannot parse the websocket URL");
	}
	return e;
}

static void vhost_info(struct tr_bridge *b, struct lws_context_creation_info *info) {
	/* TLS only for wss://: with the SSL init option lws builds the client context at once
	 * and loads the whole system CA bundle into it (a quarter of a billion instructions at
	 * startup and about 0.5 MB of heap, plus the libcrypto pages it touches), which a
	 * ws:// session (the simulator, a local proxy) never uses. */
	info->options = LWS_SERVER_OPTION_LIBUV;
	if (b->session.tls) {
		info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info->provided_client_ssl_ctx = b->session.ssl_ctx;
	}
	info->port = CONTEXT_PORT_NO_LISTEN;
	info->protocols = protocols;
	info->gid = -1;
	info->uid = -1;
}

/* libwebsockets reads the socket into one buffer of this size (its default is 4 KB): a burst
 * of events, as after a reconnect, then takes one read, one poll and one pass through lws per
 * 16 KB rather than per 4 KB (about 13 events of a full Task each). lws allocates it inside its
 * context, zeroed, so every byte of it is the daemon's memory from the start: 32 KB bought no
 * measurable CPU over 16 (a read costs a few microseconds; an event about 35). */
#define WS_READ_BUF_SIZE (16u * 1024u)

/* The descriptors libwebsockets handles: its own wake-up pipe, the websocket, and one more while
 * a previous connection closes or a proxied one opens. Given no number, lws sizes two tables
 * (its pollfds and its fd -> connection map, 8 bytes an entry, zeroed) to RLIMIT_NOFILE: 16 KB
 * for sockets it never sees, since the clients' connections are the loop's. With a number it
 * finds a connection by scanning these few entries instead of indexing by fd. */
#define WS_MAX_FDS 16u

int tr_bridge_session_create_context(struct tr_bridge *b) {
	struct lws_context_creation_info info = {0};
	void *foreign[1] = {b->loop};

	lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit);
	log_bridge = b;
	b->session.timeout_s = (b->cfg->connect_timeout_ms + 999) / 1000;
	if (b->session.tls) {
		/* Ours, so that its trusted CAs can be replaced on SIGHUP and a refused
		 * certificate can be told in words (tls.h); lws never frees it. */
		char *err = NULL;
		int e = tr_tls_ctx_new(b->cfg->ca_file, &b->session.ssl_ctx, &err);
		if (e < 0) {
			tr_log_err("upstream: %s", err ? err : strerror(-e));
			free(err);
			return e;
		}
	}
	vhost_info(b, &info);
	info.foreign_loops = foreign;
	info.user = b;
	info.timeout_secs = (unsigned)b->session.timeout_s;
	info.pt_serv_buf_size = WS_READ_BUF_SIZE;
	info.fd_limit_per_thread = WS_MAX_FDS;
	/* The default vhost is the direct one. Made without a proxy address, lws would take
	 * one from http_proxy, for every host and with no NO_PROXY; port 0 is lws' "no
	 * proxy". The proxy, if any, is chosen by proxy.c and has a vhost of its own. */
	info.http_proxy_address = "0.0.0.0:0";
	b->session.ctx = lws_create_context(&info);
	if (!b->session.ctx) {
		tr_log_err("upstream: cannot create the libwebsockets context (is the libuv plugin, "
			   "package libwebsockets-evlib-uv, installed?)");
		return -EIO;
	}
	tr_bridge_net_start(b);
	return 0;
}

static void on_destroy_timer(uv_timer_t *t) {
	struct tr_bridge *b = t->data;

	if (b->session.destroyed_once) {
		return;
	}
	b->session.destroyed_once = true;
	b->session.wsi = NULL;
	/* First destroy on a foreign loop: lws closes its handles asynchronously; the second
	 * lws_context_destroy in tr_bridge_session_done frees it after the loop drained. */
	if (b->session.ctx) {
		lws_context_destroy(b->session.ctx);
	}
	tr_bridge_close_handles(b);
}

void tr_bridge_session_close(struct tr_bridge *b) {
	b->session.probe = tr_tunnel_probe_cancel(b->session.probe);
	tr_bridge_net_stop(b);
	if (b->session.resolving) {
		(void)uv_cancel((uv_req_t *)&b->session.gai);
	}
	if (b->session.wsi && b->session.established) {
		/* A clean close frame, then wait (bounded) for the server's answer. */
		b->session.send_close = true;
		lws_callback_on_writable(b->session.wsi);
		(void)uv_timer_start(&b->session.t_destroy, on_destroy_timer, CLOSE_GRACE_MS, 0);
	} else {
		(void)uv_timer_start(&b->session.t_destroy, on_destroy_timer, 0, 0);
	}
}

void tr_bridge_session_done(struct tr_bridge *b) {
	if (b->session.ctx) {
		lws_context_destroy(b->session.ctx);
		b->session.ctx = NULL;
	}
	b->session.ssl_ctx = tr_tls_ctx_free(b->session.ssl_ctx);
	if (log_bridge == b) {
		log_bridge = NULL;
	}
	if (b->session.conn_path) {
		explicit_bzero(b->session.conn_path, strlen(b->session.conn_path));
		free(b->session.conn_path);
		b->session.conn_path = NULL;
	}
	free(b->session.rx);
	b->session.rx = NULL;
	free(b->session.address);
	free(b->session.path);
	tr_proxy_done(&b->session.proxy);
	tr_proxy_done(&b->session.dial);
	free(b->session.host_v6);
	free(b->session.host);
	free(b->session.hostport);
	b->session.address = b->session.path = b->session.host = b->session.hostport = NULL;
}

bool tr_bridge_session_displaced(const struct tr_bridge *b) {
	return b->session.quick_closes >= DISPLACED_AFTER;
}
