/*
 * taskrouterctl — command line client of taskrouterd, a thin shell over libtaskrouter.
 *
 * Human output by default (a table for list, "key: value" lines for a task, one line per
 * event); --json prints one compact JSON document per result and one JSON line per event.
 * Exit status: 0 ok, 1 other failure, 2 usage, 3 connection failure, 4 RPC/upstream error,
 * 5 timeout (see taskrouterctl(1)).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <taskrouter/client.h>

#include "tr-build.h"
#include "json.h"

enum {
	EXIT_OK = 0,
	EXIT_OTHER = 1,
	EXIT_USAGE = 2,
	EXIT_CONNECT = 3,
	EXIT_RPC = 4,
	EXIT_TIMEOUT = 5,
};

#define DEFAULT_TIMEOUT_MS 30000
#define WATCH_BACKOFF_MIN_MS 200
#define WATCH_BACKOFF_MAX_MS 10000
#define WATCH_GIVE_UP_MS (5 * 60 * 1000)
#define TOKEN_MAX 65536
#define MAX_FILTERS 64

struct ctx {
	const char *socket;
	int timeout_ms;
	bool json;
	struct tr_client *c;
};

struct cmd {
	const char *name;
	int (*run)(struct ctx *x, int argc, char **argv);
	const char *args;
	const char *help;
};

static const struct cmd *find_cmd(const char *name);

/* ------------------------------------------------------------------ output helpers */

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...) {
	va_list ap;

	fprintf(stderr, "taskrouterctl: %s%s", cmd ? cmd : "", cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'taskrouterctl %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
	return EXIT_USAGE;
}

static int exit_for(int r, const struct tr_client_error *e) {
	switch (r) {
	case 0:
		return EXIT_OK;
	case -ETIMEDOUT:
		return EXIT_TIMEOUT;
	case -EREMOTEIO:
		return e && e->code == TR_CLIENT_TIMEOUT ? EXIT_TIMEOUT : EXIT_RPC;
	case -ENOMEM:
	case -EINVAL:
		return EXIT_OTHER;
	default:
		return EXIT_CONNECT;
	}
}

static void print_json_string(FILE *f, const char *s) {
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (tr_json_quote_append(s, strlen(s), &buf, &len, &cap) == 0) {
		fwrite(buf, 1, len, f);
	}
	free(buf);
}

/* Report a failure; returns the exit status. */
static int report(struct ctx *x, const char *what, int r, const struct tr_client_error *e) {
	const char *msg = e && e->message ? e->message : strerror(-r);

	if (r == -EREMOTEIO && e) {
		fprintf(stderr, "taskrouterctl: %s: %s (code %d, %s)\n", what, msg, e->code,
			tr_client_code_str(e->code));
		if (e->data) {
			fprintf(stderr, "  data: %s\n", e->data);
		}
	} else {
		fprintf(stderr, "taskrouterctl: %s: %s\n", what, msg);
	}
	if (x->json) {
		printf("{\"error\":{\"code\":%d,\"message\":", r == -EREMOTEIO && e ? e->code : 0);
		print_json_string(stdout, msg);
		if (r == -EREMOTEIO && e && e->data) {
			printf(",\"data\":%s", e->data);
		}
		printf(",\"errno\":%d}}\n", -r);
		fflush(stdout);
	}
	return exit_for(r, e);
}

static int connect_ctx(struct ctx *x) {
	char *path = x->socket ? strdup(x->socket) : tr_client_default_socket_path();
	int r;

	if (!path) {
		fprintf(stderr, "taskrouterctl: out of memory\n");
		return EXIT_OTHER;
	}
	r = tr_client_connect(path, x->timeout_ms, &x->c);
	if (r < 0) {
		struct tr_client_error e = {.errnum = r, .message = strerror(-r)};
		char what[4200];

		snprintf(what, sizeof(what), "cannot connect to %s", path);
		free(path);
		r = report(x, what, r, &e);
		return r == EXIT_TIMEOUT ? EXIT_TIMEOUT : EXIT_CONNECT;
	}
	free(path);
	return EXIT_OK;
}

/* Print a scalar JSON value for humans (strings unquoted). */
static void print_scalar(const struct tr_json *v) {
	char *s = NULL;

	if (tr_json_is(v, TR_JSON_STRING)) {
		fputs(v->u.str.s, stdout);
		return;
	}
	if (tr_json_dump(v, &s, NULL) == 0) {
		fputs(s, stdout);
	}
	free(s);
}

/* "a.b.c: value" lines for every scalar (arrays of scalars and empty containers as JSON). */
static void print_flat(const char *prefix, const struct tr_json *v) {
	char key[512];

	if (tr_json_is(v, TR_JSON_OBJECT) && v->u.obj.n > 0) {
		for (size_t i = 0; i < v->u.obj.n; i++) {
			snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "",
				v->u.obj.keys[i]);
			print_flat(key, v->u.obj.vals[i]);
		}
		return;
	}
	printf("%s: ", prefix);
	print_scalar(v);
	putchar('\n');
}

static const char *const task_fields[] = {
	"sid",
	"status",
	"wireStatus",
	"queueName",
	"queueSid",
	"workflowName",
	"workflowSid",
	"taskChannelUniqueName",
	"taskChannelSid",
	"priority",
	"age",
	"timeout",
	"reason",
	"routingTarget",
	"reservationSid",
	"version",
	"dateCreated",
	"dateUpdated",
	"virtualStartTime",
	"attributes",
	"addOns",
	"transfers",
	NULL,
};

