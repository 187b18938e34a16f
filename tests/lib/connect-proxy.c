/*
 * connect-proxy.c — trt-connect-proxy, the HTTP CONNECT proxy of the proxy tests (issue #18).
 * One thread, one poll() loop, non-blocking sockets, any number of tunnels at once.
 *
 *   trt-connect-proxy [--listen HOST] [--port N] [--port-file FILE] [--log FILE]
 *                     [--require-auth USER:PASS] [--refuse CODE]
 *
 * It reads a request head (up to 8 KiB, else 431), takes only `CONNECT host:port HTTP/1.x`
 * (else 405, or 400 when malformed), checks Basic credentials with --require-auth (407),
 * answers every CONNECT with CODE under --refuse, connects to the target (loopback addresses
 * only, so that no test can reach the network through it: others get 502, as do failed
 * connects) and answers `HTTP/1.1 200 Connection established` in one write (libwebsockets
 * reads the reply with a single recv), then relays both ways; bytes that came after the head
 * go to the target first. An EOF from one side shuts the other side down for writing; the
 * tunnel closes when both directions are done, or on an error.
 *
 * Each tunnel is logged when it opens, and each request that got an answer once it
 * finishes, one line each, flushed:
 *   TUNNEL TARGET user=USER|-
 *   METHOD TARGET user=USER|- status=CODE up=CLIENT_TO_TARGET_BYTES down=TARGET_TO_CLIENT_BYTES
 * USER is the name in the Proxy-Authorization header, whether or not it was accepted. The
 * password and the payload are never logged. Diagnostics go to stderr. Once listening it
 * prints `trt-connect-proxy listening on HOST:PORT` on stdout (and writes PORT to the port
 * file through a rename). SIGTERM or SIGINT: close everything and exit 0.
 *
 * A test program: it may block on a loopback connect or on getaddrinfo.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define BUF_SIZE 65536
#define MAX_TUNNELS 512
#define LINGER_MS 2000      /* after an error reply: wait this long for the client's EOF */
#define CONNECT_TIMEOUT_S 5 /* a connect to a loopback port whose backlog is full */

/* One direction of a tunnel: read from one socket, not yet written to the other. */
struct flow {
	char buf[BUF_SIZE];
	size_t off, len;
	bool eof;       /* the source said EOF */
	bool shut;      /* the destination is shut down for writing */
	uint64_t bytes; /* written to the destination */
};

enum tstate {
	T_HEAD,  /* reading the request head */
	T_RELAY, /* 200 sent (or being sent); relaying */
	T_REPLY, /* an error reply being sent; then wait for the client's EOF and close */
};

struct tunnel {
	int cfd, tfd; /* client, target (-1: none) */
	enum tstate state;
	bool dead;
	int status;
	char head[HEAD_MAX + 1];
	size_t head_len;
	char reply[256]; /* our answer, sent before any relayed byte */
	size_t reply_off, reply_len;
	int64_t linger_deadline;                /* T_REPLY once the reply is out */
	char method[16], target[272], user[72]; /* for the log line, printable ASCII */
	struct flow up, down;                   /* client → target, target → client */
};

struct proxy {
	int lfd, sfd;
	FILE *log;
	const char *auth; /* USER:PASS or NULL */
	int refuse;       /* 0 or the status every CONNECT gets */
	struct tunnel **t;
	size_t n;
	struct pollfd *pfd; /* 2 + 2 per tunnel */
};

