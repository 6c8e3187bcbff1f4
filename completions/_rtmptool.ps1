
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'rtmptool' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'rtmptool'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'rtmptool' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for each network phase, e.g. 500ms, 2s, 1m')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('probe', 'probe', [CompletionResultType]::ParameterValue, 'Connect to a server, time every phase, say what the server announced')
            [CompletionResult]::new('dump', 'dump', [CompletionResultType]::ParameterValue, 'Decode RTMP (handshake, chunks, messages, AMF0/AMF3, media tags) from a pcap/pcapng capture (file or stdin)')
            [CompletionResult]::new('publish', 'publish', [CompletionResultType]::ParameterValue, 'Send an FLV file (or stdin) to a server as a live stream')
            [CompletionResult]::new('play', 'play', [CompletionResultType]::ParameterValue, 'Receive a live stream and write it as FLV (file or stdout)')
            [CompletionResult]::new('ecn', 'ecn', [CompletionResultType]::ParameterValue, 'ECN inspection of RTMFP sessions in a capture: IP codepoints vs ECN Reports, verdicts per session and direction')
            [CompletionResult]::new('diagnose', 'diagnose', [CompletionResultType]::ParameterValue, 'Find and explain faults in a capture: chunk-size mismatch, "message too big", a handshake that never completes, refusals, and more')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'Many publishers and players from one process: capacity, delay, failures')
            [CompletionResult]::new('relay', 'relay', [CompletionResultType]::ParameterValue, 'Pull a stream from one server and push it to another, byte for byte, reconnecting with --reconnect')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'A strict diagnostic RTMP/RTMPS server: accepts publishers and players, fans streams out, reports every protocol deviation of its peers live')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish, elvish, powershell)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write the man pages (one per command) into a directory')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'rtmptool;probe' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Number of attempts (like ping -c)')
            [CompletionResult]::new('--count', '--count', [CompletionResultType]::ParameterName, 'Number of attempts (like ping -c)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Pause between attempts')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Pause between attempts')
            [CompletionResult]::new('--handshake', '--handshake', [CompletionResultType]::ParameterName, 'Handshake to offer: simple (version 0), digest (FFmpeg-like, 9.0.124.2), auto (= digest)')
            [CompletionResult]::new('--flashver', '--flashver', [CompletionResultType]::ParameterName, 'flashVer of the connect command')
            [CompletionResult]::new('--tcurl', '--tcurl', [CompletionResultType]::ParameterName, 'tcUrl of the connect command (default: rtmp[s]://host:port/app)')
            [CompletionResult]::new('--app', '--app', [CompletionResultType]::ParameterName, 'Application name, overriding how the URL path is split')
            [CompletionResult]::new('--stream', '--stream', [CompletionResultType]::ParameterName, 'Stream name (key), overriding how the URL path is split')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'Trust only the CA certificates in this PEM file (rtmps)')
            [CompletionResult]::new('--quickack', '--quickack', [CompletionResultType]::ParameterName, 'Re-arm TCP_QUICKACK after every read (Linux); off shows what ordinary clients see')
            [CompletionResult]::new('--fingerprint', '--fingerprint', [CompletionResultType]::ParameterName, 'rtmfp:// only: send the server''s certificate fingerprint (64 hex digits) as the endpoint discriminator instead of the URL')
            [CompletionResult]::new('--hostname', '--hostname', [CompletionResultType]::ParameterName, 'rtmfp:// only: send this required hostname as the endpoint discriminator instead of the URL')
            [CompletionResult]::new('--dh-group', '--dh-group', [CompletionResultType]::ParameterName, 'rtmfp:// with --handshake full: Diffie-Hellman group (2: 1024-bit, 14: 2048-bit); default: 14, else 2')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for each network phase, e.g. 500ms, 2s, 1m')
            [CompletionResult]::new('--publish', '--publish', [CompletionResultType]::ParameterName, 'Also createStream and publish (to the first onStatus), then unpublish')
            [CompletionResult]::new('--play', '--play', [CompletionResultType]::ParameterName, 'Also createStream and play (to the first onStatus and the first audio and video)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'rtmps without certificate verification (encrypted, not authenticated)')
            [CompletionResult]::new('--reveal-keys', '--reveal-keys', [CompletionResultType]::ParameterName, 'Show stream keys and query values in full')
            [CompletionResult]::new('--enhanced', '--enhanced', [CompletionResultType]::ParameterName, 'Announce Enhanced RTMP in connect (fourCcList, video/audioFourCcInfoMap, capsEx), as OBS and FFmpeg do for HEVC, AV1 or Opus, and show what the server states')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtmptool;dump' {
            [CompletionResult]::new('--conn', '--conn', [CompletionResultType]::ParameterName, 'Only connections matching: its number (0, 1, ...; RTMFP sessions u0, u1, ...), the whole `client-server` string, or one end, address or port of it, whole (1 is connection 1, not every 127.0.0.1)')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Only this direction')
            [CompletionResult]::new('--type', '--type', [CompletionResultType]::ParameterName, 'Only these message types: names (`video`, `command_amf0`, `command`, `data`, `control`, `media`) or numbers; comma-separated or repeated')
            [CompletionResult]::new('--stream-id', '--stream-id', [CompletionResultType]::ParameterName, 'Only messages on these message stream ids')
            [CompletionResult]::new('--command', '--command', [CompletionResultType]::ParameterName, 'Only commands/data messages with these names (e.g. `connect,publish,onStatus`)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Decode every TCP connection on this port as RTMP, handshake seen or not')
            [CompletionResult]::new('--keylog', '--keylog', [CompletionResultType]::ParameterName, 'RTMFP session keys (`RTMFP_SESSION` lines) to open encrypted RTMFP session packets')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for each network phase, e.g. 500ms, 2s, 1m')
            [CompletionResult]::new('--hex', '--hex', [CompletionResultType]::ParameterName, 'Hex dump (hexyl) of every message payload')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Instead of the messages, a table per connection: messages and bytes per type and direction, chunk sizes, media bitrate, frames, timestamps')
            [CompletionResult]::new('--reveal-keys', '--reveal-keys', [CompletionResultType]::ParameterName, 'Show the stream keys, query values and user info the capture names in full (by default they are shortened, in the decoded values and in --hex bytes)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtmptool;publish' {
            [CompletionResult]::new('--app', '--app', [CompletionResultType]::ParameterName, 'Application name, overriding how the URL path is split')
            [CompletionResult]::new('--stream', '--stream', [CompletionResultType]::ParameterName, 'Stream name (key), overriding how the URL path is split')
            [CompletionResult]::new('--chunk-size', '--chunk-size', [CompletionResultType]::ParameterName, 'Chunk size we send with (announced with Set Chunk Size before connect)')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'Trust only the CA certificates in this PEM file (rtmps)')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Pace at X times real time (by tag timestamps against a monotonic clock)')
            [CompletionResult]::new('--loop', '--loop', [CompletionResultType]::ParameterName, 'Send the file N times with continuous timestamps (0: forever)')
            [CompletionResult]::new('--start-timestamp', '--start-timestamp', [CompletionResultType]::ParameterName, 'Timestamp of the first tag (ms); e.g. 16777000 crosses 0xFFFFFF (extended timestamps) in 215 ms')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Stop after this much media time, e.g. 30s')
            [CompletionResult]::new('--max-gap', '--max-gap', [CompletionResultType]::ParameterName, 'A timestamp jump larger than this (or any step backwards) is warned about once and bridged, not waited out')
            [CompletionResult]::new('--kind', '--kind', [CompletionResultType]::ParameterName, 'Publishing type of the publish command')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for each network phase, e.g. 500ms, 2s, 1m')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'rtmps without certificate verification (encrypted, not authenticated)')
            [CompletionResult]::new('--reveal-keys', '--reveal-keys', [CompletionResultType]::ParameterName, 'Show stream keys and query values in full')
            [CompletionResult]::new('--no-pace', '--no-pace', [CompletionResultType]::ParameterName, 'Send as fast as the server takes it')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtmptool;play' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the FLV here (- for stdout); without it, only statistics')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the FLV here (- for stdout); without it, only statistics')
            [CompletionResult]::new('--app', '--app', [CompletionResultType]::ParameterName, 'Application name, overriding how the URL path is split')
            [CompletionResult]::new('--stream', '--stream', [CompletionResultType]::ParameterName, 'Stream name (key), overriding how the URL path is split')
            [CompletionResult]::new('--chunk-size', '--chunk-size', [CompletionResultType]::ParameterName, 'Chunk size we send with (announced with Set Chunk Size before connect)')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'Trust only the CA certificates in this PEM file (rtmps)')
            [CompletionResult]::new('--buffer-ms', '--buffer-ms', [CompletionResultType]::ParameterName, 'Buffer length announced with Set Buffer Length (ms)')
            [CompletionResult]::new('--start', '--start', [CompletionResultType]::ParameterName, 'Start argument of play: -2 live or recorded, -1 live only, ≥0 position in ms')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Stop after this much media time, e.g. 10s')
            [CompletionResult]::new('--frames', '--frames', [CompletionResultType]::ParameterName, 'Stop after N video frames (audio frames when the stream has no video)')
            [CompletionResult]::new('--until-keyframes', '--until-keyframes', [CompletionResultType]::ParameterName, 'Stop before the (N+1)-th keyframe: the output holds N whole GOPs')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Give up when no media arrives for this long (default: --timeout)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for each network phase, e.g. 500ms, 2s, 1m')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace FILE when it exists (it is replaced only once the new one is complete)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'rtmps without certificate verification (encrypted, not authenticated)')
            [CompletionResult]::new('--reveal-keys', '--reveal-keys', [CompletionResultType]::ParameterName, 'Show stream keys and query values in full')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtmptool;ecn' {
            [CompletionResult]::new('--keylog', '--keylog', [CompletionResultType]::ParameterName, 'RTMFP session keys (`RTMFP_SESSION` lines): without them user data and ECN Reports of sessions cannot be seen')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for each network phase, e.g. 500ms, 2s, 1m')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtmptool;diagnose' {
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Decode every TCP connection on this port as RTMP, handshake seen or not')
            [CompletionResult]::new('--bitrate', '--bitrate', [CompletionResultType]::ParameterName, 'URL: the bitrate you plan to send (e.g. 2500k, 6M), compared with --throughput')
            [CompletionResult]::new('--measure', '--measure', [CompletionResultType]::ParameterName, 'URL: how long --throughput sends')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for each network phase, e.g. 500ms, 2s, 1m')
            [CompletionResult]::new('--reveal-keys', '--reveal-keys', [CompletionResultType]::ParameterName, 'Show stream keys and query values in full')
            [CompletionResult]::new('--throughput', '--throughput', [CompletionResultType]::ParameterName, 'URL: only measure how many Mbit/s the server takes (by its own Acknowledgements)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtmptool;load' {
            [CompletionResult]::new('--players', '--players', [CompletionResultType]::ParameterName, 'Players to subscribe (player k plays stream k mod the number of streams)')
            [CompletionResult]::new('--publishers', '--publishers', [CompletionResultType]::ParameterName, 'Publishers (publisher i publishes stream i); needs --flv')
            [CompletionResult]::new('--flv', '--flv', [CompletionResultType]::ParameterName, 'FLV every publisher sends (read once, shared), paced by its timestamps')
            [CompletionResult]::new('--stream-pattern', '--stream-pattern', [CompletionResultType]::ParameterName, 'Stream path per stream number, replacing the URL''s path, e.g. ''live/s{i}''')
            [CompletionResult]::new('--streams', '--streams', [CompletionResultType]::ParameterName, 'Streams the players spread over when there are no publishers (default 1)')
            [CompletionResult]::new('--ramp', '--ramp', [CompletionResultType]::ParameterName, 'Connections opened per second')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'How long the load runs (publishers repeat the FLV); default: publishers send it once, players-only runs go on until Ctrl-C')
            [CompletionResult]::new('--probe-as', '--probe-as', [CompletionResultType]::ParameterName, 'How the delay probe travels: video (a video command frame, forwarded by every server) or data (onTextData, not forwarded by nginx-rtmp)')
            [CompletionResult]::new('--fail-if', '--fail-if', [CompletionResultType]::ParameterName, 'Exit 8 when the summary violates KEY OP NUMBER, e.g. ''p99_delay_ms>500'', ''failed>0'' (repeatable)')
            [CompletionResult]::new('--app', '--app', [CompletionResultType]::ParameterName, 'Application name, overriding how the URL path is split')
            [CompletionResult]::new('--chunk-size', '--chunk-size', [CompletionResultType]::ParameterName, 'Chunk size we send with (announced with Set Chunk Size before connect)')
            [CompletionResult]::new('--buffer-ms', '--buffer-ms', [CompletionResultType]::ParameterName, 'Buffer length players announce with Set Buffer Length (ms)')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Local address to connect from; repeat to spread connections over more source ports (e.g. 127.0.0.2, 127.0.0.3)')
            [CompletionResult]::new('--read-every', '--read-every', [CompletionResultType]::ParameterName, 'Players pause this long after each read (fewer wakeups per player; adds up to this much delay)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for each network phase, e.g. 500ms, 2s, 1m')
            [CompletionResult]::new('--delay-probe', '--delay-probe', [CompletionResultType]::ParameterName, 'Publishers stamp their send time every 100 ms; players report arrival minus send')
            [CompletionResult]::new('--reveal-keys', '--reveal-keys', [CompletionResultType]::ParameterName, 'Show stream keys and query values in full')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtmptool;relay' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Accept encoders here and carry each to DST_URL''s server: a decoding proxy that prints every message both ways (the dump renderer; --json too) and reports the diagnose findings')
            [CompletionResult]::new('--queue', '--queue', [CompletionResultType]::ParameterName, 'Bytes waiting for the destination beyond which media is dropped to the next key frame')
            [CompletionResult]::new('--chunk-size', '--chunk-size', [CompletionResultType]::ParameterName, 'Chunk size we send with')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'Trust only the CA certificates in this PEM file (rtmps)')
            [CompletionResult]::new('--record', '--record', [CompletionResultType]::ParameterName, 'With --listen: keep a copy of each encoder''s media in FILE.flv (never overwritten: FILE-1.flv, FILE-2.flv, … for the next)')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Stop after this long; default: until the source''s stream ends (or Ctrl-C)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for each network phase, e.g. 500ms, 2s, 1m')
            [CompletionResult]::new('--reconnect', '--reconnect', [CompletionResultType]::ParameterName, 'Reconnect either side when it drops (backoff up to 10 s); the destination gets metadata and sequence headers first, video from a key frame')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'rtmps without certificate verification (encrypted, not authenticated)')
            [CompletionResult]::new('--reveal-keys', '--reveal-keys', [CompletionResultType]::ParameterName, 'Show stream keys and query values in full')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtmptool;serve' {
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Address to listen on (repeatable); RTMP, and RTMPS on the same port with --cert/--key')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on (repeatable); RTMP, and RTMPS on the same port with --cert/--key')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Certificate chain (PEM) for RTMPS')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Private key (PEM) for RTMPS')
            [CompletionResult]::new('--record', '--record', [CompletionResultType]::ParameterName, 'Write each published stream to DIR/APP_STREAM.flv (never overwriting: a suffix is added)')
            [CompletionResult]::new('--publish-key', '--publish-key', [CompletionResultType]::ParameterName, 'Publishing needs this key: as the stream name, or as its key= query parameter')
            [CompletionResult]::new('--allow', '--allow', [CompletionResultType]::ParameterName, 'Allow an address for publish/play: [publish:|play:]ADDR[/PREFIX] or all; first matching rule wins')
            [CompletionResult]::new('--deny', '--deny', [CompletionResultType]::ParameterName, 'Deny an address for publish/play: [publish:|play:]ADDR[/PREFIX] or all; first matching rule wins')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Connections at once')
            [CompletionResult]::new('--max-message', '--max-message', [CompletionResultType]::ParameterName, 'Largest message a client may send (bytes)')
            [CompletionResult]::new('--handshake-timeout', '--handshake-timeout', [CompletionResultType]::ParameterName, 'Time for the RTMP (and TLS) handshake')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Close a connection that neither sends nor takes a byte for this long')
            [CompletionResult]::new('--chunk-size', '--chunk-size', [CompletionResultType]::ParameterName, 'Chunk size the server sends with')
            [CompletionResult]::new('--queue', '--queue', [CompletionResultType]::ParameterName, 'Messages a player may fall behind before it skips to the next key frame')
            [CompletionResult]::new('--merge-writes', '--merge-writes', [CompletionResultType]::ParameterName, 'Players write what queued up at most this often (0: every message at once): fewer wakeups and writes for up to this much added delay')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Stop after this long (for scripts and tests); default: until Ctrl-C')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for each network phase, e.g. 500ms, 2s, 1m')
            [CompletionResult]::new('--reveal-keys', '--reveal-keys', [CompletionResultType]::ParameterName, 'Show stream keys in full')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtmptool;completions' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for each network phase, e.g. 500ms, 2s, 1m')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtmptool;man' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for each network phase, e.g. 500ms, 2s, 1m')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Overwrite man pages that already exist there')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less human output')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More human output (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtmptool;help' {
            [CompletionResult]::new('probe', 'probe', [CompletionResultType]::ParameterValue, 'Connect to a server, time every phase, say what the server announced')
            [CompletionResult]::new('dump', 'dump', [CompletionResultType]::ParameterValue, 'Decode RTMP (handshake, chunks, messages, AMF0/AMF3, media tags) from a pcap/pcapng capture (file or stdin)')
            [CompletionResult]::new('publish', 'publish', [CompletionResultType]::ParameterValue, 'Send an FLV file (or stdin) to a server as a live stream')
            [CompletionResult]::new('play', 'play', [CompletionResultType]::ParameterValue, 'Receive a live stream and write it as FLV (file or stdout)')
            [CompletionResult]::new('ecn', 'ecn', [CompletionResultType]::ParameterValue, 'ECN inspection of RTMFP sessions in a capture: IP codepoints vs ECN Reports, verdicts per session and direction')
            [CompletionResult]::new('diagnose', 'diagnose', [CompletionResultType]::ParameterValue, 'Find and explain faults in a capture: chunk-size mismatch, "message too big", a handshake that never completes, refusals, and more')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'Many publishers and players from one process: capacity, delay, failures')
            [CompletionResult]::new('relay', 'relay', [CompletionResultType]::ParameterValue, 'Pull a stream from one server and push it to another, byte for byte, reconnecting with --reconnect')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'A strict diagnostic RTMP/RTMPS server: accepts publishers and players, fans streams out, reports every protocol deviation of its peers live')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish, elvish, powershell)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write the man pages (one per command) into a directory')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'rtmptool;help;probe' {
            break
        }
        'rtmptool;help;dump' {
            break
        }
        'rtmptool;help;publish' {
            break
        }
        'rtmptool;help;play' {
            break
        }
        'rtmptool;help;ecn' {
            break
        }
        'rtmptool;help;diagnose' {
            break
        }
        'rtmptool;help;load' {
            break
        }
        'rtmptool;help;relay' {
            break
        }
        'rtmptool;help;serve' {
            break
        }
        'rtmptool;help;completions' {
            break
        }
        'rtmptool;help;man' {
            break
        }
        'rtmptool;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
