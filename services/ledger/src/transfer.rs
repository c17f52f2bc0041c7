//! Transfers between two members touch two wallet partitions, which no single batch can do. A
//! transfer is therefore a saga of idempotent single-wallet steps recorded in its own partition:
//! debit the sender, credit the receiver, and if the receiver cannot be credited, give the points
//! back. Whoever finds it unfinished (the caller retrying, or the scheduler after a crash) drives
//! it on; each step's idempotency key makes repeating a step harmless.

use crate::command::{Command, fingerprint_of};
use crate::model::{Entry, EntryKind, WalletKey};
use crate::service::{Ledger, idempotency_conflict, wallet_not_found};
use crate::store::Applied;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{IdempotencyKey, MemberId, TenantId};
use loyalty_common::{ServiceError, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    Started,
    Debited,
    Completed,
    /// The sender could not be debited; nothing moved.
    Failed,
    /// The receiver could not be credited; the sender got the points back.
    Compensated,
}

impl TransferState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TransferState::Completed | TransferState::Failed | TransferState::Compensated
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TransferState::Started => "started",
            TransferState::Debited => "debited",
            TransferState::Completed => "completed",
            TransferState::Failed => "failed",
            TransferState::Compensated => "compensated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    pub tenant: TenantId,
    pub transfer_id: String,
    pub from: MemberId,
    pub to: MemberId,
    pub points: i64,
    pub fingerprint: String,
    pub state: TransferState,
    /// Incremented by every write of the record: the condition of its conditional writes.
    pub revision: u64,
    pub created_at: Timestamp,
    pub debit: Option<Entry>,
    pub credit: Option<Entry>,
    /// The stable error code that failed or compensated the transfer.
    pub failure: Option<String>,
}

/// A transfer's result as callers see it.
#[derive(Debug, Clone)]
pub struct TransferOutcome {
    pub record: TransferRecord,
    pub replayed: bool,
}

#[derive(Serialize)]
struct TransferRequest<'a> {
    tenant: &'a TenantId,
    from: &'a MemberId,
    to: &'a MemberId,
    points: i64,
}

impl Ledger {
    /// Moves points between two members of one tenant, exactly once per idempotency key.
    pub async fn transfer(
        &self,
        tenant: &TenantId,
        from: &MemberId,
        to: &MemberId,
        key: &IdempotencyKey,
        points: i64,
    ) -> ServiceResult<TransferOutcome> {
        if from == to {
            return Err(ServiceError::invalid(
                "a transfer needs two different members",
            ));
        }
        let transfer_id = transfer_id(tenant, from, key);
        let fingerprint = fingerprint_of(&TransferRequest {
            tenant,
            from,
            to,
            points,
        });
        if let Some(existing) = self.transfers().get(tenant, &transfer_id).await? {
            if existing.fingerprint != fingerprint {
                return Err(idempotency_conflict());
            }
            let replayed = existing.state.is_final();
            return self
                .drive(existing)
                .await
                .map(|record| TransferOutcome { record, replayed });
        }
        for member in [from, to] {
            let wallet = WalletKey {
                tenant: tenant.clone(),
                member: member.clone(),
            };
            if self.ports.wallets.head(&wallet).await?.is_none() {
                return Err(wallet_not_found());
            }
        }
        let record = TransferRecord {
            tenant: tenant.clone(),
            transfer_id,
            from: from.clone(),
            to: to.clone(),
            points,
            fingerprint,
            state: TransferState::Started,
            revision: 1,
            created_at: self.now(),
            debit: None,
            credit: None,
            failure: None,
        };
        let record = match self.transfers().put(record.clone()).await? {
            Applied::Yes => record,
            // Someone created it first with this key: continue theirs.
            Applied::Conflict => self.reload(&record).await?,
        };
        self.drive(record).await.map(|record| TransferOutcome {
            record,
            replayed: false,
        })
    }

    /// Finishes transfers a crash left half done. Returns how many it finished.
    pub async fn recover_transfers(
        &self,
        older_than_secs: i64,
        limit: usize,
    ) -> ServiceResult<usize> {
        if !self.may_work() {
            return Ok(0);
        }
        let cutoff = self.now().plus_secs(-older_than_secs);
        let mut finished = 0;
        for record in self.transfers().unfinished(limit).await? {
            if record.created_at > cutoff {
                continue;
            }
            // Another region's tenant's transfer is its home's to drive on.
            let tenant = record.tenant.clone();
            let Some(driven) = self.as_background(&tenant, self.drive(record)).await else {
                continue;
            };
            match driven {
                Ok(_) => finished += 1,
                // A business failure is final and recorded; the transfer is finished.
                Err(e) if e.code != ErrorCode::Unavailable && e.code != ErrorCode::Internal => {
                    finished += 1
                }
                Err(e) => return Err(e),
            }
        }
        Ok(finished)
    }

