// Type definitions for taskrouter-client (hand-written; see doc/PROTOCOL.md for every shape).
/// <reference types="node" />

import { EventEmitter } from 'node:events';

// ---- objects (doc/PROTOCOL.md) ----

export type JsonObject = { [key: string]: unknown };

export interface Transfer {
  sid: string;
  type: string;
  mode: string;
  to: string;
  status: 'initiated' | 'failed' | 'complete' | 'canceled' | string;
  failedReason: string | null;
  reservationSid: string | null;
  workerSid: string | null;
  queueSid: string | null;
  workflowSid: string | null;
  taskSid: string;
  dateCreated: number;
  dateUpdated: number;
  [key: string]: unknown;
}

export interface Task {
  sid: string;
  /** Derived: `transferring` while the outgoing transfer is `initiated`, else `wireStatus`. */
  status: string;
  wireStatus: 'pending' | 'reserved' | 'assigned' | 'wrapping' | 'completed' | 'canceled' | string;
  attributes: JsonObject;
  addOns: JsonObject;
  attributesOmitted?: number;
  addOnsOmitted?: number;
  age: number;
  priority: number;
  timeout: number;
  reason: string | null;
  queueSid: string;
  queueName: string;
  workflowSid: string;
  workflowName: string;
  taskChannelSid: string;
  taskChannelUniqueName: string;
  routingTarget: string | null;
  dateCreated: number;
  dateUpdated: number;
  virtualStartTime: number;
  dateCreatedIso: string;
  dateUpdatedIso: string;
  virtualStartTimeIso: string;
  version: string;
  reservationSid: string | null;
  reservations: { sid: string; status: string }[];
  transfers: { incoming: Transfer | null; outgoing: Transfer | null };
  [key: string]: unknown;
}

export type ReservationStatus =
  | 'pending' | 'accepted' | 'rejected' | 'timeout' | 'canceled' | 'rescinded' | 'wrapping' | 'completed';

export interface Reservation {
  sid: string;
  status: ReservationStatus;
  version: string | null;
  timeout: number | null;
  taskSid: string;
  workerSid: string;
  accountSid: string;
  workspaceSid: string;
  dateCreated: number;
  dateUpdated: number;
  dateCreatedIso: string;
  dateUpdatedIso: string;
  canceledReasonCode?: number;
  task?: Task;
  [key: string]: unknown;
}

export interface Worker {
  sid: string;
  name: string;
  activitySid: string;
  activityName: string;
  available: boolean;
  attributes: JsonObject;
  version: string;
  accountSid: string;
  workspaceSid: string;
  dateCreated: number;
  dateUpdated: number;
  dateStatusChanged: number;
  [key: string]: unknown;
}

export interface Activity {
  sid: string;
  name: string;
  available: boolean;
  isCurrent: boolean;
  dateCreated: number;
  dateUpdated: number;
  [key: string]: unknown;
}

export interface Channel {
  sid: string;
  taskChannelSid: string;
  taskChannelUniqueName: string;
  capacity: number;
  available: boolean;
  assignedTasks: number;
  availableCapacityPercentage: number;
  lastReservedTime: number | null;
  dateCreated: number;
  dateUpdated: number;
  [key: string]: unknown;
}

export interface DaemonStatus {
  version: string;
  epoch: string;
  state: 'connecting' | 'open' | 'initializing' | 'ready' | 'reconnecting' | 'token_expired' | 'stopped' | string;
  upstream: JsonObject;
  tasks: number;
  closedTasks: number;
  connections: number;
  subscriptions: number;
  seq: number;
  limits: JsonObject;
  counters: { [name: string]: number };
  [key: string]: unknown;
}

/** What every event carries. */
export interface EventBase {
  subscription: string;
  epoch: string;
  seq: number;
  event: string;
  eventType?: string;
  /** Produced by the resync after a reconnect of the daemon's upstream session. */
  resync?: boolean;
  [key: string]: unknown;
}

/** updated, wrapup, completed, canceled, vanished (and the base of the reservation and transfer events). */
export interface TaskEvent extends EventBase {
  taskSid: string;
  reservationSid: string | null;
  eventType: string;
  task: Task;
  version: string;
  vanished?: boolean;
  finalState?: 'unknown';
  finalStateReason?: string;
  httpStatus?: number;
  stale?: boolean;
}

export interface ReservationEvent extends TaskEvent {
  reservationSid: string;
  /** The reservation after the change, without its task (the event's `task` is it). */
  reservation: Reservation;
}

export interface TransferEvent extends TaskEvent {
  transfer: Transfer;
}

