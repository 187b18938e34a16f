/*
 * outq.h — a connection's output batch, for rpcsrv: pieces of framed messages, written in
 * order, each owned from the moment it is queued until it is written. A piece is either a
 * buffer of the connection's own or a reference to a shared one: an event's text, written to
 * every subscriber, is one shared buffer behind each subscriber's own frame head, instead of a
 * copy of the whole frame for each. The server queues a loop iteration's frames and writes
 * them with one system call: what the socket takes at once (uv_try_write), the rest handed to
 * libuv in one write request.
 *
 * Depends on libuv.
 */
#pragma once

#include <stddef.h>
#include <uv.h>

/* A buffer several connections write: counted, freed with its last reference. */
struct tr_outq_shared {
	unsigned refs;
	size_t len;
	char data[];
};

/* A new shared buffer of len bytes (not initialised), with one reference; NULL when out of
 * memory. */
struct tr_outq_shared *tr_outq_shared_new(size_t len);
/* Let go of a reference (NULL is fine). */
void tr_outq_shared_unref(struct tr_outq_shared *sh);

/* One queued piece: exactly one of the two is set. */
struct tr_outq_piece {
	char *own;                     /* freed once written */
	struct tr_outq_shared *shared; /* a reference, let go once written */
};

/* Let go of a piece (written, or never to be). */
void tr_outq_piece_release(struct tr_outq_piece *p);

struct tr_outq {
	struct tr_outq_piece *pieces;
	uv_buf_t *iov; /* what is left to write of each (the first may be written in part) */
	size_t n, cap;
	size_t bytes; /* left to write, in all */
};

/* Queue head (head_len bytes), which the queue takes: it is freed even when this fails; then
 * the whole of tail, of which the queue takes a reference of its own: both or neither. tail
 * may be NULL (head alone). 0, or -ENOMEM. */
int tr_outq_push_shared(struct tr_outq *q, char *head, size_t head_len,
	struct tr_outq_shared *tail);

/*
 * Write what the stream takes now, without blocking and without a write request: nothing if
 * libuv still has queued writes of its own (the order holds). Written pieces are let go and
 * dropped; a piece written in part stays first, with what is left of it. Returns 0 (also when
 * nothing could be written), or a negative libuv error when the stream is broken.
 */
int tr_outq_try_write(struct tr_outq *q, uv_stream_t *stream);

/* Hand the queue's pieces over: the caller takes pieces[0..n) (to release once written) and
 * writes iov[0..n), which stays valid until the next push; the queue is empty after. */
void tr_outq_take(struct tr_outq *q, struct tr_outq_piece *pieces);

/* Let go of what is queued (not written); the queue can be used again. */
void tr_outq_clear(struct tr_outq *q);

/* tr_outq_clear, and free the queue's arrays. */
void tr_outq_done(struct tr_outq *q);
