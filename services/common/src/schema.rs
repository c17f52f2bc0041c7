//! CQL migrations as the binary carries them (decision 0012): numbered files of statements
//! that can each run twice, with `{keyspace}` and `{replication}` filled in when applied.
//! The checks here run without a server: numbering, re-runnability, and the tables and
//! columns each migration declares (for the statement checks of the adapters).

use std::collections::BTreeMap;

/// One migration file: `NNNN_<name>.cql`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub text: &'static str,
}

/// Why a list of migrations cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "migration {found} is numbered {found}, expected {expected}: numbers start at 1 and have no gaps"
    )]
    Numbering { expected: u32, found: u32 },
    #[error("migration {version} has no statement")]
    Empty { version: u32 },
    #[error(
        "migration {version}: statement {index} cannot run twice (use IF NOT EXISTS / IF EXISTS): {statement}"
    )]
    NotRerunnable {
        version: u32,
        index: usize,
        statement: String,
    },
    #[error(
        "migration {version}: table {table} is created again (IF NOT EXISTS would skip the new definition)"
    )]
    TableAgain { version: u32, table: String },
    #[error("migration {version}: table {table}: {problem}")]
    Table {
        version: u32,
        table: String,
        problem: String,
    },
}

/// What may start a statement: each of these is a no-op when run a second time.
const RERUNNABLE: [&str; 9] = [
    "CREATE KEYSPACE IF NOT EXISTS ",
    "CREATE TABLE IF NOT EXISTS ",
    "CREATE INDEX IF NOT EXISTS ",
    "CREATE TYPE IF NOT EXISTS ",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS ",
    "DROP TABLE IF EXISTS ",
    "DROP INDEX IF EXISTS ",
    "DROP TYPE IF EXISTS ",
    "DROP MATERIALIZED VIEW IF EXISTS ",
];

/// A table as a migration declares it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// Column name → its CQL type, lower case (`bigint`, `blob`, `map<text, int>`).
    pub columns: BTreeMap<String, String>,
    pub static_columns: Vec<String>,
    pub partition_key: Vec<String>,
    pub clustering: Vec<String>,
}

/// The statements of a migration text: `--` comments dropped, split at `;` outside quotes,
/// whitespace collapsed.
pub fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for line in text.lines() {
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    current.push(c);
                }
                '-' if !quoted && chars.peek() == Some(&'-') => break,
                ';' if !quoted => out.push(std::mem::take(&mut current)),
                _ => current.push(c),
            }
        }
        current.push(' ');
    }
    out.push(current);
    out.iter()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// `statement` ready to run: the keyspace's name and replication filled in.
pub fn render(statement: &str, keyspace: &str, replication: &str) -> String {
    statement
        .replace("{keyspace}", keyspace)
        .replace("{replication}", replication)
}

/// Checks the migrations a service carries; the tables they declare, by name.
pub fn check(migrations: &[Migration]) -> Result<BTreeMap<String, Table>, SchemaError> {
    let mut tables = BTreeMap::new();
    for (n, migration) in migrations.iter().enumerate() {
        let expected = n as u32 + 1;
        if migration.version != expected {
            return Err(SchemaError::Numbering {
                expected,
                found: migration.version,
            });
        }
        let version = migration.version;
        let statements = statements(migration.text);
        if statements.is_empty() {
            return Err(SchemaError::Empty { version });
        }
        for (index, statement) in statements.iter().enumerate() {
            let upper = statement.to_ascii_uppercase();
            if !RERUNNABLE.iter().any(|p| upper.starts_with(p)) {
                return Err(SchemaError::NotRerunnable {
                    version,
                    index: index + 1,
                    statement: statement.clone(),
                });
            }
            if let Some((name, table)) = create_table(statement) {
                let table = table.map_err(|problem| SchemaError::Table {
                    version,
                    table: name.clone(),
                    problem,
                })?;
                if tables.insert(name.clone(), table).is_some() {
                    return Err(SchemaError::TableAgain {
                        version,
                        table: name,
                    });
                }
            }
        }
    }
    Ok(tables)
}

