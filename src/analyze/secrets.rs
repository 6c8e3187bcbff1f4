//! The stream keys and query values a capture (or one connection) names,
//! kept out of what is shown unless keys are revealed (CLI.md: secrets never
//! reach output, in human text or JSON).
//!
//! [`Secrets`] learns them from what a client sends: the names of
//! `publish`, `play`, `play2`, `releaseStream`, `FCPublish` and
//! `FCUnpublish` (a `?query` split off), the query values of `connect`'s
//! `tcUrl`, `app`, `swfUrl` and `pageUrl`, and user info (`user:pass@`) in
//! those URLs; and from a server's `onStatus`, whose `details` (`detail`
//! for tcserver) is the stream name: in a capture out of time order (two
//! taps merged, a clock skew) it comes before the client's `publish` that
//! names it. Every later command or data message of either direction (a
//! server's onStatus description echoes the name) is shown with them
//! shortened as [`crate::net::url::redact`] does (`ab…`, `***@`), and its raw
//! body (shown by `--hex`) with the same bytes masked by `*`: the length
//! stays, so offsets in a hex dump stay true.
//!
//! An occurrence counts only where it stands as a word of its own (not
//! inside a longer name: a stream called `live` leaves `NetStream.Play.Live`
//! alone, though it does shorten an app of the same name).

use std::borrow::Cow;

use bytes::Bytes;

use super::{Record, RecordKind, RtmfpPacket};
use crate::capture::tcp::Dir;
use crate::proto::amf0::Amf0Value;
use crate::proto::amf3::Amf3Value;
use crate::proto::message::{Command, Message};
use crate::proto::rtmfp::chunk::ChunkBody;
use crate::proto::rtmfp::vlu::read_options;

/// Commands whose first argument is a stream name (`play2`'s is an object
/// with `streamName`; FFmpeg and rtmpdump ask `getStreamLength` and
/// `FCSubscribe` with the name before they play).
pub const STREAM_COMMANDS: [&str; 9] = [
    "publish",
    "play",
    "play2",
    "releaseStream",
    "FCPublish",
    "FCUnpublish",
    "FCSubscribe",
    "FCUnsubscribe",
    "getStreamLength",
];

/// `connect` properties that hold URLs (their query values and user info
/// are secrets).
const URL_PROPERTIES: [&str; 4] = ["tcUrl", "app", "swfUrl", "pageUrl"];

/// Secrets one view keeps at once: a client naming more streams than this
/// on one connection (a hostile capture) has the oldest forgotten, so that
/// what is shown costs at most this many searches per value.
pub const MAX_SECRETS: usize = 64;

/// The secrets learnt so far.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    keys: Vec<String>,
    /// RTMFP user data is shown (`--hex`): mask it too.
    user_data_shown: bool,
}

impl Secrets {
    /// Secrets for a view that shows RTMFP packets' user data bytes
    /// (`--hex`) or not (their messages are shown decoded either way).
    pub fn new(user_data_shown: bool) -> Self {
        Secrets {
            keys: Vec::new(),
            user_data_shown,
        }
    }

    /// Whether nothing has been learnt.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds a secret (a user-info secret ends with `@`). Past
    /// [`MAX_SECRETS`] the oldest is forgotten.
    pub fn add(&mut self, k: &str) {
        if !k.is_empty() && k != "@" && !self.keys.iter().any(|x| x == k) {
            if self.keys.len() >= MAX_SECRETS {
                self.keys.remove(0);
            }
            self.keys.push(k.to_owned());
        }
    }

    fn add_query(&mut self, q: &str) {
        for kv in q.split('&') {
            self.add(kv.split_once('=').map_or(kv, |x| x.1));
        }
    }

    /// Learns the secrets of a URL: its user info (`rtmp://user:pass@host/`)
    /// and its query values.
    pub fn learn_url(&mut self, u: &str) {
        if let Some((_, rest)) = u.split_once("://")
            && let Some((info, _)) = rest.split(['/', '?']).next().unwrap_or("").rsplit_once('@')
        {
            self.add(&format!("{info}@"));
        }
        if let Some((_, q)) = u.split_once('?') {
            self.add_query(q.split('#').next().unwrap_or(q));
        }
    }

