#!/usr/bin/env python3
"""Tests of the taskrouter Python package (stdlib unittest).

The mapping and framing tests need nothing; the others run taskrouterd against
taskrouter-sim (harness.py, binaries from TR_SIM and TR_DAEMON, which meson sets): calls,
the Worker side (accepting a reservation the simulator created), every error class the
simulator can provoke, subscriptions with resume and gaps, and a daemon restart under a
blocking and an asyncio subscription. Nothing sleeps to synchronise: each wait is for an
event, a notification or a condition, with a deadline.
"""

import asyncio
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the package, from the source tree
sys.path.insert(0, HERE)

import taskrouter  # noqa: E402
import taskrouter.aio  # noqa: E402
from taskrouter import _wire  # noqa: E402
from harness import WAIT, Harness, await_for, wait_for  # noqa: E402

H = None  # the shared simulator + daemon of the Daemon and Aio tests


def setUpModule():
    global H
    H = Harness(["--rest-timeout-ms", "4000"]).start()


def tearDownModule():
    if H is not None:
        rc = H.close()
        if rc != 0:
            raise RuntimeError(f"taskrouterd exited with status {rc}")


def new_task(h, **body):
    """A task routed to alice by the simulator: (task sid, reservation sid)."""
    r = h.sim_ok("/sim/tasks", dict({"worker": "alice"}, **body))
    return r["task"], r["reservation"]


def about(sid, name=None):
    """A predicate: an event of that task (and name)."""
    return lambda e: not e.is_gap and e.task_sid == sid and (name is None or e.name == name)


# ---------------------------------------------------------------------------- no daemon

class ErrorMapping(unittest.TestCase):
    def test_every_code_of_protocol_md(self):
        table = {
            -32700: taskrouter.ParseError, -32600: taskrouter.InvalidRequestError,
            -32601: taskrouter.MethodNotFoundError, -32602: taskrouter.InvalidParamsError,
            -32603: taskrouter.InternalError, -32001: taskrouter.NotFoundError,
            -32002: taskrouter.NotConnectedError, -32003: taskrouter.UpstreamError,
            -32004: taskrouter.VersionConflictError,
            -32005: taskrouter.UpstreamTimeoutError, -32006: taskrouter.RateLimitedError,
            -32007: taskrouter.TooManyRequestsError, -32008: taskrouter.OverloadedError,
            -32009: taskrouter.TokenExpiredError, -32010: taskrouter.RefreshPendingError,
            -32011: taskrouter.ReplayGoneError, -32012: taskrouter.InvalidStateError,
            -32013: taskrouter.NetworkError,
        }
        self.assertEqual(set(table), set(taskrouter.ERROR_CLASSES))
        for code, cls in table.items():
            e = taskrouter.errors.error_from_response(
                {"code": code, "message": "m", "data": {"x": 1}}, "task.get")
            self.assertIs(type(e), cls)
            self.assertIsInstance(e, taskrouter.RpcError)
            self.assertEqual((e.code, e.message, e.data, e.method),
                             (code, "m", {"x": 1}, "task.get"))
            self.assertEqual(isinstance(e, taskrouter.ServerError), code > -32100)

    def test_unknown_codes(self):
        e = taskrouter.errors.error_from_response({"code": -32050, "message": "new"})
        self.assertIs(type(e), taskrouter.ServerError)
        e = taskrouter.errors.error_from_response({"code": 7, "message": "app"})
        self.assertIs(type(e), taskrouter.RpcError)
        with self.assertRaises(taskrouter.ProtocolError):
            taskrouter.errors.error_from_response({"code": "x"})

    def test_data_shortcuts(self):
        e = taskrouter.errors.error_from_response({"code": -32004, "message": "c", "data": {
            "httpStatus": 412, "twilioCode": 20001, "message": "m", "currentVersion": "7"}})
        self.assertIsInstance(e, taskrouter.UpstreamError)
        self.assertEqual((e.http_status, e.twilio_code, e.upstream_message,
                          e.current_version), (412, 20001, "m", "7"))
        e = taskrouter.errors.error_from_response({"code": -32602, "message": "p"})
        self.assertIsNone(e.param)


