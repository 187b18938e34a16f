/*
 * taskrouterctl — command line client of taskrouterd, a thin shell over libtaskrouter.
 *
 * Human output by default (a table for a list, "key: value" lines for one task, reservation
 * or the worker, one line per event); --json prints one compact JSON document per result and
 * one JSON line per event.
 * Exit status: 0 ok, 1 other failure, 2 usage, 3 connection failure, 4 RPC/upstream error,
 * 5 timeout (see taskrouterctl(1)).
 *
 * Each command is one row of cmds[]: its positional arguments and options (rows of
 * params[]), its JSON-RPC method, the library call and the printer. One runner, run(),
 * parses, checks, connects, calls and prints for all of them, and the usage lines are
 * made from the same rows, so they cannot drift apart. An option row with a JSON key is a
 * member of the method's params as it is (the instruction calls: --status-callback-url U
 * is "statusCallbackUrl": U), checked and typed by its row.
 *
 * Return convention: a function here that can fail returns 0 (EXIT_OK) or the exit status
 * to end with, after it has told the user why. The library calls in the rows return what
 * libtaskrouter returns, 0 or a negative errno; report() is the one place that turns those
 * into an exit status.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
#define MAX_ARGS 3
/* A usage line longer than this shows [OPTION]... for the optional options, and the
 * command's --help lists them. */
#define USAGE_WIDTH 96

/* A repeatable option (watch --event, --task), NULL-terminated as the library wants it. */
struct filter {
	const char *v[MAX_FILTERS + 1];
	size_t n;
};

/*
 * Everything one run knows: the common options, the command's arguments and options
 * (strings NULL and numbers -1 when not given), and the connection.
 */
struct ctx {
	const struct cmd *cmd; /* NULL while parsing the options before the command name */
	const char *socket;
	int timeout_ms;
	bool json, help, version;

	const char *sid, *worker, *to, *reason, *attributes, *time;
	const char *status, *hold_url, *hold_method, *mode;
	const char *activity; /* reject --activity, activity NAME */
	bool reject_pending;
	int hold; /* 1 on, 0 off */
	int64_t priority, since, count;
	struct filter events, tasks;
	const char *method, *params;
	char *secret_params; /* params that hold the token: wiped before they are freed */
	struct tr_json *members; /* the options with a JSON key, in the order given */
	char *built_params;      /* params made from sid and members (malloc'd) */

	const char *epoch_arg; /* watch --epoch */
	int64_t last_seq; /* watch: the seq the next event follows */
	char *epoch;      /* watch: the daemon run that counted last_seq (malloc'd), or NULL */
	struct tr_client *c;
};

/* What a call returns; the row's printer reads the member its call fills. */
struct result {
	struct tr_task *task;
	struct tr_task **tasks;
	size_t n_tasks;
	struct tr_reservation *rsv;
	struct tr_reservation **rsvs;
	size_t n_rsvs;
	struct tr_worker *worker;
	struct tr_activity **acts;
	size_t n_acts;
	char *json;
	struct tr_client_event *event;
	struct tr_client_subscription *sub;
	struct tr_client_error err;
};

/* ------------------------------------------------------------------ arguments and options */

/*
 * How a value is checked and what it is stored as. A row with a JSON key stores into
 * x->members instead: T_STRING and T_NONEMPTY as a string, T_NUMBER as an integer, T_FLAG as
 * true (and its --no-NAME twin as false), T_BOOL_OR_STRING as a boolean for "true" and
 * "false", else as the string.
 */
enum type {
	T_FLAG,     /* bool, takes no value */
	T_STRING,   /* const char * */
	T_NONEMPTY, /* const char *, not "" */
	T_OBJECT,   /* const char *, the text of a JSON object */
	T_MODE,     /* const char *: warm or cold in any case, stored as "WARM" or "COLD" */
	T_ON_OFF,   /* int: 1 for on, 0 for off */
	T_SECONDS,  /* int: milliseconds, from seconds with fractions */
	T_NUMBER,   /* int64_t >= 0 */
	T_COUNT,    /* int64_t > 0 */
	T_FILTER,   /* struct filter: one more value each time */
	T_BOOL_OR_STRING, /* only with a JSON key */
};

enum param_id {
	P_NONE, /* ends a command's positional arguments */
	P_SID,
	P_WORKER,
	P_ON_OFF,
	P_TO,
	P_REASON,
	P_ATTRIBUTES,
	P_TIME,
	P_METHOD,
	P_PARAMS,
	P_ACTIVITY,
	/* A command's own options. */
	O_STATUS,
	O_REASON,
	O_HOLD,
	O_HOLD_URL,
	O_HOLD_METHOD,
	O_MODE,
	O_PRIORITY,
	O_ATTRIBUTES,
	O_EVENT,
	O_TASK,
	O_SINCE,
	O_EPOCH,
	O_COUNT,
	O_ACTIVITY,
	O_REJECT_PENDING,
	/* The options of the instruction calls: members of their params (spec §3.2). */
	O_TO,
	O_FROM,
	O_URL,
	O_CALL_SID,
	O_ACCEPT,
	O_RECORD,
	O_INSTR_TIMEOUT,
	O_STATUS_CALLBACK_URL,
	O_POST_WORK_ACTIVITY_SID,
	O_STATUS_CALLBACK_EVENTS,
	O_STATUS_CALLBACK,
	O_STATUS_CALLBACK_METHOD,
	O_STATUS_CALLBACK_EVENT,
	O_WAIT_URL,
	O_WAIT_METHOD,
	O_CONF_STATUS_CALLBACK,
	O_CONF_STATUS_CALLBACK_METHOD,
	O_CONF_STATUS_CALLBACK_EVENT,
	O_CONF_TRIM,
	O_RECORDING_CHANNELS,
	O_RECORDING_STATUS_CALLBACK,
	O_RECORDING_STATUS_CALLBACK_METHOD,
	O_CONF_RECORDING_STATUS_CALLBACK,
	O_CONF_RECORDING_STATUS_CALLBACK_METHOD,
	O_REGION,
	O_SIP_AUTH_USERNAME,
	O_SIP_AUTH_PASSWORD,
	O_TRANSCRIPTION_CONFIGURATION,
	O_MUTED,
	O_START_CONF_ON_ENTER,
	O_END_CONF_ON_EXIT,
	O_END_CONF_ON_CUSTOMER_EXIT,
	O_EARLY_MEDIA,
	O_TRANSCRIBE,
	O_BEEP_ON_CUSTOMER_ENTRANCE,
	O_MAX_PARTICIPANTS,
	O_BEEP,
	O_CONF_RECORD,
	/* Options every command takes, and --version before the command name. */
	O_JSON,
	O_SOCKET,
	O_TIMEOUT,
	O_HELP,
	O_VERSION,
	_PARAM_MAX,
};

struct param {
	const char *name; /* an option's long name; NULL for a positional argument */
	const char *arg;  /* the value in usage lines; NULL for an option without one */
	enum type type;
	size_t offset;   /* the struct ctx member the value goes to */
	const char *bad; /* what to say when a value does not fit; NULL: "invalid --NAME 'VALUE'" */
	char short_name;
	bool optional; /* a positional argument that may be left out (only the last ones) */
	const char *key; /* the params member the value goes to, instead of offset */
};

/*
 * Positional arguments and options share one table because they are checked and stored
 * the same way, and some fill the same member: complete's REASON and wrapup's --reason.
 */
