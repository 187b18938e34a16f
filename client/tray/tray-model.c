/*
 * tray-model.c — taskrouter-tray's state and what it shows (see tray-model.h).
 */
#include "tray-model.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_str(char **dst, const char *src) {
	char *copy = src ? strdup(src) : NULL;

	if (src && !copy) {
		return; /* out of memory: keep the old text */
	}
	free(*dst);
	*dst = copy;
}

static bool str_eq(const char *a, const char *b) {
	return a && b && strcmp(a, b) == 0;
}

static bool status_final(const char *s) {
	return str_eq(s, "completed") || str_eq(s, "canceled");
}

void tr_tray_model_init(struct tr_tray_model *m) {
	*m = (struct tr_tray_model){.conn = TR_TRAY_CONN_DOWN, .since = -1};
}

static void entry_done(struct tr_tray_entry *e) {
	tr_task_free(e->task);
	tr_reservation_free(e->res);
	*e = (struct tr_tray_entry){0};
}

static void entries_clear(struct tr_tray_model *m) {
	for (size_t i = 0; i < m->n_entries; i++) {
		entry_done(&m->entries[i]);
	}
	free(m->entries);
	m->entries = NULL;
	m->n_entries = 0;
}

void tr_tray_model_done(struct tr_tray_model *m) {
	entries_clear(m);
	tr_worker_free(m->worker);
	tr_activity_list_free(m->activities, m->n_activities);
	free(m->conn_why);
	free(m->session);
	free(m->session_why);
	free(m->epoch);
	free(m->error);
	*m = (struct tr_tray_model){0};
}

void tr_tray_model_set_down(struct tr_tray_model *m, const char *why, bool not_running) {
	m->conn = TR_TRAY_CONN_DOWN;
	m->not_running = not_running;
	set_str(&m->conn_why, why);
}

void tr_tray_model_set_connecting(struct tr_tray_model *m) {
	m->conn = TR_TRAY_CONN_CONNECTING;
	set_str(&m->conn_why, NULL);
}

void tr_tray_model_set_up(struct tr_tray_model *m) {
	m->conn = TR_TRAY_CONN_UP;
}

void tr_tray_model_forget_tasks(struct tr_tray_model *m) {
	entries_clear(m);
}

/* ------------------------------------------------------------------ entries */

static ssize_t entry_index(const struct tr_tray_model *m, const char *task_sid) {
	for (size_t i = 0; task_sid && i < m->n_entries; i++) {
		if (str_eq(tr_task_sid(m->entries[i].task), task_sid)) {
			return (ssize_t)i;
		}
	}
	return -1;
}

const struct tr_tray_entry *tr_tray_model_entry(const struct tr_tray_model *m, const char *task_sid) {
	ssize_t i = entry_index(m, task_sid);

	return i < 0 ? NULL : &m->entries[i];
}

const struct tr_tray_entry *tr_tray_model_entry_by_res(
	const struct tr_tray_model *m, const char *res_sid) {
	for (size_t i = 0; res_sid && i < m->n_entries; i++) {
		if (m->entries[i].res && str_eq(tr_reservation_sid(m->entries[i].res), res_sid)) {
			return &m->entries[i];
		}
	}
	return NULL;
}

static void entry_remove(struct tr_tray_model *m, size_t i) {
	entry_done(&m->entries[i]);
	memmove(&m->entries[i], &m->entries[i + 1], (m->n_entries - i - 1) * sizeof(m->entries[0]));
	m->n_entries--;
}

/*
 * Insert or update the entry of task t (copied). res (copied, may be NULL) replaces the
 * entry's reservation when given. Returns false on ENOMEM (the model is unchanged).
 */
static bool entry_upsert(struct tr_tray_model *m, const struct tr_task *t,
	const struct tr_reservation *res) {
	struct tr_task *tc = tr_task_dup(t);
	struct tr_reservation *rc = res ? tr_reservation_dup(res) : NULL;
	ssize_t i = entry_index(m, tr_task_sid(t));

	if (!tc || (res && !rc)) {
		goto oom;
	}
	if (i < 0) {
		struct tr_tray_entry *grown =
			realloc(m->entries, (m->n_entries + 1) * sizeof(m->entries[0]));

		if (!grown) {
			goto oom;
		}
		m->entries = grown;
		i = (ssize_t)m->n_entries++;
		m->entries[i] = (struct tr_tray_entry){0};
	}
	tr_task_free(m->entries[i].task);
	m->entries[i].task = tc;
	if (rc) {
		tr_reservation_free(m->entries[i].res);
		m->entries[i].res = rc;
	}
	return true;
oom:
	tr_task_free(tc);
	tr_reservation_free(rc);
	return false;
}

