/*
 * json.c — a bounded JSON tree, parsed with yajl's event parser, written by our own writer.
 *
 * yajl 2.1 checks UTF-8 only loosely: it accepts overlong forms (C0 80 is a NUL in
 * disguise), UTF-16 surrogates encoded in UTF-8, code points above U+10FFFF, and it decodes
 * broken \u surrogate pairs into unrelated characters. So before yajl sees the text we make
 * one pass over it that enforces strict UTF-8 (RFC 3629), refuses NUL in strings (raw or
 * \u0000) and refuses unpaired surrogate escapes. yajl then does the grammar, and our
 * callbacks build the tree while enforcing the depth and key limits and refusing duplicate
 * members.
 *
 * Arrays and objects grow by doubling without storing their capacity: the capacity is
 * always cap_for(n) or more, see grow().
 */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <yajl/yajl_parse.h>

#include "tr-limits.h"

/* ---------------------------------------------------------------- helpers */

/*
 * The region tr_json_parse_in builds in: blocks of ARENA_BLOCK bytes (one of its own for a
 * bigger piece), bumped through, all freed by tr_json_arena_reset. Pieces are aligned for any
 * member of a node.
 */
#define ARENA_BLOCK 8192u
#define ARENA_ALIGN _Alignof(max_align_t)

struct tr_json_arena_block {
	struct tr_json_arena_block *next;
	size_t size; /* bytes after the header */
	max_align_t data[];
};

static void *arena_alloc(struct tr_json_arena *a, size_t n) {
	struct tr_json_arena_block *b = a->blocks;
	size_t at = (a->used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

	if (b && at <= b->size && n <= b->size - at) {
		a->used = at + n;
		return (char *)b->data + at;
	}
	if (n > SIZE_MAX - sizeof(*b) - ARENA_BLOCK) {
		return NULL;
	}
	if (n > ARENA_BLOCK / 2) {
		/* a piece of its own, behind the current block, which stays the one bumped */
		b = malloc(sizeof(*b) + n);
		if (!b) {
			return NULL;
		}
		b->size = n;
		if (a->blocks) {
			b->next = a->blocks->next;
			a->blocks->next = b;
		} else {
			b->next = NULL;
			a->blocks = b;
			a->used = n;
		}
		return b->data;
	}
	b = malloc(sizeof(*b) + ARENA_BLOCK);
	if (!b) {
		return NULL;
	}
	b->size = ARENA_BLOCK;
	b->next = a->blocks;
	a->blocks = b;
	a->used = n;
	return b->data;
}

void tr_json_arena_reset(struct tr_json_arena *a) {
	while (a->blocks) {
		struct tr_json_arena_block *b = a->blocks;

		a->blocks = b->next;
		free(b);
	}
	a->used = 0;
}

/* n bytes from the arena a, or from malloc when a is NULL */
static void *alloc_in(struct tr_json_arena *a, size_t n) {
	return a ? arena_alloc(a, n) : malloc(n);
}

static char *mem_dup(struct tr_json_arena *a, const char *s, size_t n) {
	char *p = alloc_in(a, n + 1);

	if (!p) {
		return NULL;
	}
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static struct tr_json *node_new(struct tr_json_arena *a, enum tr_json_type t) {
	struct tr_json *v = alloc_in(a, sizeof(*v));

	if (v) {
		memset(v, 0, sizeof(*v));
		v->type = t;
	}
	return v;
}

/*
 * A string or number node with its text in the same allocation, right after the node: one
 * malloc per leaf instead of two (parsing a Task payload makes hundreds of leaves). The
 * text is NUL-terminated. Every string and number node is made here, so their text is
 * always inline; a raw node's text is always a separate allocation taken from the caller.
 */
static struct tr_json *node_new_text(struct tr_json_arena *a, enum tr_json_type t, const char *s,
	size_t n) {
	struct tr_json *v;
	char *text;

	if (n > SIZE_MAX - sizeof(*v) - 1) {
		return NULL;
	}
	v = alloc_in(a, sizeof(*v) + n + 1);
	if (!v) {
		return NULL;
	}
	memset(v, 0, sizeof(*v));
	v->type = t;
	text = (char *)(v + 1);
	memcpy(text, s, n);
	text[n] = '\0';
	if (t == TR_JSON_NUMBER) {
		v->u.num.raw = text;
	} else {
		v->u.str.s = text;
		v->u.str.len = n;
	}
	return v;
}

/* Smallest capacity a container of n elements may have: 0, then 4, 8, 16, ... */
static size_t cap_for(size_t n) {
	size_t c = 4;

	if (n == 0) {
		return 0;
	}
	while (c < n) {
		c *= 2;
	}
	return c;
}

/*
 * Make room for element n (0-based) of an array of pointers that holds n elements and has
 * capacity >= cap_for(n). Capacity only changes when n is 0 or a power of two >= 4, which is
 * exactly when cap_for(n) could equal n.
 */
static int grow(struct tr_json_arena *a, void **arr, size_t n, size_t elem) {
	size_t want;
	void *p;

	if (n == 0) {
		want = 4;
	} else if (n >= 4 && (n & (n - 1)) == 0) {
		want = n * 2;
	} else {
		return 0;
	}
	if (a) {
		/* the old array stays in the arena until its reset */
		p = arena_alloc(a, want * elem);
		if (p && n) {
			memcpy(p, *arr, n * elem);
		}
	} else {
		p = realloc(*arr, want * elem);
	}
	if (!p) {
		return -ENOMEM;
	}
	*arr = p;
	return 0;
}

/* ------------------------------------------------------------ constructors */

struct tr_json *tr_json_free(struct tr_json *v) {
	size_t i;

	if (!v) {
		return NULL;
	}
	switch (v->type) {
	case TR_JSON_RAW:
		free(v->u.str.s);
		break;
	case TR_JSON_ARRAY:
		for (i = 0; i < v->u.arr.n; i++) {
			tr_json_free(v->u.arr.items[i]);
		}
		free(v->u.arr.items);
		break;
	case TR_JSON_OBJECT:
		for (i = 0; i < v->u.obj.n; i++) {
			free(v->u.obj.keys[i]);
			tr_json_free(v->u.obj.vals[i]);
		}
		free(v->u.obj.keys);
		free(v->u.obj.vals);
		break;
	default:
		break;
	}
	free(v);
	return NULL;
}

struct tr_json *tr_json_new_null(void) {
	return node_new(NULL, TR_JSON_NULL);
}

struct tr_json *tr_json_new_bool(bool b) {
	return node_new(NULL, b ? TR_JSON_TRUE : TR_JSON_FALSE);
}

struct tr_json *tr_json_new_int(int64_t i) {
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRId64, i);
	struct tr_json *v = node_new_text(NULL, TR_JSON_NUMBER, tmp, (size_t)n);

	if (!v) {
		return NULL;
	}
	v->u.num.is_int = true;
	v->u.num.i = i;
	v->u.num.d = (double)i;
	return v;
}

/* Shortest "%.Ng" that reads back as the same double; '.' whatever the locale. */
static int format_double(double d, char *buf, size_t size) {
	int n = 0;
	char *p;

	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, size, "%.*g", prec, d);
		if (strtod(buf, NULL) == d) {
			break;
		}
	}
	p = strchr(buf, ',');
	if (p) {
		*p = '.';
	}
	return n;
}

