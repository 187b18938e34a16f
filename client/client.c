/*
 * client.c — libtaskrouter: connection, framing, request/reply matching, events.
 *
 * One non-blocking Unix stream socket per client. Output is a byte queue of framed
 * requests; input goes through the proto frame decoder, and each complete payload is
 * parsed as a JSON-RPC message and dispatched: replies to the pending call with the same
 * integer id, "event" notifications to the event callback or the event queue.
 *
 * Blocking calls are the asynchronous machinery plus a poll() loop with a deadline.
 * Nothing here prints, aborts or touches signal dispositions. Uses proto (linked
 * statically, hidden by the version script), never uv.
 */
#include "taskrouter/client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client-private.h"
#include "frame.h"
#include "json.h"
#include "tr-limits.h"
#include "rpc.h"

/* The public error codes are the protocol's (proto/rpc.h), number for number. */
#define SAME_CODE(name) _Static_assert(TR_CLIENT_##name == TR_RPC_##name, #name)
SAME_CODE(PARSE_ERROR);
SAME_CODE(INVALID_REQUEST);
SAME_CODE(METHOD_NOT_FOUND);
SAME_CODE(INVALID_PARAMS);
SAME_CODE(INTERNAL_ERROR);
SAME_CODE(NOT_FOUND);
SAME_CODE(NOT_CONNECTED);
SAME_CODE(UPSTREAM_ERROR);
SAME_CODE(VERSION_CONFLICT);
SAME_CODE(TIMEOUT);
SAME_CODE(RATE_LIMITED);
SAME_CODE(TOO_MANY_REQUESTS);
SAME_CODE(OVERLOADED);
SAME_CODE(TOKEN_EXPIRED);
SAME_CODE(REFRESH_PENDING);
SAME_CODE(REPLAY_GONE);
SAME_CODE(INVALID_STATE);
SAME_CODE(NETWORK_ERROR);
SAME_CODE(NOT_PERMITTED);
#undef SAME_CODE

struct pending {
	struct pending *next;
	int64_t id;
	int64_t deadline; /* monotonic ms, -1: none */
	bool sync;        /* a blocking call waits on it (lives on that call's stack) */
	/* async */
	tr_client_reply_cb cb;
	void *userdata;
	/* sync: the outcome */
	bool done;
	int errnum;
	struct tr_json *result;
	struct tr_client_error err;
};

struct evnode {
	struct evnode *next;
	struct tr_client_event *ev;
};

struct tr_client {
	int fd;
	int dead; /* 0, or the sticky negative errno that killed the connection */
	int64_t next_id;

	char *out;
	size_t out_len, out_off, out_cap;

	struct tr_frame_decoder dec;
	struct pending *pending;

	struct evnode *evq_head, *evq_tail;
	size_t evq_n;

	tr_client_event_cb ev_cb;
	void *ev_userdata;

	/* Set while input is being dispatched: a callback must not read (it would feed the
	 * decoder bytes out of order), so blocking calls and process refuse with -EDEADLK. */
	bool reading;

	/* A send from tr_client_call_async that found the connection broken. It may not kill
	 * the connection there (that fires callbacks, which call_async never does), so the
	 * next tr_client_process does; until then the client asks to be processed at once. */
	int write_err;
};

struct tr_task {
	struct tr_json *j; /* an object */
};

/* ------------------------------------------------------------------ helpers */

static int64_t now_ms(void) {
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_from(int timeout_ms) {
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* Milliseconds left until deadline for poll(): -1 forever, 0 when passed. */
static int remaining(int64_t deadline) {
	int64_t left;

	if (deadline < 0) {
		return -1;
	}
	left = deadline - now_ms();
	if (left <= 0) {
		return 0;
	}
	return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static char *sdup(const char *s) {
	return s ? strdup(s) : NULL;
}

static const char *local_message(int errnum) {
	switch (errnum) {
	case -ETIMEDOUT:
		return "timed out";
	case -ECONNRESET:
		return "connection closed by the daemon";
	case -EMSGSIZE:
		return "the daemon sent a frame above the size limit";
	case -EBADMSG:
		return "the daemon sent an invalid message";
	case -ENOBUFS:
		return "queue limit reached (unread events or unsent requests)";
	case -EDEADLK:
		return "called from inside a callback";
	case -ECANCELED:
		return "cancelled: the client was closed";
	case -ENOMEM:
		return "out of memory";
	case -EINVAL:
		return "invalid argument";
	default:
		return NULL;
	}
}

/* Fill *e with a local failure. Returns errnum. */
static int set_local_error(struct tr_client_error *e, int errnum) {
	char buf[128];
	const char *m;

	if (!e) {
		return errnum;
	}
	tr_client_error_done(e);
	m = local_message(errnum);
	if (!m) {
		m = strerror_r(-errnum, buf, sizeof(buf));
	}
	e->errnum = errnum;
	e->code = 0;
	e->message = sdup(m);
	e->data = NULL;
	return errnum;
}

void tr_client_error_done(struct tr_client_error *e) {
	if (!e) {
		return;
	}
	free(e->message);
	free(e->data);
	*e = (struct tr_client_error){0};
}

const char *tr_client_code_str(int code) {
	return tr_rpc_code_str(code);
}

/* Move an error struct's contents (dst must be empty or NULL). */
static void error_move(struct tr_client_error *dst, struct tr_client_error *src) {
	if (dst) {
		tr_client_error_done(dst);
		*dst = *src;
	} else {
		tr_client_error_done(src);
	}
	*src = (struct tr_client_error){0};
}

/* ------------------------------------------------------------------ tasks */

static char *member_json(const struct tr_json *j, const char *key) {
	const struct tr_json *v = tr_json_get(j, key);
	char *s = NULL;

	return v && tr_json_dump(v, &s, NULL) == 0 ? s : NULL;
}

/*
 * The functions every object type has: wrap (takes j, an object, in all cases), parse, dup,
 * free and the member lookups. One definition for the task and the Worker-side types, so
 * they cannot drift.
 */
#define OBJECT_FUNCS(type)                                                                         \
	static struct tr_##type *type##_wrap(struct tr_json *j) {                                  \
		struct tr_##type *o;                                                               \
                                                                                                   \
		if (!tr_json_is(j, TR_JSON_OBJECT)) {                                              \
			tr_json_free(j);                                                           \
			return NULL;                                                               \
		}                                                                                  \
		o = calloc(1, sizeof(*o));                                                         \
		if (!o) {                                                                          \
			tr_json_free(j);                                                           \
			return NULL;                                                               \
		}                                                                                  \
		o->j = j;                                                                          \
		type##_init(o);                                                                    \
		return o;                                                                          \
	}                                                                                          \
	int tr_##type##_parse(const char *json, struct tr_##type **ret) {                          \
		struct tr_json *j = NULL;                                                          \
		struct tr_##type *o;                                                               \
		int r;                                                                             \
                                                                                                   \
		if (!json || !ret) {                                                               \
			return -EINVAL;                                                            \
		}                                                                                  \
		r = tr_json_parse(json, strlen(json), &j, NULL);                                   \
		if (r < 0) {                                                                       \
			return r;                                                                  \
		}                                                                                  \
		if (!tr_json_is(j, TR_JSON_OBJECT)) {                                              \
			tr_json_free(j);                                                           \
			return -EBADMSG;                                                           \
		}                                                                                  \
		o = type##_wrap(j);                                                                \
		if (!o) {                                                                          \
			return -ENOMEM;                                                            \
		}                                                                                  \
		*ret = o;                                                                          \
		return 0;                                                                          \
	}                                                                                          \
	struct tr_##type *tr_##type##_dup(const struct tr_##type *o) {                             \
		struct tr_json *j = o ? tr_json_dup(o->j) : NULL;                                  \
                                                                                                   \
		return j ? type##_wrap(j) : NULL;                                                  \
	}                                                                                          \
	struct tr_##type *tr_##type##_free(struct tr_##type *o) {                                  \
		if (o) {                                                                           \
			tr_json_free(o->j);                                                        \
			free(o);                                                                   \
		}                                                                                  \
		return NULL;                                                                       \
	}                                                                                          \
	const char *tr_##type##_get_string(const struct tr_##type *o, const char *key) {           \
		return o && key ? tr_json_get_string(o->j, key) : NULL;                            \
	}                                                                                          \
	int tr_##type##_get_int(const struct tr_##type *o, const char *key, int64_t *ret) {        \
		return o && key && ret ? tr_json_get_int(o->j, key, ret) : -EINVAL;                \
	}                                                                                          \
	char *tr_##type##_get_json(const struct tr_##type *o, const char *key) {                   \
		return o && key ? member_json(o->j, key) : NULL;                                   \
	}                                                                                          \
	char *tr_##type##_to_json(const struct tr_##type *o) {                                     \
		char *s = NULL;                                                                    \
                                                                                                   \
		return o && tr_json_dump(o->j, &s, NULL) == 0 ? s : NULL;                          \
	}

/* The Worker-side types also read booleans. */
#define GET_BOOL_FUNC(type)                                                                        \
	int tr_##type##_get_bool(const struct tr_##type *o, const char *key, bool *ret) {          \
		return o && key && ret ? tr_json_get_bool(o->j, key, ret) : -EINVAL;               \
	}

