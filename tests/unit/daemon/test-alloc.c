/*
 * Allocation-failure injection for the daemon's local side: every allocation made by the
 * daemon's sources along a method call, a status call and an event publish fails once, in
 * turn (fail the Nth for every N of a clean run). Each run must end its call exactly once (a
 * result or an error), and nothing may leak (the ASan pass checks at exit) or crash.
 *
 * methods.c, task-methods.c, cache.c, subs.c and core.c are compiled in with the allocator
 * wrapped (alloc-fail.h); the socket server is replaced by the call recorder below and the
 * bridge by bridge-stub.c (told to refuse requests, so that no stub allocates).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include "alloc-fail.h"
#include "bridge-stub.h"
#include "cache.h"
#include "config.h"
#include "core.h"
#include "daemon.h"
#include "json.h"
#include "local-methods.h"
#include "outq.h"
#include "rpc.h"
#include "rpcsrv.h"
#include "subs.h"

#define WT "WT0fbc4e6335fcc52ed96c632c85599ed7"
#define WR "WR8a81d7d820fcf01ee85c778912a385f0"

/* ---- the socket server, replaced ---- */

struct tr_call {
	int ended;
	bool error;
};

static int owner_token; /* the one subscriber's connection */
static size_t frames_sent;
static char *first_frame; /* the first frame sent since it was last freed */

void tr_call_result(struct tr_call *call, struct tr_json *result) {
	call->ended++;
	call->error = result == NULL;
	tr_json_free(result);
}

void tr_call_error(struct tr_call *call, int code, const char *message, struct tr_json *data) {
	call->ended++;
	call->error = true;
	tr_json_free(data);
}

void *tr_call_owner(struct tr_call *call) {
	return &owner_token;
}

int tr_rpcsrv_send(void *owner, char *head, size_t head_len, struct tr_outq_shared *tail) {
	char *buf = head;

	assert_ptr_equal(owner, &owner_token);
	if (tail) {
		/* the whole frame in one buffer, as the test reads it (not an allocation to fail) */
		buf = __real_malloc(head_len + tail->len);
		assert_non_null(buf);
		memcpy(buf, head, head_len);
		memcpy(buf + head_len, tail->data, tail->len);
		free(head);
	}
	frames_sent++;
	if (!first_frame) {
		first_frame = buf; /* the test frees it */
		return 0;
	}
	free(buf);
	return 0;
}

void tr_rpcsrv_get_stats(const struct tr_rpcsrv *s, struct tr_rpcsrv_stats *ret) {
	*ret = (struct tr_rpcsrv_stats){ .connections = 1 };
}

size_t tr_rpcsrv_max_connections(const struct tr_rpcsrv *s) {
	return 1;
}

uid_t tr_call_peer_uid(const struct tr_call *call) {
	return getuid();
}

bool tr_call_from_owner(const struct tr_call *call) {
	return true;
}

/* ---- a daemon with one task and one subscriber ---- */

struct env {
	uv_loop_t loop;
	struct tr_config cfg;
	struct tr_daemon d;
	char sub_id[24];
};

/* TaskRouter's Task payload for WT, at version, with these attributes (JSON text). */
static const char *task_text(int version, const char *attributes) {
	static char buf[1024];

	snprintf(buf, sizeof(buf), "{\"sid\":\"" WT "\",\"assignment_status\":\"assigned\","
		"\"attributes\":\"%s\",\"addons\":\"{}\",\"age\":1,\"priority\":0,"
		"\"reason\":null,\"timeout\":3600,\"queue_sid\":\"WQ1\",\"queue_name\":\"Q\","
		"\"workflow_sid\":\"WW1\",\"workflow_name\":\"W\",\"task_channel_sid\":\"TC1\","
		"\"task_channel_unique_name\":\"voice\",\"routing_target\":null,"
		"\"date_created\":1735819200,\"date_updated\":%d,"
		"\"virtual_start_time\":1735819200,\"version\":%d}", attributes,
		1735819200 + version, version);
	return buf;
}

static struct tr_json *parse(const char *text) {
	struct tr_json *j = NULL;

	assert_int_equal(tr_json_parse(text, strlen(text), &j, NULL), 0);
	return j;
}

static void env_init(struct env *e) {
	char res[2048];
	struct tr_json *j;

	snprintf(res, sizeof(res), "{\"sid\":\"" WR "\",\"reservation_status\":\"accepted\","
		"\"task\":%s}", task_text(7, "{\\\"a\\\":[1,2]}"));
	j = parse(res);

	memset(e, 0, sizeof(*e));
	e->cfg.closed_grace_ms = 1000;
	stub_daemon_init(&e->d, &e->loop, &e->cfg);
	tr_core_bridge_events()->event(&e->d, "reservation.created", j);
	tr_json_free(j);
	assert_non_null(tr_cache_get(e->d.cache, WT));
	assert_int_equal(tr_subs_add(e->d.subs, NULL, NULL, &owner_token, tr_rpcsrv_send,
		e->sub_id, sizeof(e->sub_id)), 0);
	stub_request_ret = -ENOTCONN;
}

static void env_done(struct env *e) {
	tr_core_done(&e->d);
	assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&e->loop), 0);
}

/* ---- the operations ---- */

/* A method call with allocation fail_at failing (-1: none). The request is parsed before:
 * it is the server's, not the method's. */
static void call_method(struct env *e, const char *method, const char *params, long fail_at) {
	struct tr_json *p = params ? parse(params) : NULL;
	struct tr_call call = { 0 };

	alloc_reset(fail_at);
	tr_local_methods_dispatch(&e->d, &call, method, p);
	alloc_fail_at = -1; /* keep alloc_count: fail_every reads it */
	tr_json_free(p);
	assert_int_equal(call.ended, 1);
}

