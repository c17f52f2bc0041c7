#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
#![allow(dead_code)] // The statements are declared to be checked, never prepared here.

use super::*;
use crate::statements::AppliedRow;
use scylla::value::CqlTimestamp;

const SCHEMA: &str = "
CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication};
CREATE TABLE IF NOT EXISTS {keyspace}.things (
  tenant text,
  id blob,
  kind text,
  version bigint STATIC,
  at timestamp,
  tags list<text>,
  body blob,
  PRIMARY KEY ((tenant), kind, id)
);";

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "things",
    text: SCHEMA,
}];

crate::statements! {
    struct Good {
        read: "SELECT version, body FROM {keyspace}.things WHERE tenant = ? AND kind = 'e' AND id < ? ORDER BY kind DESC LIMIT ?"
            => (String, Vec<u8>, i32) => (Option<i64>, Option<Vec<u8>>),
        lives: "SELECT body, TTL(body), WRITETIME(body) FROM {keyspace}.things WHERE tenant = ? AND kind = ? AND id = ?"
            => (String, String, Vec<u8>) => (Option<Vec<u8>>, Option<i32>, Option<i64>),
        many: "SELECT id FROM {keyspace}.things WHERE tenant = ? AND kind IN ?"
            => (String, Vec<String>) => (Vec<u8>,),
        insert: "INSERT INTO {keyspace}.things (tenant, kind, id, at, tags) VALUES (?, 'e', ?, ?, ?) USING TTL ?"
            => (String, Vec<u8>, CqlTimestamp, Vec<String>, i32) => (),
        bump: "UPDATE {keyspace}.things SET version = ? WHERE tenant = ? IF version = ?"
            => (i64, String, i64) => AppliedRow,
        create: "UPDATE {keyspace}.things SET version = ? WHERE tenant = ? IF version = null"
            => (i64, String) => AppliedRow,
        forget: "DELETE FROM {keyspace}.things WHERE tenant = ? AND kind = ? AND id = ?"
            => (String, String, Vec<u8>) => (),
    }
}

fn problems_of(definitions: Vec<StatementDef>) -> Vec<String> {
    check_statements(MIGRATIONS, &definitions)
}

#[test]
fn statements_that_match_the_schema_pass() {
    assert_eq!(problems_of(Good::definitions()), Vec::<String>::new());
}

