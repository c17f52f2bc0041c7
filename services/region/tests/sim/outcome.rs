//! What a simulated run did, and the first rule it broke.

use std::fmt;

/// What a run did and whether it broke a rule.
#[derive(Debug, Default)]
pub struct Outcome {
    pub acknowledged: u64,
    pub forwarded: u64,
    pub retried_elsewhere: u64,
    pub failovers: u64,
    pub failbacks: u64,
    pub refused_fenced: u64,
    /// Writes acknowledged while the regions were cut apart, each still reaching the witness.
    pub acknowledged_in_cuts: u64,
    /// The longest such a cut went on without an acknowledged write.
    pub longest_unwritten_cut_ms: u64,
    /// The first rule broken, if any.
    pub violation: Option<String>,
}

impl Outcome {
    pub fn add(&mut self, other: &Outcome) {
        self.acknowledged += other.acknowledged;
        self.forwarded += other.forwarded;
        self.retried_elsewhere += other.retried_elsewhere;
        self.failovers += other.failovers;
        self.failbacks += other.failbacks;
        self.refused_fenced += other.refused_fenced;
        self.acknowledged_in_cuts += other.acknowledged_in_cuts;
        self.longest_unwritten_cut_ms = self
            .longest_unwritten_cut_ms
            .max(other.longest_unwritten_cut_ms);
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "acknowledged {}, forwarded {}, retried in the other region {}, failovers {}, \
             failbacks {}, refused while fenced or moving {}, acknowledged while the regions \
             were cut apart {} (the longest such cut without one: {} ms)",
            self.acknowledged,
            self.forwarded,
            self.retried_elsewhere,
            self.failovers,
            self.failbacks,
            self.refused_fenced,
            self.acknowledged_in_cuts,
            self.longest_unwritten_cut_ms
        )
    }
}
