//! The identity service's CQL migrations (`services/identity/schema/`, decision 0012),
//! carried by the binary for `memberd migrate`.

use loyalty_common::schema::Migration;

/// Every migration, in order; a test checks this list against the files.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "identity",
    text: include_str!("../schema/0001_identity.cql"),
}];

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
        assert_eq!(tables["audit"].partition_key, ["tenant", "bucket"]);
        assert_eq!(tables["audit"].static_columns, ["head_seq", "head_hash"]);
        for table in [
            "tenants",
            "staff",
            "usernames",
            "sessions",
            "revoked_sessions",
            "api_keys",
            "api_keys_by_tenant",
            "audit_heads",
            "policy",
            "signing_keys",
            "replies",
        ] {
            assert!(tables.contains_key(table), "{table}");
        }
    }
}
