/*
 * frame.h — the length-prefixed framing of the local socket protocol.
 *
 * A frame is a 4-byte big-endian unsigned payload length followed by exactly
 * that many bytes of UTF-8 JSON. A length below TR_FRAME_MIN_PAYLOAD or above
 * the decoder's limit is a protocol error, detected from the header alone,
 * before anything is allocated.
 *
 * Pure: no I/O, no globals, no logging. Depends on nothing but libc.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tr_frame_decoder {
	uint32_t max_payload; /* largest accepted payload */
	uint8_t hdr[4];       /* header bytes collected so far */
	size_t hdr_have;
	uint32_t need; /* payload length of the frame being read, 0 while in the header */
	char *buf;     /* payload being collected (NUL-terminated when complete) */
	size_t cap;    /* bytes allocated at buf: grows with the data, at most need + 1 */
	size_t have;
	int error; /* sticky: once set, every decode call returns it */
};

/* Initialise a decoder in caller's memory. max_payload 0 means TR_FRAME_MAX_PAYLOAD_DEFAULT. */
void tr_frame_decoder_init(struct tr_frame_decoder *d, uint32_t max_payload);

/* Free what the decoder holds. The decoder can be initialised again afterwards. */
void tr_frame_decoder_done(struct tr_frame_decoder *d);

/*
 * Feed bytes. Consumes input until one frame is complete or the input is used up, and
 * returns the number of bytes consumed (call again with the rest to get further frames).
 *
 * When a frame completes, *ret_payload gets a malloc'd, NUL-terminated copy of the payload
 * (the caller owns it) and *ret_len its length; otherwise *ret_payload is set to NULL.
 *
 * Errors (sticky): -EMSGSIZE for a declared length above the limit, -EBADMSG for a length
 * below TR_FRAME_MIN_PAYLOAD, -ENOMEM.
 */
ssize_t tr_frame_decode(struct tr_frame_decoder *d, const void *data, size_t len,
	char **ret_payload, size_t *ret_len);

/* The payload length declared by the current (or the refused) header; 0 while the header
 * is incomplete. For the error message after -EMSGSIZE / -EBADMSG. */
uint32_t tr_frame_decoder_declared_length(const struct tr_frame_decoder *d);

/* True when the decoder holds a partial frame (header or payload bytes). */
int tr_frame_decoder_pending(const struct tr_frame_decoder *d);

/* Bytes of payload buffer the decoder holds now: what a partial frame costs. */
size_t tr_frame_decoder_held(const struct tr_frame_decoder *d);

/* Write the 4-byte header for a payload of len bytes. */
void tr_frame_put_header(uint8_t hdr[4], uint32_t len);

/*
 * Frame a payload: *ret gets a malloc'd buffer of 4 + len bytes. Returns 0, -EMSGSIZE when
 * len is outside [TR_FRAME_MIN_PAYLOAD, max_payload] (max_payload 0 means the default), or
 * -ENOMEM.
 */
int tr_frame_encode(const char *payload, size_t len, uint32_t max_payload, char **ret,
	size_t *ret_len);
