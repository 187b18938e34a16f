/*
 * main.c — taskrouterd: configuration, logging, the loop, and the order in
 * which modules start and stop (STYLE.md §6).
 *
 * Start: config → log → curl checks → loop → core → bridge → rpcsrv (socket
 * activation or bind) → bridge start (token) → READY=1.
 * Stop: rpcsrv close → bridge close → core done → loop handles → drain →
 * uv_loop_close() == 0.
 */
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bridge.h"
#include "config.h"
#include "core.h"
#include "tr-build.h"
#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "local-methods.h"
#include "rpcsrv.h"
#include "sd-env.h"
#include "tr-limits.h"

struct app {
	struct tr_loop lp;
	struct tr_config cfg;
	struct tr_daemon d;
	int argc;
	char **argv;
	int exit_code;
	bool stopping;
	bool core_up;
	struct tr_bridge_events events; /* core's callbacks, with state wrapped for STATUS= */
	const struct tr_bridge_events *core_events;
};

static struct app app;

static void notify_status(struct tr_daemon *d, enum tr_bridge_state s, const char *reason) {
	char buf[700];

	switch (s) {
	case TR_BRIDGE_CONNECTING:
		snprintf(buf, sizeof(buf), "STATUS=connecting");
		break;
	case TR_BRIDGE_OPEN:
		snprintf(buf, sizeof(buf), "STATUS=connected, waiting for init");
		break;
	case TR_BRIDGE_INITIALIZING:
		snprintf(buf, sizeof(buf), "STATUS=initializing (fetching worker and reservations)");
		break;
	case TR_BRIDGE_READY:
		snprintf(buf, sizeof(buf), "STATUS=ready");
		break;
	case TR_BRIDGE_RECONNECTING: {
		uint64_t ms = d->bridge ? tr_bridge_reconnect_delay_ms(d->bridge) : 0;
		snprintf(buf, sizeof(buf), "STATUS=reconnecting in %" PRIu64 "s (%s)",
			(ms + 999) / 1000, reason ? reason : "disconnected");
		break;
	}
	case TR_BRIDGE_TOKEN_EXPIRED:
		snprintf(buf, sizeof(buf), "STATUS=token expired; waiting for a new token");
		break;
	case TR_BRIDGE_STOPPED:
	default:
		snprintf(buf, sizeof(buf), "STATUS=stopping");
		break;
	}
	(void)tr_loop_notify(buf);
}

static void on_state(void *userdata, enum tr_bridge_state s, const char *reason) {
	if (app.core_events && app.core_events->state) {
		app.core_events->state(userdata, s, reason);
	}
	notify_status(userdata, s, reason);
}

static void on_bridge_closed(void *userdata) {
	struct app *a = userdata;

	if (a->core_up) {
		tr_core_done(&a->d);
		a->core_up = false;
	}
	tr_loop_close_handles(&a->lp);
}

static void close_bridge(struct app *a) {
	if (a->d.bridge) {
		tr_bridge_close(a->d.bridge, on_bridge_closed, a);
	} else {
		on_bridge_closed(a);
	}
}

static void on_rpcsrv_closed(void *userdata) {
	close_bridge(userdata);
}

static void begin_shutdown(struct app *a) {
	if (a->stopping) {
		return;
	}
	a->stopping = true;
	(void)tr_loop_notify("STOPPING=1\nSTATUS=stopping");
	if (a->d.rpcsrv) {
		tr_rpcsrv_close(a->d.rpcsrv, on_rpcsrv_closed, a);
	} else {
		close_bridge(a);
	}
}

static void on_stop(void *userdata, int signum) {
	struct app *a = userdata;

	(void)signum;
	if (a->stopping) {
		tr_log_notice("already shutting down");
		return;
	}
	begin_shutdown(a);
}

/* SIGHUP: a setting that applies without a restart moves from the re-read configuration
 * (which then frees the old value). */
static void take_string(const char *key, char **cur, char **fresh) {
	char *t = *cur;

	if (!(*cur == *fresh || (*cur && *fresh && strcmp(*cur, *fresh) == 0))) {
		tr_log_info("%s is now %s", key, *fresh ? *fresh : "(not set)");
	}
	*cur = *fresh;
	*fresh = t;
}

