/*
 * human.h — how taskrouterctl shows things to people: ANSI colours (only when the caller
 * turned them on), aligned tables, times as local dates with a relative age, durations with
 * units, and indented JSON.
 *
 * It knows nothing of the daemon, its objects or libtaskrouter, and depends on libc only.
 * The colour switch is process-wide: taskrouterctl sets it once, from the terminal test,
 * NO_COLOR and --color, before it prints anything.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum tr_human_color {
	TR_COLOR_NONE,
	TR_COLOR_BOLD,
	TR_COLOR_DIM,
	TR_COLOR_RED,
	TR_COLOR_GREEN,
	TR_COLOR_YELLOW,
	TR_COLOR_BLUE,
	TR_COLOR_MAGENTA,
	TR_COLOR_CYAN,
	_TR_COLOR_MAX,
};

/* Turn colours on or off (off at start). */
void tr_human_set_color(bool on);
bool tr_human_get_color(void);

/* The escape sequence that starts colour c, and the one that ends it; "" with colours off
 * or for TR_COLOR_NONE. */
const char *tr_human_on(enum tr_human_color c);
const char *tr_human_off(enum tr_human_color c);

/* The colour a status reads in: a task's, a reservation's, the upstream session's state.
 * Unknown ones: TR_COLOR_NONE. */
enum tr_human_color tr_human_status_color(const char *status);

/* The width of s on a terminal: its UTF-8 characters (every character one column), colour
 * sequences left out. */
size_t tr_human_width(const char *s);

/*
 * A duration with units, its two largest ones, a zero second one left out: "0s", "45s",
 * "3m", "3m20s", "2h5m", "1d", "1d3h". Negative counts as 0. Returns buf.
 */
char *tr_human_duration(int64_t seconds, char *buf, size_t size);

/* How long ago then was, seen at now (epoch seconds): "just now", "45 s ago", "3 min ago",
 * "2 h 5 min ago", "3 days ago", or "in 3 min" for a time to come. Returns buf. */
char *tr_human_ago(int64_t then, int64_t now, char *buf, size_t size);

/* then (epoch seconds) as a local date and its age at now: "2025-01-02 12:02:00 UTC (3 min
 * ago)". Returns buf. */
char *tr_human_date(int64_t then, int64_t now, char *buf, size_t size);

/*
 * Write JSON text (one valid document, compact or not) to f indented by two spaces a level,
 * one member or element a line, empty containers as {} and [], then a newline. With colours
 * on, keys are blue and string values green.
 */
void tr_human_json(FILE *f, const char *json);

/* A column of a table: its heading, and whether it is a number (aligned on the right). */
struct tr_human_column {
	const char *head;
	bool right;
};

/*
 * A table built cell by cell and printed with every column as wide as its widest cell, two
 * spaces between columns and no blank at the end of a line. Each cell has a colour of its
 * own; headings are bold. Out of memory is remembered and reported by the print. Without
 * headings and unaligned, a table of "key:" and value cells is "key: value" lines.
 */
struct tr_human_table;

/* cols (borrowed until the table is freed) has n columns; heads false: no heading line.
 * NULL on ENOMEM. */
struct tr_human_table *tr_human_table_new(const struct tr_human_column *cols, size_t n,
	bool heads);
/* Add the next cell: the cells fill the rows from the left, n to a row. */
void tr_human_table_cell(struct tr_human_table *t, enum tr_human_color c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Remember that a cell could not be made (out of memory): the print then fails. */
void tr_human_table_fail(struct tr_human_table *t);
/*
 * Print it to f: aligned, or (aligned false) each line's cells joined by one space. Empty
 * cells at the end of a row are left out. Returns 0, or -ENOMEM when a cell could not be
 * stored or the last row is short (nothing printed then).
 */
int tr_human_table_print(const struct tr_human_table *t, FILE *f, bool aligned);
/* Accepts NULL; returns NULL. */
struct tr_human_table *tr_human_table_free(struct tr_human_table *t);
