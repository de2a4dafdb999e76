//! The connection state machine. See the [crate documentation](crate) for
//! the driving protocol.
//!
//! Input is parsed one frame at a time from a bounded buffer, and only
//! while the output is below its bound: every frame can add a few control
//! frames (SETTINGS ACK, PING ACK, WINDOW_UPDATE, RST_STREAM), so a client
//! that floods without reading stalls its own input instead of growing our
//! output. DATA payloads are handed out as slices of the input buffer.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::error::{CloseReason, ConnectionError, ErrorCode, Flood, SendError};
use crate::frame::{self, FrameHeader, HEADER_LEN, PREFACE};
use crate::hpack::{self, Decoder, HpackError};
use crate::limits::{Limits, MAX_WINDOW};
use crate::request::{Collector, Decoded};
use crate::{BOMB_FACTOR, Event, MAX_RESPONSE_HEADER_BLOCK, StreamId};

/// Counters for diagnostics (status logs, tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests handed out as [`Event::Request`].
    pub requests: u64,
    /// RST_STREAM frames received.
    pub resets_received: u64,
    /// RST_STREAM frames sent (including NO_ERROR after complete responses).
    pub resets_sent: u64,
    /// Streams open now.
    pub open_streams: usize,
    /// Input bytes buffered now.
    pub input_bytes: usize,
    /// Output bytes waiting now.
    pub output_bytes: usize,
    /// Bytes in the HPACK dynamic table now.
    pub hpack_table_bytes: usize,
    /// Largest output backlog seen.
    pub peak_output_bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the 24-byte client preface.
    Preface,
    /// The next frame must be the client's SETTINGS.
    FirstSettings,
    Open,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SendState {
    /// `send_headers` not called yet.
    Headers,
    /// Headers sent; DATA may follow.
    Body,
}

#[derive(Debug)]
struct Stream {
    /// The client may still send (no END_STREAM yet).
    recv_open: bool,
    send: SendState,
    send_window: i64,
    recv_window: i64,
    /// Received bytes whose credit was not yet returned.
    recv_unacked: u32,
    content_length: Option<u64>,
    received: u64,
    /// In the `blocked` queue.
    queued: bool,
    /// Since when a window (not the output bound) keeps it from sending.
    stalled_since: Option<u64>,
}

/// A header block being received (HEADERS, then CONTINUATION frames).
#[derive(Debug)]
struct Block {
    stream: u32,
    end_stream: bool,
    continuations: u32,
    started: u64,
    self_dependent: bool,
}

/// How a stream that is no longer in `streams` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// Both sides sent END_STREAM.
    Normal,
    /// RST_STREAM was sent or received: frames in flight are ignored.
    Reset,
}

/// One step of input processing.
enum Step {
    NeedInput,
    Continue,
    /// A DATA payload at `input[start..end]`.
    Data {
        stream: u32,
        start: usize,
        end: usize,
        end_stream: bool,
    },
}

/// Fixed-window counters against floods.
#[derive(Debug, Default)]
struct Floods {
    start: u64,
    resets: u32,
    pings: u32,
    settings: u32,
    idle: u32,
}

/// One HTTP/2 server connection. See the [crate documentation](crate).
pub struct Connection {
    limits: Limits,
    now: u64,
    phase: Phase,
    input: Vec<u8>,
    in_pos: usize,
    out: Vec<u8>,
    out_pos: usize,
    /// When output last made progress (or became non-empty).
    out_progress: u64,
    decoder: Decoder,
    block: Option<Block>,
    block_buf: Vec<u8>,
    streams: BTreeMap<u32, Stream>,
    /// Recently ended streams, oldest first.
    ended: VecDeque<(u32, Ended)>,
    last_client_stream: u32,
    /// Streams refused in part by `send_data`, in the order they blocked.
    blocked: VecDeque<u32>,
    peer_initial_window: u32,
    peer_max_frame: u32,
    conn_send_window: i64,
    conn_recv_window: i64,
    conn_recv_unacked: u32,
    settings_sent_at: Option<u64>,
    settings_acked: bool,
    /// Last stream id of the GOAWAY we sent, if any.
    goaway_sent: Option<u32>,
    peer_goaway: Option<ErrorCode>,
    shutdown: bool,
    /// No stream open since.
    idle_since: u64,
    floods: Floods,
    events: VecDeque<Event<'static>>,
    closed: Option<CloseReason>,
    closed_reported: bool,
    /// Nothing more is sent; the transport can go.
    dead: bool,
    scratch: Vec<u8>,
    name_buf: Vec<u8>,
    stats: Stats,
}

/// Initial window of the protocol (RFC 9113 §6.9.2).
const DEFAULT_WINDOW: i64 = 65_535;
/// Longest GOAWAY debug text.
const DEBUG_MAX: usize = 120;

/// Collects at most [`DEBUG_MAX`] bytes of formatted text.
struct DebugText {
    buf: [u8; DEBUG_MAX],
    len: usize,
}

