/*
 * fakesrv.c — see fakesrv.h.
 */
#include "fakesrv.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* ------------------------------------------------------------------ server helpers */

int64_t now_ms(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read exactly n bytes with a deadline. Returns n, 0 on EOF, -1 on error/timeout. */
ssize_t read_full(int fd, void *buf, size_t n) {
	size_t have = 0;
	int64_t deadline = now_ms() + SRV_DEADLINE_MS;

	while (have < n) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int left = (int)(deadline - now_ms());
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, left) <= 0) {
			return -1;
		}
		r = read(fd, (char *)buf + have, n - have);
		if (r == 0) {
			return 0;
		}
		if (r < 0) {
			return -1;
		}
		have += (size_t)r;
	}
	return (ssize_t)n;
}

void write_full(int fd, const void *buf, size_t n) {
	size_t off = 0;

	while (off < n) {
		ssize_t r = send(fd, (const char *)buf + off, n - off, MSG_NOSIGNAL);

		if (r <= 0) {
			return;
		}
		off += (size_t)r;
	}
}

/* Read one request frame; returns a malloc'd payload or NULL on EOF/error. */
char *srv_read(int fd) {
	unsigned char h[4];
	uint32_t len;
	char *p;

	if (read_full(fd, h, 4) != 4) {
		return NULL;
	}
	len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if (len > (1u << 20)) {
		return NULL;
	}
	p = calloc(1, len + 1);
	if (!p || read_full(fd, p, len) != (ssize_t)len) {
		free(p);
		return NULL;
	}
	return p;
}

long long req_id(const char *req) {
	const char *p = req ? strstr(req, "\"id\":") : NULL;

	return p ? strtoll(p + 5, NULL, 10) : -1;
}

bool req_is(const char *req, const char *method, const char *params) {
	char want[8192];
	size_t n, len;

	if (!req) {
		return false;
	}
	n = (size_t)snprintf(want, sizeof(want), "\"method\":\"%s\"%s%s}", method,
		params ? ",\"params\":" : "", params ? params : "");
	len = strlen(req);
	return n < sizeof(want) && len >= n && strcmp(req + len - n, want) == 0 &&
	       (len == n || req[len - n - 1] == ',');
}

/* Append one framed message to buf (for many frames in one write). */
size_t put_frame(char *buf, const char *json) {
	uint32_t len = (uint32_t)strlen(json);

	buf[0] = (char)(len >> 24);
	buf[1] = (char)(len >> 16);
	buf[2] = (char)(len >> 8);
	buf[3] = (char)len;
	memcpy(buf + 4, json, len);
	return len + 4;
}

void srv_send(int fd, const char *json) {
	char *buf = malloc(strlen(json) + 4);

	if (buf) {
		write_full(fd, buf, put_frame(buf, json));
	}
	free(buf);
}

void srv_sendf(int fd, const char *fmt, ...) {
	char json[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(json, sizeof(json), fmt, ap);
	va_end(ap);
	srv_send(fd, json);
}

/* Wait for the client to hang up (EOF), with the deadline. */
void srv_wait_eof(int fd) {
	char b[256];

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};

		if (poll(&pfd, 1, SRV_DEADLINE_MS) <= 0 || read(fd, b, sizeof(b)) <= 0) {
			return;
		}
	}
}

static void *server_main(void *arg) {
	struct server *s = arg;
	struct pollfd pfd = {.fd = s->lfd, .events = POLLIN};
	int fd;

	if (poll(&pfd, 1, SRV_DEADLINE_MS) <= 0) {
		s->failures++;
		return NULL;
	}
	fd = accept(s->lfd, NULL, NULL);
	if (fd < 0) {
		s->failures++;
		return NULL;
	}
	s->script(s, fd);
	close(fd);
	if (--s->connections > 0) {
		return server_main(s);
	}
	return NULL;
}

struct server *server_start(script_fn script) {
	return server_start_n(script, 1, NULL);
}

struct server *server_start_n(script_fn script, int connections, void *user) {
	struct server *s = calloc(1, sizeof(*s));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	assert_non_null(s);
	snprintf(s->dir, sizeof(s->dir), "/tmp/trclient-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/sock", s->dir);
	assert_true(strlen(s->path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	s->script = script;
	s->connections = connections;
	s->user = user;
	assert_int_equal(pthread_create(&s->th, NULL, server_main, s), 0);
	return s;
}

void server_stop(struct server *s) {
	pthread_join(s->th, NULL);
	assert_int_equal(s->failures, 0);
	close(s->lfd);
	unlink(s->path);
	rmdir(s->dir);
	free(s);
}
