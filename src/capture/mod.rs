//! Captures: pcap/pcapng reading, link types, IPv4/IPv6, TCP reassembly, UDP.
//!
//! TODO: placeholder, being written.
