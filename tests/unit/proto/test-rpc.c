/*
 * test-rpc.c — JSON-RPC messages (proto/rpc.c).
 *
 * A table of accepted messages and one of refused messages with the expected code, reason
 * and recovered id; builders round-tripped through the parser (and, framed, through the
 * frame decoder); size limits of the framed builders; allocation failures everywhere.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "tr-limits.h"
#include "alloc-fail.h"
#include "rpc.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct good {
	const char *in;
	enum tr_rpc_kind kind;
	enum tr_rpc_id_type id_type;
	int64_t id_i;
	const char *id_s;
	const char *method;
	const char *params; /* expected params as JSON, NULL when absent */
	const char *result; /* result, or error data */
	int64_t code;
	const char *message;
};

static const struct good good[] = {
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"task.list\"}", TR_RPC_REQUEST, TR_RPC_ID_INT, 1,
		NULL, "task.list", NULL, NULL, 0, NULL },
	{ "{\"id\":\"abc\",\"method\":\"m\",\"params\":{\"a\":[1]},\"jsonrpc\":\"2.0\"}", TR_RPC_REQUEST,
		TR_RPC_ID_STRING, 0, "abc", "m", "{\"a\":[1]}", NULL, 0, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":-9223372036854775808,\"method\":\"m\",\"params\":[1,\"x\"]}",
		TR_RPC_REQUEST, TR_RPC_ID_INT, INT64_MIN, NULL, "m", "[1,\"x\"]", NULL, 0, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"m\",\"params\":{}}", TR_RPC_REQUEST,
		TR_RPC_ID_INT, 0, NULL, "m", "{}", NULL, 0, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":\"\",\"method\":\"m\",\"params\":[]}", TR_RPC_REQUEST,
		TR_RPC_ID_STRING, 0, "", "m", "[]", NULL, 0, NULL },
	/* unknown members are ignored */
	{ "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"m\",\"x-extra\":{\"y\":1}}", TR_RPC_REQUEST,
		TR_RPC_ID_INT, 5, NULL, "m", NULL, NULL, 0, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"method\":\"task.updated\",\"params\":{\"sid\":\"WT1\"}}",
		TR_RPC_NOTIFICATION, TR_RPC_ID_NONE, 0, NULL, "task.updated", "{\"sid\":\"WT1\"}", NULL,
		0, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"method\":\"\xc3\xa9v\\u00e9nement\"}", TR_RPC_NOTIFICATION,
		TR_RPC_ID_NONE, 0, NULL, "\xc3\xa9v\xc3\xa9nement", NULL, NULL, 0, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":null}", TR_RPC_RESULT, TR_RPC_ID_INT, 1, NULL,
		NULL, NULL, "null", 0, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"result\":{\"tasks\":[]}}", TR_RPC_RESULT,
		TR_RPC_ID_STRING, 0, "q", NULL, NULL, "{\"tasks\":[]}", 0, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":[1,2]}", TR_RPC_RESULT, TR_RPC_ID_INT, 2, NULL,
		NULL, NULL, "[1,2]", 0, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32601,\"message\":\"nope\"}}",
		TR_RPC_ERROR, TR_RPC_ID_INT, 3, NULL, NULL, NULL, NULL, -32601, "nope" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32003,\"message\":\"up\","
	  "\"data\":{\"httpStatus\":400,\"twilioCode\":20001,\"message\":\"bad\"}}}",
		TR_RPC_ERROR, TR_RPC_ID_INT, 3, NULL, NULL, NULL,
		"{\"httpStatus\":400,\"twilioCode\":20001,\"message\":\"bad\"}", -32003, "up" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"Parse error\","
	  "\"data\":{\"reason\":\"syntax\"}}}",
		TR_RPC_ERROR, TR_RPC_ID_NULL, 0, NULL, NULL, NULL, "{\"reason\":\"syntax\"}", -32700,
		"Parse error" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":1,\"message\":\"\",\"data\":null}}",
		TR_RPC_ERROR, TR_RPC_ID_INT, 4, NULL, NULL, NULL, "null", 1, "" },
};

