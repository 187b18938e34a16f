// taskrouterd versus the alternative users have today: N local apps that each embed the
// official SDK (twilio-taskrouter@2.1.1 in Node) against one taskrouterd shared by N clients
// (taskrouterctl watch), on the same simulator. Measures total RSS, upstream sessions and the
// event latency from the simulator to every app. Prints Markdown table rows.
//   node sdk-compare.js SIM DAEMON CTL
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const readline = require('readline');

const [SIM, DAEMON, CTL] = process.argv.slice(2);
const ROUNDS = 10;

function rssKb(pid) {
	try {
		const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
		return m ? Number(m[1]) : 0;
	} catch (e) {
		return 0;
	}
}

function request(port, method, p, body) {
	return new Promise((resolve, reject) => {
		const data = body ? JSON.stringify(body) : '';
		const req = http.request({ host: '127.0.0.1', port, method, path: p,
			headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } },
		(res) => {
			let text = '';
			res.on('data', (c) => { text += c; });
			res.on('end', () => resolve(text ? JSON.parse(text) : null));
		});
		req.on('error', reject);
		req.end(data);
	});
}

// Start a process and hand each stdout line to onLine.
function start(cmd, args, onLine, env) {
	const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...env } });
	readline.createInterface({ input: p.stdout }).on('line', (l) => onLine(l, p));
	return p;
}

function waitFor(pred, ms, what) {
	return new Promise((resolve, reject) => {
		const t0 = Date.now();
		const iv = setInterval(() => {
			if (pred()) {
				clearInterval(iv);
				resolve();
			} else if (Date.now() - t0 > ms) {
				clearInterval(iv);
				reject(new Error(`timed out waiting for ${what}`));
			}
		}, 5);
	});
}

async function startSim(dir) {
	let port = 0;
	const sim = start(SIM, ['--listen', '127.0.0.1:0', '--token-dir', dir], (l) => {
		const m = l.match(/listening on 127\.0\.0\.1:(\d+)/);
		if (m) port = Number(m[1]);
	});
	await waitFor(() => port > 0, 10000, 'the simulator');
	return { sim, port };
}

async function sessions(port) {
	const st = await request(port, 'GET', '/sim/state');
	const s = st.sessions || st.connected_sessions || [];
	return Array.isArray(s) ? s.length : Object.keys(s).length;
}

// One round: create a task for alice, return the time until every app has seen it (ms).
async function latency(port, apps) {
	const results = [];
	for (let r = 0; r < ROUNDS; r++) {
		const t0 = process.hrtime.bigint();
		const created = await request(port, 'POST', '/sim/tasks', { worker: 'alice', channel: 'chat', attributes: { r } });
		await waitFor(() => apps.every((a) => a.seen.has(created.task)), 20000, 'the event');
		const last = apps.reduce((m, a) => (a.seen.get(created.task) > m ? a.seen.get(created.task) : m), 0n);
		results.push(Number(last - t0) / 1e6);
		await request(port, 'POST', `/sim/tasks/${created.task}/cancel`, { reason: 'bench' });
	}
	results.sort((a, b) => a - b);
	return results[Math.floor(results.length / 2)];
}

async function sdkCase(n) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdkcmp-'));
	const { sim, port } = await startSim(dir);
	const apps = [];
	for (let i = 0; i < n; i++) {
		const a = { ready: false, seen: new Map() };
		a.proc = start(process.execPath, [path.join(__dirname, 'sdk-app.js'), path.join(dir, 'alice.token'), String(port)], (l) => {
			if (l === 'ready') a.ready = true;
			const m = l.match(/^event (WT\w+)/);
			if (m && !a.seen.has(m[1])) a.seen.set(m[1], process.hrtime.bigint());
		});
		apps.push(a);
	}
	await waitFor(() => apps.every((a) => a.ready), 60000, 'SDK apps ready');
	const conns = await sessions(port);
	const lat = await latency(port, apps);
	const rss = apps.reduce((s, a) => s + rssKb(a.proc.pid), 0);
	apps.forEach((a) => a.proc.kill('SIGTERM'));
	sim.kill('SIGTERM');
	fs.rmSync(dir, { recursive: true, force: true });
	return { rss, conns, lat };
}

async function daemonCase(n) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdkcmp-'));
	const { sim, port } = await startSim(dir);
	const sock = path.join(dir, 'socket');
	let ready = false;
	const daemon = spawn(DAEMON, ['--websocket-url', `ws://127.0.0.1:${port}/v1/wschannels`,
		'--eventbridge-url', `http://127.0.0.1:${port}/v1/wschannels`,
		'--token-file', path.join(dir, 'alice.token'), '--socket', sock, '--log-level', 'err'],
	{ stdio: 'ignore' });
	await waitFor(() => {
		if (!ready && fs.existsSync(sock)) {
			try {
				const out = require('child_process').execFileSync(CTL, ['--socket', sock, '--json', 'status'], { encoding: 'utf8' });
				ready = /"ready"/.test(out);
			} catch (e) {
				ready = false;
			}
		}
		return ready;
	}, 30000, 'the daemon');
	const apps = [];
	for (let i = 0; i < n; i++) {
		const a = { seen: new Map() };
		a.proc = start(CTL, ['--socket', sock, '--json', 'watch'], (l) => {
			const m = l.match(/"taskSid":\s*"(WT\w+)"/);
			if (m && !a.seen.has(m[1])) a.seen.set(m[1], process.hrtime.bigint());
		});
		apps.push(a);
	}
	// every watcher is subscribed once the daemon counts them
	await waitFor(() => {
		try {
			const out = require('child_process').execFileSync(CTL, ['--socket', sock, '--json', 'status'], { encoding: 'utf8' });
			const m = out.match(/"subscriptions":\s*(\d+)/);
			return m && Number(m[1]) >= n;
		} catch (e) {
			return false;
		}
	}, 30000, 'watchers subscribed');
	const conns = await sessions(port);
	const lat = await latency(port, apps);
	const rss = rssKb(daemon.pid) + apps.reduce((s, a) => s + rssKb(a.proc.pid), 0);
	apps.forEach((a) => a.proc.kill('SIGTERM'));
	daemon.kill('SIGTERM');
	sim.kill('SIGTERM');
	fs.rmSync(dir, { recursive: true, force: true });
	return { rss, conns, lat };
}

(async () => {
	for (const n of [1, 5, 10]) {
		const sdk = await sdkCase(n);
		const d = await daemonCase(n);
		const ratio = sdk.rss / d.rss;
		const target = n === 10 ? '>= 10x less memory' : '-';
		const met = n === 10 ? (ratio >= 10 ? 'met' : 'NOT met') : '-';
		console.log(`| ${n} app(s): total RSS, SDK apps vs taskrouterd + ${n} clients | ${(d.rss / 1024).toFixed(1)} MB | ${(sdk.rss / 1024).toFixed(1)} MB (SDK) | ${ratio.toFixed(1)}x less | ${target} | ${met} |`);
		console.log(`| ${n} app(s): upstream sessions | ${d.conns} | ${sdk.conns} (SDK) | - | 1 | ${d.conns === 1 ? 'met' : 'NOT met'} |`);
		console.log(`| ${n} app(s): event latency sim -> every app, p50 | ${d.lat.toFixed(1)} ms | ${sdk.lat.toFixed(1)} ms (SDK) | ${(d.lat / sdk.lat).toFixed(2)}x | - | - |`);
	}
	process.exit(0);
})().catch((e) => {
	console.error(`sdk-compare: ${e.message}`);
	process.exit(1);
});
