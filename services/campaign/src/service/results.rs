//! Campaigns' effectiveness, counted as it happens. A reader of the campaign store's own
//! outbox turns each reward paid (`campaign_rewarded`), each member held out
//! (`campaign_held_out`) and each redemption of a campaign's coupon (`coupon_redeemed`,
//! `coupon_redemption_undone`) into facts of the campaign's arm, and links the member, the
//! coupon and the order to that arm. The member service's `order_recorded`, delivered to
//! the triggers' subscription, is attributed to every campaign whose coupon was on it, or
//! which rewarded (or held out) the member within its attribution window before it; a
//! refund takes its spend back from the campaigns its order counted in.
//!
//! Every fact has a key, counted once per campaign, so a page read twice, an event
//! delivered again, or two replicas reading at once count once.

use super::Campaigns;
use crate::campaign::results::{
    CampaignResults, Counts, Fact, Link, Tally, coupon_link, member_link, order_link,
};
use crate::events::CampaignEvent;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use loyalty_events::Envelope;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The outbox reader's name in the store's positions.
pub const READER: &str = "campaign-results";
const DAY_MS: i64 = 86_400_000;

/// The part of a reward's event results read.
#[derive(Deserialize)]
struct RewardData {
    campaign: String,
    key: String,
    variant: String,
    #[serde(default)]
    reward: serde_json::Value,
    paid_with: Option<String>,
}

/// The part of a redemption's event results read.
#[derive(Deserialize)]
struct RedemptionData {
    redemption: String,
    order_id: String,
    coupons: Vec<RedeemedCode>,
}

#[derive(Deserialize)]
struct RedeemedCode {
    code: String,
    discount: i64,
}

impl Campaigns {
    /// Counts every campaign event since the last call into the campaigns' results; how
    /// many facts it counted.
    pub async fn tally_results(&self) -> ServiceResult<usize> {
        self.read_outbox(
            READER,
            |event| async move { self.tally_event(&event).await },
        )
        .await
    }

