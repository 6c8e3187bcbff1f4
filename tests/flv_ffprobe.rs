//! Cross-check of the FLV reader and the media tag facts with ffprobe, run live on
//! every FLV in testdata/rtmp/media: per packet the stream type, DTS (= our tag
//! timestamp), PTS (= timestamp + composition time), the key-frame flag and the
//! payload size. ffprobe turns sequence headers into extradata and drops script
//! tags and AVC end-of-sequence tags, so only coded-frame tags are compared, and
//! they are matched by file position (ffprobe's `pos` is the tag's offset).
//!
//! This test fails (it never skips) when ffprobe is not installed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use rtmptool::proto::flv::read_all;
use rtmptool::proto::media::{AudioInfo, VideoInfo};

fn media_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/rtmp/media")
}

fn ffprobe_packets(file: &PathBuf) -> Vec<serde_json::Value> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_packets", "-of", "json"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "ffprobe could not be run ({e}); this test needs it installed \
                 (Debian: apt-get install ffmpeg)"
            )
        });
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    v["packets"].as_array().expect("packets array").clone()
}

#[test]
fn flv_tags_agree_with_ffprobe_packets() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(media_dir())
        .expect("testdata/rtmp/media")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "flv"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 6, "expected the 6 FLVs of testdata/rtmp/media");
    let mut compared = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(file).unwrap();
        let (_, tags, warnings) = read_all(&bytes).unwrap();
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
        let packets = ffprobe_packets(file);
        let mut by_pos: HashMap<u64, &serde_json::Value> = HashMap::new();
        for p in &packets {
            let pos: u64 = p["pos"].as_str().expect("pos").parse().unwrap();
            assert!(
                by_pos.insert(pos, p).is_none(),
                "{name}: two packets at {pos}"
            );
        }
        let mut matched = 0;
        for t in &tags {
            let ctx = format!("{name} tag at offset {}", t.offset);
            let (kind, cts, key, payload_offset) = if t.is_video() {
                let v = VideoInfo::parse(&t.data).unwrap();
                if !v.is_coded_frames() {
                    assert!(
                        !by_pos.contains_key(&t.offset),
                        "{ctx}: ffprobe shows a non-frame tag"
                    );
                    continue;
                }
                (
                    "video",
                    i64::from(v.composition_time.unwrap_or(0)),
                    v.is_keyframe(),
                    v.payload_offset,
                )
            } else if t.is_audio() {
                let a = AudioInfo::parse(&t.data).unwrap();
                if !a.is_coded_frames() {
                    assert!(
                        !by_pos.contains_key(&t.offset),
                        "{ctx}: ffprobe shows a config tag"
                    );
                    continue;
                }
                // Every audio frame is a key frame for ffprobe.
                ("audio", 0, true, a.payload_offset)
            } else {
                assert!(
                    !by_pos.contains_key(&t.offset),
                    "{ctx}: ffprobe shows a script tag"
                );
                continue;
            };
            let p = by_pos
                .get(&t.offset)
                .unwrap_or_else(|| panic!("{ctx}: no ffprobe packet at this position"));
            matched += 1;
            assert_eq!(p["codec_type"], kind, "{ctx}: codec_type");
            assert_eq!(p["dts"], i64::from(t.timestamp), "{ctx}: dts");
            assert_eq!(p["pts"], i64::from(t.timestamp) + cts, "{ctx}: pts");
            let flags = p["flags"].as_str().unwrap();
            assert_eq!(flags.starts_with('K'), key, "{ctx}: key flag {flags}");
            let size: usize = p["size"].as_str().unwrap().parse().unwrap();
            assert_eq!(size, t.data.len() - payload_offset, "{ctx}: payload size");
        }
        assert_eq!(
            matched,
            packets.len(),
            "{name}: ffprobe packets without a tag"
        );
        compared += matched;
    }
    // 6 files, several thousand packets: a floor so an empty comparison cannot pass.
    assert!(compared > 6000, "only {compared} packets compared");
}
