//! `memberd migrate` (decision 0012): applies the migrations a service carries that its
//! keyspace lacks, in order, each recorded in `schema_migrations` after its last statement.
//! Every statement can run twice, so a migration interrupted half-way is simply run again.
//! A recorded migration whose text changed since is refused: applied files are never edited.

use crate::config::ScyllaConfig;
use crate::session::Cluster;
use loyalty_common::schema::{self, Migration, SchemaError};
use scylla::value::CqlTimestamp;
use sha2::{Digest, Sha256};

/// A migration as `schema_migrations` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: u32,
    pub checksum: String,
}

/// Where a keyspace's schema stands against what the binary carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    /// Every carried migration is applied.
    Current,
    /// These carried migrations are not: `memberd migrate` applies them.
    Behind { missing: Vec<u32> },
    /// Migrations newer than the binary's are applied (a newer release migrated first).
    Ahead { newest: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{service}: {source}")]
    Invalid {
        service: String,
        source: SchemaError,
    },
    #[error(
        "{service}: migration {version} was applied from another text than this binary carries \
         (edited after it was applied?); restore the file, and put the change in a new migration"
    )]
    Edited { service: String, version: u32 },
    #[error("{service}: migration {version}, statement {statement}: {cause}")]
    Statement {
        service: String,
        version: u32,
        statement: usize,
        cause: String,
    },
    #[error(
        "keyspace {keyspace} lacks migration(s) {missing:?} of {service} that this memberd \
         needs; run `memberd migrate` with the same [scylla] settings, then start memberd again"
    )]
    Behind {
        service: String,
        keyspace: String,
        missing: Vec<u32>,
    },
    #[error("{service}: reading or recording the applied migrations: {cause}")]
    Record { service: String, cause: String },
}

crate::statements! {
    /// The statements on `schema_migrations` (every keyspace has it). The migrations' own
    /// statements are DDL, run once each as written, with the keyspace filled in.
    struct MigrationStatements {
        applied: "SELECT version, checksum FROM {keyspace}.schema_migrations WHERE service = ?"
            => (String,) => (i32, String),
        record: "INSERT INTO {keyspace}.schema_migrations (service, version, name, checksum, applied_at) VALUES (?, ?, ?, ?, ?)"
            => (String, i32, String, String, CqlTimestamp) => (),
    }
}

/// The statements on `schema_migrations`, for the checks of what a cluster ran.
pub fn statement_definitions() -> Vec<crate::statements::StatementDef> {
    MigrationStatements::definitions()
}

/// The SHA-256 of a migration's text, as recorded.
pub fn checksum(migration: &Migration) -> String {
    hex::encode(Sha256::digest(migration.text.as_bytes()))
}

/// The carried migrations to apply, in order, given what is applied.
pub fn plan<'a>(
    service: &str,
    carried: &'a [Migration],
    applied: &[Applied],
) -> Result<Vec<&'a Migration>, MigrateError> {
    schema::check(carried).map_err(|source| MigrateError::Invalid {
        service: service.into(),
        source,
    })?;
    for done in applied {
        if let Some(m) = carried.iter().find(|m| m.version == done.version)
            && checksum(m) != done.checksum
        {
            return Err(MigrateError::Edited {
                service: service.into(),
                version: done.version,
            });
        }
    }
    Ok(carried
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .collect())
}

/// Where the schema stands; what `memberd` checks before it starts on ScyllaDB.
pub fn state(
    service: &str,
    carried: &[Migration],
    applied: &[Applied],
) -> Result<SchemaState, MigrateError> {
    let missing: Vec<u32> = plan(service, carried, applied)?
        .iter()
        .map(|m| m.version)
        .collect();
    let carried_newest = carried.last().map_or(0, |m| m.version);
    let newest = applied.iter().map(|a| a.version).max().unwrap_or(0);
    Ok(if !missing.is_empty() {
        SchemaState::Behind { missing }
    } else if newest > carried_newest {
        SchemaState::Ahead { newest }
    } else {
        SchemaState::Current
    })
}

