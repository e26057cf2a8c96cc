//! Timestamps as the APIs print them: ISO 8601 with seconds and an explicit `+00:00` offset
//! (`2025-12-29T17:43:36+00:00`), never `Z` and never fractions.

/// Formats Unix seconds (UTC) as `YYYY-MM-DDTHH:MM:SS+00:00`.
pub fn iso8601(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs_of_day = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        secs_of_day / 3600,
        (secs_of_day % 3600) / 60,
        secs_of_day % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days`, exact for every `i64` day count a timestamp can produce.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn formats_the_documented_example() {
        // 2025-12-29T17:43:36Z, checked with `date -u -d @1767030216`.
        assert_eq!(iso8601(1_767_030_216), "2025-12-29T17:43:36+00:00");
    }

    #[test]
    fn formats_epoch_leap_day_and_year_ends() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(iso8601(1_704_067_199), "2023-12-31T23:59:59+00:00");
        assert_eq!(iso8601(4_102_444_800), "2100-01-01T00:00:00+00:00");
    }

    #[test]
    fn every_day_round_trips_through_a_simple_calendar_walk() {
        let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
        for day in 0..80_000i64 {
            assert_eq!(civil_from_days(day), (y, m, d), "day {day}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ][(m - 1) as usize];
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
