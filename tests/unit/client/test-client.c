/*
 * test-client.c — libtaskrouter against a scripted fake server.
 *
 * Each test starts a server thread on a Unix socket in a mkdtemp directory. The thread
 * accepts one connection and runs the test's script: read requests, write replies in
 * awkward ways (one byte at a time, many frames per write, out of order, oversize,
 * garbage), or hang up. Every server read has a deadline so a broken client cannot hang
 * the test; waits are on I/O with deadlines, never sleeps.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <taskrouter/client.h>

#include "fakesrv.h"

static struct tr_client *connect_to(struct server *s) {
	struct tr_client *c = NULL;

	assert_int_equal(tr_client_connect(s->path, 2000, &c), 0);
	assert_non_null(c);
	return c;
}

/* ------------------------------------------------------------------ scripts and tests */

/* Reply one byte per write. */
static void script_bytewise(struct server *s, int fd) {
	char *req = srv_read(fd);
	char json[256], frame[300];
	size_t n;

	if (!req || !strstr(req, "\"method\":\"daemon.status\"") || !strstr(req, "\"x\":1")) {
		s->failures++;
	}
	snprintf(json, sizeof(json), "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"ok\":true}}",
		req_id(req));
	n = put_frame(frame, json);
	for (size_t i = 0; i < n; i++) {
		write_full(fd, frame + i, 1);
	}
	free(req);
	srv_wait_eof(fd);
}

static void test_call_bytewise(void **state) {
	struct server *s = server_start(script_bytewise);
	struct tr_client *c = connect_to(s);
	struct tr_client_error e = {0};
	char *res = NULL;

	assert_int_equal(tr_client_call(c, "daemon.status", "{\"x\":1}", 2000, &res, &e), 0);
	assert_string_equal(res, "{\"ok\":true}");
	assert_null(e.message);
	free(res);
	tr_client_close(c);
	server_stop(s);
}

/* Three replies and two events in one write. */
static void script_many_frames(struct server *s, int fd) {
	char buf[4096];
	size_t n = 0;
	long long ids[3];

	for (int i = 0; i < 3; i++) {
		char *req = srv_read(fd);

		ids[i] = req_id(req);
		if (ids[i] < 0) {
			s->failures++;
		}
		free(req);
	}
	for (int i = 0; i < 3; i++) {
		char json[256];

		snprintf(json, sizeof(json),
			"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"n\":%d}}", ids[i], i);
		n += put_frame(buf + n, json);
		if (i == 1) {
			n += put_frame(buf + n,
				"{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":"
				"{\"subscription\":1,\"seq\":7,\"event\":\"reservationCreated\","
				"\"taskSid\":\"WT1\",\"task\":{\"sid\":\"WT1\",\"status\":"
				"\"pending\"}}}");
			n += put_frame(buf + n,
				"{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":"
				"{\"subscription\":1,\"seq\":8,\"event\":\"disconnected\"}}");
		}
	}
	write_full(fd, buf, n);
	srv_wait_eof(fd);
}

struct replies {
	int count;
	int n_of[8];
	int errnum[8];
};

static void on_reply(struct tr_client *c, const char *result, const struct tr_client_error *err,
	void *userdata) {
	struct replies *r = userdata;
	const char *p;

	if (r->count >= 8) {
		return;
	}
	if (err) {
		r->errnum[r->count] = err->errnum;
		r->n_of[r->count] = -1;
	} else {
		p = strstr(result, "\"n\":");
		r->n_of[r->count] = p ? atoi(p + 4) : -1;
	}
	r->count++;
}

/* Run the poll loop until cond, with a deadline generous enough for a loaded machine. */
static void pump_until(struct tr_client *c, const int *counter, int want) {
	int64_t deadline = now_ms() + 20000;

	while (*counter < want && now_ms() < deadline) {
		struct pollfd pfd = {.fd = tr_client_fd(c), .events = POLLIN};
		int t = tr_client_timeout_ms(c);

		if (tr_client_wants_write(c)) {
			pfd.events |= POLLOUT;
		}
		if (t < 0 || t > 100) {
			t = 100;
		}
		(void)poll(&pfd, 1, t);
		if (tr_client_process(c) < 0) {
			break;
		}
	}
}

static void test_many_frames_one_write(void **state) {
	struct server *s = server_start(script_many_frames);
	struct tr_client *c = connect_to(s);
	struct replies r = {0};
	struct tr_client_event *ev = NULL;
	int64_t id1 = 0, id2 = 0;

	assert_int_equal(tr_client_call_async(c, "a", NULL, -1, on_reply, &r, &id1), 0);
	assert_int_equal(tr_client_call_async(c, "b", "{}", -1, on_reply, &r, &id2), 0);
	assert_int_equal(tr_client_call_async(c, "c", NULL, 5000, on_reply, &r, NULL), 0);
	assert_true(id2 > id1);
	/* tr_client_call_async wrote them itself: nothing is left for POLLOUT. */
	assert_false(tr_client_wants_write(c));
	pump_until(c, &r.count, 3);
	assert_int_equal(r.count, 3);
	assert_int_equal(r.n_of[0], 0);
	assert_int_equal(r.n_of[1], 1);
	assert_int_equal(r.n_of[2], 2);
	assert_false(tr_client_wants_write(c));
	assert_int_equal(tr_client_timeout_ms(c), -1);

	assert_int_equal(tr_client_next_event(c, 0, &ev), 1);
	assert_string_equal(ev->name, "reservationCreated");
	assert_int_equal(ev->seq, 7);
	assert_string_equal(ev->task_sid, "WT1");
	assert_string_equal(ev->subscription, "1");
	assert_non_null(ev->task);
	assert_string_equal(tr_task_status(ev->task), "pending");
	tr_client_event_free(ev);
	assert_int_equal(tr_client_next_event(c, 0, &ev), 1);
	assert_string_equal(ev->name, "disconnected");
	assert_null(ev->task_sid);
	assert_null(ev->task);
	tr_client_event_free(ev);
	assert_int_equal(tr_client_next_event(c, 0, &ev), 0);
	tr_client_close(c);
	server_stop(s);
}

static void script_error(struct server *s, int fd) {
	char *req = srv_read(fd);

	srv_sendf(fd,
		"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32004,\"message\":"
		"\"version conflict\",\"data\":{\"currentVersion\":\"5\",\"httpStatus\":412}}}",
		req_id(req));
	free(req);
	req = srv_read(fd);
	srv_sendf(fd,
		"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32001,\"message\":\"no\"}}",
		req_id(req));
	free(req);
	srv_wait_eof(fd);
}

static void test_structured_error(void **state) {
	struct server *s = server_start(script_error);
	struct tr_client *c = connect_to(s);
	struct tr_client_error e = {0};
	struct tr_task *t = NULL;
	char *res = NULL;

	assert_int_equal(tr_client_call(c, "task.setAttributes", NULL, 2000, &res, &e), -EREMOTEIO);
	assert_null(res);
	assert_int_equal(e.errnum, -EREMOTEIO);
	assert_int_equal(e.code, TR_CLIENT_VERSION_CONFLICT);
	assert_string_equal(e.message, "version conflict");
	assert_non_null(e.data);
	assert_non_null(strstr(e.data, "\"currentVersion\":\"5\""));
	assert_non_null(strstr(e.data, "\"httpStatus\":412"));
	assert_string_equal(tr_client_code_str(e.code), tr_client_code_str(-32004));
	/* The error struct is reused: the old contents are released by the library. */
	assert_int_equal(tr_client_task_get(c, "WTx", 2000, &t, &e), -EREMOTEIO);
	assert_null(t);
	assert_int_equal(e.code, TR_CLIENT_NOT_FOUND);
	assert_null(e.data);
	tr_client_error_done(&e);
	assert_null(e.message);
	tr_client_close(c);
	server_stop(s);
}

/* Read the request and never answer; wait for the client to leave. */
static void script_silent(struct server *s, int fd) {
	char *req = srv_read(fd);

	if (!req) {
		s->failures++;
	}
	free(req);
	srv_wait_eof(fd);
}

