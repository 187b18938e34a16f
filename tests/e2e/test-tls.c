/*
 * test-tls.c — the daemon over wss:// and https:// (issue #18), with certificates made at
 * test time (tests/lib/certs.h): a test CA given with --ca-file, and the simulator serving
 * TLS on the same port for the websocket and REST.
 *
 *   - the session works end to end (an event over the websocket, calls over REST);
 *   - each refused certificate (unknown CA, wrong host, expired) and a server that never
 *     answers the handshake: daemon.status' lastError and the log say in words what is
 *     wrong and with which host, the daemon keeps backing off, and it recovers by itself
 *     once the server presents a valid certificate (restarted on the same port);
 *   - a new CA file takes effect on SIGHUP, without a restart (same path, new content);
 *   - wss://[::1] checks the certificate's IP address (libwebsockets 4.1.6 cannot).
 */
#include "common.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

/* Wait until the daemon has failed at least twice in a row with a lastError containing
 * every needle (and the host), and is backing off; check the log says the same. */
static void expect_failing(struct trt_env *env, const char *const *needles) {
	const char *host = trt_fmt("localhost:%d", env->sim.port);
	const struct tr_json *up;
	struct tr_json *st;
	int64_t first;

	assert_int_equal(trt_daemon_wait_status(env, needles[0], E2E_WAIT), 0);
	st = e2e_upstream(env, &up);
	first = e2e_int(up, "reconnects");
	tr_json_free(st);
	/* it keeps trying: the next failure, same words */
	for (int64_t now = first; now < first + 1;) {
		assert_int_equal(trt_daemon_wait_status(env, needles[0], E2E_WAIT), 0);
		st = e2e_upstream(env, &up);
		now = e2e_int(up, "reconnects");
		tr_json_free(st);
	}
	st = e2e_upstream(env, &up);
	assert_string_equal(e2e_str(up, "state"), "reconnecting");
	for (size_t i = 0; needles[i]; i++) {
		e2e_assert_contains(e2e_str(up, "lastError"), needles[i]);
		assert_true(trt_proc_log_contains(&env->daemon.proc, needles[i]));
	}
	e2e_assert_contains(e2e_str(up, "lastError"), host);
	assert_true(trt_proc_log_contains(&env->daemon.proc, host));
	print_message("# lastError: %s\n", e2e_str(up, "lastError"));
	tr_json_free(st);
}

/* Serve the good certificate on the same port and wait for the session to come back. */
static void expect_recovery(struct trt_env *env) {
	assert_int_equal(trt_sim_stop(env), 0);
	env->sim.want_port = env->sim.port;
	env->sim.tls_cert = env->certs->good_cert;
	env->sim.tls_key = env->certs->good_key;
	assert_int_equal(trt_sim_start(env, NULL), 0);
	assert_int_equal(trt_daemon_wait_status(env, "ready", E2E_WAIT), 0);
}

/* A TLS environment whose simulator serves cert/key. */
static void start_tls(struct trt_env *env, int which) {
	assert_int_equal(trt_env_init(env), 0);
	assert_int_equal(trt_env_tls(env), 0);
	switch (which) {
	case 1:
		env->sim.tls_cert = env->certs->untrusted_cert;
		env->sim.tls_key = env->certs->untrusted_key;
		break;
	case 2:
		env->sim.tls_cert = env->certs->wrong_cert;
		env->sim.tls_key = env->certs->wrong_key;
		break;
	case 3:
		env->sim.tls_cert = env->certs->expired_cert;
		env->sim.tls_key = env->certs->expired_key;
		break;
	default:
		break;
	}
	assert_int_equal(trt_sim_start(env, NULL), 0);
}

static void test_session_over_tls(void **state) {
	struct trt_env env;
	const struct tr_json *up;
	struct tr_json *st;
	(void)state;

	start_tls(&env, 0);
	assert_true(strncmp(env.sim.base_url, "https://localhost:", 18) == 0);
	assert_int_equal(trt_daemon_start(&env, "alice", NULL), 0);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
	st = e2e_upstream(&env, &up);
	e2e_assert_contains(e2e_str(up, "websocketUrl"), "wss://localhost:");
	e2e_assert_contains(e2e_str(up, "restUrl"), "https://localhost:");
	assert_string_equal(e2e_str(up, "caFile"), env.certs->ca);
	tr_json_free(st);
	e2e_task_round_trip(&env, "tls");
	assert_int_equal(e2e_stop(&env), 0);
}

