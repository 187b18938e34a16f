/*
 * server.c — taskrouter-sim's libwebsockets server on the uv loop: one port serving the
 * websocket (/v1/wschannels upgrade), the REST proxy (POST /v1/wschannels) and the control
 * API (/sim/...). Owns the sessions, heartbeats, token expiry and the delivery of events.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jwt.h"

#define MAX_BODY (8u * 1024u * 1024u)
#define CHUNK 16384
#define SHUTDOWN_DEADLINE_MS 2000
#define SESSION_QUEUE_MAX (256u * 1024u * 1024u) /* a client this far behind is dropped */

struct pending {
	uv_timer_t timer;
	struct sim *sim;
	struct lws *wsi;
	struct pending *next;
	bool deliver_events; /* a deferred-events timer instead of a delayed reply */
	struct held *held;
};

/* task.transfer-initiated frames held back until after the REST reply */
struct held {
	struct held *next;
	struct sim_worker *worker;
	char *frame;
	size_t len;
};

struct upgrade {
	bool valid;
	struct sim_worker *worker;
	char *token;
	char client_version[64];
	bool close_existing;
	int set_offline;
	int64_t exp;
};

struct pss {
	/* websocket */
	struct session *sess;
	struct upgrade upg;
	/* http */
	char path[512];
	bool is_post;
	char api_version[32], if_match[64], client_version[64];
	struct sbuf body;
	bool body_too_big;
	struct sbuf out;
	size_t out_off;
	int status;
	bool reply_ready, headers_done, responded, reset;
	struct pending *pending;
	struct held *held; /* events to deliver once the reply is out */
};

static struct sim *g_sim; /* for the lws callback, which has no user pointer of ours */