static void test_timeout(void **state) {
	struct server *s = server_start(script_silent);
	struct tr_client *c = connect_to(s);
	struct tr_client_error e = {0};
	char *res = NULL;
	int64_t t0 = now_ms(), dt;

	assert_int_equal(
		tr_client_call(c, "task.get", "{\"sid\":\"WT1\"}", 200, &res, &e), -ETIMEDOUT);
	dt = now_ms() - t0;
	assert_true(dt >= 190); /* a lower bound only: a loaded machine may take longer */
	assert_int_equal(e.errnum, -ETIMEDOUT);
	assert_int_equal(e.code, 0);
	assert_non_null(e.message);
	tr_client_error_done(&e);
	/* The connection survives a timeout. */
	assert_int_equal(tr_client_timeout_ms(c), -1);
	assert_int_equal(tr_client_process(c), 0);
	tr_client_close(c);
	server_stop(s);
}

static void test_next_event_timeout(void **state) {
	struct server *s = server_start(script_silent);
	struct tr_client *c = connect_to(s);
	struct tr_client_event *ev = NULL;
	struct replies r = {0};
	int64_t t0, dt;

	/* Give the silent server its request, then wait for an event that never comes. */
	assert_int_equal(tr_client_call_async(c, "x", NULL, 150, on_reply, &r, NULL), 0);
	t0 = now_ms();
	assert_int_equal(tr_client_next_event(c, 300, &ev), 0);
	dt = now_ms() - t0;
	assert_true(dt >= 290); /* a lower bound only */
	assert_null(ev);
	/* The async call expired on the way, through its own deadline. */
	assert_int_equal(r.count, 1);
	assert_int_equal(r.errnum[0], -ETIMEDOUT);
	tr_client_close(c);
	server_stop(s);
}

static void script_hangup(struct server *s, int fd) {
	char *req = srv_read(fd);

	if (!req) {
		s->failures++;
	}
	free(req);
}

static void test_server_gone_mid_call(void **state) {
	struct server *s = server_start(script_hangup);
	struct tr_client *c = connect_to(s);
	struct tr_client_error e = {0};
	struct tr_client_event *ev = NULL;
	char *res = NULL;

	/* -ECONNRESET, not -ETIMEDOUT: the hang-up ends the call, not the deadline (no timing
	 * assertion: a loaded machine may take any time) */
	assert_int_equal(tr_client_call(c, "task.list", NULL, 3000, &res, &e), -ECONNRESET);
	assert_int_equal(e.errnum, -ECONNRESET);
	assert_int_equal(e.code, 0);
	/* Dead for good, without blocking. */
	assert_int_equal(tr_client_call(c, "task.list", NULL, 3000, &res, &e), -ECONNRESET);
	assert_int_equal(tr_client_next_event(c, 1000, &ev), -ECONNRESET);
	assert_int_equal(tr_client_process(c), -ECONNRESET);
	assert_int_equal(tr_client_call_async(c, "x", NULL, -1, NULL, NULL, NULL), -ECONNRESET);
	tr_client_error_done(&e);
	tr_client_close(c);
	server_stop(s);
}

static void script_oversize(struct server *s, int fd) {
	unsigned char h[4] = {0x00, 0x20, 0x00, 0x00}; /* 2 MiB */
	char *req = srv_read(fd);

	free(req);
	write_full(fd, h, 4);
	srv_wait_eof(fd);
}

static void test_oversize_frame(void **state) {
	struct server *s = server_start(script_oversize);
	struct tr_client *c = connect_to(s);
	struct tr_client_error e = {0};

	assert_int_equal(tr_client_call(c, "x", NULL, 2000, NULL, &e), -EMSGSIZE);
	assert_int_equal(e.errnum, -EMSGSIZE);
	tr_client_error_done(&e);
	tr_client_close(c);
	server_stop(s);
}

static void script_garbage(struct server *s, int fd) {
	char *req = srv_read(fd);

	free(req);
	srv_send(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{nope");
	srv_wait_eof(fd);
}

static void test_invalid_json(void **state) {
	struct server *s = server_start(script_garbage);
	struct tr_client *c = connect_to(s);
	struct tr_client_error e = {0};

	assert_int_equal(tr_client_call(c, "x", NULL, 2000, NULL, &e), -EBADMSG);
	tr_client_error_done(&e);
	tr_client_close(c);
	server_stop(s);
}

/* Two requests answered in reverse order, with an event between. */
static void script_reverse(struct server *s, int fd) {
	char *a = srv_read(fd), *b = srv_read(fd);
	long long ia = req_id(a), ib = req_id(b);

	srv_sendf(fd, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"n\":%lld}}", ib, ib);
	srv_send(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"seq\":3,"
		     "\"event\":\"task.updated\",\"taskSid\":\"WT9\"}}");
	/* A reply nobody asked for is ignored. */
	srv_send(fd, "{\"jsonrpc\":\"2.0\",\"id\":999,\"result\":{}}");
	srv_sendf(fd, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"n\":%lld}}", ia, ia);
	free(a);
	free(b);
	srv_wait_eof(fd);
}

struct evcount {
	int n;
	int64_t last_seq;
};

static void on_event(struct tr_client *c, const struct tr_client_event *ev, void *userdata) {
	struct evcount *e = userdata;

	e->n++;
	e->last_seq = ev->seq;
}

static void test_out_of_order(void **state) {
	struct server *s = server_start(script_reverse);
	struct tr_client *c = connect_to(s);
	struct replies r = {0};
	struct evcount ec = {0};
	int64_t ia, ib;

	tr_client_set_event_cb(c, on_event, &ec);
	assert_int_equal(tr_client_call_async(c, "a", NULL, 3000, on_reply, &r, &ia), 0);
	assert_int_equal(tr_client_call_async(c, "b", NULL, 3000, on_reply, &r, &ib), 0);
	pump_until(c, &r.count, 2);
	assert_int_equal(r.count, 2);
	assert_int_equal(r.n_of[0], (int)ib);
	assert_int_equal(r.n_of[1], (int)ia);
	assert_int_equal(ec.n, 1);
	assert_int_equal(ec.last_seq, 3);
	tr_client_close(c);
	server_stop(s);
}

/* Events before the reply of a blocking call go to the queue, in order. */
static void script_events_then_reply(struct server *s, int fd) {
	char *req = srv_read(fd);

	if (!req || !strstr(req, "\"sid\":\"WT5\"") || !strstr(req, "\"reason\":\"done\"") ||
		!strstr(req, "\"method\":\"task.complete\"")) {
		s->failures++;
	}
	for (int i = 0; i < 3; i++) {
		srv_sendf(fd,
			"{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"seq\":%d,"
			"\"event\":\"task.updated\",\"taskSid\":\"WT5\",\"resync\":true}}",
			10 + i);
	}
	srv_sendf(fd,
		"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"sid\":\"WT5\",\"status\":"
		"\"completed\",\"priority\":3,\"age\":12,\"queueName\":\"Q\",\"reason\":\"done\","
		"\"attributes\":{\"a\":[1,2]}}}",
		req_id(req));
	free(req);
	srv_wait_eof(fd);
}

static void test_events_interleaved_typed(void **state) {
	struct server *s = server_start(script_events_then_reply);
	struct tr_client *c = connect_to(s);
	struct tr_client_error e = {0};
	struct tr_client_event *ev = NULL;
	struct tr_task *t = NULL, *t2;
	char *attrs, *all;
	int64_t v;

	assert_int_equal(tr_client_task_complete(c, "WT5", "done", 2000, &t, &e), 0);
	assert_non_null(t);
	assert_string_equal(tr_task_sid(t), "WT5");
	assert_string_equal(tr_task_status(t), "completed");
	assert_string_equal(tr_task_queue_name(t), "Q");
	assert_string_equal(tr_task_reason(t), "done");
	assert_null(tr_task_version(t));
	assert_int_equal(tr_task_priority(t), 3);
	assert_int_equal(tr_task_age(t), 12);
	assert_int_equal(tr_task_get_int(t, "missing", &v), -ENOENT);
	assert_int_equal(tr_task_get_int(t, "queueName", &v), -EINVAL);
	attrs = tr_task_get_json(t, "attributes");
	assert_string_equal(attrs, "{\"a\":[1,2]}");
	free(attrs);
	t2 = tr_task_dup(t);
	all = tr_task_to_json(t2);
	assert_non_null(strstr(all, "\"sid\":\"WT5\""));
	free(all);
	tr_task_free(t2);
	tr_task_free(t);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tr_client_next_event(c, 0, &ev), 1);
		assert_int_equal(ev->seq, 10 + i);
		assert_true(ev->resync);
		assert_false(ev->stale);
		tr_client_event_free(ev);
	}
	assert_int_equal(tr_client_next_event(c, 0, &ev), 0);
	tr_client_close(c);
	server_stop(s);
}

