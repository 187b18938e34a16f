/*
 * Unit tests of the Worker side's models and request builders: worker-state.c (the worker,
 * activities and channels; frames, REST answers, resync events), the cache's reservations
 * (task-res.c, REST answers under the version rule, ended reservations, lookups by WR and WT
 * sid) and worker-methods.c's builders, each request compared with the official SDK's
 * (reservation-worker.md §2.1, §3.2, §4.3, §5.2) byte for byte, and every bad parameter
 * refused before anything is built.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"
#include "json.h"
#include "methods.h"
#include "rpc.h"
#include "task-json.h"
#include "task-methods.h"
#include "worker-methods.h"
#include "worker-state.h"

/* The spec's identifiers. */
#define AC "AC290492e5db2c007fd978ce6e9465e980"
#define WS "WS0acbd5dc35263341780bd09152200e87"
#define WK "WKe26e96b8336b262c51a660cfb175a96b"
#define WR "WR8a81d7d820fcf01ee85c778912a385f0"
#define WT "WT0fbc4e6335fcc52ed96c632c85599ed7"
#define AVAILABLE "WA209f5051056815b85e6c86c9e276cc7d"
#define OFFLINE "WAe3eebd4b4618a04b18a0ac6acc4e49e4"
#define WC "WCc77930f820e8630895d68934a37b0021"

static struct tr_json *parse(const char *s) {
	struct tr_json *j = NULL;

	assert_int_equal(tr_json_parse(s, strlen(s), &j, NULL), 0);
	return j;
}

static const char *task_text(const char *status, int version) {
	static char b[1024];

	snprintf(b, sizeof(b),
		"{\"account_sid\":\"" AC "\",\"workspace_sid\":\"" WS "\",\"sid\":\"" WT "\","
		"\"assignment_status\":\"%s\",\"attributes\":\"{\\\"lang\\\":\\\"fr\\\"}\","
		"\"addons\":\"{}\",\"age\":1,\"priority\":0,\"reason\":null,\"timeout\":3600,"
		"\"queue_sid\":\"WQ1\",\"queue_name\":\"Q\",\"workflow_sid\":\"WW1\","
		"\"workflow_name\":\"W\",\"task_channel_sid\":\"TC1\","
		"\"task_channel_unique_name\":\"voice\",\"routing_target\":null,"
		"\"date_created\":1735819200,\"date_updated\":1735819200,"
		"\"virtual_start_time\":1735819200,\"version\":%d}", status, version);
	return b;
}

/* A reservation frame's payload (the event shape). */
static const char *res_text(const char *status, int version, const char *task_status,
	int task_version) {
	static char b[2048];

	snprintf(b, sizeof(b),
		"{\"account_sid\":\"" AC "\",\"workspace_sid\":\"" WS "\",\"sid\":\"" WR "\","
		"\"worker_sid\":\"" WK "\",\"reservation_status\":\"%s\",\"reservation_timeout\":120,"
		"\"date_created\":1735819320,\"date_updated\":1735819330,\"version\":%d,\"task\":%s}",
		status, version, task_text(task_status, task_version));
	return b;
}

static const char *worker_text(const char *act_sid, const char *act_name, bool available,
	int version) {
	static char b[1024];

	snprintf(b, sizeof(b),
		"{\"account_sid\":\"" AC "\",\"workspace_sid\":\"" WS "\",\"sid\":\"" WK "\","
		"\"friendly_name\":\"alice\",\"activity_sid\":\"%s\",\"activity_name\":\"%s\","
		"\"available\":%s,\"attributes\":\"{\\\"skills\\\":[\\\"fr\\\"]}\","
		"\"date_created\":1735819000,\"date_updated\":1735819100,"
		"\"date_status_changed\":1735819100,\"version\":%d}",
		act_sid, act_name, available ? "true" : "false", version);
	return b;
}

static const char *channel_text(int capacity, int available) {
	static char b[1024];

	snprintf(b, sizeof(b),
		"{\"account_sid\":\"" AC "\",\"workspace_sid\":\"" WS "\",\"sid\":\"" WC "\","
		"\"worker_sid\":\"" WK "\",\"task_channel_sid\":\"TC1\","
		"\"task_channel_unique_name\":\"voice\",\"configured_capacity\":%d,\"available\":%d,"
		"\"assigned_tasks\":0,\"available_capacity_percentage\":100,"
		"\"date_created\":1735819000,\"date_updated\":1735819100,"
		"\"last_reserved_time\":1735819200000,\"version\":3}", capacity, available);
	return b;
}

/* ---- events seen ---- */

static char cache_seen[48];
static size_t n_cache_seen;

static void on_cache_event(void *ud, const struct tr_cache_event *ev) {
	(void)ud;
	n_cache_seen++;
	snprintf(cache_seen, sizeof(cache_seen), "%s%s", ev->name,
		ev->flags & TR_CACHE_EV_RESYNC ? "+resync" : "");
	if (strncmp(ev->name, "reservation", 11) == 0) {
		assert_non_null(ev->reservation); /* every reservation event carries it */
	}
}