/// Whether `migrations` are exactly the files `NNNN_<name>.cql` of `dir`, in order and
/// with the same text: what a service's test checks, so that no file is left out of the
/// binary. The first difference, if any.
pub fn matches_directory(dir: &std::path::Path, migrations: &[Migration]) -> Result<(), String> {
    let read = |e: std::io::Error| format!("{}: {e}", dir.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        files.push(
            entry
                .map_err(read)?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    files.sort();
    let listed: Vec<String> = migrations
        .iter()
        .map(|m| format!("{:04}_{}.cql", m.version, m.name))
        .collect();
    if files != listed {
        return Err(format!(
            "{} holds {files:?}, the binary carries {listed:?}",
            dir.display()
        ));
    }
    for (file, m) in files.iter().zip(migrations) {
        let text = std::fs::read_to_string(dir.join(file)).map_err(read)?;
        if text != m.text {
            return Err(format!("{file} differs from the text the binary carries"));
        }
    }
    Ok(())
}

/// The table a `CREATE TABLE` statement declares (its name without the keyspace); None for
/// another statement.
fn create_table(statement: &str) -> Option<(String, Result<Table, String>)> {
    const PREFIX: &str = "CREATE TABLE IF NOT EXISTS ";
    if !statement.to_ascii_uppercase().starts_with(PREFIX) {
        return None;
    }
    let rest = &statement[PREFIX.len()..];
    let open = rest.find('(')?;
    let qualified = rest[..open].trim();
    let name = qualified
        .rsplit_once('.')
        .map_or(qualified, |(_, name)| name)
        .to_ascii_lowercase();
    Some((name, table_body(&rest[open..])))
}

/// The column list of a `CREATE TABLE`, from its opening parenthesis.
fn table_body(text: &str) -> Result<Table, String> {
    let body = enclosed(text).ok_or("its column list is not closed")?;
    let mut table = Table::default();
    for part in split_top_level(body) {
        let upper = part.to_ascii_uppercase();
        if let Some(key) = upper.strip_prefix("PRIMARY KEY") {
            let key = key.trim().to_ascii_lowercase();
            let inner = enclosed(&key).ok_or("its primary key is not closed")?;
            let mut parts = split_top_level(inner).into_iter();
            let first = parts.next().ok_or("an empty primary key")?;
            table.partition_key = match enclosed(&first) {
                Some(columns) => split_top_level(columns),
                None => vec![first],
            };
            table.clustering = parts.collect();
            continue;
        }
        let mut words = part.split_whitespace();
        let name = words.next().ok_or("an empty column")?.to_ascii_lowercase();
        let mut kind: Vec<&str> = words.collect();
        if kind
            .last()
            .is_some_and(|w| w.eq_ignore_ascii_case("static"))
        {
            kind.pop();
            table.static_columns.push(name.clone());
        }
        if kind.is_empty() {
            return Err(format!("column {name} has no type"));
        }
        let kind = kind.join(" ").to_ascii_lowercase();
        if table.columns.insert(name.clone(), kind).is_some() {
            return Err(format!("column {name} is declared twice"));
        }
    }
    let key_columns = table.partition_key.iter().chain(&table.clustering);
    if let Some(missing) = key_columns
        .clone()
        .find(|c| !table.columns.contains_key(*c))
    {
        return Err(format!("key column {missing} is not declared"));
    }
    if table.partition_key.is_empty() {
        return Err("no primary key".into());
    }
    if let Some(s) = table
        .static_columns
        .iter()
        .find(|c| key_columns.clone().any(|k| k == *c))
    {
        return Err(format!("key column {s} cannot be static"));
    }
    if !table.static_columns.is_empty() && table.clustering.is_empty() {
        return Err("static columns need clustering columns".into());
    }
    Ok(table)
}

/// The text inside the parentheses `text` starts with.
fn enclosed(text: &str) -> Option<&str> {
    let text = text.trim_start();
    if !text.starts_with('(') {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[1..i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// `text` split at commas outside parentheses and angle brackets, each part trimmed.
fn split_top_level(text: &str) -> Vec<String> {
    let (mut parts, mut current, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in text.chars() {
        match c {
            '(' | '<' => depth += 1,
            ')' | '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current.trim().to_string());
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

#[cfg(test)]
mod tests;
