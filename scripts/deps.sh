#!/usr/bin/env bash
# Install what taskrouterd needs to build, test and run, on Debian 12 (as root).
# Idempotent and quick when everything is present: apt runs only for what is missing.
#   scripts/deps.sh            build + run dependencies
#   scripts/deps.sh --test     also what the test suites need (valgrind, clang for
#                              fuzzing, Node.js for the official-SDK compatibility test,
#                              the tray's libraries, Xvfb and D-Bus for its end-to-end test)
#   scripts/deps.sh --tray     build + run dependencies and taskrouter-tray's libraries
set -euo pipefail

want=(meson ninja-build pkg-config gcc libc6-dev
	libuv1-dev libyajl-dev libwebsockets-dev libwebsockets-evlib-uv
	libcurl4-openssl-dev libssl-dev libinih-dev
	curl ca-certificates python3 systemd)
tray=(libglib2.0-dev libgtk-3-dev libayatana-appindicator3-dev libnotify-dev)
if [ "${1:-}" = "--test" ]; then
	want+=(libcmocka-dev valgrind clang libclang-rt-14-dev jq procps strace "${tray[@]}" xvfb dbus)
elif [ "${1:-}" = "--tray" ]; then
	want+=("${tray[@]}")
fi

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
# Node.js: any node >= 18 will do (the SDK test pins twilio-taskrouter@2.1.1); take Debian's
# only when none is installed.
if [ "${1:-}" = "--test" ] && ! command -v node >/dev/null 2>&1; then
	missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
