'use strict';
// The connection to taskrouterd: socket discovery, the server check, requests matched to
// responses by id, per-call timeouts, reconnection with backoff, and the convenience methods
// (one per method of doc/PROTOCOL.md, under the same dotted name: client.task.get(...)).

const net = require('node:net');
const fs = require('node:fs');
const { EventEmitter } = require('node:events');
const { encodeFrame, FrameDecoder, FRAME_MAX_DEFAULT } = require('./frame');
const { ConnectionError, CallTimeoutError, fromResponse } = require('./errors');
const { Subscription } = require('./subscription');

// Where the daemon listens, as libtaskrouter and taskrouterctl look for it: the first of
// $TASKROUTERD_SOCKET, $XDG_RUNTIME_DIR/taskrouterd/socket, /run/taskrouterd/socket.
function defaultSocketPath(env = process.env) {
  if (env.TASKROUTERD_SOCKET) {
    return env.TASKROUTERD_SOCKET;
  }
  if (env.XDG_RUNTIME_DIR) {
    return `${env.XDG_RUNTIME_DIR}/taskrouterd/socket`;
  }
  return '/run/taskrouterd/socket';
}

// Before anything is sent: is the socket the daemon's? libtaskrouter reads the server's
// credentials (SO_PEERCRED), which Node cannot; the nearest check is the owner of the socket
// file, which the daemon creates with mode 0600 in a directory only it may write: our own
// uid, root, or $TASKROUTERD_TRUST_UID (for a member of the daemon's --allow-group).
function checkServer(path, env = process.env) {
  let st;
  try {
    st = fs.statSync(path);
  } catch (e) {
    const what = e.code === 'ENOENT' ? 'no taskrouterd socket' : `cannot reach the socket (${e.code})`;
    throw new ConnectionError(`${what} at ${path}`, e.code, e);
  }
  if (!st.isSocket()) {
    throw new ConnectionError(`${path} is not a socket`, 'ENOTSOCK');
  }
  if (typeof process.getuid === 'function') {
    const trusted = [process.getuid(), 0];
    if (env.TASKROUTERD_TRUST_UID && /^[0-9]+$/.test(env.TASKROUTERD_TRUST_UID)) {
      trusted.push(Number(env.TASKROUTERD_TRUST_UID));
    }
    if (!trusted.includes(st.uid)) {
      throw new ConnectionError(`${path} belongs to uid ${st.uid}, not to us or root: refused`, 'EPERM');
    }
  }
}

function finiteTimeout(t) {
  return typeof t === 'number' && t > 0 && Number.isFinite(t) ? t : 0;
}

function time(t) {
  return t instanceof Date ? t.toISOString() : t;
}

class Client extends EventEmitter {
  constructor(opts = {}) {
    super();
    this.socketPath = opts.socket || defaultSocketPath();
    this.timeout = opts.timeout === undefined ? 30000 : opts.timeout;
    this.connectTimeout = opts.connectTimeout === undefined ? 5000 : opts.connectTimeout;
    this.reconnect = opts.reconnect !== false;
    this.backoff = {
      min: (opts.backoff && opts.backoff.min) || 100,
      max: (opts.backoff && opts.backoff.max) || 5000,
    };
    this.maxFrame = opts.maxFrame || FRAME_MAX_DEFAULT;
    this._sock = null;
    this._connected = false;
    this._closed = false;
    this._everConnected = false;
    this._pending = new Map();
    this._nextId = 1;
    this._subs = new Set();
    this._subById = new Map();
    this._attempt = 0;
    this._timer = null;
    this._waiters = [];
    this._lastError = null;
    this._bind();
  }

  get connected() {
    return this._connected;
  }

  // Connects once; with {wait: true} keeps trying with backoff until the daemon is there.
  connect({ wait = false } = {}) {
    if (this._closed) {
      return Promise.reject(new ConnectionError('client closed', 'ECLOSED'));
    }
    if (this._connected) {
      return Promise.resolve(this);
    }
    return new Promise((resolve, reject) => {
      this._waiters.push({ resolve, reject, wait });
      if (!this._sock && !this._timer) {
        this._attemptConnect();
      }
    });
  }

