//! A tenant's rules partition: rule sets by version (`v`), the idempotency records of their
//! changes (`i`, kept as long as the rule sets: a tenant writes them rarely), and the static
//! `current` version, the condition of every change.

use super::ScyllaLedgerStore;
use super::rows::{self, RULE_SET, RULES_IDEMPOTENCY, body, decode, encode};
use crate::rules::RuleSet;
use crate::store::{Applied, RulesIdempotency, RulesRepository};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{IdempotencyKey, TenantId};
use loyalty_scylla::statements::BatchWrite;
use std::sync::Arc;

impl ScyllaLedgerStore {
    async fn rules_row(
        &self,
        tenant: &TenantId,
        kind: &str,
        key: Vec<u8>,
    ) -> ServiceResult<Option<Vec<u8>>> {
        let row = self
            .statements
            .rules_row
            .first(
                self.session(),
                (tenant.as_str().to_string(), kind.to_string(), key),
            )
            .await?;
        row.map(|(bytes,)| body(bytes, "rules row")).transpose()
    }

    fn cached_rules(&self, tenant: &TenantId, version: u64) -> Option<Arc<RuleSet>> {
        let cache = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(tenant.as_str())
            .filter(|rules| rules.version == version)
            .cloned()
    }

    fn cache_rules(&self, tenant: &TenantId, rules: Arc<RuleSet>) {
        let mut cache = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= super::CACHED_TENANTS && !cache.contains_key(tenant.as_str()) {
            cache.clear();
        }
        cache.insert(tenant.as_str().to_string(), rules);
    }
}

/// Rule sets stay JSON, as in the embedded store: their tagged enums need a self-describing
/// format.
fn rules_from(bytes: &[u8]) -> ServiceResult<RuleSet> {
    serde_json::from_slice(bytes).map_err(ServiceError::internal)
}

#[async_trait]
impl RulesRepository for ScyllaLedgerStore {
    async fn current(&self, tenant: &TenantId) -> ServiceResult<Option<Arc<RuleSet>>> {
        let row = self
            .statements
            .rules_current
            .first(self.session(), (tenant.as_str().to_string(),))
            .await?;
        let Some((Some(current),)) = row else {
            return Ok(None);
        };
        let version = rows::from_bigint(current, "rules version")?;
        if let Some(rules) = self.cached_rules(tenant, version) {
            return Ok(Some(rules));
        }
        let rules = self.version(tenant, version).await?.ok_or_else(|| {
            ServiceError::internal(format!("current rules version {version} is missing"))
        })?;
        let rules = Arc::new(rules);
        self.cache_rules(tenant, Arc::clone(&rules));
        Ok(Some(rules))
    }

    async fn version(&self, tenant: &TenantId, version: u64) -> ServiceResult<Option<RuleSet>> {
        self.rules_row(tenant, RULE_SET, rows::rules_key(version))
            .await?
            .map(|bytes| rules_from(&bytes))
            .transpose()
    }

    async fn idempotency(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> ServiceResult<Option<RulesIdempotency>> {
        let key = key.as_str().as_bytes().to_vec();
        self.rules_row(tenant, RULES_IDEMPOTENCY, key)
            .await?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    async fn put(
        &self,
        tenant: &TenantId,
        expected_current: u64,
        rules: RuleSet,
        idempotency: RulesIdempotency,
    ) -> ServiceResult<Applied> {
        if expected_current.checked_add(1) != Some(rules.version) {
            return Ok(Applied::Conflict);
        }
        let s = &self.statements;
        let t = tenant.as_str().to_string();
        let version = rows::to_bigint(rules.version, "rules version")?;
        let json = serde_json::to_vec(&rules).map_err(ServiceError::internal)?;
        let record = encode(&idempotency)?;
        let mut batch = BatchWrite::default();
        if expected_current == 0 {
            batch.push(&s.create_rules, (version, t.clone()));
        } else {
            let expected = rows::to_bigint(expected_current, "rules version")?;
            batch.push(&s.replace_rules, (version, t.clone(), expected));
        }
        batch.push(
            &s.insert_rules_row,
            (
                t.clone(),
                RULE_SET.to_string(),
                rows::rules_key(rules.version),
                json,
            ),
        );
        batch.push(
            &s.insert_rules_row,
            (
                t,
                RULES_IDEMPOTENCY.to_string(),
                idempotency.key.as_str().as_bytes().to_vec(),
                record,
            ),
        );
        if !batch
            .apply(self.session(), Some(&self.cluster.ledger_writes))
            .await?
        {
            return Ok(Applied::Conflict);
        }
        self.cache_rules(tenant, Arc::new(rules));
        Ok(Applied::Yes)
    }
}
