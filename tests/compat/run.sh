#!/bin/sh
# Run the official TaskRouter JS SDK (twilio-taskrouter@2.1.1, pinned in package-lock.json)
# against taskrouter-sim. Usage: run.sh [path/to/taskrouter-sim]  (or TR_SIM in the env).
# Installs node_modules here on first use. Prints TAP; exits non-zero on failure.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sim=${1:-${TR_SIM:-}}
if [ -z "$sim" ] || [ ! -x "$sim" ]; then
	echo "Bail out! taskrouter-sim binary not given (argument or TR_SIM)"
	exit 1
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "Bail out! node and npm are required for the SDK compatibility test (Debian: apt-get install nodejs npm)"
	exit 1
fi
if [ ! -d "$here/node_modules/twilio-taskrouter" ]; then
	echo "# installing twilio-taskrouter@2.1.1 into $here/node_modules" >&2
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
		(cd "$here" && npm install --no-audit --no-fund --loglevel=error >&2) || {
		echo "Bail out! npm install failed"
		exit 1
	}
fi
exec node "$here/compat.js" "$sim"
