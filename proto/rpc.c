/*
 * rpc.c — JSON-RPC 2.0 messages: classify and check a parsed tree, and build replies.
 *
 * Parsing first builds the tree with tr_json_parse (which enforces the JSON limits), then
 * checks the message rules. When a message is refused and its "id" member is itself valid,
 * the id is handed back in the error so that the server can reply to the right request.
 *
 * The builders write the JSON text directly (no intermediate tree); the *_framed variants
 * write it after 4 reserved bytes and fill the frame header in at the end.
 */
#include "rpc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "tr-limits.h"

static char *str_dup(const char *s) {
	size_t n = strlen(s);
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n + 1);
	}
	return p;
}

/* ------------------------------------------------------------------ ids */

void tr_rpc_id_done(struct tr_rpc_id *id) {
	if (!id) {
		return;
	}
	free(id->s);
	id->s = NULL;
	id->i = 0;
	id->type = TR_RPC_ID_NONE;
}

int tr_rpc_id_copy(struct tr_rpc_id *dst, const struct tr_rpc_id *src) {
	struct tr_rpc_id c = { .type = src->type, .i = src->i };

	if (src->type == TR_RPC_ID_STRING) {
		c.s = str_dup(src->s ? src->s : "");
		if (!c.s) {
			return -ENOMEM;
		}
	}
	*dst = c;
	return 0;
}

/* Read a JSON value as an id. Returns 0, -EINVAL if it is not a valid id, or -ENOMEM. */
static int id_from_json(const struct tr_json *v, struct tr_rpc_id *ret) {
	if (tr_json_is_int(v)) {
		*ret = (struct tr_rpc_id){ .type = TR_RPC_ID_INT, .i = v->u.num.i };
		return 0;
	}
	if (tr_json_is(v, TR_JSON_STRING)) {
		char *s = str_dup(v->u.str.s);

		if (!s) {
			return -ENOMEM;
		}
		*ret = (struct tr_rpc_id){ .type = TR_RPC_ID_STRING, .s = s };
		return 0;
	}
	return -EINVAL;
}

/* ----------------------------------------------------------------- parse */

struct tr_rpc_msg *tr_rpc_msg_free(struct tr_rpc_msg *m) {
	if (!m) {
		return NULL;
	}
	tr_rpc_id_done(&m->id);
	free(m->method);
	tr_json_free(m->params);
	tr_json_free(m->result);
	free(m->error_message);
	tr_json_free(m->error_data);
	free(m);
	return NULL;
}

void tr_rpc_error_done(struct tr_rpc_error *e) {
	if (e) {
		tr_rpc_id_done(&e->id);
	}
}

/* Take a member's value out of the tree (the tree keeps a NULL slot, which free accepts). */
static struct tr_json *steal(struct tr_json *obj, const char *key) {
	for (size_t i = 0; i < obj->u.obj.n; i++) {
		if (strcmp(obj->u.obj.keys[i], key) == 0) {
			struct tr_json *v = obj->u.obj.vals[i];

			obj->u.obj.vals[i] = NULL;
			return v;
		}
	}
	return NULL;
}

