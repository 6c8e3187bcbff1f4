//! RTMP URLs: `rtmp[s]://host[:port]/app[/instance]/stream[?query]`.
//!
//! Split as FFmpeg's `rtmpproto.c` does: the last path component is the
//! stream (playpath), everything before it the app (so `app/instance` stays
//! together); one component is the app alone. `--app`/`--stream` override the
//! split. Default ports: 1935 for `rtmp`, 443 for `rtmps`. IPv6 literals go in
//! brackets.

use thiserror::Error;

/// A parsed RTMP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `rtmps`: TLS.
    pub tls: bool,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port (default 1935, or 443 for rtmps).
    pub port: u16,
    /// Application (`app` or `app/instance`).
    pub app: String,
    /// Stream name (playpath) without the query.
    pub stream: String,
    /// Query string after `?`, without the `?`.
    pub query: Option<String>,
}

/// Why a URL was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UrlError {
    /// Not `rtmp://` or `rtmps://`.
    #[error("'{0}': scheme must be rtmp:// or rtmps://")]
    Scheme(String),
    /// No host.
    #[error("'{0}': no host")]
    NoHost(String),
    /// Port not a number 1-65535.
    #[error("'{url}': bad port '{port}'")]
    Port {
        /// The URL.
        url: String,
        /// The port text.
        port: String,
    },
    /// An IPv6 literal without its closing bracket.
    #[error("'{0}': IPv6 address without closing ']'")]
    Bracket(String),
    /// Neither the URL nor `--app` names an application.
    #[error("'{0}': no application (rtmp://host/APP/stream, or --app)")]
    NoApp(String),
}

impl RtmpUrl {
    /// Parses `s`; `app` and `stream` (from `--app`/`--stream`) override the
    /// split of the path.
    pub fn parse(s: &str, app: Option<&str>, stream: Option<&str>) -> Result<RtmpUrl, UrlError> {
        let (tls, rest) = if let Some(r) = strip_prefix_ci(s, "rtmps://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(s, "rtmp://") {
            (false, r)
        } else {
            return Err(UrlError::Scheme(s.to_owned()));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port_text) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| UrlError::Bracket(s.to_owned()))?;
            let after = &v6[end + 1..];
            (&v6[..end], after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::NoHost(s.to_owned()));
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
                    url: s.to_owned(),
                    port: p.to_owned(),
                })?,
        };
        let path = path.trim_start_matches('/');
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (path, None),
        };
        let (url_app, url_stream) = match path.rsplit_once('/') {
            Some((a, st)) => (a.to_owned(), st.to_owned()),
            None => (path.to_owned(), String::new()),
        };
        // With --app, the stream is what follows that app in the path (so an
        // app with an instance can be named), else the last component.
        let (app, stream) = match (app, stream) {
            (Some(a), Some(st)) => (a.to_owned(), st.to_owned()),
            (Some(a), None) => {
                let st = path
                    .strip_prefix(a)
                    .and_then(|r| r.strip_prefix('/'))
                    .map_or(url_stream, str::to_owned);
                (a.to_owned(), st)
            }
            (None, Some(st)) => (path.to_owned(), st.to_owned()),
            (None, None) => (url_app, url_stream),
        };
        if app.is_empty() {
            return Err(UrlError::NoApp(s.to_owned()));
        }
        Ok(RtmpUrl {
            tls,
            host: host.to_owned(),
            port,
            app,
            stream,
            query,
        })
    }

    /// `tcUrl`: `rtmp[s]://host:port/app`.
    pub fn tc_url(&self) -> String {
        format!(
            "{}://{}:{}/{}",
            self.scheme(),
            self.host_for_url(),
            self.port,
            self.app
        )
    }

    /// The stream name as sent in publish/play: stream plus `?query`.
    pub fn stream_with_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.stream),
            None => self.stream.clone(),
        }
    }

    /// The URL for output: the stream key and query values shortened
    /// (`ab12…`) unless `reveal`.
    pub fn display(&self, reveal: bool) -> String {
        let mut s = format!("{}://{}", self.scheme(), self.host_for_url());
        if self.port != if self.tls { 443 } else { 1935 } {
            s.push_str(&format!(":{}", self.port));
        }
        s.push('/');
        s.push_str(&self.app);
        if !self.stream.is_empty() {
            s.push('/');
            s.push_str(&redact(&self.stream, reveal));
        }
        if let Some(q) = &self.query {
            s.push('?');
            let parts: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => format!("{k}={}", redact(v, reveal)),
                    None => kv.to_owned(),
                })
                .collect();
            s.push_str(&parts.join("&"));
        }
        s
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

/// A secret shortened to its first four characters and `…` (unless `reveal`
/// or it is that short already).
pub fn redact(secret: &str, reveal: bool) -> String {
    if reveal || secret.chars().count() <= 4 {
        secret.to_owned()
    } else {
        let head: String = secret.chars().take(4).collect();
        format!("{head}…")
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RtmpUrl {
        RtmpUrl::parse(s, None, None).unwrap()
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
    }

    #[test]
    fn overrides() {
        let u = RtmpUrl::parse("rtmp://h/a/b/c", Some("a"), None).unwrap();
        assert_eq!((u.app.as_str(), u.stream.as_str()), ("a", "b/c"));
        let u = RtmpUrl::parse("rtmp://h/a/b/c", None, Some("x")).unwrap();
        assert_eq!((u.app.as_str(), u.stream.as_str()), ("a/b/c", "x"));
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
        assert!(matches!(
            RtmpUrl::parse("rtmp://h", None, None),
            Err(UrlError::NoApp(_))
        ));
    }

    #[test]
    fn redacts_keys_and_query_values() {
        let u = p("rtmp://h/live/abcdef123456?token=s3cr3tvalue&a=1");
        assert_eq!(u.display(false), "rtmp://h/live/abcd…?token=s3cr…&a=1");
        assert_eq!(
            u.display(true),
            "rtmp://h/live/abcdef123456?token=s3cr3tvalue&a=1"
        );
    }
}
