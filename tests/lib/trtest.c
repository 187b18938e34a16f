/* trtest.c — see trtest.h. Test-process code: blocking calls with poll() deadlines. */
#include "trtest.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "tr-limits.h"
#include "rpc.h"

extern char **environ;

/* The daemon whose NOTIFY_SOCKET we hold. Its datagram queue is short (net.unix.max_dgram_qlen,
 * 10 by default), so every wait in this file drains it, as systemd's manager would. */
static struct trt_daemon *g_notify;

bool trt_under_valgrind(void) {
	const char *v = getenv("TR_UNDER_VALGRIND");
	return v && *v && strcmp(v, "0") != 0;
}

int trt_ms(int ms) {
	return trt_under_valgrind() ? ms * 10 : ms;
}

static int64_t now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining(int64_t deadline) {
	int64_t r = deadline - now_ms();
	return r < 0 ? 0 : (int)r;
}

const char *trt_fmt(const char *fmt, ...) {
	/* enough rotating buffers for a table of cases built in one initialiser */
	static char bufs[64][8192];
	static unsigned next;
	char *b = bufs[next++ % 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof(bufs[0]), fmt, ap);
	va_end(ap);
	return b;
}

/* ---- processes ---- */

/* Every child still running when the test program exits is killed: cmocka skips a group's
 * teardown when its setup fails, and a leaked daemon or simulator must not outlive the test. */
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

static int proc_spawn(struct trt_proc *p, const char *name, const char *const *argv,
	const char *const *env_extra, const char *log_path, int stdout_fd) {
	posix_spawn_file_actions_t fa;
	char **envp = NULL;
	size_t n_env = 0, n_extra = 0;
	int r;

	memset(p, 0, sizeof(*p));
	p->pid = -1;
	p->pidfd = -1;
	p->status = -1;
	p->name = strdup(name);
	p->log_path = strdup(log_path);
	if (!p->name || !p->log_path) {
		return -ENOMEM;
	}

	while (environ[n_env]) {
		n_env++;
	}
	while (env_extra && env_extra[n_extra]) {
		n_extra++;
	}
	envp = calloc(n_env + n_extra + 1, sizeof(char *));
	if (!envp) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_env; i++) {
		envp[i] = environ[i];
	}
	for (size_t i = 0; i < n_extra; i++) {
		envp[n_env + i] = (char *)env_extra[i];
	}

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (stdout_fd >= 0) {
		posix_spawn_file_actions_adddup2(&fa, stdout_fd, 1);
	} else {
		posix_spawn_file_actions_adddup2(&fa, 2, 1);
	}
	r = posix_spawn(&p->pid, argv[0], &fa, NULL, (char *const *)argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	if (r != 0) {
		fprintf(stderr, "# spawn %s (%s): %s\n", name, argv[0], strerror(r));
		p->pid = -1;
		return -r;
	}
	child_add(p->pid);
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	if (p->pidfd < 0) {
		return -errno;
	}
	return 0;
}

bool trt_proc_alive(struct trt_proc *p) {
	struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
	if (p->pid <= 0 || p->pidfd < 0) {
		return false;
	}
	return poll(&pfd, 1, 0) == 0;
}

/* Wait for exit up to timeout_ms; returns 0 and sets p->status, or -ETIMEDOUT. */
static int proc_wait(struct trt_proc *p, int timeout_ms) {
	struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
	int st;
	if (p->pid <= 0) {
		return 0;
	}
	if (poll(&pfd, 1, timeout_ms) <= 0) {
		return -ETIMEDOUT;
	}
	if (waitpid(p->pid, &st, 0) < 0) {
		return -errno;
	}
	child_del(p->pid);
	if (WIFEXITED(st)) {
		p->status = WEXITSTATUS(st);
	} else if (WIFSIGNALED(st)) {
		p->status = 128 + WTERMSIG(st);
	}
	p->pid = -1;
	close(p->pidfd);
	p->pidfd = -1;
	return 0;
}

