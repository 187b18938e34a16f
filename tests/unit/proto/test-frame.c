/*
 * test-frame.c — the length-prefix decoder and encoder (proto/frame.c).
 *
 * The same byte stream is fed with several split patterns; every pattern must yield the
 * same frames. Limits are hit exactly and one over. Bad headers must fail before anything
 * is allocated (counted through proto-alloc.h).
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

/* A growable byte stream of frames. */
struct stream {
	uint8_t *b;
	size_t len;
};

static void stream_add_raw(struct stream *s, const void *p, size_t n) {
	s->b = realloc(s->b, s->len + n);
	assert_non_null(s->b);
	memcpy(s->b + s->len, p, n);
	s->len += n;
}

static void stream_add_frame(struct stream *s, const char *payload, size_t n) {
	char *f;
	size_t flen;

	assert_int_equal(tr_frame_encode(payload, n, 0, &f, &flen), 0);
	assert_int_equal(flen, n + 4);
	stream_add_raw(s, f, flen);
	free(f);
}

/* Collected decoder output. */
struct frames {
	char *p[64];
	size_t len[64];
	size_t n;
	int error;
};

static void frames_free(struct frames *f) {
	for (size_t i = 0; i < f->n; i++) {
		free(f->p[i]);
	}
	memset(f, 0, sizeof(*f));
}

/* Feed one chunk completely, collecting frames; stops at an error. */
static void feed(struct tr_frame_decoder *d, const uint8_t *p, size_t n, struct frames *out) {
	while (!out->error) {
		char *payload;
		size_t plen = 0;
		ssize_t used = tr_frame_decode(d, p, n, &payload, &plen);

		if (used < 0) {
			assert_null(payload);
			out->error = (int)used;
			return;
		}
		assert_true((size_t)used <= n);
		if (payload) {
			assert_true(out->n < 64);
			assert_int_equal(payload[plen], '\0');
			out->p[out->n] = payload;
			out->len[out->n++] = plen;
		} else {
			/* No frame: everything must have been consumed. */
			assert_int_equal((size_t)used, n);
		}
		p += used;
		n -= (size_t)used;
		if (n == 0) {
			return;
		}
	}
}

/* Decode a stream cut at the given chunk sizes (cycled); sizes NULL = one chunk. */
static void decode_split(const struct stream *s, uint32_t max, const size_t *sizes, size_t nsizes,
	struct frames *out) {
	struct tr_frame_decoder d;
	size_t off = 0, k = 0;

	tr_frame_decoder_init(&d, max);
	memset(out, 0, sizeof(*out));
	while (off < s->len && !out->error) {
		size_t n = sizes ? sizes[k++ % nsizes] : s->len;

		if (n > s->len - off) {
			n = s->len - off;
		}
		feed(&d, s->b + off, n, out);
		off += n;
	}
	tr_frame_decoder_done(&d);
}

static void assert_frames_equal(const struct frames *a, const struct frames *b) {
	assert_int_equal(a->n, b->n);
	assert_int_equal(a->error, b->error);
	for (size_t i = 0; i < a->n; i++) {
		assert_int_equal(a->len[i], b->len[i]);
		assert_memory_equal(a->p[i], b->p[i], a->len[i]);
	}
}

/* A stream with frames of varied sizes, some with binary-looking payloads. */
static void make_stream(struct stream *s) {
	char big[5000];

	memset(s, 0, sizeof(*s));
	stream_add_frame(s, "{}", 2);
	stream_add_frame(s, "{\"jsonrpc\":\"2.0\",\"method\":\"a\"}", 30);
	for (size_t i = 0; i < sizeof(big); i++) {
		big[i] = (char)('a' + i % 26);
	}
	stream_add_frame(s, big, sizeof(big));
	stream_add_frame(s, "[1,2,3]", 7);
	/* A payload whose bytes look like a header: 00 00 00 02. */
	stream_add_frame(s, "\0\0\0\2", 4);
	stream_add_frame(s, "{}", 2);
}

