//! The conformance harness itself: without `SCYLLA_NODES` it names no cluster, and says why.

use loyalty_scylla::conformance;

#[test]
fn without_scylla_nodes_the_reason_is_given() {
    if std::env::var("SCYLLA_NODES").is_err() {
        assert!(conformance::scylla_config().is_none());
        assert!(conformance::SKIP_REASON.contains("SCYLLA_NODES"));
    }
}