    /// Learns from an RTMFP packet, which is shown before the messages
    /// decoded from it: the URL an initiator's hello carries, and the
    /// commands of a client's whole user messages.
    fn learn_rtmfp(&mut self, dir: Option<Dir>, p: &RtmfpPacket) {
        let Some(pk) = p.packet() else {
            return;
        };
        for c in &pk.chunks {
            match &c.body {
                ChunkBody::IHello { epd, .. } | ChunkBody::FIHello { epd, .. } => {
                    if let Ok((opts, _, _)) = read_options(epd) {
                        for (_, v) in opts {
                            let u = String::from_utf8_lossy(&v);
                            self.learn_url(&u);
                            // A URL that names a stream after its app
                            // (`rtmfp://host/app/KEY`): the key too.
                            if let Some(k) = url_stream_key(&u) {
                                self.add(k);
                            }
                        }
                    }
                }
                // Commands only (AMF0 20, AMF3 17): media is not decoded
                // twice.
                ChunkBody::UserData(d)
                    if d.fragment() == 0 && d.data.len() >= 5 && matches!(d.data[0], 17 | 20) =>
                {
                    let ty = crate::proto::message::MessageType(d.data[0]);
                    if let Ok(Message::Command(c)) = Message::decode(ty, d.data.slice(5..))
                        && (dir == Some(Dir::C2s) || c.name() == "onStatus")
                    {
                        self.learn(&c);
                    }
                }
                _ => {}
            }
        }
    }