static void test_splits(void **state) {
	struct stream s;
	struct frames whole, other;
	static const size_t one[] = { 1 };
	static const size_t twos[] = { 2 };
	static const size_t threes[] = { 3 };
	static const size_t odd[] = { 5, 1, 7, 4, 4, 1, 1, 2, 100, 3 };

	make_stream(&s);
	decode_split(&s, 0, NULL, 0, &whole);
	assert_int_equal(whole.error, 0);
	assert_int_equal(whole.n, 6);
	assert_int_equal(whole.len[2], 5000);
	assert_memory_equal(whole.p[4], "\0\0\0\2", 4);

	decode_split(&s, 0, one, 1, &other);
	assert_frames_equal(&whole, &other);
	frames_free(&other);
	decode_split(&s, 0, twos, 1, &other);
	assert_frames_equal(&whole, &other);
	frames_free(&other);
	decode_split(&s, 0, threes, 1, &other);
	assert_frames_equal(&whole, &other);
	frames_free(&other);
	decode_split(&s, 0, odd, sizeof(odd) / sizeof(odd[0]), &other);
	assert_frames_equal(&whole, &other);
	frames_free(&other);

	/* Random chunk sizes with fixed seeds: reproducible. */
	for (unsigned seed = 1; seed <= 50; seed++) {
		size_t sizes[200];

		srand(seed);
		for (size_t i = 0; i < 200; i++) {
			sizes[i] = 1 + (size_t)rand() % (seed < 25 ? 16 : 2000);
		}
		decode_split(&s, 0, sizes, 200, &other);
		assert_frames_equal(&whole, &other);
		frames_free(&other);
	}

	/* Every cut point for a single split into two chunks, including inside each header. */
	for (size_t cut = 1; cut < s.len; cut++) {
		size_t sizes[2] = { cut, s.len };

		decode_split(&s, 0, sizes, 2, &other);
		assert_frames_equal(&whole, &other);
		frames_free(&other);
	}
	frames_free(&whole);
	free(s.b);
}

/* Many frames in one buffer: each decode call returns exactly one and stops after it. */
static void test_many_in_one(void **state) {
	struct stream s = { 0 };
	struct tr_frame_decoder d;
	size_t off = 0, count = 0;

	for (int i = 0; i < 1000; i++) {
		char p[32];
		int n = snprintf(p, sizeof(p), "{\"i\":%d}", i);

		stream_add_frame(&s, p, (size_t)n);
	}
	tr_frame_decoder_init(&d, 0);
	while (off < s.len) {
		char *payload, want[32];
		size_t plen;
		ssize_t used = tr_frame_decode(&d, s.b + off, s.len - off, &payload, &plen);

		assert_true(used > 0);
		assert_non_null(payload);
		snprintf(want, sizeof(want), "{\"i\":%zu}", count);
		assert_string_equal(payload, want);
		assert_int_equal((size_t)used, strlen(want) + 4);
		free(payload);
		off += (size_t)used;
		count++;
		assert_false(tr_frame_decoder_pending(&d));
	}
	assert_int_equal(count, 1000);
	tr_frame_decoder_done(&d);
	free(s.b);
}

static ssize_t decode_header(uint32_t max, uint32_t len, struct tr_frame_decoder *d) {
	uint8_t h[4];
	char *payload = (char *)1;

	tr_frame_put_header(h, len);
	tr_frame_decoder_init(d, max);
	ssize_t r = tr_frame_decode(d, h, 4, &payload, NULL);
	assert_null(payload);
	return r;
}