    /// Drives a transfer to a final state, one idempotent step at a time.
    async fn drive(&self, mut record: TransferRecord) -> ServiceResult<TransferRecord> {
        loop {
            let step_key =
                |step: &str| IdempotencyKey::parse(format!("xfer-{}-{step}", record.transfer_id));
            let next = match record.state {
                TransferState::Completed => return Ok(record),
                TransferState::Failed | TransferState::Compensated => {
                    let code = record
                        .failure
                        .as_deref()
                        .and_then(ErrorCode::parse)
                        .unwrap_or(ErrorCode::Internal);
                    return Err(ServiceError::new(
                        code,
                        format!("transfer {} {}", record.transfer_id, record.state.as_str()),
                    ));
                }
                TransferState::Started => {
                    let wallet = WalletKey {
                        tenant: record.tenant.clone(),
                        member: record.from.clone(),
                    };
                    let command = Command::TransferOut {
                        points: record.points,
                        to: record.to.clone(),
                    };
                    match self.execute(&wallet, &step_key("out")?, command).await {
                        Ok(w) => {
                            if self.fault(&self.faults.stop_after_transfer_debit) {
                                return Err(ServiceError::unavailable(
                                    "injected fault: stopped after the debit",
                                ));
                            }
                            TransferRecord {
                                state: TransferState::Debited,
                                debit: w.outcome.entries.last().cloned(),
                                ..record.clone()
                            }
                        }
                        Err(e) if is_business(&e) => TransferRecord {
                            state: TransferState::Failed,
                            failure: Some(e.code.as_str().into()),
                            ..record.clone()
                        },
                        Err(e) => return Err(e),
                    }
                }
                TransferState::Debited => {
                    let wallet = WalletKey {
                        tenant: record.tenant.clone(),
                        member: record.to.clone(),
                    };
                    let command = Command::TransferIn {
                        points: record.points,
                        from: record.from.clone(),
                        kind: EntryKind::TransferredIn,
                    };
                    let credited = if self.fault(&self.faults.refuse_transfer_credit) {
                        Err(wallet_not_found())
                    } else {
                        self.execute(&wallet, &step_key("in")?, command).await
                    };
                    match credited {
                        Ok(w) => TransferRecord {
                            state: TransferState::Completed,
                            credit: w.outcome.entries.last().cloned(),
                            ..record.clone()
                        },
                        Err(e) if is_business(&e) => {
                            let back = WalletKey {
                                tenant: record.tenant.clone(),
                                member: record.from.clone(),
                            };
                            let command = Command::TransferIn {
                                points: record.points,
                                from: record.to.clone(),
                                kind: EntryKind::TransferReturned,
                            };
                            self.execute(&back, &step_key("back")?, command).await?;
                            TransferRecord {
                                state: TransferState::Compensated,
                                failure: Some(e.code.as_str().into()),
                                ..record.clone()
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            let next = TransferRecord {
                revision: record.revision + 1,
                ..next
            };
            record = match self.transfers().put(next.clone()).await? {
                Applied::Yes => next,
                Applied::Conflict => self.reload(&record).await?,
            };
        }
    }

    async fn reload(&self, record: &TransferRecord) -> ServiceResult<TransferRecord> {
        self.transfers()
            .get(&record.tenant, &record.transfer_id)
            .await?
            .ok_or_else(|| ServiceError::internal("transfer record vanished"))
    }
}

/// Errors that are answers (not enough points, no wallet) rather than outages.
fn is_business(e: &ServiceError) -> bool {
    !matches!(
        e.code,
        ErrorCode::Unavailable | ErrorCode::Internal | ErrorCode::VersionConflict
    )
}

/// A transfer's id follows from who sends it and the key, so a retry finds the same transfer.
fn transfer_id(tenant: &TenantId, from: &MemberId, key: &IdempotencyKey) -> String {
    let digest = Sha256::digest(format!("{tenant}\0{from}\0{}", key.as_str()));
    format!("tr{}", &hex::encode(digest)[..30])
}