static char seen[16][40];
static size_t n_seen;

static void on_ws_event(void *ud, const struct tr_wstate *ws, const struct tr_wstate_event *ev) {
	(void)ud;
	(void)ws;
	if (n_seen < 16) {
		snprintf(seen[n_seen++], sizeof(seen[0]), "%s%s", ev->name,
			ev->flags & TR_WSTATE_EV_RESYNC ? "+resync" : "");
	}
}

static void ws_feed(struct tr_wstate *ws, const char *type, const char *text) {
	struct tr_json *j = parse(text);

	if (strcmp(type, "worker") == 0) {
		assert_int_equal(tr_wstate_resync_worker(ws, j), 0);
	} else if (strcmp(type, "activity") == 0) {
		assert_int_equal(tr_wstate_resync_activity(ws, j), 0);
	} else {
		assert_int_equal(tr_wstate_resync_channel(ws, j), 0);
	}
	tr_json_free(j);
}

/* A worker model after one resync: alice Available (v5), Available and Offline, one channel. */
static struct tr_wstate *make_wstate(void) {
	struct tr_wstate *ws = tr_wstate_new(on_ws_event, NULL);

	assert_non_null(ws);
	tr_wstate_resync_begin(ws);
	ws_feed(ws, "worker", worker_text(AVAILABLE, "Available", true, 5));
	ws_feed(ws, "activity", "{\"sid\":\"" AVAILABLE "\",\"friendly_name\":\"Available\","
		"\"available\":true,\"date_created\":1,\"date_updated\":2}");
	ws_feed(ws, "activity", "{\"sid\":\"" OFFLINE "\",\"friendly_name\":\"Offline\","
		"\"available\":false,\"date_created\":1,\"date_updated\":2}");
	ws_feed(ws, "channel", channel_text(1, 1));
	assert_int_equal(tr_wstate_resync_end(ws, 0, true), 0);
	n_seen = 0;
	return ws;
}

static struct tr_cache *make_cache(void) {
	struct tr_cache *c = tr_cache_new(0, NULL, NULL);
	struct tr_json *j = parse(res_text("pending", 0, "reserved", 1));

	assert_non_null(c);
	tr_cache_set_ident(c, AC, WS, WK);
	assert_int_equal(tr_cache_apply(c, "reservation.created", j, 0), 0);
	tr_json_free(j);
	return c;
}

/* ---- the worker model ---- */

