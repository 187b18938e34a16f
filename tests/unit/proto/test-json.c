/*
 * test-json.c — the bounded JSON tree (proto/json.c).
 *
 * Tables of accepted and refused documents (grammar, strict UTF-8, NUL, duplicates), the
 * depth and key limits exactly at and one over, the writer's escaping, the tree API, and
 * allocation failures at every allocation.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "tr-limits.h"
#include "alloc-fail.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct doc {
	const char *in;
	size_t len; /* 0: strlen(in) */
	const char *out; /* expected compact dump; NULL: same as in */
};

static const struct doc good[] = {
	{ "{}", 0, NULL },
	{ "[]", 0, NULL },
	{ " {} ", 0, "{}" },
	{ "\n\t[ 1 , 2 ]\r\n", 0, "[1,2]" },
	{ "null", 0, NULL },
	{ "true", 0, NULL },
	{ "false", 0, NULL },
	{ "0", 0, NULL },
	{ "-0", 0, NULL },
	{ "123", 0, NULL },
	{ "1.5", 0, NULL },
	{ "1.0", 0, NULL },
	{ "-1.25e-7", 0, NULL },
	{ "1E+2", 0, NULL },
	{ "9223372036854775807", 0, NULL },
	{ "-9223372036854775808", 0, NULL },
	{ "123456789012345678901234567890", 0, NULL }, /* kept as text */
	{ "\"\"", 0, NULL },
	{ "\"a\\\"b\\\\c\\/d\"", 0, "\"a\\\"b\\\\c/d\"" },
	{ "\"\\b\\f\\n\\r\\t\"", 0, NULL },
	{ "\"\\u0001\\u001f\\u007f\"", 0, "\"\\u0001\\u001f\x7f\"" },
	{ "\"\\u00e9\"", 0, "\"\xc3\xa9\"" },
	{ "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", 0, NULL },   /* é € 😀 */
	{ "\"\\ud83d\\ude00\"", 0, "\"\xf0\x9f\x98\x80\"" },        /* surrogate pair */
	{ "\"\\uD83D\\uDE00\"", 0, "\"\xf0\x9f\x98\x80\"" },
	{ "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", 0, NULL },           /* U+FFFF, U+10FFFF */
	{ "\"\xed\x9f\xbf\xee\x80\x80\"", 0, NULL },               /* around the surrogates */
	{ "{\"a\":{\"b\":[null,true,{\"c\":\"d\"}]},\"e\":-1}", 0, NULL },
	{ "{\"a\":1,\"A\":2}", 0, NULL },
	{ "[\"\\u0041\",\"A\"]", 0, "[\"A\",\"A\"]" },
};

struct bad {
	const char *in;
	size_t len;
	enum tr_json_error want;
};

