//! Members by birthday: listed by month and day as their profiles change, validated, and
//! the index rebuilt for members registered before it.

use super::*;
use crate::store::EmbeddedMemberStore;
use loyalty_common::ManualClock;

struct Harness {
    members: Members,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedMemberStore::open(dir.path()).unwrap();
    let master = MasterKey::generate().unwrap().0;
    let clock = ManualClock::new(Timestamp(1_800_000_000_000));
    Harness {
        members: Members::new(Arc::new(store), master, clock),
        _dir: dir,
    }
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn member(name: &str) -> MemberId {
    MemberId::parse(name).unwrap()
}

fn born(birthday: Option<&str>) -> ProfileInput {
    let mut input = ProfileInput::default();
    input.personal.birthday = birthday.map(PersonalData::from);
    input
}

impl Harness {
    async fn register(&self, t: &str, m: &str, birthday: Option<&str>) {
        self.members
            .register(&tenant(t), &member(m), born(birthday))
            .await
            .unwrap();
    }

    /// Every member of `t` born on `month`/`day`, a page of 1,000.
    async fn born_on(&self, t: &str, month: u32, day: u32) -> Vec<String> {
        let (page, _) = self
            .members
            .members_born_on(&tenant(t), month, day, None, 1_000)
            .await
            .unwrap();
        page
    }

