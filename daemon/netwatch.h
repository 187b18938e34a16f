/*
 * netwatch.h — network changes and resumes as events, so that nothing polls:
 *   - the kernel's rtnetlink notifications (links up or down, addresses added or removed);
 *     a burst of them (a Wi-Fi roam sends several) gives one callback, TR_NETWATCH_SETTLE_MS
 *     after the last;
 *   - a CLOCK_REALTIME timerfd armed with TFD_TIMER_CANCEL_ON_SET, which the kernel cancels
 *     when the clock is set and when the system resumes from suspend.
 * Owner: the bridge (bridge-session.c), which then compares its clocks (a suspend) and
 * re-reads the addresses (a network change) and decides whether the session must reconnect.
 * Depends on libuv only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#define TR_NETWATCH_SETTLE_MS 250

struct tr_netwatch;

/* What the callback is about. */
enum {
	TR_NETWATCH_NETWORK = 1, /* links or addresses changed */
	TR_NETWATCH_CLOCK = 2,   /* the clock was set or the system resumed */
};

/* what: TR_NETWATCH_* bits, or 0 when a watch stopped working (logged): poll from then on. */
typedef void (*tr_netwatch_cb)(int what, void *userdata);

/*
 * Watch on loop. Returns 0 and *ret (even when only one of the two could be set up: see
 * tr_netwatch_watching), or a negative errno (-ENOMEM) with nothing watched. Failures to set
 * one up are logged once, with why (-EAFNOSUPPORT for netlink under a
 * RestrictAddressFamilies= without AF_NETLINK, for example).
 */
int tr_netwatch_start(uv_loop_t *loop, tr_netwatch_cb cb, void *userdata, struct tr_netwatch **ret);

/* The TR_NETWATCH_* bits actually watched (0 for NULL). */
int tr_netwatch_watching(const struct tr_netwatch *w);

/* Stop watching (NULL is fine). The handles close on the loop and the memory goes when they
 * have; cb is not called again. */
void tr_netwatch_stop(struct tr_netwatch *w);

/*
 * Whether a buffer of netlink messages (as recv returned it) holds a change worth a look:
 * a link or an address added or removed. Exposed for the unit test.
 */
bool tr_netwatch_is_change(const void *buf, size_t len);
