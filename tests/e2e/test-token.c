/*
 * test-token.c — the token's lifecycle: warning and expiry without a token
 * command, recovery through daemon.updateToken and through the watched token
 * file, and a seamless refresh with --token-command.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file_mode(const char *path, const char *text, mode_t mode) {
	char tmp[600];
	int fd;
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(write(fd, "\n", 1), 1);
	close(fd);
	assert_int_equal(rename(tmp, path), 0);
}

static void write_file(const char *path, const char *text) {
	write_file_mode(path, text, 0600);
}

/* The simulator mints 12 s tokens; the daemon warns 6 s ahead. */
static const char *const short_sim[] = {"--token-ttl", "12", NULL};
static const char *const short_daemon[] = {"--token-warn-seconds", "6", NULL};
static struct e2e_args short_lived = {short_sim, short_daemon};

/* The daemon took the new token tok: tokenUpdated, ready again, tok in none of its logs. */
static void assert_token_taken(char *tok) {
	e2e_wait_event(e2e.sub, "tokenUpdated", NULL);
	e2e_wait_event(e2e.sub, "ready", NULL);
	assert_false(trt_proc_log_contains(&e2e.env.daemon.proc, tok));
	free(tok);
}

static void test_expiry_then_update_token(void **state) {
	struct tr_json *r, *err = NULL;
	char *tok;
	(void)state;
	e2e_wait_event(e2e.sub, "tokenWillExpire", NULL);
	e2e_wait_event(e2e.sub, "tokenExpired", NULL);
	/* The session's end (the server's close 4001) is announced after tokenExpired, with
	 * the server's reason, whichever side noticed the expiry first. */
	{
		struct tr_json *ev = NULL;
		assert_int_equal(trt_wait_event(e2e.sub, "disconnected", NULL, E2E_WAIT, &ev), 0);
		assert_string_equal(e2e_str(ev, "reason"), "token expired");
		tr_json_free(ev);
	}
	assert_int_equal(trt_daemon_wait_status(&e2e.env, "expired", E2E_WAIT), 0);

	/* a malformed token is refused and not echoed */
	assert_int_equal(
		trt_call_err(e2e.rpc, "daemon.updateToken", "{\"token\":\"not-a-jwt\"}", &err),
		TR_RPC_INVALID_PARAMS);
	tr_json_free(err);

	/* another worker's token is refused unless the switch is explicit */
	{
		struct tr_json *tr = NULL;
		assert_int_equal(trt_sim_http(&e2e.env, "POST", "/sim/tokens",
					 "{\"worker\":\"bob\",\"ttl\":3600}", &tr), 200);
		assert_int_equal(trt_call_err(e2e.rpc, "daemon.updateToken",
					 trt_fmt("{\"token\":\"%s\"}", e2e_str(tr, "token")), &err),
			TR_RPC_NOT_PERMITTED);
		assert_string_equal(e2e_str(tr_json_get(err, "data"), "reason"),
			"identity");
		tr_json_free(err);
		err = NULL;
		tr_json_free(tr);
	}

	tok = e2e_mint_token(&e2e.env, 3600);
	r = trt_call_ok(e2e.rpc, "daemon.updateToken", trt_fmt("{\"token\":\"%s\"}", tok));
	assert_non_null(r);
	{
		char *text = NULL;
		assert_int_equal(tr_json_dump(r, &text, NULL), 0);
		assert_null(strstr(text, tok));
		free(text);
	}
	tr_json_free(r);
	assert_token_taken(tok);
}

static void test_expiry_then_token_file(void **state) {
	char *tok;
	(void)state;
	e2e_wait_event(e2e.sub, "tokenExpired", NULL);
	tok = e2e_mint_token(&e2e.env, 3600);
	write_file(e2e.env.daemon.token_file, tok);
	assert_token_taken(tok);
	/* readable by others: still used, with a warning naming the mode */
	assert_false(trt_proc_log_contains(&e2e.env.daemon.proc, "(mode 0644)"));
	/* another lifetime: a token minted in the same second with the same one would be the
	 * same token, which the daemon rightly ignores */
	tok = e2e_mint_token(&e2e.env, 3700);
	write_file_mode(e2e.env.daemon.token_file, tok, 0644);
	e2e_wait_event(e2e.sub, "tokenUpdated", NULL);
	assert_true(trt_proc_log_contains(&e2e.env.daemon.proc, "(mode 0644)"));
	free(tok);
}

/* With --token-command the daemon refreshes ahead of expiry: tokenUpdated, and neither
 * tokenExpired nor a disconnect. */
static void test_token_command(void **state) {
	struct tr_json *ev = NULL;
	char *tok;
	char next[512], cmd[2048];
	(void)state;
	assert_int_equal(trt_env_init(&e2e.env), 0);
	assert_int_equal(trt_sim_start(&e2e.env, short_sim), 0);
	tok = e2e_mint_token(&e2e.env, 3600);
	snprintf(next, sizeof(next), "%s/next.token", e2e.env.dir);
	write_file(next, tok);
	/* minting rewrites alice.token: make it a short-lived one again */
	free(e2e_mint_token(&e2e.env, 12));
	/* the first run hands out the simulator's short-lived token, later runs the fresh one */
	snprintf(cmd, sizeof(cmd),
		"if [ -e %s/used ]; then cat %s; else touch %s/used; cat %s/alice.token; fi",
		e2e.env.dir, next, e2e.env.dir, e2e.env.sim.token_dir);
	{
		const char *const daemon[] = {"--token-warn-seconds", "6", "--token-command", cmd, NULL};
		assert_int_equal(trt_daemon_start(&e2e.env, "alice", daemon), 0);
	}
	assert_int_equal(trt_daemon_wait_status(&e2e.env, "ready", E2E_WAIT), 0);
	assert_int_equal(e2e_connect(), 0);
	for (;;) {
		const char *name;
		assert_int_equal(trt_next_event(e2e.sub, E2E_WAIT, &ev), 0);
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
	ev = trt_call_ok(e2e.rpc, "task.list", "{}");
	assert_non_null(ev);
	tr_json_free(ev);
	assert_false(trt_proc_log_contains(&e2e.env.daemon.proc, tok));
	free(tok);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_prestate_setup_teardown(
			test_expiry_then_update_token, e2e_setup, e2e_teardown, &short_lived),
		cmocka_unit_test_prestate_setup_teardown(
			test_expiry_then_token_file, e2e_setup, e2e_teardown, &short_lived),
		/* starts its own daemon, with a token command */
		cmocka_unit_test_teardown(test_token_command, e2e_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
