// compat.js — drive the official twilio-taskrouter SDK (2.1.1) against taskrouter-sim and
// check, through /sim/state and /sim/requests, that every Task method (as alice) and every
// Reservation, Worker and Activity method (as bob, with enableVersionCheck) had its effect,
// sent the request of the spec, and that the SDK saw the expected events. Prints TAP.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const { Worker } = require(path.join(__dirname, 'node_modules', 'twilio-taskrouter'));

const simBin = process.argv[2];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trsim-compat-'));
let n = 0, failed = 0, sim, port, worker, bobWorker;

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
async function simWorker(name) { return (await state()).workers.find((w) => w.name === name); }
async function simRes(sid) { return (await state()).reservations.find((r) => r.sid === sid); }
// The last REST call the simulator received whose url ends with suffix.
async function lastReq(suffix) {
  const rq = (await req('GET', '/sim/requests')).body.requests;
  return rq.filter((r) => r.url.endsWith(suffix)).pop() || {};
}
// It has the route, apiVersion, params (same members in the same order) and If-Match given.
function sent(r, apiVersion, method, params, ifMatch) {
  return r.apiVersion === apiVersion && r.method === method &&
    JSON.stringify(r.params) === JSON.stringify(params) && r['If-Match'] === ifMatch;
}
// A promise that rejects: its error message (or '' when it resolved).
async function rejection(p) {
  try { await p; return ''; } catch (e) { return e && e.message ? e.message : String(e); }
}
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

  await workerSide(st0, base);

  // every REST call carried the SDK's clientVersion
  const rq = (await req('GET', '/sim/requests')).body.requests;
  ok(rq.length > 10 && rq.every((r) => r.clientVersion === '2.1.1' && r.token === '[redacted]'), 'REST calls logged with clientVersion 2.1.1, token redacted');
}

