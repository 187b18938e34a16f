/*
 * methods.c — the method-table engine (see methods.h): lookup, parameter validation from the
 * rows, dispatch, rpc.describe, and the error replies every handler shares.
 */
#include "methods.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "rpc.h"
#include "rpcsrv.h"
#include "task-json.h"

/* ---- validation from the rows ---- */

static int fail(struct tr_methods_err *err, const char *param, const char *reason) {
	err->code = TR_RPC_INVALID_PARAMS;
	err->param = param;
	err->reason = reason;
	err->values = NULL;
	return -EINVAL;
}

/* s is not one of p's values: the row's reason, or "unknown value "S"" (cut to fit buf, at a
 * character boundary: the reason goes back as a JSON string, which must stay UTF-8). */
static int values_fail(const struct tr_param *p, const char *s, struct tr_methods_err *err) {
	if (p->values_reason) {
		fail(err, p->name, p->values_reason);
	} else {
		size_t n = strlen(s);

		if (n > 40) {
			n = 40;
			while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
				n--;
			}
		}
		snprintf(err->buf, sizeof(err->buf), "unknown value \"%.*s%s\"", (int)n, s,
			s[n] ? "..." : "");
		fail(err, p->name, err->buf);
	}
	err->values = p->values;
	return -EINVAL;
}

static bool in_values(const char *const *values, const char *s) {
	for (size_t i = 0; values[i]; i++) {
		if (strcasecmp(values[i], s) == 0) {
			return true;
		}
	}
	return false;
}

/* An integer outside [min, max]: "must be an integer from MIN to MAX" (or ">= MIN"). */
static int range_fail(const struct tr_param *p, struct tr_methods_err *err) {
	if (p->max == INT64_MAX) {
		snprintf(err->buf, sizeof(err->buf), "must be an integer >= %" PRId64, p->min);
	} else {
		snprintf(err->buf, sizeof(err->buf), "must be an integer from %" PRId64 " to %" PRId64,
			p->min, p->max);
	}
	return fail(err, p->name, err->buf);
}

/* An object over max_bytes as compact JSON (what goes upstream) is refused here: TaskRouter
 * would refuse it, or a near-megabyte one would not fit the messages that carry it back. */
static int size_check(const struct tr_param *p, const struct tr_json *v,
	struct tr_methods_err *err) {
	char *text = NULL;
	size_t len = 0;

	if (tr_json_dump(v, &text, &len) < 0) {
		return fail(err, p->name, "cannot be measured (out of memory)");
	}
	free(text);
	if (len > p->max_bytes) {
		snprintf(err->buf, sizeof(err->buf), "too large: %zu bytes, at most %zu", len,
			p->max_bytes);
		return fail(err, p->name, err->buf);
	}
	return 0;
}

static int check_param(const struct tr_param *p, const struct tr_json *v,
	struct tr_methods_err *err) {
	int64_t when;

	switch (p->type) {
	case TR_PARAM_STRING:
		if (v->type != TR_JSON_STRING) {
			return fail(err, p->name, "must be a string");
		}
		if (p->nonempty && v->u.str.len == 0) {
			return fail(err, p->name, "must not be empty");
		}
		if (p->values && !in_values(p->values, v->u.str.s)) {
			return values_fail(p, v->u.str.s, err);
		}
		return 0;
	case TR_PARAM_BOOLEAN:
		return tr_json_is_bool(v) ? 0 : fail(err, p->name, "must be a boolean");
	case TR_PARAM_INTEGER:
		if (!tr_json_is_int(v) || v->u.num.i < p->min || v->u.num.i > p->max) {
			return range_fail(p, err);
		}
		return 0;
	case TR_PARAM_OBJECT:
		if (v->type != TR_JSON_OBJECT) {
			return fail(err, p->name, "must be an object");
		}
		return p->max_bytes ? size_check(p, v, err) : 0;
	case TR_PARAM_STRINGS:
		if (v->type != TR_JSON_ARRAY) {
			return fail(err, p->name, "must be an array of strings");
		}
		for (size_t i = 0; i < v->u.arr.n; i++) {
			if (!tr_json_is(v->u.arr.items[i], TR_JSON_STRING)) {
				return fail(err, p->name, "must be an array of strings");
			}
		}
		for (size_t i = 0; p->values && i < v->u.arr.n; i++) {
			if (!in_values(p->values, v->u.arr.items[i]->u.str.s)) {
				return values_fail(p, v->u.arr.items[i]->u.str.s, err);
			}
		}
		return 0;
	case TR_PARAM_TIME:
		if (tr_json_is_int(v)) {
			when = v->u.num.i;
		} else if (v->type != TR_JSON_STRING || tr_task_json_time_parse(v->u.str.s, &when) < 0) {
			return fail(err, p->name, "must be an RFC 3339 time or integer epoch seconds");
		}
		return when < p->min || when > p->max ? fail(err, p->name, "out of range") : 0;
	case TR_PARAM_BOOLEAN_OR_STRING:
		return tr_json_is_bool(v) || v->type == TR_JSON_STRING ? 0 :
			fail(err, p->name, "must be a boolean or a string");
	default:
		return fail(err, p->name, "has an unknown type");
	}
}

