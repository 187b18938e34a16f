/* upstream.c — see upstream.h. */
#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IO_CHUNK 65536 /* what one read takes, as the daemon's websocket receive buffer */

struct held_frame {
	size_t off; /* of the payload in held */
	size_t len;
};

struct trb_upstream {
	pthread_t thread;
	bool running;
	int sim_port;
	int lfd;    /* listening */
	int ctl[2]; /* main -> thread: 'r' release, 'q' quit */
	int dfd;    /* the daemon's connection, -1 when none */
	int sfd;    /* ours to the simulator, -1 when none */
	/* the simulator's bytes not yet passed on or held: the HTTP answer to the upgrade,
	 * then websocket frames */
	char *in;
	size_t in_len, in_cap;
	bool in_ws;

	pthread_mutex_t mu; /* guards what follows */
	pthread_cond_t cv;
	bool holding;
	char *held; /* whole frames, headers included */
	size_t held_len, held_cap;
	struct held_frame *frames;
	size_t n_frames, cap_frames;
	bool busy; /* a release is being written */
	int target;
	bool keep;
};

static int grow(char **buf, size_t *cap, size_t need) {
	if (need > *cap) {
		size_t c = *cap ? *cap : 65536;
		char *p;
		while (c < need) {
			c *= 2;
		}
		p = realloc(*buf, c);
		if (!p) {
			return -ENOMEM;
		}
		*buf = p;
		*cap = c;
	}
	return 0;
}

static int write_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void nodelay(int fd) {
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* The length of the server frame at p (header + payload) and its header's, or 0 when the
 * frame is not complete yet. */
static size_t frame_len(const unsigned char *p, size_t avail, size_t *ret_head) {
	size_t h = 2;
	uint64_t n;

	if (avail < 2) {
		return 0;
	}
	n = p[1] & 0x7f;
	if (n == 126) {
		h += 2;
	} else if (n == 127) {
		h += 8;
	}
	if (p[1] & 0x80) {
		h += 4; /* masked: a server does not, but its length is still right */
	}
	if (avail < h) {
		return 0;
	}
	if (n == 126) {
		n = (uint64_t)p[2] << 8 | p[3];
	} else if (n == 127) {
		n = 0;
		for (int i = 0; i < 8; i++) {
			n = n << 8 | p[2 + i];
		}
	}
	if (avail - h < n) {
		return 0;
	}
	*ret_head = h;
	return h + (size_t)n;
}

static bool heartbeat(const char *p, size_t n) {
	for (size_t i = 0; i < n; i++) {
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n') {
			return false;
		}
	}
	return true;
}

static void close_pair(struct trb_upstream *s) {
	pthread_mutex_lock(&s->mu);
	if (s->dfd >= 0) {
		close(s->dfd);
	}
	if (s->sfd >= 0) {
		close(s->sfd);
	}
	s->dfd = s->sfd = -1;
	pthread_mutex_unlock(&s->mu);
	s->in_len = 0;
	s->in_ws = false;
}

/* Pass on or hold what came from the simulator, up to the last complete frame. */
static int process_in(struct trb_upstream *s) {
	size_t off = 0;

	if (!s->in_ws) {
		char *end = memmem(s->in, s->in_len, "\r\n\r\n", 4);
		if (!end) {
			return 0;
		}
		off = (size_t)(end + 4 - s->in);
		if (write_all(s->dfd, s->in, off) < 0) {
			return -1;
		}
		s->in_ws = true;
	}
	for (;;) {
		size_t head = 0, n = frame_len((unsigned char *)s->in + off, s->in_len - off, &head);
		bool hold;

		if (n == 0) {
			break;
		}
		pthread_mutex_lock(&s->mu);
		hold = s->holding;
		if (hold && !heartbeat(s->in + off + head, n - head)) {
			int e = grow(&s->held, &s->held_cap, s->held_len + n);
			if (e == 0 && s->n_frames == s->cap_frames) {
				size_t c = s->cap_frames ? s->cap_frames * 2 : 1024;
				struct held_frame *f = realloc(s->frames, c * sizeof(*f));
				if (f) {
					s->frames = f;
					s->cap_frames = c;
				} else {
					e = -ENOMEM;
				}
			}
			if (e < 0) {
				pthread_mutex_unlock(&s->mu);
				return -1;
			}
			memcpy(s->held + s->held_len, s->in + off, n);
			s->frames[s->n_frames].off = s->held_len + head;
			s->frames[s->n_frames].len = n - head;
			s->n_frames++;
			s->held_len += n;
			pthread_cond_broadcast(&s->cv);
		}
		pthread_mutex_unlock(&s->mu);
		if (!hold && write_all(s->dfd, s->in + off, n) < 0) {
			return -1;
		}
		off += n;
	}
	memmove(s->in, s->in + off, s->in_len - off);
	s->in_len -= off;
	return 0;
}

