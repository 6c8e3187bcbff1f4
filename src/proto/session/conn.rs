//! The connection layer both session roles stand on (RTMP 1.0 §5.2, §5.3,
//! §5.4): the handshake in either role, the chunk decoder and encoder, the
//! acknowledgement window (§5.4.3, §5.4.4) and ping answers (§6.2), sans-IO.
//!
//! A [`Connection`] takes received bytes and hands out raw messages
//! ([`ConnEvent::Chunk`], the decoder's events, Set Chunk Size already
//! applied) without decoding their bodies, and sends messages byte for byte
//! ([`Connection::send_raw`]): a relay forwards payloads it never re-encodes.
//! [`super::ClientSession`] and [`super::ServerSession`] give the messages
//! their meaning.

use bytes::{Bytes, BytesMut};

use crate::proto::chunk::{
    ChunkDecoder, ChunkEncoder, ChunkEvent, DecoderConfig, MessageHeader, ReserveBudget,
};
use crate::proto::handshake::{
    ClientHandshake, HandshakeConfig, HandshakeOutcome, ServerHandshake,
};
use crate::proto::message::{Message, MessageType, UserControl};

use super::SessionError;

/// Chunk stream used for protocol control and user control messages (§5.4).
const CSID_CONTROL: u32 = 2;

/// Which side of the handshake we are.
#[derive(Debug, Clone)]
enum Handshake {
    Client(ClientHandshake),
    Server(ServerHandshake),
}

/// What the connection layer reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnEvent {
    /// The handshake completed.
    Handshake(HandshakeOutcome),
    /// A chunk-layer event: a complete raw message, a chunk size change, an
    /// abort.
    Chunk(ChunkEvent),
}

/// Handshake, chunk streams, acknowledgements and pings of one RTMP
/// connection in either role. See the module documentation.
#[derive(Debug)]
pub struct Connection {
    handshake: Handshake,
    hs_buf: BytesMut,
    handshaken: bool,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    transmit: BytesMut,
    /// Bytes received after the handshake, for Acknowledgements (wraps).
    received: u64,
    acked: u64,
    peer_window: Option<u32>,
    /// Bytes sent after the handshake.
    sent: u64,
}

impl Connection {
    fn new(
        handshake: Handshake,
        budget: Option<std::sync::Arc<ReserveBudget>>,
        max_partial: usize,
    ) -> Self {
        Connection {
            handshake,
            hs_buf: BytesMut::new(),
            handshaken: false,
            decoder: ChunkDecoder::new(DecoderConfig {
                start_offset: 3073,
                reserve_budget: budget,
                max_partial_bytes: max_partial,
                ..DecoderConfig::default()
            }),
            encoder: ChunkEncoder::default(),
            transmit: BytesMut::new(),
            received: 0,
            acked: 0,
            peer_window: None,
            sent: 0,
        }
    }

    /// The client side: C0+C1 are ready to send at once.
    pub fn client(
        config: HandshakeConfig,
        now_ms: u32,
        random: &mut impl FnMut(&mut [u8]),
    ) -> Self {
        Self::new(
            Handshake::Client(ClientHandshake::new(config, now_ms, random)),
            None,
            DecoderConfig::default().max_partial_bytes,
        )
    }

    /// The server side: waits for C0+C1. Partial messages of every server
    /// connection draw on `budget`, when given (one per process); one
    /// connection holds at most `max_partial` bytes of them.
    pub fn server(
        config: HandshakeConfig,
        now_ms: u32,
        random: &mut impl FnMut(&mut [u8]),
        budget: Option<std::sync::Arc<ReserveBudget>>,
        max_partial: usize,
    ) -> Self {
        Self::new(
            Handshake::Server(ServerHandshake::new(config, now_ms, random)),
            budget,
            max_partial,
        )
    }

    /// Whether the handshake has completed.
    pub fn is_handshaken(&self) -> bool {
        self.handshaken
    }

    /// The chunk size the peer sends with.
    pub fn peer_chunk_size(&self) -> u32 {
        self.decoder.chunk_size()
    }

    /// The chunk size we send with.
    pub fn chunk_size(&self) -> u32 {
        self.encoder.chunk_size()
    }

    /// Bytes received after the handshake.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Bytes queued for sending after the handshake, in all.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The peer's Window Acknowledgement Size, once it sent one.
    pub fn peer_window(&self) -> Option<u32> {
        self.peer_window
    }

    /// Bytes held in messages the peer has not finished.
    pub fn partial_bytes(&self) -> usize {
        self.decoder.partial_bytes()
    }

