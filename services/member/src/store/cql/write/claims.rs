//! Claims before a write: the partition's versions, the index and order-id claims (taken
//! over when a dead write left them), and their release.

use super::*;

impl ScyllaMemberStore {
    pub(in crate::store::cql) async fn versions(
        &self,
        tenant: &str,
        member: &str,
    ) -> ServiceResult<Versions> {
        let row = self
            .statements
            .versions
            .first(self.session(), (tenant.to_string(), member.to_string()))
            .await?;
        Ok(
            row.map_or_else(Versions::default, |(profile, facts)| Versions {
                profile,
                facts,
            }),
        )
    }

    /// The holder of a claim as a write sees it: a member whose profile lists the index, a
    /// write in flight, or free (none, the writer itself, or an abandoned claim).
    pub(in crate::store::cql) async fn index_holder(
        &self,
        tenant: &str,
        member: &str,
        kind: IndexKind,
        index: &[u8; 32],
    ) -> ServiceResult<(Holder, Option<String>)> {
        let row = self
            .statements
            .index_holder
            .first(
                self.session(),
                (tenant.to_string(), rows::index_kind(kind), index.to_vec()),
            )
            .await?;
        let Some((holder, claimed_at)) = row else {
            return Ok((Holder::Free, None));
        };
        if holder == member {
            return Ok((Holder::Free, Some(holder)));
        }
        if self.lists_index(tenant, &holder, kind, index).await? {
            return Ok((Holder::Member(holder.clone()), Some(holder)));
        }
        if fresh(claimed_at) {
            return Ok((Holder::InFlight, Some(holder)));
        }
        Ok((Holder::Free, Some(holder)))
    }

    /// Claims an index for `member`; the refusal if it cannot. `yielded` names the indexes
    /// that writes before this one in the same `write_all` give up, with who gives them up.
    pub(in crate::store::cql) async fn claim_index(
        &self,
        tenant: &str,
        member: &str,
        kind: IndexKind,
        index: &[u8; 32],
        yielded: &HashMap<IndexKey, String>,
        claims: &mut Claims,
    ) -> ServiceResult<Option<Written>> {
        let s = &self.statements;
        let key = (tenant.to_string(), rows::index_kind(kind), index.to_vec());
        for _ in 0..ATTEMPTS {
            if s.claim_index
                .applied(
                    self.session(),
                    (
                        key.0.clone(),
                        key.1.clone(),
                        key.2.clone(),
                        member.to_string(),
                        now(),
                    ),
                )
                .await?
            {
                claims.indexes.push((kind, *index, None));
                return Ok(None);
            }
            let (holder, row_holder) = self.index_holder(tenant, member, kind, index).await?;
            let Some(row_holder) = row_holder else {
                continue; // Deleted meanwhile: claim again.
            };
            if row_holder == member {
                return Ok(None);
            }
            let given_up = yielded.get(&(tenant.to_string(), kind, *index)) == Some(&row_holder);
            match holder {
                Holder::Member(holder) if !given_up => {
                    return Ok(Some(Written::Taken(kind, holder)));
                }
                Holder::InFlight if !given_up => return Ok(Some(Written::Stale)),
                _ => {}
            }
            if s.take_index
                .applied(
                    self.session(),
                    (
                        member.to_string(),
                        now(),
                        key.0.clone(),
                        key.1.clone(),
                        key.2.clone(),
                        row_holder.clone(),
                    ),
                )
                .await?
            {
                claims
                    .indexes
                    .push((kind, *index, given_up.then_some(row_holder)));
                return Ok(None);
            }
        }
        Ok(Some(Written::Stale))
    }

    /// The order stored under this id, as a claim sees it: recorded (Some), in flight
    /// (Stale) or free (an abandoned claim too). The holder of the row.
    pub(in crate::store::cql) async fn order_holder(
        &self,
        tenant: &str,
        order_id: &str,
    ) -> ServiceResult<Option<(String, Result<Option<Order>, Written>)>> {
        let Some((holder, stored, claimed_at, recorded)) =
            self.order_claim(tenant, order_id).await?
        else {
            return Ok(None);
        };
        if recorded {
            return Ok(Some((holder, Ok(Some(stored)))));
        }
        if fresh(claimed_at) {
            return Ok(Some((holder, Err(Written::Stale))));
        }
        Ok(Some((holder, Ok(None))))
    }

