//! Command-line definitions (clap derive): the global flags and commands of
//! the CLI contract (`CLI.md`). Each command lives in `src/cmd/`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// RTMP, RTMPS and RTMFP on the wire: probe servers, publish and play streams,
/// and decode captures exactly.
#[derive(Debug, Parser)]
#[command(name = "rtmptool", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Global flags.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Machine output: one JSON object per line (NDJSON) on stdout, nothing else
    #[arg(long, global = true)]
    pub json: bool,
    /// Colour for humans; `auto` honours NO_COLOR and a non-TTY stdout
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Less human output
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More human output (repeatable)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Limit for each network phase, e.g. 500ms, 2s, 1m
    #[arg(long, default_value = "10s", value_parser = parse_timeout, global = true, value_name = "DURATION")]
    pub timeout: Duration,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal unless NO_COLOR is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to a server, time every phase, say what the server announced
    Probe(ProbeArgs),
    /// Decode RTMP (handshake, chunks, messages, AMF0/AMF3, media tags) from a pcap/pcapng capture (file or stdin)
    Dump(DumpArgs),
    /// Send an FLV file (or stdin) to a server as a live stream
    Publish(PublishArgs),
    /// Receive a live stream and write it as FLV (file or stdout)
    Play(PlayArgs),
    /// ECN inspection of RTMFP sessions in a capture: IP codepoints vs ECN Reports, verdicts per session and direction
    Ecn(EcnArgs),
    /// Find and explain faults in a capture: chunk-size mismatch, "message too big", a handshake that never completes, refusals, and more
    Diagnose(DiagnoseArgs),
    /// Many publishers and players from one process: capacity, delay, failures
    Load(LoadArgs),
    /// Pull a stream from one server and push it to another, byte for byte, reconnecting with --reconnect
    Relay(RelayArgs),
    /// A strict diagnostic RTMP/RTMPS server: accepts publishers and players, fans streams out, reports every protocol deviation of its peers live
    Serve(ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(CompletionsArgs),
    /// Write the man pages (one per command) into a directory
    Man(ManArgs),
}

/// `rtmptool probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// rtmp://host[:port]/app[/instance]/stream[?query] or rtmps://… (default port 443)
    pub url: String,
    /// Also createStream and publish (to the first onStatus), then unpublish
    #[arg(long, conflicts_with = "play")]
    pub publish: bool,
    /// Also createStream and play (to the first onStatus and the first audio and video)
    #[arg(long)]
    pub play: bool,
    /// Number of attempts (like ping -c)
    #[arg(short = 'c', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub count: u32,
    /// Pause between attempts
    #[arg(short = 'i', long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Duration,
    /// Handshake to offer: simple (version 0), digest (FFmpeg-like, 9.0.124.2), auto (= digest)
    #[arg(long, value_enum, default_value_t = HandshakeChoice::Auto)]
    pub handshake: HandshakeChoice,
    /// flashVer of the connect command
    #[arg(long, value_name = "STRING")]
    pub flashver: Option<String>,
    /// tcUrl of the connect command (default: rtmp[s]://host:port/app)
    #[arg(long, value_name = "URL")]
    pub tcurl: Option<String>,
    /// Application name, overriding how the URL path is split
    #[arg(long)]
    pub app: Option<String>,
    /// Stream name (key), overriding how the URL path is split
    #[arg(long)]
    pub stream: Option<String>,
    /// Trust only the CA certificates in this PEM file (rtmps)
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// rtmps without certificate verification (encrypted, not authenticated)
    #[arg(long)]
    pub insecure: bool,
    /// Show stream keys and query values in full
    #[arg(long)]
    pub reveal_keys: bool,
    /// Re-arm TCP_QUICKACK after every read (Linux); off shows what ordinary clients see
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub quickack: OnOff,
    /// Announce Enhanced RTMP in connect (fourCcList, video/audioFourCcInfoMap, capsEx), as OBS and FFmpeg do for HEVC, AV1 or Opus, and show what the server states
    #[arg(long)]
    pub enhanced: bool,
    /// rtmfp:// only: send the server's certificate fingerprint (64 hex digits) as the endpoint discriminator instead of the URL
    #[arg(long, value_name = "HEX", conflicts_with = "hostname")]
    pub fingerprint: Option<String>,
    /// rtmfp:// only: send this required hostname as the endpoint discriminator instead of the URL
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// rtmfp:// with --handshake full: Diffie-Hellman group (2: 1024-bit, 14: 2048-bit); default: 14, else 2
    #[arg(long, value_name = "N", value_parser = clap::builder::PossibleValuesParser::new(["2", "14"]))]
    pub dh_group: Option<String>,
}

