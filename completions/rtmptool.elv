
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
            cand dump 'Decode RTMP (handshake, chunks, messages, AMF0/AMF3, media tags) from a pcap/pcapng capture (file or stdin)'
            cand completions 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
            cand man 'Write the man pages (one per command) into a directory'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rtmptool;dump'= {
            cand --conn 'Only connections matching: `client-server` string, an address or port it contains, or its number (0, 1, ...)'
            cand --dir 'Only this direction'
            cand --type 'Only these message types: names (`video`, `command_amf0`, `command`, `data`, `control`, `media`) or numbers; comma-separated or repeated'
            cand --stream-id 'Only messages on these message stream ids'
            cand --command 'Only commands/data messages with these names (e.g. `connect,publish,onStatus`)'
            cand --port 'Decode every TCP connection on this port as RTMP, handshake seen or not'
            cand --color 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout'
            cand --timeout 'Limit for each network phase, e.g. 500ms, 2s, 1m'
            cand --hex 'Hex dump (hexyl) of every message payload'
            cand --stats 'Instead of the messages, a table per connection: messages and bytes per type and direction, chunk sizes, media bitrate, frames, timestamps'
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
            cand dump 'Decode RTMP (handshake, chunks, messages, AMF0/AMF3, media tags) from a pcap/pcapng capture (file or stdin)'
            cand completions 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
            cand man 'Write the man pages (one per command) into a directory'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rtmptool;help;dump'= {
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
