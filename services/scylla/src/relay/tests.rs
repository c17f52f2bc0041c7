#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use super::*;

fn row(seq: i64) -> (i64, String, String, i64, Vec<u8>) {
    (seq, "t".into(), "m".into(), seq * 10, vec![seq as u8])
}

#[test]
fn the_log_is_read_up_to_its_first_gap() {
    let (changes, gap) = contiguous(4, vec![row(5), row(6), row(8)]).unwrap();
    assert_eq!(changes.iter().map(|c| c.seq).collect::<Vec<_>>(), [5, 6]);
    assert!(gap);
    assert_eq!(changes[1].position, 60);
    let (changes, gap) = contiguous(4, vec![row(6)]).unwrap();
    assert!(changes.is_empty() && gap);
    let (changes, gap) = contiguous(0, vec![row(1), row(2)]).unwrap();
    assert_eq!(changes.len(), 2);
    assert!(!gap);
}

#[test]
fn negative_numbers_are_corrupt_rows_not_panics() {
    let err = contiguous(0, vec![(-1, "t".into(), "m".into(), 0, vec![])]).unwrap_err();
    assert_eq!(err.code, loyalty_common::error::ErrorCode::Internal);
    assert!(format!("{:?}", err.source).contains("corrupt"), "{err:?}");
}

#[test]
fn numbers_fall_in_buckets_of_4096() {
    assert_eq!(bucket(1), 0);
    assert_eq!(bucket(4095), 0);
    assert_eq!(bucket(4096), 1);
    assert_eq!(minute(120_000), 2);
}

#[test]
fn hints_spread_over_every_shard_and_stay_put() {
    let shards: std::collections::BTreeSet<i32> = (0..400)
        .map(|m| shard("tenant", &format!("m{m}")))
        .collect();
    assert_eq!(shards.len(), HINT_SHARDS as usize);
    assert_eq!(shard("a", "b"), shard("a", "b"));
    assert!(shards.iter().all(|s| (0..HINT_SHARDS).contains(s)));
}
