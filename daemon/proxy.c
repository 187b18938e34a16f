/*
 * proxy.c — see proxy.h. The rules follow curl 7.88 (lib/noproxy.c, lib/url.c), plus
 * "*.example.com" and "host:port" exceptions (as Go's httpproxy has them) and no SOCKS or
 * https:// proxies (libwebsockets 4.1.6 only speaks CONNECT to an http:// proxy).
 *
 * Error texts never quote the address they refuse: it may hold a password.
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define HOST_MAX 253 /* a DNS name; an IPv6 literal is shorter */

/* *ret_err = a formatted sentence; returns -EINVAL, or -ENOMEM when it cannot be built. */
static int fail(char **ret_err, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char **ret_err, int err, const char *fmt, ...) {
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(ret_err, fmt, ap);
	va_end(ap);
	if (r < 0) {
		*ret_err = NULL;
		return -ENOMEM;
	}
	return err;
}

void tr_proxy_done(struct tr_proxy *p) {
	if (!p) {
		return;
	}
	free(p->host);
	p->host = NULL;
	p->port = 0;
}

static bool is_scheme_char(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '+' || c == '-' || c == '.';
}

static bool is_host_char(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '-' || c == '.' || c == '_';
}

/* Decimal 1..65535 from exactly n characters; -1 otherwise. */
static int parse_port(const char *s, size_t n) {
	int v = 0;

	if (n == 0 || n > 5) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return -1;
		}
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= 65535 ? v : -1;
}

/* Skip an optional "http://" (any case) and point *ret_rest after it. Other schemes are
 * refused, saying why; the scheme is quoted only when it is made of scheme characters. */
static int skip_scheme(const char *text, const char **ret_rest, char **ret_err) {
	const char *end = strstr(text, "://");
	size_t n;

	*ret_rest = text;
	if (!end) {
		return 0;
	}
	n = (size_t)(end - text);
	for (size_t i = 0; i < n; i++) {
		if (!is_scheme_char(text[i])) {
			return 0; /* not a scheme: "user:pw@host://" is refused later */
		}
	}
	if (n == 0) {
		return 0;
	}
	if (n == 4 && strncasecmp(text, "http", 4) == 0) {
		*ret_rest = end + 3;
		return 0;
	}
	if (n == 5 && strncasecmp(text, "https", 5) == 0) {
		return fail(ret_err, -EINVAL,
			"https:// proxies are not supported: the websocket library only tunnels "
			"through an http:// proxy (the tunnel still carries TLS end to end); use "
			"http://HOST:PORT");
	}
	if (n >= 5 && strncasecmp(text, "socks", 5) == 0) {
		return fail(ret_err, -EINVAL,
			"SOCKS proxies are not supported: the websocket library only tunnels "
			"through an http:// proxy; use http://HOST:PORT");
	}
	return fail(ret_err, -EINVAL, "unsupported proxy scheme '%.*s://': use http://HOST:PORT",
		(int)(n > 16 ? 16 : n), text);
}

/* The parser behind tr_proxy_parse. With strip_userinfo (an address from the environment)
 * a "user[:password]@" part is skipped and *ret_had_userinfo set; otherwise it is refused. */
