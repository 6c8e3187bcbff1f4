//! Streaming pcap / pcapng reader.
//!
//! Implements the classic libpcap file format (tcpdump.org "pcap-savefile(5)",
//! draft-ietf-opsawg-pcap) in both byte orders with micro- and nanosecond magic
//! and the old flavours with longer record headers that Wireshark still writes
//! (modified/Kuznetzov, RedHat 6.1, SuSE 6.3, Nokia; told apart by the first
//! two records, as Wireshark does), and pcapng (draft-ietf-opsawg-pcapng: SHB §4.1, IDB §4.2 with `if_tsresol` /
//! `if_tsoffset`, EPB §4.3, SPB §4.4, the obsolete Packet Block of Appendix A),
//! with several sections and interfaces. Record framing and buffering are done
//! here; pcapng block contents are parsed with `pcap-parser`.
//!
//! The reader never reads ahead of the record it is assembling (but for the
//! first record of a classic pcap, to tell the flavours apart: one record
//! header ahead): it asks the source for more bytes only while the current
//! record is incomplete, so
//! `tcpdump -U -w - | rtmptool dump -` sees each packet as soon as its record has
//! arrived. Memory is one fixed buffer of [`BUFFER_LEN`] bytes; a record longer
//! than [`MAX_PACKET_LEN`] (packet data) or [`MAX_BLOCK_LEN`] (pcapng block) is
//! reported as corrupt before anything is allocated for it.

use std::io::{Cursor, ErrorKind, Read};

use flate2::read::MultiGzDecoder;

use pcap_parser::pcapng::{
    parse_enhancedpacketblock_be, parse_enhancedpacketblock_le, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le, parse_sectionheaderblock, parse_simplepacketblock_be,
    parse_simplepacketblock_le,
};

/// Largest captured packet length accepted (256 KiB, tcpdump's default snaplen
/// 262144). Anything larger is treated as a corrupt record length.
pub const MAX_PACKET_LEN: usize = 262_144;
/// Largest pcapng block accepted in full: a maximal packet plus 64 KiB of
/// options. Larger non-packet blocks (name resolution, decryption secrets, ...)
/// are skipped without being buffered; larger packet, section or interface
/// blocks are corrupt.
pub const MAX_BLOCK_LEN: usize = MAX_PACKET_LEN + 65_536;
/// Size of the reader's single input buffer (allocated once).
pub const BUFFER_LEN: usize = 2 * MAX_BLOCK_LEN;
/// Most pcapng interfaces kept per section (an IDB past this is corrupt).
pub const MAX_INTERFACES: usize = 4096;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

/// pcapng blocks that are no packet but that Wireshark lists as frames,
/// so that frame numbers stay Wireshark's: custom blocks (copyable and
/// not), systemd Journal Export, sysdig events (plain, v2, v2 large).
/// Checked against tshark 4.0.
fn numbered_like_a_frame(btype: u32) -> bool {
    matches!(
        btype,
        0x0000_0BAD | 0x4000_0BAD | 0x0000_0009 | 0x0000_0204 | 0x0000_0216 | 0x0000_0221
    )
}

/// A link-layer header type (tcpdump.org LINKTYPE_* values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback, 4-byte address family in the capturing host's byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II (with optional 802.1Q / 802.1ad tags).
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP (some BSDs' DLT value 12).
    pub const RAW_12: LinkType = LinkType(12);
    /// Raw IP (OpenBSD's DLT value 14).
    pub const RAW_14: LinkType = LinkType(14);
    /// Raw IPv4 or IPv6, version from the first nibble.
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux "cooked" capture v1 (16-byte header).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux "cooked" capture v2 (20-byte header).
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// A capture timestamp: seconds since the Unix epoch plus nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z (may be negative with `if_tsoffset`).
    pub sec: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nsec: u32,
}

impl Timestamp {
    /// The timestamp as floating-point seconds (loses precision below ~100 ns).
    pub fn as_f64(self) -> f64 {
        self.sec as f64 + f64::from(self.nsec) * 1e-9
    }
}

/// One captured packet, borrowed from the reader's buffer until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// 1-based frame number, counted as Wireshark does: packet records, and
    /// the pcapng blocks Wireshark also lists as frames (custom blocks,
    /// systemd journal entries, sysdig events), which are skipped here.
    pub frame: u64,
    /// Capture time. A pcapng Simple Packet Block has none: it repeats the
    /// previous packet's time.
    pub time: Timestamp,
    /// Link type of the interface the packet was captured on.
    pub link_type: LinkType,
    /// pcapng interface id (0 for pcap).
    pub interface: u32,
    /// The captured bytes (`data.len()` is the captured length).
    pub data: &'a [u8],
    /// Length of the packet on the wire; `orig_len > data.len()` means the
    /// snaplen cut it.
    pub orig_len: u32,
    /// Byte offset of the packet's record in the file.
    pub offset: u64,
}

impl Packet<'_> {
    /// True when the capture stored fewer bytes than were on the wire.
    pub fn is_truncated(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.orig_len)
    }
}

/// The container format that was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap.
    Pcap {
        /// Records are big-endian.
        big_endian: bool,
        /// Fractional timestamps are nanoseconds (magic `0xa1b23c4d`).
        nanosecond: bool,
    },
    /// pcapng (byte order can change per section).
    PcapNg,
}

/// Why reading stopped. Every variant carries the byte offset of the record
/// concerned; packets returned before the error remain valid.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The source failed.
    #[error("read error at byte offset {offset}: {source}")]
    Io {
        /// Bytes consumed before the failure.
        offset: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The first bytes are no pcap or pcapng magic.
    #[error("not a pcap/pcapng file (starts with {start})")]
    NotCapture {
        /// The first bytes, as hex and printable ASCII.
        start: String,
    },
    /// The input is compressed with something other than gzip (which is
    /// decompressed as it is read).
    #[error(
        "the input is {format}-compressed (only gzip is decompressed here): decompress it first, e.g. `{tool} -dc FILE | rtmptool dump -`"
    )]
    Compressed {
        /// zstd, lz4, xz, bzip2.
        format: &'static str,
        /// Its command-line tool.
        tool: &'static str,
    },
    /// A capture file format other than pcap and pcapng.
    #[error(
        "a {format} capture, not pcap/pcapng: convert it first, e.g. `editcap -F pcapng FILE OUT.pcapng`"
    )]
    OtherFormat {
        /// Its name.
        format: &'static str,
    },
    /// A gzip-compressed input does not decompress.
    #[error("gzip data bad after {offset} decompressed bytes: {source}")]
    Decompress {
        /// Decompressed bytes before the failure.
        offset: u64,
        /// What the decompressor said.
        #[source]
        source: std::io::Error,
    },
    /// The input ends inside a record.
    #[error(
        "truncated {what} at byte offset {offset} (frame {frame}): needs {needed} bytes, only {available} present"
    )]
    Truncated {
        /// What was being read (file header, packet record, pcapng block).
        what: &'static str,
        /// Byte offset of the record's start.
        offset: u64,
        /// Frame number the next packet would have had.
        frame: u64,
        /// Bytes the record needs.
        needed: u64,
        /// Bytes that were present.
        available: u64,
    },
    /// A record's contents make no sense.
    #[error("corrupt {what} at byte offset {offset} (frame {frame}): {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Byte offset of the record's start.
        offset: u64,
        /// Frame number the next packet would have had.
        frame: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The classic pcap flavours (Wireshark's names), which differ in the size of
/// the record header: the usual 16 bytes (ts_sec, ts_frac, caplen, origlen),
/// then fields of their own that are skipped. The magic does not tell them
/// apart, the first two records do (as Wireshark's libpcap reader does it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PcapVariant {
    /// tcpdump/libpcap: 16 bytes.
    Standard,
    /// RedHat 6.1 tcpdump (ss990417): standard magic, 24 bytes.
    RedHat61,
    /// Nokia IPSO tcpdump: standard magic, 20 bytes.
    Nokia,
    /// Alexey Kuznetzov's patched libpcap (ss991029): modified magic, 24 bytes.
    Modified,
    /// SuSE 6.3 tcpdump (ss990915): modified magic, 28 bytes.
    Suse63,
}

