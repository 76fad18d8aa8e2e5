//! AFL harness for the `jpeg_meta` target (see `mediaflow_fuzz::jpeg_meta`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        mediaflow_fuzz::jpeg_meta(data);
    });
}
