/*
 * tunnel-probe.c — one CONNECT request to a proxy, for its status line (tunnel-probe.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "tunnel-probe.h"

#define PROBE_MAX_REPLY 1024

struct tr_tunnel_probe {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t conn;
	uv_write_t wr;
	char *request; /* holds the credentials: wiped */
	size_t request_len;
	char reply[PROBE_MAX_REPLY + 1];
	size_t reply_len;
	tr_tunnel_probe_cb cb;
	void *userdata;
	bool done;
	int closes;
};

static void on_closed(uv_handle_t *h) {
	struct tr_tunnel_probe *p = h->data;

	if (--p->closes == 0) {
		if (p->request) {
			explicit_bzero(p->request, p->request_len);
			free(p->request);
		}
		free(p);
	}
}

/* Report once (unless cancelled) and close. */
static void finish(struct tr_tunnel_probe *p, int status, const char *reason) {
	if (p->done) {
		return;
	}
	p->done = true;
	if (p->cb) {
		p->cb(p->userdata, status, reason);
	}
	p->closes = 2;
	uv_close((uv_handle_t *)&p->tcp, on_closed);
	uv_close((uv_handle_t *)&p->timer, on_closed);
}

static void on_timeout(uv_timer_t *t) {
	finish(t->data, -ETIMEDOUT, "");
}

/* "HTTP/1.x NNN reason\r\n" once the line is complete. */
static void parse_reply(struct tr_tunnel_probe *p) {
	char *eol = strstr(p->reply, "\r\n");
	char reason[128] = "";
	int code = 0, n = 0;

	if (!eol) {
		if (p->reply_len >= PROBE_MAX_REPLY) {
			finish(p, -EPROTO, "");
		}
		return;
	}
	*eol = '\0';
	if (sscanf(p->reply, "HTTP/1.%*1[01] %3d%n", &code, &n) != 1 || code < 100 || code > 599) {
		finish(p, -EPROTO, "");
		return;
	}
	if (p->reply[n] == ' ') {
		snprintf(reason, sizeof(reason), "%s", p->reply + n + 1);
		for (char *c = reason; *c; c++) {
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) {
				*c = '?'; /* the proxy's words go into JSON and the log */
			}
		}
	}
	finish(p, code, reason);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
	struct tr_tunnel_probe *p = h->data;

	(void)hint;
	buf->base = p->reply + p->reply_len;
	buf->len = PROBE_MAX_REPLY - p->reply_len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
	struct tr_tunnel_probe *p = s->data;

	(void)buf;
	if (n < 0) {
		finish(p, n == UV_EOF ? -EPROTO : (int)n, "");
		return;
	}
	p->reply_len += (size_t)n;
	p->reply[p->reply_len] = '\0';
	parse_reply(p);
}

static void on_written(uv_write_t *w, int status) {
	struct tr_tunnel_probe *p = w->data;

	explicit_bzero(p->request, p->request_len);
	if (status < 0) {
		finish(p, status, "");
	}
}

static void on_connected(uv_connect_t *c, int status) {
	struct tr_tunnel_probe *p = c->data;
	uv_buf_t b;
	int e;

	if (status == UV_ECANCELED || p->done) {
		return;
	}
	if (status < 0) {
		finish(p, status, "");
		return;
	}
	b = uv_buf_init(p->request, (unsigned)p->request_len);
	p->wr.data = p;
	e = uv_write(&p->wr, (uv_stream_t *)&p->tcp, &b, 1, on_written);
	if (e == 0) {
		e = uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
	}
	if (e < 0) {
		finish(p, e, "");
	}
}

int tr_tunnel_probe_start(uv_loop_t *loop, const char *proxy_ip, int proxy_port,
	const char *target_host, int target_port, const char *user, const char *password,
	unsigned timeout_ms, tr_tunnel_probe_cb cb, void *userdata, struct tr_tunnel_probe **ret) {
	struct sockaddr_storage sa;
	struct tr_tunnel_probe *p;
	bool v6 = strchr(target_host, ':') != NULL;
	char auth[128] = "";
	int e, n;

	if (uv_ip4_addr(proxy_ip, proxy_port, (struct sockaddr_in *)&sa) != 0 &&
		uv_ip6_addr(proxy_ip, proxy_port, (struct sockaddr_in6 *)&sa) != 0) {
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		return -ENOMEM;
	}
	if (user && password) {
		/* encoded as libwebsockets encodes them for its own CONNECT (at most 93 bytes) */
		char plain[96];
		int k = snprintf(plain, sizeof(plain), "%s:%s", user, password);
		int e64 = k > 0 && (size_t)k < sizeof(plain) ?
				  lws_b64_encode_string(plain, k, auth, sizeof(auth)) :
				  -1;
		explicit_bzero(plain, sizeof(plain));
		if (e64 < 0) {
			free(p);
			return -EINVAL;
		}
	}
	n = asprintf(&p->request,
		"CONNECT %s%s%s:%d HTTP/1.1\r\nHost: %s%s%s:%d\r\n%s%s%sUser-Agent: taskrouterd\r\n\r\n",
		v6 ? "[" : "", target_host, v6 ? "]" : "", target_port, v6 ? "[" : "", target_host,
		v6 ? "]" : "", target_port, auth[0] ? "Proxy-Authorization: Basic " : "",
		auth, auth[0] ? "\r\n" : "");
	explicit_bzero(auth, sizeof(auth));
	if (n < 0) {
		free(p);
		return -ENOMEM;
	}
	p->request_len = (size_t)n;
	p->cb = cb;
	p->userdata = userdata;
	(void)uv_tcp_init(loop, &p->tcp);
	(void)uv_timer_init(loop, &p->timer);
	p->tcp.data = p->timer.data = p->conn.data = p;
	e = uv_tcp_connect(&p->conn, &p->tcp, (struct sockaddr *)&sa, on_connected);
	if (e == 0) {
		e = uv_timer_start(&p->timer, on_timeout, timeout_ms, 0);
	}
	if (e < 0) {
		p->cb = NULL;
		finish(p, e, "");
		return e;
	}
	*ret = p;
	return 0;
}

struct tr_tunnel_probe *tr_tunnel_probe_cancel(struct tr_tunnel_probe *p) {
	if (p) {
		p->cb = NULL;
		finish(p, -ECANCELED, "");
	}
	return NULL;
}
