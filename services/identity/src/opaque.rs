//! Opaque credentials: refresh tokens (`rt_…`) and API keys (`lk_…`). Each is a record id and
//! 256 random bits; only the SHA-256 of the random part is stored, so a stolen database holds
//! nothing that logs in. A plain hash is enough here: the secret has full entropy, so there
//! is nothing to guess (unlike a password).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ulid::Ulid;

/// What kind of credential a text is, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RefreshToken,
    ApiKey,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::RefreshToken => "rt_",
            Kind::ApiKey => "lk_",
        }
    }
}

/// The stored form of a secret: its SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether `secret` hashes to this, in constant time.
    pub fn matches(&self, secret: &str) -> bool {
        constant_time_eq::constant_time_eq(&Self::of(secret).0, &self.0)
    }
}

/// A new credential: the text to hand out once, and what to store.
pub struct Issued {
    pub id: Ulid,
    /// `<prefix><id>_<secret>`: shown to its owner once, never stored.
    pub text: String,
    pub hash: SecretHash,
}

/// A new credential of `kind` with a fresh id and secret.
pub fn issue(kind: Kind) -> Issued {
    issue_for(kind, Ulid::new())
}

/// A new secret for the record `id` (a refresh token names its session).
pub fn issue_for(kind: Kind, id: Ulid) -> Issued {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    Issued {
        id,
        text: format!("{}{id}_{secret}", kind.prefix()),
        hash: SecretHash::of(&secret),
    }
}

/// The record id and secret of a presented credential of `kind`, if it has that shape.
pub fn parse(kind: Kind, text: &str) -> Option<(Ulid, &str)> {
    let rest = text.trim().strip_prefix(kind.prefix())?;
    let (id, secret) = rest.split_once('_')?;
    let id = Ulid::from_string(id).ok()?;
    // 32 bytes in unpadded base64url.
    (secret.len() == 43 && URL_SAFE_NO_PAD.decode(secret).is_ok()).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_credential_parses_back_and_only_its_secret_matches() {
        let key = issue(Kind::ApiKey);
        assert!(key.text.starts_with("lk_"));
        let (id, secret) = parse(Kind::ApiKey, &key.text).unwrap();
        assert_eq!(id, key.id);
        assert!(key.hash.matches(secret));
        let other = issue(Kind::ApiKey);
        let (_, other_secret) = parse(Kind::ApiKey, &other.text).unwrap();
        assert!(!key.hash.matches(other_secret));
        assert_eq!(parse(Kind::RefreshToken, &key.text), None, "wrong kind");
    }

    #[test]
    fn malformed_credentials_do_not_parse() {
        let good = issue(Kind::RefreshToken).text;
        for bad in [
            "",
            "rt_",
            "rt_notaulid_secret",
            &good[..good.len() - 1],
            &format!("{good}x"),
            &good.replace('_', "-"),
        ] {
            assert_eq!(parse(Kind::RefreshToken, bad), None, "{bad}");
        }
    }
}
