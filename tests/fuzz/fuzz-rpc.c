/*
 * fuzz-rpc.c — libFuzzer target for the frame decoder and the JSON-RPC parser.
 *
 * Input layout: the first byte picks how the rest is cut into chunks (so every input is
 * decoded with a split pattern of its own), the second byte picks the decoder's payload
 * limit (low 7 bits) and whether the rest is also parsed unframed (high bit); the remaining
 * bytes are the stream. The stream is decoded twice, once in one piece
 * and once in chunks, and both runs must yield identical frames and the same error. Every
 * frame goes through tr_rpc_parse; a message that parses is rebuilt with the builders
 * (plain and framed), and the rebuilt text must parse to the same message. A refused
 * message must produce a well-formed error reply. Each payload is also parsed directly
 * as JSON, dumped, parsed again and compared.
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzzing=true -Db_lundef=false
 * Run:   tests/fuzz/run-fuzz.sh fuzz-rpc SECONDS   (see doc/FUZZING.md)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "json.h"
#include "tr-limits.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAMES 256

struct frames {
	char *p[MAX_FRAMES];
	size_t len[MAX_FRAMES];
	size_t n;
	int error;
};

static void frames_free(struct frames *f) {
	for (size_t i = 0; i < f->n; i++) {
		free(f->p[i]);
	}
	f->n = 0;
}

static void check(int cond) {
	if (!cond) {
		abort();
	}
}

/* Decode data with chunk sizes from the pattern byte; collects up to MAX_FRAMES frames. */
static void decode(const uint8_t *data, size_t size, uint8_t pattern, uint32_t max,
	struct frames *out) {
	struct tr_frame_decoder d;
	size_t off = 0, k = 0;

	tr_frame_decoder_init(&d, max);
	out->n = 0;
	out->error = 0;
	while (off < size) {
		size_t n;
		char *payload;
		size_t plen = 0;
		ssize_t used;

		if (pattern == 0) {
			n = size - off; /* one piece */
		} else {
			/* deterministic pseudo-random chunk lengths in 1..pattern */
			k = k * 1103515245u + 12345u;
			n = 1 + (k >> 16) % pattern;
			if (n > size - off) {
				n = size - off;
			}
		}
		while (n > 0) {
			used = tr_frame_decode(&d, data + off, n, &payload, &plen);
			if (used < 0) {
				check(payload == NULL);
				out->error = (int)used;
				/* sticky */
				check(tr_frame_decode(&d, data, size, &payload, &plen) == used);
				goto done;
			}
			check((size_t)used <= n);
			off += (size_t)used;
			n -= (size_t)used;
			if (payload) {
				check(payload[plen] == '\0');
				if (out->n == MAX_FRAMES) {
					free(payload);
					goto done;
				}
				out->p[out->n] = payload;
				out->len[out->n++] = plen;
			} else {
				check(n == 0);
			}
		}
	}
done:
	tr_frame_decoder_done(&d);
}

static void same_message(const struct tr_rpc_msg *a, const struct tr_rpc_msg *b) {
	check(a->kind == b->kind);
	check(a->id.type == b->id.type);
	if (a->id.type == TR_RPC_ID_INT) {
		check(a->id.i == b->id.i);
	}
	if (a->id.type == TR_RPC_ID_STRING) {
		check(strcmp(a->id.s, b->id.s) == 0);
	}
	check((a->method == NULL) == (b->method == NULL));
	if (a->method) {
		check(strcmp(a->method, b->method) == 0);
	}
	check(tr_json_equal(a->params, b->params));
	if (a->kind == TR_RPC_RESULT) {
		/* a NULL result is written as null */
		check(tr_json_equal(a->result, b->result) ||
		      (!a->result && tr_json_is(b->result, TR_JSON_NULL)));
	}
	if (a->kind == TR_RPC_ERROR) {
		check(a->error_code == b->error_code);
		check(strcmp(a->error_message, b->error_message) == 0);
		check(tr_json_equal(a->error_data, b->error_data));
	}
}

static void rebuild_and_compare(const struct tr_rpc_msg *m) {
	char *out = NULL;
	size_t len = 0;
	int r = -EINVAL, rf = -EINVAL;
	char *fout = NULL;
	size_t flen = 0;
	struct tr_rpc_msg *m2 = NULL;

	/* Codes outside int cannot be rebuilt faithfully; skip those. */
	if (m->kind == TR_RPC_ERROR && (m->error_code < INT32_MIN || m->error_code > INT32_MAX)) {
		return;
	}
	switch (m->kind) {
	case TR_RPC_REQUEST:
		r = tr_rpc_build_request(&m->id, m->method, m->params, &out, &len);
		rf = tr_rpc_build_request_framed(&m->id, m->method, m->params, 0, &fout, &flen);
		break;
	case TR_RPC_NOTIFICATION:
		r = tr_rpc_build_notification(m->method, m->params, &out, &len);
		rf = tr_rpc_build_notification_framed(m->method, m->params, 0, &fout, &flen);
		break;
	case TR_RPC_RESULT:
		r = tr_rpc_build_result(&m->id, m->result, &out, &len);
		rf = tr_rpc_build_result_framed(&m->id, m->result, 0, &fout, &flen);
		break;
	case TR_RPC_ERROR:
		r = tr_rpc_build_error(&m->id, (int)m->error_code, m->error_message, m->error_data,
			&out, &len);
		rf = tr_rpc_build_error_framed(&m->id, (int)m->error_code, m->error_message,
			m->error_data, 0, &fout, &flen);
		break;
	default:
		abort();
	}
	check(r == 0);
	check(rf == 0 || rf == -EMSGSIZE);
	check(strlen(out) == len);
	check(tr_rpc_parse(out, len, &m2, NULL) == 0);
	same_message(m, m2);
	if (rf == 0) {
		check(flen == len + 4);
		check(memcmp(fout + 4, out, len) == 0);
		check(((uint32_t)(uint8_t)fout[0] << 24 | (uint32_t)(uint8_t)fout[1] << 16 |
			      (uint32_t)(uint8_t)fout[2] << 8 | (uint32_t)(uint8_t)fout[3]) == len);
	} else {
		check(len > TR_FRAME_MAX_PAYLOAD_DEFAULT);
	}
	tr_rpc_msg_free(m2);
	free(out);
	free(fout);
}

