/*
 * test-netwatch.c — network changes and resumes as events (daemon/netwatch.c): which netlink
 * messages count as a change, the watcher on a real loop (an address added to and removed
 * from lo gives one settled callback; needs CAP_NET_ADMIN, skipped without), and stopping
 * with a callback pending (nothing fires, nothing leaks).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <uv.h>

#include "netwatch.h"

/* n netlink messages of the given types, back to back, in buf. Returns the length. */
static size_t messages(char *buf, size_t size, const uint16_t *types, size_t n) {
	size_t off = 0;

	for (size_t i = 0; i < n; i++) {
		struct nlmsghdr *h = (struct nlmsghdr *)(buf + off);
		size_t len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));

		assert_true(off + NLMSG_ALIGN(len) <= size);
		memset(h, 0, NLMSG_ALIGN(len));
		h->nlmsg_len = (uint32_t)len;
		h->nlmsg_type = types[i];
		off += NLMSG_ALIGN(len);
	}
	return off;
}

static void test_is_change(void **state) {
	char buf[512] __attribute__((aligned(NLMSG_ALIGNTO)));
	static const uint16_t addr[] = {RTM_NEWADDR}, deladdr[] = {RTM_DELADDR},
			      link[] = {RTM_NEWLINK}, dellink[] = {RTM_DELLINK},
			      route[] = {RTM_NEWROUTE, RTM_NEWNEIGH},
			      mixed[] = {RTM_NEWROUTE, RTM_DELADDR};
	size_t n;
	(void)state;

	assert_true(tr_netwatch_is_change(buf, messages(buf, sizeof(buf), addr, 1)));
	assert_true(tr_netwatch_is_change(buf, messages(buf, sizeof(buf), deladdr, 1)));
	assert_true(tr_netwatch_is_change(buf, messages(buf, sizeof(buf), link, 1)));
	assert_true(tr_netwatch_is_change(buf, messages(buf, sizeof(buf), dellink, 1)));
	assert_false(tr_netwatch_is_change(buf, messages(buf, sizeof(buf), route, 2)));
	n = messages(buf, sizeof(buf), mixed, 2);
	assert_true(tr_netwatch_is_change(buf, n));
	/* cut short: the second message is not whole, so it is not read */
	assert_false(tr_netwatch_is_change(buf, n - 1));
	assert_false(tr_netwatch_is_change(buf, 3));
	assert_false(tr_netwatch_is_change(buf, 0));
}

struct seen {
	int calls, what;
	uv_timer_t deadline;
	bool timed_out;
};

static void on_change(int what, void *userdata) {
	struct seen *s = userdata;

	s->calls++;
	s->what |= what;
	uv_stop(s->deadline.loop);
}

static void on_deadline(uv_timer_t *t) {
	struct seen *s = t->data;

	s->timed_out = true;
	uv_stop(t->loop);
}

/*
 * Add (add=true) or remove 127.77.0.1/32 on lo through rtnetlink. Returns 0, or a negative
 * errno from the kernel's answer (-EPERM without CAP_NET_ADMIN).
 */
static int lo_address(bool add) {
	struct {
		struct nlmsghdr h;
		struct ifaddrmsg a;
		char attrs[64];
	} req = {0};
	struct rtattr *rta;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	char reply[1024] __attribute__((aligned(NLMSG_ALIGNTO)));
	unsigned char ip[4] = {127, 77, 0, 1};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), r = -EIO;
	ssize_t n;

	if (fd < 0) {
		return -errno;
	}
	req.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	req.h.nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	req.a.ifa_family = AF_INET;
	req.a.ifa_prefixlen = 32;
	req.a.ifa_index = if_nametoindex("lo");
	for (int k = 0; k < 2; k++) { /* IFA_LOCAL and IFA_ADDRESS */
		rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.h.nlmsg_len));
		rta->rta_type = k ? IFA_ADDRESS : IFA_LOCAL;
		rta->rta_len = RTA_LENGTH(sizeof(ip));
		memcpy(RTA_DATA(rta), ip, sizeof(ip));
		req.h.nlmsg_len = NLMSG_ALIGN(req.h.nlmsg_len) + RTA_ALIGN(rta->rta_len);
	}
	if (sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		r = -errno;
	} else if ((n = recv(fd, reply, sizeof(reply), 0)) > 0) {
		struct nlmsghdr *h = (struct nlmsghdr *)reply;

		if (NLMSG_OK(h, (size_t)n) && h->nlmsg_type == NLMSG_ERROR) {
			r = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
		}
	}
	close(fd);
	return r;
}

static void test_address_change(void **state) {
	uv_loop_t loop;
	struct tr_netwatch *w = NULL;
	struct seen s = {0};
	int r;
	(void)state;

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(tr_netwatch_start(&loop, on_change, &s, &w), 0);
	assert_int_equal(tr_netwatch_watching(w), TR_NETWATCH_NETWORK | TR_NETWATCH_CLOCK);
	(void)uv_timer_init(&loop, &s.deadline);
	s.deadline.data = &s;
	r = lo_address(true);
	if (r == -EEXIST) {
		(void)lo_address(false); /* left over from an interrupted run */
		r = lo_address(true);
	}
	if (r == 0) {
		/* added then removed at once: one callback once the burst settled */
		assert_int_equal(lo_address(false), 0);
		(void)uv_timer_start(&s.deadline, on_deadline, 10000, 0);
		(void)uv_run(&loop, UV_RUN_DEFAULT);
		assert_false(s.timed_out);
		assert_int_equal(s.calls, 1);
		assert_int_equal(s.what, TR_NETWATCH_NETWORK);
	}
	tr_netwatch_stop(w);
	uv_close((uv_handle_t *)&s.deadline, NULL);
	(void)uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	if (r != 0) {
		/* (cmocka's skip() would count as a failure under meson's TAP) */
		print_message("# no address change tried (needs CAP_NET_ADMIN): %s\n", strerror(-r));
	}
}

/* Stopped with the settle timer running: the callback never comes, the handles close. */
static void test_stop_pending(void **state) {
	uv_loop_t loop;
	struct tr_netwatch *w = NULL;
	struct seen s = {0};
	int r;
	(void)state;

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(tr_netwatch_start(&loop, on_change, &s, &w), 0);
	r = lo_address(true);
	if (r == 0) {
		assert_int_equal(lo_address(false), 0);
		/* read the notifications (the settle timer starts), but do not wait for it */
		for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT); i++) {
		}
	}
	tr_netwatch_stop(w);
	tr_netwatch_stop(NULL);
	(void)uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(s.calls, 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_change),
		cmocka_unit_test(test_address_change),
		cmocka_unit_test(test_stop_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
