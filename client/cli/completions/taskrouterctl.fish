# fish completion for taskrouterctl(1). The candidates, with their descriptions, come from
# "taskrouterctl __complete WORD... CURRENT", which reads the command table of taskrouterctl's
# own parser and asks the daemon for sids, activity names, methods and events.

function __taskrouterctl_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l out ($words[1] __complete $words[2..-1] "$cur" 2>/dev/null)
    if test "$out[1]" = ":files"
        __fish_complete_path (string replace -r -- '^--[^=]*=' '' "$cur")
        return
    end
    printf '%s\n' $out
end

complete -c taskrouterctl -f -a '(__taskrouterctl_complete)'
