"""The blocking client: :class:`Client` and its :class:`Subscription`."""

import itertools
import os
import select
import socket
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Union

from . import _wire
from ._methods import Methods
from ._subscription import SubState, Item
from .errors import (ConnectionLostError, ProtocolError, ReplayGoneError, RpcError,
                     UpstreamTimeoutError, error_from_response)
from .events import Event, Gap

__all__ = ["Client", "Subscription"]

PathLike = Union[str, "os.PathLike[str]"]


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _earliest(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return b if a is None else a if b is None else min(a, b)


class _Conn:
    """One connection to the daemon: framing, ids and replies."""

    def __init__(self, path: str, timeout: Optional[float]) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.reader = _wire.FrameReader()
        self.ids = itertools.count(1)
        self.eof = False
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(path)
            _wire.check_server(self.sock)
        except BaseException:
            self.sock.close()
            raise

    def close(self) -> None:
        self.eof = True
        try:
            self.sock.close()
        except OSError:
            pass

    def stale(self) -> bool:
        """Whether the daemon closed this connection while we were not reading (it
        restarted between two calls). Reads what is there without blocking."""
        if self.eof:
            return True
        try:
            ready = select.poll()  # not select(): it fails for fds >= 1024
            ready.register(self.sock, select.POLLIN)
            while ready.poll(0):
                data = self.sock.recv(65536)
                if not data:
                    self.eof = True
                    return True
                self.reader.feed(data)
        except BlockingIOError:
            return False
        except OSError:
            self.eof = True
            return True
        return False

    def send(self, msg: Dict[str, Any], deadline: Optional[float]) -> None:
        data = _wire.encode(msg)
        try:
            self.sock.settimeout(_remaining(deadline))
            self.sock.sendall(data)
        except socket.timeout:
            self.close()  # part of a frame may have gone: the stream is unusable
            raise TimeoutError("taskrouterd: timed out sending a request") from None
        except OSError as e:
            self.close()
            raise ConnectionLostError(f"taskrouterd: connection lost: {e}") from None

    def recv(self, deadline: Optional[float]) -> Dict[str, Any]:
        """The next message. TimeoutError at the deadline (the connection stays usable),
        ConnectionLostError when the daemon closed it, ProtocolError on a bad frame."""
        while True:
            try:
                msg = self.reader.next()
            except ProtocolError:
                self.close()
                raise
            if msg is not None:
                return msg
            if self.eof:
                raise ConnectionLostError("taskrouterd closed the connection")
            rem = _remaining(deadline)
            if rem is not None and rem <= 0:
                raise TimeoutError("taskrouterd: no answer in time")
            try:
                self.sock.settimeout(rem)
                data = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("taskrouterd: no answer in time") from None
            except OSError as e:
                self.close()
                raise ConnectionLostError(f"taskrouterd: connection lost: {e}") from None
            if not data:
                self.close()
                raise ConnectionLostError("taskrouterd closed the connection")
            self.reader.feed(data)

    def request(self, method: str, params: Optional[Dict[str, Any]],
                deadline: Optional[float], on_event: Any = None) -> Any:
        """Send one request and wait for its reply; events that arrive meanwhile go to
        on_event (dropped without one). Returns the result or raises the RpcError."""
        msg_id = next(self.ids)
        self.send(_wire.request(msg_id, method, params), deadline)
        while True:
            msg = self.recv(deadline)
            kind, val = _wire.classify(msg)
            if kind == "event":
                if on_event is not None:
                    on_event(val)
                continue
            if kind != "response":
                continue
            if val == msg_id:
                if "error" in msg:
                    raise error_from_response(msg["error"], method)
                return msg.get("result")
            if val is None and "error" in msg:
                # An error the daemon could not tie to a request (overloaded at
                # connect, a framing error): it is this call's failure.
                raise error_from_response(msg["error"], method)
            # else: the late reply of a call that timed out; dropped


class Client(Methods):
    """A connection to taskrouterd.

    Args:
        socket: the daemon's socket path; default: ``$TASKROUTERD_SOCKET``, else
            ``$XDG_RUNTIME_DIR/taskrouterd/socket``, else ``/run/taskrouterd/socket``
            (as taskrouterctl does).
        timeout: seconds to wait for connecting and for each reply (None: forever).
            When it passes, the call raises the built-in ``TimeoutError``; a late reply
            is dropped.

    The client connects on first use and, when the daemon has closed the connection
    between two calls (a restart), connects again before the next call. A call that
    was waiting when the connection broke raises :class:`~taskrouter.ConnectionLostError`
    (its outcome is unknown). Calls from several threads are serialised.

    Before anything is sent, the server's credentials are checked (SO_PEERCRED): it must
    run as our uid or root, or as the uid in ``$TASKROUTERD_TRUST_UID``; else
    ``PermissionError``.

    Use it as a context manager, or call :meth:`close`::

        with taskrouter.Client() as c:
            for task in c.all_tasks():
                print(task["sid"], task["status"])
    """

    def __init__(self, socket: Optional[PathLike] = None,
                 timeout: Optional[float] = 30) -> None:
        self.socket_path = _wire.resolve_socket_path(socket)
        self.timeout = timeout
        self._conn: Optional[_Conn] = None
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- connection

    def connect(self) -> "Client":
        """Connect now (otherwise the first call does). Returns self."""
        with self._lock:
            if self._conn is None or self._conn.stale():
                self._close_conn()
                self._conn = _Conn(self.socket_path, self.timeout)
            return self

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Close the connection (the next call would open a new one)."""
        with self._lock:
            self._close_conn()

    def __enter__(self) -> "Client":
        return self.connect()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- calls

    def call(self, method: str, params: Optional[Dict[str, Any]] = None,
             **kwargs: Any) -> Any:
        """Call any method with its params as the daemon names them (camelCase), given
        as a dict or as keyword arguments; a trailing underscore is dropped from a
        keyword (``from_=`` sends ``from``) and members that are None are not sent.
        Returns the result; raises :class:`~taskrouter.RpcError` (a subclass by code)
        for an error response::

            c.call("task.wrapUp", sid="WT…", reason="done")
            c.call("worker.createTask", {"to": "+1…", "from": "+1…", ...})
        """
        return self._invoke(method, _wire.raw_params(params, kwargs))

    def _invoke(self, method: str, params: Optional[Dict[str, Any]]) -> Any:
        with self._lock:
            self.connect()
            assert self._conn is not None
            try:
                return self._conn.request(method, params, _deadline(self.timeout))
            except (ConnectionLostError, ProtocolError):
                self._close_conn()
                raise

    def all_tasks(self, status: Optional[str] = None) -> List[Dict[str, Any]]:
        """Every live task (all the pages of ``task.list``), optionally of one status."""
        return self._all("task.list", "tasks", status)

    def all_reservations(self, status: Optional[str] = None) -> List[Dict[str, Any]]:
        """Every reservation of this worker (all the pages of ``reservation.list``)."""
        return self._all("reservation.list", "reservations", status)

    def _all(self, method: str, key: str, status: Optional[str]) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        after = None
        while True:
            page = self._m(method, status=status, after=after)
            out.extend(page.get(key) or [])
            after = page.get("next")
            if not after:
                return out

    # ---------------------------------------------------------------- events

    def subscribe(self, events: Optional[Sequence[str]] = None,
                  tasks: Optional[Sequence[str]] = None, since: Optional[int] = None,
                  *, epoch: Optional[str] = None,
                  give_up_after: Optional[float] = 300) -> "Subscription":
        """Subscribe to events, on a connection of the subscription's own; see
        :class:`Subscription`.

        Args:
            events: event names to receive (``["reservationCreated"]``); None: all.
            tasks: task sids to receive events of; None: all.
            since: resume at this seq (the seq after the last event handled), with
                ``epoch``, the daemon run that numbered it (``Subscription.since`` and
                ``Subscription.epoch`` of an earlier subscription, or an Event's
                ``seq + 1`` and ``epoch``). When the daemon cannot replay from there,
                the first item is a :class:`~taskrouter.Gap`.
            give_up_after: seconds without a connection after which iterating raises
                ConnectionError (None: never).

        Raises RpcError when the daemon refuses the subscription (an unknown event
        name: InvalidParamsError), OSError when it cannot be reached.
        """
        if epoch is not None and since is None:
            raise ValueError("epoch goes with since")
        return Subscription(self.socket_path, self.timeout,
                            SubState(events, tasks, since, epoch, give_up_after))


class Subscription:
    """An iterator over events that survives daemon restarts and reports what it missed.

    Iterating yields :class:`~taskrouter.Event` objects (dicts with ``name``, ``seq``,
    ``task``... shortcuts) in seq order and, where events were lost, a
    :class:`~taskrouter.Gap`. When the connection breaks (the daemon restarted), the
    subscription reconnects with backoff (0.2 s doubling to 10 s) and resumes with
    ``since`` and ``epoch``: if the daemon still has the events, they are replayed and
    nothing is lost or repeated; if not (another daemon run, expired), it subscribes from
    now and yields a ``Gap`` whose ``tasks`` are the current tasks, which replace what the
    reader knew. Events never arrive silently out of a gap: each loss is one Gap.

    ``tasks`` is the snapshot of the live tasks at subscribe time (every page), so
    snapshot + events has no hole. ``epoch`` and ``since`` say where the stream is, to
    resume later with ``client.subscribe(since=sub.since, epoch=sub.epoch)``.

    It is iterable once, not thread-safe, and a context manager; :meth:`get` takes an
    item with a timeout.
    """

    def __init__(self, path: str, timeout: Optional[float], state: SubState) -> None:
        self._path = path
        self._timeout = timeout
        self._s = state
        self._conn: Optional[_Conn] = None
        self._start(_deadline(timeout))

    # ---------------------------------------------------------------- state

    @property
    def epoch(self) -> Optional[str]:
        """The daemon run of the last event (or of the subscription)."""
        return self._s.epoch

    @property
    def seq(self) -> Optional[int]:
        """The seq of the last event queued (or the subscription's starting seq)."""
        return self._s.last_seq

    @property
    def since(self) -> Optional[int]:
        """Where to resume: ``seq + 1``."""
        return self._s.since

    @property
    def tasks(self) -> List[Dict[str, Any]]:
        """The live tasks when the subscription (or, after a gap, the new one) began."""
        return self._s.tasks

    @property
    def subscription(self) -> Optional[str]:
        """The daemon's id of the current subscription."""
        return self._s.subscription

    # ---------------------------------------------------------------- (re)subscribing

    def _start(self, deadline: Optional[float]) -> None:
        s = self._s
        conn = _Conn(self._path, _remaining(deadline))
        try:
            params = s.subscribe_params()
            try:
                result = conn.request("events.subscribe", params, deadline, s.event)
                s.subscribed(result, resumed="since" in params)
                self._conn = conn
                if "since" in params:
                    return
            except ReplayGoneError as e:
                result = conn.request("events.subscribe", s.fresh_params(), deadline,
                                      s.event)
                s.gap(e.data, result)
                self._conn = conn
            after = result.get("next")
            while after:
                page = conn.request("task.list", {"after": after}, deadline, s.event)
                s.page(page.get("tasks") or [])
                after = page.get("next")
        except BaseException:
            conn.close()
            if self._conn is conn:
                self._conn = None
            raise

    def _reconnect(self, deadline: Optional[float]) -> None:
        """Try to resubscribe once the backoff allows, within the deadline."""
        s = self._s
        wait = s.next_attempt - time.monotonic()
        rem = _remaining(deadline)
        if wait > 0:
            if rem is not None and rem < wait:
                time.sleep(rem)
                raise TimeoutError("taskrouterd: no event in time (reconnecting)")
            time.sleep(wait)
        try:
            self._start(_earliest(deadline, _deadline(self._timeout)))
        except PermissionError:
            s.closed = True
            raise
        except UpstreamTimeoutError:
            s.failed_attempt()
        except RpcError:
            s.closed = True
            raise
        except (OSError, ProtocolError):  # incl. TimeoutError, ConnectionError
            s.failed_attempt()

    # ---------------------------------------------------------------- taking items

    def get(self, timeout: Optional[float] = None) -> Item:
        """The next Event or Gap; waits at most ``timeout`` seconds (None: forever), then
        raises the built-in TimeoutError (nothing is lost: the next call goes on).
        Raises ConnectionError when reconnecting failed for ``give_up_after`` seconds,
        ValueError once closed."""
        s = self._s
        deadline = _deadline(timeout)
        while True:
            if s.queue:
                return s.queue.popleft()
            if s.closed:
                raise ValueError("the subscription is closed")
            if self._conn is None:
                self._reconnect(deadline)
                continue
            try:
                msg = self._conn.recv(deadline)
            except (ConnectionLostError, ProtocolError):
                self._conn.close()
                self._conn = None
                s.lost()
                continue
            kind, val = _wire.classify(msg)
            if kind == "event":
                s.event(val)

    def __iter__(self) -> "Subscription":
        return self

    def __next__(self) -> Item:
        if self._s.closed and not self._s.queue:
            raise StopIteration
        return self.get()

    def close(self) -> None:
        """Stop: close the connection (which ends the subscription in the daemon)."""
        self._s.closed = True
        self._s.queue.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# re-exported for type hints
_ = (Event, Gap)
