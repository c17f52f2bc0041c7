//! Checks an adapter's statements against its service's migrations without a cluster
//! (decision 0012): every table and column a statement names exists, every bound value's
//! Rust type serializes to its column's CQL type and every row type reads the selected
//! columns (both by the driver's own checks), reads and writes name their whole partition
//! key, and nothing asks for ALLOW FILTERING.
//!
//! The parser covers the CQL the adapters write: `SELECT cols FROM t WHERE ... [ORDER BY]
//! [LIMIT ?]`, `INSERT INTO t (cols) VALUES (...) [IF NOT EXISTS] [USING TTL ?]`, `UPDATE t
//! [USING TTL ?] SET ... WHERE ... [IF ...]` and `DELETE [cols] FROM t WHERE ... [IF ...]`.
//! Anything else is reported as unsupported rather than passed.

use crate::statements::StatementDef;
use loyalty_common::schema::{Migration, Table};
use scylla::frame::response::result::{
    CollectionType, ColumnSpec, ColumnType, NativeType, TableSpec,
};
use std::collections::BTreeMap;

/// Checks every statement; one line per problem (empty: all hold).
pub fn check_statements(migrations: &[Migration], statements: &[StatementDef]) -> Vec<String> {
    let tables = match loyalty_common::schema::check(migrations) {
        Ok(tables) => tables,
        Err(e) => return vec![format!("the migrations: {e}")],
    };
    let mut problems = Vec::new();
    for statement in statements {
        if let Err(problem) = check_one(&tables, statement) {
            problems.push(format!(
                "{}: {problem} (in `{}`)",
                statement.name, statement.cql
            ));
        }
    }
    problems
}

fn check_one(tables: &BTreeMap<String, Table>, statement: &StatementDef) -> Result<(), String> {
    let shape = parse(statement.cql)?;
    let table = tables
        .get(&shape.table)
        .ok_or_else(|| format!("no table `{}` in the migrations", shape.table))?;
    let column_type = |name: &str| -> Result<ColumnType<'static>, String> {
        let text = table
            .columns
            .get(name)
            .ok_or_else(|| format!("table `{}` has no column `{name}`", shape.table))?;
        parse_type(text)
    };
    for name in &shape.named {
        column_type(name)?;
    }
    if shape.has_where {
        for key in &table.partition_key {
            if !shape.restricted.contains(key) {
                return Err(format!(
                    "the WHERE clause leaves partition key column `{key}` open (a scan)"
                ));
            }
        }
    }
    let spec = |name: &str, typ: ColumnType<'static>| {
        ColumnSpec::owned(
            name.to_string(),
            typ,
            TableSpec::owned("ks".into(), shape.table.clone()),
        )
    };
    let mut binds = Vec::new();
    for bind in &shape.binds {
        let typ = match bind {
            Bind::Column(name) => column_type(name)?,
            Bind::ListOf(name) => ColumnType::Collection {
                frozen: false,
                typ: CollectionType::List(Box::new(column_type(name)?)),
            },
            Bind::Int(what) => {
                binds.push(spec(what, ColumnType::Native(NativeType::Int)));
                continue;
            }
            Bind::BigInt(what) => {
                binds.push(spec(what, ColumnType::Native(NativeType::BigInt)));
                continue;
            }
        };
        binds.push(spec(bind.name(), typ));
    }
    (statement.check_binds)(&binds).map_err(|e| format!("bound values: {e}"))?;
    let row: Vec<_> = if statement.is_conditional() {
        vec![spec("[applied]", ColumnType::Native(NativeType::Boolean))]
    } else {
        shape
            .selected
            .iter()
            .map(|name| selected_type(name, &column_type).map(|t| spec(name, t)))
            .collect::<Result<_, _>>()?
    };
    (statement.check_row)(&row).map_err(|e| format!("rows: {e}"))
}

/// The type a selector reads: a column's, or a function's of one.
fn selected_type(
    name: &str,
    column_type: &dyn Fn(&str) -> Result<ColumnType<'static>, String>,
) -> Result<ColumnType<'static>, String> {
    if name.starts_with("ttl(") {
        return Ok(ColumnType::Native(NativeType::Int));
    }
    if name.starts_with("writetime(") {
        return Ok(ColumnType::Native(NativeType::BigInt));
    }
    column_type(name)
}