impl core::fmt::Write for DebugText {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len < DEBUG_MAX {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

fn is_connection_specific(name: &[u8]) -> bool {
    matches!(
        name,
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade"
    )
}

/// Strips the padding of a DATA or HEADERS payload: `(offset, end)`.
fn unpad(h: &FrameHeader, payload: &[u8]) -> Result<(usize, usize), ConnectionError> {
    if !h.has(frame::PADDED) {
        return Ok((0, payload.len()));
    }
    let pad = usize::from(*payload.first().ok_or(ConnectionError::Protocol {
        code: ErrorCode::FRAME_SIZE_ERROR,
        what: "padded frame without pad length",
    })?);
    if pad >= payload.len() {
        return Err(ConnectionError::protocol("padding as long as the frame"));
    }
    Ok((1, payload.len() - pad))
}

impl Connection {
    /// A new connection at time `now` (milliseconds): the server preface
    /// (SETTINGS, and a WINDOW_UPDATE when the connection window is larger
    /// than the default) is queued in the output at once.
    pub fn new(limits: Limits, now: u64) -> Self {
        let limits = limits.sanitized();
        let mut c = Connection {
            limits,
            now,
            phase: Phase::Preface,
            input: Vec::new(),
            in_pos: 0,
            out: Vec::new(),
            out_pos: 0,
            out_progress: now,
            decoder: Decoder::new(hpack::DEFAULT_TABLE_SIZE),
            block: None,
            block_buf: Vec::new(),
            streams: BTreeMap::new(),
            ended: VecDeque::new(),
            last_client_stream: 0,
            blocked: VecDeque::new(),
            peer_initial_window: DEFAULT_WINDOW as u32,
            peer_max_frame: 16_384,
            conn_send_window: DEFAULT_WINDOW,
            conn_recv_window: i64::from(limits.connection_window),
            conn_recv_unacked: 0,
            settings_sent_at: Some(now),
            settings_acked: false,
            goaway_sent: None,
            peer_goaway: None,
            shutdown: false,
            idle_since: now,
            floods: Floods {
                start: now,
                ..Floods::default()
            },
            events: VecDeque::new(),
            closed: None,
            closed_reported: false,
            dead: false,
            scratch: Vec::new(),
            name_buf: Vec::new(),
            stats: Stats::default(),
        };
        let mut settings: Vec<(u16, u32)> = Vec::new();
        settings.push((
            frame::SETTINGS_MAX_CONCURRENT_STREAMS,
            limits.max_concurrent_streams,
        ));
        if limits.stream_window != DEFAULT_WINDOW as u32 {
            settings.push((frame::SETTINGS_INITIAL_WINDOW_SIZE, limits.stream_window));
        }
        if limits.max_frame_size != 16_384 {
            settings.push((frame::SETTINGS_MAX_FRAME_SIZE, limits.max_frame_size));
        }
        settings.push((
            frame::SETTINGS_MAX_HEADER_LIST_SIZE,
            limits.max_header_list_size,
        ));
        if limits.header_table_size as usize != hpack::DEFAULT_TABLE_SIZE {
            settings.push((frame::SETTINGS_HEADER_TABLE_SIZE, limits.header_table_size));
        }
        settings.push((frame::SETTINGS_NO_RFC7540_PRIORITIES, 1));
        frame::write_settings(c.out(), &settings);
        let extra = limits
            .connection_window
            .saturating_sub(DEFAULT_WINDOW as u32);
        if extra > 0 {
            frame::write_window_update(c.out(), 0, extra);
        }
        c
    }

    /// The limits in force (after [`Limits::sanitized`]).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Counters and current buffer sizes.
    pub fn stats(&self) -> Stats {
        Stats {
            open_streams: self.streams.len(),
            input_bytes: self.input.len() - self.in_pos,
            output_bytes: self.out_len(),
            hpack_table_bytes: self.decoder.table_size(),
            ..self.stats
        }
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    fn observe(&mut self, now: u64) {
        if now > self.now {
            self.now = now;
        }
    }

    fn out_len(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// The output buffer, for appending a frame; restarts the send-stall
    /// clock when it was empty.
    fn out(&mut self) -> &mut Vec<u8> {
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            self.out_progress = self.now;
        }
        &mut self.out
    }

    fn note_output(&mut self) {
        let n = self.out_len();
        if n > self.stats.peak_output_bytes {
            self.stats.peak_output_bytes = n;
        }
    }

    // ---- input ----

    /// Offers received (decrypted) bytes; returns how many were taken, at
    /// most the free space of the bounded input buffer. Keep the rest and
    /// offer it again after [`poll`](Self::poll). Once the connection is
    /// closed, everything is taken and dropped.
    pub fn receive(&mut self, data: &[u8], now: u64) -> usize {
        self.observe(now);
        if self.closed.is_some() {
            return data.len();
        }
        if self.in_pos > 0 {
            self.input.drain(..self.in_pos);
            self.in_pos = 0;
        }
        let room = self.limits.input_buffer.saturating_sub(self.input.len());
        let n = room.min(data.len());
        self.input.extend_from_slice(&data[..n]);
        n
    }

    /// Processes buffered input and reports what the caller must act on;
    /// call until it returns `None`. Parsing pauses while the output holds
    /// [`Limits::output_buffer`] bytes or more.
    pub fn poll(&mut self, now: u64) -> Option<Event<'_>> {
        self.observe(now);
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if let Some(reason) = &self.closed {
                if self.closed_reported {
                    return None;
                }
                self.closed_reported = true;
                return Some(Event::Closed {
                    reason: reason.clone(),
                });
            }
            if let Some(id) = self.next_writable() {
                return Some(Event::Writable {
                    stream: StreamId(id),
                });
            }
            if self.out_len() >= self.limits.output_buffer {
                return None;
            }
            match self.step() {
                Step::NeedInput => return None,
                Step::Continue => {}
                Step::Data {
                    stream,
                    start,
                    end,
                    end_stream,
                } => {
                    return Some(Event::Data {
                        stream: StreamId(stream),
                        data: self.input.get(start..end).unwrap_or(&[]),
                        end_stream,
                    });
                }
            }
        }
    }

    fn step(&mut self) -> Step {
        if self.closed.is_some() {
            return Step::NeedInput;
        }
        let avail = self.input.get(self.in_pos..).unwrap_or(&[]);
        let avail_len = avail.len();
        if self.phase == Phase::Preface {
            let n = avail_len.min(PREFACE.len());
            if avail[..n] != PREFACE[..n] {
                self.fail(ConnectionError::BadPreface);
                return Step::Continue;
            }
            if n < PREFACE.len() {
                return Step::NeedInput;
            }
            self.in_pos += PREFACE.len();
            self.phase = Phase::FirstSettings;
            return Step::Continue;
        }
        let Some(h) = FrameHeader::parse(avail) else {
            return Step::NeedInput;
        };
        if h.len > self.limits.max_frame_size {
            self.fail(ConnectionError::FrameTooLarge {
                size: h.len,
                limit: self.limits.max_frame_size,
            });
            return Step::Continue;
        }
        let total = HEADER_LEN + h.len as usize;
        if avail_len < total {
            return Step::NeedInput;
        }
        let start = self.in_pos + HEADER_LEN;
        let end = self.in_pos + total;
        self.in_pos = end;
        let input = core::mem::take(&mut self.input);
        let result = match input.get(start..end) {
            Some(payload) => self.frame(h, payload, start),
            None => Ok(Step::Continue),
        };
        self.input = input;
        if self.closed.is_some() {
            // Closed while the frame was handled: drop the rest unread.
            self.input.clear();
            self.in_pos = 0;
        }
        self.note_output();
        match result {
            Ok(step) => step,
            Err(e) => {
                self.fail(e);
                Step::Continue
            }
        }
    }

