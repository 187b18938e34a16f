/*
 * control.c — taskrouter-sim's control API under /sim/ (HTTP + JSON, loopback): script
 * the world, read it back, and inject faults. Not part of Twilio's protocol.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define BULK_MAX 100000
#define WS_FAULT_MAX (64u * 1024u * 1024u)

struct ctl {
	struct sim *s;
	struct sim_world *w;
	yajl_val body;
	struct sbuf *out;
};

static int bad(struct ctl *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct ctl *c, int status, const char *fmt, ...) {
	char msg[512];
	struct jw j;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sb_reset(c->out);
	jw_init(&j, c->out);
	jw_obj(&j);
	jw_kstr(&j, "message", msg);
	jw_obj_end(&j);
	return status;
}

static int bad_err(struct ctl *c, const struct sim_err *e) {
	return bad(c, e->status, "%s", e->message);
}

static int ok(struct ctl *c) {
	sb_reset(c->out);
	sb_puts(c->out, "{\"ok\":true}");
	return 200;
}

/* ---- state ---- */

static void state_workers(struct ctl *c, struct jw *j) {
	int i, ch;

	jw_key(j, "workers");
	jw_arr(j);
	for (i = 0; i < c->w->n_workers; i++) {
		struct sim_worker *k = c->w->workers[i];
		/* the wire worker plus the simulator's view */
		jw_obj(j);
		jw_kstr(j, "sid", k->sid);
		jw_kstr(j, "friendly_name", k->name);
		jw_kstr(j, "name", k->name);
		jw_kstr(j, "activity_sid", c->w->activities[k->activity].sid);
		jw_kstr(j, "activity_name", c->w->activities[k->activity].name);
		jw_kbool(j, "available", c->w->activities[k->activity].available);
		jw_kstr(j, "attributes", k->attributes);
		jw_kint(j, "date_created", k->created);
		jw_kint(j, "date_updated", k->updated);
		jw_kint(j, "date_status_changed", k->status_changed);
		jw_kint(j, "version", k->version);
		jw_kint(j, "sessions", k->sessions);
		jw_key(j, "channels");
		jw_arr(j);
		for (ch = 0; ch < SIM_N_CHANNELS; ch++) {
			render_wchannel(c->w, j, k, ch);
		}
		jw_arr_end(j);
		jw_obj_end(j);
	}
	jw_arr_end(j);
}

static void state_sessions(struct ctl *c, struct jw *j) {
	struct session *se;

	jw_key(j, "sessions");
	jw_arr(j);
	for (se = c->s->sessions; se; se = se->next) {
		jw_obj(j);
		jw_kint(j, "id", (int64_t)se->id);
		jw_kstr(j, "worker", se->worker->name);
		jw_kstr(j, "worker_sid", se->worker->sid);
		jw_kbool(j, "closeExistingSessions", se->close_existing);
		jw_kstr(j, "clientVersion", se->client_version);
		jw_key(j, "setWorkerOfflineIfDisconnected");
		if (se->set_offline < 0) {
			jw_null(j);
		} else {
			jw_bool(j, se->set_offline == 1);
		}
		jw_kint(j, "connected_at", se->connected_at);
		jw_kint(j, "token_expires", se->token_exp);
		jw_kbool(j, "init_sent", se->init_sent);
		jw_kint(j, "queued_bytes", (int64_t)se->q_bytes);
		jw_obj_end(j);
	}
	jw_arr_end(j);
}

