/*
 * Unit tests of daemon/rpcsrv.c on its own: a real Unix socket on a real loop, with a stub
 * dispatcher in place of the method table. They cover the socket layer's contract: framing,
 * refusals, the connection, in-flight and output-queue limits, the closed handler, shutdown
 * flushing, the socket file and peer credentials.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "frame.h"
#include "json.h"
#include "rpc-client.h"
#include "rpc.h"
#include "rpcsrv.h"
#include "sockfile.h"
#include "tr-limits.h"

#define MAX_HELD 64

/* ---- the stub dispatcher ----
 * "echo" answers its params; "hold" keeps the call open until the test ends it; "owner"
 * records the connection (for tr_rpcsrv_send) and answers {}; anything else is not found. */

struct env {
	uv_loop_t loop;
	struct tr_rpcsrv_options opts;
	struct tr_rpcsrv *srv;
	char dir[64];
	char path[128];
	bool closed;
	struct tr_call *held[MAX_HELD];
	size_t n_held;
	void *owner;
	unsigned closed_owners; /* closed handler calls for the recorded owner */
	unsigned dispatched;
};

static void stub_dispatch(void *userdata, struct tr_call *call, const char *method,
	const struct tr_json *params) {
	struct env *e = userdata;

	e->dispatched++;
	if (strcmp(method, "echo") == 0) {
		tr_call_result(call, params ? tr_json_dup(params) : tr_json_new_object());
	} else if (strcmp(method, "hold") == 0) {
		assert_true(e->n_held < MAX_HELD);
		e->held[e->n_held++] = call;
	} else if (strcmp(method, "owner") == 0) {
		e->owner = tr_call_owner(call);
		tr_call_result(call, tr_json_new_object());
	} else {
		tr_call_error(call, TR_RPC_METHOD_NOT_FOUND, "method not found", NULL);
	}
}

static void stub_closed(void *userdata, void *owner) {
	struct env *e = userdata;

	if (owner == e->owner) {
		e->closed_owners++;
		e->owner = NULL;
	}
}

static int start_server(struct env *e) {
	const struct tr_rpcsrv_handlers h = {
		.dispatch = stub_dispatch,
		.closed = stub_closed,
		.userdata = e,
	};

	return tr_rpcsrv_new(&e->loop, &e->opts, &h, &e->srv);
}

static void on_closed(void *userdata) {
	struct env *e = userdata;

	e->closed = true;
}

static void stop_server(struct env *e) {
	e->closed = false;
	tr_rpcsrv_close(e->srv, on_closed, e);
	while (!e->closed) {
		assert_true(uv_run(&e->loop, UV_RUN_ONCE) >= 0);
	}
	e->srv = tr_rpcsrv_free(e->srv);
}

static int env_setup(void **state) {
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	rpc_test_dir("tr-rpcsrv", e->dir, sizeof(e->dir), e->path, sizeof(e->path));
	assert_int_equal(uv_loop_init(&e->loop), 0);
	e->opts = (struct tr_rpcsrv_options){
		.socket_path = e->path,
		.listen_fd = -1,
		.max_connections = 3,
	};
	assert_int_equal(start_server(e), 0);
	*state = e;
	return 0;
}

static int env_teardown(void **state) {
	struct env *e = *state;

	/* calls still held end now: their replies are dropped by closed connections */
	for (size_t i = 0; i < e->n_held; i++) {
		tr_call_error(e->held[i], TR_RPC_INTERNAL_ERROR, "test over", NULL);
	}
	stop_server(e);
	rpc_test_finish(&e->loop, e->dir, e->path);
	free(e);
	return 0;
}

static struct rpc_client *client(struct env *e) {
	return rpc_client_new(&e->loop, e->path);
}

static struct tr_rpcsrv_stats stats(struct env *e) {
	struct tr_rpcsrv_stats s;

	tr_rpcsrv_get_stats(e->srv, &s);
	return s;
}

/* ---- tests ---- */