    fn frame(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
        at: usize,
    ) -> Result<Step, ConnectionError> {
        if self.phase == Phase::FirstSettings {
            if h.kind != frame::SETTINGS || h.has(frame::ACK) {
                return Err(ConnectionError::protocol("first frame is not SETTINGS"));
            }
            self.phase = Phase::Open;
        }
        if let Some(b) = &self.block
            && (h.kind != frame::CONTINUATION || h.stream != b.stream)
        {
            return Err(ConnectionError::protocol(
                "frame other than CONTINUATION inside a header block",
            ));
        }
        match h.kind {
            frame::DATA => self.on_data(h, payload, at),
            frame::HEADERS => self.on_headers(h, payload).map(|()| Step::Continue),
            frame::CONTINUATION => self.on_continuation(h, payload).map(|()| Step::Continue),
            frame::PRIORITY => self.on_priority(h, payload).map(|()| Step::Continue),
            frame::RST_STREAM => self.on_rst_stream(h, payload).map(|()| Step::Continue),
            frame::SETTINGS => self.on_settings(h, payload).map(|()| Step::Continue),
            frame::PUSH_PROMISE => Err(ConnectionError::protocol("PUSH_PROMISE from a client")),
            frame::PING => self.on_ping(h, payload).map(|()| Step::Continue),
            frame::GOAWAY => self.on_goaway(h, payload).map(|()| Step::Continue),
            frame::WINDOW_UPDATE => self.on_window_update(h, payload).map(|()| Step::Continue),
            // Unknown frame types are ignored (RFC 9113 §4.1), but counted.
            _ => self.count(Flood::IdleFrames).map(|()| Step::Continue),
        }
    }

    fn count(&mut self, kind: Flood) -> Result<(), ConnectionError> {
        let l = &self.limits;
        let f = &mut self.floods;
        if self.now >= f.start.saturating_add(l.flood_window_ms) {
            *f = Floods {
                start: self.now,
                ..Floods::default()
            };
        }
        let (counter, limit) = match kind {
            Flood::Resets => (&mut f.resets, l.max_resets),
            Flood::Pings => (&mut f.pings, l.max_pings),
            Flood::Settings => (&mut f.settings, l.max_settings),
            Flood::IdleFrames => (&mut f.idle, l.max_idle_frames),
        };
        *counter = counter.saturating_add(1);
        if *counter > limit {
            return Err(ConnectionError::Flood {
                kind,
                limit,
                window_ms: l.flood_window_ms,
            });
        }
        Ok(())
    }

    fn ended(&self, id: u32) -> Option<Ended> {
        self.ended
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|(_, e)| *e)
    }

    fn remember(&mut self, id: u32, how: Ended) {
        let cap = 2 * self.limits.max_concurrent_streams as usize + 16;
        while self.ended.len() >= cap {
            self.ended.pop_front();
        }
        self.ended.push_back((id, how));
    }

    // ---- frames ----

    fn on_data(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
        at: usize,
    ) -> Result<Step, ConnectionError> {
        let id = h.stream;
        if id == 0 {
            return Err(ConnectionError::protocol("DATA on stream 0"));
        }
        if id.is_multiple_of(2) || id > self.last_client_stream {
            return Err(ConnectionError::protocol("DATA on an idle stream"));
        }
        let (off, end) = unpad(&h, payload)?;
        let len = i64::from(h.len);
        if len > self.conn_recv_window {
            return Err(ConnectionError::Protocol {
                code: ErrorCode::FLOW_CONTROL_ERROR,
                what: "DATA beyond the connection window",
            });
        }
        self.conn_recv_window -= len;
        self.conn_recv_unacked += h.len;
        if self.conn_recv_unacked >= (self.limits.connection_window / 2).max(1) {
            let inc = core::mem::take(&mut self.conn_recv_unacked);
            self.conn_recv_window += i64::from(inc);
            frame::write_window_update(self.out(), 0, inc);
        }
        let data_len = (end - off) as u64;
        let end_stream = h.has(frame::END_STREAM);
        let threshold = (self.limits.stream_window / 2).max(1);
        let Some(s) = self.streams.get_mut(&id) else {
            return match self.ended(id) {
                Some(Ended::Reset) => self.count(Flood::IdleFrames).map(|()| Step::Continue),
                _ => self
                    .reset(id, ErrorCode::STREAM_CLOSED, true)
                    .map(|()| Step::Continue),
            };
        };
        if !s.recv_open {
            self.reset(id, ErrorCode::STREAM_CLOSED, true)?;
            return Ok(Step::Continue);
        }
        if len > s.recv_window {
            self.reset(id, ErrorCode::FLOW_CONTROL_ERROR, true)?;
            return Ok(Step::Continue);
        }
        s.recv_window -= len;
        s.received += data_len;
        if let Some(cl) = s.content_length
            && (s.received > cl || (end_stream && s.received != cl))
        {
            self.reset(id, ErrorCode::PROTOCOL_ERROR, true)?;
            return Ok(Step::Continue);
        }
        if end_stream {
            s.recv_open = false;
        } else {
            s.recv_unacked += h.len;
            if s.recv_unacked >= threshold {
                let inc = core::mem::take(&mut s.recv_unacked);
                s.recv_window += i64::from(inc);
                frame::write_window_update(self.out(), id, inc);
            }
        }
        if data_len == 0 && !end_stream {
            self.count(Flood::IdleFrames)?;
        }
        Ok(Step::Data {
            stream: id,
            start: at + off,
            end: at + end,
            end_stream,
        })
    }

