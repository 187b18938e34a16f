/* jw.c — string buffer, JSON writer and yajl tree helpers for taskrouter-sim. */
#include "jw.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_init(struct sbuf *b) {
	memset(b, 0, sizeof(*b));
}

void sb_done(struct sbuf *b) {
	free(b->p);
	sb_init(b);
}

void sb_reset(struct sbuf *b) {
	b->len = 0;
	if (b->p) {
		b->p[0] = '\0';
	}
}

static bool sb_grow(struct sbuf *b, size_t extra) {
	size_t need, cap;
	char *p;

	if (b->oom) {
		return false;
	}
	need = b->len + extra + 1;
	if (need <= b->cap) {
		return true;
	}
	cap = b->cap ? b->cap : 256;
	while (cap < need) {
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void sb_putn(struct sbuf *b, const char *s, size_t n) {
	if (n == 0 || !sb_grow(b, n)) {
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sb_puts(struct sbuf *b, const char *s) {
	sb_putn(b, s, strlen(s));
}

void sb_printf(struct sbuf *b, const char *fmt, ...) {
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_grow(b, (size_t)n)) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	(void)vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *sb_steal(struct sbuf *b) {
	char *p;

	if (b->oom) {
		sb_done(b);
		return NULL;
	}
	if (!b->p && !sb_grow(b, 0)) {
		return NULL;
	}
	if (b->len == 0) {
		b->p[0] = '\0';
	}
	p = b->p;
	sb_init(b);
	return p;
}

void sb_quote(struct sbuf *b, const char *s) {
	const unsigned char *u = (const unsigned char *)s;
	size_t start = 0, i;

	sb_putn(b, "\"", 1);
	for (i = 0; u[i]; i++) {
		char esc[8];
		const char *rep = NULL;

		switch (u[i]) {
		case '"':
			rep = "\\\"";
			break;
		case '\\':
			rep = "\\\\";
			break;
		case '\n':
			rep = "\\n";
			break;
		case '\r':
			rep = "\\r";
			break;
		case '\t':
			rep = "\\t";
			break;
		default:
			if (u[i] < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
				rep = esc;
			}
			break;
		}
		if (rep) {
			sb_putn(b, s + start, i - start);
			sb_puts(b, rep);
			start = i + 1;
		}
	}
	sb_putn(b, s + start, i - start);
	sb_putn(b, "\"", 1);
}

void jw_init(struct jw *w, struct sbuf *b) {
	memset(w, 0, sizeof(*w));
	w->b = b;
}

static void jw_sep(struct jw *w) {
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0) {
		if (!w->first[w->depth]) {
			sb_putn(w->b, ",", 1);
		}
		w->first[w->depth] = false;
	}
}

static void jw_open(struct jw *w, const char *c) {
	jw_sep(w);
	sb_puts(w->b, c);
	if (w->depth + 1 < JW_MAX_DEPTH) {
		w->depth++;
		w->first[w->depth] = true;
	} else {
		w->b->oom = true; /* too deep: poison the document */
	}
}

static void jw_close(struct jw *w, const char *c) {
	sb_puts(w->b, c);
	if (w->depth > 0) {
		w->depth--;
	}
}

void jw_obj(struct jw *w) {
	jw_open(w, "{");
}

void jw_obj_end(struct jw *w) {
	jw_close(w, "}");
}

void jw_arr(struct jw *w) {
	jw_open(w, "[");
}

void jw_arr_end(struct jw *w) {
	jw_close(w, "]");
}

void jw_key(struct jw *w, const char *k) {
	jw_sep(w);
	sb_quote(w->b, k);
	sb_putn(w->b, ":", 1);
	w->after_key = true;
}

void jw_str(struct jw *w, const char *s) {
	jw_sep(w);
	if (s) {
		sb_quote(w->b, s);
	} else {
		sb_puts(w->b, "null");
	}
}

void jw_int(struct jw *w, int64_t i) {
	jw_sep(w);
	sb_printf(w->b, "%" PRId64, i);
}

void jw_bool(struct jw *w, bool v) {
	jw_sep(w);
	sb_puts(w->b, v ? "true" : "false");
}

void jw_null(struct jw *w) {
	jw_sep(w);
	sb_puts(w->b, "null");
}

void jw_raw(struct jw *w, const char *json) {
	jw_sep(w);
	sb_puts(w->b, json ? json : "null");
}

void jw_val(struct jw *w, const yajl_val v) {
	size_t i;

	if (!v || YAJL_IS_NULL(v)) {
		jw_null(w);
	} else if (YAJL_IS_TRUE(v)) {
		jw_bool(w, true);
	} else if (YAJL_IS_FALSE(v)) {
		jw_bool(w, false);
	} else if (YAJL_IS_STRING(v)) {
		jw_str(w, v->u.string);
	} else if (YAJL_IS_NUMBER(v)) {
		jw_raw(w, v->u.number.r);
	} else if (YAJL_IS_ARRAY(v)) {
		jw_arr(w);
		for (i = 0; i < v->u.array.len; i++) {
			jw_val(w, v->u.array.values[i]);
		}
		jw_arr_end(w);
	} else if (YAJL_IS_OBJECT(v)) {
		jw_obj(w);
		for (i = 0; i < v->u.object.len; i++) {
			jw_key(w, v->u.object.keys[i]);
			jw_val(w, v->u.object.values[i]);
		}
		jw_obj_end(w);
	} else {
		jw_null(w);
	}
}

void jw_kstr(struct jw *w, const char *k, const char *s) {
	jw_key(w, k);
	jw_str(w, s);
}

void jw_kint(struct jw *w, const char *k, int64_t i) {
	jw_key(w, k);
	jw_int(w, i);
}

void jw_kbool(struct jw *w, const char *k, bool v) {
	jw_key(w, k);
	jw_bool(w, v);
}

void jw_kraw(struct jw *w, const char *k, const char *json) {
	jw_key(w, k);
	jw_raw(w, json);
}

void jw_knull(struct jw *w, const char *k) {
	jw_key(w, k);
	jw_null(w);
}

char *jw_dump(const yajl_val v) {
	struct sbuf b;
	struct jw w;

	sb_init(&b);
	jw_init(&w, &b);
	jw_val(&w, v);
	return sb_steal(&b);
}

yajl_val jp_parse(const char *text, char *errbuf, size_t errlen) {
	char tmp[128];

	if (!errbuf) {
		errbuf = tmp;
		errlen = sizeof(tmp);
	}
	errbuf[0] = '\0';
	return yajl_tree_parse(text, errbuf, errlen);
}

yajl_val jp_get(const yajl_val v, const char *key) {
	size_t i;

	if (!v || !YAJL_IS_OBJECT(v)) {
		return NULL;
	}
	for (i = 0; i < v->u.object.len; i++) {
		if (strcmp(v->u.object.keys[i], key) == 0) {
			return v->u.object.values[i];
		}
	}
	return NULL;
}

const char *jp_str(const yajl_val v, const char *key) {
	yajl_val m = jp_get(v, key);

	return m && YAJL_IS_STRING(m) ? m->u.string : NULL;
}

int jp_int(const yajl_val v, const char *key, bool lenient, int64_t *ret) {
	yajl_val m = jp_get(v, key);
	char *end;
	long long x;

	if (!m || YAJL_IS_NULL(m)) {
		return -ENOENT;
	}
	if (YAJL_IS_INTEGER(m)) {
		*ret = m->u.number.i;
		return 0;
	}
	if (lenient && YAJL_IS_STRING(m) && m->u.string[0]) {
		errno = 0;
		x = strtoll(m->u.string, &end, 10);
		if (errno == 0 && *end == '\0') {
			*ret = x;
			return 0;
		}
	}
	return -EINVAL;
}

int jp_bool(const yajl_val v, const char *key, bool lenient, bool *ret) {
	yajl_val m = jp_get(v, key);

	if (!m || YAJL_IS_NULL(m)) {
		return -ENOENT;
	}
	if (YAJL_IS_TRUE(m) || YAJL_IS_FALSE(m)) {
		*ret = YAJL_IS_TRUE(m);
		return 0;
	}
	if (lenient && YAJL_IS_STRING(m)) {
		if (strcmp(m->u.string, "true") == 0) {
			*ret = true;
			return 0;
		}
		if (strcmp(m->u.string, "false") == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

int jp_attributes(yajl_val v, bool allow_array, char **ret) {
	*ret = NULL;
	if (!v || YAJL_IS_NULL(v)) {
		return 0;
	}
	if (YAJL_IS_STRING(v)) {
		yajl_val parsed = jp_parse(v->u.string, NULL, 0);

		if (!parsed || !YAJL_IS_OBJECT(parsed)) {
			yajl_tree_free(parsed);
			return -EINVAL;
		}
		*ret = jw_dump(parsed);
		yajl_tree_free(parsed);
	} else if (YAJL_IS_OBJECT(v) || (allow_array && YAJL_IS_ARRAY(v))) {
		*ret = jw_dump(v);
	} else {
		return -EINVAL;
	}
	return *ret ? 0 : -ENOMEM;
}