static const struct bad bad[] = {
	/* grammar */
	{ "", 0, TR_JSON_ESYNTAX },
	{ "   ", 0, TR_JSON_ESYNTAX },
	{ "{", 0, TR_JSON_ESYNTAX },
	{ "{}x", 0, TR_JSON_ESYNTAX },
	{ "{} {}", 0, TR_JSON_ESYNTAX },
	{ "{}{}", 0, TR_JSON_ESYNTAX },
	{ "1 2", 0, TR_JSON_ESYNTAX },
	{ "[1]]", 0, TR_JSON_ESYNTAX },
	{ "[1,]", 0, TR_JSON_ESYNTAX },
	{ "{\"a\":1,}", 0, TR_JSON_ESYNTAX },
	{ "{\"a\"}", 0, TR_JSON_ESYNTAX },
	{ "{a:1}", 0, TR_JSON_ESYNTAX },
	{ "{'a':1}", 0, TR_JSON_ESYNTAX },
	{ "01", 0, TR_JSON_ESYNTAX },
	{ "1.", 0, TR_JSON_ESYNTAX },
	{ ".5", 0, TR_JSON_ESYNTAX },
	{ "1e", 0, TR_JSON_ESYNTAX },
	{ "-", 0, TR_JSON_ESYNTAX },
	{ "+1", 0, TR_JSON_ESYNTAX },
	{ "NaN", 0, TR_JSON_ESYNTAX },
	{ "Infinity", 0, TR_JSON_ESYNTAX },
	{ "tru", 0, TR_JSON_ESYNTAX },
	{ "nulll", 0, TR_JSON_ESYNTAX },
	{ "\"abc", 0, TR_JSON_ESYNTAX },
	{ "\"\\x\"", 0, TR_JSON_ESYNTAX },
	{ "\"\\u12\"", 0, TR_JSON_ESYNTAX },
	{ "\"\\u12g4\"", 0, TR_JSON_ESYNTAX },
	{ "\"a\tb\"", 0, TR_JSON_ESYNTAX }, /* raw control character */
	{ "\"a\nb\"", 0, TR_JSON_ESYNTAX },
	{ "/* c */ {}", 0, TR_JSON_ESYNTAX },
	{ "// c\n{}", 0, TR_JSON_ESYNTAX },
	{ "{}\0", 3, TR_JSON_ESYNTAX },
	/* a value, then the start of a string that never ends */
	{ "{}\"", 0, TR_JSON_ESYNTAX },
	{ "{} \"abc", 0, TR_JSON_ESYNTAX },
	{ "\"\"\"", 0, TR_JSON_ESYNTAX },
	{ "\"a\"\"b", 0, TR_JSON_ESYNTAX },
	{ "[1]\"x\\\"", 0, TR_JSON_ESYNTAX },
	{ "1 \"", 0, TR_JSON_ESYNTAX },
	{ "\"abc\\", 0, TR_JSON_ESYNTAX },
	{ "\0{}", 3, TR_JSON_ESYNTAX },
	/* UTF-8 */
	{ "\"\xc0\x80\"", 0, TR_JSON_EUTF8 },             /* overlong NUL */
	{ "\"\xc1\xbf\"", 0, TR_JSON_EUTF8 },             /* overlong 2-byte */
	{ "\"\xe0\x80\xaf\"", 0, TR_JSON_EUTF8 },         /* overlong '/' */
	{ "\"\xe0\x9f\xbf\"", 0, TR_JSON_EUTF8 },         /* overlong 3-byte */
	{ "\"\xf0\x80\x80\xaf\"", 0, TR_JSON_EUTF8 },     /* overlong 4-byte */
	{ "\"\xf0\x8f\xbf\xbf\"", 0, TR_JSON_EUTF8 },
	{ "\"\xed\xa0\x80\"", 0, TR_JSON_EUTF8 },         /* U+D800 */
	{ "\"\xed\xbf\xbf\"", 0, TR_JSON_EUTF8 },         /* U+DFFF */
	{ "\"\xed\xa0\xbd\xed\xb8\x80\"", 0, TR_JSON_EUTF8 }, /* CESU-8 pair */
	{ "\"\xf4\x90\x80\x80\"", 0, TR_JSON_EUTF8 },     /* U+110000 */
	{ "\"\xf5\x80\x80\x80\"", 0, TR_JSON_EUTF8 },
	{ "\"\xf8\x88\x80\x80\x80\"", 0, TR_JSON_EUTF8 },
	{ "\"\xfe\"", 0, TR_JSON_EUTF8 },
	{ "\"\xff\"", 0, TR_JSON_EUTF8 },
	{ "\"\x80\"", 0, TR_JSON_EUTF8 },                 /* lone continuation */
	{ "\"\xbf\"", 0, TR_JSON_EUTF8 },
	{ "\"\xc3\"", 0, TR_JSON_EUTF8 },                 /* truncated */
	{ "\"\xe2\x82\"", 0, TR_JSON_EUTF8 },
	{ "\"\xf0\x9f\x98\"", 0, TR_JSON_EUTF8 },
	{ "\"\xc3\x28\"", 0, TR_JSON_EUTF8 },             /* bad continuation */
	{ "\xc3", 0, TR_JSON_EUTF8 },                     /* at the very end */
	{ "{\"\xff\":1}", 0, TR_JSON_EUTF8 },             /* in a key */
	{ "[1]\xff", 0, TR_JSON_EUTF8 },                  /* outside strings */
	{ "\"\\ud800\"", 0, TR_JSON_EUTF8 },              /* lone high surrogate */
	{ "\"\\udbff\"", 0, TR_JSON_EUTF8 },
	{ "\"\\udc00\"", 0, TR_JSON_EUTF8 },              /* lone low surrogate */
	{ "\"\\ude00\\ud83d\"", 0, TR_JSON_EUTF8 },       /* swapped pair */
	{ "\"\\ud800\\u0041\"", 0, TR_JSON_EUTF8 },       /* high + non-surrogate */
	{ "\"\\ud800\\ud800\"", 0, TR_JSON_EUTF8 },       /* high + high */
	{ "\"\\ud800x\"", 0, TR_JSON_EUTF8 },
	{ "\"\\ud800\\n\"", 0, TR_JSON_EUTF8 },
	{ "{\"\\udc00\":1}", 0, TR_JSON_EUTF8 },
	/* NUL */
	{ "\"a\\u0000b\"", 0, TR_JSON_ENUL },
	{ "\"\\u0000\"", 0, TR_JSON_ENUL },
	{ "{\"a\\u0000\":1}", 0, TR_JSON_ENUL },
	{ "\"a\0b\"", 5, TR_JSON_ENUL },
	{ "{\"k\0\":1}", 8, TR_JSON_ENUL },
	/* duplicate members */
	{ "{\"a\":1,\"a\":2}", 0, TR_JSON_EDUPKEY },
	{ "{\"a\":1,\"\\u0061\":1}", 0, TR_JSON_EDUPKEY },
	{ "{\"x\":{\"a\":1,\"b\":2,\"a\":3}}", 0, TR_JSON_EDUPKEY },
	{ "[{\"\":1,\"\":1}]", 0, TR_JSON_EDUPKEY },
	{ "{\"\\\"\":1,\"\\\"\":1}", 0, TR_JSON_EDUPKEY },
};

static size_t doc_len(const char *s, size_t len) {
	return len ? len : strlen(s);
}

static void test_good(void **state) {
	for (size_t i = 0; i < N_ELEMS(good); i++) {
		struct tr_json *v = NULL, *again = NULL, *copy;
		enum tr_json_error e = _TR_JSON_ERROR_MAX;
		const char *want = good[i].out ? good[i].out : good[i].in;
		char *out;
		size_t outlen;
		int r;

		r = tr_json_parse(good[i].in, doc_len(good[i].in, good[i].len), &v, &e);
		if (r != 0) {
			fail_msg("case %zu (%s): %d %s", i, good[i].in, r, tr_json_error_str(e));
		}
		assert_int_equal(e, TR_JSON_OK);
		assert_int_equal(tr_json_dump(v, &out, &outlen), 0);
		assert_int_equal(outlen, strlen(out));
		if (strcmp(out, want) != 0) {
			fail_msg("case %zu: dump '%s', want '%s'", i, out, want);
		}
		/* Round trip: the dump parses back to an equal tree; so does a copy. */
		assert_int_equal(tr_json_parse(out, outlen, &again, NULL), 0);
		assert_true(tr_json_equal(v, again));
		copy = tr_json_dup(v);
		assert_non_null(copy);
		assert_true(tr_json_equal(copy, v));
		free(out);
		tr_json_free(copy);
		tr_json_free(again);
		tr_json_free(v);
	}
}

