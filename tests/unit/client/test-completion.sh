#!/bin/bash
# The bash completion of taskrouterctl (TAP): the script parses and loads, registers
# _taskrouterctl, and completes commands (the same as 'taskrouterctl help' lists), options,
# option values written with '=', positional values and file names through
# "taskrouterctl __complete". No daemon runs: sids, activities and methods are left out.
# Usage: test-completion.sh COMPLETION-SCRIPT TASKROUTERCTL
set -u
script=$1
ctl=$2
n=0
failed=0

ok() {
	n=$((n + 1))
	if [[ $1 == 0 ]]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
		[[ -n ${3-} ]] && printf '# %s\n' "$3"
	fi
}

# complete WORD...: run _taskrouterctl as bash would on "taskrouterctl WORD..." with the
# cursor at the end of the last word; prints COMPREPLY, one a line, sorted.
complete_words() {
	COMP_WORDS=("$ctl" "$@")
	COMP_CWORD=$#
	COMP_LINE="${COMP_WORDS[*]}"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_taskrouterctl || return 1
	printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort
}

# expect WANT WORD...: the candidates (newline-separated, sorted) are exactly WANT.
expect() {
	local want=$1 got
	shift
	got=$(complete_words "$@")
	ok $([[ $got == "$want" ]]; echo $?) "taskrouterctl $* -> ${want//$'\n'/ }" \
		"got: ${got//$'\n'/ }"
}

# no daemon answers: completions that need one offer nothing
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export TASKROUTERD_SOCKET=$dir/no-daemon

bash -n "$script"
ok $? "bash -n $script"

# shellcheck source=/dev/null
source "$script"
ok $? "sourcing it"

[[ $(complete -p taskrouterctl 2>/dev/null) == *"-F _taskrouterctl"* ]]
ok $? "it registers _taskrouterctl for taskrouterctl"

# every command that 'help' lists, and nothing else
commands=$("$ctl" help | sed -n '/^Commands:/,/^$/p' | awk 'NF && $1 != "Commands:" {print $1}' |
	LC_ALL=C sort -u)
ok $([[ $(echo "$commands" | wc -l) -gt 20 ]]; echo $?) "help lists the commands"
expect "$commands" ""

expect "get" ge
expect $'reservation\nreservations' reserv
expect "--verbose" status --verb
expect $'--color\n--help\n--json\n--socket\n--timeout\n--version' --
expect $'always\nauto\nnever' --color ""
# "--color=al": bash hands over "--color" "=" "al" and replaces only "al"
expect "always" --color = al
expect $'cold\nwarm' transfer WT1 WK1 --mode ""
expect $'off\non' hold WT1 WK1 ""
expect "watch" help wat
expect "--no-muted" conference WR1 --no-mu
# a value that is not an option's: nothing
expect "" get WT1 ""

# --socket PATH completes file names
touch "$dir/sock-a" "$dir/sock-b"
expect "$dir/sock-a"$'\n'"$dir/sock-b" --socket "$dir/so"

echo "1..$n"
exit $((failed > 0))
