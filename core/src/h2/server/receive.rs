//! The client's frames: what each means for the connection and its streams (RFC 9113 §5.1,
//! §6), and which break a rule as a connection error or as a stream error (§5.4).
//!
//! | frame on a stream that is | idle | open / half-closed (local) | half-closed (remote) | closed (we reset it) | closed (otherwise) |
//! |---|---|---|---|---|---|
//! | DATA | conn `PROTOCOL_ERROR` | delivered | stream `STREAM_CLOSED` | ignored | stream `STREAM_CLOSED` |
//! | HEADERS | opens it | trailers (must end the stream) | stream `STREAM_CLOSED` | ignored | conn `STREAM_CLOSED` after END_STREAM both ways, stream `STREAM_CLOSED` after the client's RST_STREAM, or conn `PROTOCOL_ERROR` if never seen |
//!
//! "Closed (otherwise)" includes a stream the client reset whose reset event the
//! application has not taken yet: the stream is still stored, but to the client it is closed.
//! | RST_STREAM | conn `PROTOCOL_ERROR` | reset by peer | reset by peer | ignored | ignored |
//! | WINDOW_UPDATE | conn `PROTOCOL_ERROR` | send window grows | send window grows | ignored | ignored |
//! | PRIORITY | ignored | ignored | ignored | ignored | ignored |
//!
//! Field blocks are always HPACK-decoded first, whatever their stream's fate, so the
//! decoder's table stays in sync with the client's (§4.3). Even stream identifiers from the
//! client, a PUSH_PROMISE, or any frame but CONTINUATION inside a field block end the
//! connection with `PROTOCOL_ERROR`. After our final GOAWAY, every frame of a client stream
//! above its last-stream-id is ignored (§6.8), DATA still counted by the connection window.

use bytes::{Buf, Bytes, BytesMut};

use super::super::PREFACE;
use super::super::decode::decode;
use super::super::error::{ErrorCode, ErrorScope, FrameError, FrameRule};
use super::super::flood::Abuse;
use super::super::flow::RecvWindow;
use super::super::frame::{Frame, Priority, Settings};
use super::super::headers;
use super::super::priority::{PRIORITY_UPDATE, PrioritySignal};
use super::super::stream::{CloseCause, Stream, StreamState};
use super::{
    BlockHead, ConnectionError, EVENT_BATCH, FieldBlock, Phase, ServerConnection, ServerEvent,
    StreamId, deadline,
};
use crate::hpack::HeaderField;

/// DATA payloads at least this long are handed to the application as slices of the input
/// buffer; shorter ones are copied. A slice keeps its whole input buffer alive, so a client
/// mixing tiny DATA frames with other frames could otherwise make each small chunk the
/// application holds pin a whole buffer. With this floor, what the application holds pins at
/// most (input buffer size / 8 KiB) times its size, and the full-size frames of a large
/// upload are still never copied.
const SHARE_AT_LEAST: usize = 8 * 1024;

/// Fields room is made for before a field block is decoded: most requests have fewer.
const FIELDS_PER_BLOCK: usize = 24;

/// The longest list of decoded fields kept from one block for the next.
const MAX_KEPT_FIELDS: usize = 4 * FIELDS_PER_BLOCK;

/// The result of handling a frame: `Err` is a connection error.
type Handled = Result<(), ConnectionError>;

pub(super) fn protocol_error(reason: &'static str) -> ConnectionError {
    ConnectionError {
        code: ErrorCode::ProtocolError,
        reason,
    }
}

fn flow_error(reason: &'static str) -> ConnectionError {
    ConnectionError {
        code: ErrorCode::FlowControlError,
        reason,
    }
}

