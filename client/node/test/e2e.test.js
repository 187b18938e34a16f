'use strict';
// taskrouter-client against the real taskrouterd on taskrouter-sim (suite 'e2e'): calls,
// a Worker call, errors, subscribe, resume after a lost connection (no gap) and after a
// daemon restart (a gap, reported, then a fresh snapshot). Nothing sleeps: every wait is for
// an event or a condition, with a deadline.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const tr = require('..');
const { Env, Recorder, waitReady, until, deadline } = require('./harness');

const skip = !process.env.TR_SIM || !process.env.TR_DAEMON ? 'TR_SIM and TR_DAEMON are not set (run it with meson test)' : false;
const EVENTS = ['event', 'snapshot', 'gap', 'resumed', 'resumeError'];

let env;
let client;
let failed = false;

// A test that, when it fails, prints the end of the daemon's and the simulator's logs.
function e2e(name, fn) {
  test(name, { skip, timeout: 180000 }, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      failed = true;
      for (const log of ['daemon.log', 'sim.log']) {
        t.diagnostic(`--- ${log} (end) ---`);
        for (const line of env.tail(log, 30).split('\n')) {
          t.diagnostic(line);
        }
      }
      throw e;
    }
  });
}

// A subscription and a recorder of everything it emits.
async function watch(options = {}) {
  const sub = await client.subscribe(options);
  const rec = new Recorder(sub, EVENTS);
  return { sub, rec };
}

// A task routed to alice, its reservationCreated seen on rec; accepted (through the
// simulator, on the worker's behalf) when accept is true.
async function newTask(rec, { accept = false, attributes } = {}) {
  const { task, reservation } = await env.newTask(attributes);
  await rec.wait('event', (ev) => ev.event === 'reservationCreated' && ev.taskSid === task);
  if (accept) {
    await env.simPost(`/sim/reservations/${reservation}/accept`);
    await rec.wait('event', (ev) => ev.event === 'reservationAccepted' && ev.taskSid === task);
  }
  return { task, reservation };
}

async function rejectsWith(promise, Class, check = () => {}) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof Class, `expected ${Class.name}, got ${e && e.name}: ${e && e.message}`);
    check(e);
    return true;
  });
}

before(async () => {
  if (skip) {
    return;
  }
  // The daemon gives up on TaskRouter after 5 s: the -32005 test holds a call back longer.
  env = await Env.start({ daemonArgs: ['--rest-timeout-ms', '5000'] });
  client = await tr.connect({ socket: env.socket, wait: true, backoff: { min: 20, max: 400 } });
  await waitReady(client);
});

after(async () => {
  if (skip) {
    return;
  }
  if (client) {
    client.close();
  }
  if (env) {
    await env.stop({ keep: failed });
  }
});

e2e('connect: socket discovery ($TASKROUTERD_SOCKET), daemon.status, rpc.describe', async () => {
  const saved = process.env.TASKROUTERD_SOCKET;
  process.env.TASKROUTERD_SOCKET = env.socket;
  let c;
  try {
    c = await tr.connect();
  } finally {
    if (saved === undefined) {
      delete process.env.TASKROUTERD_SOCKET;
    } else {
      process.env.TASKROUTERD_SOCKET = saved;
    }
  }
  try {
    assert.equal(c.socketPath, env.socket);
    const st = await c.daemon.status();
    assert.equal(st.state, 'ready');
    assert.equal(typeof st.epoch, 'string');
    const d = await c.rpc.describe({ timeout: 5000 });
    const names = d.methods.map((m) => m.name);
    for (const m of ['task.complete', 'reservation.accept', 'worker.setActivity', 'events.subscribe']) {
      assert.ok(names.includes(m), m);
    }
  } finally {
    c.close();
  }
  assert.equal(c.connected, false);
  await rejectsWith(c.daemon.status(), tr.ConnectionError, (e) => assert.equal(e.code, 'ENOTCONN'));
});

