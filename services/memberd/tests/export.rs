//! `memberd export`: masked by default, every member once, erased members by id only; an
//! unmasked export is in the tenant's audit chain before the file is written.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_common::ids::{MemberId, TenantId};
use loyalty_identity::audit_log::AuditLog;
use loyalty_identity::store::embedded::EmbeddedIdentityStore;
use loyalty_member::service::ProfileInput;
use memberd::config::MemberdConfig;
use std::sync::Arc;

#[tokio::test]
async fn an_export_is_masked_unless_asked_and_an_unmasked_one_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let config = MemberdConfig {
        data_dir: dir.path().to_path_buf(),
        ..MemberdConfig::default()
    };
    let members = memberd::members::start(&config, None).unwrap();
    let acme = TenantId::parse("acme").unwrap();
    for n in 1..=3 {
        let mut input = ProfileInput::default();
        input.personal.name = Some("王小明".into());
        input.personal.phone = Some(format!("1381234567{n}").into());
        let member = MemberId::parse(format!("m{n}")).unwrap();
        members.register(&acme, &member, input).await.unwrap();
    }
    members
        .erase(&acme, &MemberId::parse("m3").unwrap())
        .await
        .unwrap();

    let masked = dir.path().join("masked.csv");
    let count = memberd::export::run(&config, &members, &acme, &masked, false, |_| {})
        .await
        .unwrap();
    assert_eq!(count, 3);
    let text = std::fs::read_to_string(&masked).unwrap();
    assert!(
        text.contains("138****5671") && text.contains("王**"),
        "{text}"
    );
    assert!(
        !text.contains("13812345671") && !text.contains("王小明"),
        "{text}"
    );
    let erased = text.lines().find(|l| l.starts_with("m3,")).unwrap();
    assert!(
        erased.ends_with(",true") && !erased.contains("138"),
        "{erased}"
    );

    let clear = dir.path().join("clear.csv");
    memberd::export::run(&config, &members, &acme, &clear, true, |_| {})
        .await
        .unwrap();
    assert!(
        std::fs::read_to_string(&clear)
            .unwrap()
            .contains("13812345671")
    );
    let store = EmbeddedIdentityStore::open(&dir.path().join("identity")).unwrap();
    let log = AuditLog::start(Arc::new(store));
    let records = log.records("acme", 1, 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event.action, "member.export_unmasked");
    assert!(records[0].event.target.ends_with("clear.csv"));
}
