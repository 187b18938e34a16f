/* Unit tests of daemon/proxy.c: proxy addresses, the NO_PROXY rules, the precedence between
 * the configuration and the environment, and the credentials file. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "proxy.h"

static char dir[64];

static int setup(void **state) {
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tr-proxy-XXXXXX");
	if (!mkdtemp(dir)) {
		return -1;
	}
	unsetenv("JOURNAL_STREAM"); /* plain stderr lines, which capture() reads back */
	tr_log_setup(TR_LOG_INFO);
	return 0;
}

static int teardown(void **state) {
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- capturing the daemon log (stderr) ---- */

static char cap_path[96];
static int saved_stderr = -1;
static unsigned cap_count;

static void capture(void) {
	int fd;
	snprintf(cap_path, sizeof(cap_path), "%s/log-XXXXXX", dir);
	fd = mkstemp(cap_path);
	assert_true(fd >= 0);
	fflush(stderr);
	if (saved_stderr < 0) {
		saved_stderr = dup(2);
		assert_true(saved_stderr >= 0);
	}
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
	/* A different line first, so the logger's repeat suppression never hides a warning a
	 * test expects to see again. */
	tr_log_info("capture %u", ++cap_count);
}

static char *captured(void) {
	static char buf[8192];
	FILE *f;
	size_t n;
	fflush(stderr);
	assert_int_equal(dup2(saved_stderr, 2), 2);
	f = fopen(cap_path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(cap_path);
	return buf;
}

/* ---- parsing ---- */

static void test_parse_good(void **state) {
	static const struct {
		const char *text, *host;
		int port;
	} t[] = {
		{"http://proxy.example.com:3128", "proxy.example.com", 3128},
		{"http://proxy.example.com:3128/", "proxy.example.com", 3128},
		{"HTTP://Proxy:8080", "Proxy", 8080},
		{"Http://proxy:8080/", "proxy", 8080},
		{"proxy:3128", "proxy", 3128},
		{"proxy:3128/", "proxy", 3128},
		{"10.0.0.1:80", "10.0.0.1", 80},
		{"http://10.0.0.1:80", "10.0.0.1", 80},
		{"[::1]:3128", "::1", 3128},
		{"http://[fd00::1]:8080/", "fd00::1", 8080},
		{"[::ffff:10.1.2.3]:1", "::ffff:10.1.2.3", 1},
		{"p_x-1.corp.example:1", "p_x-1.corp.example", 1},
		{"p:65535", "p", 65535},
		{"p:00080", "p", 80},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tr_proxy p = {0};
		char *err = NULL;
		int r = tr_proxy_parse(t[i].text, &p, &err);
		if (r != 0) {
			fail_msg("%s: refused (%s)", t[i].text, err ? err : "?");
		}
		assert_null(err);
		assert_string_equal(p.host, t[i].host);
		assert_int_equal(p.port, t[i].port);
		tr_proxy_done(&p);
		assert_null(p.host);
		assert_int_equal(p.port, 0);
		tr_proxy_done(&p); /* twice is harmless */
	}
	tr_proxy_done(NULL);
}

static void test_parse_bad(void **state) {
	static const struct {
		const char *text;
		const char *want;   /* a piece of the message */
		const char *secret; /* must not appear in the message */
	} t[] = {
		{NULL, "empty", NULL},
		{"", "empty", NULL},
		{"http://alice:secret@proxy:3128", "user name or password", "secret"},
		{"http://alice:secret@proxy:3128/", "user name or password", "alice"},
		{"alice:secret@proxy:3128", "user name or password", "secret"},
		{"alice@proxy:3128", "user name or password", "alice"},
		{"http://al@ce:sec@ret@proxy:3128", "user name or password", "sec"},
		{"http://alice:secret@proxy:3128/path", "user name or password", "secret"},
		{"http://alice:secret@[::1]:3128", "user name or password", "secret"},
		{"https://proxy:443", "http://", NULL},
		{"HTTPS://proxy:443", "websocket library", NULL},
		{"socks5://proxy:1080", "SOCKS", NULL},
		{"socks5h://proxy:1080", "SOCKS", NULL},
		{"SOCKS4://proxy:1080", "websocket library", NULL},
		{"socks://proxy:1080", "SOCKS", NULL},
		{"ftp://proxy:21", "unsupported proxy scheme", NULL},
		{"proxy", "port", NULL},
		{"proxy:", "port", NULL},
		{"http://proxy", "port", NULL},
		{"http://proxy/", "port", NULL},
		{"proxy:0", "1..65535", NULL},
		{"proxy:65536", "1..65535", NULL},
		{"proxy:123456", "1..65535", NULL},
		{"proxy:abc", "1..65535", NULL},
		{"proxy:-1", "1..65535", NULL},
		{"proxy:80x", "1..65535", NULL},
		{"http://proxy:3128/path", "path", NULL},
		{"http://proxy:3128//", "path", NULL},
		{"http://proxy:3128/x@secret", "path", "secret"},
		{"http://proxy:3128?x=1", "query", NULL},
		{"http://proxy:3128/?x=1", "path", NULL},
		{"http://proxy:3128#frag", "query or fragment", NULL},
		{":3128", "no host", NULL},
		{"http://:3128", "no host", NULL},
		{"http://", "no host", NULL},
		{"http:///", "no host", NULL},
		{"[]:80", "no valid host", NULL},
		{"::1:3128", "brackets", NULL},
		{"fd00::1", "brackets", NULL},
		{"[::1]", "port", NULL},
		{"[::1]:", "1..65535", NULL},
		{"[::1:3128", "unterminated", NULL},
		{"[1.2.3.4]:80", "not an IPv6", NULL},
		{"[proxy]:80", "not an IPv6", NULL},
		{"[::1]x:80", "after ']'", NULL},
		{"pro xy:80", "white space", NULL},
		{" proxy:80", "white space", NULL},
		{"proxy:80\n", "white space", NULL},
		{"pr\xc3\xb6xy:80", "letters, digits", NULL},
		{"pro%78y:80", "letters, digits", NULL},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tr_proxy p = {.host = (char *)"untouched", .port = 7};
		char *err = NULL;
		int r = tr_proxy_parse(t[i].text, &p, &err);
		if (r != -EINVAL) {
			fail_msg("%s: got %d, want -EINVAL", t[i].text ? t[i].text : "(null)", r);
		}
		assert_non_null(err);
		if (!strstr(err, t[i].want)) {
			fail_msg("%s: message '%s' lacks '%s'", t[i].text, err, t[i].want);
		}
		if (t[i].secret && strstr(err, t[i].secret)) {
			fail_msg("%s: message '%s' repeats '%s'", t[i].text, err, t[i].secret);
		}
		/* written only on success */
		assert_string_equal(p.host, "untouched");
		assert_int_equal(p.port, 7);
		free(err);
	}
}

static void test_format(void **state) {
	struct tr_proxy v4 = {.host = (char *)"proxy.example", .port = 3128};
	struct tr_proxy v6 = {.host = (char *)"fd00::1", .port = 8080};
	struct tr_proxy none = {0};
	char buf[64], small[8];
	(void)state;
	assert_int_equal(tr_proxy_format(&v4, buf, sizeof(buf)), 18);
	assert_string_equal(buf, "proxy.example:3128");
	assert_int_equal(tr_proxy_format(&v6, buf, sizeof(buf)), 14);
	assert_string_equal(buf, "[fd00::1]:8080");
	assert_int_equal(tr_proxy_format(&v4, small, sizeof(small)), -ENOSPC);
	assert_string_equal(small, "");
	assert_int_equal(tr_proxy_format(&none, buf, sizeof(buf)), -EINVAL);
	assert_string_equal(buf, "");
	assert_int_equal(tr_proxy_format(NULL, buf, sizeof(buf)), -EINVAL);
}

/* ---- NO_PROXY ---- */

static void test_bypass(void **state) {
	static const struct {
		const char *list, *host;
		int port;
		bool want;
	} t[] = {
		/* empty lists and empty tokens */
		{NULL, "example.com", 443, false},
		{"", "example.com", 443, false},
		{" , ,\t", "example.com", 443, false},
		{".", "example.com", 443, false},
		{"*.", "example.com", 443, false},
		/* "*" */
		{"*", "example.com", 443, true},
		{"*", "10.1.2.3", 1, true},
		{"*", "::1", 1, true},
		{"foo.com, *", "example.com", 443, true},
		{" * ", "example.com", 443, true},
		{"*foo.com", "example.com", 443, false},
		/* names: exact, or a suffix at a label boundary */
		{"example.com", "example.com", 443, true},
		{"example.com", "a.example.com", 443, true},
		{"example.com", "a.b.example.com", 443, true},
		{"example.com", "badexample.com", 443, false},
		{"example.com", "example.com.evil.net", 443, false},
		{"example.com", "example.co", 443, false},
		{"example.com", "com", 443, false},
		{"b.a.example.com", "a.example.com", 443, false},
		{"example.com", "example.com.", 443, true},
		{"example.com", "a.example.com.", 443, true},
		/* leading and trailing dots, "*." */
		{".example.com", "example.com", 443, true},
		{".example.com", "a.example.com", 443, true},
		{".example.com", "badexample.com", 443, false},
		{"example.com.", "a.example.com", 443, true},
		{".example.com.", "example.com", 443, true},
		{"*.example.com", "a.example.com", 443, true},
		{"*.example.com", "example.com", 443, true},
		{"*.example.com", "badexample.com", 443, false},
		/* case */
		{"EXAMPLE.com", "a.Example.COM", 443, true},
		{"LOCALHOST", "localhost", 80, true},
		{"*.EXAMPLE.COM", "A.EXAMPLE.com", 443, true},
		/* separators */
		{"foo.com bar.com", "bar.com", 1, true},
		{"foo.com\tbar.com", "bar.com", 1, true},
		{"foo.com,,bar.com", "bar.com", 1, true},
		{"foo.com , bar.com", "bar.com", 1, true},
		{"  bar.com  ", "bar.com", 1, true},
		{"foo.com,baz.com", "bar.com", 1, false},
		/* ports */
		{"example.com:443", "example.com", 443, true},
		{"example.com:443", "example.com", 8443, false},
		{"example.com:443", "a.example.com", 443, true},
		{"example.com:443", "a.example.com", 80, false},
		{"example.com:443, example.com:80", "example.com", 80, true},
		{"example.com:abc", "example.com", 443, false},
		{"example.com:0", "example.com", 443, false},
		{"example.com:", "example.com", 443, false},
		{".example.com:8080", "a.example.com", 8080, true},
		/* names are not resolved, and there is no automatic loopback bypass */
		{"localhost", "127.0.0.1", 80, false},
		{"127.0.0.1", "localhost", 80, false},
		{"example.com", "127.0.0.1", 80, false},
		{"foo.com", "localhost", 80, false},
		{"foo.com", "::1", 80, false},
		/* IPv4 literals */
		{"10.1.2.3", "10.1.2.3", 80, true},
		{"10.1.2.3", "10.1.2.4", 80, false},
		{"10.1.2.3:80", "10.1.2.3", 80, true},
		{"10.1.2.3:80", "10.1.2.3", 443, false},
		{"2.3", "10.1.2.3", 80, false},   /* not a suffix match on addresses */
		{"1.2.3", "10.1.2.3", 80, false},
		{".2.3", "10.1.2.3", 80, false},
		{"10.1.2.3", "110.1.2.3", 80, false},
		/* IPv6 literals, with and without brackets (token and host) */
		{"::1", "::1", 80, true},
		{"::1", "0:0:0:0:0:0:0:1", 80, true},
		{"::1", "[::1]", 80, true},
		{"[::1]", "::1", 80, true},
		{"[::1]", "[::1]", 80, true},
		{"::1", "::2", 80, false},
		{"[::1]:8080", "::1", 8080, true},
		{"[::1]:8080", "::1", 80, false},
		{"[::1]x", "::1", 80, false},
		{"[::1", "::1", 80, false},
		{"[example.com]", "example.com", 80, false},
		{"FD00::1", "fd00::1", 80, true},
		{"::ffff:10.1.2.3", "10.1.2.3", 80, false}, /* families differ */
		{"0.0.0.0", "::", 80, false},
		{"::", "0.0.0.0", 80, false},
		/* CIDR */
		{"10.0.0.0/8", "10.255.1.1", 80, true},
		{"10.0.0.0/8", "11.0.0.1", 80, false},
		{"10.0.0.0/8", "9.255.255.255", 80, false},
		{"192.168.1.0/24", "192.168.1.77", 80, true},
		{"192.168.1.0/24", "192.168.2.1", 80, false},
		{"172.16.0.0/12", "172.31.255.255", 80, true},
		{"172.16.0.0/12", "172.32.0.0", 80, false},
		{"172.16.0.0/12", "172.15.255.255", 80, false},
		{"10.1.2.3/32", "10.1.2.3", 80, true},
		{"10.1.2.3/32", "10.1.2.2", 80, false},
		{"0.0.0.0/0", "203.0.113.9", 80, true},
		{"0.0.0.0/0", "::1", 80, false},
		{"0.0.0.0/0", "example.com", 80, false},
		{"10.0.0.0/8:443", "10.2.3.4", 443, true},
		{"10.0.0.0/8:443", "10.2.3.4", 80, false},
		{"10.0.0.0/33", "10.0.0.1", 80, false},
		{"10.0.0.0/", "10.0.0.1", 80, false},
		{"10.0.0.0/x", "10.0.0.1", 80, false},
		{"10.0.0.0/-8", "10.0.0.1", 80, false},
		{"10.0.0.0/0008", "10.0.0.1", 80, false},
		{"example.com/8", "example.com", 80, false},
		{"fd00::/8", "fd12::1", 80, true},
		{"fd00::/8", "fe80::1", 80, false},
		{"fd00::/8", "10.0.0.1", 80, false},
		{"[fd00::]/8", "fd12::1", 80, true},
		{"[fd00::]/8", "fe80::1", 80, false},
		{"2001:db8::/32", "2001:db8:ffff::1", 80, true},
		{"2001:db8::/32", "2001:db9::1", 80, false},
		{"2001:db8::/33", "2001:db8:8000::1", 80, false},
		{"2001:db8::/33", "2001:db8:7fff::1", 80, true},
		{"::/0", "::1", 80, true},
		{"::1/128", "::1", 80, true},
		{"::1/129", "::1", 80, false},
		{"10.0.0.0/8", "[::1]", 80, false},
		/* the host side */
		{"example.com", "", 80, false},
		{"example.com", NULL, 80, false},
		{"*", "", 80, false},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		bool got = tr_proxy_bypass(t[i].list, t[i].host, t[i].port);
		if (got != t[i].want) {
			fail_msg("no_proxy '%s', host '%s' port %d: got %d want %d",
				t[i].list ? t[i].list : "(null)", t[i].host ? t[i].host : "(null)",
				t[i].port, got, t[i].want);
		}
	}
}

/* ---- choosing ---- */

/* The environment tr_proxy_choose sees: NULL-terminated name/value pairs. */
static const char *const *fake_env;

static const char *fake_getenv(const char *name) {
	for (size_t i = 0; fake_env && fake_env[i]; i += 2) {
		if (strcmp(fake_env[i], name) == 0) {
			return fake_env[i + 1];
		}
	}
	return NULL;
}

#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_choose(void **state) {
	/* not static: the ENV() compound literals live in this block */
	const struct {
		const char *configured, *configured_no_proxy;
		bool tls;
		const char *host;
		int port;
		const char *const *env;
		const char *want_host; /* NULL: direct */
		int want_port;
		const char *want_source;
	} t[] = {
		/* nothing anywhere: direct */
		{NULL, NULL, true, "event-bridge.twilio.com", 443, NULL, NULL, 0, NULL},
		{NULL, NULL, false, "127.0.0.1", 8080, NULL, NULL, 0, NULL},
		/* the configuration wins over the environment */
		{"http://cfg.example:3128", NULL, true, "h.example", 443,
			ENV("https_proxy", "env:1", "HTTPS_PROXY", "ENV:2"), "cfg.example", 3128,
			"config"},
		{"cfg.example:3128", NULL, false, "127.0.0.1", 80, ENV("http_proxy", "env:1"),
			"cfg.example", 3128, "config"},
		{"[fd00::3]:3128", NULL, true, "h.example", 443, NULL, "fd00::3", 3128, "config"},
		/* "none": no proxy, the environment is not looked at */
		{"none", NULL, true, "h.example", 443,
			ENV("https_proxy", "env:1", "HTTPS_PROXY", "ENV:2"), NULL, 0, NULL},
		{"NONE", NULL, false, "127.0.0.1", 80, ENV("http_proxy", "env:1"), NULL, 0, NULL},
		{"None", NULL, true, "h.example", 443, ENV("HTTPS_PROXY", "ENV:2"), NULL, 0, NULL},
		/* TLS endpoints: https_proxy, then HTTPS_PROXY; never http_proxy */
		{NULL, NULL, true, "h.example", 443,
			ENV("https_proxy", "low:1", "HTTPS_PROXY", "UP:2"), "low", 1,
			"https_proxy"},
		{NULL, NULL, true, "h.example", 443, ENV("HTTPS_PROXY", "http://UP:2/"), "UP", 2,
			"HTTPS_PROXY"},
		{NULL, NULL, true, "h.example", 443, ENV("https_proxy", "", "HTTPS_PROXY", "UP:2"),
			"UP", 2, "HTTPS_PROXY"},
		{NULL, NULL, true, "h.example", 443, ENV("http_proxy", "plain:3"), NULL, 0, NULL},
		{NULL, NULL, true, "h.example", 443,
			ENV("HTTP_PROXY", "plain:3", "all_proxy", "a:4", "ALL_PROXY", "a:5"), NULL,
			0, NULL},
		/* plain endpoints: http_proxy only (lower case, like curl) */
		{NULL, NULL, false, "127.0.0.1", 80, ENV("http_proxy", "plain:3"), "plain", 3,
			"http_proxy"},
		{NULL, NULL, false, "127.0.0.1", 80, ENV("HTTP_PROXY", "PLAIN:4"), NULL, 0, NULL},
		{NULL, NULL, false, "127.0.0.1", 80,
			ENV("https_proxy", "low:1", "HTTPS_PROXY", "UP:2"), NULL, 0, NULL},
		{NULL, NULL, false, "127.0.0.1", 80, ENV("http_proxy", ""), NULL, 0, NULL},
		/* the exception list: the no-proxy key, then no_proxy, then NO_PROXY */
		{"cfg:1", "example.com", true, "a.example.com", 443, NULL, NULL, 0, NULL},
		{"cfg:1", "other.com", true, "a.example.com", 443, ENV("no_proxy", "example.com"),
			"cfg", 1, "config"},
		{"cfg:1", "other.com", true, "a.example.com", 443, ENV("NO_PROXY", "example.com"),
			"cfg", 1, "config"},
		{"cfg:1", NULL, true, "a.example.com", 443, ENV("no_proxy", "example.com"), NULL, 0,
			NULL},
		{NULL, NULL, true, "a.example.com", 443,
			ENV("https_proxy", "p:1", "no_proxy", "example.com"), NULL, 0, NULL},
		{NULL, NULL, true, "a.example.com", 443,
			ENV("https_proxy", "p:1", "NO_PROXY", "example.com"), NULL, 0, NULL},
		{NULL, NULL, true, "a.example.com", 443,
			ENV("https_proxy", "p:1", "no_proxy", "other.com", "NO_PROXY",
				"example.com"),
			"p", 1, "https_proxy"},
		{NULL, NULL, true, "a.example.com", 443,
			ENV("https_proxy", "p:1", "no_proxy", "", "NO_PROXY", "example.com"),
			NULL, 0, NULL},
		{NULL, "other.com", true, "a.example.com", 443,
			ENV("https_proxy", "p:1", "no_proxy", "example.com"), "p", 1,
			"https_proxy"},
		{NULL, NULL, false, "127.0.0.1", 8080,
			ENV("http_proxy", "p:1", "no_proxy", "127.0.0.0/8"), NULL, 0, NULL},
		{NULL, NULL, false, "127.0.0.1", 8080,
			ENV("http_proxy", "p:1", "no_proxy", "localhost"), "p", 1, "http_proxy"},
		/* port-specific exceptions */
		{"cfg:1", "example.com:443", true, "example.com", 443, NULL, NULL, 0, NULL},
		{"cfg:1", "example.com:443", true, "example.com", 8443, NULL, "cfg", 1, "config"},
		/* "*" */
		{NULL, NULL, true, "h.example", 443, ENV("https_proxy", "p:1", "NO_PROXY", "*"),
			NULL, 0, NULL},
		{"cfg:1", "*", false, "::1", 80, NULL, NULL, 0, NULL},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tr_proxy p = {.host = (char *)"untouched"};
		const char *source = "untouched";
		char *err = NULL;
		int r;

		fake_env = t[i].env;
		r = tr_proxy_choose(t[i].configured, t[i].configured_no_proxy, t[i].tls, t[i].host,
			t[i].port, fake_getenv, &p, &source, &err);
		if (r != 0) {
			fail_msg("case %zu: %d (%s)", i, r, err ? err : "?");
		}
		if (!t[i].want_host) {
			if (p.host || source) {
				fail_msg("case %zu: want direct, got %s:%d from %s", i,
					p.host ? p.host : "-", p.port, source ? source : "-");
			}
			continue;
		}
		if (!p.host || strcmp(p.host, t[i].want_host) != 0 || p.port != t[i].want_port ||
			!source || strcmp(source, t[i].want_source) != 0) {
			fail_msg("case %zu: want %s:%d from %s, got %s:%d from %s", i,
				t[i].want_host, t[i].want_port, t[i].want_source,
				p.host ? p.host : "-", p.port, source ? source : "-");
		}
		tr_proxy_done(&p);
	}
	fake_env = NULL;
}

/* A user name or password in the environment is dropped with a warning that never repeats
 * it, once per variable; an unusable value is skipped with a warning. */
static void test_choose_env_warnings(void **state) {
	struct tr_proxy p;
	const char *source;
	char *err = NULL, *log;
	(void)state;

	tr_proxy_reset_warnings();
	fake_env = ENV("https_proxy", "http://alice:s3cr3t@proxy.corp:3128");
	capture();
	assert_int_equal(tr_proxy_choose(NULL, NULL, true, "h.example", 443, fake_getenv, &p,
				 &source, &err),
		0);
	log = captured();
	assert_string_equal(p.host, "proxy.corp");
	assert_int_equal(p.port, 3128);
	assert_string_equal(source, "https_proxy");
	tr_proxy_done(&p);
	assert_non_null(strstr(log, "warning]: environment: https_proxy holds a user name or "
				    "password, ignoring them"));
	assert_null(strstr(log, "s3cr3t"));
	assert_null(strstr(log, "alice"));

	/* once: the second choice (the REST endpoint, say) is silent */
	capture();
	assert_int_equal(tr_proxy_choose(NULL, NULL, true, "h2.example", 443, fake_getenv, &p,
				 &source, &err),
		0);
	log = captured();
	assert_string_equal(p.host, "proxy.corp");
	tr_proxy_done(&p);
	assert_null(strstr(log, "https_proxy"));

	/* ... per variable: HTTPS_PROXY has its own warning */
	fake_env = ENV("HTTPS_PROXY", "bob@[::1]:3128");
	capture();
	assert_int_equal(tr_proxy_choose(NULL, NULL, true, "h.example", 443, fake_getenv, &p,
				 &source, &err),
		0);
	log = captured();
	assert_string_equal(p.host, "::1");
	assert_string_equal(source, "HTTPS_PROXY");
	tr_proxy_done(&p);
	assert_non_null(strstr(log, "HTTPS_PROXY holds a user name or password"));
	assert_null(strstr(log, "bob"));

	/* http_proxy for a plain endpoint, the same way */
	fake_env = ENV("http_proxy", "http://carol:pw@127.0.0.1:3128/");
	capture();
	assert_int_equal(tr_proxy_choose(NULL, NULL, false, "127.0.0.1", 80, fake_getenv, &p,
				 &source, &err),
		0);
	log = captured();
	assert_string_equal(p.host, "127.0.0.1");
	assert_string_equal(source, "http_proxy");
	tr_proxy_done(&p);
	assert_non_null(strstr(log, "http_proxy holds a user name or password"));
	assert_null(strstr(log, "carol"));

	/* an unusable https_proxy is skipped (with its reason), HTTPS_PROXY is used */
	fake_env = ENV("https_proxy", "socks5://dave:pw@proxy:1080", "HTTPS_PROXY", "up:2");
	capture();
	assert_int_equal(tr_proxy_choose(NULL, NULL, true, "h.example", 443, fake_getenv, &p,
				 &source, &err),
		0);
	log = captured();
	assert_string_equal(p.host, "up");
	assert_string_equal(source, "HTTPS_PROXY");
	tr_proxy_done(&p);
	assert_non_null(strstr(log, "environment: https_proxy: SOCKS proxies are not supported"));
	assert_non_null(strstr(log, ", ignoring it"));
	assert_null(strstr(log, "dave"));

	/* ... and alone it means no proxy, once more without a second warning */
	fake_env = ENV("https_proxy", "garbage");
	capture();
	assert_int_equal(tr_proxy_choose(NULL, NULL, true, "h.example", 443, fake_getenv, &p,
				 &source, &err),
		0);
	log = captured();
	assert_null(p.host);
	assert_null(source);
	assert_null(strstr(log, "https_proxy"));

	/* after a reset the warnings come again */
	tr_proxy_reset_warnings();
	capture();
	assert_int_equal(tr_proxy_choose(NULL, NULL, true, "h.example", 443, fake_getenv, &p,
				 &source, &err),
		0);
	log = captured();
	assert_null(p.host);
	assert_non_null(strstr(log, "environment: https_proxy: the proxy address needs a port"));
	assert_null(strstr(log, "garbage"));

	/* a user name in the configuration is refused, not dropped */
	capture();
	p = (struct tr_proxy){.host = (char *)"untouched"};
	assert_int_equal(tr_proxy_choose("http://erin:pw@proxy:1", NULL, true, "h.example", 443,
				 fake_getenv, &p, &source, &err),
		-EINVAL);
	log = captured();
	assert_string_equal(p.host, "untouched");
	assert_non_null(err);
	assert_non_null(strstr(err, "user name or password"));
	assert_null(strstr(err, "erin"));
	assert_null(strstr(log, "erin"));
	free(err);
	err = NULL;
	assert_int_equal(tr_proxy_choose("https://proxy:1", NULL, true, "h.example", 443,
				 fake_getenv, &p, &source, &err),
		-EINVAL);
	assert_non_null(strstr(err, "http://"));
	free(err);
	fake_env = NULL;
	tr_proxy_reset_warnings();
}

/* get == NULL reads the process environment. */
static void test_choose_getenv(void **state) {
	struct tr_proxy p;
	const char *source;
	char *err = NULL;
	(void)state;

	setenv("https_proxy", "http://real.example:3128", 1);
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
	assert_int_equal(tr_proxy_choose(NULL, NULL, true, "h.example", 443, NULL, &p, &source,
				 &err),
		0);
	assert_string_equal(p.host, "real.example");
	assert_string_equal(source, "https_proxy");
	tr_proxy_done(&p);
	setenv("no_proxy", ".example", 1);
	assert_int_equal(tr_proxy_choose(NULL, NULL, true, "h.example", 443, NULL, &p, &source,
				 &err),
		0);
	assert_null(p.host);
	unsetenv("https_proxy");
	unsetenv("no_proxy");
}

/* ---- the credentials file ---- */

static char *write_file(const char *name, const char *content, size_t len, mode_t mode) {
	static char path[128];
	int fd;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void test_credentials_good(void **state) {
	static const struct {
		const char *content, *user, *password;
	} t[] = {
		{"alice:s3cret\n", "alice", "s3cret"},
		{"alice:s3cret", "alice", "s3cret"},
		{"bob:pa:ss", "bob", "pa:ss"},
		{"carol:", "carol", ""},
		{"d@ve:p@ss w0rd!\n", "d@ve", "p@ss w0rd!"},
		{"eve: lead-and-trail \n", "eve", " lead-and-trail "},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *path = write_file("cred", t[i].content, strlen(t[i].content), 0600);
		char *user = NULL, *password = NULL, *err = NULL;
		int r = tr_proxy_read_credentials(path, true, &user, &password, &err);
		if (r != 0) {
			fail_msg("case %zu: %d (%s)", i, r, err ? err : "?");
		}
		assert_null(err);
		assert_string_equal(user, t[i].user);
		assert_string_equal(password, t[i].password);
		tr_proxy_credentials_wipe(user, password);
	}
	tr_proxy_credentials_wipe(NULL, NULL);
}

static void test_credentials_limit(void **state) {
	char line[TR_PROXY_CREDENTIALS_MAX + 8];
	char *user = NULL, *password = NULL, *err = NULL, *path;
	(void)state;

	/* exactly 93 bytes "u:ppp...", with and without the newline */
	memset(line, 'p', sizeof(line));
	line[0] = 'u';
	line[1] = ':';
	path = write_file("cred", line, TR_PROXY_CREDENTIALS_MAX, 0600);
	assert_int_equal(tr_proxy_read_credentials(path, true, &user, &password, &err), 0);
	assert_string_equal(user, "u");
	assert_int_equal(strlen(password), TR_PROXY_CREDENTIALS_MAX - 2);
	tr_proxy_credentials_wipe(user, password);
	line[TR_PROXY_CREDENTIALS_MAX] = '\n';
	path = write_file("cred", line, TR_PROXY_CREDENTIALS_MAX + 1, 0600);
	assert_int_equal(tr_proxy_read_credentials(path, true, &user, &password, &err), 0);
	assert_int_equal(strlen(password), TR_PROXY_CREDENTIALS_MAX - 2);
	tr_proxy_credentials_wipe(user, password);

	/* 94 bytes: too long, with or without the newline */
	user = password = (char *)"untouched";
	memset(line, 'p', sizeof(line));
	line[0] = 'u';
	line[1] = ':';
	path = write_file("cred", line, TR_PROXY_CREDENTIALS_MAX + 1, 0600);
	assert_int_equal(tr_proxy_read_credentials(path, true, &user, &password, &err), -EFBIG);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "93"));
	assert_null(strstr(err, "ppp"));
	assert_string_equal(user, "untouched");
	assert_string_equal(password, "untouched");
	free(err);
	line[TR_PROXY_CREDENTIALS_MAX + 1] = '\n';
	path = write_file("cred", line, TR_PROXY_CREDENTIALS_MAX + 2, 0600);
	assert_int_equal(tr_proxy_read_credentials(path, true, &user, &password, &err), -EFBIG);
	free(err);
	/* far too long */
	{
		char big[4096];
		memset(big, 'x', sizeof(big));
		big[0] = 'u';
		big[1] = ':';
		path = write_file("cred", big, sizeof(big), 0600);
		assert_int_equal(tr_proxy_read_credentials(path, true, &user, &password, &err),
			-EFBIG);
		free(err);
	}
}

