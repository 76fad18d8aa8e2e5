use super::*;

/// A variant table with the given extra lines, wrapped in a minimal config.
fn one_variant(extra: &str) -> String {
    format!("[[variant]]\nname = \"w800\"\nwidth = 800\n{extra}\n")
}

fn err(text: &str) -> String {
    parse(text)
        .expect_err("config should be rejected")
        .to_string()
}

fn variant(text: &str) -> Variant {
    parse(text).expect("config should parse").variants()[0].clone()
}

#[test]
fn builtin_toml_is_the_builtin_plan() {
    let plan = parse(BUILTIN_TOML).unwrap();
    assert_eq!(plan, Plan::builtin());
    assert_eq!(plan, builtin());
    assert_eq!(plan.fingerprint(), Plan::builtin().fingerprint());
    let names: Vec<_> = plan.variants().iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["w2048", "w1024", "w512", "w256"]);
}

#[test]
fn example_config_at_repo_root_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../mediaflow.toml");
    let plan = load(&path).unwrap();
    let names: Vec<_> = plan.variants().iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["thumb", "w640", "w1280"]);
    let thumb = &plan.variants()[0];
    assert_eq!((thumb.width, thumb.height), (Some(256), Some(256)));
    assert_eq!(thumb.fit, Fit::Cover);
    assert_eq!(
        thumb.formats,
        [
            FormatChoice::Fixed(OutputFormat::Webp),
            FormatChoice::Fixed(OutputFormat::Jpeg)
        ]
    );
    assert!(plan.variants()[2]
        .formats
        .contains(&FormatChoice::Fixed(OutputFormat::Avif)));
    // The [limits] and [output] values shown there are the defaults.
    assert_eq!(*plan.limits(), Limits::default());
    assert_eq!(*plan.encode_options(), EncodeOptions::default());
    assert!(plan.placeholder());
}

#[test]
fn example_config_video_sections_are_the_defaults_plus_a_360p_rendition() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../mediaflow.toml");
    let video = load_config(&path).unwrap().video;
    assert_eq!(*video.limits(), VideoLimits::default());
    assert_eq!(video.poster_at(), VideoPlan::builtin().poster_at());
    assert!(!video.animated_gif());
    let names: Vec<_> = video.renditions().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["720p", "360p"]);
    let mut defaults = Rendition::new("720p");
    defaults.max_height = Some(720);
    assert_eq!(video.renditions()[0], defaults);
}

#[test]
fn every_key_is_parsed() {
    let plan = parse(
        r##"
        [limits]
        max_input_bytes = 1000
        max_pixels = 2000
        max_frames = 3
        max_animation_pixels = 4000

        [output]
        jpeg_progressive = false
        avif_speed = 2
        webp_method = 6
        png_compression = 0
        placeholder = false
        fast_shrink_on_load = false

        [[variant]]
        name = "a_1-b"
        width = 640
        height = 480
        fit = "cover"
        gravity = "northeast"
        formats = ["avif", "png", "source", "jpg", "webp"]
        quality = 55
        upscale = true
        background = "#10203040"
        filter = "catmullrom"
        lossless = true
        animated = true

        [[variant]]
        name = "focal"
        height = 100
        fit = "contain"
        focal = [0.25, 1]
        background = "#abc"
        "##,
    )
    .unwrap();
    assert_eq!(
        *plan.limits(),
        Limits {
            max_input_bytes: 1000,
            max_pixels: 2000,
            max_frames: 3,
            max_animation_pixels: 4000,
        }
    );
    assert_eq!(
        *plan.encode_options(),
        EncodeOptions {
            jpeg_progressive: false,
            avif_speed: 2,
            webp_method: 6,
            png_compression: 0
        }
    );
    assert!(!plan.placeholder());
    assert!(!plan.fast_shrink_on_load());
    let v = &plan.variants()[0];
    assert_eq!(v.name, "a_1-b");
    assert_eq!((v.width, v.height), (Some(640), Some(480)));
    assert_eq!(v.fit, Fit::Cover);
    assert_eq!(v.gravity, Gravity::NorthEast);
    assert_eq!(
        v.formats,
        [
            FormatChoice::Fixed(OutputFormat::Avif),
            FormatChoice::Fixed(OutputFormat::Png),
            FormatChoice::Source,
            FormatChoice::Fixed(OutputFormat::Jpeg),
            FormatChoice::Fixed(OutputFormat::Webp),
        ]
    );
    assert_eq!(v.quality, Some(55));
    assert!(v.upscale);
    assert_eq!(
        v.background,
        Some(Color {
            r: 0x10,
            g: 0x20,
            b: 0x30,
            a: 0x40
        })
    );
    assert_eq!(v.filter, Filter::CatmullRom);
    assert!(v.lossless);
    assert!(v.animated);
    let f = &plan.variants()[1];
    assert_eq!((f.width, f.height), (None, Some(100)));
    assert_eq!(f.fit, Fit::Contain);
    assert_eq!(f.gravity, Gravity::Focal(0.25, 1.0));
    assert_eq!(f.background, Some(Color::rgb(0xaa, 0xbb, 0xcc)));
}

