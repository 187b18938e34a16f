#!/usr/bin/env bash
# README's demo command: install what is missing, build, start the bundled Event Bridge
# simulator (taskrouter-sim) and taskrouterd against it (the "embedded default": no Twilio
# account needed), then push a task through: created -> reserved -> accepted -> updated ->
# wrapping -> completed, watched live through taskrouterctl. Everything runs on loopback in
# a temporary directory. On a terminal it keeps running until Ctrl-C; otherwise it stops
# after the task has flowed through.
#   scripts/demo.sh --tray   on a desktop (DISPLAY set): also build taskrouter-tray, start it
#                            against the demo daemon and route a task to alice that waits
#                            for her: accept it from the tray's menu or its notification.
#                            The demo ends when the tray does (its menu's Quit) or on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

with_tray=0
if [ "${1:-}" = "--tray" ]; then
	with_tray=1
	[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || { echo "demo: --tray needs a desktop session (DISPLAY)" >&2; exit 2; }
fi

bash scripts/deps.sh $([ $with_tray = 1 ] && echo --tray)
build=build/demo
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" -Dtests=disabled -Dbuildtype=release >/dev/null
fi
if [ $with_tray = 1 ]; then
	meson configure "$build" -Dtray=enabled >/dev/null
fi
ninja -C "$build" >/dev/null

sim=$build/tests/sim/taskrouter-sim
daemon=$build/daemon/taskrouterd
ctl=$build/client/taskrouterctl
for b in "$sim" "$daemon" "$ctl"; do
	[ -x "$b" ] || { echo "demo: $b was not built" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/taskrouterd-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting taskrouter-sim (workers alice and bob) on 127.0.0.1, ephemeral port"
mkfifo "$tmp/sim.out"
"$sim" --listen 127.0.0.1:0 --token-dir "$tmp" --heartbeat-ms 5000 >"$tmp/sim.out" 2>"$tmp/sim.log" &
pids+=($!)
read -r -t 20 line <"$tmp/sim.out" || { echo "demo: the simulator did not start" >&2; cat "$tmp/sim.log" >&2; exit 1; }
echo "$line"
port=${line##*:}
api="http://127.0.0.1:$port"

say "starting taskrouterd as alice (token from a file, never on the command line)"
sock=$tmp/run/socket
"$daemon" --websocket-url "ws://127.0.0.1:$port/v1/wschannels" \
	--eventbridge-url "$api/v1/wschannels" \
	--token-file "$tmp/alice.token" --socket "$sock" --log-level info 2>"$tmp/daemon.log" &
pids+=($!)
# Wait until the daemon is up and its upstream session is ready (bounded).
ok=0
for _ in $(seq 1 100); do
	if "$ctl" --socket "$sock" --json status 2>/dev/null | grep -q '"state": *"ready"'; then ok=1; break; fi
	sleep 0.1
done
[ $ok = 1 ] || { echo "demo: taskrouterd did not become ready" >&2; cat "$tmp/daemon.log" >&2; exit 1; }
"$ctl" --socket "$sock" status

say "watching task events (taskrouterctl watch)"
"$ctl" --socket "$sock" watch &
pids+=($!)

post() { curl -sS -X POST -H 'Content-Type: application/json' --data "${2:-{\}}" "$api$1"; }
field() { sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p"; }

say "a customer calls: the simulator routes a voice task to alice"
created=$(post /sim/tasks '{"worker":"alice","channel":"voice","attributes":{"customer":"+15005550006","lang":"fr"}}')
echo "$created"
task=$(echo "$created" | field task)
res=$(echo "$created" | field reservation)

say "alice accepts the reservation"
post "/sim/reservations/$res/accept" >/dev/null
"$ctl" --socket "$sock" list

say "the CRM plug-in sets attributes through the daemon"
"$ctl" --socket "$sock" set-attributes "$task" '{"customer":"+15005550006","lang":"fr","case":"CS-1042"}'

say "the call ends: wrap-up, then complete"
"$ctl" --socket "$sock" wrapup "$task" --reason "call ended"
"$ctl" --socket "$sock" complete "$task" "resolved on first call"
"$ctl" --socket "$sock" list

if [ $with_tray = 1 ]; then
	say "starting taskrouter-tray; a new chat task waits for alice in its menu"
	"$build/client/tray/taskrouter-tray" --socket "$sock" &
	tray_pid=$!
	pids+=("$tray_pid")
	post /sim/tasks '{"worker":"alice","channel":"chat","reservation_timeout":600,"attributes":{"customer":"Ada","topic":"billing"}}'
	echo
	say "click the tray icon, then 'Accept chat task from …' (or Accept in the notification); more tasks: curl -X POST -d '{\"worker\":\"alice\",\"channel\":\"chat\"}' $api/sim/tasks"
	wait "$tray_pid" || true
elif [ -t 0 ]; then
	say "running; create more tasks with: curl -X POST -d '{\"worker\":\"alice\",\"channel\":\"chat\"}' $api/sim/tasks  (Ctrl-C to stop)"
	wait "${pids[1]}"
else
	say "done"
fi
