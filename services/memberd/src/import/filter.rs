//! What an import into an empty tenant has written, as a Bloom filter. While the tenant had no
//! members when the import started, the store holds only what this import wrote; a row none of
//! whose keys (member id, blind indexes) is in the filter cannot clash with the store, and
//! skips the store lookups that would say so. A few megabytes stand for millions of rows; a
//! false positive only costs the lookups it would have made anyway.

use loyalty_member::profile::IndexKind;
use loyalty_member::store::MemberWrite;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Bits per key (before rounding up to a power of two): with four probes, about one key in
/// 100 is a false positive at capacity, one in 400 with twice the bits.
const BITS_PER_KEY: u64 = 10;
const PROBES: u64 = 4;

pub struct Written {
    bits: Vec<u64>,
    mask: u64,
}

impl Written {
    /// A filter for about `keys` keys (more only raise the false positives).
    pub fn with_capacity(keys: u64) -> Self {
        let bits = (keys.saturating_mul(BITS_PER_KEY))
            .clamp(1 << 16, 1 << 34)
            .next_power_of_two();
        Self {
            bits: vec![0; (bits / 64) as usize],
            mask: bits - 1,
        }
    }

    /// Records the keys of a write that is being committed.
    pub fn insert(&mut self, write: &MemberWrite) {
        for key in keys(write) {
            for bit in probes(key, self.mask) {
                self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
            }
        }
    }

    /// Whether any key of `write` may have been written (false: none was).
    pub fn may_clash(&self, write: &MemberWrite) -> bool {
        keys(write).any(|key| {
            probes(key, self.mask)
                .all(|bit| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
        })
    }
}

/// The keys of a write, as 64-bit hashes: its member id, and each blind index (HMAC output,
/// uniform already) mixed with its kind.
fn keys(write: &MemberWrite) -> impl Iterator<Item = u64> + '_ {
    let mut id = DefaultHasher::new();
    write.member.hash(&mut id);
    let indexes = write.profile.iter().flat_map(|p| &p.indexes);
    std::iter::once(id.finish()).chain(indexes.map(|(kind, index)| {
        let mut head = [0u8; 8];
        head.copy_from_slice(&index[..8]);
        let kind = match kind {
            IndexKind::Phone => 1u64,
            IndexKind::Email => 2,
            IndexKind::IdNumber => 3,
        };
        u64::from_le_bytes(head) ^ kind.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }))
}

/// Double hashing: the probes of `key` within `mask + 1` bits.
fn probes(key: u64, mask: u64) -> impl Iterator<Item = u64> {
    let step = key.rotate_left(32) | 1;
    (0..PROBES).map(move |i| key.wrapping_add(step.wrapping_mul(i)) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_member::profile::StoredProfile;

    fn write(member: &str, phone: u8) -> MemberWrite {
        let profile: StoredProfile = StoredProfile {
            tenant: "t".into(),
            member_id: member.into(),
            sealed: Default::default(),
            key: None,
            indexes: vec![(IndexKind::Phone, [phone; 32])],
            updated_at: loyalty_common::Timestamp(0),
            erased_at: None,
            merged_into: None,
            version: 1,
            birthday: None,
        };
        MemberWrite {
            tenant: "t".into(),
            member: member.into(),
            profile: Some(profile),
            ..MemberWrite::default()
        }
    }

    #[test]
    fn a_written_id_or_index_may_clash_and_others_do_not() {
        let mut written = Written::with_capacity(1000);
        written.insert(&write("m1", 1));
        assert!(written.may_clash(&write("m1", 2)));
        assert!(written.may_clash(&write("m2", 1)));
        assert!(!written.may_clash(&write("m2", 2)));
        // The same bytes under another kind are another key.
        let mut email = write("m3", 1);
        email.profile.as_mut().unwrap().indexes[0].0 = IndexKind::Email;
        assert!(!written.may_clash(&email));
    }

    #[test]
    fn false_positives_are_rare_at_capacity() {
        let mut written = Written::with_capacity(40_000);
        for n in 0..10_000u32 {
            let mut w = write(&format!("m{n}"), 0);
            let mut index = [0u8; 32];
            index[..4].copy_from_slice(&n.to_le_bytes());
            index[4..8].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_le_bytes());
            w.profile.as_mut().unwrap().indexes = vec![(IndexKind::Phone, index)];
            written.insert(&w);
        }
        let clashes = (0..10_000u32)
            .filter(|n| written.may_clash(&write(&format!("x{n}"), 7)))
            .count();
        assert!(clashes < 100, "{clashes} false positives in 10,000");
    }
}
