#!/bin/bash
# run-fuzz.sh TARGET SECONDS [BUILD_DIR] — a time-boxed libFuzzer run.
#
# Builds TARGET (e.g. fuzz-rpc) with clang in BUILD_DIR (default: <source>/build-fuzz,
# configured with -Dfuzzing=true if it does not exist yet), unless FUZZ_BINARY names an
# already built target. Runs it for SECONDS against a temporary copy of the seed corpus
# tests/data/TARGET/, so the repository is never modified. New interesting inputs are
# kept in $FUZZ_CORPUS_OUT when that is set. Crashes are written to BUILD_DIR/fuzz-artifacts
# (or $FUZZ_ARTIFACTS) and make the script fail.
#
# Extra libFuzzer flags can be passed in FUZZ_FLAGS (e.g. FUZZ_FLAGS="-jobs=2 -workers=2").
# Exit: 0 no finding, 1 finding or error, 77 clang/libFuzzer unavailable (meson: skipped).
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 TARGET SECONDS [BUILD_DIR]" >&2
	exit 2
fi
target=$1
seconds=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${3:-$src/build-fuzz}
seeds=$src/tests/data/$target

if [ ! -d "$seeds" ]; then
	echo "run-fuzz: no seed corpus $seeds" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/$target.XXXXXX")
trap 'rm -rf "$work"' EXIT

bin=${FUZZ_BINARY:-}
if [ -z "$bin" ]; then
	if ! command -v clang >/dev/null; then
		echo "run-fuzz: clang not found, skipping" >&2
		exit 77
	fi
	if [ ! -f "$build/build.ninja" ]; then
		echo "run-fuzz: configuring $build"
		CC=clang meson setup "$build" "$src" -Dfuzzing=true -Db_lundef=false \
			-Dbuildtype=debugoptimized >"$work/setup.log" 2>&1 || {
			cat "$work/setup.log" >&2
			echo "run-fuzz: meson setup failed" >&2
			exit 1
		}
	fi
	ninja -C "$build" -j2 "tests/fuzz/$target" >/dev/null || {
		echo "run-fuzz: build of $target failed" >&2
		exit 1
	}
	bin=$build/tests/fuzz/$target
fi

mkdir -p "$work/corpus"
cp "$seeds"/* "$work/corpus/"
artifacts=${FUZZ_ARTIFACTS:-$build/fuzz-artifacts}
mkdir -p "$artifacts"

dict=()
if [ -f "$src/tests/fuzz/$target.dict" ]; then
	dict=(-dict="$src/tests/fuzz/$target.dict")
fi

echo "run-fuzz: $bin for ${seconds}s, seeds $seeds ($(ls "$seeds" | wc -l) files)"
set +e
# shellcheck disable=SC2086
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
	"$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
	-max_len=20000 -artifact_prefix="$artifacts/" "${dict[@]}" ${FUZZ_FLAGS:-} "$work/corpus" \
	>"$work/log" 2>&1
rc=$?
set -e

grep -E '^(INFO: seed corpus|#[0-9]+ +DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' \
	"$work/log" || true
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
echo "run-fuzz: $target executed ${execs:-?} inputs in ${seconds}s, exit $rc"
if [ -n "${FUZZ_CORPUS_OUT:-}" ]; then
	mkdir -p "$FUZZ_CORPUS_OUT"
	cp -n "$work/corpus"/* "$FUZZ_CORPUS_OUT/" 2>/dev/null || true
fi
if [ $rc -ne 0 ]; then
	echo "run-fuzz: FINDING (or fuzzer error); full log follows" >&2
	tail -n 60 "$work/log" >&2
	exit 1
fi
exit 0
