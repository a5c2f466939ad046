//! A tiny seeded generator (SplitMix64) so model initialisation is reproducible across
//! platforms and thread counts without a `rand` dependency.

/// SplitMix64 (Steele, Lea, Flood 2014): good enough for factor initialisation and sampling.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator for stream `i` of `seed`, so row `i` gets the same numbers whatever thread
    /// computes it.
    pub fn for_stream(seed: u64, i: u64) -> Self {
        let mut g = SplitMix64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        g.next_u64();
        g
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }
}