static void set_error(struct tr_rpc_error *e, int code, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void set_error(struct tr_rpc_error *e, int code, const char *reason, const char *fmt, ...) {
	va_list ap;

	e->code = code;
	e->reason = reason;
	va_start(ap, fmt);
	(void)vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

static const char *json_reason(enum tr_json_error je) {
	switch (je) {
	case TR_JSON_EDEPTH:
		return "depth";
	case TR_JSON_EKEYS:
		return "keys";
	case TR_JSON_EUTF8:
		return "utf8";
	case TR_JSON_ENUL:
		return "nul";
	case TR_JSON_EDUPKEY:
		return "duplicate-key";
	default:
		return "syntax";
	}
}

/* The "id" member into m->id: 0, -ENOMEM, or -EBADMSG with err set. */
static int take_id(const struct tr_json *id, struct tr_rpc_msg *m, struct tr_rpc_error *err) {
	int r = id_from_json(id, &m->id);

	if (r < 0 && r != -ENOMEM) {
		set_error(err, TR_RPC_INVALID_REQUEST, "id",
			"Invalid Request: \"id\" must be an integer or a string");
		return -EBADMSG;
	}
	return r;
}

/*
 * Check the members of a message object and fill m. Returns 0, -EBADMSG with err filled in
 * (code, reason, message; err->id is handled by the caller) or -ENOMEM.
 */
static int check_message(struct tr_json *root, struct tr_rpc_msg *m, struct tr_rpc_error *err) {
	const struct tr_json *ver = tr_json_get(root, "jsonrpc");
	const struct tr_json *id = tr_json_get(root, "id");
	const struct tr_json *method = tr_json_get(root, "method");
	const struct tr_json *params = tr_json_get(root, "params");
	const struct tr_json *result = tr_json_get(root, "result");
	const struct tr_json *error = tr_json_get(root, "error");
	int r;

	if (!tr_json_is(ver, TR_JSON_STRING) || strcmp(ver->u.str.s, "2.0") != 0) {
		set_error(err, TR_RPC_INVALID_REQUEST, "jsonrpc",
			"Invalid Request: \"jsonrpc\" must be \"2.0\"");
		return -EBADMSG;
	}

	if (method) {
		if (result || error) {
			set_error(err, TR_RPC_INVALID_REQUEST, "mixed",
				"Invalid Request: \"method\" together with \"result\" or "
				"\"error\"");
			return -EBADMSG;
		}
		if (id) {
			r = take_id(id, m, err);
			if (r < 0) {
				return r;
			}
		}
		if (!tr_json_is(method, TR_JSON_STRING) || method->u.str.len == 0) {
			set_error(err, TR_RPC_INVALID_REQUEST, "method",
				"Invalid Request: \"method\" must be a non-empty string");
			return -EBADMSG;
		}
		if (params && !tr_json_is(params, TR_JSON_OBJECT) &&
			!tr_json_is(params, TR_JSON_ARRAY)) {
			set_error(err, TR_RPC_INVALID_REQUEST, "params",
				"Invalid Request: \"params\" must be an object or an array");
			return -EBADMSG;
		}
		m->kind = id ? TR_RPC_REQUEST : TR_RPC_NOTIFICATION;
		m->method = str_dup(method->u.str.s);
		if (!m->method) {
			return -ENOMEM;
		}
		m->params = steal(root, "params");
		return 0;
	}

	if (!result && !error) {
		set_error(err, TR_RPC_INVALID_REQUEST, "method",
			"Invalid Request: no \"method\", \"result\" or \"error\"");
		return -EBADMSG;
	}
	if (result && error) {
		set_error(err, TR_RPC_INVALID_REQUEST, "result-error",
			"Invalid Request: both \"result\" and \"error\"");
		return -EBADMSG;
	}
	if (!id) {
		set_error(err, TR_RPC_INVALID_REQUEST, "id",
			"Invalid Request: response without \"id\"");
		return -EBADMSG;
	}
	if (error && tr_json_is(id, TR_JSON_NULL)) {
		/* The peer could not read our request's id. */
		m->id.type = TR_RPC_ID_NULL;
	} else {
		r = take_id(id, m, err);
		if (r < 0) {
			return r;
		}
	}

	if (result) {
		m->kind = TR_RPC_RESULT;
		m->result = steal(root, "result");
		return 0;
	}

	{
		const struct tr_json *code = tr_json_get(error, "code");
		const struct tr_json *msg = tr_json_get(error, "message");

		if (!tr_json_is(error, TR_JSON_OBJECT) || !tr_json_is_int(code) ||
			!tr_json_is(msg, TR_JSON_STRING)) {
			set_error(err, TR_RPC_INVALID_REQUEST, "error",
				"Invalid Request: \"error\" needs an integer \"code\" and a string "
				"\"message\"");
			return -EBADMSG;
		}
		m->kind = TR_RPC_ERROR;
		m->error_code = code->u.num.i;
		m->error_message = str_dup(msg->u.str.s);
		if (!m->error_message) {
			return -ENOMEM;
		}
		m->error_data = steal((struct tr_json *)error, "data");
	}
	return 0;
}

int tr_rpc_parse(const char *buf, size_t len, struct tr_rpc_msg **ret,
	struct tr_rpc_error *ret_error) {
	struct tr_rpc_error err = { .id = { .type = TR_RPC_ID_NULL } };
	struct tr_json *root = NULL;
	struct tr_rpc_msg *m = NULL;
	enum tr_json_error je;
	int r;

	r = tr_json_parse(buf, len, &root, &je);
	if (r == -ENOMEM) {
		goto out;
	}
	if (r < 0) {
		set_error(&err, TR_RPC_PARSE_ERROR, json_reason(je), "Parse error: %s",
			tr_json_error_str(je));
		r = -EBADMSG;
		goto out;
	}
	if (tr_json_is(root, TR_JSON_ARRAY)) {
		set_error(&err, TR_RPC_INVALID_REQUEST, "batch",
			"Invalid Request: batches are not supported");
		r = -EBADMSG;
		goto out;
	}
	if (!tr_json_is(root, TR_JSON_OBJECT)) {
		set_error(&err, TR_RPC_INVALID_REQUEST, "not-object",
			"Invalid Request: a message must be a JSON object");
		r = -EBADMSG;
		goto out;
	}

	m = calloc(1, sizeof(*m));
	if (!m) {
		r = -ENOMEM;
		goto out;
	}
	r = check_message(root, m, &err);
	if (r == -EBADMSG) {
		/* Give the id back when it is valid, so the reply can name the request. */
		int k = id_from_json(tr_json_get(root, "id"), &err.id);

		if (k == -ENOMEM) {
			r = -ENOMEM;
		} else if (k < 0) {
			err.id.type = TR_RPC_ID_NULL;
		}
	}

out:
	tr_json_free(root);
	if (r < 0) {
		tr_rpc_msg_free(m);
		if (r == -ENOMEM) {
			tr_rpc_id_done(&err.id);
			err = (struct tr_rpc_error){ .code = TR_RPC_INTERNAL_ERROR,
				.id = { .type = TR_RPC_ID_NULL } };
			(void)snprintf(err.message, sizeof(err.message),
				"Internal error: out of memory");
		}
		if (ret_error) {
			*ret_error = err;
		} else {
			tr_rpc_id_done(&err.id);
		}
		return r;
	}
	if (ret_error) {
		*ret_error = (struct tr_rpc_error){ .id = { .type = TR_RPC_ID_NONE } };
	}
	*ret = m;
	return 0;
}

/* --------------------------------------------------------------- builders */

struct out {
	char *buf;
	size_t len, cap;
	int r;
};

static void out_put(struct out *o, const char *s) {
	if (o->r == 0) {
		/* Same buffer discipline as tr_json_dump_append: always NUL-terminated. */
		size_t n = strlen(s);

		if (o->len + n + 1 > o->cap) {
			size_t ncap = o->cap ? o->cap : 256;
			char *p;

			while (ncap < o->len + n + 1) {
				ncap *= 2;
			}
			p = realloc(o->buf, ncap);
			if (!p) {
				o->r = -ENOMEM;
				return;
			}
			o->buf = p;
			o->cap = ncap;
		}
		memcpy(o->buf + o->len, s, n + 1);
		o->len += n;
	}
}

static void out_json(struct out *o, const struct tr_json *v) {
	if (o->r == 0) {
		o->r = tr_json_dump_append(v, &o->buf, &o->len, &o->cap);
	}
}

static void out_quote(struct out *o, const char *s) {
	if (o->r == 0) {
		o->r = tr_json_quote_append(s, strlen(s), &o->buf, &o->len, &o->cap);
	}
}

static void out_id(struct out *o, const struct tr_rpc_id *id) {
	char tmp[24];

	if (!id || id->type == TR_RPC_ID_NONE || id->type == TR_RPC_ID_NULL) {
		out_put(o, "null");
	} else if (id->type == TR_RPC_ID_INT) {
		(void)snprintf(tmp, sizeof(tmp), "%" PRId64, id->i);
		out_put(o, tmp);
	} else {
		out_quote(o, id->s ? id->s : "");
	}
}

static bool id_usable(const struct tr_rpc_id *id) {
	return id && (id->type == TR_RPC_ID_INT || (id->type == TR_RPC_ID_STRING && id->s));
}

static bool params_ok(const struct tr_json *params) {
	return !params || tr_json_is(params, TR_JSON_OBJECT) || tr_json_is(params, TR_JSON_ARRAY);
}

/* Start a message; framed ones reserve the header. */
static void out_begin(struct out *o, bool framed) {
	*o = (struct out){ .r = 0 };
	out_put(o, framed ? "....{\"jsonrpc\":\"2.0\"" : "{\"jsonrpc\":\"2.0\"");
}

/* Finish: close the object, check the size, fill the header in. */
static int out_end(struct out *o, bool framed, uint32_t max_payload, char **ret, size_t *ret_len) {
	out_put(o, "}");
	if (o->r == 0 && framed) {
		size_t payload = o->len - TR_FRAME_HEADER_SIZE;
		uint32_t max = max_payload ? max_payload : TR_FRAME_MAX_PAYLOAD_DEFAULT;

		if (payload > max) {
			o->r = -EMSGSIZE;
		} else {
			tr_frame_put_header((uint8_t *)o->buf, (uint32_t)payload);
		}
	}
	if (o->r < 0) {
		free(o->buf);
		return o->r;
	}
	*ret = o->buf;
	if (ret_len) {
		*ret_len = o->len;
	}
	return 0;
}

static int build_request(bool framed, const struct tr_rpc_id *id, const char *method,
	const struct tr_json *params, uint32_t max_payload, char **ret, size_t *ret_len) {
	struct out o;

	if (!method || !*method || !params_ok(params) || (id && !id_usable(id))) {
		return -EINVAL;
	}
	out_begin(&o, framed);
	if (id) {
		out_put(&o, ",\"id\":");
		out_id(&o, id);
	}
	out_put(&o, ",\"method\":");
	out_quote(&o, method);
	if (params) {
		out_put(&o, ",\"params\":");
		out_json(&o, params);
	}
	return out_end(&o, framed, max_payload, ret, ret_len);
}

static int build_result(bool framed, const struct tr_rpc_id *id, const struct tr_json *result,
	uint32_t max_payload, char **ret, size_t *ret_len) {
	struct out o;

	if (!id_usable(id)) {
		return -EINVAL;
	}
	out_begin(&o, framed);
	out_put(&o, ",\"id\":");
	out_id(&o, id);
	out_put(&o, ",\"result\":");
	out_json(&o, result);
	return out_end(&o, framed, max_payload, ret, ret_len);
}

static int build_error(bool framed, const struct tr_rpc_id *id, int code, const char *message,
	const struct tr_json *data, uint32_t max_payload, char **ret, size_t *ret_len) {
	char tmp[16];
	struct out o;

	out_begin(&o, framed);
	out_put(&o, ",\"id\":");
	out_id(&o, id);
	(void)snprintf(tmp, sizeof(tmp), "%d", code);
	out_put(&o, ",\"error\":{\"code\":");
	out_put(&o, tmp);
	out_put(&o, ",\"message\":");
	out_quote(&o, message ? message : tr_rpc_code_str(code));
	if (data) {
		out_put(&o, ",\"data\":");
		out_json(&o, data);
	}
	out_put(&o, "}");
	return out_end(&o, framed, max_payload, ret, ret_len);
}

int tr_rpc_build_request(const struct tr_rpc_id *id, const char *method,
	const struct tr_json *params, char **ret, size_t *ret_len) {
	if (!id_usable(id)) {
		return -EINVAL;
	}
	return build_request(false, id, method, params, 0, ret, ret_len);
}

int tr_rpc_build_notification(const char *method, const struct tr_json *params, char **ret,
	size_t *ret_len) {
	return build_request(false, NULL, method, params, 0, ret, ret_len);
}

int tr_rpc_build_result(const struct tr_rpc_id *id, const struct tr_json *result, char **ret,
	size_t *ret_len) {
	return build_result(false, id, result, 0, ret, ret_len);
}

int tr_rpc_build_error(const struct tr_rpc_id *id, int code, const char *message,
	const struct tr_json *data, char **ret, size_t *ret_len) {
	return build_error(false, id, code, message, data, 0, ret, ret_len);
}

int tr_rpc_build_result_framed(const struct tr_rpc_id *id, const struct tr_json *result,
	uint32_t max_payload, char **ret, size_t *ret_len) {
	return build_result(true, id, result, max_payload, ret, ret_len);
}

int tr_rpc_build_error_framed(const struct tr_rpc_id *id, int code, const char *message,
	const struct tr_json *data, uint32_t max_payload, char **ret, size_t *ret_len) {
	return build_error(true, id, code, message, data, max_payload, ret, ret_len);
}

int tr_rpc_build_notification_framed(const char *method, const struct tr_json *params,
	uint32_t max_payload, char **ret, size_t *ret_len) {
	return build_request(true, NULL, method, params, max_payload, ret, ret_len);
}

int tr_rpc_build_request_framed(const struct tr_rpc_id *id, const char *method,
	const struct tr_json *params, uint32_t max_payload, char **ret, size_t *ret_len) {
	if (!id_usable(id)) {
		return -EINVAL;
	}
	return build_request(true, id, method, params, max_payload, ret, ret_len);
}

int tr_rpc_build_refusal_framed(const struct tr_rpc_error *e, uint32_t max_payload, char **ret,
	size_t *ret_len) {
	struct tr_json *data = tr_json_new_object();
	int r;

	if (!data) {
		return -ENOMEM;
	}
	if (e->reason) {
		r = tr_json_object_set(data, "reason", tr_json_new_string(e->reason));
		if (r < 0) {
			tr_json_free(data);
			/* -EINVAL here means the string failed to allocate */
			return r == -EINVAL ? -ENOMEM : r;
		}
	}
	r = build_error(true, &e->id, e->code, e->message[0] ? e->message : NULL, data,
		max_payload, ret, ret_len);
	tr_json_free(data);
	return r;
}

int tr_rpc_build_frame_error_framed(uint32_t limit, uint32_t value, char **ret, size_t *ret_len) {
	char msg[128];
	struct tr_json *data = tr_json_new_object();
	int r = -ENOMEM;

	if (!data) {
		return -ENOMEM;
	}
	(void)snprintf(msg, sizeof(msg),
		"Invalid Request: frame length %" PRIu32 " outside %u..%" PRIu32, value,
		TR_FRAME_MIN_PAYLOAD, limit);
	if (tr_json_object_set(data, "reason", tr_json_new_string("frame-size")) == 0 &&
		tr_json_object_set(data, "limit", tr_json_new_int(limit)) == 0 &&
		tr_json_object_set(data, "value", tr_json_new_int(value)) == 0) {
		r = build_error(true, NULL, TR_RPC_INVALID_REQUEST, msg, data, 0, ret, ret_len);
	}
	tr_json_free(data);
	return r;
}

const char *tr_rpc_code_str(int code) {
	switch (code) {
	case TR_RPC_PARSE_ERROR:
		return "parse error";
	case TR_RPC_INVALID_REQUEST:
		return "invalid request";
	case TR_RPC_METHOD_NOT_FOUND:
		return "method not found";
	case TR_RPC_INVALID_PARAMS:
		return "invalid params";
	case TR_RPC_INTERNAL_ERROR:
		return "internal error";
	case TR_RPC_NOT_FOUND:
		return "not found";
	case TR_RPC_NOT_CONNECTED:
		return "not connected";
	case TR_RPC_UPSTREAM_ERROR:
		return "upstream error";
	case TR_RPC_VERSION_CONFLICT:
		return "version conflict";
	case TR_RPC_TIMEOUT:
		return "timeout";
	case TR_RPC_RATE_LIMITED:
		return "rate limited";
	case TR_RPC_TOO_MANY_REQUESTS:
		return "too many requests";
	case TR_RPC_OVERLOADED:
		return "overloaded";
	case TR_RPC_TOKEN_EXPIRED:
		return "token expired";
	case TR_RPC_REFRESH_PENDING:
		return "refresh pending";
	case TR_RPC_REPLAY_GONE:
		return "replay gone";
	case TR_RPC_INVALID_STATE:
		return "invalid state";
	case TR_RPC_NETWORK_ERROR:
		return "network error";
	case TR_RPC_NOT_PERMITTED:
		return "not permitted";
	default:
		if (code <= -32000 && code >= -32099) {
			return "server error";
		}
		return "unknown error";
	}
}
