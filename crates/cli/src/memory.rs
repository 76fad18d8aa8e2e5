//! `--memory`: the budget `process` and `dev` admit work through
//! ([`MemoryBudget`]), by default the memory available when they start.

use mediaflow_pipeline::MemoryBudget;

/// The `--memory` value (`2GiB`, `1500MB`, `512MiB`, …).
pub fn parse(s: &str) -> Result<bytesize::ByteSize, String> {
    s.parse::<bytesize::ByteSize>()
        .map_err(|e| format!("{s:?} is not a size such as 2GiB or 1500MB: {e}"))
}

/// The budget `flag` asks for, or the memory available right now.
pub fn budget(flag: Option<bytesize::ByteSize>) -> MemoryBudget {
    MemoryBudget::new(flag.map_or_else(available, |b| b.as_u64()))
}

/// Memory available to new work (the kernel's estimate), or the total when
/// that is unknown; 0 (the smallest budget) when neither can be read.
fn available() -> u64 {
    let Ok(mut system) = sysinfo::System::new() else {
        tracing::warn!("cannot read the machine's memory; pass --memory");
        return 0;
    };
    system.refresh_memory();
    match system.available_memory() {
        0 => system.total_memory(),
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_the_default_is_the_machine() {
        assert_eq!(budget(Some(parse("2GiB").unwrap())).bytes(), 2 << 30);
        assert_eq!(budget(Some(parse("1500MiB").unwrap())).bytes(), 1500 << 20);
        assert!(parse("lots").is_err());
        assert!(budget(None).bytes() >= 64 << 20);
    }
}
