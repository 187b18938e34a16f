#!/usr/bin/env bash
# Rows for doc/BENCHMARKS.md: N apps embedding the official SDK vs taskrouterd + N clients.
#   tests/bench/sdk-compare.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
if [ ! -d "$here/../compat/node_modules/twilio-taskrouter" ]; then
	(cd "$here/../compat" && npm ci --no-audit --no-fund --silent >/dev/null)
fi
exec node "$here/sdk-compare.js" "$build/tests/sim/taskrouter-sim" "$build/daemon/taskrouterd" \
	"$build/client/taskrouterctl"
