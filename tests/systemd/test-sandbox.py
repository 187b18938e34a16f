#!/usr/bin/env python3
"""The system unit's sandbox against what the daemon really does (TAP).

CI has no systemd as PID 1, so the hardened unit cannot run there. Instead
the daemon runs under strace(1) through start-up (socket activation and a
credential; a --token-command), a call, SIGHUP, an upstream drop and
shutdown, and the trace is checked against the system unit's
SystemCallFilter=, RestrictAddressFamilies= and MemoryDenyWriteExecute=.
"""
import os
import re
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trsd  # noqa: E402


def expand(group, analyze, cache):
    if not group.startswith("@"):
        return {group}
    if group in cache:
        return cache[group]
    out = subprocess.run([analyze, "syscall-filter", group], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=30).stdout
    names = set()
    for ln in out.splitlines()[1:]:
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        names |= expand(ln, analyze, cache)
    cache[group] = names
    return names


def unit_policy(unit, analyze):
    allow, deny, families, mdwe = None, set(), None, False
    cache = {}
    with open(unit) as f:
        for ln in f:
            ln = ln.strip()
            if ln.startswith("SystemCallFilter="):
                v = ln.split("=", 1)[1]
                if v.startswith("~"):
                    for g in v[1:].split():
                        deny |= expand(g, analyze, cache)
                else:
                    allow = (allow or set()).union(*(expand(g, analyze, cache)
                                                     for g in v.split()))
            elif ln.startswith("RestrictAddressFamilies="):
                families = set(ln.split("=", 1)[1].split())
            elif ln == "MemoryDenyWriteExecute=yes":
                mdwe = True
    return (allow - deny) if allow is not None else None, families, mdwe


SYSCALL = re.compile(r"^\d+\s+(?:\d+:\d+:\d+\.\d+\s+)?([a-z0-9_]+)\(")
SOCKET = re.compile(r"\bsocket\((AF_[A-Z0-9]+)[^)]*\)")
WX = re.compile(r"\b(mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE\|PROT_EXEC|"
                r"\b(mmap|mprotect|pkey_mprotect)\(.*PROT_EXEC\|PROT_WRITE|"
                r"PROT_READ\|PROT_WRITE\|PROT_EXEC")


def scan(path):
    calls, fams, wx = set(), set(), []
    with open(path, errors="replace") as f:
        for ln in f:
            m = SYSCALL.match(ln)
            if m:
                calls.add(m.group(1))
            m = SOCKET.search(ln)
            if m:
                # glibc's getaddrinfo(AI_ADDRCONFIG) asks the kernel for the local
                # addresses over NETLINK_ROUTE and assumes both IPv4 and IPv6 when
                # that socket is refused: harmless under RestrictAddressFamilies=.
                if m.group(1) == "AF_NETLINK" and "NETLINK_ROUTE" in m.group(0):
                    fams.add("AF_NETLINK(route, tolerated)")
                else:
                    fams.add(m.group(1))
            if WX.search(ln):
                wx.append(ln.strip())
    return calls, fams, wx


def run_traced(run, name, argv, env, notify, listen_fd=None):
    trace = run.path(name + ".trace")
    strace = shutil.which("strace")
    # sh keeps its pid across exec, so LISTEN_PID matches the daemon.
    wrapped = [strace, "-f", "-qq", "-o", trace, "--", "/bin/sh", "-c",
               'if [ -n "$LISTEN_FDS" ]; then LISTEN_PID=$$; export LISTEN_PID; fi; exec "$0" "$@"'
               ] + argv
    # LeakSanitizer cannot run under ptrace; leaks are checked by the other tests.
    env = dict(env, ASAN_OPTIONS="detect_leaks=0")
    mark = notify.mark()
    d = run.child(wrapped, env, name + ".log", listen_fd=listen_fd)
    return d, trace, notify.ready(mark, timeout=30) is not None


def traced_pid(d):
    """The daemon's pid: strace's (only) child."""
    for task in os.listdir("/proc/%d/task" % d.pid):
        with open("/proc/%d/task/%s/children" % (d.pid, task)) as f:
            kids = f.read().split()
        if kids:
            return int(kids[0])
    return None


def signal_daemon(d, sig):
    pid = traced_pid(d) if d.status is None else None
    if pid:
        os.kill(pid, sig)


def stop_traced(d):
    """Stop the daemon itself first: SIGTERM to strace would only detach it."""
    if d.status is None:
        try:
            signal_daemon(d, signal.SIGKILL)
        except OSError:
            pass
    d.stop()