class Wire(unittest.TestCase):
    def test_socket_discovery(self):
        saved = {k: os.environ.get(k) for k in ("TASKROUTERD_SOCKET", "XDG_RUNTIME_DIR")}
        try:
            os.environ["TASKROUTERD_SOCKET"] = "/x/s"
            os.environ["XDG_RUNTIME_DIR"] = "/run/user/9"
            self.assertEqual(taskrouter.default_socket_path(), "/x/s")
            self.assertEqual(taskrouter.Client().socket_path, "/x/s")
            self.assertEqual(taskrouter.Client("/y").socket_path, "/y")
            os.environ["TASKROUTERD_SOCKET"] = ""
            self.assertEqual(taskrouter.default_socket_path(),
                             "/run/user/9/taskrouterd/socket")
            del os.environ["TASKROUTERD_SOCKET"]
            del os.environ["XDG_RUNTIME_DIR"]
            self.assertEqual(taskrouter.default_socket_path(), "/run/taskrouterd/socket")
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def test_frame_and_names(self):
        msg = {"jsonrpc": "2.0", "id": 1, "method": "daemon.status"}
        self.assertEqual(_wire.encode(msg)[:4], b"\x00\x00\x00\x31")  # PROTOCOL.md §2
        self.assertEqual(_wire.camel("target_worker_sid"), "targetWorkerSid")
        self.assertEqual(_wire.camel("from_"), "from")
        self.assertEqual(_wire.camel_params(sid="WT1", hold_url=None, on_hold=False),
                         {"sid": "WT1", "onHold": False})
        self.assertEqual(_wire.raw_params({"a": 1}, {"from_": "x", "b": None}),
                         {"a": 1, "from": "x"})


class FakeServer:
    """A socket server of our own uid that answers with what a test scripts."""

    def __init__(self, reply):
        self.dir = tempfile.mkdtemp(prefix="trpyfake.")
        self.path = os.path.join(self.dir, "s")
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(4)
        self.reply = reply
        self.conns = []
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            c, _ = self.srv.accept()
        except OSError:
            return
        self.conns.append(c)
        c.recv(65536)
        if self.reply:
            c.sendall(self.reply)

    def close(self):
        self.srv.close()
        for c in self.conns:
            c.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


class Transport(unittest.TestCase):
    def test_client_timeout(self):
        srv = FakeServer(None)  # reads, never answers
        try:
            c = taskrouter.Client(srv.path, timeout=0.3)
            with self.assertRaises(TimeoutError):
                c.daemon_status()
            c.close()
        finally:
            srv.close()

    def test_oversized_frame(self):
        srv = FakeServer(struct.pack(">I", 2 * 1024 * 1024) + b"{}")
        try:
            with taskrouter.Client(srv.path, timeout=WAIT) as c:
                with self.assertRaises(taskrouter.ProtocolError):
                    c.daemon_status()
        finally:
            srv.close()

    def test_null_id_error_fails_the_call(self):
        srv = FakeServer(_wire.encode({"jsonrpc": "2.0", "id": None, "error": {
            "code": -32008, "message": "overloaded", "data": {"limit": 1}}}))
        try:
            with taskrouter.Client(srv.path, timeout=WAIT) as c:
                with self.assertRaises(taskrouter.OverloadedError):
                    c.daemon_status()
        finally:
            srv.close()

    def test_no_daemon(self):
        with self.assertRaises(FileNotFoundError):
            taskrouter.Client("/nonexistent/taskrouterd/socket").daemon_status()


# ---------------------------------------------------------------------------- the daemon

