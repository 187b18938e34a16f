'use strict';
// taskrouter-client: the taskrouterd local socket (doc/PROTOCOL.md) for Node >= 18 and
// Electron's main process. No dependencies.
const { Client, connect, defaultSocketPath } = require('./lib/client');
const { Subscription } = require('./lib/subscription');
const errors = require('./lib/errors');
const frame = require('./lib/frame');

module.exports = {
  connect,
  Client,
  Subscription,
  defaultSocketPath,
  encodeFrame: frame.encodeFrame,
  FrameDecoder: frame.FrameDecoder,
  ...errors,
};