void sim_log(struct sim *s, const char *fmt, ...) {
	va_list ap;

	(void)s;
	fputs("taskrouter-sim: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void sim_vlog(struct sim *s, const char *fmt, ...) {
	va_list ap;

	if (!s->opts.verbose) {
		return;
	}
	fputs("taskrouter-sim: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- tokens ---- */

bool sim_token_revoked(struct sim *s, const char *token) {
	size_t i;

	for (i = 0; token && i < s->n_revoked; i++) {
		if (strcmp(s->revoked[i], token) == 0) {
			return true;
		}
	}
	return false;
}

int sim_token_revoke(struct sim *s, const char *token) {
	char **r;
	char *d;

	if (sim_token_revoked(s, token)) {
		return 0;
	}
	r = realloc(s->revoked, (s->n_revoked + 1) * sizeof(*r));
	if (!r) {
		return -ENOMEM;
	}
	s->revoked = r;
	d = strdup(token);
	if (!d) {
		return -ENOMEM;
	}
	s->revoked[s->n_revoked++] = d;
	return 0;
}

int sim_mint_token(struct sim *s, struct sim_worker *k, int64_t ttl) {
	struct sim_world *w = s->world;
	char identity[96], path[4096], tmp[4200];
	char *tok;
	size_t len;
	int fd;

	snprintf(identity, sizeof(identity), "%s@example.org", k->name);
	tok = sim_jwt_mint(s->opts.key_secret, w->key_sid, w->account_sid, w->workspace_sid,
		k->sid, identity, world_now(), ttl);
	if (!tok) {
		return -ENOMEM;
	}
	free(k->token);
	k->token = tok;
	if (!s->opts.token_dir) {
		return 0;
	}
	snprintf(path, sizeof(path), "%s/%s.token", s->opts.token_dir, k->name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		return -errno;
	}
	len = strlen(tok);
	if (write(fd, tok, len) != (ssize_t)len) {
		int e = errno ? -errno : -EIO;
		close(fd);
		unlink(tmp);
		return e;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	return 0;
}

/* ---- sessions ---- */

static void queue_frame(struct session *se, const char *data, size_t len) {
	struct outmsg *m;

	if (!se->wsi || se->close_code || se->drop) {
		return;
	}
	if (se->q_bytes + len > SESSION_QUEUE_MAX) {
		sim_log(se->sim, "session %llu (%s): %zu bytes queued, the client does not read; "
				 "dropping the session",
			(unsigned long long)se->id, se->worker->name, se->q_bytes);
		se->drop = true;
		lws_callback_on_writable(se->wsi);
		return;
	}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->buf = malloc(LWS_PRE + len + 1))) {
		free(m);
		sim_log(se->sim, "session %llu: out of memory queueing a frame, dropping it",
			(unsigned long long)se->id);
		return;
	}
	memcpy(m->buf + LWS_PRE, data, len);
	m->len = len;
	if (se->q_tail) {
		se->q_tail->next = m;
	} else {
		se->q_head = m;
	}
	se->q_tail = m;
	se->q_bytes += len;
	lws_callback_on_writable(se->wsi);
}

static void session_close(struct session *se, int code, const char *reason) {
	if (!se->wsi || se->close_code || se->drop) {
		return;
	}
	se->close_code = code;
	snprintf(se->close_reason, sizeof(se->close_reason), "%s", reason ? reason : "");
	sim_vlog(se->sim, "session %llu (%s): closing with %d %s", (unsigned long long)se->id,
		se->worker->name, code, se->close_reason);
	lws_callback_on_writable(se->wsi);
}

void sim_close_sessions(struct sim *s, struct sim_worker *k, int code, const char *reason) {
	struct session *se;

	for (se = s->sessions; se; se = se->next) {
		if (!k || se->worker == k) {
			session_close(se, code, reason);
		}
	}
}

void sim_expire_sessions(struct sim *s, struct sim_worker *k) {
	struct session *se;

	for (se = s->sessions; se; se = se->next) {
		if (se->worker == k && sim_token_revoked(s, se->token)) {
			session_close(se, 4001, "token expired");
		}
	}
}

void sim_drop_all(struct sim *s, bool close_frame, int code, const char *reason) {
	struct session *se;

	for (se = s->sessions; se; se = se->next) {
		if (close_frame) {
			session_close(se, code, reason);
		} else if (se->wsi && !se->drop) {
			se->drop = true;
			lws_callback_on_writable(se->wsi);
		}
	}
}

void sim_send_raw_all(struct sim *s, const char *data, size_t len) {
	struct session *se;

	for (se = s->sessions; se; se = se->next) {
		if (se->init_sent) {
			queue_frame(se, data, len);
		}
	}
}

static void deliver(struct sim *s, struct sim_worker *k, const char *type, const char *frame,
	size_t len) {
	struct session *se;
	int n = 0;

	for (se = s->sessions; se; se = se->next) {
		if (se->worker == k && se->init_sent) {
			queue_frame(se, frame, len);
			n++;
		}
	}
	sim_vlog(s, "event %s -> %s (%d session%s)", type, k->name, n, n == 1 ? "" : "s");
}

/* The REST call being handled, whose transfer events may be held back. */
static struct pss *g_capture;

void sim_on_event(void *ud, struct sim_worker *k, const char *type, const char *frame,
	size_t len) {
	struct sim *s = ud;

	if (s->mute_events) {
		sim_vlog(s, "event %s -> %s not pushed (silent change)", type, k->name);
		return;
	}
	if (g_capture && s->xfer_order == 2 && strcmp(type, "task.transfer-initiated") == 0) {
		struct held *h = calloc(1, sizeof(*h)), **pp;
		if (h && (h->frame = malloc(len + 1))) {
			memcpy(h->frame, frame, len);
			h->frame[len] = '\0';
			h->len = len;
			h->worker = k;
			for (pp = &g_capture->held; *pp; pp = &(*pp)->next) {
			}
			*pp = h;
			sim_vlog(s, "event %s -> %s held until after the reply", type, k->name);
			return;
		}
		free(h);
	}
	deliver(s, k, type, frame, len);
}

static void held_free(struct held *h) {
	while (h) {
		struct held *n = h->next;
		free(h->frame);
		free(h);
		h = n;
	}
}

static void on_session_handle_closed(uv_handle_t *h) {
	struct session *se = h->data;

	if (--se->open_handles > 0) {
		return; /* free after the last of the two timers */
	}
	while (se->q_head) {
		struct outmsg *m = se->q_head;
		se->q_head = m->next;
		free(m->buf);
		free(m);
	}
	free(se->token);
	free(se);
}

static void session_free(struct session *se) {
	se->open_handles = 2;
	uv_close((uv_handle_t *)&se->expiry, on_session_handle_closed);
	uv_close((uv_handle_t *)&se->init_timer, on_session_handle_closed);
}

static void send_init(struct session *se) {
	struct sim_world *w = se->sim->world;
	int64_t life = (se->token_exp - world_now()) * 1000;
	struct sbuf b;
	struct jw j;

	sb_init(&b);
	jw_init(&j, &b);
	jw_obj(&j);
	jw_kstr(&j, "event_type", "init");
	jw_key(&j, "payload");
	jw_obj(&j);
	jw_kstr(&j, "channel_id", se->worker->sid);
	jw_kstr(&j, "account_sid", w->account_sid);
	jw_kstr(&j, "workspace_sid", w->workspace_sid);
	jw_kint(&j, "token_lifetime", life > 0 ? life : 0);
	jw_obj_end(&j);
	jw_obj_end(&j);
	if (!b.oom) {
		queue_frame(se, b.p, b.len);
		se->init_sent = true;
	}
	sb_done(&b);
	sim_vlog(se->sim, "session %llu (%s): init sent", (unsigned long long)se->id,
		se->worker->name);
}

static void on_init_timer(uv_timer_t *t) {
	send_init(t->data);
}

static void on_expiry(uv_timer_t *t) {
	struct session *se = t->data;

	session_close(se, 4001, "token expired");
}

static void on_heartbeat(uv_timer_t *t) {
	struct sim *s = t->data;
	struct session *se;

	if (s->heartbeats_paused) {
		return;
	}
	for (se = s->sessions; se; se = se->next) {
		if (se->init_sent) {
			queue_frame(se, " ", 1);
		}
	}
}

/* ---- upgrade ---- */

static int arg_bool(const char *v, int dflt) {
	if (!v) {
		return dflt;
	}
	if (strcmp(v, "true") == 0) {
		return 1;
	}
	if (strcmp(v, "false") == 0) {
		return 0;
	}
	return dflt;
}

/* Check the upgrade request. Returns 0, or an HTTP status with *msg set. */
static int check_upgrade(struct sim *s, struct lws *wsi, struct upgrade *u, const char **msg) {
	char uri[512], frag[4096];
	const char *token = NULL, *cv = NULL, *ces = NULL, *swo = NULL;
	char tokbuf[4096], cvbuf[64], cesbuf[16], swobuf[16];
	struct sim_grant g;
	enum sim_jwt_result jr;
	int i;

	memset(u, 0, sizeof(*u));
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
		strcmp(uri, "/v1/wschannels") != 0) {
		*msg = "unknown websocket path";
		return 404;
	}
	for (i = 0; lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) > 0;
		i++) {
		char *eq = strchr(frag, '=');
		if (!eq) {
			continue;
		}
		*eq = '\0';
		if (strcmp(frag, "token") == 0) {
			snprintf(tokbuf, sizeof(tokbuf), "%s", eq + 1);
			token = tokbuf;
		} else if (strcmp(frag, "clientVersion") == 0) {
			snprintf(cvbuf, sizeof(cvbuf), "%s", eq + 1);
			cv = cvbuf;
		} else if (strcmp(frag, "closeExistingSessions") == 0) {
			snprintf(cesbuf, sizeof(cesbuf), "%s", eq + 1);
			ces = cesbuf;
		} else if (strcmp(frag, "setWorkerOfflineIfDisconnected") == 0) {
			snprintf(swobuf, sizeof(swobuf), "%s", eq + 1);
			swo = swobuf;
		}
	}
	if (s->refuse_ws) {
		*msg = "upgrades refused by faults/refuse-ws";
		return 503;
	}
	if (!token || !token[0]) {
		*msg = "missing token";
		return 401;
	}
	jr = sim_jwt_check(token, s->opts.key_secret, s->opts.verify, world_now(), &g);
	if (jr == SIM_JWT_EXPIRED || (jr == SIM_JWT_OK && sim_token_revoked(s, token))) {
		*msg = "token expired";
		return 401;
	}
	if (jr != SIM_JWT_OK) {
		*msg = sim_jwt_result_str(jr);
		return 403;
	}
	if (strcmp(g.workspace_sid, s->world->workspace_sid) != 0 ||
		!(u->worker = world_worker(s->world, g.worker_sid)) ||
		strncmp(g.worker_sid, "WK", 2) != 0) {
		*msg = "token grant names an unknown workspace or worker";
		return 403;
	}
	u->token = strdup(token);
	if (!u->token) {
		*msg = "out of memory";
		return 500;
	}
	snprintf(u->client_version, sizeof(u->client_version), "%s", cv ? cv : "");
	u->close_existing = arg_bool(ces, 0) == 1;
	u->set_offline = swo ? arg_bool(swo, -1) : -1;
	u->exp = g.exp;
	u->valid = true;
	return 0;
}

