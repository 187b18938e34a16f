/*
 * task-wire.c — Task and Transfer payloads into the cache's records (see task-wire.h).
 */
#include "task-wire.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"
#include "json.h"
#include "tr-limits.h"

/* Copy a string member into *dst (NULL when absent or null). -ENOMEM on failure. */
static int take_str(char **dst, const struct tr_json *o, const char *key) {
	const char *s = tr_json_get_string(o, key);
	char *n = NULL;

	if (s) {
		n = strdup(s);
		if (!n) {
			return -ENOMEM;
		}
	}
	free(*dst);
	*dst = n;
	return 0;
}

static int64_t get_int(const struct tr_json *o, const char *key, int64_t dflt) {
	int64_t v;

	if (tr_json_get_int(o, key, &v) < 0) {
		return dflt;
	}
	return v;
}

/*
 * Interned strings: the task fields with few distinct values (the status, the queue, the
 * workflow, the channel) are shared by every task that has the same value, instead of a copy
 * per task (a dozen allocations of 32-64 bytes each made most of a cached task's cost).
 * Reference-counted; a value goes when its last task does, and the table when it is empty.
 * The daemon is single-threaded.
 */
#define INTERN_BUCKETS 256

struct interned {
	struct interned *next;
	size_t refs;
	char s[];
};

static struct interned **intern_table;
static size_t intern_count;

static size_t intern_bucket(const char *s) {
	return tr_json_hash(s) % INTERN_BUCKETS;
}

/* The shared copy of s, with one more reference; NULL on ENOMEM. */
static char *intern(const char *s) {
	struct interned *e, **bucket;
	size_t len = strlen(s);

	if (!intern_table && !(intern_table = calloc(INTERN_BUCKETS, sizeof(*intern_table)))) {
		return NULL;
	}
	bucket = &intern_table[intern_bucket(s)];
	for (e = *bucket; e; e = e->next) {
		if (strcmp(e->s, s) == 0) {
			e->refs++;
			return e->s;
		}
	}
	e = malloc(sizeof(*e) + len + 1);
	if (!e) {
		if (intern_count == 0) {
			free(intern_table);
			intern_table = NULL;
		}
		return NULL;
	}
	memcpy(e->s, s, len + 1);
	e->refs = 1;
	e->next = *bucket;
	*bucket = e;
	intern_count++;
	return e->s;
}

/* Drop one reference to a string from intern() (NULL is fine). */
static void unintern(char *s) {
	struct interned *e, **link;

	if (!s) {
		return;
	}
	e = (struct interned *)(s - offsetof(struct interned, s));
	if (--e->refs > 0) {
		return;
	}
	for (link = &intern_table[intern_bucket(s)]; *link != e; link = &(*link)->next) {
	}
	*link = e->next;
	free(e);
	if (--intern_count == 0) {
		free(intern_table);
		intern_table = NULL;
	}
}

char *tr_task_wire_intern(const char *s) {
	return intern(s);
}

void tr_task_wire_unintern(char *s) {
	unintern(s);
}

/* A record's string field, the wire member it is read from, and whether it is interned. */
struct member {
	size_t off;
	const char *key;
	bool shared;
};

#define MEMBER(type, field, key) { offsetof(type, field), key, false }
#define SHARED(type, field, key) { offsetof(type, field), key, true }
#define N(a) (sizeof(a) / sizeof((a)[0]))

static char **field(void *rec, const struct member *m) {
	return (char **)((char *)rec + m->off);
}

/* take_str for an interned field. */
static int take_shared(char **dst, const struct tr_json *o, const char *key) {
	const char *s = tr_json_get_string(o, key);
	char *n = NULL;

	if (s && *dst && strcmp(*dst, s) == 0) {
		return 0; /* the same value: keep the reference */
	}
	if (s && !(n = intern(s))) {
		return -ENOMEM;
	}
	unintern(*dst);
	*dst = n;
	return 0;
}

