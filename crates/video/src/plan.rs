//! Validated video settings: renditions, poster time, source limits.
//! No serde: `mediaflow-config` owns the file format.

use crate::error::{invalid_plan, Result};
use std::fmt;

/// x264 presets, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Ultrafast,
    Superfast,
    Veryfast,
    Faster,
    Fast,
    Medium,
    Slow,
    Slower,
    Veryslow,
}

impl Preset {
    pub const ALL: [Preset; 9] = [
        Preset::Ultrafast,
        Preset::Superfast,
        Preset::Veryfast,
        Preset::Faster,
        Preset::Fast,
        Preset::Medium,
        Preset::Slow,
        Preset::Slower,
        Preset::Veryslow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Ultrafast => "ultrafast",
            Preset::Superfast => "superfast",
            Preset::Veryfast => "veryfast",
            Preset::Faster => "faster",
            Preset::Fast => "fast",
            Preset::Medium => "medium",
            Preset::Slow => "slow",
            Preset::Slower => "slower",
            Preset::Veryslow => "veryslow",
        }
    }

    pub fn parse(s: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Encoding speed relative to `medium`, from x264's own preset table
    /// (rounded down so estimates err on the slow side).
    pub(crate) fn relative_speed(self) -> f64 {
        match self {
            Preset::Ultrafast => 4.0,
            Preset::Superfast => 3.0,
            Preset::Veryfast => 2.0,
            Preset::Faster => 1.4,
            Preset::Fast => 1.15,
            Preset::Medium => 1.0,
            Preset::Slow => 0.6,
            Preset::Slower => 0.3,
            Preset::Veryslow => 0.15,
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One H.264/AAC MP4 output.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    /// Output folder name (`[a-z0-9_-]+`).
    pub name: String,
    /// Caps on the displayed (upright) size; the picture fits inside them,
    /// keeping its aspect ratio, never enlarged, with even dimensions.
    pub max_width: Option<u32>,
    pub max_height: Option<u32>,
    /// x264 constant rate factor, 0 (lossless) ..= 51 (worst). 23 is x264's default.
    pub crf: u8,
    pub preset: Preset,
    /// Optional VBV cap (`-maxrate`, with a buffer of twice that), kbit/s.
    pub max_bitrate_kbps: Option<u32>,
    /// AAC bitrate, kbit/s.
    pub audio_bitrate_kbps: u32,
    /// Keep the audio (AAC). False writes a silent MP4.
    pub audio: bool,
}

impl Rendition {
    /// A rendition with the defaults: capped at 720 px high, CRF 23,
    /// `veryfast`, AAC 128 kbit/s.
    pub fn new(name: impl Into<String>) -> Rendition {
        Rendition {
            name: name.into(),
            max_width: None,
            max_height: Some(720),
            crf: 23,
            preset: Preset::Veryfast,
            max_bitrate_kbps: None,
            audio_bitrate_kbps: 128,
            audio: true,
        }
    }

    /// The output size for a displayed `w x h` source: inside the caps,
    /// never enlarged, both sides even (H.264 4:2:0 needs them even) and
    /// at least 2.
    pub fn output_size(&self, w: u32, h: u32) -> (u32, u32) {
        let (w, h) = (w.max(1), h.max(1));
        let mut scale = 1.0f64;
        if let Some(mw) = self.max_width {
            scale = scale.min(f64::from(mw) / f64::from(w));
        }
        if let Some(mh) = self.max_height {
            scale = scale.min(f64::from(mh) / f64::from(h));
        }
        let even = |x: f64| {
            let x = x.round() as u32;
            (x - x % 2).max(2)
        };
        (even(f64::from(w) * scale), even(f64::from(h) * scale))
    }
}

/// When the poster frame is taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PosterAt {
    /// A fraction of the duration (0.1 = 10 %).
    Fraction(f64),
    /// Seconds from the start.
    Seconds(f64),
}

impl PosterAt {
    /// The time for a clip of `duration` seconds, clamped inside the clip
    /// (at least one frame before its end).
    pub fn resolve(self, duration: f64, frame_rate: f64) -> f64 {
        let t = match self {
            PosterAt::Fraction(f) => duration * f,
            PosterAt::Seconds(s) => s,
        };
        let frame = if frame_rate > 0.0 {
            1.0 / frame_rate
        } else {
            0.1
        };
        let last = (duration - frame).max(0.0);
        t.clamp(0.0, last)
    }
}

/// Limits checked against the probe, before any transcoding.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoLimits {
    /// Largest accepted source file (also bounds the download).
    pub max_input_bytes: u64,
    /// Longest accepted clip.
    pub max_duration_seconds: f64,
    /// Largest accepted frame, width x height.
    pub max_pixels: u64,
}

