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
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trsd  # noqa: E402


def make_creds(tmp, sim):
    creds = os.path.join(tmp, "creds")
    os.makedirs(creds, mode=0o700)
    path = os.path.join(creds, "token")
    shutil.copyfile(sim.token_file, path)
    os.chmod(path, 0o400)
    return creds


def status_ok(reply):
    return isinstance(reply, dict) and "result" in reply and "error" not in reply


def main():
    tap = trsd.Tap()
    activate = shutil.which("systemd-socket-activate")
    tmp = tempfile.mkdtemp(prefix="trsd-act-")
    os.chmod(tmp, 0o755)
    sim = None
    procs = []
    try:
        sim = trsd.Sim(tmp)
        creds = make_creds(tmp, sim)
        notify = trsd.Notify(tmp)
        env = trsd.daemon_env(tmp, NOTIFY_SOCKET=notify.path, CREDENTIALS_DIRECTORY=creds)

        # --- 1. systemd-socket-activate -------------------------------------
        if activate:
            sdir = os.path.join(tmp, "a")
            os.makedirs(sdir, mode=0o700)
            path = os.path.join(sdir, "socket")
            argv = [activate, "-l", path]
            for k in sorted(env):
                argv += ["-E", "%s=%s" % (k, env[k])]
            argv += trsd.daemon_argv(sim)
            d = trsd.Child(argv, {"PATH": env["PATH"]}, os.path.join(tmp, "daemon-a.log"))
            procs.append(d)
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
            ready = notify.wait(lambda m: m.get("READY") == "1")
            tap.ok(ready is not None, "READY=1 under systemd-socket-activate", d.log.text())
            i, _ = d.log.wait(r"socket passed by systemd", timeout=1)
            tap.ok(i is not None, "the daemon uses the passed socket", d.log.text())
            d.signal(signal.SIGTERM)
            tap.ok(d.wait() == 0, "clean exit on SIGTERM (status %s)" % d.status, d.log.text())
            tap.ok(os.path.exists(path),
                   "the daemon leaves the activated socket's path in place")
        else:
            tap.skip("systemd-socket-activate", "not installed")

        # --- 2. restart on a socket held by the "manager" (this test) --------
        sdir = os.path.join(tmp, "b")
        os.makedirs(sdir, mode=0o700)
        path = os.path.join(sdir, "socket")
        lsock = trsd.listening_socket(path, 0o600)
        n_ready = notify.count("READY", "1")
        d1 = trsd.Child(trsd.daemon_argv(sim), env, os.path.join(tmp, "daemon-b1.log"),
                        listen_fd=lsock.fileno())
        procs.append(d1)
        ready = notify.wait(lambda m: m.get("READY") == "1" and notify.count("READY", "1") > n_ready)
        tap.ok(ready is not None, "first instance: READY=1", d1.log.text())
        reply = trsd.call(path)
        tap.ok(status_ok(reply), "first instance serves a call", repr(reply))
        d1.signal(signal.SIGTERM)
        tap.ok(d1.wait() == 0, "first instance exits cleanly (status %s)" % d1.status,
               d1.log.text())

        # No daemon now: the connection lands in the listen backlog.
        waiting = trsd.connect(path)
        tap.ok(True, "a client connects while no daemon runs")
        waiting.sendall(trsd.frame({"jsonrpc": "2.0", "id": 1, "method": "daemon.status"}))
        n_ready = notify.count("READY", "1")
        d2 = trsd.Child(trsd.daemon_argv(sim), env, os.path.join(tmp, "daemon-b2.log"),
                        listen_fd=lsock.fileno())
        procs.append(d2)
        try:
            reply = trsd.read_reply(waiting, 1)
        except (EOFError, TimeoutError, ValueError) as e:
            reply = {"exception": str(e)}
        waiting.close()
        tap.ok(status_ok(reply), "the waiting client is served by the second instance",
               repr(reply) + "\n" + d2.log.text())
        ready = notify.wait(lambda m: m.get("READY") == "1" and notify.count("READY", "1") > n_ready)
        tap.ok(ready is not None, "second instance: READY=1")
        d2.signal(signal.SIGTERM)
        tap.ok(d2.wait() == 0, "second instance exits cleanly (status %s)" % d2.status,
               d2.log.text())
        lsock.close()

        sim.stop()
        hits = trsd.grep_logs(tmp, sim.token)
        tap.ok(not hits, "the token appears in no log", "\n".join(hits))
    finally:
        for p in procs:
            p.stop()
        if sim:
            sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    trsd.main_guard(main)
