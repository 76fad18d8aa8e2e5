//! Object keys are data, not paths: S3's key length limit, keys shown to
//! humans, keys form-encoded as S3 writes them, and the keys a store kept
//! as files can hold.
//!
//! S3 accepts any UTF-8 key of up to 1,024 bytes, including `a/../b.jpg`
//! and control characters. Anything that prints a key on a line for a
//! human (terminal output, text logs, error messages) goes through
//! [`escape_key`], so a key cannot forge a line or move the cursor.
//! Stores that map keys to files ([`crate::FsStore`], `mediaflow dev`'s
//! local S3) refuse the keys [`path_key_problem`] names, because a file
//! path would give them another meaning.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The longest key S3 accepts, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Characters escaped when a key is printed: control characters (C0, DEL,
/// C1, which includes NEL), the Unicode line and paragraph separators, and
/// the invisible bidirectional and zero-width formatting characters that
/// can make a printed key read as another.
fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `key` for a human-readable line: `\` becomes `\\`, `\n` `\r` `\t` are
/// written as such and other control or invisible formatting characters as
/// `\u{1b}`. Ordinary keys (quotes, spaces, any script) come back unchanged
/// and unallocated; escaped keys are unambiguous (the escape is reversible).
pub fn escape_key(key: &str) -> Cow<'_, str> {
    if !key.chars().any(needs_escape) {
        return Cow::Borrowed(key);
    }
    let mut out = String::with_capacity(key.len() + 8);
    for c in key.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s3://bucket/key` for humans, the key escaped with [`escape_key`].
pub fn object_url(bucket: &str, key: &str) -> String {
    format!("s3://{}/{}", escape_key(bucket), escape_key(key))
}

/// `key` form-encoded as S3 writes keys in event notifications and in
/// listings asked for with `encoding-type=url`: ASCII letters and digits,
/// `-`, `_`, `.`, `~` and `/` stay, a space becomes `+`, and every other
/// byte of the UTF-8 key becomes `%XX` (so `+` is `%2B`, `%` is `%25`).
/// Form decoding (`+` to a space, then `%XX`; Python's `unquote_plus`, as
/// botocore decodes listings) gives the key back.
pub fn form_encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + key.len() / 2);
    for &b in key.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Reverses [`form_encode_key`] (and S3's own form encoding of keys in
/// notifications, listings with `encoding-type=url` and Inventory
/// reports): `+` becomes a space first, then `%XX` sequences are decoded
/// (so `%2B` is a literal `+`). `Err` names the text when it does not
/// decode to UTF-8.
pub fn form_decode_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("key {raw:?} does not decode to UTF-8"))
}

/// Why a store that keeps objects as files cannot hold `key` (which S3
/// itself would accept), or `None`: an empty key, a control character, a
/// `.` or `..` segment, or an empty segment (a leading `/` or `//`). A
/// single trailing `/` (a folder marker) is not an empty segment.
pub fn path_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("is empty");
    }
    if key.chars().any(char::is_control) {
        return Some("has a control character");
    }
    let body = key.strip_suffix('/').unwrap_or(key);
    for segment in body.split('/') {
        match segment {
            "." | ".." => return Some("has a '.' or '..' segment"),
            "" => return Some("has an empty segment (a leading '/' or '//')"),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_keys_print_as_they_are() {
        for key in [
            "photo.jpg",
            "ünï/фото (1).jpg",
            "it's \"quoted\".png",
            "a+b c/%41.jpg",
        ] {
            assert!(
                matches!(escape_key(key), Cow::Borrowed(k) if k == key),
                "{key}"
            );
        }
    }

    #[test]
    fn hostile_keys_print_on_one_line() {
        let key = "a\nINFO forged\r\u{1b}[31mred\u{7f}\u{85}\u{2028}\u{202e}gpj.exe\\n\t.jpg";
        let shown = escape_key(key);
        assert_eq!(
            shown,
            "a\\nINFO forged\\r\\u{1b}[31mred\\u{7f}\\u{85}\\u{2028}\\u{202e}gpj.exe\\\\n\\t.jpg"
        );
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        // Distinct keys stay distinct when shown: a newline and a backslash-n.
        assert_ne!(escape_key("a\nb"), escape_key("a\\nb"));
        assert_eq!(object_url("uploads", "x\ny"), "s3://uploads/x\\ny");
    }

    /// Form decoding as Python's `unquote_plus` does it (what botocore
    /// applies to listings), for keys that are valid UTF-8.
    fn form_decode(s: &str) -> String {
        let s = s.replace('+', " ");
        let (bytes, mut out, mut i) = (s.as_bytes(), Vec::new(), 0);
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn form_encoded_keys_decode_back() {
        for (key, encoded) in [
            ("plain.png", "plain.png"),
            ("x+y.png", "x%2By.png"),
            ("100%.png", "100%25.png"),
            ("a b.png", "a+b.png"),
            ("what?.png", "what%3F.png"),
            ("hash#1.png", "hash%231.png"),
            ("my photo (1).jpg", "my+photo+%281%29.jpg"),
            ("a/b-c_d~e.f", "a/b-c_d~e.f"),
            ("ünï/фото.png", "%C3%BCn%C3%AF/%D1%84%D0%BE%D1%82%D0%BE.png"),
            ("&<>\"'=;:,*@$!", "%26%3C%3E%22%27%3D%3B%3A%2C%2A%40%24%21"),
        ] {
            assert_eq!(form_encode_key(key), encoded, "{key}");
            assert_eq!(form_decode(encoded), key, "{encoded}");
        }
        // Every ASCII character (but the control ones S3 keys rarely hold)
        // and a few scripts survive the round trip.
        let all: String = (' '..='~').chain("ßé中🙂".chars()).collect();
        assert_eq!(form_decode(&form_encode_key(&all)), all);
    }

    #[test]
    fn path_keys() {
        for key in [
            "a.jpg",
            "a/b/c.jpg",
            "folder/",
            ".hidden",
            "a/..b/c..",
            "x/.../y",
        ] {
            assert_eq!(path_key_problem(key), None, "{key}");
        }
        for key in [
            "",
            "../a.jpg",
            "a/../b.jpg",
            "a/./b.jpg",
            "./a",
            "a/..",
            "..",
            "/a.jpg",
            "a//b.jpg",
            "a/\u{0}b",
            "a\nb",
            "a\u{7f}",
            "//",
        ] {
            assert!(path_key_problem(key).is_some(), "{key:?}");
        }
    }
}
