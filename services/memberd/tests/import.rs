//! `memberd import` on messy files: a GBK export with bad phones, emails and dates, duplicate
//! ids and ID numbers, broken quoting and missing fields gives the right report and imports
//! exactly the valid rows; a missing column stops it before anything is written; a dry run
//! finds the same problems and writes nothing; JSON Lines take the same mapping; an import
//! killed with SIGKILL resumes without duplicates; a checkpoint is not applied to a changed file.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::personal::Exposed;
use loyalty_common::{ErrorCode, SystemClock};
use loyalty_member::profile::{IndexKind, Personal};
use loyalty_member::service::{Members, ProfileInput, View};
use loyalty_member::store::EmbeddedMemberStore;
use loyalty_member::vault::MasterKey;
use memberd::import::{ImportArgs, Summary};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HEADER: &str = "会员编号,姓名,性别,生日,手机,邮箱,身份证号,开卡门店,短信营销,标签,城市";

const MAPPING: &str = r#"encoding = "gbk"
tag_separator = "|"

[fields]
member_id = "会员编号"
name = "姓名"
gender = "性别"
birthday = "生日"
phone = "手机"
email = "邮箱"
id_number = "身份证号"
store = "开卡门店"
consent_sms = "短信营销"
tags = "标签"

[attributes]
city = "城市"

[values.gender]
"男" = "m"
"女" = "f"
"#;

/// The messy export, line by line (line 1 is the header).
const MESSY: &[&str] = &[
    HEADER,
    // 2, 3: good.
    "M001,王小明,男,1990-03-07,13800000001,wang@example.cn,110101199003070011,S001,是,vip|gold,上海",
    "M002,李华,女,1985/12/01,138 0000 0002,Li.Hua@Example.cn,110101198512010022,S002,否,,北京",
    // 4: a bad phone.
    "M003,张伟,男,1979-05-05,12345,zhang@example.cn,110101197905050033,S001,1,,广州",
    // 5: a bad email.
    "M004,赵敏,女,1992-02-02,13800000004,zhao.example.cn,110101199202020044,S001,0,,深圳",
    // 6: a bad birthday.
    "M005,刘洋,男,1990-13-45,13800000005,liu@example.cn,110101199001010055,S003,1,,杭州",
    // 7: the member id of row 2 again (another batch: the store has it by then).
    "M001,陈静,女,1991-01-01,13800000007,chen@example.cn,110101199101010077,S001,1,,成都",
    // 8: good.
    "M006,杨磊,男,1970-01-01,13800000008,yang@example.cn,110101197001010088,S004,y,new,南京",
    // 9: the ID number of row 8, in the same batch.
    "M007,黄丽,女,1988-08-08,13800000009,huang@example.cn,110101197001010088,S004,n,,武汉",
    // 10: the phone of a member registered before the import.
    "M008,吴刚,男,1975-07-07,13900000000,wu@example.cn,110101197507070100,S005,1,,上海",
    // 11: too few fields.
    "M009,周杰,男",
    // 12: broken quoting: the quote opened in the name closes on line 13, which it swallows.
    "M010,\"孙芳,女,1993-03-03,13800000012,sun@example.cn,110101199303030120,S001,1,,北京",
    "M011,郑\"秀,女,1994-04-04,13800000013,zheng@example.cn,110101199404040130,S001,1,,北京",
    // 14: good.
    "M012,欧阳娜,女,2000/02/29,13800000014,ouyang@example.cn,11010120000229014X,S006,TRUE,app|family,广州",
    // 15: a bad consent flag.
    "M013,马超,男,1980-10-10,13800000015,ma@example.cn,110101198010100150,S001,maybe,,上海",
    // 16: good.
    "M014,朱秀英,女,1966-06-16,+86 138-0000-0016,zhu@example.cn,110101196606160160,S007,1,student,成都",
];

