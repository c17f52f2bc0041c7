//! A tenant's security policy (password rules, lockout, whether staff need a second factor),
//! and the lockout arithmetic: after too many failed logins in a row an account is locked for
//! a while, then released by time or by an administrator.

use crate::password::PasswordPolicy;
use loyalty_common::Timestamp;
use serde::{Deserialize, Serialize};

/// What a tenant demands of its staff accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SecurityPolicy {
    pub password: PasswordPolicy,
    pub lockout: LockoutPolicy,
    /// Every staff member must log in with a one-time code as well.
    pub require_totp: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LockoutPolicy {
    /// Failed logins in a row that lock the account (at least 1).
    pub max_failures: u32,
    /// How long the lock lasts, in seconds.
    pub lock_secs: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lock_secs: 15 * 60,
        }
    }
}

/// An account's failed logins since its last success.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFailures {
    pub count: u32,
    pub locked_until: Option<Timestamp>,
}

impl LoginFailures {
    /// Until when the account is locked at `now`, if it is.
    pub fn locked(&self, now: Timestamp) -> Option<Timestamp> {
        self.locked_until.filter(|until| *until > now)
    }

    /// Counts a failed login; returns until when the account is now locked, if this failure
    /// locked it. A lock that has run out starts the count again. Attempts while locked are
    /// refused before they are checked and do not come here, so they cannot extend the lock.
    pub fn fail(&mut self, policy: &LockoutPolicy, now: Timestamp) -> Option<Timestamp> {
        if self.locked_until.is_some_and(|until| until <= now) {
            *self = Self::default();
        }
        self.count = self.count.saturating_add(1);
        if self.count >= policy.max_failures.max(1) {
            let until = now.plus_secs(i64::from(policy.lock_secs));
            self.locked_until = Some(until);
            return Some(until);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_and_time_releases() {
        let policy = LockoutPolicy::default();
        let mut failures = LoginFailures::default();
        let now = Timestamp(1_000_000);
        for _ in 0..4 {
            assert_eq!(failures.fail(&policy, now), None);
        }
        let until = failures.fail(&policy, now).unwrap();
        assert_eq!(until, now.plus_secs(900));
        assert_eq!(failures.locked(now.plus_secs(899)), Some(until));
        assert_eq!(failures.locked(until), None, "released at the end");
        // After the release the count starts again: one failure does not lock.
        assert_eq!(failures.fail(&policy, until.plus_secs(1)), None);
        assert_eq!(failures.count, 1);
    }

    #[test]
    fn a_policy_reads_with_defaults_for_what_it_omits() {
        let policy: SecurityPolicy = serde_json::from_str(r#"{"require_totp": true}"#).unwrap();
        assert!(policy.require_totp);
        assert_eq!(policy.lockout.max_failures, 5);
        assert_eq!(policy.password.min_length, 12);
    }
}
