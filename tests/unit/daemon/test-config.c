/* Unit tests of daemon/config.c: precedence, validation, the loopback rule, --token refusal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"

static char dir[64];
static char tokfile[128];

static const char *const env_names[] = {"TASKROUTERD_LOG_LEVEL", "TASKROUTERD_REGION",
	"TASKROUTERD_TOKEN", "TASKROUTERD_CONFIG", "TASKROUTERD_REST_TIMEOUT_MS",
	"TASKROUTERD_TOKEN_FILE", "CREDENTIALS_DIRECTORY", "TASKROUTERD_WEBSOCKET_URL",
	"TASKROUTERD_PROXY", "TASKROUTERD_NO_PROXY", "TASKROUTERD_PROXY_CREDENTIALS_FILE",
	"TASKROUTERD_CONNECT_TIMEOUT_MS", "TASKROUTERD_EDGE", NULL};

static int setup(void **state) {
	FILE *f;
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tr-config-XXXXXX");
	if (!mkdtemp(dir)) {
		return -1;
	}
	snprintf(tokfile, sizeof(tokfile), "%s/token", dir);
	f = fopen(tokfile, "w");
	if (!f) {
		return -1;
	}
	fputs("a.b.c\n", f);
	fclose(f);
	for (size_t i = 0; env_names[i]; i++) {
		unsetenv(env_names[i]);
	}
	setenv("XDG_RUNTIME_DIR", dir, 1);
	setenv("XDG_CONFIG_HOME", dir, 1); /* no user file unless a test writes one */
	return 0;
}

static int teardown(void **state) {
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Run tr_config_load on a NULL-terminated list of arguments (argv[0] is added). */
static int load(struct tr_config *cfg, ...) {
	char *argv[32];
	int argc = 0;
	va_list ap;
	const char *a;

	argv[argc++] = "taskrouterd";
	va_start(ap, cfg);
	while ((a = va_arg(ap, const char *)) && argc < 31) {
		argv[argc++] = (char *)a;
	}
	va_end(ap);
	argv[argc] = NULL;
	return tr_config_load(cfg, argc, argv);
}

static char *write_ini(const char *text) {
	static char path[128];
	FILE *f;
	snprintf(path, sizeof(path), "%s/tr.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_defaults(void **state) {
	struct tr_config c;
	char sock[160];
	(void)state;
	assert_int_equal(load(&c, "--token-file", tokfile, NULL), 0);
	assert_string_equal(c.websocket_url, "wss://event-bridge.twilio.com/v1/wschannels");
	assert_string_equal(c.eventbridge_url, "https://event-bridge.twilio.com/v1/wschannels");
	assert_int_equal(c.log_level, TR_LOG_INFO);
	assert_false(c.close_existing_sessions);
	assert_int_equal(c.set_offline_on_disconnect, -1);
	assert_true(c.version_check);
	assert_int_equal(c.rest_timeout_ms, 15000);
	assert_int_equal(c.silence_timeout_ms, 30000);
	assert_int_equal(c.token_warn_s, 60);
	assert_null(c.proxy);
	assert_null(c.no_proxy);
	assert_null(c.proxy_credentials_file);
	assert_false(c.proxy_credentials_from_credential);
	assert_int_equal(c.connect_timeout_ms, 15000);
	snprintf(sock, sizeof(sock), "%s/taskrouterd/socket", dir);
	assert_string_equal(c.socket_path, sock);
	assert_non_null(c.client_version);
	tr_config_done(&c);
}

static void test_precedence(void **state) {
	struct tr_config c;
	char *ini;
	(void)state;
	ini = write_ini("# comment\n[taskrouterd]\nlog-level = debug\nregion = stage-us1\n"
			"rest_timeout_ms = 1000\nheartbeat-timeout-ms = 2000\n");
	/* file only */
	assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, NULL), 0);
	assert_int_equal(c.log_level, TR_LOG_DEBUG);
	assert_int_equal(c.rest_timeout_ms, 1000);
	assert_int_equal(c.silence_timeout_ms, 2000);
	assert_string_equal(c.websocket_url, "wss://event-bridge.stage-us1.twilio.com/v1/wschannels");
	tr_config_done(&c);
	/* env beats the file */
	setenv("TASKROUTERD_LOG_LEVEL", "warning", 1);
	setenv("TASKROUTERD_REST_TIMEOUT_MS", "3000", 1);
	assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, NULL), 0);
	assert_int_equal(c.log_level, TR_LOG_WARNING);
	assert_int_equal(c.rest_timeout_ms, 3000);
	assert_int_equal(c.silence_timeout_ms, 2000);
	tr_config_done(&c);
	/* flags beat both */
	assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, "--log-level", "err",
				 "--rest-timeout-ms", "4000", NULL),
		0);
	assert_int_equal(c.log_level, TR_LOG_ERR);
	assert_int_equal(c.rest_timeout_ms, 4000);
	tr_config_done(&c);
	/* the config file named by the environment */
	setenv("TASKROUTERD_CONFIG", ini, 1);
	unsetenv("TASKROUTERD_LOG_LEVEL");
	assert_int_equal(load(&c, "--token-file", tokfile, NULL), 0);
	assert_int_equal(c.log_level, TR_LOG_DEBUG);
	tr_config_done(&c);
	unsetenv("TASKROUTERD_CONFIG");
	unsetenv("TASKROUTERD_REST_TIMEOUT_MS");
}