/// Rows that must be imported: (line, member id, phone).
const IMPORTED: &[(u64, &str, &str)] = &[
    (2, "M001", "13800000001"),
    (3, "M002", "13800000002"),
    (8, "M006", "13800000008"),
    (14, "M012", "13800000014"),
    (16, "M014", "13800000016"),
];

/// Members the import must not write, by phone (their rows are rejected or swallowed).
const REJECTED_PHONES: &[&str] = &[
    "13800000004",
    "13800000005",
    "13800000007",
    "13800000009",
    "13800000012",
    "13800000013",
    "13800000015",
];

/// Values in the file that are personal data: none may appear in the report.
const PERSONAL: &[&str] = &[
    "王小明",
    "李华",
    "张伟",
    "赵敏",
    "刘洋",
    "陈静",
    "杨磊",
    "黄丽",
    "吴刚",
    "周杰",
    "孙芳",
    "欧阳娜",
    "马超",
    "朱秀英",
    "12345",
    "13800000",
    "13900000000",
    "example.cn",
    "zhao.example.cn",
    "1990-13-45",
    "1990-03-07",
    "110101",
];

struct Harness {
    members: Arc<Members>,
    tenant: TenantId,
    dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedMemberStore::open(&dir.path().join("store")).unwrap();
    let master = MasterKey::generate().unwrap().0;
    let members = Members::new(Arc::new(store), master, Arc::new(SystemClock::default()));
    Harness {
        members: Arc::new(members),
        tenant: TenantId::parse("acme").unwrap(),
        dir,
    }
}

impl Harness {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn args(&self, file: &Path, batch: usize) -> ImportArgs {
        ImportArgs {
            tenant: self.tenant.clone(),
            file: file.to_path_buf(),
            mapping: self.path("mapping.toml"),
            encoding: None,
            dry_run: false,
            report: Some(self.path("report.csv")),
            restart: false,
            batch,
        }
    }

    async fn import(&self, args: &ImportArgs) -> anyhow::Result<Summary> {
        memberd::import::run(&self.members, args, |_| {}).await
    }

    /// The report's lines after its header.
    fn report(&self) -> Vec<csv::StringRecord> {
        let mut reader = csv::Reader::from_path(self.path("report.csv")).unwrap();
        assert_eq!(
            reader.headers().unwrap(),
            &csv::StringRecord::from(vec!["row", "field", "reason"])
        );
        reader.records().map(Result::unwrap).collect()
    }

    async fn member_count(&self) -> usize {
        let repo = self.members.repository();
        let mut count = 0;
        let mut after: Option<String> = None;
        loop {
            let page = repo
                .profiles_page(&self.tenant, after.as_deref(), 1000)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.member_id.clone());
            count += page.len();
        }
        count
    }

    async fn find_phone(&self, phone: &str) -> Option<String> {
        self.members
            .find(&self.tenant, IndexKind::Phone, phone)
            .await
            .unwrap()
    }

    /// The messy file in GBK, the mapping, and a member registered before the import.
    async fn messy(&self) -> PathBuf {
        self.write("mapping.toml", MAPPING.as_bytes());
        let text = MESSY.join("\n") + "\n";
        let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
        assert!(!unmappable);
        assert!(
            std::str::from_utf8(&gbk).is_err(),
            "the file must not be UTF-8"
        );
        let mut before = ProfileInput::default();
        before.personal.phone = Some("13900000000".into());
        self.members
            .register(&self.tenant, &MemberId::parse("PRE1").unwrap(), before)
            .await
            .unwrap();
        self.write("messy.csv", &gbk)
    }
}

/// (row, field, a part of the reason) for every report line.
fn assert_report(report: &[csv::StringRecord], expected: &[(u64, &str, &str)]) {
    let lines: Vec<(u64, &str, &str)> = report
        .iter()
        .map(|r| (r[0].parse().unwrap(), &r[1], &r[2]))
        .collect();
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    for (line, want) in lines.iter().zip(expected) {
        assert_eq!((line.0, line.1), (want.0, want.1), "{lines:#?}");
        assert!(line.2.contains(want.2), "row {}: {:?}", line.0, line.2);
    }
    for line in &lines {
        for value in PERSONAL {
            assert!(!line.2.contains(value), "{value:?} in the report: {line:?}");
        }
    }
}

