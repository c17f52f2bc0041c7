//! Compiles `proto/` with protox (pure Rust), so no system `protoc` is needed.
use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "ledger/v1/ledger.proto",
    "events/v1/events.proto",
    "identity/v1/identity.proto",
    "member/v1/member.proto",
    "campaign/v1/campaign.proto",
];

/// The messages holding personal data in the clear.
const PERSONAL: [&str; 2] = [".member.v1.Personal", ".member.v1.FindMemberRequest"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(PROTOS, [&root])?;
    // The descriptor set feeds gRPC server reflection.
    std::fs::write(out_dir.join("descriptor.bin"), fds.encode_to_vec())?;
    // Messages that carry personal data get a Debug of their own that prints none of it
    // (lib.rs), so a logged request shows no phone number.
    tonic_prost_build::configure()
        .skip_debug(PERSONAL)
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
