//! Who may call what. One table maps every authenticated route to the permission it needs; the
//! middleware authenticates the caller (access token or API key), keeps each caller inside its
//! own tenant, asks the authorizer in the request's domain (the tenant, or `tenant/store` when
//! the request names a store with `X-Store-Id`), and records every write in the audit log.
//! A route missing from the table is refused: access is denied unless granted.

use crate::limits::{RateLimits, Scope};
use crate::problem::problem_response;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use loyalty_common::ServiceError;
use loyalty_common::error::ErrorCode;
use loyalty_identity::audit::Outcome;
use loyalty_identity::checks::{Act, Caller};
use loyalty_identity::client::IdentityClient;
use loyalty_identity::credential;
use loyalty_identity::model::PLATFORM;
use loyalty_identity::permissions::{self as p, Permission};
use loyalty_identity::service::{Principal, PrincipalKind};
use loyalty_proto::transport::{FORWARDED, Forwarded};
use std::sync::Arc;

/// Every authenticated route: method, path template, the permission it needs.
pub const ROUTES: &[(&str, &str, Permission)] = &[
    (
        "GET",
        "/v1/tenants/{tenant}/coupon-templates",
        p::COUPONS_READ,
    ),
    (
        "PUT",
        "/v1/tenants/{tenant}/coupon-templates/{template}",
        p::COUPONS_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/coupon-templates/{template}",
        p::COUPONS_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/coupon-templates/{template}/coupons",
        p::COUPONS_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/coupon-templates/{template}/segment-issues",
        p::COUPONS_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/coupon-templates/{template}/batches",
        p::COUPONS_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/coupon-templates/{template}/imports",
        p::COUPONS_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/coupons/{code}",
        p::COUPONS_READ,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/members/{member}/coupons",
        p::COUPONS_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/carts/evaluations",
        p::COUPONS_READ,
    ),
    ("POST", "/v1/tenants/{tenant}/coupon-redemptions", p::REDEEM),
    (
        "GET",
        "/v1/tenants/{tenant}/coupon-redemptions/{redemption}",
        p::COUPONS_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/coupon-redemptions/{redemption}/confirm",
        p::REDEEM,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/coupon-redemptions/{redemption}/release",
        p::REDEEM,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/coupon-redemptions/{redemption}/undo",
        p::REDEEM,
    ),
    ("POST", "/v1/tenants/{tenant}/flash-sales", p::SALES_WRITE),
    (
        "GET",
        "/v1/tenants/{tenant}/flash-sales/{sale}",
        p::SALES_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/flash-sales/{sale}/claims",
        p::CLAIMS_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/flash-sales/{sale}/claims/{claim}",
        p::CLAIMS_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/flash-sales/{sale}/claims/{claim}/confirm",
        p::CLAIMS_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/flash-sales/{sale}/claims/{claim}/release",
        p::CLAIMS_WRITE,
    ),
    ("GET", "/v1/tenants/{tenant}/campaigns", p::CAMPAIGNS_READ),
    ("POST", "/v1/tenants/{tenant}/campaigns", p::CAMPAIGNS_WRITE),
    (
        "GET",
        "/v1/tenants/{tenant}/campaigns/{campaign}",
        p::CAMPAIGNS_READ,
    ),
    (
        "PUT",
        "/v1/tenants/{tenant}/campaigns/{campaign}",
        p::CAMPAIGNS_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/campaigns/{campaign}/{step}",
        p::CAMPAIGNS_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/campaigns/{campaign}/approval",
        p::CAMPAIGN_APPROVALS,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/campaigns/{campaign}/rejection",
        p::CAMPAIGN_APPROVALS,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/campaigns/{campaign}/dry-run",
        p::CAMPAIGNS_READ,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/campaigns/{campaign}/results",
        p::CAMPAIGNS_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/campaigns/{campaign}/broadcasts",
        p::CAMPAIGNS_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/campaigns/{campaign}/rewards",
        p::CAMPAIGN_REWARDS,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/campaigns/{campaign}/check-ins",
        p::CAMPAIGN_REWARDS,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/birthday-sweeps",
        p::CAMPAIGNS_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/campaigns/{campaign}/referrals",
        p::REFERRALS_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/referral-code",
        p::REFERRALS_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/members/{member}/referrals",
        p::REFERRALS_READ,
    ),
    ("GET", "/v1/tenants/{tenant}/mall/items", p::MALL_READ),
    (
        "PUT",
        "/v1/tenants/{tenant}/mall/items/{item}",
        p::MALL_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/mall/items/{item}",
        p::MALL_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/mall/items/{item}/orders",
        p::MALL_ORDERS_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/mall/items/{item}/orders/{order}",
        p::MALL_ORDERS_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/mall/items/{item}/orders/{order}/{step}",
        p::MALL_ORDERS_WRITE,
    ),
    ("POST", "/v1/tenants/{tenant}/lucky-draws", p::DRAWS_WRITE),
    (
        "GET",
        "/v1/tenants/{tenant}/lucky-draws/{draw}",
        p::DRAWS_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/lucky-draws/{draw}/entries",
        p::DRAW_ENTRIES_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/lucky-draws/{draw}/entries/{entry}",
        p::DRAW_ENTRIES_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/wallet",
        p::WALLET_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/members/{member}/balance",
        p::WALLET_READ,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/members/{member}/history",
        p::WALLET_READ,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/members/{member}/expiring",
        p::WALLET_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/earnings",
        p::WALLET_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/redemptions",
        p::WALLET_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/redemptions/{hold_id}/capture",
        p::WALLET_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/redemptions/{hold_id}/void",
        p::WALLET_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/reversals",
        p::WALLET_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/adjustments",
        p::ADJUST,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/stored-value/top-ups",
        p::WALLET_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/stored-value/spends",
        p::WALLET_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/stored-value/refunds",
        p::WALLET_WRITE,
    ),
    ("POST", "/v1/tenants/{tenant}/transfers", p::WALLET_WRITE),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/profile",
        p::MEMBER_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/members/{member}/profile",
        p::MEMBER_READ,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/members/{member}/profile/unmasked",
        p::PII_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/erasure",
        p::MEMBER_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/members/{member}/erasure",
        p::MEMBER_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/tags",
        p::MEMBER_WRITE,
    ),
    ("GET", "/v1/tenants/{tenant}/member-lookup", p::MEMBER_READ),
    (
        "PATCH",
        "/v1/tenants/{tenant}/members/{member}/profile",
        p::MEMBER_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/orders",
        p::ORDERS_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/members/{member}/orders",
        p::MEMBER_READ,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/members/{member}/activity",
        p::MEMBER_READ,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/members/{member}/tier",
        p::MEMBER_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/tier/reviews",
        p::MEMBER_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/tier/decisions",
        p::PROGRAM_WRITE,
    ),
    ("GET", "/v1/tenants/{tenant}/tier-policy", p::MEMBER_READ),
    ("PUT", "/v1/tenants/{tenant}/tier-policy", p::PROGRAM_WRITE),
    ("GET", "/v1/tenants/{tenant}/scoring-policy", p::MEMBER_READ),
    (
        "PUT",
        "/v1/tenants/{tenant}/scoring-policy",
        p::PROGRAM_WRITE,
    ),
    ("GET", "/v1/tenants/{tenant}/tier-approvals", p::MEMBER_READ),
    (
        "POST",
        "/v1/tenants/{tenant}/tier-reviews",
        p::PROGRAM_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/scoring-runs",
        p::PROGRAM_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/member-key-rotations",
        p::POLICY_WRITE,
    ),
    ("GET", "/v1/tenants/{tenant}/segments", p::MEMBER_READ),
    (
        "GET",
        "/v1/tenants/{tenant}/segments/{code}",
        p::MEMBER_READ,
    ),
    (
        "PUT",
        "/v1/tenants/{tenant}/segments/{code}",
        p::PROGRAM_WRITE,
    ),
    (
        "DELETE",
        "/v1/tenants/{tenant}/segments/{code}",
        p::PROGRAM_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/segments/{code}/refresh",
        p::PROGRAM_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/segments/{code}/members",
        p::MEMBER_READ,
    ),
    ("POST", "/v1/tenants/{tenant}/member-tags", p::MEMBER_WRITE),
    (
        "POST",
        "/v1/tenants/{tenant}/members/{member}/merges",
        p::MEMBER_WRITE,
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/merges/{merge_id}",
        p::MEMBER_READ,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/merges/{merge_id}/reversal",
        p::MEMBER_WRITE,
    ),
    ("GET", "/v1/tenants/{tenant}/earning-rules", p::RULES_READ),
    ("POST", "/v1/tenants/{tenant}/earning-rules", p::RULES_WRITE),
    ("POST", "/v1/tenants", p::TENANT_WRITE),
    ("GET", "/v1/tenants/{tenant}", p::TENANT_READ),
    ("POST", "/v1/tenants/{tenant}/brands", p::STORES_WRITE),
    ("POST", "/v1/tenants/{tenant}/stores", p::STORES_WRITE),
    (
        "POST",
        "/v1/tenants/{tenant}/security-policy",
        p::POLICY_WRITE,
    ),
    ("GET", "/v1/tenants/{tenant}/members", p::MEMBER_READ),
    (
        "GET",
        "/v1/tenants/{tenant}/segment-preview",
        p::MEMBER_READ,
    ),
    ("GET", "/v1/tenants", p::TENANT_READ),
    ("PATCH", "/v1/tenants/{tenant}", p::POLICY_WRITE),
    (
        "PATCH",
        "/v1/tenants/{tenant}/brands/{brand}",
        p::STORES_WRITE,
    ),
    (
        "PATCH",
        "/v1/tenants/{tenant}/stores/{store}",
        p::STORES_WRITE,
    ),
    ("GET", "/v1/tenants/{tenant}/staff", p::STAFF_READ),
    (
        "GET",
        "/v1/tenants/{tenant}/staff/{staff_id}",
        p::STAFF_READ,
    ),
    (
        "PATCH",
        "/v1/tenants/{tenant}/staff/{staff_id}",
        p::STAFF_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/staff/{staff_id}/deactivate",
        p::STAFF_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/staff/{staff_id}/reactivate",
        p::STAFF_WRITE,
    ),
    ("GET", "/v1/tenants/{tenant}/api-keys", p::API_KEYS_WRITE),
    (
        "GET",
        "/v1/tenants/{tenant}/api-keys/{key_id}",
        p::API_KEYS_WRITE,
    ),
    ("GET", "/v1/tenants/{tenant}/roles", p::STAFF_READ),
    (
        "GET",
        "/v1/tenants/{tenant}/audit/verification",
        p::AUDIT_READ,
    ),
    ("POST", "/v1/tenants/{tenant}/staff", p::STAFF_WRITE),
    (
        "POST",
        "/v1/tenants/{tenant}/staff/{staff_id}/password-reset",
        p::STAFF_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/staff/{staff_id}/unlock",
        p::STAFF_WRITE,
    ),
    ("POST", "/v1/tenants/{tenant}/role-grants", p::ROLES_WRITE),
    ("POST", "/v1/tenants/{tenant}/api-keys", p::API_KEYS_WRITE),
    (
        "POST",
        "/v1/tenants/{tenant}/api-keys/{key_id}/revoke",
        p::API_KEYS_WRITE,
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/api-keys/{key_id}/rotate",
        p::API_KEYS_WRITE,
    ),
    ("GET", "/v1/tenants/{tenant}/audit", p::AUDIT_READ),
];

