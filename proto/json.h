/*
 * json.h — a bounded JSON tree over yajl.
 *
 * Parsing caps nesting depth (TR_JSON_MAX_DEPTH) and members per object
 * (TR_JSON_MAX_KEYS), refuses invalid UTF-8 and embedded NUL in strings, and
 * refuses trailing garbage. Numbers keep their exact text; integers that fit
 * int64_t are also available as integers.
 *
 * The struct is open for reading. Change trees only through the functions below: arrays
 * and objects grow by doubling without storing their capacity, which is derived from n.
 * Numbers are read and written with a '.' whatever the LC_NUMERIC locale.
 *
 * Pure: no I/O, no globals, no logging. Depends on yajl.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tr_json_type {
	TR_JSON_NULL,
	TR_JSON_FALSE,
	TR_JSON_TRUE,
	TR_JSON_NUMBER,
	TR_JSON_STRING,
	TR_JSON_ARRAY,
	TR_JSON_OBJECT,
	TR_JSON_RAW, /* pre-serialised JSON text; output only, the parser never makes one */
	_TR_JSON_TYPE_MAX,
};

struct tr_json {
	enum tr_json_type type;
	union {
		struct {
			char *s; /* NUL-terminated, valid UTF-8, no embedded NUL */
			size_t len;
		} str; /* TR_JSON_STRING, and TR_JSON_RAW (s holds the JSON text) */
		struct {
			char *raw; /* the number's text as written */
			bool is_int; /* raw is an integer that fits int64_t */
			int64_t i;
			double d;
		} num;
		struct {
			struct tr_json **items;
			size_t n;
		} arr;
		struct {
			char **keys; /* in document order; duplicates are refused */
			struct tr_json **vals;
			size_t n;
		} obj;
	} u;
};

/* Parse errors: what went wrong and where. */
enum tr_json_error {
	TR_JSON_OK,
	TR_JSON_ESYNTAX,  /* not JSON */
	TR_JSON_EDEPTH,   /* nested deeper than the limit */
	TR_JSON_EKEYS,    /* too many members in one object */
	TR_JSON_EUTF8,    /* invalid UTF-8 */
	TR_JSON_ENUL,     /* embedded NUL in a string */
	TR_JSON_EDUPKEY,  /* the same member twice in one object */
	TR_JSON_ENOMEM,
	_TR_JSON_ERROR_MAX,
};

/*
 * Parse exactly one JSON value from buf[0..len). On success returns 0 and *ret owns the
 * tree. On failure returns -EBADMSG (or -ENOMEM) and, if ret_error is not NULL, stores the
 * reason there. Depth and key limits are TR_JSON_MAX_DEPTH and TR_JSON_MAX_KEYS.
 */
int tr_json_parse(const char *buf, size_t len, struct tr_json **ret, enum tr_json_error *ret_error);

/*
 * A region for trees that are read and let go at once, such as the upstream's frames:
 * tr_json_parse_in builds the tree in it, a few 8 KB blocks instead of a malloc and a free
 * per member, key and array, and tr_json_arena_reset lets go of all of it. Zero-initialise;
 * reset when done (it holds no memory after a reset).
 */
struct tr_json_arena_block;
struct tr_json_arena {
	struct tr_json_arena_block *blocks; /* the one being filled first */
	size_t used;                        /* bytes used of it */
};

/*
 * tr_json_parse, with the tree built in a: the same tree, the same errors. The tree is read
 * only (never give it to tr_json_free or change it) and lives until tr_json_arena_reset(a);
 * copy what must outlive it with tr_json_dup. On failure *ret is not written, and what was
 * built so far is let go at the reset.
 */
int tr_json_parse_in(struct tr_json_arena *a, const char *buf, size_t len,
	const struct tr_json **ret, enum tr_json_error *ret_error);

/* Let go of every tree parsed in a; a is empty and ready for the next. */
void tr_json_arena_reset(struct tr_json_arena *a);

/* A short English text for an error ("invalid UTF-8", ...). Never NULL. */
const char *tr_json_error_str(enum tr_json_error e);

/* Free a tree (NULL is fine). Returns NULL. */
struct tr_json *tr_json_free(struct tr_json *v);

/* Deep copy; NULL on ENOMEM (or when v is NULL). */
struct tr_json *tr_json_dup(const struct tr_json *v);

/* Structural equality (object member order does not matter; numbers compare by value). */
bool tr_json_equal(const struct tr_json *a, const struct tr_json *b);

