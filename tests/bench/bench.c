/*
 * bench.c — taskrouterd's benchmarks. Every figure is printed next to a
 * baseline measured in the same run on the same machine, because these
 * machines are shared and noisy:
 *
 *   rtt        task.get round trip p50/p99 vs a raw Unix-socket ping-pong of the
 *              same request and reply sizes
 *   pipeline   pipelined task.get calls per second vs raw pipelined echo
 *   fanout     reservation.created frames from an upstream stub (upstream.h: the
 *              simulator is out of the timed window) to 1, 8 and 100 subscribers:
 *              the daemon's CPU time per 1,000 deliveries, deliveries/s and p99 from
 *              the stub's write to the last subscriber, vs a raw child process that
 *              reads the same frames and writev()s them to N Unix sockets
 *   idle       idle wake-ups per minute (context switches of the daemon)
 *   worker     reservation.accept and worker.setActivity round trips vs the SDK's
 *   startup    start to "ready" with 1,000 and 10,000 reservations vs the SDK's
 *   rss        daemon RSS with 0, 1,000 and 10,000 cached tasks
 *   fanout-sim only when asked for: the former fan-out, the simulator in the timed
 *              window, every burst printed (is a slow burst the simulator's?)
 *
 * Usage: bench [--quick] [--verbose] [--sequential] [--only GROUP] [--markdown FILE]
 * TR_SIM and TR_DAEMON point at the binaries; TR_BENCH_SDK at tests/bench, for the SDK's side
 * (tests/bench/sdk-worker.js, with the SDK tests/compat installs); without it those rows say
 * "(no SDK)".
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "trtest.h"
#include "upstream.h"

static bool quick;
static bool verbose;    /* --verbose: every burst's time on stderr */
static bool sequential; /* --sequential: read subscribers one after the other (diagnostic) */
static FILE *md;
static const char *only; /* --only rtt|fanout|idle|worker|startup|rss: one group (profiling) */

static bool want(const char *group) {
	return !only || strcmp(only, group) == 0;
}

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t pct(int64_t *v, size_t n, double p) {
	size_t i;
	qsort(v, n, sizeof(*v), cmp_i64);
	i = (size_t)(p * (double)(n - 1));
	return v[i];
}

static void row(const char *what, const char *value, const char *baseline, const char *ratio,
	const char *target, const char *met) {
	printf("%-44s %14s %14s %9s  %-22s %s\n", what, value, baseline, ratio, target, met);
	if (md) {
		fprintf(md, "| %s | %s | %s | %s | %s | %s |\n", what, value, baseline, ratio, target,
			met);
	}
}

/* ---- raw baselines: an echo peer on a socketpair ---- */

struct echo_arg {
	int fd;
	size_t reply_len;
	size_t req_len;
};

/* Move exactly n bytes through fd, reading or writing: 0, or -1 at EOF or on an error. */
static int io_full(int fd, char *buf, size_t n, bool writing) {
	size_t done = 0;
	while (done < n) {
		ssize_t k =
			writing ? write(fd, buf + done, n - done) : read(fd, buf + done, n - done);
		if (k <= 0) {
			return -1;
		}
		done += (size_t)k;
	}
	return 0;
}

static int read_full(int fd, char *buf, size_t n) {
	return io_full(fd, buf, n, false);
}

static void *echo_thread(void *p) {
	struct echo_arg *a = p;
	char *in = malloc(a->req_len), *out = malloc(a->reply_len);
	memset(out, 'r', a->reply_len);
	/* one reply per request until the other side closes */
	while (read_full(a->fd, in, a->req_len) == 0 &&
		io_full(a->fd, out, a->reply_len, true) == 0) {
	}
	free(in);
	free(out);
	return NULL;
}

/* Raw ping-pong: returns p50/p99 in ns over iters, plus pipelined throughput (msgs/s). */
static void raw_pingpong(size_t req_len, size_t reply_len, int iters, int64_t *p50, int64_t *p99,
	double *pipelined) {
	int sv[2];
	pthread_t th;
	struct echo_arg a;
	char *req = malloc(req_len), *rep = malloc(reply_len);
	int64_t *lat = calloc((size_t)iters, sizeof(int64_t));
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	a.fd = sv[1];
	a.req_len = req_len;
	a.reply_len = reply_len;
	memset(req, 'q', req_len);
	pthread_create(&th, NULL, echo_thread, &a);
	for (int i = 0; i < iters; i++) {
		int64_t t0 = now_ns();
		(void)!write(sv[0], req, req_len);
		read_full(sv[0], rep, reply_len);
		lat[i] = now_ns() - t0;
	}
	*p50 = pct(lat, (size_t)iters, 0.50);
	*p99 = pct(lat, (size_t)iters, 0.99);
	/* pipelined with a window of 16, like the daemon's in-flight limit */
	{
		int n = iters * 2, sent = 0, recvd = 0;
		int64_t t0 = now_ns();
		while (recvd < n) {
			while (sent < n && sent - recvd < 16) {
				(void)!write(sv[0], req, req_len);
				sent++;
			}
			read_full(sv[0], rep, reply_len);
			recvd++;
		}
		*pipelined = (double)n / ((double)(now_ns() - t0) / 1e9);
	}
	close(sv[0]);
	pthread_join(th, NULL);
	close(sv[1]);
	free(req);
	free(rep);
	free(lat);
}

/* ---- daemon measurements ---- */

