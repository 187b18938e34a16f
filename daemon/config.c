/*
 * config.c — defaults, then the INI file (inih), then TASKROUTERD_* environment
 * variables, then the command line. One option table serves all three.
 *
 * The token never passes through here: only where to read it from.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tr-build.h"
#include "tr-limits.h"
#include "log.h"
#include "proxy.h"

#define TIMEOUT_MAX_MS (24 * 3600 * 1000)

enum opt_kind {
	K_STR,
	K_INT,
	K_BOOL,
	K_LEVEL,
	K_TRISTATE,
	K_GROUP,
	K_PROXY, /* a string that tr_proxy_parse accepts, or "none" */
};

struct opt {
	const char *name;
	enum opt_kind kind;
	size_t off;
	int min, max; /* K_INT */
	const char *help;
};

#define O(f) offsetof(struct tr_config, f)
static const struct opt opts[] = {
	{"region", K_STR, O(region), 0, 0, "Event Bridge region (spec 1.1): us1, stage-us1, ..."},
	{"edge", K_STR, O(edge), 0, 0, "accepted and ignored, as by the SDK since 0.7.2"},
	{"websocket-url", K_STR, O(websocket_url), 0, 0, "websocket URL (overrides --region)"},
	{"eventbridge-url", K_STR, O(eventbridge_url), 0, 0, "REST proxy URL (overrides --region)"},
	{"token-file", K_STR, O(token_file), 0, 0, "file holding the worker token (watched)"},
	{"token-command", K_STR, O(token_command), 0, 0, "command printing a fresh token (sh -c)"},
	{"token-command-timeout-ms", K_INT, O(token_command_timeout_ms), 100, TIMEOUT_MAX_MS,
		"deadline for --token-command"},
	{"socket", K_STR, O(socket_path), 0, 0, "Unix socket path"},
	{"ca-file", K_STR, O(ca_file), 0, 0, "CA bundle for wss/https"},
	{"proxy", K_PROXY, O(proxy), 0, 0,
		"http://HOST:PORT proxy, or none (default: the *_proxy variables)"},
	{"no-proxy", K_STR, O(no_proxy), 0, 0,
		"hosts reached directly (default: no_proxy, NO_PROXY)"},
	{"proxy-credentials-file", K_STR, O(proxy_credentials_file), 0, 0,
		"file holding the proxy's USER:PASSWORD"},
	{"connect-timeout-ms", K_INT, O(connect_timeout_ms), TR_WS_CONNECT_TIMEOUT_MS_MIN,
		TR_WS_CONNECT_TIMEOUT_MS_MAX,
		"connect + proxy + TLS handshake deadline (default 15000)"},
	{"client-version", K_STR, O(client_version), 0, 0, "clientVersion sent upstream"},
	{"log-level", K_LEVEL, O(log_level), 0, 0, "err, warning, notice, info, debug"},
	{"close-existing-sessions", K_BOOL, O(close_existing_sessions), 0, 0,
		"ask the server to close the worker's other sessions (default false)"},
	{"set-offline-on-disconnect", K_TRISTATE, O(set_offline_on_disconnect), 0, 0,
		"send setWorkerOfflineIfDisconnected (default: not sent)"},
	{"version-check", K_BOOL, O(version_check), 0, 0, "send If-Match on updates (default on)"},
	{"rest-timeout-ms", K_INT, O(rest_timeout_ms), 100, TIMEOUT_MAX_MS,
		"REST request deadline (default 15000)"},
	{"heartbeat-timeout-ms", K_INT, O(silence_timeout_ms), 100, TIMEOUT_MAX_MS,
		"reconnect after this much silence (default 30000)"},
	{"closed-grace-ms", K_INT, O(closed_grace_ms), 0, TIMEOUT_MAX_MS,
		"keep closed tasks this long (default 5000)"},
	{"token-warn-seconds", K_INT, O(token_warn_s), 5, 86400,
		"tokenWillExpire this long before expiry (default 60, min 5)"},
	{"max-connections", K_INT, O(max_connections), 1, 1000000, "local client limit"},
	{"allow-group", K_GROUP, 0, 0, 0, "also accept clients of this group (name or gid)"},
	{"system", K_BOOL, O(system_service), 0, 0, "system service defaults"},
};
#undef O

enum {
	OPT_HELP = 1000,
	OPT_VERSION,
	OPT_CONFIG,
	OPT_TOKEN,
	OPT_NO_VERSION_CHECK,
	OPT_TABLE, /* OPT_TABLE + index into opts[] */
};