static int parse_addr(const char *text, bool strip_userinfo, struct tr_proxy *ret,
	bool *ret_had_userinfo, char **ret_err) {
	const char *a, *at, *h, *colon;
	size_t hn, an;
	char host[HOST_MAX + 1];
	bool had_userinfo = false;
	int port, r;
	char *copy;

	if (!text || !*text) {
		return fail(ret_err, -EINVAL, "the proxy address is empty");
	}
	for (const char *p = text; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			return fail(ret_err, -EINVAL,
				"the proxy address contains white space or control characters");
		}
	}

	r = skip_scheme(text, &a, ret_err);
	if (r < 0) {
		return r;
	}

	/* The authority ends at the path, query or fragment. */
	an = strcspn(a, "/?#");
	at = NULL;
	for (const char *p = a; p < a + an; p++) {
		if (*p == '@') {
			at = p; /* the last one, as libwebsockets splits */
		}
	}
	if (at) {
		if (!strip_userinfo) {
			return fail(ret_err, -EINVAL,
				"refusing a user name or password in the proxy address: command "
				"lines, the environment and config files are visible to others; "
				"put USER:PASSWORD in a proxy-credentials-file (or the systemd "
				"credential 'proxy-credentials') instead");
		}
		had_userinfo = true;
		an -= (size_t)(at + 1 - a);
		a = at + 1;
	}
	if (a[an] == '?' || a[an] == '#') {
		return fail(ret_err, -EINVAL,
			"the proxy address must not have a query or fragment");
	}
	if (a[an] == '/' && a[an + 1] != '\0') {
		return fail(ret_err, -EINVAL, "the proxy address must not have a path (only '/')");
	}
	if (an == 0) {
		return fail(ret_err, -EINVAL, "the proxy address has no host");
	}

	if (a[0] == '[') {
		const char *close = memchr(a, ']', an);
		struct in6_addr a6;
		if (!close) {
			return fail(ret_err, -EINVAL, "unterminated '[' in the proxy address");
		}
		h = a + 1;
		hn = (size_t)(close - h);
		if (hn == 0 || hn > HOST_MAX) {
			return fail(ret_err, -EINVAL, "the proxy address has no valid host");
		}
		memcpy(host, h, hn);
		host[hn] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1) {
			return fail(ret_err, -EINVAL,
				"the proxy host in brackets is not an IPv6 address");
		}
		if (close + 1 == a + an) {
			return fail(ret_err, -EINVAL,
				"the proxy address needs a port: [ADDRESS]:PORT");
		}
		if (close[1] != ':') {
			return fail(ret_err, -EINVAL, "the proxy address has text after ']'");
		}
		colon = close + 1;
	} else {
		size_t colons = 0;
		colon = NULL;
		for (const char *p = a; p < a + an; p++) {
			if (*p == ':') {
				colons++;
				colon = p;
			}
		}
		if (colons > 1) {
			return fail(ret_err, -EINVAL,
				"an IPv6 proxy address must be written in brackets: "
				"[ADDRESS]:PORT");
		}
		if (!colon) {
			return fail(ret_err, -EINVAL, "the proxy address needs a port: HOST:PORT");
		}
		h = a;
		hn = (size_t)(colon - a);
		if (hn == 0) {
			return fail(ret_err, -EINVAL, "the proxy address has no host");
		}
		if (hn > HOST_MAX) {
			return fail(ret_err, -EINVAL, "the proxy host name is too long");
		}
		for (size_t i = 0; i < hn; i++) {
			if (!is_host_char(h[i])) {
				return fail(ret_err, -EINVAL,
					"the proxy host name may only hold letters, digits, "
					"'-', '.' and '_'");
			}
		}
		memcpy(host, h, hn);
		host[hn] = '\0';
	}
	port = parse_port(colon + 1, (size_t)(a + an - (colon + 1)));
	if (port < 0) {
		return fail(ret_err, -EINVAL, "the proxy port must be a number in 1..65535");
	}
	copy = strdup(host);
	if (!copy) {
		*ret_err = NULL;
		return -ENOMEM;
	}
	*ret = (struct tr_proxy){.host = copy, .port = port};
	if (ret_had_userinfo) {
		*ret_had_userinfo = had_userinfo;
	}
	return 0;
}

int tr_proxy_parse(const char *text, struct tr_proxy *ret, char **ret_err) {
	return parse_addr(text, false, ret, NULL, ret_err);
}

