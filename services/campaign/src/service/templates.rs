//! Saving and reading coupon templates.

use super::Campaigns;
use crate::store::Versioned;
use crate::template::CouponTemplate;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::TenantId;

impl Campaigns {
    /// Saves a template after checking it can be evaluated. `expected_version` guards an
    /// edit (the version read; 0 for a new template); None overwrites whatever is stored.
    pub async fn put_template(
        &self,
        tenant: &TenantId,
        template: CouponTemplate,
        expected_version: Option<u64>,
    ) -> ServiceResult<Versioned<CouponTemplate>> {
        template.validate()?;
        let stored = self.store.template(tenant, &template.id).await?;
        if let Some(stored) = &stored
            && stored.value == template
        {
            // Saving what is stored changes nothing: a retried save answers the same.
            return Ok(stored.clone());
        }
        let current = stored.as_ref().map_or(0, |t| t.version);
        if expected_version.is_some_and(|v| v != current) {
            return Err(ServiceError::new(
                ErrorCode::VersionConflict,
                format!(
                    "template {} is at version {current}: read it again and retry",
                    template.id
                ),
            ));
        }
        let saved = Versioned {
            version: current + 1,
            value: template,
        };
        let event = self.event(
            tenant.as_str(),
            "",
            "template_saved",
            &serde_json::json!({"template": saved.value.id, "version": saved.version,
                "active": saved.value.active}),
        );
        if !self.store.put_template(tenant, &saved, vec![event]).await? {
            return Err(ServiceError::new(
                ErrorCode::VersionConflict,
                format!(
                    "template {} changed while it was saved: retry",
                    saved.value.id
                ),
            ));
        }
        Ok(saved)
    }

    pub async fn template(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> ServiceResult<Versioned<CouponTemplate>> {
        self.store.template(tenant, id).await?.ok_or_else(|| {
            ServiceError::new(
                ErrorCode::TemplateNotFound,
                format!("no coupon template {id}: list the tenant's templates for their ids"),
            )
        })
    }

    pub async fn templates(
        &self,
        tenant: &TenantId,
    ) -> ServiceResult<Vec<Versioned<CouponTemplate>>> {
        self.store.templates(tenant).await
    }

    /// A template that can issue and redeem now.
    pub(super) async fn active_template(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> ServiceResult<CouponTemplate> {
        let template = self.template(tenant, id).await?.value;
        if !template.active {
            return Err(ServiceError::new(
                ErrorCode::CouponNotApplicable,
                format!("template {id} is not active: activate it before issuing codes"),
            ));
        }
        Ok(template)
    }
}