static int get_state(struct ctl *c) {
	struct sim_world *w = c->w;
	struct jw j;
	size_t i;
	int k;

	sb_reset(c->out);
	jw_init(&j, c->out);
	jw_obj(&j);
	jw_kstr(&j, "account_sid", w->account_sid);
	jw_kstr(&j, "workspace_sid", w->workspace_sid);
	jw_key(&j, "workflow");
	jw_obj(&j);
	jw_kstr(&j, "sid", w->workflow.sid);
	jw_kstr(&j, "name", w->workflow.name);
	jw_obj_end(&j);
	jw_key(&j, "queue");
	jw_obj(&j);
	jw_kstr(&j, "sid", w->queue.sid);
	jw_kstr(&j, "name", w->queue.name);
	jw_obj_end(&j);
	jw_key(&j, "task_channels");
	jw_arr(&j);
	for (k = 0; k < SIM_N_CHANNELS; k++) {
		jw_obj(&j);
		jw_kstr(&j, "sid", w->channels[k].sid);
		jw_kstr(&j, "unique_name", w->channels[k].name);
		jw_obj_end(&j);
	}
	jw_arr_end(&j);
	jw_key(&j, "activities");
	jw_arr(&j);
	for (k = 0; k < 2; k++) {
		render_activity(w, &j, &w->activities[k]);
	}
	jw_arr_end(&j);
	state_workers(c, &j);
	jw_key(&j, "tasks");
	jw_arr(&j);
	for (i = 0; i < w->n_tasks; i++) {
		if (!w->tasks[i]->deleted) {
			render_task(w, &j, w->tasks[i]);
		}
	}
	jw_arr_end(&j);
	jw_key(&j, "reservations");
	jw_arr(&j);
	for (i = 0; i < w->n_res; i++) {
		render_res(w, &j, w->res[i], RES_STATE);
	}
	jw_arr_end(&j);
	jw_key(&j, "transfers");
	jw_arr(&j);
	for (i = 0; i < w->n_xfers; i++) {
		struct sim_transfer *x = w->xfers[i];
		render_xfer(w, &j, x, true);
	}
	jw_arr_end(&j);
	jw_key(&j, "conferences");
	jw_arr(&j);
	for (i = 0; i < w->n_tasks; i++) {
		struct sim_task *t = w->tasks[i];
		if (t->customer_in || t->conf_members) {
			render_conf(w, &j, t);
		}
	}
	jw_arr_end(&j);
	state_sessions(c, &j);
	jw_key(&j, "faults");
	jw_obj(&j);
	jw_kbool(&j, "heartbeats_paused", c->s->heartbeats_paused);
	jw_kint(&j, "rest_fault_count", c->s->rest_fault.count);
	jw_kstr(&j, "transfer_event_order",
		c->s->xfer_order == 1 ? "before" : c->s->xfer_order == 2 ? "after" : "normal");
	jw_kbool(&j, "reverse_event_order", w->reverse_order);
	jw_kstr(&j, "reservation_get_shape", c->s->res_get_instance ? "instance" : "event");
	jw_obj_end(&j);
	jw_obj_end(&j);
	return 200;
}

static int get_requests(struct ctl *c) {
	struct jw j;
	size_t i;

	sb_reset(c->out);
	jw_init(&j, c->out);
	jw_obj(&j);
	jw_key(&j, "requests");
	jw_arr(&j);
	for (i = 0; i < c->s->n_log; i++) {
		struct reqlog *l = &c->s->log[i];
		jw_obj(&j);
		jw_kstr(&j, "url", l->url);
		jw_kstr(&j, "method", l->method);
		jw_kraw(&j, "params", l->params);
		jw_kstr(&j, "apiVersion", l->api_version[0] ? l->api_version : NULL);
		jw_kstr(&j, "If-Match", l->if_match[0] ? l->if_match : NULL);
		jw_kstr(&j, "clientVersion", l->client_version[0] ? l->client_version : NULL);
		jw_kstr(&j, "worker_sid", l->worker_sid[0] ? l->worker_sid : NULL);
		jw_kstr(&j, "token", "[redacted]");
		jw_kint(&j, "status", l->status);
		jw_kint(&j, "time_ms", l->time_ms);
		jw_obj_end(&j);
	}
	jw_arr_end(&j);
	jw_obj_end(&j);
	return 200;
}