/* SIGTERM, wait; SIGKILL after the deadline. Returns the exit status or -ETIMEDOUT. */
static int proc_stop(struct trt_proc *p, int timeout_ms) {
	int r;
	if (p->pid <= 0) {
		return p->status;
	}
	kill(p->pid, SIGTERM);
	r = proc_wait(p, timeout_ms);
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "# %s did not exit within %d ms of SIGTERM, killing it\n", p->name,
			timeout_ms);
		kill(p->pid, SIGKILL);
		(void)proc_wait(p, trt_ms(5000));
		return -ETIMEDOUT;
	}
	if (p->status != 0) {
		char cmd[1200], vg[512];
		size_t n = strlen(p->log_path);
		fprintf(stderr, "# %s exited with status %d; its log follows\n", p->name, p->status);
		snprintf(cmd, sizeof(cmd), "tail -n 40 '%s' | sed 's/^/#   /' >&2", p->log_path);
		(void)!system(cmd);
		/* under valgrind (status 99), its report: dir/NAME.log -> dir/NAME.valgrind.log */
		if (n > 4 && n < sizeof(vg) - 16) {
			snprintf(vg, sizeof(vg), "%.*s.valgrind.log", (int)(n - 4), p->log_path);
			if (access(vg, R_OK) == 0) {
				snprintf(cmd, sizeof(cmd), "head -n 60 '%s' | sed 's/^/#   /' >&2", vg);
				(void)!system(cmd);
			}
		}
	}
	return r < 0 ? r : p->status;
}

static void proc_done(struct trt_proc *p) {
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		(void)proc_wait(p, 5000);
	}
	if (p->pidfd >= 0) {
		close(p->pidfd);
	}
	free(p->name);
	free(p->log_path);
	memset(p, 0, sizeof(*p));
	p->pid = -1;
	p->pidfd = -1;
}

