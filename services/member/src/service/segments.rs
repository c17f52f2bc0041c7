//! Saved segments: a named query over member facts ([`crate::segment::Query`]), refreshed on
//! demand or every `refresh_minutes`, with its members kept by generation so a page read
//! during a refresh sees the previous result whole. Bulk tags can target a segment.

use super::{Members, busy};
use crate::segment::Query;
use crate::store::Versioned;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::{ServiceError, Timestamp};
use serde::{Deserialize, Serialize};
use std::time::Instant;

const SEGMENTS: &str = "segment";
/// Facts read per page of a refresh.
const PAGE: usize = 5_000;
/// Matches written per batch. Each batch is one durable write, so a refresh waits for one
/// sync per this many matches rather than one per page of facts.
const WRITE_BATCH: usize = 50_000;
/// Refreshes run at most this often on schedule.
pub const MIN_REFRESH_MINUTES: u32 = 5;

/// A saved segment as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// 1 to 64 of `a-z 0-9 - _`.
    pub code: String,
    pub name: String,
    /// The query, as JSON text (checked when saved, compiled at each refresh).
    pub query: String,
    /// Refreshed on schedule this often; None: on demand only.
    pub refresh_minutes: Option<u32>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The last refresh; None before the first.
    pub last_refresh: Option<Refresh>,
}

/// What a refresh found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    /// Which generation of members is current.
    pub generation: u64,
    pub count: u64,
    /// Members evaluated.
    pub scanned: u64,
    pub at: Timestamp,
    pub took_ms: u64,
}

/// A segment to save.
#[derive(Debug, Clone)]
pub struct SegmentInput {
    pub name: String,
    pub query: serde_json::Value,
    pub refresh_minutes: Option<u32>,
}

/// Members a preview reads at most.
pub const PREVIEW_BUDGET: u64 = 50_000;

/// What an unsaved query matches among the members read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preview {
    pub count: u64,
    pub scanned: u64,
    /// Every member of the tenant was read: `count` is exact.
    pub complete: bool,
}

fn segment_not_found(code: &str) -> ServiceError {
    ServiceError::new(ErrorCode::SegmentNotFound, format!("no segment {code}"))
}

fn check_code(code: &str) -> ServiceResult<()> {
    let ok = (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(format!(
            "segment code {code:?} is not 1 to 64 lower-case letters, digits, '-' or '_'"
        )))
    }
}

impl Members {
    /// Saves (creates or replaces) a segment; its members are those of its last refresh
    /// until it is refreshed again.
    pub async fn put_segment(
        &self,
        tenant: &TenantId,
        code: &str,
        input: SegmentInput,
    ) -> ServiceResult<Segment> {
        check_code(code)?;
        if input.name.trim().is_empty() || input.name.chars().count() > 200 {
            return Err(ServiceError::invalid("name must be 1 to 200 characters"));
        }
        if let Some(m) = input.refresh_minutes
            && m < MIN_REFRESH_MINUTES
        {
            return Err(ServiceError::invalid(format!(
                "refresh_minutes must be at least {MIN_REFRESH_MINUTES}"
            )));
        }
        Query::parse(&input.query)?;
        let now = self.clock.now();
        let previous = self.segment(tenant, code).await.ok();
        let segment = Segment {
            code: code.into(),
            name: input.name,
            query: input.query.to_string(),
            refresh_minutes: input.refresh_minutes,
            created_at: previous.as_ref().map_or(now, |p| p.created_at),
            updated_at: now,
            last_refresh: previous.and_then(|p| p.last_refresh),
        };
        self.store_segment(tenant, &segment).await?;
        Ok(segment)
    }

    async fn store_segment(&self, tenant: &TenantId, segment: &Segment) -> ServiceResult<()> {
        let bytes = serde_json::to_vec(segment).map_err(ServiceError::internal)?;
        self.repo
            .put_setting(tenant, SEGMENTS, &segment.code, Some(bytes))
            .await
    }

    pub async fn segment(&self, tenant: &TenantId, code: &str) -> ServiceResult<Segment> {
        let bytes = self
            .repo
            .setting(tenant, SEGMENTS, code)
            .await?
            .ok_or_else(|| segment_not_found(code))?;
        serde_json::from_slice(&bytes).map_err(ServiceError::internal)
    }

    pub async fn segments(&self, tenant: &TenantId) -> ServiceResult<Vec<Segment>> {
        self.repo
            .settings(tenant, SEGMENTS)
            .await?
            .into_iter()
            .map(|(_, bytes)| serde_json::from_slice(&bytes).map_err(ServiceError::internal))
            .collect()
    }