void sim_reqlog_done(struct reqlog *l) {
	char *strings[] = { l->url, l->method, l->params, l->api_version, l->if_match,
		l->client_version, l->worker_sid };

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		free(strings[i]);
	}
}

void sim_requests_clear(struct sim *s) {
	for (size_t i = 0; i < s->n_log; i++) {
		sim_reqlog_done(&s->log[i]);
	}
	s->n_log = 0;
}

/* ---- world scripting ---- */

static struct sim_worker *body_worker(struct ctl *c, const char *key) {
	return world_worker(c->w, jp_str(c->body, key));
}

static int body_attributes(struct ctl *c, char **ret) {
	return jp_attributes(jp_get(c->body, "attributes"), false, ret);
}

static int task_spec(struct ctl *c, struct sim_task_spec *spec, char **attrs) {
	const char *ch = jp_str(c->body, "channel");
	struct sim_worker *k = NULL;
	int64_t v;

	memset(spec, 0, sizeof(*spec));
	*attrs = NULL;
	spec->worker_target = -1;
	if (jp_get(c->body, "worker")) {
		k = body_worker(c, "worker");
		if (!k) {
			return bad(c, 400, "unknown worker");
		}
		spec->worker_target = k->idx;
		spec->force = true;
	}
	spec->channel = world_channel(c->w, ch ? ch : "voice");
	if (spec->channel < 0) {
		return bad(c, 400, "unknown channel %s", ch);
	}
	spec->timeout = SIM_TASK_TIMEOUT_DEFAULT;
	if (jp_int(c->body, "timeout", false, &v) == 0) {
		spec->timeout = v;
	}
	if (jp_int(c->body, "priority", false, &v) == 0) {
		spec->priority = v;
	}
	if (jp_int(c->body, "reservation_timeout", false, &v) == 0) {
		if (v < 1 || v > 86400) {
			return bad(c, 400, "reservation_timeout must be 1..86400 seconds");
		}
		spec->reservation_timeout = v;
	}
	if (body_attributes(c, attrs) < 0) {
		return bad(c, 400, "attributes must be a JSON object");
	}
	spec->attributes = *attrs;
	return 0;
}

static int post_task(struct ctl *c) {
	struct sim_task_spec spec;
	struct sim_task *t;
	struct sim_reservation *r = NULL;
	struct sim_err err;
	bool fail = false;
	char *attrs;
	struct jw j;
	int rc;

	if (jp_bool(c->body, "fail", false, &fail) == -EINVAL) {
		return bad(c, 400, "fail must be a boolean");
	}
	if ((rc = task_spec(c, &spec, &attrs))) {
		return rc;
	}
	if (fail && spec.worker_target < 0) {
		free(attrs);
		return bad(c, 400, "fail needs a worker");
	}
	/* fail: a task no reservation could be created for (canceled, reservation.failed) */
	spec.no_route = fail;
	rc = world_task_create(c->w, &spec, &t, &r, &err);
	free(attrs);
	if (rc < 0) {
		return bad_err(c, &err);
	}
	if (fail) {
		world_task_fail(c->w, t, c->w->workers[spec.worker_target]);
	}
	sb_reset(c->out);
	jw_init(&j, c->out);
	jw_obj(&j);
	jw_kstr(&j, "task", t->sid);
	jw_kstr(&j, "reservation", r ? r->sid : NULL);
	jw_obj_end(&j);
	return 200;
}

