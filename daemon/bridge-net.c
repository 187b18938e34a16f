/*
 * bridge-net.c — noticing what makes the websocket session stale: a suspend (the boot-time
 * clock runs ahead of the monotonic one) and a network change (our address is gone), from
 * netwatch's kernel events, or polled every 5 s where those cannot be watched. Either
 * drops the connection or retries at once (bridge-session.c).
 */
#include <inttypes.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "bridge-internal.h"
#include "log.h"
#include "netwatch.h"

#define CHECK_INTERVAL_MS 5000 /* suspend and network polling, where they cannot be watched */
#define JUMP_THRESHOLD_MS 3000 /* boot-time clock ahead of the loop clock by this much */

static uint64_t boot_ms(void) {
	struct timespec ts;

	if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0) {
		return 0;
	}
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}


/* A cheap signature of the machine's addresses (getifaddrs does not block). */
static uint64_t net_signature(void) {
	uv_interface_address_t *ifs = NULL;
	uint64_t h = 1469598103934665603ull;
	int n = 0;

	if (uv_interface_addresses(&ifs, &n) < 0) {
		return 0;
	}
	for (int i = 0; i < n; i++) {
		const unsigned char *p = (const unsigned char *)&ifs[i].address;
		size_t len = ifs[i].address.address4.sin_family == AF_INET6 ?
				     sizeof(struct sockaddr_in6) :
				     sizeof(struct sockaddr_in);
		if (ifs[i].is_internal) {
			continue;
		}
		/* Order-independent: sum of per-address hashes. */
		{
			uint64_t x = 1469598103934665603ull;
			for (size_t k = 0; k < len; k++) {
				x = (x ^ p[k]) * 1099511628211ull;
			}
			h += x;
		}
	}
	uv_free_interface_addresses(ifs, n);
	return h;
}

/* Is the local address of our socket still configured on an interface? */
static bool local_address_alive(struct tr_bridge *b) {
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	uv_interface_address_t *ifs = NULL;
	int fd, n = 0;
	bool alive = false;

	fd = b->session.wsi ? (int)lws_get_socket_fd(b->session.wsi) : -1;
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		return true; /* cannot tell: assume fine */
	}
	if (uv_interface_addresses(&ifs, &n) < 0) {
		return true;
	}
	for (int i = 0; i < n && !alive; i++) {
		if (ss.ss_family == AF_INET && ifs[i].address.address4.sin_family == AF_INET) {
			alive = ((struct sockaddr_in *)&ss)->sin_addr.s_addr ==
				ifs[i].address.address4.sin_addr.s_addr;
		} else if (ss.ss_family == AF_INET6 &&
			   ifs[i].address.address6.sin6_family == AF_INET6) {
			alive = memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr,
					&ifs[i].address.address6.sin6_addr, 16) == 0;
		}
	}
	uv_free_interface_addresses(ifs, n);
	return alive;
}

static void check_network(struct tr_bridge *b) {
	uint64_t sig = net_signature();

	if (sig == b->session.net_sig) {
		return;
	}
	b->session.net_sig = sig;
	b->session.net_changes++;
	if (b->session.wsi && !local_address_alive(b)) {
		tr_log_notice("upstream: the network changed and our address is gone; reconnecting now");
		b->session.attempt = 0;
		tr_bridge_session_drop(b, "network changed", true);
	} else if (b->state == TR_BRIDGE_RECONNECTING) {
		tr_log_info("upstream: the network changed; retrying now");
		tr_bridge_session_retry_now(b);
	}
}

/* A suspend shows as the boot-time clock running ahead of the loop's monotonic clock (which
 * stops while suspended). Returns true when one was found and handled. */
static bool check_suspend(struct tr_bridge *b) {
	uint64_t boot = boot_ms(), mono = uv_hrtime() / 1000000u;
	int64_t jump =
		(int64_t)(boot - b->session.boot_ref) - (int64_t)(mono - b->session.mono_ref);

	b->session.boot_ref = boot;
	b->session.mono_ref = mono;
	if (jump < JUMP_THRESHOLD_MS) {
		return false;
	}
	b->session.suspends++;
	tr_log_notice("upstream: the system was suspended for about %" PRId64 " s; reconnecting now",
		jump / 1000);
	b->session.attempt = 0;
	if (b->session.wsi) {
		tr_bridge_session_drop(b, "system resumed", true);
	} else if (b->state == TR_BRIDGE_RECONNECTING) {
		tr_bridge_session_retry_now(b);
	}
	return true;
}

/* The periodic check, only where netwatch cannot tell (see netwatch.h). */
static void on_check(uv_timer_t *t) {
	struct tr_bridge *b = t->data;

	if (!b->closing && !check_suspend(b)) {
		check_network(b);
	}
}

/* netwatch: the clock was set or the system resumed, or the network changed. */
static void on_netwatch(int what, void *userdata) {
	struct tr_bridge *b = userdata;

	if (what == 0 && !b->closing) {
		/* a watch broke: the periodic check takes over */
		(void)uv_timer_start(&b->session.t_check, on_check, CHECK_INTERVAL_MS, CHECK_INTERVAL_MS);
		return;
	}
	if (b->closing || check_suspend(b)) {
		return;
	}
	if (what & TR_NETWATCH_NETWORK) {
		check_network(b);
	}
}

void tr_bridge_net_start(struct tr_bridge *b) {
	b->session.boot_ref = boot_ms();
	b->session.mono_ref = uv_hrtime() / 1000000u;
	b->session.net_sig = net_signature();
	/* Suspends and network changes come as events; poll only for what cannot be watched. */
	if (tr_netwatch_start(b->loop, on_netwatch, b, &b->session.netwatch) < 0 ||
			tr_netwatch_watching(b->session.netwatch) !=
				(TR_NETWATCH_NETWORK | TR_NETWATCH_CLOCK)) {
		(void)uv_timer_start(
			&b->session.t_check, on_check, CHECK_INTERVAL_MS, CHECK_INTERVAL_MS);
	}
}

void tr_bridge_net_stop(struct tr_bridge *b) {
	tr_netwatch_stop(b->session.netwatch);
	b->session.netwatch = NULL;
}