static void print_task_human(const struct tr_task *t) {
	for (const char *const *f = task_fields; *f; f++) {
		const char *s = tr_task_get_string(t, *f);
		int64_t n;

		if (s) {
			printf("%s: %s\n", *f, s);
		} else if (tr_task_get_int(t, *f, &n) == 0) {
			printf("%s: %" PRId64 "\n", *f, n);
		} else {
			char *j = tr_task_get_json(t, *f);

			if (j && strcmp(j, "null") != 0) {
				printf("%s: %s\n", *f, j);
			}
			free(j);
		}
	}
}

static int print_task(struct ctx *x, const struct tr_task *t) {
	if (x->json) {
		char *s = tr_task_to_json(t);

		if (!s) {
			fprintf(stderr, "taskrouterctl: out of memory\n");
			return EXIT_OTHER;
		}
		printf("%s\n", s);
		free(s);
	} else {
		print_task_human(t);
	}
	return EXIT_OK;
}

static const char *dash(const char *s) {
	return s && *s ? s : "-";
}

static void print_task_row(const struct tr_task *t) {
	char prio[24] = "-", age[24] = "-";
	int64_t n;

	if (tr_task_get_int(t, "priority", &n) == 0) {
		snprintf(prio, sizeof(prio), "%" PRId64, n);
	}
	if (tr_task_get_int(t, "age", &n) == 0) {
		snprintf(age, sizeof(age), "%" PRId64, n);
	}
	printf("%-34s %-13s %8s %7s %-20s %s\n", dash(tr_task_sid(t)), dash(tr_task_status(t)),
		prio, age, dash(tr_task_queue_name(t)), dash(tr_task_channel(t)));
}

static void print_table_header(void) {
	printf("%-34s %-13s %8s %7s %-20s %s\n", "SID", "STATUS", "PRIORITY", "AGE", "QUEUE",
		"CHANNEL");
}

/* ------------------------------------------------------------------ option parsing */

enum {
	OPT_JSON = 1000,
	OPT_SOCKET,
	OPT_TIMEOUT,
	OPT_HELP,
	OPT_REASON,
	OPT_HOLD_URL,
	OPT_HOLD_METHOD,
	OPT_HOLD,
	OPT_MODE,
	OPT_PRIORITY,
	OPT_ATTRIBUTES,
	OPT_EVENT,
	OPT_TASK,
	OPT_SINCE,
	OPT_COUNT,
	OPT_STATUS,
};

static int parse_timeout(const char *s, int *ret) {
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (errno || end == s || *end || !(d >= 0) || d > 86400.0 * 365) {
		return -EINVAL;
	}
	*ret = (int)(d * 1000.0 + 0.5);
	return 0;
}

static int parse_int64(const char *s, int64_t *ret) {
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0) {
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static void cmd_help(const struct cmd *c) {
	printf("Usage: taskrouterctl [--json] [--socket PATH] [--timeout SECONDS] %s %s\n\n%s\n",
		c->name, c->args, c->help);
	printf("\nCommon options: --json, --socket PATH, --timeout SECONDS, --help.\n"
	       "Exit status: 0 ok, 1 other failure, 2 usage error, 3 connection failure,\n"
	       "4 RPC or upstream error, 5 timeout.\n");
}

/* Handle the options common to every subcommand. Returns 1 handled, 0 not, <0 exit code. */
static int common_opt(struct ctx *x, const struct cmd *c, int opt, const char *arg) {
	switch (opt) {
	case OPT_JSON:
		x->json = true;
		return 1;
	case OPT_SOCKET:
		x->socket = arg;
		return 1;
	case OPT_TIMEOUT:
		if (parse_timeout(arg, &x->timeout_ms) < 0) {
			return -usage_error(c->name, "invalid --timeout '%s'", arg);
		}
		return 1;
	case OPT_HELP:
		cmd_help(c);
		return -1000; /* exit 0 */
	default:
		return 0;
	}
}

#define COMMON_LONGOPTS                                                                            \
	{"json", no_argument, NULL, OPT_JSON}, {"socket", required_argument, NULL, OPT_SOCKET},    \
		{"timeout", required_argument, NULL, OPT_TIMEOUT}, {                               \
		"help", no_argument, NULL, OPT_HELP                                                \
	}

/*
 * Parse a subcommand's options. handle(opt, arg, user) returns 0 or an exit code.
 * Returns -1 to continue (positional arguments start at optind), or an exit code.
 */
static int parse_opts(struct ctx *x, const struct cmd *c, int argc, char **argv,
	const struct option *extra,
	int (*handle)(struct ctx *, const struct cmd *, int, const char *, void *), void *user) {
	struct option opts[24];
	size_t n = 0;
	static const struct option common[] = {COMMON_LONGOPTS};

	for (size_t i = 0; extra && extra[i].name; i++) {
		opts[n++] = extra[i];
	}
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
		opts[n++] = common[i];
	}
	opts[n] = (struct option){0};

	/* 0 makes glibc reinitialise its scanner after main()'s getopt. Options may follow the
	 * positional arguments (wrapup SID --reason R); "--" ends them. */
	optind = 0;
	opterr = 0;
	for (;;) {
		int opt = getopt_long(argc, argv, "h", opts, NULL);
		int r;

		if (opt == -1) {
			break;
		}
		if (opt == 'h') {
			opt = OPT_HELP;
		}
		if (opt == '?' || opt == ':') {
			if (optopt) {
				return usage_error(c->name, "invalid option");
			}
			return usage_error(c->name, "unknown option '%s'", argv[optind - 1]);
		}
		r = common_opt(x, c, opt, optarg);
		if (r == -1000) {
			return EXIT_OK;
		}
		if (r < 0) {
			return -r;
		}
		if (r == 1) {
			continue;
		}
		r = handle ? handle(x, c, opt, optarg, user)
			   : usage_error(c->name, "invalid option");
		if (r != 0) {
			return r;
		}
	}
	return -1;
}

