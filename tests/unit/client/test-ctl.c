/*
 * test-ctl.c — taskrouterctl against the fake server: usage errors (exit 2, also for the
 * daemon's -32602), connection failure (3), RPC errors (4), timeouts (5), human and --json
 * output (dates and ages for people, the status summary, colours and layout on a terminal,
 * NO_COLOR, --json errors on stderr), help, update-token from stdin, watch --count, the
 * reservation, worker and instruction commands (each request's method and params checked
 * exactly) and completion candidates. Each run is a row of a case table:
 * the arguments, environment, stdin, whether stdout is a terminal, the exit status and what
 * stdout and stderr must (not) hold. The binary comes from $TR_CTL.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakesrv.h"

struct run {
	int status; /* exit code, or -1 */
	char out[16384];
	char err[16384];
};

/* Read both pipes until EOF (bounded), then reap. A terminal's end reads as an error (EIO)
 * once the child and its copies of it are gone, which is its EOF. */
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

/* A terminal for a child's stdout: our end in *ret_master, its end in *ret_slave; raw, so
 * that what the child writes arrives as it is (no \r added). */
static void open_terminal(int *ret_master, int *ret_slave) {
	struct termios tio;
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), sl;

	assert_true(m >= 0);
	assert_int_equal(grantpt(m), 0);
	assert_int_equal(unlockpt(m), 0);
	sl = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(sl >= 0);
	assert_int_equal(tcgetattr(sl, &tio), 0);
	cfmakeraw(&tio);
	assert_int_equal(tcsetattr(sl, TCSANOW, &tio), 0);
	*ret_master = m;
	*ret_slave = sl;
}

/*
 * Start argv[0] with pipes for stdin, stdout and stderr (stdout a terminal when tty), and
 * with no daemon socket in its environment: only --socket, or a default path that does not
 * exist, reaches a server. Its dates are in UTC, colours are not turned off, and env
 * (NAME=VALUE strings, NULL-terminated, may be NULL) is added.
 */