struct tr_json *tr_json_new_double(double d) {
	char tmp[40];
	int n;
	struct tr_json *v;

	/* JSON has no NaN or infinities. */
	if (!isfinite(d)) {
		return tr_json_new_null();
	}
	n = format_double(d, tmp, sizeof(tmp));
	v = node_new_text(NULL, TR_JSON_NUMBER, tmp, (size_t)n);
	if (!v) {
		return NULL;
	}
	v->u.num.d = d;
	return v;
}

struct tr_json *tr_json_new_stringn(const char *s, size_t n) {
	return node_new_text(NULL, TR_JSON_STRING, s ? s : "", s ? n : 0);
}

struct tr_json *tr_json_new_string(const char *s) {
	return tr_json_new_stringn(s, s ? strlen(s) : 0);
}

struct tr_json *tr_json_new_raw_take(char *text, size_t len) {
	struct tr_json *v;

	if (!text) {
		return NULL;
	}
	v = node_new(NULL, TR_JSON_RAW);
	if (!v) {
		free(text);
		return NULL;
	}
	v->u.str.s = text;
	v->u.str.len = len;
	return v;
}

struct tr_json *tr_json_new_object(void) {
	return node_new(NULL, TR_JSON_OBJECT);
}

struct tr_json *tr_json_new_array(void) {
	return node_new(NULL, TR_JSON_ARRAY);
}

static ssize_t object_find(const struct tr_json *obj, const char *key) {
	/* The first byte first: most keys differ there, and the daemon looks members up by
	 * name for every payload it reads (a tenth of its time per event was strcmp). */
	const char k0 = key[0];

	for (size_t i = 0; i < obj->u.obj.n; i++) {
		const char *k = obj->u.obj.keys[i];

		if (k[0] == k0 && strcmp(k, key) == 0) {
			return (ssize_t)i;
		}
	}
	return -1;
}

/* Append a member without looking for an existing one; takes ownership of key and val. */
static int object_push(struct tr_json_arena *a, struct tr_json *obj, char *key,
	struct tr_json *val) {
	size_t n = obj->u.obj.n;

	if (grow(a, (void **)&obj->u.obj.keys, n, sizeof(char *)) < 0 ||
		grow(a, (void **)&obj->u.obj.vals, n, sizeof(struct tr_json *)) < 0) {
		return -ENOMEM;
	}
	obj->u.obj.keys[n] = key;
	obj->u.obj.vals[n] = val;
	obj->u.obj.n = n + 1;
	return 0;
}