static char *frame_request(int64_t id, const char *method, const char *params, size_t *ret_len) {
	char *body = NULL, *f;
	size_t n;
	if (asprintf(&body, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"%s\",\"params\":%s}",
		    (long long)id, method, params) < 0) {
		return NULL;
	}
	n = strlen(body);
	f = malloc(n + 4);
	f[0] = (char)(n >> 24);
	f[1] = (char)(n >> 16);
	f[2] = (char)(n >> 8);
	f[3] = (char)n;
	memcpy(f + 4, body, n);
	free(body);
	*ret_len = n + 4;
	return f;
}

/* Read one frame raw; returns its total length (header included) or -1. */
static ssize_t read_frame_raw(int fd, char **buf, size_t *cap) {
	uint8_t h[4];
	uint32_t n;
	if (read_full(fd, (char *)h, 4) < 0) {
		return -1;
	}
	n = ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
	if (*cap < n) {
		*buf = realloc(*buf, n);
		*cap = n;
	}
	if (read_full(fd, *buf, n) < 0) {
		return -1;
	}
	return (ssize_t)n + 4;
}

/* The first "Key: N" line of /proc/PID/FILE (N in kB or a count), or -1. */
static long proc_field(pid_t pid, const char *file, const char *key) {
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "r");
	if (!f) {
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* Private_Dirty: the daemon's own memory, without shared libraries. */
static long private_kb(pid_t pid) {
	return proc_field(pid, "smaps_rollup", "Private_Dirty");
}

/* --verbose: the mappings holding 16 KB or more of private memory, on stderr. */
static void print_private_maps(pid_t pid) {
	char path[64], line[512], name[512] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	if (!f) {
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		long kb;

		if (strncmp(line, "Private_Dirty:", 14) == 0) {
			kb = strtol(line + 14, NULL, 10);
			if (kb >= 16) {
				fprintf(stderr, "#   %6ld kB %s", kb, name);
			}
		} else if (line[strspn(line, "0123456789abcdef")] == '-') {
			memcpy(name, line, sizeof(name)); /* a mapping's first line */
		}
	}
	fclose(f);
}

static long rss_kb(pid_t pid) {
	return proc_field(pid, "status", "VmRSS");
}

/* Wake-ups of the main thread: its voluntary context switches, each a sleep (epoll_wait)
 * that ended. Involuntary ones are other processes preempting it on a busy machine, not
 * wake-ups; they are counted apart (--verbose). */
static long wakeups(pid_t pid) {
	return proc_field(pid, "status", "voluntary_ctxt_switches");
}

static long preemptions(pid_t pid) {
	return proc_field(pid, "status", "nonvoluntary_ctxt_switches");
}

static const char *fmt_us(int64_t ns) {
	return trt_fmt("%.1f us", (double)ns / 1000.0);
}

static const char *ratio(double v, double base) {
	return trt_fmt("%.2fx", base > 0 ? v / base : 0);
}

static int bench_rtt_pipeline(struct trt_env *env, const char *sid) {
	struct trt_conn *c = NULL;
	size_t req_len = 0, rep_len = 0, cap = 0;
	char *req, *buf = NULL;
	int iters = quick ? 2000 : 20000;
	int64_t *lat = calloc((size_t)iters, sizeof(int64_t));
	int64_t p50, p99, b50, b99;
	double thr, bthr;

	if (trt_connect(env->daemon.socket_path, &c) < 0) {
		return -1;
	}
	req = frame_request(1, "task.get", trt_fmt("{\"sid\":\"%s\"}", sid), &req_len);
	/* warm up and learn the reply size */
	for (int i = 0; i < 200; i++) {
		(void)!write(c->sock.fd, req, req_len);
		ssize_t k = read_frame_raw(c->sock.fd, &buf, &cap);
		if (k < 0) {
			return -1;
		}
		rep_len = (size_t)k;
	}
	for (int i = 0; i < iters; i++) {
		int64_t t0 = now_ns();
		(void)!write(c->sock.fd, req, req_len);
		if (read_frame_raw(c->sock.fd, &buf, &cap) < 0) {
			return -1;
		}
		lat[i] = now_ns() - t0;
	}
	p50 = pct(lat, (size_t)iters, 0.5);
	p99 = pct(lat, (size_t)iters, 0.99);
	{
		int n = iters * 2, sent = 0, recvd = 0;
		int64_t t0 = now_ns();
		while (recvd < n) {
			while (sent < n && sent - recvd < 16) {
				(void)!write(c->sock.fd, req, req_len);
				sent++;
			}
			if (read_frame_raw(c->sock.fd, &buf, &cap) < 0) {
				return -1;
			}
			recvd++;
		}
		thr = (double)n / ((double)(now_ns() - t0) / 1e9);
	}
	raw_pingpong(req_len, rep_len, iters, &b50, &b99, &bthr);
	row(trt_fmt("task.get round trip p50 (%zu B reply)", rep_len), fmt_us(p50), fmt_us(b50),
		ratio((double)p50, (double)b50), "<= 1.5x raw", p50 <= b50 * 3 / 2 ? "met" : "NOT met");
	row("task.get round trip p99", fmt_us(p99), fmt_us(b99), ratio((double)p99, (double)b99),
		"<= 3x raw", p99 <= b99 * 3 ? "met" : "NOT met");
	row("pipelined task.get calls/s (window 16)", trt_fmt("%.0f/s", thr),
		trt_fmt("%.0f/s", bthr), ratio(thr, bthr), ">= 100000/s",
		thr >= 100000 ? "met" : "NOT met");
	free(req);
	free(buf);
	free(lat);
	trt_conn_free(c);
	return 0;
}

/* CPU time (utime + stime, /proc/PID/stat) in ns, or -1: in clock ticks (10 ms). */
static int64_t stat_cpu_ns(pid_t pid) {
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	ssize_t k;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	k = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (k <= 0) {
		return -1;
	}
	buf[k] = '\0';
	/* fields 14 and 15, counted after the command name in parentheses (field 2) */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			  &st) != 2) {
		return -1;
	}
	return (int64_t)((ut + st) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK)));
}

