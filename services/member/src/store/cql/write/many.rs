//! Writes one by one, in waves, or as a saga that holds every member it touches (an import
//! batch, a merge), and the settings written beside them.

use super::*;

impl ScyllaMemberStore {
    /// One member write (see the module's comment).
    pub(in crate::store::cql) async fn write_one(&self, w: &MemberWrite) -> ServiceResult<Written> {
        let none = HashMap::new();
        for attempt in 0..ATTEMPTS {
            let v = self.versions(&w.tenant, &w.member).await?;
            let mut claims = Claims::default();
            if let Some(refused) = self.check_and_claim(w, v, &none, &mut claims).await? {
                self.release(w, claims).await?;
                return Ok(refused);
            }
            let moved = self.orders_to_move(w).await?;
            if self.commit(w, v, &moved, None).await? {
                self.after_commit(w, &moved).await?;
                return Ok(Written::Yes);
            }
            self.release(w, claims).await?;
            // Lost to another write, or a merge holds the member (for as long as it takes
            // to write its members: milliseconds, seconds with many orders to move).
            if attempt + 1 < ATTEMPTS {
                tokio::time::sleep(std::time::Duration::from_millis(8 << attempt)).await;
            }
        }
        Ok(Written::Stale)
    }

    /// `write_many`: ScyllaDB has no transaction across partitions, so each write commits
    /// on its own, and each is checked against the store with the writes before it in the
    /// batch already in it, as the embedded store checks it against the batch so far. For
    /// speed the batch runs in waves of up to [`WAVE`] writes at once: a wave ends before a
    /// write that shares a member, an index or an order id with a write in it, so a write
    /// never runs beside one it depends on and each outcome is the one in-order writing
    /// gives. The setting is written after the last write. Unlike the embedded store, an
    /// error part-way leaves the writes before it committed (an import's checkpoint, written
    /// last, then still points before them, and a re-run finds them as they were written).
    pub(in crate::store::cql) async fn write_each(
        &self,
        writes: Vec<MemberWrite>,
        setting: Option<SettingWrite>,
    ) -> ServiceResult<Vec<Written>> {
        let mut outcomes: Vec<Option<Written>> = vec![None; writes.len()];
        let mut wave: Vec<usize> = Vec::new();
        let mut wave_keys: HashSet<WriteKey> = HashSet::new();
        for (i, w) in writes.iter().enumerate() {
            let keys = write_keys(w);
            if wave.len() == WAVE || keys.iter().any(|k| wave_keys.contains(k)) {
                self.run_wave(&writes, &wave, &mut outcomes).await?;
                wave.clear();
                wave_keys.clear();
            }
            wave.push(i);
            wave_keys.extend(keys);
        }
        self.run_wave(&writes, &wave, &mut outcomes).await?;
        let mut orders_written: HashSet<(String, String)> = HashSet::new();
        let mut out = Vec::with_capacity(writes.len());
        for (w, outcome) in writes.iter().zip(outcomes) {
            let mut outcome =
                outcome.ok_or_else(|| ServiceError::internal("a write without an outcome"))?;
            if let Some(order) = &w.order {
                let key = (w.tenant.clone(), order.order_id.clone());
                match outcome {
                    // The embedded store answers a repeat within the batch with the
                    // write's own order.
                    Written::OrderExists(_) if orders_written.contains(&key) => {
                        outcome = Written::OrderExists(Box::new(order.clone()));
                    }
                    Written::Yes => {
                        orders_written.insert(key);
                    }
                    _ => {}
                }
            }
            out.push(outcome);
        }
        self.put_setting_write(setting).await?;
        Ok(out)
    }