static void script_replay_gone(struct server *s, int fd) {
	char *req = srv_read(fd);

	if (!req || !strstr(req, "\"since\":5") || !strstr(req, "\"events\":[\"reservationCreated\"]") ||
		!strstr(req, "\"tasks\":[\"WT1\",\"WT2\"]")) {
		s->failures++;
	}
	srv_sendf(fd,
		"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32011,\"message\":\"gone\","
		"\"data\":{\"oldestSeq\":100,\"currentSeq\":200}}}",
		req_id(req));
	free(req);
	req = srv_read(fd);
	if (!req || strstr(req, "since")) {
		s->failures++;
	}
	srv_sendf(fd,
		"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"subscription\":2,\"seq\":200,"
		"\"tasks\":[{\"sid\":\"WT1\"},{\"sid\":\"WT2\"}]}}",
		req_id(req));
	free(req);
	srv_wait_eof(fd);
}

static void test_subscribe_replay_gone(void **state) {
	struct server *s = server_start(script_replay_gone);
	struct tr_client *c = connect_to(s);
	struct tr_client_error e = {0};
	const char *events[] = {"reservationCreated", NULL};
	const char *tasks[] = {"WT1", "WT2", NULL};
	struct tr_task **list = NULL;
	size_t n = 0;
	char *res = NULL;

	assert_int_equal(tr_client_subscribe(c, events, tasks, 5, 2000, &res, &e), -EREMOTEIO);
	assert_int_equal(e.code, TR_CLIENT_REPLAY_GONE);
	assert_non_null(strstr(e.data, "\"oldestSeq\":100"));
	assert_int_equal(tr_client_subscribe(c, NULL, NULL, -1, 2000, &res, &e), 0);
	assert_non_null(strstr(res, "\"seq\":200"));
	assert_int_equal(tr_task_list_parse(res, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(tr_task_sid(list[1]), "WT2");
	tr_task_list_free(list, n);
	assert_int_equal(tr_task_list_parse("{\"tasks\":3}", &list, &n), -EBADMSG);
	assert_int_equal(tr_task_list_parse("[", &list, &n), -EBADMSG);
	free(res);
	tr_client_error_done(&e);
	tr_client_close(c);
	server_stop(s);
}

/*
 * tr_client_subscribe_resume: the first request resumes with since and epoch and is replayed;
 * the second names another daemon run, gets REPLAY_GONE and subscribes again from now.
 */
static void script_resume(struct server *s, int fd) {
	char *req = srv_read(fd);

	if (!req || !strstr(req, "\"since\":13") || !strstr(req, "\"epoch\":\"e1\"")) {
		s->failures++;
	}
	srv_sendf(fd,
		"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"subscription\":\"s1\","
		"\"epoch\":\"e1\",\"seq\":14,\"tasks\":[],\"next\":null}}",
		req_id(req));
	srv_send(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"subscription\":"
		     "\"s1\",\"epoch\":\"e1\",\"seq\":13,\"event\":\"updated\",\"taskSid\":\"WT1\"}}");
	free(req);
	req = srv_read(fd);
	if (!req || !strstr(req, "\"since\":15") || !strstr(req, "\"epoch\":\"e1\"")) {
		s->failures++;
	}
	srv_sendf(fd,
		"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32011,\"message\":\"gone\","
		"\"data\":{\"reason\":\"epoch\",\"epoch\":\"e2\",\"oldestSeq\":1,\"currentSeq\":3}}}",
		req_id(req));
	free(req);
	req = srv_read(fd);
	if (!req || strstr(req, "since") || strstr(req, "epoch")) {
		s->failures++;
	}
	srv_sendf(fd,
		"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"subscription\":\"s2\","
		"\"epoch\":\"e2\",\"seq\":3,\"tasks\":[{\"sid\":\"WT9\"}],\"next\":null}}",
		req_id(req));
	free(req);
	/* a refusal that is not a gap stays an error */
	req = srv_read(fd);
	srv_sendf(fd,
		"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32602,\"message\":\"bad\","
		"\"data\":{\"param\":\"events\"}}}",
		req_id(req));
	free(req);
	srv_wait_eof(fd);
}

static void test_subscribe_resume(void **state) {
	struct server *s = server_start(script_resume);
	struct tr_client *c = connect_to(s);
	struct tr_client_error e = {0};
	struct tr_client_subscription *sub = NULL;
	struct tr_client_event *ev = NULL;
	struct tr_task **list = NULL;
	size_t n = 0;

	/* replayed: no gap, and the event names its epoch */
	assert_int_equal(tr_client_subscribe_resume(c, NULL, NULL, "e1", 13, 2000, &sub, &e), 0);
	assert_false(sub->gap);
	assert_null(sub->gap_reason);
	assert_string_equal(sub->id, "s1");
	assert_string_equal(sub->epoch, "e1");
	assert_int_equal(sub->seq, 14);
	sub = tr_client_subscription_free(sub);
	assert_int_equal(tr_client_next_event(c, 2000, &ev), 1);
	assert_string_equal(ev->epoch, "e1");
	assert_int_equal(ev->seq, 13);
	ev = tr_client_event_free(ev);

	/* the daemon restarted: an explicit gap, subscribed from now, with the current tasks */
	assert_int_equal(tr_client_subscribe_resume(c, NULL, NULL, "e1", 15, 2000, &sub, &e), 0);
	assert_true(sub->gap);
	assert_string_equal(sub->gap_reason, "epoch");
	assert_non_null(strstr(sub->gap_data, "\"currentSeq\":3"));
	assert_string_equal(sub->id, "s2");
	assert_string_equal(sub->epoch, "e2");
	assert_int_equal(sub->seq, 3);
	assert_int_equal(tr_task_list_parse(sub->json, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(tr_task_sid(list[0]), "WT9");
	tr_task_list_free(list, n);
	sub = tr_client_subscription_free(sub);

	assert_int_equal(tr_client_subscribe_resume(c, NULL, NULL, NULL, -1, 2000, &sub, &e),
		-EREMOTEIO);
	assert_int_equal(e.code, TR_CLIENT_INVALID_PARAMS);
	assert_null(sub);
	assert_int_equal(tr_client_subscribe_resume(c, NULL, NULL, NULL, -1, 2000, NULL, &e), -EINVAL);
	assert_null(tr_client_subscription_free(NULL));
	tr_client_error_done(&e);
	tr_client_close(c);
	server_stop(s);
}

static void test_close_cancels_async(void **state) {
	struct server *s = server_start(script_silent);
	struct tr_client *c = connect_to(s);
	struct replies r = {0};

	assert_int_equal(tr_client_call_async(c, "x", NULL, 60000, on_reply, &r, NULL), 0);
	/* Flush the request so the server gets it. */
	while (tr_client_wants_write(c)) {
		assert_int_equal(tr_client_process(c), 0);
	}
	assert_true(tr_client_timeout_ms(c) > 1000);
	tr_client_close(c);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.errnum[0], -ECANCELED);
	server_stop(s);
}

static void test_bad_args_and_connect(void **state) {
	struct tr_client *c = NULL;
	char longp[200];
	char *p;

	assert_int_equal(tr_client_connect("/nonexistent/dir/sock", 100, &c), -ENOENT);
	assert_null(c);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(tr_client_connect(longp, 100, &c), -ENAMETOOLONG);
	assert_int_equal(tr_client_connect("", 100, &c), -EINVAL);
	assert_int_equal(tr_client_connect("/x", 100, NULL), -EINVAL);
	assert_int_equal(tr_client_fd(NULL), -1);
	assert_false(tr_client_wants_write(NULL));
	assert_int_equal(tr_client_process(NULL), -EINVAL);
	assert_null(tr_client_close(NULL));
	assert_null(tr_task_free(NULL));
	assert_null(tr_client_event_free(NULL));
	tr_client_error_done(NULL);

	setenv("TASKROUTERD_SOCKET", "/tmp/explicit", 1);
	p = tr_client_default_socket_path();
	assert_string_equal(p, "/tmp/explicit");
	free(p);
	unsetenv("TASKROUTERD_SOCKET");
	setenv("XDG_RUNTIME_DIR", "/run/user/42", 1);
	p = tr_client_default_socket_path();
	assert_string_equal(p, "/run/user/42/taskrouterd/socket");
	free(p);
	unsetenv("XDG_RUNTIME_DIR");
	p = tr_client_default_socket_path();
	assert_string_equal(p, "/run/taskrouterd/socket");
	free(p);
}

/* A server run by another user (nobody): it tells the parent on `ready` when it listens,
 * accepts two connections and exits with the number of request bytes it was sent. */
static int foreign_server(const char *dir, const char *path, int ready) {
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd, got = 0;

	if (chown(dir, 65534, 65534) < 0 || setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
		setuid(65534) < 0) {
		return 200;
	}
	strcpy(sa.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0 ||
		write(ready, "r", 1) != 1) {
		return 201;
	}
	for (int i = 0; i < 2; i++) {
		int fd = accept(lfd, NULL, NULL);
		char buf[256];
		ssize_t k;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};

		if (fd < 0) {
			return 202;
		}
		while (poll(&pfd, 1, 20000) > 0 && (k = read(fd, buf, sizeof(buf))) > 0) {
			got += (int)k;
		}
		close(fd);
	}
	return got > 100 ? 100 : got;
}

/* A socket served by another user is refused before anything is sent (a fake server in a
 * directory someone else could write to must not see our calls or tokens), unless that uid
 * is trusted explicitly with TASKROUTERD_TRUST_UID. */
static void test_server_credentials(void **state) {
	char dir[] = "/tmp/tr-cred-XXXXXX", path[64];
	struct tr_client *c = NULL;
	int pipefd[2], status = 0;
	char ch;
	pid_t pid;

	(void)state;
	if (getuid() != 0) {
		skip();
	}
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/socket", dir);
	assert_int_equal(pipe(pipefd), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pipefd[0]);
		_exit(foreign_server(dir, path, pipefd[1]));
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &ch, 1), 1);
	close(pipefd[0]);
	unsetenv("TASKROUTERD_TRUST_UID");
	assert_int_equal(tr_client_connect(path, 2000, &c), -EPERM);
	assert_null(c);
	setenv("TASKROUTERD_TRUST_UID", "65534", 1);
	assert_int_equal(tr_client_connect(path, 2000, &c), 0);
	c = tr_client_close(c);
	unsetenv("TASKROUTERD_TRUST_UID");
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0); /* nothing was sent to it */
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