static int post_bulk(struct ctl *c) {
	struct sim_task_spec spec;
	struct sim_err err;
	bool accept = false;
	int64_t count = 0, i;
	char *attrs;
	struct jw j;
	int rc;

	if (jp_int(c->body, "count", false, &count) < 0 || count < 1 || count > BULK_MAX) {
		return bad(c, 400, "count must be 1..%d", BULK_MAX);
	}
	if (!jp_get(c->body, "worker")) {
		return bad(c, 400, "worker is required");
	}
	(void)jp_bool(c->body, "accept", false, &accept);
	if ((rc = task_spec(c, &spec, &attrs))) {
		return rc;
	}
	for (i = 0; i < count; i++) {
		struct sim_task *t;
		struct sim_reservation *r;
		if (world_task_create(c->w, &spec, &t, &r, &err) < 0 ||
			(accept && r && world_res_accept(c->w, r, &err) < 0)) {
			free(attrs);
			return bad_err(c, &err);
		}
		if (c->w->oom) {
			free(attrs);
			return bad(c, 500, "out of memory");
		}
	}
	free(attrs);
	sb_reset(c->out);
	jw_init(&j, c->out);
	jw_obj(&j);
	jw_kint(&j, "created", count);
	jw_obj_end(&j);
	return 200;
}

static int res_action(struct ctl *c, const char *sid, const char *action) {
	struct sim_reservation *r = world_res(c->w, sid);
	struct sim_err err;
	int rc;

	if (!r) {
		return bad(c, 404, "unknown reservation %s", sid);
	}
	if (strcmp(action, "accept") == 0) {
		rc = world_res_accept(c->w, r, &err);
	} else if (strcmp(action, "reject") == 0) {
		const char *act = jp_str(c->body, "activity");
		int a = act ? world_activity(c->w, act) : -1;
		if (act && a < 0) {
			return bad(c, 400, "activity must name an activity (Available, Offline)");
		}
		rc = world_res_reject(c->w, r, a, &err);
	} else if (strcmp(action, "timeout") == 0) {
		rc = world_res_timeout(c->w, r, &err);
	} else if (strcmp(action, "rescind") == 0) {
		rc = world_res_rescind(c->w, r, &err);
	} else if (strcmp(action, "wrap") == 0) {
		rc = world_res_wrap(c->w, r, &err);
	} else if (strcmp(action, "complete") == 0) {
		rc = world_res_complete(c->w, r, &err);
	} else {
		return bad(c, 404, "unknown reservation action %s", action);
	}
	return rc < 0 ? bad_err(c, &err) : ok(c);
}

static int task_action(struct ctl *c, const char *sid, const char *action) {
	struct sim_task *t = world_task(c->w, sid);
	const char *reason = jp_str(c->body, "reason");
	struct sim_err err;
	int rc;

	if (!t) {
		return bad(c, 404, "unknown task %s", sid);
	}
	if (strcmp(action, "update") == 0) {
		char *attrs;
		int64_t prio = -1;
		if (body_attributes(c, &attrs) < 0) {
			return bad(c, 400, "attributes must be a JSON object");
		}
		(void)jp_int(c->body, "priority", false, &prio);
		if (!attrs && prio == -1) {
			return bad(c, 400, "nothing to update (attributes, priority)");
		}
		rc = world_task_update(c->w, t, attrs, prio, -1, -1, &err);
		free(attrs);
	} else if (strcmp(action, "cancel") == 0) {
		rc = world_task_cancel(c->w, t, reason ? reason : "canceled by the simulator",
			&err);
	} else if (strcmp(action, "complete") == 0) {
		rc = world_task_complete(c->w, t, reason ? reason : "completed by the simulator",
			&err);
	} else if (strcmp(action, "wrap") == 0) {
		rc = world_task_wrap(c->w, t, reason, &err);
	} else if (strcmp(action, "delete") == 0) {
		rc = world_task_delete(c->w, t, &err);
	} else {
		return bad(c, 404, "unknown task action %s", action);
	}
	return rc < 0 ? bad_err(c, &err) : ok(c);
}

