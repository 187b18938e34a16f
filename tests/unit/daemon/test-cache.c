/* Unit tests of daemon/cache.c and subs.c: pure, no loop. The Task text itself is
 * test-task-json.c's; here it only shows what the cache holds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "tr-limits.h"
#include "cache.h"
#include "outq.h"
#include "subs.h"
#include "task-json.h"

#define WT "WT0fbc4e6335fcc52ed96c632c85599ed7"
#define WT2 "WT22222222222222222222222222222222"
#define WR1 "WR11111111111111111111111111111111"
#define WR2 "WR22222222222222222222222222222222"
#define TT "TTc81cba9697d6efe563d9178e8ec10191"

struct rec {
	char name[40];
	char task[40];
	char res[40];
	char status[20];
	char transfer_status[20];
	unsigned flags;
	int64_t version;
	char unknown_reason[20];
	long http_status;
};

static struct rec recs[64];
static size_t n_recs;

static void on_event(void *userdata, const struct tr_cache_event *ev) {
	struct rec *r;

	(void)userdata;
	assert_true(n_recs < 64);
	r = &recs[n_recs++];
	snprintf(r->name, sizeof(r->name), "%s", ev->name);
	snprintf(r->task, sizeof(r->task), "%s", ev->task->sid);
	snprintf(r->res, sizeof(r->res), "%s", ev->reservation_sid ? ev->reservation_sid : "");
	snprintf(r->status, sizeof(r->status), "%s", tr_cache_task_status(ev->task));
	snprintf(r->transfer_status, sizeof(r->transfer_status), "%s",
		ev->transfer && ev->transfer->status ? ev->transfer->status : "");
	r->flags = ev->flags;
	r->version = ev->task->version;
	snprintf(r->unknown_reason, sizeof(r->unknown_reason), "%s",
		ev->unknown_reason ? ev->unknown_reason : "");
	r->http_status = ev->http_status;
}

static struct tr_json *parse(const char *s) {
	struct tr_json *j = NULL;

	assert_int_equal(tr_json_parse(s, strlen(s), &j, NULL), 0);
	return j;
}

static char *task_text(const char *sid, const char *status, int version) {
	static char buf[4][1024];
	static int i;
	char *b = buf[i++ % 4];

	snprintf(b, 1024,
		"{\"sid\":\"%s\",\"assignment_status\":\"%s\",\"attributes\":\"{\\\"type\\\":\\\"support\\\"}\","
		"\"addons\":\"{}\",\"age\":95,\"priority\":5,\"reason\":null,\"timeout\":3600,"
		"\"queue_sid\":\"WQ1\",\"queue_name\":\"Support\",\"workflow_sid\":\"WW1\","
		"\"workflow_name\":\"Inbound\",\"task_channel_sid\":\"TC1\","
		"\"task_channel_unique_name\":\"voice\",\"routing_target\":null,"
		"\"date_created\":1735819200,\"date_updated\":1735819295,"
		"\"virtual_start_time\":1735819200,\"version\":%d}", sid, status, version);
	return b;
}

static int apply_res(struct tr_cache *c, const char *type, const char *rsid, const char *rstatus,
	const char *tsid, const char *tstatus, int version, const char *extra, uint64_t now) {
	char buf[4096];
	struct tr_json *j;
	int r;

	snprintf(buf, sizeof(buf), "{\"sid\":\"%s\",\"worker_sid\":\"WK1\",\"reservation_status\":\"%s\","
		"\"task\":%s%s}", rsid, rstatus, task_text(tsid, tstatus, version), extra ? extra : "");
	j = parse(buf);
	r = tr_cache_apply(c, type, j, now);
	tr_json_free(j);
	return r;
}

static int apply_task(struct tr_cache *c, const char *type, const char *tsid, const char *st,
	int version) {
	struct tr_json *j = parse(task_text(tsid, st, version));
	int r = tr_cache_apply(c, type, j, 0);

	tr_json_free(j);
	return r;
}

static char *transfer_text(const char *sid, const char *status, const char *rsid, bool with_task) {
	static char b[1024];

	snprintf(b, sizeof(b), "{\"sid\":\"%s\",%s\"transfer_type\":\"WORKER\",\"transfer_mode\":\"WARM\","
		"\"transfer_to\":\"WK2\",\"transfer_status\":\"%s\",\"initiating_reservation_sid\":\"%s\","
		"\"initiating_worker_sid\":\"WK1\",\"initiating_queue_sid\":\"WQ1\","
		"\"initiating_workflow_sid\":\"WW1\",\"date_created\":1,\"date_updated\":2%s}",
		sid, with_task ? "\"task_sid\":\"" WT "\"," : "", status, rsid,
		strcmp(status, "failed") == 0 ? ",\"transfer_failed_reason\":\"rejected\"" : "");
	return b;
}

static int apply_transfer(struct tr_cache *c, const char *type, const char *sid,
	const char *status, uint64_t now) {
	struct tr_json *j = parse(transfer_text(sid, status, WR1, true));
	int r = tr_cache_apply(c, type, j, now);

	tr_json_free(j);
	return r;
}

static int setup(void **state) {
	n_recs = 0;
	*state = tr_cache_new(5000, on_event, NULL);
	assert_non_null(*state);
	return 0;
}

static int teardown(void **state) {
	tr_cache_free(*state);
	return 0;
}

static void test_created_accepted_json(void **state) {
	struct tr_cache *c = *state;
	const struct tr_cache_task *t;
	struct tr_json *j;
	char *text;

	assert_int_equal(apply_res(c, "reservation.created", WR1, "pending", WT, "reserved", 1, NULL, 0), 0);
	assert_int_equal(n_recs, 1);
	assert_string_equal(recs[0].name, "reservationCreated");
	assert_string_equal(recs[0].res, WR1);
	assert_int_equal(apply_res(c, "reservation.accepted", WR1, "accepted", WT, "assigned", 2, NULL, 0), 0);
	assert_string_equal(recs[1].name, "reservationAccepted");
	t = tr_cache_get(c, WT);
	assert_non_null(t);
	assert_string_equal(t->status, "assigned");
	assert_string_equal(tr_cache_task_reservation(t), WR1);

	j = tr_task_json_task_tree(t);
	assert_non_null(j);
	assert_string_equal(tr_json_get_string(j, "version"), "2");
	assert_string_equal(tr_json_get_string(j, "status"), "assigned");
	assert_string_equal(tr_json_get_string(j, "wireStatus"), "assigned");
	assert_string_equal(tr_json_get_string(tr_json_get(j, "attributes"), "type"), "support");
	assert_true(tr_json_is(tr_json_get(j, "addOns"), TR_JSON_OBJECT));
	assert_true(tr_json_is(tr_json_get(j, "reason"), TR_JSON_NULL));
	assert_string_equal(tr_json_get_string(j, "dateCreatedIso"), "2025-01-02T12:00:00Z");
	assert_string_equal(tr_json_get_string(j, "reservationSid"), WR1);
	assert_string_equal(tr_json_get_string(j, "queueName"), "Support");
	assert_string_equal(tr_json_get_string(j, "taskChannelUniqueName"), "voice");
	assert_int_equal(tr_json_get(j, "reservations")->u.arr.n, 1);
	assert_true(tr_json_is(tr_json_get(tr_json_get(j, "transfers"), "incoming"), TR_JSON_NULL));
	assert_int_equal(tr_json_dump(j, &text, NULL), 0);
	assert_non_null(strstr(text, "\"virtualStartTime\":1735819200"));
	free(text);
	tr_json_free(j);
	assert_int_equal(tr_cache_count(c, false), 1);
}

static void test_version_rule(void **state) {
	struct tr_cache *c = *state;

	assert_int_equal(apply_res(c, "reservation.created", WR1, "pending", WT, "reserved", 3, NULL, 0), 0);
	assert_int_equal(apply_task(c, "task.updated", WT, "assigned", 5), 0);
	assert_int_equal(recs[1].flags & TR_CACHE_EV_STALE, 0);
	assert_int_equal(tr_cache_get(c, WT)->version, 5);
	/* older: event flagged stale, no rollback */
	assert_int_equal(apply_task(c, "task.completed", WT, "completed", 4), 0);
	assert_string_equal(recs[2].name, "completed");
	assert_true(recs[2].flags & TR_CACHE_EV_STALE);
	assert_int_equal(tr_cache_get(c, WT)->version, 5);
	assert_string_equal(tr_cache_get(c, WT)->status, "assigned");
	/* equal: applied */
	assert_int_equal(apply_task(c, "task.wrapup", WT, "wrapping", 5), 0);
	assert_string_equal(tr_cache_get(c, WT)->status, "wrapping");
	assert_int_equal(recs[3].flags, 0);
	assert_int_equal(tr_cache_get_counters(c)->stale_payloads, 1);
}

