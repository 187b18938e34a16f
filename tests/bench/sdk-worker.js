// The official SDK's side of bench.c's startup and Worker-side rows (twilio-taskrouter@2.1.1,
// the one tests/compat installs), against the same simulator as the daemon:
//   node sdk-worker.js startup TOKEN_FILE PORT RESERVATIONS
//       prints "ready T": from new Worker() to its "ready" event, and "all T": until the
//       Worker holds all RESERVATIONS reservations (node's start and require() are not counted)
//   node sdk-worker.js worker TOKEN_FILE PORT WORKER_NAME N
//       prints N lines "accept T": a new chat task for WORKER_NAME, its reservationCreated
//       awaited, then reservation.accept() timed (the task is completed afterwards); then N
//       lines "activity T": Activity.setAsCurrent() (the SDK's setActivity), Offline and
//       Available in turn
// Times in ms. Exits 1 with a message on stderr when something fails.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const { Worker } = require(path.join(__dirname, '..', 'compat', 'node_modules', 'twilio-taskrouter'));

const [mode, tokenFile, port] = process.argv.slice(2);
const token = fs.readFileSync(tokenFile, 'utf8').trim();

function request(method, p, body) {
	return new Promise((resolve, reject) => {
		const data = body ? JSON.stringify(body) : '';
		const req = http.request({ host: '127.0.0.1', port, method, path: p,
			headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } },
		(res) => {
			let text = '';
			res.on('data', (c) => { text += c; });
			res.on('end', () => (res.statusCode === 200 ? resolve(text ? JSON.parse(text) : null)
				: reject(new Error(`${p}: HTTP ${res.statusCode} ${text}`))));
		});
		req.on('error', reject);
		req.end(data);
	});
}

function newWorker() {
	return new Worker(token, {
		ebServer: `http://127.0.0.1:${port}/v1/wschannels`,
		wsServer: `ws://127.0.0.1:${port}/v1/wschannels`,
		logLevel: 'error',
	});
}

function ready(worker) {
	return new Promise((resolve, reject) => {
		worker.once('ready', resolve);
		worker.once('error', reject);
	});
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

// The SDK emits "ready" after the first page of reservations and fetches the others after it;
// "all" is when it holds every one (looked at every millisecond), which the daemon's "ready"
// stands for.
async function startup(expected) {
	const t0 = process.hrtime.bigint();
	const worker = newWorker();
	await ready(worker);
	const t = ms(t0);
	await new Promise((resolve, reject) => {
		const deadline = Date.now() + 120000;
		const check = () => {
			if (worker.reservations.size >= expected) {
				resolve();
			} else if (Date.now() > deadline) {
				reject(new Error(`${worker.reservations.size} reservations, not ${expected}`));
			} else {
				setTimeout(check, 1);
			}
		};
		check();
	});
	const all = ms(t0);
	console.log(`ready ${t.toFixed(3)}`);
	console.log(`all ${all.toFixed(3)}`);
	worker.disconnect();
}

async function workerSide(name, n) {
	const worker = newWorker();
	const byTask = new Map();
	const waiting = new Map();
	worker.on('reservationCreated', (r) => {
		const w = waiting.get(r.task.sid);
		if (w) {
			waiting.delete(r.task.sid);
			w(r);
		} else {
			byTask.set(r.task.sid, r);
		}
	});
	await ready(worker);
	const reservationOf = (sid) => (byTask.has(sid) ? Promise.resolve(byTask.get(sid))
		: new Promise((resolve) => waiting.set(sid, resolve)));
	for (let i = 0; i < n; i++) {
		const created = await request('POST', '/sim/tasks', { worker: name, channel: 'chat', attributes: {} });
		const r = await reservationOf(created.task);
		byTask.delete(created.task);
		const t0 = process.hrtime.bigint();
		await r.accept();
		console.log(`accept ${ms(t0).toFixed(3)}`);
		await request('POST', `/sim/tasks/${created.task}/complete`);
	}
	const acts = [...worker.activities.values()];
	const offline = acts.find((a) => a.name === 'Offline');
	const available = acts.find((a) => a.name === 'Available');
	if (!offline || !available) {
		throw new Error('no Offline or Available activity');
	}
	for (let i = 0; i < n; i++) {
		const t0 = process.hrtime.bigint();
		await (i % 2 ? available : offline).setAsCurrent();
		console.log(`activity ${ms(t0).toFixed(3)}`);
	}
	worker.disconnect();
}

(async () => {
	if (mode === 'startup') {
		await startup(Number(process.argv[5]));
	} else if (mode === 'worker') {
		await workerSide(process.argv[5], Number(process.argv[6]));
	} else {
		throw new Error(`unknown mode ${mode}`);
	}
	process.exit(0);
})().catch((e) => {
	process.stderr.write(`sdk-worker: ${e && e.message ? e.message : e}\n`);
	process.exit(1);
});
