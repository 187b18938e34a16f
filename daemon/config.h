/*
 * config.h — taskrouterd's configuration: flags > environment > INI file.
 *
 * The token itself is never part of the config: only where to get it
 * (token_file, the systemd credential, token_command). The same holds for the proxy's
 * user and password (proxy_credentials_file).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct tr_config {
	char *config_file;      /* the last file read: --config, $TASKROUTERD_CONFIG, else
	                         * TR_SYSCONFDIR/taskrouterd.conf, then (not as root) the user's
	                         * $XDG_CONFIG_HOME/taskrouterd/taskrouterd.conf if present */
	char *region;           /* --region */
	char *edge;             /* --edge: accepted, ignored (spec 1.1) */
	char *websocket_url;    /* --websocket-url (derived from region when unset) */
	char *eventbridge_url;  /* --eventbridge-url (derived from region when unset) */
	char *token_file;       /* --token-file */
	char *token_command;    /* --token-command (run with /bin/sh -c, asynchronously) */
	char *socket_path;      /* --socket (default: see tr_config_default_socket) */
	char *ca_file;          /* --ca-file */
	char *client_version;   /* --client-version (clientVersion query/header) */
	int log_level;          /* --log-level (enum tr_log_level) */
	bool close_existing_sessions; /* --close-existing-sessions (default false) */
	int set_offline_on_disconnect; /* --set-offline-on-disconnect: -1 not sent, 0 false, 1 true */
	bool version_check;     /* --version-check / --no-version-check (default on) */
	int rest_timeout_ms;    /* --rest-timeout-ms (default 15000) */
	int silence_timeout_ms; /* --heartbeat-timeout-ms (default 30000) */
	int closed_grace_ms;    /* --closed-grace-ms (default 5000) */
	int token_warn_s;       /* --token-warn-seconds (default 60, minimum 5) */
	int max_connections;    /* --max-connections (default TR_MAX_CONNECTIONS_DEFAULT) */
	bool allow_group_set;   /* --allow-group NAME|GID */
	gid_t allow_group;
	bool system_service;    /* --system: default socket /run/taskrouterd/socket */
	int token_command_timeout_ms; /* --token-command-timeout-ms (default 30000) */
	bool token_from_credential;   /* token_file was derived from $CREDENTIALS_DIRECTORY */
	char *proxy;            /* --proxy: checked by tr_proxy_parse (no user or password), or
	                         * "none" (any case): no proxy, whatever the environment says;
	                         * NULL: from the environment. Give it to tr_proxy_choose. */
	char *no_proxy;         /* --no-proxy: NO_PROXY-style list; NULL: no_proxy, NO_PROXY */
	char *proxy_credentials_file; /* --proxy-credentials-file: one line USER:PASSWORD (read
	                               * with tr_proxy_read_credentials); default
	                               * $CREDENTIALS_DIRECTORY/proxy-credentials if it exists */
	bool proxy_credentials_from_credential; /* ... derived from $CREDENTIALS_DIRECTORY (its
	                                         * mode is not judged, as for the token) */
	int connect_timeout_ms; /* --connect-timeout-ms: a websocket connect, proxy reply and TLS
	                         * handshake together (default 15000, 1000..120000) */
};

/* Exit codes of taskrouterd (also listed in --help). */
enum {
	TR_EXIT_OK = 0,
	TR_EXIT_FAILURE = 1, /* runtime failure, or uv_loop_close() != 0 at exit */
	TR_EXIT_USAGE = 2,   /* bad option, config file or environment */
	TR_EXIT_TOKEN = 3,   /* no usable token at start: missing, malformed or expired */
	TR_EXIT_STARTUP = 4, /* could not start: socket, libwebsockets, curl, loop */
};

/* Fill defaults, then the INI file, then the environment (TASKROUTERD_*), then argv.
 * Returns 0, 1 when --help/--version was printed (exit 0), or -EINVAL after printing
 * a message on stderr (exit 2). */
int tr_config_load(struct tr_config *cfg, int argc, char **argv);
void tr_config_done(struct tr_config *cfg);

/* The default socket path: $XDG_RUNTIME_DIR/taskrouterd/socket, or /run/taskrouterd/socket
 * for a system service (or when XDG_RUNTIME_DIR is unset and we are root). Caller frees. */
char *tr_config_default_socket(bool system_service);

/*
 * Check an upstream URL: websocket URLs must be wss:// (or ws:// to a loopback host), REST
 * URLs https:// (or http:// to loopback). Returns 0, or -EINVAL with *ret_reason set to a
 * static English text.
 */
int tr_config_check_url(const char *url, bool websocket, const char **ret_reason);

/* Is host (no port, no brackets) a loopback name or address: localhost, 127.0.0.0/8, ::1. */
bool tr_config_host_is_loopback(const char *host);

/* Spec §1.1: the two URLs for a region (NULL, "" or "us1": the bare host). Returns 0 or
 * -ENOMEM; the caller frees both. */
int tr_config_region_urls(const char *region, char **ret_ws, char **ret_eb);

/* Parse true/false/yes/no/on/off/1/0. Returns 0 or 1, or -EINVAL. */
int tr_config_parse_bool(const char *s);
