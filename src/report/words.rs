//! The words for the analyzer's typed records: one function gives the text
//! that both the human line and the JSON `message` carry, and a stable code
//! per kind (`"code"` in JSON), so the two never diverge.

use rtmptool::analyze::{AfterGap, CloseKind, GapReason, RecordKind, SyncCause};
use rtmptool::capture::tcp::Dir;
use rtmptool::proto::chunk::Type3ExtendedTimestamp;
use rtmptool::proto::handshake::describe_bad_version;

/// `c2s` or `s2c`.
pub fn dir_name(d: Dir) -> &'static str {
    match d {
        Dir::C2s => "c2s",
        Dir::S2c => "s2c",
    }
}

/// How many of a capture's packets were not decoded, and why: "412 of
/// 5000 packet(s) not decoded: 412 in an encapsulation rtmptool does not
/// decode (ethertype 0x88b5)" (`dump`'s end of capture, `diagnose`).
pub fn not_decoded(undecodable: u64, packets: u64, reasons: &[(String, u64)]) -> String {
    let why: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    format!(
        "{undecodable} of {packets} packet(s) not decoded: {}",
        why.join("; ")
    )
}

/// A stable machine name for a record kind that is not a message or handshake.
pub fn code(kind: &RecordKind) -> &'static str {
    match kind {
        RecordKind::Open { .. } => "connection",
        RecordKind::MidStream => "mid_stream",
        RecordKind::Handshake(_) => "handshake",
        RecordKind::BadVersion { .. } => "bad_version",
        RecordKind::Chunk(_) => "chunk",
        RecordKind::Message { .. } => "message",
        RecordKind::ChunkSizeChanged { .. } => "chunk_size_changed",
        RecordKind::InvalidChunkSize { .. } => "invalid_chunk_size",
        RecordKind::Type3Convention { .. } => "type3_convention",
        RecordKind::Aborted { .. } => "aborted",
        RecordKind::Interrupted { .. } => "interrupted",
        RecordKind::Gap { .. } => "gap",
        RecordKind::Inconsistent { .. } => "inconsistent_retransmission",
        RecordKind::Resynced { .. } => "resynced",
        RecordKind::NoBoundary { .. } => "no_chunk_boundary",
        RecordKind::Damaged(_) => "damaged_message",
        RecordKind::ChunkError { .. } => "chunk_error",
        RecordKind::Closed { .. } => "closed",
        RecordKind::End { .. } => "connection_end",
        RecordKind::EndOfCapture { .. } => "end_of_capture",
        RecordKind::Undecodable { .. } => "undecodable",
        RecordKind::Evicted => "evicted",
        RecordKind::RtmfpSession { .. } => "rtmfp_session",
        RecordKind::Rtmfp(_) => "rtmfp_packet",
    }
}

fn gap_reason(r: GapReason) -> &'static str {
    match r {
        GapReason::Truncated => "the capture's snaplen cut a segment",
        GapReason::AckedUnseen => {
            "the receiver acknowledged bytes the capture never saw, and they never arrived"
        }
        GapReason::NotCaptured => "the bytes never arrived in the capture",
        GapReason::BufferLimit => "too much out-of-order data waited for a hole",
        GapReason::Reset => "the connection was reset",
        GapReason::Evicted => "too many connections: this one was evicted",
        GapReason::Reused => "a new connection reused the addresses",
        GapReason::EndOfCapture => "the capture ended",
    }
}