class Daemon(unittest.TestCase):
    def setUp(self):
        self.c = taskrouter.Client(H.socket_path, timeout=WAIT)

    def tearDown(self):
        self.c.close()

    def test_status_describe_and_raw_call(self):
        st = self.c.daemon_status()
        self.assertEqual(st["state"], "ready")
        self.assertTrue(st["epoch"])
        d = self.c.rpc_describe()
        names = {m["name"] for m in d["methods"]}
        for m in ("task.wrapUp", "reservation.accept", "worker.setActivity", "channel.list"):
            self.assertIn(m, names)
        self.assertIn("reservationCreated", d["events"])
        self.assertEqual(self.c.call("daemon.status")["epoch"], st["epoch"])
        self.assertIn("activities", self.c.call("activity.list", {}))

    def test_task_methods_and_subscribe(self):
        with self.c.subscribe() as sub:
            self.assertEqual(sub.epoch, self.c.daemon_status()["epoch"])
            task, res = new_task(H, attributes={"customer": "+15005550006"})
            ev, _ = wait_for(sub, about(task, "reservationCreated"))
            self.assertIsInstance(ev, taskrouter.Event)
            self.assertEqual(ev.reservation_sid, res)
            self.assertEqual(ev.task["attributes"], {"customer": "+15005550006"})
            self.assertEqual(ev.epoch, sub.epoch)
            self.assertEqual(sub.seq, ev.seq)
            self.assertEqual(sub.since, ev.seq + 1)

            self.assertEqual(self.c.task_get(task)["sid"], task)
            self.assertIn(task, [t["sid"] for t in self.c.all_tasks()])
            page = self.c.task_list(limit=1)
            self.assertEqual(len(page["tasks"]), 1)
            self.assertEqual(self.c.reservation_get(res)["status"], "pending")
            self.assertIn(res, [r["sid"] for r in self.c.all_reservations("pending")])

            self.assertEqual(self.c.reservation_accept(res)["status"], "accepted")
            wait_for(sub, about(task, "reservationAccepted"))
            t = self.c.task_set_attributes(task, {"case": "CS-1"})
            self.assertEqual(t["attributes"], {"case": "CS-1"})
            ev, _ = wait_for(sub, about(task, "updated"))
            self.assertEqual(ev.task["attributes"], {"case": "CS-1"})
            self.assertEqual(self.c.task_fetch_latest_version(task)["sid"], task)
            self.assertEqual(self.c.task_wrap_up(task, "call ended")["wireStatus"], "wrapping")
            wait_for(sub, about(task, "wrapup"))
            self.assertEqual(self.c.task_complete(task, "done")["wireStatus"], "completed")
            wait_for(sub, about(task, "completed"))

    def test_worker_side(self):
        w = self.c.worker_get()
        self.assertEqual(w["name"], "alice")
        acts = self.c.activity_list()["activities"]
        self.assertIn("Available", [a["name"] for a in acts])
        self.assertTrue(self.c.channel_list()["channels"])
        w2 = self.c.worker_set_attributes({"skills": ["fr"]})
        self.assertEqual(w2["attributes"], {"skills": ["fr"]})
        self.assertEqual(self.c.worker_fetch_latest_version()["attributes"], {"skills": ["fr"]})

        with self.c.subscribe(events=["reservationCreated", "reservationAccepted",
                                      "activityUpdated"]) as sub:
            task, res = new_task(H)
            wait_for(sub, about(task, "reservationCreated"))
            # a task sid names the worker's live reservation for it
            r = self.c.reservation_accept(task)
            self.assertEqual((r["sid"], r["status"]), (res, "accepted"))
            wait_for(sub, about(task, "reservationAccepted"))
            self.assertEqual(self.c.reservation_fetch_latest_version(res)["status"], "accepted")
            self.assertEqual(self.c.reservation_complete(res)["status"], "completed")
            w = self.c.worker_set_activity("Offline")
            self.assertEqual(w["activityName"], "Offline")
            wait_for(sub, lambda e: e.name == "activityUpdated"
                     and e.worker["activityName"] == "Offline")
            self.assertEqual(self.c.worker_set_activity("Available")["activityName"],
                             "Available")

    def test_errors_local(self):
        with self.assertRaises(taskrouter.NotFoundError) as cm:
            self.c.task_get("WTnosuchtask")
        self.assertEqual((cm.exception.code, cm.exception.sid), (-32001, "WTnosuchtask"))
        with self.assertRaises(taskrouter.NotFoundError):
            self.c.reservation_get("WRnosuchreservation")
        with self.assertRaises(taskrouter.MethodNotFoundError) as cm:
            self.c.call("no.such")
        self.assertEqual(cm.exception.code, -32601)
        with self.assertRaises(taskrouter.InvalidParamsError) as cm:
            self.c.call("task.get")
        self.assertEqual(cm.exception.param, "sid")
        with self.assertRaises(taskrouter.InvalidParamsError) as cm:
            self.c.subscribe(events=["task.created"])
        self.assertEqual(cm.exception.param, "events")
        self.assertIn("reservationCreated", cm.exception.values)
        with self.assertRaises(taskrouter.InvalidParamsError) as cm:
            self.c.worker_set_activity("NoSuchActivity")
        self.assertEqual(cm.exception.param, "activity")
        with self.assertRaises(taskrouter.InvalidParamsError):
            self.c.call("reservation.conference", sid="WR1", bogus=True)

    def test_errors_upstream(self):
        with self.c.subscribe(events=["reservationCreated"]) as sub:
            task, res = new_task(H)
            wait_for(sub, about(task))
        self.c.reservation_accept(res)
        # TaskRouter's own rule: accept needs a pending reservation
        with self.assertRaises(taskrouter.UpstreamError) as cm:
            self.c.reservation_accept(res)
        self.assertEqual((cm.exception.code, cm.exception.http_status), (-32003, 400))
        # a change the daemon has not heard of: If-Match fails
        H.sim_ok(f"/sim/tasks/{task}/update", {"attributes": {"v": 2}, "silent": True})
        with self.assertRaises(taskrouter.VersionConflictError) as cm:
            self.c.task_set_attributes(task, {"v": 3})
        self.assertEqual(cm.exception.http_status, 412)
        self.assertEqual(self.c.task_get(task)["version"], cm.exception.current_version)
        self.assertEqual(self.c.task_set_attributes(task, {"v": 3})["attributes"], {"v": 3})
        H.sim_ok("/sim/faults/rest", {"count": 1, "status": 503, "match": task})
        with self.assertRaises(taskrouter.UpstreamError) as cm:
            self.c.task_set_attributes(task, {"v": 4})
        self.assertEqual(cm.exception.http_status, 503)
        H.sim_ok("/sim/faults/rest", {"count": 1, "status": 429, "match": task})
        with self.assertRaises(taskrouter.RateLimitedError):
            self.c.task_set_attributes(task, {"v": 4})
        # the daemon's --rest-timeout-ms is 4 s: a reply 8 s late is a -32005
        H.sim_ok("/sim/faults/rest", {"count": 1, "status": 500, "hang_ms": 8000,
                                      "match": task})
        with self.assertRaises(taskrouter.UpstreamTimeoutError):
            self.c.task_set_attributes(task, {"v": 5})
        with self.assertRaises(taskrouter.InvalidStateError):
            self.c.task_cancel_transfer(task)
        self.c.task_complete(task, "done")

    def test_errors_session(self):
        """-32002 while the upstream session is down, -32009 after the token expired, and
        daemon_update_token to recover."""
        with self.c.subscribe() as sub:
            task, res = new_task(H)
            wait_for(sub, about(task, "reservationCreated"))
            self.c.reservation_accept(res)
            try:
                H.sim_ok("/sim/faults/refuse-ws", {"refuse": True})
                H.sim_ok("/sim/faults/drop", {"close": True, "code": 4000, "reason": "test"})
                wait_for(sub, lambda e: e.name == "disconnected")
                with self.assertRaises(taskrouter.NotConnectedError) as cm:
                    self.c.task_set_attributes(task, {"x": 1})
                self.assertEqual(cm.exception.code, -32002)
            finally:
                H.sim_ok("/sim/faults/refuse-ws", {"refuse": False})
            wait_for(sub, lambda e: e.name == "ready")

            H.sim_ok("/sim/faults/expire-token", {"worker": "alice"})
            wait_for(sub, lambda e: e.name == "tokenExpired")
            with self.assertRaises(taskrouter.TokenExpiredError):
                self.c.task_set_attributes(task, {"x": 2})
            token = H.sim_ok("/sim/tokens", {"worker": "alice"})["token"]
            r = self.c.daemon_update_token(token)
            self.assertTrue(r["ok"])
            wait_for(sub, lambda e: e.name == "ready")
            self.c.task_complete(task, "done")

    def test_resume_and_gaps_without_restart(self):
        with self.c.subscribe(events=["reservationCreated"]) as sub:
            t1, _ = new_task(H)
            wait_for(sub, about(t1))
            since, epoch = sub.since, sub.epoch
        t2, _ = new_task(H)  # published while nobody listens
        with self.c.subscribe(events=["reservationCreated"], since=since, epoch=epoch) as s2:
            first = s2.get(timeout=WAIT)  # replayed: no gap, nothing lost
            self.assertFalse(first.is_gap, first)
            self.assertEqual(first.task_sid, t2)
            self.assertEqual(first.seq, s2.seq)
        with self.c.subscribe(since=since) as s3:  # since without epoch: never trusted
            g = s3.get(timeout=WAIT)
            self.assertIsInstance(g, taskrouter.Gap)
            self.assertEqual((g.reason, g.since, g.name), ("no-epoch", since, "gap"))
            self.assertIn(t2, [t["sid"] for t in g.tasks])
            self.assertEqual(g.tasks, s3.tasks)
        with self.c.subscribe(since=10 ** 9, epoch=epoch) as s4:
            g = s4.get(timeout=WAIT)
            self.assertEqual((g.reason, g.previous_epoch, g.epoch), ("future", epoch, epoch))
        with self.c.subscribe(tasks=[t2]) as s5:  # the snapshot follows the filter
            self.assertEqual([t["sid"] for t in s5.tasks], [t2])
        for t in (t1, t2):
            self.c.reservation_accept(t)
            self.c.task_complete(t, "")

    def test_client_survives_closed_connection(self):
        self.c.daemon_status()
        self.c._conn.sock.shutdown(socket.SHUT_RDWR)  # as if the daemon had gone
        self.assertEqual(self.c.daemon_status()["state"], "ready")


