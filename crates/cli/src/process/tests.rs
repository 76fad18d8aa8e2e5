use super::*;

fn touch(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, b"x").unwrap();
}

fn keys(found: &[Collected]) -> Vec<String> {
    found
        .iter()
        .map(|c| match c {
            Collected::Source(s) => s.key.clone(),
            Collected::Failed { path, error } => {
                format!("FAILED {} {}", path.display(), error.kind())
            }
        })
        .collect()
}

#[test]
fn recursion_filters_sorts_and_skips() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("in");
    for name in [
        "b.JPG",
        "a.png",
        "sub/c.webp",
        "sub/deeper/d.tiff",
        "notes.txt",
        "noext",
        ".hidden.jpg",
        ".git/e.jpg",
        "sub/.cache/f.png",
        "x.jfif",
        "y.jpe",
        "z.GIF",
        "w.avif",
        "v.tif",
        "u.jpeg",
        "out/w640/a.jpg",
    ] {
        touch(&root.join(name));
    }
    let out = root.join("out");
    let found = collect(
        std::slice::from_ref(&root),
        &out,
        &mediaflow_engine::Plan::builtin(),
    )
    .unwrap();
    assert_eq!(
        keys(&found),
        [
            "a.png",
            "b.JPG",
            "sub/c.webp",
            "sub/deeper/d.tiff",
            "u.jpeg",
            "v.tif",
            "w.avif",
            "x.jfif",
            "y.jpe",
            "z.GIF"
        ]
    );
    let Collected::Source(s) = &found[2] else {
        panic!()
    };
    assert_eq!(s.path, root.join("sub").join("c.webp"));
}

#[test]
fn explicit_files_are_taken_whatever_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join(".notes.txt");
    touch(&notes);
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let missing = tmp.path().join("missing.jpg");
    let found = collect(
        &[notes.clone(), missing.clone()],
        &out,
        &mediaflow_engine::Plan::builtin(),
    )
    .unwrap();
    assert_eq!(
        found[0],
        Collected::Source(Source {
            path: notes,
            key: ".notes.txt".into()
        })
    );
    let Collected::Failed { path, error } = &found[1] else {
        panic!("{found:?}")
    };
    assert_eq!(path, &missing);
    assert_eq!(error.kind(), "io");
}

#[test]
fn collisions_fail_both_sources_and_duplicates_are_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("d1"), tmp.path().join("d2"));
    touch(&d1.join("a.jpg"));
    touch(&d2.join("a.jpg"));
    touch(&d2.join("b.jpg"));
    touch(&d2.join("B.png"));
    touch(&d2.join("c.jpg"));
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    // d2/c.jpg given twice (inside d2 and on its own, same key): processed once.
    let found = collect(
        &[d1.clone(), d2.clone(), d2.join("c.jpg")],
        &out,
        &mediaflow_engine::Plan::builtin(),
    )
    .unwrap();
    let k = keys(&found);
    // Under the default template only the two a.jpg (one key) meet.
    assert_eq!(k.len(), 5, "{k:?}");
    let failed: Vec<&String> = k.iter().filter(|k| k.starts_with("FAILED")).collect();
    assert_eq!(failed.len(), 2, "{k:?}");
    assert!(
        failed.iter().all(|k| k.ends_with("a.jpg collision")),
        "{k:?}"
    );
    let ok: Vec<&String> = k.iter().filter(|k| !k.starts_with("FAILED")).collect();
    assert_eq!(ok, ["B.png", "b.jpg", "c.jpg"], "{k:?}");
    // A template without the extension lets b.jpg and B.png meet too.
    let stems = mediaflow_engine::Plan::builtin()
        .with_output_keys(
            mediaflow_engine::KeyTemplate::parse("{variant}/{dir}{stem}.{ext}").unwrap(),
            "public, max-age=60",
        )
        .unwrap();
    let by_stem = keys(&collect(&[d1.clone(), d2.clone()], &out, &stems).unwrap());
    assert_eq!(
        by_stem.iter().filter(|k| k.starts_with("FAILED")).count(),
        4,
        "{by_stem:?}"
    );
    assert_eq!(
        by_stem.last().map(String::as_str),
        Some("c.jpg"),
        "{by_stem:?}"
    );
    let Collected::Failed { error, .. } = &found[0] else {
        panic!()
    };
    assert!(
        error
            .message()
            .contains(&d2.join("a.jpg").display().to_string()),
        "{error}"
    );
}

#[test]
fn output_dir_cannot_be_an_input_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let e = collect(
        &[tmp.path().to_path_buf()],
        tmp.path(),
        &mediaflow_engine::Plan::builtin(),
    )
    .unwrap_err();
    assert!(e.downcast_ref::<UsageError>().is_some(), "{e}");
}

#[test]
fn atomic_write_replaces_and_leaves_no_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("a/b/c.jpg");
    write_atomic(&p, b"one").unwrap();
    write_atomic(&p, b"two").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"two");
    let names: Vec<_> = fs::read_dir(p.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["c.jpg"]);
    // Writing over a directory fails and cleans up its temporary file.
    fs::create_dir_all(tmp.path().join("a/b/d.jpg/x")).unwrap();
    assert!(write_atomic(&tmp.path().join("a/b/d.jpg"), b"x").is_err());
    assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 2);
}
