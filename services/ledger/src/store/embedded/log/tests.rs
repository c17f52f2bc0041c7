#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use super::*;
use std::io::ErrorKind;

/// Small segments, so that a handful of frames switch segments.
const SMALL: u64 = 4096;

fn open(dir: &Path, applied: u64) -> (Recovered, CommitLog) {
    let recovered = recover(dir, applied).unwrap();
    let log = CommitLog::continue_after(&recovered, SMALL).unwrap();
    (recovered, log)
}

fn payload(i: u64) -> Vec<u8> {
    format!("frame {i} ").repeat(40).into_bytes()
}

fn write_frames(dir: &Path, n: u64) {
    let (_, mut log) = open(dir, 0);
    for i in 1..=n {
        assert_eq!(log.append(&payload(i)).unwrap(), i);
    }
}

fn lsns(recovered: &Recovered) -> Vec<u64> {
    recovered.frames.iter().map(|(lsn, _)| *lsn).collect()
}

fn last_segment(dir: &Path) -> PathBuf {
    segments(dir).unwrap().pop().unwrap().1
}

#[test]
fn frames_come_back_in_order_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 50);
    assert!(
        segments(dir.path()).unwrap().len() > 3,
        "small segments switched"
    );
    let (recovered, mut log) = open(dir.path(), 0);
    assert_eq!(lsns(&recovered), (1..=50).collect::<Vec<_>>());
    assert_eq!(recovered.frames[6].1, payload(7));
    assert_eq!(recovered.torn_bytes, 0);
    // Appending continues where the log ended, and a frame after a restart reads back too.
    assert_eq!(log.append(b"after").unwrap(), 51);
    let (recovered, _) = open(dir.path(), 50);
    assert_eq!(recovered.frames, vec![(51, b"after".to_vec())]);
}

#[test]
fn frames_the_store_holds_are_not_replayed_and_their_segments_go() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 50);
    let before = segments(dir.path()).unwrap().len();
    let deleted = discard_through(dir.path(), 30).unwrap();
    assert!(deleted > 0 && deleted < before);
    let (recovered, _) = open(dir.path(), 30);
    assert_eq!(lsns(&recovered), (31..=50).collect::<Vec<_>>());
    // Everything applied: only the newest segment stays.
    discard_through(dir.path(), 50).unwrap();
    assert_eq!(segments(dir.path()).unwrap().len(), 1);
    let (recovered, mut log) = open(dir.path(), 50);
    assert!(recovered.frames.is_empty());
    assert_eq!(log.append(b"next").unwrap(), 51);
}

#[test]
fn a_torn_final_frame_is_dropped_and_zeroed() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 10);
    let (recovered, _) = open(dir.path(), 0);
    let (path, end) = recovered.last_segment.clone().unwrap();
    // Frame 11's header landed, its payload only half (a crash mid-write).
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    let body = payload(11);
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&checksum(11, &body).to_le_bytes());
    frame.extend_from_slice(&11u64.to_le_bytes());
    frame.extend_from_slice(&body[..body.len() / 2]);
    file.write_all_at(&frame, end).unwrap();

    let (recovered, mut log) = open(dir.path(), 0);
    assert_eq!(lsns(&recovered), (1..=10).collect::<Vec<_>>());
    assert_eq!(recovered.torn_bytes, frame.len() as u64);
    assert_eq!(log.append(b"eleven").unwrap(), 11);
    let (recovered, _) = open(dir.path(), 10);
    assert_eq!(recovered.frames, vec![(11, b"eleven".to_vec())]);
    assert_eq!(recovered.torn_bytes, 0, "the torn bytes were zeroed");
}

#[test]
fn a_torn_header_is_dropped_too() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 3);
    let (recovered, _) = open(dir.path(), 0);
    let (path, end) = recovered.last_segment.clone().unwrap();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0xff, 0xff, 0xff], end).unwrap();
    let (recovered, _) = open(dir.path(), 0);
    assert_eq!(lsns(&recovered), vec![1, 2, 3]);
    assert_eq!(recovered.torn_bytes, 3);
}

fn flip_byte(path: &Path, at: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x40], at).unwrap();
}

#[test]
fn a_bad_byte_before_good_frames_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 3);
    // Frame 1's payload, in the newest (and only) segment, with frames 2 and 3 after it.
    flip_byte(&last_segment(dir.path()), HEADER as u64 + 5);
    let err = recover(dir.path(), 0).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains("damaged"), "{err}");
}

#[test]
fn a_bad_byte_in_an_older_segment_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 50);
    let (_, first) = segments(dir.path()).unwrap().remove(0);
    flip_byte(&first, HEADER as u64 + 40);
    let err = recover(dir.path(), 0).err().unwrap();
    assert!(err.to_string().contains("offset 0"), "{err}");
}

#[test]
fn a_missing_segment_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 50);
    let (_, second) = segments(dir.path()).unwrap().remove(1);
    std::fs::remove_file(second).unwrap();
    let err = recover(dir.path(), 0).err().unwrap();
    assert!(err.to_string().contains("was due"), "{err}");
}

#[test]
fn a_log_behind_the_store_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 5);
    let err = recover(dir.path(), 9).err().unwrap();
    assert!(err.to_string().contains("ends at frame 5"), "{err}");
}

#[test]
fn a_segment_left_half_prepared_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 5);
    std::fs::write(dir.path().join(PREPARING), b"half-written zeros").unwrap();
    let (recovered, _) = open(dir.path(), 0);
    assert_eq!(lsns(&recovered), vec![1, 2, 3, 4, 5]);
}