/* How many of this worker's live reservations the task names (its "reservations" member);
 * -1 when it does not say. */
static int task_live_reservations(const struct tr_task *t) {
	char *json = t ? tr_task_get_json(t, "reservations") : NULL;
	struct tr_result *r = NULL;
	int n = -1;

	if (json && tr_result_parse(json, &r) == 0) {
		n = tr_result_length(r, NULL);
		n = n < 0 ? -1 : n;
	}
	tr_result_free(r);
	free(json);
	return n;
}

/* The task names none of this worker's live reservations: it is no longer this worker's. */
static bool task_has_no_live_reservation(const struct tr_task *t) {
	return task_live_reservations(t) == 0;
}

bool tr_tray_entry_pending(const struct tr_tray_entry *e) {
	return e && e->res && str_eq(tr_reservation_status(e->res), "pending");
}

int64_t tr_tray_entry_seconds_left(const struct tr_tray_entry *e, int64_t now) {
	int64_t created, timeout, left;

	if (!tr_tray_entry_pending(e)) {
		return -1;
	}
	timeout = tr_reservation_timeout(e->res);
	if (timeout < 0 || tr_reservation_get_int(e->res, "dateCreated", &created) != 0) {
		return -1;
	}
	left = created + timeout - now;
	return left < 0 ? 0 : left;
}

int64_t tr_tray_entry_age(const struct tr_tray_entry *e, int64_t now) {
	int64_t created;

	/* dateCreated is an integer (epoch seconds) in the daemon's Task */
	if (tr_task_get_int(e->task, "dateCreated", &created) == 0 && created > 0 && now >= created) {
		return now - created;
	}
	created = tr_task_age(e->task);
	return created > 0 ? created : 0;
}

/* ------------------------------------------------------------------ answers */

int tr_tray_model_set_reservations(
	struct tr_tray_model *m, const char *const *pages, size_t n_pages) {
	struct tr_tray_entry *entries = NULL;
	size_t kept = 0, cap = 0;
	int r = 0;

	for (size_t p = 0; p < n_pages && r == 0; p++) {
		struct tr_reservation **list = NULL;
		size_t n = 0;

		r = tr_reservation_list_parse(pages[p], &list, &n);
		for (size_t i = 0; r == 0 && i < n; i++) {
			const struct tr_task *t = tr_reservation_task(list[i]);
			bool dup = false;

			if (!t || !tr_task_sid(t)) {
				continue; /* a reservation without its task cannot be shown */
			}
			for (size_t j = 0; j < kept; j++) {
				dup = dup || str_eq(tr_task_sid(entries[j].task), tr_task_sid(t));
			}
			if (dup) {
				continue; /* one entry per task: the first reservation listed */
			}
			if (kept == cap) {
				size_t ncap = cap ? cap * 2 : 8;
				struct tr_tray_entry *grown = realloc(entries, ncap * sizeof(*grown));

				if (!grown) {
					r = -ENOMEM;
					break;
				}
				entries = grown;
				cap = ncap;
			}
			entries[kept] = (struct tr_tray_entry){.task = tr_task_dup(t), .res = list[i]};
			list[i] = NULL;
			if (!entries[kept].task) {
				entry_done(&entries[kept]);
				r = -ENOMEM;
				break;
			}
			kept++;
		}
		tr_reservation_list_free(list, n);
	}
	if (r < 0) {
		for (size_t j = 0; j < kept; j++) {
			entry_done(&entries[j]);
		}
		free(entries);
		return r;
	}
	entries_clear(m);
	m->entries = entries;
	m->n_entries = kept;
	return 0;
}

int tr_tray_model_update_reservation(struct tr_tray_model *m, const char *res_json) {
	struct tr_reservation *res = NULL;
	const struct tr_task *t;
	int r = tr_reservation_parse(res_json, &res);
	const char *status;

	if (r < 0) {
		return r;
	}
	t = tr_reservation_task(res);
	status = tr_reservation_status(res);
	if (!t || entry_index(m, tr_task_sid(t)) < 0) {
		r = 0; /* not one the model holds: events bring what is new */
	} else if (str_eq(status, "pending") || str_eq(status, "accepted") ||
		   str_eq(status, "wrapping")) {
		r = entry_upsert(m, t, res) ? 0 : -ENOMEM;
	} else {
		entry_remove(m, (size_t)entry_index(m, tr_task_sid(t)));
	}
	tr_reservation_free(res);
	return r;
}

