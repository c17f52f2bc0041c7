//! Staff passwords: Argon2id hashes in PHC form (the parameters travel with each hash, so they
//! can be raised later and old hashes still verify), and a policy in the spirit of NIST
//! SP 800-63B: length and a block list, no composition rules.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use loyalty_common::ServiceError;
use loyalty_common::error::ErrorCode;
use serde::{Deserialize, Serialize};

/// Hashes and verifies passwords with Argon2id.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A hash of nothing anyone knows, verified when a login names an unknown user, so the
    /// answer takes as long as for a known one.
    decoy: String,
}

impl Default for Passwords {
    /// OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane (about 20–40 ms a hash here).
    fn default() -> Self {
        Self::with_params(Params::default())
    }
}

impl Passwords {
    pub fn with_params(params: Params) -> Self {
        let mut passwords = Self {
            params,
            decoy: String::new(),
        };
        // Hashing cannot fail with valid parameters and a generated salt.
        passwords.decoy = passwords.hash("decoy").unwrap_or_default();
        passwords
    }

    /// Small parameters for tests only: a hash takes well under a millisecond.
    pub fn for_tests() -> Self {
        Self::with_params(Params::new(64, 1, 1, None).unwrap_or_default())
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string of `password` with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, ServiceError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ServiceError::internal(format!("hashing a password: {e}")))
    }

    /// Whether `password` matches `phc`. A malformed hash never matches.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        // The parameters come from the hash itself.
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }

    /// Spends the time of one verification, for a login whose user does not exist.
    pub fn verify_decoy(&self, password: &str) {
        let _ = self.verify(password, &self.decoy);
    }

    /// Whether `phc` was made with other parameters than the current ones (rehash it at the
    /// next successful login).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        match Params::try_from(&parsed) {
            Ok(params) => {
                params.m_cost() != self.params.m_cost()
                    || params.t_cost() != self.params.t_cost()
                    || params.p_cost() != self.params.p_cost()
                    || parsed.algorithm.as_str() != "argon2id"
            }
            Err(_) => true,
        }
    }
}

/// What a tenant demands of its staff's passwords.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordPolicy {
    /// Characters at least (at most 128 are accepted).
    pub min_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 12 }
    }
}

/// The longest password accepted: long passphrases are welcome, megabytes are not.
pub const MAX_LENGTH: usize = 128;

/// Passwords so common that guessing starts with them (lower case; a password is refused if,
/// lower-cased, it is one of these or one of these followed by digits or `!`).
const BLOCKED: &[&str] = &[
    "password",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "123456789",
    "1234567890",
    "12345678",
    "qwertyuiop",
    "qwerty",
    "letmein",
    "welcome",
    "iloveyou",
    "admin",
    "administrator",
    "changeme",
    "abc123",
    "111111111",
    "000000000",
    "football",
    "baseball",
    "dragon",
    "sunshine",
    "princess",
    "monkey",
    "master",
    "superman",
    "trustno1",
    "loyalty",
    "member",
];

impl PasswordPolicy {
    /// Checks a new password for `username` of `tenant`; the error says what to change.
    pub fn check(&self, password: &str, username: &str, tenant: &str) -> Result<(), ServiceError> {
        let refuse = |why: String| Err(ServiceError::new(ErrorCode::PasswordPolicy, why));
        let length = password.chars().count();
        let min = self.min_length.clamp(8, MAX_LENGTH);
        if length < min {
            return refuse(format!("use at least {min} characters"));
        }
        if length > MAX_LENGTH {
            return refuse(format!("use at most {MAX_LENGTH} characters"));
        }
        let lower = password.to_lowercase();
        for (what, name) in [("username", username), ("tenant id", tenant)] {
            let name = name.to_lowercase();
            if name.chars().count() >= 3 && lower.contains(&name) {
                return refuse(format!("the password must not contain the {what}"));
            }
        }
        let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c == '!');
        if BLOCKED.contains(&stem) || BLOCKED.contains(&lower.as_str()) {
            return refuse("that password is among the most guessed; choose another".into());
        }
        let mut distinct: Vec<char> = password.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 5 {
            return refuse("use at least 5 different characters".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let passwords = Passwords::for_tests();
        let phc = passwords.hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(passwords.verify("correct horse battery", &phc));
        assert!(!passwords.verify("correct horse batterx", &phc));
        assert!(!passwords.verify("correct horse battery", "not a hash"));
        let again = passwords.hash("correct horse battery").unwrap();
        assert_ne!(phc, again, "a fresh salt every time");
    }

    #[test]
    fn hashes_made_with_other_parameters_are_flagged_for_rehash() {
        let weak = Passwords::for_tests();
        let strong = Passwords::with_params(Params::new(128, 2, 1, None).unwrap());
        let phc = weak.hash("correct horse battery").unwrap();
        assert!(strong.needs_rehash(&phc));
        assert!(!weak.needs_rehash(&phc));
        assert!(
            strong.verify("correct horse battery", &phc),
            "old hashes still verify"
        );
    }

    #[test]
    fn the_policy_says_what_to_change() {
        let policy = PasswordPolicy::default();
        let why = |p: &str| {
            policy
                .check(p, "alice.w", "acme")
                .map_err(|e| (e.code, e.message))
        };
        assert!(why("plum-kettle-orbit").is_ok());
        assert!(why("短いけど十分に長い日本語のパスワードです").is_ok());
        let (code, message) = why("short1!").unwrap_err();
        assert_eq!(code, ErrorCode::PasswordPolicy);
        assert!(message.contains("at least 12"), "{message}");
        assert!(why(&"x".repeat(129)).unwrap_err().1.contains("at most 128"));
        assert!(why("my-alice.w-secret").unwrap_err().1.contains("username"));
        assert!(why("ACME-rocks-2026").unwrap_err().1.contains("tenant"));
        assert!(why("Password2026!").unwrap_err().1.contains("most guessed"));
        assert!(why("aaaabbbbaaaabbbb").unwrap_err().1.contains("different"));
    }
}
