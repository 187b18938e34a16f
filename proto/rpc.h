/*
 * rpc.h — the JSON-RPC 2.0 message model of the local socket protocol.
 *
 * A message is a request (method + id), a notification (method, no id), a
 * result or an error (id + result/error). Ids are integers or strings. Batches
 * (a top-level array) are refused with TR_RPC_INVALID_REQUEST and
 * data {"reason":"batch"}. The error codes are described in doc/PROTOCOL.md.
 *
 * Pure: no I/O, no globals, no logging. Depends on json.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* Standard JSON-RPC 2.0 codes. */
#define TR_RPC_PARSE_ERROR -32700
#define TR_RPC_INVALID_REQUEST -32600
#define TR_RPC_METHOD_NOT_FOUND -32601
#define TR_RPC_INVALID_PARAMS -32602
#define TR_RPC_INTERNAL_ERROR -32603

/* Application range (see doc/PROTOCOL.md for each one's data members). */
#define TR_RPC_NOT_FOUND -32001         /* unknown task sid (or other object) */
#define TR_RPC_NOT_CONNECTED -32002     /* upstream session not ready; fails fast */
#define TR_RPC_UPSTREAM_ERROR -32003    /* data: httpStatus, twilioCode, message */
#define TR_RPC_VERSION_CONFLICT -32004  /* 412; data: currentVersion, httpStatus, twilioCode, message */
#define TR_RPC_TIMEOUT -32005           /* upstream did not answer in time; outcome unknown */
#define TR_RPC_RATE_LIMITED -32006      /* upstream 429 */
#define TR_RPC_TOO_MANY_REQUESTS -32007 /* local per-connection in-flight limit */
#define TR_RPC_OVERLOADED -32008        /* daemon-wide limit (connections, queue) */
#define TR_RPC_TOKEN_EXPIRED -32009     /* the worker token expired; needs daemon.updateToken */
#define TR_RPC_REFRESH_PENDING -32010   /* applied upstream, local refresh pending */
#define TR_RPC_REPLAY_GONE -32011       /* events.subscribe since: too old; re-list */
#define TR_RPC_INVALID_STATE -32012     /* refused locally: e.g. no outgoing transfer */
#define TR_RPC_NETWORK_ERROR -32013     /* upstream unreachable (request may not have been sent) */
#define TR_RPC_NOT_PERMITTED -32014     /* the caller may not do this (not the daemon's owner) */

enum tr_rpc_kind {
	TR_RPC_REQUEST,
	TR_RPC_NOTIFICATION,
	TR_RPC_RESULT,
	TR_RPC_ERROR,
	_TR_RPC_KIND_MAX,
};

enum tr_rpc_id_type {
	TR_RPC_ID_NONE, /* absent (notification) or unrecoverable */
	TR_RPC_ID_NULL, /* only in error replies to requests whose id could not be read */
	TR_RPC_ID_INT,
	TR_RPC_ID_STRING,
	_TR_RPC_ID_TYPE_MAX,
};

struct tr_rpc_id {
	enum tr_rpc_id_type type;
	int64_t i;
	char *s; /* owned, for TR_RPC_ID_STRING */
};

struct tr_rpc_msg {
	enum tr_rpc_kind kind;
	struct tr_rpc_id id;
	char *method;           /* request, notification: owned */
	struct tr_json *params; /* request, notification: object or NULL when absent; owned */
	struct tr_json *result; /* result: owned */
	int64_t error_code;     /* error */
	char *error_message;    /* error: owned */
	struct tr_json *error_data; /* error: owned, may be NULL */
};

/* Why a message was refused: the JSON-RPC error to send back, with the request's id when
 * it could be recovered (so the reply can name it). */
struct tr_rpc_error {
	int code;          /* TR_RPC_PARSE_ERROR or TR_RPC_INVALID_REQUEST */
	char message[128]; /* human readable, no trailing newline */
	const char *reason; /* static machine-readable reason ("batch", "depth", "utf8", ...) or NULL */
	struct tr_rpc_id id; /* owned; TR_RPC_ID_NULL when unknown */
};