impl ServerConnection {
    /// Handles buffered input until it runs out, the connection is over, or enough events
    /// wait for the application.
    /// Once the peer's side is closed and every complete frame is handled, the connection
    /// ends (see [`ServerConnection::receive_eof`]).
    pub(super) fn process_input(&mut self) {
        while !self.closed && self.events.len() < EVENT_BATCH {
            if self.phase == Phase::Preface {
                match self.read_preface() {
                    Ok(true) => continue,
                    Ok(false) => return self.end_if_eof(),
                    Err(error) => return self.fail(error),
                }
            }
            let outcome = match decode(&mut self.input, self.limits.h2.max_frame_size) {
                Ok(None) => return self.end_if_eof(),
                Ok(Some(frame)) => self.on_frame(frame),
                Err(error) => self.on_frame_error(error),
            };
            if let Err(error) = outcome {
                self.fail(error);
            }
        }
    }

    /// All complete input is handled: if nothing more can arrive, every stream still open is
    /// over (reset by the peer, `CANCEL`) and the connection closes.
    fn end_if_eof(&mut self) {
        if !self.peer_eof || self.closed {
            return;
        }
        for id in self.streams.ids() {
            self.mark_reset(id, ErrorCode::Cancel, true);
        }
        self.close();
    }

    /// Checks the client preface (§3.4) as far as it has arrived; `Ok(true)` once complete.
    fn read_preface(&mut self) -> Result<bool, ConnectionError> {
        let seen = self.input.len().min(PREFACE.len());
        if self.input.get(..seen) != PREFACE.get(..seen) {
            return Err(protocol_error("invalid connection preface"));
        }
        if seen < PREFACE.len() {
            return Ok(false);
        }
        self.input.advance(PREFACE.len());
        self.phase = Phase::FirstSettings;
        Ok(true)
    }

    fn on_frame_error(&mut self, error: FrameError) -> Result<(), ConnectionError> {
        let connection_error = ConnectionError {
            code: error.code,
            reason: error.rule.describe(),
        };
        match error.scope {
            ErrorScope::Connection => Err(connection_error),
            // A stream error is still a frame inside a field block, or in place of the first
            // SETTINGS: both connection errors.
            ErrorScope::Stream(_) if self.block.is_some() => {
                Err(protocol_error("frame inside a field block"))
            }
            ErrorScope::Stream(_) if self.phase == Phase::FirstSettings => {
                Err(protocol_error("first frame is not SETTINGS"))
            }
            // §6.8: frames of streams above our final GOAWAY are ignored, broken or not.
            ErrorScope::Stream(stream) if self.shutdown.ignores(stream) => Ok(()),
            // §5.1: WINDOW_UPDATE on an idle stream is a connection error whatever its
            // increment; an RST_STREAM may not be sent on an idle stream (§6.4).
            ErrorScope::Stream(stream)
                if error.rule == FrameRule::ZeroWindowIncrement && self.is_idle(stream) =>
            {
                Err(protocol_error("WINDOW_UPDATE on an idle stream"))
            }
            ErrorScope::Stream(stream) => self.stream_error(stream, error.code),
        }
    }

