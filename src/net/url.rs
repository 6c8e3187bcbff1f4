//! RTMP URLs: `rtmp[s]://[user[:pass]@]host[:port]/app[/instance]/stream[?query]`.
//!
//! Split as FFmpeg's `rtmpproto.c` does: the last path component is the
//! stream (playpath), everything before it the app (so `app/instance` stays
//! together); one component is the app alone. `--app` and `--stream` act as
//! FFmpeg's `rtmp_app` and `rtmp_playpath`: each replaces its part and leaves
//! the other as the URL gives it. Default ports: 1935 for `rtmp`, 443 for
//! `rtmps`. IPv6 literals go in brackets. User info (`user:pass@`) is parsed
//! as such and never sent or shown.
//!
//! **Secrets.** A stream key is a credential, and so are query values, bare
//! query parameters, a token in the app's query and user info. [`RtmpUrl`]'s
//! `Display`, `Debug` and `Serialize` show them redacted (see [`redact`]); the
//! full URL is reachable only through [`RtmpUrl::reveal`], the wire values
//! only through the methods that build them ([`RtmpUrl::app`],
//! [`RtmpUrl::stream_with_query`], [`RtmpUrl::tc_url`]). Text a server sends
//! back is cleaned of them with [`RtmpUrl::scrub`]. Parse errors carry the
//! redacted form of what was given, never the text itself.

use std::fmt;

use thiserror::Error;

/// A parsed RTMP URL whose secrets stay hidden unless revealed.
#[derive(Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `rtmps`: TLS.
    pub tls: bool,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port (default 1935, or 443 for rtmps).
    pub port: u16,
    /// Application (`app` or `app/instance`, with `?query` when `--app` gave one).
    app: String,
    /// Stream name (playpath) without the query.
    stream: String,
    /// Query string after `?`, without the `?`.
    query: Option<String>,
    /// `user[:password]` before `@`.
    userinfo: Option<String>,
    /// Secrets of other text the user gave with this URL (`--tcurl`).
    also: Vec<String>,
}

/// Why a URL was rejected. Each variant holds the URL as given, redacted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UrlError {
    /// Not `rtmp://` or `rtmps://`.
    #[error("URL {0}: the scheme must be rtmp:// or rtmps://")]
    Scheme(String),
    /// No host.
    #[error("URL {0}: no host")]
    NoHost(String),
    /// Port not a number 1-65535.
    #[error("URL {url}: bad port '{port}' (1-65535)")]
    Port {
        /// The URL, redacted.
        url: String,
        /// The port text.
        port: String,
    },
    /// An IPv6 literal without its closing bracket.
    #[error("URL {0}: IPv6 address without closing ']'")]
    Bracket(String),
    /// An IPv6 address without brackets, text in brackets that is not an
    /// IPv6 address, or text after the closing bracket that is not a port.
    #[error("URL {url}: {why} (IPv6 as in rtmp://[::1]:1935/app/stream)")]
    Ipv6 {
        /// The URL, redacted.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Neither the URL nor `--app` names an application.
    #[error("URL {0}: no application (rtmp://host/APP/stream, or --app)")]
    NoApp(String),
}

