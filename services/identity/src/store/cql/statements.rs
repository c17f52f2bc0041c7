//! Every CQL statement of the identity adapter, on the tables of the identity migrations
//! (`services/identity/schema/`). Versioned records (tenants, staff, sessions, API keys) are
//! `INSERT ... IF NOT EXISTS` at version 1 and `UPDATE ... IF version = ?` after; listings
//! are single partitions read whole; lookups by many ids are `IN ?` on the partition key.

use loyalty_scylla::statements::AppliedRow;

loyalty_scylla::statements! {
    pub struct IdentityStatements {
        // Tenants, and their list in one partition.
        tenant: "SELECT version, body FROM {keyspace}.tenants WHERE id = ?"
            => (String,) => (i64, Vec<u8>),
        tenants_in: "SELECT version, body FROM {keyspace}.tenants WHERE id IN ?"
            => (Vec<String>,) => (i64, Vec<u8>),
        insert_tenant: "INSERT INTO {keyspace}.tenants (id, version, body) VALUES (?, ?, ?) IF NOT EXISTS"
            => (String, i64, Vec<u8>) => AppliedRow,
        update_tenant: "UPDATE {keyspace}.tenants SET version = ?, body = ? WHERE id = ? IF version = ?"
            => (i64, Vec<u8>, String, i64) => AppliedRow,
        list_tenant: "INSERT INTO {keyspace}.tenant_list (scope, id) VALUES (?, ?)"
            => (String, String) => (),
        tenant_ids: "SELECT id FROM {keyspace}.tenant_list WHERE scope = ?"
            => (String,) => (String,),

        // Staff, and the usernames they claim (a tenant's partition is its staff list).
        staff: "SELECT version, body FROM {keyspace}.staff WHERE id = ?"
            => (Vec<u8>,) => (i64, Vec<u8>),
        staff_in: "SELECT version, body FROM {keyspace}.staff WHERE id IN ?"
            => (Vec<Vec<u8>>,) => (i64, Vec<u8>),
        insert_staff: "INSERT INTO {keyspace}.staff (id, version, body) VALUES (?, ?, ?) IF NOT EXISTS"
            => (Vec<u8>, i64, Vec<u8>) => AppliedRow,
        update_staff: "UPDATE {keyspace}.staff SET version = ?, body = ? WHERE id = ? IF version = ?"
            => (i64, Vec<u8>, Vec<u8>, i64) => AppliedRow,
        claim_username: "INSERT INTO {keyspace}.usernames (tenant, username, staff) VALUES (?, ?, ?) IF NOT EXISTS"
            => (String, String, Vec<u8>) => AppliedRow,
        username_holder: "SELECT staff FROM {keyspace}.usernames WHERE tenant = ? AND username = ?"
            => (String, String) => (Vec<u8>,),
        release_username: "DELETE FROM {keyspace}.usernames WHERE tenant = ? AND username = ? IF staff = ?"
            => (String, String, Vec<u8>) => AppliedRow,
        usernames_of: "SELECT username, staff FROM {keyspace}.usernames WHERE tenant = ?"
            => (String,) => (String, Vec<u8>),

        // Sessions (with a TTL), and the revoked ones by the day they expire.
        session: "SELECT version, body FROM {keyspace}.sessions WHERE id = ?"
            => (Vec<u8>,) => (i64, Vec<u8>),
        sessions_in: "SELECT version, body FROM {keyspace}.sessions WHERE id IN ?"
            => (Vec<Vec<u8>>,) => (i64, Vec<u8>),
        insert_session: "INSERT INTO {keyspace}.sessions (id, version, body) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?"
            => (Vec<u8>, i64, Vec<u8>, i32) => AppliedRow,
        update_session: "UPDATE {keyspace}.sessions USING TTL ? SET version = ?, body = ? WHERE id = ? IF version = ?"
            => (i32, i64, Vec<u8>, Vec<u8>, i64) => AppliedRow,
        list_revoked_session: "INSERT INTO {keyspace}.revoked_sessions (expiry_day, id) VALUES (?, ?) USING TTL ?"
            => (i32, Vec<u8>, i32) => (),
        list_revoked_day: "INSERT INTO {keyspace}.revoked_session_days (scope, expiry_day) VALUES (?, ?) USING TTL ?"
            => (String, i32, i32) => (),
        revoked_days_from: "SELECT expiry_day FROM {keyspace}.revoked_session_days WHERE scope = ? AND expiry_day >= ?"
            => (String, i32) => (i32,),
        revoked_on_days: "SELECT id FROM {keyspace}.revoked_sessions WHERE expiry_day IN ?"
            => (Vec<i32>,) => (Vec<u8>,),

        // API keys, and each tenant's list of them.
        api_key: "SELECT version, body FROM {keyspace}.api_keys WHERE id = ?"
            => (Vec<u8>,) => (i64, Vec<u8>),
        api_keys_in: "SELECT version, body FROM {keyspace}.api_keys WHERE id IN ?"
            => (Vec<Vec<u8>>,) => (i64, Vec<u8>),
        insert_api_key: "INSERT INTO {keyspace}.api_keys (id, version, body) VALUES (?, ?, ?) IF NOT EXISTS"
            => (Vec<u8>, i64, Vec<u8>) => AppliedRow,
        update_api_key: "UPDATE {keyspace}.api_keys SET version = ?, body = ? WHERE id = ? IF version = ?"
            => (i64, Vec<u8>, Vec<u8>, i64) => AppliedRow,
        list_api_key: "INSERT INTO {keyspace}.api_keys_by_tenant (tenant, id) VALUES (?, ?)"
            => (String, Vec<u8>) => (),
        api_key_ids_of: "SELECT id FROM {keyspace}.api_keys_by_tenant WHERE tenant = ?"
            => (String,) => (Vec<u8>,),

        // The audit chains: buckets with their static head, the newest-bucket hint, the list.
        audit_bucket_head: "SELECT head_seq, head_hash FROM {keyspace}.audit WHERE tenant = ? AND bucket = ? LIMIT 1"
            => (String, i64) => (Option<i64>, Option<Vec<u8>>),
        audit_records: "SELECT seq, record FROM {keyspace}.audit WHERE tenant = ? AND bucket = ? AND seq >= ? LIMIT ?"
            => (String, i64, i64, i32) => (i64, Vec<u8>),
        start_audit_bucket: "UPDATE {keyspace}.audit SET head_seq = ?, head_hash = ? WHERE tenant = ? AND bucket = ? IF head_seq = null"
            => (i64, Vec<u8>, String, i64) => AppliedRow,
        continue_audit_bucket: "UPDATE {keyspace}.audit SET head_seq = ?, head_hash = ? WHERE tenant = ? AND bucket = ? IF head_seq = ? AND head_hash = ?"
            => (i64, Vec<u8>, String, i64, i64, Vec<u8>) => AppliedRow,
        audit_record: "INSERT INTO {keyspace}.audit (tenant, bucket, seq, record) VALUES (?, ?, ?, ?)"
            => (String, i64, i64, Vec<u8>) => (),
        audit_head_hint: "SELECT bucket FROM {keyspace}.audit_heads WHERE tenant = ?"
            => (String,) => (i64,),
        set_audit_head_hint: "INSERT INTO {keyspace}.audit_heads (tenant, bucket) VALUES (?, ?)"
            => (String, i64) => (),
        list_audited_tenant: "INSERT INTO {keyspace}.audit_tenants (scope, tenant) VALUES (?, ?)"
            => (String, String) => (),
        audited_tenants: "SELECT tenant FROM {keyspace}.audit_tenants WHERE scope = ?"
            => (String,) => (String,),

        // casbin's policy rules.
        policy_rules: "SELECT rule FROM {keyspace}.policy WHERE scope = ?"
            => (String,) => (String,),
        add_policy_rule: "INSERT INTO {keyspace}.policy (scope, rule) VALUES (?, ?) IF NOT EXISTS"
            => (String, String) => AppliedRow,
        remove_policy_rule: "DELETE FROM {keyspace}.policy WHERE scope = ? AND rule = ? IF EXISTS"
            => (String, String) => AppliedRow,

        // Signing keys, in one partition.
        signing_keys: "SELECT body FROM {keyspace}.signing_keys WHERE scope = ?"
            => (String,) => (Vec<u8>,),
        put_signing_key: "INSERT INTO {keyspace}.signing_keys (scope, kid, body) VALUES (?, ?, ?)"
            => (String, String, Vec<u8>) => (),

        // Kept replies of administrative writes.
        reply: "SELECT body FROM {keyspace}.replies WHERE key = ?"
            => (String,) => (Vec<u8>,),
        put_reply: "INSERT INTO {keyspace}.replies (key, body) VALUES (?, ?) USING TTL ?"
            => (String, Vec<u8>, i32) => (),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::MIGRATIONS;
    use loyalty_scylla::cql_check::check_statements;

    #[test]
    fn statements_match_the_migrations() {
        assert_eq!(
            check_statements(MIGRATIONS, &IdentityStatements::definitions()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn only_the_writes_that_must_be_conditional_are() {
        let conditional: Vec<&str> = IdentityStatements::definitions()
            .iter()
            .filter(|statement| statement.is_conditional())
            .map(|statement| statement.name)
            .collect();
        assert_eq!(
            conditional,
            [
                "insert_tenant",
                "update_tenant",
                "insert_staff",
                "update_staff",
                "claim_username",
                "release_username",
                "insert_session",
                "update_session",
                "insert_api_key",
                "update_api_key",
                "start_audit_bucket",
                "continue_audit_bucket",
                "add_policy_rule",
                "remove_policy_rule",
            ]
        );
    }
}
