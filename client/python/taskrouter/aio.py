"""The asyncio client: :class:`Client` and :class:`Subscription`, the same API as the
blocking ones with ``await``::

    import asyncio, taskrouter.aio

    async def main():
        async with taskrouter.aio.Client() as c:
            print(await c.daemon_status())
            async with await c.subscribe(events=["reservationCreated"]) as sub:
                async for ev in sub:
                    print(ev.name, ev.task_sid)

    asyncio.run(main())

Calls may run concurrently on one client (the daemon answers them in any order; they are
matched by id).
"""

import asyncio
import itertools
import os
import socket
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from . import _wire
from ._methods import Methods
from ._subscription import Item, SubState
from .errors import (ConnectionLostError, ProtocolError, ReplayGoneError, RpcError,
                     UpstreamTimeoutError, error_from_response)

__all__ = ["Client", "Subscription"]

PathLike = Union[str, "os.PathLike[str]"]


async def _with_timeout(aw: Any, timeout: Optional[float], what: str) -> Any:
    """asyncio.wait_for, raising the built-in TimeoutError (asyncio's own before 3.11)."""
    try:
        return await asyncio.wait_for(aw, timeout)
    except asyncio.TimeoutError:
        raise TimeoutError(f"taskrouterd: {what}") from None


class _Conn:
    """One connection: a reader task that hands replies to their futures and events to
    on_event; on_close runs once when the connection ends."""

    def __init__(self, on_event: Optional[Callable[[Dict[str, Any]], None]] = None,
                 on_close: Optional[Callable[[], None]] = None) -> None:
        self.on_event = on_event
        self.on_close = on_close
        self.ids = itertools.count(1)
        self.pending: Dict[int, "asyncio.Future[Dict[str, Any]]"] = {}
        self.closed: Optional[BaseException] = None
        self.writer: Optional[asyncio.StreamWriter] = None
        self.task: Optional["asyncio.Task[None]"] = None

    async def open(self, path: str, timeout: Optional[float]) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await _with_timeout(loop.sock_connect(sock, path), timeout, "connect timed out")
            _wire.check_server(sock)
            reader, self.writer = await asyncio.open_unix_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
        self.task = loop.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        why: BaseException = ConnectionLostError("taskrouterd closed the connection")
        try:
            while True:
                header = await reader.readexactly(4)
                payload = await reader.readexactly(_wire.frame_length(header))
                msg = _wire.decode(payload)
                kind, val = _wire.classify(msg)
                if kind == "event":
                    if self.on_event is not None:
                        self.on_event(val)
                elif kind == "response":
                    fut = self.pending.pop(val, None) if val is not None else None
                    if fut is not None:
                        if not fut.done():
                            fut.set_result(msg)
                    elif val is None and "error" in msg:
                        # not tied to a request: it fails every call waiting
                        for f in self.pending.values():
                            if not f.done():
                                f.set_result(msg)
                        self.pending.clear()
        except asyncio.IncompleteReadError:
            pass
        except ProtocolError as e:
            why = e
        except OSError as e:
            why = ConnectionLostError(f"taskrouterd: connection lost: {e}")
        except asyncio.CancelledError:
            why = ConnectionLostError("connection closed")
        finally:
            self._finish(why)

    def _finish(self, why: BaseException) -> None:
        if self.closed is not None:
            return
        self.closed = why
        for f in self.pending.values():
            if not f.done():
                f.set_exception(why)
        self.pending.clear()
        if self.writer is not None:
            self.writer.close()
        if self.on_close is not None:
            self.on_close()

    async def request(self, method: str, params: Optional[Dict[str, Any]],
                      timeout: Optional[float]) -> Any:
        if self.closed is not None or self.writer is None:
            raise ConnectionLostError("taskrouterd: the connection is closed")
        msg_id = next(self.ids)
        fut: "asyncio.Future[Dict[str, Any]]" = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = fut
        try:
            self.writer.write(_wire.encode(_wire.request(msg_id, method, params)))
            await self.writer.drain()
            msg = await _with_timeout(asyncio.shield(fut), timeout, "no answer in time")
        except (ConnectionResetError, BrokenPipeError) as e:
            raise ConnectionLostError(f"taskrouterd: connection lost: {e}") from None
        finally:
            self.pending.pop(msg_id, None)
        if "error" in msg:
            raise error_from_response(msg["error"], method)
        return msg.get("result")

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        self._finish(ConnectionLostError("connection closed"))