/// What `memberd` does with a keyspace's schema state before it starts on it: an older
/// schema is refused (the statements would name tables or columns it lacks), a newer one is
/// accepted (a newer release migrated first, and migrations only add).
pub fn refuse_older(state: SchemaState, service: &str, keyspace: &str) -> Result<(), MigrateError> {
    match state {
        SchemaState::Behind { missing } => Err(MigrateError::Behind {
            service: service.into(),
            keyspace: keyspace.into(),
            missing,
        }),
        SchemaState::Current => Ok(()),
        SchemaState::Ahead { newest } => {
            tracing::info!(
                keyspace,
                newest,
                "the schema is newer than this memberd's: accepted"
            );
            Ok(())
        }
    }
}

/// Checks that the keyspace of `service` holds every migration this binary carries.
pub async fn require_current(
    cluster: &Cluster,
    config: &ScyllaConfig,
    service: &str,
    carried: &[Migration],
) -> Result<(), MigrateError> {
    let applied = applied(cluster, config, service).await?;
    refuse_older(
        state(service, carried, &applied)?,
        service,
        &config.keyspace(service),
    )
}

/// The migrations recorded in the service's keyspace (none when it does not exist yet).
pub async fn applied(
    cluster: &Cluster,
    config: &ScyllaConfig,
    service: &str,
) -> Result<Vec<Applied>, MigrateError> {
    let record = |cause: String| MigrateError::Record {
        service: service.into(),
        cause,
    };
    let keyspace = config.keyspace(service);
    cluster
        .session
        .refresh_metadata()
        .await
        .map_err(|e| record(e.to_string()))?;
    let exists = cluster
        .session
        .get_cluster_state()
        .get_keyspace(&keyspace)
        .is_some_and(|k| k.tables.contains_key("schema_migrations"));
    if !exists {
        return Ok(Vec::new());
    }
    // A table another process has just created can be in the schema tables before the
    // nodes serve it: preparing on it then fails for a moment (seen on Cassandra with two
    // migrations at once). Wait for the nodes to agree, and try again for a few seconds.
    let mut attempt = 0;
    let statements = loop {
        match MigrationStatements::prepare(&cluster.session, &keyspace).await {
            Ok(statements) => break statements,
            Err(e) if attempt < 20 => {
                attempt += 1;
                tracing::debug!(keyspace, error = %e.message, "schema_migrations not served yet");
                let _ = cluster.session.await_schema_agreement().await;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => return Err(record(e.message)),
        }
    };
    let rows = statements
        .applied
        .rows(&cluster.session, (service.to_string(),))
        .await
        .map_err(|e| record(e.message))?;
    rows.into_iter()
        .map(|(version, checksum)| {
            let version = u32::try_from(version).map_err(|e| record(e.to_string()))?;
            Ok(Applied { version, checksum })
        })
        .collect()
}

/// Applies what the keyspace of `service` lacks; the versions applied. `progress` is told
/// of each migration before it runs.
pub async fn apply(
    cluster: &Cluster,
    config: &ScyllaConfig,
    service: &str,
    carried: &[Migration],
    progress: impl Fn(&Migration),
) -> Result<Vec<u32>, MigrateError> {
    let done = applied(cluster, config, service).await?;
    let keyspace = config.keyspace(service);
    let replication = config.replication_cql_for(service);
    let mut versions = Vec::new();
    for migration in plan(service, carried, &done)? {
        progress(migration);
        let failed = |statement: usize, cause: String| MigrateError::Statement {
            service: service.into(),
            version: migration.version,
            statement,
            cause,
        };
        for (n, statement) in schema::statements(migration.text).iter().enumerate() {
            let cql = schema::render(statement, &keyspace, &replication);
            cluster
                .session
                .query_unpaged(cql, ())
                .await
                .map_err(|e| failed(n + 1, e.to_string()))?;
        }
        cluster
            .session
            .await_schema_agreement()
            .await
            .map_err(|e| failed(0, format!("schema agreement: {e}")))?;
        let version = i32::try_from(migration.version).map_err(|e| failed(0, e.to_string()))?;
        let record = |e: loyalty_common::ServiceError| MigrateError::Record {
            service: service.into(),
            cause: e.message,
        };
        // Prepared once the table exists (the first migration creates it).
        let statements = MigrationStatements::prepare(&cluster.session, &keyspace)
            .await
            .map_err(record)?;
        let applied_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        statements
            .record
            .run(
                &cluster.session,
                (
                    service.to_string(),
                    version,
                    migration.name.to_string(),
                    checksum(migration),
                    CqlTimestamp(applied_at),
                ),
            )
            .await
            .map_err(record)?;
        versions.push(migration.version);
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
    use super::*;

    const ONE: Migration = Migration {
        version: 1,
        name: "first",
        text: "CREATE TABLE IF NOT EXISTS {keyspace}.a (id text, PRIMARY KEY ((id)));",
    };
    const TWO: Migration = Migration {
        version: 2,
        name: "second",
        text: "CREATE TABLE IF NOT EXISTS {keyspace}.b (id text, PRIMARY KEY ((id)));",
    };

    fn done(m: &Migration) -> Applied {
        Applied {
            version: m.version,
            checksum: checksum(m),
        }
    }

    #[test]
    fn only_what_is_missing_is_applied_in_order() {
        let carried = [ONE, TWO];
        let versions = |p: Vec<&Migration>| p.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(plan("ledger", &carried, &[]).unwrap()), [1, 2]);
        assert_eq!(
            versions(plan("ledger", &carried, &[done(&ONE)]).unwrap()),
            [2]
        );
        assert!(
            plan("ledger", &carried, &[done(&ONE), done(&TWO)])
                .unwrap()
                .is_empty()
        );
        // A gap (2 recorded, 1 not: an earlier run cut short) is filled.
        assert_eq!(
            versions(plan("ledger", &carried, &[done(&TWO)]).unwrap()),
            [1]
        );
    }

    #[test]
    fn an_applied_migration_whose_text_changed_is_refused() {
        let edited = Applied {
            version: 1,
            checksum: "0".repeat(64),
        };
        let err = plan("ledger", &[ONE, TWO], &[edited]).unwrap_err();
        assert!(matches!(err, MigrateError::Edited { version: 1, .. }));
        assert!(err.to_string().contains("new migration"), "{err}");
    }

    #[test]
    fn the_state_says_behind_current_or_ahead() {
        let carried = [ONE, TWO];
        assert_eq!(
            state("ledger", &carried, &[done(&ONE)]).unwrap(),
            SchemaState::Behind { missing: vec![2] }
        );
        assert_eq!(
            state("ledger", &carried, &[done(&ONE), done(&TWO)]).unwrap(),
            SchemaState::Current
        );
        let newer = Applied {
            version: 3,
            checksum: "f".repeat(64),
        };
        assert_eq!(
            state("ledger", &carried, &[done(&ONE), done(&TWO), newer]).unwrap(),
            SchemaState::Ahead { newest: 3 }
        );
    }

    #[test]
    fn the_record_of_migrations_matches_every_keyspace() {
        for migrations in [
            loyalty_identity::schema::MIGRATIONS,
            loyalty_ledger::schema::MIGRATIONS,
            loyalty_member::schema::MIGRATIONS,
        ] {
            let problems =
                crate::cql_check::check_statements(migrations, &MigrationStatements::definitions());
            assert!(problems.is_empty(), "{problems:?}");
        }
    }

    #[test]
    fn an_older_schema_is_refused_with_the_command_to_run() {
        let err = refuse_older(
            SchemaState::Behind {
                missing: vec![2, 3],
            },
            "ledger",
            "loyalty_ledger",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("keyspace loyalty_ledger lacks migration(s) [2, 3]"),
            "{err}"
        );
        assert!(err.contains("run `memberd migrate`"), "{err}");
        refuse_older(SchemaState::Current, "ledger", "loyalty_ledger").unwrap();
        refuse_older(SchemaState::Ahead { newest: 9 }, "ledger", "loyalty_ledger").unwrap();
    }

    #[test]
    fn invalid_migrations_are_refused_before_anything_runs() {
        let bad = Migration {
            version: 1,
            name: "bad",
            text: "ALTER TABLE {keyspace}.a ADD x text;",
        };
        assert!(matches!(
            plan("ledger", &[bad], &[]).unwrap_err(),
            MigrateError::Invalid { .. }
        ));
    }
}