/* Bad lengths fail from the header alone, allocate nothing, and the error is sticky. */
static void test_bad_lengths(void **state) {
	static const struct {
		uint32_t max, len;
		int want;
	} cases[] = {
		{ 0, 0, -EBADMSG },
		{ 0, 1, -EBADMSG },
		{ 0, 2, 4 },
		{ 0, TR_FRAME_MAX_PAYLOAD_DEFAULT, 4 },
		{ 0, TR_FRAME_MAX_PAYLOAD_DEFAULT + 1, -EMSGSIZE },
		{ 0, UINT32_MAX, -EMSGSIZE }, /* a 4 GiB declared length */
		{ 0, 0x80000000u, -EMSGSIZE },
		{ 100, 100, 4 },
		{ 100, 101, -EMSGSIZE },
		{ 2, 2, 4 },
		{ 2, 3, -EMSGSIZE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tr_frame_decoder d;
		char *payload;
		ssize_t r;

		alloc_reset(-1);
		r = decode_header(cases[i].max, cases[i].len, &d);
		assert_int_equal(r, cases[i].want);
		if (r < 0) {
			assert_int_equal(alloc_count, 0);
			assert_null(d.buf);
			/* Sticky, whatever comes next. */
			assert_int_equal(tr_frame_decode(&d, "{}", 2, &payload, NULL), r);
			assert_null(payload);
			assert_int_equal(tr_frame_decode(&d, "", 0, &payload, NULL), r);
		} else {
			/* a good header allocates nothing either: the buffer comes with the data */
			assert_int_equal(alloc_count, 0);
			assert_null(d.buf);
			assert_true(tr_frame_decoder_pending(&d));
		}
		tr_frame_decoder_done(&d);
	}
}

/* The 4 GiB case on its own, fed byte by byte: no allocation at any point. */
static void test_4gib_allocates_nothing(void **state) {
	static const uint8_t h[4] = { 0xff, 0xff, 0xff, 0xff };
	struct tr_frame_decoder d;
	char *payload;

	tr_frame_decoder_init(&d, 0);
	alloc_reset(-1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tr_frame_decode(&d, h + i, 1, &payload, NULL), 1);
		assert_null(payload);
		assert_true(tr_frame_decoder_pending(&d));
	}
	assert_int_equal(tr_frame_decode(&d, h + 3, 1, &payload, NULL), -EMSGSIZE);
	assert_int_equal(alloc_count, 0);
	assert_null(d.buf);
	tr_frame_decoder_done(&d);

	/* Even with the largest possible limit configured, 4 GiB - 1 is refused at 4 GiB - 2. */
	alloc_reset(-1);
	assert_int_equal(decode_header(UINT32_MAX - 1, UINT32_MAX, &d), -EMSGSIZE);
	assert_int_equal(alloc_count, 0);
	tr_frame_decoder_done(&d);
}

/* A frame exactly at the limit passes; one byte over fails (encoder and decoder agree). */
static void test_limit_exact(void **state) {
	const uint32_t max = 4096;
	char *p = malloc(max + 1), *f, *payload;
	size_t flen, plen;
	struct tr_frame_decoder d;

	assert_non_null(p);
	memset(p, 'x', max + 1);
	assert_int_equal(tr_frame_encode(p, max, max, &f, &flen), 0);
	tr_frame_decoder_init(&d, max);
	assert_int_equal(tr_frame_decode(&d, f, flen, &payload, &plen), (ssize_t)flen);
	assert_non_null(payload);
	assert_int_equal(plen, max);
	free(payload);
	free(f);
	tr_frame_decoder_done(&d);

	assert_int_equal(tr_frame_encode(p, max + 1, max, &f, &flen), -EMSGSIZE);
	assert_int_equal(tr_frame_encode(p, 1, 0, &f, &flen), -EMSGSIZE);
	assert_int_equal(tr_frame_encode(p, 0, 0, &f, &flen), -EMSGSIZE);
	assert_int_equal(tr_frame_encode(p, TR_FRAME_MAX_PAYLOAD_DEFAULT + 1, 0, &f, &flen),
		-EMSGSIZE);
	free(p);
}

/* A frame that declares the maximum and then trickles in costs what has arrived, not what
 * was declared; the assembled payload is the same whatever the steps. */