#define AT(member) offsetof(struct ctx, member)
static const struct param params[_PARAM_MAX] = {
	[P_SID] = {NULL, "SID", T_STRING, AT(sid)},
	[P_WORKER] = {NULL, "WORKER", T_STRING, AT(worker)},
	[P_ON_OFF] = {NULL, "on|off", T_ON_OFF, AT(hold),
		"the third argument must be 'on' or 'off'"},
	[P_TO] = {NULL, "TO", T_STRING, AT(to)},
	[P_REASON] = {NULL, "REASON", T_STRING, AT(reason)},
	[P_ATTRIBUTES] = {NULL, "JSON", T_OBJECT, AT(attributes), "JSON must be a JSON object"},
	[P_TIME] = {NULL, "TIME", T_NONEMPTY, AT(time), "empty TIME"},
	[P_METHOD] = {NULL, "METHOD", T_STRING, AT(method)},
	[P_PARAMS] = {NULL, "PARAMS-JSON", T_OBJECT, AT(params),
		"PARAMS-JSON must be a JSON object", .optional = true},
	[P_ACTIVITY] = {NULL, "NAME", T_NONEMPTY, AT(activity), "empty activity NAME"},
	[O_STATUS] = {"status", "S", T_STRING, AT(status)},
	[O_REASON] = {"reason", "R", T_STRING, AT(reason)},
	[O_HOLD] = {"hold", "on|off", T_ON_OFF, AT(hold), "--hold takes 'on' or 'off'"},
	[O_HOLD_URL] = {"hold-url", "U", T_STRING, AT(hold_url)},
	[O_HOLD_METHOD] = {"hold-method", "M", T_STRING, AT(hold_method)},
	[O_MODE] = {"mode", "warm|cold", T_MODE, AT(mode), "--mode takes 'warm' or 'cold'"},
	[O_PRIORITY] = {"priority", "N", T_NUMBER, AT(priority)},
	[O_ATTRIBUTES] = {"attributes", "JSON", T_OBJECT, AT(attributes),
		"--attributes must be a JSON object"},
	[O_EVENT] = {"event", "E", T_FILTER, AT(events), "too many --event options"},
	[O_TASK] = {"task", "SID", T_FILTER, AT(tasks), "too many --task options"},
	[O_SINCE] = {"since", "SEQ", T_NUMBER, AT(since)},
	[O_EPOCH] = {"epoch", "EPOCH", T_NONEMPTY, AT(epoch_arg), "empty --epoch"},
	[O_COUNT] = {"count", "N", T_COUNT, AT(count)},
	[O_ACTIVITY] = {"activity", "NAME", T_NONEMPTY, AT(activity), "empty --activity"},
	[O_REJECT_PENDING] = {"reject-pending", NULL, T_FLAG, AT(reject_pending)},
#define MEMBER(flag, arg, type, k) {flag, arg, type, 0, .key = k}
	[O_TO] = MEMBER("to", "TO", T_STRING, "to"),
	[O_FROM] = MEMBER("from", "FROM", T_STRING, "from"),
	[O_URL] = MEMBER("url", "URL", T_STRING, "url"),
	[O_CALL_SID] = MEMBER("call-sid", "CALL", T_STRING, "callSid"),
	[O_ACCEPT] = MEMBER("accept", NULL, T_FLAG, "accept"),
	[O_RECORD] = MEMBER("record", "R", T_STRING, "record"),
	[O_INSTR_TIMEOUT] = MEMBER("timeout", "N", T_NUMBER, "timeout"),
	[O_STATUS_CALLBACK_URL] = MEMBER("status-callback-url", "URL", T_STRING,
		"statusCallbackUrl"),
	[O_POST_WORK_ACTIVITY_SID] = MEMBER("post-work-activity-sid", "WA", T_STRING,
		"postWorkActivitySid"),
	[O_STATUS_CALLBACK_EVENTS] = MEMBER("status-callback-events", "EVENTS", T_STRING,
		"statusCallbackEvents"),
	[O_STATUS_CALLBACK] = MEMBER("status-callback", "URL", T_STRING, "statusCallback"),
	[O_STATUS_CALLBACK_METHOD] = MEMBER("status-callback-method", "METHOD", T_STRING,
		"statusCallbackMethod"),
	[O_STATUS_CALLBACK_EVENT] = MEMBER("status-callback-event", "EVENTS", T_STRING,
		"statusCallbackEvent"),
	[O_WAIT_URL] = MEMBER("wait-url", "URL", T_STRING, "waitUrl"),
	[O_WAIT_METHOD] = MEMBER("wait-method", "METHOD", T_STRING, "waitMethod"),
	[O_CONF_STATUS_CALLBACK] = MEMBER("conference-status-callback", "URL", T_STRING,
		"conferenceStatusCallback"),
	[O_CONF_STATUS_CALLBACK_METHOD] = MEMBER("conference-status-callback-method", "METHOD",
		T_STRING, "conferenceStatusCallbackMethod"),
	[O_CONF_STATUS_CALLBACK_EVENT] = MEMBER("conference-status-callback-event", "EVENTS",
		T_STRING, "conferenceStatusCallbackEvent"),
	[O_CONF_TRIM] = MEMBER("conference-trim", "TRIM", T_STRING, "conferenceTrim"),
	[O_RECORDING_CHANNELS] = MEMBER("recording-channels", "CHANNELS", T_STRING,
		"recordingChannels"),
	[O_RECORDING_STATUS_CALLBACK] = MEMBER("recording-status-callback", "URL", T_STRING,
		"recordingStatusCallback"),
	[O_RECORDING_STATUS_CALLBACK_METHOD] = MEMBER("recording-status-callback-method",
		"METHOD", T_STRING, "recordingStatusCallbackMethod"),
	[O_CONF_RECORDING_STATUS_CALLBACK] = MEMBER("conference-recording-status-callback",
		"URL", T_STRING, "conferenceRecordingStatusCallback"),
	[O_CONF_RECORDING_STATUS_CALLBACK_METHOD] = MEMBER(
		"conference-recording-status-callback-method", "METHOD", T_STRING,
		"conferenceRecordingStatusCallbackMethod"),
	[O_REGION] = MEMBER("region", "REGION", T_STRING, "region"),
	[O_SIP_AUTH_USERNAME] = MEMBER("sip-auth-username", "USER", T_STRING, "sipAuthUsername"),
	[O_SIP_AUTH_PASSWORD] = MEMBER("sip-auth-password", "PASSWORD", T_STRING,
		"sipAuthPassword"),
	[O_TRANSCRIPTION_CONFIGURATION] = MEMBER("transcription-configuration", "CONFIG",
		T_STRING, "transcriptionConfiguration"),
	[O_MUTED] = MEMBER("muted", NULL, T_FLAG, "muted"),
	[O_START_CONF_ON_ENTER] = MEMBER("start-conference-on-enter", NULL, T_FLAG,
		"startConferenceOnEnter"),
	[O_END_CONF_ON_EXIT] = MEMBER("end-conference-on-exit", NULL, T_FLAG,
		"endConferenceOnExit"),
	[O_END_CONF_ON_CUSTOMER_EXIT] = MEMBER("end-conference-on-customer-exit", NULL, T_FLAG,
		"endConferenceOnCustomerExit"),
	[O_EARLY_MEDIA] = MEMBER("early-media", NULL, T_FLAG, "earlyMedia"),
	[O_TRANSCRIBE] = MEMBER("transcribe", NULL, T_FLAG, "transcribe"),
	[O_BEEP_ON_CUSTOMER_ENTRANCE] = MEMBER("beep-on-customer-entrance", NULL, T_FLAG,
		"beepOnCustomerEntrance"),
	[O_MAX_PARTICIPANTS] = MEMBER("max-participants", "N", T_NUMBER, "maxParticipants"),
	[O_BEEP] = MEMBER("beep", "VALUE", T_BOOL_OR_STRING, "beep"),
	[O_CONF_RECORD] = MEMBER("conference-record", "VALUE", T_BOOL_OR_STRING,
		"conferenceRecord"),
#undef MEMBER
	[O_JSON] = {"json", NULL, T_FLAG, AT(json)},
	[O_SOCKET] = {"socket", "PATH", T_STRING, AT(socket)},
	[O_TIMEOUT] = {"timeout", "SECONDS", T_SECONDS, AT(timeout_ms)},
	[O_HELP] = {"help", NULL, T_FLAG, AT(help), .short_name = 'h'},
	[O_VERSION] = {"version", NULL, T_FLAG, AT(version), .short_name = 'V'},
};
#undef AT

/* A list of option rows, ended by P_NONE (a static compound literal). */
#define OPTS(...) ((const enum param_id[]){__VA_ARGS__, P_NONE})
static const enum param_id common_opts[] = {O_JSON, O_SOCKET, O_TIMEOUT, O_HELP, P_NONE};
static const enum param_id main_opts[] = {O_JSON, O_SOCKET, O_TIMEOUT, O_HELP, O_VERSION, P_NONE};
/* getopt_long returns GETOPT_VAL + a row's index, above every short option character, and
 * GETOPT_NO + the index for the --no-NAME twin of a flag with a JSON key. */
#define GETOPT_VAL 256
#define GETOPT_NO (GETOPT_VAL + _PARAM_MAX)

/* The options of the instruction calls, as in spec §3.2 (conference: every checked key and
 * beepOnCustomerEntrance). */
#define CALL_OPTS                                                                                  \
	OPTS(O_FROM, O_URL, O_ACCEPT, O_RECORD, O_STATUS_CALLBACK_URL, O_INSTR_TIMEOUT, O_TO)
#define DEQUEUE_OPTS                                                                               \
	OPTS(O_FROM, O_TO, O_POST_WORK_ACTIVITY_SID, O_RECORD, O_INSTR_TIMEOUT,                    \
		O_STATUS_CALLBACK_URL, O_STATUS_CALLBACK_EVENTS)
#define REDIRECT_OPTS OPTS(O_CALL_SID, O_URL, O_ACCEPT)
#define CONFERENCE_OPTS                                                                            \
	OPTS(O_TO, O_FROM, O_INSTR_TIMEOUT, O_STATUS_CALLBACK, O_STATUS_CALLBACK_METHOD,           \
		O_STATUS_CALLBACK_EVENT, O_RECORD, O_MUTED, O_BEEP, O_START_CONF_ON_ENTER,         \
		O_END_CONF_ON_EXIT, O_END_CONF_ON_CUSTOMER_EXIT, O_WAIT_URL, O_WAIT_METHOD,        \
		O_EARLY_MEDIA, O_MAX_PARTICIPANTS, O_CONF_STATUS_CALLBACK,                         \
		O_CONF_STATUS_CALLBACK_METHOD, O_CONF_STATUS_CALLBACK_EVENT, O_CONF_RECORD,        \
		O_CONF_TRIM, O_RECORDING_CHANNELS, O_RECORDING_STATUS_CALLBACK,                    \
		O_RECORDING_STATUS_CALLBACK_METHOD, O_CONF_RECORDING_STATUS_CALLBACK,              \
		O_CONF_RECORDING_STATUS_CALLBACK_METHOD, O_REGION, O_SIP_AUTH_USERNAME,            \
		O_SIP_AUTH_PASSWORD, O_TRANSCRIBE, O_TRANSCRIPTION_CONFIGURATION,                  \
		O_BEEP_ON_CUSTOMER_ENTRANCE)

