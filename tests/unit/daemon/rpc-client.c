/* rpc-client.c — see rpc-client.h. */
#include "rpc-client.h"

#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "json.h"

#define CLIENT_BUF (4u << 20)

struct rpc_client *rpc_client_new(uv_loop_t *loop, const char *path) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct rpc_client *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->loop = loop;
	c->buf = malloc(CLIENT_BUF);
	assert_non_null(c->buf);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
	return c;
}

void rpc_client_free(struct rpc_client *c) {
	close(c->fd);
	free(c->buf);
	free(c);
}

void rpc_client_send_raw(struct rpc_client *c, const void *data, size_t len) {
	assert_int_equal(send(c->fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

void rpc_client_send(struct rpc_client *c, const char *json) {
	size_t n = strlen(json);
	uint8_t hdr[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };

	rpc_client_send_raw(c, hdr, 4);
	rpc_client_send_raw(c, json, n);
}

struct tr_json *rpc_client_recv(struct rpc_client *c) {
	uint64_t deadline = uv_hrtime() + 5000000000ull;

	for (;;) {
		if (c->have >= 4) {
			size_t n = (size_t)(uint8_t)c->buf[0] << 24 | (size_t)(uint8_t)c->buf[1] << 16 |
				(size_t)(uint8_t)c->buf[2] << 8 | (uint8_t)c->buf[3];

			if (c->have >= 4 + n) {
				struct tr_json *j = NULL;

				assert_int_equal(tr_json_parse(c->buf + 4, n, &j, NULL), 0);
				memmove(c->buf, c->buf + 4 + n, c->have - 4 - n);
				c->have -= 4 + n;
				return j;
			}
		}
		assert_true(uv_hrtime() < deadline);
		(void)uv_run(c->loop, UV_RUN_NOWAIT);
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		ssize_t r;

		(void)poll(&p, 1, 5);
		r = recv(c->fd, c->buf + c->have, CLIENT_BUF - c->have, 0);
		if (r == 0) {
			return NULL;
		}
		if (r > 0) {
			c->have += (size_t)r;
		}
	}
}

int rpc_client_drain(struct rpc_client *c) {
	struct tr_json *m;
	int frames = 0;

	while ((m = rpc_client_recv(c)) != NULL) {
		frames++;
		tr_json_free(m);
	}
	return frames;
}

struct tr_json *rpc_client_call(struct rpc_client *c, const char *json) {
	rpc_client_send(c, json);
	return rpc_client_recv(c);
}

int64_t rpc_err_code(const struct tr_json *m) {
	int64_t code = 0;

	assert_int_equal(tr_json_get_int(tr_json_get(m, "error"), "code", &code), 0);
	return code;
}

const char *rpc_err_param(const struct tr_json *m) {
	return tr_json_get_string(tr_json_get(tr_json_get(m, "error"), "data"), "param");
}

void rpc_client_wait_hangup(struct rpc_client *c, uint64_t deadline_ms) {
	uint64_t deadline = uv_hrtime() + deadline_ms * 1000000ull;

	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLRDHUP };

		assert_true(uv_hrtime() < deadline);
		(void)uv_run(c->loop, UV_RUN_ONCE);
		if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP))) {
			return;
		}
	}
}

void rpc_test_dir(const char *prefix, char *dir, size_t dir_size, char *path, size_t path_size) {
	snprintf(dir, dir_size, "/tmp/%s-XXXXXX", prefix);
	assert_non_null(mkdtemp(dir));
	snprintf(path, path_size, "%s/run/socket", dir);
}

void rpc_test_finish(uv_loop_t *loop, const char *dir, const char *path) {
	char run[256];
	struct stat st;

	assert_int_not_equal(stat(path, &st), 0); /* unlinked */
	assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(loop), 0);
	snprintf(run, sizeof(run), "%s/run", dir);
	assert_int_equal(stat(run, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(rmdir(run), 0);
	assert_int_equal(rmdir(dir), 0);
}