/// The report lines of the messy file that do not depend on batches or dry runs.
fn messy_report(member_dup: &str, id_dup: &str) -> Vec<(u64, &'static str, String)> {
    vec![
        (4, "phone", "not a valid phone".into()),
        (5, "email", "not a valid email".into()),
        (6, "birthday", "not a date in %Y-%m-%d".into()),
        (7, "member_id", member_dup.into()),
        (9, "id_number", id_dup.into()),
        (10, "phone", "phone belongs to member PRE1 already".into()),
        (11, "", "3 fields where the header has 11".into()),
        (12, "", "runs on over lines 13 to 13: broken quoting".into()),
        (15, "consent_sms", "not yes or no".into()),
    ]
}

fn borrowed<'a>(lines: &'a [(u64, &'static str, String)]) -> Vec<(u64, &'static str, &'a str)> {
    lines.iter().map(|(r, f, s)| (*r, *f, s.as_str())).collect()
}

const MESSY_SUMMARY: Summary = Summary {
    last_row: 16,
    rows: 14,
    imported: 5,
    invalid: 6,
    duplicates: 3,
};

#[tokio::test]
async fn a_messy_gbk_file_imports_exactly_its_valid_rows_and_reports_the_rest() {
    let h = harness();
    let file = h.messy().await;
    // Batches of 2 rows: row 7 repeats an id committed two batches earlier (found in the store),
    // row 9 an ID number of its own batch.
    let summary = h.import(&h.args(&file, 2)).await.unwrap();
    assert_eq!(summary, MESSY_SUMMARY);
    let expected = messy_report(
        "a member with this id exists already",
        "id_number belongs to the member of row 8 already",
    );
    assert_report(&h.report(), &borrowed(&expected));

    assert_eq!(h.member_count().await, IMPORTED.len() + 1);
    for (_, member, phone) in IMPORTED {
        assert_eq!(h.find_phone(phone).await.as_deref(), Some(*member));
    }
    for phone in REJECTED_PHONES {
        assert_eq!(h.find_phone(phone).await, None, "{phone}");
    }
    assert_eq!(h.find_phone("13900000000").await.as_deref(), Some("PRE1"));
    for missing in [
        "M003", "M004", "M005", "M007", "M008", "M009", "M010", "M011",
    ] {
        let err = h
            .members
            .profile(&h.tenant, &MemberId::parse(missing).unwrap(), View::Masked)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::MemberNotFound, "{missing}");
    }

    // What was imported is what the file says, decoded from GBK and translated by the mapping.
    let m1 = MemberId::parse("M001").unwrap();
    let p = h
        .members
        .profile(&h.tenant, &m1, View::Unmasked)
        .await
        .unwrap();
    assert_eq!(
        p.personal,
        Personal {
            name: Some("王小明".into()),
            gender: Some("m".into()),
            birthday: Some("1990-03-07".into()),
            phone: Some("13800000001".into()),
            email: Some("wang@example.cn".into()),
            id_number: Some("110101199003070011".into()),
            address: None,
        }
    );
    assert_eq!(p.store.as_deref(), Some("S001"));
    assert!(p.consents.sms);
    assert_eq!(p.attributes["city"], "上海");
    assert_eq!(p.tags.iter().collect::<Vec<_>>(), ["gold", "vip"]);
    let m12 = MemberId::parse("M012").unwrap();
    let p = h
        .members
        .profile(&h.tenant, &m12, View::Unmasked)
        .await
        .unwrap();
    assert_eq!(p.personal.name.exposed(), Some("欧阳娜"));
    assert_eq!(p.personal.gender.exposed(), Some("f"));
    assert_eq!(p.personal.birthday.exposed(), Some("2000-02-29"));
    assert!(p.consents.sms);
    let m2 = MemberId::parse("M002").unwrap();
    let p = h
        .members
        .profile(&h.tenant, &m2, View::Unmasked)
        .await
        .unwrap();
    assert_eq!(p.personal.birthday.exposed(), Some("1985-12-01"));
    assert!(!p.consents.sms);
    assert!(p.tags.is_empty());
    // The ID number and email of imported rows find their member too.
    let by_id = h
        .members
        .find(&h.tenant, IndexKind::IdNumber, "110101197001010088")
        .await
        .unwrap();
    assert_eq!(by_id.as_deref(), Some("M006"));
    let by_email = h
        .members
        .find(&h.tenant, IndexKind::Email, "li.hua@example.cn")
        .await
        .unwrap();
    assert_eq!(by_email.as_deref(), Some("M002"));
}