int tr_tray_model_update_task(struct tr_tray_model *m, const char *task_json) {
	struct tr_task *t = NULL;
	ssize_t i;
	int r = tr_task_parse(task_json, &t);

	if (r < 0) {
		return r;
	}
	i = entry_index(m, tr_task_sid(t));
	if (i >= 0 && (status_final(tr_task_status(t)) || task_has_no_live_reservation(t))) {
		entry_remove(m, (size_t)i);
	} else if (i >= 0 && !entry_upsert(m, t, NULL)) {
		r = -ENOMEM;
	}
	tr_task_free(t);
	return r;
}

int tr_tray_model_set_worker(struct tr_tray_model *m, const char *worker_json) {
	struct tr_worker *w = NULL;
	int r = tr_worker_parse(worker_json, &w);

	if (r < 0) {
		return r;
	}
	tr_worker_free(m->worker);
	m->worker = w;
	return 0;
}

int tr_tray_model_set_activities(struct tr_tray_model *m, const char *list_json) {
	struct tr_activity **list = NULL;
	size_t n = 0;
	int r = tr_activity_list_parse(list_json, &list, &n);

	if (r < 0) {
		return r;
	}
	tr_activity_list_free(m->activities, m->n_activities);
	m->activities = list;
	m->n_activities = n;
	return 0;
}

int tr_tray_model_set_status(struct tr_tray_model *m, const char *status_json) {
	struct tr_result *st = NULL;
	const char *state;
	int r = tr_result_parse(status_json, &st);

	if (r < 0) {
		return r;
	}
	state = tr_result_get_string(st, "state");
	if (!state) {
		tr_result_free(st);
		return -EBADMSG;
	}
	set_str(&m->session, state);
	if (strcmp(state, "ready") == 0) {
		set_str(&m->session_why, NULL);
	} else {
		/* the bridge's own last error, when it says one */
		const char *why = tr_result_get_string(st, "upstream.lastError");

		set_str(&m->session_why, why && *why ? why : NULL);
	}
	tr_result_free(st);
	return 0;
}

int tr_tray_model_subscribed(struct tr_tray_model *m, const char *result_json, bool resumed) {
	struct tr_result *res = NULL;
	int64_t seq;
	int r = tr_result_parse(result_json, &res);

	if (r < 0) {
		return r;
	}
	if (tr_result_get_int(res, "seq", &seq) != 0) {
		tr_result_free(res);
		return -EBADMSG;
	}
	set_str(&m->epoch, tr_result_get_string(res, "epoch"));
	if (!resumed) {
		/* from now: the stream goes on after the last seq assigned. A resumed one replays
		 * from where the model stands, which the replayed events move on. */
		m->since = seq + 1;
	}
	tr_result_free(res);
	return 0;
}

/* ------------------------------------------------------------------ events */

static bool name_in(const char *name, const char *const *names) {
	for (; *names; names++) {
		if (strcmp(name, *names) == 0) {
			return true;
		}
	}
	return false;
}

/* The member key of the event's params, parsed by parse (NULL when absent or bad). */
static void *event_member(const struct tr_client_event *ev, const char *key,
	int (*parse)(const char *, void **)) {
	struct tr_result *p = NULL;
	char *json = NULL;
	void *obj = NULL;

	if (!ev->json || tr_result_parse(ev->json, &p) < 0) {
		return NULL;
	}
	json = tr_result_get_json(p, key);
	if (json && parse(json, &obj) < 0) {
		obj = NULL;
	}
	free(json);
	tr_result_free(p);
	return obj;
}

static int parse_reservation(const char *json, void **ret) {
	return tr_reservation_parse(json, (struct tr_reservation **)ret);
}

static int parse_worker(const char *json, void **ret) {
	return tr_worker_parse(json, (struct tr_worker **)ret);
}

static char *event_string(const struct tr_client_event *ev, const char *key) {
	struct tr_result *p = NULL;
	const char *s;
	char *copy = NULL;

	if (ev->json && tr_result_parse(ev->json, &p) == 0) {
		s = tr_result_get_string(p, key);
		copy = s ? strdup(s) : NULL;
		tr_result_free(p);
	}
	return copy;
}

