/*
 * taskrouterctl — command line client of taskrouterd, a thin shell over libtaskrouter.
 *
 * Human output by default (a table for a list, "key: value" lines for one task, reservation
 * or the worker, a short summary for the status, one line per event; times as local dates
 * with their age, never epoch seconds), with colours and aligned columns when stdout is a
 * terminal (human.c); --json prints one compact JSON document per result and one JSON line
 * per event, indented on a terminal, and errors as one JSON line on stderr.
 * Exit status: 0 ok, 1 other failure, 2 usage (the CLI's or the daemon's -32602), 3
 * connection failure, 4 RPC/upstream error, 5 timeout (see taskrouterctl(1)).
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

#include "human.h"
#include "json.h"
#include "tr-build.h"

enum {
	EXIT_OK = 0,
	EXIT_OTHER = 1,
	EXIT_USAGE = 2,
	EXIT_CONNECT = 3,
	EXIT_RPC = 4,
	EXIT_TIMEOUT = 5,
};

enum {
	COLOR_AUTO,
	COLOR_ALWAYS,
	COLOR_NEVER,
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
	bool json, help, version, verbose;
	int color;   /* --color: COLOR_AUTO, COLOR_ALWAYS or COLOR_NEVER */
	bool pretty; /* stdout is a terminal: indented JSON, aligned "key: value" lines */
	const char *topic; /* help COMMAND */

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
	T_COLOR,    /* int: COLOR_AUTO, COLOR_ALWAYS or COLOR_NEVER */
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
	P_TOPIC,
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
	O_VERBOSE,
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
	O_COLOR,
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
	[P_TOPIC] = {NULL, "COMMAND", T_STRING, AT(topic), .optional = true},
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
	[O_VERBOSE] = {"verbose", NULL, T_FLAG, AT(verbose), .short_name = 'v'},
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
	[O_COLOR] = {"color", "auto|always|never", T_COLOR, AT(color),
		"--color takes 'auto', 'always' or 'never'"},
	[O_SOCKET] = {"socket", "PATH", T_NONEMPTY, AT(socket), "empty --socket PATH"},
	[O_TIMEOUT] = {"timeout", "SECONDS", T_SECONDS, AT(timeout_ms)},
	[O_HELP] = {"help", NULL, T_FLAG, AT(help), .short_name = 'h'},
	[O_VERSION] = {"version", NULL, T_FLAG, AT(version), .short_name = 'V'},
};
#undef AT

/* A list of option rows, ended by P_NONE (a static compound literal). */
#define OPTS(...) ((const enum param_id[]){__VA_ARGS__, P_NONE})
static const enum param_id common_opts[] = {O_JSON, O_COLOR, O_SOCKET, O_TIMEOUT, O_HELP, P_NONE};
static const enum param_id main_opts[] = {
	O_JSON, O_COLOR, O_SOCKET, O_TIMEOUT, O_HELP, O_VERSION, P_NONE};
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
	int (*human)(struct ctx *x, const struct tr_json *j);
	bool follow; /* print events as they come, reconnecting, instead of one result */
	/* Runs instead of connecting and calling (help). */
	int (*local)(struct ctx *x);
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
		if (e && e->code == TR_CLIENT_TIMEOUT) {
			return EXIT_TIMEOUT;
		}
		/* The daemon found an argument invalid: a usage error, as when the CLI finds
		 * it (an unknown method, -32601, is not: the commands only call known ones, so
		 * it means a daemon older than the command). */
		return e && e->code == TR_CLIENT_INVALID_PARAMS ? EXIT_USAGE : EXIT_RPC;
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

/*
 * Report a failed library call (r < 0) on stderr: a line for people, or with --json one
 * line {"error":{code, message, data, errno}} and nothing else, so that stdout holds only
 * results. Returns the exit status for it.
 */
