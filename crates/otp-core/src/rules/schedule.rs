//! Retry timing for the Durable Objects' job scheduler (deliveries now; callbacks later).

/// Delay before retry number `attempt` (1-based) of a job, in seconds, or `None` when the
/// job has used up its `max_attempts`: 2, 4, 8, ... seconds, capped at one hour.
pub fn retry_delay(attempt: u32, max_attempts: u32) -> Option<i64> {
    if attempt >= max_attempts {
        return None;
    }
    Some((1i64 << attempt.min(12)).min(3600))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn delays_double_then_cap_and_end() {
        let delays: Vec<_> = (1..=14).map(|a| retry_delay(a, 14)).collect();
        assert_eq!(&delays[..4], &[Some(2), Some(4), Some(8), Some(16)]);
        assert_eq!(delays[12], Some(3600));
        assert_eq!(delays[13], None);
        assert_eq!(retry_delay(0, 0), None);
    }
}