static bool apply_reservation_event(struct tr_tray_model *m, const struct tr_client_event *ev) {
	static const char *const ended[] = {"reservationRejected", "reservationTimeout",
		"reservationCanceled", "reservationRescinded", "reservationCompleted", NULL};
	struct tr_reservation *res = event_member(ev, "reservation", parse_reservation);
	const char *res_sid = res ? tr_reservation_sid(res) : ev->reservation_sid;
	ssize_t i = entry_index(m, ev->task_sid);
	bool changed = false;

	if (name_in(ev->name, ended)) {
		bool mine = i >= 0 && (!m->entries[i].res ||
						str_eq(tr_reservation_sid(m->entries[i].res), res_sid));

		/* The task stays while it names another live reservation of this worker; without
		 * the task in the event, the entry goes when the reservation it shows ended. */
		int live = task_live_reservations(ev->task);

		if (i >= 0 && (live >= 0 ? live == 0 : mine)) {
			entry_remove(m, (size_t)i);
			changed = true;
		} else if (i >= 0 && ev->task) {
			changed = entry_upsert(m, ev->task, NULL);
			if (mine && m->entries[i].res) {
				m->entries[i].res = tr_reservation_free(m->entries[i].res);
			}
		}
	} else if (ev->task && !status_final(tr_task_status(ev->task))) {
		/* created, accepted, wrapup: the reservation is live */
		changed = entry_upsert(m, ev->task, res);
	}
	tr_reservation_free(res);
	return changed;
}

static bool apply_task_event(struct tr_tray_model *m, const struct tr_client_event *ev) {
	static const char *const gone[] = {"completed", "canceled", "vanished", NULL};
	ssize_t i = entry_index(m, ev->task_sid);

	if (name_in(ev->name, gone) || (ev->task && status_final(tr_task_status(ev->task)))) {
		if (i < 0) {
			return false;
		}
		entry_remove(m, (size_t)i);
		return true;
	}
	/* updated, wrapup, transfer…: the task after the change, for a task the model holds. The
	 * daemon also publishes these after this worker's reservations ended (once more while it
	 * keeps the task): they neither add a task nor keep one that names no live reservation. */
	if (i < 0 || !ev->task) {
		return false;
	}
	if (task_has_no_live_reservation(ev->task)) {
		entry_remove(m, (size_t)i);
		return true;
	}
	return entry_upsert(m, ev->task, NULL);
}

static bool apply_session_event(struct tr_tray_model *m, const struct tr_client_event *ev) {
	char *reason = NULL;

	if (strcmp(ev->name, "ready") == 0) {
		set_str(&m->session, "ready");
		set_str(&m->session_why, NULL);
	} else if (strcmp(ev->name, "connected") == 0) {
		set_str(&m->session, "initializing");
	} else if (strcmp(ev->name, "disconnected") == 0) {
		reason = event_string(ev, "reason");
		if (!str_eq(m->session, "token_expired")) {
			set_str(&m->session, "reconnecting");
		}
		set_str(&m->session_why, reason ? reason : "connection lost");
	} else if (strcmp(ev->name, "tokenExpired") == 0) {
		set_str(&m->session, "token_expired");
	} else if (strcmp(ev->name, "tokenUpdated") == 0) {
		if (str_eq(m->session, "token_expired")) {
			set_str(&m->session, "connecting");
		}
	} else {
		return false; /* tokenWillExpire: nothing to show */
	}
	free(reason);
	return true;
}

bool tr_tray_model_apply(struct tr_tray_model *m, const struct tr_client_event *ev) {
	static const char *const session[] = {"connected", "ready", "disconnected",
		"tokenWillExpire", "tokenUpdated", "tokenExpired", NULL};
	static const char *const worker[] = {"activityUpdated", "attributesUpdated", NULL};

	if (!ev || !ev->name) {
		return false;
	}
	if (ev->seq >= 0) {
		m->since = ev->seq + 1;
		if (ev->epoch) {
			set_str(&m->epoch, ev->epoch);
		}
	}
	if (strncmp(ev->name, "reservation", 11) == 0 && strcmp(ev->name, "reservationFailed") != 0) {
		return apply_reservation_event(m, ev);
	}
	if (name_in(ev->name, session)) {
		return apply_session_event(m, ev);
	}
	if (name_in(ev->name, worker)) {
		struct tr_worker *w = event_member(ev, "worker", parse_worker);

		if (!w) {
			return false;
		}
		tr_worker_free(m->worker);
		m->worker = w;
		return true;
	}
	if (ev->task_sid && strcmp(ev->name, "reservationFailed") != 0 &&
			strncmp(ev->name, "channel", 7) != 0) {
		return apply_task_event(m, ev);
	}
	return false; /* channels, reservationFailed: not shown */
}

/* ------------------------------------------------------------------ errors */