static void task_init(struct tr_task *t) {
	(void)t;
}

OBJECT_FUNCS(task)

static int64_t task_int(const struct tr_task *t, const char *key) {
	int64_t v;

	return tr_task_get_int(t, key, &v) < 0 ? -1 : v;
}

/* The typed accessors: one line each, the member name as doc/PROTOCOL.md spells it. */
#define STRING_MEMBER(fn, key)                                                                     \
	const char *fn(const struct tr_task *t) {                                                  \
		return tr_task_get_string(t, key);                                                 \
	}
#define INT_MEMBER(fn, key)                                                                        \
	int64_t fn(const struct tr_task *t) {                                                      \
		return task_int(t, key);                                                           \
	}

STRING_MEMBER(tr_task_sid, "sid")
STRING_MEMBER(tr_task_status, "status")
STRING_MEMBER(tr_task_wire_status, "wireStatus")
STRING_MEMBER(tr_task_queue_name, "queueName")
STRING_MEMBER(tr_task_channel, "taskChannelUniqueName")
STRING_MEMBER(tr_task_reason, "reason")
STRING_MEMBER(tr_task_version, "version")
STRING_MEMBER(tr_task_reservation_sid, "reservationSid")
INT_MEMBER(tr_task_priority, "priority")
INT_MEMBER(tr_task_age, "age")
#undef STRING_MEMBER
#undef INT_MEMBER

void tr_task_list_free(struct tr_task **tasks, size_t n) {
	if (!tasks) {
		return;
	}
	for (size_t i = 0; i < n; i++) {
		tr_task_free(tasks[i]);
	}
	free(tasks);
}

/* ------------------------------------------------------------------ events */

struct tr_client_event *tr_client_event_free(struct tr_client_event *ev) {
	if (!ev) {
		return NULL;
	}
	free(ev->name);
	free(ev->subscription);
	free(ev->task_sid);
	free(ev->reservation_sid);
	tr_task_free(ev->task);
	free(ev->json);
	free(ev->epoch);
	free(ev);
	return NULL;
}

/* Build an event from a notification's params (borrowed). Returns 0, -EBADMSG or -ENOMEM. */
static int event_from_params(const struct tr_json *p, struct tr_client_event **ret) {
	struct tr_client_event *ev;
	const struct tr_json *v;
	const char *s;
	int64_t seq;
	int r = -ENOMEM;

	if (!tr_json_is(p, TR_JSON_OBJECT)) {
		return -EBADMSG;
	}
	s = tr_json_get_string(p, "event");
	if (!s) {
		return -EBADMSG;
	}
	ev = calloc(1, sizeof(*ev));
	if (!ev) {
		return -ENOMEM;
	}
	ev->name = strdup(s);
	if (!ev->name) {
		goto fail;
	}
	ev->seq = tr_json_get_int(p, "seq", &seq) < 0 ? -1 : seq;
	v = tr_json_get(p, "subscription");
	if (v && tr_json_dump(v, &ev->subscription, NULL) < 0) {
		goto fail;
	}
	s = tr_json_get_string(p, "taskSid");
	if (s && !(ev->task_sid = strdup(s))) {
		goto fail;
	}
	s = tr_json_get_string(p, "reservationSid");
	if (s && !(ev->reservation_sid = strdup(s))) {
		goto fail;
	}
	s = tr_json_get_string(p, "epoch");
	if (s && !(ev->epoch = strdup(s))) {
		goto fail;
	}
	(void)tr_json_get_bool(p, "resync", &ev->resync);
	(void)tr_json_get_bool(p, "stale", &ev->stale);
	v = tr_json_get(p, "task");
	if (tr_json_is(v, TR_JSON_OBJECT)) {
		struct tr_json *copy = tr_json_dup(v);

		if (!copy || !(ev->task = task_wrap(copy))) {
			goto fail;
		}
	}
	if (tr_json_dump(p, &ev->json, NULL) < 0) {
		goto fail;
	}
	*ret = ev;
	return 0;
fail:
	tr_client_event_free(ev);
	return r;
}

/* ------------------------------------------------------------------ connection */

char *tr_client_default_socket_path(void) {
	const char *s = getenv("TASKROUTERD_SOCKET");
	char *p = NULL;

	if (s && *s) {
		return strdup(s);
	}
	s = getenv("XDG_RUNTIME_DIR");
	if (s && *s) {
		if (asprintf(&p, "%s/taskrouterd/socket", s) < 0) {
			return NULL;
		}
		return p;
	}
	return strdup("/run/taskrouterd/socket");
}

static int connect_fd(const char *path, int timeout_ms) {
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int64_t deadline = deadline_from(timeout_ms);
	size_t n = strlen(path);
	int fd, r;

	if (n == 0) {
		return -EINVAL;
	}
	if (n >= sizeof(sa.sun_path)) {
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, n + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			return fd;
		}
		r = -errno;
		if (r == -EINTR) {
			continue;
		}
		if (r == -EINPROGRESS) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int err = 0;
			socklen_t len = sizeof(err);

			r = poll(&pfd, 1, remaining(deadline));
			if (r == 0) {
				r = -ETIMEDOUT;
				break;
			}
			if (r < 0) {
				r = -errno;
				break;
			}
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
				r = -errno;
				break;
			}
			if (err) {
				r = -err;
				break;
			}
			return fd;
		}
		if (r != -EAGAIN) {
			break;
		}
		/* The listen backlog is full; a Unix socket gives no readiness for that, so
		 * retry in short steps until the deadline. */
		if (remaining(deadline) == 0) {
			r = -ETIMEDOUT;
			break;
		}
		{
			int step = remaining(deadline);

			(void)poll(NULL, 0, step < 0 || step > 10 ? 10 : step);
		}
	}
	close(fd);
	return r;
}

/*
 * Before anything is sent: is the server the daemon we mean? Only our own uid or root may
 * serve us (and the uid in $TASKROUTERD_TRUST_UID, for a member of the daemon's
 * --allow-group group). Anyone else listening at the path, for instance after swapping the
 * socket in a directory they could write to, would receive our requests and tokens.
 */
static int check_server(int fd) {
	struct ucred cr;
	socklen_t len = sizeof(cr);
	const char *trust = getenv("TASKROUTERD_TRUST_UID");

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		return -errno;
	}
	if (cr.uid == getuid() || cr.uid == 0) {
		return 0;
	}
	if (trust && *trust) {
		char *end = NULL;
		unsigned long u;

		errno = 0;
		u = strtoul(trust, &end, 10);
		if (errno == 0 && end && *end == '\0' && u == (unsigned long)cr.uid) {
			return 0;
		}
	}
	return -EPERM;
}

int tr_client_connect(const char *path, int timeout_ms, struct tr_client **ret) {
	struct tr_client *c;
	char *def = NULL;
	int fd;

	if (!ret) {
		return -EINVAL;
	}
	if (!path) {
		def = tr_client_default_socket_path();
		if (!def) {
			return -ENOMEM;
		}
		path = def;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		free(def);
		return -ENOMEM;
	}
	fd = connect_fd(path, timeout_ms);
	free(def);
	if (fd >= 0) {
		int r = check_server(fd);

		if (r < 0) {
			close(fd);
			fd = r;
		}
	}
	if (fd < 0) {
		free(c);
		return fd;
	}
	c->fd = fd;
	c->next_id = 1;
	tr_frame_decoder_init(&c->dec, 0);
	*ret = c;
	return 0;
}

/* Detach and fail every pending call with errnum. */
static void fail_pending(struct tr_client *c, int errnum) {
	struct pending *p = c->pending, *next;

	c->pending = NULL;
	for (; p; p = next) {
		next = p->next;
		p->next = NULL;
		if (p->sync) {
			p->done = true;
			p->errnum = errnum;
			(void)set_local_error(&p->err, errnum);
		} else {
			struct tr_client_error e = {0};

			(void)set_local_error(&e, errnum);
			if (p->cb) {
				p->cb(c, NULL, &e, p->userdata);
			}
			tr_client_error_done(&e);
			free(p);
		}
	}
}

static int kill_conn(struct tr_client *c, int errnum) {
	if (!c->dead) {
		c->dead = errnum;
		c->out_len = c->out_off = 0;
		fail_pending(c, errnum);
	}
	return c->dead;
}

/* After a send or recv that failed: 1 to try again (EINTR), 0 when the socket would block,
 * else the connection is dead (kill_conn's negative errno). */
static int io_failed(struct tr_client *c) {
	if (errno == EINTR) {
		return 1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		return 0;
	}
	return kill_conn(c, -ECONNRESET);
}

struct tr_client *tr_client_close(struct tr_client *c) {
	struct evnode *n, *next;

	if (!c) {
		return NULL;
	}
	fail_pending(c, -ECANCELED);
	for (n = c->evq_head; n; n = next) {
		next = n->next;
		tr_client_event_free(n->ev);
		free(n);
	}
	if (c->fd >= 0) {
		close(c->fd);
	}
	tr_frame_decoder_done(&c->dec);
	free(c->out);
	free(c);
	return NULL;
}

int tr_client_fd(const struct tr_client *c) {
	return c ? c->fd : -1;
}

bool tr_client_wants_write(const struct tr_client *c) {
	return c && !c->dead && (c->out_len > c->out_off || c->write_err);
}