static void do_release(struct trb_upstream *s) {
	int fd;
	const char *p;
	size_t n;

	pthread_mutex_lock(&s->mu);
	fd = s->target >= 0 ? s->target : s->dfd;
	p = s->held;
	n = s->held_len;
	pthread_mutex_unlock(&s->mu);
	/* Only this thread changes held, so it can be written without the lock. */
	if (fd >= 0) {
		(void)write_all(fd, p, n);
	}
	pthread_mutex_lock(&s->mu);
	if (!s->keep) {
		s->held_len = 0;
		s->n_frames = 0;
		s->holding = false;
	}
	pthread_mutex_unlock(&s->mu);
	if (!s->keep && s->dfd >= 0 && process_in(s) < 0) {
		close_pair(s);
	}
	pthread_mutex_lock(&s->mu);
	s->busy = false;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void on_accept(struct trb_upstream *s) {
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->sim_port)};
	int d = accept(s->lfd, NULL, NULL), u;

	if (d < 0) {
		return;
	}
	close_pair(s); /* the daemon reconnected */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (u < 0 || connect(u, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (u >= 0) {
			close(u);
		}
		close(d);
		return;
	}
	nodelay(d);
	nodelay(u);
	pthread_mutex_lock(&s->mu);
	s->dfd = d;
	s->sfd = u;
	pthread_mutex_unlock(&s->mu);
}

static void *run(void *arg) {
	struct trb_upstream *s = arg;
	char buf[IO_CHUNK];

	for (;;) {
		struct pollfd p[4] = {{.fd = s->ctl[0], .events = POLLIN},
			{.fd = s->lfd, .events = POLLIN}, {.fd = s->dfd, .events = POLLIN},
			{.fd = s->sfd, .events = POLLIN}};
		ssize_t k;

		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			break;
		}
		if (p[0].revents) {
			char c = 0;
			if (read(s->ctl[0], &c, 1) != 1 || c == 'q') {
				break;
			}
			do_release(s);
			continue;
		}
		if (p[1].revents & POLLIN) {
			on_accept(s);
			continue;
		}
		if (s->dfd >= 0 && p[2].revents) {
			k = read(s->dfd, buf, sizeof(buf));
			if (k <= 0 || write_all(s->sfd, buf, (size_t)k) < 0) {
				close_pair(s);
				continue;
			}
		}
		if (s->sfd >= 0 && p[3].revents) {
			if (grow(&s->in, &s->in_cap, s->in_len + IO_CHUNK) < 0) {
				close_pair(s);
				continue;
			}
			k = read(s->sfd, s->in + s->in_len, IO_CHUNK);
			if (k <= 0) {
				close_pair(s);
				continue;
			}
			s->in_len += (size_t)k;
			if (process_in(s) < 0) {
				close_pair(s);
			}
		}
	}
	close_pair(s);
	return NULL;
}

