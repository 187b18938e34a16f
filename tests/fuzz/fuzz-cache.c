/*
 * fuzz-cache.c — libFuzzer target for the task cache (daemon/cache.c) and the RPC text of
 * its records (daemon/task-json.c): websocket event payloads, resyncs, transfer replies and
 * expiry in an order chosen by the input.
 *
 * Input layout: records separated by '\n'. The first byte of a record is the operation
 * (low 3 bits) and an argument (high 5 bits); the rest of the record is JSON text.
 *   0, 1: apply — a frame {"event_type":…,"payload":…} is applied as such; any other JSON
 *         is applied as the payload of the event type picked by the argument;
 *   2:    a REST Task reply (tr_cache_apply_task);
 *   3:    a transfer reply for the task named by the JSON's "task_sid" (or the first task);
 *   4:    resync begin; 5: resync add (the JSON is a reservation); 6: resync end (argument
 *         bit 0: fail it);
 *   7:    time passes (argument * 1.5 s) and tr_cache_expire runs; argument bit 4 also
 *         toggles a transfer in flight / drops pending events for the first task.
 * After every step the cache's invariants are checked: the counts add up to the list
 * length, every task is found by its SID, and every task's and transfer's RPC JSON dumps,
 * parses back and compares equal.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "json.h"
#include "task-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const types[] = {
	"task.updated", "task.canceled", "task.completed", "task.wrapup",
	"task.transfer-initiated", "task.transfer-attempt-failed", "task.transfer-canceled",
	"task.transfer-completed", "task.transfer-failed", "reservation.created",
	"reservation.accepted", "reservation.canceled", "reservation.completed",
	"reservation.rejected", "reservation.rescinded", "reservation.timeout",
	"reservation.wrapup", "worker.activity.update", "task.unknown", "reservation.unknown",
};

static void check(int cond) {
	if (!cond) {
		abort();
	}
}

static unsigned n_events;

static void on_event(void *userdata, const struct tr_cache_event *ev) {
	(void)userdata;
	check(ev->name != NULL && ev->task != NULL && ev->task->sid != NULL);
	n_events++;
}

/* The JSON of a task or transfer must dump and parse back to an equal tree. */
static void check_roundtrip(struct tr_json *j) {
	struct tr_json *back = NULL;
	char *text = NULL;
	size_t len = 0;

	if (j == NULL) {
		return; /* ENOMEM */
	}
	if (tr_json_dump(j, &text, &len) == 0) {
		check(tr_json_parse(text, len, &back, NULL) == 0);
		check(tr_json_equal(j, back));
		tr_json_free(back);
		free(text);
	}
	tr_json_free(j);
}

static void check_cache(const struct tr_cache *c) {
	size_t n = 0;

	for (const struct tr_cache_task *t = tr_cache_first(c); t; t = t->next) {
		n++;
		check(t->sid != NULL);
		check(tr_cache_get(c, t->sid) == t);
		check(tr_cache_task_status(t) != NULL);
		check(t->transfers_in_flight >= 0);
		(void)tr_cache_task_reservation(t);
		check_roundtrip(tr_task_json_task_tree(t));
		if (t->incoming) {
			check_roundtrip(tr_task_json_transfer_tree(t->incoming));
		}
		if (t->outgoing) {
			check_roundtrip(tr_task_json_transfer_tree(t->outgoing));
		}
	}
	check(tr_cache_count(c, false) + tr_cache_count(c, true) == n);
}

static void step(struct tr_cache *c, uint8_t op, const char *text, size_t len, uint64_t *now,
	bool *resyncing) {
	struct tr_json *j = NULL;
	const struct tr_cache_task *first = tr_cache_first(c);
	unsigned arg = op >> 3;
	int r;

	if (len > 0 && tr_json_parse(text, len, &j, NULL) != 0) {
		j = NULL;
	}
	switch (op & 7) {
	case 0:
	case 1: {
		const char *type = types[arg % (sizeof(types) / sizeof(types[0]))];
		const struct tr_json *payload = j;

		if (j && tr_json_get_string(j, "event_type") && tr_json_get(j, "payload")) {
			type = tr_json_get_string(j, "event_type");
			payload = tr_json_get(j, "payload");
		}
		r = tr_cache_apply(c, type, payload, *now);
		check(r == 0 || r == -ENOENT || r == -ESRCH || r == -EBADMSG || r == -ENOMEM);
		break;
	}
	case 2:
		if (j) {
			r = tr_cache_apply_task(c, j);
			check(r == 0 || r == 1 || r == -ENOENT || r == -EBADMSG || r == -ENOMEM);
		}
		break;
	case 3:
		if (j) {
			const char *sid = tr_json_get_string(j, "task_sid");

			if (sid == NULL && first) {
				sid = first->sid;
			}
			if (sid) {
				r = tr_cache_apply_transfer_response(c, sid, j, *now);
				check(r == 0 || r == -ENOENT || r == -EBADMSG || r == -ENOMEM);
			}
		}
		break;
	case 4:
		if (!*resyncing) {
			tr_cache_resync_begin(c);
			*resyncing = true;
		}
		break;
	case 5:
		if (*resyncing && j) {
			(void)tr_cache_resync_add(c, j);
		}
		break;
	case 6:
		if (*resyncing) {
			(void)tr_cache_resync_end(c, (arg & 1) ? -EIO : 0, *now);
			*resyncing = false;
		}
		break;
	default:
		*now += (uint64_t)arg * 1500;
		if (first && (arg & 16)) {
			if (first->transfers_in_flight > 0 && (arg & 1)) {
				tr_cache_transfer_in_flight(c, first->sid, -1);
				tr_cache_drop_pending(c, first->sid);
			} else if (first->transfers_in_flight < 4) {
				tr_cache_transfer_in_flight(c, first->sid, 1);
			}
		}
		check(tr_cache_expire(c, *now) >= 0);
		break;
	}
	tr_json_free(j);
	if (!*resyncing) {
		check_cache(c);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct tr_cache *c = tr_cache_new(5000, on_event, NULL);
	const char *p = (const char *)data, *end = p + size;
	uint64_t now = 1000;
	bool resyncing = false;

	if (c == NULL) {
		return 0;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *rec_end = nl ? nl : end;

		if (rec_end > p) {
			step(c, (uint8_t)*p, p + 1, (size_t)(rec_end - p - 1), &now, &resyncing);
		}
		p = nl ? nl + 1 : end;
	}
	if (resyncing) {
		(void)tr_cache_resync_end(c, 0, now);
		check_cache(c);
	}
	tr_cache_free(c);
	return 0;
}
