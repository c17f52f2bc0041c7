//! Blob columns (heads, entries, profiles, events): postcard, as the embedded stores write
//! them, so one record reads the same on either store.

use loyalty_common::error::{ServiceError, ServiceResult};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub fn encode<T: Serialize>(value: &T) -> ServiceResult<Vec<u8>> {
    postcard::to_stdvec(value).map_err(ServiceError::internal)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> ServiceResult<T> {
    postcard::from_bytes(bytes).map_err(ServiceError::internal)
}