/* libtaskrouter's typed task calls that take the sid, or the sid and one more string. */
typedef int task_sid_fn(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_task **ret_task, struct tr_client_error *ret_err);
typedef int task_sid_str_fn(struct tr_client *c, const char *sid, const char *s, int timeout_ms,
	struct tr_task **ret_task, struct tr_client_error *ret_err);
/* libtaskrouter's typed reservation calls that take the sid. */
typedef int rsv_sid_fn(struct tr_client *c, const char *sid, int timeout_ms,
	struct tr_reservation **ret, struct tr_client_error *ret_err);

struct cmd {
	const char *name;
	enum param_id args[MAX_ARGS]; /* positional arguments, in order */
	const enum param_id *opts;    /* the command's own options, OPTS(); NULL: none */
	const char *method;           /* the JSON-RPC method; NULL: the METHOD argument */
	const enum param_id *need;    /* the options that must be given, OPTS(); NULL: none */
	/* For a name two rows share: whether this row takes the first positional argument
	 * (NULL when absent). NULL: the row takes anything. */
	bool (*takes)(const char *arg);
	/* Sets x->params before connecting, when they do not come from the arguments. */
	int (*build_params)(struct ctx *x);
	/* The call, one of: a typed task call taking the sid, one taking the sid and the value
	 * of .str, a typed reservation call taking the sid, or anything else. Each returns 0 or
	 * a negative errno with res->err set. */
	task_sid_fn *task;
	task_sid_str_fn *task_str;
	enum param_id str;
	rsv_sid_fn *rsv;
	int (*call)(struct ctx *x, struct result *res);
	/* Prints what the call returned; print_result shows a JSON result through .human. */
	int (*print)(struct ctx *x, const struct result *res);
	void (*human)(const struct tr_json *j);
	bool follow; /* print events as they come, reconnecting, instead of one result */
	const char *help;
};

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

/* Report a failed library call (r < 0); returns the exit status for it. */
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

/* Report a failed connection attempt; returns EXIT_TIMEOUT or EXIT_CONNECT. */
static int connect_failed(struct ctx *x, const char *what, int r) {
	struct tr_client_error e = {.errnum = r, .message = strerror(-r)};

	return report(x, what, r, &e) == EXIT_TIMEOUT ? EXIT_TIMEOUT : EXIT_CONNECT;
}

/* --socket, or the default path; malloc'd, NULL on ENOMEM. */
static char *socket_path(const struct ctx *x) {
	return x->socket ? strdup(x->socket) : tr_client_default_socket_path();
}

static int connect_ctx(struct ctx *x) {
	char *path = socket_path(x);
	int r;

	if (!path) {
		fprintf(stderr, "taskrouterctl: out of memory\n");
		return EXIT_OTHER;
	}
	r = tr_client_connect(path, x->timeout_ms, &x->c);
	if (r < 0) {
		char what[4200];

		snprintf(what, sizeof(what), "cannot connect to %s", path);
		r = connect_failed(x, what, r);
	}
	free(path);
	return r;
}

/* ------------------------------------------------------------------ printers */

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

/* The task a task method returns. */
static int print_task(struct ctx *x, const struct result *res) {
	char *s;

	if (!x->json) {
		print_task_human(res->task);
		return EXIT_OK;
	}
	s = tr_task_to_json(res->task);
	if (!s) {
		fprintf(stderr, "taskrouterctl: out of memory\n");
		return EXIT_OTHER;
	}
	printf("%s\n", s);
	free(s);
	return EXIT_OK;
}

static const char *dash(const char *s) {
	return s && *s ? s : "-";
}

#define ROW_FORMAT "%-34s %-13s %8s %7s %-20s %s\n"

static void print_task_row(const struct tr_task *t) {
	char prio[24] = "-", age[24] = "-";
	int64_t n;

	if (tr_task_get_int(t, "priority", &n) == 0) {
		snprintf(prio, sizeof(prio), "%" PRId64, n);
	}
	if (tr_task_get_int(t, "age", &n) == 0) {
		snprintf(age, sizeof(age), "%" PRId64, n);
	}
	printf(ROW_FORMAT, dash(tr_task_sid(t)), dash(tr_task_status(t)), prio, age,
		dash(tr_task_queue_name(t)), dash(tr_task_channel(t)));
}

/* Every page of task.list: a table, or with --json one document shaped like a last page. */
static int print_list(struct ctx *x, const struct result *res) {
	if (x->json) {
		fputs("{\"tasks\":[", stdout);
		for (size_t i = 0; i < res->n_tasks; i++) {
			char *t = tr_task_to_json(res->tasks[i]);

			printf("%s%s", i ? "," : "", t ? t : "null");
			free(t);
		}
		fputs("],\"next\":null}\n", stdout);
		return EXIT_OK;
	}
	printf(ROW_FORMAT, "SID", "STATUS", "PRIORITY", "AGE", "QUEUE", "CHANNEL");
	for (size_t i = 0; i < res->n_tasks; i++) {
		print_task_row(res->tasks[i]);
	}
	return EXIT_OK;
}

/* "prefix.field: value" for each of fields present in o (null ones left out). */
static void print_fields(const struct tr_json *o, const char *const *fields, const char *prefix) {
	for (const char *const *f = fields; *f; f++) {
		const struct tr_json *v = tr_json_get(o, *f);

		if (v && !tr_json_is(v, TR_JSON_NULL)) {
			printf("%s%s: ", prefix, *f);
			print_scalar(v);
			putchar('\n');
		}
	}
}

/* The JSON text (taken) of an object from the library as a tree; NULL on ENOMEM (said). */
static struct tr_json *tree_of(char *json) {
	struct tr_json *j = NULL;

	if (!json || tr_json_parse(json, strlen(json), &j, NULL) < 0) {
		fprintf(stderr, "taskrouterctl: out of memory\n");
		j = NULL;
	}
	free(json);
	return j;
}

/* A boolean for people: from a *_get_bool that returned r and set *b. */
static const char *yes_no(int r, bool b) {
	return r < 0 ? "-" : b ? "yes" : "no";
}

static const char *yes_no_member(const struct tr_json *o, const char *key) {
	bool b = false;
	int r = tr_json_get_bool(o, key, &b);

	return yes_no(r, b);
}

static const char *const reservation_fields[] = {
	"sid",
	"status",
	"taskSid",
	"workerSid",
	"version",
	"timeout",
	"canceledReasonCode",
	"dateCreated",
	"dateUpdated",
	NULL,
};

/* What a person wants to know of a reservation's task; 'get TASK' shows the rest. */
static const char *const reservation_task_fields[] = {
	"status",
	"queueName",
	"taskChannelUniqueName",
	"priority",
	"age",
	"attributes",
	NULL,
};

/* Print and free JSON text from the library (NULL: it ran out of memory). */
static int print_json_text(char *json) {
	if (!json) {
		fprintf(stderr, "taskrouterctl: out of memory\n");
		return EXIT_OTHER;
	}
	printf("%s\n", json);
	free(json);
	return EXIT_OK;
}

/* A reservation as JSON text (taken): as is with --json, else "key: value" lines. */
static int print_reservation_json(struct ctx *x, char *json) {
	struct tr_json *j;

	if (x->json) {
		return print_json_text(json);
	}
	j = tree_of(json);
	if (!j) {
		return EXIT_OTHER;
	}
	print_fields(j, reservation_fields, "");
	print_fields(tr_json_get(j, "task"), reservation_task_fields, "task.");
	tr_json_free(j);
	return EXIT_OK;
}

/* The reservation a reservation method returns: "key: value" lines, then its task's. */
static int print_reservation(struct ctx *x, const struct result *res) {
	return print_reservation_json(x, tr_reservation_to_json(res->rsv));
}

/* The result of an instruction call (tr_client_call): a Reservation as JSON text. */
static int print_instruction(struct ctx *x, const struct result *res) {
	char *json = strdup(res->json);

	return print_reservation_json(x, json);
}

#define RSV_FORMAT "%-34s %-9s %7s %-34s %-20s %s\n"

/* Every page of reservation.list: a table, or with --json one document like a last page. */
static int print_reservations(struct ctx *x, const struct result *res) {
	if (x->json) {
		fputs("{\"reservations\":[", stdout);
		for (size_t i = 0; i < res->n_rsvs; i++) {
			char *r = tr_reservation_to_json(res->rsvs[i]);

			printf("%s%s", i ? "," : "", r ? r : "null");
			free(r);
		}
		fputs("],\"next\":null}\n", stdout);
		return EXIT_OK;
	}
	printf(RSV_FORMAT, "SID", "STATUS", "TIMEOUT", "TASK", "QUEUE", "CHANNEL");
	for (size_t i = 0; i < res->n_rsvs; i++) {
		const struct tr_reservation *r = res->rsvs[i];
		const struct tr_task *t = tr_reservation_task(r);
		int64_t timeout = tr_reservation_timeout(r);
		char tmo[24] = "-";

		if (timeout >= 0) {
			snprintf(tmo, sizeof(tmo), "%" PRId64, timeout);
		}
		printf(RSV_FORMAT, dash(tr_reservation_sid(r)), dash(tr_reservation_status(r)), tmo,
			dash(tr_reservation_task_sid(r)), dash(tr_task_queue_name(t)),
			dash(tr_task_channel(t)));
	}
	return EXIT_OK;
}

