/*
 * rest.c — curl multi_socket on libuv (see rest.h).
 *
 * One uv_poll_t per curl socket (assigned with curl_multi_assign), one uv_timer_t
 * for curl's timeout; curl is never called from inside its own callbacks, and
 * curl_multi_info_read is drained after each socket_action.
 */
#include "rest.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "tr-build.h"
#include "json.h"
#include "tr-limits.h"
#include "log.h"
#include "proxy.h"

struct rest_poll {
	uv_poll_t poll;
	curl_socket_t fd;
	struct tr_rest *rest;
	struct rest_poll *next, *prev;
};

struct rest_req {
	struct tr_rest *rest;
	struct rest_req *next, *prev;
	CURL *easy;
	bool in_multi;
	struct curl_slist *headers;
	char *body;
	size_t body_len;
	char *resp;
	size_t resp_len, resp_cap;
	bool resp_overflow;
	char errbuf[CURL_ERROR_SIZE];
	/* The request, copied. */
	char *path, *method, *api_version;
	struct tr_json *params;
	int64_t if_match;
	bool retry_transient;
	uint64_t started, deadline; /* uv_now based */
	unsigned attempt;
	uv_timer_t retry_timer;
	bool timer_inited, waiting_retry;
	tr_upstream_cb cb;
	void *userdata;
};

struct tr_rest {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	char *url, *ca_file, *client_version;
	char *token;
	/* The proxy ("http://host:port", NULL: direct) and its credentials (wiped). */
	char *proxy, *proxy_user, *proxy_password;
	char *hostport; /* of url, for messages */
	int default_timeout_ms;
	struct rest_req *reqs;
	struct rest_poll *polls;
	bool closing;
	int pending_closes;
	void (*done)(void *);
	void *done_userdata;
	uint32_t rng;
	struct tr_rest_stats stats;
};

/* ---- pure helpers ---- */

uint64_t tr_rest_retry_delay_ms(unsigned attempt, uint32_t rnd) {
	uint64_t base;

	if (attempt < 1) {
		attempt = 1;
	}
	if (attempt > 8) {
		attempt = 8;
	}
	base = (uint64_t)TR_REST_RETRY_BASE_MS << (attempt - 1);
	if (base > TR_REST_RETRY_CAP_MS) {
		base = TR_REST_RETRY_CAP_MS;
	}
	return base / 2 + rnd % (base / 2 + 1);
}

int tr_rest_build_body(const struct tr_upstream_request *req, const char *token, char **ret,
	size_t *ret_len) {
	struct tr_json *o, *params;
	char *s;
	size_t n;
	int r;

	if (!req || !req->path || !req->method || !token) {
		return -EINVAL;
	}
	if (req->params && !tr_json_is(req->params, TR_JSON_OBJECT)) {
		return -EINVAL;
	}
	o = tr_json_new_object();
	if (!o) {
		return -ENOMEM;
	}
	params = req->params ? tr_json_dup(req->params) : tr_json_new_object();
	r = tr_json_object_set(o, "url", tr_json_new_string(req->path));
	if (r == 0) {
		r = tr_json_object_set(o, "method", tr_json_new_string(req->method));
	}
	if (r == 0) {
		r = tr_json_object_set(o, "params", params);
		params = NULL;
	} else {
		tr_json_free(params);
	}
	if (r == 0) {
		r = tr_json_object_set(o, "token", tr_json_new_string(token));
	}
	if (r == 0) {
		r = tr_json_dump(o, &s, &n);
	}
	if (r < 0) {
		tr_json_free(o);
		return r == -EINVAL ? -ENOMEM : r;
	}
	/* The tree holds the token too: wipe it before freeing. */
	{
		const struct tr_json *t = tr_json_get(o, "token");
		if (t && t->type == TR_JSON_STRING) {
			explicit_bzero(t->u.str.s, t->u.str.len);
		}
	}
	tr_json_free(o);
	*ret = s;
	if (ret_len) {
		*ret_len = n;
	}
	return 0;
}

