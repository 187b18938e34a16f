/*
 * rest.c — the Event Bridge REST proxy of taskrouter-sim: POST /v1/wschannels with
 * {url, method, params, token} and the apiVersion / If-Match / clientVersion headers
 * (spec §3, §4). Every call is logged for /sim/requests (token redacted).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwt.h"
#include "sim.h"

#define MAX_SEGS 8
#define PAGE_SIZE_DEFAULT 50
#define PAGE_SIZE_MAX 1000

struct call {
	struct sim *s;
	struct sim_world *w;
	const char *url, *method;
	yajl_val params;
	const char *if_match;
	struct sim_grant grant;
	struct sim_worker *me;
	struct sbuf *out;
	bool *is_xfer;
};

void sim_error_body(struct sbuf *out, int status, int code, const char *message) {
	struct jw j;

	sb_reset(out);
	jw_init(&j, out);
	jw_obj(&j);
	jw_kint(&j, "status", status);
	jw_kint(&j, "code", code);
	jw_kstr(&j, "message", message);
	jw_key(&j, "more_info");
	sb_printf(out, "\"https://www.twilio.com/docs/errors/%d\"", code);
	jw_obj_end(&j);
}

static int fail(struct call *c, int status, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct call *c, int status, int code, const char *fmt, ...) {
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sim_error_body(c->out, status, code, msg);
	return status;
}

static int fail_err(struct call *c, const struct sim_err *e) {
	sim_error_body(c->out, e->status, e->code, e->message);
	return e->status;
}

static int not_found(struct call *c) {
	return fail(c, 404, 20404, "The requested resource /%s was not found", c->url);
}

/* ---- parameters ---- */

static bool param_present(struct call *c, const char *k) {
	yajl_val v = jp_get(c->params, k);
	return v && !YAJL_IS_NULL(v);
}

/* Attributes as an object, or (leniently) a JSON string holding an object. Returns 0 and a
 * compact JSON text (caller frees) or NULL when absent; -EINVAL when malformed. */
static int param_attributes(struct call *c, const char *k, char **ret) {
	return jp_attributes(jp_get(c->params, k), true, ret);
}

/* VirtualStartTime: "YYYY-MM-DDTHH:MM:SSZ" (or with fractional seconds) or epoch seconds. */
static int param_time(struct call *c, const char *k, int64_t *ret) {
	yajl_val v = jp_get(c->params, k);
	struct tm tm;
	const char *end;

	if (!v || YAJL_IS_NULL(v)) {
		return -ENOENT;
	}
	if (YAJL_IS_INTEGER(v)) {
		*ret = v->u.number.i;
		return 0;
	}
	if (!YAJL_IS_STRING(v)) {
		return -EINVAL;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(v->u.string, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end) {
		return -EINVAL;
	}
	if (*end == '.') {
		end++;
		while (*end >= '0' && *end <= '9') {
			end++;
		}
	}
	if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0) {
		return -EINVAL;
	}
	*ret = (int64_t)timegm(&tm);
	return 0;
}

static int param_int(struct call *c, const char *k, int64_t *ret) {
	return jp_int(c->params, k, true, ret);
}

/*
 * The parameters a route takes, each with its JSON type. On the routes of the Worker side
 * (reservation updates and instructions, WorkerParticipant, the worker POST, createTask)
 * the simulator refuses, with a 400 naming it, a parameter it does not know (such as the
 * "undefined" key the SDK sends for an unknown option, spec reservation-worker §9.6) or a
 * value of the wrong JSON type. Whether TaskRouter ignores unknown parameters is not known;
 * refusing them makes a misspelt or misplaced parameter fail the end-to-end tests instead
 * of passing unnoticed.
 */
enum ptype {
	P_STR = 1,
	P_BOOL = 2,
	P_INT = 4,
	P_ATTRS = 8, /* an object, an array, or a JSON string holding one */
};

struct pspec {
	const char *name;
	unsigned types;
};

static const struct pspec *pspec_find(const struct pspec *specs, const char *name) {
	for (; specs && specs->name; specs++) {
		if (strcmp(specs->name, name) == 0) {
			return specs;
		}
	}
	return NULL;
}

static bool ptype_ok(unsigned types, yajl_val v) {
	return ((types & P_STR) && YAJL_IS_STRING(v)) ||
		((types & P_BOOL) && (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))) ||
		((types & P_INT) && YAJL_IS_INTEGER(v)) ||
		((types & P_ATTRS) && (YAJL_IS_OBJECT(v) || YAJL_IS_ARRAY(v) || YAJL_IS_STRING(v)));
}

static const char *ptype_name(unsigned types) {
	switch (types) {
	case P_STR:
		return "a string";
	case P_BOOL:
		return "a boolean";
	case P_INT:
		return "an integer";
	case P_BOOL | P_STR:
		return "a boolean or a string";
	case P_INT | P_STR:
		return "an integer or a string";
	default:
		return "a JSON object";
	}
}

/* Every member of params must be in one of the (NULL-terminated) lists, with its type.
 * Returns 0, or the 400 status with the error written. */
static int check_params(struct call *c, const struct pspec *a, const struct pspec *b) {
	yajl_val p = c->params;

	if (!p || !YAJL_IS_OBJECT(p)) {
		return 0;
	}
	for (size_t i = 0; i < p->u.object.len; i++) {
		const char *k = p->u.object.keys[i];
		yajl_val v = p->u.object.values[i];
		const struct pspec *sp = pspec_find(a, k);
		if (!sp) {
			sp = pspec_find(b, k);
		}
		if (!sp) {
			return fail(c, 400, 20001, "Unknown parameter %s", k);
		}
		if (!ptype_ok(sp->types, v)) {
			return fail(c, 400, 20001, "Parameter %s must be %s", k,
				ptype_name(sp->types));
		}
	}
	return 0;
}

