/*
 * test-token.c — the token's lifecycle: warning and expiry without a token
 * command, recovery through daemon.updateToken and through the watched token
 * file, and a seamless refresh with --token-command.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static struct trt_env env;
static struct trt_conn *rpc, *sub;

/* A fresh token for alice from the simulator (caller frees). */
static char *mint_token(int ttl) {
	struct tr_json *r = NULL;
	char *tok;
	assert_int_equal(trt_sim_http(&env, "POST", "/sim/tokens",
				 trt_fmt("{\"worker\":\"alice\",\"ttl\":%d}", ttl), &r),
		200);
	tok = strdup(e2e_str(r, "token"));
	tr_json_free(r);
	return tok;
}

static void write_file(const char *path, const char *text) {
	char tmp[600];
	int fd;
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(write(fd, "\n", 1), 1);
	close(fd);
	assert_int_equal(rename(tmp, path), 0);
}

static int connect_both(void) {
	struct tr_json *r;
	if (trt_connect(env.daemon.socket_path, &rpc) < 0 ||
		trt_connect(env.daemon.socket_path, &sub) < 0) {
		return -1;
	}
	r = trt_call_ok(sub, "events.subscribe", "{}");
	tr_json_free(r);
	return r ? 0 : -1;
}

static int teardown(void **state) {
	(void)state;
	trt_conn_free(rpc);
	trt_conn_free(sub);
	rpc = sub = NULL;
	return e2e_stop(&env) == 0 ? 0 : -1;
}

/* The simulator mints 12 s tokens; the daemon warns 6 s ahead. */
static int setup_short(void **state) {
	static const char *const sim[] = {"--token-ttl", "12", NULL};
	static const char *const daemon[] = {"--token-warn-seconds", "6", NULL};
	(void)state;
	if (e2e_start(&env, sim, daemon) < 0) {
		return -1;
	}
	return connect_both();
}

static void test_expiry_then_update_token(void **state) {
	struct tr_json *ev = NULL, *r, *err = NULL;
	char *tok;
	(void)state;
	assert_int_equal(trt_wait_event(sub, "tokenWillExpire", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	assert_int_equal(trt_wait_event(sub, "tokenExpired", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	assert_int_equal(trt_daemon_wait_status(&env, "expired", E2E_WAIT), 0);

	/* a malformed token is refused and not echoed */
	assert_int_equal(trt_call_err(rpc, "daemon.updateToken", "{\"token\":\"not-a-jwt\"}", &err),
		TR_RPC_INVALID_PARAMS);
	tr_json_free(err);

	tok = mint_token(3600);
	r = trt_call_ok(rpc, "daemon.updateToken", trt_fmt("{\"token\":\"%s\"}", tok));
	assert_non_null(r);
	{
		char *text = NULL;
		assert_int_equal(tr_json_dump(r, &text, NULL), 0);
		assert_null(strstr(text, tok));
		free(text);
	}
	tr_json_free(r);
	assert_int_equal(trt_wait_event(sub, "tokenUpdated", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	assert_int_equal(trt_wait_event(sub, "ready", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	assert_false(trt_proc_log_contains(&env.daemon.proc, tok));
	free(tok);
}

static void test_expiry_then_token_file(void **state) {
	struct tr_json *ev = NULL;
	char *tok;
	(void)state;
	assert_int_equal(trt_wait_event(sub, "tokenExpired", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	tok = mint_token(3600);
	write_file(env.daemon.token_file, tok);
	assert_int_equal(trt_wait_event(sub, "tokenUpdated", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	assert_int_equal(trt_wait_event(sub, "ready", NULL, E2E_WAIT, &ev), 0);
	tr_json_free(ev);
	assert_false(trt_proc_log_contains(&env.daemon.proc, tok));
	free(tok);
}

/* With --token-command the daemon refreshes ahead of expiry: tokenUpdated, and neither
 * tokenExpired nor a disconnect. */
static void test_token_command(void **state) {
	struct tr_json *ev = NULL;
	char *tok;
	char next[512], cmd[2048];
	(void)state;
	assert_int_equal(trt_env_init(&env), 0);
	{
		static const char *const sim[] = {"--token-ttl", "12", NULL};
		assert_int_equal(trt_sim_start(&env, sim), 0);
	}
	tok = mint_token(3600);
	snprintf(next, sizeof(next), "%s/next.token", env.dir);
	write_file(next, tok);
	/* minting rewrites alice.token: make it a short-lived one again */
	free(mint_token(12));
	/* the first run hands out the simulator's short-lived token, later runs the fresh one */
	snprintf(cmd, sizeof(cmd), "if [ -e %s/used ]; then cat %s; else touch %s/used; cat %s/alice.token; fi",
		env.dir, next, env.dir, env.sim.token_dir);
	{
		const char *const daemon[] = {"--token-warn-seconds", "6", "--token-command", cmd, NULL};
		assert_int_equal(trt_daemon_start(&env, "alice", daemon), 0);
	}
	assert_int_equal(trt_daemon_wait_status(&env, "ready", E2E_WAIT), 0);
	assert_int_equal(connect_both(), 0);
	for (;;) {
		const char *name;
		assert_int_equal(trt_next_event(sub, E2E_WAIT, &ev), 0);
		name = e2e_str(ev, "event");
		assert_true(strcmp(name, "tokenExpired") != 0);
		assert_true(strcmp(name, "disconnected") != 0);
		if (strcmp(name, "tokenUpdated") == 0) {
			tr_json_free(ev);
			break;
		}
		tr_json_free(ev);
	}
	/* still ready, and calls work */
	ev = trt_call_ok(rpc, "task.list", "{}");
	assert_non_null(ev);
	tr_json_free(ev);
	assert_false(trt_proc_log_contains(&env.daemon.proc, tok));
	free(tok);
}

static int setup_none(void **state) {
	(void)state;
	return 0;
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_expiry_then_update_token, setup_short, teardown),
		cmocka_unit_test_setup_teardown(test_expiry_then_token_file, setup_short, teardown),
		cmocka_unit_test_setup_teardown(test_token_command, setup_none, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