int tr_proxy_format(const struct tr_proxy *p, char *buf, size_t size) {
	int n;

	if (!p || !p->host) {
		if (size > 0) {
			buf[0] = '\0';
		}
		return -EINVAL;
	}
	n = snprintf(buf, size, strchr(p->host, ':') ? "[%s]:%d" : "%s:%d", p->host, p->port);
	if (n < 0 || (size_t)n >= size) {
		if (size > 0) {
			buf[0] = '\0';
		}
		return -ENOSPC;
	}
	return n;
}

/* ---- NO_PROXY ---- */

struct ip {
	int family; /* 0: not an IP literal */
	unsigned char b[16];
};

/* An IPv4 or IPv6 literal from n characters (no brackets). */
static bool parse_ip(const char *s, size_t n, struct ip *ret) {
	char buf[64];

	if (n == 0 || n >= sizeof(buf)) {
		return false;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, ret->b) == 1) {
		ret->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, buf, ret->b) == 1) {
		ret->family = AF_INET6;
		return true;
	}
	return false;
}

/* Do a and b share their first bits bits? */
static bool prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits) {
	unsigned bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, bytes) != 0) {
		return false;
	}
	if (rest == 0) {
		return true;
	}
	return ((a[bytes] ^ b[bytes]) & (0xffu << (8 - rest)) & 0xffu) == 0;
}

/* Does one token (t, n; not empty) exempt the host? host is lower-case-insensitive text
 * without brackets or a trailing dot; ip is its address when it is an IP literal. */
static bool token_matches(const char *t, size_t n, const char *host, size_t hn,
	const struct ip *ip, int port) {
	const char *v = t, *slash;
	size_t vn = n;
	struct ip tip;

	if (n == 1 && t[0] == '*') {
		return true;
	}
	/* Split off ":port": after ']' for a bracketed address, else at a single ':' (an IPv6
	 * literal without brackets has several and no port). */
	if (t[0] == '[') {
		const char *close = memchr(t, ']', n);
		if (!close) {
			return false;
		}
		v = t + 1;
		vn = (size_t)(close - v);
		if (close + 1 < t + n) {
			const char *after = close + 1;
			size_t an = (size_t)(t + n - after);
			if (after[0] == ':') {
				if (parse_port(after + 1, an - 1) != port) {
					return false;
				}
			} else if (after[0] == '/') {
				/* "[fd00::]/8": keep the prefix; ']' is dropped below */
				vn += an + 1;
			} else {
				return false;
			}
		}
	} else {
		const char *colon = memchr(t, ':', n);
		if (colon && !memchr(colon + 1, ':', (size_t)(t + n - colon - 1))) {
			if (parse_port(colon + 1, (size_t)(t + n - colon - 1)) != port) {
				return false;
			}
			vn = (size_t)(colon - t);
		}
	}
	if (vn == 0) {
		return false;
	}

	/* An address or a prefix. */
	slash = memchr(v, '/', vn);
	if (slash) {
		const char *addr_end = slash;
		size_t pn = (size_t)(v + vn - slash - 1);
		int bits;
		if (t[0] == '[' && addr_end > v && addr_end[-1] == ']') {
			addr_end--;
		}
		if (!parse_ip(v, (size_t)(addr_end - v), &tip)) {
			return false;
		}
		bits = pn == 0 || pn > 3 ? -1 : 0;
		for (size_t i = 0; bits >= 0 && i < pn; i++) {
			char c = slash[1 + i];
			bits = c >= '0' && c <= '9' ? bits * 10 + (c - '0') : -1;
		}
		if (bits < 0 || bits > (tip.family == AF_INET ? 32 : 128)) {
			return false;
		}
		return ip->family == tip.family && prefix_equal(ip->b, tip.b, (unsigned)bits);
	}
	if (parse_ip(v, vn, &tip)) {
		return ip->family == tip.family &&
			memcmp(ip->b, tip.b, tip.family == AF_INET ? 4 : 16) == 0;
	}
	if (t[0] == '[') {
		return false; /* brackets around something that is not an address */
	}

	/* A name: "*.example.com" = ".example.com"; one leading and one trailing dot dropped. */
	if (vn >= 2 && v[0] == '*' && v[1] == '.') {
		v++;
		vn--;
	}
	if (vn > 0 && v[0] == '.') {
		v++;
		vn--;
	}
	if (vn > 0 && v[vn - 1] == '.') {
		vn--;
	}
	if (vn == 0 || ip->family != 0) {
		return false; /* names never match an address: nothing is resolved */
	}
	if (hn == vn) {
		return strncasecmp(host, v, vn) == 0;
	}
	return hn > vn && host[hn - vn - 1] == '.' && strncasecmp(host + hn - vn, v, vn) == 0;
}