int tr_methods_validate(const struct tr_method *m, const struct tr_json *params,
	struct tr_methods_err *err) {
	for (const struct tr_param *p = m->params; p->name; p++) {
		const struct tr_json *v = tr_json_get(params, p->name);

		if (!v || v->type == TR_JSON_NULL) {
			if (p->required) {
				return fail(err, p->name, "missing");
			}
			continue;
		}
		if (check_param(p, v, err) < 0) {
			return -EINVAL;
		}
	}
	for (size_t i = 0; m->strict && params && i < params->u.obj.n; i++) {
		const char *key = params->u.obj.keys[i];
		const struct tr_param *p = m->params;

		while (p->name && strcmp(p->name, key) != 0) {
			p++;
		}
		if (!p->name) {
			return fail(err, key, "is not a parameter of this method");
		}
	}
	return 0;
}

const struct tr_method *tr_methods_find(const struct tr_method_table *const *tables,
	const char *name) {
	for (const struct tr_method_table *const *t = tables; *t; t++) {
		for (size_t i = 0; i < (*t)->n; i++) {
			if (strcmp((*t)->rows[i].name, name) == 0) {
				return &(*t)->rows[i];
			}
		}
	}
	return NULL;
}

/* ---- building ---- */

int tr_methods_build(const struct tr_method *m, const struct tr_methods_ctx *x,
	struct tr_methods_req *ret, struct tr_methods_err *err) {
	struct tr_methods_req r = { .method = "POST", .if_match = -1, .kind = TR_METHODS_TASK };
	int rc;

	r.params = tr_json_new_object();
	if (!r.params) {
		return -ENOMEM;
	}
	err->code = 0;
	rc = m->build(x, &r, err);
	if (rc < 0) {
		r.params = tr_json_free(r.params);
		/* -EINVAL only from a builder's own check, which fills err; a failed member put
		 * is an allocation failure */
		return rc == -EINVAL && err->code != 0 ? -EINVAL : -ENOMEM;
	}
	*ret = r;
	return 0;
}

/* ---- errors ---- */

/* data {param, reason, values?}; the message lists the values too, for people. */
static void invalid_param(struct tr_call *call, const char *param, const char *reason,
	const char *const *values) {
	struct tr_json *data = tr_json_new_object(), *vals = NULL;
	size_t size = strlen(param) + strlen(reason) + 64;
	char *msg;
	int e = 0;

	for (size_t i = 0; values && values[i]; i++) {
		size += strlen(values[i]) + 2;
	}
	tr_json_put(data, "param", tr_json_new_string(param), &e);
	tr_json_put(data, "reason", tr_json_new_string(reason), &e);
	if (values) {
		vals = tr_json_new_array();
		for (size_t i = 0; vals && values[i]; i++) {
			tr_json_push(vals, tr_json_new_string(values[i]), &e);
		}
		tr_json_put(data, "values", vals, &e);
	}
	msg = malloc(size);
	if (msg) {
		int n = snprintf(msg, size, "invalid params: %s %s", param, reason);

		for (size_t i = 0; values && values[i]; i++) {
			n += snprintf(msg + n, size - (size_t)n, "%s%s", i ? ", " : "; allowed: ",
				values[i]);
		}
	}
	tr_call_error(call, TR_RPC_INVALID_PARAMS, msg ? msg : "invalid params",
		e < 0 ? tr_json_free(data) : data);
	free(msg);
}

void tr_methods_invalid_param(struct tr_call *call, const char *param, const char *reason) {
	invalid_param(call, param, reason, NULL);
}

void tr_methods_invalid_params(struct tr_call *call, const struct tr_methods_err *err) {
	invalid_param(call, err->param, err->reason, err->values);
}

