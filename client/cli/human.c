/*
 * human.c — colours, tables, dates, durations and indented JSON for taskrouterctl.
 */
#include "human.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool color_on;

void tr_human_set_color(bool on) {
	color_on = on;
}

bool tr_human_get_color(void) {
	return color_on;
}

static const char *const sgr[_TR_COLOR_MAX] = {
	[TR_COLOR_NONE] = "",
	[TR_COLOR_BOLD] = "\033[1m",
	[TR_COLOR_DIM] = "\033[2m",
	[TR_COLOR_RED] = "\033[31m",
	[TR_COLOR_GREEN] = "\033[32m",
	[TR_COLOR_YELLOW] = "\033[33m",
	[TR_COLOR_BLUE] = "\033[34m",
	[TR_COLOR_MAGENTA] = "\033[35m",
	[TR_COLOR_CYAN] = "\033[36m",
};

const char *tr_human_on(enum tr_human_color c) {
	return color_on && c > TR_COLOR_NONE && c < _TR_COLOR_MAX ? sgr[c] : "";
}

const char *tr_human_off(enum tr_human_color c) {
	return color_on && c > TR_COLOR_NONE && c < _TR_COLOR_MAX ? "\033[0m" : "";
}

enum tr_human_color tr_human_status_color(const char *status) {
	static const struct {
		const char *status;
		enum tr_human_color color;
	} rows[] = {
		/* tasks and reservations: what needs the agent, what is theirs, what ended */
		{"pending", TR_COLOR_YELLOW},
		{"reserved", TR_COLOR_YELLOW},
		{"assigned", TR_COLOR_GREEN},
		{"accepted", TR_COLOR_GREEN},
		{"wrapping", TR_COLOR_CYAN},
		{"transferring", TR_COLOR_MAGENTA},
		{"completed", TR_COLOR_DIM},
		{"canceled", TR_COLOR_RED},
		{"rejected", TR_COLOR_DIM},
		{"timeout", TR_COLOR_RED},
		{"rescinded", TR_COLOR_DIM},
		/* the upstream session */
		{"ready", TR_COLOR_GREEN},
		{"connecting", TR_COLOR_YELLOW},
		{"open", TR_COLOR_YELLOW},
		{"initializing", TR_COLOR_YELLOW},
		{"reconnecting", TR_COLOR_YELLOW},
		{"token_expired", TR_COLOR_RED},
		{"stopped", TR_COLOR_RED},
	};

	for (size_t i = 0; status && i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (strcmp(rows[i].status, status) == 0) {
			return rows[i].color;
		}
	}
	return TR_COLOR_NONE;
}

size_t tr_human_width(const char *s) {
	size_t n = 0;

	for (; *s; s++) {
		if (s[0] == '\033' && s[1] == '[') {
			/* a colour: CSI parameters up to the final byte, no column */
			for (s += 2; *s && !(*s >= 0x40 && *s <= 0x7e); s++) {
			}
			if (!*s) {
				break;
			}
			continue;
		}
		/* count every byte but UTF-8 continuation bytes */
		n += ((unsigned char)*s & 0xc0) != 0x80;
	}
	return n;
}

char *tr_human_duration(int64_t s, char *buf, size_t size) {
	static const struct {
		int64_t seconds;
		char unit;
	} units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
	const size_t last = sizeof(units) / sizeof(units[0]) - 1;
	size_t i = 0;
	int64_t rest;

	if (s < 0) {
		s = 0;
	}
	while (i < last && s < units[i].seconds) {
		i++;
	}
	rest = i < last ? (s % units[i].seconds) / units[i + 1].seconds : 0;
	if (rest) {
		snprintf(buf, size, "%" PRId64 "%c%" PRId64 "%c", s / units[i].seconds,
			units[i].unit, rest, units[i + 1].unit);
	} else {
		snprintf(buf, size, "%" PRId64 "%c", s / units[i].seconds, units[i].unit);
	}
	return buf;
}