static void test_fanout(void **state) {
	struct tr_cache *c = *state;

	assert_int_equal(apply_res(c, "reservation.created", WR1, "wrapping", WT, "wrapping", 3, NULL, 0), 0);
	assert_int_equal(apply_res(c, "reservation.created", WR2, "pending", WT, "reserved", 4, NULL, 0), 0);
	n_recs = 0;
	assert_int_equal(apply_task(c, "task.updated", WT, "reserved", 5), 0);
	assert_int_equal(n_recs, 2);
	assert_string_equal(recs[0].res, WR1);
	assert_string_equal(recs[1].res, WR2);
	assert_string_equal(tr_cache_task_reservation(tr_cache_get(c, WT)), WR1);
}

static void test_cleanup_and_expiry(void **state) {
	struct tr_cache *c = *state;
	static const char *const types[][2] = {
		{ "reservation.rejected", "reservationRejected" },
		{ "reservation.timeout", "reservationTimeout" },
		{ "reservation.canceled", "reservationCanceled" },
		{ "reservation.rescinded", "reservationRescinded" },
	};

	for (size_t i = 0; i < 4; i++) {
		n_recs = 0;
		assert_int_equal(apply_res(c, "reservation.created", WR1, "pending", WT2, "reserved",
			(int)i * 2 + 1, NULL, 0), 0);
		assert_int_equal(apply_res(c, types[i][0], WR1, "rejected", WT2, "pending",
			(int)i * 2 + 2, NULL, 100), 0);
		assert_int_equal(n_recs, 2);
		assert_string_equal(recs[1].name, types[i][1]);
		assert_true(tr_cache_get(c, WT2)->closed);
		assert_int_equal(tr_cache_count(c, false), 0);
		assert_int_equal(tr_cache_count(c, true), 1);
	}
	/* completed: the final task event comes with it */
	n_recs = 0;
	assert_int_equal(apply_res(c, "reservation.created", WR2, "pending", WT, "reserved", 1, NULL, 0), 0);
	assert_int_equal(apply_res(c, "reservation.wrapup", WR2, "wrapping", WT, "wrapping", 2, NULL, 0), 0);
	assert_string_equal(recs[1].name, "reservationWrapup");
	assert_int_equal(apply_res(c, "reservation.completed", WR2, "completed", WT, "completed", 3, NULL, 1000), 0);
	assert_int_equal(n_recs, 4);
	assert_string_equal(recs[2].name, "reservationCompleted");
	assert_string_equal(recs[3].name, "completed");
	/* a late task.completed still resolves during the grace period (the record is
	 * refreshed), but the final event is not published a second time */
	assert_int_equal(apply_task(c, "task.completed", WT, "completed", 4), 0);
	assert_int_equal(n_recs, 4);
	assert_int_equal(tr_cache_get(c, WT)->version, 4);
	assert_int_equal(tr_cache_expire(c, 5999), 0);
	assert_non_null(tr_cache_get(c, WT));
	assert_int_equal(tr_cache_expire(c, 6000), 0);
	assert_null(tr_cache_get(c, WT));
	assert_int_equal(tr_cache_count(c, true), 0);
	/* dropped: unknown task, counted */
	assert_int_equal(apply_task(c, "task.updated", WT, "completed", 9), -ENOENT);
	assert_int_equal(tr_cache_get_counters(c)->ignored_unknown_task, 1);
}

static void test_unknown_and_malformed(void **state) {
	struct tr_cache *c = *state;
	struct tr_json *j = parse("{\"sid\":\"WK1\",\"activity_name\":\"Idle\"}");

	assert_int_equal(tr_cache_apply(c, "worker.activity.update", j, 0), 0);
	assert_int_equal(tr_cache_apply(c, "task.updated", j, 0), -ENOENT);
	tr_json_free(j);
	j = parse("{\"activity_name\":\"Idle\"}");
	assert_int_equal(tr_cache_apply(c, "task.updated", j, 0), -EBADMSG);
	assert_int_equal(tr_cache_apply(c, "reservation.created", j, 0), -EBADMSG);
	tr_json_free(j);
	assert_int_equal(apply_res(c, "reservation.accepted", WR1, "accepted", WT, "assigned", 1, NULL, 0), -ESRCH);
	assert_int_equal(apply_res(c, "reservation.completed", WR1, "completed", WT, "completed", 1, NULL, 0), -ENOENT);
	assert_int_equal(tr_cache_apply(c, "task.transfer-initiated", NULL, 0), -EBADMSG);
	j = parse("{\"sid\":\"WR1\",\"task\":{\"sid\":\"WT1\",\"assignment_status\":\"reserved\","
		"\"version\":1,\"attributes\":\"{not json\"}}");
	assert_int_equal(tr_cache_apply(c, "reservation.created", j, 0), -EBADMSG);
	tr_json_free(j);
	assert_null(tr_cache_get(c, "WT1"));
	assert_int_equal(n_recs, 0);
}

