/* simclient.c — see simclient.h. */
#include "simclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int64_t last_ms;

int64_t sc_last_ms(void) {
	return last_ms;
}

static int request(struct trt_env *env, const char *method, const char *path, const char *body,
	const char *const *headers, yajl_val *ret) {
	char *text = NULL;
	int64_t t0 = trt_now_ms();
	int st = trt_sim_request(env, method, path, body, headers, ret ? &text : NULL);

	last_ms = trt_now_ms() - t0;
	if (ret) {
		*ret = text ? yajl_tree_parse(text, NULL, 0) : NULL;
	}
	free(text);
	return st;
}

int sc_http(struct trt_env *env, const char *method, const char *path, const char *body,
	yajl_val *ret) {
	return request(env, method, path, body, NULL, ret);
}

int sc_rest(struct trt_env *env, const char *token, const char *api, const char *method,
	const char *url, const char *params, const char *if_match, yajl_val *ret) {
	const char *hdr[4];
	size_t n = 0;

	hdr[n++] = trt_fmt("apiVersion: %s", api);
	hdr[n++] = "clientVersion: test-1";
	if (if_match) {
		hdr[n++] = trt_fmt("If-Match: %s", if_match);
	}
	hdr[n] = NULL;
	return request(env, "POST", "/v1/wschannels",
		trt_fmt("{\"url\":\"%s\",\"method\":\"%s\",\"params\":%s,\"token\":\"%s\"}", url,
			method, params ? params : "{}", token),
		hdr, ret);
}

/* ---- websocket ---- */

/* One read: 0, -ETIMEDOUT, -ENOMEM, or -ECONNRESET once the connection is gone. */
static int read_some(struct ws *w, int timeout_ms) {
	ssize_t k = trt_rbuf_read(&w->sock, timeout_ms);
	if (k == -ETIMEDOUT || k == -ENOMEM) {
		return (int)k;
	}
	return k > 0 ? 0 : -ECONNRESET;
}

