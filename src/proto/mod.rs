//! The sans-IO protocol core.
//!
//! Nothing in this module touches sockets, files or clocks, and nothing prints:
//! callers pass in bytes and the current time, and get back events and bytes to
//! send. One decoder therefore serves live sessions, captures, the proxy and the
//! tests alike. "Need more bytes" is `Ok(None)`, never an error.

pub mod amf0;
pub mod amf3;
pub mod capabilities;
pub mod chunk;
pub mod flv;
pub mod handshake;
pub mod media;
pub mod message;
pub mod rtmfp;
pub mod session;
pub mod stream_config;
pub mod timeline;

/// Deepest nesting of AMF containers (objects, arrays, ...) a decoder accepts.
///
/// Real peers nest two or three levels; the limit stops hostile input from
/// exhausting the stack.
pub const MAX_AMF_DEPTH: usize = 64;

/// Most AMF elements one message decodes (AMF0 and AMF3 together; see
/// [`amf0`]): past it, decoding stops with a truncation marker.
///
/// Real messages hold tens to a few thousand elements (an `onMetaData` with a
/// keyframe index of a ten-hour file: about 72 000). At most about 100 bytes
/// each, the bound keeps a decoded message within some 30 MB whatever its
/// size on the wire.
pub const MAX_AMF_ELEMENTS: usize = 1 << 18;
