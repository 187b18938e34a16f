#!/usr/bin/env python3
"""Static checks of the shipped systemd units (TAP).

systemd-analyze verify on the user and system units (ExecStart pointed at the
built daemon), the exposure score of the system service (fails above 2.5),
the sysusers.d entry, and the example configuration parsed by the daemon.
Works without systemd as PID 1: verify runs with --man=no --generators=no,
security with --offline=true.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trsd  # noqa: E402

MAX_SYSTEM_EXPOSURE = 2.5


def prepare(src_dir, dst_dir, sbindir, daemon):
    os.makedirs(dst_dir, mode=0o755)
    for name in ("taskrouterd.service", "taskrouterd.socket"):
        with open(os.path.join(src_dir, name)) as f:
            text = f.read()
        text = text.replace(sbindir + "/taskrouterd", daemon)
        with open(os.path.join(dst_dir, name), "w") as f:
            f.write(text)
    return [os.path.join(dst_dir, n) for n in ("taskrouterd.service", "taskrouterd.socket")]


def run(argv, env):
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def exposure(out):
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    return float(m.group(1)) if m else None


def main():
    tap = trsd.Tap()
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        return tap.skip_all("systemd-analyze not installed")
    user_dir = os.environ["TR_UNITS_USER"]
    system_dir = os.environ["TR_UNITS_SYSTEM"]
    sbindir = os.environ["TR_SBINDIR"]
    daemon = os.environ.get("TR_DAEMON") or "/bin/true"
    tmp = tempfile.mkdtemp(prefix="trsd-units-")
    try:
        env = dict(os.environ, SYSTEMD_LOG_LEVEL="notice", SYSTEMD_PAGER="cat",
                   SYSTEMD_COLORS="0")
        sys_units = prepare(system_dir, os.path.join(tmp, "system"), sbindir, daemon)
        rc, out, err = run([analyze, "verify", "--man=no", "--generators=no"] + sys_units, env)
        tap.ok(rc == 0 and not err.strip(), "systemd-analyze verify: system units",
               out + err)

        # The user manager needs a runtime directory and a home.
        xdg = os.path.join(tmp, "xdg")
        home = os.path.join(tmp, "home")
        os.makedirs(xdg, mode=0o700)
        os.makedirs(home, mode=0o700)
        uenv = dict(env, XDG_RUNTIME_DIR=xdg, HOME=home)
        user_units = prepare(user_dir, os.path.join(tmp, "user"), sbindir, daemon)
        rc, out, err = run([analyze, "--user", "verify", "--man=no", "--generators=no"]
                           + user_units, uenv)
        tap.ok(rc == 0 and not err.strip(), "systemd-analyze --user verify: user units",
               out + err)

        rc, out, err = run([analyze, "security", "--offline=true", "--no-pager",
                            sys_units[0]], env)
        score = exposure(out)
        tap.diag("system service exposure: %s" % score)
        tap.ok(score is not None and score <= MAX_SYSTEM_EXPOSURE,
               "system service exposure %s <= %.1f" % (score, MAX_SYSTEM_EXPOSURE),
               out + err if score is None or score > MAX_SYSTEM_EXPOSURE else "")
        # systemd's own threshold check (0..100 scale) agrees.
        rc, out, err = run([analyze, "security", "--offline=true", "--no-pager",
                            "--threshold=%d" % int(MAX_SYSTEM_EXPOSURE * 10), sys_units[0]], env)
        tap.ok(rc == 0, "systemd-analyze security --threshold=25 passes", err)

        rc, out, err = run([analyze, "--user", "security", "--offline=true", "--no-pager",
                            user_units[0]], uenv)
        tap.diag("user service exposure (user manager, seccomp only): %s" % exposure(out))
        tap.ok(exposure(out) is not None, "user service exposure measured", out + err)

        # Content rules the tests elsewhere rely on.
        texts = {}
        for p in sys_units + user_units:
            with open(p) as f:
                texts[p] = f.read()
        for p, t in texts.items():
            tag = os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p)
            tap.ok(not re.search(r"^\s*Environment=.*TOKEN\b", t, re.M | re.I),
                   "%s: no token in Environment=" % tag)
            if p.endswith(".service"):
                for key in ("Type=notify", "WatchdogSec=", "Restart=on-failure",
                            "LoadCredential=token:"):
                    tap.ok(re.search("^" + re.escape(key), t, re.M) is not None,
                           "%s has %s" % (tag, key))
        user_sock = texts[user_units[1]]
        tap.ok(re.search(r"^ListenStream=%t/taskrouterd/socket$", user_sock, re.M)
               and re.search(r"^SocketMode=0600$", user_sock, re.M)
               and re.search(r"^DirectoryMode=0700$", user_sock, re.M),
               "user socket: %t/taskrouterd/socket, 0600, directory 0700")
        sys_sock = texts[sys_units[1]]
        tap.ok(re.search(r"^ListenStream=/run/taskrouterd/socket$", sys_sock, re.M)
               and re.search(r"^SocketGroup=\S+$", sys_sock, re.M),
               "system socket: /run/taskrouterd/socket with a SocketGroup")

        # sysusers.d entry creates the group in a scratch root.
        sysusers = shutil.which("systemd-sysusers")
        conf = os.environ.get("TR_SYSUSERS")
        if sysusers and conf:
            root = os.path.join(tmp, "root")
            os.makedirs(os.path.join(root, "etc"))
            rc, out, err = run([sysusers, "--root=" + root, conf], env)
            group = ""
            if os.path.exists(os.path.join(root, "etc", "group")):
                with open(os.path.join(root, "etc", "group")) as f:
                    group = f.read()
            tap.ok(rc == 0 and re.search(r"^taskrouter:", group, re.M) is not None,
                   "sysusers.d entry creates the group", out + err + group)
        else:
            tap.skip("sysusers.d entry", "systemd-sysusers or TR_SYSUSERS missing")

        # The example configuration: every key, uncommented, parses.
        example = os.environ.get("TR_CONF_EXAMPLE")
        if example and os.environ.get("TR_DAEMON"):
            with open(example) as f:
                lines = f.read().splitlines()
            out_lines = []
            for ln in lines:
                m = re.match(r"^;\s*([a-z-]+)\s*=\s*(.*)$", ln)
                if m:
                    key, val = m.group(1), m.group(2)
                    if key == "allow-group":
                        val = "0"  # the example's group need not exist here
                    if key == "token-command":
                        continue  # exclusive with token-file
                    ln = "%s = %s" % (key, val)
                out_lines.append(ln)
            full = os.path.join(tmp, "full.conf")
            with open(full, "w") as f:
                f.write("\n".join(out_lines) + "\n")
            denv = trsd.clean_env()
            p = subprocess.run([daemon, "--config", full, "--help"], env=denv,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=30)
            tap.ok(p.returncode == 0, "example configuration (all keys set) is accepted",
                   p.stderr)
            with open(full, "a") as f:
                f.write("no-such-key = 1\n")
            p = subprocess.run([daemon, "--config", full, "--help"], env=denv,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=30)
            tap.ok(p.returncode == 2 and "no-such-key" in p.stderr,
                   "an unknown key in the configuration is refused (exit 2)", p.stderr)
        else:
            tap.skip("example configuration", "daemon not built")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
