//! Typed prepared statements, declared in one place per adapter with [`statements!`]
//! (decision 0012). Each statement carries the Rust types of its bound values and of its
//! rows, so the adapter cannot bind anything else, and [`crate::cql_check`] can check those
//! same types against the migrations' columns with the driver's own type checks.
//!
//! Statements without a condition are marked idempotent, so the driver may retry or
//! speculate them; a conditional one (`IF ...`) never is.
//!
//! No statement is sent once the write it serves is past its deadline
//! (`loyalty_common::write_scope`): the region's lease it was accepted under may have lapsed.
//! One under way at the deadline is given up then, its outcome unknown as after a node's
//! timeout, rather than hold what its write holds until the nodes' own timeouts.

use loyalty_common::error::{ServiceError, ServiceResult};
use loyalty_common::store_metrics::StoreOp;
use loyalty_common::write_scope;
use scylla::client::execution_profile::ExecutionProfileHandle;
use scylla::client::session::Session;
use scylla::deserialize::row::{ColumnIterator, DeserializeRow};
use scylla::deserialize::{DeserializationError, TypeCheckError};
use scylla::frame::response::result::{ColumnSpec, ColumnType, NativeType};
use scylla::response::{PagingState, PagingStateResponse};
use scylla::serialize::row::SerializeRow;
use scylla::statement::Consistency;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;
use std::marker::PhantomData;
use std::time::Instant;

/// A prepared statement binding `B` and returning rows of `R` (`()` when it returns none).
pub struct Stmt<B, R> {
    pub prepared: PreparedStatement,
    /// `store_operation_*` of the statement, registered once when it is prepared so that
    /// running it costs no label lookups.
    timing: StoreOp,
    /// How a batch led by this statement is timed (`op="batch"`), registered with it.
    batch_timing: StoreOp,
    types: PhantomData<fn(B) -> R>,
}

/// The service a keyspace belongs to (`loyalty_ledger` → `ledger`): keyspaces are
/// `<prefix>_<service>`.
fn service_of(keyspace: &str) -> &str {
    keyspace.rsplit('_').next().unwrap_or(keyspace)
}

/// The table a statement reads or writes: the name after `{keyspace}.`.
fn table_of(cql: &str) -> &str {
    let Some((_, after)) = cql.split_once("{keyspace}.") else {
        return "unknown";
    };
    let end = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    &after[..end]
}

