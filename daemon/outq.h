/*
 * outq.h — a connection's output batch, for rpcsrv: framed buffers, owned from the moment they
 * are queued until they are written, in order. The server queues a loop iteration's frames and
 * then writes them with one system call: what the socket takes at once (uv_try_write), the
 * rest handed to libuv in one write request.
 *
 * Depends on libuv.
 */
#pragma once

#include <stddef.h>
#include <uv.h>

struct tr_outq {
	char **bufs;   /* the queued buffers, owned: freed once written */
	uv_buf_t *iov; /* what is left to write of each (the first may be written in part) */
	size_t n, cap;
	size_t bytes; /* left to write, in all */
};

/* Queue buf (len bytes), which the queue takes: it is freed even when this fails.
 * 0, or -ENOMEM. */
int tr_outq_push(struct tr_outq *q, char *buf, size_t len);

/*
 * Write what the stream takes now, without blocking and without a write request: nothing if
 * libuv still has queued writes of its own (the order holds). Written buffers are freed and
 * dropped; a buffer written in part stays first, with what is left of it. Returns 0 (also
 * when nothing could be written), or a negative libuv error when the stream is broken.
 */
int tr_outq_try_write(struct tr_outq *q, uv_stream_t *stream);

/* Hand the queue's buffers over: the caller takes bufs[0..n) (to free once written) and
 * writes iov[0..n); the queue is empty after. */
void tr_outq_take(struct tr_outq *q, char **bufs);

/* Free what is queued (not written); the queue can be used again. */
void tr_outq_clear(struct tr_outq *q);

/* tr_outq_clear, and free the queue's arrays. */
void tr_outq_done(struct tr_outq *q);
