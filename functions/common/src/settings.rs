//! Every environment variable the functions read is read here, once at
//! cold start, into [`Settings`] (and [`LogSettings`], read first so that
//! a bad setting can be logged). Nothing else in the functions, nor
//! `mediaflow-store-s3`, reads the environment (the AWS SDK still reads
//! its standard `AWS_*` configuration itself).
//!
//! Each function's `environment.json` lists what it reads: `variables`,
//! which the SAM and CDK templates set, and `runtime_variables`, which
//! Lambda or the AWS configuration set. The tests check both lists against
//! what this module reads.
//!
//! Rules for the `MEDIAFLOW_*` variables (and the memory size):
//! - An empty (or blank) value means unset, so the templates can pass an
//!   empty value for "the default".
//! - A boolean variable accepts `true`/`false`, `1`/`0`, `yes`/`no` and
//!   `on`/`off`, in any case, surrounded by any whitespace ([`parse_bool`]);
//!   anything else stops the function at cold start.
//!
//! The `AWS_*` variables and `RUST_LOG` are taken as Lambda and the SDK
//! set them.

use crate::Function;
use mediaflow_engine::{Plan, PublicBase};
use mediaflow_pipeline::{MemoryBudget, VideoSettings};
use mediaflow_store::valid_bucket_name;
use mediaflow_video::{Tools, DEFAULT_FFMPEG};
use std::path::PathBuf;

/// The output bucket (required).
pub const ENV_OUTPUT_BUCKET: &str = "MEDIAFLOW_OUTPUT_BUCKET";
/// The prefix of every output key (default: empty).
pub const ENV_OUTPUT_PREFIX: &str = "MEDIAFLOW_OUTPUT_PREFIX";
/// The configuration as TOML text (default: the built-in plans).
pub const ENV_CONFIG: &str = "MEDIAFLOW_CONFIG";
/// transcode: the ffmpeg program (default [`DEFAULT_FFMPEG`]).
pub const ENV_FFMPEG: &str = "MEDIAFLOW_FFMPEG";
/// transcode: the ffprobe program (default: `ffprobe` beside ffmpeg).
pub const ENV_FFPROBE: &str = "MEDIAFLOW_FFPROBE";
/// Both functions: a boolean ([`parse_bool`]) that overrides
/// `[video_options] animated_gif`, read in one place into
/// [`Settings::animated_gif`]: on-upload forwards animated GIFs to the
/// video queue when it is on, and transcode makes videos of them.
pub const ENV_ANIMATED_GIF: &str = "MEDIAFLOW_ANIMATED_GIF";
/// on-upload: the transcode function's SQS queue URL, where video uploads
/// are forwarded (default: none, and videos fail permanently).
pub const ENV_VIDEO_QUEUE_URL: &str = "MEDIAFLOW_VIDEO_QUEUE_URL";
/// Where the output bucket is served (the templates set the CloudFront
/// distribution's `https://DOMAIN`): each manifest then gives every
/// output's URL and the responsive markup ([`mediaflow_engine::delivery`]).
/// Unset or empty: manifests give keys only.
pub const ENV_PUBLIC_BASE_URL: &str = "MEDIAFLOW_PUBLIC_BASE_URL";
/// A boolean ([`parse_bool`]) that forces (true) or disables (false)
/// path-style S3 addressing. Unset: path-style exactly when an endpoint
/// override ([`ENV_ENDPOINT_URL`], [`ENV_ENDPOINT_URL_S3`]) is set
/// (S3-compatible servers rarely do virtual hosts).
pub const ENV_S3_PATH_STYLE: &str = "MEDIAFLOW_S3_PATH_STYLE";
/// The function's memory in MB, set by Lambda: work is admitted through a
/// memory budget of all of it but [`mediaflow_pipeline::FUNCTION_OVERHEAD_MIB`]
/// (unset, as in tests: admitted by concurrency alone).
pub const ENV_MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// The function's name, set by Lambda, for the metrics (default: the
/// binary's name).
pub const ENV_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
/// The log level, set by Lambda from the function's logging configuration.
pub const ENV_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
/// `JSON` or `Text`, set by Lambda from the function's logging configuration.
pub const ENV_LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";
/// Log directives when [`ENV_LOG_LEVEL`] is unset (outside Lambda).
pub const ENV_RUST_LOG: &str = "RUST_LOG";
/// The AWS SDK's endpoint override for every service.
pub const ENV_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
/// The AWS SDK's endpoint override for S3.
pub const ENV_ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";
/// The AWS SDK's endpoint override for SQS (on-upload's forwards; the SDK
/// reads it itself, this module only for the start-up log line).
pub const ENV_ENDPOINT_URL_SQS: &str = "AWS_ENDPOINT_URL_SQS";

