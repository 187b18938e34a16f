/*
 * log.c — the daemon's one logger: stderr, or under journald the journal's native
 * protocol (a datagram per record with PRIORITY, MESSAGE and the task and reservation
 * sids the line names), falling back to "<N>"-prefixed stderr lines when the journal
 * socket cannot take a record; and a simple repeat suppressor so a message logged in a
 * loop does not flood the journal.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REPEAT_WINDOW_S 10 /* identical lines within this window are counted, not printed */
#define LOG_LINE_MAX 1024

static enum tr_log_level max_level = TR_LOG_INFO;
static bool under_journald;
static int journal_fd = -1; /* datagram socket to the journal, connected; -1: none */

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

/* The journal's native socket, non-blocking: a record it cannot take at once goes to stderr
 * instead, so logging never waits for journald. TR_JOURNAL_SOCKET names another socket (for
 * tests). */
static int journal_open(void) {
	const char *path = getenv("TR_JOURNAL_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (!path || !*path) {
		path = "/run/systemd/journal/socket";
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void tr_log_setup(enum tr_log_level level) {
	max_level = level;
	under_journald = detect_journald();
	if (journal_fd >= 0) {
		close(journal_fd);
		journal_fd = -1;
	}
	if (under_journald) {
		journal_fd = journal_open();
	}
}

/* The first SID of the given prefix ("WT", "WR") in text: the prefix and 32 hex digits, not
 * inside a longer word. Copied into out (>= 35 bytes); false when there is none. */
bool tr_log_find_sid(const char *text, const char *prefix, char *out, size_t size) {
	for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix)) {
		size_t n = 0;

		if (p > text && ((p[-1] >= '0' && p[-1] <= '9') || (p[-1] >= 'A' && p[-1] <= 'Z') ||
			(p[-1] >= 'a' && p[-1] <= 'z'))) {
			continue;
		}
		while (n < 32 && ((p[2 + n] >= '0' && p[2 + n] <= '9') ||
			(p[2 + n] >= 'a' && p[2 + n] <= 'f'))) {
			n++;
		}
		if (n == 32 && size > 34) {
			memcpy(out, p, 34);
			out[34] = '\0';
			return true;
		}
	}
	return false;
}

/* Append "KEY=value\n" at *n of buf; false (buf unchanged) when it does not fit. */
static bool append_field(char *buf, size_t size, int *n, const char *key, const char *value) {
	int m = snprintf(buf + *n, size - (size_t)*n, "%s=%s\n", key, value);

	if (m < 0 || (size_t)m >= size - (size_t)*n) {
		buf[*n] = '\0';
		return false;
	}
	*n += m;
	return true;
}

/* One record in the journal's native protocol ("KEY=value" lines; our values never hold a
 * newline). Returns false when the journal did not take it. */
static bool journal_send(enum tr_log_level level, const char *text) {
	char buf[LOG_LINE_MAX + 256], sid[40];
	int n;

	n = snprintf(buf, sizeof(buf), "PRIORITY=%d\nSYSLOG_IDENTIFIER=taskrouterd\nMESSAGE=%s\n",
		(int)level, text);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		return false;
	}
	if (tr_log_find_sid(text, "WT", sid, sizeof(sid)) &&
		!append_field(buf, sizeof(buf), &n, "TR_TASK_SID", sid)) {
		return false;
	}
	if (tr_log_find_sid(text, "WR", sid, sizeof(sid)) &&
		!append_field(buf, sizeof(buf), &n, "TR_RESERVATION_SID", sid)) {
		return false;
	}
	return send(journal_fd, buf, (size_t)n, MSG_NOSIGNAL) == n;
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
	if (under_journald && journal_fd >= 0 && journal_send(level, text)) {
		return;
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
