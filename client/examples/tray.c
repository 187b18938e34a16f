/*
 * tray.c — a tray-style helper on its own poll() loop, using libtaskrouter's fd API.
 *
 * It never blocks: it lists the current tasks and subscribes with asynchronous calls,
 * prints one line per event and keeps an in-memory task table up to date, as a UI
 * process would. Signals arrive through a self-pipe so SIGINT/SIGTERM end the loop
 * cleanly.
 *
 * Usage: taskrouter-tray-example [--socket PATH] [--max-events N] [--exit-on-task SID]
 * Exit status: 0 on a clean exit, 1 on a failure (connection lost, bad reply), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <taskrouter/client.h>

#define CALL_TIMEOUT_MS 10000
#define MAX_TASKS 1024

struct app {
	struct tr_client *c;
	struct tr_task *tasks[MAX_TASKS];
	size_t n_tasks;
	long max_events;
	long n_events;
	const char *exit_on_task;
	bool subscribed;
	bool done;
	int status;
};

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig) {
	int saved = errno;
	unsigned char b = (unsigned char)sig;

	(void)!write(sig_pipe[1], &b, 1);
	errno = saved;
}

static ssize_t task_find(struct app *a, const char *sid) {
	for (size_t i = 0; i < a->n_tasks; i++) {
		const char *s = tr_task_sid(a->tasks[i]);

		if (s && strcmp(s, sid) == 0) {
			return (ssize_t)i;
		}
	}
	return -1;
}

static void task_remove(struct app *a, const char *sid) {
	ssize_t i = task_find(a, sid);

	if (i < 0) {
		return;
	}
	tr_task_free(a->tasks[i]);
	a->tasks[i] = a->tasks[--a->n_tasks];
}

/* Insert or replace a copy of t. */
static void task_upsert(struct app *a, const struct tr_task *t) {
	struct tr_task *copy;
	const char *sid = tr_task_sid(t);
	ssize_t i;

	if (!sid) {
		return;
	}
	copy = tr_task_dup(t);
	if (!copy) {
		return; /* out of memory: keep the old entry */
	}
	i = task_find(a, sid);
	if (i >= 0) {
		tr_task_free(a->tasks[i]);
		a->tasks[i] = copy;
	} else if (a->n_tasks < MAX_TASKS) {
		a->tasks[a->n_tasks++] = copy;
	} else {
		tr_task_free(copy);
	}
}

static bool status_is_final(const char *s) {
	return s && (strcmp(s, "completed") == 0 || strcmp(s, "canceled") == 0 ||
			    strcmp(s, "deleted") == 0);
}

static void on_event(struct tr_client *c, const struct tr_client_event *ev, void *userdata) {
	struct app *a = userdata;
	const char *status = ev->task ? tr_task_status(ev->task) : NULL;

	if (a->done) {
		return; /* more events came in the same read; we are leaving */
	}
	printf("event seq=%lld %s task=%s status=%s\n", (long long)ev->seq, ev->name,
		ev->task_sid ? ev->task_sid : "-", status ? status : "-");
	if (ev->task) {
		/* a vanished task has left this worker whatever its status says */
		if (status_is_final(status) || strcmp(ev->name, "vanished") == 0) {
			task_remove(a, tr_task_sid(ev->task));
		} else {
			task_upsert(a, ev->task);
		}
	} else if (ev->task_sid && strstr(ev->name, "deleted")) {
		task_remove(a, ev->task_sid);
	}
	printf("tasks: %zu\n", a->n_tasks);
	fflush(stdout);
	a->n_events++;
	if (a->max_events > 0 && a->n_events >= a->max_events) {
		a->done = true;
	}
	if (a->exit_on_task && ev->task_sid && strcmp(ev->task_sid, a->exit_on_task) == 0) {
		printf("saw task %s, exiting\n", a->exit_on_task);
		a->done = true;
	}
}