#[test]
fn defaults_are_applied() {
    let plan = parse("[[variant]]\nname = \"w1\"\nwidth = 10\n").unwrap();
    assert_eq!(*plan.limits(), Limits::default());
    assert_eq!(*plan.encode_options(), EncodeOptions::default());
    assert!(plan.placeholder());
    // Same as the engine's Variant::new: inside, centre, lanczos3, JPEG, ...
    assert_eq!(plan.variants()[0], Variant::new("w1", Some(10), None));

    // Partial sections keep the defaults of the keys they leave out.
    let plan = parse(
        "[limits]\nmax_frames = 4\n[output]\navif_speed = 3\n[[variant]]\nname = \"w1\"\nwidth = 10\n",
    )
    .unwrap();
    assert_eq!(
        *plan.limits(),
        Limits {
            max_frames: 4,
            ..Limits::default()
        }
    );
    assert_eq!(
        *plan.encode_options(),
        EncodeOptions {
            avif_speed: 3,
            ..EncodeOptions::default()
        }
    );
}

#[test]
fn all_enum_spellings_parse() {
    for (name, fit) in FITS {
        assert_eq!(variant(&one_variant(&format!("fit = {name:?}"))).fit, fit);
    }
    for (name, gravity) in GRAVITIES {
        let v = variant(&one_variant(&format!(
            "fit = \"cover\"\ngravity = {name:?}"
        )));
        assert_eq!(v.gravity, gravity);
    }
    for filter in Filter::ALL {
        let v = variant(&one_variant(&format!("filter = {:?}", filter.as_str())));
        assert_eq!(v.filter, filter);
    }
    assert_eq!(
        variant(&one_variant("gravity = \"centre\"")).gravity,
        Gravity::Center
    );
}

#[test]
fn unknown_keys_name_their_section() {
    let e = err("[[variant]]\nname = \"w800\"\nwidht = 800\n");
    assert!(
        e.starts_with("unknown field \"widht\" in variant[0] (\"w800\"), expected one of "),
        "{e}"
    );
    assert!(e.contains("width"), "{e}");
    let e = err(&format!("{}[[variant]]\nwidht = 1\n", one_variant("")));
    assert!(
        e.starts_with("unknown field \"widht\" in variant[1],"),
        "{e}"
    );
    let e = err(&format!("[limits]\nmax_bytes = 1\n{}", one_variant("")));
    assert!(
        e.starts_with("unknown field \"max_bytes\" in limits"),
        "{e}"
    );
    let e = err(&format!("[output]\nquality = 1\n{}", one_variant("")));
    assert!(e.starts_with("unknown field \"quality\" in output"), "{e}");
    // Top level: toml's own report, with line and column.
    let e = err(&format!("{}[limit]\nmax_frames = 1\n", one_variant("")));
    assert!(e.contains("unknown field `limit`"), "{e}");
    assert!(e.contains("line 5, column 2"), "{e}");
}