// The Worker side (issue #14): bob's SDK, with version checks on, so every versioned call
// also proves that the simulator raises the worker and reservation versions as the SDK
// expects (spec reservation-worker §4.5).
async function workerSide(st0, base) {
  const offline = st0.activities.find((a) => a.friendly_name === 'Offline').sid;
  const bobSid = st0.workers.find((w) => w.name === 'bob').sid;
  const token = fs.readFileSync(path.join(tmp, 'bob.token'), 'utf8').trim();
  const resUrl = (r) => `Workers/${bobSid}/Reservations/${r.sid}`;
  const bob = new Worker(token, { ebServer: `http://${base}`, wsServer: `ws://${base}`,
    logLevel: 'error', enableVersionCheck: true });
  bobWorker = bob;
  bob.on('error', (e) => console.log(`# bob error: ${e.message}`));
  await waitEvent(bob, 'ready', 20000);
  const availableAct = [...bob.activities.values()].find((a) => a.name === 'Available');
  const offlineAct = [...bob.activities.values()].find((a) => a.name === 'Offline');
  const versionsAgree = async () => bob.version === String((await simWorker('bob')).version);
  ok(bob.activity === availableAct && availableAct.isCurrent && await versionsAgree(),
    'bob (version checks on) is ready, Available, with the simulator\'s worker version');

  // a task for bob: reservationCreated; the SDK's local version bump matches the sim's
  const newRes = async (channel) => {
    const created = waitEvent(bob, 'reservationCreated');
    await req('POST', '/sim/tasks', { worker: 'bob', channel, attributes: { lang: 'fr' } });
    return (await created)[0];
  };

  // channels: capacityUpdated, availabilityUpdated
  const chat = [...bob.channels.values()].find((c) => c.taskChannelUniqueName === 'chat');
  let ev = waitEvent(chat, 'capacityUpdated');
  await req('POST', '/sim/workers/bob/channels/chat', { capacity: 5 });
  await ev;
  ok(chat.capacity === 5 && chat.available === true, 'channel capacityUpdated: capacity 5');
  ev = waitEvent(chat, 'availabilityUpdated');
  await req('POST', '/sim/workers/bob/channels/chat', { available: false });
  await ev;
  ok(chat.available === false, 'channel availabilityUpdated: unavailable');
  ev = waitEvent(chat, 'availabilityUpdated');
  await req('POST', '/sim/workers/bob/channels/chat', { capacity: 3, available: true });
  await ev;
  ok(chat.available === true && chat.capacity === 3 && await versionsAgree(),
    'channel frames: the SDK raised the worker version as the simulator did');

  // Worker.setAttributes, versioned
  let v0 = bob.version;
  await bob.setAttributes({ skill: 'fr', languages: ['fr'] });
  let rq = await lastReq(`Workers/${bobSid}`);
  ok(JSON.parse((await simWorker('bob')).attributes).skill === 'fr' &&
     sent(rq, 'v1', 'POST', { Attributes: { skill: 'fr', languages: ['fr'] } }, v0) &&
     await versionsAgree(),
  'worker.setAttributes: POST v1 with If-Match, the simulator has the attributes', rq);

  // accept, wrap, complete
  const r1 = await newRes('voice');
  ok(r1.status === 'pending' && r1.task.status === 'reserved' && await versionsAgree(),
    'reservationCreated; the SDK\'s worker version bump matches the simulator\'s');
  let acc = waitEvent(r1, 'accepted');
  const back = await r1.accept();
  rq = await lastReq(resUrl(r1));
  ok(back === r1 && r1.status === 'accepted' && r1.version === '1' &&
     sent(rq, 'v1', 'POST', { ReservationStatus: 'accepted' }, '0'),
  'reservation.accept: POST v1 If-Match 0, resolves with the Reservation accepted, version 1',
  { back: back === r1, status: r1.status, version: r1.version, rq });
  await acc;
  ok(r1.task.status === 'assigned' && (await simRes(r1.sid)).reservation_status === 'accepted',
    'accepted fired, the task assigned; the simulator agrees');
  ev = waitEvent(r1, 'wrapup');
  await r1.wrap();
  await ev;
  ok((await simRes(r1.sid)).reservation_status === 'wrapping', 'reservation.wrap: wrapping; wrapup fired');
  ev = waitEvent(r1, 'completed');
  await r1.complete();
  await ev;
  rq = await lastReq(resUrl(r1));
  ok((await simRes(r1.sid)).reservation_status === 'completed' &&
     sent(rq, 'v1', 'POST', { ReservationStatus: 'completed' }, '2'),
  'reservation.complete: completed (If-Match 2); completed fired', rq);
  v0 = bob.version;
  await bob.setAttributes({ skill: 'fr' });
  ok(bob.version === String(Number(v0) + 1), 'a versioned worker write after a reservation succeeds');

  // reject with an activity: the worker moves, activityUpdated
  const r2 = await newRes('chat');
  ev = waitEvent(bob, 'activityUpdated');
  await r2.reject({ activitySid: offline });
  rq = await lastReq(resUrl(r2));
  await ev;
  ok(r2.status === 'rejected' && bob.activity === offlineAct &&
     (await simWorker('bob')).activity_name === 'Offline' &&
     sent(rq, 'v1', 'POST', { ReservationStatus: 'rejected', WorkerActivitySid: offline }, '0'),
  'reservation.reject({activitySid}): rejected, activityUpdated, the worker Offline', rq);
  ok(await versionsAgree(), 'after the activity frame the worker versions agree');

  // Activity.setAsCurrent, with and without rejectPendingReservations
  ev = waitEvent(bob, 'activityUpdated');
  v0 = bob.version;
  const act = await availableAct.setAsCurrent();
  rq = await lastReq(`Workers/${bobSid}`);
  await ev;
  ok(act === availableAct && availableAct.isCurrent && !offlineAct.isCurrent &&
     (await simWorker('bob')).activity_name === 'Available' &&
     sent(rq, 'v1', 'POST', { ActivitySid: availableAct.sid }, v0),
  'Activity.setAsCurrent(): Available, POST v1 with If-Match', rq);
  let threw = '';
  try { availableAct.setAsCurrent({ rejectPendingReservations: true }); } catch (e) { threw = e.message; }
  ok(/Available activity/.test(threw), 'setAsCurrent({rejectPendingReservations}) on Available throws locally');
  const r3 = await newRes('chat');
  ev = waitEvent(r3, 'rejected');
  v0 = bob.version;
  await offlineAct.setAsCurrent({ rejectPendingReservations: true });
  rq = await lastReq(`Workers/${bobSid}`);
  await ev;
  ok((await simRes(r3.sid)).reservation_status === 'rejected' && bob.activity === offlineAct &&
     sent(rq, 'v1', 'POST', { ActivitySid: offline, RejectPendingReservations: true }, v0),
  'setAsCurrent({rejectPendingReservations: true}) on Offline: the pending reservation rejected', rq);
  ev = waitEvent(bob, 'activityUpdated');
  await availableAct.setAsCurrent({ rejectPendingReservations: false });
  await ev;
  ok(bob.activity === availableAct && await versionsAgree(), 'back to Available (rejectPendingReservations false)');

  // conference and updateParticipant
  const r4 = await newRes('voice');
  acc = waitEvent(r4, 'accepted');
  await r4.conference({ from: '+15005550006', to: 'client:bob', endConferenceOnExit: true,
    muted: true, timeout: 30, beep: 'onEnter' });
  rq = await lastReq(resUrl(r4));
  await acc;
  let sr = await simRes(r4.sid);
  let conf = (await state()).conferences.find((c) => c.task_sid === r4.task.sid);
  let me = conf && conf.workers.find((w) => w.worker_sid === bobSid);
  ok(sr.reservation_status === 'accepted' && sr.instruction.name === 'conference' &&
     me && me.muted === true && sent(rq, 'v1', 'POST', { Instruction: 'conference',
       From: '+15005550006', To: 'client:bob', EndConferenceOnExit: true, Muted: true,
       Timeout: 30, Beep: 'onEnter' }, null),
  'reservation.conference: accepted, bob in the conference muted, no If-Match', rq);
  await r4.updateParticipant({ mute: false, beepOnExit: true });
  rq = await lastReq('/WorkerParticipant');
  sr = await simRes(r4.sid);
  conf = (await state()).conferences.find((c) => c.task_sid === r4.task.sid);
  me = conf.workers.find((w) => w.worker_sid === bobSid);
  ok(me.muted === false && sr.participant.beep_on_exit === true &&
     sent(rq, 'v2', 'POST', { ReservationSid: r4.sid, Mute: false, BeepOnExit: true }, null),
  'reservation.updateParticipant: POST v2 WorkerParticipant, bob unmuted', rq);
  const msg = await rejection(r4.conference());
  ok(/status code 400/.test(msg), 'conference on an accepted reservation is refused (400)', msg);
  await r4.complete();

  // call, dequeue (with a post-work activity), redirect
  const r5 = await newRes('voice');
  acc = waitEvent(r5, 'accepted');
  await r5.call('+15005550006', 'https://example.com/twiml', { accept: true, timeout: 20, to: 'client:bob' });
  rq = await lastReq(resUrl(r5));
  await acc;
  sr = await simRes(r5.sid);
  ok(sr.reservation_status === 'accepted' && sr.instruction.name === 'call' &&
     sent(rq, 'v1', 'POST', { Instruction: 'call', CallFrom: '+15005550006',
       CallUrl: 'https://example.com/twiml', CallAccept: true, CallTimeout: 20, CallTo: 'client:bob' }, null),
  'reservation.call({accept: true}): accepted', rq);
  await r5.complete();
  const r6 = await newRes('voice');
  acc = waitEvent(r6, 'accepted');
  await r6.dequeue({ from: '+15005550006', to: 'client:bob', postWorkActivitySid: offline, timeout: 25 });
  rq = await lastReq(resUrl(r6));
  await acc;
  sr = await simRes(r6.sid);
  ok(sr.reservation_status === 'accepted' && sr.instruction.name === 'dequeue' &&
     sent(rq, 'v1', 'POST', { Instruction: 'dequeue', DequeueFrom: '+15005550006',
       DequeueTo: 'client:bob', DequeuePostWorkActivitySid: offline, DequeueTimeout: 25 }, null),
  'reservation.dequeue: accepted', rq);
  ev = waitEvent(bob, 'activityUpdated');
  await r6.complete();
  await ev;
  ok(bob.activity === offlineAct, 'the call ended: the dequeue\'s post-work activity (Offline) applies');
  ev = waitEvent(bob, 'activityUpdated');
  await availableAct.setAsCurrent();
  await ev;
  const r7 = await newRes('voice');
  acc = waitEvent(r7, 'accepted');
  await r7.redirect('CA0123456789abcdef0123456789abcdef', 'https://example.com/twiml', { accept: true });
  rq = await lastReq(resUrl(r7));
  await acc;
  sr = await simRes(r7.sid);
  ok(sr.reservation_status === 'accepted' && sr.instruction.name === 'redirect' &&
     sent(rq, 'v1', 'POST', { Instruction: 'redirect', RedirectCallSid: 'CA0123456789abcdef0123456789abcdef',
       RedirectUrl: 'https://example.com/twiml', RedirectAccept: true }, null),
  'reservation.redirect({accept: true}): accepted', rq);
  await r7.complete();

  // Reservation.fetchLatestVersion after a change the SDK did not hear of
  const r8 = await newRes('chat');
  await req('POST', `/sim/reservations/${r8.sid}/accept`, { silent: true });
  const fr = await r8.fetchLatestVersion();
  rq = await lastReq(resUrl(r8));
  ok(fr === r8 && r8.status === 'accepted' && r8.version === '1' && r8.task.status === 'assigned' &&
     r8.timeout === 120 && sent(rq, 'v1', 'GET', {}, null),
  'reservation.fetchLatestVersion: the GET\'s event shape refreshes status, version and task', rq);
  await r8.complete();
  ok((await simRes(r8.sid)).reservation_status === 'completed', 'then complete with the fetched version');

  // a stale worker version: 412, fetchLatestVersion, retry
  await req('POST', '/sim/workers/bob/attributes', { attributes: { skill: 'de' }, silent: true });
  const stale = await rejection(bob.setAttributes({ skill: 'es' }));
  ok(/status code 412/.test(stale), 'worker.setAttributes with a stale version: 412', stale);
  await bob.fetchLatestVersion();
  rq = await lastReq(`Workers/${bobSid}`);
  ok(bob.attributes.skill === 'de' && await versionsAgree() && sent(rq, 'v1', 'GET', {}, null),
    'worker.fetchLatestVersion: GET v1, attributes and version refreshed', rq);
  await bob.setAttributes({ skill: 'es' });
  ok(JSON.parse((await simWorker('bob')).attributes).skill === 'es', 'the retry succeeds');

  // createTask: routed to bob
  ev = waitEvent(bob, 'reservationCreated');
  const tsid = await bob.createTask('+15005550006', '+15005550001', st0.workflow.sid, st0.queue.sid,
    { taskChannelUniqueName: 'chat', attributes: { lang: 'fr' } });
  rq = await lastReq('/Tasks');
  const [r9] = await ev;
  const t9 = (await state()).tasks.find((t) => t.sid === tsid);
  ok(r9.task.sid === tsid && t9.routing_target === bobSid &&
     sent(rq, 'v1', 'POST', { WorkflowSid: st0.workflow.sid, TaskQueueSid: st0.queue.sid,
       RoutingTarget: bobSid, TaskChannelUniqueName: 'chat',
       Attributes: { lang: 'fr', outbound_to: '+15005550006', from: '+15005550001' } }, null),
  'worker.createTask: POST v1 Tasks, the task routed to bob', rq);
  await r9.reject();

  // reservationFailed: from the control plane, and for a createTask while Offline
  ev = waitEvent(bob, 'reservationFailed');
  const failed = (await req('POST', '/sim/tasks', { worker: 'bob', fail: true, channel: 'chat' })).body;
  const [fp] = await ev;
  ok(fp && fp.sid === failed.task && fp.assignment_status === 'canceled' &&
     fp.initiating_workflow_sid === st0.workflow.sid, 'reservationFailed with the raw Task-like payload', fp);
  ev = waitEvent(bob, 'activityUpdated');
  await offlineAct.setAsCurrent();
  await ev;
  ev = waitEvent(bob, 'reservationFailed');
  const tf = await bob.createTask('+15005550006', '+15005550001', st0.workflow.sid, st0.queue.sid,
    { taskChannelUniqueName: 'chat' });
  const [fp2] = await ev;
  ok(fp2 && fp2.sid === tf, 'createTask while Offline: reservationFailed');
  ok(await versionsAgree(), 'at the end the SDK and the simulator agree on the worker version');
}

function finish(code) {
  try { if (worker) worker.disconnect(); } catch (e) { /* already down */ }
  try { if (bobWorker) bobWorker.disconnect(); } catch (e) { /* already down */ }
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

// A frame handler that throws escapes into the socket callback (spec reservation-worker
// §7.4): count it as a failure instead of dying without a TAP plan.
process.on('uncaughtException', (e) => {
  n++; failed++;
  console.log(`not ok ${n} - uncaught exception: ${e && e.stack ? e.stack.split('\n')[0] : e}`);
});

const deadline = setTimeout(() => { console.log('# overall timeout'); failed++; finish(1); }, 120000);
main().then(() => { clearTimeout(deadline); finish(failed ? 1 : 0); },
  (e) => { clearTimeout(deadline); n++; console.log(`not ok ${n} - ${e && e.stack ? e.stack.split('\n')[0] : e}`); finish(1); });
