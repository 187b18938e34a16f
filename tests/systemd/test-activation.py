#!/usr/bin/env python3
"""Socket activation (TAP).

1. systemd-socket-activate -l PATH listens and starts taskrouterd when the
   first client connects; the token comes as a systemd credential
   ($CREDENTIALS_DIRECTORY/token); that first client's call succeeds.
2. A restart on the same listening socket, held by this test as systemd
   would hold it: a client that connects while no daemon runs waits in the
   backlog and is served by the next instance.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trsd  # noqa: E402


def status_ok(reply):
    return isinstance(reply, dict) and "result" in reply and "error" not in reply


def main():
    tap = trsd.Tap()
    activate = shutil.which("systemd-socket-activate")
    with trsd.Run("trsd-act-", mode=0o755) as run:
        sim = run.sim()
        creds = trsd.make_creds(run.tmp, sim.token_file)
        notify = trsd.Notify(run.tmp)
        env = trsd.daemon_env(run.tmp, NOTIFY_SOCKET=notify.path, CREDENTIALS_DIRECTORY=creds)

        # --- 1. systemd-socket-activate -------------------------------------
        if activate:
            os.makedirs(run.path("a"), mode=0o700)
            path = run.path("a", "socket")
            argv = [activate, "-l", path]
            for k in sorted(env):
                argv += ["-E", "%s=%s" % (k, env[k])]
            argv += trsd.daemon_argv(sim)
            d = run.child(argv, {"PATH": env["PATH"]}, "daemon-a.log")
            # Like a .socket unit, systemd-socket-activate listens first and starts
            # the daemon when the first client connects.
            i, _ = d.log.wait(r"^Listening on .* as 3\.")
            tap.ok(i is not None, "systemd-socket-activate listens", d.log.text())
            try:
                reply = trsd.call(path) if i is not None else None
            except (OSError, EOFError, TimeoutError, ValueError) as e:
                reply = {"exception": str(e)}
            tap.ok(status_ok(reply), "the first client's call succeeds (it starts the daemon)",
                   repr(reply) + "\n" + d.log.text())
            tap.ok(notify.ready() is not None, "READY=1 under systemd-socket-activate",
                   d.log.text())
            i, _ = d.log.wait(r"socket passed by systemd", timeout=1)
            tap.ok(i is not None, "the daemon uses the passed socket", d.log.text())
            trsd.stopped_cleanly(tap, d, "clean exit on SIGTERM (status %s)")
            tap.ok(os.path.exists(path),
                   "the daemon leaves the activated socket's path in place")
        else:
            tap.skip("systemd-socket-activate", "not installed")

        # --- 2. restart on a socket held by the "manager" (this test) --------
        os.makedirs(run.path("b"), mode=0o700)
        path = run.path("b", "socket")
        lsock = trsd.listening_socket(path, 0o600)
        mark = notify.mark()
        d1 = run.child(trsd.daemon_argv(sim), env, "daemon-b1.log", listen_fd=lsock.fileno())
        tap.ok(notify.ready(mark) is not None, "first instance: READY=1", d1.log.text())
        reply = trsd.call(path)
        tap.ok(status_ok(reply), "first instance serves a call", repr(reply))
        trsd.stopped_cleanly(tap, d1, "first instance exits cleanly (status %s)")

        # No daemon now: the connection lands in the listen backlog.
        waiting = trsd.connect(path)
        tap.ok(True, "a client connects while no daemon runs")
        waiting.sendall(trsd.frame({"jsonrpc": "2.0", "id": 1, "method": "daemon.status"}))
        mark = notify.mark()
        d2 = run.child(trsd.daemon_argv(sim), env, "daemon-b2.log", listen_fd=lsock.fileno())
        try:
            reply = trsd.read_reply(waiting, 1)
        except (EOFError, TimeoutError, ValueError) as e:
            reply = {"exception": str(e)}
        waiting.close()
        tap.ok(status_ok(reply), "the waiting client is served by the second instance",
               repr(reply) + "\n" + d2.log.text())
        tap.ok(notify.ready(mark) is not None, "second instance: READY=1")
        trsd.stopped_cleanly(tap, d2, "second instance exits cleanly (status %s)")
        lsock.close()

        sim.stop()
        run.no_token_logged(tap, sim.token)
    return tap.done()


if __name__ == "__main__":
    trsd.main_guard(main)