/* The same CPU time to the nanosecond: the process's CPU-time clock, the sum_exec_runtime that
 * /proc/PID/stat's utime + stime are scaled to (a burst of the raw baseline takes less than a
 * tick). Falls back to /proc/PID/stat. */
static int64_t cpu_ns(pid_t pid) {
	clockid_t cid;
	struct timespec ts;

	if (clock_getcpuclockid(pid, &cid) == 0 && clock_gettime(cid, &ts) == 0) {
		return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	}
	return stat_cpu_ns(pid);
}

/* A subscriber's stream as the reader sees it: frames counted, never parsed. */
struct sub_reader {
	unsigned char head[4];
	int head_have;
	uint32_t left; /* of the current frame's payload */
	int count;
};

/* Read n sockets as they become readable until each has delivered `want` whole frames (the
 * local protocol's length-prefixed frames). 0, or -1 on EOF, an error or after timeout_ms. */
static int read_frames(const int *fds, int n, int want, int timeout_ms) {
	static char buf[256 * 1024];
	struct sub_reader *rd = calloc((size_t)n, sizeof(*rd));
	struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
	int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
	int done = 0, r = -1;

	if (!rd || !pfd) {
		goto out;
	}
	for (int i = 0; i < n; i++) {
		/* --sequential: one subscriber after the other, as the former reader did */
		pfd[i].fd = sequential && i > 0 ? -1 : fds[i];
		pfd[i].events = POLLIN;
	}
	while (done < n) {
		int left_ms = (int)((deadline - now_ns()) / 1000000);
		if (left_ms <= 0 || poll(pfd, (nfds_t)n, left_ms) <= 0) {
			fprintf(stderr, "bench: %d of %d subscribers still waiting for frames\n",
				n - done, n);
			goto out;
		}
		for (int i = 0; i < n; i++) {
			struct sub_reader *s = &rd[i];
			const unsigned char *p, *end;
			ssize_t k;

			if (!pfd[i].revents) {
				continue;
			}
			k = read(fds[i], buf, sizeof(buf));
			if (k <= 0) {
				goto out;
			}
			p = (const unsigned char *)buf;
			end = p + k;
			while (p < end) {
				if (s->left == 0) {
					s->head[s->head_have++] = *p++;
					if (s->head_have == 4) {
						s->left = (uint32_t)s->head[0] << 24 |
							  (uint32_t)s->head[1] << 16 |
							  (uint32_t)s->head[2] << 8 | s->head[3];
						s->head_have = 0;
					}
					continue;
				}
				size_t take = (size_t)(end - p) < s->left ? (size_t)(end - p) : s->left;
				p += take;
				s->left -= (uint32_t)take;
				if (s->left == 0 && ++s->count == want) {
					done++;
				}
			}
			if (s->count >= want && pfd[i].fd >= 0) {
				pfd[i].fd = -1; /* anything more belongs to the next round */
				if (sequential && i + 1 < n) {
					pfd[i + 1].fd = fds[i + 1];
				}
			}
		}
	}
	r = 0;
	for (int i = 0; i < n; i++) {
		if (rd[i].count != want || rd[i].left || rd[i].head_have) {
			fprintf(stderr, "bench: subscriber %d read %d frames, not %d\n", i,
				rd[i].count, want);
			r = -1;
		}
	}
out:
	free(rd);
	free(pfd);
	return r;
}

/* One timed release of the held frames to target (-1: the daemon): the time from the release
 * until every subscriber in fds has read `want` frames, and the CPU time `pid` spent meanwhile. */
static int timed_release(struct trb_upstream *up, int target, bool keep, const int *fds, int n,
	int want, pid_t pid, int64_t *ret_ns, int64_t *ret_cpu) {
	int64_t c0 = cpu_ns(pid), t0 = now_ns(), c1;

	if (trb_upstream_release(up, target, keep) < 0 || read_frames(fds, n, want, 60000) < 0) {
		return -1;
	}
	*ret_ns = now_ns() - t0;
	c1 = cpu_ns(pid);
	*ret_cpu = c1 - c0;
	return trb_upstream_wait_idle(up, 60000);
}

static const char *fmt_cpu(double us) {
	return us < 100 ? trt_fmt("%.1f us", us) : trt_fmt("%.0f us", us);
}

/* Have the simulator make k reservations for alice and hold their frames in the stub. */
static int hold_reservations(struct trt_env *env, struct trb_upstream *up, int k) {
	size_t matching = 0;
	int got;

	trb_upstream_hold(up);
	if (trt_sim_http(env, "POST", "/sim/bulk-tasks",
		    trt_fmt("{\"worker\":\"alice\",\"count\":%d,\"accept\":false}", k), NULL) != 200) {
		return -1;
	}
	got = trb_upstream_wait_held(up, (size_t)k, "\"reservation.created\"", &matching, 60000);
	if (got != k || matching != (size_t)k) {
		fprintf(stderr, "bench: the stub holds %d frames, %zu reservation.created, not %d\n",
			got, matching, k);
		return -1;
	}
	if (verbose && k > 1) {
		fprintf(stderr, "# %d reservation.created frames held, %zu bytes each\n", k,
			trb_upstream_held_bytes(up) / (size_t)k);
	}
	return 0;
}

