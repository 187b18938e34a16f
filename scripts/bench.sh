#!/usr/bin/env bash
# The benchmarks in one command: build an optimised tree, run tests/bench/bench, print the
# table and write it (with the command and the machine) to doc/BENCHMARKS.md.
#   scripts/bench.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
build=build/bench
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" -Dbuildtype=release -Db_ndebug=true >/dev/null
fi
ninja -C "$build" >/dev/null
# Pages the linker just wrote stay dirty in the page cache until written back, and smaps
# counts them as the daemon's Private_Dirty (about 270 KB of the binary): flush them first.
sync
# The official SDK (tests/compat's pinned twilio-taskrouter) for the startup, Worker-side and
# SDK-apps rows.
if [ ! -d tests/compat/node_modules/twilio-taskrouter ]; then
	(cd tests/compat && npm ci --no-audit --no-fund --silent >/dev/null) ||
		echo "bench.sh: npm ci failed in tests/compat; the SDK rows will say (no SDK)" >&2
fi
table=$(mktemp)
TR_SIM=$build/tests/sim/taskrouter-sim TR_DAEMON=$build/daemon/taskrouterd \
	TR_BENCH_SDK=$PWD/tests/bench "$build/tests/bench/bench" --markdown "$table" "$@"
if [ -x tests/bench/sdk-compare.sh ]; then
	bash tests/bench/sdk-compare.sh "$build" >>"$table" || echo "(SDK comparison failed)" >>"$table"
fi
{
	echo "# Benchmarks"
	echo
	echo "Produced by \`bash scripts/bench.sh $*\` on $(date -u +%Y-%m-%d), $(nproc) cores,"
	echo "$(uname -sr). Each figure is a ratio to a baseline measured in the same run."
	echo
	cat "$table"
	echo
	cat tests/bench/NOTES.md
} >doc/BENCHMARKS.md
rm -f "$table"
echo "written to doc/BENCHMARKS.md"
