/* Unit tests of daemon/token.c: JWT decode, token files, the token command, the file watch. */
#include <errno.h>
#include <sys/stat.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "token.h"

static char dir[64];

static char *b64url(const char *s) {
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t n = strlen(s), o = 0;
	char *out = malloc(n * 4 / 3 + 4);
	uint32_t acc = 0;
	int bits = 0;
	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | (unsigned char)s[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = a[(acc >> bits) & 63];
		}
	}
	if (bits > 0) {
		out[o++] = a[(acc << (6 - bits)) & 63];
	}
	out[o] = '\0';
	return out;
}

/* A JWT with the given payload JSON (header and signature are fixed). */
static char *jwt(const char *payload) {
	char *h = b64url("{\"typ\":\"JWT\",\"alg\":\"HS256\"}"), *p = b64url(payload), *t;
	assert_true(asprintf(&t, "%s.%s.c2lnbmF0dXJl", h, p) > 0);
	free(h);
	free(p);
	return t;
}

static int setup(void **state) {
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tr-token-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_decode_good(void **state) {
	struct tr_jwt j;
	char *t = jwt("{\"jti\":\"SK1-1\",\"iat\":1735819200,\"exp\":1735822800,\"grants\":{"
		      "\"identity\":\"alice\",\"task_router\":{\"workspace_sid\":\"WS0acbd5dc35263341780"
		      "bd09152200e87\",\"worker_sid\":\"WKe26e96b8336b262c51a660cfb175a96b\",\"role\":"
		      "\"worker\"}}}");
	(void)state;
	assert_int_equal(tr_jwt_decode(t, &j), 0);
	assert_int_equal(j.exp, 1735822800);
	assert_int_equal(j.iat, 1735819200);
	assert_string_equal(j.workspace_sid, "WS0acbd5dc35263341780bd09152200e87");
	assert_string_equal(j.worker_sid, "WKe26e96b8336b262c51a660cfb175a96b");
	/* valid now that it is before exp; expired after */
	assert_int_equal(tr_token_validate(t, 1735819300, &j), 0);
	assert_int_equal(tr_token_validate(t, 1735822800, &j), -EKEYEXPIRED);
	assert_int_equal(tr_token_validate(t, 1900000000, &j), -EKEYEXPIRED);
	free(t);
	/* no grant: sids empty */
	t = jwt("{\"exp\":2000000000}");
	assert_int_equal(tr_jwt_decode(t, &j), 0);
	assert_string_equal(j.worker_sid, "");
	assert_int_equal(j.iat, 0);
	free(t);
}

static void test_decode_bad(void **state) {
	struct tr_jwt j = {.exp = 42};
	char *t;
	static const char *const bad[] = {"", "abc", "a.b", "a.b.c.d", ".x.y", "a..c", "a.!!!.c",
		"a.A.c", /* one dangling base64 character */
		NULL};
	(void)state;
	for (size_t i = 0; bad[i]; i++) {
		if (tr_jwt_decode(bad[i], &j) != -EINVAL) {
			fail_msg("accepted %s", bad[i]);
		}
	}
	assert_int_equal(tr_jwt_decode(NULL, &j), -EINVAL);
	/* payload not JSON, not an object */
	t = jwt("not json");
	assert_int_equal(tr_jwt_decode(t, &j), -EINVAL);
	free(t);
	t = jwt("[1,2]");
	assert_int_equal(tr_jwt_decode(t, &j), -EINVAL);
	free(t);
	/* no exp, exp of the wrong type */
	t = jwt("{\"iat\":1}");
	assert_int_equal(tr_jwt_decode(t, &j), -ENOMSG);
	assert_int_equal(tr_token_validate(t, 0, &j), -ENOMSG);
	free(t);
	t = jwt("{\"exp\":\"soon\"}");
	assert_int_equal(tr_jwt_decode(t, &j), -EINVAL);
	free(t);
	t = jwt("{\"exp\":1.5}");
	assert_int_equal(tr_jwt_decode(t, &j), -EINVAL);
	free(t);
	/* output untouched on failure */
	assert_int_equal(j.exp, 42);
	/* exp far in the future (or the past) is clamped, so ms arithmetic cannot overflow:
	 * INT64_MAX is a token that never expires, not one that already did */
	t = jwt("{\"exp\":9223372036854775807,\"iat\":-9223372036854775807}");
	assert_int_equal(tr_token_validate(t, 1700000000, &j), 0);
	assert_int_equal(j.exp, TR_TOKEN_TIME_MAX);
	assert_int_equal(j.iat, 0);
	free(t);
	t = jwt("{\"exp\":-9223372036854775807}");
	assert_int_equal(tr_token_validate(t, 1700000000, &j), -EKEYEXPIRED);
	free(t);
	/* a missing file and a token without exp are told apart */
	assert_string_not_equal(tr_token_strerror(-ENOENT), tr_token_strerror(-ENOMSG));
	assert_non_null(tr_token_strerror(-EKEYEXPIRED));
	assert_non_null(tr_token_strerror(-EBADF));
}

static void test_from_buffer(void **state) {
	char *t = NULL, *big;
	(void)state;
	assert_int_equal(tr_token_from_buffer("", 0, &t), -ENODATA);
	assert_int_equal(tr_token_from_buffer(" \n\t", 3, &t), -ENODATA);
	assert_int_equal(tr_token_from_buffer("a.b.c\n", 6, &t), 0);
	assert_string_equal(t, "a.b.c");
	t = tr_token_free(t);
	assert_null(t);
	assert_int_equal(tr_token_from_buffer("  a.b.c \r\n", 10, &t), 0);
	assert_string_equal(t, "a.b.c");
	t = tr_token_free(t);
	assert_int_equal(tr_token_from_buffer("a.b c", 5, &t), -EINVAL);
	assert_int_equal(tr_token_from_buffer("a.b\0c", 5, &t), -EINVAL);
	assert_int_equal(tr_token_from_buffer("a.\"b.c", 6, &t), -EINVAL);
	big = malloc(TR_TOKEN_MAX_SIZE + 2);
	assert_non_null(big);
	memset(big, 'a', TR_TOKEN_MAX_SIZE + 1);
	assert_int_equal(tr_token_from_buffer(big, TR_TOKEN_MAX_SIZE + 1, &t), -EFBIG);
	assert_int_equal(tr_token_from_buffer(big, TR_TOKEN_MAX_SIZE, &t), 0);
	assert_int_equal(strlen(t), TR_TOKEN_MAX_SIZE);
	t = tr_token_free(t);
	free(big);
}

static char *write_file(const char *name, const char *data, size_t len) {
	static char path[160];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

static void test_read_file(void **state) {
	char *t = NULL, *big, *p;
	size_t n = 4u * 1024u * 1024u;
	(void)state;
	p = write_file("empty", "", 0);
	assert_int_equal(tr_token_read_file(p, &t, NULL), -ENODATA);
	p = write_file("nl", "x.y.z\n", 6);
	assert_int_equal(tr_token_read_file(p, &t, NULL), 0);
	assert_string_equal(t, "x.y.z");
	t = tr_token_free(t);
	big = malloc(n);
	assert_non_null(big);
	memset(big, 'a', n);
	p = write_file("huge", big, n);
	assert_int_equal(tr_token_read_file(p, &t, NULL), -EFBIG);
	free(big);
	assert_int_equal(tr_token_read_file("/nonexistent/token", &t, NULL), -ENOENT);
	assert_int_equal(tr_token_read_file(dir, &t, NULL), -EISDIR);
	assert_null(t);
	/* a FIFO is refused at once: opening it must not wait for a writer (the test would
	 * hang here before the fix) */
	{
		char fifo[200];
		mode_t mode = 0;
		snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
		assert_int_equal(mkfifo(fifo, 0600), 0);
		assert_int_equal(tr_token_read_file(fifo, &t, NULL), -EBADFD);
		assert_null(t);
		assert_int_equal(unlink(fifo), 0);
		/* the permission bits come back, for the group/other warning */
		p = write_file("loose", "x.y.z", 5);
		assert_int_equal(chmod(p, 0644), 0);
		assert_int_equal(tr_token_read_file(p, &t, &mode), 0);
		assert_int_equal(mode, 0644);
		t = tr_token_free(t);
	}
}

/* ---- loop tests ---- */

struct cmd_result {
	int calls;
	int err;
	char *token;
};

static void on_cmd(void *userdata, int err, char *token) {
	struct cmd_result *r = userdata;
	r->calls++;
	r->err = err;
	r->token = token;
}

static void on_deadline(uv_timer_t *t) {
	(void)t;
	fail_msg("deadline hit");
}

static void run_cmd(const char *cmd, int timeout_ms, struct cmd_result *res, bool cancel) {
	uv_loop_t loop;
	uv_timer_t deadline;
	struct tr_token_cmd *c = NULL;

	*res = (struct cmd_result){0};
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(uv_timer_init(&loop, &deadline), 0);
	assert_int_equal(uv_timer_start(&deadline, on_deadline, 10000, 0), 0);
	uv_unref((uv_handle_t *)&deadline);
	assert_int_equal(tr_token_cmd_run(&loop, cmd, timeout_ms, on_cmd, res, &c), 0);
	if (cancel) {
		tr_token_cmd_cancel(c);
	}
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	uv_close((uv_handle_t *)&deadline, NULL);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(res->calls, 1);
}

static void test_cmd(void **state) {
	struct cmd_result r;
	(void)state;
	run_cmd("printf 'h.p.s\\n'", 5000, &r, false);
	assert_int_equal(r.err, 0);
	assert_string_equal(r.token, "h.p.s");
	r.token = tr_token_free(r.token);
	/* non-zero exit */
	run_cmd("echo h.p.s; exit 3", 5000, &r, false);
	assert_int_equal(r.err, -EIO);
	assert_null(r.token);
	/* killed by a signal */
	run_cmd("kill -9 $$", 5000, &r, false);
	assert_int_equal(r.err, -EIO);
	/* empty output */
	run_cmd("true", 5000, &r, false);
	assert_int_equal(r.err, -ENODATA);
	/* too much output */
	run_cmd("head -c 100000 /dev/zero | tr '\\0' a", 5000, &r, false);
	assert_int_equal(r.err, -EFBIG);
	/* hangs: killed at the deadline */
	run_cmd("exec sleep 30", 200, &r, false);
	assert_int_equal(r.err, -ETIMEDOUT);
	/* a child that closes stdout but keeps running is also bounded */
	run_cmd("exec >&-; exec sleep 30", 200, &r, false);
	assert_int_equal(r.err, -ETIMEDOUT);
	/* canceled */
	run_cmd("exec sleep 30", 5000, &r, true);
	assert_int_equal(r.err, -ECANCELED);
	/* not runnable by sh: exit 127 */
	run_cmd("/nonexistent/cmd", 5000, &r, false);
	assert_int_equal(r.err, -EIO);
}

struct watch_ctx {
	uv_loop_t *loop;
	int changes;
	struct tr_token_watch *w;
	uv_timer_t writer;
	char path[160];
	bool closed;
};

static void on_watch_closed(void *userdata) {
	struct watch_ctx *c = userdata;
	c->closed = true;
}

static void on_change(void *userdata) {
	struct watch_ctx *c = userdata;
	c->changes++;
	uv_close((uv_handle_t *)&c->writer, NULL);
	tr_token_watch_close(c->w, on_watch_closed, c);
}

static void on_write(uv_timer_t *t) {
	struct watch_ctx *c = t->data;
	char tmp[200];
	FILE *f;
	/* Replace by rename, as editors and credential tools do; twice, debounced to one call. */
	for (int i = 0; i < 2; i++) {
		snprintf(tmp, sizeof(tmp), "%s.tmp", c->path);
		f = fopen(tmp, "w");
		assert_non_null(f);
		fputs("n.e.w\n", f);
		fclose(f);
		assert_int_equal(rename(tmp, c->path), 0);
	}
}

static void test_watch(void **state) {
	uv_loop_t loop;
	uv_timer_t deadline;
	struct watch_ctx c = {0};
	(void)state;
	snprintf(c.path, sizeof(c.path), "%s/watched.token", dir);
	(void)write_file("watched.token", "o.l.d\n", 6);
	/* an unrelated file in the same directory does not count */
	assert_int_equal(uv_loop_init(&loop), 0);
	c.loop = &loop;
	assert_int_equal(uv_timer_init(&loop, &deadline), 0);
	assert_int_equal(uv_timer_start(&deadline, on_deadline, 10000, 0), 0);
	uv_unref((uv_handle_t *)&deadline);
	assert_int_equal(tr_token_watch_new(&loop, c.path, on_change, &c, &c.w), 0);
	(void)write_file("unrelated", "x", 1);
	assert_int_equal(uv_timer_init(&loop, &c.writer), 0);
	c.writer.data = &c;
	assert_int_equal(uv_timer_start(&c.writer, on_write, 50, 0), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(c.changes, 1);
	assert_true(c.closed);
	uv_close((uv_handle_t *)&deadline, NULL);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	/* a watch on a missing directory fails cleanly */
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_not_equal(tr_token_watch_new(&loop, "/nonexistent/dir/token", on_change, &c, &c.w), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_good),
		cmocka_unit_test(test_decode_bad),
		cmocka_unit_test(test_from_buffer),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_cmd),
		cmocka_unit_test(test_watch),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