static void test_transfer_event_then_reply(void **state) {
	struct tr_cache *c = *state;
	struct tr_json *j;
	const struct tr_cache_task *t;

	assert_int_equal(apply_res(c, "reservation.created", WR1, "accepted", WT, "assigned", 1, NULL, 0), 0);
	n_recs = 0;
	assert_int_equal(apply_transfer(c, "task.transfer-initiated", TT, "initiated", 100), 0);
	assert_int_equal(n_recs, 0); /* waiting for the reply */
	j = parse(transfer_text(TT, "initiated", WR1, true));
	assert_int_equal(tr_cache_apply_transfer_response(c, WT, j, 200), 0);
	tr_json_free(j);
	assert_int_equal(n_recs, 1);
	assert_string_equal(recs[0].name, "transferInitiated");
	assert_string_equal(recs[0].status, "transferring");
	t = tr_cache_get(c, WT);
	assert_string_equal(tr_cache_task_status(t), "transferring");
	assert_string_equal(t->outgoing->task_sid, WT);
	/* then the failure: updated in place, back to the wire status */
	assert_int_equal(apply_transfer(c, "task.transfer-failed", TT, "failed", 300), 0);
	assert_int_equal(n_recs, 2);
	assert_string_equal(recs[1].name, "transferFailed");
	assert_string_equal(recs[1].transfer_status, "failed");
	assert_string_equal(tr_cache_task_status(t), "assigned");
	assert_string_equal(t->outgoing->failed_reason, "rejected");
	assert_true(tr_cache_transfer_is_final(t->outgoing));
}

static void test_transfer_reply_then_event(void **state) {
	struct tr_cache *c = *state;
	struct tr_json *j;
	static const char *const ev[][3] = {
		{ "task.transfer-attempt-failed", "transferAttemptFailed", "initiated" },
		{ "task.transfer-completed", "transferCompleted", "complete" },
		{ "task.transfer-canceled", "transferCanceled", "canceled" },
	};

	assert_int_equal(apply_res(c, "reservation.created", WR1, "accepted", WT, "assigned", 1, NULL, 0), 0);
	j = parse(transfer_text(TT, "initiated", WR1, true));
	assert_int_equal(tr_cache_apply_transfer_response(c, WT, j, 0), 0);
	tr_json_free(j);
	n_recs = 0;
	assert_int_equal(apply_transfer(c, "task.transfer-initiated", TT, "initiated", 10), 0);
	assert_int_equal(n_recs, 1);
	assert_string_equal(recs[0].name, "transferInitiated");
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(apply_transfer(c, ev[i][0], TT, ev[i][2], 20), 0);
		assert_string_equal(recs[n_recs - 1].name, ev[i][1]);
		assert_string_equal(recs[n_recs - 1].transfer_status, ev[i][2]);
	}
	/* wrong reservation: ignored */
	j = parse(transfer_text(TT, "initiated", WR2, true));
	assert_int_equal(tr_cache_apply(c, "task.transfer-initiated", j, 0), -ENOENT);
	tr_json_free(j);
}

static void test_transfer_expiry(void **state) {
	struct tr_cache *c = *state;

	assert_int_equal(apply_res(c, "reservation.created", WR1, "accepted", WT, "assigned", 1, NULL, 0), 0);
	n_recs = 0;
	assert_int_equal(apply_transfer(c, "task.transfer-initiated", TT, "initiated", 1000), 0);
	assert_int_equal(tr_cache_expire(c, 1000 + TR_TRANSFER_PENDING_MS - 1), 0);
	assert_int_equal(tr_cache_expire(c, 1000 + TR_TRANSFER_PENDING_MS), 1);
	assert_int_equal(tr_cache_get_counters(c)->transfer_events_dropped, 1);
	assert_int_equal(n_recs, 0);
	/* a stale event (another transfer) waits without blocking the current one */
	assert_int_equal(apply_transfer(c, "task.transfer-initiated", "TTold", "initiated", 15000), 0);
	{
		struct tr_json *j = parse(transfer_text(TT, "initiated", WR1, true));

		assert_int_equal(tr_cache_apply_transfer_response(c, WT, j, 15000), 0);
		tr_json_free(j);
	}
	assert_int_equal(apply_transfer(c, "task.transfer-canceled", TT, "canceled", 15001), 0);
	assert_int_equal(n_recs, 1);
	assert_string_equal(recs[0].name, "transferCanceled");
	assert_int_equal(tr_cache_expire(c, 15000 + TR_TRANSFER_PENDING_MS), 1);
	n_recs = 0;
	/* a failed POST drops at once */
	assert_int_equal(apply_transfer(c, "task.transfer-initiated", "TT3", "initiated", 20000), 0);
	tr_cache_drop_pending(c, WT);
	assert_int_equal(tr_cache_get_counters(c)->transfer_events_dropped, 3);
	assert_int_equal(n_recs, 0);
}

/* The reply never comes: the event is adopted when its wait ends (documented deviation). */
static void test_transfer_adopted(void **state) {
	struct tr_cache *c = *state;

	assert_int_equal(apply_res(c, "reservation.created", WR1, "accepted", WT, "assigned", 1, NULL, 0), 0);
	tr_cache_transfer_in_flight(c, WT, +1);
	n_recs = 0;
	assert_int_equal(apply_transfer(c, "task.transfer-initiated", TT, "initiated", 1000), 0);
	assert_int_equal(apply_transfer(c, "task.transfer-failed", TT, "failed", 1500), 0);
	assert_int_equal(tr_cache_expire(c, 1000 + TR_TRANSFER_PENDING_MS - 1), 0);
	assert_int_equal(n_recs, 0);
	assert_int_equal(tr_cache_expire(c, 1000 + TR_TRANSFER_PENDING_MS), 0);
	assert_int_equal(n_recs, 2);
	assert_string_equal(recs[0].name, "transferInitiated");
	assert_string_equal(recs[1].name, "transferFailed");
	assert_string_equal(tr_cache_get(c, WT)->outgoing->sid, TT);
	tr_cache_transfer_in_flight(c, WT, -1);
	tr_cache_transfer_in_flight(c, WT, -1); /* clamped */
	assert_int_equal(tr_cache_get(c, WT)->transfers_in_flight, 0);
}

