//! A deterministic simulation of two regions and a witness running the home-region logic
//! (`loyalty_region`): the keepers renew leases and take over, the routers route each write
//! (here, forwarded, or refused), and clients redeem and earn with idempotency keys and
//! retries, while sites crash and come back and links between them are cut and healed, on
//! clocks that run at slightly different rates. Every step checks:
//!
//! - at most one region may write a tenant;
//! - no wallet's balance is ever below zero in either region's datacenter;
//!
//! and, over all seeds, that a cut between the two regions alone (each reaching the witness)
//! is ended by one of them yielding: writes go on in the other within a bound;
//!
//! and the end of a run (everything healed, failed back) checks, with `EACH_QUORUM` ledger
//! writes: every acknowledged write is in the data, none applied twice, and each client got
//! one answer per idempotency key, whichever region it asked.
//!
//! Each seed is one run; a failing seed is reported by its number and replayed alone with
//! `REGION_SIM_SEED=<n> cargo test -p loyalty-region --test simulation`.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

mod sim;

use sim::{Outcome, World};

/// Seeds run by default: enough to pass through many orders of crash, cut and failover. A
/// wallet's first commit in a new home completing the old home's commits (seed 534) broke
/// only about one seed in 3,000 before it did.
const SEEDS: u64 = 1_000;

fn seeds() -> Vec<u64> {
    match std::env::var("REGION_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("REGION_SIM_SEED is a number")],
        Err(_) => (0..SEEDS).collect(),
    }
}

#[test]
fn many_seeds_of_crashes_and_cuts_keep_one_writer_and_every_acknowledged_write() {
    let mut totals = Outcome::default();
    for seed in seeds() {
        let outcome = World::new(seed).run();
        if let Some(violation) = &outcome.violation {
            panic!(
                "seed {seed}: {violation}\nreplay: REGION_SIM_SEED={seed} cargo test -p \
                 loyalty-region --test simulation"
            );
        }
        totals.add(&outcome);
    }
    eprintln!("{totals}");
    // The runs did what they are for: writes acknowledged, faults met, tenants moved.
    assert!(totals.acknowledged > 1_000, "{totals}");
    assert!(totals.failovers > 10, "{totals}");
    assert!(totals.failbacks > 10, "{totals}");
    assert!(totals.forwarded > 100, "{totals}");
    assert!(totals.retried_elsewhere > 10, "{totals}");
    // A cut between the regions alone ends with one of them yielding, and writes go on in
    // the other: within the health checks' 2 s, the yielder's lease lapsing (5 s), the
    // take-over, and a client's back-off (up to 5 s). Without the rule nobody writes until
    // the cut heals (41 s in the default seeds); with a keeper that takes over only a peer
    // it has seen ready, a keeper restarted in a cut waits for the healing too (19 s).
    assert!(totals.acknowledged_in_cuts > 1_000, "{totals}");
    assert!(totals.longest_unwritten_cut_ms < 15_000, "{totals}");
}
