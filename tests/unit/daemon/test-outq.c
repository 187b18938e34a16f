/* Unit tests of daemon/outq.c: a connection's output batch over a socket pair whose send
 * buffer is small, so that the socket takes a batch in parts. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "alloc-fail.h"
#include "outq.h"

struct env {
	uv_loop_t loop;
	uv_pipe_t pipe; /* our end */
	int peer;       /* the other end, read with plain read() */
	uint8_t *got;
	size_t got_len;
};

static int setup(void **state) {
	struct env *e = calloc(1, sizeof(*e));
	int sv[2], small = 4096;

	assert_non_null(e);
	(void)signal(SIGPIPE, SIG_IGN);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	assert_int_equal(uv_loop_init(&e->loop), 0);
	assert_int_equal(uv_pipe_init(&e->loop, &e->pipe, 0), 0);
	assert_int_equal(uv_pipe_open(&e->pipe, sv[0]), 0);
	e->peer = sv[1];
	e->got = malloc(1 << 20);
	assert_non_null(e->got);
	*state = e;
	return 0;
}

static int teardown(void **state) {
	struct env *e = *state;

	uv_close((uv_handle_t *)&e->pipe, NULL);
	(void)uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	if (e->peer >= 0) {
		close(e->peer);
	}
	free(e->got);
	free(e);
	return 0;
}

/* A buffer of n bytes counting on from *next (not one of the allocations made to fail). */
static char *pattern(size_t n, unsigned *next) {
	char *b = __real_malloc(n);

	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		b[i] = (char)((*next)++ % 251);
	}
	return b;
}

/* Read what the peer has now (non-blocking). */
static void drain_peer(struct env *e) {
	for (;;) {
		ssize_t k = recv(e->peer, e->got + e->got_len, (1 << 20) - e->got_len, MSG_DONTWAIT);

		if (k <= 0) {
			return;
		}
		e->got_len += (size_t)k;
	}
}

/* A batch larger than the socket takes goes out in parts, in order, byte for byte: each
 * try writes what fits, frees what is written and keeps the rest, a buffer cut in two
 * first. */
static void test_partial_writes(void **state) {
	struct env *e = *state;
	struct tr_outq q = {0};
	static const size_t sizes[] = {100, 200000, 50, 70000, 1};
	unsigned next = 0;
	size_t total = 0, tries = 0, before;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(tr_outq_push_shared(&q, pattern(sizes[i], &next), sizes[i], NULL), 0);
		total += sizes[i];
	}
	assert_int_equal(q.n, 5);
	assert_int_equal(q.bytes, total);
	assert_int_equal(tr_outq_try_write(&q, (uv_stream_t *)&e->pipe), 0);
	/* the socket took some, not all */
	assert_true(q.bytes > 0 && q.bytes < total);
	assert_true(q.n <= 4);
	while (q.n > 0) {
		before = q.bytes;
		drain_peer(e);
		assert_int_equal(tr_outq_try_write(&q, (uv_stream_t *)&e->pipe), 0);
		assert_true(q.bytes < before || q.n == 0);
		assert_true(++tries < 100000);
	}
	assert_int_equal(q.bytes, 0);
	drain_peer(e);
	assert_int_equal(e->got_len, total);
	for (size_t i = 0; i < total; i++) {
		if (e->got[i] != (uint8_t)(i % 251)) {
			fail_msg("byte %zu is %u, want %zu", i, e->got[i], i % 251);
		}
	}
	/* nothing queued: nothing to do */
	assert_int_equal(tr_outq_try_write(&q, (uv_stream_t *)&e->pipe), 0);
	tr_outq_done(&q);
}

static void on_written(uv_write_t *req, int status) {
	(void)status;
	free(req->data);
	free(req);
}

/* While libuv still has a write queued, nothing is written around it; taken buffers are the
 * caller's. */