int tr_client_events(const struct tr_client *c) {
	if (!c) {
		return -EINVAL;
	}
	if (c->dead) {
		return c->dead;
	}
	return POLLIN | (tr_client_wants_write(c) ? POLLOUT : 0);
}

int tr_client_timeout_ms(const struct tr_client *c) {
	int64_t best = -1;

	if (!c) {
		return -1;
	}
	/* Work that needs no I/O: a broken send to report, events queued for a callback. */
	if (!c->dead && (c->write_err || (c->ev_cb && c->evq_head))) {
		return 0;
	}
	for (const struct pending *p = c->pending; p; p = p->next) {
		if (!p->sync && p->deadline >= 0 && (best < 0 || p->deadline < best)) {
			best = p->deadline;
		}
	}
	return best < 0 ? -1 : remaining(best);
}

void tr_client_set_event_cb(struct tr_client *c, tr_client_event_cb cb, void *userdata) {
	if (!c) {
		return;
	}
	c->ev_cb = cb;
	c->ev_userdata = userdata;
}

/* ------------------------------------------------------------------ input dispatch */

static struct pending *pending_take(struct tr_client *c, int64_t id) {
	for (struct pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
		struct pending *p = *pp;

		if (p->id == id) {
			*pp = p->next;
			p->next = NULL;
			return p;
		}
	}
	return NULL;
}

static void pending_unlink(struct tr_client *c, struct pending *target) {
	for (struct pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
		if (*pp == target) {
			*pp = target->next;
			target->next = NULL;
			return;
		}
	}
}

/* Fill *e from an error reply. Returns -EREMOTEIO or -ENOMEM. */
static int error_from_msg(struct tr_client_error *e, const struct tr_rpc_msg *m) {
	*e = (struct tr_client_error){.errnum = -EREMOTEIO, .code = (int)m->error_code};
	e->message = strdup(m->error_message ? m->error_message : "");
	if (!e->message) {
		return -ENOMEM;
	}
	if (m->error_data && tr_json_dump(m->error_data, &e->data, NULL) < 0) {
		return -ENOMEM;
	}
	return -EREMOTEIO;
}

static void deliver_reply(struct tr_client *c, struct tr_rpc_msg *m) {
	struct pending *p;

	if (m->id.type != TR_RPC_ID_INT) {
		return; /* not ours: we only send integer ids */
	}
	p = pending_take(c, m->id.i);
	if (!p) {
		return; /* a late reply to a call that timed out */
	}
	if (p->sync) {
		p->done = true;
		if (m->kind == TR_RPC_RESULT) {
			p->errnum = 0;
			p->result = m->result;
			m->result = NULL;
		} else {
			p->errnum = error_from_msg(&p->err, m);
			if (p->errnum == -ENOMEM) {
				(void)set_local_error(&p->err, -ENOMEM);
			}
		}
		return;
	}
	if (m->kind == TR_RPC_RESULT) {
		char *s = NULL;

		if (tr_json_dump(m->result, &s, NULL) < 0) {
			struct tr_client_error e = {0};

			(void)set_local_error(&e, -ENOMEM);
			if (p->cb) {
				p->cb(c, NULL, &e, p->userdata);
			}
			tr_client_error_done(&e);
		} else if (p->cb) {
			p->cb(c, s, NULL, p->userdata);
		}
		free(s);
	} else {
		struct tr_client_error e = {0};

		if (error_from_msg(&e, m) == -ENOMEM) {
			(void)set_local_error(&e, -ENOMEM);
		}
		if (p->cb) {
			p->cb(c, NULL, &e, p->userdata);
		}
		tr_client_error_done(&e);
	}
	free(p);
}

static int enqueue_event(struct tr_client *c, struct tr_client_event *ev) {
	struct evnode *n;

	if (c->evq_n >= TR_CLIENT_MAX_QUEUED_EVENTS) {
		tr_client_event_free(ev);
		return -ENOBUFS;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		tr_client_event_free(ev);
		return -ENOMEM;
	}
	n->ev = ev;
	if (c->evq_tail) {
		c->evq_tail->next = n;
	} else {
		c->evq_head = n;
	}
	c->evq_tail = n;
	c->evq_n++;
	return 0;
}

static struct tr_client_event *dequeue_event(struct tr_client *c) {
	struct evnode *n = c->evq_head;
	struct tr_client_event *ev;

	if (!n) {
		return NULL;
	}
	c->evq_head = n->next;
	if (!c->evq_head) {
		c->evq_tail = NULL;
	}
	c->evq_n--;
	ev = n->ev;
	free(n);
	return ev;
}

/* Handle one complete payload. Returns 0 or a fatal negative errno. */
static int handle_payload(struct tr_client *c, const char *buf, size_t len) {
	struct tr_rpc_msg *m = NULL;
	struct tr_rpc_error perr = {0};
	int r;

	r = tr_rpc_parse(buf, len, &m, &perr);
	if (r < 0) {
		tr_rpc_error_done(&perr);
		return r == -ENOMEM ? -ENOMEM : -EBADMSG;
	}
	switch (m->kind) {
	case TR_RPC_RESULT:
	case TR_RPC_ERROR:
		deliver_reply(c, m);
		break;
	case TR_RPC_NOTIFICATION:
		if (m->method && strcmp(m->method, "event") == 0) {
			struct tr_client_event *ev = NULL;

			r = event_from_params(m->params, &ev);
			if (r == -EBADMSG) {
				r = 0; /* a malformed event is skipped, not fatal */
				break;
			}
			if (r < 0) {
				break;
			}
			if (c->ev_cb) {
				c->ev_cb(c, ev, c->ev_userdata);
				tr_client_event_free(ev);
			} else {
				r = enqueue_event(c, ev);
			}
		}
		break;
	default:
		break; /* the daemon sends no requests; ignore them */
	}
	tr_rpc_msg_free(m);
	return r;
}

/* Read what is available and dispatch. Returns 0 or the fatal errno (connection killed). */
static int do_read_locked(struct tr_client *c) {
	char buf[65536];

	for (int rounds = 0; rounds < TR_CLIENT_READS_PER_PROCESS; rounds++) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		size_t off = 0;

		if (n < 0) {
			int r = io_failed(c);

			if (r > 0) {
				continue;
			}
			return r;
		}
		if (n == 0) {
			return kill_conn(c, -ECONNRESET);
		}
		while (off < (size_t)n) {
			char *payload = NULL;
			size_t plen = 0;
			ssize_t used = tr_frame_decode(
				&c->dec, buf + off, (size_t)n - off, &payload, &plen);
			int r;

			if (used < 0) {
				return kill_conn(c, (int)used == -ENOMEM ? -ENOMEM : (int)used);
			}
			off += (size_t)used;
			if (!payload) {
				continue;
			}
			r = handle_payload(c, payload, plen);
			free(payload);
			if (r < 0) {
				return kill_conn(c, r);
			}
			if (c->dead) {
				return c->dead;
			}
		}
	}
	return 0;
}

static int do_read(struct tr_client *c) {
	int r;

	c->reading = true;
	r = do_read_locked(c);
	c->reading = false;
	return r;
}

/* Send queued output until it is all out or the socket would block. Returns 0, or the
 * errno of a broken connection, which the caller kills (or defers, see write_err). */
static int send_queued(struct tr_client *c) {
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
			MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				return 0;
			}
			return -ECONNRESET;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

static int do_write(struct tr_client *c) {
	int r = c->write_err ? c->write_err : send_queued(c);

	return r < 0 ? kill_conn(c, r) : 0;
}

static void expire_async(struct tr_client *c) {
	int64_t now = now_ms();
	bool again = true;

	/* Restart the scan after each callback: it may have changed the list. */
	while (again) {
		again = false;
		for (struct pending *p = c->pending; p; p = p->next) {
			if (!p->sync && p->deadline >= 0 && p->deadline <= now) {
				struct tr_client_error e = {0};

				pending_unlink(c, p);
				(void)set_local_error(&e, -ETIMEDOUT);
				if (p->cb) {
					p->cb(c, NULL, &e, p->userdata);
				}
				tr_client_error_done(&e);
				free(p);
				again = true;
				break;
			}
		}
	}
}

/* Deliver queued events to a newly set callback. */
static void flush_queue_to_cb(struct tr_client *c) {
	struct tr_client_event *ev;

	while (c->ev_cb && (ev = dequeue_event(c))) {
		c->ev_cb(c, ev, c->ev_userdata);
		tr_client_event_free(ev);
	}
}

int tr_client_process(struct tr_client *c) {
	int r;

	if (!c) {
		return -EINVAL;
	}
	if (c->reading) {
		return -EDEADLK;
	}
	flush_queue_to_cb(c);
	if (c->dead) {
		return c->dead;
	}
	r = do_read(c);
	if (r < 0) {
		return r;
	}
	r = do_write(c);
	if (r < 0) {
		return r;
	}
	expire_async(c);
	return c->dead;
}

/* One blocking step: wait for I/O until deadline, then process. */
static int pump(struct tr_client *c, int64_t deadline) {
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	int t = remaining(deadline);
	int at = tr_client_timeout_ms(c);
	int r;

	if (at >= 0 && (t < 0 || at < t)) {
		t = at;
	}
	if (tr_client_wants_write(c)) {
		pfd.events |= POLLOUT;
	}
	r = poll(&pfd, 1, t);
	if (r < 0 && errno != EINTR) {
		return kill_conn(c, -errno);
	}
	return tr_client_process(c);
}