    async fn set_birthday(&self, m: &str, birthday: Option<&str>) {
        let patch = ProfilePatch {
            personal: [("birthday".to_string(), birthday.map(PersonalData::from))].into(),
            ..ProfilePatch::default()
        };
        self.members
            .update(&tenant("acme"), &member(m), patch)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn members_are_listed_by_month_and_day_in_pages() {
    let h = harness();
    h.register("acme", "m2", Some("1985-03-07")).await;
    h.register("acme", "m1", Some("1990-03-07")).await;
    h.register("acme", "m3", Some("1990-07-03")).await;
    h.register("acme", "m4", None).await;
    h.register("globex", "g1", Some("1990-03-07")).await;
    assert_eq!(h.born_on("acme", 3, 7).await, ["m1", "m2"]);
    assert_eq!(h.born_on("acme", 7, 3).await, ["m3"]);
    assert!(h.born_on("acme", 1, 1).await.is_empty());
    assert_eq!(h.born_on("globex", 3, 7).await, ["g1"]);

    let acme = tenant("acme");
    let first = h.members.members_born_on(&acme, 3, 7, None, 1).await;
    assert_eq!(first.unwrap(), (vec!["m1".into()], Some("m1".into())));
    let second = h.members.members_born_on(&acme, 3, 7, Some("m1"), 1).await;
    assert_eq!(second.unwrap(), (vec!["m2".into()], Some("m2".into())));
    let last = h.members.members_born_on(&acme, 3, 7, Some("m2"), 1).await;
    assert_eq!(last.unwrap(), (vec![], None));
}

#[tokio::test]
async fn february_29_is_listed_on_its_own_day() {
    let h = harness();
    h.register("acme", "leap1", Some("2000-02-29")).await;
    h.register("acme", "leap2", Some("1996-02-29")).await;
    h.register("acme", "feb28", Some("1999-02-28")).await;
    assert_eq!(h.born_on("acme", 2, 29).await, ["leap1", "leap2"]);
    assert_eq!(h.born_on("acme", 2, 28).await, ["feb28"]);
    assert!(h.born_on("acme", 3, 1).await.is_empty());
}

#[tokio::test]
async fn a_month_or_day_that_is_no_birthday_is_refused_naming_it() {
    let h = harness();
    let acme = tenant("acme");
    for (month, day, field) in [
        (0, 1, "month"),
        (13, 1, "month"),
        (1, 0, "day"),
        (1, 32, "day"),
        (2, 30, "day"),
        (4, 31, "day"),
    ] {
        let err = h
            .members
            .members_born_on(&acme, month, day, None, 10)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument, "{month}-{day}");
        assert!(
            err.message.starts_with(field),
            "{month}-{day}: {}",
            err.message
        );
    }
}

#[tokio::test]
async fn a_birthday_that_is_not_a_date_is_refused_without_its_value() {
    let h = harness();
    let acme = tenant("acme");
    let err = h
        .members
        .register(&acme, &member("m1"), born(Some("1990/03/07")))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(err.message.contains("birthday"), "{}", err.message);
    assert!(!err.message.contains("1990"), "{}", err.message);
    h.register("acme", "m1", Some("1990-03-07")).await;
    let patch = ProfilePatch {
        personal: [("birthday".to_string(), Some("1991-02-29".into()))].into(),
        ..ProfilePatch::default()
    };
    let err = h
        .members
        .update(&acme, &member("m1"), patch)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert_eq!(h.born_on("acme", 3, 7).await, ["m1"]);
}

#[tokio::test]
async fn the_index_follows_changes_erasure_and_merges() {
    let h = harness();
    let acme = tenant("acme");
    h.register("acme", "m1", Some("1990-03-07")).await;
    h.register("acme", "m2", Some("1985-03-07")).await;
    h.register("acme", "m3", None).await;

    h.set_birthday("m1", Some("1990-12-24")).await;
    assert_eq!(h.born_on("acme", 3, 7).await, ["m2"]);
    assert_eq!(h.born_on("acme", 12, 24).await, ["m1"]);
    h.set_birthday("m1", None).await;
    assert!(h.born_on("acme", 12, 24).await.is_empty());
    h.set_birthday("m3", Some("2001-12-24")).await;
    assert_eq!(h.born_on("acme", 12, 24).await, ["m3"]);

    // Merged away: out of the sweep; the reversal brings it back.
    let merge = h
        .members
        .merge(&acme, &member("m1"), &member("m2"))
        .await
        .unwrap();
    assert!(h.born_on("acme", 3, 7).await.is_empty());
    h.members.reverse_merge(&acme, &merge.id).await.unwrap();
    assert_eq!(h.born_on("acme", 3, 7).await, ["m2"]);

    h.members.erase(&acme, &member("m3")).await.unwrap();
    assert!(h.born_on("acme", 12, 24).await.is_empty());
}

#[tokio::test]
async fn a_rebuild_indexes_members_registered_before_the_index() {
    let h = harness();
    let acme = tenant("acme");
    for (m, birthday) in [
        ("m1", Some("1990-03-07")),
        ("m2", Some("1985-03-07")),
        ("m3", Some("1970-01-01")),
        ("m4", None),
    ] {
        h.register("acme", m, birthday).await;
    }
    h.members.erase(&acme, &member("m3")).await.unwrap();
    // As registered before the index: profiles that hold none, and no rows.
    let repo = h.members.repository();
    for m in ["m1", "m2"] {
        let mut stored = repo.profile(&acme, &member(m)).await.unwrap().unwrap();
        let released_birthday = stored.birthday.take();
        stored.version += 1;
        let write = MemberWrite {
            tenant: "acme".into(),
            member: m.into(),
            profile: Some(stored),
            released_birthday,
            ..MemberWrite::default()
        };
        assert_eq!(repo.write(write).await.unwrap(), Written::Yes);
    }
    assert!(h.born_on("acme", 3, 7).await.is_empty());

    let run = h.members.rebuild_birthday_index(&acme).await.unwrap();
    assert_eq!(
        run,
        BirthdayRebuild {
            members: 4,
            changed: 2
        }
    );
    assert_eq!(h.born_on("acme", 3, 7).await, ["m1", "m2"]);
    assert!(h.born_on("acme", 1, 1).await.is_empty(), "m3 is erased");
    let again = h.members.rebuild_birthday_index(&acme).await.unwrap();
    assert_eq!(again.changed, 0, "a second run changes nothing");
    // The profiles read as before.
    let p = h
        .members
        .profile(&acme, &member("m1"), View::Unmasked)
        .await;
    assert_eq!(p.unwrap().personal.birthday, Some("1990-03-07".into()));
}