static void test_behind_libuv(void **state) {
	struct env *e = *state;
	struct tr_outq q = {0};
	unsigned next = 0;
	uv_write_t *req = malloc(sizeof(*req));
	char *first = pattern(300000, &next);
	struct tr_outq_piece taken[1];
	uv_buf_t b = uv_buf_init(first, 300000);

	assert_non_null(req);
	req->data = first;
	assert_int_equal(uv_write(req, (uv_stream_t *)&e->pipe, &b, 1, on_written), 0);
	assert_true(uv_stream_get_write_queue_size((uv_stream_t *)&e->pipe) > 0);
	assert_int_equal(tr_outq_push_shared(&q, pattern(10, &next), 10, NULL), 0);
	assert_int_equal(tr_outq_try_write(&q, (uv_stream_t *)&e->pipe), 0);
	assert_int_equal(q.n, 1);
	assert_int_equal(q.bytes, 10);
	/* handed over: the queue is empty, the caller frees */
	tr_outq_take(&q, taken);
	assert_int_equal(q.n, 0);
	assert_int_equal(q.bytes, 0);
	assert_non_null(taken[0].own);
	tr_outq_piece_release(&taken[0]);
	/* let libuv finish its write (the peer reads) */
	while (uv_stream_get_write_queue_size((uv_stream_t *)&e->pipe) > 0) {
		drain_peer(e);
		(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	}
	(void)uv_run(&e->loop, UV_RUN_NOWAIT);
	tr_outq_done(&q);
}

/* The peer gone: an error, and what is queued stays for the caller to clear. */
static void test_broken(void **state) {
	struct env *e = *state;
	struct tr_outq q = {0};
	unsigned next = 0;

	close(e->peer);
	e->peer = -1;
	assert_int_equal(tr_outq_push_shared(&q, pattern(64, &next), 64, NULL), 0);
	assert_int_equal(tr_outq_try_write(&q, (uv_stream_t *)&e->pipe), UV_EPIPE);
	assert_int_equal(q.n, 1);
	tr_outq_clear(&q);
	assert_int_equal(q.n, 0);
	assert_int_equal(q.bytes, 0);
	tr_outq_done(&q);
}

/* Out of memory growing the arrays: -ENOMEM, the buffer freed, the queue as it was. */
static void test_push_enomem(void **state) {
	struct tr_outq q = {0};
	unsigned next = 0;

	(void)state;
	for (int i = 0; i < 20; i++) {
		size_t n = q.n;

		ALLOC_FAIL_LOOP(tr_outq_push_shared(&q, pattern(8, &next), 8, NULL), (void)0);
		assert_int_equal(q.n, n + 1);
	}
	assert_int_equal(q.bytes, 20 * 8);
	tr_outq_done(&q);
	assert_null(q.pieces);
}

/* A shared tail behind heads of their own, on two queues: each queue holds a reference while
 * the tail is unwritten, the bytes go out in order (the tail cut across partial writes), and
 * the last one written frees it. Out of memory: neither the head nor a reference is queued. */
static void test_shared_tail(void **state) {
	struct env *e = *state;
	struct tr_outq q = {0}, other = {0};
	unsigned next = 0;
	struct tr_outq_shared *tail;
	char *head = pattern(40, &next);
	size_t total;

	tail = tr_outq_shared_new(150000);
	assert_non_null(tail);
	for (size_t i = 0; i < tail->len; i++) {
		tail->data[i] = (char)(next++ % 251);
	}
	total = 40 + tail->len;
	assert_int_equal(tr_outq_push_shared(&q, head, 40, tail), 0);
	assert_int_equal(tr_outq_push_shared(&other, pattern(8, &next), 8, tail), 0);
	assert_int_equal(tail->refs, 3);
	assert_int_equal(q.n, 2);
	assert_int_equal(q.bytes, total);
	tr_outq_shared_unref(tail); /* the publisher's own */
	assert_int_equal(tail->refs, 2);
	while (q.n > 0) {
		drain_peer(e);
		assert_int_equal(tr_outq_try_write(&q, (uv_stream_t *)&e->pipe), 0);
	}
	assert_int_equal(tail->refs, 1); /* the other queue's */
	drain_peer(e);
	assert_int_equal(e->got_len, total);
	for (size_t i = 0; i < total; i++) {
		if (e->got[i] != (uint8_t)(i % 251)) {
			fail_msg("byte %zu is %u, want %zu", i, e->got[i], i % 251);
		}
	}
	/* never written: let go with the queue */
	tr_outq_done(&other);
	/* out of memory growing the arrays: the head freed, no reference taken */
	tail = tr_outq_shared_new(4);
	assert_non_null(tail);
	for (int i = 0; i < 10; i++) {
		ALLOC_FAIL_LOOP(tr_outq_push_shared(&q, pattern(4, &next), 4, tail), (void)0);
	}
	assert_int_equal(q.n, 20);
	assert_int_equal(tail->refs, 11);
	tr_outq_done(&q);
	assert_int_equal(tail->refs, 1);
	tr_outq_shared_unref(tail);
	ALLOC_FAIL_LOOP((tail = tr_outq_shared_new(4)) ? 0 : -ENOMEM, (void)0);
	tr_outq_shared_unref(tail);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_partial_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_behind_libuv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken, setup, teardown),
		cmocka_unit_test(test_push_enomem),
		cmocka_unit_test_setup_teardown(test_shared_tail, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