bool trt_proc_log_contains(const struct trt_proc *p, const char *needle) {
	FILE *f = fopen(p->log_path, "r");
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

/* The argv prefix that runs a child under valgrind when asked. */
static size_t valgrind_prefix(const char **argv, const char *dir, const char *name) {
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

/* ---- environment ---- */

int trt_env_init(struct trt_env *env) {
	const char *base = getenv("TMPDIR");
	char tmpl[512];
	memset(env, 0, sizeof(*env));
	env->sim.proc.pid = env->daemon.proc.pid = -1;
	env->sim.proc.pidfd = env->daemon.proc.pidfd = -1;
	env->daemon.notify_fd = -1;
	snprintf(tmpl, sizeof(tmpl), "%s/trtest.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpl)) {
		return -errno;
	}
	env->dir = strdup(tmpl);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return env->dir ? 0 : -ENOMEM;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void trt_env_done(struct trt_env *env) {
	if (env->daemon.proc.pid > 0) {
		(void)trt_daemon_stop(env);
	}
	if (env->sim.proc.pid > 0) {
		(void)trt_sim_stop(env);
	}
	proc_done(&env->daemon.proc);
	proc_done(&env->sim.proc);
	if (env->daemon.notify_fd >= 0) {
		close(env->daemon.notify_fd);
	}
	if (g_notify == &env->daemon) {
		g_notify = NULL;
	}
	free(env->daemon.socket_path);
	free(env->daemon.token_file);
	free(env->daemon.notify_path);
	free(env->sim.token_dir);
	if (env->dir && !getenv("TR_KEEP_TMP")) {
		nftw(env->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	}
	free(env->dir);
	curl_global_cleanup();
	memset(env, 0, sizeof(*env));
}

/* ---- simulator ---- */

int trt_sim_start(struct trt_env *env, const char *const *extra) {
	const char *bin = getenv("TR_SIM");
	const char *argv[64];
	char logp[512], line[256];
	size_t n, len = 0;
	int pfd[2], r;
	int64_t deadline = now_ms() + trt_ms(TRT_DEADLINE_MS);

	if (!bin) {
		fprintf(stderr, "# TR_SIM is not set\n");
		return -EINVAL;
	}
	free(env->sim.token_dir);
	env->sim.token_dir = strdup(trt_fmt("%s/tokens", env->dir));
	mkdir(env->sim.token_dir, 0700);

	n = valgrind_prefix(argv, env->dir, "sim");
	argv[n++] = bin;
	argv[n++] = "--listen";
	argv[n++] = trt_fmt("127.0.0.1:%d", env->sim.want_port);
	argv[n++] = "--token-dir";
	argv[n++] = env->sim.token_dir;
	argv[n++] = "--verbose"; /* into sim.log, for the post-mortem of a failure */
	for (size_t i = 0; extra && extra[i] && n < 62; i++) {
		argv[n++] = extra[i];
	}
	argv[n] = NULL;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		return -errno;
	}
	snprintf(logp, sizeof(logp), "%s/sim.log", env->dir);
	proc_done(&env->sim.proc);
	r = proc_spawn(&env->sim.proc, "taskrouter-sim", argv, NULL, logp, pfd[1]);
	close(pfd[1]);
	if (r < 0) {
		close(pfd[0]);
		return r;
	}
	/* Read the "listening on" line through the pipe, with a deadline. */
	while (len < sizeof(line) - 1) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		ssize_t k;
		if (poll(&p, 1, remaining(deadline)) <= 0) {
			fprintf(stderr, "# taskrouter-sim did not report its port in time\n");
			close(pfd[0]);
			return -ETIMEDOUT;
		}
		k = read(pfd[0], line + len, 1);
		if (k <= 0) {
			fprintf(stderr, "# taskrouter-sim exited before listening (see %s)\n", logp);
			close(pfd[0]);
			return -EIO;
		}
		if (line[len] == '\n') {
			break;
		}
		len++;
	}
	line[len] = '\0';
	/* The sim writes nothing more to stdout; keep the pipe open so a stray write cannot
	 * kill it with SIGPIPE. It is closed when the test process ends. */
	{
		const char *colon = strrchr(line, ':');
		if (!strstr(line, "listening on") || !colon) {
			fprintf(stderr, "# unexpected first line from taskrouter-sim: %s\n", line);
			close(pfd[0]);
			return -EPROTO;
		}
		env->sim.port = atoi(colon + 1);
	}
	snprintf(env->sim.base_url, sizeof(env->sim.base_url), "http://127.0.0.1:%d",
		env->sim.port);
	return env->sim.port > 0 ? 0 : -EPROTO;
}

int trt_sim_stop(struct trt_env *env) {
	return proc_stop(&env->sim.proc, trt_ms(10000));
}

/* ---- daemon ---- */


static void notify_drain(struct trt_daemon *d) {
	char buf[4096];
	ssize_t k;
	if (!d || d->notify_fd < 0) {
		return;
	}
	while ((k = recv(d->notify_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		buf[k] = '\0';
		for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l;
			l = strtok_r(NULL, "\n", &save)) {
			if (strcmp(l, "READY=1") == 0) {
				d->ready_seen = true;
			} else if (strncmp(l, "STATUS=", 7) == 0) {
				snprintf(d->last_status, sizeof(d->last_status), "%s", l + 7);
				if (d->n_statuses < sizeof(d->statuses) / sizeof(d->statuses[0])) {
					snprintf(d->statuses[d->n_statuses++], sizeof(d->statuses[0]),
						"%s", l + 7);
				}
			}
		}
	}
}

int trt_daemon_start(struct trt_env *env, const char *worker, const char *const *extra) {
	struct trt_daemon *d = &env->daemon;
	const char *bin = getenv("TR_DAEMON");
	const char *argv[80], *envx[4];
	char logp[512], ws[128], eb[128], notify_env[600];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n;
	int r;

	if (!bin) {
		fprintf(stderr, "# TR_DAEMON is not set\n");
		return -EINVAL;
	}
	free(d->socket_path);
	free(d->token_file);
	d->socket_path = strdup(trt_fmt("%s/run/socket", env->dir));
	d->token_file = strdup(trt_fmt("%s/%s.token", env->sim.token_dir, worker));
	if (!d->notify_path) {
		d->notify_path = strdup(trt_fmt("%s/notify", env->dir));
		d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (d->notify_fd < 0) {
			return -errno;
		}
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->notify_path);
		if (bind(d->notify_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			return -errno;
		}
	}
	d->ready_seen = false;
	d->last_status[0] = '\0';
	d->n_statuses = 0;
	g_notify = d;

	snprintf(ws, sizeof(ws), "ws://127.0.0.1:%d/v1/wschannels", env->sim.port);
	snprintf(eb, sizeof(eb), "http://127.0.0.1:%d/v1/wschannels", env->sim.port);
	n = valgrind_prefix(argv, env->dir, "daemon");
	argv[n++] = bin;
	argv[n++] = "--websocket-url";
	argv[n++] = ws;
	argv[n++] = "--eventbridge-url";
	argv[n++] = eb;
	{
		/* a token command replaces the token file */
		bool command = false;
		for (size_t i = 0; extra && extra[i]; i++) {
			command = command || strcmp(extra[i], "--token-command") == 0;
		}
		if (!command) {
			argv[n++] = "--token-file";
			argv[n++] = d->token_file;
		}
	}
	argv[n++] = "--socket";
	argv[n++] = d->socket_path;
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	for (size_t i = 0; extra && extra[i] && n < 78; i++) {
		argv[n++] = extra[i];
	}
	argv[n] = NULL;

	snprintf(notify_env, sizeof(notify_env), "NOTIFY_SOCKET=%s", d->notify_path);
	envx[0] = notify_env;
	envx[1] = NULL;
	snprintf(logp, sizeof(logp), "%s/daemon.log", env->dir);
	proc_done(&d->proc);
	r = proc_spawn(&d->proc, "taskrouterd", argv, envx, logp, -1);
	if (r < 0) {
		return r;
	}
	r = trt_daemon_wait_status(env, NULL, trt_ms(TRT_DEADLINE_MS));
	if (r < 0) {
		fprintf(stderr, "# taskrouterd did not send READY=1 (log: %s)\n", logp);
	}
	return r;
}

/* Has any STATUS= since the last call contained needle? Consumes the history. */
static bool status_seen(struct trt_daemon *d, const char *needle) {
	bool seen = false;
	for (size_t i = 0; i < d->n_statuses; i++) {
		seen = seen || strcasestr(d->statuses[i], needle) != NULL;
	}
	d->n_statuses = 0;
	return seen;
}

/* Read notifications; needle NULL waits for READY=1. A STATUS= that went by since the last
 * wait counts (statuses are kept until a wait looks at them). */
int trt_daemon_wait_status(struct trt_env *env, const char *needle, int timeout_ms) {
	struct trt_daemon *d = &env->daemon;
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p[2] = {{.fd = d->notify_fd, .events = POLLIN},
			{.fd = d->proc.pidfd, .events = POLLIN}};
		notify_drain(d);
		if (!needle && d->ready_seen) {
			return 0;
		}
		if (needle && status_seen(d, needle)) {
			return 0;
		}
		if (poll(p, 2, remaining(deadline)) <= 0) {
			return -ETIMEDOUT;
		}
		if (p[1].revents && !(p[0].revents & POLLIN)) {
			fprintf(stderr, "# taskrouterd exited while we waited for %s\n",
				needle ? needle : "READY=1");
			(void)proc_wait(&d->proc, 1000);
			return -ECHILD;
		}
	}
}

int trt_daemon_stop(struct trt_env *env) {
	return proc_stop(&env->daemon.proc, trt_ms(10000));
}

void trt_daemon_kill(struct trt_env *env) {
	if (env->daemon.proc.pid > 0) {
		kill(env->daemon.proc.pid, SIGKILL);
		(void)proc_wait(&env->daemon.proc, trt_ms(5000));
	}
}

/* ---- simulator HTTP ---- */

struct membuf {
	char *p;
	size_t n;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
	struct membuf *m = ud;
	size_t len = size * nmemb;
	char *p = realloc(m->p, m->n + len + 1);
	if (!p) {
		return 0;
	}
	memcpy(p + m->n, data, len);
	m->p = p;
	m->n += len;
	m->p[m->n] = '\0';
	return len;
}

int trt_sim_http(struct trt_env *env, const char *method, const char *path, const char *body,
	struct tr_json **ret) {
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct membuf m = {0};
	char url[1024];
	long status = 0;
	CURLcode cr;

	if (!h) {
		return -ENOMEM;
	}
	snprintf(url, sizeof(url), "%s%s", env->sim.base_url, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)trt_ms(15000));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
	if (body) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	cr = curl_easy_perform(h);
	if (cr == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	} else {
		fprintf(stderr, "# %s %s: %s\n", method, path, curl_easy_strerror(cr));
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	if (ret) {
		*ret = NULL;
		if (m.p && m.n) {
			(void)tr_json_parse(m.p, m.n, ret, NULL);
		}
	}
	if (status >= 400) {
		fprintf(stderr, "# %s %s -> %ld %s\n", method, path, status, m.p ? m.p : "");
	}
	free(m.p);
	return cr == CURLE_OK ? (int)status : -EIO;
}

int trt_sim_create_task(struct trt_env *env, const char *worker, const char *channel,
	const char *attributes, bool accept, char task_sid[35], char res_sid[35]) {
	struct tr_json *resp = NULL;
	const char *t, *rs;
	int st = trt_sim_http(env, "POST", "/sim/tasks",
		trt_fmt("{\"worker\":\"%s\",\"channel\":\"%s\",\"attributes\":%s}", worker, channel,
			attributes ? attributes : "{}"),
		&resp);
	if (st != 200 || !resp) {
		tr_json_free(resp);
		return -EIO;
	}
	t = tr_json_get_string(resp, "task");
	rs = tr_json_get_string(resp, "reservation");
	if (!t || !rs || strlen(t) != 34 || strlen(rs) != 34) {
		tr_json_free(resp);
		return -EPROTO;
	}
	memcpy(task_sid, t, 35);
	memcpy(res_sid, rs, 35);
	tr_json_free(resp);
	if (accept) {
		st = trt_sim_http(env, "POST", trt_fmt("/sim/reservations/%s/accept", res_sid),
			NULL, NULL);
		if (st != 200) {
			return -EIO;
		}
	}
	return 0;
}

struct tr_json *trt_sim_task(struct trt_env *env, const char *sid) {
	struct tr_json *state = NULL, *copy = NULL;
	const struct tr_json *tasks;
	if (trt_sim_http(env, "GET", "/sim/state", NULL, &state) != 200 || !state) {
		tr_json_free(state);
		return NULL;
	}
	tasks = tr_json_get(state, "tasks");
	if (tr_json_is(tasks, TR_JSON_ARRAY)) {
		for (size_t i = 0; i < tasks->u.arr.n; i++) {
			const char *s = tr_json_get_string(tasks->u.arr.items[i], "sid");
			if (s && strcmp(s, sid) == 0) {
				copy = tr_json_dup(tasks->u.arr.items[i]);
				break;
			}
		}
	} else if (tr_json_is(tasks, TR_JSON_OBJECT)) {
		copy = tr_json_dup(tr_json_get(tasks, sid));
	}
	tr_json_free(state);
	return copy;
}

int trt_sim_request_count(struct trt_env *env) {
	struct tr_json *r = NULL;
	const struct tr_json *list;
	int n = -EIO;
	if (trt_sim_http(env, "GET", "/sim/requests", NULL, &r) != 200 || !r) {
		tr_json_free(r);
		return -EIO;
	}
	list = tr_json_is(r, TR_JSON_ARRAY) ? r : tr_json_get(r, "requests");
	if (tr_json_is(list, TR_JSON_ARRAY)) {
		n = (int)list->u.arr.n;
	}
	tr_json_free(r);
	return n;
}

/* ---- RPC client ---- */

int trt_connect(const char *socket_path, struct trt_conn **ret) {
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct trt_conn *c;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	c->next_id = 1;
	*ret = c;
	return 0;
}

void trt_conn_free(struct trt_conn *c) {
	if (!c) {
		return;
	}
	if (c->fd >= 0) {
		close(c->fd);
	}
	for (size_t i = 0; i < c->n_events; i++) {
		tr_json_free(c->events[i]);
	}
	free(c->events);
	free(c->rbuf);
	free(c);
}

int trt_send_raw(struct trt_conn *c, const void *data, size_t len) {
	const char *p = data;
	while (len) {
		ssize_t k = send(c->fd, p, len, MSG_NOSIGNAL);
		if (k < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* Take one complete frame out of rbuf if there is one. */
static int take_frame(struct trt_conn *c, struct tr_json **ret) {
	uint32_t n;
	int r;
	if (c->rlen < 4) {
		return 0;
	}
	n = ((uint32_t)(uint8_t)c->rbuf[0] << 24) | ((uint32_t)(uint8_t)c->rbuf[1] << 16) |
	    ((uint32_t)(uint8_t)c->rbuf[2] << 8) | (uint32_t)(uint8_t)c->rbuf[3];
	if (n > 64u * 1024 * 1024) {
		return -EMSGSIZE;
	}
	if (c->rlen < 4 + (size_t)n) {
		return 0;
	}
	r = tr_json_parse(c->rbuf + 4, n, ret, NULL);
	memmove(c->rbuf, c->rbuf + 4 + n, c->rlen - 4 - n);
	c->rlen -= 4 + n;
	return r < 0 ? -EBADMSG : 1;
}

int trt_read_frame(struct trt_conn *c, int timeout_ms, struct tr_json **ret) {
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		int r = take_frame(c, ret);
		struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
			{.fd = g_notify ? g_notify->notify_fd : -1, .events = POLLIN}};
		ssize_t k;
		if (r != 0) {
			return r < 0 ? r : 0;
		}
		if (poll(p, 2, remaining(deadline)) <= 0) {
			return -ETIMEDOUT;
		}
		if (p[1].revents) {
			notify_drain(g_notify);
		}
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			continue;
		}
		if (c->rcap - c->rlen < 65536) {
			size_t cap = c->rcap ? c->rcap * 2 : 131072;
			char *nb = realloc(c->rbuf, cap);
			if (!nb) {
				return -ENOMEM;
			}
			c->rbuf = nb;
			c->rcap = cap;
		}
		k = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (k == 0) {
			return -ECONNRESET;
		}
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				continue;
			}
			return -errno;
		}
		c->rlen += (size_t)k;
	}
}