static void test_embedded_transfers(void **state) {
	struct tr_cache *c = *state;
	char extra[1200];
	const struct tr_cache_task *t;
	struct tr_json *j, *tr;

	snprintf(extra, sizeof(extra), ",\"task_transfer\":%s", transfer_text(TT, "initiated", WR2, false));
	assert_int_equal(apply_res(c, "reservation.created", WR1, "pending", WT, "reserved", 5, extra, 0), 0);
	t = tr_cache_get(c, WT);
	assert_non_null(t->incoming);
	assert_string_equal(t->incoming->task_sid, WT);
	assert_null(t->outgoing);
	snprintf(extra, sizeof(extra), ",\"active_outgoing_task_transfer\":%s",
		transfer_text("TT2", "initiated", WR1, false));
	assert_int_equal(apply_res(c, "reservation.accepted", WR1, "accepted", WT, "assigned", 6, extra, 0), 0);
	assert_string_equal(t->outgoing->sid, "TT2");
	assert_string_equal(t->outgoing->task_sid, WT);
	j = tr_task_json_task_tree(t);
	tr = tr_json_get(j, "transfers") ? (struct tr_json *)tr_json_get(tr_json_get(j, "transfers"),
		"outgoing") : NULL;
	assert_non_null(tr);
	assert_string_equal(tr_json_get_string(tr, "taskSid"), WT);
	assert_string_equal(tr_json_get_string(tr, "mode"), "WARM");
	assert_string_equal(tr_json_get_string(tr, "reservationSid"), WR1);
	assert_string_equal(tr_json_get_string(j, "status"), "transferring");
	tr_json_free(j);
}

static int resync_add(struct tr_cache *c, const char *rsid, const char *rstatus, const char *tsid,
	const char *tstatus, int version) {
	char buf[2048];
	struct tr_json *j;
	int r;

	snprintf(buf, sizeof(buf), "{\"sid\":\"%s\",\"reservation_status\":\"%s\",\"task\":%s}", rsid,
		rstatus, task_text(tsid, tstatus, version));
	j = parse(buf);
	r = tr_cache_resync_add(c, j);
	tr_json_free(j);
	return r;
}

static void test_resync(void **state) {
	struct tr_cache *c = *state;

	assert_int_equal(apply_res(c, "reservation.created", WR1, "accepted", WT, "assigned", 1, NULL, 0), 0);
	assert_int_equal(apply_res(c, "reservation.created", "WR3", "accepted", "WT3", "assigned", 1, NULL, 0), 0);
	assert_int_equal(apply_res(c, "reservation.created", "WR4", "accepted", "WT4", "assigned", 7, NULL, 0), 0);
	/* an aborted resync leaves the cache alone */
	tr_cache_resync_begin(c);
	assert_int_equal(resync_add(c, WR2, "pending", WT2, "reserved", 1), 0);
	assert_int_equal(tr_cache_resync_end(c, -EIO, 0), 0);
	assert_null(tr_cache_get(c, WT2));
	assert_int_equal(tr_cache_count(c, false), 3);

	n_recs = 0;
	tr_cache_resync_begin(c);
	assert_int_equal(resync_add(c, WR1, "wrapping", WT, "wrapping", 2), 0);  /* changed */
	assert_int_equal(resync_add(c, WR2, "pending", WT2, "reserved", 1), 0);  /* new */
	assert_int_equal(resync_add(c, "WR4", "accepted", "WT4", "assigned", 7), 0); /* same */
	/* WT3 vanished: kept as it is, nothing published until its final state is known */
	assert_int_equal(tr_cache_resync_end(c, 0, 50), 0);
	/* WT: its reservation moved to wrapping (reservationWrapup), then the task (wrapup);
	 * WT2: new (reservationCreated) */
	assert_int_equal(n_recs, 3);
	assert_string_equal(recs[0].name, "reservationWrapup");
	assert_string_equal(recs[0].res, WR1);
	for (size_t i = 0; i < n_recs; i++) {
		assert_true(recs[i].flags & TR_CACHE_EV_RESYNC);
		assert_false(recs[i].flags & TR_CACHE_EV_VANISHED);
		if (strcmp(recs[i].task, WT) == 0) {
			assert_string_equal(recs[i].name, i == 0 ? "reservationWrapup" : "wrapup");
		} else {
			assert_string_equal(recs[i].task, WT2);
			assert_string_equal(recs[i].name, "reservationCreated");
			assert_string_equal(recs[i].res, WR2);
		}
	}
	assert_false(tr_cache_get(c, "WT3")->closed);
	assert_true(tr_cache_get(c, "WT3")->vanished);
	assert_string_equal(tr_cache_vanish_next(c), "WT3");
	assert_int_equal(tr_cache_count(c, false), 4);
	assert_int_equal(tr_cache_resync_add(c, NULL), -EINVAL); /* not in a resync */
}

/* Resync with only the reservations given (rsid/tsid pairs, accepted and assigned, v1). */
static void resync_with(struct tr_cache *c, const char *rsid, const char *tsid) {
	tr_cache_resync_begin(c);
	if (rsid) {
		assert_int_equal(resync_add(c, rsid, "accepted", tsid, "assigned", 1), 0);
	}
	assert_int_equal(tr_cache_resync_end(c, 0, 100), 0);
}

static void resolve_text(struct tr_cache *c, const char *sid, const char *status, int version,
	int want) {
	struct tr_json *j = parse(task_text(sid, status, version));

	assert_int_equal(tr_cache_vanish_resolve(c, sid, j, NULL, 200, 200), want);
	tr_json_free(j);
}

