/*
 * netwatch.c — network changes from rtnetlink (see netwatch.h).
 */
#include "netwatch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "log.h"

struct tr_netwatch {
	uv_poll_t poll;     /* the netlink socket */
	uv_poll_t clock;    /* the timerfd */
	uv_timer_t settle;
	int fd, clock_fd;   /* -1 when not watched */
	int open_handles;   /* freed when every handle has closed */
	bool stopped;
	tr_netwatch_cb cb;
	void *userdata;
};

bool tr_netwatch_is_change(const void *buf, size_t len) {
	const struct nlmsghdr *h = buf;
	size_t left = len;

	for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
		switch (h->nlmsg_type) {
		case RTM_NEWLINK:
		case RTM_DELLINK:
		case RTM_NEWADDR:
		case RTM_DELADDR:
			return true;
		default:
			break;
		}
	}
	return false;
}

/* A watch stopped working at run time: say so once, and tell the owner (what 0), which then
 * polls. */
static void watch_lost(struct tr_netwatch *w, uv_poll_t *p, const char *what, const char *why) {
	(void)uv_poll_stop(p);
	tr_log_warning("%s: %s; polling instead", what, why);
	if (!w->stopped) {
		w->cb(0, w->userdata);
	}
}

static void on_settled(uv_timer_t *t) {
	struct tr_netwatch *w = t->data;

	if (!w->stopped) {
		w->cb(TR_NETWATCH_NETWORK, w->userdata);
	}
}

/* Datagrams read per callback at most: the poll is level-triggered, the rest comes next
 * time, and a storm of notifications cannot hold the loop. */
#define READS_PER_CALLBACK 64

static void on_readable(uv_poll_t *p, int status, int events) {
	struct tr_netwatch *w = p->data;
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	bool changed = false;
	(void)events;

	if (status < 0) {
		/* An overflowed queue sets the socket's error (ENOBUFS), which epoll reports as
		 * POLLERR and libuv as UV_EBADF: notifications were lost, so assume a change,
		 * clear the error and go on. Anything else ends the watch. */
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != ENOBUFS ||
				uv_poll_start(p, UV_READABLE, on_readable) < 0) {
			watch_lost(w, p, "network watch", err ? strerror(err) : uv_strerror(status));
			return;
		}
		changed = true;
	}
	for (int i = 0; i < READS_PER_CALLBACK; i++) {
		/* MSG_TRUNC: the datagram's real length, so a cut one still counts */
		ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && errno == ENOBUFS) {
			changed = true; /* notifications were lost: assume the worst */
			continue;
		}
		if (n <= 0) {
			break; /* EAGAIN: drained */
		}
		changed = changed || (size_t)n > sizeof(buf) || tr_netwatch_is_change(buf, (size_t)n);
	}
	if (changed) {
		/* restarted by every change: the callback comes once the burst has settled */
		(void)uv_timer_start(&w->settle, on_settled, TR_NETWATCH_SETTLE_MS, 0);
	}
}

/* Far ahead (the timer must never expire; only its cancellation matters), absolute. A
 * 32-bit time_t (or a kernel without 64-bit times: EOVERFLOW) gets the last 32-bit second. An
 * ECANCELED from arming means the clock was set again meanwhile: the timer is armed anyway. */
static int clock_arm(int fd) {
	struct itimerspec its = {
		.it_value = {.tv_sec = sizeof(time_t) > 4 ? (time_t)((int64_t)1 << 40) : INT32_MAX}};
	int r = timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL);

	if (r < 0 && errno == EOVERFLOW) {
		its.it_value.tv_sec = INT32_MAX;
		r = timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL);
	}
	return r < 0 && errno != ECANCELED ? -errno : 0;
}