static int take_members(void *rec, const struct member *m, size_t n, const struct tr_json *p) {
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		r |= m[i].shared ? take_shared(field(rec, &m[i]), p, m[i].key)
				 : take_str(field(rec, &m[i]), p, m[i].key);
	}
	return r ? -ENOMEM : 0;
}

static void free_members(void *rec, const struct member *m, size_t n) {
	for (size_t i = 0; i < n; i++) {
		if (m[i].shared) {
			unintern(*field(rec, &m[i]));
		} else {
			free(*field(rec, &m[i]));
		}
		*field(rec, &m[i]) = NULL;
	}
}

/* Read once, when the transfer is first seen (or replaced by a full payload). */
static const struct member transfer_fixed[] = {
	MEMBER(struct tr_cache_transfer, sid, "sid"),
	MEMBER(struct tr_cache_transfer, type, "transfer_type"),
	MEMBER(struct tr_cache_transfer, mode, "transfer_mode"),
	MEMBER(struct tr_cache_transfer, to, "transfer_to"),
	MEMBER(struct tr_cache_transfer, reservation_sid, "initiating_reservation_sid"),
	MEMBER(struct tr_cache_transfer, worker_sid, "initiating_worker_sid"),
	MEMBER(struct tr_cache_transfer, queue_sid, "initiating_queue_sid"),
	MEMBER(struct tr_cache_transfer, workflow_sid, "initiating_workflow_sid"),
};

/* Read on every update. */
static const struct member transfer_live[] = {
	MEMBER(struct tr_cache_transfer, status, "transfer_status"),
	MEMBER(struct tr_cache_transfer, failed_reason, "transfer_failed_reason"),
};

static const struct member task_strings[] = {
	MEMBER(struct tr_cache_task, sid, "sid"),
	SHARED(struct tr_cache_task, status, "assignment_status"),
	MEMBER(struct tr_cache_task, reason, "reason"),
	SHARED(struct tr_cache_task, queue_sid, "queue_sid"),
	SHARED(struct tr_cache_task, queue_name, "queue_name"),
	SHARED(struct tr_cache_task, workflow_sid, "workflow_sid"),
	SHARED(struct tr_cache_task, workflow_name, "workflow_name"),
	SHARED(struct tr_cache_task, task_channel_sid, "task_channel_sid"),
	SHARED(struct tr_cache_task, task_channel_unique_name, "task_channel_unique_name"),
	MEMBER(struct tr_cache_task, routing_target, "routing_target"),
};

/* ---- transfers ---- */

struct tr_cache_transfer *tr_task_wire_transfer_free(struct tr_cache_transfer *x) {
	if (!x) {
		return NULL;
	}
	free_members(x, transfer_fixed, N(transfer_fixed));
	free_members(x, transfer_live, N(transfer_live));
	free(x->task_sid);
	free(x);
	return NULL;
}

int tr_task_wire_transfer_update(struct tr_cache_transfer *x, const struct tr_json *p, bool full,
	const char *task_sid) {
	int r = 0;

	if (full) {
		r |= take_members(x, transfer_fixed, N(transfer_fixed), p);
		if (tr_json_get_string(p, "task_sid")) {
			r |= take_str(&x->task_sid, p, "task_sid");
		} else if (!x->task_sid && task_sid) {
			/* Embedded transfers lack task_sid: the enclosing task's. */
			x->task_sid = strdup(task_sid);
			if (!x->task_sid) {
				r = -ENOMEM;
			}
		}
		x->date_created = get_int(p, "date_created", x->date_created);
	}
	r |= take_members(x, transfer_live, N(transfer_live), p);
	x->date_updated = get_int(p, "date_updated", x->date_updated);
	return r ? -ENOMEM : 0;
}

