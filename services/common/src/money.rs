//! Points and money are integers: points, or minor currency units. Parsed at the edge so the
//! domain only sees amounts that are in range.

use crate::error::{ErrorCode, ServiceError};

/// The largest amount one request may carry: far above any real order, far below `i64::MAX`
/// so that sums of many entries cannot overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// Checks a strictly positive amount.
pub fn positive(field: &str, value: i64) -> Result<i64, ServiceError> {
    if value <= 0 {
        return Err(ServiceError::invalid(format!(
            "{field} must be greater than zero"
        )));
    }
    within_limit(field, value)
}

/// Checks a non-negative amount.
pub fn non_negative(field: &str, value: i64) -> Result<i64, ServiceError> {
    if value < 0 {
        return Err(ServiceError::invalid(format!(
            "{field} must not be negative"
        )));
    }
    within_limit(field, value)
}

fn within_limit(field: &str, value: i64) -> Result<i64, ServiceError> {
    if value.unsigned_abs() > MAX_AMOUNT as u64 {
        return Err(ServiceError::new(
            ErrorCode::AmountOverflow,
            format!("{field} must be at most {MAX_AMOUNT}"),
        ));
    }
    Ok(value)
}

/// Checks a signed, non-zero amount (adjustments).
pub fn non_zero(field: &str, value: i64) -> Result<i64, ServiceError> {
    if value == 0 {
        return Err(ServiceError::invalid(format!("{field} must not be zero")));
    }
    within_limit(field, value)
}

/// Adds with overflow reported as a stable error instead of a panic.
pub fn checked_add(a: i64, b: i64) -> Result<i64, ServiceError> {
    a.checked_add(b)
        .ok_or_else(|| ServiceError::new(ErrorCode::AmountOverflow, "the balance would overflow"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_checked() {
        assert!(positive("points", 0).is_err());
        assert!(positive("points", -1).is_err());
        assert_eq!(positive("points", 5).unwrap(), 5);
        assert_eq!(
            positive("points", i64::MAX).unwrap_err().code,
            ErrorCode::AmountOverflow
        );
        assert!(non_zero("points", 0).is_err());
        assert!(checked_add(i64::MAX, 1).is_err());
    }
}