impl Default for VideoLimits {
    fn default() -> Self {
        VideoLimits {
            max_input_bytes: 2 * 1024 * 1024 * 1024,
            max_duration_seconds: 600.0,
            max_pixels: 4096 * 4096,
        }
    }
}

/// Everything the video path does with one source.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoPlan {
    renditions: Vec<Rendition>,
    poster_at: PosterAt,
    limits: VideoLimits,
    animated_gif: bool,
}

/// Names that would collide with the manifest folder.
const RESERVED: [&str; 1] = ["manifest"];

impl VideoPlan {
    /// Checks the settings as a whole: at least one rendition, unique
    /// names, values in range.
    pub fn new(
        renditions: Vec<Rendition>,
        poster_at: PosterAt,
        limits: VideoLimits,
        animated_gif: bool,
    ) -> Result<VideoPlan> {
        if renditions.is_empty() {
            return Err(invalid_plan("at least one video rendition is required"));
        }
        for (i, r) in renditions.iter().enumerate() {
            mediaflow_engine::check_name(&r.name)
                .map_err(|e| invalid_plan(format!("video rendition name {e}")))?;
            if RESERVED.contains(&r.name.as_str()) {
                return Err(invalid_plan(format!(
                    "video rendition name {:?} is reserved for manifests",
                    r.name
                )));
            }
            if renditions[..i].iter().any(|o| o.name == r.name) {
                return Err(invalid_plan(format!(
                    "video rendition name {:?} is used twice",
                    r.name
                )));
            }
            if r.crf > 51 {
                return Err(invalid_plan(format!(
                    "{}: crf {} is over 51",
                    r.name, r.crf
                )));
            }
            for (what, v) in [("max_width", r.max_width), ("max_height", r.max_height)] {
                if matches!(v, Some(v) if !(2..=8192).contains(&v)) {
                    return Err(invalid_plan(format!("{}: {what} must be 2..=8192", r.name)));
                }
            }
            if !(16..=1024).contains(&r.audio_bitrate_kbps) {
                return Err(invalid_plan(format!(
                    "{}: audio_bitrate_kbps must be 16..=1024",
                    r.name
                )));
            }
            if matches!(r.max_bitrate_kbps, Some(b) if b < 64) {
                return Err(invalid_plan(format!(
                    "{}: max_bitrate_kbps must be at least 64",
                    r.name
                )));
            }
        }
        match poster_at {
            PosterAt::Fraction(f) if !(0.0..=1.0).contains(&f) => {
                return Err(invalid_plan(
                    "poster time must be 0% ..= 100% of the duration",
                ))
            }
            PosterAt::Seconds(s) if !(s.is_finite() && s >= 0.0) => {
                return Err(invalid_plan(
                    "poster time must be a non-negative number of seconds",
                ))
            }
            _ => {}
        }
        if limits.max_input_bytes == 0
            || limits.max_pixels == 0
            || limits.max_duration_seconds.is_nan()
            || limits.max_duration_seconds <= 0.0
        {
            return Err(invalid_plan("video limits must be positive"));
        }
        Ok(VideoPlan {
            renditions,
            poster_at,
            limits,
            animated_gif,
        })
    }

    /// One 720p rendition named `mp4`, the poster at 10 %, default limits,
    /// GIFs stay images.
    pub fn builtin() -> VideoPlan {
        VideoPlan::new(
            vec![Rendition::new("mp4")],
            PosterAt::Fraction(0.1),
            VideoLimits::default(),
            false,
        )
        .expect("the built-in video plan is valid")
    }

    pub fn renditions(&self) -> &[Rendition] {
        &self.renditions
    }

    pub fn poster_at(&self) -> PosterAt {
        self.poster_at
    }

    pub fn limits(&self) -> &VideoLimits {
        &self.limits
    }

    /// Animated GIFs become silent MP4s (and a poster) instead of stills.
    pub fn animated_gif(&self) -> bool {
        self.animated_gif
    }

    /// The same plan with `animated_gif` set (the transcode function's
    /// environment can switch it on).
    pub fn with_animated_gif(mut self, on: bool) -> VideoPlan {
        self.animated_gif = on;
        self
    }

