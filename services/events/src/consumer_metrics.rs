//! What every durable subscription reports, on either bus: `events_redeliveries_total` and
//! `events_dead_letters_total`, by consumer (its durable name). Both are registered when the
//! subscription starts, so an alert on their growth sees a zero first, not a missing series.

/// Registers the consumer's counters at zero.
pub(crate) fn started(durable: &str) {
    let consumer = durable.to_string();
    metrics::counter!("events_redeliveries_total", "consumer" => consumer.clone()).absolute(0);
    metrics::counter!("events_dead_letters_total", "consumer" => consumer).absolute(0);
}

/// Counts a delivery that is not the event's first.
pub(crate) fn delivered(durable: &str, attempt: u32) {
    if attempt > 1 {
        metrics::counter!("events_redeliveries_total", "consumer" => durable.to_string())
            .increment(1);
    }
}

/// Counts an event given up on and set aside.
pub(crate) fn dead_lettered(durable: &str) {
    metrics::counter!("events_dead_letters_total", "consumer" => durable.to_string()).increment(1);
}