/* In a child (as nobody when we are root: the user's file is not read as root), load with
 * the user file xdg/taskrouterd/taskrouterd.conf and check it was layered on top. */
static int user_config_child(const char *xdg, const char *user_file) {
	struct tr_config c;
	int ok;

	if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0)) {
		return 2;
	}
	setenv("XDG_CONFIG_HOME", xdg, 1);
	if (load(&c, "--token-file", tokfile, NULL) != 0) {
		return 3;
	}
	ok = c.log_level == TR_LOG_DEBUG && c.rest_timeout_ms == 2500 &&
		strcmp(c.config_file, user_file) == 0;
	tr_config_done(&c);
	if (!ok) {
		return 4;
	}
	/* the flags still win over it, and $TASKROUTERD_CONFIG replaces both files */
	if (load(&c, "--token-file", tokfile, "--log-level", "err", NULL) != 0) {
		return 5;
	}
	ok = c.log_level == TR_LOG_ERR && c.rest_timeout_ms == 2500;
	tr_config_done(&c);
	/* a system service (--system) does not read a user's file, whatever its uid */
	if (!ok || load(&c, "--token-file", tokfile, "--system", NULL) != 0) {
		return 7;
	}
	ok = c.log_level == TR_LOG_INFO && c.rest_timeout_ms != 2500;
	tr_config_done(&c);
	setenv("TASKROUTERD_CONFIG", "/nonexistent-but-explicit.conf", 1);
	if (!ok || load(&c, "--token-file", tokfile, NULL) == 0) {
		return 6;
	}
	return 0;
}

