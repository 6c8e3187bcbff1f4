//! Reassembles every real RTMP capture in testdata/ and checks the per-direction
//! byte counts, holes and SYN flags against the sidecar ground truth
//! (`ground_truth.connections[i]`, made by the independent reference decoder).

use std::collections::HashMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;

use rtmptool::capture::tcp::{Event, Reassembler};
use rtmptool::capture::{Reader, Transport, decode};

#[derive(Default, Debug)]
struct Seen {
    bytes: [u64; 2],
    gaps: [u64; 2],
    syn: bool,
    next: [u64; 2],
    client: Option<SocketAddr>,
    server: Option<SocketAddr>,
}

fn reassemble(path: &Path) -> (u64, Vec<Seen>) {
    let mut r = Reader::new(File::open(path).unwrap()).unwrap();
    let mut re = Reassembler::new();
    let mut conns: HashMap<u64, Seen> = HashMap::new();
    let mut frames = 0;
    let handle = |ev: Event<'_>, conns: &mut HashMap<u64, Seen>| match ev {
        Event::Open {
            conn,
            key,
            syn_seen,
            ..
        } => {
            let s = conns.entry(conn.0).or_default();
            s.syn = syn_seen;
            s.client = Some(key.client);
            s.server = Some(key.server);
        }
        Event::Data {
            conn,
            dir,
            stream_offset,
            bytes,
            ..
        } => {
            let s = conns.get_mut(&conn.0).unwrap();
            // Data is contiguous and in order.
            assert_eq!(stream_offset, s.next[dir.index()]);
            s.next[dir.index()] += bytes.len() as u64;
            s.bytes[dir.index()] += bytes.len() as u64;
        }
        Event::Gap {
            conn,
            dir,
            missing_len,
            ..
        } => {
            let s = conns.get_mut(&conn.0).unwrap();
            s.gaps[dir.index()] += 1;
            s.next[dir.index()] += missing_len;
        }
        _ => {}
    };
    while let Some(p) = r.next_packet().unwrap() {
        frames = p.frame;
        let d = decode(p.link_type, p.data).unwrap();
        if let Transport::Tcp(seg) = d.transport {
            re.segment(d.src, d.dst, &seg, p.frame, p.time, |ev| {
                handle(ev, &mut conns)
            });
        }
    }
    re.flush(|ev| handle(ev, &mut conns));
    let mut v: Vec<(u64, Seen)> = conns.into_iter().collect();
    v.sort_by_key(|(k, _)| *k);
    (frames, v.into_iter().map(|(_, s)| s).collect())
}

#[test]
fn real_captures_match_ground_truth() {
    let mut checked = 0;
    for dir in ["testdata/rtmp", "testdata/ertmp"] {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
            // Derived hard cases: tests/field_captures.rs.
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("hard_"))
            })
            .collect();
        paths.sort();
        for pcap in paths {
            let truth: serde_json::Value =
                serde_json::from_reader(File::open(pcap.with_extension("json")).unwrap()).unwrap();
            let gt = &truth["ground_truth"];
            let (frames, seen) = reassemble(&pcap);
            assert_eq!(frames, gt["frames"].as_u64().unwrap(), "{}", pcap.display());
            let conns = gt["connections"].as_array().unwrap();
            assert_eq!(seen.len(), conns.len(), "{}", pcap.display());
            for c in conns {
                let client: SocketAddr = c["client"].as_str().unwrap().parse().unwrap();
                let server: SocketAddr = c["server"].as_str().unwrap().parse().unwrap();
                let s = seen
                    .iter()
                    .find(|s| s.client == Some(client) && s.server == Some(server))
                    .unwrap_or_else(|| {
                        panic!("{}: no connection {client} -> {server}", pcap.display())
                    });
                for (i, d) in ["c2s", "s2c"].iter().enumerate() {
                    let want = c[d]["bytes"].as_u64().unwrap();
                    assert_eq!(s.bytes[i], want, "{} {client} {d} bytes", pcap.display());
                    let holes = c[d]["holes"].as_array().unwrap();
                    assert_eq!(s.gaps[i], holes.len() as u64, "{} {d} gaps", pcap.display());
                }
                assert_eq!(
                    s.syn,
                    c["c2s"]["syn_seen"].as_bool().unwrap(),
                    "{}",
                    pcap.display()
                );
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked, 29,
        "23 rtmp captures with one connection + two ertmp captures with three each"
    );
}
