//! A saved project's description, `project.json` in the ZIP that "Save project" writes, checked
//! whole before anything of it is kept: every field typed, every number in range, every file it
//! names present, its model read and its figures agreeing with it. The page (`www/`) unpacks the
//! ZIP and checks the files' sha256; this is the one schema of what the description may say, for
//! the page, the stored project it reopens at start, and the CLI (`fewshot check-project`).
//!
//! What comes out is the description as the page uses it ([`Checked`]): fields it does not know
//! are dropped, the model's labels and cross-validated figures are the model file's own (a file
//! cannot claim figures its model does not have), and photo ids that are missing, malformed or
//! used twice are `None` (the page gives those photos new ones).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::backbone::EMBEDDING_DIM;
use crate::error::{Error, Result};
use crate::evaluate::Validated;
use crate::model::Model;
use crate::preprocess::views_from_key;
use crate::project::{ClassSpec, Project, MAX_ID_BYTES};
use crate::settings::Settings;
use crate::train::StepReport;

/// `format` of every project file.
pub const FORMAT: &str = "fewshot-project";
/// The newest `version` this build reads and writes.
pub const VERSION: u32 = 2;
/// The most entries the figures of a stored model may have together (more is not a real project).
const MAX_FIGURE_ENTRIES: usize = 200_000;

/// `project.json` as written by the page (`www/page/projectfile.js`, `writeProject`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectFile {
    // `format` and `version` are read first, on their own (`check`).
    #[serde(default)]
    backbone: Option<Backbone>,
    #[serde(default)]
    settings: Settings,
    classes: Vec<SavedClass>,
    #[serde(default)]
    model: Option<SavedModel>,
    #[serde(default)]
    checksums: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Backbone {
    pub sha256: String,
}

#[derive(Debug, Deserialize)]
struct SavedClass {
    name: String,
    photos: Vec<SavedPhoto>,
}

#[derive(Debug, Deserialize)]
struct SavedPhoto {
    #[serde(default)]
    id: Option<serde_json::Value>,
    file: String,
    #[serde(default)]
    added: Option<f64>,
    #[serde(default)]
    embeddings: Option<SavedEmbeddings>,
}

/// Where a photo's embeddings are in `embeddings.bin`: `length` floats from float `at`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedEmbeddings {
    pub at: u64,
    pub length: u64,
    pub views_key: String,
}

/// The model's figures as the page keeps them beside the model file (the file holds its labels
/// and cross-validated figures itself; what it does not hold is checked here).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SavedModel {
    file: Option<String>,
    labels: Option<Vec<String>>,
    checked_photos: Vec<CheckedPhoto>,
    suspicious: Vec<String>,
    duplicates: Vec<(String, String)>,
    history: Vec<StepReport>,
    seconds: Option<f64>,
}

/// One photo as predicted by a head trained without it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckedPhoto {
    pub photo_id: String,
    pub actual: usize,
    pub predicted: usize,
    pub confidence: f32,
}

/// A project file's description, checked, as the page uses it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    pub backbone: Option<Backbone>,
    /// Every setting, defaults filled in.
    pub settings: Settings,
    pub classes: Vec<CheckedClass>,
    pub model: Option<ModelFigures>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckedClass {
    pub name: String,
    pub photos: Vec<CheckedPhotoEntry>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckedPhotoEntry {
    /// `None`: missing, malformed or used before in the file (the page gives a new one).
    pub id: Option<String>,
    /// The photo's file in the ZIP.
    pub file: String,
    pub added: f64,
    pub embeddings: Option<SavedEmbeddings>,
}

/// What the page shows of a model, checked against the model file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelFigures {
    /// The model file in the ZIP (absent for a stored project).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The model file's own.
    pub labels: Vec<String>,
    /// The model file's own, with the sentence the page shows.
    pub validation: Option<ValidationFigures>,
    pub checked_photos: Vec<CheckedPhoto>,
    pub suspicious: Vec<String>,
    pub duplicates: Vec<(String, String)>,
    pub history: Vec<StepReport>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationFigures {
    #[serde(flatten)]
    pub figures: Validated,
    pub summary: String,
}

/// A project file that is not what it claims, naming the field: "its project.json is damaged
/// (settings.framing: …)".
fn damaged(why: impl Into<String>) -> Error {
    Error::ProjectFile(format!("its project.json is damaged ({})", why.into()))
}

/// Read `json` as `T`, or say which field is wrong and how, in words.
fn typed<T: for<'de> Deserialize<'de>>(json: &str) -> Result<T, String> {
    let mut reader = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut reader).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        // serde's words name Rust types ("u64", "struct SavedPhoto"); its first clause is enough.
        let what = inner.to_string();
        let what = what.split(" at line ").next().unwrap_or(&what).replace("struct ", "").replace("usize", "a whole number").replace("u64", "a whole number").replace("u32", "a whole number");
        if at == "." {
            what
        } else {
            format!("{at}: {what}")
        }
    })
}

