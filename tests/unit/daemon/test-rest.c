/*
 * Unit tests of daemon/rest.c: body building, classification, retry delays (pure), and
 * the curl-on-uv machinery against a tiny HTTP server in this process (127.0.0.1, port 0):
 * success with headers and body checked, 500 without retry for POST, 429 then 200 and 5xx
 * retries for GET, a hang → timeout, non-JSON bodies, connection refused, cancel on close.
 */
#include <curl/curl.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <uv.h>

#include "json.h"
#include "rest.h"

/* ---- pure ---- */

static struct tr_json *parse(const char *s) {
	struct tr_json *j = NULL;
	assert_int_equal(tr_json_parse(s, strlen(s), &j, NULL), 0);
	return j;
}

static void test_body(void **state) {
	struct tr_json *params = parse("{\"Attributes\":{\"a\":1},\"Hold\":true,\"PageSize\":5}");
	struct tr_upstream_request req = {.path = "Workspaces/WS1/Tasks/WT1", .method = "POST",
		.api_version = "v1", .params = params, .if_match = 3};
	struct tr_json *body;
	char *s = NULL;
	size_t n = 0;
	(void)state;
	assert_int_equal(tr_rest_build_body(&req, "h.p.s", &s, &n), 0);
	assert_int_equal(strlen(s), n);
	/* members in the SDK's order */
	assert_true(strncmp(s, "{\"url\":\"Workspaces/WS1/Tasks/WT1\",\"method\":\"POST\",\"params\":", 58) == 0);
	body = parse(s);
	assert_string_equal(tr_json_get_string(body, "token"), "h.p.s");
	assert_true(tr_json_is(tr_json_get(tr_json_get(body, "params"), "Attributes"), TR_JSON_OBJECT));
	assert_int_equal(tr_json_get(tr_json_get(body, "params"), "Hold")->type, TR_JSON_TRUE);
	assert_true(tr_json_is_int(tr_json_get(tr_json_get(body, "params"), "PageSize")));
	tr_json_free(body);
	free(s);
	/* no params: {} */
	req.params = NULL;
	assert_int_equal(tr_rest_build_body(&req, "t", &s, NULL), 0);
	body = parse(s);
	assert_true(tr_json_is(tr_json_get(body, "params"), TR_JSON_OBJECT));
	assert_int_equal(tr_json_get(body, "params")->u.obj.n, 0);
	tr_json_free(body);
	free(s);
	/* refused: params not an object, no path, no token */
	tr_json_free(params);
	params = parse("[1]");
	req.params = params;
	assert_int_equal(tr_rest_build_body(&req, "t", &s, NULL), -EINVAL);
	req.params = NULL;
	req.path = NULL;
	assert_int_equal(tr_rest_build_body(&req, "t", &s, NULL), -EINVAL);
	req.path = "x";
	assert_int_equal(tr_rest_build_body(&req, NULL, &s, NULL), -EINVAL);
	tr_json_free(params);
}