int trb_upstream_start(int sim_port, struct trb_upstream **ret, int *ret_port) {
	struct trb_upstream *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	pthread_condattr_t ca;

	if (!s) {
		return -ENOMEM;
	}
	s->sim_port = sim_port;
	s->dfd = s->sfd = -1;
	s->ctl[0] = s->ctl[1] = -1;
	s->target = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		listen(s->lfd, 4) < 0 || getsockname(s->lfd, (struct sockaddr *)&sa, &sl) < 0 ||
		pipe2(s->ctl, O_CLOEXEC) < 0 || pthread_create(&s->thread, NULL, run, s) != 0) {
		int e = -errno;
		trb_upstream_free(s);
		return e ? e : -EIO;
	}
	s->running = true;
	*ret_port = ntohs(sa.sin_port);
	*ret = s;
	return 0;
}

struct trb_upstream *trb_upstream_free(struct trb_upstream *s) {
	if (!s) {
		return NULL;
	}
	if (s->running) {
		(void)!write(s->ctl[1], "q", 1);
		pthread_join(s->thread, NULL);
	}
	if (s->lfd >= 0) {
		close(s->lfd);
	}
	for (int i = 0; i < 2; i++) {
		if (s->ctl[i] >= 0) {
			close(s->ctl[i]);
		}
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->in);
	free(s->held);
	free(s->frames);
	free(s);
	return NULL;
}

void trb_upstream_hold(struct trb_upstream *s) {
	pthread_mutex_lock(&s->mu);
	s->holding = true;
	pthread_mutex_unlock(&s->mu);
}