def main():
    tap = trsd.Tap()
    analyze = shutil.which("systemd-analyze")
    if not shutil.which("strace") or not analyze:
        return tap.skip_all("needs strace and systemd-analyze")
    unit = os.path.join(os.environ["TR_UNITS_SYSTEM"], "taskrouterd.service")
    allowed, families, mdwe = unit_policy(unit, analyze)
    tap.ok(allowed and families and mdwe, "the system unit sets a system call allow list, "
           "address families and MemoryDenyWriteExecute")
    with trsd.Run("trsd-sandbox-", stop_child=stop_traced) as run:
        sim = run.sim()
        notify = trsd.Notify(run.tmp)
        creds = trsd.make_creds(run.tmp, sim.token_file)

        # Run 1: as the unit runs it (activated, credential, watchdog).
        os.makedirs(run.path("s"), mode=0o700)
        path = run.path("s", "socket")
        lsock = trsd.listening_socket(path)
        env = trsd.daemon_env(run.tmp, NOTIFY_SOCKET=notify.path, CREDENTIALS_DIRECTORY=creds,
                              WATCHDOG_USEC="2000000")
        d, trace1, ok = run_traced(run, "run1", trsd.daemon_argv(sim, "--system"), env, notify,
                                   listen_fd=lsock.fileno())
        tap.ok(ok, "run 1 (activated, credential) is ready", d.log.text())
        reply = trsd.call(path) if ok else None
        tap.ok(reply is not None and "result" in reply, "run 1 serves a call", repr(reply))
        tap.ok(notify.wait(lambda m: m.get("STATUS") == "ready") is not None,
               "run 1 reaches the upstream")
        mark = notify.mark()
        signal_daemon(d, signal.SIGHUP)
        # systemd's reload protocol: RELOADING=1 (with the time), then READY=1 when done
        rel = notify.wait(lambda m: m.get("RELOADING") == "1", start=mark)
        after = notify.messages.index(rel) + 1 if rel is not None else mark
        tap.ok(rel is not None and "MONOTONIC_USEC" in rel and
               notify.ready(after) is not None,
               "run 1 tells systemd about a reload (RELOADING=1, then READY=1)",
               repr(notify.messages[mark:]))
        d.log.wait(r"configuration re-read")
        signal_daemon(d, signal.SIGTERM)
        tap.ok(d.wait(30) == 0, "run 1 exits cleanly (status %s)" % d.status, d.log.text())
        lsock.close()

        # Run 2: the daemon binds its socket and runs a --token-command.
        os.makedirs(run.path("r"), mode=0o755)
        path2 = run.path("r", "taskrouterd", "socket")
        env2 = trsd.daemon_env(run.tmp, NOTIFY_SOCKET=notify.path)
        argv2 = trsd.daemon_argv(sim, "--socket", path2, "--token-command",
                                 "cat '%s'" % sim.token_file)
        d, trace2, ok = run_traced(run, "run2", argv2, env2, notify)
        tap.ok(ok, "run 2 (own socket, token command) is ready", d.log.text())
        reply = trsd.call(path2) if ok else None
        tap.ok(reply is not None and "result" in reply, "run 2 serves a call", repr(reply))
        sim.proc.stop()  # upstream drop: the reconnect path
        notify.wait(lambda m: m.get("STATUS", "").startswith("reconnecting"))
        signal_daemon(d, signal.SIGTERM)
        tap.ok(d.wait(30) == 0, "run 2 exits cleanly (status %s)" % d.status, d.log.text())

        for name, trace in (("run 1", trace1), ("run 2", trace2)):
            calls, fams, wx = scan(trace)
            tap.ok(len(calls) > 20, "%s: trace parsed (%d distinct system calls)"
                   % (name, len(calls)))
            bad = sorted(calls - allowed)
            tap.ok(not bad, "%s: every system call passes SystemCallFilter=" % name,
                   "outside the filter: " + " ".join(bad))
            badf = sorted(f for f in fams - families if "tolerated" not in f)
            tap.ok(not badf, "%s: socket families within RestrictAddressFamilies= (%s)"
                   % (name, " ".join(sorted(fams))), "outside: " + " ".join(badf))
            tap.ok(not wx, "%s: no writable+executable mapping (MemoryDenyWriteExecute=)"
                   % name, "\n".join(wx[:5]))
        run.no_token_logged(tap, sim.token)
    return tap.done()


if __name__ == "__main__":
    trsd.main_guard(main)