static void script_params(struct server *s, int fd) {
	static const char *const expect[][3] = {
		{"task.hold", "\"targetWorkerSid\":\"WK1\"", "\"onHold\":true"},
		{"task.transfer", "\"mode\":\"WARM\"", "\"attributes\":{\"k\":\"v\"}"},
		{"task.setVirtualStartTime", "\"time\":1700000000", "\"sid\":\"WT1\""},
		{"task.setVirtualStartTime", "\"time\":\"2024-01-01T00:00:00Z\"", "WT1"},
		{"task.updateParticipant", "\"hold\":false", "\"holdUrl\":\"http://h\""},
		{"task.kick", "\"workerSid\":\"WK2\"", "WT1"},
		{"task.wrapUp", "\"sid\":\"WT1\"", "\"sid\""},
		{"task.fetchLatestVersion", "WT1", "WT1"},
		{"task.cancelTransfer", "WT1", "WT1"},
		{"task.setAttributes", "\"attributes\":{\"z\":1}", "WT1"},
		{"task.list", "\"status\":\"assigned\"", "params"},
	};

	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		char *req = srv_read(fd);
		char m[64];

		snprintf(m, sizeof(m), "\"method\":\"%s\"", expect[i][0]);
		if (!req || !strstr(req, m) || !strstr(req, expect[i][1]) ||
			!strstr(req, expect[i][2])) {
			fprintf(stderr, "# unexpected request %zu: %s\n", i, req ? req : "(none)");
			s->failures++;
		}
		if (i + 1 < sizeof(expect) / sizeof(expect[0])) {
			srv_sendf(fd,
				"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"sid\":\"WT1\"}}",
				req_id(req));
		} else {
			srv_sendf(fd, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"tasks\":[]}}",
				req_id(req));
		}
		free(req);
	}
	srv_wait_eof(fd);
}

static void test_typed_params(void **state) {
	struct server *s = server_start(script_params);
	struct tr_client *c = connect_to(s);
	struct tr_client_error e = {0};
	struct tr_task *t = NULL, **list = NULL;
	size_t n = 99;

	assert_int_equal(tr_client_task_hold(c, "WT1", "WK1", true, NULL, NULL, 2000, &t, &e), 0);
	assert_string_equal(tr_task_sid(t), "WT1");
	t = tr_task_free(t);
	assert_int_equal(tr_client_task_transfer(
				 c, "WT1", "WK9", "WARM", -1, "{\"k\":\"v\"}", 2000, NULL, &e),
		0);
	assert_int_equal(
		tr_client_task_set_virtual_start_time(c, "WT1", "1700000000", 2000, NULL, &e), 0);
	assert_int_equal(tr_client_task_set_virtual_start_time(
				 c, "WT1", "2024-01-01T00:00:00Z", 2000, NULL, &e),
		0);
	assert_int_equal(
		tr_client_task_update_participant(c, "WT1", 0, "http://h", NULL, 2000, NULL, &e),
		0);
	assert_int_equal(tr_client_task_kick(c, "WT1", "WK2", 2000, NULL, &e), 0);
	assert_int_equal(tr_client_task_wrap_up(c, "WT1", NULL, 2000, NULL, &e), 0);
	assert_int_equal(tr_client_task_fetch_latest_version(c, "WT1", 2000, NULL, &e), 0);
	assert_int_equal(tr_client_task_cancel_transfer(c, "WT1", 2000, NULL, &e), 0);
	/* Invalid arguments fail locally and send nothing. */
	assert_int_equal(tr_client_task_set_attributes(c, "WT1", "[1]", 2000, NULL, &e), -EINVAL);
	assert_int_equal(e.errnum, -EINVAL);
	assert_int_equal(tr_client_task_complete(c, "WT1", NULL, 2000, NULL, &e), -EINVAL);
	assert_int_equal(tr_client_call(c, "x", "not json", 2000, NULL, &e), -EINVAL);
	assert_int_equal(tr_client_call(c, NULL, NULL, 2000, NULL, &e), -EINVAL);
	assert_int_equal(tr_client_task_set_attributes(c, "WT1", "{\"z\":1}", 2000, NULL, &e), 0);
	assert_int_equal(tr_client_task_list(c, "assigned", 2000, &list, &n, &e), 0);
	assert_int_equal(n, 0);
	tr_task_list_free(list, n);
	tr_client_error_done(&e);
	tr_client_close(c);
	server_stop(s);
}

/* ------------------------------------------------------------------ reservations, worker */

#define RSV_TASK "{\"sid\":\"WT1\",\"status\":\"reserved\",\"queueName\":\"Q1\"}"
#define RSV(sid, status, timeout)                                                                  \
	"{\"sid\":\"" sid "\",\"status\":\"" status "\",\"version\":\"3\",\"timeout\":" timeout     \
	",\"taskSid\":\"WT1\",\"workerSid\":\"WK1\",\"task\":" RSV_TASK "}"
#define WORKER_JSON                                                                                \
	"{\"sid\":\"WK1\",\"name\":\"alice\",\"activitySid\":\"WA2\",\"activityName\":\"Break\","  \
	"\"available\":false,\"attributes\":{\"skills\":[\"fr\"]},\"version\":\"7\"}"
#define ACTIVITIES                                                                                 \
	"{\"activities\":[{\"sid\":\"WA1\",\"name\":\"Available\",\"available\":true,"              \
	"\"isCurrent\":false},{\"sid\":\"WA2\",\"name\":\"Break\",\"available\":false,"             \
	"\"isCurrent\":true},{\"sid\":\"WA3\",\"name\":\"WA1\",\"available\":false,"                \
	"\"isCurrent\":false}]}"

