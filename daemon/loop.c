/*
 * loop.c — see loop.h.
 */
#include "loop.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sd-env.h"

/*
 * Our own sd_notify: libsystemd's sends on a blocking socket, so a manager (or a test harness)
 * that does not drain its datagram queue (net.unix.max_dgram_qlen, 10 by default) would stall
 * the loop. Send without blocking; an update that does not fit is dropped (-EAGAIN) and the
 * next state change sends a fresh one.
 */
int tr_loop_notify(const char *state) {
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t sl;
	ssize_t k;
	int fd;

	if (!path || !*path) {
		return 0;
	}
	if (strlen(path) >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@')) {
		return -EINVAL;
	}
	strcpy(sa.sun_path, path);
	if (path[0] == '@') {
		sa.sun_path[0] = '\0';
	}
	sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		return -errno;
	}
	k = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, sl);
	close(fd);
	return k < 0 ? -errno : 1;
}

static void on_signal(uv_signal_t *s, int signum) {
	struct tr_loop *l = s->data;

	if (signum == SIGHUP) {
		tr_log_info("SIGHUP: reloading the configuration and the token");
		if (l->on_reload) {
			l->on_reload(l->userdata);
		}
		return;
	}
	tr_log_info("%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	if (l->on_stop) {
		l->on_stop(l->userdata, signum);
	}
}

static void on_watchdog(uv_timer_t *t) {
	(void)t;
	(void)tr_loop_notify("WATCHDOG=1");
}

static void pool_noop(uv_work_t *w) {
	(void)w;
}

static void pool_started(uv_work_t *w, int status) {
	(void)w;
	(void)status;
}

/*
 * libuv's thread pool runs one thing for the daemon: the upstream's name lookup, and the
 * bridge starts one only when none is running. libuv starts 4 threads, the first time work is
 * queued, reading UV_THREADPOOL_SIZE then; 3 of them would never run anything, and each holds
 * its stack's touched pages (8 KB) for as long as the daemon runs. So the pool is started here,
 * with the variable set to 1 for that moment only (children, such as the token command, do not
 * inherit it). A UV_THREADPOOL_SIZE the user set is left alone. No other thread exists yet.
 */
static void size_thread_pool(struct tr_loop *l) {
	if (getenv("UV_THREADPOOL_SIZE") || setenv("UV_THREADPOOL_SIZE", "1", 1) < 0) {
		return;
	}
	(void)uv_queue_work(&l->loop, &l->pool_start, pool_noop, pool_started);
	(void)unsetenv("UV_THREADPOOL_SIZE");
}

int tr_loop_init(struct tr_loop *l, void (*on_stop)(void *userdata, int signum),
	void (*on_reload)(void *userdata), void *userdata) {
	struct {
		uv_signal_t *h;
		int sig;
	} sigs[] = {{&l->sig_term, SIGTERM}, {&l->sig_int, SIGINT}, {&l->sig_hup, SIGHUP}};
	int r;

	memset(l, 0, sizeof(*l));
	l->on_stop = on_stop;
	l->on_reload = on_reload;
	l->userdata = userdata;
	(void)signal(SIGPIPE, SIG_IGN);
	r = uv_loop_init(&l->loop);
	if (r < 0) {
		return r;
	}
	size_thread_pool(l);
	for (size_t i = 0; i < 3; i++) {
		(void)uv_signal_init(&l->loop, sigs[i].h);
		sigs[i].h->data = l;
		r = uv_signal_start(sigs[i].h, on_signal, sigs[i].sig);
		if (r < 0) {
			tr_log_err("cannot handle signal %d: %s", sigs[i].sig, uv_strerror(r));
		}
	}
	(void)uv_timer_init(&l->loop, &l->watchdog);
	l->watchdog.data = l;
	/* Signals must not keep the loop alive once everything else is closed. */
	uv_unref((uv_handle_t *)&l->sig_term);
	uv_unref((uv_handle_t *)&l->sig_int);
	uv_unref((uv_handle_t *)&l->sig_hup);
	uv_unref((uv_handle_t *)&l->watchdog);
	return 0;
}

void tr_loop_watchdog_start(struct tr_loop *l) {
	uint64_t usec = 0, ms;
	int r = tr_sd_watchdog_usec(&usec);

	if (r < 0) {
		tr_log_warning("systemd watchdog: WATCHDOG_USEC/WATCHDOG_PID are not numbers; "
			       "not sending watchdog pings");
		return;
	}
	if (r == 0) {
		return;
	}
	ms = usec / 2000u ? usec / 2000u : 1;
	tr_log_debug("systemd watchdog: every %" PRIu64 " ms", ms);
	(void)tr_loop_notify("WATCHDOG=1");
	(void)uv_timer_start(&l->watchdog, on_watchdog, ms, ms);
}

int tr_loop_run(struct tr_loop *l) {
	return uv_run(&l->loop, UV_RUN_DEFAULT);
}

void tr_loop_close_handles(struct tr_loop *l) {
	if (l->handles_closed) {
		return;
	}
	l->handles_closed = true;
	uv_close((uv_handle_t *)&l->sig_term, NULL);
	uv_close((uv_handle_t *)&l->sig_int, NULL);
	uv_close((uv_handle_t *)&l->sig_hup, NULL);
	uv_close((uv_handle_t *)&l->watchdog, NULL);
	/* Closing the handles gave the signals back their default action: a second SIGTERM
	 * (systemd's, a test's) during the last steps of the exit would kill the daemon and turn
	 * a clean exit into a failure. The shutdown has begun; ignore them from here on. */
	(void)signal(SIGTERM, SIG_IGN);
	(void)signal(SIGINT, SIG_IGN);
	(void)signal(SIGHUP, SIG_IGN);
}

static void walk_cb(uv_handle_t *h, void *arg) {
	(void)arg;
	tr_log_err("handle still open at exit: %s%s", uv_handle_type_name(uv_handle_get_type(h)),
		uv_is_closing(h) ? " (closing)" : "");
}

int tr_loop_done(struct tr_loop *l) {
	int r;

	tr_loop_close_handles(l);
	(void)uv_run(&l->loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&l->loop);
	if (r < 0) {
		uv_walk(&l->loop, walk_cb, NULL);
		tr_log_err("uv_loop_close: %s", uv_strerror(r));
		return -EBUSY;
	}
	return 0;
}
