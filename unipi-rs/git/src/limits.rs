//! Explicit resource limits applied to everything a remote sends.

/// Resource limits for one fetch. Every byte and object a remote sends is counted against
/// these; exceeding one ends the fetch with a specific [`Error`](crate::Error).
///
/// The defaults suit a static website held in memory (hundreds of MiB at most); raise them
/// deliberately for bigger sites.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of the packfile stream in bytes (default 256 MiB).
    pub max_pack_bytes: u64,
    /// Maximum number of bytes received from the remote over the whole fetch, including HTTP
    /// framing, ref advertisements and progress messages (default 320 MiB).
    pub max_received_bytes: u64,
    /// Maximum number of objects the pack may announce (default 200 000).
    pub max_objects: u32,
    /// Maximum inflated size of a single object, delta data or delta result in bytes
    /// (default 64 MiB).
    pub max_object_size: u64,
    /// Maximum total of inflated bytes (objects, delta data and delta results) produced while
    /// reading the pack; the defence against zip and delta bombs (default 1 GiB).
    pub max_inflated_bytes: u64,
    /// Maximum delta chain length (default 50, git's `pack.depth` default).
    pub max_delta_depth: u32,
    /// Maximum length of a file path in the snapshot in bytes (default 4096).
    pub max_path_len: usize,
    /// Maximum number of path components (directory nesting) (default 64).
    pub max_path_depth: usize,
    /// Maximum number of files in the snapshot (default 100 000).
    pub max_files: usize,
    /// Maximum total length in bytes of all paths built while walking the tree, directories
    /// included (default 16 MiB). A tree that names the same subtree many times under long
    /// names would otherwise turn a pack of a few KiB into `max_files × max_path_len` bytes
    /// of paths (found while fuzzing: 8 KiB of trees, 125 MB of paths).
    pub max_path_bytes: usize,
    /// Maximum pkt-line length including its 4-byte header; at most 65520, the protocol's
    /// own maximum (default 65520).
    pub max_pkt_line: usize,
    /// Maximum size of an HTTP response head (status line and headers) in bytes (default 16 KiB).
    pub max_http_header_bytes: usize,
    /// Maximum number of refs accepted in a ref advertisement or ls-refs answer (default 10 000).
    pub max_refs: usize,
    /// Maximum number of HTTP redirects followed (default 5).
    pub max_redirects: u32,
}

impl Limits {
    /// The pkt-line protocol's own maximum line length (header included).
    pub const PKT_LINE_MAX: usize = 65520;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pack_bytes: 256 << 20,
            max_received_bytes: 320 << 20,
            max_objects: 200_000,
            max_object_size: 64 << 20,
            max_inflated_bytes: 1 << 30,
            max_delta_depth: 50,
            max_path_len: 4096,
            max_path_depth: 64,
            max_files: 100_000,
            max_path_bytes: 16 << 20,
            max_pkt_line: Self::PKT_LINE_MAX,
            max_http_header_bytes: 16 << 10,
            max_refs: 10_000,
            max_redirects: 5,
        }
    }
}