    /// The writes `wave` names, at once; every one runs to its end before an error of any
    /// is returned (none is cut off between its claims and its batch).
    pub(in crate::store::cql) async fn run_wave(
        &self,
        writes: &[MemberWrite],
        wave: &[usize],
        outcomes: &mut [Option<Written>],
    ) -> ServiceResult<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for &i in wave {
            let (store, w) = (self.clone(), writes[i].clone());
            tasks.spawn(async move { (i, store.write_one(&w).await) });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, Ok(outcome))) => outcomes[i] = Some(outcome),
                Ok((_, Err(e))) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(ServiceError::internal(e));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub(in crate::store::cql) async fn put_setting_write(
        &self,
        setting: Option<SettingWrite>,
    ) -> ServiceResult<()> {
        if let Some(s) = setting {
            self.statements
                .put_setting
                .run(self.session(), (s.tenant, s.kind, s.name, s.value))
                .await?;
        }
        Ok(())
    }

    /// `write_all` (merges and their reversals) as a saga, since no transaction spans two
    /// member partitions:
    ///
    /// 1. **check** every write, in order, against the store and the writes before it
    ///    (versions, indexes, orders), reading only: the first refusal is returned and
    ///    nothing is written or claimed;
    /// 2. **claim** every write's indexes and order; a claim lost to a concurrent writer
    ///    since step 1 gives back every claim made and returns its refusal (nothing written);
    /// 3. **hold** every member on the versions step 1 read (`merge_lock`, with a TTL): every
    ///    other write is conditional on no hold, so none lands from here to the member's
    ///    batch; a member changed since step 1 lets go of every hold and claim, and the
    ///    result is Stale with nothing written;
    /// 4. **write** each member's batch in order, conditional on its own hold, the member's
    ///    last one letting go of it;
    /// 5. the setting (the merge record), last.
    ///
    /// Atomic: each member's batch (its statics, history and outbox rows). Not atomic: the
    /// writes together, but from step 3 on nothing but a failure can stop them: a crash, a
    /// timeout, or a hold expiring (after 30 s) before its batch. Then the batches before it
    /// stay committed, the merge record is not written, and nothing finishes the merge at
    /// restart (decision 0012). The observable result on success, or on a refusal found in
    /// steps 1-3, is the embedded store's.
    pub(in crate::store::cql) async fn write_saga(
        &self,
        writes: Vec<MemberWrite>,
        setting: Option<SettingWrite>,
    ) -> ServiceResult<Written> {
        let expected = match self.check_all(&writes).await? {
            Ok(expected) => expected,
            Err(refused) => return Ok(refused),
        };
        let mut claimed: Vec<Claims> = Vec::with_capacity(writes.len());
        let mut yielded: HashMap<IndexKey, String> = HashMap::new();
        for w in &writes {
            let mut claims = Claims::default();
            let refused = self.claim_all(w, &yielded, &mut claims, None).await?;
            claimed.push(claims);
            if let Some(refused) = refused {
                self.release_all(&writes, claimed).await?;
                return Ok(refused);
            }
            for (kind, index) in &w.released {
                yielded.insert((w.tenant.clone(), *kind, *index), w.member.clone());
            }
        }
        // Hold every member on the versions the check read, so that no other write lands
        // between the check and this merge's batches.
        let hold_id = ulid::Ulid::new().to_string();
        if !self.hold_all(&writes, &expected, &hold_id).await? {
            self.release_all(&writes, claimed).await?;
            return Ok(Written::Stale);
        }
        let written = self
            .write_held(&writes, expected, &hold_id, &mut claimed)
            .await;
        if written.is_err() {
            // Let go of what is still held now rather than in 30 s; the claims of writes
            // not made are taken over once their grace is past.
            if let Err(e) = self.let_go(&writes, &hold_id).await {
                tracing::warn!(error = %e, "letting go of a failed merge's holds");
            }
        }
        if written? != Written::Yes {
            return Ok(Written::Stale);
        }
        self.put_setting_write(setting).await?;
        Ok(Written::Yes)
    }

    /// Step 4 of the saga: each member's batch on its hold; Stale (the rest let go and
    /// released) if one cannot be written.
    pub(in crate::store::cql) async fn write_held(
        &self,
        writes: &[MemberWrite],
        expected: Vec<Versions>,
        hold_id: &str,
        claimed: &mut Vec<Claims>,
    ) -> ServiceResult<Written> {
        let mut committed: HashMap<(String, String), Versions> = HashMap::new();
        for (i, (w, expected)) in writes.iter().zip(expected).enumerate() {
            let key = (w.tenant.clone(), w.member.clone());
            let mut v = committed.get(&key).copied().unwrap_or(expected);
            let mut done = false;
            // The hold is let go by the member's last write here; kept before it.
            let mut hold = Some(Hold {
                id: hold_id.to_string(),
                keep: writes[i + 1..]
                    .iter()
                    .any(|later| later.tenant == w.tenant && later.member == w.member),
            });
            for _ in 0..ATTEMPTS {
                let moved = self.orders_to_move(w).await?;
                if self.commit(w, v, &moved, hold.take().as_ref()).await? {
                    self.after_commit(w, &moved).await?;
                    committed.insert(key.clone(), v.after(w)?);
                    done = true;
                    break;
                }
                // Another write of this member landed since the check: go on while this
                // one still follows what is stored.
                v = self.versions(&w.tenant, &w.member).await?;
                if profile_refusal(w, v)
                    .or_else(|| facts_refusal(w, v))
                    .is_some()
                {
                    break;
                }
            }
            if !done {
                // This write and the ones after it are not written: their claims and holds
                // go back.
                let left = claimed.split_off(i);
                self.let_go(&writes[i..], hold_id).await?;
                self.release_all(&writes[i..], left).await?;
                return Ok(Written::Stale);
            }
        }
        Ok(Written::Yes)
    }

    /// Holds each member of `writes` on the versions its first write expects (a hold
    /// expires after [`HOLD_TTL_SECS`] if the merge dies); false, with every hold taken let
    /// go, if one changed since the check.
    pub(in crate::store::cql) async fn hold_all(
        &self,
        writes: &[MemberWrite],
        expected: &[Versions],
        id: &str,
    ) -> ServiceResult<bool> {
        let s = &self.statements;
        let mut held: Vec<&MemberWrite> = Vec::new();
        for (w, v) in writes.iter().zip(expected) {
            if held
                .iter()
                .any(|h| h.tenant == w.tenant && h.member == w.member)
            {
                continue;
            }
            let (ttl, hold, t, m) = (
                HOLD_TTL_SECS,
                id.to_string(),
                w.tenant.clone(),
                w.member.clone(),
            );
            let applied = match (v.profile, v.facts) {
                (None, None) => {
                    s.lock_new
                        .applied(self.session(), (ttl, hold, t, m))
                        .await?
                }
                (None, Some(f)) => {
                    s.lock_facts_only
                        .applied(self.session(), (ttl, hold, t, m, f))
                        .await?
                }
                (Some(p), None) => {
                    s.lock_profile_only
                        .applied(self.session(), (ttl, hold, t, m, p))
                        .await?
                }
                (Some(p), Some(f)) => {
                    s.lock_both
                        .applied(self.session(), (ttl, hold, t, m, p, f))
                        .await?
                }
            };
            if !applied {
                let taken: Vec<MemberWrite> = held.into_iter().cloned().collect();
                self.let_go(&taken, id).await?;
                return Ok(false);
            }
            held.push(w);
        }
        Ok(true)
    }

    /// Lets go of the holds `id` has on the members of `writes` (those it still has).
    pub(in crate::store::cql) async fn let_go(
        &self,
        writes: &[MemberWrite],
        id: &str,
    ) -> ServiceResult<()> {
        for w in writes {
            self.statements
                .unlock
                .applied(
                    self.session(),
                    (None, w.tenant.clone(), w.member.clone(), id.to_string()),
                )
                .await?;
        }
        Ok(())
    }

    pub(in crate::store::cql) async fn release_all(
        &self,
        writes: &[MemberWrite],
        claimed: Vec<Claims>,
    ) -> ServiceResult<()> {
        // In reverse, so an index passed from one write to a later one goes back in turn.
        let pairs: Vec<_> = writes.iter().zip(claimed).collect();
        for (w, claims) in pairs.into_iter().rev() {
            self.release(w, claims).await?;
        }
        Ok(())
    }

    /// Step 1 of the saga: every write checked, reading only, against the store and the
    /// writes before it; the versions each is expected to find, or the first refusal.
    pub(in crate::store::cql) async fn check_all(
        &self,
        writes: &[MemberWrite],
    ) -> ServiceResult<Result<Vec<Versions>, Written>> {
        let mut versions: HashMap<(String, String), Versions> = HashMap::new();
        let mut indexes: HashMap<IndexKey, Option<String>> = HashMap::new();
        let mut orders: HashSet<(String, String)> = HashSet::new();
        let mut expected = Vec::with_capacity(writes.len());
        for w in writes {
            let key = (w.tenant.clone(), w.member.clone());
            let v = match versions.get(&key) {
                Some(v) => *v,
                None => self.versions(&w.tenant, &w.member).await?,
            };
            if let Some(refused) = profile_refusal(w, v) {
                return Ok(Err(refused));
            }
            if let Some(p) = &w.profile {
                for (kind, index) in &p.indexes {
                    let holder = match indexes.get(&(w.tenant.clone(), *kind, *index)) {
                        Some(Some(h)) if *h != w.member => Holder::Member(h.clone()),
                        Some(_) => Holder::Free,
                        None => {
                            self.index_holder(&w.tenant, &w.member, *kind, index)
                                .await?
                                .0
                        }
                    };
                    match holder {
                        Holder::Member(h) => return Ok(Err(Written::Taken(*kind, h))),
                        Holder::InFlight => return Ok(Err(Written::Stale)),
                        Holder::Free => {}
                    }
                }
            }
            if let Some(refused) = facts_refusal(w, v) {
                return Ok(Err(refused));
            }
            if let Some(order) = &w.order {
                let order_key = (w.tenant.clone(), order.order_id.clone());
                if orders.contains(&order_key) {
                    return Ok(Err(Written::OrderExists(Box::new(order.clone()))));
                }
                match self.order_holder(&w.tenant, &order.order_id).await? {
                    Some((_, Ok(Some(recorded)))) => {
                        return Ok(Err(Written::OrderExists(Box::new(recorded))));
                    }
                    Some((_, Err(refused))) => return Ok(Err(refused)),
                    _ => {}
                }
                orders.insert(order_key);
            }
            for (kind, index) in &w.released {
                indexes.insert((w.tenant.clone(), *kind, *index), None);
            }
            if let Some(p) = &w.profile {
                for (kind, index) in &p.indexes {
                    indexes.insert((w.tenant.clone(), *kind, *index), Some(w.member.clone()));
                }
            }
            versions.insert(key, v.after(w)?);
            expected.push(v);
        }
        Ok(Ok(expected))
    }
}
