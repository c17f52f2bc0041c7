//! A partner's consumer, runnable as it is: prints the platform's events from a NATS JetStream
//! stream, from a sequence, a time, or only new ones, optionally filtered by tenant and type.
//!
//! ```sh
//! cargo run -p loyalty-events --example tail -- --url nats://127.0.0.1:4222 --from-sequence 1
//! cargo run -p loyalty-events --example tail -- --since 2026-11-25T00:00:00Z --tenant acme --type earned
//! ```
//!
//! It uses an ordered consumer: nothing is stored on the server, and a restart picks its start
//! again. A partner system that must not miss events while it is down uses a durable consumer
//! instead (see docs/events.md).

use anyhow::Context;
use async_nats::jetstream::{self, consumer};
use clap::Parser;
use futures::StreamExt;
use loyalty_events::Envelope;
use loyalty_events::envelope::subject;

#[derive(Parser)]
struct Args {
    /// NATS server URL.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    url: String,
    /// The stream: `<prefix>_<SERVICE>`.
    #[arg(long, default_value = "LOYALTY_LEDGER")]
    stream: String,
    /// Only this tenant's events (default: every tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// Only events of this name, e.g. `earned` (default: every type).
    #[arg(long = "type")]
    event: Option<String>,
    /// Start at this stream sequence (1 = the oldest still kept).
    #[arg(long, conflicts_with = "since")]
    from_sequence: Option<u64>,
    /// Start at the first event stored at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Stop after this many events (default: run until interrupted).
    #[arg(long)]
    count: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = async_nats::connect(&args.url)
        .await
        .with_context(|| format!("connecting to {}", args.url))?;
    let js = jetstream::new(client);
    let stream = js
        .get_stream(&args.stream)
        .await
        .with_context(|| format!("stream {} (has memberd published yet?)", args.stream))?;
    let deliver_policy = match (args.from_sequence, args.since) {
        (Some(start_sequence), _) => consumer::DeliverPolicy::ByStartSequence { start_sequence },
        (None, Some(start_time)) => consumer::DeliverPolicy::ByStartTime { start_time },
        (None, None) => consumer::DeliverPolicy::New,
    };
    let service = args
        .stream
        .split_once('_')
        .map_or("ledger", |(_, s)| s)
        .to_ascii_lowercase();
    let tenant = args.tenant.as_deref().unwrap_or("*");
    let filter = match &args.event {
        Some(name) => subject(tenant, &service, name),
        None => subject(tenant, &service, ">"),
    };
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter.clone(),
            deliver_policy,
            ..Default::default()
        })
        .await?;
    eprintln!("tail: {} on {filter}", args.stream);
    let mut messages = consumer.messages().await?;
    let mut seen = 0;
    while let Some(message) = messages.next().await {
        let message = message?;
        let event: Envelope = serde_json::from_slice(&message.payload)
            .with_context(|| format!("a message on {} is not an event", message.subject))?;
        println!("{}", serde_json::to_string(&event)?);
        seen += 1;
        if args.count.is_some_and(|n| seen >= n) {
            break;
        }
    }
    Ok(())
}
