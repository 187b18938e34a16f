/* Unit tests of daemon/task-json.c: the Task and Transfer text and the ISO time format, both
 * ways. Pure, no loop; the records come from a real cache. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cache.h"
#include "json.h"
#include "task-json.h"

#define WT "WT0fbc4e6335fcc52ed96c632c85599ed7"
#define WR1 "WR11111111111111111111111111111111"

static struct tr_json *parse(const char *s) {
	struct tr_json *j = NULL;

	assert_int_equal(tr_json_parse(s, strlen(s), &j, NULL), 0);
	return j;
}

static int setup(void **state) {
	*state = tr_cache_new(5000, NULL, NULL);
	assert_non_null(*state);
	return 0;
}

static int teardown(void **state) {
	tr_cache_free(*state);
	return 0;
}

/* One reservation.created payload into the cache; returns the task. */
static const struct tr_cache_task *created(struct tr_cache *c, const char *payload,
	const char *sid) {
	struct tr_json *j = parse(payload);

	assert_int_equal(tr_cache_apply(c, "reservation.created", j, 0), 0);
	tr_json_free(j);
	assert_non_null(tr_cache_get(c, sid));
	return tr_cache_get(c, sid);
}

/* The hand-written ISO time equals gmtime + strftime, across leap years, centuries and
 * negative epochs; outside years 0000-9999 it gives the epoch. */
static void test_time_format(void **state) {
	static const int64_t fixed[] = { 0, -1, 59, 86399, 86400, 951782400, 951868799,
		4107542399LL, 4107542400LL, -2208988800LL, -62167219200LL, 253402300799LL,
		1735819200, 1709164800 };
	char got[40], want[40];
	uint64_t x = 88172645463325252ULL;

	(void)state;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]) + 20000; i++) {
		int64_t e;
		struct tm tm;
		time_t tt;

		if (i < sizeof(fixed) / sizeof(fixed[0])) {
			e = fixed[i];
		} else {
			x ^= x << 13; /* xorshift: a reproducible spread over the valid range */
			x ^= x >> 7;
			x ^= x << 17;
			e = (int64_t)(x % (253402300799ULL + 62167219200ULL)) - 62167219200LL;
		}
		tt = (time_t)e;
		assert_non_null(gmtime_r(&tt, &tm));
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (tm.tm_year + 1900 < 1000) {
			/* glibc's %Y does not pad years below 1000 */
			snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
				tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		}
		tr_task_json_time_format(e, got, sizeof(got));
		assert_string_equal(got, want);
	}
	tr_task_json_time_format(253402300800LL, got, sizeof(got));
	assert_string_equal(got, "1970-01-01T00:00:00Z");
	tr_task_json_time_format(-62167219201LL, got, sizeof(got));
	assert_string_equal(got, "1970-01-01T00:00:00Z");
	tr_task_json_time_format(0, got, 5);
	assert_string_equal(got, "1970");
	tr_task_json_time_format(0, got, 21);
	assert_string_equal(got, "1970-01-01T00:00:00Z");
}

