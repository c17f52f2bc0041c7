//! The payload of a commit-log frame: the rows one batch writes, in the order the writer added
//! them. Hand-rolled rather than serde: it is on the write path of every request and is only a
//! list of byte strings.
//!
//! Layout, per write: `[table: u8][key length: u32][key][value length: u32][value]`, where a
//! value length of `u32::MAX` marks a removal.

use super::Table;
use std::io;

/// One row written (or removed, when `value` is `None`) by a committed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LogOp {
    pub table: Table,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

const REMOVED: u32 = u32::MAX;

pub(super) fn encode(ops: &[LogOp]) -> Vec<u8> {
    let size: usize = ops
        .iter()
        .map(|op| 9 + op.key.len() + op.value.as_ref().map_or(0, Vec::len))
        .sum();
    let mut out = Vec::with_capacity(size);
    for op in ops {
        out.push(op.table as u8);
        out.extend_from_slice(&(op.key.len() as u32).to_le_bytes());
        out.extend_from_slice(&op.key);
        match &op.value {
            Some(value) => {
                out.extend_from_slice(&(value.len() as u32).to_le_bytes());
                out.extend_from_slice(value);
            }
            None => out.extend_from_slice(&REMOVED.to_le_bytes()),
        }
    }
    out
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a commit-log frame passed its checksum but is malformed ({what})"),
    )
}

pub(super) fn decode(mut payload: &[u8]) -> io::Result<Vec<LogOp>> {
    fn take<'a>(payload: &mut &'a [u8], n: usize) -> io::Result<&'a [u8]> {
        if payload.len() < n {
            return Err(malformed("truncated"));
        }
        let (head, rest) = payload.split_at(n);
        *payload = rest;
        Ok(head)
    }
    fn length(payload: &mut &[u8]) -> io::Result<u32> {
        Ok(u32::from_le_bytes(
            take(payload, 4)?.try_into().unwrap_or_default(),
        ))
    }
    let mut ops = Vec::new();
    while !payload.is_empty() {
        let table = Table::from_byte(take(&mut payload, 1)?[0]).ok_or(malformed("table"))?;
        let key_len = length(&mut payload)? as usize;
        let key = take(&mut payload, key_len)?.to_vec();
        let value = match length(&mut payload)? {
            REMOVED => None,
            n => Some(take(&mut payload, n as usize)?.to_vec()),
        };
        ops.push(LogOp { table, key, value });
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_removals_round_trip() {
        let ops = vec![
            LogOp {
                table: Table::Rows,
                key: b"k1".to_vec(),
                value: Some(b"value".to_vec()),
            },
            LogOp {
                table: Table::Due,
                key: vec![0, 1, 2],
                value: None,
            },
            LogOp {
                table: Table::Heads,
                key: Vec::new(),
                value: Some(Vec::new()),
            },
        ];
        assert_eq!(decode(&encode(&ops)).unwrap(), ops);
    }

    #[test]
    fn a_truncated_payload_is_an_error() {
        let ops = vec![LogOp {
            table: Table::Rows,
            key: b"key".to_vec(),
            value: Some(b"value".to_vec()),
        }];
        let bytes = encode(&ops);
        for cut in 1..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