char *tr_tray_error_words(const struct tr_client_error *err) {
	const char *what = NULL;
	char *detail = NULL, *out = NULL;
	struct tr_result *data = NULL;

	if (!err) {
		return strdup("unknown error");
	}
	if (err->errnum != -EREMOTEIO) {
		switch (err->errnum) {
		case -ETIMEDOUT:
			what = "taskrouterd did not answer in time";
			break;
		case -ECANCELED:
		case -ECONNRESET:
		case -EPIPE:
			what = "the connection to taskrouterd was lost";
			break;
		default:
			what = err->message ? err->message : strerror(-err->errnum);
		}
		return strdup(what);
	}
	switch (err->code) {
	case TR_CLIENT_VERSION_CONFLICT:
		what = "it changed meanwhile (version conflict); look again and retry";
		break;
	case TR_CLIENT_NOT_FOUND:
		what = "taskrouterd no longer has it";
		break;
	case TR_CLIENT_NOT_CONNECTED:
		what = "taskrouterd is not connected to TaskRouter right now";
		break;
	case TR_CLIENT_TIMEOUT:
		what = "TaskRouter did not answer in time; it may or may not have been done";
		break;
	case TR_CLIENT_REFRESH_PENDING:
		what = "it was done, but taskrouterd could not read it back yet; the menu catches up "
		       "with the next event";
		break;
	case TR_CLIENT_RATE_LIMITED:
		what = "TaskRouter is rate limiting; try again in a moment";
		break;
	case TR_CLIENT_TOKEN_EXPIRED:
		what = "the worker token expired (taskrouterctl update-token)";
		break;
	case TR_CLIENT_NETWORK_ERROR:
		what = "TaskRouter could not be reached; it may not have been sent";
		break;
	case TR_CLIENT_UPSTREAM_ERROR: {
		int64_t http = 0;

		if (err->data && tr_result_parse(err->data, &data) == 0) {
			const char *msg = tr_result_get_string(data, "message");

			(void)tr_result_get_int(data, "httpStatus", &http);
			if (asprintf(&detail, "TaskRouter refused it (HTTP %lld%s%s)", (long long)http,
				    msg ? ": " : "", msg ? msg : "") < 0) {
				detail = NULL;
			}
		}
		what = "TaskRouter refused it";
		break;
	}
	default:
		if (asprintf(&detail, "%s (%s)", err->message ? err->message : "failed",
			    tr_client_code_str(err->code)) < 0) {
			detail = NULL;
		}
	}
	tr_result_free(data);
	if (detail) {
		return detail;
	}
	out = strdup(what ? what : "failed");
	return out;
}

enum tr_tray_outcome tr_tray_error_outcome(const struct tr_client_error *err) {
	if (err && err->errnum == -ETIMEDOUT) {
		return TR_TRAY_OUTCOME_UNKNOWN; /* the request was sent; its answer did not come */
	}
	if (!err || err->errnum != -EREMOTEIO) {
		return TR_TRAY_OUTCOME_FAILED;
	}
	switch (err->code) {
	case TR_CLIENT_REFRESH_PENDING:
		return TR_TRAY_OUTCOME_DONE;
	case TR_CLIENT_TIMEOUT:
	case TR_CLIENT_NETWORK_ERROR:
		return TR_TRAY_OUTCOME_UNKNOWN;
	default:
		return TR_TRAY_OUTCOME_FAILED;
	}
}

const char *tr_tray_outcome_text(enum tr_tray_outcome o) {
	switch (o) {
	case TR_TRAY_OUTCOME_DONE:
		return "done";
	case TR_TRAY_OUTCOME_UNKNOWN:
		return "outcome unknown";
	case TR_TRAY_OUTCOME_FAILED:
		break;
	}
	return "failed";
}

const char *tr_tray_model_set_error(struct tr_tray_model *m, const char *what,
	const struct tr_client_error *err, int64_t now) {
	char *words = tr_tray_error_words(err), *text = NULL;

	if (!words || asprintf(&text, "%s %s: %s", what,
			      tr_tray_outcome_text(tr_tray_error_outcome(err)), words) < 0) {
		text = NULL;
	}
	free(words);
	if (text) {
		free(m->error);
		m->error = text;
		m->error_until = now + TR_TRAY_ERROR_SECONDS;
	}
	return m->error;
}

/* ------------------------------------------------------------------ what to show */

static const char *activity_name(const struct tr_tray_model *m) {
	const char *name = m->worker ? tr_worker_activity_name(m->worker) : NULL;
	const char *sid = m->worker ? tr_worker_activity_sid(m->worker) : NULL;

	for (size_t i = 0; !name && sid && i < m->n_activities; i++) {
		if (str_eq(tr_activity_sid(m->activities[i]), sid)) {
			name = tr_activity_name(m->activities[i]);
		}
	}
	return name ? name : "unknown activity";
}