/* The requests the typed helpers must send, in order, and the answers. */
static const struct {
	const char *method, *params, *reply;
} worker_script[] = {
	{"reservation.list", "{\"status\":\"pending\"}",
		"\"result\":{\"reservations\":[" RSV("WR1", "pending", "120") "],\"next\":\"WR1\"}"},
	{"reservation.list", "{\"status\":\"pending\",\"after\":\"WR1\"}",
		"\"result\":{\"reservations\":[" RSV("WR2", "pending", "null") "],\"next\":null}"},
	{"reservation.get", "{\"sid\":\"WR1\"}", "\"result\":" RSV("WR1", "pending", "120")},
	{"reservation.accept", "{\"sid\":\"WT1\"}", "\"result\":" RSV("WR1", "accepted", "120")},
	{"reservation.reject", "{\"sid\":\"WR1\",\"activitySid\":\"WA2\"}",
		"\"result\":" RSV("WR1", "rejected", "null")},
	{"reservation.reject", "{\"sid\":\"WR2\"}", "\"result\":" RSV("WR2", "rejected", "null")},
	{"reservation.wrap", "{\"sid\":\"WR1\"}", "\"result\":" RSV("WR1", "wrapping", "null")},
	{"reservation.complete", "{\"sid\":\"WR1\"}", "\"result\":" RSV("WR1", "completed", "null")},
	{"reservation.accept", "{\"sid\":\"WR9\"}",
		"\"error\":{\"code\":-32004,\"message\":\"version conflict\","
		"\"data\":{\"currentVersion\":\"4\"}}"},
	{"reservation.get", "{\"sid\":\"WR1\"}", "\"result\":\"not an object\""},
	{"worker.get", "{}", "\"result\":" WORKER_JSON},
	{"worker.setActivity", "{\"activity\":\"Break\",\"rejectPendingReservations\":true}",
		"\"result\":" WORKER_JSON},
	{"worker.setActivity", "{\"activity\":\"WA1\"}", "\"result\":" WORKER_JSON},
	{"worker.setActivity", "{\"activity\":\"Lunch\"}",
		"\"error\":{\"code\":-32602,\"message\":\"unknown activity\",\"data\":{\"param\":"
		"\"activity\",\"values\":[\"Available\",\"Break\"]}}"},
	{"activity.list", "{}", "\"result\":" ACTIVITIES},
	{"activity.list", "{}", "\"result\":{\"activities\":3}"},
	/* a next that does not move on */
	{"reservation.list", "{}",
		"\"result\":{\"reservations\":[" RSV("WR1", "pending", "1") "],\"next\":\"WR1\"}"},
	{"reservation.list", "{\"after\":\"WR1\"}",
		"\"result\":{\"reservations\":[" RSV("WR1", "pending", "1") "],\"next\":\"WR1\"}"},
};

static void script_worker(struct server *s, int fd) {
	for (size_t i = 0; i < sizeof(worker_script) / sizeof(worker_script[0]); i++) {
		char *req = srv_read(fd);

		if (!req_is(req, worker_script[i].method, worker_script[i].params)) {
			fprintf(stderr, "# request %zu: expected %s %s, got %s\n", i,
				worker_script[i].method, worker_script[i].params,
				req ? req : "(none)");
			s->failures++;
		}
		srv_sendf(fd, "{\"jsonrpc\":\"2.0\",\"id\":%lld,%s}", req_id(req),
			worker_script[i].reply);
		free(req);
	}
	srv_wait_eof(fd);
}

