# bash completion for taskrouterctl(1)
#
# The candidates come from "taskrouterctl __complete WORD... CURRENT", which reads the
# command table of taskrouterctl's own parser: commands, options and their values, and the
# task and reservation sids, activity names, methods and events that the daemon knows (asked
# on the --socket given on the line, with a short timeout; none when it cannot be reached).

_taskrouterctl() {
	local -a words=() out=()
	local i w cur prefix=
	local IFS=$'\n'

	# COMP_WORDBREAKS splits "--color=al" into "--color" "=" "al": put it back together,
	# taskrouterctl completes the whole word.
	for ((i = 1; i <= COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if ((${#words[@]} > 0)) && [[ $w == "=" || ${words[${#words[@]} - 1]} == --*= ]]; then
			words[${#words[@]} - 1]+=$w
		else
			words+=("$w")
		fi
	done
	((${#words[@]} > 0)) || words=("")
	cur=${words[${#words[@]} - 1]}

	out=($("${COMP_WORDS[0]}" __complete "${words[@]}" 2>/dev/null))
	COMPREPLY=()
	if [[ ${out[0]-} == ":files" ]]; then
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "${cur#--*=}"))
		return 0
	fi
	# Where '=' breaks words, bash replaces only what follows it.
	if [[ $cur == --*=* && $COMP_WORDBREAKS == *=* ]]; then
		prefix=${cur%%=*}=
	fi
	for w in "${out[@]}"; do
		w=${w%%$'\t'*}
		w=${w#"$prefix"}
		printf -v w '%q' "$w"
		COMPREPLY+=("$w")
	done
	return 0
}

complete -F _taskrouterctl taskrouterctl
