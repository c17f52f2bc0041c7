//! A partner in each region: a durable consumer of the ledger's stream in that region's
//! account, reading and acknowledging through the drill as a CRM or a warehouse would, and
//! counting each event id by the stream sequences it was stored at. An id stored at two
//! sequences is a duplicate publication; one delivered twice at the same sequence (an
//! acknowledgement lost with a killed server) is a redelivery, which partners drop by id.

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use futures::StreamExt;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::supercluster::Supercluster;

const STREAM: &str = "LOYALTY_LEDGER";
const DURABLE: &str = "partner";

/// What one partner has received: each event id's stream sequences, and redeliveries.
#[derive(Default)]
pub struct Received {
    pub sequences: HashMap<String, BTreeSet<u64>>,
    pub redelivered: usize,
}

pub struct Partner {
    pub region: &'static str,
    pub received: Arc<Mutex<Received>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What a partner lacks or holds twice, against the entries the wallets hold.
pub struct Tally {
    pub missing: Vec<String>,
    pub duplicated: Vec<String>,
    /// Events of entries no wallet holds: of a write applied somewhere, published, and then
    /// lost or undone, which the partner acted on.
    pub phantom: Vec<String>,
    pub redelivered: usize,
    pub received: usize,
}

impl Partner {
    /// Starts consuming `region`'s ledger stream once memberd there has created it.
    pub async fn start(nats: &Supercluster, region: &'static str) -> Self {
        let js = nats.jetstream(region).await;
        let received = Arc::new(Mutex::new(Received::default()));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(consume(js, Arc::clone(&received), stopped));
        Self {
            region,
            received,
            stop,
            task,
        }
    }

    /// Waits until every id of `expected` has arrived (or `wait` has passed), then stops
    /// and counts.
    pub async fn finish(self, expected: &HashSet<String>, wait: Duration) -> Tally {
        let deadline = Instant::now() + wait;
        let all_in = || {
            let received = self.received.lock().unwrap();
            expected
                .iter()
                .all(|id| received.sequences.contains_key(id))
        };
        while !all_in() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
        let received = self.received.lock().unwrap();
        let mut missing: Vec<String> = expected
            .iter()
            .filter(|id| !received.sequences.contains_key(*id))
            .cloned()
            .collect();
        missing.sort();
        let duplicated = received
            .sequences
            .iter()
            .filter(|(_, at)| at.len() > 1)
            .map(|(id, at)| format!("{id} at {at:?}"))
            .collect();
        let mut phantom: Vec<String> = received
            .sequences
            .keys()
            .filter(|id| !expected.contains(*id))
            .cloned()
            .collect();
        phantom.sort();
        Tally {
            missing,
            duplicated,
            phantom,
            redelivered: received.redelivered,
            received: received.sequences.len(),
        }
    }
}

/// Reads and acknowledges until `stop`, re-finding the consumer after any failure (its
/// region's server killed, the stream not created yet).
async fn consume(
    js: async_nats::jetstream::Context,
    received: Arc<Mutex<Received>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut consumer: Option<PullConsumer> = None;
    while !*stop.borrow_and_update() {
        let Some(current) = consumer.as_ref() else {
            consumer = find(&js).await;
            if consumer.is_none() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            continue;
        };
        let batch = current
            .fetch()
            .max_messages(200)
            .expires(Duration::from_millis(500))
            .messages()
            .await;
        let Ok(mut batch) = batch else {
            consumer = None;
            continue;
        };
        while let Some(message) = batch.next().await {
            let Ok(message) = message else {
                consumer = None;
                break;
            };
            let Ok(info) = message.info() else { continue };
            let (sequence, delivered) = (info.stream_sequence, info.delivered);
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                .map(|id| id.to_string());
            if let Some(id) = id {
                let mut received = received.lock().unwrap();
                if delivered > 1 {
                    received.redelivered += 1;
                }
                received.sequences.entry(id).or_default().insert(sequence);
            }
            // A lost acknowledgement is a redelivery, counted above.
            let _ = message.ack().await;
        }
    }
}

async fn find(js: &async_nats::jetstream::Context) -> Option<PullConsumer> {
    let stream = js.get_stream(STREAM).await.ok()?;
    let config = pull::Config {
        durable_name: Some(DURABLE.into()),
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(5),
        ..Default::default()
    };
    stream.get_or_create_consumer(DURABLE, config).await.ok()
}
