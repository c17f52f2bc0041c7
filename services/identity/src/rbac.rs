//! Authorization: RBAC with domains in casbin. A subject (`staff:<id>`, `key:<id>`) holds roles
//! in a domain: `*` (the platform), a tenant (`acme`) or a store (`acme/s01`). A role held in
//! a tenant applies in each of its stores; one held on the platform applies everywhere.
//! Built-in roles are defined for every domain; a tenant's custom roles only in its own.
//! Rules other than the built-in ones live in a [`PolicyStore`] (the service's repository),
//! through a casbin adapter.

use crate::permissions::{Action, Permission};
use async_trait::async_trait;
use casbin::{Adapter, CoreApi, DefaultModel, Enforcer, Filter, MgmtApi, Model, RbacApi};
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::RwLock;

/// The casbin model. `g(r.sub, p.sub, r.dom)` follows role links in the request's domain and,
/// through [`domain_covers`], in the domains that contain it.
pub const MODEL: &str = r#"
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && (p.dom == "*" || p.dom == r.dom || keyMatch(r.dom, p.dom + "/*")) && (p.obj == "*" || p.obj == r.obj) && (p.act == "*" || p.act == r.act)
"#;

/// Whether a role held in domain `held` applies to a request in domain `request`.
fn domain_covers(request: &str, held: &str) -> bool {
    held == "*"
        || held == request
        || request
            .strip_prefix(held)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The built-in roles and what each may do, in every domain.
pub const BUILT_IN: &[(&str, &str, &str)] = &[
    ("platform_admin", "*", "*"),
    ("tenant_admin", "ledger.wallet", "*"),
    ("tenant_admin", "ledger.adjust", "write"),
    ("tenant_admin", "ledger.rules", "*"),
    ("tenant_admin", "member", "*"),
    ("tenant_admin", "member.pii", "read"),
    ("tenant_admin", "member.orders", "*"),
    ("tenant_admin", "member.program", "*"),
    ("tenant_admin", "identity.staff", "*"),
    ("tenant_admin", "identity.roles", "*"),
    ("tenant_admin", "identity.api_keys", "*"),
    ("tenant_admin", "audit", "read"),
    ("tenant_admin", "tenant", "read"),
    ("tenant_admin", "tenant.stores", "*"),
    ("tenant_admin", "tenant.policy", "*"),
    ("tenant_admin", "campaign.coupons", "*"),
    ("tenant_admin", "campaign.redeem", "*"),
    ("tenant_admin", "campaign.sales", "*"),
    ("tenant_admin", "campaign.claims", "*"),
    ("tenant_admin", "campaign.campaigns", "*"),
    ("tenant_admin", "campaign.approvals", "*"),
    ("tenant_admin", "campaign.rewards", "*"),
    ("tenant_admin", "campaign.referrals", "*"),
    ("tenant_admin", "campaign.mall", "*"),
    ("tenant_admin", "campaign.mall_orders", "*"),
    ("tenant_admin", "campaign.draws", "*"),
    ("tenant_admin", "campaign.draw_entries", "*"),
    ("store_manager", "ledger.wallet", "*"),
    ("store_manager", "ledger.adjust", "write"),
    ("store_manager", "ledger.rules", "read"),
    ("store_manager", "member", "*"),
    ("store_manager", "member.pii", "read"),
    ("store_manager", "member.orders", "*"),
    ("store_manager", "identity.staff", "read"),
    ("store_manager", "campaign.coupons", "read"),
    ("store_manager", "campaign.redeem", "*"),
    ("store_manager", "campaign.sales", "read"),
    ("store_manager", "campaign.claims", "*"),
    ("store_manager", "campaign.campaigns", "read"),
    ("store_manager", "campaign.mall", "read"),
    ("store_manager", "campaign.mall_orders", "*"),
    ("store_manager", "campaign.draws", "read"),
    ("clerk", "ledger.wallet", "*"),
    ("clerk", "ledger.rules", "read"),
    ("clerk", "member", "read"),
    ("clerk", "member.orders", "write"),
    ("clerk", "campaign.coupons", "read"),
    ("clerk", "campaign.redeem", "write"),
    ("clerk", "campaign.sales", "read"),
    ("clerk", "campaign.claims", "*"),
    ("clerk", "campaign.mall", "read"),
    ("clerk", "campaign.mall_orders", "*"),
    ("clerk", "campaign.draws", "read"),
    ("auditor", "ledger.wallet", "read"),
    ("auditor", "ledger.rules", "read"),
    ("auditor", "member", "read"),
    ("auditor", "identity.staff", "read"),
    ("auditor", "audit", "read"),
    ("auditor", "campaign.coupons", "read"),
    ("auditor", "campaign.sales", "read"),
    ("auditor", "campaign.claims", "read"),
    ("auditor", "campaign.campaigns", "read"),
    ("auditor", "campaign.mall", "read"),
    ("auditor", "campaign.mall_orders", "read"),
    ("auditor", "campaign.draws", "read"),
    ("auditor", "campaign.draw_entries", "read"),
    ("partner", "ledger.wallet", "*"),
    ("partner", "ledger.rules", "read"),
    ("partner", "member", "read"),
    ("partner", "member.orders", "write"),
    ("partner", "campaign.coupons", "read"),
    ("partner", "campaign.redeem", "write"),
    ("partner", "campaign.sales", "read"),
    ("partner", "campaign.claims", "*"),
    ("partner", "campaign.rewards", "write"),
    ("partner", "campaign.referrals", "*"),
    ("partner", "campaign.mall", "read"),
    ("partner", "campaign.mall_orders", "*"),
    ("partner", "campaign.draws", "read"),
    ("partner", "campaign.draw_entries", "*"),
];

/// What the platform's own work may do in a service of another process
/// ([`crate::service::SERVICE_SUBJECT`], which alone holds this role, in every domain): pay
/// rewards into wallets, read members and their segments, tag them. Nothing of identity,
/// personal data in the clear, the audit log or a programme's settings. It is not among
/// [`built_in_roles`]: nobody can be granted it.
pub const PLATFORM_SERVICE: &[(&str, &str)] = &[
    ("ledger.wallet", "*"),
    ("ledger.adjust", "write"),
    ("member", "*"),
];

/// The names of the built-in roles.
pub fn built_in_roles() -> Vec<&'static str> {
    let mut roles: Vec<&str> = BUILT_IN.iter().map(|(role, _, _)| *role).collect();
    roles.dedup();
    roles
}

