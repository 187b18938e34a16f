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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "frame.h"
#include "json.h"
#include "log.h"
#include "outq.h"
#include "rpc.h"
#include "sockfile.h"
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
	long pid;
	uid_t uid;
	struct tr_peer_user *user; /* its uid's accounting */
	uint64_t rx_ms;    /* loop time of the last byte received */
	bool closing, paused, flush_close, counted;
	bool failed; /* an error was sent: nothing more goes out, closed once it is written */
	struct tr_frame_decoder dec;
	unsigned inflight;
	unsigned writes; /* queued uv_write requests */
	char *stash;     /* unread input while paused */
	size_t stash_len;
	uint64_t over_soft_since;
	/* Frames sent during this loop iteration, written with one writev when the iteration's
	 * callbacks are done (see flush_all): a burst of events or pipelined replies costs one
	 * system call per client instead of one per frame. */
	struct tr_outq out;
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
	struct tr_outq_piece pieces[]; /* n pieces, let go once written */
};

struct tr_rpcsrv {
	uv_loop_t *loop;
	struct tr_rpcsrv_options opts; /* socket_path not kept: see bound_path */
	struct tr_rpcsrv_handlers h;
	uv_pipe_t listener;
	uv_timer_t timer;
	uv_timer_t idle_timer; /* ticks while some client is in the middle of a frame */
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
	unsigned idle_ms;
	struct tr_peer_users users;
	struct tr_sock_access access;
	bool fd_logged; /* running out of fds has been logged */
	uint64_t next_id;
	struct tr_rpcsrv_stats cnt; /* .connections is filled from n_conns */
	bool refusing; /* a refusal burst has been logged */
	bool closing;
	bool timer_closed;
	void (*done)(void *userdata);
	void *done_userdata;
	bool rbuf_busy;
	/* The read buffer the connections share, READ_BUF_SIZE bytes, allocated with the server
	 * and never cleared: only the pages reads reach become the daemon's memory (calloc wrote
	 * all 64 KB, which stayed private while requests are a few hundred bytes). */
	char rbuf[];
};

static void conn_close(struct conn *c);
static void on_handle_closed(uv_handle_t *h);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);
static void process(struct conn *c, const char *data, size_t len);
static void flush_all(struct tr_rpcsrv *s);
static void on_idle_tick(uv_timer_t *t);
static void arm_idle(struct conn *c);

static struct conn *conn_ref(struct conn *c) {
	c->refs++;
	return c;
}

