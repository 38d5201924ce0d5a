//! One project's learning state, owned in one place: its classes (ids, names, order), each
//! photo's embeddings (every view) keyed by photo id, the settings with their defaults and
//! limits, the rules a project must meet to be trained, learning with its progress and stop,
//! and the trained classifier. The page's worker holds one; the page renders what it reports
//! and never repeats a rule. No wasm types: everything here is tested natively.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::backbone::EMBEDDING_DIM;
use crate::classifier::Classifier;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::evaluate::Validated;
use crate::familiar::Unfamiliarity;
use crate::learn::{Learning, Progress};
use crate::model::Model;
use crate::predict::Prediction;
use crate::preprocess::{views, View};
use crate::settings::Settings;

/// The most classes a project may have.
pub const MAX_CLASSES: usize = 200;
/// The longest class name, in characters.
pub const MAX_NAME_CHARS: usize = 80;
/// The most photos a project may have.
pub const MAX_PHOTOS: usize = 50_000;
/// The longest photo or class id, in bytes (the page makes UUIDs).
pub const MAX_ID_BYTES: usize = 64;

/// A class as the page has it: an id that never changes, a name, its photos in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClassSpec {
    pub id: String,
    pub name: String,
    pub photos: Vec<String>,
}

/// What learning found, with photos named by their ids.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The model file, to keep.
    #[serde(skip)]
    pub model_bytes: Vec<u8>,
    pub labels: Vec<String>,
    pub history: Vec<crate::train::StepReport>,
    /// Cross-validated figures; `None` when stopped or a class had a single photo.
    pub validation: Option<Validated>,
    /// The figures in one sentence ("about 91 % (likely 86 to 95 %), …").
    pub summary: Option<String>,
    /// Each photo as predicted by a head trained without it.
    pub checked: Vec<Checked>,
    /// Photos the others say look like another class: mislabelled, or ambiguous.
    pub suspicious: Vec<String>,
    /// Pairs of photos that are nearly the same photo.
    pub duplicates: Vec<(String, String)>,
    pub stopped: bool,
}

/// One photo's cross-validated prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    pub photo: String,
    /// Class indices, in the order of the classes trained on.
    pub actual: usize,
    pub predicted: usize,
    pub confidence: f32,
}

/// What the classifier says about one photo.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Every class, most likely first.
    pub predictions: Vec<Prediction>,
    /// "None of these": `None` when the model was trained on too few photos to tell.
    pub unfamiliar: Option<Unfamiliarity>,
}

/// The learning state of one project.
#[derive(Default)]
pub struct Project {
    classes: Vec<ClassSpec>,
    /// Every photo id in `classes`, for checks that must not walk every class.
    photo_ids: HashSet<String>,
    embeddings: HashMap<String, Vec<f32>>,
    settings: Settings,
    learning: Option<(Learning, Vec<String>)>,
    classifier: Option<Classifier>,
}