/** activityUpdated, attributesUpdated. */
export interface WorkerEvent extends EventBase {
  worker: Worker;
}

/** channelCapacityUpdated, channelAvailabilityUpdated. */
export interface ChannelEvent extends EventBase {
  channel: Channel;
}

export interface ReservationFailedEvent extends EventBase {
  taskSid: string;
  failure: JsonObject;
}

/** connected, ready, disconnected (`reason`), tokenWillExpire, tokenUpdated, tokenExpired (`expiresAt`). */
export interface DaemonEvent extends EventBase {
  reason?: string;
  expiresAt?: number;
}

/** Any event (what 'event' gives): look at `event` for which. */
export interface TaskRouterEvent extends EventBase {
  taskSid?: string;
  reservationSid?: string | null;
  task?: Task;
  version?: string;
  reservation?: Reservation;
  transfer?: Transfer;
  worker?: Worker;
  channel?: Channel;
  failure?: JsonObject;
  vanished?: boolean;
  finalState?: 'unknown';
  finalStateReason?: string;
  httpStatus?: number;
  stale?: boolean;
  reason?: string;
  expiresAt?: number;
}

export interface EventTypes {
  reservationCreated: ReservationEvent;
  reservationAccepted: ReservationEvent;
  reservationRejected: ReservationEvent;
  reservationTimeout: ReservationEvent;
  reservationCanceled: ReservationEvent;
  reservationRescinded: ReservationEvent;
  reservationWrapup: ReservationEvent;
  reservationCompleted: ReservationEvent;
  updated: TaskEvent;
  wrapup: TaskEvent;
  completed: TaskEvent;
  canceled: TaskEvent;
  vanished: TaskEvent;
  transferInitiated: TransferEvent;
  transferAttemptFailed: TransferEvent;
  transferCompleted: TransferEvent;
  transferFailed: TransferEvent;
  transferCanceled: TransferEvent;
  activityUpdated: WorkerEvent;
  attributesUpdated: WorkerEvent;
  channelCapacityUpdated: ChannelEvent;
  channelAvailabilityUpdated: ChannelEvent;
  reservationFailed: ReservationFailedEvent;
  connected: DaemonEvent;
  ready: DaemonEvent;
  disconnected: DaemonEvent;
  tokenWillExpire: DaemonEvent;
  tokenUpdated: DaemonEvent;
  tokenExpired: DaemonEvent;
}

export type EventName = keyof EventTypes;

// ---- errors ----

export class TaskRouterError extends Error {}

/** The daemon answered with a JSON-RPC error (PROTOCOL.md §4). */
export class RpcError extends TaskRouterError {
  constructor(code: number, message: string, data?: unknown, method?: string);
  readonly code: number;
  readonly data: any;
  /** The method of the call that failed, when known. */
  readonly method: string | null;
  /** The code's name as taskrouterctl prints it ("not found"), or null for an unknown code. */
  readonly codeName: string | null;
  /** In -32000..-32099, the range taskrouterd keeps: a failure of the daemon or upstream. */
  readonly isReserved: boolean;
}
/** -32700: the payload is not acceptable JSON; data {reason}. */
export class ParseError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32700;
  readonly code: -32700;
}

/** -32600: not a valid JSON-RPC message; data {reason}. */
export class InvalidRequestError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32600;
  readonly code: -32600;
}

/** -32601: no method of that name. */
export class MethodNotFoundError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32601;
  readonly code: -32601;
}

/** -32602: a parameter is missing, mistyped or out of range; nothing was sent upstream. */
export class InvalidParamsError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32602;
  readonly code: -32602;
  /** data.param: the parameter's name. */
  readonly param?: string;
}

/** -32603: a bug or resource exhaustion in the daemon. */
export class InternalError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32603;
  readonly code: -32603;
}

/** -32001: unknown task or reservation sid. */
export class NotFoundError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32001;
  readonly code: -32001;
  /** data.sid, if known. */
  readonly sid?: string;
}

/** -32002: the daemon's upstream session is not ready (not the local socket: see ConnectionError). */
export class NotConnectedError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32002;
  readonly code: -32002;
}

/** -32003: TaskRouter answered with an error. */
export class UpstreamError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32003;
  readonly code: -32003;
  readonly httpStatus?: number;
  readonly twilioCode?: number;
}

/** -32004: the task, reservation or worker changed since (HTTP 412); retry from the new state. */
export class VersionConflictError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32004;
  readonly code: -32004;
  /** The version fetched after the conflict. */
  readonly currentVersion?: string;
  readonly httpStatus?: number;
  readonly twilioCode?: number;
}