/// Connection flags of `publish` and `play`.
#[derive(Debug, Args, Clone)]
pub struct ConnArgs {
    /// Application name, overriding how the URL path is split
    #[arg(long)]
    pub app: Option<String>,
    /// Stream name (key), overriding how the URL path is split
    #[arg(long)]
    pub stream: Option<String>,
    /// Chunk size we send with (announced with Set Chunk Size before connect)
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=0x7FFF_FFFF), value_name = "N")]
    pub chunk_size: u32,
    /// Trust only the CA certificates in this PEM file (rtmps)
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// rtmps without certificate verification (encrypted, not authenticated)
    #[arg(long)]
    pub insecure: bool,
    /// Show stream keys and query values in full
    #[arg(long)]
    pub reveal_keys: bool,
}

/// `rtmptool publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// FLV file to send, or - for stdin (e.g. `ffmpeg … -f flv - | rtmptool publish - URL`)
    pub input: PathBuf,
    /// rtmp://host[:port]/app[/instance]/stream[?query] or rtmps://…
    pub url: String,
    /// Connection flags.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Pace at X times real time (by tag timestamps against a monotonic clock)
    #[arg(
        long,
        default_value_t = 1.0,
        value_parser = parse_rate,
        value_name = "X",
        conflicts_with = "no_pace"
    )]
    pub rate: f64,
    /// Send as fast as the server takes it
    #[arg(long)]
    pub no_pace: bool,
    /// Send the file N times with continuous timestamps (0: forever)
    #[arg(long = "loop", default_value_t = 1, value_name = "N")]
    pub loops: u32,
    /// Timestamp of the first tag (ms); e.g. 16777000 crosses 0xFFFFFF (extended timestamps) in 215 ms
    #[arg(long, value_name = "MS")]
    pub start_timestamp: Option<u32>,
    /// Stop after this much media time, e.g. 30s
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// A timestamp jump larger than this (or any step backwards) is warned about once and bridged, not waited out
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub max_gap: Duration,
    /// Publishing type of the publish command
    #[arg(long, default_value = "live", value_parser = ["live", "record", "append"])]
    pub kind: String,
}

/// `rtmptool play`.
#[derive(Debug, Args)]
pub struct PlayArgs {
    /// rtmp://host[:port]/app[/instance]/stream[?query] or rtmps://…
    pub url: String,
    /// Write the FLV here (- for stdout); without it, only statistics
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace FILE when it exists (it is replaced only once the new one is complete)
    #[arg(long)]
    pub force: bool,
    /// Connection flags.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Buffer length announced with Set Buffer Length (ms)
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub buffer_ms: u32,
    /// Start argument of play: -2 live or recorded, -1 live only, ≥0 position in ms
    #[arg(long, default_value_t = -2.0, allow_negative_numbers = true, value_name = "MS")]
    pub start: f64,
    /// Stop after this much media time, e.g. 10s
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Stop after N video frames (audio frames when the stream has no video)
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Stop before the (N+1)-th keyframe: the output holds N whole GOPs
    #[arg(long, value_name = "N")]
    pub until_keyframes: Option<u64>,
    /// Give up when no media arrives for this long (default: --timeout)
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Option<Duration>,
}

