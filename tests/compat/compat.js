// compat.js — drive the official twilio-taskrouter SDK (2.1.1) against taskrouter-sim and
// check, through /sim/state, that every Task method had its effect. Prints TAP.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const { Worker } = require(path.join(__dirname, 'node_modules', 'twilio-taskrouter'));

const simBin = process.argv[2];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trsim-compat-'));
let n = 0, failed = 0, sim, port, worker;

function ok(cond, name, extra) {
  n++;
  if (cond) {
    console.log(`ok ${n} - ${name}`);
  } else {
    failed++;
    console.log(`not ok ${n} - ${name}`);
    if (extra !== undefined) console.log(`# ${JSON.stringify(extra)}`);
  }
}

function req(method, p, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const r = http.request({ host: '127.0.0.1', port, path: p, method,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } },
    (res) => {
      let buf = '';
      res.on('data', (c) => { buf += c; });
      res.on('end', () => {
        let j = null;
        try { j = JSON.parse(buf); } catch (e) { /* not JSON */ }
        resolve({ status: res.statusCode, body: j });
      });
    });
    r.on('error', reject);
    r.end(data);
  });
}

async function state() { return (await req('GET', '/sim/state')).body; }
async function simTask(sid) { return (await state()).tasks.find((t) => t.sid === sid); }
async function simConf(sid) { return (await state()).conferences.find((c) => c.task_sid === sid); }

