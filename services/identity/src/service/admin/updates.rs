//! Changing what exists: a tenant's name and time zone, its brands and stores (renamed,
//! moved to another brand, deactivated or reactivated; never deleted, since members, orders
//! and roles name them), and staff accounts (display name; deactivated, which refuses their
//! tokens at once, or reactivated). Each change is audited.

use super::listing::StaffView;
use super::*;
use crate::service::PrincipalKind;
use crate::service::deactivated::Cut;

/// What an administrator changes in a tenant; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TenantUpdate {
    pub name: Option<String>,
    /// An IANA time zone; empty: UTC.
    pub time_zone: Option<String>,
}

/// What an administrator changes in a brand or a store; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PlaceUpdate {
    pub name: Option<String>,
    /// Stores only: the brand, or empty for none.
    pub brand: Option<String>,
    pub active: Option<bool>,
}

fn checked_name(name: &str) -> ServiceResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ServiceError::invalid("a name is 1 to 200 characters"));
    }
    Ok(name.to_string())
}

fn checked_time_zone(zone: &str) -> ServiceResult<Option<String>> {
    if zone.is_empty() {
        return Ok(None);
    }
    zone.parse::<chrono_tz::Tz>().map_err(|_| {
        ServiceError::invalid(format!(
            "time_zone {zone:?} is not an IANA time zone (e.g. Asia/Shanghai)"
        ))
    })?;
    Ok(Some(zone.to_string()))
}

impl IdentityService {
    /// Renames a tenant or sets its time zone: its own administrators' setting, like its
    /// security policy.
    pub async fn update_tenant(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        update: TenantUpdate,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        let name = update.name.as_deref().map(checked_name).transpose()?;
        let zone = update
            .time_zone
            .as_deref()
            .map(checked_time_zone)
            .transpose()?;
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::POLICY_WRITE,
            request_id,
        )
        .await?;
        let updated = self
            .change_tenant(tenant, |t| {
                if let Some(name) = &name {
                    t.name = name.clone();
                }
                if let Some(zone) = &zone {
                    t.time_zone = zone.clone();
                }
                Ok(())
            })
            .await?;
        let target = format!("tenant:{tenant}");
        self.record(
            principal,
            tenant.as_str(),
            "identity.tenant.update",
            &target,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(updated)
    }

    pub async fn update_brand(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        brand: &BrandId,
        update: PlaceUpdate,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        if update.brand.is_some() {
            return Err(ServiceError::invalid("a brand belongs to no brand"));
        }
        let name = update.name.as_deref().map(checked_name).transpose()?;
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::STORES_WRITE,
            request_id,
        )
        .await?;
        let updated = self
            .change_tenant(tenant, |t| {
                let found = t
                    .brands
                    .iter_mut()
                    .find(|b| &b.id == brand)
                    .ok_or_else(|| not_found(&format!("brand {brand}")))?;
                if let Some(name) = &name {
                    found.name = name.clone();
                }
                if let Some(active) = update.active {
                    found.inactive = !active;
                }
                Ok(())
            })
            .await?;
        let target = format!("brand:{tenant}/{brand}");
        self.record(
            principal,
            tenant.as_str(),
            "identity.brand.update",
            &target,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(updated)
    }

    pub async fn update_store(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        store: &StoreId,
        update: PlaceUpdate,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        let name = update.name.as_deref().map(checked_name).transpose()?;
        let brand = match update.brand.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(brand) => Some(Some(BrandId::parse(brand)?)),
        };
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::STORES_WRITE,
            request_id,
        )
        .await?;
        let updated = self
            .change_tenant(tenant, |t| {
                if let Some(Some(brand)) = &brand
                    && !t.brands.iter().any(|b| &b.id == brand)
                {
                    return Err(not_found(&format!("brand {brand}")));
                }
                let found = t
                    .stores
                    .iter_mut()
                    .find(|s| &s.id == store)
                    .ok_or_else(|| not_found(&format!("store {store}")))?;
                if let Some(name) = &name {
                    found.name = name.clone();
                }
                if let Some(brand) = &brand {
                    found.brand = brand.clone();
                }
                if let Some(active) = update.active {
                    found.inactive = !active;
                }
                Ok(())
            })
            .await?;
        let target = format!("store:{tenant}/{store}");
        self.record(
            principal,
            tenant.as_str(),
            "identity.store.update",
            &target,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(updated)
    }

    pub async fn update_staff(
        &self,
        principal: &Principal,
        id: StaffId,
        display_name: Option<String>,
        request_id: &str,
    ) -> ServiceResult<StaffView> {
        let name = display_name.as_deref().map(checked_name).transpose()?;
        let staff = self
            .change_staff(
                principal,
                id,
                Some(permissions::STAFF_WRITE),
                "identity.staff.update",
                request_id,
                |s| {
                    if let Some(name) = &name {
                        s.display_name = name.clone();
                    }
                    Ok(())
                },
            )
            .await?;
        Ok(self.staff_view(&staff).await)
    }

    /// Deactivates a staff account (its tokens are refused at once, here and, through the
    /// change feed, on every replica; it cannot log in) or reactivates it. Nobody
    /// deactivates their own account: a tenant always keeps an administrator who can undo it.
    pub async fn set_staff_active(
        &self,
        principal: &Principal,
        id: StaffId,
        active: bool,
        request_id: &str,
    ) -> ServiceResult<StaffView> {
        if !active && matches!(principal.kind, PrincipalKind::Staff { id: own, .. } if own == id) {
            return Err(ServiceError::invalid(
                "you cannot deactivate your own account; ask another administrator",
            ));
        }
        let action = if active {
            "identity.staff.reactivate"
        } else {
            "identity.staff.deactivate"
        };
        // Refused here before the write is stored: no token of it passes in between.
        let now = self.now();
        if !active {
            let cut = Cut {
                active: false,
                sessions_ended_at: now,
            };
            self.deactivated.set(id, cut);
        }
        let changed = self
            .change_staff(
                principal,
                id,
                Some(permissions::STAFF_WRITE),
                action,
                request_id,
                |s| {
                    s.disabled = !active;
                    if !active {
                        s.sessions_ended_at = Some(now);
                    }
                    Ok(())
                },
            )
            .await;
        let staff = match changed {
            Ok(staff) => staff,
            Err(e) => {
                let stored = self.ports.staff.staff(id).await?;
                self.deactivated.restore(id, stored.as_ref());
                return Err(e);
            }
        };
        if let Some(cut) = Cut::of(&staff) {
            self.deactivated.set(id, cut);
            let change = Change::StaffActive {
                id,
                active,
                sessions_ended_at: cut.sessions_ended_at,
            };
            self.announce(change).await;
        }
        Ok(self.staff_view(&staff).await)
    }
}