/// `rtmptool load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// rtmp://host[:port]/app/stream; a `{i}` in the path is the stream number (0, 1, ...)
    pub url: String,
    /// Players to subscribe (player k plays stream k mod the number of streams)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub players: u64,
    /// Publishers (publisher i publishes stream i); needs --flv
    #[arg(long, default_value_t = 0, value_name = "M", requires = "flv")]
    pub publishers: u64,
    /// FLV every publisher sends (read once, shared), paced by its timestamps
    #[arg(long, value_name = "FILE")]
    pub flv: Option<PathBuf>,
    /// Stream path per stream number, replacing the URL's path, e.g. 'live/s{i}'
    #[arg(long, value_name = "PATTERN")]
    pub stream_pattern: Option<String>,
    /// Streams the players spread over when there are no publishers (default 1)
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub streams: Option<u64>,
    /// Connections opened per second
    #[arg(long, default_value = "100", value_parser = parse_ramp, value_name = "RATE")]
    pub ramp: f64,
    /// How long the load runs (publishers repeat the FLV); default: publishers send it once, players-only runs go on until Ctrl-C
    #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Publishers stamp their send time every 100 ms; players report arrival minus send
    #[arg(long)]
    pub delay_probe: bool,
    /// How the delay probe travels: video (a video command frame, forwarded by every server) or data (onTextData, not forwarded by nginx-rtmp)
    #[arg(long, value_enum, default_value_t = ProbeCarrier::Video, value_name = "HOW")]
    pub probe_as: ProbeCarrier,
    /// Exit 8 when the summary violates KEY OP NUMBER, e.g. 'p99_delay_ms>500', 'failed>0' (repeatable)
    #[arg(long = "fail-if", value_name = "COND", value_parser = parse_fail_if)]
    pub fail_if: Vec<rtmptool::load::FailIf>,
    /// Application name, overriding how the URL path is split
    #[arg(long)]
    pub app: Option<String>,
    /// Chunk size we send with (announced with Set Chunk Size before connect)
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=0x7FFF_FFFF), value_name = "N")]
    pub chunk_size: u32,
    /// Buffer length players announce with Set Buffer Length (ms)
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub buffer_ms: u32,
    /// Local address to connect from; repeat to spread connections over more source ports (e.g. 127.0.0.2, 127.0.0.3)
    #[arg(long, value_name = "ADDR")]
    pub bind: Vec<std::net::IpAddr>,
    /// Players pause this long after each read (fewer wakeups per player; adds up to this much delay)
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub read_every: Duration,
    /// Show stream keys and query values in full
    #[arg(long)]
    pub reveal_keys: bool,
}

/// How the delay probe travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeCarrier {
    /// A video command frame (FLV frame type 5) carrying the send time.
    Video,
    /// An onTextData data message carrying the send time.
    Data,
}

/// Parses `--ramp`: connections per second above 0.
pub fn parse_ramp(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1e6 => Ok(r),
        _ => Err(format!(
            "'{s}' is not a rate: give connections per second above 0 (e.g. 50, 0.5)"
        )),
    }
}

/// Parses a `--fail-if` condition.
pub fn parse_fail_if(s: &str) -> Result<rtmptool::load::FailIf, String> {
    rtmptool::load::FailIf::parse(s)
}

/// Handshake choice of `probe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HandshakeChoice {
    /// Version bytes zero, no digest (RTMP 1.0 §5.2).
    Simple,
    /// HMAC-SHA256 digest, as Flash Player and FFmpeg.
    Digest,
    /// Digest (what servers expect from modern clients); for rtmfp:// URLs, IHello to RHello only.
    Auto,
    /// rtmfp:// only: go on from RHello to an open session (IIKeying/RIKeying, Diffie-Hellman).
    Full,
}