/* Fan-out to n subscribers, the simulator out of the timed window.
 * The daemon's websocket goes through the upstream stub (upstream.h). For each burst the
 * simulator makes k reservations for alice while the stub holds their k reservation.created
 * frames; then the stub writes them to the raw baseline's socket, and then to the daemon, in
 * one write each. A burst's time runs from that write until each of the n subscribers has read
 * its k-th frame; the CPU time is the daemon's (or the raw child's) utime + stime from
 * /proc/PID/stat over the same window, summed over the bursts. The raw baseline is a child
 * process that reads the same frames from a loopback TCP socket and writev()s every payload to
 * n Unix sockets (upstream.h). Subscribers are read as they become readable (poll), as n
 * independent apps would. Latency: one reservation.created frame at a time, from the stub's
 * write to the last subscriber having it; p99 over the rounds. */
static int bench_fanout(int n, const char *const *daemon_args) {
	int k = n >= 100 ? 500 : 2000, rounds = quick ? 20 : 100, bursts = quick ? 3 : 7;
	struct trt_env env;
	struct trb_upstream *up = NULL;
	struct trb_raw raw = {.pid = -1, .in_fd = -1};
	struct trt_conn **subs = calloc((size_t)n, sizeof(*subs));
	int *fds = calloc((size_t)n, sizeof(*fds));
	int64_t d_ns[7], r_ns[7], d_cpu = 0, r_cpu = 0, d_stat, r_stat;
	int64_t *d_lat = calloc((size_t)rounds, sizeof(int64_t));
	int64_t *r_lat = calloc((size_t)rounds, sizeof(int64_t));
	const char *args[16];
	size_t na = 0;
	int port = 0, r = -1;

	if (quick) {
		k /= 5;
	}
	memset(&env, 0, sizeof(env));
	/* first, so that the child inherits none of the daemon's or the stub's sockets */
	if (!subs || !fds || !d_lat || !r_lat || trb_raw_start(n, &raw) < 0) {
		goto out;
	}
	if (trt_env_init(&env) < 0 || trt_sim_start(&env, NULL) < 0 ||
		trb_upstream_start(env.sim.port, &up, &port) < 0) {
		goto out;
	}
	for (size_t i = 0; daemon_args[i]; i++) {
		args[na++] = daemon_args[i];
	}
	args[na++] = "--websocket-url";
	args[na++] = trt_fmt("ws://127.0.0.1:%d/v1/wschannels", port);
	args[na] = NULL;
	if (trt_daemon_start(&env, "alice", args) < 0 ||
		trt_daemon_wait_status(&env, "ready", 30000) < 0) {
		fprintf(stderr, "bench: the daemon did not get ready through the stub\n");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		struct tr_json *res;
		if (trt_connect(env.daemon.socket_path, &subs[i]) < 0) {
			goto out;
		}
		res = trt_call_ok(subs[i], "events.subscribe",
			"{\"events\":[\"reservationCreated\",\"updated\"]}");
		if (!res) {
			goto out;
		}
		tr_json_free(res);
		if (subs[i]->sock.len || subs[i]->n_events) {
			fprintf(stderr, "bench: subscriber %d has unread input\n", i);
			goto out;
		}
		fds[i] = subs[i]->sock.fd;
	}
	/* Bursts: the median is the throughput; the slowest one is shown too (an occasional
	 * burst used to stall for about 200 ms). Raw and daemon alternate, so that both see the
	 * same machine. */
	d_stat = stat_cpu_ns(env.daemon.proc.pid);
	r_stat = stat_cpu_ns(raw.pid);
	for (int b = 0; b < bursts; b++) {
		int64_t cpu;
		if (hold_reservations(&env, up, k) < 0 ||
			timed_release(up, raw.in_fd, true, raw.subs, n, k, raw.pid, &r_ns[b], &cpu) <
				0) {
			goto out;
		}
		r_cpu += cpu;
		if (timed_release(up, -1, false, fds, n, k, env.daemon.proc.pid, &d_ns[b], &cpu) <
			0) {
			goto out;
		}
		d_cpu += cpu;
	}
	/* over the whole loop, the simulator's turns included: a cross-check for --verbose */
	d_stat = stat_cpu_ns(env.daemon.proc.pid) - d_stat;
	r_stat = stat_cpu_ns(raw.pid) - r_stat;
	for (int j = 0; j < rounds; j++) {
		int64_t cpu;
		if (hold_reservations(&env, up, 1) < 0 ||
			timed_release(up, raw.in_fd, true, raw.subs, n, 1, raw.pid, &r_lat[j], &cpu) <
				0 ||
			timed_release(up, -1, false, fds, n, 1, env.daemon.proc.pid, &d_lat[j], &cpu) <
				0) {
			goto out;
		}
	}
	{
		double total = (double)n * k * bursts / 1000.0; /* thousands of deliveries */
		double dk = (double)d_cpu / 1000.0 / total, rk = (double)r_cpu / 1000.0 / total;
		int64_t dmed = pct(d_ns, (size_t)bursts, 0.5), dworst = d_ns[bursts - 1];
		int64_t rmed = pct(r_ns, (size_t)bursts, 0.5);
		double dps = (double)n * k / ((double)dmed / 1e9);
		double wdps = (double)n * k / ((double)dworst / 1e9);
		double rdps = (double)n * k / ((double)rmed / 1e9);
		bool target = n == 8 || n == 100;

		row(trt_fmt("fan-out to %d: daemon CPU per 1,000 deliveries (%d x %d)", n, bursts,
			    k),
			fmt_cpu(dk), trt_fmt("%s (raw)", fmt_cpu(rk)), ratio(dk, rk),
			target ? "<= 2x raw" : "-",
			target ? (dk <= 2 * rk ? "met" : "NOT met") : "-");
		row(trt_fmt("fan-out to %d subscriber(s): deliveries/s (median burst)", n),
			trt_fmt("%.0f/s", dps), trt_fmt("%.0f/s (raw)", rdps), ratio(dps, rdps),
			n == 8 ? ">= 400000/s" : "-", n == 8 ? (dps >= 400000 ? "met" : "NOT met") : "-");
		row(trt_fmt("fan-out to %d: slowest of %d bursts", n, bursts), trt_fmt("%.0f/s", wdps),
			"-", trt_fmt("%.2fx median", wdps / dps), ">= 0.8x median",
			wdps >= 0.8 * dps ? "met" : "NOT met");
		row(trt_fmt("fan-out to %d: p99 one frame -> last subscriber", n),
			fmt_us(pct(d_lat, (size_t)rounds, 0.99)),
			trt_fmt("%s (raw)", fmt_us(pct(r_lat, (size_t)rounds, 0.99))),
			ratio((double)pct(d_lat, (size_t)rounds, 0.99),
				(double)pct(r_lat, (size_t)rounds, 0.99)),
			"-", "-");
		if (verbose) {
			fprintf(stderr,
				"# fan-out %d CPU ms: daemon %.1f (/proc/PID/stat over the loop: %.0f), "
				"raw %.1f (%.0f)\n",
				n, (double)d_cpu / 1e6, (double)d_stat / 1e6, (double)r_cpu / 1e6,
				(double)r_stat / 1e6);
			for (int b = 0; b < bursts; b++) {
				fprintf(stderr, "# fan-out %d burst ms (sorted): daemon %.1f raw %.1f\n",
					n, (double)d_ns[b] / 1e6, (double)r_ns[b] / 1e6);
			}
		}
	}
	r = 0;
out:
	trb_raw_stop(&raw);
	for (int i = 0; subs && i < n; i++) {
		trt_conn_free(subs[i]);
	}
	trt_env_done(&env);
	up = trb_upstream_free(up);
	free(subs);
	free(fds);
	free(d_lat);
	free(r_lat);
	return r;
}

