/*
 * tunnel-probe.h — ask an HTTP proxy for a CONNECT tunnel and report its status line, then
 * hang up. libwebsockets 4.1.6 reports any refusal of its tunnel as "proxy not h1" and
 * drops the status code; the session runs this probe to say what the proxy answered (407
 * Proxy Authentication Required, 403 Forbidden, …).
 *
 * Owner: the bridge session (bridge-session.c). Depends on libuv, and on libwebsockets for
 * base64. The credentials are
 * copied into the request and wiped; they are never logged.
 */
#pragma once

#include <uv.h>

struct tr_tunnel_probe;

/* status: the proxy's HTTP status (e.g. 407), or a negative errno (-ETIMEDOUT, -ECONNREFUSED,
 * -EPROTO for an answer that is not HTTP). reason: the reason phrase ("" when none). The
 * probe is freed after the callback returns. */
typedef void (*tr_tunnel_probe_cb)(void *userdata, int status, const char *reason);

/* Connect to the proxy at the numeric address proxy_ip:proxy_port, send "CONNECT
 * target_host:target_port" (with Basic credentials when user is not NULL), read the status
 * line. timeout_ms bounds the whole probe. Returns 0 and calls cb exactly once later, or a
 * negative errno (cb never called). */
int tr_tunnel_probe_start(uv_loop_t *loop, const char *proxy_ip, int proxy_port,
	const char *target_host, int target_port, const char *user, const char *password,
	unsigned timeout_ms, tr_tunnel_probe_cb cb, void *userdata, struct tr_tunnel_probe **ret);
/* Stop a running probe without calling its callback (freed once its handles closed).
 * Accepts NULL; returns NULL. */
struct tr_tunnel_probe *tr_tunnel_probe_cancel(struct tr_tunnel_probe *p);
