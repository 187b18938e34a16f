/*
 * task-json.c — the Task and Transfer objects and the ISO time format (see task-json.h).
 */
#include "task-json.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "json.h"

/* ---- the ISO time format ---- */

/* Days since 1970-01-01 → civil date (proleptic Gregorian), valid for any int64 day count
 * that fits; the usual era-of-400-years arithmetic, so no gmtime() and no tz lock. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static char *put2(char *p, unsigned v) {
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

void tr_task_json_time_format(int64_t epoch, char *buf, size_t size) {
	int64_t days, secs, y;
	unsigned m, d;
	char tmp[24], *p = tmp;

	/* Years 0000–9999 only, the range the ISO form can show. */
	if (epoch < -62167219200LL || epoch > 253402300799LL) {
		epoch = 0;
	}
	days = epoch / 86400;
	secs = epoch % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	p = put2(p, (unsigned)(y / 100));
	p = put2(p, (unsigned)(y % 100));
	*p++ = '-';
	p = put2(p, m);
	*p++ = '-';
	p = put2(p, d);
	*p++ = 'T';
	p = put2(p, (unsigned)(secs / 3600));
	*p++ = ':';
	p = put2(p, (unsigned)(secs / 60 % 60));
	*p++ = ':';
	p = put2(p, (unsigned)(secs % 60));
	*p++ = 'Z';
	if (size) {
		size_t n = (size_t)(p - tmp) < size ? (size_t)(p - tmp) : size - 1;

		memcpy(buf, tmp, n);
		buf[n] = '\0';
	}
}

/* Does s match pattern, where 'd' is a decimal digit, '?' any byte and others themselves?
 * (sscanf's %d alone would take signs and spaces.) */
static bool digits_at(const char *s, const char *pattern) {
	for (; *pattern; pattern++, s++) {
		if (*pattern == 'd' ? !isdigit((unsigned char)*s) :
			(*pattern != '?' && *s != *pattern)) {
			return false;
		}
	}
	return true;
}

/* Proleptic Gregorian, as ISO 8601 counts: 2024-02-30 is refused, not moved to March. */
static int days_in_month(int y, int mo) {
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return mo == 2 && leap ? 29 : days[mo - 1];
}

/* A numeric offset past +23:59 is no offset. p is at 'Z' or the sign. */
static bool off_bad(const char *p) {
	return (*p == '+' || *p == '-') &&
		((p[1] - '0') * 10 + (p[2] - '0') > 23 || (p[4] - '0') * 10 + (p[5] - '0') > 59);
}