static int bench_rss(const char *const *daemon_args) {
	const int sizes[] = {0, 1000, 10000};
	long base = -1;
	for (size_t s = 0; s < 3; s++) {
		struct trt_env env;
		long kb;
		int n = sizes[s];
		if (quick && n > 1000) {
			continue;
		}
		if (trt_env_init(&env) < 0 || trt_sim_start(&env, NULL) < 0) {
			return -1;
		}
		if (n && trt_sim_http(&env, "POST", "/sim/bulk-tasks",
			      trt_fmt("{\"worker\":\"alice\",\"count\":%d,\"accept\":true}", n),
			      NULL) != 200) {
			fprintf(stderr, "bench: /sim/bulk-tasks failed\n");
			trt_env_done(&env);
			return -1;
		}
		if (trt_daemon_start(&env, "alice", daemon_args) < 0 ||
			trt_daemon_wait_status(&env, "ready", 120000) < 0) {
			trt_env_done(&env);
			return -1;
		}
		/* Measure the steady state, not the instant of "ready": one round trip lets the loop
		 * run the post-resync malloc_trim (a 0 ms timer) first. */
		{
			struct trt_conn *c = NULL;
			struct tr_json *r = NULL;

			if (trt_connect(env.daemon.socket_path, &c) < 0 ||
				!(r = trt_call_ok(c, "daemon.status", "{}"))) {
				trt_env_done(&env);
				return -1;
			}
			if (verbose) {
				const struct tr_json *rp = tr_json_get(r, "replay");
				int64_t ev = 0, tb = 0, fr = 0;

				(void)tr_json_get_int(rp, "events", &ev);
				(void)tr_json_get_int(rp, "textBytes", &tb);
				(void)tr_json_get_int(rp, "fromRecords", &fr);
				fprintf(stderr, "# %d tasks: replay ring %" PRId64 " events, %" PRId64
					" bytes of text, %" PRId64 " written from their records\n", n, ev, tb,
					fr);
				print_private_maps(env.daemon.proc.pid);
			}
			tr_json_free(r);
			trt_conn_free(c);
		}
		kb = rss_kb(env.daemon.proc.pid);
		if (n == 0) {
			base = kb;
		}
		row(trt_fmt("daemon RSS with %d cached tasks", n), trt_fmt("%.2f MB", kb / 1024.0),
			trt_fmt("%.2f MB", base / 1024.0), ratio((double)kb, (double)base),
			"-", "-");
		{
			/* issue #17's targets are on the private memory */
			static const long target_kb[] = {1536, 2560, 10240};
			long pk = private_kb(env.daemon.proc.pid);
			long pss = proc_field(env.daemon.proc.pid, "smaps_rollup", "Pss");
			row(trt_fmt("  of which private (not shared libraries)"), trt_fmt("%.2f MB", pk / 1024.0),
				"-", "-", trt_fmt("<= %.1f MB", target_kb[s] / 1024.0),
				pk >= 0 && pk <= target_kb[s] ? "met" : "NOT met");
			row(trt_fmt("  PSS (shared pages divided among their users)"),
				trt_fmt("%.2f MB", pss / 1024.0), "-", "-", "-", "-");
		}
		trt_env_done(&env);
	}
	return 0;
}

/* A diagnostic, run only with --only fanout-sim and not part of the table: the former
 * measurement, with the simulator inside the timed window and the daemon connected to it
 * directly. Each of 15 bursts runs from the /sim/bulk-tasks call (500 reservations) until each
 * of the 8 subscribers has read them all; every burst's time is printed. Beside the stub's
 * figures it tells what the simulator adds, and whether the slow bursts come with it. */
