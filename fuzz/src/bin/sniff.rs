//! AFL harness for the `sniff` target (see `mediaflow_fuzz::sniff`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        mediaflow_fuzz::sniff(data);
    });
}