static const struct opt *find_opt(const char *name) {
	char norm[64];
	size_t i;

	for (i = 0; name[i] && i < sizeof(norm) - 1; i++) {
		norm[i] = name[i] == '_' ? '-' : (char)((name[i] >= 'A' && name[i] <= 'Z') ?
								name[i] - 'A' + 'a' :
								name[i]);
	}
	norm[i] = '\0';
	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
		if (strcmp(opts[k].name, norm) == 0) {
			return &opts[k];
		}
	}
	return NULL;
}

int tr_config_parse_bool(const char *s) {
	static const char *const t[] = {"1", "true", "yes", "on"};
	static const char *const f[] = {"0", "false", "no", "off"};

	if (!s) {
		return -EINVAL;
	}
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, t[i]) == 0) {
			return 1;
		}
		if (strcasecmp(s, f[i]) == 0) {
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_int(const char *s, int min, int max, int *ret) {
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		return -EINVAL;
	}
	*ret = (int)v;
	return 0;
}

/* K_STR: a copy of val (not empty) into the field. */
static int set_str(struct tr_config *cfg, const struct opt *o, const char *val,
	const char *source) {
	char **p = (char **)(void *)((char *)cfg + o->off);
	char *copy;

	if (!val || !*val) {
		fprintf(stderr, "taskrouterd: %s: %s needs a value\n", source, o->name);
		return -EINVAL;
	}
	copy = strdup(val);
	if (!copy) {
		return -ENOMEM;
	}
	free(*p);
	*p = copy;
	return 0;
}

/* Apply one option; source names where it came from, for the error message. */
static int set_opt(struct tr_config *cfg, const struct opt *o, const char *val, const char *source) {
	char *base = (char *)cfg;
	int r, v;

	switch (o->kind) {
	case K_STR:
		return set_str(cfg, o, val, source);
	case K_INT:
		if (!val || parse_int(val, o->min, o->max, &v) < 0) {
			fprintf(stderr, "taskrouterd: %s: %s must be an integer in %d..%d\n", source,
				o->name, o->min, o->max);
			return -EINVAL;
		}
		*(int *)(void *)(base + o->off) = v;
		return 0;
	case K_BOOL:
		r = val ? tr_config_parse_bool(val) : 1;
		if (r < 0) {
			fprintf(stderr, "taskrouterd: %s: %s must be true or false\n", source, o->name);
			return -EINVAL;
		}
		*(bool *)(base + o->off) = r;
		return 0;
	case K_TRISTATE:
		r = val ? tr_config_parse_bool(val) : 1;
		if (r < 0) {
			fprintf(stderr, "taskrouterd: %s: %s must be true or false\n", source, o->name);
			return -EINVAL;
		}
		*(int *)(void *)(base + o->off) = r;
		return 0;
	case K_LEVEL:
		r = tr_log_level_parse(val);
		if (r < 0) {
			fprintf(stderr, "taskrouterd: %s: unknown log level (err, warning, notice, info, debug)\n",
				source);
			return -EINVAL;
		}
		*(int *)(void *)(base + o->off) = r;
		return 0;
	case K_GROUP: {
		struct group *g;
		if (val && parse_int(val, 0, INT32_MAX, &v) == 0) {
			cfg->allow_group = (gid_t)v;
			cfg->allow_group_set = true;
			return 0;
		}
		g = val ? getgrnam(val) : NULL;
		if (!g) {
			fprintf(stderr, "taskrouterd: %s: unknown group for allow-group\n", source);
			return -EINVAL;
		}
		cfg->allow_group = g->gr_gid;
		cfg->allow_group_set = true;
		return 0;
	}
	case K_PROXY: {
		struct tr_proxy p;
		char *err = NULL;
		if (val && *val && strcasecmp(val, "none") != 0) {
			/* A user or password is refused here, like a token: see refuse_token. */
			r = tr_proxy_parse(val, &p, &err);
			if (r < 0) {
				if (err) {
					fprintf(stderr, "taskrouterd: %s: %s\n", source, err);
				}
				free(err);
				return r;
			}
			tr_proxy_done(&p);
		}
		return set_str(cfg, o, val, source);
	}
	}
	return -EINVAL;
}