/* The worker: who, which activity, whether routable, version and attributes. */
static int print_worker(struct ctx *x, const struct result *res) {
	static const char *const fields[] = {"version", "attributes", "dateStatusChanged", NULL};
	const struct tr_worker *w = res->worker;
	struct tr_json *j;

	if (x->json) {
		return print_json_text(tr_worker_to_json(w));
	}
	j = tree_of(tr_worker_to_json(w));
	if (!j) {
		return EXIT_OTHER;
	}
	printf("sid: %s\nname: %s\nactivity: %s (%s)\navailable: %s\n", dash(tr_worker_sid(w)),
		dash(tr_worker_name(w)), dash(tr_worker_activity_name(w)),
		dash(tr_worker_activity_sid(w)), yes_no_member(j, "available"));
	print_fields(j, fields, "");
	tr_json_free(j);
	return EXIT_OK;
}

/* The width of the widest string member key of the objects in arr, at least min. */
static int column_width(const struct tr_json *arr, const char *key, int min) {
	size_t w = (size_t)min;

	for (size_t i = 0; tr_json_is(arr, TR_JSON_ARRAY) && i < arr->u.arr.n; i++) {
		const char *v = tr_json_get_string(arr->u.arr.items[i], key);

		if (v && strlen(v) > w) {
			w = strlen(v);
		}
	}
	return w > 64 ? 64 : (int)w;
}

/* activity.list: the daemon's result with --json, else a table NAME SID AVAILABLE CURRENT,
 * the current one marked with a star. */
static int print_activities(struct ctx *x, const struct result *res) {
	size_t w = 4;

	if (x->json) {
		fputs("{\"activities\":[", stdout);
		for (size_t i = 0; i < res->n_acts; i++) {
			char *a = tr_activity_to_json(res->acts[i]);

			printf("%s%s", i ? "," : "", a ? a : "null");
			free(a);
		}
		fputs("]}\n", stdout);
		return EXIT_OK;
	}
	for (size_t i = 0; i < res->n_acts; i++) {
		const char *name = tr_activity_name(res->acts[i]);

		if (name && strlen(name) > w) {
			w = strlen(name) > 64 ? 64 : strlen(name);
		}
	}
	printf("%-*s %-34s %-9s %s\n", (int)w, "NAME", "SID", "AVAILABLE", "CURRENT");
	for (size_t i = 0; i < res->n_acts; i++) {
		const struct tr_activity *a = res->acts[i];
		bool avail = false;
		int r = tr_activity_get_bool(a, "available", &avail);

		/* no padding after the last word */
		printf(tr_activity_is_current(a) ? "%-*s %-34s %-9s *\n" : "%-*s %-34s %s\n",
			(int)w, dash(tr_activity_name(a)), dash(tr_activity_sid(a)),
			yes_no(r, avail));
	}
	return EXIT_OK;
}

/* channel.list: CHANNEL SID AVAILABLE CAPACITY ASSIGNED FREE%. */
static void human_channels(const struct tr_json *j) {
	const struct tr_json *a = tr_json_get(j, "channels");
	int w = column_width(a, "taskChannelUniqueName", 7);

	printf("%-*s %-34s %-9s %8s %8s %5s\n", w, "CHANNEL", "SID", "AVAILABLE", "CAPACITY",
		"ASSIGNED", "FREE%");
	for (size_t i = 0; tr_json_is(a, TR_JSON_ARRAY) && i < a->u.arr.n; i++) {
		const struct tr_json *it = a->u.arr.items[i];
		static const char *const nums[] = {
			"capacity", "assignedTasks", "availableCapacityPercentage"};
		char n[3][24];

		for (size_t k = 0; k < 3; k++) {
			int64_t v;

			if (tr_json_get_int(it, nums[k], &v) == 0) {
				snprintf(n[k], sizeof(n[k]), "%" PRId64, v);
			} else {
				snprintf(n[k], sizeof(n[k]), "-");
			}
		}
		printf("%-*s %-34s %-9s %8s %8s %5s\n", w,
			dash(tr_json_get_string(it, "taskChannelUniqueName")),
			dash(tr_json_get_string(it, "sid")), yes_no_member(it, "available"), n[0],
			n[1], n[2]);
	}
}

/* daemon.status for people: "key: value" lines, nested members joined with dots. */
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

/*
 * A JSON result: as is with --json and for rows without a human form (call), else through
 * the row's human form. Text that does not parse is printed as is too.
 */
static int print_result(struct ctx *x, const struct result *res) {
	void (*human)(const struct tr_json *j) = x->cmd->human;
	struct tr_json *j = NULL;

	if (x->json || !human || tr_json_parse(res->json, strlen(res->json), &j, NULL) < 0) {
		printf("%s\n", res->json);
	} else {
		human(j);
	}
	tr_json_free(j);
	return EXIT_OK;
}

/* One event: its params object with --json, else "SEQ EVENT task=… status=…". */
static int print_event(struct ctx *x, const struct result *res) {
	const struct tr_client_event *ev = res->event;

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
	return EXIT_OK;
}

/* Why the events since x->since are lost, for people. */
static void gap_why(const struct ctx *x, const struct tr_client_subscription *sub, char *buf,
	size_t size) {
	const char *r = sub->gap_reason ? sub->gap_reason : "";

	if (strcmp(r, "epoch") == 0) {
		snprintf(buf, size, "the daemon restarted (epoch %s, now %s)", dash(x->epoch),
			dash(sub->epoch));
	} else if (strcmp(r, "no-epoch") == 0) {
		snprintf(buf, size, "seq %" PRId64 " was given without its epoch", x->since);
	} else if (strcmp(r, "expired") == 0) {
		snprintf(buf, size, "seq %" PRId64 " is no longer kept", x->since);
	} else if (strcmp(r, "future") == 0) {
		snprintf(buf, size, "seq %" PRId64 " is ahead of the daemon", x->since);
	} else {
		snprintf(buf, size, "seq %" PRId64 " is gone", x->since);
	}
}

/* An optional string as JSON: quoted, or null. */
static void print_json_or_null(const char *s) {
	if (s) {
		print_json_string(stdout, s);
	} else {
		fputs("null", stdout);
	}
}

/*
 * The events since x->since (of epoch x->epoch) are lost: say why, and list the tasks of the
 * new subscription, which replace what the reader knew.
 */
