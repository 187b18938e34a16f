"""Exceptions raised by the taskrouter client.

Every error response of the daemon becomes an :class:`RpcError` (or one of its subclasses,
chosen by the JSON-RPC ``code``), carrying ``code``, ``message`` and ``data`` exactly as the
daemon sent them. The codes are those of doc/PROTOCOL.md §4.

Hierarchy::

    RpcError                       any error response (an unknown code outside -32099..-32000
    │                              is a failure of the call)
    ├── ParseError            -32700
    ├── InvalidRequestError   -32600
    ├── MethodNotFoundError   -32601
    ├── InvalidParamsError    -32602   .param, .reason, .values
    ├── InternalError         -32603
    └── ServerError                    the daemon's own codes; an unknown code in
        │                              -32099..-32000 is a plain ServerError (a failure of
        │                              the daemon or of upstream)
        ├── NotFoundError          -32001   .sid
        ├── NotConnectedError      -32002
        ├── UpstreamError          -32003   .http_status, .twilio_code, .upstream_message
        │   ├── VersionConflictError  -32004   .current_version
        │   └── RateLimitedError      -32006
        ├── UpstreamTimeoutError   -32005   (the outcome of the call is unknown)
        ├── TooManyRequestsError   -32007
        ├── OverloadedError        -32008
        ├── TokenExpiredError      -32009
        ├── RefreshPendingError    -32010   (applied upstream: do not retry)
        ├── ReplayGoneError        -32011   .reason, .epoch
        ├── InvalidStateError      -32012
        └── NetworkError           -32013   .maybe_sent

Transport problems are not RpcErrors: a socket that cannot be reached raises the usual
:class:`OSError` subclasses (``FileNotFoundError``, ``ConnectionRefusedError``), a lost
connection :class:`ConnectionError` (:class:`ConnectionLostError`), a server that is not our
own uid or root :class:`PermissionError`, the client's own deadline the built-in
:class:`TimeoutError`, and a frame or message that breaks the protocol :class:`ProtocolError`.
"""

from typing import Any, Dict, Optional, Type

__all__ = [
    "RpcError", "ParseError", "InvalidRequestError", "MethodNotFoundError",
    "InvalidParamsError", "InternalError", "ServerError", "NotFoundError",
    "NotConnectedError", "UpstreamError", "VersionConflictError", "UpstreamTimeoutError",
    "RateLimitedError", "TooManyRequestsError", "OverloadedError", "TokenExpiredError",
    "RefreshPendingError", "ReplayGoneError", "InvalidStateError", "NetworkError",
    "ProtocolError", "ConnectionLostError", "error_from_response", "ERROR_CLASSES",
]


class ProtocolError(Exception):
    """The daemon sent something that breaks doc/PROTOCOL.md (a bad frame length, a payload
    that is not a JSON-RPC message). The connection is closed."""


class ConnectionLostError(ConnectionError):
    """The connection to the daemon closed (the daemon stopped or restarted) while a call
    was waiting for its reply. The outcome of that call is unknown. The next call
    connects again."""


class RpcError(Exception):
    """An error response from the daemon.

    Attributes:
        code (int): the JSON-RPC error code.
        message (str): the daemon's short English text, for humans.
        data: the error's ``data`` member (usually a dict), or ``None``.
        method (str or None): the method that was called, when known.
    """

    code: int = 0

    def __init__(self, code: int, message: str, data: Any = None,
                 method: Optional[str] = None) -> None:
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data
        self.method = method

    def _d(self, key: str) -> Any:
        return self.data.get(key) if isinstance(self.data, dict) else None

    def __str__(self) -> str:
        where = f"{self.method}: " if self.method else ""
        s = f"{where}{self.message} ({self.code})"
        if self.data is not None:
            s += f" {self.data!r}"
        return s

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
                f"data={self.data!r})")


class ParseError(RpcError):
    """-32700: the daemon could not read our JSON (``data['reason']`` says why)."""
    code = -32700


class InvalidRequestError(RpcError):
    """-32600: not a valid JSON-RPC request, or a framing error."""
    code = -32600


class MethodNotFoundError(RpcError):
    """-32601: no method of that name."""
    code = -32601


class InvalidParamsError(RpcError):
    """-32602: a parameter is missing, of the wrong type or out of range. Nothing was sent
    upstream. ``param`` names it, ``reason`` says what is wrong, ``values`` lists the
    allowed strings when there is such a list."""
    code = -32602

    @property
    def param(self) -> Optional[str]:
        return self._d("param")

    @property
    def reason(self) -> Optional[str]:
        return self._d("reason")

    @property
    def values(self) -> Optional[list]:
        return self._d("values")