static void test_vanished(void **state) {
	struct tr_cache *c = *state;
	const char *sids[] = { "WTa", "WTb", "WTc", "WTd", "WTe" };
	const struct tr_cache_task *t;
	char rsid[8];

	for (size_t i = 0; i < 5; i++) {
		snprintf(rsid, sizeof(rsid), "WR%c", sids[i][2]);
		assert_int_equal(apply_res(c, "reservation.created", rsid, "accepted", sids[i],
					 "assigned", 3, NULL, 0), 0);
	}
	assert_null(tr_cache_vanish_next(c));
	n_recs = 0;
	resync_with(c, NULL, NULL); /* all five gone */
	assert_int_equal(n_recs, 0);
	assert_int_equal(tr_cache_count(c, false), 5);
	/* resolving before the fetch started: dropped */
	resolve_text(c, "WTa", "completed", 4, -ENOENT);
	for (size_t i = 0; i < 5; i++) {
		assert_string_equal(tr_cache_vanish_next(c), sids[i]);
		assert_int_equal(tr_cache_vanish_fetching(c, sids[i]), 0);
		assert_int_equal(tr_cache_vanish_fetching(c, sids[i]), -ENOENT);
	}
	assert_null(tr_cache_vanish_next(c));

	/* completed, with its version, reason and status */
	resolve_text(c, "WTa", "completed", 4, 0);
	assert_int_equal(n_recs, 1);
	assert_string_equal(recs[0].name, "completed");
	assert_int_equal(recs[0].flags, TR_CACHE_EV_RESYNC | TR_CACHE_EV_VANISHED);
	assert_string_equal(recs[0].status, "completed");
	assert_string_equal(recs[0].res, "WRa");
	assert_int_equal(recs[0].version, 4);
	assert_string_equal(recs[0].unknown_reason, "");
	t = tr_cache_get(c, "WTa");
	assert_true(t->closed && t->final_sent && !t->vanished && t->n_res == 0);
	resolve_text(c, "WTa", "completed", 4, -ENOENT); /* once */

	/* canceled */
	resolve_text(c, "WTb", "canceled", 5, 0);
	assert_int_equal(n_recs, 2);
	assert_string_equal(recs[1].name, "canceled");
	assert_int_equal(recs[1].version, 5);

	/* deleted: the state is unknown, the record stays as it was */
	assert_int_equal(tr_cache_vanish_resolve(c, "WTc", NULL, "deleted", 404, 200), 0);
	assert_int_equal(n_recs, 3);
	assert_string_equal(recs[2].name, "vanished");
	assert_int_equal(recs[2].flags, TR_CACHE_EV_RESYNC | TR_CACHE_EV_VANISHED);
	assert_string_equal(recs[2].unknown_reason, "deleted");
	assert_int_equal(recs[2].http_status, 404);
	assert_string_equal(recs[2].status, "assigned");
	assert_int_equal(recs[2].version, 3);
	t = tr_cache_get(c, "WTc");
	assert_true(t->closed && !t->final_sent && t->n_res == 0);

	/* alive elsewhere (here: back in the queue): vanished, with the fetched state */
	resolve_text(c, "WTd", "pending", 6, 0);
	assert_int_equal(n_recs, 4);
	assert_string_equal(recs[3].name, "vanished");
	assert_string_equal(recs[3].unknown_reason, "");
	assert_string_equal(recs[3].status, "pending");

	/* a payload that is not the task's */
	{
		struct tr_json *j = parse(task_text("WTx", "completed", 9));
		assert_int_equal(tr_cache_vanish_resolve(c, "WTe", j, NULL, 200, 200), 0);
		tr_json_free(j);
	}
	assert_int_equal(n_recs, 5);
	assert_string_equal(recs[4].name, "vanished");
	assert_string_equal(recs[4].unknown_reason, "malformed");
	assert_int_equal(recs[4].version, 3);
	assert_int_equal(tr_cache_count(c, false), 0);
	assert_int_equal(tr_cache_count(c, true), 5);
	/* closed vanished tasks expire like any other */
	assert_int_equal(tr_cache_expire(c, 200 + 5000), 0);
	assert_int_equal(tr_cache_count(c, true), 0);
}

/* A second resync while a fetch is out, a task that comes back, and one closed by an event. */
static void test_vanished_then_back(void **state) {
	struct tr_cache *c = *state;

	assert_int_equal(apply_res(c, "reservation.created", WR1, "accepted", WT, "assigned", 1, NULL, 0), 0);
	assert_int_equal(apply_res(c, "reservation.created", WR2, "pending", WT2, "reserved", 1, NULL, 0), 0);
	assert_int_equal(apply_res(c, "reservation.created", "WR3", "accepted", "WT3", "assigned", 1, NULL, 0), 0);
	resync_with(c, NULL, NULL);
	assert_int_equal(tr_cache_vanish_fetching(c, WT), 0);
	assert_int_equal(tr_cache_vanish_fetching(c, WT2), 0);
	/* WT3's fetch has not started: a new reservation makes it ours again */
	assert_int_equal(apply_res(c, "reservation.created", "WR4", "pending", "WT3", "reserved", 2, NULL, 0), 0);
	assert_false(tr_cache_get(c, "WT3")->vanished);
	assert_null(tr_cache_vanish_next(c));

	/* another reconnect: WT still gone (its fetch stays out, not started twice), WT2 back */
	n_recs = 0;
	tr_cache_resync_begin(c);
	assert_int_equal(resync_add(c, WR2, "pending", WT2, "reserved", 1), 0);
	assert_int_equal(resync_add(c, "WR4", "pending", "WT3", "reserved", 2), 0);
	assert_int_equal(tr_cache_resync_end(c, 0, 100), 0);
	assert_int_equal(n_recs, 0);
	assert_true(tr_cache_get(c, WT)->vanished && tr_cache_get(c, WT)->fetching);
	assert_false(tr_cache_get(c, WT2)->vanished);
	assert_null(tr_cache_vanish_next(c));
	resolve_text(c, WT2, "canceled", 2, -ENOENT); /* the late answer is dropped */
	assert_int_equal(n_recs, 0);
	assert_false(tr_cache_get(c, WT2)->closed);

	/* an event ends WT before its fetch answers: published once, by the event */
	assert_int_equal(apply_res(c, "reservation.completed", WR1, "completed", WT, "completed", 3, NULL, 0), 0);
	assert_int_equal(n_recs, 2);
	assert_string_equal(recs[1].name, "completed");
	assert_false(recs[1].flags & TR_CACHE_EV_VANISHED);
	resolve_text(c, WT, "completed", 3, -ENOENT);
	assert_int_equal(n_recs, 2);
}

/* ---- subs ---- */

struct sink {
	char *frames[16];
	size_t n;
};

static int sink_send(void *owner, char *buf, size_t len, struct tr_outq_shared *tail) {
	struct sink *s = owner;
	size_t tl = tail ? tail->len : 0;
	char *f;

	assert_true(len > 4);
	assert_int_equal(((size_t)(uint8_t)buf[0] << 24 | (size_t)(uint8_t)buf[1] << 16 |
		(size_t)(uint8_t)buf[2] << 8 | (uint8_t)buf[3]), len - 4 + tl);
	assert_true(s->n < 16);
	f = malloc(len - 4 + tl + 1);
	assert_non_null(f);
	memcpy(f, buf + 4, len - 4);
	if (tail) {
		memcpy(f + len - 4, tail->data, tl);
	}
	f[len - 4 + tl] = '\0';
	s->frames[s->n] = f;
	s->n++;
	free(buf);
	return 0;
}

static void sink_done(struct sink *s) {
	for (size_t i = 0; i < s->n; i++) {
		free(s->frames[i]);
	}
	s->n = 0;
}


static size_t n_counted;

static void count_event(void *userdata, const struct tr_cache_event *ev) {
	(void)userdata;
	(void)ev;
	n_counted++;
}

/* Thousands of tasks: the sid index finds each one, follows removals (expiry) and keeps
 * finding tasks added after some were dropped; the list keeps arrival order. */
