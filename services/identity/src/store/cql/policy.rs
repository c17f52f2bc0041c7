//! casbin's policy rules: one small partition, a rule's JSON its clustering key, so adding
//! is `IF NOT EXISTS` and removing `IF EXISTS`, each telling whether it changed anything.

use super::rows::{ALL, rule_from_key, rule_key};
use super::{PAGE_SIZE, ScyllaIdentityStore};
use crate::rbac::{PolicyRule, PolicyStore};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;

#[async_trait]
impl PolicyStore for ScyllaIdentityStore {
    async fn load(&self) -> ServiceResult<Vec<PolicyRule>> {
        self.statements()
            .policy_rules
            .all_pages(self.session(), (ALL.to_string(),), PAGE_SIZE)
            .await?
            .iter()
            .map(|(rule,)| rule_from_key(rule))
            .collect()
    }

    async fn add(&self, rule: &PolicyRule) -> ServiceResult<bool> {
        self.statements()
            .add_policy_rule
            .applied(self.session(), (ALL.to_string(), rule_key(rule)?))
            .await
    }

    async fn remove(&self, rule: &PolicyRule) -> ServiceResult<bool> {
        self.statements()
            .remove_policy_rule
            .applied(self.session(), (ALL.to_string(), rule_key(rule)?))
            .await
    }
}
