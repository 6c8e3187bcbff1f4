# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rtmptool_global_optspecs
    string join \n json color= q/quiet v/verbose timeout= h/help V/version
end

function __fish_rtmptool_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rtmptool_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rtmptool_using_subcommand
    set -l cmd (__fish_rtmptool_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rtmptool -n "__fish_rtmptool_needs_command" -l color -d 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set'
always\t'Always colour'
never\t'Never colour'"
complete -c rtmptool -n "__fish_rtmptool_needs_command" -l timeout -d 'Limit for each network phase, e.g. 500ms, 2s, 1m' -r
complete -c rtmptool -n "__fish_rtmptool_needs_command" -l json -d 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -s q -l quiet -d 'Less human output'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -s v -l verbose -d 'More human output (repeatable)'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -s V -l version -d 'Print version'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -f -a "probe" -d 'Connect to a server, time every phase, say what the server announced'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -f -a "dump" -d 'Decode RTMP (handshake, chunks, messages, AMF0/AMF3, media tags) from a pcap/pcapng capture (file or stdin)'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -f -a "publish" -d 'Send an FLV file (or stdin) to a server as a live stream'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -f -a "play" -d 'Receive a live stream and write it as FLV (file or stdout)'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -f -a "ecn" -d 'ECN inspection of RTMFP sessions in a capture: IP codepoints vs ECN Reports, verdicts per session and direction'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -f -a "diagnose" -d 'Find and explain faults in a capture: chunk-size mismatch, "message too big", a handshake that never completes, refusals, and more'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -f -a "load" -d 'Many publishers and players from one process: capacity, delay, failures'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -f -a "relay" -d 'Pull a stream from one server and push it to another, byte for byte, reconnecting with --reconnect'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -f -a "serve" -d 'A strict diagnostic RTMP/RTMPS server: accepts publishers and players, fans streams out, reports every protocol deviation of its peers live'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -f -a "man" -d 'Write the man pages (one per command) into a directory'
complete -c rtmptool -n "__fish_rtmptool_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -s c -l count -d 'Number of attempts (like ping -c)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -s i -l interval -d 'Pause between attempts' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l handshake -d 'Handshake to offer: simple (version 0), digest (FFmpeg-like, 9.0.124.2), auto (= digest)' -r -f -a "simple\t'Version bytes zero, no digest (RTMP 1.0 §5.2)'
digest\t'HMAC-SHA256 digest, as Flash Player and FFmpeg'
auto\t'Digest (what servers expect from modern clients); for rtmfp:// URLs, IHello to RHello only'
full\t'rtmfp:// only: go on from RHello to an open session (IIKeying/RIKeying, Diffie-Hellman)'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l flashver -d 'flashVer of the connect command' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l tcurl -d 'tcUrl of the connect command (default: rtmp[s]://host:port/app)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l app -d 'Application name, overriding how the URL path is split' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l stream -d 'Stream name (key), overriding how the URL path is split' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l ca -d 'Trust only the CA certificates in this PEM file (rtmps)' -r -F
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l quickack -d 'Re-arm TCP_QUICKACK after every read (Linux); off shows what ordinary clients see' -r -f -a "on\t'Enabled'
off\t'Disabled'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l fingerprint -d 'rtmfp:// only: send the server\'s certificate fingerprint (64 hex digits) as the endpoint discriminator instead of the URL' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l hostname -d 'rtmfp:// only: send this required hostname as the endpoint discriminator instead of the URL' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l dh-group -d 'rtmfp:// with --handshake full: Diffie-Hellman group (2: 1024-bit, 14: 2048-bit); default: 14, else 2' -r -f -a "2\t''
14\t''"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l color -d 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set'
always\t'Always colour'
never\t'Never colour'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l timeout -d 'Limit for each network phase, e.g. 500ms, 2s, 1m' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l publish -d 'Also createStream and publish (to the first onStatus), then unpublish'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l play -d 'Also createStream and play (to the first onStatus and the first audio and video)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l insecure -d 'rtmps without certificate verification (encrypted, not authenticated)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l reveal-keys -d 'Show stream keys and query values in full'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l enhanced -d 'Announce Enhanced RTMP in connect (fourCcList, video/audioFourCcInfoMap, capsEx), as OBS and FFmpeg do for HEVC, AV1 or Opus, and show what the server states'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -l json -d 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -s q -l quiet -d 'Less human output'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -s v -l verbose -d 'More human output (repeatable)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand probe" -s V -l version -d 'Print version'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l conn -d 'Only connections matching: its number (0, 1, ...; RTMFP sessions u0, u1, ...), the whole `client-server` string, or one end, address or port of it, whole (1 is connection 1, not every 127.0.0.1)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l dir -d 'Only this direction' -r -f -a "c2s\t'Client to server'
s2c\t'Server to client'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l type -d 'Only these message types: names (`video`, `command_amf0`, `command`, `data`, `control`, `media`) or numbers; comma-separated or repeated' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l stream-id -d 'Only messages on these message stream ids' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l command -d 'Only commands/data messages with these names (e.g. `connect,publish,onStatus`)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l port -d 'Decode every TCP connection on this port as RTMP, handshake seen or not' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l keylog -d 'RTMFP session keys (`RTMFP_SESSION` lines) to open encrypted RTMFP session packets' -r -F
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l color -d 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set'
always\t'Always colour'
never\t'Never colour'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l timeout -d 'Limit for each network phase, e.g. 500ms, 2s, 1m' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l hex -d 'Hex dump (hexyl) of every message payload'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l stats -d 'Instead of the messages, a table per connection: messages and bytes per type and direction, chunk sizes, media bitrate, frames, timestamps'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l reveal-keys -d 'Show the stream keys, query values and user info the capture names in full (by default they are shortened, in the decoded values and in --hex bytes)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -l json -d 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -s q -l quiet -d 'Less human output'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -s v -l verbose -d 'More human output (repeatable)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand dump" -s V -l version -d 'Print version'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l app -d 'Application name, overriding how the URL path is split' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l stream -d 'Stream name (key), overriding how the URL path is split' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l chunk-size -d 'Chunk size we send with (announced with Set Chunk Size before connect)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l ca -d 'Trust only the CA certificates in this PEM file (rtmps)' -r -F
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l rate -d 'Pace at X times real time (by tag timestamps against a monotonic clock)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l loop -d 'Send the file N times with continuous timestamps (0: forever)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l start-timestamp -d 'Timestamp of the first tag (ms); e.g. 16777000 crosses 0xFFFFFF (extended timestamps) in 215 ms' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l duration -d 'Stop after this much media time, e.g. 30s' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l max-gap -d 'A timestamp jump larger than this (or any step backwards) is warned about once and bridged, not waited out' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l kind -d 'Publishing type of the publish command' -r -f -a "live\t''
record\t''
append\t''"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l color -d 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set'
always\t'Always colour'
never\t'Never colour'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l timeout -d 'Limit for each network phase, e.g. 500ms, 2s, 1m' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l insecure -d 'rtmps without certificate verification (encrypted, not authenticated)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l reveal-keys -d 'Show stream keys and query values in full'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l no-pace -d 'Send as fast as the server takes it'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -l json -d 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -s q -l quiet -d 'Less human output'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -s v -l verbose -d 'More human output (repeatable)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand publish" -s V -l version -d 'Print version'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -s o -l output -d 'Write the FLV here (- for stdout); without it, only statistics' -r -F
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l app -d 'Application name, overriding how the URL path is split' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l stream -d 'Stream name (key), overriding how the URL path is split' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l chunk-size -d 'Chunk size we send with (announced with Set Chunk Size before connect)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l ca -d 'Trust only the CA certificates in this PEM file (rtmps)' -r -F
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l buffer-ms -d 'Buffer length announced with Set Buffer Length (ms)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l start -d 'Start argument of play: -2 live or recorded, -1 live only, ≥0 position in ms' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l duration -d 'Stop after this much media time, e.g. 10s' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l frames -d 'Stop after N video frames (audio frames when the stream has no video)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l until-keyframes -d 'Stop before the (N+1)-th keyframe: the output holds N whole GOPs' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l idle-timeout -d 'Give up when no media arrives for this long (default: --timeout)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l color -d 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set'
always\t'Always colour'
never\t'Never colour'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l timeout -d 'Limit for each network phase, e.g. 500ms, 2s, 1m' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l force -d 'Replace FILE when it exists (it is replaced only once the new one is complete)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l insecure -d 'rtmps without certificate verification (encrypted, not authenticated)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l reveal-keys -d 'Show stream keys and query values in full'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -l json -d 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -s q -l quiet -d 'Less human output'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -s v -l verbose -d 'More human output (repeatable)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand play" -s V -l version -d 'Print version'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand ecn" -l keylog -d 'RTMFP session keys (`RTMFP_SESSION` lines): without them user data and ECN Reports of sessions cannot be seen' -r -F
complete -c rtmptool -n "__fish_rtmptool_using_subcommand ecn" -l color -d 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set'
always\t'Always colour'
never\t'Never colour'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand ecn" -l timeout -d 'Limit for each network phase, e.g. 500ms, 2s, 1m' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand ecn" -l json -d 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand ecn" -s q -l quiet -d 'Less human output'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand ecn" -s v -l verbose -d 'More human output (repeatable)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand ecn" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand ecn" -s V -l version -d 'Print version'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand diagnose" -l port -d 'Decode every TCP connection on this port as RTMP, handshake seen or not' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand diagnose" -l bitrate -d 'URL: the bitrate you plan to send (e.g. 2500k, 6M), compared with --throughput' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand diagnose" -l measure -d 'URL: how long --throughput sends' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand diagnose" -l color -d 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set'
always\t'Always colour'
never\t'Never colour'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand diagnose" -l timeout -d 'Limit for each network phase, e.g. 500ms, 2s, 1m' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand diagnose" -l reveal-keys -d 'Show stream keys and query values in full'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand diagnose" -l throughput -d 'URL: only measure how many Mbit/s the server takes (by its own Acknowledgements)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand diagnose" -l json -d 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand diagnose" -s q -l quiet -d 'Less human output'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand diagnose" -s v -l verbose -d 'More human output (repeatable)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand diagnose" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand diagnose" -s V -l version -d 'Print version'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l players -d 'Players to subscribe (player k plays stream k mod the number of streams)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l publishers -d 'Publishers (publisher i publishes stream i); needs --flv' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l flv -d 'FLV every publisher sends (read once, shared), paced by its timestamps' -r -F
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l stream-pattern -d 'Stream path per stream number, replacing the URL\'s path, e.g. \'live/s{i}\'' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l streams -d 'Streams the players spread over when there are no publishers (default 1)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l ramp -d 'Connections opened per second' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l duration -d 'How long the load runs (publishers repeat the FLV); default: publishers send it once, players-only runs go on until Ctrl-C' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l probe-as -d 'How the delay probe travels: video (a video command frame, forwarded by every server) or data (onTextData, not forwarded by nginx-rtmp)' -r -f -a "video\t'A video command frame (FLV frame type 5) carrying the send time'
data\t'An onTextData data message carrying the send time'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l fail-if -d 'Exit 8 when the summary violates KEY OP NUMBER, e.g. \'p99_delay_ms>500\', \'failed>0\' (repeatable)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l app -d 'Application name, overriding how the URL path is split' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l chunk-size -d 'Chunk size we send with (announced with Set Chunk Size before connect)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l buffer-ms -d 'Buffer length players announce with Set Buffer Length (ms)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l bind -d 'Local address to connect from; repeat to spread connections over more source ports (e.g. 127.0.0.2, 127.0.0.3)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l read-every -d 'Players pause this long after each read (fewer wakeups per player; adds up to this much delay)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l color -d 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set'
always\t'Always colour'
never\t'Never colour'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l timeout -d 'Limit for each network phase, e.g. 500ms, 2s, 1m' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l delay-probe -d 'Publishers stamp their send time every 100 ms; players report arrival minus send'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l reveal-keys -d 'Show stream keys and query values in full'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -l json -d 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -s q -l quiet -d 'Less human output'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -s v -l verbose -d 'More human output (repeatable)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand load" -s V -l version -d 'Print version'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -l listen -d 'Accept encoders here and carry each to DST_URL\'s server: a decoding proxy that prints every message both ways (the dump renderer; --json too) and reports the diagnose findings' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -l queue -d 'Bytes waiting for the destination beyond which media is dropped to the next key frame' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -l chunk-size -d 'Chunk size we send with' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -l ca -d 'Trust only the CA certificates in this PEM file (rtmps)' -r -F
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -l record -d 'With --listen: keep a copy of each encoder\'s media in FILE.flv (never overwritten: FILE-1.flv, FILE-2.flv, … for the next)' -r -F
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -l duration -d 'Stop after this long; default: until the source\'s stream ends (or Ctrl-C)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -l color -d 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set'
always\t'Always colour'
never\t'Never colour'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -l timeout -d 'Limit for each network phase, e.g. 500ms, 2s, 1m' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -l reconnect -d 'Reconnect either side when it drops (backoff up to 10 s); the destination gets metadata and sequence headers first, video from a key frame'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -l insecure -d 'rtmps without certificate verification (encrypted, not authenticated)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -l reveal-keys -d 'Show stream keys and query values in full'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -l json -d 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -s q -l quiet -d 'Less human output'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -s v -l verbose -d 'More human output (repeatable)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand relay" -s V -l version -d 'Print version'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -s l -l listen -d 'Address to listen on (repeatable); RTMP, and RTMPS on the same port with --cert/--key' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l cert -d 'Certificate chain (PEM) for RTMPS' -r -F
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l key -d 'Private key (PEM) for RTMPS' -r -F
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l record -d 'Write each published stream to DIR/APP_STREAM.flv (never overwriting: a suffix is added)' -r -F
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l publish-key -d 'Publishing needs this key: as the stream name, or as its key= query parameter' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l allow -d 'Allow an address for publish/play: [publish:|play:]ADDR[/PREFIX] or all; first matching rule wins' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l deny -d 'Deny an address for publish/play: [publish:|play:]ADDR[/PREFIX] or all; first matching rule wins' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l max-connections -d 'Connections at once' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l max-message -d 'Largest message a client may send (bytes)' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l handshake-timeout -d 'Time for the RTMP (and TLS) handshake' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l idle-timeout -d 'Close a connection that neither sends nor takes a byte for this long' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l chunk-size -d 'Chunk size the server sends with' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l queue -d 'Messages a player may fall behind before it skips to the next key frame' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l merge-writes -d 'Players write what queued up at most this often (0: every message at once): fewer wakeups and writes for up to this much added delay' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l duration -d 'Stop after this long (for scripts and tests); default: until Ctrl-C' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l color -d 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set'
always\t'Always colour'
never\t'Never colour'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l timeout -d 'Limit for each network phase, e.g. 500ms, 2s, 1m' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l reveal-keys -d 'Show stream keys in full'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -l json -d 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -s q -l quiet -d 'Less human output'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -s v -l verbose -d 'More human output (repeatable)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand serve" -s V -l version -d 'Print version'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand completions" -l color -d 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set'
always\t'Always colour'
never\t'Never colour'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand completions" -l timeout -d 'Limit for each network phase, e.g. 500ms, 2s, 1m' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand completions" -l json -d 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand completions" -s q -l quiet -d 'Less human output'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand completions" -s v -l verbose -d 'More human output (repeatable)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand completions" -s V -l version -d 'Print version'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand man" -l color -d 'Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout' -r -f -a "auto\t'Colour on a terminal unless NO_COLOR is set'
always\t'Always colour'
never\t'Never colour'"
complete -c rtmptool -n "__fish_rtmptool_using_subcommand man" -l timeout -d 'Limit for each network phase, e.g. 500ms, 2s, 1m' -r
complete -c rtmptool -n "__fish_rtmptool_using_subcommand man" -l force -d 'Overwrite man pages that already exist there'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand man" -l json -d 'Machine output: one JSON object per line (NDJSON) on stdout, nothing else'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand man" -s q -l quiet -d 'Less human output'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand man" -s v -l verbose -d 'More human output (repeatable)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand man" -s V -l version -d 'Print version'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand help; and not __fish_seen_subcommand_from probe dump publish play ecn diagnose load relay serve completions man help" -f -a "probe" -d 'Connect to a server, time every phase, say what the server announced'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand help; and not __fish_seen_subcommand_from probe dump publish play ecn diagnose load relay serve completions man help" -f -a "dump" -d 'Decode RTMP (handshake, chunks, messages, AMF0/AMF3, media tags) from a pcap/pcapng capture (file or stdin)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand help; and not __fish_seen_subcommand_from probe dump publish play ecn diagnose load relay serve completions man help" -f -a "publish" -d 'Send an FLV file (or stdin) to a server as a live stream'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand help; and not __fish_seen_subcommand_from probe dump publish play ecn diagnose load relay serve completions man help" -f -a "play" -d 'Receive a live stream and write it as FLV (file or stdout)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand help; and not __fish_seen_subcommand_from probe dump publish play ecn diagnose load relay serve completions man help" -f -a "ecn" -d 'ECN inspection of RTMFP sessions in a capture: IP codepoints vs ECN Reports, verdicts per session and direction'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand help; and not __fish_seen_subcommand_from probe dump publish play ecn diagnose load relay serve completions man help" -f -a "diagnose" -d 'Find and explain faults in a capture: chunk-size mismatch, "message too big", a handshake that never completes, refusals, and more'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand help; and not __fish_seen_subcommand_from probe dump publish play ecn diagnose load relay serve completions man help" -f -a "load" -d 'Many publishers and players from one process: capacity, delay, failures'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand help; and not __fish_seen_subcommand_from probe dump publish play ecn diagnose load relay serve completions man help" -f -a "relay" -d 'Pull a stream from one server and push it to another, byte for byte, reconnecting with --reconnect'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand help; and not __fish_seen_subcommand_from probe dump publish play ecn diagnose load relay serve completions man help" -f -a "serve" -d 'A strict diagnostic RTMP/RTMPS server: accepts publishers and players, fans streams out, reports every protocol deviation of its peers live'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand help; and not __fish_seen_subcommand_from probe dump publish play ecn diagnose load relay serve completions man help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand help; and not __fish_seen_subcommand_from probe dump publish play ecn diagnose load relay serve completions man help" -f -a "man" -d 'Write the man pages (one per command) into a directory'
complete -c rtmptool -n "__fish_rtmptool_using_subcommand help; and not __fish_seen_subcommand_from probe dump publish play ecn diagnose load relay serve completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