static void conn_unref(struct conn *c) {
	if (--c->refs > 0) {
		return;
	}
	tr_outq_done(&c->out);
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
	uv_close((uv_handle_t *)&s->idle_timer, on_handle_closed);
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
		if (c->user) {
			c->user->conns--;
		}
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

/* A connection that is to close once its output is out (flush_close: after an error, closed
 * once written; at shutdown, also once answered) closes when nothing is left to write. */
static void close_if_drained(struct conn *c) {
	if (!c->closing && c->flush_close && c->writes == 0 && c->out.n == 0 &&
		(c->inflight == 0 || c->failed)) {
		conn_close(c);
	}
}

/* Some output was written: below the soft limit again? Everything out before closing? */
static void written(struct conn *c) {
	if (!c->closing && out_queued(c) <= TR_OUTQ_SOFT_LIMIT) {
		c->over_soft_since = 0;
	}
	close_if_drained(c);
}

static void wreq_free(struct wreq *w) {
	for (size_t i = 0; i < w->n; i++) {
		tr_outq_piece_release(&w->pieces[i]);
	}
	free(w);
}

static void on_write(uv_write_t *req, int status) {
	struct wreq *w = req->data;
	struct conn *c = w->c;

	(void)status;
	wreq_free(w);
	c->writes--;
	written(c);
	conn_unref(c);
}

/* Write c's batch: what the socket takes now, the rest handed to libuv as one write request
 * (one writev). */
static void flush_conn(struct conn *c) {
	struct wreq *w;
	int r;

	if (c->out.n == 0) {
		return;
	}
	if (c->closing || !c->srv) {
		tr_outq_clear(&c->out);
		return;
	}
	/* Most batches fit in the socket's buffer: then there is no write request to allocate, no
	 * callback pass, and none of the epoll_ctl libuv makes for the connection after each
	 * completed request (7 % of the daemon's time fanning out to 100 subscribers). */
	r = tr_outq_try_write(&c->out, (uv_stream_t *)&c->pipe);
	if (r < 0) {
		tr_outq_clear(&c->out);
		tr_log_debug("client %" PRIu64 ": write failed: %s, closing", c->id, uv_strerror(r));
		conn_close(c);
		return;
	}
	if (c->out.n == 0) {
		written(c);
		return;
	}
	w = malloc(sizeof(*w) + c->out.n * sizeof(struct tr_outq_piece));
	if (!w) {
		tr_outq_clear(&c->out);
		tr_log_warning("client %" PRIu64 ": out of memory writing, closing", c->id);
		conn_close(c);
		return;
	}
	w->c = conn_ref(c);
	w->n = c->out.n;
	w->req.data = w;
	/* libuv copies the uv_buf_t array, so the queue is free for the next batch. */
	r = uv_write(&w->req, (uv_stream_t *)&c->pipe, c->out.iov, (unsigned)w->n, on_write);
	tr_outq_take(&c->out, w->pieces);
	if (r < 0) {
		wreq_free(w);
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

static void on_timer(uv_timer_t *t);

/* Queue a framed message: buf (taken), then tail's bytes when tail is not NULL. */
static int conn_send(struct conn *c, char *buf, size_t len, struct tr_outq_shared *tail) {
	struct tr_rpcsrv *s = c->srv;
	size_t q;

	/* A connection being closed after an error gets nothing more (events would keep it
	 * open); at shutdown, flush_close only means "drain, then close". */
	if (c->closing || !s || c->failed || (c->flush_close && !s->closing)) {
		free(buf);
		return -EPIPE;
	}
	if (tr_outq_push_shared(&c->out, buf, len, tail) < 0) {
		return -ENOMEM;
	}
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

int tr_rpcsrv_send(void *owner, char *head, size_t head_len, struct tr_outq_shared *tail) {
	return conn_send(owner, head, head_len, tail);
}

/* Send a message then close once it is written. */
static void conn_fail(struct conn *c, char *buf, size_t len) {
	if (buf && conn_send(c, buf, len, NULL) == 0) {
		c->flush_close = true;
		c->failed = true;
		(void)uv_read_stop((uv_stream_t *)&c->pipe);
		/* a full batch is written at once: then it is out already */
		close_if_drained(c);
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
		(void)conn_send(c, buf, len, NULL);
	}
	c->inflight--;
	/* Shutdown waits for this connection's last call: once it is answered and written
	 * (on_write), or now if nothing is queued, the connection closes. */
	close_if_drained(c);
	if (c->paused && c->inflight < TR_RPC_MAX_INFLIGHT && !c->closing) {
		char *stash = c->stash;
		size_t n = c->stash_len;

		c->paused = false;
		c->rx_ms = uv_now(c->srv->loop); /* its silence was ours */
		c->stash = NULL;
		c->stash_len = 0;
		if (stash) {
			process(c, stash, n);
			free(stash);
		}
		if (!c->paused && !c->closing && !c->flush_close) {
			(void)uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
		}
		arm_idle(c); /* the stash may have ended in the middle of a frame */
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

uid_t tr_call_peer_uid(const struct tr_call *call) {
	return call->c->uid;
}

bool tr_call_from_owner(const struct tr_call *call) {
	return tr_peer_is_owner(call->c->uid);
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
			(void)conn_send(c, buf, blen, NULL);
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
			(void)conn_send(c, buf, blen, NULL);
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
	*buf = uv_buf_init(s->rbuf, READ_BUF_SIZE);
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
		c->rx_ms = uv_now(s->loop);
		conn_ref(c);
		process(c, buf->base, (size_t)n);
		arm_idle(c);
		conn_unref(c);
	}
}

/* Start the idle check if c is left in the middle of a frame. */
static void arm_idle(struct conn *c) {
	struct tr_rpcsrv *s = c->srv;

	if (s && !s->closing && !c->closing && tr_frame_decoder_pending(&c->dec) &&
		!uv_is_active((uv_handle_t *)&s->idle_timer)) {
		uint64_t tick = s->idle_ms / 2 < 1000 ? s->idle_ms / 2 + 1 : 1000;

		(void)uv_timer_start(&s->idle_timer, on_idle_tick, tick, tick);
	}
}

/* A client in the middle of a frame that has sent nothing for idle_ms holds a buffer and a
 * slot for nothing: drop it. Runs only while some client is mid-frame (a paused one keeps it
 * running: its silence is ours until its calls end). */
static void on_idle_tick(uv_timer_t *t) {
	struct tr_rpcsrv *s = t->data;
	uint64_t now = uv_now(s->loop);
	bool any = false;

	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->closing || c->flush_close || !tr_frame_decoder_pending(&c->dec)) {
			continue;
		}
		if (c->paused) {
			any = true;
			continue;
		}
		if (now - c->rx_ms >= s->idle_ms) {
			s->cnt.idle_timeouts++;
			tr_log_info("client %" PRIu64 " (pid %ld): partial frame (%zu bytes held) and "
				    "nothing for %u ms, closing", c->id, c->pid,
				tr_frame_decoder_held(&c->dec), s->idle_ms);
			conn_close(c);
		} else {
			any = true;
		}
	}
	if (!any) {
		(void)uv_timer_stop(t);
	}
}

/* ---- accept ---- */

/* Log a refusal once per uid (a peer that retries in a loop must not flood the journal). */
static void log_refusal(struct tr_rpcsrv *s, const struct conn *c, const char *why) {
	if (tr_peer_users_first_refusal(&s->users, c->uid)) {
		tr_log_warning("refused connection from pid %ld uid %ld: %s (logged once per user)",
			c->pid, (long)c->uid, why);
	} else {
		tr_log_debug("refused connection from pid %ld uid %ld: %s", c->pid, (long)c->uid, why);
	}
}

/* Refuse c with -32008 (written, then closed). */
static void refuse_busy(struct tr_rpcsrv *s, struct conn *c, const char *why, size_t limit,
	bool per_user) {
	struct tr_json *data = tr_json_new_object();
	struct tr_rpc_id nid = { .type = TR_RPC_ID_NULL };
	char *buf = NULL;
	size_t len = 0;
	int e = 0;

	if (per_user) {
		s->cnt.refused_quota++;
		log_refusal(s, c, why);
	} else {
		s->cnt.refused_limit++;
		if (!s->refusing) {
			s->refusing = true;
			tr_log_warning("connection limit (%zu) reached, refusing clients", s->max_conns);
		}
	}
	tr_json_put(data, "limit", tr_json_new_int((int64_t)limit), &e);
	tr_json_put(data, "scope", tr_json_new_string(per_user ? "user" : "daemon"), &e);
	if (e < 0 || tr_rpc_build_error_framed(&nid, TR_RPC_OVERLOADED, why, data, 0, &buf,
		&len) < 0) {
		buf = NULL;
	}
	tr_json_free(data);
	conn_fail(c, buf, len);
}

static void on_connection(uv_stream_t *server, int status) {
	struct tr_rpcsrv *s = server->data;
	struct ucred cr = { 0 };
	socklen_t crlen = sizeof(cr);
	struct conn *c;
	const char *why;
	size_t limit = 0;
	uv_os_fd_t fd;
	int r;

	if (status == UV_EMFILE || status == UV_ENFILE) {
		/* libuv's reserve descriptor has accepted and closed the waiting peers. The
		 * connection limit is set below the fd limit, so this means fds went elsewhere. */
		s->cnt.refused_fds++;
		if (!s->fd_logged) {
			s->fd_logged = true;
			tr_log_warning("accept: %s: clients are being dropped (RLIMIT_NOFILE)",
				uv_strerror(status));
		}
		return;
	}
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
	c->rx_ms = uv_now(s->loop);
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
	s->fd_logged = false;
	c->pid = (long)cr.pid;
	c->uid = cr.uid;
	if (!tr_sockfile_peer_allowed(&s->access, fd, &cr)) {
		log_refusal(s, c, "not allowed");
		s->cnt.refused_cred++;
		conn_close(c);
		return;
	}
	c->user = tr_peer_users_get(&s->users, c->uid); /* NULL: the table is full */
	why = tr_peer_users_over_quota(&s->users, c->uid, c->user, s->n_conns, s->max_conns,
		&limit);
	if (why) {
		refuse_busy(s, c, why, limit, s->n_conns < s->max_conns);
		return;
	}
	c->counted = true;
	s->n_conns++;
	if (c->user) {
		c->user->conns++;
	}
	tr_log_debug("client %" PRIu64 ": connected, pid %ld uid %ld", c->id, c->pid, (long)c->uid);
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
	mode_t old;
	int r;

	if (!h->dispatch || (listen_fd < 0 && !opts->socket_path)) {
		return -EINVAL;
	}
	s = malloc(sizeof(*s) + READ_BUF_SIZE);
	if (!s) {
		return -ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->opts = *opts;
	s->opts.socket_path = NULL;
	s->h = *h;
	s->access = (struct tr_sock_access){ opts->allow_group_set, opts->allow_group };
	s->max_conns = tr_sockfile_fit_fd_limit(opts->max_connections > 0 ? opts->max_connections :
		TR_MAX_CONNECTIONS_DEFAULT);
	s->idle_ms = opts->frame_idle_ms > 0 ? opts->frame_idle_ms : TR_FRAME_IDLE_MS_DEFAULT;
	if (listen_fd < 0) {
		path = strdup(opts->socket_path);
		if (!path) {
			free(s);
			return -ENOMEM;
		}
		r = tr_sockfile_prepare(&s->access, path);
		if (r < 0) {
			goto fail;
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
			r = tr_sockfile_set_mode(&s->access, s->bound_path);
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
	/* Neither this nor the two below fails on Linux (they only link the handle). */
	(void)uv_timer_init(loop, &s->idle_timer);
	s->idle_timer.data = s;
	s->handles++;
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
	bool calls = false;

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
	(void)uv_timer_stop(&s->idle_timer);
	/* Nothing more is read. Connections with calls in flight wait for their answers (up to
	 * TR_CLOSE_CALLS_MS), those with queued output get TR_CLOSE_FLUSH_MS to drain; each
	 * closes as soon as it is done. The others close now. */
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->closing) {
			continue;
		}
		if (c->inflight > 0 || c->writes > 0 || c->out.n > 0) {
			c->flush_close = true;
			(void)uv_read_stop((uv_stream_t *)&c->pipe);
			calls = calls || c->inflight > 0;
		} else {
			conn_close(c);
		}
	}
	if (s->conns) {
		(void)uv_timer_start(&s->timer, on_close_deadline,
			calls ? TR_CLOSE_CALLS_MS : TR_CLOSE_FLUSH_MS, 0);
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
	tr_peer_users_done(&s->users);
	free(s->bound_path);
	free(s);
	return NULL;
}

size_t tr_rpcsrv_max_connections(const struct tr_rpcsrv *s) {
	return s ? s->max_conns : 0;
}

void tr_rpcsrv_get_stats(const struct tr_rpcsrv *s, struct tr_rpcsrv_stats *ret) {
	*ret = (struct tr_rpcsrv_stats){ 0 };
	if (s) {
		*ret = s->cnt;
		ret->connections = s->n_conns;
	}
}
