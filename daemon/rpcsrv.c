/*
 * rpcsrv.c — the Unix-socket JSON-RPC server (see rpcsrv.h): listening socket, peer
 * credentials, connection limit, per-connection framing, in-flight and output-queue limits.
 *
 * Connections are refcounted: the pipe handle holds one reference, each request in flight
 * and each queued write one more, so an upstream reply that arrives after the client left
 * finds its connection still allocated (and closing) and is dropped.
 */
#include "rpcsrv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "frame.h"
#include "json.h"
#include "log.h"
#include "rpc.h"
#include "tr-limits.h"

#define READ_BUF_SIZE (64u * 1024u)
/* A client's batch is written at once when it reaches this size, so a big burst starts
 * draining into the socket right away rather than piling up until the iteration ends. */
#define OUT_BATCH_BYTES (64u * 1024u)

struct conn {
	struct tr_rpcsrv *srv; /* NULL once the handle is closed */
	uv_pipe_t pipe;
	unsigned refs;
	uint64_t id;
	long pid, uid;
	bool closing, paused, flush_close, counted;
	struct tr_frame_decoder dec;
	unsigned inflight;
	unsigned writes; /* queued uv_write requests */
	char *stash;     /* unread input while paused */
	size_t stash_len;
	uint64_t over_soft_since;
	/* Frames sent during this loop iteration, written with one writev when the iteration's
	 * callbacks are done (see flush_all): a burst of events or pipelined replies costs one
	 * system call per client instead of one per frame. */
	struct {
		char **bufs;
		uv_buf_t *iov;
		size_t n, cap, bytes;
	} out;
	bool dirty; /* on the server's dirty list */
	struct conn *dirty_next;
	struct conn *next;
};

struct tr_call {
	struct conn *c;
	struct tr_rpc_id id;
};

struct wreq {
	uv_write_t req;
	struct conn *c;
	size_t n;
	char *bufs[]; /* n framed buffers, freed once written */
};

struct tr_rpcsrv {
	uv_loop_t *loop;
	struct tr_rpcsrv_options opts; /* socket_path not kept: see bound_path */
	struct tr_rpcsrv_handlers h;
	uv_pipe_t listener;
	uv_timer_t timer;
	/* Flush the batched output after the poll phase's callbacks (check) and before the
	 * loop blocks again (prepare: catches frames sent from timer callbacks). */
	uv_check_t flush_check;
	uv_prepare_t flush_prepare;
	struct conn *dirty; /* connections with batched output, each holding a reference */
	unsigned handles; /* open handles: listener, timer, flushers, connections */
	char *bound_path;
	struct conn *conns;
	size_t n_conns; /* counted (accepted) connections */
	size_t max_conns;
	uint64_t next_id;
	struct tr_rpcsrv_stats cnt; /* .connections is filled from n_conns */
	bool refusing; /* a refusal burst has been logged */
	bool closing;
	bool timer_closed;
	void (*done)(void *userdata);
	void *done_userdata;
	char rbuf[READ_BUF_SIZE];
	bool rbuf_busy;
};

static void conn_close(struct conn *c);
static void on_handle_closed(uv_handle_t *h);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);
static void process(struct conn *c, const char *data, size_t len);
static void flush_all(struct tr_rpcsrv *s);

static struct conn *conn_ref(struct conn *c) {
	c->refs++;
	return c;
}

/* Drop batched output that will not be written (the connection is closing). */
static void out_clear(struct conn *c) {
	for (size_t i = 0; i < c->out.n; i++) {
		free(c->out.bufs[i]);
	}
	c->out.n = 0;
	c->out.bytes = 0;
}

static void conn_unref(struct conn *c) {
	if (--c->refs > 0) {
		return;
	}
	out_clear(c);
	free(c->out.bufs);
	free(c->out.iov);
	tr_frame_decoder_done(&c->dec);
	free(c->stash);
	free(c);
}

static void maybe_done(struct tr_rpcsrv *s) {
	if (s->closing && s->handles == 0 && s->done) {
		void (*done)(void *) = s->done;

		s->done = NULL;
		done(s->done_userdata);
	}
}

/* The server's own handles besides the listener, closed once no connection is left. */
static void close_timers(struct tr_rpcsrv *s) {
	flush_all(s); /* drops what closed connections still had batched, and their references */
	s->timer_closed = true;
	uv_close((uv_handle_t *)&s->timer, on_handle_closed);
	uv_close((uv_handle_t *)&s->flush_check, on_handle_closed);
	uv_close((uv_handle_t *)&s->flush_prepare, on_handle_closed);
}

