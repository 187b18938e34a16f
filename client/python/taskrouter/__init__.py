"""taskrouter: a Python client for taskrouterd, the shared TaskRouter session daemon.

The daemon holds the worker's one TaskRouter session and serves local apps on a Unix
socket (doc/PROTOCOL.md). This package speaks that protocol with the standard library
only::

    import taskrouter

    with taskrouter.Client() as c:
        for ev in c.subscribe(events=["reservationCreated"]):
            print("new task", ev.task_sid, ev.task["attributes"])

- :class:`Client` (blocking) and :class:`taskrouter.aio.Client` (asyncio): ``call()`` for
  any method, convenience methods named after the RPC methods in snake_case
  (``task.wrapUp`` -> ``task_wrap_up``, params ``targetWorkerSid`` -> ``target_worker_sid``,
  ``from`` -> ``from_``), ``subscribe()``.
- :class:`Subscription`: an iterator of :class:`Event` that reconnects and resumes after a
  daemon restart, and yields a :class:`Gap` where events were lost.
- :class:`RpcError` and its subclasses, one per error code (see :mod:`taskrouter.errors`).
"""

from ._wire import default_socket_path
from .client import Client, Subscription
from .errors import (ERROR_CLASSES, ConnectionLostError, InternalError, InvalidParamsError,
                     InvalidRequestError, InvalidStateError, MethodNotFoundError,
                     NetworkError, NotConnectedError, NotFoundError, OverloadedError,
                     ParseError, ProtocolError, RateLimitedError, RefreshPendingError,
                     ReplayGoneError, RpcError, ServerError, TokenExpiredError,
                     TooManyRequestsError, UpstreamError, UpstreamTimeoutError,
                     VersionConflictError)
from .events import Event, Gap

__version__ = "0.1.0"

__all__ = [
    "Client", "Subscription", "Event", "Gap", "default_socket_path",
    "RpcError", "ParseError", "InvalidRequestError", "MethodNotFoundError",
    "InvalidParamsError", "InternalError", "ServerError", "NotFoundError",
    "NotConnectedError", "UpstreamError", "VersionConflictError", "UpstreamTimeoutError",
    "RateLimitedError", "TooManyRequestsError", "OverloadedError", "TokenExpiredError",
    "RefreshPendingError", "ReplayGoneError", "InvalidStateError", "NetworkError",
    "ProtocolError", "ConnectionLostError", "ERROR_CLASSES",
]
