/*
 * bridge-proxy.c — the bridge's HTTP proxies: which one the websocket and REST go through
 * (proxy.c decides from the configuration and the environment) and the credentials, at
 * start and on SIGHUP; the proxied websocket's numeric proxy address; and a proxy's refusal
 * in words (libwebsockets drops the proxy's status: a tunnel probe asks again).
 *
 * Never logs the credentials.
 */
#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge-internal.h"
#include "config.h"
#include "log.h"
#include "proxy.h"
#include "rest.h"
#include "tunnel-probe.h"

/* "proxy.example:3128 (from https_proxy)" or "directly", for the log. */
static void describe_route(const struct tr_proxy *p, const char *source, char *buf, size_t size) {
	char hp[300];

	if (!p->host || tr_proxy_format(p, hp, sizeof(hp)) < 0) {
		snprintf(buf, size, "directly");
	} else {
		snprintf(buf, size, "through proxy %s (from %s)", hp, source ? source : "?");
	}
}

int tr_bridge_proxy_choose(struct tr_bridge *b) {
	const struct tr_config *cfg = b->cfg;
	struct tr_proxy ws = {0}, rest = {0};
	const char *ws_src = NULL, *rest_src = NULL;
	char *user = NULL, *password = NULL, *err = NULL, *rhost = NULL, hp[300], text[400];
	bool rtls = false;
	int rport = 0, e;

	e = tr_proxy_choose(cfg->proxy, cfg->no_proxy, b->session.tls, b->session.address,
		b->session.port, NULL, &ws, &ws_src, &err);
	if (e == 0) {
		e = tr_rest_endpoint(b->rest, &rhost, &rport, &rtls);
	}
	if (e == 0) {
		e = tr_proxy_choose(cfg->proxy, cfg->no_proxy, rtls, rhost, rport, NULL, &rest,
			&rest_src, &err);
	}
	free(rhost);
	if (e == 0 && (ws.host || rest.host) && cfg->proxy_credentials_file) {
		e = tr_proxy_read_credentials(cfg->proxy_credentials_file,
			!cfg->proxy_credentials_from_credential, &user, &password, &err);
	}
	if (e == 0 && rest.host) {
		e = tr_proxy_format(&rest, hp, sizeof(hp)) < 0 ? -EINVAL : 0;
	}
	if (e == 0) {
		e = tr_rest_set_proxy(b->rest, rest.host ? hp : NULL, user, password);
	}
	if (e < 0) {
		tr_log_err("upstream: proxy: %s", err ? err : strerror(-e));
		free(err);
		tr_proxy_done(&ws);
		tr_proxy_done(&rest);
		tr_proxy_credentials_wipe(user, password);
		return e;
	}
	describe_route(&ws, ws_src, text, sizeof(text));
	tr_log_info("upstream: the websocket to %s goes %s", b->session.hostport, text);
	describe_route(&rest, rest_src, text, sizeof(text));
	tr_log_info("upstream: REST goes %s%s", text,
		(ws.host || rest.host) && user ? ", with the credentials of proxy-credentials-file" :
						  "");
	tr_proxy_done(&b->session.proxy);
	b->session.proxy = ws;
	b->session.proxy_source = ws_src;
	tr_proxy_done(&b->rest_proxy);
	b->rest_proxy = rest;
	tr_proxy_credentials_wipe(b->proxy_user, b->proxy_password);
	b->proxy_user = user;
	b->proxy_password = password;
	return 0;
}

int tr_bridge_proxy_set_address(struct tr_bridge *b, const char *ip) {
	char spec[300];
	bool v6 = strchr(ip, ':') != NULL;
	int n, e;

	snprintf(b->session.proxy_ip, sizeof(b->session.proxy_ip), "%s", ip);
	n = snprintf(spec, sizeof(spec), "%s%s%s%s%s%s%s:%d", b->proxy_user ? b->proxy_user : "",
		b->proxy_user ? ":" : "", b->proxy_user ? b->proxy_password : "",
		b->proxy_user ? "@" : "", v6 ? "[" : "", ip, v6 ? "]" : "", b->session.dial.port);
	e = n > 0 && (size_t)n < sizeof(spec) ? lws_set_proxy(b->session.vh_proxied, spec) : -1;
	explicit_bzero(spec, sizeof(spec));
	return e < 0 ? -EINVAL : 0;
}

