//! The steady state of a relay, on a thread of its own, off the runtime
//! (whose wakers, timers and task polls cost a third of the CPU a relayed
//! message took there). An `rtmps://` end is driven here too: rustls' state
//! reads and writes its records on the same socket calls.
//!
//! While the destination keeps up, the source is read blocking: one
//! `recvfrom` waits for and takes each message, one `sendto` passes it on,
//! and what the destination sends is read once a tick. When the destination
//! falls behind, a [`mio::Poll`] of both sockets takes over until it has
//! caught up (bounded by the queue, the stall limit and the skip to the
//! next key frame of the flow).
//!
//! The runtime's thread meanwhile waits for the loop to end, for its notes
//! (the once-a-tick progress, a skip) and for the stop signal, which it
//! passes on through a [`mio::Waker`] and by shutting the source's read
//! side (which wakes a blocking read). The sockets come back to the
//! runtime when the loop ends, so stopping, the end of the stream and
//! reconnecting are handled there as for a TLS end.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};

use super::{Flow, Outcome, Progress, RelayConfig, RelayStats, Side, TICK};
use crate::net::{DriveError, Driver, PlainDriver, stalled, tls_io_error};

const SRC: Token = Token(0);
const DST: Token = Token(1);
const WAKE: Token = Token(2);

/// Bytes a read offers: a key frame of a few Mbit/s stream in one call.
const READ_SIZE: usize = 64 * 1024;

/// What the loop tells the runtime's thread while it runs.
enum Note {
    Progress(Progress, Box<RelayStats>),
}

/// An end of the relay on the loop's thread: a [`PlainDriver`] whose
/// socket mio holds.
type End = PlainDriver<TcpStream>;

/// Takes an end onto the loop's thread.
fn end(mut d: PlainDriver) -> End {
    // Whatever the session still holds back for its own ordering (the
    // handshake's last bytes) goes first, through `unsent`.
    if d.unsent.is_empty()
        && let Some(b) = d.session.poll_transmit()
    {
        d.unsent = b;
    }
    d.with_socket(TcpStream::from_std)
}

/// What one read of a socket brought.
enum Got {
    /// Bytes came off the socket (`short`: fewer than were offered, so it
    /// is drained).
    Read { short: bool },
    /// Nothing yet (would block, or a blocking read's timeout).
    NotReady,
    /// A signal interrupted the read: read again.
    Interrupted,
}

impl End {
    fn queued(&self) -> usize {
        let records = self.tls.as_ref().is_some_and(|c| c.wants_write());
        self.unsent.len() + self.session.poll_transmit_len() + usize::from(records)
    }

    fn pending(&self) -> bool {
        self.queued() > 0
    }

    /// Reads all the socket has (until a read comes back short: the edge
    /// was drained) into the session.
    fn read(&mut self, scratch: &mut [u8], now: Instant) -> Result<(), DriveError> {
        let mut now = now;
        loop {
            match self.receive(scratch, &mut now, false)? {
                Got::Read { short: false } | Got::Interrupted => {}
                Got::Read { short: true } | Got::NotReady => return Ok(()),
            }
        }
    }

