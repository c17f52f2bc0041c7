//! The harness itself: the ScyllaDB half skips visibly without `SCYLLA_NODES`.

mod conformance;

#[test]
fn without_scylla_nodes_the_reason_is_given() {
    if std::env::var("SCYLLA_NODES").is_err() {
        assert!(conformance::scylla_config().is_none());
        assert!(conformance::SKIP_REASON.contains("SCYLLA_NODES"));
    }
}