static void test_wstate_frames(void **state) {
	struct tr_wstate *ws = make_wstate();
	struct tr_json *j, *o;
	size_t n = 0;
	(void)state;

	assert_int_equal(tr_wstate_get_worker(ws)->version, 5);
	/* the SDK's local bumps (§4.5) */
	j = parse("{}");
	assert_int_equal(tr_wstate_apply(ws, "reservation.created", j), 0);
	tr_json_free(j);
	assert_int_equal(tr_wstate_get_worker(ws)->version, 6);
	j = parse(channel_text(3, 1));
	assert_int_equal(tr_wstate_apply(ws, "worker.capacity.update", j), 0);
	tr_json_free(j);
	assert_int_equal(tr_wstate_get_worker(ws)->version, 7);
	assert_int_equal(tr_wstate_channels(ws, &n)[0].capacity, 3);
	j = parse(channel_text(3, 0));
	assert_int_equal(tr_wstate_apply(ws, "worker.channel.availability.update", j), 0);
	tr_json_free(j);
	assert_false(tr_wstate_channels(ws, &n)[0].available);
	/* an unknown channel: nothing changes but the bump, the caller resyncs */
	j = parse("{\"sid\":\"WCother\",\"configured_capacity\":9}");
	assert_int_equal(tr_wstate_apply(ws, "worker.capacity.update", j), -ENOENT);
	/* the same one again: its resync was asked already */
	assert_int_equal(tr_wstate_apply(ws, "worker.capacity.update", j), -EALREADY);
	tr_json_free(j);
	assert_int_equal(tr_wstate_get_counters(ws)->unknown_channel, 2);
	j = parse("{\"configured_capacity\":9}");
	assert_int_equal(tr_wstate_apply(ws, "worker.capacity.update", j), -EBADMSG);
	tr_json_free(j);
	/* the activity and the version follow the frame, whatever the SDK keeps */
	j = parse(worker_text(OFFLINE, "Offline", false, 12));
	assert_int_equal(tr_wstate_apply(ws, "worker.activity.update", j), 0);
	tr_json_free(j);
	assert_string_equal(tr_wstate_get_worker(ws)->activity_sid, OFFLINE);
	assert_false(tr_wstate_get_worker(ws)->available);
	assert_int_equal(tr_wstate_get_worker(ws)->version, 12);
	/* a late frame older than that changes nothing (still published, like the SDK) */
	j = parse(worker_text(AVAILABLE, "Available", true, 11));
	assert_int_equal(tr_wstate_apply(ws, "worker.activity.update", j), 0);
	tr_json_free(j);
	assert_string_equal(tr_wstate_get_worker(ws)->activity_sid, OFFLINE);
	assert_int_equal(tr_wstate_get_counters(ws)->stale, 1);
	n_seen--; /* that activityUpdated */
	/* a malformed worker frame still publishes, and changes nothing */
	j = parse("{\"activity_sid\":\"x\"}");
	assert_int_equal(tr_wstate_apply(ws, "worker.attributes.update", j), -EBADMSG);
	tr_json_free(j);
	assert_string_equal(tr_wstate_get_worker(ws)->activity_sid, OFFLINE);
	assert_int_equal(n_seen, 4);
	assert_string_equal(seen[0], "channelCapacityUpdated");
	assert_string_equal(seen[1], "channelAvailabilityUpdated");
	assert_string_equal(seen[2], "activityUpdated");
	assert_string_equal(seen[3], "attributesUpdated");
	/* the protocol's objects */
	o = tr_wstate_worker_json(ws);
	assert_string_equal(tr_json_get_string(o, "activityName"), "Offline");
	assert_string_equal(tr_json_get_string(o, "version"), "12");
	assert_string_equal(tr_json_get_string(o, "name"), "alice");
	{
		char *t = NULL;

		assert_int_equal(tr_json_dump(tr_json_get(o, "attributes"), &t, NULL), 0);
		assert_string_equal(t, "{\"skills\":[\"fr\"]}");
		free(t);
	}
	tr_json_free(o);
	o = tr_wstate_activity_json(ws, tr_wstate_find_activity(ws, "Offline"));
	{
		bool cur = false;

		assert_int_equal(tr_json_get_bool(o, "isCurrent", &cur), 0);
		assert_true(cur);
	}
	tr_json_free(o);
	o = tr_wstate_channel_json(&tr_wstate_channels(ws, &n)[0]);
	assert_int_equal(tr_json_get(o, "lastReservedTime")->u.num.i, 1735819200000LL);
	tr_json_free(o);
	/* by sid, then by exact name */
	assert_non_null(tr_wstate_find_activity(ws, AVAILABLE));
	assert_non_null(tr_wstate_find_activity(ws, "Available"));
	assert_null(tr_wstate_find_activity(ws, "available"));
	tr_wstate_free(ws);
}

static void test_wstate_resync(void **state) {
	struct tr_wstate *ws = make_wstate();
	(void)state;

	/* a failed resync leaves the model as it was */
	tr_wstate_resync_begin(ws);
	ws_feed(ws, "worker", worker_text(OFFLINE, "Offline", false, 9));
	assert_int_equal(tr_wstate_resync_end(ws, -EIO, true), 0);
	assert_string_equal(tr_wstate_get_worker(ws)->activity_sid, AVAILABLE);
	assert_int_equal(n_seen, 0);
	/* what changed while away is published, marked resync */
	tr_wstate_resync_begin(ws);
	ws_feed(ws, "worker", worker_text(OFFLINE, "Offline", false, 9));
	ws_feed(ws, "activity", "{\"sid\":\"" OFFLINE "\",\"friendly_name\":\"Offline\"}");
	ws_feed(ws, "channel", channel_text(2, 0));
	assert_int_equal(tr_wstate_resync_end(ws, 0, true), 0);
	assert_int_equal(n_seen, 3);
	assert_string_equal(seen[0], "channelCapacityUpdated+resync");
	assert_string_equal(seen[1], "channelAvailabilityUpdated+resync");
	assert_string_equal(seen[2], "activityUpdated+resync");
	assert_int_equal(tr_wstate_get_worker(ws)->version, 9);
	/* the REST answer of a worker write: every field, nothing published */
	n_seen = 0;
	{
		struct tr_json *j = parse(worker_text(AVAILABLE, "Available", true, 10));

		assert_int_equal(tr_wstate_apply_worker(ws, j), 0);
		tr_json_free(j);
	}
	assert_string_equal(tr_wstate_get_worker(ws)->activity_name, "Available");
	assert_int_equal(n_seen, 0);
	/* an answer older than the worker held is not applied */
	{
		struct tr_json *j = parse(worker_text(OFFLINE, "Offline", false, 9));

		assert_int_equal(tr_wstate_apply_worker(ws, j), 1);
		tr_json_free(j);
	}
	assert_string_equal(tr_wstate_get_worker(ws)->activity_name, "Available");
	/* a resync whose GET is older than an answer that came in meanwhile keeps the answer */
	tr_wstate_resync_begin(ws);
	ws_feed(ws, "worker", worker_text(OFFLINE, "Offline", false, 9));
	assert_int_equal(tr_wstate_resync_end(ws, 0, true), 0);
	assert_string_equal(tr_wstate_get_worker(ws)->activity_name, "Available");
	assert_int_equal(n_seen, 0);
	/* another worker's session: taken whatever its version, and nothing "changed" */
	tr_wstate_resync_begin(ws);
	ws_feed(ws, "worker", worker_text(OFFLINE, "Offline", false, 1));
	ws_feed(ws, "channel", channel_text(7, 1));
	assert_int_equal(tr_wstate_resync_end(ws, 0, false), 0);
	assert_string_equal(tr_wstate_get_worker(ws)->activity_name, "Offline");
	assert_int_equal(tr_wstate_get_worker(ws)->version, 1);
	assert_int_equal(n_seen, 0);
	tr_wstate_free(ws);
}