static int bench_fanout_sim(const char *const *daemon_args) {
	enum { N = 8, K = 500, BURSTS = 15 };
	struct trt_env env;
	struct trt_conn *subs[N] = {NULL};
	int fds[N], r = -1;
	int64_t ns[BURSTS];

	if (trt_env_init(&env) < 0 || trt_sim_start(&env, NULL) < 0 ||
		trt_daemon_start(&env, "alice", daemon_args) < 0 ||
		trt_daemon_wait_status(&env, "ready", 30000) < 0) {
		goto out;
	}
	for (int i = 0; i < N; i++) {
		struct tr_json *res;
		if (trt_connect(env.daemon.socket_path, &subs[i]) < 0 ||
			!(res = trt_call_ok(subs[i], "events.subscribe",
				  "{\"events\":[\"reservationCreated\"]}"))) {
			goto out;
		}
		tr_json_free(res);
		fds[i] = subs[i]->sock.fd;
	}
	for (int b = 0; b < BURSTS; b++) {
		int64_t t0 = now_ns();
		if (trt_sim_http(&env, "POST", "/sim/bulk-tasks",
			    trt_fmt("{\"worker\":\"alice\",\"count\":%d,\"accept\":false}", K),
			    NULL) != 200 ||
			read_frames(fds, N, K, 60000) < 0) {
			goto out;
		}
		ns[b] = now_ns() - t0;
		printf("# simulator in the window: burst %2d: %6.1f ms, %.0f deliveries/s\n", b,
			(double)ns[b] / 1e6, (double)N * K / ((double)ns[b] / 1e9));
	}
	{
		int64_t med = pct(ns, BURSTS, 0.5), worst = ns[BURSTS - 1];
		row("fan-out to 8 with the simulator in the window (median burst)",
			trt_fmt("%.0f/s", (double)N * K / ((double)med / 1e9)), "-", "-", "-", "-");
		row(trt_fmt("  slowest of %d bursts", BURSTS),
			trt_fmt("%.0f/s", (double)N * K / ((double)worst / 1e9)), "-",
			trt_fmt("%.2fx median", (double)med / (double)worst), "-", "-");
	}
	r = 0;
out:
	for (int i = 0; i < N; i++) {
		trt_conn_free(subs[i]);
	}
	trt_env_done(&env);
	return r;
}

/* ---- the official SDK, for the startup and Worker-side rows ---- */

/* `node` from PATH, or NULL. */
static const char *find_node(void) {
	static char found[512];
	const char *path = getenv("PATH");

	while (path && *path) {
		const char *colon = strchr(path, ':');
		size_t len = colon ? (size_t)(colon - path) : strlen(path);
		snprintf(found, sizeof(found), "%.*s/node", (int)len, path);
		if (len && access(found, X_OK) == 0) {
			return found;
		}
		path = colon ? colon + 1 : NULL;
	}
	return NULL;
}

/* Run tests/bench/sdk-worker.js (TR_BENCH_SDK names tests/bench; the SDK is the one
 * tests/compat installs) with these arguments; its stdout into *ret_out. 0, or -1 when the
 * SDK is not there or the script failed (why is printed once). */
static int run_sdk(const char *const *args, int timeout_ms, char **ret_out) {
	static bool told;
	const char *dir = getenv("TR_BENCH_SDK"), *node = find_node();
	const char *argv[16];
	size_t n = 0;
	int st;

	if (!dir || !node ||
		access(trt_fmt("%s/../compat/node_modules/twilio-taskrouter", dir), R_OK) != 0) {
		if (!told) {
			fprintf(stderr, "bench: no SDK comparison (needs node, TR_BENCH_SDK and "
					"tests/compat/node_modules: run scripts/bench.sh)\n");
			told = true;
		}
		return -1;
	}
	argv[n++] = node;
	argv[n++] = trt_fmt("%s/sdk-worker.js", dir);
	for (size_t i = 0; args[i] && n < 15; i++) {
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	st = trt_run(argv, NULL, NULL, timeout_ms, ret_out);
	if (st != 0) {
		fprintf(stderr, "bench: sdk-worker.js %s exited with %d\n", args[0], st);
		return -1;
	}
	return 0;
}

/* The values of the lines "KEY VALUE" in out, in order; returns how many (at most max). */
static int sdk_values(const char *out, const char *key, double *v, int max) {
	size_t kl = strlen(key);
	int n = 0;

	for (const char *l = out; l && *l && n < max; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
			v[n++] = strtod(l + kl + 1, NULL);
		}
	}
	return n;
}

static int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n ? v[n / 2] : 0;
}

static const char *fmt_ms(double ms) {
	return ms >= 100 ? trt_fmt("%.0f ms", ms) : trt_fmt("%.2f ms", ms);
}

/* Startup: from starting taskrouterd to its "ready" (the resync done: the worker, the
 * activities, the channels and every page of active reservations), with m accepted
 * reservations for alice; against the SDK on the same simulator, from new Worker() to its
 * "ready" (node's own start and require() left out). Runs alternate, the median is shown. */
