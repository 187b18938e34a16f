/*
 * tls.c — the websocket's client TLS context and certificate failures in words (tls.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls.h"

/* The reason of OpenSSL's oldest queued error, or a fallback; the queue is emptied. */
static const char *pop_reason(const char *fallback) {
	unsigned long e = ERR_get_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : fallback;
}

static int err_msg(char **ret_err, const char *ca_file, const char *why) {
	if (ret_err && asprintf(ret_err, "cannot use the CA file %s: %s", ca_file, why) < 0) {
		*ret_err = NULL;
	}
	return -EINVAL;
}

/* The system store plus ca_file, in a new X509_STORE. */
static int make_store(const char *ca_file, X509_STORE **ret, char **ret_err) {
	X509_STORE *st = X509_STORE_new();

	if (!st) {
		return -ENOMEM;
	}
	/* Debian: /usr/lib/ssl/cert.pem (ca-certificates' bundle) and /etc/ssl/certs. A system
	 * without them simply trusts only ca_file. */
	if (X509_STORE_set_default_paths(st) != 1) {
		ERR_clear_error();
	}
	if (ca_file) {
		if (access(ca_file, R_OK) < 0) {
			int e = errno;
			X509_STORE_free(st);
			(void)err_msg(ret_err, ca_file, strerror(e));
			return -e;
		}
		if (X509_STORE_load_file(st, ca_file) != 1) {
			X509_STORE_free(st);
			return err_msg(ret_err, ca_file, pop_reason("no PEM certificate in it"));
		}
	}
	*ret = st;
	return 0;
}

/* What OpenSSL said when the last handshake failed, kept as the context's app data:
 * libwebsockets empties the error queue before it reports the failure. */
struct ctx_note {
	char reason[128];
};

static void on_info(const SSL *ssl, int where, int ret) {
	struct ctx_note *n = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	unsigned long e;

	if (!n) {
		return;
	}
	if ((where & SSL_CB_ALERT) && (where & SSL_CB_READ) && (ret >> 8) == SSL3_AL_FATAL) {
		snprintf(n->reason, sizeof(n->reason), "the server sent the alert \"%s\"",
			SSL_alert_desc_string_long(ret));
	} else if ((where & SSL_CB_EXIT) && ret <= 0 && !n->reason[0] &&
		   SSL_get_error(ssl, ret) == SSL_ERROR_SSL && (e = ERR_peek_last_error()) != 0) {
		/* a real failure, not the WANT_READ of a non-blocking handshake (whose queue may
		 * still hold an error of libcurl's, on the same thread) */
		const char *r = ERR_reason_error_string(e);
		snprintf(n->reason, sizeof(n->reason), "%s", r ? r : "unknown error");
	}
}

