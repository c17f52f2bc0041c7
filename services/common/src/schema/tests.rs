use super::*;

fn one(version: u32, text: &'static str) -> Migration {
    Migration {
        version,
        name: "test",
        text,
    }
}

#[test]
fn statements_drop_comments_and_split_outside_quotes() {
    let text = "-- a comment; with a semicolon\nCREATE TABLE IF NOT EXISTS {keyspace}.t (\n  a text, -- why\n  b text,\n  PRIMARY KEY ((a), b)\n) WITH comment = 'x; y';\nDROP TABLE IF EXISTS {keyspace}.u;\n";
    assert_eq!(
        statements(text),
        vec![
            "CREATE TABLE IF NOT EXISTS {keyspace}.t ( a text, b text, PRIMARY KEY ((a), b) ) WITH comment = 'x; y'",
            "DROP TABLE IF EXISTS {keyspace}.u",
        ]
    );
}

#[test]
fn a_table_is_read_with_its_keys_static_columns_and_types() {
    let text = "CREATE TABLE IF NOT EXISTS {keyspace}.wallets (tenant text, member text, kind text, id blob, version bigint STATIC, tags map<text, int>, PRIMARY KEY ((tenant, member), kind, id)) WITH CLUSTERING ORDER BY (kind ASC, id DESC);";
    let tables = check(&[one(1, text)]).unwrap();
    let t = &tables["wallets"];
    assert_eq!(t.partition_key, ["tenant", "member"]);
    assert_eq!(t.clustering, ["kind", "id"]);
    assert_eq!(t.static_columns, ["version"]);
    assert_eq!(t.columns["version"], "bigint");
    assert_eq!(t.columns["tags"], "map<text, int>");
    let single =
        "CREATE TABLE IF NOT EXISTS {keyspace}.t (id text, body blob, PRIMARY KEY ((id)));";
    let tables = check(&[one(1, single)]).unwrap();
    assert_eq!(tables["t"].partition_key, ["id"]);
    assert!(tables["t"].clustering.is_empty());
}

#[test]
fn a_statement_that_cannot_run_twice_is_refused() {
    for text in [
        "CREATE TABLE {keyspace}.t (id text PRIMARY KEY);",
        "ALTER TABLE {keyspace}.t ADD x text;",
        "INSERT INTO {keyspace}.t (id) VALUES ('a');",
        "DROP TABLE {keyspace}.t;",
    ] {
        let err = check(&[one(1, text)]).unwrap_err();
        assert!(
            matches!(
                err,
                SchemaError::NotRerunnable {
                    version: 1,
                    index: 1,
                    ..
                }
            ),
            "{text}: {err}"
        );
    }
}

#[test]
fn numbering_starts_at_one_without_gaps() {
    let ok = "DROP TABLE IF EXISTS {keyspace}.t;";
    assert!(check(&[one(1, ok), one(2, ok)]).is_ok());
    assert_eq!(
        check(&[one(1, ok), one(3, ok)]).unwrap_err(),
        SchemaError::Numbering {
            expected: 2,
            found: 3
        }
    );
    assert!(matches!(
        check(&[one(2, ok)]).unwrap_err(),
        SchemaError::Numbering { expected: 1, .. }
    ));
    assert_eq!(
        check(&[one(1, "-- nothing\n")]).unwrap_err(),
        SchemaError::Empty { version: 1 }
    );
}

#[test]
fn a_table_created_again_or_with_bad_keys_is_refused() {
    let t = "CREATE TABLE IF NOT EXISTS {keyspace}.t (id text, PRIMARY KEY ((id)));";
    assert!(matches!(
        check(&[one(1, t), one(2, t)]).unwrap_err(),
        SchemaError::TableAgain { version: 2, .. }
    ));
    for (text, problem) in [
        (
            "CREATE TABLE IF NOT EXISTS {keyspace}.t (id text, PRIMARY KEY ((id), missing));",
            "key column missing is not declared",
        ),
        (
            "CREATE TABLE IF NOT EXISTS {keyspace}.t (id text, v bigint STATIC, PRIMARY KEY ((id)));",
            "static columns need clustering columns",
        ),
        (
            "CREATE TABLE IF NOT EXISTS {keyspace}.t (id text, c text STATIC, PRIMARY KEY ((id), c));",
            "key column c cannot be static",
        ),
        (
            "CREATE TABLE IF NOT EXISTS {keyspace}.t (id text, id blob, PRIMARY KEY ((id)));",
            "column id is declared twice",
        ),
        (
            "CREATE TABLE IF NOT EXISTS {keyspace}.t (id text);",
            "no primary key",
        ),
    ] {
        match check(&[one(1, text)]).unwrap_err() {
            SchemaError::Table { problem: p, .. } => assert_eq!(p, problem, "{text}"),
            other => panic!("{text}: {other}"),
        }
    }
}

#[test]
fn render_fills_in_the_keyspace_and_replication() {
    let s = "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}";
    assert_eq!(
        render(
            s,
            "loyalty_ledger",
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"
        ),
        "CREATE KEYSPACE IF NOT EXISTS loyalty_ledger WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}"
    );
}

#[test]
fn the_carried_list_must_match_the_files() {
    let dir = std::env::temp_dir().join(format!("schema-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("0001_first.cql"), "x").unwrap();
    let carried = |text| Migration {
        version: 1,
        name: "first",
        text,
    };
    assert!(matches_directory(&dir, &[carried("x")]).is_ok());
    assert!(
        matches_directory(&dir, &[carried("y")])
            .unwrap_err()
            .contains("differs")
    );
    std::fs::write(dir.join("0002_forgotten.cql"), "z").unwrap();
    assert!(
        matches_directory(&dir, &[carried("x")])
            .unwrap_err()
            .contains("0002_forgotten.cql")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
