/*
 * test-client-glib.c — libtaskrouter-glib against the scripted fake server: a client
 * attached to a private GMainContext sends, gets answers, times out and learns of a dead
 * connection with nothing but the context's iterations. Waits are GLib iterations bounded
 * by a guard timeout, never sleeps.
 */
#include <errno.h>
#include <glib.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <taskrouter/client-glib.h>
#include <taskrouter/client.h>

#include "fakesrv.h"

struct outcome {
	int count;
	int errnum; /* of the last reply, 0 for a result */
	char result[64];
};

static void on_reply(struct tr_client *c, const char *result, const struct tr_client_error *err,
	void *userdata) {
	struct outcome *o = userdata;

	o->count++;
	o->errnum = err ? err->errnum : 0;
	snprintf(o->result, sizeof(o->result), "%s", result ? result : "");
}

static gboolean on_guard(gpointer p) {
	*(bool *)p = true;
	return G_SOURCE_REMOVE;
}

/* Iterate ctx until *counter reaches want, for at most 20 s. */
static void iterate_until(GMainContext *ctx, const int *counter, int want) {
	GSource *guard = g_timeout_source_new(20000);
	bool expired = false;

	g_source_set_callback(guard, on_guard, &expired, NULL);
	g_source_attach(guard, ctx);
	while (*counter < want && !expired) {
		g_main_context_iteration(ctx, TRUE);
	}
	g_source_destroy(guard);
	g_source_unref(guard);
	assert_false(expired);
}

static struct tr_client *connect_to(struct server *s) {
	struct tr_client *c = NULL;

	assert_int_equal(tr_client_connect(s->path, 2000, &c), 0);
	return c;
}

/* Answer each request with {"n":<its id>} until EOF. */
static void script_answer(struct server *s, int fd) {
	char *req;

	(void)s;
	while ((req = srv_read(fd))) {
		srv_sendf(fd, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"n\":%lld}}",
			req_id(req), req_id(req));
		free(req);
	}
}

static void script_silent(struct server *s, int fd) {
	char *req = srv_read(fd);

	if (!req) {
		s->failures++;
	}
	free(req);
	srv_wait_eof(fd);
}

struct app {
	struct tr_client *c;
	struct outcome o;
};

/* A call made from another source's callback, as an application's handler would. */
static gboolean call_from_idle(gpointer p) {
	struct app *a = p;

	assert_int_equal(tr_client_call_async(a->c, "x", NULL, 10000, on_reply, &a->o, NULL), 0);
	return G_SOURCE_REMOVE;
}

static void test_reply_on_context(void **state) {
	struct server *s = server_start(script_answer);
	GMainContext *ctx = g_main_context_new();
	struct tr_client_glib *g = NULL;
	struct app a = {.c = connect_to(s)};
	GSource *idle;

	assert_int_equal(tr_client_glib_attach(a.c, ctx, NULL, NULL, &g), 0);
	assert_non_null(tr_client_glib_source(g));
	/* queued before the loop runs */
	assert_int_equal(tr_client_call_async(a.c, "x", NULL, 10000, on_reply, &a.o, NULL), 0);
	iterate_until(ctx, &a.o.count, 1);
	assert_int_equal(a.o.errnum, 0);
	assert_string_equal(a.o.result, "{\"n\":1}");
	/* and from a callback on the loop */
	idle = g_idle_source_new();
	g_source_set_callback(idle, call_from_idle, &a, NULL);
	g_source_attach(idle, ctx);
	g_source_unref(idle);
	iterate_until(ctx, &a.o.count, 2);
	assert_string_equal(a.o.result, "{\"n\":2}");
	g = tr_client_glib_detach(g);
	assert_null(g);
	tr_client_close(a.c);
	g_main_context_unref(ctx);
	server_stop(s);
}

/* No input at all: the deadline fires from the context's own timeout. */
static void test_timeout_on_context(void **state) {
	struct server *s = server_start(script_silent);
	GMainContext *ctx = g_main_context_new();
	struct tr_client_glib *g = NULL;
	struct tr_client *c = connect_to(s);
	struct outcome o = {0};
	int64_t t0 = now_ms();

	assert_int_equal(tr_client_glib_attach(c, ctx, NULL, NULL, &g), 0);
	assert_int_equal(tr_client_call_async(c, "x", NULL, 150, on_reply, &o, NULL), 0);
	iterate_until(ctx, &o.count, 1);
	assert_int_equal(o.errnum, -ETIMEDOUT);
	assert_true(now_ms() - t0 >= 150);
	assert_int_equal(tr_client_timeout_ms(c), -1);
	tr_client_glib_detach(g);
	tr_client_close(c);
	g_main_context_unref(ctx);
	server_stop(s);
}