static int positional(const struct cmd *c, int argc, int min, int max) {
	int n = argc - optind;

	if (n < min) {
		return usage_error(c->name, "missing argument (usage: %s %s)", c->name, c->args);
	}
	if (n > max) {
		return usage_error(c->name, "too many arguments (usage: %s %s)", c->name, c->args);
	}
	return 0;
}

/* ------------------------------------------------------------------ task commands */

/* Run a typed task call and print the resulting task. */
static int finish_task(
	struct ctx *x, const char *what, int r, struct tr_task *t, struct tr_client_error *e) {
	int ret;

	if (r < 0) {
		ret = report(x, what, r, e);
	} else {
		ret = print_task(x, t);
	}
	tr_task_free(t);
	tr_client_error_done(e);
	return ret;
}

struct list_opts {
	const char *status;
};

static int list_opt(struct ctx *x, const struct cmd *c, int opt, const char *arg, void *user) {
	((struct list_opts *)user)->status = arg;
	return 0;
}

static int cmd_list(struct ctx *x, int argc, char **argv) {
	static const struct option o[] = {{"status", required_argument, NULL, OPT_STATUS}, {0}};
	const struct cmd *c = find_cmd("list");
	struct list_opts lo = {0};
	struct tr_client_error e = {0};
	struct tr_task **tasks = NULL;
	size_t n = 0;
	int r;

	r = parse_opts(x, c, argc, argv, o, list_opt, &lo);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 0, 0)) || (r = connect_ctx(x))) {
		return r;
	}
	/* every page (the library follows task.list's `next`) */
	r = tr_client_task_list(x->c, lo.status, x->timeout_ms, &tasks, &n, &e);
	if (r < 0) {
		r = report(x, "task.list", r, &e);
		tr_client_error_done(&e);
		return r;
	}
	if (x->json) {
		/* one document: {"tasks":[…],"next":null}, the shape of a last page */
		fputs("{\"tasks\":[", stdout);
		for (size_t i = 0; i < n; i++) {
			char *t = tr_task_to_json(tasks[i]);
			printf("%s%s", i ? "," : "", t ? t : "null");
			free(t);
		}
		fputs("],\"next\":null}\n", stdout);
		tr_task_list_free(tasks, n);
		return EXIT_OK;
	}
	print_table_header();
	for (size_t i = 0; i < n; i++) {
		print_task_row(tasks[i]);
	}
	tr_task_list_free(tasks, n);
	return EXIT_OK;
}

/* Commands taking SID and nothing else. */
static int cmd_sid_only(struct ctx *x, int argc, char **argv, const char *name,
	int (*fn)(
		struct tr_client *, const char *, int, struct tr_task **, struct tr_client_error *),
	const char *method) {
	const struct cmd *c = find_cmd(name);
	struct tr_client_error e = {0};
	struct tr_task *t = NULL;
	int r;

	r = parse_opts(x, c, argc, argv, NULL, NULL, NULL);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 1, 1)) || (r = connect_ctx(x))) {
		return r;
	}
	r = fn(x->c, argv[optind], x->timeout_ms, &t, &e);
	return finish_task(x, method, r, t, &e);
}

static int cmd_get(struct ctx *x, int argc, char **argv) {
	return cmd_sid_only(x, argc, argv, "get", tr_client_task_get, "task.get");
}

static int cmd_fetch(struct ctx *x, int argc, char **argv) {
	return cmd_sid_only(x, argc, argv, "fetch", tr_client_task_fetch_latest_version,
		"task.fetchLatestVersion");
}

static int cmd_cancel_transfer(struct ctx *x, int argc, char **argv) {
	return cmd_sid_only(x, argc, argv, "cancel-transfer", tr_client_task_cancel_transfer,
		"task.cancelTransfer");
}

static int cmd_complete(struct ctx *x, int argc, char **argv) {
	const struct cmd *c = find_cmd("complete");
	struct tr_client_error e = {0};
	struct tr_task *t = NULL;
	int r;

	r = parse_opts(x, c, argc, argv, NULL, NULL, NULL);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 2, 2)) || (r = connect_ctx(x))) {
		return r;
	}
	r = tr_client_task_complete(x->c, argv[optind], argv[optind + 1], x->timeout_ms, &t, &e);
	return finish_task(x, "task.complete", r, t, &e);
}

struct str_opts {
	const char *reason, *hold_url, *hold_method, *mode, *attributes;
	int hold;
	int64_t priority;
};