static void test_time_parse(void **state) {
	uint64_t x = 88172645463325252ULL;
	char text[40];
	int64_t t;

	(void)state;
	assert_int_equal(tr_task_json_time_parse("2025-01-02T12:00:00Z", &t), 0);
	assert_int_equal(t, 1735819200);
	assert_int_equal(tr_task_json_time_parse("2025-01-02t11:00:00.5-01:00", &t), 0);
	assert_int_equal(t, 1735819200);
	assert_int_equal(tr_task_json_time_parse("2025-01-02 13:30:00+01:30", &t), 0);
	assert_int_equal(t, 1735819200);
	assert_int_equal(tr_task_json_time_parse("2025-01-02T12:00:00.Z", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse("2025-01-02T12:00:00Zx", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse("2025-1-02T12:00:00Z", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse("2025-13-02T12:00:00Z", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse("2025-01-02T12:00:00+1:00", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse("", &t), -EINVAL);
	/* Impossible dates are refused, not normalised into the next month. */
	assert_int_equal(tr_task_json_time_parse("2024-02-30T00:00:00Z", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse("2023-02-29T00:00:00Z", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse("1900-02-29T00:00:00Z", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse("2025-04-31T00:00:00Z", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse("2024-02-29T00:00:00Z", &t), 0);
	assert_int_equal(tr_task_json_time_parse("2000-02-29T00:00:00Z", &t), 0);
	assert_int_equal(tr_task_json_time_parse("2025-12-31T23:59:59Z", &t), 0);
	/* Signs and spaces where digits belong, and offsets past 23:59. */
	assert_int_equal(tr_task_json_time_parse("+202-01-02T12:00:00Z", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse("2025-01- 2T12:00:00Z", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse("2025-01-02T12:00:00+24:00", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse("2025-01-02T12:00:00-01:60", &t), -EINVAL);
	assert_int_equal(tr_task_json_time_parse(NULL, &t), -EINVAL);

	/* What the format writes, the parser reads back to the same second. */
	for (int i = 0; i < 20000; i++) {
		int64_t e;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		e = (int64_t)(x % (253402300799ULL + 62167219200ULL)) - 62167219200LL;
		if (e == -1) {
			continue; /* timegm's error value: refused (see tr_task_json_time_parse) */
		}
		tr_task_json_time_format(e, text, sizeof(text));
		assert_int_equal(tr_task_json_time_parse(text, &t), 0);
		assert_int_equal(t, e);
	}
}

/* Every member, in order, byte for byte: escapes, a non-ASCII attribute kept as sent,
 * int64 limits, times outside the ISO range, an outgoing transfer and its status. */
static void test_task_text_exact(void **state) {
	static const char payload[] =
		"{\"sid\":\"WR1\",\"reservation_status\":\"accepted\",\"task\":{\"sid\":\"WT1\","
		"\"assignment_status\":\"assigned\","
		"\"attributes\":\"{\\\"name\\\":\\\"Ren\\u00e9e\\\", \\\"n\\\": [1, 2.50]}\","
		"\"age\":-7,\"priority\":9223372036854775807,\"timeout\":0,\"queue_sid\":\"WQ1\","
		"\"queue_name\":\"q\\\"\\\\\\n\\u0001\",\"workflow_sid\":null,"
		"\"task_channel_sid\":\"TC1\",\"routing_target\":\"WK9\",\"date_created\":-1,"
		"\"date_updated\":253402300800,\"virtual_start_time\":951782400,\"version\":-3},"
		"\"active_outgoing_task_transfer\":{\"sid\":\"TT1\","
		"\"transfer_status\":\"initiated\","
		"\"transfer_type\":\"QUEUE\",\"transfer_mode\":\"COLD\",\"transfer_to\":\"WQ2\","
		"\"initiating_reservation_sid\":\"WR1\",\"date_created\":-9223372036854775808,"
		"\"date_updated\":5}}";
	static const char want[] =
		"{\"sid\":\"WT1\",\"status\":\"transferring\",\"wireStatus\":\"assigned\","
		"\"attributes\":{\"name\":\"Ren\xc3\xa9" "e\",\"n\":[1,2.50]},\"addOns\":{},"
		"\"age\":-7,\"priority\":9223372036854775807,\"reason\":null,\"timeout\":0,"
		"\"queueSid\":\"WQ1\",\"queueName\":\"q\\\"\\\\\\n\\u0001\",\"workflowSid\":null,"
		"\"workflowName\":null,\"taskChannelSid\":\"TC1\",\"taskChannelUniqueName\":null,"
		"\"routingTarget\":\"WK9\",\"dateCreated\":-1,"
		"\"dateCreatedIso\":\"1969-12-31T23:59:59Z\","
		"\"dateUpdated\":253402300800,\"dateUpdatedIso\":\"1970-01-01T00:00:00Z\","
		"\"virtualStartTime\":951782400,\"virtualStartTimeIso\":\"2000-02-29T00:00:00Z\","
		"\"version\":\"-3\",\"reservationSid\":\"WR1\","
		"\"reservations\":[{\"sid\":\"WR1\",\"status\":\"accepted\"}],"
		"\"transfers\":{\"incoming\":null,\"outgoing\":{\"sid\":\"TT1\",\"type\":\"QUEUE\","
		"\"mode\":\"COLD\",\"to\":\"WQ2\",\"status\":\"initiated\",\"failedReason\":null,"
		"\"reservationSid\":\"WR1\",\"workerSid\":null,\"queueSid\":null,"
		"\"workflowSid\":null,"
		"\"taskSid\":\"WT1\",\"dateCreated\":-9223372036854775808,\"dateUpdated\":5}}}";
	const struct tr_cache_task *t = created(*state, payload, "WT1");
	char *text = NULL;
	size_t len = 0, cap = 0;
	struct tr_json *j;

	assert_int_equal(tr_task_json_task_text(t, &text, &len, &cap), 0);
	assert_int_equal(len, strlen(want));
	assert_string_equal(text, want);
	free(text);

	/* the Transfer alone, appended after what the buffer holds; and null */
	text = NULL;
	len = cap = 0;
	assert_int_equal(tr_task_json_transfer_text(NULL, &text, &len, &cap), 0);
	assert_int_equal(tr_task_json_transfer_text(t->outgoing, &text, &len, &cap), 0);
	assert_int_equal(len, strlen(text));
	assert_non_null(strstr(want, text + 4));
	assert_memory_equal(text, "null{\"sid\":\"TT1\",", 17);
	free(text);

	j = tr_task_json_transfer_raw(t->outgoing);
	assert_non_null(j);
	assert_int_equal(j->type, TR_JSON_RAW);
	assert_non_null(strstr(want, j->u.str.s));
	tr_json_free(j);
	j = tr_task_json_transfer_tree(t->outgoing);
	assert_non_null(j);
	assert_string_equal(tr_json_get_string(j, "taskSid"), "WT1");
	tr_json_free(j);
}

/* The Task text keeps attributes exactly (escapes, non-ASCII, nesting) and is valid JSON. */
static void test_task_text(void **state) {
	struct tr_cache *c = *state;
	const struct tr_cache_task *t;
	struct tr_json *j, *attrs, *want;
	char buf[4096], *text = NULL;
	size_t len = 0, cap = 0;

	snprintf(buf, sizeof(buf), "{\"sid\":\"%s\",\"worker_sid\":\"WK1\",\"reservation_status\":"
		"\"pending\",\"task\":{\"sid\":\"%s\",\"assignment_status\":\"reserved\","
		"\"attributes\":\"{\\\"name\\\":\\\"Ren\\u00e9e \\\\\\\"R\\\\\\\"\\\",\\\"n\\\":[1,2.5,"
		"{\\\"deep\\\":null}],\\\"ok\\\":true}\",\"addons\":null,\"version\":3}}", WR1, WT);
	t = created(c, buf, WT);
	assert_int_equal(tr_task_json_task_text(t, &text, &len, &cap), 0);
	assert_int_equal(strlen(text), len);
	j = parse(text);
	free(text);
	attrs = (struct tr_json *)tr_json_get(j, "attributes");
	want = parse("{\"name\":\"Ren\\u00e9e \\\"R\\\"\",\"n\":[1,2.5,{\"deep\":null}],\"ok\":true}");
	assert_true(tr_json_equal(attrs, want));
	assert_true(tr_json_is(tr_json_get(j, "addOns"), TR_JSON_OBJECT));
	assert_string_equal(tr_json_get_string(j, "version"), "3");
	assert_true(tr_json_is(tr_json_get(tr_json_get(j, "transfers"), "incoming"), TR_JSON_NULL));
	tr_json_free(want);
	tr_json_free(j);
	/* the raw node dumps to the same text */
	j = tr_task_json_task_raw(t);
	assert_non_null(j);
	assert_int_equal(j->type, TR_JSON_RAW);
	assert_int_equal(tr_json_dump(j, &text, &len), 0);
	{
		char *again = NULL;
		size_t alen = 0, acap = 0;

		assert_int_equal(tr_task_json_task_text(t, &again, &alen, &acap), 0);
		assert_int_equal(alen, len);
		assert_memory_equal(again, text, len);
		free(again);
	}
	free(text);
	tr_json_free(j);
	/* and the tree is that text parsed */
	j = tr_task_json_task_tree(t);
	assert_non_null(j);
	assert_string_equal(tr_json_get_string(j, "sid"), WT);
	assert_string_equal(tr_json_get_string(j, "reservationSid"), WR1);
	tr_json_free(j);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test_setup_teardown(test_task_text_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_text, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