/// What `statements!` records of each statement, for the offline checks.
pub struct StatementDef {
    pub name: &'static str,
    /// The text with `{keyspace}` in place of the keyspace.
    pub cql: &'static str,
    /// Serializes a sample of the bound values against the columns they bind.
    pub check_binds: fn(&[ColumnSpec<'_>]) -> Result<(), String>,
    /// Type-checks the row type against the columns selected (or `[applied]`).
    pub check_row: fn(&[ColumnSpec<'_>]) -> Result<(), String>,
}

impl StatementDef {
    pub fn new<B: SerializeRow + Sample, R: for<'f, 'm> DeserializeRow<'f, 'm>>(
        name: &'static str,
        cql: &'static str,
    ) -> Self {
        Self {
            name,
            cql,
            check_binds: check_binds::<B>,
            check_row: check_row::<R>,
        }
    }

    /// Whether the statement is a lightweight transaction (never retried by the driver).
    pub fn is_conditional(&self) -> bool {
        is_conditional(self.cql)
    }
}

fn is_conditional(cql: &str) -> bool {
    cql.split_whitespace()
        .any(|word| word.eq_ignore_ascii_case("IF"))
}

fn is_read(cql: &str) -> bool {
    cql.split_whitespace()
        .next()
        .is_some_and(|word| word.eq_ignore_ascii_case("SELECT"))
}

fn check_binds<B: SerializeRow + Sample>(specs: &[ColumnSpec<'_>]) -> Result<(), String> {
    let context = scylla::serialize::row::RowSerializationContext::from_specs(specs);
    let mut buffer = Vec::new();
    let mut writer = scylla::serialize::writers::RowWriter::new(&mut buffer);
    B::sample()
        .serialize(&context, &mut writer)
        .map_err(|e| e.to_string())
}

fn check_row<R: for<'f, 'm> DeserializeRow<'f, 'm>>(
    specs: &[ColumnSpec<'_>],
) -> Result<(), String> {
    R::type_check(specs).map_err(|e| e.to_string())
}

/// A value of each bindable type, for the offline type check of bound values.
pub trait Sample {
    fn sample() -> Self;
}

macro_rules! sample_default {
    ($($t:ty),*) => { $(impl Sample for $t { fn sample() -> Self { Self::default() } })* };
}
sample_default!(String, i64, i32, i16, i8, bool, f64, Vec<u8>);

impl Sample for CqlTimestamp {
    fn sample() -> Self {
        CqlTimestamp(0)
    }
}
impl<T: Sample> Sample for Option<T> {
    fn sample() -> Self {
        // Some: a None would pass any type check.
        Some(T::sample())
    }
}
impl<T: Sample> Sample for Vec<T> {
    fn sample() -> Self {
        vec![T::sample()]
    }
}
macro_rules! sample_tuple {
    ($($t:ident),*) => {
        impl<$($t: Sample),*> Sample for ($($t,)*) {
            fn sample() -> Self { ($($t::sample(),)*) }
        }
    };
}
impl Sample for () {
    fn sample() -> Self {}
}
sample_tuple!(A);
sample_tuple!(A, B);
sample_tuple!(A, B, C);
sample_tuple!(A, B, C, D);
sample_tuple!(A, B, C, D, E);
sample_tuple!(A, B, C, D, E, F);
sample_tuple!(A, B, C, D, E, F, G);
sample_tuple!(A, B, C, D, E, F, G, H);
sample_tuple!(A, B, C, D, E, F, G, H, I);
sample_tuple!(A, B, C, D, E, F, G, H, I, J);

/// The row of a conditional statement: whether it applied (its `[applied]` column). The
/// other columns (the current values when it did not apply) are not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedRow(pub bool);

impl<'f, 'm> DeserializeRow<'f, 'm> for AppliedRow {
    fn type_check(specs: &[ColumnSpec]) -> Result<(), TypeCheckError> {
        match specs.first() {
            Some(spec)
                if spec.name() == "[applied]"
                    && *spec.typ() == ColumnType::Native(NativeType::Boolean) =>
            {
                Ok(())
            }
            _ => Err(TypeCheckError::new(NotApplied)),
        }
    }

    fn deserialize(mut row: ColumnIterator<'f, 'm>) -> Result<Self, DeserializationError> {
        let column = row
            .next()
            .ok_or_else(|| DeserializationError::new(NotApplied))?
            .map_err(DeserializationError::new)?;
        let applied = <bool as scylla::deserialize::value::DeserializeValue>::deserialize(
            column.spec.typ(),
            column.slice,
        )?;
        Ok(AppliedRow(applied))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a conditional statement's first column is the boolean [applied]")]
struct NotApplied;

/// The text with the keyspace filled in.
pub fn render(cql: &str, keyspace: &str) -> String {
    cql.replace("{keyspace}", keyspace)
}

/// A store error as the services report it: the cluster is unavailable, retry later.
pub fn unavailable(what: &str, err: impl std::fmt::Display) -> ServiceError {
    ServiceError::unavailable(format!(
        "ScyllaDB {what}: {err}; check that the cluster is up and scylla.nodes"
    ))
}

impl<B, R> Stmt<B, R>
where
    B: SerializeRow,
    R: for<'f, 'm> DeserializeRow<'f, 'm>,
{
    /// Prepares `cql` (with `{keyspace}`) on the session. Unconditional statements are
    /// idempotent: the driver may retry them and speculate on them.
    pub async fn prepare(
        session: &Session,
        name: &str,
        cql: &str,
        keyspace: &str,
    ) -> ServiceResult<Self> {
        let mut prepared = session
            .prepare(render(cql, keyspace))
            .await
            .map_err(|e| unavailable(&format!("preparing {name}"), e))?;
        prepared.set_is_idempotent(!is_conditional(cql));
        // The session's default profile is for writes (`scylla.write_consistency`, which
        // may be EACH_QUORUM, and is switched during a failover): a read is LOCAL_QUORUM
        // whatever it says, on a handle of its own.
        if is_read(cql) {
            let writes = session.get_default_execution_profile_handle().to_profile();
            let reads = writes.to_builder().consistency(Consistency::LocalQuorum);
            prepared.set_execution_profile_handle(Some(reads.build().into_handle()));
        }
        Ok(Self {
            prepared,
            timing: StoreOp::new(service_of(keyspace), table_of(cql), name),
            batch_timing: StoreOp::new(service_of(keyspace), table_of(cql), "batch"),
            types: PhantomData,
        })
    }

    /// Every row (one page: the statement's own LIMIT bounds it).
    pub async fn rows(&self, session: &Session, binds: B) -> ServiceResult<Vec<R>> {
        write_scope::check_deadline("a read")?;
        let started = Instant::now();
        let reading = self.read_rows(session, binds);
        let result = write_scope::within_deadline("a read", reading).await;
        self.timing.observe(started, &result);
        result
    }

    async fn read_rows(&self, session: &Session, binds: B) -> ServiceResult<Vec<R>> {
        let result = session
            .execute_unpaged(&self.prepared, binds)
            .await
            .map_err(|e| unavailable("read", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| unavailable("read", e))?;
        rows.rows::<R>()
            .map_err(|e| unavailable("read", e))?
            .collect::<Result<Vec<R>, _>>()
            .map_err(|e| unavailable("row", e))
    }

    /// The first row, if any.
    pub async fn first(&self, session: &Session, binds: B) -> ServiceResult<Option<R>> {
        Ok(self.rows(session, binds).await?.into_iter().next())
    }

    /// Every row, page by page (`page_size` rows a round trip), for reads with no LIMIT.
    pub async fn all_pages(
        &self,
        session: &Session,
        binds: B,
        page_size: i32,
    ) -> ServiceResult<Vec<R>>
    where
        B: Clone,
    {
        write_scope::check_deadline("a read")?;
        let started = Instant::now();
        let reading = self.read_pages(session, binds, page_size);
        let result = write_scope::within_deadline("a read", reading).await;
        self.timing.observe(started, &result);
        result
    }

    async fn read_pages(&self, session: &Session, binds: B, page_size: i32) -> ServiceResult<Vec<R>>
    where
        B: Clone,
    {
        let mut statement = self.prepared.clone();
        statement.set_page_size(page_size);
        let mut out = Vec::new();
        let mut paging = PagingState::start();
        loop {
            let (result, next) = session
                .execute_single_page(&statement, binds.clone(), paging)
                .await
                .map_err(|e| unavailable("read", e))?;
            let rows = result
                .into_rows_result()
                .map_err(|e| unavailable("read", e))?;
            for row in rows.rows::<R>().map_err(|e| unavailable("read", e))? {
                out.push(row.map_err(|e| unavailable("row", e))?);
            }
            match next {
                PagingStateResponse::HasMorePages { state } => paging = state,
                PagingStateResponse::NoMorePages => return Ok(out),
            }
        }
    }
}

impl<B: SerializeRow> Stmt<B, ()> {
    /// Runs a statement that returns no rows.
    pub async fn run(&self, session: &Session, binds: B) -> ServiceResult<()> {
        write_scope::check_deadline("a write")?;
        let started = Instant::now();
        let writing = async {
            (session.execute_unpaged(&self.prepared, binds).await)
                .map(|_| ())
                .map_err(|e| unavailable("write", e))
        };
        let result = write_scope::within_deadline("a write", writing).await;
        self.timing.observe(started, &result);
        result
    }
}

impl<B: SerializeRow> Stmt<B, AppliedRow> {
    /// Runs a conditional statement: whether it applied.
    pub async fn applied(&self, session: &Session, binds: B) -> ServiceResult<bool> {
        write_scope::check_deadline("a conditional write")?;
        let started = Instant::now();
        let writing = async {
            (session.execute_unpaged(&self.prepared, binds).await)
                .map_err(|e| unavailable("conditional write", e))
                .and_then(first_applied)
        };
        let result = write_scope::within_deadline("a conditional write", writing).await;
        self.timing.observe(started, &result);
        result
    }
}

fn first_applied(result: scylla::response::query_result::QueryResult) -> ServiceResult<bool> {
    let rows = result
        .into_rows_result()
        .map_err(|e| unavailable("conditional write", e))?;
    let row = rows
        .first_row::<AppliedRow>()
        .map_err(|e| unavailable("conditional write", e))?;
    Ok(row.0)
}

type BoxedRow = Box<dyn SerializeRow + Send + Sync>;

/// A batch of typed statements on one partition, conditional when any of them is: it
/// applies whole or not at all.
pub struct BatchWrite {
    batch: Batch,
    values: Vec<BoxedRow>,
    conditional: bool,
    /// Timed as its first statement's table, with `op="batch"`.
    timing: Option<StoreOp>,
}

impl Default for BatchWrite {
    fn default() -> Self {
        Self {
            batch: Batch::new(BatchType::Logged),
            values: Vec::new(),
            conditional: false,
            timing: None,
        }
    }
}

impl BatchWrite {
    pub fn push<B, R>(&mut self, statement: &Stmt<B, R>, binds: B)
    where
        B: SerializeRow + Send + Sync + 'static,
    {
        self.conditional |= !statement.prepared.get_is_idempotent();
        if self.timing.is_none() {
            self.timing = Some(statement.batch_timing.clone());
        }
        self.batch.append_statement(statement.prepared.clone());
        self.values.push(Box::new(binds));
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Runs the batch under `profile` (the ledger's write consistency, say): whether it
    /// applied. A batch without a condition always applies.
    pub async fn apply(
        mut self,
        session: &Session,
        profile: Option<&ExecutionProfileHandle>,
    ) -> ServiceResult<bool> {
        if self.values.is_empty() {
            return Ok(true);
        }
        write_scope::check_deadline("a batch write")?;
        if let Some(profile) = profile {
            self.batch
                .set_execution_profile_handle(Some(profile.clone()));
        }
        self.batch.set_is_idempotent(!self.conditional);
        let started = Instant::now();
        let conditional = self.conditional;
        let writing = async {
            (session.batch(&self.batch, &self.values).await)
                .map_err(|e| unavailable("batch write", e))
                .and_then(|result| match conditional {
                    true => first_applied(result),
                    false => Ok(true),
                })
        };
        let result = write_scope::within_deadline("a batch write", writing).await;
        if let Some(timing) = &self.timing {
            timing.observe(started, &result);
        }
        result
    }
}

/// Declares an adapter's statements in one place: a struct of typed [`Stmt`]s with
/// `prepare(session, keyspace)` and `definitions()` (what the offline checks read).
///
/// ```ignore
/// loyalty_scylla::statements! {
///     pub struct WalletStatements {
///         head: "SELECT version, head FROM {keyspace}.wallets WHERE tenant = ? AND member = ? LIMIT 1"
///             => (String, String) -> (Option<i64>, Option<Vec<u8>>),
///     }
/// }
/// ```
#[macro_export]
macro_rules! statements {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$field_meta:meta])* $field:ident : $cql:literal => $binds:ty => $row:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$field_meta])* pub $field: $crate::statements::Stmt<$binds, $row>, )*
        }

        impl $name {
            /// Prepares every statement on the session, for `keyspace`.
            pub async fn prepare(
                session: &::scylla::client::session::Session,
                keyspace: &str,
            ) -> ::loyalty_common::error::ServiceResult<Self> {
                Ok(Self {
                    $( $field: $crate::statements::Stmt::prepare(
                        session, stringify!($field), $cql, keyspace).await?, )*
                })
            }

            /// Every statement with its types, for the offline checks.
            #[allow(dead_code)] // Read by tests only.
            pub fn definitions() -> Vec<$crate::statements::StatementDef> {
                vec![ $( $crate::statements::StatementDef::new::<$binds, $row>(
                    stringify!($field), $cql), )* ]
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_timed_under_its_service_and_table() {
        assert_eq!(service_of("loyalty_ledger"), "ledger");
        assert_eq!(service_of("eu_west_loyalty_member"), "member");
        assert_eq!(
            table_of("SELECT seq FROM {keyspace}.change_readers WHERE reader = ?"),
            "change_readers"
        );
        assert_eq!(
            table_of("UPDATE {keyspace}.wallets USING TTL ? SET holder = ?"),
            "wallets"
        );
        assert_eq!(table_of("SELECT now() FROM system.local"), "unknown");
    }
}