static void on_list(struct tr_client *c, const char *result, const struct tr_client_error *err,
	void *userdata) {
	struct app *a = userdata;
	struct tr_task **tasks = NULL;
	size_t n = 0;

	if (err) {
		fprintf(stderr, "tray: task.list failed: %s\n", err->message ? err->message : "?");
		a->status = 1;
		a->done = true;
		return;
	}
	if (tr_task_list_parse(result, &tasks, &n) < 0) {
		fprintf(stderr, "tray: bad task.list reply\n");
		a->status = 1;
		a->done = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct tr_task *t = tasks[i];

		task_upsert(a, t);
		printf("task %s status=%s queue=%s\n", tr_task_sid(t) ? tr_task_sid(t) : "-",
			tr_task_status(t) ? tr_task_status(t) : "-",
			tr_task_queue_name(t) ? tr_task_queue_name(t) : "-");
	}
	tr_task_list_free(tasks, n);
	printf("tasks: %zu\n", a->n_tasks);
	/* The task may have been created before we subscribed: then it is in the list. */
	if (a->exit_on_task && task_find(a, a->exit_on_task) >= 0) {
		printf("saw task %s, exiting\n", a->exit_on_task);
		a->done = true;
	}
	fflush(stdout);
}

static void on_subscribed(struct tr_client *c, const char *result,
	const struct tr_client_error *err, void *userdata) {
	struct app *a = userdata;

	if (err && a->done) {
		return; /* we are leaving on purpose: closing the client cancelled the call */
	}
	if (err) {
		fprintf(stderr, "tray: events.subscribe failed: %s\n",
			err->message ? err->message : "?");
		a->status = 1;
		a->done = true;
		return;
	}
	a->subscribed = true;
	printf("subscribed\n");
	fflush(stdout);
}

int main(int argc, char **argv) {
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"max-events", required_argument, NULL, 'n'},
		{"exit-on-task", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct app a = {0};
	const char *path = NULL;
	struct sigaction sa = {.sa_handler = on_signal};
	int r, opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 'n':
			a.max_events = strtol(optarg, NULL, 10);
			if (a.max_events <= 0) {
				fprintf(stderr, "tray: invalid --max-events\n");
				return 2;
			}
			break;
		case 't':
			a.exit_on_task = optarg;
			break;
		case 'h':
			printf("Usage: %s [--socket PATH] [--max-events N] [--exit-on-task SID]\n",
				argv[0]);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "tray: unexpected argument\n");
		return 2;
	}

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		perror("tray: pipe2");
		return 1;
	}
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)signal(SIGPIPE, SIG_IGN);

	r = tr_client_connect(path, CALL_TIMEOUT_MS, &a.c);
	if (r < 0) {
		fprintf(stderr, "tray: cannot connect: %s\n", strerror(-r));
		return 1;
	}
	tr_client_set_event_cb(a.c, on_event, &a);
	/* List first, then subscribe: replies come back in order of the daemon's answers. */
	r = tr_client_call_async(a.c, "task.list", NULL, CALL_TIMEOUT_MS, on_list, &a, NULL);
	if (r >= 0) {
		r = tr_client_call_async(
			a.c, "events.subscribe", "{}", CALL_TIMEOUT_MS, on_subscribed, &a, NULL);
	}
	if (r < 0) {
		fprintf(stderr, "tray: request failed: %s\n", strerror(-r));
		a.c = tr_client_close(a.c);
		return 1;
	}

	while (!a.done) {
		struct pollfd pfd[2] = {
			{.fd = tr_client_fd(a.c), .events = POLLIN},
			{.fd = sig_pipe[0], .events = POLLIN},
		};

		if (tr_client_wants_write(a.c)) {
			pfd[0].events |= POLLOUT;
		}
		r = poll(pfd, 2, tr_client_timeout_ms(a.c));
		if (r < 0 && errno != EINTR) {
			perror("tray: poll");
			a.status = 1;
			break;
		}
		if (pfd[1].revents & POLLIN) {
			unsigned char b;

			while (read(sig_pipe[0], &b, 1) == 1) {
			}
			printf("signal, exiting\n");
			break;
		}
		r = tr_client_process(a.c);
		if (r < 0) {
			fprintf(stderr, "tray: connection lost: %s\n", strerror(-r));
			a.status = 1;
			break;
		}
	}

	a.c = tr_client_close(a.c);
	for (size_t i = 0; i < a.n_tasks; i++) {
		tr_task_free(a.tasks[i]);
	}
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	fflush(stdout);
	return a.status;
}