static void test_grows_with_data(void **state) {
	const uint32_t len = TR_FRAME_MAX_PAYLOAD_DEFAULT;
	struct tr_frame_decoder d;
	uint8_t hdr[4];
	char *body = malloc(len), *payload = NULL;
	size_t off = 0, step = 1, plen = 0;

	(void)state;
	assert_non_null(body);
	for (size_t i = 0; i < len; i++) {
		body[i] = (char)('a' + i % 26);
	}
	tr_frame_decoder_init(&d, 0);
	tr_frame_put_header(hdr, len);
	assert_int_equal(tr_frame_decode(&d, hdr, 4, &payload, NULL), 4);
	assert_int_equal(tr_frame_decoder_held(&d), 0);
	assert_int_equal(tr_frame_decode(&d, body, 10, &payload, NULL), 10);
	off = 10;
	assert_true(tr_frame_decoder_held(&d) <= 4096);
	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		assert_int_equal(tr_frame_decode(&d, body + off, n, &payload, &plen), (ssize_t)n);
		off += n;
		/* never more than twice what arrived (plus the first page) */
		assert_true(tr_frame_decoder_held(&d) <= 2 * off + 4096 || payload);
		step = step * 3 + 1;
	}
	assert_non_null(payload);
	assert_int_equal(plen, len);
	assert_memory_equal(payload, body, len);
	assert_int_equal(payload[len], '\0');
	assert_int_equal(tr_frame_decoder_held(&d), 0);
	free(payload);
	free(body);
	tr_frame_decoder_done(&d);
}

/* Truncated input: a partial header or payload is pending, never a frame. */
static void test_truncated(void **state) {
	struct tr_frame_decoder d;
	char *payload;
	uint8_t buf[4 + 10];

	tr_frame_put_header(buf, 10);
	memset(buf + 4, 'y', 10);
	for (size_t n = 1; n < sizeof(buf); n++) {
		tr_frame_decoder_init(&d, 0);
		assert_int_equal(tr_frame_decode(&d, buf, n, &payload, NULL), (ssize_t)n);
		assert_null(payload);
		assert_true(tr_frame_decoder_pending(&d));
		tr_frame_decoder_done(&d);
		assert_false(tr_frame_decoder_pending(&d));
	}
	/* done() then init() again: the decoder is reusable. */
	tr_frame_decoder_init(&d, 0);
	assert_false(tr_frame_decoder_pending(&d));
	assert_int_equal(tr_frame_decode(&d, buf, 0, &payload, NULL), 0);
	assert_null(payload);
	assert_int_equal(tr_frame_decode(&d, NULL, 0, &payload, NULL), 0);
	tr_frame_decoder_done(&d);
	tr_frame_decoder_done(NULL);
}

static void test_header_and_encode(void **state) {
	uint8_t h[4];
	char *f;
	size_t flen;

	tr_frame_put_header(h, 0x01020304u);
	assert_memory_equal(h, "\x01\x02\x03\x04", 4);
	tr_frame_put_header(h, 2);
	assert_memory_equal(h, "\0\0\0\x02", 4);

	assert_int_equal(tr_frame_encode("{\"a\":1}", 7, 0, &f, &flen), 0);
	assert_int_equal(flen, 11);
	assert_memory_equal(f, "\0\0\0\x07{\"a\":1}", 11);
	free(f);
	assert_int_equal(tr_frame_encode("{}", 2, 0, &f, NULL), 0);
	free(f);
}

static void test_enomem(void **state) {
	struct tr_frame_decoder d;
	uint8_t buf[4 + 2];
	char *payload = NULL, *f = NULL;

	tr_frame_put_header(buf, 2);
	memcpy(buf + 4, "{}", 2);
	tr_frame_decoder_init(&d, 0);
	alloc_reset(0);
	assert_int_equal(tr_frame_decode(&d, buf, sizeof(buf), &payload, NULL), -ENOMEM);
	alloc_reset(-1);
	assert_null(payload);
	assert_int_equal(tr_frame_decode(&d, buf, sizeof(buf), &payload, NULL), -ENOMEM);
	tr_frame_decoder_done(&d);

	ALLOC_FAIL_LOOP(tr_frame_encode("{}", 2, 0, &f, NULL), (free(f), f = NULL));
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_splits),
		cmocka_unit_test(test_many_in_one),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_4gib_allocates_nothing),
		cmocka_unit_test(test_limit_exact),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_grows_with_data),
		cmocka_unit_test(test_header_and_encode),
		cmocka_unit_test(test_enomem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
