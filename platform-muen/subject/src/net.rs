//! Network devices: a muennet channel pair `N|in` (reader) / `N|out`
//! (writer) from sinfo, as Solo5's `muen-net.c` looks them up.

use muen_abi::channel::ChannelMemory;
use muen_abi::muennet::{NetReader, NetWriter};
use muen_abi::sinfo::{MemoryKind, Sinfo};

/// Why a network device could not be opened.
#[derive(Debug)]
pub enum NetError {
    /// No `N|in`/`N|out` pair in sinfo.
    Missing,
    /// The channel regions have the wrong kind, permissions or geometry.
    Unusable(&'static str),
}

/// Opens device `name`: initialises `name|out` as a muennet writer (epoch =
/// current scheduling start, as Solo5) and `name|in` as a reader.
pub fn open(sinfo: &Sinfo<'_>, name: &str) -> Result<(NetReader, NetWriter), NetError> {
    let mut buf = [0u8; 64];
    let in_name =
        concat(&mut buf, name, "|in").ok_or(NetError::Unusable("device name too long"))?;
    let rx = sinfo.memory(in_name).ok_or(NetError::Missing)?;
    let mut buf2 = [0u8; 64];
    let out_name =
        concat(&mut buf2, name, "|out").ok_or(NetError::Unusable("device name too long"))?;
    let tx = sinfo.memory(out_name).ok_or(NetError::Missing)?;
    if rx.kind != MemoryKind::SubjectChannel || tx.kind != MemoryKind::SubjectChannel {
        return Err(NetError::Unusable("net regions are not channels"));
    }
    if !tx.writable {
        return Err(NetError::Unusable("the |out channel is not writable"));
    }
    let rx_mem: ChannelMemory = crate::regions::channel(&rx).map_err(NetError::Unusable)?;
    let tx_mem: ChannelMemory = crate::regions::channel(&tx).map_err(NetError::Unusable)?;
    let epoch = crate::clock::sched_start().max(1);
    let writer = NetWriter::new(tx_mem, epoch)
        .map_err(|_| NetError::Unusable("the |out channel is too small"))?;
    Ok((NetReader::new(rx_mem), writer))
}

fn concat<'a>(buf: &'a mut [u8; 64], a: &str, b: &str) -> Option<&'a str> {
    let n = a.len() + b.len();
    if n > buf.len() {
        return None;
    }
    buf[..a.len()].copy_from_slice(a.as_bytes());
    buf[a.len()..n].copy_from_slice(b.as_bytes());
    core::str::from_utf8(&buf[..n]).ok()
}
