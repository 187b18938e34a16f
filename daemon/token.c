/*
 * token.c — see token.h. Nothing here logs: callers decide what to report,
 * and a token never reaches a log line.
 */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

/* base64url (no padding; '=' padding tolerated) → bytes. Returns length or -EINVAL. */
static ssize_t b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap) {
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	while (n > 0 && in[n - 1] == '=') {
		n--;
	}
	for (size_t i = 0; i < n; i++) {
		int v;
		char c = in[i];
		if (c >= 'A' && c <= 'Z') {
			v = c - 'A';
		} else if (c >= 'a' && c <= 'z') {
			v = c - 'a' + 26;
		} else if (c >= '0' && c <= '9') {
			v = c - '0' + 52;
		} else if (c == '-' || c == '+') {
			v = 62;
		} else if (c == '_' || c == '/') {
			v = 63;
		} else {
			return -EINVAL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap) {
				return -EINVAL;
			}
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (bits >= 6) {
		return -EINVAL; /* a single dangling character cannot encode a byte */
	}
	return (ssize_t)o;
}

static void copy_sid(char *dst, size_t cap, const char *src) {
	if (src && strlen(src) < cap) {
		memcpy(dst, src, strlen(src) + 1);
	} else {
		dst[0] = '\0';
	}
}

static int64_t clamp_time(int64_t t) {
	return t < 0 ? 0 : (t > TR_TOKEN_TIME_MAX ? TR_TOKEN_TIME_MAX : t);
}

int tr_jwt_decode(const char *token, struct tr_jwt *ret) {
	const char *p1, *p2;
	unsigned char *buf;
	struct tr_json *doc = NULL;
	const struct tr_json *grants, *trg;
	struct tr_jwt j = {0};
	ssize_t n;
	size_t plen;
	int r;

	if (!token) {
		return -EINVAL;
	}
	p1 = strchr(token, '.');
	if (!p1 || p1 == token) {
		return -EINVAL;
	}
	p2 = strchr(p1 + 1, '.');
	if (!p2 || strchr(p2 + 1, '.')) {
		return -EINVAL;
	}
	plen = (size_t)(p2 - (p1 + 1));
	if (plen == 0 || plen > TR_TOKEN_MAX_SIZE) {
		return -EINVAL;
	}
	buf = malloc(plen);
	if (!buf) {
		return -ENOMEM;
	}
	n = b64url_decode(p1 + 1, plen, buf, plen);
	if (n <= 0) {
		free(buf);
		return -EINVAL;
	}
	r = tr_json_parse((const char *)buf, (size_t)n, &doc, NULL);
	free(buf);
	if (r == -ENOMEM) {
		return r;
	}
	if (r < 0 || !tr_json_is(doc, TR_JSON_OBJECT)) {
		tr_json_free(doc);
		return -EINVAL;
	}
	r = tr_json_get_int(doc, "exp", &j.exp);
	if (r < 0) {
		tr_json_free(doc);
		return r == -ENOENT ? -ENOMSG : -EINVAL;
	}
	(void)tr_json_get_int(doc, "iat", &j.iat);
	/* Times are later multiplied into milliseconds: keep them where that cannot overflow. */
	j.exp = clamp_time(j.exp);
	j.iat = clamp_time(j.iat);
	grants = tr_json_get(doc, "grants");
	trg = tr_json_get(grants, "task_router");
	copy_sid(j.account_sid, sizeof(j.account_sid), tr_json_get_string(doc, "sub"));
	copy_sid(j.workspace_sid, sizeof(j.workspace_sid), tr_json_get_string(trg, "workspace_sid"));
	copy_sid(j.worker_sid, sizeof(j.worker_sid), tr_json_get_string(trg, "worker_sid"));
	tr_json_free(doc);
	*ret = j;
	return 0;
}

bool tr_jwt_same_identity(const struct tr_jwt *a, const struct tr_jwt *b) {
	return strcmp(a->account_sid, b->account_sid) == 0 &&
		strcmp(a->workspace_sid, b->workspace_sid) == 0 &&
		strcmp(a->worker_sid, b->worker_sid) == 0;
}

int tr_token_validate(const char *token, int64_t now_s, struct tr_jwt *ret) {
	struct tr_jwt j;
	int r = tr_jwt_decode(token, &j);

	if (r < 0) {
		return r;
	}
	if (j.exp <= now_s) {
		return -EKEYEXPIRED;
	}
	*ret = j;
	return 0;
}

const char *tr_token_strerror(int err) {
	switch (err) {
	case -EINVAL:
		return "the token is not a JWT (header.payload.signature with a JSON payload)";
	case -ENOMSG:
		return "the token has no expiry (exp claim)";
	case -ENOENT:
		return "no such file";
	case -EBADFD:
		return "not a regular file";
	case -EKEYEXPIRED:
		return "the token has expired";
	case -ENODATA:
		return "the token is empty";
	case -EFBIG:
		return "the token is too large";
	case -ETIMEDOUT:
		return "the token command timed out";
	case -EIO:
		return "the token command failed";
	case -ENOMEM:
		return "out of memory";
	default:
		return strerror(-err);
	}
}

static bool is_space(char c) {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int tr_token_from_buffer(const char *buf, size_t len, char **ret) {
	size_t a = 0, b = len;
	char *t;

	while (a < b && is_space(buf[a])) {
		a++;
	}
	while (b > a && is_space(buf[b - 1])) {
		b--;
	}
	if (a == b) {
		return -ENODATA;
	}
	if (b - a > TR_TOKEN_MAX_SIZE) {
		return -EFBIG;
	}
	for (size_t i = a; i < b; i++) {
		char c = buf[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  c == '-' || c == '_' || c == '.' || c == '=' || c == '+' || c == '/';
		if (!ok) {
			return -EINVAL;
		}
	}
	t = malloc(b - a + 1);
	if (!t) {
		return -ENOMEM;
	}
	memcpy(t, buf + a, b - a);
	t[b - a] = '\0';
	*ret = t;
	return 0;
}

int tr_token_read_file(const char *path, char **ret, mode_t *ret_mode) {
	char *buf;
	size_t len = 0, cap = TR_TOKEN_MAX_SIZE + 64;
	struct stat st;
	int fd, r;

	/* O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		return -errno;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EBADFD;
	}
	if (ret_mode) {
		*ret_mode = st.st_mode & 07777;
	}
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t k = read(fd, buf + len, cap - len);
		if (k < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = -errno;
			goto out;
		}
		if (k == 0) {
			break;
		}
		len += (size_t)k;
		if (len == cap) {
			r = -EFBIG;
			goto out;
		}
	}
	r = tr_token_from_buffer(buf, len, ret);
out:
	explicit_bzero(buf, cap);
	free(buf);
	close(fd);
	return r;
}

char *tr_token_free(char *token) {
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	return NULL;
}

/* ---- --token-command ---- */

struct tr_token_cmd {
	uv_process_t proc;
	uv_pipe_t out;
	uv_timer_t timer;
	int pending_closes;
	bool exited, eof, done, killed, canceled, overflow;
	int64_t exit_status;
	int term_signal;
	char *buf;
	size_t len;
	tr_token_cmd_cb cb;
	void *userdata;
};

static void cmd_on_close(uv_handle_t *h) {
	struct tr_token_cmd *c = h->data;

	if (--c->pending_closes == 0) {
		if (c->buf) {
			explicit_bzero(c->buf, TR_TOKEN_MAX_SIZE + 1);
		}
		free(c->buf);
		free(c);
	}
}

static void cmd_finish(struct tr_token_cmd *c, int err) {
	char *token = NULL;

	if (c->done) {
		return;
	}
	c->done = true;
	if (err == 0) {
		if (c->canceled) {
			err = -ECANCELED;
		} else if (c->overflow) {
			err = -EFBIG;
		} else if (c->term_signal || c->exit_status != 0) {
			err = -EIO;
		} else {
			err = tr_token_from_buffer(c->buf, c->len, &token);
		}
	}
	if (!c->exited) {
		(void)uv_process_kill(&c->proc, SIGKILL);
	}
	c->cb(c->userdata, err, token);
	uv_close((uv_handle_t *)&c->timer, cmd_on_close);
	if (!uv_is_closing((uv_handle_t *)&c->out)) {
		uv_close((uv_handle_t *)&c->out, cmd_on_close);
	}
	/* The process handle is closed once it has exited (so it gets reaped). */
	if (c->exited) {
		uv_close((uv_handle_t *)&c->proc, cmd_on_close);
	}
}

static void cmd_maybe_finish(struct tr_token_cmd *c) {
	if (c->exited && c->eof) {
		cmd_finish(c, 0);
	}
}

static void cmd_on_exit(uv_process_t *p, int64_t status, int sig) {
	struct tr_token_cmd *c = p->data;

	c->exited = true;
	c->exit_status = status;
	c->term_signal = sig;
	if (c->done) {
		uv_close((uv_handle_t *)&c->proc, cmd_on_close);
		return;
	}
	cmd_maybe_finish(c);
}

static void cmd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
	struct tr_token_cmd *c = h->data;
	size_t room = TR_TOKEN_MAX_SIZE + 1 - c->len;

	(void)suggested;
	if (room == 0) {
		/* Keep draining into a scratch area so the child is not blocked; mark overflow. */
		static char scratch[256];
		c->overflow = true;
		*b = uv_buf_init(scratch, sizeof(scratch));
		return;
	}
	*b = uv_buf_init(c->buf + c->len, (unsigned)room);
}

static void cmd_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
	struct tr_token_cmd *c = s->data;

	if (n > 0) {
		if (b->base >= c->buf && b->base < c->buf + TR_TOKEN_MAX_SIZE + 1) {
			c->len += (size_t)n;
			if (c->len > TR_TOKEN_MAX_SIZE) {
				c->overflow = true;
			}
		}
		return;
	}
	if (n == 0) {
		return;
	}
	uv_read_stop(s);
	c->eof = true;
	if (n != UV_EOF && !c->done) {
		cmd_finish(c, -EIO);
		return;
	}
	cmd_maybe_finish(c);
}

static void cmd_on_timeout(uv_timer_t *t) {
	struct tr_token_cmd *c = t->data;

	c->killed = true;
	cmd_finish(c, -ETIMEDOUT);
}

int tr_token_cmd_run(uv_loop_t *loop, const char *cmd, int timeout_ms, tr_token_cmd_cb cb,
	void *userdata, struct tr_token_cmd **ret) {
	struct tr_token_cmd *c;
	uv_stdio_container_t stdio[3];
	uv_process_options_t o = {0};
	char *args[] = {"/bin/sh", "-c", (char *)cmd, NULL};
	int r;

	c = calloc(1, sizeof(*c));
	if (!c) {
		return -ENOMEM;
	}
	c->buf = malloc(TR_TOKEN_MAX_SIZE + 1);
	if (!c->buf) {
		free(c);
		return -ENOMEM;
	}
	c->cb = cb;
	c->userdata = userdata;
	r = uv_pipe_init(loop, &c->out, 0);
	if (r < 0) {
		free(c->buf);
		free(c);
		return r;
	}
	c->out.data = c;
	c->pending_closes = 1;
	r = uv_timer_init(loop, &c->timer);
	if (r < 0) {
		uv_close((uv_handle_t *)&c->out, cmd_on_close);
		return r;
	}
	c->timer.data = c;
	c->pending_closes = 2;

	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&c->out;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	o.file = args[0];
	o.args = args;
	o.exit_cb = cmd_on_exit;
	o.stdio = stdio;
	o.stdio_count = 3;
	c->proc.data = c;
	r = uv_spawn(loop, &c->proc, &o);
	if (r < 0) {
		/* uv_spawn failures still require closing the process handle. */
		c->exited = true;
		c->done = true;
		c->pending_closes = 3;
		uv_close((uv_handle_t *)&c->proc, cmd_on_close);
		uv_close((uv_handle_t *)&c->out, cmd_on_close);
		uv_close((uv_handle_t *)&c->timer, cmd_on_close);
		return r;
	}
	c->pending_closes = 3;
	r = uv_read_start((uv_stream_t *)&c->out, cmd_alloc, cmd_on_read);
	if (r == 0) {
		r = uv_timer_start(&c->timer, cmd_on_timeout, (uint64_t)timeout_ms, 0);
	}
	if (r < 0) {
		/* Report through the callback, as promised once the child runs. */
		cmd_finish(c, r);
	}
	if (ret) {
		*ret = c;
	}
	return 0;
}

void tr_token_cmd_cancel(struct tr_token_cmd *c) {
	if (!c || c->done) {
		return;
	}
	c->canceled = true;
	cmd_finish(c, -ECANCELED);
}

/* ---- token file watch ---- */

struct tr_token_watch {
	uv_fs_event_t ev;
	uv_timer_t debounce;
	char *base;
	int pending_closes;
	void (*cb)(void *);
	void *userdata;
	void (*done)(void *);
	void *done_userdata;
};

static void watch_on_close(uv_handle_t *h) {
	struct tr_token_watch *w = h->data;

	if (--w->pending_closes == 0) {
		if (w->done) {
			w->done(w->done_userdata);
		}
		free(w->base);
		free(w);
	}
}

static void watch_on_debounce(uv_timer_t *t) {
	struct tr_token_watch *w = t->data;

	w->cb(w->userdata);
}

static void watch_on_event(uv_fs_event_t *h, const char *filename, int events, int status) {
	struct tr_token_watch *w = h->data;

	(void)events;
	if (status < 0) {
		return;
	}
	if (filename && strcmp(filename, w->base) != 0) {
		return;
	}
	(void)uv_timer_start(&w->debounce, watch_on_debounce, TR_TOKEN_WATCH_DEBOUNCE_MS, 0);
}

int tr_token_watch_new(uv_loop_t *loop, const char *path, void (*cb)(void *userdata),
	void *userdata, struct tr_token_watch **ret) {
	struct tr_token_watch *w;
	char *d1 = NULL, *d2 = NULL;
	int r;

	w = calloc(1, sizeof(*w));
	d1 = strdup(path);
	d2 = strdup(path);
	if (!w || !d1 || !d2) {
		free(w);
		free(d1);
		free(d2);
		return -ENOMEM;
	}
	w->base = strdup(basename(d1));
	if (!w->base) {
		free(w);
		free(d1);
		free(d2);
		return -ENOMEM;
	}
	w->cb = cb;
	w->userdata = userdata;
	r = uv_fs_event_init(loop, &w->ev);
	if (r < 0) {
		goto fail_free;
	}
	w->ev.data = w;
	r = uv_timer_init(loop, &w->debounce);
	if (r < 0) {
		w->pending_closes = 1;
		uv_close((uv_handle_t *)&w->ev, watch_on_close);
		goto fail_strings;
	}
	w->debounce.data = w;
	w->pending_closes = 2;
	r = uv_fs_event_start(&w->ev, watch_on_event, dirname(d2), 0);
	if (r < 0) {
		uv_close((uv_handle_t *)&w->ev, watch_on_close);
		uv_close((uv_handle_t *)&w->debounce, watch_on_close);
		goto fail_strings;
	}
	free(d1);
	free(d2);
	*ret = w;
	return 0;
fail_free:
	free(w->base);
	free(w);
fail_strings:
	free(d1);
	free(d2);
	return r;
}

void tr_token_watch_close(struct tr_token_watch *w, void (*done)(void *userdata), void *userdata) {
	if (!w) {
		if (done) {
			done(userdata);
		}
		return;
	}
	w->done = done;
	w->done_userdata = userdata;
	uv_close((uv_handle_t *)&w->ev, watch_on_close);
	uv_close((uv_handle_t *)&w->debounce, watch_on_close);
}
