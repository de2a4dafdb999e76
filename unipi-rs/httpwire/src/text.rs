//! Text a peer sent, made safe to show.

use alloc::string::String;

/// Turns untrusted bytes (a reason phrase, a problem document's detail, a
/// server's error line) into printable text for a log line or an error:
/// invalid UTF-8 becomes `\u{fffd}`, control characters `?`, surrounding
/// whitespace is trimmed, and the result is cut at `max_chars` characters
/// (then `…` is appended).
pub fn printable(bytes: &[u8], max_chars: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (n, c) in text.trim().chars().enumerate() {
        if n >= max_chars {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn controls_invalid_utf8_and_length() {
        assert_eq!(printable(b"  ok\r\n", 10), "ok");
        assert_eq!(printable(b"a\x1b[2Jb\xff", 10), "a?[2Jb\u{fffd}");
        assert_eq!(printable("ééé".as_bytes(), 2), "éé…");
        assert_eq!(printable(b"", 3), "");
    }
}
