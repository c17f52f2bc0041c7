//! Sets the `cql_cluster` cfg when `SCYLLA_NODES` names a CQL cluster, so the CQL half of
//! the conformance suite runs; without one it is reported as ignored (loyalty_scylla::conformance).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cql_cluster)");
    println!("cargo::rerun-if-env-changed=SCYLLA_NODES");
    if std::env::var("SCYLLA_NODES").is_ok_and(|nodes| !nodes.trim().is_empty()) {
        println!("cargo::rustc-cfg=cql_cluster");
    }
}
