/*
 * test-harness.c — the harness's own pieces, before any daemon test leans on them:
 *  - certs.c: the certificates verify (or fail to) with libcrypto's verifier exactly as the TLS
 *    tests expect: good for localhost, 127.0.0.1 and ::1; wrong host; expired; unknown CA;
 *  - trt-connect-proxy through trt_proxy_*: tunnels relay both ways with half-closes and many at
 *    once, the 200 arrives whole in one read, credentials (407), --refuse, 405/400/431/502, the
 *    log line per request (user, status, byte counts; never the password or the payload),
 *    --port-file, and a clean exit on SIGTERM with tunnels open.
 * Raw sockets only: no curl or openssl command is needed.
 *
 * Under valgrind 3.19 wrapping this program (meson test --wrap=valgrind) pidfd_open does not
 * exist, so the proxy tests say so and do not run; the 'valgrind' setup runs the proxy itself
 * under valgrind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "certs.h"
#include "trtest.h"

#define WAIT trt_ms(TRT_DEADLINE_MS)
#define REPLY_200 "HTTP/1.1 200 Connection established\r\n\r\n"
#define REPLY_407                                                                                  \
	"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic "                 \
	"realm=\"trt\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

/* ---- certificates ---- */

struct certs_state {
	struct trt_env env;
	struct trt_certs c;
};

static int certs_setup(void **state) {
	struct certs_state *s = calloc(1, sizeof(*s));
	if (!s || trt_env_init(&s->env) < 0 || trt_certs_make(s->env.dir, &s->c) < 0) {
		if (s) {
			trt_env_done(&s->env);
		}
		free(s);
		return -1;
	}
	*state = s;
	return 0;
}

static int certs_teardown(void **state) {
	struct certs_state *s = *state;
	trt_certs_done(&s->c);
	trt_env_done(&s->env);
	free(s);
	return 0;
}

static X509 *load_cert(const char *path) {
	FILE *f = fopen(path, "re");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f) {
		fclose(f);
	}
	return x;
}

static EVP_PKEY *load_key(const char *path) {
	FILE *f = fopen(path, "re");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f) {
		fclose(f);
	}
	return k;
}

/* Verify cert against the CA file as a TLS client would (purpose sslserver; with host, also
 * the name): the verification error, X509_V_OK when it passes. */
static int verify(const char *ca_path, const char *cert_path, const char *host) {
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509 *x = load_cert(cert_path);
	int ok = 0, err = -1;

	if (store && ctx && x && X509_STORE_load_file(store, ca_path) == 1 &&
		X509_STORE_CTX_init(ctx, store, x, NULL) == 1 &&
		X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER) == 1 &&
		(!host || X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host, 0) ==
				  1)) {
		ok = X509_verify_cert(ctx);
		err = X509_STORE_CTX_get_error(ctx);
	}
	X509_free(x);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	if (err != X509_V_OK) {
		print_message("# %s against %s%s%s: %s\n", strrchr(cert_path, '/') + 1,
			strrchr(ca_path, '/') + 1, host ? " for " : "", host ? host : "",
			err < 0 ? "setup failed" : X509_verify_cert_error_string(err));
	}
	assert_int_equal(ok == 1, err == X509_V_OK);
	return err;
}

static int check_host(const char *cert_path, const char *host) {
	X509 *x = load_cert(cert_path);
	int r;
	assert_non_null(x);
	r = X509_check_host(x, host, 0, 0, NULL);
	X509_free(x);
	return r;
}

static int check_ip(const char *cert_path, const char *ip) {
	X509 *x = load_cert(cert_path);
	int r;
	assert_non_null(x);
	r = X509_check_ip_asc(x, ip, 0);
	X509_free(x);
	return r;
}