#[test]
fn syntax_errors_have_line_and_column() {
    let e = err("[[variant]]\nname = \"w800\nwidth = 800\n");
    assert!(e.contains("line 2, column"), "{e}");
    let e = err("[[variant]]\nname = \"a\"\nwidth = 1\nwidth = 2\n");
    assert!(e.contains("line 4"), "{e}");
    assert!(e.contains("duplicate key"), "{e}");
    // A single [variant] table instead of [[variant]].
    let e = err("[variant]\nname = \"a\"\nwidth = 1\n");
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn invalid_values_name_their_key() {
    let cases: &[(&str, &str)] = &[
        (
            "fit = \"strech\"",
            "variant[0] (\"w800\").fit: unknown value \"strech\", expected one of inside, cover, contain, fill",
        ),
        (
            "gravity = \"up\"",
            "variant[0] (\"w800\").gravity: unknown value \"up\", expected one of center, centre, north,",
        ),
        (
            "filter = \"cubic\"",
            "variant[0] (\"w800\").filter: unknown value \"cubic\", expected one of nearest, box, bilinear, hamming, catmullrom, mitchell, lanczos3",
        ),
        (
            "formats = [\"jpeg\", \"gif\"]",
            "variant[0] (\"w800\").formats[1]: unknown value \"gif\", expected one of jpeg, png, webp, avif, source",
        ),
        (
            "formats = [\"jpeg\", \"jpg\"]",
            "variant[0] (\"w800\").formats[1]: \"jpg\" is listed twice (same as variant[0] (\"w800\").formats[0])",
        ),
        ("formats = []", "variant[0] (\"w800\").formats: must list at least one format"),
        ("formats = \"jpeg\"", "variant[0] (\"w800\").formats: expected an array"),
        ("formats = [1]", "variant[0] (\"w800\").formats[0]: expected a string, got integer 1"),
        ("quality = 0", "variant[0] (\"w800\").quality: 0 is out of range, expected an integer in 1..=100"),
        ("quality = 101", "variant[0] (\"w800\").quality: 101 is out of range"),
        ("quality = \"high\"", "variant[0] (\"w800\").quality: expected an integer in 1..=100, got string \"high\""),
        ("height = 0", "variant[0] (\"w800\").height: 0 is out of range, expected an integer in 1..=16384"),
        ("height = 16385", "variant[0] (\"w800\").height: 16385 is out of range"),
        ("height = 1.5", "variant[0] (\"w800\").height: expected an integer in 1..=16384, got float 1.5"),
        ("upscale = \"yes\"", "variant[0] (\"w800\").upscale: expected true or false, got string \"yes\""),
        ("lossless = 1", "variant[0] (\"w800\").lossless: expected true or false, got integer 1"),
        (
            "background = \"white\"",
            "variant[0] (\"w800\").background: invalid colour \"white\", expected \"#rgb\", \"#rrggbb\" or \"#rrggbbaa\"",
        ),
        ("background = \"#12345\"", "variant[0] (\"w800\").background: invalid colour \"#12345\""),
        ("focal = [0.5]", "variant[0] (\"w800\").focal: expected [x, y] with fractions 0..1"),
        ("focal = [0.5, 1.5]", "variant[0] (\"w800\").focal: expected [x, y]"),
        ("focal = [\"a\", 0]", "variant[0] (\"w800\").focal: expected [x, y]"),
        (
            "gravity = \"north\"\nfocal = [0.5, 0.5]",
            "variant[0] (\"w800\").focal: set either gravity or focal, not both",
        ),
    ];
    for (extra, expected) in cases {
        let e = err(&one_variant(extra));
        assert!(
            e.starts_with(expected),
            "for {extra:?}:\n  got      {e}\n  expected {expected}"
        );
    }
}

#[test]
fn variant_names_and_sizes_are_checked() {
    let e = err("[[variant]]\nwidth = 1\n");
    assert_eq!(e, "variant[0]: missing required key \"name\"");
    let e = err("[[variant]]\nname = 5\nwidth = 1\n");
    assert_eq!(e, "variant[0].name: expected a string, got integer 5");
    let e = err("[[variant]]\nname = \"W800\"\nwidth = 1\n");
    assert!(
        e.starts_with("variant[0] (\"W800\").name: \"W800\" must match [a-z0-9_-]+"),
        "{e}"
    );
    let e = err("[[variant]]\nname = \"\"\nwidth = 1\n");
    assert!(
        e.starts_with("variant[0] (\"\").name: \"\" must match"),
        "{e}"
    );
    let e = err("[[variant]]\nname = \"a\"\nfit = \"cover\"\n");
    assert_eq!(
        e,
        "variant[0] (\"a\"): set at least one of width and height"
    );
}

#[test]
fn duplicate_names_are_rejected_by_the_engine() {
    let text = format!("{}{}", one_variant(""), one_variant("height = 10"));
    let e = parse(&text).unwrap_err();
    assert!(matches!(e, ConfigError::Plan(_)), "{e:?}");
    assert_eq!(e.to_string(), "variant name \"w800\" is used twice");
}

#[test]
fn sections_are_checked() {
    assert_eq!(
        err(""),
        "variant: at least one [[variant]] table is required"
    );
    assert_eq!(
        err("variant = []"),
        "variant: at least one [[variant]] table is required"
    );
    let v = one_variant("");
    let cases: &[(&str, &str)] = &[
        (
            "[limits]\nmax_input_bytes = 0",
            "limits.max_input_bytes: 0 is out of range, expected an integer of at least 1",
        ),
        (
            "[limits]\nmax_pixels = -5",
            "limits.max_pixels: -5 is out of range",
        ),
        (
            "[limits]\nmax_frames = 4294967296",
            "limits.max_frames: 4294967296 is out of range, expected an integer in 1..=4294967295",
        ),
        (
            "[limits]\nmax_frames = \"1\"",
            "limits.max_frames: expected an integer in 1..=4294967295, got string \"1\"",
        ),
        (
            "[output]\navif_speed = 0",
            "output.avif_speed: 0 is out of range, expected an integer in 1..=10",
        ),
        (
            "[output]\navif_speed = 11",
            "output.avif_speed: 11 is out of range",
        ),
        (
            "[output]\nwebp_method = 7",
            "output.webp_method: 7 is out of range, expected an integer in 0..=6",
        ),
        (
            "[output]\npng_compression = 10",
            "output.png_compression: 10 is out of range, expected an integer in 0..=9",
        ),
        (
            "[output]\njpeg_progressive = \"no\"",
            "output.jpeg_progressive: expected true or false",
        ),
        (
            "[output]\nplaceholder = 1",
            "output.placeholder: expected true or false, got integer 1",
        ),
        (
            "[output]\nfast_shrink_on_load = \"yes\"",
            "output.fast_shrink_on_load: expected true or false, got string \"yes\"",
        ),
    ];
    for (section, expected) in cases {
        let e = err(&format!("{section}\n{v}"));
        assert!(
            e.starts_with(expected),
            "for {section:?}:\n  got      {e}\n  expected {expected}"
        );
    }
}

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("mediaflow-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, one_variant("fit = \"strech\"")).unwrap();
    let e = load(&path).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: variant[0] (\"w800\").fit: unknown value \"strech\", expected one of inside, cover, contain, fill",
            path.display()
        )
    );
    let missing = dir.join("missing.toml");
    let e = load(&missing).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{e}"
    );
    std::fs::write(&path, one_variant("")).unwrap();
    assert_eq!(load(&path).unwrap().variants()[0].name, "w800");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn video_sections_default_to_the_builtin_video_plan() {
    let c = parse_config(&one_variant("")).unwrap();
    assert_eq!(c.video, VideoPlan::builtin());
    assert_eq!(builtin_config().video, VideoPlan::builtin());
}