static void test_bad(void **state) {
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		struct tr_json *v = (struct tr_json *)&v;
		enum tr_json_error e = TR_JSON_OK;
		int r = tr_json_parse(bad[i].in, doc_len(bad[i].in, bad[i].len), &v, &e);

		if (r != -EBADMSG || e != bad[i].want) {
			fail_msg("case %zu (%s): r=%d e=%s, want %s", i, bad[i].in, r,
				tr_json_error_str(e), tr_json_error_str(bad[i].want));
		}
		/* Not written on failure. */
		assert_ptr_equal(v, (struct tr_json *)&v);
		/* ret_error may be NULL. */
		assert_int_equal(tr_json_parse(bad[i].in, doc_len(bad[i].in, bad[i].len), &v, NULL),
			-EBADMSG);
	}
}

/* Integers stay exact; everything else is a double with the raw text kept. */
static void test_numbers(void **state) {
	static const struct {
		const char *in;
		bool is_int;
		int64_t i;
		double d;
	} cases[] = {
		{ "0", true, 0, 0 },
		{ "-0", true, 0, 0 },
		{ "42", true, 42, 42 },
		{ "9223372036854775807", true, INT64_MAX, 9223372036854775807.0 },
		{ "-9223372036854775808", true, INT64_MIN, -9223372036854775808.0 },
		{ "9223372036854775808", false, 0, 9223372036854775808.0 },
		{ "-9223372036854775809", false, 0, -9223372036854775809.0 },
		{ "9007199254740993", true, 9007199254740993LL, 9007199254740992.0 },
		{ "1.0", false, 0, 1.0 },
		{ "1e2", false, 0, 100.0 },
		{ "-2.5E-3", false, 0, -0.0025 },
		{ "1e400", false, 0, HUGE_VAL },
	};

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		struct tr_json *v;

		assert_int_equal(tr_json_parse(cases[i].in, strlen(cases[i].in), &v, NULL), 0);
		assert_int_equal(v->type, TR_JSON_NUMBER);
		assert_string_equal(v->u.num.raw, cases[i].in);
		assert_int_equal(v->u.num.is_int, cases[i].is_int);
		assert_int_equal(tr_json_is_int(v), cases[i].is_int);
		if (cases[i].is_int) {
			assert_true(v->u.num.i == cases[i].i);
		}
		assert_true(v->u.num.d == cases[i].d);
		tr_json_free(v);
	}
}

/* Build a document nested n deep: [[[...]]] or {"a":{"a":...}} alternating. */
static char *nested(size_t n, bool objects) {
	size_t cap = n * 6 + 8, len = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	for (size_t i = 0; i < n; i++) {
		if (objects && i % 2) {
			memcpy(s + len, "{\"a\":", 5);
			len += 5;
		} else {
			s[len++] = '[';
		}
	}
	s[len++] = '1';
	for (size_t i = n; i-- > 0;) {
		s[len++] = objects && i % 2 ? '}' : ']';
	}
	s[len] = '\0';
	return s;
}

static void test_depth(void **state) {
	for (int objects = 0; objects <= 1; objects++) {
		char *ok = nested(TR_JSON_MAX_DEPTH, objects);
		char *over = nested(TR_JSON_MAX_DEPTH + 1, objects);
		char *way_over = nested(100000, objects);
		struct tr_json *v;
		enum tr_json_error e;

		assert_int_equal(tr_json_parse(ok, strlen(ok), &v, &e), 0);
		assert_non_null(v);
		tr_json_free(v);
		assert_int_equal(tr_json_parse(over, strlen(over), &v, &e), -EBADMSG);
		assert_int_equal(e, TR_JSON_EDEPTH);
		assert_int_equal(tr_json_parse(way_over, strlen(way_over), &v, &e), -EBADMSG);
		assert_int_equal(e, TR_JSON_EDEPTH);
		/* Scalars at the limit do not count as a level. */
		free(ok);
		free(over);
		free(way_over);
	}
}

/* {"k0":0,...} with n members; dup names member `dup` like member 0. */
static char *many_keys(size_t n, size_t dup) {
	size_t cap = n * 24 + 8, len = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	s[len++] = '{';
	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(s + len, cap - len, "%s\"k%zu\":%zu", i ? "," : "",
			i == dup ? (size_t)0 : i, i);
	}
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

static void test_keys(void **state) {
	char *ok = many_keys(TR_JSON_MAX_KEYS, SIZE_MAX);
	char *over = many_keys(TR_JSON_MAX_KEYS + 1, SIZE_MAX);
	char *dup_big = many_keys(TR_JSON_MAX_KEYS, TR_JSON_MAX_KEYS - 1);
	char *dup_mid = many_keys(17, 16);
	char *no_dup_mid = many_keys(17, SIZE_MAX);
	struct tr_json *v;
	enum tr_json_error e;
	int64_t x;

	assert_int_equal(tr_json_parse(ok, strlen(ok), &v, &e), 0);
	assert_int_equal(v->u.obj.n, TR_JSON_MAX_KEYS);
	assert_int_equal(tr_json_get_int(v, "k4095", &x), 0);
	assert_int_equal(x, 4095);
	tr_json_free(v);
	assert_int_equal(tr_json_parse(over, strlen(over), &v, &e), -EBADMSG);
	assert_int_equal(e, TR_JSON_EKEYS);
	assert_int_equal(tr_json_parse(dup_big, strlen(dup_big), &v, &e), -EBADMSG);
	assert_int_equal(e, TR_JSON_EDUPKEY);
	assert_int_equal(tr_json_parse(dup_mid, strlen(dup_mid), &v, &e), -EBADMSG);
	assert_int_equal(e, TR_JSON_EDUPKEY);
	assert_int_equal(tr_json_parse(no_dup_mid, strlen(no_dup_mid), &v, &e), 0);
	tr_json_free(v);
	/* both sides of the 64 members where hashes give way to a sorted copy */
	for (size_t n = 63; n <= 66; n++) {
		char *d = many_keys(n, n - 1), *nd = many_keys(n, SIZE_MAX);

		assert_int_equal(tr_json_parse(d, strlen(d), &v, &e), -EBADMSG);
		assert_int_equal(e, TR_JSON_EDUPKEY);
		assert_int_equal(tr_json_parse(nd, strlen(nd), &v, &e), 0);
		assert_int_equal(v->u.obj.n, n);
		tr_json_free(v);
		free(d);
		free(nd);
	}
	free(ok);
	free(over);
	free(dup_big);
	free(dup_mid);
	free(no_dup_mid);

	/* The limit is per object: many members spread over several objects are fine. */
	{
		char *a = many_keys(TR_JSON_MAX_KEYS, SIZE_MAX);
		size_t n = strlen(a);
		char *two = malloc(2 * n + 4);

		if (!two) {
			fail();
			return;
		}
		snprintf(two, 2 * n + 4, "[%s,%s]", a, a);
		assert_int_equal(tr_json_parse(two, strlen(two), &v, &e), 0);
		tr_json_free(v);
		free(two);
		free(a);
	}
}

