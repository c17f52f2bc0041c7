//! How a change made by one replica of the identity service reaches the others at once.
//!
//! Every replica reads the same store, but keeps some of it in memory: the casbin policy (and
//! the decisions taken from it), the revoked sessions, and the API keys it has read. After a
//! change, the replica that made it announces it on a [`ChangeFeed`]; every other replica hears
//! it and drops or reloads what it keeps. A replica that may have missed announcements (its
//! connection to the feed was down) resyncs: it reloads everything from the store. A resync
//! also runs on a timer, as a last line for an announcement lost in between.

use crate::service::IdentityService;
use async_trait::async_trait;
use loyalty_common::Timestamp;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{ApiKeyId, SessionId, StaffId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A role was granted or revoked, or a role's permissions changed: reload the policy.
    Policy,
    /// A session was ended: refuse its tokens.
    SessionRevoked { session: SessionId },
    /// An API key was revoked or changed: read it again at its next use.
    ApiKeyChanged { id: ApiKeyId },
    /// A staff account was deactivated (refuse its tokens) or reactivated (its sessions
    /// begun until `sessions_ended_at` stay ended).
    StaffActive {
        id: StaffId,
        active: bool,
        sessions_ended_at: Timestamp,
    },
}

/// An announcement: the change, and the replica that made it (which ignores its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub origin: String,
    pub change: Change,
}

/// What a replica hears from the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    Notice(Notice),
    /// Announcements may have been missed (the connection was re-established): reload all.
    Resync,
}

/// Where replicas announce their changes (NATS in a deployment of several processes).
#[async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    async fn announce(&self, notice: &Notice) -> ServiceResult<()>;
}

/// The feed of replicas in one process, for tests: every announcement reaches every
/// follower, its maker included (which ignores it by its origin).
#[derive(Default)]
pub struct LocalFeed {
    followers: std::sync::Mutex<Vec<mpsc::UnboundedSender<Heard>>>,
}

impl LocalFeed {
    /// A new follower's receiver.
    pub fn follower(&self) -> mpsc::UnboundedReceiver<Heard> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.followers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }
}

#[async_trait]
impl ChangeFeed for LocalFeed {
    async fn announce(&self, notice: &Notice) -> ServiceResult<()> {
        let followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        for follower in followers.iter() {
            let _ = follower.send(Heard::Notice(notice.clone()));
        }
        Ok(())
    }
}

/// Applies what `service` hears until the feed closes, and resyncs every `resync_every`.
pub fn follow(
    service: Arc<IdentityService>,
    mut heard: mpsc::UnboundedReceiver<Heard>,
    resync_every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(resync_every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer.tick().await;
        loop {
            let next = tokio::select! {
                next = heard.recv() => match next {
                    Some(next) => next,
                    None => break,
                },
                _ = timer.tick() => Heard::Resync,
            };
            if let Err(e) = service.hear(next).await {
                // Kept until the next resync: the store is the truth, the memory a copy.
                tracing::warn!(error = %e, "applying an identity change failed");
            }
        }
    })
}