static void session_open(struct sim *s, struct lws *wsi, struct pss *p) {
	struct session *se = calloc(1, sizeof(*se)), *o;
	struct upgrade *u = &p->upg;
	int64_t ms;

	if (!se) {
		sim_log(s, "out of memory for a session, closing it");
		free(u->token);
		u->token = NULL;
		return;
	}
	se->sim = s;
	se->wsi = wsi;
	se->id = ++s->next_session_id;
	se->worker = u->worker;
	se->token = u->token;
	u->token = NULL;
	snprintf(se->client_version, sizeof(se->client_version), "%s", u->client_version);
	se->close_existing = u->close_existing;
	se->set_offline = u->set_offline;
	se->token_exp = u->exp;
	se->connected_at = world_now();
	(void)uv_timer_init(s->loop, &se->expiry);
	(void)uv_timer_init(s->loop, &se->init_timer);
	se->expiry.data = se->init_timer.data = se;
	se->next = s->sessions;
	s->sessions = se;
	p->sess = se;
	se->worker->sessions++;
	(void)uv_timer_stop(&se->worker->offline_timer);
	sim_vlog(s, "session %llu (%s): open, closeExistingSessions=%s clientVersion=%s",
		(unsigned long long)se->id, se->worker->name, se->close_existing ? "true" : "false",
		se->client_version);
	if (se->close_existing) {
		for (o = s->sessions; o; o = o->next) {
			if (o != se && o->worker == se->worker) {
				session_close(o, 4002, "session closed by another connection");
			}
		}
	}
	ms = (se->token_exp - world_now()) * 1000;
	(void)uv_timer_start(&se->expiry, on_expiry, (uint64_t)(ms > 0 ? ms : 0), 0);
	if (s->opts.init_delay_ms > 0) {
		(void)uv_timer_start(&se->init_timer, on_init_timer, (uint64_t)s->opts.init_delay_ms,
			0);
	} else {
		send_init(se);
	}
}