/* The writer: escapes, invalid UTF-8 replaced, control characters as \u00XX. */
static void test_quote(void **state) {
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{ "", 0, "\"\"" },
		{ "abc", 3, "\"abc\"" },
		{ "\"\\/", 3, "\"\\\"\\\\/\"" },
		{ "\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"" },
		{ "\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"" },
		{ "a\0b", 3, "\"a\\u0000b\"" },
		{ "\xc3\xa9", 2, "\"\xc3\xa9\"" },
		{ "\xff", 1, "\"\\ufffd\"" },
		{ "a\xc0\x80z", 4, "\"a\\ufffd\\ufffdz\"" },
		{ "\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"" },
		{ "\xe2\x82", 2, "\"\\ufffd\\ufffd\"" },
		{ "\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"" },
	};

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char *buf = NULL;
		size_t len = 0, cap = 0;
		struct tr_json *v;

		assert_int_equal(tr_json_quote_append(cases[i].in, cases[i].len, &buf, &len, &cap), 0);
		assert_string_equal(buf, cases[i].out);
		assert_int_equal(len, strlen(cases[i].out));
		assert_true(cap > len);
		/* Whatever went in, what comes out is valid JSON (except for NUL, refused). */
		if (!memchr(cases[i].in, '\0', cases[i].len)) {
			assert_int_equal(tr_json_parse(buf, len, &v, NULL), 0);
			tr_json_free(v);
		}
		free(buf);
	}

	/* Appending after existing content, across many reallocations. */
	{
		char *buf = NULL;
		size_t len = 0, cap = 0;
		char chunk[1000];

		for (size_t i = 0; i < sizeof(chunk); i++) {
			chunk[i] = (char)(i % 128);
		}
		for (int k = 0; k < 50; k++) {
			assert_int_equal(tr_json_quote_append(chunk, sizeof(chunk), &buf, &len, &cap), 0);
		}
		assert_int_equal(len, strlen(buf));
		free(buf);
	}
}

/* Every control character is escaped, every other ASCII character is not. */
static void test_quote_all_ascii(void **state) {
	for (int c = 1; c < 128; c++) {
		char in = (char)c, *buf = NULL;
		size_t len = 0, cap = 0;
		struct tr_json *v;

		assert_int_equal(tr_json_quote_append(&in, 1, &buf, &len, &cap), 0);
		if (c < 0x20 || c == '"' || c == '\\') {
			assert_int_equal(buf[1], '\\');
		} else {
			assert_int_equal(len, 3);
			assert_int_equal(buf[1], c);
		}
		assert_int_equal(tr_json_parse(buf, len, &v, NULL), 0);
		assert_int_equal(v->u.str.len, 1);
		assert_int_equal(v->u.str.s[0], c);
		tr_json_free(v);
		free(buf);
	}
}

static void test_build_and_get(void **state) {
	struct tr_json *o = tr_json_new_object(), *a = tr_json_new_array(), *copy, *p;
	char *out;
	int64_t i;
	bool b;

	assert_non_null(o);
	assert_non_null(a);
	assert_int_equal(tr_json_object_set(o, "s", tr_json_new_string("x\"y")), 0);
	assert_int_equal(tr_json_object_set(o, "i", tr_json_new_int(-7)), 0);
	assert_int_equal(tr_json_object_set(o, "big", tr_json_new_int(INT64_MAX)), 0);
	assert_int_equal(tr_json_object_set(o, "d", tr_json_new_double(0.1)), 0);
	assert_int_equal(tr_json_object_set(o, "t", tr_json_new_bool(true)), 0);
	assert_int_equal(tr_json_object_set(o, "f", tr_json_new_bool(false)), 0);
	assert_int_equal(tr_json_object_set(o, "n", tr_json_new_null()), 0);
	assert_int_equal(tr_json_object_set(o, "sn", tr_json_new_stringn("abcdef", 3)), 0);
	for (int k = 0; k < 10; k++) {
		assert_int_equal(tr_json_array_append(a, tr_json_new_int(k)), 0);
	}
	assert_int_equal(tr_json_object_set(o, "a", a), 0);
	assert_int_equal(tr_json_dump(o, &out, NULL), 0);
	assert_string_equal(out, "{\"s\":\"x\\\"y\",\"i\":-7,\"big\":9223372036854775807,\"d\":0.1,"
				 "\"t\":true,\"f\":false,\"n\":null,\"sn\":\"abc\","
				 "\"a\":[0,1,2,3,4,5,6,7,8,9]}");
	free(out);

	/* Getters. */
	assert_string_equal(tr_json_get_string(o, "s"), "x\"y");
	assert_null(tr_json_get_string(o, "i"));
	assert_null(tr_json_get_string(o, "missing"));
	assert_int_equal(tr_json_get_int(o, "i", &i), 0);
	assert_int_equal(i, -7);
	assert_int_equal(tr_json_get_int(o, "d", &i), -EINVAL);
	assert_int_equal(tr_json_get_int(o, "s", &i), -EINVAL);
	assert_int_equal(tr_json_get_int(o, "n", &i), -ENOENT);
	assert_int_equal(tr_json_get_int(o, "missing", &i), -ENOENT);
	assert_int_equal(tr_json_get_bool(o, "t", &b), 0);
	assert_true(b);
	assert_int_equal(tr_json_get_bool(o, "f", &b), 0);
	assert_false(b);
	assert_int_equal(tr_json_get_bool(o, "i", &b), -EINVAL);
	assert_int_equal(tr_json_get_bool(o, "n", &b), -ENOENT);
	assert_int_equal(tr_json_get_bool(o, "missing", &b), -ENOENT);
	assert_null(tr_json_get(a, "x"));
	assert_null(tr_json_get(NULL, "x"));
	assert_null(tr_json_get(o, NULL));
	assert_true(tr_json_is(tr_json_get(o, "a"), TR_JSON_ARRAY));
	assert_true(tr_json_is_bool(tr_json_get(o, "t")));
	assert_false(tr_json_is_bool(tr_json_get(o, "n")));
	assert_false(tr_json_is(NULL, TR_JSON_NULL));

	/* Replace keeps the position; remove keeps the order of the rest. */
	copy = tr_json_dup(o);
	assert_true(tr_json_equal(o, copy));
	assert_int_equal(tr_json_object_set(o, "i", tr_json_new_string("now a string")), 0);
	assert_string_equal(o->u.obj.keys[1], "i");
	assert_false(tr_json_equal(o, copy));
	assert_int_equal(tr_json_object_remove(o, "s"), 1);
	assert_int_equal(tr_json_object_remove(o, "s"), 0);
	assert_int_equal(tr_json_object_remove(a, "s"), 0);
	assert_string_equal(o->u.obj.keys[0], "i");
	assert_int_equal(o->u.obj.n, 8);
	/* Remove everything, then grow again (capacity bookkeeping). */
	while (o->u.obj.n) {
		char key[64];

		snprintf(key, sizeof(key), "%s", o->u.obj.keys[o->u.obj.n / 2]);
		assert_int_equal(tr_json_object_remove(o, key), 1);
	}
	for (int k = 0; k < 100; k++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", k);
		assert_int_equal(tr_json_object_set(o, key, tr_json_new_int(k)), 0);
		if (k % 3 == 0) {
			assert_int_equal(tr_json_object_remove(o, "k0"), k == 0 ? 1 : 0);
		}
	}
	assert_int_equal(o->u.obj.n, 99);

	/* Bad arguments: ownership is taken anyway (ASan would report a leak otherwise). */
	a = tr_json_new_array(); /* the first one went with o's members */
	assert_non_null(a);
	assert_int_equal(tr_json_object_set(a, "x", tr_json_new_int(1)), -EINVAL);
	assert_int_equal(tr_json_object_set(o, NULL, tr_json_new_int(1)), -EINVAL);
	assert_int_equal(tr_json_object_set(o, "x", NULL), -EINVAL);
	assert_int_equal(tr_json_array_append(o, tr_json_new_int(1)), -EINVAL);
	assert_int_equal(tr_json_array_append(NULL, tr_json_new_int(1)), -EINVAL);
	assert_int_equal(tr_json_array_append(a, NULL), -EINVAL);

	/* NULL handling. */
	assert_null(tr_json_free(NULL));
	assert_null(tr_json_dup(NULL));
	assert_true(tr_json_equal(NULL, NULL));
	assert_false(tr_json_equal(o, NULL));
	p = tr_json_new_string(NULL);
	assert_int_equal(p->u.str.len, 0);
	tr_json_free(p);

	tr_json_free(copy);
	tr_json_free(o);
	tr_json_free(a);
}

static void test_doubles(void **state) {
	static const struct {
		double d;
		const char *out;
	} cases[] = {
		{ 0.1, "0.1" },
		{ 1.5, "1.5" },
		{ -2.0, "-2" },
		{ 1e300, "1e+300" },
		{ 0.30000000000000004, "0.30000000000000004" },
		{ NAN, "null" },
		{ INFINITY, "null" },
		{ -INFINITY, "null" },
	};

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		struct tr_json *v = tr_json_new_double(cases[i].d), *back;
		char *out;

		assert_non_null(v);
		assert_int_equal(tr_json_dump(v, &out, NULL), 0);
		assert_string_equal(out, cases[i].out);
		assert_int_equal(tr_json_parse(out, strlen(out), &back, NULL), 0);
		assert_true(tr_json_equal(v, back));
		free(out);
		tr_json_free(back);
		tr_json_free(v);
	}
}

/*
 * Numbers are read and written with '.', whatever LC_NUMERIC says. Needs a locale with a
 * decimal comma; not run when none is installed (LOCPATH may point at one made with
 * `localedef -i de_DE -f UTF-8 DIR/de_DE.UTF-8`).
 */
static void test_locale(void **state) {
	static const char *const names[] = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8",
		"fr_FR.utf8" };
	struct tr_json *v, *d;
	char *out;
	bool set = false;

	for (size_t i = 0; i < N_ELEMS(names) && !set; i++) {
		set = setlocale(LC_NUMERIC, names[i]) != NULL;
	}
	if (!set || strcmp(localeconv()->decimal_point, ",") != 0) {
		/* cmocka 1.1's TAP output reports skip() as "not ok", which meson counts as a
		 * failure: say so in a TAP comment instead. */
		(void)setlocale(LC_NUMERIC, "C");
		printf("# test_locale: no locale with a decimal comma installed, not run\n");
		return;
	}
	assert_int_equal(tr_json_parse("[1.5,-2.25e1,3]", 15, &v, NULL), 0);
	assert_true(v->u.arr.items[0]->u.num.d == 1.5);
	assert_true(v->u.arr.items[1]->u.num.d == -22.5);
	d = tr_json_new_double(0.25);
	assert_int_equal(tr_json_dump(d, &out, NULL), 0);
	(void)setlocale(LC_NUMERIC, "C");
	assert_string_equal(out, "0.25");
	free(out);
	tr_json_free(d);
	tr_json_free(v);
}