static void test_credentials_bad(void **state) {
	static const struct {
		const char *content;
		size_t len; /* 0: strlen */
		const char *want;
	} t[] = {
		{"alicesecretpw\n", 0, "no ':'"},
		{":secretpw\n", 0, "user name is empty"},
		{":", 0, "user name is empty"},
		{"", 0, "is empty"},
		{"\n", 1, "is empty"},
		{"alice:secret\rpw\n", 0, "line break"},
		{"alice:secretpw\r\n", 0, "line break"},
		{"alice:secret\npw\n", 0, "line break"},
		{"alice:secretpw\n\n", 0, "line break"},
		{"alice:secret\0pw\n", 16, "NUL"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t len = t[i].len ? t[i].len : strlen(t[i].content);
		char *path = write_file("cred", t[i].content, len, 0600);
		char *user = (char *)"untouched", *password = (char *)"untouched", *err = NULL;
		int r = tr_proxy_read_credentials(path, true, &user, &password, &err);
		if (r != -EINVAL) {
			fail_msg("case %zu: got %d want -EINVAL", i, r);
		}
		assert_non_null(err);
		if (!strstr(err, t[i].want) || !strstr(err, path)) {
			fail_msg("case %zu: message '%s' lacks '%s' or the path", i, err,
				t[i].want);
		}
		if (strstr(err, "secret") || strstr(err, "alice")) {
			fail_msg("case %zu: message '%s' shows the content", i, err);
		}
		assert_string_equal(user, "untouched");
		assert_string_equal(password, "untouched");
		free(err);
	}
}

static void test_credentials_files(void **state) {
	char path[128];
	char *user = NULL, *password = NULL, *err = NULL;
	(void)state;

	/* missing */
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(tr_proxy_read_credentials(path, true, &user, &password, &err), -ENOENT);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	free(err);
	/* a directory */
	assert_int_equal(tr_proxy_read_credentials(dir, true, &user, &password, &err), -EISDIR);
	assert_non_null(strstr(err, "not a regular file"));
	free(err);
	/* a FIFO with no writer: refused at once, never waited on */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(tr_proxy_read_credentials(path, true, &user, &password, &err), -EBADFD);
	free(err);
	unlink(path);
	/* unreadable (root reads anything) */
	if (geteuid() != 0) {
		char *p = write_file("cred-noread", "a:b\n", 4, 0000);
		assert_int_equal(tr_proxy_read_credentials(p, true, &user, &password, &err),
			-EACCES);
		assert_non_null(strstr(err, p));
		free(err);
	}
}

static void test_credentials_mode(void **state) {
	static const struct {
		mode_t mode;
		bool check, warn;
	} t[] = {
		{0600, true, false},
		{0400, true, false},
		{0640, true, true},
		{0604, true, true},
		{0620, true, true},
		{0644, false, false}, /* a systemd credential is not judged */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *path = write_file("cred-mode", "alice:topsecret\n", 16, t[i].mode);
		char *user = NULL, *password = NULL, *err = NULL, *log;
		int r;

		capture();
		r = tr_proxy_read_credentials(path, t[i].check, &user, &password, &err);
		log = captured();
		assert_int_equal(r, 0);
		assert_string_equal(password, "topsecret");
		tr_proxy_credentials_wipe(user, password);
		if (t[i].warn) {
			char want[64];
			snprintf(want, sizeof(want), "(mode %04o)", (unsigned)t[i].mode);
			if (!strstr(log, "warning]: proxy credentials file") ||
				!strstr(log, path) || !strstr(log, want)) {
				fail_msg("case %zu: no warning in '%s'", i, log);
			}
		} else if (strstr(log, "warning]")) {
			fail_msg("case %zu: unexpected warning '%s'", i, log);
		}
		assert_null(strstr(log, "topsecret"));
		assert_null(strstr(log, "alice"));
	}
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_bypass),
		cmocka_unit_test(test_choose),
		cmocka_unit_test(test_choose_env_warnings),
		cmocka_unit_test(test_choose_getenv),
		cmocka_unit_test(test_credentials_good),
		cmocka_unit_test(test_credentials_limit),
		cmocka_unit_test(test_credentials_bad),
		cmocka_unit_test(test_credentials_files),
		cmocka_unit_test(test_credentials_mode),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