/// Check a project file: its `project.json` text, the sizes in bytes of the other files in the
/// ZIP by name, and the bytes of the model file it names (when it names one). Every rule a
/// project has ([`Project::set_classes`], [`Settings::check`], the model file's own checks) is
/// applied; nothing is kept by the caller unless this says yes.
pub fn check(json: &str, files: &BTreeMap<String, u64>, model_bytes: Option<&[u8]>) -> Result<Checked> {
    let head: serde_json::Value = serde_json::from_str(json).map_err(|_| damaged("it is not readable JSON"))?;
    if head.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(Error::ProjectFile("it is not a Fewshot project (its project.json is another program's)".into()));
    }
    match head.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v > VERSION as u64 => {
            return Err(Error::ProjectFile(format!("it was saved by a newer Fewshot (project format {v}); update Fewshot to open it")))
        }
        Some(v) if v >= 1 => {}
        _ => return Err(damaged("its version is not a project format this Fewshot knows")),
    }
    let file: ProjectFile = typed(json).map_err(damaged)?;
    file.settings.check().map_err(|e| damaged(format!("settings: {e}")))?;
    if file.classes.is_empty() {
        return Err(damaged("it has no classes"));
    }
    for (name, sum) in &file.checksums {
        if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(damaged(format!("checksums: the checksum of {name} is not a sha256")));
        }
    }
    if let Some(backbone) = &file.backbone {
        if backbone.sha256.len() != 64 || !backbone.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(damaged("backbone.sha256: not a sha256"));
        }
    }
    let floats = files.get("embeddings.bin").map(|bytes| bytes / 4).unwrap_or(0);
    let mut ids = HashSet::new();
    let mut classes = Vec::with_capacity(file.classes.len());
    for (c, class) in file.classes.into_iter().enumerate() {
        let mut photos = Vec::with_capacity(class.photos.len());
        for (p, photo) in class.photos.into_iter().enumerate() {
            let at = format!("classes[{c}].photos[{p}]");
            if !files.contains_key(&photo.file) || photo.file == "project.json" {
                return Err(damaged(format!("{at}.file: {} is not in the file", photo.file)));
            }
            let added = match photo.added {
                None => p as f64,
                Some(t) if t.is_finite() => t,
                Some(_) => return Err(damaged(format!("{at}.added: not a time"))),
            };
            if let Some(e) = &photo.embeddings {
                let views = views_from_key(&e.views_key).map_err(|_| damaged(format!("{at}.embeddings.viewsKey: not a list of views")))?;
                if e.length != (views.len() * EMBEDDING_DIM) as u64 {
                    return Err(damaged(format!("{at}.embeddings.length: {} values, where its views need {}", e.length, views.len() * EMBEDDING_DIM)));
                }
                if e.at.checked_add(e.length).is_none_or(|end| end > floats) {
                    return Err(damaged(format!("{at}.embeddings: past the end of embeddings.bin")));
                }
            }
            let id = match photo.id {
                Some(serde_json::Value::String(id)) if !id.is_empty() && id.len() <= MAX_ID_BYTES && ids.insert(id.clone()) => Some(id),
                None | Some(serde_json::Value::Null) | Some(serde_json::Value::String(_)) => None,
                Some(_) => return Err(damaged(format!("{at}.id: not a text"))),
            };
            photos.push(CheckedPhotoEntry { id, file: photo.file, added, embeddings: photo.embeddings });
        }
        classes.push(CheckedClass { name: class.name, photos });
    }
    // The classes by the project's own rules (names, counts), with stand-in ids.
    let specs = classes
        .iter()
        .enumerate()
        .map(|(c, class)| ClassSpec {
            id: format!("c{c}"),
            name: class.name.clone(),
            photos: (0..class.photos.len()).map(|p| format!("{c}/{p}")).collect(),
        })
        .collect();
    Project::new().set_classes(specs).map_err(|e| damaged(format!("classes: {e}")))?;
    let model = match file.model {
        None => None,
        Some(saved) => {
            let name = saved.file.clone().ok_or_else(|| damaged("model.file: missing"))?;
            if !files.contains_key(&name) {
                return Err(damaged(format!("model.file: {name} is not in the file")));
            }
            let bytes = model_bytes.ok_or_else(|| damaged(format!("model.file: {name} could not be read")))?;
            Some(check_model(saved, bytes, &ids)?)
        }
    };
    Ok(Checked { backbone: file.backbone, settings: file.settings, classes, model })
}