impl PcapVariant {
    fn header_len(self) -> usize {
        match self {
            PcapVariant::Standard => 16,
            PcapVariant::Nokia => 20,
            PcapVariant::RedHat61 | PcapVariant::Modified => 24,
            PcapVariant::Suse63 => 28,
        }
    }

    /// What errors call its records and record headers.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            PcapVariant::Standard => ("pcap record", "pcap record header"),
            PcapVariant::RedHat61 => (
                "pcap record (RedHat 6.1 tcpdump format)",
                "pcap record header (RedHat 6.1 tcpdump format)",
            ),
            PcapVariant::Nokia => (
                "pcap record (Nokia tcpdump format)",
                "pcap record header (Nokia tcpdump format)",
            ),
            PcapVariant::Modified => (
                "pcap record (modified tcpdump format)",
                "pcap record header (modified tcpdump format)",
            ),
            PcapVariant::Suse63 => (
                "pcap record (SuSE 6.3 tcpdump format)",
                "pcap record header (SuSE 6.3 tcpdump format)",
            ),
        }
    }
}

/// Per-interface facts from a pcapng IDB.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: LinkType,
    snaplen: u32,
    /// Timestamp units per second (from `if_tsresol`).
    units: u64,
    /// `if_tsoffset` in seconds.
    ts_offset: i64,
}

/// Metadata of the record just framed; the packet bytes are `buf[data..data+len]`.
struct Meta {
    frame: u64,
    time: Timestamp,
    link_type: LinkType,
    interface: u32,
    data: usize,
    len: usize,
    orig_len: u32,
    offset: u64,
}

/// Where the bytes come from: as they are, or through a gzip decompressor
/// (the bytes read to find the magic replayed first).
enum Source<R: Read> {
    Plain(R),
    Gzip(Box<MultiGzDecoder<std::io::Chain<Cursor<Vec<u8>>, R>>>),
    /// Only while switching from one to the other.
    Switching,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(buf),
            Source::Gzip(r) => r.read(buf),
            Source::Switching => Ok(0),
        }
    }
}

/// Compressed formats told by their magic: name, tool, magic.
const COMPRESSED: [(&str, &str, &[u8]); 4] = [
    ("zstd", "zstd", &[0x28, 0xb5, 0x2f, 0xfd]),
    ("lz4", "lz4", &[0x04, 0x22, 0x4d, 0x18]),
    ("xz", "xz", &[0xfd, b'7', b'z', b'X', b'Z', 0]),
    ("bzip2", "bzip2", b"BZh"),
];

/// Other capture formats editcap writes, told by their magic.
const OTHER_FORMATS: [(&str, &[u8]); 4] = [
    ("Sun snoop", b"snoop\0\0\0"),
    ("Microsoft NetMon 1.x", b"RTSS"),
    ("Microsoft NetMon 2.x", b"GMBU"),
    ("Windows Sniffer / NetXray", b"XCP\0"),
];

/// Streaming capture reader over any [`Read`] (file, stdin, pipe).
pub struct Reader<R: Read> {
    inner: Source<R>,
    /// The input is gzip-compressed: offsets count decompressed bytes.
    gzip: bool,
    buf: Vec<u8>,
    /// `buf[start..end]` holds bytes read but not yet consumed.
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    format: Format,
    /// pcap: link type of the file; pcapng: unused.
    pcap_link: LinkType,
    /// pcap magic `0xa1b2cd34` (the "modified" formats).
    pcap_modified: bool,
    /// pcap record header layout, decided at the first record.
    pcap_variant: Option<PcapVariant>,
    /// pcapng: current section's byte order and interfaces.
    ng_big_endian: bool,
    interfaces: Vec<Interface>,
    frame: u64,
    last_time: Timestamp,
    /// After an error or end of input, `next_packet` returns `Ok(None)`.
    done: bool,
}

impl<R: Read> std::fmt::Debug for Reader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("format", &self.format)
            .field("offset", &self.offset)
            .field("frame", &self.frame)
            .finish_non_exhaustive()
    }
}

