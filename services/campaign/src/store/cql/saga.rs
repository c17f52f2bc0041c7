//! Redemptions across partitions. A redemption claims its row (pending), counts itself in
//! the three usage counters of each of its coupons, then commits (done) with its events.
//! A counter moves in one conditional batch with a marker row naming the redemption
//! (`m` while counting up, `u` while giving back), so a step retried, or redone after a
//! crash, moves nothing twice. A saga cut short is undone (pending: its markers counted
//! back, its claim removed) or finished (settling: its decision taken) by `recover_sagas`.
//!
//! The recovery acts on sagas older than the grace the sweep gives it, which is far longer
//! than a request's deadline, so it never races the request that started the saga.

use super::entity::Row;
use super::indexes::{HOLDS, SAGAS};
use super::{ScyllaCampaignStore, decode, encode};
use crate::coupon::{Redemption, RedemptionState};
use crate::events::CampaignEvent;
use crate::store::{Limit, LimitReached, Redeemed, Settled, TenantFilter};
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_scylla::statements::BatchWrite;
use serde::{Deserialize, Serialize};

/// A marker of a redemption counted up, while its saga runs.
const COUNTED: &str = "m";
/// A marker of a redemption given back, while its saga runs.
const GIVEN_BACK: &str = "u";
/// Attempts at one counter under contention before the caller is told to retry.
const ATTEMPTS: usize = 500;
/// Rounds of finishing a pending redemption whose saga is undone under it.
const RESUMES: usize = 3;

/// A redemption's row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Saga {
    /// Claimed, counting: not yet a redemption.
    Pending(Redemption),
    /// Giving its uses back, decided: `to` is what it becomes, with its events.
    Settling {
        from: Redemption,
        to: Box<Redemption>,
        events: Vec<CampaignEvent>,
    },
    Done(Redemption),
}

impl Saga {
    /// The redemption as readers see it: a pending one does not exist yet; a settling one
    /// is what it was until it is settled.
    pub fn visible(self) -> Option<Redemption> {
        match self {
            Saga::Pending(_) => None,
            Saga::Settling { from, .. } => Some(from),
            Saga::Done(r) => Some(r),
        }
    }
}

fn redemption_key(id: &str) -> String {
    format!("redemption:{id}")
}

/// The usage counters of `code` of `template` for `member`: the code's, the member's for
/// the template, the template's.
pub fn usage_keys(template: &str, code: &str, member: &str) -> [String; 3] {
    [
        format!("use:c:{code}"),
        format!("use:m:{template}:{member}"),
        format!("use:t:{template}"),
    ]
}

/// Each counter a redemption moves, with the limit it may not pass.
fn scopes(r: &Redemption, limits: &[Limit]) -> Vec<(String, Option<u64>, LimitReached, String)> {
    let mut all = Vec::new();
    for c in &r.coupons {
        let limit = limits.iter().find(|l| l.code == c.code);
        let caps = [
            (
                limit.map(|l| u64::from(l.uses_per_code)),
                LimitReached::Code,
            ),
            (
                limit.and_then(|l| l.per_member_limit.map(u64::from)),
                LimitReached::Member,
            ),
            (limit.and_then(|l| l.total_limit), LimitReached::Total),
        ];
        for (key, (cap, reached)) in usage_keys(&c.template, &c.code, &r.member)
            .into_iter()
            .zip(caps)
        {
            all.push((key, cap, reached, c.code.clone()));
        }
    }
    all
}

fn busy(what: &str) -> ServiceError {
    ServiceError::unavailable(format!("{what} is being changed by another request: retry"))
}

impl ScyllaCampaignStore {
    pub(super) async fn saga(&self, tenant: &str, id: &str) -> ServiceResult<Option<(i64, Saga)>> {
        match self.state(tenant, &redemption_key(id)).await? {
            Some((version, body)) => Ok(Some((version, decode(&body)?))),
            None => Ok(None),
        }
    }