function waitEvent(emitter, name, ms = 10000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timeout waiting for ${name}`)), ms);
    emitter.once(name, (...a) => { clearTimeout(t); resolve(a); });
  });
}

function startSim() {
  return new Promise((resolve, reject) => {
    sim = spawn(simBin, ['--listen', '127.0.0.1:0', '--token-dir', tmp, '--heartbeat-ms', '2000'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    const t = setTimeout(() => reject(new Error('simulator did not start')), 20000);
    let line = '';
    sim.stdout.on('data', (d) => {
      line += d;
      const m = /listening on [^:]+:(\d+)/.exec(line);
      if (m) { clearTimeout(t); port = Number(m[1]); resolve(); }
    });
    sim.on('exit', (code) => reject(new Error(`simulator exited (${code})`)));
  });
}

async function main() {
  await startSim();
  const st0 = await state();
  const alice = st0.workers.find((w) => w.name === 'alice');
  const bob = st0.workers.find((w) => w.name === 'bob');
  const token = fs.readFileSync(path.join(tmp, 'alice.token'), 'utf8').trim();
  const base = `127.0.0.1:${port}/v1/wschannels`;
  worker = new Worker(token, { ebServer: `http://${base}`, wsServer: `ws://${base}`, logLevel: 'error' });
  worker.on('error', (e) => console.log(`# worker error: ${e.message}`));

  await waitEvent(worker, 'ready', 20000);
  ok(worker.sid === alice.sid, 'SDK reaches ready with the worker SID from init');
  ok(worker.activity && worker.activity.name === 'Available', 'current activity is Available');
  ok(worker.channels.size === 2, 'two worker channels fetched');

  // a task created through the control API arrives as reservationCreated
  const created = req('POST', '/sim/tasks',
    { worker: 'alice', channel: 'voice', attributes: { customer: '+15005550006', lang: 'fr' } });
  const [res] = await waitEvent(worker, 'reservationCreated');
  const ids = (await created).body;
  const task = res.task;
  ok(res.sid === ids.reservation && task.sid === ids.task, 'reservationCreated for the new task', ids);
  ok(res.status === 'pending' && task.status === 'reserved', 'reservation pending, task reserved');
  ok(task.attributes.lang === 'fr' && task.taskChannelUniqueName === 'voice' &&
     task.queueSid === st0.queue.sid && task.workflowSid === st0.workflow.sid &&
     typeof task.age === 'number' && task.dateCreated instanceof Date,
  'Task fields are right', { attributes: task.attributes, channel: task.taskChannelUniqueName });

  const acc = waitEvent(res, 'accepted');
  ok((await req('POST', `/sim/reservations/${res.sid}/accept`)).status === 200, 'control accept');
  await acc;
  ok(task.status === 'assigned', 'task assigned after accept');

  // setAttributes -> updated
  let upd = waitEvent(task, 'updated');
  await task.setAttributes({ customer: '+15005550006', lang: 'de' });
  await upd;
  ok(JSON.parse((await simTask(task.sid)).attributes).lang === 'de', 'setAttributes: simulator has the new attributes; updated fired');

  // setVirtualStartTime
  const vst = new Date(Date.now() - 3600 * 1000);
  await task.setVirtualStartTime(vst);
  ok((await simTask(task.sid)).virtual_start_time === Math.floor(vst.getTime() / 1000), 'setVirtualStartTime');
  let threw = false;
  try { await task.setVirtualStartTime(new Date(Date.now() + 3600 * 1000)); } catch (e) { threw = /future/.test(e.message); }
  ok(threw, 'a future virtual start time is refused with "future"');

  // fetchLatestVersion
  await req('POST', `/sim/tasks/${task.sid}/update`, { attributes: { lang: 'it' } });
  const t2 = await task.fetchLatestVersion();
  ok(t2.attributes.lang === 'it' && t2.version === String((await simTask(task.sid)).version), 'fetchLatestVersion');

  // conference: customer hold, worker hold
  await task.updateParticipant({ hold: true });
  ok((await simConf(task.sid)).customer_hold === true, 'updateParticipant holds the customer');
  await task.updateParticipant({ hold: false });
  await task.hold(alice.sid, true);
  ok((await simConf(task.sid)).workers.find((w) => w.worker_sid === alice.sid).hold === true, 'hold puts the worker on hold');
  await task.hold(alice.sid, false);
  threw = false;
  try { await task.hold(bob.sid, true); } catch (e) { threw = true; }
  ok(threw, 'hold of a worker who is not in the conference is refused');

  // transfer + outgoing transfer cancel
  const ti = waitEvent(task, 'transferInitiated');
  await task.transfer(bob.sid, { mode: 'WARM' });
  const [ot] = await ti;
  let s = await state();
  let x = s.transfers.find((t) => t.sid === ot.sid);
  ok(x && x.transfer_status === 'initiated' && x.transfer_to === bob.sid, 'transfer: transferInitiated fired, simulator has it initiated');
  await task.transfers.outgoing.cancel();
  s = await state();
  x = s.transfers.find((t) => t.sid === ot.sid);
  ok(x.transfer_status === 'canceled' && s.tasks.find((t) => t.sid === task.sid).assignment_status === 'assigned',
    'outgoing transfer cancel: simulator shows it canceled, task back to assigned');

  // kick
  await task.kick(alice.sid);
  ok(!(await simConf(task.sid)).workers.some((w) => w.worker_sid === alice.sid), 'kick removes the worker from the conference');

  // updated from outside
  upd = waitEvent(task, 'updated');
  await req('POST', `/sim/tasks/${task.sid}/update`, { attributes: { lang: 'es' } });
  await upd;
  ok(task.attributes.lang === 'es', 'task.updated from outside updates the Task');

  // wrapUp, complete
  const wu = waitEvent(task, 'wrapup');
  await task.wrapUp();
  await wu;
  ok((await simTask(task.sid)).assignment_status === 'wrapping', 'wrapUp: simulator shows wrapping; wrapup fired');
  const co = waitEvent(task, 'completed');
  await task.complete('resolved');
  await co;
  const done = await simTask(task.sid);
  ok(done.assignment_status === 'completed' && done.reason === 'resolved', 'complete: simulator shows completed; completed fired');

  // canceled
  const c2 = req('POST', '/sim/tasks', { worker: 'alice', channel: 'chat', attributes: {} });
  const [res2] = await waitEvent(worker, 'reservationCreated');
  await c2;
  const ca = waitEvent(res2.task, 'canceled');
  await req('POST', `/sim/tasks/${res2.task.sid}/cancel`, { reason: 'caller hung up' });
  await ca;
  ok(res2.task.status === 'canceled' && res2.task.reason === 'caller hung up', 'canceled fired with the reason');

  // every REST call carried the SDK's clientVersion
  const rq = (await req('GET', '/sim/requests')).body.requests;
  ok(rq.length > 10 && rq.every((r) => r.clientVersion === '2.1.1' && r.token === '[redacted]'), 'REST calls logged with clientVersion 2.1.1, token redacted');
}

function finish(code) {
  try { if (worker) worker.disconnect(); } catch (e) { /* already down */ }
  console.log(`1..${n}`);
  if (sim && sim.exitCode === null) {
    sim.removeAllListeners('exit');
    sim.on('exit', (c) => {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (c !== 0) console.log(`# simulator exit status ${c}`);
      process.exit(code || (c !== 0 ? 1 : 0));
    });
    sim.kill('SIGTERM');
    setTimeout(() => process.exit(1), 10000).unref();
  } else {
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(code);
  }
}

const deadline = setTimeout(() => { console.log('# overall timeout'); failed++; finish(1); }, 120000);
main().then(() => { clearTimeout(deadline); finish(failed ? 1 : 0); },
  (e) => { clearTimeout(deadline); n++; console.log(`not ok ${n} - ${e && e.stack ? e.stack.split('\n')[0] : e}`); finish(1); });
