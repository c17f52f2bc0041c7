//! `memberd migrate`: the schema of every service that has a ScyllaDB keyspace, brought up
//! to what this binary carries (decision 0012).

use loyalty_common::schema::Migration;
use loyalty_scylla::ScyllaConfig;

/// Each service's migrations, in the order their keyspaces are migrated.
pub const SERVICES: &[(&str, &[Migration])] = &[
    ("identity", loyalty_identity::schema::MIGRATIONS),
    ("ledger", loyalty_ledger::schema::MIGRATIONS),
    ("member", loyalty_member::schema::MIGRATIONS),
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