static void refuse_token(const char *where) {
	fprintf(stderr,
		"taskrouterd: refusing to take the token itself from %s: command lines and the "
		"environment are visible to other processes and end up in logs, and config files are "
		"often shared. Use --token-file PATH, a systemd credential named 'token' "
		"(LoadCredential=token:PATH), or --token-command CMD.\n",
		where);
}

struct ini_ctx {
	struct tr_config *cfg;
	const char *path;
	int err;
};

static int on_ini_line(void *user, const char *section, const char *name, const char *value) {
	struct ini_ctx *c = user;
	const struct opt *o;
	char src[300];

	if (section && *section && strcmp(section, "taskrouterd") != 0) {
		fprintf(stderr, "taskrouterd: %s: unknown section [%s]\n", c->path, section);
		c->err = -EINVAL;
		return 0;
	}
	if (strcasecmp(name, "token") == 0) {
		refuse_token(c->path);
		c->err = -EINVAL;
		return 0;
	}
	o = find_opt(name);
	if (!o) {
		fprintf(stderr, "taskrouterd: %s: unknown key '%s'\n", c->path, name);
		c->err = -EINVAL;
		return 0;
	}
	snprintf(src, sizeof(src), "%s", c->path);
	if (set_opt(c->cfg, o, value, src) < 0) {
		c->err = -EINVAL;
		return 0;
	}
	return 1;
}

static int load_ini(struct tr_config *cfg, const char *path, bool must_exist) {
	struct ini_ctx c = {.cfg = cfg, .path = path};
	int r;

	if (access(path, F_OK) < 0) {
		if (!must_exist) {
			return 0;
		}
		fprintf(stderr, "taskrouterd: config file %s: %s\n", path, strerror(errno));
		return -EINVAL;
	}
	r = ini_parse(path, on_ini_line, &c);
	if (r < 0) {
		fprintf(stderr, "taskrouterd: cannot read config file %s\n", path);
		return -EINVAL;
	}
	if (c.err < 0) {
		return c.err;
	}
	if (r > 0) {
		fprintf(stderr, "taskrouterd: %s:%d: syntax error\n", path, r);
		return -EINVAL;
	}
	return 0;
}

static int load_env(struct tr_config *cfg) {
	char name[96];

	if (getenv("TASKROUTERD_TOKEN")) {
		refuse_token("the environment (TASKROUTERD_TOKEN)");
		return -EINVAL;
	}
	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
		size_t n = snprintf(name, sizeof(name), "TASKROUTERD_");
		const char *v;
		for (const char *p = opts[k].name; *p && n < sizeof(name) - 1; p++) {
			name[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
		}
		name[n] = '\0';
		v = getenv(name);
		if (v && set_opt(cfg, &opts[k], v, name) < 0) {
			return -EINVAL;
		}
	}
	return 0;
}

static void usage(FILE *f) {
	fprintf(f,
		"Usage: taskrouterd [OPTIONS]\n"
		"Keep one TaskRouter Event Bridge session for a worker and serve it on a Unix socket.\n\n"
		"  -h, --help                 show this help\n"
		"      --version              show the version\n"
		"      --config PATH          INI file (default: %s/taskrouterd.conf if present, then,\n"
		"                             not as root, $XDG_CONFIG_HOME/taskrouterd/taskrouterd.conf\n"
		"                             if present, whose settings win)\n",
		TR_SYSCONFDIR);
	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
		const char *arg = "";
		switch (opts[k].kind) {
		case K_STR:
		case K_LEVEL:
		case K_GROUP:
		case K_PROXY:
			arg = " VALUE";
			break;
		case K_INT:
			arg = " N";
			break;
		case K_BOOL:
		case K_TRISTATE:
			arg = "[=BOOL]";
			break;
		}
		fprintf(f, "      --%s%s\n          %s\n", opts[k].name, arg, opts[k].help);
	}
	fprintf(f,
		"      --no-version-check     do not send If-Match\n\n"
		"Every option can also be set as TASKROUTERD_NAME (e.g. TASKROUTERD_LOG_LEVEL) or as\n"
		"'name = value' in the INI file; flags win over the environment, which wins over the file.\n"
		"The token is read from --token-file, from the systemd credential 'token'\n"
		"($CREDENTIALS_DIRECTORY/token) or from --token-command; never from the command line.\n"
		"The proxy: --proxy, else https_proxy or HTTPS_PROXY (wss/https) or http_proxy\n"
		"(ws/http); all_proxy and HTTP_PROXY are not read. Exceptions: --no-proxy, else\n"
		"no_proxy or NO_PROXY. Its USER:PASSWORD comes from --proxy-credentials-file or\n"
		"the systemd credential 'proxy-credentials', never from --proxy.\n\n"
		"Exit status: 0 clean shutdown; 1 runtime failure (or the event loop did not close\n"
		"cleanly); 2 bad usage or configuration; 3 no usable token (missing, malformed,\n"
		"expired); 4 start-up failure (socket, libwebsockets, libcurl).\n");
}

