/*
 * sd-env.c — see sd-env.h.
 */
#include "sd-env.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

/* A decimal number with nothing after it, no sign and no leading space. */
static int parse_u64(const char *s, uint64_t *out) {
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9') {
		return -EINVAL;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end) {
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* 1: the variable names this process (or is unset, when unset_ok); 0: another one. */
static int is_our_pid(const char *name, bool unset_ok) {
	const char *s = getenv(name);
	uint64_t pid;

	if (!s) {
		return unset_ok ? 1 : 0;
	}
	if (parse_u64(s, &pid) < 0 || pid == 0) {
		return -EINVAL;
	}
	return pid == (uint64_t)getpid() ? 1 : 0;
}

static int listen_fds(void) {
	uint64_t n;
	int r = is_our_pid("LISTEN_PID", false);

	if (r <= 0) {
		return r;
	}
	if (!getenv("LISTEN_FDS")) {
		return 0;
	}
	if (parse_u64(getenv("LISTEN_FDS"), &n) < 0 || n > INT_MAX - TR_SD_LISTEN_FDS_START) {
		return -EINVAL;
	}
	for (int fd = TR_SD_LISTEN_FDS_START; fd < TR_SD_LISTEN_FDS_START + (int)n; fd++) {
		int fl = fcntl(fd, F_GETFD);

		if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
			return -errno;
		}
	}
	return (int)n;
}

int tr_sd_listen_fds(bool unset_environment) {
	int r = listen_fds();

	if (unset_environment) {
		(void)unsetenv("LISTEN_PID");
		(void)unsetenv("LISTEN_FDS");
		(void)unsetenv("LISTEN_FDNAMES");
	}
	return r;
}

int tr_sd_watchdog_usec(uint64_t *usec) {
	const char *s = getenv("WATCHDOG_USEC");
	uint64_t v;
	int r;

	if (!s) {
		return 0;
	}
	if (parse_u64(s, &v) < 0 || v == 0) {
		return -EINVAL;
	}
	r = is_our_pid("WATCHDOG_PID", true);
	if (r <= 0) {
		return r;
	}
	*usec = v;
	return 1;
}
