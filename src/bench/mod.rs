//! Load tools behind `nuggetnet bench …`; their results are recorded in `BENCHMARKS.md`.
//! Nothing here runs in the BBS itself.

pub mod client;
pub mod connect;
pub mod exchange;
pub mod lines;
pub mod news;

use std::time::Duration;

/// Latency percentiles of a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// Sorts the sample and reads its percentiles (nearest rank).
    pub fn of(sample: &mut [Duration]) -> Percentiles {
        if sample.is_empty() {
            return Percentiles::default();
        }
        sample.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * sample.len() as f64).ceil() as usize).clamp(1, sample.len());
            sample[rank - 1]
        };
        Percentiles {
            n: sample.len(),
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: sample[sample.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut sample: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut sample);
        assert_eq!(p.n, 100);
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }
}
