//! Which key each operation touches: uniform over [`KEYS`] chats, or Zipf-skewed (a few
//! hot chats). The choice is a pure function of (task, operation index), so every
//! subject meets the same sequence and the same contention.

use std::sync::OnceLock;

/// Chats every data-session benchmark spreads its updates over.
pub const KEYS: usize = 1_024;

/// Keys the two processes of the two-process update contend on.
pub const TWO_PROCESS_KEYS: usize = 16;

/// The Zipf exponent: with 1.1 over 1,024 keys the hottest chat takes about 16 % of the
/// updates and the ten hottest about 45 %.
pub const ZIPF_S: f64 = 1.1;

/// How keys are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Dist {
    /// Every chat equally likely.
    Uniform,
    /// Zipf with exponent [`ZIPF_S`].
    Zipf,
}

impl Dist {
    /// The label used in rows.
    pub fn label(self) -> &'static str {
        match self {
            Dist::Uniform => "uniform",
            Dist::Zipf => "zipf",
        }
    }

    /// The key of task `t`'s `i`-th operation, in `0..keys`.
    pub fn key(self, t: usize, i: usize, keys: usize) -> usize {
        let h = mix(((t as u64) << 32) ^ i as u64);
        match self {
            Dist::Uniform => (h % keys as u64) as usize,
            Dist::Zipf => {
                let cdf = zipf_cdf(keys);
                let u = (h >> 11) as f64 / (1u64 << 53) as f64;
                cdf.partition_point(|&c| c < u).min(keys - 1)
            }
        }
    }
}

/// SplitMix64's finaliser: a bijection that spreads consecutive inputs.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn zipf_cdf(keys: usize) -> &'static [f64] {
    static CDF: OnceLock<Vec<(usize, Vec<f64>)>> = OnceLock::new();
    // Two key counts are used (KEYS and the two-process set); build both once.
    let all = CDF.get_or_init(|| {
        [KEYS, TWO_PROCESS_KEYS]
            .iter()
            .map(|&n| {
                let weights: Vec<f64> = (1..=n).map(|r| 1.0 / (r as f64).powf(ZIPF_S)).collect();
                let total: f64 = weights.iter().sum();
                let mut acc = 0.0;
                (
                    n,
                    weights
                        .iter()
                        .map(|w| {
                            acc += w / total;
                            acc
                        })
                        .collect(),
                )
            })
            .collect()
    });
    all.iter().find(|(n, _)| *n == keys).map(|(_, c)| c.as_slice()).unwrap_or(&all[0].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_covers_the_keys_and_zipf_is_skewed() {
        let mut uni = vec![0u32; KEYS];
        let mut zipf = vec![0u32; KEYS];
        for t in 0..64 {
            for i in 0..1_000 {
                uni[Dist::Uniform.key(t, i, KEYS)] += 1;
                zipf[Dist::Zipf.key(t, i, KEYS)] += 1;
            }
        }
        assert!(uni.iter().all(|&c| c > 20), "every key drawn under uniform");
        let hottest = *zipf.iter().max().unwrap_or(&0) as f64 / 64_000.0;
        assert!((0.10..0.25).contains(&hottest), "hottest zipf key takes {hottest}");
        assert_eq!(zipf.iter().position(|&c| c == *zipf.iter().max().unwrap_or(&0)), Some(0));
    }
}
