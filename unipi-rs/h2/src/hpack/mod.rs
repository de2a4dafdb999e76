//! HPACK (RFC 7541): the decoder for request header blocks and a stateless
//! encoder for response header blocks.
//!
//! Written here because no maintained `no_std` HPACK crate bounds what a
//! hostile encoder can make it do (table-size updates beyond the advertised
//! limit, decoded size, string lengths); see `unipi-rs/h2/README.md`.
//!
//! The [`Decoder`] keeps the dynamic table, accepts size updates only at the
//! start of a block and only up to the size this side advertised, and stops
//! with [`HpackError::DecodedTooLarge`] once the decoded header list (names,
//! values and 32 bytes per field, as SETTINGS_MAX_HEADER_LIST_SIZE counts
//! it) exceeds the caller's bound, so work per block is bounded by the block
//! length plus that bound. The encoder never indexes (no dynamic table on
//! our side, so the peer's table size does not matter) and Huffman-codes a
//! string when that is shorter.

mod decoder;
mod encoder;
pub mod huffman;
mod table;

use core::fmt;

pub use decoder::Decoder;
pub use encoder::{encode_integer, encode_literal, encode_status, encode_string};

/// Default dynamic table size of the protocol (RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Why a header block could not be decoded. Any of these ends the
/// connection: the peer's and our dynamic tables may now differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HpackError {
    /// The block ends inside a representation.
    Truncated,
    /// An integer does not fit in 32 bits or uses more bytes than needed
    /// for that.
    IntegerOverflow,
    /// An index that names no entry of the static or dynamic table.
    InvalidIndex {
        /// The index sent.
        index: usize,
    },
    /// A Huffman-coded string contains the EOS symbol.
    HuffmanEos,
    /// A Huffman-coded string ends with more than 7 bits of padding or with
    /// padding that is not all 1 bits.
    HuffmanPadding,
    /// A string is longer than the decoded-size bound allows.
    StringTooLong {
        /// The bound in bytes.
        limit: usize,
    },
    /// A dynamic table size update beyond SETTINGS_HEADER_TABLE_SIZE.
    SizeUpdateTooLarge {
        /// The size asked for.
        requested: usize,
        /// The largest size allowed.
        max: usize,
    },
    /// A dynamic table size update after the first field of a block.
    SizeUpdateNotAtStart,
    /// The table size was lowered by SETTINGS, but the block does not start
    /// with the size update RFC 7541 §4.2 requires.
    SizeUpdateMissing,
    /// The decoded header list exceeds the bound (an HPACK bomb: small
    /// references to large table entries).
    DecodedTooLarge {
        /// The bound in bytes.
        limit: usize,
    },
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HpackError::Truncated => f.write_str("HPACK: header block ends inside a field; the client's encoder is broken"),
            HpackError::IntegerOverflow => f.write_str("HPACK: integer larger than 2^32; the client's encoder is broken or hostile"),
            HpackError::InvalidIndex { index } => write!(f, "HPACK: index {index} names no table entry; the client's encoder is out of step"),
            HpackError::HuffmanEos => f.write_str("HPACK: Huffman string contains EOS; the client's encoder is broken"),
            HpackError::HuffmanPadding => f.write_str("HPACK: Huffman string has invalid padding; the client's encoder is broken"),
            HpackError::StringTooLong { limit } => write!(f, "HPACK: string longer than {limit} bytes; raise Limits::max_header_list_size if legitimate"),
            HpackError::SizeUpdateTooLarge { requested, max } => write!(f, "HPACK: table size update to {requested} exceeds the advertised {max}; the client ignores SETTINGS_HEADER_TABLE_SIZE"),
            HpackError::SizeUpdateNotAtStart => f.write_str("HPACK: table size update after a field; the client's encoder is broken"),
            HpackError::SizeUpdateMissing => f.write_str("HPACK: the block lacks the table size update required after SETTINGS_HEADER_TABLE_SIZE was lowered"),
            HpackError::DecodedTooLarge { limit } => write!(f, "HPACK: decoded header list exceeds {limit} bytes (HPACK bomb); connection closed"),
        }
    }
}

#[cfg(test)]
mod tests;
