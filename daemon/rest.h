/*
 * rest.h — REST over the Event Bridge proxy (spec §3): libcurl multi_socket on
 * the uv loop. Every call is an HTTP POST of {"url","method","params","token"}
 * with apiVersion/clientVersion/If-Match headers; replies are classified into
 * struct tr_upstream_reply. The upstream request and reply types live here so
 * that the bridge and the methods share them without REST knowing the bridge.
 *
 * Depends on libuv, libcurl, proto/json and backoff (retry jitter). Knows nothing
 * about the websocket. Never logs bodies or the token: only method, path and
 * status (debug).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct tr_json;

#define TR_REST_MAX_RESPONSE (64u * 1024u * 1024u) /* a larger body fails with -EBADMSG */
#define TR_REST_MAX_ATTEMPTS 4                    /* GETs with retry_transient */
#define TR_REST_RETRY_BASE_MS 250
#define TR_REST_RETRY_CAP_MS 2000

/* What a request's callback gets (tr_rest_send, tr_bridge_request). Everything is borrowed until
 * the callback returns. */
struct tr_upstream_reply {
	/*
	 * 0: an HTTP response arrived (http_status says which);
	 * -ETIMEDOUT: no answer within the deadline (outcome unknown);
	 * -ECONNREFUSED, -EHOSTUNREACH, -EIO: network failure (maybe_sent tells whether the
	 *   request may have reached the server);
	 * -EBADMSG: 2xx but the body is not {"payload": ...};
	 * -ECANCELED: the daemon is shutting down.
	 */
	int err;
	long http_status;
	const struct tr_json *payload; /* 2xx: the body's "payload" member */
	int64_t twilio_code;           /* error body "code", 0 when absent */
	/* The error body's "message" or the failure's text; non-NULL when not 2xx. */
	const char *message;
	bool maybe_sent;
};

typedef void (*tr_upstream_cb)(void *userdata, const struct tr_upstream_reply *reply);

struct tr_upstream_request {
	const char *path;        /* relative TaskRouter path: "Workspaces/WS…/Tasks/WT…" */
	const char *method;      /* proxied method: "GET" or "POST" */
	const char *api_version; /* "v1" or "v2" */
	const struct tr_json *params; /* object (copied); NULL sends {} */
	int64_t if_match;        /* >= 0: send If-Match: <n>; -1: no header */
	int timeout_ms;          /* 0: the configured default (15 s) */
	bool retry_transient;    /* GET only: retry network errors, 429 and 5xx with backoff */
};

struct tr_rest;

struct tr_rest_opts {
	const char *url;            /* the proxy URL (https://…/v1/wschannels) */
	const char *ca_file;        /* NULL: the system store */
	const char *client_version; /* clientVersion header */
	int default_timeout_ms;     /* for requests with timeout_ms 0 */
};

/* Returns 0 or negative errno. */
int tr_rest_new(uv_loop_t *loop, const struct tr_rest_opts *o, struct tr_rest **ret);

/* The proxy for requests started from now on: hostport "host:port" or "[v6]:port" (NULL:
 * direct, and libcurl never looks at the environment), with Basic credentials (user NULL:
 * none). Copied; the credentials are wiped when replaced. 0 or -ENOMEM (nothing changed). */
int tr_rest_set_proxy(struct tr_rest *r, const char *hostport, const char *user,
	const char *password);
/* The host (no brackets; caller frees), port and scheme of the REST URL. 0 or -errno. */
int tr_rest_endpoint(const struct tr_rest *r, char **ret_host, int *ret_port, bool *ret_tls);

/* The CA file for requests started from now on (NULL: the system store only). Copied.
 * 0 or -ENOMEM (the old one stays). */
int tr_rest_set_ca_file(struct tr_rest *r, const char *ca_file);

/* The token put in every later body (also in retries of requests already running). Copied. */
int tr_rest_set_token(struct tr_rest *r, const char *token);

/*
 * Start a request. Returns 0 and later calls cb exactly once (from a loop callback, never
 * from inside this call), or returns -ESHUTDOWN / -EINVAL / -ENOMEM / -ENOKEY (no token)
 * and never calls cb. req and its members are copied.
 */
int tr_rest_send(struct tr_rest *r, const struct tr_upstream_request *req, tr_upstream_cb cb,
	void *userdata);

/* Cancel everything (callbacks fire with -ECANCELED), clean up curl, close the handles; done
 * fires when the last handle is closed. Then tr_rest_free. */
void tr_rest_close(struct tr_rest *r, void (*done)(void *userdata), void *userdata);
struct tr_rest *tr_rest_free(struct tr_rest *r);

struct tr_rest_stats {
	unsigned in_flight;   /* requests started and not yet answered (incl. waiting to retry) */
	uint64_t requests;    /* requests accepted */
	uint64_t attempts;    /* HTTP attempts (requests + retries) */
	uint64_t retries;
	uint64_t failures;    /* replies with err != 0 or a non-2xx status */
};
void tr_rest_get_stats(const struct tr_rest *r, struct tr_rest_stats *ret);

/* ---- pure helpers (unit-tested without a loop) ---- */

/* The proxy body {"url","method","params","token"}; params NULL sends {}. *ret is malloc'd
 * (it holds the token: wipe it). Returns 0, -EINVAL (params not an object, missing
 * path/method) or -ENOMEM. */
int tr_rest_build_body(const struct tr_upstream_request *req, const char *token, char **ret,
	size_t *ret_len);

/* The outcome of one HTTP attempt, classified. reply points into doc/message. */
struct tr_rest_outcome {
	struct tr_upstream_reply reply;
	struct tr_json *doc;
	char message[512];
};
/*
 * Classify one attempt: curl_code is a CURLcode (0 = a response arrived), status the HTTP
 * status, body/len the response body, curl_text the curl error text (may be NULL).
 */
void tr_rest_classify(int curl_code, long status, const char *body, size_t len,
	const char *curl_text, struct tr_rest_outcome *ret);
void tr_rest_outcome_done(struct tr_rest_outcome *o);

/* Network error, 429 or 5xx: worth retrying for an idempotent GET. */
bool tr_rest_reply_is_transient(const struct tr_upstream_reply *r);

/* Delay before retry number attempt (1-based) of a GET: exponential, half-jittered. */
uint64_t tr_rest_retry_delay_ms(unsigned attempt, uint32_t rnd);
