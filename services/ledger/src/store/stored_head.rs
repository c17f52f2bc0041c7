//! A wallet head as both adapters store it: its postcard bytes, then what came after the
//! format was first written, each part a tag and its postcard value. postcard stops reading at
//! the head's end, so a head written before a part existed reads as before (the part at its
//! default), and a binary that meets a tag it does not know (a newer one's, during a rolling
//! upgrade) leaves the rest unread rather than fail.

use crate::model::WalletHead;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;

/// The tag of the home epoch the head's last write was accepted under (decision 0019).
const EPOCH: u8 = 1;
/// The tag of the digests of the keys of the wallet's newest writes in two regions.
const RECENT: u8 = 2;
/// The tag of the keys of the commits not known to be in both regions' datacenters.
const UNCONFIRMED: u8 = 3;

pub fn encode_head(head: &WalletHead) -> ServiceResult<Vec<u8>> {
    let mut bytes = postcard::to_stdvec(head).map_err(ServiceError::internal)?;
    // One region never sets it: its heads stay as they were.
    if head.epoch > 0 {
        bytes.push(EPOCH);
        bytes = postcard::to_extend(&head.epoch, bytes).map_err(ServiceError::internal)?;
    }
    if !head.recent.is_empty() {
        bytes.push(RECENT);
        bytes = postcard::to_extend(&head.recent, bytes).map_err(ServiceError::internal)?;
    }
    if !head.unconfirmed.is_empty() {
        bytes.push(UNCONFIRMED);
        bytes = postcard::to_extend(&head.unconfirmed, bytes).map_err(ServiceError::internal)?;
    }
    Ok(bytes)
}

pub fn decode_head(bytes: &[u8]) -> ServiceResult<WalletHead> {
    let (mut head, mut rest): (WalletHead, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(ServiceError::internal)?;
    while let Some((&tag, value)) = rest.split_first() {
        match tag {
            EPOCH => {
                (head.epoch, rest) =
                    postcard::take_from_bytes(value).map_err(ServiceError::internal)?;
            }
            RECENT => {
                (head.recent, rest) =
                    postcard::take_from_bytes(value).map_err(ServiceError::internal)?;
            }
            UNCONFIRMED => {
                (head.unconfirmed, rest) =
                    postcard::take_from_bytes(value).map_err(ServiceError::internal)?;
            }
            _ => break,
        }
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
    use super::*;
    use crate::model::WalletKey;
    use loyalty_common::Timestamp;
    use loyalty_common::ids::{MemberId, TenantId};

    fn head() -> WalletHead {
        let wallet = WalletKey {
            tenant: TenantId::parse("acme").unwrap(),
            member: MemberId::parse("alice").unwrap(),
        };
        let mut head = WalletHead::new(wallet, Timestamp(1_700));
        head.version = 4;
        head.due_hint = Some(Timestamp(9_000));
        head
    }

    #[test]
    fn a_head_keeps_its_epoch_and_one_written_without_reads_as_epoch_0() {
        let mut head = head();
        head.epoch = 42;
        assert_eq!(decode_head(&encode_head(&head).unwrap()).unwrap(), head);
        // Written before epochs were stored: plain postcard.
        let before = postcard::to_stdvec(&head).unwrap();
        assert_eq!(decode_head(&before).unwrap().epoch, 0);
        head.epoch = 0;
        assert_eq!(
            encode_head(&head).unwrap(),
            before,
            "one region's heads are unchanged"
        );
    }

    #[test]
    fn a_head_keeps_the_keys_of_its_newest_writes() {
        let mut head = head();
        head.epoch = 7;
        for n in 0..20 {
            head.remember(&format!("earn-{n}"));
        }
        head.unconfirmed = vec![loyalty_common::ids::IdempotencyKey::parse("earn-19").unwrap()];
        assert_eq!(head.recent.len(), crate::model::RECENT_KEYS);
        assert!(head.remembers("earn-19") && head.remembers("earn-4"));
        assert!(!head.remembers("earn-3"), "the oldest are forgotten");
        let read = decode_head(&encode_head(&head).unwrap()).unwrap();
        assert_eq!(read, head);
        assert!(read.remembers("earn-19"));
    }

    #[test]
    fn a_part_of_a_newer_binary_is_left_unread() {
        let mut head = head();
        head.epoch = 3;
        let mut bytes = encode_head(&head).unwrap();
        bytes.extend([9, 1, 2, 3]);
        assert_eq!(decode_head(&bytes).unwrap(), head);
    }
}
