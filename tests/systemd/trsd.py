"""Helpers for the systemd-level tests: TAP output, the simulator, the daemon
with or without socket activation, a NOTIFY_SOCKET listener, a framed JSON-RPC
client, and clients running as another uid. Python 3 stdlib only.

Nothing here sleeps to synchronise: every wait is poll() on a file descriptor
(pipe, socket, pidfd) bounded by a deadline.
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

DEFAULT_TIMEOUT = 20.0


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=""):
        self.n += 1
        print("%sok %d - %s" % ("" if cond else "not ", self.n, name), flush=True)
        if not cond:
            self.failed += 1
            if diag:
                self.diag(diag)
        return bool(cond)

    def skip(self, name, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, why), flush=True)

    def diag(self, text):
        for ln in str(text).splitlines():
            print("# " + ln, flush=True)

    def skip_all(self, why):
        print("1..0 # SKIP %s" % why, flush=True)
        return 0

    def done(self):
        print("1..%d" % self.n, flush=True)
        return 1 if self.failed else 0


def deadline(seconds=DEFAULT_TIMEOUT):
    return time.monotonic() + seconds


def remaining(dl):
    return max(0.0, dl - time.monotonic())


def clean_env(**extra):
    """An environment without anything that changes the daemon's defaults."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for k in ("UBSAN_OPTIONS", "ASAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(extra)
    return env


class LogPump:
    """Drain a pipe into a log file and let the test wait for a line."""

    def __init__(self, fd, path):
        self.path = path
        self.lines = []
        self.cond = threading.Condition()
        self.closed = False
        self.f = open(path, "ab")
        self.t = threading.Thread(target=self._run, args=(fd,), daemon=True)
        self.t.start()

    def _run(self, fd):
        buf = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            self.f.write(chunk)
            self.f.flush()
            buf += chunk
            *done, buf = buf.split(b"\n")
            with self.cond:
                self.lines.extend(x.decode("utf-8", "replace") for x in done)
                self.cond.notify_all()
        os.close(fd)
        with self.cond:
            if buf:
                self.lines.append(buf.decode("utf-8", "replace"))
            self.closed = True
            self.cond.notify_all()
        self.f.close()

    def wait(self, pattern, timeout=DEFAULT_TIMEOUT, start=0):
        """Index and match of the first line >= start matching pattern, or (None, None)."""
        rx = re.compile(pattern)
        dl = deadline(timeout)
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return i, m
                    i += 1
                if self.closed or remaining(dl) == 0:
                    return None, None
                self.cond.wait(remaining(dl))

    def text(self):
        with self.cond:
            return "\n".join(self.lines)


