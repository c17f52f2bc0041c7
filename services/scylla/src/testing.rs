//! Row mapping without a cluster: values serialized by the driver as it binds them, and read
//! back by the driver as it reads a result row. Adapters' unit tests use this to cover their
//! mapping between rows and domain types on the driver's own types and wire format.

use crate::cql_check::parse_type;
use scylla::deserialize::FrameSlice;
use scylla::deserialize::row::{ColumnIterator, DeserializeRow};
use scylla::frame::response::result::{ColumnSpec, TableSpec};
use scylla::serialize::row::{RowSerializationContext, SerializeRow};
use scylla::serialize::writers::RowWriter;

/// Column specs from `(name, CQL type)` pairs.
pub fn specs(columns: &[(&str, &str)]) -> Result<Vec<ColumnSpec<'static>>, String> {
    columns
        .iter()
        .map(|(name, typ)| {
            Ok(ColumnSpec::owned(
                name.to_string(),
                parse_type(typ)?,
                TableSpec::owned("ks".into(), "table".into()),
            ))
        })
        .collect()
}

/// The bytes the driver sends for `values` bound to `columns` (its type checks included).
pub fn serialize<B: SerializeRow>(columns: &[(&str, &str)], values: &B) -> Result<Vec<u8>, String> {
    let specs = specs(columns)?;
    let context = RowSerializationContext::from_specs(&specs);
    let mut buffer = Vec::new();
    let mut writer = RowWriter::new(&mut buffer);
    values
        .serialize(&context, &mut writer)
        .map_err(|e| e.to_string())?;
    Ok(buffer)
}

/// Reads a row of `columns` from its wire bytes as `R` (the driver's type check first).
pub fn deserialize<R>(columns: &[(&str, &str)], bytes: &[u8]) -> Result<R, String>
where
    R: for<'f, 'm> DeserializeRow<'f, 'm>,
{
    let specs = specs(columns)?;
    R::type_check(&specs).map_err(|e| e.to_string())?;
    R::deserialize(ColumnIterator::new(&specs, FrameSlice::new_borrowed(bytes)))
        .map_err(|e| e.to_string())
}

/// `values` written to `columns` and read back as `R`: what a stored row reads as.
pub fn round_trip<B, R>(columns: &[(&str, &str)], values: &B) -> Result<R, String>
where
    B: SerializeRow,
    R: for<'f, 'm> DeserializeRow<'f, 'm>,
{
    deserialize(columns, &serialize(columns, values)?)
}