static void test_basics(void **state) {
	struct env *e = *state;
	struct rpc_client *c = client(e);
	struct tr_json *m;
	struct stat st;

	assert_int_equal(stat(e->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"a\":[1]}}");
	assert_int_equal(tr_json_get(m, "id")->u.num.i, 1);
	assert_int_equal(tr_json_get(tr_json_get(m, "result"), "a")->u.arr.n, 1);
	tr_json_free(m);
	/* params of any type reach the dispatcher as they are */
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"echo\",\"params\":[2]}");
	assert_string_equal(tr_json_get_string(m, "id"), "x");
	assert_int_equal(tr_json_get(m, "result")->type, TR_JSON_ARRAY);
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"}");
	assert_int_equal(rpc_err_code(m), TR_RPC_METHOD_NOT_FOUND);
	tr_json_free(m);
	/* not JSON-RPC: refused by the server, never dispatched, counted */
	e->dispatched = 0;
	m = rpc_client_call(c, "{not json");
	assert_int_equal(rpc_err_code(m), TR_RPC_PARSE_ERROR);
	tr_json_free(m);
	m = rpc_client_call(c, "{\"jsonrpc\":\"1.0\",\"id\":3,\"method\":\"echo\"}");
	assert_int_equal(rpc_err_code(m), TR_RPC_INVALID_REQUEST);
	tr_json_free(m);
	assert_int_equal(e->dispatched, 0);
	assert_int_equal(stats(e).parse_errors, 2);
	/* a notification gets no reply: the next reply is for id 4 */
	rpc_client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\"}");
	m = rpc_client_call(c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"echo\"}");
	assert_int_equal(tr_json_get(m, "id")->u.num.i, 4);
	tr_json_free(m);
	assert_int_equal(stats(e).connections, 1);
	rpc_client_free(c);
}

static void test_connection_limit_and_framing(void **state) {
	struct env *e = *state;
	struct rpc_client *c[4];
	struct tr_json *m;
	const uint8_t big[4] = { 0x7f, 0xff, 0xff, 0xff };

	for (int i = 0; i < 4; i++) {
		c[i] = client(e);
	}
	for (int i = 0; i < 3; i++) {
		m = rpc_client_call(c[i], "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}");
		assert_non_null(tr_json_get(m, "result"));
		tr_json_free(m);
	}
	/* the fourth: an error with the limit, then closed */
	m = rpc_client_recv(c[3]);
	assert_int_equal(rpc_err_code(m), TR_RPC_OVERLOADED);
	assert_int_equal(tr_json_get(tr_json_get(tr_json_get(m, "error"), "data"), "limit")->u.num.i,
		3);
	tr_json_free(m);
	assert_null(rpc_client_recv(c[3]));
	rpc_client_free(c[3]);
	assert_int_equal(stats(e).refused_limit, 1);
	assert_int_equal(stats(e).connections, 3);

	/* a frame over the size limit: best-effort error, then close */
	rpc_client_send_raw(c[0], big, 4);
	m = rpc_client_recv(c[0]);
	assert_int_equal(rpc_err_code(m), TR_RPC_INVALID_REQUEST);
	tr_json_free(m);
	assert_null(rpc_client_recv(c[0]));
	rpc_client_free(c[0]);
	assert_int_equal(stats(e).frame_errors, 1);
	/* a slot is free again */
	c[0] = client(e);
	m = rpc_client_call(c[0], "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}");
	assert_non_null(tr_json_get(m, "result"));
	tr_json_free(m);
	for (int i = 0; i < 3; i++) {
		rpc_client_free(c[i]);
	}
}

/* A framing error right behind a reply that nearly fills a batch (64 KiB): the error frame
 * fills it, the batch is written at once (uv_try_write, nothing left queued), and the
 * connection is still closed, without waiting for the idle timeout (15 s). Request and bad
 * header arrive in one read. */
