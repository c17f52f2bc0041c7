//! Every CQL statement of the ledger's ScyllaDB adapter (decision 0012), checked offline against
//! the ledger's migrations by `statements_match_the_migrations`.
//!
//! Wallet rows are told apart by `kind` (see `rows`): `e` entries, `i` idempotency records,
//! `r` reversal trackers, `o` outbox rows. The clustering order is `(kind ASC, id DESC)`, so a
//! wallet's entries read newest first without an ORDER BY.

use loyalty_scylla::statements::AppliedRow;
use scylla::value::CqlTimestamp;

loyalty_scylla::statements! {
    pub struct LedgerStatements {
        /// The wallet's static head (the first row carries it; LIMIT 1 reads no more).
        head: "SELECT version, head FROM {keyspace}.wallets WHERE tenant = ? AND member = ? LIMIT 1"
            => (String, String) => (Option<i64>, Option<Vec<u8>>),
        /// One row of the wallet by kind and id (an entry, an idempotency record, a tracker).
        wallet_row: "SELECT body FROM {keyspace}.wallets WHERE tenant = ? AND member = ? AND kind = ? AND id = ?"
            => (String, String, String, Vec<u8>) => (Option<Vec<u8>>,),
        /// The entries an idempotency record names, in one read.
        entries_by_id: "SELECT id, body FROM {keyspace}.wallets WHERE tenant = ? AND member = ? AND kind = 'e' AND id IN ?"
            => (String, String, Vec<Vec<u8>>) => (Vec<u8>, Option<Vec<u8>>),
        /// The newest entries.
        history_newest: "SELECT body FROM {keyspace}.wallets WHERE tenant = ? AND member = ? AND kind = 'e' LIMIT ?"
            => (String, String, i32) => (Option<Vec<u8>>,),
        /// The newest entries strictly older than the cursor.
        history_before: "SELECT body FROM {keyspace}.wallets WHERE tenant = ? AND member = ? AND kind = 'e' AND id < ? LIMIT ?"
            => (String, String, Vec<u8>, i32) => (Option<Vec<u8>>,),
        /// The head of a new wallet: applies only if the partition has none yet.
        create_head: "UPDATE {keyspace}.wallets SET version = ?, head = ? WHERE tenant = ? AND member = ? IF version = null"
            => (i64, Vec<u8>, String, String) => AppliedRow,
        /// The next head: applies only if nobody wrote since the head was read.
        replace_head: "UPDATE {keyspace}.wallets SET version = ?, head = ? WHERE tenant = ? AND member = ? IF version = ?"
            => (i64, Vec<u8>, String, String, i64) => AppliedRow,
        /// A row of a commit (entry, reversal tracker, outbox row), in its conditional batch.
        insert_row: "INSERT INTO {keyspace}.wallets (tenant, member, kind, id, body) VALUES (?, ?, ?, ?, ?)"
            => (String, String, String, Vec<u8>, Vec<u8>) => (),
        /// A row that expires (the idempotency record), in its conditional batch.
        insert_row_expiring: "INSERT INTO {keyspace}.wallets (tenant, member, kind, id, body) VALUES (?, ?, ?, ?, ?) USING TTL ?"
            => (String, String, String, Vec<u8>, Vec<u8>, i32) => (),
        /// Outbox rows above a position (newest first, as the table clusters them).
        outbox_after: "SELECT id, body FROM {keyspace}.wallets WHERE tenant = ? AND member = ? AND kind = 'o' AND id > ? ORDER BY kind DESC, id ASC LIMIT ?"
            => (String, String, Vec<u8>, i32) => (Vec<u8>, Option<Vec<u8>>),
        /// Outbox rows the relay has handed on: one range tombstone.
        outbox_forget: "DELETE FROM {keyspace}.wallets WHERE tenant = ? AND member = ? AND kind = 'o' AND id <= ?"
            => (String, String, Vec<u8>) => (),

        /// The tenant's current rules version (static).
        rules_current: "SELECT current FROM {keyspace}.rules WHERE tenant = ? LIMIT 1"
            => (String,) => (Option<i64>,),
        /// A rule set (`v`, key = version) or a rules idempotency record (`i`, key = the key).
        rules_row: "SELECT body FROM {keyspace}.rules WHERE tenant = ? AND kind = ? AND key = ?"
            => (String, String, Vec<u8>) => (Option<Vec<u8>>,),
        create_rules: "UPDATE {keyspace}.rules SET current = ? WHERE tenant = ? IF current = null"
            => (i64, String) => AppliedRow,
        replace_rules: "UPDATE {keyspace}.rules SET current = ? WHERE tenant = ? IF current = ?"
            => (i64, String, i64) => AppliedRow,
        insert_rules_row: "INSERT INTO {keyspace}.rules (tenant, kind, key, body) VALUES (?, ?, ?, ?)"
            => (String, String, Vec<u8>, Vec<u8>) => (),

        transfer: "SELECT revision, body FROM {keyspace}.transfers WHERE tenant = ? AND id = ?"
            => (String, String) => (Option<i64>, Option<Vec<u8>>),
        create_transfer: "INSERT INTO {keyspace}.transfers (tenant, id, revision, body) VALUES (?, ?, ?, ?) IF NOT EXISTS"
            => (String, String, i64, Vec<u8>) => AppliedRow,
        replace_transfer: "UPDATE {keyspace}.transfers SET revision = ?, body = ? WHERE tenant = ? AND id = ? IF revision = ?"
            => (i64, Vec<u8>, String, String, i64) => AppliedRow,
        open_transfer_add: "INSERT INTO {keyspace}.open_transfers (bucket_day, created_at, tenant, id) VALUES (?, ?, ?, ?)"
            => (i32, CqlTimestamp, String, String) => (),
        open_transfers_in: "SELECT created_at, tenant, id FROM {keyspace}.open_transfers WHERE bucket_day = ? LIMIT ?"
            => (i32, i32) => (CqlTimestamp, String, String),
        open_transfer_remove: "DELETE FROM {keyspace}.open_transfers WHERE bucket_day = ? AND created_at = ? AND tenant = ? AND id = ?"
            => (i32, CqlTimestamp, String, String) => (),

        due_add: "INSERT INTO {keyspace}.due_wallets (bucket_hour, at, tenant, member) VALUES (?, ?, ?, ?)"
            => (i32, CqlTimestamp, String, String) => (),
        due_in: "SELECT at, tenant, member FROM {keyspace}.due_wallets WHERE bucket_hour = ? AND at <= ? LIMIT ?"
            => (i32, CqlTimestamp, i32) => (CqlTimestamp, String, String),
        due_remove: "DELETE FROM {keyspace}.due_wallets WHERE bucket_hour = ? AND at = ? AND tenant = ? AND member = ?"
            => (i32, CqlTimestamp, String, String) => (),

        low_water: "SELECT bucket FROM {keyspace}.index_low_water WHERE index_name = ?"
            => (String,) => (Option<i32>,),
        low_water_create: "INSERT INTO {keyspace}.index_low_water (index_name, bucket) VALUES (?, ?) IF NOT EXISTS"
            => (String, i32) => AppliedRow,
        /// A writer lowers the mark to the bucket it is about to write, if it is above.
        low_water_lower: "UPDATE {keyspace}.index_low_water SET bucket = ? WHERE index_name = ? IF bucket > ?"
            => (i32, String, i32) => AppliedRow,
        /// A reader raises the mark from the value it scanned from, so a writer's lowering
        /// in between wins.
        low_water_raise: "UPDATE {keyspace}.index_low_water SET bucket = ? WHERE index_name = ? IF bucket = ?"
            => (i32, String, i32) => AppliedRow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_match_the_migrations() {
        let problems = loyalty_scylla::cql_check::check_statements(
            crate::schema::MIGRATIONS,
            &LedgerStatements::definitions(),
        );
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn only_the_guarded_writes_are_conditional() {
        let conditional: Vec<&str> = LedgerStatements::definitions()
            .iter()
            .filter(|d| d.is_conditional())
            .map(|d| d.name)
            .collect();
        assert_eq!(
            conditional,
            [
                "create_head",
                "replace_head",
                "create_rules",
                "replace_rules",
                "create_transfer",
                "replace_transfer",
                "low_water_create",
                "low_water_lower",
                "low_water_raise"
            ]
        );
    }
}
