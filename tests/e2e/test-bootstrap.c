/*
 * test-bootstrap.c — the daemon's first resync with 0, 1 and 2500 active
 * reservations (three pages of 1000) gives a cache equal to the simulator's
 * state, fetched with the SDK's paginated requests.
 */
#include "common.h"

#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tr-limits.h"

/* Count the simulator's recorded reservation-list GETs, and those carrying AfterSid. */
static void count_pages(struct trt_env *env, int *pages, int *with_after) {
	struct tr_json *list = trt_sim_requests(env);
	*pages = *with_after = 0;
	assert_non_null(list);
	for (size_t i = 0; i < list->u.arr.n; i++) {
		const struct tr_json *q = list->u.arr.items[i];
		const char *url = tr_json_get_string(q, "url");
		const struct tr_json *p = tr_json_get(q, "params");
		size_t n = url ? strlen(url) : 0;
		if (n < 13 || strcmp(url + n - 13, "/Reservations") != 0) {
			continue;
		}
		/* exactly the SDK's filter: Active as the string "true", PageSize 1000 */
		assert_string_equal(e2e_str(q, "apiVersion"), "v2");
		assert_string_equal(e2e_str(p, "Active"), "true");
		assert_int_equal(e2e_int(p, "PageSize"), 1000);
		(*pages)++;
		if (tr_json_get_string(p, "AfterSid")) {
			(*with_after)++;
		}
	}
	tr_json_free(list);
}

/*
 * What keeps an idle daemon small and quiet: suspends and network changes come as kernel
 * events (no 5 s poll), and the soft open-file limit is the connection limit plus the
 * reserve (libwebsockets sizes its fd tables from it), within the hard limit.
 */
static void check_idle_setup(struct trt_env *env, struct trt_conn *c) {
	struct tr_json *st = trt_call_ok(c, "daemon.status", NULL);
	const struct tr_json *up = tr_json_get(st, "upstream");
	int64_t max_conns = 0;
	unsigned long long soft = 0, hard = 0;
	char line[256];
	FILE *f;

	/* (events, unless this machine refuses netlink sockets: then the daemon polls) */
	{
		int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

		assert_string_equal(e2e_str(up, "changeDetection"), fd >= 0 ? "events" : "polling");
		if (fd >= 0) {
			close(fd);
		}
	}
	/* the hosts in use, without the token */
	if (env->sim.tls_cert) { /* the TLS run (TRT_TLS=1) */
		assert_true(strncmp(e2e_str(up, "websocketUrl"), "wss://localhost:", 16) == 0);
		assert_true(strncmp(e2e_str(up, "restUrl"), "https://localhost:", 18) == 0);
		assert_string_equal(e2e_str(up, "caFile"), env->certs->ca);
	} else {
		assert_true(strncmp(e2e_str(up, "websocketUrl"), "ws://127.0.0.1:", 15) == 0);
		assert_true(strncmp(e2e_str(up, "restUrl"), "http://127.0.0.1:", 17) == 0);
		assert_null(tr_json_get_string(up, "caFile"));
	}
	assert_null(strstr(e2e_str(up, "websocketUrl"), "token"));
	assert_int_equal(tr_json_get_int(tr_json_get(st, "limits"), "maxConnections", &max_conns), 0);
	tr_json_free(st);
	f = fopen(trt_fmt("/proc/%d/limits", (int)env->daemon.proc.pid), "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Max open files %llu %llu", &soft, &hard) == 2) {
			break;
		}
	}
	fclose(f);
	assert_true(soft > 0);
	assert_true(soft == (unsigned long long)max_conns + TR_FD_RESERVE || soft == hard);
}

/* A first resync over n active reservations must take want_pages pages. */
struct bootstrap_case {
	const char *name;
	int n;
	int want_pages;
};

