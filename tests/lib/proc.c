/* proc.c — see proc.h. Test-process code: blocking calls with poll() deadlines. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

bool trt_under_valgrind(void) {
	const char *v = getenv("TR_UNDER_VALGRIND");
	return v && *v && strcmp(v, "0") != 0;
}

int trt_ms(int ms) {
	return trt_under_valgrind() ? ms * 10 : ms;
}

int64_t trt_now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int trt_remaining(int64_t deadline) {
	int64_t r = deadline - trt_now_ms();
	return r < 0 ? 0 : (int)r;
}

/* ---- the children of this test program ---- */

#define MAX_CHILDREN 64
static pid_t children[MAX_CHILDREN];

static void kill_children(void) {
	for (size_t i = 0; i < MAX_CHILDREN; i++) {
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			(void)waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
	}
}

static void child_add(pid_t pid) {
	static bool registered;
	if (!registered) {
		atexit(kill_children);
		registered = true;
	}
	for (size_t i = 0; i < MAX_CHILDREN; i++) {
		if (children[i] == 0) {
			children[i] = pid;
			return;
		}
	}
}

static void child_del(pid_t pid) {
	for (size_t i = 0; i < MAX_CHILDREN; i++) {
		if (children[i] == pid) {
			children[i] = 0;
		}
	}
}

/* ---- spawning ---- */

void trt_proc_init(struct trt_proc *p) {
	memset(p, 0, sizeof(*p));
	p->pid = -1;
	p->pidfd = -1;
	trt_rbuf_init(&p->out, -1);
	p->status = -1;
}

static bool is_proxy_var(const char *kv) {
	static const char *const names[] = {"http_proxy=", "https_proxy=", "all_proxy=",
		"no_proxy=", "HTTP_PROXY=", "HTTPS_PROXY=", "ALL_PROXY=", "NO_PROXY=",
		"TASKROUTERD_PROXY=", "TASKROUTERD_NO_PROXY=", "TASKROUTERD_PROXY_CREDENTIALS_FILE="};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strncmp(kv, names[i], strlen(names[i])) == 0) {
			return true;
		}
	}
	return false;
}

bool trt_replay_check = true;

/* Our environment without proxy variables, plus the replay check and extras; the strings are
 * borrowed. */
static char **env_with(const char *const *extra) {
	size_t n_env = 0, n_extra = 0;
	char **envp;
	while (environ[n_env]) {
		n_env++;
	}
	while (extra && extra[n_extra]) {
		n_extra++;
	}
	envp = calloc(n_env + n_extra + 2, sizeof(char *));
	if (!envp) {
		return NULL;
	}
	/* The proxy variables of the machine running the tests never reach a child: every
	 * test talks to loopback, and a proxy test sets its own (in extra). */
	n_env = 0;
	for (size_t i = 0; environ[i]; i++) {
		if (!is_proxy_var(environ[i])) {
			envp[n_env++] = environ[i];
		}
	}
	if (trt_replay_check) {
		envp[n_env++] = (char *)"TASKROUTERD_CHECK_REPLAY=1";
	}
	for (size_t i = 0; i < n_extra; i++) {
		envp[n_env + i] = (char *)extra[i];
	}
	return envp;
}

static void write_all(int fd, const char *s, size_t len) {
	while (len) {
		ssize_t k = write(fd, s, len);
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			return; /* the child closed its stdin: what it read is what it gets */
		}
		s += k;
		len -= (size_t)k;
	}
}

int trt_proc_spawn(struct trt_proc *p, const char *name, const char *const *argv,
	const struct trt_spawn_opts *opts) {
	posix_spawn_file_actions_t fa;
	int stdin_pipe[2] = {-1, -1}, stdout_pipe[2] = {-1, -1};
	char **envp = NULL;
	int r;

	trt_proc_init(p);
	p->name = strdup(name);
	p->log_path = opts->log_path ? strdup(opts->log_path) : NULL;
	envp = env_with(opts->env);
	if (!p->name || (opts->log_path && !p->log_path) || !envp) {
		free(envp);
		return -ENOMEM;
	}
	if ((opts->input && pipe2(stdin_pipe, O_CLOEXEC) < 0) ||
		(opts->pipe_stdout && pipe2(stdout_pipe, O_CLOEXEC) < 0)) {
		r = -errno;
		goto out;
	}

	posix_spawn_file_actions_init(&fa);
	if (opts->input) {
		posix_spawn_file_actions_adddup2(&fa, stdin_pipe[0], 0);
	} else {
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	}
	if (opts->log_path) {
		posix_spawn_file_actions_addopen(
			&fa, 2, opts->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	}
	if (opts->pipe_stdout) {
		posix_spawn_file_actions_adddup2(&fa, stdout_pipe[1], 1);
	} else if (opts->log_path) {
		posix_spawn_file_actions_adddup2(&fa, 2, 1);
	}
	r = posix_spawn(&p->pid, argv[0], &fa, NULL, (char *const *)argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0) {
		fprintf(stderr, "# spawn %s (%s): %s\n", name, argv[0], strerror(r));
		p->pid = -1;
		r = -r;
		goto out;
	}
	child_add(p->pid);
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	if (p->pidfd < 0) {
		r = -errno;
		goto out;
	}
	if (opts->pipe_stdout) {
		trt_rbuf_init(&p->out, stdout_pipe[0]);
		stdout_pipe[0] = -1;
	}
	if (opts->input) {
		close(stdin_pipe[0]);
		stdin_pipe[0] = -1;
		write_all(stdin_pipe[1], opts->input, strlen(opts->input));
	}
	r = 0;
out:
	for (size_t i = 0; i < 2; i++) {
		if (stdin_pipe[i] >= 0) {
			close(stdin_pipe[i]);
		}
		if (stdout_pipe[i] >= 0) {
			close(stdout_pipe[i]);
		}
	}
	free(envp);
	return r;
}

/* ---- waiting ---- */

int trt_proc_wait_output(struct trt_proc *p, const char *needle, int timeout_ms) {
	int64_t deadline = trt_now_ms() + timeout_ms;

	if (p->out.fd < 0 && !p->out.data) {
		return -EINVAL;
	}
	for (;;) {
		ssize_t r;
		if (needle && p->out.data && strstr(p->out.data, needle)) {
			return 0;
		}
		if (p->out.fd < 0) {
			return needle ? -EPIPE : 0;
		}
		r = trt_rbuf_read(&p->out, trt_remaining(deadline));
		if (r == 0) {
			/* EOF: the child is gone or closed its stdout; nothing more will come */
			close(p->out.fd);
			p->out.fd = -1;
		} else if (r < 0) {
			return (int)r;
		}
	}
}

/* Reap the child once its pidfd says it exited; returns its status or -ETIMEDOUT. */
static int reap(struct trt_proc *p, int timeout_ms) {
	struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
	int st;

	if (p->pid <= 0) {
		return p->status;
	}
	if (poll(&pfd, 1, timeout_ms) <= 0) {
		return -ETIMEDOUT;
	}
	if (waitpid(p->pid, &st, 0) < 0) {
		return -errno;
	}
	child_del(p->pid);
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	p->pid = -1;
	close(p->pidfd);
	p->pidfd = -1;
	return p->status;
}

void trt_proc_kill(struct trt_proc *p) {
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		(void)reap(p, trt_ms(5000));
	}
}