static void print_gap(const struct ctx *x, const struct tr_client_subscription *sub) {
	struct tr_json *j = NULL;
	const struct tr_json *tasks;
	char why[256];

	gap_why(x, sub, why, sizeof(why));
	fprintf(stderr,
		"taskrouterctl: watch: skipped events: %s; resubscribed from seq %" PRId64
		", re-listing\n",
		why, sub->seq + 1);
	if (!sub->json || tr_json_parse(sub->json, strlen(sub->json), &j, NULL) < 0) {
		j = NULL;
	}
	tasks = tr_json_get(j, "tasks");
	if (x->json) {
		printf("{\"gap\":{\"reason\":");
		print_json_or_null(sub->gap_reason);
		printf(",\"since\":%" PRId64 ",\"previousEpoch\":", x->since);
		print_json_or_null(x->epoch);
		printf(",\"epoch\":");
		print_json_or_null(sub->epoch);
		printf(",\"resubscribedFrom\":%" PRId64, sub->seq + 1);
		if (sub->gap_data) {
			printf(",\"data\":%s", sub->gap_data);
		}
		printf("},\"tasks\":");
		if (tasks) {
			char *t = NULL;

			if (tr_json_dump(tasks, &t, NULL) == 0) {
				fputs(t, stdout);
			} else {
				fputs("[]", stdout);
			}
			free(t);
		} else {
			fputs("[]", stdout);
		}
		printf("}\n");
	} else {
		printf("skipped events: %s; resubscribed from seq %" PRId64 ", re-listing\n", why,
			sub->seq + 1);
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

/* Remember the daemon run that counts the seqs watch has seen (epoch may be NULL). 0 or
 * -ENOMEM. */
static int set_epoch(struct ctx *x, const char *epoch) {
	char *e = NULL;

	if (epoch && x->epoch && strcmp(epoch, x->epoch) == 0) {
		return 0;
	}
	if (epoch && !(e = strdup(epoch))) {
		return -ENOMEM;
	}
	free(x->epoch);
	x->epoch = e;
	return 0;
}

/* ------------------------------------------------------------------ calls */

static int call_list(struct ctx *x, struct result *res) {
	/* every page (the library follows task.list's `next`) */
	return tr_client_task_list(
		x->c, x->status, x->timeout_ms, &res->tasks, &res->n_tasks, &res->err);
}

static int call_hold(struct ctx *x, struct result *res) {
	return tr_client_task_hold(x->c, x->sid, x->worker, x->hold == 1, x->hold_url,
		x->hold_method, x->timeout_ms, &res->task, &res->err);
}

static int call_update_participant(struct ctx *x, struct result *res) {
	return tr_client_task_update_participant(x->c, x->sid, x->hold, x->hold_url, x->hold_method,
		x->timeout_ms, &res->task, &res->err);
}

static int call_transfer(struct ctx *x, struct result *res) {
	return tr_client_task_transfer(x->c, x->sid, x->to, x->mode, x->priority, x->attributes,
		x->timeout_ms, &res->task, &res->err);
}

static int call_method(struct ctx *x, struct result *res) {
	return tr_client_call(x->c, x->method, x->params, x->timeout_ms, &res->json, &res->err);
}

static int call_reservations(struct ctx *x, struct result *res) {
	/* every page, like list */
	return tr_client_reservation_list(
		x->c, x->status, x->timeout_ms, &res->rsvs, &res->n_rsvs, &res->err);
}

static int call_worker(struct ctx *x, struct result *res) {
	return tr_client_worker_get(x->c, x->timeout_ms, &res->worker, &res->err);
}

static int call_activities(struct ctx *x, struct result *res) {
	return tr_client_activity_list(x->c, x->timeout_ms, &res->acts, &res->n_acts, &res->err);
}

static int call_set_activity(struct ctx *x, struct result *res) {
	return tr_client_worker_set_activity(
		x->c, x->activity, x->reject_pending, x->timeout_ms, &res->worker, &res->err);
}

/* "WA" and 32 hex digits: an activity sid, which reject --activity passes as it is. */
static bool is_activity_sid(const char *s) {
	return strncmp(s, "WA", 2) == 0 && strlen(s) == 34 &&
	       strspn(s + 2, "0123456789abcdefABCDEF") == 32;
}

/*
 * No activity of the workspace is called name: the error worker.setActivity gives for an
 * unknown activity (-32602, param "activity", values: the names), so that reject --activity
 * and activity report it alike. Returns -EREMOTEIO, or -ENOMEM.
 */
static int unknown_activity(const char *name, struct tr_activity *const *acts, size_t n,
	struct tr_client_error *e) {
	struct tr_json *data = tr_json_new_object(), *values = tr_json_new_array();
	char *msg = NULL, *djson = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int err = 0;

	for (size_t i = 0; i < n; i++) {
		if (tr_activity_name(acts[i])) {
			tr_json_push(values, tr_json_new_string(tr_activity_name(acts[i])), &err);
		}
	}
	tr_json_put(data, "param", tr_json_new_string("activity"), &err);
	tr_json_put(data, "reason", tr_json_new_string("unknown activity"), &err);
	tr_json_put(data, "values", values, &err);
	if (err == 0) {
		err = tr_json_dump(data, &djson, NULL);
	}
	tr_json_free(data);
	if (err == 0) {
		f = open_memstream(&msg, &len);
	}
	if (!f) {
		free(djson);
		return -ENOMEM;
	}
	fprintf(f, "unknown activity '%s'; the activities are:", name);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s %s", i ? "," : "", dash(tr_activity_name(acts[i])));
	}
	if (n == 0) {
		fputs(" (none)", f);
	}
	if (fclose(f) != 0) {
		free(msg);
		free(djson);
		return -ENOMEM;
	}
	tr_client_error_done(e);
	*e = (struct tr_client_error){.errnum = -EREMOTEIO,
		.code = TR_CLIENT_INVALID_PARAMS,
		.message = msg,
		.data = djson};
	return -EREMOTEIO;
}

/*
 * reservation.reject takes an activity sid: a name given to --activity is looked up with
 * activity.list first (exactly, as worker.setActivity matches names), and nothing is
 * rejected when there is no such activity.
 */
static int call_reject(struct ctx *x, struct result *res) {
	struct tr_activity **acts = NULL;
	const struct tr_activity *a;
	const char *sid = x->activity;
	size_t n = 0;
	int r;

	if (sid && !is_activity_sid(sid)) {
		r = tr_client_activity_list(x->c, x->timeout_ms, &acts, &n, &res->err);
		if (r < 0) {
			return r;
		}
		a = tr_activity_list_find(acts, n, x->activity);
		sid = a ? tr_activity_sid(a) : NULL;
		if (!sid) {
			r = unknown_activity(x->activity, acts, n, &res->err);
			tr_activity_list_free(acts, n);
			return r;
		}
	}
	r = tr_client_reservation_reject(
		x->c, x->sid, sid, x->timeout_ms, &res->rsv, &res->err);
	tr_activity_list_free(acts, n);
	return r;
}

/* An instruction call's params: the sid, then the options in the order given. */
static int instruction_params(struct ctx *x) {
	struct tr_json *p = tr_json_new_object();
	int e = 0;

	tr_json_put(p, "sid", tr_json_new_string(x->sid), &e);
	for (size_t i = 0; x->members && i < x->members->u.obj.n; i++) {
		tr_json_put(p, x->members->u.obj.keys[i], tr_json_dup(x->members->u.obj.vals[i]),
			&e);
	}
	if (e < 0 || tr_json_dump(p, &x->built_params, NULL) < 0) {
		tr_json_free(p);
		fprintf(stderr, "taskrouterctl: out of memory\n");
		return EXIT_OTHER;
	}
	tr_json_free(p);
	x->params = x->built_params;
	return EXIT_OK;
}

/*
 * events.subscribe, resuming at x->since of epoch x->epoch when since >= 0, and set
 * x->last_seq and x->epoch. When the daemon cannot replay from there (it restarted, the
 * events are no longer kept, no epoch), the library subscribes from now: print the gap and
 * the current tasks.
 */
static int call_subscribe(struct ctx *x, struct result *res) {
	struct tr_client_subscription *sub = NULL;
	int r;

	r = tr_client_subscribe_resume(x->c, x->events.v, x->tasks.v, x->epoch, x->since,
		x->timeout_ms, &sub, &res->err);
	if (r < 0) {
		return r;
	}
	res->sub = sub;
	if (sub->gap) {
		print_gap(x, sub);
		x->last_seq = sub->seq;
	} else {
		/* Without since, events after the returned seq follow. With since, the replayed
		 * events carry their own seq, so keep since - 1 until they arrive. */
		x->last_seq = x->since < 0 ? sub->seq : x->since - 1;
	}
	return set_epoch(x, sub->epoch);
}

/* watch --epoch E goes with --since SEQ: together they name where to resume. */
static int watch_params(struct ctx *x) {
	if (x->epoch_arg && x->since < 0) {
		return usage_error(x->cmd->name, "--epoch needs --since");
	}
	return set_epoch(x, x->epoch_arg) < 0 ? EXIT_OTHER : EXIT_OK;
}

/* The row's call. Returns what libtaskrouter returns: 0, or a negative errno and res->err. */
static int invoke(struct ctx *x, struct result *res) {
	const struct cmd *c = x->cmd;

	if (c->task) {
		return c->task(x->c, x->sid, x->timeout_ms, &res->task, &res->err);
	}
	if (c->task_str) {
		const char *s = *(const char *const *)((const char *)x + params[c->str].offset);

		return c->task_str(x->c, x->sid, s, x->timeout_ms, &res->task, &res->err);
	}
	if (c->rsv) {
		return c->rsv(x->c, x->sid, x->timeout_ms, &res->rsv, &res->err);
	}
	return c->call(x, res);
}

static void result_done(struct result *res) {
	tr_task_free(res->task);
	tr_task_list_free(res->tasks, res->n_tasks);
	tr_reservation_free(res->rsv);
	tr_reservation_list_free(res->rsvs, res->n_rsvs);
	tr_worker_free(res->worker);
	tr_activity_list_free(res->acts, res->n_acts);
	free(res->json);
	tr_client_event_free(res->event);
	tr_client_subscription_free(res->sub);
	tr_client_error_done(&res->err);
	*res = (struct result){0};
}

static void free_secret(char *s, size_t len) {
	if (s) {
		explicit_bzero(s, len);
		free(s);
	}
}

static bool is_blank(char ch) {
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/*
 * update-token's params: {"token":…} with the token read from stdin, never from argv where
 * ps and shell histories would see it. White space around it is ignored. Every copy of the
 * token is wiped before it is freed, and none is ever printed.
 */
static int token_params(struct ctx *x) {
	char *tok, *q = NULL;
	size_t len = 0, lead, qlen = 0, qcap = 0;
	int r = EXIT_OK;

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
		free_secret(tok, TOKEN_MAX + 1);
		return usage_error(x->cmd->name, "the token on stdin is too long");
	}
	while (len > 0 && is_blank(tok[len - 1])) {
		len--;
	}
	tok[len] = '\0';
	lead = strspn(tok, " \t\r\n");
	len -= lead;
	if (len == 0 || strlen(tok + lead) != len || strpbrk(tok + lead, " \t\r\n")) {
		r = usage_error(x->cmd->name, "expected one token on stdin");
	} else if (tr_json_quote_append(tok + lead, len, &q, &qlen, &qcap) < 0 ||
		   asprintf(&x->secret_params, "{\"token\":%.*s}", (int)qlen, q) < 0) {
		x->secret_params = NULL;
		fprintf(stderr, "taskrouterctl: out of memory\n");
		r = EXIT_OTHER;
	}
	x->params = x->secret_params;
	free_secret(q, qlen);
	free_secret(tok, TOKEN_MAX + 1);
	return r;
}

/* ------------------------------------------------------------------ parsing */

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

static int bad_value(const struct ctx *x, const struct param *p, const char *v) {
	const char *cmd = x->cmd ? x->cmd->name : NULL;

	if (p->bad) {
		return usage_error(cmd, "%s", p->bad);
	}
	return usage_error(cmd, "invalid --%s '%s'", p->name, v);
}

/* v as a decimal integer >= min; false when it is not one. */
static bool parse_int(const char *v, int64_t min, int64_t *ret) {
	char *end;
	int64_t n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < min) {
		return false;
	}
	*ret = n;
	return true;
}

