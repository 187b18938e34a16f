/*
 * jw.h — taskrouter-sim's growing string buffer and a small JSON writer on top of it,
 * plus helpers to read yajl trees.
 *
 * The buffer remembers an allocation failure (oom) instead of failing each call, so
 * callers build a whole document and check once. Depends on yajl only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

void sb_init(struct sbuf *b);
void sb_done(struct sbuf *b);
void sb_reset(struct sbuf *b);
void sb_putn(struct sbuf *b, const char *s, size_t n);
void sb_puts(struct sbuf *b, const char *s);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the NUL-terminated text over to the caller (NULL on oom); the buffer is emptied. */
char *sb_steal(struct sbuf *b);

#define JW_MAX_DEPTH 64

/* A JSON writer that inserts commas itself. */
struct jw {
	struct sbuf *b;
	int depth;
	bool first[JW_MAX_DEPTH];
	bool after_key;
};

void jw_init(struct jw *w, struct sbuf *b);
void jw_obj(struct jw *w);
void jw_obj_end(struct jw *w);
void jw_arr(struct jw *w);
void jw_arr_end(struct jw *w);
void jw_key(struct jw *w, const char *k);
void jw_str(struct jw *w, const char *s); /* NULL writes null */
void jw_int(struct jw *w, int64_t i);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
void jw_raw(struct jw *w, const char *json); /* a complete JSON value as text */
void jw_val(struct jw *w, const yajl_val v); /* a yajl tree */
void jw_kstr(struct jw *w, const char *k, const char *s);
void jw_kint(struct jw *w, const char *k, int64_t i);
void jw_kbool(struct jw *w, const char *k, bool v);
void jw_kraw(struct jw *w, const char *k, const char *json);
void jw_knull(struct jw *w, const char *k);

/* Append s as a quoted JSON string literal. */
void sb_quote(struct sbuf *b, const char *s);

/* Compact JSON text of a yajl value (caller frees), NULL on ENOMEM. */
char *jw_dump(const yajl_val v);

/* Parse NUL-terminated text; NULL on error (errbuf gets the reason if given). */
yajl_val jp_parse(const char *text, char *errbuf, size_t errlen);
/* An attributes value as TaskRouter takes it: absent or null (*ret NULL), a JSON string
 * holding an object, or an object (with allow_array, also an array). *ret gets its compact
 * text (caller frees). 0, -EINVAL for anything else, -ENOMEM. */
int jp_attributes(yajl_val v, bool allow_array, char **ret);
/* Object member (borrowed), NULL if absent or v is not an object. */
yajl_val jp_get(const yajl_val v, const char *key);
/* Member as a string, NULL unless it is a string. */
const char *jp_str(const yajl_val v, const char *key);
/* Integer member: 0 and *ret, -ENOENT if absent/null, -EINVAL otherwise. Integers given as
 * decimal strings are accepted when lenient is set. */
int jp_int(const yajl_val v, const char *key, bool lenient, int64_t *ret);
/* Boolean member; "true"/"false" strings accepted when lenient. 0, -ENOENT or -EINVAL. */
int jp_bool(const yajl_val v, const char *key, bool lenient, bool *ret);
