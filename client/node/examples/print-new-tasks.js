// Print each new task routed to this worker (a reservation was created for it).
const { connect } = require('taskrouter-client');

(async () => {
  const client = await connect({ wait: true }); // the socket the CLI would use
  const sub = await client.subscribe({ events: ['reservationCreated'] });
  sub.on('reservationCreated', (ev) => console.log(`${ev.taskSid} ${ev.task.queueName} ${JSON.stringify(ev.task.attributes)}`));
  sub.on('gap', (gap) => console.error(`(events missed: ${gap.reason})`));
})();