static int on_off(const char *s) {
	if (strcmp(s, "on") == 0) {
		return 1;
	}
	if (strcmp(s, "off") == 0) {
		return 0;
	}
	return -1;
}

static bool is_json_object(const char *s) {
	struct tr_json *j = NULL;
	bool ok;

	if (tr_json_parse(s, strlen(s), &j, NULL) < 0) {
		return false;
	}
	ok = tr_json_is(j, TR_JSON_OBJECT);
	tr_json_free(j);
	return ok;
}

static int str_opt(struct ctx *x, const struct cmd *c, int opt, const char *arg, void *user) {
	struct str_opts *so = user;

	switch (opt) {
	case OPT_REASON:
		so->reason = arg;
		break;
	case OPT_HOLD_URL:
		so->hold_url = arg;
		break;
	case OPT_HOLD_METHOD:
		so->hold_method = arg;
		break;
	case OPT_HOLD:
		so->hold = on_off(arg);
		if (so->hold < 0) {
			return usage_error(c->name, "--hold takes 'on' or 'off'");
		}
		break;
	case OPT_MODE:
		if (strcasecmp(arg, "warm") == 0) {
			so->mode = "WARM";
		} else if (strcasecmp(arg, "cold") == 0) {
			so->mode = "COLD";
		} else {
			return usage_error(c->name, "--mode takes 'warm' or 'cold'");
		}
		break;
	case OPT_PRIORITY:
		if (parse_int64(arg, &so->priority) < 0) {
			return usage_error(c->name, "invalid --priority '%s'", arg);
		}
		break;
	case OPT_ATTRIBUTES:
		if (!is_json_object(arg)) {
			return usage_error(c->name, "--attributes must be a JSON object");
		}
		so->attributes = arg;
		break;
	default:
		return usage_error(c->name, "invalid option");
	}
	return 0;
}

static int cmd_wrapup(struct ctx *x, int argc, char **argv) {
	static const struct option o[] = {{"reason", required_argument, NULL, OPT_REASON}, {0}};
	const struct cmd *c = find_cmd("wrapup");
	struct str_opts so = {.hold = -1, .priority = -1};
	struct tr_client_error e = {0};
	struct tr_task *t = NULL;
	int r;

	r = parse_opts(x, c, argc, argv, o, str_opt, &so);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 1, 1)) || (r = connect_ctx(x))) {
		return r;
	}
	r = tr_client_task_wrap_up(x->c, argv[optind], so.reason, x->timeout_ms, &t, &e);
	return finish_task(x, "task.wrapUp", r, t, &e);
}

static int cmd_set_attributes(struct ctx *x, int argc, char **argv) {
	const struct cmd *c = find_cmd("set-attributes");
	struct tr_client_error e = {0};
	struct tr_task *t = NULL;
	int r;

	r = parse_opts(x, c, argc, argv, NULL, NULL, NULL);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 2, 2))) {
		return r;
	}
	if (!is_json_object(argv[optind + 1])) {
		return usage_error(c->name, "JSON must be a JSON object");
	}
	if ((r = connect_ctx(x))) {
		return r;
	}
	r = tr_client_task_set_attributes(
		x->c, argv[optind], argv[optind + 1], x->timeout_ms, &t, &e);
	return finish_task(x, "task.setAttributes", r, t, &e);
}

static int cmd_set_vst(struct ctx *x, int argc, char **argv) {
	const struct cmd *c = find_cmd("set-virtual-start-time");
	struct tr_client_error e = {0};
	struct tr_task *t = NULL;
	int r;

	r = parse_opts(x, c, argc, argv, NULL, NULL, NULL);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 2, 2))) {
		return r;
	}
	if (!*argv[optind + 1]) {
		return usage_error(c->name, "empty TIME");
	}
	if ((r = connect_ctx(x))) {
		return r;
	}
	r = tr_client_task_set_virtual_start_time(
		x->c, argv[optind], argv[optind + 1], x->timeout_ms, &t, &e);
	return finish_task(x, "task.setVirtualStartTime", r, t, &e);
}

static int cmd_hold(struct ctx *x, int argc, char **argv) {
	static const struct option o[] = {{"hold-url", required_argument, NULL, OPT_HOLD_URL},
		{"hold-method", required_argument, NULL, OPT_HOLD_METHOD}, {0}};
	const struct cmd *c = find_cmd("hold");
	struct str_opts so = {.hold = -1, .priority = -1};
	struct tr_client_error e = {0};
	struct tr_task *t = NULL;
	int r, on;

	r = parse_opts(x, c, argc, argv, o, str_opt, &so);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 3, 3))) {
		return r;
	}
	on = on_off(argv[optind + 2]);
	if (on < 0) {
		return usage_error(c->name, "the third argument must be 'on' or 'off'");
	}
	if ((r = connect_ctx(x))) {
		return r;
	}
	r = tr_client_task_hold(x->c, argv[optind], argv[optind + 1], on == 1, so.hold_url,
		so.hold_method, x->timeout_ms, &t, &e);
	return finish_task(x, "task.hold", r, t, &e);
}

static int cmd_kick(struct ctx *x, int argc, char **argv) {
	const struct cmd *c = find_cmd("kick");
	struct tr_client_error e = {0};
	struct tr_task *t = NULL;
	int r;

	r = parse_opts(x, c, argc, argv, NULL, NULL, NULL);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 2, 2)) || (r = connect_ctx(x))) {
		return r;
	}
	r = tr_client_task_kick(x->c, argv[optind], argv[optind + 1], x->timeout_ms, &t, &e);
	return finish_task(x, "task.kick", r, t, &e);
}