static void on_conn_closed(uv_handle_t *h) {
	struct conn *c = h->data;
	struct tr_rpcsrv *s = c->srv;

	if (s->h.closed) {
		s->h.closed(s->h.userdata, c);
	}
	for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	if (c->counted) {
		s->n_conns--;
		if (s->n_conns < s->max_conns) {
			s->refusing = false;
		}
	}
	c->srv = NULL;
	s->handles--;
	conn_unref(c);
	if (s->closing && !s->conns && !s->timer_closed) {
		close_timers(s);
	}
	maybe_done(s);
}

static void conn_close(struct conn *c) {
	if (c->closing) {
		return;
	}
	c->closing = true;
	(void)uv_read_stop((uv_stream_t *)&c->pipe);
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

/* Bytes waiting for this client: handed to libuv, and batched in this iteration. */
static size_t out_queued(const struct conn *c) {
	return uv_stream_get_write_queue_size((const uv_stream_t *)&c->pipe) + c->out.bytes;
}

static void on_write(uv_write_t *req, int status) {
	struct wreq *w = req->data;
	struct conn *c = w->c;

	(void)status;
	for (size_t i = 0; i < w->n; i++) {
		free(w->bufs[i]);
	}
	free(w);
	c->writes--;
	if (!c->closing) {
		if (out_queued(c) <= TR_OUTQ_SOFT_LIMIT) {
			c->over_soft_since = 0;
		}
		if (c->flush_close && c->writes == 0 && c->out.n == 0) {
			conn_close(c);
		}
	}
	conn_unref(c);
}

/* Hand c's batch to libuv as one write request (one writev). */
static void flush_conn(struct conn *c) {
	struct wreq *w;
	int r;

	if (c->out.n == 0) {
		return;
	}
	if (c->closing || !c->srv) {
		out_clear(c);
		return;
	}
	w = malloc(sizeof(*w) + c->out.n * sizeof(char *));
	if (!w) {
		out_clear(c);
		tr_log_warning("client %" PRIu64 ": out of memory writing, closing", c->id);
		conn_close(c);
		return;
	}
	w->c = conn_ref(c);
	w->n = c->out.n;
	w->req.data = w;
	memcpy(w->bufs, c->out.bufs, w->n * sizeof(char *));
	/* libuv copies the uv_buf_t array, so c->out.iov is free for the next batch. */
	r = uv_write(&w->req, (uv_stream_t *)&c->pipe, c->out.iov, (unsigned)w->n, on_write);
	c->out.n = 0;
	c->out.bytes = 0;
	if (r < 0) {
		for (size_t i = 0; i < w->n; i++) {
			free(w->bufs[i]);
		}
		free(w);
		conn_unref(c);
		tr_log_debug("client %" PRIu64 ": write failed: %s, closing", c->id, uv_strerror(r));
		conn_close(c);
		return;
	}
	c->writes++;
}

static void flush_all(struct tr_rpcsrv *s) {
	while (s->dirty) {
		struct conn *c = s->dirty;

		s->dirty = c->dirty_next;
		c->dirty = false;
		c->dirty_next = NULL;
		flush_conn(c);
		conn_unref(c);
	}
	(void)uv_check_stop(&s->flush_check);
	(void)uv_prepare_stop(&s->flush_prepare);
}

static void on_flush_check(uv_check_t *h) {
	flush_all(h->data);
}

static void on_flush_prepare(uv_prepare_t *h) {
	flush_all(h->data);
}

/* Queue a framed buffer; takes ownership. */
static void on_timer(uv_timer_t *t);

static int conn_send(struct conn *c, char *buf, size_t len) {
	struct tr_rpcsrv *s = c->srv;
	size_t q;

	/* A connection being closed after an error gets nothing more (events would keep it
	 * open); at shutdown, flush_close only means "drain, then close". */
	if (c->closing || !s || (c->flush_close && !s->closing)) {
		free(buf);
		return -EPIPE;
	}
	if (c->out.n == c->out.cap) {
		size_t ncap = c->out.cap ? c->out.cap * 2 : 8;
		char **nb = realloc(c->out.bufs, ncap * sizeof(*nb));
		uv_buf_t *ni;

		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		c->out.bufs = nb;
		ni = realloc(c->out.iov, ncap * sizeof(*ni));
		if (!ni) {
			free(buf);
			return -ENOMEM;
		}
		c->out.iov = ni;
		c->out.cap = ncap;
	}
	c->out.bufs[c->out.n] = buf;
	c->out.iov[c->out.n] = uv_buf_init(buf, (unsigned)len);
	c->out.n++;
	c->out.bytes += len;
	if (c->out.bytes >= OUT_BATCH_BYTES) {
		flush_conn(c);
		if (c->closing) {
			return -EPIPE;
		}
	} else if (!c->dirty) {
		c->dirty = true;
		c->dirty_next = s->dirty;
		s->dirty = conn_ref(c);
		(void)uv_check_start(&s->flush_check, on_flush_check);
		(void)uv_prepare_start(&s->flush_prepare, on_flush_prepare);
	}
	q = out_queued(c);
	if (q > TR_OUTQ_HARD_LIMIT) {
		tr_log_warning("client %" PRIu64 " (pid %ld) too slow, disconnecting (%zu bytes queued)",
			c->id, c->pid, q);
		s->cnt.slow++;
		conn_close(c);
		return -ENOBUFS;
	}
	if (q > TR_OUTQ_SOFT_LIMIT && c->over_soft_since == 0) {
		c->over_soft_since = uv_now(s->loop);
		if (!uv_is_active((uv_handle_t *)&s->timer)) {
			(void)uv_timer_start(&s->timer, on_timer, 1000, 1000);
		}
	}
	return 0;
}

int tr_rpcsrv_send(void *owner, char *buf, size_t len) {
	return conn_send(owner, buf, len);
}

/* Send a message then close once it is written. */
static void conn_fail(struct conn *c, char *buf, size_t len) {
	if (buf && conn_send(c, buf, len) == 0) {
		c->flush_close = true;
		(void)uv_read_stop((uv_stream_t *)&c->pipe);
		return;
	}
	conn_close(c);
}

/* ---- calls ---- */

static void call_end(struct tr_call *call, char *buf, size_t len) {
	struct conn *c = call->c;

	tr_rpc_id_done(&call->id);
	free(call);
	if (c->closing || !c->srv) {
		free(buf);
		conn_unref(c);
		return;
	}
	if (buf) {
		(void)conn_send(c, buf, len);
	}
	c->inflight--;
	if (c->paused && c->inflight < TR_RPC_MAX_INFLIGHT && !c->closing) {
		char *stash = c->stash;
		size_t n = c->stash_len;

		c->paused = false;
		c->stash = NULL;
		c->stash_len = 0;
		if (stash) {
			process(c, stash, n);
			free(stash);
		}
		if (!c->paused && !c->closing && !c->flush_close) {
			(void)uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
		}
	}
	conn_unref(c);
}

void tr_call_result(struct tr_call *call, struct tr_json *result) {
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (!result) {
		tr_call_error(call, TR_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	r = tr_rpc_build_result_framed(&call->id, result, 0, &buf, &len);
	tr_json_free(result);
	if (r < 0) {
		tr_call_error(call, TR_RPC_INTERNAL_ERROR,
			r == -EMSGSIZE ? "result too large" : "out of memory", NULL);
		return;
	}
	call_end(call, buf, len);
}

void tr_call_error(struct tr_call *call, int code, const char *message, struct tr_json *data) {
	char *buf = NULL;
	size_t len = 0;

	if (tr_rpc_build_error_framed(&call->id, code, message, data, 0, &buf, &len) < 0) {
		buf = NULL;
	}
	tr_json_free(data);
	call_end(call, buf, len);
}

void *tr_call_owner(struct tr_call *call) {
	return call->c->closing ? NULL : call->c;
}

static void handle_message(struct conn *c, const char *payload, size_t len) {
	struct tr_rpc_msg *m = NULL;
	struct tr_rpc_error e;
	struct tr_call *call;
	char *buf;
	size_t blen;
	int r;

	r = tr_rpc_parse(payload, len, &m, &e);
	if (r < 0) {
		c->srv->cnt.parse_errors++;
		tr_log_debug("client %" PRIu64 ": refused message: %s", c->id, e.message);
		if (tr_rpc_build_refusal_framed(&e, 0, &buf, &blen) == 0) {
			(void)conn_send(c, buf, blen);
		}
		tr_rpc_error_done(&e);
		return;
	}
	tr_rpc_error_done(&e);
	if (m->kind != TR_RPC_REQUEST) {
		tr_rpc_msg_free(m); /* notifications and responses from clients: ignored */
		return;
	}
	call = calloc(1, sizeof(*call));
	if (!call || tr_rpc_id_copy(&call->id, &m->id) < 0) {
		free(call);
		if (tr_rpc_build_error_framed(&m->id, TR_RPC_INTERNAL_ERROR, "out of memory", NULL, 0,
			&buf, &blen) == 0) {
			(void)conn_send(c, buf, blen);
		}
		tr_rpc_msg_free(m);
		return;
	}
	call->c = conn_ref(c);
	c->inflight++;
	c->srv->h.dispatch(c->srv->h.userdata, call, m->method, m->params);
	tr_rpc_msg_free(m);
}

static void process(struct conn *c, const char *data, size_t len) {
	while (len > 0 && !c->closing && !c->flush_close) {
		char *payload = NULL;
		size_t plen = 0;
		ssize_t n = tr_frame_decode(&c->dec, data, len, &payload, &plen);

		if (n < 0) {
			char *buf = NULL;
			size_t blen = 0;

			c->srv->cnt.frame_errors++;
			tr_log_info("client %" PRIu64 ": framing error (declared %" PRIu32 " bytes), closing",
				c->id, tr_frame_decoder_declared_length(&c->dec));
			if (tr_rpc_build_frame_error_framed(c->dec.max_payload,
				tr_frame_decoder_declared_length(&c->dec), &buf, &blen) < 0) {
				buf = NULL;
			}
			conn_fail(c, buf, blen);
			return;
		}
		data += n;
		len -= (size_t)n;
		if (payload) {
			handle_message(c, payload, plen);
			free(payload);
			if (c->inflight >= TR_RPC_MAX_INFLIGHT && !c->closing) {
				c->paused = true;
				c->srv->cnt.inflight_pauses++;
				(void)uv_read_stop((uv_stream_t *)&c->pipe);
				if (len > 0) {
					c->stash = malloc(len);
					if (!c->stash) {
						conn_close(c);
						return;
					}
					memcpy(c->stash, data, len);
					c->stash_len = len;
				}
				return;
			}
		}
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
	struct conn *c = h->data;
	struct tr_rpcsrv *s = c->srv;

	(void)suggested;
	if (!s || s->rbuf_busy) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	s->rbuf_busy = true;
	*buf = uv_buf_init(s->rbuf, sizeof(s->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
	struct conn *c = st->data;
	struct tr_rpcsrv *s = c->srv;

	if (s && buf->base == s->rbuf) {
		s->rbuf_busy = false;
	}
	if (n < 0) {
		if (n != UV_EOF) {
			tr_log_debug("client %" PRIu64 ": read: %s", c->id, uv_strerror((int)n));
		}
		conn_close(c);
		return;
	}
	if (n > 0 && s) {
		conn_ref(c);
		process(c, buf->base, (size_t)n);
		conn_unref(c);
	}
}

/* ---- accept ---- */

/*
 * Who may talk to the daemon: its own uid, root, and with --allow-group the members of that
 * group. Membership is what the kernel says about the connecting process (its primary gid
 * and SO_PEERGROUPS, its supplementary groups at connect time), not a lookup in /etc/group:
 * that would block the loop (NSS may be LDAP or sssd) and can disagree with the process.
 */
static bool peer_allowed(struct tr_rpcsrv *s, int fd, const struct ucred *cr) {
	const struct tr_rpcsrv_options *cfg = &s->opts;
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool found = false;

	if (cr->uid == getuid() || cr->uid == 0) {
		return true;
	}
	if (!cfg->allow_group_set) {
		return false;
	}
	if (cr->gid == cfg->allow_group) {
		return true;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE || len == 0) {
			return false;
		}
		groups = malloc(len);
		if (!groups || getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
			free(groups);
			return false;
		}
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++) {
		found = found || groups[i] == cfg->allow_group;
	}
	if (groups != small) {
		free(groups);
	}
	return found;
}

static void on_connection(uv_stream_t *server, int status) {
	struct tr_rpcsrv *s = server->data;
	struct ucred cr = { 0 };
	socklen_t crlen = sizeof(cr);
	struct conn *c;
	uv_os_fd_t fd;
	int r;

	if (status < 0) {
		tr_log_warning("accept: %s", uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		return; /* the pending connection stays in the backlog */
	}
	r = uv_pipe_init(s->loop, &c->pipe, 0);
	if (r < 0) {
		free(c);
		return;
	}
	c->pipe.data = c;
	c->srv = s;
	c->refs = 1;
	c->id = ++s->next_id;
	tr_frame_decoder_init(&c->dec, TR_FRAME_MAX_PAYLOAD_DEFAULT);
	c->next = s->conns;
	s->conns = c;
	s->handles++;
	r = uv_accept(server, (uv_stream_t *)&c->pipe);
	if (r < 0) {
		tr_log_warning("accept: %s", uv_strerror(r));
		conn_close(c);
		return;
	}
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
		getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
		tr_log_warning("client %" PRIu64 ": no peer credentials, closing", c->id);
		s->cnt.refused_cred++;
		conn_close(c);
		return;
	}
	c->pid = (long)cr.pid;
	c->uid = (long)cr.uid;
	if (!peer_allowed(s, fd, &cr)) {
		tr_log_warning("refused connection from pid %ld uid %ld: not allowed", c->pid, c->uid);
		s->cnt.refused_cred++;
		conn_close(c);
		return;
	}
	if (s->n_conns >= s->max_conns) {
		struct tr_json *data = tr_json_new_object();
		struct tr_rpc_id nid = { .type = TR_RPC_ID_NULL };
		char *buf = NULL;
		size_t len = 0;
		int e = 0;

		s->cnt.refused_limit++;
		if (!s->refusing) {
			s->refusing = true;
			tr_log_warning("connection limit (%zu) reached, refusing clients", s->max_conns);
		}
		tr_json_put(data, "limit", tr_json_new_int((int64_t)s->max_conns), &e);
		tr_json_put(data, "value", tr_json_new_int((int64_t)s->n_conns + 1), &e);
		if (e < 0 || tr_rpc_build_error_framed(&nid, TR_RPC_OVERLOADED, "too many connections",
			data, 0, &buf, &len) < 0) {
			buf = NULL;
		}
		tr_json_free(data);
		conn_fail(c, buf, len);
		return;
	}
	c->counted = true;
	s->n_conns++;
	tr_log_debug("client %" PRIu64 ": connected, pid %ld uid %ld", c->id, c->pid, c->uid);
	r = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
	if (r < 0) {
		conn_close(c);
	}
}

/* Runs once a second only while some client is over the soft output limit. */
static void on_timer(uv_timer_t *t) {
	struct tr_rpcsrv *s = t->data;
	uint64_t now = uv_now(s->loop);
	bool over = false;

	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->closing || c->over_soft_since == 0) {
			continue;
		}
		if (out_queued(c) <= TR_OUTQ_SOFT_LIMIT) {
			c->over_soft_since = 0;
		} else if (now - c->over_soft_since >= TR_OUTQ_SOFT_SECONDS * 1000u) {
			tr_log_warning("client %" PRIu64 " (pid %ld) too slow, disconnecting "
				"(over %u bytes for %d s)", c->id, c->pid, TR_OUTQ_SOFT_LIMIT,
				TR_OUTQ_SOFT_SECONDS);
			s->cnt.slow++;
			conn_close(c);
		} else {
			over = true;
		}
	}
	if (!over) {
		(void)uv_timer_stop(t);
	}
}

/* ---- listening socket ---- */

static int mkparent(const char *path) {
	char *dir = strdup(path), *slash;
	int r = 0;

	if (!dir) {
		return -ENOMEM;
	}
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			r = -errno;
			tr_log_err("cannot create %s: %s", dir, strerror(errno));
		}
	}
	free(dir);
	return r;
}

/* Is a live server listening at path? Blocking connect on a Unix socket: startup only. */
static bool socket_alive(const char *path) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;
	bool alive;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		return false;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return false;
	}
	alive = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return alive;
}