static void test_user_config(void **state) {
	char xdg[128], sub[160], file[200];
	struct tr_config c;
	int status = -1;
	pid_t pid;
	FILE *f;
	(void)state;

	snprintf(xdg, sizeof(xdg), "%s/xdg", dir);
	snprintf(sub, sizeof(sub), "%s/taskrouterd", xdg);
	snprintf(file, sizeof(file), "%s/taskrouterd.conf", sub);
	assert_int_equal(mkdir(xdg, 0755), 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	f = fopen(file, "w");
	assert_non_null(f);
	fputs("log-level = debug\nrest-timeout-ms = 2500\n", f);
	fclose(f);
	/* nobody must reach the files */
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(chmod(file, 0644), 0);
	assert_int_equal(chmod(tokfile, 0644), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		_exit(user_config_child(xdg, file));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* as root, the user's file is not read (a system service's HOME is not its config) */
	if (geteuid() == 0) {
		setenv("XDG_CONFIG_HOME", xdg, 1);
		assert_int_equal(load(&c, "--token-file", tokfile, NULL), 0);
		assert_int_equal(c.log_level, TR_LOG_INFO);
		tr_config_done(&c);
		setenv("XDG_CONFIG_HOME", dir, 1);
	}
	assert_int_equal(chmod(dir, 0700), 0);
}

static void test_bools_and_tristate(void **state) {
	struct tr_config c;
	(void)state;
	assert_int_equal(load(&c, "--token-file", tokfile, "--close-existing-sessions",
				 "--set-offline-on-disconnect=false", "--no-version-check", NULL),
		0);
	assert_true(c.close_existing_sessions);
	assert_int_equal(c.set_offline_on_disconnect, 0);
	assert_false(c.version_check);
	tr_config_done(&c);
	assert_int_equal(load(&c, "--token-file", tokfile, "--set-offline-on-disconnect",
				 "--version-check=no", NULL),
		0);
	assert_int_equal(c.set_offline_on_disconnect, 1);
	assert_false(c.version_check);
	tr_config_done(&c);
	assert_int_equal(tr_config_parse_bool("On"), 1);
	assert_int_equal(tr_config_parse_bool("0"), 0);
	assert_int_equal(tr_config_parse_bool("maybe"), -EINVAL);
	assert_int_equal(tr_config_parse_bool(NULL), -EINVAL);
}

static void test_invalid(void **state) {
	struct tr_config c;
	char *ini;
	(void)state;
	/* no token source at all */
	assert_int_equal(load(&c, NULL), -EINVAL);
	/* both sources */
	assert_int_equal(load(&c, "--token-file", tokfile, "--token-command", "echo", NULL), -EINVAL);
	/* bad numbers, levels, unknown options, stray arguments */
	assert_int_equal(load(&c, "--token-file", tokfile, "--rest-timeout-ms", "abc", NULL), -EINVAL);
	assert_int_equal(load(&c, "--token-file", tokfile, "--rest-timeout-ms", "5", NULL), -EINVAL);
	assert_int_equal(load(&c, "--token-file", tokfile, "--token-warn-seconds", "4", NULL), -EINVAL);
	assert_int_equal(load(&c, "--token-file", tokfile, "--log-level", "loud", NULL), -EINVAL);
	assert_int_equal(load(&c, "--token-file", tokfile, "--frobnicate", NULL), -EINVAL);
	assert_int_equal(load(&c, "--token-file", tokfile, "extra", NULL), -EINVAL);
	assert_int_equal(load(&c, "--token-file", tokfile, "--region", "US/1", NULL), -EINVAL);
	/* a missing explicit config file, an unknown key, a syntax error, a foreign section */
	assert_int_equal(load(&c, "--config", "/nonexistent/tr.conf", "--token-file", tokfile, NULL),
		-EINVAL);
	ini = write_ini("bogus-key = 1\n");
	assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, NULL), -EINVAL);
	ini = write_ini("this is not ini\n");
	assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, NULL), -EINVAL);
	ini = write_ini("[other]\nlog-level = debug\n");
	assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, NULL), -EINVAL);
	/* env with a bad value */
	setenv("TASKROUTERD_REST_TIMEOUT_MS", "-1", 1);
	assert_int_equal(load(&c, "--token-file", tokfile, NULL), -EINVAL);
	unsetenv("TASKROUTERD_REST_TIMEOUT_MS");
}

static void test_refuse_token(void **state) {
	struct tr_config c;
	char *ini;
	(void)state;
	assert_int_equal(load(&c, "--token", "eyJ.x.y", NULL), -EINVAL);
	assert_int_equal(load(&c, "--token=eyJ.x.y", "--token-file", tokfile, NULL), -EINVAL);
	setenv("TASKROUTERD_TOKEN", "eyJ.x.y", 1);
	assert_int_equal(load(&c, "--token-file", tokfile, NULL), -EINVAL);
	unsetenv("TASKROUTERD_TOKEN");
	ini = write_ini("token = eyJ.x.y\n");
	assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, NULL), -EINVAL);
}