/* A boolean parameter as -1 (absent), 0 or 1; check_params has checked its type. */
static int param_tristate(struct call *c, const char *k) {
	yajl_val v = jp_get(c->params, k);

	return !v ? -1 : YAJL_IS_TRUE(v) ? 1 : 0;
}

/* If-Match: bare or quoted decimal. true when absent or equal. */
static bool if_match_ok(struct call *c, int64_t version) {
	char buf[64], *p = buf, *end;
	size_t n;
	long long v;

	if (!c->if_match || !c->if_match[0]) {
		return true;
	}
	snprintf(buf, sizeof(buf), "%s", c->if_match);
	if (strncmp(p, "W/", 2) == 0) {
		p += 2;
	}
	n = strlen(p);
	if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
		p[n - 1] = '\0';
		p++;
	}
	v = strtoll(p, &end, 10);
	return end != p && *end == '\0' && v == version;
}

static int precondition(struct call *c, const char *what, const char *sid, int64_t version) {
	return fail(c, 412, 20412,
		"The If-Match header (%s) does not match the current version (%lld) of the %s %s",
		c->if_match, (long long)version, what, sid);
}

/* ---- responses ---- */

static struct jw *payload_begin(struct call *c, struct jw *j) {
	sb_reset(c->out);
	jw_init(j, c->out);
	jw_obj(j);
	jw_key(j, "payload");
	return j;
}

static int payload_end(struct call *c, struct jw *j) {
	(void)c;
	jw_obj_end(j);
	return 200;
}

/* A 200 reply whose payload is what `render` writes into j. */
#define REPLY_WITH(render)                                                                         \
	do {                                                                                       \
		struct jw j;                                                                       \
		render;                                                                            \
		return payload_end(c, &j);                                                         \
	} while (0)

static int reply_task(struct call *c, struct sim_task *t) {
	REPLY_WITH(render_task(c->w, payload_begin(c, &j), t));
}

/* A reservation write answers the public instance shape (spec reservation-worker §3.3);
 * the GET answers the event shape unless /sim/faults/reservation-shape says otherwise. */
static int reply_res(struct call *c, struct sim_reservation *r, enum sim_res_shape shape) {
	REPLY_WITH(render_res(c->w, payload_begin(c, &j), r, shape));
}

static int reply_worker(struct call *c, struct sim_worker *k) {
	REPLY_WITH(render_worker(c->w, payload_begin(c, &j), k));
}

static int reply_xfer(struct call *c, struct sim_transfer *x) {
	REPLY_WITH(render_xfer(c->w, payload_begin(c, &j), x, true));
}

/* Paging: PageSize (1..1000, default 50) and AfterSid. */
struct pager {
	int64_t size;
	const char *after;
	int64_t after_seq; /* items with seq <= this are skipped */
	size_t emitted;
	const char *last;
	bool more;
};

static int pager_init(struct call *c, struct pager *pg) {
	int64_t n;
	int r = param_int(c, "PageSize", &n);

	memset(pg, 0, sizeof(*pg));
	pg->size = PAGE_SIZE_DEFAULT;
	if (r == 0) {
		if (n < 1 || n > PAGE_SIZE_MAX) {
			return fail(c, 400, 20001, "PageSize must be between 1 and %d",
				PAGE_SIZE_MAX);
		}
		pg->size = n;
	} else if (r == -EINVAL) {
		return fail(c, 400, 20001, "PageSize must be an integer");
	}
	pg->after = jp_str(c->params, "AfterSid");
	pg->after_seq = -1;
	return 0;
}

static void page_begin(struct call *c, struct jw *j) {
	payload_begin(c, j);
	jw_obj(j);
	jw_key(j, "contents");
	jw_arr(j);
}

/* Returns true if the item (with this sid) should be written now. */
static bool page_take(struct pager *pg, const char *sid) {
	if (pg->emitted >= (size_t)pg->size) {
		pg->more = true;
		return false;
	}
	pg->emitted++;
	pg->last = sid;
	return true;
}

static int page_end(struct call *c, struct jw *j, struct pager *pg) {
	jw_arr_end(j);
	jw_kstr(j, "after_sid", pg->more ? pg->last : NULL);
	jw_knull(j, "before_sid");
	jw_key(j, "meta");
	jw_obj(j);
	jw_kstr(j, "list_key", "contents");
	jw_knull(j, "next_token");
	jw_kint(j, "page_size", pg->size);
	jw_obj_end(j);
	jw_kint(j, "page", 0);
	jw_kint(j, "total", (int64_t)pg->emitted);
	jw_obj_end(j);
	return payload_end(c, j);
}

/* ---- routes ---- */

static int get_activities(struct call *c) {
	struct pager pg;
	struct jw j;
	int i, r, start = 0;

	if ((r = pager_init(c, &pg))) {
		return r;
	}
	if (pg.after) {
		start = world_activity(c->w, pg.after);
		if (start < 0 || strncmp(pg.after, "WA", 2) != 0) {
			return fail(c, 400, 20001, "AfterSid %s is not an activity", pg.after);
		}
		start++;
	}
	page_begin(c, &j);
	for (i = start; i < 2; i++) {
		if (page_take(&pg, c->w->activities[i].sid)) {
			render_activity(c->w, &j, &c->w->activities[i]);
		}
	}
	return page_end(c, &j, &pg);
}

