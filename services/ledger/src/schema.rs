//! The ledger's CQL migrations (`services/ledger/schema/`, decision 0012), carried by the
//! binary for `memberd migrate`.

use loyalty_common::schema::Migration;

/// Every migration, in order; a test checks this list against the files.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "ledger",
    text: include_str!("../schema/0001_ledger.cql"),
}];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
    use super::*;
    use loyalty_common::schema::check;

    #[test]
    fn the_migrations_are_the_files_numbered_and_rerunnable() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}.cql", m.version, m.name))
            .collect();
        assert_eq!(files, listed, "every file in schema/ is listed, in order");
        for m in MIGRATIONS {
            let on_disk =
                std::fs::read_to_string(dir.join(format!("{:04}_{}.cql", m.version, m.name)));
            assert_eq!(on_disk.unwrap(), m.text);
        }
        let tables = check(MIGRATIONS).unwrap();
        let wallets = &tables["wallets"];
        assert_eq!(wallets.partition_key, ["tenant", "member"]);
        assert_eq!(wallets.clustering, ["kind", "id"]);
        assert_eq!(wallets.static_columns, ["version", "head"]);
        for table in [
            "schema_migrations",
            "rules",
            "transfers",
            "open_transfers",
            "due_wallets",
            "outbox_hints",
            "changes",
            "relay_progress",
            "relay_lease",
            "change_readers",
        ] {
            assert!(tables.contains_key(table), "{table}");
        }
        let first = loyalty_common::schema::statements(MIGRATIONS[0].text);
        assert!(first[0].starts_with("CREATE KEYSPACE IF NOT EXISTS {keyspace}"));
    }
}
