/* rbuf.c — see rbuf.h. */
#include "rbuf.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Room kept free for one read: large frames (a 2 MB websocket message, 600 KiB events)
 * arrive in few reads, and the buffer doubles from there. */
#define READ_ROOM 65536

void trt_rbuf_init(struct trt_rbuf *b, int fd) {
	memset(b, 0, sizeof(*b));
	b->fd = fd;
}

ssize_t trt_rbuf_read(struct trt_rbuf *b, int timeout_ms) {
	struct pollfd pfd = {.fd = b->fd, .events = POLLIN};
	ssize_t k;

	if (poll(&pfd, 1, timeout_ms) <= 0) {
		return -ETIMEDOUT;
	}
	if (b->cap - b->len <= READ_ROOM) {
		size_t cap = b->cap ? b->cap * 2 : 2 * READ_ROOM;
		char *d = realloc(b->data, cap);
		if (!d) {
			return -ENOMEM;
		}
		b->data = d;
		b->cap = cap;
	}
	do {
		k = read(b->fd, b->data + b->len, b->cap - b->len - 1);
	} while (k < 0 && errno == EINTR);
	if (k < 0) {
		return -errno;
	}
	b->len += (size_t)k;
	b->data[b->len] = '\0';
	return k;
}

void trt_rbuf_consume(struct trt_rbuf *b, size_t n) {
	if (!b->data) {
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void trt_rbuf_done(struct trt_rbuf *b) {
	if (b->fd >= 0) {
		close(b->fd);
	}
	free(b->data);
	trt_rbuf_init(b, -1);
}