/* A raw node is written out verbatim, copied by dup, compared byte for byte, and owns
 * its text (freed with the tree). */
static void test_raw(void **state) {
	struct tr_json *o = tr_json_new_object(), *d, *r2;
	char *text = NULL;
	size_t len = 0;

	(void)state;
	assert_null(tr_json_new_raw_take(NULL, 0));
	assert_int_equal(tr_json_object_set(o, "a", tr_json_new_int(1)), 0);
	assert_int_equal(tr_json_object_set(o, "task", tr_json_new_raw_take(strdup("{\"x\":[1,\"\\u00e9\"]}"), 18)), 0);
	assert_int_equal(tr_json_dump(o, &text, &len), 0);
	assert_string_equal(text, "{\"a\":1,\"task\":{\"x\":[1,\"\\u00e9\"]}}");
	assert_int_equal(len, strlen(text));
	free(text);
	d = tr_json_dup(o);
	assert_non_null(d);
	assert_int_equal(tr_json_get(d, "task")->type, TR_JSON_RAW);
	assert_true(tr_json_equal(o, d));
	r2 = tr_json_new_raw_take(strdup("{\"x\":[1]}"), 9);
	assert_int_equal(tr_json_object_set(d, "task", r2), 0);
	assert_false(tr_json_equal(o, d));
	/* lookups treat it as an opaque value */
	assert_null(tr_json_get_string(o, "task"));
	assert_null(tr_json_get(tr_json_get(o, "task"), "x"));
	tr_json_free(d);
	tr_json_free(o);
}