/// A switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// `rtmptool dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Capture file (pcap or pcapng, gzip-compressed or not), or `-` for stdin (e.g. `tcpdump -U -w - | rtmptool dump -`)
    #[arg(value_name = "CAPTURE|-")]
    pub input: String,
    /// Hex dump (hexyl) of every message payload
    #[arg(long)]
    pub hex: bool,
    /// Instead of the messages, a table per connection: messages and bytes per type and direction, chunk sizes, media bitrate, frames, timestamps
    #[arg(long)]
    pub stats: bool,
    /// Only connections matching: its number (0, 1, ...; RTMFP sessions u0, u1, ...), the whole `client-server` string, or one end, address or port of it, whole (1 is connection 1, not every 127.0.0.1)
    #[arg(long, value_name = "CONN")]
    pub conn: Vec<String>,
    /// Only this direction
    #[arg(long, value_enum)]
    pub dir: Option<DirFilter>,
    /// Only these message types: names (`video`, `command_amf0`, `command`, `data`, `control`, `media`) or numbers; comma-separated or repeated
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',')]
    pub msg_type: Vec<String>,
    /// Only messages on these message stream ids
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub stream_id: Vec<u32>,
    /// Only commands/data messages with these names (e.g. `connect,publish,onStatus`)
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub command: Vec<String>,
    /// Decode every TCP connection on this port as RTMP, handshake seen or not
    #[arg(long)]
    pub port: Option<u16>,
    /// RTMFP session keys (`RTMFP_SESSION` lines) to open encrypted RTMFP session packets
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<std::path::PathBuf>,
    /// Show the stream keys, query values and user info the capture names in full (by default they are shortened, in the decoded values and in --hex bytes)
    #[arg(long)]
    pub reveal_keys: bool,
}

/// `rtmptool ecn`.
#[derive(Debug, Args)]
pub struct EcnArgs {
    /// Capture file (pcap or pcapng, gzip-compressed or not), or `-` for stdin
    #[arg(value_name = "CAPTURE|-")]
    pub input: String,
    /// RTMFP session keys (`RTMFP_SESSION` lines): without them user data and ECN Reports of sessions cannot be seen
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<std::path::PathBuf>,
}

/// `rtmptool diagnose`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Capture file (pcap or pcapng, gzip-compressed or not), `-` for stdin, or rtmp://host[:port]/app/stream for live checks
    #[arg(value_name = "CAPTURE|-|URL")]
    pub input: String,
    /// Decode every TCP connection on this port as RTMP, handshake seen or not
    #[arg(long)]
    pub port: Option<u16>,
    /// Show stream keys and query values in full
    #[arg(long)]
    pub reveal_keys: bool,
    /// URL: only measure how many Mbit/s the server takes (by its own Acknowledgements)
    #[arg(long)]
    pub throughput: bool,
    /// URL: the bitrate you plan to send (e.g. 2500k, 6M), compared with --throughput
    #[arg(long, value_parser = parse_bitrate, value_name = "RATE", requires = "throughput")]
    pub bitrate: Option<f64>,
    /// URL: how long --throughput sends
    #[arg(long, default_value = "6s", value_parser = parse_duration, value_name = "DURATION")]
    pub measure: Duration,
}

/// `rtmptool relay`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// SRC_URL DST_URL (play from SRC, publish to DST), or with --listen only DST_URL: rtmp[s]://host[:port] carries each encoder's app and stream name, …/APP or …/APP/STREAM replaces them
    #[arg(value_name = "URL", num_args = 1..=2, required = true)]
    pub urls: Vec<String>,
    /// Accept encoders here and carry each to DST_URL's server: a decoding proxy that prints every message both ways (the dump renderer; --json too) and reports the diagnose findings
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Reconnect either side when it drops (backoff up to 10 s); the destination gets metadata and sequence headers first, video from a key frame
    #[arg(long)]
    pub reconnect: bool,
    /// Bytes waiting for the destination beyond which media is dropped to the next key frame
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES")]
    pub queue: usize,
    /// Chunk size we send with
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=0x7FFF_FFFF), value_name = "N")]
    pub chunk_size: u32,
    /// Trust only the CA certificates in this PEM file (rtmps)
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// rtmps without certificate verification (encrypted, not authenticated)
    #[arg(long)]
    pub insecure: bool,
    /// Show stream keys and query values in full
    #[arg(long)]
    pub reveal_keys: bool,
    /// With --listen: keep a copy of each encoder's media in FILE.flv (never overwritten: FILE-1.flv, FILE-2.flv, … for the next)
    #[arg(long, value_name = "FILE.flv", requires = "listen")]
    pub record: Option<PathBuf>,
    /// Stop after this long; default: until the source's stream ends (or Ctrl-C)
    #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
}

