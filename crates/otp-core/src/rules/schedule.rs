//! The one retry policy of the Durable Objects' job runner: how long a job that failed waits
//! before its next attempt, and when it gives up. Deliveries, link replies, link expiry and
//! site callbacks all retry through [`Retry::delay`].

use crate::wire::webhook::retry_delays;

/// How a kind of job is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retry {
    /// 2, 4, 8, ... seconds, capped at one hour; `attempts` in all (the first included).
    Doubling { attempts: u32 },
    /// Standard Webhooks' recommended gaps (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), each
    /// multiplied by `scale` (tests shrink days to seconds); eight attempts in all.
    Webhook { scale: f64 },
}

impl Retry {
    /// Seconds to wait before retry number `retry` (1-based: the first retry follows the first
    /// attempt), or `None` when the job has used up its attempts and gives up.
    pub fn delay(self, retry: u32) -> Option<i64> {
        match self {
            Self::Doubling { attempts } => {
                (retry < attempts).then(|| (1i64 << retry.min(12)).min(3600))
            }
            Self::Webhook { scale } => retry_delays(scale).get(retry as usize).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn doubling_delays_double_then_cap_and_end() {
        let r = Retry::Doubling { attempts: 14 };
        let delays: Vec<_> = (1..=14).map(|a| r.delay(a)).collect();
        assert_eq!(&delays[..4], &[Some(2), Some(4), Some(8), Some(16)]);
        assert_eq!(delays[12], Some(3600));
        assert_eq!(delays[13], None);
        assert_eq!(Retry::Doubling { attempts: 0 }.delay(0), None);
    }

    #[test]
    fn five_attempts_retry_four_times() {
        let r = Retry::Doubling { attempts: 5 };
        let delays: Vec<_> = (1..=5).map(|a| r.delay(a)).collect();
        assert_eq!(delays, vec![Some(2), Some(4), Some(8), Some(16), None]);
    }

    #[test]
    fn webhook_retries_follow_the_recommended_gaps_then_end() {
        let r = Retry::Webhook { scale: 1.0 };
        let delays: Vec<_> = (1..=8).map(|a| r.delay(a)).collect();
        assert_eq!(
            delays,
            vec![
                Some(5),
                Some(300),
                Some(1800),
                Some(7200),
                Some(18000),
                Some(36000),
                Some(36000),
                None
            ]
        );
        assert_eq!(Retry::Webhook { scale: 0.001 }.delay(1), Some(1));
    }
}