    /// An RTMFP packet as it may be shown: its user data and hellos with
    /// the secrets masked.
    fn shown_rtmfp<'r>(&mut self, r: &'r Record, p: &RtmfpPacket) -> Cow<'r, Record> {
        self.learn_rtmfp(r.dir, p);
        if self.keys.is_empty() {
            return Cow::Borrowed(r);
        }
        let Some(pk) = p.packet() else {
            return Cow::Borrowed(r);
        };
        let mut masked: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, c) in pk.chunks.iter().enumerate() {
            let b: &[u8] = match &c.body {
                ChunkBody::IHello { epd, .. } | ChunkBody::FIHello { epd, .. } => epd,
                ChunkBody::UserData(d) if self.user_data_shown => &d.data,
                _ => continue,
            };
            if let Cow::Owned(m) = self.masked(b) {
                masked.push((i, m));
            }
        }
        if masked.is_empty() {
            return Cow::Borrowed(r);
        }
        let mut shown = r.clone();
        if let RecordKind::Rtmfp(p) = &mut shown.kind
            && let Some(o) = &mut p.opened
            && let Ok(pk) = &mut o.packet
        {
            for (i, m) in masked {
                match &mut pk.chunks[i].body {
                    ChunkBody::IHello { epd, .. } | ChunkBody::FIHello { epd, .. } => *epd = m,
                    ChunkBody::UserData(d) => d.data = Bytes::from(m),
                    _ => {}
                }
            }
        }
        Cow::Owned(shown)
    }

    /// Learns what a command a client sent names.
    pub fn learn(&mut self, c: &Command) {
        let text = |v: Option<&Amf0Value>| match v {
            Some(Amf0Value::String(s) | Amf0Value::LongString(s)) => Some(s.clone()),
            Some(Amf0Value::AvmPlus(Amf3Value::String(s))) => Some(s.clone()),
            _ => None,
        };
        let name = c.name();
        if name == "connect" {
            let Some(o) = c.command_object() else {
                return;
            };
            for key in URL_PROPERTIES {
                if let Some(u) = text(o.get(key)) {
                    self.learn_url(&u);
                }
            }
        } else if name == "play2"
            && let Some(Amf0Value::Object(p) | Amf0Value::EcmaArray { properties: p, .. }) =
                c.args().first()
        {
            for (k, v) in p {
                if (k == "streamName" || k == "oldStreamName")
                    && let Some(n) = text(Some(v))
                {
                    self.learn_name(&n);
                }
            }
        } else if STREAM_COMMANDS.contains(&name)
            && let Some(k) = text(c.args().first())
        {
            self.learn_name(&k);
        } else if name == "onStatus" {
            // FMS and tcserver name the stream in the info object.
            for a in c.args() {
                let p = match a {
                    Amf0Value::Object(p) | Amf0Value::EcmaArray { properties: p, .. } => p,
                    _ => continue,
                };
                for (k, v) in p {
                    if (k == "details" || k == "detail")
                        && let Some(n) = text(Some(v))
                        && !n.is_empty()
                    {
                        self.learn_name(&n);
                    }
                }
            }
        }
    }

    /// A stream name, and the query values it carries.
    fn learn_name(&mut self, k: &str) {
        match k.split_once('?') {
            Some((k, q)) => {
                self.add(k);
                self.add_query(q);
            }
            None => self.add(k),
        }
    }

    /// Whether a record may name or hold a secret (commands, data, RTMFP
    /// packets); [`Secrets::shown`] borrows every other record unchanged.
    pub fn concern(r: &Record) -> bool {
        matches!(
            r.kind,
            RecordKind::Message {
                decoded: Ok(Message::Command(_) | Message::Data(_)),
                ..
            } | RecordKind::Rtmfp(_)
        )
    }

    /// The record as it may be shown: learns from it (a client's command),
    /// then shortens what it holds of the secrets learnt so far. Borrowed
    /// when nothing changes (media, control, and most commands).
    pub fn shown<'r>(&mut self, r: &'r Record) -> Cow<'r, Record> {
        let (m, raw) = match &r.kind {
            RecordKind::Message {
                decoded: Ok(m),
                raw,
            } => (m, raw),
            RecordKind::Rtmfp(p) => return self.shown_rtmfp(r, p),
            _ => return Cow::Borrowed(r),
        };
        let values = match m {
            Message::Command(c) => {
                if r.dir == Some(Dir::C2s) || c.name() == "onStatus" {
                    self.learn(c);
                }
                &c.values
            }
            Message::Data(d) => &d.values,
            _ => return Cow::Borrowed(r),
        };
        if self.keys.is_empty() {
            return Cow::Borrowed(r);
        }
        let mut values = values.clone();
        let mut changed = false;
        // A command's name is not a secret (a stream may be called `play`).
        let from = usize::from(matches!(m, Message::Command(_)));
        for v in values.iter_mut().skip(from) {
            changed |= self.scrub(v);
        }
        if !changed {
            return Cow::Borrowed(r);
        }
        let mut shown = r.clone();
        if let RecordKind::Message {
            decoded:
                Ok(Message::Command(crate::proto::message::Command { values: v, .. }))
                | Ok(Message::Data(crate::proto::message::DataMessage { values: v, .. })),
            raw: shown_raw,
        } = &mut shown.kind
        {
            *v = values;
            if let Cow::Owned(b) = self.masked(&raw.payload) {
                shown_raw.payload = Bytes::from(b);
            }
        }
        Cow::Owned(shown)
    }

    /// Bytes with every secret in them masked (`*`), keeping what
    /// [`crate::net::url::redact`] keeps (the first 2 characters of a
    /// secret longer than 2, the `@` of user info).
    pub fn masked<'p>(&self, payload: &'p [u8]) -> Cow<'p, [u8]> {
        let mut out: Option<Vec<u8>> = None;
        for k in &self.keys {
            let hay = out.as_deref().unwrap_or(payload);
            let at = crate::text::word_occurrences(hay, k.as_bytes());
            if at.is_empty() {
                continue;
            }
            let (keep, hide) = kept(k);
            let b = out.get_or_insert_with(|| payload.to_vec());
            for i in at {
                b[i + keep..i + keep + hide].fill(b'*');
            }
        }
        out.map_or(Cow::Borrowed(payload), Cow::Owned)
    }

    /// Text with every secret in it shortened; borrowed when none is there.
    pub fn text<'t>(&self, s: &'t str) -> Cow<'t, str> {
        let mut s = Cow::Borrowed(s);
        for k in &self.keys {
            let at = crate::text::word_occurrences(s.as_bytes(), k.as_bytes());
            if at.is_empty() {
                continue;
            }
            let shown = if k.ends_with('@') {
                "***@".to_owned()
            } else {
                crate::net::url::redact(k, false)
            };
            s = Cow::Owned(crate::text::replace_at(&s, &at, k.len(), &shown));
        }
        s
    }

    fn scrub_str(&self, s: &mut String) -> bool {
        match self.text(s) {
            Cow::Borrowed(_) => false,
            Cow::Owned(t) => {
                *s = t;
                true
            }
        }
    }

    /// Shortens the secrets in a value; whether anything changed.
    fn scrub(&self, v: &mut Amf0Value) -> bool {
        match v {
            Amf0Value::String(s) | Amf0Value::LongString(s) | Amf0Value::XmlDocument(s) => {
                self.scrub_str(s)
            }
            Amf0Value::Object(p)
            | Amf0Value::EcmaArray { properties: p, .. }
            | Amf0Value::TypedObject { properties: p, .. } => {
                p.iter_mut().fold(false, |c, (_, v)| self.scrub(v) | c)
            }
            Amf0Value::StrictArray(a) => a.iter_mut().fold(false, |c, v| self.scrub(v) | c),
            Amf0Value::AvmPlus(v) => self.scrub3(v),
            _ => false,
        }
    }

    fn scrub3(&self, v: &mut Amf3Value) -> bool {
        let pairs = |p: &mut Vec<(String, Amf3Value)>| {
            p.iter_mut().fold(false, |c, (_, v)| self.scrub3(v) | c)
        };
        match v {
            Amf3Value::String(s) | Amf3Value::XmlDocument(s) | Amf3Value::Xml(s) => {
                self.scrub_str(s)
            }
            Amf3Value::Array { assoc, dense } => {
                pairs(assoc) | dense.iter_mut().fold(false, |c, v| self.scrub3(v) | c)
            }
            Amf3Value::Object(o) => {
                let mut c = pairs(&mut o.sealed) | pairs(&mut o.dynamic_members);
                if let Some(e) = &mut o.external {
                    c |= self.scrub3(e);
                }
                c
            }
            Amf3Value::VectorObject { items, .. } => {
                items.iter_mut().fold(false, |c, v| self.scrub3(v) | c)
            }
            Amf3Value::Dictionary { entries, .. } => entries
                .iter_mut()
                .fold(false, |c, (k, v)| self.scrub3(k) | self.scrub3(v) | c),
            _ => false,
        }
    }
}

