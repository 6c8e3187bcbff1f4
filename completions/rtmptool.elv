
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
            cand probe 'Connect to a server, time every phase, say what the server announced'
            cand dump 'Decode RTMP (handshake, chunks, messages, AMF0/AMF3, media tags) from a pcap/pcapng capture (file or stdin)'
            cand publish 'Send an FLV file (or stdin) to a server as a live stream'
            cand play 'Receive a live stream and write it as FLV (file or stdout)'
            cand ecn 'ECN inspection of RTMFP sessions in a capture: IP codepoints vs ECN Reports, verdicts per session and direction'
            cand diagnose 'Find and explain faults in a capture: chunk-size mismatch, "message too big", a handshake that never completes, refusals, and more'
            cand load 'Many publishers and players from one process: capacity, delay, failures'
            cand relay 'Pull a stream from one server and push it to another, byte for byte, reconnecting with --reconnect'
            cand serve 'A strict diagnostic RTMP/RTMPS server: accepts publishers and players, fans streams out, reports every protocol deviation of its peers live'
            cand completions 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
            cand man 'Write the man pages (one per command) into a directory'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rtmptool;probe'= {
            cand -c 'Number of attempts (like ping -c)'
            cand --count 'Number of attempts (like ping -c)'
            cand -i 'Pause between attempts'
            cand --interval 'Pause between attempts'
            cand --handshake 'Handshake to offer: simple (version 0), digest (FFmpeg-like, 9.0.124.2), auto (= digest)'
            cand --flashver 'flashVer of the connect command'
            cand --tcurl 'tcUrl of the connect command (default: rtmp[s]://host:port/app)'
            cand --app 'Application name, overriding how the URL path is split'
            cand --stream 'Stream name (key), overriding how the URL path is split'
            cand --ca 'Trust only the CA certificates in this PEM file (rtmps)'
            cand --quickack 'Re-arm TCP_QUICKACK after every read (Linux); off shows what ordinary clients see'
            cand --fingerprint 'rtmfp:// only: send the server''s certificate fingerprint (64 hex digits) as the endpoint discriminator instead of the URL'
            cand --hostname 'rtmfp:// only: send this required hostname as the endpoint discriminator instead of the URL'
            cand --dh-group 'rtmfp:// with --handshake full: Diffie-Hellman group (2: 1024-bit, 14: 2048-bit); default: 14, else 2'
            cand --color 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout'
            cand --timeout 'Limit for each network phase, e.g. 500ms, 2s, 1m'
            cand --publish 'Also createStream and publish (to the first onStatus), then unpublish'
            cand --play 'Also createStream and play (to the first onStatus and the first audio and video)'
            cand --insecure 'rtmps without certificate verification (encrypted, not authenticated)'
            cand --reveal-keys 'Show stream keys and query values in full'
            cand --enhanced 'Announce Enhanced RTMP in connect (fourCcList, video/audioFourCcInfoMap, capsEx), as OBS and FFmpeg do for HEVC, AV1 or Opus, and show what the server states'
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
        &'rtmptool;dump'= {
            cand --conn 'Only connections matching: its number (0, 1, ...; RTMFP sessions u0, u1, ...), the whole `client-server` string, or one end, address or port of it, whole (1 is connection 1, not every 127.0.0.1)'
            cand --dir 'Only this direction'
            cand --type 'Only these message types: names (`video`, `command_amf0`, `command`, `data`, `control`, `media`) or numbers; comma-separated or repeated'
            cand --stream-id 'Only messages on these message stream ids'
            cand --command 'Only commands/data messages with these names (e.g. `connect,publish,onStatus`)'
            cand --port 'Decode every TCP connection on this port as RTMP, handshake seen or not'
            cand --keylog 'RTMFP session keys (`RTMFP_SESSION` lines) to open encrypted RTMFP session packets'
            cand --color 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout'
            cand --timeout 'Limit for each network phase, e.g. 500ms, 2s, 1m'
            cand --hex 'Hex dump (hexyl) of every message payload'
            cand --stats 'Instead of the messages, a table per connection: messages and bytes per type and direction, chunk sizes, media bitrate, frames, timestamps'
            cand --reveal-keys 'Show the stream keys, query values and user info the capture names in full (by default they are shortened, in the decoded values and in --hex bytes)'
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
        &'rtmptool;publish'= {
            cand --app 'Application name, overriding how the URL path is split'
            cand --stream 'Stream name (key), overriding how the URL path is split'
            cand --chunk-size 'Chunk size we send with (announced with Set Chunk Size before connect)'
            cand --ca 'Trust only the CA certificates in this PEM file (rtmps)'
            cand --rate 'Pace at X times real time (by tag timestamps against a monotonic clock)'
            cand --loop 'Send the file N times with continuous timestamps (0: forever)'
            cand --start-timestamp 'Timestamp of the first tag (ms); e.g. 16777000 crosses 0xFFFFFF (extended timestamps) in 215 ms'
            cand --duration 'Stop after this much media time, e.g. 30s'
            cand --max-gap 'A timestamp jump larger than this (or any step backwards) is warned about once and bridged, not waited out'
            cand --kind 'Publishing type of the publish command'
            cand --color 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout'
            cand --timeout 'Limit for each network phase, e.g. 500ms, 2s, 1m'
            cand --insecure 'rtmps without certificate verification (encrypted, not authenticated)'
            cand --reveal-keys 'Show stream keys and query values in full'
            cand --no-pace 'Send as fast as the server takes it'
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
        &'rtmptool;play'= {
            cand -o 'Write the FLV here (- for stdout); without it, only statistics'
            cand --output 'Write the FLV here (- for stdout); without it, only statistics'
            cand --app 'Application name, overriding how the URL path is split'
            cand --stream 'Stream name (key), overriding how the URL path is split'
            cand --chunk-size 'Chunk size we send with (announced with Set Chunk Size before connect)'
            cand --ca 'Trust only the CA certificates in this PEM file (rtmps)'
            cand --buffer-ms 'Buffer length announced with Set Buffer Length (ms)'
            cand --start 'Start argument of play: -2 live or recorded, -1 live only, ≥0 position in ms'
            cand --duration 'Stop after this much media time, e.g. 10s'
            cand --frames 'Stop after N video frames (audio frames when the stream has no video)'
            cand --until-keyframes 'Stop before the (N+1)-th keyframe: the output holds N whole GOPs'
            cand --idle-timeout 'Give up when no media arrives for this long (default: --timeout)'
            cand --color 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout'
            cand --timeout 'Limit for each network phase, e.g. 500ms, 2s, 1m'
            cand --force 'Replace FILE when it exists (it is replaced only once the new one is complete)'
            cand --insecure 'rtmps without certificate verification (encrypted, not authenticated)'
            cand --reveal-keys 'Show stream keys and query values in full'
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
        &'rtmptool;ecn'= {
            cand --keylog 'RTMFP session keys (`RTMFP_SESSION` lines): without them user data and ECN Reports of sessions cannot be seen'
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
        &'rtmptool;diagnose'= {
            cand --port 'Decode every TCP connection on this port as RTMP, handshake seen or not'
            cand --bitrate 'URL: the bitrate you plan to send (e.g. 2500k, 6M), compared with --throughput'
            cand --measure 'URL: how long --throughput sends'
            cand --color 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout'
            cand --timeout 'Limit for each network phase, e.g. 500ms, 2s, 1m'
            cand --reveal-keys 'Show stream keys and query values in full'
            cand --throughput 'URL: only measure how many Mbit/s the server takes (by its own Acknowledgements)'
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
        &'rtmptool;load'= {
            cand --players 'Players to subscribe (player k plays stream k mod the number of streams)'
            cand --publishers 'Publishers (publisher i publishes stream i); needs --flv'
            cand --flv 'FLV every publisher sends (read once, shared), paced by its timestamps'
            cand --stream-pattern 'Stream path per stream number, replacing the URL''s path, e.g. ''live/s{i}'''
            cand --streams 'Streams the players spread over when there are no publishers (default 1)'
            cand --ramp 'Connections opened per second'
            cand --duration 'How long the load runs (publishers repeat the FLV); default: publishers send it once, players-only runs go on until Ctrl-C'
            cand --probe-as 'How the delay probe travels: video (a video command frame, forwarded by every server) or data (onTextData, not forwarded by nginx-rtmp)'
            cand --fail-if 'Exit 8 when the summary violates KEY OP NUMBER, e.g. ''p99_delay_ms>500'', ''failed>0'' (repeatable)'
            cand --app 'Application name, overriding how the URL path is split'
            cand --chunk-size 'Chunk size we send with (announced with Set Chunk Size before connect)'
            cand --buffer-ms 'Buffer length players announce with Set Buffer Length (ms)'
            cand --bind 'Local address to connect from; repeat to spread connections over more source ports (e.g. 127.0.0.2, 127.0.0.3)'
            cand --read-every 'Players pause this long after each read (fewer wakeups per player; adds up to this much delay)'
            cand --color 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout'
            cand --timeout 'Limit for each network phase, e.g. 500ms, 2s, 1m'
            cand --delay-probe 'Publishers stamp their send time every 100 ms; players report arrival minus send'
            cand --reveal-keys 'Show stream keys and query values in full'
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
        &'rtmptool;relay'= {
            cand --listen 'Accept encoders here and carry each to DST_URL''s server: a decoding proxy that prints every message both ways (the dump renderer; --json too) and reports the diagnose findings'
            cand --queue 'Bytes waiting for the destination beyond which media is dropped to the next key frame'
            cand --chunk-size 'Chunk size we send with'
            cand --ca 'Trust only the CA certificates in this PEM file (rtmps)'
            cand --record 'With --listen: keep a copy of each encoder''s media in FILE.flv (never overwritten: FILE-1.flv, FILE-2.flv, … for the next)'
            cand --duration 'Stop after this long; default: until the source''s stream ends (or Ctrl-C)'
            cand --color 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout'
            cand --timeout 'Limit for each network phase, e.g. 500ms, 2s, 1m'
            cand --reconnect 'Reconnect either side when it drops (backoff up to 10 s); the destination gets metadata and sequence headers first, video from a key frame'
            cand --insecure 'rtmps without certificate verification (encrypted, not authenticated)'
            cand --reveal-keys 'Show stream keys and query values in full'
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
        &'rtmptool;serve'= {
            cand -l 'Address to listen on (repeatable); RTMP, and RTMPS on the same port with --cert/--key'
            cand --listen 'Address to listen on (repeatable); RTMP, and RTMPS on the same port with --cert/--key'
            cand --cert 'Certificate chain (PEM) for RTMPS'
            cand --key 'Private key (PEM) for RTMPS'
            cand --record 'Write each published stream to DIR/APP_STREAM.flv (never overwriting: a suffix is added)'
            cand --publish-key 'Publishing needs this key: as the stream name, or as its key= query parameter'
            cand --allow 'Allow an address for publish/play: [publish:|play:]ADDR[/PREFIX] or all; first matching rule wins'
            cand --deny 'Deny an address for publish/play: [publish:|play:]ADDR[/PREFIX] or all; first matching rule wins'
            cand --max-connections 'Connections at once'
            cand --max-message 'Largest message a client may send (bytes)'
            cand --handshake-timeout 'Time for the RTMP (and TLS) handshake'
            cand --idle-timeout 'Close a connection that neither sends nor takes a byte for this long'
            cand --chunk-size 'Chunk size the server sends with'
            cand --queue 'Messages a player may fall behind before it skips to the next key frame'
            cand --merge-writes 'Players write what queued up at most this often (0: every message at once): fewer wakeups and writes for up to this much added delay'
            cand --duration 'Stop after this long (for scripts and tests); default: until Ctrl-C'
            cand --color 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout'
            cand --timeout 'Limit for each network phase, e.g. 500ms, 2s, 1m'
            cand --reveal-keys 'Show stream keys in full'
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
            cand --force 'Overwrite man pages that already exist there'
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
            cand probe 'Connect to a server, time every phase, say what the server announced'
            cand dump 'Decode RTMP (handshake, chunks, messages, AMF0/AMF3, media tags) from a pcap/pcapng capture (file or stdin)'
            cand publish 'Send an FLV file (or stdin) to a server as a live stream'
            cand play 'Receive a live stream and write it as FLV (file or stdout)'
            cand ecn 'ECN inspection of RTMFP sessions in a capture: IP codepoints vs ECN Reports, verdicts per session and direction'
            cand diagnose 'Find and explain faults in a capture: chunk-size mismatch, "message too big", a handshake that never completes, refusals, and more'
            cand load 'Many publishers and players from one process: capacity, delay, failures'
            cand relay 'Pull a stream from one server and push it to another, byte for byte, reconnecting with --reconnect'
            cand serve 'A strict diagnostic RTMP/RTMPS server: accepts publishers and players, fans streams out, reports every protocol deviation of its peers live'
            cand completions 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
            cand man 'Write the man pages (one per command) into a directory'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rtmptool;help;probe'= {
        }
        &'rtmptool;help;dump'= {
        }
        &'rtmptool;help;publish'= {
        }
        &'rtmptool;help;play'= {
        }
        &'rtmptool;help;ecn'= {
        }
        &'rtmptool;help;diagnose'= {
        }
        &'rtmptool;help;load'= {
        }
        &'rtmptool;help;relay'= {
        }
        &'rtmptool;help;serve'= {
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
