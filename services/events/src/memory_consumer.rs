//! Durable subscriptions on the in-process bus, with the contract of the JetStream ones: in
//! order, at least once, redelivery after a retry, dead letters after `max_attempts`. A
//! delivery dropped without being settled (its handler panicked) counts as a retry without
//! delay. Positions live in memory: they last as long as the process.

use crate::bus::BusError;
use crate::envelope::Envelope;
use crate::memory::{InProcessBus, Shared};
use crate::subscribe::{
    Delivery, Retried, Settle, Subscription, SubscriptionSpec, Subscriptions, check,
    dead_letter_subject,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// A dead-lettered event with why and after how many attempts.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub subject: String,
    pub event: Arc<Envelope>,
    pub reason: String,
    pub attempts: u32,
}

#[derive(Default)]
pub(crate) struct Consumers {
    durables: Mutex<HashMap<String, Arc<Mutex<Durable>>>>,
    dead: Mutex<Vec<DeadLetter>>,
}

#[derive(Default)]
struct Durable {
    /// The bus position of the last event handed out for the first time.
    cursor: Option<u64>,
    redeliver: Vec<Redelivery>,
}

struct Redelivery {
    due: Instant,
    event: Arc<Envelope>,
    attempt: u32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Updates below never leave the guarded state half-done.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl InProcessBus {
    /// Every dead letter so far, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        lock(&self.shared().consumers.dead).clone()
    }
}

#[async_trait]
impl Subscriptions for InProcessBus {
    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<Box<dyn Subscription>, BusError> {
        check(&spec)?;
        let durable = Arc::clone(
            lock(&self.shared().consumers.durables)
                .entry(spec.durable.clone())
                .or_default(),
        );
        Ok(Box::new(InProcessSubscription {
            shared: Arc::clone(self.shared()),
            durable,
            spec,
        }))
    }
}

struct InProcessSubscription {
    shared: Arc<Shared>,
    durable: Arc<Mutex<Durable>>,
    spec: SubscriptionSpec,
}

impl InProcessSubscription {
    fn delivery(&self, event: Arc<Envelope>, attempt: u32) -> Delivery {
        Delivery {
            event: event.as_ref().clone(),
            attempt,
            settle: Box::new(InProcessSettle {
                shared: Arc::clone(&self.shared),
                durable: Arc::clone(&self.durable),
                name: self.spec.durable.clone(),
                max_attempts: self.spec.max_attempts,
                event: Some(event),
                attempt,
            }),
        }
    }
}

#[async_trait]
impl Subscription for InProcessSubscription {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            let published = self.shared.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let next_due = {
                let mut durable = lock(&self.durable);
                let now = Instant::now();
                if let Some(i) = durable.redeliver.iter().position(|r| r.due <= now) {
                    let r = durable.redeliver.remove(i);
                    drop(durable);
                    return Ok(self.delivery(r.event, r.attempt));
                }
                if let Some((position, event)) =
                    self.shared.next_after(durable.cursor, &self.spec.filter)
                {
                    durable.cursor = Some(position);
                    drop(durable);
                    return Ok(self.delivery(event, 1));
                }
                durable.redeliver.iter().map(|r| r.due).min()
            };
            let wake = next_due.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                _ = &mut published => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

struct InProcessSettle {
    shared: Arc<Shared>,
    durable: Arc<Mutex<Durable>>,
    name: String,
    max_attempts: u32,
    /// None once settled.
    event: Option<Arc<Envelope>>,
    attempt: u32,
}

impl InProcessSettle {
    fn settle_retry(&mut self, delay: Duration, reason: &str) -> Retried {
        let Some(event) = self.event.take() else {
            return Retried::Later;
        };
        if self.attempt >= self.max_attempts {
            lock(&self.shared.consumers.dead).push(DeadLetter {
                subject: dead_letter_subject(&self.name, &event.nats_subject()),
                event,
                reason: reason.to_string(),
                attempts: self.attempt,
            });
            return Retried::DeadLettered;
        }
        lock(&self.durable).redeliver.push(Redelivery {
            due: Instant::now() + delay,
            event,
            attempt: self.attempt + 1,
        });
        self.shared.published.notify_waiters();
        Retried::Later
    }
}

impl Drop for InProcessSettle {
    fn drop(&mut self) {
        self.settle_retry(Duration::ZERO, "dropped without being acknowledged");
    }
}

#[async_trait]
impl Settle for InProcessSettle {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        self.event = None;
        Ok(())
    }

    async fn retry(
        mut self: Box<Self>,
        delay: Duration,
        reason: &str,
    ) -> Result<Retried, BusError> {
        Ok(self.settle_retry(delay, reason))
    }
}
