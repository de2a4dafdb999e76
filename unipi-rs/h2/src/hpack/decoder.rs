//! The HPACK decoder (RFC 7541 §3, §6).

use alloc::vec::Vec;

use super::table::{DynamicTable, entry_size, lookup};
use super::{HpackError, huffman};

/// Decodes header blocks of one connection, keeping its dynamic table.
pub struct Decoder {
    table: DynamicTable,
    /// Largest table size the peer may ask for.
    max_allowed: usize,
    /// The next block must start with a size update (our limit went below
    /// the table's current maximum).
    update_required: bool,
    name: Vec<u8>,
    value: Vec<u8>,
}

/// Reads an integer with an `n`-bit prefix (§5.1) at `*pos`.
pub(crate) fn integer(buf: &[u8], pos: &mut usize, n: u8) -> Result<usize, HpackError> {
    let mask: u8 = if n >= 8 { 0xff } else { (1u8 << n) - 1 };
    let first = buf.get(*pos).ok_or(HpackError::Truncated)? & mask;
    *pos += 1;
    if first < mask {
        return Ok(usize::from(first));
    }
    let mut value = u64::from(mask);
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        value += u64::from(b & 0x7f) << shift;
        if value > u64::from(u32::MAX) {
            return Err(HpackError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return usize::try_from(value).map_err(|_| HpackError::IntegerOverflow);
        }
        shift += 7;
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
    }
}

/// Reads a string literal (§5.2) at `*pos` into `out` (cleared first).
fn string(buf: &[u8], pos: &mut usize, out: &mut Vec<u8>, max: usize) -> Result<(), HpackError> {
    out.clear();
    let huffman = buf.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = integer(buf, pos, 7)?;
    let end = pos.checked_add(len).ok_or(HpackError::Truncated)?;
    let data = buf.get(*pos..end).ok_or(HpackError::Truncated)?;
    *pos = end;
    if huffman {
        huffman::decode(data, out, max)
    } else if len > max {
        Err(HpackError::StringTooLong { limit: max })
    } else {
        out.extend_from_slice(data);
        Ok(())
    }
}

impl Decoder {
    /// A decoder whose table starts at (and may grow to) `max_table_size`
    /// bytes; use [`DEFAULT_TABLE_SIZE`](super::DEFAULT_TABLE_SIZE) for a
    /// connection whose SETTINGS are not acknowledged yet.
    pub fn new(max_table_size: usize) -> Self {
        Decoder {
            table: DynamicTable::new(max_table_size),
            max_allowed: max_table_size,
            update_required: false,
            name: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Sets the largest table size the peer may use (our
    /// SETTINGS_HEADER_TABLE_SIZE once in effect). When it is below the
    /// table's current maximum, the peer's next block must start with a
    /// size update.
    pub fn set_max_allowed(&mut self, max: usize) {
        self.max_allowed = max;
        if self.table.max() > max {
            self.update_required = true;
        }
    }

    /// Bytes held by the dynamic table (RFC 7541 §4.1 accounting).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// The dynamic table's current maximum size.
    pub fn table_max(&self) -> usize {
        self.table.max()
    }

    /// Entry `i` of the dynamic table (0 is the newest).
    pub fn dynamic_entry(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.table.get(i)
    }

    /// Decodes one complete header block, calling `field(name, value)` for
    /// each field in order. Returns the decoded size (names, values and 32
    /// bytes per field). Stops with [`HpackError::DecodedTooLarge`] once
    /// that size would exceed `max_decoded`.
    pub fn decode<F: FnMut(&[u8], &[u8])>(
        &mut self,
        block: &[u8],
        max_decoded: usize,
        mut field: F,
    ) -> Result<usize, HpackError> {
        let Decoder {
            table,
            max_allowed,
            update_required,
            name,
            value,
        } = self;
        let mut pos = 0;
        let mut decoded = 0usize;
        let mut fields_seen = false;
        let account = |n: &[u8], v: &[u8], decoded: &mut usize| {
            *decoded = decoded.saturating_add(entry_size(n, v));
            if *decoded > max_decoded {
                Err(HpackError::DecodedTooLarge { limit: max_decoded })
            } else {
                Ok(())
            }
        };
        while let Some(&b) = block.get(pos) {
            let room = max_decoded.saturating_sub(decoded);
            if b & 0xe0 == 0x20 {
                // §6.3 Dynamic Table Size Update.
                if fields_seen {
                    return Err(HpackError::SizeUpdateNotAtStart);
                }
                let size = integer(block, &mut pos, 5)?;
                if size > *max_allowed {
                    return Err(HpackError::SizeUpdateTooLarge {
                        requested: size,
                        max: *max_allowed,
                    });
                }
                table.set_max(size);
                *update_required = false;
                continue;
            }
            if *update_required {
                return Err(HpackError::SizeUpdateMissing);
            }
            fields_seen = true;
            if b & 0x80 != 0 {
                // §6.1 Indexed Header Field.
                let index = integer(block, &mut pos, 7)?;
                let (n, v) = lookup(table, index).ok_or(HpackError::InvalidIndex { index })?;
                account(n, v, &mut decoded)?;
                field(n, v);
                continue;
            }
            // §6.2 literals: with incremental indexing (01), without
            // indexing (0000), never indexed (0001).
            let (indexing, prefix) = if b & 0xc0 == 0x40 {
                (true, 6)
            } else {
                (false, 4)
            };
            let index = integer(block, &mut pos, prefix)?;
            if index == 0 {
                string(block, &mut pos, name, room)?;
                string(block, &mut pos, value, room.saturating_sub(name.len()))?;
                account(name, value, &mut decoded)?;
                field(name, value);
            } else {
                let (n, _) = lookup(table, index).ok_or(HpackError::InvalidIndex { index })?;
                string(block, &mut pos, value, room.saturating_sub(n.len()))?;
                account(n, value, &mut decoded)?;
                field(n, value);
                if indexing {
                    // The insertion may evict the entry `n` points into.
                    name.clear();
                    name.extend_from_slice(n);
                }
            }
            if indexing {
                table.insert(name, value);
            }
        }
        if *update_required {
            return Err(HpackError::SizeUpdateMissing);
        }
        Ok(decoded)
    }
}
