'use strict';
// Errors of taskrouter-client. Every error this package raises is a TaskRouterError:
//   RpcError           the daemon answered with a JSON-RPC error (doc/PROTOCOL.md §4):
//                      numeric `code`, `message`, `data`; one subclass per code of §4
//   ConnectionError    the local socket: could not connect, closed, refused (string `code`)
//   CallTimeoutError   no answer from the daemon within the call's own timeout
// A code the table does not know gives a plain RpcError: `isReserved` says whether it lies
// in the range taskrouterd keeps for itself (-32000..-32099: a failure of the daemon or of
// TaskRouter) or not (a failure of the call).

class TaskRouterError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

class RpcError extends TaskRouterError {
  constructor(code, message, data, method) {
    super(message || codeName(code) || `error ${code}`);
    this.code = code;
    this.data = data === undefined ? null : data;
    this.method = method || null;
  }

  get codeName() {
    return codeName(this.code);
  }

  get isReserved() {
    return this.code <= -32000 && this.code >= -32099;
  }
}

const table = [
  [-32700, 'ParseError', 'parse error'],
  [-32600, 'InvalidRequestError', 'invalid request'],
  [-32601, 'MethodNotFoundError', 'method not found'],
  [-32602, 'InvalidParamsError', 'invalid params'],
  [-32603, 'InternalError', 'internal error'],
  [-32001, 'NotFoundError', 'not found'],
  [-32002, 'NotConnectedError', 'not connected'],
  [-32003, 'UpstreamError', 'upstream error'],
  [-32004, 'VersionConflictError', 'version conflict'],
  [-32005, 'TimeoutError', 'timeout'],
  [-32006, 'RateLimitedError', 'rate limited'],
  [-32007, 'TooManyRequestsError', 'too many requests'],
  [-32008, 'OverloadedError', 'overloaded'],
  [-32009, 'TokenExpiredError', 'token expired'],
  [-32010, 'RefreshPendingError', 'refresh pending'],
  [-32011, 'ReplayGoneError', 'replay gone'],
  [-32012, 'InvalidStateError', 'invalid state'],
  [-32013, 'NetworkError', 'network error'],
];

const byCode = new Map();
const names = new Map();
const classes = {};

for (const [code, cls, name] of table) {
  // One named class per code, so that `instanceof` and err.name both work.
  const C = {
    [cls]: class extends RpcError {
      constructor(message, data, method) {
        super(code, message, data, method);
      }
    },
  }[cls];
  Object.defineProperty(C, 'code', { value: code });
  byCode.set(code, C);
  names.set(code, name);
  classes[cls] = C;
}

// Members of `data` worth a getter (all of them may be absent: "if known").
function dataGetter(C, prop) {
  Object.defineProperty(C.prototype, prop, {
    get() {
      return this.data && typeof this.data === 'object' && prop in this.data ? this.data[prop] : undefined;
    },
  });
}
dataGetter(classes.VersionConflictError, 'currentVersion');
for (const C of [classes.UpstreamError, classes.VersionConflictError, classes.RateLimitedError]) {
  dataGetter(C, 'httpStatus');
  dataGetter(C, 'twilioCode');
}
dataGetter(classes.NotFoundError, 'sid');
dataGetter(classes.InvalidParamsError, 'param');
dataGetter(classes.ReplayGoneError, 'reason');

function codeName(code) {
  return names.get(code) || null;
}

// An RpcError (of the right subclass) from the `error` member of a response.
function fromResponse(error, method) {
  const code = error && Number.isInteger(error.code) ? error.code : -32603;
  const message = error && typeof error.message === 'string' ? error.message : '';
  const data = error ? error.data : undefined;
  const C = byCode.get(code);
  return C ? new C(message, data, method) : new RpcError(code, message, data, method);
}

class ConnectionError extends TaskRouterError {
  // code: a Node system error code when connecting (ENOENT, ECONNREFUSED, EPERM for a socket
  // owned by someone else, ENOTSOCK, ETIMEDOUT), or ENOTCONN (not connected at the time of
  // the call), or ECLOSED (the connection closed while the call was out: its outcome is
  // unknown; `cause` says why, e.g. EPROTO when the daemon broke the framing).
  constructor(message, code, cause) {
    super(message, cause ? { cause } : undefined);
    this.code = code || 'ECONNRESET';
  }
}

class CallTimeoutError extends TaskRouterError {
  constructor(method, timeoutMs) {
    super(`${method}: no answer from taskrouterd within ${timeoutMs} ms (the outcome is unknown)`);
    this.code = 'ETIMEDOUT';
    this.method = method;
    this.timeout = timeoutMs;
  }
}

module.exports = {
  TaskRouterError,
  RpcError,
  ConnectionError,
  CallTimeoutError,
  ...classes,
  fromResponse,
  codeName,
};
