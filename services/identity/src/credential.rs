//! The credential a request carries, read the same way at every edge (the REST gateway and
//! each service's gRPC port): `Authorization: Bearer <access token or API key>`, or
//! `X-Api-Key: <API key>`. gRPC metadata travels as HTTP/2 headers, so one reader serves both;
//! and the one check of the caller's tenant and the domain its permissions are read in.

use crate::model::PLATFORM;
use crate::service::Principal;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{StoreId, TenantId};

/// The credential in `headers`, if any; an error if a header is there but unusable.
pub fn from_headers(headers: &http::HeaderMap) -> Result<Option<&str>, ServiceError> {
    let malformed = |why: &str| ServiceError::new(ErrorCode::Unauthenticated, why);
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| malformed("the Authorization header is not text"))?;
        let token = text
            .strip_prefix("Bearer ")
            .ok_or_else(|| malformed("use Authorization: Bearer <access token or API key>"))?;
        return Ok(Some(token.trim()));
    }
    if let Some(value) = headers.get("x-api-key") {
        let text = value
            .to_str()
            .map_err(|_| malformed("the X-Api-Key header is not text"))?;
        return Ok(Some(text.trim()));
    }
    Ok(None)
}

/// The casbin domain a caller's request is checked in: its tenant, or `tenant/store` when it
/// names a store. A caller of another tenant is refused first (platform staff are of every
/// tenant); then the ids must be well formed.
pub fn domain(principal: &Principal, tenant: &str, store: Option<&str>) -> ServiceResult<String> {
    if principal.tenant != PLATFORM && principal.tenant != tenant {
        return Err(ServiceError::new(
            ErrorCode::Forbidden,
            "this caller belongs to another tenant",
        ));
    }
    let tenant = TenantId::parse(tenant)?;
    Ok(match store {
        Some(store) => format!("{tenant}/{}", StoreId::parse(store)?),
        None => tenant.to_string(),
    })
}

/// The error for a request that carries no credential.
pub fn missing() -> ServiceError {
    ServiceError::new(
        ErrorCode::Unauthenticated,
        "send Authorization: Bearer <access token from /v1/auth/login, or an API key>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                *name,
                value.parse().unwrap_or(http::HeaderValue::from_static("")),
            );
        }
        map
    }

    #[test]
    fn reads_a_bearer_token_or_an_api_key() {
        let bearer = headers(&[("authorization", "Bearer abc ")]);
        assert_eq!(from_headers(&bearer).ok().flatten(), Some("abc"));
        let key = headers(&[("x-api-key", "key")]);
        assert_eq!(from_headers(&key).ok().flatten(), Some("key"));
        assert_eq!(from_headers(&headers(&[])).ok().flatten(), None);
    }

    #[test]
    fn refuses_another_scheme() {
        let basic = headers(&[("authorization", "Basic abc")]);
        let error = from_headers(&basic).err().map(|e| e.code);
        assert_eq!(error, Some(ErrorCode::Unauthenticated));
    }
}
