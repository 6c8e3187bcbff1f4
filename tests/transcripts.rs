//! `commands/*.md`: the documented examples, run as they are written.
//! Transcripts that need a live server (probe, publish, play) use `text`
//! blocks, which trycmd skips; `console` blocks must run offline on testdata/.

#[test]
fn command_transcripts() {
    trycmd::TestCases::new()
        .register_bin(
            "rtmptool",
            trycmd::schema::Bin::Path(env!("CARGO_BIN_EXE_rtmptool").into()),
        )
        .case("commands/*.md");
}