    pub async fn delete_segment(&self, tenant: &TenantId, code: &str) -> ServiceResult<()> {
        let segment = self.segment(tenant, code).await?;
        self.repo.put_setting(tenant, SEGMENTS, code, None).await?;
        if let Some(r) = segment.last_refresh {
            self.repo
                .drop_segment_members(tenant, code, r.generation)
                .await?;
        }
        Ok(())
    }

    /// Counts the members an unsaved query matches, reading at most [`PREVIEW_BUDGET`]
    /// members in member id order: what a console shows while the query is being written.
    /// Nothing is stored. `complete` is false when the tenant has more members than were read.
    pub async fn preview_segment(
        &self,
        tenant: &TenantId,
        query: &serde_json::Value,
    ) -> ServiceResult<Preview> {
        let matcher = Query::parse(query)?.compile(self.clock.now())?;
        let (mut count, mut scanned) = (0u64, 0u64);
        let mut after: Option<String> = None;
        let mut complete = false;
        while scanned < PREVIEW_BUDGET {
            let want = PAGE.min((PREVIEW_BUDGET - scanned) as usize);
            let page: Vec<Versioned<_>> =
                self.repo.facts_page(tenant, after.as_deref(), want).await?;
            scanned += page.len() as u64;
            count += page.iter().filter(|f| matcher.matches(&f.value)).count() as u64;
            if page.len() < want {
                complete = true;
                break;
            }
            after = page.last().map(|f| f.value.member_id.clone());
        }
        Ok(Preview {
            count,
            scanned,
            complete,
        })
    }

    /// Evaluates the segment over every member now and makes the result current.
    pub async fn refresh_segment(&self, tenant: &TenantId, code: &str) -> ServiceResult<Refresh> {
        let _claim = Refreshing::claim(&self.refreshing, format!("{tenant}/{code}"))?;
        self.refresh_now(tenant, code).await
    }

    async fn refresh_now(&self, tenant: &TenantId, code: &str) -> ServiceResult<Refresh> {
        let started = Instant::now();
        let segment = self.segment(tenant, code).await?;
        let query: serde_json::Value =
            serde_json::from_str(&segment.query).map_err(ServiceError::internal)?;
        let now = self.clock.now();
        let matcher = Query::parse(&query)?.compile(now)?;
        let old = segment.last_refresh.map(|r| r.generation);
        let generation = old.map_or(1, |g| g + 1);
        // A refresh that died half-way left rows under this generation: start clean.
        self.repo
            .drop_segment_members(tenant, code, generation)
            .await?;
        let (mut count, mut scanned) = (0u64, 0u64);
        let mut after: Option<String> = None;
        let mut matched: Vec<String> = Vec::new();
        loop {
            let page: Vec<Versioned<_>> =
                self.repo.facts_page(tenant, after.as_deref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.value.member_id.clone());
            scanned += page.len() as u64;
            let before = matched.len();
            matched.extend(
                page.into_iter()
                    .filter(|f| matcher.matches(&f.value))
                    .map(|f| f.value.member_id),
            );
            count += (matched.len() - before) as u64;
            if matched.len() >= WRITE_BATCH {
                let batch = std::mem::take(&mut matched);
                self.repo
                    .add_segment_members(tenant, code, generation, batch)
                    .await?;
            }
        }
        if !matched.is_empty() {
            self.repo
                .add_segment_members(tenant, code, generation, matched)
                .await?;
        }
        let refresh = Refresh {
            generation,
            count,
            scanned,
            at: now,
            took_ms: started.elapsed().as_millis() as u64,
        };
        // Saved over the definition as it is now: an edit during the refresh keeps its
        // query, and takes effect at the next refresh.
        let mut current = self.segment(tenant, code).await?;
        current.last_refresh = Some(refresh);
        self.store_segment(tenant, &current).await?;
        if let Some(old) = old {
            self.repo.drop_segment_members(tenant, code, old).await?;
        }
        Ok(refresh)
    }