static size_t pending_count(const struct tr_tray_model *m) {
	size_t n = 0;

	for (size_t i = 0; i < m->n_entries; i++) {
		n += tr_tray_entry_pending(&m->entries[i]);
	}
	return n;
}

void tr_tray_model_summary(const struct tr_tray_model *m, struct tr_tray_summary *out) {
	size_t waiting = pending_count(m);
	bool available = m->worker && tr_worker_available(m->worker);

	*out = (struct tr_tray_summary){0};
	if (m->conn != TR_TRAY_CONN_UP) {
		out->icon = "network-offline";
		snprintf(out->label, sizeof(out->label), "%s",
			m->conn == TR_TRAY_CONN_DOWN ? "daemon down" : "connecting");
		snprintf(out->title, sizeof(out->title), "TaskRouter: %s",
			m->conn == TR_TRAY_CONN_DOWN ? "taskrouterd is not running" : "connecting");
		return;
	}
	if (str_eq(m->session, "token_expired")) {
		out->icon = "dialog-warning";
		snprintf(out->label, sizeof(out->label), "token expired");
		snprintf(out->title, sizeof(out->title), "TaskRouter: the worker token expired");
		return;
	}
	if (!str_eq(m->session, "ready")) {
		out->icon = "network-error";
		snprintf(out->label, sizeof(out->label), "offline · %zu task%s", m->n_entries,
			m->n_entries == 1 ? "" : "s");
		snprintf(out->title, sizeof(out->title), "TaskRouter unreachable%s%s%s",
			m->session_why ? " (" : "", m->session_why ? m->session_why : "",
			m->session_why ? ")" : "");
		return;
	}
	out->attention = waiting > 0;
	out->icon = waiting ? "call-start" : available ? "user-available" : "user-away";
	if (waiting) {
		snprintf(out->label, sizeof(out->label), "%s · %zu task%s · %zu waiting",
			activity_name(m), m->n_entries, m->n_entries == 1 ? "" : "s", waiting);
	} else {
		snprintf(out->label, sizeof(out->label), "%s · %zu task%s", activity_name(m),
			m->n_entries, m->n_entries == 1 ? "" : "s");
	}
	snprintf(out->title, sizeof(out->title), "TaskRouter: %s%s%s", m->worker && tr_worker_name(m->worker) ? tr_worker_name(m->worker) : "worker",
		": ", out->label);
}

struct builder {
	struct tr_tray_menu *menu;
	size_t cap;
	bool oom;
};

static struct tr_tray_item *add(struct builder *b, enum tr_tray_item_kind kind,
	enum tr_tray_action action, const char *arg, bool sensitive, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static struct tr_tray_item *add(struct builder *b, enum tr_tray_item_kind kind,
	enum tr_tray_action action, const char *arg, bool sensitive, const char *fmt, ...) {
	struct tr_tray_item *it;
	va_list ap;

	if (b->oom) {
		return NULL;
	}
	if (b->menu->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct tr_tray_item *grown = realloc(b->menu->items, cap * sizeof(*grown));

		if (!grown) {
			b->oom = true;
			return NULL;
		}
		b->menu->items = grown;
		b->cap = cap;
	}
	it = &b->menu->items[b->menu->n];
	*it = (struct tr_tray_item){.kind = kind, .action = action, .sensitive = sensitive};
	if (fmt) {
		va_start(ap, fmt);
		if (vasprintf(&it->label, fmt, ap) < 0) {
			it->label = NULL;
			b->oom = true;
		}
		va_end(ap);
	}
	if (arg && !(it->arg = strdup(arg))) {
		b->oom = true;
	}
	if (b->oom) {
		free(it->label);
		free(it->arg);
		return NULL;
	}
	b->menu->n++;
	return it;
}

static void separator(struct builder *b) {
	if (b->menu->n > 0 && b->menu->items[b->menu->n - 1].kind != TR_TRAY_ITEM_SEPARATOR) {
		add(b, TR_TRAY_ITEM_SEPARATOR, TR_TRAY_ACT_NONE, NULL, false, NULL);
	}
}

static void status_line(const struct tr_tray_model *m, struct builder *b) {
	const char *who = m->worker && tr_worker_name(m->worker) ? tr_worker_name(m->worker) : "worker";

	switch (m->conn) {
	case TR_TRAY_CONN_DOWN:
		add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_NONE, NULL, false,
			m->not_running || !m->conn_why ? "taskrouterd is not running (%s); retrying"
						       : "No connection to taskrouterd (%s); retrying",
			m->conn_why ? m->conn_why : "not connected");
		return;
	case TR_TRAY_CONN_CONNECTING:
		add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_NONE, NULL, false, "Connecting to taskrouterd…");
		return;
	case TR_TRAY_CONN_UP:
		break;
	}
	if (str_eq(m->session, "token_expired")) {
		add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_NONE, NULL, false,
			"Token expired: renew it with taskrouterctl update-token");
	} else if (str_eq(m->session, "ready")) {
		add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_NONE, NULL, false, "%s: %s", who,
			activity_name(m));
	} else if (str_eq(m->session, "stopped")) {
		add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_NONE, NULL, false,
			"TaskRouter session stopped (%s)", m->session_why ? m->session_why : "by taskrouterd");
	} else {
		add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_NONE, NULL, false,
			"TaskRouter unreachable (%s); reconnecting",
			m->session_why ? m->session_why : "connecting");
	}
}