int tr_json_object_set(struct tr_json *obj, const char *key, struct tr_json *val) {
	ssize_t i;
	char *k;

	if (!tr_json_is(obj, TR_JSON_OBJECT) || !key || !val) {
		tr_json_free(val);
		return -EINVAL;
	}
	i = object_find(obj, key);
	if (i >= 0) {
		tr_json_free(obj->u.obj.vals[i]);
		obj->u.obj.vals[i] = val;
		return 0;
	}
	k = mem_dup(NULL, key, strlen(key));
	if (!k || object_push(NULL, obj, k, val) < 0) {
		free(k);
		tr_json_free(val);
		return -ENOMEM;
	}
	return 0;
}

int tr_json_object_remove(struct tr_json *obj, const char *key) {
	ssize_t i;
	size_t rest;

	if (!tr_json_is(obj, TR_JSON_OBJECT) || !key) {
		return 0;
	}
	i = object_find(obj, key);
	if (i < 0) {
		return 0;
	}
	free(obj->u.obj.keys[i]);
	tr_json_free(obj->u.obj.vals[i]);
	rest = obj->u.obj.n - (size_t)i - 1;
	memmove(obj->u.obj.keys + i, obj->u.obj.keys + i + 1, rest * sizeof(char *));
	memmove(obj->u.obj.vals + i, obj->u.obj.vals + i + 1, rest * sizeof(struct tr_json *));
	obj->u.obj.n--;
	return 1;
}

/* Append an element; the caller keeps val on failure. */
static int array_push(struct tr_json_arena *a, struct tr_json *arr, struct tr_json *val) {
	if (grow(a, (void **)&arr->u.arr.items, arr->u.arr.n, sizeof(struct tr_json *)) < 0) {
		return -ENOMEM;
	}
	arr->u.arr.items[arr->u.arr.n++] = val;
	return 0;
}

int tr_json_array_append(struct tr_json *arr, struct tr_json *val) {
	if (!tr_json_is(arr, TR_JSON_ARRAY) || !val) {
		tr_json_free(val);
		return -EINVAL;
	}
	if (array_push(NULL, arr, val) < 0) {
		tr_json_free(val);
		return -ENOMEM;
	}
	return 0;
}

static int sticky_fail(struct tr_json *val, int r, int *err) {
	tr_json_free(val);
	if (*err >= 0) {
		*err = r;
	}
	return *err;
}

int tr_json_put(struct tr_json *obj, const char *key, struct tr_json *val, int *err) {
	if (*err < 0 || !obj || !val) {
		return sticky_fail(val, -ENOMEM, err);
	}
	int r = tr_json_object_set(obj, key, val);
	return r < 0 ? sticky_fail(NULL, r, err) : *err;
}

int tr_json_push(struct tr_json *arr, struct tr_json *val, int *err) {
	if (*err < 0 || !arr || !val) {
		return sticky_fail(val, -ENOMEM, err);
	}
	int r = tr_json_array_append(arr, val);
	return r < 0 ? sticky_fail(NULL, r, err) : *err;
}

struct tr_json *tr_json_dup(const struct tr_json *v) {
	struct tr_json *c;
	size_t i, n, cap;

	if (!v) {
		return NULL;
	}
	if (v->type == TR_JSON_STRING) {
		return node_new_text(NULL, TR_JSON_STRING, v->u.str.s, v->u.str.len);
	}
	if (v->type == TR_JSON_NUMBER) {
		c = node_new_text(NULL, TR_JSON_NUMBER, v->u.num.raw, strlen(v->u.num.raw));
		if (c) {
			c->u.num.is_int = v->u.num.is_int;
			c->u.num.i = v->u.num.i;
			c->u.num.d = v->u.num.d;
		}
		return c;
	}
	c = node_new(NULL, v->type);
	if (!c) {
		return NULL;
	}
	switch (v->type) {
	case TR_JSON_RAW:
		c->u.str.s = mem_dup(NULL, v->u.str.s, v->u.str.len);
		if (!c->u.str.s) {
			return tr_json_free(c);
		}
		c->u.str.len = v->u.str.len;
		break;
	case TR_JSON_ARRAY:
		n = v->u.arr.n;
		cap = cap_for(n);
		if (cap) {
			c->u.arr.items = calloc(cap, sizeof(struct tr_json *));
			if (!c->u.arr.items) {
				return tr_json_free(c);
			}
		}
		for (i = 0; i < n; i++) {
			c->u.arr.items[i] = tr_json_dup(v->u.arr.items[i]);
			if (!c->u.arr.items[i]) {
				return tr_json_free(c);
			}
			c->u.arr.n = i + 1;
		}
		break;
	case TR_JSON_OBJECT:
		n = v->u.obj.n;
		cap = cap_for(n);
		if (cap) {
			c->u.obj.keys = calloc(cap, sizeof(char *));
			c->u.obj.vals = calloc(cap, sizeof(struct tr_json *));
			if (!c->u.obj.keys || !c->u.obj.vals) {
				return tr_json_free(c);
			}
		}
		for (i = 0; i < n; i++) {
			c->u.obj.keys[i] = mem_dup(NULL, v->u.obj.keys[i], strlen(v->u.obj.keys[i]));
			c->u.obj.vals[i] = tr_json_dup(v->u.obj.vals[i]);
			c->u.obj.n = i + 1;
			if (!c->u.obj.keys[i] || !c->u.obj.vals[i]) {
				return tr_json_free(c);
			}
		}
		break;
	default:
		break;
	}
	return c;
}