/* Constructors: each returns a new node the caller owns, or NULL on ENOMEM. */
struct tr_json *tr_json_new_null(void);
struct tr_json *tr_json_new_bool(bool b);
struct tr_json *tr_json_new_int(int64_t i);
struct tr_json *tr_json_new_double(double d); /* NaN and infinities give a null node */
struct tr_json *tr_json_new_string(const char *s);          /* copies s */
struct tr_json *tr_json_new_stringn(const char *s, size_t n); /* copies n bytes */
struct tr_json *tr_json_new_object(void);
struct tr_json *tr_json_new_array(void);
/*
 * A node holding text that is already serialised JSON (one complete value), written out as
 * is by the dump functions. It lets a caller splice a value it keeps as text (a cached Task)
 * into a tree without parsing it back. Takes ownership of text (malloc'd, NUL-terminated,
 * len bytes) in all cases. The text must be valid JSON: nothing checks it. Lookups see a raw
 * node as an opaque value; tr_json_equal compares two raw nodes byte for byte.
 */
struct tr_json *tr_json_new_raw_take(char *text, size_t len);

/*
 * Set obj[key] = val, replacing an existing member. Takes ownership of val in all cases
 * (it is freed on error). Returns 0, -EINVAL (obj not an object, or val NULL) or -ENOMEM.
 */
int tr_json_object_set(struct tr_json *obj, const char *key, struct tr_json *val);

/* Remove obj[key] if present; returns 1 if removed, 0 if absent. */
int tr_json_object_remove(struct tr_json *obj, const char *key);

/* Append val to arr; takes ownership in all cases. Returns 0, -EINVAL or -ENOMEM. */
int tr_json_array_append(struct tr_json *arr, struct tr_json *val);

/*
 * Builders with a sticky error, for filling an object or array member by member without a
 * check after every line:
 *
 *	int err = 0;
 *	tr_json_put(o, "sid", tr_json_new_string(sid), &err);
 *	tr_json_put(o, "age", tr_json_new_int(age), &err);
 *	if (err < 0) ...
 *
 * Each takes ownership of val in all cases. When *err is already negative, or obj is NULL
 * (a constructor that failed), or val is NULL, val is freed and *err is set (-ENOMEM for a
 * NULL node, else the tr_json_object_set/tr_json_array_append error); a first error is
 * never overwritten. Returns *err.
 */
int tr_json_put(struct tr_json *obj, const char *key, struct tr_json *val, int *err);
int tr_json_push(struct tr_json *arr, struct tr_json *val, int *err);

/* Lookups. All return borrowed pointers, or NULL when absent or of another type. */
const struct tr_json *tr_json_get(const struct tr_json *obj, const char *key);
const char *tr_json_get_string(const struct tr_json *obj, const char *key);
/* Integer member: returns 0 and sets *ret, or -ENOENT (absent/null) / -EINVAL (not an integer). */
int tr_json_get_int(const struct tr_json *obj, const char *key, int64_t *ret);
/* Boolean member: returns 0 and sets *ret, or -ENOENT / -EINVAL. */
int tr_json_get_bool(const struct tr_json *obj, const char *key, bool *ret);

static inline bool tr_json_is(const struct tr_json *v, enum tr_json_type t) {
	return v && v->type == t;
}
static inline bool tr_json_is_bool(const struct tr_json *v) {
	return v && (v->type == TR_JSON_TRUE || v->type == TR_JSON_FALSE);
}
static inline bool tr_json_is_int(const struct tr_json *v) {
	return v && v->type == TR_JSON_NUMBER && v->u.num.is_int;
}

/*
 * Serialise compactly (no spaces). Strings are escaped minimally: '"', '\\' and control
 * characters (\b \f \n \r \t, others as \u00XX); bytes that are not valid UTF-8 (possible
 * only in strings built by the caller) are written as \ufffd, so the output is always
 * valid JSON. Numbers are written as their raw text. *ret gets a malloc'd NUL-terminated
 * string the caller owns; *ret_len its length (may be NULL). Returns 0 or -ENOMEM.
 */
int tr_json_dump(const struct tr_json *v, char **ret, size_t *ret_len);

/*
 * Append the compact serialisation of v to a growing buffer (*buf, *len, *cap), for
 * building messages around a tree without an extra copy. Returns 0 or -ENOMEM.
 */
int tr_json_dump_append(const struct tr_json *v, char **buf, size_t *len, size_t *cap);

/* Append a JSON string literal (quoted and escaped as above) of s[0..n) to the buffer.
 * The buffer is kept NUL-terminated (cap > len) by both append functions. On -ENOMEM the
 * buffer may hold a partial value; the caller frees *buf in any case. */
int tr_json_quote_append(const char *s, size_t n, char **buf, size_t *len, size_t *cap);

/* Append s[0..n) verbatim (JSON text the caller already built). Returns 0 or -ENOMEM. */
int tr_json_text_append(const char *s, size_t n, char **buf, size_t *len, size_t *cap);

/* FNV-1a (32 bits) of a NUL-terminated string: what the parser compares member names by
 * before comparing them as strings (duplicates); the daemon's shared strings are hashed
 * with it too. */
uint32_t tr_json_hash(const char *s);
