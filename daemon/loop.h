/*
 * loop.h — owns the uv_loop_t and the size of libuv's thread pool, the TERM/INT/HUP signal
 * handlers, the systemd watchdog timer and sd_notify. Only this module calls uv_run.
 *
 * Depends on libuv and sd-env.h.
 */
#pragma once

#include <stdbool.h>
#include <uv.h>

struct tr_loop {
	uv_loop_t loop;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t watchdog;
	uv_work_t pool_start; /* starts libuv's thread pool at its size (loop.c) */
	bool handles_closed;
	void (*on_stop)(void *userdata, int signum);
	void (*on_reload)(void *userdata);
	void *userdata;
};

/* Initialise the loop and start the signal handlers (SIGPIPE is ignored). Unless
 * UV_THREADPOOL_SIZE says otherwise, libuv's thread pool is started with one thread (see
 * loop.c). Returns 0 or a negative errno; on error nothing needs closing. */
int tr_loop_init(struct tr_loop *l, void (*on_stop)(void *userdata, int signum),
	void (*on_reload)(void *userdata), void *userdata);

/* Start feeding the systemd watchdog (WATCHDOG=1 at half of WATCHDOG_USEC) when enabled. */
void tr_loop_watchdog_start(struct tr_loop *l);

/* Run until no handle is left (after tr_loop_close_handles and every module closed). */
int tr_loop_run(struct tr_loop *l);

/* Close the signal handlers and the watchdog timer (idempotent). */
void tr_loop_close_handles(struct tr_loop *l);

/* Drain and close the loop. Returns 0, or -EBUSY after logging the handles still open. */
int tr_loop_done(struct tr_loop *l);

/* sd_notify(state) — e.g. "READY=1", "STATUS=ready": a datagram to $NOTIFY_SOCKET. Returns
 * > 0 sent, 0 no NOTIFY_SOCKET, < 0 error. */
int tr_loop_notify(const char *state);