static void test_fail_after_full_batch(void **state) {
	static const char head[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[\"";
	static const char tail[] = "\"]}";
	static const uint8_t big[4] = {0x7f, 0xff, 0xff, 0xff};
	struct env *e = *state;
	struct rpc_client *c = client(e);
	const size_t total = 64 * 1024, payload = total - sizeof(big) - TR_FRAME_HEADER_SIZE;
	uint8_t *buf = malloc(total);
	const struct tr_json *r;
	struct tr_json *m;
	size_t fill = payload - (sizeof(head) - 1) - (sizeof(tail) - 1);

	assert_non_null(buf);
	tr_frame_put_header(buf, (uint32_t)payload);
	memcpy(buf + TR_FRAME_HEADER_SIZE, head, sizeof(head) - 1);
	memset(buf + TR_FRAME_HEADER_SIZE + sizeof(head) - 1, 'x', fill);
	memcpy(buf + TR_FRAME_HEADER_SIZE + sizeof(head) - 1 + fill, tail, sizeof(tail) - 1);
	memcpy(buf + total - sizeof(big), big, sizeof(big));
	rpc_client_send_raw(c, buf, total);
	free(buf);
	m = rpc_client_recv(c);
	r = tr_json_get(m, "result");
	assert_non_null(r);
	assert_int_equal(strlen(r->u.arr.items[0]->u.str.s), fill);
	tr_json_free(m);
	m = rpc_client_recv(c);
	assert_int_equal(rpc_err_code(m), TR_RPC_INVALID_REQUEST);
	tr_json_free(m);
	rpc_client_wait_hangup(c, 5000);
	assert_int_equal(stats(e).frame_errors, 1);
	rpc_client_free(c);
}

/* At TR_RPC_MAX_INFLIGHT calls open, reading pauses; it resumes as calls end, in order. */
static void test_inflight_limit(void **state) {
	struct env *e = *state;
	struct rpc_client *c = client(e), *o = client(e);
	struct tr_json *m;
	size_t ended = 0;

	for (int i = 0; i < TR_RPC_MAX_INFLIGHT + 2; i++) {
		char buf[80];

		snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"hold\"}", i);
		rpc_client_send(c, buf);
	}
	/* another client's call goes through meanwhile; by then c's frames were read */
	while (e->n_held < TR_RPC_MAX_INFLIGHT) {
		m = rpc_client_call(o, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}");
		tr_json_free(m);
	}
	for (int i = 0; i < 20; i++) {
		(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	}
	assert_int_equal(e->n_held, TR_RPC_MAX_INFLIGHT);
	assert_true(stats(e).inflight_pauses >= 1);
	tr_call_result(e->held[ended++], tr_json_new_int(0));
	assert_int_equal(e->n_held, TR_RPC_MAX_INFLIGHT + 1); /* the stashed frame went in */
	tr_call_result(e->held[ended++], tr_json_new_int(1));
	assert_int_equal(e->n_held, TR_RPC_MAX_INFLIGHT + 2);
	while (ended < e->n_held) {
		tr_call_result(e->held[ended], tr_json_new_int((int64_t)ended));
		ended++;
	}
	e->n_held = 0;
	for (int i = 0; i < TR_RPC_MAX_INFLIGHT + 2; i++) {
		m = rpc_client_recv(c);
		assert_int_equal(tr_json_get(m, "id")->u.num.i, i);
		assert_int_equal(tr_json_get(m, "result")->u.num.i, i);
		tr_json_free(m);
	}
	rpc_client_free(c);
	rpc_client_free(o);
}

/* A framed event of about 64 KiB, to fill an output queue fast. */
static void send_blob(void *owner, int expect) {
	static char blob[64 * 1024 + 32];
	char *buf = NULL;
	size_t len = 0;
	struct tr_json *j;

	memset(blob, 'x', sizeof(blob) - 1);
	blob[sizeof(blob) - 1] = '\0';
	j = tr_json_new_object();
	assert_non_null(j);
	assert_int_equal(tr_json_object_set(j, "blob", tr_json_new_string(blob)), 0);
	assert_int_equal(tr_rpc_build_notification_framed("event", j, 0, &buf, &len), 0);
	tr_json_free(j);
	if (expect == 0) {
		assert_int_equal(tr_rpcsrv_send(owner, buf, len, NULL), 0);
	} else {
		(void)tr_rpcsrv_send(owner, buf, len, NULL);
	}
}

/* A client that never reads is cut at the hard limit, counted, and its owner reported
 * closed; the others carry on. */
static void test_output_hard_limit(void **state) {
	struct env *e = *state;
	struct rpc_client *s = client(e), *o = client(e);
	struct tr_json *m;
	int frames = 0;

	m = rpc_client_call(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"owner\"}");
	tr_json_free(m);
	assert_non_null(e->owner);
	for (int i = 0; i < 200 && e->closed_owners == 0; i++) {
		send_blob(e->owner, -1);
		(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	}
	while (e->closed_owners == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	assert_int_equal(stats(e).slow, 1);
	assert_int_equal(stats(e).connections, 1);
	m = rpc_client_call(o, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}");
	assert_non_null(tr_json_get(m, "result"));
	tr_json_free(m);
	frames = rpc_client_drain(s);
	assert_true(frames > 0 && frames < 200);
	rpc_client_free(s);
	rpc_client_free(o);
}

/* Over TR_OUTQ_SOFT_LIMIT (under the hard one), a client is kept TR_OUTQ_SOFT_SECONDS, then
 * disconnected and counted. */
static void test_output_soft_limit(void **state) {
	struct env *e = *state;
	struct rpc_client *s = client(e);
	struct tr_json *m;
	uint64_t t0;

	m = rpc_client_call(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"owner\"}");
	tr_json_free(m);
	/* 40 x 64 KiB: over the 1 MiB soft limit once the socket buffers are full, well under
	 * the 8 MiB hard one */
	for (int i = 0; i < 40; i++) {
		send_blob(e->owner, 0);
		(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	}
	t0 = uv_hrtime();
	assert_int_equal(stats(e).slow, 0);
	assert_int_equal(stats(e).connections, 1);
	rpc_client_wait_hangup(s, (TR_OUTQ_SOFT_SECONDS + 5) * 1000u);
	/* tolerated for the whole soft period first (a lower bound only: not a timing test) */
	assert_true(uv_hrtime() - t0 >= (uint64_t)(TR_OUTQ_SOFT_SECONDS - 1) * 1000000000ull);
	(void)uv_run(&e->loop, UV_RUN_NOWAIT); /* the close callback */
	assert_int_equal(stats(e).slow, 1);
	assert_int_equal(e->closed_owners, 1);
	rpc_client_free(s);
}

/* Shutdown drains queued output (bounded) before closing. */
static void test_close_flushes(void **state) {
	struct env *e = *state;
	struct rpc_client *s = client(e);
	struct tr_json *m;
	int frames = 0;

	m = rpc_client_call(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"owner\"}");
	tr_json_free(m);
	for (int i = 0; i < 20; i++) {
		send_blob(e->owner, 0);
	}
	e->closed = false;
	tr_rpcsrv_close(e->srv, on_closed, e);
	frames = rpc_client_drain(s);
	assert_int_equal(frames, 20);
	while (!e->closed) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	e->srv = tr_rpcsrv_free(e->srv);
	assert_int_equal(start_server(e), 0); /* for the teardown */
	rpc_client_free(s);
}

static void test_live_and_stale_socket(void **state) {
	struct env *e = *state;
	struct tr_rpcsrv_options o2 = e->opts;
	const struct tr_rpcsrv_handlers h = { .dispatch = stub_dispatch, .userdata = e };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct tr_rpcsrv *s2 = NULL, *s3 = NULL;
	char path2[160], path3[160];
	int fd;

	assert_int_equal(tr_rpcsrv_new(&e->loop, &o2, &h, &s2), -EADDRINUSE);
	/* a stale socket (bound, nobody listening) is replaced */
	snprintf(path2, sizeof(path2), "%s/run/stale", e->dir);
	strcpy(sa.sun_path, path2);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	o2.socket_path = path2;
	assert_int_equal(tr_rpcsrv_new(&e->loop, &o2, &h, &s2), 0);
	/* a regular file in the way is not removed */
	snprintf(path3, sizeof(path3), "%s/run/file", e->dir);
	fd = open(path3, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	o2.socket_path = path3;
	assert_int_equal(tr_rpcsrv_new(&e->loop, &o2, &h, &s3), -EEXIST);
	assert_null(s3);
	assert_int_equal(access(path3, F_OK), 0);
	unlink(path3);
	/* a live server that is stuck (never accepts, backlog full) is found alive at once,
	 * not by a connect() that waits for it */
	{
		char path4[160];
		int lfd, cl[16], n = 0;
		struct sockaddr_un sb = { .sun_family = AF_UNIX };

		snprintf(path4, sizeof(path4), "%s/run/stuck", e->dir);
		strcpy(sb.sun_path, path4);
		lfd = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_int_equal(bind(lfd, (struct sockaddr *)&sb, sizeof(sb)), 0);
		assert_int_equal(listen(lfd, 0), 0);
		for (; n < 16; n++) {
			cl[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
			if (connect(cl[n], (struct sockaddr *)&sb, sizeof(sb)) < 0) {
				assert_int_equal(errno, EAGAIN);
				n++;
				break;
			}
		}
		assert_true(n < 16); /* the backlog is full */
		o2.socket_path = path4;
		assert_int_equal(tr_rpcsrv_new(&e->loop, &o2, &h, &s3), -EADDRINUSE);
		for (int i = 0; i < n; i++) {
			close(cl[i]);
		}
		close(lfd);
		unlink(path4);
	}
	/* no path and no activated socket */
	o2.socket_path = NULL;
	assert_int_equal(tr_rpcsrv_new(&e->loop, &o2, &h, &s3), -EINVAL);
	e->closed = false;
	tr_rpcsrv_close(s2, on_closed, e);
	while (!e->closed) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	tr_rpcsrv_free(s2);
	assert_int_not_equal(access(path2, F_OK), 0);
}

/* ---- peer credentials: a child running as nobody ---- */

/* The child connects as uid/gid 65534, sends a request and reports: 0 the server closed the
 * connection without a reply, 2 it answered, 3 nothing within 20 s, 1 setup. */
static int nobody_child(const char *path) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}";
	unsigned char hdr[4] = { 0, 0, 0, sizeof(req) - 1 };
	struct pollfd pfd;
	char buf[256];
	int fd;

	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0) {
		return 1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		return 1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		return 1;
	}
	/* the server may already have closed it: no SIGPIPE */
	(void)send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL);
	(void)send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, 20000) <= 0) {
		return 3;
	}
	return read(fd, buf, sizeof(buf)) > 0 ? 2 : 0;
}

static int run_child(struct env *e, int n);

static int run_nobody(struct env *e) {
	return run_child(e, 0);
}

/* Restart the server with other options (the socket file is recreated). */
static void restart(struct env *e) {
	stop_server(e);
	assert_int_equal(start_server(e), 0);
	assert_int_equal(chmod(e->path, 0666), 0);
}

/* As uid/gid 65534: open n connections, keep them all, send an echo on each and report
 * which got an answer: bit i set when connection i was refused with -32008 (scope user).
 * 255 on a setup failure. */
static int nobody_conns(const char *path, int n) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}";
	unsigned char hdr[4] = { 0, 0, 0, sizeof(req) - 1 };
	int fds[8], refused = 0;

	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0 || n > 8) {
		return 255;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (int i = 0; i < n; i++) {
		struct pollfd pfd;
		char buf[512];
		ssize_t k;

		fds[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			return 255;
		}
		(void)send(fds[i], hdr, sizeof(hdr), MSG_NOSIGNAL);
		(void)send(fds[i], req, sizeof(req) - 1, MSG_NOSIGNAL);
		pfd = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (poll(&pfd, 1, 20000) <= 0) {
			return 255;
		}
		k = read(fds[i], buf, sizeof(buf) - 1);
		if (k <= 4) {
			return 255;
		}
		buf[k] = '\0';
		if (strstr(buf + 4, "-32008") && strstr(buf + 4, "\"user\"")) {
			refused |= 1 << i;
		}
	}
	return refused;
}

