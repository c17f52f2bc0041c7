//! Which of the adapters' statements a cluster ran: reads Cassandra audit logs (one line per
//! statement run, `...|category:DML|ks:<keyspace>|...|operation:<text>`), and lists each
//! statement of [`memberd::migrate::statement_catalogue`] that never ran in any keyspace of its service.
//!
//! `tests/run.sh` runs it after the test suite on the Cassandra node it started with
//! `CQL_AUDIT=1`, so a statement no test exercises on a real cluster is named, not assumed.
//!
//! ```sh
//! cargo run -p memberd --example statement_coverage -- [--require] AUDIT_LOG...
//! ```
//!
//! With `--require` it fails (exit 1) when any statement did not run.

use std::collections::BTreeSet;
use std::io::BufRead;

fn main() -> std::process::ExitCode {
    let mut require = false;
    let mut logs = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--require" => require = true,
            "-h" | "--help" => {
                eprintln!("usage: statement_coverage [--require] AUDIT_LOG...");
                return std::process::ExitCode::SUCCESS;
            }
            _ => logs.push(arg),
        }
    }
    if logs.is_empty() {
        eprintln!("usage: statement_coverage [--require] AUDIT_LOG...");
        return std::process::ExitCode::from(2);
    }
    let mut ran: BTreeSet<(String, String)> = BTreeSet::new();
    for path in &logs {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) => {
                eprintln!("statement coverage: cannot read {path}: {e}");
                return std::process::ExitCode::from(2);
            }
        };
        for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
            if let Some(statement) = statement_of(&line) {
                ran.insert(statement);
            }
        }
    }
    let catalogue = memberd::migrate::statement_catalogue();
    let mut missed = Vec::new();
    for (services, def) in &catalogue {
        let cql = squeeze(def.cql);
        let hit = services
            .iter()
            .any(|service| ran.contains(&(service.to_string(), cql.clone())));
        if !hit {
            missed.push(format!("{} ({})", def.name, services.join(", ")));
        }
    }
    println!(
        "statement coverage: {} of {} statements ran on the cluster ({} distinct statements \
         seen in {} audit log(s))",
        catalogue.len() - missed.len(),
        catalogue.len(),
        ran.len(),
        logs.len()
    );
    for name in &missed {
        println!("  never ran: {name}");
    }
    if require && !missed.is_empty() {
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

/// The service and the text (keyspace written `{keyspace}`) of an audit line's statement,
/// if it ran in a keyspace of a service (`<prefix>_ledger`, ...).
fn statement_of(line: &str) -> Option<(String, String)> {
    let mut keyspace = None;
    let mut operation = None;
    for field in line.split('|') {
        if let Some(ks) = field.strip_prefix("ks:") {
            keyspace = Some(ks);
        }
        if let Some(op) = field.strip_prefix("operation:") {
            operation = Some(op);
        }
    }
    // The operation is the last field and may itself hold a `|` (none of ours does).
    let (keyspace, operation) = (keyspace?, operation?);
    let service = memberd::migrate::SERVICES
        .iter()
        .map(|(service, _)| *service)
        .find(|s| keyspace.ends_with(&format!("_{s}")))?;
    let text = operation.replace(&format!("{keyspace}."), "{keyspace}.");
    Some((service.to_string(), squeeze(&text)))
}

/// The text with every run of whitespace made one space.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
