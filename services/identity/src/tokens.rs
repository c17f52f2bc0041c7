//! Access tokens: short-lived JWTs signed with Ed25519 (`EdDSA`), each naming its key (`kid`),
//! verified by anyone holding the published key set (JWKS). Only `EdDSA` is accepted, so a
//! token cannot choose a weaker algorithm. Expiry is checked against the platform's clock, not
//! the library's, so tests control time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use loyalty_common::error::ErrorCode;
use loyalty_common::{ServiceError, Timestamp};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Who issued it (`memberd` unless configured).
    pub iss: String,
    /// The principal: `staff:<id>` or `key:<id>`.
    pub sub: String,
    /// The tenant the principal belongs to; `*` for the platform's own staff.
    pub tid: String,
    /// The login session (a refresh-token family): revoking it ends every token of it at once.
    pub sid: String,
    /// Issued at and expires at, seconds since the epoch.
    pub iat: i64,
    pub exp: i64,
    /// Unique per token.
    pub jti: String,
}

/// A key that signs access tokens. The private part never leaves the identity service.
pub struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

impl SigningKey {
    /// A new random Ed25519 key.
    pub fn generate() -> Result<Self, ServiceError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| ServiceError::internal("generating a signing key failed"))?;
        Self::from_pkcs8(pkcs8.as_ref().to_vec())
    }

    /// A key stored earlier (PKCS#8 DER). Its id is derived from the public key.
    pub fn from_pkcs8(pkcs8: Vec<u8>) -> Result<Self, ServiceError> {
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| ServiceError::internal("a stored signing key is unreadable"))?;
        Ok(Self::of_pair(&pair, pkcs8))
    }

    /// A key from the settings: an Ed25519 private key, PKCS#8 DER in base64, as
    /// `openssl genpkey -algorithm ed25519 -outform DER | base64 -w0` writes it (PKCS#8 v1,
    /// which carries no public key, is taken too). `setting` names it in the error.
    pub fn from_setting(base64: &str, setting: &str) -> Result<Self, ServiceError> {
        let refused = |why: &str| {
            ServiceError::invalid(format!(
                "{setting}: {why}; give an Ed25519 private key, PKCS#8 DER in base64 \
                 (openssl genpkey -algorithm ed25519 -outform DER | base64 -w0)"
            ))
        };
        let pkcs8 = base64::engine::general_purpose::STANDARD
            .decode(base64.trim())
            .map_err(|_| refused("not base64"))?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
            .map_err(|_| refused("not an Ed25519 private key"))?;
        Ok(Self::of_pair(&pair, pkcs8))
    }

    fn of_pair(pair: &Ed25519KeyPair, pkcs8: Vec<u8>) -> Self {
        let public = pair.public_key().as_ref().to_vec();
        let kid = hex::encode(&Sha256::digest(&public)[..8]);
        Self { kid, pkcs8, public }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// For storage only.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half, as published.
    pub fn public(&self) -> PublicJwk {
        PublicJwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(&self.public),
            kid: self.kid.clone(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }
    }
}

/// One public key in the JWKS (RFC 8037: an Ed25519 octet key pair).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

/// The published key set (`/.well-known/jwks.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<PublicJwk>,
}

/// Signs access tokens with the current key.
pub struct TokenIssuer {
    issuer: String,
    ttl_secs: i64,
    key: SigningKey,
    encoding: EncodingKey,
}

impl TokenIssuer {
    pub fn new(issuer: &str, ttl_secs: i64, key: SigningKey) -> Self {
        let encoding = EncodingKey::from_ed_der(key.pkcs8());
        Self {
            issuer: issuer.into(),
            ttl_secs,
            key,
            encoding,
        }
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// A token for `subject` of `tenant` in `session`, valid from `now` for the configured time.
    pub fn issue(
        &self,
        subject: &str,
        tenant: &str,
        session: &str,
        now: Timestamp,
    ) -> Result<(String, AccessClaims), ServiceError> {
        let iat = now.0.div_euclid(1000);
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: subject.into(),
            tid: tenant.into(),
            sid: session.into(),
            iat,
            exp: iat + self.ttl_secs,
            jti: ulid::Ulid::new().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.kid().to_string());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| ServiceError::internal(format!("signing a token: {e}")))?;
        Ok((token, claims))
    }
}

