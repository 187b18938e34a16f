/* simclient.c — see simclient.h. */
#include "simclient.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t last_ms;

int64_t now_ms(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sc_last_ms(void) {
	return last_ms;
}

const char *fmt(const char *f, ...) {
	static char bufs[8][8192];
	static int i;
	char *b = bufs[i++ % 8];
	va_list ap;

	va_start(ap, f);
	vsnprintf(b, sizeof(bufs[0]), f, ap);
	va_end(ap);
	return b;
}

static bool valgrind(void) {
	const char *v = getenv("TR_UNDER_VALGRIND");
	return v && strcmp(v, "1") == 0;
}

int sc_start(struct simproc *p, const char *const *extra) {
	const char *bin = getenv("TR_SIM");
	const char *argv[48];
	char line[256], logp[300];
	size_t n = 0, len = 0;
	int pfd[2];
	int64_t deadline = now_ms() + (valgrind() ? 60000 : 10000);

	memset(p, 0, sizeof(*p));
	p->pidfd = -1;
	if (!bin) {
		return -EINVAL;
	}
	snprintf(p->dir, sizeof(p->dir), "/tmp/trsim-test-XXXXXX");
	if (!mkdtemp(p->dir)) {
		return -errno;
	}
	if (valgrind()) {
		argv[n++] = "valgrind";
		argv[n++] = "--error-exitcode=99";
		argv[n++] = "--leak-check=full";
		argv[n++] = "--errors-for-leak-kinds=definite,indirect";
		argv[n++] = "--show-leak-kinds=definite,indirect";
		argv[n++] = "--quiet";
	}
	argv[n++] = bin;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--token-dir";
	argv[n++] = p->dir;
	for (size_t i = 0; extra && extra[i] && n < 46; i++) {
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		return -errno;
	}
	snprintf(logp, sizeof(logp), "%s/sim.log", p->dir);
	p->pid = fork();
	if (p->pid < 0) {
		return -errno;
	}
	if (p->pid == 0) {
		int lf = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(pfd[1], 1);
		if (lf >= 0) {
			dup2(lf, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	p->out_fd = pfd[0];
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	while (len < sizeof(line) - 1) {
		struct pollfd q = {.fd = pfd[0], .events = POLLIN};
		int64_t left = deadline - now_ms();
		if (left <= 0 || poll(&q, 1, (int)left) <= 0) {
			return -ETIMEDOUT;
		}
		if (read(pfd[0], line + len, 1) != 1) {
			return -EIO;
		}
		if (line[len] == '\n') {
			break;
		}
		len++;
	}
	line[len] = '\0';
	if (!strstr(line, "taskrouter-sim listening on 127.0.0.1:")) {
		return -EPROTO;
	}
	p->port = atoi(strrchr(line, ':') + 1);
	return p->port > 0 ? 0 : -EPROTO;
}

int sc_stop(struct simproc *p, int timeout_ms) {
	struct pollfd q = {.fd = p->pidfd, .events = POLLIN};
	int st = 0;
	char cmd[300];

	if (p->pid <= 0) {
		return -ESRCH;
	}
	kill(p->pid, SIGTERM);
	if (valgrind()) {
		timeout_ms *= 10;
	}
	if (p->pidfd >= 0 && poll(&q, 1, timeout_ms) <= 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &st, 0);
		p->pid = 0;
		return -ETIMEDOUT;
	}
	waitpid(p->pid, &st, 0);
	p->pid = 0;
	if (p->pidfd >= 0) {
		close(p->pidfd);
	}
	close(p->out_fd);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "# could not remove %s\n", p->dir);
		}
	} else {
		fprintf(stderr, "# simulator log kept in %s/sim.log\n", p->dir);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

const char *sc_token(struct simproc *p, const char *worker) {
	static char tok[2][4096];
	static int i;
	char *t = tok[i++ % 2];
	FILE *f = fopen(fmt("%s/%s.token", p->dir, worker), "r");
	size_t n = 0;

	t[0] = '\0';
	if (f) {
		n = fread(t, 1, 4095, f);
		fclose(f);
	}
	t[n] = '\0';
	return t;
}

struct membuf {
	char *p;
	size_t n;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
	struct membuf *m = ud;
	size_t len = size * nmemb;
	char *q = realloc(m->p, m->n + len + 1);

	if (!q) {
		return 0;
	}
	memcpy(q + m->n, data, len);
	m->p = q;
	m->n += len;
	m->p[m->n] = '\0';
	return len;
}

int sc_http(struct simproc *p, const char *method, const char *path, const char *body,
	const char *const *headers, yajl_val *ret) {
	CURL *h = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct membuf m = {0};
	long status = 0;
	int64_t t0 = now_ms();
	CURLcode cr;

	if (ret) {
		*ret = NULL;
	}
	if (!h) {
		return -ENOMEM;
	}
	curl_easy_setopt(h, CURLOPT_URL, fmt("http://127.0.0.1:%d%s", p->port, path));
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, valgrind() ? 120000L : 20000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
	for (size_t i = 0; headers && headers[i]; i++) {
		hl = curl_slist_append(hl, headers[i]);
	}
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	cr = curl_easy_perform(h);
	if (cr == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	}
	last_ms = now_ms() - t0;
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	if (ret && m.p) {
		*ret = yajl_tree_parse(m.p, NULL, 0);
	}
	free(m.p);
	return cr == CURLE_OK ? (int)status : -EIO;
}

int sc_rest(struct simproc *p, const char *token, const char *api, const char *method,
	const char *url, const char *params, const char *if_match, yajl_val *ret) {
	const char *hdr[5];
	size_t n = 0;

	hdr[n++] = fmt("apiVersion: %s", api);
	hdr[n++] = "clientVersion: test-1";
	if (if_match) {
		hdr[n++] = fmt("If-Match: %s", if_match);
	}
	hdr[n] = NULL;
	return sc_http(p, "POST", "/v1/wschannels",
		fmt("{\"url\":\"%s\",\"method\":\"%s\",\"params\":%s,\"token\":\"%s\"}", url, method,
			params ? params : "{}", token),
		hdr, ret);
}

/* ---- websocket ---- */

static int read_some(struct ws *w, int timeout_ms) {
	struct pollfd q = {.fd = w->fd, .events = POLLIN};
	ssize_t k;

	if (poll(&q, 1, timeout_ms) <= 0) {
		return -ETIMEDOUT;
	}
	if (w->cap - w->len < 65536) {
		size_t cap = w->cap ? w->cap * 2 : 131072;
		unsigned char *b = realloc(w->buf, cap);
		if (!b) {
			return -ENOMEM;
		}
		w->buf = b;
		w->cap = cap;
	}
	k = read(w->fd, w->buf + w->len, w->cap - w->len - 1);
	if (k <= 0) {
		return -ECONNRESET;
	}
	w->len += (size_t)k;
	w->buf[w->len] = '\0'; /* the handshake is parsed as text */
	return 0;
}

int ws_open(struct simproc *p, const char *query, struct ws **ret) {
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->port)};
	struct ws *w = calloc(1, sizeof(*w));
	int64_t deadline = now_ms() + (valgrind() ? 60000 : 10000);
	char *req, *end;
	int status, r;

	if (!w) {
		return -ENOMEM;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	w->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (w->fd < 0 || connect(w->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ws_free(w);
		return -errno;
	}
	if (asprintf(&req,
		    "GET /v1/wschannels?%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		    "Sec-WebSocket-Version: 13\r\n\r\n",
		    query, p->port) < 0) {
		ws_free(w);
		return -ENOMEM;
	}
	if (write(w->fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		free(req);
		ws_free(w);
		return -EIO;
	}
	free(req);
	for (;;) {
		if (w->len >= 4 && (end = memmem(w->buf, w->len, "\r\n\r\n", 4))) {
			break;
		}
		r = read_some(w, (int)(deadline - now_ms()));
		if (r < 0) {
			ws_free(w);
			return r;
		}
	}
	if (sscanf((char *)w->buf, "HTTP/1.%*d %d", &status) != 1) {
		ws_free(w);
		return -EPROTO;
	}
	{
		size_t hl = (size_t)(end + 4 - (char *)w->buf);
		memmove(w->buf, w->buf + hl, w->len - hl);
		w->len -= hl;
	}
	if (status != 101) {
		ws_free(w);
		return status;
	}
	*ret = w;
	return 101;
}

void ws_free(struct ws *w) {
	if (!w) {
		return;
	}
	if (w->fd >= 0) {
		close(w->fd);
	}
	free(w->buf);
	free(w);
}

static bool parse_frame(struct ws *w, struct wsframe *f) {
	size_t hl = 2, plen;
	unsigned char *b = w->buf;

	if (w->len < 2) {
		return false;
	}
	plen = b[1] & 0x7f;
	if (plen == 126) {
		if (w->len < 4) {
			return false;
		}
		plen = (size_t)b[2] << 8 | b[3];
		hl = 4;
	} else if (plen == 127) {
		if (w->len < 10) {
			return false;
		}
		plen = 0;
		for (int i = 0; i < 8; i++) {
			plen = plen << 8 | b[2 + i];
		}
		hl = 10;
	}
	if (w->len < hl + plen) {
		return false;
	}
	f->opcode = b[0] & 0x0f;
	f->data = malloc(plen + 1);
	if (!f->data) {
		return false;
	}
	memcpy(f->data, b + hl, plen);
	f->data[plen] = '\0';
	f->len = plen;
	f->close_code = 0;
	if (f->opcode == WS_CLOSE && plen >= 2) {
		f->close_code = (unsigned char)f->data[0] << 8 | (unsigned char)f->data[1];
		memmove(f->data, f->data + 2, plen - 2);
		f->data[plen - 2] = '\0';
		f->len = plen - 2;
	}
	memmove(w->buf, w->buf + hl + plen, w->len - hl - plen);
	w->len -= hl + plen;
	return true;
}

int ws_next(struct ws *w, int timeout_ms, struct wsframe *f) {
	int64_t deadline = now_ms() + timeout_ms;
	int r;

	memset(f, 0, sizeof(*f));
	while (!parse_frame(w, f)) {
		int64_t left = deadline - now_ms();
		if (left < 0) {
			return -ETIMEDOUT;
		}
		r = read_some(w, (int)left);
		if (r == -ECONNRESET) {
			f->opcode = WS_EOF;
			return 0;
		}
		if (r < 0) {
			return r;
		}
	}
	return 0;
}

void ws_frame_done(struct wsframe *f) {
	free(f->data);
	f->data = NULL;
}

int ws_next_event(struct ws *w, int timeout_ms, struct wsframe *f) {
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		int r = ws_next(w, (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0), f);
		if (r < 0) {
			return r;
		}
		if (f->opcode == WS_TEXT && strspn(f->data, " \t\r\n") == f->len) {
			ws_frame_done(f);
			continue;
		}
		return 0;
	}
}

yajl_val ws_wait(struct ws *w, const char *type, int timeout_ms) {
	int64_t deadline = now_ms() + timeout_ms;
	struct wsframe f;

	while (ws_next_event(w, (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0), &f) ==
		0) {
		yajl_val v;
		if (f.opcode != WS_TEXT) {
			ws_frame_done(&f);
			return NULL;
		}
		v = yajl_tree_parse(f.data, NULL, 0);
		ws_frame_done(&f);
		if (v && jstr(v, "event_type") && strcmp(jstr(v, "event_type"), type) == 0) {
			return v;
		}
		yajl_tree_free(v);
	}
	return NULL;
}

yajl_val jget(yajl_val v, const char *path) {
	char buf[256], *save = NULL, *k;

	snprintf(buf, sizeof(buf), "%s", path);
	for (k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save)) {
		yajl_val next = NULL;
		if (YAJL_IS_OBJECT(v)) {
			for (size_t i = 0; i < v->u.object.len; i++) {
				if (strcmp(v->u.object.keys[i], k) == 0) {
					next = v->u.object.values[i];
				}
			}
		} else if (YAJL_IS_ARRAY(v)) {
			size_t i = (size_t)atoi(k);
			next = i < v->u.array.len ? v->u.array.values[i] : NULL;
		}
		v = next;
	}
	return v;
}

const char *jstr(yajl_val v, const char *path) {
	v = jget(v, path);
	return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

long long jint(yajl_val v, const char *path) {
	v = jget(v, path);
	return v && YAJL_IS_INTEGER(v) ? v->u.number.i : -999999;
}
