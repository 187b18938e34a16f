"""Starts taskrouter-sim and taskrouterd for the tests, on loopback in a temporary
directory: the simulator on an ephemeral port (its tokens in the directory), the daemon with
alice's token file, its socket in DIR/run/socket and NOTIFY_SOCKET pointing at a datagram
socket of ours, so that "listening" (READY=1) and "ready" (STATUS=ready) are waited for
from the daemon's own notifications, never by sleeping. The binaries come from TR_SIM and
TR_DAEMON (set by meson)."""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

#: Generous, for loaded CI machines: what a test waits at most for a condition.
WAIT = float(os.environ.get("TR_PY_WAIT", "60"))


def binary(var):
    path = os.environ.get(var)
    if not path:
        raise RuntimeError(f"{var} is not set (run the test through meson)")
    return path


class Harness:
    def __init__(self, daemon_args=()):
        self.dir = tempfile.mkdtemp(prefix="trpy.")
        self.daemon_args = list(daemon_args)
        self.sim = None
        self.daemon = None
        self.port = None
        self.notify = None
        self.socket_path = os.path.join(self.dir, "run", "socket")
        self.failed = False

    # ------------------------------------------------------------ simulator

    def start_sim(self):
        log = open(os.path.join(self.dir, "sim.log"), "ab")
        self.sim = subprocess.Popen(
            [binary("TR_SIM"), "--listen", "127.0.0.1:0", "--token-dir", self.dir,
             "--verbose"], stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + WAIT
        line = b""
        while not line.endswith(b"\n"):
            rem = deadline - time.monotonic()
            if rem <= 0 or not select.select([self.sim.stdout], [], [], rem)[0]:
                raise RuntimeError("taskrouter-sim did not say it listens")
            b = os.read(self.sim.stdout.fileno(), 1)
            if not b:
                raise RuntimeError("taskrouter-sim exited: " + self.log("sim.log"))
            line += b
        self.port = int(line.decode().strip().rsplit(":", 1)[1])

    def sim_post(self, path, body=None):
        """A control call; returns (status, decoded JSON body)."""
        data = json.dumps(body if body is not None else {}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def sim_ok(self, path, body=None):
        st, js = self.sim_post(path, body)
        if st != 200:
            raise AssertionError(f"POST {path}: {st} {js}")
        return js

    # ------------------------------------------------------------ daemon

    def start_daemon(self, wait_ready=True):
        npath = os.path.join(self.dir, "notify")
        if self.notify is not None:
            self.notify.close()
        if os.path.exists(npath):
            os.unlink(npath)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(npath)
        env = dict(os.environ, NOTIFY_SOCKET=npath)
        log = open(os.path.join(self.dir, "daemon.log"), "ab")
        api = f"127.0.0.1:{self.port}/v1/wschannels"
        self.daemon = subprocess.Popen(
            [binary("TR_DAEMON"), "--websocket-url", "ws://" + api,
             "--eventbridge-url", "http://" + api,
             "--token-file", os.path.join(self.dir, "alice.token"),
             "--socket", self.socket_path, "--log-level", "debug"] + self.daemon_args,
            env=env, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.wait_notify("READY=1")
        if wait_ready:
            self.wait_notify("STATUS=ready")

    def wait_notify(self, what):
        """Wait for a notification line `what` from the daemon (a deadline, no sleep)."""
        deadline = time.monotonic() + WAIT
        while True:
            rem = deadline - time.monotonic()
            if rem <= 0:
                raise RuntimeError(f"taskrouterd did not notify {what}: "
                                   + self.log("daemon.log"))
            if self.daemon.poll() is not None:
                raise RuntimeError(f"taskrouterd exited ({self.daemon.returncode}): "
                                   + self.log("daemon.log"))
            if select.select([self.notify], [], [], min(rem, 0.5))[0]:
                msg = self.notify.recv(4096).decode(errors="replace")
                if what in msg.split("\n"):
                    return

    def stop_daemon(self):
        """SIGTERM and wait; returns the exit status."""
        if self.daemon is None:
            return 0
        self.daemon.send_signal(signal.SIGTERM)
        try:
            rc = self.daemon.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            rc = self.daemon.wait()
        self.daemon = None
        return rc

    # ------------------------------------------------------------ both

    def log(self, name, tail=4000):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return "(no log)"

    def start(self):
        try:
            self.start_sim()
            self.start_daemon()
        except BaseException:
            self.failed = True
            self.close()
            raise
        return self

    def close(self):
        rc = self.stop_daemon()
        if self.sim is not None:
            self.sim.send_signal(signal.SIGTERM)
            try:
                self.sim.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.sim.kill()
                self.sim.wait()
            self.sim.stdout.close()
            self.sim = None
        if self.notify is not None:
            self.notify.close()
            self.notify = None
        if rc not in (0, None):
            self.failed = True
            sys.stderr.write(f"# taskrouterd exited with {rc}\n")
        if self.failed:
            sys.stderr.write(f"# logs kept in {self.dir}\n# daemon.log:\n"
                             + self.log("daemon.log") + "\n")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def wait_for(sub, pred, timeout=WAIT):
    """Take items from a (blocking) subscription until pred(item); returns that item and the
    items before it. Raises AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        rem = deadline - time.monotonic()
        if rem <= 0:
            raise AssertionError(f"no matching event within {timeout} s; saw {seen!r}")
        try:
            item = sub.get(timeout=rem)
        except TimeoutError:
            continue
        if pred(item):
            return item, seen
        seen.append(item)


async def await_for(sub, pred, timeout=WAIT):
    """wait_for for an asyncio subscription."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        rem = deadline - time.monotonic()
        if rem <= 0:
            raise AssertionError(f"no matching event within {timeout} s; saw {seen!r}")
        try:
            item = await sub.get(timeout=rem)
        except TimeoutError:
            continue
        if pred(item):
            return item, seen
        seen.append(item)
