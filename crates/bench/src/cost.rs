//! Lambda and S3 cost per million images, at [`prices`].

/// AWS prices used for the cost columns: US East (N. Virginia), first
/// pricing tier, as listed on aws.amazon.com/lambda/pricing and
/// aws.amazon.com/s3/pricing (unchanged since arm64 Lambda launched in 2021;
/// recorded here 2026-11-23 — check them before relying on the figures).
pub mod prices {
    pub const DATE: &str = "2026-11-23 (us-east-1, tier 1)";
    /// USD per GB-second of Lambda duration, arm64.
    pub const LAMBDA_ARM64_GB_S: f64 = 0.000_013_333_4;
    /// USD per GB-second of Lambda duration, x86_64.
    pub const LAMBDA_X86_GB_S: f64 = 0.000_016_666_7;
    /// USD per Lambda request.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1_000_000.0;
    /// USD per S3 Standard GET.
    pub const S3_GET: f64 = 0.0004 / 1000.0;
    /// USD per S3 Standard PUT.
    pub const S3_PUT: f64 = 0.005 / 1000.0;
    /// Lambda memory at which a function gets one full vCPU.
    pub const ONE_VCPU_MB: u32 = 1769;
}

/// Lambda duration + request cost per million images at `memory_mb`, for a
/// single-thread time per image (one image per invocation).
pub fn lambda_cost_per_million(ms_per_image: f64, memory_mb: u32, gb_s_price: f64) -> f64 {
    let gb = memory_mb as f64 / 1024.0;
    1_000_000.0 * (ms_per_image / 1000.0 * gb * gb_s_price + prices::LAMBDA_REQUEST)
}

/// S3 request cost per million images: one GET, one PUT per output, one
/// PUT for the manifest.
pub fn s3_cost_per_million(outputs: usize) -> f64 {
    1_000_000.0 * (prices::S3_GET + (outputs as f64 + 1.0) * prices::S3_PUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs() {
        // 100 ms at 1024 MB on arm64: 0.1 GB-s * price * 1e6 + $0.20 requests.
        let c = lambda_cost_per_million(100.0, 1024, prices::LAMBDA_ARM64_GB_S);
        assert!(
            (c - (0.1 * 0.000_013_333_4 * 1e6 + 0.2)).abs() < 1e-9,
            "{c}"
        );
        // 8 outputs: 1 GET + 9 PUTs per image.
        assert!((s3_cost_per_million(8) - (0.4 + 45.0)).abs() < 1e-9);
    }
}
