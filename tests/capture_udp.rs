//! UDP pass-through on a real RTMFP capture, against its per-packet ground truth
//! (`testdata/capture/plain_v4.udp.jsonl`, see the README there).

use std::fs::File;
use std::io::{BufRead, BufReader};

use rtmptool::capture::{Reader, Udp, decode};

#[test]
fn rtmfp_capture_udp_facts_match_truth() {
    let truth: Vec<serde_json::Value> =
        BufReader::new(File::open("testdata/capture/plain_v4.udp.jsonl").unwrap())
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect();
    let mut r = Reader::new(File::open("testdata/capture/plain_v4.pcap").unwrap()).unwrap();
    let mut n = 0;
    let mut ect0 = 0;
    while let Some(p) = r.next_packet().unwrap() {
        let d = decode(p.link_type, p.data).unwrap();
        let u = Udp::from_decoded(&d, p.frame, p.time).expect("all packets are UDP");
        let t = &truth[n];
        assert_eq!(u.frame, t["frame"].as_u64().unwrap());
        assert_eq!(u.src.to_string(), t["src"].as_str().unwrap());
        assert_eq!(u.dst.to_string(), t["dst"].as_str().unwrap());
        assert_eq!(
            u64::from(u.ecn),
            t["ecn"].as_u64().unwrap(),
            "frame {}",
            u.frame
        );
        assert_eq!(u64::from(u.dscp), t["dscp"].as_u64().unwrap());
        assert_eq!(
            u.payload.len() as u64,
            t["udp_payload_len"].as_u64().unwrap()
        );
        assert_eq!(u.wire_len as usize, u.payload.len());
        let time = format!("{}.{:06}", u.time.sec, u.time.nsec / 1000);
        assert_eq!(time, t["time"].as_str().unwrap());
        ect0 += usize::from(u.ecn == 2);
        n += 1;
    }
    assert_eq!(n, truth.len());
    assert!(ect0 > 0, "the capture has ECT(0) packets");
}
