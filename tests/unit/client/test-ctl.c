/*
 * test-ctl.c — taskrouterctl against the fake server: usage errors (exit 2), connection
 * failure (3), RPC errors (4), timeouts (5), human and --json output, update-token from
 * stdin, watch --count. The binary comes from $TR_CTL.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakesrv.h"

struct run {
	int status; /* exit code, or -1 */
	char out[16384];
	char err[16384];
};

/* Read both pipes until EOF (bounded), then reap. */
static void collect(pid_t pid, int ofd, int efd, struct run *r) {
	size_t on = 0, en = 0;
	int64_t deadline = now_ms() + 10000;
	int st = 0;

	while ((ofd >= 0 || efd >= 0) && now_ms() < deadline) {
		struct pollfd p[2] = {{.fd = ofd, .events = POLLIN}, {.fd = efd, .events = POLLIN}};

		if (poll(p, 2, 500) <= 0) {
			continue;
		}
		for (int i = 0; i < 2; i++) {
			int *fd = i ? &efd : &ofd;
			char *buf = i ? r->err : r->out;
			size_t *n = i ? &en : &on;
			ssize_t k;

			if (*fd < 0 || !(p[i].revents & (POLLIN | POLLHUP))) {
				continue;
			}
			k = read(*fd, buf + *n, sizeof(r->out) - 1 - *n);
			if (k <= 0) {
				close(*fd);
				*fd = -1;
			} else {
				*n += (size_t)k;
			}
		}
	}
	if (ofd >= 0 || efd >= 0) {
		kill(pid, SIGKILL);
	}
	r->out[on] = r->err[en] = '\0';
	if (ofd >= 0) {
		close(ofd);
	}
	if (efd >= 0) {
		close(efd);
	}
	waitpid(pid, &st, 0);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run taskrouterctl with the NULL-terminated argument list; stdin gets input (or nothing). */
static void run_prog(struct run *r, const char *env, const char *input, va_list ap) {
	const char *ctl_path = getenv(env);
	const char *argv[32];
	int in[2], out[2], err[2];
	size_t n = 0;
	pid_t pid;

	assert_non_null(ctl_path);
	argv[n++] = ctl_path;
	while (n < 31 && (argv[n] = va_arg(ap, const char *))) {
		n++;
	}
	argv[n] = NULL;
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		unsetenv("TASKROUTERD_SOCKET");
		setenv("XDG_RUNTIME_DIR", "/nonexistent-runtime-dir", 1);
		execv(ctl_path, (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	if (input) {
		/* A pipe: write(2), not the socket helper's send(2). */
		assert_int_equal(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
	}
	close(in[1]);
	collect(pid, out[0], err[0], r);
}

static void ctl(struct run *r, const char *input, ...) {
	va_list ap;

	va_start(ap, input);
	run_prog(r, "TR_CTL", input, ap);
	va_end(ap);
}

static void tray(struct run *r, ...) {
	va_list ap;

	va_start(ap, r);
	run_prog(r, "TR_TRAY", NULL, ap);
	va_end(ap);
}

static void test_usage(void **state) {
	struct run r;

	ctl(&r, NULL, NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, NULL, "frobnicate", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "unknown command"));
	ctl(&r, NULL, "get", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, NULL, "get", "A", "B", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, NULL, "hold", "WT1", "WK1", "maybe", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, NULL, "set-attributes", "WT1", "[1]", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, NULL, "transfer", "WT1", "WK1", "--mode", "lukewarm", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, NULL, "--timeout", "soon", "list", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, NULL, "list", "--bogus", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, NULL, "watch", "--since", "-4", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, "", "update-token", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, "two tokens\n", "update-token", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, NULL, "call", "x", "nope", NULL);
	assert_int_equal(r.status, 2);
	ctl(&r, NULL, "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Exit status"));
	ctl(&r, NULL, "watch", "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "--since SEQ"));
}

static void test_connect_failure(void **state) {
	struct run r;

	ctl(&r, NULL, "--socket", "/nonexistent-dir/socket", "list", NULL);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.err, "cannot connect"));
	/* The default path ($XDG_RUNTIME_DIR is set to a missing directory by ctl()). */
	ctl(&r, NULL, "status", NULL);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.err, "/nonexistent-runtime-dir/taskrouterd/socket"));
	ctl(&r, NULL, "--json", "--socket", "/nonexistent-dir/socket", "watch", NULL);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.out, "{\"error\":"));
}