static int cmd_update_participant(struct ctx *x, int argc, char **argv) {
	static const struct option o[] = {{"hold", required_argument, NULL, OPT_HOLD},
		{"hold-url", required_argument, NULL, OPT_HOLD_URL},
		{"hold-method", required_argument, NULL, OPT_HOLD_METHOD}, {0}};
	const struct cmd *c = find_cmd("update-participant");
	struct str_opts so = {.hold = -1, .priority = -1};
	struct tr_client_error e = {0};
	struct tr_task *t = NULL;
	int r;

	r = parse_opts(x, c, argc, argv, o, str_opt, &so);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 1, 1)) || (r = connect_ctx(x))) {
		return r;
	}
	r = tr_client_task_update_participant(
		x->c, argv[optind], so.hold, so.hold_url, so.hold_method, x->timeout_ms, &t, &e);
	return finish_task(x, "task.updateParticipant", r, t, &e);
}

static int cmd_transfer(struct ctx *x, int argc, char **argv) {
	static const struct option o[] = {{"mode", required_argument, NULL, OPT_MODE},
		{"priority", required_argument, NULL, OPT_PRIORITY},
		{"attributes", required_argument, NULL, OPT_ATTRIBUTES}, {0}};
	const struct cmd *c = find_cmd("transfer");
	struct str_opts so = {.hold = -1, .priority = -1};
	struct tr_client_error e = {0};
	struct tr_task *t = NULL;
	int r;

	r = parse_opts(x, c, argc, argv, o, str_opt, &so);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 2, 2)) || (r = connect_ctx(x))) {
		return r;
	}
	r = tr_client_task_transfer(x->c, argv[optind], argv[optind + 1], so.mode, so.priority,
		so.attributes, x->timeout_ms, &t, &e);
	return finish_task(x, "task.transfer", r, t, &e);
}

/* ------------------------------------------------------------------ generic calls */

/* Call and print: JSON as is, or flattened "key: value" lines for people. */
static int call_print(struct ctx *x, const char *method, const char *params, bool always_json,
	void (*human)(const struct tr_json *)) {
	struct tr_client_error e = {0};
	char *result = NULL;
	int r;

	r = tr_client_call(x->c, method, params, x->timeout_ms, &result, &e);
	if (r < 0) {
		r = report(x, method, r, &e);
		tr_client_error_done(&e);
		return r;
	}
	if (x->json || always_json || !human) {
		printf("%s\n", result);
	} else {
		struct tr_json *j = NULL;

		if (tr_json_parse(result, strlen(result), &j, NULL) < 0) {
			printf("%s\n", result);
		} else {
			human(j);
		}
		tr_json_free(j);
	}
	free(result);
	return EXIT_OK;
}

static void human_flat(const struct tr_json *j) {
	if (tr_json_is(j, TR_JSON_OBJECT)) {
		print_flat("", j);
	} else {
		print_scalar(j);
		putchar('\n');
	}
}

static void human_describe(const struct tr_json *j) {
	static const char *const sections[] = {"methods", "events", NULL};

	for (const char *const *s = sections; *s; s++) {
		const struct tr_json *a = tr_json_get(j, *s);

		if (!tr_json_is(a, TR_JSON_ARRAY)) {
			continue;
		}
		printf("%s:\n", *s);
		for (size_t i = 0; i < a->u.arr.n; i++) {
			const struct tr_json *it = a->u.arr.items[i];
			const char *name = tr_json_is(it, TR_JSON_STRING)
						   ? it->u.str.s
						   : tr_json_get_string(it, "name");

			printf("  %s\n", name ? name : "?");
		}
	}
}

static void human_ok(const struct tr_json *j) {
	(void)j;
	printf("ok\n");
}

static int cmd_simple(struct ctx *x, int argc, char **argv, const char *name, const char *method,
	void (*human)(const struct tr_json *)) {
	const struct cmd *c = find_cmd(name);
	int r;

	r = parse_opts(x, c, argc, argv, NULL, NULL, NULL);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 0, 0)) || (r = connect_ctx(x))) {
		return r;
	}
	return call_print(x, method, NULL, false, human);
}

static int cmd_status(struct ctx *x, int argc, char **argv) {
	return cmd_simple(x, argc, argv, "status", "daemon.status", human_flat);
}

static int cmd_describe(struct ctx *x, int argc, char **argv) {
	return cmd_simple(x, argc, argv, "describe", "rpc.describe", human_describe);
}

static int cmd_call(struct ctx *x, int argc, char **argv) {
	const struct cmd *c = find_cmd("call");
	const char *params = NULL;
	int r;

	r = parse_opts(x, c, argc, argv, NULL, NULL, NULL);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 1, 2))) {
		return r;
	}
	if (argc - optind == 2) {
		params = argv[optind + 1];
		if (!is_json_object(params)) {
			return usage_error(c->name, "PARAMS-JSON must be a JSON object");
		}
	}
	if ((r = connect_ctx(x))) {
		return r;
	}
	return call_print(x, argv[optind], params, true, NULL);
}