/// The sentence for a record, `None` for messages, handshake packets, chunks
/// and connection records (their renderers lay them out field by field).
pub fn describe(kind: &RecordKind, dir: Option<Dir>) -> Option<String> {
    let name = dir.map_or("", dir_name);
    Some(match kind {
        RecordKind::MidStream => "capture starts mid-connection: no handshake seen; looking for \
             chunk boundaries in each direction (stream offsets count from the first byte \
             captured)"
            .into(),
        RecordKind::BadVersion { version, head } => {
            let what = describe_bad_version(*version, head);
            let packet = if dir == Some(Dir::S2c) { "S0" } else { "C0" };
            format!(
                "{packet} version byte 0x{version:02x} is not 3 ({what}); {name} is not decoded further"
            )
        }
        RecordKind::ChunkSizeChanged { old, new } => {
            format!("{name}: chunk size {old} -> {new}")
        }
        RecordKind::InvalidChunkSize { raw } => {
            format!(
                "{name}: Set Chunk Size {raw} cannot be applied; the chunk size stays as it was"
            )
        }
        RecordKind::Type3Convention { csid, convention } => match convention {
            Type3ExtendedTimestamp::Present => format!(
                "{name}: type-3 continuation chunks repeat the extended timestamp (csid {csid}), as RTMP 1.0 §5.3.1.3 says"
            ),
            Type3ExtendedTimestamp::Absent => format!(
                "{name}: type-3 continuation chunks omit the extended timestamp (csid {csid}), unlike RTMP 1.0 §5.3.1.3"
            ),
        },
        RecordKind::Aborted { csid, discarded } => {
            format!("{name}: Abort dropped {discarded} bytes of the message on chunk stream {csid}")
        }
        RecordKind::Interrupted {
            csid,
            received,
            length,
        } => format!(
            "{name}: a new header on chunk stream {csid} interrupted a message after \
             {received} of {length} bytes; the partial message is dropped"
        ),
        RecordKind::Gap {
            missing,
            reason,
            then,
        } => {
            let why = gap_reason(*reason);
            let then = match then {
                AfterGap::Filled => "they lie inside one chunk's payload: the message is \
                     reported damaged and decoding goes on in step"
                    .to_string(),
                AfterGap::Resync => {
                    format!("the chunk boundary is lost; {name} looks for the next one")
                }
                AfterGap::InHandshake => {
                    "they lie inside the handshake; the chunk stream is decoded after it".into()
                }
                AfterGap::NotDecoded => format!("{name} was not being decoded"),
                AfterGap::Ends => "the connection ends there".into(),
            };
            format!("{name}: {missing} bytes missing ({why}); {then}")
        }
        RecordKind::Inconsistent { len } => format!(
            "{name}: a retransmission carries {len} bytes that differ from the first copy \
             (the first copy is decoded)"
        ),
        RecordKind::Resynced {
            cause,
            skipped,
            chunk_size,
            size_kept,
            chunks_agreed,
        } => {
            let why = match cause {
                SyncCause::MidStream => "mid-stream start",
                SyncCause::Gap => "after missing bytes",
                SyncCause::Error => "after the chunk stream stopped making sense",
            };
            let size = if *size_kept {
                format!("chunk size {chunk_size} kept")
            } else {
                format!(
                    "chunk size {chunk_size} assumed (no Set Chunk Size seen; {chunks_agreed} \
                     chunk headers agree)"
                )
            };
            format!(
                "{name}: decoding from a chunk boundary ({why}; {skipped} bytes skipped); {size}"
            )
        }
        RecordKind::NoBoundary { searched } => format!(
            "{name}: no chunk boundary found in {searched} bytes (not RTMP, or encrypted: \
             RTMPE or TLS without the handshake in the capture); {name} is not decoded further"
        ),
        RecordKind::Damaged(m) => {
            let end = if m.complete {
                format!("{} bytes of it missing", m.missing)
            } else {
                format!("cut off after {} bytes, {} missing", m.captured, m.missing)
            };
            format!(
                "{name}: message type {} of {} bytes on chunk stream {} lost bytes: {end}; \
                 not decoded",
                m.header.msg_type.0, m.length, m.csid
            )
        }
        RecordKind::ChunkError {
            error,
            chunk_size,
            resync,
        } => {
            let then = if *resync {
                format!("{name} looks for another chunk boundary")
            } else {
                format!("{name} is not decoded further")
            };
            format!("{name}: {error} (chunk size in force {chunk_size}); {then}")
        }
        RecordKind::Closed { kind } => match kind {
            CloseKind::Fin => format!("{name}: FIN (the sender closed its side)"),
            CloseKind::Rst => format!("{name}: RST (the sender reset the connection)"),
        },
        RecordKind::EndOfCapture {
            connections,
            undecodable,
            packets,
            reasons,
            ..
        } => {
            let mut t = format!("end of capture: {connections} RTMP connection(s)");
            if *undecodable > 0 {
                t.push_str("; ");
                t.push_str(&not_decoded(*undecodable, *packets, reasons));
            }
            t
        }
        RecordKind::Evicted => "connection dropped: too many TCP connections tracked at once \
             (the least recently active are dropped first); what follows of it is not decoded"
            .into(),
        RecordKind::Undecodable { reason } => {
            format!("packet not decoded: {reason}")
        }
        RecordKind::Open { .. }
        | RecordKind::Handshake(_)
        | RecordKind::Chunk(_)
        | RecordKind::Message { .. }
        | RecordKind::End { .. }
        | RecordKind::RtmfpSession { .. }
        | RecordKind::Rtmfp(_) => return None,
    })
}