    /// One read of the socket; what it brought goes to the session (for
    /// TLS, the plaintext of the records it completed). With `clock`, `now`
    /// is read once the socket has answered (a blocking read waits).
    fn receive(
        &mut self,
        scratch: &mut [u8],
        now: &mut Instant,
        clock: bool,
    ) -> Result<Got, DriveError> {
        let not_ready = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            )
        };
        let End {
            tcp,
            tls,
            session,
            quickack,
            epoch,
            ..
        } = self;
        let got = match tls {
            None => tcp.read(scratch),
            Some(conn) => conn.read_tls(tcp),
        };
        if clock {
            *now = Instant::now();
        }
        let n = match got {
            Ok(0) => return Err(DriveError::Closed),
            Ok(n) => n,
            Err(e) if not_ready(&e) => return Ok(Got::NotReady),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Got::Interrupted),
            Err(e) => return Err(e.into()),
        };
        if *quickack {
            let _ = socket2::SockRef::from(&*tcp).set_tcp_quickack(true);
        }
        let at = now.saturating_duration_since(*epoch);
        let mut take = |data: &[u8]| -> Result<(), DriveError> {
            session.receive_buffer(data.len()).extend_from_slice(data);
            session.handle_received(data.len(), at)?;
            Ok(())
        };
        match tls {
            None => {
                take(&scratch[..n])?;
                Ok(Got::Read {
                    short: n < scratch.len(),
                })
            }
            Some(conn) => {
                conn.process_new_packets().map_err(tls_io_error)?;
                loop {
                    match conn.reader().read(scratch) {
                        // close_notify.
                        Ok(0) => return Err(DriveError::Closed),
                        Ok(m) => take(&scratch[..m])?,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            return Err(DriveError::Closed);
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                // rustls reads a record's worth at a time: drained only
                // when the socket says so.
                Ok(Got::Read { short: false })
            }
        }
    }

    /// Writes what the session queued until the socket is full. Returns
    /// (bytes written, everything went).
    fn write(&mut self) -> io::Result<(usize, bool)> {
        let mut written = 0;
        loop {
            // TLS: the records rustls holds go first.
            if let Some(conn) = &mut self.tls {
                while conn.wants_write() {
                    match conn.write_tls(&mut self.tcp) {
                        Ok(n) => written += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Ok((written, false));
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            // A buffer the runtime's driver had begun goes first; then the
            // session's queue, written in place (no allocation per message).
            let from_unsent = !self.unsent.is_empty();
            let buf = if from_unsent {
                &self.unsent[..]
            } else {
                self.session.transmit_queued()
            };
            if buf.is_empty() {
                return Ok((written, true));
            }
            // TLS: rustls takes the plaintext; its records go out above.
            let w = match &mut self.tls {
                None => self.tcp.write(buf),
                Some(conn) => conn.writer().write(buf),
            };
            match w {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    if self.tls.is_none() {
                        written += n;
                    }
                    if from_unsent {
                        bytes::Buf::advance(&mut self.unsent, n);
                    } else {
                        self.session.transmit_consumed(n);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((written, false)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Runs the steady state of a relay between two plain TCP ends on a
/// thread of its own until an end fails, the stream ends or `stopping`
/// completes; gives the ends and the flow back.
pub(super) async fn run(
    src: Driver,
    dst: Driver,
    flow: Flow,
    cfg: RelayConfig,
    progress: &mut impl FnMut(&Progress, &RelayStats),
    stopping: &mut (impl Future<Output = ()> + Unpin),
) -> io::Result<(Driver, Driver, Flow, Outcome)> {
    let src = src.into_plain()?;
    let dst = dst.into_plain()?;
    // Ctrl-C reaches a thread blocked reading the source by shutting the
    // source's read side (the loop then stops; writes still go out).
    let src_waker = src.tcp.try_clone()?;
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let stop = Arc::new(AtomicBool::new(false));
    let (notes, mut noted) = tokio::sync::mpsc::unbounded_channel();
    let (done, mut finished) = tokio::sync::oneshot::channel();
    let stop_seen = stop.clone();
    std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            let r = steady(src, dst, flow, cfg, poll, &stop_seen, &notes);
            let _ = done.send(r);
        })?;
    let mut stopped = false;
    let (src, dst, flow, outcome) = loop {
        tokio::select! {
            biased;
            r = &mut finished => {
                break r.map_err(|_| io::Error::other("the relay's thread ended without its ends"))?;
            }
            Some(Note::Progress(p, s)) = noted.recv() => progress(&p, &s),
            _ = &mut *stopping, if !stopped => {
                stopped = true;
                stop.store(true, Ordering::SeqCst);
                waker.wake()?;
                let _ = src_waker.shutdown(std::net::Shutdown::Read);
            }
        }
    };
    drop(src_waker);
    // Stopping was asked for: that is how it ends, whatever the loop met
    // meanwhile.
    let outcome = if stopped { Outcome::Stop } else { outcome };
    // Notes the loop left behind (a skip just before it ended).
    while let Ok(Note::Progress(p, s)) = noted.try_recv() {
        progress(&p, &s);
    }
    let (src, dst) = (src.into_driver()?, dst.into_driver()?);
    Ok((src, dst, flow, outcome))
}

type Ends = (PlainDriver, PlainDriver, Flow, Outcome);

fn steady(
    src: PlainDriver,
    dst: PlainDriver,
    mut flow: Flow,
    cfg: RelayConfig,
    mut poll: Poll,
    stop: &AtomicBool,
    notes: &tokio::sync::mpsc::UnboundedSender<Note>,
) -> Ends {
    let (mut src, mut dst) = (end(src), end(dst));
    // A blocking read of the source wakes at least once a tick; a blocking
    // write to it (acknowledgements) waits no longer.
    let sock = socket2::SockRef::from(&src.tcp);
    let timeouts = sock
        .set_read_timeout(Some(TICK))
        .and_then(|()| sock.set_write_timeout(Some(TICK)));
    let outcome = match timeouts {
        Ok(()) => steady_loop(&mut src, &mut dst, &mut flow, cfg, &mut poll, stop, notes),
        Err(e) => Outcome::Failed(Side::Source, e.into()),
    };
    // The runtime needs its sockets non-blocking, as they came.
    let sock = socket2::SockRef::from(&src.tcp);
    let restored = sock
        .set_read_timeout(None)
        .and_then(|()| sock.set_write_timeout(None))
        .and_then(|()| sock.set_nonblocking(true));
    // A source socket left blocking would stall the runtime: it is given
    // up (reconnected, or the relay ends) rather than used again.
    let outcome = match restored {
        Ok(()) => outcome,
        Err(e) => Outcome::Failed(Side::Source, e.into()),
    };
    // Closing the poll drops its registrations: the runtime registers the
    // sockets again.
    drop(poll);
    (
        src.with_socket(Into::into),
        dst.with_socket(Into::into),
        flow,
        outcome,
    )
}

fn steady_loop(
    src: &mut End,
    dst: &mut End,
    flow: &mut Flow,
    cfg: RelayConfig,
    poll: &mut Poll,
    stop: &AtomicBool,
    notes: &tokio::sync::mpsc::UnboundedSender<Note>,
) -> Outcome {
    let both = Interest::READABLE | Interest::WRITABLE;
    for (end, token, side) in [
        (&mut *src, SRC, Side::Source),
        (&mut *dst, DST, Side::Destination),
    ] {
        if let Err(e) = poll.registry().register(&mut end.tcp, token, both) {
            return Outcome::Failed(side, e.into());
        }
    }
    let mut progress = |p: &Progress, s: &RelayStats| {
        let _ = notes.send(Note::Progress(p.clone(), Box::new(s.counters())));
    };
    let mut events = Events::with_capacity(8);
    let mut scratch = vec![0u8; READ_SIZE];
    // One clock reading per wakeup, taken when the poll returns.
    let mut now = Instant::now();
    let mut next_tick = now + TICK;
    // When the destination last took a byte (or was first given one).
    let mut accepted = now;
    // Fast: the source is read blocking (one syscall to wait and read),
    // the destination written without waiting; its own messages are read
    // once a tick. Slow (the destination is behind): both through the
    // poll.
    let mut fast = false;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Outcome::Stop;
        }
        let pending = dst.pending();
        if pending && now >= accepted + cfg.stall {
            let queued = dst.queued();
            return Outcome::Failed(
                Side::Destination,
                DriveError::Io(stalled(cfg.stall, queued)),
            );
        }
        let (mut src_in, mut dst_in) = (false, false);
        if now >= next_tick {
            flow.stats.queued = dst.queued();
            progress(&Progress::Tick, &flow.stats);
            next_tick = now + TICK;
            // What the destination said meanwhile (fast mode reads it only
            // now): an error status, a ping, its close.
            dst_in = fast;
        }
        let mut read = Ok(());
        if fast {
            // Waits for the source (at most a tick: SO_RCVTIMEO).
            match src.receive(&mut scratch, &mut now, true) {
                Ok(Got::NotReady | Got::Interrupted) => {}
                Ok(Got::Read { .. }) => src_in = true,
                Err(DriveError::Closed) if stop.load(Ordering::SeqCst) => return Outcome::Stop,
                Err(e) => {
                    read = Err(e);
                    src_in = true;
                }
            }
        } else {
            let mut wait = next_tick - now;
            if pending {
                wait = wait.min(accepted + cfg.stall - now);
            }
            let polled = poll.poll(&mut events, Some(wait));
            now = Instant::now();
            match polled {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Outcome::Failed(Side::Source, e.into()),
            }
            for ev in events.iter() {
                let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                match ev.token() {
                    SRC => src_in |= readable,
                    DST => dst_in |= readable,
                    _ => {}
                }
            }
            if src_in {
                read = src.read(&mut scratch, now);
            }
        }
        if src_in {
            if !dst.pending() {
                accepted = now;
            }
            let unsent = dst.unsent.len();
            let ended = flow.on_source(
                &mut src.session,
                &mut dst.session,
                unsent,
                cfg,
                now,
                &mut progress,
            );
            // What was decoded before a fault went on first.
            if let Err(e) = read {
                return Outcome::Failed(Side::Source, e);
            }
            if ended && !cfg.reconnect {
                return Outcome::Ended;
            }
        }
        if dst_in {
            if let Err(e) = dst.read(&mut scratch, now) {
                return Outcome::Failed(Side::Destination, e);
            }
            if let Some(e) = flow.on_destination(&mut dst.session, cfg) {
                return Outcome::Refused(e);
            }
        }
        if dst.pending() {
            match dst.write() {
                Err(e) => return Outcome::Failed(Side::Destination, e.into()),
                Ok((n, all)) => {
                    if n > 0 {
                        accepted = now;
                    }
                    if all {
                        // The latency measured ends here: one more clock
                        // reading per message, only when it went whole.
                        flow.all_sent(Instant::now());
                    }
                }
            }
        }
        // Acknowledgements and ping answers to the source (in fast mode the
        // source socket blocks: a write waits for room, as it should for
        // a few bytes a window).
        if src.pending()
            && let Err(e) = src.write()
        {
            return Outcome::Failed(Side::Source, e.into());
        }
        // Fast while the destination keeps up; the poll while it is behind.
        let behind = dst.pending();
        if fast == behind {
            fast = !behind;
            if let Err(e) = socket2::SockRef::from(&src.tcp).set_nonblocking(!fast) {
                return Outcome::Failed(Side::Source, e.into());
            }
        }
    }
}