static int xfer_action(struct ctl *c, const char *sid, const char *action) {
	struct sim_transfer *x = world_xfer(c->w, sid);
	struct sim_err err;
	int how;

	if (!x) {
		return bad(c, 404, "unknown transfer %s", sid);
	}
	if (strcmp(action, "accept") == 0) {
		how = 0;
	} else if (strcmp(action, "reject") == 0) {
		how = 1;
	} else if (strcmp(action, "timeout") == 0) {
		how = 2;
	} else {
		return bad(c, 404, "unknown transfer action %s", action);
	}
	return world_transfer_drive(c->w, x, how, &err) < 0 ? bad_err(c, &err) : ok(c);
}

static int worker_action(struct ctl *c, const char *name, const char *rest) {
	struct sim_worker *k = world_worker(c->w, name);
	struct sim_err err;
	int rc;

	if (!k) {
		return bad(c, 404, "unknown worker %s", name);
	}
	if (strcmp(rest, "activity") == 0) {
		int a = world_activity(c->w, jp_str(c->body, "activity"));
		bool reject = false;
		if (a < 0) {
			return bad(c, 400, "activity must name an activity (Available, Offline)");
		}
		if (jp_bool(c->body, "reject_pending", false, &reject) == -EINVAL) {
			return bad(c, 400, "reject_pending must be a boolean");
		}
		rc = world_worker_set_activity(c->w, k, a, reject, &err);
	} else if (strcmp(rest, "attributes") == 0) {
		char *attrs;
		if (body_attributes(c, &attrs) < 0 || !attrs) {
			free(attrs);
			return bad(c, 400, "attributes must be a JSON object");
		}
		rc = world_worker_set_attributes(c->w, k, attrs, &err);
		free(attrs);
	} else if (strncmp(rest, "channels/", 9) == 0) {
		int64_t cap = -1;
		bool avail;
		int av = -1;
		if (jp_int(c->body, "capacity", false, &cap) == -EINVAL) {
			return bad(c, 400, "capacity must be an integer");
		}
		if (jp_bool(c->body, "available", false, &avail) == 0) {
			av = avail;
		}
		rc = world_worker_set_channel(c->w, k, world_channel(c->w, rest + 9), (int)cap, av,
			&err);
	} else {
		return bad(c, 404, "unknown worker action %s", rest);
	}
	return rc < 0 ? bad_err(c, &err) : ok(c);
}

static int post_token(struct ctl *c) {
	struct sim_worker *k = body_worker(c, "worker");
	int64_t ttl = c->s->opts.token_ttl;
	struct jw j;
	int r;

	if (!k) {
		return bad(c, 400, "unknown worker");
	}
	if (jp_int(c->body, "ttl", false, &ttl) == -EINVAL || ttl < -86400 * 365) {
		return bad(c, 400, "ttl must be an integer number of seconds");
	}
	r = sim_mint_token(c->s, k, ttl);
	if (r < 0) {
		return bad(c, 500, "cannot mint or write the token: %s", strerror(-r));
	}
	sb_reset(c->out);
	jw_init(&j, c->out);
	jw_obj(&j);
	jw_kstr(&j, "token", k->token);
	jw_obj_end(&j);
	return 200;
}

/* ---- faults ---- */