static void test_certs_verify(void **state) {
	struct certs_state *s = *state;
	const struct trt_certs *c = &s->c;

	/* good: trusted, and names localhost, 127.0.0.1 and ::1 */
	assert_int_equal(verify(c->ca, c->good_cert, NULL), X509_V_OK);
	assert_int_equal(verify(c->ca, c->good_cert, "localhost"), X509_V_OK);
	assert_int_equal(check_host(c->good_cert, "localhost"), 1);
	assert_int_equal(check_ip(c->good_cert, "127.0.0.1"), 1);
	assert_int_equal(check_ip(c->good_cert, "::1"), 1);
	assert_int_equal(check_host(c->good_cert, "wrong.example"), 0);
	assert_int_equal(check_ip(c->good_cert, "127.0.0.2"), 0);

	/* wrong: a trusted chain for another name */
	assert_int_equal(verify(c->ca, c->wrong_cert, NULL), X509_V_OK);
	assert_int_equal(check_host(c->wrong_cert, "localhost"), 0);
	assert_int_equal(check_ip(c->wrong_cert, "127.0.0.1"), 0);
	assert_int_equal(check_host(c->wrong_cert, "wrong.example"), 1);
	assert_int_equal(verify(c->ca, c->wrong_cert, "localhost"), X509_V_ERR_HOSTNAME_MISMATCH);

	/* expired: the right names, the right CA, out of date */
	assert_int_equal(verify(c->ca, c->expired_cert, NULL), X509_V_ERR_CERT_HAS_EXPIRED);
	assert_int_equal(check_host(c->expired_cert, "localhost"), 1);

	/* untrusted: the right names from a CA nobody trusts; a real chain all the same */
	assert_int_equal(verify(c->ca, c->untrusted_cert, "localhost"),
		X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	assert_int_equal(verify(c->other_ca, c->untrusted_cert, "localhost"), X509_V_OK);
	assert_int_equal(verify(c->other_ca, c->good_cert, NULL),
		X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

/* What a TLS client looks at: v3 extensions, key and signature types; key file modes; the
 * subject names and serials are distinct. */
static void test_certs_contents(void **state) {
	struct certs_state *s = *state;
	const struct trt_certs *c = &s->c;
	const char *certs[] = {c->good_cert, c->wrong_cert, c->expired_cert, c->untrusted_cert};
	const char *keys[] = {c->good_key, c->wrong_key, c->expired_key, c->untrusted_key};
	const char *cns[] = {
		"localhost", "wrong.example", "localhost (expired)", "localhost (untrusted)"};
	X509 *ca = load_cert(c->ca), *other = load_cert(c->other_ca);
	const ASN1_INTEGER *serials[4];
	X509 *leaves[4];
	char cn[128];
	struct stat st;
	int crit = -1;

	assert_non_null(ca);
	assert_non_null(other);
	assert_int_equal(X509_check_ca(ca), 1);
	{
		BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
		assert_non_null(bc);
		assert_true(bc->ca);
		assert_int_equal(crit, 1);
		BASIC_CONSTRAINTS_free(bc);
	}
	assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_non_null(X509_get0_subject_key_id(ca));
	assert_int_equal(X509_NAME_get_text_by_NID(
				 X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn)) > 0,
		1);
	assert_string_equal(cn, "taskrouterd test CA");
	assert_int_equal(X509_check_issued(ca, ca), X509_V_OK);
	assert_int_equal(
		ASN1_INTEGER_cmp(X509_get0_serialNumber(ca), X509_get0_serialNumber(other)) != 0,
		1);

	for (size_t i = 0; i < 4; i++) {
		X509 *x = leaves[i] = load_cert(certs[i]);
		X509 *issuer = certs[i] == c->untrusted_cert ? other : ca;
		EVP_PKEY *k = load_key(keys[i]);
		BASIC_CONSTRAINTS *bc;

		assert_non_null(x);
		assert_non_null(k);
		assert_int_equal(X509_check_private_key(x, k), 1);
		assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
		assert_int_equal(EVP_PKEY_get_bits(k), 256);
		assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
		assert_int_equal(X509_get_version(x), X509_VERSION_3);
		assert_int_equal(X509_check_ca(x), 0);
		bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
		assert_non_null(bc);
		assert_false(bc->ca);
		BASIC_CONSTRAINTS_free(bc);
		assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
		assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
		assert_non_null(X509_get0_authority_key_id(x));
		assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
					 X509_get0_subject_key_id(issuer)),
			0);
		assert_int_equal(X509_check_issued(issuer, x), X509_V_OK);
		assert_int_equal(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
					 cn, sizeof(cn)) > 0,
			1);
		assert_string_equal(cn, cns[i]);
		serials[i] = X509_get0_serialNumber(x);
		for (size_t j = 0; j < i; j++) {
			assert_int_not_equal(ASN1_INTEGER_cmp(serials[i], serials[j]), 0);
		}
		EVP_PKEY_free(k);

		assert_int_equal(stat(keys[i], &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
	/* validity: good from an hour ago for two days; expired ended two days ago */
	assert_true(X509_cmp_time(X509_get0_notBefore(leaves[0]), NULL) < 0);
	{
		time_t in_1d = time(NULL) + 86400, in_3d = time(NULL) + 3 * 86400;
		time_t ago_1d = time(NULL) - 86400;
		assert_true(X509_cmp_time(X509_get0_notAfter(leaves[0]), &in_1d) > 0);
		assert_true(X509_cmp_time(X509_get0_notAfter(leaves[0]), &in_3d) < 0);
		assert_true(X509_cmp_time(X509_get0_notAfter(leaves[2]), &ago_1d) < 0);
	}
	for (size_t i = 0; i < 4; i++) {
		X509_free(leaves[i]);
	}
	X509_free(ca);
	X509_free(other);
}

/* A second set in another directory is a new CA; a missing directory fails cleanly. */
static void test_certs_again(void **state) {
	struct certs_state *s = *state;
	struct trt_certs c2 = {0}, untouched;
	char *dir = NULL, *missing = NULL;
	X509 *a, *b;

	assert_true(asprintf(&dir, "%s/again", s->env.dir) > 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(trt_certs_make(dir, &c2), 0);
	a = load_cert(s->c.ca);
	b = load_cert(c2.ca);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_not_equal(X509_cmp(a, b), 0);
	X509_free(a);
	X509_free(b);
	/* the old CA does not know the new certificates */
	assert_int_equal(
		verify(s->c.ca, c2.good_cert, NULL), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	assert_int_equal(verify(c2.ca, c2.good_cert, "localhost"), X509_V_OK);
	trt_certs_done(&c2);
	trt_certs_done(&c2); /* done twice is harmless */

	memset(&untouched, 0x5a, sizeof(untouched));
	assert_true(asprintf(&missing, "%s/missing", s->env.dir) > 0);
	print_message("# a missing directory (a message about it follows):\n");
	assert_int_equal(trt_certs_make(missing, &untouched), -ENOENT);
	for (size_t i = 0; i < sizeof(untouched); i++) {
		assert_int_equal(((unsigned char *)&untouched)[i], 0x5a);
	}
	free(missing);
	free(dir);
}

/* ---- sockets ---- */

/* Children are waited on through pidfds, which valgrind 3.19 does not know. cmocka 1.1's
 * TAP output reports skip() as "not ok", which meson counts as a failure: a TAP comment says
 * that the test did not run instead. */
static bool can_run_children(const char *test) {
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (fd < 0) {
		print_message("# %s: pidfd_open: %s (valgrind wrapping this program?), not run\n",
			test, strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

static socklen_t loopback(const char *host, int port, struct sockaddr_storage *ss) {
	memset(ss, 0, sizeof(*ss));
	if (strchr(host, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET6, host, &in6->sin6_addr), 1);
		return sizeof(*in6);
	}
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET, host, &in->sin_addr), 1);
	return sizeof(*in);
}

/* A listening socket on host, an ephemeral port: the tunnels' target. */
static int listen_on(const char *host, int *ret_port) {
	struct sockaddr_storage ss;
	socklen_t sl = loopback(host, 0, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, sl), 0);
	assert_int_equal(listen(fd, 128), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	*ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						   : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static int connect_to(const char *host, int port) {
	struct sockaddr_storage ss;
	socklen_t sl = loopback(host, port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, sl), 0);
	return fd;
}

static int accept_one(int lfd) {
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int fd;
	assert_int_equal(poll(&p, 1, WAIT), 1);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* Nothing waiting to be accepted. */
static bool nothing_to_accept(int lfd) {
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	return poll(&p, 1, 0) == 0;
}

static void send_text(int fd, const char *s) {
	size_t n = strlen(s);
	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* One recv with a deadline: its length, 0 at EOF. */
static ssize_t recv_once(int fd, char *buf, size_t size) {
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t k;
	assert_int_equal(poll(&p, 1, WAIT), 1);
	k = recv(fd, buf, size, 0);
	if (k < 0) {
		print_message("# recv: %s\n", strerror(errno));
	}
	assert_true(k >= 0);
	return k;
}

/* Exactly the text s, in as many reads as it takes. */
static void expect_bytes(int fd, const char *s) {
	size_t n = strlen(s), got = 0;
	char buf[256];
	assert_true(n < sizeof(buf));
	while (got < n) {
		ssize_t k = recv_once(fd, buf + got, n - got);
		assert_true(k > 0);
		got += (size_t)k;
	}
	buf[got] = '\0';
	assert_string_equal(buf, s);
}

static void expect_eof(int fd) {
	char c;
	assert_int_equal(recv_once(fd, &c, 1), 0);
}

/* EOF or a reset: a socket closed with our bytes unread in it resets the connection. */
static void expect_closed(int fd) {
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;
	ssize_t k;
	assert_int_equal(poll(&p, 1, WAIT), 1);
	k = recv(fd, &c, 1, 0);
	assert_true(k == 0 || (k < 0 && errno == ECONNRESET));
}

/* A reply head (through its blank line), and with eof the close that follows. */
static void expect_reply(int fd, const char *want_prefix, bool eof) {
	char buf[1024];
	size_t n = 0;
	while (!memmem(buf, n, "\r\n\r\n", 4)) {
		ssize_t k = recv_once(fd, buf + n, sizeof(buf) - 1 - n);
		assert_true(k > 0);
		n += (size_t)k;
	}
	buf[n] = '\0';
	if (strncmp(buf, want_prefix, strlen(want_prefix)) != 0) {
		print_message("# reply: %s\n", buf);
	}
	assert_true(strncmp(buf, want_prefix, strlen(want_prefix)) == 0);
	if (eof) {
		expect_eof(fd);
	}
}

/* Open a tunnel through the proxy to target (HOST:PORT as the request names it), sending
 * `early` right after the head in the same write; the 200 must come whole in one read, as
 * libwebsockets reads it. */
static int open_tunnel(const struct trt_proxy *p, const char *proxy_host, const char *target,
	const char *headers, const char *early) {
	int c = connect_to(proxy_host, p->port);
	char buf[256];
	send_text(c, trt_fmt("CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n%s", target, target,
			     headers ? headers : "", early ? early : ""));
	assert_int_equal(recv_once(c, buf, strlen(REPLY_200)), (ssize_t)strlen(REPLY_200));
	assert_memory_equal(buf, REPLY_200, strlen(REPLY_200));
	return c;
}

/* Send n bytes each way between a and b at once (neither side can block the other) and check
 * what arrives. */
static void pump(int a, int b, size_t n) {
	int fds[2] = {a, b};
	size_t sent[2] = {0}, got[2] = {0};
	int64_t deadline = trt_now_ms() + WAIT;
	char buf[65536];

	while (got[0] < n || got[1] < n) {
		struct pollfd p[2];
		for (int i = 0; i < 2; i++) {
			p[i] = (struct pollfd){.fd = fds[i],
				.events = (short)(POLLIN | (sent[i] < n ? POLLOUT : 0))};
		}
		assert_true(poll(p, 2, trt_remaining(deadline)) > 0);
		for (int i = 0; i < 2; i++) {
			if ((p[i].revents & POLLOUT) && sent[i] < n) {
				size_t m = n - sent[i] < sizeof(buf) ? n - sent[i] : sizeof(buf);
				ssize_t k;
				for (size_t j = 0; j < m; j++) {
					buf[j] = (char)((sent[i] + j) * (i + 3) % 251);
				}
				k = send(fds[i], buf, m, MSG_DONTWAIT | MSG_NOSIGNAL);
				assert_true(k > 0 || (k < 0 && errno == EAGAIN));
				sent[i] += k > 0 ? (size_t)k : 0;
			}
			if (p[i].revents & POLLIN) {
				/* what fds[1 - i] sent */
				int from = 1 - i;
				ssize_t k = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT);
				assert_true(k > 0);
				for (ssize_t j = 0; j < k; j++) {
					assert_int_equal((unsigned char)buf[j],
						(got[from] + (size_t)j) * (size_t)(from + 3) % 251);
				}
				got[from] += (size_t)k;
			}
		}
	}
}

static void start_proxy(struct trt_env *env, struct trt_proxy *p, const char *const *extra) {
	assert_int_equal(trt_env_init(env), 0);
	assert_int_equal(trt_proxy_start(env, p, extra), 0);
	assert_true(p->port > 0);
}

static void stop_proxy(struct trt_env *env, struct trt_proxy *p) {
	assert_int_equal(trt_proxy_stop(p), 0);
	trt_env_done(env);
}

/* ---- the proxy ---- */

static void test_proxy_relay(void **state) {
	struct trt_env env;
	struct trt_proxy p;
	const size_t bulk = 1 << 20;
	int l, port, c, t;
	char buf[64];
	(void)state;
	if (!can_run_children(__func__)) {
		return;
	}

	start_proxy(&env, &p, NULL);
	assert_string_equal(p.url, trt_fmt("http://127.0.0.1:%d", p.port));
	assert_int_equal(trt_proxy_count(&p, "CONNECT"), 0);
	l = listen_on("127.0.0.1", &port);

	c = open_tunnel(&p, "127.0.0.1", trt_fmt("127.0.0.1:%d", port), NULL, "secret-payload");
	t = accept_one(l);
	expect_bytes(t, "secret-payload");
	send_text(t, "pong");
	expect_bytes(c, "pong");
	pump(c, t, bulk);

	/* the client's EOF reaches the target; the other direction stays open */
	assert_int_equal(shutdown(c, SHUT_WR), 0);
	expect_eof(t);
	send_text(t, "bye");
	expect_bytes(c, "bye");
	close(t);
	expect_eof(c);
	assert_int_equal(recv(c, buf, sizeof(buf), MSG_DONTWAIT), 0);
	close(c);

	assert_int_equal(trt_proxy_wait_count(&p,
				 trt_fmt("CONNECT 127.0.0.1:%d user=- status=200 up=%zu down=%zu\n",
					 port, strlen("secret-payload") + bulk,
					 strlen("pong") + bulk + strlen("bye")),
				 1, WAIT),
		0);
	assert_int_equal(trt_proxy_count(&p, "secret-payload"), 0);
	/* the tunnel's line when it opened, and its line when it finished */
	assert_int_equal(trt_proxy_count(&p, "\n"), 2);
	assert_int_equal(trt_proxy_count(&p, trt_fmt("TUNNEL 127.0.0.1:%d user=-\n", port)), 1);
	close(l);
	stop_proxy(&env, &p);
}

/* The target closes first; then the client. */
static void test_proxy_target_closes_first(void **state) {
	struct trt_env env;
	struct trt_proxy p;
	int l, port, c, t;
	(void)state;
	if (!can_run_children(__func__)) {
		return;
	}

	start_proxy(&env, &p, NULL);
	l = listen_on("127.0.0.1", &port);
	c = open_tunnel(&p, "127.0.0.1", trt_fmt("127.0.0.1:%d", port), NULL, NULL);
	t = accept_one(l);
	send_text(t, "last words");
	assert_int_equal(shutdown(t, SHUT_WR), 0);
	expect_bytes(c, "last words");
	expect_eof(c);
	send_text(c, "reply after EOF");
	expect_bytes(t, "reply after EOF");
	close(c);
	expect_eof(t);
	close(t);
	assert_int_equal(
		trt_proxy_wait_count(&p,
			trt_fmt("CONNECT 127.0.0.1:%d user=- status=200 up=15 down=10\n", port), 1,
			WAIT),
		0);
	close(l);
	stop_proxy(&env, &p);
}

static void test_proxy_ipv6(void **state) {
	const char *const extra[] = {"--listen", "::1", NULL};
	struct trt_env env;
	struct trt_proxy p;
	int l, port, c, t;
	(void)state;
	if (!can_run_children(__func__)) {
		return;
	}

	if (!trt_have_ipv6_loopback()) {
		print_message("# [::1] cannot be bound here: nothing tried\n");
		return;
	}
	start_proxy(&env, &p, extra);
	assert_string_equal(p.url, trt_fmt("http://[::1]:%d", p.port));
	l = listen_on("::1", &port);
	c = open_tunnel(&p, "::1", trt_fmt("[::1]:%d", port), NULL, "six");
	t = accept_one(l);
	expect_bytes(t, "six");
	send_text(t, "xis");
	expect_bytes(c, "xis");
	close(c);
	expect_eof(t);
	close(t);
	assert_int_equal(
		trt_proxy_wait_count(&p,
			trt_fmt("CONNECT [::1]:%d user=- status=200 up=3 down=3\n", port), 1, WAIT),
		0);
	close(l);
	stop_proxy(&env, &p);
}

/* Many tunnels open at once, to "localhost" (resolved by the proxy); each target finds its
 * client by the first bytes. */
static void test_proxy_many(void **state) {
	enum { N = 40 };
	struct trt_env env;
	struct trt_proxy p;
	int l, port, c[N], t[N];
	(void)state;
	if (!can_run_children(__func__)) {
		return;
	}

	start_proxy(&env, &p, NULL);
	l = listen_on("127.0.0.1", &port);
	for (int i = 0; i < N; i++) {
		c[i] = open_tunnel(&p, "127.0.0.1", trt_fmt("localhost:%d", port), NULL,
			trt_fmt("tunnel-%02d", i));
	}
	for (int i = 0; i < N; i++) {
		char id[10];
		int k, fd = accept_one(l);
		size_t got = 0;
		while (got < 9) {
			ssize_t r = recv_once(fd, id + got, 9 - got);
			assert_true(r > 0);
			got += (size_t)r;
		}
		id[9] = '\0';
		assert_int_equal(sscanf(id, "tunnel-%d", &k), 1);
		assert_true(k >= 0 && k < N);
		t[k] = fd;
	}
	for (int i = 0; i < N; i++) {
		send_text(t[i], trt_fmt("back-%02d", i));
	}
	for (int i = 0; i < N; i++) {
		expect_bytes(c[i], trt_fmt("back-%02d", i));
		close(c[i]);
	}
	for (int i = 0; i < N; i++) {
		expect_eof(t[i]);
		close(t[i]);
	}
	assert_int_equal(
		trt_proxy_wait_count(&p,
			trt_fmt("CONNECT localhost:%d user=- status=200 up=9 down=7\n", port), N,
			WAIT),
		0);
	close(l);
	stop_proxy(&env, &p);
}

/* base64 of alice:s3cr3t-pw and of alice:nope */
#define RIGHT "YWxpY2U6czNjcjN0LXB3"
#define WRONG "YWxpY2U6bm9wZQ=="

static void test_proxy_auth(void **state) {
	const char *const extra[] = {"--require-auth", "alice:s3cr3t-pw", NULL};
	const struct {
		const char *header;
		int status;
		const char *user;
	} cases[] = {
		{NULL, 407, "-"},
		{"Proxy-Authorization: Basic " WRONG "\r\n", 407, "alice"},
		{"Proxy-Authorization: Bearer whatever\r\n", 407, "-"},
		{"Proxy-Authorization: Basic !!notbase64!!\r\n", 407, "-"},
		/* libwebsockets' spelling, then curl's, then a lowercase header name */
		{"Proxy-Authorization: basic " RIGHT "\r\n", 200, "alice"},
		{"Proxy-Authorization: Basic " RIGHT "\r\n", 200, "alice"},
		{"proxy-authorization:basic   " RIGHT "\r\n", 200, "alice"},
	};
	struct trt_env env;
	struct trt_proxy p;
	int l, port;
	(void)state;
	if (!can_run_children(__func__)) {
		return;
	}

	start_proxy(&env, &p, extra);
	l = listen_on("127.0.0.1", &port);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *target = trt_fmt("127.0.0.1:%d", port);
		const char *line = trt_fmt(
			"CONNECT %s user=%s status=%d ", target, cases[i].user, cases[i].status);
		int before = trt_proxy_count(&p, line), c, t;

		if (cases[i].status == 200) {
			c = open_tunnel(&p, "127.0.0.1", target, cases[i].header, "x");
			t = accept_one(l);
			expect_bytes(t, "x");
			close(t);
			expect_eof(c);
		} else {
			char buf[512];
			size_t n = 0;
			c = connect_to("127.0.0.1", p.port);
			send_text(c, trt_fmt("CONNECT %s HTTP/1.1\r\n%s\r\n", target,
					     cases[i].header ? cases[i].header : ""));
			/* the whole 407, exactly, then the close */
			while (n < strlen(REPLY_407)) {
				ssize_t k = recv_once(c, buf + n, sizeof(buf) - 1 - n);
				assert_true(k > 0);
				n += (size_t)k;
			}
			buf[n] = '\0';
			assert_string_equal(buf, REPLY_407);
			expect_eof(c);
			assert_true(nothing_to_accept(l));
		}
		close(c);
		assert_int_equal(trt_proxy_wait_count(&p, line, before + 1, WAIT), 0);
	}
	assert_int_equal(trt_proxy_count(&p, "status=407"), 4);
	assert_int_equal(trt_proxy_count(&p, "user=alice status=200"), 3);
	/* neither the password nor the header's text, in the log or on stderr */
	assert_int_equal(trt_proxy_count(&p, "s3cr3t"), 0);
	assert_int_equal(trt_proxy_count(&p, RIGHT), 0);
	assert_int_equal(trt_proxy_count(&p, "nope"), 0);
	assert_false(trt_proc_log_contains(&p.proc, "s3cr3t"));
	close(l);
	stop_proxy(&env, &p);
}

static void test_proxy_refuse(void **state) {
	static const char *const codes[] = {"403", "502"};
	(void)state;
	if (!can_run_children(__func__)) {
		return;
	}

	for (size_t i = 0; i < 2; i++) {
		const char *const extra[] = {"--refuse", codes[i], NULL};
		struct trt_env env;
		struct trt_proxy p;
		int l, port, c;

		start_proxy(&env, &p, extra);
		l = listen_on("127.0.0.1", &port);
		c = connect_to("127.0.0.1", p.port);
		send_text(c, trt_fmt("CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n", port));
		expect_reply(c, trt_fmt("HTTP/1.1 %s ", codes[i]), true);
		close(c);
		assert_true(nothing_to_accept(l));
		assert_int_equal(
			trt_proxy_wait_count(&p,
				trt_fmt("CONNECT 127.0.0.1:%d user=- status=%s up=0 down=0\n", port,
					codes[i]),
				1, WAIT),
			0);
		close(l);
		stop_proxy(&env, &p);
	}
}

/* What is not a good CONNECT, and a target that is not there (or not loopback). */
static void test_proxy_errors(void **state) {
	struct trt_env env;
	struct trt_proxy p;
	int l, port, closed_port, c;
	char big[9000];
	(void)state;
	if (!can_run_children(__func__)) {
		return;
	}

	start_proxy(&env, &p, NULL);
	l = listen_on("127.0.0.1", &port);
	close(listen_on("127.0.0.1", &closed_port));
	const struct {
		const char *request;
		const char *reply;
		const char *logged;
	} cases[] = {
		{"GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
			"HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\n",
			"GET http://127.0.0.1/ user=- status=405"},
		{"CONNECT nonsense HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ",
			"CONNECT nonsense user=- status=400"},
		{"CONNECT 127.0.0.1:0 HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ",
			"CONNECT 127.0.0.1:0 user=- status=400"},
		{"CONNECT 127.0.0.1:80 SMTP/1.0\r\n\r\n", "HTTP/1.1 400 ", "status=400"},
		{trt_fmt("CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n", closed_port),
			"HTTP/1.1 502 Bad Gateway\r\n",
			trt_fmt("CONNECT 127.0.0.1:%d user=- status=502", closed_port)},
		/* TEST-NET-1: refused before any connect, so no test can reach the network */
		{"CONNECT 192.0.2.1:443 HTTP/1.1\r\n\r\n", "HTTP/1.1 502 ",
			"CONNECT 192.0.2.1:443 user=- status=502"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = connect_to("127.0.0.1", p.port);
		send_text(c, cases[i].request);
		expect_reply(c, cases[i].reply, true);
		close(c);
		assert_int_equal(trt_proxy_wait_count(&p, cases[i].logged, 1, WAIT), 0);
	}

	/* a head that never ends within 8 KiB */
	c = connect_to("127.0.0.1", p.port);
	memset(big, 'a', sizeof(big));
	memcpy(big, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nX-Long: ", 38);
	assert_int_equal(send(c, big, sizeof(big), MSG_NOSIGNAL), (ssize_t)sizeof(big));
	expect_reply(c, "HTTP/1.1 431 ", true);
	close(c);
	assert_int_equal(trt_proxy_wait_count(&p, "- - user=- status=431", 1, WAIT), 0);

	/* a client that goes away mid-head is not a request */
	c = connect_to("127.0.0.1", p.port);
	send_text(c, "CONNECT 127.0.0.1:1 HT");
	close(c);
	assert_true(nothing_to_accept(l));
	close(l);
	assert_int_equal(trt_proxy_count(&p, "status="), 7);
	stop_proxy(&env, &p);
}

/* --port-file, and SIGTERM with a tunnel open: exit 0, the tunnel logged as it stood. */
static void test_proxy_port_file_and_sigterm(void **state) {
	struct trt_env env;
	struct trt_proxy p;
	char *port_file, *log_path, buf[32] = "";
	int l, port, c, t;
	FILE *f;
	(void)state;

	if (!can_run_children(__func__)) {
		return;
	}
	assert_int_equal(trt_env_init(&env), 0);
	port_file = strdup(trt_fmt("%s/proxy.port", env.dir));
	assert_non_null(port_file);
	{
		const char *const extra[] = {"--port-file", port_file, NULL};
		assert_int_equal(trt_proxy_start(&env, &p, extra), 0);
	}
	f = fopen(port_file, "re");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, trt_fmt("%d\n", p.port));
	assert_int_equal(access(trt_fmt("%s.tmp", port_file), F_OK), -1);

	l = listen_on("127.0.0.1", &port);
	c = open_tunnel(&p, "127.0.0.1", trt_fmt("127.0.0.1:%d", port), NULL, "hi");
	t = accept_one(l);
	expect_bytes(t, "hi");
	/* a second client halfway through its head */
	int half = connect_to("127.0.0.1", p.port);
	send_text(half, "CONNECT 127.0.0.1:1 HTTP/1.1\r\n");

	log_path = strdup(p.log_path);
	assert_non_null(log_path);
	assert_int_equal(trt_proxy_stop(&p), 0);
	expect_eof(c);
	expect_eof(t);
	expect_closed(half); /* the proxy may not have read its head yet */
	close(half);
	close(c);
	close(t);
	close(l);
	f = fopen(log_path, "re");
	assert_non_null(f);
	{
		char line[256];
		assert_non_null(fgets(line, sizeof(line), f));
		assert_string_equal(line, trt_fmt("TUNNEL 127.0.0.1:%d user=-\n", port));
		assert_non_null(fgets(line, sizeof(line), f));
		assert_string_equal(line,
			trt_fmt("CONNECT 127.0.0.1:%d user=- status=200 up=2 down=0\n", port));
		assert_null(fgets(line, sizeof(line), f));
	}
	fclose(f);
	/* a second proxy of the same env logs elsewhere */
	assert_int_equal(trt_proxy_start(&env, &p, NULL), 0);
	assert_string_equal(strrchr(p.log_path, '/'), "/proxy-2.log");
	assert_int_equal(trt_proxy_stop(&p), 0);
	assert_int_equal(trt_proxy_stop(&p), 0); /* stopped already */
	free(log_path);
	free(port_file);
	trt_env_done(&env);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_certs_verify, certs_setup, certs_teardown),
		cmocka_unit_test_setup_teardown(test_certs_contents, certs_setup, certs_teardown),
		cmocka_unit_test_setup_teardown(test_certs_again, certs_setup, certs_teardown),
		cmocka_unit_test(test_proxy_relay),
		cmocka_unit_test(test_proxy_target_closes_first),
		cmocka_unit_test(test_proxy_ipv6),
		cmocka_unit_test(test_proxy_many),
		cmocka_unit_test(test_proxy_auth),
		cmocka_unit_test(test_proxy_refuse),
		cmocka_unit_test(test_proxy_errors),
		cmocka_unit_test(test_proxy_port_file_and_sigterm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
