//! The programme's messages: policies, tier states and decisions as JSON documents (the
//! shapes of docs/members.md), segments, and the counts of runs over every member.

use crate::service::{BulkTagged, Refresh, ScoringRun, Segment, SegmentInput, TierRun};
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_proto::member::v1 as pb;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Plain data as JSON text. The programme's types are maps, strings and numbers, which
/// always serialize.
pub fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A JSON document as `what`; a mismatch is INVALID_ARGUMENT naming the problem, in the
/// words the REST API has always used.
pub fn document<T: DeserializeOwned>(text: &str, what: &str) -> ServiceResult<T> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ServiceError::invalid(format!("{what}: not JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| ServiceError::invalid(format!("{what}: {e}")))
}

pub fn segment_input(r: pb::PutSegmentRequest) -> ServiceResult<SegmentInput> {
    Ok(SegmentInput {
        name: r.name,
        query: document(&r.query_json, "segment query")?,
        refresh_minutes: r.refresh_minutes,
    })
}

pub fn refresh(r: Refresh) -> pb::SegmentRefresh {
    pb::SegmentRefresh {
        count: r.count,
        scanned: r.scanned,
        at_ms: r.at.0,
        took_ms: r.took_ms,
    }
}

pub fn segment(s: Segment) -> pb::Segment {
    pb::Segment {
        code: s.code,
        name: s.name,
        query_json: s.query,
        refresh_minutes: s.refresh_minutes,
        created_at_ms: s.created_at.0,
        updated_at_ms: s.updated_at.0,
        last_refresh: s.last_refresh.map(refresh),
    }
}

pub fn tier_run(r: TierRun) -> pb::Run {
    pb::Run {
        members: r.evaluated,
        changed: r.changed,
    }
}

pub fn scoring_run(r: ScoringRun) -> pb::Run {
    pb::Run {
        members: r.scored,
        changed: r.changed,
    }
}

pub fn tagged(b: BulkTagged) -> pb::MembersTagged {
    pb::MembersTagged {
        changed: b.changed as u64,
        unchanged: b.unchanged as u64,
        skipped: b.skipped,
    }
}
