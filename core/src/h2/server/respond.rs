//! The application's answers: response heads, body data under flow control, trailers and
//! pushes (RFC 9113 §8.1, §8.4), each checked against the stream's state first.

use http::header::{CONTENT_LENGTH, DATE};
use http::{HeaderMap, Method, StatusCode, Uri};

use super::super::flow::RecvWindow;
use super::super::headers;
use super::super::output::BlockStart;
use super::super::stream::{CloseCause, Response, Stream, StreamState};
use super::{MAX_STREAM_ID, SendError, ServerConnection, StreamId};
use crate::hpack::HeaderField;

impl ServerConnection {
    /// The stream `id` as open for our response, or why not.
    fn sendable(&self, id: StreamId) -> Result<&Stream, SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        let stream = self.streams.get(id).ok_or(SendError::StreamClosed)?;
        match stream.state {
            StreamState::ResetPending => Err(SendError::StreamClosed),
            StreamState::HalfClosedLocal => Err(SendError::InvalidState),
            _ => Ok(stream),
        }
    }

    pub(super) fn respond_head(
        &mut self,
        id: StreamId,
        status: StatusCode,
        headers: &HeaderMap,
        end_stream: bool,
    ) -> Result<(), SendError> {
        let stream = self.sendable(id)?;
        if stream.response != Response::AwaitingHead {
            return Err(SendError::InvalidState);
        }
        if status.is_informational() {
            // §8.1: interim responses never end the stream; §8.6: no 101 in HTTP/2.
            if end_stream || status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(SendError::InvalidState);
            }
            self.write_head(id, status, headers, false, false);
            return Ok(());
        }
        let bodiless = stream.is_head
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let response = if bodiless {
            Response::Suppressed
        } else {
            let remaining = declared_length(headers);
            Response::Body {
                remaining,
                exact: remaining.is_some(),
            }
        };
        let owes_body = matches!(response, Response::Body { remaining: Some(r), .. } if r > 0);
        if end_stream && owes_body {
            return Err(SendError::ContentLengthMismatch);
        }
        self.write_head(id, status, headers, end_stream, true);
        if let Some(stream) = self.streams.get_mut(id) {
            if stream.state == StreamState::ReservedLocal {
                // §5.1: our HEADERS opens a pushed stream, half-closed (remote).
                stream.state = StreamState::HalfClosedRemote;
            }
            stream.response = response;
        }
        if end_stream {
            self.end_local(id);
        }
        Ok(())
    }

    /// Writes a response head; `date` adds the `date` field when the headers have none.
    fn write_head(
        &mut self,
        id: StreamId,
        status: StatusCode,
        headers: &HeaderMap,
        end_stream: bool,
        date: bool,
    ) {
        let date = match &self.date {
            Some(field) if date && !headers.contains_key(DATE) => Some(field),
            _ => None,
        };
        let start = BlockStart::Headers { end_stream };
        let cache = &mut self.head_cache;
        cache.start();
        cache.push_field(b":status", headers::status_digits(status), false);
        for (name, value, sensitive) in headers::outgoing(headers) {
            cache.push_field(name.as_str().as_bytes(), value.as_bytes(), sensitive);
        }
        if let Some(field) = date {
            cache.push_field(&field.name, &field.value, field.sensitive);
        }
        let encoder = &mut self.encoder;
        let version = encoder.state_version();
        if let Some(block) = cache.block(version) {
            // The head we sent last, in the same encoder state: the same bytes again.
            self.output
                .field_block(id, start, |buf| buf.extend_from_slice(block));
            return;
        }
        // Encoded straight from the application's map: no field is copied for it.
        self.output.field_block(id, start, |buf| {
            let begin = buf.len();
            encoder.start_block(buf);
            encoder.encode_borrowed(b":status", headers::status_digits(status), false, buf);
            for (name, value, sensitive) in headers::outgoing(headers) {
                encoder.encode_borrowed(name.as_str().as_bytes(), value.as_bytes(), sensitive, buf);
            }
            if let Some(field) = date {
                encoder.encode_field(field, buf);
            }
            match buf.get(begin..) {
                Some(block) if encoder.state_version() == version => cache.keep(version, block),
                _ => cache.forget(),
            }
        });
    }

    fn write_fields(&mut self, id: StreamId, start: BlockStart, fields: &[HeaderField]) {
        let encoder = &mut self.encoder;
        self.output
            .field_block(id, start, |buf| encoder.encode(fields, buf));
    }

    /// Answers a request the application never sees with `status` and no body; asks the
    /// client to stop sending (RST_STREAM `NO_ERROR`, §8.1) when its side is still open.
    pub(super) fn refuse_with_status(
        &mut self,
        id: StreamId,
        status: StatusCode,
        client_done: bool,
    ) {
        self.write_head(id, status, &HeaderMap::new(), true, true);
        if !client_done {
            self.output
                .rst_stream(id, super::super::error::ErrorCode::NoError);
        }
        self.streams.remember_reset(id);
    }

    pub(super) fn respond_data(
        &mut self,
        id: StreamId,
        data: &[u8],
        end_stream: bool,
    ) -> Result<usize, SendError> {
        let stream = self.sendable(id)?;
        let (remaining, exact) = match stream.response {
            Response::Body { remaining, exact } => (remaining, exact),
            Response::Suppressed => return Ok(self.suppress_data(id, data.len(), end_stream)),
            Response::AwaitingHead | Response::Done => return Err(SendError::InvalidState),
        };
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        let too_long = remaining.is_some_and(|r| len > r);
        let too_short = end_stream && exact && remaining.is_some_and(|r| len < r);
        if too_long || too_short {
            return Err(SendError::ContentLengthMismatch);
        }
        if data.is_empty() && !end_stream {
            return Ok(0);
        }
        let window = stream
            .send_window
            .available()
            .min(self.conn_send.available());
        let room = self
            .limits
            .max_buffered_output
            .saturating_sub(self.output.len());
        let taken = data.len().min(window).min(room);
        if taken == 0 && !data.is_empty() {
            if window <= room {
                self.note_stall(id);
            }
            return Ok(0);
        }
        let fin = end_stream && taken == data.len();
        let chunk = data.get(..taken).unwrap_or_default();
        self.output.data(id, chunk, fin);
        self.conn_send.consume(taken);
        if let Some(stream) = self.streams.get_mut(id) {
            stream.send_window.consume(taken);
            stream.response = Response::Body {
                remaining: remaining
                    .map(|r| r.saturating_sub(u64::try_from(taken).unwrap_or(u64::MAX))),
                exact,
            };
        }
        if taken < data.len() && window <= room {
            self.note_stall(id);
        }
        if fin {
            self.end_local(id);
        }
        Ok(taken)
    }

    /// Body bytes for a response without a body: dropped, the stream ended when asked.
    fn suppress_data(&mut self, id: StreamId, len: usize, end_stream: bool) -> usize {
        if end_stream {
            self.output.data(id, &[], true);
            self.end_local(id);
        }
        len
    }

    /// A response on `id` has data waiting and no window to send it: the stall timer starts,
    /// on the connection if its window is the one at zero, else on the stream.
    fn note_stall(&mut self, id: StreamId) {
        let now = self.now;
        if self.conn_send.is_closed() {
            self.conn_stalled_since.get_or_insert(now);
            return;
        }
        if let Some(stream) = self.streams.get_mut(id) {
            if stream.send_window.is_closed() && stream.stalled_since.is_none() {
                stream.stalled_since = Some(now);
                self.stalled.insert((now, id));
            }
        }
    }

    pub(super) fn data_capacity(&self, id: StreamId) -> usize {
        let Ok(stream) = self.sendable(id) else {
            return 0;
        };
        let remaining = match stream.response {
            Response::Body { remaining, .. } => remaining,
            // Anything is taken, and dropped.
            Response::Suppressed => return usize::MAX,
            Response::AwaitingHead | Response::Done => return 0,
        };
        let room = self
            .limits
            .max_buffered_output
            .saturating_sub(self.output.len());
        let mut capacity = stream
            .send_window
            .available()
            .min(self.conn_send.available())
            .min(room);
        if let Some(remaining) = remaining {
            capacity = capacity.min(usize::try_from(remaining).unwrap_or(usize::MAX));
        }
        capacity
    }

    pub(super) fn respond_trailers(
        &mut self,
        id: StreamId,
        trailers: &HeaderMap,
    ) -> Result<(), SendError> {
        let stream = self.sendable(id)?;
        match stream.response {
            Response::Body {
                remaining: Some(remaining),
                exact: true,
            } if remaining > 0 => return Err(SendError::ContentLengthMismatch),
            Response::Body { .. } => {}
            Response::Suppressed => {
                self.suppress_data(id, 0, true);
                return Ok(());
            }
            Response::AwaitingHead | Response::Done => return Err(SendError::InvalidState),
        }
        let mut fields = std::mem::take(&mut self.fields);
        fields.clear();
        headers::trailer_fields(trailers, &mut fields);
        if fields.is_empty() {
            // Nothing left to say: an empty DATA frame ends the stream.
            self.output.data(id, &[], true);
        } else {
            self.write_fields(id, BlockStart::Headers { end_stream: true }, &fields);
        }
        fields.clear();
        self.fields = fields;
        self.end_local(id);
        Ok(())
    }

    /// We sent END_STREAM on `id`.
    fn end_local(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        stream.response = Response::Done;
        if let Some(since) = stream.stalled_since.take() {
            self.stalled.remove(&(since, id));
        }
        match stream.state.end_local() {
            Some(state) => stream.state = state,
            None => self.remove_stream(id, CloseCause::Finished),
        }
    }

    pub(super) fn promise(
        &mut self,
        id: StreamId,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<StreamId, SendError> {
        let stream = self.sendable(id)?;
        if id % 2 == 0 || stream.response == Response::Done {
            // §8.4: pushes are associated with a request the client opened.
            return Err(SendError::InvalidState);
        }
        let peer_limit = usize::try_from(self.peer.max_concurrent_streams).unwrap_or(usize::MAX);
        let refused = !self.peer.enable_push
            || self.peer_goaway.is_some()
            || self.shutdown.has_started()
            || self.next_push_stream > MAX_STREAM_ID
            || self.streams.pushed_streams() >= peer_limit;
        if refused {
            return Err(SendError::PushRefused);
        }
        let mut fields = std::mem::take(&mut self.fields);
        fields.clear();
        let built = headers::push_request_fields(method, uri, headers, &mut fields);
        if built.is_err() {
            fields.clear();
            self.fields = fields;
            return Err(SendError::PushRefused);
        }
        let promised = self.next_push_stream;
        self.next_push_stream = promised.saturating_add(2);
        self.write_fields(id, BlockStart::PushPromise(promised), &fields);
        fields.clear();
        self.fields = fields;
        let mut pushed = Stream::new(
            StreamState::ReservedLocal,
            self.peer.initial_window_size,
            RecvWindow::new(0, 0),
            self.now,
        );
        pushed.is_head = *method == Method::HEAD;
        self.streams.insert(promised, pushed);
        Ok(promised)
    }
}

/// The `content-length` of a response, when it is a plain number.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse().ok())
}
