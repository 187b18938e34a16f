/*
 * bridge-resync.c — the resync after every init (struct tr_bridge_resync): the
 * worker, then its activities, channels and active reservations, every page,
 * through REST; the events that arrive meanwhile are buffered and delivered in
 * order once it completes. A failed resync is retried with backoff, then the
 * session is dropped.
 *
 * A resync's REST replies carry the generation they were sent in; a reply from
 * an older one (the session or the resync ended since) is dropped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "bridge-internal.h"
#include "json.h"
#include "log.h"
#include "rest.h"

#define RESYNC_BUFFER_MAX 10000 /* events buffered during a resync; overflow restarts it */
#define RESYNC_MAX_PAGES 1000   /* per list */
#define RESYNC_MAX_FAILURES 3   /* then drop the session and reconnect */

enum rs_kind {
	RS_WORKER,
	RS_ACTIVITIES,
	RS_CHANNELS,
	RS_RESERVATIONS,
};

struct rs_ctx {
	struct tr_bridge *b;
	uint64_t gen;
	enum rs_kind kind;
	unsigned page;
};

struct buffered_event {
	char *type;
	struct tr_json *payload;
};

static void buf_clear(struct tr_bridge *b) {
	for (size_t i = 0; i < b->resync.buf_n; i++) {
		free(b->resync.buf[i].type);
		tr_json_free(b->resync.buf[i].payload);
	}
	b->resync.buf_n = 0;
}

static int buf_push(struct tr_bridge *b, const char *type, const struct tr_json *payload) {
	struct buffered_event *e;

	if (b->resync.buf_n >= RESYNC_BUFFER_MAX) {
		return -ENOBUFS;
	}
	if (b->resync.buf_n == b->resync.buf_cap) {
		size_t c = b->resync.buf_cap ? b->resync.buf_cap * 2 : 64;
		struct buffered_event *p = realloc(b->resync.buf, c * sizeof(*p));
		if (!p) {
			return -ENOMEM;
		}
		b->resync.buf = p;
		b->resync.buf_cap = c;
	}
	e = &b->resync.buf[b->resync.buf_n];
	e->type = strdup(type);
	e->payload = payload ? tr_json_dup(payload) : NULL;
	if (!e->type || (payload && !e->payload)) {
		free(e->type);
		tr_json_free(e->payload);
		return -ENOMEM;
	}
	b->resync.buf_n++;
	return 0;
}

static void on_resync_timer(uv_timer_t *t) {
	struct tr_bridge *b = t->data;

	if (b->session.wsi && b->session.have_init && !b->resync.running) {
		tr_bridge_resync_start(b);
	}
}

static void resync_fail(struct tr_bridge *b, int err, const char *what) {
	b->resync.running = false;
	b->resync.gen++;
	b->resync.errors++;
	b->resync.failures++;
	snprintf(b->last_error, sizeof(b->last_error), "resync failed: %s", what);
	if (b->ev && b->ev->resync_end) {
		b->ev->resync_end(b->ud, err);
	}
	if (b->closing) {
		return;
	}
	if (b->resync.failures >= RESYNC_MAX_FAILURES) {
		tr_log_warning("upstream: resync failed %u times (%s); reconnecting",
			b->resync.failures, what);
		tr_bridge_session_drop(b, "resync failed", false);
		return;
	}
	{
		uint64_t d = tr_backoff_ms(b->resync.failures, tr_backoff_rand_next(&b->rng));
		tr_log_warning("upstream: resync failed (%s); retrying in %" PRIu64 " ms", what, d);
		(void)uv_timer_start(&b->resync.t_retry, on_resync_timer, d, 0);
	}
}

/* Hand one wire event to the daemon, keeping our own worker snapshot (for status) current. */
static void deliver_event(struct tr_bridge *b, const char *type, const struct tr_json *payload) {
	b->resync.events++;
	if (payload && strncmp(type, "worker.", 7) == 0 &&
		(strcmp(type, "worker.activity.update") == 0 ||
			strcmp(type, "worker.attributes.update") == 0)) {
		struct tr_json *w = tr_json_dup(payload);
		if (w) {
			tr_json_free(b->resync.worker);
			b->resync.worker = w;
		}
	}
	if (b->ev && b->ev->event) {
		b->ev->event(b->ud, type, payload);
	}
}