bool tr_rest_reply_is_transient(const struct tr_upstream_reply *r) {
	if (r->err == -ECONNREFUSED || r->err == -EHOSTUNREACH || r->err == -EIO ||
		r->err == -ETIMEDOUT) {
		return true;
	}
	return r->err == 0 && (r->http_status == 429 || r->http_status >= 500);
}

static int map_curl(int cc, bool *ret_maybe_sent) {
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		*ret_maybe_sent = true;
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		*ret_maybe_sent = false;
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		*ret_maybe_sent = false;
		return -EHOSTUNREACH;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		*ret_maybe_sent = false;
		return -EIO;
	default:
		*ret_maybe_sent = true;
		return -EIO;
	}
}

/* A message cut at the buffer size may end inside a UTF-8 sequence: drop that partial
 * sequence so the text stays valid UTF-8 (it is sent to clients in JSON strings). Found by
 * tests/fuzz/fuzz-rest.c (seed tests/data/fuzz-rest/long-message). */
static void cut_partial_utf8(char *s) {
	size_t n = strlen(s), i = n, need;
	unsigned char c;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
		i--;
	}
	if (i == 0) {
		return;
	}
	c = (unsigned char)s[i - 1];
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	if (n - (i - 1) < need) {
		s[i - 1] = '\0';
	}
}

void tr_rest_classify(int curl_code, long status, const char *body, size_t len,
	const char *curl_text, struct tr_rest_outcome *o) {
	struct tr_upstream_reply *r = &o->reply;
	struct tr_json *doc = NULL;
	int pr = -EBADMSG;

	*o = (struct tr_rest_outcome){0};
	r->http_status = status;
	if (curl_code != CURLE_OK) {
		r->err = map_curl(curl_code, &r->maybe_sent);
		r->http_status = 0;
		snprintf(o->message, sizeof(o->message), "%s%s%s",
			r->err == -ETIMEDOUT ? "Request timed out" : "Network error",
			curl_text && *curl_text ? ": " : "", curl_text ? curl_text : "");
		r->message = o->message;
		return;
	}
	r->maybe_sent = true;
	if (body && len > 0) {
		pr = tr_json_parse(body, len, &doc, NULL);
		if (pr < 0) {
			doc = NULL;
		}
	}
	if (status >= 200 && status < 300) {
		const struct tr_json *p = tr_json_is(doc, TR_JSON_OBJECT) ?
						  tr_json_get(doc, "payload") :
						  NULL;
		if (!p) {
			r->err = -EBADMSG;
			snprintf(o->message, sizeof(o->message), "%s",
				!doc ? "malformed response: the body is not JSON" :
				       "malformed response: no \"payload\" member");
			r->message = o->message;
			tr_json_free(doc);
			return;
		}
		o->doc = doc;
		r->payload = p;
		return;
	}
	/* An HTTP error: keep the server's message and code when the body says them. */
	if (tr_json_is(doc, TR_JSON_OBJECT)) {
		const char *m = tr_json_get_string(doc, "message");
		int64_t code;
		if (tr_json_get_int(doc, "code", &code) == 0) {
			r->twilio_code = code;
		}
		if (m && (size_t)snprintf(o->message, sizeof(o->message), "%s", m) >=
			sizeof(o->message)) {
			cut_partial_utf8(o->message);
		}
	}
	if (!o->message[0]) {
		snprintf(o->message, sizeof(o->message), "HTTP status %ld", status);
	}
	r->message = o->message;
	tr_json_free(doc);
}

void tr_rest_outcome_done(struct tr_rest_outcome *o) {
	o->doc = tr_json_free(o->doc);
	o->reply.payload = NULL;
}

/* ---- curl <-> uv glue ---- */

static void check_info(struct tr_rest *r);
static int req_start(struct rest_req *q);

