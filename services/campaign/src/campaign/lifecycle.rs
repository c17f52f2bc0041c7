//! A campaign's record and the steps of its life. Stored statuses are draft, submitted,
//! rejected, approved, paused and ended; an approved campaign is shown as scheduled before
//! its start, running inside its window and ended after it ([`CampaignRecord::phase`]).
//! Maker-checker: the staff member who approves is neither who last wrote the campaign nor
//! who submitted it. Every step is kept in the record's history, with who took it.

use super::Campaign;
use super::schedule::Window;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Submitted,
    Rejected,
    Approved,
    Paused,
    Ended,
}

/// A step someone takes on a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Submit,
    Approve,
    Reject,
    Pause,
    Resume,
    End,
}

impl Step {
    pub fn label(self) -> &'static str {
        match self {
            Step::Submit => "submitted",
            Step::Approve => "approved",
            Step::Reject => "rejected",
            Step::Pause => "paused",
            Step::Resume => "resumed",
            Step::End => "ended",
        }
    }
}

/// One entry of a campaign's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    pub at_ms: i64,
    pub by: String,
    /// `written` for a save, else the step's label.
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A campaign with its status, history and budget counters, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub campaign: Campaign,
    pub status: Status,
    /// 1 when created, one more for every write.
    pub version: u64,
    /// Who last wrote the campaign (the maker).
    pub written_by: String,
    #[serde(default)]
    pub submitted_by: Option<String>,
    #[serde(default)]
    pub approved_by: Option<String>,
    pub history: Vec<Taken>,
    /// Budget units held by grants not yet confirmed or released.
    #[serde(default)]
    pub reserved: u64,
    /// Budget units of confirmed grants.
    #[serde(default)]
    pub spent: u64,
}

fn conflict(message: String) -> ServiceError {
    ServiceError::new(ErrorCode::CampaignStateConflict, message)
}

impl CampaignRecord {
    /// A new draft written by `by`.
    pub fn draft(campaign: Campaign, by: &str, at_ms: i64) -> Self {
        Self {
            campaign,
            status: Status::Draft,
            version: 1,
            written_by: by.into(),
            submitted_by: None,
            approved_by: None,
            history: vec![Taken {
                at_ms,
                by: by.into(),
                what: "written".into(),
                note: None,
            }],
            reserved: 0,
            spent: 0,
        }
    }

    /// The campaign rewritten by `by`: only a draft or a rejected campaign can be, and it is
    /// a draft again.
    pub fn rewrite(&mut self, campaign: Campaign, by: &str, at_ms: i64) -> ServiceResult<()> {
        if !matches!(self.status, Status::Draft | Status::Rejected) {
            return Err(conflict(format!(
                "campaign {} is {}: only a draft or a rejected campaign can be changed",
                self.campaign.id,
                self.status_label()
            )));
        }
        self.campaign = campaign;
        self.status = Status::Draft;
        self.written_by = by.into();
        self.submitted_by = None;
        self.push(at_ms, by, "written", None);
        Ok(())
    }

    /// Takes `step` as `by`, or says why it cannot be taken.
    pub fn take(
        &mut self,
        step: Step,
        by: &str,
        at_ms: i64,
        note: Option<String>,
    ) -> ServiceResult<()> {
        let from = self.status;
        let to = match (step, from) {
            (Step::Submit, Status::Draft) => Status::Submitted,
            (Step::Approve | Step::Reject, Status::Submitted) => {
                if by == self.written_by || Some(by) == self.submitted_by.as_deref() {
                    return Err(ServiceError::new(
                        ErrorCode::ApproverIsMaker,
                        format!(
                            "campaign {} was written or submitted by {by}: another staff member \
                             with the approval permission decides it",
                            self.campaign.id
                        ),
                    ));
                }
                if step == Step::Approve {
                    Status::Approved
                } else {
                    Status::Rejected
                }
            }
            (Step::Pause, Status::Approved) => Status::Paused,
            (Step::Resume, Status::Paused) => Status::Approved,
            (Step::End, Status::Approved | Status::Paused) => Status::Ended,
            _ => {
                return Err(conflict(format!(
                    "campaign {} is {}: it cannot be {}",
                    self.campaign.id,
                    self.status_label(),
                    step.label()
                )));
            }
        };
        match step {
            Step::Submit => self.submitted_by = Some(by.into()),
            Step::Approve => self.approved_by = Some(by.into()),
            _ => {}
        }
        self.status = to;
        self.push(at_ms, by, step.label(), note);
        Ok(())
    }