int ws_open(struct trt_env *env, const char *query, struct ws **ret) {
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)env->sim.port)};
	struct ws *w = calloc(1, sizeof(*w));
	int64_t deadline = trt_now_ms() + (trt_under_valgrind() ? 60000 : 10000);
	char *req, *end;
	int status, r;

	if (!w) {
		return -ENOMEM;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	trt_rbuf_init(&w->sock, socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (w->sock.fd < 0 || connect(w->sock.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ws_free(w);
		return -errno;
	}
	if (asprintf(&req,
		    "GET /v1/wschannels?%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		    "Sec-WebSocket-Version: 13\r\n\r\n",
		    query, env->sim.port) < 0) {
		ws_free(w);
		return -ENOMEM;
	}
	if (write(w->sock.fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		free(req);
		ws_free(w);
		return -EIO;
	}
	free(req);
	for (;;) {
		if (w->sock.len >= 4 && (end = memmem(w->sock.data, w->sock.len, "\r\n\r\n", 4))) {
			break;
		}
		r = read_some(w, trt_remaining(deadline));
		if (r < 0) {
			ws_free(w);
			return r;
		}
	}
	/* the handshake is text (the buffer is NUL-terminated) */
	if (sscanf(w->sock.data, "HTTP/1.%*d %d", &status) != 1) {
		ws_free(w);
		return -EPROTO;
	}
	trt_rbuf_consume(&w->sock, (size_t)(end + 4 - w->sock.data));
	if (status != 101) {
		ws_free(w);
		return status;
	}
	*ret = w;
	return 101;
}

void ws_free(struct ws *w) {
	if (!w) {
		return;
	}
	trt_rbuf_done(&w->sock);
	free(w);
}

static bool parse_frame(struct ws *w, struct wsframe *f) {
	const unsigned char *b = (const unsigned char *)w->sock.data;
	size_t hl = 2, plen, have = w->sock.len;

	if (have < 2) {
		return false;
	}
	plen = b[1] & 0x7f;
	if (plen == 126) {
		if (have < 4) {
			return false;
		}
		plen = (size_t)b[2] << 8 | b[3];
		hl = 4;
	} else if (plen == 127) {
		if (have < 10) {
			return false;
		}
		plen = 0;
		for (int i = 0; i < 8; i++) {
			plen = plen << 8 | b[2 + i];
		}
		hl = 10;
	}
	if (have < hl + plen) {
		return false;
	}
	f->opcode = b[0] & 0x0f;
	f->data = malloc(plen + 1);
	if (!f->data) {
		return false;
	}
	memcpy(f->data, b + hl, plen);
	f->data[plen] = '\0';
	f->len = plen;
	f->close_code = 0;
	if (f->opcode == WS_CLOSE && plen >= 2) {
		f->close_code = (unsigned char)f->data[0] << 8 | (unsigned char)f->data[1];
		memmove(f->data, f->data + 2, plen - 2);
		f->data[plen - 2] = '\0';
		f->len = plen - 2;
	}
	trt_rbuf_consume(&w->sock, hl + plen);
	return true;
}

int ws_next(struct ws *w, int timeout_ms, struct wsframe *f) {
	int64_t deadline = trt_now_ms() + timeout_ms;
	int r;

	memset(f, 0, sizeof(*f));
	while (!parse_frame(w, f)) {
		int64_t left = deadline - trt_now_ms();
		if (left < 0) {
			return -ETIMEDOUT;
		}
		r = read_some(w, (int)left);
		if (r == -ECONNRESET) {
			f->opcode = WS_EOF;
			return 0;
		}
		if (r < 0) {
			return r;
		}
	}
	return 0;
}

void ws_frame_done(struct wsframe *f) {
	free(f->data);
	f->data = NULL;
}

int ws_next_event(struct ws *w, int timeout_ms, struct wsframe *f) {
	int64_t deadline = trt_now_ms() + timeout_ms;

	for (;;) {
		int r = ws_next(w, trt_remaining(deadline), f);
		if (r < 0) {
			return r;
		}
		if (f->opcode == WS_TEXT && strspn(f->data, " \t\r\n") == f->len) {
			ws_frame_done(f);
			continue;
		}
		return 0;
	}
}

yajl_val ws_wait(struct ws *w, const char *type, int timeout_ms) {
	int64_t deadline = trt_now_ms() + timeout_ms;
	struct wsframe f;

	while (ws_next_event(w, trt_remaining(deadline), &f) == 0) {
		yajl_val v;
		if (f.opcode != WS_TEXT) {
			ws_frame_done(&f);
			return NULL;
		}
		v = yajl_tree_parse(f.data, NULL, 0);
		ws_frame_done(&f);
		if (v && jstr(v, "event_type") && strcmp(jstr(v, "event_type"), type) == 0) {
			return v;
		}
		yajl_tree_free(v);
	}
	return NULL;
}

int ws_wait_close(struct ws *w, int timeout_ms, char *reason, size_t size) {
	int64_t deadline = trt_now_ms() + timeout_ms;
	struct wsframe f;
	int r;

	if (!w) {
		return -ENOTCONN;
	}
	while ((r = ws_next(w, trt_remaining(deadline), &f)) == 0) {
		if (f.opcode == WS_EOF) {
			r = WS_EOF;
			break;
		}
		if (f.opcode == WS_CLOSE) {
			snprintf(reason, size, "%s", f.data);
			r = f.close_code;
			ws_frame_done(&f);
			break;
		}
		ws_frame_done(&f);
	}
	return r;
}

yajl_val jget(yajl_val v, const char *path) {
	char buf[256], *save = NULL, *k;

	snprintf(buf, sizeof(buf), "%s", path);
	for (k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save)) {
		yajl_val next = NULL;
		if (YAJL_IS_OBJECT(v)) {
			for (size_t i = 0; i < v->u.object.len; i++) {
				if (strcmp(v->u.object.keys[i], k) == 0) {
					next = v->u.object.values[i];
				}
			}
		} else if (YAJL_IS_ARRAY(v)) {
			size_t i = (size_t)atoi(k);
			next = i < v->u.array.len ? v->u.array.values[i] : NULL;
		}
		v = next;
	}
	return v;
}

const char *jstr(yajl_val v, const char *path) {
	v = jget(v, path);
	return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

long long jint(yajl_val v, const char *path) {
	v = jget(v, path);
	return v && YAJL_IS_INTEGER(v) ? v->u.number.i : -999999;
}