static void test_unknown_ca(void **state) {
	struct trt_env env;
	(void)state;

	start_tls(&env, 1);
	assert_int_equal(trt_daemon_start(&env, "alice", NULL), 0);
	expect_failing(&env, (const char *const[]){"not trusted",
				     "issued by \"CN=taskrouterd unknown CA",
				     "in neither the system store nor the CA file", NULL});
	expect_recovery(&env);
	e2e_task_round_trip(&env, "tls");
	assert_int_equal(e2e_stop(&env), 0);
}

static void test_hostname_mismatch(void **state) {
	struct trt_env env;
	(void)state;

	start_tls(&env, 2);
	assert_int_equal(trt_daemon_start(&env, "alice", NULL), 0);
	expect_failing(&env, (const char *const[]){"is for DNS:wrong.example, not for this host",
				     NULL});
	expect_recovery(&env);
	assert_int_equal(e2e_stop(&env), 0);
}

static void test_expired(void **state) {
	struct trt_env env;
	(void)state;

	start_tls(&env, 3);
	assert_int_equal(trt_daemon_start(&env, "alice", NULL), 0);
	expect_failing(&env, (const char *const[]){"expired on 20", "CN=localhost", NULL});
	expect_recovery(&env);
	assert_int_equal(e2e_stop(&env), 0);
}

/* A server that takes the TCP connection and never answers the ClientHello: a socket
 * listening on the port that nobody accepts from (the kernel completes the handshake). */
static void test_handshake_timeout(void **state) {
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	struct trt_env env;
	int fd, one = 1;
	(void)state;

	assert_int_equal(trt_env_init(&env), 0);
	assert_int_equal(trt_env_tls(&env), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	/* the daemon needs the simulator's token directory: start it once elsewhere */
	assert_int_equal(trt_sim_start(&env, NULL), 0);
	assert_int_equal(trt_sim_stop(&env), 0);
	env.sim.port = ntohs(sa.sin_port);
	assert_int_equal(trt_daemon_start(&env, "alice",
				 (const char *const[]){"--connect-timeout-ms", "1000", NULL}),
		0);
	expect_failing(&env, (const char *const[]){"TLS: no handshake answer from",
				     "within 1 s", NULL});
	close(fd);
	expect_recovery(&env);
	assert_int_equal(e2e_stop(&env), 0);
}

static int copy_file(const char *from, const char *to) {
	FILE *in = fopen(from, "r"), *out;
	char buf[4096];
	size_t k, len = 0;
	int r;

	if (!in) {
		return -errno;
	}
	out = fopen(to, "w");
	while (out && (k = fread(buf, 1, sizeof(buf), in)) > 0) {
		len += fwrite(buf, 1, k, out);
	}
	r = out && fclose(out) == 0 && len > 0 ? 0 : -EIO;
	fclose(in);
	return r;
}

/* --ca-file names a file holding the wrong CA; the file is rewritten with the right one and
 * SIGHUP makes the daemon trust it at once (same path, new content, no restart). Then a
 * configuration file changes the path itself. */
static void test_sighup_reloads_ca(void **state) {
	struct trt_env env;
	char *ca, *conf;
	FILE *f;
	(void)state;

	start_tls(&env, 0);
	ca = strdup(trt_fmt("%s/my-ca.pem", env.dir));
	conf = strdup(trt_fmt("%s/taskrouterd.conf", env.dir));
	assert_int_equal(copy_file(env.certs->other_ca, ca), 0);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "ca-file = %s\n", ca);
	assert_int_equal(fclose(f), 0);
	env.daemon.no_ca_file = true;
	assert_int_equal(trt_daemon_start(&env, "alice", (const char *const[]){"--config", conf, NULL}),
		0);
	expect_failing(&env, (const char *const[]){"not trusted", NULL});

	/* same path, new content */
	assert_int_equal(copy_file(env.certs->ca, ca), 0);
	assert_int_equal(kill(env.daemon.proc.pid, SIGHUP), 0);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
	e2e_task_round_trip(&env, "tls");

	/* a broken file on SIGHUP is refused and the trusted CAs stay */
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "ca-file = %s/missing.pem\n", env.dir);
	assert_int_equal(fclose(f), 0);
	/* the reload is over when the daemon says READY=1 again (systemd's reload protocol) */
	env.daemon.ready_seen = false;
	assert_int_equal(kill(env.daemon.proc.pid, SIGHUP), 0);
	assert_int_equal(trt_daemon_wait_status(&env, NULL, E2E_WAIT), 0);
	assert_true(trt_proc_log_contains(&env.daemon.proc, "keeping the CAs trusted so far"));
	assert_true(trt_proc_log_contains(&env.daemon.proc, "missing.pem"));
	{
		/* the status names the file in use, not the refused one */
		const struct tr_json *up;
		struct tr_json *st = e2e_upstream(&env, &up);
		assert_string_equal(e2e_str(up, "caFile"), ca);
		tr_json_free(st);
	}
	e2e_task_round_trip(&env, "tls");
	free(ca);
	free(conf);
	assert_int_equal(e2e_stop(&env), 0);
}

