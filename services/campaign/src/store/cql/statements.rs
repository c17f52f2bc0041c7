//! Every CQL statement of the campaign store's ScyllaDB adapter, checked offline against the
//! migrations by `statements_match_the_migrations`.

use loyalty_scylla::statements::AppliedRow;

loyalty_scylla::statements! {
    pub struct CampaignStatements {
        /// An entity's state (the first row carries the statics; LIMIT 1 reads no more).
        state: "SELECT version, body FROM {keyspace}.entities WHERE tenant = ? AND key = ? LIMIT 1"
            => (String, String) => (Option<i64>, Option<Vec<u8>>),
        /// A new entity: applies only if the partition has no state yet.
        create: "UPDATE {keyspace}.entities SET version = ?, body = ? WHERE tenant = ? AND key = ? IF version = null"
            => (i64, Vec<u8>, String, String) => AppliedRow,
        /// The next state: applies only if nobody wrote since it was read.
        replace: "UPDATE {keyspace}.entities SET version = ?, body = ? WHERE tenant = ? AND key = ? IF version = ?"
            => (i64, Vec<u8>, String, String, i64) => AppliedRow,
        /// An entity's state cleared, if still at the version read: it reads as absent, and
        /// can be created again.
        remove: "UPDATE {keyspace}.entities SET version = null, body = null WHERE tenant = ? AND key = ? IF version = ?"
            => (String, String, i64) => AppliedRow,
        /// A row of an entity (an outbox row, a marker), in its conditional batch.
        put_row: "INSERT INTO {keyspace}.entities (tenant, key, kind, id, row_body) VALUES (?, ?, ?, ?, ?)"
            => (String, String, String, String, Vec<u8>) => (),
        /// A marker, in the batch that moves its counter back.
        remove_row: "DELETE FROM {keyspace}.entities WHERE tenant = ? AND key = ? AND kind = ? AND id = ?"
            => (String, String, String, String) => (),
        row: "SELECT id FROM {keyspace}.entities WHERE tenant = ? AND key = ? AND kind = ? AND id = ?"
            => (String, String, String, String) => (String,),
        /// A row of an entity with its body (a sale's claim, a member's count).
        row_body: "SELECT row_body FROM {keyspace}.entities WHERE tenant = ? AND key = ? AND kind = ? AND id = ?"
            => (String, String, String, String) => (Option<Vec<u8>>,),
        /// An entity's rows of one kind after an id (a thing's links).
        rows_after: "SELECT id, row_body FROM {keyspace}.entities WHERE tenant = ? AND key = ? AND kind = ? AND id > ? LIMIT ?"
            => (String, String, String, String, i32) => (String, Option<Vec<u8>>),
        outbox_after: "SELECT id, row_body FROM {keyspace}.entities WHERE tenant = ? AND key = ? AND kind = 'o' AND id > ? LIMIT ?"
            => (String, String, String, i32) => (String, Option<Vec<u8>>),
        /// Outbox rows the relay has handed on: one range tombstone.
        forget_outbox: "DELETE FROM {keyspace}.entities WHERE tenant = ? AND key = ? AND kind = 'o' AND id <= ?"
            => (String, String, String) => (),

        list_add: "INSERT INTO {keyspace}.listings (tenant, list, name) VALUES (?, ?, ?)"
            => (String, String, String) => (),
        list_remove: "DELETE FROM {keyspace}.listings WHERE tenant = ? AND list = ? AND name = ?"
            => (String, String, String) => (),
        list_after: "SELECT name FROM {keyspace}.listings WHERE tenant = ? AND list = ? AND name > ? LIMIT ?"
            => (String, String, String, i32) => (String,),

        expiry_add: "INSERT INTO {keyspace}.coupon_expiry (day, shard, pos, tenant, code) VALUES (?, ?, ?, ?, ?)"
            => (i32, i32, String, String, String) => (),
        /// A shard's coupons after a position, up to another.
        expiry_after: "SELECT pos, tenant, code FROM {keyspace}.coupon_expiry WHERE day = ? AND shard = ? AND pos > ? AND pos <= ? LIMIT ?"
            => (i32, i32, String, String, i32) => (String, String, String),

        due_add: "INSERT INTO {keyspace}.due (what, day, at, tenant, id) VALUES (?, ?, ?, ?, ?)"
            => (String, i32, i64, String, String) => (),
        due_before: "SELECT at, tenant, id FROM {keyspace}.due WHERE what = ? AND day = ? AND at < ? LIMIT ?"
            => (String, i32, i64, i32) => (i64, String, String),
        due_remove: "DELETE FROM {keyspace}.due WHERE what = ? AND day = ? AND at = ? AND tenant = ? AND id = ?"
            => (String, i32, i64, String, String) => (),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_match_the_migrations() {
        let problems = loyalty_scylla::cql_check::check_statements(
            crate::schema::MIGRATIONS,
            &CampaignStatements::definitions(),
        );
        assert_eq!(problems, Vec::<String>::new());
    }
}
