//! Link/IP/TCP decoding per packet (`capture::decode`): the common case
//! (Ethernet, IPv4, TCP with a full-size segment), the same behind a VLAN
//! tag, and the encapsulations opened by hand (PPPoE, MPLS, GRE, VXLAN),
//! whose cost must stay off the common path.

use criterion::{Criterion, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use rtmptool::capture::{LinkType, decode};

fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(1935, 50000, 77, 500)
        .ack(9)
        .write(&mut v, payload)
        .expect("built");
    v
}

fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    v.extend(et.to_be_bytes());
    v.extend(payload);
    v
}

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let ip = ipv4_tcp(&[0xab; 1400]);
    let plain = eth(0x0800, &ip);
    let vlan = eth(0x8100, &[&[0, 5, 8, 0][..], &ip].concat());
    let mut pppoe = vec![0x11, 0, 0, 1];
    pppoe.extend(((ip.len() + 2) as u16).to_be_bytes());
    pppoe.extend([0, 0x21]);
    pppoe.extend(&ip);
    let mpls = [&[0, 0x3e, 0x81, 64][..], &ip].concat();
    let mut gre = Vec::new();
    PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .write(
            &mut gre,
            etherparse::IpNumber(47),
            &[&[0, 0, 8, 0][..], &ip].concat(),
        )
        .expect("built");
    let mut vxlan = Vec::new();
    PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(40000, 4789)
        .write(
            &mut vxlan,
            &[&[8, 0, 0, 0, 0, 0, 1, 0][..], &plain].concat(),
        )
        .expect("built");
    vec![
        ("ethernet_ipv4_tcp", plain.clone()),
        ("vlan_ipv4_tcp", vlan),
        ("pppoe_ipv4_tcp", eth(0x8864, &pppoe)),
        ("mpls_ipv4_tcp", eth(0x8847, &mpls)),
        ("gre_ipv4_tcp", eth(0x0800, &gre)),
        ("vxlan_ipv4_tcp", eth(0x0800, &vxlan)),
    ]
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (name, f) in frames() {
        g.bench_function(name, |b| {
            b.iter(|| decode(LinkType::ETHERNET, std::hint::black_box(&f)).is_ok())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