impl RtmpUrl {
    /// Parses `s`; `app` and `stream` (from `--app`/`--stream`) replace the
    /// app and the playpath (with its `?query`) the URL gives.
    pub fn parse(s: &str, app: Option<&str>, stream: Option<&str>) -> Result<RtmpUrl, UrlError> {
        let shown = || redact_raw(s);
        let (tls, rest) = if let Some(r) = strip_prefix_ci(s, "rtmps://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(s, "rtmp://") {
            (false, r)
        } else {
            return Err(UrlError::Scheme(shown()));
        };
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_owned()), h),
            None => (None, authority),
        };
        let (host, port_text) = if let Some(v6) = hostport.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(|| UrlError::Bracket(shown()))?;
            let after = &v6[end + 1..];
            let ipv6 = |why| UrlError::Ipv6 { url: shown(), why };
            // A zone (`fe80::1%eth0`) is the resolver's to check.
            let addr = v6[..end].split('%').next().unwrap_or_default();
            if addr.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(ipv6("the text in brackets is not an IPv6 address"));
            }
            if !after.is_empty() && !after.starts_with(':') {
                return Err(ipv6("text after ']' that is not ':port'"));
            }
            (&v6[..end], after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => {
                    return Err(UrlError::Ipv6 {
                        url: shown(),
                        why: "an IPv6 address needs brackets",
                    });
                }
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::NoHost(shown()));
        }
        let port = match port_text {
            None => {
                if tls {
                    443
                } else {
                    1935
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| UrlError::Port {
                    url: shown(),
                    port: crate::text::sanitize(p).into_owned(),
                })?,
        };
        let path = path.trim_start_matches('/');
        // A `?` followed by a `/` is the app's query (`live?token=T/key`):
        // FFmpeg splits the app from the playpath at the slash, so the app
        // is `live?token=T`; the query, if any, is the stream's after it.
        let app_query = path.split_once('?').is_some_and(|(_, q)| q.contains('/'));
        let (path, query) = if app_query {
            let last = path.rfind('/').map_or(0, |i| i + 1);
            match path[last..].split_once('?') {
                Some((st, q)) => (&path[..last + st.len()], Some(q.to_owned())),
                None => (path, None),
            }
        } else {
            match path.split_once('?') {
                Some((p, q)) => (p, Some(q.to_owned())),
                None => (path, None),
            }
        };
        // FFmpeg's split (rtmp_open): the app is the first component, with
        // the second as its instance when more follow and it has no ':'
        // (`vod/mp4:dir/file.mp4` is app `vod`, playpath `mp4:dir/file.mp4`);
        // the rest, slashes and all, is the playpath.
        let (url_app, url_stream) = match path.split_once('/') {
            None => (path.to_owned(), String::new()),
            Some((first, rest)) => match rest.split_once('/') {
                Some((inst, tail)) if !inst.contains(':') => {
                    (format!("{first}/{inst}"), tail.to_owned())
                }
                _ => (first.to_owned(), rest.to_owned()),
            },
        };
        // With --app, the stream is what follows that app in the path (so an
        // app with an instance can be named), else the last component.
        let app_path = app.map(|a| a.split_once('?').map_or(a, |(p, _)| p));
        let (app, stream, query) = match (app, stream) {
            (Some(a), Some(st)) => {
                let (st, q) = split_query(st);
                (a.to_owned(), st, q)
            }
            (Some(a), None) => {
                let st = app_path
                    .and_then(|ap| path.strip_prefix(ap))
                    .and_then(|r| r.strip_prefix('/'))
                    .map_or(url_stream, str::to_owned);
                (a.to_owned(), st, query)
            }
            // FFmpeg's rtmp_playpath: the app stays what the URL gives.
            (None, Some(st)) => {
                let (st, q) = split_query(st);
                (url_app, st, q)
            }
            (None, None) => (url_app, url_stream, query),
        };
        if app.is_empty() {
            return Err(UrlError::NoApp(shown()));
        }
        Ok(RtmpUrl {
            tls,
            host: host.to_owned(),
            port,
            app,
            stream,
            query,
            userinfo,
            also: Vec::new(),
        })
    }

    /// Treats the secrets of `text` (a `--tcurl` URL: its query values, user
    /// info, the part after its app) as this URL's too, so that a server
    /// echoing it back is scrubbed as well.
    pub fn keep_secret(&mut self, text: &str) {
        if let Ok(u) = RtmpUrl::parse(text, None, None) {
            self.also.extend(u.secrets());
        } else if let Some((_, q)) = text.split_once('?') {
            self.also.push(q.to_owned());
            self.also.extend(query_secrets(q));
        }
    }

    /// The application as sent in `connect` (a secret when `--app` carries a
    /// `?token=`).
    pub fn app(&self) -> &str {
        &self.app
    }

    /// `rtmp[s]://host:port`: the server alone (no user info, no secrets).
    pub fn server(&self) -> String {
        format!("{}://{}:{}", self.scheme(), self.host_for_url(), self.port)
    }

    /// `tcUrl`: `rtmp[s]://host:port/app` (no user info). Holds the app's
    /// secrets, if any: for the wire only.
    pub fn tc_url(&self) -> String {
        format!(
            "{}://{}:{}/{}",
            self.scheme(),
            self.host_for_url(),
            self.port,
            self.app
        )
    }

    /// Whether both name the same stream of the same server (host as
    /// written, any case; port; app and stream without their queries), over
    /// TLS or not (a server may take both on one port).
    pub fn same_stream(&self, other: &RtmpUrl) -> bool {
        let bare = |s: &str| s.split('?').next().unwrap_or("").to_owned();
        self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
            && bare(&self.app) == bare(&other.app)
            && self.stream == other.stream
    }

    /// Whether the URL names a stream (not only an app).
    pub fn has_stream(&self) -> bool {
        !self.stream.is_empty()
    }

    /// The stream name as sent in publish/play: stream plus `?query`. A
    /// secret: for the wire only.
    pub fn stream_with_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.stream),
            None => self.stream.clone(),
        }
    }

    /// The full URL, secrets included, for `--reveal-keys`.
    pub fn reveal(&self) -> String {
        self.render(true)
    }

    /// The URL for output: redacted, or in full when `reveal` (`--reveal-keys`).
    pub fn shown(&self, reveal: bool) -> String {
        self.render(reveal)
    }

    fn render(&self, reveal: bool) -> String {
        let mut s = format!("{}://", self.scheme());
        if let Some(u) = &self.userinfo {
            if reveal {
                s.push_str(u);
                s.push('@');
            } else {
                s.push_str("***@");
            }
        }
        s.push_str(&self.host_for_url());
        if self.port != if self.tls { 443 } else { 1935 } {
            s.push_str(&format!(":{}", self.port));
        }
        s.push('/');
        s.push_str(&redact_path_query(&self.app, reveal));
        if !self.stream.is_empty() {
            s.push('/');
            s.push_str(&redact(&self.stream, reveal));
        }
        if let Some(q) = &self.query {
            s.push('?');
            s.push_str(&redact_query(q, reveal));
        }
        crate::text::sanitize(&s).into_owned()
    }

    /// The secrets of this URL, longest first: the stream name with and
    /// without its query, every query value and bare parameter (of the
    /// stream and of the app), the user and the password.
    pub fn secrets(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(q) = &self.query {
            v.push(self.stream_with_query());
            v.push(q.clone());
            v.extend(query_secrets(q));
        }
        v.push(self.stream.clone());
        if let Some((_, q)) = self.app.split_once('?') {
            v.push(q.to_owned());
            v.extend(query_secrets(q));
        }
        if let Some(u) = &self.userinfo {
            v.push(u.clone());
            match u.split_once(':') {
                Some((user, pass)) => {
                    v.push(user.to_owned());
                    v.push(pass.to_owned());
                }
                None => v.push(u.clone()),
            }
        }
        v.extend(self.also.iter().cloned());
        // Shorter ones match too much ordinary text; they are never printed
        // by the tool itself either way.
        v.retain(|s| s.chars().count() >= 3);
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        v.dedup();
        v
    }

    /// `text` from the server with this URL's secrets replaced by their
    /// redacted forms (unless `reveal`). The text is not escaped: that is
    /// [`crate::text::sanitize`]'s job.
    pub fn scrub<'t>(&self, text: &'t str, reveal: bool) -> std::borrow::Cow<'t, str> {
        if reveal {
            return std::borrow::Cow::Borrowed(text);
        }
        let secrets = self.secrets();
        if !secrets.iter().any(|s| text.contains(s.as_str())) {
            return std::borrow::Cow::Borrowed(text);
        }
        // As findings hide them: a key of one or two characters only where
        // it stands as a word (a stream `in` must not take the "in" out of
        // "ending"); longer ones everywhere.
        let mut out = text.to_owned();
        for s in &secrets {
            if let std::borrow::Cow::Owned(t) =
                crate::text::hide_secret(&out, s.as_str(), &redact(s, false))
            {
                out = t;
            }
        }
        std::borrow::Cow::Owned(out)
    }

    fn scheme(&self) -> &'static str {
        if self.tls { "rtmps" } else { "rtmp" }
    }

    fn host_for_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