    /// Claims the order's id for `member`; OrderExists with the recorded order if it is.
    pub(in crate::store::cql) async fn claim_order(
        &self,
        tenant: &str,
        member: &str,
        order: &Order,
        claims: &mut Claims,
    ) -> ServiceResult<Option<Written>> {
        let body = rows::encode(order)?;
        let key = (tenant.to_string(), order.order_id.clone());
        for _ in 0..ATTEMPTS {
            if self
                .statements
                .claim_order
                .applied(
                    self.session(),
                    (
                        key.0.clone(),
                        key.1.clone(),
                        member.to_string(),
                        body.clone(),
                        now(),
                    ),
                )
                .await?
            {
                claims.order = Some(order.clone());
                return Ok(None);
            }
            let Some((holder, state)) = self.order_holder(tenant, &order.order_id).await? else {
                continue;
            };
            match state {
                Ok(Some(recorded)) => return Ok(Some(Written::OrderExists(Box::new(recorded)))),
                Err(refused) => return Ok(Some(refused)),
                Ok(None) => {}
            }
            if self
                .statements
                .take_order
                .applied(
                    self.session(),
                    (
                        member.to_string(),
                        body.clone(),
                        now(),
                        key.0.clone(),
                        key.1.clone(),
                        holder,
                    ),
                )
                .await?
            {
                claims.order = Some(order.clone());
                return Ok(None);
            }
        }
        Ok(Some(Written::Stale))
    }

    /// The claims of `w`, in the embedded store's order of refusals: the profile's version,
    /// its indexes, the facts' version, the order.
    pub(in crate::store::cql) async fn check_and_claim(
        &self,
        w: &MemberWrite,
        v: Versions,
        yielded: &HashMap<IndexKey, String>,
        claims: &mut Claims,
    ) -> ServiceResult<Option<Written>> {
        if let Some(refused) = profile_refusal(w, v) {
            return Ok(Some(refused));
        }
        if let Some(refused) = self.claim_all(w, yielded, claims, Some(v)).await? {
            return Ok(Some(refused));
        }
        Ok(None)
    }

    /// Claims `w`'s indexes and order; with `v`, checks its facts' version between the two
    /// (where the embedded store checks it).
    pub(in crate::store::cql) async fn claim_all(
        &self,
        w: &MemberWrite,
        yielded: &HashMap<IndexKey, String>,
        claims: &mut Claims,
        v: Option<Versions>,
    ) -> ServiceResult<Option<Written>> {
        if let Some(p) = &w.profile {
            for (kind, index) in &p.indexes {
                let refused = self
                    .claim_index(&w.tenant, &w.member, *kind, index, yielded, claims)
                    .await?;
                if refused.is_some() {
                    return Ok(refused);
                }
            }
        }
        if let Some(refused) = v.and_then(|v| facts_refusal(w, v)) {
            return Ok(Some(refused));
        }
        if let Some(order) = &w.order {
            let refused = self
                .claim_order(&w.tenant, &w.member, order, claims)
                .await?;
            if refused.is_some() {
                return Ok(refused);
            }
        }
        // Last, so that a refused write leaves no row.
        if let Some(birthday) = w.profile.as_ref().and_then(|p| p.birthday) {
            self.put_birthday(&w.tenant, &w.member, &birthday).await?;
            claims.birthday = Some(birthday);
        }
        Ok(None)
    }

    /// Gives back what a write claimed whose batch did not apply. What the member's stored
    /// profile lists, or whose order its partition records, was committed by a concurrent
    /// write of the same member and stays.
    pub(in crate::store::cql) async fn release(
        &self,
        w: &MemberWrite,
        claims: Claims,
    ) -> ServiceResult<()> {
        if claims.indexes.is_empty() && claims.order.is_none() && claims.birthday.is_none() {
            return Ok(());
        }
        let (tenant, member) = (w.tenant.clone(), w.member.clone());
        let (profile, _) = self.read_member(&tenant, &member).await?;
        let listed = |kind: IndexKind, index: &[u8; 32]| {
            profile
                .as_ref()
                .is_some_and(|p| p.indexes.contains(&(kind, *index)))
        };
        let mut deleted = Vec::new();
        for (kind, index, previous) in claims.indexes {
            if listed(kind, &index) {
                continue;
            }
            let key = (tenant.clone(), rows::index_kind(kind), index.to_vec());
            if previous.is_none() {
                deleted.push((kind, index));
            }
            match previous {
                Some(previous) => {
                    self.statements
                        .take_index
                        .applied(
                            self.session(),
                            (previous, now(), key.0, key.1, key.2, member.clone()),
                        )
                        .await?;
                }
                None => {
                    self.statements
                        .release_index
                        .applied(self.session(), (key.0, key.1, key.2, member.clone()))
                        .await?;
                }
            }
        }
        self.restore_listed(&tenant, &member, &deleted).await?;
        if let Some(birthday) = claims.birthday
            && profile.as_ref().and_then(|p| p.birthday) != Some(birthday)
        {
            self.drop_birthday(&tenant, &member, &birthday).await?;
        }
        if let Some(order) = claims.order
            && !self.has_history_row(&tenant, &member, &order).await?
        {
            self.statements
                .release_order
                .applied(
                    self.session(),
                    (tenant.clone(), order.order_id.clone(), member.clone()),
                )
                .await?;
        }
        Ok(())
    }
}