static void on_clock(uv_poll_t *p, int status, int events) {
	struct tr_netwatch *w = p->data;
	uint64_t expirations;
	ssize_t n;
	int e;
	(void)events;

	if (status < 0) {
		watch_lost(w, p, "resume watch", uv_strerror(status));
		return;
	}
	n = read(w->clock_fd, &expirations, sizeof(expirations));
	if (n < 0 && errno == EAGAIN) {
		return;
	}
	if (n >= 0) {
		/* it expired: it cannot, unless the clock got past the far date */
		watch_lost(w, p, "resume watch", "the timer expired");
		return;
	}
	if (errno != ECANCELED) {
		watch_lost(w, p, "resume watch", strerror(errno));
		return;
	}
	e = clock_arm(w->clock_fd);
	if (e < 0) {
		watch_lost(w, p, "resume watch", strerror(-e));
		return;
	}
	if (!w->stopped) {
		w->cb(TR_NETWATCH_CLOCK, w->userdata);
	}
}

static int netlink_open(void) {
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
	};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE), e;

	if (fd < 0) {
		return -errno;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static int clock_open(void) {
	int fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC), e;

	if (fd < 0) {
		return -errno;
	}
	e = clock_arm(fd);
	if (e < 0) {
		close(fd);
		return e;
	}
	return fd;
}

static void on_closed(uv_handle_t *h);

/* Watch fd with p; the fd is then the watcher's (*slot, closed with it). On failure closes fd
 * unless already the watcher's, and returns the error. */
static int watch(struct tr_netwatch *w, uv_poll_t *p, int fd, int *slot, uv_poll_cb cb) {
	int e = uv_poll_init(w->settle.loop, p, fd);

	if (e < 0) {
		close(fd);
		return e;
	}
	p->data = w;
	w->open_handles++;
	*slot = fd;
	return uv_poll_start(p, UV_READABLE, cb);
}

int tr_netwatch_start(uv_loop_t *loop, tr_netwatch_cb cb, void *userdata, struct tr_netwatch **ret) {
	struct tr_netwatch *w = calloc(1, sizeof(*w));
	int fd;

	if (!w) {
		return -ENOMEM;
	}
	w->cb = cb;
	w->userdata = userdata;
	w->fd = w->clock_fd = -1;
	(void)uv_timer_init(loop, &w->settle); /* cannot fail on Linux */
	w->settle.data = w;
	w->open_handles = 1;
	fd = netlink_open();
	if (fd < 0 || (fd = watch(w, &w->poll, fd, &w->fd, on_readable)) < 0) {
		tr_log_notice("network changes are not watched (netlink: %s); polling instead",
			strerror(-fd));
		if (w->fd >= 0) {
			(void)uv_poll_stop(&w->poll);
		}
	}
	fd = clock_open();
	if (fd < 0 || (fd = watch(w, &w->clock, fd, &w->clock_fd, on_clock)) < 0) {
		tr_log_notice("resumes are not watched (timerfd: %s); polling instead", strerror(-fd));
		if (w->clock_fd >= 0) {
			(void)uv_poll_stop(&w->clock);
		}
	}
	*ret = w;
	return 0;
}

int tr_netwatch_watching(const struct tr_netwatch *w) {
	if (!w) {
		return 0;
	}
	return (w->fd >= 0 && uv_is_active((const uv_handle_t *)&w->poll) ? TR_NETWATCH_NETWORK : 0) |
	       (w->clock_fd >= 0 && uv_is_active((const uv_handle_t *)&w->clock) ? TR_NETWATCH_CLOCK
										   : 0);
}

static void on_closed(uv_handle_t *h) {
	struct tr_netwatch *w = h->data;

	if (--w->open_handles == 0) {
		if (w->fd >= 0) {
			close(w->fd);
		}
		if (w->clock_fd >= 0) {
			close(w->clock_fd);
		}
		free(w);
	}
}

void tr_netwatch_stop(struct tr_netwatch *w) {
	if (!w || w->stopped) {
		return;
	}
	w->stopped = true;
	if (w->poll.data) {
		uv_close((uv_handle_t *)&w->poll, on_closed);
	}
	if (w->clock.data) {
		uv_close((uv_handle_t *)&w->clock, on_closed);
	}
	uv_close((uv_handle_t *)&w->settle, on_closed);
}
