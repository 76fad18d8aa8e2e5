//! What ffprobe says about a file, reduced to the facts the pipeline needs.

use crate::error::{corrupt, limits, unsupported, Result};
use crate::plan::VideoLimits;
use crate::tools::{failure, run, Input, Tools};
use serde::Deserialize;
use std::process::Command;
use std::time::Instant;

/// Facts about a video file.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// ffprobe's format name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format_name: String,
    pub duration_seconds: f64,
    /// Overall bitrate, bit/s.
    pub bitrate: u64,
    pub bytes: u64,
    pub video: VideoStream,
    pub audio: Option<AudioStream>,
    /// Frames counted (only for GIFs, where it decides image or video).
    pub frames: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VideoStream {
    pub codec: String,
    pub pix_fmt: Option<String>,
    /// As stored.
    pub width: u32,
    pub height: u32,
    /// Clockwise degrees a player turns the stored picture: 0, 90, 180, 270.
    pub rotation: u16,
    /// Sample aspect ratio (non-square pixels in some camera formats).
    pub sar: (u32, u32),
    pub frame_rate: f64,
    pub bitrate: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioStream {
    pub codec: String,
    pub channels: u32,
    pub sample_rate: u32,
    pub bitrate: Option<u64>,
}

impl Probe {
    /// The upright size a player shows: rotation and pixel aspect applied.
    pub fn display_size(&self) -> (u32, u32) {
        let v = &self.video;
        let (n, d) = v.sar;
        let w = if n > 0 && d > 0 && n != d {
            ((f64::from(v.width) * f64::from(n) / f64::from(d)).round() as u32).max(1)
        } else {
            v.width
        };
        if v.rotation % 180 == 90 {
            (v.height, w)
        } else {
            (w, v.height)
        }
    }

    /// Checks the probe against the limits: one line naming the limit.
    pub fn check(&self, l: &VideoLimits) -> Result<()> {
        if self.duration_seconds > l.max_duration_seconds {
            return Err(limits(format!(
                "the clip lasts {:.1} s, over the limit of {} s",
                self.duration_seconds, l.max_duration_seconds
            )));
        }
        let pixels = u64::from(self.video.width) * u64::from(self.video.height);
        if pixels > l.max_pixels {
            return Err(limits(format!(
                "{}x{} frames ({pixels} pixels) are over the limit of {} pixels",
                self.video.width, self.video.height, l.max_pixels
            )));
        }
        if self.bytes > l.max_input_bytes {
            return Err(limits(format!(
                "{} bytes is over the limit of {} bytes",
                self.bytes, l.max_input_bytes
            )));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Json {
    #[serde(default)]
    streams: Vec<JsonStream>,
    format: Option<JsonFormat>,
}

#[derive(Deserialize)]
struct JsonFormat {
    #[serde(default)]
    format_name: String,
    duration: Option<String>,
    bit_rate: Option<String>,
    size: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonStream {
    codec_type: String,
    codec_name: String,
    width: u32,
    height: u32,
    pix_fmt: Option<String>,
    sample_aspect_ratio: Option<String>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
    channels: u32,
    sample_rate: Option<String>,
    nb_read_packets: Option<String>,
    disposition: Option<JsonDisposition>,
    tags: Option<JsonTags>,
    side_data_list: Vec<JsonSideData>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonDisposition {
    attached_pic: u8,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonTags {
    rotate: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonSideData {
    side_data_type: String,
    rotation: Option<f64>,
}

fn number<T: std::str::FromStr>(s: &Option<String>) -> Option<T> {
    s.as_deref().and_then(|s| s.trim().parse().ok())
}

fn ratio(s: &Option<String>, sep: char) -> Option<(u32, u32)> {
    let (n, d) = s.as_deref()?.split_once(sep)?;
    Some((n.trim().parse().ok()?, d.trim().parse().ok()?))
}

fn rate(s: &Option<String>) -> Option<f64> {
    match ratio(s, '/')? {
        (_, 0) | (0, _) => None,
        (n, d) => Some(f64::from(n) / f64::from(d)),
    }
}

/// Clockwise degrees from ffprobe's display matrix (counter-clockwise
/// degrees) or the legacy `rotate` tag (clockwise).
fn rotation(s: &JsonStream) -> u16 {
    let ccw = s
        .side_data_list
        .iter()
        .find(|d| d.side_data_type == "Display Matrix")
        .and_then(|d| d.rotation);
    let cw = match ccw {
        Some(r) => -r,
        None => s
            .tags
            .as_ref()
            .and_then(|t| number::<f64>(&t.rotate))
            .unwrap_or(0.0),
    };
    // Nearest quarter turn.
    (((cw / 90.0).round() as i64).rem_euclid(4) * 90) as u16
}

/// Parses ffprobe's `-print_format json -show_format -show_streams` output.
/// `file_bytes` is the size on disk (when ffprobe does not say).
pub fn parse(json: &[u8], file_bytes: u64) -> Result<Probe> {
    let j: Json = serde_json::from_slice(json)
        .map_err(|e| corrupt(format!("ffprobe's report is unreadable: {e}")))?;
    let format = j
        .format
        .ok_or_else(|| corrupt("ffprobe found no container format"))?;
    let video = j
        .streams
        .iter()
        .find(|s| {
            s.codec_type == "video"
                && s.disposition.as_ref().is_none_or(|d| d.attached_pic == 0)
                && s.width > 0
                && s.height > 0
        })
        .ok_or_else(|| {
            let kinds: Vec<String> = j
                .streams
                .iter()
                .map(|s| format!("{} {}", s.codec_type, s.codec_name))
                .collect();
            if kinds.is_empty() {
                unsupported("no video stream (the file has no streams)")
            } else {
                unsupported(format!("no video stream (only {})", kinds.join(", ")))
            }
        })?;
    let audio = j
        .streams
        .iter()
        .find(|s| s.codec_type == "audio")
        .map(|s| AudioStream {
            codec: s.codec_name.clone(),
            channels: s.channels,
            sample_rate: number(&s.sample_rate).unwrap_or(0),
            bitrate: number(&s.bit_rate),
        });
    let duration = number::<f64>(&format.duration)
        .or_else(|| number(&video.duration))
        .filter(|d| d.is_finite() && *d >= 0.0)
        .ok_or_else(|| corrupt("the duration is unknown (ffprobe reports none)"))?;
    let bytes = number(&format.size).unwrap_or(file_bytes);
    let bitrate = number(&format.bit_rate).unwrap_or_else(|| {
        if duration > 0.0 {
            (bytes as f64 * 8.0 / duration) as u64
        } else {
            0
        }
    });
    let sar = ratio(&video.sample_aspect_ratio, ':')
        .filter(|&(n, d)| n > 0 && d > 0)
        .unwrap_or((1, 1));
    Ok(Probe {
        format_name: format.format_name,
        duration_seconds: duration,
        bitrate,
        bytes,
        video: VideoStream {
            codec: video.codec_name.clone(),
            pix_fmt: video.pix_fmt.clone(),
            width: video.width,
            height: video.height,
            rotation: rotation(video),
            sar,
            frame_rate: rate(&video.avg_frame_rate)
                .or_else(|| rate(&video.r_frame_rate))
                .unwrap_or(0.0),
            bitrate: number(&video.bit_rate),
        },
        audio,
        frames: number(&video.nb_read_packets),
    })
}

/// Runs ffprobe on `input`. `count_frames` counts the video packets (read
/// through the file: only for GIFs, which have no frame count).
pub(crate) fn probe(
    tools: &Tools,
    input: Input<'_>,
    count_frames: bool,
    deadline: Instant,
) -> Result<Probe> {
    let mut cmd = Command::new(&tools.ffprobe);
    cmd.args([
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
    ]);
    if count_frames {
        cmd.args(["-count_packets", "-select_streams", "v:0"]);
    }
    cmd.args(input.args());
    let done = run(&mut cmd, deadline)?;
    if !done.status.success() {
        return Err(failure("ffprobe", &done, corrupt));
    }
    let bytes = std::fs::metadata(input.path).map_or(0, |m| m.len());
    parse(&done.stdout, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = r#"{
      "streams": [
        {"index":0,"codec_name":"h264","codec_type":"video","width":1920,"height":1080,
         "pix_fmt":"yuv420p","sample_aspect_ratio":"1:1","r_frame_rate":"30/1",
         "avg_frame_rate":"30000/1001","duration":"3.003000","bit_rate":"15000000",
         "side_data_list":[{"side_data_type":"Display Matrix","displaymatrix":"...","rotation":-90}]},
        {"index":1,"codec_name":"aac","codec_type":"audio","sample_rate":"44100","channels":2,"bit_rate":"96000"}
      ],
      "format": {"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"3.003000","size":"5700000","bit_rate":"15184815"}
    }"#;

    #[test]
    fn a_phone_clip() {
        let p = parse(PHONE.as_bytes(), 0).unwrap();
        assert_eq!(p.video.rotation, 90);
        assert_eq!(p.display_size(), (1080, 1920));
        assert!((p.video.frame_rate - 29.97).abs() < 0.01);
        assert_eq!(p.audio.as_ref().unwrap().codec, "aac");
        assert_eq!(p.bitrate, 15_184_815);
        assert_eq!(p.bytes, 5_700_000);
    }

    #[test]
    fn legacy_rotate_tag_and_anamorphic_pixels() {
        let j = r#"{"streams":[{"codec_type":"video","codec_name":"mpeg2video","width":720,"height":576,
            "sample_aspect_ratio":"16:15","avg_frame_rate":"25/1","tags":{"rotate":"180"}}],
            "format":{"format_name":"mpeg","duration":"1.0"}}"#;
        let p = parse(j.as_bytes(), 1000).unwrap();
        assert_eq!(p.video.rotation, 180);
        assert_eq!(p.display_size(), (768, 576));
        assert_eq!(p.bitrate, 8000);
    }

    #[test]
    fn no_video_stream() {
        let j = r#"{"streams":[{"codec_type":"audio","codec_name":"aac"},
            {"codec_type":"video","codec_name":"mjpeg","width":300,"height":300,"disposition":{"attached_pic":1}}],
            "format":{"format_name":"mov,mp4","duration":"1.0"}}"#;
        let e = parse(j.as_bytes(), 0).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Unsupported);
        assert!(e.message().contains("only audio aac, video mjpeg"), "{e}");
        assert!(e.is_permanent());
    }

    #[test]
    fn limits_name_the_limit() {
        let p = parse(PHONE.as_bytes(), 0).unwrap();
        let l = VideoLimits {
            max_duration_seconds: 2.0,
            ..VideoLimits::default()
        };
        assert!(p
            .check(&l)
            .unwrap_err()
            .message()
            .contains("3.0 s, over the limit of 2 s"));
        let l = VideoLimits {
            max_pixels: 1920 * 1080 - 1,
            ..VideoLimits::default()
        };
        assert!(p.check(&l).unwrap_err().message().contains("1920x1080"));
        let l = VideoLimits {
            max_input_bytes: 1000,
            ..VideoLimits::default()
        };
        assert!(p.check(&l).unwrap_err().message().contains("5700000 bytes"));
        assert!(p.check(&VideoLimits::default()).is_ok());
    }
}