char *tr_config_default_socket(bool system_service) {
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char *s = NULL;

	if (system_service || !xdg || !*xdg) {
		/* Without a runtime directory (root, or a bare session) use the system path; if we
		 * may not create it, binding reports that. */
		return strdup("/run/taskrouterd/socket");
	}
	if (asprintf(&s, "%s/taskrouterd/socket", xdg) < 0) {
		return NULL;
	}
	return s;
}

bool tr_config_host_is_loopback(const char *host) {
	struct in_addr a4;
	struct in6_addr a6;

	if (!host) {
		return false;
	}
	if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0) {
		return true;
	}
	if (inet_pton(AF_INET, host, &a4) == 1) {
		return (ntohl(a4.s_addr) >> 24) == 127;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		return IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return false;
}

int tr_config_check_url(const char *url, bool websocket, const char **ret_reason) {
	const char *secure = websocket ? "wss://" : "https://";
	const char *plain = websocket ? "ws://" : "http://";
	const char *h, *end;
	char host[256];
	size_t n;
	bool tls;

	if (!url) {
		*ret_reason = "missing URL";
		return -EINVAL;
	}
	if (strncasecmp(url, secure, strlen(secure)) == 0) {
		tls = true;
		h = url + strlen(secure);
	} else if (strncasecmp(url, plain, strlen(plain)) == 0) {
		tls = false;
		h = url + strlen(plain);
	} else {
		*ret_reason = websocket ? "the websocket URL must start with wss:// (or ws:// to loopback)" :
					  "the REST URL must start with https:// (or http:// to loopback)";
		return -EINVAL;
	}
	if (strpbrk(url, " \t\r\n\"")) {
		*ret_reason = "the URL contains white space or quotes";
		return -EINVAL;
	}
	if (strchr(url, '?') || strchr(url, '#')) {
		*ret_reason = "the URL must not carry a query or fragment";
		return -EINVAL;
	}
	if (memchr(h, '@', strcspn(h, "/"))) {
		*ret_reason = "credentials in the URL are not supported";
		return -EINVAL;
	}
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end) {
			*ret_reason = "unterminated IPv6 address in the URL";
			return -EINVAL;
		}
		h++;
		n = (size_t)(end - h);
	} else {
		n = strcspn(h, ":/");
	}
	if (n == 0 || n >= sizeof(host)) {
		*ret_reason = "the URL has no valid host";
		return -EINVAL;
	}
	memcpy(host, h, n);
	host[n] = '\0';
	if (!tls && !tr_config_host_is_loopback(host)) {
		*ret_reason = websocket ? "plain ws:// is only allowed to a loopback host; use wss://" :
					  "plain http:// is only allowed to a loopback host; use https://";
		return -EINVAL;
	}
	return 0;
}

int tr_config_region_urls(const char *region, char **ret_ws, char **ret_eb) {
	char *ws = NULL, *eb = NULL;
	int r;

	if (!region || !*region || strcmp(region, "us1") == 0) {
		ws = strdup("wss://event-bridge.twilio.com/v1/wschannels");
		eb = strdup("https://event-bridge.twilio.com/v1/wschannels");
	} else {
		r = asprintf(&ws, "wss://event-bridge.%s.twilio.com/v1/wschannels", region);
		if (r < 0) {
			ws = NULL;
		}
		r = asprintf(&eb, "https://event-bridge.%s.twilio.com/v1/wschannels", region);
		if (r < 0) {
			eb = NULL;
		}
	}
	if (!ws || !eb) {
		free(ws);
		free(eb);
		return -ENOMEM;
	}
	*ret_ws = ws;
	*ret_eb = eb;
	return 0;
}