bool tr_proxy_bypass(const char *no_proxy, const char *host, int port) {
	static const char seps[] = ", \t\r\n";
	char h[HOST_MAX + 3];
	size_t hn;
	struct ip ip = {0};
	const char *p;

	if (!no_proxy || !*no_proxy || !host) {
		return false;
	}
	hn = strlen(host);
	if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']') {
		host++;
		hn -= 2;
	}
	if (hn > 0 && host[hn - 1] == '.') {
		hn--;
	}
	if (hn == 0 || hn > HOST_MAX) {
		return false;
	}
	memcpy(h, host, hn);
	h[hn] = '\0';
	(void)parse_ip(h, hn, &ip);

	for (p = no_proxy; *p;) {
		size_t n;
		p += strspn(p, seps);
		n = strcspn(p, seps);
		if (n > 0 && token_matches(p, n, h, hn, &ip, port)) {
			return true;
		}
		p += n;
	}
	return false;
}

/* ---- choosing ---- */

static const char *const env_names[] = {"https_proxy", "HTTPS_PROXY", "http_proxy"};
#define WARN_USERINFO(i) (1u << (i))
#define WARN_INVALID(i) (1u << (4 + (i)))
static unsigned warned;

void tr_proxy_reset_warnings(void) {
	warned = 0;
}

/* The proxy from the environment variable env_names[i]: 1 and *ret, or 0 when it is unset,
 * empty or unusable (warned), or -ENOMEM. */
static int from_env(tr_proxy_getenv_cb get, size_t i, struct tr_proxy *ret) {
	const char *v = get(env_names[i]);
	bool had_userinfo = false;
	char *err = NULL;
	int r;

	if (!v || !*v) {
		return 0;
	}
	r = parse_addr(v, true, ret, &had_userinfo, &err);
	if (r == -ENOMEM) {
		return r;
	}
	if (r < 0) {
		if (!(warned & WARN_INVALID(i))) {
			warned |= WARN_INVALID(i);
			tr_log_warning("environment: %s: %s, ignoring it", env_names[i], err);
		}
		free(err);
		return 0;
	}
	if (had_userinfo && !(warned & WARN_USERINFO(i))) {
		warned |= WARN_USERINFO(i);
		tr_log_warning("environment: %s holds a user name or password, ignoring them (they "
			       "are never sent): put USER:PASSWORD in a proxy-credentials-file",
			env_names[i]);
	}
	return 1;
}

static const char *real_getenv(const char *name) {
	return getenv(name);
}

int tr_proxy_choose(const char *configured, const char *configured_no_proxy, bool tls,
	const char *host, int port, tr_proxy_getenv_cb get, struct tr_proxy *ret,
	const char **ret_source, char **ret_err) {
	struct tr_proxy p = {0};
	const char *source = NULL, *list;
	int r;

	assert(host);
	if (!get) {
		get = real_getenv;
	}
	if (configured && strcasecmp(configured, "none") == 0) {
		goto direct;
	}
	if (configured) {
		r = tr_proxy_parse(configured, &p, ret_err);
		if (r < 0) {
			return r;
		}
		source = "config";
	} else {
		size_t first = tls ? 0 : 2, last = tls ? 1 : 2;
		for (size_t i = first; i <= last && !source; i++) {
			r = from_env(get, i, &p);
			if (r < 0) {
				*ret_err = NULL;
				return r;
			}
			if (r > 0) {
				source = env_names[i];
			}
		}
		if (!source) {
			goto direct;
		}
	}

	list = configured_no_proxy;
	if (!list) {
		list = get("no_proxy");
		if (!list || !*list) {
			list = get("NO_PROXY");
		}
	}
	if (tr_proxy_bypass(list, host, port)) {
		tr_proxy_done(&p);
		goto direct;
	}
	*ret = p;
	*ret_source = source;
	return 0;
direct:
	*ret = (struct tr_proxy){0};
	*ret_source = NULL;
	return 0;
}