static int64_t now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copy s (at most n bytes of it) as printable ASCII: anything else becomes '?'. */
static void copy_printable(char *dst, size_t size, const char *s, size_t n) {
	size_t i;
	for (i = 0; i + 1 < size && i < n && s[i]; i++) {
		dst[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
	}
	dst[i] = '\0';
}

static const char *reason(int status) {
	switch (status) {
	case 200:
		return "Connection established";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 405:
		return "Method Not Allowed";
	case 407:
		return "Proxy Authentication Required";
	case 431:
		return "Request Header Fields Too Large";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Refused";
	}
}

/* ---- tunnels ---- */

static void log_tunnel(struct proxy *p, const struct tunnel *t) {
	if (t->status == 0) {
		return; /* no complete request: nothing was answered */
	}
	fprintf(p->log, "%s %s user=%s status=%d up=%llu down=%llu\n",
		t->method[0] ? t->method : "-", t->target[0] ? t->target : "-",
		t->user[0] ? t->user : "-", t->status, (unsigned long long)t->up.bytes,
		(unsigned long long)t->down.bytes);
	fflush(p->log);
}

static void tunnel_free(struct proxy *p, struct tunnel *t) {
	log_tunnel(p, t);
	if (t->cfd >= 0) {
		close(t->cfd);
	}
	if (t->tfd >= 0) {
		close(t->tfd);
	}
	free(t);
}

/* Answer with an error status and close once it is out. */
static void reply_error(struct tunnel *t, int status) {
	const char *extra = "";
	if (status == 407) {
		extra = "Proxy-Authenticate: Basic realm=\"trt\"\r\n";
	} else if (status == 405) {
		extra = "Allow: CONNECT\r\n";
	}
	t->status = status;
	t->state = T_REPLY;
	t->reply_off = 0;
	t->reply_len = (size_t)snprintf(t->reply, sizeof(t->reply),
		"HTTP/1.1 %d %s\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n", status,
		reason(status), extra);
}

static int b64_value(char c) {
	if (c >= 'A' && c <= 'Z') {
		return c - 'A';
	}
	if (c >= 'a' && c <= 'z') {
		return c - 'a' + 26;
	}
	if (c >= '0' && c <= '9') {
		return c - '0' + 52;
	}
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decode base64 text (padding optional) into out, NUL-terminated. -1 when it is not base64
 * or does not fit. */
static int b64_decode(const char *in, size_t n, char *out, size_t size) {
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;
	while (n && in[n - 1] == '=') {
		n--;
	}
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(in[i]);
		if (v < 0) {
			return -1;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= size) {
				return -1;
			}
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return (int)o;
}

/* A Proxy-Authorization value: remember the user; true when it matches --require-auth. */
static bool check_credentials(const struct proxy *p, struct tunnel *t, const char *value) {
	char creds[512], *colon;
	const char *b64;
	size_t n;
	bool ok;

	value += strspn(value, " \t");
	/* the scheme is case-insensitive: libwebsockets sends "basic", curl "Basic" */
	if (strncasecmp(value, "basic", 5) != 0 || (value[5] != ' ' && value[5] != '\t')) {
		return false;
	}
	b64 = value + 5 + strspn(value + 5, " \t");
	n = strcspn(b64, " \t");
	if (b64_decode(b64, n, creds, sizeof(creds)) < 0) {
		return false;
	}
	colon = strchr(creds, ':');
	copy_printable(t->user, sizeof(t->user), creds, colon ? (size_t)(colon - creds) : 0);
	ok = colon && p->auth && strcmp(creds, p->auth) == 0;
	explicit_bzero(creds, sizeof(creds));
	return ok;
}

static bool is_loopback(const struct sockaddr *sa) {
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* Split HOST:PORT or [V6]:PORT (in place). */
static int split_target(char *target, char **ret_host, char **ret_port) {
	char *host, *port, *end;
	long v;
	if (target[0] == '[') {
		end = strchr(target, ']');
		if (!end || end[1] != ':') {
			return -EINVAL;
		}
		*end = '\0';
		host = target + 1;
		port = end + 2;
	} else {
		end = strrchr(target, ':');
		if (!end || end == target || memchr(target, ':', (size_t)(end - target))) {
			return -EINVAL;
		}
		*end = '\0';
		host = target;
		port = end + 1;
	}
	errno = 0;
	v = strtol(port, &end, 10);
	if (!*port || *end || errno || v < 1 || v > 65535 || !*host) {
		return -EINVAL;
	}
	*ret_host = host;
	*ret_port = port;
	return 0;
}

/* A blocking connect to the first loopback address of host that answers; the socket is then
 * made non-blocking. Returns it or -errno. */
static int connect_target(const char *host, const char *port) {
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct timeval tv = {.tv_sec = CONNECT_TIMEOUT_S};
	struct addrinfo *res = NULL;
	int fd = -1, err = -EHOSTUNREACH, g;
	bool tried = false;

	g = getaddrinfo(host, port, &hints, &res);
	if (g != 0) {
		fprintf(stderr, "trt-connect-proxy: resolving %s: %s\n", host, gai_strerror(g));
		return -EHOSTUNREACH;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if (!is_loopback(ai->ai_addr)) {
			fprintf(stderr,
				"trt-connect-proxy: %s is not a loopback address, refused\n", host);
			continue;
		}
		tried = true;
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		/* bounds the connect as well */
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
			fcntl(fd, F_SETFL, O_NONBLOCK) == 0) {
			break;
		}
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (!tried) {
		return -EPERM;
	}
	if (fd < 0) {
		fprintf(stderr, "trt-connect-proxy: connecting to %s port %s: %s\n", host, port,
			strerror(-err));
		return err;
	}
	return fd;
}

/* A complete head of head_end bytes is in t->head: answer it. */
static void handle_request(struct proxy *p, struct tunnel *t, size_t head_end) {
	char *line, *save = NULL, *method, *target, *version, *host, *port, *hdr;
	char target_copy[sizeof(t->target)];
	bool authed = false;
	size_t extra = t->head_len - head_end;
	int fd;

	t->head[head_end - 2] = '\0'; /* ends the last header line's text */
	line = t->head;
	hdr = strstr(line, "\r\n");
	if (hdr) {
		*hdr = '\0';
		hdr += 2;
	}
	method = strtok_r(line, " ", &save);
	target = method ? strtok_r(NULL, " ", &save) : NULL;
	version = target ? strtok_r(NULL, " ", &save) : NULL;
	copy_printable(t->method, sizeof(t->method), method ? method : "-", SIZE_MAX);
	copy_printable(t->target, sizeof(t->target), target ? target : "-", SIZE_MAX);
	if (!version || strtok_r(NULL, " ", &save) || strncmp(version, "HTTP/1.", 7) != 0) {
		reply_error(t, 400);
		return;
	}
	if (strcmp(method, "CONNECT") != 0) {
		reply_error(t, 405);
		return;
	}
	for (char *h = hdr, *next; h && *h; h = next) {
		char *colon;
		next = strstr(h, "\r\n");
		if (next) {
			*next = '\0';
			next += 2;
		}
		colon = strchr(h, ':');
		if (colon && (size_t)(colon - h) == strlen("Proxy-Authorization") &&
			strncasecmp(h, "Proxy-Authorization", (size_t)(colon - h)) == 0) {
			authed = check_credentials(p, t, colon + 1);
		}
	}
	if (p->auth && !authed) {
		reply_error(t, 407);
		return;
	}
	if (p->refuse) {
		reply_error(t, p->refuse);
		return;
	}
	if (strlen(target) >= sizeof(target_copy)) {
		reply_error(t, 400);
		return;
	}
	memcpy(target_copy, target, strlen(target) + 1);
	if (split_target(target_copy, &host, &port) < 0) {
		reply_error(t, 400);
		return;
	}
	fd = connect_target(host, port);
	if (fd < 0) {
		reply_error(t, 502);
		return;
	}
	t->tfd = fd;
	/* whatever followed the head goes to the target first */
	memcpy(t->up.buf, t->head + head_end, extra);
	t->up.len = extra;
	t->status = 200;
	t->state = T_RELAY;
	/* a tunnel can stay open for the whole test (the websocket's): say so at once too */
	fprintf(p->log, "TUNNEL %s user=%s\n", target, t->user[0] ? t->user : "-");
	fflush(p->log);
	t->reply_len = (size_t)snprintf(
		t->reply, sizeof(t->reply), "HTTP/1.1 200 %s\r\n\r\n", reason(200));
}

/* Bytes a flow holds. */
static size_t flow_held(const struct flow *f) {
	return f->len - f->off;
}

/* Read into a flow from fd: <0 on error, 0 at EOF, else the count (or 1 when nothing came). */
static ssize_t flow_read(int fd, struct flow *f) {
	ssize_t k;
	if (f->off) {
		memmove(f->buf, f->buf + f->off, f->len - f->off);
		f->len -= f->off;
		f->off = 0;
	}
	k = recv(fd, f->buf + f->len, BUF_SIZE - f->len, 0);
	if (k < 0) {
		return errno == EAGAIN || errno == EINTR ? 1 : -1;
	}
	if (k == 0) {
		f->eof = true;
	}
	f->len += (size_t)k;
	return k;
}

/* Write what a flow holds to fd: <0 on error. */
static int flow_write(int fd, struct flow *f) {
	ssize_t k = send(fd, f->buf + f->off, f->len - f->off, MSG_NOSIGNAL);
	if (k < 0) {
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	}
	f->off += (size_t)k;
	f->bytes += (uint64_t)k;
	if (f->off == f->len) {
		f->off = f->len = 0;
	}
	return 0;
}

/* Send what is left of our reply: <0 on error, 1 once all of it is out. */
static int reply_write(struct tunnel *t) {
	ssize_t k;
	if (t->reply_off == t->reply_len) {
		return 1;
	}
	k = send(t->cfd, t->reply + t->reply_off, t->reply_len - t->reply_off, MSG_NOSIGNAL);
	if (k < 0) {
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	}
	t->reply_off += (size_t)k;
	return t->reply_off == t->reply_len;
}

static bool reply_pending(const struct tunnel *t) {
	return t->reply_off < t->reply_len;
}

static void step_head(struct proxy *p, struct tunnel *t) {
	ssize_t k = recv(t->cfd, t->head + t->head_len, HEAD_MAX - t->head_len, 0);
	char *end;
	if (k < 0) {
		t->dead = errno != EAGAIN && errno != EINTR;
		return;
	}
	if (k == 0) {
		t->dead = true; /* gone before its request was complete */
		return;
	}
	t->head_len += (size_t)k;
	t->head[t->head_len] = '\0';
	end = memmem(t->head, t->head_len, "\r\n\r\n", 4);
	if (end) {
		handle_request(p, t, (size_t)(end + 4 - t->head));
	} else if (t->head_len == HEAD_MAX) {
		reply_error(t, 431);
	}
}

static void step_reply(struct tunnel *t, short crev) {
	char sink[4096];
	if ((crev & (POLLOUT | POLLERR | POLLHUP)) && reply_pending(t)) {
		int r = reply_write(t);
		if (r < 0) {
			t->dead = true;
			return;
		}
		if (r == 1) {
			(void)shutdown(t->cfd, SHUT_WR);
			t->linger_deadline = now_ms() + LINGER_MS;
		}
	}
	/* what the client sends meanwhile is dropped; its EOF ends the tunnel */
	if ((crev & (POLLIN | POLLERR | POLLHUP)) && !reply_pending(t)) {
		ssize_t k = recv(t->cfd, sink, sizeof(sink), 0);
		if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
			t->dead = true;
		}
	}
	if (!reply_pending(t) && now_ms() >= t->linger_deadline) {
		t->dead = true;
	}
}

static void step_relay(struct tunnel *t, short crev, short trev) {
	const short in = POLLIN | POLLHUP | POLLERR, out = POLLOUT | POLLHUP | POLLERR;
	bool err = false;

	if ((crev & in) && !t->up.eof && flow_held(&t->up) < BUF_SIZE) {
		err = err || flow_read(t->cfd, &t->up) < 0;
	}
	if ((trev & in) && !t->down.eof && flow_held(&t->down) < BUF_SIZE) {
		err = err || flow_read(t->tfd, &t->down) < 0;
	}
	if (crev & out) {
		int r = reply_write(t);
		err = err || r < 0;
		if (r == 1 && t->down.off < t->down.len) {
			err = err || flow_write(t->cfd, &t->down) < 0;
		}
	}
	if ((trev & out) && t->up.off < t->up.len) {
		err = err || flow_write(t->tfd, &t->up) < 0;
	}
	/* an EOF travels on once what came before it is written */
	if (t->up.eof && t->up.off == t->up.len && !t->up.shut) {
		(void)shutdown(t->tfd, SHUT_WR);
		t->up.shut = true;
	}
	if (t->down.eof && t->down.off == t->down.len && !reply_pending(t) && !t->down.shut) {
		(void)shutdown(t->cfd, SHUT_WR);
		t->down.shut = true;
	}
	t->dead = err || (t->up.shut && t->down.shut);
}

/* What to poll for on the client's and the target's socket. */
static void tunnel_events(const struct tunnel *t, struct pollfd *c, struct pollfd *g) {
	short ce = 0, te = 0;
	switch (t->state) {
	case T_HEAD:
		ce = POLLIN;
		break;
	case T_REPLY:
		ce = reply_pending(t) ? POLLOUT : POLLIN;
		break;
	case T_RELAY:
		if (!t->up.eof && flow_held(&t->up) < BUF_SIZE) {
			ce |= POLLIN;
		}
		if (reply_pending(t) || t->down.off < t->down.len) {
			ce |= POLLOUT;
		}
		if (!t->down.eof && flow_held(&t->down) < BUF_SIZE) {
			te |= POLLIN;
		}
		if (t->up.off < t->up.len) {
			te |= POLLOUT;
		}
		break;
	}
	/* a socket we want nothing from is left out, so that its HUP cannot spin the loop */
	c->fd = ce ? t->cfd : -1;
	c->events = ce;
	g->fd = te ? t->tfd : -1;
	g->events = te;
}

/* ---- the proxy ---- */

static int add_tunnel(struct proxy *p, int fd) {
	struct tunnel **arr, *t;
	struct pollfd *pfd;

	arr = realloc(p->t, (p->n + 1) * sizeof(*arr));
	if (!arr) {
		return -ENOMEM;
	}
	p->t = arr;
	pfd = realloc(p->pfd, (2 + 2 * (p->n + 1)) * sizeof(*pfd));
	if (!pfd) {
		return -ENOMEM;
	}
	p->pfd = pfd;
	t = calloc(1, sizeof(*t));
	if (!t) {
		return -ENOMEM;
	}
	t->cfd = fd;
	t->tfd = -1;
	p->t[p->n++] = t;
	return 0;
}

static void accept_all(struct proxy *p) {
	while (p->n < MAX_TUNNELS) {
		int fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
				fprintf(stderr, "trt-connect-proxy: accept: %s\n", strerror(errno));
			}
			return;
		}
		if (add_tunnel(p, fd) < 0) {
			fprintf(stderr, "trt-connect-proxy: out of memory, connection dropped\n");
			close(fd);
			return;
		}
	}
}

