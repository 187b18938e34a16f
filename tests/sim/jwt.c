/* jwt.c — HS256 JWT mint and verify for taskrouter-sim. */
#include "jwt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jw.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64url_encode(struct sbuf *b, const unsigned char *in, size_t n) {
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		char o[4] = {b64url[v >> 18 & 63], b64url[v >> 12 & 63], b64url[v >> 6 & 63],
			b64url[v & 63]};
		sb_putn(b, o, 4);
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		char o[2] = {b64url[v >> 18 & 63], b64url[v >> 12 & 63]};
		sb_putn(b, o, 2);
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		char o[3] = {b64url[v >> 18 & 63], b64url[v >> 12 & 63], b64url[v >> 6 & 63]};
		sb_putn(b, o, 3);
	}
}

static int b64url_val(char c) {
	const char *p = c ? strchr(b64url, c) : NULL;

	return p ? (int)(p - b64url) : -1;
}

/* Decode n chars into a malloc'd NUL-terminated buffer; NULL on bad input. */
static unsigned char *b64url_decode(const char *in, size_t n, size_t *ret_len) {
	unsigned char *out = malloc(n * 3 / 4 + 4);
	uint32_t acc = 0;
	size_t i, o = 0;
	int bits = 0;

	if (!out || n % 4 == 1) {
		free(out);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		int v = b64url_val(in[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	out[o] = '\0';
	*ret_len = o;
	return out;
}

static bool hs256(const char *secret, const char *data, size_t n, unsigned char mac[32]) {
	unsigned int len = 0;

	return HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)data, n, mac,
		       &len) != NULL &&
		len == 32;
}

char *sim_jwt_mint(const char *secret, const char *key_sid, const char *account_sid,
	const char *workspace_sid, const char *worker_sid, const char *identity, int64_t iat,
	int64_t ttl) {
	static const char header[] = "{\"typ\":\"JWT\",\"alg\":\"HS256\",\"cty\":\"twilio-fpa;v=1\"}";
	struct sbuf payload, tok;
	unsigned char mac[32];
	struct jw w;
	char jti[96];

	sb_init(&payload);
	sb_init(&tok);
	snprintf(jti, sizeof(jti), "%s-%lld", key_sid, (long long)iat);
	jw_init(&w, &payload);
	jw_obj(&w);
	jw_kstr(&w, "jti", jti);
	jw_kstr(&w, "iss", key_sid);
	jw_kstr(&w, "sub", account_sid);
	jw_kint(&w, "iat", iat);
	jw_kint(&w, "exp", iat + ttl);
	jw_key(&w, "grants");
	jw_obj(&w);
	jw_kstr(&w, "identity", identity);
	jw_key(&w, "task_router");
	jw_obj(&w);
	jw_kstr(&w, "workspace_sid", workspace_sid);
	jw_kstr(&w, "worker_sid", worker_sid);
	jw_kstr(&w, "role", "worker");
	jw_obj_end(&w);
	jw_obj_end(&w);
	jw_obj_end(&w);
	if (payload.oom) {
		sb_done(&payload);
		return NULL;
	}
	b64url_encode(&tok, (const unsigned char *)header, strlen(header));
	sb_putn(&tok, ".", 1);
	b64url_encode(&tok, (const unsigned char *)payload.p, payload.len);
	sb_done(&payload);
	if (tok.oom || !hs256(secret, tok.p, tok.len, mac)) {
		sb_done(&tok);
		return NULL;
	}
	sb_putn(&tok, ".", 1);
	b64url_encode(&tok, mac, sizeof(mac));
	return sb_steal(&tok);
}

static void copy_str(char *dst, size_t n, const char *s) {
	snprintf(dst, n, "%s", s ? s : "");
}

enum sim_jwt_result sim_jwt_check(const char *token, const char *secret, bool verify, int64_t now,
	struct sim_grant *g) {
	const char *d1, *d2;
	unsigned char *hdr = NULL, *pl = NULL, *sig = NULL;
	size_t hlen, plen, slen;
	yajl_val h = NULL, p = NULL, tr;
	enum sim_jwt_result r = SIM_JWT_MALFORMED;
	int64_t v;

	memset(g, 0, sizeof(*g));
	d1 = token ? strchr(token, '.') : NULL;
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d2 || strchr(d2 + 1, '.')) {
		return SIM_JWT_MALFORMED;
	}
	hdr = b64url_decode(token, (size_t)(d1 - token), &hlen);
	pl = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &plen);
	sig = b64url_decode(d2 + 1, strlen(d2 + 1), &slen);
	if (!hdr || !pl || !sig || strlen((char *)hdr) != hlen || strlen((char *)pl) != plen) {
		goto out;
	}
	h = jp_parse((char *)hdr, NULL, 0);
	p = jp_parse((char *)pl, NULL, 0);
	if (!h || !p || !YAJL_IS_OBJECT(p) || !jp_str(h, "alg") ||
		strcmp(jp_str(h, "alg"), "HS256") != 0) {
		goto out;
	}
	copy_str(g->account_sid, sizeof(g->account_sid), jp_str(p, "sub"));
	if (jp_int(p, "iat", false, &v) == 0) {
		g->iat = v;
	}
	if (jp_int(p, "exp", false, &v) < 0) {
		goto out;
	}
	g->exp = v;
	tr = jp_get(jp_get(p, "grants"), "task_router");
	copy_str(g->workspace_sid, sizeof(g->workspace_sid), jp_str(tr, "workspace_sid"));
	copy_str(g->worker_sid, sizeof(g->worker_sid), jp_str(tr, "worker_sid"));
	copy_str(g->role, sizeof(g->role), jp_str(tr, "role"));
	if (verify) {
		unsigned char mac[32];
		if (slen != sizeof(mac) || !hs256(secret, token, (size_t)(d2 - token), mac) ||
			CRYPTO_memcmp(mac, sig, sizeof(mac)) != 0) {
			r = SIM_JWT_BAD_SIGNATURE;
			goto out;
		}
	}
	if (!g->worker_sid[0] || !g->workspace_sid[0]) {
		r = SIM_JWT_NO_WORKER;
		goto out;
	}
	r = g->exp <= now ? SIM_JWT_EXPIRED : SIM_JWT_OK;
out:
	yajl_tree_free(h);
	yajl_tree_free(p);
	free(hdr);
	free(pl);
	free(sig);
	return r;
}

const char *sim_jwt_result_str(enum sim_jwt_result r) {
	switch (r) {
	case SIM_JWT_OK:
		return "ok";
	case SIM_JWT_MALFORMED:
		return "malformed token";
	case SIM_JWT_BAD_SIGNATURE:
		return "token signature verification failed";
	case SIM_JWT_NO_WORKER:
		return "token grant names no TaskRouter worker";
	case SIM_JWT_EXPIRED:
		return "token expired";
	}
	return "?";
}