static int validate(struct tr_config *cfg) {
	const char *reason;
	const char *cred;

	if (cfg->region && strspn(cfg->region, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
				   strlen(cfg->region)) {
		fprintf(stderr, "taskrouterd: region may only hold lowercase letters, digits and '-'\n");
		return -EINVAL;
	}
	if (cfg->edge) {
		/* The SDK dropped edges in 0.7.2 and its tests check that an edge never changes a
		 * URL: the same here, said once. */
		fprintf(stderr, "taskrouterd: edge '%s' is ignored: the Event Bridge hosts follow the "
				"region only\n",
			cfg->edge);
	}
	if (!cfg->websocket_url || !cfg->eventbridge_url) {
		char *ws, *eb;
		if (tr_config_region_urls(cfg->region, &ws, &eb) < 0) {
			return -ENOMEM;
		}
		if (!cfg->websocket_url) {
			cfg->websocket_url = ws;
		} else {
			free(ws);
		}
		if (!cfg->eventbridge_url) {
			cfg->eventbridge_url = eb;
		} else {
			free(eb);
		}
	}
	if (tr_config_check_url(cfg->websocket_url, true, &reason) < 0) {
		fprintf(stderr, "taskrouterd: --websocket-url: %s\n", reason);
		return -EINVAL;
	}
	if (tr_config_check_url(cfg->eventbridge_url, false, &reason) < 0) {
		fprintf(stderr, "taskrouterd: --eventbridge-url: %s\n", reason);
		return -EINVAL;
	}
	if (cfg->token_file && cfg->token_command) {
		fprintf(stderr, "taskrouterd: give either --token-file or --token-command, not both\n");
		return -EINVAL;
	}
	cred = getenv("CREDENTIALS_DIRECTORY");
	if (!cfg->token_file && !cfg->token_command && cred && *cred) {
		if (asprintf(&cfg->token_file, "%s/token", cred) < 0) {
			cfg->token_file = NULL;
			return -ENOMEM;
		}
		cfg->token_from_credential = true;
	}
	/* The proxy's credentials from systemd (LoadCredential=proxy-credentials:PATH) when no
	 * file is named; unlike the token they are optional, so only when present. */
	if (!cfg->proxy_credentials_file && cred && *cred) {
		char *path;
		if (asprintf(&path, "%s/proxy-credentials", cred) < 0) {
			return -ENOMEM;
		}
		if (access(path, F_OK) == 0) {
			cfg->proxy_credentials_file = path;
			cfg->proxy_credentials_from_credential = true;
		} else {
			free(path);
		}
	}
	if (!cfg->token_file && !cfg->token_command) {
		fprintf(stderr, "taskrouterd: no token source: use --token-file PATH, a systemd "
				"credential named 'token', or --token-command CMD\n");
		return -EINVAL;
	}
	if (!cfg->socket_path) {
		cfg->socket_path = tr_config_default_socket(cfg->system_service);
		if (!cfg->socket_path) {
			return -ENOMEM;
		}
	}
	if (!cfg->client_version) {
		cfg->client_version = strdup(TR_CLIENT_VERSION_DEFAULT);
		if (!cfg->client_version) {
			return -ENOMEM;
		}
	}
	return 0;
}

static void set_defaults(struct tr_config *cfg) {
	*cfg = (struct tr_config){
		.log_level = TR_LOG_INFO,
		.set_offline_on_disconnect = -1,
		.version_check = true,
		.rest_timeout_ms = TR_REST_TIMEOUT_MS_DEFAULT,
		.silence_timeout_ms = TR_WS_SILENCE_TIMEOUT_MS_DEFAULT,
		.closed_grace_ms = TR_TASK_CLOSED_GRACE_MS_DEFAULT,
		.token_warn_s = 60,
		.max_connections = TR_MAX_CONNECTIONS_DEFAULT,
		.token_command_timeout_ms = 30000,
		.connect_timeout_ms = TR_WS_CONNECT_TIMEOUT_MS_DEFAULT,
	};
}

/* The per-user file, $XDG_CONFIG_HOME/taskrouterd/taskrouterd.conf (~/.config when unset),
 * into buf; false when there is no such place (no HOME) or it does not fit. */
static bool user_config_path(char *buf, size_t size) {
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	if (xdg && xdg[0] == '/') {
		n = snprintf(buf, size, "%s/taskrouterd/taskrouterd.conf", xdg);
	} else if (home && home[0] == '/') {
		n = snprintf(buf, size, "%s/.config/taskrouterd/taskrouterd.conf", home);
	} else {
		return false;
	}
	return n > 0 && (size_t)n < size;
}

/* Is --system on the command line (a system service, whatever its uid)? */
static bool system_flag(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			break;
		}
		if (strcmp(argv[i], "--system") == 0 || (strncmp(argv[i], "--system=", 9) == 0 &&
			tr_config_parse_bool(argv[i] + 9) == 1)) {
			return true;
		}
	}
	return false;
}

