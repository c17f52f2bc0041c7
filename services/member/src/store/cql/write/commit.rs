//! The commit of one write: the orders it moves, the conditional batch on the member
//! partition, and what follows it once applied.

use super::*;

impl ScyllaMemberStore {
    /// The orders `w` moves that are still the other member's, as stored.
    pub(in crate::store::cql) async fn orders_to_move(
        &self,
        w: &MemberWrite,
    ) -> ServiceResult<Vec<Order>> {
        let Some((from, order_ids)) = &w.orders_from else {
            return Ok(Vec::new());
        };
        let mut moved = Vec::new();
        for order_id in order_ids {
            let row = self
                .statements
                .order
                .first(self.session(), (w.tenant.clone(), order_id.clone()))
                .await?;
            if let Some((_, body, _)) = row {
                let order = rows::order_of(body)?;
                if order.member == *from {
                    moved.push(order);
                }
            }
        }
        Ok(moved)
    }

    /// The hint, then the conditional batch on the member partition; whether it applied.
    pub(in crate::store::cql) async fn commit(
        &self,
        w: &MemberWrite,
        v: Versions,
        moved: &[Order],
        hold: Option<&Hold>,
    ) -> ServiceResult<bool> {
        let s = &self.statements;
        let (t, m) = (w.tenant.clone(), w.member.clone());
        let after = v.after(w)?;
        let mut batch = BatchWrite::default();
        if let Some(hold) = hold {
            // A merge's write: its hold kept the versions as its check read them.
            let guard = if hold.keep {
                &s.guard_locked_keep
            } else {
                &s.guard_locked
            };
            batch.push(
                guard,
                (
                    after.profile,
                    after.facts,
                    t.clone(),
                    m.clone(),
                    hold.id.clone(),
                ),
            );
        } else {
            push_guard(s, &mut batch, v, after, &t, &m);
        }
        if let Some(profile) = &w.profile {
            batch.push(
                &s.set_profile,
                (rows::encode(profile)?, t.clone(), m.clone()),
            );
        }
        if let Some(facts) = &w.facts {
            batch.push(
                &s.set_facts,
                (rows::facts_blob(facts)?, t.clone(), m.clone()),
            );
        }
        let history = |order: &Order| -> ServiceResult<_> {
            let (cursor, body) = rows::history_row(order)?;
            Ok((
                t.clone(),
                m.clone(),
                rows::HISTORY.to_string(),
                cursor,
                body,
            ))
        };
        if let Some(order) = &w.order {
            batch.push(&s.put_row, history(order)?);
        }
        for order in moved {
            let mut order = order.clone();
            order.member = m.clone();
            batch.push(&s.put_row, history(&order)?);
        }
        if !w.events.is_empty() {
            if after.revision() <= v.revision() {
                return Err(ServiceError::internal(
                    "a member write with events but neither profile nor facts: its events would have no outbox position",
                ));
            }
            let positions = rows::positions(after.revision(), w.events.len())?;
            for (position, event) in positions.iter().zip(&w.events) {
                batch.push(
                    &s.put_row,
                    (
                        t.clone(),
                        m.clone(),
                        rows::OUTBOX.to_string(),
                        rows::position_id(*position),
                        rows::event_body(event)?,
                    ),
                );
            }
            if let Some(last) = positions.last() {
                self.relay.hint(&t, &m, *last).await?;
            }
        }
        // A new member is listed for tenant pages before it exists: a listing without its
        // member (the batch lost) is skipped by the pages.
        if v == Versions::default() && (w.profile.is_some() || w.facts.is_some()) {
            s.add_to_tenant
                .run(self.session(), (t.clone(), rows::bucket(&m), m.clone()))
                .await?;
        }
        batch.apply(self.session(), None).await
    }

    /// Claims again, for `member`, the indexes just deleted that its profile lists now.
    /// The deletes are conditional on the holder, not on the write: another write of the
    /// same member that took the index over as its own (and committed after the profile
    /// this one read) would otherwise be left listing an index with no claim row.
    pub(in crate::store::cql) async fn restore_listed(
        &self,
        tenant: &str,
        member: &str,
        deleted: &[(IndexKind, [u8; 32])],
    ) -> ServiceResult<()> {
        if deleted.is_empty() {
            return Ok(());
        }
        let (profile, _) = self.read_member(tenant, member).await?;
        let Some(profile) = profile else {
            return Ok(());
        };
        for (kind, index) in deleted {
            if !profile.indexes.contains(&(*kind, *index)) {
                continue;
            }
            let key = (tenant.to_string(), rows::index_kind(*kind), index.to_vec());
            let claimed = self
                .statements
                .claim_index
                .applied(
                    self.session(),
                    (key.0, key.1, key.2, member.to_string(), now()),
                )
                .await?;
            if !claimed {
                let (_, holder) = self.index_holder(tenant, member, *kind, index).await?;
                if holder.as_deref() != Some(member) {
                    tracing::error!(
                        tenant,
                        member,
                        other = holder.as_deref().unwrap_or(""),
                        "an index this member lists was claimed by another member while it was \
                         being restored; the two members share a phone, email or ID number"
                    );
                }
            }
        }
        Ok(())
    }

    /// After an applied batch: released indexes deleted (unless the new profile lists them
    /// again, or another member took them meanwhile), the released birthday row likewise,
    /// moved orders pointed at their new member, then their old history rows deleted (in
    /// that order, so an order is always recorded in the partition its row names).
    pub(in crate::store::cql) async fn after_commit(
        &self,
        w: &MemberWrite,
        moved: &[Order],
    ) -> ServiceResult<()> {
        let s = &self.statements;
        let mut deleted = Vec::new();
        for (kind, index) in &w.released {
            let kept = w
                .profile
                .as_ref()
                .is_some_and(|p| p.indexes.contains(&(*kind, *index)));
            if !kept {
                deleted.push((*kind, *index));
                s.release_index
                    .applied(
                        self.session(),
                        (
                            w.tenant.clone(),
                            rows::index_kind(*kind),
                            index.to_vec(),
                            w.member.clone(),
                        ),
                    )
                    .await?;
            }
        }
        self.restore_listed(&w.tenant, &w.member, &deleted).await?;
        if let Some(birthday) = &w.released_birthday {
            let kept = w.profile.as_ref().and_then(|p| p.birthday.as_ref()) == Some(birthday);
            if !kept {
                self.drop_birthday(&w.tenant, &w.member, birthday).await?;
            }
        }
        for order in moved {
            let mut now_theirs = order.clone();
            now_theirs.member = w.member.clone();
            // Conditional, as every other write of these rows: a plain write's timestamp
            // (the coordinator's clock) could lose to, or hide, a Paxos write made after it.
            // Not applied: the order moved on already (a retry); nothing to do.
            s.move_order
                .applied(
                    self.session(),
                    (
                        w.member.clone(),
                        rows::encode(&now_theirs)?,
                        w.tenant.clone(),
                        order.order_id.clone(),
                        order.member.clone(),
                    ),
                )
                .await?;
            s.delete_row
                .applied(
                    self.session(),
                    (
                        w.tenant.clone(),
                        order.member.clone(),
                        rows::HISTORY.to_string(),
                        crate::store::history_cursor(order),
                    ),
                )
                .await?;
        }
        Ok(())
    }
}
