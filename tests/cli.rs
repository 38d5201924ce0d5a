//! The `fewshot` binary end to end: classify the fixture photos, eval and train/predict on a
//! few clothing photos, and readable failures.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::util::{clothing, fixtures, temp_dir, weights_path};

fn fewshot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fewshot"))
        .args(args)
        .args(["--device", "cpu", "--weights", weights_path().to_str().unwrap()])
        .output()
        .expect("fewshot runs")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "fewshot failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn classify_names_the_fixture_photos() {
    let images: Vec<String> = ["parrot.jpg", "cat.bmp", "sunflower.bmp"]
        .iter()
        .map(|n| fixtures().join("images").join(n).display().to_string())
        .collect();
    let refs: Vec<&str> = std::iter::once("classify").chain(images.iter().map(String::as_str)).collect();
    let out = stdout(&fewshot(&refs));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].contains("\tmacaw "), "{out}");
    assert!(lines[1].contains("\tEgyptian cat "), "{out}");
    assert!(lines[2].contains("\tdaisy "), "{out}");
}

/// A small copy of clothing-small: `per_class` photos of three classes.
fn small_set(name: &str, split: &str, per_class: usize) -> PathBuf {
    let dir = temp_dir(name);
    for class in ["hat", "pants", "shoes"] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(clothing().join(split).join(class)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.iter().take(per_class) {
            std::fs::copy(f, dir.join(class).join(f.file_name().unwrap())).unwrap();
        }
    }
    dir
}

#[test]
fn eval_prints_json_with_accuracy() {
    let train = small_set("cli-eval-train", "train", 6);
    let test = small_set("cli-eval-test", "test", 4);
    let out = stdout(&fewshot(&["eval", "--train", train.to_str().unwrap(), "--test", test.to_str().unwrap(), "--json"]));
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let accuracy = json["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    assert!(accuracy >= 0.75, "hats, pants and shoes are easy: {accuracy}");
    assert_eq!(json["confusion"].as_array().unwrap().len(), 3);
}

#[test]
fn train_then_predict() {
    let train = small_set("cli-train", "train", 6);
    let model = temp_dir("cli-model").join("clothes.fewshot");
    let out = fewshot(&["train", train.to_str().unwrap(), "-o", model.to_str().unwrap()]);
    stdout(&out);
    let mut hats: Vec<_> = std::fs::read_dir(clothing().join("test/hat")).unwrap().map(|e| e.unwrap().path()).collect();
    hats.sort();
    let out = stdout(&fewshot(&["predict", "--model", model.to_str().unwrap(), hats[0].to_str().unwrap()]));
    assert!(out.contains("\that "), "{out}");
}

#[test]
fn failures_are_readable() {
    let out = fewshot(&["classify", "/nonexistent.jpg"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent.jpg"));
    assert_eq!(out.status.code(), Some(2), "every photo failed");
    let good = crate::util::fixtures().join("images/parrot.jpg");
    let out = fewshot(&["classify", good.to_str().unwrap(), "/nonexistent.jpg"]);
    assert_eq!(out.status.code(), Some(1), "one of two failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 of 2 photos failed"), "{stderr}");
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "driver noise: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("macaw"));
    let out = fewshot(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown command \"frobnicate\""));
    let out = fewshot(&["predict", "--model", weights_path().to_str().unwrap(), "x.jpg"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Fewshot model"));
}

/// A project ZIP as the page writes one (two photos, no model), with `project.json` changed by
/// `edit`.
fn project_zip(name: &str, edit: impl Fn(&mut serde_json::Value)) -> PathBuf {
    use sha2::{Digest, Sha256};
    use std::io::Write;
    let photos: Vec<(String, Vec<u8>)> = ["hat", "shoes"]
        .iter()
        .map(|class| {
            let mut files: Vec<_> = std::fs::read_dir(clothing().join("train").join(class)).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            (format!("photos/{class}/0001.jpg"), std::fs::read(&files[0]).unwrap())
        })
        .collect();
    let sum = |bytes: &[u8]| Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut manifest = serde_json::json!({
        "format": "fewshot-project", "version": 2, "settings": {},
        "classes": [
            { "name": "hat", "photos": [{ "id": "a", "file": photos[0].0, "added": 1 }] },
            { "name": "shoes", "photos": [{ "id": "b", "file": photos[1].0, "added": 2 }] },
        ],
        "model": null,
        "checksums": { &photos[0].0: sum(&photos[0].1), &photos[1].0: sum(&photos[1].1) },
    });
    edit(&mut manifest);
    let path = temp_dir(name).join("project.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (file, bytes) in &photos {
        zip.start_file(file.as_str(), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.start_file("project.json", options).unwrap();
    zip.write_all(manifest.to_string().as_bytes()).unwrap();
    zip.finish().unwrap();
    path
}

#[test]
fn check_project_reads_a_project_as_the_page_does() {
    let good = project_zip("cli-project-good", |_| {});
    let out = stdout(&fewshot(&["check-project", good.to_str().unwrap()]));
    assert!(out.contains("a Fewshot project: 2 classes, 2 photos, no model"), "{out}");
    type Damage = fn(&mut serde_json::Value);
    let cases: [(&str, Damage, &str); 3] = [
        ("cli-project-sideways", |m| m["settings"]["framing"] = "sideways".into(), "settings.framing: unknown variant `sideways`"),
        ("cli-project-no-classes", |m| m["classes"] = serde_json::json!([]), "it has no classes"),
        ("cli-project-checksum", |m| m["checksums"]["photos/hat/0001.jpg"] = "0".repeat(64).into(), "photos/hat/0001.jpg does not match its checksum"),
    ];
    for (name, edit, said) in cases {
        let path = project_zip(name, edit);
        let out = fewshot(&["check-project", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(said), "{name}: {stderr}");
    }
}