class Example(unittest.TestCase):
    def test_notify_new_tasks(self):
        """examples/notify_new_tasks.py --accept prints a new task and accepts it."""
        import select
        import subprocess
        ex = os.path.join(os.path.dirname(HERE), "examples", "notify_new_tasks.py")
        env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE), PYTHONUNBUFFERED="1")
        c = taskrouter.Client(H.socket_path, timeout=WAIT)
        sub = c.subscribe(events=["reservationAccepted"])
        p = subprocess.Popen([sys.executable, ex, "--socket", H.socket_path, "--accept"],
                             stdout=subprocess.PIPE, env=env)
        try:
            # it is listening once its subscription shows in daemon.status
            n = c.daemon_status()["subscriptions"]
            deadline = time.monotonic() + WAIT
            while c.daemon_status()["subscriptions"] <= n:
                self.assertIsNone(p.poll())
                self.assertLess(time.monotonic(), deadline, "the example did not subscribe")
                select.select([p.stdout], [], [], 0.05)  # a bounded wait between looks
            task, _ = new_task(H, attributes={"customer": "+15005550007"})
            out = b""
            while task.encode() not in out:
                rem = deadline - time.monotonic()
                self.assertTrue(rem > 0 and select.select([p.stdout], [], [], rem)[0],
                                "the example printed nothing")
                out += os.read(p.stdout.fileno(), 4096)
            self.assertIn(b"+15005550007", out)
            wait_for(sub, about(task, "reservationAccepted"))
            c.task_complete(task, "")
        finally:
            p.terminate()
            p.wait(WAIT)
            p.stdout.close()
            sub.close()
            c.close()