static void assert_json_text(const struct tr_json *v, const char *want) {
	char *out;

	if (!want) {
		assert_null(v);
		return;
	}
	assert_non_null(v);
	assert_int_equal(tr_json_dump(v, &out, NULL), 0);
	assert_string_equal(out, want);
	free(out);
}

static void check_good(const struct good *g, const struct tr_rpc_msg *m) {
	assert_int_equal(m->kind, g->kind);
	assert_int_equal(m->id.type, g->id_type);
	if (g->id_type == TR_RPC_ID_INT) {
		assert_true(m->id.i == g->id_i);
	}
	if (g->id_type == TR_RPC_ID_STRING) {
		assert_string_equal(m->id.s, g->id_s);
	} else {
		assert_null(m->id.s);
	}
	if (g->method) {
		assert_string_equal(m->method, g->method);
	} else {
		assert_null(m->method);
	}
	assert_json_text(m->params, g->params);
	if (g->kind == TR_RPC_RESULT) {
		assert_json_text(m->result, g->result);
	} else {
		assert_null(m->result);
	}
	if (g->kind == TR_RPC_ERROR) {
		assert_true(m->error_code == g->code);
		assert_string_equal(m->error_message, g->message);
		assert_json_text(m->error_data, g->result);
	} else {
		assert_null(m->error_message);
		assert_null(m->error_data);
	}
}

/* Rebuild a parsed message with the builders. */
static int rebuild(const struct tr_rpc_msg *m, bool framed, uint32_t max, char **out, size_t *len) {
	switch (m->kind) {
	case TR_RPC_REQUEST:
		return framed ? tr_rpc_build_request_framed(&m->id, m->method, m->params, max, out, len)
			      : tr_rpc_build_request(&m->id, m->method, m->params, out, len);
	case TR_RPC_NOTIFICATION:
		return framed ? tr_rpc_build_notification_framed(m->method, m->params, max, out, len)
			      : tr_rpc_build_notification(m->method, m->params, out, len);
	case TR_RPC_RESULT:
		return framed ? tr_rpc_build_result_framed(&m->id, m->result, max, out, len)
			      : tr_rpc_build_result(&m->id, m->result, out, len);
	case TR_RPC_ERROR:
		return framed ? tr_rpc_build_error_framed(&m->id, (int)m->error_code, m->error_message,
					m->error_data, max, out, len)
			      : tr_rpc_build_error(&m->id, (int)m->error_code, m->error_message,
					m->error_data, out, len);
	default:
		return -EINVAL;
	}
}

static void test_good(void **state) {
	for (size_t i = 0; i < N_ELEMS(good); i++) {
		struct tr_rpc_msg *m = NULL, *m2 = NULL;
		struct tr_rpc_error err;
		char *out, *payload;
		size_t len, plen;
		struct tr_frame_decoder d;
		int r;

		memset(&err, 0xaa, sizeof(err));
		r = tr_rpc_parse(good[i].in, strlen(good[i].in), &m, &err);
		if (r != 0) {
			fail_msg("case %zu: %d %s", i, r, err.message);
		}
		assert_int_equal(err.code, 0);
		assert_int_equal(err.id.type, TR_RPC_ID_NONE);
		tr_rpc_error_done(&err);
		check_good(&good[i], m);

		/* Builders round trip. */
		assert_int_equal(rebuild(m, false, 0, &out, &len), 0);
		assert_int_equal(len, strlen(out));
		assert_int_equal(tr_rpc_parse(out, len, &m2, NULL), 0);
		check_good(&good[i], m2);
		m2 = tr_rpc_msg_free(m2);
		free(out);

		/* Framed: the header is right and the frame decodes back to the same message. */
		assert_int_equal(rebuild(m, true, 0, &out, &len), 0);
		tr_frame_decoder_init(&d, 0);
		assert_int_equal(tr_frame_decode(&d, out, len, &payload, &plen), (ssize_t)len);
		assert_int_equal(plen + 4, len);
		assert_memory_equal(payload, out + 4, plen);
		assert_int_equal(tr_rpc_parse(payload, plen, &m2, NULL), 0);
		check_good(&good[i], m2);
		free(payload);
		tr_frame_decoder_done(&d);

		/* Exactly at the limit passes, one byte less fails. */
		free(out);
		assert_int_equal(rebuild(m, true, (uint32_t)plen, &out, &len), 0);
		free(out);
		out = (char *)&out;
		assert_int_equal(rebuild(m, true, (uint32_t)plen - 1, &out, &len), -EMSGSIZE);
		assert_ptr_equal(out, (char *)&out);

		tr_rpc_msg_free(m2);
		tr_rpc_msg_free(m);
	}
}