impl Project {
    pub fn new() -> Self {
        Project::default()
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Change the settings. Returns `true` when photos are now seen differently: every
    /// embedding is dropped and each photo must be embedded again ([`Project::waiting`]).
    pub fn set_settings(&mut self, settings: Settings) -> Result<bool> {
        settings.check()?;
        let reseen = settings.seeing() != self.settings.seeing();
        self.settings = settings;
        if reseen {
            self.embeddings.clear();
        }
        Ok(reseen)
    }

    /// The views each photo is embedded in: embed each, in this order, and hand them to
    /// [`Project::set_embeddings`] one after the other.
    pub fn views(&self) -> Vec<View> {
        views(self.settings.seeing())
    }

    pub fn classes(&self) -> &[ClassSpec] {
        &self.classes
    }

    /// Replace the classes (after any add, remove, move or rename), checking the rules: at
    /// most [`MAX_CLASSES`], names non-empty, at most [`MAX_NAME_CHARS`], unique (ignoring
    /// case and surrounding spaces); ids unique; each photo in one class. Embeddings of photos
    /// no longer in any class are forgotten. Nothing changes when a rule is broken.
    pub fn set_classes(&mut self, classes: Vec<ClassSpec>) -> Result<()> {
        if classes.len() > MAX_CLASSES {
            return Err(Error::BadClasses(format!("a project can have at most {MAX_CLASSES} classes, not {}", classes.len())));
        }
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        let mut photos = HashSet::new();
        for class in &classes {
            let name = class.name.trim();
            if name.is_empty() {
                return Err(Error::BadClasses("every class needs a name".into()));
            }
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(Error::BadClasses(format!("a class name can have at most {MAX_NAME_CHARS} characters")));
            }
            if !names.insert(name.to_lowercase()) {
                return Err(Error::BadClasses(format!("two classes are called \"{name}\": give each its own name")));
            }
            if class.id.is_empty() || class.id.len() > MAX_ID_BYTES || !ids.insert(class.id.as_str()) {
                return Err(Error::BadClasses(format!("each class needs its own id (1 to {MAX_ID_BYTES} bytes)")));
            }
            for photo in &class.photos {
                if photo.is_empty() || photo.len() > MAX_ID_BYTES || !photos.insert(photo.as_str()) {
                    return Err(Error::BadClasses(format!("each photo needs its own id (1 to {MAX_ID_BYTES} bytes), and can be in one class only")));
                }
            }
        }
        if photos.len() > MAX_PHOTOS {
            return Err(Error::BadClasses(format!("a project can have at most {MAX_PHOTOS} photos, not {}", photos.len())));
        }
        self.embeddings.retain(|id, _| photos.contains(id.as_str()));
        self.photo_ids = photos.into_iter().map(str::to_string).collect();
        self.classes = classes.into_iter().map(|c| ClassSpec { name: c.name.trim().to_string(), ..c }).collect();
        Ok(())
    }

    /// Whether a photo is in one of the classes.
    pub fn has_photo(&self, photo: &str) -> bool {
        self.photo_ids.contains(photo)
    }

    /// Store a photo's embeddings: one per view of [`Project::views`], one after the other.
    pub fn set_embeddings(&mut self, photo: &str, embeddings: Vec<f32>) -> Result<()> {
        if !self.photo_ids.contains(photo) {
            return Err(Error::BadConfig("that photo is not in any class (it may have been removed)".into()));
        }
        let want = self.views().len() * EMBEDDING_DIM;
        if embeddings.len() != want {
            return Err(Error::BadConfig(format!("a photo's embeddings have {} values, not {want}", embeddings.len())));
        }
        if embeddings.iter().any(|v| !v.is_finite()) {
            return Err(Error::BadConfig("an embedding holds a value that is not a finite number".into()));
        }
        self.embeddings.insert(photo.to_string(), embeddings);
        Ok(())
    }

    /// Photos whose embeddings are not there yet, in class order.
    pub fn waiting(&self) -> Vec<String> {
        self.photos().filter(|(p, _)| !self.embeddings.contains_key(*p)).map(|(p, _)| p.to_string()).collect()
    }

    fn photos(&self) -> impl Iterator<Item = (&str, usize)> {
        self.classes.iter().enumerate().flat_map(|(c, class)| class.photos.iter().map(move |p| (p.as_str(), c)))
    }

    /// The photos as a dataset (first view as the photo, the others as its variants) with
    /// each photo's id, after the rules of training: two classes or more, none empty, every
    /// photo embedded.
    pub fn dataset(&self) -> Result<(Dataset, Vec<String>)> {
        let with_photos = self.classes.iter().filter(|c| !c.photos.is_empty()).count();
        if with_photos < 2 {
            return Err(Error::TooFewClasses { with_photos });
        }
        if let Some(empty) = self.classes.iter().find(|c| c.photos.is_empty()) {
            return Err(Error::EmptyClass(empty.name.clone()));
        }
        let waiting = self.waiting().len();
        if waiting > 0 {
            return Err(Error::NotReady { waiting });
        }
        let mut data = Dataset::new(self.classes.iter().map(|c| c.name.clone()).collect());
        let mut ids = vec![];
        for (photo, class) in self.photos() {
            let embeddings = &self.embeddings[photo];
            data.push(&embeddings[..EMBEDDING_DIM], class)?;
            for variant in embeddings[EMBEDDING_DIM..].chunks_exact(EMBEDDING_DIM) {
                data.push_variant(variant, ids.len())?;
            }
            ids.push(photo.to_string());
        }
        Ok((data, ids))
    }