/* ------------------------------------------------------------------ requests */

static int queue_request(
	struct tr_client *c, const char *method, const struct tr_json *params, int64_t *ret_id) {
	struct tr_rpc_id id = {.type = TR_RPC_ID_INT, .i = c->next_id};
	char *frame = NULL;
	size_t flen = 0;
	int r;

	r = tr_rpc_build_request_framed(&id, method, params, 0, &frame, &flen);
	if (r < 0) {
		return r;
	}
	if (c->out_len - c->out_off + flen > TR_CLIENT_MAX_OUTQ) {
		free(frame);
		return -ENOBUFS;
	}
	if (c->out_off > 0 && c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
	}
	if (c->out_len + flen > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		while (cap < c->out_len + flen) {
			cap *= 2;
		}
		p = realloc(c->out, cap);
		if (!p) {
			free(frame);
			return -ENOMEM;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, frame, flen);
	c->out_len += flen;
	free(frame);
	*ret_id = c->next_id++;
	return 0;
}

/* Parse params text: NULL or an object. */
static int parse_params(const char *params_json, struct tr_json **ret) {
	struct tr_json *j = NULL;
	int r;

	*ret = NULL;
	if (!params_json) {
		return 0;
	}
	r = tr_json_parse(params_json, strlen(params_json), &j, NULL);
	if (r < 0) {
		return r == -ENOMEM ? r : -EINVAL;
	}
	if (!tr_json_is(j, TR_JSON_OBJECT)) {
		tr_json_free(j);
		return -EINVAL;
	}
	*ret = j;
	return 0;
}

int tr_client_call_async(struct tr_client *c, const char *method, const char *params_json,
	int timeout_ms, tr_client_reply_cb cb, void *userdata, int64_t *ret_id) {
	struct tr_json *params = NULL;
	struct pending *p;
	int64_t id;
	int r;

	if (!c || !method || !*method) {
		return -EINVAL;
	}
	if (c->dead) {
		return c->dead;
	}
	r = parse_params(params_json, &params);
	if (r < 0) {
		return r;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		tr_json_free(params);
		return -ENOMEM;
	}
	r = queue_request(c, method, params, &id);
	tr_json_free(params);
	if (r < 0) {
		free(p);
		return r;
	}
	p->id = id;
	p->deadline = deadline_from(timeout_ms);
	p->cb = cb;
	p->userdata = userdata;
	p->next = c->pending;
	c->pending = p;
	if (ret_id) {
		*ret_id = id;
	}
	/* Send now, so that a caller whose loop watches only for input (or nothing, until the
	 * deadline) still gets its request out. What does not fit stays queued for POLLOUT. */
	if (!c->write_err) {
		c->write_err = send_queued(c);
	}
	return 0;
}

/*
 * The blocking call on a tree. On success *ret_result (if not NULL) owns the result tree.
 * Takes nothing from params.
 */
int tr_client_call_tree(struct tr_client *c, const char *method, const struct tr_json *params,
	int timeout_ms, struct tr_json **ret_result, struct tr_client_error *ret_err) {
	struct pending p = {.sync = true, .deadline = -1};
	int64_t deadline = deadline_from(timeout_ms);
	int r;

	if (ret_err) {
		tr_client_error_done(ret_err);
	}
	if (!c || !method || !*method) {
		return set_local_error(ret_err, -EINVAL);
	}
	if (c->dead) {
		return set_local_error(ret_err, c->dead);
	}
	if (c->reading) {
		return set_local_error(ret_err, -EDEADLK);
	}
	r = queue_request(c, method, params, &p.id);
	if (r < 0) {
		return set_local_error(ret_err, r);
	}
	p.next = c->pending;
	c->pending = &p;

	/* Try to send at once; this also reads anything already waiting. */
	(void)tr_client_process(c);
	while (!p.done) {
		if (deadline >= 0 && remaining(deadline) == 0) {
			pending_unlink(c, &p);
			return set_local_error(ret_err, -ETIMEDOUT);
		}
		(void)pump(c, deadline);
	}
	/* p is no longer in the list (taken by a reply or by fail_pending). */
	if (p.errnum < 0) {
		tr_json_free(p.result);
		error_move(ret_err, &p.err);
		return p.errnum;
	}
	tr_client_error_done(&p.err);
	if (ret_result) {
		*ret_result = p.result;
	} else {
		tr_json_free(p.result);
	}
	return 0;
}

int tr_client_call(struct tr_client *c, const char *method, const char *params_json, int timeout_ms,
	char **ret_result, struct tr_client_error *ret_err) {
	struct tr_json *params = NULL, *result = NULL;
	char *s = NULL;
	int r;

	r = parse_params(params_json, &params);
	if (r < 0) {
		if (ret_err) {
			tr_client_error_done(ret_err);
		}
		return set_local_error(ret_err, r);
	}
	r = tr_client_call_tree(c, method, params, timeout_ms, &result, ret_err);
	tr_json_free(params);
	if (r < 0) {
		return r;
	}
	if (ret_result) {
		r = tr_json_dump(result, &s, NULL);
		if (r < 0) {
			tr_json_free(result);
			return set_local_error(ret_err, r);
		}
		*ret_result = s;
	}
	tr_json_free(result);
	return 0;
}

int tr_client_next_event(struct tr_client *c, int timeout_ms, struct tr_client_event **ret) {
	int64_t deadline = deadline_from(timeout_ms);
	struct tr_client_event *ev;

	if (!c || !ret) {
		return -EINVAL;
	}
	if (c->reading) {
		return -EDEADLK;
	}
	for (;;) {
		ev = dequeue_event(c);
		if (ev) {
			*ret = ev;
			return 1;
		}
		if (c->dead) {
			return c->dead;
		}
		if (c->ev_cb) {
			return -EINVAL; /* events go to the callback */
		}
		if (timeout_ms == 0) {
			(void)tr_client_process(c);
			ev = dequeue_event(c);
			if (ev) {
				*ret = ev;
				return 1;
			}
			return c->dead ? c->dead : 0;
		}
		if (deadline >= 0 && remaining(deadline) == 0) {
			return 0;
		}
		(void)pump(c, deadline);
	}
}

/* ------------------------------------------------------------------ typed helpers */

static int array_of_strings(const char *const *v, struct tr_json **ret) {
	struct tr_json *a = tr_json_new_array();

	if (!a) {
		return -ENOMEM;
	}
	int e = 0;

	for (; v && *v; v++) {
		tr_json_push(a, tr_json_new_string(*v), &e);
	}
	if (e < 0) {
		tr_json_free(a);
		return e;
	}
	*ret = a;
	return 0;
}

/* The params of events.subscribe: the filters, and since (>= 0) with its epoch (may be
 * NULL). NULL on ENOMEM. */
static struct tr_json *subscribe_params(const char *const *events, const char *const *tasks,
	const char *epoch, int64_t since) {
	struct tr_json *params = tr_json_new_object(), *a = NULL;
	int e = 0;

	if (!params) {
		return NULL;
	}
	if (events && *events) {
		tr_json_put(params, "events", array_of_strings(events, &a) < 0 ? NULL : a, &e);
	}
	if (tasks && *tasks) {
		tr_json_put(params, "tasks", array_of_strings(tasks, &a) < 0 ? NULL : a, &e);
	}
	if (since >= 0) {
		tr_json_put(params, "since", tr_json_new_int(since), &e);
		if (epoch) {
			tr_json_put(params, "epoch", tr_json_new_string(epoch), &e);
		}
	}
	return e < 0 ? tr_json_free(params) : params;
}

int tr_client_subscribe(struct tr_client *c, const char *const *events, const char *const *tasks,
	int64_t since, int timeout_ms, char **ret_result, struct tr_client_error *ret_err) {
	struct tr_json *params = subscribe_params(events, tasks, NULL, since), *result = NULL;
	int r;

	if (!params) {
		if (ret_err) {
			tr_client_error_done(ret_err);
		}
		return set_local_error(ret_err, -ENOMEM);
	}
	r = tr_client_call_tree(c, "events.subscribe", params, timeout_ms, &result, ret_err);
	tr_json_free(params);
	if (r < 0) {
		return r;
	}
	if (ret_result) {
		char *s = NULL;

		r = tr_json_dump(result, &s, NULL);
		tr_json_free(result);
		if (r < 0) {
			return set_local_error(ret_err, r);
		}
		*ret_result = s;
		return 0;
	}
	tr_json_free(result);
	return 0;
}

struct tr_client_subscription *tr_client_subscription_free(struct tr_client_subscription *s) {
	if (!s) {
		return NULL;
	}
	free(s->id);
	free(s->epoch);
	free(s->gap_reason);
	free(s->gap_data);
	free(s->json);
	free(s);
	return NULL;
}

/* The gap's reason from the refusal's data text (NULL: none given). Returns a malloc'd
 * string, NULL on ENOMEM. */
static char *gap_reason(const char *data) {
	struct tr_json *j = NULL;
	const char *reason = NULL;
	char *s;

	if (data && tr_json_parse(data, strlen(data), &j, NULL) == 0) {
		reason = tr_json_get_string(j, "reason");
	}
	s = strdup(reason ? reason : "unknown");
	tr_json_free(j);
	return s;
}

/* Fill sub from an events.subscribe result (borrowed). 0 or -ENOMEM. */
static int subscription_from_result(struct tr_client_subscription *sub,
	const struct tr_json *result) {
	const struct tr_json *id = tr_json_get(result, "subscription");
	const char *epoch = tr_json_get_string(result, "epoch");

	if (tr_json_get_int(result, "seq", &sub->seq) < 0) {
		sub->seq = -1;
	}
	if (tr_json_is(id, TR_JSON_STRING)) {
		sub->id = strdup(id->u.str.s);
	} else if (id && tr_json_dump(id, &sub->id, NULL) < 0) {
		sub->id = NULL;
	}
	if ((id && !sub->id) || (epoch && !(sub->epoch = strdup(epoch)))) {
		return -ENOMEM;
	}
	return tr_json_dump(result, &sub->json, NULL) < 0 ? -ENOMEM : 0;
}

int tr_client_subscribe_resume(struct tr_client *c, const char *const *events,
	const char *const *tasks, const char *epoch, int64_t since, int timeout_ms,
	struct tr_client_subscription **ret, struct tr_client_error *ret_err) {
	struct tr_client_subscription *sub = NULL;
	struct tr_client_error err = { 0 };
	struct tr_json *params = NULL, *result = NULL;
	int r;

	if (ret_err) {
		tr_client_error_done(ret_err);
	}
	if (!ret) {
		return set_local_error(ret_err, -EINVAL);
	}
	sub = calloc(1, sizeof(*sub));
	params = subscribe_params(events, tasks, epoch, since);
	if (!sub || !params) {
		r = set_local_error(&err, -ENOMEM);
		goto fail;
	}
	r = tr_client_call_tree(c, "events.subscribe", params, timeout_ms, &result, &err);
	params = tr_json_free(params);
	if (r == -EREMOTEIO && err.code == TR_CLIENT_REPLAY_GONE && since >= 0) {
		/* The events since `since` cannot be told: say so, and start from now. */
		sub->gap = true;
		sub->gap_data = err.data;
		err.data = NULL;
		tr_client_error_done(&err);
		sub->gap_reason = gap_reason(sub->gap_data);
		params = subscribe_params(events, tasks, NULL, -1);
		if (!sub->gap_reason || !params) {
			r = set_local_error(&err, -ENOMEM);
			goto fail;
		}
		r = tr_client_call_tree(c, "events.subscribe", params, timeout_ms, &result, &err);
		params = tr_json_free(params);
	}
	if (r < 0) {
		goto fail;
	}
	r = subscription_from_result(sub, result);
	tr_json_free(result);
	if (r < 0) {
		r = set_local_error(&err, r);
		goto fail;
	}
	*ret = sub;
	return 0;
fail:
	tr_json_free(params);
	tr_client_subscription_free(sub);
	if (ret_err) {
		*ret_err = err;
	} else {
		tr_client_error_done(&err);
	}
	return r;
}

/* Call a method whose result is a Task. Consumes params (NULL, or build_err < 0: an ENOMEM
 * in the caller's building, reported as such). */
static int task_call(struct tr_client *c, const char *method, struct tr_json *params,
	int build_err, int timeout_ms, struct tr_task **ret_task,
	struct tr_client_error *ret_err) {
	struct tr_json *result = NULL;
	struct tr_task *t;
	int r;

	if (ret_err) {
		tr_client_error_done(ret_err);
	}
	if (!params || build_err < 0) {
		tr_json_free(params);
		return set_local_error(ret_err, -ENOMEM);
	}
	r = tr_client_call_tree(c, method, params, timeout_ms, &result, ret_err);
	tr_json_free(params);
	if (r < 0) {
		return r;
	}
	if (!ret_task) {
		tr_json_free(result);
		return 0;
	}
	if (!tr_json_is(result, TR_JSON_OBJECT)) {
		tr_json_free(result);
		return set_local_error(ret_err, -EBADMSG);
	}
	t = task_wrap(result);
	if (!t) {
		return set_local_error(ret_err, -ENOMEM);
	}
	*ret_task = t;
	return 0;
}

/* o[key] = v when v is not NULL (tr_json_put's sticky error in *e). Returns *e. */
static int put_str(struct tr_json *o, const char *key, const char *v, int *e) {
	return v ? tr_json_put(o, key, tr_json_new_string(v), e) : *e;
}

static struct tr_json *sid_params(const char *sid) {
	struct tr_json *o = tr_json_new_object();
	int e = 0;

	return put_str(o, "sid", sid, &e) < 0 ? tr_json_free(o) : o;
}

#define CHECK_ARGS(c, sid, err)                                                                    \
	do {                                                                                       \
		if (!(c) || !(sid)) {                                                              \
			if (err) {                                                                 \
				tr_client_error_done(err);                                         \
			}                                                                          \
			return set_local_error((err), -EINVAL);                                    \
		}                                                                                  \
	} while (0)

static int invalid(struct tr_client_error *err) {
	if (err) {
		tr_client_error_done(err);
	}
	return set_local_error(err, -EINVAL);
}

/* Copy the "tasks" array of a task.list (or events.subscribe) result into task objects. */
static int tasks_from_result(
	const struct tr_json *result, struct tr_task ***ret_tasks, size_t *ret_n) {
	const struct tr_json *arr = tr_json_get(result, "tasks");
	struct tr_task **v;
	size_t n;

	if (!tr_json_is(arr, TR_JSON_ARRAY)) {
		return -EBADMSG;
	}
	n = arr->u.arr.n;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct tr_json *item = arr->u.arr.items[i];
		struct tr_json *copy;

		if (!tr_json_is(item, TR_JSON_OBJECT)) {
			tr_task_list_free(v, i);
			return -EBADMSG;
		}
		copy = tr_json_dup(item);
		v[i] = copy ? task_wrap(copy) : NULL;
		if (!v[i]) {
			tr_task_list_free(v, i);
			return -ENOMEM;
		}
	}
	*ret_tasks = v;
	*ret_n = n;
	return 0;
}