static int keep_event(struct trt_conn *c, struct tr_json *msg) {
	if (c->n_events == c->cap_events) {
		size_t cap = c->cap_events ? c->cap_events * 2 : 64;
		struct tr_json **ev = realloc(c->events, cap * sizeof(*ev));
		if (!ev) {
			tr_json_free(msg);
			return -ENOMEM;
		}
		c->events = ev;
		c->cap_events = cap;
	}
	c->events[c->n_events++] = msg;
	return 0;
}

int trt_call(struct trt_conn *c, const char *method, const char *params, int timeout_ms,
	struct tr_json **ret_result, struct tr_json **ret_error) {
	int64_t id = c->next_id++;
	int64_t deadline = now_ms() + timeout_ms;
	char *req = NULL;
	size_t len;
	uint8_t hdr[4];
	int r;

	if (ret_result) {
		*ret_result = NULL;
	}
	if (ret_error) {
		*ret_error = NULL;
	}
	if (asprintf(&req, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"%s\"%s%s}",
		    (long long)id, method, params ? ",\"params\":" : "", params ? params : "") < 0) {
		return -ENOMEM;
	}
	len = strlen(req);
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
	r = trt_send_raw(c, hdr, 4);
	if (r == 0) {
		r = trt_send_raw(c, req, len);
	}
	free(req);
	if (r < 0) {
		return r;
	}
	for (;;) {
		struct tr_json *msg = NULL;
		const struct tr_json *mid;
		r = trt_read_frame(c, remaining(deadline), &msg);
		if (r < 0) {
			return r;
		}
		if (tr_json_get_string(msg, "method")) {
			if ((r = keep_event(c, msg)) < 0) {
				return r;
			}
			continue;
		}
		mid = tr_json_get(msg, "id");
		if (!tr_json_is_int(mid) || mid->u.num.i != id) {
			fprintf(stderr, "# unexpected reply (waiting for id %lld)\n", (long long)id);
			tr_json_free(msg);
			continue;
		}
		if (tr_json_get(msg, "error")) {
			if (ret_error) {
				*ret_error = tr_json_dup(tr_json_get(msg, "error"));
			}
			tr_json_free(msg);
			return 1;
		}
		if (ret_result) {
			*ret_result = tr_json_dup(tr_json_get(msg, "result"));
		}
		tr_json_free(msg);
		return 0;
	}
}

