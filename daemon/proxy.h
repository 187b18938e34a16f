/*
 * proxy.h — which HTTP proxy an upstream connection goes through: parsing a proxy address,
 * the NO_PROXY exception list, the precedence between the configuration and the
 * environment, and the proxy credentials file.
 *
 * Pure apart from reading the credentials file and the daemon log (warnings about the
 * environment and the file's mode); its one global remembers which environment warnings
 * were given. It does not depend on libwebsockets, libcurl or libuv, resolves no names and
 * never logs or echoes a proxy's credentials.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* libwebsockets 4.1.6 base64-encodes "user:password" through a 96-byte buffer
 * (lws_set_proxy), so longer credentials cannot be sent on the websocket. */
#define TR_PROXY_CREDENTIALS_MAX 93

/* An HTTP proxy: a host name or an IP literal (no brackets), and a port in 1..65535.
 * host NULL means "no proxy" (connect directly). */
struct tr_proxy {
	char *host;
	int port;
};

/* Frees host and resets *p to "no proxy". Accepts NULL and an already cleared proxy. */
void tr_proxy_done(struct tr_proxy *p);

/*
 * Parse "http://HOST:PORT", "http://HOST:PORT/", "HOST:PORT" or "[IPv6]:PORT" (the scheme is
 * matched case-insensitively). The port is required. Refused, with a message on why: a user
 * or password in the address (the message never repeats it), https:// and socks*:// (the
 * websocket library only tunnels through an http:// proxy), any path but "/", a query, an
 * empty or malformed host, an IPv6 address without brackets, white space.
 * Returns 0 and fills *ret (host malloc'd; free with tr_proxy_done), or -EINVAL with
 * *ret_err a malloc'd English sentence (the caller frees it), or -ENOMEM (*ret_err NULL).
 */
int tr_proxy_parse(const char *text, struct tr_proxy *ret, char **ret_err);

/* "host:port", or "[v6]:port" for an IPv6 host, into buf. Returns the length, or -ENOSPC
 * (buf holds "" when size > 0), or -EINVAL for a proxy without a host. */
int tr_proxy_format(const struct tr_proxy *p, char *buf, size_t size);

/*
 * Does the NO_PROXY list no_proxy exempt host:port (host: a name or an IP literal, brackets
 * tolerated)? Tokens are separated by ',' or blanks and compared case-insensitively; empty
 * tokens are skipped.
 *  - "*" as a token exempts every host.
 *  - A leading and a trailing '.' are ignored, and "*.example.com" means ".example.com".
 *  - A name token matches a name host exactly or as a suffix at a label boundary:
 *    "example.com" matches "example.com" and "a.example.com", never "badexample.com".
 *  - IP-literal tokens ("10.1.2.3", "::1", "[::1]") match an IP-literal host that is the
 *    same address; CIDR tokens ("10.0.0.0/8", "fd00::/8") match an address in that prefix.
 *    Names are never resolved, so a name host never matches an IP token and an IP host
 *    never matches a name token.
 *  - "token:port" ("example.com:443", "[::1]:8080", "10.1.2.3:80") matches only that port.
 *  - Loopback hosts are not exempt unless the list says so (like curl).
 * Malformed tokens (a bad prefix length or port) match nothing. NULL or "": false.
 */
bool tr_proxy_bypass(const char *no_proxy, const char *host, int port);

/* Reads an environment variable (getenv, or a table in tests). */
typedef const char *(*tr_proxy_getenv_cb)(const char *name);

/*
 * Choose the proxy for the upstream endpoint host:port (tls: wss:// or https://).
 *  1. configured (the `proxy` key) wins: "none" (any case) means no proxy and the
 *     environment is not looked at; otherwise it is parsed as by tr_proxy_parse.
 *  2. Else the environment: https_proxy, then HTTPS_PROXY for a TLS endpoint; http_proxy
 *     (lower case only, like curl: HTTP_PROXY can be set by a CGI request header) for a plain
 *     one. all_proxy is not honoured. A variable that is unset or empty is skipped; one that
 *     does not parse is skipped with a warning; a user or password in it is dropped with a
 *     warning (neither is ever sent or logged). Each warning is logged once per variable
 *     and process.
 *  3. A proxy found in 1 or 2 is then bypassed when the exception list exempts host:port
 *     (tr_proxy_bypass): configured_no_proxy (the `no-proxy` key) when not NULL, else
 *     no_proxy, else NO_PROXY (the first one set and not empty).
 * get NULL means getenv.
 * Returns 0 and fills *ret (host NULL: connect directly; free with tr_proxy_done) and
 * *ret_source: a static name of where the proxy came from ("config", "https_proxy",
 * "HTTPS_PROXY", "http_proxy"), or NULL when *ret is direct. Returns -EINVAL when
 * configured does not parse (*ret_err as for tr_proxy_parse), or -ENOMEM.
 */
int tr_proxy_choose(const char *configured, const char *configured_no_proxy, bool tls,
	const char *host, int port, tr_proxy_getenv_cb get, struct tr_proxy *ret,
	const char **ret_source, char **ret_err);

/* Forget which environment warnings tr_proxy_choose already logged (for tests). */
void tr_proxy_reset_warnings(void);

/*
 * Read the proxy credentials file: one line "USER:PASSWORD" (one trailing "\n" allowed),
 * USER not empty and without ':', at most TR_PROXY_CREDENTIALS_MAX bytes, no CR, LF or NUL
 * inside. The file is small and local and is read synchronously; anything but a regular file
 * is refused without waiting on it. When check_mode is true (a file the user named, not a
 * systemd credential) and the file has group or other permission bits, a warning is logged
 * (the file is still used). The content is never logged nor put in *ret_err.
 * Returns 0 with *ret_user and *ret_password malloc'd (release both with
 * tr_proxy_credentials_wipe), or a negative errno (-ENOENT, -EACCES, -EISDIR, -EBADFD,
 * -EFBIG too long, -EINVAL malformed, -ENOMEM) with *ret_err a malloc'd sentence naming
 * the file (NULL on -ENOMEM).
 */
int tr_proxy_read_credentials(const char *path, bool check_mode, char **ret_user,
	char **ret_password, char **ret_err);

/* Overwrite and free what tr_proxy_read_credentials returned. Either may be NULL. */
void tr_proxy_credentials_wipe(char *user, char *password);