static int get_wchannels(struct call *c) {
	struct pager pg;
	struct jw j;
	int i, r, start = 0;

	if ((r = pager_init(c, &pg))) {
		return r;
	}
	if (pg.after) {
		for (start = 0; start < SIM_N_CHANNELS; start++) {
			if (strcmp(c->me->ch[start].sid, pg.after) == 0) {
				break;
			}
		}
		if (start == SIM_N_CHANNELS) {
			return fail(c, 400, 20001, "AfterSid %s is not a worker channel", pg.after);
		}
		start++;
	}
	page_begin(c, &j);
	for (i = start; i < SIM_N_CHANNELS; i++) {
		if (page_take(&pg, c->me->ch[i].sid)) {
			render_wchannel(c->w, &j, c->me, i);
		}
	}
	return page_end(c, &j, &pg);
}

static int get_reservations(struct call *c) {
	struct pager pg;
	struct jw j;
	bool active = false;
	size_t i;
	int r;

	if ((r = pager_init(c, &pg))) {
		return r;
	}
	if (jp_bool(c->params, "Active", true, &active) == -EINVAL) {
		return fail(c, 400, 20001, "Active must be true or false");
	}
	if (pg.after) {
		struct sim_reservation *a = world_res(c->w, pg.after);
		if (!a) {
			return fail(c, 400, 20001, "AfterSid %s is not a reservation", pg.after);
		}
		pg.after_seq = a->seq;
	}
	page_begin(c, &j);
	for (i = 0; i < c->w->n_res; i++) {
		struct sim_reservation *res = c->w->res[i];
		if (res->worker != c->me || res->seq <= pg.after_seq || (active && !res_live(res))) {
			continue;
		}
		if (!page_take(&pg, res->sid)) {
			break;
		}
		render_res(c->w, &j, res, RES_EVENT);
	}
	return page_end(c, &j, &pg);
}

static int get_tasks(struct call *c) {
	struct pager pg;
	struct jw j;
	size_t i;
	int r;

	if ((r = pager_init(c, &pg))) {
		return r;
	}
	if (pg.after) {
		struct sim_task *a = world_task(c->w, pg.after);
		if (!a) {
			return fail(c, 400, 20001, "AfterSid %s is not a task", pg.after);
		}
		pg.after_seq = a->seq;
	}
	page_begin(c, &j);
	for (i = 0; i < c->w->n_tasks; i++) {
		struct sim_task *t = c->w->tasks[i];
		if (t->seq <= pg.after_seq || t->deleted) {
			continue;
		}
		if (!page_take(&pg, t->sid)) {
			break;
		}
		render_task(c->w, &j, t);
	}
	return page_end(c, &j, &pg);
}

static int get_workers(struct call *c) {
	struct pager pg;
	struct jw j;
	int i, r, start = 0;

	if ((r = pager_init(c, &pg))) {
		return r;
	}
	if (pg.after) {
		struct sim_worker *a = world_worker(c->w, pg.after);
		if (!a) {
			return fail(c, 400, 20001, "AfterSid %s is not a worker", pg.after);
		}
		start = a->idx + 1;
	}
	page_begin(c, &j);
	for (i = start; i < c->w->n_workers; i++) {
		if (page_take(&pg, c->w->workers[i]->sid)) {
			render_worker(c->w, &j, c->w->workers[i]);
		}
	}
	return page_end(c, &j, &pg);
}

static void render_queue(struct sim_world *w, struct jw *j) {
	jw_obj(j);
	jw_kstr(j, "account_sid", w->account_sid);
	jw_kstr(j, "workspace_sid", w->workspace_sid);
	jw_kstr(j, "sid", w->queue.sid);
	jw_kstr(j, "friendly_name", w->queue.name);
	jw_kstr(j, "target_workers", "1==1");
	jw_kint(j, "max_reserved_workers", 1);
	jw_kstr(j, "task_order", "FIFO");
	jw_kint(j, "date_created", w->created);
	jw_kint(j, "date_updated", w->created);
	jw_obj_end(j);
}

static int get_queues(struct call *c, const char *sid) {
	struct pager pg;
	struct jw j;
	int r;

	if (sid) {
		if (strcmp(sid, c->w->queue.sid) != 0) {
			return not_found(c);
		}
		render_queue(c->w, payload_begin(c, &j));
		return payload_end(c, &j);
	}
	if ((r = pager_init(c, &pg))) {
		return r;
	}
	page_begin(c, &j);
	if (!pg.after && page_take(&pg, c->w->queue.sid)) {
		render_queue(c->w, &j);
	}
	return page_end(c, &j, &pg);
}

static const struct pspec worker_params[] = {
	{"Attributes", P_ATTRS},
	{"ActivitySid", P_STR},
	{"RejectPendingReservations", P_BOOL},
	{NULL, 0},
};

/* Worker.setAttributes, Activity.setAsCurrent and the connect activity (spec
 * reservation-worker §4.3, §5.2): one change, one version. */
static int post_worker(struct call *c, struct sim_worker *k) {
	const char *act = jp_str(c->params, "ActivitySid");
	int reject = param_tristate(c, "RejectPendingReservations");
	char *attrs = NULL;
	struct sim_err err;
	int a = -1, rc;

	if (!if_match_ok(c, k->version)) {
		return precondition(c, "Worker", k->sid, k->version);
	}
	if ((rc = check_params(c, worker_params, NULL))) {
		return rc;
	}
	if (act) {
		a = world_activity(c->w, act);
		if (a < 0 || strncmp(act, "WA", 2) != 0) {
			return fail(c, 400, 20001, "ActivitySid %s is not an activity of workspace %s",
				act, c->w->workspace_sid);
		}
	}
	if (reject >= 0 && a < 0) {
		return fail(c, 400, 20001, "RejectPendingReservations needs an ActivitySid");
	}
	if (reject == 1 && c->w->activities[a].available) {
		return fail(c, 400, 20001, "RejectPendingReservations is only allowed "
					   "when moving to an unavailable activity");
	}
	if (param_attributes(c, "Attributes", &attrs) < 0) {
		return fail(c, 400, 20001, "Attributes must be a JSON object");
	}
	if (!attrs && a < 0) {
		return fail(c, 400, 20001, "Nothing to update (Attributes, ActivitySid)");
	}
	rc = world_worker_update(c->w, k, attrs, a, reject == 1, &err);
	free(attrs);
	return rc < 0 ? fail_err(c, &err) : reply_worker(c, k);
}