static void test_reservations_and_worker(void **state) {
	struct server *s = server_start(script_worker);
	struct tr_client *c = connect_to(s);
	struct tr_client_error e = {0};
	struct tr_reservation **rs = NULL, *r = NULL, *r2;
	struct tr_worker *w = NULL;
	struct tr_activity **as = NULL;
	const struct tr_activity *a;
	const struct tr_task *t;
	size_t n = 0;
	int64_t v;
	bool b;
	char *j;

	/* Both pages, with the status filter on each. */
	assert_int_equal(tr_client_reservation_list(c, "pending", 2000, &rs, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(tr_reservation_sid(rs[0]), "WR1");
	assert_int_equal(tr_reservation_timeout(rs[0]), 120);
	assert_string_equal(tr_reservation_sid(rs[1]), "WR2");
	assert_int_equal(tr_reservation_timeout(rs[1]), -1); /* null: unknown */
	tr_reservation_list_free(rs, n);

	assert_int_equal(tr_client_reservation_get(c, "WR1", 2000, &r, &e), 0);
	assert_string_equal(tr_reservation_status(r), "pending");
	r = tr_reservation_free(r);
	/* A task sid is passed through as is. */
	assert_int_equal(tr_client_reservation_accept(c, "WT1", 2000, &r, &e), 0);
	assert_string_equal(tr_reservation_sid(r), "WR1");
	assert_string_equal(tr_reservation_status(r), "accepted");
	assert_string_equal(tr_reservation_version(r), "3");
	assert_string_equal(tr_reservation_task_sid(r), "WT1");
	assert_string_equal(tr_reservation_worker_sid(r), "WK1");
	t = tr_reservation_task(r);
	assert_non_null(t);
	assert_string_equal(tr_task_status(t), "reserved");
	assert_string_equal(tr_task_queue_name(t), "Q1");
	/* The copy has its own task. */
	r2 = tr_reservation_dup(r);
	r = tr_reservation_free(r);
	assert_string_equal(tr_task_sid(tr_reservation_task(r2)), "WT1");
	j = tr_reservation_to_json(r2);
	assert_string_equal(j, RSV("WR1", "accepted", "120"));
	free(j);
	j = tr_reservation_get_json(r2, "task");
	assert_string_equal(j, RSV_TASK);
	free(j);
	assert_int_equal(tr_reservation_get_int(r2, "timeout", &v), 0);
	assert_int_equal(v, 120);
	assert_int_equal(tr_reservation_get_int(r2, "sid", &v), -EINVAL);
	assert_int_equal(tr_reservation_get_bool(r2, "nope", &b), -ENOENT);
	assert_string_equal(tr_reservation_get_string(r2, "workerSid"), "WK1");
	r2 = tr_reservation_free(r2);

	assert_int_equal(tr_client_reservation_reject(c, "WR1", "WA2", 2000, &r, &e), 0);
	assert_string_equal(tr_reservation_status(r), "rejected");
	r = tr_reservation_free(r);
	assert_int_equal(tr_client_reservation_reject(c, "WR2", NULL, 2000, NULL, &e), 0);
	assert_int_equal(tr_client_reservation_wrap(c, "WR1", 2000, NULL, &e), 0);
	assert_int_equal(tr_client_reservation_complete(c, "WR1", 2000, &r, &e), 0);
	assert_string_equal(tr_reservation_status(r), "completed");
	r = tr_reservation_free(r);

	/* A daemon error comes back whole; a result of the wrong shape is -EBADMSG. */
	assert_int_equal(tr_client_reservation_accept(c, "WR9", 2000, &r, &e), -EREMOTEIO);
	assert_null(r);
	assert_int_equal(e.code, TR_CLIENT_VERSION_CONFLICT);
	assert_string_equal(e.data, "{\"currentVersion\":\"4\"}");
	assert_int_equal(tr_client_reservation_get(c, "WR1", 2000, &r, &e), -EBADMSG);
	assert_null(r);
	assert_int_equal(e.errnum, -EBADMSG);
	assert_int_equal(e.code, 0);

	assert_int_equal(tr_client_worker_get(c, 2000, &w, &e), 0);
	assert_string_equal(tr_worker_sid(w), "WK1");
	assert_string_equal(tr_worker_name(w), "alice");
	assert_string_equal(tr_worker_activity_sid(w), "WA2");
	assert_string_equal(tr_worker_activity_name(w), "Break");
	assert_string_equal(tr_worker_version(w), "7");
	assert_false(tr_worker_available(w));
	assert_int_equal(tr_worker_get_bool(w, "available", &b), 0);
	assert_false(b);
	j = tr_worker_attributes(w);
	assert_string_equal(j, "{\"skills\":[\"fr\"]}");
	free(j);
	w = tr_worker_free(w);
	assert_int_equal(tr_client_worker_set_activity(c, "Break", true, 2000, &w, &e), 0);
	assert_string_equal(tr_worker_activity_name(w), "Break");
	w = tr_worker_free(w);
	assert_int_equal(tr_client_worker_set_activity(c, "WA1", false, 2000, NULL, &e), 0);
	assert_int_equal(tr_client_worker_set_activity(c, "Lunch", false, 2000, &w, &e), -EREMOTEIO);
	assert_null(w);
	assert_int_equal(e.code, TR_CLIENT_INVALID_PARAMS);
	assert_non_null(strstr(e.data, "\"values\":[\"Available\",\"Break\"]"));

	assert_int_equal(tr_client_activity_list(c, 2000, &as, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(tr_activity_name(as[0]), "Available");
	assert_true(tr_activity_available(as[0]));
	assert_false(tr_activity_is_current(as[0]));
	assert_true(tr_activity_is_current(as[1]));
	assert_false(tr_activity_available(as[1]));
	/* A sid wins over a name that looks like one; names match exactly. */
	a = tr_activity_list_find(as, n, "WA1");
	assert_ptr_equal(a, as[0]);
	a = tr_activity_list_find(as, n, "Break");
	assert_string_equal(tr_activity_sid(a), "WA2");
	assert_null(tr_activity_list_find(as, n, "break"));
	assert_null(tr_activity_list_find(as, n, NULL));
	tr_activity_list_free(as, n);
	as = NULL;
	assert_int_equal(tr_client_activity_list(c, 2000, &as, &n, &e), -EBADMSG);
	assert_null(as);
	assert_int_equal(tr_client_reservation_list(c, NULL, 2000, &rs, &n, &e), -EBADMSG);

	/* Bad arguments fail locally and send nothing (the script has no more requests). */
	assert_int_equal(tr_client_reservation_accept(c, NULL, 2000, &r, &e), -EINVAL);
	assert_int_equal(e.errnum, -EINVAL);
	assert_int_equal(tr_client_reservation_reject(NULL, "WR1", NULL, 2000, &r, &e), -EINVAL);
	assert_int_equal(tr_client_worker_set_activity(c, NULL, false, 2000, &w, &e), -EINVAL);
	assert_int_equal(tr_client_worker_get(NULL, 2000, &w, &e), -EINVAL);
	assert_int_equal(tr_client_activity_list(c, 2000, NULL, &n, &e), -EINVAL);
	assert_int_equal(tr_client_reservation_list(c, NULL, 2000, &rs, NULL, &e), -EINVAL);
	tr_client_error_done(&e);
	tr_client_close(c);
	server_stop(s);
}

/* The parsers and accessors on their own. */
static void test_object_parsers(void **state) {
	struct tr_reservation **rs = NULL, *r = NULL;
	struct tr_activity **as = NULL, *a = NULL;
	struct tr_worker *w = NULL;
	size_t n = 9;
	int64_t v;

	assert_int_equal(tr_reservation_list_parse(
				 "{\"reservations\":[" RSV("WR1", "pending", "5") "]}", &rs, &n),
		0);
	assert_int_equal(n, 1);
	assert_string_equal(tr_task_sid(tr_reservation_task(rs[0])), "WT1");
	tr_reservation_list_free(rs, n);
	assert_int_equal(tr_reservation_list_parse("{\"reservations\":[1]}", &rs, &n), -EBADMSG);
	assert_int_equal(tr_reservation_list_parse("{", &rs, &n), -EBADMSG);
	assert_int_equal(tr_reservation_list_parse(NULL, &rs, &n), -EINVAL);
	assert_int_equal(tr_activity_list_parse(ACTIVITIES, &as, &n), 0);
	assert_int_equal(n, 3);
	tr_activity_list_free(as, n);
	tr_activity_list_free(NULL, 0);
	tr_reservation_list_free(NULL, 0);

	/* A reservation without a task, or with a task that is not an object. */
	assert_int_equal(tr_reservation_parse("{\"sid\":\"WR1\",\"task\":null}", &r), 0);
	assert_null(tr_reservation_task(r));
	assert_int_equal(tr_reservation_timeout(r), -1);
	assert_null(tr_reservation_status(r));
	r = tr_reservation_free(r);
	assert_int_equal(tr_reservation_parse("[]", &r), -EBADMSG);
	assert_null(r);
	assert_int_equal(tr_worker_parse("{\"available\":\"yes\"}", &w), 0);
	assert_false(tr_worker_available(w)); /* not a boolean */
	assert_null(tr_worker_attributes(w));
	assert_int_equal(tr_worker_get_int(w, "version", &v), -ENOENT);
	w = tr_worker_free(w);
	assert_int_equal(tr_activity_parse("{\"isCurrent\":true}", &a), 0);
	assert_true(tr_activity_is_current(a));
	assert_null(tr_activity_sid(a));
	a = tr_activity_free(a);

	/* NULL objects are harmless. */
	assert_null(tr_reservation_sid(NULL));
	assert_null(tr_reservation_task(NULL));
	assert_int_equal(tr_reservation_timeout(NULL), -1);
	assert_false(tr_worker_available(NULL));
	assert_null(tr_worker_attributes(NULL));
	assert_null(tr_activity_to_json(NULL));
	assert_null(tr_worker_dup(NULL));
	assert_int_equal(tr_activity_get_int(NULL, "x", &v), -EINVAL);
}

static void on_reply_reenter(struct tr_client *c, const char *result,
	const struct tr_client_error *err, void *userdata) {
	int *rets = userdata;
	struct tr_client_event *ev = NULL;

	rets[0] = tr_client_call(c, "again", NULL, 1000, NULL, NULL);
	rets[1] = tr_client_process(c);
	rets[2] = tr_client_next_event(c, 0, &ev);
	rets[3] = err ? err->errnum : 1;
}

/* A callback that tries to read again is refused instead of corrupting the stream. */
static void test_reentry_refused(void **state) {
	struct server *s = server_start(script_bytewise);
	struct tr_client *c = connect_to(s);
	int rets[4] = {0, 0, 0, 0};

	assert_int_equal(tr_client_call_async(c, "daemon.status", "{\"x\":1}", 3000,
				 on_reply_reenter, rets, NULL),
		0);
	pump_until(c, &rets[3], 1);
	assert_int_equal(rets[3], 1);
	assert_int_equal(rets[0], -EDEADLK);
	assert_int_equal(rets[1], -EDEADLK);
	assert_int_equal(rets[2], -EDEADLK);
	/* Still usable afterwards. */
	assert_int_equal(tr_client_process(c), 0);
	tr_client_close(c);
	server_stop(s);
}

/* ------------------------------------------------------------------ foreign loops */

/* Run a loop that watches the fd for POLLIN only (never POLLOUT, as a naive foreign loop
 * would) until *counter reaches want; fails the test on a dead connection. */
static void pump_in_only(struct tr_client *c, const int *counter, int want) {
	int64_t deadline = now_ms() + 20000;

	while (*counter < want && now_ms() < deadline) {
		struct pollfd pfd = {.fd = tr_client_fd(c), .events = POLLIN};
		int t = tr_client_timeout_ms(c);

		(void)poll(&pfd, 1, t < 0 || t > 1000 ? 1000 : t);
		assert_int_equal(tr_client_process(c), 0);
	}
}

/* Answer one request with {"n":0} (after reading all of it), then wait for EOF. */
static void script_answer_one(struct server *s, int fd) {
	char *req = srv_read(fd);

	if (!req) {
		s->failures++;
	} else {
		srv_sendf(
			fd, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"n\":0}}", req_id(req));
	}
	free(req);
	srv_wait_eof(fd);
}

/* The request goes out from tr_client_call_async itself: the server answers although the
 * loop never asked for POLLOUT and nothing was processed before the answer came. */
static void test_async_written_at_once(void **state) {
	struct server *s = server_start(script_answer_one);
	struct tr_client *c = connect_to(s);
	struct replies r = {0};
	struct pollfd pfd = {.fd = tr_client_fd(c), .events = POLLIN};

	assert_int_equal(tr_client_events(c), POLLIN);
	assert_int_equal(tr_client_call_async(c, "x", NULL, 10000, on_reply, &r, NULL), 0);
	assert_false(tr_client_wants_write(c));
	assert_int_equal(tr_client_events(c), POLLIN);
	/* The reply is readable without any tr_client_process: the request was sent. */
	assert_int_equal(poll(&pfd, 1, SRV_DEADLINE_MS), 1);
	assert_true(pfd.revents & POLLIN);
	pump_in_only(c, &r.count, 1);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.n_of[0], 0);
	assert_int_equal(tr_client_timeout_ms(c), -1);
	tr_client_close(c);
	server_stop(s);
}

/* Read nothing until the test says so (a byte on the pipe in s->user), then answer. */
static void script_read_late(struct server *s, int fd) {
	int *go = s->user;
	char b;
	struct pollfd pfd = {.fd = go[0], .events = POLLIN};

	if (poll(&pfd, 1, SRV_DEADLINE_MS) != 1 || read(go[0], &b, 1) != 1) {
		s->failures++;
		return;
	}
	script_answer_one(s, fd);
}

/* A request larger than the socket buffer: what fits is written at once, the rest waits
 * for POLLOUT, which tr_client_events asks for until it is out. */
static void test_async_partial_write(void **state) {
	int go[2];
	struct server *s;
	struct tr_client *c;
	struct replies r = {0};
	size_t n = 900 * 1024;
	char *params = malloc(n + 16);
	int64_t deadline = now_ms() + 20000;

	assert_non_null(params);
	assert_int_equal(pipe(go), 0);
	s = server_start_n(script_read_late, 1, go);
	c = connect_to(s);
	memcpy(params, "{\"b\":\"", 6);
	memset(params + 6, 'x', n);
	memcpy(params + 6 + n, "\"}", 3);
	assert_int_equal(tr_client_call_async(c, "big", params, 10000, on_reply, &r, NULL), 0);
	free(params);
	assert_true(tr_client_wants_write(c));
	assert_int_equal(tr_client_events(c), POLLIN | POLLOUT);
	assert_int_equal(write(go[1], "g", 1), 1);
	while (r.count < 1 && now_ms() < deadline) {
		int ev = tr_client_events(c);
		struct pollfd pfd = {.fd = tr_client_fd(c), .events = (short)ev};

		assert_true(ev > 0);
		(void)poll(&pfd, 1, 1000);
		assert_int_equal(tr_client_process(c), 0);
	}
	assert_int_equal(r.count, 1);
	assert_int_equal(r.n_of[0], 0);
	assert_int_equal(tr_client_events(c), POLLIN);
	tr_client_close(c);
	server_stop(s);
	close(go[0]);
	close(go[1]);
}

/* A deadline with no input at all: the loop's poll times out after tr_client_timeout_ms, and
 * tr_client_process fails the call. */
static void test_timeout_from_loop(void **state) {
	struct server *s = server_start(script_silent);
	struct tr_client *c = connect_to(s);
	struct replies r = {0};
	int64_t t0 = now_ms();
	int polls = 0, t;

	assert_int_equal(tr_client_timeout_ms(c), -1);
	assert_int_equal(tr_client_call_async(c, "x", NULL, 150, on_reply, &r, NULL), 0);
	t = tr_client_timeout_ms(c);
	assert_true(t > 0 && t <= 150);
	while (r.count == 0 && polls < 100) {
		struct pollfd pfd = {.fd = tr_client_fd(c), .events = (short)tr_client_events(c)};

		t = tr_client_timeout_ms(c);
		assert_true(t >= 0 && t <= 150);
		assert_int_equal(poll(&pfd, 1, t), 0); /* no input ever comes */
		assert_int_equal(tr_client_process(c), 0);
		polls++;
	}
	assert_int_equal(r.count, 1);
	assert_int_equal(r.errnum[0], -ETIMEDOUT);
	assert_true(now_ms() - t0 >= 150);
	assert_int_equal(tr_client_timeout_ms(c), -1);
	assert_int_equal(tr_client_events(c), POLLIN);
	tr_client_close(c);
	server_stop(s);
}

/* Two events in one write (so one read gets both), no reply: for the queue test. */
static void script_two_events(struct server *s, int fd) {
	char buf[512];
	size_t n = 0;

	(void)s;
	n += put_frame(buf + n, "{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":"
				"{\"seq\":1,\"event\":\"updated\",\"taskSid\":\"WT1\"}}");
	n += put_frame(buf + n, "{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":"
				"{\"seq\":2,\"event\":\"updated\",\"taskSid\":\"WT1\"}}");
	write_full(fd, buf, n);
	srv_wait_eof(fd);
}

/* Close without reading anything. */
static void script_close_at_once(struct server *s, int fd) {
	(void)s;
	(void)fd;
}

/* What tr_client_events and tr_client_timeout_ms say in each state. */
static void test_events_and_timeout_values(void **state) {
	struct server *s;
	struct tr_client *c;
	struct tr_client_event *ev = NULL;
	struct replies r = {0};
	struct evcount ec = {0};
	struct pollfd pfd;
	int t;

	assert_int_equal(tr_client_events(NULL), -EINVAL);
	assert_int_equal(tr_client_timeout_ms(NULL), -1);

	/* Deadlines: the earliest counts; calls without one do not. */
	s = server_start(script_silent);
	c = connect_to(s);
	assert_int_equal(tr_client_events(c), POLLIN);
	assert_int_equal(tr_client_timeout_ms(c), -1);
	assert_int_equal(tr_client_call_async(c, "a", NULL, -1, on_reply, &r, NULL), 0);
	assert_int_equal(tr_client_timeout_ms(c), -1);
	assert_int_equal(tr_client_call_async(c, "b", NULL, 60000, on_reply, &r, NULL), 0);
	t = tr_client_timeout_ms(c);
	assert_true(t > 50000 && t <= 60000);
	assert_int_equal(tr_client_call_async(c, "c", NULL, 30000, on_reply, &r, NULL), 0);
	t = tr_client_timeout_ms(c);
	assert_true(t > 20000 && t <= 30000);
	assert_int_equal(tr_client_call_async(c, "d", NULL, 0, on_reply, &r, NULL), 0);
	assert_int_equal(tr_client_timeout_ms(c), 0); /* passed: process now */
	assert_int_equal(tr_client_process(c), 0);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.errnum[0], -ETIMEDOUT);
	t = tr_client_timeout_ms(c);
	assert_true(t > 20000 && t <= 30000);
	tr_client_close(c);
	assert_int_equal(r.count, 4); /* the rest cancelled */
	server_stop(s);

	/* Events queued before the callback is set: process has work without input. */
	s = server_start(script_two_events);
	c = connect_to(s);
	assert_int_equal(tr_client_next_event(c, 5000, &ev), 1); /* reads both */
	tr_client_event_free(ev);
	assert_int_equal(tr_client_timeout_ms(c), -1); /* no callback: they wait in the queue */
	tr_client_set_event_cb(c, on_event, &ec);
	assert_int_equal(tr_client_timeout_ms(c), 0);
	assert_int_equal(tr_client_process(c), 0);
	assert_int_equal(ec.n, 1);
	assert_int_equal(ec.last_seq, 2);
	assert_int_equal(tr_client_timeout_ms(c), -1);
	tr_client_close(c);
	server_stop(s);

	/* A send that finds the connection broken: not reported by call_async (no callback
	 * fires there), but at once by the next process. */
	memset(&r, 0, sizeof(r));
	s = server_start(script_close_at_once);
	c = connect_to(s);
	pfd = (struct pollfd){.fd = tr_client_fd(c), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, SRV_DEADLINE_MS), 1); /* the server hung up */
	server_stop(s);
	assert_int_equal(tr_client_call_async(c, "x", NULL, 60000, on_reply, &r, NULL), 0);
	assert_int_equal(r.count, 0);
	assert_int_equal(tr_client_timeout_ms(c), 0);
	assert_true(tr_client_events(c) & POLLIN);
	assert_int_equal(tr_client_process(c), -ECONNRESET);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.errnum[0], -ECONNRESET);
	/* Dead: events says so with the same errno; nothing is due. */
	assert_int_equal(tr_client_events(c), -ECONNRESET);
	assert_false(tr_client_wants_write(c));
	assert_int_equal(tr_client_timeout_ms(c), -1);
	tr_client_close(c);
}