e2e('calls: the Task methods on a task from the simulator', async () => {
  const { sub, rec } = await watch();
  try {
    const { task } = await newTask(rec, { accept: true, attributes: { case: 'A' } });

    const t = await client.task.get(task);
    assert.equal(t.sid, task);
    assert.equal(t.status, 'assigned');
    assert.deepEqual(t.attributes, { case: 'A' });
    const page = await client.task.list({ limit: 1000 });
    assert.ok(page.tasks.some((x) => x.sid === task));
    assert.ok((await client.task.listAll()).some((x) => x.sid === task));

    const from = rec.log.length;
    const upd = await client.task.setAttributes(task, { case: 'B', tags: ['x'] });
    assert.deepEqual(upd.attributes, { case: 'B', tags: ['x'] });
    const ev = await rec.wait('event', (e) => e.event === 'updated' && e.taskSid === task, { from });
    assert.deepEqual(ev.arg.task.attributes, { case: 'B', tags: ['x'] });

    const fetched = await client.task.fetchLatestVersion(task);
    assert.equal(fetched.version, upd.version);
    const vst = await client.task.setVirtualStartTime(task, new Date('2024-05-01T10:00:00Z'));
    assert.equal(vst.virtualStartTimeIso, '2024-05-01T10:00:00Z');

    const w = await client.task.wrapUp(task, 'call ended');
    assert.equal(w.status, 'wrapping');
    const done = await client.task.complete(task, 'resolved');
    assert.equal(done.status, 'completed');
    await rec.wait('event', (e) => e.event === 'completed' && e.taskSid === task);
  } finally {
    await sub.close();
  }
});

e2e('worker: accept a reservation created through the simulator, then the worker calls', async () => {
  const { sub, rec } = await watch({
    events: ['reservationCreated', 'reservationAccepted', 'reservationWrapup', 'reservationCompleted', 'activityUpdated'],
  });
  try {
    const { task, reservation } = await env.newTask({ type: 'sales' });
    const created = await rec.wait('event', (e) => e.event === 'reservationCreated' && e.taskSid === task);
    assert.equal(created.arg.reservationSid, reservation);
    assert.equal(created.arg.reservation.status, 'pending');

    assert.equal((await client.reservation.get(reservation)).status, 'pending');
    const pending = await client.reservation.list({ status: 'pending' });
    assert.ok(pending.reservations.some((r) => r.sid === reservation));

    const acc = await client.reservation.accept(reservation);
    assert.equal(acc.sid, reservation);
    assert.equal(acc.status, 'accepted');
    await rec.wait('event', (e) => e.event === 'reservationAccepted' && e.reservationSid === reservation);
    const state = await env.simCall('GET', '/sim/state');
    const simRes = state.reservations.find((r) => r.sid === reservation);
    assert.equal(simRes.reservation_status, 'accepted');

    // A task sid names the worker's live reservation for it.
    assert.equal((await client.reservation.fetchLatestVersion(task)).sid, reservation);

    const worker = await client.worker.get();
    assert.equal(worker.name, 'alice');
    const activities = (await client.activity.list()).activities.map((a) => a.name);
    assert.ok(activities.includes('Available') && activities.includes('Offline'), activities.join());
    const channels = (await client.channel.list()).channels.map((c) => c.taskChannelUniqueName);
    assert.ok(channels.includes('voice'), channels.join());
    const w2 = await client.worker.setAttributes({ skills: ['node'] });
    assert.deepEqual(w2.attributes, { skills: ['node'] });
    assert.equal((await client.worker.fetchLatestVersion()).version, w2.version);

    const off = await client.worker.setActivity('Offline');
    assert.equal(off.activityName, 'Offline');
    await rec.wait('event', (e) => e.event === 'activityUpdated' && e.worker.activityName === 'Offline');
    assert.equal((await client.worker.setActivity('Available')).activityName, 'Available');

    assert.equal((await client.reservation.wrap(reservation)).status, 'wrapping');
    assert.equal((await client.reservation.complete(reservation)).status, 'completed');
    await rec.wait('event', (e) => e.event === 'reservationCompleted' && e.reservationSid === reservation);
  } finally {
    await sub.close();
  }
});