static void test_credential(void **state) {
	struct tr_config c;
	char want[160];
	(void)state;
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	assert_int_equal(load(&c, NULL), 0);
	snprintf(want, sizeof(want), "%s/token", dir);
	assert_string_equal(c.token_file, want);
	assert_true(c.token_from_credential);
	tr_config_done(&c);
	/* an explicit file wins over the credential */
	assert_int_equal(load(&c, "--token-file", "/x/y", NULL), 0);
	assert_string_equal(c.token_file, "/x/y");
	assert_false(c.token_from_credential);
	tr_config_done(&c);
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_urls(void **state) {
	static const struct {
		const char *url;
		bool ws;
		int want;
	} t[] = {
		{"wss://event-bridge.twilio.com/v1/wschannels", true, 0},
		{"ws://127.0.0.1:8080/v1/wschannels", true, 0},
		{"ws://127.9.9.9/x", true, 0},
		{"ws://localhost:1/x", true, 0},
		{"ws://[::1]:99/x", true, 0},
		{"ws://10.0.0.1/x", true, -EINVAL},
		{"ws://example.com/x", true, -EINVAL},
		{"ws://128.0.0.1/x", true, -EINVAL},
		{"ws://[::2]/x", true, -EINVAL},
		{"ws://localhost.example.com/x", true, -EINVAL},
		{"https://event-bridge.twilio.com/v1/wschannels", false, 0},
		{"http://127.0.0.1:1/v1/wschannels", false, 0},
		{"http://example.com/v1", false, -EINVAL},
		{"wss://x/v1", false, -EINVAL},
		{"https://x/v1", true, -EINVAL},
		{"ftp://x/", false, -EINVAL},
		{"https://user:pw@x/", false, -EINVAL},
		{"https://x/?a=b", false, -EINVAL},
		{"https:///path", false, -EINVAL},
		{"ws://[::1/x", true, -EINVAL},
		{"https://x y/", false, -EINVAL},
	};
	struct tr_config c;
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *reason = NULL;
		int r = tr_config_check_url(t[i].url, t[i].ws, &reason);
		if (r != t[i].want) {
			fail_msg("%s: got %d want %d", t[i].url, r, t[i].want);
		}
		if (r < 0) {
			assert_non_null(reason);
		}
	}
	/* through the command line */
	assert_int_equal(load(&c, "--token-file", tokfile, "--websocket-url", "ws://example.com/x",
				 NULL),
		-EINVAL);
	assert_int_equal(load(&c, "--token-file", tokfile, "--eventbridge-url",
				 "http://192.168.1.1/x", NULL),
		-EINVAL);
	assert_int_equal(load(&c, "--token-file", tokfile, "--websocket-url", "ws://127.0.0.1:5/v1",
				 "--eventbridge-url", "http://127.0.0.1:5/v1", NULL),
		0);
	assert_string_equal(c.websocket_url, "ws://127.0.0.1:5/v1");
	tr_config_done(&c);
}

/* The SDK's host table (spec 1.1): the bare host for no region, "" and us1; any other region
 * inserted verbatim; the same host for the websocket and the REST proxy. */
static void test_region(void **state) {
	static const struct {
		const char *region, *host;
	} table[] = {
		{NULL, "event-bridge.twilio.com"},
		{"", "event-bridge.twilio.com"},
		{"us1", "event-bridge.twilio.com"},
		{"us2", "event-bridge.us2.twilio.com"},
		{"ie1", "event-bridge.ie1.twilio.com"},
		{"au1", "event-bridge.au1.twilio.com"},
		{"jp1", "event-bridge.jp1.twilio.com"},
		{"sg1", "event-bridge.sg1.twilio.com"},
		{"de1", "event-bridge.de1.twilio.com"},
		{"br1", "event-bridge.br1.twilio.com"},
		{"stage-us1", "event-bridge.stage-us1.twilio.com"},
		{"dev-us1", "event-bridge.dev-us1.twilio.com"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *ws, *eb, *want;

		assert_int_equal(tr_config_region_urls(table[i].region, &ws, &eb), 0);
		assert_true(asprintf(&want, "wss://%s/v1/wschannels", table[i].host) > 0);
		assert_string_equal(ws, want);
		free(want);
		assert_true(asprintf(&want, "https://%s/v1/wschannels", table[i].host) > 0);
		assert_string_equal(eb, want);
		free(want);
		free(ws);
		free(eb);
	}
}

/* --edge is accepted and never changes a URL (the SDK's tests check the same); --region goes
 * through the whole option path; a region outside [a-z0-9-] is refused. */
static void test_region_options(void **state) {
	struct tr_config c;
	static const char *const edges[] = {"sydney", "dublin", "ashburn", "umatilla", "tokyo"};
	(void)state;

	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		assert_int_equal(load(&c, "--token-file", tokfile, "--region", "ie1", "--edge", edges[i],
					 NULL),
			0);
		assert_string_equal(c.websocket_url, "wss://event-bridge.ie1.twilio.com/v1/wschannels");
		assert_string_equal(c.eventbridge_url, "https://event-bridge.ie1.twilio.com/v1/wschannels");
		tr_config_done(&c);
	}
	assert_int_equal(load(&c, "--token-file", tokfile, "--edge", "sydney", NULL), 0);
	assert_string_equal(c.websocket_url, "wss://event-bridge.twilio.com/v1/wschannels");
	tr_config_done(&c);
	assert_true(load(&c, "--token-file", tokfile, "--region", "IE1", NULL) < 0);
	assert_true(load(&c, "--token-file", tokfile, "--region", "ie1.evil.com/x", NULL) < 0);
}

/* ---- stderr, where tr_config_load writes its messages ---- */

