//! rtmptool: RTMP, RTMPS and RTMFP on the wire, decoded and explained.
//!
//! The library is the shared protocol module of the `rtmptool` binary:
//! [`proto`] is the sans-IO core (handshake, chunk stream, messages, AMF0/AMF3,
//! FLV and media tag facts); [`capture`] reads pcap/pcapng captures and
//! reassembles TCP byte streams for `dump`, `diagnose` and `ecn`.

pub mod analyze;
pub mod capture;
pub mod diag;
pub mod load;
pub mod net;
pub mod play;
pub mod probe;
pub mod proto;
pub mod relay;
pub mod serve;
pub mod text;
