/*
 * main.c — taskrouter-sim: a TaskRouter Event Bridge simulator on loopback.
 * Parses options, builds the default world, mints the worker tokens, listens, prints
 * "taskrouter-sim listening on HOST:PORT" and runs the uv loop until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr-build.h"
#include "server.h"
#include "sim.h"

#define DEFAULT_SECRET "taskrouter-sim-secret"

static void usage(FILE *f) {
	fputs("Usage: taskrouter-sim [OPTIONS]\n"
	      "A TaskRouter Event Bridge simulator: websocket events and the REST proxy on\n"
	      "/v1/wschannels, and a control API under /sim/, all on one loopback port.\n\n"
	      "  --listen HOST:PORT     listen address (default 127.0.0.1:0, an ephemeral port)\n"
	      "  --port-file FILE       write the port number to FILE once listening\n"
	      "  --token-dir DIR        write each worker's token to DIR/<name>.token (0600)\n"
	      "  --heartbeat-ms N       heartbeat interval (default 15000)\n"
	      "  --key-secret S         HS256 secret for minting and checking tokens\n"
	      "  --no-verify            accept tokens without checking their signature\n"
	      "  --token-ttl SECONDS    lifetime of minted tokens (default 3600)\n"
	      "  --offline-grace-ms N   wait before setting a disconnected worker offline (0)\n"
	      "  --init-delay-ms N      delay the init message after the upgrade (0)\n"
	      "  --tls-cert F --tls-key F  serve wss/https\n"
	      "  --verbose              log each REST call and pushed event to stderr\n"
	      "  --version, --help\n\n"
	      "Default world: workers alice and bob (Available), activities Available and\n"
	      "Offline, task channels voice and chat, one queue, one workflow.\n"
	      "Control API: GET /sim/state, GET /sim/requests, POST /sim/tasks, /sim/bulk-tasks,\n"
	      "/sim/reservations/WR/{accept,reject,timeout,rescind,wrap,complete},\n"
	      "/sim/tasks/WT/{update,cancel,complete,wrap}, /sim/transfers/TT/{accept,reject,timeout},\n"
	      "/sim/workers/NAME/{activity,attributes,channels/CH}, /sim/tokens, /sim/reset-requests,\n"
	      "/sim/faults/{drop,heartbeats,expire-token,rest,ws-message,transfer-event-order,\n"
	      "event-order}. See tests/sim/README.md.\n",
		f);
}

static int parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret) {
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static void on_signal(uv_signal_t *h, int signum) {
	struct sim *s = h->data;

	(void)signum;
	sim_begin_shutdown(s);
}

enum {
	OPT_LISTEN = 256,
	OPT_PORT_FILE,
	OPT_TOKEN_DIR,
	OPT_HEARTBEAT,
	OPT_SECRET,
	OPT_NO_VERIFY,
	OPT_TTL,
	OPT_GRACE,
	OPT_INIT_DELAY,
	OPT_CERT,
	OPT_KEY,
	OPT_VERBOSE,
	OPT_VERSION,
	OPT_HELP,
};

static const struct option longopts[] = {
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"port-file", required_argument, NULL, OPT_PORT_FILE},
	{"token-dir", required_argument, NULL, OPT_TOKEN_DIR},
	{"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
	{"key-secret", required_argument, NULL, OPT_SECRET},
	{"no-verify", no_argument, NULL, OPT_NO_VERIFY},
	{"token-ttl", required_argument, NULL, OPT_TTL},
	{"offline-grace-ms", required_argument, NULL, OPT_GRACE},
	{"init-delay-ms", required_argument, NULL, OPT_INIT_DELAY},
	{"tls-cert", required_argument, NULL, OPT_CERT},
	{"tls-key", required_argument, NULL, OPT_KEY},
	{"verbose", no_argument, NULL, OPT_VERBOSE},
	{"version", no_argument, NULL, OPT_VERSION},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

static int parse_args(int argc, char **argv, struct sim_opts *o, char *host, size_t hostlen) {
	int c;
	int64_t v;

	o->listen_host = "127.0.0.1";
	o->heartbeat_ms = 15000;
	o->key_secret = DEFAULT_SECRET;
	o->verify = true;
	o->token_ttl = 3600;
	while ((c = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN: {
			const char *colon = strrchr(optarg, ':');
			if (!colon || (size_t)(colon - optarg) >= hostlen || colon == optarg ||
				parse_i64(colon + 1, 0, 65535, &v) < 0) {
				fprintf(stderr, "taskrouter-sim: --listen wants HOST:PORT\n");
				return -EINVAL;
			}
			memcpy(host, optarg, (size_t)(colon - optarg));
			host[colon - optarg] = '\0';
			o->listen_host = host;
			o->port = (int)v;
			break;
		}
		case OPT_PORT_FILE:
			o->port_file = optarg;
			break;
		case OPT_TOKEN_DIR:
			o->token_dir = optarg;
			break;
		case OPT_HEARTBEAT:
			if (parse_i64(optarg, 10, 3600000, &o->heartbeat_ms) < 0) {
				fprintf(stderr, "taskrouter-sim: --heartbeat-ms wants 10..3600000\n");
				return -EINVAL;
			}
			break;
		case OPT_SECRET:
			if (!optarg[0]) {
				fprintf(stderr, "taskrouter-sim: --key-secret must not be empty\n");
				return -EINVAL;
			}
			o->key_secret = optarg;
			break;
		case OPT_NO_VERIFY:
			o->verify = false;
			break;
		case OPT_TTL:
			if (parse_i64(optarg, -86400, 86400 * 365, &o->token_ttl) < 0) {
				fprintf(stderr, "taskrouter-sim: --token-ttl wants seconds\n");
				return -EINVAL;
			}
			break;
		case OPT_GRACE:
			if (parse_i64(optarg, 0, 3600000, &o->offline_grace_ms) < 0) {
				fprintf(stderr, "taskrouter-sim: --offline-grace-ms wants 0..3600000\n");
				return -EINVAL;
			}
			break;
		case OPT_INIT_DELAY:
			if (parse_i64(optarg, 0, 600000, &o->init_delay_ms) < 0) {
				fprintf(stderr, "taskrouter-sim: --init-delay-ms wants 0..600000\n");
				return -EINVAL;
			}
			break;
		case OPT_CERT:
			o->tls_cert = optarg;
			break;
		case OPT_KEY:
			o->tls_key = optarg;
			break;
		case OPT_VERBOSE:
		case 'v':
			o->verbose = true;
			break;
		case OPT_VERSION:
			printf("taskrouter-sim %s\n", TR_VERSION);
			exit(0);
		case OPT_HELP:
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "taskrouter-sim: unexpected argument %s\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->tls_cert != !o->tls_key) {
		fprintf(stderr, "taskrouter-sim: --tls-cert and --tls-key go together\n");
		return -EINVAL;
	}
	return 0;
}

static int write_port_file(const char *path, int port) {
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f) {
		return -errno;
	}
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	return 0;
}

int main(int argc, char **argv) {
	static struct sim sim;
	struct sim *s = &sim;
	uv_loop_t loop;
	char host[256];
	int r, i;

	signal(SIGPIPE, SIG_IGN);
	if (parse_args(argc, argv, &s->opts, host, sizeof(host)) < 0) {
		return 2;
	}
	if (uv_loop_init(&loop) < 0) {
		fprintf(stderr, "taskrouter-sim: uv_loop_init failed\n");
		return 1;
	}
	s->loop = &loop;
	s->world = world_new(&loop, sim_on_event, s);
	if (!s->world) {
		fprintf(stderr, "taskrouter-sim: out of memory\n");
		return 1;
	}
	s->world->offline_grace_ms = s->opts.offline_grace_ms;
	for (i = 0; i < s->world->n_workers; i++) {
		r = sim_mint_token(s, s->world->workers[i], s->opts.token_ttl);
		if (r < 0) {
			fprintf(stderr, "taskrouter-sim: cannot write the token of %s in %s: %s\n",
				s->world->workers[i]->name, s->opts.token_dir, strerror(-r));
			return 1;
		}
	}
	(void)uv_timer_init(&loop, &s->shutdown_timer);
	s->shutdown_timer.data = s;
	(void)uv_signal_init(&loop, &s->sigterm);
	(void)uv_signal_init(&loop, &s->sigint);
	(void)uv_signal_init(&loop, &s->sighup);
	s->sigterm.data = s->sigint.data = s->sighup.data = s;
	(void)uv_signal_start(&s->sigterm, on_signal, SIGTERM);
	(void)uv_signal_start(&s->sigint, on_signal, SIGINT);
	(void)uv_signal_start(&s->sighup, on_signal, SIGHUP);

	r = sim_server_start(s);
	if (r < 0) {
		s->exit_code = 1;
		sim_begin_shutdown(s);
	} else {
		if (s->opts.port_file && (r = write_port_file(s->opts.port_file, s->port)) < 0) {
			fprintf(stderr, "taskrouter-sim: cannot write %s: %s\n", s->opts.port_file,
				strerror(-r));
			s->exit_code = 1;
			sim_begin_shutdown(s);
		} else {
			printf("taskrouter-sim listening on %s:%d\n", s->opts.listen_host, s->port);
			fflush(stdout);
			sim_log(s, "workspace %s, workers alice %s and bob %s%s",
				s->world->workspace_sid, s->world->workers[0]->sid,
				s->world->workers[1]->sid,
				s->opts.verify ? "" : ", token signatures not checked");
		}
	}
	(void)uv_run(&loop, UV_RUN_DEFAULT);
	if (s->ctx) {
		lws_context_destroy(s->ctx); /* second call frees the context */
		s->ctx = NULL;
	}
	sim_requests_clear(s);
	free(s->log);
	for (size_t k = 0; k < s->n_revoked; k++) {
		free(s->revoked[k]);
	}
	free(s->revoked);
	r = uv_loop_close(&loop);
	if (r != 0) {
		fprintf(stderr, "taskrouter-sim: uv_loop_close: %s\n", uv_strerror(r));
		return 1;
	}
	return s->exit_code;
}