/* Run until SIGTERM or SIGINT. */
static int run(struct proxy *p) {
	for (;;) {
		int64_t now, wake = -1;
		int timeout = -1, r;
		size_t j;

		p->pfd[0] = (struct pollfd){.fd = p->sfd, .events = POLLIN};
		p->pfd[1] =
			(struct pollfd){.fd = p->n < MAX_TUNNELS ? p->lfd : -1, .events = POLLIN};
		for (size_t i = 0; i < p->n; i++) {
			struct tunnel *t = p->t[i];
			tunnel_events(t, &p->pfd[2 + 2 * i], &p->pfd[3 + 2 * i]);
			if (t->state == T_REPLY && !reply_pending(t) &&
				(wake < 0 || t->linger_deadline < wake)) {
				wake = t->linger_deadline;
			}
		}
		if (wake >= 0) {
			now = now_ms();
			timeout = wake > now ? (int)(wake - now) : 0;
		}
		r = poll(p->pfd, 2 + 2 * p->n, timeout);
		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "trt-connect-proxy: poll: %s\n", strerror(errno));
			return 1;
		}
		if (r < 0) {
			continue;
		}
		if (p->pfd[0].revents) {
			struct signalfd_siginfo si;
			if (read(p->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				return 0;
			}
		}
		for (size_t i = 0; i < p->n; i++) {
			struct tunnel *t = p->t[i];
			short crev = p->pfd[2 + 2 * i].revents, trev = p->pfd[3 + 2 * i].revents;
			switch (t->state) {
			case T_HEAD:
				if (crev) {
					step_head(p, t);
				}
				break;
			case T_REPLY:
				step_reply(t, crev);
				break;
			case T_RELAY:
				step_relay(t, crev, trev);
				break;
			}
		}
		/* drop finished tunnels, keeping the order */
		for (size_t i = j = 0; i < p->n; i++) {
			if (p->t[i]->dead) {
				tunnel_free(p, p->t[i]);
			} else {
				p->t[j++] = p->t[i];
			}
		}
		p->n = j;
		if (p->pfd[1].revents) {
			accept_all(p);
		}
	}
}

