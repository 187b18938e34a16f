/*
 * test-ctl.c — taskrouterctl against the fake server: usage errors (exit 2), connection
 * failure (3), RPC errors (4), timeouts (5), human and --json output, update-token from
 * stdin, watch --count, the reservation, worker and instruction commands (each request's
 * method and params checked exactly), and the tray example. Each run is a row of a case table: the
 * arguments, stdin, the exit status and what stdout and stderr must (not) hold. The
 * binaries come from $TR_CTL and $TR_TRAY.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
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

struct child {
	pid_t pid;
	int in, out, err; /* our ends of its stdin, stdout and stderr */
};

/*
 * Start argv[0] with pipes for stdin, stdout and stderr, and with no daemon socket in its
 * environment: only --socket, or a default path that does not exist, reaches a server.
 */
static void spawn(struct child *ch, const char *const *argv) {
	int in[2], out[2], err[2];

	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	ch->pid = fork();
	assert_true(ch->pid >= 0);
	if (ch->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		unsetenv("TASKROUTERD_SOCKET");
		setenv("XDG_RUNTIME_DIR", "/nonexistent-runtime-dir", 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	ch->in = in[1];
	ch->out = out[0];
	ch->err = err[0];
}

/* Stands in a case's argv for the fake server's socket path. */
#define SOCKET "@socket"

/* One run of taskrouterctl (or of the tray example) and what it must print. */
struct ctl_case {
	const char *argv[28];
	const char *input; /* on stdin; NULL: nothing */
	int status;
	const char *out;        /* all of stdout, or NULL */
	const char *out_has[4]; /* pieces of stdout */
	const char *err_has[2]; /* pieces of stderr */
	const char *hidden;     /* on neither stdout nor stderr */
	bool tray;              /* run the tray example instead of taskrouterctl */
};

static bool has_all(const char *text, const char *const *pieces, size_t n) {
	for (size_t i = 0; i < n && pieces[i]; i++) {
		if (!strstr(text, pieces[i])) {
			return false;
		}
	}
	return true;
}

/* Run c (socket replaces SOCKET in its argv) and check its exit status and output. */
static void check(const struct ctl_case *c, const char *socket) {
	const char *prog = getenv(c->tray ? "TR_TRAY" : "TR_CTL");
	const char *argv[32];
	struct child ch;
	struct run r;
	size_t n = 0;
	bool ok;

	assert_non_null(prog);
	argv[n++] = prog;
	for (size_t i = 0; c->argv[i]; i++) {
		argv[n++] = strcmp(c->argv[i], SOCKET) == 0 ? socket : c->argv[i];
	}
	argv[n] = NULL;
	spawn(&ch, argv);
	if (c->input) {
		/* A pipe: write(2), not the socket helper's send(2). */
		assert_int_equal(
			write(ch.in, c->input, strlen(c->input)), (ssize_t)strlen(c->input));
	}
	close(ch.in);
	collect(ch.pid, ch.out, ch.err, &r);

	ok = r.status == c->status && (!c->out || strcmp(r.out, c->out) == 0) &&
	     has_all(r.out, c->out_has, 4) && has_all(r.err, c->err_has, 2) &&
	     (!c->hidden || (!strstr(r.out, c->hidden) && !strstr(r.err, c->hidden)));
	if (!ok) {
		fprintf(stderr, "#");
		for (size_t i = 1; i < n; i++) {
			fprintf(stderr, " %s", argv[i]);
		}
		fprintf(stderr, "\n# exit %d, expected %d\n# stdout: %s\n# stderr: %s\n", r.status,
			c->status, r.out, r.err);
		fail();
	}
}

static void check_all(const struct ctl_case *cases, size_t n, const char *socket) {
	for (size_t i = 0; i < n; i++) {
		check(&cases[i], socket);
	}
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const struct ctl_case usage_cases[] = {
	{{NULL}, .status = 2},
	{{"frobnicate"}, .status = 2, .err_has = {"unknown command"}},
	{{"get"}, .status = 2},
	{{"get", "A", "B"}, .status = 2},
	{{"hold", "WT1", "WK1", "maybe"}, .status = 2},
	{{"set-attributes", "WT1", "[1]"}, .status = 2},
	{{"transfer", "WT1", "WK1", "--mode", "lukewarm"}, .status = 2},
	{{"--timeout", "soon", "list"}, .status = 2},
	{{"list", "--bogus"}, .status = 2},
	{{"watch", "--since", "-4"}, .status = 2},
	{{"watch", "--epoch", "e1"}, .status = 2, .err_has = {"--epoch needs --since"}},
	{{"watch", "--since", "3", "--epoch", ""}, .status = 2},
	{{"update-token"}, .input = "", .status = 2},
	{{"update-token"}, .input = "two tokens\n", .status = 2},
	{{"call", "x", "nope"}, .status = 2},
	{{"--help"}, .status = 0,
		.out_has = {"Exit status", "\n  reject SID [--activity NAME]\n",
			"\n  call SID --from FROM --url URL [OPTION]...\n",
			"\n  call METHOD [PARAMS-JSON]\n"}},
	/* Flags of the wrong type or missing, before anything is sent. */
	{{"conference", "WR1", "--timeout", "soon"}, .status = 2,
		.err_has = {"invalid --timeout 'soon'"}},
	{{"conference", "WR1", "--max-participants", "1.5"}, .status = 2},
	{{"dequeue", "WR1", "--timeout", "-3"}, .status = 2},
	{{"conference", "WR1", "--muted=yes"}, .status = 2, .err_has = {"--muted takes no value"}},
	{{"conference", "WR1", "--beep", ""}, .status = 2},
	{{"call", "WR1", "--from", "+1555"}, .status = 2, .err_has = {"missing --url"}},
	{{"redirect", "WR1", "--url", "http://t"}, .status = 2, .err_has = {"missing --call-sid"}},
	{{"call", "task.get", "--from", "+1555"}, .status = 2, .err_has = {"unknown option"}},
	{{"reject", "WR1", "--activity"}, .status = 2, .err_has = {"--activity needs a value"}},
	{{"reject", "WR1", "--activity", ""}, .status = 2},
	{{"activity"}, .status = 2, .err_has = {"missing argument"}},
	{{"activity", "Break", "--reject-pending", "x"}, .status = 2},
	{{"worker", "WK1"}, .status = 2, .err_has = {"too many arguments"}},
	{{"accept", "WR1", "--activity", "Break"}, .status = 2},
	{{"conference", "--help"}, .status = 0,
		.out_has = {"--[no-]start-conference-on-enter",
			"startConferenceOnEnter (true; --no-",
			"--max-participants N", "maxParticipants (integer)"}},
	{{"call", "--help"}, .status = 0,
		.out_has = {"call SID --from FROM --url URL", "call METHOD [PARAMS-JSON]",
			"--status-callback-url URL", "statusCallbackUrl (string)"}},
	{{"watch", "--help"}, .status = 0, .out_has = {"--since SEQ", "--epoch EPOCH"}},
};

static void test_usage(void **state) {
	check_all(usage_cases, ARRAY_SIZE(usage_cases), NULL);
}

static const struct ctl_case connect_cases[] = {
	{{"--socket", "/nonexistent-dir/socket", "list"}, .status = 3,
		.err_has = {"cannot connect"}},
	/* The default path (spawn() sets $XDG_RUNTIME_DIR to a missing directory). */
	{{"status"}, .status = 3, .err_has = {"/nonexistent-runtime-dir/taskrouterd/socket"}},
	{{"--json", "--socket", "/nonexistent-dir/socket", "watch"}, .status = 3,
		.out_has = {"{\"error\":"}},
};

static void test_connect_failure(void **state) {
	check_all(connect_cases, ARRAY_SIZE(connect_cases), NULL);
}

#define TASK_JSON                                                                                  \
	"{\"sid\":\"WT1\",\"status\":\"assigned\",\"priority\":5,\"age\":10,\"queueName\":\"Q1\"," \
	"\"taskChannelUniqueName\":\"voice\",\"attributes\":{\"a\":1}}"

/* Answer request id with member, "\"result\":…" or "\"error\":…". */
static void reply(int fd, long long id, const char *member) {
	srv_sendf(fd, "{\"jsonrpc\":\"2.0\",\"id\":%lld,%s}", id, member);
}

static void notify(int fd, const char *params) {
	srv_sendf(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":%s}", params);
}

/* Answers one request by method. Returns false when the connection is finished. */
static bool answer(struct server *s, int fd, char *req) {
	long long id = req_id(req);
	bool more = true;

	if (strstr(req, "\"task.list\"")) {
		reply(fd, id, "\"result\":{\"tasks\":[" TASK_JSON "]}");
	} else if (strstr(req, "\"task.get\"") && strstr(req, "WTnotfound")) {
		reply(fd, id,
			"\"error\":{\"code\":-32001,\"message\":\"no such task\","
			"\"data\":{\"sid\":\"WTnotfound\"}}");
	} else if (strstr(req, "\"task.get\"") && strstr(req, "WTslow")) {
		srv_wait_eof(fd);
		more = false;
	} else if (strstr(req, "\"task.get\"")) {
		reply(fd, id, "\"result\":" TASK_JSON);
	} else if (strstr(req, "\"task.complete\"")) {
		reply(fd, id, "\"error\":{\"code\":-32005,\"message\":\"upstream timeout\"}");
	} else if (strstr(req, "\"daemon.status\"")) {
		reply(fd, id, "\"result\":{\"connected\":true,\"counters\":{\"a\":1}}");
	} else if (strstr(req, "\"daemon.updateToken\"")) {
		if (!strstr(req, "\"token\":\"tok.123\"")) {
			s->failures++;
		}
		reply(fd, id, "\"result\":{}");
	} else if (strstr(req, "\"rpc.describe\"")) {
		reply(fd, id,
			"\"result\":{\"methods\":[\"task.list\"],"
			"\"events\":[{\"name\":\"reservationCreated\"}]}");
	} else if (strstr(req, "\"events.subscribe\"")) {
		if (strstr(req, "\"events\":") && !strstr(req, "\"events\":[\"reservationCreated\"]")) {
			s->failures++;
		}
		/* watch --since 11 --epoch e0: both go out */
		if (strstr(req, "\"since\"") && (!strstr(req, "\"since\":11") ||
			!strstr(req, "\"epoch\":\"e0\""))) {
			s->failures++;
		}
		reply(fd, id, "\"result\":{\"subscription\":1,\"seq\":10,\"tasks\":[]}");
		notify(fd, "{\"subscription\":1,\"seq\":11,\"event\":\"reservationCreated\","
			   "\"taskSid\":\"WT1\",\"task\":" TASK_JSON "}");
		notify(fd, "{\"subscription\":1,\"seq\":12,\"event\":\"reservationCreated\","
			   "\"taskSid\":\"WT2\"}");
		srv_wait_eof(fd);
		more = false;
	} else {
		reply(fd, id, "\"error\":{\"code\":-32601,\"message\":\"unknown method\"}");
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

static const struct ctl_case fake_cases[] = {
	{{"--socket", SOCKET, "list"}, .status = 0, .out_has = {"SID", "WT1", "assigned", "voice"}},
	{{"--socket", SOCKET, "--json", "list"}, .status = 0,
		.out = "{\"tasks\":[" TASK_JSON "],\"next\":null}\n"},
	{{"--socket", SOCKET, "get", "WT1"}, .status = 0,
		.out_has = {"sid: WT1\nstatus: assigned\n", "priority: 5\n",
			"attributes: {\"a\":1}\n"}},
	/* Options after the subcommand work too. */
	{{"get", "--json", "--socket", SOCKET, "WT1"}, .status = 0, .out = TASK_JSON "\n"},
	{{"--socket", SOCKET, "--json", "get", "WTnotfound"}, .status = 4,
		.err_has = {"code -32001"},
		.out_has = {"{\"error\":{\"code\":-32001,\"message\":\"no such task\","
			    "\"data\":{\"sid\":\"WTnotfound\"}"}},
	{{"--socket", SOCKET, "--timeout", "0.3", "get", "WTslow"}, .status = 5},
	{{"--socket", SOCKET, "complete", "WT1", "done"}, .status = 5},
	{{"--socket", SOCKET, "status"}, .status = 0, .out = "connected: true\ncounters.a: 1\n"},
	{{"--socket", SOCKET, "update-token"}, .input = "tok.123\n", .status = 0,
		.hidden = "tok.123"},
	{{"--socket", SOCKET, "describe"}, .status = 0,
		.out = "methods:\n  task.list\nevents:\n  reservationCreated\n"},
	{{"--socket", SOCKET, "--json", "watch", "--event", "reservationCreated", "--count", "2"},
		.status = 0,
		.out_has = {"\"seq\":11",
			"\"seq\":12,\"event\":\"reservationCreated\",\"taskSid\":\"WT2\"}\n"}},
	{{"--socket", SOCKET, "--json", "watch", "--since", "11", "--epoch", "e0", "--count", "1"},
		.status = 0, .out_has = {"\"seq\":11"}},
	{{"--socket", SOCKET, "call", "daemon.status", "{}"}, .status = 0,
		.out = "{\"connected\":true,\"counters\":{\"a\":1}}\n"},
	{{"--socket", SOCKET, "call", "no.such"}, .status = 4},
};

static void test_against_fake(void **state) {
	struct server *s = server_start_n(script_daemon, ARRAY_SIZE(fake_cases), NULL);

	check_all(fake_cases, ARRAY_SIZE(fake_cases), s->path);
	server_stop(s);
}

/* One request of a scripted connection: what it must (not) hold, the answer, notifications. */
struct step {
	int conn; /* the connection, counting from 0 */
	const char *holds[2];
	const char *lacks;
	const char *reply; /* "\"result\":…" or "\"error\":…" */
	const char *notes[2];
	bool hang_up; /* after this step; otherwise a connection waits for the client to */
};

/*
 * watch across a daemon restart: the first connection (epoch e1) delivers seq 11 and 12 and
 * hangs up; the second must resubscribe with since 13 of epoch e1, gets REPLAY_GONE (the
 * restarted daemon's epoch is e2), resubscribes from now and receives seq 51.
 */
static const struct step restart[] = {
	{.conn = 0,
		.holds = {"\"events.subscribe\""},
		.lacks = "since",
		.reply = "\"result\":{\"subscription\":1,\"epoch\":\"e1\",\"seq\":10,\"tasks\":[]}",
		.notes = {"{\"epoch\":\"e1\",\"seq\":11,\"event\":\"updated\",\"taskSid\":\"WT1\"}",
			"{\"epoch\":\"e1\",\"seq\":12,\"event\":\"updated\",\"taskSid\":\"WT1\"}"},
		.hang_up = true},
	{.conn = 1,
		.holds = {"\"since\":13", "\"epoch\":\"e1\""},
		.reply = "\"error\":{\"code\":-32011,\"message\":\"replay gone\","
			 "\"data\":{\"reason\":\"epoch\",\"epoch\":\"e2\",\"oldestSeq\":1,"
			 "\"currentSeq\":50}}"},
	{.conn = 1,
		.holds = {"\"events.subscribe\""},
		.lacks = "since",
		.reply = "\"result\":{\"subscription\":2,\"epoch\":\"e2\",\"seq\":50,"
			 "\"tasks\":[" TASK_JSON "]}",
		.notes = {"{\"epoch\":\"e2\",\"seq\":51,\"event\":\"reservationCreated\","
			  "\"taskSid\":\"WT7\"}"}},
};

#define RESTART_CONNECTIONS 2

static void script_restart(struct server *s, int fd) {
	int *conn = s->user;

	for (size_t i = 0; i < ARRAY_SIZE(restart); i++) {
		const struct step *st = &restart[i];
		char *req;

		if (st->conn != *conn) {
			continue;
		}
		req = srv_read(fd);
		if (!req || !has_all(req, st->holds, 2) || (st->lacks && strstr(req, st->lacks))) {
			fprintf(stderr, "# unexpected request: %s\n", req ? req : "(none)");
			s->failures++;
			free(req);
			break;
		}
		reply(fd, req_id(req), st->reply);
		for (size_t k = 0; k < ARRAY_SIZE(st->notes) && st->notes[k]; k++) {
			notify(fd, st->notes[k]);
		}
		free(req);
		if (st->hang_up) {
			(*conn)++;
			return;
		}
	}
	(*conn)++;
	srv_wait_eof(fd);
}

static const struct ctl_case restart_cases[] = {
	{{"--socket", SOCKET, "--json", "watch", "--count", "3"}, .status = 0,
		.out_has = {"\"seq\":11,", "\"seq\":12,",
			"{\"gap\":{\"reason\":\"epoch\",\"since\":13,\"previousEpoch\":\"e1\","
			"\"epoch\":\"e2\",\"resubscribedFrom\":51,\"data\":{\"reason\":\"epoch\","
			"\"epoch\":\"e2\",\"oldestSeq\":1,\"currentSeq\":50}},\"tasks\":[" TASK_JSON
			"]}\n",
			"\"seq\":51,"},
		.err_has = {"skipped events: the daemon restarted (epoch e1, now e2)",
			"reconnected, resuming after seq 50 of epoch e2"}},
	/* Human mode prints the notice and the re-listed tasks on stdout. */
	{{"--socket", SOCKET, "watch", "--count", "3"}, .status = 0,
		.out = "11 updated task=WT1\n12 updated task=WT1\n"
		       "skipped events: the daemon restarted (epoch e1, now e2); resubscribed from "
		       "seq 51, re-listing\n"
		       "task WT1 status=assigned\n51 reservationCreated task=WT7\n"},
};

static void test_watch_restart(void **state) {
	for (size_t i = 0; i < ARRAY_SIZE(restart_cases); i++) {
		int conn = 0;
		struct server *s = server_start_n(script_restart, RESTART_CONNECTIONS, &conn);

		check(&restart_cases[i], s->path);
		server_stop(s);
		assert_int_equal(conn, RESTART_CONNECTIONS);
	}
}

/* ------------------------------------------------------------------ reservations, worker */

#define WT_SID "WT1"
#define RSV_JSON(sid, status, timeout)                                                             \
	"{\"sid\":\"" sid "\",\"status\":\"" status "\",\"version\":\"2\",\"timeout\":" timeout    \
	",\"taskSid\":\"WT1\",\"workerSid\":\"WK1\",\"dateCreated\":1735819320,\"task\":" TASK_JSON \
	"}"
#define RSV_PENDING RSV_JSON("WR1", "pending", "120")
#define WORKER_JSON                                                                                \
	"{\"sid\":\"WK1\",\"name\":\"alice\",\"activitySid\":\"WA2\",\"activityName\":\"Break\","  \
	"\"available\":false,\"attributes\":{\"skills\":[\"fr\"]},\"version\":\"7\"}"
#define ACTIVITIES_JSON                                                                            \
	"{\"activities\":[{\"sid\":\"WA1\",\"name\":\"Available\",\"available\":true,"              \
	"\"isCurrent\":false},{\"sid\":\"WA2\",\"name\":\"Break\",\"available\":false,"             \
	"\"isCurrent\":true},{\"sid\":\"WA3\",\"name\":\"Offline\",\"available\":false,"            \
	"\"isCurrent\":false}]}"
#define CHANNELS_JSON                                                                              \
	"{\"channels\":[{\"sid\":\"WC1\",\"taskChannelUniqueName\":\"voice\",\"capacity\":1,"       \
	"\"available\":true,\"assignedTasks\":0,\"availableCapacityPercentage\":100},"              \
	"{\"sid\":\"WC2\",\"taskChannelUniqueName\":\"chat\",\"capacity\":3,\"available\":false,"  \
	"\"assignedTasks\":2,\"availableCapacityPercentage\":33}]}"
#define WA_SID "WAe3eebd4b4618a04b18a0ac6acc4e49e4"

/* One request the CLI must send (method and params exactly, NULL: none) and its answer. */
struct exchange {
	const char *method, *params;
	const char *reply; /* "\"result\":…" or "\"error\":…" */
};

/* A run of taskrouterctl and the requests it must send, in order, and no others. */
struct rpc_case {
	struct ctl_case run;
	struct exchange ex[3];
};

static const struct rpc_case rpc_cases[] = {
	/* reservations follows next, and prints a table */
	{{{"--socket", SOCKET, "reservations"}, .status = 0,
		 .out = "SID                                STATUS    TIMEOUT TASK        "
			"                       QUEUE                CHANNEL\n"
			"WR1                                pending       120 WT1         "
			"                       Q1                   voice\n"
			"WR2                                accepted        - WT1         "
			"                       Q1                   voice\n"},
		{{"reservation.list", "{}",
			 "\"result\":{\"reservations\":[" RSV_PENDING "],\"next\":\"WR1\"}"},
			{"reservation.list", "{\"after\":\"WR1\"}",
				"\"result\":{\"reservations\":[" RSV_JSON("WR2", "accepted",
					"null") "],\"next\":null}"}}},
	{{{"--socket", SOCKET, "--json", "reservations", "--status", "accepted"}, .status = 0,
		 .out = "{\"reservations\":[" RSV_PENDING "],\"next\":null}\n"},
		{{"reservation.list", "{\"status\":\"accepted\"}",
			"\"result\":{\"reservations\":[" RSV_PENDING "],\"next\":null}"}}},
	{{{"--socket", SOCKET, "reservation", "WR1"}, .status = 0,
		 .out = "sid: WR1\nstatus: pending\ntaskSid: WT1\nworkerSid: WK1\nversion: 2\n"
			"timeout: 120\ndateCreated: 1735819320\ntask.status: assigned\n"
			"task.queueName: Q1\ntask.taskChannelUniqueName: voice\ntask.priority: 5\n"
			"task.age: 10\ntask.attributes: {\"a\":1}\n"},
		{{"reservation.get", "{\"sid\":\"WR1\"}", "\"result\":" RSV_PENDING}}},
	/* A task sid goes out as it is. */
	{{{"--socket", SOCKET, "--json", "accept", WT_SID}, .status = 0,
		 .out = RSV_JSON("WR1", "accepted", "120") "\n"},
		{{"reservation.accept", "{\"sid\":\"WT1\"}",
			"\"result\":" RSV_JSON("WR1", "accepted", "120")}}},
	{{{"--socket", SOCKET, "accept", "WR9"}, .status = 4,
		 .err_has = {"version conflict (code -32004", "data: {\"currentVersion\":\"3\"}"}},
		{{"reservation.accept", "{\"sid\":\"WR9\"}",
			"\"error\":{\"code\":-32004,\"message\":\"version conflict\","
			"\"data\":{\"currentVersion\":\"3\"}}"}}},
	{{{"--socket", SOCKET, "reject", "WR1"}, .status = 0, .out_has = {"status: rejected\n"}},
		{{"reservation.reject", "{\"sid\":\"WR1\"}",
			"\"result\":" RSV_JSON("WR1", "rejected", "null")}}},
	/* --activity NAME: the sid comes from activity.list */
	{{{"--socket", SOCKET, "reject", "WR1", "--activity", "Offline"}, .status = 0,
		 .out_has = {"sid: WR1\nstatus: rejected\n"}},
		{{"activity.list", "{}", "\"result\":" ACTIVITIES_JSON},
			{"reservation.reject", "{\"sid\":\"WR1\",\"activitySid\":\"WA3\"}",
				"\"result\":" RSV_JSON("WR1", "rejected", "null")}}},
	/* a WA sid needs no look-up */
	{{{"--socket", SOCKET, "reject", "--activity", WA_SID, "WR1"}, .status = 0},
		{{"reservation.reject", "{\"sid\":\"WR1\",\"activitySid\":\"" WA_SID "\"}",
			"\"result\":" RSV_JSON("WR1", "rejected", "null")}}},
	/* an unknown name: the names are listed and nothing is rejected */
	{{{"--socket", SOCKET, "reject", "WR1", "--activity", "break"}, .status = 4,
		 .err_has = {"unknown activity 'break'; the activities are: Available, Break, "
			     "Offline (code -32602",
			 "data: {\"param\":\"activity\",\"reason\":\"unknown activity\","
			 "\"values\":[\"Available\",\"Break\",\"Offline\"]}"}},
		{{"activity.list", "{}", "\"result\":" ACTIVITIES_JSON}}},
	{{{"--socket", SOCKET, "--json", "reject", "WR1", "--activity", "Lunch"}, .status = 4,
		 .out_has = {"{\"error\":{\"code\":-32602,\"message\":\"unknown activity 'Lunch'; ",
			 "\"data\":{\"param\":\"activity\",\"reason\":\"unknown activity\","
			 "\"values\":[\"Available\",\"Break\",\"Offline\"]}"}},
		{{"activity.list", "{}", "\"result\":" ACTIVITIES_JSON}}},
	/* the activity.list failing is reported as it is */
	{{{"--socket", SOCKET, "reject", "WR1", "--activity", "Break"}, .status = 4,
		 .err_has = {"not connected (code -32002"}},
		{{"activity.list", "{}",
			"\"error\":{\"code\":-32002,\"message\":\"not connected\"}"}}},
	{{{"--socket", SOCKET, "worker"}, .status = 0,
		 .out = "sid: WK1\nname: alice\nactivity: Break (WA2)\navailable: no\nversion: 7\n"
			"attributes: {\"skills\":[\"fr\"]}\n"},
		{{"worker.get", "{}", "\"result\":" WORKER_JSON}}},
	{{{"--socket", SOCKET, "--json", "worker"}, .status = 0, .out = WORKER_JSON "\n"},
		{{"worker.get", "{}", "\"result\":" WORKER_JSON}}},
	{{{"--socket", SOCKET, "activities"}, .status = 0,
		 .out = "NAME      SID                                AVAILABLE CURRENT\n"
			"Available WA1                                yes\n"
			"Break     WA2                                no        *\n"
			"Offline   WA3                                no\n"},
		{{"activity.list", "{}", "\"result\":" ACTIVITIES_JSON}}},
	{{{"--socket", SOCKET, "--json", "activities"}, .status = 0, .out = ACTIVITIES_JSON "\n"},
		{{"activity.list", "{}", "\"result\":" ACTIVITIES_JSON}}},
	{{{"--socket", SOCKET, "activity", "Break", "--reject-pending"}, .status = 0,
		 .out_has = {"activity: Break (WA2)\n"}},
		{{"worker.setActivity",
			"{\"activity\":\"Break\",\"rejectPendingReservations\":true}",
			"\"result\":" WORKER_JSON}}},
	{{{"--socket", SOCKET, "activity", "WA2"}, .status = 0},
		{{"worker.setActivity", "{\"activity\":\"WA2\"}", "\"result\":" WORKER_JSON}}},
	{{{"--socket", SOCKET, "activity", "Lunch"}, .status = 4,
		 .err_has = {"unknown activity (code -32602, invalid params)",
			 "data: {\"param\":\"activity\",\"values\":[\"Available\",\"Break\"]}"}},
		{{"worker.setActivity", "{\"activity\":\"Lunch\"}",
			"\"error\":{\"code\":-32602,\"message\":\"unknown activity\",\"data\":"
			"{\"param\":\"activity\",\"values\":[\"Available\",\"Break\"]}}"}}},
	{{{"--socket", SOCKET, "channels"}, .status = 0,
		 .out = "CHANNEL SID                                AVAILABLE CAPACITY ASSIGNED FREE%\n"
			"voice   WC1                                yes              1        0   100\n"
			"chat    WC2                                no               3        2    33\n"},
		{{"channel.list", NULL, "\"result\":" CHANNELS_JSON}}},
	{{{"--socket", SOCKET, "--json", "channels"}, .status = 0, .out = CHANNELS_JSON "\n"},
		{{"channel.list", NULL, "\"result\":" CHANNELS_JSON}}},
	/* Instruction calls: every flag a member, in the order given, with its JSON type; the
	 * call timeout goes before the command name. */
	{{{"--socket", SOCKET, "--timeout", "4", "conference", "WR1", "--to", "+15550100",
		  "--from", "+15550111", "--timeout", "20", "--muted",
		  "--no-start-conference-on-enter", "--beep", "onEnter", "--conference-record",
		  "true", "--max-participants", "5", "--status-callback-event", "start end",
		  "--beep-on-customer-entrance", "--sip-auth-password", "pw"},
		 .status = 0, .out_has = {"sid: WR1\nstatus: pending\n"}},
		{{"reservation.conference",
			"{\"sid\":\"WR1\",\"to\":\"+15550100\",\"from\":\"+15550111\",\"timeout\":20,"
			"\"muted\":true,\"startConferenceOnEnter\":false,\"beep\":\"onEnter\","
			"\"conferenceRecord\":true,\"maxParticipants\":5,"
			"\"statusCallbackEvent\":\"start end\",\"beepOnCustomerEntrance\":true,"
			"\"sipAuthPassword\":\"pw\"}",
			"\"result\":" RSV_PENDING}}},
	{{{"--socket", SOCKET, "--json", "conference", "WT1", "--beep", "false",
		  "--end-conference-on-exit", "--early-media", "--no-transcribe", "--wait-url",
		  "http://w", "--conference-trim", "trim-silence", "--region", "ie1"},
		 .status = 0, .out = RSV_PENDING "\n"},
		{{"reservation.conference",
			"{\"sid\":\"WT1\",\"beep\":false,\"endConferenceOnExit\":true,"
			"\"earlyMedia\":true,\"transcribe\":false,\"waitUrl\":\"http://w\","
			"\"conferenceTrim\":\"trim-silence\",\"region\":\"ie1\"}",
			"\"result\":" RSV_PENDING}}},
	/* the daemon's refusal of a parameter */
	{{{"--socket", SOCKET, "conference", "WR1", "--record", "sometimes"}, .status = 4,
		 .err_has = {"bad record (code -32602", "\"param\":\"record\""}},
		{{"reservation.conference", "{\"sid\":\"WR1\",\"record\":\"sometimes\"}",
			"\"error\":{\"code\":-32602,\"message\":\"bad record\","
			"\"data\":{\"param\":\"record\",\"reason\":\"not a recording mode\"}}"}}},
	{{{"--socket", SOCKET, "dequeue", "WR1", "--post-work-activity-sid", WA_SID,
		  "--status-callback-events", "initiated,completed", "--record",
		  "record-from-answer", "--from", "+15550111"},
		 .status = 0},
		{{"reservation.dequeue",
			"{\"sid\":\"WR1\",\"postWorkActivitySid\":\"" WA_SID "\","
			"\"statusCallbackEvents\":\"initiated,completed\","
			"\"record\":\"record-from-answer\",\"from\":\"+15550111\"}",
			"\"result\":" RSV_JSON("WR1", "accepted", "120")}}},
	{{{"--socket", SOCKET, "call", "WR1", "--url", "http://twiml", "--from", "+15550111",
		  "--accept", "--timeout", "30", "--status-callback-url", "http://cb", "--to",
		  "+15550100"},
		 .status = 0, .out_has = {"status: accepted\n"}},
		{{"reservation.call",
			"{\"sid\":\"WR1\",\"url\":\"http://twiml\",\"from\":\"+15550111\","
			"\"accept\":true,\"timeout\":30,\"statusCallbackUrl\":\"http://cb\","
			"\"to\":\"+15550100\"}",
			"\"result\":" RSV_JSON("WR1", "accepted", "120")}}},
	/* call SID comes after its options too */
	{{{"--socket", SOCKET, "call", "--from", "+15550111", "--url", "http://twiml", "WR1"},
		 .status = 0},
		{{"reservation.call",
			"{\"sid\":\"WR1\",\"from\":\"+15550111\",\"url\":\"http://twiml\"}",
			"\"result\":" RSV_PENDING}}},
	/* call METHOD is still the generic call */
	{{{"--socket", SOCKET, "call", "--timeout", "2.5", "worker.get", "{}"}, .status = 0,
		 .out = WORKER_JSON "\n"},
		{{"worker.get", "{}", "\"result\":" WORKER_JSON}}},
	{{{"--socket", SOCKET, "redirect", "WR1", "--call-sid", "CA1", "--url", "http://r",
		  "--no-accept"},
		 .status = 0},
		{{"reservation.redirect",
			"{\"sid\":\"WR1\",\"callSid\":\"CA1\",\"url\":\"http://r\",\"accept\":false}",
			"\"result\":" RSV_PENDING}}},
};

/* The requests of rpc_cases[*user], then nothing more until the CLI hangs up. */
static void script_rpc(struct server *s, int fd) {
	size_t *i = s->user;
	const struct rpc_case *c = &rpc_cases[(*i)++];
	char *req;

	for (size_t k = 0; k < ARRAY_SIZE(c->ex) && c->ex[k].method; k++) {
		const struct exchange *ex = &c->ex[k];

		req = srv_read(fd);
		if (!req_is(req, ex->method, ex->params)) {
			fprintf(stderr, "# %s: expected %s %s, got %s\n", c->run.argv[2], ex->method,
				ex->params ? ex->params : "(no params)", req ? req : "(none)");
			s->failures++;
		}
		reply(fd, req_id(req), ex->reply);
		free(req);
	}
	req = srv_read(fd);
	if (req) {
		fprintf(stderr, "# %s: unexpected request %s\n", c->run.argv[2], req);
		s->failures++;
	}
	free(req);
}

static void test_reservation_commands(void **state) {
	size_t i = 0;
	struct server *s = server_start_n(script_rpc, ARRAY_SIZE(rpc_cases), &i);

	for (size_t k = 0; k < ARRAY_SIZE(rpc_cases); k++) {
		check(&rpc_cases[k].run, s->path);
	}
	server_stop(s);
	assert_int_equal(i, ARRAY_SIZE(rpc_cases));
}

/* The tray example exits cleanly on SIGTERM, once it is up and subscribed. */
static void test_tray_signal(void **state) {
	struct server *s = server_start_n(script_daemon, 1, NULL);
	const char *argv[] = {getenv("TR_TRAY"), "--socket", s->path, NULL};
	char buf[8192];
	size_t n = 0;
	int64_t deadline = now_ms() + 10000;
	struct child ch;
	struct run r;

	assert_non_null(argv[0]);
	spawn(&ch, argv);
	close(ch.in);
	buf[0] = '\0';
	/* Wait (on the pipe, with a deadline) until the second event has been printed. */
	while (!strstr(buf, "event seq=12") && now_ms() < deadline) {
		struct pollfd p = {.fd = ch.out, .events = POLLIN};
		ssize_t k;

		if (poll(&p, 1, 500) <= 0) {
			continue;
		}
		k = read(ch.out, buf + n, sizeof(buf) - 1 - n);
		if (k <= 0) {
			break;
		}
		n += (size_t)k;
		buf[n] = '\0';
	}
	assert_non_null(strstr(buf, "event seq=12"));
	assert_int_equal(kill(ch.pid, SIGTERM), 0);
	collect(ch.pid, ch.out, ch.err, &r);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "signal, exiting"));
	server_stop(s);
}

/* The tray example: lists, subscribes, sees two events and exits 0 (--max-events), or
 * exits on the task it waits for. */
static const struct ctl_case tray_cases[] = {
	{{"--socket", SOCKET, "--max-events", "2"}, .tray = true, .status = 0,
		.out_has = {"task WT1 status=assigned queue=Q1\ntasks: 1\n", "subscribed\n",
			"event seq=12 reservationCreated task=WT2"}},
	{{"--socket", SOCKET, "--exit-on-task", "WT2"}, .tray = true, .status = 0,
		.out_has = {"event seq=12 reservationCreated task=WT2", "saw task WT2, exiting"}},
	/* Already listed at start: exits without waiting for an event. */
	{{"--socket", SOCKET, "--exit-on-task", "WT1"}, .tray = true, .status = 0,
		.out_has = {"saw task WT1, exiting"}, .hidden = "event seq="},
};

static void test_tray(void **state) {
	struct server *s = server_start_n(script_daemon, ARRAY_SIZE(tray_cases), NULL);

	check_all(tray_cases, ARRAY_SIZE(tray_cases), s->path);
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
		cmocka_unit_test(test_reservation_commands),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