int tr_tls_ctx_new(const char *ca_file, struct ssl_ctx_st **ret, char **ret_err) {
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	struct ctx_note *note = calloc(1, sizeof(*note));
	X509_STORE *st = NULL;
	int e;

	if (!ctx || !note) {
		SSL_CTX_free(ctx);
		free(note);
		return -ENOMEM;
	}
	(void)SSL_CTX_set_app_data(ctx, note);
	SSL_CTX_set_info_callback(ctx, on_info);
	(void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	(void)SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	/* Idle sessions keep no 34 KB read and write buffers. */
	(void)SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	e = make_store(ca_file, &st, ret_err);
	if (e < 0) {
		(void)tr_tls_ctx_free(ctx);
		return e;
	}
	SSL_CTX_set_cert_store(ctx, st); /* takes it */
	*ret = ctx;
	return 0;
}

int tr_tls_ctx_reload(struct ssl_ctx_st *ctx, const char *ca_file, char **ret_err) {
	X509_STORE *st = NULL;
	int e = make_store(ca_file, &st, ret_err);

	if (e < 0) {
		return e;
	}
	SSL_CTX_set_cert_store(ctx, st); /* frees the old one */
	return 0;
}

struct ssl_ctx_st *tr_tls_ctx_free(struct ssl_ctx_st *ctx) {
	if (ctx) {
		free(SSL_CTX_get_app_data(ctx));
		SSL_CTX_free(ctx);
	}
	return NULL;
}

void tr_tls_forget(struct ssl_ctx_st *ctx) {
	struct ctx_note *n = ctx ? SSL_CTX_get_app_data(ctx) : NULL;

	if (n) {
		n->reason[0] = '\0';
	}
	ERR_clear_error();
}

const char *tr_tls_reason(struct ssl_ctx_st *ctx) {
	struct ctx_note *n = ctx ? SSL_CTX_get_app_data(ctx) : NULL;

	return n && n->reason[0] ? n->reason : NULL;
}

/* ---- capturing a failure ---- */

static void name_text(const X509_NAME *n, char *buf, size_t size) {
	BIO *bio = BIO_new(BIO_s_mem());
	long len;
	char *p;

	buf[0] = '\0';
	if (!bio) {
		return;
	}
	if (n && X509_NAME_print_ex(bio, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_get_mem_data(bio, &p);
		if (len > 0) {
			snprintf(buf, size, "%.*s", (int)len, p);
		}
	}
	BIO_free(bio);
}

static void time_text(const ASN1_TIME *t, char *buf, size_t size) {
	struct tm tm;

	buf[0] = '\0';
	if (t && ASN1_TIME_to_tm(t, &tm) == 1) {
		(void)strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm);
	}
}

static void san_text(X509 *cert, char *buf, size_t size) {
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char one[INET6_ADDRSTRLEN + 8] = "";
		if (g->type == GEN_DNS) {
			const ASN1_STRING *s = g->d.dNSName;
			snprintf(one, sizeof(one), "DNS:%.*s",
				ASN1_STRING_length(s) < 64 ? ASN1_STRING_length(s) : 64,
				(const char *)ASN1_STRING_get0_data(s));
		} else if (g->type == GEN_IPADD) {
			const ASN1_OCTET_STRING *s = g->d.iPAddress;
			char ip[INET6_ADDRSTRLEN] = "?";
			int len_ip = ASN1_STRING_length(s);
			if (len_ip == 4 || len_ip == 16) {
				(void)inet_ntop(len_ip == 4 ? AF_INET : AF_INET6,
					ASN1_STRING_get0_data(s), ip, sizeof(ip));
			}
			snprintf(one, sizeof(one), "IP:%s", ip);
		} else {
			continue;
		}
		for (char *c = one; *c; c++) {
			if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) {
				*c = '?'; /* the server's bytes go into the log and JSON */
			}
		}
		if (len + strlen(one) + 3 >= size) {
			break;
		}
		len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "", one);
	}
	GENERAL_NAMES_free(gens);
}

void tr_tls_capture(struct tr_tls_failure *f, struct x509_store_ctx_st *x) {
	X509 *cert = X509_STORE_CTX_get_current_cert(x);
	STACK_OF(X509) *chain;

	if (f->err != 0) {
		return; /* the first failure is the one that ends the handshake */
	}
	f->err = X509_STORE_CTX_get_error(x);
	f->depth = X509_STORE_CTX_get_error_depth(x);
	if (cert) {
		name_text(X509_get_subject_name(cert), f->subject, sizeof(f->subject));
		name_text(X509_get_issuer_name(cert), f->issuer, sizeof(f->issuer));
		time_text(X509_get0_notBefore(cert), f->not_before, sizeof(f->not_before));
		time_text(X509_get0_notAfter(cert), f->not_after, sizeof(f->not_after));
	}
	/* The server's own certificate says which names it is for. */
	chain = X509_STORE_CTX_get0_chain(x);
	if (chain && sk_X509_num(chain) > 0) {
		san_text(sk_X509_value(chain, 0), f->names, sizeof(f->names));
	} else if (cert && f->depth == 0) {
		san_text(cert, f->names, sizeof(f->names));
	}
}