/* A CA file that cannot be used stops the start with the configuration's exit status,
 * saying which file and why; so does a proxy URL carrying credentials. */
static void test_bad_start_settings(void **state) {
	struct trt_env env;
	(void)state;

	start_tls(&env, 0);
	env.daemon.no_ca_file = true;
	assert_int_equal(trt_daemon_start(&env, "alice",
				 (const char *const[]){"--ca-file",
					 trt_fmt("%s/missing.pem", env.dir), NULL}),
		-ECHILD);
	assert_int_equal(env.daemon.proc.status, 2);
	assert_true(trt_proc_log_contains(&env.daemon.proc, "cannot use the CA file "));
	assert_true(trt_proc_log_contains(&env.daemon.proc, "missing.pem: No such file"));

	assert_int_equal(trt_daemon_start(&env, "alice",
				 (const char *const[]){"--ca-file", env.certs->good_key, NULL}),
		-ECHILD);
	assert_int_equal(env.daemon.proc.status, 2);
	assert_true(trt_proc_log_contains(&env.daemon.proc, "good.key: "));

	assert_int_equal(trt_daemon_start(&env, "alice",
				 (const char *const[]){"--proxy", "http://agent:pw@127.0.0.1:3128",
					 NULL}),
		-ECHILD);
	assert_int_equal(env.daemon.proc.status, 2);
	assert_false(trt_proc_log_contains(&env.daemon.proc, "agent:pw"));
	assert_int_equal(trt_sim_stop(&env), 0);
	trt_env_done(&env);
}

/* wss://[::1]: the certificate must name IP ::1 (the good one does, the wrong one not). */
static void test_ipv6_literal(void **state) {
	struct trt_env env;
	const struct tr_json *up;
	struct tr_json *st;
	(void)state;

	if (!e2e_env_ipv6(&env, true)) {
		return;
	}
	env.sim.tls_cert = env.certs->wrong_cert;
	env.sim.tls_key = env.certs->wrong_key;
	assert_int_equal(trt_sim_start(&env, NULL), 0);
	assert_true(strncmp(env.sim.base_url, "https://[::1]:", 14) == 0);
	assert_int_equal(trt_daemon_start(&env, "alice", NULL), 0);
	assert_int_equal(trt_daemon_wait_status(&env, "not for this host", E2E_WAIT), 0);
	st = e2e_upstream(&env, &up);
	e2e_assert_contains(e2e_str(up, "lastError"),
		trt_fmt("the certificate of [::1]:%d is for DNS:wrong.example", env.sim.port));
	tr_json_free(st);

	assert_int_equal(trt_sim_stop(&env), 0);
	env.sim.want_port = env.sim.port;
	env.sim.tls_cert = env.certs->good_cert;
	env.sim.tls_key = env.certs->good_key;
	assert_int_equal(trt_sim_start(&env, NULL), 0);
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
	e2e_task_round_trip(&env, "tls");
	assert_int_equal(e2e_stop(&env), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_over_tls),
		cmocka_unit_test(test_unknown_ca),
		cmocka_unit_test(test_hostname_mismatch),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_handshake_timeout),
		cmocka_unit_test(test_sighup_reloads_ca),
		cmocka_unit_test(test_ipv6_literal),
		cmocka_unit_test(test_bad_start_settings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