#[test]
fn video_sections_parse() {
    let text = format!(
        "{}\n{}",
        one_variant(""),
        r#"
[video_limits]
max_input_bytes = 1000000
max_duration_seconds = 90.5
max_pixels = 2073600

[video_options]
poster_at = "25%"
animated_gif = true

[[video]]
name = "720p"
max_height = 720
crf = 21
preset = "medium"
max_bitrate_kbps = 4000
audio_bitrate_kbps = 96

[[video]]
name = "silent-360"
max_width = 640
max_height = 360
audio = false
"#
    );
    let v = parse_config(&text).unwrap().video;
    assert_eq!(v.limits().max_input_bytes, 1_000_000);
    assert_eq!(v.limits().max_duration_seconds, 90.5);
    assert_eq!(v.limits().max_pixels, 2_073_600);
    assert_eq!(v.poster_at(), PosterAt::Fraction(0.25));
    assert!(v.animated_gif());
    let [a, b] = v.renditions() else {
        panic!("two renditions")
    };
    assert_eq!(
        (a.name.as_str(), a.max_height, a.crf),
        ("720p", Some(720), 21)
    );
    assert_eq!(
        (a.preset, a.max_bitrate_kbps, a.audio_bitrate_kbps),
        (Preset::Medium, Some(4000), 96)
    );
    assert!(a.audio);
    assert_eq!(
        (b.max_width, b.max_height, b.audio),
        (Some(640), Some(360), false)
    );
    assert_eq!(b.crf, 23);
    for (at, want) in [
        ("\"2.5s\"", PosterAt::Seconds(2.5)),
        ("3", PosterAt::Seconds(3.0)),
        ("0.5", PosterAt::Seconds(0.5)),
        ("\"0%\"", PosterAt::Fraction(0.0)),
    ] {
        let t = format!("{}\n[video_options]\nposter_at = {at}\n", one_variant(""));
        assert_eq!(parse_config(&t).unwrap().video.poster_at(), want, "{at}");
    }
}