    fn on_headers(&mut self, h: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        let id = h.stream;
        if id == 0 {
            return Err(ConnectionError::protocol("HEADERS on stream 0"));
        }
        if id.is_multiple_of(2) {
            return Err(ConnectionError::protocol(
                "HEADERS on an even (server-initiated) stream id",
            ));
        }
        let (mut off, end) = unpad(&h, payload)?;
        let mut self_dependent = false;
        if h.has(frame::PRIORITY_FLAG) {
            if end < off + 5 {
                return Err(ConnectionError::Protocol {
                    code: ErrorCode::FRAME_SIZE_ERROR,
                    what: "HEADERS too short for its priority fields",
                });
            }
            self_dependent = frame::u31(&payload[off..]) == id;
            off += 5;
        }
        let fragment = payload.get(off..end).unwrap_or(&[]);
        if fragment.len() > self.limits.max_header_block {
            return Err(ConnectionError::HeaderBlockTooLarge {
                limit: self.limits.max_header_block,
            });
        }
        if fragment.is_empty() && !h.has(frame::END_HEADERS) {
            self.count(Flood::IdleFrames)?;
        }
        self.block_buf.clear();
        self.block_buf.extend_from_slice(fragment);
        self.block = Some(Block {
            stream: id,
            end_stream: h.has(frame::END_STREAM),
            continuations: 0,
            started: self.now,
            self_dependent,
        });
        if h.has(frame::END_HEADERS) {
            self.finish_block()?;
        }
        Ok(())
    }

    fn on_continuation(&mut self, h: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        let limits = self.limits;
        let Some(b) = &mut self.block else {
            return Err(ConnectionError::protocol("CONTINUATION without HEADERS"));
        };
        b.continuations += 1;
        if b.continuations > limits.max_continuation_frames {
            return Err(ConnectionError::ContinuationFlood {
                limit: limits.max_continuation_frames,
            });
        }
        if self.block_buf.len() + payload.len() > limits.max_header_block {
            return Err(ConnectionError::HeaderBlockTooLarge {
                limit: limits.max_header_block,
            });
        }
        self.block_buf.extend_from_slice(payload);
        if payload.is_empty() && !h.has(frame::END_HEADERS) {
            self.count(Flood::IdleFrames)?;
        }
        if h.has(frame::END_HEADERS) {
            self.finish_block()?;
        }
        Ok(())
    }

    /// A header block is complete: decode it (always, to keep the HPACK
    /// state in step) and act on it.
    fn finish_block(&mut self) -> Result<(), ConnectionError> {
        let Some(b) = self.block.take() else {
            return Ok(());
        };
        let id = b.stream;
        #[derive(PartialEq)]
        enum Target {
            New,
            Trailers,
            HalfClosed,
            Ignore,
        }
        let target = match self.streams.get(&id) {
            Some(s) if s.recv_open => Target::Trailers,
            Some(_) => Target::HalfClosed,
            None if id > self.last_client_stream => Target::New,
            None => match self.ended(id) {
                Some(Ended::Reset) => Target::Ignore,
                Some(Ended::Normal) => {
                    return Err(ConnectionError::Protocol {
                        code: ErrorCode::STREAM_CLOSED,
                        what: "HEADERS on a closed stream",
                    });
                }
                None => {
                    return Err(ConnectionError::protocol(
                        "HEADERS with a stream id not above the previous one",
                    ));
                }
            },
        };
        let list_limit = self.limits.max_header_list_size as usize;
        let mut collector = Collector::new(list_limit, target == Target::Trailers);
        let bomb = list_limit.saturating_mul(BOMB_FACTOR);
        match self
            .decoder
            .decode(&self.block_buf, bomb, |n, v| collector.field(n, v))
        {
            Ok(_) => {}
            Err(HpackError::DecodedTooLarge { limit }) => {
                return Err(ConnectionError::HpackBomb { limit });
            }
            Err(e) => return Err(ConnectionError::Compression(e)),
        }
        let decoded = collector.finish(b.end_stream);
        match target {
            Target::New => {
                self.last_client_stream = id;
                if self.goaway_sent.is_some_and(|last| id > last) {
                    // After GOAWAY new streams are ignored (RFC 9113 §6.8).
                    return self.count(Flood::IdleFrames);
                }
                if b.self_dependent {
                    return self.reset(id, ErrorCode::PROTOCOL_ERROR, true);
                }
                if self.streams.len() >= self.limits.max_concurrent_streams as usize {
                    return self.reset(id, ErrorCode::REFUSED_STREAM, true);
                }
                match decoded {
                    Decoded::Request(head) => {
                        let recv_window = if self.settings_acked {
                            i64::from(self.limits.stream_window)
                        } else {
                            i64::from(self.limits.stream_window).max(DEFAULT_WINDOW)
                        };
                        self.streams.insert(
                            id,
                            Stream {
                                recv_open: !b.end_stream,
                                send: SendState::Headers,
                                send_window: i64::from(self.peer_initial_window),
                                recv_window,
                                recv_unacked: 0,
                                content_length: head.content_length(),
                                received: 0,
                                queued: false,
                                stalled_since: None,
                            },
                        );
                        if b.end_stream && head.content_length().is_some_and(|cl| cl != 0) {
                            self.streams.remove(&id);
                            return self.reset(id, ErrorCode::PROTOCOL_ERROR, true);
                        }
                        self.stats.requests += 1;
                        self.events.push_back(Event::Request {
                            stream: StreamId(id),
                            head,
                        });
                        Ok(())
                    }
                    Decoded::TooLarge => self.respond_locally(id, 431, b.end_stream),
                    Decoded::Connect => self.respond_locally(id, 501, b.end_stream),
                    Decoded::Malformed(what) => {
                        log::debug!("h2: stream {id}: malformed request: {what}");
                        self.reset(id, ErrorCode::PROTOCOL_ERROR, true)
                    }
                    Decoded::Trailers => self.reset(id, ErrorCode::PROTOCOL_ERROR, true),
                }
            }
            Target::Trailers => {
                if !b.end_stream {
                    return self.reset(id, ErrorCode::PROTOCOL_ERROR, true);
                }
                if !matches!(decoded, Decoded::Trailers) {
                    return self.reset(id, ErrorCode::PROTOCOL_ERROR, true);
                }
                let Some(s) = self.streams.get_mut(&id) else {
                    return Ok(());
                };
                s.recv_open = false;
                if s.content_length.is_some_and(|cl| cl != s.received) {
                    return self.reset(id, ErrorCode::PROTOCOL_ERROR, true);
                }
                self.events.push_back(Event::Data {
                    stream: StreamId(id),
                    data: &[],
                    end_stream: true,
                });
                Ok(())
            }
            Target::HalfClosed => self.reset(id, ErrorCode::STREAM_CLOSED, true),
            Target::Ignore => self.count(Flood::IdleFrames),
        }
    }

