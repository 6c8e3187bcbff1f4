//! The sans-IO protocol core.
//!
//! Nothing in this module touches sockets, files or clocks, and nothing prints:
//! callers pass in bytes and the current time, and get back events and bytes to
//! send. One decoder therefore serves live sessions, captures, the proxy and the
//! tests alike. "Need more bytes" is `Ok(None)`, never an error.

pub mod amf0;
pub mod amf3;
pub mod chunk;
pub mod flv;
pub mod handshake;
pub mod media;
pub mod message;
pub mod session;

/// Deepest nesting of AMF containers (objects, arrays, ...) a decoder accepts.
///
/// Real peers nest two or three levels; the limit stops hostile input from
/// exhausting the stack.
pub const MAX_AMF_DEPTH: usize = 64;
