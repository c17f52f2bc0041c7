//! Kept replies of administrative writes, by their idempotency key. The service uses a
//! reply for [`REPLY_KEPT_SECS`] after it was made; the row lives that long from its write,
//! plus an hour for clocks that differ, and then goes by itself.

use super::ScyllaIdentityStore;
use super::rows::{encode, reply_from_row};
use crate::service::REPLY_KEPT_SECS;
use crate::store::{ReplyRepository, StoredReply};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;

const REPLY_TTL_SECS: i64 = REPLY_KEPT_SECS + 3_600;

#[async_trait]
impl ReplyRepository for ScyllaIdentityStore {
    async fn reply(&self, key: &str) -> ServiceResult<Option<StoredReply>> {
        self.statements()
            .reply
            .first(self.session(), (key.to_string(),))
            .await?
            .map(reply_from_row)
            .transpose()
    }

    /// An upsert: a newer reply replaces one whose time is up.
    async fn put_reply(&self, key: &str, reply: &StoredReply) -> ServiceResult<()> {
        let ttl = i32::try_from(REPLY_TTL_SECS).unwrap_or(i32::MAX);
        self.statements()
            .put_reply
            .run(self.session(), (key.to_string(), encode(reply)?, ttl))
            .await
    }
}