static void session_closed(struct sim *s, struct pss *p) {
	struct session *se = p->sess, **pp;

	if (!se) {
		return;
	}
	p->sess = NULL;
	se->wsi = NULL;
	for (pp = &s->sessions; *pp; pp = &(*pp)->next) {
		if (*pp == se) {
			*pp = se->next;
			break;
		}
	}
	se->worker->sessions--;
	sim_vlog(s, "session %llu (%s): closed", (unsigned long long)se->id, se->worker->name);
	if (se->worker->sessions == 0 && se->set_offline != 0 && !s->shutting_down) {
		world_worker_disconnected(s->world, se->worker);
	}
	session_free(se);
}

static int session_writeable(struct sim *s, struct lws *wsi, struct session *se) {
	struct outmsg *m;

	if (se->drop) {
		int fd = lws_get_socket_fd(wsi);
		if (fd >= 0) {
			(void)shutdown(fd, SHUT_RDWR);
		}
		return -1;
	}
	m = se->q_head;
	if (m) {
		int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
		se->q_head = m->next;
		if (!se->q_head) {
			se->q_tail = NULL;
		}
		se->q_bytes -= m->len;
		free(m->buf);
		free(m);
		if (n < 0) {
			return -1;
		}
		if (se->q_head || se->close_code) {
			lws_callback_on_writable(wsi);
		}
		return 0;
	}
	if (se->close_code > 0) {
		/* lws_close_reason() + return -1 sends no close frame on this lws build
		 * (toolchain.md): write it ourselves (opcode 8, "LWS_WRITE_CLOSE") */
		unsigned char buf[LWS_PRE + 2 + sizeof(se->close_reason)];
		size_t rl = strlen(se->close_reason);
		buf[LWS_PRE] = (unsigned char)(se->close_code >> 8);
		buf[LWS_PRE + 1] = (unsigned char)(se->close_code & 0xff);
		memcpy(buf + LWS_PRE + 2, se->close_reason, rl);
		(void)lws_write(wsi, buf + LWS_PRE, 2 + rl, (enum lws_write_protocol)4);
		se->close_code = -1;
		/* wait briefly for the peer's close, then hang up */
		lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, 1);
		return 0;
	}
	(void)s;
	return 0;
}

