//! `memberd migrate`: the schema of every service that has a ScyllaDB keyspace, brought up
//! to what this binary carries (decision 0012).

use loyalty_campaign::store::cql::CampaignStatements;
use loyalty_common::schema::Migration;
use loyalty_identity::store::cql::IdentityStatements;
use loyalty_ledger::store::cql::LedgerStatements;
use loyalty_member::store::cql::MemberStatements;
use loyalty_region::control::cql::ControlStatements;
use loyalty_scylla::ScyllaConfig;
use loyalty_scylla::lease::LeaseStatements;
use loyalty_scylla::relay::RelayStatements;
use loyalty_scylla::statements::StatementDef;

/// Each service's migrations, in the order their keyspaces are migrated.
pub const SERVICES: &[(&str, &[Migration])] = &[
    ("identity", loyalty_identity::schema::MIGRATIONS),
    ("ledger", loyalty_ledger::schema::MIGRATIONS),
    ("member", loyalty_member::schema::MIGRATIONS),
    ("campaign", loyalty_campaign::schema::MIGRATIONS),
    (
        loyalty_scylla::config::CONTROL_SERVICE,
        loyalty_region::schema::MIGRATIONS,
    ),
];

/// Applies what each keyspace lacks, printing each migration as it starts.
pub async fn run(config: &ScyllaConfig) -> anyhow::Result<()> {
    let cluster = loyalty_scylla::session::connect(config).await?;
    for (service, migrations) in SERVICES {
        let keyspace = config.keyspace(service);
        let applied = loyalty_scylla::migrate::apply(&cluster, config, service, migrations, |m| {
            eprintln!(
                "memberd: {keyspace}: applying migration {:04}_{}",
                m.version, m.name
            );
        })
        .await?;
        let newest = migrations.last().map_or(0, |m| m.version);
        println!(
            "{keyspace}: {} migration(s) applied; schema at version {newest}",
            applied.len()
        );
    }
    Ok(())
}

/// Every statement the services' CQL adapters prepare, with the keyspaces it runs in
/// (`ledger`, `member`, `identity`, `campaign`, `regions`): what the check of the statements a cluster ran compares
/// with (`examples/statement_coverage.rs`).
pub fn statement_catalogue() -> Vec<(&'static [&'static str], StatementDef)> {
    const LEDGER: &[&str] = &["ledger"];
    const MEMBER: &[&str] = &["member"];
    const IDENTITY: &[&str] = &["identity"];
    const CAMPAIGN: &[&str] = &["campaign"];
    const REGIONS: &[&str] = &[loyalty_scylla::config::CONTROL_SERVICE];
    const OUTBOXES: &[&str] = &["ledger", "member", "campaign"];
    const EVERY: &[&str] = &["identity", "ledger", "member", "campaign", "regions"];
    let tagged = |keyspaces: &'static [&'static str], defs: Vec<StatementDef>| {
        defs.into_iter().map(move |d| (keyspaces, d))
    };
    tagged(LEDGER, LedgerStatements::definitions())
        .chain(tagged(MEMBER, MemberStatements::definitions()))
        .chain(tagged(IDENTITY, IdentityStatements::definitions()))
        .chain(tagged(CAMPAIGN, CampaignStatements::definitions()))
        .chain(tagged(REGIONS, ControlStatements::definitions()))
        .chain(tagged(OUTBOXES, RelayStatements::definitions()))
        .chain(tagged(OUTBOXES, LeaseStatements::definitions()))
        .chain(tagged(
            EVERY,
            loyalty_scylla::migrate::statement_definitions(),
        ))
        .collect()
}