static int either_child(const char *path, int n) {
	return n > 0 ? nobody_conns(path, n) : nobody_child(path);
}

static int run_child(struct env *e, int n) {
	return rpc_test_fork(&e->loop, either_child, e->path, n);
}

static void test_peer_credentials(void **state) {
	struct env *e = *state;
	char run[160];

	if (getuid() != 0) {
		skip();
	}
	snprintf(run, sizeof(run), "%s/run", e->dir);
	assert_int_equal(chmod(e->dir, 0711), 0);
	assert_int_equal(chmod(run, 0711), 0);
	assert_int_equal(chmod(e->path, 0666), 0);
	/* not our uid, not root, no allowed group: closed without a reply */
	assert_int_equal(run_nobody(e), 0);
	assert_int_equal(stats(e).refused_cred, 1);
	/* its group allowed: served, through the modes the server sets itself (socket 0660 and
	 * a new directory 0710, both of the group), not the test's chmods */
	e->opts.allow_group = 65534;
	e->opts.allow_group_set = true;
	stop_server(e);
	assert_int_equal(rmdir(run), 0);
	assert_int_equal(start_server(e), 0);
	{
		struct stat st;
		assert_int_equal(stat(run, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0710);
		assert_int_equal(st.st_gid, 65534);
		assert_int_equal(stat(e->path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0660);
		assert_int_equal(st.st_gid, 65534);
	}
	assert_int_equal(run_nobody(e), 2);
	/* another group: refused again */
	e->opts.allow_group = 65533;
	restart(e);
	assert_int_equal(run_nobody(e), 0);
	assert_int_equal(stats(e).refused_cred, 1);
	assert_int_equal(chmod(run, 0700), 0);
	assert_int_equal(chmod(e->dir, 0700), 0);
}

/* Another user (an allowed group's member) gets a share of the slots and cannot lock the
 * owner out; refusals are -32008 with scope "user", counted. */
static void test_user_quota(void **state) {
	struct env *e = *state;
	struct rpc_client *mine[8];
	struct tr_json *m;
	char run[160];

	if (getuid() != 0) {
		skip();
	}
	snprintf(run, sizeof(run), "%s/run", e->dir);
	assert_int_equal(chmod(e->dir, 0711), 0);
	stop_server(e);
	assert_int_equal(rmdir(run), 0);
	e->opts.allow_group = 65534;
	e->opts.allow_group_set = true;
	e->opts.max_connections = 8; /* another uid: 2 at most; the owner keeps 1 */
	assert_int_equal(start_server(e), 0);
	/* the third connection of the same user is refused, the first two served */
	assert_int_equal(run_child(e, 3), 1 << 2);
	assert_int_equal(stats(e).refused_quota, 1);
	/* the owner may fill every slot */
	for (int i = 0; i < 8; i++) {
		mine[i] = client(e);
		m = rpc_client_call(mine[i], "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}");
		assert_non_null(tr_json_get(m, "result"));
		tr_json_free(m);
	}
	assert_int_equal(stats(e).connections, 8);
	/* and then the other user gets nothing, with the daemon-wide limit */
	assert_int_equal(run_child(e, 1), 0);
	assert_int_equal(stats(e).refused_limit, 1);
	for (int i = 0; i < 8; i++) {
		rpc_client_free(mine[i]);
	}
	stop_server(e);
	assert_int_equal(chmod(run, 0700), 0);
	assert_int_equal(chmod(e->dir, 0700), 0);
	e->opts.allow_group_set = false;
	assert_int_equal(start_server(e), 0);
}

/* The quota arithmetic itself, for several users and sizes. */
static void test_quota_rules(void **state) {
	struct tr_peer_users u = { 0 };
	struct tr_peer_user *owner = tr_peer_users_get(&u, getuid());
	struct tr_peer_user *a = tr_peer_users_get(&u, 60001), *b = tr_peer_users_get(&u, 60002);
	size_t limit = 0;

	(void)state;
	assert_non_null(owner);
	assert_ptr_equal(tr_peer_users_get(&u, 60001), a);
	/* 1024 slots: another uid holds up to 256; others together up to 896 */
	a->conns = 255;
	assert_null(tr_peer_users_over_quota(&u, 60001, a, 255, 1024, &limit));
	a->conns = 256;
	assert_non_null(tr_peer_users_over_quota(&u, 60001, a, 256, 1024, &limit));
	assert_int_equal(limit, 256);
	a->conns = 200;
	b->conns = 200;
	{
		struct tr_peer_user *c = tr_peer_users_get(&u, 60003), *d = tr_peer_users_get(&u, 60004);
		c->conns = 248;
		d->conns = 248;
		assert_non_null(tr_peer_users_over_quota(&u, 60004, d, 896, 1024, &limit));
		assert_int_equal(limit, 896);
		/* the owner still gets in, up to the last slot, with an entry or without */
		assert_null(tr_peer_users_over_quota(&u, getuid(), owner, 1023, 1024, &limit));
		assert_null(tr_peer_users_over_quota(&u, getuid(), NULL, 1023, 1024, &limit));
		assert_non_null(tr_peer_users_over_quota(&u, getuid(), owner, 1024, 1024, &limit));
		assert_int_equal(limit, 1024);
	}
	/* a refused uid is logged once */
	assert_true(tr_peer_users_first_refusal(&u, 60009));
	assert_false(tr_peer_users_first_refusal(&u, 60009));
	/* a full table: uids without connections are reused; when every entry holds a
	 * connection, others are refused (the owner is not), and that is logged once */
	for (uid_t id = 61000; u.n < TR_PEER_USERS_MAX; id++) {
		tr_peer_users_get(&u, id)->conns = 1;
	}
	assert_non_null(tr_peer_users_get(&u, 70000)); /* took an entry without connections */
	for (size_t i = 0; i < u.n; i++) {
		u.v[i].conns = u.v[i].conns ? u.v[i].conns : 1;
	}
	assert_null(tr_peer_users_get(&u, 70001));
	assert_non_null(tr_peer_users_over_quota(&u, 70001, NULL, 10, 1024, &limit));
	assert_null(tr_peer_users_over_quota(&u, 0, NULL, 10, 1024, &limit));
	assert_true(tr_peer_users_first_refusal(&u, 70001));
	assert_false(tr_peer_users_first_refusal(&u, 70002));
	tr_peer_users_done(&u);
}

/* A socket path too long for sun_path is refused, not truncated; a directory others may
 * write to, or that another user owns, is refused. */
static void test_socket_path_rules(void **state) {
	struct env *e = *state;
	struct tr_rpcsrv_options o = e->opts;
	const struct tr_rpcsrv_handlers h = { .dispatch = stub_dispatch, .userdata = e };
	struct tr_rpcsrv *s2 = NULL;
	char longp[300], d[200], p[240];

	memset(longp, 0, sizeof(longp));
	snprintf(longp, sizeof(longp), "%s/", e->dir);
	memset(longp + strlen(longp), 'x', 120);
	o.socket_path = longp;
	assert_int_equal(tr_rpcsrv_new(&e->loop, &o, &h, &s2), -ENAMETOOLONG);
	assert_null(s2);
	/* nothing was created one directory up */
	snprintf(d, sizeof(d), "%s/open", e->dir);
	assert_int_equal(mkdir(d, 0700), 0);
	assert_int_equal(chmod(d, 0777), 0);
	snprintf(p, sizeof(p), "%s/socket", d);
	o.socket_path = p;
	assert_int_equal(tr_rpcsrv_new(&e->loop, &o, &h, &s2), -EPERM);
	assert_int_not_equal(access(p, F_OK), 0);
	assert_int_equal(chmod(d, 01777), 0); /* sticky does not help: others may still create */
	assert_int_equal(tr_rpcsrv_new(&e->loop, &o, &h, &s2), -EPERM);
	if (getuid() == 0) {
		assert_int_equal(chmod(d, 0700), 0);
		assert_int_equal(chown(d, 65534, 65534), 0);
		assert_int_equal(tr_rpcsrv_new(&e->loop, &o, &h, &s2), -EPERM);
	}
	assert_int_equal(rmdir(d), 0);
}

/* A client that starts a frame and goes quiet is dropped after the idle timeout, counted;
 * a whole frame sent slowly is not. */
static void test_idle_mid_frame(void **state) {
	struct env *e = *state;
	struct rpc_client *c, *ok;
	struct tr_json *m;
	const uint8_t hdr[4] = { 0, 0, 0x10, 0 }; /* 4096 bytes declared */

	stop_server(e);
	e->opts.frame_idle_ms = 300;
	assert_int_equal(start_server(e), 0);
	c = client(e);
	ok = client(e);
	rpc_client_send_raw(c, hdr, 4);
	rpc_client_send_raw(c, "{\"jsonrpc\"", 11);
	rpc_client_wait_hangup(c, 10000);
	(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_int_equal(stats(e).idle_timeouts, 1);
	/* an idle client between frames is not touched */
	m = rpc_client_call(ok, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}");
	assert_non_null(tr_json_get(m, "result"));
	tr_json_free(m);
	rpc_client_free(c);
	rpc_client_free(ok);
}

/* The same when the partial frame was read while the connection was paused at the in-flight
 * limit: it is fed back when the calls end, and the idle check still covers it. */
static void test_idle_after_pause(void **state) {
	struct env *e = *state;
	struct rpc_client *c;
	char *buf = malloc(64 * 1024), *p;
	const uint8_t part[4 + 5] = { 0, 0, 0x10, 0, '{', '"', 'j', 's', 'o' };

	assert_non_null(buf);
	stop_server(e);
	e->opts.frame_idle_ms = 300;
	assert_int_equal(start_server(e), 0);
	c = client(e);
	/* one write: TR_RPC_MAX_INFLIGHT calls, then the start of one more frame */
	p = buf;
	for (int i = 0; i < TR_RPC_MAX_INFLIGHT; i++) {
		char req[80];
		int n = snprintf(req, sizeof(req), "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"hold\"}", i);

		tr_frame_put_header((uint8_t *)p, (uint32_t)n);
		memcpy(p + 4, req, (size_t)n);
		p += 4 + n;
	}
	memcpy(p, part, sizeof(part));
	p += sizeof(part);
	rpc_client_send_raw(c, buf, (size_t)(p - buf));
	free(buf);
	while (e->n_held < TR_RPC_MAX_INFLIGHT) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	for (size_t i = 0; i < e->n_held; i++) {
		tr_call_result(e->held[i], tr_json_new_int(0));
	}
	e->n_held = 0;
	rpc_client_wait_hangup(c, 20000);
	(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_int_equal(stats(e).idle_timeouts, 1);
	rpc_client_free(c);
}

/* Shutdown waits for calls in flight: the answer arrives, then the connection closes. */
static void test_close_answers_calls(void **state) {
	struct env *e = *state;
	struct rpc_client *c = client(e), *idle = client(e);
	struct tr_json *m;

	rpc_client_send(c, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"hold\"}");
	while (e->n_held == 0) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	e->closed = false;
	tr_rpcsrv_close(e->srv, on_closed, e);
	/* an idle connection closes at once */
	rpc_client_wait_hangup(idle, 20000);
	/* the held call is answered later (the upstream replied): it still reaches the client */
	for (int i = 0; i < 5; i++) {
		(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	}
	assert_false(e->closed);
	tr_call_result(e->held[0], tr_json_new_int(42));
	e->n_held = 0;
	m = rpc_client_recv(c);
	assert_non_null(m);
	assert_int_equal(tr_json_get(m, "id")->u.num.i, 7);
	assert_int_equal(tr_json_get(m, "result")->u.num.i, 42);
	tr_json_free(m);
	assert_null(rpc_client_recv(c));
	while (!e->closed) {
		(void)uv_run(&e->loop, UV_RUN_ONCE);
	}
	e->srv = tr_rpcsrv_free(e->srv);
	assert_int_equal(start_server(e), 0); /* for the teardown */
	rpc_client_free(c);
	rpc_client_free(idle);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_basics, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_connection_limit_and_framing, env_setup,
			env_teardown),
		cmocka_unit_test_setup_teardown(test_fail_after_full_batch, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_inflight_limit, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_output_hard_limit, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_output_soft_limit, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_close_flushes, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_live_and_stale_socket, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_peer_credentials, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_user_quota, env_setup, env_teardown),
		cmocka_unit_test(test_quota_rules),
		cmocka_unit_test_setup_teardown(test_socket_path_rules, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_idle_mid_frame, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_idle_after_pause, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_close_answers_calls, env_setup, env_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
