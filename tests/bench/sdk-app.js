// One "local app" embedding the official SDK (twilio-taskrouter@2.1.1), as desktops do today.
// Prints "ready" once the Worker is ready, then "event <taskSid>" for each reservation it gets.
'use strict';
const path = require('path');
const { Worker } = require(path.join(__dirname, '..', 'compat', 'node_modules', 'twilio-taskrouter'));

const [token, port] = [require('fs').readFileSync(process.argv[2], 'utf8').trim(), process.argv[3]];
const worker = new Worker(token, {
	ebServer: `http://127.0.0.1:${port}/v1/wschannels`,
	wsServer: `ws://127.0.0.1:${port}/v1/wschannels`,
	logLevel: 'error',
});
worker.on('ready', () => process.stdout.write('ready\n'));
worker.on('reservationCreated', (r) => process.stdout.write(`event ${r.task.sid}\n`));
worker.on('error', (e) => process.stderr.write(`sdk error: ${e.message}\n`));
process.on('SIGTERM', () => {
	try {
		worker.disconnect();
	} catch (e) {
		// already gone
	}
	process.exit(0);
});