    /// A campaign's results per arm and in total.
    pub async fn campaign_results(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> ServiceResult<CampaignResults> {
        let record = self
            .store
            .campaign(tenant, id)
            .await?
            .ok_or_else(|| super::plans::not_found(id))?;
        let c = &record.campaign;
        let variants: Vec<String> = c.variants.iter().map(|v| v.id.clone()).collect();
        let counted = self.store.results(tenant, id).await?;
        Ok(CampaignResults::new(
            id,
            c.attribution_days(),
            &variants,
            counted,
        ))
    }

    /// The facts and links of one campaign event; how many facts it counted.
    async fn tally_event(&self, event: &CampaignEvent) -> ServiceResult<usize> {
        let Ok(tenant) = TenantId::parse(event.tenant.as_str()) else {
            return Ok(0);
        };
        let (m, at) = (event.member.as_str(), event.at.0);
        let tallies = match event.name.as_str() {
            "campaign_rewarded" | "campaign_held_out" => {
                // Written by this service: a payload it cannot read is a bug, not a reason
                // to stop counting.
                let Ok(d) = serde_json::from_str::<RewardData>(&event.data) else {
                    tracing::error!(event = %event.id, "a reward event without its campaign");
                    return Ok(0);
                };
                let link = Link {
                    campaign: d.campaign.clone(),
                    arm: d.variant.clone(),
                    at_ms: at,
                };
                let mut links = vec![(member_link(m), link.clone())];
                let mut facts = vec![fact(
                    &format!("member/{m}"),
                    &d.variant,
                    Counts {
                        members: 1,
                        ..Counts::default()
                    },
                )];
                if event.name == "campaign_rewarded" {
                    let coupon = d.reward["type"] == "coupon";
                    facts.push(fact(
                        &format!("grant/{m}/{}", d.key),
                        &d.variant,
                        Counts {
                            issued: 1,
                            coupons: i64::from(coupon),
                            points: d.reward["points"].as_i64().unwrap_or(0),
                            stored_value: match d.reward["type"] == "stored_value" {
                                true => d.reward["amount"].as_i64().unwrap_or(0),
                                false => 0,
                            },
                            ..Counts::default()
                        },
                    ));
                    if let (true, Some(code)) = (coupon, &d.paid_with) {
                        links.push((coupon_link(code), link));
                    }
                }
                vec![Tally {
                    campaign: d.campaign,
                    facts,
                    links,
                }]
            }
            "coupon_redeemed" | "coupon_redemption_undone" => {
                let Ok(d) = serde_json::from_str::<RedemptionData>(&event.data) else {
                    tracing::error!(event = %event.id, "a redemption event without its coupons");
                    return Ok(0);
                };
                self.redemption_tallies(&tenant, &d, event.name == "coupon_redeemed", at)
                    .await?
            }
            _ => Vec::new(),
        };
        let mut counted = 0;
        for tally in &tallies {
            counted += self.store.tally(&tenant, tally).await?;
        }
        Ok(counted)
    }

    /// The facts of a redemption (or its undoing) for the campaigns its coupons came from.
    async fn redemption_tallies(
        &self,
        tenant: &TenantId,
        d: &RedemptionData,
        redeemed: bool,
        at: i64,
    ) -> ServiceResult<Vec<Tally>> {
        let mut tallies = Vec::new();
        for coupon in &d.coupons {
            // A coupon is issued by one reward, so it has at most one link.
            let Some(link) = self
                .store
                .links(tenant, &coupon_link(&coupon.code))
                .await?
                .into_iter()
                .next()
            else {
                continue;
            };
            let used = format!("redeem/{}/{}", d.redemption, coupon.code);
            let (key, after, sign) = match redeemed {
                true => (used, None, 1),
                false => (
                    format!("undo/{}/{}", d.redemption, coupon.code),
                    Some(used),
                    -1,
                ),
            };
            let add = Counts {
                redeemed: sign,
                discount: sign * coupon.discount,
                ..Counts::default()
            };
            let mut links = Vec::new();
            if redeemed {
                // The order the coupon was on is the campaign's, whenever it is recorded.
                let on_order = Link {
                    at_ms: at,
                    ..link.clone()
                };
                links.push((order_link(&d.order_id), on_order));
            }
            tallies.push(Tally {
                campaign: link.campaign.clone(),
                facts: vec![Fact {
                    key,
                    arm: link.arm,
                    after,
                    add,
                }],
                links,
            });
        }
        Ok(tallies)
    }

    /// Attributes a member-service `order_recorded` to the campaigns it belongs to: those
    /// whose coupon was on it, and those that reached its member within their attribution
    /// window before it; a refund takes its spend back from those its order counted in.
    /// How many campaigns it counted in; other events count in none.
    pub async fn attribute(&self, event: &Envelope) -> ServiceResult<usize> {
        if event.service() != "member" || event.name() != "order_recorded" {
            return Ok(0);
        }
        let (Ok(tenant), member) = (
            TenantId::parse(event.tenant.as_str()),
            event.subject.as_str(),
        ) else {
            return Ok(0);
        };
        // Rewards and redemptions committed before the order was recorded are counted (and
        // linked) first, however far the reader's round has got.
        self.tally_results().await?;
        let data = event.data_value();
        let order = data["order_id"].as_str().unwrap_or_default();
        let total = data["total"].as_i64().unwrap_or(0);
        if order.is_empty() || member.is_empty() {
            return Ok(0);
        }
        let at = data["at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(event.time.timestamp_millis(), |t| t.timestamp_millis());
        let reached = self.store.links(&tenant, &member_link(member)).await?;
        let refund_of = data["refund_of"].as_str();
        let mut arms: BTreeMap<String, String> = BTreeMap::new();
        if refund_of.is_some() {
            // Any campaign that reached the member: the refund counts only where its order did.
            for l in reached {
                arms.insert(l.campaign, l.arm);
            }
        } else {
            for l in self.store.links(&tenant, &order_link(order)).await? {
                arms.insert(l.campaign, l.arm);
            }
            let mut windows = BTreeMap::new();
            for l in reached {
                if arms.contains_key(&l.campaign) || l.at_ms > at {
                    continue;
                }
                let days = match windows.get(&l.campaign) {
                    Some(days) => *days,
                    None => {
                        let days = self.attribution_days(&tenant, &l.campaign).await?;
                        windows.insert(l.campaign.clone(), days);
                        days
                    }
                };
                if at < l.at_ms + i64::from(days) * DAY_MS {
                    arms.insert(l.campaign, l.arm);
                }
            }
        }
        let mut counted = 0;
        for (campaign, arm) in arms {
            let fact = match refund_of {
                Some(original) => Fact {
                    key: format!("refund/{order}"),
                    arm,
                    after: Some(format!("order/{original}")),
                    add: Counts {
                        spend: total,
                        ..Counts::default()
                    },
                },
                None => Fact {
                    key: format!("order/{order}"),
                    arm,
                    after: None,
                    add: Counts {
                        orders: 1,
                        spend: total,
                        ..Counts::default()
                    },
                },
            };
            let tally = Tally {
                campaign,
                facts: vec![fact],
                links: Vec::new(),
            };
            counted += self.store.tally(&tenant, &tally).await?;
        }
        Ok(counted)
    }

    /// A campaign's attribution window in days (the default for one that is gone).
    async fn attribution_days(&self, tenant: &TenantId, campaign: &str) -> ServiceResult<u32> {
        Ok(match self.store.campaign(tenant, campaign).await? {
            Some(r) => r.campaign.attribution_days(),
            None => crate::campaign::ATTRIBUTION_DAYS,
        })
    }
}

fn fact(key: &str, arm: &str, add: Counts) -> Fact {
    Fact {
        key: key.to_string(),
        arm: arm.to_string(),
        after: None,
        add,
    }
}