/// One stored casbin rule: `p` (a role may do something) or `g` (a subject holds a role).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PolicyRule {
    pub ptype: String,
    pub values: Vec<String>,
}

impl PolicyRule {
    /// `subject` holds `role` in `domain`.
    pub fn grant(subject: &str, role: &str, domain: &str) -> Self {
        Self {
            ptype: "g".into(),
            values: vec![subject.into(), role.into(), domain.into()],
        }
    }

    /// `role` may do `action` on `object` in `domain`.
    pub fn allow(role: &str, domain: &str, object: &str, action: &str) -> Self {
        Self {
            ptype: "p".into(),
            values: vec![role.into(), domain.into(), object.into(), action.into()],
        }
    }
}

/// Where the rules other than the built-in ones are kept.
#[async_trait]
pub trait PolicyStore: Send + Sync + 'static {
    async fn load(&self) -> ServiceResult<Vec<PolicyRule>>;
    /// Adds a rule; false if it was there already.
    async fn add(&self, rule: &PolicyRule) -> ServiceResult<bool>;
    /// Removes a rule; false if it was not there.
    async fn remove(&self, rule: &PolicyRule) -> ServiceResult<bool>;
}

/// The casbin adapter over a [`PolicyStore`], with the built-in roles always loaded.
struct StoreAdapter {
    store: Arc<dyn PolicyStore>,
    /// Set when the store answers that a rule was added or removed: casbin reports only
    /// whether its own copy changed, which on a replica behind the store can differ.
    store_changed: Arc<AtomicBool>,
}

fn adapter_error(e: ServiceError) -> casbin::Error {
    casbin::Error::AdapterError(casbin::error::AdapterError(Box::new(e)))
}

fn insert(m: &mut dyn Model, rule: &PolicyRule) {
    if let Some(assertion) = m
        .get_mut_model()
        .get_mut(&rule.ptype)
        .and_then(|section| section.get_mut(&rule.ptype))
    {
        assertion.get_mut_policy().insert(rule.values.clone());
    }
}

#[async_trait]
impl Adapter for StoreAdapter {
    async fn load_policy(&mut self, m: &mut dyn Model) -> casbin::Result<()> {
        for (role, object, action) in BUILT_IN {
            insert(m, &PolicyRule::allow(role, "*", object, action));
        }
        for (object, action) in PLATFORM_SERVICE {
            insert(
                m,
                &PolicyRule::allow("platform_service", "*", object, action),
            );
        }
        let service = crate::service::SERVICE_SUBJECT;
        insert(m, &PolicyRule::grant(service, "platform_service", "*"));
        for rule in self.store.load().await.map_err(adapter_error)? {
            insert(m, &rule);
        }
        Ok(())
    }