class InternalError(RpcError):
    """-32603: a bug or resource exhaustion in the daemon."""
    code = -32603


class ServerError(RpcError):
    """A code in -32099..-32000, taskrouterd's own range: a failure of the daemon or of
    TaskRouter. An unknown code in that range is raised as a plain ServerError."""


class NotFoundError(ServerError):
    """-32001: unknown task or reservation sid (``sid`` when the daemon says it)."""
    code = -32001

    @property
    def sid(self) -> Optional[str]:
        return self._d("sid")


class NotConnectedError(ServerError):
    """-32002: the upstream session is not ready; the call failed at once."""
    code = -32002


class UpstreamError(ServerError):
    """-32003: TaskRouter answered with an error. ``http_status``, ``twilio_code`` and
    ``upstream_message`` are TaskRouter's, when known."""
    code = -32003

    @property
    def http_status(self) -> Optional[int]:
        return self._d("httpStatus")

    @property
    def twilio_code(self) -> Optional[int]:
        return self._d("twilioCode")

    @property
    def upstream_message(self) -> Optional[str]:
        return self._d("message")


class VersionConflictError(UpstreamError):
    """-32004: the object changed since the version the call was based on (HTTP 412).
    The daemon has refreshed its copy; ``current_version`` is the new version."""
    code = -32004

    @property
    def current_version(self) -> Optional[str]:
        return self._d("currentVersion")


class UpstreamTimeoutError(ServerError):
    """-32005: TaskRouter did not answer in time; the outcome of the call is unknown.
    (The client's own deadline raises the built-in TimeoutError instead.)"""
    code = -32005


class RateLimitedError(UpstreamError):
    """-32006: TaskRouter answered 429."""
    code = -32006


class TooManyRequestsError(ServerError):
    """-32007: a per-connection limit of the daemon was hit (``data`` {limit, value})."""
    code = -32007


class OverloadedError(ServerError):
    """-32008: a daemon-wide limit was hit (connections, queues)."""
    code = -32008


class TokenExpiredError(ServerError):
    """-32009: the worker token expired; call ``daemon_update_token``."""
    code = -32009


class RefreshPendingError(ServerError):
    """-32010: the call WAS applied upstream but the daemon's copy is not refreshed yet.
    Do not retry it."""
    code = -32010


class ReplayGoneError(ServerError):
    """-32011: ``events.subscribe`` with a ``since`` the daemon cannot replay. A
    :class:`~taskrouter.Subscription` never raises it: it reports a
    :class:`~taskrouter.Gap` instead. ``reason`` is ``epoch``, ``no-epoch``, ``expired``
    or ``future``; ``epoch`` the daemon's current epoch."""
    code = -32011

    @property
    def reason(self) -> Optional[str]:
        return self._d("reason")

    @property
    def epoch(self) -> Optional[str]:
        return self._d("epoch")


class InvalidStateError(ServerError):
    """-32012: refused locally, the call makes no sense now (e.g. no transfer to cancel)."""
    code = -32012


class NetworkError(ServerError):
    """-32013: TaskRouter could not be reached; ``maybe_sent`` tells whether the request
    may have gone out."""
    code = -32013

    @property
    def maybe_sent(self) -> Optional[bool]:
        return self._d("maybeSent")


#: code -> exception class, for every code of doc/PROTOCOL.md §4.
ERROR_CLASSES: Dict[int, Type[RpcError]] = {
    cls.code: cls for cls in (
        ParseError, InvalidRequestError, MethodNotFoundError, InvalidParamsError,
        InternalError, NotFoundError, NotConnectedError, UpstreamError,
        VersionConflictError, UpstreamTimeoutError, RateLimitedError, TooManyRequestsError,
        OverloadedError, TokenExpiredError, RefreshPendingError, ReplayGoneError,
        InvalidStateError, NetworkError)
}


def error_from_response(error: Any, method: Optional[str] = None) -> RpcError:
    """The exception for a JSON-RPC ``error`` object."""
    if not isinstance(error, dict) or not isinstance(error.get("code"), int) \
            or isinstance(error.get("code"), bool):
        raise ProtocolError(f"malformed error object: {error!r}")
    code = error["code"]
    message = error.get("message")
    if not isinstance(message, str):
        message = ""
    cls = ERROR_CLASSES.get(code)
    if cls is None:
        cls = ServerError if -32099 <= code <= -32000 else RpcError
    return cls(code, message, error.get("data"), method)