    fn on_frame(&mut self, frame: Frame) -> Handled {
        if self.phase == Phase::FirstSettings {
            if !matches!(frame, Frame::Settings { ack: false, .. }) {
                return Err(protocol_error("first frame is not SETTINGS"));
            }
            self.phase = Phase::Frames;
        }
        if let Some(block) = &self.block {
            // §6.10: only CONTINUATION on the same stream may follow an open field block.
            let continues = matches!(
                &frame,
                Frame::Continuation { stream, .. } if *stream == block.head.stream
            );
            if !continues {
                return Err(protocol_error("frame inside a field block"));
            }
        }
        match frame {
            Frame::Data {
                stream,
                end_stream,
                pad_len,
                data,
            } => self.on_data(stream, end_stream, pad_len, data),
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                priority,
                fragment,
                ..
            } => self.on_headers(stream, end_stream, end_headers, priority, fragment),
            Frame::Continuation {
                end_headers,
                fragment,
                ..
            } => self.on_continuation(end_headers, fragment),
            Frame::Priority { stream, priority } => self.on_priority(stream, priority),
            Frame::RstStream { stream, code } => self.on_rst_stream(stream, code),
            Frame::Settings { ack, settings } => self.on_settings(ack, &settings),
            Frame::Ping { ack, data } => self.on_ping(ack, data),
            Frame::GoAway { code, .. } => self.on_goaway(code),
            Frame::WindowUpdate { stream, increment } => self.on_window_update(stream, increment),
            Frame::PushPromise { .. } => Err(protocol_error("client sent PUSH_PROMISE")),
            Frame::Unknown {
                kind: PRIORITY_UPDATE,
                stream,
                payload,
                ..
            } => self.on_priority_update(stream, payload),
            // §5.5: unknown frame types are ignored.
            Frame::Unknown { .. } => Ok(()),
        }
    }

    /// Whether `id` names a stream not opened yet (§5.1 idle).
    pub(super) fn is_idle(&self, id: StreamId) -> bool {
        if id % 2 == 1 {
            id > self.last_client_stream
        } else {
            id >= self.next_push_stream
        }
    }

    // ----- DATA -----

    fn on_data(
        &mut self,
        id: StreamId,
        end_stream: bool,
        pad_len: Option<u8>,
        data: Bytes,
    ) -> Handled {
        let padding = pad_len.map_or(0, |p| usize::from(p) + 1);
        let flow_len = data.len() + padding;
        if data.is_empty() && !end_stream {
            self.flood.note(Abuse::EmptyFrame, self.now)?;
        }
        // §6.9: DATA counts against the connection window whatever its stream's state.
        self.conn_recv
            .consume(flow_len)
            .map_err(|_| flow_error("connection flow-control window exceeded"))?;
        if self.shutdown.ignores(id) {
            // §6.8: ignored, but still counted by the connection window (then given back).
            self.release_connection(flow_len);
            return Ok(());
        }
        if self.is_idle(id) {
            return Err(protocol_error("DATA on an idle stream"));
        }
        let Some(stream) = self.streams.get(id) else {
            self.release_connection(flow_len);
            return self.on_closed_stream(id);
        };
        match stream.state {
            state if state.can_receive() => self.on_stream_data(id, end_stream, padding, data),
            StreamState::ResetPending => {
                self.release_connection(flow_len);
                self.on_reset_pending(id)
            }
            // §5.1: only RST_STREAM, PRIORITY and WINDOW_UPDATE may touch a reserved stream.
            StreamState::ReservedLocal => Err(protocol_error("DATA on a reserved stream")),
            _ => {
                self.release_connection(flow_len);
                self.stream_error(id, ErrorCode::StreamClosed)
            }
        }
    }

    /// DATA on a stream whose request body is open: its window, its length, the event.
    fn on_stream_data(
        &mut self,
        id: StreamId,
        end_stream: bool,
        padding: usize,
        data: Bytes,
    ) -> Handled {
        let flow_len = data.len() + padding;
        let Some(stream) = self.streams.get_mut(id) else {
            return Ok(());
        };
        if stream.recv_window.consume(flow_len).is_err() {
            self.release_connection(flow_len);
            return self.stream_error(id, ErrorCode::FlowControlError);
        }
        stream.body_active_at = self.now;
        // Padding carries nothing for the application: given back at once.
        let stream_update = stream.recv_window.release(padding);
        stream.body.received = stream
            .body
            .received
            .saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        let body = stream.body;
        if let Some(increment) = stream_update {
            self.output.window_update(id, increment);
        }
        self.release_connection(padding);
        let length_broken = body.declared.is_some_and(|declared| {
            body.received > declared || (end_stream && body.received != declared)
        });
        if length_broken {
            // §8.1.1: a body that does not add up to content-length is malformed.
            return self.stream_error(id, ErrorCode::ProtocolError);
        }
        if body.received > self.limits.max_body_size {
            self.reset_stream(id, ErrorCode::Cancel);
            return Ok(());
        }
        if !data.is_empty() || end_stream {
            let data = if data.len() < SHARE_AT_LEAST {
                Bytes::copy_from_slice(&data)
            } else {
                data
            };
            self.events.push_back(ServerEvent::Data {
                stream: id,
                data,
                end_stream,
            });
        }
        if end_stream {
            self.end_remote(id);
        }
        Ok(())
    }

    /// DATA or a field block on a stream that is closed and no longer stored.
    fn on_closed_stream(&mut self, id: StreamId) -> Handled {
        match self.streams.close_cause(id) {
            // §5.1: we reset it; the client may have sent this before it knew.
            Some(CloseCause::ResetByUs) => Ok(()),
            // §5.1: after END_STREAM or the client's own RST_STREAM, nothing may follow.
            _ => self.stream_error(id, ErrorCode::StreamClosed),
        }
    }

    /// A field block on a stream that is closed and no longer stored.
    fn on_closed_stream_headers(&mut self, id: StreamId) -> Handled {
        match self.streams.close_cause(id) {
            // §5.1: "an endpoint that receives any frames after receiving a frame with the
            // END_STREAM flag set MUST treat that as a connection error of type
            // STREAM_CLOSED". DATA keeps the stream error of the half-closed (remote) state it
            // would have met a moment earlier, which h2spec also accepts; a new field block is
            // the client trying to reuse a finished stream.
            Some(CloseCause::Finished) => Err(ConnectionError {
                code: ErrorCode::StreamClosed,
                reason: "HEADERS on a stream closed by END_STREAM",
            }),
            _ => self.on_closed_stream(id),
        }
    }

    /// DATA or a field block on a stored stream whose reset waits for the application:
    /// ignored if we reset it (the client may have sent it before it knew, §5.1), a stream
    /// error `STREAM_CLOSED` if the client did (it may send nothing after its RST_STREAM).
    fn on_reset_pending(&mut self, id: StreamId) -> Handled {
        let by_peer = self
            .streams
            .get(id)
            .and_then(|stream| stream.reset)
            .is_some_and(|(_, by_peer)| by_peer);
        if by_peer {
            self.stream_error(id, ErrorCode::StreamClosed)
        } else {
            Ok(())
        }
    }

    /// The client's side of a stored stream ended.
    pub(super) fn end_remote(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        match stream.state.end_remote() {
            Some(state) => stream.state = state,
            None => self.remove_stream(id, CloseCause::Finished),
        }
    }

    // ----- field blocks -----

    fn on_headers(
        &mut self,
        id: StreamId,
        end_stream: bool,
        end_headers: bool,
        priority: Option<Priority>,
        fragment: Bytes,
    ) -> Handled {
        if id % 2 == 0 {
            return Err(protocol_error("client used an even stream identifier"));
        }
        if fragment.is_empty() && !end_headers {
            self.flood.note(Abuse::EmptyFrame, self.now)?;
        }
        let head = BlockHead {
            stream: id,
            end_stream,
            self_dependent: priority.is_some_and(|p| p.dependency == id),
        };
        self.flood.check_block(0, fragment.len())?;
        if end_headers {
            return self.on_field_block(head, &fragment);
        }
        self.block = Some(FieldBlock {
            head,
            fragments: BytesMut::from(&fragment[..]),
            continuations: 0,
        });
        Ok(())
    }

    fn on_continuation(&mut self, end_headers: bool, fragment: Bytes) -> Handled {
        let Some(mut block) = self.block.take() else {
            return Err(protocol_error("CONTINUATION without a field block"));
        };
        if fragment.is_empty() && !end_headers {
            self.flood.note(Abuse::EmptyFrame, self.now)?;
        }
        block.continuations = block.continuations.saturating_add(1);
        block.fragments.extend_from_slice(&fragment);
        self.flood
            .check_block(block.continuations, block.fragments.len())?;
        if end_headers {
            let fragments = block.fragments.freeze();
            return self.on_field_block(block.head, &fragments);
        }
        self.block = Some(block);
        Ok(())
    }

    /// A complete field block: decoded first, whatever becomes of its stream, so the HPACK
    /// table stays in sync with the client's (§4.3).
    fn on_field_block(&mut self, head: BlockHead, block: &[u8]) -> Handled {
        // The list of the previous block is reused: a request costs no allocation for it.
        let mut fields = std::mem::take(&mut self.block_fields);
        fields.clear();
        // Sized for a typical request at once, rather than grown field by field.
        fields.reserve(block.len().min(FIELDS_PER_BLOCK));
        let handled = self.on_decoded_block(head, block, &mut fields);
        if fields.capacity() <= MAX_KEPT_FIELDS {
            // A list grown for an unusually long block is dropped rather than held for good.
            fields.clear();
            self.block_fields = fields;
        }
        handled
    }

    /// [`Self::on_field_block`], with `fields` the list to decode the block into.
    fn on_decoded_block(
        &mut self,
        head: BlockHead,
        block: &[u8],
        fields: &mut Vec<HeaderField>,
    ) -> Handled {
        let too_large = match self.decoder.decode_into(block, fields) {
            Ok(()) => false,
            Err(error) if error.keeps_table_in_sync() => true,
            Err(_) => {
                return Err(ConnectionError {
                    code: ErrorCode::CompressionError,
                    reason: "field block does not decode (HPACK)",
                });
            }
        };
        let id = head.stream;
        if self.streams.get(id).is_some() {
            return self.on_trailers(head, std::mem::take(fields), too_large);
        }
        if self.shutdown.ignores(id) {
            // §6.8: streams above our final GOAWAY's last-stream-id are ignored.
            self.last_client_stream = self.last_client_stream.max(id);
            return Ok(());
        }
        if id <= self.last_client_stream {
            return match self.streams.close_cause(id) {
                Some(_) => self.on_closed_stream_headers(id),
                // §5.1.1: a new stream must have a higher identifier than all before it.
                None => Err(protocol_error("stream identifier not increasing")),
            };
        }
        self.last_client_stream = id;
        self.open_stream(head, fields, too_large)
    }

    /// A field block opening stream `head.stream`.
    fn open_stream(
        &mut self,
        head: BlockHead,
        fields: &mut Vec<HeaderField>,
        too_large: bool,
    ) -> Handled {
        let id = head.stream;
        let max_streams =
            usize::try_from(self.limits.h2.max_concurrent_streams).unwrap_or(usize::MAX);
        if self.streams.client_streams() >= max_streams {
            // §5.1.2: past our SETTINGS_MAX_CONCURRENT_STREAMS.
            return self.stream_error(id, ErrorCode::RefusedStream);
        }
        if self.accepted_streams >= self.limits.h2.max_streams_per_connection {
            // The connection served its share; the GOAWAY saying so may not have reached the
            // client yet. Refused, it retries the request elsewhere (§8.7): not its fault, so
            // not counted as a stream error.
            self.reset_stream(id, ErrorCode::RefusedStream);
            self.start_goaway();
            return Ok(());
        }
        // Refused streams were not processed (§8.7); from here on, this one is.
        self.last_processed_stream = id;
        if head.self_dependent {
            return self.stream_error(id, ErrorCode::ProtocolError);
        }
        if too_large {
            // §10.5.1: the table is in sync, so only this request is refused, with 431.
            self.refuse_with_status(
                id,
                http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                head.end_stream,
            );
            return self.flood.note_stream_error(self.now);
        }
        let Ok(request) = headers::request_head(fields.drain(..), true, self.limits.max_headers)
        else {
            return self.stream_error(id, ErrorCode::ProtocolError);
        };
        if head.end_stream && request.content_length.is_some_and(|length| length != 0) {
            // §8.1.1: END_STREAM on HEADERS means a body of 0 bytes.
            return self.stream_error(id, ErrorCode::ProtocolError);
        }
        if request
            .content_length
            .is_some_and(|length| length > self.limits.max_body_size)
        {
            self.refuse_with_status(id, http::StatusCode::PAYLOAD_TOO_LARGE, head.end_stream);
            return Ok(());
        }
        let state = if head.end_stream {
            StreamState::HalfClosedRemote
        } else {
            StreamState::Open
        };
        let window = self.stream_recv_window;
        let mut stream = Stream::new(
            state,
            self.peer.initial_window_size,
            RecvWindow::new(window, window),
            self.now,
        );
        stream.body.declared = request.content_length;
        stream.is_head = request.method == http::Method::HEAD;
        stream.is_tunnel = request.method == http::Method::CONNECT;
        self.streams.insert(id, stream);
        self.idle_since = None;
        if !head.end_stream && self.body_check_at.is_none() {
            self.body_check_at = deadline(self.now, self.limits.body_idle_timeout);
        }
        self.accepted_streams = self.accepted_streams.saturating_add(1);
        self.events.push_back(ServerEvent::Request {
            stream: id,
            head: Box::new(request),
            end_stream: head.end_stream,
        });
        if self.accepted_streams >= self.limits.h2.max_streams_per_connection {
            // Enough streams for one connection: drain it (and stay far from exhausting the
            // stream identifiers).
            self.start_goaway();
        }
        Ok(())
    }

    /// A field block on a stored stream: the request's trailers, or a rule broken.
    fn on_trailers(
        &mut self,
        head: BlockHead,
        fields: Vec<HeaderField>,
        too_large: bool,
    ) -> Handled {
        let id = head.stream;
        let Some(stream) = self.streams.get(id) else {
            return Ok(());
        };
        match stream.state {
            StreamState::ResetPending => return self.on_reset_pending(id),
            state if !state.can_receive() => {
                // §5.1: half-closed (remote), nothing more may come from the client.
                return self.stream_error(id, ErrorCode::StreamClosed);
            }
            _ => {}
        }
        let body = stream.body;
        let length_broken = body
            .declared
            .is_some_and(|declared| declared != body.received);
        // §8.1: trailers must end the stream.
        if !head.end_stream || head.self_dependent || too_large || length_broken {
            return self.stream_error(id, ErrorCode::ProtocolError);
        }
        let Ok(trailers) = headers::trailers(fields, self.limits.max_headers) else {
            return self.stream_error(id, ErrorCode::ProtocolError);
        };
        self.events.push_back(ServerEvent::Trailers {
            stream: id,
            trailers,
        });
        self.end_remote(id);
        Ok(())
    }

    // ----- control frames -----

    fn on_priority(&mut self, id: StreamId, priority: Priority) -> Handled {
        self.flood.note(Abuse::Priority, self.now)?;
        if priority.dependency == id && !self.shutdown.ignores(id) {
            // §5.3.1: a stream cannot depend on itself.
            return self.stream_error(id, ErrorCode::ProtocolError);
        }
        // §5.3.2: the deprecated scheme is otherwise ignored.
        Ok(())
    }

    fn on_priority_update(&mut self, stream: StreamId, payload: Bytes) -> Handled {
        self.flood.note(Abuse::Priority, self.now)?;
        // RFC 9218 §7.1: on stream 0 only, with a non-zero prioritized stream.
        if stream != 0 {
            return Err(protocol_error("PRIORITY_UPDATE on a stream"));
        }
        let Some((id, value)) = payload.split_first_chunk::<4>() else {
            return Err(ConnectionError {
                code: ErrorCode::FrameSizeError,
                reason: "PRIORITY_UPDATE too short",
            });
        };
        let id = u32::from_be_bytes(*id) & super::MAX_STREAM_ID;
        if id == 0 {
            return Err(protocol_error("PRIORITY_UPDATE for stream 0"));
        }
        let live = self
            .streams
            .get(id)
            .is_some_and(|s| s.state != StreamState::ResetPending);
        if live {
            self.events.push_back(ServerEvent::PriorityUpdate {
                stream: id,
                priority: PrioritySignal::parse(value),
            });
        }
        Ok(())
    }

    fn on_rst_stream(&mut self, id: StreamId, code: ErrorCode) -> Handled {
        if self.shutdown.ignores(id) {
            return Ok(());
        }
        if self.is_idle(id) {
            return Err(protocol_error("RST_STREAM on an idle stream"));
        }
        let Some(stream) = self.streams.get(id) else {
            // Closed: it may have crossed our own END_STREAM or RST_STREAM.
            return Ok(());
        };
        if stream.state == StreamState::ResetPending {
            return Ok(());
        }
        // Only requests count as rapid resets: refusing our pushes is the client's right
        // (§8.4.2), however many we promised.
        let counted = id % 2 == 1 && stream.response_unfinished();
        self.mark_reset(id, code, true);
        if counted {
            self.flood.note(Abuse::ClientReset, self.now)?;
        }
        Ok(())
    }

    fn on_settings(&mut self, ack: bool, settings: &Settings) -> Handled {
        self.flood.note(Abuse::Settings, self.now)?;
        if ack {
            if self.settings_deadline.take().is_some() {
                self.local_settings_acknowledged();
            }
            return Ok(());
        }
        let before = self.peer.initial_window_size;
        self.apply_peer_settings(settings);
        let delta = i64::from(self.peer.initial_window_size) - i64::from(before);
        if delta != 0 {
            // §6.9.2: every stream's send window moves by the difference.
            for (&id, stream) in self.streams.iter_mut() {
                if stream.send_window.adjust(delta).is_err() {
                    return Err(flow_error(
                        "SETTINGS_INITIAL_WINDOW_SIZE overflowed a window",
                    ));
                }
                if !stream.send_window.is_closed() {
                    if let Some(since) = stream.stalled_since.take() {
                        self.stalled.remove(&(since, id));
                    }
                }
            }
        }
        self.output.settings_ack();
        Ok(())
    }

    /// Applies the client's SETTINGS to what we send.
    pub(super) fn apply_peer_settings(&mut self, settings: &Settings) {
        self.peer.apply(settings);
        self.encoder
            .set_max_table_size(super::to_usize(self.peer.header_table_size));
        self.output.set_max_frame_size(self.peer.max_frame_size);
    }

    /// The client acknowledged our SETTINGS: our header table size and initial window now
    /// bind it.
    fn local_settings_acknowledged(&mut self) {
        let h2 = &self.limits.h2;
        self.decoder
            .set_max_table_size(super::to_usize(h2.header_table_size));
        let window = h2.initial_window_size;
        self.stream_recv_window = window;
        for (_, stream) in self.streams.iter_mut() {
            stream.recv_window.retarget(window);
        }
    }

    fn on_ping(&mut self, ack: bool, data: [u8; 8]) -> Handled {
        if ack && self.take_shutdown_ack(data) {
            // The answer to our own PING: not the client's to pay for.
            return Ok(());
        }
        self.flood.note(Abuse::Ping, self.now)?;
        if !ack {
            self.output.ping_ack(data);
        }
        Ok(())
    }

    fn on_goaway(&mut self, code: ErrorCode) -> Handled {
        if let Some(previous) = self.peer_goaway {
            // §6.8 allows several GOAWAYs, but after the first they tell little: counted as
            // frames without progress, so that they cannot become a flood of events, and
            // reported only when the code changes.
            self.flood.note(Abuse::EmptyFrame, self.now)?;
            if previous == code {
                return Ok(());
            }
        }
        self.peer_goaway = Some(code);
        self.events.push_back(ServerEvent::GoAway { code });
        self.close_if_drained();
        Ok(())
    }

    fn on_window_update(&mut self, id: StreamId, increment: u32) -> Handled {
        self.flood.note(Abuse::WindowUpdate, self.now)?;
        if id == 0 {
            self.conn_send
                .grow(increment)
                .map_err(|_| flow_error("connection window above 2^31-1"))?;
            if !self.conn_send.is_closed() {
                self.conn_stalled_since = None;
            }
            return Ok(());
        }
        if self.shutdown.ignores(id) {
            return Ok(());
        }
        if self.is_idle(id) {
            return Err(protocol_error("WINDOW_UPDATE on an idle stream"));
        }
        let Some(stream) = self.streams.get_mut(id) else {
            return Ok(());
        };
        if stream.state == StreamState::ResetPending {
            return Ok(());
        }
        if stream.send_window.grow(increment).is_err() {
            // §6.9.1: a stream window above 2^31-1 is a stream error.
            return self.stream_error(id, ErrorCode::FlowControlError);
        }
        if !stream.send_window.is_closed() {
            if let Some(since) = stream.stalled_since.take() {
                self.stalled.remove(&(since, id));
            }
        }
        Ok(())
    }
}
