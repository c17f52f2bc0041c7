//! The trigger feed: a durable subscription to one service's events (the member service's or
//! the ledger's) that rewards members from triggered campaigns as the events arrive
//! ([`Campaigns::on_event`]). Each delivery is acknowledged once handled and delivered again
//! a little later when handling failed: the rewards are keyed, so a second try never pays
//! twice.
//!
//! In two regions (decision 0019) each region's stream holds every tenant's events, and each
//! region rewards its own tenants' and passes the others' by. A region lost with events of
//! its tenants unhandled would leave them unrewarded, since the survivor passed them by. So:
//! - every second, each region's feed saves how far its durable has settled every event, as
//!   a change-log sequence (`<durable>@<region>`), which means the same in both regions'
//!   streams;
//! - a region that covers for the other (it took the other's tenants over, and all of them
//!   have been moved to it) reads its own stream again, with a durable of its own, from the
//!   other region's saved point up to where its stream ended when it began to cover, and
//!   rewards what is now its own (events read twice are harmless, as above);
//! - once that pass is done, and for as long as it covers throughout, it saves its own
//!   settled point as the other region's too, so that a later pass starts from there;
//! - a planned move leaves the same gap when the leaving region's feed is behind: what it
//!   had not delivered before the move began it passes by after, and this region passed it
//!   by before. While tenants move here, this region reads the other's progress (which
//!   cannot pass their events meanwhile: they are delivered again, not passed by), and once
//!   they have arrived it makes the same pass from there.
//!
//! A pass's durable is of its process alone (`<durable>-cover-<ulid>`), forgotten when the
//! pass ends; a process killed mid-pass leaves it on the bus, holding nothing back.

use crate::service::Campaigns;
use futures::FutureExt;
use futures::future::BoxFuture;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_events::subscribe::{Retried, StartAt, Subscription, SubscriptionSpec, Subscriptions};
use loyalty_events::{Envelope, EventBus};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// What handles one event: [`Campaigns::on_event`], run as the platform's work.
pub type Handler = Arc<dyn Fn(Envelope) -> BoxFuture<'static, ServiceResult<u32>> + Send + Sync>;

/// A cover pass with no delivery for this long has read all there is.
const COVER_IDLE: Duration = Duration::from_secs(3);
/// How long a cover pass keeps trying one event before it leaves it unrewarded.
const COVER_PATIENCE: Duration = Duration::from_secs(60);

pub struct TriggerFeed {
    campaigns: Arc<Campaigns>,
    subscriptions: Arc<dyn Subscriptions>,
    bus: Arc<dyn EventBus>,
    spec: SubscriptionSpec,
    handle: Handler,
    /// After a failed handling, the delivery comes again this much later.
    retry_delay: Duration,
    /// How often the feed saves its progress and looks whether it must cover.
    check_every: Duration,
}

impl TriggerFeed {
    pub fn new(
        campaigns: Arc<Campaigns>,
        subscriptions: Arc<dyn Subscriptions>,
        bus: Arc<dyn EventBus>,
        spec: SubscriptionSpec,
        handle: Handler,
    ) -> Self {
        Self {
            campaigns,
            subscriptions,
            bus,
            spec,
            handle,
            retry_delay: Duration::from_secs(5),
            check_every: Duration::from_secs(1),
        }
    }

    /// Shorter waits, for tests.
    pub fn with_timing(self, retry_delay: Duration, check_every: Duration) -> Self {
        Self {
            retry_delay,
            check_every,
            ..self
        }
    }

