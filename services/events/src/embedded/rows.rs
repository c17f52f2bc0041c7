//! What the embedded bus stores, and under which keys. Rows are postcard; strings in them are
//! read without copying.

use crate::bus::{BusError, Published};
use serde::{Deserialize, Serialize};

/// One event of the stream, under its position (`u64`, big-endian, from 1).
#[derive(Serialize, Deserialize)]
pub(super) struct StoredEvent<'a> {
    /// When the bus stored it (ms since the epoch; never decreasing along the stream).
    pub published_ms: i64,
    pub id: &'a str,
    pub subject: &'a str,
    /// The envelope as JSON: the same bytes a NATS message carries.
    pub envelope: &'a str,
}

/// A dead-lettered event, under its own sequence (`u64`, big-endian).
#[derive(Serialize, Deserialize)]
pub(super) struct StoredDeadLetter<'a> {
    pub at_ms: i64,
    pub subject: &'a str,
    pub reason: &'a str,
    pub attempts: u32,
    pub envelope: &'a str,
}

/// The newest event of a service, under [`last_key`].
#[derive(Serialize, Deserialize)]
pub(super) struct StoredLast<'a> {
    pub sequence: u64,
    pub id: &'a str,
}

impl StoredLast<'_> {
    pub fn to_published(&self) -> Published {
        Published {
            sequence: self.sequence,
            id: self.id.to_string(),
        }
    }
}

pub(super) fn encode<T: Serialize>(row: &T) -> Result<Vec<u8>, BusError> {
    postcard::to_stdvec(row).map_err(|e| BusError::Refused(format!("encoding a bus row: {e}")))
}

pub(super) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, BusError> {
    postcard::from_bytes(bytes).map_err(|e| {
        BusError::Refused(format!(
            "the embedded bus holds a row this build cannot read ({e}); \
             was its directory written by another version?"
        ))
    })
}

pub(super) fn position_key(position: u64) -> [u8; 8] {
    position.to_be_bytes()
}

pub(super) fn position_of(key: &[u8]) -> Result<u64, BusError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| BusError::Refused("the embedded bus holds a malformed key".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Meta row: the newest event of `service`.
pub(super) fn last_key(service: &str) -> Vec<u8> {
    [b"last\0".as_slice(), service.as_bytes()].concat()
}

pub(super) const LAST_PREFIX: &[u8] = b"last\0";

/// Meta row: the newest position ever stored (`u64`, big-endian). Retention may drop every
/// event; positions must still never be reused, or stored consumer positions would skip new
/// events.
pub(super) const HEAD_KEY: &[u8] = b"head";

/// Meta row: the first position readers may see (`u64`, big-endian). Retention drops tables
/// whole, and fjall may bring dropped rows back from its journal on the next start; this row
/// keeps them hidden.
pub(super) const FIRST_KEY: &[u8] = b"first";

/// Consumer row: the position of the last event a durable was handed for the first time.
pub(super) fn cursor_key(durable: &str) -> Vec<u8> {
    [b"c\0".as_slice(), durable.as_bytes()].concat()
}

/// Consumer rows of one durable's unsettled deliveries: `pending_prefix(d) + position`, whose
/// value is how often the event was delivered (`u32`, big-endian). Durable names hold no NUL.
pub(super) fn pending_prefix(durable: &str) -> Vec<u8> {
    [b"p\0".as_slice(), durable.as_bytes(), b"\0"].concat()
}

pub(super) fn pending_key(durable: &str, position: u64) -> Vec<u8> {
    [pending_prefix(durable).as_slice(), &position_key(position)].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_keys_sort_by_position() {
        let row = StoredEvent {
            published_ms: 7,
            id: "A",
            subject: "member.acme.ledger.earned",
            envelope: "{}",
        };
        let bytes = encode(&row).unwrap();
        let back: StoredEvent<'_> = decode(&bytes).unwrap();
        assert_eq!((back.published_ms, back.id, back.envelope), (7, "A", "{}"));
        assert!(position_key(2) < position_key(256));
        assert_eq!(position_of(&position_key(42)).unwrap(), 42);
        assert!(pending_key("d", 1) < pending_key("d", 2));
        assert!(pending_key("d", u64::MAX).starts_with(&pending_prefix("d")));
        assert!(!pending_key("dd", 1).starts_with(&pending_prefix("d")));
        assert!(decode::<StoredEvent<'_>>(b"\xff").is_err());
    }
}
