#!/usr/bin/env bash
# The configured man pages (TAP): every @TOKEN@ replaced by the installation's path, the
# protocol file where they say it is installed, and (with groff) no formatting warnings.
set -u
docdir=$1; shift
n=0 failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }
for page in "$@"; do
	name=$(basename "$page")
	left=$(grep -o '@[A-Z_]*@' "$page" | sort -u | tr '\n' ' ')
	[ -z "$left" ]; ok $? "$name: no placeholder left ${left:+($left)}"
	if grep -q 'PROTOCOL\.md' "$page"; then
		grep -q "$docdir/PROTOCOL\.md" "$page"; ok $? "$name: PROTOCOL.md named at $docdir"
	fi
	if command -v groff >/dev/null; then
		out=$(groff -man -ww -z "$page" 2>&1)
		[ -z "$out" ]; ok $? "$name: groff -ww has no warning ${out:+($out)}"
	fi
done
echo "1..$n"
[ "$failed" = 0 ]