/// Redacted.
impl fmt::Display for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

/// Redacted, like `Display`.
impl fmt::Debug for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RtmpUrl({:?})", self.render(false))
    }
}

/// Redacted, as a string.
impl serde::Serialize for RtmpUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.render(false))
    }
}

fn split_query(s: &str) -> (String, Option<String>) {
    match s.split_once('?') {
        Some((a, q)) => (a.to_owned(), Some(q.to_owned())),
        None => (s.to_owned(), None),
    }
}

fn query_secrets(q: &str) -> impl Iterator<Item = String> + '_ {
    q.split('&').map(|kv| match kv.split_once('=') {
        Some((_, v)) => v.to_owned(),
        None => kv.to_owned(),
    })
}

/// A secret shortened to its first 2 characters and `…` at any length (`abc`
/// → `ab…`); one of 2 characters or fewer shows none of them (`…`). Unless
/// `reveal`. The empty string stays empty.
pub fn redact(secret: &str, reveal: bool) -> String {
    if reveal || secret.is_empty() {
        return secret.to_owned();
    }
    let n = secret.chars().count();
    let head: String = if n > 2 {
        secret.chars().take(2).collect()
    } else {
        String::new()
    };
    format!("{head}…")
}

/// A query string with every value and every bare parameter redacted.
fn redact_query(q: &str, reveal: bool) -> String {
    if reveal {
        return q.to_owned();
    }
    q.split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => format!("{k}={}", redact(v, false)),
            None => redact(kv, false),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `path?query` with the query redacted.
/// `path?query` with the query's values and bare parameters redacted (an
/// app's query: `live?token=to…`).
pub fn redact_path_query(s: &str, reveal: bool) -> String {
    match s.split_once('?') {
        Some((p, q)) => format!("{p}?{}", redact_query(q, reveal)),
        None => s.to_owned(),
    }
}

/// Best-effort redaction of text given as a URL that did not parse: user
/// info, the last path component (when there are two or more) and the
/// query are redacted as [`RtmpUrl`] would; control characters escaped.
pub fn redact_raw(s: &str) -> String {
    format!("'{}'", redact_text_url(s))
}

/// [`redact_raw`] without the quotes: for a URL of a scheme [`RtmpUrl`]
/// does not parse (`rtmfp://`), shown as the URL.
pub fn redact_text_url(s: &str) -> String {
    let (scheme, rest) = match s.find("://") {
        Some(i) => (&s[..i + 3], &s[i + 3..]),
        None => ("", s),
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((_, h)) => format!("***@{h}"),
        None => authority.to_owned(),
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let trimmed = path.trim_start_matches('/');
    let path = match trimmed.rsplit_once('/') {
        Some((a, st)) => format!("/{a}/{}", redact(st, false)),
        None => path.to_owned(),
    };
    let mut out = format!("{scheme}{authority}{path}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_query(q, false));
    }
    crate::text::sanitize(&out).into_owned()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_stream_ignores_queries_scheme_and_host_case() {
        let u = |s: &str| RtmpUrl::parse(s, None, None).unwrap();
        assert!(u("rtmp://Host/live/a?k=1").same_stream(&u("rtmps://host:1935/live/a?k=2")));
        assert!(!u("rtmp://host/live/a").same_stream(&u("rtmp://host/live/b")));
        assert!(!u("rtmp://host/live/a").same_stream(&u("rtmp://host/other/a")));
        assert!(!u("rtmp://host/live/a").same_stream(&u("rtmp://host:1936/live/a")));
        assert!(!u("rtmp://host/live/a").same_stream(&u("rtmp://127.0.0.1/live/a")));
    }

    fn p(s: &str) -> RtmpUrl {
        RtmpUrl::parse(s, None, None).unwrap()
    }

    /// A token in --tcurl is scrubbed from server text like the URL's own.
    #[test]
    fn tcurl_secrets_are_scrubbed() {
        let mut u = p("rtmp://h/live/streamkey");
        let echo = "tcUrl rtmp://h/live?auth=tcurltoken99 key streamkey";
        assert!(u.scrub(echo, false).contains("tcurltoken99"));
        u.keep_secret("rtmp://h/live?auth=tcurltoken99");
        let out = u.scrub(echo, false);
        assert!(!out.contains("tcurltoken99"), "{out}");
        assert!(!out.contains("streamkey"), "{out}");
        assert!(u.scrub(echo, true).contains("tcurltoken99"));
    }

    #[test]
    fn splits_like_ffmpeg() {
        let u = p("rtmp://example.com/live/key");
        assert_eq!(
            (u.host.as_str(), u.port, u.tls),
            ("example.com", 1935, false)
        );
        assert_eq!((u.app.as_str(), u.stream.as_str()), ("live", "key"));
        let u = p("rtmp://h:1940/app/inst/stream?token=secret&x");
        assert_eq!(
            (u.port, u.app.as_str(), u.stream.as_str()),
            (1940, "app/inst", "stream")
        );
        assert_eq!(u.query.as_deref(), Some("token=secret&x"));
        assert_eq!(u.stream_with_query(), "stream?token=secret&x");
        assert_eq!(u.tc_url(), "rtmp://h:1940/app/inst");
        let u = p("rtmps://h/live");
        assert_eq!(
            (u.port, u.app.as_str(), u.stream.as_str()),
            (443, "live", "")
        );
        let u = p("rtmp://[::1]:1936/live/s");
        assert_eq!((u.host.as_str(), u.port), ("::1", 1936));
        assert_eq!(u.tc_url(), "rtmp://[::1]:1936/live");
        let u = p("RTMP://[fe80::1]/a/b");
        assert_eq!((u.host.as_str(), u.port), ("fe80::1", 1935));
        // A query before the last slash is the app's (FFmpeg: app
        // `live?token=T`, playpath `key`), not a stream name `?token=T/key`.
        let u = p("rtmp://h/live?token=topsecret/streamkey99");
        assert_eq!(
            (u.app.as_str(), u.stream.as_str()),
            ("live?token=topsecret", "streamkey99")
        );
        assert_eq!(u.query, None);
        assert_eq!(u.stream_with_query(), "streamkey99");
        assert_eq!(u.tc_url(), "rtmp://h:1935/live?token=topsecret");
        assert_eq!(u.to_string(), "rtmp://h/live?token=to…/st…");
        // As FFmpeg: at most app/instance, the rest is the playpath; a
        // second component with a ':' is the playpath's start.
        for (url, app, stream) in [
            ("rtmp://h/vod/mp4:dir/file.mp4", "vod", "mp4:dir/file.mp4"),
            ("rtmp://h/vod/mp4:file.mp4", "vod", "mp4:file.mp4"),
            ("rtmp://h/a/b/c/d", "a/b", "c/d"),
            ("rtmp://h/a/inst/mp4:c/d", "a/inst", "mp4:c/d"),
            ("rtmp://h/live//s", "live/", "s"),
            ("rtmp://h/live/s/", "live/s", ""),
        ] {
            let u = p(url);
            assert_eq!((u.app.as_str(), u.stream.as_str()), (app, stream), "{url}");
        }
        let u = p("rtmp://h/live?token=t0p/inst/key?x=1");
        assert_eq!(
            (u.app.as_str(), u.stream.as_str(), u.query.as_deref()),
            ("live?token=t0p/inst", "key", Some("x=1"))
        );
    }

    #[test]
    fn overrides() {
        let u = RtmpUrl::parse("rtmp://h/a/b/c", Some("a"), None).unwrap();
        assert_eq!((u.app.as_str(), u.stream.as_str()), ("a", "b/c"));
        // As FFmpeg's rtmp_playpath: the app stays what the URL gives.
        let u = RtmpUrl::parse("rtmp://h/a/b/c?q=1", None, Some("x")).unwrap();
        assert_eq!((u.app.as_str(), u.stream.as_str()), ("a/b", "x"));
        assert_eq!(u.stream_with_query(), "x");
        let u = RtmpUrl::parse("rtmp://h/live", None, Some("k?t=1")).unwrap();
        assert_eq!(
            (u.app.as_str(), u.stream_with_query().as_str()),
            ("live", "k?t=1")
        );
        let u = RtmpUrl::parse("rtmp://h/live/k", Some("live?token=abcdef"), None).unwrap();
        assert_eq!((u.app(), u.stream.as_str()), ("live?token=abcdef", "k"));
        assert_eq!(u.tc_url(), "rtmp://h:1935/live?token=abcdef");
        assert_eq!(u.to_string(), "rtmp://h/live?token=ab…/…");
    }

    #[test]
    fn user_info_is_not_the_host() {
        let u = p("rtmp://u:hunter2password@example.com:1936/live/k");
        assert_eq!((u.host.as_str(), u.port), ("example.com", 1936));
        assert_eq!(u.tc_url(), "rtmp://example.com:1936/live");
        assert_eq!(u.to_string(), "rtmp://***@example.com:1936/live/…");
        assert_eq!(
            u.reveal(),
            "rtmp://u:hunter2password@example.com:1936/live/k"
        );
        let u = p("rtmp://user@[::1]/live/key");
        assert_eq!(u.host, "::1");
        assert!(!format!("{u:?}").contains("user"));
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            RtmpUrl::parse("http://h/a", None, None),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            RtmpUrl::parse("rtmp:///a", None, None),
            Err(UrlError::NoHost(_))
        ));
        assert!(matches!(
            RtmpUrl::parse("rtmp://h:0/a", None, None),
            Err(UrlError::Port { .. })
        ));
        assert!(matches!(
            RtmpUrl::parse("rtmp://h:x/a", None, None),
            Err(UrlError::Port { .. })
        ));
        assert!(matches!(
            RtmpUrl::parse("rtmp://[::1/a", None, None),
            Err(UrlError::Bracket(_))
        ));
        for (u, why) in [
            ("rtmp://::1/live/s", "needs brackets"),
            ("rtmp://fe80::1:1936/live/s", "needs brackets"),
            ("rtmp://[zz]/live/s", "not an IPv6 address"),
            ("rtmp://[127.0.0.1]/live/s", "not an IPv6 address"),
            ("rtmp://[::1]1936/live/s", "not ':port'"),
        ] {
            let e = RtmpUrl::parse(u, None, None).unwrap_err();
            assert!(
                matches!(e, UrlError::Ipv6 { .. }) && e.to_string().contains(why),
                "{u}: {e}"
            );
        }
        assert_eq!(p("rtmp://[fe80::1%lo]:1936/a/b").host, "fe80::1%lo");
        assert!(matches!(
            RtmpUrl::parse("rtmp://h", None, None),
            Err(UrlError::NoApp(_))
        ));
    }

    #[test]
    fn redacts_keys_and_query_values() {
        let u = p("rtmp://h/live/abcdef123456?token=s3cr3tvalue&a=1&tokenonly");
        assert_eq!(u.to_string(), "rtmp://h/live/ab…?token=s3…&a=…&to…");
        assert_eq!(
            format!("{u:?}"),
            "RtmpUrl(\"rtmp://h/live/ab…?token=s3…&a=…&to…\")"
        );
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            "\"rtmp://h/live/ab…?token=s3…&a=…&to…\""
        );
        assert_eq!(
            u.shown(true),
            "rtmp://h/live/abcdef123456?token=s3cr3tvalue&a=1&tokenonly"
        );
        assert_eq!(
            p("rtmp://h/live/abc?t=12").to_string(),
            "rtmp://h/live/ab…?t=…"
        );
    }

    #[test]
    fn errors_show_the_redacted_url() {
        let cases = [
            "rtmp://127.0.0.1:99999/live/secretkey123?token=abcdef",
            "http://u:hunter2@h/live/secretkey123?token=abcdef",
            "rtmp://u:hunter2@/live/secretkey123?token=abcdef",
            "rtmp://[::1/live/secretkey123?token=abcdef",
        ];
        for c in cases {
            let e = RtmpUrl::parse(c, None, None).unwrap_err().to_string();
            for secret in ["secretkey123", "abcdef", "hunter2"] {
                assert!(!e.contains(secret), "{e}");
            }
            assert!(e.contains("se…") && e.contains("token=ab…"), "{e}");
        }
        let e = RtmpUrl::parse("rtmp://h:99999/live/k", None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "URL 'rtmp://h:99999/live/…': bad port '99999' (1-65535)"
        );
    }

    #[test]
    fn scrubs_server_text() {
        let u = RtmpUrl::parse(
            "rtmp://u:pw1234@h/live/secretkey123?token=abcdef&bare",
            Some("live?tok=zz9"),
            None,
        )
        .unwrap();
        let said = "stream secretkey123?token=abcdef&bare is not allowed (abcdef, pw1234, zz9)";
        assert_eq!(
            u.scrub(said, false),
            "stream se… is not allowed (ab…, pw…, zz…)"
        );
        assert_eq!(u.scrub(said, true), said);
        assert_eq!(
            u.scrub("NetStream.Publish.Start", false),
            "NetStream.Publish.Start"
        );
    }
}
