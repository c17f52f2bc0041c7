//! A campaign's schedule in the tenant's local time: a start and an optional end written as
//! a local date (`2026-12-24`) or date and time (`2026-12-24T10:00`) in an IANA time zone
//! (`Asia/Shanghai`). A date-only start means the start of that local day; a date-only end
//! means the end of it (the next local midnight), so "until 31 December" includes it.
//! A local time that a clock change skips is taken as the first instant after the gap; one
//! it repeats, as the earlier of the two.

use crate::template::invalid;
use chrono::{LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use loyalty_common::error::ServiceResult;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub starts: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends: Option<String>,
    pub time_zone: String,
}

/// A schedule as instants (Unix milliseconds); the end is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub starts_ms: i64,
    pub ends_ms: Option<i64>,
}

impl Window {
    pub fn contains(&self, at_ms: i64) -> bool {
        at_ms >= self.starts_ms && self.ends_ms.is_none_or(|end| at_ms < end)
    }
}

impl Schedule {
    /// The schedule's instants, or why it has none.
    pub fn resolve(&self) -> ServiceResult<Window> {
        let tz = self.zone()?;
        let starts_ms = local_instant(tz, "schedule.starts", &self.starts, Edge::Start)?;
        let ends_ms = match &self.ends {
            Some(end) => Some(local_instant(tz, "schedule.ends", end, Edge::End)?),
            None => None,
        };
        if ends_ms.is_some_and(|end| end <= starts_ms) {
            return Err(invalid("schedule.ends", "must be after schedule.starts"));
        }
        Ok(Window { starts_ms, ends_ms })
    }

    pub fn zone(&self) -> ServiceResult<Tz> {
        self.time_zone.parse::<Tz>().map_err(|_| {
            invalid(
                "schedule.time_zone",
                "must be an IANA time zone such as Asia/Shanghai",
            )
        })
    }

    /// The local day number (days since 1970-01-01 in the schedule's zone) of `at_ms`, for
    /// caps counted per day.
    pub fn local_day(&self, at_ms: i64) -> ServiceResult<i64> {
        let tz = self.zone()?;
        let at = chrono::DateTime::from_timestamp_millis(at_ms)
            .ok_or_else(|| invalid("at", "is out of range"))?;
        let local = at.with_timezone(&tz).date_naive();
        Ok(local.signed_duration_since(NaiveDate::default()).num_days())
    }
}

#[derive(Clone, Copy)]
enum Edge {
    Start,
    End,
}

fn local_instant(tz: Tz, field: &str, text: &str, edge: Edge) -> ServiceResult<i64> {
    let local = if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = match edge {
            Edge::Start => Some(date),
            Edge::End => date.succ_opt(),
        };
        day.ok_or_else(|| invalid(field, "is out of range"))?
            .and_time(NaiveTime::MIN)
    } else {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
            .map_err(|_| {
                invalid(
                    field,
                    "must be a local date (2026-12-24) or date and time (2026-12-24T10:00)",
                )
            })?
    };
    let instant = match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
        // Skipped by a clock change: the first minute after the gap (gaps are at most hours).
        LocalResult::None => (1..=180)
            .find_map(|m| {
                tz.from_local_datetime(&(local + chrono::Duration::minutes(m)))
                    .earliest()
            })
            .ok_or_else(|| invalid(field, "is not a time in the time zone"))?,
    };
    Ok(instant.timestamp_millis())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn schedule(starts: &str, ends: Option<&str>, tz: &str) -> Schedule {
        Schedule {
            starts: starts.into(),
            ends: ends.map(String::from),
            time_zone: tz.into(),
        }
    }

    #[test]
    fn a_date_only_end_is_the_end_of_that_local_day() {
        let w = schedule("2026-12-24", Some("2026-12-31"), "Asia/Shanghai")
            .resolve()
            .unwrap();
        // 2026-12-24T00:00+08:00 and 2027-01-01T00:00+08:00.
        assert_eq!(w.starts_ms, 1_798_041_600_000);
        assert_eq!(w.ends_ms, Some(1_798_732_800_000));
        assert!(
            w.contains(1_798_732_800_000 - 1),
            "the last millisecond of 31 December"
        );
        assert!(!w.contains(1_798_732_800_000));
    }

    #[test]
    fn times_are_local_to_the_zone() {
        let shanghai = schedule("2026-06-01T10:00", None, "Asia/Shanghai");
        let london = schedule("2026-06-01T10:00", None, "Europe/London");
        let (a, b) = (shanghai.resolve().unwrap(), london.resolve().unwrap());
        assert_eq!(
            b.starts_ms - a.starts_ms,
            7 * 3_600_000,
            "UTC+8 against summer UTC+1"
        );
    }

    #[test]
    fn a_time_skipped_by_a_clock_change_starts_after_the_gap() {
        // London skips 01:00 to 02:00 on 2026-03-29.
        let w = schedule("2026-03-29T01:30", None, "Europe/London")
            .resolve()
            .unwrap();
        let after = schedule("2026-03-29T02:00", None, "Europe/London")
            .resolve()
            .unwrap();
        assert_eq!(w.starts_ms, after.starts_ms);
    }

    #[test]
    fn bad_schedules_are_refused_naming_the_field() {
        for (s, field) in [
            (schedule("24/12/2026", None, "UTC"), "schedule.starts"),
            (
                schedule("2026-12-24", Some("2026-12-23"), "UTC"),
                "schedule.ends",
            ),
            (
                schedule("2026-12-24", None, "Mars/Olympus"),
                "schedule.time_zone",
            ),
        ] {
            let e = s.resolve().unwrap_err();
            assert!(e.message.starts_with(field), "{}", e.message);
        }
    }

    #[test]
    fn local_days_turn_at_local_midnight() {
        let s = schedule("2026-01-01", None, "Asia/Shanghai");
        // 2026-01-01T15:59:59Z is 23:59:59 in Shanghai; a second later is the next day.
        let before = s.local_day(1_767_283_199_000).unwrap();
        let after = s.local_day(1_767_283_200_000).unwrap();
        assert_eq!(after, before + 1);
    }
}