static void on_reload(void *userdata) {
	struct app *a = userdata;
	struct tr_config fresh;
	int r;

	if (a->stopping) {
		return;
	}
	/* systemd's reload protocol: RELOADING=1 with the monotonic time, READY=1 when done
	 * (what `systemctl reload` and Type=notify-reload wait for) */
	{
		char buf[80];
		snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, uv_hrtime() / 1000u);
		(void)tr_loop_notify(buf);
	}
	r = tr_config_load(&fresh, a->argc, a->argv);
	if (r == 0) {
		if (fresh.log_level != a->cfg.log_level) {
			a->cfg.log_level = fresh.log_level;
			tr_log_setup(fresh.log_level);
			tr_log_info("log level is now %d", fresh.log_level);
		}
		take_string("ca-file", &a->cfg.ca_file, &fresh.ca_file);
		take_string("proxy", &a->cfg.proxy, &fresh.proxy);
		take_string("no-proxy", &a->cfg.no_proxy, &fresh.no_proxy);
		take_string("proxy-credentials-file", &a->cfg.proxy_credentials_file,
			&fresh.proxy_credentials_file);
		a->cfg.proxy_credentials_from_credential = fresh.proxy_credentials_from_credential;
		tr_log_info("configuration re-read (the log level, the CA file, the proxy settings "
			    "and the token apply without a restart)");
		if (a->d.bridge && tr_bridge_reconfigure(a->d.bridge) == -EBADF) {
			/* the new CA file was refused: the one in use stays, and so does its name */
			take_string("ca-file", &a->cfg.ca_file, &fresh.ca_file);
		}
		tr_config_done(&fresh);
	} else {
		tr_log_warning("SIGHUP: the configuration has errors; keeping the current one");
	}
	if (a->d.bridge) {
		(void)tr_bridge_reload_token(a->d.bridge);
	}
	(void)tr_loop_notify("READY=1");
}

static int listen_fd_from_systemd(void) {
	int n = tr_sd_listen_fds(true);

	if (n < 0) {
		tr_log_err("socket activation: LISTEN_PID/LISTEN_FDS: %s", strerror(-n));
		return n;
	}
	if (n > 1) {
		tr_log_err("socket activation passed %d sockets; expected one", n);
		return -EINVAL;
	}
	if (n == 1) {
		tr_log_info("using the socket passed by systemd");
		return TR_SD_LISTEN_FDS_START;
	}
	return -1;
}

/*
 * The soft open-file limit is set to what the daemon can use: its connection limit plus
 * TR_FD_RESERVE (the upstream, logs, refusals), within the hard limit. Raised when it is
 * lower (systemd's advice for a daemon with many sockets: the soft default stays 1024 for
 * select() users; we use epoll), and *lowered* when it is higher, because libwebsockets sizes
 * its fd tables from it: a soft limit of 65536 cost 0.5 MB of tables for a handful of
 * sockets. Capped at TR_NOFILE_MAX (a hard limit of 2^30 in some containers). It must happen
 * before the websocket context exists.
 */
static void size_nofile(size_t max_connections) {
	struct rlimit rl;
	rlim_t want = (rlim_t)max_connections + TR_FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		return;
	}
	/* never below 1024 (or the limit we were given, if lower): children such as the token
	 * command inherit it, and a table of 1024 costs libwebsockets about 16 KB */
	if (want < TR_NOFILE_FLOOR && rl.rlim_cur > want) {
		want = rl.rlim_cur < TR_NOFILE_FLOOR ? rl.rlim_cur : TR_NOFILE_FLOOR;
	}
	if (want > TR_NOFILE_MAX) {
		want = TR_NOFILE_MAX;
	}
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) {
		want = rl.rlim_max;
	}
	if (rl.rlim_cur == want) {
		return;
	}
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		tr_log_warning("cannot set the open-file limit to %llu: %s", (unsigned long long)want,
			strerror(errno));
	} else {
		tr_log_debug("open-file limit set to %llu", (unsigned long long)want);
	}
}

/*
 * GnuTLS is in the process only because Debian's libcurl links librtmp and libldap, for rtmp://
 * and ldap:// URLs the daemon never asks for (its TLS is OpenSSL's, through libcurl and our
 * own context). Its library constructor initialises it all the same: about 100 KB of ASN.1
 * trees on the heap, for as long as the daemon runs. Undo that initialisation (GnuTLS counts
 * them; were librtmp or libldap ever used, they call gnutls_global_init() themselves). Looked
 * up rather than linked, so that a libcurl without GnuTLS needs nothing.
 */
static void release_gnutls(void) {
	void (*deinit)(void);

	*(void **)&deinit = dlsym(RTLD_DEFAULT, "gnutls_global_deinit");
	if (deinit) {
		deinit();
	}
}

