/* trtest.c — see trtest.h. Test-process code: blocking calls with poll() deadlines. */
#include "trtest.h"

#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "frame.h"

/* The daemon whose NOTIFY_SOCKET we hold. Its datagram queue is short (net.unix.max_dgram_qlen,
 * 10 by default), so every wait in this file drains it, as systemd's manager would. */
static struct trt_daemon *g_notify;

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

/* ---- environment ---- */

int trt_env_init(struct trt_env *env) {
	const char *base = getenv("TMPDIR");
	char tmpl[512];
	memset(env, 0, sizeof(*env));
	trt_proc_init(&env->sim.proc);
	trt_proc_init(&env->daemon.proc);
	env->daemon.notify_fd = -1;
	snprintf(tmpl, sizeof(tmpl), "%s/trtest.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpl)) {
		return -errno;
	}
	env->dir = strdup(tmpl);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!env->dir) {
		return -ENOMEM;
	}
	if (getenv("TRT_TLS") && strcmp(getenv("TRT_TLS"), "1") == 0) {
		return trt_env_tls(env);
	}
	return 0;
}

bool trt_have_ipv6_loopback(void) {
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	if (fd >= 0) {
		close(fd);
	}
	return ok;
}

int trt_env_tls(struct trt_env *env) {
	int r;

	if (!env->certs) {
		char *dir = strdup(trt_fmt("%s/certs", env->dir));
		env->certs = calloc(1, sizeof(*env->certs));
		if (!dir || !env->certs) {
			free(dir);
			return -ENOMEM;
		}
		(void)mkdir(dir, 0700);
		r = trt_certs_make(dir, env->certs);
		free(dir);
		if (r < 0) {
			fprintf(stderr, "# cannot make the test certificates: %s\n", strerror(-r));
			return r;
		}
	}
	env->sim.tls_cert = env->certs->good_cert;
	env->sim.tls_key = env->certs->good_key;
	if (!env->sim.url_host) {
		env->sim.url_host = "localhost";
	}
	return 0;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void trt_env_done(struct trt_env *env) {
	if (!env->dir) {
		return; /* never initialised, or done already */
	}
	if (env->daemon.proc.pid > 0) {
		(void)trt_daemon_stop(env);
	}
	if (env->sim.proc.pid > 0) {
		(void)trt_sim_stop(env);
	}
	trt_proc_done(&env->daemon.proc);
	trt_proc_done(&env->sim.proc);
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
	if (env->certs) {
		trt_certs_done(env->certs);
		free(env->certs);
	}
	if (env->dir && !getenv("TR_KEEP_TMP")) {
		nftw(env->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	}
	free(env->dir);
	curl_global_cleanup();
	memset(env, 0, sizeof(*env));
}

/* ---- simulator ---- */

/* The simulator's host as a URL writes it: an IPv6 address in brackets. */
static const char *sim_host_url(const struct trt_sim *sim) {
	if (sim->url_host) {
		return sim->url_host;
	}
	if (!sim->host) {
		return "127.0.0.1";
	}
	return strchr(sim->host, ':') ? trt_fmt("[%s]", sim->host) : sim->host;
}

int trt_sim_start(struct trt_env *env, const char *const *extra) {
	struct trt_sim *sim = &env->sim;
	struct trt_spawn_opts opts = {.pipe_stdout = true};
	const char *bin = getenv("TR_SIM");
	const char *argv[64], *line, *colon;
	char logp[512];
	size_t n;
	int r;

	if (!bin) {
		fprintf(stderr, "# TR_SIM is not set\n");
		return -EINVAL;
	}
	if (!sim->token_dir) {
		sim->token_dir = strdup(trt_fmt("%s/tokens", env->dir));
		if (!sim->token_dir) {
			return -ENOMEM;
		}
		(void)mkdir(sim->token_dir, 0700);
	}
	n = trt_valgrind_argv(argv, env->dir, "sim");
	argv[n++] = bin;
	argv[n++] = "--listen";
	argv[n++] = trt_fmt("%s:%d", sim->host ? sim->host : "127.0.0.1", sim->want_port);
	argv[n++] = "--token-dir";
	argv[n++] = sim->token_dir;
	argv[n++] = "--verbose"; /* into sim.log, for the post-mortem of a failure */
	if (sim->tls_cert) {
		argv[n++] = "--tls-cert";
		argv[n++] = sim->tls_cert;
		argv[n++] = "--tls-key";
		argv[n++] = sim->tls_key;
	}
	for (size_t i = 0; extra && extra[i] && n < 62; i++) {
		argv[n++] = extra[i];
	}
	argv[n] = NULL;

	snprintf(logp, sizeof(logp), "%s/sim.log", env->dir);
	opts.log_path = logp;
	trt_proc_done(&sim->proc);
	r = trt_proc_spawn(&sim->proc, "taskrouter-sim", argv, &opts);
	if (r < 0) {
		return r;
	}
	/* Its first line on stdout names the port. It writes nothing more there, and the pipe
	 * stays open until trt_proc_done so that a stray write cannot kill it with SIGPIPE. */
	r = trt_proc_wait_output(&sim->proc, "\n", trt_ms(TRT_DEADLINE_MS));
	if (r < 0) {
		fprintf(stderr, "# taskrouter-sim %s (see %s)\n",
			r == -ETIMEDOUT ? "did not report its port in time"
					: "exited before listening",
			logp);
		return r == -ETIMEDOUT ? r : -EIO;
	}
	line = sim->proc.out.data;
	colon = strrchr(line, ':');
	if (!strstr(line, "listening on") || !colon) {
		fprintf(stderr, "# unexpected first line from taskrouter-sim: %s", line);
		return -EPROTO;
	}
	sim->port = atoi(colon + 1);
	snprintf(sim->base_url, sizeof(sim->base_url), "%s://%s:%d", sim->tls_cert ? "https" : "http",
		sim_host_url(sim), sim->port);
	return sim->port > 0 ? 0 : -EPROTO;
}

int trt_sim_stop(struct trt_env *env) {
	return trt_proc_stop(&env->sim.proc, trt_ms(10000));
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

/* The datagram socket the daemon's sd_notify messages come to, made once per env. */
static int notify_open(struct trt_env *env) {
	struct trt_daemon *d = &env->daemon;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (d->notify_path) {
		return 0;
	}
	d->notify_path = strdup(trt_fmt("%s/notify", env->dir));
	if (!d->notify_path) {
		return -ENOMEM;
	}
	d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (d->notify_fd < 0) {
		return -errno;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->notify_path);
	if (bind(d->notify_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		return -errno;
	}
	return 0;
}

int trt_daemon_start(struct trt_env *env, const char *worker, const char *const *extra) {
	struct trt_daemon *d = &env->daemon;
	const char *bin = getenv("TR_DAEMON");
	const char *argv[80], *envx[10];
	char logp[512], ws[160], eb[160], notify_env[600];
	bool tls = env->sim.tls_cert != NULL;
	struct trt_spawn_opts opts = {.env = envx, .log_path = logp};
	bool command = false;
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
	if (!d->socket_path || !d->token_file) {
		return -ENOMEM;
	}
	if ((r = notify_open(env)) < 0) {
		return r;
	}
	d->ready_seen = false;
	d->last_status[0] = '\0';
	d->n_statuses = 0;
	g_notify = d;

	snprintf(ws, sizeof(ws), "%s://%s:%d/v1/wschannels", tls ? "wss" : "ws",
		sim_host_url(&env->sim), env->sim.port);
	snprintf(eb, sizeof(eb), "%s://%s:%d/v1/wschannels", tls ? "https" : "http",
		sim_host_url(&env->sim), env->sim.port);
	n = trt_valgrind_argv(argv, env->dir, "daemon");
	argv[n++] = bin;
	argv[n++] = "--websocket-url";
	argv[n++] = ws;
	argv[n++] = "--eventbridge-url";
	argv[n++] = eb;
	/* a token command replaces the token file */
	for (size_t i = 0; extra && extra[i]; i++) {
		command = command || strcmp(extra[i], "--token-command") == 0;
	}
	if (!command) {
		argv[n++] = "--token-file";
		argv[n++] = d->token_file;
	}
	if (tls && env->certs && !d->no_ca_file) {
		argv[n++] = "--ca-file";
		argv[n++] = env->certs->ca;
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
	{
		size_t ne = 0;
		envx[ne++] = notify_env;
		for (size_t i = 0; d->env && d->env[i] && ne < 9; i++) {
			envx[ne++] = d->env[i];
		}
		envx[ne] = NULL;
	}
	snprintf(logp, sizeof(logp), "%s/daemon.log", env->dir);
	trt_proc_done(&d->proc);
	r = trt_proc_spawn(&d->proc, "taskrouterd", argv, &opts);
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
	int64_t deadline = trt_now_ms() + timeout_ms;

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
		if (poll(p, 2, trt_remaining(deadline)) <= 0) {
			return -ETIMEDOUT;
		}
		if (p[1].revents && !(p[0].revents & POLLIN)) {
			fprintf(stderr, "# taskrouterd exited while we waited for %s\n",
				needle ? needle : "READY=1");
			(void)trt_proc_wait_exit(&d->proc, 1000);
			return -ECHILD;
		}
	}
}

int trt_daemon_stop(struct trt_env *env) {
	/* longer than the daemon's own shutdown bound (calls in flight get TR_CLOSE_CALLS_MS) */
	return trt_proc_stop(&env->daemon.proc, trt_ms(20000));
}

void trt_daemon_kill(struct trt_env *env) {
	trt_proc_kill(&env->daemon.proc);
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

int trt_sim_request(struct trt_env *env, const char *method, const char *path, const char *body,
	const char *const *headers, char **ret_body) {
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct membuf m = {0};
	char url[1024];
	long status = 0;
	CURLcode cr;

	if (ret_body) {
		*ret_body = NULL;
	}
	if (!h) {
		return -ENOMEM;
	}
	snprintf(url, sizeof(url), "%s%s", env->sim.base_url, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)trt_ms(15000));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* the control API is the harness's own back door: straight to the simulator, whatever
	 * certificate it serves (some tests make it serve a bad one on purpose) */
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
	if (body) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	for (size_t i = 0; headers && headers[i]; i++) {
		hdr = curl_slist_append(hdr, headers[i]);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	cr = curl_easy_perform(h);
	if (cr == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	} else {
		fprintf(stderr, "# %s %s: %s\n", method, path, curl_easy_strerror(cr));
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	if (status >= 400) {
		fprintf(stderr, "# %s %s -> %ld %s\n", method, path, status, m.p ? m.p : "");
	}
	if (ret_body && m.n) {
		*ret_body = m.p;
		m.p = NULL;
	}
	free(m.p);
	return cr == CURLE_OK ? (int)status : -EIO;
}

int trt_sim_http(struct trt_env *env, const char *method, const char *path, const char *body,
	struct tr_json **ret) {
	char *text = NULL;
	int st = trt_sim_request(env, method, path, body, NULL, ret ? &text : NULL);
	if (ret) {
		*ret = NULL;
		if (text) {
			(void)tr_json_parse(text, strlen(text), ret, NULL);
		}
	}
	free(text);
	return st;
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

const struct tr_json *trt_json_find(const struct tr_json *arr, const char *key, const char *value) {
	if (!tr_json_is(arr, TR_JSON_ARRAY)) {
		return NULL;
	}
	for (size_t i = 0; i < arr->u.arr.n; i++) {
		const char *s = tr_json_get_string(arr->u.arr.items[i], key);
		if (s && strcmp(s, value) == 0) {
			return arr->u.arr.items[i];
		}
	}
	return NULL;
}

struct tr_json *trt_sim_task(struct trt_env *env, const char *sid) {
	struct tr_json *state = NULL, *copy = NULL;
	if (trt_sim_http(env, "GET", "/sim/state", NULL, &state) == 200) {
		copy = tr_json_dup(trt_json_find(tr_json_get(state, "tasks"), "sid", sid));
	}
	tr_json_free(state);
	return copy;
}

struct tr_json *trt_sim_requests(struct trt_env *env) {
	struct tr_json *r = NULL, *list = NULL;
	if (trt_sim_http(env, "GET", "/sim/requests", NULL, &r) == 200 &&
		tr_json_is(tr_json_get(r, "requests"), TR_JSON_ARRAY)) {
		list = tr_json_dup(tr_json_get(r, "requests"));
	}
	tr_json_free(r);
	return list;
}

int trt_sim_request_count(struct trt_env *env) {
	struct tr_json *list = trt_sim_requests(env);
	int n = list ? (int)list->u.arr.n : -EIO;
	tr_json_free(list);
	return n;
}

int trt_read_token(const char *path, char *buf, size_t size) {
	FILE *f = fopen(path, "r");
	size_t n;
	if (!f) {
		return -errno;
	}
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return (int)strlen(buf);
}

int trt_sim_token(struct trt_env *env, const char *worker, char *buf, size_t size) {
	return trt_read_token(trt_fmt("%s/%s.token", env->sim.token_dir, worker), buf, size);
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
	trt_rbuf_init(&c->sock, fd);
	c->next_id = 1;
	*ret = c;
	return 0;
}

void trt_conn_free(struct trt_conn *c) {
	if (!c) {
		return;
	}
	trt_rbuf_done(&c->sock);
	for (size_t i = 0; i < c->n_events; i++) {
		tr_json_free(c->events[i]);
	}
	free(c->events);
	free(c);
}

int trt_send_raw(struct trt_conn *c, const void *data, size_t len) {
	const char *p = data;
	while (len) {
		ssize_t k = send(c->sock.fd, p, len, MSG_NOSIGNAL);
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

/* Take one complete frame out of what was read, if there is one. */
static int take_frame(struct trt_conn *c, struct tr_json **ret) {
	const uint8_t *h = (const uint8_t *)c->sock.data;
	uint32_t n;
	int r;
	if (c->sock.len < 4) {
		return 0;
	}
	n = ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
	if (n > 64u * 1024 * 1024) {
		return -EMSGSIZE;
	}
	if (c->sock.len < 4 + (size_t)n) {
		return 0;
	}
	r = tr_json_parse(c->sock.data + 4, n, ret, NULL);
	trt_rbuf_consume(&c->sock, 4 + n);
	return r < 0 ? -EBADMSG : 1;
}

int trt_read_frame(struct trt_conn *c, int timeout_ms, struct tr_json **ret) {
	int64_t deadline = trt_now_ms() + timeout_ms;
	for (;;) {
		int r = take_frame(c, ret);
		struct pollfd p[2] = {{.fd = c->sock.fd, .events = POLLIN},
			{.fd = g_notify ? g_notify->notify_fd : -1, .events = POLLIN}};
		ssize_t k;
		if (r != 0) {
			return r < 0 ? r : 0;
		}
		if (poll(p, 2, trt_remaining(deadline)) <= 0) {
			return -ETIMEDOUT;
		}
		if (p[1].revents) {
			notify_drain(g_notify);
		}
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			continue;
		}
		k = trt_rbuf_read(&c->sock, 0);
		if (k == 0) {
			return -ECONNRESET;
		}
		if (k < 0 && k != -ETIMEDOUT) {
			return (int)k;
		}
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

int trt_send_frame(struct trt_conn *c, const char *text) {
	size_t len = strlen(text);
	uint8_t hdr[4];
	int r;
	tr_frame_put_header(hdr, (uint32_t)len);
	r = trt_send_raw(c, hdr, sizeof(hdr));
	return r < 0 ? r : trt_send_raw(c, text, len);
}

int trt_send_request(struct trt_conn *c, int64_t id, const char *method, const char *params) {
	char *req = NULL;
	int r;
	if (asprintf(&req, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"%s\"%s%s}", (long long)id,
		    method, params ? ",\"params\":" : "", params ? params : "") < 0) {
		return -ENOMEM;
	}
	r = trt_send_frame(c, req);
	free(req);
	return r;
}

int trt_call(struct trt_conn *c, const char *method, const char *params, int timeout_ms,
	struct tr_json **ret_result, struct tr_json **ret_error) {
	int64_t id = c->next_id++;
	int64_t deadline = trt_now_ms() + timeout_ms;
	int r;

	if (ret_result) {
		*ret_result = NULL;
	}
	if (ret_error) {
		*ret_error = NULL;
	}
	r = trt_send_request(c, id, method, params);
	if (r < 0) {
		return r;
	}
	for (;;) {
		struct tr_json *msg = NULL;
		const struct tr_json *mid;
		r = trt_read_frame(c, trt_remaining(deadline), &msg);
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
	int64_t deadline = trt_now_ms() + timeout_ms;
	for (;;) {
		struct tr_json *msg = NULL;
		int r;
		if (c->n_events) {
			msg = c->events[0];
			memmove(c->events, c->events + 1, (c->n_events - 1) * sizeof(*c->events));
			c->n_events--;
		} else {
			r = trt_read_frame(c, trt_remaining(deadline), &msg);
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
		if (!*ret_params) {
			return -ENOMEM;
		}
		if (c->on_event) {
			c->on_event(c->on_event_data, *ret_params);
		}
		return 0;
	}
}

bool trt_event_is(const struct tr_json *params, const char *name, const char *task_sid) {
	const char *ev = tr_json_get_string(params, "event");
	const char *ts = tr_json_get_string(params, "taskSid");
	return ev && strcmp(ev, name) == 0 && (!task_sid || (ts && strcmp(ts, task_sid) == 0));
}

int trt_wait_event(struct trt_conn *c, const char *name, const char *task_sid, int timeout_ms,
	struct tr_json **ret_params) {
	int64_t deadline = trt_now_ms() + timeout_ms;
	for (;;) {
		struct tr_json *p = NULL;
		int r = trt_next_event(c, trt_remaining(deadline), &p);
		if (r < 0) {
			return r;
		}
		if (trt_event_is(p, name, task_sid)) {
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
	int64_t deadline = trt_now_ms() + timeout_ms;
	for (;;) {
		struct tr_json *msg = NULL;
		int r = trt_read_frame(c, trt_remaining(deadline), &msg);
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

/* ---- HTTP CONNECT proxy ---- */

/* (kept with this section: the top of the file is edited elsewhere at the same time) */
#include <fcntl.h>
#include <sys/inotify.h>

/* Claim DIR/proxy.log, or the first free DIR/proxy-N.log; *ret_base gets "proxy[-N]". */
static int proxy_claim_log(const char *dir, char **ret_path, char **ret_base) {
	for (int i = 1; i < 100; i++) {
		char base[32], *path = NULL;
		int fd;
		snprintf(base, sizeof(base), i == 1 ? "proxy" : "proxy-%d", i);
		if (asprintf(&path, "%s/%s.log", dir, base) < 0) {
			return -ENOMEM;
		}
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			close(fd);
			*ret_base = strdup(base);
			if (!*ret_base) {
				free(path);
				return -ENOMEM;
			}
			*ret_path = path;
			return 0;
		}
		free(path);
		if (errno != EEXIST) {
			return -errno;
		}
	}
	return -EEXIST;
}

int trt_proxy_start(struct trt_env *env, struct trt_proxy *p, const char *const *extra) {
	struct trt_spawn_opts opts = {.pipe_stdout = true};
	const char *bin = getenv("TR_CONNECT_PROXY");
	const char *argv[64], *line, *on, *colon;
	char *base = NULL, errlog[512];
	size_t n, len;
	int r;

	memset(p, 0, sizeof(*p));
	trt_proc_init(&p->proc);
	if (!bin) {
		fprintf(stderr, "# TR_CONNECT_PROXY is not set\n");
		return -EINVAL;
	}
	if ((r = proxy_claim_log(env->dir, &p->log_path, &base)) < 0) {
		goto fail;
	}
	snprintf(errlog, sizeof(errlog), "%s/%s.stderr.log", env->dir, base);
	/* its valgrind report, DIR/BASE.stderr.valgrind.log, is where trt_proc_stop looks */
	n = trt_valgrind_argv(argv, env->dir, trt_fmt("%s.stderr", base));
	argv[n++] = bin;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1"; /* an extra --listen comes later and wins */
	argv[n++] = "--log";
	argv[n++] = p->log_path;
	for (size_t i = 0; extra && extra[i] && n < 62; i++) {
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	opts.log_path = errlog;
	r = trt_proc_spawn(&p->proc, base, argv, &opts);
	if (r < 0) {
		goto fail;
	}
	/* one line on stdout; the pipe stays open until trt_proxy_stop, as the simulator's */
	r = trt_proc_wait_output(&p->proc, "\n", trt_ms(TRT_DEADLINE_MS));
	if (r < 0) {
		fprintf(stderr, "# trt-connect-proxy %s (see %s)\n",
			r == -ETIMEDOUT ? "did not report its port in time"
					: "exited before listening",
			errlog);
		r = r == -ETIMEDOUT ? r : -EIO;
		goto fail;
	}
	line = p->proc.out.data;
	on = strstr(line, "listening on ");
	colon = strrchr(line, ':');
	if (!on || !colon) {
		fprintf(stderr, "# unexpected first line from trt-connect-proxy: %s", line);
		r = -EPROTO;
		goto fail;
	}
	on += strlen("listening on ");
	len = strcspn(on, "\r\n");
	p->port = atoi(colon + 1);
	if (p->port <= 0 || len + 8 > sizeof(p->url)) {
		r = -EPROTO;
		goto fail;
	}
	snprintf(p->url, sizeof(p->url), "http://%.*s", (int)len, on);
	free(base);
	return 0;
fail:
	free(base);
	trt_proc_done(&p->proc);
	free(p->log_path);
	memset(p, 0, sizeof(*p));
	trt_proc_init(&p->proc);
	return r;
}

int trt_proxy_stop(struct trt_proxy *p) {
	int r = 0;
	if (p->proc.name) {
		r = trt_proc_stop(&p->proc, trt_ms(10000));
	}
	trt_proc_done(&p->proc);
	free(p->log_path);
	memset(p, 0, sizeof(*p));
	trt_proc_init(&p->proc);
	return r;
}

int trt_proxy_count(const struct trt_proxy *p, const char *needle) {
	FILE *f = p->log_path ? fopen(p->log_path, "re") : NULL;
	char *line = NULL;
	size_t cap = 0;
	int n = 0;
	if (!f) {
		return p->log_path ? -errno : -EINVAL;
	}
	while (getline(&line, &cap, f) >= 0) {
		n += strstr(line, needle) != NULL;
	}
	free(line);
	fclose(f);
	return n;
}

int trt_proxy_wait_count(const struct trt_proxy *p, const char *needle, int n, int timeout_ms) {
	int64_t deadline = trt_now_ms() + timeout_ms;
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), r;

	if (fd < 0) {
		return -errno;
	}
	if (!p->log_path || inotify_add_watch(fd, p->log_path, IN_MODIFY) < 0) {
		r = p->log_path ? -errno : -EINVAL;
		close(fd);
		return r;
	}
	/* the watch is in place before each count: no line can slip between them */
	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = fd, .events = POLLIN}, {.fd = p->proc.pidfd, .events = POLLIN}};
		char ev[4096];
		r = trt_proxy_count(p, needle);
		if (r < 0 || r >= n) {
			r = r < 0 ? r : 0;
			break;
		}
		if (pfd[1].fd >= 0 && poll(&pfd[1], 1, 0) > 0) {
			/* it exited: what it logged is all there will be */
			r = trt_proxy_count(p, needle) >= n ? 0 : -ECHILD;
			break;
		}
		if (poll(pfd, 2, trt_remaining(deadline)) <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		while (read(fd, ev, sizeof(ev)) > 0) {
		}
	}
	close(fd);
	if (r < 0) {
		fprintf(stderr, "# proxy log %s: %d lines with \"%s\", wanted %d (%s)\n",
			p->log_path ? p->log_path : "(none)", trt_proxy_count(p, needle), needle, n,
			strerror(-r));
	}
	return r;
}