char *tr_human_ago(int64_t then, int64_t now, char *buf, size_t size) {
	int64_t d = now - then, a = d < 0 ? -d : d;
	char span[64];

	if (a == 0) {
		snprintf(buf, size, "just now");
		return buf;
	}
	if (a < 60) {
		snprintf(span, sizeof(span), "%" PRId64 " s", a);
	} else if (a < 3600) {
		snprintf(span, sizeof(span), "%" PRId64 " min", a / 60);
	} else if (a < 86400 && (a % 3600) / 60) {
		snprintf(span, sizeof(span), "%" PRId64 " h %" PRId64 " min", a / 3600,
			(a % 3600) / 60);
	} else if (a < 86400) {
		snprintf(span, sizeof(span), "%" PRId64 " h", a / 3600);
	} else if (a < 7 * 86400 && (a % 86400) / 3600) {
		snprintf(span, sizeof(span), "%" PRId64 " day%s %" PRId64 " h", a / 86400,
			a < 2 * 86400 ? "" : "s", (a % 86400) / 3600);
	} else {
		snprintf(span, sizeof(span), "%" PRId64 " day%s", a / 86400,
			a < 2 * 86400 ? "" : "s");
	}
	snprintf(buf, size, d > 0 ? "%s ago" : "in %s", span);
	return buf;
}

char *tr_human_date(int64_t then, int64_t now, char *buf, size_t size) {
	time_t t = (time_t)then;
	struct tm tm;
	char date[64], ago[64];

	if (!localtime_r(&t, &tm) ||
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %Z", &tm) == 0) {
		snprintf(date, sizeof(date), "?");
	}
	snprintf(buf, size, "%s (%s)", date, tr_human_ago(then, now, ago, sizeof(ago)));
	return buf;
}

/* ------------------------------------------------------------------ JSON */

static void indent(FILE *f, int level) {
	fputc('\n', f);
	for (int i = 0; i < level; i++) {
		fputs("  ", f);
	}
}

static const char *skip_blank(const char *p) {
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
		p++;
	}
	return p;
}

/* The end of the string that starts at the quote p: just after its closing quote. */
static const char *string_end(const char *p) {
	for (p++; *p && *p != '"'; p++) {
		if (*p == '\\' && p[1]) {
			p++;
		}
	}
	return *p ? p + 1 : p;
}

void tr_human_json(FILE *f, const char *json) {
	int level = 0;

	for (const char *p = skip_blank(json); *p; p = skip_blank(p)) {
		const char *end;

		switch (*p) {
		case '{':
		case '[':
			end = skip_blank(p + 1);
			if (*end == (*p == '{' ? '}' : ']')) {
				fputc(*p, f);
				fputc(*end, f);
				p = end + 1;
				break;
			}
			fputc(*p++, f);
			indent(f, ++level);
			break;
		case '}':
		case ']':
			indent(f, level > 0 ? --level : 0);
			fputc(*p++, f);
			break;
		case ',':
			fputc(*p++, f);
			indent(f, level);
			break;
		case ':':
			fputs(": ", f);
			p++;
			break;
		case '"': {
			enum tr_human_color c;

			end = string_end(p);
			c = *skip_blank(end) == ':' ? TR_COLOR_BLUE : TR_COLOR_GREEN;
			fprintf(f, "%s%.*s%s", tr_human_on(c), (int)(end - p), p, tr_human_off(c));
			p = end;
			break;
		}
		default:
			/* a number, true, false or null */
			end = p + strcspn(p, ",:]} \t\r\n\"{[");
			if (end == p) {
				end = p + 1;
			}
			fwrite(p, 1, (size_t)(end - p), f);
			p = end;
			break;
		}
	}
	fputc('\n', f);
}

/* ------------------------------------------------------------------ tables */

struct cell {
	char *text;
	enum tr_human_color color;
};

