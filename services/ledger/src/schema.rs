//! The ledger's CQL migrations (`services/ledger/schema/`, decision 0012), carried by the
//! binary for `memberd migrate`.

use loyalty_common::schema::Migration;

/// Every migration, in order; a test checks this list against the files.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "ledger",
        text: include_str!("../schema/0001_ledger.cql"),
    },
    Migration {
        version: 2,
        name: "ledger_leases",
        text: include_str!("../schema/0002_ledger_leases.cql"),
    },
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
    use super::*;
    use loyalty_common::schema::{check, matches_directory};

    #[test]
    fn the_migrations_are_the_files_numbered_and_rerunnable() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
        matches_directory(&dir, MIGRATIONS).unwrap();
        let tables = check(MIGRATIONS).unwrap();
        let wallets = &tables["wallets"];
        assert_eq!(wallets.partition_key, ["tenant", "member"]);
        assert_eq!(wallets.clustering, ["kind", "id"]);
        assert_eq!(wallets.static_columns, ["version", "head"]);
        let names: Vec<&str> = tables.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "change_readers",
                "changes",
                "due_wallets",
                "index_low_water",
                "open_transfers",
                "outbox_hints",
                "relay_lease",
                "relay_progress",
                "rules",
                "scheduler_leases",
                "schema_migrations",
                "transfers",
                "wallets"
            ]
        );
    }
}
