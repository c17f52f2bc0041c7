//! The NATS JetStream adapter: one stream per service (`LOYALTY_LEDGER` holding
//! `member.*.ledger.>`), created or updated from config, and publication with the event id as
//! `Nats-Msg-Id` so JetStream drops a re-published copy, and the event's W3C trace context
//! (`traceparent`, `tracestate`) when it has one.
//!
//! Every message also names the stream sequence it must follow (`Nats-Expected-Last-Sequence`),
//! so the stream only ever holds an unbroken run of the batch. Without it, a connection lost
//! mid-batch can store a gap: the server dies with some messages unread, and the client sends
//! the ones it still buffered to the restarted server. The publisher would then resume after
//! the newest stored event and skip the missing ones.

use crate::bus::{BusError, EventBus, Published};
use crate::config::{NatsConfig, Retention, StreamSettings};
use crate::envelope::{Envelope, service_subjects};
use async_nats::connection::State;
use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use loyalty_telemetry::propagation::{TRACEPARENT, TRACESTATE};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// A client of the configured NATS server with its credentials and TLS, connecting (and
/// reconnecting, with capped exponential back-off) in the background. Connection events are
/// logged and, when `events` is given, also sent there.
pub async fn connect_client(
    config: &NatsConfig,
    name: &str,
    events: Option<tokio::sync::mpsc::UnboundedSender<async_nats::Event>>,
) -> Result<async_nats::Client, BusError> {
    let max_delay = Duration::from_millis(config.max_reconnect_delay_ms.max(100));
    // `nats_connected{client}`: 1 while this client is connected, for the alert on a
    // process whose events wait in its outbox.
    let connected = metrics::gauge!("nats_connected", "client" => name.to_string());
    connected.set(0.0);
    let watched = connected.clone();
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        // Exponential back-off from 100 ms, capped: a returning server is found quickly,
        // a long outage is not hammered.
        .reconnect_delay_callback(move |attempts| {
            let exp = 100u64.saturating_mul(1 << attempts.min(16));
            Duration::from_millis(exp).min(max_delay)
        })
        .event_callback(move |event| {
            let events = events.clone();
            match event {
                async_nats::Event::Connected => watched.set(1.0),
                async_nats::Event::Disconnected | async_nats::Event::Closed => watched.set(0.0),
                _ => {}
            }
            async move {
                tracing::info!(%event, "nats connection event");
                if let Some(events) = events {
                    let _ = events.send(event);
                }
            }
        });
    if let Some(path) = &config.credentials_file {
        options = options.credentials_file(path).await.map_err(|e| {
            BusError::Refused(format!(
                "cannot read the NATS credentials file {}: {e}",
                path.display()
            ))
        })?;
    }
    if let (Some(user), Some(password)) = (&config.user, &config.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(ca) = &config.tls_ca_file {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&config.tls_client_cert, &config.tls_client_key) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    let client = options
        .connect(config.url.as_str())
        .await
        .map_err(|e| BusError::Refused(format!("NATS url {}: {e}", config.url)))?;
    if client.connection_state() == State::Connected {
        connected.set(1.0);
    }
    Ok(client)
}

pub struct NatsBus {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: StreamSettings,
    /// Each service's stream sequence as of the last confirmed publication or look; absent
    /// (unknown) after a failed publication, when it is read from the stream again.
    tips: Mutex<HashMap<String, u64>>,
}

impl NatsBus {
    /// Connects in the background: `memberd` starts, and keeps taking writes, while NATS is down;
    /// events wait in the ledger's change log until the connection is up.
    pub async fn connect(config: &NatsConfig) -> Result<Self, BusError> {
        let client = connect_client(config, "memberd", None).await?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_millis(config.ack_timeout_ms.max(100)));
        Ok(Self {
            client,
            js,
            stream: config.stream.clone(),
            tips: Mutex::default(),
        })
    }

    fn stream_config(&self, service: &str) -> stream::Config {
        let s = &self.stream;
        stream::Config {
            name: s.stream_name(service),
            subjects: vec![service_subjects(service)],
            retention: match s.retention {
                Retention::Limits => stream::RetentionPolicy::Limits,
                Retention::Interest => stream::RetentionPolicy::Interest,
                Retention::Workqueue => stream::RetentionPolicy::WorkQueue,
            },
            max_age: Duration::from_secs(s.max_age_secs),
            max_bytes: s.max_bytes,
            num_replicas: s.replicas.max(1),
            duplicate_window: Duration::from_secs(s.duplicate_window_secs),
            storage: stream::StorageType::File,
            ..Default::default()
        }
    }

    /// The client, for consumers in the same process.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    pub(crate) fn stream_settings(&self) -> &StreamSettings {
        &self.stream
    }

    fn tips(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        // A map of plain numbers: never left half-changed.
        self.tips.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The service's stream, and its newest sequence (0 when nothing was ever stored).
    async fn stream_tip(&self, service: &str) -> Result<(stream::Stream, u64), BusError> {
        let name = self.stream.stream_name(service);
        let mut stream = self.js.get_stream(&name).await.map_err(unavailable)?;
        let tip = stream
            .info()
            .await
            .map_err(unavailable)?
            .state
            .last_sequence;
        self.tips().insert(service.to_string(), tip);
        Ok((stream, tip))
    }

    /// Publishes every event in order, each naming the stream sequence it must follow.
    /// Returns each service's new tip.
    async fn publish_in_order(
        &self,
        events: &[Envelope],
    ) -> Result<HashMap<String, u64>, BusError> {
        let mut tips = HashMap::new();
        let mut done = 0;
        while done < events.len() {
            let sent = self.send(&events[done..]).await?;
            done += sent.confirmed;
            tips = sent.tips;
            if sent.duplicate {
                // A copy did not take a stream sequence, so what was sent after it may have
                // named the wrong one and been refused: look at the tips again and send the
                // rest (those that were stored come back as copies).
                let mut known = self.tips();
                for event in &events[done..] {
                    known.remove(event.service());
                }
            }
        }
        Ok(tips)
    }

    /// Sends `events` at once, then waits for the confirmations in order (one round trip).
    /// Stops at the first copy of an already stored event (JetStream confirms it without
    /// storing it again).
    async fn send(&self, events: &[Envelope]) -> Result<Sent, BusError> {
        let mut tips: HashMap<String, u64> = HashMap::new();
        for event in events {
            let service = event.service();
            if !tips.contains_key(service) {
                let known = self.tips().get(service).copied();
                let tip = match known {
                    Some(tip) => tip,
                    None => self.stream_tip(service).await?.1,
                };
                tips.insert(service.to_string(), tip);
            }
        }
        let start = tips.clone();
        let mut pending = Vec::with_capacity(events.len());
        // The id of the message sent just before, per service: each message after the first
        // also names it, so that none is stored unless the one before it is the stream's
        // last. Sequence numbers alone do not ensure that: with a tip one behind (another
        // publisher stored one event meanwhile), the first message is refused but the second
        // names the real tip and would be stored after a gap.
        let mut previous: HashMap<&str, &str> = HashMap::new();
        for event in events {
            let payload =
                serde_json::to_vec(event).map_err(|e| BusError::Refused(e.to_string()))?;
            let tip = tips
                .get_mut(event.service())
                .ok_or_else(|| unavailable("no tip"))?;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.id.as_str());
            headers.insert("Loyalty-Sequence", event.sequence.to_string().as_str());
            if *tip > 0 {
                headers.insert("Nats-Expected-Last-Sequence", tip.to_string().as_str());
            }
            if let Some(id) = previous.insert(event.service(), event.id.as_str()) {
                headers.insert("Nats-Expected-Last-Msg-Id", id);
            }
            // W3C trace context, as HTTP carries it, for consumers that read headers only.
            if let Some(traceparent) = &event.traceparent {
                headers.insert(TRACEPARENT, traceparent.as_str());
                if let Some(tracestate) = &event.tracestate {
                    headers.insert(TRACESTATE, tracestate.as_str());
                }
            }
            *tip += 1;
            let ack = self
                .js
                .publish_with_headers(event.nats_subject(), headers, payload.into())
                .await
                .map_err(unavailable)?;
            pending.push((ack, *tip, event));
        }
        let mut tips = start;
        for (i, (ack, expected, event)) in pending.into_iter().enumerate() {
            let ack = ack.await.map_err(unavailable)?;
            if ack.duplicate {
                // The copy says nothing of where the stream's tip is now (another publisher
                // stored it, and maybe more since): look again before the next send.
                tips.remove(event.service());
                return Ok(Sent {
                    confirmed: i + 1,
                    tips,
                    duplicate: true,
                });
            }
            if ack.sequence != expected {
                return Err(unavailable(format!(
                    "event {} got stream sequence {}, not {expected}: the stream changed \
                     under this publisher",
                    event.id, ack.sequence
                )));
            }
            tips.insert(event.service().to_string(), expected);
        }
        Ok(Sent {
            confirmed: events.len(),
            tips,
            duplicate: false,
        })
    }
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// What one send confirmed.
struct Sent {
    /// Leading events confirmed (stored, or a copy of a stored one).
    confirmed: usize,
    /// Each service's stream tip after them.
    tips: HashMap<String, u64>,
    /// The last confirmed one was a copy: the ones after it were refused.
    duplicate: bool,
}

