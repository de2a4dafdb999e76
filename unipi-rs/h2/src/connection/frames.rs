//! Frames from the client, one handler per frame type (RFC 9113 §6).

use super::{Block, Connection, DEFAULT_WINDOW, Ended, SendState, Step, Stream, unpad};
use crate::error::{ConnectionError, ErrorCode, Flood};
use crate::frame::{self, FrameHeader};
use crate::hpack::{self, HpackError};
use crate::limits::MAX_WINDOW;
use crate::request::{Collector, Decoded};
use crate::{BOMB_FACTOR, Event, StreamId};

impl Connection {
    pub(super) fn on_data(
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

    pub(super) fn on_headers(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
    ) -> Result<(), ConnectionError> {
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

    pub(super) fn on_continuation(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
    ) -> Result<(), ConnectionError> {
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

    pub(super) fn on_priority(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
    ) -> Result<(), ConnectionError> {
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

    pub(super) fn on_rst_stream(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
    ) -> Result<(), ConnectionError> {
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

    pub(super) fn on_settings(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
    ) -> Result<(), ConnectionError> {
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

    pub(super) fn on_ping(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
    ) -> Result<(), ConnectionError> {
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

    pub(super) fn on_goaway(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
    ) -> Result<(), ConnectionError> {
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

    pub(super) fn on_window_update(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
    ) -> Result<(), ConnectionError> {
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
}