    /// Answers a request this crate refuses itself (`431`, `501`) with an
    /// empty response; counts as a reset.
    fn respond_locally(
        &mut self,
        id: u32,
        status: u16,
        client_done: bool,
    ) -> Result<(), ConnectionError> {
        let mut block = core::mem::take(&mut self.scratch);
        block.clear();
        hpack::encode_status(&mut block, status);
        hpack::encode_literal(&mut block, b"content-length", b"0");
        let out = self.out();
        frame::write_header(
            out,
            block.len(),
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            id,
        );
        out.extend_from_slice(&block);
        self.scratch = block;
        if !client_done {
            frame::write_rst_stream(self.out(), id, ErrorCode::NO_ERROR.0);
            self.stats.resets_sent += 1;
        }
        self.remember(id, Ended::Reset);
        self.count(Flood::Resets)
    }

    fn on_priority(&mut self, h: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        if h.stream == 0 {
            return Err(ConnectionError::protocol("PRIORITY on stream 0"));
        }
        if payload.len() != 5 {
            return self.reset(h.stream, ErrorCode::FRAME_SIZE_ERROR, true);
        }
        if frame::u31(payload) == h.stream {
            return self.reset(h.stream, ErrorCode::PROTOCOL_ERROR, true);
        }
        self.count(Flood::IdleFrames)
    }

    fn on_rst_stream(&mut self, h: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        let id = h.stream;
        if id == 0 {
            return Err(ConnectionError::protocol("RST_STREAM on stream 0"));
        }
        if payload.len() != 4 {
            return Err(ConnectionError::Protocol {
                code: ErrorCode::FRAME_SIZE_ERROR,
                what: "RST_STREAM length not 4",
            });
        }
        if id.is_multiple_of(2) || id > self.last_client_stream {
            return Err(ConnectionError::protocol("RST_STREAM on an idle stream"));
        }
        self.stats.resets_received += 1;
        let code = ErrorCode(frame::u32_at(payload));
        if self.streams.remove(&id).is_some() {
            self.remember(id, Ended::Reset);
            self.events.push_back(Event::Reset {
                stream: StreamId(id),
                code,
                by_peer: true,
            });
            self.stream_gone();
            self.count(Flood::Resets)
        } else if self.ended(id) == Some(Ended::Normal) {
            // Reset right after its response was sent: still a reset for
            // rapid-reset accounting (the request was served for nothing).
            self.remember(id, Ended::Reset);
            self.count(Flood::Resets)
        } else {
            self.count(Flood::IdleFrames)
        }
    }