static int cmd_update_token(struct ctx *x, int argc, char **argv) {
	const struct cmd *c = find_cmd("update-token");
	char *tok, *params = NULL;
	size_t len = 0;
	int r;

	r = parse_opts(x, c, argc, argv, NULL, NULL, NULL);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 0, 0))) {
		return r;
	}
	tok = malloc(TOKEN_MAX + 1);
	if (!tok) {
		return EXIT_OTHER;
	}
	while (len < TOKEN_MAX) {
		size_t n = fread(tok + len, 1, TOKEN_MAX - len, stdin);

		if (n == 0) {
			break;
		}
		len += n;
	}
	if (len == TOKEN_MAX && fgetc(stdin) != EOF) {
		free(tok);
		return usage_error(c->name, "the token on stdin is too long");
	}
	while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' ' ||
				  tok[len - 1] == '\t')) {
		len--;
	}
	tok[len] = '\0';
	{
		/* surrounding white space is ignored, leading too */
		size_t lead = strspn(tok, " \t\r\n");
		memmove(tok, tok + lead, len - lead + 1);
		len -= lead;
	}
	if (len == 0 || strlen(tok) != len || strpbrk(tok, " \t\r\n")) {
		explicit_bzero(tok, TOKEN_MAX + 1);
		free(tok);
		return usage_error(c->name, "expected one token on stdin");
	}
	r = -ENOMEM;
	{
		char *q = NULL;
		size_t qlen = 0, qcap = 0;

		if (tr_json_quote_append(tok, len, &q, &qlen, &qcap) == 0 &&
			asprintf(&params, "{\"token\":%.*s}", (int)qlen, q) >= 0) {
			r = 0;
		}
		if (q) {
			explicit_bzero(q, qlen);
		}
		free(q);
	}
	explicit_bzero(tok, TOKEN_MAX + 1);
	free(tok);
	if (r < 0) {
		fprintf(stderr, "taskrouterctl: out of memory\n");
		return EXIT_OTHER;
	}
	r = connect_ctx(x);
	if (r == EXIT_OK) {
		r = call_print(x, "daemon.updateToken", params, false, human_ok);
	}
	explicit_bzero(params, strlen(params));
	free(params);
	return r;
}

/* ------------------------------------------------------------------ watch */

struct watch_opts {
	const char *events[MAX_FILTERS + 1];
	size_t n_events;
	const char *tasks[MAX_FILTERS + 1];
	size_t n_tasks;
	int64_t since;
	int64_t count;
};

static int watch_opt(struct ctx *x, const struct cmd *c, int opt, const char *arg, void *user) {
	struct watch_opts *w = user;

	switch (opt) {
	case OPT_EVENT:
		if (w->n_events >= MAX_FILTERS) {
			return usage_error(c->name, "too many --event options");
		}
		w->events[w->n_events++] = arg;
		break;
	case OPT_TASK:
		if (w->n_tasks >= MAX_FILTERS) {
			return usage_error(c->name, "too many --task options");
		}
		w->tasks[w->n_tasks++] = arg;
		break;
	case OPT_SINCE:
		if (parse_int64(arg, &w->since) < 0) {
			return usage_error(c->name, "invalid --since '%s'", arg);
		}
		break;
	case OPT_COUNT:
		if (parse_int64(arg, &w->count) < 0 || w->count == 0) {
			return usage_error(c->name, "invalid --count '%s'", arg);
		}
		break;
	default:
		return usage_error(c->name, "invalid option");
	}
	return 0;
}

static void print_event(struct ctx *x, const struct tr_client_event *ev) {
	if (x->json) {
		printf("%s\n", ev->json);
	} else {
		printf("%" PRId64 " %s", ev->seq, ev->name);
		if (ev->task_sid) {
			printf(" task=%s", ev->task_sid);
		}
		if (ev->task && tr_task_status(ev->task)) {
			printf(" status=%s", tr_task_status(ev->task));
		}
		if (ev->reservation_sid) {
			printf(" reservation=%s", ev->reservation_sid);
		}
		if (ev->resync) {
			printf(" resync");
		}
		if (ev->stale) {
			printf(" stale");
		}
		putchar('\n');
	}
	fflush(stdout);
}

/* The subscribe result: remember its seq and, after a gap, print the snapshot. */
static int64_t subscribe_seq(const char *result) {
	struct tr_json *j = NULL;
	int64_t seq = -1;

	if (tr_json_parse(result, strlen(result), &j, NULL) == 0) {
		if (tr_json_get_int(j, "seq", &seq) < 0) {
			seq = -1;
		}
	}
	tr_json_free(j);
	return seq;
}