static void on_handle_closed(uv_handle_t *h) {
	struct tr_rpcsrv *s = h->data;

	s->handles--;
	maybe_done(s);
}

static void free_cb(void *userdata) {
	(void)tr_rpcsrv_free(userdata);
}

int tr_rpcsrv_new(uv_loop_t *loop, const struct tr_rpcsrv_options *opts,
	const struct tr_rpcsrv_handlers *h, struct tr_rpcsrv **ret) {
	struct tr_rpcsrv *s;
	int listen_fd = opts->listen_fd;
	char *path = NULL;
	struct stat st;
	mode_t old;
	int r;

	if (!h->dispatch || (listen_fd < 0 && !opts->socket_path)) {
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		return -ENOMEM;
	}
	s->loop = loop;
	s->opts = *opts;
	s->opts.socket_path = NULL;
	s->h = *h;
	s->max_conns = opts->max_connections > 0 ? opts->max_connections :
		TR_MAX_CONNECTIONS_DEFAULT;
	if (listen_fd < 0) {
		path = strdup(opts->socket_path);
		if (!path) {
			free(s);
			return -ENOMEM;
		}
		r = mkparent(path);
		if (r < 0) {
			goto fail;
		}
		if (lstat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				tr_log_err("%s exists and is not a socket, refusing to remove it", path);
				r = -EEXIST;
				goto fail;
			}
			if (socket_alive(path)) {
				tr_log_err("%s: another taskrouterd is running", path);
				r = -EADDRINUSE;
				goto fail;
			}
			if (unlink(path) < 0) {
				r = -errno;
				tr_log_err("cannot remove stale socket %s: %s", path, strerror(errno));
				goto fail;
			}
			tr_log_info("removed stale socket %s", path);
		}
	}
	r = uv_pipe_init(loop, &s->listener, 0);
	if (r < 0) {
		goto fail;
	}
	s->listener.data = s;
	s->handles++;
	if (listen_fd >= 0) {
		r = uv_pipe_open(&s->listener, listen_fd);
	} else {
		old = umask(0177);
		r = uv_pipe_bind(&s->listener, path);
		umask(old);
		if (r == 0) {
			s->bound_path = path;
			path = NULL;
			if (chmod(s->bound_path, 0600) < 0) {
				tr_log_warning("chmod %s: %s, ignoring", s->bound_path, strerror(errno));
			}
		}
	}
	if (r == 0) {
		r = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
	}
	if (r < 0) {
		tr_log_err("cannot listen on %s: %s", s->bound_path ? s->bound_path :
			(path ? path : "the activated socket"), uv_strerror(r));
		goto fail_handle;
	}
	r = uv_timer_init(loop, &s->timer);
	if (r < 0) {
		goto fail_handle;
	}
	s->timer.data = s;
	s->handles++;
	/* Neither fails on Linux (they only link the handle into the loop). */
	(void)uv_check_init(loop, &s->flush_check);
	s->flush_check.data = s;
	s->handles++;
	(void)uv_prepare_init(loop, &s->flush_prepare);
	s->flush_prepare.data = s;
	s->handles++;
	tr_log_info("listening on %s", s->bound_path ? s->bound_path : "the activated socket");
	*ret = s;
	return 0;