static const struct pspec status_params[] = {
	{"ReservationStatus", P_STR},
	{NULL, 0},
};

static const struct pspec reject_params[] = {
	{"ReservationStatus", P_STR},
	{"WorkerActivitySid", P_STR},
	{NULL, 0},
};

/* The instructions' parameters, as the SDK names them (spec reservation-worker §3.2). */
static const struct pspec call_params[] = {
	{"Instruction", P_STR},
	{"CallFrom", P_STR},
	{"CallUrl", P_STR},
	{"CallAccept", P_BOOL},
	{"CallRecord", P_STR},
	{"CallStatusCallbackUrl", P_STR},
	{"CallTimeout", P_INT},
	{"CallTo", P_STR},
	{NULL, 0},
};

static const struct pspec dequeue_params[] = {
	{"Instruction", P_STR},
	{"DequeueFrom", P_STR},
	{"DequeueTo", P_STR},
	{"DequeuePostWorkActivitySid", P_STR},
	{"DequeueRecord", P_STR},
	{"DequeueTimeout", P_INT},
	{"DequeueStatusCallbackUrl", P_STR},
	{"DequeueStatusCallbackEvents", P_STR},
	{NULL, 0},
};

static const struct pspec redirect_params[] = {
	{"Instruction", P_STR},
	{"RedirectCallSid", P_STR},
	{"RedirectUrl", P_STR},
	{"RedirectAccept", P_BOOL},
	{NULL, 0},
};

static const struct pspec conference_params[] = {
	{"Instruction", P_STR},
	{"To", P_STR},
	{"From", P_STR},
	{"StatusCallback", P_STR},
	{"StatusCallbackMethod", P_STR},
	{"StatusCallbackEvent", P_STR},
	{"Record", P_STR},
	{"WaitUrl", P_STR},
	{"WaitMethod", P_STR},
	{"ConferenceStatusCallback", P_STR},
	{"ConferenceStatusCallbackMethod", P_STR},
	{"ConferenceStatusCallbackEvent", P_STR},
	{"ConferenceTrim", P_STR},
	{"RecordingChannels", P_STR},
	{"RecordingStatusCallback", P_STR},
	{"RecordingStatusCallbackMethod", P_STR},
	{"ConferenceRecordingStatusCallback", P_STR},
	{"ConferenceRecordingStatusCallbackMethod", P_STR},
	{"Region", P_STR},
	{"SipAuthUsername", P_STR},
	{"SipAuthPassword", P_STR},
	{"TranscriptionConfiguration", P_STR},
	{"Muted", P_BOOL},
	{"StartConferenceOnEnter", P_BOOL},
	{"EndConferenceOnExit", P_BOOL},
	{"EndConferenceOnCustomerExit", P_BOOL},
	{"EarlyMedia", P_BOOL},
	{"Transcribe", P_BOOL},
	{"Timeout", P_INT},
	{"MaxParticipants", P_INT},
	{"Beep", P_BOOL | P_STR},
	{"ConferenceRecord", P_BOOL | P_STR},
	/* documented, unchecked by the SDK; TaskRouter takes a boolean */
	{"BeepOnCustomerEntrance", P_BOOL},
	{NULL, 0},
};

static int post_instruction(struct call *c, struct sim_reservation *r, const char *ins) {
	struct sim_instruction in = {.post_work_activity = -1, .mute = -1, .end_on_exit = -1,
		.beep_on_exit = -1};
	const struct pspec *spec;
	struct sim_err err;
	char *params;
	int rc;

	if (strcmp(ins, "call") == 0) {
		spec = call_params;
		in.name = "call";
	} else if (strcmp(ins, "dequeue") == 0) {
		spec = dequeue_params;
		in.name = "dequeue";
	} else if (strcmp(ins, "redirect") == 0) {
		spec = redirect_params;
		in.name = "redirect";
	} else if (strcmp(ins, "conference") == 0) {
		spec = conference_params;
		in.name = "conference";
	} else {
		return fail(c, 400, 20001, "Instruction %s is not valid", ins);
	}
	if ((rc = check_params(c, spec, NULL))) {
		return rc;
	}
	if (spec == call_params) {
		if (!jp_str(c->params, "CallFrom") || !jp_str(c->params, "CallUrl")) {
			return fail(c, 400, 20001, "The call instruction needs CallFrom and CallUrl");
		}
		in.accept = param_tristate(c, "CallAccept") == 1;
	} else if (spec == redirect_params) {
		if (!jp_str(c->params, "RedirectCallSid") || !jp_str(c->params, "RedirectUrl")) {
			return fail(c, 400, 20001,
				"The redirect instruction needs RedirectCallSid and RedirectUrl");
		}
		in.accept = param_tristate(c, "RedirectAccept") == 1;
	} else if (spec == dequeue_params) {
		const char *pw = jp_str(c->params, "DequeuePostWorkActivitySid");
		if (pw && ((in.post_work_activity = world_activity(c->w, pw)) < 0 ||
				  strncmp(pw, "WA", 2) != 0)) {
			return fail(c, 400, 20001,
				"DequeuePostWorkActivitySid %s is not an activity", pw);
		}
		/* [Inferred] accepted once the worker's leg connects: at once, here */
		in.accept = true;
	} else {
		in.accept = true;
		in.mute = param_tristate(c, "Muted");
		in.end_on_exit = param_tristate(c, "EndConferenceOnExit");
	}
	params = jw_dump(c->params);
	if (!params) {
		return fail(c, 500, 20500, "Out of memory");
	}
	in.params = params;
	rc = world_res_instruction(c->w, r, &in, &err);
	free(params);
	return rc < 0 ? fail_err(c, &err) : reply_res(c, r, RES_INSTANCE);
}

