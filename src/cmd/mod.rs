//! One module per command. Commands build reports from library calls; they do
//! not print protocol output themselves except through `report` renderers.

pub mod completions;
pub mod diagnose;
pub mod dump;
pub mod ecn;
pub mod load;
pub mod man;
pub mod play;
pub mod probe;
pub mod probe_rtmfp;
pub mod publish;
pub mod relay;
pub mod serve;
mod streaming;
