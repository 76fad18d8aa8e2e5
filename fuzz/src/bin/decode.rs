//! AFL harness for the `decode` target (see `mediaflow_fuzz::decode`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        mediaflow_fuzz::decode(data);
    });
}