#define TASK_JSON                                                                                  \
	"{\"sid\":\"WT1\",\"status\":\"assigned\",\"priority\":5,\"age\":10,\"queueName\":\"Q1\"," \
	"\"taskChannelUniqueName\":\"voice\",\"attributes\":{\"a\":1}}"

/* Answers one request by method. Returns false when the connection is finished. */
static bool answer(struct server *s, int fd, char *req) {
	long long id = req_id(req);
	bool more = true;
	if (strstr(req, "\"task.list\"")) {
		srv_sendf(fd,
			"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"tasks\":[" TASK_JSON "]}}",
			id);
	} else if (strstr(req, "\"task.get\"") && strstr(req, "WTnotfound")) {
		srv_sendf(fd,
			"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32001,\"message\":"
			"\"no such task\",\"data\":{\"sid\":\"WTnotfound\"}}}",
			id);
	} else if (strstr(req, "\"task.get\"") && strstr(req, "WTslow")) {
		srv_wait_eof(fd);
		more = false;
	} else if (strstr(req, "\"task.get\"")) {
		srv_sendf(fd, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":" TASK_JSON "}", id);
	} else if (strstr(req, "\"task.complete\"")) {
		srv_sendf(fd,
			"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32005,\"message\":"
			"\"upstream timeout\"}}",
			id);
	} else if (strstr(req, "\"daemon.status\"")) {
		srv_sendf(fd,
			"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"connected\":true,"
			"\"counters\":"
			"{\"a\":1}}}",
			id);
	} else if (strstr(req, "\"daemon.updateToken\"")) {
		if (!strstr(req, "\"token\":\"tok.123\"")) {
			s->failures++;
		}
		srv_sendf(fd, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{}}", id);
	} else if (strstr(req, "\"rpc.describe\"")) {
		srv_sendf(fd,
			"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"methods\":[\"task.list\"],"
			"\"events\":[{\"name\":\"task.created\"}]}}",
			id);
	} else if (strstr(req, "\"events.subscribe\"")) {
		if (strstr(req, "\"events\":") && !strstr(req, "\"events\":[\"task.created\"]")) {
			s->failures++;
		}
		srv_sendf(fd,
			"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"subscription\":1,\"seq\":"
			"10,"
			"\"tasks\":[]}}",
			id);
		srv_send(fd,
			"{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"subscription\":1,"
			"\"seq\":11,\"event\":\"task.created\",\"taskSid\":\"WT1\","
			"\"task\":" TASK_JSON "}}");
		srv_send(fd,
			"{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"subscription\":1,"
			"\"seq\":12,\"event\":\"task.created\",\"taskSid\":\"WT2\"}}");
		srv_wait_eof(fd);
		more = false;
	} else {
		srv_sendf(fd,
			"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32601,"
			"\"message\":\"unknown method\"}}",
			id);
	}
	free(req);
	return more;
}

/* One connection per CLI run; several requests per connection for the tray. */
static void script_daemon(struct server *s, int fd) {
	char *req;

	while ((req = srv_read(fd)) && answer(s, fd, req)) {
	}
}