/** -32005: TaskRouter did not answer the daemon in time; the outcome is unknown. */
export class TimeoutError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32005;
  readonly code: -32005;
}

/** -32006: TaskRouter answered 429. */
export class RateLimitedError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32006;
  readonly code: -32006;
  readonly httpStatus?: number;
  readonly twilioCode?: number;
}

/** -32007: a per-connection limit was hit; data {limit, value}. */
export class TooManyRequestsError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32007;
  readonly code: -32007;
}

/** -32008: a daemon-wide limit was hit; data {limit, value}. */
export class OverloadedError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32008;
  readonly code: -32008;
}

/** -32009: the worker token expired: daemon.updateToken. */
export class TokenExpiredError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32009;
  readonly code: -32009;
}

/** -32010: applied upstream, the local copy not refreshed yet: do not retry. */
export class RefreshPendingError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32010;
  readonly code: -32010;
}

/** -32011: events.subscribe cannot replay from `since` (Subscription handles it: 'gap'). */
export class ReplayGoneError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32011;
  readonly code: -32011;
  readonly reason?: 'epoch' | 'no-epoch' | 'expired' | 'future';
}

/** -32012: refused locally: makes no sense in the current state. */
export class InvalidStateError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32012;
  readonly code: -32012;
}

/** -32013: TaskRouter could not be reached; the request may not have been sent. */
export class NetworkError extends RpcError {
  constructor(message?: string, data?: unknown, method?: string);
  static readonly code: -32013;
  readonly code: -32013;
}

/**
 * The local socket: cannot connect (`ENOENT`, `ECONNREFUSED`, `EPERM` for a socket owned by
 * someone else, `ENOTSOCK`, `ETIMEDOUT`), not connected at the time of a call (`ENOTCONN`), or
 * closed while a call was out (`ECLOSED`: its outcome is unknown; `cause` says why).
 */
export class ConnectionError extends TaskRouterError {
  readonly code: string;
}

/** No answer from the daemon within the call's own timeout; the outcome is unknown. */
export class CallTimeoutError extends TaskRouterError {
  readonly code: 'ETIMEDOUT';
  readonly method: string;
  readonly timeout: number;
}

/** The RpcError subclass for the `error` member of a JSON-RPC response. */
export function fromResponse(error: { code: number; message: string; data?: unknown }, method?: string): RpcError;
/** "not found", "version conflict", ... or null for a code PROTOCOL.md §4 does not list. */
export function codeName(code: number): string | null;

// ---- client ----

export interface ClientOptions {
  /** Socket path; default: defaultSocketPath(). */
  socket?: string;
  /** Default per-call timeout in ms (0: none). Default 30000. */
  timeout?: number;
  /** Timeout of one connection attempt in ms. Default 5000. */
  connectTimeout?: number;
  /** Reconnect with backoff after the connection is lost (and resume subscriptions). Default true. */
  reconnect?: boolean;
  /** Reconnect delays: from min, doubling, up to max ms, ±20 % jitter. Default {min: 100, max: 5000}. */
  backoff?: { min?: number; max?: number };
  /** Largest frame accepted, in bytes. Default 1 MiB. */
  maxFrame?: number;
}

export interface ConnectOptions extends ClientOptions {
  /** Keep trying (with backoff) until the daemon is there, instead of failing at once. */
  wait?: boolean;
}

export interface CallOptions {
  /** This call's timeout in ms (0: none); default: the client's. */
  timeout?: number;
  /** Abort the wait for the answer (the request may still be carried out). */
  signal?: AbortSignal;
}

export type TaskPage = { tasks: Task[]; next: string | null };
export type ReservationPage = { reservations: Reservation[]; next: string | null };

export interface SubscribeOptions {
  /** Event names (any letter case); absent: every event. */
  events?: (EventName | string)[];
  /** Task sids; absent: every task. Daemon and worker events pass this filter. */
  tasks?: string[];
  /** Page size of the snapshot (1..1000). */
  limit?: number;
  /** Resume from a position kept earlier (Subscription.position). */
  since?: number;
  epoch?: string;
}

export interface GapInfo {
  /** The daemon's reason (-32011 data.reason). */
  reason: 'epoch' | 'no-epoch' | 'expired' | 'future' | string;
  /** The daemon's current epoch. */
  epoch: string;
  /** The epoch the subscription had. */
  previousEpoch: string | null;
  /** The `since` that could not be replayed. */
  since: number;
  oldestSeq?: number;
  currentSeq?: number;
  error: ReplayGoneError;
}

