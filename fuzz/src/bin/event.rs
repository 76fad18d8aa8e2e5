//! AFL harness for the `event` target (see `mediaflow_fuzz::event`).
//!
//! `fuzz_nohook!`: a panic that escapes the target is a crash; one that the
//! engine catches by design (a decoder's panic becomes a `corrupt` error)
//! is not (`fuzz!` would abort on it too).

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| {
        mediaflow_fuzz::event(data);
    });
}
