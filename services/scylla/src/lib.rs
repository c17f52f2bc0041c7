//! The ScyllaDB adapters (decision 0012) of identity, the ledger and the member service,
//! the outbox relay, and what they share: the `[scylla]` settings, a session with the
//! consistency profiles they name, the CQL migrations `memberd migrate` applies, typed
//! statements declared in one place per adapter, and their offline check against the
//! migrations.

pub mod body;
pub mod config;
pub mod cql_check;
pub mod identity;
pub mod ledger;
pub mod member;
pub mod migrate;
pub mod relay;
pub mod session;
pub mod statements;
pub mod test_cluster;
pub mod testing;

pub use config::ScyllaConfig;

/// Every statement the adapters prepare, with the keyspaces it runs in (`ledger`, `member`,
/// `identity`): what the check of the statements a cluster ran compares with
/// (`examples/statement_coverage.rs`).
pub fn catalogue() -> Vec<(&'static [&'static str], statements::StatementDef)> {
    const LEDGER: &[&str] = &["ledger"];
    const MEMBER: &[&str] = &["member"];
    const IDENTITY: &[&str] = &["identity"];
    const OUTBOXES: &[&str] = &["ledger", "member"];
    const EVERY: &[&str] = &["identity", "ledger", "member"];
    let tagged = |keyspaces: &'static [&'static str], defs: Vec<statements::StatementDef>| {
        defs.into_iter().map(move |d| (keyspaces, d))
    };
    tagged(LEDGER, ledger::LedgerStatements::definitions())
        .chain(tagged(MEMBER, member::MemberStatements::definitions()))
        .chain(tagged(
            IDENTITY,
            identity::IdentityStatements::definitions(),
        ))
        .chain(tagged(OUTBOXES, relay::RelayStatements::definitions()))
        .chain(tagged(EVERY, migrate::statement_definitions()))
        .collect()
}