    /// Bytes to write to the peer, if any; handshake bytes always come first.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        let hs = match &mut self.handshake {
            Handshake::Client(h) => h.poll_transmit(),
            Handshake::Server(h) => h.poll_transmit(),
        };
        if let Some(hs) = hs {
            let mut b = BytesMut::from(&hs[..]);
            b.extend_from_slice(&self.transmit.split());
            return Some(b.freeze());
        }
        if self.transmit.is_empty() {
            None
        } else {
            Some(self.transmit.split().freeze())
        }
    }

    /// The bytes queued to send, to be written in place (no copy, no
    /// allocation per write); [`Connection::transmit_consumed`] then drops
    /// what was written. Only after the handshake's bytes have gone out
    /// through [`Connection::poll_transmit`]; empty until then.
    pub fn transmit_queued(&self) -> &[u8] {
        if self.handshaken { &self.transmit } else { &[] }
    }

    /// Drops the first `n` bytes of [`Connection::transmit_queued`] (written).
    pub fn transmit_consumed(&mut self, n: usize) {
        let n = n.min(self.transmit.len());
        bytes::Buf::advance(&mut self.transmit, n);
    }

    /// Bytes queued to send (not counting handshake bytes).
    pub fn transmit_len(&self) -> usize {
        self.transmit.len()
    }

    /// The buffer the next received bytes belong in, with at least `want`
    /// bytes of spare capacity; see [`Connection::handle_received`].
    pub fn receive_buffer(&mut self, want: usize) -> &mut BytesMut {
        let b = if self.handshaken {
            self.decoder.buffer_mut()
        } else {
            &mut self.hs_buf
        };
        b.reserve(want);
        b
    }

    /// Accounts for `n` bytes a driver appended to
    /// [`Connection::receive_buffer`]; then call [`Connection::poll`].
    pub fn handle_received(&mut self, n: usize) {
        if self.handshaken {
            self.received += n as u64;
        }
    }

    /// Feeds bytes received from the peer; then call [`Connection::poll`].
    pub fn handle_input(&mut self, data: &[u8]) {
        if self.handshaken {
            self.received += data.len() as u64;
            self.decoder.push(data);
        } else {
            self.hs_buf.extend_from_slice(data);
        }
    }

    /// The next event from what was received, or `None` when more bytes are
    /// needed (an Acknowledgement due is queued then). Window Acknowledgement
    /// Size is taken note of and ping requests are answered here; both are
    /// still reported.
    pub fn poll(&mut self, now_ms: u32) -> Result<Option<ConnEvent>, SessionError> {
        if !self.handshaken {
            let done = match &mut self.handshake {
                Handshake::Client(h) => h.handle_input(&mut self.hs_buf, now_ms)?,
                Handshake::Server(h) => h.handle_input(&mut self.hs_buf, now_ms)?,
            };
            let Some(outcome) = done else {
                return Ok(None);
            };
            self.handshaken = true;
            // Whatever followed C2/S2 in the same read is chunk data.
            let rest = self.hs_buf.split();
            self.hs_buf = BytesMut::new();
            self.received += rest.len() as u64;
            self.decoder.push(&rest);
            return Ok(Some(ConnEvent::Handshake(outcome)));
        }
        match self.decoder.poll()? {
            Some(ev) => {
                if let ChunkEvent::Message(m) = &ev {
                    self.control(m.header.msg_type, &m.payload);
                }
                Ok(Some(ConnEvent::Chunk(ev)))
            }
            None => {
                self.maybe_ack();
                Ok(None)
            }
        }
    }

    /// Protocol control the connection layer answers itself.
    fn control(&mut self, t: MessageType, payload: &[u8]) {
        match t {
            MessageType::WINDOW_ACK_SIZE if payload.len() >= 4 => {
                self.peer_window = Some(u32::from_be_bytes([
                    payload[0], payload[1], payload[2], payload[3],
                ]));
            }
            // User control event 6, Ping Request: answer with event 7 and
            // the same timestamp (§6.2).
            MessageType::USER_CONTROL if payload.len() >= 6 && payload[..2] == [0, 6] => {
                let t = u32::from_be_bytes([payload[2], payload[3], payload[4], payload[5]]);
                self.send(
                    CSID_CONTROL,
                    0,
                    0,
                    &Message::UserControl(UserControl::PingResponse(t)),
                );
            }
            _ => {}
        }
    }

    fn maybe_ack(&mut self) {
        if let Some(window) = self.peer_window {
            // Acknowledge once a window's worth arrived since the last one
            // (§5.4.3); the sequence number is the total, modulo 2^32.
            if window > 0 && self.received - self.acked >= u64::from(window) {
                self.acked = self.received;
                let sequence = self.received as u32;
                self.send(CSID_CONTROL, 0, 0, &Message::Acknowledgement { sequence });
            }
        }
    }

    /// Sends a message whose body is `payload`, byte for byte, on chunk
    /// stream `csid`.
    pub fn send_raw(&mut self, csid: u32, header: &MessageHeader, payload: &[u8]) {
        let before = self.transmit.len();
        // Room for all of it at once: growing with each chunk would copy
        // the buffer again and again.
        self.transmit
            .reserve(self.encoder.max_encoded_len(payload.len()));
        self.encoder
            .encode(csid, header, payload, &mut self.transmit);
        self.sent += (self.transmit.len() - before) as u64;
    }

    /// Encodes and sends a message.
    pub fn send(&mut self, csid: u32, stream_id: u32, timestamp: u32, msg: &Message) {
        let header = MessageHeader {
            timestamp,
            msg_type: msg.msg_type(),
            stream_id,
        };
        self.send_raw(csid, &header, &msg.encode());
    }

    /// Forgets the header state of our chunk streams (next messages go with
    /// type 0 headers); the chunk size stays.
    pub fn reset_encoder(&mut self) {
        self.encoder.reset();
    }

    /// Announces `size` with Set Chunk Size and chunks at it from then on
    /// (clamped to 1..=2^31-1; nothing is sent when it is already in force).
    pub fn set_chunk_size(&mut self, size: u32) {
        let size = size.clamp(1, 0x7FFF_FFFF);
        if size != self.encoder.chunk_size() {
            self.send(CSID_CONTROL, 0, 0, &Message::SetChunkSize(size));
            self.encoder.set_chunk_size(size);
        }
    }
}
