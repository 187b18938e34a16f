/*
 * log.c — the daemon's one logger: stderr, "<N>" prefixes under journald,
 * and a simple repeat suppressor so a message logged in a loop does not
 * flood the journal.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define REPEAT_WINDOW_S 10 /* identical lines within this window are counted, not printed */
#define LOG_LINE_MAX 1024

static enum tr_log_level max_level = TR_LOG_INFO;
static bool under_journald;

static struct {
	char last[LOG_LINE_MAX];
	enum tr_log_level level;
	time_t first;
	unsigned suppressed;
} rep;

static const char *const level_names[] = {
	[TR_LOG_ERR] = "err",
	[TR_LOG_WARNING] = "warning",
	[TR_LOG_NOTICE] = "notice",
	[TR_LOG_INFO] = "info",
	[TR_LOG_DEBUG] = "debug",
};

static bool detect_journald(void) {
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2) {
		return false;
	}
	if (fstat(2, &st) < 0) {
		return false;
	}
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void tr_log_setup(enum tr_log_level level) {
	max_level = level;
	under_journald = detect_journald();
}

int tr_log_level_parse(const char *s) {
	if (!s) {
		return -EINVAL;
	}
	for (int i = TR_LOG_ERR; i <= TR_LOG_DEBUG; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			return i;
		}
	}
	if (strcasecmp(s, "error") == 0) {
		return TR_LOG_ERR;
	}
	if (strcasecmp(s, "warn") == 0) {
		return TR_LOG_WARNING;
	}
	if (s[0] >= '3' && s[0] <= '7' && s[1] == '\0') {
		return s[0] - '0';
	}
	return -EINVAL;
}

bool tr_log_enabled(enum tr_log_level level) {
	return level <= max_level;
}

static void emit(enum tr_log_level level, const char *text) {
	if (level < TR_LOG_ERR || level > TR_LOG_DEBUG) {
		level = TR_LOG_ERR;
	}
	if (under_journald) {
		fprintf(stderr, "<%d>%s\n", (int)level, text);
	} else {
		fprintf(stderr, "taskrouterd[%s]: %s\n", level_names[level], text);
	}
}

static void flush_repeats(void) {
	char buf[64];

	if (rep.suppressed > 0) {
		snprintf(buf, sizeof(buf), "(last message repeated %u times)", rep.suppressed);
		emit(rep.level, buf);
	}
	rep.suppressed = 0;
}

void tr_log(enum tr_log_level level, const char *fmt, ...) {
	char line[LOG_LINE_MAX];
	va_list ap;
	time_t now;
	int saved = errno;

	if (!tr_log_enabled(level)) {
		return;
	}
	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Keep each record on one line. */
	for (char *p = line; *p; p++) {
		if (*p == '\n' || *p == '\r') {
			*p = ' ';
		}
	}

	now = time(NULL);
	if (level <= TR_LOG_NOTICE && rep.level == level && strcmp(rep.last, line) == 0 &&
		now - rep.first < REPEAT_WINDOW_S) {
		rep.suppressed++;
		errno = saved;
		return;
	}
	flush_repeats();
	emit(level, line);
	snprintf(rep.last, sizeof(rep.last), "%s", line);
	rep.level = level;
	rep.first = now;
	fflush(stderr);
	errno = saved;
}
