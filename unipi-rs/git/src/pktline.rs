//! pkt-line framing (gitprotocol-common): a 4-digit hex length that includes itself, then the
//! payload. `0000` is a flush, `0001` a delimiter and `0002` a response end (protocol v2).

use alloc::vec::Vec;

use crate::error::Error;
use crate::hex;
use crate::limits::Limits;

/// Largest payload of a pkt-line (65520 minus the 4-byte header).
pub const MAX_PAYLOAD: usize = Limits::PKT_LINE_MAX - 4;

/// One decoded pkt-line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pkt<'a> {
    /// `0000`: end of a message or section list.
    Flush,
    /// `0001`: separates sections (v2).
    Delim,
    /// `0002`: end of a response (v2, stateless connections).
    ResponseEnd,
    /// A line with its payload (possibly empty for `0004`); the trailing `\n` is kept.
    Data(&'a [u8]),
}

/// Decodes one pkt-line at the start of `buf`. Returns `Ok(None)` when `buf` does not yet hold
/// a complete line, otherwise the line and the number of bytes it occupies. Lengths 3 and
/// above `max_len` (itself capped at 65520) are errors.
pub fn decode(buf: &[u8], max_len: usize) -> Result<Option<(Pkt<'_>, usize)>, Error> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let mut len = 0usize;
    for &c in head {
        let v = hex::value(c).ok_or(Error::PktLine("length is not hexadecimal"))?;
        len = (len << 4) | usize::from(v);
    }
    let pkt = match len {
        0 => return Ok(Some((Pkt::Flush, 4))),
        1 => return Ok(Some((Pkt::Delim, 4))),
        2 => return Ok(Some((Pkt::ResponseEnd, 4))),
        3 => return Err(Error::PktLine("invalid length 0003")),
        n if n > max_len.min(Limits::PKT_LINE_MAX) => {
            return Err(Error::PktLineTooLong {
                len: n,
                limit: max_len.min(Limits::PKT_LINE_MAX),
            });
        }
        n => match buf.get(4..n) {
            Some(payload) => Pkt::Data(payload),
            None => return Ok(None),
        },
    };
    Ok(Some((pkt, len)))
}

/// Appends a data pkt-line with `payload`. Fails if the payload is longer than [`MAX_PAYLOAD`].
pub fn encode(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), Error> {
    if payload.len() > MAX_PAYLOAD {
        return Err(Error::Usage("pkt-line payload too long"));
    }
    let len = payload.len() + 4;
    for shift in [12, 8, 4, 0] {
        out.push(hex::digit((len >> shift) as u8));
    }
    out.extend_from_slice(payload);
    Ok(())
}

/// Appends a data pkt-line made of `parts` concatenated (convenience for `key value\n`).
pub fn encode_parts(out: &mut Vec<u8>, parts: &[&[u8]]) -> Result<(), Error> {
    let mut line = Vec::new();
    for p in parts {
        line.extend_from_slice(p);
    }
    encode(out, &line)
}

/// Appends a flush packet `0000`.
pub fn flush(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0000");
}

/// Appends a delimiter packet `0001`.
pub fn delim(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0001");
}

/// Strips one trailing `\n` from a payload.
pub fn trim_lf(payload: &[u8]) -> &[u8] {
    payload.strip_suffix(b"\n").unwrap_or(payload)
}

/// If `payload` is an `ERR <message>` line, returns the message.
pub fn err_message(payload: &[u8]) -> Option<&[u8]> {
    payload.strip_prefix(b"ERR ").map(trim_lf)
}

/// Buffers a byte stream and yields complete pkt-lines.
///
/// Holds at most one incomplete line plus the unconsumed rest of the last input; consumed
/// bytes are dropped at the next [`PktReader::push`].
#[derive(Debug, Default)]
pub struct PktReader {
    buf: Vec<u8>,
    pos: usize,
    max_len: usize,
}