struct tr_human_table {
	const struct tr_human_column *cols;
	size_t n_cols;
	bool heads;
	struct cell *cells; /* n_rows * n_cols of them, row by row */
	size_t n_cells, cap;
	bool failed;
};

struct tr_human_table *tr_human_table_new(const struct tr_human_column *cols, size_t n,
	bool heads) {
	struct tr_human_table *t = calloc(1, sizeof(*t));

	if (t) {
		t->cols = cols;
		t->n_cols = n;
		t->heads = heads;
	}
	return t;
}

/* Append a cell, taking text (NULL: out of memory, remembered). */
static void add_cell(struct tr_human_table *t, char *text, enum tr_human_color c) {
	if (!text) {
		t->failed = true;
		return;
	}
	if (t->n_cells == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16 * t->n_cols;
		struct cell *n = realloc(t->cells, cap * sizeof(*n));

		if (!n) {
			free(text);
			t->failed = true;
			return;
		}
		t->cells = n;
		t->cap = cap;
	}
	t->cells[t->n_cells++] = (struct cell){text, c};
}

void tr_human_table_fail(struct tr_human_table *t) {
	t->failed = true;
}

void tr_human_table_cell(struct tr_human_table *t, enum tr_human_color c, const char *fmt, ...) {
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		s = NULL;
	}
	va_end(ap);
	add_cell(t, s, c);
}

static void print_cell(FILE *f, const char *text, enum tr_human_color c, size_t width, bool right,
	bool last) {
	size_t w = tr_human_width(text), pad = width > w ? width - w : 0;

	if (right) {
		fprintf(f, "%*s", (int)pad, "");
	}
	fprintf(f, "%s%s%s", tr_human_on(c), text, tr_human_off(c));
	if (!right && !last) {
		fprintf(f, "%*s", (int)pad, "");
	}
}

/* One line: the cells up to the last that is not empty, so that no line ends in blanks. */
static void print_line(const struct tr_human_table *t, FILE *f, const struct cell *cells,
	const size_t *width) {
	size_t n = t->n_cols;

	while (n > 1 && !*cells[n - 1].text) {
		n--;
	}
	for (size_t i = 0; i < n; i++) {
		fputs(i == 0 ? "" : width ? "  " : " ", f);
		print_cell(f, cells[i].text, cells[i].color, width ? width[i] : 0,
			width && t->cols[i].right, i + 1 == n);
	}
	fputc('\n', f);
}

int tr_human_table_print(const struct tr_human_table *t, FILE *f, bool aligned) {
	struct cell *heads = NULL;
	size_t *width = NULL;

	if (t->failed || t->n_cells % t->n_cols != 0) {
		return -ENOMEM;
	}
	width = calloc(t->n_cols, sizeof(*width));
	heads = calloc(t->n_cols, sizeof(*heads));
	if (!width || !heads) {
		free(width);
		free(heads);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->n_cols; i++) {
		heads[i] = (struct cell){(char *)t->cols[i].head, TR_COLOR_BOLD};
		width[i] = t->heads ? tr_human_width(t->cols[i].head) : 0;
	}
	for (size_t i = 0; i < t->n_cells; i++) {
		size_t w = tr_human_width(t->cells[i].text);

		if (w > width[i % t->n_cols]) {
			width[i % t->n_cols] = w;
		}
	}
	if (t->heads) {
		print_line(t, f, heads, aligned ? width : NULL);
	}
	for (size_t i = 0; i < t->n_cells; i += t->n_cols) {
		print_line(t, f, &t->cells[i], aligned ? width : NULL);
	}
	free(heads);
	free(width);
	return 0;
}

struct tr_human_table *tr_human_table_free(struct tr_human_table *t) {
	if (t) {
		for (size_t i = 0; i < t->n_cells; i++) {
			free(t->cells[i].text);
		}
		free(t->cells);
		free(t);
	}
	return NULL;
}