/// The permission `method` on `route` needs, if the route is in the table.
pub fn permission_for(method: &Method, route: &str) -> Option<Permission> {
    ROUTES
        .iter()
        .find(|(m, r, _)| *m == method.as_str() && *r == route)
        .map(|(_, _, permission)| *permission)
}

/// Whether the identity service records acts on this permission itself (administration):
/// then the gateway does not record them a second time.
fn audited_by_identity(permission: Permission) -> bool {
    let object = permission.object;
    object == "tenant"
        || object.starts_with("tenant.")
        || object.starts_with("identity.")
        || object == "audit"
}

/// The tenant a request is about: the segment after `/v1/tenants/`.
fn tenant_of(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/tenants/")?.split('/').next()
}

/// The casbin domain of a request: its tenant, or `tenant/store` with `X-Store-Id`.
#[cfg(test)]
fn domain_of(tenant: &str, headers: &HeaderMap) -> Result<String, ServiceError> {
    credential::domain(&Principal::system(), tenant, store_of(headers)?)
}

/// The store a request names (`X-Store-Id`), if any.
fn store_of(headers: &HeaderMap) -> Result<Option<&str>, ServiceError> {
    headers
        .get("x-store-id")
        .map(|value| {
            value
                .to_str()
                .map_err(|_| ServiceError::invalid("X-Store-Id must be text"))
        })
        .transpose()
}