int tr_task_list_parse(const char *json, struct tr_task ***ret_tasks, size_t *ret_n) {
	struct tr_json *j = NULL;
	int r;

	if (!json || !ret_tasks || !ret_n) {
		return -EINVAL;
	}
	r = tr_json_parse(json, strlen(json), &j, NULL);
	if (r < 0) {
		return r;
	}
	r = tasks_from_result(j, ret_tasks, ret_n);
	tr_json_free(j);
	return r;
}

int tr_client_task_list(struct tr_client *c, const char *status, int timeout_ms,
	struct tr_task ***ret_tasks, size_t *ret_n, struct tr_client_error *ret_err) {
	struct tr_task **all = NULL;
	size_t n_all = 0;
	char *after = NULL;
	int r = 0;

	if (!c || !ret_tasks || !ret_n) {
		return invalid(ret_err);
	}
	/* task.list answers a page at a time (a reply must fit in a frame): follow `next`. */
	for (;;) {
		struct tr_json *params = tr_json_new_object(), *result = NULL;
		const struct tr_json *next;
		struct tr_task **v = NULL, **grown;
		size_t n = 0;
		int e = 0;

		put_str(params, "status", status, &e);
		put_str(params, "after", after, &e);
		if (!params || e < 0) {
			tr_json_free(params);
			r = set_local_error(ret_err, -ENOMEM);
			break;
		}
		r = tr_client_call_tree(c, "task.list", params, timeout_ms, &result, ret_err);
		tr_json_free(params);
		if (r < 0) {
			break;
		}
		r = tasks_from_result(result, &v, &n);
		if (r < 0) {
			tr_json_free(result);
			r = set_local_error(ret_err, r);
			break;
		}
		grown = realloc(all, (n_all + n + 1) * sizeof(*all));
		if (!grown) {
			tr_task_list_free(v, n);
			tr_json_free(result);
			r = set_local_error(ret_err, -ENOMEM);
			break;
		}
		all = grown;
		memcpy(all + n_all, v, n * sizeof(*v));
		n_all += n;
		free(v);
		next = tr_json_get(result, "next");
		free(after);
		after = tr_json_is(next, TR_JSON_STRING) && n > 0 ? strdup(next->u.str.s) : NULL;
		tr_json_free(result);
		if (!after) {
			break;
		}
	}
	free(after);
	if (r < 0) {
		tr_task_list_free(all, n_all);
		return r;
	}
	if (!all) {
		all = calloc(1, sizeof(*all));
		if (!all) {
			return set_local_error(ret_err, -ENOMEM);
		}
	}
	*ret_tasks = all;
	*ret_n = n_all;
	return 0;
}

int tr_client_task_get(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_task **ret_task, struct tr_client_error *ret_err) {
	CHECK_ARGS(c, sid, ret_err);
	return task_call(c, "task.get", sid_params(sid), 0, timeout_ms, ret_task, ret_err);
}

/* A Task method with the task's sid and one string parameter; a required one may not be
 * NULL (an optional NULL is left out). */
