//! Compiles `proto/` (the echo baseline service) with protox, so no system `protoc` is needed.
use std::path::PathBuf;

const PROTOS: &[&str] = &["bench/v1/echo.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto");
    let fds = protox::compile(PROTOS, [&root])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
