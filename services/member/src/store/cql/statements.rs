//! Every statement of the member store (decision 0012, "The member store"), checked against
//! the member service's migrations by `statements_match_the_migrations`.

use loyalty_scylla::statements::AppliedRow;
use scylla::value::CqlTimestamp;

/// The statics of a member partition: profile, its version, facts, their version.
pub type StaticsRow = (Option<Vec<u8>>, Option<i64>, Option<Vec<u8>>, Option<i64>);
/// The statics of one partition among many, with its key.
pub type KeyedStaticsRow = (
    String,
    String,
    Option<Vec<u8>>,
    Option<i64>,
    Option<Vec<u8>>,
    Option<i64>,
);
/// The versions of a member partition's profile and facts (the write's condition).
pub type VersionsRow = (Option<i64>, Option<i64>);
/// The new versions, then the partition and the versions expected.
pub type GuardBinds = (Option<i64>, Option<i64>, String, String, i64, i64);

loyalty_scylla::statements! {
    pub struct MemberStatements {
        statics: "SELECT profile, profile_version, facts, facts_version FROM {keyspace}.members WHERE tenant = ? AND member = ? LIMIT 1"
            => (String, String) => StaticsRow,
        statics_of: "SELECT DISTINCT tenant, member, profile, profile_version, facts, facts_version FROM {keyspace}.members WHERE tenant = ? AND member IN ?"
            => (String, Vec<String>) => KeyedStaticsRow,
        versions: "SELECT profile_version, facts_version FROM {keyspace}.members WHERE tenant = ? AND member = ? LIMIT 1"
            => (String, String) => VersionsRow,
        // The condition of every member batch, on both versions as read: the pair is the
        // partition's revision, so outbox positions derived from it never repeat. One
        // statement per combination of absent (null) and present versions.
        guard_new: "UPDATE {keyspace}.members SET profile_version = ?, facts_version = ? WHERE tenant = ? AND member = ? IF profile_version = null AND facts_version = null AND merge_lock = null"
            => (Option<i64>, Option<i64>, String, String) => AppliedRow,
        guard_facts_only: "UPDATE {keyspace}.members SET profile_version = ?, facts_version = ? WHERE tenant = ? AND member = ? IF profile_version = null AND facts_version = ? AND merge_lock = null"
            => (Option<i64>, Option<i64>, String, String, i64) => AppliedRow,
        guard_profile_only: "UPDATE {keyspace}.members SET profile_version = ?, facts_version = ? WHERE tenant = ? AND member = ? IF profile_version = ? AND facts_version = null AND merge_lock = null"
            => (Option<i64>, Option<i64>, String, String, i64) => AppliedRow,
        guard_both: "UPDATE {keyspace}.members SET profile_version = ?, facts_version = ? WHERE tenant = ? AND member = ? IF profile_version = ? AND facts_version = ? AND merge_lock = null"
            => GuardBinds => AppliedRow,
        // A merge's hold on a member: taken on the versions its check read, so no write can
        // land between the check and the merge's own batch; it expires if the merge dies.
        lock_new: "UPDATE {keyspace}.members USING TTL ? SET merge_lock = ? WHERE tenant = ? AND member = ? IF profile_version = null AND facts_version = null AND merge_lock = null"
            => (i32, String, String, String) => AppliedRow,
        lock_facts_only: "UPDATE {keyspace}.members USING TTL ? SET merge_lock = ? WHERE tenant = ? AND member = ? IF profile_version = null AND facts_version = ? AND merge_lock = null"
            => (i32, String, String, String, i64) => AppliedRow,
        lock_profile_only: "UPDATE {keyspace}.members USING TTL ? SET merge_lock = ? WHERE tenant = ? AND member = ? IF profile_version = ? AND facts_version = null AND merge_lock = null"
            => (i32, String, String, String, i64) => AppliedRow,
        lock_both: "UPDATE {keyspace}.members USING TTL ? SET merge_lock = ? WHERE tenant = ? AND member = ? IF profile_version = ? AND facts_version = ? AND merge_lock = null"
            => (i32, String, String, String, i64, i64) => AppliedRow,
        /// A merge's batch on its own hold: the member's last one lets go of it, an earlier
        /// one leaves the hold (and its expiry) as it is.
        guard_locked: "UPDATE {keyspace}.members SET profile_version = ?, facts_version = ?, merge_lock = null WHERE tenant = ? AND member = ? IF merge_lock = ?"
            => (Option<i64>, Option<i64>, String, String, String) => AppliedRow,
        guard_locked_keep: "UPDATE {keyspace}.members SET profile_version = ?, facts_version = ? WHERE tenant = ? AND member = ? IF merge_lock = ?"
            => (Option<i64>, Option<i64>, String, String, String) => AppliedRow,
        unlock: "UPDATE {keyspace}.members SET merge_lock = ? WHERE tenant = ? AND member = ? IF merge_lock = ?"
            => (Option<String>, String, String, String) => AppliedRow,
        set_profile: "UPDATE {keyspace}.members SET profile = ? WHERE tenant = ? AND member = ?"
            => (Vec<u8>, String, String) => (),
        set_facts: "UPDATE {keyspace}.members SET facts = ? WHERE tenant = ? AND member = ?"
            => (Vec<u8>, String, String) => (),
        // Rows of a member partition: `h` order history (id: the history cursor), `o` outbox
        // (id: the position in 16 hex digits, so text order is number order).
        put_row: "INSERT INTO {keyspace}.members (tenant, member, kind, id, body) VALUES (?, ?, ?, ?, ?)"
            => (String, String, String, String, Vec<u8>) => (),
        delete_row: "DELETE FROM {keyspace}.members WHERE tenant = ? AND member = ? AND kind = ? AND id = ? IF EXISTS"
            => (String, String, String, String) => AppliedRow,
        history_row: "SELECT body FROM {keyspace}.members WHERE tenant = ? AND member = ? AND kind = 'h' AND id = ?"
            => (String, String, String) => (Option<Vec<u8>>,),
        history_newest: "SELECT body FROM {keyspace}.members WHERE tenant = ? AND member = ? AND kind = 'h' LIMIT ?"
            => (String, String, i32) => (Option<Vec<u8>>,),
        history_before: "SELECT body FROM {keyspace}.members WHERE tenant = ? AND member = ? AND kind = 'h' AND id < ? LIMIT ?"
            => (String, String, String, i32) => (Option<Vec<u8>>,),
        outbox_after: "SELECT id, body FROM {keyspace}.members WHERE tenant = ? AND member = ? AND kind = 'o' AND id > ? ORDER BY kind DESC, id ASC LIMIT ?"
            => (String, String, String, i32) => (String, Option<Vec<u8>>),
        forget_outbox: "DELETE FROM {keyspace}.members WHERE tenant = ? AND member = ? AND kind = 'o' AND id <= ?"
            => (String, String, String) => (),

        claim_index: "INSERT INTO {keyspace}.member_index (tenant, kind, hash, member, claimed_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
            => (String, String, Vec<u8>, String, CqlTimestamp) => AppliedRow,
        index_holder: "SELECT member, claimed_at FROM {keyspace}.member_index WHERE tenant = ? AND kind = ? AND hash = ?"
            => (String, String, Vec<u8>) => (String, Option<CqlTimestamp>),
        take_index: "UPDATE {keyspace}.member_index SET member = ?, claimed_at = ? WHERE tenant = ? AND kind = ? AND hash = ? IF member = ?"
            => (String, CqlTimestamp, String, String, Vec<u8>, String) => AppliedRow,
        release_index: "DELETE FROM {keyspace}.member_index WHERE tenant = ? AND kind = ? AND hash = ? IF member = ?"
            => (String, String, Vec<u8>, String) => AppliedRow,

        // The birthday index: rows shared by many members, so written plainly, before the
        // member's batch, and shown only when the member's profile holds their hash.
        put_birthday: "INSERT INTO {keyspace}.member_birthdays (tenant, hash, member) VALUES (?, ?, ?)"
            => (String, Vec<u8>, String) => (),
        drop_birthday: "DELETE FROM {keyspace}.member_birthdays WHERE tenant = ? AND hash = ? AND member = ?"
            => (String, Vec<u8>, String) => (),
        birthday_members: "SELECT member FROM {keyspace}.member_birthdays WHERE tenant = ? AND hash = ? AND member > ? LIMIT ?"
            => (String, Vec<u8>, String, i32) => (String,),

        claim_order: "INSERT INTO {keyspace}.member_orders (tenant, order_id, member, body, claimed_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
            => (String, String, String, Vec<u8>, CqlTimestamp) => AppliedRow,
        order: "SELECT member, body, claimed_at FROM {keyspace}.member_orders WHERE tenant = ? AND order_id = ?"
            => (String, String) => (String, Option<Vec<u8>>, Option<CqlTimestamp>),
        take_order: "UPDATE {keyspace}.member_orders SET member = ?, body = ?, claimed_at = ? WHERE tenant = ? AND order_id = ? IF member = ?"
            => (String, Vec<u8>, CqlTimestamp, String, String, String) => AppliedRow,
        move_order: "UPDATE {keyspace}.member_orders SET member = ?, body = ? WHERE tenant = ? AND order_id = ? IF member = ?"
            => (String, Vec<u8>, String, String, String) => AppliedRow,
        release_order: "DELETE FROM {keyspace}.member_orders WHERE tenant = ? AND order_id = ? IF member = ?"
            => (String, String, String) => AppliedRow,

        add_to_tenant: "INSERT INTO {keyspace}.members_by_tenant (tenant, bucket, member) VALUES (?, ?, ?)"
            => (String, i32, String) => (),
        tenant_bucket: "SELECT member FROM {keyspace}.members_by_tenant WHERE tenant = ? AND bucket = ? AND member > ? LIMIT ?"
            => (String, i32, String, i32) => (String,),

        tenant_keys: "SELECT version, sealed FROM {keyspace}.tenant_keys WHERE tenant = ?"
            => (String,) => (i32, Option<Vec<u8>>),
        add_tenant_key: "INSERT INTO {keyspace}.tenant_keys (tenant, version, sealed) VALUES (?, ?, ?) IF NOT EXISTS"
            => (String, i32, Vec<u8>) => AppliedRow,
        // Every tenant: the partition keys of tenant_keys (a few rows per tenant), read rarely
        // (the scheduler's turn), so a scan of partition keys is acceptable here.
        tenants: "SELECT DISTINCT tenant FROM {keyspace}.tenant_keys"
            => () => (String,),

        setting: "SELECT value FROM {keyspace}.settings WHERE tenant = ? AND kind = ? AND name = ?"
            => (String, String, String) => (Option<Vec<u8>>,),
        settings: "SELECT name, value FROM {keyspace}.settings WHERE tenant = ? AND kind = ?"
            => (String, String) => (String, Option<Vec<u8>>),
        put_setting: "INSERT INTO {keyspace}.settings (tenant, kind, name, value) VALUES (?, ?, ?, ?)"
            => (String, String, String, Vec<u8>) => (),
        delete_setting: "DELETE FROM {keyspace}.settings WHERE tenant = ? AND kind = ? AND name = ?"
            => (String, String, String) => (),

        add_segment_member: "INSERT INTO {keyspace}.segment_members (tenant, segment, generation, bucket, member) VALUES (?, ?, ?, ?, ?)"
            => (String, String, i64, i32, String) => (),
        segment_bucket: "SELECT member FROM {keyspace}.segment_members WHERE tenant = ? AND segment = ? AND generation = ? AND bucket = ? AND member > ? LIMIT ?"
            => (String, String, i64, i32, String, i32) => (String,),
        drop_segment_bucket: "DELETE FROM {keyspace}.segment_members WHERE tenant = ? AND segment = ? AND generation = ? AND bucket = ?"
            => (String, String, i64, i32) => (),
    }
}
