//! `identity.v1` messages to and from the identity service's types.

use crate::audit::Outcome;
use crate::model::{ApiKey, Brand, Store, Tenant};
use crate::permissions::{self, Permission};
use crate::service::{LoggedIn, Principal, PrincipalKind, RoleView, StaffView};
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{ApiKeyId, BrandId, SessionId, StaffId};
use loyalty_common::{ServiceError, Timestamp};
use loyalty_proto::identity::v1 as pb;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub fn principal(principal: &Principal) -> pb::Principal {
    let (kind, id, session) = match &principal.kind {
        PrincipalKind::Staff { id, session } => ("staff", id.to_string(), session.to_string()),
        PrincipalKind::ApiKey { id } => ("api_key", id.to_string(), String::new()),
        PrincipalKind::System => ("system", String::new(), String::new()),
        PrincipalKind::Service => ("service", String::new(), String::new()),
    };
    pb::Principal {
        subject: principal.subject.clone(),
        tenant: principal.tenant.clone(),
        kind: kind.into(),
        id,
        session,
    }
}

pub fn principal_from(principal: Option<pb::Principal>) -> ServiceResult<Principal> {
    let p = principal.ok_or_else(|| ServiceError::invalid("the principal is missing"))?;
    let kind = match p.kind.as_str() {
        "staff" => PrincipalKind::Staff {
            id: StaffId::parse(&p.id)?,
            session: SessionId::parse(&p.session)?,
        },
        "api_key" => PrincipalKind::ApiKey {
            id: ApiKeyId::parse(&p.id)?,
        },
        "system" => PrincipalKind::System,
        "service" => PrincipalKind::Service,
        other => {
            return Err(ServiceError::invalid(format!(
                "principal kind {other:?} is not staff, api_key, system or service"
            )));
        }
    };
    Ok(Principal {
        subject: p.subject,
        tenant: p.tenant,
        kind,
    })
}

pub fn permission(object: &str, action: &str) -> ServiceResult<Permission> {
    permissions::parse(object, action).ok_or_else(|| {
        ServiceError::invalid(format!("{action} on {object} is not a known permission"))
    })
}

/// A staff account as administrators see it (no secret is in the view).
pub fn staff_member(v: StaffView) -> pb::StaffMember {
    pb::StaffMember {
        id: v.id.to_string(),
        tenant: v.tenant,
        username: v.username,
        display_name: v.display_name,
        roles: v
            .roles
            .into_iter()
            .map(|(role, domain)| pb::RoleInDomain { role, domain })
            .collect(),
        active: v.active,
        locked_until_ms: v.locked_until.map_or(0, |t| t.0),
        second_factor: v.second_factor,
        must_change_password: v.must_change_password,
        created_at_ms: v.created_at.0,
    }
}

/// An API key without its secret's hash.
pub fn api_key_info(k: ApiKey) -> pb::ApiKeyInfo {
    pb::ApiKeyInfo {
        id: k.id.to_string(),
        tenant: k.tenant.to_string(),
        name: k.name,
        roles: k.roles,
        created_at_ms: k.created_at.0,
        created_by: k.created_by,
        expires_at_ms: k.expires_at.map_or(0, |t| t.0),
        last_used_at_ms: k.last_used_at.map_or(0, |t| t.0),
        revoked_at_ms: k.revoked_at.map_or(0, |t| t.0),
    }
}

pub fn role_info(r: RoleView) -> pb::RoleInfo {
    pb::RoleInfo {
        name: r.name,
        built_in: r.built_in,
        permissions: r.permissions,
    }
}

/// Permissions as `object:action`.
pub fn grants(granted: &[Permission]) -> pb::Grants {
    pb::Grants {
        permissions: granted
            .iter()
            .map(|p| format!("{}:{}", p.object, p.action.as_str()))
            .collect(),
        time_zone: String::new(),
    }
}

pub fn outcome(outcome: &Outcome) -> (&'static str, String) {
    match outcome {
        Outcome::Allowed => ("allowed", String::new()),
        Outcome::Denied(code) => ("denied", code.clone()),
        Outcome::Failed(code) => ("failed", code.clone()),
    }
}

pub fn outcome_from(outcome: &str, code: String) -> ServiceResult<Outcome> {
    match outcome {
        "allowed" => Ok(Outcome::Allowed),
        "denied" => Ok(Outcome::Denied(code)),
        "failed" => Ok(Outcome::Failed(code)),
        other => Err(ServiceError::invalid(format!(
            "outcome {other:?} is not allowed, denied or failed"
        ))),
    }
}

/// Plain data as a JSON document (the identity service's types always serialize).
pub fn document<T: Serialize>(value: &T) -> pb::Document {
    pb::Document {
        json: serde_json::to_string(value).unwrap_or_default(),
    }
}

/// A JSON document as `what`; a mismatch is INVALID_ARGUMENT naming the problem.
pub fn parse<T: DeserializeOwned>(json: &str, what: &str) -> ServiceResult<T> {
    serde_json::from_str(json).map_err(|e| ServiceError::invalid(format!("{what}: {e}")))
}

pub fn tenant(t: Tenant) -> pb::Tenant {
    pb::Tenant {
        policy_json: document(&t.policy).json,
        time_zone: t.time_zone.unwrap_or_default(),
        created_at_ms: t.created_at.0,
        id: t.id.to_string(),
        name: t.name,
        brands: t
            .brands
            .into_iter()
            .map(|b| pb::Brand {
                id: b.id.to_string(),
                name: b.name,
                inactive: b.inactive,
            })
            .collect(),
        stores: t
            .stores
            .into_iter()
            .map(|s| pb::Store {
                id: s.id.to_string(),
                name: s.name,
                brand: s.brand.map(|b| b.to_string()).unwrap_or_default(),
                inactive: s.inactive,
            })
            .collect(),
    }
}

pub fn brand_from(b: Option<pb::Brand>) -> ServiceResult<Brand> {
    let b = b.ok_or_else(|| ServiceError::invalid("the brand is missing"))?;
    Ok(Brand {
        id: BrandId::parse(b.id)?,
        name: b.name,
        inactive: false,
    })
}

pub fn store_from(s: Option<pb::Store>) -> ServiceResult<Store> {
    let s = s.ok_or_else(|| ServiceError::invalid("the store is missing"))?;
    let brand = (!s.brand.is_empty()).then_some(s.brand.as_str());
    crate::service::IdentityService::parse_store(&s.id, &s.name, brand)
}

pub fn tokens(logged_in: LoggedIn, now: Timestamp) -> pb::Tokens {
    pb::Tokens {
        access_token: logged_in.access_token,
        access_expires_at_ms: logged_in.access_expires_at.0,
        refresh_token: logged_in.refresh_token,
        must_change_password: logged_in.must_change_password,
        expires_in_secs: (logged_in.access_expires_at.0 - now.0).div_euclid(1000),
    }
}