static void print_gap(struct ctx *x, int64_t wanted, const struct tr_client_error *gone,
	const char *result, int64_t seq) {
	struct tr_json *j = NULL;
	const struct tr_json *tasks;

	fprintf(stderr,
		"taskrouterctl: watch: skipped events: seq %" PRId64
		" is gone, resubscribed from seq "
		"%" PRId64 ", re-listing\n",
		wanted, seq + 1);
	if (tr_json_parse(result, strlen(result), &j, NULL) < 0) {
		j = NULL;
	}
	tasks = tr_json_get(j, "tasks");
	if (x->json) {
		printf("{\"gap\":{\"since\":%" PRId64 ",\"resubscribedFrom\":%" PRId64, wanted,
			seq + 1);
		if (gone && gone->data) {
			printf(",\"data\":%s", gone->data);
		}
		printf("},\"tasks\":");
		if (tasks) {
			char *s = NULL;

			if (tr_json_dump(tasks, &s, NULL) == 0) {
				fputs(s, stdout);
			} else {
				fputs("[]", stdout);
			}
			free(s);
		} else {
			fputs("[]", stdout);
		}
		printf("}\n");
	} else {
		printf("skipped events: resubscribed from seq %" PRId64 ", re-listing\n", seq + 1);
		for (size_t i = 0; tr_json_is(tasks, TR_JSON_ARRAY) && i < tasks->u.arr.n; i++) {
			const struct tr_json *t = tasks->u.arr.items[i];
			const char *sid = tr_json_get_string(t, "sid");
			const char *st = tr_json_get_string(t, "status");

			printf("task %s status=%s\n", dash(sid), dash(st));
		}
	}
	fflush(stdout);
	tr_json_free(j);
}

/* Subscribe (resuming at since when >= 0). Returns 0 and sets *last_seq, or a negative
 * errno (with e filled in). */
static int watch_subscribe(struct ctx *x, struct watch_opts *w, int64_t since, int64_t *last_seq,
	struct tr_client_error *e) {
	char *result = NULL;
	int r;

	r = tr_client_subscribe(x->c, w->events, w->tasks, since, x->timeout_ms, &result, e);
	if (r == -EREMOTEIO && e->code == TR_CLIENT_REPLAY_GONE) {
		struct tr_client_error gone = *e;

		*e = (struct tr_client_error){0};
		r = tr_client_subscribe(x->c, w->events, w->tasks, -1, x->timeout_ms, &result, e);
		if (r == 0) {
			int64_t seq = subscribe_seq(result);

			print_gap(x, since, &gone, result, seq);
			*last_seq = seq;
		}
		tr_client_error_done(&gone);
		free(result);
		return r;
	}
	if (r < 0) {
		return r;
	}
	/* Without since, events after the returned seq follow. With since, the replayed
	 * events carry their own seq, so keep since - 1 until they arrive. */
	if (since < 0) {
		*last_seq = subscribe_seq(result);
	} else {
		*last_seq = since - 1;
	}
	free(result);
	return 0;
}

static int64_t mono_ms(void) {
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_watch(struct ctx *x, int argc, char **argv) {
	static const struct option o[] = {{"event", required_argument, NULL, OPT_EVENT},
		{"task", required_argument, NULL, OPT_TASK},
		{"since", required_argument, NULL, OPT_SINCE},
		{"count", required_argument, NULL, OPT_COUNT}, {0}};
	const struct cmd *c = find_cmd("watch");
	struct watch_opts w = {.since = -1, .count = -1};
	struct tr_client_error e = {0};
	int64_t last_seq = -1, seen = 0, lost_at = -1;
	int backoff = WATCH_BACKOFF_MIN_MS;
	bool first = true;
	int r;

	r = parse_opts(x, c, argc, argv, o, watch_opt, &w);
	if (r >= 0) {
		return r;
	}
	if ((r = positional(c, argc, 0, 0))) {
		return r;
	}
	for (;;) {
		int64_t since = first ? w.since : (last_seq >= 0 ? last_seq + 1 : -1);

		if (!x->c) {
			char *path =
				x->socket ? strdup(x->socket) : tr_client_default_socket_path();

			if (!path) {
				return EXIT_OTHER;
			}
			r = tr_client_connect(path, x->timeout_ms, &x->c);
			free(path);
			if (r < 0 && first) {
				struct tr_client_error ce = {.errnum = r, .message = strerror(-r)};

				r = report(x, "cannot connect", r, &ce);
				return r == EXIT_TIMEOUT ? EXIT_TIMEOUT : EXIT_CONNECT;
			}
		} else {
			r = 0;
		}
		if (r == 0) {
			r = watch_subscribe(x, &w, since, &last_seq, &e);
			if (r == -EREMOTEIO && e.code != TR_CLIENT_TIMEOUT) {
				/* The daemon refused the subscription itself: not transient. */
				r = report(x, "events.subscribe", r, &e);
				tr_client_error_done(&e);
				return r;
			}
			if (r < 0 && first) {
				r = report(x, "events.subscribe", r, &e);
				tr_client_error_done(&e);
				return r;
			}
		}
		if (r == 0) {
			if (!first) {
				fprintf(stderr,
					"taskrouterctl: watch: reconnected, resuming after seq "
					"%" PRId64 "\n",
					last_seq);
			}
			first = false;
			lost_at = -1;
			backoff = WATCH_BACKOFF_MIN_MS;
			for (;;) {
				struct tr_client_event *ev = NULL;

				r = tr_client_next_event(x->c, -1, &ev);
				if (r < 0) {
					break;
				}
				if (r == 0) {
					continue;
				}
				if (ev->seq > last_seq) {
					last_seq = ev->seq;
				}
				print_event(x, ev);
				tr_client_event_free(ev);
				if (w.count > 0 && ++seen >= w.count) {
					return EXIT_OK;
				}
			}
			fprintf(stderr,
				"taskrouterctl: watch: connection lost (%s), reconnecting\n",
				strerror(-r));
		}
		tr_client_error_done(&e);
		x->c = tr_client_close(x->c);
		if (lost_at < 0) {
			lost_at = mono_ms();
		}
		if (mono_ms() - lost_at >= WATCH_GIVE_UP_MS) {
			fprintf(stderr,
				"taskrouterctl: watch: could not reconnect for %d s, giving up\n",
				WATCH_GIVE_UP_MS / 1000);
			return EXIT_CONNECT;
		}
		(void)poll(NULL, 0, backoff);
		backoff = backoff * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS : backoff * 2;
	}
}

/* ------------------------------------------------------------------ main */

static const struct cmd cmds[] = {
	{"list", cmd_list, "[--status S]", "List the cached tasks (task.list)."},
	{"get", cmd_get, "SID", "Show one task (task.get)."},
	{"complete", cmd_complete, "SID REASON", "Complete a task (task.complete)."},
	{"wrapup", cmd_wrapup, "SID [--reason R]", "Move a task to wrapping (task.wrapUp)."},
	{"set-attributes", cmd_set_attributes, "SID JSON",
		"Replace a task's attributes with the JSON object (task.setAttributes)."},
	{"set-virtual-start-time", cmd_set_vst, "SID TIME",
		"Set the virtual start time: RFC 3339 or epoch seconds "
		"(task.setVirtualStartTime)."},
	{"fetch", cmd_fetch, "SID",
		"Fetch the latest version from upstream (task.fetchLatestVersion)."},
	{"hold", cmd_hold, "SID WORKER on|off [--hold-url U] [--hold-method M]",
		"Put a worker's leg on or off hold (task.hold)."},
	{"kick", cmd_kick, "SID WORKER", "Remove a worker from a conference (task.kick)."},
	{"update-participant", cmd_update_participant,
		"SID [--hold on|off] [--hold-url U] [--hold-method M]",
		"Update this worker's participant (task.updateParticipant)."},
	{"transfer", cmd_transfer, "SID TO [--mode warm|cold] [--priority N] [--attributes JSON]",
		"Transfer a task to a worker or queue (task.transfer)."},
	{"cancel-transfer", cmd_cancel_transfer, "SID",
		"Cancel the outgoing transfer (task.cancelTransfer)."},
	{"watch", cmd_watch, "[--event E]... [--task SID]... [--since SEQ] [--count N]",
		"Print events as they come, one per line. Reconnects when the daemon restarts and\n"
		"resumes after the last seen seq; reports a gap when events were lost.\n"
		"--count N exits after N events."},
	{"status", cmd_status, "", "Show the daemon status (daemon.status)."},
	{"update-token", cmd_update_token, "",
		"Give the daemon a new worker token, read from stdin (daemon.updateToken)."},
	{"describe", cmd_describe, "", "List the methods and events of the daemon (rpc.describe)."},
	{"call", cmd_call, "METHOD [PARAMS-JSON]", "Call any method and print the result JSON."},
};

static const struct cmd *find_cmd(const char *name) {
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].name, name) == 0) {
			return &cmds[i];
		}
	}
	return NULL;
}