static void deadline_ts(struct timespec *ts, int timeout_ms) {
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int trb_upstream_wait_held(struct trb_upstream *s, size_t n, const char *needle,
	size_t *ret_matching, int timeout_ms) {
	struct timespec ts;
	size_t got, matching = 0;

	deadline_ts(&ts, timeout_ms);
	pthread_mutex_lock(&s->mu);
	while (s->n_frames < n) {
		if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&s->mu);
			return -ETIMEDOUT;
		}
	}
	got = s->n_frames;
	for (size_t i = 0; needle && i < got; i++) {
		if (memmem(s->held + s->frames[i].off, s->frames[i].len, needle, strlen(needle))) {
			matching++;
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (ret_matching) {
		*ret_matching = matching;
	}
	return (int)got;
}

size_t trb_upstream_held_bytes(struct trb_upstream *s) {
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->held_len;
	pthread_mutex_unlock(&s->mu);
	return n;
}

int trb_upstream_wait_idle(struct trb_upstream *s, int timeout_ms) {
	struct timespec ts;

	deadline_ts(&ts, timeout_ms);
	pthread_mutex_lock(&s->mu);
	while (s->busy) {
		if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&s->mu);
			return -ETIMEDOUT;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int trb_upstream_release(struct trb_upstream *s, int fd, bool keep) {
	if (trb_upstream_wait_idle(s, 60000) < 0) {
		return -ETIMEDOUT;
	}
	pthread_mutex_lock(&s->mu);
	if (fd < 0 && s->dfd < 0) {
		pthread_mutex_unlock(&s->mu);
		return -ENOTCONN;
	}
	s->target = fd;
	s->keep = keep;
	s->busy = true;
	pthread_mutex_unlock(&s->mu);
	if (write(s->ctl[1], "r", 1) != 1) {
		return -errno;
	}
	return 0;
}

/* ---- the raw baseline ---- */

#define RAW_CAP (4u << 20) /* the child's input buffer: frames are far smaller */
#define RAW_MAX_FRAMES 4096 /* per writev round */

static int writev_all(int fd, struct iovec *iov, int cnt) {
	int i = 0;

	while (i < cnt) {
		int m = cnt - i < 1024 ? cnt - i : 1024; /* IOV_MAX */
		ssize_t k = writev(fd, iov + i, m);
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			return -1;
		}
		while (i < cnt && (size_t)k >= iov[i].iov_len) {
			k -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (i < cnt) {
			iov[i].iov_base = (char *)iov[i].iov_base + k;
			iov[i].iov_len -= (size_t)k;
		}
	}
	return 0;
}

/* The child: everything it uses was allocated before the fork. */
static void raw_child(int in, const int *outs, int n, char *buf, struct iovec *iov,
	struct iovec *scratch, uint32_t *heads) {
	size_t len = 0;

	for (;;) {
		ssize_t k;
		int f;

		if (len + IO_CHUNK > RAW_CAP) {
			_exit(3);
		}
		k = read(in, buf + len, IO_CHUNK);
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			_exit(0);
		}
		len += (size_t)k;
		do {
			size_t off = 0, head = 0, fl;

			f = 0;
			while (f < RAW_MAX_FRAMES &&
				(fl = frame_len((unsigned char *)buf + off, len - off, &head)) > 0) {
				heads[f] = htonl((uint32_t)(fl - head));
				iov[2 * f].iov_base = &heads[f];
				iov[2 * f].iov_len = 4;
				iov[2 * f + 1].iov_base = buf + off + head;
				iov[2 * f + 1].iov_len = fl - head;
				f++;
				off += fl;
			}
			for (int i = 0; f > 0 && i < n; i++) {
				memcpy(scratch, iov, (size_t)(2 * f) * sizeof(*iov));
				if (writev_all(outs[i], scratch, 2 * f) < 0) {
					_exit(4);
				}
			}
			memmove(buf, buf + off, len - off);
			len -= off;
		} while (f == RAW_MAX_FRAMES);
	}
}

int trb_raw_start(int n, struct trb_raw *ret) {
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int lfd = -1, cfd = -1, afd = -1, e = 0;
	int *subs = calloc((size_t)n, sizeof(int)), *outs = calloc((size_t)n, sizeof(int));
	char *buf = malloc(RAW_CAP);
	struct iovec *iov = calloc(2 * RAW_MAX_FRAMES, sizeof(*iov));
	struct iovec *scratch = calloc(2 * RAW_MAX_FRAMES, sizeof(*scratch));
	uint32_t *heads = calloc(RAW_MAX_FRAMES, sizeof(*heads));
	pid_t pid;

	if (!subs || !outs || !buf || !iov || !scratch || !heads) {
		e = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		subs[i] = outs[i] = -1;
	}
	for (int i = 0; i < n; i++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			e = -errno;
			goto out;
		}
		subs[i] = sv[0];
		outs[i] = sv[1];
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || cfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		listen(lfd, 1) < 0 || getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0 ||
		connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		(afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		e = -errno;
		goto out;
	}
	nodelay(cfd);
	nodelay(afd);
	pid = fork();
	if (pid < 0) {
		e = -errno;
		goto out;
	}
	if (pid == 0) {
		close(cfd);
		for (int i = 0; i < n; i++) {
			close(subs[i]);
		}
		raw_child(afd, outs, n, buf, iov, scratch, heads);
		_exit(0);
	}
	ret->pid = pid;
	ret->in_fd = cfd;
	ret->subs = subs;
	ret->n = n;
	cfd = -1;
	subs = NULL;
out:
	for (int i = 0; outs && i < n; i++) {
		if (outs[i] >= 0) {
			close(outs[i]);
		}
		if (subs && subs[i] >= 0) {
			close(subs[i]);
		}
	}
	if (lfd >= 0) {
		close(lfd);
	}
	if (cfd >= 0) {
		close(cfd);
	}
	if (afd >= 0) {
		close(afd);
	}
	free(subs);
	free(outs);
	free(buf);
	free(iov);
	free(scratch);
	free(heads);
	return e;
}

void trb_raw_stop(struct trb_raw *r) {
	if (r->in_fd >= 0) {
		close(r->in_fd);
		r->in_fd = -1;
	}
	if (r->pid > 0) {
		(void)waitpid(r->pid, NULL, 0);
		r->pid = -1;
	}
	for (int i = 0; r->subs && i < r->n; i++) {
		close(r->subs[i]);
	}
	free(r->subs);
	r->subs = NULL;
}
