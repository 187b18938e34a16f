'use strict';
// Test harness: taskrouter-sim and taskrouterd on loopback in a temporary directory (the
// binaries from $TR_SIM and $TR_DAEMON, which meson sets), the simulator's control API, and
// waiting for events or conditions with a deadline (never a sleep).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { once } = require('node:events');

// Generous: the CI machine may be very busy.
const DEADLINE_MS = Number(process.env.TR_TEST_DEADLINE_MS) || 30000;

function deadline(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    // A deadline nobody waits for any more must not hold the process.
    timer.unref();
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// The next `name` emitted by `emitter` whose first argument passes `pred`; resolves with the
// arguments' first (or all of them with {all: true}).
function waitFor(emitter, name, pred = () => true, { ms = DEADLINE_MS, all = false } = {}) {
  let listener;
  const p = new Promise((resolve) => {
    listener = (...args) => {
      if (pred(...args)) {
        emitter.removeListener(name, listener);
        resolve(all ? args : args[0]);
      }
    };
    emitter.on(name, listener);
  });
  return deadline(p, ms, `'${name}'`).finally(() => emitter.removeListener(name, listener));
}

// Records what an emitter emits under some names, in order, from now on; wait() finds an
// entry already recorded or waits for the next one that matches, with a deadline.
class Recorder {
  constructor(emitter, names) {
    this.log = [];
    this.waiters = new Set();
    for (const name of names) {
      emitter.on(name, (...args) => {
        const entry = { name, args, arg: args[0], index: this.log.length };
        this.log.push(entry);
        for (const w of [...this.waiters]) {
          if (w.name === name && w.pred(entry.arg, entry)) {
            this.waiters.delete(w);
            w.resolve(entry);
          }
        }
      });
    }
  }

  find(name, pred = () => true, from = 0) {
    return this.log.slice(from).find((e) => e.name === name && pred(e.arg, e));
  }

  all(name, pred = () => true) {
    return this.log.filter((e) => e.name === name && pred(e.arg, e));
  }

  // Resolves with the entry ({name, args, arg, index}).
  wait(name, pred = () => true, { from = 0, ms = DEADLINE_MS } = {}) {
    const found = this.find(name, pred, from);
    if (found) {
      return Promise.resolve(found);
    }
    let w;
    const p = new Promise((resolve) => {
      w = { name, pred: (a, e) => e.index >= from && pred(a, e), resolve };
      this.waiters.add(w);
    });
    return deadline(p, ms, `'${name}'`).finally(() => this.waiters.delete(w));
  }
}

class Env {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'trnode-'));
    this.tokenDir = path.join(this.dir, 'tokens');
    fs.mkdirSync(this.tokenDir, { mode: 0o700 });
    this.socket = path.join(this.dir, 'run', 'socket');
    this.sim = null;
    this.daemon = null;
    this.port = 0;
    this.daemonArgs = [];
    this._exitHook = () => this._killAll();
    process.on('exit', this._exitHook);
  }

  static async start({ daemonArgs = [] } = {}) {
    const env = new Env();
    env.daemonArgs = daemonArgs;
    await env.startSim();
    await env.startDaemon();
    return env;
  }

  get api() {
    return `http://127.0.0.1:${this.port}`;
  }

  _log(name) {
    return fs.openSync(path.join(this.dir, name), 'a');
  }

  async startSim() {
    const bin = process.env.TR_SIM;
    if (!bin) {
      throw new Error('TR_SIM is not set (meson sets it)');
    }
    const err = this._log('sim.log');
    const child = spawn(bin, ['--listen', '127.0.0.1:0', '--token-dir', this.tokenDir, '--verbose'], {
      stdio: ['ignore', 'pipe', err],
    });
    fs.closeSync(err);
    this.sim = child;
    // Its first line on stdout names the port; the pipe stays open afterwards, so that a
    // stray write cannot kill it with SIGPIPE.
    let out = '';
    const line = new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) {
          resolve(out.split('\n')[0]);
        }
      });
      child.once('exit', (code) => reject(new Error(`taskrouter-sim exited (${code}) before listening; see ${this.dir}/sim.log`)));
    });
    const first = await deadline(line, DEADLINE_MS, 'taskrouter-sim to listen');
    const m = /listening on .*:(\d+)\s*$/.exec(first);
    if (!m) {
      throw new Error(`unexpected first line from taskrouter-sim: ${first}`);
    }
    this.port = Number(m[1]);
  }

  // Starts taskrouterd as alice and resolves once its socket answers (not necessarily ready
  // upstream: see waitReady).
  async startDaemon(extra = []) {
    const bin = process.env.TR_DAEMON;
    if (!bin) {
      throw new Error('TR_DAEMON is not set (meson sets it)');
    }
    const env = { ...process.env };
    delete env.NOTIFY_SOCKET;
    delete env.TASKROUTERD_SOCKET;
    const log = this._log('daemon.log');
    const args = [
      '--websocket-url', `ws://127.0.0.1:${this.port}/v1/wschannels`,
      '--eventbridge-url', `http://127.0.0.1:${this.port}/v1/wschannels`,
      '--token-file', path.join(this.tokenDir, 'alice.token'),
      '--socket', this.socket,
      '--log-level', 'debug',
      ...this.daemonArgs,
      ...extra,
    ];
    const child = spawn(bin, args, { stdio: ['ignore', log, log], env });
    fs.closeSync(log);
    this.daemon = child;
    this.daemonExited = once(child, 'exit');
  }

  async stopDaemon() {
    const child = this.daemon;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      return;
    }
    child.kill('SIGTERM');
    try {
      await deadline(this.daemonExited, DEADLINE_MS, 'taskrouterd to exit');
    } catch (e) {
      child.kill('SIGKILL');
      await this.daemonExited;
      throw e;
    }
    const [code, signal] = await this.daemonExited;
    if (code !== 0) {
      throw new Error(`taskrouterd exited with ${code === null ? signal : code}; see ${this.dir}/daemon.log`);
    }
  }

  // The simulator's control API: resolves with the JSON answer, throws on a non-2xx.
  async simCall(method, p, body) {
    const res = await fetch(this.api + p, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) {
      throw new Error(`${method} ${p}: ${res.status} ${text}`);
    }
    return text ? JSON.parse(text) : null;
  }

  simPost(p, body = {}) {
    return this.simCall('POST', p, body);
  }

  // {task, reservation} of a new task routed to alice.
  newTask(attributes = { type: 'support' }, extra = {}) {
    return this.simPost('/sim/tasks', { worker: 'alice', channel: 'voice', attributes, ...extra });
  }

  // Ends a live task, whatever its status (the simulator's delete).
  endTask(sid) {
    return this.simPost(`/sim/tasks/${sid}/delete`);
  }

  tail(name, lines = 40) {
    try {
      return fs.readFileSync(path.join(this.dir, name), 'utf8').split('\n').slice(-lines).join('\n');
    } catch (e) {
      return `(${name}: ${e.message})`;
    }
  }

  _killAll() {
    for (const c of [this.daemon, this.sim]) {
      if (c && c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
      }
    }
  }

  async stop({ keep = false } = {}) {
    let err = null;
    try {
      await this.stopDaemon();
    } catch (e) {
      err = e;
    }
    if (this.sim && this.sim.exitCode === null && this.sim.signalCode === null) {
      const exited = once(this.sim, 'exit');
      this.sim.kill('SIGTERM');
      await deadline(exited, DEADLINE_MS, 'taskrouter-sim to exit').catch((e) => {
        this.sim.kill('SIGKILL');
        err = err || e;
      });
    }
    if (this.sim) {
      this.sim.stdout.destroy();
    }
    process.removeListener('exit', this._exitHook);
    if (!keep && !err) {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
    if (err) {
      throw err;
    }
  }
}

// Resolves with fn()'s first truthy answer, asking again every `every` ms until the deadline:
// for a condition no event announces.
async function until(fn, what, { ms = DEADLINE_MS, every = 10 } = {}) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) {
      return v;
    }
    if (Date.now() > end) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

// Resolves once the daemon's upstream session is ready: a subscription to `ready`, then
// daemon.status (so that a `ready` before the subscription is not missed).
async function waitReady(client, ms = DEADLINE_MS) {
  const sub = await client.subscribe({ events: ['ready'] });
  try {
    const ready = waitFor(sub, 'ready', () => true, { ms });
    ready.catch(() => {});
    const st = await client.daemon.status();
    if (st.state !== 'ready') {
      await ready;
    }
  } finally {
    await sub.close();
  }
}

module.exports = { Env, Recorder, waitFor, waitReady, until, deadline, DEADLINE_MS };