/// The spellings [`parse_bool`] reads as true (in any case).
pub const TRUE_SPELLINGS: [&str; 4] = ["true", "1", "yes", "on"];
/// The spellings [`parse_bool`] reads as false (in any case).
pub const FALSE_SPELLINGS: [&str; 4] = ["false", "0", "no", "off"];

/// Settings read once at cold start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub function: Function,
    pub output_bucket: String,
    pub output_prefix: String,
    pub plan: Plan,
    /// The video path (transcode only).
    pub video: Option<VideoSettings>,
    /// The plan's `animated_gif` switch: [`ENV_ANIMATED_GIF`], else
    /// `[video_options] animated_gif` (transcode's video plan has it too).
    pub animated_gif: bool,
    /// on-upload: where videos are forwarded, from [`ENV_VIDEO_QUEUE_URL`].
    pub video_queue_url: Option<String>,
    /// on-upload: the SQS endpoint override ([`ENV_ENDPOINT_URL_SQS`],
    /// else [`ENV_ENDPOINT_URL`]), for the start-up log line.
    pub sqs_endpoint: Option<String>,
    /// `MEDIAFLOW_CONFIG` or `built-in`, for the start-up log line.
    pub plan_source: &'static str,
    /// The memory budget in bytes, from [`ENV_MEMORY_SIZE`].
    pub memory_budget: Option<u64>,
    /// The name the metrics carry, from [`ENV_FUNCTION_NAME`].
    pub function_name: String,
    /// Path-style S3 addressing, from [`ENV_S3_PATH_STYLE`].
    pub s3_path_style: bool,
    /// Where the outputs are served, from [`ENV_PUBLIC_BASE_URL`].
    pub public_base: Option<PublicBase>,
}

/// A setting that is missing or invalid: the function refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{ENV_OUTPUT_BUCKET} is not set: set it to the bucket that receives the variants and manifests")]
    MissingBucket,
    #[error("{ENV_OUTPUT_BUCKET}={0:?} is not a valid S3 bucket name")]
    BadBucket(String),
    #[error("{ENV_OUTPUT_PREFIX}={0:?} must not start with '/' (S3 keys have no leading slash)")]
    BadPrefix(String),
    #[error("{ENV_CONFIG} is not a valid mediaflow configuration: {0}")]
    Config(String),
    #[error("{name}={value:?} is not a boolean: use true or false (or 1/0, yes/no, on/off)")]
    BadBool { name: &'static str, value: String },
    #[error("{ENV_MEMORY_SIZE}={0:?} is not a number of MB")]
    BadMemory(String),
    #[error("{ENV_VIDEO_QUEUE_URL}={0:?} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)")]
    BadQueueUrl(String),
    #[error("{ENV_PUBLIC_BASE_URL}: {0}")]
    BadPublicBase(String),
    #[error("{0}")]
    Tools(String),
}

/// Reads the boolean variable `name`'s `value`: one of [`TRUE_SPELLINGS`]
/// or [`FALSE_SPELLINGS`], in any case, with any surrounding whitespace.
/// (An empty value never gets here: it means unset.)
pub fn parse_bool(name: &'static str, value: &str) -> Result<bool, SettingsError> {
    let v = value.trim().to_ascii_lowercase();
    if TRUE_SPELLINGS.contains(&v.as_str()) {
        Ok(true)
    } else if FALSE_SPELLINGS.contains(&v.as_str()) {
        Ok(false)
    } else {
        Err(SettingsError::BadBool {
            name,
            value: value.to_string(),
        })
    }
}