#[tokio::test]
async fn a_dry_run_reports_the_same_problems_and_writes_no_member() {
    let h = harness();
    let file = h.messy().await;
    let mut args = h.args(&file, 2);
    args.dry_run = true;
    let summary = h.import(&args).await.unwrap();
    assert_eq!(summary, MESSY_SUMMARY);
    // The dry run remembers the whole file, so it names the earlier row of a duplicate.
    let expected = messy_report(
        "row 2 has this member id already",
        "id_number belongs to the member of row 8 already",
    );
    assert_report(&h.report(), &borrowed(&expected));
    assert_eq!(h.member_count().await, 1);
    for (_, _, phone) in IMPORTED {
        assert_eq!(h.find_phone(phone).await, None);
    }

    // The real import afterwards finds the same rows wrong.
    args.dry_run = false;
    assert_eq!(h.import(&args).await.unwrap(), MESSY_SUMMARY);
    let expected = messy_report(
        "a member with this id exists already",
        "id_number belongs to the member of row 8 already",
    );
    assert_report(&h.report(), &borrowed(&expected));
}

#[tokio::test]
async fn a_missing_column_stops_the_import_before_anything_is_written() {
    let h = harness();
    let mapping = MAPPING.replace("email = \"邮箱\"", "email = \"电子邮箱\"");
    h.write("mapping.toml", mapping.as_bytes());
    let text = MESSY.join("\n") + "\n";
    let file = h.write("messy.csv", &encoding_rs::GBK.encode(&text).0);
    let err = h.import(&h.args(&file, 4)).await.unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("no column \"电子邮箱\""), "{message}");
    assert!(message.contains("邮箱"), "{message}");
    assert_eq!(h.member_count().await, 0);
    // Not even the tenant's key, nor a report.
    assert!(h.members.repository().tenants().await.unwrap().is_empty());
    assert!(!h.path("report.csv").exists());
}

#[tokio::test]
async fn json_lines_take_the_same_mapping() {
    let h = harness();
    h.write("mapping.toml", MAPPING.as_bytes());
    let lines = [
        r#"{"会员编号":"J1","姓名":"王小明","性别":"男","生日":"1990-03-07","手机":13800000101,"邮箱":"j1@example.cn","身份证号":"110101199003070101","开卡门店":"S001","短信营销":true,"标签":["vip","gold"],"城市":"上海"}"#,
        "",
        r#"{"会员编号":"J2","姓名":"李华","手机":"13800000102","短信营销":0,"标签":null}"#,
        r#"{"会员编号":"J3","手机":"138000"#,
        r#"{"会员编号":"J4","手机":"13800000101"}"#,
        r#"{"姓名":"无名","手机":"13800000105"}"#,
        r#"{"会员编号":"J6","生日":"19991231","短信营销":"maybe"}"#,
    ];
    let file = h.write("members.jsonl", (lines.join("\n") + "\n").as_bytes());
    // One row a batch: row 5's phone is that of row 1, committed batches before, found in the
    // store (by way of the filter of what this import into an empty tenant wrote).
    let mut args = h.args(&file, 1);
    args.encoding = Some("utf-8".into());
    let summary = h.import(&args).await.unwrap();
    assert_eq!(
        summary,
        Summary {
            last_row: 7,
            rows: 6,
            imported: 2,
            invalid: 3,
            duplicates: 1,
        }
    );
    assert_report(
        &h.report(),
        &[
            (4, "", "not a JSON object"),
            (5, "phone", "phone belongs to member J1 already"),
            (6, "member_id", "missing"),
            (7, "consent_sms", "not yes or no"),
        ],
    );
    let j1 = MemberId::parse("J1").unwrap();
    let p = h
        .members
        .profile(&h.tenant, &j1, View::Unmasked)
        .await
        .unwrap();
    assert_eq!(p.personal.phone.exposed(), Some("13800000101"));
    assert_eq!(p.personal.gender.exposed(), Some("m"));
    assert!(p.consents.sms);
    assert_eq!(p.tags.len(), 2);
    assert_eq!(p.attributes["city"], "上海");
    assert_eq!(h.find_phone("13800000102").await.as_deref(), Some("J2"));
    assert_eq!(h.member_count().await, 2);
}

