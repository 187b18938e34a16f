/*
 * outq.c — see outq.h.
 */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int tr_outq_push(struct tr_outq *q, char *buf, size_t len) {
	if (q->n == q->cap) {
		size_t ncap = q->cap ? q->cap * 2 : 8;
		char **nb = realloc(q->bufs, ncap * sizeof(*nb));
		uv_buf_t *ni;

		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		q->bufs = nb;
		ni = realloc(q->iov, ncap * sizeof(*ni));
		if (!ni) {
			free(buf);
			return -ENOMEM;
		}
		q->iov = ni;
		q->cap = ncap;
	}
	q->bufs[q->n] = buf;
	q->iov[q->n] = uv_buf_init(buf, (unsigned)len);
	q->n++;
	q->bytes += len;
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
		free(q->bufs[i]);
	}
	if (i < q->n) {
		q->iov[i].base += k;
		q->iov[i].len -= (unsigned)k;
	}
	q->n -= i;
	memmove(q->bufs, q->bufs + i, q->n * sizeof(*q->bufs));
	memmove(q->iov, q->iov + i, q->n * sizeof(*q->iov));
	return 0;
}

void tr_outq_take(struct tr_outq *q, char **bufs) {
	memcpy(bufs, q->bufs, q->n * sizeof(*bufs));
	q->n = 0;
	q->bytes = 0;
}

void tr_outq_clear(struct tr_outq *q) {
	for (size_t i = 0; i < q->n; i++) {
		free(q->bufs[i]);
	}
	q->n = 0;
	q->bytes = 0;
}

void tr_outq_done(struct tr_outq *q) {
	tr_outq_clear(q);
	free(q->bufs);
	free(q->iov);
	q->bufs = NULL;
	q->iov = NULL;
	q->cap = 0;
}
