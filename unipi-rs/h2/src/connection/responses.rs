//! Responses from the serving layer: HEADERS, DATA under both flow-control
//! windows, and resets.

use alloc::vec::Vec;

use super::{Connection, Ended, SendState, is_connection_specific};
use crate::error::{CloseReason, ErrorCode, SendError};
use crate::frame::{self, HEADER_LEN};
use crate::hpack;
use crate::{MAX_RESPONSE_HEADER_BLOCK, StreamId};

impl Connection {
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
    /// again after [`Event::Writable`](crate::Event::Writable) for this stream. `end_stream` takes
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
    /// no [`Event::Reset`](crate::Event::Reset) follows for it. Unknown streams are ignored.
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
    /// the connection closes ([`Event::Closed`](crate::Event::Closed)) once the open streams
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
}