/* ---- the cache's reservations ---- */

static void test_cache_reservations(void **state) {
	struct tr_cache *c = make_cache();
	const struct tr_cache_task *t = NULL;
	const struct tr_cache_res *r;
	struct tr_json *j;
	(void)state;

	r = tr_cache_find_res(c, WR, &t);
	assert_non_null(r);
	assert_string_equal(t->sid, WT);
	assert_int_equal(r->version, 0);
	assert_int_equal(r->timeout, 120);
	/* a task sid names its live reservation */
	assert_ptr_equal(tr_cache_find_res(c, WT, NULL), r);
	/* the REST answer of accept: the instance shape, no timeout (kept, unlike the SDK) */
	j = parse("{\"sid\":\"" WR "\",\"reservation_status\":\"accepted\",\"version\":1,"
		  "\"task_sid\":\"" WT "\",\"date_updated\":1735819400}");
	assert_int_equal(tr_cache_apply_res(c, j), 0);
	tr_json_free(j);
	r = tr_cache_find_res(c, WR, &t);
	assert_string_equal(r->status, "accepted");
	assert_int_equal(r->version, 1);
	assert_int_equal(r->timeout, 120);
	assert_string_equal(t->status, "reserved"); /* the task moves with its own events */
	/* an older answer does not roll it back */
	j = parse("{\"sid\":\"" WR "\",\"reservation_status\":\"pending\",\"version\":0}");
	assert_int_equal(tr_cache_apply_res(c, j), 1);
	tr_json_free(j);
	assert_string_equal(tr_cache_find_res(c, WR, NULL)->status, "accepted");
	/* the event shape (fetchLatestVersion) carries the task too */
	j = parse(res_text("accepted", 1, "assigned", 2));
	assert_int_equal(tr_cache_apply_res(c, j), 0);
	tr_json_free(j);
	assert_string_equal(tr_cache_get(c, WT)->status, "assigned");
	/* unknown and malformed */
	j = parse("{\"sid\":\"WRnope\",\"reservation_status\":\"accepted\"}");
	assert_int_equal(tr_cache_apply_res(c, j), -ENOENT);
	tr_json_free(j);
	j = parse("[]");
	assert_int_equal(tr_cache_apply_res(c, j), -EBADMSG);
	tr_json_free(j);
	/* the cleanup frame ends it: still found by its sid, not by the task's */
	j = parse(res_text("completed", 3, "completed", 4));
	assert_int_equal(tr_cache_apply(c, "reservation.completed", j, 0), 0);
	tr_json_free(j);
	r = tr_cache_find_res(c, WR, NULL);
	assert_non_null(r);
	assert_string_equal(r->status, "completed");
	assert_null(tr_cache_find_res(c, WT, NULL));
	/* a late cleanup frame older than the record still ends it with the event's status */
	j = parse(res_text("pending", 0, "reserved", 1));
	{
		struct tr_cache *c2 = make_cache();
		struct tr_json *acc = parse(res_text("accepted", 2, "assigned", 2));

		assert_int_equal(tr_cache_apply(c2, "reservation.accepted", acc, 0), 0);
		assert_int_equal(tr_cache_apply(c2, "reservation.rejected", j, 0), 0);
		assert_string_equal(tr_cache_find_res(c2, WR, NULL)->status, "rejected");
		tr_json_free(acc);
		tr_cache_free(c2);
	}
	tr_json_free(j);
	/* a resync that lists the task under another reservation: the old one is gone, its
	 * fetch says how it ended, and that is published (marked resync) */
	{
		struct tr_cache *c3 = tr_cache_new(0, on_cache_event, NULL);
		struct tr_json *p = parse(res_text("pending", 0, "reserved", 1));
		char other[2048];

		assert_int_equal(tr_cache_apply(c3, "reservation.created", p, 0), 0);
		tr_json_free(p);
		snprintf(other, sizeof(other), "%s", res_text("pending", 0, "reserved", 3));
		memcpy(strstr(other, WR), "WRffffffffffffffffffffffffffffffff", 34);
		tr_cache_resync_begin(c3);
		p = parse(other);
		assert_int_equal(tr_cache_resync_add(c3, p), 0);
		tr_json_free(p);
		assert_int_equal(tr_cache_resync_end(c3, 0, 0), 0);
		assert_string_equal(tr_cache_res_gone_next(c3), WR);
		assert_int_equal(tr_cache_res_gone_fetching(c3, WR), 0);
		assert_null(tr_cache_res_gone_next(c3));
		p = parse("{\"sid\":\"" WR "\",\"reservation_status\":\"timeout\",\"version\":1}");
		n_cache_seen = 0;
		assert_int_equal(tr_cache_res_gone_resolve(c3, WR, p), 0);
		tr_json_free(p);
		assert_int_equal(n_cache_seen, 1);
		assert_string_equal(cache_seen, "reservationTimeout+resync");
		assert_int_equal(tr_cache_res_gone_resolve(c3, WR, NULL), -ENOENT);
		assert_string_equal(tr_cache_find_res(c3, WR, NULL)->status, "timeout");
		tr_cache_free(c3);
	}
	/* its object */
	j = tr_task_json_res_tree(r, tr_cache_get(c, WT), tr_cache_get_ident(c), true);
	assert_string_equal(tr_json_get_string(j, "workerSid"), WK);
	assert_string_equal(tr_json_get_string(j, "accountSid"), AC);
	assert_string_equal(tr_json_get_string(j, "version"), "3");
	assert_string_equal(tr_json_get_string(tr_json_get(j, "task"), "sid"), WT);
	assert_null(tr_json_get(j, "canceledReasonCode"));
	tr_json_free(j);
	tr_cache_free(c);
}