static int sid_string_call(struct tr_client *c, const char *method, const char *sid,
	const char *key, const char *value, bool required, int timeout_ms,
	struct tr_task **ret_task, struct tr_client_error *ret_err) {
	struct tr_json *p;
	int e = 0;

	CHECK_ARGS(c, sid, ret_err);
	if (required && !value) {
		return invalid(ret_err);
	}
	p = sid_params(sid);
	return task_call(c, method, p, put_str(p, key, value, &e), timeout_ms, ret_task, ret_err);
}

int tr_client_task_complete(struct tr_client *c, const char *sid, const char *reason,
	int timeout_ms, struct tr_task **ret_task, struct tr_client_error *ret_err) {
	return sid_string_call(c, "task.complete", sid, "reason", reason, true, timeout_ms,
		ret_task, ret_err);
}

int tr_client_task_wrap_up(struct tr_client *c, const char *sid, const char *reason, int timeout_ms,
	struct tr_task **ret_task, struct tr_client_error *ret_err) {
	return sid_string_call(c, "task.wrapUp", sid, "reason", reason, false, timeout_ms,
		ret_task, ret_err);
}

int tr_client_task_set_attributes(struct tr_client *c, const char *sid, const char *attributes_json,
	int timeout_ms, struct tr_task **ret_task, struct tr_client_error *ret_err) {
	struct tr_json *p, *attrs = NULL;
	int r, e = 0;

	CHECK_ARGS(c, sid, ret_err);
	r = parse_params(attributes_json, &attrs);
	if (r < 0 || !attrs) {
		return r == -ENOMEM ? set_local_error(ret_err, r) : invalid(ret_err);
	}
	p = sid_params(sid);
	return task_call(c, "task.setAttributes", p, tr_json_put(p, "attributes", attrs, &e),
		timeout_ms, ret_task, ret_err);
}

static bool all_digits(const char *s) {
	if (!*s) {
		return false;
	}
	for (; *s; s++) {
		if (*s < '0' || *s > '9') {
			return false;
		}
	}
	return true;
}

int tr_client_task_set_virtual_start_time(struct tr_client *c, const char *sid, const char *time,
	int timeout_ms, struct tr_task **ret_task, struct tr_client_error *ret_err) {
	struct tr_json *p, *v;
	int e = 0;

	CHECK_ARGS(c, sid, ret_err);
	if (!time || !*time) {
		return invalid(ret_err);
	}
	if (all_digits(time)) {
		errno = 0;
		long long n = strtoll(time, NULL, 10);

		if (errno) {
			return invalid(ret_err);
		}
		v = tr_json_new_int(n);
	} else {
		v = tr_json_new_string(time);
	}
	p = sid_params(sid);
	return task_call(c, "task.setVirtualStartTime", p, tr_json_put(p, "time", v, &e),
		timeout_ms, ret_task, ret_err);
}

int tr_client_task_fetch_latest_version(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_task **ret_task, struct tr_client_error *ret_err) {
	CHECK_ARGS(c, sid, ret_err);
	return task_call(c, "task.fetchLatestVersion", sid_params(sid), 0, timeout_ms, ret_task,
		ret_err);
}

int tr_client_task_hold(struct tr_client *c, const char *sid, const char *target_worker_sid,
	bool on_hold, const char *hold_url, const char *hold_method, int timeout_ms,
	struct tr_task **ret_task, struct tr_client_error *ret_err) {
	struct tr_json *p;
	int e = 0;

	CHECK_ARGS(c, sid, ret_err);
	if (!target_worker_sid) {
		return invalid(ret_err);
	}
	p = sid_params(sid);
	put_str(p, "targetWorkerSid", target_worker_sid, &e);
	tr_json_put(p, "onHold", tr_json_new_bool(on_hold), &e);
	put_str(p, "holdUrl", hold_url, &e);
	put_str(p, "holdMethod", hold_method, &e);
	return task_call(c, "task.hold", p, e, timeout_ms, ret_task, ret_err);
}

int tr_client_task_kick(struct tr_client *c, const char *sid, const char *worker_sid,
	int timeout_ms, struct tr_task **ret_task, struct tr_client_error *ret_err) {
	return sid_string_call(c, "task.kick", sid, "workerSid", worker_sid, true, timeout_ms,
		ret_task, ret_err);
}

int tr_client_task_transfer(struct tr_client *c, const char *sid, const char *to, const char *mode,
	int64_t priority, const char *attributes_json, int timeout_ms, struct tr_task **ret_task,
	struct tr_client_error *ret_err) {
	struct tr_json *p, *attrs = NULL;
	int r, e = 0;

	CHECK_ARGS(c, sid, ret_err);
	if (!to) {
		return invalid(ret_err);
	}
	r = parse_params(attributes_json, &attrs);
	if (r < 0) {
		return r == -ENOMEM ? set_local_error(ret_err, r) : invalid(ret_err);
	}
	p = sid_params(sid);
	put_str(p, "to", to, &e);
	put_str(p, "mode", mode, &e);
	if (priority >= 0) {
		tr_json_put(p, "priority", tr_json_new_int(priority), &e);
	}
	if (attrs) {
		tr_json_put(p, "attributes", attrs, &e);
	}
	return task_call(c, "task.transfer", p, e, timeout_ms, ret_task, ret_err);
}

int tr_client_task_cancel_transfer(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_task **ret_task, struct tr_client_error *ret_err) {
	CHECK_ARGS(c, sid, ret_err);
	return task_call(c, "task.cancelTransfer", sid_params(sid), 0, timeout_ms, ret_task, ret_err);
}

int tr_client_task_update_participant(struct tr_client *c, const char *sid, int hold,
	const char *hold_url, const char *hold_method, int timeout_ms, struct tr_task **ret_task,
	struct tr_client_error *ret_err) {
	struct tr_json *p;
	int e = 0;

	CHECK_ARGS(c, sid, ret_err);
	p = sid_params(sid);
	if (hold >= 0) {
		tr_json_put(p, "hold", tr_json_new_bool(hold != 0), &e);
	}
	put_str(p, "holdUrl", hold_url, &e);
	put_str(p, "holdMethod", hold_method, &e);
	return task_call(c, "task.updateParticipant", p, e, timeout_ms, ret_task, ret_err);
}

/* ------------------------------------------------------------------ reservations, worker */

/*
 * struct tr_reservation, tr_worker and tr_activity wrap one JSON object each, like struct
 * tr_task. A reservation also holds a struct tr_task over its "task" member (borrowed from
 * its tree) so that tr_reservation_task can hand out a task without copying.
 */
struct tr_reservation {
	struct tr_json *j;
	struct tr_task task; /* task.j points into j, or is NULL */
};

struct tr_worker {
	struct tr_json *j;
};

struct tr_activity {
	struct tr_json *j;
};

static void reservation_init(struct tr_reservation *r) {
	const struct tr_json *t = tr_json_get(r->j, "task");

	r->task.j = tr_json_is(t, TR_JSON_OBJECT) ? (struct tr_json *)t : NULL;
}

static void worker_init(struct tr_worker *w) {
	(void)w;
}

static void activity_init(struct tr_activity *a) {
	(void)a;
}

/*
 * An array of objects: list_parse reads the array member of a result, list_free frees, and
 * type##s_from_array copies the items of a JSON array.
 */
#define LIST_FUNCS(type, member)                                                                   \
	void tr_##type##_list_free(struct tr_##type **v, size_t n) {                               \
		if (!v) {                                                                          \
			return;                                                                    \
		}                                                                                  \
		for (size_t i = 0; i < n; i++) {                                                   \
			tr_##type##_free(v[i]);                                                    \
		}                                                                                  \
		free(v);                                                                           \
	}                                                                                          \
	static int type##s_from_array(                                                             \
		const struct tr_json *arr, struct tr_##type ***ret, size_t *ret_n) {               \
		struct tr_##type **v;                                                              \
		size_t n;                                                                          \
                                                                                                   \
		if (!tr_json_is(arr, TR_JSON_ARRAY)) {                                             \
			return -EBADMSG;                                                           \
		}                                                                                  \
		n = arr->u.arr.n;                                                                  \
		v = calloc(n ? n : 1, sizeof(*v));                                                 \
		if (!v) {                                                                          \
			return -ENOMEM;                                                            \
		}                                                                                  \
		for (size_t i = 0; i < n; i++) {                                                   \
			const struct tr_json *item = arr->u.arr.items[i];                          \
			struct tr_json *copy;                                                      \
                                                                                                   \
			if (!tr_json_is(item, TR_JSON_OBJECT)) {                                   \
				tr_##type##_list_free(v, i);                                       \
				return -EBADMSG;                                                   \
			}                                                                          \
			copy = tr_json_dup(item);                                                  \
			v[i] = copy ? type##_wrap(copy) : NULL;                                    \
			if (!v[i]) {                                                               \
				tr_##type##_list_free(v, i);                                       \
				return -ENOMEM;                                                    \
			}                                                                          \
		}                                                                                  \
		*ret = v;                                                                          \
		*ret_n = n;                                                                        \
		return 0;                                                                          \
	}                                                                                          \
	int tr_##type##_list_parse(const char *json, struct tr_##type ***ret, size_t *ret_n) {     \
		struct tr_json *j = NULL;                                                          \
		int r;                                                                             \
                                                                                                   \
		if (!json || !ret || !ret_n) {                                                     \
			return -EINVAL;                                                            \
		}                                                                                  \
		r = tr_json_parse(json, strlen(json), &j, NULL);                                   \
		if (r < 0) {                                                                       \
			return r;                                                                  \
		}                                                                                  \
		r = type##s_from_array(tr_json_get(j, member), ret, ret_n);                        \
		tr_json_free(j);                                                                   \
		return r;                                                                          \
	}