    async fn load_filtered_policy<'a>(
        &mut self,
        m: &mut dyn Model,
        _f: Filter<'a>,
    ) -> casbin::Result<()> {
        self.load_policy(m).await
    }

    async fn save_policy(&mut self, _m: &mut dyn Model) -> casbin::Result<()> {
        // Rules are written one by one as they change; nothing is saved in bulk.
        Ok(())
    }

    async fn clear_policy(&mut self) -> casbin::Result<()> {
        Ok(())
    }

    fn is_filtered(&self) -> bool {
        false
    }

    async fn add_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        let rule = PolicyRule {
            ptype: ptype.into(),
            values: rule,
        };
        let changed = self.store.add(&rule).await.map_err(adapter_error)?;
        self.store_changed.fetch_or(changed, Ordering::SeqCst);
        Ok(changed)
    }

    async fn add_policies(
        &mut self,
        sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        let mut any = false;
        for rule in rules {
            any |= self.add_policy(sec, ptype, rule).await?;
        }
        Ok(any)
    }

    async fn remove_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        let rule = PolicyRule {
            ptype: ptype.into(),
            values: rule,
        };
        let changed = self.store.remove(&rule).await.map_err(adapter_error)?;
        self.store_changed.fetch_or(changed, Ordering::SeqCst);
        Ok(changed)
    }

    async fn remove_policies(
        &mut self,
        sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        let mut any = false;
        for rule in rules {
            any |= self.remove_policy(sec, ptype, rule).await?;
        }
        Ok(any)
    }

    async fn remove_filtered_policy(
        &mut self,
        _sec: &str,
        _ptype: &str,
        _field_index: usize,
        _field_values: Vec<String>,
    ) -> casbin::Result<bool> {
        // Not used: roles are granted and revoked one rule at a time.
        Ok(false)
    }
}

fn casbin_error(e: casbin::Error) -> ServiceError {
    ServiceError::internal(format!("authorization: {e}"))
}

/// Decides whether a subject may do something in a domain, and changes who holds which role.
pub struct Authorizer {
    enforcer: RwLock<Enforcer>,
    /// Decisions made since the rules last changed: casbin evaluates its matcher in a script
    /// engine (about 15 µs a decision), a lookup costs well under one. Any change of a rule
    /// forgets them all.
    decisions: std::sync::Mutex<HashMap<String, bool>>,
    /// Shared with the store adapter: whether the store changed during the last change.
    store_changed: Arc<AtomicBool>,
}

/// One rule change, as casbin makes it.
enum RuleChange {
    AddGrouping(Vec<String>),
    RemoveGrouping(Vec<String>),
    AddPolicy(Vec<String>),
}

/// Decisions remembered at most (then forgotten all at once).
const DECISIONS_CAP: usize = 100_000;

impl Authorizer {
    /// The built-in roles plus every rule in `store`.
    pub async fn new(store: Arc<dyn PolicyStore>) -> ServiceResult<Self> {
        let model = DefaultModel::from_str(MODEL).await.map_err(casbin_error)?;
        let store_changed = Arc::new(AtomicBool::new(false));
        let adapter = StoreAdapter {
            store,
            store_changed: Arc::clone(&store_changed),
        };
        let mut enforcer = Enforcer::new(model, adapter).await.map_err(casbin_error)?;
        enforcer
            .get_role_manager()
            .write()
            .matching_fn(None, Some(domain_covers));
        // Links loaded before the matching function was set must be built again with it.
        enforcer.build_role_links().map_err(casbin_error)?;
        Ok(Self {
            enforcer: RwLock::new(enforcer),
            decisions: std::sync::Mutex::default(),
            store_changed,
        })
    }

    fn decisions(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        // A map of plain values: never left half-changed.
        self.decisions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget_decisions(&self) {
        self.decisions().clear();
    }

    /// Whether `subject` may `permission` in `domain` (`acme` or `acme/s01`).
    pub async fn allows(
        &self,
        subject: &str,
        domain: &str,
        permission: Permission,
    ) -> ServiceResult<bool> {
        let action = match permission.action {
            Action::Read => "read",
            Action::Write => "write",
        };
        // NUL cannot occur in subjects, domains or objects: the key is unambiguous.
        let key = format!("{subject}\0{domain}\0{}\0{action}", permission.object);
        if let Some(decision) = self.decisions().get(&key) {
            return Ok(*decision);
        }
        let enforcer = self.enforcer.read().await;
        let decision = enforcer
            .enforce((subject, domain, permission.object, action))
            .map_err(casbin_error)?;
        // Stored while the rules cannot change (the read lock is held).
        let mut decisions = self.decisions();
        if decisions.len() >= DECISIONS_CAP {
            decisions.clear();
        }
        decisions.insert(key, decision);
        Ok(decision)
    }

    /// Like [`Authorizer::allows`], as an error a caller can return.
    pub async fn require(
        &self,
        subject: &str,
        domain: &str,
        permission: Permission,
    ) -> ServiceResult<()> {
        if self.allows(subject, domain, permission).await? {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorCode::Forbidden,
            format!(
                "{} on {} in {domain} is not granted to this caller",
                permission.action.as_str(),
                permission.object
            ),
        ))
    }