    /// Handles deliveries until `shutdown`, saving progress and covering for the other region
    /// as the module says.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let feed = Arc::new(self);
        let Some(mut subscription) = feed.subscribe(&feed.spec, &mut shutdown).await else {
            return;
        };
        let mut checks = tokio::time::interval(feed.check_every);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut progress = Progress::default();
        loop {
            tokio::select! {
                delivery = subscription.next() => match delivery {
                    Ok(delivery) => feed.settle(delivery).await,
                    Err(e) => {
                        tracing::warn!(durable = %feed.spec.durable, error = %e, "reading trigger events failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                _ = checks.tick() => feed.check(&mut progress).await,
                _ = stopped(&mut shutdown) => break,
            }
        }
        for pass in [progress.cover.take(), progress.arrival.take()]
            .into_iter()
            .flatten()
        {
            pass.abort();
        }
    }

    /// A subscription under `spec`, tried again each second until it is had or shutdown.
    async fn subscribe(
        &self,
        spec: &SubscriptionSpec,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<Box<dyn Subscription>> {
        loop {
            match self.subscriptions.subscribe(spec.clone()).await {
                Ok(s) => return Some(s),
                Err(e) => tracing::warn!(
                    durable = %spec.durable, error = %e,
                    "subscribing to trigger events failed; retrying"
                ),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopped(shutdown) => return None,
            }
        }
    }

    /// Handles one delivery in its event's trace (the rewards it pays are part of the
    /// request that made the event), then acknowledges it, or has it delivered again.
    async fn settle(&self, delivery: loyalty_events::subscribe::Delivery) {
        let durable = &self.spec.durable;
        let handled = (self.handle)(delivery.event.clone())
            .instrument(delivery.span().clone())
            .await;
        let settled = match handled {
            Ok(_) => delivery.ack().await,
            Err(e) => {
                tracing::warn!(%durable, error = %e.message, "a trigger event failed; trying again");
                delivery
                    .retry(self.retry_delay, &e.message)
                    .await
                    .map(|_: Retried| ())
            }
        };
        if let Err(e) = settled {
            tracing::warn!(%durable, error = %e, "settling a trigger event failed");
        }
    }

    /// Follows a take-over and a planned move with a cover pass, and saves this region's
    /// progress.
    async fn check(self: &Arc<Self>, progress: &mut Progress) {
        if !self.campaigns.in_two_regions() {
            return;
        }
        self.follow_take_over(progress);
        self.follow_arrivals(progress).await;
        self.save_progress(progress).await;
    }

    /// Starts the cover pass once this region covers for the other, and ends it if a failback
    /// begins.
    fn follow_take_over(self: &Arc<Self>, progress: &mut Progress) {
        if !self.campaigns.covers_other_region() {
            if let Some(cover) = progress.cover.take() {
                // A failback began: the other region reads its own events again.
                cover.abort();
            }
            progress.covered = false;
        } else if !progress.covered && progress.cover.is_none() {
            let feed = Arc::clone(self);
            progress.cover = Some(tokio::spawn(async move {
                let durable = &feed.spec.durable;
                match feed.campaigns.peer_trigger_progress(durable).await {
                    Ok(from) => Arc::clone(&feed).cover(from).await,
                    Err(e) => {
                        tracing::warn!(%durable, error = %e.message, "reading the other region's trigger progress failed; retrying");
                        false
                    }
                }
            }));
        } else if let Some(done) = finished(&mut progress.cover) {
            progress.covered = done;
        }
    }

    /// A planned move of tenants from the other region: while they move, the other region's
    /// feed holds at their first event it has not handled (it is delivered again, not passed
    /// by), so its progress read then is a point before everything of theirs it left; once
    /// they have arrived, this region reads its stream again from there.
    async fn follow_arrivals(self: &Arc<Self>, progress: &mut Progress) {
        let durable = &self.spec.durable;
        let moving = self.campaigns.tenants_moving_here();
        if !moving.is_empty() {
            match self.campaigns.peer_trigger_progress(durable).await {
                Ok(mark) => progress.arriving_from = earliest(progress.arriving_from, Some(mark)),
                Err(e) => {
                    tracing::warn!(%durable, error = %e.message, "reading the other region's trigger progress failed; retrying")
                }
            }
        }
        let arrived: Vec<String> = (progress.arriving.iter())
            .filter(|tenant| self.campaigns.homed_here(tenant))
            .cloned()
            .collect();
        // Those neither moving nor here moved back: nothing of theirs is this region's.
        progress.arriving.retain(|t| moving.contains(t));
        progress.arriving.extend(moving);
        if finished(&mut progress.arrival) == Some(false) {
            // To be made again from where it started.
            progress.arrived_from = earliest(progress.arrived_from, progress.arrival_from);
        }
        if !arrived.is_empty() {
            progress.arrived_from = earliest(progress.arrived_from, progress.arriving_from);
            tracing::info!(%durable, tenants = ?arrived, "tenants arrived from the other region");
        }
        if progress.arriving.is_empty() {
            progress.arriving_from = None;
        }
        if progress.arrival.is_none()
            && let Some(from) = progress.arrived_from.take()
        {
            progress.arrival = Some(tokio::spawn(Arc::clone(self).cover(from)));
            progress.arrival_from = Some(from);
        }
    }

    /// Saves how far this region's durable has settled every event, and as the other
    /// region's too while this region has covered for it throughout.
    async fn save_progress(&self, progress: &mut Progress) {
        let durable = &self.spec.durable;
        let settled = match self.subscriptions.settled(&self.spec).await {
            Ok(Some(settled)) => settled,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(%durable, error = %e, "reading how far the trigger feed has settled failed");
                return;
            }
        };
        // Saved as the other region's only if it covered before and after reading it.
        let for_peer = progress.covered && self.campaigns.covers_other_region();
        if progress.saved == Some((settled, for_peer)) {
            return;
        }
        match self
            .campaigns
            .save_trigger_progress(durable, settled, for_peer)
            .await
        {
            Ok(()) => progress.saved = Some((settled, for_peer)),
            Err(e) => {
                tracing::warn!(%durable, error = %e.message, "saving the trigger feed's progress failed; retrying")
            }
        }
    }

    /// Reads this region's stream again from `from`, where the other region's feed had
    /// settled everything, up to where the stream ends now, and rewards what is this
    /// region's: true once done (false: to be tried again).
    async fn cover(self: Arc<Self>, from: u64) -> bool {
        let durable = &self.spec.durable;
        let until = match self.bus.last_published(&self.spec.service).await {
            Ok(last) => last.map_or(0, |p| p.sequence),
            Err(e) => {
                tracing::warn!(%durable, error = %e, "reading the stream's tip failed; retrying");
                return false;
            }
        };
        if until <= from {
            return true;
        }
        tracing::warn!(
            %durable, from, until,
            "rewarding again the trigger events the other region had not settled"
        );
        // Of this process alone: another process of this region covers with its own.
        let spec = SubscriptionSpec {
            durable: format!("{durable}-cover-{}", ulid::Ulid::new()),
            start: StartAt::After(from),
            ack_wait: COVER_PATIENCE * 2,
            ..self.spec.clone()
        };
        let outcome = self.read_again(&spec, until).await;
        if let Err(e) = self.subscriptions.forget(&spec).await {
            tracing::warn!(durable = %spec.durable, error = %e, "forgetting a cover pass's durable failed");
        }
        match outcome {
            Ok(rewarded) => {
                tracing::warn!(%durable, from, until, rewarded, "the other region's trigger events are covered");
                true
            }
            Err(e) => {
                tracing::warn!(%durable, error = %e, "covering the other region's trigger events failed; retrying");
                false
            }
        }
    }

    /// Handles every delivery of `spec` up to change-log sequence `until` (or until none
    /// comes for a while), each tried until it is handled or [`COVER_PATIENCE`] runs out;
    /// how many rewards were paid.
    async fn read_again(&self, spec: &SubscriptionSpec, until: u64) -> Result<u32, String> {
        let bus = |e: loyalty_events::BusError| e.to_string();
        let mut subscription = self
            .subscriptions
            .subscribe(spec.clone())
            .await
            .map_err(bus)?;
        let mut rewarded = 0;
        loop {
            let delivery = match tokio::time::timeout(COVER_IDLE, subscription.next()).await {
                Ok(delivery) => delivery.map_err(bus)?,
                Err(_) => return Ok(rewarded),
            };
            let sequence = delivery.event.sequence;
            rewarded += self.patiently(&delivery.event).await?;
            delivery.ack().await.map_err(bus)?;
            if sequence >= until {
                return Ok(rewarded);
            }
        }
    }

    /// Handles `event`, trying again each second while it is refused for now, for
    /// [`COVER_PATIENCE`] at most (then the pass fails, to be made again from its start);
    /// how many rewards it paid. An event refused for good is left, as the feed would
    /// dead-letter it.
    async fn patiently(&self, event: &Envelope) -> Result<u32, String> {
        let deadline = tokio::time::Instant::now() + COVER_PATIENCE;
        loop {
            let e = match (self.handle)(event.clone()).await {
                Ok(rewarded) => return Ok(rewarded),
                Err(e) => e,
            };
            if e.code != ErrorCode::Unavailable {
                tracing::error!(
                    event = %event.id, tenant = %event.tenant, error = %e.message,
                    "a trigger event of the other region was refused; it is left unrewarded"
                );
                return Ok(0);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("event {}: {}", event.id, e.message));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Returns once `shutdown` says stop (holding nothing of the channel's across an await).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// What a finished pass answered, taking it out of `slot`; None while it runs (or if none
/// does). A pass that panicked or was aborted answers false.
fn finished(slot: &mut Option<JoinHandle<bool>>) -> Option<bool> {
    if !slot.as_ref().is_some_and(JoinHandle::is_finished) {
        return None;
    }
    let done = slot.take().and_then(FutureExt::now_or_never);
    Some(matches!(done, Some(Ok(true))))
}

/// The earlier of two points, either of which may be unknown.
fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What the feed's checks remember between rounds.
#[derive(Default)]
struct Progress {
    /// The last saved settled point, and whether it was saved as the other region's too.
    saved: Option<(u64, bool)>,
    /// The take-over's cover pass under way.
    cover: Option<JoinHandle<bool>>,
    /// A cover pass finished since this region began to cover.
    covered: bool,
    /// Tenants seen moving here from the other region, and the least progress of the other
    /// region's feed read while they moved.
    arriving: BTreeSet<String>,
    arriving_from: Option<u64>,
    /// Where a pass for arrived tenants is to start, once none runs.
    arrived_from: Option<u64>,
    /// The pass for arrived tenants under way, and where it started.
    arrival: Option<JoinHandle<bool>>,
    arrival_from: Option<u64>,
}
