//! The campaign service's CQL migrations (`services/campaign/schema/`, decision 0015),
//! carried by the binary for `memberd migrate`.

use loyalty_common::schema::Migration;

/// Every migration, in order; a test checks this list against the files.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "campaign",
        text: include_str!("../schema/0001_campaign.cql"),
    },
    Migration {
        version: 2,
        name: "campaign_leases",
        text: include_str!("../schema/0002_campaign_leases.cql"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_common::schema::{check, matches_directory};

    #[test]
    fn the_migrations_are_the_files_numbered_and_rerunnable() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
        matches_directory(&dir, MIGRATIONS).unwrap();
        let tables = check(MIGRATIONS).unwrap();
        let entities = &tables["entities"];
        assert_eq!(entities.partition_key, ["tenant", "key"]);
        assert_eq!(entities.static_columns, ["version", "body"]);
        for table in [
            "listings",
            "coupon_expiry",
            "due",
            "outbox_hints",
            "changes",
            "relay_progress",
            "relay_lease",
            "scheduler_leases",
            "change_readers",
        ] {
            assert!(tables.contains_key(table), "{table}");
        }
    }
}