/* ---- HTTP ---- */

static void pss_http_reset(struct pss *p) {
	sb_done(&p->body);
	sb_done(&p->out);
	held_free(p->held);
	p->held = NULL;
	p->path[0] = '\0';
	p->is_post = false;
	p->api_version[0] = p->if_match[0] = p->client_version[0] = '\0';
	p->body_too_big = false;
	p->out_off = 0;
	p->status = 0;
	p->reply_ready = p->headers_done = p->responded = false;
}

static void on_pending_closed(uv_handle_t *h) {
	struct pending *pd = h->data;

	held_free(pd->held);
	free(pd);
}

static void pending_remove(struct sim *s, struct pending *pd) {
	struct pending **pp;

	for (pp = &s->pendings; *pp; pp = &(*pp)->next) {
		if (*pp == pd) {
			*pp = pd->next;
			break;
		}
	}
	uv_close((uv_handle_t *)&pd->timer, on_pending_closed);
}

static void on_pending(uv_timer_t *t) {
	struct pending *pd = t->data;
	struct sim *s = pd->sim;

	if (pd->deliver_events) {
		struct held *h;
		for (h = pd->held; h; h = h->next) {
			deliver(s, h->worker, "task.transfer-initiated", h->frame, h->len);
		}
	} else if (pd->wsi) {
		struct pss *p = lws_wsi_user(pd->wsi);
		p->pending = NULL;
		p->reply_ready = true;
		lws_callback_on_writable(pd->wsi);
	}
	pending_remove(s, pd);
}

static struct pending *pending_new(struct sim *s, int64_t ms) {
	struct pending *pd = calloc(1, sizeof(*pd));

	if (!pd) {
		return NULL;
	}
	pd->sim = s;
	if (uv_timer_init(s->loop, &pd->timer) < 0) {
		free(pd);
		return NULL;
	}
	pd->timer.data = pd;
	pd->next = s->pendings;
	s->pendings = pd;
	(void)uv_timer_start(&pd->timer, on_pending, (uint64_t)(ms > 0 ? ms : 0), 0);
	return pd;
}