int trt_next_event(struct trt_conn *c, int timeout_ms, struct tr_json **ret_params) {
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		struct tr_json *msg = NULL;
		int r;
		if (c->n_events) {
			msg = c->events[0];
			memmove(c->events, c->events + 1, (c->n_events - 1) * sizeof(*c->events));
			c->n_events--;
		} else {
			r = trt_read_frame(c, remaining(deadline), &msg);
			if (r < 0) {
				return r;
			}
		}
		if (!tr_json_get_string(msg, "method")) {
			tr_json_free(msg);
			continue;
		}
		*ret_params = tr_json_dup(tr_json_get(msg, "params"));
		tr_json_free(msg);
		return *ret_params ? 0 : -ENOMEM;
	}
}

int trt_wait_event(struct trt_conn *c, const char *name, const char *task_sid, int timeout_ms,
	struct tr_json **ret_params) {
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		struct tr_json *p = NULL;
		const char *ev, *ts;
		int r = trt_next_event(c, remaining(deadline), &p);
		if (r < 0) {
			return r;
		}
		ev = tr_json_get_string(p, "event");
		ts = tr_json_get_string(p, "taskSid");
		if (ev && strcmp(ev, name) == 0 && (!task_sid || (ts && strcmp(ts, task_sid) == 0))) {
			if (ret_params) {
				*ret_params = p;
			} else {
				tr_json_free(p);
			}
			return 0;
		}
		tr_json_free(p);
	}
}