fail_handle:
	/* The listener is closed asynchronously; s must outlive it. */
	if (s->bound_path) {
		(void)unlink(s->bound_path);
	}
	s->closing = true;
	s->timer_closed = true;
	uv_close((uv_handle_t *)&s->listener, on_handle_closed);
	free(path);
	/* The caller never sees s: free it from the close callback (the caller runs the loop
	 * to drain after a startup failure). */
	s->done = free_cb;
	s->done_userdata = s;
	return r;
fail:
	free(path);
	free(s);
	return r;
}

static void on_close_deadline(uv_timer_t *t) {
	struct tr_rpcsrv *s = t->data;

	for (struct conn *c = s->conns; c; c = c->next) {
		conn_close(c);
	}
}

void tr_rpcsrv_close(struct tr_rpcsrv *s, void (*done)(void *userdata), void *userdata) {
	if (!s) {
		if (done) {
			done(userdata);
		}
		return;
	}
	s->done = done;
	s->done_userdata = userdata;
	if (s->closing) {
		maybe_done(s);
		return;
	}
	s->closing = true;
	uv_close((uv_handle_t *)&s->listener, on_handle_closed);
	/* Connections with queued output get TR_CLOSE_FLUSH_MS to drain; the others close now. */
	for (struct conn *c = s->conns; c; c = c->next) {
		if ((c->writes > 0 || c->out.n > 0) && !c->closing) {
			c->flush_close = true;
			(void)uv_read_stop((uv_stream_t *)&c->pipe);
		} else {
			conn_close(c);
		}
	}
	if (s->conns) {
		(void)uv_timer_start(&s->timer, on_close_deadline, TR_CLOSE_FLUSH_MS, 0);
	} else {
		close_timers(s);
	}
	if (s->bound_path) {
		(void)unlink(s->bound_path);
	}
}

struct tr_rpcsrv *tr_rpcsrv_free(struct tr_rpcsrv *s) {
	if (!s) {
		return NULL;
	}
	free(s->bound_path);
	free(s);
	return NULL;
}

void tr_rpcsrv_get_stats(const struct tr_rpcsrv *s, struct tr_rpcsrv_stats *ret) {
	*ret = (struct tr_rpcsrv_stats){ 0 };
	if (s) {
		*ret = s->cnt;
		ret->connections = s->n_conns;
	}
}
