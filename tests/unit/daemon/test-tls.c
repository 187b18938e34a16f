/* Unit tests of daemon/tls.c: certificate failures and connection errors in words, and the
 * CA file's errors (the handshakes themselves are tested end to end in tests/e2e/test-tls.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/x509.h>

#include "tls.h"

static void assert_contains(const char *text, const char *needle) {
	if (!strstr(text, needle)) {
		fail_msg("\"%s\" does not contain \"%s\"", text, needle);
	}
}

static struct tr_tls_failure failure(int err, int depth) {
	struct tr_tls_failure f = {.err = err, .depth = depth};
	snprintf(f.subject, sizeof(f.subject), "CN=localhost");
	snprintf(f.issuer, sizeof(f.issuer), "CN=Corp CA,O=Example");
	snprintf(f.names, sizeof(f.names), "DNS:wrong.example, IP:10.0.0.1");
	snprintf(f.not_before, sizeof(f.not_before), "2030-01-01 00:00 UTC");
	snprintf(f.not_after, sizeof(f.not_after), "2020-01-02 00:00 UTC");
	return f;
}

static void test_verify_failures(void **state) {
	char buf[512];
	struct tr_tls_failure f;
	(void)state;

	f = failure(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0);
	tr_tls_describe(&f, "event-bridge.twilio.com:443", true, buf, sizeof(buf));
	assert_string_equal(buf,
		"TLS: the certificate of event-bridge.twilio.com:443 is not trusted: issued by "
		"\"CN=Corp CA,O=Example\", which is in neither the system store nor the CA file "
		"(unable to get local issuer certificate)");
	tr_tls_describe(&f, "h:443", false, buf, sizeof(buf));
	assert_contains(buf, "not in the system store (a private CA goes in --ca-file)");

	f = failure(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, 0);
	tr_tls_describe(&f, "h:443", false, buf, sizeof(buf));
	assert_contains(buf, "the certificate of h:443 is self-signed (\"CN=localhost\")");
	assert_contains(buf, "trust it with --ca-file");

	f = failure(X509_V_ERR_CERT_HAS_EXPIRED, 0);
	tr_tls_describe(&f, "h:443", true, buf, sizeof(buf));
	assert_string_equal(buf,
		"TLS: the certificate of h:443 expired on 2020-01-02 00:00 UTC (\"CN=localhost\")");
	/* a CA in the chain, not the server's own certificate */
	f = failure(X509_V_ERR_CERT_HAS_EXPIRED, 1);
	tr_tls_describe(&f, "h:443", true, buf, sizeof(buf));
	assert_contains(buf, "the CA certificate \"CN=localhost\" in the chain of h:443 expired");

	f = failure(X509_V_ERR_CERT_NOT_YET_VALID, 0);
	tr_tls_describe(&f, "h:443", true, buf, sizeof(buf));
	assert_contains(buf, "is not valid before 2030-01-01 00:00 UTC; check this machine's clock");

	f = failure(X509_V_ERR_HOSTNAME_MISMATCH, 0);
	tr_tls_describe(&f, "localhost:8443", true, buf, sizeof(buf));
	assert_string_equal(buf, "TLS: the certificate of localhost:8443 is for DNS:wrong.example, "
				 "IP:10.0.0.1, not for this host (hostname mismatch)");
	f = failure(X509_V_ERR_IP_ADDRESS_MISMATCH, 0);
	f.names[0] = '\0'; /* no subjectAltName: the subject says who it is */
	tr_tls_describe(&f, "[::1]:8443", true, buf, sizeof(buf));
	assert_contains(buf, "the certificate of [::1]:8443 is for CN=localhost, not for this host");

	f = failure(X509_V_ERR_CERT_REVOKED, 0);
	tr_tls_describe(&f, "h:443", true, buf, sizeof(buf));
	assert_string_equal(buf, "TLS: the certificate of h:443 was refused: certificate revoked "
				 "(\"CN=localhost\")");

	/* a small buffer is cut, never overrun */
	f = failure(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0);
	memset(buf, 'x', sizeof(buf));
	tr_tls_describe(&f, "h:443", true, buf, 16);
	assert_int_equal(strlen(buf), 15);
	assert_int_equal(buf[16], 'x');
}

