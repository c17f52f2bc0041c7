//! The birthday index: which members of a tenant were born on a given month and day, for
//! the campaign service's daily birthday sweep, without birthdays in the clear. A birthday is
//! sealed personal data (`YYYY-MM-DD`); the index holds the keyed hash of its `MM-DD` under
//! the tenant's blind-index key ([`BlindIndex::month_day`]), so its rows hold no date. They
//! show which members of a tenant share a month and day, as blind indexes show equal phones;
//! with only 366 month-days, whoever holds the key could tell which day a hash is, so it is
//! the key (derived from the master key, outside the store) that keeps them closed. The year
//! is left out: the sweep asks for a day, and the whole date would tell members' ages apart.

use crate::blind::BlindIndex;
use crate::profile::Personal;
use chrono::NaiveDate;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::personal::PersonalData;

/// A leap year: every month and day someone can be born on is a date in it (29 February).
const LEAP_YEAR: i32 = 2000;

/// The month and day of a birthday written `YYYY-MM-DD`; None if it is not a date so written.
pub fn month_day(birthday: &str) -> Option<(u32, u32)> {
    let b = birthday.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return None;
    }
    let number = |range: std::ops::Range<usize>| birthday.get(range)?.parse::<u32>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some((month, day))
}

/// Refuses a month and day that are no one's birthday, naming the field at fault.
pub fn check_month_day(month: u32, day: u32) -> ServiceResult<()> {
    if !(1..=12).contains(&month) {
        return Err(ServiceError::invalid("month must be 1 to 12"));
    }
    if NaiveDate::from_ymd_opt(LEAP_YEAR, month, day).is_none() {
        let last = (28..=31)
            .rev()
            .find(|d| NaiveDate::from_ymd_opt(LEAP_YEAR, month, *d).is_some())
            .unwrap_or(28);
        return Err(ServiceError::invalid(format!(
            "day must be 1 to {last} in month {month}"
        )));
    }
    Ok(())
}

/// Refuses a birthday being set that is not a date as `YYYY-MM-DD`. The message names the
/// field and never the value (personal data).
pub fn check(birthday: Option<&PersonalData>) -> ServiceResult<()> {
    match birthday {
        Some(b) if month_day(b.expose()).is_none() => Err(ServiceError::invalid(
            "birthday must be a date written YYYY-MM-DD",
        )),
        _ => Ok(()),
    }
}

/// The index of the profile's birthday. None without one, and for one that is not a date:
/// a profile stored before birthdays were checked keeps working, unlisted.
pub fn index(blind: &BlindIndex, personal: &Personal) -> Option<[u8; 32]> {
    let (month, day) = month_day(personal.birthday.as_ref()?.expose())?;
    Some(blind.month_day(month, day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birthdays_are_dates_written_year_month_day() {
        assert_eq!(month_day("1990-03-07"), Some((3, 7)));
        assert_eq!(month_day("2000-02-29"), Some((2, 29)));
        for bad in [
            "1991-02-29",
            "1990-3-7",
            "1990/03/07",
            "1990-13-01",
            "1990-04-31",
            " 1990-03-07",
            "19900307",
            "",
        ] {
            assert_eq!(month_day(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_month_and_day_is_checked_against_a_leap_year() {
        check_month_day(2, 29).unwrap();
        check_month_day(12, 31).unwrap();
        let message = |m, d| check_month_day(m, d).unwrap_err().message;
        assert_eq!(message(0, 1), "month must be 1 to 12");
        assert_eq!(message(13, 1), "month must be 1 to 12");
        assert_eq!(message(2, 30), "day must be 1 to 29 in month 2");
        assert_eq!(message(4, 31), "day must be 1 to 30 in month 4");
        assert_eq!(message(1, 0), "day must be 1 to 31 in month 1");
    }

    #[test]
    fn a_malformed_birthday_is_refused_without_its_value() {
        let err = check(Some(&PersonalData::new("1990/03/07"))).unwrap_err();
        assert_eq!(err.code, loyalty_common::error::ErrorCode::InvalidArgument);
        assert!(!err.message.contains("1990"), "{}", err.message);
        check(Some(&PersonalData::new("1990-03-07"))).unwrap();
        check(None).unwrap();
    }
}
