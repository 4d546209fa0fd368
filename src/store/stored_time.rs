//! Timestamps as SQLite holds them: the text sqlx writes for a `DateTime<Utc>`
//! (`to_rfc3339`, e.g. `2026-12-01T03:08:20.123456+00:00`), read without chrono's general
//! parser, which a page of connections called hundreds of times. Any other shape is `None`, and
//! the caller falls back to sqlx's own decoding, so nothing readable before becomes unreadable.

use chrono::{DateTime, NaiveDate, Utc};

/// The instant `text` names, when it has the shape sqlx writes; `None` otherwise.
pub(super) fn parse(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = two(b[0], b[1])? * 100 + two(b[2], b[3])?;
    let (month, day) = (two(b[5], b[6])?, two(b[8], b[9])?);
    let (hour, minute, second) = (two(b[11], b[12])?, two(b[14], b[15])?, two(b[17], b[18])?);
    let mut rest = &b[19..];
    let mut nano = 0;
    if let [b'.', fraction @ ..] = rest {
        let mut digits = 0;
        while let Some(d) = fraction.get(digits).copied().and_then(digit) {
            if digits == 9 {
                return None;
            }
            nano = nano * 10 + d;
            digits += 1;
        }
        if digits == 0 {
            return None;
        }
        nano *= SCALE[digits];
        rest = &fraction[digits..];
    }
    if rest != b"+00:00" && rest != b"Z" {
        return None;
    }
    // A leap second (second 60) is left to chrono, which knows where one may fall.
    let naive =
        NaiveDate::from_ymd_opt(year as i32, month, day)?.and_hms_nano_opt(hour, minute, second, nano)?;
    Some(naive.and_utc())
}

/// What a fraction of `n` digits is multiplied by to make nanoseconds.
const SCALE: [u32; 10] = [0, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];

fn digit(c: u8) -> Option<u32> {
    let d = c.wrapping_sub(b'0');
    (d < 10).then_some(u32::from(d))
}

/// Two ASCII digits as a number; `None` for anything else.
fn two(tens: u8, ones: u8) -> Option<u32> {
    Some(digit(tens)? * 10 + digit(ones)?)
}

#[cfg(test)]
mod tests {
    use chrono::{SecondsFormat, TimeZone};

    use super::*;

    fn chrono(text: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text).ok().map(|at| at.with_timezone(&Utc))
    }

    #[test]
    fn reads_what_sqlx_writes_as_chrono_reads_it() {
        let nanos = [0, 1, 10, 120_000_000, 123_000_000, 123_456_000, 123_456_789, 999_999_999];
        for (year, nano) in [1970, 2000, 2024, 2026, 9999, 1, 999].into_iter().zip(nanos.into_iter().cycle())
        {
            let at =
                Utc.with_ymd_and_hms(year, 2, 28, 23, 59, 58).unwrap() + chrono::Duration::nanoseconds(nano);
            assert_eq!(parse(&at.to_rfc3339()), Some(at));
            for text in [
                at.to_rfc3339(),
                at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                at.to_rfc3339_opts(SecondsFormat::Nanos, false),
                at.to_rfc3339_opts(SecondsFormat::Millis, false),
            ] {
                assert_eq!(parse(&text), chrono(&text), "{text}");
            }
        }
        let now = Utc::now();
        assert_eq!(parse(&now.to_rfc3339()), Some(now));
    }

    #[test]
    fn leaves_every_other_shape_to_chrono() {
        for text in [
            "",
            "2026-12-01",
            "2026-12-01 03:08:20",
            "2026-12-01 03:08:20+00:00",
            "2026-12-01T03:08:20+01:00",
            "2026-12-01T03:08:20-00:00",
            "2026-12-01T03:08:20.+00:00",
            "2026-12-01T03:08:20.1234567891+00:00",
            "2026-12-01T03:08:20+00:00 ",
            "2026-13-01T03:08:20+00:00",
            "2026-02-30T03:08:20+00:00",
            "2026-12-01T24:00:00+00:00",
            "2016-12-31T23:59:60+00:00",
            "+2026-12-01T03:08:20+00:00",
            "2026-12-0xT03:08:20+00:00",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