static int report(struct ctx *x, const char *what, int r, const struct tr_client_error *e) {
	const char *msg = e && e->message ? e->message : strerror(-r);

	if (x->json) {
		fprintf(stderr, "{\"error\":{\"code\":%d,\"message\":",
			r == -EREMOTEIO && e ? e->code : 0);
		print_json_string(stderr, msg);
		if (r == -EREMOTEIO && e && e->data) {
			fprintf(stderr, ",\"data\":%s", e->data);
		}
		fprintf(stderr, ",\"errno\":%d}}\n", -r);
	} else if (r == -EREMOTEIO && e) {
		fprintf(stderr, "taskrouterctl: %s: %s (code %d, %s)\n", what, msg, e->code,
			tr_client_code_str(e->code));
		if (e->data) {
			fprintf(stderr, "  data: %s\n", e->data);
		}
	} else {
		fprintf(stderr, "taskrouterctl: %s: %s\n", what, msg);
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

/* When taskrouterctl started: ages and relative dates count from it. */
static int64_t now_s;

static const char *dash(const char *s) {
	return s && *s ? s : "-";
}

static int out_of_memory(void) {
	fprintf(stderr, "taskrouterctl: out of memory\n");
	return EXIT_OTHER;
}

/* JSON text for --json and call: as it is, or indented on a terminal. */
static void emit_json(const struct ctx *x, const char *json) {
	if (x->pretty) {
		tr_human_json(stdout, json);
	} else {
		printf("%s\n", json);
	}
}

/* Print and free JSON text from the library (NULL: it ran out of memory). */
static int print_json_text(const struct ctx *x, char *json) {
	if (!json) {
		return out_of_memory();
	}
	emit_json(x, json);
	free(json);
	return EXIT_OK;
}

/* A list of objects from the library as one document {"KEY":[...]TAIL}, as a last page of
 * the method's result would be (tail: ",\"next\":null" or ""). */
static int print_json_list(const struct ctx *x, const char *key, const char *tail, size_t n,
	char *(*to_json)(const void *item, size_t i, const void *items), const void *items) {
	char *doc = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&doc, &len);
	bool ok = f != NULL;

	if (f) {
		fprintf(f, "{\"%s\":[", key);
		for (size_t i = 0; i < n; i++) {
			char *s = to_json(NULL, i, items);

			ok = ok && s;
			fprintf(f, "%s%s", i ? "," : "", s ? s : "null");
			free(s);
		}
		fprintf(f, "]%s}", tail);
		ok = fclose(f) == 0 && ok;
	}
	if (!ok) {
		free(doc);
		return out_of_memory();
	}
	emit_json(x, doc);
	free(doc);
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

/* The JSON text (taken) of an object from the library as a tree; NULL on ENOMEM (said). */
static struct tr_json *tree_of(char *json) {
	struct tr_json *j = NULL;

	if (!json || tr_json_parse(json, strlen(json), &j, NULL) < 0) {
		(void)out_of_memory();
		j = NULL;
	}
	free(json);
	return j;
}

/* A boolean for people: from a *_get_bool that returned r and set *b. */
static const char *yes_no(int r, bool b) {
	return r < 0 ? "-" : b ? "yes" : "no";
}

static enum tr_human_color yes_no_color(int r, bool b) {
	return r == 0 && b ? TR_COLOR_GREEN : TR_COLOR_NONE;
}

/* Members that hold a time in epoch seconds (0: none); never shown as the integer. */
static bool is_time_key(const char *key) {
	static const char *const keys[] = {"dateCreated", "dateUpdated", "dateStatusChanged",
		"virtualStartTime", "tokenExpiresAt", "expiresAt", NULL};

	for (const char *const *k = keys; *k; k++) {
		if (strcmp(*k, key) == 0) {
			return true;
		}
	}
	return false;
}

/* The age of something created at created (epoch seconds, 0: unknown) that TaskRouter said
 * was age seconds old (-1: unknown) when it last said anything: from created when known,
 * since the age is only as fresh as the last payload. -1 when neither is known. */
static int64_t age_from(int64_t created, int64_t age) {
	if (created > 0) {
		return now_s > created ? now_s - created : 0;
	}
	return age;
}

static int64_t json_int(const struct tr_json *o, const char *key, int64_t dflt) {
	int64_t n;

	return tr_json_get_int(o, key, &n) == 0 ? n : dflt;
}

/* An age for a column: "3m20s", or "-" (buf of at least 32 bytes). */
static const char *age_cell(int64_t age, char *buf, size_t size) {
	return age < 0 ? "-" : tr_human_duration(age, buf, size);
}

/* A task's transfers for people: "outgoing TT… (WARM to WK…) initiated, 3 min ago"; false
 * when it has none. */
static bool transfers_text(const struct tr_json *v, char *buf, size_t size) {
	static const char *const dirs[] = {"outgoing", "incoming"};
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < 2; i++) {
		const struct tr_json *t = tr_json_get(v, dirs[i]);
		int64_t when = json_int(t, "dateUpdated", json_int(t, "dateCreated", 0));
		char ago[64];

		if (!tr_json_is(t, TR_JSON_OBJECT)) {
			continue;
		}
		len = append(buf, size, len, "%s%s %s (%s to %s) %s", len ? "; " : "", dirs[i],
			dash(tr_json_get_string(t, "sid")), dash(tr_json_get_string(t, "mode")),
			dash(tr_json_get_string(t, "to")), dash(tr_json_get_string(t, "status")));
		if (when > 0) {
			len = append(buf, size, len, ", %s",
				tr_human_ago(when, now_s, ago, sizeof(ago)));
		}
	}
	return len > 0;
}

/* A task's live reservations [{sid, status}] for people: "WR1 pending, WR2 accepted"; false
 * when there are none. */
static bool reservations_text(const struct tr_json *v, char *buf, size_t size) {
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; tr_json_is(v, TR_JSON_ARRAY) && i < v->u.arr.n; i++) {
		const struct tr_json *r = v->u.arr.items[i];

		len = append(buf, size, len, "%s%s %s", i ? ", " : "",
			dash(tr_json_get_string(r, "sid")), dash(tr_json_get_string(r, "status")));
	}
	return len > 0;
}

/* The columns of "key: value" lines: a table without headings. */
static const struct tr_human_column kv_cols[] = {{"KEY", false}, {"VALUE", false}};

static void kv(struct tr_human_table *t, const char *key, enum tr_human_color c,
	const char *value) {
	tr_human_table_cell(t, TR_COLOR_NONE, "%s:", key);
	tr_human_table_cell(t, c, "%s", value);
}

/*
 * The line "PREFIXKEY: value" for the member key of o, unless it is absent or null: times
 * as local dates with their age, age and timeout with units, booleans as yes or no, strings
 * as they are (a status in its colour), anything else as JSON.
 */
static void add_field(struct tr_human_table *t, const char *prefix, const struct tr_json *o,
	const char *key) {
	const struct tr_json *v = tr_json_get(o, key);
	enum tr_human_color c = TR_COLOR_NONE;
	char buf[1024], name[256];
	const char *text = buf;
	char *dump = NULL;

	if (!v || tr_json_is(v, TR_JSON_NULL)) {
		return;
	}
	if (is_time_key(key) && tr_json_is_int(v)) {
		text = v->u.num.i > 0 ? tr_human_date(v->u.num.i, now_s, buf, sizeof(buf)) : "-";
	} else if (strcmp(key, "age") == 0 && tr_json_is_int(v)) {
		text = age_cell(
			age_from(json_int(o, "dateCreated", 0), v->u.num.i), buf, sizeof(buf));
	} else if (strcmp(key, "timeout") == 0 && tr_json_is_int(v)) {
		tr_human_duration(v->u.num.i, buf, sizeof(buf));
	} else if (strcmp(key, "transfers") == 0) {
		if (!transfers_text(v, buf, sizeof(buf))) {
			return;
		}
	} else if (strcmp(key, "reservations") == 0) {
		if (!reservations_text(v, buf, sizeof(buf))) {
			return;
		}
	} else if (tr_json_is_bool(v)) {
		text = tr_json_is(v, TR_JSON_TRUE) ? "yes" : "no";
	} else if (tr_json_is(v, TR_JSON_STRING)) {
		text = v->u.str.s;
		if (strcmp(key, "status") == 0 || strcmp(key, "state") == 0) {
			c = tr_human_status_color(text);
		}
	} else if (tr_json_dump(v, &dump, NULL) == 0) {
		text = dump;
	} else {
		tr_human_table_fail(t);
		return;
	}
	snprintf(name, sizeof(name), "%s%s", prefix, key);
	kv(t, name, c, text);
	free(dump);
}

/* Every scalar of v as "a.b.c: value" lines (arrays and empty objects as JSON). */
static void add_flat(struct tr_human_table *t, const char *prefix, const struct tr_json *v) {
	char sub[512];

	for (size_t i = 0; tr_json_is(v, TR_JSON_OBJECT) && i < v->u.obj.n; i++) {
		const struct tr_json *m = v->u.obj.vals[i];

		if (tr_json_is(m, TR_JSON_OBJECT) && m->u.obj.n > 0) {
			snprintf(sub, sizeof(sub), "%s%s.", prefix, v->u.obj.keys[i]);
			add_flat(t, sub, m);
		} else if (tr_json_is(m, TR_JSON_NULL)) {
			snprintf(sub, sizeof(sub), "%s%s", prefix, v->u.obj.keys[i]);
			kv(t, sub, TR_COLOR_NONE, "null");
		} else {
			add_field(t, prefix, v, v->u.obj.keys[i]);
		}
	}
}

/* Print a table with headings (NULL: out of memory). */
static int print_table(const struct ctx *x, struct tr_human_table *t) {
	int r = t ? tr_human_table_print(t, stdout, true) : -ENOMEM;

	(void)x;
	tr_human_table_free(t);
	return r < 0 ? out_of_memory() : EXIT_OK;
}

