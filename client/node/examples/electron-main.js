// Electron main process: a tray menu with the pending reservations (Accept / Reject) and the
// worker's activity. One connection to taskrouterd for the whole app; renderers ask the main
// process through ipcMain.handle() rather than opening the socket themselves.
const { app, Tray, Menu, Notification, nativeImage } = require('electron');
const tr = require('taskrouter-client');

let tray;
let client;
const pending = new Map(); // reservation sid -> its task

const ENDED = ['reservationAccepted', 'reservationRejected', 'reservationTimeout', 'reservationCanceled', 'reservationRescinded'];

app.whenReady().then(async () => {
  tray = new Tray(nativeImage.createEmpty()); // your icon here
  tray.setToolTip('TaskRouter: connecting…');
  client = await tr.connect({ wait: true }); // waits for the daemon, reconnects by itself
  client.on('disconnected', () => tray.setToolTip('TaskRouter: reconnecting…'));
  client.on('connected', () => tray.setToolTip('TaskRouter'));

  const sub = await client.subscribe({ events: ['reservationCreated', ...ENDED, 'activityUpdated', 'ready'] });
  // At first and after a gap (daemon restarted, events missed): start again from the list.
  sub.on('snapshot', () => relist());
  sub.on('ready', () => relist()); // the daemon's upstream session is (again) in sync
  sub.on('gap', (gap) => console.warn(`taskrouterd: events missed (${gap.reason}), re-listing`));
  sub.on('reservationCreated', (ev) => {
    pending.set(ev.reservationSid, ev.task);
    new Notification({ title: 'New task', body: `${ev.task.taskChannelUniqueName} from ${ev.task.queueName}` }).show();
    refresh();
  });
  for (const name of ENDED) {
    sub.on(name, (ev) => pending.delete(ev.reservationSid) && refresh());
  }
  sub.on('activityUpdated', () => refresh());
  tray.setToolTip('TaskRouter');
});

async function relist() {
  try {
    const { reservations } = await client.reservation.list({ status: 'pending' });
    pending.clear();
    for (const r of reservations) {
      pending.set(r.sid, r.task);
    }
  } catch (e) {
    // NotConnectedError (-32002): the daemon is not in sync with TaskRouter yet; 'ready' follows
  }
  refresh();
}

async function refresh() {
  let activities = [];
  try {
    ({ activities } = await client.activity.list());
  } catch (e) {
    // not ready yet: no activity menu for now
  }
  const current = activities.find((a) => a.isCurrent);
  const tasks = [...pending].map(([sid, task]) => ({
    label: `${task.taskChannelUniqueName} · ${task.queueName}`,
    submenu: [
      { label: 'Accept', click: () => act(client.reservation.accept(sid)) },
      { label: 'Reject', click: () => act(client.reservation.reject(sid)) },
    ],
  }));
  tray.setContextMenu(Menu.buildFromTemplate([
    ...(tasks.length ? tasks : [{ label: 'No pending task', enabled: false }]),
    { type: 'separator' },
    {
      label: `Activity: ${current ? current.name : '?'}`,
      submenu: activities.map((a) => ({
        label: a.name,
        type: 'radio',
        checked: a.isCurrent,
        click: () => act(client.worker.setActivity(a.sid)),
      })),
    },
    { type: 'separator' },
    { label: 'Quit', click: () => app.quit() },
  ]));
}

// A refused call (already taken, version conflict, upstream down) shows up as a notification.
function act(promise) {
  promise.catch((e) => new Notification({ title: 'TaskRouter', body: `${e.name}: ${e.message}` }).show());
}

app.on('before-quit', () => client && client.close());