struct bad {
	const char *in;
	size_t len;
	int code;
	const char *reason;
	enum tr_rpc_id_type id_type; /* recovered id */
	int64_t id_i;
	const char *id_s;
};

#define P TR_RPC_PARSE_ERROR
#define I TR_RPC_INVALID_REQUEST
#define NUL_ID TR_RPC_ID_NULL, 0, NULL
#define INT_ID(x) TR_RPC_ID_INT, x, NULL
#define STR_ID(x) TR_RPC_ID_STRING, 0, x

static const struct bad bad[] = {
	/* not JSON */
	{ "{", 0, P, "syntax", NUL_ID },
	{ "", 0, P, "syntax", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}x", 0, P, "syntax", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}{}", 0, P, "syntax", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}\"x", 0, P, "syntax", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",}", 0, P, "syntax", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", 0, P, "utf8", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xc0\xae\"}", 0, P, "utf8", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xed\xa0\x80\"}", 0, P, "utf8", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\\udfff\"}", 0, P, "utf8", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\u0000\"}", 0, P, "nul", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\0\"}", 38, P, "nul", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"m\"}", 0, P, "duplicate-key", NUL_ID },
	/* batches and non-objects */
	{ "[]", 0, I, "batch", NUL_ID },
	{ "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}]", 0, I, "batch", NUL_ID },
	{ "1", 0, I, "not-object", NUL_ID },
	{ "\"x\"", 0, I, "not-object", NUL_ID },
	{ "null", 0, I, "not-object", NUL_ID },
	/* jsonrpc member; the id is recovered */
	{ "{\"id\":7,\"method\":\"m\"}", 0, I, "jsonrpc", INT_ID(7) },
	{ "{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"m\"}", 0, I, "jsonrpc", INT_ID(7) },
	{ "{\"jsonrpc\":2.0,\"id\":\"s\",\"method\":\"m\"}", 0, I, "jsonrpc", STR_ID("s") },
	{ "{\"jsonrpc\":\"2.0 \",\"id\":7,\"method\":\"m\"}", 0, I, "jsonrpc", INT_ID(7) },
	{ "{\"jsonrpc\":null,\"id\":7,\"method\":\"m\"}", 0, I, "jsonrpc", INT_ID(7) },
	{ "{\"jsonrpc\":\"1.0\",\"id\":1.5,\"method\":\"m\"}", 0, I, "jsonrpc", NUL_ID },
	{ "{}", 0, I, "jsonrpc", NUL_ID },
	/* id */
	{ "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"m\"}", 0, I, "id", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"m\"}", 0, I, "id", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1.0,\"method\":\"m\"}", 0, I, "id", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1e2,\"method\":\"m\"}", 0, I, "id", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":9223372036854775808,\"method\":\"m\"}", 0, I, "id", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"m\"}", 0, I, "id", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"m\"}", 0, I, "id", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"m\"}", 0, I, "id", NUL_ID },
	/* method */
	{ "{\"jsonrpc\":\"2.0\",\"id\":8}", 0, I, "method", INT_ID(8) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":8,\"params\":{}}", 0, I, "method", INT_ID(8) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"\"}", 0, I, "method", INT_ID(8) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":5}", 0, I, "method", INT_ID(8) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":\"r\",\"method\":null}", 0, I, "method", STR_ID("r") },
	{ "{\"jsonrpc\":\"2.0\",\"method\":[\"m\"]}", 0, I, "method", NUL_ID },
	/* params */
	{ "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"m\",\"params\":\"x\"}", 0, I, "params", INT_ID(9) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"m\",\"params\":5}", 0, I, "params", INT_ID(9) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"m\",\"params\":null}", 0, I, "params", INT_ID(9) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"m\",\"params\":true}", 0, I, "params", INT_ID(9) },
	{ "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":1}", 0, I, "params", NUL_ID },
	/* method together with a response member */
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"result\":1}", 0, I, "mixed", INT_ID(1) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"error\":{}}", 0, I, "mixed", INT_ID(1) },
	/* responses */
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{\"code\":1,\"message\":\"x\"}}", 0, I,
		"result-error", INT_ID(1) },
	{ "{\"jsonrpc\":\"2.0\",\"result\":1}", 0, I, "id", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":1}", 0, I, "id", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"result\":1}", 0, I, "id", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,\"message\":\"x\"}}", 0, I, "id", NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":false,\"error\":{\"code\":1,\"message\":\"x\"}}", 0, I, "id",
		NUL_ID },
	{ "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":\"boom\"}", 0, I, "error", INT_ID(2) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":null}", 0, I, "error", INT_ID(2) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"message\":\"x\"}}", 0, I, "error", INT_ID(2) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":1.5,\"message\":\"x\"}}", 0, I, "error",
		INT_ID(2) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":\"1\",\"message\":\"x\"}}", 0, I, "error",
		INT_ID(2) },
	{ "{\"jsonrpc\":\"2.0\",\"id\":\"e\",\"error\":{\"code\":1}}", 0, I, "error", STR_ID("e") },
	{ "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":1,\"message\":3}}", 0, I, "error",
		INT_ID(2) },
};

