//! AFL harness for the `exif` target (see `mediaflow_fuzz::exif`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        mediaflow_fuzz::exif(data);
    });
}