static char err_path[128];
static int saved_stderr = -1;

static void capture(void) {
	int fd;
	snprintf(err_path, sizeof(err_path), "%s/stderr-XXXXXX", dir);
	fd = mkstemp(err_path);
	assert_true(fd >= 0);
	fflush(stderr);
	if (saved_stderr < 0) {
		saved_stderr = dup(2);
		assert_true(saved_stderr >= 0);
	}
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
}

static char *captured(void) {
	static char buf[8192];
	FILE *f;
	size_t n;
	fflush(stderr);
	assert_int_equal(dup2(saved_stderr, 2), 2);
	f = fopen(err_path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(err_path);
	return buf;
}

static size_t count(const char *hay, const char *needle) {
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) {
		n++;
	}
	return n;
}

/* The proxy keys, the connect timeout and edge through each of the three sources. */
static void test_proxy_keys(void **state) {
	struct tr_config c;
	char *ini, *err;
	(void)state;

	/* the file */
	ini = write_ini("proxy = http://file.example:3128\n"
			"no-proxy = .example.com, 10.0.0.0/8\n"
			"proxy-credentials-file = /file/cred\n"
			"connect-timeout-ms = 2000\n"
			"edge = sydney\n");
	capture();
	assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, NULL), 0);
	err = captured();
	assert_string_equal(c.proxy, "http://file.example:3128");
	assert_string_equal(c.no_proxy, ".example.com, 10.0.0.0/8");
	assert_string_equal(c.proxy_credentials_file, "/file/cred");
	assert_false(c.proxy_credentials_from_credential);
	assert_int_equal(c.connect_timeout_ms, 2000);
	assert_string_equal(c.edge, "sydney");
	assert_string_equal(c.websocket_url, "wss://event-bridge.twilio.com/v1/wschannels");
	/* edge: one notice per load */
	assert_int_equal(count(err, "edge 'sydney' is ignored"), 1);
	tr_config_done(&c);
	/* underscores in the file, as for every key */
	ini = write_ini("no_proxy = a.example\nproxy_credentials_file = /f2\n"
			"connect_timeout_ms = 3000\n");
	assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, NULL), 0);
	assert_string_equal(c.no_proxy, "a.example");
	assert_string_equal(c.proxy_credentials_file, "/f2");
	assert_int_equal(c.connect_timeout_ms, 3000);
	tr_config_done(&c);

	/* the environment beats the file */
	ini = write_ini("proxy = http://file.example:3128\nno-proxy = file.example\n"
			"proxy-credentials-file = /file/cred\nconnect-timeout-ms = 2000\n");
	setenv("TASKROUTERD_PROXY", "[fd00::1]:8080", 1);
	setenv("TASKROUTERD_NO_PROXY", "env.example", 1);
	setenv("TASKROUTERD_PROXY_CREDENTIALS_FILE", "/env/cred", 1);
	setenv("TASKROUTERD_CONNECT_TIMEOUT_MS", "120000", 1);
	setenv("TASKROUTERD_EDGE", "dublin", 1);
	capture();
	assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, NULL), 0);
	err = captured();
	assert_string_equal(c.proxy, "[fd00::1]:8080");
	assert_string_equal(c.no_proxy, "env.example");
	assert_string_equal(c.proxy_credentials_file, "/env/cred");
	assert_int_equal(c.connect_timeout_ms, 120000);
	assert_string_equal(c.edge, "dublin");
	assert_int_equal(count(err, "edge 'dublin' is ignored"), 1);
	tr_config_done(&c);

	/* the flags beat both */
	assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, "--proxy",
				 "flag.example:1", "--no-proxy", "*", "--proxy-credentials-file",
				 "/flag/cred", "--connect-timeout-ms", "1000", "--edge", "tokyo",
				 NULL),
		0);
	assert_string_equal(c.proxy, "flag.example:1");
	assert_string_equal(c.no_proxy, "*");
	assert_string_equal(c.proxy_credentials_file, "/flag/cred");
	assert_int_equal(c.connect_timeout_ms, 1000);
	assert_string_equal(c.edge, "tokyo");
	tr_config_done(&c);
	assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, "--proxy=none", NULL),
		0);
	assert_string_equal(c.proxy, "none");
	tr_config_done(&c);
	unsetenv("TASKROUTERD_PROXY");
	unsetenv("TASKROUTERD_NO_PROXY");
	unsetenv("TASKROUTERD_PROXY_CREDENTIALS_FILE");
	unsetenv("TASKROUTERD_CONNECT_TIMEOUT_MS");
	unsetenv("TASKROUTERD_EDGE");
}