static void test_many_tasks(void **state) {
	struct tr_cache *c = tr_cache_new(1000, count_event, NULL);
	const size_t n = 3000;
	char sid[40], rsid[40];
	size_t i = 0;

	(void)state;
	assert_non_null(c);
	for (i = 0; i < n; i++) {
		snprintf(sid, sizeof(sid), "WT%032zu", i);
		snprintf(rsid, sizeof(rsid), "WR%032zu", i);
		assert_int_equal(apply_res(c, "reservation.created", rsid, "pending", sid, "reserved",
			1, NULL, 0), 0);
	}
	assert_int_equal(tr_cache_count(c, false), n);
	for (i = 0; i < n; i++) {
		snprintf(sid, sizeof(sid), "WT%032zu", i);
		assert_non_null(tr_cache_get(c, sid));
		assert_string_equal(tr_cache_get(c, sid)->sid, sid);
	}
	assert_null(tr_cache_get(c, "WT" "99999999999999999999999999999999"));
	/* close every even task at t=0 and expire them; then add new ones */
	for (i = 0; i < n; i += 2) {
		snprintf(sid, sizeof(sid), "WT%032zu", i);
		snprintf(rsid, sizeof(rsid), "WR%032zu", i);
		assert_int_equal(apply_res(c, "reservation.rejected", rsid, "rejected", sid, "pending",
			2, NULL, 0), 0);
	}
	(void)tr_cache_expire(c, 1000);
	assert_int_equal(tr_cache_count(c, true), 0);
	assert_int_equal(tr_cache_count(c, false), n / 2);
	for (i = 0; i < n; i++) {
		snprintf(sid, sizeof(sid), "WT%032zu", i);
		if (i % 2) {
			assert_non_null(tr_cache_get(c, sid));
		} else {
			assert_null(tr_cache_get(c, sid));
		}
	}
	/* the last task was odd, so it is still the tail; dropping it too tests the tail link */
	snprintf(sid, sizeof(sid), "WT%032zu", n - 1);
	snprintf(rsid, sizeof(rsid), "WR%032zu", n - 1);
	assert_int_equal(apply_res(c, "reservation.rejected", rsid, "rejected", sid, "pending", 2,
		NULL, 2000), 0);
	(void)tr_cache_expire(c, 3000);
	assert_null(tr_cache_get(c, sid));
	for (i = n; i < n + 10; i++) {
		snprintf(sid, sizeof(sid), "WT%032zu", i);
		snprintf(rsid, sizeof(rsid), "WR%032zu", i);
		assert_int_equal(apply_res(c, "reservation.created", rsid, "pending", sid, "reserved",
			1, NULL, 3000), 0);
		assert_non_null(tr_cache_get(c, sid));
	}
	{
		/* arrival order: the odd survivors, then the ten new ones last */
		const struct tr_cache_task *t = tr_cache_first(c), *last = NULL;
		size_t seen = 0;

		for (; t; t = t->next) {
			last = t;
			seen++;
		}
		assert_int_equal(seen, n / 2 - 1 + 10);
		snprintf(sid, sizeof(sid), "WT%032zu", n + 9);
		assert_string_equal(last->sid, sid);
	}
	assert_true(n_counted > 0);
	tr_cache_free(c);
}

/* Each hub (each daemon run) has its own epoch, made without blocking; a string a client can
 * send back as it is. */
static void test_subs_epoch(void **state) {
	struct tr_subs *a = tr_subs_new(), *b = tr_subs_new();

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_string_not_equal(tr_subs_epoch(a), tr_subs_epoch(b));
	for (const char *p = tr_subs_epoch(a); *p; p++) {
		assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || *p == '-');
	}
	assert_true(strlen(tr_subs_epoch(a)) > 16);
	assert_true(strlen(tr_subs_epoch(a)) < TR_SUBS_EPOCH_MAX);
	tr_subs_free(a);
	tr_subs_free(b);
}

