//! AFL harness for the `config` target (see `mediaflow_fuzz::config`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        mediaflow_fuzz::config(data);
    });
}