e2e('errors: RpcError subclasses with code, message and data', async () => {
  const { sub, rec } = await watch();
  const tasks = [];
  try {
    const unknown = `WT${'0'.repeat(32)}`;
    await rejectsWith(client.task.get(unknown), tr.NotFoundError, (e) => {
      assert.equal(e.code, -32001);
      assert.ok(e instanceof tr.RpcError);
      assert.equal(e.data.sid, unknown);
      assert.equal(e.method, 'task.get');
    });
    await rejectsWith(client.call('task.get', {}), tr.InvalidParamsError, (e) => {
      assert.equal(e.code, -32602);
      assert.equal(e.param, 'sid');
    });
    await rejectsWith(client.call('no.such.method'), tr.MethodNotFoundError, (e) => assert.equal(e.code, -32601));
    await rejectsWith(client.subscribe({ events: ['task.created'] }), tr.InvalidParamsError, (e) => {
      assert.equal(e.data.param, 'events');
      assert.ok(e.data.values.includes('reservationCreated'));
    });

    // TaskRouter refuses to wrap a pending reservation: -32003 with its status and code.
    const a = await newTask(rec);
    tasks.push(a.task);
    await rejectsWith(client.reservation.wrap(a.reservation), tr.UpstreamError, (e) => {
      assert.equal(e.code, -32003);
      assert.equal(e.httpStatus, 400);
      assert.equal(typeof e.data.message, 'string');
    });
    await rejectsWith(client.reservation.reject(a.reservation, { bogus: 1 }), tr.InvalidParamsError, (e) =>
      assert.equal(e.param, 'bogus')
    );

    // Changed upstream behind the daemon's back: the write's If-Match is stale.
    const b = await newTask(rec, { accept: true });
    tasks.push(b.task);
    await env.simPost(`/sim/tasks/${b.task}/update`, { attributes: { behind: 'back' }, silent: true });
    await rejectsWith(client.task.setAttributes(b.task, { mine: 1 }), tr.VersionConflictError, (e) => {
      assert.equal(e.code, -32004);
      assert.equal(e.httpStatus, 412);
      assert.equal(typeof e.currentVersion, 'string');
    });

    // TaskRouter answers after the daemon's --rest-timeout-ms (5 s): -32005.
    await env.simPost('/sim/faults/rest', { count: 1, hang_ms: 9000, match: b.task });
    await rejectsWith(client.task.setAttributes(b.task, { late: 1 }, { timeout: 60000 }), tr.TimeoutError, (e) =>
      assert.equal(e.code, -32005)
    );

    // No answer from the daemon within the call's own timeout: CallTimeoutError.
    const c = await newTask(rec, { accept: true });
    tasks.push(c.task);
    await env.simPost('/sim/faults/rest', { count: 1, hang_ms: 3000, match: c.task });
    await rejectsWith(client.task.setAttributes(c.task, { slow: 1 }, { timeout: 200 }), tr.CallTimeoutError, (e) => {
      assert.equal(e.code, 'ETIMEDOUT');
      assert.equal(e.method, 'task.setAttributes');
    });

    // The upstream session is down: -32002 at once.
    await env.simPost('/sim/faults/refuse-ws', { refuse: true });
    const from = rec.log.length;
    await env.simPost('/sim/faults/drop', { close: true });
    await rec.wait('event', (e) => e.event === 'disconnected', { from });
    await rejectsWith(client.task.complete(c.task, 'x'), tr.NotConnectedError, (e) => assert.equal(e.code, -32002));
    await env.simPost('/sim/faults/refuse-ws', { refuse: false });
    await rec.wait('event', (e) => e.event === 'ready', { from });

    // No daemon at that path.
    await rejectsWith(tr.connect({ socket: `${env.dir}/nothing/here` }), tr.ConnectionError, (e) =>
      assert.equal(e.code, 'ENOENT')
    );
  } finally {
    await sub.close();
    for (const t of tasks) {
      await env.endTask(t);
    }
  }
});

