/* rpc-client.c — see rpc-client.h. A thin layer over the harness's connection (tests/lib):
 * what it adds is running the server's loop while it waits. */
#include "rpc-client.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "json.h"
#include "trtest.h"

struct rpc_client *rpc_client_new(uv_loop_t *loop, const char *path) {
	struct rpc_client *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->loop = loop;
	assert_int_equal(trt_connect(path, &c->conn), 0);
	return c;
}

void rpc_client_free(struct rpc_client *c) {
	trt_conn_free(c->conn);
	free(c);
}

void rpc_client_send_raw(struct rpc_client *c, const void *data, size_t len) {
	assert_int_equal(trt_send_raw(c->conn, data, len), 0);
}

void rpc_client_send(struct rpc_client *c, const char *json) {
	assert_int_equal(trt_send_frame(c->conn, json), 0);
}

struct tr_json *rpc_client_recv(struct rpc_client *c) {
	uint64_t deadline = uv_hrtime() + 20000000000ull; /* generous: a loaded machine */

	for (;;) {
		struct tr_json *j = NULL;
		int r;

		/* the server runs on this thread: let it work, then look for a frame */
		(void)uv_run(c->loop, UV_RUN_NOWAIT);
		r = trt_read_frame(c->conn, 5, &j);
		if (r == 0) {
			return j;
		}
		if (r == -ECONNRESET) {
			return NULL;
		}
		assert_int_equal(r, -ETIMEDOUT);
		assert_true(uv_hrtime() < deadline);
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
		/* poll only: what the client has not read must stay unread. The server's loop
		 * runs without blocking (it may have nothing left to do once it has closed);
		 * the poll waits for the hang-up, a little at a time. */
		struct pollfd p = { .fd = c->conn->sock.fd, .events = POLLRDHUP };

		assert_true(uv_hrtime() < deadline);
		(void)uv_run(c->loop, UV_RUN_NOWAIT);
		if (poll(&p, 1, 10) == 1 && (p.revents & (POLLRDHUP | POLLHUP))) {
			return;
		}
	}
}

static void on_tick(uv_timer_t *t) {
	(void)t;
}

int rpc_test_fork(uv_loop_t *loop, int (*child)(const char *path, int n), const char *path,
	int n) {
	uv_timer_t tick;
	uint64_t deadline;
	int status = -1;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		_exit(child(path, n));
	}
	/* the server must keep answering while the child runs: run the loop, with a tick so
	 * that each turn also checks on the child */
	assert_int_equal(uv_timer_init(loop, &tick), 0);
	assert_int_equal(uv_timer_start(&tick, on_tick, 5, 5), 0);
	uv_update_time(loop);
	deadline = uv_now(loop) + 30000;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		assert_true(uv_now(loop) < deadline);
		(void)uv_run(loop, UV_RUN_ONCE);
	}
	uv_close((uv_handle_t *)&tick, NULL);
	(void)uv_run(loop, UV_RUN_NOWAIT); /* tick lives on this stack: finish closing it */
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
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