impl Settings {
    /// Reads the settings of `function` through `var` (the process
    /// environment in `main`, a map in tests). Empty values of the
    /// `MEDIAFLOW_*` variables and the memory size count as unset.
    pub fn from_lookup(
        function: Function,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let get_bool = |name: &'static str| get(name).map(|v| parse_bool(name, &v)).transpose();
        let output_bucket = get(ENV_OUTPUT_BUCKET).ok_or(SettingsError::MissingBucket)?;
        let output_bucket = output_bucket.trim().to_string();
        if !valid_bucket_name(&output_bucket) {
            return Err(SettingsError::BadBucket(output_bucket));
        }
        let output_prefix = get(ENV_OUTPUT_PREFIX).unwrap_or_default();
        if output_prefix.starts_with('/') {
            return Err(SettingsError::BadPrefix(output_prefix));
        }
        let (config, plan_source) = match get(ENV_CONFIG) {
            Some(text) => (
                mediaflow_config::parse_config(&text)
                    .map_err(|e| SettingsError::Config(e.to_string()))?,
                ENV_CONFIG,
            ),
            None => (mediaflow_config::builtin_config(), "built-in"),
        };
        // One switch for both functions: on-upload forwards animated GIFs,
        // transcode transcodes them.
        let video_plan = match get_bool(ENV_ANIMATED_GIF)? {
            Some(on) => config.video.with_animated_gif(on),
            None => config.video,
        };
        let animated_gif = video_plan.animated_gif();
        let (video, video_queue_url, sqs_endpoint) = match function {
            Function::OnUpload => {
                let url = get(ENV_VIDEO_QUEUE_URL).map(|u| u.trim().to_string());
                if let Some(url) = &url {
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        return Err(SettingsError::BadQueueUrl(url.clone()));
                    }
                }
                let endpoint = get(ENV_ENDPOINT_URL_SQS).or_else(|| get(ENV_ENDPOINT_URL));
                (None, url, endpoint)
            }
            Function::Transcode => {
                let plan = video_plan;
                let ffmpeg = get(ENV_FFMPEG).unwrap_or_else(|| DEFAULT_FFMPEG.to_string());
                let ffprobe = get(ENV_FFPROBE).map(PathBuf::from);
                let video = VideoSettings {
                    plan,
                    tools: Tools::new(ffmpeg.trim(), ffprobe),
                    work_root: std::env::temp_dir(),
                };
                (Some(video), None, None)
            }
        };
        let memory_budget = match get(ENV_MEMORY_SIZE) {
            None => None,
            Some(mb) => {
                let mb: u64 = mb
                    .trim()
                    .parse()
                    .map_err(|_| SettingsError::BadMemory(mb.clone()))?;
                Some(MemoryBudget::for_function(mb).bytes())
            }
        };
        let function_name = var(ENV_FUNCTION_NAME).unwrap_or_else(|| function.name().into());
        let endpoint_set = var(ENV_ENDPOINT_URL_S3).is_some() || var(ENV_ENDPOINT_URL).is_some();
        let s3_path_style = get_bool(ENV_S3_PATH_STYLE)?.unwrap_or(endpoint_set);
        let public_base = get(ENV_PUBLIC_BASE_URL)
            .map(|u| PublicBase::parse(&u).map_err(SettingsError::BadPublicBase))
            .transpose()?;
        Ok(Settings {
            function,
            output_bucket,
            output_prefix,
            plan: config.image,
            video,
            animated_gif,
            video_queue_url,
            sqs_endpoint,
            plan_source,
            memory_budget,
            function_name,
            s3_path_style,
            public_base,
        })
    }

    /// Reads the settings from the process environment.
    pub fn from_env(function: Function) -> Result<Settings, SettingsError> {
        Self::from_lookup(function, |name| std::env::var(name).ok())
    }

    /// Runs the video tools once (`-version`), so a missing ffmpeg layer
    /// stops the function at start with one line saying so. Returns
    /// ffmpeg's version line; `None` for functions without video.
    pub fn check_tools(&self) -> Result<Option<String>, SettingsError> {
        match &self.video {
            None => Ok(None),
            Some(v) => v
                .tools
                .check()
                .map(Some)
                .map_err(|e| SettingsError::Tools(e.message().to_string())),
        }
    }
}

