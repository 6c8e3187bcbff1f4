//! Strict mode: every connection of `serve` is followed by the same analyzer
//! that reads captures ([`LiveConn`]), and its records and bytes go to the
//! same [`Diagnoser`] `diagnose` runs, so a peer's deviation gets the same
//! finding code, words and fix live as it would in a capture of it.
//!
//! The server's own direction is followed through the handshake and the
//! command exchange (the analyzer needs both sides to judge a handshake);
//! once media flows to a player it is left out ([`Strict::stop_following_sent`]),
//! so that fan-out does not decode every player's stream a second time.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::analyze::{CloseKind, LiveConn, Options};
use crate::capture::Timestamp;
use crate::capture::tcp::Dir;
use crate::diag::{Diagnoser, Finding};
use crate::proto::chunk::ReserveBudget;

/// Live analysis of one connection.
pub struct Strict {
    live: LiveConn,
    diag: Diagnoser,
    follow_sent: bool,
    /// Who else sees the records (a live decode).
    tap: Option<RecordTap>,
    /// Findings already reported live.
    reported: std::collections::HashSet<FindingKey>,
}

/// A consumer of the records of a followed connection.
pub type RecordTap = Box<dyn FnMut(&crate::analyze::Record) + Send>;

impl Strict {
    /// Follows a connection from `client` to `server` (us).
    pub fn new(
        client: SocketAddr,
        server: SocketAddr,
        id: u64,
        budget: Arc<ReserveBudget>,
        reveal_keys: bool,
    ) -> Strict {
        Strict {
            // Every connection to our port is RTMP, whatever it sends first
            // (TLS or HTTP to an RTMP port is a finding, not another protocol).
            live: LiveConn::new(
                Options {
                    port: Some(server.port()),
                    ..Options::default()
                },
                client,
                server,
                id,
                budget,
            ),
            diag: Diagnoser::new(crate::diag::Options {
                reveal_keys,
                ..Default::default()
            }),
            follow_sent: true,
            tap: None,
            reported: Default::default(),
        }
    }

    /// Also hands every record to `tap` (`relay --listen`'s live decode).
    pub fn with_tap(mut self, tap: RecordTap) -> Strict {
        self.tap = Some(tap);
        self
    }

    fn feed(&mut self, dir: Dir, bytes: &[u8], time: Timestamp) {
        let Strict {
            live, diag, tap, ..
        } = self;
        let dg = std::cell::RefCell::new(diag);
        live.data(
            dir,
            bytes,
            time,
            &mut |r| {
                if let Some(t) = tap.as_mut() {
                    t(&r);
                }
                dg.borrow_mut().record(&r)
            },
            Some(&mut |d| dg.borrow_mut().data(d)),
        );
    }

    /// Bytes received from the client.
    pub fn received(&mut self, bytes: &[u8], time: Timestamp) {
        self.feed(Dir::C2s, bytes, time);
    }

    /// Bytes queued to the client (whole messages).
    pub fn sent(&mut self, bytes: &[u8], time: Timestamp) {
        if self.follow_sent {
            self.feed(Dir::S2c, bytes, time);
        }
    }

    /// Stops following what we send (media to a player).
    pub fn stop_following_sent(&mut self) {
        self.follow_sent = false;
    }

    /// Findings that nothing later can revise, not reported before: for
    /// printing while the connection goes on.
    pub fn take_settled(&mut self) -> Vec<Finding> {
        let mut out = self.diag.settled();
        out.retain(|f| self.reported.insert(key(f)));
        out
    }

    /// Findings so far (each once).
    pub fn take_findings(&mut self) -> Vec<Finding> {
        self.diag.take_findings()
    }

    /// The connection ended: what the end reveals (a handshake that never
    /// completed, a message cut off), then every finding not yet taken.
    pub fn end(mut self, dir: Dir, kind: CloseKind, time: Timestamp) -> Vec<Finding> {
        let Strict {
            live, diag, tap, ..
        } = &mut self;
        live.end(dir, kind, time, &mut |r| {
            if let Some(t) = tap.as_mut() {
                t(&r);
            }
            diag.record(&r)
        });
        let mut all = self.diag.finish();
        all.retain(|f| !self.reported.contains(&key(f)));
        all
    }
}

/// What tells a finding apart from the others of its connection.
type FindingKey = (&'static str, Option<usize>, Option<u64>, Option<u64>);

fn key(f: &Finding) -> FindingKey {
    (f.code.as_str(), f.dir.map(Dir::index), f.offset, f.frame)
}