static void resync_complete(struct tr_bridge *b) {
	b->resync.running = false;
	b->resync.failures = 0;
	b->resync.resyncs++;
	b->resync.n_activities = b->resync.new_n_activities;
	b->resync.n_channels = b->resync.new_n_channels;
	/* A resync asked for from inside these callbacks runs once they are done. */
	b->resync.flushing = true;
	b->resync.synced = true;
	if (b->ev && b->ev->resync_end) {
		b->ev->resync_end(b->ud, 0);
	}
	/* Deliver what arrived meanwhile, in order. */
	for (size_t i = 0; i < b->resync.buf_n && !b->closing; i++) {
		deliver_event(b, b->resync.buf[i].type, b->resync.buf[i].payload);
	}
	b->resync.flushing = false;
	buf_clear(b);
	if (b->closing) {
		return;
	}
	if (!b->token.expired) {
		tr_bridge_set_state(b, TR_BRIDGE_READY, NULL);
	}
	if (b->resync.again) {
		b->resync.again = false;
		tr_bridge_resync_start(b);
	}
}

static int rs_send(struct tr_bridge *b, enum rs_kind kind, const char *after_sid, unsigned page);

static const char *rs_name(enum rs_kind k) {
	switch (k) {
	case RS_WORKER:
		return "worker";
	case RS_ACTIVITIES:
		return "activities";
	case RS_CHANNELS:
		return "worker channels";
	case RS_RESERVATIONS:
		return "reservations";
	}
	return "?";
}

static void on_rs_reply(void *userdata, const struct tr_upstream_reply *rep) {
	struct rs_ctx *c = userdata;
	struct tr_bridge *b = c->b;
	enum rs_kind kind = c->kind;
	unsigned page = c->page;
	bool stale = c->gen != b->resync.gen || !b->resync.running || b->closing;
	const struct tr_json *contents;
	const char *after;
	char what[300];

	free(c);
	if (stale) {
		return;
	}
	if (rep->err != 0 || rep->http_status < 200 || rep->http_status >= 300) {
		if (rep->err) {
			snprintf(what, sizeof(what), "%s: %s", rs_name(kind),
				rep->message ? rep->message : strerror(-rep->err));
		} else {
			snprintf(what, sizeof(what), "%s: HTTP %ld: %s", rs_name(kind),
				rep->http_status, rep->message ? rep->message : "");
		}
		resync_fail(b, rep->err ? rep->err : -EIO, what);
		return;
	}
	if (kind == RS_WORKER) {
		if (!tr_json_is(rep->payload, TR_JSON_OBJECT)) {
			resync_fail(b, -EBADMSG, "worker: payload is not an object");
			return;
		}
		tr_json_free(b->resync.worker);
		b->resync.worker = tr_json_dup(rep->payload);
		if (b->ev && b->ev->resync_worker) {
			b->ev->resync_worker(b->ud, rep->payload);
		}
		if (b->closing || !b->resync.running) {
			return;
		}
		b->resync.new_n_activities = b->resync.new_n_channels = 0;
		b->resync.pending = 0;
		for (enum rs_kind k = RS_ACTIVITIES; k <= RS_RESERVATIONS; k++) {
			int e = rs_send(b, k, NULL, 0);
			if (e < 0) {
				snprintf(what, sizeof(what), "%s: %s", rs_name(k), strerror(-e));
				resync_fail(b, e, what);
				return;
			}
			b->resync.pending++;
		}
		return;
	}
	contents = tr_json_get(rep->payload, "contents");
	if (!tr_json_is(contents, TR_JSON_ARRAY)) {
		snprintf(what, sizeof(what), "%s: page without contents", rs_name(kind));
		resync_fail(b, -EBADMSG, what);
		return;
	}
	for (size_t i = 0; i < contents->u.arr.n; i++) {
		const struct tr_json *it = contents->u.arr.items[i];
		if (kind == RS_RESERVATIONS) {
			if (b->ev && b->ev->resync_reservation) {
				b->ev->resync_reservation(b->ud, it);
			}
		} else if (kind == RS_ACTIVITIES) {
			b->resync.new_n_activities++;
			if (b->ev && b->ev->resync_activity) {
				b->ev->resync_activity(b->ud, it);
			}
		} else {
			b->resync.new_n_channels++;
			if (b->ev && b->ev->resync_channel) {
				b->ev->resync_channel(b->ud, it);
			}
		}
		if (b->closing || !b->resync.running) {
			return;
		}
	}
	if (b->closing || !b->resync.running) {
		return;
	}
	after = tr_json_get_string(rep->payload, "after_sid");
	if (after && *after) {
		int e;
		if (page + 1 >= RESYNC_MAX_PAGES) {
			snprintf(what, sizeof(what), "%s: more than %d pages", rs_name(kind),
				RESYNC_MAX_PAGES);
			resync_fail(b, -E2BIG, what);
			return;
		}
		e = rs_send(b, kind, after, page + 1);
		if (e < 0) {
			snprintf(what, sizeof(what), "%s: %s", rs_name(kind), strerror(-e));
			resync_fail(b, e, what);
		}
		return;
	}
	if (--b->resync.pending == 0) {
		resync_complete(b);
	}
}