static void test_equal(void **state) {
	static const struct {
		const char *a, *b;
		bool eq;
	} cases[] = {
		{ "{\"a\":1,\"b\":2}", "{\"b\":2,\"a\":1}", true },
		{ "{\"a\":1,\"b\":2}", "{\"a\":1,\"c\":2}", false },
		{ "{\"a\":1}", "{\"a\":1,\"b\":2}", false },
		{ "[1,2]", "[2,1]", false },
		{ "[1,2]", "[1,2,3]", false },
		{ "1", "1.0", true },
		{ "1", "1e0", true },
		{ "1", "2", false },
		{ "\"a\"", "\"a\"", true },
		{ "\"a\"", "\"b\"", false },
		{ "\"a\"", "\"ab\"", false },
		{ "null", "false", false },
		{ "true", "true", true },
		{ "{}", "[]", false },
		{ "{\"x\":[{\"y\":null}]}", "{\"x\":[{\"y\":null}]}", true },
		{ "{\"x\":[{\"y\":null}]}", "{\"x\":[{\"y\":0}]}", false },
		{ "9223372036854775807", "9223372036854775806", false },
	};

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		struct tr_json *a, *b;

		assert_int_equal(tr_json_parse(cases[i].a, strlen(cases[i].a), &a, NULL), 0);
		assert_int_equal(tr_json_parse(cases[i].b, strlen(cases[i].b), &b, NULL), 0);
		if (tr_json_equal(a, b) != cases[i].eq || tr_json_equal(b, a) != cases[i].eq) {
			fail_msg("case %zu: %s vs %s", i, cases[i].a, cases[i].b);
		}
		tr_json_free(a);
		tr_json_free(b);
	}
}

static void test_error_str(void **state) {
	for (int e = 0; e <= _TR_JSON_ERROR_MAX; e++) {
		const char *s = tr_json_error_str((enum tr_json_error)e);

		assert_non_null(s);
		assert_true(strlen(s) > 0);
	}
	assert_string_equal(tr_json_error_str(TR_JSON_EUTF8), "invalid UTF-8");
}

static int set_new_string(struct tr_json *obj, const char *key) {
	struct tr_json *v = tr_json_new_string("v");

	return v ? tr_json_object_set(obj, key, v) : -ENOMEM;
}

static int append_new_int(struct tr_json *arr, int k) {
	struct tr_json *v = tr_json_new_int(k);

	return v ? tr_json_array_append(arr, v) : -ENOMEM;
}

/* Every allocation of every operation may fail; each failure is -ENOMEM without a leak. */
static void test_enomem(void **state) {
	static const char doc[] = "{\"a\":[1,2.5,\"x\",null,true,{\"b\":{}}],\"c\":\"\\u00e9\","
				  "\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,"
				  "\"k8\":8,\"k9\":9,\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,"
				  "\"k14\":14,\"k15\":15,\"k16\":16,\"k17\":17}";
	struct tr_json *v = NULL, *tree;
	char *out = NULL;
	enum tr_json_error e;

	ALLOC_FAIL_LOOP(tr_json_parse(doc, strlen(doc), &v, &e), (v = tr_json_free(v)));
	alloc_reset(0);
	assert_int_equal(tr_json_parse(doc, strlen(doc), &v, &e), -ENOMEM);
	alloc_reset(-1);
	assert_int_equal(e, TR_JSON_ENOMEM);

	assert_int_equal(tr_json_parse(doc, strlen(doc), &tree, NULL), 0);
	ALLOC_FAIL_LOOP(tr_json_dump(tree, &out, NULL), (free(out), out = NULL));
	ALLOC_FAIL_LOOP((v = tr_json_dup(tree)) ? 0 : -ENOMEM, (v = tr_json_free(v)));
	ALLOC_FAIL_LOOP(set_new_string(tree, "new"), (void)tr_json_object_remove(tree, "new"));
	ALLOC_FAIL_LOOP(set_new_string(tree, "a"), (void)0);
	ALLOC_FAIL_LOOP((v = tr_json_new_int(5)) ? 0 : -ENOMEM, (v = tr_json_free(v)));
	ALLOC_FAIL_LOOP((v = tr_json_new_double(5.5)) ? 0 : -ENOMEM, (v = tr_json_free(v)));
	ALLOC_FAIL_LOOP((v = tr_json_new_string("s")) ? 0 : -ENOMEM, (v = tr_json_free(v)));
	{
		struct tr_json *arr = tr_json_new_array();

		for (int k = 0; k < 9; k++) {
			ALLOC_FAIL_LOOP(append_new_int(arr, k), (void)0);
		}
		assert_int_equal(arr->u.arr.n, 9);
		tr_json_free(arr);
	}
	tr_json_free(tree);
}