e2e('subscribe: filters, per-name events, snapshot, explicit resume and gaps', async () => {
  const all = await watch();
  const subs = [all.sub];
  try {
    const one = await newTask(all.rec, { accept: true });
    const two = await newTask(all.rec, { accept: true });

    const { sub, rec } = await watch({ events: ['updated', 'completed'], tasks: [one.task] });
    subs.push(sub);
    const perName = new Recorder(sub, ['updated', 'completed', 'reservationCreated']);
    assert.deepEqual(sub.snapshot.map((t) => t.sid), [one.task]);
    const snap = await rec.wait('snapshot');
    assert.deepEqual(snap.arg.map((t) => t.sid), [one.task]);
    assert.equal(snap.args[1].epoch, sub.epoch);

    // An update of the other task is filtered out; it comes first, so by the time the
    // filtered task's update is here, the other one would have been too.
    await env.simPost(`/sim/tasks/${two.task}/update`, { attributes: { n: 2 } });
    await env.simPost(`/sim/tasks/${one.task}/update`, { attributes: { n: 1 } });
    const got = await perName.wait('updated', (e) => e.taskSid === one.task);
    assert.deepEqual(got.arg.task.attributes, { n: 1 });
    assert.ok(rec.all('event').every((e) => e.arg.taskSid === one.task && e.arg.event === 'updated'));
    assert.equal(rec.all('event', (e) => e.task.attributes.n === 1).length, 1);
    assert.equal(perName.all('reservationCreated').length, 0);

    // Resume from a position: what was published meanwhile is replayed, once, and no snapshot.
    const pos = sub.position;
    assert.deepEqual(pos, { since: got.arg.seq + 1, epoch: got.arg.epoch });
    await sub.close();
    const mark = all.rec.log.length;
    await env.simPost(`/sim/tasks/${one.task}/update`, { attributes: { n: 3 } });
    await env.simPost(`/sim/tasks/${one.task}/update`, { attributes: { n: 4 } });
    await all.rec.wait('event', (e) => e.event === 'updated' && e.task.attributes.n === 4, { from: mark });
    const again = await watch({ events: ['updated'], tasks: [one.task], ...pos });
    subs.push(again.sub);
    await again.rec.wait('event', (e) => e.task.attributes.n === 4);
    assert.deepEqual(again.rec.log.map((e) => e.name), ['resumed', 'event', 'event']);
    assert.deepEqual(again.rec.all('event').map((e) => e.arg.task.attributes.n), [3, 4]);
    assert.equal(again.rec.log[0].arg.since, pos.since);

    // Positions the daemon cannot replay: a gap with the daemon's reason, then a snapshot.
    const cases = [
      [{ since: 1, epoch: 'another-run' }, 'epoch'],
      [{ since: 1 }, 'no-epoch'],
      [{ since: pos.since + 1000000, epoch: pos.epoch }, 'future'],
    ];
    for (const [position, reason] of cases) {
      const g = await watch({ tasks: [one.task], ...position });
      subs.push(g.sub);
      const snapshot = await g.rec.wait('snapshot');
      assert.deepEqual(g.rec.log.slice(0, 2).map((e) => e.name), ['gap', 'snapshot']);
      const gap = g.rec.log[0].arg;
      assert.equal(gap.reason, reason);
      assert.equal(gap.epoch, all.sub.epoch);
      assert.equal(gap.since, position.since);
      assert.ok(gap.error instanceof tr.ReplayGoneError);
      assert.deepEqual(snapshot.arg.map((t) => t.sid), [one.task]);
    }
  } finally {
    for (const s of subs) {
      await s.close();
    }
  }
});