/* "proxy.example:3128 (from https_proxy)" */
static void proxy_name(const struct tr_bridge *b, char *buf, size_t size) {
	char hp[300];

	if (tr_proxy_format(&b->session.dial, hp, sizeof(hp)) < 0) {
		snprintf(hp, sizeof(hp), "?");
	}
	snprintf(buf, size, "%s", hp);
}

/* The probe's answer: why the proxy refused the tunnel, then the session is lost. */
static void on_probe(void *userdata, int status, const char *reason) {
	struct tr_bridge *b = userdata;
	char text[512], pn[320];

	b->session.probe = NULL;
	proxy_name(b, pn, sizeof(pn));
	if (status == 407) {
		snprintf(text, sizeof(text),
			"proxy %s refused the tunnel to %s: HTTP 407 %s (%s)", pn,
			b->session.hostport, reason[0] ? reason : "Proxy Authentication Required",
			b->proxy_user ? "it refused the credentials of proxy-credentials-file" :
					"it wants credentials: set proxy-credentials-file");
	} else if (status >= 300) {
		snprintf(text, sizeof(text), "proxy %s refused the tunnel to %s: HTTP %d %s", pn,
			b->session.hostport, status, reason);
	} else if (status >= 200 && status < 300) {
		snprintf(text, sizeof(text),
			"proxy %s: its answer to the tunnel request for %s could not be read "
			"(asked again, it answered HTTP %d)",
			pn, b->session.hostport, status);
	} else {
		snprintf(text, sizeof(text), "proxy %s refused the tunnel to %s (%s)", pn,
			b->session.hostport,
			status == -EPROTO || status > 0 ? "its answer is not an HTTP status" :
							   uv_strerror(status));
	}
	tr_log_info("upstream: connection failed: %s", text);
	tr_bridge_session_lost(b, text);
}

bool tr_bridge_proxy_failure(struct tr_bridge *b, const char *in, char *text, size_t size) {
	char pn[320];

	if (!in || b->session.tunnel_up) {
		return false; /* the tunnel was open: TLS or the server failed, not the proxy */
	}
	proxy_name(b, pn, sizeof(pn));
	text[0] = '\0';
	if (strcmp(in, "proxy not h1") == 0) {
		unsigned timeout_ms = (unsigned)b->session.timeout_s * 1000u;
		if (tr_tunnel_probe_start(b->loop, b->session.proxy_ip, b->session.dial.port,
			    b->session.address, b->session.port, b->proxy_user, b->proxy_password,
			    timeout_ms, on_probe, b, &b->session.probe) == 0) {
			return true;
		}
		snprintf(text, size, "proxy %s refused the tunnel to %s", pn, b->session.hostport);
		return true;
	}
	if (strncmp(in, "proxy ", 6) == 0) {
		snprintf(text, size,
			"proxy %s closed the connection before answering the tunnel request to %s",
			pn, b->session.hostport);
		return true;
	}
	if (strstr(in, "Closed before conn")) {
		/* lws' words when the proxy took the connection but its answer never came */
		snprintf(text, size, "no answer from proxy %s to the tunnel request for %s within %d s",
			pn, b->session.hostport, b->session.timeout_s);
		return true;
	}
	if (strstr(in, "closed before established")) {
		/* before the tunnel: the proxy itself could not be reached */
		if (tr_bridge_session_timed_out(b)) {
			snprintf(text, size, "no answer from proxy %s within %d s (tunnel to %s)", pn,
				b->session.timeout_s, b->session.hostport);
		} else {
			snprintf(text, size,
				"cannot connect to proxy %s (tunnel to %s): refused or unreachable", pn,
				b->session.hostport);
		}
		return true;
	}
	return false;
}

void tr_bridge_proxy_done(struct tr_bridge *b) {
	tr_proxy_done(&b->rest_proxy);
	tr_proxy_credentials_wipe(b->proxy_user, b->proxy_password);
	b->proxy_user = b->proxy_password = NULL;
}