    fn on_settings(&mut self, h: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        if h.stream != 0 {
            return Err(ConnectionError::protocol("SETTINGS on a stream"));
        }
        if h.has(frame::ACK) {
            if !payload.is_empty() {
                return Err(ConnectionError::Protocol {
                    code: ErrorCode::FRAME_SIZE_ERROR,
                    what: "SETTINGS ACK with a payload",
                });
            }
            if self.settings_sent_at.take().is_none() {
                return self.count(Flood::IdleFrames);
            }
            self.settings_acked = true;
            self.decoder
                .set_max_allowed(self.limits.header_table_size as usize);
            let ours = i64::from(self.limits.stream_window);
            if ours < DEFAULT_WINDOW {
                for s in self.streams.values_mut() {
                    s.recv_window += ours - DEFAULT_WINDOW;
                }
            }
            return Ok(());
        }
        self.count(Flood::Settings)?;
        if !payload.len().is_multiple_of(6) {
            return Err(ConnectionError::Protocol {
                code: ErrorCode::FRAME_SIZE_ERROR,
                what: "SETTINGS length not a multiple of 6",
            });
        }
        for p in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([p[0], p[1]]);
            let value = frame::u32_at(&p[2..]);
            match id {
                frame::SETTINGS_ENABLE_PUSH
                | frame::SETTINGS_ENABLE_CONNECT_PROTOCOL
                | frame::SETTINGS_NO_RFC7540_PRIORITIES
                    if value > 1 =>
                {
                    return Err(ConnectionError::protocol(
                        "boolean SETTINGS value other than 0 or 1",
                    ));
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    if value > MAX_WINDOW {
                        return Err(ConnectionError::Protocol {
                            code: ErrorCode::FLOW_CONTROL_ERROR,
                            what: "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
                        });
                    }
                    let delta = i64::from(value) - i64::from(self.peer_initial_window);
                    self.peer_initial_window = value;
                    for s in self.streams.values_mut() {
                        s.send_window += delta;
                        if s.send_window > i64::from(MAX_WINDOW) {
                            return Err(ConnectionError::Protocol {
                                code: ErrorCode::FLOW_CONTROL_ERROR,
                                what: "SETTINGS_INITIAL_WINDOW_SIZE makes a window exceed 2^31-1",
                            });
                        }
                    }
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    if !(16_384..=(1 << 24) - 1).contains(&value) {
                        return Err(ConnectionError::protocol(
                            "SETTINGS_MAX_FRAME_SIZE out of range",
                        ));
                    }
                    self.peer_max_frame = value;
                }
                // HEADER_TABLE_SIZE: our encoder never indexes.
                // MAX_CONCURRENT_STREAMS: we never push.
                // MAX_HEADER_LIST_SIZE: advisory; responses are small.
                _ => {}
            }
        }
        frame::write_header(self.out(), 0, frame::SETTINGS, frame::ACK, 0);
        Ok(())
    }

    fn on_ping(&mut self, h: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        if h.stream != 0 {
            return Err(ConnectionError::protocol("PING on a stream"));
        }
        if payload.len() != 8 {
            return Err(ConnectionError::Protocol {
                code: ErrorCode::FRAME_SIZE_ERROR,
                what: "PING length not 8",
            });
        }
        self.count(Flood::Pings)?;
        if !h.has(frame::ACK) {
            let out = self.out();
            frame::write_header(out, 8, frame::PING, frame::ACK, 0);
            out.extend_from_slice(payload);
        }
        Ok(())
    }

    fn on_goaway(&mut self, h: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        if h.stream != 0 {
            return Err(ConnectionError::protocol("GOAWAY on a stream"));
        }
        if payload.len() < 8 {
            return Err(ConnectionError::Protocol {
                code: ErrorCode::FRAME_SIZE_ERROR,
                what: "GOAWAY shorter than 8 bytes",
            });
        }
        let code = ErrorCode(frame::u32_at(&payload[4..]));
        if self.peer_goaway.is_none() {
            self.events.push_back(Event::GoAway { code });
        }
        self.peer_goaway = Some(code);
        self.check_drained();
        Ok(())
    }

    fn on_window_update(&mut self, h: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        if payload.len() != 4 {
            return Err(ConnectionError::Protocol {
                code: ErrorCode::FRAME_SIZE_ERROR,
                what: "WINDOW_UPDATE length not 4",
            });
        }
        let inc = i64::from(frame::u31(payload));
        let id = h.stream;
        if id == 0 {
            if inc == 0 {
                return Err(ConnectionError::protocol("WINDOW_UPDATE with increment 0"));
            }
            self.conn_send_window += inc;
            if self.conn_send_window > i64::from(MAX_WINDOW) {
                return Err(ConnectionError::Protocol {
                    code: ErrorCode::FLOW_CONTROL_ERROR,
                    what: "connection window above 2^31-1",
                });
            }
            return Ok(());
        }
        if id.is_multiple_of(2) || id > self.last_client_stream {
            return Err(ConnectionError::protocol("WINDOW_UPDATE on an idle stream"));
        }
        let Some(s) = self.streams.get_mut(&id) else {
            // Credit for a finished stream: normal, and harmless.
            return Ok(());
        };
        if inc == 0 {
            return self.reset(id, ErrorCode::PROTOCOL_ERROR, true);
        }
        s.send_window += inc;
        if s.send_window > i64::from(MAX_WINDOW) {
            return self.reset(id, ErrorCode::FLOW_CONTROL_ERROR, true);
        }
        Ok(())
    }

    // ---- streams ----

    /// Sends RST_STREAM for `id`, forgets the stream (reporting
    /// [`Event::Reset`] if the caller knew it), and counts it against
    /// [`Limits::max_resets`] when `count`.
    fn reset(&mut self, id: u32, code: ErrorCode, count: bool) -> Result<(), ConnectionError> {
        frame::write_rst_stream(self.out(), id, code.0);
        self.stats.resets_sent += 1;
        if self.streams.remove(&id).is_some() {
            self.events.push_back(Event::Reset {
                stream: StreamId(id),
                code,
                by_peer: false,
            });
            self.stream_gone();
        }
        self.remember(id, Ended::Reset);
        if count {
            self.count(Flood::Resets)
        } else {
            Ok(())
        }
    }

    /// The response of `id` is complete: forget the stream, telling the
    /// client to stop sending if its request is still open (RFC 9113 §8.1).
    fn response_done(&mut self, id: u32) {
        let Some(s) = self.streams.remove(&id) else {
            return;
        };
        if s.recv_open {
            frame::write_rst_stream(self.out(), id, ErrorCode::NO_ERROR.0);
            self.stats.resets_sent += 1;
            self.remember(id, Ended::Reset);
        } else {
            self.remember(id, Ended::Normal);
        }
        self.stream_gone();
    }

    fn stream_gone(&mut self) {
        if self.streams.is_empty() {
            self.idle_since = self.now;
        }
        self.check_drained();
    }

    /// After GOAWAY (either way), the connection ends once no stream is left.
    fn check_drained(&mut self) {
        if self.closed.is_some() || !self.streams.is_empty() || self.block.is_some() {
            return;
        }
        let reason = if self.shutdown {
            CloseReason::Shutdown
        } else if let Some(code) = self.peer_goaway {
            CloseReason::PeerGoAway { code }
        } else {
            return;
        };
        if self.goaway_sent.is_none() {
            let last = self.last_client_stream;
            frame::write_goaway(self.out(), last, ErrorCode::NO_ERROR.0, b"");
            self.goaway_sent = Some(last);
        }
        self.close(reason);
    }

    fn close(&mut self, reason: CloseReason) {
        if self.closed.is_none() {
            log::debug!("h2: connection closed: {reason}");
            self.closed = Some(reason);
        }
        self.streams.clear();
        self.blocked.clear();
        self.block = None;
        self.input.clear();
        self.in_pos = 0;
    }

    /// Ends the connection with GOAWAY for `e`.
    fn fail(&mut self, e: ConnectionError) {
        if self.closed.is_some() {
            return;
        }
        if matches!(e, ConnectionError::OutputStalled { .. }) {
            self.dead = true;
        } else {
            let mut debug = DebugText {
                buf: [0; DEBUG_MAX],
                len: 0,
            };
            let _ = write!(debug, "{e}");
            let last = self.last_client_stream;
            frame::write_goaway(self.out(), last, e.code().0, &debug.buf[..debug.len]);
            self.goaway_sent = Some(last);
        }
        log::info!("h2: {e}");
        self.events.clear();
        self.close(CloseReason::Error(e));
    }

    /// The next stream in the blocked queue that can send now.
    fn next_writable(&mut self) -> Option<u32> {
        if self.conn_send_window <= 0 || self.out_len() + HEADER_LEN >= self.limits.output_buffer {
            return None;
        }
        for _ in 0..self.blocked.len() {
            let id = self.blocked.pop_front()?;
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            if s.send_window > 0 {
                s.queued = false;
                s.stalled_since = None;
                return Some(id);
            }
            self.blocked.push_back(id);
        }
        None
    }

    // ---- responses ----

    /// Sends the response head of `stream`: `:status` and `fields` (names
    /// are lowercased; connection-specific fields such as `connection` or
    /// `transfer-encoding` are dropped, HTTP/2 forbids them). With
    /// `end_stream` the response ends here (e.g. `HEAD`, `304`).
    pub fn send_headers(
        &mut self,
        stream: StreamId,
        status: u16,
        fields: &[(&str, &[u8])],
        end_stream: bool,
    ) -> Result<(), SendError> {
        if self.closed.is_some() {
            return Err(SendError::ConnectionClosed);
        }
        let id = stream.0;
        let s = self
            .streams
            .get(&id)
            .ok_or(SendError::UnknownStream(stream))?;
        if s.send != SendState::Headers {
            return Err(SendError::HeadersAlreadySent(stream));
        }
        if !(200..=599).contains(&status) {
            return Err(SendError::InvalidStatus(status));
        }
        let mut block = core::mem::take(&mut self.scratch);
        let mut name = core::mem::take(&mut self.name_buf);
        block.clear();
        hpack::encode_status(&mut block, status);
        let mut result = Ok(());
        for (index, (n, v)) in fields.iter().enumerate() {
            name.clear();
            name.extend(n.bytes().map(|b| b.to_ascii_lowercase()));
            let name_ok = !name.is_empty()
                && name
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !name_ok || v.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
                result = Err(SendError::InvalidField { index });
                break;
            }
            if is_connection_specific(&name) {
                continue;
            }
            hpack::encode_literal(&mut block, &name, v);
        }
        if result.is_ok() && block.len() > MAX_RESPONSE_HEADER_BLOCK {
            result = Err(SendError::HeadersTooLarge);
        }
        if result.is_ok() {
            let max = self.peer_max_frame as usize;
            let mut chunks = block.chunks(max);
            let first = chunks.next().unwrap_or(&[]);
            let more = block.len() > max;
            let mut flags = if more { 0 } else { frame::END_HEADERS };
            if end_stream {
                flags |= frame::END_STREAM;
            }
            let out = self.out();
            frame::write_header(out, first.len(), frame::HEADERS, flags, id);
            out.extend_from_slice(first);
            let mut rest = chunks.peekable();
            while let Some(c) = rest.next() {
                let flags = if rest.peek().is_none() {
                    frame::END_HEADERS
                } else {
                    0
                };
                frame::write_header(out, c.len(), frame::CONTINUATION, flags, id);
                out.extend_from_slice(c);
            }
        }
        self.scratch = block;
        self.name_buf = name;
        result?;
        self.note_output();
        if end_stream {
            self.response_done(id);
        } else if let Some(s) = self.streams.get_mut(&id) {
            s.send = SendState::Body;
        }
        Ok(())
    }

    /// Sends body bytes of `stream`: as many as the stream and connection
    /// flow-control windows and the output bound allow, in DATA frames of
    /// at most the client's SETTINGS_MAX_FRAME_SIZE. Returns how many were
    /// taken; when fewer than `data.len()`, keep the rest and offer it
    /// again after [`Event::Writable`] for this stream. `end_stream` takes
    /// effect only when all of `data` is taken (an empty `data` with
    /// `end_stream` just ends the response).
    pub fn send_data(
        &mut self,
        stream: StreamId,
        data: &[u8],
        end_stream: bool,
    ) -> Result<usize, SendError> {
        if self.closed.is_some() {
            return Err(SendError::ConnectionClosed);
        }
        let id = stream.0;
        let limit = self.limits.output_buffer;
        let max_frame = self.peer_max_frame as usize;
        let now = self.now;
        let s = self
            .streams
            .get(&id)
            .ok_or(SendError::UnknownStream(stream))?;
        if s.send == SendState::Headers {
            return Err(SendError::HeadersNotSent(stream));
        }
        let mut sent = 0usize;
        let mut finished = false;
        loop {
            let remaining = data.len() - sent;
            let Some(s) = self.streams.get(&id) else {
                break;
            };
            let window = s.send_window.min(self.conn_send_window).max(0) as usize;
            let room = limit.saturating_sub(self.out_len() + HEADER_LEN);
            let n = remaining.min(window).min(room).min(max_frame);
            let last = end_stream && n == remaining;
            if n == 0 && !last {
                break;
            }
            let out = self.out();
            frame::write_header(
                out,
                n,
                frame::DATA,
                if last { frame::END_STREAM } else { 0 },
                id,
            );
            out.extend_from_slice(&data[sent..sent + n]);
            sent += n;
            self.conn_send_window -= n as i64;
            if let Some(s) = self.streams.get_mut(&id) {
                s.send_window -= n as i64;
            }
            if last {
                finished = true;
                break;
            }
        }
        self.note_output();
        if finished {
            self.response_done(id);
        } else if sent < data.len() {
            let conn_window = self.conn_send_window;
            if let Some(s) = self.streams.get_mut(&id) {
                let window_bound = s.send_window <= 0 || conn_window <= 0;
                s.stalled_since = if window_bound {
                    s.stalled_since.or(Some(now))
                } else {
                    None
                };
                if !s.queued {
                    s.queued = true;
                    self.blocked.push_back(id);
                }
            }
        }
        Ok(sent)
    }

    /// Resets `stream` (e.g. the serving layer gives up on it) with `code`;
    /// no [`Event::Reset`] follows for it. Unknown streams are ignored.
    pub fn reset_stream(&mut self, stream: StreamId, code: ErrorCode) {
        if self.closed.is_some() || !self.streams.contains_key(&stream.0) {
            return;
        }
        self.streams.remove(&stream.0);
        frame::write_rst_stream(self.out(), stream.0, code.0);
        self.stats.resets_sent += 1;
        self.remember(stream.0, Ended::Reset);
        self.stream_gone();
    }

    /// Starts a graceful shutdown: GOAWAY NO_ERROR now, no new streams;
    /// the connection closes ([`Event::Closed`]) once the open streams
    /// have finished.
    pub fn shutdown(&mut self) {
        if self.closed.is_some() || self.goaway_sent.is_some() {
            return;
        }
        let last = self.last_client_stream;
        frame::write_goaway(self.out(), last, ErrorCode::NO_ERROR.0, b"");
        self.goaway_sent = Some(last);
        self.shutdown = true;
        self.check_drained();
    }

    /// The transport is gone: nothing more is sent;
    /// [`wants_close`](Self::wants_close) becomes true.
    pub fn abort(&mut self) {
        self.dead = true;
        self.close(CloseReason::Aborted);
        self.events.clear();
        self.closed_reported = true;
    }

    /// Gives back the memory of empty buffers; call when no stream is open
    /// and nothing waits to be sent (an idle keep-alive connection then
    /// holds its HPACK table and a few hundred bytes of state).
    pub fn trim(&mut self) {
        if self.in_pos >= self.input.len() {
            self.input = Vec::new();
            self.in_pos = 0;
        }
        if self.out_pos >= self.out.len() {
            self.out = Vec::new();
            self.out_pos = 0;
        }
        if self.block.is_none() {
            self.block_buf = Vec::new();
        }
        self.scratch = Vec::new();
        self.name_buf = Vec::new();
    }

    // ---- output ----

    /// Bytes to send (to encrypt), possibly empty.
    pub fn output(&self) -> &[u8] {
        if self.dead {
            &[]
        } else {
            &self.out[self.out_pos..]
        }
    }

    /// Marks the first `n` bytes of [`output`](Self::output) as sent
    /// (clamped to what is there).
    pub fn consume_output(&mut self, n: usize) {
        let n = n.min(self.out_len());
        if n == 0 {
            return;
        }
        self.out_pos += n;
        self.out_progress = self.now;
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > self.limits.output_buffer / 2 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// The transport should be closed now: the connection is finished and
    /// its last output (GOAWAY) is consumed, or it was dropped.
    pub fn wants_close(&self) -> bool {
        self.dead || (self.closed.is_some() && self.out_len() == 0)
    }

    // ---- time ----

    /// When [`on_timeout`](Self::on_timeout) must be called next, if ever.
    pub fn deadline(&self) -> Option<u64> {
        if self.dead {
            return None;
        }
        let l = &self.limits;
        let mut d: Option<u64> = None;
        let mut at = |t: u64| d = Some(d.map_or(t, |x| x.min(t)));
        if self.out_len() > 0 {
            at(self.out_progress.saturating_add(l.send_timeout_ms));
        }
        if self.closed.is_some() {
            return d;
        }
        if let Some(t) = self.settings_sent_at {
            at(t.saturating_add(l.settings_timeout_ms));
        }
        if let Some(b) = &self.block {
            at(b.started.saturating_add(l.header_timeout_ms));
        } else if self.streams.is_empty() {
            at(self.idle_since.saturating_add(l.idle_timeout_ms));
        }
        for id in &self.blocked {
            if let Some(s) = self.streams.get(id)
                && let Some(t) = s.stalled_since
                && (s.send_window <= 0 || self.conn_send_window <= 0)
            {
                at(t.saturating_add(l.stall_timeout_ms));
            }
        }
        d
    }

    /// Applies every timeout that has expired at `now`: unconsumed output
    /// drops the connection; a missing SETTINGS ACK, an incomplete header
    /// block or a zero connection window ends it with GOAWAY; a zero
    /// stream window resets that stream (CANCEL); idleness closes it
    /// gracefully. Calling it early is harmless.
    pub fn on_timeout(&mut self, now: u64) {
        self.observe(now);
        if self.dead {
            return;
        }
        let l = self.limits;
        if self.out_len() > 0 && self.now >= self.out_progress.saturating_add(l.send_timeout_ms) {
            let e = ConnectionError::OutputStalled {
                timeout_ms: l.send_timeout_ms,
            };
            if self.closed.is_none() {
                self.fail(e);
            } else {
                log::info!("h2: {e}");
            }
            self.dead = true;
            return;
        }
        if self.closed.is_some() {
            return;
        }
        if let Some(t) = self.settings_sent_at
            && self.now >= t.saturating_add(l.settings_timeout_ms)
        {
            return self.fail(ConnectionError::SettingsTimeout {
                timeout_ms: l.settings_timeout_ms,
            });
        }
        if let Some(b) = &self.block {
            if self.now >= b.started.saturating_add(l.header_timeout_ms) {
                return self.fail(ConnectionError::HeaderTimeout {
                    timeout_ms: l.header_timeout_ms,
                });
            }
        } else if self.streams.is_empty()
            && self.now >= self.idle_since.saturating_add(l.idle_timeout_ms)
        {
            if self.goaway_sent.is_none() {
                let last = self.last_client_stream;
                frame::write_goaway(self.out(), last, ErrorCode::NO_ERROR.0, b"");
                self.goaway_sent = Some(last);
            }
            self.close(CloseReason::Idle);
            return;
        }
        let mut stalled: Vec<u32> = Vec::new();
        for id in &self.blocked {
            if let Some(s) = self.streams.get(id)
                && let Some(t) = s.stalled_since
                && self.now >= t.saturating_add(l.stall_timeout_ms)
            {
                if s.send_window <= 0 {
                    stalled.push(*id);
                } else if self.conn_send_window <= 0 {
                    return self.fail(ConnectionError::WindowStalled {
                        timeout_ms: l.stall_timeout_ms,
                    });
                }
            }
        }
        for id in stalled {
            log::debug!("h2: stream {id}: window stayed at zero; reset");
            let _ = self.reset(id, ErrorCode::CANCEL, false);
        }
    }
}