export interface SnapshotInfo {
  epoch: string;
  seq: number;
}

export interface ResumedInfo {
  epoch: string;
  since: number;
  subscription: string;
  reconnected: boolean;
}

type EventListeners = {
  [K in EventName]: (ev: EventTypes[K]) => void;
};

export interface SubscriptionEvents extends EventListeners {
  /** Every event, in seq order. */
  event: (ev: TaskRouterEvent) => void;
  /** The tasks as they are now: at first, and after each gap (replace what you held). */
  snapshot: (tasks: Task[], info: SnapshotInfo) => void;
  /** Events were lost (a daemon restart, too long away); a 'snapshot' follows. */
  gap: (info: GapInfo) => void;
  /** Subscribed again after a reconnection, with nothing lost; the missed events follow. */
  resumed: (info: ResumedInfo) => void;
  /** Re-subscribing failed for another reason; retried with backoff. */
  resumeError: (err: Error) => void;
}

export class Subscription extends EventEmitter {
  readonly client: Client;
  readonly filter: { events: string[] | null; tasks: string[] | null };
  /** The daemon's subscription id on the current connection (null while disconnected). */
  readonly id: string | null;
  readonly epoch: string | null;
  /** The seq of the last event received. */
  readonly seq: number | null;
  /** The tasks of the last snapshot. */
  readonly snapshot: Task[] | null;
  readonly closed: boolean;
  /** Where to resume from: pass it to subscribe() (e.g. after an app restart). */
  readonly position: { since: number; epoch: string } | null;
  close(): Promise<void>;

  on<K extends keyof SubscriptionEvents>(name: K, listener: SubscriptionEvents[K]): this;
  on(name: string, listener: (ev: TaskRouterEvent) => void): this;
  once<K extends keyof SubscriptionEvents>(name: K, listener: SubscriptionEvents[K]): this;
  once(name: string, listener: (ev: TaskRouterEvent) => void): this;
  off<K extends keyof SubscriptionEvents>(name: K, listener: SubscriptionEvents[K]): this;
  off(name: string, listener: (ev: TaskRouterEvent) => void): this;
}

export interface ClientEvents {
  /** Connected to the daemon (`reconnected` after a loss). */
  connected: (info: { socket: string; reconnected: boolean }) => void;
  /** The local connection is gone; `error` is why (null after close()). */
  disconnected: (info: { error: Error | null; willReconnect: boolean }) => void;
  /** The next connection attempt is due in `delay` ms. */
  reconnecting: (info: { attempt: number; delay: number; error: Error | null }) => void;
}

type O = CallOptions;

export class Client extends EventEmitter {
  constructor(options?: ClientOptions);
  readonly socketPath: string;
  readonly connected: boolean;
  timeout: number;
  connect(options?: { wait?: boolean }): Promise<this>;
  close(): void;

  /** Any method, raw. */
  call<T = any>(method: string, params?: JsonObject, options?: CallOptions): Promise<T>;
  /** events.subscribe, resumed across reconnections; add listeners right after the await. */
  subscribe(options?: SubscribeOptions): Promise<Subscription>;

  task: {
    list(options?: { status?: string; after?: string; limit?: number }, o?: O): Promise<TaskPage>;
    /** Every live task (task.list, page after page). */
    listAll(options?: { status?: string; limit?: number }, o?: O): Promise<Task[]>;
    get(sid: string, o?: O): Promise<Task>;
    complete(sid: string, reason?: string, o?: O): Promise<Task>;
    wrapUp(sid: string, reason?: string, o?: O): Promise<Task>;
    setAttributes(sid: string, attributes: JsonObject, o?: O): Promise<Task>;
    setVirtualStartTime(sid: string, time: string | number | Date, o?: O): Promise<Task>;
    fetchLatestVersion(sid: string, o?: O): Promise<Task>;
    hold(sid: string, targetWorkerSid: string, onHold: boolean, options?: { holdUrl?: string; holdMethod?: string }, o?: O): Promise<Task>;
    kick(sid: string, workerSid: string, o?: O): Promise<Task>;
    updateParticipant(sid: string, options?: { hold?: boolean; holdUrl?: string; holdMethod?: string }, o?: O): Promise<Task>;
    transfer(sid: string, to: string, options?: { mode?: 'WARM' | 'COLD' | string; priority?: number; attributes?: JsonObject }, o?: O): Promise<Task>;
    cancelTransfer(sid: string, o?: O): Promise<Task>;
  };

