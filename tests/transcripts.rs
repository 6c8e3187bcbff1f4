//! `commands/*.md`: the documented examples, run as they are written.

#[test]
fn command_transcripts() {
    trycmd::TestCases::new()
        .register_bin(
            "rtmptool",
            trycmd::schema::Bin::Path(env!("CARGO_BIN_EXE_rtmptool").into()),
        )
        .case("commands/*.md");
}