/// The last path component of a URL whose path has two or more (the
/// stream name after the app), as `redact_raw` shortens it.
fn url_stream_key(u: &str) -> Option<&str> {
    let rest = u.split_once("://")?.1;
    let path = &rest[rest.find('/')?..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    (parts.len() >= 2).then(|| parts[parts.len() - 1])
}

/// (bytes kept, bytes masked) of a secret, as `redact` shows it.
fn kept(k: &str) -> (usize, usize) {
    if let Some(info) = k.strip_suffix('@') {
        return (0, info.len());
    }
    let keep = if k.chars().count() > 2 {
        k.char_indices().nth(2).map_or(k.len(), |(i, _)| i)
    } else {
        0
    };
    (keep, k.len() - keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::proto::chunk::{MessageHeader, RawMessage};
    use crate::proto::message::DataMessage;
    use Amf0Value as V;

    fn rec(dir: Dir, m: Message) -> Record {
        Record {
            conn: "a-b".into(),
            conn_id: 0,
            dir: Some(dir),
            frame: 1,
            time: Timestamp { sec: 0, nsec: 0 },
            offset: None,
            kind: RecordKind::Message {
                raw: RawMessage {
                    csid: 3,
                    header: MessageHeader {
                        timestamp: 0,
                        msg_type: m.msg_type(),
                        stream_id: 0,
                    },
                    payload: m.encode(),
                    offset: 0,
                    fmt: 0,
                    chunks: 1,
                    extended_timestamp: false,
                    unknown: Default::default(),
                },
                decoded: Ok(m),
            },
        }
    }

    fn connect(app: &str, tc: &str) -> Message {
        Message::Command(Command::new(
            "connect",
            1.0,
            V::Object(vec![
                ("app".into(), V::String(app.into())),
                ("tcUrl".into(), V::String(tc.into())),
                (
                    "pageUrl".into(),
                    V::String("https://example.com/watch?sig=pg4711&x".into()),
                ),
            ]),
            vec![],
        ))
    }

    /// Everything a renderer could show of a record: its decoded values and
    /// its raw body.
    fn shown(r: &Record) -> String {
        match &r.kind {
            RecordKind::Message { decoded, raw } => {
                format!("{decoded:?} {}", String::from_utf8_lossy(&raw.payload))
            }
            k => format!("{k:?}"),
        }
    }

    #[test]
    fn an_rtmfp_urls_stream_key_is_a_secret() {
        assert_eq!(
            url_stream_key("rtmfp://u:p@h:1935/live/key1?t=x"),
            Some("key1")
        );
        assert_eq!(url_stream_key("rtmfp://h/live"), None);
        assert_eq!(url_stream_key("rtmfp://h/live/"), None);
        assert_eq!(url_stream_key("rtmfp://h"), None);
    }

    #[test]
    fn what_a_client_names_is_shortened_in_both_directions() {
        let mut s = Secrets::new(false);
        let c = s
            .shown(&rec(
                Dir::C2s,
                connect("live?token=tok123", "rtmp://bob:pw77@h/live?token=tok123"),
            ))
            .into_owned();
        let t = shown(&c);
        for secret in ["tok123", "pw77", "pg4711"] {
            assert!(!t.contains(secret), "{secret} in {t}");
        }
        assert!(t.contains("rtmp://***@h/live?token=to…"), "{t}");
        // The raw body keeps its length (masked, not cut).
        let RecordKind::Message { raw, .. } = &c.kind else {
            unreachable!()
        };
        assert!(String::from_utf8_lossy(&raw.payload).contains("token=to****"));
        let publish = Message::Command(Command::new(
            "publish",
            5.0,
            V::Null,
            vec![
                V::String("secret99?k=v9v9v9".into()),
                V::String("live".into()),
            ],
        ));
        let p = s.shown(&rec(Dir::C2s, publish)).into_owned();
        let t = shown(&p);
        assert!(!t.contains("secret99") && !t.contains("v9v9v9"), "{t}");
        assert!(t.contains("se…") && t.contains("se******"), "{t}");
        // The server's echoes, in a command and in data (AMF3 too).
        let status = Message::Command(Command::new(
            "onStatus",
            0.0,
            V::Null,
            vec![V::Object(vec![
                (
                    "description".into(),
                    V::String("live/secret99 is now published.".into()),
                ),
                (
                    "details".into(),
                    V::AvmPlus(Amf3Value::String("secret99".into())),
                ),
                ("code".into(), V::String("NetStream.Publish.Start".into())),
            ])],
        ));
        let st = s.shown(&rec(Dir::S2c, status)).into_owned();
        let t = shown(&st);
        assert!(!t.contains("secret99"), "{t}");
        assert!(t.contains("NetStream.Publish.Start"), "{t}");
        let data = Message::Data(DataMessage {
            encoding: crate::proto::message::Encoding::Amf0,
            values: vec![V::String("onTextData".into()), V::String("secret99".into())],
        });
        assert!(!shown(&s.shown(&rec(Dir::S2c, data))).contains("secret99"));
    }

    /// A capture out of time order (two taps merged with a clock skew): the
    /// server's onStatus comes before the client's publish. Its `details`
    /// (`detail` for tcserver) is the stream name: shortened from there on,
    /// in that record too. It was shown in full.
    #[test]
    fn a_servers_onstatus_names_the_stream_before_the_publish_came() {
        for key in ["details", "detail"] {
            let mut s = Secrets::new(false);
            let status = Message::Command(Command::new(
                "onStatus",
                0.0,
                V::Null,
                vec![V::Object(vec![
                    ("code".into(), V::String("NetStream.Publish.Start".into())),
                    ("description".into(), V::String("publishing".into())),
                    (key.into(), V::String("key4711".into())),
                ])],
            ));
            let t = shown(&s.shown(&rec(Dir::S2c, status)));
            assert!(!t.contains("key4711"), "{t}");
            assert!(
                t.contains("ke…") && t.contains("NetStream.Publish.Start"),
                "{t}"
            );
            let publish = Message::Command(Command::new(
                "publish",
                5.0,
                V::Null,
                vec![V::String("key4711".into()), V::String("live".into())],
            ));
            assert!(!shown(&s.shown(&rec(Dir::C2s, publish))).contains("key4711"));
        }
    }

    #[test]
    fn records_without_secrets_are_borrowed_and_names_inside_names_stay() {
        let mut s = Secrets::new(false);
        s.add("live");
        let status = rec(
            Dir::S2c,
            Message::Command(Command::new(
                "onStatus",
                0.0,
                V::Null,
                vec![V::String("NetStream.Play.live-ish livestream".into())],
            )),
        );
        assert!(matches!(s.shown(&status), Cow::Borrowed(_)));
        assert_eq!(s.text("app live/live."), "app li…/li….");
        assert_eq!(s.masked(b"xlive live"), &b"xlive li**"[..]);
        // Short secrets show nothing of themselves.
        s.add("ab");
        assert_eq!(s.text("ab"), "…");
        assert_eq!(&*s.masked(b"=ab&"), b"=**&");
    }
}