bool tr_tls_check_ip(struct x509_store_ctx_st *x, const char *ip) {
	X509 *cert = X509_STORE_CTX_get_current_cert(x);

	if (cert && X509_check_ip_asc(cert, ip, 0) == 1) {
		return true;
	}
	X509_STORE_CTX_set_error(x, X509_V_ERR_IP_ADDRESS_MISMATCH);
	return false;
}

/* ---- words ---- */

void tr_tls_describe(const struct tr_tls_failure *f, const char *host, bool with_ca_file,
	char *buf, size_t size) {
	const char *why = X509_verify_cert_error_string(f->err);
	char who[300];

	if (f->depth == 0) {
		snprintf(who, sizeof(who), "the certificate of %s", host);
	} else {
		snprintf(who, sizeof(who), "the CA certificate \"%s\" in the chain of %s", f->subject,
			host);
	}
	switch (f->err) {
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		snprintf(buf, size,
			"TLS: the certificate of %s is self-signed (\"%s\") and not trusted%s (%s)",
			host, f->subject,
			with_ca_file ? "; it is not in the CA file either" :
				       "; trust it with --ca-file",
			why);
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		snprintf(buf, size, "TLS: %s is not trusted: issued by \"%s\", which is %s (%s)", who,
			f->issuer,
			with_ca_file ? "in neither the system store nor the CA file" :
				       "not in the system store (a private CA goes in --ca-file)",
			why);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		snprintf(buf, size, "TLS: %s expired on %s (\"%s\")", who,
			f->not_after[0] ? f->not_after : "an unreadable date", f->subject);
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(buf, size, "TLS: %s is not valid before %s; check this machine's clock (\"%s\")",
			who, f->not_before[0] ? f->not_before : "an unreadable date", f->subject);
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(buf, size, "TLS: the certificate of %s is for %s, not for this host (%s)",
			host, f->names[0] ? f->names : f->subject, why);
		break;
	default:
		snprintf(buf, size, "TLS: %s was refused: %s (\"%s\")", who, why, f->subject);
		break;
	}
}

void tr_tls_describe_lws_error(const char *lws_text, const char *lib_reason, const char *host,
	int timeout_s, bool timed_out, char *buf, size_t size) {
	int en;

	if (!lws_text) {
		lws_text = "connection failed";
	}
	if (strstr(lws_text, "Timed out waiting SSL")) {
		snprintf(buf, size,
			"TLS: no handshake answer from %s within %d s (the server took the "
			"connection but never answered)",
			host, timeout_s);
	} else if (strncmp(lws_text, "connect SSL err", 15) == 0) {
		if (lib_reason) {
			snprintf(buf, size, "TLS: the handshake with %s failed: %s%s", host, lib_reason,
				strstr(lib_reason, "wrong version number") ?
					" (the server does not speak TLS on that port?)" :
					"");
		} else {
			snprintf(buf, size, "TLS: the handshake with %s failed (%s)", host, lws_text);
		}
	} else if (sscanf(lws_text, "connect SYSCALL %d", &en) == 1) {
		snprintf(buf, size, "TLS: the connection to %s broke during the handshake (%s)", host,
			en > 0 ? strerror(en) : "the server closed it");
	} else if (strstr(lws_text, "Closed before conn")) {
		snprintf(buf, size, "%s: the connection closed before the websocket was established",
			host);
	} else if (strstr(lws_text, "closed before established")) {
		if (timed_out) {
			snprintf(buf, size, "cannot connect to %s: no answer within %d s", host,
				timeout_s);
		} else {
			snprintf(buf, size, "cannot connect to %s: refused or unreachable", host);
		}
	} else {
		snprintf(buf, size, "%s: %s", host, lws_text);
	}
}