static int bench_startup(const char *const *daemon_args) {
	const int sizes[] = {1000, 10000};
	int runs = quick ? 1 : 3;

	for (size_t s = 0; s < 2; s++) {
		struct trt_env env;
		double d[3], k[3], kr[3];
		int m = sizes[s], nk = 0;

		if (quick && m > 1000) {
			continue;
		}
		if (trt_env_init(&env) < 0 || trt_sim_start(&env, NULL) < 0 ||
			trt_sim_http(&env, "POST", "/sim/bulk-tasks",
				trt_fmt("{\"worker\":\"alice\",\"count\":%d,\"accept\":true}", m),
				NULL) != 200) {
			trt_env_done(&env);
			return -1;
		}
		for (int r = 0; r < runs; r++) {
			int64_t t0 = now_ns();
			char *out = NULL;
			double v = 0, vr = 0;

			if (trt_daemon_start(&env, "alice", daemon_args) < 0 ||
				trt_daemon_wait_status(&env, "ready", 120000) < 0) {
				trt_env_done(&env);
				return -1;
			}
			d[r] = (double)(now_ns() - t0) / 1e6;
			if (trt_daemon_stop(&env) != 0) {
				trt_env_done(&env);
				return -1;
			}
			if (run_sdk((const char *const[]){"startup",
					    trt_fmt("%s/alice.token", env.sim.token_dir),
					    trt_fmt("%d", env.sim.port), trt_fmt("%d", m), NULL},
				    300000, &out) == 0 &&
				sdk_values(out, "all", &v, 1) == 1 && sdk_values(out, "ready", &vr, 1) == 1) {
				kr[nk] = vr;
				k[nk++] = v;
			}
			free(out);
		}
		{
			double dm = median(d, runs), km = nk ? median(k, nk) : 0;
			double krm = nk ? median(kr, nk) : 0;
			const char *what = trt_fmt("startup to ready, %d reservations (%d page%s)", m,
				(m + 999) / 1000, m > 1000 ? "s" : "");
			if (nk == runs) {
				/* the SDK's "ready" comes after its first page: the target is against
				 * the SDK holding them all, as the daemon's "ready" means */
				row(what, fmt_ms(dm), trt_fmt("%s (SDK, all held)", fmt_ms(km)),
					ratio(dm, km), "<= 0.5x SDK", dm <= 0.5 * km ? "met" : "NOT met");
				row("  against the SDK's own ready event (after its first page)", fmt_ms(dm),
					trt_fmt("%s (SDK)", fmt_ms(krm)), ratio(dm, krm), "-", "-");
			} else {
				row(what, fmt_ms(dm), "(no SDK)", "-", "<= 0.5x SDK", "-");
			}
		}
		trt_env_done(&env);
	}
	return 0;
}

/* The Worker side: reservation.accept and worker.setActivity round trips through the daemon
 * and the simulator, as a client sees them (one call at a time on its own connection), against
 * the SDK's reservation.accept() and Activity.setAsCurrent() on the same simulator (as bob, so
 * that the daemon's session for alice stays). Each accept takes a new chat task, completed
 * after the measurement; setActivity alternates Offline and Available. Medians of N. */