/// `n` clean members as a UTF-8 CSV with the messy file's columns; every 100th row has a bad
/// phone, so the report grows as the import goes.
fn clean_file(n: u64) -> String {
    let mut text = String::from(HEADER);
    text.push('\n');
    for i in 0..n {
        let phone = if i % 100 == 99 {
            "12-34".to_string()
        } else {
            format!("139{i:08}")
        };
        text.push_str(&format!(
            "C{i:06},会员{i},男,1990-01-01,{phone},c{i}@example.cn,ID{i:010},S001,1,,上海\n"
        ));
    }
    text
}

/// Interrupts an import by a panic after `batches` batches (as a crash would, between two
/// batches), in a task of its own.
async fn interrupted(h: &Harness, args: ImportArgs, batches: u64) {
    let members = Arc::clone(&h.members);
    let task = tokio::spawn(async move {
        let seen = std::sync::atomic::AtomicU64::new(0);
        memberd::import::run(&members, &args, |_| {
            if seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == batches {
                panic!("interrupted on purpose");
            }
        })
        .await
    });
    assert!(task.await.unwrap_err().is_panic());
}

#[tokio::test]
async fn an_interrupted_import_resumes_after_its_last_batch() {
    let h = harness();
    h.write(
        "mapping.toml",
        MAPPING.replace("encoding = \"gbk\"", "").as_bytes(),
    );
    let file = h.write("clean.csv", clean_file(1000).as_bytes());
    interrupted(&h, h.args(&file, 100), 3).await;
    assert_eq!(h.member_count().await, 297);
    // As if the import had died after writing the report lines of a batch it never committed.
    let mut report = std::fs::OpenOptions::new()
        .append(true)
        .open(h.path("report.csv"))
        .unwrap();
    writeln!(report, "400,phone,not a valid phone").unwrap();
    drop(report);

    let summary = h.import(&h.args(&file, 100)).await.unwrap();
    assert_eq!(
        summary,
        Summary {
            last_row: 1001,
            rows: 1000,
            imported: 990,
            invalid: 10,
            duplicates: 0,
        }
    );
    assert_eq!(h.member_count().await, 990);
    let rows: Vec<u64> = h.report().iter().map(|r| r[0].parse().unwrap()).collect();
    let expected: Vec<u64> = (1..=10).map(|k| k * 100 + 1).collect();
    assert_eq!(rows, expected, "each bad row once, in order");
    assert_eq!(
        h.find_phone("13900000998").await.as_deref(),
        Some("C000998")
    );

    // The finished import left no checkpoint: the same command starts over, and finds every
    // member there already.
    let again = h.import(&h.args(&file, 100)).await.unwrap();
    assert_eq!((again.imported, again.duplicates), (0, 990));
}