class Aio(unittest.TestCase):
    def test_calls_errors_and_subscribe(self):
        async def main():
            async with taskrouter.aio.Client(H.socket_path, timeout=WAIT) as c:
                st, d = await asyncio.gather(c.daemon_status(), c.rpc_describe())
                self.assertEqual(st["state"], "ready")
                self.assertTrue(d["methods"])
                with self.assertRaises(taskrouter.NotFoundError):
                    await c.task_get("WTnosuchtask")
                with self.assertRaises(taskrouter.InvalidParamsError):
                    await c.subscribe(events=["nope"])
                async with await c.subscribe(events=["reservationCreated",
                                                     "reservationAccepted"]) as sub:
                    task, res = new_task(H)
                    ev, _ = await await_for(sub, about(task, "reservationCreated"))
                    self.assertEqual(ev.reservation_sid, res)
                    r = await c.reservation_accept(res)
                    self.assertEqual(r["status"], "accepted")
                    await await_for(sub, about(task, "reservationAccepted"))
                    self.assertIn(task, [t["sid"] for t in await c.all_tasks()])
                    t = await c.task_complete(task, "done")
                    self.assertEqual(t["wireStatus"], "completed")
        asyncio.run(main())


class ScriptedServer:
    """Answers each events.subscribe it reads, on any connection, with the next scripted
    bytes (a reply, maybe with events in the same write); other requests get no answer."""

    def __init__(self, script):
        self.dir = tempfile.mkdtemp(prefix="trpyscript.")
        self.path = os.path.join(self.dir, "s")
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(4)
        self.script = list(script)
        self.requests = []
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _frame(c):
        data = b""
        while len(data) < 4:
            b = c.recv(4 - len(data))
            if not b:
                return None
            data += b
        n, body = struct.unpack(">I", data)[0], b""
        while len(body) < n:
            b = c.recv(n - len(body))
            if not b:
                return None
            body += b
        return json.loads(body)

    def _serve(self, c):
        try:
            while True:
                req = self._frame(c)
                if req is None:
                    return
                if req.get("method") != "events.subscribe":
                    continue
                with self.lock:
                    self.requests.append(req)
                    reply = self.script.pop(0) if self.script else None
                if reply:
                    c.sendall(reply(req["id"]))
        except OSError:
            return

    def close(self):
        self.srv.close()
        for c in self.conns:
            c.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


