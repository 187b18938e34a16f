/*
 * outq.c — see outq.h.
 */
#include "outq.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct tr_outq_shared *tr_outq_shared_new(size_t len) {
	struct tr_outq_shared *sh;

	if (len > SIZE_MAX - sizeof(*sh)) {
		return NULL;
	}
	sh = malloc(sizeof(*sh) + len);
	if (sh) {
		sh->refs = 1;
		sh->len = len;
	}
	return sh;
}

void tr_outq_shared_unref(struct tr_outq_shared *sh) {
	if (sh && --sh->refs == 0) {
		free(sh);
	}
}

void tr_outq_piece_release(struct tr_outq_piece *p) {
	free(p->own);
	tr_outq_shared_unref(p->shared);
	p->own = NULL;
	p->shared = NULL;
}

/* Room for `more` pieces. */
static int reserve(struct tr_outq *q, size_t more) {
	size_t ncap = q->cap ? q->cap : 8;
	struct tr_outq_piece *np;
	uv_buf_t *ni;

	if (q->n + more <= q->cap) {
		return 0;
	}
	while (ncap < q->n + more) {
		ncap *= 2;
	}
	np = realloc(q->pieces, ncap * sizeof(*np));
	if (!np) {
		return -ENOMEM;
	}
	q->pieces = np;
	ni = realloc(q->iov, ncap * sizeof(*ni));
	if (!ni) {
		return -ENOMEM;
	}
	q->iov = ni;
	q->cap = ncap;
	return 0;
}

static void put(struct tr_outq *q, char *own, struct tr_outq_shared *shared, char *base,
	size_t len) {
	q->pieces[q->n] = (struct tr_outq_piece){own, shared};
	q->iov[q->n] = uv_buf_init(base, (unsigned)len);
	q->n++;
	q->bytes += len;
}

int tr_outq_push_shared(struct tr_outq *q, char *head, size_t head_len,
	struct tr_outq_shared *tail) {
	if (reserve(q, tail ? 2 : 1) < 0) {
		free(head);
		return -ENOMEM;
	}
	put(q, head, NULL, head, head_len);
	if (tail) {
		tail->refs++;
		put(q, NULL, tail, tail->data, tail->len);
	}
	return 0;
}

int tr_outq_try_write(struct tr_outq *q, uv_stream_t *stream) {
	size_t i = 0, k;
	int r;

	if (q->n == 0 || uv_stream_get_write_queue_size(stream) != 0) {
		return 0;
	}
	r = uv_try_write(stream, q->iov, (unsigned)q->n);
	if (r == UV_EAGAIN) {
		return 0;
	}
	if (r < 0) {
		return r;
	}
	k = (size_t)r;
	q->bytes -= k;
	for (; i < q->n && k >= q->iov[i].len; i++) {
		k -= q->iov[i].len;
		tr_outq_piece_release(&q->pieces[i]);
	}
	if (i < q->n) {
		q->iov[i].base += k;
		q->iov[i].len -= (unsigned)k;
	}
	q->n -= i;
	memmove(q->pieces, q->pieces + i, q->n * sizeof(*q->pieces));
	memmove(q->iov, q->iov + i, q->n * sizeof(*q->iov));
	return 0;
}

void tr_outq_take(struct tr_outq *q, struct tr_outq_piece *pieces) {
	memcpy(pieces, q->pieces, q->n * sizeof(*pieces));
	q->n = 0;
	q->bytes = 0;
}

void tr_outq_clear(struct tr_outq *q) {
	for (size_t i = 0; i < q->n; i++) {
		tr_outq_piece_release(&q->pieces[i]);
	}
	q->n = 0;
	q->bytes = 0;
}

void tr_outq_done(struct tr_outq *q) {
	tr_outq_clear(q);
	free(q->pieces);
	free(q->iov);
	q->pieces = NULL;
	q->iov = NULL;
	q->cap = 0;
}
