//! API keys for partner systems: creation, revocation and rotation.

use super::*;

impl IdentityService {
    /// A new API key for a partner system of `tenant`, holding `roles` in the tenant.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        name: &str,
        roles: &[String],
        expires_at: Option<Timestamp>,
        request_id: &str,
    ) -> ServiceResult<NewApiKey> {
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::API_KEYS_WRITE,
            request_id,
        )
        .await?;
        for role in roles {
            self.check_grant(
                principal,
                tenant.as_str(),
                role,
                tenant.as_str(),
                request_id,
            )
            .await?;
        }
        let issued = opaque::issue(Kind::ApiKey);
        let key = ApiKey {
            id: ApiKeyId(issued.id),
            tenant: tenant.clone(),
            name: name.into(),
            hash: issued.hash,
            roles: roles.to_vec(),
            created_at: self.now(),
            created_by: principal.subject.clone(),
            expires_at,
            last_used_at: None,
            revoked_at: None,
            version: 1,
        };
        if self.ports.api_keys.put_api_key(&key).await? == Applied::Conflict {
            return Err(already_exists("the API key"));
        }
        for role in roles {
            self.authorizer
                .grant(&subject_of_key(key.id), role, tenant.as_str())
                .await?;
        }
        // A replica may have refused (and remembered refusing) the unknown key already.
        self.announce(Change::Policy).await;
        self.record(
            principal,
            tenant.as_str(),
            "identity.api_key.create",
            &subject_of_key(key.id),
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(NewApiKey {
            id: key.id,
            key: issued.text,
        })
    }

    /// Revokes an API key: it stops working at its next request.
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        request_id: &str,
    ) -> ServiceResult<()> {
        for _ in 0..8 {
            let mut key = self
                .ports
                .api_keys
                .api_key(id)
                .await?
                .ok_or_else(|| not_found("API key"))?;
            self.authorize(
                principal,
                key.tenant.as_str(),
                permissions::API_KEYS_WRITE,
                request_id,
            )
            .await?;
            if key.revoked_at.is_some() {
                return Ok(());
            }
            key.revoked_at = Some(self.now());
            key.version += 1;
            if self.ports.api_keys.put_api_key(&key).await? == Applied::Yes {
                self.forget_key(id);
                self.announce(Change::ApiKeyChanged { id }).await;
                let target = subject_of_key(id);
                return self
                    .record(
                        principal,
                        key.tenant.as_str(),
                        "identity.api_key.revoke",
                        &target,
                        Outcome::Allowed,
                        request_id,
                    )
                    .await;
            }
        }
        Err(ServiceError::new(
            ErrorCode::VersionConflict,
            "the key is busy; retry",
        ))
    }

    /// Replaces an API key with a new one holding the same roles; the old one is revoked.
    pub async fn rotate_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        request_id: &str,
    ) -> ServiceResult<NewApiKey> {
        let old = self
            .ports
            .api_keys
            .api_key(id)
            .await?
            .ok_or_else(|| not_found("API key"))?;
        let new = self
            .create_api_key(
                principal,
                &old.tenant,
                &old.name,
                &old.roles,
                old.expires_at,
                request_id,
            )
            .await?;
        self.revoke_api_key(principal, id, request_id).await?;
        Ok(new)
    }
}
