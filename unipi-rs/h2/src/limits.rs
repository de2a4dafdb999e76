//! Every resource limit of a connection, with its default.

/// Limits of one connection. Every input is untrusted; each limit names
/// what happens when a client exceeds it. Times are in milliseconds of the
/// caller's monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Streams open at once (advertised as SETTINGS_MAX_CONCURRENT_STREAMS);
    /// one more is refused with RST_STREAM REFUSED_STREAM (counted as a
    /// reset). Default 100.
    pub max_concurrent_streams: u32,
    /// Decoded size of a request's header list (names + values + 32 per
    /// field), advertised as SETTINGS_MAX_HEADER_LIST_SIZE. Larger gets
    /// `431` with END_STREAM from this crate; a block decoding to more than
    /// [`BOMB_FACTOR`](crate::BOMB_FACTOR) times this ends the connection
    /// (ENHANCE_YOUR_CALM). Default 16 KiB.
    pub max_header_list_size: u32,
    /// HPACK dynamic table size of the decoder (SETTINGS_HEADER_TABLE_SIZE);
    /// a size update above it is COMPRESSION_ERROR. Default 4096.
    pub header_table_size: u32,
    /// Encoded bytes of one header block (HEADERS + CONTINUATION); longer
    /// ends the connection (ENHANCE_YOUR_CALM). Default 32 KiB.
    pub max_header_block: usize,
    /// CONTINUATION frames in one header block; more ends the connection
    /// (ENHANCE_YOUR_CALM). Default 16.
    pub max_continuation_frames: u32,
    /// Largest frame payload accepted (SETTINGS_MAX_FRAME_SIZE,
    /// 16 384..=16 777 215); larger is FRAME_SIZE_ERROR. Default 16 384.
    pub max_frame_size: u32,
    /// Receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE,
    /// at most 2^31-1). Credit is returned as DATA is delivered. Default 65 535.
    pub stream_window: u32,
    /// Receive window of the connection (65 535..=2^31-1; above 65 535 it is
    /// opened with a WINDOW_UPDATE at once). Default 1 MiB.
    pub connection_window: u32,
    /// Received bytes buffered before [`Connection::receive`](crate::Connection::receive)
    /// pushes back; at least one maximum-size frame (9 + max_frame_size).
    /// Default 32 KiB.
    pub input_buffer: usize,
    /// Output bytes above which `send_data` accepts nothing and input is no
    /// longer parsed (so control replies cannot pile up). Default 64 KiB.
    pub output_buffer: usize,
    /// Length of the window the flood counters count in. Default 10 000 ms.
    pub flood_window_ms: u64,
    /// Streams reset per window: by the client before their response was
    /// complete, plus streams this side reset or refused (rapid reset,
    /// CVE-2023-44487). More ends the connection (ENHANCE_YOUR_CALM).
    /// Default 100.
    pub max_resets: u32,
    /// PING frames per window (ENHANCE_YOUR_CALM beyond). Default 50.
    pub max_pings: u32,
    /// SETTINGS frames per window (ENHANCE_YOUR_CALM beyond). Default 50.
    pub max_settings: u32,
    /// Frames per window that do no work: DATA without payload and without
    /// END_STREAM, CONTINUATION without payload, PRIORITY, unknown types,
    /// frames for streams already closed (ENHANCE_YOUR_CALM beyond).
    /// Default 500.
    pub max_idle_frames: u32,
    /// Time for the client to acknowledge our SETTINGS (SETTINGS_TIMEOUT).
    /// Default 10 000 ms.
    pub settings_timeout_ms: u64,
    /// With no stream open for this long, the connection sends GOAWAY
    /// NO_ERROR and closes. Frames other than requests do not count as
    /// activity. Default 30 000 ms.
    pub idle_timeout_ms: u64,
    /// A header block (HEADERS until END_HEADERS) must be complete within
    /// this (ENHANCE_YOUR_CALM). Default 10 000 ms.
    pub header_timeout_ms: u64,
    /// A response that waits this long for flow-control credit: its stream
    /// is reset (CANCEL) when the stream window is the obstacle, the
    /// connection ends (ENHANCE_YOUR_CALM) when the connection window is.
    /// Default 30 000 ms.
    pub stall_timeout_ms: u64,
    /// Output not consumed at all for this long drops the connection
    /// without GOAWAY. Default 60 000 ms.
    pub send_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrent_streams: 100,
            max_header_list_size: 16 * 1024,
            header_table_size: 4096,
            max_header_block: 32 * 1024,
            max_continuation_frames: 16,
            max_frame_size: 16 * 1024,
            stream_window: 65_535,
            connection_window: 1 << 20,
            input_buffer: 32 * 1024,
            output_buffer: 64 * 1024,
            flood_window_ms: 10_000,
            max_resets: 100,
            max_pings: 50,
            max_settings: 50,
            max_idle_frames: 500,
            settings_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            header_timeout_ms: 10_000,
            stall_timeout_ms: 30_000,
            send_timeout_ms: 60_000,
        }
    }
}

/// Largest flow-control window (RFC 9113 §6.9.1).
pub(crate) const MAX_WINDOW: u32 = (1 << 31) - 1;

impl Limits {
    /// The limits with every value clamped into what the protocol allows
    /// (frame size 16 384..=16 777 215, windows ≤ 2^31-1, at least one
    /// stream, input buffer ≥ one frame, output buffer ≥ one frame).
    pub fn sanitized(mut self) -> Self {
        self.max_frame_size = self.max_frame_size.clamp(16_384, (1 << 24) - 1);
        self.stream_window = self.stream_window.min(MAX_WINDOW);
        self.connection_window = self.connection_window.clamp(65_535, MAX_WINDOW);
        self.max_concurrent_streams = self.max_concurrent_streams.max(1);
        self.max_header_list_size = self.max_header_list_size.max(256);
        self.max_header_block = self.max_header_block.max(256);
        let frame = 9 + self.max_frame_size as usize;
        self.input_buffer = self.input_buffer.max(frame);
        self.output_buffer = self.output_buffer.max(frame);
        self.flood_window_ms = self.flood_window_ms.max(1);
        self
    }
}