bool tr_json_equal(const struct tr_json *a, const struct tr_json *b) {
	size_t i;

	if (!a || !b) {
		return a == b;
	}
	if (a->type != b->type) {
		return false;
	}
	switch (a->type) {
	case TR_JSON_STRING:
	case TR_JSON_RAW:
		return a->u.str.len == b->u.str.len &&
		       memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
	case TR_JSON_NUMBER:
		if (a->u.num.is_int && b->u.num.is_int) {
			return a->u.num.i == b->u.num.i;
		}
		return a->u.num.d == b->u.num.d;
	case TR_JSON_ARRAY:
		if (a->u.arr.n != b->u.arr.n) {
			return false;
		}
		for (i = 0; i < a->u.arr.n; i++) {
			if (!tr_json_equal(a->u.arr.items[i], b->u.arr.items[i])) {
				return false;
			}
		}
		return true;
	case TR_JSON_OBJECT:
		if (a->u.obj.n != b->u.obj.n) {
			return false;
		}
		/* Keys are unique on both sides, so equal counts + every key of a in b suffice. */
		for (i = 0; i < a->u.obj.n; i++) {
			const struct tr_json *bv;

			if (i < b->u.obj.n && strcmp(a->u.obj.keys[i], b->u.obj.keys[i]) == 0) {
				bv = b->u.obj.vals[i]; /* same order: the common case */
			} else {
				bv = tr_json_get(b, a->u.obj.keys[i]);
				if (!bv) {
					return false;
				}
			}
			if (!tr_json_equal(a->u.obj.vals[i], bv)) {
				return false;
			}
		}
		return true;
	default:
		return true;
	}
}

/* ----------------------------------------------------------------- getters */

const struct tr_json *tr_json_get(const struct tr_json *obj, const char *key) {
	ssize_t i;

	if (!tr_json_is(obj, TR_JSON_OBJECT) || !key) {
		return NULL;
	}
	i = object_find(obj, key);
	return i < 0 ? NULL : obj->u.obj.vals[i];
}

const char *tr_json_get_string(const struct tr_json *obj, const char *key) {
	const struct tr_json *v = tr_json_get(obj, key);

	return tr_json_is(v, TR_JSON_STRING) ? v->u.str.s : NULL;
}

int tr_json_get_int(const struct tr_json *obj, const char *key, int64_t *ret) {
	const struct tr_json *v = tr_json_get(obj, key);

	if (!v || v->type == TR_JSON_NULL) {
		return -ENOENT;
	}
	if (!tr_json_is_int(v)) {
		return -EINVAL;
	}
	*ret = v->u.num.i;
	return 0;
}

int tr_json_get_bool(const struct tr_json *obj, const char *key, bool *ret) {
	const struct tr_json *v = tr_json_get(obj, key);

	if (!v || v->type == TR_JSON_NULL) {
		return -ENOENT;
	}
	if (!tr_json_is_bool(v)) {
		return -EINVAL;
	}
	*ret = v->type == TR_JSON_TRUE;
	return 0;
}

/* ----------------------------------------------------------------- parsing */

const char *tr_json_error_str(enum tr_json_error e) {
	switch (e) {
	case TR_JSON_OK:
		return "no error";
	case TR_JSON_ESYNTAX:
		return "syntax error";
	case TR_JSON_EDEPTH:
		return "nested too deeply";
	case TR_JSON_EKEYS:
		return "too many members in an object";
	case TR_JSON_EUTF8:
		return "invalid UTF-8";
	case TR_JSON_ENUL:
		return "NUL character in a string";
	case TR_JSON_EDUPKEY:
		return "duplicate member name";
	case TR_JSON_ENOMEM:
		return "out of memory";
	default:
		return "unknown error";
	}
}

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1, s[0] >= 0x80), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
	unsigned char c = s[0];

	if (c >= 0xc2 && c <= 0xdf) {
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	}
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = 0x80, hi = 0xbf;

		if (c == 0xe0) {
			lo = 0xa0; /* overlong */
		} else if (c == 0xed) {
			hi = 0x9f; /* surrogates */
		}
		if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80) {
			return 0;
		}
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = 0x80, hi = 0xbf;

		if (c == 0xf0) {
			lo = 0x90; /* overlong */
		} else if (c == 0xf4) {
			hi = 0x8f; /* above U+10FFFF */
		}
		if (n < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 ||
			(s[3] & 0xc0) != 0x80) {
			return 0;
		}
		return 4;
	}
	return 0;
}