fn refuse(error: ServiceError) -> Response {
    let unauthenticated =
        error.code == ErrorCode::Unauthenticated || error.code == ErrorCode::InvalidCredentials;
    let mut response = problem_response(error.code, error.message);
    if unauthenticated {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// What the guard needs.
#[derive(Clone)]
pub struct Guard {
    pub identity: Arc<dyn IdentityClient>,
    pub limits: Arc<dyn RateLimits>,
}

/// Counts the request against its API key's and its tenant's limits; the refusal if one is
/// exceeded.
async fn rate_limit(limits: &dyn RateLimits, principal: &Principal) -> Option<Response> {
    let mut checks = Vec::with_capacity(2);
    if let PrincipalKind::ApiKey { .. } = principal.kind {
        checks.push((Scope::ApiKey, principal.subject.as_str()));
    }
    if principal.tenant != PLATFORM {
        checks.push((Scope::Tenant, principal.tenant.as_str()));
    }
    if checks.is_empty() {
        return None;
    }
    let (scope, wait) = limits.admit(&principal.tenant, &checks).await.err()?;
    let what = match scope {
        Scope::ApiKey => "this API key",
        Scope::Tenant => "this tenant",
    };
    let mut response = problem_response(
        ErrorCode::RateLimited,
        format!("{what} sent more requests than its rate limit allows; retry later"),
    );
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    if let Ok(value) = header::HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Some(response)
}

/// The middleware on every route of [`ROUTES`] (added as a route layer, so the matched
/// route is known).
pub async fn guard(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let identity = guard.identity.as_ref();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let method = request.method().clone();
    let request_id = crate::routes::request_id(request.headers());
    let Some(permission) = permission_for(&method, &route) else {
        return refuse(ServiceError::new(
            ErrorCode::Forbidden,
            "this route is not open to any role",
        ));
    };
    let target = request.uri().path().to_string();
    // Read once: checked here, and forwarded to services in other processes.
    let credential = match credential::from_headers(request.headers()) {
        Ok(Some(credential)) => credential.to_string(),
        Ok(None) => return refuse(credential::missing()),
        Err(error) => return refuse(error),
    };
    let admitted = admit(
        identity,
        request.headers(),
        &credential,
        &target,
        permission,
        &request_id,
    )
    .await;
    let principal = match admitted {
        Ok(principal) => principal,
        Err(error) => return refuse(error),
    };
    if let Some(response) = rate_limit(guard.limits.as_ref(), &principal).await {
        return response;
    }
    let tenant = tenant_of(&target).unwrap_or(PLATFORM).to_string();
    let store = request
        .headers()
        .get("x-store-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    request.extensions_mut().insert(principal.clone());
    // Services in this process take the caller as checked; one in another process checks
    // the forwarded credential itself.
    let forwarded_credential = credential.clone();
    let forwarded = Forwarded {
        credential,
        store,
        request_id: request_id.clone(),
        subject: principal.subject.clone(),
    };
    let response = FORWARDED.scope(forwarded, next.run(request)).await;
    if method != Method::GET && !audited_by_identity(permission) {
        let status = response.status();
        let outcome = if status.is_success() {
            Outcome::Allowed
        } else {
            Outcome::Failed(status.as_u16().to_string())
        };
        let action = format!("{} {route}", method.as_str());
        let caller = Caller {
            principal: &principal,
            credential: Some(&forwarded_credential),
        };
        let act = Act {
            tenant: &tenant,
            action: &action,
            target: &target,
            outcome,
            request_id: &request_id,
        };
        // The write is acknowledged only once its audit record is stored.
        if let Err(e) = identity.record(caller, act).await {
            return refuse(e);
        }
    }
    response.into_response()
}

/// The caller of a request that authenticates on its own (logout, own password), with the
/// credential it sent.
pub async fn authenticated(
    identity: &dyn IdentityClient,
    headers: &HeaderMap,
) -> Result<(Principal, String), ServiceError> {
    let credential = credential::from_headers(headers)?.ok_or_else(credential::missing)?;
    let principal = identity.authenticate(credential).await?;
    Ok((principal, credential.to_string()))
}

/// Authenticates and authorizes one request.
async fn admit(
    identity: &dyn IdentityClient,
    headers: &HeaderMap,
    credential: &str,
    path: &str,
    permission: Permission,
    request_id: &str,
) -> Result<Principal, ServiceError> {
    let principal = identity.authenticate(credential).await?;
    let domain = match tenant_of(path) {
        Some(tenant) => credential::domain(&principal, tenant, store_of(headers)?)?,
        None => PLATFORM.to_string(),
    };
    let caller = Caller {
        principal: &principal,
        credential: Some(credential),
    };
    identity
        .authorize(caller, &domain, permission, request_id)
        .await?;
    Ok(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_route_needs_a_permission_from_the_table() {
        let spec = crate::openapi();
        let mut missing = Vec::new();
        for (path, item) in spec.paths.paths {
            let methods = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("DELETE", item.delete.is_some()),
                ("PATCH", item.patch.is_some()),
            ];
            for (method, present) in methods {
                let public = crate::PUBLIC_ROUTES.contains(&path.as_str());
                if present && !public && permission_for(&method.parse().unwrap(), &path).is_none() {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "routes without a permission: {missing:?}"
        );
    }

    #[test]
    fn the_domain_is_the_tenant_or_its_store() {
        let mut headers = HeaderMap::new();
        assert_eq!(domain_of("acme", &headers).unwrap(), "acme");
        headers.insert("x-store-id", "s01".parse().unwrap());
        assert_eq!(domain_of("acme", &headers).unwrap(), "acme/s01");
        headers.insert("x-store-id", "../x".parse().unwrap());
        assert!(domain_of("acme", &headers).is_err());
        assert_eq!(
            tenant_of("/v1/tenants/acme/members/m1/balance"),
            Some("acme")
        );
        assert_eq!(tenant_of("/v1/auth/login"), None);
    }
}
