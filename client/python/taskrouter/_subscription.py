"""Where a subscription is in the event stream, shared by the blocking and the asyncio
subscriptions: the parameters of each (re)subscribe, what its result means, duplicates,
gaps and the reconnect backoff."""

import collections
import time
from typing import Any, Deque, Dict, List, Optional, Sequence, Union

from .events import Event, Gap

Item = Union[Event, Gap]

#: Reconnect backoff, as taskrouterctl watch: 0.2 s doubling up to 10 s.
BACKOFF_MIN = 0.2
BACKOFF_MAX = 10.0


class SubState:
    """The position (epoch, last seq), the queue of items not yet taken, and the backoff."""

    def __init__(self, events: Optional[Sequence[str]], tasks: Optional[Sequence[str]],
                 since: Optional[int], epoch: Optional[str],
                 give_up_after: Optional[float]) -> None:
        if isinstance(events, str) or isinstance(tasks, str):
            raise TypeError("events and tasks are lists of strings")
        self.events = list(events) if events is not None else None
        self.task_filter = list(tasks) if tasks is not None else None
        #: the seq of the last event queued (None before the first subscribe)
        self.last_seq: Optional[int] = since - 1 if since is not None else None
        self.epoch: Optional[str] = epoch
        self.resume = since is not None
        self.give_up_after = give_up_after
        self.queue: Deque[Item] = collections.deque()
        self.subscription: Optional[str] = None
        self.tasks: List[Dict[str, Any]] = []
        self.closed = False
        self.lost_at: Optional[float] = None
        self.backoff = BACKOFF_MIN
        self.next_attempt = 0.0

    # -------------------------------------------------------------- subscribe

    def subscribe_params(self) -> Dict[str, Any]:
        p: Dict[str, Any] = {}
        if self.events is not None:
            p["events"] = self.events
        if self.task_filter is not None:
            p["tasks"] = self.task_filter
        if self.resume and self.last_seq is not None:
            p["since"] = self.last_seq + 1
            if self.epoch is not None:
                p["epoch"] = self.epoch
        return p

    def fresh_params(self) -> Dict[str, Any]:
        """After a gap: the same filter, from now."""
        p = self.subscribe_params()
        p.pop("since", None)
        p.pop("epoch", None)
        return p

    def subscribed(self, result: Dict[str, Any], resumed: bool) -> None:
        """A subscribe succeeded. Resumed: replayed events (seq >= since) follow, so the
        position stays; fresh: the next event has result.seq + 1."""
        self.subscription = result.get("subscription")
        self.epoch = result.get("epoch")
        if not resumed:
            self.last_seq = result.get("seq", 0)
            self.tasks = list(result.get("tasks") or [])
        self.resume = True
        self.lost_at = None
        self.backoff = BACKOFF_MIN

    def gap(self, data: Any, result: Dict[str, Any]) -> Gap:
        """The resume was refused (-32011 with ``data``) and ``result`` is the fresh
        subscription: queue the Gap. Its ``tasks`` list is this very list, which the
        caller completes with the pages after ``result['next']``."""
        since = (self.last_seq or 0) + 1
        prev = self.epoch
        self.subscribed(result, resumed=False)
        g = Gap(data.get("reason") if isinstance(data, dict) else None, since, prev,
                self.epoch, self.last_seq or 0, self.tasks, data)
        self.queue.append(g)
        return g

    def page(self, tasks: List[Dict[str, Any]]) -> None:
        """A further page of the snapshot (task.list, which has no ``tasks`` filter)."""
        for t in tasks:
            if self.task_filter is None or t.get("sid") in self.task_filter:
                self.tasks.append(t)

    # -------------------------------------------------------------- events

    def event(self, params: Dict[str, Any]) -> None:
        """An event arrived: queue it unless it was seen already."""
        ev = Event(params)
        seq = ev.get("seq")
        if isinstance(seq, int):
            if ev.epoch == self.epoch and self.last_seq is not None and seq <= self.last_seq:
                return  # a duplicate (cannot happen with a correct daemon)
            self.last_seq = seq
        if ev.epoch:
            self.epoch = ev.epoch
        self.queue.append(ev)

    # -------------------------------------------------------------- reconnecting

    def lost(self) -> None:
        now = time.monotonic()
        if self.lost_at is None:
            self.lost_at = now
            self.next_attempt = now + self.backoff

    def failed_attempt(self) -> None:
        """A reconnect failed: schedule the next one, or give up (ConnectionError)."""
        now = time.monotonic()
        if self.lost_at is None:
            self.lost_at = now
        if self.give_up_after is not None and now - self.lost_at >= self.give_up_after:
            self.closed = True
            raise ConnectionError(
                f"taskrouterd: could not reconnect for {self.give_up_after:g} s, giving up")
        self.next_attempt = now + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)

    @property
    def since(self) -> Optional[int]:
        return self.last_seq + 1 if self.last_seq is not None else None
