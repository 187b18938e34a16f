'use strict';
// One event stream (events.subscribe, doc/PROTOCOL.md "events.subscribe"), kept alive across
// lost connections and daemon restarts.
//
// It remembers the (epoch, seq) of the last event it received. After the client reconnects
// it subscribes again with {since: seq + 1, epoch}: the daemon replays what was missed, or,
// when it cannot (another run of the daemon, events no longer kept), answers -32011 "replay
// gone". Then the subscription emits 'gap' with the daemon's reason, subscribes afresh and
// emits 'snapshot' with the current tasks, which replace whatever the app held.
//
// Emits: 'snapshot' (tasks, info), 'event' (ev), and each event under its own name
// ('reservationCreated', 'updated', ...), 'gap' (info), 'resumed' (info), 'resumeError' (err).

const { EventEmitter } = require('node:events');
const { ReplayGoneError, ConnectionError } = require('./errors');

// Names an event of the protocol must not be emitted under (EventEmitter's own, and ours).
const RESERVED = new Set(['error', 'newListener', 'removeListener', 'event', 'snapshot', 'gap', 'resumed', 'resumeError', 'close']);

class Subscription extends EventEmitter {
  constructor(client, options = {}) {
    super();
    this.client = client;
    // The filter, as events.subscribe takes it (null: everything).
    this.filter = { events: options.events || null, tasks: options.tasks || null };
    this.limit = options.limit;
    this.id = null; // the daemon's subscription id on the current connection
    this.epoch = options.epoch || null;
    // The seq of the last event received (since - 1 when resuming from a given position).
    this.seq = Number.isInteger(options.since) ? options.since - 1 : null;
    this.snapshot = null; // the tasks of the last snapshot
    this.closed = false;
    this._needFresh = !Number.isInteger(options.since);
    this._loading = null; // events held while the snapshot's further pages are read
    this._queue = []; // [name, args] held until the app had the subscription in hand
    this._held = true;
    this._retry = null;
    this._attempt = 0;
    this._generation = 0;
  }

  // ---- public ----

  // Unsubscribes; no event is emitted after this.
  async close() {
    if (this.closed) {
      return;
    }
    const id = this.id;
    this._closeLocal();
    this.client._subs.delete(this);
    if (id && this.client.connected) {
      try {
        await this.client.call('events.unsubscribe', { subscription: id });
      } catch (e) {
        // gone already (the connection closed meanwhile): nothing is left to undo
      }
    }
  }

  // The position to resume from, for an app that keeps it across its own restarts:
  // client.subscribe({...filter, ...sub.position}).
  get position() {
    return this.epoch && this.seq !== null ? { since: this.seq + 1, epoch: this.epoch } : null;
  }

  // ---- driven by the client ----

  // The first subscribe: resolves once subscribed (and the snapshot read), rejects when that
  // fails. What it brought ('gap', 'snapshot', replayed events) is emitted once the caller has
  // had a chance to add listeners, after the awaiting code's synchronous continuation.
  async _start() {
    const gen = this._generation;
    await this._subscribe(gen, true);
    setImmediate(() => {
      this._held = false;
      this._flush();
    });
  }

  _resume() {
    if (this.closed) {
      return;
    }
    clearTimeout(this._retry);
    this._retry = null;
    const gen = this._generation;
    this._subscribe(gen, false).then(
      () => {
        this._attempt = 0;
      },
      (e) => {
        if (this.closed || gen !== this._generation || e instanceof ConnectionError) {
          return; // the next connection resumes it
        }
        // Refused for another reason (overloaded, a limit): say so and try again later.
        this._emit('resumeError', e);
        const c = this.client;
        const delay = Math.min(c.backoff.max, c.backoff.min * 2 ** Math.min(this._attempt++, 20));
        this._retry = setTimeout(() => {
          if (c.connected) {
            this._resume();
          }
        }, delay);
      }
    );
  }

  _onDisconnect() {
    this._generation++;
    this.id = null;
    clearTimeout(this._retry);
    this._retry = null;
    if (this._loading) {
      // The snapshot was not complete: the next connection reads a new one.
      this._loading = null;
      this._needFresh = true;
    }
  }

  _closeLocal() {
    this.closed = true;
    this._generation++;
    clearTimeout(this._retry);
    this._queue = [];
    this._loading = null;
  }