/// Log format for [`crate::runtime::init_tracing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`, text when it says `Text`; when
/// unset, JSON inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) and text elsewhere.
pub fn log_format(var: impl Fn(&str) -> Option<String>) -> LogFormat {
    match var(ENV_LOG_FORMAT) {
        Some(f) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
        Some(f) if f.eq_ignore_ascii_case("text") => LogFormat::Text,
        _ if var(ENV_FUNCTION_NAME).is_some() => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

/// How to log, read before [`Settings`] so that their errors are logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// [`ENV_LOG_LEVEL`]: a level, used in lower case.
    pub level: Option<String>,
    /// [`ENV_RUST_LOG`]: directives, used when `level` is unset (`info`
    /// when both are unset or the directives are invalid).
    pub rust_log: Option<String>,
    /// From [`log_format`].
    pub format: LogFormat,
}

impl LogSettings {
    /// Reads the log settings through `var` (see [`Settings::from_lookup`]).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> LogSettings {
        LogSettings {
            level: var(ENV_LOG_LEVEL),
            rust_log: var(ENV_RUST_LOG),
            format: log_format(&var),
        }
    }

    /// Reads the log settings from the process environment.
    pub fn from_env() -> LogSettings {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::cell::RefCell;
    use std::collections::{BTreeSet, HashMap};

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn settings_need_a_bucket_and_a_valid_config() {
        let e = Settings::from_lookup(Function::OnUpload, env(&[])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("MEDIAFLOW_OUTPUT_BUCKET is not set"),
            "{e}"
        );
        let e = Settings::from_lookup(Function::OnUpload, env(&[(ENV_OUTPUT_BUCKET, "  ")]))
            .unwrap_err();
        assert!(matches!(e, SettingsError::MissingBucket));
        let e = Settings::from_lookup(
            Function::OnUpload,
            env(&[(ENV_OUTPUT_BUCKET, "Bad_Bucket")]),
        )
        .unwrap_err();
        assert!(matches!(e, SettingsError::BadBucket(_)), "{e}");
        let e = Settings::from_lookup(
            Function::OnUpload,
            env(&[(ENV_OUTPUT_BUCKET, "media"), (ENV_OUTPUT_PREFIX, "/out/")]),
        )
        .unwrap_err();
        assert!(matches!(e, SettingsError::BadPrefix(_)), "{e}");
        let e = Settings::from_lookup(
            Function::OnUpload,
            env(&[
                (ENV_OUTPUT_BUCKET, "media"),
                (ENV_CONFIG, "[[variant]]\nwidth = -1\n"),
            ]),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("MEDIAFLOW_CONFIG is not a valid mediaflow configuration"),
            "{e}"
        );

        let s = Settings::from_lookup(Function::OnUpload, env(&[(ENV_OUTPUT_BUCKET, "media")]))
            .unwrap();
        assert_eq!(
            (
                s.output_bucket.as_str(),
                s.output_prefix.as_str(),
                s.plan_source
            ),
            ("media", "", "built-in")
        );
        assert_eq!(s.plan.fingerprint(), Plan::builtin().fingerprint());
        let s = Settings::from_lookup(
            Function::OnUpload,
            env(&[
                (ENV_OUTPUT_BUCKET, "media"),
                (ENV_OUTPUT_PREFIX, "out/"),
                (ENV_CONFIG, "[[variant]]\nname = \"s\"\nwidth = 64\n"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (
                s.output_prefix.as_str(),
                s.plan.variants().len(),
                s.plan_source
            ),
            ("out/", 1, ENV_CONFIG)
        );
    }

    #[test]
    fn the_memory_budget_follows_the_function_memory() {
        let s = Settings::from_lookup(Function::OnUpload, env(&[(ENV_OUTPUT_BUCKET, "media")]))
            .unwrap();
        assert_eq!(s.memory_budget, None);
        let s = Settings::from_lookup(
            Function::Transcode,
            env(&[(ENV_OUTPUT_BUCKET, "media"), (ENV_MEMORY_SIZE, "2048")]),
        )
        .unwrap();
        assert_eq!(
            s.memory_budget,
            Some((2048 - mediaflow_pipeline::FUNCTION_OVERHEAD_MIB) << 20)
        );
        let e = Settings::from_lookup(
            Function::OnUpload,
            env(&[(ENV_OUTPUT_BUCKET, "media"), (ENV_MEMORY_SIZE, "lots")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=\"lots\" is not a number of MB"
        );
    }

    fn names(list: &Value) -> BTreeSet<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// `environment.json` is the contract the SAM and CDK templates are
    /// checked against; it must say what this code reads.
    #[test]
    fn environment_contracts_match_the_code() {
        for (function, names) in [
            (
                Function::OnUpload,
                &[
                    ENV_OUTPUT_BUCKET,
                    ENV_OUTPUT_PREFIX,
                    ENV_CONFIG,
                    ENV_VIDEO_QUEUE_URL,
                    ENV_ANIMATED_GIF,
                    ENV_PUBLIC_BASE_URL,
                    ENV_S3_PATH_STYLE,
                ][..],
            ),
            (
                Function::Transcode,
                &[
                    ENV_OUTPUT_BUCKET,
                    ENV_OUTPUT_PREFIX,
                    ENV_CONFIG,
                    ENV_FFMPEG,
                    ENV_FFPROBE,
                    ENV_ANIMATED_GIF,
                    ENV_PUBLIC_BASE_URL,
                    ENV_S3_PATH_STYLE,
                ][..],
            ),
        ] {
            let contract: Value = serde_json::from_str(function.environment_json()).unwrap();
            let vars = contract["variables"].as_array().unwrap();
            let got: Vec<&str> = vars.iter().map(|v| v["name"].as_str().unwrap()).collect();
            assert_eq!(got, names, "{function:?}");
            assert_eq!(vars[0]["required"], true);
            assert!(vars[1..].iter().all(|v| v["required"] == false));
            // The defaults are what the code does with an unset variable.
            let s = Settings::from_lookup(function, env(&[(ENV_OUTPUT_BUCKET, "media")])).unwrap();
            assert_eq!(s.output_prefix, vars[1]["default"].as_str().unwrap());
            assert_eq!(vars[2]["default"], "");
            let path_style = vars
                .iter()
                .find(|v| v["name"] == ENV_S3_PATH_STYLE)
                .unwrap();
            assert_eq!(path_style["default"], "");
            assert!(!s.s3_path_style, "no endpoint override: virtual hosts");
            assert_eq!(contract["function"], function.name());
            assert_eq!(contract["binary"], function.name());
            let wiring = &contract["event_wiring"];
            assert_eq!(wiring["source"], "sqs");
            assert_eq!(
                wiring["function_response_types"],
                json!(["ReportBatchItemFailures"])
            );
            // One queue for every object created or removed under the
            // source prefix feeds on-upload, which decides by the bytes and
            // forwards videos to transcode's queue; no routing by suffix.
            assert!(wiring.get("suffixes").is_none(), "{function:?}");
            assert!(wiring.get("suffixes_when_animated_gif").is_none());
            let gif = vars.iter().find(|v| v["name"] == ENV_ANIMATED_GIF).unwrap();
            assert_eq!(gif["default"], "");
            assert!(!s.animated_gif, "{ENV_ANIMATED_GIF} unset: the config's");
            match (function, &s.video) {
                (Function::OnUpload, None) => {
                    assert_eq!(
                        wiring["s3_events"],
                        json!(["s3:ObjectCreated:*", "s3:ObjectRemoved:*"])
                    );
                    assert_eq!(wiring["forwards_videos_to"], Function::Transcode.name());
                    assert!(wiring.get("fed_by").is_none());
                    let queue = vars
                        .iter()
                        .find(|v| v["name"] == ENV_VIDEO_QUEUE_URL)
                        .unwrap();
                    assert_eq!(queue["default"], "");
                    assert_eq!((&s.video_queue_url, &s.sqs_endpoint), (&None, &None));
                }
                (Function::Transcode, Some(v)) => {
                    assert_eq!(wiring["s3_events"], json!([]));
                    assert_eq!(wiring["fed_by"], Function::OnUpload.name());
                    assert!(wiring.get("forwards_videos_to").is_none());
                    assert_eq!(s.video_queue_url, None);
                    assert_eq!(v.tools.ffmpeg.to_str(), vars[3]["default"].as_str());
                    assert_eq!(vars[4]["default"], "");
                    assert_eq!(v.tools.ffprobe.to_str(), Some("/opt/bin/ffprobe"));
                    assert!(
                        !v.plan.animated_gif(),
                        "{ENV_ANIMATED_GIF} unset: the config's"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// Every variable this module reads is in `environment.json`, either
    /// among the `variables` the templates set or the `runtime_variables`
    /// Lambda and the AWS configuration set, and nothing else is.
    #[test]
    fn environment_json_lists_every_variable_read() {
        for function in [Function::OnUpload, Function::Transcode] {
            let read = RefCell::new(BTreeSet::new());
            let var = |name: &str| {
                read.borrow_mut().insert(name.to_string());
                (name == ENV_OUTPUT_BUCKET).then(|| "media".to_string())
            };
            LogSettings::from_lookup(var);
            Settings::from_lookup(function, var).unwrap();
            let contract: Value = serde_json::from_str(function.environment_json()).unwrap();
            let set = names(&contract["variables"]);
            let runtime = names(&contract["runtime_variables"]);
            assert!(set.is_disjoint(&runtime), "{function:?}");
            let listed: BTreeSet<String> = set.union(&runtime).cloned().collect();
            assert_eq!(read.into_inner(), listed, "{function:?}");
        }
    }

    #[test]
    fn booleans() {
        assert!(parse_bool("X", "TRUE").unwrap());
        assert!(!parse_bool("X", "0").unwrap());
        assert!(parse_bool("X", "maybe")
            .unwrap_err()
            .to_string()
            .contains("X=\"maybe\""));
    }

    /// The spellings `environment.json` documents are the ones
    /// [`parse_bool`] accepts, and every variable it marks boolean is
    /// read with it.
    #[test]
    fn boolean_variables_accept_the_documented_spellings() {
        for function in [Function::OnUpload, Function::Transcode] {
            let contract: Value = serde_json::from_str(function.environment_json()).unwrap();
            let doc = &contract["booleans"];
            for (key, want, spellings) in [
                ("true", true, TRUE_SPELLINGS),
                ("false", false, FALSE_SPELLINGS),
            ] {
                let documented: Vec<&str> = doc[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .collect();
                assert_eq!(documented, spellings, "{function:?} {key}");
                for s in spellings {
                    for v in [s.to_string(), s.to_uppercase(), format!(" {s}\n")] {
                        assert_eq!(parse_bool("X", &v).unwrap(), want, "{v:?}");
                    }
                }
            }
            let booleans: Vec<&str> = contract["variables"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| v["type"] == "boolean")
                .map(|v| v["name"].as_str().unwrap())
                .collect();
            let expected: &[&str] = &[ENV_ANIMATED_GIF, ENV_S3_PATH_STYLE];
            assert_eq!(booleans, expected);
            for name in booleans {
                for (value, want) in [("On", Some(true)), ("no", Some(false)), ("", None)] {
                    let s = Settings::from_lookup(
                        function,
                        env(&[(ENV_OUTPUT_BUCKET, "media"), (name, value)]),
                    )
                    .unwrap();
                    let got = match name {
                        ENV_S3_PATH_STYLE => s.s3_path_style,
                        _ => {
                            // transcode's video plan has the same switch.
                            if let Some(v) = &s.video {
                                assert_eq!(v.plan.animated_gif(), s.animated_gif);
                            }
                            s.animated_gif
                        }
                    };
                    // Empty: unset, the default (false here for both).
                    assert_eq!(got, want.unwrap_or(false), "{name}={value:?}");
                }
                let e = Settings::from_lookup(
                    function,
                    env(&[(ENV_OUTPUT_BUCKET, "media"), (name, "maybe")]),
                )
                .unwrap_err();
                assert_eq!(
                    e.to_string(),
                    format!(
                        "{name}=\"maybe\" is not a boolean: use true or false (or 1/0, yes/no, on/off)"
                    )
                );
            }
        }
    }

    #[test]
    fn path_style_follows_an_endpoint_override_unless_set() {
        let path_style = |pairs: &[(&str, &str)]| {
            let mut pairs = pairs.to_vec();
            pairs.push((ENV_OUTPUT_BUCKET, "media"));
            Settings::from_lookup(Function::OnUpload, env(&pairs))
                .unwrap()
                .s3_path_style
        };
        assert!(!path_style(&[]));
        assert!(path_style(&[(ENV_ENDPOINT_URL, "http://127.0.0.1:9000")]));
        assert!(path_style(&[(
            ENV_ENDPOINT_URL_S3,
            "http://127.0.0.1:9000"
        )]));
        assert!(!path_style(&[
            (ENV_ENDPOINT_URL, "http://127.0.0.1:9000"),
            (ENV_S3_PATH_STYLE, "false")
        ]));
        assert!(path_style(&[(ENV_S3_PATH_STYLE, "1")]));
    }

    #[test]
    fn transcode_settings() {
        let s = Settings::from_lookup(
            Function::Transcode,
            env(&[
                (ENV_OUTPUT_BUCKET, "media"),
                (ENV_FFMPEG, "/usr/bin/ffmpeg"),
                (ENV_ANIMATED_GIF, "TRUE"),
                (
                    ENV_CONFIG,
                    "[[variant]]\nname = \"p\"\nwidth = 64\n[[video]]\nname = \"hd\"\n",
                ),
            ]),
        )
        .unwrap();
        let v = s.video.unwrap();
        assert_eq!(v.tools.ffprobe, PathBuf::from("/usr/bin/ffprobe"));
        assert!(v.plan.animated_gif());
        assert_eq!(v.plan.renditions()[0].name, "hd");
        let e = Settings::from_lookup(
            Function::Transcode,
            env(&[(ENV_OUTPUT_BUCKET, "media"), (ENV_ANIMATED_GIF, "maybe")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "MEDIAFLOW_ANIMATED_GIF=\"maybe\" is not a boolean: use true or false (or 1/0, yes/no, on/off)"
        );
        let s = Settings::from_lookup(
            Function::Transcode,
            env(&[(ENV_OUTPUT_BUCKET, "media"), (ENV_FFMPEG, "/nope/ffmpeg")]),
        )
        .unwrap();
        let e = s.check_tools().unwrap_err().to_string();
        assert!(e.starts_with("ffmpeg is not usable at /nope/ffmpeg"), "{e}");
        assert!(!e.contains('\n'));
        let s = Settings::from_lookup(Function::OnUpload, env(&[(ENV_OUTPUT_BUCKET, "media")]))
            .unwrap();
        assert_eq!(s.check_tools().unwrap(), None);
    }

    #[test]
    fn the_public_base_url_is_read_and_checked() {
        for function in [Function::OnUpload, Function::Transcode] {
            let s = Settings::from_lookup(
                function,
                env(&[
                    (ENV_OUTPUT_BUCKET, "media"),
                    (
                        ENV_PUBLIC_BASE_URL,
                        "https://d111111abcdef8.cloudfront.net/",
                    ),
                ]),
            )
            .unwrap();
            assert_eq!(
                s.public_base.unwrap().url("w256/a b.jpg"),
                "https://d111111abcdef8.cloudfront.net/w256/a%20b.jpg"
            );
            let s = Settings::from_lookup(
                function,
                env(&[(ENV_OUTPUT_BUCKET, "media"), (ENV_PUBLIC_BASE_URL, " ")]),
            )
            .unwrap();
            assert_eq!(s.public_base, None, "empty means unset (delivery off)");
            let e = Settings::from_lookup(
                function,
                env(&[
                    (ENV_OUTPUT_BUCKET, "media"),
                    (ENV_PUBLIC_BASE_URL, "d111111abcdef8.cloudfront.net"),
                ]),
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.starts_with(
                    "MEDIAFLOW_PUBLIC_BASE_URL: \"d111111abcdef8.cloudfront.net\" is not a URL"
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn on_upload_reads_the_video_queue_and_the_animated_gif_switch() {
        let url = "https://sqs.eu-west-1.amazonaws.com/123456789012/transcode-videos";
        let s = Settings::from_lookup(
            Function::OnUpload,
            env(&[
                (ENV_OUTPUT_BUCKET, "media"),
                (ENV_VIDEO_QUEUE_URL, &format!(" {url}\n")),
                (ENV_ANIMATED_GIF, "yes"),
                (ENV_ENDPOINT_URL_SQS, "http://127.0.0.1:5000"),
                (ENV_ENDPOINT_URL, "http://127.0.0.1:9000"),
            ]),
        )
        .unwrap();
        assert_eq!(s.video_queue_url.as_deref(), Some(url));
        assert!(s.animated_gif);
        assert!(s.video.is_none(), "on-upload transcodes nothing itself");
        assert_eq!(s.sqs_endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        let s = Settings::from_lookup(
            Function::OnUpload,
            env(&[
                (ENV_OUTPUT_BUCKET, "media"),
                (ENV_VIDEO_QUEUE_URL, " "),
                (ENV_ENDPOINT_URL, "http://127.0.0.1:9000"),
                (
                    ENV_CONFIG,
                    "[[variant]]\nname = \"s\"\nwidth = 64\n[video_options]\nanimated_gif = true\n",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(s.video_queue_url, None, "blank: unset");
        assert!(s.animated_gif, "unset: the config's");
        assert_eq!(s.sqs_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let e = Settings::from_lookup(
            Function::OnUpload,
            env(&[
                (ENV_OUTPUT_BUCKET, "media"),
                (ENV_VIDEO_QUEUE_URL, "transcode-videos"),
            ]),
        )
        .unwrap_err();
        assert!(matches!(e, SettingsError::BadQueueUrl(_)), "{e}");
        assert!(
            e.to_string().starts_with(
                "MEDIAFLOW_VIDEO_QUEUE_URL=\"transcode-videos\" is not an SQS queue URL"
            ),
            "{e}"
        );
        // transcode forwards nothing: the variable is not its.
        let s = Settings::from_lookup(
            Function::Transcode,
            env(&[(ENV_OUTPUT_BUCKET, "media"), (ENV_VIDEO_QUEUE_URL, url)]),
        )
        .unwrap();
        assert_eq!((s.video_queue_url, s.sqs_endpoint), (None, None));
    }

    #[test]
    fn the_function_name_is_lambdas() {
        let s = Settings::from_lookup(Function::Transcode, env(&[(ENV_OUTPUT_BUCKET, "media")]))
            .unwrap();
        assert_eq!(s.function_name, "transcode");
        let s = Settings::from_lookup(
            Function::OnUpload,
            env(&[
                (ENV_OUTPUT_BUCKET, "media"),
                (ENV_FUNCTION_NAME, "stack-OnUpload-1"),
            ]),
        )
        .unwrap();
        assert_eq!(s.function_name, "stack-OnUpload-1");
    }

    #[test]
    fn log_format_follows_lambda() {
        assert_eq!(log_format(env(&[])), LogFormat::Text);
        assert_eq!(
            log_format(env(&[("AWS_LAMBDA_FUNCTION_NAME", "f")])),
            LogFormat::Json
        );
        assert_eq!(
            log_format(env(&[
                ("AWS_LAMBDA_FUNCTION_NAME", "f"),
                ("AWS_LAMBDA_LOG_FORMAT", "Text")
            ])),
            LogFormat::Text
        );
        assert_eq!(
            log_format(env(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")])),
            LogFormat::Json
        );
    }
}