static void poll_on_close(uv_handle_t *h) {
	struct rest_poll *p = h->data;
	struct tr_rest *r = p->rest;

	free(p);
	if (--r->pending_closes == 0 && r->closing && r->done) {
		r->done(r->done_userdata);
	}
}

static void poll_unlink(struct rest_poll *p) {
	struct tr_rest *r = p->rest;

	if (p->prev) {
		p->prev->next = p->next;
	} else {
		r->polls = p->next;
	}
	if (p->next) {
		p->next->prev = p->prev;
	}
	p->next = p->prev = NULL;
}

static void poll_close(struct rest_poll *p) {
	poll_unlink(p);
	(void)uv_poll_stop(&p->poll);
	p->rest->pending_closes++;
	uv_close((uv_handle_t *)&p->poll, poll_on_close);
}

static void on_poll(uv_poll_t *h, int status, int events) {
	struct rest_poll *p = h->data;
	struct tr_rest *r = p->rest;
	int flags = 0, running;

	if (status < 0) {
		flags = CURL_CSELECT_ERR | CURL_CSELECT_IN | CURL_CSELECT_OUT;
	} else {
		if (events & UV_READABLE) {
			flags |= CURL_CSELECT_IN;
		}
		if (events & UV_WRITABLE) {
			flags |= CURL_CSELECT_OUT;
		}
	}
	(void)curl_multi_socket_action(r->multi, p->fd, flags, &running);
	check_info(r);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
	struct tr_rest *r = userp;
	struct rest_poll *p = socketp;
	int ev = 0, e;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (p) {
			(void)curl_multi_assign(r->multi, fd, NULL);
			poll_close(p);
		}
		return 0;
	}
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p) {
			return -1;
		}
		p->fd = fd;
		p->rest = r;
		e = uv_poll_init_socket(r->loop, &p->poll, fd);
		if (e < 0) {
			tr_log_err("REST: uv_poll_init_socket: %s", uv_strerror(e));
			free(p);
			return -1;
		}
		p->poll.data = p;
		p->next = r->polls;
		if (r->polls) {
			r->polls->prev = p;
		}
		r->polls = p;
		(void)curl_multi_assign(r->multi, fd, p);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
		ev |= UV_READABLE;
	}
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
		ev |= UV_WRITABLE;
	}
	e = uv_poll_start(&p->poll, ev, on_poll);
	if (e < 0) {
		tr_log_err("REST: uv_poll_start: %s", uv_strerror(e));
		return -1;
	}
	return 0;
}