static int listen_on(const char *host, int port, char *ret_name, size_t size) {
	struct addrinfo hints = {
		.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct addrinfo *res = NULL;
	char portstr[16], addr[INET6_ADDRSTRLEN];
	int fd = -1, one = 1, g;

	snprintf(portstr, sizeof(portstr), "%d", port);
	g = getaddrinfo(host, portstr, &hints, &res);
	if (g != 0) {
		fprintf(stderr, "trt-connect-proxy: --listen %s: %s\n", host, gai_strerror(g));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0 ||
		getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
		getnameinfo((struct sockaddr *)&ss, sl, addr, sizeof(addr), portstr,
			sizeof(portstr), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		fprintf(stderr, "trt-connect-proxy: listening on %s port %d: %s\n", host, port,
			strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	snprintf(ret_name, size, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", addr, portstr);
	return fd;
}

/* PORT and a newline into path, through a rename so that a reader never sees half of it. */
static int write_port_file(const char *path, const char *name) {
	const char *port = strrchr(name, ':') + 1;
	char *tmp = NULL;
	FILE *f;
	int r = 0;

	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		return -1;
	}
	f = fopen(tmp, "we");
	if (!f || fprintf(f, "%s\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
		fprintf(stderr, "trt-connect-proxy: %s: %s\n", path, strerror(errno));
		r = -1;
	}
	free(tmp);
	return r;
}

static void usage(FILE *f) {
	fprintf(f, "usage: trt-connect-proxy [--listen HOST] [--port N] [--port-file FILE] "
		   "[--log FILE]\n"
		   "                         [--require-auth USER:PASS] [--refuse CODE]\n");
}

int main(int argc, char **argv) {
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"port", required_argument, NULL, 'p'},
		{"port-file", required_argument, NULL, 'f'},
		{"log", required_argument, NULL, 'L'},
		{"require-auth", required_argument, NULL, 'a'},
		{"refuse", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct proxy p = {.lfd = -1, .sfd = -1, .log = stderr};
	const char *host = "127.0.0.1", *port_file = NULL, *log_path = NULL;
	char name[INET6_ADDRSTRLEN + 16];
	int port = 0, c, status = 1;
	sigset_t mask;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			host = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'f':
			port_file = optarg;
			break;
		case 'L':
			log_path = optarg;
			break;
		case 'a':
			if (!strchr(optarg, ':')) {
				fprintf(stderr,
					"trt-connect-proxy: --require-auth wants USER:PASS\n");
				return 2;
			}
			p.auth = optarg;
			break;
		case 'r':
			p.refuse = atoi(optarg);
			if (p.refuse < 400 || p.refuse > 599) {
				fprintf(stderr,
					"trt-connect-proxy: --refuse wants a status 400-599\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || port < 0 || port > 65535) {
		usage(stderr);
		return 2;
	}

	/* the signals arrive on a descriptor in the poll set */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
		(p.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		fprintf(stderr, "trt-connect-proxy: signalfd: %s\n", strerror(errno));
		goto out;
	}
	if (log_path && !(p.log = fopen(log_path, "ae"))) {
		fprintf(stderr, "trt-connect-proxy: %s: %s\n", log_path, strerror(errno));
		p.log = stderr;
		goto out;
	}
	p.pfd = calloc(2, sizeof(*p.pfd));
	if (!p.pfd) {
		goto out;
	}
	p.lfd = listen_on(host, port, name, sizeof(name));
	if (p.lfd < 0 || (port_file && write_port_file(port_file, name) < 0)) {
		goto out;
	}
	printf("trt-connect-proxy listening on %s\n", name);
	fflush(stdout);
	status = run(&p);
out:
	for (size_t i = 0; i < p.n; i++) {
		tunnel_free(&p, p.t[i]);
	}
	free(p.t);
	free(p.pfd);
	if (p.lfd >= 0) {
		close(p.lfd);
	}
	if (p.sfd >= 0) {
		close(p.sfd);
	}
	if (p.log != stderr) {
		fclose(p.log);
	}
	return status;
}
