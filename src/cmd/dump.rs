//! `rtmptool dump CAPTURE|-`: reads a capture as a stream, runs the
//! [`rtmptool::analyze::Analyzer`] over it and renders its records (human
//! text, `--json` NDJSON, `--hex`, `--stats`) through `report::dump`.
//!
//! Bad input (not a capture, a truncated or corrupt record) ends the run with
//! exit status 7 after everything decoded before it has been printed.
//!
//! Ctrl-C is a normal way to end a capture read from a pipe (`tcpdump -w - |
//! rtmptool dump --stats -`): reading stops, what is pending is reported, the
//! `--stats` tables so far are printed, and the exit status is 0. A second
//! Ctrl-C ends at once with 130.

use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::anyhow;
use rtmptool::analyze::{Analyzer, Options};
use rtmptool::capture::Reader;

use crate::cli::DumpArgs;
use crate::report::Style;
use crate::report::dump::{Filter, Renderer};
use crate::{Exit, exit};

/// Runs `dump`.
pub fn run(args: &DumpArgs, style: &Style) -> Result<(), Exit> {
    let filter = Filter::from_args(args).map_err(|e| Exit {
        code: exit::USAGE,
        error: e,
    })?;
    let keylog = load_keylog(args.keylog.as_deref())?;
    let mut cap = Capture::open(&args.input)?;
    let (name, streaming) = (cap.name.clone(), cap.streaming);
    let bad = bad_capture(&name);
    let stdout = io::stdout();
    let out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut r = Renderer::new(out, *style, args, filter);
    let mut an = Analyzer::new(Options {
        port: args.port,
        report_chunks: style.verbosity > 0 && !style.json && !args.stats,
        keylog,
        ..Default::default()
    });
    let mut io_err: Option<io::Error> = None;
    let mut result = Ok(());
    loop {
        match cap.next_packet() {
            Ok(Some(p)) => {
                an.packet(&p, &mut |rec| {
                    if io_err.is_none()
                        && let Err(e) = r.record(&rec)
                    {
                        io_err = Some(e);
                    }
                });
                if io_err.is_some() {
                    break;
                }
                if streaming
                    && r.take_dirty()
                    && let Err(e) = r.flush()
                {
                    io_err = Some(e);
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                result = Err(bad(e));
                break;
            }
        }
    }
    if io_err.is_none() {
        an.finish(&mut |rec| {
            if io_err.is_none()
                && let Err(e) = r.record(&rec)
            {
                io_err = Some(e);
            }
        });
    }
    if io_err.is_none()
        && let Err(e) = r.finish()
    {
        io_err = Some(e);
    }
    match io_err {
        // `dump ... | head`: the reader went away, which is not a failure.
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
        Some(e) => {
            return Err(Exit {
                code: exit::FAILURE,
                error: anyhow!("cannot write output: {e}"),
            });
        }
        None => {}
    }
    result
}

/// A capture being read, which Ctrl-C ends as its end (dump, diagnose,
/// ecn): a pipe (`tcpdump -U -w - | rtmptool … -`) after what it had sent
/// is decoded, a file at once; what was read is then reported as if the
/// capture ended there. A second Ctrl-C ends the process at once with 130;
/// one before the capture's header arrived ends it with 130 too.
pub(crate) struct Capture {
    reader: Reader<Box<dyn Read>>,
    /// What errors call it (`stdin` or the path).
    pub name: String,
    /// Stdin is a pipe or terminal: records should go out as they come.
    pub streaming: bool,
    interrupted: Arc<AtomicBool>,
}

impl Capture {
    /// Opens the file, or stdin for `-`, and reads the capture's header.
    pub fn open(input: &str) -> Result<Capture, Exit> {
        let interrupted = Arc::new(AtomicBool::new(false));
        // A second Ctrl-C (the flag already set) ends at once with 130.
        // SIGTERM (`kill PID`, `timeout`) as Ctrl-C.
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, interrupted.clone());
            let _ = signal_hook::flag::register(sig, interrupted.clone());
        }
        let (input, name, streaming): (Box<dyn Read>, String, bool) = if input == "-" {
            // A pipe or terminal: read on a thread that Ctrl-C can leave.
            if is_regular_stdin() {
                (Box::new(io::stdin().lock()), "stdin".into(), false)
            } else {
                let r = Interruptible::new(interrupted.clone());
                (Box::new(r), "stdin".into(), true)
            }
        } else {
            let (f, name) = open_capture(input)?;
            (f, name, false)
        };
        let reader = match Reader::new(input) {
            Ok(r) => r,
            Err(_) if interrupted.load(Ordering::Relaxed) => {
                return Err(Exit {
                    code: exit::INTERRUPTED,
                    error: anyhow!("{name}: interrupted before a capture header arrived"),
                });
            }
            Err(e) => return Err(bad_capture(&name)(e)),
        };
        Ok(Capture {
            reader,
            name,
            streaming,
            interrupted,
        })
    }

    /// The next packet; `None` at the end of the capture or once Ctrl-C
    /// came (a record cut by it is the end, not bad input).
    pub fn next_packet(
        &mut self,
    ) -> Result<Option<rtmptool::capture::Packet<'_>>, rtmptool::capture::CaptureError> {
        if !self.streaming && self.interrupted.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match self.reader.next_packet() {
            Err(_) if self.interrupted.load(Ordering::Relaxed) => Ok(None),
            r => r,
        }
    }
}