static void test_lws_errors(void **state) {
	char buf[512];
	(void)state;

	tr_tls_describe_lws_error("Timed out waiting SSL", NULL, "localhost:4443", 1, true, buf,
		sizeof(buf));
	assert_string_equal(buf, "TLS: no handshake answer from localhost:4443 within 1 s (the "
				 "server took the connection but never answered)");
	tr_tls_describe_lws_error("connect SSL err 1: error:00000001:lib(0)::reason(1)",
		"wrong version number", "h:80", 15, false, buf, sizeof(buf));
	assert_string_equal(buf, "TLS: the handshake with h:80 failed: wrong version number (the "
				 "server does not speak TLS on that port?)");
	tr_tls_describe_lws_error("connect SSL err 1: error:00000001:lib(0)::reason(1)", NULL,
		"h:443", 15, false, buf, sizeof(buf));
	assert_contains(buf, "TLS: the handshake with h:443 failed (connect SSL err 1");
	tr_tls_describe_lws_error("connect SYSCALL 104", NULL, "h:443", 15, false, buf, sizeof(buf));
	assert_contains(buf, "the connection to h:443 broke during the handshake (Connection reset");
	tr_tls_describe_lws_error("connect SYSCALL 0", NULL, "h:443", 15, false, buf, sizeof(buf));
	assert_contains(buf, "(the server closed it)");
	/* lws says the same for a refused connection and a timeout: the caller tells which */
	tr_tls_describe_lws_error("closed before established", NULL, "h:1", 15, false, buf,
		sizeof(buf));
	assert_string_equal(buf, "cannot connect to h:1: refused or unreachable");
	tr_tls_describe_lws_error("closed before established", NULL, "h:1", 15, true, buf,
		sizeof(buf));
	assert_string_equal(buf, "cannot connect to h:1: no answer within 15 s");
	/* anything else keeps lws' words, with the host */
	tr_tls_describe_lws_error("HS: ws upgrade unauthorized", NULL, "h:443", 15, false, buf,
		sizeof(buf));
	assert_string_equal(buf, "h:443: HS: ws upgrade unauthorized");
	tr_tls_describe_lws_error(NULL, NULL, "h:443", 15, false, buf, sizeof(buf));
	assert_string_equal(buf, "h:443: connection failed");
}

static void test_ca_file(void **state) {
	char dir[] = "/tmp/test-tls.XXXXXX", path[256];
	struct ssl_ctx_st *ctx = NULL;
	char *err = NULL;
	FILE *f;
	(void)state;

	assert_non_null(mkdtemp(dir));
	/* no file: a clear error naming it */
	snprintf(path, sizeof(path), "%s/missing.pem", dir);
	assert_int_equal(tr_tls_ctx_new(path, &ctx, &err), -ENOENT);
	assert_null(ctx);
	assert_non_null(err);
	assert_contains(err, "cannot use the CA file ");
	assert_contains(err, "missing.pem: No such file or directory");
	free(err);
	err = NULL;
	/* not PEM */
	snprintf(path, sizeof(path), "%s/junk.pem", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not a certificate\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(tr_tls_ctx_new(path, &ctx, &err), -EINVAL);
	assert_non_null(err);
	assert_contains(err, "junk.pem: ");
	free(err);
	err = NULL;
	/* no CA file: the system store only; reloading a bad file keeps it and says why */
	assert_int_equal(tr_tls_ctx_new(NULL, &ctx, &err), 0);
	assert_non_null(ctx);
	assert_null(tr_tls_reason(ctx));
	assert_int_equal(tr_tls_ctx_reload(ctx, path, &err), -EINVAL);
	assert_non_null(err);
	free(err);
	err = NULL;
	assert_int_equal(tr_tls_ctx_reload(ctx, NULL, &err), 0);
	tr_tls_forget(ctx);
	assert_null(tr_tls_ctx_free(ctx));
	assert_null(tr_tls_ctx_free(NULL));
	(void)unlink(path);
	(void)rmdir(dir);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_failures),
		cmocka_unit_test(test_lws_errors),
		cmocka_unit_test(test_ca_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
