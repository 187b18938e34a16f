/* Unit tests of daemon/task-wire.c: Task and Transfer payloads read into records. Pure; no
 * cache, only its record types. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"
#include "json.h"
#include "task-wire.h"

static struct tr_json *parse(const char *s) {
	struct tr_json *j = NULL;

	assert_int_equal(tr_json_parse(s, strlen(s), &j, NULL), 0);
	return j;
}

static bool all_zero(const void *p, size_t n) {
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		if (b[i]) {
			return false;
		}
	}
	return true;
}

/* Read one Task payload into a zeroed record; returns the result. */
static int read_task(const char *text, struct tr_cache_task *t) {
	struct tr_json *j = parse(text);
	int r;

	memset(t, 0, sizeof(*t));
	r = tr_task_wire_task_read(j, t);
	tr_json_free(j);
	return r;
}

static void test_task_read(void **state) {
	struct tr_cache_task t;

	(void)state;
	assert_int_equal(read_task("{\"sid\":\"WT1\",\"assignment_status\":\"reserved\","
		"\"version\":4,\"age\":9,\"priority\":-2,\"timeout\":60,\"reason\":\"r\","
		"\"queue_sid\":\"WQ1\",\"queue_name\":\"Q\",\"workflow_sid\":\"WW1\","
		"\"workflow_name\":\"W\",\"task_channel_sid\":\"TC1\","
		"\"task_channel_unique_name\":\"voice\",\"routing_target\":null,"
		"\"date_created\":100,\"date_updated\":200,\"virtual_start_time\":50,"
		"\"attributes\":\"{ \\\"a\\\" : [1, 2.50] }\",\"addons\":{\"b\":true}}", &t), 0);
	assert_string_equal(t.sid, "WT1");
	assert_string_equal(t.status, "reserved");
	assert_int_equal(t.version, 4);
	assert_int_equal(t.age, 9);
	assert_int_equal(t.priority, -2);
	assert_int_equal(t.timeout, 60);
	assert_string_equal(t.reason, "r");
	assert_string_equal(t.queue_name, "Q");
	assert_string_equal(t.task_channel_unique_name, "voice");
	assert_null(t.routing_target);
	assert_int_equal(t.date_created, 100);
	assert_int_equal(t.date_updated, 200);
	assert_int_equal(t.virtual_start_time, 50);
	/* JSON in a string and an object are both kept as compact text */
	assert_string_equal(t.attributes_json, "{\"a\":[1,2.50]}");
	assert_int_equal(t.attributes_len, strlen(t.attributes_json));
	assert_string_equal(t.addons_json, "{\"b\":true}");
	assert_int_equal(t.addons_len, strlen(t.addons_json));
	tr_task_wire_task_done(&t);

	/* defaults: absent numbers are 0, virtual_start_time is date_created, no JSON is {} */
	assert_int_equal(read_task("{\"sid\":\"WT1\",\"assignment_status\":\"reserved\","
		"\"version\":0,\"date_created\":7,\"attributes\":\"\",\"addons\":null}", &t), 0);
	assert_int_equal(t.age, 0);
	assert_int_equal(t.virtual_start_time, 7);
	assert_null(t.reason);
	assert_string_equal(t.attributes_json, "{}");
	assert_int_equal(t.attributes_len, 2);
	assert_string_equal(t.addons_json, "{}");
	assert_ptr_equal(t.attributes_json, t.addons_json); /* one shared "{}" */
	tr_task_wire_task_done(&t);
}

/* Not a Task: -EBADMSG, and the record is zero again. */
static void test_task_read_bad(void **state) {
	static const char *const bad[] = {
		"[]",
		"{\"assignment_status\":\"reserved\",\"version\":1}",
		"{\"sid\":\"WT1\",\"version\":1}",
		"{\"sid\":\"WT1\",\"assignment_status\":\"reserved\"}",
		"{\"sid\":\"WT1\",\"assignment_status\":\"reserved\",\"version\":\"1\"}",
		"{\"sid\":\"WT1\",\"assignment_status\":\"reserved\",\"version\":1.5}",
		"{\"sid\":\"WT1\",\"assignment_status\":\"reserved\",\"version\":1,"
		"\"attributes\":\"{not json\"}",
		"{\"sid\":\"WT1\",\"assignment_status\":\"reserved\",\"version\":1,"
		"\"attributes\":3}",
		"{\"sid\":\"WT1\",\"assignment_status\":\"reserved\",\"version\":1,"
		"\"attributes\":\"{}\",\"addons\":\"[\"}",
	};
	struct tr_cache_task t;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(read_task(bad[i], &t), -EBADMSG);
		assert_true(all_zero(&t, sizeof(t)));
	}
}

