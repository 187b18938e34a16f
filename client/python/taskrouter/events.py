"""What a subscription yields: :class:`Event` for each event of the daemon, and
:class:`Gap` where events were lost."""

from typing import Any, Dict, List, Optional

__all__ = ["Event", "Gap"]


class Event(dict):
    """One event (doc/PROTOCOL.md "Events"): the notification's ``params`` as a dict,
    with shortcuts for the common members.

    ``ev["task"]``, ``ev.get("transfer")`` and every other member stay available as in a
    dict; the properties below return None when the member is absent.
    """

    #: Always False for an Event (True for a :class:`Gap`), so a loop can test either.
    is_gap = False

    @property
    def name(self) -> str:
        """The event's name: ``reservationCreated``, ``updated``, ``completed``, ``ready``..."""
        return self.get("event", "")

    @property
    def seq(self) -> int:
        """The daemon-wide sequence number of the event, within its epoch."""
        return self.get("seq", 0)

    @property
    def epoch(self) -> Optional[str]:
        """The daemon run that numbered the event."""
        return self.get("epoch")

    @property
    def task_sid(self) -> Optional[str]:
        return self.get("taskSid")

    @property
    def reservation_sid(self) -> Optional[str]:
        return self.get("reservationSid")

    @property
    def task(self) -> Optional[Dict[str, Any]]:
        """The Task after the change (task and reservation events)."""
        return self.get("task")

    @property
    def reservation(self) -> Optional[Dict[str, Any]]:
        """The Reservation after the change (``reservation*`` events)."""
        return self.get("reservation")

    @property
    def worker(self) -> Optional[Dict[str, Any]]:
        """The Worker after the change (``activityUpdated``, ``attributesUpdated``)."""
        return self.get("worker")

    @property
    def resync(self) -> bool:
        """True when the event was produced by a resync after an upstream reconnect."""
        return bool(self.get("resync"))

    def __repr__(self) -> str:
        return (f"Event({self.name!r}, seq={self.seq!r}, task_sid={self.task_sid!r}, "
                f"epoch={self.epoch!r})")


class Gap:
    """Events were lost: the subscription could not resume where it stopped (the daemon
    restarted, or the events are no longer kept), so it subscribed again from now.

    Whatever the reader knew about tasks is stale: ``tasks`` is the complete current list
    of live tasks (within the subscription's ``tasks`` filter) and replaces it. The events
    after the gap follow in the same iteration.

    Attributes:
        reason (str): why, from the daemon: ``epoch`` (the daemon restarted), ``no-epoch``
            (``since`` was given without ``epoch``), ``expired`` (no longer kept) or
            ``future`` (``since`` is ahead of the daemon).
        since (int): the seq the subscription asked to resume from.
        previous_epoch (str or None): the epoch that ``since`` belonged to.
        epoch (str): the daemon's current epoch.
        seq (int): the new subscription's position: the next event has ``seq + 1``.
        tasks (list of dict): the current tasks (every page), the re-list.
        data (dict): the ``data`` of the daemon's -32011 *replay gone* error.
    """

    #: So that ``ev.name == "reservationCreated"`` tests are simply false for a gap.
    name = "gap"
    is_gap = True

    def __init__(self, reason: Optional[str], since: int, previous_epoch: Optional[str],
                 epoch: Optional[str], seq: int, tasks: List[Dict[str, Any]],
                 data: Any) -> None:
        self.reason = reason
        self.since = since
        self.previous_epoch = previous_epoch
        self.epoch = epoch
        self.seq = seq
        self.tasks = tasks
        self.data = data

    def __repr__(self) -> str:
        return (f"Gap(reason={self.reason!r}, since={self.since!r}, "
                f"previous_epoch={self.previous_epoch!r}, epoch={self.epoch!r}, "
                f"seq={self.seq!r}, tasks=<{len(self.tasks)} tasks>)")