impl PktReader {
    /// A reader accepting lines of up to `max_len` bytes (header included; capped at 65520).
    pub fn new(max_len: usize) -> Self {
        PktReader {
            buf: Vec::new(),
            pos: 0,
            max_len: max_len.min(Limits::PKT_LINE_MAX),
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Returns the next complete pkt-line, `Ok(None)` if more bytes are needed.
    pub fn next_pkt(&mut self) -> Result<Option<Pkt<'_>>, Error> {
        match decode(&self.buf[self.pos..], self.max_len)? {
            Some((pkt, used)) => {
                self.pos += used;
                Ok(Some(pkt))
            }
            None => Ok(None),
        }
    }

    /// True when no unconsumed bytes are buffered.
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Drops everything buffered (start of a new response).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn special_packets() {
        assert_eq!(decode(b"0000", 65520).unwrap(), Some((Pkt::Flush, 4)));
        assert_eq!(decode(b"0001", 65520).unwrap(), Some((Pkt::Delim, 4)));
        assert_eq!(
            decode(b"0002rest", 65520).unwrap(),
            Some((Pkt::ResponseEnd, 4))
        );
        assert!(matches!(decode(b"0003", 65520), Err(Error::PktLine(_))));
        assert_eq!(decode(b"0004", 65520).unwrap(), Some((Pkt::Data(b""), 4)));
    }

    #[test]
    fn data_and_partial() {
        assert_eq!(
            decode(b"000ahello\n", 100).unwrap(),
            Some((Pkt::Data(b"hello\n"), 10))
        );
        assert_eq!(decode(b"000aHELLO\nxx", 100).unwrap().unwrap().1, 10);
        assert_eq!(decode(b"000ahel", 100).unwrap(), None);
        assert_eq!(decode(b"00", 100).unwrap(), None);
        assert_eq!(decode(b"", 100).unwrap(), None);
        assert!(matches!(decode(b"00g0", 100), Err(Error::PktLine(_))));
        assert!(matches!(decode(b"-001", 100), Err(Error::PktLine(_))));
        assert_eq!(
            decode(b"000A0123456", 100).unwrap().unwrap().0,
            Pkt::Data(b"012345")
        );
    }

    #[test]
    fn max_length() {
        let mut line = vec![b'x'; 65520];
        line[..4].copy_from_slice(b"fff0");
        assert_eq!(decode(&line, 65520).unwrap().unwrap().1, 65520);
        line[..4].copy_from_slice(b"fff1");
        assert!(matches!(
            decode(&line, 65520),
            Err(Error::PktLineTooLong {
                len: 65521,
                limit: 65520
            })
        ));
        line[..4].copy_from_slice(b"ffff");
        assert!(decode(&line, 100_000).is_err());
        assert!(matches!(
            decode(b"0100", 200),
            Err(Error::PktLineTooLong {
                len: 256,
                limit: 200
            })
        ));
    }

    #[test]
    fn encoding() {
        let mut out = Vec::new();
        encode(&mut out, b"command=ls-refs\n").unwrap();
        delim(&mut out);
        flush(&mut out);
        encode(&mut out, b"").unwrap();
        assert_eq!(out, b"0014command=ls-refs\n000100000004");
        let big = vec![0u8; MAX_PAYLOAD];
        let mut out = Vec::new();
        encode(&mut out, &big).unwrap();
        assert_eq!(&out[..4], b"fff0");
        assert!(encode(&mut out, &[0u8; MAX_PAYLOAD + 1]).is_err());
    }

    #[test]
    fn err_lines() {
        assert_eq!(
            err_message(b"ERR no such repo\n"),
            Some(&b"no such repo"[..])
        );
        assert_eq!(err_message(b"ERRno"), None);
    }

    #[test]
    fn reader_byte_by_byte() {
        let stream = b"0008one\n000000010009two\n\n0002";
        let mut r = PktReader::new(65520);
        let mut got = vec![];
        for b in stream.iter() {
            r.push(core::slice::from_ref(b));
            while let Some(p) = r.next_pkt().unwrap() {
                got.push(match p {
                    Pkt::Data(d) => d.to_vec(),
                    Pkt::Flush => b"<flush>".to_vec(),
                    Pkt::Delim => b"<delim>".to_vec(),
                    Pkt::ResponseEnd => b"<end>".to_vec(),
                });
            }
        }
        assert_eq!(
            got,
            vec![
                b"one\n".to_vec(),
                b"<flush>".to_vec(),
                b"<delim>".to_vec(),
                b"two\n\n".to_vec(),
                b"<end>".to_vec()
            ]
        );
        assert!(r.is_empty());
    }
}
