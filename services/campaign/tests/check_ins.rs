//! Daily check-in through the campaign service on the embedded store, under a controlled
//! clock: one check-in per local day in the campaign's time zone (across midnight in
//! Shanghai, across both daylight-saving changes in New York), a streak that grows on
//! consecutive days and restarts after a missed one, a bonus on the cycle's third day, and a
//! retry the same day paid once.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use chrono::TimeZone;
use chrono_tz::Tz;
use loyalty_campaign::campaign::{
    Actions, Audience, Campaign, Reward, Schedule, StreakBonus, Trigger, Variant,
};
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_common::Timestamp;
use loyalty_common::clock::ManualClock;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_ledger::client::LedgerClient;
use std::sync::Arc;

mod support;
use support::Ledger;

fn campaign(id: &str, zone: &str) -> Campaign {
    Campaign {
        id: id.into(),
        name: "Daily check-in".into(),
        audience: Audience::Everyone,
        variants: vec![Variant {
            id: "day".into(),
            weight: 1,
            reward: Reward::Points { points: 10 },
        }],
        holdout_percent: 0,
        schedule: Schedule {
            starts: "2027-01-01".into(),
            ends: Some("2027-12-31".into()),
            time_zone: zone.into(),
        },
        budget: None,
        frequency_cap: None,
        trigger: Some(Trigger::CheckIn {
            streak_bonuses: vec![StreakBonus { day: 3, points: 20 }],
            cycle_days: Some(3),
        }),
        actions: Actions::default(),
        attribution_days: None,
    }
}

struct World {
    campaigns: Campaigns,
    ledger: Arc<Ledger>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CampaignRepository> =
        Arc::new(EmbeddedCampaignStore::open(dir.path()).unwrap());
    let ledger = Arc::new(Ledger::default());
    let clock = ManualClock::new(Timestamp(1_798_761_600_000)); // 2027-01-01T00:00Z
    let campaigns = Campaigns::with_clock(store, None, clock.clone())
        .with_ledger(Arc::clone(&ledger) as Arc<dyn LedgerClient>);
    let tenant = TenantId::parse("acme").unwrap();
    for (id, zone) in [
        ("SHANGHAI", "Asia/Shanghai"),
        ("NEW-YORK", "America/New_York"),
    ] {
        support::approve(&campaigns, &tenant, campaign(id, zone)).await;
    }
    World {
        campaigns,
        ledger,
        clock,
        tenant,
        _dir: dir,
    }
}

impl World {
    /// Checks m1 in to `id` at local time `at` (the earlier instant of an ambiguous one, or
    /// the later with `later`): (date, streak, points, new).
    async fn at(
        &self,
        id: &str,
        zone: Tz,
        at: (i32, u32, u32, u32, u32),
        later: bool,
    ) -> (String, u32, i64, bool) {
        let local = zone.with_ymd_and_hms(at.0, at.1, at.2, at.3, at.4, 0);
        let instant = if later {
            local.latest()
        } else {
            local.earliest()
        }
        .unwrap();
        self.clock.set(Timestamp(instant.timestamp_millis()));
        let member = MemberId::parse("m1").unwrap();
        let c = self
            .campaigns
            .check_in(&self.tenant, id, &member)
            .await
            .unwrap();
        (c.date, c.streak, c.points, c.new)
    }
}

fn day(date: &str, streak: u32, points: i64, new: bool) -> (String, u32, i64, bool) {
    (date.to_string(), streak, points, new)
}

#[tokio::test]
async fn one_check_in_per_local_day_across_midnight_in_shanghai() {
    let w = world().await;
    let sh = chrono_tz::Asia::Shanghai;
    let at = |d, h, m| (2027, 1, d, h, m);
    assert_eq!(
        w.at("SHANGHAI", sh, at(14, 23, 59), false).await,
        day("2027-01-14", 1, 10, true)
    );
    assert_eq!(
        w.at("SHANGHAI", sh, at(15, 0, 1), false).await,
        day("2027-01-15", 2, 10, true),
        "two minutes later, past midnight: the next day"
    );
    assert_eq!(
        w.at("SHANGHAI", sh, at(15, 23, 58), false).await,
        day("2027-01-15", 2, 10, false),
        "the same local day: the same check-in"
    );
    assert_eq!(
        w.at("SHANGHAI", sh, at(16, 8, 0), false).await,
        day("2027-01-16", 3, 30, true),
        "the third day of the cycle: 10 and the bonus of 20"
    );
    assert_eq!(
        w.at("SHANGHAI", sh, at(17, 8, 0), false).await,
        day("2027-01-17", 4, 10, true)
    );
    assert_eq!(
        w.at("SHANGHAI", sh, at(19, 8, 0), false).await,
        day("2027-01-19", 1, 10, true),
        "the 18th missed: the streak restarts"
    );
    assert_eq!(
        w.ledger.balance("m1"),
        10 + 10 + 30 + 10 + 10,
        "each day paid once"
    );
}

#[tokio::test]
async fn one_check_in_per_local_day_across_daylight_saving_changes_in_new_york() {
    let w = world().await;
    let ny = chrono_tz::America::New_York;
    // Clocks go forward at 02:00 on 14 March 2027 and back at 02:00 on 7 November 2027.
    assert_eq!(
        w.at("NEW-YORK", ny, (2027, 3, 13, 23, 30), false).await,
        day("2027-03-13", 1, 10, true)
    );
    assert_eq!(
        w.at("NEW-YORK", ny, (2027, 3, 14, 0, 30), false).await,
        day("2027-03-14", 2, 10, true)
    );
    for (h, m) in [(3, 30), (23, 30)] {
        assert_eq!(
            w.at("NEW-YORK", ny, (2027, 3, 14, h, m), false).await,
            day("2027-03-14", 2, 10, false),
            "a 23-hour day is one day"
        );
    }
    assert_eq!(
        w.at("NEW-YORK", ny, (2027, 3, 15, 0, 10), false).await,
        day("2027-03-15", 3, 30, true)
    );
    assert_eq!(
        w.at("NEW-YORK", ny, (2027, 11, 7, 1, 30), false).await,
        day("2027-11-07", 1, 10, true)
    );
    assert_eq!(
        w.at("NEW-YORK", ny, (2027, 11, 7, 1, 30), true).await,
        day("2027-11-07", 1, 10, false),
        "01:30 again, an hour later (a 25-hour day): the same day"
    );
    assert_eq!(
        w.at("NEW-YORK", ny, (2027, 11, 8, 0, 0), false).await,
        day("2027-11-08", 2, 10, true)
    );
    assert_eq!(w.ledger.balance("m1"), 10 + 10 + 30 + 10 + 10);
}