/* A move frees what the target held and hands over the source's fields. */
static void test_task_move(void **state) {
	struct tr_cache_task t, n;

	(void)state;
	assert_int_equal(read_task("{\"sid\":\"WT1\",\"assignment_status\":\"reserved\","
		"\"version\":1,\"reason\":\"old\",\"attributes\":{\"x\":1}}", &t), 0);
	t.n_res = 3; /* the cache's own fields stay */
	assert_int_equal(read_task("{\"sid\":\"WT1\",\"assignment_status\":\"assigned\","
		"\"version\":2,\"date_created\":5}", &n), 0);
	tr_task_wire_task_move(&t, &n);
	assert_string_equal(t.status, "assigned");
	assert_null(t.reason);
	assert_int_equal(t.version, 2);
	assert_int_equal(t.date_created, 5);
	assert_string_equal(t.attributes_json, "{}");
	assert_int_equal(t.n_res, 3);
	tr_task_wire_task_done(&t);
}

static int set_transfer(struct tr_cache_transfer **slot, const char *text, const char *task_sid) {
	struct tr_json *j = parse(text);
	int r = tr_task_wire_transfer_set(slot, j, task_sid);

	tr_json_free(j);
	return r;
}

static void test_transfer(void **state) {
	struct tr_cache_transfer *x = NULL, *was;
	struct tr_json *j;

	(void)state;
	/* embedded: no task_sid, the enclosing task's fills it */
	assert_int_equal(set_transfer(&x, "{\"sid\":\"TT1\",\"transfer_status\":\"initiated\","
		"\"transfer_type\":\"WORKER\",\"transfer_mode\":\"WARM\",\"transfer_to\":\"WK2\","
		"\"initiating_reservation_sid\":\"WR1\",\"initiating_worker_sid\":\"WK1\","
		"\"initiating_queue_sid\":\"WQ1\",\"initiating_workflow_sid\":\"WW1\","
		"\"date_created\":1,\"date_updated\":2}", "WT1"), 0);
	assert_non_null(x);
	assert_string_equal(x->task_sid, "WT1");
	assert_string_equal(x->type, "WORKER");
	assert_string_equal(x->mode, "WARM");
	assert_string_equal(x->to, "WK2");
	assert_string_equal(x->reservation_sid, "WR1");
	assert_string_equal(x->worker_sid, "WK1");
	assert_string_equal(x->queue_sid, "WQ1");
	assert_string_equal(x->workflow_sid, "WW1");
	assert_null(x->failed_reason);
	assert_int_equal(x->date_created, 1);
	assert_int_equal(x->date_updated, 2);

	/* the same sid: updated in place, every field (an absent one is cleared) */
	was = x;
	assert_int_equal(set_transfer(&x, "{\"sid\":\"TT1\",\"transfer_status\":\"failed\","
		"\"transfer_type\":\"QUEUE\",\"transfer_failed_reason\":\"rejected\","
		"\"date_updated\":3}", "WT1"), 0);
	assert_ptr_equal(x, was);
	assert_string_equal(x->type, "QUEUE");
	assert_null(x->mode);
	assert_string_equal(x->status, "failed");
	assert_string_equal(x->failed_reason, "rejected");
	assert_int_equal(x->date_updated, 3);
	assert_int_equal(x->date_created, 1);
	assert_string_equal(x->task_sid, "WT1");

	/* not full: only the status, the reason and date_updated change */
	j = parse("{\"sid\":\"TT9\",\"transfer_status\":\"complete\",\"transfer_type\":\"WORKER\","
		"\"date_created\":8,\"date_updated\":9}");
	assert_int_equal(tr_task_wire_transfer_update(x, j, false, NULL), 0);
	tr_json_free(j);
	assert_string_equal(x->sid, "TT1");
	assert_string_equal(x->type, "QUEUE");
	assert_string_equal(x->status, "complete");
	assert_null(x->failed_reason);
	assert_int_equal(x->date_created, 1);
	assert_int_equal(x->date_updated, 9);

	/* not an object: nothing; not a Transfer: refused, the slot kept */
	assert_int_equal(set_transfer(&x, "null", "WT1"), 0);
	assert_int_equal(set_transfer(&x, "{\"sid\":\"TT2\"}", "WT1"), -EBADMSG);
	assert_ptr_equal(x, was);

	/* another sid: replaced, and its own task_sid wins */
	assert_int_equal(set_transfer(&x, "{\"sid\":\"TT2\",\"transfer_status\":\"initiated\","
		"\"task_sid\":\"WT7\"}", "WT1"), 0);
	assert_string_equal(x->sid, "TT2");
	assert_string_equal(x->task_sid, "WT7");
	assert_null(x->type);
	assert_int_equal(x->date_created, 0);
	assert_null(tr_task_wire_transfer_free(x));
	assert_null(tr_task_wire_transfer_free(NULL));
}