/* "none" (any case) from every source. */
static void test_proxy_none(void **state) {
	static const char *const words[] = {"none", "NONE", "None"};
	struct tr_config c;
	char text[64], *ini;
	(void)state;

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		assert_int_equal(load(&c, "--token-file", tokfile, "--proxy", words[i], NULL), 0);
		assert_string_equal(c.proxy, words[i]);
		tr_config_done(&c);
		setenv("TASKROUTERD_PROXY", words[i], 1);
		assert_int_equal(load(&c, "--token-file", tokfile, NULL), 0);
		assert_string_equal(c.proxy, words[i]);
		tr_config_done(&c);
		unsetenv("TASKROUTERD_PROXY");
		snprintf(text, sizeof(text), "proxy = %s\n", words[i]);
		ini = write_ini(text);
		assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, NULL), 0);
		assert_string_equal(c.proxy, words[i]);
		tr_config_done(&c);
	}
}

/* A user or password in the proxy address is refused from every source (exit status 2, as
 * a token would be), and the message never repeats it. */
static void test_proxy_userinfo(void **state) {
	static const char *const addrs[] = {"http://alice:s3cr3t@proxy.example:3128",
		"alice:s3cr3t@proxy.example:3128", "http://alice@proxy.example:3128/",
		"alice:s3cr3t@[::1]:3128"};
	struct tr_config c;
	char text[128], *ini, *err;
	(void)state;

	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		capture();
		assert_int_equal(load(&c, "--token-file", tokfile, "--proxy", addrs[i], NULL),
			-EINVAL);
		err = captured();
		assert_non_null(strstr(err, "taskrouterd: --proxy: refusing a user name or "
					    "password in the proxy address"));
		assert_non_null(strstr(err, "proxy-credentials-file"));
		assert_null(strstr(err, "s3cr3t"));
		assert_null(strstr(err, "alice"));

		setenv("TASKROUTERD_PROXY", addrs[i], 1);
		capture();
		assert_int_equal(load(&c, "--token-file", tokfile, NULL), -EINVAL);
		err = captured();
		assert_non_null(strstr(err, "TASKROUTERD_PROXY: refusing a user name"));
		assert_null(strstr(err, "s3cr3t"));
		assert_null(strstr(err, "alice"));
		unsetenv("TASKROUTERD_PROXY");

		snprintf(text, sizeof(text), "proxy = %s\n", addrs[i]);
		ini = write_ini(text);
		capture();
		assert_int_equal(load(&c, "--config", ini, "--token-file", tokfile, NULL), -EINVAL);
		err = captured();
		assert_non_null(strstr(err, "refusing a user name"));
		assert_null(strstr(err, "s3cr3t"));
		assert_null(strstr(err, "alice"));
	}
	/* a refused --proxy is refused even when the environment's proxy is fine */
	setenv("TASKROUTERD_PROXY", "ok.example:1", 1);
	assert_int_equal(load(&c, "--token-file", tokfile, "--proxy", "u:p@x:1", NULL), -EINVAL);
	unsetenv("TASKROUTERD_PROXY");
}

static void test_proxy_invalid(void **state) {
	static const char *const bad[] = {"", "proxy.example", "proxy.example:", "proxy.example:0",
		"proxy.example:65536", "proxy.example:http", "https://proxy.example:443",
		"socks5://proxy.example:1080", "http://proxy.example:3128/path", "::1:3128",
		"[::1]", "nonee", "none:1x"};
	struct tr_config c;
	char text[128], *ini;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (load(&c, "--token-file", tokfile, "--proxy", bad[i], NULL) != -EINVAL) {
			fail_msg("--proxy '%s' accepted", bad[i]);
		}
		setenv("TASKROUTERD_PROXY", bad[i], 1);
		if (load(&c, "--token-file", tokfile, NULL) != -EINVAL) {
			fail_msg("TASKROUTERD_PROXY='%s' accepted", bad[i]);
		}
		unsetenv("TASKROUTERD_PROXY");
		snprintf(text, sizeof(text), "proxy = %s\n", bad[i]);
		ini = write_ini(text);
		if (load(&c, "--config", ini, "--token-file", tokfile, NULL) != -EINVAL) {
			fail_msg("proxy = '%s' accepted in the file", bad[i]);
		}
	}
	/* the reason is given */
	{
		char *err;
		capture();
		assert_int_equal(load(&c, "--token-file", tokfile, "--proxy", "p.example:0", NULL),
			-EINVAL);
		err = captured();
		assert_non_null(strstr(err, "--proxy: the proxy port must be a number in 1..65535"));
		capture();
		assert_int_equal(load(&c, "--token-file", tokfile, "--proxy", "socks5://p:1", NULL),
			-EINVAL);
		err = captured();
		assert_non_null(strstr(err, "SOCKS proxies are not supported"));
	}
	/* empty values of the other keys, as for every string key */
	assert_int_equal(load(&c, "--token-file", tokfile, "--no-proxy", "", NULL), -EINVAL);
	assert_int_equal(load(&c, "--token-file", tokfile, "--proxy-credentials-file", "", NULL),
		-EINVAL);
}