/* Long texts go eight bytes at a time where nothing needs looking at (plain8): every byte
 * value, at every place in a 24-byte text, is quoted and prescanned exactly as on its own. */
static void test_long_strings(void **state) {
	(void)state;
	for (int c = 0; c < 256; c++) {
		char one[1] = {(char)c}, *alone = NULL;
		size_t alen = 0, acap = 0;
		enum tr_json_error e1 = TR_JSON_OK;
		struct tr_json *v = NULL;
		char doc1[4] = {'"', (char)c, '"', 0};
		int r1;

		assert_int_equal(tr_json_quote_append(one, 1, &alone, &alen, &acap), 0);
		r1 = tr_json_parse(doc1, 3, &v, &e1);
		tr_json_free(v);
		for (int at = 0; at < 24; at++) {
			char text[24], doc[26], want[64], *got = NULL;
			size_t glen = 0, gcap = 0;
			enum tr_json_error e2 = TR_JSON_OK;
			int r2;

			memset(text, 'a', sizeof(text));
			text[at] = (char)c;
			assert_int_equal(tr_json_quote_append(text, sizeof(text), &got, &glen, &gcap), 0);
			/* the same as the byte quoted alone, between the a's */
			snprintf(want, sizeof(want), "\"%.*s%.*s%.*s\"", at, "aaaaaaaaaaaaaaaaaaaaaaaa",
				(int)alen - 2, alone + 1, 23 - at, "aaaaaaaaaaaaaaaaaaaaaaaa");
			if (strcmp(got, want) != 0) {
				fail_msg("byte 0x%02x at %d: quoted %s, want %s", c, at, got, want);
			}
			free(got);
			/* and a document holding it parses or fails as the short one does */
			doc[0] = '"';
			memcpy(doc + 1, text, sizeof(text));
			doc[25] = '"';
			v = NULL;
			r2 = tr_json_parse(doc, sizeof(doc), &v, &e2);
			tr_json_free(v);
			/* (a quote or a backslash ends or escapes the string: not comparable) */
			if (c != '\\' && c != '"' && (r1 != r2 || e1 != e2)) {
				fail_msg("byte 0x%02x at %d: parse %d %s, alone %d %s", c, at, r2,
					tr_json_error_str(e2), r1, tr_json_error_str(e1));
			}
		}
		free(alone);
	}
}

/* A document of n members "k0".."k(n-1)" whose values alternate string, number, array. */
static char *many_members(int n) {
	char *buf = NULL;
	size_t len = 0, cap = 0;

	assert_int_equal(tr_json_text_append("{", 1, &buf, &len, &cap), 0);
	for (int i = 0; i < n; i++) {
		char m[96];
		int k = snprintf(m, sizeof(m), "%s\"k%d\":%s", i ? "," : "", i,
			i % 3 == 0 ? "\"a string value\"" : i % 3 == 1 ? "-12.5e3" : "[1,[2],{}]");
		assert_int_equal(tr_json_text_append(m, (size_t)k, &buf, &len, &cap), 0);
	}
	assert_int_equal(tr_json_text_append("}", 1, &buf, &len, &cap), 0);
	return buf;
}

/* tr_json_parse_in gives the tree and the errors tr_json_parse gives; the trees of several
 * parses stay valid until the reset; pieces larger than a block; an empty arena after reset. */
