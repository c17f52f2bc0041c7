//! The platform's own work (a sweep, a payout, a reward for an event) when it calls a service
//! in another process. No caller started it, so there is no caller's credential to forward:
//! it presents the service credential (`identity.service_credential`, the same in every
//! process), which the identity service knows as the platform service, allowed what the
//! built-in `platform_service` role grants. In one process (`--target all`) the services'
//! in-process clients are used and no credential is needed.

use crate::config::{MemberdConfig, Target};
use loyalty_identity::service::SERVICE_SUBJECT;
use loyalty_proto::transport::{FORWARDED, Forwarded};

/// How the platform's own work presents itself to services in other processes.
#[derive(Clone)]
pub struct PlatformWork {
    credential: String,
}

impl PlatformWork {
    /// The platform's work in a process of `config`; refused when `role` runs apart from the
    /// services it calls without a service credential to call them with.
    pub fn of(config: &MemberdConfig, role: &str) -> anyhow::Result<Self> {
        let credential = config
            .identity
            .service_credential
            .as_ref()
            .map(|secret| secret.expose().trim().to_string())
            .unwrap_or_default();
        if credential.is_empty() && config.target != Target::All {
            anyhow::bail!(
                "the {role} service calls the services of other processes on its own (sweeps, \
                 rewards): set identity.service_credential (MEMBERD_IDENTITY__SERVICE_CREDENTIAL) \
                 to one random text of at least 32 characters, the same in every process"
            );
        }
        Ok(Self { credential })
    }

    /// Runs `work` as the platform's: each call it makes to another process carries the
    /// service credential and a request id `<what>-<ulid>`, so that its audit records say
    /// which round of which work made them.
    pub async fn run<F: Future>(&self, what: &str, work: F) -> F::Output {
        let forwarded = Forwarded {
            credential: self.credential.clone(),
            store: None,
            request_id: format!("{what}-{}", ulid::Ulid::new()),
            subject: SERVICE_SUBJECT.into(),
        };
        FORWARDED.scope(forwarded, work).await
    }
}