/* Print "key: value" lines, aligned on a terminal. */
static int print_kv(const struct ctx *x, struct tr_human_table *t) {
	int r = t ? tr_human_table_print(t, stdout, x->pretty) : -ENOMEM;

	tr_human_table_free(t);
	return r < 0 ? out_of_memory() : EXIT_OK;
}

/* The fields of o, then those of its member sub prefixed "sub." (sub may be NULL). */
static int print_object(const struct ctx *x, const struct tr_json *o, const char *const *fields,
	const char *sub, const char *const *sub_fields) {
	struct tr_human_table *t = tr_human_table_new(kv_cols, 2, false);
	char prefix[64];

	for (const char *const *f = fields; t && *f; f++) {
		add_field(t, "", o, *f);
	}
	if (t && sub) {
		snprintf(prefix, sizeof(prefix), "%s.", sub);
		for (const char *const *f = sub_fields; *f; f++) {
			add_field(t, prefix, tr_json_get(o, sub), *f);
		}
	}
	return print_kv(x, t);
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
	"reservations",
	"version",
	"dateCreated",
	"dateUpdated",
	"virtualStartTime",
	"attributes",
	"addOns",
	"transfers",
	NULL,
};

/* The task a task method returns. */
static int print_task(struct ctx *x, const struct result *res) {
	struct tr_json *j;
	int r;

	if (x->json) {
		return print_json_text(x, tr_task_to_json(res->task));
	}
	j = tree_of(tr_task_to_json(res->task));
	if (!j) {
		return EXIT_OTHER;
	}
	r = print_object(x, j, task_fields, NULL, NULL);
	tr_json_free(j);
	return r;
}

static char *task_json_at(const void *unused, size_t i, const void *items) {
	(void)unused;
	return tr_task_to_json(((struct tr_task *const *)items)[i]);
}

static const struct tr_human_column task_cols[] = {
	{"SID", false},
	{"STATUS", false},
	{"PRIORITY", true},
	{"AGE", true},
	{"QUEUE", false},
	{"CHANNEL", false},
};