    /// Start learning from every photo; then [`Project::step`] until `None`, and
    /// [`Project::finish_learning`]. Embeddings are copied: the classes may change meanwhile.
    pub fn start_learning(&mut self, backbone_sha256: &str) -> Result<()> {
        if self.learning.is_some() {
            return Err(Error::BadConfig("training is already running".into()));
        }
        let (data, ids) = self.dataset()?;
        let learning = Learning::new(data, self.settings.train_config(), self.settings.seeing(), backbone_sha256)?;
        self.learning = Some((learning, ids));
        Ok(())
    }

    /// The next piece of learning; `None` when done (or not learning).
    pub fn step(&mut self) -> Result<Option<Progress>> {
        match &mut self.learning {
            Some((learning, _)) => learning.step(),
            None => Ok(None),
        }
    }

    /// Stop learning: the head keeps what training reached.
    pub fn stop(&mut self) {
        if let Some((learning, _)) = &mut self.learning {
            learning.stop();
        }
    }

    /// The model learnt, which becomes the project's classifier, and what was found.
    pub fn finish_learning(&mut self) -> Result<Report> {
        let (learning, ids) = self.learning.take().ok_or_else(|| Error::Internal("finish_learning without start_learning".into()))?;
        let targets = learning.data().targets.clone();
        let learned = learning.finish();
        let model_bytes = learned.model.to_bytes()?;
        let validation = learned.model.info.validation.clone();
        let cv = learned.validation.as_ref();
        let report = Report {
            model_bytes,
            labels: learned.model.info.labels.clone(),
            history: learned.history,
            summary: validation.as_ref().map(Validated::summary),
            validation,
            checked: cv.map_or(vec![], |cv| {
                (0..ids.len())
                    .map(|i| Checked { photo: ids[i].clone(), actual: targets[i], predicted: cv.predictions[i], confidence: cv.confidence[i] })
                    .collect()
            }),
            suspicious: cv.map_or(vec![], |cv| cv.suspicious.iter().map(|&i| ids[i].clone()).collect()),
            duplicates: learned.duplicates.iter().map(|&(i, j)| (ids[i].clone(), ids[j].clone())).collect(),
            stopped: learned.stopped,
        };
        self.classifier = Some(Classifier::new(learned.model));
        Ok(report)
    }

    /// Use a saved model (after a reload), or forget it with `None`.
    pub fn set_model(&mut self, bytes: Option<&[u8]>) -> Result<()> {
        self.classifier = bytes.map(Model::from_bytes).transpose()?.map(Classifier::new);
        Ok(())
    }

    pub fn classifier(&self) -> Option<&Classifier> {
        self.classifier.as_ref()
    }

    fn trained(&self) -> Result<&Classifier> {
        self.classifier.as_ref().ok_or_else(|| Error::BadConfig("there is no trained model yet: train one first".into()))
    }

    /// The views a photo is embedded in to be classified (the model's, which may differ from
    /// the current settings until it is trained again).
    pub fn predict_views(&self) -> Result<Vec<View>> {
        Ok(self.trained()?.views())
    }

    /// Classify one photo from its embeddings in each of [`Project::predict_views`].
    pub fn classify(&self, embeddings: &[f32]) -> Result<Verdict> {
        let classifier = self.trained()?;
        let want = classifier.views().len() * EMBEDDING_DIM;
        if embeddings.len() != want {
            return Err(Error::BadConfig(format!("a photo's embeddings have {} values, not {want}", embeddings.len())));
        }
        let predictions = classifier.predict(embeddings)?;
        let unfamiliar = classifier.judge(embeddings, classifier.views().len())?.map(|j| j[0]);
        Ok(Verdict { predictions, unfamiliar })
    }

