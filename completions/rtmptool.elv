
use builtin;
use str;

set edit:completion:arg-completer[rtmptool] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'rtmptool'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'rtmptool'= {
            cand --color 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout'
            cand --timeout 'Limit for each network phase, e.g. 500ms, 2s, 1m'
            cand --json 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
            cand -q 'Less human output'
            cand --quiet 'Less human output'
            cand -v 'More human output (repeatable)'
            cand --verbose 'More human output (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand completions 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
            cand man 'Write the man pages (one per command) into a directory'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rtmptool;completions'= {
            cand --color 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout'
            cand --timeout 'Limit for each network phase, e.g. 500ms, 2s, 1m'
            cand --json 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
            cand -q 'Less human output'
            cand --quiet 'Less human output'
            cand -v 'More human output (repeatable)'
            cand --verbose 'More human output (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtmptool;man'= {
            cand --color 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout'
            cand --timeout 'Limit for each network phase, e.g. 500ms, 2s, 1m'
            cand --json 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
            cand -q 'Less human output'
            cand --quiet 'Less human output'
            cand -v 'More human output (repeatable)'
            cand --verbose 'More human output (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtmptool;help'= {
            cand completions 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
            cand man 'Write the man pages (one per command) into a directory'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rtmptool;help;completions'= {
        }
        &'rtmptool;help;man'= {
        }
        &'rtmptool;help;help'= {
        }
    ]
    $completions[$command]
}