static void test_classify(void **state) {
	static const struct {
		int cc;
		long status;
		const char *body;
		int err;
		int64_t code;
		const char *message; /* substring; NULL: message must be NULL */
		bool maybe_sent;
		bool transient;
	} t[] = {
		{CURLE_OK, 200, "{\"payload\":{\"sid\":\"WT1\"}}", 0, 0, NULL, true, false},
		{CURLE_OK, 204, "{\"payload\":null}", 0, 0, NULL, true, false},
		{CURLE_OK, 200, "not json", -EBADMSG, 0, "not JSON", true, false},
		{CURLE_OK, 200, "", -EBADMSG, 0, "not JSON", true, false},
		{CURLE_OK, 200, "{\"data\":1}", -EBADMSG, 0, "payload", true, false},
		{CURLE_OK, 200, "[1]", -EBADMSG, 0, "payload", true, false},
		{CURLE_OK, 400, "{\"message\":\"bad param\",\"code\":20001}", 0, 20001, "bad param", true, false},
		{CURLE_OK, 412, "{\"status\":412,\"code\":20412,\"message\":\"version mismatch\"}", 0, 20412, "version mismatch", true, false},
		{CURLE_OK, 401, "{\"message\":\"expired\"}", 0, 0, "expired", true, false},
		{CURLE_OK, 429, "{\"message\":\"slow down\"}", 0, 0, "slow down", true, true},
		{CURLE_OK, 500, "<html>oops</html>", 0, 0, "HTTP status 500", true, true},
		{CURLE_OK, 503, "", 0, 0, "HTTP status 503", true, true},
		{CURLE_OK, 502, "{\"message\":7}", 0, 0, "HTTP status 502", true, true},
		{CURLE_OPERATION_TIMEDOUT, 0, NULL, -ETIMEDOUT, 0, "timed out", true, true},
		{CURLE_COULDNT_CONNECT, 0, NULL, -ECONNREFUSED, 0, "Network error", false, true},
		{CURLE_COULDNT_RESOLVE_HOST, 0, NULL, -EHOSTUNREACH, 0, "Network error", false, true},
		{CURLE_PEER_FAILED_VERIFICATION, 0, NULL, -EIO, 0, "Network error", false, true},
		{CURLE_RECV_ERROR, 0, NULL, -EIO, 0, "Network error", true, true},
		{CURLE_GOT_NOTHING, 0, NULL, -EIO, 0, "Network error", true, true},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tr_rest_outcome o;
		tr_rest_classify(t[i].cc, t[i].status, t[i].body, t[i].body ? strlen(t[i].body) : 0,
			"detail", &o);
		if (o.reply.err != t[i].err) {
			fail_msg("case %zu: err %d want %d", i, o.reply.err, t[i].err);
		}
		assert_int_equal(o.reply.twilio_code, t[i].code);
		assert_int_equal(o.reply.maybe_sent, t[i].maybe_sent);
		if (t[i].message) {
			assert_non_null(o.reply.message);
			if (!strstr(o.reply.message, t[i].message)) {
				fail_msg("case %zu: message '%s' lacks '%s'", i, o.reply.message,
					t[i].message);
			}
		} else {
			assert_null(o.reply.message);
		}
		if (t[i].err == 0 && t[i].status < 300) {
			assert_non_null(o.reply.payload);
		} else {
			assert_null(o.reply.payload);
		}
		assert_int_equal(tr_rest_reply_is_transient(&o.reply), t[i].transient);
		tr_rest_outcome_done(&o);
	}
}

/* An error message longer than the buffer is cut at a character boundary: whatever the
 * offset of the cut inside a 2-, 3- or 4-byte sequence, the text stays valid UTF-8 and is a
 * prefix of the original. (fuzz-rest found the cut mid-sequence.) */
static void test_classify_long_message(void **state) {
	static const char *const chars[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };

	(void)state;
	for (size_t c = 0; c < 3; c++) {
		for (size_t lead = 0; lead < 4; lead++) {
			char msg[1200] = "", body[1400], quoted[700];
			struct tr_rest_outcome o;
			struct tr_json *j = NULL;
			size_t n;

			memset(msg, 'a', lead);
			msg[lead] = '\0';
			while (strlen(msg) < 700) {
				strcat(msg, chars[c]);
			}
			snprintf(body, sizeof(body), "{\"message\":\"%s\",\"code\":20001}", msg);
			tr_rest_classify(CURLE_OK, 400, body, strlen(body), "detail", &o);
			assert_non_null(o.reply.message);
			n = strlen(o.reply.message);
			assert_true(n < sizeof(o.message) && n + 4 >= sizeof(o.message) - 1);
			assert_memory_equal(o.reply.message, msg, n);
			snprintf(quoted, sizeof(quoted), "\"%s\"", o.reply.message);
			if (tr_json_parse(quoted, strlen(quoted), &j, NULL) != 0) {
				fail_msg("char %zu lead %zu: cut message is not valid UTF-8", c, lead);
			}
			tr_json_free(j);
			tr_rest_outcome_done(&o);
		}
	}
}

/* REST retry delays: exponential with half jitter, capped. */
static void test_retry_delay(void **state) {
	(void)state;
	for (unsigned a = 1; a <= 10; a++) {
		uint64_t base = 250u << (a - 1 > 4 ? 4 : a - 1);
		if (base > 2000) {
			base = 2000;
		}
		assert_int_equal(tr_rest_retry_delay_ms(a, 0), base / 2);
		assert_true(tr_rest_retry_delay_ms(a, 0xffffffffu) <= base);
		assert_true(tr_rest_retry_delay_ms(a, 0xffffffffu) >= base / 2);
	}
}