static void test_bad(void **state) {
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		struct tr_rpc_msg *m = (struct tr_rpc_msg *)&m;
		struct tr_rpc_error err;
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].in);
		int r = tr_rpc_parse(bad[i].in, len, &m, &err);

		if (r != -EBADMSG || err.code != bad[i].code || !err.reason ||
			strcmp(err.reason, bad[i].reason) != 0 || err.id.type != bad[i].id_type) {
			fail_msg("case %zu (%s): r=%d code=%d reason=%s id=%d (%s)", i, bad[i].in, r,
				err.code, err.reason ? err.reason : "(null)", err.id.type, err.message);
		}
		assert_ptr_equal(m, (struct tr_rpc_msg *)&m);
		assert_true(strlen(err.message) > 0);
		if (bad[i].id_type == TR_RPC_ID_INT) {
			assert_true(err.id.i == bad[i].id_i);
		}
		if (bad[i].id_type == TR_RPC_ID_STRING) {
			assert_string_equal(err.id.s, bad[i].id_s);
		}

		/* The server's answer to it is a well-formed error with the recovered id. */
		{
			struct tr_json *data = tr_json_new_object();
			struct tr_rpc_msg *reply;
			char *out;
			size_t olen;

			assert_int_equal(tr_json_object_set(data, "reason", tr_json_new_string(err.reason)),
				0);
			assert_int_equal(tr_rpc_build_error(&err.id, err.code, err.message, data, &out,
						 &olen),
				0);
			assert_int_equal(tr_rpc_parse(out, olen, &reply, NULL), 0);
			assert_int_equal(reply->kind, TR_RPC_ERROR);
			assert_int_equal(reply->id.type, bad[i].id_type);
			assert_true(reply->error_code == bad[i].code);
			assert_string_equal(tr_json_get_string(reply->error_data, "reason"), bad[i].reason);
			tr_rpc_msg_free(reply);
			tr_json_free(data);
			free(out);
		}
		tr_rpc_error_done(&err);
		assert_int_equal(err.id.type, TR_RPC_ID_NONE);

		/* ret_error may be NULL. */
		assert_int_equal(tr_rpc_parse(bad[i].in, len, &m, NULL), -EBADMSG);
	}
}