int tr_config_load(struct tr_config *cfg, int argc, char **argv) {
	struct option lopts[sizeof(opts) / sizeof(opts[0]) + 8];
	const char *config_path = NULL;
	char user_path[4096];
	bool explicit_config = false, user = false;
	size_t n = 0;
	int r, c;

	set_defaults(cfg);

	lopts[n++] = (struct option){"help", no_argument, NULL, OPT_HELP};
	lopts[n++] = (struct option){"version", no_argument, NULL, OPT_VERSION};
	lopts[n++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
	lopts[n++] = (struct option){"token", optional_argument, NULL, OPT_TOKEN};
	lopts[n++] = (struct option){"no-version-check", no_argument, NULL, OPT_NO_VERSION_CHECK};
	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
		int has = (opts[k].kind == K_BOOL || opts[k].kind == K_TRISTATE) ? optional_argument :
										   required_argument;
		lopts[n++] = (struct option){opts[k].name, has, NULL, OPT_TABLE + (int)k};
	}
	lopts[n] = (struct option){0};

	/* Pass 1: find --config (and refuse --token) before anything else is applied. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		if (c == OPT_CONFIG) {
			config_path = optarg;
			explicit_config = true;
		} else if (c == OPT_TOKEN) {
			refuse_token("the command line (--token)");
			goto fail;
		}
	}
	if (!config_path) {
		const char *e = getenv("TASKROUTERD_CONFIG");
		if (e && *e) {
			config_path = e;
			explicit_config = true;
		} else {
			/* the system's file, then (not as root, not --system: the user service)
			 * the user's own, whose settings win */
			config_path = TR_SYSCONFDIR "/taskrouterd.conf";
			user = geteuid() != 0 && !system_flag(argc, argv) &&
				user_config_path(user_path, sizeof(user_path)) &&
				access(user_path, F_OK) == 0;
		}
	}
	cfg->config_file = strdup(user ? user_path : config_path);
	if (!cfg->config_file) {
		goto fail;
	}
	if (load_ini(cfg, config_path, explicit_config) < 0) {
		goto fail;
	}
	if (user && load_ini(cfg, user_path, false) < 0) {
		goto fail;
	}
	if (load_env(cfg) < 0) {
		goto fail;
	}

	/* Pass 2: the flags win. */
	optind = 0;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		char src[96];
		switch (c) {
		case 'h':
		case OPT_HELP:
			usage(stdout);
			tr_config_done(cfg);
			return 1;
		case OPT_VERSION:
			printf("taskrouterd %s\n", TR_VERSION);
			tr_config_done(cfg);
			return 1;
		case OPT_CONFIG:
			break;
		case OPT_NO_VERSION_CHECK:
			cfg->version_check = false;
			break;
		case '?':
			fprintf(stderr, "Try 'taskrouterd --help'.\n");
			goto fail;
		default:
			if (c < OPT_TABLE || c >= OPT_TABLE + (int)(sizeof(opts) / sizeof(opts[0]))) {
				goto fail;
			}
			snprintf(src, sizeof(src), "--%s", opts[c - OPT_TABLE].name);
			if (set_opt(cfg, &opts[c - OPT_TABLE], optarg, src) < 0) {
				goto fail;
			}
		}
	}
	if (optind < argc) {
		fprintf(stderr, "taskrouterd: unexpected argument '%s'\n", argv[optind]);
		goto fail;
	}
	r = validate(cfg);
	if (r < 0) {
		goto fail;
	}
	return 0;
fail:
	tr_config_done(cfg);
	return -EINVAL;
}

void tr_config_done(struct tr_config *cfg) {
	free(cfg->config_file);
	free(cfg->region);
	free(cfg->edge);
	free(cfg->websocket_url);
	free(cfg->eventbridge_url);
	free(cfg->token_file);
	free(cfg->token_command);
	free(cfg->socket_path);
	free(cfg->ca_file);
	free(cfg->client_version);
	free(cfg->proxy);
	free(cfg->no_proxy);
	free(cfg->proxy_credentials_file);
	set_defaults(cfg);
}
