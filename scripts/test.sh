#!/usr/bin/env bash
# README's test command: install what is missing, build, and run every suite in three passes:
#   1. a normal build (-Dwerror=true): unit, sim, e2e, compat, fuzz (time-boxed, clang)
#   2. an ASan+UBSan build (UBSAN_OPTIONS=halt_on_error=1): unit, sim, e2e, compat
#   3. valgrind over the daemon's and the simulator's end-to-end suites (normal build)
# The last line is "N passed, N failed" over all passes; the exit status is non-zero on any
# failure. Build trees go to build/ci-*. Set TR_TEST_PASSES="1 2" to run only some passes.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

bash scripts/deps.sh --test || exit 1

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1
passes=${TR_TEST_PASSES:-1 2 3}
logs=()
setup_failed=0

build() { # dir, meson args...
	local dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" -Dwerror=true -Dtests=enabled "$@" >"$dir.setup.log" 2>&1 ||
			{ cat "$dir.setup.log"; return 1; }
	fi
	ninja -C "$dir" >"$dir.build.log" 2>&1 || { tail -60 "$dir.build.log"; return 1; }
}

suite_args() { # dir, suites... -> --suite X for each suite that exists in dir
	local dir=$1; shift
	local have
	have=$(meson test -C "$dir" --list 2>/dev/null | sed -n 's/^taskrouterd:\([^ ]*\) \/ .*/\1/p' | tr '+' '\n' | sort -u)
	for s in "$@"; do
		if grep -qx "$s" <<<"$have"; then printf -- '--suite %s ' "$s"; fi
	done
}

run_pass() { # name, dir, setup-args, test-extra-args, suites...
	local name=$1 dir=$2 sargs=$3 targs=$4; shift 4
	echo "=== pass: $name"
	mkdir -p build
	# shellcheck disable=SC2086
	if ! build "$dir" $sargs; then
		echo "pass $name: build failed"
		setup_failed=$((setup_failed + 1))
		return
	fi
	local sel
	sel=$(suite_args "$dir" "$@")
	if [ -z "$sel" ]; then
		echo "pass $name: no test in suites $*"
		return
	fi
	# shellcheck disable=SC2086
	meson test -C "$dir" --no-rebuild --print-errorlogs $targs $sel
	cp "$dir/meson-logs/testlog${targs:+-valgrind}.json" "build/testlog-$name.json" 2>/dev/null ||
		cp "$dir/meson-logs/testlog.json" "build/testlog-$name.json"
	logs+=("build/testlog-$name.json")
}

for p in $passes; do
	case $p in
	1) run_pass normal build/ci-normal "" "" unit sim e2e faults systemd compat fuzz ;;
	2) run_pass asan build/ci-asan "-Db_sanitize=address,undefined -Db_lundef=false" "" unit sim e2e faults systemd compat ;;
	3) if command -v valgrind >/dev/null; then
		run_pass valgrind build/ci-normal "" "--setup=valgrind" valgrind
	   fi ;;
	esac
done

python3 - "$setup_failed" "${logs[@]}" <<'PY'
import json, sys
failed_builds = int(sys.argv[1])
passed = failed = skipped = 0
for path in sys.argv[2:]:
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line).get("result")
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
            else:
                failed += 1
failed += failed_builds
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