bool trt_wait_closed(struct trt_conn *c, int timeout_ms) {
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		struct tr_json *msg = NULL;
		int r = trt_read_frame(c, remaining(deadline), &msg);
		tr_json_free(msg);
		if (r == -ECONNRESET || r == -EPIPE) {
			return true;
		}
		if (r == -ETIMEDOUT) {
			return false;
		}
		if (r < 0 && r != -EBADMSG) {
			return true;
		}
	}
}

struct tr_json *trt_call_ok(struct trt_conn *c, const char *method, const char *params) {
	struct tr_json *res = NULL, *err = NULL;
	int r = trt_call(c, method, params, trt_ms(TRT_DEADLINE_MS), &res, &err);
	if (r == 1) {
		char *s = NULL;
		(void)tr_json_dump(err, &s, NULL);
		fprintf(stderr, "# %s %s failed: %s\n", method, params ? params : "", s ? s : "?");
		free(s);
		tr_json_free(err);
		return NULL;
	}
	if (r < 0) {
		fprintf(stderr, "# %s: %s\n", method, strerror(-r));
		return NULL;
	}
	return res;
}

int trt_call_err(struct trt_conn *c, const char *method, const char *params,
	struct tr_json **ret_error) {
	struct tr_json *res = NULL, *err = NULL;
	int64_t code = 0;
	int r = trt_call(c, method, params, trt_ms(TRT_DEADLINE_MS), &res, &err);
	tr_json_free(res);
	if (r < 0) {
		return r;
	}
	if (r == 0) {
		fprintf(stderr, "# %s %s: expected an error, got a result\n", method,
			params ? params : "");
		return 0;
	}
	(void)tr_json_get_int(err, "code", &code);
	if (ret_error) {
		*ret_error = err;
	} else {
		tr_json_free(err);
	}
	return (int)code;
}