static void spawn_in(struct child *ch, const char *const *argv, const char *const *env, bool tty) {
	int in[2], out[2], err[2];

	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	if (tty) {
		open_terminal(&out[0], &out[1]);
	} else {
		assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	}
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	ch->pid = fork();
	assert_true(ch->pid >= 0);
	if (ch->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		unsetenv("TASKROUTERD_SOCKET");
		unsetenv("NO_COLOR");
		setenv("XDG_RUNTIME_DIR", "/nonexistent-runtime-dir", 1);
		setenv("TZ", "UTC", 1);
		setenv("TERM", "xterm", 1);
		for (size_t i = 0; env && env[i]; i++) {
			putenv((char *)env[i]);
		}
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

/* One run of taskrouterctl and what it must print. */
struct ctl_case {
	const char *argv[28];
	const char *input; /* on stdin; NULL: nothing */
	int status;
	const char *out;        /* all of stdout, or NULL */
	const char *out_has[6]; /* pieces of stdout */
	const char *err_has[2]; /* pieces of stderr */
	const char *hidden[2];  /* on neither stdout nor stderr */
	const char *out_re;     /* an extended regular expression stdout must match */
	int max_lines;          /* at most this many lines on stdout; 0: any number */
	const char *env[3];     /* NAME=VALUE added to the environment */
	bool tty;               /* stdout is a terminal */
};

static bool has_all(const char *text, const char *const *pieces, size_t n) {
	for (size_t i = 0; i < n && pieces[i]; i++) {
		if (!strstr(text, pieces[i])) {
			return false;
		}
	}
	return true;
}

static bool has_none(const char *text, const char *const *pieces, size_t n) {
	for (size_t i = 0; i < n && pieces[i]; i++) {
		if (strstr(text, pieces[i])) {
			return false;
		}
	}
	return true;
}

static bool matches(const char *text, const char *re) {
	regex_t r;
	bool ok;

	assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	ok = regexec(&r, text, 0, NULL, 0) == 0;
	regfree(&r);
	return ok;
}

static int count_lines(const char *text) {
	int n = 0;

	for (; *text; text++) {
		n += *text == '\n';
	}
	return n;
}

/* Run c (socket replaces SOCKET in its argv) and check its exit status and output. */
static void check(const struct ctl_case *c, const char *socket) {
	const char *prog = getenv("TR_CTL");
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
	spawn_in(&ch, argv, c->env, c->tty);
	if (c->input) {
		/* A pipe: write(2), not the socket helper's send(2). */
		assert_int_equal(
			write(ch.in, c->input, strlen(c->input)), (ssize_t)strlen(c->input));
	}
	close(ch.in);
	collect(ch.pid, ch.out, ch.err, &r);

	ok = r.status == c->status && (!c->out || strcmp(r.out, c->out) == 0) &&
	     has_all(r.out, c->out_has, 6) && has_all(r.err, c->err_has, 2) &&
	     has_none(r.out, c->hidden, 2) && has_none(r.err, c->hidden, 2) &&
	     (!c->out_re || matches(r.out, c->out_re)) &&
	     (!c->max_lines || count_lines(r.out) <= c->max_lines);
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
	/* A missing value is named as such, also when the next word is an option. */
	{{"--socket"}, .status = 2, .err_has = {"--socket needs a value"}},
	{{"--socket", "--json", "list"}, .status = 2, .err_has = {"--socket needs a value"}},
	{{"list", "--socket"}, .status = 2, .err_has = {"list: --socket needs a value"}},
	{{"list", "--status"}, .status = 2, .err_has = {"--status needs a value"}},
	{{"--timeout"}, .status = 2, .err_has = {"--timeout needs a value"}},
	{{"wrapup", "WT1", "--reason", "--json"}, .status = 2, .err_has = {"--reason needs a value"}},
	{{"--socket=", "list"}, .status = 2, .err_has = {"empty --socket"}},
	{{"list", "-x"}, .status = 2, .err_has = {"unknown option '-x'"}},
	{{"--color", "sometimes", "list"}, .status = 2, .err_has = {"--color takes"}},
	{{"status", "--verbose=1"}, .status = 2, .err_has = {"--verbose takes no value"}},
	/* help, and help COMMAND as COMMAND --help */
	{{"help"}, .status = 0,
		.out_has = {"Usage: taskrouterctl", "Commands:\n", "\n  help [COMMAND]\n",
			"\n  status [--verbose]\n", "--color WHEN", "Exit status"}},
	{{"help", "get"}, .status = 0, .out_has = {"Usage: taskrouterctl ", " get SID\n"}},
	{{"help", "call"}, .status = 0,
		.out_has = {"call SID --from FROM --url URL", "call METHOD [PARAMS-JSON]"}},
	{{"help", "frobnicate"}, .status = 2, .err_has = {"unknown command 'frobnicate'"}},
	{{"help", "get", "extra"}, .status = 2},
	/* completion candidates that need no daemon */
	{{"__complete", "ge"}, .status = 0, .out = "get\tShow one task (task.get)\n"},
	{{"__complete", "--color", "a"}, .status = 0, .out = "auto\nalways\n"},
	{{"__complete", "list", "--color=n"}, .status = 0, .out = "--color=never\n"},
	{{"__complete", "--socket", ""}, .status = 0, .out = ":files\n"},
	{{"__complete", "hold", "WT1", "WK1", "o"}, .status = 0, .out = "on\noff\n"},
	{{"__complete", "status", "--v"}, .status = 0, .out = "--verbose\n"},
	{{"__complete", "help", "wa"}, .status = 0, .out_has = {"watch\t"}},
	{{"__complete", "conference", "WR1", "--no-mu"}, .status = 0, .out = "--no-muted\tmuted\n"},
	/* no daemon: no sids, and no error */
	{{"__complete", "get", ""}, .status = 0, .out = ""},
};

static void test_usage(void **state) {
	check_all(usage_cases, ARRAY_SIZE(usage_cases), NULL);
}

static const struct ctl_case connect_cases[] = {
	{{"--socket", "/nonexistent-dir/socket", "list"}, .status = 3,
		.err_has = {"cannot connect"}},
	/* The default path (spawn() sets $XDG_RUNTIME_DIR to a missing directory). */
	{{"status"}, .status = 3, .err_has = {"/nonexistent-runtime-dir/taskrouterd/socket"}},
	/* --json: the error as JSON on stderr, nothing on stdout */
	{{"--json", "--socket", "/nonexistent-dir/socket", "watch"}, .status = 3, .out = "",
		.err_has = {"{\"error\":{\"code\":0,\"message\":\"No such file or directory\","
			    "\"errno\":2}}\n"}},
	{{"--json", "--socket", "/nonexistent-dir/socket", "list"}, .status = 3, .out = "",
		.err_has = {"{\"error\":{\"code\":0,"}, .hidden = {"cannot connect"}},
};

static void test_connect_failure(void **state) {
	check_all(connect_cases, ARRAY_SIZE(connect_cases), NULL);
}

#define TASK_JSON                                                                                  \
	"{\"sid\":\"WT1\",\"status\":\"assigned\",\"priority\":5,\"age\":10,\"queueName\":\"Q1\"," \
	"\"taskChannelUniqueName\":\"voice\",\"attributes\":{\"a\":1}}"

/* A task with times (2025-01-02 12:02:00 UTC and a minute later), a reservation and a
 * transfer: none of its epoch seconds may reach human output. */
#define DATED "1735819320"
#define TASK_DATED_JSON                                                                            \
	"{\"sid\":\"WTdated\",\"status\":\"wrapping\",\"priority\":0,\"age\":10,\"timeout\":86400,"      \
	"\"queueName\":\"Q1\",\"taskChannelUniqueName\":\"voice\",\"dateCreated\":" DATED ","          \
	"\"dateUpdated\":1735819380,\"virtualStartTime\":" DATED ",\"reservations\":[{\"sid\":"     \
	"\"WR1\",\"status\":\"accepted\"}],\"transfers\":{\"incoming\":null,\"outgoing\":{\"sid\":"   \
	"\"TT1\",\"mode\":\"WARM\",\"to\":\"WK2\",\"status\":\"initiated\",\"dateCreated\":"          \
	"1735819350,\"dateUpdated\":1735819350}}}"
/* A task created 3750 s before the answer: 1h2m old whether the CLI asked up to 30 s
 * before or reads it up to 29 s after. */
#define TASK_FRESH_FMT                                                                             \
	"{\"sid\":\"WTfresh\",\"status\":\"wrapping\",\"priority\":0,\"age\":5,\"queueName\":\"Q1\","  \
	"\"taskChannelUniqueName\":\"voice\",\"dateCreated\":%lld}"
#define FRESH_AGE 3750

/* The daemon's status: the token expired at DATED; some counters worth a look. */
#define STATUS_JSON                                                                                \
	"{\"version\":\"0.1.0\",\"state\":\"ready\",\"upstream\":{\"state\":\"ready\",\"workerSid\":"  \
	"\"WK1\",\"activityName\":\"Available\",\"reconnects\":2,\"reconnectAttempt\":0,"          \
	"\"reconnectDelayMs\":0,\"sessionDisplaced\":false,\"lastError\":null,\"tokenExpiresAt\":"   \
	DATED ",\"tokenExpired\":true,\"resyncs\":1,\"resyncErrors\":0,\"websocket\":{\"frames\":"  \
	"120,\"malformed\":0,\"bufferOverflows\":0},\"rest\":{\"inFlight\":0,\"requests\":7,"       \
	"\"failures\":2}},\"tasks\":2,\"closedTasks\":1,\"subscriptions\":1,\"epoch\":\"e7\","        \
	"\"seq\":42,\"connections\":3,\"limits\":{\"maxConnections\":1024,\"inflight\":16},"         \
	"\"counters\":{\"eventsPublished\":42,\"stalePayloads\":0,\"frameErrors\":3,"                  \
	"\"parseErrors\":0}}"

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

	if (strstr(req, "\"task.list\"") && strstr(req, "\"status\":\"wrapping\"")) {
		srv_sendf(fd,
			"{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"tasks\":[" TASK_DATED_JSON
			"," TASK_FRESH_FMT "]}}",
			id, (long long)time(NULL) - FRESH_AGE);
	} else if (strstr(req, "\"task.list\"")) {
		reply(fd, id, "\"result\":{\"tasks\":[" TASK_JSON "]}");
	} else if (strstr(req, "\"task.get\"") && strstr(req, "WTdated")) {
		reply(fd, id, "\"result\":" TASK_DATED_JSON);
	} else if (strstr(req, "\"task.get\"") && strstr(req, "WTfresh")) {
		srv_sendf(fd, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":" TASK_FRESH_FMT "}", id,
			(long long)time(NULL) - FRESH_AGE);
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
		reply(fd, id, "\"result\":" STATUS_JSON);
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

/* One connection per CLI run. */
static void script_daemon(struct server *s, int fd) {
	char *req;

	while ((req = srv_read(fd)) && answer(s, fd, req)) {
	}
}

static const struct ctl_case fake_cases[] = {
	/* AGE with units: from dateCreated, else the task's age */
	{{"--socket", SOCKET, "list"}, .status = 0, .out_has = {"SID", "WT1", "assigned", "voice"},
		.out_re = "^SID +STATUS +PRIORITY +AGE +QUEUE +CHANNEL\nWT1 +assigned +5 +10s +Q1 "
			  "+voice\n$"},
	{{"--socket", SOCKET, "list", "--status", "wrapping"}, .status = 0, .hidden = {DATED},
		.out_re = "\nWTdated +wrapping +0 +[0-9]+d([0-9]+h)? +Q1 +voice\n"
			  "WTfresh +wrapping +0 +1h2m +Q1 +voice\n$"},
	{{"--socket", SOCKET, "--json", "list"}, .status = 0,
		.out = "{\"tasks\":[" TASK_JSON "],\"next\":null}\n"},
	{{"--socket", SOCKET, "get", "WT1"}, .status = 0,
		.out_has = {"sid: WT1\nstatus: assigned\n", "priority: 5\n", "age: 10s\n",
			"attributes: {\"a\":1}\n"}},
	/* dates as local time (TZ=UTC here) with their age, never epoch seconds */
	{{"--socket", SOCKET, "get", "WTdated"}, .status = 0, .hidden = {DATED, "1735819380"},
		.out_has = {"\ndateCreated: 2025-01-02 12:02:00 UTC (", " days ago)\n",
			"\ndateUpdated: 2025-01-02 12:03:00 UTC (", "\ntimeout: 1d\n",
			"\nreservations: WR1 accepted\n",
			"\ntransfers: outgoing TT1 (WARM to WK2) initiated, "},
		.out_re = "\nage: [0-9]+d([0-9]+h)?\n"},
	{{"--socket", SOCKET, "get", "WTfresh"}, .status = 0,
		.out_has = {"\nage: 1h2m\n", " UTC (1 h 2 min ago)\n"}},
	/* Options after the subcommand work too. */
	{{"get", "--json", "--socket", SOCKET, "WT1"}, .status = 0, .out = TASK_JSON "\n"},
	/* --json: the error as JSON on stderr, nothing on stdout */
	{{"--socket", SOCKET, "--json", "get", "WTnotfound"}, .status = 4, .out = "",
		.err_has = {"{\"error\":{\"code\":-32001,\"message\":\"no such task\","
			    "\"data\":{\"sid\":\"WTnotfound\"},\"errno\":121}}\n"},
		.hidden = {"taskrouterctl:"}},
	{{"--socket", SOCKET, "get", "WTnotfound"}, .status = 4, .out = "",
		.err_has = {"taskrouterctl: task.get: no such task (code -32001"}},
	{{"--socket", SOCKET, "--timeout", "0.3", "get", "WTslow"}, .status = 5},
	{{"--socket", SOCKET, "complete", "WT1", "done"}, .status = 5},
	/* status: a short summary; the counters behind --verbose */
	{{"--socket", SOCKET, "status"}, .status = 0, .max_lines = 15,
		.out_has = {"Daemon: taskrouterd 0.1.0, epoch e7, seq 42\n",
			"\nSession: ready, 2 reconnects\n", "\nWorker: WK1, activity Available\n",
			"\nToken: expired 2025-01-02 12:02:00 UTC (",
			"\nTasks: 2 live, 1 recently closed\n",
			"\nClients: 3 connections, 1 subscription (at most 1024 connections)\n"},
		.out_re = "\nWarnings: frameErrors 3, rest.failures 2 \\(see status --verbose\\)\n$",
		.hidden = {DATED, "counters."}},
	{{"--socket", SOCKET, "status", "--verbose"}, .status = 0, .hidden = {DATED},
		.out_has = {"\nSession: ready, 2 reconnects\n", "\ncounters.frameErrors: 3\n",
			"\nlimits.maxConnections: 1024\n",
			"\nupstream.tokenExpiresAt: 2025-01-02 12:02:00 UTC ("}},
	{{"--socket", SOCKET, "update-token"}, .input = "tok.123\n", .status = 0, .out = "ok\n",
		.hidden = {"tok.123"}},
	{{"--socket", SOCKET, "describe"}, .status = 0,
		.out = "methods:\n  task.list\nevents:\n  reservationCreated\n"},
	{{"--socket", SOCKET, "--json", "watch", "--event", "reservationCreated", "--count", "2"},
		.status = 0,
		.out_has = {"\"seq\":11",
			"\"seq\":12,\"event\":\"reservationCreated\",\"taskSid\":\"WT2\"}\n"}},
	{{"--socket", SOCKET, "--json", "watch", "--since", "11", "--epoch", "e0", "--count", "1"},
		.status = 0, .out_has = {"\"seq\":11"}},
	{{"--socket", SOCKET, "call", "daemon.status", "{}"}, .status = 0, .out = STATUS_JSON "\n"},
	/* an unknown method is the daemon's error, not a usage error */
	{{"--socket", SOCKET, "call", "no.such"}, .status = 4},
	/* On a terminal: colours, aligned values, indented JSON; NO_COLOR, TERM=dumb and
	 * --color=never turn the colours off, --color=always turns them on anywhere. */
	{{"--socket", SOCKET, "status"}, .tty = true, .status = 0, .max_lines = 15,
		.out_has = {"\nSession:   \033[32mready\033[0m, 2 reconnects\n",
			"\nWorker:    WK1, activity Available\n"}},
	{{"--socket", SOCKET, "status"}, .tty = true, .env = {"NO_COLOR=1"}, .status = 0,
		.out_has = {"\nSession:   ready, 2 reconnects\n"}, .hidden = {"\033"}},
	{{"--socket", SOCKET, "--color=never", "status"}, .tty = true, .status = 0,
		.hidden = {"\033"}},
	{{"--socket", SOCKET, "status"}, .tty = true, .env = {"TERM=dumb"}, .status = 0,
		.hidden = {"\033"}},
	{{"--socket", SOCKET, "status", "--color", "always"}, .status = 0,
		.out_has = {"\nSession: \033[32mready\033[0m, 2 reconnects\n"}},
	{{"--socket", SOCKET, "get", "WT1"}, .tty = true, .env = {"NO_COLOR=1"}, .status = 0,
		.out_has = {"sid:                    WT1\n", "\nage:                    10s\n"}},
	{{"--socket", SOCKET, "list"}, .tty = true, .status = 0,
		.out_has = {"\033[1mSID\033[0m", "\033[32massigned\033[0m"}},
	{{"--socket", SOCKET, "--json", "get", "WT1"}, .tty = true, .env = {"NO_COLOR=1"},
		.status = 0,
		.out = "{\n  \"sid\": \"WT1\",\n  \"status\": \"assigned\",\n  \"priority\": 5,\n"
		       "  \"age\": 10,\n  \"queueName\": \"Q1\",\n  \"taskChannelUniqueName\": "
		       "\"voice\",\n  \"attributes\": {\n    \"a\": 1\n  }\n}\n"},
	{{"--socket", SOCKET, "--json", "get", "WT1"}, .tty = true, .status = 0,
		.out_has = {"  \033[34m\"sid\"\033[0m: \033[32m\"WT1\"\033[0m,\n",
			"  \033[34m\"priority\"\033[0m: 5,\n"}},
	/* completion asks the daemon for the sids */
	{{"__complete", "--socket", SOCKET, "get", ""}, .status = 0, .out = "WT1\tassigned, Q1\n"},
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
	/* reservations follows next, and prints a table: AGE and TIMEOUT with units */
	{{{"--socket", SOCKET, "reservations"}, .status = 0, .hidden = {DATED},
		 .out_re = "^SID +STATUS +AGE +TIMEOUT +TASK +QUEUE +CHANNEL\n"
			   "WR1 +pending +[0-9]+d([0-9]+h)? +2m +WT1 +Q1 +voice\n"
			   "WR2 +accepted +[0-9]+d([0-9]+h)? +- +WT1 +Q1 +voice\n$"},
		{{"reservation.list", "{}",
			 "\"result\":{\"reservations\":[" RSV_PENDING "],\"next\":\"WR1\"}"},
			{"reservation.list", "{\"after\":\"WR1\"}",
				"\"result\":{\"reservations\":[" RSV_JSON("WR2", "accepted",
					"null") "],\"next\":null}"}}},
	{{{"--socket", SOCKET, "--json", "reservations", "--status", "accepted"}, .status = 0,
		 .out = "{\"reservations\":[" RSV_PENDING "],\"next\":null}\n"},
		{{"reservation.list", "{\"status\":\"accepted\"}",
			"\"result\":{\"reservations\":[" RSV_PENDING "],\"next\":null}"}}},
	{{{"--socket", SOCKET, "reservation", "WR1"}, .status = 0, .hidden = {DATED},
		 .out_has = {"sid: WR1\nstatus: pending\ntaskSid: WT1\nworkerSid: WK1\nversion: 2\n"
			     "timeout: 2m\ndateCreated: 2025-01-02 12:02:00 UTC (",
			 " days ago)\ntask.status: assigned\ntask.queueName: Q1\n"
			 "task.taskChannelUniqueName: voice\ntask.priority: 5\ntask.age: 10s\n"
			 "task.attributes: {\"a\":1}\n"}},
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
	/* an unknown name: the names are listed and nothing is rejected; invalid params,
	 * like the daemon's, are a usage error */
	{{{"--socket", SOCKET, "reject", "WR1", "--activity", "break"}, .status = 2,
		 .err_has = {"unknown activity 'break'; the activities are: Available, Break, "
			     "Offline (code -32602",
			 "data: {\"param\":\"activity\",\"reason\":\"unknown activity\","
			 "\"values\":[\"Available\",\"Break\",\"Offline\"]}"}},
		{{"activity.list", "{}", "\"result\":" ACTIVITIES_JSON}}},
	{{{"--socket", SOCKET, "--json", "reject", "WR1", "--activity", "Lunch"}, .status = 2,
		 .out = "",
		 .err_has = {"{\"error\":{\"code\":-32602,\"message\":\"unknown activity 'Lunch'; ",
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
		 .out = "NAME       SID  AVAILABLE  CURRENT\n"
			"Available  WA1  yes\n"
			"Break      WA2  no         *\n"
			"Offline    WA3  no\n"},
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
	/* the daemon's invalid params: exit 2, as for the CLI's own checks */
	{{{"--socket", SOCKET, "activity", "Lunch"}, .status = 2,
		 .err_has = {"unknown activity (code -32602, invalid params)",
			 "data: {\"param\":\"activity\",\"values\":[\"Available\",\"Break\"]}"}},
		{{"worker.setActivity", "{\"activity\":\"Lunch\"}",
			"\"error\":{\"code\":-32602,\"message\":\"unknown activity\",\"data\":"
			"{\"param\":\"activity\",\"values\":[\"Available\",\"Break\"]}}"}}},
	{{{"--socket", SOCKET, "--json", "activity", "Lunch"}, .status = 2, .out = "",
		 .err_has = {"{\"error\":{\"code\":-32602,\"message\":\"unknown activity\",\"data\":"
			     "{\"param\":\"activity\",\"values\":[\"Available\",\"Break\"]},"
			     "\"errno\":121}}\n"}},
		{{"worker.setActivity", "{\"activity\":\"Lunch\"}",
			"\"error\":{\"code\":-32602,\"message\":\"unknown activity\",\"data\":"
			"{\"param\":\"activity\",\"values\":[\"Available\",\"Break\"]}}"}}},
	{{{"--socket", SOCKET, "channels"}, .status = 0,
		 .out = "CHANNEL  SID  AVAILABLE  CAPACITY  ASSIGNED  FREE%\n"
			"voice    WC1  yes               1         0    100\n"
			"chat     WC2  no                3         2     33\n"},
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
	/* the daemon's refusal of a parameter: a usage error */
	{{{"--socket", SOCKET, "conference", "WR1", "--record", "sometimes"}, .status = 2,
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

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch_restart),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_connect_failure),
		cmocka_unit_test(test_against_fake),
		cmocka_unit_test(test_reservation_commands),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