#[tokio::test]
async fn a_checkpoint_is_not_applied_to_a_changed_file() {
    let h = harness();
    h.write(
        "mapping.toml",
        MAPPING.replace("encoding = \"gbk\"", "").as_bytes(),
    );
    let text = clean_file(1000);
    let file = h.write("clean.csv", text.as_bytes());
    interrupted(&h, h.args(&file, 100), 2).await;
    assert_eq!(h.member_count().await, 198);
    // The same size and the same first rows; one digit of the last row differs.
    let changed = text.replace("13900000998", "13900000997");
    assert_eq!(changed.len(), text.len());
    std::fs::write(&file, changed).unwrap();

    let summary = h.import(&h.args(&file, 100)).await.unwrap();
    // Not resumed: every row was read again, and those the first attempt imported are
    // duplicates now.
    assert_eq!(summary.rows, 1000);
    assert_eq!(summary.duplicates, 198 + 1);
    assert_eq!(summary.imported, 1000 - 10 - 199);
    assert_eq!(h.member_count().await, 198 + summary.imported as usize);
    let report = h.report();
    assert!(
        report
            .iter()
            .any(|r| &r[0] == "2" && &r[2] == "a member with this id exists already")
    );
    // The changed row's phone is that of row 999's member.
    assert!(
        report
            .iter()
            .any(|r| &r[0] == "1000" && r[2].contains("the member of row 999"))
    );
}

/// The real binary, killed with SIGKILL in the middle of an import, then run again.
#[test]
fn an_import_killed_mid_way_resumes_without_duplicates() {
    const ROWS: u64 = 30_000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("members.csv");
    let mapping = dir.path().join("mapping.toml");
    let report = dir.path().join("report.csv");
    std::fs::write(&file, clean_file(ROWS)).unwrap();
    std::fs::write(&mapping, MAPPING.replace("encoding = \"gbk\"", "")).unwrap();
    let command = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_memberd"));
        c.arg("--data-dir")
            .arg(&data)
            .arg("import")
            .arg(&file)
            .args(["--tenant", "acme", "--batch", "500", "--mapping"])
            .arg(&mapping)
            .arg("--report")
            .arg(&report)
            .env("MEMBERD_TELEMETRY__FILTER", "warn");
        c
    };

    // Kill it once the report shows rows past 3,000: several batches have committed by then.
    let mut child = command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = std::fs::read_to_string(&report)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(',').next()?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        if last > 3_000 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "finished too soon");
        assert!(Instant::now() < deadline, "no progress in 60 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let out = command().output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let resumed_after: u64 = stderr
        .split("after row ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not resumed: {stderr}"));
    assert!(
        resumed_after > 1 && resumed_after <= ROWS,
        "resumed after row {resumed_after}"
    );
    assert!(
        stdout.starts_with("30000 rows read, imported 29700, 300 invalid, 0 duplicates"),
        "{stdout}"
    );

    // Every bad row reported once; no row reported as existing already.
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(!text.contains("exists already"));
    let rows: Vec<u64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=ROWS / 100).map(|k| k * 100 + 1).collect();
    assert_eq!(rows, expected);

    // Every member is in the store once, found by its phone.
    let master =
        MasterKey::from_bytes(&std::fs::read(data.join("member/master.key")).unwrap()).unwrap();
    let store = EmbeddedMemberStore::open(&data.join("member/store")).unwrap();
    let members = Members::new(Arc::new(store), master, Arc::new(SystemClock::default()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let tenant = TenantId::parse("acme").unwrap();
        let repo = members.repository();
        let mut seen = std::collections::BTreeSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = repo
                .profiles_page(&tenant, after.as_deref(), 5000)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.member_id.clone());
            for p in page {
                assert!(seen.insert(p.member_id), "a member twice");
            }
        }
        assert_eq!(seen.len(), 29_700);
        for i in (0..ROWS).step_by(997).filter(|i| i % 100 != 99) {
            let found = members
                .find(&tenant, IndexKind::Phone, &format!("139{i:08}"))
                .await
                .unwrap();
            assert_eq!(found, Some(format!("C{i:06}")));
        }
    });
}
