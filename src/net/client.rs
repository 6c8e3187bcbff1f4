//! What every client command shares once it reached a server: the
//! server's text made safe to show (the URL's secrets removed, control
//! characters escaped), refusals explained, a malformed answer named, and
//! handshake randomness.

use crate::net::RtmpUrl;
use crate::proto::amf0::Amf0Value;
use crate::proto::session::{Event, Reply};

/// Text a server sent (onStatus code and description, `_error` info,
/// fmsVer) made fit for a terminal line: the URL's secrets removed (unless
/// `reveal`) and control characters and invalid UTF-8 escaped.
pub fn peer_text(url: &RtmpUrl, text: &str, reveal: bool) -> String {
    crate::text::sanitize(&url.scrub(text, reveal)).into_owned()
}

/// Text a server sent, for JSON: the URL's secrets removed (unless
/// `reveal`); the JSON encoder escapes the rest.
pub fn peer_json(url: &RtmpUrl, text: &str, reveal: bool) -> String {
    url.scrub(text, reveal).into_owned()
}

/// The likely cause of a refusal, from the status code (and, for the codes
/// servers overload, the description).
pub fn status_hint(code: &str, description: &str) -> Option<&'static str> {
    let d = description.to_ascii_lowercase();
    let denied = [
        "not allowed",
        "denied",
        "unauthori",
        "forbidden",
        "auth",
        "invalid key",
    ]
    .iter()
    .any(|w| d.contains(w));
    Some(match code {
        "NetStream.Publish.BadName" if d.contains("already") => {
            "a stream of that name is already being published"
        }
        "NetStream.Publish.BadName" if denied => {
            "the server does not accept this stream name or key (check the key and its token)"
        }
        "NetStream.Publish.BadName" => {
            "the server refuses this stream name (already published, or not an allowed name or key)"
        }
        "NetStream.Play.StreamNotFound" => "no stream of that name is being published",
        "NetConnection.Connect.Rejected" if denied => {
            "the server refused the credentials (key, token or user info)"
        }
        "NetConnection.Connect.Rejected" => {
            "the server does not serve this app, or refuses this client"
        }
        "NetConnection.Connect.InvalidApp" => "the server has no application of that name",
        c if c.ends_with(".Unauthorized") || denied => {
            "the server refused the key or token (check the stream key)"
        }
        _ => return None,
    })
}

/// `"CODE (DESCRIPTION)"` of a refusal, secrets removed, escaped, with the
/// likely cause when known.
pub fn refusal(url: &RtmpUrl, code: &str, description: &str, reveal: bool) -> String {
    if code.is_empty() && description.is_empty() {
        return "no code or description (the reply carries no info object)".into();
    }
    let mut why = format!(
        "{} ({})",
        peer_text(url, code, reveal),
        peer_text(url, description, reveal)
    );
    if let Some(h) = status_hint(code, description) {
        why.push_str(": ");
        why.push_str(h);
    }
    why
}

/// Why the server refused `connect` (its `_error`), as [`refusal`] says
/// it; a redirect (FMS and Wowza: `NetConnection.Connect.Rejected` with
/// `ex.code` 302 and the new address in `ex.redirect`) is named with that
/// address, its secrets removed unless `reveal`.
pub fn connect_refusal(url: &RtmpUrl, reply: &Reply, reveal: bool) -> String {
    let info = |k: &str| reply.info(k).unwrap_or_default().into_owned();
    let (code, description) = (info("code"), info("description"));
    let ex = reply.command.args().first().and_then(|o| o.get("ex"));
    let Some(to) = ex.and_then(|e| e.get("redirect")).and_then(Amf0Value::text) else {
        return refusal(url, &code, &description, reveal);
    };
    let shown = match RtmpUrl::parse(&to, None, None) {
        Ok(u) if !reveal => peer_text(url, &u.shown(false), false),
        _ => peer_text(url, &to, reveal),
    };
    let ex_code = ex
        .and_then(|e| e.get("code"))
        .and_then(Amf0Value::as_f64)
        .map_or(String::new(), |c| format!(" (ex.code {c})"));
    format!(
        "{} ({}): the server redirects to {shown}{ex_code}: connect there",
        peer_text(url, &code, reveal),
        peer_text(url, &description, reveal)
    )
}

/// Handshake random bytes: need no cryptographic quality (the digest
/// handshake authenticates nothing); seeded from the clock and the PID.
pub fn random_source() -> impl FnMut(&mut [u8]) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = t ^ (u64::from(std::process::id()) << 32) | 1;
    move |buf: &mut [u8]| {
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
    }
}

/// While a command's answer is awaited, a command message (20 or 17) that
/// does not decode is the server breaking the protocol (exit 9): the answer
/// may be that very message, so waiting on would only end in a timeout.
/// The error text (it may quote the server's values) has the URL's secrets
/// removed unless `reveal`.
pub fn malformed_command(ev: &Event, url: &RtmpUrl, reveal: bool) -> Option<String> {
    match ev {
        Event::Malformed { msg_type, error } if matches!(msg_type, 20 | 17) => Some(format!(
            "the server broke the protocol: a malformed {} message ({})",
            crate::proto::message::MessageType(*msg_type),
            peer_text(url, error, reveal)
        )),
        _ => None,
    }
}

/// Why a TCP connect to `addr` failed, in words: nothing listening, no
/// answer to the SYN, or the system's error.
pub fn tcp_connect_failure(
    e: &std::io::Error,
    addr: std::net::SocketAddr,
    timeout: std::time::Duration,
) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!(
            "connection refused by {addr}: nothing listens on port {} (server down or wrong port)",
            addr.port()
        ),
        std::io::ErrorKind::TimedOut => format!(
            "no answer to the TCP SYN from {addr} within {timeout:?}: the port is filtered by a firewall, or the host is down or unreachable"
        ),
        _ => format!("TCP connect to {addr}: {e}"),
    }
}