  _onEvent(ev) {
    if (this.closed || ev.subscription !== this.id) {
      return;
    }
    if (this._loading) {
      this._loading.push(ev);
      return;
    }
    this._take(ev);
  }

  // ---- internals ----

  _take(ev) {
    if (ev.epoch === this.epoch && Number.isInteger(ev.seq) && this.seq !== null && ev.seq <= this.seq) {
      return; // seen already
    }
    this.epoch = ev.epoch;
    this.seq = ev.seq;
    this._emit('event', ev);
    if (typeof ev.event === 'string' && !RESERVED.has(ev.event)) {
      this._emit(ev.event, ev);
    }
  }

  _params(resume) {
    const p = {};
    if (this.filter.events) {
      p.events = this.filter.events;
    }
    if (this.filter.tasks) {
      p.tasks = this.filter.tasks;
    }
    if (this.limit !== undefined) {
      p.limit = this.limit;
    }
    if (resume) {
      p.since = this.seq + 1;
      p.epoch = this.epoch;
    }
    return p;
  }

  // Subscribes once: resumes when it has a position, else (or after a gap) from a snapshot.
  async _subscribe(gen, first) {
    const resume = !this._needFresh && this.seq !== null;
    const since = resume ? this.seq + 1 : null;
    const prevEpoch = this.epoch;
    try {
      await this.client._request('events.subscribe', this._params(resume), {
        onReply: (err, r) => {
          if (!err && gen === this._generation && !this.closed) {
            this._subscribed(r, resume, since, first);
          }
        },
      });
    } catch (e) {
      if (!(e instanceof ReplayGoneError) || gen !== this._generation || this.closed) {
        throw e;
      }
      const d = e.data || {};
      this._needFresh = true;
      this._emit('gap', {
        reason: d.reason,
        epoch: d.epoch,
        previousEpoch: prevEpoch,
        since,
        oldestSeq: d.oldestSeq,
        currentSeq: d.currentSeq,
        error: e,
      });
      return this._subscribe(gen, first);
    }
    if (this._loading && gen === this._generation) {
      await this._readPages(gen);
    }
  }

  // Called synchronously with the reply, before the events that follow it are read.
  _subscribed(r, resumed, since, first) {
    this.id = r.subscription;
    this.client._subById.set(r.subscription, this);
    if (resumed) {
      this._emit('resumed', { epoch: this.epoch, since, subscription: r.subscription, reconnected: !first });
      return; // the replay follows
    }
    this.epoch = r.epoch;
    this.seq = r.seq;
    this._needFresh = false;
    const tasks = this._filter(r.tasks || []);
    if (r.next) {
      this._loading = [];
      this._pages = { tasks, next: r.next, epoch: r.epoch, seq: r.seq };
      return;
    }
    this._snapshotDone(tasks, r.epoch, r.seq);
  }

  // The snapshot's further pages (task.list after `next`); events wait meanwhile.
  async _readPages(gen) {
    const st = this._pages;
    let next = st.next;
    while (next) {
      const page = await this.client._request('task.list', { after: next });
      if (gen !== this._generation || this.closed) {
        return;
      }
      st.tasks.push(...this._filter(page.tasks || []));
      next = page.next;
    }
    const held = this._loading;
    this._loading = null;
    this._pages = null;
    this._snapshotDone(st.tasks, st.epoch, st.seq);
    for (const ev of held) {
      this._take(ev);
    }
  }

  _filter(tasks) {
    if (!this.filter.tasks) {
      return tasks;
    }
    const want = new Set(this.filter.tasks);
    return tasks.filter((t) => want.has(t.sid));
  }

  _snapshotDone(tasks, epoch, seq) {
    this.snapshot = tasks;
    this._emit('snapshot', tasks, { epoch, seq });
  }

  _emit(name, ...args) {
    if (this.closed) {
      return;
    }
    if (this._held) {
      this._queue.push([name, args]);
      return;
    }
    this.client._guard(() => this.emit(name, ...args));
  }

  _flush() {
    const q = this._queue;
    this._queue = [];
    for (const [name, args] of q) {
      if (this.closed) {
        return;
      }
      this.client._guard(() => this.emit(name, ...args));
    }
  }
}

module.exports = { Subscription };