static const char *or_dash(const char *s) {
	return s && *s ? s : "?";
}

void tr_tray_age_text(int64_t secs, char *buf, size_t size) {
	if (secs < 60) {
		snprintf(buf, size, "<1 min");
	} else if (secs < 3600) {
		snprintf(buf, size, "%lld min", (long long)(secs / 60));
	} else {
		snprintf(buf, size, "%lld h %02lld min", (long long)(secs / 3600),
			(long long)(secs / 60 % 60));
	}
}

/* Whether actions can go upstream now (else they would fail at once: not connected, token
 * expired). */
static bool can_act(const struct tr_tray_model *m) {
	return m->conn == TR_TRAY_CONN_UP && str_eq(m->session, "ready");
}

static void task_items(const struct tr_tray_model *m, int64_t now, struct builder *b) {
	size_t pending = 0;
	bool act = can_act(m);

	/* the waiting reservations first, one click from the top */
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct tr_tray_entry *e = &m->entries[i];
		const char *ch = or_dash(tr_task_channel(e->task)), *q = or_dash(tr_task_queue_name(e->task));

		if (!tr_tray_entry_pending(e)) {
			continue;
		}
		add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_ACCEPT, tr_reservation_sid(e->res), act,
			"Accept %s task from %s", ch, q);
		add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_REJECT, tr_reservation_sid(e->res), act,
			"Reject %s task from %s", ch, q);
		pending++;
	}
	if (pending) {
		separator(b);
	}
	if (m->n_entries == 0) {
		add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_NONE, NULL, false, "No tasks");
		return;
	}
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct tr_tray_entry *e = &m->entries[i];
		const char *sid = tr_task_sid(e->task), *status = or_dash(tr_task_status(e->task));
		char age[32];

		tr_tray_age_text(tr_tray_entry_age(e, now), age, sizeof(age));
		add(b, TR_TRAY_ITEM_SUBMENU, TR_TRAY_ACT_NONE, sid, true, "%s · %s · %s · %s",
			or_dash(tr_task_channel(e->task)), or_dash(tr_task_queue_name(e->task)), status,
			age);
		if (tr_tray_entry_pending(e)) {
			add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_ACCEPT, tr_reservation_sid(e->res), act,
				"Accept");
			add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_REJECT, tr_reservation_sid(e->res), act,
				"Reject");
		} else if (strcmp(status, "assigned") == 0) {
			add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_WRAP_UP, sid, act, "Wrap up");
			add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_COMPLETE, sid, act, "Complete");
		} else if (strcmp(status, "wrapping") == 0) {
			add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_COMPLETE, sid, act, "Complete");
		}
		add(b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_ATTRIBUTES, sid, true, "Attributes…");
		add(b, TR_TRAY_ITEM_END, TR_TRAY_ACT_NONE, NULL, false, NULL);
	}
}

static void activity_items(const struct tr_tray_model *m, struct builder *b) {
	bool up = can_act(m), known = m->conn == TR_TRAY_CONN_UP;
	const char *current = known && m->worker ? tr_worker_activity_sid(m->worker) : NULL;

	add(b, TR_TRAY_ITEM_SUBMENU, TR_TRAY_ACT_NONE, NULL, up && m->n_activities > 0,
		"Activity: %s", known ? activity_name(m) : "unknown");
	for (size_t i = 0; i < m->n_activities; i++) {
		const char *sid = tr_activity_sid(m->activities[i]);
		struct tr_tray_item *it = add(b, TR_TRAY_ITEM_RADIO, TR_TRAY_ACT_ACTIVITY, sid, up, "%s",
			or_dash(tr_activity_name(m->activities[i])));

		if (it && known) {
			/* while the daemon is away nothing is marked: the activity is not known */
			it->checked = current ? str_eq(sid, current)
					      : tr_activity_is_current(m->activities[i]);
		}
	}
	add(b, TR_TRAY_ITEM_END, TR_TRAY_ACT_NONE, NULL, false, NULL);
}