def _event(seq, epoch="e2"):
    return _wire.encode({"jsonrpc": "2.0", "method": "event", "params": {
        "subscription": "s1", "epoch": epoch, "seq": seq, "event": "updated",
        "taskSid": "WT1", "task": {"sid": "WT1"}}})


def _subscribed(msg_id, seq, epoch="e2"):
    return _wire.encode({"jsonrpc": "2.0", "id": msg_id, "result": {
        "subscription": "s1", "epoch": epoch, "seq": seq, "tasks": [], "next": None}})


class AioOrder(unittest.TestCase):
    """An event that arrives in the same read as the subscribe reply comes after it (and after
    the gap a refused resume reports), never before; the position follows it."""

    def run_script(self, script, **kw):
        srv = ScriptedServer(script)

        async def main():
            async with taskrouter.aio.Client(srv.path, timeout=WAIT) as c:
                async with await c.subscribe(**kw) as sub:
                    first = await sub.get(timeout=WAIT)
                    second = None if not kw.get("since") else await sub.get(timeout=WAIT)
                    return first, second, sub.seq, sub.since
        try:
            return asyncio.run(main()), srv.requests
        finally:
            srv.close()

    def test_fresh_subscribe(self):
        (first, _, seq, since), _ = self.run_script(
            [lambda i: _subscribed(i, 10) + _event(11)])
        self.assertFalse(first.is_gap)
        self.assertEqual(first["seq"], 11)
        self.assertEqual((seq, since), (11, 12))

    def test_refused_resume(self):
        gone = lambda i: _wire.encode({"jsonrpc": "2.0", "id": i, "error": {
            "code": -32011, "message": "replay gone", "data": {
                "reason": "epoch", "epoch": "e2", "oldestSeq": 1, "currentSeq": 10}}})
        (first, second, seq, since), reqs = self.run_script(
            [gone, lambda i: _subscribed(i, 10) + _event(11)], since=5, epoch="e1")
        self.assertTrue(first.is_gap)
        self.assertEqual(first.since, 5)
        self.assertFalse(second.is_gap)
        self.assertEqual(second["seq"], 11)
        self.assertEqual((seq, since), (11, 12))
        self.assertEqual(reqs[0]["params"].get("since"), 5)
        self.assertNotIn("since", reqs[1]["params"])