/* ---- requests: exactly the SDK's ---- */

static void test_requests(void **state) {
	static const struct {
		const char *method, *params;
		bool version_check;
		const char *path, *http, *api, *body;
		int64_t if_match;
	} cases[] = {
		/* §3.2 */
		{ "reservation.accept", "{\"sid\":\"" WR "\"}", true,
			"Workspaces/" WS "/Workers/" WK "/Reservations/" WR, "POST", "v1",
			"{\"ReservationStatus\":\"accepted\"}", 0 },
		{ "reservation.accept", "{\"sid\":\"" WT "\"}", false,
			"Workspaces/" WS "/Workers/" WK "/Reservations/" WR, "POST", "v1",
			"{\"ReservationStatus\":\"accepted\"}", -1 },
		/* the spec's example */
		{ "reservation.reject", "{\"sid\":\"" WR "\",\"activitySid\":\"" OFFLINE "\"}", true,
			"Workspaces/" WS "/Workers/" WK "/Reservations/" WR, "POST", "v1",
			"{\"ReservationStatus\":\"rejected\",\"WorkerActivitySid\":\"" OFFLINE "\"}", 0 },
		{ "reservation.reject", "{\"sid\":\"" WR "\"}", true,
			"Workspaces/" WS "/Workers/" WK "/Reservations/" WR, "POST", "v1",
			"{\"ReservationStatus\":\"rejected\"}", 0 },
		{ "reservation.wrap", "{\"sid\":\"" WR "\"}", true,
			"Workspaces/" WS "/Workers/" WK "/Reservations/" WR, "POST", "v1",
			"{\"ReservationStatus\":\"wrapping\"}", 0 },
		{ "reservation.complete", "{\"sid\":\"" WR "\"}", true,
			"Workspaces/" WS "/Workers/" WK "/Reservations/" WR, "POST", "v1",
			"{\"ReservationStatus\":\"completed\"}", 0 },
		/* options after the fixed members, in the caller's order, with their JSON types */
		{ "reservation.call", "{\"sid\":\"" WR "\",\"to\":\"+2\",\"from\":\"+1\","
			"\"url\":\"https://u\",\"timeout\":25,\"accept\":true,\"record\":\"r\","
			"\"statusCallbackUrl\":\"https://s\"}", true,
			"Workspaces/" WS "/Workers/" WK "/Reservations/" WR, "POST", "v1",
			"{\"Instruction\":\"call\",\"CallFrom\":\"+1\",\"CallUrl\":\"https://u\","
			"\"CallTo\":\"+2\",\"CallTimeout\":25,\"CallAccept\":true,\"CallRecord\":\"r\","
			"\"CallStatusCallbackUrl\":\"https://s\"}", -1 },
		{ "reservation.dequeue", "{\"sid\":\"" WR "\"}", true,
			"Workspaces/" WS "/Workers/" WK "/Reservations/" WR, "POST", "v1",
			"{\"Instruction\":\"dequeue\"}", -1 },
		{ "reservation.dequeue", "{\"sid\":\"" WR "\",\"from\":\"+1\",\"to\":\"+2\","
			"\"postWorkActivitySid\":\"" OFFLINE "\",\"record\":\"record-from-answer\","
			"\"timeout\":10,\"statusCallbackUrl\":\"https://s\","
			"\"statusCallbackEvents\":\"initiated,completed\"}", true,
			"Workspaces/" WS "/Workers/" WK "/Reservations/" WR, "POST", "v1",
			"{\"Instruction\":\"dequeue\",\"DequeueFrom\":\"+1\",\"DequeueTo\":\"+2\","
			"\"DequeuePostWorkActivitySid\":\"" OFFLINE "\",\"DequeueRecord\":"
			"\"record-from-answer\",\"DequeueTimeout\":10,\"DequeueStatusCallbackUrl\":"
			"\"https://s\",\"DequeueStatusCallbackEvents\":\"initiated,completed\"}", -1 },
		{ "reservation.redirect", "{\"sid\":\"" WR "\",\"accept\":false,\"callSid\":\"CA1\","
			"\"url\":\"https://r\"}", true,
			"Workspaces/" WS "/Workers/" WK "/Reservations/" WR, "POST", "v1",
			"{\"Instruction\":\"redirect\",\"RedirectCallSid\":\"CA1\",\"RedirectUrl\":"
			"\"https://r\",\"RedirectAccept\":false}", -1 },
		/* every option upper-first */
		{ "reservation.conference", "{\"sid\":\"" WR "\",\"endConferenceOnExit\":true,"
			"\"beep\":\"false\",\"conferenceRecord\":true,\"maxParticipants\":5,"
			"\"from\":\"+1\",\"beepOnCustomerEntrance\":false,\"region\":\"ie1\"}", true,
			"Workspaces/" WS "/Workers/" WK "/Reservations/" WR, "POST", "v1",
			"{\"Instruction\":\"conference\",\"EndConferenceOnExit\":true,\"Beep\":"
			"\"false\",\"ConferenceRecord\":true,\"MaxParticipants\":5,\"From\":\"+1\","
			"\"BeepOnCustomerEntrance\":false,\"Region\":\"ie1\"}", -1 },
		{ "reservation.updateParticipant", "{\"sid\":\"" WR "\"}", true,
			"Workspaces/" WS "/Workers/" WK "/WorkerParticipant", "POST", "v2",
			"{\"ReservationSid\":\"" WR "\"}", -1 },
		{ "reservation.updateParticipant", "{\"sid\":\"" WR "\",\"mute\":true,"
			"\"endConferenceOnExit\":false,\"beepOnExit\":true}", true,
			"Workspaces/" WS "/Workers/" WK "/WorkerParticipant", "POST", "v2",
			"{\"ReservationSid\":\"" WR "\",\"Mute\":true,\"EndConferenceOnExit\":false,"
			"\"BeepOnExit\":true}", -1 },
		{ "reservation.fetchLatestVersion", "{\"sid\":\"" WR "\"}", true,
			"Workspaces/" WS "/Workers/" WK "/Reservations/" WR, "GET", "v1", "{}", -1 },
		/* §4.3, §5.2 */
		{ "worker.setAttributes", "{\"attributes\":{\"skills\":[\"de\"],\"n\":1}}", true,
			"Workspaces/" WS "/Workers/" WK, "POST", "v1",
			"{\"Attributes\":{\"skills\":[\"de\"],\"n\":1}}", 5 },
		{ "worker.setAttributes", "{\"attributes\":{}}", false,
			"Workspaces/" WS "/Workers/" WK, "POST", "v1", "{\"Attributes\":{}}", -1 },
		{ "worker.fetchLatestVersion", "{}", true, "Workspaces/" WS "/Workers/" WK, "GET", "v1",
			"{}", -1 },
		{ "worker.setActivity", "{\"activity\":\"Offline\"}", true,
			"Workspaces/" WS "/Workers/" WK, "POST", "v1",
			"{\"ActivitySid\":\"" OFFLINE "\"}", 5 },
		{ "worker.setActivity", "{\"activity\":\"" OFFLINE "\",\"rejectPendingReservations\":true}",
			true, "Workspaces/" WS "/Workers/" WK, "POST", "v1",
			"{\"ActivitySid\":\"" OFFLINE "\",\"RejectPendingReservations\":true}", 5 },
		/* false is sent too (§9.8), also on an available activity */
		{ "worker.setActivity", "{\"activity\":\"Available\",\"rejectPendingReservations\":false}",
			true, "Workspaces/" WS "/Workers/" WK, "POST", "v1",
			"{\"ActivitySid\":\"" AVAILABLE "\",\"RejectPendingReservations\":false}", 5 },
		{ "worker.createTask", "{\"to\":\"+2\",\"from\":\"+1\",\"workflowSid\":\"WW1\","
			"\"taskQueueSid\":\"WQ1\"}", true, "Workspaces/" WS "/Tasks", "POST", "v1",
			"{\"WorkflowSid\":\"WW1\",\"TaskQueueSid\":\"WQ1\",\"RoutingTarget\":\"" WK "\","
			"\"Attributes\":{\"outbound_to\":\"+2\",\"from\":\"+1\"}}", -1 },
		{ "worker.createTask", "{\"to\":\"+2\",\"from\":\"+1\",\"workflowSid\":\"WW1\","
			"\"taskQueueSid\":\"WQ1\",\"taskChannelSid\":\"TC1\",\"attributes\":{\"from\":\"x\","
			"\"a\":1},\"virtualStartTime\":\"2025-11-24T15:30:45.123Z\","
			"\"taskChannelUniqueName\":\"voice\"}", true, "Workspaces/" WS "/Tasks", "POST", "v1",
			"{\"WorkflowSid\":\"WW1\",\"TaskQueueSid\":\"WQ1\",\"RoutingTarget\":\"" WK "\","
			"\"VirtualStartTime\":\"2025-11-24T15:30:45Z\",\"TaskChannelSid\":\"TC1\","
			"\"TaskChannelUniqueName\":\"voice\",\"Attributes\":{\"from\":\"+1\",\"a\":1,"
			"\"outbound_to\":\"+2\"}}", -1 },
	};
	struct tr_cache *c = make_cache();
	struct tr_wstate *ws = make_wstate();
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tr_cache_task *t = NULL;
		const char *sid;
		struct tr_json *p = parse(cases[i].params);
		struct tr_methods_req r = { 0 };
		struct tr_methods_err e = { 0 };
		struct tr_methods_ctx x = { .wstate = ws, .workspace_sid = WS, .worker_sid = WK,
			.version_check = cases[i].version_check };
		char *body = NULL;
		int rc;

		sid = tr_json_get_string(p, "sid");
		x.res = sid ? tr_cache_find_res(c, sid, &t) : NULL;
		x.task = t;
		fprintf(stderr, "# case %zu: %s\n", i, cases[i].method);
		rc = tr_worker_methods_build(cases[i].method, p, &x, &r, &e);
		if (rc != 0) {
			fprintf(stderr, "# %d: %s %s\n", rc, e.param ? e.param : "", e.reason ? e.reason : "");
		}
		assert_int_equal(rc, 0);
		assert_string_equal(r.path, cases[i].path);
		assert_string_equal(r.method, cases[i].http);
		assert_string_equal(r.api_version, cases[i].api);
		assert_int_equal(r.if_match, cases[i].if_match);
		assert_int_equal(tr_json_dump(r.params, &body, NULL), 0);
		assert_string_equal(body, cases[i].body);
		free(body);
		tr_task_methods_req_done(&r);
		tr_json_free(p);
	}
	tr_wstate_free(ws);
	tr_cache_free(c);
}