static int hex4(const unsigned char *s, size_t n, unsigned *ret) {
	unsigned v = 0;

	if (n < 4) {
		return -1;
	}
	for (int i = 0; i < 4; i++) {
		unsigned char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9') {
			v |= (unsigned)(c - '0');
		} else if (c >= 'a' && c <= 'f') {
			v |= (unsigned)(c - 'a' + 10);
		} else if (c >= 'A' && c <= 'F') {
			v |= (unsigned)(c - 'A' + 10);
		} else {
			return -1;
		}
	}
	*ret = v;
	return 0;
}

/*
 * Eight bytes at a time, for the loops over every byte of a text (the prescan, the quoting):
 * whether s[0..8) holds none of the bytes those loops act on, which are every byte >= 0x80,
 * every byte < 0x20 (NUL among them), '"' and '\\'. A word that holds none is skipped whole;
 * any other is looked at a byte at a time as before. (The classic "has a byte less than"
 * test: exact for bytes < 0x80, and bytes >= 0x80 are caught by their own top bit.)
 */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static inline bool plain8(const unsigned char *s) {
	uint64_t x, q, b;

	memcpy(&x, s, 8);
	q = x ^ (ONES * '"');
	b = x ^ (ONES * '\\');
	return ((x | ((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS) == 0;
}

/*
 * The strictness pass: strict UTF-8 everywhere, and inside strings no NUL (raw or escaped)
 * and no unpaired surrogate escapes. Grammar errors are left to yajl.
 */
static enum tr_json_error prescan(const unsigned char *s, size_t n) {
	bool in_str = false;
	size_t i = 0;

	while (i < n) {
		unsigned char c;

		/* nothing in these 8 bytes changes the state, in or out of a string */
		if (n - i >= 8 && plain8(s + i)) {
			i += 8;
			continue;
		}
		c = s[i];
		if (c >= 0x80) {
			size_t k = utf8_seq(s + i, n - i);

			if (!k) {
				return TR_JSON_EUTF8;
			}
			i += k;
			continue;
		}
		if (!in_str) {
			in_str = c == '"';
			i++;
			continue;
		}
		if (c == '"') {
			in_str = false;
			i++;
		} else if (c == '\0') {
			return TR_JSON_ENUL;
		} else if (c == '\\' && i + 1 < n && s[i + 1] == 'u') {
			unsigned u, lo;

			if (hex4(s + i + 2, n - i - 2, &u) < 0) {
				i += 2; /* not an escape yajl accepts either */
				continue;
			}
			i += 6;
			if (u == 0) {
				return TR_JSON_ENUL;
			}
			if (u >= 0xdc00 && u <= 0xdfff) {
				return TR_JSON_EUTF8; /* low surrogate without a high one */
			}
			if (u >= 0xd800 && u <= 0xdbff) {
				if (i + 1 >= n || s[i] != '\\' || s[i + 1] != 'u' ||
					hex4(s + i + 2, n - i - 2, &lo) < 0 || lo < 0xdc00 ||
					lo > 0xdfff) {
					return TR_JSON_EUTF8;
				}
				i += 6;
			}
		} else if (c == '\\') {
			i += 2; /* skip the escaped character, which may be '"' */
		} else {
			i++;
		}
	}
	/* A text that ends inside a string is not JSON. yajl takes an unterminated string after a
	 * complete value for the end of its input, not for trailing garbage: `{}"x` would pass. */
	return in_str ? TR_JSON_ESYNTAX : TR_JSON_OK;
}

struct parse_ctx {
	struct tr_json_arena *arena; /* where the tree is built, or NULL: malloc */
	struct tr_json *root;
	struct tr_json *stack[TR_JSON_MAX_DEPTH];
	size_t depth;
	enum tr_json_error error;
};

static int key_cmp(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

uint32_t tr_json_hash(const char *k) {
	uint32_t h = 2166136261u;

	for (; *k; k++) {
		h = (h ^ (unsigned char)*k) * 16777619u;
	}
	return h;
}

/* Refuse an object with the same member twice. Up to 64 members: their hashes are compared
 * pairwise and only equal hashes compared as strings (every object of every payload is
 * checked, and comparing the strings pairwise was the daemon's biggest use of strcmp);
 * beyond, a sorted copy of the keys. */
static int check_dup_keys(struct parse_ctx *c, const struct tr_json *obj) {
	size_t n = obj->u.obj.n;
	char **keys;

	if (n <= 64) {
		uint32_t h[64];

		for (size_t i = 0; i < n; i++) {
			h[i] = tr_json_hash(obj->u.obj.keys[i]);
			for (size_t j = 0; j < i; j++) {
				if (h[j] == h[i] && strcmp(obj->u.obj.keys[i], obj->u.obj.keys[j]) == 0) {
					c->error = TR_JSON_EDUPKEY;
					return 0;
				}
			}
		}
		return 1;
	}
	keys = malloc(n * sizeof(char *));
	if (!keys) {
		c->error = TR_JSON_ENOMEM;
		return 0;
	}
	memcpy(keys, obj->u.obj.keys, n * sizeof(char *));
	qsort(keys, n, sizeof(char *), key_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(keys[i - 1], keys[i]) == 0) {
			c->error = TR_JSON_EDUPKEY;
			free(keys);
			return 0;
		}
	}
	free(keys);
	return 1;
}

/* Attach a new value where the parser is; takes ownership of v. Returns 1 or 0 (cancel). */
static int add_value(struct parse_ctx *c, struct tr_json *v) {
	struct tr_json *top;

	if (!v) {
		c->error = TR_JSON_ENOMEM;
		return 0;
	}
	if (c->depth == 0) {
		c->root = v;
		return 1;
	}
	top = c->stack[c->depth - 1];
	if (top->type == TR_JSON_ARRAY) {
		if (array_push(c->arena, top, v) < 0) {
			if (!c->arena) {
				tr_json_free(v);
			}
			c->error = TR_JSON_ENOMEM;
			return 0;
		}
		return 1;
	}
	/* Object: map_key pushed the key with a NULL value slot. */
	top->u.obj.vals[top->u.obj.n - 1] = v;
	return 1;
}

static int on_null(void *ctx) {
	struct parse_ctx *c = ctx;

	return add_value(c, node_new(c->arena, TR_JSON_NULL));
}

static int on_boolean(void *ctx, int b) {
	struct parse_ctx *c = ctx;

	return add_value(c, node_new(c->arena, b ? TR_JSON_TRUE : TR_JSON_FALSE));
}

/* strtod() in any LC_NUMERIC: if it stops at the '.', retry with the locale's point. */
static double parse_double(const char *raw) {
	char *end, *tmp, *dot;
	double d = strtod(raw, &end);
	const char *point;

	if (*end != '.') {
		return d;
	}
	point = localeconv()->decimal_point;
	if (!point || strlen(point) != 1) {
		return d;
	}
	tmp = mem_dup(NULL, raw, strlen(raw));
	if (!tmp) {
		return d;
	}
	dot = strchr(tmp, '.');
	*dot = point[0];
	d = strtod(tmp, NULL);
	free(tmp);
	return d;
}

/* yajl has checked the grammar of the number; we only classify it. */
static int on_number(void *ctx, const char *s, size_t len) {
	struct parse_ctx *c = ctx;
	struct tr_json *v = node_new_text(c->arena, TR_JSON_NUMBER, s, len);
	bool integral = true;

	if (!v) {
		c->error = TR_JSON_ENOMEM;
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') {
			integral = false;
			break;
		}
	}
	if (integral) {
		char *end;

		errno = 0;
		v->u.num.i = strtoll(v->u.num.raw, &end, 10);
		if (errno == 0 && *end == '\0') {
			v->u.num.is_int = true;
			v->u.num.d = (double)v->u.num.i;
			return add_value(c, v);
		}
		v->u.num.i = 0;
	}
	v->u.num.d = parse_double(v->u.num.raw);
	return add_value(c, v);
}

static int on_string(void *ctx, const unsigned char *s, size_t len) {
	struct parse_ctx *c = ctx;

	/* The prescan already refused these; yajl's decoding must agree with it. */
	if (memchr(s, '\0', len)) {
		c->error = TR_JSON_ENUL;
		return 0;
	}
	return add_value(c, node_new_text(c->arena, TR_JSON_STRING, (const char *)s, len));
}

static int push_container(struct parse_ctx *c, enum tr_json_type t) {
	struct tr_json *v;

	if (c->depth >= TR_JSON_MAX_DEPTH) {
		c->error = TR_JSON_EDEPTH;
		return 0;
	}
	v = node_new(c->arena, t);
	if (!add_value(c, v)) {
		return 0;
	}
	c->stack[c->depth++] = v;
	return 1;
}

static int on_start_map(void *ctx) {
	return push_container(ctx, TR_JSON_OBJECT);
}

static int on_map_key(void *ctx, const unsigned char *s, size_t len) {
	struct parse_ctx *c = ctx;
	struct tr_json *obj = c->stack[c->depth - 1];
	char *k;

	if (obj->u.obj.n >= TR_JSON_MAX_KEYS) {
		c->error = TR_JSON_EKEYS;
		return 0;
	}
	if (memchr(s, '\0', len)) {
		c->error = TR_JSON_ENUL;
		return 0;
	}
	k = mem_dup(c->arena, (const char *)s, len);
	if (!k || object_push(c->arena, obj, k, NULL) < 0) {
		if (!c->arena) {
			free(k);
		}
		c->error = TR_JSON_ENOMEM;
		return 0;
	}
	return 1;
}

static int on_end_map(void *ctx) {
	struct parse_ctx *c = ctx;

	if (!check_dup_keys(c, c->stack[c->depth - 1])) {
		return 0;
	}
	c->depth--;
	return 1;
}

static int on_start_array(void *ctx) {
	return push_container(ctx, TR_JSON_ARRAY);
}

static int on_end_array(void *ctx) {
	struct parse_ctx *c = ctx;

	c->depth--;
	return 1;
}

static const yajl_callbacks callbacks = {
	.yajl_null = on_null,
	.yajl_boolean = on_boolean,
	.yajl_number = on_number,
	.yajl_string = on_string,
	.yajl_start_map = on_start_map,
	.yajl_map_key = on_map_key,
	.yajl_end_map = on_end_map,
	.yajl_start_array = on_start_array,
	.yajl_end_array = on_end_array,
};

static int parse(struct tr_json_arena *arena, const char *buf, size_t len, struct tr_json **ret,
	enum tr_json_error *ret_error) {
	struct parse_ctx c = { .arena = arena, .error = TR_JSON_OK };
	yajl_handle h;
	yajl_status st;
	enum tr_json_error e;

	e = prescan((const unsigned char *)buf, len);
	if (e != TR_JSON_OK) {
		goto fail;
	}

	h = yajl_alloc(&callbacks, NULL, &c);
	if (!h) {
		e = TR_JSON_ENOMEM;
		goto fail;
	}
	/* Defaults are what we want: validate UTF-8, no comments, one value, no trailing data.
	 * Set them explicitly so a changed default cannot loosen us. */
	yajl_config(h, yajl_allow_comments, 0);
	yajl_config(h, yajl_dont_validate_strings, 0);
	yajl_config(h, yajl_allow_trailing_garbage, 0);
	yajl_config(h, yajl_allow_multiple_values, 0);
	yajl_config(h, yajl_allow_partial_values, 0);

	st = yajl_parse(h, (const unsigned char *)buf, len);
	if (st == yajl_status_ok) {
		st = yajl_complete_parse(h);
	}
	yajl_free(h);

	if (st != yajl_status_ok || !c.root || c.depth != 0) {
		e = c.error != TR_JSON_OK ? c.error : TR_JSON_ESYNTAX;
		goto fail;
	}
	*ret = c.root;
	if (ret_error) {
		*ret_error = TR_JSON_OK;
	}
	return 0;

fail:
	if (!arena) {
		tr_json_free(c.root);
	}
	if (ret_error) {
		*ret_error = e;
	}
	return e == TR_JSON_ENOMEM ? -ENOMEM : -EBADMSG;
}

int tr_json_parse(const char *buf, size_t len, struct tr_json **ret,
	enum tr_json_error *ret_error) {
	return parse(NULL, buf, len, ret, ret_error);
}

int tr_json_parse_in(struct tr_json_arena *a, const char *buf, size_t len,
	const struct tr_json **ret, enum tr_json_error *ret_error) {
	struct tr_json *root = NULL;
	int r = parse(a, buf, len, &root, ret_error);

	if (r == 0) {
		*ret = root;
	}
	return r;
}

/* ----------------------------------------------------------------- writing */

static int reserve(char **buf, size_t *len, size_t *cap, size_t more) {
	size_t want = *len + more + 1; /* always room for a terminating NUL */
	size_t ncap;
	char *p;

	if (want <= *cap && *buf) {
		return 0;
	}
	if (want < more) {
		return -ENOMEM; /* overflow */
	}
	ncap = *cap ? *cap : 256;
	while (ncap < want) {
		if (ncap > SIZE_MAX / 2) {
			return -ENOMEM;
		}
		ncap *= 2;
	}
	p = realloc(*buf, ncap);
	if (!p) {
		return -ENOMEM;
	}
	*buf = p;
	*cap = ncap;
	return 0;
}

static int put(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
	if (reserve(buf, len, cap, n) < 0) {
		return -ENOMEM;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

int tr_json_text_append(const char *s, size_t n, char **buf, size_t *len, size_t *cap) {
	return put(buf, len, cap, s, n);
}

/* 0: copy as is; 1: needs an escape; 2: non-ASCII, check the UTF-8 sequence. */
static inline int esc_class(unsigned char c) {
	if (c >= 0x80) {
		return 2;
	}
	return c < 0x20 || c == '"' || c == '\\';
}

/*
 * Quote s[0..n). Runs of bytes that need nothing are copied with one memcpy. Control
 * characters become \u00XX (or \b \f \n \r \t), invalid UTF-8 becomes \ufffd so that the
 * output is always valid JSON whatever the input.
 */
int tr_json_quote_append(const char *s, size_t n, char **buf, size_t *len, size_t *cap) {
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0, o;
	char *b;

	if (n > SIZE_MAX / 2 || reserve(buf, len, cap, n + 2) < 0) {
		return -ENOMEM;
	}
	o = *len;
	b = *buf;
	b[o++] = '"';
	while (i < n) {
		int cls;
		char e;

		if (n - i >= 8 && plain8(u + i)) {
			i += 8;
			continue;
		}
		cls = esc_class(u[i]);
		if (cls == 0) {
			i++;
			continue;
		}
		if (cls == 2) {
			size_t k = utf8_seq(u + i, n - i);

			if (k) {
				i += k;
				continue;
			}
		}
		/* Room for the run, this escape (<= 6), the rest of the input and the quote. */
		*len = o;
		if (reserve(buf, len, cap, (i - run) + 6 + (n - i) + 1) < 0) {
			return -ENOMEM;
		}
		b = *buf;
		memcpy(b + o, s + run, i - run);
		o += i - run;
		b[o++] = '\\';
		switch (u[i]) {
		case '"':
			e = '"';
			break;
		case '\\':
			e = '\\';
			break;
		case '\b':
			e = 'b';
			break;
		case '\f':
			e = 'f';
			break;
		case '\n':
			e = 'n';
			break;
		case '\r':
			e = 'r';
			break;
		case '\t':
			e = 't';
			break;
		default:
			e = 0;
			break;
		}
		if (e) {
			b[o++] = e;
		} else if (cls == 2) {
			memcpy(b + o, "ufffd", 5);
			o += 5;
		} else {
			memcpy(b + o, "u00", 3);
			b[o + 3] = hex[u[i] >> 4];
			b[o + 4] = hex[u[i] & 0xf];
			o += 5;
		}
		i++;
		run = i;
	}
	memcpy(b + o, s + run, i - run);
	o += i - run;
	b[o++] = '"';
	b[o] = '\0';
	*len = o;
	return 0;
}

int tr_json_dump_append(const struct tr_json *v, char **buf, size_t *len, size_t *cap) {
	size_t i;

	if (!v) {
		return put(buf, len, cap, "null", 4);
	}
	switch (v->type) {
	case TR_JSON_NULL:
		return put(buf, len, cap, "null", 4);
	case TR_JSON_FALSE:
		return put(buf, len, cap, "false", 5);
	case TR_JSON_TRUE:
		return put(buf, len, cap, "true", 4);
	case TR_JSON_NUMBER:
		return put(buf, len, cap, v->u.num.raw, strlen(v->u.num.raw));
	case TR_JSON_STRING:
		return tr_json_quote_append(v->u.str.s, v->u.str.len, buf, len, cap);
	case TR_JSON_RAW:
		return put(buf, len, cap, v->u.str.s, v->u.str.len);
	case TR_JSON_ARRAY:
		if (put(buf, len, cap, "[", 1) < 0) {
			return -ENOMEM;
		}
		for (i = 0; i < v->u.arr.n; i++) {
			if ((i && put(buf, len, cap, ",", 1) < 0) ||
				tr_json_dump_append(v->u.arr.items[i], buf, len, cap) < 0) {
				return -ENOMEM;
			}
		}
		return put(buf, len, cap, "]", 1);
	case TR_JSON_OBJECT:
		if (put(buf, len, cap, "{", 1) < 0) {
			return -ENOMEM;
		}
		for (i = 0; i < v->u.obj.n; i++) {
			const char *k = v->u.obj.keys[i];

			if ((i && put(buf, len, cap, ",", 1) < 0) ||
				tr_json_quote_append(k, strlen(k), buf, len, cap) < 0 ||
				put(buf, len, cap, ":", 1) < 0 ||
				tr_json_dump_append(v->u.obj.vals[i], buf, len, cap) < 0) {
				return -ENOMEM;
			}
		}
		return put(buf, len, cap, "}", 1);
	default:
		return -EINVAL;
	}
}

int tr_json_dump(const struct tr_json *v, char **ret, size_t *ret_len) {
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (tr_json_dump_append(v, &buf, &len, &cap) < 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	if (ret_len) {
		*ret_len = len;
	}
	return 0;
}