static int transfer_parse(const struct tr_json *p, const char *task_sid,
	struct tr_cache_transfer **ret) {
	struct tr_cache_transfer *x;

	if (!tr_json_is(p, TR_JSON_OBJECT) || !tr_json_get_string(p, "sid") ||
		!tr_json_get_string(p, "transfer_status")) {
		return -EBADMSG;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		return -ENOMEM;
	}
	if (tr_task_wire_transfer_update(x, p, true, task_sid) < 0) {
		tr_task_wire_transfer_free(x);
		return -ENOMEM;
	}
	*ret = x;
	return 0;
}

int tr_task_wire_transfer_set(struct tr_cache_transfer **slot, const struct tr_json *p,
	const char *task_sid) {
	struct tr_cache_transfer *x;
	int r;

	if (!tr_json_is(p, TR_JSON_OBJECT)) {
		return 0;
	}
	if (*slot && (*slot)->sid && tr_json_get_string(p, "sid") &&
		strcmp((*slot)->sid, tr_json_get_string(p, "sid")) == 0) {
		return tr_task_wire_transfer_update(*slot, p, true, task_sid);
	}
	r = transfer_parse(p, task_sid, &x);
	if (r < 0) {
		return r;
	}
	tr_task_wire_transfer_free(*slot);
	*slot = x;
	return 0;
}

/* ---- tasks ---- */

/* The text "{}", which most add-ons and many attributes are: one copy for every record,
 * never written to nor freed. */
static char empty_object[] = "{}";

static void embedded_free(char *text) {
	if (text != empty_object) {
		free(text);
	}
}

/* A kept text that is "{}" becomes the shared copy. */
static char *embedded_share(char *text, size_t len) {
	if (text != empty_object && len == 2 && memcmp(text, "{}", 2) == 0) {
		free(text);
		return empty_object;
	}
	return text;
}

void tr_task_wire_task_done(struct tr_cache_task *t) {
	free_members(t, task_strings, N(task_strings));
	embedded_free(t->attributes_json);
	embedded_free(t->addons_json);
}

int tr_task_wire_keep(const struct tr_json *v, char **ret_text, size_t *ret_len) {
	char *text = NULL, *fit;
	size_t len = 0;

	if (tr_json_dump(v, &text, &len) < 0) {
		return -ENOMEM;
	}
	fit = realloc(text, len + 1);
	*ret_text = fit ? fit : text;
	*ret_len = len;
	return 0;
}

/*
 * A JSON string member holding JSON ("attributes", "addons"); an object is taken as is.
 * The value is checked by parsing it, then kept as its compact serialisation.
 */
static int parse_embedded_all(const struct tr_json *p, const char *key, char **ret,
	size_t *ret_len);

/* parse_embedded, and a value over TR_TASK_EMBEDDED_MAX is not kept: {} instead, and its size
 * in *ret_omitted (the cache counts it). A task too large to send would fail task.get for good and its
 * events could not be framed; now it stays usable, and says what is missing. */
static int parse_embedded(const struct tr_json *p, const char *key, char **ret,
	size_t *ret_len, size_t *ret_omitted) {
	int r = parse_embedded_all(p, key, ret, ret_len);

	*ret_omitted = 0;
	if (r < 0) {
		return r;
	}
	if (*ret_len <= TR_TASK_EMBEDDED_MAX) {
		*ret = embedded_share(*ret, *ret_len);
		return 0;
	}
	free(*ret);
	*ret_omitted = *ret_len;
	*ret = empty_object;
	*ret_len = 2;
	return 0;
}

static int parse_embedded_all(const struct tr_json *p, const char *key, char **ret,
	size_t *ret_len) {
	const struct tr_json *v = tr_json_get(p, key);
	struct tr_json *tree = NULL;
	int r;

	if (!v || v->type == TR_JSON_NULL || (v->type == TR_JSON_STRING && v->u.str.len == 0)) {
		*ret = empty_object;
		*ret_len = 2;
		return 0;
	}
	if (v->type == TR_JSON_OBJECT) {
		return tr_task_wire_keep(v, ret, ret_len);
	}
	if (v->type != TR_JSON_STRING) {
		return -EBADMSG;
	}
	r = tr_json_parse(v->u.str.s, v->u.str.len, &tree, NULL);
	if (r < 0) {
		return r == -ENOMEM ? -ENOMEM : -EBADMSG;
	}
	r = tr_task_wire_keep(tree, ret, ret_len);
	tr_json_free(tree);
	return r;
}