static int fault(struct ctl *c, const char *kind) {
	struct sim *s = c->s;

	if (strcmp(kind, "drop") == 0) {
		bool close = true;
		int64_t code = 4000;
		const char *reason = jp_str(c->body, "reason");
		(void)jp_bool(c->body, "close", false, &close);
		(void)jp_int(c->body, "code", false, &code);
		if (close && (code < 1000 || code > 4999 || code == 1005 || code == 1006)) {
			return bad(c, 400, "code must be a sendable close code (1000..4999)");
		}
		sim_drop_all(s, close, (int)code, reason ? reason : "dropped by the simulator");
		return ok(c);
	}
	if (strcmp(kind, "refuse-ws") == 0) {
		bool refuse;
		if (jp_bool(c->body, "refuse", false, &refuse) < 0) {
			return bad(c, 400, "refuse must be a boolean");
		}
		s->refuse_ws = refuse;
		return ok(c);
	}
	if (strcmp(kind, "heartbeats") == 0) {
		bool paused;
		if (jp_bool(c->body, "paused", false, &paused) < 0) {
			return bad(c, 400, "paused must be a boolean");
		}
		s->heartbeats_paused = paused;
		return ok(c);
	}
	if (strcmp(kind, "expire-token") == 0) {
		struct sim_worker *k = body_worker(c, "worker");
		if (!k) {
			return bad(c, 400, "unknown worker");
		}
		if (k->token && sim_token_revoke(s, k->token) < 0) {
			return bad(c, 500, "out of memory");
		}
		/* every session that presented a revoked token ends */
		sim_expire_sessions(s, k);
		return ok(c);
	}
	if (strcmp(kind, "rest") == 0) {
		int64_t count = 1, status = 0, hang = 0;
		bool reset = false;
		const char *match = jp_str(c->body, "match");
		const char *msg = jp_str(c->body, "message");
		(void)jp_int(c->body, "count", false, &count);
		(void)jp_int(c->body, "status", false, &status);
		(void)jp_int(c->body, "hang_ms", false, &hang);
		(void)jp_bool(c->body, "reset", false, &reset);
		if (count < 0 || count > 1000000 || (status && (status < 400 || status > 599)) ||
			hang < 0 || hang > 600000 || (!status && !hang && !reset && count) ||
			(reset && (status || hang))) {
			return bad(c, 400, "need count 0..1000000 and a status 400..599 and/or "
					   "hang_ms 0..600000, or reset alone");
		}
		s->rest_fault.reset = reset;
		s->rest_fault.count = (int)count;
		s->rest_fault.status = (int)status;
		s->rest_fault.hang_ms = hang;
		snprintf(s->rest_fault.match, sizeof(s->rest_fault.match), "%s", match ? match : "");
		snprintf(s->rest_fault.message, sizeof(s->rest_fault.message), "%s",
			msg ? msg : "");
		return ok(c);
	}
	if (strcmp(kind, "ws-message") == 0) {
		const char *k = jp_str(c->body, "kind");
		const char *data = jp_str(c->body, "data");
		int64_t bytes = 2 * 1024 * 1024;
		char *buf;
		(void)jp_int(c->body, "bytes", false, &bytes);
		if (!k) {
			return bad(c, 400, "kind must be malformed, oversize or raw");
		}
		if (strcmp(k, "malformed") == 0) {
			static const char m[] = "{\"event_type\":\"task.updated\",\"payload\":{\"sid\":";
			sim_send_raw_all(s, m, sizeof(m) - 1);
		} else if (strcmp(k, "raw") == 0 && data) {
			sim_send_raw_all(s, data, strlen(data));
		} else if (strcmp(k, "oversize") == 0) {
			if (bytes < 16 || bytes > (int64_t)WS_FAULT_MAX) {
				return bad(c, 400, "bytes must be 16..%u", WS_FAULT_MAX);
			}
			buf = malloc((size_t)bytes);
			if (!buf) {
				return bad(c, 500, "out of memory");
			}
			/* a valid JSON event whose padding makes it too large */
			memset(buf, ' ', (size_t)bytes);
			memcpy(buf, "{\"event_type\":\"sim.padding\",\"payload\":\"", 39);
			memset(buf + 39, 'x', (size_t)bytes - 41);
			memcpy(buf + bytes - 2, "\"}", 2);
			sim_send_raw_all(s, buf, (size_t)bytes);
			free(buf);
		} else {
			return bad(c, 400, "kind must be malformed, oversize or raw (with data)");
		}
		return ok(c);
	}
	if (strcmp(kind, "transfer-event-order") == 0) {
		const char *mode = jp_str(c->body, "mode");
		int64_t delay = 0;
		(void)jp_int(c->body, "delay_ms", false, &delay);
		if (delay < 0 || delay > 60000) {
			return bad(c, 400, "delay_ms must be 0..60000");
		}
		if (mode && strcmp(mode, "before") == 0) {
			s->xfer_order = 1;
		} else if (mode && strcmp(mode, "after") == 0) {
			s->xfer_order = 2;
		} else if (mode && strcmp(mode, "normal") == 0) {
			s->xfer_order = 0;
		} else {
			return bad(c, 400, "mode must be before, after or normal");
		}
		s->xfer_delay_ms = delay;
		return ok(c);
	}
	if (strcmp(kind, "reservation-shape") == 0) {
		/* The shape of the reservation GET is unknown (spec reservation-worker §10.1):
		 * "event" (default; what the SDK's fetchLatestVersion needs) or "instance". */
		const char *get = jp_str(c->body, "get");
		if (!get || (strcmp(get, "event") != 0 && strcmp(get, "instance") != 0)) {
			return bad(c, 400, "get must be event or instance");
		}
		s->res_get_instance = strcmp(get, "instance") == 0;
		return ok(c);
	}
	if (strcmp(kind, "event-order") == 0) {
		bool rev;
		if (jp_bool(c->body, "reverse", false, &rev) < 0) {
			return bad(c, 400, "reverse must be a boolean");
		}
		c->w->reverse_order = rev;
		return ok(c);
	}
	return bad(c, 404, "unknown fault %s", kind);
}