/* Check the value of an option with a JSON key and set it in x->members (the last one
 * given wins). no: the --no-NAME twin of a flag. */
static int set_member(struct ctx *x, const struct param *p, const char *v, bool no) {
	struct tr_json *j;
	int64_t n;
	int e = 0;

	switch (p->type) {
	case T_FLAG:
		j = tr_json_new_bool(!no);
		break;
	case T_NUMBER:
		if (!parse_int(v, 0, &n)) {
			return bad_value(x, p, v);
		}
		j = tr_json_new_int(n);
		break;
	case T_BOOL_OR_STRING:
		if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
			j = tr_json_new_bool(v[0] == 't');
		} else if (*v) {
			j = tr_json_new_string(v);
		} else {
			return bad_value(x, p, v);
		}
		break;
	default:
		j = tr_json_new_string(v);
		break;
	}
	if (!x->members) {
		x->members = tr_json_new_object();
	}
	if (tr_json_put(x->members, p->key, j, &e) < 0) {
		fprintf(stderr, "taskrouterctl: out of memory\n");
		return EXIT_OTHER;
	}
	return EXIT_OK;
}

/* Check the value v of an argument or option against its row and store it in x. */
static int set_param(struct ctx *x, const struct param *p, const char *v, bool no) {
	char *dst = (char *)x + p->offset;
	struct filter *f;
	char *end;
	int64_t n;
	double d;

	if (p->key) {
		return set_member(x, p, v, no);
	}
	switch (p->type) {
	case T_FLAG:
		*(bool *)dst = true;
		return EXIT_OK;
	case T_STRING:
		break;
	case T_NONEMPTY:
		if (!*v) {
			return bad_value(x, p, v);
		}
		break;
	case T_OBJECT:
		if (!is_json_object(v)) {
			return bad_value(x, p, v);
		}
		break;
	case T_MODE:
		if (strcasecmp(v, "warm") == 0) {
			v = "WARM";
		} else if (strcasecmp(v, "cold") == 0) {
			v = "COLD";
		} else {
			return bad_value(x, p, v);
		}
		break;
	case T_ON_OFF:
		if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
			return bad_value(x, p, v);
		}
		*(int *)dst = strcmp(v, "on") == 0;
		return EXIT_OK;
	case T_SECONDS:
		errno = 0;
		d = strtod(v, &end);
		if (errno || end == v || *end || !(d >= 0) || d > 86400.0 * 365) {
			return bad_value(x, p, v);
		}
		*(int *)dst = (int)(d * 1000.0 + 0.5);
		return EXIT_OK;
	case T_NUMBER:
	case T_COUNT:
		if (!parse_int(v, p->type == T_COUNT ? 1 : 0, &n)) {
			return bad_value(x, p, v);
		}
		*(int64_t *)dst = n;
		return EXIT_OK;
	case T_FILTER:
		f = (struct filter *)(void *)dst;
		if (f->n >= MAX_FILTERS) {
			return bad_value(x, p, v);
		}
		f->v[f->n++] = v;
		return EXIT_OK;
	case T_BOOL_OR_STRING:
		assert(!"only with a JSON key");
		return EXIT_OTHER;
	}
	*(const char **)dst = v;
	return EXIT_OK;
}

/* The row of what getopt_long returned: GETOPT_VAL or GETOPT_NO (*no set) + the row's
 * index, or a short option. */
static const struct param *param_of(int opt, bool *no) {
	*no = opt >= GETOPT_NO;
	if (opt >= GETOPT_NO) {
		return &params[opt - GETOPT_NO];
	}
	if (opt >= GETOPT_VAL) {
		return &params[opt - GETOPT_VAL];
	}
	for (int id = 0; id < _PARAM_MAX; id++) {
		if (params[id].short_name == opt) {
			return &params[id];
		}
	}
	return NULL;
}

static size_t list_len(const enum param_id *l) {
	size_t n = 0;

	while (l && l[n]) {
		n++;
	}
	return n;
}

static bool in_list(const enum param_id *l, enum param_id id) {
	for (; l && *l; l++) {
		if (*l == id) {
			return true;
		}
	}
	return false;
}

/* Whether the command has an option called name (which then hides a common one). */
static bool has_option(const struct cmd *c, const char *name) {
	for (const enum param_id *id = c ? c->opts : NULL; id && *id; id++) {
		if (strcmp(params[*id].name, name) == 0) {
			return true;
		}
	}
	return false;
}

/* A flag with a JSON key also has a --no-NAME twin that sends false. */
static bool has_no_twin(const struct param *p) {
	return p->key && p->type == T_FLAG;
}

/*
 * Parse the options in argv: before the command name (x->cmd NULL) the common ones and
 * --version, up to the first argument; after it the command's own and the common ones,
 * anywhere among its arguments ("wrapup SID --reason R"), which glibc moves to
 * argv[optind...]; "--" ends them. A command's option hides a common one of the same name
 * (the instruction calls' --timeout N). Stops at --help or --version, leaving x->help or
 * x->version set.
 */
static int parse_options(struct ctx *x, int argc, char **argv) {
	static char no_names[_PARAM_MAX][64];
	const enum param_id *lists[2] = {x->cmd ? x->cmd->opts : NULL,
		x->cmd ? common_opts : main_opts};
	struct option longopts[2 * _PARAM_MAX + 1];
	char shortopts[_PARAM_MAX + 2];
	size_t n = 0, ns = 0;

	if (!x->cmd) {
		shortopts[ns++] = '+';
	}
	for (size_t l = 0; l < 2; l++) {
		for (const enum param_id *id = lists[l]; id && *id; id++) {
			const struct param *p = &params[*id];

			if (l == 1 && has_option(x->cmd, p->name)) {
				continue;
			}
			longopts[n++] = (struct option){p->name,
				p->arg ? required_argument : no_argument, NULL, GETOPT_VAL + *id};
			if (has_no_twin(p)) {
				snprintf(no_names[*id], sizeof(no_names[*id]), "no-%s", p->name);
				longopts[n++] = (struct option){
					no_names[*id], no_argument, NULL, GETOPT_NO + *id};
			}
			if (p->short_name) {
				shortopts[ns++] = p->short_name;
			}
		}
	}
	longopts[n] = (struct option){0};
	shortopts[ns] = '\0';

	/* 0 makes glibc reinitialise its scanner for the command after main()'s pass. */
	optind = 0;
	opterr = 0;
	while (!x->help && !x->version) {
		int opt = getopt_long(argc, argv, shortopts, longopts, NULL);
		const struct param *p;
		bool no;
		int r;

		if (opt == -1) {
			break;
		}
		if (opt == '?') {
			if (optopt >= GETOPT_VAL) {
				/* a known option with a value missing, or one it does not take */
				p = param_of(optopt, &no);
				return usage_error(x->cmd ? x->cmd->name : NULL, "--%s%s %s",
					no ? "no-" : "", p->name,
					p->arg && !no ? "needs a value" : "takes no value");
			}
			if (x->cmd && optopt) {
				return usage_error(x->cmd->name, "invalid option");
			}
			return usage_error(x->cmd ? x->cmd->name : NULL, "unknown option '%s'",
				argv[optind - 1]);
		}
		p = param_of(opt, &no);
		assert(p);
		r = set_param(x, p, optarg, no);
		if (r != EXIT_OK) {
			return r;
		}
	}
	return EXIT_OK;
}

