//! Durable subscriptions for the platform's own consumers (e.g. campaign triggers): each event
//! is delivered at least once, in order, until it is acknowledged; a failed one is delivered
//! again after a delay, and after `max_attempts` it goes to the dead-letter subject
//! `deadletter.<durable>.<original subject>` with the reason, so one poison message cannot
//! block or spin a consumer forever.

use crate::bus::BusError;
use crate::envelope::Envelope;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The subject a dead letter of `durable` is published on.
pub fn dead_letter_subject(durable: &str, original: &str) -> String {
    format!("deadletter.{durable}.{original}")
}

/// Where a new durable starts. It applies when the durable is created; afterwards the durable
/// continues from its stored position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartAt {
    /// From the oldest event the stream keeps.
    #[default]
    All,
    /// From the first event published after the durable is created.
    New,
    /// From the first event stored at or after this time.
    Time(DateTime<Utc>),
    /// From the first event whose change-log `sequence` is above this one: for a consumer
    /// that reads again from where another stopped (a lost region's, decision 0019).
    After(u64),
}

#[derive(Debug, Clone)]
pub struct SubscriptionSpec {
    /// The durable name: the position survives restarts and is shared by every process that
    /// subscribes under it (each event goes to one of them). Letters, digits, '-' and '_'.
    pub durable: String,
    /// The service whose events to read, e.g. "ledger".
    pub service: String,
    /// A subject filter with NATS wildcards, e.g. `member.*.ledger.earned`.
    pub filter: String,
    /// Deliveries of one event before it is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// An event neither acknowledged nor retried within this time is delivered again.
    pub ack_wait: Duration,
    /// Where a new durable starts.
    pub start: StartAt,
    /// Deliveries handed out and not yet settled, at most; more wait until some are settled
    /// (JetStream's `max_ack_pending`). Bounds what a consumer that spawns a task per
    /// delivery holds in memory.
    pub max_ack_pending: usize,
}

impl SubscriptionSpec {
    /// A durable on `filter` of `service`'s events with JetStream's usual settings: from the
    /// oldest kept event, 5 attempts, 30 s to settle each, 1,000 unsettled at most.
    pub fn new(durable: &str, service: &str, filter: &str) -> Self {
        Self {
            durable: durable.into(),
            service: service.into(),
            filter: filter.into(),
            max_attempts: 5,
            ack_wait: Duration::from_secs(30),
            start: StartAt::All,
            max_ack_pending: 1_000,
        }
    }
}

/// What became of a retried delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    /// It will be delivered again.
    Later,
    /// That was its last attempt: it is now on the dead-letter subject.
    DeadLettered,
}

/// How an adapter settles one delivery.
#[async_trait]
pub(crate) trait Settle: Send {
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    async fn retry(self: Box<Self>, delay: Duration, reason: &str) -> Result<Retried, BusError>;
}

/// One delivery of one event.
pub struct Delivery {
    pub event: Envelope,
    /// 1 on the first delivery.
    pub attempt: u32,
    pub(crate) settle: Box<dyn Settle>,
    /// Open from delivery to settlement.
    pub(crate) span: tracing::Span,
}

impl Delivery {
    /// The span of this delivery's processing, from its delivery to its settlement: a child
    /// of the trace of the request that made the event, when it was traced. Handle the event
    /// inside it (`handling.instrument(delivery.span().clone())`) for the handler's own spans
    /// and calls to join that trace. A disabled span with trace export off.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The event is handled: it is not delivered again.
    pub async fn ack(self) -> Result<(), BusError> {
        self.settle.ack().await
    }

    /// Handling failed: deliver it again after `delay`, or dead-letter it with `reason` when
    /// this was its last attempt.
    pub async fn retry(self, delay: Duration, reason: &str) -> Result<Retried, BusError> {
        self.settle.retry(delay, reason).await
    }
}

#[async_trait]
pub trait Subscription: Send {
    /// The next delivery, waiting for one.
    async fn next(&mut self) -> Result<Delivery, BusError>;
}

#[async_trait]
pub trait Subscriptions: Send + Sync {
    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<Box<dyn Subscription>, BusError>;

    /// The change-log `sequence` of the newest event up to which the durable named in `spec`
    /// has settled (acknowledged or dead-lettered) every event it reads, whichever of its
    /// subscribers, in any process, settled them. None if it does not exist, has settled
    /// nothing yet, or that event is no longer kept.
    async fn settled(&self, spec: &SubscriptionSpec) -> Result<Option<u64>, BusError>;

    /// Deletes the durable named in `spec`, its position and its unsettled deliveries: the
    /// next subscription under that name starts afresh at `spec.start`. A durable that does
    /// not exist is already forgotten. Drop its subscriptions first.
    async fn forget(&self, spec: &SubscriptionSpec) -> Result<(), BusError>;
}

pub(crate) fn check(spec: &SubscriptionSpec) -> Result<(), BusError> {
    let name_ok = !spec.durable.is_empty()
        && spec
            .durable
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(BusError::Refused(format!(
            "durable name {:?} must be letters, digits, '-' or '_'",
            spec.durable
        )));
    }
    if spec.max_attempts == 0 {
        return Err(BusError::Refused("max_attempts must be at least 1".into()));
    }
    if spec.ack_wait.is_zero() {
        return Err(BusError::Refused(
            "ack_wait must be longer than zero".into(),
        ));
    }
    if spec.max_ack_pending == 0 {
        return Err(BusError::Refused(
            "max_ack_pending must be at least 1".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_that_cannot_work_is_refused_with_the_reason() {
        let ok = SubscriptionSpec::new("campaign-triggers", "ledger", "member.*.ledger.>");
        assert!(check(&ok).is_ok());
        let refused = |spec: SubscriptionSpec| check(&spec).unwrap_err().to_string();
        let bad_name = SubscriptionSpec::new("a.b", "ledger", ">");
        assert!(refused(bad_name).contains("durable name"));
        let never_settles = SubscriptionSpec {
            ack_wait: Duration::ZERO,
            ..ok.clone()
        };
        assert!(refused(never_settles).contains("ack_wait"));
        let no_attempts = SubscriptionSpec {
            max_attempts: 0,
            ..ok.clone()
        };
        assert!(refused(no_attempts).contains("max_attempts"));
        let nothing_in_flight = SubscriptionSpec {
            max_ack_pending: 0,
            ..ok
        };
        assert!(refused(nothing_in_flight).contains("max_ack_pending"));
    }
}