e2e('resume after a lost connection: replayed, nothing lost or repeated, no gap', async () => {
  const { sub, rec } = await watch();
  const conn = new Recorder(client, ['connected', 'disconnected']);
  try {
    const epoch = sub.epoch;
    client._sock.destroy(); // as if the connection broke
    const { task } = await env.newTask({ while: 'away' });
    await conn.wait('disconnected');
    const back = await conn.wait('connected');
    assert.equal(back.arg.reconnected, true);
    const resumed = await rec.wait('resumed');
    assert.equal(resumed.arg.epoch, epoch);
    await rec.wait('event', (e) => e.event === 'reservationCreated' && e.taskSid === task);
    assert.equal(rec.all('event', (e) => e.event === 'reservationCreated' && e.taskSid === task).length, 1);
    assert.equal(rec.all('gap').length, 0);
    assert.equal(rec.all('snapshot').length, 1); // the first one only
    const seqs = rec.all('event').map((e) => e.arg.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
    assert.equal(new Set(seqs).size, seqs.length);
    await env.endTask(task);
  } finally {
    await sub.close();
  }
});

e2e('resume across a daemon restart: the gap is reported, then the fresh snapshot', async () => {
  const { sub, rec } = await watch();
  const conn = new Recorder(client, ['connected', 'disconnected']);
  try {
    const kept = await newTask(rec, { accept: true, attributes: { kept: true } });
    const oldEpoch = sub.epoch;

    await env.stopDaemon();
    const down = await conn.wait('disconnected');
    assert.equal(down.arg.willReconnect, true);
    const { task: whileDown } = await env.newTask({ while: 'down' });
    await env.startDaemon();
    await conn.wait('connected');

    const gap = await rec.wait('gap');
    assert.equal(gap.arg.reason, 'epoch');
    assert.equal(gap.arg.previousEpoch, oldEpoch);
    assert.notEqual(gap.arg.epoch, oldEpoch);
    const snap = await rec.wait('snapshot', () => true, { from: gap.index });
    assert.equal(snap.index, gap.index + 1);
    assert.equal(snap.args[1].epoch, gap.arg.epoch);
    assert.equal(sub.epoch, gap.arg.epoch);

    // Both tasks are known again: from the snapshot, or from the resync's events after it.
    const known = (sid) => (t) => t.sid === sid;
    for (const sid of [kept.task, whileDown]) {
      if (!snap.arg.some(known(sid))) {
        await rec.wait('event', (e) => e.taskSid === sid && e.epoch === gap.arg.epoch, { from: snap.index });
      }
    }
    assert.equal((await client.daemon.status()).epoch, gap.arg.epoch);
    await waitReady(client);
    for (const sid of [kept.task, whileDown]) {
      await env.endTask(sid);
    }
  } finally {
    await sub.close();
  }
});

e2e("README's example: print-new-tasks.js prints a task routed to the worker", async () => {
  // require('taskrouter-client') resolves to this package, as after an install.
  const modules = path.join(env.dir, 'node_modules');
  fs.mkdirSync(modules, { recursive: true });
  fs.symlinkSync(path.resolve(__dirname, '..'), path.join(modules, 'taskrouter-client'));
  const before = (await client.daemon.status()).subscriptions;
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'print-new-tasks.js')], {
    env: { ...process.env, NODE_PATH: modules, TASKROUTERD_SOCKET: env.socket },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const lines = new Recorder(child.stdout, ['data']); // after the line above: sees `out` updated
  try {
    await until(async () => (await client.daemon.status()).subscriptions > before, 'the example to subscribe');
    const { task } = await env.newTask({ customer: '+15005550006' });
    await lines.wait('data', () => out.includes('\n') && out.includes(task));
    assert.match(out, new RegExp(`^${task} \\S+ \\{"customer":"\\+15005550006"\\}\n`));
    await env.endTask(task);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await deadline(exited, 10000, 'the example to exit');
  }
});
