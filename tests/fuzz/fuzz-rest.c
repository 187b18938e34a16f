/*
 * fuzz-rest.c — libFuzzer target for REST response bodies: the classification of a proxy
 * response in daemon/rest.c (tr_rest_classify, the pure function the curl glue calls for
 * every attempt), then the request body built from what came back (tr_rest_build_body)
 * and the retry delays and reconnect backoff (daemon/backoff.c).
 *
 * Input layout: bytes 0-1 the HTTP status (big-endian, taken modulo 1000); byte 2 the curl
 * code (high bit set: the low 7 bits are a CURLcode, else 0, a response arrived); byte 3
 * the retry attempt and backoff step; the rest is the response body.
 * Checks: a network error has no status, no payload and a message; a 2xx reply has err 0
 * with a payload, or -EBADMSG with a message; any other status has err 0, no payload and a
 * message; the message is valid UTF-8 that a JSON string carries (the daemon puts it into
 * RPC error data); transient means network error, 429 or 5xx; a payload object makes a
 * proxy body that parses back; delays stay in their documented ranges.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "json.h"
#include "rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
	if (!cond) {
		abort();
	}
}

/* The message must survive a trip through a JSON string. */
static void check_message(const char *m) {
	struct tr_json *s = tr_json_new_string(m), *back = NULL;
	char *text = NULL;
	size_t len = 0;

	if (s == NULL) {
		return; /* ENOMEM */
	}
	if (tr_json_dump(s, &text, &len) == 0) {
		check(tr_json_parse(text, len, &back, NULL) == 0);
		check(tr_json_equal(s, back));
		tr_json_free(back);
		free(text);
	}
	tr_json_free(s);
}

static void check_body(const struct tr_json *params) {
	struct tr_upstream_request req = {
		.path = "Workspaces/WS1/Tasks/WT1",
		.method = "POST",
		.api_version = "v1",
		.params = params,
		.if_match = 3,
	};
	struct tr_json *back = NULL;
	char *body = NULL;
	size_t len = 0;
	int r = tr_rest_build_body(&req, "tok", &body, &len);

	if (params->type != TR_JSON_OBJECT) {
		check(r == -EINVAL);
		return;
	}
	check(r == 0 || r == -ENOMEM);
	if (r == 0) {
		check(tr_json_parse(body, len, &back, NULL) == 0);
		check(tr_json_is(back, TR_JSON_OBJECT));
		check(tr_json_equal(tr_json_get(back, "params"), params));
		tr_json_free(back);
		free(body);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct tr_rest_outcome o;
	const struct tr_upstream_reply *r = &o.reply;
	long status;
	int cc;
	unsigned attempt;
	uint32_t rnd;

	if (size < 4) {
		return 0;
	}
	status = (long)(((unsigned)data[0] << 8 | data[1]) % 1000);
	cc = (data[2] & 0x80) ? (data[2] & 0x7f) : 0;
	attempt = data[3];
	rnd = (uint32_t)size * 2654435761u;

	tr_rest_classify(cc, status, (const char *)data + 4, size - 4,
		(data[3] & 1) ? "curl says no" : NULL, &o);
	if (cc != 0) {
		check(r->err < 0 && r->http_status == 0 && r->payload == NULL && o.doc == NULL);
		check(r->message != NULL);
		check(tr_rest_reply_is_transient(r));
	} else if (status >= 200 && status < 300) {
		check(r->http_status == status);
		if (r->err == 0) {
			check(r->payload != NULL && o.doc != NULL);
			check_body(r->payload);
		} else {
			check(r->err == -EBADMSG && r->payload == NULL && o.doc == NULL);
			check(r->message != NULL);
		}
		check(!tr_rest_reply_is_transient(r) || r->err != 0);
	} else {
		check(r->err == 0 && r->payload == NULL && o.doc == NULL && r->message != NULL);
		check(tr_rest_reply_is_transient(r) == (status == 429 || status >= 500));
	}
	if (r->message) {
		check(strlen(r->message) < sizeof(o.message));
		check_message(r->message);
	}
	tr_rest_outcome_done(&o);
	check(o.doc == NULL && o.reply.payload == NULL);

	(void)tr_rest_retry_delay_ms(attempt, rnd);
	{
		uint64_t b = tr_backoff_ms(attempt, rnd);
		unsigned k = attempt < 1 ? 1 : attempt;
		uint64_t hi = k >= 5 ? 30000 : 1000 * ((1ull << k) - 1);

		check(b >= 800 && b <= (hi < 800 ? 800 : hi));
	}
	return 0;
}