OBJECT_FUNCS(reservation)
OBJECT_FUNCS(worker)
OBJECT_FUNCS(activity)
GET_BOOL_FUNC(reservation)
GET_BOOL_FUNC(worker)
GET_BOOL_FUNC(activity)
LIST_FUNCS(reservation, "reservations")
LIST_FUNCS(activity, "activities")
#undef OBJECT_FUNCS
#undef GET_BOOL_FUNC
#undef LIST_FUNCS

static bool bool_member(const struct tr_json *j, const char *key) {
	bool b = false;

	return tr_json_get_bool(j, key, &b) == 0 && b;
}

static int64_t int_member(const struct tr_json *j, const char *key) {
	int64_t v;

	return tr_json_get_int(j, key, &v) < 0 ? -1 : v;
}

/* The typed accessors, one line each, named as doc/PROTOCOL.md spells the member. */
#define MEMBER(ret_type, fn, type, get, key)                                                       \
	ret_type fn(const struct tr_##type *o) {                                                   \
		return o ? get(o->j, key) : 0;                                                     \
	}

MEMBER(const char *, tr_reservation_sid, reservation, tr_json_get_string, "sid")
MEMBER(const char *, tr_reservation_status, reservation, tr_json_get_string, "status")
MEMBER(const char *, tr_reservation_version, reservation, tr_json_get_string, "version")
MEMBER(const char *, tr_reservation_task_sid, reservation, tr_json_get_string, "taskSid")
MEMBER(const char *, tr_reservation_worker_sid, reservation, tr_json_get_string, "workerSid")
MEMBER(const char *, tr_worker_sid, worker, tr_json_get_string, "sid")
MEMBER(const char *, tr_worker_name, worker, tr_json_get_string, "name")
MEMBER(const char *, tr_worker_activity_sid, worker, tr_json_get_string, "activitySid")
MEMBER(const char *, tr_worker_activity_name, worker, tr_json_get_string, "activityName")
MEMBER(const char *, tr_worker_version, worker, tr_json_get_string, "version")
MEMBER(bool, tr_worker_available, worker, bool_member, "available")
MEMBER(char *, tr_worker_attributes, worker, member_json, "attributes")
MEMBER(const char *, tr_activity_sid, activity, tr_json_get_string, "sid")
MEMBER(const char *, tr_activity_name, activity, tr_json_get_string, "name")
MEMBER(bool, tr_activity_available, activity, bool_member, "available")
MEMBER(bool, tr_activity_is_current, activity, bool_member, "isCurrent")
#undef MEMBER

int64_t tr_reservation_timeout(const struct tr_reservation *r) {
	return r ? int_member(r->j, "timeout") : -1;
}

const struct tr_task *tr_reservation_task(const struct tr_reservation *r) {
	return r && r->task.j ? &r->task : NULL;
}

const struct tr_activity *tr_activity_list_find(
	struct tr_activity *const *activities, size_t n, const char *name_or_sid) {
	if (!activities || !name_or_sid) {
		return NULL;
	}
	/* Sids first: a sid names one activity, whatever the names look like. */
	for (size_t i = 0; i < n; i++) {
		const char *sid = tr_activity_sid(activities[i]);

		if (sid && strcmp(sid, name_or_sid) == 0) {
			return activities[i];
		}
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = tr_activity_name(activities[i]);

		if (name && strcmp(name, name_or_sid) == 0) {
			return activities[i];
		}
	}
	return NULL;
}

/*
 * Call a method whose result is one object, stored through wrap into *ret (when not NULL).
 * Consumes params (NULL, or build_err < 0: the caller's building failed, an ENOMEM).
 */
static int object_call(struct tr_client *c, const char *method, struct tr_json *params,
	int build_err, int timeout_ms, struct tr_json **ret_result,
	struct tr_client_error *ret_err) {
	struct tr_json *result = NULL;
	int r;

	if (!params || build_err < 0) {
		tr_json_free(params);
		return set_local_error(ret_err, -ENOMEM);
	}
	r = tr_client_call_tree(c, method, params, timeout_ms, &result, ret_err);
	tr_json_free(params);
	if (r < 0) {
		return r;
	}
	if (!tr_json_is(result, TR_JSON_OBJECT)) {
		tr_json_free(result);
		return set_local_error(ret_err, -EBADMSG);
	}
	*ret_result = result;
	return 0;
}

static int reservation_call(struct tr_client *c, const char *method, struct tr_json *params,
	int build_err, int timeout_ms, struct tr_reservation **ret,
	struct tr_client_error *ret_err) {
	struct tr_json *result = NULL;
	struct tr_reservation *o;
	int r;

	r = object_call(c, method, params, build_err, timeout_ms, &result, ret_err);
	if (r < 0) {
		return r;
	}
	if (!ret) {
		tr_json_free(result);
		return 0;
	}
	o = reservation_wrap(result);
	if (!o) {
		return set_local_error(ret_err, -ENOMEM);
	}
	*ret = o;
	return 0;
}

static int worker_call(struct tr_client *c, const char *method, struct tr_json *params,
	int build_err, int timeout_ms, struct tr_worker **ret, struct tr_client_error *ret_err) {
	struct tr_json *result = NULL;
	struct tr_worker *o;
	int r;

	r = object_call(c, method, params, build_err, timeout_ms, &result, ret_err);
	if (r < 0) {
		return r;
	}
	if (!ret) {
		tr_json_free(result);
		return 0;
	}
	o = worker_wrap(result);
	if (!o) {
		return set_local_error(ret_err, -ENOMEM);
	}
	*ret = o;
	return 0;
}

/*
 * Every page of a paged list method ({member: [...], next}, as task.list): all the items in
 * one JSON array, *ret_items. status is sent when not NULL; a result without "next" is the
 * last page.
 */
static int list_all(struct tr_client *c, const char *method, const char *member,
	const char *status, int timeout_ms, struct tr_json **ret_items,
	struct tr_client_error *ret_err) {
	struct tr_json *all = tr_json_new_array();
	char *after = NULL;
	int r = 0;

	if (!all) {
		return set_local_error(ret_err, -ENOMEM);
	}
	for (;;) {
		struct tr_json *params = tr_json_new_object(), *result = NULL;
		const struct tr_json *next, *arr;
		size_t n;
		int e = 0;

		put_str(params, "status", status, &e);
		put_str(params, "after", after, &e);
		if (!params || e < 0) {
			tr_json_free(params);
			r = set_local_error(ret_err, -ENOMEM);
			break;
		}
		r = tr_client_call_tree(c, method, params, timeout_ms, &result, ret_err);
		tr_json_free(params);
		if (r < 0) {
			break;
		}
		arr = tr_json_get(result, member);
		if (!tr_json_is(arr, TR_JSON_ARRAY)) {
			tr_json_free(result);
			r = set_local_error(ret_err, -EBADMSG);
			break;
		}
		n = arr->u.arr.n;
		for (size_t i = 0; i < n && e == 0; i++) {
			tr_json_push(all, tr_json_dup(arr->u.arr.items[i]), &e);
		}
		if (e < 0) {
			tr_json_free(result);
			r = set_local_error(ret_err, e);
			break;
		}
		next = tr_json_get(result, "next");
		if (after && tr_json_is(next, TR_JSON_STRING) && strcmp(next->u.str.s, after) == 0) {
			/* a page that does not move on would be asked for forever */
			tr_json_free(result);
			r = set_local_error(ret_err, -EBADMSG);
			break;
		}
		free(after);
		after = tr_json_is(next, TR_JSON_STRING) && n > 0 ? strdup(next->u.str.s) : NULL;
		tr_json_free(result);
		if (!after) {
			break;
		}
	}
	free(after);
	if (r < 0) {
		tr_json_free(all);
		return r;
	}
	*ret_items = all;
	return 0;
}

int tr_client_reservation_list(struct tr_client *c, const char *status, int timeout_ms,
	struct tr_reservation ***ret_reservations, size_t *ret_n, struct tr_client_error *ret_err) {
	struct tr_json *items = NULL;
	int r;

	if (!c || !ret_reservations || !ret_n) {
		return invalid(ret_err);
	}
	if (ret_err) {
		tr_client_error_done(ret_err);
	}
	r = list_all(c, "reservation.list", "reservations", status, timeout_ms, &items, ret_err);
	if (r < 0) {
		return r;
	}
	r = reservations_from_array(items, ret_reservations, ret_n);
	tr_json_free(items);
	return r < 0 ? set_local_error(ret_err, r) : 0;
}