#[async_trait]
impl EventBus for NatsBus {
    async fn prepare(&self, service: &str) -> Result<(), BusError> {
        let config = self.stream_config(service);
        // Create when missing, then apply the configured settings to an existing stream too.
        self.js
            .get_or_create_stream(config.clone())
            .await
            .map_err(unavailable)?;
        self.js
            .update_stream(&config)
            .await
            .map_err(|e| BusError::Refused(format!("updating stream {}: {e}", config.name)))?;
        Ok(())
    }

    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        match self.publish_in_order(&events).await {
            Ok(tips) => {
                let mut known = self.tips();
                for event in &events {
                    if !tips.contains_key(event.service()) {
                        known.remove(event.service());
                    }
                }
                known.extend(tips);
                Ok(())
            }
            Err(e) => {
                // Some of the batch may be stored: read each stream's tip again next time.
                let mut tips = self.tips();
                for event in &events {
                    tips.remove(event.service());
                }
                Err(e)
            }
        }
    }

    async fn last_published(&self, service: &str) -> Result<Option<Published>, BusError> {
        let name = self.stream.stream_name(service);
        let (stream, last) = self.stream_tip(service).await?;
        if last == 0 {
            return Ok(None);
        }
        let message = match stream.get_raw_message(last).await {
            Ok(message) => message,
            // Removed since (age or size limits): nothing newer is there either.
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        let event: Envelope = serde_json::from_slice(&message.payload).map_err(|e| {
            BusError::Refused(format!(
                "stream {name} holds a message that is not an event envelope ({e}); \
                 give the platform a stream of its own (events.nats.stream.name_prefix)"
            ))
        })?;
        Ok(Some(Published {
            sequence: event.sequence,
            id: event.id,
        }))
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }
}
