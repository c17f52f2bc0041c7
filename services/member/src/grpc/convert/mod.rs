//! `member.v1` messages to and from the member service's types. Empty strings and zero times
//! on the wire stand for "none", as in the ledger's API.

use crate::facts::{Lifecycle, MemberFacts};
use crate::orders::{Order, OrderLine};
use crate::profile::{Consents, Personal, Profile};
use crate::service::{
    ErasureState, ErasureStatus, MergeRecord, MergeState, OrderInput, ProfileInput, ProfilePatch,
};
use loyalty_common::error::ServiceResult;
use loyalty_common::personal::PersonalData;
use loyalty_common::{ServiceError, Timestamp};
use loyalty_proto::member::v1 as pb;
use std::collections::BTreeMap;

mod programme;
pub use programme::*;

/// None for an empty string.
fn given(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

fn ms(at: Option<Timestamp>) -> i64 {
    at.map_or(0, |t| t.0)
}

fn personal_from(p: pb::Personal) -> Personal {
    let personal = |value: Option<String>| value.map(PersonalData::from);
    Personal {
        name: personal(p.name),
        gender: personal(p.gender),
        birthday: personal(p.birthday),
        phone: personal(p.phone),
        email: personal(p.email),
        id_number: personal(p.id_number),
        address: personal(p.address),
    }
}

/// The personal fields as sent to a caller (masked unless it read them unmasked).
fn personal_to(q: Personal) -> pb::Personal {
    let plain = |value: Option<PersonalData>| value.map(PersonalData::into_exposed);
    pb::Personal {
        name: plain(q.name),
        gender: plain(q.gender),
        birthday: plain(q.birthday),
        phone: plain(q.phone),
        email: plain(q.email),
        id_number: plain(q.id_number),
        address: plain(q.address),
    }
}

fn consents_from(c: pb::Consents) -> Consents {
    Consents {
        sms: c.sms,
        email: c.email,
        app: c.app,
    }
}

pub fn profile_input(r: pb::RegisterMemberRequest) -> ProfileInput {
    ProfileInput {
        personal: r.personal.map(personal_from).unwrap_or_default(),
        channel: given(r.channel),
        store: given(r.store),
        consents: r.consents.map(consents_from).unwrap_or_default(),
        attributes: r.attributes.into_iter().collect(),
        tags: r.tags.into_iter().collect(),
    }
}

/// The patch of an update; a field both set and cleared (or removed) is refused rather than
/// guessed at.
pub fn profile_patch(r: pb::UpdateProfileRequest) -> ServiceResult<ProfilePatch> {
    let mut personal = BTreeMap::new();
    let set = personal_from(r.personal.unwrap_or_default());
    for name in Personal::FIELDS {
        if let Some(value) = set.get(name) {
            personal.insert(name.to_string(), Some(value.clone()));
        }
    }
    for name in r.clear_personal {
        if personal.insert(name.clone(), None).is_some() {
            return Err(ServiceError::invalid(format!(
                "{name} is both set and cleared"
            )));
        }
    }
    let mut attributes: BTreeMap<String, Option<String>> = r
        .set_attributes
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    for name in r.remove_attributes {
        if attributes.insert(name.clone(), None).is_some() {
            return Err(ServiceError::invalid(format!(
                "attribute {name} is both set and removed"
            )));
        }
    }
    Ok(ProfilePatch {
        personal,
        consents: r.consents.map(consents_from),
        attributes,
    })
}

pub fn profile(p: Profile) -> pb::Profile {
    pb::Profile {
        member_id: p.member_id,
        personal: Some(personal_to(p.personal)),
        channel: p.channel.unwrap_or_default(),
        store: p.store.unwrap_or_default(),
        consents: Some(pb::Consents {
            sms: p.consents.sms,
            email: p.consents.email,
            app: p.consents.app,
        }),
        attributes: p.attributes.into_iter().collect(),
        tags: p.tags.into_iter().collect(),
        tier: p.tier.unwrap_or_default(),
        created_at_ms: p.created_at.0,
        updated_at_ms: p.updated_at.0,
        version: p.version,
    }
}

pub fn order_input(r: pb::RecordOrderRequest) -> OrderInput {
    OrderInput {
        order_id: r.order_id,
        at: r.at_ms.map(Timestamp),
        total: r.total,
        lines: r
            .lines
            .into_iter()
            .map(|l| OrderLine {
                sku: l.sku,
                category: l.category,
                amount: l.amount,
            })
            .collect(),
        store: given(r.store),
        channel: given(r.channel),
        refund_of: given(r.refund_of),
    }
}

pub fn order(o: Order) -> pb::Order {
    pb::Order {
        order_id: o.order_id,
        member_id: o.member,
        at_ms: o.at.0,
        total: o.total,
        lines: o
            .lines
            .into_iter()
            .map(|l| pb::OrderLine {
                sku: l.sku,
                category: l.category,
                amount: l.amount,
            })
            .collect(),
        store: o.store.unwrap_or_default(),
        channel: o.channel.unwrap_or_default(),
        refund_of: o.refund_of.unwrap_or_default(),
        points: o.points,
        recorded_at_ms: o.recorded_at.0,
    }
}

fn lifecycle(l: Lifecycle) -> &'static str {
    match l {
        Lifecycle::New => "new",
        Lifecycle::Active => "active",
        Lifecycle::AtRisk => "at_risk",
        Lifecycle::Dormant => "dormant",
    }
}

