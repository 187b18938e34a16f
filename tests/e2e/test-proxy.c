/*
 * test-proxy.c — taskrouterd behind an HTTP proxy (issue #18): a small CONNECT proxy started
 * by the test (tests/lib/connect-proxy.c) logs every tunnel it opens. The simulator serves
 * TLS as localhost, as the real service would be reached.
 *
 *   - the proxy key: the websocket and every REST call go through the proxy (tunnels to
 *     localhost:PORT by name), the status names the proxy;
 *   - HTTPS_PROXY, https_proxy winning over it, NO_PROXY bypassing it;
 *   - a plain ws:// + http:// upstream through the proxy key;
 *   - a proxy asking for credentials (407): lastError says so in words; a wrong password
 *     says the credentials were refused; the right ones (SIGHUP re-reads the file) work,
 *     and the password never shows in the daemon's log;
 *   - a proxy refusing the tunnel (403): lastError carries the proxy's status.
 */
#include "common.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void start_sim(struct trt_env *env, bool tls) {
	assert_int_equal(trt_env_init(env), 0);
	if (tls) {
		assert_int_equal(trt_env_tls(env), 0);
	} else {
		env->sim.url_host = "localhost";
	}
	assert_int_equal(trt_sim_start(env, NULL), 0);
}

/* alice's daemon for env, through proxy px (the proxy key). */
static void start_daemon_via(struct trt_env *env, const struct trt_proxy *px) {
	assert_int_equal(trt_daemon_start(env, "alice",
				 (const char *const[]){"--proxy", px->url, NULL}),
		0);
}

/* Tunnels the proxy opened to the simulator so far. */
static int tunnels(struct trt_env *env, const struct trt_proxy *p) {
	return trt_proxy_count(p, trt_fmt("TUNNEL localhost:%d ", env->sim.port));
}

static void test_proxy_key(void **state) {
	struct trt_env env;
	struct trt_proxy px;
	const struct tr_json *up;
	struct tr_json *st;
	int before;
	(void)state;

	start_sim(&env, true);
	assert_int_equal(trt_proxy_start(&env, &px, NULL), 0);
	start_daemon_via(&env, &px);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
	/* the websocket and the first REST reads went through it, asked for by name */
	assert_true(tunnels(&env, &px) >= 2);
	st = e2e_upstream(&env, &up);
	assert_string_equal(e2e_str(up, "websocketProxy"), trt_fmt("127.0.0.1:%d", px.port));
	assert_string_equal(e2e_str(up, "restProxy"), trt_fmt("127.0.0.1:%d", px.port));
	tr_json_free(st);
	before = tunnels(&env, &px);
	e2e_task_round_trip(&env, "proxy");
	/* two writes: two more tunnels */
	assert_int_equal(trt_proxy_wait_count(&px, trt_fmt("TUNNEL localhost:%d ", env.sim.port),
				 before + 2, E2E_WAIT),
		0);
	assert_true(trt_proc_log_contains(&env.daemon.proc, "goes through proxy 127.0.0.1:"));
	assert_int_equal(e2e_stop(&env), 0);
	assert_int_equal(trt_proxy_stop(&px), 0);
}