/* Reservation accept / reject / wrap / complete and the instructions (spec
 * reservation-worker §3.2). */
static int post_reservation(struct call *c, struct sim_reservation *r) {
	yajl_val stv = jp_get(c->params, "ReservationStatus");
	yajl_val insv = jp_get(c->params, "Instruction");
	const char *st = jp_str(c->params, "ReservationStatus");
	const char *ins = jp_str(c->params, "Instruction");
	struct sim_err err;
	int rc;

	if (!if_match_ok(c, r->version)) {
		return precondition(c, "Reservation", r->sid, r->version);
	}
	if ((stv && !st) || (insv && !ins)) {
		return fail(c, 400, 20001, "%s must be a string",
			stv && !st ? "ReservationStatus" : "Instruction");
	}
	if (st && ins) {
		return fail(c, 400, 20001, "ReservationStatus and Instruction cannot be combined");
	}
	if (ins) {
		return post_instruction(c, r, ins);
	}
	if (!st) {
		return fail(c, 400, 20001, "ReservationStatus or Instruction is required");
	}
	if ((rc = check_params(c, strcmp(st, "rejected") == 0 ? reject_params : status_params,
		     NULL))) {
		return rc;
	}
	if (strcmp(st, "accepted") == 0) {
		rc = world_res_accept(c->w, r, &err);
	} else if (strcmp(st, "rejected") == 0) {
		const char *wa = jp_str(c->params, "WorkerActivitySid");
		int a = wa ? world_activity(c->w, wa) : -1;
		if (wa && (a < 0 || strncmp(wa, "WA", 2) != 0)) {
			return fail(c, 400, 20001, "WorkerActivitySid %s is not an activity", wa);
		}
		rc = world_res_reject(c->w, r, a, &err);
	} else if (strcmp(st, "wrapping") == 0) {
		rc = world_res_wrap(c->w, r, &err);
	} else if (strcmp(st, "completed") == 0) {
		rc = world_res_complete(c->w, r, &err);
	} else {
		return fail(c, 400, 20001, "ReservationStatus %s is not valid", st);
	}
	return rc < 0 ? fail_err(c, &err) : reply_res(c, r, RES_INSTANCE);
}

static int post_task(struct call *c, struct sim_task *t) {
	const char *st = jp_str(c->params, "AssignmentStatus");
	const char *reason = jp_str(c->params, "Reason");
	int64_t vst = -1, prio = -1, tmo = -1;
	char *attrs = NULL;
	struct sim_err err;
	int rc = 0;

	if (!if_match_ok(c, t->version)) {
		return precondition(c, "Task", t->sid, t->version);
	}
	if (param_attributes(c, "Attributes", &attrs) < 0) {
		return fail(c, 400, 20001, "Attributes must be a JSON object");
	}
	if (param_present(c, "VirtualStartTime") && param_time(c, "VirtualStartTime", &vst) < 0) {
		free(attrs);
		return fail(c, 400, 20001, "VirtualStartTime must be an ISO 8601 UTC time");
	}
	if (param_present(c, "Priority") && param_int(c, "Priority", &prio) < 0) {
		free(attrs);
		return fail(c, 400, 20001, "Priority must be an integer");
	}
	if (param_present(c, "Timeout") && param_int(c, "Timeout", &tmo) < 0) {
		free(attrs);
		return fail(c, 400, 20001, "Timeout must be an integer");
	}
	if (st) {
		bool ok = (strcmp(st, "completed") == 0 &&
				  (t->status == TS_ASSIGNED || t->status == TS_WRAPPING)) ||
			(strcmp(st, "wrapping") == 0 && t->status == TS_ASSIGNED) ||
			(strcmp(st, "canceled") == 0 &&
				(t->status == TS_PENDING || t->status == TS_RESERVED));
		if (strcmp(st, "completed") != 0 && strcmp(st, "wrapping") != 0 &&
			strcmp(st, "canceled") != 0) {
			free(attrs);
			return fail(c, 400, 20001, "AssignmentStatus %s is not valid", st);
		}
		if (!ok) {
			free(attrs);
			return fail(c, 400, 20001,
				"Task %s cannot move from %s to %s", t->sid,
				task_status_str(t->status), st);
		}
	} else if (!attrs && vst == -1 && prio == -1 && tmo == -1) {
		return fail(c, 400, 20001, "Nothing to update");
	}
	if (attrs || vst != -1 || prio != -1 || tmo != -1) {
		rc = world_task_update(c->w, t, attrs, prio, tmo, vst, &err);
	}
	free(attrs);
	if (rc == 0 && st) {
		if (strcmp(st, "completed") == 0) {
			rc = world_task_complete(c->w, t, reason ? reason : "", &err);
		} else if (strcmp(st, "wrapping") == 0) {
			rc = world_task_wrap(c->w, t, reason, &err);
		} else {
			rc = world_task_cancel(c->w, t, reason, &err);
		}
	}
	return rc < 0 ? fail_err(c, &err) : reply_task(c, t);
}

/* Worker.createTask (spec reservation-worker §4.3) plus the public API's Timeout and
 * Priority. */
