//! Side-band demultiplexing: the first payload byte of each pkt-line names a channel.

use crate::error::{Error, sanitize};

/// One side-band packet, split by channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Band<'a> {
    /// Channel 1: pack data.
    Data(&'a [u8]),
    /// Channel 2: progress text for humans.
    Progress(&'a [u8]),
    /// Channel 3: a fatal error message; the remote stops after it.
    Fatal(&'a [u8]),
}

/// Splits a pkt-line payload into its channel and data. An empty payload or an unknown channel
/// is a protocol error; an `ERR ` line (which some servers send instead) becomes
/// [`Error::Remote`].
pub fn demux(payload: &[u8]) -> Result<Band<'_>, Error> {
    if let Some(msg) = crate::pktline::err_message(payload) {
        return Err(Error::Remote(sanitize(msg)));
    }
    match payload.split_first() {
        Some((1, rest)) => Ok(Band::Data(rest)),
        Some((2, rest)) => Ok(Band::Progress(rest)),
        Some((3, rest)) => Ok(Band::Fatal(rest)),
        Some(_) => Err(Error::Protocol("invalid side-band channel".into())),
        None => Err(Error::Protocol("empty side-band packet".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels() {
        assert_eq!(demux(b"\x01PACK").unwrap(), Band::Data(b"PACK"));
        assert_eq!(demux(b"\x01").unwrap(), Band::Data(b""));
        assert_eq!(
            demux(b"\x02Counting\r").unwrap(),
            Band::Progress(b"Counting\r")
        );
        assert_eq!(demux(b"\x03boom\n").unwrap(), Band::Fatal(b"boom\n"));
        assert!(matches!(demux(b"\x04x"), Err(Error::Protocol(_))));
        assert!(matches!(demux(b""), Err(Error::Protocol(_))));
        assert_eq!(
            demux(b"ERR upload-pack: not our ref\n"),
            Err(Error::Remote("upload-pack: not our ref".into()))
        );
    }
}