    /// Where the model saw `class` in a photo's last feature map (see [`Classifier::heatmap`]).
    pub fn heatmap(&self, map: &[f32], class: usize) -> Result<Vec<f32>> {
        self.trained()?.heatmap(map, class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::tests::clusters;

    fn spec(id: &str, name: &str, photos: &[&str]) -> ClassSpec {
        ClassSpec { id: id.into(), name: name.into(), photos: photos.iter().map(|p| p.to_string()).collect() }
    }

    /// A project of three classes of `per_class` photos, embedded from `clusters` (with a
    /// mirror view that is the same embedding).
    fn project(per_class: usize) -> Project {
        let data = clusters(per_class, 7);
        let mut p = Project::new();
        let classes = (0..3)
            .map(|c| ClassSpec {
                id: format!("c{c}"),
                name: data.labels[c].clone(),
                photos: (0..data.len()).filter(|&i| data.targets[i] == c).map(|i| format!("p{i}")).collect(),
            })
            .collect();
        p.set_classes(classes).unwrap();
        for i in 0..data.len() {
            p.set_embeddings(&format!("p{i}"), data.embedding(i).repeat(p.views().len())).unwrap();
        }
        p
    }

    fn learn(p: &mut Project) -> Report {
        p.start_learning("sha").unwrap();
        while p.step().unwrap().is_some() {}
        p.finish_learning().unwrap()
    }

    #[test]
    fn a_refused_setting_changes_nothing() {
        let s = Settings::default();
        let mut p = Project::new();
        assert!(p.set_settings(Settings { hidden_units: crate::train::MAX_HIDDEN_UNITS + 1, ..s }).is_err());
        assert_eq!(p.settings(), s, "a refused setting changes nothing");
        assert!(serde_json::from_str::<Settings>(r#"{"hiddenUnits": 3, "typo": 1}"#).is_err());
        assert_eq!(serde_json::from_str::<Settings>("{}").unwrap(), s);
    }

    #[test]
    fn class_rules_are_checked_and_a_broken_rule_changes_nothing() {
        let mut p = project(3);
        let before = p.classes().to_vec();
        let bad = [
            vec![spec("a", " ", &[])],
            vec![spec("a", "Cat", &[]), spec("b", "cat ", &[])],
            vec![spec("a", "x", &[]), spec("a", "y", &[])],
            vec![spec("a", "x", &["p1"]), spec("b", "y", &["p1"])],
            vec![spec("a", &"n".repeat(MAX_NAME_CHARS + 1), &[])],
            (0..=MAX_CLASSES).map(|i| spec(&format!("c{i}"), &format!("n{i}"), &[])).collect(),
        ];
        for classes in bad {
            let e = p.set_classes(classes).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::BadInput, "{e}");
        }
        assert_eq!(p.classes(), &before[..]);
        assert!(p.waiting().is_empty());
    }

    #[test]
    fn training_needs_two_classes_no_empty_one_and_every_photo_embedded() {
        let mut p = Project::new();
        p.set_classes(vec![spec("a", "a", &["1"]), spec("b", "b", &[])]).unwrap();
        assert_eq!(p.start_learning("sha").unwrap_err(), Error::TooFewClasses { with_photos: 1 });
        p.set_classes(vec![spec("a", "a", &["1"]), spec("b", "b", &["2"]), spec("c", "c", &[])]).unwrap();
        assert_eq!(p.start_learning("sha").unwrap_err(), Error::EmptyClass("c".into()));
        p.set_classes(vec![spec("a", "a", &["1"]), spec("b", "b", &["2"])]).unwrap();
        assert_eq!(p.start_learning("sha").unwrap_err(), Error::NotReady { waiting: 2 });
        assert!(p.set_embeddings("1", vec![0.5; EMBEDDING_DIM]).is_err(), "two views by default");
        let views = p.views().len();
        assert!(p.set_embeddings("1", vec![f32::NAN; views * EMBEDDING_DIM]).is_err());
        assert!(p.set_embeddings("9", vec![0.5; views * EMBEDDING_DIM]).is_err(), "not in a class");
        p.set_embeddings("1", vec![0.5; views * EMBEDDING_DIM]).unwrap();
        assert_eq!(p.waiting(), vec!["2".to_string()]);
    }

    #[test]
    fn add_remove_move_and_rename_keep_embeddings_by_photo() {
        let mut p = project(4);
        let mut classes = p.classes().to_vec();
        // Move p0 from the first class to the second, remove p1, rename the third.
        classes[0].photos.retain(|x| x != "p0" && x != "p1");
        classes[1].photos.push("p0".into());
        classes[2].name = "renamed".into();
        p.set_classes(classes.clone()).unwrap();
        assert!(p.waiting().is_empty(), "moved photos keep their embeddings");
        // p1 is forgotten: putting it back needs its embeddings again.
        classes[0].photos.push("p1".into());
        p.set_classes(classes).unwrap();
        assert_eq!(p.waiting(), vec!["p1".to_string()]);
        assert_eq!(p.dataset().unwrap_err(), Error::NotReady { waiting: 1 });
    }

    #[test]
    fn train_then_predict_with_photos_named_by_id() {
        let mut p = project(15);
        let report = learn(&mut p);
        assert!(!report.stopped);
        assert_eq!(report.labels, vec!["a", "b", "c"]);
        assert_eq!(report.checked.len(), 45);
        assert!(report.checked.iter().all(|c| c.photo.starts_with('p')));
        assert!(report.summary.unwrap().contains("45 photos"));
        let data = clusters(15, 7);
        let views = p.views().len();
        let verdict = p.classify(&data.embedding(20).repeat(views)).unwrap();
        assert_eq!(verdict.predictions[0].label, data.labels[data.targets[20]]);
        assert!(p.classify(data.embedding(20)).is_err(), "the model averages {views} views");
        // The saved bytes give the same classifier back.
        let mut reopened = Project::new();
        reopened.set_model(Some(&report.model_bytes)).unwrap();
        let photo = data.embedding(3).repeat(views);
        let (saved, live) = (reopened.classify(&photo).unwrap(), p.classify(&photo).unwrap());
        assert_eq!(saved.predictions, live.predictions);
        // The saved fingerprints are 8-bit: the score moves a little, the verdict not.
        assert_eq!(saved.unfamiliar.map(|u| u.unfamiliar), live.unfamiliar.map(|u| u.unfamiliar));
    }

    #[test]
    fn stop_mid_training_keeps_a_usable_head() {
        let mut p = project(15);
        p.start_learning("sha").unwrap();
        // One step done (its line search may take more than one piece of work).
        while !matches!(p.step().unwrap(), Some(Progress::Training(_))) {}
        p.stop();
        assert_eq!(p.step().unwrap(), None);
        let report = p.finish_learning().unwrap();
        assert!(report.stopped && report.validation.is_none() && report.checked.is_empty());
        assert!(p.classifier().is_some());
    }

    #[test]
    fn changing_how_photos_are_seen_asks_for_new_embeddings() {
        let mut p = project(2);
        assert!(!p.set_settings(Settings { hidden_units: 16, ..Settings::default() }).unwrap());
        assert!(p.waiting().is_empty());
        assert!(p.set_settings(Settings { mirror: false, ..Settings::default() }).unwrap());
        assert_eq!(p.waiting().len(), 6);
        assert_eq!(p.views().len(), 2, "the photo and its closer view");
        assert!(p.set_settings(Settings { mirror: false, zoom: false, ..Settings::default() }).unwrap());
        assert_eq!(p.views().len(), 1);
        // A padded photo has no closer view: zoom on or off, the same views.
        assert!(p.set_settings(Settings { framing: crate::preprocess::Framing::Pad, ..Settings::default() }).unwrap());
        assert_eq!(p.views().len(), 2, "the padded photo and its mirror image");
    }

    #[test]
    fn nothing_to_predict_with_before_training() {
        let p = project(2);
        assert!(p.classify(&[0.0; 4 * EMBEDDING_DIM]).unwrap_err().to_string().contains("train one first"));
        assert!(Project::new().set_model(Some(b"not a model")).is_err());
    }
}
