/*
 * tls.h — the websocket's client TLS context and certificate failures in words.
 *
 * The daemon owns the OpenSSL client context (libwebsockets borrows it), so that:
 *   - the trusted CAs are the system store plus --ca-file, and SIGHUP can swap them
 *     (tr_tls_ctx_reload) without a new context or vhost: the next handshake uses them;
 *   - a refused certificate is described for a person ("the certificate of H expired on
 *     D"), where libwebsockets 4.1.6 only reports "connect SSL err 1: error:00000001".
 * A failure is captured during verification (tr_tls_capture, from the verify callback)
 * and turned into text when the connection fails (tr_tls_describe).
 *
 * Owner: the bridge (bridge-session.c). Depends on OpenSSL only; no loop, no logging.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct ssl_ctx_st;
struct x509_store_ctx_st;

/* What went wrong with the server's certificate chain, as seen by the verifier. */
struct tr_tls_failure {
	int err;   /* X509_V_ERR_*; 0: nothing captured */
	int depth; /* 0: the server's own certificate */
	char subject[160], issuer[160];
	char names[200]; /* the server certificate's subjectAltName entries: "DNS:a, IP:1.2.3.4" */
	char not_before[32], not_after[32]; /* "2020-01-02 00:00 UTC" */
};

/* A client context trusting the system store plus ca_file (NULL: only the system store).
 * 0 or -errno, with *ret_err a malloc'd message naming the file (caller frees). */
int tr_tls_ctx_new(const char *ca_file, struct ssl_ctx_st **ret, char **ret_err);
/* Trust the system store plus ca_file from the next handshake on (the file is read again,
 * even when the path is the same). On error the old store stays. 0 or -errno + *ret_err. */
int tr_tls_ctx_reload(struct ssl_ctx_st *ctx, const char *ca_file, char **ret_err);
/* Accepts NULL; returns NULL. */
struct ssl_ctx_st *tr_tls_ctx_free(struct ssl_ctx_st *ctx);

/* Record the verifier's current error, depth and certificates into f (called with
 * preverify_ok == 0). Also fills names for the server's certificate. */
void tr_tls_capture(struct tr_tls_failure *f, struct x509_store_ctx_st *x);
/* Check, at depth 0, that the certificate names the IP address ip (for IPv6 literal hosts,
 * which libwebsockets 4.1.6 cannot check itself). Returns true when it does; otherwise sets
 * the verifier's error to X509_V_ERR_IP_ADDRESS_MISMATCH. */
bool tr_tls_check_ip(struct x509_store_ctx_st *x, const char *ip);

/* Before a handshake: forget the reason of the last failure. */
void tr_tls_forget(struct ssl_ctx_st *ctx);
/* OpenSSL's reason for the failure of the last handshake on ctx ("wrong version number",
 * "the server sent the alert …"), or NULL. */
const char *tr_tls_reason(struct ssl_ctx_st *ctx);

/* The failure in words into buf, for lastError and the log:
 *   "TLS: the certificate of HOST is not trusted: issued by "CN=…", which is in neither
 *    the system store nor the CA file (unable to get local issuer certificate)".
 * host: "name:port" as dialled; with_ca_file: whether a --ca-file is configured. */
void tr_tls_describe(const struct tr_tls_failure *f, const char *host, bool with_ca_file,
	char *buf, size_t size);
/* A connection that failed without a captured verify error, from libwebsockets' text
 * ("connect SSL err 1: …", "Timed out waiting SSL", "closed before established", …), in
 * words naming host into buf. lib_reason: OpenSSL's reason for the last failure, or NULL.
 * timeout_s: the connect deadline; timed_out: whether it was reached. */
void tr_tls_describe_lws_error(const char *lws_text, const char *lib_reason, const char *host,
	int timeout_s, bool timed_out, char *buf, size_t size);