static const struct pspec create_task_params[] = {
	{"WorkflowSid", P_STR},
	{"TaskQueueSid", P_STR},
	{"RoutingTarget", P_STR},
	{"VirtualStartTime", P_STR | P_INT},
	{"TaskChannelUniqueName", P_STR},
	{"TaskChannelSid", P_STR},
	{"Attributes", P_ATTRS},
	{"Timeout", P_INT | P_STR},
	{"Priority", P_INT | P_STR},
	{NULL, 0},
};

static int create_task(struct call *c) {
	const char *wf = jp_str(c->params, "WorkflowSid");
	const char *q = jp_str(c->params, "TaskQueueSid");
	const char *rt = jp_str(c->params, "RoutingTarget");
	const char *chn = jp_str(c->params, "TaskChannelUniqueName");
	const char *chs = jp_str(c->params, "TaskChannelSid");
	struct sim_task_spec spec = {0};
	struct sim_task *t;
	struct sim_err err;
	char *attrs = NULL;
	int64_t v;
	int rc;

	if ((rc = check_params(c, create_task_params, NULL))) {
		return rc;
	}
	if (!wf || strcmp(wf, c->w->workflow.sid) != 0) {
		return fail(c, 400, 20001, "WorkflowSid %s is not a workflow of workspace %s",
			wf ? wf : "(missing)", c->w->workspace_sid);
	}
	if (q && strcmp(q, c->w->queue.sid) != 0) {
		return fail(c, 400, 20001, "TaskQueueSid %s is not a queue", q);
	}
	spec.worker_target = -1;
	if (rt) {
		struct sim_worker *k = world_worker(c->w, rt);
		if (!k || strncmp(rt, "WK", 2) != 0) {
			return fail(c, 400, 20001, "RoutingTarget %s is not a worker", rt);
		}
		spec.worker_target = k->idx;
	}
	spec.channel = world_channel(c->w, chs ? chs : chn ? chn : "voice");
	if (spec.channel < 0) {
		return fail(c, 400, 20001, "Unknown task channel %s", chs ? chs : chn);
	}
	spec.timeout = SIM_TASK_TIMEOUT_DEFAULT;
	if (param_present(c, "Timeout")) {
		if (param_int(c, "Timeout", &v) < 0) {
			return fail(c, 400, 20001, "Timeout must be an integer");
		}
		spec.timeout = v;
	}
	if (param_present(c, "Priority")) {
		if (param_int(c, "Priority", &v) < 0) {
			return fail(c, 400, 20001, "Priority must be an integer");
		}
		spec.priority = v;
	}
	if (param_present(c, "VirtualStartTime") && param_time(c, "VirtualStartTime", &spec.vst)) {
		return fail(c, 400, 20001, "VirtualStartTime must be an ISO 8601 UTC time");
	}
	if (param_attributes(c, "Attributes", &attrs) < 0) {
		return fail(c, 400, 20001, "Attributes must be a JSON object");
	}
	spec.attributes = attrs;
	if (world_task_create(c->w, &spec, &t, NULL, &err) < 0) {
		free(attrs);
		return fail_err(c, &err);
	}
	free(attrs);
	if (spec.worker_target >= 0 && t->status == TS_PENDING) {
		world_task_fail(c->w, t, c->w->workers[spec.worker_target]);
	}
	return reply_task(c, t);
}

static struct sim_task *param_task(struct call *c) {
	return world_task(c->w, jp_str(c->params, "TaskSid"));
}

static int post_transfer(struct call *c) {
	struct sim_task *t = param_task(c);
	struct sim_reservation *r = world_res(c->w, jp_str(c->params, "ReservationSid"));
	struct sim_transfer *x;
	struct sim_err err;
	char *attrs = NULL;
	int64_t prio = -1;
	int rc;

	*c->is_xfer = true;
	if (param_attributes(c, "Attributes", &attrs) < 0) {
		return fail(c, 400, 20001, "Attributes must be a JSON object");
	}
	if (param_present(c, "Priority") && param_int(c, "Priority", &prio) < 0) {
		free(attrs);
		return fail(c, 400, 20001, "Priority must be an integer");
	}
	rc = world_transfer_create(c->w, c->me, r, t, jp_str(c->params, "To"),
		jp_str(c->params, "Mode"), attrs, prio, &x, &err);
	free(attrs);
	return rc < 0 ? fail_err(c, &err) : reply_xfer(c, x);
}

static int post_transfer_instance(struct call *c, const char *sid) {
	struct sim_transfer *x = world_xfer(c->w, sid);
	const char *st = jp_str(c->params, "TransferStatus");
	const char *ts = jp_str(c->params, "TaskSid");
	struct sim_err err;

	if (!x || x->init_worker != c->me) {
		return not_found(c);
	}
	if (ts && strcmp(ts, x->task->sid) != 0) {
		return fail(c, 400, 20001, "Transfer %s does not belong to task %s", sid, ts);
	}
	if (!st || strcmp(st, "canceled") != 0) {
		return fail(c, 400, 20001, "TransferStatus must be canceled");
	}
	if (world_transfer_cancel(c->w, x, &err) < 0) {
		return fail_err(c, &err);
	}
	return reply_xfer(c, x);
}

