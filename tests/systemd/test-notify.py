#!/usr/bin/env python3
"""sd_notify and logging (TAP): READY=1 once the socket listens, STATUS= for
the upstream state, WATCHDOG=1 from the loop (WATCHDOG_USEC=2 s), SIGHUP,
STOPPING=1, STATUS=token expired, and "<N>" prefixes only when JOURNAL_STREAM matches stderr.
"""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trsd  # noqa: E402


def main():
    tap = trsd.Tap()
    with trsd.Run("trsd-notify-") as run:
        sim = run.sim()
        notify = trsd.Notify(run.tmp)
        os.makedirs(run.path("run"))
        os.makedirs(run.path("run2"))
        path = run.path("run", "taskrouterd", "socket")
        env = trsd.daemon_env(run.tmp, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="2000000")
        d = run.child(trsd.daemon_argv(sim, "--token-file", sim.token_file, "--socket", path),
                      env, "daemon.log")

        ready = notify.ready()
        tap.ok(ready is not None, "READY=1", d.log.text())
        # READY=1 means listening: the first call needs no retry.
        tap.ok(ready is not None and os.path.exists(path), "the socket exists at READY=1")
        reply = trsd.call(path) if ready else None
        tap.ok(reply is not None and "result" in reply, "a call right after READY=1 succeeds",
               repr(reply))
        m = notify.wait(lambda m: m.get("STATUS") == "ready")
        tap.ok(m is not None, "STATUS=ready once the upstream session is up",
               "\n".join(x["_raw"] for x in notify.messages))
        tap.ok(notify.count("STATUS") >= 2, "STATUS= reports the states on the way")

        # WATCHDOG_USEC=2 s: the daemon pings about every second.
        m = notify.wait(lambda m: m.get("WATCHDOG") == "1" and notify.count("WATCHDOG", "1") >= 3,
                        timeout=8)
        tap.ok(m is not None, "at least three WATCHDOG=1 within 8 s (got %d)"
               % notify.count("WATCHDOG", "1"))

        # Upstream gone: STATUS says so.
        sim.proc.stop()
        m = notify.wait(lambda m: re.match(r"reconnecting in \d+s", m.get("STATUS", "")))
        tap.ok(m is not None, "STATUS=reconnecting in Ns after the upstream drops",
               "\n".join(x["_raw"] for x in notify.messages[-5:]))
        n = notify.count("WATCHDOG", "1")
        m = notify.wait(lambda m: notify.count("WATCHDOG", "1") >= n + 2, timeout=8)
        tap.ok(m is not None, "the watchdog keeps being fed while reconnecting")

        # SIGHUP re-reads the configuration and keeps serving.
        start = len(d.log.lines)
        d.signal(signal.SIGHUP)
        i, _ = d.log.wait(r"configuration re-read", start=start)
        tap.ok(i is not None, "SIGHUP re-reads the configuration", d.log.text())
        reply = trsd.call(path)
        tap.ok(reply is not None and "result" in reply, "still serving after SIGHUP")

        d.signal(signal.SIGTERM)
        m = notify.wait(lambda m: m.get("STOPPING") == "1")
        tap.ok(m is not None, "STOPPING=1 on SIGTERM")
        tap.ok(d.wait() == 0, "exit status 0 (got %s)" % d.status, d.log.text())
        plain = [ln for ln in d.log.lines if ln.strip()]
        tap.ok(plain and not any(re.match(r"^<[0-7]>", ln) for ln in plain),
               "no <N> prefixes without JOURNAL_STREAM", "\n".join(plain[:5]))

        # Under journald (JOURNAL_STREAM names our stderr) every line has a prefix.
        # Against a fresh simulator minting 4-second tokens: STATUS tells the expiry.
        sim2 = run.sim("sim2", ["--token-ttl", "4"])
        notify2 = trsd.Notify(run.tmp, "notify2")
        # The "<N>" lines are the fallback when the journal's own socket cannot take a record
        # (a host running journald would otherwise get the records there, with their fields).
        env2 = trsd.daemon_env(run.tmp, NOTIFY_SOCKET=notify2.path,
                               TR_JOURNAL_SOCKET=run.path("no-journal-socket"))
        d2 = run.child(trsd.daemon_argv(sim2, "--token-file", sim2.token_file, "--socket",
                                        run.path("run2", "taskrouterd", "socket")),
                       env2, "daemon-journal.log", journal=True)
        ready = notify2.wait(lambda m: m.get("STATUS") == "ready")
        tap.ok(ready is not None, "second daemon: STATUS=ready", d2.log.text())
        m = notify2.wait(lambda m: m.get("STATUS", "").startswith("token expired"))
        tap.ok(m is not None, "STATUS=token expired ...",
               "\n".join(x["_raw"] for x in notify2.messages[-5:]) + "\n" + d2.log.text())
        trsd.stopped_cleanly(tap, d2, "second daemon exits cleanly (status %s)")
        sim2.stop()
        lines = [ln for ln in d2.log.lines if ln.strip()]
        tap.ok(ready is not None and lines and all(re.match(r"^<[0-7]>", ln) for ln in lines),
               "every line has a <N> prefix under journald", "\n".join(lines[:5]))
        run.no_token_logged(tap, sim2.token, "the second token")
        run.no_token_logged(tap, sim.token)
    return tap.done()


if __name__ == "__main__":
    trsd.main_guard(main)