/// Check a model's figures as the page keeps them (`figures`: the JSON of [`SavedModel`],
/// `photos`: the ids of the project's photos) against the model file itself.
pub fn check_stored_model(figures: &str, bytes: &[u8], photos: &HashSet<String>) -> Result<ModelFigures> {
    let saved: SavedModel = typed(figures).map_err(|why| damaged(format!("model.{why}")))?;
    check_model(saved, bytes, photos)
}

fn check_model(saved: SavedModel, bytes: &[u8], photos: &HashSet<String>) -> Result<ModelFigures> {
    let model = Model::from_bytes(bytes).map_err(|e| damaged(format!("model: {e}")))?;
    let labels = model.info.labels.clone();
    if let Some(claimed) = &saved.labels {
        if *claimed != labels {
            return Err(damaged("model.labels: not the labels of its model file"));
        }
    }
    let entries = saved.checked_photos.len() + saved.suspicious.len() + saved.duplicates.len() + saved.history.len();
    if entries > MAX_FIGURE_ENTRIES {
        return Err(damaged("model: more figures than a project can have"));
    }
    // Figures about photos the project no longer has are dropped, not refused: a photo removed
    // after training leaves them behind.
    let known = |id: &String| photos.contains(id);
    for (i, checked) in saved.checked_photos.iter().enumerate() {
        if checked.actual >= labels.len() || checked.predicted >= labels.len() {
            return Err(damaged(format!("model.checkedPhotos[{i}]: a class its model does not have")));
        }
        if !(0.0..=1.0).contains(&checked.confidence) {
            return Err(damaged(format!("model.checkedPhotos[{i}].confidence: not between 0 and 1")));
        }
    }
    for (i, step) in saved.history.iter().enumerate() {
        if !step.loss.is_finite() || !(0.0..=1.0).contains(&step.train_accuracy) || step.step == 0 || step.step > step.max_steps {
            return Err(damaged(format!("model.history[{i}]: not a training step")));
        }
    }
    let seconds = match saved.seconds {
        None => 0.0,
        Some(s) if s.is_finite() && s >= 0.0 => s,
        Some(_) => return Err(damaged("model.seconds: not a duration")),
    };
    let validation = model.info.validation.clone().map(|figures| ValidationFigures { summary: figures.summary(), figures });
    Ok(ModelFigures {
        file: saved.file,
        labels,
        validation,
        checked_photos: saved.checked_photos.into_iter().filter(|c| known(&c.photo_id)).collect(),
        suspicious: saved.suspicious.into_iter().filter(known).collect(),
        duplicates: saved.duplicates.into_iter().filter(|(a, b)| known(a) && known(b)).collect(),
        history: saved.history,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn files() -> BTreeMap<String, u64> {
        [("photos/a/0001.jpg", 100), ("photos/b/0001.jpg", 100), ("embeddings.bin", (4 * EMBEDDING_DIM * 4) as u64)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    fn project() -> serde_json::Value {
        let key = crate::preprocess::views_key(&crate::preprocess::views(Settings::default().seeing()));
        json!({
            "format": FORMAT, "version": 2, "saved": "2026-12-07T00:00:00Z",
            "backbone": { "sha256": "a".repeat(64) },
            "settings": { "mirror": true },
            "classes": [
                { "name": "ants", "photos": [{ "id": "p1", "file": "photos/a/0001.jpg", "added": 5, "embeddings": { "at": 0, "length": 4 * EMBEDDING_DIM, "viewsKey": key } }] },
                { "name": "bees", "photos": [{ "id": "p2", "file": "photos/b/0001.jpg", "added": 6, "embeddings": null }] },
            ],
            "model": null,
            "checksums": { "photos/a/0001.jpg": "0".repeat(64) },
            "somethingNew": 1,
        })
    }

    fn checked(value: &serde_json::Value) -> Result<Checked> {
        check(&value.to_string(), &files(), None)
    }

    #[test]
    fn a_saved_project_is_read_whole() {
        let c = checked(&project()).unwrap();
        assert_eq!(c.classes.len(), 2);
        assert_eq!(c.classes[0].photos[0].id.as_deref(), Some("p1"));
        assert_eq!(c.classes[0].photos[0].added, 5.0);
        assert!(c.settings.mirror && c.settings.zoom, "defaults filled in");
    }

    #[test]
    fn every_damaged_field_is_refused_by_name() {
        type Damage = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Damage)> = vec![
            ("settings.framing", Box::new(|p| p["settings"]["framing"] = json!("sideways"))),
            ("settings.hiddenUnits", Box::new(|p| p["settings"]["hiddenUnits"] = json!(1e12))),
            ("settings", Box::new(|p| p["settings"]["colour"] = json!(true))),
            ("settings", Box::new(|p| p["settings"] = json!([1, 2]))),
            ("classes", Box::new(|p| p["classes"] = json!([]))),
            ("classes", Box::new(|p| p["classes"] = json!(null))),
            ("classes[0].name", Box::new(|p| p["classes"][0]["name"] = json!(null))),
            ("classes", Box::new(|p| p["classes"][1]["name"] = json!("ANTS"))),
            ("classes[0].photos", Box::new(|p| p["classes"][0]["photos"] = json!("many"))),
            ("classes[0].photos[0].file", Box::new(|p| p["classes"][0]["photos"][0]["file"] = json!("photos/elsewhere.jpg"))),
            ("classes[0].photos[0].added", Box::new(|p| p["classes"][0]["photos"][0]["added"] = json!("yesterday"))),
            ("classes[0].photos[0].embeddings", Box::new(|p| p["classes"][0]["photos"][0]["embeddings"]["at"] = json!(1u64 << 40))),
            ("classes[0].photos[0].embeddings.at", Box::new(|p| p["classes"][0]["photos"][0]["embeddings"]["at"] = json!(-1))),
            ("classes[0].photos[0].embeddings.length", Box::new(|p| p["classes"][0]["photos"][0]["embeddings"]["length"] = json!(3))),
            ("classes[0].photos[0].embeddings.viewsKey", Box::new(|p| p["classes"][0]["photos"][0]["embeddings"]["viewsKey"] = json!("[]"))),
            ("classes[0].photos[0].id", Box::new(|p| p["classes"][0]["photos"][0]["id"] = json!(7))),
            ("checksums", Box::new(|p| p["checksums"]["photos/a/0001.jpg"] = json!("abc"))),
            ("backbone", Box::new(|p| p["backbone"] = json!({ "sha256": null }))),
            ("model.file", Box::new(|p| p["model"] = json!({ "labels": null }))),
            ("model.file", Box::new(|p| p["model"] = json!({ "file": "model.fewshot" }))),
            ("version", Box::new(|p| p["version"] = json!("two"))),
        ];
        for (field, mutate) in cases {
            let mut p = project();
            mutate(&mut p);
            let e = checked(&p).expect_err(field);
            assert!(e.to_string().contains(field), "{field}: {e}");
            assert_eq!(e.kind(), crate::error::ErrorKind::BadInput, "{field}");
        }
    }

    #[test]
    fn ids_that_cannot_be_used_are_given_up_not_refused() {
        let mut p = project();
        p["classes"][1]["photos"][0]["id"] = json!("p1"); // used twice
        p["classes"][0]["photos"][0]["id"] = json!("x".repeat(65));
        let c = checked(&p).unwrap();
        assert_eq!((c.classes[0].photos[0].id.as_deref(), c.classes[1].photos[0].id.as_deref()), (None, Some("p1")));
    }

    #[test]
    fn newer_and_foreign_files_say_so() {
        let mut p = project();
        p["version"] = json!(3);
        assert!(checked(&p).unwrap_err().to_string().contains("newer Fewshot"));
        p["format"] = json!("something-else");
        assert!(checked(&p).unwrap_err().to_string().contains("not a Fewshot project"));
        assert!(check("{", &files(), None).is_err());
    }
}
