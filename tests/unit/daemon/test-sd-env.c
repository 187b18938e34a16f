/* Unit tests of daemon/sd-env.c: systemd's LISTEN_* and WATCHDOG_* variables as
 * sd_listen_fds(3) and sd_watchdog_enabled(3) read them. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "sd-env.h"

static char pid[24], other[24];

static int setup(void **state) {
	(void)state;
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	snprintf(other, sizeof(other), "%ld", (long)getpid() + 1);
	return 0;
}

static void clear(void) {
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void listen_env(const char *p, const char *n) {
	clear();
	if (p) {
		setenv("LISTEN_PID", p, 1);
	}
	if (n) {
		setenv("LISTEN_FDS", n, 1);
	}
	setenv("LISTEN_FDNAMES", "taskrouterd.socket", 1);
}

/* Two descriptors at 3 and 4, not close-on-exec, as systemd passes them. */
static void make_fds_3_4(void) {
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(dup2(p[0], 3), 3);
	assert_int_equal(dup2(p[1], 4), 4);
	if (p[0] != 3 && p[0] != 4) {
		close(p[0]);
	}
	if (p[1] != 3 && p[1] != 4) {
		close(p[1]);
	}
	assert_int_equal(fcntl(3, F_GETFD) & FD_CLOEXEC, 0);
	assert_int_equal(fcntl(4, F_GETFD) & FD_CLOEXEC, 0);
}

static void test_listen_fds(void **state) {
	(void)state;
	make_fds_3_4();
	/* ours: the count, each made close-on-exec, the variables gone */
	listen_env(pid, "2");
	assert_int_equal(tr_sd_listen_fds(true), 2);
	assert_int_not_equal(fcntl(3, F_GETFD) & FD_CLOEXEC, 0);
	assert_int_not_equal(fcntl(4, F_GETFD) & FD_CLOEXEC, 0);
	assert_null(getenv("LISTEN_PID"));
	assert_null(getenv("LISTEN_FDS"));
	assert_null(getenv("LISTEN_FDNAMES"));
	/* kept when asked to */
	listen_env(pid, "1");
	assert_int_equal(tr_sd_listen_fds(false), 1);
	assert_string_equal(getenv("LISTEN_FDS"), "1");
	close(3);
	close(4);
}

static void test_listen_not_ours(void **state) {
	(void)state;
	/* nothing set */
	clear();
	assert_int_equal(tr_sd_listen_fds(true), 0);
	/* inherited from a parent that was activated: not ours, and removed all the same */
	listen_env(other, "1");
	assert_int_equal(tr_sd_listen_fds(true), 0);
	assert_null(getenv("LISTEN_FDS"));
	/* our pid without LISTEN_FDS */
	listen_env(pid, NULL);
	assert_int_equal(tr_sd_listen_fds(true), 0);
	/* LISTEN_FDS without LISTEN_PID */
	listen_env(NULL, "1");
	assert_int_equal(tr_sd_listen_fds(true), 0);
}

static void test_listen_invalid(void **state) {
	static const char *const bad[] = {"", "x", "-1", " 1", "1x", "99999999999999999999"};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		listen_env(bad[i], "1");
		assert_int_equal(tr_sd_listen_fds(true), -EINVAL);
		assert_null(getenv("LISTEN_PID"));
		listen_env(pid, bad[i]);
		assert_int_equal(tr_sd_listen_fds(true), -EINVAL);
	}
	listen_env("0", "1");
	assert_int_equal(tr_sd_listen_fds(true), -EINVAL);
	/* more descriptors than an int can number */
	listen_env(pid, "2147483647");
	assert_int_equal(tr_sd_listen_fds(true), -EINVAL);
	/* a descriptor that is not open */
	listen_env(pid, "1");
	close(3);
	assert_int_equal(tr_sd_listen_fds(true), -EBADF);
}

static void test_watchdog(void **state) {
	uint64_t usec = 0;
	(void)state;
	clear();
	assert_int_equal(tr_sd_watchdog_usec(&usec), 0);
	setenv("WATCHDOG_USEC", "2000000", 1);
	assert_int_equal(tr_sd_watchdog_usec(&usec), 1);
	assert_int_equal(usec, 2000000);
	/* the variables stay, for a reload to read again */
	assert_string_equal(getenv("WATCHDOG_USEC"), "2000000");
	usec = 0;
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(tr_sd_watchdog_usec(&usec), 1);
	assert_int_equal(usec, 2000000);
	/* for another process (the main process of the unit, we its child) */
	usec = 7;
	setenv("WATCHDOG_PID", other, 1);
	assert_int_equal(tr_sd_watchdog_usec(&usec), 0);
	assert_int_equal(usec, 7);
	/* not numbers, or 0 */
	setenv("WATCHDOG_PID", "me", 1);
	assert_int_equal(tr_sd_watchdog_usec(&usec), -EINVAL);
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "0", 1);
	assert_int_equal(tr_sd_watchdog_usec(&usec), -EINVAL);
	setenv("WATCHDOG_USEC", "2s", 1);
	assert_int_equal(tr_sd_watchdog_usec(&usec), -EINVAL);
	assert_int_equal(usec, 7);
	clear();
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen_fds),
		cmocka_unit_test(test_listen_not_ours),
		cmocka_unit_test(test_listen_invalid),
		cmocka_unit_test(test_watchdog),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
