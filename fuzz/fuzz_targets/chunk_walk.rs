//! The chunk-boundary search on arbitrary bytes: never panics, positions stay
//! in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmptool::proto::chunk::walk::{
    CANDIDATE_CHUNK_SIZES, Search, SearchOptions, Start, WalkState, find_boundary,
};

fuzz_target!(|data: &[u8]| {
    for start in [Start::Join, Start::Continue] {
        let opts = SearchOptions {
            sizes: CANDIDATE_CHUNK_SIZES.to_vec(),
            infer_sizes: true,
            start,
            min_chunks: 3,
            min_messages: 1,
            final_bytes: data.first().is_some_and(|b| b & 1 == 1),
            from: 0,
        };
        let mut pending = Vec::new();
        if let Search::Found(b) = find_boundary(data, &WalkState::default(), &opts, &mut pending) {
            assert!(b.pos < data.len());
        }
        assert!(pending.iter().all(|&p| p < data.len()));
    }
});