/* Where the SDK sends "undefined", passes a wrong type through or sends what TaskRouter
 * refuses, the daemon names the parameter and builds nothing. */
static void test_bad_params(void **state) {
	static const struct {
		const char *method, *params, *param;
		int code;
	} cases[] = {
		{ "reservation.accept", "{}", "sid", TR_RPC_INVALID_PARAMS },
		{ "reservation.accept", "{\"sid\":\"WRnope\"}", "sid", TR_RPC_NOT_FOUND },
		{ "reservation.accept", "{\"sid\":\"" WR "\",\"foo\":\"bar\"}", "foo",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.reject", "{\"sid\":\"" WR "\",\"activitySid\":1}", "activitySid",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.reject", "{\"sid\":\"" WR "\",\"activitySid\":\"WAunknown\"}",
			"activitySid", TR_RPC_INVALID_PARAMS },
		{ "reservation.reject", "{\"sid\":\"" WR "\",\"activitySid\":\"Offline\"}",
			"activitySid", TR_RPC_INVALID_PARAMS },
		{ "reservation.call", "{\"sid\":\"" WR "\",\"url\":\"u\"}", "from",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.call", "{\"sid\":\"" WR "\",\"from\":\"f\"}", "url",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.call", "{\"sid\":\"" WR "\",\"from\":\"f\",\"url\":\"u\",\"timeout\":\"60\"}",
			"timeout", TR_RPC_INVALID_PARAMS },
		{ "reservation.call", "{\"sid\":\"" WR "\",\"from\":\"f\",\"url\":\"u\",\"timeout\":1.5}",
			"timeout", TR_RPC_INVALID_PARAMS },
		{ "reservation.call", "{\"sid\":\"" WR "\",\"from\":\"f\",\"url\":\"u\",\"record\":true}",
			"record", TR_RPC_INVALID_PARAMS },
		{ "reservation.call", "{\"sid\":\"" WR "\",\"from\":\"f\",\"url\":\"u\",\"accept\":\"yes\"}",
			"accept", TR_RPC_INVALID_PARAMS },
		{ "reservation.dequeue", "{\"sid\":\"" WR "\",\"timeout\":\"1\"}", "timeout",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.dequeue", "{\"sid\":\"" WR "\",\"postWorkActivitySid\":\"WAx\"}",
			"postWorkActivitySid", TR_RPC_INVALID_PARAMS },
		{ "reservation.redirect", "{\"sid\":\"" WR "\",\"url\":\"u\"}", "callSid",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.conference", "{\"sid\":\"" WR "\",\"hold\":true}", "hold",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.conference", "{\"sid\":\"" WR "\",\"beep\":1}", "beep",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.conference", "{\"sid\":\"" WR "\",\"muted\":\"true\"}", "muted",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.conference", "{\"sid\":\"" WR "\",\"maxParticipants\":-1}",
			"maxParticipants", TR_RPC_INVALID_PARAMS },
		{ "reservation.updateParticipant", "{\"sid\":\"" WR "\",\"hold\":true}", "hold",
			TR_RPC_INVALID_PARAMS },
		{ "reservation.fetchLatestVersion", "{\"sid\":\"\"}", "sid", TR_RPC_INVALID_PARAMS },
		{ "worker.setAttributes", "{}", "attributes", TR_RPC_INVALID_PARAMS },
		{ "worker.setAttributes", "{\"attributes\":[]}", "attributes", TR_RPC_INVALID_PARAMS },
		{ "worker.setAttributes", "{\"attributes\":\"{}\"}", "attributes", TR_RPC_INVALID_PARAMS },
		{ "worker.fetchLatestVersion", "{\"x\":1}", "x", TR_RPC_INVALID_PARAMS },
		{ "worker.setActivity", "{}", "activity", TR_RPC_INVALID_PARAMS },
		{ "worker.setActivity", "{\"activity\":\"available\"}", "activity",
			TR_RPC_INVALID_PARAMS },
		{ "worker.setActivity", "{\"activity\":\"Available\",\"rejectPendingReservations\":true}",
			"rejectPendingReservations", TR_RPC_INVALID_PARAMS },
		{ "worker.setActivity", "{\"activity\":\"Offline\",\"rejectPendingReservations\":1}",
			"rejectPendingReservations", TR_RPC_INVALID_PARAMS },
		{ "worker.createTask", "{\"to\":\"a\",\"from\":\"b\",\"workflowSid\":\"WW1\"}",
			"taskQueueSid", TR_RPC_INVALID_PARAMS },
		{ "worker.createTask", "{\"to\":\"a\",\"from\":\"b\",\"workflowSid\":\"WW1\","
			"\"taskQueueSid\":\"WQ1\",\"virtualStartTime\":\"tomorrow\"}", "virtualStartTime",
			TR_RPC_INVALID_PARAMS },
		{ "worker.createTask", "{\"to\":\"a\",\"from\":\"b\",\"workflowSid\":\"WW1\","
			"\"taskQueueSid\":\"WQ1\",\"attributes\":[1]}", "attributes",
			TR_RPC_INVALID_PARAMS },
		{ "worker.createTask", "{\"to\":\"a\",\"from\":\"b\",\"workflowSid\":\"WW1\","
			"\"taskQueueSid\":\"WQ1\",\"priority\":1}", "priority", TR_RPC_INVALID_PARAMS },
	};
	struct tr_cache *c = make_cache();
	struct tr_wstate *ws = make_wstate();
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tr_cache_task *t = NULL;
		struct tr_json *p = parse(cases[i].params);
		const char *sid = tr_json_get_string(p, "sid");
		struct tr_methods_req r = { 0 };
		struct tr_methods_err e = { 0 };
		struct tr_methods_ctx x = { .wstate = ws, .workspace_sid = WS, .worker_sid = WK,
			.version_check = true };

		x.res = sid ? tr_cache_find_res(c, sid, &t) : NULL;
		x.task = t;
		fprintf(stderr, "# case %zu: %s %s\n", i, cases[i].method, cases[i].params);
		assert_int_equal(tr_worker_methods_build(cases[i].method, p, &x, &r, &e), -EINVAL);
		assert_int_equal(e.code, cases[i].code);
		assert_string_equal(e.param, cases[i].param);
		assert_null(r.params);
		tr_json_free(p);
	}
	/* rows that send nothing upstream have no builder */
	{
		struct tr_methods_req r = { 0 };
		struct tr_methods_err e = { 0 };
		struct tr_methods_ctx x = { .wstate = ws };

		assert_int_equal(tr_worker_methods_build("worker.get", NULL, &x, &r, &e), -ENOENT);
		assert_int_equal(tr_worker_methods_build("task.complete", NULL, &x, &r, &e), -ENOENT);
	}
	tr_wstate_free(ws);
	tr_cache_free(c);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wstate_frames),
		cmocka_unit_test(test_wstate_resync),
		cmocka_unit_test(test_cache_reservations),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_bad_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
