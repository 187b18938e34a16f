/*
 * poll.c — libtaskrouter on a plain poll() loop: asks daemon.status, subscribes to every
 * event and prints one line per event, all with asynchronous calls.
 *
 * The loop is the whole integration: watch tr_client_fd for tr_client_events, wait at most
 * tr_client_timeout_ms, and call tr_client_process after every wakeup, input or not (that
 * is where replies, events and timeouts are dispatched). Signals come through a signalfd
 * in the same poll.
 *
 * Usage: taskrouter-poll-example [--socket PATH] [--max-events N]
 * Exit status: 0 on a clean exit, 1 on a failure (connection lost, call failed), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <taskrouter/client.h>

#define CALL_TIMEOUT_MS 10000

struct app {
	long max_events;
	long n_events;
	bool done;
	int status;
};

static void fail(struct app *a, const char *what, const struct tr_client_error *err) {
	fprintf(stderr, "poll-example: %s failed: %s\n", what,
		err && err->message ? err->message : "?");
	a->status = 1;
	a->done = true;
}

static void on_event(struct tr_client *c, const struct tr_client_event *ev, void *userdata) {
	struct app *a = userdata;
	const char *status = ev->task ? tr_task_status(ev->task) : NULL;

	if (a->done) {
		return; /* more events came in the same read; we are leaving */
	}
	printf("event seq=%" PRId64 " %s task=%s status=%s\n", ev->seq, ev->name,
		ev->task_sid ? ev->task_sid : "-", status ? status : "-");
	fflush(stdout);
	if (a->max_events > 0 && ++a->n_events >= a->max_events) {
		a->done = true;
	}
}

static void on_subscribed(struct tr_client *c, const char *result,
	const struct tr_client_error *err, void *userdata) {
	struct app *a = userdata;
	struct tr_result *r = NULL;
	int64_t seq = -1;

	if (err) {
		if (!a->done) {
			fail(a, "events.subscribe", err);
		}
		return;
	}
	if (tr_result_parse(result, &r) == 0) {
		(void)tr_result_get_int(r, "seq", &seq);
	}
	printf("subscribed seq=%" PRId64 "\n", seq);
	fflush(stdout);
	tr_result_free(r);
}

/* The first reply: print the daemon's state, then subscribe (a call from a callback). */
static void on_status(struct tr_client *c, const char *result, const struct tr_client_error *err,
	void *userdata) {
	struct app *a = userdata;
	struct tr_result *r = NULL;
	const char *state;
	int64_t conns = -1;
	int e;

	if (err) {
		if (!a->done) {
			fail(a, "daemon.status", err);
		}
		return;
	}
	if (tr_result_parse(result, &r) < 0) {
		fail(a, "reading daemon.status", NULL);
		return;
	}
	state = tr_result_get_string(r, "state");
	(void)tr_result_get_int(r, "connections", &conns);
	printf("status state=%s connections=%" PRId64 "\n", state ? state : "-", conns);
	fflush(stdout);
	tr_result_free(r);
	e = tr_client_call_async(
		c, "events.subscribe", "{}", CALL_TIMEOUT_MS, on_subscribed, a, NULL);
	if (e < 0) {
		fprintf(stderr, "poll-example: events.subscribe: %s\n", strerror(-e));
		a->status = 1;
		a->done = true;
	}
}

int main(int argc, char **argv) {
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"max-events", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct app a = {0};
	struct tr_client *c = NULL;
	const char *path = NULL;
	sigset_t mask;
	int sfd, r, opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 'n':
			a.max_events = strtol(optarg, NULL, 10);
			if (a.max_events <= 0) {
				fprintf(stderr, "poll-example: invalid --max-events\n");
				return 2;
			}
			break;
		case 'h':
			printf("Usage: %s [--socket PATH] [--max-events N]\n", argv[0]);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "poll-example: unexpected argument\n");
		return 2;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	(void)sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		perror("poll-example: signalfd");
		return 1;
	}

	r = tr_client_connect(path, CALL_TIMEOUT_MS, &c);
	if (r < 0) {
		fprintf(stderr, "poll-example: cannot connect: %s\n", strerror(-r));
		close(sfd);
		return 1;
	}
	tr_client_set_event_cb(c, on_event, &a);
	/* Written at once: no need to watch for POLLOUT first. */
	r = tr_client_call_async(c, "daemon.status", NULL, CALL_TIMEOUT_MS, on_status, &a, NULL);
	if (r < 0) {
		fprintf(stderr, "poll-example: daemon.status: %s\n", strerror(-r));
		a.status = 1;
		a.done = true;
	}

	while (!a.done) {
		struct pollfd pfd[2] = {
			{.fd = tr_client_fd(c), .events = 0},
			{.fd = sfd, .events = POLLIN},
		};
		int events = tr_client_events(c);

		if (events < 0) { /* the connection is dead: nothing left to wait for */
			fprintf(stderr, "poll-example: connection lost: %s\n", strerror(-events));
			a.status = 1;
			break;
		}
		pfd[0].events = (short)events;
		r = poll(pfd, 2, tr_client_timeout_ms(c));
		if (r < 0 && errno != EINTR) {
			perror("poll-example: poll");
			a.status = 1;
			break;
		}
		if (pfd[1].revents & POLLIN) {
			printf("signal, exiting\n");
			break;
		}
		/* Also on a timeout with no input: expired calls fail from here. */
		r = tr_client_process(c);
		if (r < 0) {
			fprintf(stderr, "poll-example: connection lost: %s\n", strerror(-r));
			a.status = 1;
			break;
		}
	}

	c = tr_client_close(c);
	close(sfd);
	fflush(stdout);
	return a.status;
}
