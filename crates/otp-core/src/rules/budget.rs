//! Per-instance send budgets (per hour, per day, per number prefix) kept in N counter shards,
//! so no single Durable Object takes every send of a busy instance.
//!
//! Each send picks one shard (at random, [`pick_shard`]) and is allowed while that shard's
//! count in the current window is below [`shard_limit`] = ceil(limit / shards). The budget is
//! approximate by up to a shard's worth in both directions: with every shard full, up to
//! `shards * ceil(limit / shards) <= limit + shards - 1` sends pass; and when the random picks
//! are uneven a send can be refused by a full shard while others still have room. Windows are
//! fixed UTC hours and days (not sliding), so a burst straddling a boundary can spend two
//! windows' budget.

use crate::time::iso8601;

/// A fixed budget window in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// `HH:00:00` to `HH:59:59`.
    Hour,
    /// `00:00:00` to `23:59:59`.
    Day,
}

impl Window {
    /// The window's length in seconds (Unix time has no leap seconds).
    pub fn secs(self) -> i64 {
        match self {
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }
}

/// The window holding `now`, as a counter key: `2025-12-29T17` (hour) or `2025-12-29` (day).
pub fn window_key(now: i64, w: Window) -> String {
    let stamp = iso8601(now);
    let (date, time) = stamp.split_once('T').unwrap_or((stamp.as_str(), ""));
    match w {
        Window::Day => date.to_owned(),
        Window::Hour => format!("{date}T{}", time.get(..2).unwrap_or("00")),
    }
}

/// Sends one shard allows per window: ceil(limit / shards), with 0 shards read as 1.
pub fn shard_limit(limit: u64, shards: u8) -> u64 {
    limit.div_ceil(u64::from(shards.max(1)))
}

/// True when a shard that has counted `shard_count` sends this window may count one more.
pub fn allows(shard_count: u64, limit: u64, shards: u8) -> bool {
    shard_count < shard_limit(limit, shards)
}

/// The shard a send counts in, from a random number: `random mod shards` (0 with 0 shards).
pub fn pick_shard(random: u32, shards: u8) -> u8 {
    // The remainder is below `shards`, so it fits in a u8.
    (random % u32::from(shards.max(1))) as u8
}

/// Seconds from `now` until the window ends (`Retry-After`), 1 to the window's length.
pub fn retry_after(now: i64, w: Window) -> i64 {
    w.secs() - now.rem_euclid(w.secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// 2025-12-29T17:43:36Z (`date -u -d @1767030216`).
    const NOW: i64 = 1_767_030_216;

    #[test]
    fn window_keys_are_the_utc_hour_and_day() {
        assert_eq!(window_key(NOW, Window::Hour), "2025-12-29T17");
        assert_eq!(window_key(NOW, Window::Day), "2025-12-29");
        assert_eq!(window_key(0, Window::Hour), "1970-01-01T00");
        // The last second of a window and the first of the next.
        assert_eq!(window_key(1_767_052_799, Window::Hour), "2025-12-29T23");
        assert_eq!(window_key(1_767_052_800, Window::Hour), "2025-12-30T00");
        assert_eq!(window_key(1_767_052_799, Window::Day), "2025-12-29");
        assert_eq!(window_key(1_767_052_800, Window::Day), "2025-12-30");
    }

    #[test]
    fn shard_limit_rounds_up() {
        assert_eq!(shard_limit(100, 4), 25);
        assert_eq!(shard_limit(101, 4), 26);
        assert_eq!(shard_limit(3, 4), 1);
        assert_eq!(shard_limit(0, 4), 0);
        assert_eq!(shard_limit(10, 1), 10);
        assert_eq!(shard_limit(10, 0), 10);
        assert_eq!(shard_limit(u64::MAX, 2), 1 << 63);
    }

    #[test]
    fn total_allowed_is_at_most_a_shard_minus_one_over_the_limit() {
        for limit in 0..200u64 {
            for shards in 1..=16u8 {
                let total = u64::from(shards) * shard_limit(limit, shards);
                assert!(total >= limit, "{limit}/{shards}");
                assert!(total < limit + u64::from(shards), "{limit}/{shards}");
            }
        }
        // 101 over 4 shards: 26 each, 104 in all = 101 + 4 - 1.
        assert_eq!(4 * shard_limit(101, 4), 104);
    }

    #[test]
    fn allows_until_the_shard_is_full() {
        assert!(allows(0, 100, 4));
        assert!(allows(24, 100, 4));
        assert!(!allows(25, 100, 4));
        assert!(allows(25, 101, 4));
        assert!(!allows(26, 101, 4));
        assert!(!allows(0, 0, 4));
    }

    #[test]
    fn shards_are_picked_in_range() {
        assert_eq!(pick_shard(0, 4), 0);
        assert_eq!(pick_shard(7, 4), 3);
        assert_eq!(pick_shard(u32::MAX, 255), (u32::MAX % 255) as u8);
        assert_eq!(pick_shard(12_345, 0), 0);
        assert_eq!(pick_shard(12_345, 1), 0);
    }

    #[test]
    fn retry_after_counts_to_the_end_of_the_window() {
        // 17:43:36: 16 min 24 s to 18:00, 6 h 16 min 24 s to midnight.
        assert_eq!(retry_after(NOW, Window::Hour), 984);
        assert_eq!(retry_after(NOW, Window::Day), 22_584);
        // On a boundary the whole next window remains; one second before, one second.
        assert_eq!(retry_after(1_767_052_800, Window::Hour), 3_600);
        assert_eq!(retry_after(1_767_052_800, Window::Day), 86_400);
        assert_eq!(retry_after(1_767_052_799, Window::Hour), 1);
        assert_eq!(retry_after(1_767_052_799, Window::Day), 1);
        assert_eq!(retry_after(-1, Window::Hour), 1);
        assert_eq!(
            retry_after(i64::MAX, Window::Day),
            86_400 - i64::MAX % 86_400
        );
    }
}
