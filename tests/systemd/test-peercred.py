#!/usr/bin/env python3
"""Who may connect (TAP; needs root to switch uids).

- The daemon's own socket: directory 0700, socket 0600; another uid
  (nobody) cannot even reach it.
- A socket that anyone may open (passed by socket activation, 0666): the
  daemon's SO_PEERCRED check still closes nobody's connection without a
  reply, serves root, and serves a member of --allow-group.
"""
import errno
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trsd  # noqa: E402

NOBODY = 65534
NOGROUP = 65534
DESK_GID = 4242  # an otherwise unused gid standing in for the desktop group


def mode(p):
    return stat.S_IMODE(os.lstat(p).st_mode)


def served(reply):
    return isinstance(reply, dict) and "result" in reply


def main():
    tap = trsd.Tap()
    if os.geteuid() != 0:
        return tap.skip_all("needs root to run clients as another uid")
    with trsd.Run("trsd-peer-", mode=0o755) as run:
        sim = run.sim()
        notify = trsd.Notify(run.tmp)
        env = trsd.daemon_env(run.tmp, NOTIFY_SOCKET=notify.path)

        # --- the daemon creates its socket ----------------------------------
        os.makedirs(run.path("run"), mode=0o755)
        path = run.path("run", "taskrouterd", "socket")
        d = run.child(trsd.daemon_argv(sim, "--token-file", sim.token_file, "--socket", path),
                      env, "daemon-1.log")
        tap.ok(notify.ready() is not None, "READY=1", d.log.text())
        tap.ok(mode(os.path.dirname(path)) == 0o700,
               "socket directory mode 0700 (%o)" % mode(os.path.dirname(path)))
        tap.ok(stat.S_ISSOCK(os.lstat(path).st_mode) and mode(path) == 0o600,
               "socket mode 0600 (%o)" % mode(path))
        tap.ok(served(trsd.call(path)), "root is served")
        res = trsd.as_user(lambda: trsd.refused_without_reply(path), NOBODY, NOGROUP)
        tap.ok(res.get("connect_error") == errno.EACCES,
               "nobody cannot reach the socket (EACCES)", repr(res))
        trsd.stopped_cleanly(tap, d, "clean exit (status %s)")

        # --- an open socket: only the credential check protects it ----------
        os.makedirs(run.path("open"), mode=0o755)
        os.chmod(run.path("open"), 0o755)
        opath = run.path("open", "socket")
        lsock = trsd.listening_socket(opath, 0o666)
        mark = notify.mark()
        d = run.child(trsd.daemon_argv(sim, "--token-file", sim.token_file,
                                       "--allow-group", str(DESK_GID)),
                      env, "daemon-2.log", listen_fd=lsock.fileno())
        tap.ok(notify.ready(mark) is not None, "READY=1 on the open socket", d.log.text())

        res = trsd.as_user(lambda: trsd.refused_without_reply(opath), NOBODY, NOGROUP)
        tap.ok(res.get("closed") is True and res.get("bytes") == 0,
               "nobody: connection closed without a reply", repr(res))
        i, _ = d.log.wait(r"\b65534\b", timeout=5)
        tap.ok(i is not None, "the refusal is logged with the peer's uid", d.log.text())

        res = trsd.as_user(lambda: trsd.call(opath), NOBODY, DESK_GID)
        tap.ok(served(res), "nobody with primary group --allow-group is served", repr(res))
        res = trsd.as_user(lambda: trsd.call(opath), NOBODY, NOGROUP, groups=[DESK_GID])
        # A desktop user is usually in the group as a supplementary group of the
        # session; the peer's groups are in SO_PEERGROUPS.
        tap.ok(served(res), "nobody with --allow-group as a supplementary group is served",
               repr(res))
        tap.ok(served(trsd.call(opath)), "root is still served")

        trsd.stopped_cleanly(tap, d, "clean exit (status %s)")
        lsock.close()
        run.no_token_logged(tap, sim.token)
    return tap.done()


if __name__ == "__main__":
    trsd.main_guard(main)
