//! AFL harness for the `icc` target (see `mediaflow_fuzz::icc`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        mediaflow_fuzz::icc(data);
    });
}
