//! The ledger's side of the mall's orders after their commit: a reader of the campaign
//! store's own outbox that, for each order `failed`, `lapsed`, `cancelled` or `returned`,
//! reverses the points taken (`paid_entry`) or voids the hold (`hold_id`), and for each
//! stored-value order `fulfilled` credits its bonus stored value, under keys of the order,
//! so an event read twice acts once. It runs as the service's own work, so the credential
//! of whoever confirmed the order needs no right to adjust wallets. A hold that turns out to have been taken (a confirmation cut
//! short after the ledger took the points) is found by the confirmation's own key and
//! reversed. The position moves only once a page is done.

use super::Campaigns;
use super::mall::{step_key, wallet};
use crate::events::CampaignEvent;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_ledger::client::LedgerClient;
use loyalty_proto::ledger::v1 as ledger_pb;
use serde::Deserialize;

/// The outbox reader's name in the store's positions.
pub const READER: &str = "mall-refunds";

/// The part of an order's event a refund reads.
#[derive(Deserialize)]
struct OrderData {
    item: String,
    order: String,
    hold_id: Option<String>,
    paid_entry: Option<String>,
    #[serde(default)]
    credit: Option<i64>,
}

impl Campaigns {
    /// Gives back the points of every order that stopped counting since the last call, and
    /// credits the stored value of every stored-value order fulfilled since; how many orders
    /// it acted on. Without a ledger client it reads nothing.
    pub async fn refund_orders(&self) -> ServiceResult<u64> {
        let Some(ledger) = &self.ledger else {
            return Ok(0);
        };
        let ledger = ledger.as_ref();
        self.read_outbox(READER, |event| async move {
            Ok(u64::from(refund(ledger, &event).await?))
        })
        .await
    }
}

/// Gives back what one event's order holds or took, or credits what it bought; whether it
/// was such an event.
async fn refund(ledger: &dyn LedgerClient, event: &CampaignEvent) -> ServiceResult<bool> {
    let ends = [
        "mall_order_failed",
        "mall_order_lapsed",
        "mall_order_cancelled",
        "mall_order_returned",
    ];
    let fulfilled = event.name == "mall_order_fulfilled";
    if !fulfilled && !ends.contains(&event.name.as_str()) {
        return Ok(false);
    }
    // Written by this service: a payload it cannot read is a bug, not a reason to stop.
    let Ok(data) = serde_json::from_str::<OrderData>(&event.data) else {
        tracing::error!(event = %event.id, "an order's event without its order: nothing done");
        return Ok(false);
    };
    if fulfilled {
        let Some(amount) = data.credit.filter(|a| *a > 0) else {
            return Ok(false);
        };
        let credit = ledger_pb::AdjustBonusValueRequest {
            wallet: Some(wallet(&event.tenant, &event.member)),
            idempotency_key: step_key("mall-credit", (&event.tenant, &data.item, &data.order)),
            amount,
            reason: format!("points mall order {}", data.order),
        };
        super::adjust_bonus_opening(ledger, credit).await?;
        return Ok(true);
    }
    let taken = Taken {
        saga: "mall",
        parts: (&event.tenant, &data.item, &data.order),
        hold: data.hold_id.as_deref(),
        paid_entry: data.paid_entry.as_deref(),
    };
    give_back(ledger, event, taken).await?;
    Ok(true)
}

/// What a saga (an order, a draw's entry) holds or took in the ledger, under its keys
/// `<saga>-<step>-<hash of parts>`.
pub(super) struct Taken<'a> {
    pub saga: &'a str,
    pub parts: (&'a str, &'a str, &'a str),
    pub hold: Option<&'a str>,
    pub paid_entry: Option<&'a str>,
}

/// Reverses the points `taken` took, or voids its hold; a hold that turns out to have been
/// taken is found by the saga's own capture key and reversed. Once, however often it runs.
pub(super) async fn give_back(
    ledger: &dyn LedgerClient,
    event: &CampaignEvent,
    taken: Taken<'_>,
) -> ServiceResult<()> {
    let key = |step: &str| step_key(&format!("{}-{step}", taken.saga), taken.parts);
    let wallet = || Some(wallet(&event.tenant, &event.member));
    if let Some(entry) = taken.paid_entry.filter(|e| !e.is_empty()) {
        return reverse(ledger, event, &key("refund"), entry).await;
    }
    let Some(hold) = taken.hold.filter(|h| !h.is_empty()) else {
        return Ok(());
    };
    let voided = ledger
        .void_hold(ledger_pb::HoldActionRequest {
            wallet: wallet(),
            idempotency_key: key("void"),
            hold_id: hold.to_string(),
        })
        .await;
    match voided {
        Ok(_) => Ok(()),
        // Taken, given back or run out: if the saga's capture took it, the answer to the
        // capture's key names the entry to reverse.
        Err(e) if e.code == ErrorCode::HoldNotActive => {
            let captured = ledger
                .capture_hold(ledger_pb::HoldActionRequest {
                    wallet: wallet(),
                    idempotency_key: key("capture"),
                    hold_id: hold.to_string(),
                })
                .await;
            match captured {
                Ok(written) => match written.entries.last() {
                    Some(entry) => reverse(ledger, event, &key("refund"), &entry.entry_id).await,
                    None => Ok(()),
                },
                Err(e) if e.code == ErrorCode::HoldNotActive => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) if e.code == ErrorCode::HoldNotFound => Ok(()),
        Err(e) => Err(e),
    }
}

async fn reverse(
    ledger: &dyn LedgerClient,
    event: &CampaignEvent,
    key: &str,
    entry: &str,
) -> ServiceResult<()> {
    ledger
        .reverse(ledger_pb::ReverseRequest {
            wallet: Some(wallet(&event.tenant, &event.member)),
            idempotency_key: key.to_string(),
            entry_id: entry.to_string(),
            points: 0,
            reason: format!("given back on {}", event.name),
        })
        .await
        .map(|_| ())
}