int tr_client_activity_list(struct tr_client *c, int timeout_ms,
	struct tr_activity ***ret_activities, size_t *ret_n, struct tr_client_error *ret_err) {
	struct tr_json *items = NULL;
	int r;

	if (!c || !ret_activities || !ret_n) {
		return invalid(ret_err);
	}
	if (ret_err) {
		tr_client_error_done(ret_err);
	}
	r = list_all(c, "activity.list", "activities", NULL, timeout_ms, &items, ret_err);
	if (r < 0) {
		return r;
	}
	r = activitys_from_array(items, ret_activities, ret_n);
	tr_json_free(items);
	return r < 0 ? set_local_error(ret_err, r) : 0;
}

/* A reservation method taking only the sid. */
static int reservation_sid_call(struct tr_client *c, const char *method, const char *sid,
	int timeout_ms, struct tr_reservation **ret, struct tr_client_error *ret_err) {
	CHECK_ARGS(c, sid, ret_err);
	if (ret_err) {
		tr_client_error_done(ret_err);
	}
	return reservation_call(c, method, sid_params(sid), 0, timeout_ms, ret, ret_err);
}

int tr_client_reservation_get(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_reservation **ret_reservation, struct tr_client_error *ret_err) {
	return reservation_sid_call(c, "reservation.get", sid, timeout_ms, ret_reservation, ret_err);
}

int tr_client_reservation_accept(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_reservation **ret_reservation, struct tr_client_error *ret_err) {
	return reservation_sid_call(
		c, "reservation.accept", sid, timeout_ms, ret_reservation, ret_err);
}

int tr_client_reservation_wrap(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_reservation **ret_reservation, struct tr_client_error *ret_err) {
	return reservation_sid_call(
		c, "reservation.wrap", sid, timeout_ms, ret_reservation, ret_err);
}

int tr_client_reservation_complete(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_reservation **ret_reservation, struct tr_client_error *ret_err) {
	return reservation_sid_call(
		c, "reservation.complete", sid, timeout_ms, ret_reservation, ret_err);
}

int tr_client_reservation_reject(struct tr_client *c, const char *sid, const char *activity_sid,
	int timeout_ms, struct tr_reservation **ret_reservation, struct tr_client_error *ret_err) {
	struct tr_json *p;
	int e = 0;

	CHECK_ARGS(c, sid, ret_err);
	if (ret_err) {
		tr_client_error_done(ret_err);
	}
	p = sid_params(sid);
	put_str(p, "activitySid", activity_sid, &e);
	return reservation_call(c, "reservation.reject", p, e, timeout_ms, ret_reservation, ret_err);
}

int tr_client_worker_get(struct tr_client *c, int timeout_ms, struct tr_worker **ret_worker,
	struct tr_client_error *ret_err) {
	if (!c) {
		return invalid(ret_err);
	}
	if (ret_err) {
		tr_client_error_done(ret_err);
	}
	return worker_call(
		c, "worker.get", tr_json_new_object(), 0, timeout_ms, ret_worker, ret_err);
}

int tr_client_worker_set_activity(struct tr_client *c, const char *activity, bool reject_pending,
	int timeout_ms, struct tr_worker **ret_worker, struct tr_client_error *ret_err) {
	struct tr_json *p;
	int e = 0;

	if (!c || !activity) {
		return invalid(ret_err);
	}
	if (ret_err) {
		tr_client_error_done(ret_err);
	}
	p = tr_json_new_object();
	put_str(p, "activity", activity, &e);
	if (reject_pending) {
		tr_json_put(p, "rejectPendingReservations", tr_json_new_bool(true), &e);
	}
	return worker_call(c, "worker.setActivity", p, e, timeout_ms, ret_worker, ret_err);
}

/* ------------------------------------------------------------------ any result */

/*
 * struct tr_result wraps one parsed JSON value (an object, usually) read by dotted paths,
 * for the results that have no type of their own here (daemon.status, rpc.describe, the
 * subscribe result, ...).
 */
struct tr_result {
	struct tr_json *j;
};

static struct tr_result *result_wrap(struct tr_json *j) {
	struct tr_result *r = calloc(1, sizeof(*r));

	if (!r) {
		tr_json_free(j);
		return NULL;
	}
	r->j = j;
	return r;
}

int tr_result_parse(const char *json, struct tr_result **ret) {
	struct tr_json *j = NULL;
	struct tr_result *res;
	int r;

	if (!json || !ret) {
		return -EINVAL;
	}
	r = tr_json_parse(json, strlen(json), &j, NULL);
	if (r < 0) {
		return r;
	}
	res = result_wrap(j);
	if (!res) {
		return -ENOMEM;
	}
	*ret = res;
	return 0;
}

struct tr_result *tr_result_dup(const struct tr_result *r) {
	struct tr_json *j;

	if (!r) {
		return NULL;
	}
	j = tr_json_dup(r->j);
	return j ? result_wrap(j) : NULL;
}

struct tr_result *tr_result_free(struct tr_result *r) {
	if (r) {
		tr_json_free(r->j);
		free(r);
	}
	return NULL;
}

/* One path segment s[0..n) as an array index: decimal digits only, no sign. */
static bool segment_index(const char *s, size_t n, size_t *ret) {
	size_t v = 0;

	if (n == 0 || n > 9) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return false;
		}
		v = v * 10 + (size_t)(s[i] - '0');
	}
	*ret = v;
	return true;
}

/*
 * The value at path: members separated by '.', a decimal segment indexing an array ("tasks.0.
 * sid"). NULL or "" is the value itself. NULL when a step is missing or cannot be taken.
 */
static const struct tr_json *path_get(const struct tr_result *r, const char *path) {
	const struct tr_json *v;

	if (!r) {
		return NULL;
	}
	v = r->j;
	if (!path || !*path) {
		return v;
	}
	for (;;) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path), i;
		const struct tr_json *next = NULL;

		if (tr_json_is(v, TR_JSON_OBJECT)) {
			for (i = 0; i < v->u.obj.n; i++) {
				const char *k = v->u.obj.keys[i];

				if (strncmp(k, path, n) == 0 && k[n] == '\0') {
					next = v->u.obj.vals[i];
					break;
				}
			}
		} else if (tr_json_is(v, TR_JSON_ARRAY) && segment_index(path, n, &i) &&
			   i < v->u.arr.n) {
			next = v->u.arr.items[i];
		}
		if (!next || !dot) {
			return next;
		}
		v = next;
		path = dot + 1;
	}
}

const char *tr_result_get_string(const struct tr_result *r, const char *path) {
	const struct tr_json *v = path_get(r, path);

	return tr_json_is(v, TR_JSON_STRING) ? v->u.str.s : NULL;
}

int tr_result_get_int(const struct tr_result *r, const char *path, int64_t *ret) {
	const struct tr_json *v;

	if (!r || !ret) {
		return -EINVAL;
	}
	v = path_get(r, path);
	if (!v || tr_json_is(v, TR_JSON_NULL)) {
		return -ENOENT;
	}
	if (!tr_json_is_int(v)) {
		return -EINVAL;
	}
	*ret = v->u.num.i;
	return 0;
}

int tr_result_get_bool(const struct tr_result *r, const char *path, bool *ret) {
	const struct tr_json *v;

	if (!r || !ret) {
		return -EINVAL;
	}
	v = path_get(r, path);
	if (!v || tr_json_is(v, TR_JSON_NULL)) {
		return -ENOENT;
	}
	if (!tr_json_is_bool(v)) {
		return -EINVAL;
	}
	*ret = tr_json_is(v, TR_JSON_TRUE);
	return 0;
}

int tr_result_length(const struct tr_result *r, const char *path) {
	const struct tr_json *v;

	if (!r) {
		return -EINVAL;
	}
	v = path_get(r, path);
	if (!v || tr_json_is(v, TR_JSON_NULL)) {
		return -ENOENT;
	}
	if (tr_json_is(v, TR_JSON_ARRAY)) {
		return v->u.arr.n > INT32_MAX ? INT32_MAX : (int)v->u.arr.n;
	}
	if (tr_json_is(v, TR_JSON_OBJECT)) {
		return v->u.obj.n > INT32_MAX ? INT32_MAX : (int)v->u.obj.n;
	}
	return -EINVAL;
}

const char *tr_result_key(const struct tr_result *r, const char *path, size_t i) {
	const struct tr_json *v = path_get(r, path);

	return tr_json_is(v, TR_JSON_OBJECT) && i < v->u.obj.n ? v->u.obj.keys[i] : NULL;
}

char *tr_result_get_json(const struct tr_result *r, const char *path) {
	const struct tr_json *v = path_get(r, path);
	char *s = NULL;

	return v && tr_json_dump(v, &s, NULL) == 0 ? s : NULL;
}

int tr_client_call_result(struct tr_client *c, const char *method, const char *params_json,
	int timeout_ms, struct tr_result **ret_result, struct tr_client_error *ret_err) {
	struct tr_json *params = NULL, *result = NULL;
	struct tr_result *res;
	int r;

	if (ret_err) {
		tr_client_error_done(ret_err);
	}
	r = parse_params(params_json, &params);
	if (r < 0) {
		return set_local_error(ret_err, r);
	}
	r = tr_client_call_tree(c, method, params, timeout_ms, &result, ret_err);
	tr_json_free(params);
	if (r < 0) {
		return r;
	}
	if (!ret_result) {
		tr_json_free(result);
		return 0;
	}
	res = result_wrap(result);
	if (!res) {
		return set_local_error(ret_err, -ENOMEM);
	}
	*ret_result = res;
	return 0;
}