/// Checks access tokens against a key set: anyone with the JWKS can, without the identity
/// service's secrets.
pub struct TokenVerifier {
    issuer: String,
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

fn unauthenticated(why: &str) -> ServiceError {
    ServiceError::new(ErrorCode::Unauthenticated, why)
}

impl TokenVerifier {
    pub fn new(issuer: &str, jwks: &Jwks) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
            .filter_map(|k| {
                let x = URL_SAFE_NO_PAD.decode(&k.x).ok()?;
                Some((k.kid.clone(), DecodingKey::from_ed_der(&x)))
            })
            .collect();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        // Expiry is checked below against the platform's clock.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "iss", "sub"].map(String::from).into();
        validation.set_issuer(&[issuer]);
        Self {
            issuer: issuer.into(),
            keys,
            validation,
        }
    }

    /// The claims of `token` if it is well formed, signed by a known key, from this issuer and
    /// not expired at `now`; otherwise an `UNAUTHENTICATED` error saying which.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<AccessClaims, ServiceError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("the token is not a well-formed JWT"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(unauthenticated("the token is not signed with EdDSA"));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthenticated("the token names no key (kid)"))?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| unauthenticated("the token's key is unknown or retired"))?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    unauthenticated("the token's signature does not match")
                }
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    unauthenticated(&format!("the token was not issued by {}", self.issuer))
                }
                _ => unauthenticated("the token's claims are malformed"),
            },
        )?;
        if data.claims.exp <= now.0.div_euclid(1000) {
            return Err(unauthenticated(
                "the token has expired; refresh it or log in again",
            ));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (TokenIssuer, TokenVerifier) {
        let issuer = TokenIssuer::new("memberd", 900, SigningKey::generate().unwrap());
        let jwks = Jwks {
            keys: vec![issuer.key().public()],
        };
        (issuer, TokenVerifier::new("memberd", &jwks))
    }

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    #[test]
    fn an_issued_token_verifies_until_it_expires() {
        let (issuer, verifier) = setup();
        let (token, claims) = issuer.issue("staff:01", "acme", "s1", NOW).unwrap();
        assert_eq!(verifier.verify(&token, NOW).unwrap(), claims);
        assert_eq!(claims.exp - claims.iat, 900);
        let late = NOW.plus_secs(900);
        let err = verifier.verify(&token, late).unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthenticated);
        assert!(err.message.contains("expired"), "{}", err.message);
    }

    #[test]
    fn tampered_foreign_and_malformed_tokens_are_refused_with_the_reason() {
        let (issuer, verifier) = setup();
        let (token, _) = issuer.issue("staff:01", "acme", "s1", NOW).unwrap();
        let why = |t: &str| verifier.verify(t, NOW).unwrap_err().message;

        // Another tenant in the payload, same signature.
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["tid"] = "globex".into();
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert!(why(&tampered).contains("signature"));

        // Signed by a key the verifier does not know, and by a key with a known kid but
        // another secret.
        let (stranger, _) = setup();
        let (foreign, _) = stranger.issue("staff:01", "acme", "s1", NOW).unwrap();
        assert!(why(&foreign).contains("unknown"));

        // Another issuer.
        let other = TokenIssuer::new(
            "evil",
            900,
            SigningKey::from_pkcs8(issuer.key().pkcs8().to_vec()).unwrap(),
        );
        let (wrong_iss, _) = other.issue("staff:01", "acme", "s1", NOW).unwrap();
        assert!(why(&wrong_iss).contains("not issued by memberd"));

        // An HS256 token, and garbage.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "x", "iss": "memberd", "exp": 9_999_999_999i64}),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(why(&hs).contains("EdDSA"));
        assert!(why("not.a.token").contains("well-formed"));
        assert!(why("").contains("well-formed"));
    }

    #[test]
    fn a_stored_key_signs_tokens_the_old_key_set_still_verifies() {
        let (issuer, verifier) = setup();
        let restored = SigningKey::from_pkcs8(issuer.key().pkcs8().to_vec()).unwrap();
        assert_eq!(restored.kid(), issuer.key().kid());
        let again = TokenIssuer::new("memberd", 900, restored);
        let (token, _) = again.issue("staff:02", "acme", "s2", NOW).unwrap();
        assert!(verifier.verify(&token, NOW).is_ok());
        let jwks = serde_json::to_value(Jwks {
            keys: vec![again.key().public()],
        })
        .unwrap();
        assert_eq!(jwks["keys"][0]["kty"], "OKP");
        assert_eq!(jwks["keys"][0]["use"], "sig");
        assert_eq!(
            format!("{:?}", again.key()),
            format!("SigningKey({})", again.key().kid())
        );
    }
}
