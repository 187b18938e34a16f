/*
 * frame.c — length-prefixed framing: u32 big-endian payload length, then the payload.
 *
 * The decoder is a two-state machine (collecting the header, collecting the payload). It
 * copies bytes only into the 4-byte header or into the payload buffer, so the result does
 * not depend on how the input is split. The payload buffer is allocated only once the header
 * is complete and its length has been checked, and it grows with the bytes received.
 */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tr-limits.h"

static uint32_t effective_max(uint32_t max_payload) {
	return max_payload ? max_payload : TR_FRAME_MAX_PAYLOAD_DEFAULT;
}

void tr_frame_decoder_init(struct tr_frame_decoder *d, uint32_t max_payload) {
	memset(d, 0, sizeof(*d));
	d->max_payload = effective_max(max_payload);
}

void tr_frame_decoder_done(struct tr_frame_decoder *d) {
	if (!d) {
		return;
	}
	free(d->buf);
	d->buf = NULL;
	d->cap = 0;
	d->have = 0;
	d->need = 0;
	d->hdr_have = 0;
}

int tr_frame_decoder_pending(const struct tr_frame_decoder *d) {
	return d->hdr_have > 0;
}

size_t tr_frame_decoder_held(const struct tr_frame_decoder *d) {
	return d->cap;
}

static uint32_t get_be32(const uint8_t *p) {
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

uint32_t tr_frame_decoder_declared_length(const struct tr_frame_decoder *d) {
	return d->hdr_have == TR_FRAME_HEADER_SIZE ? get_be32(d->hdr) : 0;
}

void tr_frame_put_header(uint8_t hdr[4], uint32_t len) {
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
}

/* Room for n more payload bytes (and the final NUL). The buffer grows with the data that
 * actually arrived, doubling up to the declared length: a client that declares 1 MiB and
 * sends a byte costs a page, not the megabyte. */
static int reserve(struct tr_frame_decoder *d, size_t n) {
	size_t want = d->have + n + 1, cap;
	char *nb;

	if (want <= d->cap) {
		return 0;
	}
	cap = d->cap ? d->cap * 2 : 4096;
	if (cap < want) {
		cap = want;
	}
	if (cap > (size_t)d->need + 1) {
		cap = (size_t)d->need + 1;
	}
	nb = realloc(d->buf, cap);
	if (!nb) {
		return -ENOMEM;
	}
	d->buf = nb;
	d->cap = cap;
	return 0;
}

ssize_t tr_frame_decode(struct tr_frame_decoder *d, const void *data, size_t len,
	char **ret_payload, size_t *ret_len) {
	const uint8_t *p = data;
	size_t used = 0;

	*ret_payload = NULL;
	if (d->error) {
		return d->error;
	}
	if (len == 0) {
		return 0;
	}

	if (d->hdr_have < TR_FRAME_HEADER_SIZE) {
		size_t n = TR_FRAME_HEADER_SIZE - d->hdr_have;
		uint32_t plen;

		if (n > len) {
			n = len;
		}
		memcpy(d->hdr + d->hdr_have, p, n);
		d->hdr_have += n;
		used += n;
		if (d->hdr_have < TR_FRAME_HEADER_SIZE) {
			return (ssize_t)used;
		}

		/* The whole header is here: judge the length before allocating anything. */
		plen = get_be32(d->hdr);
		if (plen < TR_FRAME_MIN_PAYLOAD) {
			d->error = -EBADMSG;
			return d->error;
		}
		if (plen > d->max_payload) {
			d->error = -EMSGSIZE;
			return d->error;
		}
		d->need = plen;
		d->have = 0;
	}

	{
		size_t n = d->need - d->have;

		if (n > len - used) {
			n = len - used;
		}
		if (n > 0 && reserve(d, n) < 0) {
			d->error = -ENOMEM;
			return d->error;
		}
		if (n > 0) {
			memcpy(d->buf + d->have, p + used, n);
		}
		d->have += n;
		used += n;
	}
	if (d->have == d->need) {
		d->buf[d->need] = '\0';
		*ret_payload = d->buf;
		if (ret_len) {
			*ret_len = d->need;
		}
		d->buf = NULL;
		d->cap = 0;
		d->have = 0;
		d->need = 0;
		d->hdr_have = 0;
	}
	return (ssize_t)used;
}

int tr_frame_encode(const char *payload, size_t len, uint32_t max_payload, char **ret,
	size_t *ret_len) {
	char *out;

	if (len < TR_FRAME_MIN_PAYLOAD || len > effective_max(max_payload)) {
		return -EMSGSIZE;
	}
	out = malloc(TR_FRAME_HEADER_SIZE + len);
	if (!out) {
		return -ENOMEM;
	}
	tr_frame_put_header((uint8_t *)out, (uint32_t)len);
	memcpy(out + TR_FRAME_HEADER_SIZE, payload, len);
	*ret = out;
	if (ret_len) {
		*ret_len = TR_FRAME_HEADER_SIZE + len;
	}
	return 0;
}