    /// A page of the segment's members as of its last refresh, and the cursor of the next.
    pub async fn segment_members(
        &self,
        tenant: &TenantId,
        code: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<(Vec<String>, Option<String>)> {
        let generation = self.current_generation(tenant, code).await?;
        let limit = limit.clamp(1, 1_000);
        let page = self
            .repo
            .segment_members(tenant, code, generation, after, limit)
            .await?;
        let next = (page.len() == limit)
            .then(|| page.last().cloned())
            .flatten();
        Ok((page, next))
    }

    /// Every member of the segment as of its last refresh (one generation throughout, so a
    /// refresh meanwhile cannot cut the list short).
    pub async fn all_segment_members(
        &self,
        tenant: &TenantId,
        code: &str,
    ) -> ServiceResult<Vec<MemberId>> {
        let generation = self.current_generation(tenant, code).await?;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .repo
                .segment_members(tenant, code, generation, after.as_deref(), 1_000)
                .await?;
            let full = page.len() == 1_000;
            after = page.last().cloned();
            for m in page {
                out.push(MemberId::parse(m)?);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    async fn current_generation(&self, tenant: &TenantId, code: &str) -> ServiceResult<u64> {
        match self.segment(tenant, code).await?.last_refresh {
            Some(refresh) => Ok(refresh.generation),
            None => Err(ServiceError::new(
                ErrorCode::SegmentNotRefreshed,
                format!("segment {code} has not been refreshed yet: refresh it first"),
            )),
        }
    }

    /// Refreshes the tenant's segments whose schedule is due; how many.
    pub async fn refresh_due_segments(&self, tenant: &TenantId) -> ServiceResult<usize> {
        let now = self.clock.now();
        let (mut refreshed, mut failed) = (0, None);
        for segment in self.segments(tenant).await? {
            let Some(minutes) = segment.refresh_minutes else {
                continue;
            };
            let due = segment
                .last_refresh
                .is_none_or(|r| r.at.plus_secs(i64::from(minutes) * 60) <= now);
            // One failing segment does not hold up the others; the first error is returned.
            if due {
                match self.refresh_segment(tenant, &segment.code).await {
                    Ok(_) => refreshed += 1,
                    Err(e) => failed = failed.or(Some(e)),
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(refreshed),
        }
    }
}

/// A claim on refreshing one segment, given up when dropped: also when the request that
/// holds it is cancelled (a timeout, a client gone), which would otherwise leave the
/// segment busy for good.
struct Refreshing<'a> {
    set: &'a std::sync::Mutex<std::collections::BTreeSet<String>>,
    key: String,
}

impl<'a> Refreshing<'a> {
    fn claim(
        set: &'a std::sync::Mutex<std::collections::BTreeSet<String>>,
        key: String,
    ) -> ServiceResult<Self> {
        if !set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone())
        {
            return Err(busy());
        }
        Ok(Self { set, key })
    }
}

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::MemberFacts;
    use crate::store::{EmbeddedMemberStore, MemberWrite};
    use crate::vault::MasterKey;
    use loyalty_common::ManualClock;
    use std::sync::Arc;

    /// More members than a page of facts and more matches than a write batch: every match
    /// is kept, in order, and a second refresh replaces the first whole.
    #[tokio::test]
    async fn a_refresh_spans_many_pages_and_write_batches() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedMemberStore::open(dir.path()).unwrap();
        let members = Members::new(
            Arc::new(store),
            MasterKey::generate().unwrap().0,
            ManualClock::new(Timestamp(1_768_478_400_000)),
        );
        let tenant = TenantId::parse("acme").unwrap();
        let total = WRITE_BATCH + 2 * PAGE + 7;
        let ids: Vec<String> = (0..total).map(|i| format!("m{i:06}")).collect();
        for chunk in ids.chunks(PAGE) {
            let writes = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let mut facts = MemberFacts::new(id, Timestamp(1_768_000_000_000));
                    // Every tenth member of a chunk stays out of the segment.
                    if i % 10 != 0 {
                        facts.tags.insert("vip".into());
                    }
                    MemberWrite {
                        tenant: "acme".into(),
                        member: id.clone(),
                        facts: Some(Versioned {
                            version: 1,
                            value: facts,
                        }),
                        ..MemberWrite::default()
                    }
                })
                .collect();
            members.repo.write_many(writes, None).await.unwrap();
        }
        let expected: Vec<MemberId> = ids
            .chunks(PAGE)
            .flat_map(|chunk| chunk.iter().enumerate().filter(|(i, _)| i % 10 != 0))
            .map(|(_, id)| MemberId::parse(id.clone()).unwrap())
            .collect();
        assert!(expected.len() > WRITE_BATCH);
        let input = || SegmentInput {
            name: "VIPs".into(),
            query: serde_json::json!({"tag": "vip"}),
            refresh_minutes: None,
        };
        members.put_segment(&tenant, "vips", input()).await.unwrap();
        for generation in 1..=2 {
            let refresh = members.refresh_segment(&tenant, "vips").await.unwrap();
            assert_eq!(refresh.generation, generation);
            assert_eq!(refresh.scanned, total as u64);
            assert_eq!(refresh.count, expected.len() as u64);
            let all = members.all_segment_members(&tenant, "vips").await.unwrap();
            assert!(
                all == expected,
                "generation {generation}: {} members",
                all.len()
            );
        }
        // The first generation is gone.
        let old = members
            .repo
            .segment_members(&tenant, "vips", 1, None, 10)
            .await
            .unwrap();
        assert!(old.is_empty());
    }
}