static int rs_send(struct tr_bridge *b, enum rs_kind kind, const char *after_sid, unsigned page) {
	struct tr_upstream_request req = {.method = "GET", .api_version = "v1", .if_match = -1,
		.retry_transient = true};
	struct tr_json *params = NULL;
	struct rs_ctx *c;
	char path[256];
	int e = 0;

	switch (kind) {
	case RS_WORKER:
		snprintf(path, sizeof(path), "Workspaces/%s/Workers/%s", b->session.workspace_sid,
			b->session.worker_sid);
		break;
	case RS_ACTIVITIES:
		snprintf(path, sizeof(path), "Workspaces/%s/Activities", b->session.workspace_sid);
		break;
	case RS_CHANNELS:
		snprintf(path, sizeof(path), "Workspaces/%s/Workers/%s/WorkerChannels",
			b->session.workspace_sid, b->session.worker_sid);
		break;
	case RS_RESERVATIONS:
		snprintf(path, sizeof(path), "Workspaces/%s/Workers/%s/Reservations",
			b->session.workspace_sid, b->session.worker_sid);
		req.api_version = "v2";
		break;
	}
	params = tr_json_new_object();
	if (!params) {
		return -ENOMEM;
	}
	if (kind == RS_RESERVATIONS) {
		e = tr_json_object_set(params, "Active", tr_json_new_string("true"));
	}
	if (e == 0 && kind != RS_WORKER) {
		e = tr_json_object_set(params, "PageSize", tr_json_new_int(1000));
	}
	if (e == 0 && after_sid) {
		e = tr_json_object_set(params, "AfterSid", tr_json_new_string(after_sid));
	}
	c = calloc(1, sizeof(*c));
	if (e < 0 || !c) {
		tr_json_free(params);
		free(c);
		return -ENOMEM;
	}
	c->b = b;
	c->gen = b->resync.gen;
	c->kind = kind;
	c->page = page;
	req.path = path;
	req.params = params;
	e = tr_rest_send(b->rest, &req, on_rs_reply, c);
	tr_json_free(params);
	if (e < 0) {
		free(c);
	}
	return e;
}

void tr_bridge_resync_start(struct tr_bridge *b) {
	int e;

	(void)uv_timer_stop(&b->resync.t_retry);
	if (b->closing) {
		return;
	}
	if (b->resync.running) {
		b->resync.again = true;
		return;
	}
	b->resync.gen++;
	b->resync.running = true;
	b->resync.again = false;
	b->resync.pending = 1;
	if (!b->token.expired) {
		tr_bridge_set_state(b, TR_BRIDGE_INITIALIZING, NULL);
	}
	if (b->ev && b->ev->resync_begin) {
		b->ev->resync_begin(b->ud);
	}
	e = rs_send(b, RS_WORKER, NULL, 0);
	if (e < 0) {
		char what[128];
		snprintf(what, sizeof(what), "worker: %s", strerror(-e));
		resync_fail(b, e, what);
	}
}

void tr_bridge_resync_event(struct tr_bridge *b, const char *type, const struct tr_json *payload) {
	int e;

	if (b->resync.running || (b->session.have_init && !b->resync.synced)) {
		e = buf_push(b, type, payload);
		if (e < 0) {
			b->resync.buffer_overflows++;
			tr_log_warning(
				"upstream: %s events buffered during the resync; restarting it",
				e == -ENOBUFS ? "too many" : "cannot keep");
			buf_clear(b);
			if (b->resync.running) {
				b->resync.running = false;
				b->resync.gen++;
				if (b->ev && b->ev->resync_end) {
					b->ev->resync_end(b->ud, -ENOBUFS);
				}
			}
			tr_bridge_resync_start(b);
		}
	} else if (b->resync.synced) {
		deliver_event(b, type, payload);
	} else {
		tr_log_debug("upstream: %s before init, ignoring", type);
	}
}

void tr_bridge_request_resync(struct tr_bridge *b) {
	if (b->closing) {
		return;
	}
	if (b->resync.running || b->resync.flushing) {
		b->resync.again = true;
		return;
	}
	if (b->session.wsi && b->session.have_init && b->resync.synced) {
		tr_bridge_resync_start(b);
	}
}

void tr_bridge_resync_stop(struct tr_bridge *b, int err) {
	b->resync.gen++;
	(void)uv_timer_stop(&b->resync.t_retry);
	if (b->resync.running) {
		b->resync.running = false;
		if (b->ev && b->ev->resync_end) {
			b->ev->resync_end(b->ud, err);
		}
	}
	buf_clear(b);
}

void tr_bridge_resync_reset(struct tr_bridge *b) {
	b->resync.synced = false;
	b->resync.failures = 0;
}

void tr_bridge_resync_done(struct tr_bridge *b) {
	buf_clear(b);
	free(b->resync.buf);
	b->resync.buf = NULL;
	b->resync.buf_cap = 0;
	b->resync.worker = tr_json_free(b->resync.worker);
}