/* Every page of task.list: a table, or with --json one document shaped like a last page. */
static int print_list(struct ctx *x, const struct result *res) {
	struct tr_human_table *t;

	if (x->json) {
		return print_json_list(
			x, "tasks", ",\"next\":null", res->n_tasks, task_json_at, res->tasks);
	}
	t = tr_human_table_new(task_cols, 6, true);
	for (size_t i = 0; t && i < res->n_tasks; i++) {
		const struct tr_task *k = res->tasks[i];
		int64_t created = 0, age = -1, prio;
		char buf[32];

		(void)tr_task_get_int(k, "dateCreated", &created);
		(void)tr_task_get_int(k, "age", &age);
		tr_human_table_cell(t, TR_COLOR_NONE, "%s", dash(tr_task_sid(k)));
		tr_human_table_cell(t, tr_human_status_color(tr_task_status(k)), "%s",
			dash(tr_task_status(k)));
		if (tr_task_get_int(k, "priority", &prio) == 0) {
			tr_human_table_cell(t, TR_COLOR_NONE, "%" PRId64, prio);
		} else {
			tr_human_table_cell(t, TR_COLOR_NONE, "-");
		}
		tr_human_table_cell(t, TR_COLOR_NONE, "%s",
			age_cell(age_from(created, age), buf, sizeof(buf)));
		tr_human_table_cell(t, TR_COLOR_NONE, "%s", dash(tr_task_queue_name(k)));
		tr_human_table_cell(t, TR_COLOR_NONE, "%s", dash(tr_task_channel(k)));
	}
	return print_table(x, t);
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

/* A reservation as JSON text (taken): as is with --json, else "key: value" lines. */
static int print_reservation_json(struct ctx *x, char *json) {
	struct tr_json *j;
	int r;

	if (x->json) {
		return print_json_text(x, json);
	}
	j = tree_of(json);
	if (!j) {
		return EXIT_OTHER;
	}
	r = print_object(x, j, reservation_fields, "task", reservation_task_fields);
	tr_json_free(j);
	return r;
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

static char *reservation_json_at(const void *unused, size_t i, const void *items) {
	(void)unused;
	return tr_reservation_to_json(((struct tr_reservation *const *)items)[i]);
}

static const struct tr_human_column reservation_cols[] = {
	{"SID", false},
	{"STATUS", false},
	{"AGE", true},
	{"TIMEOUT", true},
	{"TASK", false},
	{"QUEUE", false},
	{"CHANNEL", false},
};

/* Every page of reservation.list: a table, or with --json one document like a last page. */
static int print_reservations(struct ctx *x, const struct result *res) {
	struct tr_human_table *t;

	if (x->json) {
		return print_json_list(x, "reservations", ",\"next\":null", res->n_rsvs,
			reservation_json_at, res->rsvs);
	}
	t = tr_human_table_new(reservation_cols, 7, true);
	for (size_t i = 0; t && i < res->n_rsvs; i++) {
		const struct tr_reservation *r = res->rsvs[i];
		const struct tr_task *k = tr_reservation_task(r);
		int64_t timeout = tr_reservation_timeout(r), created = 0;
		char age[32], tmo[32] = "-";

		(void)tr_reservation_get_int(r, "dateCreated", &created);
		if (timeout >= 0) {
			tr_human_duration(timeout, tmo, sizeof(tmo));
		}
		tr_human_table_cell(t, TR_COLOR_NONE, "%s", dash(tr_reservation_sid(r)));
		tr_human_table_cell(t, tr_human_status_color(tr_reservation_status(r)), "%s",
			dash(tr_reservation_status(r)));
		tr_human_table_cell(t, TR_COLOR_NONE, "%s",
			age_cell(age_from(created, -1), age, sizeof(age)));
		tr_human_table_cell(t, TR_COLOR_NONE, "%s", tmo);
		tr_human_table_cell(t, TR_COLOR_NONE, "%s", dash(tr_reservation_task_sid(r)));
		tr_human_table_cell(t, TR_COLOR_NONE, "%s", dash(tr_task_queue_name(k)));
		tr_human_table_cell(t, TR_COLOR_NONE, "%s", dash(tr_task_channel(k)));
	}
	return print_table(x, t);
}

/* The worker: who, which activity, whether routable, version, attributes and since when. */
static int print_worker(struct ctx *x, const struct result *res) {
	static const char *const fields[] = {"version", "attributes", "dateStatusChanged", NULL};
	const struct tr_worker *w = res->worker;
	struct tr_human_table *t;
	struct tr_json *j;
	char act[512];
	bool avail = false;
	int r;

	if (x->json) {
		return print_json_text(x, tr_worker_to_json(w));
	}
	j = tree_of(tr_worker_to_json(w));
	t = j ? tr_human_table_new(kv_cols, 2, false) : NULL;
	if (!t) {
		tr_json_free(j);
		return out_of_memory();
	}
	r = tr_json_get_bool(j, "available", &avail);
	snprintf(act, sizeof(act), "%s (%s)", dash(tr_worker_activity_name(w)),
		dash(tr_worker_activity_sid(w)));
	kv(t, "sid", TR_COLOR_NONE, dash(tr_worker_sid(w)));
	kv(t, "name", TR_COLOR_NONE, dash(tr_worker_name(w)));
	kv(t, "activity", TR_COLOR_NONE, act);
	kv(t, "available", yes_no_color(r, avail), yes_no(r, avail));
	for (const char *const *f = fields; *f; f++) {
		add_field(t, "", j, *f);
	}
	tr_json_free(j);
	return print_kv(x, t);
}

static char *activity_json_at(const void *unused, size_t i, const void *items) {
	(void)unused;
	return tr_activity_to_json(((struct tr_activity *const *)items)[i]);
}

static const struct tr_human_column activity_cols[] = {
	{"NAME", false},
	{"SID", false},
	{"AVAILABLE", false},
	{"CURRENT", false},
};

/* activity.list: the daemon's result with --json, else a table NAME SID AVAILABLE CURRENT,
 * the current one marked with a star. */
static int print_activities(struct ctx *x, const struct result *res) {
	struct tr_human_table *t;

	if (x->json) {
		return print_json_list(
			x, "activities", "", res->n_acts, activity_json_at, res->acts);
	}
	t = tr_human_table_new(activity_cols, 4, true);
	for (size_t i = 0; t && i < res->n_acts; i++) {
		const struct tr_activity *a = res->acts[i];
		bool avail = false, current = tr_activity_is_current(a);
		int r = tr_activity_get_bool(a, "available", &avail);

		tr_human_table_cell(t, current ? TR_COLOR_BOLD : TR_COLOR_NONE, "%s",
			dash(tr_activity_name(a)));
		tr_human_table_cell(t, TR_COLOR_NONE, "%s", dash(tr_activity_sid(a)));
		tr_human_table_cell(t, yes_no_color(r, avail), "%s", yes_no(r, avail));
		tr_human_table_cell(t, TR_COLOR_BOLD, "%s", current ? "*" : "");
	}
	return print_table(x, t);
}

static const struct tr_human_column channel_cols[] = {
	{"CHANNEL", false},
	{"SID", false},
	{"AVAILABLE", false},
	{"CAPACITY", true},
	{"ASSIGNED", true},
	{"FREE%", true},
};

/* channel.list: CHANNEL SID AVAILABLE CAPACITY ASSIGNED FREE%. */
static int human_channels(struct ctx *x, const struct tr_json *j) {
	const struct tr_json *a = tr_json_get(j, "channels");
	struct tr_human_table *t = tr_human_table_new(channel_cols, 6, true);

	for (size_t i = 0; t && tr_json_is(a, TR_JSON_ARRAY) && i < a->u.arr.n; i++) {
		const struct tr_json *it = a->u.arr.items[i];
		static const char *const nums[] = {
			"capacity", "assignedTasks", "availableCapacityPercentage"};
		bool avail = false;
		int r = tr_json_get_bool(it, "available", &avail);

		tr_human_table_cell(t, TR_COLOR_NONE, "%s",
			dash(tr_json_get_string(it, "taskChannelUniqueName")));
		tr_human_table_cell(t, TR_COLOR_NONE, "%s", dash(tr_json_get_string(it, "sid")));
		tr_human_table_cell(t, yes_no_color(r, avail), "%s", yes_no(r, avail));
		for (size_t k = 0; k < 3; k++) {
			int64_t v;

			if (tr_json_get_int(it, nums[k], &v) == 0) {
				tr_human_table_cell(t, TR_COLOR_NONE, "%" PRId64, v);
			} else {
				tr_human_table_cell(t, TR_COLOR_NONE, "-");
			}
		}
	}
	return print_table(x, t);
}

/* "N thing" or "N things". */
static size_t append_count(char *buf, size_t size, size_t len, const char *sep, int64_t n,
	const char *noun) {
	return append(buf, size, len, "%s%" PRId64 " %s%s", sep, n, noun, n == 1 ? "" : "s");
}

/*
 * The counters worth a look when they are not zero, by the object they are in (the daemon's
 * counters, and the upstream session's): every counter of a refusal, a drop or an error.
 */
static size_t append_warnings(char *buf, size_t size, const struct tr_json *j) {
	static const char *const upstream[] = {"resyncErrors", NULL};
	static const char *const websocket[] = {"malformed", "oversize", "bufferOverflows", NULL};
	static const char *const rest[] = {"failures", NULL};
	const struct tr_json *up = tr_json_get(j, "upstream"), *c = tr_json_get(j, "counters");
	const struct {
		const struct tr_json *o;
		const char *prefix;
		const char *const *keys; /* NULL: every member but eventsPublished */
	} groups[] = {
		{c, "", NULL},
		{up, "", upstream},
		{tr_json_get(up, "websocket"), "websocket.", websocket},
		{tr_json_get(up, "rest"), "rest.", rest},
	};
	size_t len = 0, shown = 0, more = 0;

	buf[0] = '\0';
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		const struct tr_json *o = groups[g].o;

		for (size_t i = 0; tr_json_is(o, TR_JSON_OBJECT) && i < o->u.obj.n; i++) {
			const char *k = o->u.obj.keys[i];
			const struct tr_json *v = o->u.obj.vals[i];
			bool listed = !groups[g].keys;

			for (const char *const *w = groups[g].keys; w && *w; w++) {
				listed = listed || strcmp(*w, k) == 0;
			}
			if (!listed || strcmp(k, "eventsPublished") == 0 || !tr_json_is_int(v) ||
				v->u.num.i == 0) {
				continue;
			}
			if (shown < 4) {
				len = append(buf, size, len, "%s%s%s %" PRId64, shown ? ", " : "",
					groups[g].prefix, k, v->u.num.i);
				shown++;
			} else {
				more++;
			}
		}
	}
	if (more) {
		len = append(buf, size, len, " and %zu more", more);
	}
	return len;
}

/*
 * daemon.status for people: one line each for the daemon, the upstream session, the worker,
 * the token, the tasks, the clients and the upstream traffic, and one for the counters that
 * are worth a look, if any. --verbose adds every member, nested ones joined with dots.
 */
static int human_status(struct ctx *x, const struct tr_json *j) {
	const struct tr_json *up = tr_json_get(j, "upstream"), *ws = tr_json_get(up, "websocket"),
			     *rest = tr_json_get(up, "rest");
	const char *state = tr_json_get_string(j, "state"), *s;
	struct tr_human_table *t = tr_human_table_new(kv_cols, 2, false);
	enum tr_human_color c = TR_COLOR_NONE;
	int64_t n, exp = json_int(up, "tokenExpiresAt", 0);
	bool b = false;
	char line[1024], date[128];
	size_t len;
	int r;

	if (!t) {
		return out_of_memory();
	}
	len = append(line, sizeof(line), 0, "taskrouterd %s",
		dash(tr_json_get_string(j, "version")));
	if ((s = tr_json_get_string(j, "epoch"))) {
		len = append(line, sizeof(line), len, ", epoch %s", s);
	}
	if ((n = json_int(j, "seq", -1)) >= 0) {
		len = append(line, sizeof(line), len, ", seq %" PRId64, n);
	}
	kv(t, "Daemon", TR_COLOR_NONE, line);

	c = tr_human_status_color(state);
	len = append(line, sizeof(line), 0, "%s%s%s", tr_human_on(c), dash(state), tr_human_off(c));
	if (state && strcmp(state, "reconnecting") == 0) {
		len = append(line, sizeof(line), len, " (attempt %" PRId64 ", next in %s)",
			json_int(up, "reconnectAttempt", 0),
			tr_human_duration((json_int(up, "reconnectDelayMs", 0) + 999) / 1000, date,
				sizeof(date)));
	}
	if ((n = json_int(up, "reconnects", 0)) > 0) {
		len = append_count(line, sizeof(line), len, ", ", n, "reconnect");
	}
	if (tr_json_get_bool(up, "sessionDisplaced", &b) == 0 && b) {
		len = append(line, sizeof(line), len, ", displaced by another session");
	}
	if ((s = tr_json_get_string(up, "lastError"))) {
		len = append(line, sizeof(line), len, "; last error: %s", s);
	}
	kv(t, "Session", TR_COLOR_NONE, line);

	/* where the session goes, and through which proxy */
	if ((s = tr_json_get_string(up, "websocketUrl"))) {
		const char *px = tr_json_get_string(up, "websocketProxy");
		len = append(line, sizeof(line), 0, "%s%s%s", s, px ? " through proxy " : ", directly",
			px ? px : "");
		kv(t, "Upstream", TR_COLOR_NONE, line);
	}

	if ((s = tr_json_get_string(up, "workerSid"))) {
		len = append(line, sizeof(line), 0, "%s", s);
		if (tr_json_get_string(up, "activityName")) {
			len = append(line, sizeof(line), len, ", activity %s",
				tr_json_get_string(up, "activityName"));
		}
		kv(t, "Worker", TR_COLOR_NONE, line);
	} else {
		kv(t, "Worker", TR_COLOR_NONE, "not known yet (no session so far)");
	}

	b = false;
	(void)tr_json_get_bool(up, "tokenExpired", &b);
	if (exp <= 0) {
		snprintf(line, sizeof(line), "none");
		c = TR_COLOR_RED;
	} else if (b || exp <= now_s) {
		snprintf(line, sizeof(line), "expired %s; give a new one with update-token",
			tr_human_date(exp, now_s, date, sizeof(date)));
		c = TR_COLOR_RED;
	} else {
		snprintf(line, sizeof(line), "expires %s",
			tr_human_date(exp, now_s, date, sizeof(date)));
		c = exp - now_s < 15 * 60 ? TR_COLOR_YELLOW : TR_COLOR_NONE;
	}
	kv(t, "Token", c, line);

	snprintf(line, sizeof(line), "%" PRId64 " live, %" PRId64 " recently closed",
		json_int(j, "tasks", 0), json_int(j, "closedTasks", 0));
	kv(t, "Tasks", TR_COLOR_NONE, line);

	len = append_count(line, sizeof(line), 0, "", json_int(j, "connections", 0), "connection");
	len = append_count(line, sizeof(line), len, ", ", json_int(j, "subscriptions", 0),
		"subscription");
	if ((n = json_int(tr_json_get(j, "limits"), "maxConnections", -1)) >= 0) {
		len = append(line, sizeof(line), len, " (at most %" PRId64 " connections)", n);
	}
	kv(t, "Clients", TR_COLOR_NONE, line);

	if (up && !tr_json_is(up, TR_JSON_NULL)) {
		len = append(line, sizeof(line), 0, "REST %" PRId64 " in flight",
			json_int(rest, "inFlight", 0));
		len = append_count(line, sizeof(line), len, ", ", json_int(rest, "requests", 0),
			"request");
		len = append_count(line, sizeof(line), len, "; websocket ",
			json_int(ws, "frames", 0), "frame");
		len = append_count(line, sizeof(line), len, ", ", json_int(up, "resyncs", 0),
			"resync");
		kv(t, "Upstream", TR_COLOR_NONE, line);
	}

	if (append_warnings(line, sizeof(line), j) > 0) {
		if (!x->verbose) {
			(void)append(line, sizeof(line), strlen(line), " (see status --verbose)");
		}
		kv(t, "Warnings", TR_COLOR_YELLOW, line);
	}
	r = print_kv(x, t);
	if (r != EXIT_OK || !x->verbose) {
		return r;
	}
	t = tr_human_table_new(kv_cols, 2, false);
	if (t) {
		add_flat(t, "", j);
	}
	putchar('\n');
	return print_kv(x, t);
}

static int human_describe(struct ctx *x, const struct tr_json *j) {
	static const char *const sections[] = {"methods", "events", NULL};

	(void)x;
	for (const char *const *s = sections; *s; s++) {
		const struct tr_json *a = tr_json_get(j, *s);

		if (!tr_json_is(a, TR_JSON_ARRAY)) {
			continue;
		}
		printf("%s%s:%s\n", tr_human_on(TR_COLOR_BOLD), *s, tr_human_off(TR_COLOR_BOLD));
		for (size_t i = 0; i < a->u.arr.n; i++) {
			const struct tr_json *it = a->u.arr.items[i];
			const char *name = tr_json_is(it, TR_JSON_STRING)
						   ? it->u.str.s
						   : tr_json_get_string(it, "name");

			printf("  %s\n", name ? name : "?");
		}
	}
	return EXIT_OK;
}

/* daemon.updateToken: "ok", and when the new token expires. */
static int human_token(struct ctx *x, const struct tr_json *j) {
	int64_t exp = json_int(j, "expiresAt", 0);
	char date[128];

	(void)x;
	if (exp > 0) {
		printf("ok: the token expires %s\n", tr_human_date(exp, now_s, date, sizeof(date)));
	} else {
		printf("ok\n");
	}
	return EXIT_OK;
}

/*
 * A JSON result: as is with --json and for rows without a human form (call), else through
 * the row's human form. Text that does not parse is printed as is too.
 */
static int print_result(struct ctx *x, const struct result *res) {
	int (*human)(struct ctx *x, const struct tr_json *j) = x->cmd->human;
	struct tr_json *j = NULL;
	int r = EXIT_OK;

	if (x->json || !human || tr_json_parse(res->json, strlen(res->json), &j, NULL) < 0) {
		emit_json(x, res->json);
	} else {
		r = human(x, j);
	}
	tr_json_free(j);
	return r;
}

/* One event: its params object with --json, else "SEQ EVENT task=… status=…". */
static int print_event(struct ctx *x, const struct result *res) {
	const struct tr_client_event *ev = res->event;

	if (x->json) {
		emit_json(x, ev->json);
	} else {
		const char *st = ev->task ? tr_task_status(ev->task) : NULL;
		enum tr_human_color c = tr_human_status_color(st);

		printf("%s%" PRId64 "%s %s%s%s", tr_human_on(TR_COLOR_DIM), ev->seq,
			tr_human_off(TR_COLOR_DIM), tr_human_on(TR_COLOR_BOLD), ev->name,
			tr_human_off(TR_COLOR_BOLD));
		if (ev->task_sid) {
			printf(" task=%s", ev->task_sid);
		}
		if (st) {
			printf(" status=%s%s%s", tr_human_on(c), st, tr_human_off(c));
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
static void print_json_or_null(FILE *f, const char *s) {
	if (s) {
		print_json_string(f, s);
	} else {
		fputs("null", f);
	}
}

/* The --json line of a gap: {"gap":{...},"tasks":[...]} (indented on a terminal). */
static void print_gap_json(const struct ctx *x, const struct tr_client_subscription *sub,
	const struct tr_json *tasks) {
	char *doc = NULL, *t = NULL;
	size_t len = 0;
	FILE *m = x->pretty ? open_memstream(&doc, &len) : NULL;
	FILE *f = m ? m : stdout;

	fputs("{\"gap\":{\"reason\":", f);
	print_json_or_null(f, sub->gap_reason);
	fprintf(f, ",\"since\":%" PRId64 ",\"previousEpoch\":", x->since);
	print_json_or_null(f, x->epoch);
	fputs(",\"epoch\":", f);
	print_json_or_null(f, sub->epoch);
	fprintf(f, ",\"resubscribedFrom\":%" PRId64, sub->seq + 1);
	if (sub->gap_data) {
		fprintf(f, ",\"data\":%s", sub->gap_data);
	}
	fputs("},\"tasks\":", f);
	fputs(tasks && tr_json_dump(tasks, &t, NULL) == 0 ? t : "[]", f);
	free(t);
	fputs(m ? "}" : "}\n", f);
	if (m && fclose(m) == 0) {
		tr_human_json(stdout, doc);
	}
	free(doc);
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
		print_gap_json(x, sub, tasks);
	} else {
		printf("%sskipped events: %s; resubscribed from seq %" PRId64 ", re-listing%s\n",
			tr_human_on(TR_COLOR_YELLOW), why, sub->seq + 1,
			tr_human_off(TR_COLOR_YELLOW));
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
	case T_COLOR:
		if (strcmp(v, "auto") == 0) {
			*(int *)dst = COLOR_AUTO;
		} else if (strcmp(v, "always") == 0) {
			*(int *)dst = COLOR_ALWAYS;
		} else if (strcmp(v, "never") == 0) {
			*(int *)dst = COLOR_NEVER;
		} else {
			return bad_value(x, p, v);
		}
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

/* The row of the option --name (or its --no-name twin, *no set), with or without "=VALUE";
 * NULL when there is none. */
static const struct param *option_row(const char *arg, bool *no) {
	size_t n;

	*no = false;
	if (strncmp(arg, "--", 2) != 0) {
		return NULL;
	}
	arg += 2;
	n = strcspn(arg, "=");
	for (int id = 0; id < _PARAM_MAX; id++) {
		const struct param *p = &params[id];

		if (!p->name) {
			continue;
		}
		if (strlen(p->name) == n && strncmp(p->name, arg, n) == 0) {
			return p;
		}
		if (has_no_twin(p) && n == strlen(p->name) + 3 && strncmp(arg, "no-", 3) == 0 &&
			strncmp(p->name, arg + 3, n - 3) == 0) {
			*no = true;
			return p;
		}
	}
	return NULL;
}

/* Whether s is an option of taskrouterctl: a value that looks like one was left out. */
static bool names_option(const char *s) {
	bool no;

	return option_row(s, &no) || strcmp(s, "-h") == 0;
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
			if (optopt) {
				return usage_error(x->cmd ? x->cmd->name : NULL,
					"unknown option '-%c'", optopt);
			}
			return usage_error(x->cmd ? x->cmd->name : NULL, "unknown option '%s'",
				argv[optind - 1]);
		}
		p = param_of(opt, &no);
		assert(p);
		if (p->arg && optarg == argv[optind - 1] && names_option(optarg)) {
			/* "--socket --json": the value was forgotten, not "--json" meant */
			return usage_error(x->cmd ? x->cmd->name : NULL, "--%s needs a value",
				p->name);
		}
		r = set_param(x, p, optarg, no);
		if (r != EXIT_OK) {
			return r;
		}
	}
	return EXIT_OK;
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

static int run_help(struct ctx *x);

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
	{"status", {0}, OPTS(O_VERBOSE), "daemon.status", .call = call_method,
		.print = print_result, .human = human_status,
		.help = "Show the daemon status (daemon.status): the upstream session, the worker "
			"and its\nactivity, the token, the tasks and the clients; --verbose adds "
			"every counter and limit."},
	{"update-token", {0}, NULL, "daemon.updateToken", .build_params = token_params,
		.call = call_method, .print = print_result, .human = human_token,
		.help = "Give the daemon a new worker token, read from stdin "
			"(daemon.updateToken)."},
	{"describe", {0}, NULL, "rpc.describe", .call = call_method, .print = print_result,
		.human = human_describe,
		.help = "List the methods and events of the daemon (rpc.describe)."},
	{"call", {P_METHOD, P_PARAMS}, NULL, NULL, .call = call_method, .print = print_result,
		.help = "Call any method and print the result JSON (METHOD has a dot: task.get)."},
	{"help", {P_TOPIC}, NULL, NULL, .local = run_help,
		.help = "Show the commands, or how to use COMMAND (as 'COMMAND --help' does)."},
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

static const char exit_help[] = "Exit status: 0 ok, 1 other failure, 2 usage error (also when "
				"the daemon finds\n"
				"a parameter invalid, -32602), 3 connection failure, 4 RPC or "
				"upstream error, 5 timeout.\n";

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
	printf("Common options: --json, --color WHEN, --socket PATH, --timeout SECONDS, "
	       "--help.\n%s",
		exit_help);
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
	       "                     (indented when stdout is a terminal); errors as JSON on "
	       "stderr\n"
	       "  --color WHEN       auto (colours on a terminal, unless $NO_COLOR is set), "
	       "always\n"
	       "                     or never\n"
	       "  --socket PATH      daemon socket (default: $TASKROUTERD_SOCKET,\n"
	       "                     $XDG_RUNTIME_DIR/taskrouterd/socket, "
	       "/run/taskrouterd/socket)\n"
	       "  --timeout SECONDS  per-call timeout (default 30)\n"
	       "  --help             this text; 'taskrouterctl help COMMAND' for a command\n"
	       "  --version          print the version\n\n%s",
		exit_help);
}

/* help [COMMAND]: the commands, or the usage of every row called COMMAND. */
static int run_help(struct ctx *x) {
	const struct cmd *c = NULL;

	for (size_t i = 0; x->topic && !c && i < N_CMDS; i++) {
		if (strcmp(cmds[i].name, x->topic) == 0) {
			c = &cmds[i];
		}
	}
	if (!x->topic) {
		main_help();
	} else if (c) {
		cmd_help(c);
	} else {
		return usage_error(NULL, "unknown command '%s'", x->topic);
	}
	return EXIT_OK;
}

/* ------------------------------------------------------------------ the runner */

/*
 * Colours and the terminal layout (indented JSON, aligned "key: value" lines) when stdout is
 * a terminal; colours unless NO_COLOR is set and not empty (no-color.org) or TERM is dumb,
 * and as --color says.
 */
static void setup_output(struct ctx *x) {
	const char *no_color = getenv("NO_COLOR"), *term = getenv("TERM");
	bool tty = isatty(STDOUT_FILENO) == 1;

	x->pretty = tty;
	if (x->color == COLOR_ALWAYS || x->color == COLOR_NEVER) {
		tr_human_set_color(x->color == COLOR_ALWAYS);
	} else {
		tr_human_set_color(tty && !(no_color && *no_color) &&
				   !(term && strcmp(term, "dumb") == 0));
	}
}

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
	setup_output(x);
	if (c->local) {
		return c->local(x);
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

/* ------------------------------------------------------------------ shell completion */

/*
 * taskrouterctl __complete WORD... CURRENT, for the scripts in completions/ (not for people):
 * the candidates for CURRENT, the word being completed, after the words before it (without
 * the program name). One a line, "CANDIDATE<tab>DESCRIPTION" (no tab without one), only
 * those that start with CURRENT; or the single line ":files" when a file name comes next.
 * Commands, options and their values come from the rows above, so completion cannot drift
 * from the parser. Task and reservation sids, activity names, methods and event names are
 * asked of the daemon (--socket and --timeout as given on the line; 1 s by default): when it
 * cannot be reached there are none. Always exits 0.
 */

struct completion {
	const char *cur; /* what is being completed; candidates start with it */
	const char *prefix; /* put before each candidate: "--color=" */
	struct ctx *x;
	bool tried; /* connecting to the daemon was tried (x->c is set when it worked) */
};

static void candidate(struct completion *k, const char *word, const char *desc) {
	size_t n = strlen(k->prefix);

	if (!word || !*word) {
		return;
	}
	/* k->cur starts with k->prefix when there is one */
	if (strncmp(word, k->cur + n, strlen(k->cur + n)) != 0) {
		return;
	}
	printf("%s%s%s%s\n", k->prefix, word, desc && *desc ? "\t" : "", desc ? desc : "");
}

/* The daemon, for candidates that only it knows; NULL when it cannot be reached. */
static struct tr_client *daemon_for(struct completion *k) {
	if (!k->tried) {
		char *path = socket_path(k->x);

		k->tried = true;
		if (path && tr_client_connect(path, k->x->timeout_ms, &k->x->c) < 0) {
			k->x->c = NULL;
		}
		free(path);
	}
	return k->x->c;
}

static void complete_tasks(struct completion *k) {
	struct tr_client_error e = {0};
	struct tr_client *c = daemon_for(k);
	struct tr_task **tasks = NULL;
	size_t n = 0;

	if (c && tr_client_task_list(c, NULL, k->x->timeout_ms, &tasks, &n, &e) == 0) {
		for (size_t i = 0; i < n; i++) {
			char desc[256];

			snprintf(desc, sizeof(desc), "%s, %s", dash(tr_task_status(tasks[i])),
				dash(tr_task_queue_name(tasks[i])));
			candidate(k, tr_task_sid(tasks[i]), desc);
		}
	}
	tr_task_list_free(tasks, n);
	tr_client_error_done(&e);
}

static void complete_reservations(struct completion *k) {
	struct tr_client_error e = {0};
	struct tr_client *c = daemon_for(k);
	struct tr_reservation **rsvs = NULL;
	size_t n = 0;

	if (c && tr_client_reservation_list(c, NULL, k->x->timeout_ms, &rsvs, &n, &e) == 0) {
		for (size_t i = 0; i < n; i++) {
			char desc[256];

			snprintf(desc, sizeof(desc), "%s, task %s",
				dash(tr_reservation_status(rsvs[i])),
				dash(tr_reservation_task_sid(rsvs[i])));
			candidate(k, tr_reservation_sid(rsvs[i]), desc);
		}
	}
	tr_reservation_list_free(rsvs, n);
	tr_client_error_done(&e);
}

static void complete_activities(struct completion *k) {
	struct tr_client_error e = {0};
	struct tr_client *c = daemon_for(k);
	struct tr_activity **acts = NULL;
	size_t n = 0;

	if (c && tr_client_activity_list(c, k->x->timeout_ms, &acts, &n, &e) == 0) {
		for (size_t i = 0; i < n; i++) {
			candidate(k, tr_activity_name(acts[i]),
				tr_activity_is_current(acts[i])		 ? "current"
				: tr_activity_available(acts[i]) ? "available"
								 : "not available");
		}
	}
	tr_activity_list_free(acts, n);
	tr_client_error_done(&e);
}

/* The method names (what "methods") or the event names ("events") of rpc.describe. */
static void complete_described(struct completion *k, const char *what) {
	struct tr_client_error e = {0};
	struct tr_client *c = daemon_for(k);
	struct tr_json *j = NULL;
	char *json = NULL;
	const struct tr_json *a;

	if (c && tr_client_call(c, "rpc.describe", NULL, k->x->timeout_ms, &json, &e) == 0 &&
		tr_json_parse(json, strlen(json), &j, NULL) == 0) {
		a = tr_json_get(j, what);
		for (size_t i = 0; tr_json_is(a, TR_JSON_ARRAY) && i < a->u.arr.n; i++) {
			const struct tr_json *it = a->u.arr.items[i];

			candidate(k, tr_json_is(it, TR_JSON_STRING) ? it->u.str.s
								   : tr_json_get_string(it, "name"),
				NULL);
		}
	}
	tr_json_free(j);
	free(json);
	tr_client_error_done(&e);
}

/* The first line of a command's help, without its final dot, as its description. */
static void complete_commands(struct completion *k) {
	for (size_t i = 0; i < N_CMDS; i++) {
		bool seen = false;
		char desc[128];
		size_t n;

		for (size_t j = 0; j < i; j++) {
			seen = seen || strcmp(cmds[j].name, cmds[i].name) == 0;
		}
		if (seen) {
			continue;
		}
		snprintf(desc, sizeof(desc), "%.*s", (int)strcspn(cmds[i].help, "\n"), cmds[i].help);
		n = strlen(desc);
		if (n > 0 && desc[n - 1] == '.') {
			desc[n - 1] = '\0';
		}
		candidate(k, cmds[i].name, desc);
	}
}

/* Whether the row cmds[i] is called name (NULL: none is). */
static bool row_named(size_t i, const char *name) {
	return name && strcmp(cmds[i].name, name) == 0;
}

/* Whether the option p is one that a row called name (NULL: before the command) takes,
 * directly or as a common one that no option of the row hides. */
static bool takes_option(const char *name, const struct param *p) {
	bool found = false;

	if (!name) {
		for (const enum param_id *id = main_opts; *id; id++) {
			found = found || &params[*id] == p;
		}
		return found;
	}
	for (size_t i = 0; i < N_CMDS; i++) {
		if (!row_named(i, name)) {
			continue;
		}
		for (const enum param_id *id = cmds[i].opts; id && *id; id++) {
			found = found || &params[*id] == p;
		}
		for (const enum param_id *id = common_opts; *id; id++) {
			found = found || (&params[*id] == p && !has_option(&cmds[i], p->name));
		}
	}
	return found;
}

static void complete_options(struct completion *k, const char *name) {
	char word[128];

	for (int id = 0; id < _PARAM_MAX; id++) {
		const struct param *p = &params[id];

		if (!p->name || !takes_option(name, p)) {
			continue;
		}
		snprintf(word, sizeof(word), "--%s", p->name);
		candidate(k, word, p->key ? p->key : p->arg);
		if (has_no_twin(p)) {
			snprintf(word, sizeof(word), "--no-%s", p->name);
			candidate(k, word, p->key);
		}
	}
}

/* The values of the option p of the command name. */
static void complete_option_value(struct completion *k, const char *name, const struct param *p) {
	static const char *const task_statuses[] = {"pending", "reserved", "assigned", "wrapping",
		"transferring", "completed", "canceled", NULL};
	static const char *const rsv_statuses[] = {"pending", "accepted", "wrapping", "rejected",
		"timeout", "canceled", "rescinded", "completed", NULL};
	static const char *const on_off[] = {"on", "off", NULL};
	static const char *const modes[] = {"warm", "cold", NULL};
	static const char *const colors[] = {"auto", "always", "never", NULL};
	static const char *const booleans[] = {"true", "false", NULL};
	const char *const *values = NULL;

	if (p->type == T_ON_OFF) {
		values = on_off;
	} else if (p->type == T_MODE) {
		values = modes;
	} else if (p->type == T_COLOR) {
		values = colors;
	} else if (p->type == T_BOOL_OR_STRING) {
		values = booleans;
	}
	if (p == &params[O_SOCKET]) {
		printf(":files\n");
	} else if (p == &params[O_ACTIVITY]) {
		complete_activities(k);
	} else if (p == &params[O_TASK]) {
		complete_tasks(k);
	} else if (p == &params[O_EVENT]) {
		complete_described(k, "events");
	} else if (p == &params[O_STATUS]) {
		values = name && strcmp(name, "list") == 0 ? task_statuses : rsv_statuses;
	}
	for (; values && *values; values++) {
		candidate(k, *values, NULL);
	}
}

/* The values of the positional argument number pos of the command name. */
static void complete_argument(struct completion *k, const char *name, size_t pos) {
	for (size_t i = 0; i < N_CMDS && pos < MAX_ARGS; i++) {
		const char *m = cmds[i].method;

		if (!row_named(i, name)) {
			continue;
		}
		switch (cmds[i].args[pos]) {
		case P_SID:
			if (m && strncmp(m, "reservation.", 12) == 0) {
				complete_reservations(k);
			} else {
				complete_tasks(k);
			}
			break;
		case P_ON_OFF:
			candidate(k, "on", NULL);
			candidate(k, "off", NULL);
			break;
		case P_ACTIVITY:
			complete_activities(k);
			break;
		case P_METHOD:
			complete_described(k, "methods");
			break;
		case P_TOPIC:
			complete_commands(k);
			break;
		default:
			break;
		}
	}
}

static int complete(int argc, char **argv) {
	struct ctx x = {.timeout_ms = 1000};
	struct completion k = {.cur = argc > 0 ? argv[argc - 1] : "", .prefix = "", .x = &x};
	const struct param *pending = NULL, *p;
	const char *name = NULL;
	size_t pos = 0;
	bool dashdash = false, no;
	char prefix[128];

	for (int i = 0; i + 1 < argc; i++) {
		const char *w = argv[i];

		if (pending) {
			/* the value of an option: keep --socket and --timeout for the daemon */
			if (pending == &params[O_SOCKET] || pending == &params[O_TIMEOUT]) {
				(void)set_param(&x, pending, w, false);
			}
			pending = NULL;
		} else if (!dashdash && strcmp(w, "--") == 0) {
			dashdash = true;
		} else if (!dashdash && w[0] == '-' && w[1]) {
			p = option_row(w, &no);
			if (p && p->arg && !no && !strchr(w, '=')) {
				pending = p;
			} else if (p && (p == &params[O_SOCKET] || p == &params[O_TIMEOUT])) {
				(void)set_param(&x, p, strchr(w, '=') + 1, false);
			}
		} else if (!name) {
			name = w;
		} else {
			pos++;
		}
	}
	/* usage errors about the words so far are not for the user now */
	(void)freopen("/dev/null", "w", stderr);
	p = NULL;
	if (!pending && !dashdash && strncmp(k.cur, "--", 2) == 0 && strchr(k.cur, '=')) {
		/* --color=al */
		p = option_row(k.cur, &no);
		if (p && p->arg && !no) {
			snprintf(prefix, sizeof(prefix), "%.*s=", (int)strcspn(k.cur, "="), k.cur);
			k.prefix = prefix;
			pending = p;
		}
	}
	if (pending) {
		complete_option_value(&k, name, pending);
	} else if (!dashdash && k.cur[0] == '-') {
		complete_options(&k, name);
	} else if (!name) {
		complete_commands(&k);
	} else {
		complete_argument(&k, name, pos);
	}
	x.c = tr_client_close(x.c);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_OTHER;
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

	now_s = (int64_t)time(NULL);
	if (argc > 1 && strcmp(argv[1], "__complete") == 0) {
		return complete(argc - 2, argv + 2);
	}
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
