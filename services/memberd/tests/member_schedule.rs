//! memberd's scheduled member work, end to end: the loop `memberd` runs refreshes a segment
//! whose schedule is due without anyone asking, runs the review turn (tiers, scores, purge)
//! without failing, and stops when the process shuts down. In two regions it does a tenant's
//! work only in the tenant's home, while that region holds its lease.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_common::ids::{MemberId, TenantId};
use loyalty_member::service::Members;
use loyalty_member::service::{ProfileInput, SegmentInput};
use loyalty_region::background::SharedView;
use loyalty_region::lease::TTL;
use loyalty_region::{Epoch, Home, Region};
use memberd::config::{MemberSettings, MemberdConfig};
use memberd::roles::platform::PlatformWork;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The member service of a one-process memberd whose data is in `dir`, and its settings.
fn members_in(dir: &std::path::Path) -> (MemberdConfig, Arc<Members>) {
    let config = MemberdConfig {
        data_dir: dir.to_path_buf(),
        ..MemberdConfig::default()
    };
    let members = memberd::members::start(&config, None).unwrap();
    (config, members)
}

/// The schedule's loop with a turn every second and a review at each: how to stop it, and
/// its task.
fn start_schedule(
    config: &MemberdConfig,
    members: &Arc<Members>,
    regions: Option<SharedView>,
) -> (watch::Sender<bool>, JoinHandle<()>) {
    let settings = MemberSettings {
        segments_check_secs: 1,
        review_interval_secs: 1,
        ..MemberSettings::default()
    };
    let (stop, stopped) = watch::channel(false);
    // One process: the platform's work needs no service credential.
    let platform = PlatformWork::of(config, "member").unwrap();
    let lease = Arc::new(memberd::schedule::SchedulerLease::Sole);
    let schedule = memberd::members::schedule(
        Arc::clone(members),
        settings,
        platform,
        lease,
        stopped,
        regions,
    );
    (stop, tokio::spawn(schedule))
}

#[tokio::test]
async fn the_schedule_refreshes_due_segments_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (config, members) = members_in(dir.path());
    let acme = TenantId::parse("acme").unwrap();
    for n in 1..=3 {
        let mut input = ProfileInput::default();
        input.personal.phone = Some(format!("1381234567{n}").into());
        if n < 3 {
            input.tags.insert("vip".into());
        }
        let member = MemberId::parse(format!("m{n}")).unwrap();
        members.register(&acme, &member, input).await.unwrap();
    }
    // An erased member: the review turn purges its old rows.
    members
        .erase(&acme, &MemberId::parse("m2").unwrap())
        .await
        .unwrap();
    let scheduled = SegmentInput {
        name: "VIPs".into(),
        query: serde_json::json!({"tag": "vip"}),
        refresh_minutes: Some(60),
    };
    members.put_segment(&acme, "vips", scheduled).await.unwrap();
    let on_demand = SegmentInput {
        name: "Everyone".into(),
        query: serde_json::json!({"not": {"tag": "nobody"}}),
        refresh_minutes: None,
    };
    members.put_segment(&acme, "all", on_demand).await.unwrap();

    let (stop, schedule) = start_schedule(&config, &members, None);

    let deadline = Instant::now() + Duration::from_secs(20);
    let refresh = loop {
        let segment = members.segment(&acme, "vips").await.unwrap();
        if let Some(refresh) = segment.last_refresh {
            break refresh;
        }
        assert!(
            Instant::now() < deadline,
            "the schedule did not refresh the due segment"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // m2 was erased, so it left every segment: only m1 is a VIP now.
    assert_eq!(refresh.count, 1);
    // A few more turns, reviews included; the segment is not due again for an hour.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let again = members.segment(&acme, "vips").await.unwrap();
    assert_eq!(again.last_refresh.unwrap().generation, refresh.generation);
    let manual = members.segment(&acme, "all").await.unwrap();
    assert!(
        manual.last_refresh.is_none(),
        "a segment without a schedule is refreshed on demand only"
    );

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), schedule)
        .await
        .expect("the schedule stops on shutdown")
        .unwrap();
}

/// Region `a`'s view: acme homed in `home`, and a's lease held.
fn read_homes(view: &SharedView, home: &str, epoch: u64) {
    let home = Home {
        region: Region::parse(home).unwrap(),
        epoch: Epoch(epoch),
        moving: false,
    };
    let sent = view.now();
    view.update(|v| {
        v.homes_read(Epoch(epoch), [("acme".to_string(), home)]);
        v.own_row_read(sent, Some(TTL), Epoch(epoch));
    });
}

#[tokio::test]
async fn in_two_regions_the_schedule_does_only_its_home_tenants_work() {
    let dir = tempfile::tempdir().unwrap();
    let (config, members) = members_in(dir.path());
    let acme = TenantId::parse("acme").unwrap();
    let mut input = ProfileInput::default();
    input.tags.insert("vip".into());
    let m1 = MemberId::parse("m1").unwrap();
    members.register(&acme, &m1, input).await.unwrap();
    let scheduled = SegmentInput {
        name: "VIPs".into(),
        query: serde_json::json!({"tag": "vip"}),
        refresh_minutes: Some(60),
    };
    members.put_segment(&acme, "vips", scheduled).await.unwrap();

    // This is region a; acme is homed in b.
    let view = SharedView::new(Region::parse("a").unwrap(), Region::parse("b").unwrap());
    read_homes(&view, "b", 3);
    let (stop, schedule) = start_schedule(&config, &members, Some(view.clone()));
    // Several turns: the due segment is b's to refresh.
    for _ in 0..6 {
        read_homes(&view, "b", 3);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let segment = members.segment(&acme, "vips").await.unwrap();
    assert!(
        segment.last_refresh.is_none(),
        "region a refreshed b's tenant's segment"
    );

    // acme moved here: a refreshes it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        read_homes(&view, "a", 4);
        let segment = members.segment(&acme, "vips").await.unwrap();
        if segment.last_refresh.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a did not refresh its own tenant's segment"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), schedule)
        .await
        .expect("the schedule stops on shutdown")
        .unwrap();
}