static void on_uv_timeout(uv_timer_t *t) {
	struct tr_rest *r = t->data;
	int running;

	(void)curl_multi_socket_action(r->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_info(r);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
	struct tr_rest *r = userp;

	(void)multi;
	if (timeout_ms < 0) {
		(void)uv_timer_stop(&r->timer);
		return 0;
	}
	/* Never call curl from here: a 0 ms uv timer does it from the loop. */
	return uv_timer_start(&r->timer, on_uv_timeout, (uint64_t)timeout_ms, 0) < 0 ? -1 : 0;
}

/* ---- requests ---- */

static void req_unlink(struct rest_req *q) {
	struct tr_rest *r = q->rest;

	if (q->prev) {
		q->prev->next = q->next;
	} else if (r->reqs == q) {
		r->reqs = q->next;
	}
	if (q->next) {
		q->next->prev = q->prev;
	}
	q->next = q->prev = NULL;
}

static void req_release_attempt(struct rest_req *q) {
	if (q->easy) {
		if (q->in_multi) {
			(void)curl_multi_remove_handle(q->rest->multi, q->easy);
			q->in_multi = false;
		}
		curl_easy_cleanup(q->easy);
		q->easy = NULL;
	}
	curl_slist_free_all(q->headers);
	q->headers = NULL;
	if (q->body) {
		explicit_bzero(q->body, q->body_len);
		free(q->body);
		q->body = NULL;
	}
	free(q->resp);
	q->resp = NULL;
	q->resp_len = q->resp_cap = 0;
	q->resp_overflow = false;
}

static void req_free_mem(struct rest_req *q) {
	free(q->path);
	free(q->method);
	free(q->api_version);
	tr_json_free(q->params);
	free(q);
}

static void req_timer_on_close(uv_handle_t *h) {
	struct rest_req *q = h->data;
	struct tr_rest *r = q->rest;

	req_free_mem(q);
	if (--r->pending_closes == 0 && r->closing && r->done) {
		r->done(r->done_userdata);
	}
}

static void req_destroy(struct rest_req *q) {
	req_release_attempt(q);
	if (q->timer_inited) {
		q->rest->pending_closes++;
		uv_close((uv_handle_t *)&q->retry_timer, req_timer_on_close);
	} else {
		req_free_mem(q);
	}
}

/* Deliver a reply and destroy the request. */
static void req_deliver(struct rest_req *q, const struct tr_upstream_reply *reply) {
	struct tr_rest *r = q->rest;

	req_unlink(q);
	r->stats.in_flight--;
	if (reply->err != 0 || reply->http_status < 200 || reply->http_status >= 300) {
		r->stats.failures++;
	}
	q->cb(q->userdata, reply);
	req_destroy(q);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp) {
	struct rest_req *q = userp;
	size_t n = size * nmemb;

	if (q->resp_len + n > TR_REST_MAX_RESPONSE) {
		q->resp_overflow = true;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (q->resp_len + n + 1 > q->resp_cap) {
		size_t cap = q->resp_cap ? q->resp_cap : 4096;
		char *p;
		while (cap < q->resp_len + n + 1) {
			cap *= 2;
		}
		p = realloc(q->resp, cap);
		if (!p) {
			return 0;
		}
		q->resp = p;
		q->resp_cap = cap;
	}
	memcpy(q->resp + q->resp_len, data, n);
	q->resp_len += n;
	q->resp[q->resp_len] = '\0';
	return n;
}

static void on_retry_timer(uv_timer_t *t) {
	struct rest_req *q = t->data;
	int e;

	q->waiting_retry = false;
	e = req_start(q);
	if (e < 0) {
		struct tr_upstream_reply rep = {.err = e == -ENOMEM ? -EIO : e,
			.message = "could not start the retry"};
		req_deliver(q, &rep);
	}
}

/* One attempt is over (CURLMsg copied). Retry or deliver. */
static void req_attempt_done(struct rest_req *q, CURLcode cc) {
	struct tr_rest *r = q->rest;
	struct tr_rest_outcome o;
	long status = 0;
	uint64_t now = uv_now(r->loop);

	(void)curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
	if (q->resp_overflow) {
		struct tr_upstream_reply rep = {.err = -EBADMSG, .http_status = status,
			.maybe_sent = true, .message = "response too large"};
		tr_log_warning("REST %s %s: response larger than %u bytes, dropped", q->method,
			q->path, TR_REST_MAX_RESPONSE);
		req_release_attempt(q);
		req_deliver(q, &rep);
		return;
	}
	{
		const char *ctext = q->errbuf[0] ? q->errbuf : curl_easy_strerror(cc);
		long connect_code = 0;
		char text[CURL_ERROR_SIZE + 400];
		(void)curl_easy_getinfo(q->easy, CURLINFO_HTTP_CONNECTCODE, &connect_code);
		if (cc != CURLE_OK && r->proxy && connect_code >= 300) {
			/* the proxy refused the tunnel: nothing reached TaskRouter */
			snprintf(text, sizeof(text), "proxy %s refused the tunnel to %s: HTTP %ld%s",
				r->proxy + 7, r->hostport, connect_code,
				connect_code != 407 ? "" :
				r->proxy_user ? " (it refused the credentials of proxy-credentials-file)" :
						" (it wants credentials: set proxy-credentials-file)");
			ctext = text;
		} else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CONNECT_ERROR) {
			snprintf(text, sizeof(text), "TLS with %s: %s", r->hostport, ctext);
			ctext = text;
		}
		tr_rest_classify(cc, status, q->resp, q->resp_len, ctext, &o);
		if (cc != CURLE_OK && r->proxy && connect_code >= 300) {
			o.reply.maybe_sent = false;
		}
	}
	req_release_attempt(q);
	tr_log_debug("REST %s %s (%s) attempt %u: %s%ld after %" PRIu64 " ms", q->method, q->path,
		q->api_version, q->attempt, o.reply.err ? "error " : "HTTP ",
		o.reply.err ? (long)o.reply.err : status, now - q->started);

	if (q->retry_transient && !r->closing && tr_rest_reply_is_transient(&o.reply) &&
		q->attempt < TR_REST_MAX_ATTEMPTS) {
		uint64_t delay = tr_rest_retry_delay_ms(q->attempt, tr_backoff_rand_next(&r->rng));
		/* Stay within the request's own deadline: leave at least 200 ms for the retry. */
		if (now + delay + 200 < q->deadline) {
			int e = 0;
			if (!q->timer_inited) {
				e = uv_timer_init(r->loop, &q->retry_timer);
				if (e == 0) {
					q->timer_inited = true;
					q->retry_timer.data = q;
				}
			}
			if (e == 0) {
				e = uv_timer_start(&q->retry_timer, on_retry_timer, delay, 0);
			}
			if (e == 0) {
				tr_log_info("REST %s %s: %s, retrying in %" PRIu64 " ms", q->method,
					q->path, o.reply.message ? o.reply.message : "failed", delay);
				q->waiting_retry = true;
				r->stats.retries++;
				tr_rest_outcome_done(&o);
				return;
			}
		}
	}
	req_deliver(q, &o.reply);
	tr_rest_outcome_done(&o);
}

static void check_info(struct tr_rest *r) {
	CURLMsg *m;
	int left;

	while (!r->closing && (m = curl_multi_info_read(r->multi, &left))) {
		CURL *easy;
		CURLcode cc;
		struct rest_req *q = NULL;

		if (m->msg != CURLMSG_DONE) {
			continue;
		}
		/* Copy what we need: the message dies with the easy handle. */
		easy = m->easy_handle;
		cc = m->data.result;
		(void)curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&q);
		if (!q) {
			continue;
		}
		(void)curl_multi_remove_handle(r->multi, easy);
		q->in_multi = false;
		req_attempt_done(q, cc);
	}
}