int tr_tray_model_menu(const struct tr_tray_model *m, int64_t now, struct tr_tray_menu *out) {
	struct builder b = {.menu = out};

	*out = (struct tr_tray_menu){0};
	status_line(m, &b);
	if (m->error && now < m->error_until) {
		add(&b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_NONE, NULL, false, "Error: %s", m->error);
	}
	separator(&b);
	if (m->conn == TR_TRAY_CONN_UP) {
		task_items(m, now, &b);
		separator(&b);
	}
	activity_items(m, &b);
	separator(&b);
	add(&b, TR_TRAY_ITEM_LABEL, TR_TRAY_ACT_QUIT, NULL, true, "Quit");
	if (b.oom) {
		tr_tray_menu_done(out);
		return -ENOMEM;
	}
	return 0;
}

void tr_tray_menu_done(struct tr_tray_menu *menu) {
	for (size_t i = 0; i < menu->n; i++) {
		free(menu->items[i].label);
		free(menu->items[i].arg);
	}
	free(menu->items);
	*menu = (struct tr_tray_menu){0};
}

const char *tr_tray_action_name(enum tr_tray_action a) {
	switch (a) {
	case TR_TRAY_ACT_NONE:
		return "none";
	case TR_TRAY_ACT_ACCEPT:
		return "accept";
	case TR_TRAY_ACT_REJECT:
		return "reject";
	case TR_TRAY_ACT_WRAP_UP:
		return "wrap up";
	case TR_TRAY_ACT_COMPLETE:
		return "complete";
	case TR_TRAY_ACT_ATTRIBUTES:
		return "attributes";
	case TR_TRAY_ACT_ACTIVITY:
		return "set activity";
	case TR_TRAY_ACT_QUIT:
		return "quit";
	}
	return "?";
}

char *tr_tray_menu_to_text(const struct tr_tray_menu *menu) {
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	int depth = 0;

	if (!f) {
		return NULL;
	}
	for (size_t i = 0; i < menu->n; i++) {
		const struct tr_tray_item *it = &menu->items[i];

		if (it->kind == TR_TRAY_ITEM_END) {
			depth--;
			continue;
		}
		fprintf(f, "%*s", depth * 2, "");
		if (it->kind == TR_TRAY_ITEM_SEPARATOR) {
			fputs("---\n", f);
			continue;
		}
		if (it->kind == TR_TRAY_ITEM_RADIO) {
			fputs(it->checked ? "(*) " : "( ) ", f);
		}
		fprintf(f, it->sensitive ? "%s" : "[%s]", it->label ? it->label : "");
		if (it->kind == TR_TRAY_ITEM_SUBMENU) {
			fputs(" >", f);
			depth++;
		}
		if (it->action != TR_TRAY_ACT_NONE) {
			fprintf(f, " -> %s%s%s", tr_tray_action_name(it->action), it->arg ? " " : "",
				it->arg ? it->arg : "");
		}
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *tr_tray_json_pretty(const char *json) {
	char *buf = NULL;
	size_t size = 0;
	FILE *f;
	int depth = 0;
	bool in_str = false, esc = false;

	if (!json || !(f = open_memstream(&buf, &size))) {
		return NULL;
	}
	for (const char *p = json; *p; p++) {
		char ch = *p;

		if (in_str) {
			fputc(ch, f);
			if (esc) {
				esc = false;
			} else if (ch == '\\') {
				esc = true;
			} else if (ch == '"') {
				in_str = false;
			}
			continue;
		}
		switch (ch) {
		case '"':
			in_str = true;
			fputc(ch, f);
			break;
		case '{':
		case '[':
			/* an empty object or array stays on one line */
			if (p[1] == (ch == '{' ? '}' : ']')) {
				fputc(ch, f);
				fputc(*++p, f);
				break;
			}
			depth++;
			fprintf(f, "%c\n%*s", ch, depth * 2, "");
			break;
		case '}':
		case ']':
			depth--;
			fprintf(f, "\n%*s%c", depth * 2, "", ch);
			break;
		case ',':
			fprintf(f, ",\n%*s", depth * 2, "");
			break;
		case ':':
			fputs(": ", f);
			break;
		case ' ':
		case '\t':
		case '\n':
		case '\r':
			break;
		default:
			fputc(ch, f);
		}
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