/* Read nothing until the test writes a byte to the pipe in s->user, then answer. */
static void script_read_late(struct server *s, int fd) {
	int *go = s->user;
	struct pollfd pfd = {.fd = go[0], .events = POLLIN};
	char b;

	if (poll(&pfd, 1, SRV_DEADLINE_MS) != 1 || read(go[0], &b, 1) != 1) {
		s->failures++;
		return;
	}
	script_answer(s, fd);
}

/* A request larger than the socket buffer: the source watches for G_IO_OUT until it is out. */
static void test_partial_write_on_context(void **state) {
	GMainContext *ctx = g_main_context_new();
	struct tr_client_glib *g = NULL;
	struct outcome o = {0};
	size_t n = 900 * 1024;
	char *params = malloc(n + 16);
	struct server *s;
	struct tr_client *c;
	int go[2];

	assert_non_null(params);
	assert_int_equal(pipe(go), 0);
	s = server_start_n(script_read_late, 1, go);
	c = connect_to(s);
	assert_int_equal(tr_client_glib_attach(c, ctx, NULL, NULL, &g), 0);
	memcpy(params, "{\"b\":\"", 6);
	memset(params + 6, 'x', n);
	memcpy(params + 6 + n, "\"}", 3);
	assert_int_equal(tr_client_call_async(c, "big", params, 10000, on_reply, &o, NULL), 0);
	free(params);
	assert_int_equal(tr_client_events(c), POLLIN | POLLOUT);
	assert_int_equal(write(go[1], "g", 1), 1);
	iterate_until(ctx, &o.count, 1);
	assert_int_equal(o.errnum, 0);
	assert_int_equal(tr_client_events(c), POLLIN);
	tr_client_glib_detach(g);
	tr_client_close(c);
	g_main_context_unref(ctx);
	server_stop(s);
	close(go[0]);
	close(go[1]);
}

static void script_hangup(struct server *s, int fd) {
	(void)s;
	(void)fd;
}

struct dead {
	struct tr_client_glib *g;
	int count;
	int errnum;
};

/* Detaching from the dead callback is allowed. */
static void on_dead(struct tr_client *c, int errnum, void *userdata) {
	struct dead *d = userdata;

	d->count++;
	d->errnum = errnum;
	d->g = tr_client_glib_detach(d->g);
}

static void test_dead_connection(void **state) {
	struct server *s = server_start(script_hangup);
	GMainContext *ctx = g_main_context_new();
	struct tr_client *c = connect_to(s);
	struct dead d = {0};
	struct outcome o = {0};

	assert_int_equal(tr_client_call_async(c, "x", NULL, -1, on_reply, &o, NULL), 0);
	assert_int_equal(tr_client_glib_attach(c, ctx, on_dead, &d, &d.g), 0);
	iterate_until(ctx, &d.count, 1);
	assert_int_equal(d.errnum, -ECONNRESET);
	assert_null(d.g);
	assert_int_equal(o.count, 1); /* the pending call failed first */
	assert_int_equal(o.errnum, -ECONNRESET);
	/* Nothing is attached any more: the context has nothing to dispatch. */
	assert_false(g_main_context_iteration(ctx, FALSE));
	assert_int_equal(d.count, 1);
	/* A dead client cannot be attached. */
	assert_int_equal(tr_client_glib_attach(c, ctx, NULL, NULL, &d.g), -EINVAL);
	tr_client_close(c);
	g_main_context_unref(ctx);
	server_stop(s);
}

static void test_bad_args(void **state) {
	struct tr_client_glib *g = NULL;

	assert_int_equal(tr_client_glib_attach(NULL, NULL, NULL, NULL, &g), -EINVAL);
	assert_null(g);
	assert_null(tr_client_glib_detach(NULL));
	assert_null(tr_client_glib_source(NULL));
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_on_context),
		cmocka_unit_test(test_timeout_on_context),
		cmocka_unit_test(test_partial_write_on_context),
		cmocka_unit_test(test_dead_connection),
		cmocka_unit_test(test_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