  /** A reservation `sid` may also be a task sid: this worker's live reservation for that task. */
  reservation: {
    list(options?: { status?: ReservationStatus; after?: string; limit?: number }, o?: O): Promise<ReservationPage>;
    get(sid: string, o?: O): Promise<Reservation>;
    accept(sid: string, o?: O): Promise<Reservation>;
    reject(sid: string, options?: { activitySid?: string }, o?: O): Promise<Reservation>;
    wrap(sid: string, o?: O): Promise<Reservation>;
    complete(sid: string, o?: O): Promise<Reservation>;
    call(sid: string, from: string, url: string,
      options?: { accept?: boolean; record?: string; statusCallbackUrl?: string; to?: string; timeout?: number }, o?: O): Promise<Reservation>;
    dequeue(sid: string, options?: {
      from?: string; to?: string; postWorkActivitySid?: string; record?: string; statusCallbackUrl?: string;
      statusCallbackEvents?: string; timeout?: number;
    }, o?: O): Promise<Reservation>;
    redirect(sid: string, callSid: string, url: string, options?: { accept?: boolean }, o?: O): Promise<Reservation>;
    conference(sid: string, options?: ConferenceOptions, o?: O): Promise<Reservation>;
    updateParticipant(sid: string, options?: { endConferenceOnExit?: boolean; mute?: boolean; beepOnExit?: boolean }, o?: O): Promise<Reservation>;
    fetchLatestVersion(sid: string, o?: O): Promise<Reservation>;
  };

  worker: {
    get(o?: O): Promise<Worker>;
    setAttributes(attributes: JsonObject, o?: O): Promise<Worker>;
    fetchLatestVersion(o?: O): Promise<Worker>;
    /** activity: a WA sid or an activity's exact friendly name. */
    setActivity(activity: string, options?: { rejectPendingReservations?: boolean }, o?: O): Promise<Worker>;
    createTask(params: {
      to: string; from: string; workflowSid: string; taskQueueSid: string; attributes?: JsonObject;
      taskChannelUniqueName?: string; taskChannelSid?: string; virtualStartTime?: string | number | Date;
    }, o?: O): Promise<{ sid: string }>;
  };

  activity: { list(o?: O): Promise<{ activities: Activity[] }> };
  channel: { list(o?: O): Promise<{ channels: Channel[] }> };
  daemon: {
    status(o?: O): Promise<DaemonStatus>;
    updateToken(token: string, options?: JsonObject, o?: O): Promise<{ ok: true; expiresAt: number }>;
  };
  rpc: { describe(o?: O): Promise<{ methods: { name: string; params: JsonObject[]; result: unknown }[]; events: string[] }> };

  on<K extends keyof ClientEvents>(name: K, listener: ClientEvents[K]): this;
  once<K extends keyof ClientEvents>(name: K, listener: ClientEvents[K]): this;
  off<K extends keyof ClientEvents>(name: K, listener: ClientEvents[K]): this;
}

export interface ConferenceOptions {
  to?: string; from?: string; statusCallback?: string; statusCallbackMethod?: string; statusCallbackEvent?: string;
  record?: string; waitUrl?: string; waitMethod?: string; conferenceStatusCallback?: string;
  conferenceStatusCallbackMethod?: string; conferenceStatusCallbackEvent?: string; conferenceTrim?: string;
  recordingChannels?: string; recordingStatusCallback?: string; recordingStatusCallbackMethod?: string;
  conferenceRecordingStatusCallback?: string; conferenceRecordingStatusCallbackMethod?: string; region?: string;
  sipAuthUsername?: string; sipAuthPassword?: string; transcriptionConfiguration?: string;
  muted?: boolean; startConferenceOnEnter?: boolean; endConferenceOnExit?: boolean; endConferenceOnCustomerExit?: boolean;
  earlyMedia?: boolean; transcribe?: boolean; beepOnCustomerEntrance?: boolean;
  timeout?: number; maxParticipants?: number;
  beep?: boolean | string; conferenceRecord?: boolean | string;
}

/** Connects and resolves with the connected client. */
export function connect(options?: ConnectOptions): Promise<Client>;
/** $TASKROUTERD_SOCKET, else $XDG_RUNTIME_DIR/taskrouterd/socket, else /run/taskrouterd/socket. */
export function defaultSocketPath(env?: NodeJS.ProcessEnv): string;

/** A frame of PROTOCOL.md §2 holding `message` as JSON. */
export function encodeFrame(message: unknown, max?: number): Buffer;
export class FrameDecoder {
  constructor(max?: number);
  /** The payloads completed by `chunk`; throws a FrameError on a length outside 2..max. */
  push(chunk: Buffer): Buffer[];
}