/// `rtmptool serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (repeatable); RTMP, and RTMPS on the same port with --cert/--key
    #[arg(short, long, value_name = "ADDR", default_value = "127.0.0.1:1935")]
    pub listen: Vec<std::net::SocketAddr>,
    /// Certificate chain (PEM) for RTMPS
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// Private key (PEM) for RTMPS
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// Write each published stream to DIR/APP_STREAM.flv (never overwriting: a suffix is added)
    #[arg(long, value_name = "DIR")]
    pub record: Option<std::path::PathBuf>,
    /// Publishing needs this key: as the stream name, or as its key= query parameter
    #[arg(
        long,
        value_name = "KEY",
        env = "RTMPTOOL_PUBLISH_KEY",
        hide_env_values = true
    )]
    pub publish_key: Option<String>,
    /// Allow an address for publish/play: [publish:|play:]ADDR[/PREFIX] or all; first matching rule wins
    #[arg(long, value_name = "RULE")]
    pub allow: Vec<String>,
    /// Deny an address for publish/play: [publish:|play:]ADDR[/PREFIX] or all; first matching rule wins
    #[arg(long, value_name = "RULE")]
    pub deny: Vec<String>,
    /// Connections at once
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_connections: usize,
    /// Largest message a client may send (bytes)
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES")]
    pub max_message: usize,
    /// Time for the RTMP (and TLS) handshake
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub handshake_timeout: Duration,
    /// Close a connection that neither sends nor takes a byte for this long
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,
    /// Chunk size the server sends with
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=0x7FFF_FFFF), value_name = "N")]
    pub chunk_size: u32,
    /// Messages a player may fall behind before it skips to the next key frame
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N")]
    pub queue: u32,
    /// Players write what queued up at most this often (0: every message at once): fewer wakeups and writes for up to this much added delay
    #[arg(long, default_value = "0ms", value_parser = parse_duration, value_name = "DURATION")]
    pub merge_writes: Duration,
    /// Stop after this long (for scripts and tests); default: until Ctrl-C
    #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Show stream keys in full
    #[arg(long)]
    pub reveal_keys: bool,
}

/// A bit rate: `2500k`, `6M`, `800000` (bit/s).
pub fn parse_bitrate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1e3),
        Some((i, 'm' | 'M')) => (&t[..i], 1e6),
        Some((i, 'g' | 'G')) => (&t[..i], 1e9),
        _ => (t, 1.0),
    };
    match num.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n * mult),
        _ => Err(format!("'{s}' is not a bit rate (e.g. 2500k, 6M)")),
    }
}

/// A direction of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DirFilter {
    /// Client to server.
    C2s,
    /// Server to client.
    S2c,
}

/// `rtmptool completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `rtmptool man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write rtmptool.1 and rtmptool-COMMAND.1 into (created if missing)
    pub dir: PathBuf,
    /// Overwrite man pages that already exist there
    #[arg(long)]
    pub force: bool,
}

/// Slowest and fastest `publish --rate`.
pub const RATE_RANGE: std::ops::RangeInclusive<f64> = 0.01..=1000.0;

/// Parses `--rate`: a number within [`RATE_RANGE`].
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number (e.g. 1, 0.5, 2)"))?;
    if !RATE_RANGE.contains(&r) {
        return Err(format!(
            "'{s}' is out of range: give {} to {} (times real time)",
            RATE_RANGE.start(),
            RATE_RANGE.end()
        ));
    }
    Ok(r)
}

/// Parses `--timeout`: a duration above zero (a zero limit would fail every phase).
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_positive_duration(s)
}

/// Parses a duration that must be above zero.
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("'{s}': must be more than 0 (e.g. 500ms, 2s)"));
    }
    Ok(d)
}

/// Parses `500ms`, `2s`, `1.5s`, `1m`, `250us` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 500ms, 2s, 1m)"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("unknown unit '{u}' in '{s}' (use ms, s, m or h)")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("'{s}' is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("2 parsecs").is_err());
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("0ms").is_err());
        assert_eq!(parse_timeout("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("2"), Ok(2.0));
        assert_eq!(parse_rate("0.01"), Ok(0.01));
        for bad in ["1e-300", "0", "-1", "NaN", "inf", "1001", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