static int req_start(struct rest_req *q) {
	struct tr_rest *r = q->rest;
	struct tr_upstream_request req = {.path = q->path, .method = q->method,
		.api_version = q->api_version, .params = q->params};
	uint64_t now = uv_now(r->loop);
	long remaining;
	char hdr[128];
	struct curl_slist *h;
	int e;

	if (!r->token) {
		return -ENOKEY;
	}
	remaining = (long)(q->deadline > now ? q->deadline - now : 1);
	e = tr_rest_build_body(&req, r->token, &q->body, &q->body_len);
	if (e < 0) {
		return e;
	}
	q->easy = curl_easy_init();
	if (!q->easy) {
		return -ENOMEM;
	}
	h = curl_slist_append(NULL, "Content-Type: application/json");
	snprintf(hdr, sizeof(hdr), "apiVersion: %s", q->api_version);
	h = h ? curl_slist_append(h, hdr) : NULL;
	snprintf(hdr, sizeof(hdr), "clientVersion: %s", r->client_version);
	h = h ? curl_slist_append(h, hdr) : NULL;
	h = h ? curl_slist_append(h, "Expect:") : NULL;
	if (h && q->if_match >= 0) {
		snprintf(hdr, sizeof(hdr), "If-Match: %" PRId64, q->if_match);
		h = curl_slist_append(h, hdr);
	}
	if (!h) {
		return -ENOMEM;
	}
	q->headers = h;
	q->errbuf[0] = '\0';
	e = 0;
	e |= curl_easy_setopt(q->easy, CURLOPT_URL, r->url);
	e |= curl_easy_setopt(q->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	e |= curl_easy_setopt(q->easy, CURLOPT_POST, 1L);
	/* HTTP/1.1 like the SDK's clients (axios, undici); no h2 negotiation surprises. */
	e |= curl_easy_setopt(q->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	/* libcurl sends a request again, on its own, when a reused connection dies before any
	 * byte of the answer: right for a read, wrong for a write the server may already have
	 * carried out (spec §3.3: never replayed). A write gets a connection of its own, on
	 * which libcurl does not retry, so its caller sees the failure (maybeSent). */
	if (strcmp(q->method, "GET") != 0) {
		e |= curl_easy_setopt(q->easy, CURLOPT_FRESH_CONNECT, 1L);
	}
	e |= curl_easy_setopt(q->easy, CURLOPT_POSTFIELDS, q->body);
	e |= curl_easy_setopt(q->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
	e |= curl_easy_setopt(q->easy, CURLOPT_HTTPHEADER, q->headers);
	e |= curl_easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, on_write);
	e |= curl_easy_setopt(q->easy, CURLOPT_WRITEDATA, q);
	e |= curl_easy_setopt(q->easy, CURLOPT_PRIVATE, q);
	e |= curl_easy_setopt(q->easy, CURLOPT_ERRORBUFFER, q->errbuf);
	e |= curl_easy_setopt(q->easy, CURLOPT_TIMEOUT_MS, remaining);
	e |= curl_easy_setopt(q->easy, CURLOPT_CONNECTTIMEOUT_MS, remaining < 10000 ? remaining : 10000L);
	e |= curl_easy_setopt(q->easy, CURLOPT_NOSIGNAL, 1L);
	e |= curl_easy_setopt(q->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	e |= curl_easy_setopt(q->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	e |= curl_easy_setopt(q->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	e |= curl_easy_setopt(q->easy, CURLOPT_USERAGENT, "taskrouterd/" TR_VERSION);
	if (r->ca_file) {
		e |= curl_easy_setopt(q->easy, CURLOPT_CAINFO, r->ca_file);
	}
#if LIBCURL_VERSION_NUM >= 0x075700
	/* libcurl may keep a CA store for a day, by file name: SIGHUP must see a new file */
	e |= curl_easy_setopt(q->easy, CURLOPT_CA_CACHE_TIMEOUT, 0L);
#endif
	/* The proxy is chosen by proxy.c (with NO_PROXY); libcurl must not pick one from the
	 * environment itself (an empty proxy and exception list turn that off). Always a
	 * CONNECT tunnel, for http:// too, as the websocket does. */
	e |= curl_easy_setopt(q->easy, CURLOPT_PROXY, r->proxy ? r->proxy : "");
	e |= curl_easy_setopt(q->easy, CURLOPT_NOPROXY, "");
	if (r->proxy) {
		e |= curl_easy_setopt(q->easy, CURLOPT_PROXYTYPE, (long)CURLPROXY_HTTP);
		e |= curl_easy_setopt(q->easy, CURLOPT_HTTPPROXYTUNNEL, 1L);
		if (r->proxy_user) {
			e |= curl_easy_setopt(q->easy, CURLOPT_PROXYAUTH, (long)CURLAUTH_BASIC);
			e |= curl_easy_setopt(q->easy, CURLOPT_PROXYUSERNAME, r->proxy_user);
			e |= curl_easy_setopt(q->easy, CURLOPT_PROXYPASSWORD, r->proxy_password);
		}
	}
	if (e != CURLE_OK) {
		return -EINVAL;
	}
	if (curl_multi_add_handle(r->multi, q->easy) != CURLM_OK) {
		return -EIO;
	}
	q->in_multi = true;
	q->attempt++;
	r->stats.attempts++;
	return 0;
}

int tr_rest_send(struct tr_rest *r, const struct tr_upstream_request *req, tr_upstream_cb cb,
	void *userdata) {
	struct rest_req *q;
	int timeout, e;

	if (r->closing) {
		return -ESHUTDOWN;
	}
	if (!req || !req->path || !req->method || !req->api_version || !cb) {
		return -EINVAL;
	}
	if (req->params && !tr_json_is(req->params, TR_JSON_OBJECT)) {
		return -EINVAL;
	}
	if (!r->token) {
		return -ENOKEY;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		return -ENOMEM;
	}
	q->rest = r;
	q->path = strdup(req->path);
	q->method = strdup(req->method);
	q->api_version = strdup(req->api_version);
	q->params = req->params ? tr_json_dup(req->params) : NULL;
	if (!q->path || !q->method || !q->api_version || (req->params && !q->params)) {
		req_free_mem(q);
		return -ENOMEM;
	}
	q->if_match = req->if_match;
	/* Only reads are retried: an update whose outcome is unknown must not be replayed. */
	q->retry_transient = req->retry_transient && strcmp(req->method, "GET") == 0;
	timeout = req->timeout_ms > 0 ? req->timeout_ms : r->default_timeout_ms;
	q->started = uv_now(r->loop);
	q->deadline = q->started + (uint64_t)timeout;
	q->cb = cb;
	q->userdata = userdata;
	e = req_start(q);
	if (e < 0) {
		req_release_attempt(q);
		req_free_mem(q);
		return e;
	}
	q->next = r->reqs;
	if (r->reqs) {
		r->reqs->prev = q;
	}
	r->reqs = q;
	r->stats.in_flight++;
	r->stats.requests++;
	return 0;
}

int tr_rest_new(uv_loop_t *loop, const struct tr_rest_opts *o, struct tr_rest **ret) {
	struct tr_rest *r;
	int e;

	r = calloc(1, sizeof(*r));
	if (!r) {
		return -ENOMEM;
	}
	r->loop = loop;
	r->default_timeout_ms = o->default_timeout_ms > 0 ? o->default_timeout_ms :
							     TR_REST_TIMEOUT_MS_DEFAULT;
	r->url = strdup(o->url);
	r->client_version = strdup(o->client_version ? o->client_version : TR_VERSION);
	r->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
	{
		char *host = NULL;
		int port = 0;
		bool tls = false;
		if (tr_rest_endpoint(r, &host, &port, &tls) == 0 &&
			(strchr(host, ':') ? asprintf(&r->hostport, "[%s]:%d", host, port) :
					     asprintf(&r->hostport, "%s:%d", host, port)) < 0) {
			r->hostport = NULL;
		}
		free(host);
	}
	r->rng = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16) ^ 0x5bd1e995u;
	if (!r->url || !r->client_version || (o->ca_file && !r->ca_file) || !r->hostport) {
		e = -ENOMEM;
		goto fail;
	}
	r->multi = curl_multi_init();
	if (!r->multi) {
		e = -ENOMEM;
		goto fail;
	}
	e = uv_timer_init(loop, &r->timer);
	if (e < 0) {
		goto fail;
	}
	r->timer.data = r;
	curl_multi_setopt(r->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(r->multi, CURLMOPT_SOCKETDATA, r);
	curl_multi_setopt(r->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(r->multi, CURLMOPT_TIMERDATA, r);
	curl_multi_setopt(r->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)TR_REST_MAX_CONCURRENCY);
	*ret = r;
	return 0;
fail:
	if (r->multi) {
		curl_multi_cleanup(r->multi);
	}
	free(r->url);
	free(r->client_version);
	free(r->ca_file);
	free(r->hostport);
	free(r);
	return e;
}

int tr_rest_set_proxy(struct tr_rest *r, const char *hostport, const char *user,
	const char *password) {
	char *p = NULL, *u = NULL, *w = NULL;

	if (hostport && asprintf(&p, "http://%s", hostport) < 0) {
		return -ENOMEM;
	}
	u = hostport && user ? strdup(user) : NULL;
	w = hostport && user && password ? strdup(password) : NULL;
	if (hostport && user && (!u || !w)) {
		free(p);
		tr_proxy_credentials_wipe(u, w);
		return -ENOMEM;
	}
	free(r->proxy);
	tr_proxy_credentials_wipe(r->proxy_user, r->proxy_password);
	r->proxy = p;
	r->proxy_user = u;
	r->proxy_password = w;
	return 0;
}

int tr_rest_endpoint(const struct tr_rest *r, char **ret_host, int *ret_port, bool *ret_tls) {
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *scheme = NULL;
	int e = -EINVAL;

	if (!u) {
		return -ENOMEM;
	}
	if (curl_url_set(u, CURLUPART_URL, r->url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK) {
		size_t n = strlen(host);
		/* curl keeps an IPv6 address in its brackets */
		char *h = n >= 2 && host[0] == '[' ? strndup(host + 1, n - 2) : strdup(host);
		if (h) {
			*ret_host = h;
			*ret_port = atoi(port);
			*ret_tls = strcmp(scheme, "https") == 0;
			e = 0;
		} else {
			e = -ENOMEM;
		}
	}
	curl_free(host);
	curl_free(port);
	curl_free(scheme);
	curl_url_cleanup(u);
	return e;
}

int tr_rest_set_ca_file(struct tr_rest *r, const char *ca_file) {
	char *c = ca_file ? strdup(ca_file) : NULL;

	if (ca_file && !c) {
		return -ENOMEM;
	}
	free(r->ca_file);
	r->ca_file = c;
	return 0;
}

int tr_rest_set_token(struct tr_rest *r, const char *token) {
	char *t = strdup(token);

	if (!t) {
		return -ENOMEM;
	}
	if (r->token) {
		explicit_bzero(r->token, strlen(r->token));
		free(r->token);
	}
	r->token = t;
	return 0;
}

static void timer_on_close(uv_handle_t *h) {
	struct tr_rest *r = h->data;

	if (--r->pending_closes == 0 && r->done) {
		r->done(r->done_userdata);
	}
}

void tr_rest_close(struct tr_rest *r, void (*done)(void *userdata), void *userdata) {
	struct tr_upstream_reply rep = {.err = -ECANCELED, .message = "the daemon is shutting down"};

	if (r->closing) {
		return;
	}
	r->closing = true;
	r->done = done;
	r->done_userdata = userdata;
	r->pending_closes++; /* guard: released at the end */
	while (r->reqs) {
		struct rest_req *q = r->reqs;
		if (q->timer_inited) {
			(void)uv_timer_stop(&q->retry_timer);
		}
		rep.maybe_sent = q->in_multi;
		req_release_attempt(q);
		req_deliver(q, &rep);
	}
	curl_multi_cleanup(r->multi);
	r->multi = NULL;
	while (r->polls) {
		poll_close(r->polls);
	}
	r->pending_closes++;
	uv_close((uv_handle_t *)&r->timer, timer_on_close);
	if (--r->pending_closes == 0 && r->done) {
		r->done(r->done_userdata);
	}
}

struct tr_rest *tr_rest_free(struct tr_rest *r) {
	if (!r) {
		return NULL;
	}
	if (r->multi) {
		curl_multi_cleanup(r->multi);
	}
	if (r->token) {
		explicit_bzero(r->token, strlen(r->token));
		free(r->token);
	}
	free(r->url);
	free(r->client_version);
	free(r->ca_file);
	free(r->hostport);
	free(r->proxy);
	tr_proxy_credentials_wipe(r->proxy_user, r->proxy_password);
	free(r);
	return NULL;
}

void tr_rest_get_stats(const struct tr_rest *r, struct tr_rest_stats *ret) {
	*ret = r->stats;
}