class Restart(unittest.TestCase):
    """A daemon restart under a blocking and an asyncio subscription: each reconnects,
    reports the gap (reason "epoch") with the current tasks, and goes on."""

    def test_restart(self):
        h = Harness().start()
        try:
            self._run(h)
        except BaseException:
            h.failed = True
            raise
        finally:
            self.assertEqual(h.close(), 0)

    def _run(self, h):
        c = taskrouter.Client(h.socket_path, timeout=WAIT)
        sub = c.subscribe()
        task, res = new_task(h)
        wait_for(sub, about(task, "reservationCreated"))
        old_epoch = c.daemon_status()["epoch"]

        async def aio_part(started, restarted):
            async with taskrouter.aio.Client(h.socket_path, timeout=WAIT) as ac:
                asub = await ac.subscribe(tasks=[task])
                started.set()
                ok = await asyncio.get_running_loop().run_in_executor(
                    None, restarted.wait, WAIT)
                self.assertTrue(ok, "the daemon was not restarted")
                g, _ = await await_for(asub, lambda e: e.is_gap)
                self.assertEqual((g.reason, g.previous_epoch), ("epoch", old_epoch))
                # the task is either in the re-list or comes back from the resync
                if task not in [t["sid"] for t in g.tasks]:
                    await await_for(asub, about(task))
                self.assertNotEqual(asub.epoch, old_epoch)
                await asub.close()
                return g

        started, restarted = threading.Event(), threading.Event()
        result = {}

        def aio_thread():
            try:
                result["gap"] = asyncio.run(aio_part(started, restarted))
            except BaseException as e:  # reported below
                result["error"] = e
                started.set()

        th = threading.Thread(target=aio_thread)
        th.start()
        try:
            self.assertTrue(started.wait(WAIT))
            self.assertEqual(h.stop_daemon(), 0)
            h.start_daemon()
        finally:
            restarted.set()

        g, before = wait_for(sub, lambda e: e.is_gap)
        self.assertTrue(all(not e.is_gap for e in before))
        self.assertEqual(g.reason, "epoch")
        self.assertEqual(g.previous_epoch, old_epoch)
        self.assertNotEqual(g.epoch, old_epoch)
        self.assertEqual(sub.epoch, g.epoch)
        if task not in [t["sid"] for t in g.tasks]:
            wait_for(sub, about(task))
        # the calls' connection follows the restart too
        self.assertEqual(c.daemon_status()["epoch"], g.epoch)
        # and the stream goes on after the gap
        t2, r2 = new_task(h)
        ev, _ = wait_for(sub, about(t2, "reservationCreated"))
        self.assertEqual(ev.epoch, g.epoch)
        self.assertEqual(c.reservation_accept(r2)["status"], "accepted")
        sub.close()
        c.close()
        th.join(WAIT)
        self.assertFalse(th.is_alive())
        if "error" in result:
            raise result["error"]
        self.assertEqual(result["gap"].reason, "epoch")


if __name__ == "__main__":
    unittest.main(verbosity=2)