/* A task.updated event from the upstream, published to the subscriber, with allocation
 * fail_at failing (-1: none). */
static void publish_event(struct env *e, long fail_at) {
	struct tr_json *task = parse(task_text(8, "{\\\"b\\\":true}"));

	alloc_reset(fail_at);
	tr_core_bridge_events()->event(&e->d, "task.updated", task);
	alloc_fail_at = -1; /* keep alloc_count: fail_every reads it */
	tr_json_free(task);
}

struct op {
	const char *method; /* NULL: the event */
	const char *params;
};

static void run_op(struct env *e, const struct op *op, long fail_at) {
	if (op->method) {
		call_method(e, op->method, op->params, fail_at);
	} else {
		publish_event(e, fail_at);
	}
}

/* Run op with allocation N failing, for every N a clean run makes. Returns that count. */
static long fail_every(const struct op *op) {
	struct env e;
	long clean;

	env_init(&e);
	run_op(&e, op, -1);
	clean = alloc_count;
	env_done(&e);
	for (long n = 0; n < clean; n++) {
		env_init(&e);
		frames_sent = 0;
		run_op(&e, op, n);
		env_done(&e);
	}
	return clean;
}

static void test_method_calls(void **state) {
	static const struct op ops[] = {
		{ "task.get", "{\"sid\":\"" WT "\"}" },
		{ "task.list", "{\"limit\":10}" },
		{ "events.subscribe", "{\"events\":[\"updated\"],\"tasks\":[\"" WT "\"]}" },
		{ "task.setAttributes", "{\"sid\":\"" WT "\",\"attributes\":{\"x\":[1,{\"y\":null}]}}" },
		{ "task.transfer", "{\"sid\":\"" WT "\",\"to\":\"WK2\",\"mode\":\"warm\",\"priority\":3}" },
		{ "task.setVirtualStartTime", "{\"sid\":\"" WT "\",\"time\":\"2025-01-02T12:00:00Z\"}" },
		{ "task.hold", "{\"sid\":\"" WT "\",\"targetWorkerSid\":\"WK2\",\"onHold\":true,\"holdUrl\":\"u\"}" },
		{ "task.complete", "{\"sid\":\"" WT "\",\"reason\":1}" }, /* invalid: an error reply */
		{ "rpc.describe", NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		long n = fail_every(&ops[i]);

		print_message("# %s: %ld allocations, each failed once\n", ops[i].method, n);
		assert_true(n > 0);
	}
}

static void test_status_call(void **state) {
	const struct op op = { "daemon.status", NULL };
	long n;

	(void)state;
	n = fail_every(&op);
	print_message("# daemon.status: %ld allocations, each failed once\n", n);
	assert_true(n > 10);
}

static void test_event_publish(void **state) {
	const struct op op = { NULL, NULL };
	long n;

	(void)state;
	n = fail_every(&op);
	print_message("# task.updated publish: %ld allocations, each failed once\n", n);
	assert_true(n > 0);
	/* and without a failure, the event did reach the subscriber */
	{
		struct env e;

		env_init(&e);
		frames_sent = 0;
		publish_event(&e, -1);
		assert_true(frames_sent >= 1);
		env_done(&e);
	}
}

/* A frame's text after its epoch (each env's hub has an epoch of its own), NUL-terminated in
 * place of the frame's last byte, which is always the closing brace. */
static const char *after_epoch(char *frame) {
	size_t len = (size_t)(uint8_t)frame[0] << 24 | (size_t)(uint8_t)frame[1] << 16 |
		(size_t)(uint8_t)frame[2] << 8 | (uint8_t)frame[3];
	const char *p;

	assert_int_equal(frame[4 + len - 1], '}');
	frame[4 + len - 1] = '\0';
	p = strstr(frame + 4, "\"epoch\":\"");
	assert_non_null(p);
	p = strchr(p + 9, '"');
	assert_non_null(p);
	return p;
}

/* The replayed frame of seq 1 (the reservationCreated of env_init), or NULL. */
static char *replay_first(struct env *e) {
	char *f;

	free(first_frame);
	first_frame = NULL;
	assert_int_equal(tr_subs_replay(e->d.subs, e->sub_id, 1), 0);
	f = first_frame;
	first_frame = NULL;
	return f;
}

/* The first event's text let go (settled), the task.updated event makes the hub write it out
 * again before the record changes. When an allocation of that fails, the ring forgets the
 * event (a `since` before it is "expired"); otherwise it replays the very frame it gave
 * before. Never a wrong text. */
static void test_written_out(void **state) {
	struct env e;
	struct tr_subs_ring_stats st;
	char *before;
	const char *want;
	long clean, forgot = 0;

	(void)state;
	env_init(&e);
	tr_subs_settle(e.d.subs);
	before = replay_first(&e);
	assert_non_null(before);
	want = after_epoch(before);
	publish_event(&e, -1);
	clean = alloc_count;
	env_done(&e);
	for (long n = 0; n < clean; n++) {
		env_init(&e);
		tr_subs_settle(e.d.subs);
		tr_subs_ring_stats(e.d.subs, &st);
		assert_int_equal(st.from_records, 1);
		publish_event(&e, n);
		if (tr_subs_oldest(e.d.subs) > 1) {
			forgot++;
		} else {
			char *again = replay_first(&e);

			assert_non_null(again);
			assert_string_equal(after_epoch(again), want);
			free(again);
		}
		env_done(&e);
	}
	print_message("# written out: %ld allocations, %ld runs forgot the event\n", clean, forgot);
	assert_true(forgot >= 1);
	free(before);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_method_calls),
		cmocka_unit_test(test_status_call),
		cmocka_unit_test(test_event_publish),
		cmocka_unit_test(test_written_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
