#!/bin/sh
# Fail if libtaskrouter exports anything but its public prefixes (plus the version node):
# tr_client_* and the object accessors tr_task_*, tr_reservation_*, tr_worker_*, tr_activity_*,
# tr_result_*.
set -eu
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//')
[ -n "$syms" ] || { echo "no dynamic symbols in $lib"; exit 1; }
public='^(tr_client_|tr_task_|tr_reservation_|tr_worker_|tr_activity_|tr_result_)'
bad=$(printf '%s\n' "$syms" | grep -v -E "$public" | grep -v -x 'TASKROUTER_0' || true)
if [ -n "$bad" ]; then
	echo "unexpected exports from $lib:"
	printf '%s\n' "$bad"
	exit 1
fi
for f in tr_client_call tr_client_reservation_accept tr_activity_list_find tr_client_events \
	tr_client_call_result tr_result_get_string; do
	printf '%s\n' "$syms" | grep -q -x "$f" || { echo "$f not exported"; exit 1; }
done
echo "ok: $(printf '%s\n' "$syms" | grep -c -E '^tr_') exported symbols"
