#!/usr/bin/env python3
"""The house rules of the source tree, checked (TAP output):

- no include cycle between daemon modules (a module is X.c with X.h; the bridge's files,
  bridge*.c and bridge-internal.h, are one module, and so are cache*.c and cache-internal.h);
- every header of daemon/ and proto/ sits beside its source, if it has one, and every .c
  includes its own header first;
- no daemon source file over 1,000 lines;
- no meson.build picks files up by testing for them (fs.is_file): sources are listed;
- rpcsrv.c includes neither methods.h nor daemon.h.
"""
import glob
import os
import re
import sys

top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
n = 0
failed = 0


def check(cond, name, diag=""):
    global n, failed
    n += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n, name))
    if not cond:
        failed += 1
        for line in diag.splitlines():
            print("# " + line)


def includes(path):
    with open(path, encoding="utf-8") as f:
        return re.findall(r'^#include "([^"]+)"', f.read(), re.M)


def module(name):
    if name.startswith("bridge") or name.startswith("cache"):
        return name.split("-")[0]
    return name


daemon = os.path.join(top, "daemon")
graph = {}
for path in glob.glob(os.path.join(daemon, "*.[ch]")):
    m = module(os.path.basename(path).rsplit(".", 1)[0])
    for inc in includes(path):
        target = module(inc[:-2])
        if inc.endswith(".h") and os.path.exists(os.path.join(daemon, inc)) and target != m:
            graph.setdefault(m, set()).add(target)

cycles = []


def walk(node, stack):
    for nxt in sorted(graph.get(node, ())):
        if nxt in stack:
            cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
        else:
            walk(nxt, stack + [nxt])


for m in sorted(graph):
    walk(m, [m])
check(not cycles, "no include cycle between daemon modules", "\n".join(sorted(set(cycles))))

misplaced = []
for folder in ("daemon", "proto", "client"):
    for src in glob.glob(os.path.join(top, folder, "**", "*.c"), recursive=True):
        base = os.path.basename(src)[:-2]
        own = base + ".h"
        beside = os.path.join(os.path.dirname(src), own)
        incs = includes(src)
        if os.path.exists(beside):
            if not incs or incs[0] != own:
                misplaced.append("%s does not include %s first" % (src, own))
        elif glob.glob(os.path.join(top, "**", own), recursive=True) and folder != "client":
            misplaced.append("%s: its header is in another folder" % src)
check(not misplaced, "every header beside its source, included first", "\n".join(misplaced))

long_files = []
for src in glob.glob(os.path.join(daemon, "*.c")):
    with open(src, encoding="utf-8") as f:
        lines = sum(1 for _ in f)
    if lines > 1000:
        long_files.append("%s: %d lines" % (src, lines))
check(not long_files, "no daemon source file over 1,000 lines", "\n".join(long_files))

pickup = []
for mb in glob.glob(os.path.join(top, "**", "meson.build"), recursive=True):
    rel = os.path.relpath(mb, top).replace(os.sep, "/")
    if rel.startswith("build") or "node_modules" in rel:
        continue
    with open(mb, encoding="utf-8") as f:
        if "fs.is_file" in f.read():
            pickup.append(mb)
check(not pickup, "no meson.build picks sources up with fs.is_file", "\n".join(pickup))

rpcsrv = includes(os.path.join(daemon, "rpcsrv.c"))
check("methods.h" not in rpcsrv and "daemon.h" not in rpcsrv,
      "rpcsrv.c includes neither methods.h nor daemon.h", " ".join(rpcsrv))

print("1..%d" % n)
sys.exit(1 if failed else 0)
