//! The second factor: time-based one-time codes (RFC 6238: SHA-1, 6 digits, 30 s steps, as
//! every authenticator app reads them), one step of clock drift either way, and no code
//! accepted twice.

use loyalty_common::ServiceError;
use rand::RngCore;
use totp_rs::{Algorithm, TOTP};

/// Seconds per code.
pub const STEP_SECS: u64 = 30;
/// Bytes of a new secret: 160 bits, RFC 4226's recommendation.
const SECRET_BYTES: usize = 20;

/// A staff member's TOTP secret.
#[derive(Clone)]
pub struct TotpSecret {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self { bytes }
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn totp(&self, issuer: &str, account: &str) -> Result<TOTP, ServiceError> {
        // ':' separates issuer and account in the URI; neither may hold one.
        let clean = |s: &str| s.replace(':', "-");
        TOTP::new(
            Algorithm::SHA1,
            6,
            1,
            STEP_SECS,
            self.bytes.clone(),
            Some(clean(issuer)),
            clean(account),
        )
        .map_err(|e| ServiceError::internal(format!("TOTP setup: {e}")))
    }

    /// The `otpauth://` URI an authenticator app scans (shown once, at enrolment).
    pub fn provisioning_uri(&self, issuer: &str, account: &str) -> Result<String, ServiceError> {
        Ok(self.totp(issuer, account)?.get_url())
    }

    /// The code for the step holding `unix_secs` (for tests and enrolment checks).
    pub fn code_at(&self, unix_secs: u64) -> Result<String, ServiceError> {
        Ok(self.totp("memberd", "staff")?.generate(unix_secs))
    }

    /// The step `code` belongs to, if it is the code of the current step or of one step
    /// either side, and that step is later than `last_used` (a code works once).
    pub fn verify(
        &self,
        code: &str,
        unix_secs: u64,
        last_used: Option<u64>,
    ) -> Result<Option<u64>, ServiceError> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let totp = self.totp("memberd", "staff")?;
        let now = unix_secs / STEP_SECS;
        for step in [now, now.saturating_sub(1), now + 1] {
            let expected = totp.generate(step * STEP_SECS);
            if constant_time_eq::constant_time_eq(expected.as_bytes(), code.as_bytes()) {
                return Ok(last_used.is_none_or(|used| step > used).then_some(step));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_in_its_step_and_one_either_side_once() {
        let secret = TotpSecret::generate();
        let t = 1_800_000_000; // a step boundary
        let code = secret.code_at(t).unwrap();
        let step = t / STEP_SECS;
        assert_eq!(secret.verify(&code, t, None).unwrap(), Some(step));
        assert_eq!(
            secret.verify(&code, t + 35, None).unwrap(),
            Some(step),
            "drift"
        );
        assert_eq!(
            secret.verify(&code, t - 25, None).unwrap(),
            Some(step),
            "drift"
        );
        assert_eq!(
            secret.verify(&code, t + 65, None).unwrap(),
            None,
            "too late"
        );
        assert_eq!(
            secret.verify(&code, t, Some(step)).unwrap(),
            None,
            "a code works once"
        );
        assert_eq!(secret.verify("12345", t, None).unwrap(), None);
        assert_eq!(secret.verify("abcdef", t, None).unwrap(), None);
    }

    #[test]
    fn the_provisioning_uri_names_issuer_and_account() {
        let secret = TotpSecret::from_bytes(vec![7; 20]);
        let uri = secret.provisioning_uri("memberd acme", "alice").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains("secret="), "{uri}");
        assert!(uri.contains("alice"), "{uri}");
        assert_eq!(format!("{secret:?}"), "TotpSecret(..)", "never printed");
    }

    #[test]
    fn the_codes_match_rfc_6238() {
        // RFC 6238 appendix B, SHA-1: secret "12345678901234567890", T = 59 s -> 94287082
        // (8 digits); its last 6 digits are the 6-digit code.
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(secret.code_at(59).unwrap(), "287082");
        assert_eq!(secret.code_at(1_111_111_109).unwrap(), "081804");
    }
}
