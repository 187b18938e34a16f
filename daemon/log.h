/*
 * log.h — the daemon's one logger.
 *
 * Lines go to stderr as plain text with the level name. Under journald (JOURNAL_STREAM
 * matches stderr) each record goes to the journal's native socket instead, non-blocking,
 * with PRIORITY, SYSLOG_IDENTIFIER=taskrouterd, MESSAGE and, when the line names them,
 * TR_TASK_SID and TR_RESERVATION_SID (journalctl TR_TASK_SID=WT… lists a task's lines); a
 * record the socket cannot take at once goes to stderr with a "<N>" syslog-level prefix.
 * Never log tokens, auth headers or REST bodies.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum tr_log_level {
	TR_LOG_ERR = 3,
	TR_LOG_WARNING = 4,
	TR_LOG_NOTICE = 5,
	TR_LOG_INFO = 6,
	TR_LOG_DEBUG = 7,
};

/* Set the maximum level printed (default TR_LOG_INFO) and detect journald. */
void tr_log_setup(enum tr_log_level max_level);

/* Parse "err", "warning", "notice", "info", "debug" (or 3..7). Returns the level or -EINVAL. */
int tr_log_level_parse(const char *s);

bool tr_log_enabled(enum tr_log_level level);

/* The first SID with this two-letter prefix ("WT", "WR") in text (the prefix and 32 lower-case
 * hex digits, not inside a longer word), into out (size >= 35). False when there is none. */
bool tr_log_find_sid(const char *text, const char *prefix, char *out, size_t size);

void tr_log(enum tr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define tr_log_err(...) tr_log(TR_LOG_ERR, __VA_ARGS__)
#define tr_log_warning(...) tr_log(TR_LOG_WARNING, __VA_ARGS__)
#define tr_log_notice(...) tr_log(TR_LOG_NOTICE, __VA_ARGS__)
#define tr_log_info(...) tr_log(TR_LOG_INFO, __VA_ARGS__)
#define tr_log_debug(...)                                                                          \
	do {                                                                                       \
		if (tr_log_enabled(TR_LOG_DEBUG)) {                                                \
			tr_log(TR_LOG_DEBUG, __VA_ARGS__);                                         \
		}                                                                                  \
	} while (0)