static int post_participant(struct call *c, const char *kind) {
	struct sim_task *t = param_task(c);
	struct sim_err err;
	int rc;

	if (strcmp(kind, "WorkerParticipant") == 0) {
		/* Reservation.updateParticipant (spec reservation-worker §3.2). What TaskRouter
		 * answers is unknown (§10.4; the SDK ignores it): the reservation instance. */
		static const struct pspec wp_params[] = {
			{"ReservationSid", P_STR},
			{"EndConferenceOnExit", P_BOOL},
			{"Mute", P_BOOL},
			{"BeepOnExit", P_BOOL},
			{NULL, 0},
		};
		struct sim_reservation *r;
		if ((rc = check_params(c, wp_params, NULL))) {
			return rc;
		}
		r = world_res(c->w, jp_str(c->params, "ReservationSid"));
		if (!r || r->worker != c->me) {
			return fail(c, 400, 20001, "ReservationSid must name a reservation of worker "
						   "%s", c->me->sid);
		}
		rc = world_res_participant(c->w, r, param_tristate(c, "Mute"),
			param_tristate(c, "EndConferenceOnExit"), param_tristate(c, "BeepOnExit"),
			&err);
		return rc < 0 ? fail_err(c, &err) : reply_res(c, r, RES_INSTANCE);
	}
	if (!t) {
		return fail(c, 400, 20001, "TaskSid is required and must name an existing task");
	}
	if (strcmp(kind, "CustomerParticipant") == 0) {
		bool hold = false;
		int hr = jp_bool(c->params, "Hold", true, &hold);
		if (hr == -EINVAL) {
			return fail(c, 400, 20001, "Hold must be a boolean");
		}
		rc = world_conf_customer(c->w, c->me, t, hr == 0 ? (int)hold : -1, &err);
	} else {
		struct sim_worker *target = world_worker(c->w, jp_str(c->params, "TargetWorkerSid"));
		if (!jp_str(c->params, "TargetWorkerSid")) {
			return fail(c, 400, 20001, "TargetWorkerSid is required");
		}
		if (strcmp(kind, "HoldWorkerParticipant") == 0) {
			bool hold;
			if (jp_bool(c->params, "Hold", true, &hold) < 0) {
				return fail(c, 400, 20001, "Hold is required and must be a boolean");
			}
			rc = world_conf_hold(c->w, c->me, t, target, hold, &err);
		} else {
			rc = world_conf_kick(c->w, c->me, t, target, &err);
		}
	}
	return rc < 0 ? fail_err(c, &err) : reply_task(c, t);
}

static bool is_get(struct call *c) {
	return strcmp(c->method, "GET") == 0;
}

static int route(struct call *c, const char *api) {
	char buf[1024], *seg[MAX_SEGS], *save = NULL, *tok;
	int n = 0;
	bool v1 = strcmp(api, "v1") == 0, v2 = strcmp(api, "v2") == 0;
	bool get = is_get(c), post = strcmp(c->method, "POST") == 0;

	snprintf(buf, sizeof(buf), "%s", c->url[0] == '/' ? c->url + 1 : c->url);
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (n == MAX_SEGS) {
			return not_found(c);
		}
		seg[n++] = tok;
	}
	if (n < 3 || strcmp(seg[0], "Workspaces") != 0) {
		return not_found(c);
	}
	if (!get && !post) {
		return fail(c, 400, 20001, "method must be GET or POST");
	}
	if (strcmp(seg[1], c->grant.workspace_sid) != 0) {
		return fail(c, 403, 20403, "The token does not grant access to workspace %s",
			seg[1]);
	}
	if (strcmp(seg[2], "Workers") == 0 && n >= 4) {
		struct sim_worker *k = world_worker(c->w, seg[3]);
		if (!k || strncmp(seg[3], "WK", 2) != 0) {
			if (strcmp(seg[3], c->grant.worker_sid) == 0 || strncmp(seg[3], "WK", 2) != 0) {
				return not_found(c);
			}
			return fail(c, 403, 20403, "The token does not grant access to worker %s",
				seg[3]);
		}
		if (k != c->me) {
			bool admin = strcmp(c->grant.role, "admin") == 0 ||
				strcmp(c->grant.role, "supervisor") == 0;
			if (!(admin && n == 4 && v1)) {
				return fail(c, 403, 20403,
					"The token does not grant access to worker %s", seg[3]);
			}
		}
		if (n == 4) {
			if (!v1) {
				return not_found(c);
			}
			return get ? reply_worker(c, k) : post_worker(c, k);
		}
		if (n == 5 && strcmp(seg[4], "WorkerChannels") == 0 && v1 && get) {
			return get_wchannels(c);
		}
		if (n == 5 && strcmp(seg[4], "Reservations") == 0 && v2 && get) {
			return get_reservations(c);
		}
		if (n == 5 && strcmp(seg[4], "Transfers") == 0 && v2 && post) {
			return post_transfer(c);
		}
		if (n == 5 && v2 && post &&
			(strcmp(seg[4], "CustomerParticipant") == 0 ||
				strcmp(seg[4], "WorkerParticipant") == 0 ||
				strcmp(seg[4], "HoldWorkerParticipant") == 0 ||
				strcmp(seg[4], "KickWorkerParticipant") == 0)) {
			return post_participant(c, seg[4]);
		}
		if (n == 6 && strcmp(seg[4], "Reservations") == 0 && v1) {
			struct sim_reservation *r = world_res(c->w, seg[5]);
			if (!r || r->worker != k) {
				return not_found(c);
			}
			return get ? reply_res(c, r,
					     c->s->res_get_instance ? RES_INSTANCE : RES_EVENT)
				   : post_reservation(c, r);
		}
		if (n == 6 && strcmp(seg[4], "Transfers") == 0 && v2 && post) {
			return post_transfer_instance(c, seg[5]);
		}
		return not_found(c);
	}
	if (strcmp(seg[2], "Workers") == 0 && n == 3 && v1 && get) {
		return get_workers(c);
	}
	if (strcmp(seg[2], "Activities") == 0 && n == 3 && v1 && get) {
		return get_activities(c);
	}
	if (strcmp(seg[2], "TaskQueues") == 0 && n <= 4 && v1 && get) {
		return get_queues(c, n == 4 ? seg[3] : NULL);
	}
	if (strcmp(seg[2], "Tasks") == 0 && v1) {
		struct sim_task *t;
		if (n == 3) {
			return post ? create_task(c) : get_tasks(c);
		}
		t = world_task(c->w, seg[3]);
		if (!t) {
			return not_found(c);
		}
		if (n == 4) {
			return get ? reply_task(c, t) : post_task(c, t);
		}
		if (n == 6 && strcmp(seg[4], "Reservations") == 0) {
			struct sim_reservation *r = world_res(c->w, seg[5]);
			if (!r || r->task != t) {
				return not_found(c);
			}
			return reply_res(c, r, RES_INSTANCE);
		}
	}
	return not_found(c);
}

