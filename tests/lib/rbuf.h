/*
 * rbuf.h — a file descriptor and what was read from it and not consumed yet. The harness
 * reads a child's stdout, its socket to the daemon and the simulator tests' websocket this
 * way. Depends on libc only.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

struct trt_rbuf {
	int fd;     /* -1 when there is none (or it was closed) */
	char *data; /* read and not consumed: len bytes, NUL-terminated once allocated */
	size_t len;
	size_t cap;
};

/* An empty buffer on fd (-1: none yet). */
void trt_rbuf_init(struct trt_rbuf *b, int fd);

/* Wait up to timeout_ms for fd to be readable, then append what one read() returns.
 * Returns the number of bytes read, 0 at EOF, -ETIMEDOUT, -ENOMEM or -errno. */
ssize_t trt_rbuf_read(struct trt_rbuf *b, int timeout_ms);

/* Drop the first n bytes (n <= len). */
void trt_rbuf_consume(struct trt_rbuf *b, size_t n);

/* Close fd and free the data: b is then as after trt_rbuf_init(b, -1). */
void trt_rbuf_done(struct trt_rbuf *b);
