'use strict';
// taskrouter-client without the daemon: framing, socket discovery, the error classes, and the
// connection and subscription logic against a scripted server on a Unix socket.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const tr = require('..');
const { Recorder } = require('./harness');

let dir;
before(() => {
  dir = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'trnode-unit-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

// A scripted daemon: handler(msg, conn) answers requests; conn.send(obj) writes a frame.
let nserv = 0;
async function fakeServer(handler) {
  const sockPath = path.join(dir, `s${nserv++}`);
  const conns = [];
  const requests = [];
  const server = net.createServer((s) => {
    const dec = new tr.FrameDecoder();
    const conn = {
      s,
      send: (obj) => s.write(tr.encodeFrame(obj)),
      reply: (msg, result) => conn.send({ jsonrpc: '2.0', id: msg.id, result }),
      error: (msg, code, message, data) => conn.send({ jsonrpc: '2.0', id: msg.id, error: { code, message, data } }),
    };
    conns.push(conn);
    s.on('data', (d) => {
      for (const p of dec.push(d)) {
        const msg = JSON.parse(p.toString());
        requests.push(msg);
        handler(msg, conn);
      }
    });
    s.on('error', () => {});
  });
  await new Promise((r) => server.listen(sockPath, r));
  return {
    path: sockPath,
    conns,
    requests,
    close: () => {
      for (const c of conns) {
        c.s.destroy();
      }
      return new Promise((r) => server.close(r));
    },
  };
}

test('frames: the example of PROTOCOL.md §2, split and joined reads, bad lengths', () => {
  const f = tr.encodeFrame({ jsonrpc: '2.0', id: 1, method: 'daemon.status' });
  assert.deepEqual([...f.subarray(0, 4)], [0, 0, 0, 0x31]);
  assert.equal(f.length, 4 + 49);

  const dec = new tr.FrameDecoder();
  const two = Buffer.concat([f, tr.encodeFrame({ a: 'é' })]);
  const out = [];
  for (const b of two) {
    out.push(...dec.push(Buffer.from([b])));
  }
  assert.deepEqual(out.map((p) => JSON.parse(p.toString())), [{ jsonrpc: '2.0', id: 1, method: 'daemon.status' }, { a: 'é' }]);
  assert.equal(new tr.FrameDecoder().push(two).length, 2);

  for (const len of [0, 1, 1048577, 0xffffffff]) {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(len);
    assert.throws(() => new tr.FrameDecoder().push(h), { name: 'FrameError' });
  }
  assert.throws(() => tr.encodeFrame({ s: 'x'.repeat(1048576) }), RangeError);
});

test('socket discovery: $TASKROUTERD_SOCKET, then $XDG_RUNTIME_DIR, then /run', () => {
  assert.equal(tr.defaultSocketPath({ TASKROUTERD_SOCKET: '/a/s', XDG_RUNTIME_DIR: '/x' }), '/a/s');
  assert.equal(tr.defaultSocketPath({ XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/taskrouterd/socket');
  assert.equal(tr.defaultSocketPath({ TASKROUTERD_SOCKET: '', XDG_RUNTIME_DIR: '' }), '/run/taskrouterd/socket');
});

test('errors: one class per code of PROTOCOL.md §4', () => {
  const table = {
    '-32700': 'ParseError', '-32600': 'InvalidRequestError', '-32601': 'MethodNotFoundError',
    '-32602': 'InvalidParamsError', '-32603': 'InternalError', '-32001': 'NotFoundError',
    '-32002': 'NotConnectedError', '-32003': 'UpstreamError', '-32004': 'VersionConflictError',
    '-32005': 'TimeoutError', '-32006': 'RateLimitedError', '-32007': 'TooManyRequestsError',
    '-32008': 'OverloadedError', '-32009': 'TokenExpiredError', '-32010': 'RefreshPendingError',
    '-32011': 'ReplayGoneError', '-32012': 'InvalidStateError', '-32013': 'NetworkError',
  };
  for (const [code, name] of Object.entries(table)) {
    const e = tr.fromResponse({ code: Number(code), message: 'm', data: { x: 1 } }, 'task.get');
    assert.ok(e instanceof tr[name] && e instanceof tr.RpcError && e instanceof tr.TaskRouterError, name);
    assert.equal(e.name, name);
    assert.equal(e.code, Number(code));
    assert.equal(tr[name].code, Number(code));
    assert.equal(e.message, 'm');
    assert.deepEqual(e.data, { x: 1 });
    assert.equal(e.method, 'task.get');
    assert.equal(typeof e.codeName, 'string');
  }
  const vc = tr.fromResponse({ code: -32004, message: 'c', data: { httpStatus: 412, currentVersion: '7' } });
  assert.equal(vc.currentVersion, '7');
  assert.equal(vc.httpStatus, 412);
  const reserved = tr.fromResponse({ code: -32050, message: 'new' });
  assert.equal(reserved.constructor, tr.RpcError);
  assert.equal(reserved.isReserved, true);
  assert.equal(tr.fromResponse({ code: -1, message: 'app' }).isReserved, false);
});

test('calls: answers matched by id in any order, per-call timeouts, the connection kept', async () => {
  let held = null;
  const srv = await fakeServer((msg, conn) => {
    if (msg.method === 'slow') {
      held = msg;
    } else if (msg.method === 'first') {
      held = msg;
    } else if (msg.method === 'second') {
      conn.reply(msg, 2);
      conn.reply(held, 1);
    } else if (msg.method === 'fail') {
      conn.error(msg, -32001, 'unknown task', { sid: 'WT1' });
    } else {
      conn.reply(msg, { echo: msg.params });
    }
  });
  const c = await tr.connect({ socket: srv.path });
  try {
    const first = c.call('first', {});
    const second = c.call('second', {});
    assert.deepEqual(await Promise.all([first, second]), [1, 2]);
    await assert.rejects(c.call('fail', {}), (e) => e instanceof tr.NotFoundError && e.data.sid === 'WT1');
    await assert.rejects(c.call('slow', {}, { timeout: 50 }), (e) => e instanceof tr.CallTimeoutError && e.method === 'slow');
    srv.conns[0].reply(held, 'late'); // dropped: nobody waits for it
    const ac = new AbortController();
    const aborted = c.call('slow', {}, { timeout: 0, signal: ac.signal });
    ac.abort(new Error('changed my mind'));
    await assert.rejects(aborted, /changed my mind/);
    assert.deepEqual(await c.task.wrapUp('WT1', undefined), { echo: { sid: 'WT1' } });
    assert.deepEqual(await c.reservation.reject('WR1', { activitySid: 'WA1' }), { echo: { sid: 'WR1', activitySid: 'WA1' } });
    const t = new Date('2024-01-02T03:04:05Z');
    assert.deepEqual(await c.task.setVirtualStartTime('WT1', t), { echo: { sid: 'WT1', time: t.toISOString() } });
  } finally {
    c.close();
    await srv.close();
  }
});

test('connection: closed with a call out, reconnected with backoff; framing errors close it', async () => {
  const srv = await fakeServer((msg, conn) => {
    if (msg.method === 'hang') {
      return;
    }
    if (msg.method === 'huge') {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(2 * 1048576);
      conn.s.write(h);
      return;
    }
    conn.reply(msg, 'ok');
  });
  const c = await tr.connect({ socket: srv.path, backoff: { min: 10, max: 50 } });
  const rec = new Recorder(c, ['connected', 'disconnected', 'reconnecting']);
  try {
    const out = c.call('hang', {});
    srv.conns[0].s.destroy();
    await assert.rejects(out, (e) => e instanceof tr.ConnectionError && e.code === 'ECLOSED');
    assert.equal((await rec.wait('disconnected')).arg.willReconnect, true);
    assert.equal((await rec.wait('connected')).arg.reconnected, true);
    assert.equal(await c.call('x', {}), 'ok');

    const from = rec.log.length;
    await assert.rejects(c.call('huge', {}), (e) => e instanceof tr.ConnectionError && e.code === 'ECLOSED' && e.cause.code === 'EPROTO');
    assert.equal((await rec.wait('disconnected', () => true, { from })).arg.error.code, 'EPROTO');
    await rec.wait('connected', () => true, { from });
  } finally {
    c.close();
    await srv.close();
  }
  assert.equal(rec.all('disconnected').at(-1).arg.willReconnect, false);
});

test('connect: a path that is not a socket, or nothing there', async () => {
  const file = path.join(dir, 'plain');
  fs.writeFileSync(file, '');
  await assert.rejects(tr.connect({ socket: file }), (e) => e instanceof tr.ConnectionError && e.code === 'ENOTSOCK');
  await assert.rejects(tr.connect({ socket: path.join(dir, 'none') }), (e) => e.code === 'ENOENT');
  // {wait: true} keeps trying until the daemon is there.
  const later = path.join(dir, 'later');
  const c = new tr.Client({ socket: later, backoff: { min: 10, max: 20 } });
  const rec = new Recorder(c, ['reconnecting']);
  const p = c.connect({ wait: true });
  await rec.wait('reconnecting');
  const server = net.createServer(() => {});
  await new Promise((r) => server.listen(later, r));
  await p;
  assert.equal(c.connected, true);
  c.close();
  await new Promise((r) => server.close(r));
});

test('subscription: listeners added after the await miss nothing; a gap on resume, then a fresh snapshot', async () => {
  let epoch = 'E1';
  let sub = 0;
  const srv = await fakeServer((msg, conn) => {
    if (msg.method !== 'events.subscribe') {
      conn.reply(msg, null);
      return;
    }
    const p = msg.params || {};
    if (p.since !== undefined && p.epoch !== epoch) {
      conn.error(msg, -32011, 'replay gone', { reason: 'epoch', epoch, oldestSeq: 1, currentSeq: 0 });
      return;
    }
    const id = `s${++sub}`;
    conn.reply(msg, { subscription: id, epoch, seq: 5, tasks: [{ sid: `WT-${epoch}` }], next: null });
    // An event right behind the reply, in the same write as far as the client can tell.
    conn.send({ jsonrpc: '2.0', method: 'event', params: { subscription: id, epoch, seq: 6, event: 'updated', taskSid: 'WT1' } });
  });
  const c = await tr.connect({ socket: srv.path, backoff: { min: 10, max: 50 } });
  try {
    const s = await c.subscribe({ events: ['updated'] });
    const rec = new Recorder(s, ['snapshot', 'event', 'updated', 'gap', 'resumed']);
    await rec.wait('updated');
    assert.deepEqual(rec.log.map((e) => e.name), ['snapshot', 'event', 'updated']);
    assert.deepEqual(s.position, { since: 7, epoch: 'E1' });

    epoch = 'E2'; // as if the daemon restarted
    const from = rec.log.length;
    srv.conns[0].s.destroy();
    await rec.wait('updated', (ev) => ev.epoch === 'E2', { from });
    assert.deepEqual(rec.log.slice(from).map((e) => e.name), ['gap', 'snapshot', 'event', 'updated']);
    const gap = rec.log[from].arg;
    assert.equal(gap.reason, 'epoch');
    assert.equal(gap.previousEpoch, 'E1');
    assert.equal(gap.epoch, 'E2');
    assert.equal(gap.since, 7);
    assert.deepEqual(rec.log[from + 1].arg, [{ sid: 'WT-E2' }]);
    const resume = srv.requests.filter((m) => m.method === 'events.subscribe')[1];
    assert.deepEqual(resume.params, { events: ['updated'], since: 7, epoch: 'E1' });
  } finally {
    c.close();
    await srv.close();
  }
});

test('subscription: a snapshot of several pages comes whole, before the events it holds back', async () => {
  const srv = await fakeServer((msg, conn) => {
    if (msg.method === 'events.subscribe') {
      conn.reply(msg, { subscription: 's1', epoch: 'E', seq: 1, tasks: [{ sid: 'WT1' }], next: 'WT1' });
      conn.send({ jsonrpc: '2.0', method: 'event', params: { subscription: 's1', epoch: 'E', seq: 2, event: 'updated', taskSid: 'WT2' } });
    } else if (msg.method === 'task.list') {
      const last = msg.params.after === 'WT2';
      conn.reply(msg, { tasks: last ? [{ sid: 'WT3' }] : [{ sid: 'WT2' }], next: last ? null : 'WT2' });
    }
  });
  const c = await tr.connect({ socket: srv.path });
  try {
    const s = await c.subscribe();
    assert.deepEqual(s.snapshot.map((t) => t.sid), ['WT1', 'WT2', 'WT3']);
    const rec = new Recorder(s, ['snapshot', 'event']);
    await rec.wait('event');
    assert.deepEqual(rec.log.map((e) => e.name), ['snapshot', 'event']);
  } finally {
    c.close();
    await srv.close();
  }
});

test("README: its examples are the files in examples/, and they parse", async () => {
  const { execFileSync } = require('node:child_process');
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  for (const f of ['print-new-tasks.js', 'electron-main.js']) {
    const file = path.join(__dirname, '..', 'examples', f);
    assert.ok(readme.includes('```js\n' + fs.readFileSync(file, 'utf8') + '```'), `${f} is in README.md as it is`);
    execFileSync(process.execPath, ['--check', file]);
  }
});