static void test_environment(void **state) {
	struct trt_env env;
	struct trt_proxy live, dead;
	const struct tr_json *up;
	struct tr_json *st;
	int dead_port;
	(void)state;

	start_sim(&env, true);
	assert_int_equal(trt_proxy_start(&env, &live, NULL), 0);
	/* a port where nothing listens: a proxy that was there */
	assert_int_equal(trt_proxy_start(&env, &dead, NULL), 0);
	dead_port = dead.port;
	assert_int_equal(trt_proxy_stop(&dead), 0);

	/* HTTPS_PROXY */
	env.daemon.env = (const char *const[]){trt_fmt("HTTPS_PROXY=%s", live.url), NULL};
	assert_int_equal(trt_daemon_start(&env, "alice", NULL), 0);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
	assert_true(tunnels(&env, &live) >= 2);
	assert_true(trt_proc_log_contains(&env.daemon.proc, "(from HTTPS_PROXY)"));
	assert_int_equal(trt_daemon_stop(&env), 0);

	/* https_proxy wins over HTTPS_PROXY */
	env.daemon.env = (const char *const[]){
		trt_fmt("HTTPS_PROXY=http://127.0.0.1:%d", dead_port),
		trt_fmt("https_proxy=%s", live.url), NULL};
	assert_int_equal(trt_daemon_start(&env, "alice", NULL), 0);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
	assert_true(trt_proc_log_contains(&env.daemon.proc, "(from https_proxy)"));
	assert_int_equal(trt_daemon_stop(&env), 0);

	/* NO_PROXY: straight to the simulator, no tunnel (and libwebsockets, which would take
	 * http_proxy for every host by itself, does not) */
	env.daemon.env = (const char *const[]){trt_fmt("HTTPS_PROXY=%s", live.url),
		trt_fmt("http_proxy=%s", live.url), "NO_PROXY=example.com, localhost", NULL};
	{
		int n = trt_proxy_count(&live, "TUNNEL ");
		assert_int_equal(trt_daemon_start(&env, "alice", NULL), 0);
		assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
		e2e_task_round_trip(&env, "proxy");
		st = e2e_upstream(&env, &up);
		assert_null(tr_json_get_string(up, "websocketProxy"));
		assert_null(tr_json_get_string(up, "restProxy"));
		tr_json_free(st);
		assert_int_equal(trt_proxy_count(&live, "TUNNEL "), n); /* to any address */
	}
	assert_int_equal(e2e_stop(&env), 0);
	assert_int_equal(trt_proxy_stop(&live), 0);
}

/* Plain ws:// and http:// through the proxy key: tunnels too (CONNECT, never a forwarded
 * request). */
static void test_plain_upstream(void **state) {
	struct trt_env env;
	struct trt_proxy px;
	(void)state;

	start_sim(&env, false);
	assert_int_equal(trt_proxy_start(&env, &px, NULL), 0);
	start_daemon_via(&env, &px);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
	e2e_task_round_trip(&env, "proxy");
	assert_true(tunnels(&env, &px) >= 4);
	assert_int_equal(e2e_stop(&env), 0);
	assert_int_equal(trt_proxy_stop(&px), 0);
}

static void write_file(const char *path, const char *text) {
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fchmod(fileno(f), 0600), 0);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Wait until lastError contains needle (the state notifications carry it). */
static void expect_error(struct trt_env *env, const char *needle) {
	const struct tr_json *up;
	struct tr_json *st;

	assert_int_equal(trt_daemon_wait_status(env, needle, E2E_WAIT), 0);
	st = e2e_upstream(env, &up);
	assert_string_equal(e2e_str(up, "state"), "reconnecting");
	e2e_assert_contains(e2e_str(up, "lastError"), needle);
	print_message("# lastError: %s\n", e2e_str(up, "lastError"));
	tr_json_free(st);
}