static void copy_custom(struct lws *wsi, const char *name, char *dst, size_t n) {
	char lname[64];
	size_t i, l = strlen(name);

	dst[0] = '\0';
	if (lws_hdr_custom_length(wsi, name, (int)l) > 0) {
		(void)lws_hdr_custom_copy(wsi, dst, (int)n, name, (int)l);
		return;
	}
	/* lws may keep the name as sent or lowercased; try lowercase */
	for (i = 0; i < l && i < sizeof(lname) - 1; i++) {
		lname[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	}
	lname[i] = '\0';
	if (lws_hdr_custom_length(wsi, lname, (int)i) > 0) {
		(void)lws_hdr_custom_copy(wsi, dst, (int)n, lname, (int)i);
	}
}

static void respond(struct sim *s, struct lws *wsi, struct pss *p) {
	struct rest_req rq;
	int64_t hang = 0;
	bool is_xfer = false;

	if (p->responded) {
		return;
	}
	p->responded = true;
	if (p->body_too_big) {
		sb_reset(&p->out);
		sim_error_body(&p->out, 413, 20413, "Request body too large");
		p->status = 413;
	} else if (strcmp(p->path, "/v1/wschannels") == 0 ||
		   strcmp(p->path, "/v1/wschannels/") == 0) {
		if (!p->is_post) {
			sim_error_body(&p->out, 405, 20405, "Use POST for the REST proxy");
			p->status = 405;
		} else {
			rq.body = p->body.p ? p->body.p : "";
			rq.api_version = p->api_version;
			rq.if_match = p->if_match;
			rq.client_version = p->client_version;
			g_capture = p;
			p->status = sim_rest_handle(s, &rq, &p->out, &hang, &is_xfer);
			g_capture = NULL;
		}
	} else if (strncmp(p->path, "/sim/", 5) == 0 || strcmp(p->path, "/sim") == 0 ||
		   strncmp(p->path, "/_sim/", 6) == 0) {
		const char *sub = p->path[1] == '_' ? p->path + 1 : p->path;
		p->status = sim_control_handle(s, p->is_post ? "POST" : "GET", sub,
			p->body.p ? p->body.p : "", &p->out);
	} else {
		sim_error_body(&p->out, 404, 20404, "Not found");
		p->status = 404;
	}
	if (p->out.oom) {
		sb_done(&p->out);
		sim_error_body(&p->out, 500, 20500, "Out of memory");
		p->status = 500;
	}
	if (is_xfer && s->xfer_order == 1 && hang == 0) {
		hang = s->xfer_delay_ms > 0 ? s->xfer_delay_ms : 100;
	}
	if (hang < 0) {
		/* the reset fault: the request was read and handled; hang up without a reply */
		p->reset = true;
		lws_callback_on_writable(wsi);
		return;
	}
	if (hang > 0) {
		struct pending *pd = pending_new(s, hang);
		if (pd) {
			pd->wsi = wsi;
			p->pending = pd;
			lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
			return;
		}
	}
	p->reply_ready = true;
	lws_callback_on_writable(wsi);
}

static int http_writeable(struct sim *s, struct lws *wsi, struct pss *p) {
	unsigned char buf[LWS_PRE + CHUNK];
	size_t left, n;
	int final;

	if (p->reset) {
		sim_log(s, "REST: closing the connection without a reply (reset fault)");
		return -1;
	}
	if (!p->reply_ready) {
		return 0;
	}
	if (!p->headers_done) {
		unsigned char *start = buf + LWS_PRE, *q = start, *end = buf + sizeof(buf) - 1;
		if (lws_add_http_common_headers(wsi, (unsigned int)p->status, "application/json",
			    p->out.len, &q, end) ||
			lws_finalize_write_http_header(wsi, start, &q, end)) {
			return -1;
		}
		p->headers_done = true;
		if (p->out.len == 0) {
			goto done;
		}
		lws_callback_on_writable(wsi);
		return 0;
	}
	left = p->out.len - p->out_off;
	n = left > CHUNK ? CHUNK : left;
	final = n == left;
	memcpy(buf + LWS_PRE, p->out.p + p->out_off, n);
	if (lws_write(wsi, buf + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
		(int)n) {
		return -1;
	}
	p->out_off += n;
	if (!final) {
		lws_callback_on_writable(wsi);
		return 0;
	}
done:
	if (p->held) {
		struct pending *pd = pending_new(s, s->xfer_delay_ms);
		if (pd) {
			pd->deliver_events = true;
			pd->held = p->held;
		} else {
			held_free(p->held);
		}
		p->held = NULL;
	}
	sb_done(&p->out);
	sb_done(&p->body);
	p->reply_ready = false;
	if (lws_http_transaction_completed(wsi)) {
		return -1;
	}
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
	size_t len) {
	struct sim *s = g_sim;
	struct pss *p = user;
	const char *msg = NULL;
	int st;

	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
		/* no per-session data yet: check now, parse again when established */
		struct upgrade u;
		if (!in || strcmp((const char *)in, "websocket") != 0) {
			return -1;
		}
		if (s->shutting_down) {
			(void)lws_return_http_status(wsi, 503, "shutting down");
			return 1;
		}
		st = check_upgrade(s, wsi, &u, &msg);
		free(u.token);
		if (st) {
			sim_vlog(s, "websocket upgrade refused: %d %s", st, msg);
			(void)lws_return_http_status(wsi, (unsigned int)st, msg);
			return 1;
		}
		return 0;
	}
	case LWS_CALLBACK_ESTABLISHED:
		if (!p->upg.valid) {
			st = check_upgrade(s, wsi, &p->upg, &msg);
			if (st) {
				sim_log(s, "websocket established without a valid upgrade: %s", msg);
				return -1;
			}
		}
		session_open(s, wsi, p);
		return p->sess ? 0 : -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return p->sess ? session_writeable(s, wsi, p->sess) : 0;
	case LWS_CALLBACK_RECEIVE:
		sim_vlog(s, "ignoring %zu bytes the client sent on the websocket", len);
		return 0;
	case LWS_CALLBACK_CLOSED:
		session_closed(s, p);
		free(p->upg.token);
		p->upg.token = NULL;
		return 0;

	case LWS_CALLBACK_HTTP: {
		char cl[32];
		pss_http_reset(p);
		snprintf(p->path, sizeof(p->path), "%s", (const char *)in);
		p->is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
		copy_custom(wsi, "apiVersion:", p->api_version, sizeof(p->api_version));
		copy_custom(wsi, "clientVersion:", p->client_version, sizeof(p->client_version));
		if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_IF_MATCH) > 0) {
			(void)lws_hdr_copy(wsi, p->if_match, sizeof(p->if_match),
				WSI_TOKEN_HTTP_IF_MATCH);
		}
		cl[0] = '\0';
		if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
			(void)lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
		}
		if (p->is_post && atol(cl) > 0) {
			return 0; /* the body follows */
		}
		respond(s, wsi, p);
		return 0;
	}
	case LWS_CALLBACK_HTTP_BODY:
		if (p->body.len + len > MAX_BODY) {
			p->body_too_big = true;
		} else {
			sb_putn(&p->body, in, len);
		}
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		respond(s, wsi, p);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return http_writeable(s, wsi, p);
	case LWS_CALLBACK_CLOSED_HTTP:
		if (p) {
			if (p->pending) {
				p->pending->wsi = NULL;
				p->pending = NULL;
			}
			pss_http_reset(p);
		}
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
	{"taskrouter-sim", callback, sizeof(struct pss), 4096, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_emit(int level, const char *line) {
	fprintf(stderr, "taskrouter-sim: lws(%d): %s", level, line);
}

int sim_server_start(struct sim *s) {
	struct lws_context_creation_info info;
	void *foreign[1] = {s->loop};

	g_sim = s;
	lws_set_log_level(getenv("SIM_LWS_DEBUG") ? 0xff : (LLL_ERR | LLL_WARN), lws_emit);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.foreign_loops = foreign;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.uid = info.gid = -1;
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		sim_log(s, "lws_create_context failed (is libwebsockets-evlib-uv installed?)");
		return -EIO;
	}
	memset(&info, 0, sizeof(info));
	info.port = s->opts.port;
	info.iface = s->opts.listen_host;
	info.protocols = protocols;
	info.vhost_name = "default";
	info.keepalive_timeout = 60;
	info.timeout_secs = 60;
	if (s->opts.tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = s->opts.tls_cert;
		info.ssl_private_key_filepath = s->opts.tls_key;
		/* HTTP/1.1 only, as Event Bridge's REST answers the SDK's clients: lws offers h2
		 * by default, and this server writes each answer in one lws_write, which h2
		 * cuts at its frame size (a client choosing h2 got a truncated body) */
		info.alpn = "http/1.1";
	}
	s->vhost = lws_create_vhost(s->ctx, &info);
	if (!s->vhost) {
		sim_log(s, "cannot listen on %s:%d", s->opts.listen_host, s->opts.port);
		return -EADDRINUSE;
	}
	s->port = lws_get_vhost_listen_port(s->vhost);
	if (uv_timer_init(s->loop, &s->heartbeat) < 0) {
		return -EIO;
	}
	s->heartbeat.data = s;
	(void)uv_timer_start(&s->heartbeat, on_heartbeat, (uint64_t)s->opts.heartbeat_ms,
		(uint64_t)s->opts.heartbeat_ms);
	return 0;
}