int tr_task_wire_task_read(const struct tr_json *p, struct tr_cache_task *t) {
	int64_t v;
	int r;

	if (!tr_json_is(p, TR_JSON_OBJECT) || !tr_json_get_string(p, "sid") ||
		!tr_json_get_string(p, "assignment_status") || tr_json_get_int(p, "version", &v) < 0) {
		return -EBADMSG;
	}
	t->version = v;
	r = parse_embedded(p, "attributes", &t->attributes_json, &t->attributes_len,
		&t->attributes_omitted);
	if (r < 0) {
		goto fail;
	}
	r = parse_embedded(p, "addons", &t->addons_json, &t->addons_len, &t->addons_omitted);
	if (r < 0) {
		goto fail;
	}
	r = take_members(t, task_strings, N(task_strings), p);
	if (r < 0) {
		goto fail;
	}
	t->age = get_int(p, "age", 0);
	t->priority = get_int(p, "priority", 0);
	t->timeout = get_int(p, "timeout", 0);
	t->date_created = get_int(p, "date_created", 0);
	t->date_updated = get_int(p, "date_updated", 0);
	t->virtual_start_time = get_int(p, "virtual_start_time", t->date_created);
	return 0;
fail:
	tr_task_wire_task_done(t);
	memset(t, 0, sizeof(*t));
	return r;
}

void tr_task_wire_task_move(struct tr_cache_task *dst, struct tr_cache_task *src) {
	tr_task_wire_task_done(dst);
	for (size_t i = 0; i < N(task_strings); i++) {
		*field(dst, &task_strings[i]) = *field(src, &task_strings[i]);
	}
	dst->attributes_json = src->attributes_json;
	dst->attributes_len = src->attributes_len;
	dst->addons_json = src->addons_json;
	dst->addons_len = src->addons_len;
	dst->attributes_omitted = src->attributes_omitted;
	dst->addons_omitted = src->addons_omitted;
	dst->age = src->age;
	dst->priority = src->priority;
	dst->timeout = src->timeout;
	dst->date_created = src->date_created;
	dst->date_updated = src->date_updated;
	dst->virtual_start_time = src->virtual_start_time;
	dst->version = src->version;
}

/* ---- reservations ---- */

void tr_task_wire_res_done(struct tr_cache_res *r) {
	unintern(r->sid);
	unintern(r->status);
	r->sid = r->status = NULL;
}

int tr_task_wire_res_update(struct tr_cache_res *r, const struct tr_json *p) {
	const char *sid = tr_json_get_string(p, "sid");
	const char *status = tr_json_get_string(p, "reservation_status");
	char *nsid = NULL, *nstatus;

	if (!tr_json_is(p, TR_JSON_OBJECT) || !sid) {
		return -EBADMSG;
	}
	if (!r->sid && !(nsid = intern(sid))) {
		return -ENOMEM;
	}
	nstatus = intern(status ? status : r->status ? r->status : "pending");
	if (!nstatus) {
		unintern(nsid);
		return -ENOMEM;
	}
	if (nsid) {
		r->sid = nsid;
		r->version = -1;
		r->timeout = -1;
	}
	unintern(r->status);
	r->status = nstatus;
	r->version = get_int(p, "version", r->version);
	r->timeout = get_int(p, "reservation_timeout", r->timeout);
	r->date_created = get_int(p, "date_created", r->date_created);
	r->date_updated = get_int(p, "date_updated", r->date_updated);
	r->canceled_reason_code = get_int(p, "canceled_reason_code", r->canceled_reason_code);
	return 0;
}