static void test_connect_timeout(void **state) {
	static const struct {
		const char *v;
		int want; /* -1: refused */
	} t[] = {
		{"1000", 1000}, {"15000", 15000}, {"120000", 120000}, {"999", -1}, {"0", -1},
		{"-1000", -1}, {"120001", -1}, {"1e4", -1}, {"abc", -1}, {"", -1},
	};
	struct tr_config c;
	char text[64], *ini;
	(void)state;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int want = t[i].want < 0 ? -EINVAL : 0;
		int r = load(&c, "--token-file", tokfile, "--connect-timeout-ms", t[i].v, NULL);
		if (r != want) {
			fail_msg("--connect-timeout-ms '%s': %d", t[i].v, r);
		}
		if (r == 0) {
			assert_int_equal(c.connect_timeout_ms, t[i].want);
			tr_config_done(&c);
		}
		setenv("TASKROUTERD_CONNECT_TIMEOUT_MS", t[i].v, 1);
		r = load(&c, "--token-file", tokfile, NULL);
		unsetenv("TASKROUTERD_CONNECT_TIMEOUT_MS");
		if (r != want) {
			fail_msg("TASKROUTERD_CONNECT_TIMEOUT_MS '%s': %d", t[i].v, r);
		}
		if (r == 0) {
			assert_int_equal(c.connect_timeout_ms, t[i].want);
			tr_config_done(&c);
		}
		snprintf(text, sizeof(text), "connect-timeout-ms = %s\n", t[i].v);
		ini = write_ini(text);
		r = load(&c, "--config", ini, "--token-file", tokfile, NULL);
		if (r != want) {
			fail_msg("connect-timeout-ms = '%s' in the file: %d", t[i].v, r);
		}
		if (r == 0) {
			assert_int_equal(c.connect_timeout_ms, t[i].want);
			tr_config_done(&c);
		}
	}
}

/* $CREDENTIALS_DIRECTORY/proxy-credentials is the default when it exists. */
static void test_proxy_credential(void **state) {
	struct tr_config c;
	char cred[160];
	FILE *f;
	(void)state;

	snprintf(cred, sizeof(cred), "%s/proxy-credentials", dir);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	/* none there: no file */
	assert_int_equal(load(&c, "--token-file", tokfile, NULL), 0);
	assert_null(c.proxy_credentials_file);
	assert_false(c.proxy_credentials_from_credential);
	tr_config_done(&c);
	f = fopen(cred, "w");
	assert_non_null(f);
	fputs("u:p\n", f);
	fclose(f);
	assert_int_equal(load(&c, "--token-file", tokfile, NULL), 0);
	assert_string_equal(c.proxy_credentials_file, cred);
	assert_true(c.proxy_credentials_from_credential);
	tr_config_done(&c);
	/* with the token from the credential too */
	assert_int_equal(load(&c, NULL), 0);
	assert_string_equal(c.proxy_credentials_file, cred);
	assert_true(c.proxy_credentials_from_credential);
	assert_true(c.token_from_credential);
	tr_config_done(&c);
	/* a file named anywhere wins */
	assert_int_equal(load(&c, "--token-file", tokfile, "--proxy-credentials-file", "/x/c",
				 NULL),
		0);
	assert_string_equal(c.proxy_credentials_file, "/x/c");
	assert_false(c.proxy_credentials_from_credential);
	tr_config_done(&c);
	setenv("TASKROUTERD_PROXY_CREDENTIALS_FILE", "/env/c", 1);
	assert_int_equal(load(&c, "--token-file", tokfile, NULL), 0);
	assert_string_equal(c.proxy_credentials_file, "/env/c");
	assert_false(c.proxy_credentials_from_credential);
	tr_config_done(&c);
	unsetenv("TASKROUTERD_PROXY_CREDENTIALS_FILE");
	/* no credentials directory: no default */
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(load(&c, "--token-file", tokfile, NULL), 0);
	assert_null(c.proxy_credentials_file);
	tr_config_done(&c);
	setenv("CREDENTIALS_DIRECTORY", "", 1);
	assert_int_equal(load(&c, "--token-file", tokfile, NULL), 0);
	assert_null(c.proxy_credentials_file);
	tr_config_done(&c);
	unsetenv("CREDENTIALS_DIRECTORY");
	unlink(cred);
}

