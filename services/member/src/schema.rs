//! The member service's CQL migrations (`services/member/schema/`, decision 0012), carried
//! by the binary for `memberd migrate`.

use loyalty_common::schema::Migration;

/// Every migration, in order; a test checks this list against the files.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "member",
        text: include_str!("../schema/0001_member.cql"),
    },
    Migration {
        version: 2,
        name: "member_birthdays",
        text: include_str!("../schema/0002_member_birthdays.cql"),
    },
    Migration {
        version: 3,
        name: "member_leases",
        text: include_str!("../schema/0003_member_leases.cql"),
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
        let members = &tables["members"];
        assert_eq!(members.partition_key, ["tenant", "member"]);
        assert_eq!(
            members.static_columns,
            [
                "profile",
                "profile_version",
                "facts",
                "facts_version",
                "merge_lock"
            ]
        );
        for table in [
            "member_index",
            "member_birthdays",
            "member_orders",
            "members_by_tenant",
            "tenant_keys",
            "settings",
            "segment_members",
            "changes",
            "schema_migrations",
        ] {
            assert!(tables.contains_key(table), "{table}");
        }
    }
}