static int dispatch(struct ctl *c, const char *method, const char *path) {
	char a[128], b[128];
	bool post = strcmp(method, "POST") == 0;

	if (strcmp(path, "/sim/state") == 0 && !post) {
		return get_state(c);
	}
	if (strcmp(path, "/sim/requests") == 0 && !post) {
		return get_requests(c);
	}
	if (!post) {
		return bad(c, 404, "unknown control path %s (or use POST)", path);
	}
	if (strcmp(path, "/sim/reset-requests") == 0) {
		sim_requests_clear(c->s);
		return ok(c);
	}
	if (strcmp(path, "/sim/tasks") == 0) {
		return post_task(c);
	}
	if (strcmp(path, "/sim/bulk-tasks") == 0) {
		return post_bulk(c);
	}
	if (strcmp(path, "/sim/tokens") == 0) {
		return post_token(c);
	}
	if (sscanf(path, "/sim/reservations/%127[^/]/%127s", a, b) == 2) {
		return res_action(c, a, b);
	}
	if (sscanf(path, "/sim/tasks/%127[^/]/%127s", a, b) == 2) {
		return task_action(c, a, b);
	}
	if (sscanf(path, "/sim/transfers/%127[^/]/%127s", a, b) == 2) {
		return xfer_action(c, a, b);
	}
	if (sscanf(path, "/sim/workers/%127[^/]/%127s", a, b) == 2) {
		return worker_action(c, a, b);
	}
	if (sscanf(path, "/sim/faults/%127s", a) == 1) {
		return fault(c, a);
	}
	return bad(c, 404, "unknown control path %s", path);
}

int sim_control_handle(struct sim *s, const char *method, const char *path, const char *body,
	struct sbuf *out) {
	struct ctl c = {.s = s, .w = s->world, .out = out};
	char errbuf[128];
	int st;

	if (body && body[0]) {
		c.body = jp_parse(body, errbuf, sizeof(errbuf));
		if (!c.body || !YAJL_IS_OBJECT(c.body)) {
			yajl_tree_free(c.body);
			return bad(&c, 400, "the body must be a JSON object");
		}
	}
	world_begin(s->world);
	st = dispatch(&c, method, path);
	{
		/* "silent": true makes the change without pushing its events, as if they were
		 * still in flight (version-conflict tests). */
		bool silent = false;
		(void)jp_bool(c.body, "silent", false, &silent);
		s->mute_events = silent;
		world_flush(s->world);
		s->mute_events = false;
	}
	sim_vlog(s, "control %s %s -> %d", method, path, st);
	yajl_tree_free(c.body);
	return st;
}