class Client(Methods):
    """A connection to taskrouterd on asyncio; see :class:`taskrouter.Client` for the
    arguments, the socket discovery, the credential check and the errors. Every call and
    convenience method is a coroutine. It connects on first use and again after the
    daemon closed the connection; use ``async with`` or ``await close()``."""

    def __init__(self, socket: Optional[PathLike] = None,
                 timeout: Optional[float] = 30) -> None:
        self.socket_path = _wire.resolve_socket_path(socket)
        self.timeout = timeout
        self._conn: Optional[_Conn] = None
        self._lock: Optional[asyncio.Lock] = None

    async def connect(self) -> "Client":
        """Connect now (otherwise the first call does). Returns self."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._conn is None or self._conn.closed is not None:
                conn = _Conn()
                await conn.open(self.socket_path, self.timeout)
                self._conn = conn
        return self

    async def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def __aenter__(self) -> "Client":
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def call(self, method: str, params: Optional[Dict[str, Any]] = None,
                   **kwargs: Any) -> Any:
        """Call any method; as :meth:`taskrouter.Client.call`."""
        return await self._invoke(method, _wire.raw_params(params, kwargs))

    async def _invoke(self, method: str, params: Optional[Dict[str, Any]]) -> Any:
        await self.connect()
        assert self._conn is not None
        return await self._conn.request(method, params, self.timeout)

    async def all_tasks(self, status: Optional[str] = None) -> List[Dict[str, Any]]:
        """Every live task (all the pages of ``task.list``)."""
        return await self._all("task.list", "tasks", status)

    async def all_reservations(self, status: Optional[str] = None) -> List[Dict[str, Any]]:
        """Every reservation (all the pages of ``reservation.list``)."""
        return await self._all("reservation.list", "reservations", status)

    async def _all(self, method: str, key: str, status: Optional[str]) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        after = None
        while True:
            page = await self._m(method, status=status, after=after)
            out.extend(page.get(key) or [])
            after = page.get("next")
            if not after:
                return out

    async def subscribe(self, events: Optional[Sequence[str]] = None,
                        tasks: Optional[Sequence[str]] = None, since: Optional[int] = None,
                        *, epoch: Optional[str] = None,
                        give_up_after: Optional[float] = 300) -> "Subscription":
        """Subscribe on a connection of the subscription's own; the arguments are those
        of :meth:`taskrouter.Client.subscribe`. ``await`` it, then ``async for``."""
        if epoch is not None and since is None:
            raise ValueError("epoch goes with since")
        sub = Subscription(self.socket_path, self.timeout,
                           SubState(events, tasks, since, epoch, give_up_after))
        await sub._start(self.timeout)
        return sub


class Subscription:
    """The asyncio twin of :class:`taskrouter.Subscription`: ``async for`` yields Event and
    Gap objects, resumes across daemon restarts and reports each loss as one Gap;
    ``await get(timeout)`` takes one item; ``epoch``, ``seq``, ``since``, ``tasks``
    say where it is."""

    def __init__(self, path: str, timeout: Optional[float], state: SubState) -> None:
        self._path = path
        self._timeout = timeout
        self._s = state
        self._conn: Optional[_Conn] = None
        self._wake = asyncio.Event()
        # While (re)subscribing, events that arrive with or right after the reply wait here,
        # so that the reply (and a gap) is taken first, as the blocking client does.
        self._held: Optional[List[Dict[str, Any]]] = None

    epoch = property(lambda self: self._s.epoch, doc="The daemon run of the last event.")
    seq = property(lambda self: self._s.last_seq, doc="The seq of the last event queued.")
    since = property(lambda self: self._s.since, doc="Where to resume: seq + 1.")
    tasks = property(lambda self: self._s.tasks, doc="The live tasks at (re)subscribe.")
    subscription = property(lambda self: self._s.subscription,
                            doc="The daemon's id of the current subscription.")

    def _on_event(self, params: Dict[str, Any]) -> None:
        if self._held is not None:
            self._held.append(params)
            return
        self._s.event(params)
        self._wake.set()

    def _on_close(self) -> None:
        self._wake.set()

    async def _start(self, timeout: Optional[float]) -> None:
        self._held = []
        try:
            await self._subscribe(timeout)
        except BaseException:
            self._held = None
            raise
        held, self._held = self._held, None
        for params in held:
            self._on_event(params)

    async def _subscribe(self, timeout: Optional[float]) -> None:
        s = self._s
        conn = _Conn(self._on_event, self._on_close)
        try:
            await conn.open(self._path, timeout)
            params = s.subscribe_params()
            try:
                result = await conn.request("events.subscribe", params, timeout)
                s.subscribed(result, resumed="since" in params)
                self._conn = conn
                if "since" in params:
                    return
            except ReplayGoneError as e:
                result = await conn.request("events.subscribe", s.fresh_params(), timeout)
                s.gap(e.data, result)
                self._conn = conn
            after = result.get("next")
            while after:
                page = await conn.request("task.list", {"after": after}, timeout)
                s.page(page.get("tasks") or [])
                after = page.get("next")
        except BaseException:
            if self._conn is conn:
                self._conn = None
            await conn.close()
            raise

    async def _reconnect(self, deadline: Optional[float]) -> None:
        s = self._s
        wait = s.next_attempt - time.monotonic()
        if wait > 0:
            rem = None if deadline is None else deadline - time.monotonic()
            if rem is not None and rem < wait:
                await asyncio.sleep(max(rem, 0))
                raise TimeoutError("taskrouterd: no event in time (reconnecting)")
            await asyncio.sleep(wait)
        t = self._timeout
        if deadline is not None:
            rem = max(deadline - time.monotonic(), 0.0)
            t = rem if t is None else min(t, rem)
        try:
            await self._start(t)
        except PermissionError:
            s.closed = True
            raise
        except UpstreamTimeoutError:
            s.failed_attempt()
        except RpcError:
            s.closed = True
            raise
        except (OSError, ProtocolError):
            s.failed_attempt()

    async def get(self, timeout: Optional[float] = None) -> Item:
        """The next Event or Gap, waiting at most ``timeout`` seconds (then the built-in
        TimeoutError; nothing is lost)."""
        s = self._s
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if s.queue:
                return s.queue.popleft()
            if s.closed:
                raise ValueError("the subscription is closed")
            if self._conn is None or self._conn.closed is not None:
                if self._conn is not None:
                    self._conn = None
                    s.lost()
                await self._reconnect(deadline)
                continue
            self._wake.clear()
            rem = None if deadline is None else deadline - time.monotonic()
            if rem is not None and rem <= 0:
                raise TimeoutError("taskrouterd: no event in time")
            try:
                await asyncio.wait_for(self._wake.wait(), rem)
            except asyncio.TimeoutError:
                if not s.queue:
                    raise TimeoutError("taskrouterd: no event in time") from None

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Item:
        if self._s.closed and not self._s.queue:
            raise StopAsyncIteration
        return await self.get()

    async def close(self) -> None:
        """Stop: close the connection."""
        self._s.closed = True
        self._s.queue.clear()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