/* ---- the HTTP server ---- */

struct resp {
	int status;
	const char *body;
	bool hang;
};

struct srv;
struct sconn {
	uv_tcp_t tcp;
	struct srv *srv;
	char buf[16384];
	size_t len;
	bool answered;
	struct sconn *next;
};

struct srv {
	uv_tcp_t listener;
	int port;
	const struct resp *script;
	size_t nscript, next;
	int requests;
	char last[16384]; /* the last request, headers and body */
	struct sconn *conns;
	int open_handles;
};

static void sconn_closed(uv_handle_t *h) {
	struct sconn *c = h->data;
	struct srv *s = c->srv;
	struct sconn **pp;
	for (pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	s->open_handles--;
	free(c);
}

static void s_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
	struct sconn *c = h->data;
	(void)sz;
	*b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - 1 - c->len));
}

struct wreq {
	uv_write_t w;
	char data[2048];
	struct sconn *c;
};

static void s_written(uv_write_t *w, int status) {
	struct wreq *r = (struct wreq *)w;
	(void)status;
	if (!uv_is_closing((uv_handle_t *)&r->c->tcp)) {
		uv_close((uv_handle_t *)&r->c->tcp, sconn_closed);
	}
	free(r);
}

static void s_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
	struct sconn *c = st->data;
	struct srv *s = c->srv;
	char *end;
	const char *cl;
	size_t need;
	(void)b;
	if (n < 0) {
		if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
			uv_close((uv_handle_t *)&c->tcp, sconn_closed);
		}
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	end = strstr(c->buf, "\r\n\r\n");
	if (!end || c->answered) {
		return;
	}
	cl = strcasestr(c->buf, "Content-Length:");
	need = (size_t)(end + 4 - c->buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
	if (c->len < need) {
		return;
	}
	c->answered = true;
	s->requests++;
	memcpy(s->last, c->buf, c->len + 1);
	{
		const struct resp *r = &s->script[s->next < s->nscript ? s->next : s->nscript - 1];
		struct wreq *w;
		s->next++;
		if (r->hang) {
			return;
		}
		w = calloc(1, sizeof(*w));
		assert_non_null(w);
		w->c = c;
		snprintf(w->data, sizeof(w->data),
			"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			"Connection: close\r\n\r\n%s",
			r->status, strlen(r->body), r->body);
		{
			uv_buf_t ub = uv_buf_init(w->data, (unsigned)strlen(w->data));
			assert_int_equal(uv_write(&w->w, st, &ub, 1, s_written), 0);
		}
	}
}

static void s_conn(uv_stream_t *l, int status) {
	struct srv *s = l->data;
	struct sconn *c = calloc(1, sizeof(*c));
	assert_int_equal(status, 0);
	assert_non_null(c);
	c->srv = s;
	assert_int_equal(uv_tcp_init(l->loop, &c->tcp), 0);
	c->tcp.data = c;
	s->open_handles++;
	c->next = s->conns;
	s->conns = c;
	assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
	assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, s_alloc, s_read), 0);
}

static void srv_start(uv_loop_t *loop, struct srv *s, const struct resp *script, size_t n) {
	struct sockaddr_in a;
	struct sockaddr_storage got;
	int len = sizeof(got);
	memset(s, 0, sizeof(*s));
	s->script = script;
	s->nscript = n;
	assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
	s->listener.data = s;
	s->open_handles = 1;
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
	assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 16, s_conn), 0);
	assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len), 0);
	s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void listener_closed(uv_handle_t *h) {
	struct srv *s = h->data;
	s->open_handles--;
}

static void srv_close(struct srv *s) {
	if (!uv_is_closing((uv_handle_t *)&s->listener)) {
		uv_close((uv_handle_t *)&s->listener, listener_closed);
	}
	for (struct sconn *c = s->conns; c; c = c->next) {
		if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
			uv_close((uv_handle_t *)&c->tcp, sconn_closed);
		}
	}
}

/* ---- loop harness ---- */