int tr_task_json_time_parse(const char *s, int64_t *ret_epoch) {
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, n = 0;
	const char *p;
	int64_t off = 0;
	time_t t;

	if (!s || sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 ||
		(s[10] != 'T' && s[10] != 't' && s[10] != ' ')) {
		return -EINVAL;
	}
	n = 0;
	if (sscanf(s + 11, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3 || n != 8) {
		return -EINVAL;
	}
	p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p)) {
			return -EINVAL;
		}
		while (isdigit((unsigned char)*p)) {
			p++;
		}
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		off = 0;
	} else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
		isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
		isdigit((unsigned char)p[5]) && p[6] == '\0') {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
			((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '-') {
			off = -off;
		}
	} else {
		return -EINVAL;
	}
	if (!digits_at(s, "dddd-dd-dd?dd:dd:dd") || mo < 1 || mo > 12 || d < 1 ||
		d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 || off_bad(p)) {
		return -EINVAL;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* -1 is timegm's error, and also 1969-12-31T23:59:59Z, which is refused with it. */
	if (t == (time_t)-1) {
		return -EINVAL;
	}
	*ret_epoch = (int64_t)t - off;
	return 0;
}

/* ---- the RPC shapes, written straight to text ---- */

/* A growing buffer that remembers the first failure, so the writers below stay flat. */
struct tbuf {
	char **buf;
	size_t *len, *cap;
	int err;
	bool first; /* no member written yet in the current object */
};

static void tb_text(struct tbuf *b, const char *s, size_t n) {
	if (!b->err && tr_json_text_append(s, n, b->buf, b->len, b->cap) < 0) {
		b->err = -ENOMEM;
	}
}

/* `"key":` (keys here are plain ASCII literals), with the comma when needed. Written by
 * hand, not with snprintf: this runs some 30 times per Task and printf dominated. */
static void tb_key(struct tbuf *b, const char *k) {
	char tmp[48];
	size_t n = 0, kl = strlen(k);

	if (kl > sizeof(tmp) - 4) {
		b->err = -EINVAL;
		return;
	}
	if (!b->first) {
		tmp[n++] = ',';
	}
	tmp[n++] = '"';
	memcpy(tmp + n, k, kl);
	n += kl;
	tmp[n++] = '"';
	tmp[n++] = ':';
	b->first = false;
	tb_text(b, tmp, n);
}

static void tb_str(struct tbuf *b, const char *k, const char *v) {
	tb_key(b, k);
	if (!v) {
		tb_text(b, "null", 4);
	} else if (!b->err && tr_json_quote_append(v, strlen(v), b->buf, b->len, b->cap) < 0) {
		b->err = -ENOMEM;
	}
}

/* Decimal text of v into tmp (>= 21 bytes); returns the length. */
static size_t fmt_int(char *tmp, int64_t v) {
	char rev[20];
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	size_t n = 0, r = 0;

	do {
		rev[r++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0) {
		tmp[n++] = '-';
	}
	while (r) {
		tmp[n++] = rev[--r];
	}
	return n;
}

static void tb_int(struct tbuf *b, const char *k, int64_t v) {
	char tmp[24];

	tb_key(b, k);
	tb_text(b, tmp, fmt_int(tmp, v));
}

static void tb_time(struct tbuf *b, const char *k, const char *kiso, int64_t v) {
	char iso[40];

	tr_task_json_time_format(v, iso, sizeof(iso));
	tb_int(b, k, v);
	tb_str(b, kiso, iso);
}

static void tb_open(struct tbuf *b) {
	tb_text(b, "{", 1);
	b->first = true;
}

static void tb_close(struct tbuf *b) {
	tb_text(b, "}", 1);
	b->first = false;
}

static void transfer_text(struct tbuf *b, const struct tr_cache_transfer *x) {
	if (!x) {
		tb_text(b, "null", 4);
		return;
	}
	tb_open(b);
	tb_str(b, "sid", x->sid);
	tb_str(b, "type", x->type);
	tb_str(b, "mode", x->mode);
	tb_str(b, "to", x->to);
	tb_str(b, "status", x->status);
	tb_str(b, "failedReason", x->failed_reason);
	tb_str(b, "reservationSid", x->reservation_sid);
	tb_str(b, "workerSid", x->worker_sid);
	tb_str(b, "queueSid", x->queue_sid);
	tb_str(b, "workflowSid", x->workflow_sid);
	tb_str(b, "taskSid", x->task_sid);
	tb_int(b, "dateCreated", x->date_created);
	tb_int(b, "dateUpdated", x->date_updated);
	tb_close(b);
}

int tr_task_json_transfer_text(const struct tr_cache_transfer *x, char **buf, size_t *len,
	size_t *cap) {
	struct tbuf b = { buf, len, cap, 0, false };

	transfer_text(&b, x);
	return b.err;
}

int tr_task_json_task_text(const struct tr_cache_task *t, char **buf, size_t *len, size_t *cap) {
	struct tbuf b = { buf, len, cap, 0, false };
	char ver[24];

	ver[fmt_int(ver, t->version)] = '\0';
	tb_open(&b);
	tb_str(&b, "sid", t->sid);
	tb_str(&b, "status", tr_cache_task_status(t));
	tb_str(&b, "wireStatus", t->status);
	tb_key(&b, "attributes");
	tb_text(&b, t->attributes_json ? t->attributes_json : "{}",
		t->attributes_json ? t->attributes_len : 2);
	tb_key(&b, "addOns");
	tb_text(&b, t->addons_json ? t->addons_json : "{}", t->addons_json ? t->addons_len : 2);
	if (t->attributes_omitted) {
		tb_int(&b, "attributesOmitted", (int64_t)t->attributes_omitted);
	}
	if (t->addons_omitted) {
		tb_int(&b, "addOnsOmitted", (int64_t)t->addons_omitted);
	}
	tb_int(&b, "age", t->age);
	tb_int(&b, "priority", t->priority);
	tb_str(&b, "reason", t->reason);
	tb_int(&b, "timeout", t->timeout);
	tb_str(&b, "queueSid", t->queue_sid);
	tb_str(&b, "queueName", t->queue_name);
	tb_str(&b, "workflowSid", t->workflow_sid);
	tb_str(&b, "workflowName", t->workflow_name);
	tb_str(&b, "taskChannelSid", t->task_channel_sid);
	tb_str(&b, "taskChannelUniqueName", t->task_channel_unique_name);
	tb_str(&b, "routingTarget", t->routing_target);
	tb_time(&b, "dateCreated", "dateCreatedIso", t->date_created);
	tb_time(&b, "dateUpdated", "dateUpdatedIso", t->date_updated);
	tb_time(&b, "virtualStartTime", "virtualStartTimeIso", t->virtual_start_time);
	tb_str(&b, "version", ver);
	tb_str(&b, "reservationSid", tr_cache_task_reservation(t));
	tb_key(&b, "reservations");
	tb_text(&b, "[", 1);
	for (size_t i = 0; i < t->n_res; i++) {
		if (i) {
			tb_text(&b, ",", 1);
		}
		tb_open(&b);
		tb_str(&b, "sid", t->res[i].sid);
		tb_str(&b, "status", t->res[i].status);
		tb_close(&b);
	}
	tb_text(&b, "]", 1);
	tb_key(&b, "transfers");
	tb_open(&b);
	tb_key(&b, "incoming");
	transfer_text(&b, t->incoming);
	tb_key(&b, "outgoing");
	transfer_text(&b, t->outgoing);
	tb_close(&b);
	tb_close(&b);
	return b.err;
}

/* A writer's text (r its result) as a raw node. */
static struct tr_json *raw_node(int r, char *buf, size_t len) {
	if (r < 0 || !buf) {
		free(buf);
		return NULL;
	}
	return tr_json_new_raw_take(buf, len);
}

/* A raw node's text parsed back into a tree; frees the raw node. */
static struct tr_json *raw_to_tree(struct tr_json *raw) {
	struct tr_json *j = NULL;

	if (raw && tr_json_parse(raw->u.str.s, raw->u.str.len, &j, NULL) < 0) {
		j = NULL;
	}
	tr_json_free(raw);
	return j;
}

struct tr_json *tr_task_json_task_raw(const struct tr_cache_task *t) {
	/* Room for the usual Task in one allocation: its two JSON texts plus the fixed part. */
	size_t cap = t->attributes_len + t->addons_len + 1024, len = 0;
	char *buf = malloc(cap);
	int r = buf ? tr_task_json_task_text(t, &buf, &len, &cap) : -ENOMEM;

	return raw_node(r, buf, len);
}

struct tr_json *tr_task_json_task_tree(const struct tr_cache_task *t) {
	return raw_to_tree(tr_task_json_task_raw(t));
}

struct tr_json *tr_task_json_transfer_raw(const struct tr_cache_transfer *x) {
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int r = tr_task_json_transfer_text(x, &buf, &len, &cap);

	return raw_node(r, buf, len);
}

struct tr_json *tr_task_json_transfer_tree(const struct tr_cache_transfer *x) {
	return raw_to_tree(tr_task_json_transfer_raw(x));
}

/* ---- the Reservation object ---- */

int tr_task_json_res_text(const struct tr_cache_res *r, const struct tr_cache_task *t,
	const struct tr_cache_ident *id, bool with_task, char **buf, size_t *len, size_t *cap) {
	struct tbuf b = { buf, len, cap, 0, false };
	char ver[24];

	tb_open(&b);
	tb_str(&b, "sid", r->sid);
	tb_str(&b, "status", r->status);
	if (r->version >= 0) {
		ver[fmt_int(ver, r->version)] = '\0';
		tb_str(&b, "version", ver);
	} else {
		tb_str(&b, "version", NULL);
	}
	if (r->timeout >= 0) {
		tb_int(&b, "timeout", r->timeout);
	} else {
		tb_str(&b, "timeout", NULL);
	}
	tb_str(&b, "taskSid", t->sid);
	tb_str(&b, "workerSid", id ? id->worker_sid : "");
	tb_str(&b, "accountSid", id ? id->account_sid : "");
	tb_str(&b, "workspaceSid", id ? id->workspace_sid : "");
	tb_time(&b, "dateCreated", "dateCreatedIso", r->date_created);
	tb_time(&b, "dateUpdated", "dateUpdatedIso", r->date_updated);
	if (r->canceled_reason_code) {
		tb_int(&b, "canceledReasonCode", r->canceled_reason_code);
	}
	if (with_task) {
		tb_key(&b, "task");
		if (!b.err) {
			b.err = tr_task_json_task_text(t, buf, len, cap);
		}
		b.first = false;
	}
	tb_close(&b);
	return b.err;
}

struct tr_json *tr_task_json_res_raw(const struct tr_cache_res *r, const struct tr_cache_task *t,
	const struct tr_cache_ident *id, bool with_task) {
	size_t cap = (with_task ? t->attributes_len + t->addons_len + 1024 : 0) + 512, len = 0;
	char *buf = malloc(cap);
	int e = buf ? tr_task_json_res_text(r, t, id, with_task, &buf, &len, &cap) : -ENOMEM;

	return raw_node(e, buf, len);
}

struct tr_json *tr_task_json_res_tree(const struct tr_cache_res *r, const struct tr_cache_task *t,
	const struct tr_cache_ident *id, bool with_task) {
	return raw_to_tree(tr_task_json_res_raw(r, t, id, with_task));
}
