/* Unit tests of daemon/log.c: the journal's native protocol with the sids a line names, the
 * "<N>" fallback, plain lines, levels, repeat suppression. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

static char path[64];
static int saved_stderr = -1;

/* Point stderr at a fresh temp file. */
static void capture(void) {
	int fd;
	snprintf(path, sizeof(path), "/tmp/tr-log-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	if (saved_stderr < 0) {
		saved_stderr = dup(2);
	}
	assert_true(dup2(fd, 2) == 2);
	close(fd);
}

static char *captured(void) {
	static char buf[8192];
	FILE *f;
	size_t n;
	fflush(stderr);
	dup2(saved_stderr, 2);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(path);
	return buf;
}

static void test_plain(void **state) {
	char *out;
	(void)state;
	unsetenv("JOURNAL_STREAM");
	capture();
	tr_log_setup(TR_LOG_INFO);
	tr_log_info("hello %d", 42);
	tr_log_debug("hidden");
	tr_log_err("multi\nline");
	out = captured();
	assert_non_null(strstr(out, "taskrouterd[info]: hello 42\n"));
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "taskrouterd[err]: multi line\n"));
}

static void test_journald(void **state) {
	struct stat st;
	char env[64];
	char *out;
	(void)state;
	capture();
	assert_int_equal(fstat(2, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		(unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	/* no journal socket: the "<N>" lines on stderr */
	setenv("TR_JOURNAL_SOCKET", "/nonexistent/journal/socket", 1);
	tr_log_setup(TR_LOG_DEBUG);
	tr_log_notice("n");
	tr_log_debug("d");
	out = captured();
	assert_non_null(strstr(out, "<5>n\n"));
	assert_non_null(strstr(out, "<7>d\n"));
	/* a JOURNAL_STREAM that names another file: plain lines */
	capture();
	setenv("JOURNAL_STREAM", "1:2", 1);
	tr_log_setup(TR_LOG_INFO);
	tr_log_info("x");
	out = captured();
	assert_non_null(strstr(out, "taskrouterd[info]: x\n"));
	unsetenv("JOURNAL_STREAM");
}

/* Under journald with its socket: one datagram per record, with PRIORITY, MESSAGE and the
 * task and reservation sids the line names; nothing on stderr. */
static void test_journal_native(void **state) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/tr-journal-XXXXXX", env[64], rec[2048];
	struct stat st;
	ssize_t n;
	char *out;
	int fd;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/socket", dir);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("TR_JOURNAL_SOCKET", sa.sun_path, 1);
	capture();
	assert_int_equal(fstat(2, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		(unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	tr_log_setup(TR_LOG_INFO);
	tr_log_warning("task WT0fbc4e6335fcc52ed96c632c85599ed7: reservation "
		       "WR8a81d7d820fcf01ee85c778912a385f0 gone");
	tr_log_info("plain");
	out = captured();
	assert_string_equal(out, "");
	n = recv(fd, rec, sizeof(rec) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	rec[n] = '\0';
	assert_non_null(strstr(rec, "PRIORITY=4\n"));
	assert_non_null(strstr(rec, "SYSLOG_IDENTIFIER=taskrouterd\n"));
	assert_non_null(strstr(rec, "MESSAGE=task WT0fbc4e6335fcc52ed96c632c85599ed7: reservation "
				    "WR8a81d7d820fcf01ee85c778912a385f0 gone\n"));
	assert_non_null(strstr(rec, "TR_TASK_SID=WT0fbc4e6335fcc52ed96c632c85599ed7\n"));
	assert_non_null(strstr(rec, "TR_RESERVATION_SID=WR8a81d7d820fcf01ee85c778912a385f0\n"));
	n = recv(fd, rec, sizeof(rec) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	rec[n] = '\0';
	assert_non_null(strstr(rec, "PRIORITY=6\nSYSLOG_IDENTIFIER=taskrouterd\nMESSAGE=plain\n"));
	assert_null(strstr(rec, "TR_TASK_SID"));
	/* the journal gone: back to "<N>" lines */
	close(fd);
	unlink(sa.sun_path);
	rmdir(dir);
	capture();
	tr_log_info("after");
	out = captured();
	assert_non_null(strstr(out, "<6>after\n"));
	unsetenv("JOURNAL_STREAM");
	unsetenv("TR_JOURNAL_SOCKET");
	tr_log_setup(TR_LOG_INFO);
}

static void test_find_sid(void **state) {
	char sid[40];
	(void)state;

	assert_true(tr_log_find_sid("x WT0fbc4e6335fcc52ed96c632c85599ed7 y", "WT", sid,
		sizeof(sid)));
	assert_string_equal(sid, "WT0fbc4e6335fcc52ed96c632c85599ed7");
	assert_true(tr_log_find_sid("Tasks/WT0fbc4e6335fcc52ed96c632c85599ed7", "WT", sid,
		sizeof(sid)));
	assert_false(tr_log_find_sid("NEWT0fbc4e6335fcc52ed96c632c85599ed7", "WT", sid,
		sizeof(sid))); /* inside a word */
	assert_false(tr_log_find_sid("WT0fbc4e6335", "WT", sid, sizeof(sid))); /* too short */
	assert_false(tr_log_find_sid("WTXfbc4e6335fcc52ed96c632c85599ed7", "WT", sid, sizeof(sid)));
	assert_false(tr_log_find_sid("WR8a81d7d820fcf01ee85c778912a385f0", "WT", sid, sizeof(sid)));
}

static void test_repeats(void **state) {
	char *out;
	(void)state;
	unsetenv("JOURNAL_STREAM");
	capture();
	tr_log_setup(TR_LOG_INFO);
	for (int i = 0; i < 5; i++) {
		tr_log_warning("same thing");
	}
	tr_log_warning("other thing");
	out = captured();
	assert_non_null(strstr(out, "same thing\n"));
	assert_null(strstr(strstr(out, "same thing\n") + 1, "same thing\n"));
	assert_non_null(strstr(out, "(last message repeated 4 times)"));
	assert_non_null(strstr(out, "other thing"));
	/* info lines are never folded (state changes must all show) */
	capture();
	tr_log_info("state");
	tr_log_info("state");
	out = captured();
	assert_non_null(strstr(strstr(out, "state") + 1, "state"));
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_journald),
		cmocka_unit_test(test_journal_native),
		cmocka_unit_test(test_find_sid),
		cmocka_unit_test(test_repeats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
