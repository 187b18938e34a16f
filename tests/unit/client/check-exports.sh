#!/bin/sh
# Fail if libtaskrouter exports anything but tr_client_* / tr_task_* (plus the version node).
set -eu
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//')
[ -n "$syms" ] || { echo "no dynamic symbols in $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v -E '^(tr_client_|tr_task_)' | grep -v -x 'TASKROUTER_0' || true)
if [ -n "$bad" ]; then
	echo "unexpected exports from $lib:"
	printf '%s\n' "$bad"
	exit 1
fi
printf '%s\n' "$syms" | grep -q -x tr_client_call || { echo "tr_client_call not exported"; exit 1; }
echo "ok: $(printf '%s\n' "$syms" | grep -c -E '^tr_') exported symbols"
