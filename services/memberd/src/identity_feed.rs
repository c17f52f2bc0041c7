//! The identity change feed on NATS (core subjects, not a stream): each replica announces its
//! policy, session and API-key changes on [`SUBJECT`], and applies the others' (see
//! `loyalty_identity::changes`). Announcements made while a connection is down wait in the
//! client's buffer; after every (re)connection the replica resyncs from the store, since it
//! may have missed some, and it resyncs on a timer besides.
//!
//! In two regions each region's processes connect in an account of their own (decision 0019,
//! item 9), and core subjects stay within an account. Each region's account exports
//! [`SUBJECT`] and imports the other's with the prefix `peer` (docs/operations/failover.md
//! shows the accounts): the other region's announcements then arrive on [`PEER_SUBJECT`],
//! and a revocation made there takes effect here at once, not at the next resync. The prefix
//! keeps an imported announcement from being exported back.

use async_trait::async_trait;
use futures::StreamExt;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_events::config::NatsConfig;
use loyalty_events::nats::connect_client;
use loyalty_identity::changes::{self, ChangeFeed, Heard, Notice};
use loyalty_identity::service::IdentityService;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Where every replica announces and hears identity changes.
pub const SUBJECT: &str = "loyalty.identity.changes.v1";

/// Where the other region's announcements arrive, once its account's [`SUBJECT`] is imported
/// with the prefix `peer`.
pub const PEER_SUBJECT: &str = "peer.loyalty.identity.changes.v1";

/// What a region's NATS account needs, in the server configuration's syntax: the export of
/// its announcements, and the import of `peer_account`'s under the prefix that makes them
/// [`PEER_SUBJECT`]. (With JWT accounts, `nsc add export` and `nsc add import` say the same:
/// k8s/README.md.)
pub fn account_sharing_with(peer_account: &str) -> String {
    format!(
        "exports: [{{stream: \"{SUBJECT}\"}}], \
         imports: [{{stream: {{account: {peer_account}, subject: \"{SUBJECT}\"}}, prefix: peer}}]"
    )
}

struct NatsChangeFeed {
    client: async_nats::Client,
}

#[async_trait]
impl ChangeFeed for NatsChangeFeed {
    async fn announce(&self, notice: &Notice) -> ServiceResult<()> {
        let body = serde_json::to_vec(notice).map_err(ServiceError::internal)?;
        self.client
            .publish(SUBJECT, body.into())
            .await
            .map_err(|e| ServiceError::unavailable(format!("announcing on NATS: {e}")))
    }
}

/// Connects `service` to the feed: it announces its changes there and applies what the other
/// replicas announce. The returned task ends (and lets go of the connection) at `shutdown`.
pub async fn follow(
    service: Arc<IdentityService>,
    config: &NatsConfig,
    resync_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let (events, mut connection) = mpsc::unbounded_channel();
    let client = connect_client(config, "memberd-identity", Some(events))
        .await
        .map_err(|e| anyhow::anyhow!("connecting the identity change feed to NATS: {e}"))?;
    let mut notices = futures::stream::select(
        subscribe(&client, SUBJECT).await?,
        subscribe(&client, PEER_SUBJECT).await?,
    );
    let (heard, heard_rx) = mpsc::unbounded_channel();
    let relay = tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                Some(event) = connection.recv() => match event {
                    // Announcements may have been missed while the connection was down.
                    async_nats::Event::Connected => Heard::Resync,
                    _ => continue,
                },
                Some(message) = notices.next() => {
                    match serde_json::from_slice::<Notice>(&message.payload) {
                        Ok(notice) => Heard::Notice(notice),
                        Err(e) => {
                            tracing::warn!(error = %e, "ignoring a malformed identity change notice");
                            continue;
                        }
                    }
                }
                else => break,
            };
            if heard.send(next).is_err() {
                break;
            }
        }
    });
    service.announce_on(Arc::new(NatsChangeFeed { client }));
    let follower = changes::follow(service, heard_rx, resync_every);
    Ok(tokio::spawn(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
        relay.abort();
        follower.abort();
        Ok(())
    }))
}

async fn subscribe(
    client: &async_nats::Client,
    subject: &'static str,
) -> anyhow::Result<async_nats::Subscriber> {
    client
        .subscribe(subject)
        .await
        .map_err(|e| anyhow::anyhow!("subscribing to {subject} on NATS: {e}"))
}

/// Without a feed, reloads policy and revocations every `resync_every`: for a process whose
/// store another region's identity service writes too (decision 0019), whose changes reach
/// this one only through the store. `resync_every` plus the replication lag bounds how late a
/// revocation or a role change made there takes effect here.
pub fn resync_only(
    service: Arc<IdentityService>,
    resync_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    // Nothing is ever announced; the sender lives as long as the task, or the follower would
    // see its feed closed and stop.
    let (never, heard) = mpsc::unbounded_channel::<Heard>();
    let follower = changes::follow(service, heard, resync_every);
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
        drop(never);
        follower.abort();
        Ok(())
    })
}