/* Append to the string in buf (of size bytes, len used); returns the new length. */
static size_t append(char *buf, size_t size, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static size_t append(char *buf, size_t size, size_t len, const char *fmt, ...) {
	va_list ap;
	int n;

	if (len >= size) {
		return len;
	}
	va_start(ap, fmt);
	n = vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
	return n < 0 ? len : len + (size_t)n;
}

/* One option for usage lines: "--hold-url U", "--reject-pending", "--[no-]muted". */
static size_t option_usage(char *buf, size_t size, size_t len, const struct param *p) {
	return append(buf, size, len, "--%s%s%s%s", has_no_twin(p) ? "[no-]" : "", p->name,
		p->arg ? " " : "", p->arg ? p->arg : "");
}

/*
 * The usage line of c's arguments and options: "SID WORKER on|off [--hold-url U] ...".
 * Options that must be given come first, unbracketed. brief: the optional options are
 * "[OPTION]..." (cmd_help lists them).
 */
static void synopsis_as(const struct cmd *c, bool brief, char *buf, size_t size) {
	size_t len = 0;
	bool all = !brief || list_len(c->opts) == list_len(c->need);

	buf[0] = '\0';
	for (size_t i = 0; i < MAX_ARGS && c->args[i]; i++) {
		const struct param *p = &params[c->args[i]];

		len = append(buf, size, len, "%s%s%s%s", len ? " " : "", p->optional ? "[" : "",
			p->arg, p->optional ? "]" : "");
	}
	for (const enum param_id *id = c->need; id && *id; id++) {
		len = append(buf, size, len, "%s", len ? " " : "");
		len = option_usage(buf, size, len, &params[*id]);
	}
	for (const enum param_id *id = c->opts; all && id && *id; id++) {
		if (!in_list(c->need, *id)) {
			len = append(buf, size, len, "%s[", len ? " " : "");
			len = option_usage(buf, size, len, &params[*id]);
			len = append(buf, size, len, "]%s",
				params[*id].type == T_FILTER ? "..." : "");
		}
	}
	if (!all) {
		len = append(buf, size, len, "%s[OPTION]...", len ? " " : "");
	}
}

/* "NAME ARGS [OPTIONS]" for usage lines, brief when too long; true when brief. */
static bool synopsis(const struct cmd *c, char *buf, size_t size) {
	size_t n = strlen(c->name);

	synopsis_as(c, false, buf, size);
	if (n + 1 + strlen(buf) <= USAGE_WIDTH) {
		return false;
	}
	synopsis_as(c, true, buf, size);
	return true;
}

/* The separator between a command's name and its synopsis (none for an empty one). */
static const char *sep(const char *synopsis) {
	return *synopsis ? " " : "";
}

/* Check the number and the values of the positional arguments, argv[optind...], and that
 * the options the command needs were given. */
static int parse_args(struct ctx *x, int argc, char **argv) {
	const struct cmd *c = x->cmd;
	size_t n = (size_t)(argc - optind), min = 0, max = 0;

	for (; max < MAX_ARGS && c->args[max]; max++) {
		min += !params[c->args[max]].optional;
	}
	if (n < min || n > max) {
		char line[512];

		synopsis(c, line, sizeof(line));
		return usage_error(c->name, "%s (usage: %s%s%s)",
			n < min ? "missing argument" : "too many arguments", c->name, sep(line),
			line);
	}
	for (size_t i = 0; i < n; i++) {
		int r = set_param(x, &params[c->args[i]], argv[optind + i], false);

		if (r != EXIT_OK) {
			return r;
		}
	}
	for (const enum param_id *id = c->need; id && *id; id++) {
		const struct param *p = &params[*id];
		bool given = p->key ? tr_json_get(x->members, p->key) != NULL
				    : *(const char *const *)((const char *)x + p->offset) != NULL;

		if (!given) {
			return usage_error(c->name, "missing --%s", p->name);
		}
	}
	return EXIT_OK;
}

/* Whether an option called name takes a value (common and command options alike). */
static bool takes_value(const char *name) {
	for (int id = 0; id < _PARAM_MAX; id++) {
		if (params[id].name && params[id].arg && strcmp(params[id].name, name) == 0) {
			return true;
		}
	}
	return false;
}

/*
 * The first positional argument after the command name argv[0], found before parsing (it
 * picks between rows of the same name): an option that takes a value skips the next word.
 * NULL when there is none.
 */
static const char *first_arg(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			return i + 1 < argc ? argv[i + 1] : NULL;
		}
		if (a[0] != '-' || a[1] == '\0') {
			return a;
		}
		if (a[1] == '-' && !strchr(a, '=') && takes_value(a + 2)) {
			i++;
		}
	}
	return NULL;
}

/* call SID (reservation.call) or call METHOD: method names have a dot, sids do not. */
static bool is_not_method(const char *arg) {
	return arg && !strchr(arg, '.');
}

/* ------------------------------------------------------------------ commands */