class Child:
    """A process started with fork/exec so that it can get LISTEN_PID and fd 3."""

    def __init__(self, argv, env, log_path, listen_fd=None, cwd=None, journal=False):
        r, w = os.pipe()
        if journal:
            # What systemd sets when stderr is connected to journald.
            st = os.fstat(w)
            env = dict(env, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                devnull = os.open("/dev/null", os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(w, 1)
                os.dup2(w, 2)
                env = dict(env)
                if listen_fd is not None:
                    os.dup2(listen_fd, 3)
                    os.set_inheritable(3, True)
                    env["LISTEN_FDS"] = "1"
                    env["LISTEN_PID"] = str(os.getpid())
                if cwd:
                    os.chdir(cwd)
                os.closerange(4, 4096)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        os.close(w)
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.status = None
        self.log = LogPump(r, log_path)

    def signal(self, sig):
        if self.status is None:
            os.kill(self.pid, sig)

    def wait(self, timeout=DEFAULT_TIMEOUT):
        """Exit code (negative signal number), or None on timeout."""
        if self.status is not None:
            return self.status
        p = select.poll()
        p.register(self.pidfd, select.POLLIN)
        if not p.poll(int(timeout * 1000)):
            return None
        _, st = os.waitpid(self.pid, 0)
        os.close(self.pidfd)
        self.status = os.waitstatus_to_exitcode(st)
        self.log.t.join(timeout)
        return self.status

    def stop(self, timeout=DEFAULT_TIMEOUT):
        if self.status is None:
            self.signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.signal(signal.SIGKILL)
                self.wait(timeout)
        return self.status


class Sim:
    """taskrouter-sim on an ephemeral loopback port; alice's token in tmp/tokens."""

    def __init__(self, tmp, extra=()):
        self.token_dir = os.path.join(tmp, "tokens")
        os.makedirs(self.token_dir, mode=0o700, exist_ok=True)
        argv = [os.environ["TR_SIM"], "--token-dir", self.token_dir] + list(extra)
        self.proc = Child(argv, clean_env(), os.path.join(tmp, "sim.log"))
        _, m = self.proc.log.wait(r"taskrouter-sim listening on ([0-9.]+):(\d+)")
        if not m:
            self.proc.stop()
            raise RuntimeError("taskrouter-sim did not start:\n" + self.proc.log.text())
        self.port = int(m.group(2))
        self.token_file = os.path.join(self.token_dir, "alice.token")
        with open(self.token_file) as f:
            self.token = f.read().strip()

    def daemon_args(self):
        return ["--websocket-url", "ws://127.0.0.1:%d/v1/wschannels" % self.port,
                "--eventbridge-url", "http://127.0.0.1:%d/v1/wschannels" % self.port]

    def stop(self):
        return self.proc.stop()


class Notify:
    """A NOTIFY_SOCKET: datagram socket in the temp dir, messages collected in order."""

    def __init__(self, tmp, name="notify"):
        self.path = os.path.join(tmp, name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(self.path)
        self.messages = []  # list of dicts, one per datagram, in arrival order

    def wait(self, pred, timeout=DEFAULT_TIMEOUT, start=0):
        """First collected message m (from index start on) with pred(m), waiting for more
        until the deadline."""
        dl = deadline(timeout)
        i = start
        while True:
            while i < len(self.messages):
                if pred(self.messages[i]):
                    return self.messages[i]
                i += 1
            r, _, _ = select.select([self.sock], [], [], remaining(dl))
            if not r:
                return None
            data = self.sock.recv(65536).decode("utf-8", "replace")
            msg = {}
            for ln in data.split("\n"):
                if "=" in ln:
                    k, v = ln.split("=", 1)
                    msg[k] = v
            msg["_raw"] = data
            self.messages.append(msg)

    def mark(self):
        """Where the next message will be: wait(..., start=mark) sees only later ones."""
        return len(self.messages)

    def ready(self, start=0, timeout=DEFAULT_TIMEOUT):
        """A READY=1 from index start on (see mark), or None."""
        return self.wait(lambda m: m.get("READY") == "1", timeout, start)

    def count(self, key, value=None):
        return sum(1 for m in self.messages if key in m and (value is None or m[key] == value))

    def close(self):
        self.sock.close()


def listening_socket(path, mode=0o600, backlog=64):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, mode)
    s.listen(backlog)
    return s


def frame(obj):
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


def _recv_exact(sock, n, dl):
    buf = b""
    while len(buf) < n:
        r, _, _ = select.select([sock], [], [], remaining(dl))
        if not r:
            raise TimeoutError("no reply before the deadline")
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_reply(sock, req_id, timeout=DEFAULT_TIMEOUT):
    """The reply with id req_id (events and other frames are skipped)."""
    dl = deadline(timeout)
    while True:
        (n,) = struct.unpack(">I", _recv_exact(sock, 4, dl))
        msg = json.loads(_recv_exact(sock, n, dl))
        if msg.get("id") == req_id:
            return msg


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def call(path, method="daemon.status", params=None, timeout=DEFAULT_TIMEOUT, sock=None):
    """One request on a new connection; returns the reply object."""
    own = sock is None
    s = connect(path) if own else sock
    try:
        req = {"jsonrpc": "2.0", "id": 1, "method": method}
        if params is not None:
            req["params"] = params
        s.sendall(frame(req))
        return read_reply(s, 1, timeout)
    finally:
        if own:
            s.close()


def as_user(fn, uid, gid, groups=(), timeout=DEFAULT_TIMEOUT):
    """Run fn() in a child with the given ids; returns its JSON-able result or
    {'error': ...}."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups(list(groups))
            os.setgid(gid)
            os.setuid(uid)
            try:
                res = fn()
            except Exception as e:  # reported to the parent
                res = {"error": "%s: %s" % (type(e).__name__, e)}
            os.write(w, json.dumps(res).encode())
        finally:
            os._exit(0)
    os.close(w)
    dl = deadline(timeout)
    out = b""
    while True:
        rr, _, _ = select.select([r], [], [], remaining(dl))
        if not rr:
            break
        chunk = os.read(r, 65536)
        if not chunk:
            break
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    try:
        return json.loads(out.decode())
    except ValueError:
        return {"error": "no result from the child"}


def refused_without_reply(path, timeout=DEFAULT_TIMEOUT):
    """Connect, send a request, and report what came back."""
    try:
        s = connect(path)
    except OSError as e:
        return {"connect_error": e.errno}
    try:
        try:
            s.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "daemon.status"}))
        except OSError as e:
            return {"closed": True, "bytes": 0, "send_error": e.errno}
        dl = deadline(timeout)
        got = b""
        while True:
            r, _, _ = select.select([s], [], [], remaining(dl))
            if not r:
                return {"closed": False, "bytes": len(got)}
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return {"closed": True, "bytes": len(got)}
            got += chunk
    finally:
        s.close()


def grep_logs(tmp, token):
    """Paths of files under tmp (except the token files) that contain token."""
    hits = []
    for root, _, files in os.walk(tmp):
        for name in files:
            p = os.path.join(root, name)
            if name.endswith(".token") or "/creds/" in p + "/" or not os.path.isfile(p):
                continue
            if os.path.islink(p) or not name.endswith(".log"):
                continue
            with open(p, "rb") as f:
                if token.encode() in f.read():
                    hits.append(p)
    return hits


def stopped_cleanly(tap, child, name, timeout=DEFAULT_TIMEOUT):
    """SIGTERM child and report whether it exits with status 0. name may hold one %s, for
    the status."""
    child.signal(signal.SIGTERM)
    status = child.wait(timeout)
    return tap.ok(status == 0, name % status if "%s" in name else name, child.log.text())


def make_creds(tmp, token_file):
    """A $CREDENTIALS_DIRECTORY holding the token as credential "token", read-only as
    systemd makes it."""
    creds = os.path.join(tmp, "creds")
    os.makedirs(creds, mode=0o700)
    path = os.path.join(creds, "token")
    shutil.copyfile(token_file, path)
    os.chmod(path, 0o400)
    return creds


class Run:
    """A test program's world: a temporary directory, the simulators and children started
    through it; on leaving the with block (an exception included) the children are stopped
    (stop_child, default Child.stop), then the simulators, and the directory is removed."""

    def __init__(self, prefix, mode=None, stop_child=None):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        if mode is not None:
            os.chmod(self.tmp, mode)
        self.sims = []
        self.procs = []
        self.stop_child = stop_child or Child.stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            self.stop_child(p)
        for sim in self.sims:
            sim.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def sim(self, subdir="", extra=()):
        """Start taskrouter-sim with its files in tmp/subdir."""
        sim = Sim(self.path(subdir) if subdir else self.tmp, extra)
        self.sims.append(sim)
        return sim

    def child(self, argv, env, log_name, **kw):
        """A Child (see there for kw) logging to tmp/log_name."""
        c = Child(argv, env, self.path(log_name), **kw)
        self.procs.append(c)
        return c

    def no_token_logged(self, tap, token, what="the token"):
        hits = grep_logs(self.tmp, token)
        return tap.ok(not hits, "%s appears in no log" % what, "\n".join(hits))


def daemon_env(tmp, **extra):
    """The daemon's environment: an empty config file, nothing inherited."""
    conf = os.path.join(tmp, "empty.conf")
    if not os.path.exists(conf):
        with open(conf, "w") as f:
            f.write("# empty: the tests pass everything as flags\n")
    return clean_env(TASKROUTERD_CONFIG=conf, **extra)


def daemon_argv(sim, *extra):
    return [os.environ["TR_DAEMON"], "--log-level", "debug"] + sim.daemon_args() + list(extra)


def main_guard(fn):
    try:
        sys.exit(fn())
    except Exception:
        import traceback
        for ln in traceback.format_exc().splitlines():
            print("# " + ln, flush=True)
        print("not ok - exception", flush=True)
        sys.exit(1)