struct run {
	uv_loop_t loop;
	uv_timer_t deadline;
	struct srv srv;
	struct tr_rest *rest;
	int calls;
	struct tr_upstream_reply reply;
	char message[512];
	char payload[4096]; /* dumped; "" when none */
	bool rest_closed;
	int pending; /* replies still expected before closing */
};

static void on_deadline(uv_timer_t *t) {
	(void)t;
	fail_msg("deadline hit");
}

static void on_rest_closed(void *userdata) {
	struct run *r = userdata;
	r->rest_closed = true;
}

static void finish(struct run *r) {
	srv_close(&r->srv);
	tr_rest_close(r->rest, on_rest_closed, r);
}

static void on_reply(void *userdata, const struct tr_upstream_reply *rep) {
	struct run *r = userdata;
	r->calls++;
	r->reply = *rep;
	r->reply.payload = NULL;
	snprintf(r->message, sizeof(r->message), "%s", rep->message ? rep->message : "");
	r->reply.message = rep->message ? r->message : NULL;
	r->payload[0] = '\0';
	if (rep->payload) {
		char *d = NULL;
		assert_int_equal(tr_json_dump(rep->payload, &d, NULL), 0);
		snprintf(r->payload, sizeof(r->payload), "%s", d);
		free(d);
	}
	if (--r->pending == 0 && rep->err != -ECANCELED) {
		finish(r);
	}
}

static void run_init(struct run *r, const struct resp *script, size_t n, bool dead_port) {
	struct tr_rest_opts o = {.client_version = "9.9.9", .default_timeout_ms = 5000};
	char url[64];
	memset(r, 0, sizeof(*r));
	assert_int_equal(uv_loop_init(&r->loop), 0);
	assert_int_equal(uv_timer_init(&r->loop, &r->deadline), 0);
	assert_int_equal(uv_timer_start(&r->deadline, on_deadline, 20000, 0), 0);
	uv_unref((uv_handle_t *)&r->deadline);
	srv_start(&r->loop, &r->srv, script, n);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/wschannels", r->srv.port);
	if (dead_port) {
		/* nobody listens there once the listener is closed */
		srv_close(&r->srv);
	}
	o.url = url;
	assert_int_equal(tr_rest_new(&r->loop, &o, &r->rest), 0);
	r->pending = 1;
}

static void run_done(struct run *r) {
	assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
	assert_true(r->rest_closed);
	assert_int_equal(r->srv.open_handles, 0);
	uv_close((uv_handle_t *)&r->deadline, NULL);
	assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&r->loop), 0);
	r->rest = tr_rest_free(r->rest);
}

/* run_init, then send req with the token "t"; the reply arrives when the loop runs. */
static void run_send(struct run *r, const struct resp *script, size_t n, bool dead_port,
	const struct tr_upstream_request *req) {
	run_init(r, script, n, dead_port);
	assert_int_equal(tr_rest_set_token(r->rest, "t"), 0);
	assert_int_equal(tr_rest_send(r->rest, req, on_reply, r), 0);
}

/* Run until nothing is pending, then read the stats (before run_done closes REST). */
static void run_stats(struct run *r, struct tr_rest_stats *st) {
	assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
	tr_rest_get_stats(r->rest, st);
}