/// The member's activity as of `now` (the rolling 12 months end with now's month).
pub fn activity(f: MemberFacts, now: Timestamp) -> pb::Activity {
    pb::Activity {
        spend_12m: f.spend_12m(now),
        orders_12m: f.orders_12m(now),
        member_id: f.member_id,
        tier: f.tier.unwrap_or_default(),
        lifetime_spend: f.lifetime_spend,
        lifetime_orders: f.lifetime_orders,
        first_order_at_ms: ms(f.first_order_at),
        last_order_at_ms: ms(f.last_order_at),
        rfm: f.rfm.map(|r| pb::Rfm {
            recency: r.recency.into(),
            frequency: r.frequency.into(),
            monetary: r.monetary.into(),
        }),
        churn_risk: f.churn_risk,
        lifecycle: lifecycle(f.lifecycle).into(),
        tier_state_json: f.tier_state.as_ref().map(json).unwrap_or_default(),
        erased: f.erased,
    }
}

pub fn erasure(s: ErasureStatus) -> pb::ErasureStatus {
    pb::ErasureStatus {
        member_id: s.member,
        state: match s.state {
            ErasureState::None => "none",
            ErasureState::Completed => "completed",
        }
        .into(),
        requested_at_ms: ms(s.requested_at),
        completed_at_ms: ms(s.completed_at),
        due_by_ms: ms(s.due_by),
    }
}

pub fn merge(r: MergeRecord) -> pb::Merge {
    pb::Merge {
        merge_id: r.id,
        survivor_member_id: r.survivor,
        duplicate_member_id: r.duplicate,
        state: match r.state {
            MergeState::Applied => "applied",
            MergeState::Reversed => "reversed",
        }
        .into(),
        merged_at_ms: r.merged_at.0,
        reversed_at_ms: ms(r.reversed_at),
        tags_added: r.tags_added,
        orders_moved: r.orders_moved,
        lifetime_spend_moved: r.lifetime_spend_moved,
        points_moved: r.points_moved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_common::personal::Exposed;

    #[test]
    fn an_update_sets_given_fields_clears_named_ones_and_keeps_the_rest() {
        let patch = profile_patch(pb::UpdateProfileRequest {
            personal: Some(pb::Personal {
                email: Some("a@example.cn".into()),
                ..Default::default()
            }),
            clear_personal: vec!["address".into()],
            set_attributes: [("size".to_string(), "m".to_string())].into(),
            remove_attributes: vec!["colour".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(patch.personal.len(), 2);
        assert_eq!(patch.personal["email"].exposed(), Some("a@example.cn"));
        assert_eq!(patch.personal["address"], None);
        assert_eq!(patch.attributes["size"].as_deref(), Some("m"));
        assert_eq!(patch.attributes["colour"], None);
        assert_eq!(patch.consents, None);
    }

    #[test]
    fn a_field_both_set_and_cleared_is_refused() {
        let err = profile_patch(pb::UpdateProfileRequest {
            personal: Some(pb::Personal {
                phone: Some("13812345678".into()),
                ..Default::default()
            }),
            clear_personal: vec!["phone".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.code, loyalty_common::error::ErrorCode::InvalidArgument);
    }

    #[test]
    fn empty_strings_and_zero_times_are_none() {
        let input = order_input(pb::RecordOrderRequest {
            order_id: "o-1".into(),
            total: 100,
            ..Default::default()
        });
        assert_eq!(
            (input.at, input.store, input.channel, input.refund_of),
            (None, None, None, None)
        );
    }
}
