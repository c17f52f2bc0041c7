//! Compiles `proto/` with protox (pure Rust), so no system `protoc` is needed.
use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "ledger/v1/ledger.proto",
    "events/v1/events.proto",
    "identity/v1/identity.proto",
    "member/v1/member.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(PROTOS, [&root])?;
    // The descriptor set feeds gRPC server reflection.
    std::fs::write(out_dir.join("descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