static void test_subs(void **state) {
	struct tr_subs *s = tr_subs_new();
	struct tr_cache *c = *state;
	struct sink all = { 0 }, flt = { 0 }, rep = { 0 };
	struct tr_json *ev = parse("[\"updated\",\"ready\"]"), *tk = parse("[\"" WT "\"]");
	struct tr_json *msg;
	char id1[24], id2[24], id3[24];
	struct tr_cache_event e;

	(void)c;
	assert_non_null(s);
	assert_int_equal(tr_subs_seq(s), 0);
	assert_int_equal(tr_subs_add(s, NULL, NULL, &all, sink_send, id1, sizeof(id1)), 0);
	assert_int_equal(tr_subs_add(s, ev, tk, &flt, sink_send, id2, sizeof(id2)), 0);
	assert_string_not_equal(id1, id2);
	/* only the names the daemon publishes: a filter that would match nothing is refused */
	{
		struct tr_json *bad = parse("[\"ready\",\"task.created\"]");

		assert_int_equal(tr_subs_add(s, bad, NULL, &rep, sink_send, id3, sizeof(id3)),
			-EINVAL);
		assert_int_equal(tr_subs_count(s), 2);
		tr_json_free(bad);
	}
	assert_int_equal(apply_res(c, "reservation.created", WR1, "pending", WT, "reserved", 1, NULL, 0), 0);
	e = (struct tr_cache_event){ .name = "updated", .task = tr_cache_get(c, WT),
		.reservation_sid = WR1, .flags = TR_CACHE_EV_STALE, .event_type = "task.updated" };
	assert_int_equal(tr_subs_publish_task(s, &e), 0);
	e.name = "wrapup";
	e.flags = TR_CACHE_EV_RESYNC | TR_CACHE_EV_VANISHED;
	assert_int_equal(tr_subs_publish_task(s, &e), 0);
	assert_int_equal(tr_subs_publish_daemon(s, "ready", NULL), 0);
	assert_int_equal(tr_subs_seq(s), 3);
	assert_int_equal(all.n, 3);
	assert_int_equal(flt.n, 2);
	msg = parse(flt.frames[0]);
	assert_string_equal(tr_json_get_string(msg, "method"), "event");
	assert_string_equal(tr_json_get_string(tr_json_get(msg, "params"), "subscription"), id2);
	assert_string_equal(tr_json_get_string(tr_json_get(msg, "params"), "taskSid"), WT);
	assert_string_equal(tr_json_get_string(tr_json_get(msg, "params"), "reservationSid"), WR1);
	assert_string_equal(tr_json_get_string(tr_json_get(msg, "params"), "version"), "1");
	assert_string_equal(tr_json_get_string(tr_json_get(msg, "params"), "eventType"), "task.updated");
	assert_true(tr_json_is(tr_json_get(tr_json_get(msg, "params"), "stale"), TR_JSON_TRUE));
	assert_null(tr_json_get(tr_json_get(msg, "params"), "resync"));
	tr_json_free(msg);
	msg = parse(all.frames[1]);
	assert_string_equal(tr_json_get_string(tr_json_get(msg, "params"), "event"), "wrapup");
	assert_true(tr_json_is(tr_json_get(tr_json_get(msg, "params"), "resync"), TR_JSON_TRUE));
	assert_true(tr_json_is(tr_json_get(tr_json_get(msg, "params"), "vanished"), TR_JSON_TRUE));
	assert_null(tr_json_get(tr_json_get(msg, "params"), "stale"));
	tr_json_free(msg);
	msg = parse(all.frames[2]);
	assert_string_equal(tr_json_get_string(tr_json_get(msg, "params"), "event"), "ready");
	assert_null(tr_json_get(tr_json_get(msg, "params"), "taskSid"));
	tr_json_free(msg);

	/* every notification names this run's epoch */
	msg = parse(all.frames[0]);
	assert_string_equal(tr_json_get_string(tr_json_get(msg, "params"), "epoch"),
		tr_subs_epoch(s));
	assert_int_equal(tr_json_get(tr_json_get(msg, "params"), "seq")->u.num.i, 1);
	tr_json_free(msg);

	/* replay from seq 2, of this epoch only */
	{
		const char *ep = tr_subs_epoch(s);

		assert_int_equal(tr_subs_check_since(s, ep, 0), TR_SUBS_GAP_EXPIRED);
		assert_int_equal(tr_subs_check_since(s, ep, 5), TR_SUBS_GAP_FUTURE);
		assert_int_equal(tr_subs_check_since(s, ep, 4), TR_SUBS_GAP_NONE);
		assert_int_equal(tr_subs_check_since(s, ep, 2), TR_SUBS_GAP_NONE);
		/* a seq that another run counted, or that no epoch qualifies, is never replayed:
		 * seq 2 of another daemon is not this one's seq 2 */
		assert_int_equal(tr_subs_check_since(s, NULL, 2), TR_SUBS_GAP_NO_EPOCH);
		assert_int_equal(tr_subs_check_since(s, "5f00-0000000000000001", 2),
			TR_SUBS_GAP_EPOCH);
		assert_string_equal(tr_subs_gap_str(TR_SUBS_GAP_EPOCH), "epoch");
		assert_string_equal(tr_subs_gap_str(TR_SUBS_GAP_NO_EPOCH), "no-epoch");
		assert_string_equal(tr_subs_gap_str(TR_SUBS_GAP_EXPIRED), "expired");
		assert_string_equal(tr_subs_gap_str(TR_SUBS_GAP_FUTURE), "future");
		assert_null(tr_subs_gap_str(TR_SUBS_GAP_NONE));
	}
	assert_int_equal(tr_subs_add(s, NULL, NULL, &rep, sink_send, id3, sizeof(id3)), 0);
	assert_int_equal(tr_subs_replay(s, id3, 2), 0);
	assert_int_equal(rep.n, 2);
	msg = parse(rep.frames[0]);
	assert_int_equal(tr_json_get(tr_json_get(msg, "params"), "seq")->u.num.i, 2);
	tr_json_free(msg);
	assert_int_equal(tr_subs_replay(s, "nope", 1), -ENOENT);

	/* remove */
	assert_int_equal(tr_subs_remove(s, id1, &flt), -ENOENT); /* not its owner */
	assert_int_equal(tr_subs_remove(s, id1, &all), 0);
	tr_subs_remove_owner(s, &flt);
	assert_int_equal(tr_subs_count(s), 1);
	assert_int_equal(tr_subs_publish_daemon(s, "tokenExpired", NULL), 0);
	assert_int_equal(all.n, 3);
	assert_int_equal(rep.n, 3);

	/* the ring forgets: since older than the oldest is gone */
	for (int i = 0; i < TR_EVENT_RING_SIZE; i++) {
		tr_subs_remove_owner(s, &rep);
		assert_int_equal(tr_subs_publish_daemon(s, "ready", NULL), 0);
	}
	assert_int_equal(tr_subs_oldest(s), tr_subs_seq(s) - TR_EVENT_RING_SIZE + 1);
	assert_int_equal(tr_subs_check_since(s, tr_subs_epoch(s), 1), TR_SUBS_GAP_EXPIRED);
	assert_int_equal(tr_subs_check_since(s, tr_subs_epoch(s), tr_subs_oldest(s)),
		TR_SUBS_GAP_NONE);
	assert_int_equal(tr_subs_published(s), tr_subs_seq(s));

	sink_done(&all);
	sink_done(&flt);
	sink_done(&rep);
	tr_json_free(ev);
	tr_json_free(tk);
	tr_subs_free(s);
}

/* A vanished task's event: finalState and its reason when the fetch failed. */
static void test_subs_vanished(void **state) {
	struct tr_subs *s = tr_subs_new();
	struct tr_cache *c = *state;
	struct sink all = { 0 };
	struct tr_cache_event e;
	const struct tr_json *p;
	struct tr_json *msg;
	int64_t status = 0;
	char id[24];

	assert_non_null(s);
	assert_int_equal(tr_subs_add(s, NULL, NULL, &all, sink_send, id, sizeof(id)), 0);
	assert_int_equal(apply_res(c, "reservation.created", WR1, "pending", WT, "reserved", 1, NULL, 0), 0);
	e = (struct tr_cache_event){ .name = "vanished", .task = tr_cache_get(c, WT),
		.reservation_sid = WR1, .flags = TR_CACHE_EV_RESYNC | TR_CACHE_EV_VANISHED,
		.event_type = "resync", .unknown_reason = "deleted", .http_status = 404 };
	assert_int_equal(tr_subs_publish_task(s, &e), 0);
	e.name = "completed";
	e.unknown_reason = NULL;
	e.http_status = 200;
	assert_int_equal(tr_subs_publish_task(s, &e), 0);
	assert_int_equal(all.n, 2);
	msg = parse(all.frames[0]);
	p = tr_json_get(msg, "params");
	assert_string_equal(tr_json_get_string(p, "event"), "vanished");
	assert_true(tr_json_is(tr_json_get(p, "vanished"), TR_JSON_TRUE));
	assert_string_equal(tr_json_get_string(p, "finalState"), "unknown");
	assert_string_equal(tr_json_get_string(p, "finalStateReason"), "deleted");
	assert_int_equal(tr_json_get_int(p, "httpStatus", &status), 0);
	assert_int_equal(status, 404);
	tr_json_free(msg);
	msg = parse(all.frames[1]);
	p = tr_json_get(msg, "params");
	assert_string_equal(tr_json_get_string(p, "event"), "completed");
	assert_null(tr_json_get(p, "finalState"));
	assert_null(tr_json_get(p, "finalStateReason"));
	assert_null(tr_json_get(p, "httpStatus"));
	tr_json_free(msg);
	sink_done(&all);
	tr_subs_free(s);
}


