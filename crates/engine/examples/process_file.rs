//! Runs the engine's built-in plan on one file and prints the outcome in one
//! line: used to measure time and peak memory (`/usr/bin/time -v`) of hostile
//! or large inputs without building the whole CLI.
//!
//! `cargo run --release -p mediaflow-engine --example process_file -- FILE`

use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: process_file FILE");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let plan = mediaflow_engine::Plan::builtin();
    let estimate = mediaflow_engine::estimate_memory(&bytes, &plan)
        .map_or_else(|e| format!("({e})"), |b| format!("{} MB", b >> 20));
    println!("{path}: estimate_memory {estimate}");
    let start = Instant::now();
    let result = mediaflow_engine::process(&bytes, &plan);
    let secs = start.elapsed().as_secs_f64();
    match result {
        Ok(out) => println!(
            "{path}: ok {}x{} {} variants in {secs:.2} s",
            out.source.width,
            out.source.height,
            out.variants.len()
        ),
        Err(e) => println!("{path}: {e} ({secs:.2} s)"),
    }
}