#[test]
fn video_errors_name_the_key() {
    let bad = |extra: &str| {
        parse_config(&format!("{}\n{extra}\n", one_variant("")))
            .expect_err("should be rejected")
            .to_string()
    };
    assert_eq!(
        bad("[[video]]\nname = \"hd\"\ncrf = 60"),
        "video[0] (\"hd\").crf: 60 is out of range, expected an integer in 0..=51"
    );
    assert!(bad("[[video]]\nname = \"hd\"\npreset = \"quick\"")
        .starts_with("video[0] (\"hd\").preset: unknown value \"quick\", expected one of ultrafast, superfast, veryfast"));
    assert_eq!(
        bad("[[video]]\nname = \"w800\""),
        "video[0] (\"w800\").name: \"w800\" is already the name of a [[variant]]; give the rendition its own folder name"
    );
    assert_eq!(
        bad("[[video]]\nname = \"a\"\n[[video]]\nname = \"a\""),
        "video rendition name \"a\" is used twice"
    );
    assert!(bad("[[video]]\nname = \"a\"\nmax_heigth = 3")
        .starts_with("unknown field \"max_heigth\" in video[0] (\"a\")"));
    assert!(bad("[video_options]\nposter_at = \"soon\"")
        .starts_with("video_options.poster_at: expected a percentage of the duration"));
    assert!(bad("[video_options]\nposter_at = \"120%\"").starts_with("video_options.poster_at"));
    assert_eq!(
        bad("[video_limits]\nmax_duration_seconds = 0"),
        "video_limits.max_duration_seconds: 0 is out of range, expected a positive number of seconds"
    );
    assert!(bad("[video_limits]\nmax_frames = 3")
        .starts_with("unknown field \"max_frames\" in video_limits"));
}

#[test]
fn smart_gravity_and_animation() {
    let plan = parse(
        "[limits]\nmax_frames = 200\n[[variant]]\nname = \"t\"\nwidth = 64\nheight = 64\nfit = \"cover\"\ngravity = \"attention\"\n\
         [[variant]]\nname = \"e\"\nwidth = 64\nheight = 64\nfit = \"cover\"\ngravity = \"entropy\"\nformats = [\"webp\"]\nanimated = true\n",
    )
    .unwrap();
    assert_eq!(plan.variants()[0].gravity, Gravity::Attention);
    assert_eq!(plan.variants()[1].gravity, Gravity::Entropy);
    assert!(plan.variants()[1].animated);
    // An animation is written as WebP, and needs more than one frame.
    let e =
        parse("[limits]\nmax_frames = 9\n[[variant]]\nname = \"a\"\nwidth = 9\nanimated = true\n")
            .unwrap_err()
            .to_string();
    assert!(e.contains("needs \"webp\" in formats"), "{e}");
    let e = parse("[[variant]]\nname = \"a\"\nwidth = 9\nformats = [\"webp\"]\nanimated = true\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("limits.max_frames of 2 or more"), "{e}");
}
