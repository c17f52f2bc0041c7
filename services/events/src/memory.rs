//! The in-process bus of the embedded default: the same contract as JetStream (ordered, one copy
//! per event id, the newest sequence per service) with no server. It keeps the newest
//! `retain` events in memory; the durable record on the embedded default is the ledger's change
//! log, from which the publisher re-publishes after a restart.

use crate::bus::{BusError, EventBus, Published};
use crate::envelope::Envelope;
use async_trait::async_trait;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Cheap to clone: clones share one bus.
#[derive(Clone)]
pub struct InProcessBus {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    retain: usize,
    live: broadcast::Sender<Arc<Envelope>>,
    /// Woken by every publication, for subscriptions waiting for new events.
    pub(crate) published: tokio::sync::Notify,
    pub(crate) consumers: crate::memory_consumer::Consumers,
}

#[derive(Default)]
struct Inner {
    /// (position in the bus, event), oldest first.
    events: VecDeque<(u64, Arc<Envelope>)>,
    ids: HashSet<String>,
    next_position: u64,
    last: HashMap<String, Published>,
}

impl InProcessBus {
    /// A bus that keeps the newest `retain` events (at least one).
    pub fn new(retain: usize) -> Self {
        let (live, _) = broadcast::channel(1024);
        let shared = Shared {
            inner: Mutex::new(Inner::default()),
            retain: retain.max(1),
            live,
            published: tokio::sync::Notify::new(),
            consumers: Default::default(),
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.lock()
    }

    /// Events whose subject matches `filter` (NATS wildcards `*` and `>`), oldest first.
    pub fn events(&self, filter: &str) -> Vec<Arc<Envelope>> {
        self.lock()
            .events
            .iter()
            .filter(|(_, e)| subject_matches(filter, &e.nats_subject()))
            .map(|(_, e)| Arc::clone(e))
            .collect()
    }

    /// Every event stored from now on, as it is stored.
    pub fn listen(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.shared.live.subscribe()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update below leaves the state whole before it can panic.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first event after bus position `after` whose subject matches `filter`.
    pub(crate) fn next_after(
        &self,
        after: Option<u64>,
        filter: &str,
    ) -> Option<(u64, Arc<Envelope>)> {
        let inner = self.lock();
        // Positions increase along the queue: skip what was handed out by binary search.
        let start = after.map_or(0, |a| inner.events.partition_point(|(p, _)| *p <= a));
        inner
            .events
            .range(start..)
            .find(|(_, e)| subject_matches(filter, &e.nats_subject()))
            .map(|(p, e)| (*p, Arc::clone(e)))
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn prepare(&self, _service: &str) -> Result<(), BusError> {
        Ok(())
    }

    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        let mut inner = self.lock();
        for event in events {
            if !inner.ids.insert(event.id.clone()) {
                continue;
            }
            let event = Arc::new(event);
            let position = inner.next_position;
            inner.next_position += 1;
            inner.last.insert(
                event.service().to_string(),
                Published {
                    sequence: event.sequence,
                    id: event.id.clone(),
                },
            );
            inner.events.push_back((position, Arc::clone(&event)));
            while inner.events.len() > self.shared.retain {
                if let Some((_, old)) = inner.events.pop_front() {
                    inner.ids.remove(&old.id);
                }
            }
            // Nobody listening is fine.
            let _ = self.shared.live.send(event);
        }
        drop(inner);
        self.shared.published.notify_waiters();
        Ok(())
    }

    async fn last_published(&self, service: &str) -> Result<Option<Published>, BusError> {
        Ok(self.lock().last.get(service).cloned())
    }

    fn is_connected(&self) -> bool {
        true
    }
}

/// NATS subject matching: `*` matches one token, `>` the rest (one or more tokens).
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for f in filter.split('.') {
        match (f, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (f, Some(s)) if f == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Origin;

    fn event(member: &str, name: &str, id: &str, sequence: u64) -> Envelope {
        let origin = Origin {
            service: "ledger",
            tenant: "acme",
            member,
        };
        Envelope::new(
            origin,
            name,
            id.into(),
            sequence,
            chrono::Utc::now(),
            serde_json::value::to_raw_value(&serde_json::json!({})).unwrap(),
        )
    }

    #[test]
    fn wildcards_match_like_nats() {
        assert!(subject_matches(
            "member.*.ledger.>",
            "member.acme.ledger.earned"
        ));
        assert!(subject_matches(
            "member.acme.ledger.earned",
            "member.acme.ledger.earned"
        ));
        assert!(!subject_matches("member.*.ledger.>", "member.acme.ledger"));
        assert!(!subject_matches(
            "member.*.ledger",
            "member.acme.ledger.earned"
        ));
        assert!(!subject_matches("member.x.>", "member.acme.ledger.earned"));
    }

    #[tokio::test]
    async fn keeps_order_drops_copies_and_tracks_the_last_sequence() {
        let bus = InProcessBus::new(10);
        assert_eq!(bus.last_published("ledger").await.unwrap(), None);
        let a = event("alice", "earned", "a", 1);
        let b = event("bob", "spent", "b", 2);
        bus.publish(vec![a.clone(), b.clone()]).await.unwrap();
        bus.publish(vec![b.clone()]).await.unwrap();
        let all = bus.events("member.*.ledger.>");
        assert_eq!(
            all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(bus.events("member.acme.ledger.spent").len(), 1);
        let last = bus.last_published("ledger").await.unwrap().unwrap();
        assert_eq!((last.sequence, last.id.as_str()), (2, "b"));
    }

    #[tokio::test]
    async fn retains_only_the_newest() {
        let bus = InProcessBus::new(2);
        for i in 0..5u64 {
            bus.publish(vec![event("m", "earned", &i.to_string(), i)])
                .await
                .unwrap();
        }
        let ids: Vec<_> = bus.events(">").iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids, ["3", "4"]);
    }
}