/* --help lists the new keys. */
static void test_help(void **state) {
	struct tr_config c;
	char path[128], buf[16384];
	int fd, saved;
	ssize_t n;
	(void)state;

	snprintf(path, sizeof(path), "%s/help-XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stdout);
	saved = dup(1);
	assert_int_equal(dup2(fd, 1), 1);
	assert_int_equal(load(&c, "--help", NULL), 1);
	fflush(stdout);
	assert_int_equal(dup2(saved, 1), 1);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "--proxy VALUE"));
	assert_non_null(strstr(buf, "--no-proxy VALUE"));
	assert_non_null(strstr(buf, "--proxy-credentials-file VALUE"));
	assert_non_null(strstr(buf, "--connect-timeout-ms N"));
	assert_non_null(strstr(buf, "--edge VALUE"));
	assert_non_null(strstr(buf, "proxy-credentials"));
}

static void test_default_socket(void **state) {
	char *s;
	(void)state;
	s = tr_config_default_socket(true);
	assert_string_equal(s, "/run/taskrouterd/socket");
	free(s);
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	s = tr_config_default_socket(false);
	assert_string_equal(s, "/run/user/1000/taskrouterd/socket");
	free(s);
	unsetenv("XDG_RUNTIME_DIR");
	s = tr_config_default_socket(false);
	assert_string_equal(s, "/run/taskrouterd/socket");
	free(s);
	setenv("XDG_RUNTIME_DIR", dir, 1);
}

static void test_log_level_parse(void **state) {
	(void)state;
	assert_int_equal(tr_log_level_parse("err"), TR_LOG_ERR);
	assert_int_equal(tr_log_level_parse("WARNING"), TR_LOG_WARNING);
	assert_int_equal(tr_log_level_parse("notice"), TR_LOG_NOTICE);
	assert_int_equal(tr_log_level_parse("info"), TR_LOG_INFO);
	assert_int_equal(tr_log_level_parse("debug"), TR_LOG_DEBUG);
	assert_int_equal(tr_log_level_parse("7"), TR_LOG_DEBUG);
	assert_int_equal(tr_log_level_parse("8"), -EINVAL);
	assert_int_equal(tr_log_level_parse(""), -EINVAL);
	assert_int_equal(tr_log_level_parse(NULL), -EINVAL);
	tr_log_setup(TR_LOG_WARNING);
	assert_true(tr_log_enabled(TR_LOG_ERR));
	assert_false(tr_log_enabled(TR_LOG_INFO));
	tr_log_setup(TR_LOG_INFO);
}

/* The shipped example configuration parses and leaves the defaults in place. */
static void test_example_file(void **state) {
	struct tr_config c;
	const char *path = TR_SOURCE_ROOT "/doc/taskrouterd.conf.example";
	(void)state;
	if (access(path, R_OK) < 0) {
		skip();
	}
	assert_int_equal(load(&c, "--config", path, "--token-file", tokfile, NULL), 0);
	assert_int_equal(c.log_level, TR_LOG_INFO);
	assert_int_equal(c.rest_timeout_ms, 15000);
	assert_string_equal(c.config_file, path);
	tr_config_done(&c);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_user_config),
		cmocka_unit_test(test_bools_and_tristate),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_refuse_token),
		cmocka_unit_test(test_credential),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_region),
		cmocka_unit_test(test_region_options),
		cmocka_unit_test(test_proxy_keys),
		cmocka_unit_test(test_proxy_none),
		cmocka_unit_test(test_proxy_userinfo),
		cmocka_unit_test(test_proxy_invalid),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_proxy_credential),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_default_socket),
		cmocka_unit_test(test_log_level_parse),
		cmocka_unit_test(test_example_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
