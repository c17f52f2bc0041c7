//! Custom attributes: a tenant's own fields on a member (`city`, `favourite_store`, ...),
//! plain data that segments can read. They are not sealed, so they must not hold personal
//! data; the limits keep a member's facts row small.

use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use std::collections::BTreeMap;

/// Attributes a member has at most.
pub const MAX_ATTRIBUTES: usize = 50;
/// The longest attribute value, in characters.
pub const MAX_VALUE_CHARS: usize = 256;

/// Checks a member's attributes: at most 50, names of 1 to 64 lower-case letters, digits
/// or `_`, values of at most 256 characters.
pub fn check_attributes(attributes: &BTreeMap<String, String>) -> ServiceResult<()> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(ServiceError::invalid(format!(
            "a member has at most {MAX_ATTRIBUTES} attributes"
        )));
    }
    for (name, value) in attributes {
        let name_ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return Err(ServiceError::invalid(format!(
                "attribute name {name:?} is not 1 to 64 lower-case letters, digits or '_'"
            )));
        }
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(ServiceError::invalid(format!(
                "attribute {name} is longer than {MAX_VALUE_CHARS} characters"
            )));
        }
    }
    Ok(())
}
