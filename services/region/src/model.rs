//! What the control keyspace holds: regions, and each tenant's home with its epoch.

use std::fmt;

/// A point or span on a monotonic clock, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    pub fn plus(self, span: Millis) -> Millis {
        Millis(self.0.saturating_add(span.0))
    }

    pub fn since(self, earlier: Millis) -> Millis {
        Millis(self.0.saturating_sub(earlier.0))
    }
}

/// A region's name, as `region.name` spells it: 1 to 32 of `a-z`, `0-9` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a region's name is 1 to 32 of a-z, 0-9 and '-', not {0:?}")]
pub struct BadRegion(pub String);

impl Region {
    pub fn parse(name: &str) -> Result<Self, BadRegion> {
        let fits = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if fits {
            Ok(Self(name.to_string()))
        } else {
            Err(BadRegion(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The homes' version: every change of any tenant's home bumps it. A write carries the epoch
/// its route was decided under, and one accepted under an older epoch than its partition has
/// seen is refused (the second fence, after the lease).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u64);

impl Epoch {
    pub fn next(self) -> Epoch {
        Epoch(self.0 + 1)
    }
}

/// Where a tenant's writes run, as of the homes' epoch it was read at. While `moving` (a
/// planned move, such as a failback, under way), no region writes the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub region: Region,
    pub epoch: Epoch,
    pub moving: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion.
    use super::*;

    #[test]
    fn region_names_are_short_lower_case_words() {
        assert_eq!(Region::parse("eu-west-1").unwrap().as_str(), "eu-west-1");
        for bad in ["", "EU", "eu_west", "a b", &"x".repeat(33)] {
            assert_eq!(Region::parse(bad), Err(BadRegion(bad.to_string())));
        }
    }
}
