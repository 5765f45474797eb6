//! Statistics and machine details shared by the benchmarks in `tests/benches`.

use std::time::Duration;

use anyhow::bail;

/// Latency percentiles of one round, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Computes nearest-rank percentiles: the smallest sample that at least p % of the
    /// samples do not exceed.
    pub fn of(samples: Vec<Duration>) -> anyhow::Result<Self> {
        Self::of_millis(
            samples
                .into_iter()
                .map(|sample| sample.as_secs_f64() * 1000.0)
                .collect(),
        )
    }

    /// Computes the same from samples in milliseconds, which may be negative.
    pub fn of_millis(mut samples: Vec<f64>) -> anyhow::Result<Self> {
        if samples.is_empty() {
            bail!("no samples to summarise");
        }
        samples.sort_unstable_by(f64::total_cmp);
        let at = |percent: f64| {
            let rank = (percent / 100.0 * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        Ok(Self {
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: at(100.0),
        })
    }

    pub fn values(&self) -> [f64; 4] {
        [self.p50, self.p90, self.p99, self.max]
    }

    /// Subtracts `other` percentile by percentile. A difference of percentiles is not the
    /// percentile of the differences, so this is an estimate of the added time.
    pub fn minus(&self, other: &Percentiles) -> Percentiles {
        Percentiles {
            p50: self.p50 - other.p50,
            p90: self.p90 - other.p90,
            p99: self.p99 - other.p99,
            max: self.max - other.max,
        }
    }
}

/// CPU count and model, from the standard library and /proc/cpuinfo.
pub fn machine_description() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs, {model}")
}