static void log_request(struct sim *s, const char *url, const char *method, yajl_val params,
	const struct rest_req *rq, const char *worker_sid) {
	struct reqlog *l;
	struct reqlog *grown;

	if (s->n_log == s->cap_log) {
		size_t cap = s->cap_log ? s->cap_log * 2 : 256;
		grown = realloc(s->log, cap * sizeof(*grown));
		if (!grown) {
			return;
		}
		s->log = grown;
		s->cap_log = cap;
	}
	l = &s->log[s->n_log];
	memset(l, 0, sizeof(*l));
	l->url = strdup(url ? url : "");
	l->method = strdup(method ? method : "");
	l->params = params ? jw_dump(params) : strdup("null");
	l->api_version = strdup(rq->api_version);
	l->if_match = strdup(rq->if_match);
	l->client_version = strdup(rq->client_version);
	l->worker_sid = strdup(worker_sid ? worker_sid : "");
	l->time_ms = world_now_ms();
	if (!l->url || !l->method || !l->params || !l->api_version || !l->if_match ||
		!l->client_version || !l->worker_sid) {
		sim_reqlog_done(l);
		return;
	}
	s->n_log++;
}

int sim_rest_handle(struct sim *s, const struct rest_req *rq, struct sbuf *out,
	int64_t *ret_hang_ms, bool *ret_is_xfer) {
	struct call c;
	char errbuf[128];
	yajl_val body = jp_parse(rq->body, errbuf, sizeof(errbuf));
	const char *token;
	enum sim_jwt_result jr;
	size_t logi = (size_t)-1;
	int status;

	memset(&c, 0, sizeof(c));
	c.s = s;
	c.w = s->world;
	c.out = out;
	c.if_match = rq->if_match;
	c.is_xfer = ret_is_xfer;
	if (!body || !YAJL_IS_OBJECT(body)) {
		log_request(s, "", "", NULL, rq, NULL);
		logi = s->n_log - 1;
		status = fail(&c, 400, 20001, "The request body must be a JSON object");
		goto out;
	}
	c.url = jp_str(body, "url");
	c.method = jp_str(body, "method");
	c.params = jp_get(body, "params");
	token = jp_str(body, "token");
	jr = sim_jwt_check(token, s->opts.key_secret, s->opts.verify, world_now(), &c.grant);
	log_request(s, c.url, c.method, c.params, rq, c.grant.worker_sid);
	logi = s->n_log - 1;
	if (s->rest_fault.count > 0 && c.url &&
		(!s->rest_fault.match[0] || strstr(c.url, s->rest_fault.match))) {
		s->rest_fault.count--;
		*ret_hang_ms = s->rest_fault.reset ? -1 : s->rest_fault.hang_ms;
		if (s->rest_fault.reset) {
			/* applied, as a server that dies after acting but before replying */
		} else if (s->rest_fault.status) {
			status = fail(&c, s->rest_fault.status, s->rest_fault.status * 100,
				"%s", s->rest_fault.message[0] ? s->rest_fault.message
							       : "Simulated failure");
			goto out;
		}
	}
	if (!c.url || !c.method) {
		status = fail(&c, 400, 20001, "url and method are required strings");
		goto out;
	}
	if (c.params && !YAJL_IS_NULL(c.params) && !YAJL_IS_OBJECT(c.params)) {
		status = fail(&c, 400, 20001, "params must be an object");
		goto out;
	}
	if (!token || !token[0]) {
		status = fail(&c, 401, 20401, "A token is required");
		goto out;
	}
	if (jr == SIM_JWT_EXPIRED || (jr == SIM_JWT_OK && sim_token_revoked(s, token))) {
		status = fail(&c, 401, 20401, "The token has expired");
		goto out;
	}
	if (jr != SIM_JWT_OK) {
		status = fail(&c, 403, 20403, "%s", sim_jwt_result_str(jr));
		goto out;
	}
	c.me = world_worker(c.w, c.grant.worker_sid);
	if (!c.me || strcmp(c.grant.workspace_sid, c.w->workspace_sid) != 0) {
		status = fail(&c, 403, 20403, "The token's grant names an unknown worker");
		goto out;
	}
	if (strcmp(rq->api_version, "v1") != 0 && strcmp(rq->api_version, "v2") != 0) {
		status = not_found(&c);
		goto out;
	}
	world_begin(c.w);
	status = route(&c, rq->api_version);
	world_flush(c.w);
out:
	if (logi < s->n_log) {
		s->log[logi].status = status;
	}
	sim_vlog(s, "REST %s %s %s (apiVersion %s%s%s) -> %d", c.method ? c.method : "?",
		c.url ? c.url : "?", c.params ? "with params" : "",
		rq->api_version[0] ? rq->api_version : "-", rq->if_match[0] ? ", If-Match " : "",
		rq->if_match, status);
	yajl_tree_free(body);
	return status;
}
