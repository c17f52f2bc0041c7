//! Durable subscriptions on JetStream: a durable pull consumer with explicit acks per
//! subscription, and a dead-letter stream (`<prefix>_DEADLETTER` on `deadletter.>`).
//!
//! JetStream's own limit is set one above `max_attempts`: the extra delivery of an event that
//! was never settled (its handler died) is dead-lettered here instead of being dropped silently.
//!
//! A delivery's processing span is the child of the W3C trace context in the message's
//! `traceparent` and `tracestate` headers.

use crate::bus::BusError;
use crate::envelope::Envelope;
use crate::nats::NatsBus;
use crate::subscribe::{
    Delivery, Retried, Settle, StartAt, Subscription, SubscriptionSpec, Subscriptions, check,
    dead_letter_subject,
};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use async_trait::async_trait;
use futures::StreamExt;
use loyalty_telemetry::propagation::{TRACEPARENT, TRACESTATE};
use std::time::Duration;

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

impl NatsBus {
    async fn ensure_dead_letter_stream(&self) -> Result<(), BusError> {
        let settings = self.stream_settings();
        let config = stream::Config {
            name: format!("{}_DEADLETTER", settings.name_prefix),
            subjects: vec!["deadletter.>".into()],
            max_age: Duration::from_secs(settings.max_age_secs),
            num_replicas: settings.replicas.max(1),
            storage: stream::StorageType::File,
            ..Default::default()
        };
        self.jetstream()
            .get_or_create_stream(config)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

impl NatsBus {
    /// The stream of the service `spec` reads.
    async fn stream_of(&self, spec: &SubscriptionSpec) -> Result<stream::Stream, BusError> {
        let name = self.stream_settings().stream_name(&spec.service);
        self.jetstream()
            .get_stream(&name)
            .await
            .map_err(unavailable)
    }
}

#[async_trait]
impl Subscriptions for NatsBus {
    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<Box<dyn Subscription>, BusError> {
        check(&spec)?;
        crate::consumer_metrics::started(&spec.durable);
        self.ensure_dead_letter_stream().await?;
        let stream = self.stream_of(&spec).await?;
        let deliver_policy = match spec.start {
            StartAt::All => consumer::DeliverPolicy::All,
            StartAt::New => consumer::DeliverPolicy::New,
            StartAt::Time(start_time) => consumer::DeliverPolicy::ByStartTime { start_time },
            StartAt::After(sequence) => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: first_after(&stream, sequence).await?,
            },
        };
        let config = consumer::pull::Config {
            durable_name: Some(spec.durable.clone()),
            filter_subject: spec.filter.clone(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_deliver: i64::from(spec.max_attempts) + 1,
            max_ack_pending: i64::try_from(spec.max_ack_pending).unwrap_or(i64::MAX),
            deliver_policy,
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer(&spec.durable, config)
            .await
            .map_err(|e| BusError::Refused(format!("consumer {}: {e}", spec.durable)))?;
        let messages = consumer.messages().await.map_err(unavailable)?;
        Ok(Box::new(NatsSubscription {
            messages,
            js: self.jetstream().clone(),
            spec,
        }))
    }

    async fn settled(&self, spec: &SubscriptionSpec) -> Result<Option<u64>, BusError> {
        let stream = self.stream_of(spec).await?;
        let info = match stream.consumer_info(&spec.durable).await {
            Ok(info) => info,
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        // Every message of the consumer's filter up to its acknowledgement floor is settled.
        match info.ack_floor.stream_sequence {
            0 => Ok(None),
            floor => change_sequence_at(&stream, floor).await,
        }
    }

    async fn forget(&self, spec: &SubscriptionSpec) -> Result<(), BusError> {
        let stream = self.stream_of(spec).await?;
        match stream.delete_consumer(&spec.durable).await {
            Ok(_) => Ok(()),
            Err(e) => match e.kind() {
                ConsumerErrorKind::JetStream(js)
                    if js.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND =>
                {
                    Ok(())
                }
                _ => Err(unavailable(e)),
            },
        }
    }
}

/// Just the change-log position of an envelope.
#[derive(serde::Deserialize)]
struct Logged {
    sequence: u64,
}

/// The change-log sequence of the event at stream sequence `at`; None if it is no longer
/// kept (removed by the stream's age or size limits).
async fn change_sequence_at(stream: &stream::Stream, at: u64) -> Result<Option<u64>, BusError> {
    match stream.get_raw_message(at).await {
        Ok(message) => serde_json::from_slice::<Logged>(&message.payload)
            .map(|logged| Some(logged.sequence))
            .map_err(|e| BusError::Refused(format!("stream message {at} is not an event: {e}"))),
        Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(unavailable(e)),
    }
}

/// The stream sequence of the first event whose change-log sequence is above `sequence`
/// (one past the stream's tip if none is), by bisection: a service's stream holds its change
/// log in order.
async fn first_after(stream: &stream::Stream, sequence: u64) -> Result<u64, BusError> {
    let state = stream.get_info().await.map_err(unavailable)?.state;
    let (mut lo, mut hi) = (state.first_sequence.max(1), state.last_sequence + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // A message removed meanwhile by the age limit was older than anything kept.
        let logged = change_sequence_at(stream, mid).await?.unwrap_or(0);
        if logged <= sequence {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

struct NatsSubscription {
    messages: consumer::pull::Stream,
    js: jetstream::Context,
    spec: SubscriptionSpec,
}

#[async_trait]
impl Subscription for NatsSubscription {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            let message = self
                .messages
                .next()
                .await
                .ok_or_else(|| unavailable("the consumer's message stream ended"))?
                .map_err(unavailable)?;
            let attempt = message.info().map_err(unavailable)?.delivered.max(1) as u32;
            crate::consumer_metrics::delivered(&self.spec.durable, attempt);
            let settle = NatsSettle {
                js: self.js.clone(),
                durable: self.spec.durable.clone(),
                last_attempt: attempt >= self.spec.max_attempts,
                attempt,
                message,
            };
            let event = match serde_json::from_slice::<Envelope>(&settle.message.payload) {
                Ok(event) => event,
                Err(e) => {
                    Box::new(settle)
                        .dead_letter(&format!("not an event envelope: {e}"))
                        .await?;
                    continue;
                }
            };
            if attempt > self.spec.max_attempts {
                // Delivered again after its last attempt was never settled.
                Box::new(settle)
                    .dead_letter("not acknowledged within ack_wait on its last attempt")
                    .await?;
                continue;
            }
            let headers = settle.message.headers.as_ref();
            let header = |name| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
            let carried = header(TRACEPARENT).map(|parent| (parent, header(TRACESTATE)));
            let span = crate::trace::delivery_span(&event, &self.spec.durable, "nats", carried);
            return Ok(Delivery {
                event,
                attempt,
                settle: Box::new(settle),
                span,
            });
        }
    }
}

struct NatsSettle {
    js: jetstream::Context,
    durable: String,
    attempt: u32,
    last_attempt: bool,
    message: jetstream::Message,
}

impl NatsSettle {
    /// Publishes the message to the dead-letter subject (confirmed), then ends its delivery.
    async fn dead_letter(self: Box<Self>, reason: &str) -> Result<(), BusError> {
        let subject = dead_letter_subject(&self.durable, self.message.subject.as_str());
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Loyalty-Dead-Letter-Reason", reason);
        headers.insert("Loyalty-Attempts", self.attempt.to_string().as_str());
        headers.insert("Loyalty-Original-Subject", self.message.subject.as_str());
        self.js
            .publish_with_headers(subject, headers, self.message.payload.clone())
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        self.message
            .ack_with(AckKind::Term)
            .await
            .map_err(unavailable)?;
        crate::consumer_metrics::dead_lettered(&self.durable);
        tracing::warn!(
            durable = %self.durable,
            subject = %self.message.subject,
            attempts = self.attempt,
            reason,
            "event dead-lettered"
        );
        Ok(())
    }
}

#[async_trait]
impl Settle for NatsSettle {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        self.message.double_ack().await.map_err(unavailable)
    }

    async fn retry(self: Box<Self>, delay: Duration, reason: &str) -> Result<Retried, BusError> {
        if self.last_attempt {
            self.dead_letter(reason).await?;
            return Ok(Retried::DeadLettered);
        }
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(unavailable)?;
        Ok(Retried::Later)
    }
}
