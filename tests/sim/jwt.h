/*
 * jwt.h — HS256 access tokens for taskrouter-sim: mint a Twilio-style worker token
 * (spec §1.4) and verify one. Depends on OpenSSL libcrypto and yajl.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct sim_grant {
	char account_sid[64];
	char workspace_sid[64];
	char worker_sid[64];
	char role[32];
	int64_t iat, exp;
};

/* A signed token for worker_sid (caller frees), NULL on ENOMEM. */
char *sim_jwt_mint(const char *secret, const char *key_sid, const char *account_sid,
	const char *workspace_sid, const char *worker_sid, const char *identity, int64_t iat,
	int64_t ttl);

enum sim_jwt_result {
	SIM_JWT_OK,
	SIM_JWT_MALFORMED, /* not three base64url parts, bad JSON, wrong alg */
	SIM_JWT_BAD_SIGNATURE,
	SIM_JWT_NO_WORKER, /* grant does not name a worker/workspace */
	SIM_JWT_EXPIRED,
};

/* Verify (signature unless !verify) and decode. The grant is filled for every result after
 * the payload parsed (so an expired token still tells whose it was). */
enum sim_jwt_result sim_jwt_check(const char *token, const char *secret, bool verify, int64_t now,
	struct sim_grant *ret_grant);

const char *sim_jwt_result_str(enum sim_jwt_result r);
