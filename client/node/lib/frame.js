'use strict';
// Framing of doc/PROTOCOL.md §2: a 4-byte big-endian payload length, then the payload (one
// JSON text in UTF-8). The length is at least 2 and at most the receiver's limit (1 MiB by
// default); anything else is a framing error after which the stream cannot be resynchronised.

const FRAME_MIN = 2;
const FRAME_MAX_DEFAULT = 1048576;

class FrameError extends Error {
  constructor(message, length) {
    super(message);
    this.name = 'FrameError';
    this.length = length;
  }
}

function encodeFrame(message, max = FRAME_MAX_DEFAULT) {
  const payload = Buffer.from(JSON.stringify(message), 'utf8');
  if (payload.length < FRAME_MIN || payload.length > max) {
    throw new RangeError(`message of ${payload.length} bytes does not fit a frame (at most ${max})`);
  }
  const frame = Buffer.allocUnsafe(4 + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  payload.copy(frame, 4);
  return frame;
}

// Collects bytes as they come and hands out whole payloads. The length is judged from the
// header alone, before anything is kept for the payload.
class FrameDecoder {
  constructor(max = FRAME_MAX_DEFAULT) {
    this.max = max;
    this.chunks = [];
    this.size = 0;
  }

  // Returns the payloads (Buffers) completed by `chunk`; throws FrameError on a bad length.
  push(chunk) {
    if (chunk.length) {
      this.chunks.push(chunk);
      this.size += chunk.length;
    }
    const out = [];
    for (;;) {
      if (this.size < 4) {
        break;
      }
      const head = this._peek(4);
      const len = head.readUInt32BE(0);
      if (len < FRAME_MIN || len > this.max) {
        throw new FrameError(`frame length ${len} outside ${FRAME_MIN}..${this.max}`, len);
      }
      if (this.size < 4 + len) {
        break;
      }
      const all = this._take(4 + len);
      out.push(all.subarray(4));
    }
    return out;
  }

  _peek(n) {
    if (this.chunks[0].length >= n) {
      return this.chunks[0];
    }
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  _take(n) {
    const joined = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const taken = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    return taken;
  }
}

module.exports = { encodeFrame, FrameDecoder, FrameError, FRAME_MIN, FRAME_MAX_DEFAULT };
