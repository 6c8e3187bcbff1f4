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

/// The single-threaded runtime a command's network work runs on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, crate::Exit> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::Exit {
            code: crate::exit::FAILURE,
            error: anyhow::anyhow!("cannot start the runtime: {e}"),
        })
}
