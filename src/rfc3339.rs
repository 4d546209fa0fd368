//! Timestamps written as chrono's `to_rfc3339` writes them, without the formatting machinery:
//! the `DateTime` scalar writes them (a page of connections writes hundreds) and so does sqlx
//! for SQLite (a sweep's batch binds thousands, see `store::json_rows`). It must never differ
//! from `to_rfc3339` by a byte; the tests hold it to chrono's output.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// `at.to_rfc3339()`: seconds, then a fraction of 3, 6 or 9 digits only when it is not zero
/// (as few as hold it), and `+00:00`.
pub fn write(at: &DateTime<Utc>) -> String {
    let year = at.year();
    if !(0..=9999).contains(&year) {
        // chrono writes a sign and five digits or more there; not worth a second writer.
        return at.to_rfc3339();
    }
    // chrono counts a leap second as nanoseconds past 10^9 and writes it as second 60.
    let (mut second, mut nano) = (at.second(), at.nanosecond());
    if nano >= 1_000_000_000 {
        second += 1;
        nano -= 1_000_000_000;
    }
    let mut out = [0u8; 35];
    two(&mut out[0..], (year / 100) as u32);
    two(&mut out[2..], (year % 100) as u32);
    out[4] = b'-';
    two(&mut out[5..], at.month());
    out[7] = b'-';
    two(&mut out[8..], at.day());
    out[10] = b'T';
    two(&mut out[11..], at.hour());
    out[13] = b':';
    two(&mut out[14..], at.minute());
    out[16] = b':';
    two(&mut out[17..], second);
    let mut len = 19;
    let (digits, fraction) = match nano {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (3, n / 1_000_000),
        n if n % 1_000 == 0 => (6, n / 1_000),
        n => (9, n),
    };
    if digits > 0 {
        out[len] = b'.';
        let mut rest = fraction;
        for at in (len + 1..=len + digits).rev() {
            out[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        len += 1 + digits;
    }
    out[len..len + 6].copy_from_slice(b"+00:00");
    len += 6;
    std::str::from_utf8(&out[..len]).expect("digits and ASCII punctuation").to_owned()
}

/// `n` (below 100) as two digits.
fn two(out: &mut [u8], n: u32) {
    out[0] = b'0' + (n / 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, nano: u32) -> DateTime<Utc> {
        let naive = NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_nano_opt(h, mi, s, nano).unwrap();
        Utc.from_utc_datetime(&naive)
    }

    fn same_as_chrono(at: DateTime<Utc>) {
        assert_eq!(write(&at), at.to_rfc3339(), "for {at:?}");
    }

    #[test]
    fn writes_what_chrono_writes_for_every_precision() {
        same_as_chrono(at(2026, 12, 1, 3, 8, 20, 0));
        same_as_chrono(at(2026, 12, 1, 3, 8, 20, 120_000_000));
        same_as_chrono(at(2026, 12, 1, 3, 8, 20, 123_456_000));
        same_as_chrono(at(2026, 12, 1, 3, 8, 20, 1_000));
        same_as_chrono(at(2026, 12, 1, 3, 8, 20, 123_456_789));
        same_as_chrono(at(2026, 12, 1, 3, 8, 20, 1));
        same_as_chrono(at(2026, 1, 9, 0, 0, 0, 999_999_999));
        same_as_chrono(Utc::now());
    }

    #[test]
    fn writes_what_chrono_writes_for_odd_years_and_leap_seconds() {
        for year in [0, 1, 99, 100, 999, 1000, 1969, 1970, 2000, 9999, -1, -10000, 10000, 262_142] {
            same_as_chrono(at(year, 2, 28, 23, 59, 59, 5_000));
        }
        same_as_chrono(at(2024, 2, 29, 12, 0, 0, 0));
        same_as_chrono(at(2016, 12, 31, 23, 59, 59, 1_000_000_000));
        same_as_chrono(at(2016, 12, 31, 23, 59, 59, 1_500_000_000));
        same_as_chrono(DateTime::<Utc>::MIN_UTC);
        same_as_chrono(DateTime::<Utc>::MAX_UTC);
        same_as_chrono(DateTime::<Utc>::UNIX_EPOCH);
    }
}