static void main_help(void) {
	printf("Usage: taskrouterctl [--json] [--socket PATH] [--timeout SECONDS] COMMAND "
	       "[ARGS]\n\n"
	       "Commands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		printf("  %s %s\n", cmds[i].name, cmds[i].args);
	}
	printf("\nOptions:\n"
	       "  --json             one JSON document per result, one JSON line per event\n"
	       "  --socket PATH      daemon socket (default: $TASKROUTERD_SOCKET,\n"
	       "                     $XDG_RUNTIME_DIR/taskrouterd/socket, "
	       "/run/taskrouterd/socket)\n"
	       "  --timeout SECONDS  per-call timeout (default 30)\n"
	       "  --help             this text; 'taskrouterctl COMMAND --help' for a command\n"
	       "  --version          print the version\n\n"
	       "Exit status: 0 ok, 1 other failure, 2 usage error, 3 connection failure,\n"
	       "4 RPC or upstream error, 5 timeout.\n");
}

int main(int argc, char **argv) {
	static const struct option o[] = {
		COMMON_LONGOPTS, {"version", no_argument, NULL, 'V'}, {0}};
	struct ctx x = {.timeout_ms = DEFAULT_TIMEOUT_MS};
	const struct cmd *c;
	int r;

	opterr = 0;
	for (;;) {
		int opt = getopt_long(argc, argv, "+hV", o, NULL);

		if (opt == -1) {
			break;
		}
		switch (opt) {
		case 'h':
		case OPT_HELP:
			main_help();
			return EXIT_OK;
		case 'V':
			printf("taskrouterctl %s\n", TR_VERSION);
			return EXIT_OK;
		case OPT_JSON:
			x.json = true;
			break;
		case OPT_SOCKET:
			x.socket = optarg;
			break;
		case OPT_TIMEOUT:
			if (parse_timeout(optarg, &x.timeout_ms) < 0) {
				return usage_error(NULL, "invalid --timeout '%s'", optarg);
			}
			break;
		default:
			return usage_error(NULL, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		return usage_error(NULL, "missing command");
	}
	c = find_cmd(argv[optind]);
	if (!c) {
		return usage_error(NULL, "unknown command '%s'", argv[optind]);
	}
	r = c->run(&x, argc - optind, argv + optind);
	x.c = tr_client_close(x.c);
	if (fflush(stdout) != 0 && r == EXIT_OK) {
		r = EXIT_OTHER;
	}
	return r;
}
