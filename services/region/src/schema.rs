//! The control keyspace's CQL migrations (`services/region/schema/`), carried by the binary
//! for `memberd migrate`.

use loyalty_common::schema::Migration;

/// Every migration, in order; a test checks this list against the files.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "regions",
        text: include_str!("../schema/0001_regions.cql"),
    },
    Migration {
        version: 2,
        name: "heartbeats",
        text: include_str!("../schema/0002_heartbeats.cql"),
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
        let homes = &tables["homes"];
        assert_eq!(homes.partition_key, ["scope"]);
        assert_eq!(homes.static_columns, ["epoch"]);
    }
}
