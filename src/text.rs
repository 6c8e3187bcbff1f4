//! Text that came from the network or a capture, made safe for a terminal
//! or a log line.
//!
//! A peer controls every string it sends (AMF strings, command names,
//! onStatus fields, fmsVer, bytes shown as text). Printed raw, an ESC
//! sequence recolours or retitles the terminal (OSC), a CR or LF forges
//! output lines and breaks the one-line error rule, and invalid UTF-8 turns
//! into replacement characters that hide what was sent. [`sanitize`] and
//! [`sanitize_bytes`] are the one place where such text is escaped:
//! control characters (C0, DEL, C1) and other invisible format characters
//! as Rust escapes (`\u{1b}`, `\r`, `\n`, `\t`, `\\` is left alone), and each
//! invalid UTF-8 byte as `\xff`. Printable text, including non-ASCII letters,
//! is kept as it is. JSON output does not use this: the JSON encoder escapes
//! the decoded value itself.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal raw: C0 and C1 controls, DEL, and
/// the invisible characters that reorder or hide text (bidi overrides,
/// zero-width marks, line and paragraph separators).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// `s` with every control or invisible formatting character escaped
/// (`\u{1b}`, `\r`, `\n`); borrowed when nothing needed escaping.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Bytes shown as text: valid UTF-8 as [`sanitize`] shows it, each byte
/// that is not part of valid UTF-8 as `\xNN`.
pub fn sanitize_bytes(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => sanitize(s),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            for chunk in b.utf8_chunks() {
                out.push_str(&sanitize(chunk.valid()));
                for x in chunk.invalid() {
                    let _ = write!(out, "\\x{x:02x}");
                }
            }
            Cow::Owned(out)
        }
    }
}

/// Bytes as text, with each byte that is not part of valid UTF-8 written as
/// `\xNN` (control characters are left for [`sanitize`]).
pub fn escape_invalid_utf8(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            for chunk in b.utf8_chunks() {
                out.push_str(chunk.valid());
                for x in chunk.invalid() {
                    let _ = write!(out, "\\x{x:02x}");
                }
            }
            Cow::Owned(out)
        }
    }
}

/// A one-line message: [`sanitize`]d, so a line break in any part of it
/// (a peer's text, an OS error) cannot split it.
pub fn one_line(s: &str) -> Cow<'_, str> {
    sanitize(s)
}

/// Whether a byte is part of a name: a secret inside a longer name is not
/// that secret.
pub fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b >= 0x80
}

/// Where `needle` stands as a word of its own in `hay` (not overlapping).
pub fn word_occurrences(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut at = Vec::new();
    if needle.is_empty() || hay.len() < needle.len() {
        return at;
    }
    let (first, last) = (needle[0], needle[needle.len() - 1]);
    let mut from = 0;
    for i in memchr::memmem::find_iter(hay, needle) {
        if i < from {
            continue;
        }
        let end = i + needle.len();
        let before = i == 0 || !is_word_byte(hay[i - 1]) || !is_word_byte(first);
        let after = end == hay.len() || !is_word_byte(hay[end]) || !is_word_byte(last);
        if before && after {
            at.push(i);
            from = end;
        }
    }
    at
}

/// `s` with the `len` bytes at each of `at` (ascending, not overlapping:
/// [`word_occurrences`]) replaced by `with`.
pub fn replace_at(s: &str, at: &[usize], len: usize, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut from = 0;
    for &i in at {
        out.push_str(&s[from..i]);
        out.push_str(with);
        from = i + len;
    }
    out.push_str(&s[from..]);
    out
}

/// `s` with `secret` replaced by `with` wherever it occurs, even inside a
/// longer word (a server's echo `KEY_backup` must not show it); a secret
/// of one or two characters only where it stands as a word of its own
/// ([`word_occurrences`]): a stream called `z` must not take the z out of
/// `Unauthorized`, and such a key hides nothing inside a word anyway.
/// Borrowed when nothing was replaced.
pub fn hide_secret<'t>(s: &'t str, secret: &str, with: &str) -> Cow<'t, str> {
    if secret.is_empty() {
        return Cow::Borrowed(s);
    }
    if secret.chars().count() >= 3 {
        return if s.contains(secret) {
            Cow::Owned(s.replace(secret, with))
        } else {
            Cow::Borrowed(s)
        };
    }
    let at = word_occurrences(s.as_bytes(), secret.as_bytes());
    if at.is_empty() {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(replace_at(s, &at, secret.len(), with))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_inside_words_unless_too_short_to_matter() {
        assert_eq!(
            hide_secret("kq7_backup and kq7", "kq7", "kq…"),
            "kq…_backup and kq…"
        );
        assert_eq!(
            hide_secret("NetStream.Publish.Unauthorized for z", "z", "…"),
            "NetStream.Publish.Unauthorized for …"
        );
        assert!(matches!(
            hide_secret("nothing", "kq7", "kq…"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(hide_secret("nothing", "", "…"), Cow::Borrowed(_)));
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(sanitize("FMS/3,0,1,123"), Cow::Borrowed(_)));
        assert!(matches!(sanitize("café ☕"), Cow::Borrowed(_)));
        assert!(matches!(sanitize_bytes(b"abc"), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(sanitize("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(sanitize("x\r\ny\tz"), "x\\r\\ny\\tz");
        assert_eq!(sanitize("\u{1b}]0;title\u{7}"), "\\u{1b}]0;title\\u{7}");
        assert_eq!(sanitize("\u{9b}31m\u{7f}"), "\\u{9b}31m\\u{7f}");
        assert_eq!(sanitize("a\u{202e}b"), "a\\u{202e}b");
    }

    #[test]
    fn invalid_utf8_is_shown_as_bytes() {
        assert_eq!(sanitize_bytes(b"ab\xffc"), "ab\\xffc");
        assert_eq!(sanitize_bytes(b"\x1b\xc3"), "\\u{1b}\\xc3");
        assert_eq!(sanitize_bytes("é".as_bytes()), "é");
    }

    #[test]
    fn nothing_unsafe_survives() {
        let all: Vec<u8> = (0..=255u8).collect();
        let s = sanitize_bytes(&all);
        assert!(!s.chars().any(is_unsafe), "{s}");
        let s: String = (0..0x3000u32).filter_map(char::from_u32).collect();
        assert!(!sanitize(&s).chars().any(is_unsafe));
    }
}
