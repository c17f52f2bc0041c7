//! Reading and writing versioned records (tenants, staff, API keys): version 1 is
//! `INSERT ... IF NOT EXISTS`, every later version `UPDATE ... IF version = <version - 1>`,
//! so a write applies only on the version its writer read.

use super::rows::{Versioned, cql_version, from_versioned_row, versioned_row};
use super::{IN_CHUNK, ScyllaIdentityStore, applied};
use crate::store::Applied;
use loyalty_common::error::ServiceResult;
use loyalty_scylla::statements::{AppliedRow, Stmt};
use scylla::serialize::value::SerializeValue;

/// The statements of one kind of versioned record.
pub(super) struct VersionedStatements<'a, K> {
    pub insert: &'a Stmt<(K, i64, Vec<u8>), AppliedRow>,
    pub update: &'a Stmt<(i64, Vec<u8>, K, i64), AppliedRow>,
}

impl ScyllaIdentityStore {
    /// Writes `record` on the version before it. A write that does not apply is a conflict,
    /// even when the stored record equals this one: two writers that read one version and
    /// made the same change (two failed logins counting one failure each) must not both
    /// succeed. A conditional write is never retried by the driver, so a write's own earlier
    /// try cannot be what it finds.
    pub(super) async fn put_versioned<K, T>(
        &self,
        statements: VersionedStatements<'_, K>,
        key: K,
        record: &T,
    ) -> ServiceResult<Applied>
    where
        K: SerializeValue + Clone,
        T: Versioned,
    {
        let (version, body) = versioned_row(record)?;
        let yes = match record.version() {
            // No stored version is one less.
            0 => false,
            1 => {
                statements
                    .insert
                    .applied(self.session(), (key, version, body))
                    .await?
            }
            _ => {
                let read = cql_version(record.version() - 1)?;
                statements
                    .update
                    .applied(self.session(), (version, body, key, read))
                    .await?
            }
        };
        Ok(applied(yes))
    }

    pub(super) async fn get_versioned<K, T>(
        &self,
        read: &Stmt<(K,), (i64, Vec<u8>)>,
        key: K,
    ) -> ServiceResult<Option<T>>
    where
        K: SerializeValue,
        T: Versioned,
    {
        read.first(self.session(), (key,))
            .await?
            .map(from_versioned_row)
            .transpose()
    }

    /// The records of `keys` that exist, in no particular order.
    pub(super) async fn get_many<K, T>(
        &self,
        read: &Stmt<(Vec<K>,), (i64, Vec<u8>)>,
        keys: Vec<K>,
    ) -> ServiceResult<Vec<T>>
    where
        K: SerializeValue + Clone,
        T: Versioned,
    {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(IN_CHUNK) {
            for row in read.rows(self.session(), (chunk.to_vec(),)).await? {
                out.push(from_versioned_row(row)?);
            }
        }
        Ok(out)
    }
}
