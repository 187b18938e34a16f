/* Unit tests of the pure parts of the bridge (daemon/bridge*.c): the websocket query string
 * (order and encoding), the event catalogue, the state names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bridge.h"

static void test_query(void **state) {
	char *q = NULL;
	(void)state;
	assert_int_equal(tr_bridge_ws_query("aaa.bbb-_.ccc", false, "2.1.1", -1, &q), 0);
	assert_string_equal(q, "token=aaa.bbb-_.ccc&closeExistingSessions=false&clientVersion=2.1.1");
	free(q);
	assert_int_equal(tr_bridge_ws_query("t", true, "0.1.0", 1, &q), 0);
	assert_string_equal(q, "token=t&closeExistingSessions=true&clientVersion=0.1.0"
			       "&setWorkerOfflineIfDisconnected=true");
	free(q);
	assert_int_equal(tr_bridge_ws_query("t", false, "x", 0, &q), 0);
	assert_string_equal(q, "token=t&closeExistingSessions=false&clientVersion=x"
			       "&setWorkerOfflineIfDisconnected=false");
	free(q);
	/* anything outside the unreserved set is percent-encoded */
	assert_int_equal(tr_bridge_ws_query("a+b/c=d&e f", false, "1.0 beta/é", -1, &q), 0);
	assert_string_equal(q, "token=a%2Bb%2Fc%3Dd%26e%20f&closeExistingSessions=false"
			       "&clientVersion=1.0%20beta%2F%C3%A9");
	free(q);
	assert_int_equal(tr_bridge_ws_query("", false, NULL, -1, &q), 0);
	assert_string_equal(q, "token=&closeExistingSessions=false&clientVersion=");
	free(q);
}

static void test_events(void **state) {
	static const char *const known[] = {"worker.activity.update", "worker.attributes.update",
		"worker.capacity.update", "worker.channel.availability.update", "reservation.created",
		"reservation.failed", "reservation.accepted", "reservation.wrapup",
		"reservation.completed", "reservation.rejected", "reservation.timeout",
		"reservation.canceled", "reservation.rescinded", "task.updated", "task.canceled",
		"task.completed", "task.wrapup", "task.transfer-initiated",
		"task.transfer-attempt-failed", "task.transfer-completed", "task.transfer-failed",
		"task.transfer-canceled"};
	(void)state;
	assert_int_equal(sizeof(known) / sizeof(known[0]), 22);
	for (size_t i = 0; i < 22; i++) {
		assert_true(tr_bridge_event_known(known[i]));
	}
	assert_false(tr_bridge_event_known("init"));
	assert_false(tr_bridge_event_known("sim.padding"));
	assert_false(tr_bridge_event_known("task.updated "));
	assert_false(tr_bridge_event_known(""));
	assert_false(tr_bridge_event_known(NULL));
}

static void test_states(void **state) {
	static const char *const names[] = {"connecting", "open", "initializing", "ready",
		"reconnecting", "token_expired", "stopped"};
	(void)state;
	for (int s = 0; s < _TR_BRIDGE_STATE_MAX; s++) {
		assert_string_equal(tr_bridge_state_str((enum tr_bridge_state)s), names[s]);
	}
	assert_string_equal(tr_bridge_state_str(_TR_BRIDGE_STATE_MAX), "unknown");
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_states),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