/// What a bind marker binds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bind {
    Column(String),
    /// `col IN ?`: a list of the column's type.
    ListOf(String),
    /// `LIMIT ?`, `USING TTL ?`: an int.
    Int(&'static str),
    /// `USING TIMESTAMP ?`: a bigint (microseconds).
    BigInt(&'static str),
}

impl Bind {
    fn name(&self) -> &str {
        match self {
            Bind::Column(name) | Bind::ListOf(name) => name,
            Bind::Int(what) | Bind::BigInt(what) => what,
        }
    }
}

#[derive(Debug, Default)]
struct Shape {
    table: String,
    /// Every column named anywhere.
    named: Vec<String>,
    /// Columns a SELECT returns, in order.
    selected: Vec<String>,
    binds: Vec<Bind>,
    has_where: bool,
    /// Columns the WHERE clause restricts.
    restricted: Vec<String>,
}

fn tokens(cql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = cql.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c == '\'' {
            // A string literal, kept whole so its text is never taken for a column.
            let mut literal = c.to_string();
            for n in chars.by_ref() {
                literal.push(n);
                if n == '\'' {
                    break;
                }
            }
            out.push(literal);
        } else if c.is_alphanumeric() || c == '_' || c == '{' || c == '}' || c == '.' || c == '"' {
            let mut word = c.to_string();
            while let Some(&n) = chars.peek() {
                if n.is_alphanumeric() || "_{}.\"".contains(n) {
                    word.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(word);
        } else if (c == '<' || c == '>' || c == '!') && chars.peek() == Some(&'=') {
            chars.next();
            out.push(format!("{c}="));
        } else {
            out.push(c.to_string());
        }
    }
    out
}

fn is(token: &str, keyword: &str) -> bool {
    token.eq_ignore_ascii_case(keyword)
}

fn table_name(token: &str) -> Result<String, String> {
    token
        .strip_prefix("{keyspace}.")
        .map(str::to_string)
        .ok_or_else(|| format!("`{token}` is not written `{{keyspace}}.<table>`"))
}

fn parse(cql: &str) -> Result<Shape, String> {
    let tokens = tokens(cql);
    if tokens.iter().any(|t| is(t, "FILTERING")) {
        return Err("ALLOW FILTERING reads every partition; add an index table".into());
    }
    let mut shape = Shape::default();
    let first = tokens.first().map(String::as_str).unwrap_or("");
    let rest = if is(first, "SELECT") {
        let from = tokens
            .iter()
            .position(|t| is(t, "FROM"))
            .ok_or("SELECT without FROM")?;
        let mut selectors = tokens[1..from].iter();
        while let Some(token) = selectors.next() {
            if token == "," || is(token, "DISTINCT") {
                continue;
            }
            // `TTL(col)` and `WRITETIME(col)`: what the column's cell has left to live, and
            // when it was written.
            if is(token, "TTL") || is(token, "WRITETIME") {
                let call: Vec<&String> = selectors.by_ref().take(3).collect();
                let [open, column, close] = call[..] else {
                    return Err(format!("`{token}` without `(column)`"));
                };
                if open != "(" || close != ")" || !is_identifier(column) {
                    return Err(format!("`{token}` without `(column)`"));
                }
                shape.named.push(column.clone());
                let function = token.to_ascii_lowercase();
                shape.selected.push(format!("{function}({column})"));
                continue;
            }
            if !is_identifier(token) {
                return Err(format!("unsupported selector `{token}`"));
            }
            shape.selected.push(token.clone());
            shape.named.push(token.clone());
        }
        shape.table = table_name(tokens.get(from + 1).ok_or("no table")?)?;
        &tokens[from + 2..]
    } else if is(first, "INSERT") {
        shape.table = table_name(tokens.get(2).ok_or("no table")?)?;
        let values = tokens
            .iter()
            .position(|t| is(t, "VALUES"))
            .ok_or("INSERT without VALUES")?;
        let columns: Vec<String> = tokens[3..values]
            .iter()
            .filter(|t| is_identifier(t))
            .cloned()
            .collect();
        let close = values
            + tokens[values..]
                .iter()
                .position(|t| t == ")")
                .ok_or("VALUES without )")?;
        let values_list: Vec<&String> = tokens[values + 2..close]
            .iter()
            .filter(|t| *t != ",")
            .collect();
        if values_list.len() != columns.len() {
            return Err("INSERT names a different number of columns and values".into());
        }
        for (column, value) in columns.iter().zip(values_list) {
            shape.named.push(column.clone());
            if value == "?" {
                shape.binds.push(Bind::Column(column.clone()));
            }
        }
        &tokens[close + 1..]
    } else if is(first, "UPDATE") {
        shape.table = table_name(tokens.get(1).ok_or("no table")?)?;
        &tokens[2..]
    } else if is(first, "DELETE") {
        let from = tokens
            .iter()
            .position(|t| is(t, "FROM"))
            .ok_or("DELETE without FROM")?;
        for token in tokens[1..from].iter().filter(|t| is_identifier(t)) {
            shape.named.push(token.clone());
        }
        shape.table = table_name(tokens.get(from + 1).ok_or("no table")?)?;
        &tokens[from + 2..]
    } else {
        return Err(format!("unsupported statement `{first}`"));
    };
    clauses(rest, &mut shape)?;
    Ok(shape)
}

fn is_identifier(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && token.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// WHERE, SET, IF, USING, LIMIT, ORDER BY: each `?` takes the column before its operator.
fn clauses(tokens: &[String], shape: &mut Shape) -> Result<(), String> {
    let mut clause = "";
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i].as_str();
        let upper = token.to_ascii_uppercase();
        match upper.as_str() {
            "WHERE" | "SET" | "IF" | "USING" | "LIMIT" | "ORDER" | "PER" => {
                if upper == "WHERE" {
                    shape.has_where = true;
                }
                clause = match upper.as_str() {
                    "WHERE" => "WHERE",
                    "SET" => "SET",
                    "IF" => "IF",
                    "USING" => "USING",
                    "LIMIT" => "LIMIT",
                    "ORDER" => "ORDER",
                    _ => "PER",
                };
            }
            "?" => {
                let bind = match clause {
                    "LIMIT" => Bind::Int("limit"),
                    "USING" if tokens[..i].last().is_some_and(|t| is(t, "TTL")) => {
                        Bind::Int("[ttl]")
                    }
                    "USING" if tokens[..i].last().is_some_and(|t| is(t, "TIMESTAMP")) => {
                        Bind::BigInt("[timestamp]")
                    }
                    "WHERE" | "SET" | "IF" => {
                        let operator = tokens[..i].last().map(String::as_str).unwrap_or("");
                        let column = tokens[..i.saturating_sub(1)]
                            .last()
                            .cloned()
                            .unwrap_or_default();
                        if !is_identifier(&column) {
                            return Err(format!("cannot tell which column `{operator} ?` binds"));
                        }
                        if is(operator, "IN") {
                            Bind::ListOf(column)
                        } else if ["=", "<", ">", "<=", ">=", "!="].contains(&operator) {
                            Bind::Column(column)
                        } else {
                            return Err(format!("unsupported operator `{operator}`"));
                        }
                    }
                    _ => return Err(format!("unsupported bind marker in `{clause}`")),
                };
                shape.binds.push(bind);
            }
            _ if is_identifier(token)
                && matches!(clause, "WHERE" | "SET" | "IF" | "ORDER")
                && !is_keyword(token) =>
            {
                shape.named.push(token.to_string());
                if clause == "WHERE" {
                    shape.restricted.push(token.to_string());
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn is_keyword(token: &str) -> bool {
    [
        "AND",
        "IN",
        "NULL",
        "EXISTS",
        "NOT",
        "BY",
        "ASC",
        "DESC",
        "TTL",
        "TIMESTAMP",
        "TRUE",
        "FALSE",
    ]
    .iter()
    .any(|k| is(token, k))
}

/// A CQL type as the migrations write it (`bigint`, `list<text>`, `frozen<map<text, int>>`).
pub fn parse_type(text: &str) -> Result<ColumnType<'static>, String> {
    let text = text.trim();
    if let Some((outer, inner)) = text.split_once('<') {
        let inner = inner
            .strip_suffix('>')
            .ok_or_else(|| format!("unbalanced type `{text}`"))?;
        let collection = |typ| ColumnType::Collection { frozen: false, typ };
        return match outer.trim().to_ascii_lowercase().as_str() {
            "frozen" => match parse_type(inner)? {
                ColumnType::Collection { typ, .. } => {
                    Ok(ColumnType::Collection { frozen: true, typ })
                }
                other => Ok(other),
            },
            "list" => Ok(collection(CollectionType::List(Box::new(parse_type(
                inner,
            )?)))),
            "set" => Ok(collection(CollectionType::Set(Box::new(parse_type(
                inner,
            )?)))),
            "map" => {
                let (key, value) = split_top_level(inner)
                    .ok_or_else(|| format!("a map needs two types: `{text}`"))?;
                Ok(collection(CollectionType::Map(
                    Box::new(parse_type(key)?),
                    Box::new(parse_type(value)?),
                )))
            }
            other => Err(format!("unsupported type `{other}<...>`")),
        };
    }
    let native = match text.to_ascii_lowercase().as_str() {
        "ascii" => NativeType::Ascii,
        "boolean" => NativeType::Boolean,
        "blob" => NativeType::Blob,
        "counter" => NativeType::Counter,
        "date" => NativeType::Date,
        "decimal" => NativeType::Decimal,
        "double" => NativeType::Double,
        "float" => NativeType::Float,
        "int" => NativeType::Int,
        "bigint" => NativeType::BigInt,
        "text" | "varchar" => NativeType::Text,
        "timestamp" => NativeType::Timestamp,
        "inet" => NativeType::Inet,
        "smallint" => NativeType::SmallInt,
        "tinyint" => NativeType::TinyInt,
        "time" => NativeType::Time,
        "timeuuid" => NativeType::Timeuuid,
        "uuid" => NativeType::Uuid,
        "varint" => NativeType::Varint,
        other => return Err(format!("unknown CQL type `{other}`")),
    };
    Ok(ColumnType::Native(native))
}

/// `a, b` split at the comma outside angle brackets.
fn split_top_level(text: &str) -> Option<(&str, &str)> {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => return Some((&text[..i], &text[i + 1..])),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests;
