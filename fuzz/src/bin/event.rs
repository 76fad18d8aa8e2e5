//! AFL harness for the `event` target (see `mediaflow_fuzz::event`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        mediaflow_fuzz::event(data);
    });
}
