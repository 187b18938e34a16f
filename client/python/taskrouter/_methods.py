"""The convenience methods, shared by :class:`taskrouter.Client` and
:class:`taskrouter.aio.Client`.

Each one calls one method of doc/PROTOCOL.md and returns its result unchanged (a dict: a
Task, a Reservation, a Worker, or the method's own object). Naming rule: the RPC method
``group.camelName`` is the Python method ``group_snake_name`` (``task.wrapUp`` ->
``task_wrap_up``), and each keyword argument in snake_case is sent in camelCase
(``target_worker_sid`` -> ``targetWorkerSid``); ``from_`` is sent as ``from``. Arguments
left at None are not sent. On the asyncio client every method returns a coroutine.
"""

import datetime
from typing import Any, Dict, Optional, Union

from ._wire import camel_params

Time = Union[str, int, datetime.datetime]


def _time(t: Optional[Time]) -> Union[str, int, None]:
    """A datetime as epoch seconds (naive ones are local time); str and int as given."""
    if isinstance(t, datetime.datetime):
        return int(t.timestamp())
    return t


class Methods:
    """Mixin: needs ``self._invoke(method, params)``."""

    def _invoke(self, method: str, params: Optional[Dict[str, Any]]) -> Any:
        raise NotImplementedError

    def _m(self, method: str, **kwargs: Any) -> Any:
        return self._invoke(method, camel_params(**kwargs))

    # ---------------------------------------------------------------- Task methods

    def task_list(self, status: Optional[str] = None, *, after: Optional[str] = None,
                  limit: Optional[int] = None) -> Any:
        """``task.list``: one page of the live tasks, ``{"tasks": [Task], "next": sid or
        None}``. ``status`` is a derived or wire status. See also :meth:`all_tasks`."""
        return self._m("task.list", status=status, after=after, limit=limit)

    def task_get(self, sid: str) -> Any:
        """``task.get``: the cached Task."""
        return self._m("task.get", sid=sid)

    def task_complete(self, sid: str, reason: str = "") -> Any:
        """``task.complete``: complete the task; returns the updated Task."""
        return self._m("task.complete", sid=sid, reason=reason)

    def task_wrap_up(self, sid: str, reason: Optional[str] = None) -> Any:
        """``task.wrapUp``: move the task to wrapping."""
        return self._m("task.wrapUp", sid=sid, reason=reason)

    def task_set_attributes(self, sid: str, attributes: Dict[str, Any]) -> Any:
        """``task.setAttributes``: replace the task's attributes (an object)."""
        return self._m("task.setAttributes", sid=sid, attributes=attributes)

    def task_set_virtual_start_time(self, sid: str, time: Time) -> Any:
        """``task.setVirtualStartTime``: ``time`` is an RFC 3339 string, epoch seconds or
        a datetime."""
        return self._m("task.setVirtualStartTime", sid=sid, time=_time(time))

    def task_fetch_latest_version(self, sid: str) -> Any:
        """``task.fetchLatestVersion``: fetch the task from TaskRouter."""
        return self._m("task.fetchLatestVersion", sid=sid)

    def task_hold(self, sid: str, target_worker_sid: str, on_hold: bool, *,
                  hold_url: Optional[str] = None, hold_method: Optional[str] = None) -> Any:
        """``task.hold``: put a worker participant on hold or take it off."""
        return self._m("task.hold", sid=sid, target_worker_sid=target_worker_sid,
                       on_hold=on_hold, hold_url=hold_url, hold_method=hold_method)

    def task_kick(self, sid: str, worker_sid: str) -> Any:
        """``task.kick``: remove a worker participant."""
        return self._m("task.kick", sid=sid, worker_sid=worker_sid)

    def task_update_participant(self, sid: str, *, hold: Optional[bool] = None,
                                hold_url: Optional[str] = None,
                                hold_method: Optional[str] = None) -> Any:
        """``task.updateParticipant``: the customer participant."""
        return self._m("task.updateParticipant", sid=sid, hold=hold, hold_url=hold_url,
                       hold_method=hold_method)

    def task_transfer(self, sid: str, to: str, *, mode: Optional[str] = None,
                      priority: Optional[int] = None,
                      attributes: Optional[Dict[str, Any]] = None) -> Any:
        """``task.transfer``: to a worker (``WK…``) or a queue (``WQ…``); ``mode`` is
        ``"WARM"`` or ``"COLD"``."""
        return self._m("task.transfer", sid=sid, to=to, mode=mode, priority=priority,
                       attributes=attributes)

    def task_cancel_transfer(self, sid: str) -> Any:
        """``task.cancelTransfer``: cancel the task's outgoing transfer."""
        return self._m("task.cancelTransfer", sid=sid)

    # ---------------------------------------------------------------- Reservations
    # Wherever a reservation sid is taken, a task sid (WT…) names this worker's live
    # reservation for that task.

    def reservation_list(self, status: Optional[str] = None, *, after: Optional[str] = None,
                         limit: Optional[int] = None) -> Any:
        """``reservation.list``: one page, ``{"reservations": [...], "next": ...}``.
        See also :meth:`all_reservations`."""
        return self._m("reservation.list", status=status, after=after, limit=limit)

    def reservation_get(self, sid: str) -> Any:
        """``reservation.get``: the Reservation."""
        return self._m("reservation.get", sid=sid)

    def reservation_accept(self, sid: str) -> Any:
        """``reservation.accept``."""
        return self._m("reservation.accept", sid=sid)

    def reservation_reject(self, sid: str, *, activity_sid: Optional[str] = None) -> Any:
        """``reservation.reject``; with ``activity_sid`` the worker moves to that activity."""
        return self._m("reservation.reject", sid=sid, activity_sid=activity_sid)

    def reservation_wrap(self, sid: str) -> Any:
        """``reservation.wrap``."""
        return self._m("reservation.wrap", sid=sid)

    def reservation_complete(self, sid: str) -> Any:
        """``reservation.complete``."""
        return self._m("reservation.complete", sid=sid)

    def reservation_call(self, sid: str, from_: str, url: str, *,
                         accept: Optional[bool] = None, record: Optional[str] = None,
                         status_callback_url: Optional[str] = None,
                         to: Optional[str] = None, timeout: Optional[int] = None) -> Any:
        """``reservation.call``: the call instruction (``from_`` is sent as ``from``)."""
        return self._m("reservation.call", sid=sid, from_=from_, url=url, accept=accept,
                       record=record, status_callback_url=status_callback_url, to=to,
                       timeout=timeout)

    def reservation_dequeue(self, sid: str, *, from_: Optional[str] = None,
                            to: Optional[str] = None,
                            post_work_activity_sid: Optional[str] = None,
                            record: Optional[str] = None,
                            status_callback_url: Optional[str] = None,
                            status_callback_events: Optional[str] = None,
                            timeout: Optional[int] = None) -> Any:
        """``reservation.dequeue``: the dequeue instruction."""
        return self._m("reservation.dequeue", sid=sid, from_=from_, to=to,
                       post_work_activity_sid=post_work_activity_sid, record=record,
                       status_callback_url=status_callback_url,
                       status_callback_events=status_callback_events, timeout=timeout)

    def reservation_redirect(self, sid: str, call_sid: str, url: str, *,
                             accept: Optional[bool] = None) -> Any:
        """``reservation.redirect``: the redirect instruction."""
        return self._m("reservation.redirect", sid=sid, call_sid=call_sid, url=url,
                       accept=accept)

    def reservation_conference(self, sid: str, **options: Any) -> Any:
        """``reservation.conference``: the conference instruction. ``options`` are the
        SDK's, in snake_case (``end_conference_on_exit=True``, ``from_="+1…"``,
        ``beep="false"``); they are sent in the order given."""
        return self._m("reservation.conference", sid=sid, **options)

    def reservation_update_participant(self, sid: str, *,
                                       end_conference_on_exit: Optional[bool] = None,
                                       mute: Optional[bool] = None,
                                       beep_on_exit: Optional[bool] = None) -> Any:
        """``reservation.updateParticipant``: the worker's conference leg."""
        return self._m("reservation.updateParticipant", sid=sid,
                       end_conference_on_exit=end_conference_on_exit, mute=mute,
                       beep_on_exit=beep_on_exit)

    def reservation_fetch_latest_version(self, sid: str) -> Any:
        """``reservation.fetchLatestVersion``: fetch the reservation from TaskRouter."""
        return self._m("reservation.fetchLatestVersion", sid=sid)

    # ---------------------------------------------------------------- Worker

    def worker_get(self) -> Any:
        """``worker.get``: the Worker."""
        return self._m("worker.get")

    def worker_set_attributes(self, attributes: Dict[str, Any]) -> Any:
        """``worker.setAttributes``: replace the worker's attributes."""
        return self._m("worker.setAttributes", attributes=attributes)

    def worker_fetch_latest_version(self) -> Any:
        """``worker.fetchLatestVersion``: fetch the worker from TaskRouter."""
        return self._m("worker.fetchLatestVersion")

    def worker_set_activity(self, activity: str, *,
                            reject_pending_reservations: Optional[bool] = None) -> Any:
        """``worker.setActivity``: ``activity`` is a ``WA…`` sid or an activity's name."""
        return self._m("worker.setActivity", activity=activity,
                       reject_pending_reservations=reject_pending_reservations)

    def worker_create_task(self, to: str, from_: str, workflow_sid: str,
                           task_queue_sid: str, *,
                           attributes: Optional[Dict[str, Any]] = None,
                           task_channel_unique_name: Optional[str] = None,
                           task_channel_sid: Optional[str] = None,
                           virtual_start_time: Optional[Time] = None) -> Any:
        """``worker.createTask``: an outbound task routed to this worker; ``{"sid"}``."""
        return self._m("worker.createTask", to=to, from_=from_, workflow_sid=workflow_sid,
                       task_queue_sid=task_queue_sid, attributes=attributes,
                       task_channel_unique_name=task_channel_unique_name,
                       task_channel_sid=task_channel_sid,
                       virtual_start_time=_time(virtual_start_time))

    def activity_list(self) -> Any:
        """``activity.list``: ``{"activities": [Activity]}``."""
        return self._m("activity.list")

    def channel_list(self) -> Any:
        """``channel.list``: ``{"channels": [Channel]}``."""
        return self._m("channel.list")

    # ---------------------------------------------------------------- the daemon

    def daemon_status(self) -> Any:
        """``daemon.status``: session state, epoch, seq, counters..."""
        return self._m("daemon.status")

    def daemon_update_token(self, token: str, *, switch_worker: Optional[bool] = None) -> Any:
        """``daemon.updateToken``: replace the worker token."""
        return self._m("daemon.updateToken", token=token, switch_worker=switch_worker)

    def rpc_describe(self) -> Any:
        """``rpc.describe``: every method with its parameters, every event name."""
        return self._m("rpc.describe")