static void test_bootstrap(void **state) {
	const struct bootstrap_case *bc = *state;
	int n = bc->n, want_pages = bc->want_pages;
	struct trt_env env;
	struct trt_conn *c = NULL;
	struct tr_json *list;
	int pages, with_after;

	assert_int_equal(trt_env_init(&env), 0);
	assert_int_equal(trt_sim_start(&env, NULL), 0);
	if (n > 0) {
		/* half accepted, half pending: both are "active" */
		e2e_sim_post(&env, "/sim/bulk-tasks",
			trt_fmt("{\"worker\":\"alice\",\"count\":%d,\"accept\":true}",
				(n + 1) / 2));
		if (n / 2) {
			e2e_sim_post(&env, "/sim/bulk-tasks",
				trt_fmt("{\"worker\":\"alice\",\"count\":%d}", n / 2));
		}
	}
	assert_int_equal(trt_daemon_start(&env, "alice", NULL), 0);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", trt_ms(60000)), 0);
	assert_int_equal(trt_connect(env.daemon.socket_path, &c), 0);
	list = e2e_list_all(c);
	assert_int_equal(tr_json_get(list, "tasks")->u.arr.n, n);
	tr_json_free(list);
	if (n > TR_LIST_PAGE_DEFAULT) {
		/* one page: the default size, in SID order, with a cursor */
		struct tr_json *page = trt_call_ok(c, "task.list", "{}");
		const struct tr_json *t = tr_json_get(page, "tasks");
		assert_int_equal(t->u.arr.n, TR_LIST_PAGE_DEFAULT);
		for (size_t i = 1; i < t->u.arr.n; i++) {
			assert_true(strcmp(e2e_str(t->u.arr.items[i - 1], "sid"),
					e2e_str(t->u.arr.items[i], "sid")) < 0);
		}
		assert_string_equal(e2e_str(page, "next"),
			e2e_str(t->u.arr.items[t->u.arr.n - 1], "sid"));
		tr_json_free(page);
		/* and a subscription's snapshot pages the same way */
		page = trt_call_ok(c, "events.subscribe", "{\"limit\":10}");
		assert_int_equal(tr_json_get(page, "tasks")->u.arr.n, 10);
		assert_non_null(tr_json_get_string(page, "next"));
		tr_json_free(page);
	}
	e2e_assert_cache_matches(&env, c);
	if (n == 0) {
		check_idle_setup(&env, c);
	}
	count_pages(&env, &pages, &with_after);
	assert_int_equal(pages, want_pages);
	assert_int_equal(with_after, want_pages - 1);
	trt_conn_free(c);
	assert_int_equal(e2e_stop(&env), 0);
}

/* The number of threads of a process, from /proc/PID/status; -1 if unreadable. */
static int thread_count(pid_t pid) {
	char path[64], line[128];
	FILE *f;
	int n = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f) {
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Threads: %d", &n) == 1) {
			break;
		}
	}
	fclose(f);
	return n;
}

/* Once ready (the upstream's name looked up on libuv's thread pool, the REST reads done),
 * the daemon is its loop's thread and one pool thread; a UV_THREADPOOL_SIZE the user set is
 * kept (loop.c). */
static void test_thread_pool(void **state) {
	static const struct {
		const char *pool; /* UV_THREADPOOL_SIZE for the daemon, or NULL */
		int threads;
	} cases[] = {{NULL, 2}, {"3", 4}};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct trt_env env;

		assert_int_equal(trt_env_init(&env), 0);
		assert_int_equal(trt_sim_start(&env, NULL), 0);
		if (cases[i].pool) {
			assert_int_equal(setenv("UV_THREADPOOL_SIZE", cases[i].pool, 1), 0);
		}
		assert_int_equal(trt_daemon_start(&env, "alice", NULL), 0);
		(void)unsetenv("UV_THREADPOOL_SIZE");
		assert_int_equal(trt_daemon_wait_status(&env, "ready", trt_ms(60000)), 0);
		assert_int_equal(thread_count(env.daemon.proc.pid), cases[i].threads);
		assert_int_equal(trt_daemon_stop(&env), 0);
		trt_env_done(&env);
	}
}

int main(void) {
	/* 2500 reservations: three pages of 1000 */
	static struct bootstrap_case cases[] = {
		{"test_bootstrap_empty", 0, 1},
		{"test_bootstrap_one", 1, 1},
		{"test_bootstrap_2500", 2500, 3},
	};
	struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 1];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tests[i] = (struct CMUnitTest){.name = cases[i].name,
			.test_func = test_bootstrap,
			.initial_state = &cases[i]};
	}
	tests[sizeof(cases) / sizeof(cases[0])] = (struct CMUnitTest)cmocka_unit_test(test_thread_pool);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