/* ---- replay texts written from the task records (subs.c's struct lazy) ---- */

static void lazy_publish(void *userdata, const struct tr_cache_event *ev) {
	assert_int_equal(tr_subs_publish_task(userdata, ev), 0);
}

static void lazy_change(void *userdata, const struct tr_cache_task *t, bool freeing) {
	tr_subs_task_changing(userdata, t, freeing);
}

/* A frame's text after its subscription id: the same for every subscriber. */
static const char *after_id(const char *frame) {
	const char *p = strstr(frame, "\"subscription\":\"");

	assert_non_null(p);
	p = strchr(p + 16, '"');
	assert_non_null(p);
	return p;
}

/* Every event replayed from 1 is the frame that was sent live. */
static void assert_replay_same(struct tr_subs *s, const struct sink *live) {
	struct sink rep = { 0 };
	char id[24];

	assert_int_equal(tr_subs_add(s, NULL, NULL, &rep, sink_send, id, sizeof(id)), 0);
	assert_int_equal(tr_subs_replay(s, id, 1), 0);
	assert_int_equal(rep.n, live->n);
	for (size_t i = 0; i < rep.n; i++) {
		assert_string_equal(after_id(rep.frames[i]), after_id(live->frames[i]));
	}
	tr_subs_remove_owner(s, &rep);
	sink_done(&rep);
}

/* The ring lets go of an event's text while its task record writes it the same, and the
 * replay still gives every event as it was sent: through changes of the record (in the
 * call that published the event and in later ones), a resync that changes nothing, the
 * worker's identity changing, and the record being freed. Run without and with check mode
 * (texts kept and compared). */
static void run_lazy(bool check) {
	struct tr_subs *s = tr_subs_new();
	struct tr_cache *c;
	struct tr_subs_ring_stats st;
	struct sink live = { 0 };
	char id[24];

	assert_non_null(s);
	tr_subs_set_check(s, check);
	c = tr_cache_new(1000, lazy_publish, s);
	assert_non_null(c);
	tr_cache_set_change_cb(c, lazy_change, s);
	tr_cache_set_ident(c, "AC1", "WS1", "WK1");
	assert_int_equal(tr_subs_add(s, NULL, NULL, &live, sink_send, id, sizeof(id)), 0);

	assert_int_equal(apply_res(c, "reservation.created", WR1, "pending", WT, "reserved", 1,
		NULL, 0), 0);
	assert_int_equal(live.n, 1);
	tr_subs_ring_stats(s, &st);
	assert_int_equal(st.events, 1);
	assert_int_equal(st.from_records, 0); /* a candidate until settled */
	assert_true(st.text_bytes > 0);
	tr_subs_settle(s);
	tr_subs_ring_stats(s, &st);
	assert_int_equal(st.from_records, 1);
	assert_int_equal(st.text_bytes == 0, !check);
	assert_replay_same(s, &live);

	/* a change of the record: the event is written out first, and stays text after */
	assert_int_equal(apply_res(c, "reservation.accepted", WR1, "accepted", WT, "assigned", 2,
		NULL, 0), 0);
	assert_true(live.n >= 2);
	tr_subs_settle(s);
	tr_subs_ring_stats(s, &st);
	assert_int_equal(st.events, live.n);
	assert_int_equal(st.from_records, live.n - 1);
	assert_replay_same(s, &live);

	/* a resync that finds the task as it was: the events are let go again */
	{
		char buf[2048];
		struct tr_json *j;
		size_t before = live.n;

		snprintf(buf, sizeof(buf), "{\"sid\":\"%s\",\"worker_sid\":\"WK1\","
			"\"reservation_status\":\"accepted\",\"task\":%s}", WR1,
			task_text(WT, "assigned", 2));
		j = parse(buf);
		tr_cache_resync_begin(c);
		assert_int_equal(tr_cache_resync_add(c, j), 0);
		assert_int_equal(tr_cache_resync_end(c, 0, 0), 0);
		tr_json_free(j);
		assert_int_equal(live.n, before); /* nothing changed, nothing said */
		tr_subs_ring_stats(s, &st);
		assert_int_equal(st.from_records, 0); /* written out by the touch */
		tr_subs_settle(s);
		tr_subs_ring_stats(s, &st);
		assert_int_equal(st.from_records, live.n - 1);
		assert_replay_same(s, &live);
	}

	/* the worker's identity is in every Reservation object: a new one writes them out */
	tr_cache_set_ident(c, "AC1", "WS1", "WK9");
	tr_subs_ring_stats(s, &st);
	assert_int_equal(st.from_records, 0);
	assert_replay_same(s, &live);
	tr_cache_set_ident(c, "AC1", "WS1", "WK1");

	/* wrap-up, completion, then the record freed at the end of its grace */
	assert_int_equal(apply_res(c, "reservation.wrapup", WR1, "wrapping", WT, "wrapping", 3,
		NULL, 10), 0);
	assert_int_equal(apply_res(c, "reservation.completed", WR1, "completed", WT, "completed", 4,
		NULL, 20), 0);
	tr_subs_settle(s);
	tr_subs_ring_stats(s, &st);
	assert_true(st.from_records >= 1);
	assert_replay_same(s, &live);
	assert_non_null(tr_cache_get(c, WT));
	assert_true(tr_cache_expire(c, 20 + 1000) >= 0);
	assert_null(tr_cache_get(c, WT));
	tr_subs_ring_stats(s, &st);
	assert_int_equal(st.from_records, 0);
	assert_int_equal(st.events, live.n);
	assert_replay_same(s, &live);

	/* a record still referred to when the hub goes first (the daemon's order) */
	assert_int_equal(apply_res(c, "reservation.created", WR2, "pending", WT2, "reserved", 1,
		NULL, 30), 0);
	tr_subs_settle(s);
	sink_done(&live);
	tr_subs_free(s);
	assert_int_equal(tr_cache_get(c, WT2)->subs_holds, 0);
	tr_cache_free(c);
}

static void test_subs_lazy(void **state) {
	(void)state;
	run_lazy(false);
	run_lazy(true);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_created_accepted_json, setup, teardown),
		cmocka_unit_test(test_subs_lazy),
		cmocka_unit_test_setup_teardown(test_version_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fanout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_and_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_and_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transfer_event_then_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transfer_reply_then_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transfer_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transfer_adopted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_embedded_transfers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vanished, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vanished_then_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subs, setup, teardown),
		cmocka_unit_test(test_subs_epoch),
		cmocka_unit_test_setup_teardown(test_subs_vanished, setup, teardown),
		cmocka_unit_test(test_many_tasks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
