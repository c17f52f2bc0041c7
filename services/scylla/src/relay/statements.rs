//! Every statement of the outbox relay. The tables are the same in each keyspace that has
//! one (the ledger's and the member service's).

use crate::statements::AppliedRow;
use scylla::value::CqlTimestamp;

crate::statements! {
    pub struct RelayStatements {
        hint: "INSERT INTO {keyspace}.outbox_hints (bucket_minute, shard, at, tenant, member, position) VALUES (?, ?, ?, ?, ?, ?)"
            => (i32, i32, CqlTimestamp, String, String, i64) => (),
        hints: "SELECT at, tenant, member, position FROM {keyspace}.outbox_hints WHERE bucket_minute = ? AND shard = ?"
            => (i32, i32) => (CqlTimestamp, String, String, i64),
        hints_since: "SELECT at, tenant, member, position FROM {keyspace}.outbox_hints WHERE bucket_minute = ? AND shard = ? AND at >= ?"
            => (i32, i32, CqlTimestamp) => (CqlTimestamp, String, String, i64),
        forget_hint: "DELETE FROM {keyspace}.outbox_hints WHERE bucket_minute = ? AND shard = ? AND at = ? AND tenant = ? AND member = ? AND position = ?"
            => (i32, i32, CqlTimestamp, String, String, i64) => (),
        progress: "SELECT relayed FROM {keyspace}.relay_progress WHERE tenant = ? AND member = ?"
            => (String, String) => (i64,),
        set_progress: "INSERT INTO {keyspace}.relay_progress (tenant, member, relayed) VALUES (?, ?, ?) USING TIMESTAMP ?"
            => (String, String, i64, i64) => (),
        append: "INSERT INTO {keyspace}.changes (bucket, seq, tenant, member, position, body) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS"
            => (i64, i64, String, String, i64, Vec<u8>) => AppliedRow,
        changes: "SELECT seq, tenant, member, position, body FROM {keyspace}.changes WHERE bucket = ? AND seq > ? LIMIT ?"
            => (i64, i64, i32) => (i64, String, String, i64, Vec<u8>),
        newest_change: "SELECT seq FROM {keyspace}.changes WHERE bucket = ? ORDER BY seq DESC LIMIT 1"
            => (i64,) => (i64,),
        take_lease: "INSERT INTO {keyspace}.relay_lease (service, holder) VALUES (?, ?) IF NOT EXISTS USING TTL ?"
            => (String, String, i32) => AppliedRow,
        renew_lease: "UPDATE {keyspace}.relay_lease USING TTL ? SET holder = ? WHERE service = ? IF holder = ?"
            => (i32, String, String, String) => AppliedRow,
        reader: "SELECT seq FROM {keyspace}.change_readers WHERE reader = ?"
            => (String,) => (i64,),
        save_reader: "INSERT INTO {keyspace}.change_readers (reader, seq) VALUES (?, ?)"
            => (String, i64) => (),
        init_reader: "INSERT INTO {keyspace}.change_readers (reader, seq) VALUES (?, ?) IF NOT EXISTS"
            => (String, i64) => AppliedRow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_match_the_migrations_of_both_keyspaces() {
        for migrations in [
            loyalty_ledger::schema::MIGRATIONS,
            loyalty_member::schema::MIGRATIONS,
        ] {
            let problems =
                crate::cql_check::check_statements(migrations, &RelayStatements::definitions());
            assert!(problems.is_empty(), "{problems:#?}");
        }
    }
}