static void test_keep(void **state) {
	struct tr_json *j = parse("{ \"a\" : [ 1 , \"\\u00e9\" ], \"b\" : {} }");
	char *text = NULL, *dump = NULL;
	size_t len = 0, dlen = 0;

	(void)state;
	assert_int_equal(tr_task_wire_keep(j, &text, &len), 0);
	assert_int_equal(tr_json_dump(j, &dump, &dlen), 0);
	assert_int_equal(len, dlen);
	assert_string_equal(text, dump);
	free(text);
	free(dump);
	tr_json_free(j);
}

/* The fields with few distinct values are shared between tasks (one copy per value), follow
 * each task's updates, and go with the last task holding them (ASan and valgrind check). */
static void test_shared_strings(void **state) {
	static const char a[] = "{\"sid\":\"WT1\",\"assignment_status\":\"reserved\",\"version\":1,"
				"\"queue_sid\":\"WQ1\",\"queue_name\":\"Support\",\"workflow_sid\":\"WW1\","
				"\"workflow_name\":\"W\",\"task_channel_sid\":\"TC1\","
				"\"task_channel_unique_name\":\"voice\",\"attributes\":\"{}\"}";
	static const char b[] = "{\"sid\":\"WT2\",\"assignment_status\":\"reserved\",\"version\":1,"
				"\"queue_sid\":\"WQ1\",\"queue_name\":\"Support\",\"workflow_sid\":\"WW1\","
				"\"workflow_name\":\"W\",\"task_channel_sid\":\"TC1\","
				"\"task_channel_unique_name\":\"voice\",\"attributes\":\"{}\"}";
	static const char b2[] = "{\"sid\":\"WT2\",\"assignment_status\":\"assigned\",\"version\":2,"
				 "\"queue_sid\":\"WQ2\",\"queue_name\":\"Sales\",\"workflow_sid\":\"WW1\","
				 "\"workflow_name\":\"W\",\"task_channel_sid\":\"TC1\","
				 "\"task_channel_unique_name\":\"voice\",\"attributes\":\"{}\"}";
	struct tr_cache_task t1, t2;
	(void)state;

	assert_int_equal(read_task(a, &t1), 0);
	assert_int_equal(read_task(b, &t2), 0);
	assert_ptr_equal(t1.queue_name, t2.queue_name);
	assert_ptr_equal(t1.status, t2.status);
	assert_ptr_equal(t1.task_channel_unique_name, t2.task_channel_unique_name);
	assert_ptr_not_equal(t1.sid, t2.sid);
	/* t2 moves on (read into a fresh record, then moved, as the cache does): its own
	 * values, t1 keeps its */
	{
		struct tr_cache_task t3;

		assert_int_equal(read_task(b2, &t3), 0);
		tr_task_wire_task_move(&t2, &t3);
	}
	assert_string_equal(t2.status, "assigned");
	assert_string_equal(t2.queue_name, "Sales");
	assert_string_equal(t1.status, "reserved");
	assert_string_equal(t1.queue_name, "Support");
	assert_ptr_equal(t1.workflow_sid, t2.workflow_sid);
	tr_task_wire_task_done(&t1);
	assert_string_equal(t2.workflow_name, "W"); /* still held by t2 */
	tr_task_wire_task_done(&t2);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_task_read),
		cmocka_unit_test(test_task_read_bad),
		cmocka_unit_test(test_task_move),
		cmocka_unit_test(test_transfer),
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_shared_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