    fn push(&mut self, at_ms: i64, by: &str, what: &str, note: Option<String>) {
        self.version += 1;
        self.history.push(Taken {
            at_ms,
            by: by.into(),
            what: what.into(),
            note,
        });
    }

    fn status_label(&self) -> &'static str {
        match self.status {
            Status::Draft => "a draft",
            Status::Submitted => "submitted",
            Status::Rejected => "rejected",
            Status::Approved => "approved",
            Status::Paused => "paused",
            Status::Ended => "ended",
        }
    }

    /// Where the campaign stands at `now_ms`: draft, submitted, rejected, scheduled,
    /// running, paused or ended.
    pub fn phase(&self, window: &Window, now_ms: i64) -> &'static str {
        match self.status {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::Rejected => "rejected",
            Status::Paused => "paused",
            Status::Ended => "ended",
            Status::Approved if now_ms < window.starts_ms => "scheduled",
            Status::Approved if window.contains(now_ms) => "running",
            Status::Approved => "ended",
        }
    }

    /// Budget units left for new grants, or None without a budget.
    pub fn budget_left(&self) -> Option<u64> {
        self.campaign
            .budget
            .map(|b| b.limit.saturating_sub(self.reserved + self.spent))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::campaign::{Actions, Audience, Reward, Schedule, Variant};

    fn record() -> CampaignRecord {
        let campaign = Campaign {
            id: "XMAS".into(),
            name: "Christmas".into(),
            audience: Audience::Everyone,
            variants: vec![Variant {
                id: "a".into(),
                weight: 1,
                reward: Reward::Points { points: 10 },
            }],
            holdout_percent: 0,
            schedule: Schedule {
                starts: "2026-12-24".into(),
                ends: Some("2026-12-26".into()),
                time_zone: "Asia/Shanghai".into(),
            },
            budget: None,
            frequency_cap: None,
            trigger: None,
            actions: Actions::default(),
            attribution_days: None,
        };
        CampaignRecord::draft(campaign, "maker", 0)
    }

    #[test]
    fn the_maker_cannot_approve_and_every_step_is_kept() {
        let mut r = record();
        r.take(Step::Submit, "submitter", 1, None).unwrap();
        for who in ["maker", "submitter"] {
            let refused = r.take(Step::Approve, who, 2, None).unwrap_err();
            assert_eq!(refused.code, ErrorCode::ApproverIsMaker);
        }
        r.take(Step::Approve, "checker", 3, Some("ok".into()))
            .unwrap();
        assert_eq!(r.status, Status::Approved);
        let steps: Vec<&str> = r.history.iter().map(|t| t.what.as_str()).collect();
        assert_eq!(steps, ["written", "submitted", "approved"]);
        assert_eq!(r.version, 3);
    }

    #[test]
    fn an_approved_campaign_is_scheduled_then_running_then_ended() {
        let mut r = record();
        r.take(Step::Submit, "maker", 1, None).unwrap();
        r.take(Step::Approve, "checker", 2, None).unwrap();
        let w = r.campaign.schedule.resolve().unwrap();
        assert_eq!(r.phase(&w, w.starts_ms - 1), "scheduled");
        assert_eq!(r.phase(&w, w.starts_ms), "running");
        assert_eq!(r.phase(&w, w.ends_ms.unwrap()), "ended");
        r.take(Step::Pause, "checker", 3, None).unwrap();
        assert_eq!(r.phase(&w, w.starts_ms), "paused");
        let refused = r.rewrite(r.campaign.clone(), "maker", 4).unwrap_err();
        assert_eq!(refused.code, ErrorCode::CampaignStateConflict);
        r.take(Step::Resume, "checker", 5, None).unwrap();
        r.take(Step::End, "checker", 6, None).unwrap();
        let refused = r.take(Step::Resume, "checker", 7, None).unwrap_err();
        assert_eq!(refused.code, ErrorCode::CampaignStateConflict);
    }

    #[test]
    fn a_rejected_campaign_is_rewritten_as_a_draft() {
        let mut r = record();
        r.take(Step::Submit, "maker", 1, None).unwrap();
        r.take(Step::Reject, "checker", 2, Some("budget too high".into()))
            .unwrap();
        r.rewrite(r.campaign.clone(), "maker", 3).unwrap();
        assert_eq!((r.status, r.submitted_by.as_deref()), (Status::Draft, None));
    }
}