/* JSON limits surface as parse errors with their reason. */
static void test_limits(void **state) {
	char *s = malloc(200000);
	size_t len = 0;
	struct tr_rpc_msg *m;
	struct tr_rpc_error err;

	if (!s) {
		fail();
		return;
	}
	/* params nested to the limit: the message object is level 1, params level 2, ... */
	for (int depth = TR_JSON_MAX_DEPTH; depth <= TR_JSON_MAX_DEPTH + 1; depth++) {
		len = (size_t)sprintf(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":");
		for (int k = 1; k < depth; k++) {
			s[len++] = '[';
		}
		for (int k = 1; k < depth; k++) {
			s[len++] = ']';
		}
		s[len++] = '}';
		if (depth == TR_JSON_MAX_DEPTH) {
			assert_int_equal(tr_rpc_parse(s, len, &m, &err), 0);
			tr_rpc_msg_free(m);
		} else {
			assert_int_equal(tr_rpc_parse(s, len, &m, &err), -EBADMSG);
			assert_int_equal(err.code, TR_RPC_PARSE_ERROR);
			assert_string_equal(err.reason, "depth");
			assert_int_equal(err.id.type, TR_RPC_ID_NULL);
			tr_rpc_error_done(&err);
		}
	}
	/* params with exactly the key limit, then one more */
	for (int n = TR_JSON_MAX_KEYS; n <= TR_JSON_MAX_KEYS + 1; n++) {
		len = (size_t)sprintf(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{");
		for (int k = 0; k < n; k++) {
			len += (size_t)sprintf(s + len, "%s\"p%d\":%d", k ? "," : "", k, k);
		}
		len += (size_t)sprintf(s + len, "}}");
		if (n == TR_JSON_MAX_KEYS) {
			assert_int_equal(tr_rpc_parse(s, len, &m, &err), 0);
			assert_int_equal(m->params->u.obj.n, TR_JSON_MAX_KEYS);
			tr_rpc_msg_free(m);
		} else {
			assert_int_equal(tr_rpc_parse(s, len, &m, &err), -EBADMSG);
			assert_int_equal(err.code, TR_RPC_PARSE_ERROR);
			assert_string_equal(err.reason, "keys");
			tr_rpc_error_done(&err);
		}
	}
	free(s);
}

static void test_builders(void **state) {
	struct tr_rpc_id iid = { .type = TR_RPC_ID_INT, .i = 42 };
	struct tr_rpc_id sid = { .type = TR_RPC_ID_STRING, .s = (char *)"a\"b\n" };
	struct tr_rpc_id nid = { .type = TR_RPC_ID_NULL };
	struct tr_rpc_id none = { .type = TR_RPC_ID_NONE };
	struct tr_rpc_id badstr = { .type = TR_RPC_ID_STRING, .s = NULL };
	struct tr_json *obj = tr_json_new_object(), *str = tr_json_new_string("x");
	char *out = (char *)&out;
	size_t len;

	/* Exact output. */
	assert_int_equal(tr_rpc_build_request(&iid, "task.get", obj, &out, &len), 0);
	assert_string_equal(out, "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"task.get\",\"params\":{}}");
	assert_int_equal(len, strlen(out));
	free(out);
	assert_int_equal(tr_rpc_build_request(&sid, "m", NULL, &out, NULL), 0);
	assert_string_equal(out, "{\"jsonrpc\":\"2.0\",\"id\":\"a\\\"b\\n\",\"method\":\"m\"}");
	free(out);
	assert_int_equal(tr_rpc_build_notification("ev", NULL, &out, &len), 0);
	assert_string_equal(out, "{\"jsonrpc\":\"2.0\",\"method\":\"ev\"}");
	free(out);
	assert_int_equal(tr_rpc_build_result(&iid, NULL, &out, &len), 0);
	assert_string_equal(out, "{\"jsonrpc\":\"2.0\",\"id\":42,\"result\":null}");
	free(out);
	assert_int_equal(tr_rpc_build_result(&iid, str, &out, &len), 0);
	assert_string_equal(out, "{\"jsonrpc\":\"2.0\",\"id\":42,\"result\":\"x\"}");
	free(out);
	assert_int_equal(tr_rpc_build_error(&nid, TR_RPC_PARSE_ERROR, NULL, NULL, &out, &len), 0);
	assert_string_equal(out,
		"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"parse error\"}}");
	free(out);
	assert_int_equal(tr_rpc_build_error(NULL, TR_RPC_TIMEOUT, "t\tx", obj, &out, &len), 0);
	assert_string_equal(out, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32005,"
				 "\"message\":\"t\\tx\",\"data\":{}}}");
	free(out);
	assert_int_equal(tr_rpc_build_error_framed(&iid, TR_RPC_NOT_FOUND, "x", NULL, 0, &out, &len),
		0);
	assert_memory_equal(out, "\0\0\0\x3f", 4);
	assert_int_equal(len, 4 + 0x3f);
	assert_memory_equal(out + 4,
		"{\"jsonrpc\":\"2.0\",\"id\":42,\"error\":{\"code\":-32001,\"message\":\"x\"}}", 0x3f);
	free(out);

	/* Invalid arguments: nothing written. */
	out = (char *)&out;
	assert_int_equal(tr_rpc_build_request(NULL, "m", NULL, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_request(&nid, "m", NULL, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_request(&none, "m", NULL, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_request(&badstr, "m", NULL, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_request(&iid, "", NULL, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_request(&iid, NULL, NULL, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_request(&iid, "m", str, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_request_framed(&none, "m", NULL, 0, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_notification("m", str, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_notification(NULL, NULL, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_notification_framed("", NULL, 0, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_result(NULL, NULL, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_result(&nid, NULL, &out, &len), -EINVAL);
	assert_int_equal(tr_rpc_build_result_framed(&none, NULL, 0, &out, &len), -EINVAL);
	assert_ptr_equal(out, (char *)&out);

	tr_json_free(obj);
	tr_json_free(str);
}

/* Framed builders against the default limit: a result exactly at 1 MiB, and one over. */
static void test_framed_default_limit(void **state) {
	struct tr_rpc_id id = { .type = TR_RPC_ID_INT, .i = 1 };
	const size_t overhead = strlen("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\"}");
	size_t n = TR_FRAME_MAX_PAYLOAD_DEFAULT - overhead;
	char *big = malloc(n + 1), *out = NULL, *payload;
	struct tr_json *s;
	size_t len, plen;
	struct tr_frame_decoder d;

	assert_non_null(big);
	memset(big, 'z', n + 1);
	s = tr_json_new_stringn(big, n);
	assert_int_equal(tr_rpc_build_result_framed(&id, s, 0, &out, &len), 0);
	assert_int_equal(len, 4 + TR_FRAME_MAX_PAYLOAD_DEFAULT);
	tr_frame_decoder_init(&d, 0);
	assert_int_equal(tr_frame_decode(&d, out, len, &payload, &plen), (ssize_t)len);
	assert_int_equal(plen, TR_FRAME_MAX_PAYLOAD_DEFAULT);
	free(payload);
	tr_frame_decoder_done(&d);
	free(out);
	tr_json_free(s);

	s = tr_json_new_stringn(big, n + 1);
	assert_int_equal(tr_rpc_build_result_framed(&id, s, 0, &out, &len), -EMSGSIZE);
	assert_int_equal(tr_rpc_build_notification_framed("m", NULL, 10, &out, &len), -EMSGSIZE);
	assert_int_equal(tr_rpc_build_request_framed(&id, "m", NULL, 10, &out, &len), -EMSGSIZE);
	assert_int_equal(tr_rpc_build_error_framed(&id, 1, "m", NULL, 10, &out, &len), -EMSGSIZE);
	tr_json_free(s);
	free(big);
}

/* Decode one framed message from a builder and parse it. */
static struct tr_rpc_msg *parse_framed(const char *f, size_t flen) {
	struct tr_frame_decoder d;
	struct tr_rpc_msg *m = NULL;
	char *payload;
	size_t plen;

	tr_frame_decoder_init(&d, 0);
	assert_int_equal(tr_frame_decode(&d, f, flen, &payload, &plen), (ssize_t)flen);
	assert_non_null(payload);
	assert_int_equal(tr_rpc_parse(payload, plen, &m, NULL), 0);
	free(payload);
	tr_frame_decoder_done(&d);
	return m;
}

static void test_refusal_replies(void **state) {
	static const char in[] = "{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"method\":\"m\",\"params\":3}";
	struct tr_rpc_error err;
	struct tr_rpc_msg *m;
	char *f = NULL;
	size_t flen;

	assert_int_equal(tr_rpc_parse(in, strlen(in), &m, &err), -EBADMSG);
	assert_int_equal(tr_rpc_build_refusal_framed(&err, 0, &f, &flen), 0);
	m = parse_framed(f, flen);
	assert_int_equal(m->kind, TR_RPC_ERROR);
	assert_int_equal(m->id.type, TR_RPC_ID_STRING);
	assert_string_equal(m->id.s, "r1");
	assert_true(m->error_code == TR_RPC_INVALID_REQUEST);
	assert_string_equal(m->error_message, err.message);
	assert_string_equal(tr_json_get_string(m->error_data, "reason"), "params");
	tr_rpc_msg_free(m);
	free(f);
	f = NULL;
	assert_int_equal(tr_rpc_build_refusal_framed(&err, 20, &f, &flen), -EMSGSIZE);
	ALLOC_FAIL_LOOP(tr_rpc_build_refusal_framed(&err, 0, &f, &flen), (free(f), f = NULL));
	tr_rpc_error_done(&err);

	/* The frame-size message, with the length the decoder saw. */
	{
		struct tr_frame_decoder d;
		char *payload;
		int64_t x;

		tr_frame_decoder_init(&d, 100);
		assert_int_equal(tr_frame_decoder_declared_length(&d), 0);
		assert_int_equal(tr_frame_decode(&d, "\0\0\x01", 3, &payload, NULL), 3);
		assert_int_equal(tr_frame_decoder_declared_length(&d), 0);
		assert_int_equal(tr_frame_decode(&d, "\x01", 1, &payload, NULL), -EMSGSIZE);
		assert_int_equal(tr_frame_decoder_declared_length(&d), 257);
		assert_int_equal(tr_rpc_build_frame_error_framed(d.max_payload,
					 tr_frame_decoder_declared_length(&d), &f, &flen),
			0);
		tr_frame_decoder_done(&d);
		m = parse_framed(f, flen);
		assert_int_equal(m->id.type, TR_RPC_ID_NULL);
		assert_true(m->error_code == TR_RPC_INVALID_REQUEST);
		assert_string_equal(tr_json_get_string(m->error_data, "reason"), "frame-size");
		assert_int_equal(tr_json_get_int(m->error_data, "limit", &x), 0);
		assert_int_equal(x, 100);
		assert_int_equal(tr_json_get_int(m->error_data, "value", &x), 0);
		assert_int_equal(x, 257);
		assert_non_null(strstr(m->error_message, "257"));
		tr_rpc_msg_free(m);
		free(f);
		f = NULL;
		ALLOC_FAIL_LOOP(tr_rpc_build_frame_error_framed(UINT32_MAX, UINT32_MAX, &f, &flen),
			(free(f), f = NULL));
	}
}

static void test_ids(void **state) {
	struct tr_rpc_id s = { .type = TR_RPC_ID_STRING, .s = (char *)"xyz" }, c, n;

	assert_int_equal(tr_rpc_id_copy(&c, &s), 0);
	assert_int_equal(c.type, TR_RPC_ID_STRING);
	assert_string_equal(c.s, "xyz");
	assert_ptr_not_equal(c.s, s.s);
	tr_rpc_id_done(&c);
	assert_int_equal(c.type, TR_RPC_ID_NONE);
	assert_null(c.s);
	tr_rpc_id_done(&c);
	tr_rpc_id_done(NULL);

	n = (struct tr_rpc_id){ .type = TR_RPC_ID_INT, .i = -3 };
	assert_int_equal(tr_rpc_id_copy(&c, &n), 0);
	assert_int_equal(c.type, TR_RPC_ID_INT);
	assert_true(c.i == -3);
	assert_null(c.s);

	alloc_reset(0);
	c.type = TR_RPC_ID_INT;
	assert_int_equal(tr_rpc_id_copy(&c, &s), -ENOMEM);
	alloc_reset(-1);
	assert_int_equal(c.type, TR_RPC_ID_INT); /* untouched */
	tr_rpc_error_done(NULL);
	assert_null(tr_rpc_msg_free(NULL));
}

static void test_code_str(void **state) {
	static const struct {
		int code;
		const char *name;
	} cases[] = {
		{ TR_RPC_PARSE_ERROR, "parse error" },
		{ TR_RPC_INVALID_REQUEST, "invalid request" },
		{ TR_RPC_METHOD_NOT_FOUND, "method not found" },
		{ TR_RPC_INVALID_PARAMS, "invalid params" },
		{ TR_RPC_INTERNAL_ERROR, "internal error" },
		{ TR_RPC_NOT_FOUND, "not found" },
		{ TR_RPC_NOT_CONNECTED, "not connected" },
		{ TR_RPC_UPSTREAM_ERROR, "upstream error" },
		{ TR_RPC_VERSION_CONFLICT, "version conflict" },
		{ TR_RPC_TIMEOUT, "timeout" },
		{ TR_RPC_RATE_LIMITED, "rate limited" },
		{ TR_RPC_TOO_MANY_REQUESTS, "too many requests" },
		{ TR_RPC_OVERLOADED, "overloaded" },
		{ TR_RPC_TOKEN_EXPIRED, "token expired" },
		{ TR_RPC_REFRESH_PENDING, "refresh pending" },
		{ TR_RPC_REPLAY_GONE, "replay gone" },
		{ TR_RPC_INVALID_STATE, "invalid state" },
		{ TR_RPC_NETWORK_ERROR, "network error" },
		{ -32050, "server error" },
		{ 0, "unknown error" },
		{ 12345, "unknown error" },
	};

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		assert_string_equal(tr_rpc_code_str(cases[i].code), cases[i].name);
	}
}

/* Allocation failures: parse (good and bad messages) and every builder. */
static void test_enomem(void **state) {
	static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"m\","
				  "\"params\":{\"a\":[1,2,{\"b\":\"c\"}]}}";
	static const char err_msg[] = "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{\"code\":1,"
				      "\"message\":\"m\",\"data\":[1]}}";
	static const char invalid[] = "{\"jsonrpc\":\"1.0\",\"id\":\"keep-me\",\"method\":\"m\"}";
	struct tr_rpc_id id = { .type = TR_RPC_ID_STRING, .s = (char *)"x" };
	struct tr_rpc_msg *m = NULL;
	struct tr_rpc_error err;
	struct tr_json *params;
	char *out = NULL;
	long fail;

	ALLOC_FAIL_LOOP(tr_rpc_parse(req, strlen(req), &m, &err), (m = tr_rpc_msg_free(m)));
	ALLOC_FAIL_LOOP(tr_rpc_parse(err_msg, strlen(err_msg), &m, &err), (m = tr_rpc_msg_free(m)));

	/* A refused message: -ENOMEM until enough memory, then -EBADMSG with the id. */
	for (fail = 0;; fail++) {
		int r;

		alloc_reset(fail);
		r = tr_rpc_parse(invalid, strlen(invalid), &m, &err);
		alloc_reset(-1);
		if (r == -EBADMSG) {
			assert_int_equal(err.id.type, TR_RPC_ID_STRING);
			assert_string_equal(err.id.s, "keep-me");
			tr_rpc_error_done(&err);
			break;
		}
		assert_int_equal(r, -ENOMEM);
		assert_int_equal(err.code, TR_RPC_INTERNAL_ERROR);
		tr_rpc_error_done(&err);
	}
	assert_true(fail > 0);

	assert_int_equal(tr_json_parse("{\"a\":[1,2,3]}", 13, &params, NULL), 0);
	ALLOC_FAIL_LOOP(tr_rpc_build_request(&id, "m", params, &out, NULL), (free(out), out = NULL));
	ALLOC_FAIL_LOOP(tr_rpc_build_notification("m", params, &out, NULL), (free(out), out = NULL));
	ALLOC_FAIL_LOOP(tr_rpc_build_result(&id, params, &out, NULL), (free(out), out = NULL));
	ALLOC_FAIL_LOOP(tr_rpc_build_error(&id, 1, "msg", params, &out, NULL), (free(out), out = NULL));
	ALLOC_FAIL_LOOP(tr_rpc_build_request_framed(&id, "m", params, 0, &out, NULL),
		(free(out), out = NULL));
	ALLOC_FAIL_LOOP(tr_rpc_build_notification_framed("m", params, 0, &out, NULL),
		(free(out), out = NULL));
	ALLOC_FAIL_LOOP(tr_rpc_build_result_framed(&id, params, 0, &out, NULL), (free(out), out = NULL));
	ALLOC_FAIL_LOOP(tr_rpc_build_error_framed(&id, 1, "msg", params, 0, &out, NULL),
		(free(out), out = NULL));
	tr_json_free(params);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_builders),
		cmocka_unit_test(test_framed_default_limit),
		cmocka_unit_test(test_refusal_replies),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_code_str),
		cmocka_unit_test(test_enomem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
