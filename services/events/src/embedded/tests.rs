use super::rows::{encode, position_key};
use super::*;
use crate::envelope::Origin;
use chrono::Utc;

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
        Utc::now(),
        serde_json::value::to_raw_value(&serde_json::json!({})).unwrap(),
    )
}

fn open(dir: &Path, window: usize) -> InProcessBus {
    let config = EmbeddedBusConfig {
        duplicate_window_events: window,
        ..EmbeddedBusConfig::default()
    };
    InProcessBus::open(dir, &config).unwrap()
}

fn ids(bus: &InProcessBus, filter: &str) -> Vec<String> {
    bus.events(filter)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
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
    let dir = tempfile::tempdir().unwrap();
    let bus = open(dir.path(), 10);
    assert_eq!(bus.last_published("ledger").await.unwrap(), None);
    let a = event("alice", "earned", "a", 1);
    let b = event("bob", "spent", "b", 2);
    bus.publish(vec![a.clone(), b.clone(), b.clone()])
        .await
        .unwrap();
    bus.publish(vec![b.clone()]).await.unwrap();
    assert_eq!(ids(&bus, "member.*.ledger.>"), ["a", "b"]);
    assert_eq!(ids(&bus, "member.acme.ledger.spent"), ["b"]);
    let last = bus.last_published("ledger").await.unwrap().unwrap();
    assert_eq!((last.sequence, last.id.as_str()), (2, "b"));
    assert_eq!(bus.events(">").unwrap()[0], a, "stored as published");
}

#[tokio::test]
async fn the_duplicate_window_counts_the_newest_events() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(dir.path(), 2);
    for i in 0..4u64 {
        bus.publish(vec![event("m", "earned", &i.to_string(), i)])
            .await
            .unwrap();
    }
    // "0" left the window of the newest two; "3" is in it.
    bus.publish(vec![
        event("m", "earned", "3", 3),
        event("m", "earned", "0", 0),
    ])
    .await
    .unwrap();
    assert_eq!(ids(&bus, ">"), ["0", "1", "2", "3", "0"]);
}

#[tokio::test]
async fn a_reopened_bus_has_its_events_positions_and_window() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = open(dir.path(), 100);
        bus.publish(vec![
            event("m", "earned", "a", 1),
            event("m", "held", "b", 2),
        ])
        .await
        .unwrap();
    }
    let bus = open(dir.path(), 100);
    assert_eq!(ids(&bus, ">"), ["a", "b"]);
    let last = bus.last_published("ledger").await.unwrap().unwrap();
    assert_eq!((last.sequence, last.id.as_str()), (2, "b"));
    bus.publish(vec![
        event("m", "held", "b", 2),
        event("m", "captured", "c", 3),
    ])
    .await
    .unwrap();
    assert_eq!(ids(&bus, ">"), ["a", "b", "c"], "the copy of b is dropped");
    assert_eq!(bus.shared().head(), 3, "positions continue after a restart");
}

#[tokio::test]
async fn a_time_maps_to_the_position_before_the_first_event_at_or_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let bus = open(dir.path(), 100);
    let shared = bus.shared();
    assert_eq!(shared.position_before(Utc::now()).unwrap(), 0, "empty");
    bus.publish(vec![event("m", "earned", "a", 1)])
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let between = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    bus.publish(vec![
        event("m", "earned", "b", 2),
        event("m", "earned", "c", 3),
    ])
    .await
    .unwrap();
    let long_ago = between - chrono::Duration::days(1);
    assert_eq!(shared.position_before(long_ago).unwrap(), 0);
    assert_eq!(shared.position_before(between).unwrap(), 1);
    let later = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(shared.position_before(later).unwrap(), 3);
}

fn open_with(dir: &Path, config: EmbeddedBusConfig) -> InProcessBus {
    InProcessBus::open(dir, &config).unwrap()
}

#[tokio::test]
async fn positions_are_never_reused_after_retention_dropped_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = EmbeddedBusConfig {
        max_bytes: 0,
        ..EmbeddedBusConfig::default()
    };
    {
        let bus = open_with(dir.path(), tiny.clone());
        bus.publish(vec![
            event("m", "earned", "a", 1),
            event("m", "earned", "b", 2),
        ])
        .await
        .unwrap();
        // On disk as a table, which a size limit of 0 drops whole.
        bus.shared().stream.rotate_memtable_and_wait().unwrap();
        bus.trim().unwrap();
        assert!(bus.events(">").unwrap().is_empty());
        assert!(
            bus.shared().stream.first_key_value().is_none(),
            "the table is gone"
        );
    }
    let bus = open_with(dir.path(), EmbeddedBusConfig::default());
    assert_eq!(bus.shared().head(), 2, "the head survives an empty stream");
    bus.publish(vec![event("m", "earned", "c", 3)])
        .await
        .unwrap();
    assert_eq!(
        ids(&bus, ">"),
        ["c"],
        "what retention dropped stays dropped"
    );
}

#[tokio::test]
async fn a_shorter_max_age_applies_when_the_bus_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = open(dir.path(), 100);
        bus.publish(vec![event("m", "earned", "old", 1)])
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let one_second = EmbeddedBusConfig {
        max_age_secs: 1,
        ..EmbeddedBusConfig::default()
    };
    let bus = open_with(dir.path(), one_second);
    assert!(
        bus.events(">").unwrap().is_empty(),
        "older than max_age: not delivered or replayed, even from the memtable"
    );
    assert_eq!(bus.shared().at(1).unwrap(), None);
    bus.publish(vec![event("m", "earned", "new", 2)])
        .await
        .unwrap();
    assert_eq!(ids(&bus, ">"), ["new"]);
}

#[tokio::test]
async fn positions_referred_to_by_a_consumer_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = open(dir.path(), 100);
        // A directory without the head row, whose consumer saw position 41.
        let consumers = &bus.shared().consumers;
        consumers
            .insert(rows::cursor_key("d"), position_key(41))
            .unwrap();
    }
    let bus = open(dir.path(), 100);
    assert_eq!(bus.shared().head(), 41);
}

#[tokio::test]
async fn dead_letters_older_than_the_stream_age_are_dropped_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = open(dir.path(), 100);
        let envelope = serde_json::to_string(&event("m", "earned", "old", 1)).unwrap();
        for (sequence, at_ms) in [(1u64, 0i64), (2, Utc::now().timestamp_millis())] {
            let row = rows::StoredDeadLetter {
                at_ms,
                subject: "deadletter.d.member.acme.ledger.earned",
                reason: "boom",
                attempts: 3,
                envelope: &envelope,
            };
            let shared = bus.shared();
            shared
                .dead
                .insert(position_key(sequence), encode(&row).unwrap())
                .unwrap();
        }
        assert_eq!(bus.dead_letters().unwrap().len(), 2);
    }
    let bus = open(dir.path(), 100);
    let kept = bus.dead_letters().unwrap();
    assert_eq!(kept.len(), 1, "the one from 1970 is gone");
    assert_eq!(kept[0].reason, "boom");
}