static void check_payload(const char *p, size_t len) {
	struct tr_rpc_msg *m = NULL;
	struct tr_rpc_error err;
	struct tr_json *v = NULL, *v2 = NULL;
	char *out = NULL;
	size_t olen;
	int r;

	r = tr_rpc_parse(p, len, &m, &err);
	if (r == 0) {
		rebuild_and_compare(m);
		tr_rpc_msg_free(m);
	} else {
		struct tr_rpc_msg *reply = NULL;

		check(r == -EBADMSG);
		check(err.code == TR_RPC_PARSE_ERROR || err.code == TR_RPC_INVALID_REQUEST);
		check(err.reason != NULL);
		check(err.id.type != TR_RPC_ID_NONE);
		check(tr_rpc_build_error(&err.id, err.code, err.message, NULL, &out, &olen) == 0);
		check(tr_rpc_parse(out, olen, &reply, NULL) == 0);
		check(reply->kind == TR_RPC_ERROR && reply->error_code == err.code);
		tr_rpc_msg_free(reply);
		free(out);
		out = NULL;
		/* The server's framed reply names the same id and carries the reason. */
		check(tr_rpc_build_refusal_framed(&err, 0, &out, &olen) == 0);
		check(olen > 4 && tr_rpc_parse(out + 4, olen - 4, &reply, NULL) == 0);
		check(reply->id.type == err.id.type);
		check(strcmp(tr_json_get_string(reply->error_data, "reason"), err.reason) == 0);
		tr_rpc_msg_free(reply);
		free(out);
		out = NULL;
		tr_rpc_error_done(&err);
	}

	/* The JSON layer on its own: dump(parse(x)) is a fixed point of parse; the arena's
	 * parse gives the same tree, or the same error. */
	{
		static struct tr_json_arena arena;
		const struct tr_json *in_arena = NULL;
		enum tr_json_error e1 = TR_JSON_OK, e2 = TR_JSON_OK;
		int r1 = tr_json_parse(p, len, &v, &e1);
		int r2 = tr_json_parse_in(&arena, p, len, &in_arena, &e2);

		check(r1 == r2 && e1 == e2);
		check(r1 != 0 || tr_json_equal(v, in_arena));
		tr_json_arena_reset(&arena);
	}
	if (v) {
		check(tr_json_dump(v, &out, &olen) == 0);
		check(tr_json_parse(out, olen, &v2, NULL) == 0);
		check(tr_json_equal(v, v2));
		free(out);
		out = NULL;
		tr_json_free(v2);
		v2 = tr_json_dup(v);
		check(v2 && tr_json_equal(v, v2));
		tr_json_free(v2);
		tr_json_free(v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static const uint32_t limits[] = { 0, 2, 3, 16, 64, 256, 4096 };
	struct frames whole = { .n = 0 }, split = { .n = 0 };
	uint8_t pattern;
	uint32_t max;
	bool raw;

	if (size < 2) {
		return 0;
	}
	pattern = data[0];
	max = limits[(data[1] & 0x7f) % (sizeof(limits) / sizeof(limits[0]))];
	raw = data[1] & 0x80;
	data += 2;
	size -= 2;

	/* Half of the inputs also go to the parser unframed, so that JSON is explored directly. */
	if (raw) {
		check_payload((const char *)data, size);
	}

	decode(data, size, 0, max, &whole);
	decode(data, size, pattern, max, &split);
	/* Same frames and same error whatever the split, unless we stopped at MAX_FRAMES. */
	if (whole.n < MAX_FRAMES && split.n < MAX_FRAMES) {
		check(whole.n == split.n);
		check(whole.error == split.error);
	}
	for (size_t i = 0; i < whole.n && i < split.n; i++) {
		check(whole.len[i] == split.len[i]);
		check(memcmp(whole.p[i], split.p[i], whole.len[i]) == 0);
	}
	for (size_t i = 0; i < whole.n; i++) {
		check_payload(whole.p[i], whole.len[i]);
	}
	frames_free(&whole);
	frames_free(&split);
	return 0;
}