static int bench_worker_side(struct trt_env *env) {
	int n = quick ? 10 : 50;
	struct trt_conn *ev = NULL, *call = NULL;
	double acc[50], act[50], sacc[50], sact[50];
	struct tr_json *r;
	char *out = NULL;
	int ns_acc = 0, ns_act = 0, rc = -1;

	if (trt_connect(env->daemon.socket_path, &ev) < 0 ||
		trt_connect(env->daemon.socket_path, &call) < 0 ||
		!(r = trt_call_ok(ev, "events.subscribe", "{\"events\":[\"reservationCreated\"]}"))) {
		goto out;
	}
	tr_json_free(r);
	for (int i = 0; i < n; i++) {
		char tsid[35], rsid[35];
		struct tr_json *res = NULL, *err = NULL;
		int64_t t0;
		int st;

		if (trt_sim_create_task(env, "alice", "chat", "{}", false, tsid, rsid) < 0 ||
			trt_wait_event(ev, "reservationCreated", tsid, 30000, NULL) < 0) {
			goto out;
		}
		t0 = now_ns();
		st = trt_call(call, "reservation.accept", trt_fmt("{\"sid\":\"%s\"}", rsid), 30000,
			&res, &err);
		acc[i] = (double)(now_ns() - t0) / 1e6;
		tr_json_free(res);
		tr_json_free(err);
		if (st != 0 || trt_sim_http(env, "POST", trt_fmt("/sim/tasks/%s/complete", tsid),
				       NULL, NULL) != 200) {
			fprintf(stderr, "bench: reservation.accept or the task's completion failed\n");
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		struct tr_json *res = NULL, *err = NULL;
		int64_t t0 = now_ns();
		int st = trt_call(call, "worker.setActivity",
			trt_fmt("{\"activity\":\"%s\"}", i % 2 ? "Available" : "Offline"), 30000, &res,
			&err);

		act[i] = (double)(now_ns() - t0) / 1e6;
		tr_json_free(res);
		tr_json_free(err);
		if (st != 0) {
			fprintf(stderr, "bench: worker.setActivity failed\n");
			goto out;
		}
	}
	if (run_sdk((const char *const[]){"worker", trt_fmt("%s/bob.token", env->sim.token_dir),
			    trt_fmt("%d", env->sim.port), "bob", trt_fmt("%d", n), NULL},
		    300000, &out) == 0) {
		ns_acc = sdk_values(out, "accept", sacc, n);
		ns_act = sdk_values(out, "activity", sact, n);
	}
	{
		double a = median(acc, n), b = median(act, n);
		if (ns_acc == n && ns_act == n) {
			double sa = median(sacc, n), sb = median(sact, n);
			row(trt_fmt("reservation.accept round trip p50 (daemon + sim, %d)", n), fmt_ms(a),
				trt_fmt("%s (SDK)", fmt_ms(sa)), ratio(a, sa), "-", "-");
			row(trt_fmt("worker.setActivity round trip p50 (daemon + sim, %d)", n), fmt_ms(b),
				trt_fmt("%s (SDK)", fmt_ms(sb)), ratio(b, sb), "-", "-");
		} else {
			row("reservation.accept round trip p50 (daemon + sim)", fmt_ms(a), "(no SDK)",
				"-", "-", "-");
			row("worker.setActivity round trip p50 (daemon + sim)", fmt_ms(b), "(no SDK)",
				"-", "-", "-");
		}
	}
	rc = 0;
out:
	free(out);
	trt_conn_free(ev);
	trt_conn_free(call);
	return rc;
}

static int bench_idle(struct trt_env *env) {
	int secs = quick ? 5 : 60; /* a whole minute: libwebsockets' own timer runs every 30 s */
	struct timespec lead = {.tv_sec = 2}, ts = {.tv_sec = secs};
	long c0, c1, p0;

	/* A benchmark, not a test: waiting a fixed window is the measurement itself. The window
	 * starts 2 s after the previous group, whose connections the daemon is still closing. */
	nanosleep(&lead, NULL);
	c0 = wakeups(env->daemon.proc.pid);
	p0 = preemptions(env->daemon.proc.pid);
	nanosleep(&ts, NULL);
	c1 = wakeups(env->daemon.proc.pid);
	if (verbose) {
		fprintf(stderr, "# idle: %ld wake-ups, %ld preemptions in %d s\n", c1 - c0,
			preemptions(env->daemon.proc.pid) - p0, secs);
	}
	{
		double per_min = (double)(c1 - c0) * 60.0 / secs;
		/* the simulator's heartbeats come every 15 s: 4 a minute, plus 1 allowed */
		row("idle wake-ups per minute (15 s heartbeats)", trt_fmt("%.0f", per_min),
			"4 (heartbeats)", ratio(per_min, 4), "<= 5/min",
			per_min <= 5 ? "met" : "NOT met");
	}
	return 0;
}

int main(int argc, char **argv) {
	struct trt_env env;
	char sid[35], res[35];
	static const char *const daemon_args[] = {"--log-level", "notice", NULL};
	bool main_env;

	trt_replay_check = false; /* measure the daemon as users run it */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			quick = true;
		} else if (strcmp(argv[i], "--verbose") == 0) {
			verbose = true;
		} else if (strcmp(argv[i], "--sequential") == 0) {
			sequential = true;
		} else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			only = argv[++i];
		} else if (strcmp(argv[i], "--markdown") == 0 && i + 1 < argc) {
			md = fopen(argv[++i], "w");
		} else {
			fprintf(stderr,
				"usage: %s [--quick] [--verbose] [--sequential] "
				"[--only rtt|fanout|fanout-sim|idle|worker|startup|rss] [--markdown FILE]\n",
				argv[0]);
			return 2;
		}
	}
	main_env = want("rtt") || want("idle") || want("worker");
	printf("%-44s %14s %14s %9s  %-22s %s\n", "measure", "taskrouterd", "baseline", "ratio",
		"target", "met?");
	if (md) {
		fprintf(md, "| measure | taskrouterd | baseline | ratio | target | met? |\n");
		fprintf(md, "|---|---|---|---|---|---|\n");
	}
	memset(&env, 0, sizeof(env));
	if (main_env && (trt_env_init(&env) < 0 || trt_sim_start(&env, NULL) < 0 ||
				trt_daemon_start(&env, "alice", daemon_args) < 0 ||
				trt_daemon_wait_status(&env, "ready", 30000) < 0)) {
		fprintf(stderr, "bench: could not start the simulator and the daemon\n");
		trt_env_done(&env);
		return 1;
	}
	if (main_env) {
		/* create a task and wait until the daemon has it accepted */
		struct trt_conn *c = NULL;
		struct tr_json *r = NULL;
		if (trt_connect(env.daemon.socket_path, &c) < 0) {
			return 1;
		}
		r = trt_call_ok(c, "events.subscribe", "{}");
		tr_json_free(r);
		if (trt_sim_create_task(&env, "alice", "voice", "{\"type\":\"bench\"}", true, sid,
			    res) < 0 ||
			trt_wait_event(c, "reservationAccepted", sid, 30000, NULL) < 0) {
			fprintf(stderr, "bench: could not create a task\n");
			return 1;
		}
		trt_conn_free(c);
	}
	/* idle before the Worker side, whose tasks and activity changes would wake the daemon */
	if ((want("rtt") && bench_rtt_pipeline(&env, sid) < 0) ||
		(want("idle") && bench_idle(&env) < 0) ||
		(want("worker") && bench_worker_side(&env) < 0)) {
		fprintf(stderr, "bench: a measurement failed\n");
		trt_env_done(&env);
		return 1;
	}
	trt_env_done(&env);
	if (want("fanout") && (bench_fanout(1, daemon_args) < 0 || bench_fanout(8, daemon_args) < 0 ||
				      bench_fanout(100, daemon_args) < 0)) {
		fprintf(stderr, "bench: the fan-out measurement failed\n");
		return 1;
	}
	if (only && strcmp(only, "fanout-sim") == 0 && bench_fanout_sim(daemon_args) < 0) {
		fprintf(stderr, "bench: the fan-out diagnostic failed\n");
		return 1;
	}
	if (want("startup") && bench_startup(daemon_args) < 0) {
		fprintf(stderr, "bench: the startup measurement failed\n");
		return 1;
	}
	if (want("rss") && bench_rss(daemon_args) < 0) {
		fprintf(stderr, "bench: the RSS measurement failed\n");
		return 1;
	}
	if (md) {
		fclose(md);
	}
	return 0;
}