/* ------------------------------------------------------------------ any result */

#define STATUS_JSON                                                                                \
	"{\"version\":\"0.1.0\",\"state\":\"ready\",\"upstream\":{\"state\":\"open\","             \
	"\"attempts\":0,\"since\":null,\"ok\":true},\"connections\":3,\"ratio\":1.5,"              \
	"\"tasks\":[{\"sid\":\"WT1\"},{\"sid\":\"WT2\",\"tags\":[\"a\",\"b\"]}],"                  \
	"\"counters\":{\"frameErrors\":0,\"parseErrors\":2},\"7\":\"seven\"}"

static void test_result_paths(void **state) {
	struct tr_result *r = NULL, *d;
	int64_t v = 42;
	bool b = false;
	char *s;

	assert_int_equal(tr_result_parse(STATUS_JSON, &r), 0);
	assert_string_equal(tr_result_get_string(r, "state"), "ready");
	assert_string_equal(tr_result_get_string(r, "upstream.state"), "open");
	assert_string_equal(tr_result_get_string(r, "tasks.1.sid"), "WT2");
	assert_string_equal(tr_result_get_string(r, "tasks.1.tags.0"), "a");
	assert_string_equal(tr_result_get_string(r, "7"), "seven"); /* a member named by digits */
	assert_null(tr_result_get_string(r, "tasks.2.sid"));        /* past the end */
	assert_null(tr_result_get_string(r, "tasks.x"));
	assert_null(tr_result_get_string(r, "tasks.-1"));
	assert_null(tr_result_get_string(r, "upstream."));
	assert_null(tr_result_get_string(r, ".state"));
	assert_null(tr_result_get_string(r, "upstream.state.more"));
	assert_null(tr_result_get_string(r, "connections")); /* not a string */
	assert_null(tr_result_get_string(r, "stat"));        /* a prefix is not a match */

	assert_int_equal(tr_result_get_int(r, "connections", &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(tr_result_get_int(r, "counters.parseErrors", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(tr_result_get_int(r, "upstream.since", &v), -ENOENT); /* null */
	assert_int_equal(tr_result_get_int(r, "nope", &v), -ENOENT);
	assert_int_equal(tr_result_get_int(r, "ratio", &v), -EINVAL);
	assert_int_equal(tr_result_get_int(r, "state", &v), -EINVAL);
	assert_int_equal(v, 2); /* untouched on failure */
	assert_int_equal(tr_result_get_int(r, "connections", NULL), -EINVAL);
	assert_int_equal(tr_result_get_bool(r, "upstream.ok", &b), 0);
	assert_true(b);
	assert_int_equal(tr_result_get_bool(r, "connections", &b), -EINVAL);
	assert_int_equal(tr_result_get_bool(r, "upstream.since", &b), -ENOENT);

	assert_int_equal(tr_result_length(r, "tasks"), 2);
	assert_int_equal(tr_result_length(r, "tasks.1.tags"), 2);
	assert_int_equal(tr_result_length(r, "counters"), 2);
	assert_int_equal(tr_result_length(r, NULL), 8);
	assert_int_equal(tr_result_length(r, "state"), -EINVAL);
	assert_int_equal(tr_result_length(r, "upstream.since"), -ENOENT);
	assert_int_equal(tr_result_length(r, "missing"), -ENOENT);
	assert_string_equal(tr_result_key(r, "counters", 0), "frameErrors");
	assert_string_equal(tr_result_key(r, "counters", 1), "parseErrors");
	assert_null(tr_result_key(r, "counters", 2));
	assert_null(tr_result_key(r, "tasks", 0));
	assert_string_equal(tr_result_key(r, "", 0), "version");

	s = tr_result_get_json(r, "tasks.1");
	assert_string_equal(s, "{\"sid\":\"WT2\",\"tags\":[\"a\",\"b\"]}");
	free(s);
	s = tr_result_get_json(r, "upstream.since");
	assert_string_equal(s, "null");
	free(s);
	assert_null(tr_result_get_json(r, "missing"));
	d = tr_result_dup(r);
	r = tr_result_free(r);
	assert_null(r);
	s = tr_result_get_json(d, NULL);
	assert_non_null(strstr(s, "\"parseErrors\":2"));
	free(s);
	tr_result_free(d);

	/* Not only objects; and NULL is absent. */
	assert_int_equal(tr_result_parse("[10,true]", &r), 0);
	assert_int_equal(tr_result_get_int(r, "0", &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(tr_result_get_bool(r, "1", &b), 0);
	assert_int_equal(tr_result_length(r, ""), 2);
	r = tr_result_free(r);
	assert_int_equal(tr_result_parse("{", &r), -EBADMSG);
	assert_int_equal(tr_result_parse(NULL, &r), -EINVAL);
	assert_int_equal(tr_result_parse("{}", NULL), -EINVAL);
	assert_null(r);
	assert_null(tr_result_get_string(NULL, "a"));
	assert_int_equal(tr_result_get_int(NULL, "a", &v), -EINVAL);
	assert_int_equal(tr_result_length(NULL, "a"), -EINVAL);
	assert_null(tr_result_key(NULL, NULL, 0));
	assert_null(tr_result_get_json(NULL, NULL));
	assert_null(tr_result_dup(NULL));
	assert_null(tr_result_free(NULL));
}

static void script_status(struct server *s, int fd) {
	char *req = srv_read(fd);

	if (!req_is(req, "daemon.status", NULL)) {
		s->failures++;
	}
	srv_sendf(fd, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":" STATUS_JSON "}", req_id(req));
	free(req);
	req = srv_read(fd);
	if (!req_is(req, "task.get", "{\"sid\":\"WT9\"}")) {
		s->failures++;
	}
	srv_sendf(fd,
		"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32001,\"message\":"
		"\"no such task\"}}",
		req_id(req));
	free(req);
	srv_wait_eof(fd);
}

static void test_call_result(void **state) {
	struct server *s = server_start(script_status);
	struct tr_client *c = connect_to(s);
	struct tr_client_error e = {0};
	struct tr_result *r = NULL;
	int64_t v = 0;

	assert_int_equal(tr_client_call_result(c, "daemon.status", NULL, 5000, &r, &e), 0);
	assert_null(e.message);
	assert_string_equal(tr_result_get_string(r, "upstream.state"), "open");
	assert_int_equal(tr_result_get_int(r, "connections", &v), 0);
	assert_int_equal(v, 3);
	r = tr_result_free(r);
	assert_int_equal(tr_client_call_result(c, "task.get", "{\"sid\":\"WT9\"}", 5000, &r, &e),
		-EREMOTEIO);
	assert_null(r);
	assert_int_equal(e.code, TR_CLIENT_NOT_FOUND);
	assert_int_equal(tr_client_call_result(c, "x", "[1]", 5000, &r, &e), -EINVAL);
	assert_int_equal(e.errnum, -EINVAL);
	assert_int_equal(tr_client_call_result(NULL, "x", NULL, 5000, &r, &e), -EINVAL);
	tr_client_error_done(&e);
	tr_client_close(c);
	server_stop(s);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_bytewise),
		cmocka_unit_test(test_many_frames_one_write),
		cmocka_unit_test(test_structured_error),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_next_event_timeout),
		cmocka_unit_test(test_server_gone_mid_call),
		cmocka_unit_test(test_oversize_frame),
		cmocka_unit_test(test_invalid_json),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_events_interleaved_typed),
		cmocka_unit_test(test_subscribe_replay_gone),
		cmocka_unit_test(test_subscribe_resume),
		cmocka_unit_test(test_close_cancels_async),
		cmocka_unit_test(test_bad_args_and_connect),
		cmocka_unit_test(test_server_credentials),
		cmocka_unit_test(test_typed_params),
		cmocka_unit_test(test_reservations_and_worker),
		cmocka_unit_test(test_object_parsers),
		cmocka_unit_test(test_reentry_refused),
		cmocka_unit_test(test_async_written_at_once),
		cmocka_unit_test(test_async_partial_write),
		cmocka_unit_test(test_timeout_from_loop),
		cmocka_unit_test(test_events_and_timeout_values),
		cmocka_unit_test(test_result_paths),
		cmocka_unit_test(test_call_result),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
