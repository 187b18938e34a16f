/*
 * test-netwatch.c — network changes and resumes as events (daemon/netwatch.c): which netlink
 * messages count as a change, the watcher on a real loop (an address added to and removed
 * from lo gives one settled callback), and stopping with a callback pending (nothing fires,
 * nothing leaks). The address changes happen in a network namespace of the test's own (a
 * child process), never on the host's interfaces.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
 * errno from the kernel's answer.
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

/* In the child: a failed check says which and exits 1 (cmocka's asserts belong to the
 * parent). */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

/*
 * Run fn in a child in a network namespace of its own, so that the host's interfaces (and
 * whoever watches them) are left alone. Returns fn's exit status, or 77 when no namespace
 * could be made (no privilege, user namespaces off): then the test says so and passes (a
 * cmocka skip would count as a failure under meson's TAP).
 */
static int in_netns(void (*fn)(void)) {
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) < 0 && unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0) {
			_exit(77);
		}
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		print_message("# no network namespace could be made: %s not exercised\n",
			"the kernel's notifications");
		return 0;
	}
	return WEXITSTATUS(status);
}

/* An address added and removed at once: one callback, once the burst settled. */
static void address_change(void) {
	uv_loop_t loop;
	struct tr_netwatch *w = NULL;
	struct seen s = {0};

	CHECK(uv_loop_init(&loop) == 0);
	CHECK(tr_netwatch_start(&loop, on_change, &s, &w) == 0);
	CHECK(tr_netwatch_watching(w) == (TR_NETWATCH_NETWORK | TR_NETWATCH_CLOCK));
	(void)uv_timer_init(&loop, &s.deadline);
	s.deadline.data = &s;
	CHECK(lo_address(true) == 0);
	CHECK(lo_address(false) == 0);
	(void)uv_timer_start(&s.deadline, on_deadline, 10000, 0);
	(void)uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(!s.timed_out);
	CHECK(s.calls == 1);
	CHECK(s.what == TR_NETWATCH_NETWORK);
	tr_netwatch_stop(w);
	uv_close((uv_handle_t *)&s.deadline, NULL);
	(void)uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(uv_loop_close(&loop) == 0);
}

static void test_address_change(void **state) {
	(void)state;
	assert_int_equal(in_netns(address_change), 0);
}

/* Stopped once the notifications are in (the settle timer running): the callback never
 * comes, and every handle closes. */
static void stop_pending(void) {
	uv_loop_t loop;
	struct tr_netwatch *w = NULL;
	struct seen s = {0};
	struct pollfd p = {.fd = -1, .events = POLLIN};

	CHECK(uv_loop_init(&loop) == 0);
	CHECK(tr_netwatch_start(&loop, on_change, &s, &w) == 0);
	(void)uv_run(&loop, UV_RUN_NOWAIT); /* the watches join the loop's epoll set */
	CHECK(lo_address(true) == 0);
	CHECK(lo_address(false) == 0);
	/* wait (bounded) until the loop has something to do, then let it read once */
	p.fd = uv_backend_fd(&loop);
	CHECK(poll(&p, 1, 10000) == 1);
	(void)uv_run(&loop, UV_RUN_NOWAIT);
	tr_netwatch_stop(w);
	tr_netwatch_stop(NULL);
	(void)uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(s.calls == 0);
	CHECK(uv_loop_close(&loop) == 0);
}

static void test_stop_pending(void **state) {
	(void)state;
	assert_int_equal(in_netns(stop_pending), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_change),
		cmocka_unit_test(test_address_change),
		cmocka_unit_test(test_stop_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