int trt_proc_wait_exit(struct trt_proc *p, int timeout_ms) {
	int64_t deadline = trt_now_ms() + timeout_ms;
	int r = 0;

	if (p->out.fd >= 0) {
		/* drained, so that a child blocked on a full pipe can finish */
		r = trt_proc_wait_output(p, NULL, timeout_ms);
	}
	if (r == 0) {
		r = reap(p, trt_remaining(deadline));
	}
	if (r == -ETIMEDOUT && p->pid > 0) {
		fprintf(stderr, "# %s did not exit within %d ms, killing it\n", p->name,
			timeout_ms);
		trt_proc_kill(p);
	}
	return r;
}

/* Print the tail of a file as TAP comments. */
static void print_tail(const char *cmd, const char *path) {
	char line[1200];
	snprintf(line, sizeof(line), "%s '%s' | sed 's/^/#   /' >&2", cmd, path);
	(void)!system(line);
}

int trt_proc_stop(struct trt_proc *p, int timeout_ms) {
	int r;
	if (p->pid <= 0) {
		return p->status;
	}
	kill(p->pid, SIGTERM);
	r = trt_proc_wait_exit(p, timeout_ms);
	if (r > 0 && p->log_path) {
		char vg[512];
		size_t n = strlen(p->log_path);
		fprintf(stderr, "# %s exited with status %d; its log follows\n", p->name, r);
		print_tail("tail -n 40", p->log_path);
		/* under valgrind (status 99), its report: dir/NAME.log -> dir/NAME.valgrind.log */
		if (n > 4 && n < sizeof(vg) - 16) {
			snprintf(vg, sizeof(vg), "%.*s.valgrind.log", (int)(n - 4), p->log_path);
			if (access(vg, R_OK) == 0) {
				print_tail("head -n 60", vg);
			}
		}
	}
	return r;
}

void trt_proc_done(struct trt_proc *p) {
	trt_proc_kill(p);
	if (p->pidfd >= 0) {
		close(p->pidfd);
	}
	trt_rbuf_done(&p->out);
	free(p->name);
	free(p->log_path);
	trt_proc_init(p);
}

bool trt_proc_alive(const struct trt_proc *p) {
	struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
	if (p->pid <= 0 || p->pidfd < 0) {
		return false;
	}
	return poll(&pfd, 1, 0) == 0;
}

bool trt_proc_log_contains(const struct trt_proc *p, const char *needle) {
	FILE *f = p->log_path ? fopen(p->log_path, "r") : NULL;
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	if (!f) {
		return false;
	}
	while (!found && getline(&line, &cap, f) >= 0) {
		found = strstr(line, needle) != NULL;
	}
	free(line);
	fclose(f);
	return found;
}

int trt_run(const char *const *argv, const char *const *env, const char *input, int timeout_ms,
	char **ret_out) {
	struct trt_spawn_opts opts = {.env = env, .pipe_stdout = true, .input = input};
	struct trt_proc p;
	int r = trt_proc_spawn(&p, argv[0], argv, &opts);

	if (r == 0) {
		r = trt_proc_wait_exit(&p, timeout_ms);
	}
	if (ret_out) {
		/* the output changes hands */
		*ret_out = p.out.data ? p.out.data : strdup("");
		p.out.data = NULL;
	}
	trt_proc_done(&p);
	return r;
}

size_t trt_valgrind_argv(const char **argv, const char *dir, const char *name) {
	static char logopt[512];
	size_t n = 0;
	if (!trt_under_valgrind()) {
		return 0;
	}
	argv[n++] = "/usr/bin/valgrind";
	argv[n++] = "--error-exitcode=99";
	argv[n++] = "--leak-check=full";
	argv[n++] = "--show-leak-kinds=definite,indirect";
	argv[n++] = "--errors-for-leak-kinds=definite,indirect";
	argv[n++] = "--quiet";
	snprintf(logopt, sizeof(logopt), "--log-file=%s/%s.valgrind.log", dir, name);
	argv[n++] = logopt;
	return n;
}
