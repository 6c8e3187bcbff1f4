//! RTMFP (RFC 7016) with the Flash profile (RFC 7425), sans-IO: bytes in,
//! typed values out. [`vlu`]: VLUs, fields, options, addresses (§2.1);
//! [`chunk`]: packets and chunks (§2.2.4, §2.3, ECN Report 0xec of
//! zenomt/rtmfp-cpp); [`crypto`]: the Flash and plain crypto framings, key
//! derivation, Diffie-Hellman; [`keylog`]: key logs; [`datagram`]: a UDP
//! payload opened with the keys that fit; [`handshake`]: IHello, responder
//! and initiator of the four-way handshake.

pub mod chunk;
pub mod crypto;
pub mod datagram;
pub mod handshake;
pub mod keylog;
pub mod vlu;