int main(int argc, char **argv) {
	struct app *a = &app;
	const curl_version_info_data *cv;
	int r, listen_fd;

	a->argc = argc;
	a->argv = argv;
	r = tr_config_load(&a->cfg, argc, argv);
	if (r == 1) {
		return TR_EXIT_OK;
	}
	if (r < 0) {
		return TR_EXIT_USAGE;
	}
	tr_log_setup(a->cfg.log_level);
	release_gnutls();
	size_nofile(a->cfg.max_connections > 0 ? (size_t)a->cfg.max_connections
					       : TR_MAX_CONNECTIONS_DEFAULT);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		tr_log_err("curl_global_init failed");
		tr_config_done(&a->cfg);
		return TR_EXIT_STARTUP;
	}
	cv = curl_version_info(CURLVERSION_NOW);
	if (!(cv->features & CURL_VERSION_ASYNCHDNS)) {
		/* Synchronous DNS would block the event loop. */
		tr_log_err("libcurl %s has no asynchronous DNS resolver; refusing to run",
			cv->version);
		curl_global_cleanup();
		tr_config_done(&a->cfg);
		return TR_EXIT_STARTUP;
	}

	r = tr_loop_init(&a->lp, on_stop, on_reload, a);
	if (r < 0) {
		tr_log_err("cannot create the event loop: %s", uv_strerror(r));
		curl_global_cleanup();
		tr_config_done(&a->cfg);
		return TR_EXIT_STARTUP;
	}
	a->d.loop = &a->lp.loop;
	a->d.cfg = &a->cfg;
	tr_log_info("taskrouterd %s starting", TR_VERSION);

	r = tr_core_init(&a->d);
	if (r < 0) {
		tr_log_err("cannot initialise the task cache: %s", strerror(-r));
		a->exit_code = TR_EXIT_STARTUP;
		goto stop;
	}
	a->core_up = true;
	a->core_events = tr_core_bridge_events();
	if (a->core_events) {
		a->events = *a->core_events;
	}
	a->events.state = on_state;

	r = tr_bridge_new(&a->lp.loop, &a->cfg, &a->events, &a->d, &a->d.bridge);
	if (r < 0) {
		/* a URL, CA file, proxy or proxy credentials the bridge cannot use is the
		 * configuration's fault (logged); the rest is the machine's */
		a->exit_code = r == -EIO || r == -ENOMEM ? TR_EXIT_STARTUP : TR_EXIT_USAGE;
		goto stop;
	}
	listen_fd = listen_fd_from_systemd();
	if (listen_fd < -1) {
		a->exit_code = TR_EXIT_STARTUP;
		goto stop;
	}
	{
		const struct tr_rpcsrv_options opts = {
			.socket_path = a->cfg.socket_path,
			.listen_fd = listen_fd,
			.max_connections = a->cfg.max_connections > 0 ?
				(size_t)a->cfg.max_connections : 0,
			.allow_group_set = a->cfg.allow_group_set,
			.allow_group = a->cfg.allow_group,
		};
		const struct tr_rpcsrv_handlers handlers = {
			.dispatch = tr_local_methods_dispatch,
			.closed = tr_local_methods_conn_closed,
			.userdata = &a->d,
		};

		r = tr_rpcsrv_new(&a->lp.loop, &opts, &handlers, &a->d.rpcsrv);
	}
	if (r < 0) {
		a->d.rpcsrv = NULL;
		a->exit_code = TR_EXIT_STARTUP;
		goto stop;
	}
	r = tr_bridge_start(a->d.bridge);
	if (r < 0) {
		/* Everything but a lack of memory is about the token (logged by the bridge). */
		a->exit_code = r == -ENOMEM ? TR_EXIT_STARTUP : TR_EXIT_TOKEN;
		goto stop;
	}
	(void)tr_loop_notify("READY=1");
	if (tr_bridge_get_state(a->d.bridge) != TR_BRIDGE_STOPPED) {
		notify_status(&a->d, tr_bridge_get_state(a->d.bridge), NULL);
	}
	tr_loop_watchdog_start(&a->lp);
	goto run;
stop:
	begin_shutdown(a);
run:
	(void)tr_loop_run(&a->lp);

	/* Every module has closed its handles; free what is left. */
	a->d.rpcsrv = tr_rpcsrv_free(a->d.rpcsrv);
	a->d.bridge = tr_bridge_free(a->d.bridge);
	if (a->core_up) {
		tr_core_done(&a->d);
		a->core_up = false;
	}
	if (tr_loop_done(&a->lp) < 0) {
		tr_log_err("the event loop did not close cleanly");
		if (a->exit_code == 0) {
			a->exit_code = TR_EXIT_FAILURE;
		}
	}
	curl_global_cleanup();
	tr_log_info("taskrouterd stopped");
	tr_config_done(&a->cfg);
	return a->exit_code;
}