static void test_arena(void **state) {
	struct tr_json_arena a = {0};
	const struct tr_json *kept[3] = {NULL};
	struct tr_json *want[3] = {NULL};
	static const int sizes[] = {70, 3000};
	char *big;

	for (size_t i = 0; i < N_ELEMS(good); i++) {
		struct tr_json *v = NULL;
		const struct tr_json *t = NULL;
		size_t n = doc_len(good[i].in, good[i].len);

		assert_int_equal(tr_json_parse(good[i].in, n, &v, NULL), 0);
		assert_int_equal(tr_json_parse_in(&a, good[i].in, n, &t, NULL), 0);
		if (!tr_json_equal(v, t)) {
			fail_msg("case %zu (%s): the arena's tree differs", i, good[i].in);
		}
		tr_json_free(v);
	}
	tr_json_arena_reset(&a);
	assert_null(a.blocks);
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		const struct tr_json *t = (const struct tr_json *)&t;
		enum tr_json_error e = TR_JSON_OK;
		int r = tr_json_parse_in(&a, bad[i].in, doc_len(bad[i].in, bad[i].len), &t, &e);

		if (r != -EBADMSG || e != bad[i].want) {
			fail_msg("case %zu (%s): r=%d e=%s, want %s", i, bad[i].in, r,
				tr_json_error_str(e), tr_json_error_str(bad[i].want));
		}
		assert_ptr_equal(t, (const struct tr_json *)&t);
	}
	tr_json_arena_reset(&a);
	/* 70 members (the duplicate check's sorted copy), 3000 (containers grown past a block),
	 * and one string of 20,000 bytes (a piece of its own), all kept at once */
	for (size_t i = 0; i < N_ELEMS(sizes); i++) {
		char *doc = many_members(sizes[i]);

		assert_int_equal(tr_json_parse(doc, strlen(doc), &want[i], NULL), 0);
		assert_int_equal(tr_json_parse_in(&a, doc, strlen(doc), &kept[i], NULL), 0);
		free(doc);
	}
	big = malloc(20000 + 8);
	assert_non_null(big);
	big[0] = '[';
	big[1] = '"';
	memset(big + 2, 'x', 20000);
	memcpy(big + 20002, "\",1]", 5);
	assert_int_equal(tr_json_parse(big, strlen(big), &want[2], NULL), 0);
	assert_int_equal(tr_json_parse_in(&a, big, strlen(big), &kept[2], NULL), 0);
	free(big);
	for (size_t i = 0; i < 3; i++) {
		assert_true(tr_json_equal(want[i], kept[i]));
		tr_json_free(want[i]);
	}
	assert_int_equal(tr_json_get(kept[1], "k2999")->u.arr.n, 3);
	assert_int_equal(strlen(kept[2]->u.arr.items[0]->u.str.s), 20000);
	/* a duplicate member found late in a big object */
	{
		char *doc = many_members(80);
		const struct tr_json *t = NULL;
		enum tr_json_error e = TR_JSON_OK;

		size_t len = strlen(doc) - 1, cap = len + 1; /* without its '}' */

		assert_int_equal(tr_json_text_append(",\"k7\":1}", 8, &doc, &len, &cap), 0);
		assert_int_equal(tr_json_parse_in(&a, doc, len, &t, &e), -EBADMSG);
		assert_int_equal(e, TR_JSON_EDUPKEY);
		free(doc);
	}
	tr_json_arena_reset(&a);
	assert_null(a.blocks);
	assert_int_equal(a.used, 0);
	tr_json_arena_reset(&a); /* twice is fine */
}

/* Out of memory in the arena: -ENOMEM and TR_JSON_ENOMEM, at every allocation in turn, and
 * nothing leaks once the arena is reset. */
static void test_arena_enomem(void **state) {
	struct tr_json_arena a = {0};
	char *doc = many_members(600);
	const struct tr_json *t = NULL;
	struct tr_json *want = NULL;
	enum tr_json_error e;

	assert_int_equal(tr_json_parse(doc, strlen(doc), &want, NULL), 0);
	ALLOC_FAIL_LOOP(tr_json_parse_in(&a, doc, strlen(doc), &t, &e), tr_json_arena_reset(&a));
	alloc_reset(0);
	assert_int_equal(tr_json_parse_in(&a, doc, strlen(doc), &t, &e), -ENOMEM);
	alloc_reset(-1);
	assert_int_equal(e, TR_JSON_ENOMEM);
	assert_int_equal(tr_json_parse_in(&a, doc, strlen(doc), &t, &e), 0);
	assert_true(tr_json_equal(want, t));
	tr_json_arena_reset(&a);
	tr_json_free(want);
	free(doc);
}

/* Build {"sid":"WT1","n":[1,2,{"ok":true}],"s":null} with the sticky builders. */
static int build_sticky(struct tr_json **ret) {
	struct tr_json *o = tr_json_new_object(), *arr = tr_json_new_array(), *in = tr_json_new_object();
	int err = 0;

	tr_json_put(o, "sid", tr_json_new_string("WT1"), &err);
	tr_json_push(arr, tr_json_new_int(1), &err);
	tr_json_push(arr, tr_json_new_int(2), &err);
	tr_json_put(in, "ok", tr_json_new_bool(true), &err);
	tr_json_push(arr, in, &err);
	tr_json_put(o, "n", arr, &err);
	tr_json_put(o, "s", tr_json_new_null(), &err);
	if (err < 0) {
		tr_json_free(o);
		return err;
	}
	*ret = o;
	return 0;
}

static void test_sticky_builders(void **state) {
	struct tr_json *o = NULL, *want;
	int err = 0;

	assert_int_equal(build_sticky(&o), 0);
	assert_int_equal(tr_json_parse("{\"sid\":\"WT1\",\"n\":[1,2,{\"ok\":true}],\"s\":null}",
				 44, &want, NULL), 0);
	assert_true(tr_json_equal(o, want));
	tr_json_free(want);
	o = tr_json_free(o);
	/* Every allocation along the way fails once: -ENOMEM, nothing leaked. */
	ALLOC_FAIL_LOOP(build_sticky(&o), (o = tr_json_free(o)));

	/* A first error sticks; later members are freed, not added. */
	o = tr_json_new_object();
	assert_int_equal(tr_json_put(o, "a", NULL, &err), -ENOMEM);
	assert_int_equal(tr_json_put(o, "b", tr_json_new_int(1), &err), -ENOMEM);
	assert_int_equal(o->u.obj.n, 0);
	err = 0;
	assert_int_equal(tr_json_put(NULL, "a", tr_json_new_int(1), &err), -ENOMEM);
	err = 0;
	assert_int_equal(tr_json_push(o, tr_json_new_int(1), &err), -EINVAL); /* not an array */
	assert_int_equal(tr_json_put(o, "c", tr_json_new_int(1), &err), -EINVAL);
	tr_json_free(o);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_quote_all_ascii),
		cmocka_unit_test(test_build_and_get),
		cmocka_unit_test(test_doubles),
		cmocka_unit_test(test_locale),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_error_str),
		cmocka_unit_test(test_enomem),
		cmocka_unit_test(test_long_strings),
		cmocka_unit_test(test_arena),
		cmocka_unit_test(test_arena_enomem),
		cmocka_unit_test(test_sticky_builders),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