static void test_credentials(void **state) {
	struct trt_env env;
	struct trt_proxy px;
	char *creds;
	(void)state;

	start_sim(&env, true);
	assert_int_equal(trt_proxy_start(&env, &px,
				 (const char *const[]){"--require-auth", "agent7:s3cret-Pw", NULL}),
		0);
	creds = strdup(trt_fmt("%s/proxy-credentials", env.dir));
	assert_non_null(creds);

	/* no credentials */
	start_daemon_via(&env, &px);
	expect_error(&env, "HTTP 407");
	e2e_assert_contains(env.daemon.last_status, trt_fmt("proxy 127.0.0.1:%d", px.port));
	{
		const struct tr_json *up;
		struct tr_json *st = e2e_upstream(&env, &up);
		e2e_assert_contains(e2e_str(up, "lastError"),
			trt_fmt("refused the tunnel to localhost:%d", env.sim.port));
		e2e_assert_contains(e2e_str(up, "lastError"), "set proxy-credentials-file");
		tr_json_free(st);
	}
	assert_int_equal(trt_daemon_stop(&env), 0);

	/* wrong credentials */
	write_file(creds, "agent7:wrong-one\n");
	assert_int_equal(trt_daemon_start(&env, "alice",
				 (const char *const[]){"--proxy", px.url, "--proxy-credentials-file",
					 creds, NULL}),
		0);
	expect_error(&env, "refused the credentials of proxy-credentials-file");
	/* libwebsockets' CONNECT and the probe's both carried the user (Basic, base64) */
	assert_int_equal(trt_proxy_wait_count(&px, "user=agent7 status=407", 2, E2E_WAIT), 0);

	/* the right ones: SIGHUP reads the file again and retries at once */
	write_file(creds, "agent7:s3cret-Pw\n");
	assert_int_equal(kill(env.daemon.proc.pid, SIGHUP), 0);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
	e2e_task_round_trip(&env, "proxy");
	assert_true(trt_proxy_count(&px, "user=agent7 ") >= 1);
	assert_int_equal(trt_proxy_count(&px, "s3cret"), 0);
	assert_false(trt_proc_log_contains(&env.daemon.proc, "s3cret"));
	assert_false(trt_proc_log_contains(&env.daemon.proc, "wrong-one"));
	free(creds);
	assert_int_equal(e2e_stop(&env), 0);
	assert_int_equal(trt_proxy_stop(&px), 0);
}

static void test_refused(void **state) {
	struct trt_env env;
	struct trt_proxy px;
	(void)state;

	start_sim(&env, true);
	assert_int_equal(trt_proxy_start(&env, &px, (const char *const[]){"--refuse", "403", NULL}),
		0);
	start_daemon_via(&env, &px);
	expect_error(&env, "HTTP 403");
	assert_true(trt_proc_log_contains(&env.daemon.proc,
		trt_fmt("refused the tunnel to localhost:%d: HTTP 403", env.sim.port)));
	assert_int_equal(e2e_stop(&env), 0);
	assert_int_equal(trt_proxy_stop(&px), 0);
}

/* A proxy that takes the connection and never answers the CONNECT: a socket listening that
 * nobody accepts from. */
static void test_silent_proxy(void **state) {
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	struct trt_env env;
	int fd;
	(void)state;

	start_sim(&env, true);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	assert_int_equal(trt_daemon_start(&env, "alice",
				 (const char *const[]){"--proxy",
					 trt_fmt("127.0.0.1:%d", ntohs(sa.sin_port)),
					 "--connect-timeout-ms", "1000", NULL}),
		0);
	expect_error(&env, trt_fmt("no answer from proxy 127.0.0.1:%d to the tunnel request for "
				   "localhost:%d within 1 s",
				   ntohs(sa.sin_port), env.sim.port));
	close(fd);
	assert_int_equal(e2e_stop(&env), 0);
}

/* wss://[::1]:P through the proxy: the tunnel is asked for "[::1]:P" (lws leaves the
 * brackets out unless given them). */
static void test_ipv6_upstream(void **state) {
	struct trt_env env;
	struct trt_proxy px;
	(void)state;

	if (!e2e_env_ipv6(&env, true)) {
		return;
	}
	assert_int_equal(trt_sim_start(&env, NULL), 0);
	assert_int_equal(trt_proxy_start(&env, &px, NULL), 0);
	start_daemon_via(&env, &px);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
	e2e_task_round_trip(&env, "proxy");
	assert_true(trt_proxy_count(&px, trt_fmt("TUNNEL [::1]:%d ", env.sim.port)) >= 2);
	assert_int_equal(e2e_stop(&env), 0);
	assert_int_equal(trt_proxy_stop(&px), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxy_key),
		cmocka_unit_test(test_environment),
		cmocka_unit_test(test_plain_upstream),
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_silent_proxy),
		cmocka_unit_test(test_ipv6_upstream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