static void test_against_fake(void **state) {
	struct server *s = server_start_n(script_daemon, 13, NULL);
	struct run r;

	ctl(&r, NULL, "--socket", s->path, "list", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "SID"));
	assert_non_null(strstr(r.out, "WT1"));
	assert_non_null(strstr(r.out, "assigned"));
	assert_non_null(strstr(r.out, "voice"));

	ctl(&r, NULL, "--socket", s->path, "--json", "list", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "{\"tasks\":[" TASK_JSON "],\"next\":null}\n");

	ctl(&r, NULL, "--socket", s->path, "get", "WT1", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "sid: WT1\nstatus: assigned\n"));
	assert_non_null(strstr(r.out, "priority: 5\n"));
	assert_non_null(strstr(r.out, "attributes: {\"a\":1}\n"));

	/* Options after the subcommand work too. */
	ctl(&r, NULL, "get", "--json", "--socket", s->path, "WT1", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, TASK_JSON "\n");

	ctl(&r, NULL, "--socket", s->path, "--json", "get", "WTnotfound", NULL);
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, "code -32001"));
	assert_non_null(strstr(r.out, "{\"error\":{\"code\":-32001,\"message\":\"no such task\","
				      "\"data\":{\"sid\":\"WTnotfound\"}"));

	ctl(&r, NULL, "--socket", s->path, "--timeout", "0.3", "get", "WTslow", NULL);
	assert_int_equal(r.status, 5);

	ctl(&r, NULL, "--socket", s->path, "complete", "WT1", "done", NULL);
	assert_int_equal(r.status, 5);

	ctl(&r, NULL, "--socket", s->path, "status", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "connected: true\ncounters.a: 1\n");

	ctl(&r, "tok.123\n", "--socket", s->path, "update-token", NULL);
	assert_int_equal(r.status, 0);
	assert_null(strstr(r.out, "tok.123"));
	assert_null(strstr(r.err, "tok.123"));

	ctl(&r, NULL, "--socket", s->path, "describe", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "methods:\n  task.list\nevents:\n  task.created\n");

	ctl(&r, NULL, "--socket", s->path, "--json", "watch", "--event", "task.created", "--count",
		"2", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"seq\":11"));
	assert_non_null(
		strstr(r.out, "\"seq\":12,\"event\":\"task.created\",\"taskSid\":\"WT2\"}\n"));

	ctl(&r, NULL, "--socket", s->path, "call", "daemon.status", "{}", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "{\"connected\":true,\"counters\":{\"a\":1}}\n");

	ctl(&r, NULL, "--socket", s->path, "call", "no.such", NULL);
	assert_int_equal(r.status, 4);

	server_stop(s);
}

/*
 * watch across a daemon restart: the first connection delivers seq 11 and 12 and hangs
 * up; the second must resubscribe with since 13, gets REPLAY_GONE, resubscribes from now
 * and receives seq 51.
 */
static void script_restart(struct server *s, int fd) {
	int *conn = s->user;
	char *req = srv_read(fd);
	long long id = req_id(req);

	if (!req || !strstr(req, "\"events.subscribe\"")) {
		s->failures++;
		free(req);
		return;
	}
	if ((*conn)++ == 0) {
		srv_sendf(fd,
			"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"subscription\":1,"
			"\"seq\":10,\"tasks\":[]}}",
			id);
		for (int seq = 11; seq <= 12; seq++) {
			srv_sendf(fd,
				"{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{"
				"\"seq\":%d,\"event\":\"task.updated\",\"taskSid\":\"WT1\"}}",
				seq);
		}
		free(req);
		return; /* hang up: the daemon "restarts" */
	}
	if (!strstr(req, "\"since\":13")) {
		fprintf(stderr, "# resubscribe without since 13: %s\n", req);
		s->failures++;
	}
	srv_sendf(fd,
		"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32011,\"message\":"
		"\"replay gone\",\"data\":{\"oldestSeq\":40,\"currentSeq\":50}}}",
		id);
	free(req);
	req = srv_read(fd);
	if (!req || strstr(req, "since")) {
		s->failures++;
	}
	srv_sendf(fd,
		"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"subscription\":2,"
		"\"seq\":50,\"tasks\":[" TASK_JSON "]}}",
		req_id(req));
	srv_send(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"seq\":51,"
		     "\"event\":\"task.created\",\"taskSid\":\"WT7\"}}");
	free(req);
	srv_wait_eof(fd);
}