    /// Grants `role` to `subject` in `domain` (stored). False if it was held already.
    pub async fn grant(&self, subject: &str, role: &str, domain: &str) -> ServiceResult<bool> {
        self.change(RuleChange::AddGrouping(vec![
            subject.into(),
            role.into(),
            domain.into(),
        ]))
        .await
    }

    /// Revokes `role` from `subject` in `domain` (stored). False if it was not held.
    pub async fn revoke(&self, subject: &str, role: &str, domain: &str) -> ServiceResult<bool> {
        self.change(RuleChange::RemoveGrouping(vec![
            subject.into(),
            role.into(),
            domain.into(),
        ]))
        .await
    }

    /// Defines what a custom role of a tenant may do (stored).
    pub async fn allow_role(
        &self,
        role: &str,
        domain: &str,
        permission: Permission,
    ) -> ServiceResult<bool> {
        self.change(RuleChange::AddPolicy(vec![
            role.into(),
            domain.into(),
            permission.object.into(),
            permission.action.as_str().into(),
        ]))
        .await
    }

    /// Makes a change in the store and in this replica's rules; whether the store changed.
    /// A replica behind the store (it missed another's announcement) can find its own copy
    /// disagreeing: the store changed and the copy had it so already, or the copy said
    /// "done already" and never asked the store. Either way it reads the rules again, and
    /// in the second case makes the change once more on the fresh copy.
    async fn change(&self, change: RuleChange) -> ServiceResult<bool> {
        for first in [true, false] {
            let (copy_changed, store_changed) = {
                let mut enforcer = self.enforcer.write().await;
                self.store_changed.store(false, Ordering::SeqCst);
                let result = match &change {
                    RuleChange::AddGrouping(rule) => {
                        enforcer.add_grouping_policy(rule.clone()).await
                    }
                    RuleChange::RemoveGrouping(rule) => {
                        enforcer.remove_grouping_policy(rule.clone()).await
                    }
                    RuleChange::AddPolicy(rule) => enforcer.add_policy(rule.clone()).await,
                };
                self.forget_decisions();
                let store_changed = self.store_changed.load(Ordering::SeqCst);
                match result {
                    Ok(copy_changed) => (copy_changed, store_changed),
                    // casbin changes the store first; its copy can then fail to follow (a
                    // role link it never had): the store is what counts.
                    Err(_) if store_changed => (false, true),
                    Err(e) => return Err(casbin_error(e)),
                }
            };
            if copy_changed {
                return Ok(true);
            }
            if store_changed {
                self.reload().await?;
                return Ok(true);
            }
            if first {
                self.reload().await?;
            }
        }
        Ok(false)
    }

    /// The roles `subject` holds in exactly `domain`.
    pub async fn roles_in(&self, subject: &str, domain: &str) -> Vec<String> {
        self.enforcer
            .write()
            .await
            .get_roles_for_user(subject, Some(domain))
    }

    /// Every role `subject` holds, as `(role, domain)`, sorted.
    pub async fn grants_of(&self, subject: &str) -> Vec<(String, String)> {
        let rules = self
            .enforcer
            .read()
            .await
            .get_filtered_grouping_policy(0, vec![subject.to_string()]);
        let mut grants: Vec<(String, String)> = rules
            .into_iter()
            .filter_map(|rule| Some((rule.get(1)?.clone(), rule.get(2)?.clone())))
            .collect();
        grants.sort();
        grants
    }

    /// What the roles defined in exactly `domain` allow, as `(role, object, action)`, sorted:
    /// a tenant's own roles when `domain` is the tenant.
    pub async fn rules_in(&self, domain: &str) -> Vec<(String, String, String)> {
        let rules = self
            .enforcer
            .read()
            .await
            .get_filtered_policy(1, vec![domain.to_string()]);
        let mut allowed: Vec<(String, String, String)> = rules
            .into_iter()
            .filter_map(|r| Some((r.first()?.clone(), r.get(2)?.clone(), r.get(3)?.clone())))
            .collect();
        allowed.sort();
        allowed
    }

    /// Reads every rule from the store again: how a replica takes changes made elsewhere.
    pub async fn reload(&self) -> ServiceResult<()> {
        let mut enforcer = self.enforcer.write().await;
        let loaded = enforcer.load_policy().await.map_err(casbin_error);
        self.forget_decisions();
        loaded?;
        enforcer.build_role_links().map_err(casbin_error)
    }
}

#[cfg(test)]
mod tests;
