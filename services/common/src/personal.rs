//! Personal data in memory: a member's name, phone, email, ID number, address. Its `Debug`
//! and `Display` print nothing of the value, so a careless log line, panic message or error
//! shows `[personal]` instead; the value is read on purpose, with [`PersonalData::expose`],
//! where it is sealed, masked, compared or sent to a caller allowed to see it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One personal value. Serialized as the plain string (the stored and wire formats are those
/// of a `String`).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonalData(String);

impl PersonalData {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself: to seal, mask, compare or hand to a caller allowed to see it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value itself, taken.
    pub fn into_exposed(self) -> String {
        self.0
    }
}

/// An optional personal value, read on purpose.
pub trait Exposed {
    fn exposed(&self) -> Option<&str>;
}

impl Exposed for Option<PersonalData> {
    fn exposed(&self) -> Option<&str> {
        self.as_ref().map(PersonalData::expose)
    }
}

impl From<String> for PersonalData {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for PersonalData {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

impl fmt::Debug for PersonalData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[personal]")
    }
}

impl fmt::Display for PersonalData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[personal]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_shows_nothing_of_the_value() {
        let phone = PersonalData::from("13812345678");
        assert_eq!(format!("{phone:?} {phone}"), "[personal] [personal]");
        assert_eq!(phone.expose(), "13812345678");
    }

    #[test]
    fn it_is_stored_as_the_plain_string() {
        let phone = PersonalData::from("13812345678");
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"13812345678\"");
        let plain = postcard::to_allocvec(&"13812345678".to_string()).unwrap();
        assert_eq!(postcard::to_allocvec(&phone).unwrap(), plain);
    }
}