static void test_post_ok(void **state) {
	static const struct resp script[] = {{200, "{\"payload\":{\"sid\":\"WT1\",\"version\":8}}", false}};
	struct tr_json *params = parse("{\"Attributes\":{\"x\":[1,2]},\"Hold\":false}");
	struct tr_upstream_request req = {.path = "Workspaces/WS1/Tasks/WT1", .method = "POST",
		.api_version = "v2", .params = params, .if_match = 7};
	struct run r;
	struct tr_rest_stats st;
	const char *body;
	struct tr_json *j;
	(void)state;
	run_init(&r, script, 1, false);
	/* no token yet */
	assert_int_equal(tr_rest_send(r.rest, &req, on_reply, &r), -ENOKEY);
	assert_int_equal(tr_rest_set_token(r.rest, "old.token.x"), 0);
	assert_int_equal(tr_rest_set_token(r.rest, "h.p.s"), 0);
	assert_int_equal(tr_rest_send(r.rest, &req, on_reply, &r), 0);
	tr_json_free(params); /* copied */
	tr_rest_get_stats(r.rest, &st);
	assert_int_equal(st.in_flight, 1);
	assert_int_equal(r.calls, 0); /* never from inside send */
	run_done(&r);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.reply.err, 0);
	assert_int_equal(r.reply.http_status, 200);
	assert_string_equal(r.payload, "{\"sid\":\"WT1\",\"version\":8}");
	/* what went over the wire */
	assert_true(strncmp(r.srv.last, "POST /v1/wschannels HTTP/1.1\r\n", 30) == 0);
	assert_non_null(strcasestr(r.srv.last, "\r\napiVersion: v2\r\n"));
	assert_non_null(strcasestr(r.srv.last, "\r\nclientVersion: 9.9.9\r\n"));
	assert_non_null(strcasestr(r.srv.last, "\r\nIf-Match: 7\r\n"));
	assert_non_null(strcasestr(r.srv.last, "\r\nContent-Type: application/json\r\n"));
	assert_null(strcasestr(r.srv.last, "Authorization"));
	body = strstr(r.srv.last, "\r\n\r\n") + 4;
	j = parse(body);
	assert_string_equal(tr_json_get_string(j, "url"), "Workspaces/WS1/Tasks/WT1");
	assert_string_equal(tr_json_get_string(j, "method"), "POST");
	assert_string_equal(tr_json_get_string(j, "token"), "h.p.s");
	assert_int_equal(tr_json_get(tr_json_get(j, "params"), "Hold")->type, TR_JSON_FALSE);
	assert_true(tr_json_is(tr_json_get(tr_json_get(j, "params"), "Attributes"), TR_JSON_OBJECT));
	tr_json_free(j);
}

static void test_post_500_not_retried(void **state) {
	static const struct resp script[] = {
		{500, "{\"message\":\"boom\",\"code\":20500}", false},
		{200, "{\"payload\":{}}", false},
	};
	struct tr_upstream_request req = {.path = "p", .method = "POST", .api_version = "v1",
		.if_match = -1, .retry_transient = true /* ignored for POST */};
	struct run r;
	(void)state;
	run_send(&r, script, 2, false, &req);
	run_done(&r);
	assert_int_equal(r.srv.requests, 1);
	assert_int_equal(r.reply.err, 0);
	assert_int_equal(r.reply.http_status, 500);
	assert_int_equal(r.reply.twilio_code, 20500);
	assert_string_equal(r.reply.message, "boom");
	assert_null(strcasestr(r.srv.last, "If-Match"));
}

static void test_get_429_then_200(void **state) {
	static const struct resp script[] = {
		{429, "{\"message\":\"slow\"}", false},
		{503, "oops", false},
		{200, "{\"payload\":{\"ok\":true}}", false},
	};
	struct tr_upstream_request req = {.path = "p", .method = "GET", .api_version = "v1",
		.if_match = -1, .retry_transient = true};
	struct tr_rest_stats st;
	struct run r;
	(void)state;
	run_send(&r, script, 3, false, &req);
	run_stats(&r, &st);
	assert_int_equal(st.retries, 2);
	assert_int_equal(st.attempts, 3);
	assert_int_equal(st.in_flight, 0);
	run_done(&r);
	assert_int_equal(r.srv.requests, 3);
	assert_int_equal(r.reply.err, 0);
	assert_string_equal(r.payload, "{\"ok\":true}");
}

static void test_get_5xx_bounded(void **state) {
	static const struct resp script[] = {{502, "{\"message\":\"bad gateway\"}", false}};
	struct tr_upstream_request req = {.path = "p", .method = "GET", .api_version = "v1",
		.if_match = -1, .retry_transient = true};
	struct run r;
	(void)state;
	run_send(&r, script, 1, false, &req);
	run_done(&r);
	assert_int_equal(r.srv.requests, TR_REST_MAX_ATTEMPTS);
	assert_int_equal(r.reply.http_status, 502);
	assert_string_equal(r.reply.message, "bad gateway");
	/* without retry_transient a GET is tried once */
	run_init(&r, script, 1, false);
	req.retry_transient = false;
	assert_int_equal(tr_rest_set_token(r.rest, "t"), 0);
	assert_int_equal(tr_rest_send(r.rest, &req, on_reply, &r), 0);
	run_done(&r);
	assert_int_equal(r.srv.requests, 1);
}