/* ---- shutdown ---- */

static void on_closed_nop(uv_handle_t *h) {
	(void)h;
}

static void finish_shutdown(struct sim *s) {
	struct pending *pd;

	(void)uv_timer_stop(&s->shutdown_timer);
	uv_close((uv_handle_t *)&s->shutdown_timer, on_closed_nop);
	uv_close((uv_handle_t *)&s->heartbeat, on_closed_nop);
	uv_close((uv_handle_t *)&s->sigterm, on_closed_nop);
	uv_close((uv_handle_t *)&s->sigint, on_closed_nop);
	uv_close((uv_handle_t *)&s->sighup, on_closed_nop);
	while ((pd = s->pendings)) {
		s->pendings = pd->next;
		if (pd->wsi) {
			struct pss *p = lws_wsi_user(pd->wsi);
			p->pending = NULL;
		}
		uv_close((uv_handle_t *)&pd->timer, on_pending_closed);
	}
	/* the first destroy on a foreign loop starts the asynchronous teardown */
	lws_context_destroy(s->ctx);
	world_close(s->world);
}

static int64_t shutdown_started;

static void on_shutdown_timer(uv_timer_t *t) {
	struct sim *s = t->data;

	if (!s->sessions || (int64_t)uv_now(s->loop) - shutdown_started > SHUTDOWN_DEADLINE_MS) {
		finish_shutdown(s);
	}
}

void sim_begin_shutdown(struct sim *s) {
	if (s->shutting_down) {
		return;
	}
	s->shutting_down = true;
	sim_vlog(s, "shutting down");
	(void)uv_timer_stop(&s->heartbeat);
	sim_close_sessions(s, NULL, 1001, "server shutdown");
	shutdown_started = (int64_t)uv_now(s->loop);
	(void)uv_timer_start(&s->shutdown_timer, on_shutdown_timer, 20, 20);
}