fn hex_start(b: &[u8]) -> String {
    if b.is_empty() {
        return "nothing: the input is empty".to_string();
    }
    let b = &b[..b.len().min(8)];
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    let ascii: String = b
        .iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{} \"{}\"", hex.join(" "), ascii)
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    if big_endian {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

/// Decode a pcapng `if_tsresol` into units per second (`None` if it overflows u64).
fn tsresol_units(r: u8) -> Option<u64> {
    if r & 0x80 == 0 {
        10u64.checked_pow(u32::from(r))
    } else {
        1u64.checked_shl(u32::from(r & 0x7f))
    }
}

/// An IDB's `if_tsoffset` (option 14, a signed 64-bit count of seconds) in
/// the section's byte order; 0 when absent. (pcap-parser 0.17's
/// `if_tsoffset` reads it little-endian whatever the section's order: a
/// big-endian section's offset of 1e9 s came out as 5.7e16 s.)
fn ts_offset(options: &[pcap_parser::pcapng::PcapNGOption<'_>], big_endian: bool) -> i64 {
    options
        .iter()
        .find(|o| o.code == pcap_parser::pcapng::OptionCode::IfTsoffset)
        .and_then(|o| <[u8; 8]>::try_from(o.value().get(..8)?).ok())
        .map_or(0, |b| {
            if big_endian {
                i64::from_be_bytes(b)
            } else {
                i64::from_le_bytes(b)
            }
        })
}

/// Split a raw timestamp in `units` per second into seconds and nanoseconds.
fn make_time(raw: u64, units: u64, offset: i64) -> Timestamp {
    let units = units.max(1);
    let sec = (raw / units) as i64;
    let frac = u128::from(raw % units);
    let nsec = (frac * 1_000_000_000 / u128::from(units)) as u32;
    Timestamp {
        sec: sec.saturating_add(offset),
        nsec,
    }
}

impl<R: Read> Reader<R> {
    /// Detect the format by reading the file header (pcap) or first block
    /// header (pcapng). Reads no further than that header.
    pub fn new(inner: R) -> Result<Self, CaptureError> {
        let mut r = Reader {
            inner: Source::Plain(inner),
            gzip: false,
            buf: vec![0u8; BUFFER_LEN],
            start: 0,
            end: 0,
            offset: 0,
            format: Format::PcapNg,
            pcap_link: LinkType::ETHERNET,
            pcap_modified: false,
            pcap_variant: None,
            ng_big_endian: false,
            interfaces: Vec::new(),
            frame: 0,
            last_time: Timestamp::default(),
            done: false,
        };
        let mut have = r.fill(4)?;
        if have && r.buf[r.start..r.start + 3] == [0x1f, 0x8b, 0x08] {
            // gzip (RFC 1952, deflate), as tshark reads it: decompressed on
            // the fly, in constant memory. The bytes read so far go first.
            let read = r.buf[r.start..r.end].to_vec();
            if let Source::Plain(inner) = std::mem::replace(&mut r.inner, Source::Switching) {
                r.inner = Source::Gzip(Box::new(MultiGzDecoder::new(
                    Cursor::new(read).chain(inner),
                )));
            }
            r.gzip = true;
            (r.start, r.end) = (0, 0);
            have = r.fill(4)?;
        }
        let magic = &r.buf[r.start..r.end];
        if !have {
            let mut start = hex_start(magic);
            if r.gzip {
                start.push_str(", once gunzipped");
            }
            return Err(CaptureError::NotCapture { start });
        }
        let m = [magic[0], magic[1], magic[2], magic[3]];
        let pcap = matches!(
            u32::from_le_bytes(m),
            0xa1b2_c3d4 | 0xa1b2_3c4d | 0xa1b2_cd34 | 0xd4c3_b2a1 | 0x4d3c_b2a1 | 0x34cd_b2a1
        );
        if pcap {
            if !r.fill(24)? {
                return Err(r.truncated("pcap file header", 24));
            }
            // magic, version (2 + 2), thiszone, sigfigs, snaplen, network;
            // read by hand: pcap-parser knows no byte-swapped modified magic.
            let magic = u32::from_le_bytes(m);
            let big_endian = matches!(magic, 0xd4c3_b2a1 | 0x4d3c_b2a1 | 0x34cd_b2a1);
            r.format = Format::Pcap {
                big_endian,
                nanosecond: matches!(magic, 0xa1b2_3c4d | 0x4d3c_b2a1),
            };
            r.pcap_modified = matches!(magic, 0xa1b2_cd34 | 0x34cd_b2a1);
            // The upper 16 bits of the field carry FCS-length flags (LINKTYPE_FCS_*).
            r.pcap_link = LinkType(u32_at(&r.buf, r.start + 20, big_endian) & 0xffff);
            r.consume(24);
        } else if u32::from_le_bytes(m) == PCAPNG_SHB {
            r.format = Format::PcapNg;
        } else {
            let n = (r.end - r.start).min(8);
            let _ = r.fill(n.max(8));
            let s = &r.buf[r.start..r.end];
            if let Some((format, tool, _)) = COMPRESSED.iter().find(|c| s.starts_with(c.2)) {
                return Err(CaptureError::Compressed { format, tool });
            }
            if let Some((format, _)) = OTHER_FORMATS.iter().find(|c| s.starts_with(c.1)) {
                return Err(CaptureError::OtherFormat { format });
            }
            let mut start = hex_start(s);
            if r.gzip {
                start.push_str(", once gunzipped");
            }
            return Err(CaptureError::NotCapture { start });
        }
        Ok(r)
    }

    /// The detected container format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The input is gzip-compressed (and decompressed as it is read); byte
    /// offsets in errors count decompressed bytes.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Link type of a classic pcap file (for pcapng, each packet carries its own).
    pub fn pcap_link_type(&self) -> Option<LinkType> {
        match self.format {
            Format::Pcap { .. } => Some(self.pcap_link),
            Format::PcapNg => None,
        }
    }

    /// Bytes of the input consumed so far (the offset of the next record).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Number of packets returned so far.
    pub fn frames(&self) -> u64 {
        self.frame
    }

    /// The next packet, `Ok(None)` at a clean end of input. After an error the
    /// reader is finished and returns `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let res = match self.format {
            Format::Pcap {
                big_endian,
                nanosecond,
            } => self.next_pcap(big_endian, nanosecond),
            Format::PcapNg => self.next_pcapng(),
        };
        match res {
            Ok(Some(m)) => Ok(Some(Packet {
                frame: m.frame,
                time: m.time,
                link_type: m.link_type,
                interface: m.interface,
                data: &self.buf[m.data..m.data + m.len],
                orig_len: m.orig_len,
                offset: m.offset,
            })),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// Make sure `need` unconsumed bytes are buffered; `Ok(false)` if the input
    /// ended first. Only reads while bytes are missing (no read-ahead wait).
    fn fill(&mut self, need: usize) -> Result<bool, CaptureError> {
        while self.end - self.start < need {
            if self.buf.len() - self.start < need {
                // Compact: `need` never exceeds BUFFER_LEN / 2, so it then fits.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    let offset = self.offset + (self.end - self.start) as u64;
                    // flate2 says InvalidInput/InvalidData of a bad stream;
                    // anything else is the source's own failure.
                    if self.gzip
                        && matches!(
                            source.kind(),
                            ErrorKind::InvalidInput
                                | ErrorKind::InvalidData
                                | ErrorKind::UnexpectedEof
                        )
                    {
                        return Err(CaptureError::Decompress { offset, source });
                    }
                    return Err(CaptureError::Io { offset, source });
                }
            }
        }
        Ok(true)
    }

    /// Skip `n` bytes without buffering them all (for oversized ignorable blocks).
    fn skip(&mut self, mut n: u64, what: &'static str) -> Result<(), CaptureError> {
        let rec_offset = self.offset;
        let total = n;
        while n > 0 {
            if self.end == self.start {
                self.start = 0;
                self.end = 0;
                if !self.fill(1)? {
                    return Err(CaptureError::Truncated {
                        what,
                        offset: rec_offset,
                        frame: self.frame + 1,
                        needed: total,
                        available: total - n,
                    });
                }
            }
            let take = ((self.end - self.start) as u64).min(n);
            self.consume(take as usize);
            n -= take;
        }
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    fn truncated(&self, what: &'static str, needed: usize) -> CaptureError {
        CaptureError::Truncated {
            what,
            offset: self.offset,
            frame: self.frame + 1,
            needed: needed as u64,
            available: (self.end - self.start) as u64,
        }
    }

    fn corrupt(&self, what: &'static str, reason: String) -> CaptureError {
        CaptureError::Corrupt {
            what,
            offset: self.offset,
            frame: self.frame + 1,
            reason,
        }
    }

    /// Frame a record of `len` bytes at the current position: `Ok(false)` on a
    /// clean end of input (nothing buffered), error when it ends mid-record.
    fn need(&mut self, len: usize, what: &'static str) -> Result<bool, CaptureError> {
        if self.fill(len)? {
            return Ok(true);
        }
        if self.end == self.start {
            return Ok(false);
        }
        Err(self.truncated(what, len))
    }

    /// The first 16 bytes of a pcap record header at `at`, in the file's
    /// byte order: (ts_sec, ts_frac, caplen, origlen).
    fn pcap_fields(&self, at: usize, big_endian: bool) -> (u32, u32, usize, u32) {
        let f = |i: usize| u32_at(&self.buf, at + 4 * i, big_endian);
        (f(0), f(1), f(2) as usize, f(3))
    }

    /// Whether a record header at `at` looks like one (Wireshark's test: a
    /// captured length within bounds and not above the original length, a
    /// fraction below one second).
    fn plausible_pcap_header(&self, at: usize, big_endian: bool, nanosecond: bool) -> bool {
        let (_, frac, caplen, orig) = self.pcap_fields(at, big_endian);
        let second = if nanosecond { 1_000_000_000 } else { 1_000_000 };
        caplen <= MAX_PACKET_LEN
            && caplen as u64 <= u64::from(orig)
            && orig <= 128 << 20
            && frac < second
    }

    /// Decides the record header layout at the first record: the first
    /// flavour whose first record and the header of the second look right;
    /// without a second record, the usual one of the magic (so a capture of
    /// one packet in a rarer flavour is misread). This is the one time the
    /// reader looks past the record it returns: one record header ahead
    /// (`tcpdump -U -w - |` shows its first packet once the second came).
    fn pcap_variant(
        &mut self,
        big_endian: bool,
        nanosecond: bool,
    ) -> Result<PcapVariant, CaptureError> {
        let candidates: &[PcapVariant] = if self.pcap_modified {
            &[PcapVariant::Modified, PcapVariant::Suse63]
        } else {
            &[
                PcapVariant::Standard,
                PcapVariant::RedHat61,
                PcapVariant::Nokia,
            ]
        };
        for (i, &v) in candidates.iter().enumerate() {
            let h = v.header_len();
            if !self.fill(h)? || !self.plausible_pcap_header(self.start, big_endian, nanosecond) {
                continue;
            }
            let (.., caplen, _) = self.pcap_fields(self.start, big_endian);
            let next = h + caplen;
            if !self.fill(next + h)? {
                // No second record header (a one-record capture, or one cut
                // short): nothing to tell the flavours apart, the usual one
                // is taken.
                if i == 0 {
                    return Ok(v);
                }
                continue;
            }
            if self.plausible_pcap_header(self.start + next, big_endian, nanosecond) {
                return Ok(v);
            }
        }
        Ok(candidates[0])
    }

    fn next_pcap(
        &mut self,
        big_endian: bool,
        nanosecond: bool,
    ) -> Result<Option<Meta>, CaptureError> {
        let variant = match self.pcap_variant {
            Some(v) => v,
            None => {
                if !self.need(16, "pcap record header")? {
                    return Ok(None);
                }
                let v = self.pcap_variant(big_endian, nanosecond)?;
                self.pcap_variant = Some(v);
                v
            }
        };
        let hdr_len = variant.header_len();
        let (what, what_header) = variant.names();
        if !self.need(hdr_len, what_header)? {
            return Ok(None);
        }
        let (ts_sec, ts_frac, caplen, orig_len) = self.pcap_fields(self.start, big_endian);
        if caplen > MAX_PACKET_LEN {
            return Err(self.corrupt(
                what,
                format!("captured length {caplen} exceeds the {MAX_PACKET_LEN}-byte limit"),
            ));
        }
        let total = hdr_len + caplen;
        if !self.need(total, what)? {
            return Ok(None);
        }
        let nsec_raw = if nanosecond {
            u64::from(ts_frac)
        } else {
            u64::from(ts_frac) * 1000
        };
        // Lax: a fraction >= 1 s carries into the seconds rather than failing.
        let time = Timestamp {
            sec: i64::from(ts_sec) + (nsec_raw / 1_000_000_000) as i64,
            nsec: (nsec_raw % 1_000_000_000) as u32,
        };
        self.frame += 1;
        self.last_time = time;
        let m = Meta {
            frame: self.frame,
            time,
            link_type: self.pcap_link,
            interface: 0,
            data: self.start + hdr_len,
            len: caplen,
            orig_len: orig_len.max(caplen as u32),
            offset: self.offset,
        };
        self.consume(total);
        Ok(Some(m))
    }

    fn next_pcapng(&mut self) -> Result<Option<Meta>, CaptureError> {
        loop {
            if !self.need(12, "pcapng block header")? {
                return Ok(None);
            }
            let s = self.start;
            let raw_type = u32::from_le_bytes([
                self.buf[s],
                self.buf[s + 1],
                self.buf[s + 2],
                self.buf[s + 3],
            ]);
            let is_shb = raw_type == PCAPNG_SHB;
            if is_shb {
                // The byte-order magic decides how this and the following blocks read.
                match u32::from_le_bytes([
                    self.buf[s + 8],
                    self.buf[s + 9],
                    self.buf[s + 10],
                    self.buf[s + 11],
                ]) {
                    0x1A2B_3C4D => self.ng_big_endian = false,
                    0x4D3C_2B1A => self.ng_big_endian = true,
                    bom => {
                        return Err(self.corrupt(
                            "pcapng section header",
                            format!("bad byte-order magic {bom:#010x}"),
                        ));
                    }
                }
            }
            let be = self.ng_big_endian;
            let btype = u32_at(&self.buf, s, be);
            let blen = u32_at(&self.buf, s + 4, be) as usize;
            if blen < 12 || !blen.is_multiple_of(4) {
                return Err(self.corrupt(
                    "pcapng block",
                    format!("block type {btype:#x}: invalid block length {blen}"),
                ));
            }
            let important = matches!(
                btype,
                PCAPNG_SHB | PCAPNG_IDB | PCAPNG_EPB | PCAPNG_SPB | PCAPNG_PB
            );
            if blen > MAX_BLOCK_LEN {
                if important {
                    return Err(self.corrupt(
                        "pcapng block",
                        format!("block type {btype:#x}: length {blen} exceeds the {MAX_BLOCK_LEN}-byte limit"),
                    ));
                }
                self.skip(blen as u64, "pcapng block")?;
                if numbered_like_a_frame(btype) {
                    self.frame += 1;
                }
                continue;
            }
            if !self.need(blen, "pcapng block")? {
                return Ok(None);
            }
            // `need` may have moved the unconsumed bytes to the buffer's start.
            let s = self.start;
            let trailer = u32_at(&self.buf, s + blen - 4, be) as usize;
            if trailer != blen {
                return Err(self.corrupt(
                    "pcapng block",
                    format!("block type {btype:#x}: trailing length {trailer} differs from leading length {blen}"),
                ));
            }
            let block = &self.buf[s..s + blen];
            match btype {
                PCAPNG_SHB => {
                    if let Err(e) = parse_sectionheaderblock(block) {
                        return Err(self.corrupt("pcapng section header", parse_error(&e)));
                    }
                    // A new section starts a new interface numbering.
                    self.interfaces.clear();
                }
                PCAPNG_IDB => {
                    let parsed = if be {
                        parse_interfacedescriptionblock_be(block)
                    } else {
                        parse_interfacedescriptionblock_le(block)
                    };
                    let iface = match parsed {
                        Ok((_, idb)) => {
                            let Some(units) = tsresol_units(idb.if_tsresol) else {
                                return Err(self.corrupt(
                                    "pcapng interface description",
                                    format!("unsupported if_tsresol {:#04x}", idb.if_tsresol),
                                ));
                            };
                            Interface {
                                link_type: LinkType(u32::from(idb.linktype.0 as u16)),
                                snaplen: idb.snaplen,
                                units,
                                ts_offset: ts_offset(&idb.options, be),
                            }
                        }
                        Err(e) => {
                            return Err(
                                self.corrupt("pcapng interface description", parse_error(&e))
                            );
                        }
                    };
                    if self.interfaces.len() >= MAX_INTERFACES {
                        return Err(self.corrupt(
                            "pcapng interface description",
                            format!("more than {MAX_INTERFACES} interfaces in one section"),
                        ));
                    }
                    self.interfaces.push(iface);
                }
                PCAPNG_EPB | PCAPNG_PB | PCAPNG_SPB => {
                    let m = self.packet_block(btype, blen)?;
                    self.consume(blen);
                    return Ok(Some(m));
                }
                t if numbered_like_a_frame(t) => self.frame += 1,
                _ => {}
            }
            self.consume(blen);
        }
    }

    /// Extract a packet from an EPB, SPB or obsolete PB already fully buffered.
    fn packet_block(&mut self, btype: u32, blen: usize) -> Result<Meta, CaptureError> {
        let s = self.start;
        let be = self.ng_big_endian;
        let block = &self.buf[s..s + blen];
        let what = "pcapng packet block";
        // (interface, raw timestamp or None, data offset within block, caplen, origlen)
        let (if_id, ts, data_off, caplen, orig_len) = match btype {
            PCAPNG_EPB => {
                // The captured length must fit the block (pcap-parser says
                // only "Verify" or "Incomplete(Size(..))" of it).
                if blen >= 32 {
                    let caplen = u32_at(block, 20, be) as usize;
                    if 28 + caplen + 4 > blen {
                        return Err(self.corrupt(
                            what,
                            format!(
                                "enhanced packet block: captured length {caplen} does not fit the block of {blen} bytes"
                            ),
                        ));
                    }
                }
                let parsed = if be {
                    parse_enhancedpacketblock_be(block)
                } else {
                    parse_enhancedpacketblock_le(block)
                };
                match parsed {
                    Ok((_, epb)) => {
                        let off = epb.data.as_ptr() as usize - block.as_ptr() as usize;
                        let caplen = (epb.caplen as usize).min(epb.data.len());
                        let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                        (epb.if_id, Some(ts), off, caplen, epb.origlen)
                    }
                    Err(e) => {
                        return Err(self
                            .corrupt(what, format!("enhanced packet block: {}", parse_error(&e))));
                    }
                }
            }
            PCAPNG_SPB => {
                let parsed = if be {
                    parse_simplepacketblock_be(block)
                } else {
                    parse_simplepacketblock_le(block)
                };
                match parsed {
                    Ok((_, spb)) => {
                        let off = spb.data.as_ptr() as usize - block.as_ptr() as usize;
                        // SPB: captured length = min(original length, snaplen of interface 0).
                        let snap = self.interfaces.first().map_or(u32::MAX, |i| i.snaplen);
                        let snap = if snap == 0 { u32::MAX } else { snap };
                        let caplen = (spb.origlen.min(snap) as usize).min(spb.data.len());
                        (0, None, off, caplen, spb.origlen)
                    }
                    Err(e) => {
                        return Err(
                            self.corrupt(what, format!("simple packet block: {}", parse_error(&e)))
                        );
                    }
                }
            }
            _ => {
                // Obsolete Packet Block (pcapng Appendix A): parsed by hand, pcap-parser
                // treats it as unknown. if_id u16, drops u16, ts_high, ts_low, caplen, origlen.
                if blen < 32 {
                    return Err(self.corrupt(what, format!("packet block length {blen} < 32")));
                }
                let if_id = if be {
                    u16::from_be_bytes([block[8], block[9]])
                } else {
                    u16::from_le_bytes([block[8], block[9]])
                };
                let ts =
                    (u64::from(u32_at(block, 12, be)) << 32) | u64::from(u32_at(block, 16, be));
                let caplen = u32_at(block, 20, be) as usize;
                let orig = u32_at(block, 24, be);
                if caplen > blen - 32 {
                    return Err(
                        self.corrupt(what, format!("captured length {caplen} exceeds the block"))
                    );
                }
                (u32::from(if_id), Some(ts), 28, caplen, orig)
            }
        };
        let Some(iface) = self.interfaces.get(if_id as usize).copied() else {
            return Err(self.corrupt(
                what,
                format!(
                    "interface id {if_id} but the section describes {} interface(s)",
                    self.interfaces.len()
                ),
            ));
        };
        let time = match ts {
            Some(raw) => make_time(raw, iface.units, iface.ts_offset),
            None => self.last_time,
        };
        self.frame += 1;
        self.last_time = time;
        Ok(Meta {
            frame: self.frame,
            time,
            link_type: iface.link_type,
            interface: if_id,
            data: s + data_off,
            len: caplen,
            orig_len: orig_len.max(caplen as u32),
            offset: self.offset,
        })
    }
}

/// What pcap-parser said of a block, in words: its error kind and where it
/// stopped, never the bytes (its Debug form prints the whole rest of the
/// block).
fn parse_error<I: AsRef<[u8]>>(e: &pcap_parser::nom::Err<pcap_parser::PcapError<I>>) -> String {
    use pcap_parser::PcapError as P;
    use pcap_parser::nom::Err;
    let inner = match e {
        Err::Incomplete(n) => return format!("cut short ({n:?} more bytes needed)"),
        Err::Error(p) | Err::Failure(p) => p,
    };
    match inner {
        P::NomError(i, kind) => format!(
            "malformed ({kind:?} check failed, {} bytes before the block's end: a length that does not fit the block?)",
            i.as_ref().len()
        ),
        P::OwnedNomError(i, kind) => format!(
            "malformed ({kind:?} check failed, {} bytes before the block's end)",
            i.len()
        ),
        P::Incomplete(n) => format!("cut short ({n} more bytes needed)"),
        P::Eof | P::UnexpectedEof => "cut short".to_owned(),
        P::BufferTooSmall => "larger than the buffer".to_owned(),
        P::ReadError => "read error".to_owned(),
        P::HeaderNotRecognized => "header not recognized as pcap or pcapng".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testutil::{Ng, pcap};

    /// (frame, time, link type, data, orig_len, offset)
    type Pk = (u64, Timestamp, u32, Vec<u8>, u32, u64);

    fn all(bytes: &[u8]) -> (Vec<Pk>, Option<CaptureError>) {
        let mut out = Vec::new();
        let mut r = match Reader::new(bytes) {
            Ok(r) => r,
            Err(e) => return (out, Some(e)),
        };
        loop {
            match r.next_packet() {
                Ok(Some(p)) => out.push((
                    p.frame,
                    p.time,
                    p.link_type.0,
                    p.data.to_vec(),
                    p.orig_len,
                    p.offset,
                )),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn pcap_both_byte_orders_and_resolutions() {
        for be in [false, true] {
            for nanos in [false, true] {
                let f = pcap(
                    be,
                    nanos,
                    101,
                    &[(100, 999_999, b"abc", 3), (101, 5, b"defg", 1500)],
                );
                let r = Reader::new(&f[..]).unwrap();
                assert_eq!(
                    r.format(),
                    Format::Pcap {
                        big_endian: be,
                        nanosecond: nanos
                    }
                );
                let (p, err) = all(&f);
                assert!(err.is_none());
                assert_eq!(p.len(), 2);
                let mul = if nanos { 1 } else { 1000 };
                assert_eq!(
                    p[0].1,
                    Timestamp {
                        sec: 100,
                        nsec: 999_999 * mul
                    }
                );
                assert_eq!(
                    (p[0].0, p[0].2, &p[0].3[..], p[0].4, p[0].5),
                    (1, 101, &b"abc"[..], 3, 24)
                );
                assert_eq!(
                    p[1].1,
                    Timestamp {
                        sec: 101,
                        nsec: 5 * mul
                    }
                );
                assert_eq!(
                    (p[1].0, &p[1].3[..], p[1].4, p[1].5),
                    (2, &b"defg"[..], 1500, 24 + 16 + 3)
                );
            }
        }
    }

    #[test]
    fn pcapng_sections_interfaces_resolutions_and_block_kinds() {
        let le = Ng { be: false };
        let be = Ng { be: true };
        let mut f = le.shb();
        f.extend(le.idb(1, None)); // if 0: Ethernet, microseconds (default)
        f.extend(le.idb(101, Some(9))); // if 1: raw IP, nanoseconds
        f.extend(le.epb(1, 1_700_000_000_123_456_789, b"raw!", 4));
        f.extend(le.unknown(10));
        f.extend(le.epb(0, 1_700_000_001_000_002, b"ether", 60));
        f.extend(le.spb(b"simple"));
        // Second section, other byte order, renumbered interfaces.
        f.extend(be.shb());
        f.extend(be.idb(113, Some(0x80 | 10))); // SLL, 2^-10 s
        f.extend(be.idb(276, Some(3))); // SLL2, milliseconds
        f.extend(be.pb(1, 5_000_123, b"obsolete"));
        f.extend(be.epb(0, (7 << 10) | 512, b"x", 1));
        let (p, err) = all(&f);
        assert!(err.is_none(), "{err:?}");
        #[allow(clippy::type_complexity)]
        let got: Vec<(u64, u32, i64, u32, &[u8], u32)> = p
            .iter()
            .map(|x| (x.0, x.2, x.1.sec, x.1.nsec, &x.3[..], x.4))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 101, 1_700_000_000, 123_456_789, &b"raw!"[..], 4),
                (2, 1, 1_700_000_001, 2_000, &b"ether"[..], 60),
                // SPB: no timestamp, repeats the previous one.
                (3, 1, 1_700_000_001, 2_000, &b"simple"[..], 6),
                (4, 276, 5_000, 123_000_000, &b"obsolete"[..], 8),
                (5, 113, 7, 500_000_000, &b"x"[..], 1),
            ]
        );
    }

    /// A classic pcap rewritten as one of the other flavours editcap writes
    /// (`-F rh6_1pcap`, `nokiapcap`, `modpcap`, `suse6_3pcap`): `extra`
    /// bytes after each 16-byte record header, the modified magic if asked.
    fn flavour(std: &[u8], be: bool, modified: bool, extra: usize) -> Vec<u8> {
        let mut out = std[..24].to_vec();
        if modified {
            let m = 0xa1b2_cd34u32;
            out[..4].copy_from_slice(&if be { m.to_be_bytes() } else { m.to_le_bytes() });
        }
        let mut at = 24;
        while at < std.len() {
            let caplen = u32_at(std, at + 8, be) as usize;
            out.extend_from_slice(&std[at..at + 16]);
            out.extend((0..extra).map(|i| 0x40 + i as u8));
            out.extend_from_slice(&std[at + 16..at + 16 + caplen]);
            at += 16 + caplen;
        }
        out
    }

    /// Every pcap flavour Wireshark writes, in both byte orders: the same
    /// packets. They were read as standard pcap: the first packet's bytes
    /// shifted, then a corrupt record. (With one record only, the usual
    /// flavour of the magic is taken.)
    #[test]
    fn pcap_flavours_are_told_apart_by_their_records() {
        let pkts: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; 40 + 13 * usize::from(i)])
            .collect();
        for be in [false, true] {
            for n in [2, 3, 5] {
                let recs: Vec<(u32, u32, &[u8], u32)> = pkts[..n]
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        (
                            1_700_000_000 + i as u32,
                            999_000,
                            &d[..],
                            d.len() as u32 + 7,
                        )
                    })
                    .collect();
                let std = pcap(be, false, 1, &recs);
                let (want, err) = all(&std);
                assert!(err.is_none());
                let strip = |p: Vec<Pk>| -> Vec<(u64, Timestamp, Vec<u8>, u32)> {
                    p.into_iter().map(|x| (x.0, x.1, x.3, x.4)).collect()
                };
                let want = strip(want);
                for (modified, extra, name) in [
                    (false, 8, "RedHat 6.1"),
                    (false, 4, "Nokia"),
                    (true, 8, "modified"),
                    (true, 12, "SuSE 6.3"),
                ] {
                    let f = flavour(&std, be, modified, extra);
                    let (got, err) = all(&f);
                    assert!(err.is_none(), "{name} be={be} n={n}: {err:?}");
                    assert_eq!(strip(got), want, "{name} be={be} n={n}");
                    // Cut inside the last record: the error names the flavour.
                    let e = all(&f[..f.len() - 3]).1.unwrap().to_string();
                    assert!(e.contains(name), "{name}: {e}");
                }
            }
        }
    }

    /// `if_tsoffset` in either byte order, with `if_tsresol`.
    #[test]
    fn ts_offset_in_both_byte_orders() {
        for be in [false, true] {
            let ng = Ng { be };
            let mut f = ng.shb();
            f.extend(ng.idb_offset(1, 0x80 | 20, 1_000_000_000));
            f.extend(ng.idb_offset(1, 9, -1_000_000_000));
            f.extend(ng.epb(0, (795_252_648 << 20) | (1 << 19), b"x", 1));
            f.extend(ng.epb(1, 2_795_252_648_500_000_000, b"y", 1));
            let (p, err) = all(&f);
            assert!(err.is_none(), "{err:?}");
            let want = Timestamp {
                sec: 1_795_252_648,
                nsec: 500_000_000,
            };
            assert_eq!((p[0].1, p[1].1), (want, want), "big-endian: {be}");
        }
    }

    /// Frame numbers are Wireshark's: tshark 4.0 lists custom blocks,
    /// systemd journal entries and sysdig events as frames of their own
    /// (name resolution, decryption secrets and unknown blocks not).
    #[test]
    fn blocks_wireshark_lists_as_frames_are_counted() {
        for be in [false, true] {
            let ng = Ng { be };
            let mut f = ng.shb();
            f.extend(ng.idb(1, None));
            f.extend(ng.epb(0, 1, b"a", 1));
            f.extend(ng.other(0x0000_0BAD, 12)); // custom, copyable: frame 2
            f.extend(ng.other(0x4000_0BAD, 12)); // custom, not copyable: 3
            f.extend(ng.other(4, 12)); // name resolution
            f.extend(ng.other(10, 12)); // decryption secrets
            f.extend(ng.unknown(12));
            f.extend(ng.other(9, 40)); // systemd journal export: 4
            f.extend(ng.epb(0, 2, b"b", 1)); // 5
            f.extend(ng.other(0x204, 40)); // sysdig event: 6
            f.extend(ng.other(0x4000_0BAD, MAX_BLOCK_LEN + 4)); // skipped unread: 7
            f.extend(ng.epb(0, 3, b"c", 1)); // 8
            let (p, err) = all(&f);
            assert!(err.is_none(), "{err:?}");
            let frames: Vec<(u64, &[u8])> = p.iter().map(|x| (x.0, &x.3[..])).collect();
            assert_eq!(frames, [(1, &b"a"[..]), (5, b"b"), (8, b"c")]);
        }
    }

    #[test]
    fn truncated_file_keeps_earlier_packets() {
        let f = pcap(
            false,
            false,
            1,
            &[(1, 0, &[1; 40], 40), (2, 0, &[2; 40], 40)],
        );
        let cut = &f[..f.len() - 10];
        let (p, err) = all(cut);
        assert_eq!(p.len(), 1);
        let e = err.unwrap();
        match &e {
            CaptureError::Truncated {
                offset,
                frame,
                needed,
                available,
                ..
            } => {
                assert_eq!((*offset, *frame, *needed, *available), (24 + 56, 2, 56, 46));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("byte offset 80 (frame 2)"), "{e}");
        // Cut inside a record header, and inside a pcapng block.
        let (p, err) = all(&f[..24 + 56 + 7]);
        assert_eq!(p.len(), 1);
        assert!(matches!(
            err,
            Some(CaptureError::Truncated {
                offset: 80,
                frame: 2,
                ..
            })
        ));
        let ng = Ng { be: false };
        let mut g = ng.shb();
        g.extend(ng.idb(1, None));
        let good = g.len();
        g.extend(ng.epb(0, 1, &[9; 30], 30));
        let (p, err) = all(&g[..g.len() - 1]);
        assert!(p.is_empty());
        assert!(
            matches!(err, Some(CaptureError::Truncated { offset, frame: 1, .. }) if offset == good as u64)
        );
    }

    #[test]
    fn garbage_and_corrupt_inputs() {
        let e = Reader::new(&b"GET / HTTP/1.1\r\n"[..]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "not a pcap/pcapng file (starts with 47 45 54 20 2f 20 48 54 \"GET / HT\")"
        );
        assert!(
            Reader::new(&b""[..])
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        // A record length past the bound is corrupt, reported before allocating.
        let mut f = pcap(false, false, 1, &[(1, 0, b"ok", 2)]);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
        let (p, err) = all(&f);
        assert_eq!(p.len(), 1);
        assert!(
            matches!(
                err,
                Some(CaptureError::Corrupt {
                    offset: 42,
                    frame: 2,
                    ..
                })
            ),
            "{err:?}"
        );
        // pcapng: EPB on an undeclared interface; mismatched trailer.
        let ng = Ng { be: false };
        let mut g = ng.shb();
        g.extend(ng.idb(1, None));
        g.extend(ng.epb(0, 1, b"a", 1));
        let at = g.len() as u64;
        g.extend(ng.epb(3, 1, b"b", 1));
        let (p, err) = all(&g);
        assert_eq!(p.len(), 1);
        let e = err.unwrap();
        assert!(
            matches!(e, CaptureError::Corrupt { offset, frame: 2, .. } if offset == at),
            "{e}"
        );
        // An EPB whose captured length does not fit its block (either byte
        // order): named in words, not pcap-parser's Debug dump of the block.
        for be in [false, true] {
            let ng = Ng { be };
            let mut g = ng.shb();
            g.extend(ng.idb(1, None));
            let mut epb = ng.epb(0, 1, &[7u8; 64], 64);
            let caplen = if be {
                0xffff_ffffu32.to_be_bytes()
            } else {
                0xffff_ffffu32.to_le_bytes()
            };
            epb[20..24].copy_from_slice(&caplen);
            g.extend(epb);
            let e = all(&g).1.unwrap().to_string();
            assert!(
                e.contains("captured length 4294967295 does not fit the block of 96 bytes"),
                "{e}"
            );
            assert!(e.len() < 200, "{e}");
        }
        let mut h = ng.shb();
        let mut b = ng.idb(1, None);
        let n = b.len();
        b[n - 1] ^= 1;
        h.extend(b);
        assert!(matches!(
            all(&h).1,
            Some(CaptureError::Corrupt {
                offset: 28,
                frame: 1,
                ..
            })
        ));
    }

    fn gzip(parts: &[&[u8]]) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::new();
        for p in parts {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(p).unwrap();
            out.extend(e.finish().unwrap());
        }
        out
    }

    /// A gzip-compressed capture (as tshark reads it), also in several gzip
    /// members split mid-block, read in pieces of any size: the same
    /// packets. Cut short or damaged: the packets before, then an error
    /// that says gzip. Other compressions and formats are named.
    #[test]
    fn gzip_is_decompressed_others_are_named() {
        let ng = Ng { be: true };
        let mut g = ng.shb();
        g.extend(ng.idb(101, Some(9)));
        for i in 0..50u8 {
            g.extend(ng.epb(0, u64::from(i), &vec![i; 100 + usize::from(i) * 7], 2000));
        }
        let p = pcap(false, false, 1, &[(1, 2, &[3; 20], 20), (3, 4, &[5; 7], 9)]);
        for file in [g, p] {
            let (want, err) = all(&file);
            assert!(err.is_none());
            let whole = gzip(&[&file]);
            let split = gzip(&[&file[..50], &file[50..51], &file[51..]]);
            for z in [&whole, &split] {
                for step in [1, 7, 4096] {
                    let mut r = Reader::new(Pieces { data: z, step }).unwrap();
                    assert!(r.is_gzip());
                    let mut n = 0;
                    while let Some(p) = r.next_packet().unwrap() {
                        assert_eq!(p.data, &want[n].3[..]);
                        assert_eq!(
                            (p.frame, p.time, p.offset),
                            (want[n].0, want[n].1, want[n].5)
                        );
                        n += 1;
                    }
                    assert_eq!(n, want.len());
                }
            }
            let (pk, err) = all(&whole[..whole.len() * 2 / 3]);
            assert_eq!(pk[..], want[..pk.len()]);
            let e = err.unwrap().to_string();
            assert!(e.starts_with("gzip data bad after"), "{e}");
        }
        let e = Reader::new(&gzip(&[b"GET / HTTP/1.1\r\n"])[..])
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("\"GET / HT\", once gunzipped)"), "{e}");
        for (magic, name) in [
            (&b"\x28\xb5\x2f\xfd\x24\x00\x00\x00"[..], "zstd -dc FILE"),
            (b"\x04\x22\x4d\x18\x64\x40\xa7\x00", "lz4 -dc FILE"),
            (b"\xfd7zXZ\x00\x00\x04", "xz -dc FILE"),
            (b"BZh91AY&SY", "bzip2 -dc FILE"),
            (b"snoop\x00\x00\x00\x00\x00\x00\x02", "a Sun snoop capture"),
        ] {
            let e = Reader::new(magic).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn oversized_unknown_block_is_skipped_without_buffering() {
        let ng = Ng { be: false };
        let mut g = ng.shb();
        g.extend(ng.idb(1, None));
        g.extend(ng.unknown(MAX_BLOCK_LEN + 100));
        g.extend(ng.epb(0, 1, b"after", 5));
        let (p, err) = all(&g);
        assert!(err.is_none());
        assert_eq!(p[0].3, b"after");
    }

    /// A source that hands out the bytes in small pieces, then fails: the reader
    /// must return every complete record before it asks for more.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.data.is_empty() {
                return Err(std::io::Error::new(
                    ErrorKind::WouldBlock,
                    "no more data yet",
                ));
            }
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn streaming_returns_each_record_without_read_ahead() {
        let f = pcap(
            false,
            false,
            1,
            &[(1, 0, &[1; 100], 100), (2, 0, &[2; 100], 100)],
        );
        for step in [1, 7, 4096] {
            let mut r = Reader::new(Trickle { data: &f, step }).unwrap();
            assert_eq!(r.next_packet().unwrap().unwrap().frame, 1);
            assert_eq!(r.next_packet().unwrap().unwrap().frame, 2);
            // Only now does the reader need more input.
            assert!(matches!(
                r.next_packet(),
                Err(CaptureError::Io { offset: 256, .. })
            ));
        }
    }

    /// A source that hands out `step` bytes per read, then ends.
    struct Pieces<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Blocks of every size up to 64 KiB + 100, at every alignment relative to
    /// the read buffer (dumpcap writes blocks this large): each is returned
    /// whole, whatever the size of the reads.
    #[test]
    fn pcapng_blocks_straddling_the_buffer() {
        for be in [false, true] {
            straddling(&Ng { be });
        }
    }

    fn straddling(ng: &Ng) {
        let mut g = ng.shb();
        g.extend(ng.idb(1, None));
        let mut want = Vec::new();
        let mut x: u32 = 12345;
        let mut total = 0;
        while total < 3 * BUFFER_LEN {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let len = (x as usize >> 8) % 65_636;
            let data: Vec<u8> = (0..len).map(|i| (i as u32 ^ x) as u8).collect();
            g.extend(ng.epb(0, want.len() as u64, &data, len as u32));
            total += len + 32;
            want.push(data);
        }
        for step in [1, 7, 4093, 65_536, BUFFER_LEN] {
            let mut r = Reader::new(Pieces { data: &g, step }).unwrap();
            let mut n = 0;
            while let Some(p) = r.next_packet().unwrap() {
                assert_eq!(p.data, &want[n][..], "packet {n}, reads of {step}");
                n += 1;
            }
            assert_eq!(n, want.len(), "reads of {step}");
        }
    }

    #[test]
    fn every_prefix_is_clean() {
        let ng = Ng { be: true };
        let mut g = ng.shb();
        g.extend(ng.idb(101, Some(9)));
        g.extend(ng.epb(0, 1, &[7; 33], 40));
        g.extend(ng.spb(b"zz"));
        g.extend(ng.pb(0, 9, b"pp"));
        let p = pcap(true, true, 1, &[(1, 2, &[3; 20], 20), (3, 4, &[5; 7], 9)]);
        for file in [g, p] {
            let (full, err) = all(&file);
            assert!(err.is_none());
            for cut in 0..file.len() {
                let (pk, err) = all(&file[..cut]);
                assert!(pk.len() < full.len() || err.is_none());
                assert_eq!(pk[..], full[..pk.len()]);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..300), ng in proptest::bool::ANY) {
            let mut f = if ng { Ng { be: false }.shb() } else { pcap(false, false, 1, &[]) };
            f.extend(tail);
            let _ = all(&f);
        }
    }
}