fn one(
    name: &'static str,
    cql: &'static str,
    def: fn(&'static str, &'static str) -> StatementDef,
) -> String {
    let problems = problems_of(vec![def(name, cql)]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    problems[0].clone()
}

#[test]
fn a_bound_value_of_the_wrong_type_is_named() {
    // version is bigint; an i32 is not.
    let problem = one(
        "bump",
        "UPDATE {keyspace}.things SET version = ? WHERE tenant = ? IF version = ?",
        StatementDef::new::<(i32, String, i64), AppliedRow>,
    );
    assert!(problem.contains("bump: bound values"), "{problem}");
    // A timestamp column takes CqlTimestamp, not a bare i64.
    let problem = one(
        "at",
        "INSERT INTO {keyspace}.things (tenant, kind, id, at) VALUES (?, ?, ?, ?)",
        StatementDef::new::<(String, String, Vec<u8>, i64), ()>,
    );
    assert!(problem.contains("bound values"), "{problem}");
}

#[test]
fn a_row_type_that_does_not_read_the_columns_is_named() {
    let problem = one(
        "read",
        "SELECT version, body FROM {keyspace}.things WHERE tenant = ?",
        StatementDef::new::<(String,), (Option<String>, Option<Vec<u8>>)>,
    );
    assert!(problem.contains("read: rows"), "{problem}");
    // A conditional statement's row is [applied], not the columns it writes.
    let problem = one(
        "bump",
        "UPDATE {keyspace}.things SET version = ? WHERE tenant = ? IF version = ?",
        StatementDef::new::<(i64, String, i64), ()>,
    );
    assert!(problem.contains("rows"), "{problem}");
}

#[test]
fn a_cells_time_to_live_reads_as_an_int_of_a_column_that_exists() {
    let problem = one(
        "ttl",
        "SELECT TTL(body) FROM {keyspace}.things WHERE tenant = ?",
        StatementDef::new::<(String,), (Option<i64>,)>,
    );
    assert!(problem.contains("ttl: rows"), "{problem}");
    let problem = one(
        "ttl",
        "SELECT TTL(nothing) FROM {keyspace}.things WHERE tenant = ?",
        StatementDef::new::<(String,), (Option<i32>,)>,
    );
    assert!(problem.contains("no column `nothing`"), "{problem}");
}

#[test]
fn unknown_tables_and_columns_are_named() {
    let problem = one(
        "nope",
        "SELECT body FROM {keyspace}.nothing WHERE tenant = ?",
        StatementDef::new::<(String,), (Vec<u8>,)>,
    );
    assert!(problem.contains("no table `nothing`"), "{problem}");
    let problem = one(
        "typo",
        "SELECT bodyy FROM {keyspace}.things WHERE tenant = ?",
        StatementDef::new::<(String,), (Vec<u8>,)>,
    );
    assert!(problem.contains("no column `bodyy`"), "{problem}");
    let problem = one(
        "where",
        "DELETE FROM {keyspace}.things WHERE tenant = ? AND kindd = ?",
        StatementDef::new::<(String, String), ()>,
    );
    assert!(problem.contains("no column `kindd`"), "{problem}");
}

#[test]
fn scans_and_filtering_are_refused() {
    let problem = one(
        "scan",
        "SELECT body FROM {keyspace}.things WHERE kind = ?",
        StatementDef::new::<(String,), (Vec<u8>,)>,
    );
    assert!(
        problem.contains("partition key column `tenant`"),
        "{problem}"
    );
    let problem = one(
        "filter",
        "SELECT body FROM {keyspace}.things WHERE tenant = ? AND body = ? ALLOW FILTERING",
        StatementDef::new::<(String, Vec<u8>), (Vec<u8>,)>,
    );
    assert!(problem.contains("ALLOW FILTERING"), "{problem}");
}

#[test]
fn a_keyspace_written_out_is_refused() {
    let problem = one(
        "fixed",
        "SELECT body FROM loyalty_ledger.things WHERE tenant = ?",
        StatementDef::new::<(String,), (Vec<u8>,)>,
    );
    assert!(problem.contains("{keyspace}.<table>"), "{problem}");
}

#[test]
fn string_literals_are_not_columns() {
    let shape =
        parse("SELECT body FROM {keyspace}.things WHERE tenant = ? AND kind = 'it''s'").unwrap();
    assert_eq!(shape.named, vec!["body", "tenant", "kind"]);
}

#[test]
fn types_parse_as_the_driver_names_them() {
    assert_eq!(
        parse_type("bigint").unwrap(),
        ColumnType::Native(NativeType::BigInt)
    );
    assert_eq!(
        parse_type("TEXT").unwrap(),
        ColumnType::Native(NativeType::Text)
    );
    assert_eq!(
        parse_type("frozen<map<text, list<int>>>").unwrap(),
        ColumnType::Collection {
            frozen: true,
            typ: CollectionType::Map(
                Box::new(ColumnType::Native(NativeType::Text)),
                Box::new(ColumnType::Collection {
                    frozen: false,
                    typ: CollectionType::List(Box::new(ColumnType::Native(NativeType::Int))),
                }),
            ),
        }
    );
    assert!(
        parse_type("money")
            .unwrap_err()
            .contains("unknown CQL type")
    );
    assert!(parse_type("map<text>").unwrap_err().contains("two types"));
}

#[test]
fn applied_rows_read_the_first_column_only() {
    let columns = [("[applied]", "boolean"), ("version", "bigint")];
    let row: AppliedRow = crate::testing::round_trip(&columns, &(false, Some(7_i64))).unwrap();
    assert_eq!(row, AppliedRow(false));
    let row: AppliedRow = crate::testing::round_trip(&columns[..1], &(true,)).unwrap();
    assert_eq!(row, AppliedRow(true));
    let wrong = crate::testing::round_trip::<_, AppliedRow>(&[("version", "bigint")], &(1_i64,));
    assert!(wrong.unwrap_err().contains("[applied]"));
}