    /// A counter's value (0: never counted).
    pub(super) async fn count(&self, tenant: &str, key: &str) -> ServiceResult<u64> {
        Ok(match self.state(tenant, key).await? {
            Some((_, body)) => decode(&body)?,
            None => 0,
        })
    }

    async fn has_row(&self, tenant: &str, key: &str, kind: &str, id: &str) -> ServiceResult<bool> {
        let binds = (
            tenant.to_string(),
            key.to_string(),
            kind.to_string(),
            id.to_string(),
        );
        Ok(self
            .statements
            .row
            .first(self.session(), binds)
            .await?
            .is_some())
    }

    /// Counts redemption `rid` in `key` unless `cap` is reached (false then), once.
    async fn count_up(
        &self,
        tenant: &str,
        key: &str,
        rid: &str,
        cap: Option<u64>,
    ) -> ServiceResult<bool> {
        for _ in 0..ATTEMPTS {
            if self.has_row(tenant, key, COUNTED, rid).await? {
                return Ok(true);
            }
            let state = self.state(tenant, key).await?;
            let (version, n) = match &state {
                Some((v, body)) => (Some(*v), decode::<u64>(body)?),
                None => (None, 0),
            };
            if cap.is_some_and(|cap| n >= cap) {
                return Ok(false);
            }
            let marker: Row = (COUNTED, rid.to_string(), Vec::new());
            if self
                .commit(tenant, key, version, encode(&(n + 1))?, vec![marker], &[])
                .await?
            {
                return Ok(true);
            }
        }
        Err(busy("a coupon's usage"))
    }

    /// Moves `key` back by one for `rid`, once: `counted` undoes a count still marked
    /// (a saga undone), otherwise a finished redemption is given back (marked `u`).
    async fn count_down(
        &self,
        tenant: &str,
        key: &str,
        rid: &str,
        counted: bool,
    ) -> ServiceResult<()> {
        for _ in 0..ATTEMPTS {
            let marked = self
                .has_row(tenant, key, if counted { COUNTED } else { GIVEN_BACK }, rid)
                .await?;
            // Undoing: nothing to do without the mark. Giving back: done once marked.
            if marked != counted {
                return Ok(());
            }
            let Some((version, body)) = self.state(tenant, key).await? else {
                return Ok(());
            };
            let n: u64 = decode(&body)?;
            let s = &self.statements;
            let (t, k) = (tenant.to_string(), key.to_string());
            let mut batch = BatchWrite::default();
            batch.push(
                &s.replace,
                (
                    version + 1,
                    encode(&n.saturating_sub(1))?,
                    t.clone(),
                    k.clone(),
                    version,
                ),
            );
            if counted {
                batch.push(&s.remove_row, (t, k, COUNTED.to_string(), rid.to_string()));
            } else {
                batch.push(
                    &s.put_row,
                    (t, k, GIVEN_BACK.to_string(), rid.to_string(), Vec::new()),
                );
            }
            if batch.apply(self.session(), None).await? {
                return Ok(());
            }
        }
        Err(busy("a coupon's usage"))
    }

    /// Removes the markers of `rid` once its saga is over (plain deletes: nothing reads them
    /// after).
    async fn forget_markers(&self, r: &Redemption, kind: &str) -> ServiceResult<()> {
        for (key, ..) in scopes(r, &[]) {
            let binds = (r.tenant.clone(), key, kind.to_string(), r.id.clone());
            self.statements
                .remove_row
                .run(self.session(), binds)
                .await?;
        }
        Ok(())
    }

    /// Indexes a saga about to be claimed, by its start for the recovery sweep and by its
    /// hold's end: written before the claim they point at.
    async fn index_saga(&self, r: &Redemption) -> ServiceResult<()> {
        let t = r.tenant.as_str();
        self.due_add(SAGAS, r.created_ms, t, &r.id).await?;
        if let Some(until) = r.hold_until_ms {
            self.due_add(HOLDS, until, t, &r.id).await?;
        }
        Ok(())
    }

