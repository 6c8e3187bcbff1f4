//! The RTMFP decoders on arbitrary bytes: a datagram opened with the
//! default key, a session key (checksum, HMAC and sequence-number framings)
//! and the plain profile; the packet and chunk parser on the bytes as
//! cleartext; option lists; the key log parser; both handshake roles.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmptool::proto::rtmfp::chunk::decode_packet;
use rtmptool::proto::rtmfp::crypto::{Cipher, DirKeys};
use rtmptool::proto::rtmfp::datagram::open;
use rtmptool::proto::rtmfp::handshake::{Initiator, Responder};
use rtmptool::proto::rtmfp::keylog::KeyLog;
use rtmptool::proto::rtmfp::vlu::read_options;

fuzz_target!(|data: &[u8]| {
    let keys = [
        DirKeys {
            cipher: Cipher::new(&[1; 16]),
            hmac: Some(([2; 32], 4)),
            sseq: true,
        },
        DirKeys {
            cipher: Cipher::new(&[1; 16]),
            hmac: None,
            sseq: true,
        },
    ];
    let mut buf = Vec::new();
    let _ = open(data, &keys, &mut buf);
    let _ = decode_packet(data);
    let _ = read_options(data);
    let _ = KeyLog::parse(&String::from_utf8_lossy(data));
    let mut ini = Initiator::new(vec![1, 10], [3; 16], [1, 0, 0, 0], vec![2], vec![5; 28], vec![0; 64]);
    let _ = ini.handle(data);
    let _ = ini.iikeying(data, 0);
    let r = Responder::new(None, &[2], [0; 32], [2, 0, 0, 0], vec![5; 28], vec![0; 64]);
    let _ = r.handle(data, 0);
});