void tr_methods_unknown_task(struct tr_call *call, const char *sid) {
	struct tr_json *data = tr_json_new_object();
	int e = 0;

	tr_json_put(data, "sid", tr_json_new_string(sid), &e);
	tr_call_error(call, TR_RPC_NOT_FOUND, "unknown task", e < 0 ? tr_json_free(data) : data);
}

/* ---- dispatch ---- */

void tr_methods_dispatch(const struct tr_method_table *const *tables, struct tr_daemon *d,
	struct tr_call *call, const char *method, const struct tr_json *params) {
	const struct tr_method *m = tr_methods_find(tables, method);
	struct tr_methods_err err;

	if (!m) {
		tr_call_error(call, TR_RPC_METHOD_NOT_FOUND, "method not found", NULL);
		return;
	}
	if (params && params->type != TR_JSON_OBJECT) {
		tr_methods_invalid_param(call, "params", "must be an object");
		return;
	}
	if (tr_methods_validate(m, params, &err) < 0) {
		tr_methods_invalid_params(call, &err);
		return;
	}
	m->handle(d, call, m, params);
}

/* ---- rpc.describe ---- */

static const char *const param_type_names[_TR_PARAM_TYPE_MAX] = {
	[TR_PARAM_STRING] = "string",
	[TR_PARAM_BOOLEAN] = "boolean",
	[TR_PARAM_INTEGER] = "integer",
	[TR_PARAM_OBJECT] = "object",
	[TR_PARAM_STRINGS] = "array",
	[TR_PARAM_TIME] = "string|integer",
	[TR_PARAM_BOOLEAN_OR_STRING] = "boolean|string",
};

static struct tr_json *describe_param(const struct tr_param *p) {
	struct tr_json *o = tr_json_new_object();
	int e = 0;

	tr_json_put(o, "name", tr_json_new_string(p->name), &e);
	tr_json_put(o, "type", tr_json_new_string(param_type_names[p->type]), &e);
	tr_json_put(o, "required", tr_json_new_bool(p->required), &e);
	if (p->nonempty) {
		tr_json_put(o, "nonEmpty", tr_json_new_bool(true), &e);
	}
	if (p->type == TR_PARAM_INTEGER || p->type == TR_PARAM_TIME) {
		tr_json_put(o, "min", tr_json_new_int(p->min), &e);
		tr_json_put(o, "max", tr_json_new_int(p->max), &e);
	}
	if (p->max_bytes) {
		tr_json_put(o, "maxBytes", tr_json_new_int((int64_t)p->max_bytes), &e);
	}
	if (p->values) {
		struct tr_json *vals = tr_json_new_array();

		for (size_t i = 0; vals && p->values[i]; i++) {
			tr_json_push(vals, tr_json_new_string(p->values[i]), &e);
		}
		tr_json_put(o, "values", vals, &e);
	}
	return e < 0 ? tr_json_free(o) : o;
}

static struct tr_json *describe_method(const struct tr_method *m) {
	struct tr_json *o = tr_json_new_object(), *ps = tr_json_new_array();
	int e = 0;

	for (size_t j = 0; m->params[j].name; j++) {
		tr_json_push(ps, describe_param(&m->params[j]), &e);
	}
	tr_json_put(o, "name", tr_json_new_string(m->name), &e);
	tr_json_put(o, "params", ps, &e);
	tr_json_put(o, "result", tr_json_new_string(m->result), &e);
	if (m->strict) {
		tr_json_put(o, "strict", tr_json_new_bool(true), &e);
	}
	return e < 0 ? tr_json_free(o) : o;
}

struct tr_json *tr_methods_describe(const struct tr_method_table *const *tables,
	const char *const *events) {
	struct tr_json *o = tr_json_new_object(), *ms = tr_json_new_array(), *es = tr_json_new_array();
	int e = 0;

	for (const struct tr_method_table *const *t = tables; *t; t++) {
		for (size_t i = 0; i < (*t)->n; i++) {
			tr_json_push(ms, describe_method(&(*t)->rows[i]), &e);
		}
	}
	for (size_t i = 0; events && events[i]; i++) {
		tr_json_push(es, tr_json_new_string(events[i]), &e);
	}
	tr_json_put(o, "methods", ms, &e);
	tr_json_put(o, "events", es, &e);
	return e < 0 ? tr_json_free(o) : o;
}