static const struct cmd cmds[] = {
	{"list", {0}, OPTS(O_STATUS), "task.list", .call = call_list, .print = print_list,
		.help = "List the cached tasks (task.list)."},
	{"get", {P_SID}, NULL, "task.get", .task = tr_client_task_get, .print = print_task,
		.help = "Show one task (task.get)."},
	{"complete", {P_SID, P_REASON}, NULL, "task.complete", .task_str = tr_client_task_complete,
		.str = P_REASON, .print = print_task, .help = "Complete a task (task.complete)."},
	{"wrapup", {P_SID}, OPTS(O_REASON), "task.wrapUp", .task_str = tr_client_task_wrap_up,
		.str = O_REASON, .print = print_task,
		.help = "Move a task to wrapping (task.wrapUp)."},
	{"set-attributes", {P_SID, P_ATTRIBUTES}, NULL, "task.setAttributes",
		.task_str = tr_client_task_set_attributes, .str = P_ATTRIBUTES, .print = print_task,
		.help = "Replace a task's attributes with the JSON object (task.setAttributes)."},
	{"set-virtual-start-time", {P_SID, P_TIME}, NULL, "task.setVirtualStartTime",
		.task_str = tr_client_task_set_virtual_start_time, .str = P_TIME,
		.print = print_task,
		.help = "Set the virtual start time: RFC 3339 or epoch seconds "
			"(task.setVirtualStartTime)."},
	{"fetch", {P_SID}, NULL, "task.fetchLatestVersion",
		.task = tr_client_task_fetch_latest_version, .print = print_task,
		.help = "Fetch the latest version from upstream (task.fetchLatestVersion)."},
	{"hold", {P_SID, P_WORKER, P_ON_OFF}, OPTS(O_HOLD_URL, O_HOLD_METHOD), "task.hold",
		.call = call_hold, .print = print_task,
		.help = "Put a worker's leg on or off hold (task.hold)."},
	{"kick", {P_SID, P_WORKER}, NULL, "task.kick", .task_str = tr_client_task_kick,
		.str = P_WORKER, .print = print_task,
		.help = "Remove a worker from a conference (task.kick)."},
	{"update-participant", {P_SID}, OPTS(O_HOLD, O_HOLD_URL, O_HOLD_METHOD),
		"task.updateParticipant", .call = call_update_participant, .print = print_task,
		.help = "Update this worker's participant (task.updateParticipant)."},
	{"transfer", {P_SID, P_TO}, OPTS(O_MODE, O_PRIORITY, O_ATTRIBUTES),
		"task.transfer", .call = call_transfer, .print = print_task,
		.help = "Transfer a task to a worker or queue (task.transfer)."},
	{"cancel-transfer", {P_SID}, NULL, "task.cancelTransfer",
		.task = tr_client_task_cancel_transfer, .print = print_task,
		.help = "Cancel the outgoing transfer (task.cancelTransfer)."},
	{"reservations", {0}, OPTS(O_STATUS), "reservation.list", .call = call_reservations,
		.print = print_reservations,
		.help = "List this worker's reservations (reservation.list): the live ones, or "
			"those with\nstatus S."},
	{"reservation", {P_SID}, NULL, "reservation.get", .rsv = tr_client_reservation_get,
		.print = print_reservation,
		.help = "Show one reservation (reservation.get). Any SID of a reservation may be "
			"its task's\nsid instead: this worker's live reservation for the task."},
	{"accept", {P_SID}, NULL, "reservation.accept", .rsv = tr_client_reservation_accept,
		.print = print_reservation,
		.help = "Accept a pending reservation (reservation.accept)."},
	{"reject", {P_SID}, OPTS(O_ACTIVITY), "reservation.reject", .call = call_reject,
		.print = print_reservation,
		.help = "Reject a pending reservation (reservation.reject), and with --activity "
			"move the\nworker to that activity (a name, looked up with activity.list, "
			"or a WA sid)."},
	{"worker", {0}, NULL, "worker.get", .call = call_worker, .print = print_worker,
		.help = "Show the worker: name, activity, availability, version, attributes "
			"(worker.get)."},
	{"activities", {0}, NULL, "activity.list", .call = call_activities,
		.print = print_activities,
		.help = "List the activities; the current one is marked (activity.list)."},
	{"activity", {P_ACTIVITY}, OPTS(O_REJECT_PENDING), "worker.setActivity",
		.call = call_set_activity, .print = print_worker,
		.help = "Set the worker's activity, by exact name or WA sid (worker.setActivity); "
			"--reject-pending\nalso rejects the pending reservations (not allowed "
			"for an available activity)."},
	{"channels", {0}, NULL, "channel.list", .call = call_method, .print = print_result,
		.human = human_channels,
		.help = "List the worker's channels: capacity and availability (channel.list)."},
	{"conference", {P_SID}, CONFERENCE_OPTS, "reservation.conference",
		.build_params = instruction_params, .call = call_method, .print = print_instruction,
		.help = "Conference instruction: dial the worker into a conference with the caller "
			"(reservation.conference)."},
	{"dequeue", {P_SID}, DEQUEUE_OPTS, "reservation.dequeue", .build_params = instruction_params,
		.call = call_method, .print = print_instruction,
		.help = "Dequeue instruction: connect the queued call to the worker "
			"(reservation.dequeue)."},
	{"call", {P_SID}, CALL_OPTS, "reservation.call", .need = OPTS(O_FROM, O_URL),
		.takes = is_not_method, .build_params = instruction_params, .call = call_method,
		.print = print_instruction,
		.help = "Call instruction: call the worker from FROM, and on answer fetch the TwiML "
			"at URL\n(reservation.call)."},
	{"redirect", {P_SID}, REDIRECT_OPTS, "reservation.redirect", .need = OPTS(O_CALL_SID, O_URL),
		.build_params = instruction_params, .call = call_method, .print = print_instruction,
		.help = "Redirect instruction: move the call CALL to the TwiML at URL "
			"(reservation.redirect)."},
	{"watch", {0}, OPTS(O_EVENT, O_TASK, O_SINCE, O_EPOCH, O_COUNT),
		"events.subscribe", .build_params = watch_params, .call = call_subscribe,
		.print = print_event, .follow = true,
		.help = "Print events as they come, one per line. Reconnects when the daemon "
			"restarts and\n"
			"resumes after the last seen seq of its epoch; reports a gap and re-lists the "
			"tasks\n"
			"when events were lost (the daemon restarted, or no longer has them).\n"
			"--since SEQ --epoch EPOCH starts there (the epoch is in 'status' and in each "
			"--json event).\n"
			"--count N exits after N events."},
	{"status", {0}, NULL, "daemon.status", .call = call_method, .print = print_result,
		.human = human_flat, .help = "Show the daemon status (daemon.status)."},
	{"update-token", {0}, NULL, "daemon.updateToken", .build_params = token_params,
		.call = call_method, .print = print_result, .human = human_ok,
		.help = "Give the daemon a new worker token, read from stdin "
			"(daemon.updateToken)."},
	{"describe", {0}, NULL, "rpc.describe", .call = call_method, .print = print_result,
		.human = human_describe,
		.help = "List the methods and events of the daemon (rpc.describe)."},
	{"call", {P_METHOD, P_PARAMS}, NULL, NULL, .call = call_method, .print = print_result,
		.help = "Call any method and print the result JSON (METHOD has a dot: task.get)."},
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

/* The row called name that takes arg, its first positional argument (or NULL). */
static const struct cmd *find_cmd(const char *name, const char *arg) {
	for (size_t i = 0; i < N_CMDS; i++) {
		if (strcmp(cmds[i].name, name) == 0 && (!cmds[i].takes || cmds[i].takes(arg))) {
			return &cmds[i];
		}
	}
	return NULL;
}

static const char exit_help[] = "Exit status: 0 ok, 1 other failure, 2 usage error, "
				"3 connection failure,\n"
				"4 RPC or upstream error, 5 timeout.\n";

/* What a value of p is, for the option lists of cmd_help. */
static const char *type_help(const struct param *p) {
	switch (p->type) {
	case T_FLAG:
		return has_no_twin(p) ? "true; --no-: false" : "";
	case T_NUMBER:
		return "integer";
	case T_BOOL_OR_STRING:
		return "true, false or a string";
	default:
		return "string";
	}
}

/* The usage of every row called c->name ("call" has two), with a list of the options that
 * are members of the params, or that the usage line leaves out. */
static void cmd_help(const struct cmd *c) {
	char line[2048];

	for (size_t i = 0; i < N_CMDS; i++) {
		const struct cmd *r = &cmds[i];
		bool brief, listed = false;

		if (strcmp(r->name, c->name) != 0) {
			continue;
		}
		brief = synopsis(r, line, sizeof(line));
		printf("Usage: taskrouterctl [--json] [--socket PATH] [--timeout SECONDS] %s%s%s\n\n"
		       "%s\n\n",
			r->name, sep(line), line, r->help);
		for (const enum param_id *id = r->opts; id && *id; id++) {
			const struct param *p = &params[*id];
			const char *t = type_help(p);
			size_t len;

			if (!p->key && !brief) {
				continue;
			}
			if (!listed) {
				printf("Options%s%s%s:\n",
					p->key ? " (members of the params of " : "",
					p->key ? r->method : "", p->key ? ")" : "");
				listed = true;
			}
			len = option_usage(line, sizeof(line), 0, p);
			printf("  %s%*s %s%s%s%s\n", line, len < 44 ? (int)(44 - len) : 0, "",
				p->key ? p->key : "", *t && p->key ? " (" : "", p->key ? t : "",
				*t && p->key ? ")" : "");
		}
		if (has_option(r, "timeout")) {
			printf("After the command name, --timeout N is the instruction's timeout: "
			       "give the call's\ntimeout before the name (taskrouterctl --timeout "
			       "10 %s ...).\n",
				r->name);
		}
		if (listed || has_option(r, "timeout")) {
			putchar('\n');
		}
	}
	printf("Common options: --json, --socket PATH, --timeout SECONDS, --help.\n%s", exit_help);
}

static void main_help(void) {
	char line[2048];

	printf("Usage: taskrouterctl [--json] [--socket PATH] [--timeout SECONDS] COMMAND "
	       "[ARGS]\n\n"
	       "Commands:\n");
	for (size_t i = 0; i < N_CMDS; i++) {
		synopsis(&cmds[i], line, sizeof(line));
		printf("  %s%s%s\n", cmds[i].name, sep(line), line);
	}
	printf("\nOptions:\n"
	       "  --json             one JSON document per result, one JSON line per event\n"
	       "  --socket PATH      daemon socket (default: $TASKROUTERD_SOCKET,\n"
	       "                     $XDG_RUNTIME_DIR/taskrouterd/socket, "
	       "/run/taskrouterd/socket)\n"
	       "  --timeout SECONDS  per-call timeout (default 30)\n"
	       "  --help             this text; 'taskrouterctl COMMAND --help' for a command\n"
	       "  --version          print the version\n\n%s",
		exit_help);
}

/* ------------------------------------------------------------------ the runner */

static int64_t mono_ms(void) {
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Print events until --count of them. When the connection is lost (the daemon restarts),
 * reconnect with a growing delay and subscribe again after the last seq seen, for up to
 * WATCH_GIVE_UP_MS. Only the first connection and subscription, and a subscription the
 * daemon refuses, end it with their error.
 */
static int follow(struct ctx *x) {
	const struct cmd *c = x->cmd;
	struct result res = {0};
	int64_t seen = 0, lost_at = -1;
	int backoff = WATCH_BACKOFF_MIN_MS;
	bool first = true;
	char *path;
	int r;

	for (;;) {
		path = socket_path(x);
		if (!path) {
			return EXIT_OTHER;
		}
		r = tr_client_connect(path, x->timeout_ms, &x->c);
		free(path);
		if (r < 0 && first) {
			return connect_failed(x, "cannot connect", r);
		}
		if (r == 0) {
			r = invoke(x, &res);
			if (r < 0 &&
				(first || (r == -EREMOTEIO && res.err.code != TR_CLIENT_TIMEOUT))) {
				/* Not transient: the daemon refused the subscription itself. */
				r = report(x, x->method, r, &res.err);
				result_done(&res);
				return r;
			}
		}
		if (r == 0) {
			if (!first) {
				fprintf(stderr,
					"taskrouterctl: watch: reconnected, resuming after seq "
					"%" PRId64 " of epoch %s\n",
					x->last_seq, dash(x->epoch));
			}
			first = false;
			lost_at = -1;
			backoff = WATCH_BACKOFF_MIN_MS;
			result_done(&res);
			while ((r = tr_client_next_event(x->c, -1, &res.event)) >= 0) {
				if (r == 0) {
					continue;
				}
				if (res.event->seq > x->last_seq) {
					x->last_seq = res.event->seq;
				}
				if (res.event->epoch && set_epoch(x, res.event->epoch) < 0) {
					result_done(&res);
					return EXIT_OTHER;
				}
				(void)c->print(x, &res);
				res.event = tr_client_event_free(res.event);
				if (x->count > 0 && ++seen >= x->count) {
					return EXIT_OK;
				}
			}
			fprintf(stderr,
				"taskrouterctl: watch: connection lost (%s), reconnecting\n",
				strerror(-r));
		}
		result_done(&res);
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
		x->since = x->last_seq >= 0 ? x->last_seq + 1 : -1;
	}
}

/* Run x->cmd with its argv (argv[0] is the command name). */
static int run(struct ctx *x, int argc, char **argv) {
	const struct cmd *c = x->cmd;
	struct result res = {0};
	int r;

	x->method = c->method;
	r = parse_options(x, argc, argv);
	if (r == EXIT_OK && x->help) {
		cmd_help(c);
		return EXIT_OK;
	}
	if (r == EXIT_OK) {
		r = parse_args(x, argc, argv);
	}
	if (r == EXIT_OK && c->build_params) {
		r = c->build_params(x);
	}
	if (r != EXIT_OK) {
		return r;
	}
	if (c->follow) {
		return follow(x);
	}
	if (c->build_params == token_params) {
		/* The token goes only to a daemon of our own uid or root, whatever the
		 * environment says to trust for other calls. */
		(void)unsetenv("TASKROUTERD_TRUST_UID");
	}
	r = connect_ctx(x);
	if (r != EXIT_OK) {
		return r;
	}
	r = invoke(x, &res);
	r = r < 0 ? report(x, x->method, r, &res.err) : c->print(x, &res);
	result_done(&res);
	return r;
}

int main(int argc, char **argv) {
	struct ctx x = {
		.timeout_ms = DEFAULT_TIMEOUT_MS,
		.hold = -1,
		.priority = -1,
		.since = -1,
		.count = -1,
		.last_seq = -1,
	};
	int r;

	r = parse_options(&x, argc, argv);
	if (r != EXIT_OK) {
		return r;
	}
	if (x.help) {
		main_help();
		return EXIT_OK;
	}
	if (x.version) {
		printf("taskrouterctl %s\n", TR_VERSION);
		return EXIT_OK;
	}
	if (optind >= argc) {
		return usage_error(NULL, "missing command");
	}
	x.cmd = find_cmd(argv[optind], first_arg(argc - optind, argv + optind));
	if (!x.cmd) {
		return usage_error(NULL, "unknown command '%s'", argv[optind]);
	}
	r = run(&x, argc - optind, argv + optind);
	x.c = tr_client_close(x.c);
	free(x.epoch);
	tr_json_free(x.members);
	free(x.built_params);
	if (x.secret_params) {
		free_secret(x.secret_params, strlen(x.secret_params));
	}
	if (fflush(stdout) != 0 && r == EXIT_OK) {
		r = EXIT_OTHER;
	}
	return r;
}