  // Closes the connection for good: calls in flight reject with ECLOSED, subscriptions end,
  // no reconnection. Emits 'disconnected' when it was connected.
  close() {
    if (this._closed) {
      return;
    }
    this._closed = true;
    clearTimeout(this._timer);
    this._timer = null;
    for (const sub of this._subs) {
      sub._closeLocal();
    }
    this._subs.clear();
    this._subById.clear();
    const err = new ConnectionError('client closed', 'ECLOSED');
    for (const w of this._waiters.splice(0)) {
      w.reject(err);
    }
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) {
      this._settle(p, err, undefined);
    }
    const sock = this._sock;
    const was = this._connected;
    this._sock = null;
    this._connected = false;
    if (sock) {
      sock.destroy();
    }
    if (was) {
      this.emit('disconnected', { error: null, willReconnect: false });
    }
  }

  // Any method, raw: resolves with the result, rejects with an RpcError (or a
  // ConnectionError / CallTimeoutError). opts: {timeout (ms; 0 for none), signal}.
  call(method, params, opts) {
    if (!this._connected) {
      return Promise.reject(new ConnectionError(`not connected to taskrouterd at ${this.socketPath}`, 'ENOTCONN'));
    }
    return this._request(method, params, opts || {});
  }

  // events.subscribe with resume and gaps handled; see Subscription.
  async subscribe(options = {}) {
    if (this._closed) {
      throw new ConnectionError('client closed', 'ECLOSED');
    }
    const sub = new Subscription(this, options);
    this._subs.add(sub);
    try {
      await sub._start();
    } catch (e) {
      this._subs.delete(sub);
      sub._closeLocal();
      throw e;
    }
    return sub;
  }

  // ---- connection ----

  _attemptConnect() {
    this._timer = null;
    let sock;
    try {
      checkServer(this.socketPath);
      sock = net.createConnection({ path: this.socketPath });
    } catch (e) {
      this._connectFailed(e instanceof ConnectionError ? e : new ConnectionError(e.message, e.code, e));
      return;
    }
    this._sock = sock;
    const ct = finiteTimeout(this.connectTimeout);
    const timer = ct
      ? setTimeout(() => sock.destroy(new ConnectionError(`connect to ${this.socketPath} timed out`, 'ETIMEDOUT')), ct)
      : null;
    const onError = (e) => {
      clearTimeout(timer);
      this._sock = null;
      this._connectFailed(e instanceof ConnectionError ? e : new ConnectionError(`cannot connect to ${this.socketPath}: ${e.message}`, e.code, e));
    };
    sock.once('error', onError);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeListener('error', onError);
      this._attach(sock);
    });
  }

  _connectFailed(err) {
    if (this._closed) {
      return;
    }
    const keep = [];
    for (const w of this._waiters.splice(0)) {
      if (w.wait) {
        keep.push(w);
      } else {
        w.reject(err);
      }
    }
    this._waiters = keep;
    if (keep.length || (this.reconnect && this._everConnected)) {
      this._schedule(err);
    }
  }

  _schedule(err) {
    const base = Math.min(this.backoff.max, this.backoff.min * 2 ** Math.min(this._attempt, 20));
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    this._attempt++;
    this.emit('reconnecting', { attempt: this._attempt, delay, error: err || null });
    this._timer = setTimeout(() => this._attemptConnect(), delay);
  }

  _attach(sock) {
    const decoder = new FrameDecoder(this.maxFrame);
    const reconnected = this._everConnected;
    this._connected = true;
    this._everConnected = true;
    this._attempt = 0;
    this._lastError = null;
    let sockError = null;
    sock.on('data', (chunk) => {
      let payloads;
      try {
        payloads = decoder.push(chunk);
      } catch (e) {
        sock.destroy(new ConnectionError(`taskrouterd broke the framing: ${e.message}`, 'EPROTO', e));
        return;
      }
      for (const p of payloads) {
        if (sock.destroyed) {
          break;
        }
        this._onPayload(sock, p);
      }
    });
    sock.on('error', (e) => {
      sockError = e;
    });
    sock.on('close', () => this._onClose(sock, sockError));
    this.emit('connected', { socket: this.socketPath, reconnected });
    for (const w of this._waiters.splice(0)) {
      w.resolve(this);
    }
    if (reconnected) {
      for (const sub of this._subs) {
        sub._resume();
      }
    }
  }

  _onClose(sock, sockError) {
    if (this._sock !== sock) {
      return;
    }
    this._sock = null;
    this._connected = false;
    const cause = sockError || this._lastError;
    const err = new ConnectionError(
      `connection to taskrouterd closed${cause ? `: ${cause.message}` : ''}; the outcome of calls in flight is unknown`,
      'ECLOSED',
      cause || undefined
    );
    const pending = [...this._pending.values()];
    this._pending.clear();
    this._subById.clear();
    for (const p of pending) {
      this._settle(p, err, undefined);
    }
    for (const sub of this._subs) {
      sub._onDisconnect();
    }
    const willReconnect = this.reconnect && !this._closed;
    this.emit('disconnected', { error: cause || null, willReconnect });
    if (willReconnect) {
      this._schedule(cause);
    }
  }

  _onPayload(sock, payload) {
    let msg;
    try {
      msg = JSON.parse(payload.toString('utf8'));
    } catch (e) {
      sock.destroy(new ConnectionError(`taskrouterd sent a payload that is not JSON: ${e.message}`, 'EPROTO', e));
      return;
    }
    if (!msg || typeof msg !== 'object') {
      return;
    }
    if (typeof msg.method === 'string') {
      if (msg.method === 'event' && msg.id === undefined && msg.params) {
        const sub = this._subById.get(msg.params.subscription);
        if (sub) {
          this._guard(() => sub._onEvent(msg.params));
        }
      }
      return;
    }
    if (msg.id === null || msg.id === undefined) {
      // An error about the connection itself (overloaded at accept, a framing error): the
      // daemon closes next; keep it to say why.
      if (msg.error) {
        this._lastError = fromResponse(msg.error);
      }
      return;
    }
    const p = this._pending.get(msg.id);
    if (!p) {
      return; // timed out or aborted already
    }
    this._pending.delete(msg.id);
    if (msg.error) {
      this._settle(p, fromResponse(msg.error, p.method), undefined);
    } else {
      this._settle(p, null, msg.result);
    }
  }

  // A listener that throws must not leave the reader half-way through a chunk: the error is
  // thrown again on its own tick, where Node reports it as uncaught, as it would anyway.
  _guard(fn) {
    try {
      fn();
    } catch (e) {
      process.nextTick(() => {
        throw e;
      });
    }
  }

  _request(method, params, { timeout, signal, onReply } = {}) {
    if (!this._connected || !this._sock) {
      return Promise.reject(new ConnectionError(`not connected to taskrouterd at ${this.socketPath}`, 'ENOTCONN'));
    }
    const id = this._nextId++;
    const msg = { jsonrpc: '2.0', id, method };
    if (params !== undefined) {
      msg.params = params;
    }
    let frame;
    try {
      frame = encodeFrame(msg, this.maxFrame);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const p = { id, method, resolve, reject, onReply, timer: null, signal, onAbort: null };
      if (signal) {
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        p.onAbort = () => {
          this._pending.delete(id);
          this._settle(p, signal.reason, undefined);
        };
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      const t = finiteTimeout(timeout === undefined ? this.timeout : timeout);
      if (t) {
        p.timer = setTimeout(() => {
          this._pending.delete(id);
          this._settle(p, new CallTimeoutError(method, t), undefined);
        }, t);
      }
      this._pending.set(id, p);
      this._sock.write(frame);
    });
  }

  _settle(p, err, result) {
    clearTimeout(p.timer);
    if (p.onAbort) {
      p.signal.removeEventListener('abort', p.onAbort);
    }
    if (p.onReply) {
      // Synchronous, before the next frame is read: a subscription learns its id before
      // the events that follow the reply.
      this._guard(() => p.onReply(err, result));
    }
    if (err) {
      p.reject(err);
    } else {
      p.resolve(result);
    }
  }

  // ---- convenience methods, by the protocol's names ----

  _bind() {
    const call = (m, params, o) => this.call(m, params, o);
    this.task = {
      list: (options, o) => call('task.list', { ...options }, o),
      listAll: async (options = {}, o) => {
        const all = [];
        let after = options.after;
        for (;;) {
          const page = await call('task.list', { ...options, after }, o);
          all.push(...page.tasks);
          if (!page.next) {
            return all;
          }
          after = page.next;
        }
      },
      get: (sid, o) => call('task.get', { sid }, o),
      complete: (sid, reason = '', o) => call('task.complete', { sid, reason }, o),
      wrapUp: (sid, reason, o) => call('task.wrapUp', { sid, reason }, o),
      setAttributes: (sid, attributes, o) => call('task.setAttributes', { sid, attributes }, o),
      setVirtualStartTime: (sid, t, o) => call('task.setVirtualStartTime', { sid, time: time(t) }, o),
      fetchLatestVersion: (sid, o) => call('task.fetchLatestVersion', { sid }, o),
      hold: (sid, targetWorkerSid, onHold, options, o) =>
        call('task.hold', { sid, targetWorkerSid, onHold, ...options }, o),
      kick: (sid, workerSid, o) => call('task.kick', { sid, workerSid }, o),
      updateParticipant: (sid, options, o) => call('task.updateParticipant', { sid, ...options }, o),
      transfer: (sid, to, options, o) => call('task.transfer', { sid, to, ...options }, o),
      cancelTransfer: (sid, o) => call('task.cancelTransfer', { sid }, o),
    };
    const sidOnly = (m) => (sid, o) => call(m, { sid }, o);
    this.reservation = {
      list: (options, o) => call('reservation.list', { ...options }, o),
      get: sidOnly('reservation.get'),
      accept: sidOnly('reservation.accept'),
      reject: (sid, options, o) => call('reservation.reject', { sid, ...options }, o),
      wrap: sidOnly('reservation.wrap'),
      complete: sidOnly('reservation.complete'),
      call: (sid, from, url, options, o) => call('reservation.call', { sid, from, url, ...options }, o),
      dequeue: (sid, options, o) => call('reservation.dequeue', { sid, ...options }, o),
      redirect: (sid, callSid, url, options, o) => call('reservation.redirect', { sid, callSid, url, ...options }, o),
      conference: (sid, options, o) => call('reservation.conference', { sid, ...options }, o),
      updateParticipant: (sid, options, o) => call('reservation.updateParticipant', { sid, ...options }, o),
      fetchLatestVersion: sidOnly('reservation.fetchLatestVersion'),
    };
    this.worker = {
      get: (o) => call('worker.get', {}, o),
      setAttributes: (attributes, o) => call('worker.setAttributes', { attributes }, o),
      fetchLatestVersion: (o) => call('worker.fetchLatestVersion', {}, o),
      setActivity: (activity, options, o) => call('worker.setActivity', { activity, ...options }, o),
      createTask: (params, o) =>
        call('worker.createTask', { ...params, virtualStartTime: time(params && params.virtualStartTime) }, o),
    };
    this.activity = { list: (o) => call('activity.list', {}, o) };
    this.channel = { list: (o) => call('channel.list', {}, o) };
    this.daemon = {
      status: (o) => call('daemon.status', {}, o),
      updateToken: (token, options, o) => call('daemon.updateToken', { token, ...options }, o),
    };
    this.rpc = { describe: (o) => call('rpc.describe', {}, o) };
  }
}

// Connects (see Client for the options) and resolves with the connected client.
async function connect(opts = {}) {
  const client = new Client(opts);
  await client.connect({ wait: !!opts.wait });
  return client;
}

module.exports = { Client, connect, defaultSocketPath };