static void test_watch_restart(void **state) {
	int conn = 0;
	struct server *s = server_start_n(script_restart, 2, &conn);
	struct run r;

	ctl(&r, NULL, "--socket", s->path, "--json", "watch", "--count", "3", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"seq\":11,"));
	assert_non_null(strstr(r.out, "\"seq\":12,"));
	assert_non_null(strstr(r.out,
		"{\"gap\":{\"since\":13,\"resubscribedFrom\":51,\"data\":"
		"{\"oldestSeq\":40,\"currentSeq\":50}},\"tasks\":[" TASK_JSON "]}\n"));
	assert_non_null(strstr(r.out, "\"seq\":51,"));
	assert_non_null(strstr(r.err, "skipped events"));
	assert_non_null(strstr(r.err, "reconnect"));
	server_stop(s);
	assert_int_equal(conn, 2);

	/* Human mode prints the notice and the re-listed tasks on stdout. */
	conn = 0;
	s = server_start_n(script_restart, 2, &conn);
	ctl(&r, NULL, "--socket", s->path, "watch", "--count", "3", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "11 task.updated task=WT1\n12 task.updated task=WT1\n"
				   "skipped events: resubscribed from seq 51, re-listing\n"
				   "task WT1 status=assigned\n51 task.created task=WT7\n");
	server_stop(s);
}

/* The tray example exits cleanly on SIGTERM, once it is up and subscribed. */
static void test_tray_signal(void **state) {
	struct server *s = server_start_n(script_daemon, 1, NULL);
	const char *tray_path = getenv("TR_TRAY");
	int out[2], err[2];
	char buf[8192];
	size_t n = 0;
	int64_t deadline = now_ms() + 10000;
	struct run r;
	pid_t pid;

	assert_non_null(tray_path);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		execl(tray_path, tray_path, "--socket", s->path, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	buf[0] = '\0';
	/* Wait (on the pipe, with a deadline) until the second event has been printed. */
	while (!strstr(buf, "event seq=12") && now_ms() < deadline) {
		struct pollfd p = { .fd = out[0], .events = POLLIN };
		ssize_t k;

		if (poll(&p, 1, 500) <= 0) {
			continue;
		}
		k = read(out[0], buf + n, sizeof(buf) - 1 - n);
		if (k <= 0) {
			break;
		}
		n += (size_t)k;
		buf[n] = '\0';
	}
	assert_non_null(strstr(buf, "event seq=12"));
	assert_int_equal(kill(pid, SIGTERM), 0);
	collect(pid, out[0], err[0], &r);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "signal, exiting"));
	server_stop(s);
}

/* The tray example: lists, subscribes, sees two events and exits 0 (--max-events), or
 * exits on the task it waits for. */
static void test_tray(void **state) {
	struct server *s = server_start_n(script_daemon, 3, NULL);
	struct run r;

	tray(&r, "--socket", s->path, "--max-events", "2", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "task WT1 status=assigned queue=Q1\ntasks: 1\n"));
	assert_non_null(strstr(r.out, "subscribed\n"));
	assert_non_null(strstr(r.out, "event seq=12 task.created task=WT2"));
	tray(&r, "--socket", s->path, "--exit-on-task", "WT2", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "event seq=12 task.created task=WT2"));
	assert_non_null(strstr(r.out, "saw task WT2, exiting"));
	/* Already listed at start: exits without waiting for an event. */
	tray(&r, "--socket", s->path, "--exit-on-task", "WT1", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "saw task WT1, exiting"));
	assert_null(strstr(r.out, "event seq="));
	server_stop(s);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tray),
		cmocka_unit_test(test_tray_signal),
		cmocka_unit_test(test_watch_restart),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_connect_failure),
		cmocka_unit_test(test_against_fake),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