/*
 * Parse one JSON-RPC message from buf[0..len). Returns 0 and a new message (*ret, caller
 * frees with tr_rpc_msg_free), or -EBADMSG with *ret_error filled in (free its id with
 * tr_rpc_error_done), or -ENOMEM. ret_error may be NULL. It is written in every case: on
 * success it is reset (code 0, id TR_RPC_ID_NONE), on -ENOMEM it holds
 * TR_RPC_INTERNAL_ERROR with a null id, so calling tr_rpc_error_done is always safe.
 * *ret is written only on success.
 *
 * Reasons (ret_error->reason, the "data":{"reason":...} of the reply, doc/PROTOCOL.md §3):
 * parse errors "syntax", "depth", "keys", "utf8", "nul", "duplicate-key"; invalid requests
 * "batch", "not-object", "jsonrpc", "mixed", "id", "method", "params", "result-error",
 * "error". Members not named in the rules are ignored.
 *
 * Rules: "jsonrpc" must be exactly "2.0"; "id" an integer or string (null, floats, objects
 * refused); "method" a non-empty string; "params" an object or array when present;
 * responses carry exactly one of "result"/"error"; "error" has an integer "code" and a
 * string "message".
 */
int tr_rpc_parse(const char *buf, size_t len, struct tr_rpc_msg **ret, struct tr_rpc_error *ret_error);

struct tr_rpc_msg *tr_rpc_msg_free(struct tr_rpc_msg *m);
void tr_rpc_error_done(struct tr_rpc_error *e);

void tr_rpc_id_done(struct tr_rpc_id *id);
int tr_rpc_id_copy(struct tr_rpc_id *dst, const struct tr_rpc_id *src);

/*
 * Builders. Each returns 0 and a malloc'd JSON text in *ret (and its length in *ret_len),
 * or -ENOMEM / -EINVAL. They do not frame; use tr_frame_encode or reserve 4 bytes yourself
 * with the *_framed variants below.
 */
int tr_rpc_build_request(const struct tr_rpc_id *id, const char *method,
	const struct tr_json *params, char **ret, size_t *ret_len);
int tr_rpc_build_notification(const char *method, const struct tr_json *params, char **ret,
	size_t *ret_len);
int tr_rpc_build_result(const struct tr_rpc_id *id, const struct tr_json *result, char **ret,
	size_t *ret_len);
int tr_rpc_build_error(const struct tr_rpc_id *id, int code, const char *message,
	const struct tr_json *data, char **ret, size_t *ret_len);

/*
 * Same as the builders, but the returned buffer starts with the 4-byte frame header
 * already filled in: *ret_len counts header + payload. Saves a copy on hot paths.
 * -EMSGSIZE when the payload would exceed max_payload (0 = default limit).
 */
int tr_rpc_build_result_framed(const struct tr_rpc_id *id, const struct tr_json *result,
	uint32_t max_payload, char **ret, size_t *ret_len);
int tr_rpc_build_error_framed(const struct tr_rpc_id *id, int code, const char *message,
	const struct tr_json *data, uint32_t max_payload, char **ret, size_t *ret_len);
int tr_rpc_build_notification_framed(const char *method, const struct tr_json *params,
	uint32_t max_payload, char **ret, size_t *ret_len);
int tr_rpc_build_request_framed(const struct tr_rpc_id *id, const char *method,
	const struct tr_json *params, uint32_t max_payload, char **ret, size_t *ret_len);

/*
 * The reply to a message tr_rpc_parse refused: an error response with e->id (null when it
 * could not be recovered), e->code, e->message and data {"reason": e->reason}, framed.
 * Returns 0, -ENOMEM or -EMSGSIZE (max_payload 0 = default limit).
 */
int tr_rpc_build_refusal_framed(const struct tr_rpc_error *e, uint32_t max_payload, char **ret,
	size_t *ret_len);

/*
 * The best-effort message before closing a connection after a framing error (doc/PROTOCOL.md
 * §2): id null, TR_RPC_INVALID_REQUEST, data {"reason":"frame-size","limit":limit,
 * "value":value}, framed. value is the declared length (tr_frame_decoder_declared_length).
 */
int tr_rpc_build_frame_error_framed(uint32_t limit, uint32_t value, char **ret, size_t *ret_len);

/* Name of a code ("parse error", "version conflict", ...) for messages and the CLI. */
const char *tr_rpc_code_str(int code);