int trt_run(const char *const *argv, const char *const *env_extra, const char *input,
	int timeout_ms, char **ret_out) {
	int in[2], out[2], r;
	bool timed_out = false;
	struct trt_proc p;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int64_t deadline = now_ms() + timeout_ms;
	posix_spawn_file_actions_t fa;
	char **envp;
	size_t n_env = 0, n_extra = 0;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		return -errno;
	}
	while (environ[n_env]) {
		n_env++;
	}
	while (env_extra && env_extra[n_extra]) {
		n_extra++;
	}
	envp = calloc(n_env + n_extra + 1, sizeof(char *));
	if (!envp) {
		return -ENOMEM;
	}
	memcpy(envp, environ, n_env * sizeof(char *));
	for (size_t i = 0; i < n_extra; i++) {
		envp[n_env + i] = (char *)env_extra[i];
	}
	memset(&p, 0, sizeof(p));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	r = posix_spawn(&p.pid, argv[0], &fa, NULL, (char *const *)argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(in[0]);
	close(out[1]);
	if (r != 0) {
		close(in[1]);
		close(out[0]);
		return -r;
	}
	p.pidfd = (int)syscall(SYS_pidfd_open, p.pid, 0);
	p.name = strdup(argv[0]);
	p.log_path = strdup("/dev/null");
	if (input) {
		(void)!write(in[1], input, strlen(input));
	}
	close(in[1]);
	for (;;) {
		struct pollfd pf = {.fd = out[0], .events = POLLIN};
		ssize_t k;
		if (poll(&pf, 1, remaining(deadline)) <= 0) {
			kill(p.pid, SIGKILL);
			timed_out = true;
			break;
		}
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, cap);
			if (!nb) {
				break;
			}
			buf = nb;
		}
		k = read(out[0], buf + len, cap - len - 1);
		if (k <= 0) {
			break;
		}
		len += (size_t)k;
	}
	close(out[0]);
	r = proc_wait(&p, remaining(deadline) + 1000);
	if (r == 0) {
		r = timed_out ? -ETIMEDOUT : p.status;
	}
	free(p.name);
	free(p.log_path);
	if (buf) {
		buf[len] = '\0';
	}
	if (ret_out) {
		*ret_out = buf ? buf : strdup("");
	} else {
		free(buf);
	}
	return r;
}