/* ---- the credentials file ---- */

int tr_proxy_read_credentials(const char *path, bool check_mode, char **ret_user,
	char **ret_password, char **ret_err) {
	/* one more byte than a full line with its "\n", to see that the file is longer */
	char buf[TR_PROXY_CREDENTIALS_MAX + 2];
	char *user = NULL, *password = NULL;
	const char *colon;
	size_t len = 0;
	struct stat st;
	int fd, r;

	/* O_NONBLOCK: a FIFO must not block the loop waiting for a writer. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		return fail(ret_err, r, "proxy credentials file %s: %s", path, strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return fail(ret_err, r, "proxy credentials file %s: %s", path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(ret_err, S_ISDIR(st.st_mode) ? -EISDIR : -EBADFD,
			"proxy credentials file %s: not a regular file", path);
	}
	while (len < sizeof(buf)) {
		ssize_t k = read(fd, buf + len, sizeof(buf) - len);
		if (k < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = -errno;
			r = fail(ret_err, r, "proxy credentials file %s: %s", path, strerror(-r));
			goto out;
		}
		if (k == 0) {
			break;
		}
		len += (size_t)k;
	}
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
	}
	if (len > TR_PROXY_CREDENTIALS_MAX) {
		r = fail(ret_err, -EFBIG,
			"proxy credentials file %s: USER:PASSWORD is longer than %d bytes, more "
			"than the websocket library can send",
			path, TR_PROXY_CREDENTIALS_MAX);
		goto out;
	}
	if (len == 0) {
		r = fail(ret_err, -EINVAL, "proxy credentials file %s is empty (one line "
			"USER:PASSWORD expected)", path);
		goto out;
	}
	if (memchr(buf, '\r', len) || memchr(buf, '\n', len) || memchr(buf, '\0', len)) {
		r = fail(ret_err, -EINVAL, "proxy credentials file %s holds a line break or NUL "
			"(one line USER:PASSWORD expected)", path);
		goto out;
	}
	colon = memchr(buf, ':', len);
	if (!colon) {
		r = fail(ret_err, -EINVAL, "proxy credentials file %s has no ':' (one line "
			"USER:PASSWORD expected)", path);
		goto out;
	}
	if (colon == buf) {
		r = fail(ret_err, -EINVAL, "proxy credentials file %s: the user name is empty",
			path);
		goto out;
	}
	user = strndup(buf, (size_t)(colon - buf));
	password = strndup(colon + 1, len - (size_t)(colon + 1 - buf));
	if (!user || !password) {
		tr_proxy_credentials_wipe(user, password);
		*ret_err = NULL;
		r = -ENOMEM;
		goto out;
	}
	/* Like the token file: still used, but others could read it. A systemd credential is
	 * the service's own and is not judged. */
	if (check_mode && (st.st_mode & 077)) {
		tr_log_warning("proxy credentials file %s is readable or writable by group or "
			       "others (mode %04o): anyone who can read it can use the proxy as "
			       "you; chmod 600 it",
			path, (unsigned)(st.st_mode & 07777));
	}
	*ret_user = user;
	*ret_password = password;
	r = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return r;
}

void tr_proxy_credentials_wipe(char *user, char *password) {
	if (user) {
		explicit_bzero(user, strlen(user));
		free(user);
	}
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
}