static void test_hang_timeout(void **state) {
	static const struct resp script[] = {{0, "", true}};
	struct tr_upstream_request req = {.path = "p", .method = "GET", .api_version = "v1",
		.if_match = -1, .retry_transient = true, .timeout_ms = 300};
	struct run r;
	uint64_t t0;
	(void)state;
	run_init(&r, script, 1, false);
	assert_int_equal(tr_rest_set_token(r.rest, "t"), 0);
	t0 = uv_now(&r.loop);
	assert_int_equal(tr_rest_send(r.rest, &req, on_reply, &r), 0);
	run_done(&r);
	assert_true(uv_now(&r.loop) - t0 >= 290);
	assert_int_equal(r.reply.err, -ETIMEDOUT);
	assert_true(r.reply.maybe_sent);
	assert_non_null(strstr(r.reply.message, "timed out"));
	/* the retry budget is the request's own deadline: no second attempt */
	assert_int_equal(r.srv.requests, 1);
}

static void test_not_json(void **state) {
	static const struct resp script[] = {{200, "<html>hi</html>", false}};
	struct tr_upstream_request req = {.path = "p", .method = "POST", .api_version = "v1",
		.if_match = -1};
	struct run r;
	(void)state;
	run_send(&r, script, 1, false, &req);
	run_done(&r);
	assert_int_equal(r.reply.err, -EBADMSG);
	assert_string_equal(r.payload, "");
}

static void test_refused(void **state) {
	static const struct resp script[] = {{200, "{}", false}};
	struct tr_upstream_request req = {.path = "p", .method = "GET", .api_version = "v1",
		.if_match = -1, .retry_transient = true, .timeout_ms = 3000};
	struct tr_rest_stats st;
	struct run r;
	(void)state;
	run_send(&r, script, 1, true, &req);
	run_stats(&r, &st);
	run_done(&r);
	assert_int_equal(r.reply.err, -ECONNREFUSED);
	assert_false(r.reply.maybe_sent);
	assert_true(st.retries >= 1);
	assert_int_equal(st.failures, 1);
}

static void on_cancel_timer(uv_timer_t *t) {
	struct run *r = t->data;
	uv_close((uv_handle_t *)t, NULL);
	finish(r);
}

static void test_cancel_on_close(void **state) {
	static const struct resp script[] = {{0, "", true}};
	struct tr_upstream_request req = {.path = "p", .method = "GET", .api_version = "v1",
		.if_match = -1};
	struct tr_json *bad = parse("[]");
	uv_timer_t t;
	struct run r;
	(void)state;
	run_init(&r, script, 1, false);
	r.pending = 2;
	assert_int_equal(tr_rest_set_token(r.rest, "t"), 0);
	assert_int_equal(tr_rest_send(r.rest, &req, on_reply, &r), 0);
	assert_int_equal(tr_rest_send(r.rest, &req, on_reply, &r), 0);
	/* invalid requests are refused at once */
	req.params = bad;
	assert_int_equal(tr_rest_send(r.rest, &req, on_reply, &r), -EINVAL);
	req.params = NULL;
	req.path = NULL;
	assert_int_equal(tr_rest_send(r.rest, &req, on_reply, &r), -EINVAL);
	req.path = "p";
	tr_json_free(bad);
	/* close while both hang */
	assert_int_equal(uv_timer_init(&r.loop, &t), 0);
	t.data = &r;
	assert_int_equal(uv_timer_start(&t, on_cancel_timer, 200, 0), 0);
	assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.reply.err, -ECANCELED);
	assert_int_equal(tr_rest_send(r.rest, &req, on_reply, &r), -ESHUTDOWN);
	run_done(&r);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_classify_long_message),
		cmocka_unit_test(test_retry_delay),
		cmocka_unit_test(test_post_ok),
		cmocka_unit_test(test_post_500_not_retried),
		cmocka_unit_test(test_get_429_then_200),
		cmocka_unit_test(test_get_5xx_bounded),
		cmocka_unit_test(test_hang_timeout),
		cmocka_unit_test(test_not_json),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_cancel_on_close),
	};
	int r;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return r;
}