    pub(super) async fn run_redeem(
        &self,
        r: &Redemption,
        limits: &[Limit],
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Redeemed> {
        let (t, key) = (r.tenant.as_str(), redemption_key(&r.id));
        let now = r.created_ms;
        self.index_saga(r).await?;
        if !self
            .create(t, &key, encode(&Saga::Pending(r.clone()))?, &[])
            .await?
        {
            return match self.saga(t, &r.id).await? {
                Some((_, Saga::Done(stored))) => Ok(Redeemed::Exists(Box::new(stored))),
                Some((_, Saga::Pending(earlier))) => Ok(Redeemed::Pending(Box::new(earlier))),
                _ => Err(busy(&format!("redemption {}", r.id))),
            };
        }
        let mut counted: Vec<String> = Vec::new();
        for (scope, cap, reached, code) in scopes(r, limits) {
            if !self.count_up(t, &scope, &r.id, cap).await? {
                for done in counted.iter().rev() {
                    self.count_down(t, done, &r.id, true).await?;
                }
                self.statements
                    .remove
                    .applied(self.session(), (t.to_string(), key, 1))
                    .await?;
                self.due_remove(SAGAS, now, t, &r.id).await?;
                return Ok(Redeemed::Refused(code, reached));
            }
            counted.push(scope);
        }
        if !self
            .replace(t, &key, 1, encode(&Saga::Done(r.clone()))?, &events)
            .await?
        {
            return Err(busy(&format!("redemption {}", r.id)));
        }
        self.forget_markers(r, COUNTED).await?;
        self.due_remove(SAGAS, now, t, &r.id).await?;
        Ok(Redeemed::Yes)
    }

    /// Finishes a redemption another attempt left pending (cut off part-way, or lost with its
    /// region): counts each use not yet counted and commits it. It may race that attempt, if
    /// it still runs: the markers count each use once, and only one of them commits. If that
    /// attempt reached a limit and undid the saga under this one (the markers are the
    /// redemption's, so its undoing may have taken back a use this one found counted), the
    /// claim is made again and every use counted again. One race is left: an attempt that
    /// commits and forgets its markers while this one is still counting makes this one count
    /// a use again (a use lost to the code's holder, never a second redemption).
    pub(super) async fn run_resume(
        &self,
        r: &Redemption,
        limits: &[Limit],
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Redeemed> {
        let (t, key) = (r.tenant.as_str(), redemption_key(&r.id));
        for _ in 0..RESUMES {
            match self.saga(t, &r.id).await? {
                Some((_, Saga::Done(stored))) => return Ok(Redeemed::Exists(Box::new(stored))),
                Some((1, Saga::Pending(_))) => {}
                Some(_) => break,
                None => {
                    self.index_saga(r).await?;
                    let pending = encode(&Saga::Pending(r.clone()))?;
                    if !self.create(t, &key, pending, &[]).await? {
                        continue;
                    }
                }
            }
            for (scope, cap, reached, code) in scopes(r, limits) {
                if !self.count_up(t, &scope, &r.id, cap).await? {
                    // Left pending: the recovery sweep gives back what was counted.
                    return Ok(Redeemed::Refused(code, reached));
                }
            }
            if self
                .replace(t, &key, 1, encode(&Saga::Done(r.clone()))?, &events)
                .await?
            {
                self.forget_markers(r, COUNTED).await?;
                self.due_remove(SAGAS, r.created_ms, t, &r.id).await?;
                return Ok(Redeemed::Yes);
            }
        }
        Err(busy(&format!("redemption {}", r.id)))
    }

    pub(super) async fn run_settle(
        &self,
        tenant: &str,
        id: &str,
        from: RedemptionState,
        to: RedemptionState,
        at_ms: i64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Settled> {
        let key = redemption_key(id);
        let Some((version, saga)) = self.saga(tenant, id).await? else {
            return Ok(Settled::Missing);
        };
        let Saga::Done(r) = saga else {
            return match saga.visible() {
                Some(_) => Err(busy(&format!("redemption {id}"))),
                None => Ok(Settled::Missing),
            };
        };
        if r.state != from {
            return Ok(Settled::NotFrom(Box::new(r)));
        }
        let mut next = r.clone();
        next.state = to;
        next.updated_ms = at_ms;
        next.hold_until_ms = None;
        if from.counts() && !to.counts() {
            self.due_add(SAGAS, at_ms, tenant, id).await?;
            let settling = Saga::Settling {
                from: r.clone(),
                to: Box::new(next.clone()),
                events,
            };
            if !self
                .replace(tenant, &key, version, encode(&settling)?, &[])
                .await?
            {
                return Err(busy(&format!("redemption {id}")));
            }
            self.finish_settling(tenant, version + 1, settling, at_ms)
                .await?;
        } else if !self
            .replace(
                tenant,
                &key,
                version,
                encode(&Saga::Done(next.clone()))?,
                &events,
            )
            .await?
        {
            return Err(busy(&format!("redemption {id}")));
        }
        if let Some(until) = r.hold_until_ms {
            self.due_remove(HOLDS, until, tenant, id).await?;
        }
        Ok(Settled::Yes(Box::new(next)))
    }

    /// Gives a settling redemption's uses back (once each) and commits what it becomes.
    async fn finish_settling(
        &self,
        tenant: &str,
        version: i64,
        saga: Saga,
        started: i64,
    ) -> ServiceResult<()> {
        let Saga::Settling { from, to, events } = saga else {
            return Ok(());
        };
        for (scope, ..) in scopes(&from, &[]) {
            self.count_down(tenant, &scope, &from.id, false).await?;
        }
        let key = redemption_key(&from.id);
        if !self
            .replace(tenant, &key, version, encode(&Saga::Done(*to))?, &events)
            .await?
        {
            // Another recovery (another replica's sweep) finished it first.
            if !matches!(self.saga(tenant, &from.id).await?, Some((_, Saga::Done(_)))) {
                return Err(busy(&format!("redemption {}", from.id)));
            }
        }
        self.forget_markers(&from, GIVEN_BACK).await?;
        self.due_remove(SAGAS, started, tenant, &from.id).await
    }

    /// Undoes the pending sagas and finishes the settling ones that started before
    /// `older_than_ms`, of the tenants `here` passes; how many.
    pub(super) async fn recover_sagas(
        &self,
        older_than_ms: i64,
        here: &TenantFilter<'_>,
    ) -> ServiceResult<u64> {
        let mut recovered = 0;
        for (at, tenant, id) in self.due_before(SAGAS, older_than_ms, 1_000).await? {
            if !here(&tenant) {
                continue;
            }
            match self.saga(&tenant, &id).await? {
                Some((version, Saga::Pending(r))) => {
                    for (scope, ..) in scopes(&r, &[]) {
                        self.count_down(&tenant, &scope, &id, true).await?;
                    }
                    let binds = (tenant.clone(), redemption_key(&id), version);
                    self.statements
                        .remove
                        .applied(self.session(), binds)
                        .await?;
                    recovered += 1;
                }
                Some((version, settling @ Saga::Settling { .. })) => {
                    self.finish_settling(&tenant, version, settling, at).await?;
                    recovered += 1;
                }
                Some((_, Saga::Done(r))) => {
                    // Its last steps were cut short: only markers are left to remove.
                    self.forget_markers(&r, COUNTED).await?;
                    self.forget_markers(&r, GIVEN_BACK).await?;
                }
                None => {}
            }
            self.due_remove(SAGAS, at, &tenant, &id).await?;
        }
        Ok(recovered)
    }
}

#[cfg(test)]
mod tests;