/// Reads and parses a `--keylog` file (exit 7 when it is unreadable or bad).
pub fn load_keylog(
    path: Option<&std::path::Path>,
) -> Result<Option<Arc<rtmptool::proto::rtmfp::keylog::KeyLog>>, Exit> {
    let Some(path) = path else {
        return Ok(None);
    };
    let bad = |e: String| Exit {
        code: exit::BAD_INPUT,
        error: anyhow!("key log {}: {e}", path.display()),
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if meta.len() > 256 << 20 {
        return Err(bad("larger than 256 MiB".into()));
    }
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8_lossy(&text);
    let log =
        rtmptool::proto::rtmfp::keylog::KeyLog::parse(&text).map_err(|e| bad(e.to_string()))?;
    Ok(Some(Arc::new(log)))
}

/// A capture to read: the file, or stdin for `-`, with the name its
/// errors give (diagnose, ecn).
pub(crate) fn open_capture(input: &str) -> Result<(Box<dyn Read>, String), Exit> {
    if input == "-" {
        return Ok((Box::new(io::stdin().lock()), "stdin".into()));
    }
    let f = File::open(input).map_err(|e| Exit {
        code: exit::BAD_INPUT,
        error: anyhow!("cannot open capture {input}: {e}"),
    })?;
    Ok((Box::new(f), input.to_owned()))
}

/// A capture that does not read: bad input, named.
pub(crate) fn bad_capture(name: &str) -> impl Fn(rtmptool::capture::CaptureError) -> Exit + '_ {
    move |e| Exit {
        code: exit::BAD_INPUT,
        error: anyhow!("{name}: {e}"),
    }
}

/// Whether stdin is a regular file (`dump - < file.pcap`), where buffering
/// output fully is faster and nothing waits for it.
fn is_regular_stdin() -> bool {
    #[cfg(unix)]
    {
        std::fs::metadata("/dev/stdin").is_ok_and(|m| m.is_file())
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Stdin read on a thread, so that Ctrl-C can end a read that would block on
/// a pipe: after the signal it reads as the end of input.
struct Interruptible {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
    interrupted: Arc<AtomicBool>,
    done: bool,
}

impl Interruptible {
    fn new(interrupted: Arc<AtomicBool>) -> Self {
        let (tx, rx) = mpsc::sync_channel(4);
        std::thread::spawn(move || {
            let mut stdin = io::stdin().lock();
            loop {
                let mut b = vec![0u8; 1 << 16];
                match stdin.read(&mut b) {
                    Ok(0) => break,
                    Ok(n) => {
                        b.truncate(n);
                        if tx.send(Ok(b)).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        Interruptible {
            rx,
            buf: Vec::new(),
            pos: 0,
            interrupted,
            done: false,
        }
    }
}

impl Read for Interruptible {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            if self.interrupted.load(Ordering::Relaxed) {
                // What was read from the pipe before Ctrl-C is still decoded.
                match self.rx.try_recv() {
                    Ok(Ok(b)) => {
                        self.buf = b;
                        self.pos = 0;
                        continue;
                    }
                    _ => {
                        self.done = true;
                        return Ok(0);
                    }
                }
            }
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(b)) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What the end of a capture says of its packets: read, decoded to IP, not
/// decoded (and why). `diagnose` and `ecn` say it, as `dump`'s end line does.
#[derive(Default)]
pub(crate) struct PacketTally {
    packets: u64,
    ip_packets: u64,
    undecodable: u64,
    reasons: Vec<(String, u64)>,
    /// What the end of the capture said of data lost as a whole (IP
    /// datagrams never reassembled, connections the snaplen left empty).
    lost: Vec<String>,
}

impl PacketTally {
    /// Takes the counts from the end-of-capture record, and the capture's
    /// last words on data lost (records the analyzer's `finish` gives).
    pub fn note(&mut self, kind: &rtmptool::analyze::RecordKind) {
        if let rtmptool::analyze::RecordKind::Undecodable { reason } = kind {
            self.lost.push(reason.clone());
            return;
        }
        if let rtmptool::analyze::RecordKind::EndOfCapture {
            undecodable,
            packets,
            ip_packets,
            reasons,
            ..
        } = kind
        {
            *self = PacketTally {
                packets: *packets,
                ip_packets: *ip_packets,
                undecodable: *undecodable,
                reasons: reasons.clone(),
                lost: std::mem::take(&mut self.lost),
            };
        }
    }

    /// "412 of 5000 packet(s) not decoded: …", when any was not.
    pub fn not_decoded(&self) -> Option<String> {
        let packets = (self.undecodable > 0).then(|| {
            crate::report::words::not_decoded(self.undecodable, self.packets, &self.reasons)
        });
        let all: Vec<String> = packets
            .into_iter()
            .chain(self.lost.iter().cloned())
            .collect();
        (!all.is_empty()).then(|| all.join("; "))
    }

    /// Exit 7 when not one packet of a capture that has some decoded down
    /// to IP: "no fault found" would be an all-clear for a capture never
    /// looked into. `what`: "nothing to diagnose".
    pub fn nothing_decoded(&self, name: &str, what: &str) -> Option<Exit> {
        if self.packets == 0 || self.ip_packets > 0 {
            return None;
        }
        let why = self.not_decoded().unwrap_or_else(|| {
            format!(
                "its {} packet(s) are not IP (ARP, LLDP, STP and the like)",
                self.packets
            )
        });
        Some(Exit {
            code: exit::BAD_INPUT,
            error: anyhow::anyhow!("{name}: no packet decoded down to IP, {what}: {why}"),
        })
    }
}
