//! Times the "upload preset" on one JPEG: four JPEG widths (2048, 1024, 512,
//! 256) through the engine, against libjpeg-turbo decoding the same file at
//! full size. Single-threaded; run pinned to one core for the figure:
//!
//! `taskset -c 0 cargo run --release -p mediaflow-engine --example time_upload -- FILE [RUNS]`
//!
//! The full comparison with other tools is `mediaflow bench` (benches/).

use mediaflow_engine::{process, FormatChoice, Limits, OutputFormat, Plan, Variant};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: time_upload FILE [RUNS]");
    let runs: usize = args
        .next()
        .map_or(15, |r| r.parse().expect("RUNS is a number"));
    let bytes = std::fs::read(&path).expect("readable file");
    let variants = [2048, 1024, 512, 256]
        .iter()
        .map(|&w| {
            Variant::new(format!("w{w}"), Some(w), None)
                .with_formats([FormatChoice::Fixed(OutputFormat::Jpeg)])
        })
        .collect();
    let plan = Plan::new(Limits::default(), variants, Default::default()).expect("valid plan");

    let mut engine = Vec::new();
    let mut decode = Vec::new();
    let mut last = None;
    for _ in 0..runs + 2 {
        let t = Instant::now();
        last = Some(process(&bytes, &plan).expect("processes"));
        engine.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let img = turbojpeg::decompress(&bytes, turbojpeg::PixelFormat::RGB).expect("decodes");
        decode.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(img);
    }
    // Drop the two warm-up runs.
    let (engine, decode) = (engine.split_off(2), decode.split_off(2));
    let out = last.unwrap();
    println!(
        "source {}x{} ({} bytes), decoded at {}x{}, resize SIMD: {}",
        out.source.width,
        out.source.height,
        out.source.bytes,
        out.source.decoded_width,
        out.source.decoded_height,
        mediaflow_engine::cpu_extension_name()
    );
    for v in &out.variants {
        println!(
            "  {} {}x{} {} bytes",
            v.name,
            v.width,
            v.height,
            v.data.len()
        );
    }
    let t = out.timings;
    println!(
        "last run stages (ms): decode {:.1}, orient {:.1}, resize {:.1}, encode {:.1}, placeholder {:.1}",
        t.decode_ms, t.orient_ms, t.resize_ms, t.encode_ms, t.placeholder_ms
    );
    println!(
        "engine, four JPEG widths: median {:.1} ms over {runs} runs",
        median(engine)
    );
    println!(
        "libjpeg-turbo full decode alone: median {:.1} ms",
        median(decode)
    );
}