    /// Fingerprint of this plan together with the image plan's (the poster
    /// goes through it): FNV-1a of [`crate::VIDEO_VERSION`], the image
    /// fingerprint and [`VideoPlan::canonical`], `|`-separated. Changes
    /// whenever any setting or version changes, not when a type changes.
    pub fn fingerprint(&self, image_fingerprint: &str) -> String {
        mediaflow_engine::fingerprint_of(&format!(
            "{}|{image_fingerprint}|{}",
            crate::VIDEO_VERSION,
            self.canonical()
        ))
    }

    /// The canonical text of this plan: one `key=value` line per setting,
    /// with the configuration's names (never `Debug`), in a fixed order,
    /// renditions in plan order. As for images
    /// ([`mediaflow_engine::Plan::canonical`]), the limits are in it: they
    /// decide whether a source is accepted, and the fingerprint also marks
    /// failure records. Optional settings are written as given (`none` when
    /// unset); floats in Rust's shortest round-trip form. A new field must
    /// get its line here (the destructuring does not compile until then).
    pub fn canonical(&self) -> String {
        use std::fmt::Write as _;
        let VideoPlan {
            renditions,
            poster_at,
            limits,
            animated_gif,
        } = self;
        let VideoLimits {
            max_input_bytes,
            max_duration_seconds,
            max_pixels,
        } = limits;
        let mut out = String::new();
        let mut line = |key: &str, value: &dyn fmt::Display| {
            writeln!(out, "{key}={value}").expect("writing to a String");
        };
        line("video_limits.max_input_bytes", max_input_bytes);
        line("video_limits.max_duration_seconds", max_duration_seconds);
        line("video_limits.max_pixels", max_pixels);
        let poster_at = match poster_at {
            PosterAt::Fraction(f) => format!("fraction:{f}"),
            PosterAt::Seconds(s) => format!("seconds:{s}"),
        };
        line("video_options.poster_at", &poster_at);
        line("video_options.animated_gif", animated_gif);
        let or_none = |value: Option<u32>| value.map_or_else(|| "none".into(), |v| v.to_string());
        for (i, r) in renditions.iter().enumerate() {
            let Rendition {
                name,
                max_width,
                max_height,
                crf,
                preset,
                max_bitrate_kbps,
                audio_bitrate_kbps,
                audio,
            } = r;
            line(&format!("video.{i}.name"), name);
            line(&format!("video.{i}.max_width"), &or_none(*max_width));
            line(&format!("video.{i}.max_height"), &or_none(*max_height));
            line(&format!("video.{i}.crf"), crf);
            line(&format!("video.{i}.preset"), &preset.as_str());
            line(
                &format!("video.{i}.max_bitrate_kbps"),
                &or_none(*max_bitrate_kbps),
            );
            line(&format!("video.{i}.audio_bitrate_kbps"), audio_bitrate_kbps);
            line(&format!("video.{i}.audio"), audio);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_is_even_capped_and_never_enlarged() {
        let r = Rendition::new("mp4");
        assert_eq!(r.output_size(1280, 720), (1280, 720));
        assert_eq!(r.output_size(1920, 1080), (1280, 720));
        assert_eq!(r.output_size(640, 360), (640, 360));
        assert_eq!(r.output_size(321, 241), (320, 240));
        // Portrait phone video: the height is capped.
        assert_eq!(r.output_size(1080, 1920), (404, 720));
        let mut w = Rendition::new("w");
        w.max_width = Some(480);
        w.max_height = None;
        assert_eq!(w.output_size(1920, 1080), (480, 270));
        assert_eq!(w.output_size(1, 1), (2, 2));
    }

    #[test]
    fn poster_time_is_clamped_inside_the_clip() {
        assert_eq!(PosterAt::Fraction(0.1).resolve(5.0, 25.0), 0.5);
        assert_eq!(PosterAt::Seconds(30.0).resolve(5.0, 25.0), 4.96);
        assert_eq!(PosterAt::Seconds(1.0).resolve(0.0, 25.0), 0.0);
        assert_eq!(PosterAt::Fraction(1.0).resolve(2.0, 0.0), 1.9);
    }

    #[test]
    fn plans_are_validated() {
        let ok = |r: Vec<Rendition>| {
            VideoPlan::new(r, PosterAt::Fraction(0.1), VideoLimits::default(), false)
        };
        assert!(ok(vec![]).is_err());
        assert!(ok(vec![Rendition::new("a"), Rendition::new("a")]).is_err());
        assert!(ok(vec![Rendition::new("Bad Name")]).is_err());
        assert!(ok(vec![Rendition::new("manifest")]).is_err());
        let mut r = Rendition::new("a");
        r.crf = 52;
        assert!(ok(vec![r]).is_err());
        assert!(ok(vec![Rendition::new("a"), Rendition::new("b")]).is_ok());
        assert!(VideoPlan::new(
            vec![Rendition::new("a")],
            PosterAt::Fraction(1.5),
            VideoLimits::default(),
            false
        )
        .is_err());
    }

    /// The built-in video plan's fingerprint over the built-in image plan's,
    /// pinned (see the image plan's pin): change the literal only on purpose.
    #[test]
    fn builtin_fingerprint_is_pinned() {
        assert_eq!(crate::VIDEO_VERSION, "0.1.0", "pinned for this version");
        let image = mediaflow_engine::Plan::builtin().fingerprint();
        assert_eq!(VideoPlan::builtin().fingerprint(&image), "55506aa826f73352");
        assert_eq!(
            VideoPlan::builtin().canonical(),
            "video_limits.max_input_bytes=2147483648\n\
             video_limits.max_duration_seconds=600\n\
             video_limits.max_pixels=16777216\n\
             video_options.poster_at=fraction:0.1\n\
             video_options.animated_gif=false\n\
             video.0.name=mp4\n\
             video.0.max_width=none\n\
             video.0.max_height=720\n\
             video.0.crf=23\n\
             video.0.preset=veryfast\n\
             video.0.max_bitrate_kbps=none\n\
             video.0.audio_bitrate_kbps=128\n\
             video.0.audio=true\n"
        );
    }

    #[test]
    fn every_setting_moves_the_fingerprint() {
        let base_rendition = Rendition::new("a");
        let plan = |r: Rendition, poster: PosterAt, limits: VideoLimits, gif: bool| {
            VideoPlan::new(vec![r], poster, limits, gif).unwrap()
        };
        let base = || {
            plan(
                base_rendition.clone(),
                PosterAt::Fraction(0.1),
                VideoLimits::default(),
                false,
            )
        };
        let rendition = |change: fn(&mut Rendition)| {
            let mut r = base_rendition.clone();
            change(&mut r);
            plan(r, PosterAt::Fraction(0.1), VideoLimits::default(), false)
        };
        let limits = |change: fn(&mut VideoLimits)| {
            let mut l = VideoLimits::default();
            change(&mut l);
            plan(base_rendition.clone(), PosterAt::Fraction(0.1), l, false)
        };
        let poster = |at: PosterAt| plan(base_rendition.clone(), at, VideoLimits::default(), false);
        let changed = [
            ("name", rendition(|r| r.name = "b".into())),
            ("max_width", rendition(|r| r.max_width = Some(640))),
            ("max_height", rendition(|r| r.max_height = Some(480))),
            ("max_height unset", rendition(|r| r.max_height = None)),
            ("crf", rendition(|r| r.crf = 24)),
            ("preset", rendition(|r| r.preset = Preset::Slow)),
            (
                "max_bitrate_kbps",
                rendition(|r| r.max_bitrate_kbps = Some(800)),
            ),
            (
                "audio_bitrate_kbps",
                rendition(|r| r.audio_bitrate_kbps = 96),
            ),
            ("audio", rendition(|r| r.audio = false)),
            ("poster fraction", poster(PosterAt::Fraction(0.2))),
            ("poster seconds", poster(PosterAt::Seconds(0.1))),
            ("max_input_bytes", limits(|l| l.max_input_bytes += 1)),
            (
                "max_duration_seconds",
                limits(|l| l.max_duration_seconds += 0.5),
            ),
            ("max_pixels", limits(|l| l.max_pixels += 1)),
            ("animated_gif", base().with_animated_gif(true)),
        ];
        let mut seen = vec![("base", base().fingerprint("x"))];
        for (what, p) in changed {
            let fp = p.fingerprint("x");
            if let Some((other, _)) = seen.iter().find(|(_, f)| *f == fp) {
                panic!("changing {what} gives the fingerprint of {other}");
            }
            seen.push((what, fp));
        }
    }

    #[test]
    fn fingerprint_follows_settings() {
        let a = VideoPlan::builtin();
        assert_eq!(a.fingerprint("x"), VideoPlan::builtin().fingerprint("x"));
        assert_ne!(a.fingerprint("x"), a.fingerprint("y"));
        assert_ne!(
            a.fingerprint("x"),
            VideoPlan::builtin()
                .with_animated_gif(true)
                .fingerprint("x")
        );
    }
}
