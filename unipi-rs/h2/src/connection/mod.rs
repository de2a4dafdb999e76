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

use crate::error::{CloseReason, ConnectionError, ErrorCode, Flood};
use crate::frame::{self, FrameHeader, HEADER_LEN, PREFACE};
use crate::hpack::{self, Decoder};
use crate::limits::Limits;
use crate::{Event, StreamId};

mod frames;
mod responses;

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
