//! The birthday sweep under a controlled clock, with the real member service (its birthday
//! index on the embedded store) behind the campaign service: birthdays fall on the day of
//! each campaign's own time zone, `days_before` moves the day, a member born on 29 February
//! is greeted on 28 February in a common year, and sweeping again rewards no one twice.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::campaign::{Actions, Audience, Campaign, Reward, Schedule, Trigger, Variant};
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_common::Timestamp;
use loyalty_common::clock::ManualClock;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_ledger::client::LedgerClient;
use loyalty_member::client::{InProcessMembers, MemberClient};
use loyalty_member::profile::Personal;
use loyalty_member::service::{Members, ProfileInput};
use loyalty_member::store::EmbeddedMemberStore;
use loyalty_member::vault::MasterKey;
use std::sync::Arc;

mod support;
use support::Ledger;

/// 2027-02-27T17:00Z: 28 February 01:00 in Shanghai, 27 February noon in New York.
const LEAP_EVE: i64 = 1_803_747_600_000;
/// 2027-03-06T16:30Z: 7 March 00:30 in Shanghai, 6 March 11:30 in New York.
const MARCH_7_SHANGHAI: i64 = 1_804_350_600_000;

fn campaign(id: &str, zone: &str, days_before: u32, points: i64) -> Campaign {
    Campaign {
        id: id.into(),
        name: "Happy birthday".into(),
        audience: Audience::Everyone,
        variants: vec![Variant {
            id: "gift".into(),
            weight: 1,
            reward: Reward::Points { points },
        }],
        holdout_percent: 0,
        schedule: Schedule {
            starts: "2027-01-01".into(),
            ends: Some("2027-12-31".into()),
            time_zone: zone.into(),
        },
        budget: None,
        frequency_cap: None,
        trigger: Some(Trigger::Birthday { days_before }),
        actions: Actions::default(),
        attribution_days: None,
    }
}

#[tokio::test]
async fn birthdays_are_swept_in_each_campaigns_time_zone_once_a_year() {
    let (members_dir, campaigns_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(Timestamp(LEAP_EVE));
    let member_store = EmbeddedMemberStore::open(members_dir.path()).unwrap();
    let master = MasterKey::generate().unwrap().0;
    let members = Arc::new(Members::new(Arc::new(member_store), master, clock.clone()));
    let tenant = TenantId::parse("acme").unwrap();
    for (m, born) in [
        ("m1", "1990-03-07"),
        ("m2", "1992-02-29"),
        ("m3", "1985-03-06"),
    ] {
        let input = ProfileInput {
            personal: Personal {
                birthday: Some(born.into()),
                ..Personal::default()
            },
            ..ProfileInput::default()
        };
        let member = MemberId::parse(m).unwrap();
        members.register(&tenant, &member, input).await.unwrap();
    }
    let store: Arc<dyn CampaignRepository> =
        Arc::new(EmbeddedCampaignStore::open(campaigns_dir.path()).unwrap());
    let ledger = Arc::new(Ledger::default());
    let client: Arc<dyn MemberClient> = Arc::new(InProcessMembers::new(members));
    let campaigns = Campaigns::with_clock(store, Some(client), clock.clone())
        .with_ledger(Arc::clone(&ledger) as Arc<dyn LedgerClient>);
    for c in [
        campaign("SHANGHAI", "Asia/Shanghai", 0, 10),
        campaign("NEW-YORK", "America/New_York", 0, 10),
        campaign("A-WEEK-AHEAD", "Asia/Shanghai", 7, 100),
    ] {
        support::approve(&campaigns, &tenant, c).await;
    }
    let balances = || ["m1", "m2", "m3"].map(|m| ledger.balance(m));

    // 28 February in Shanghai, a common year: m2 (born 29 February) is greeted; a week
    // ahead reaches 7 March (m1) and, for the day before, 6 March (m3). New York is still
    // on 27 February: no one.
    campaigns.sweep_birthdays().await.unwrap();
    assert_eq!(balances(), [100, 10, 100]);

    // 7 March in Shanghai (m1 today, m3 yesterday, made up), 6 March in New York (m3).
    clock.set(Timestamp(MARCH_7_SHANGHAI));
    campaigns.sweep_birthdays().await.unwrap();
    assert_eq!(balances(), [110, 10, 120]);
    let again = campaigns.sweep_birthdays().await.unwrap();
    assert_eq!(balances(), [110, 10, 120], "once per member and year");
    assert_eq!(
        again.rewarded, 3,
        "the second sweep finds the first one's rewards"
    );
}
