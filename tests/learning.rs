//! Head training on real photos: clothing-small, train → test, with the default settings.

use std::path::Path;

use fewshot::dataset::Dataset;
use fewshot::familiar::Familiarity;
use fewshot::decode::{class_folders, decode_file};
use fewshot::model::Model;
use fewshot::preprocess::{Preprocess, Seeing};
use fewshot::train::{train, TrainConfig};
use fewshot::validate::cross_validate;
use fewshot::{Classifier, Engine};

use crate::util::{clothing, cpu_engine};

fn embed_folder(engine: &Engine, dir: &Path) -> Dataset {
    let (labels, files) = class_folders(dir).unwrap();
    let mut data = Dataset::new(labels);
    for chunk in files.chunks(16) {
        let photos: Vec<Vec<f32>> = chunk
            .iter()
            .map(|(p, _)| Preprocess::default().apply(decode_file(p).unwrap().rgba().unwrap()))
            .collect();
        let embeddings = pollster::block_on(engine.embed(&photos)).unwrap();
        for (i, (_, class)) in chunk.iter().enumerate() {
            data.push(&embeddings[i * 1280..(i + 1) * 1280], *class).unwrap();
        }
    }
    data
}

#[test]
fn clothing_small_trains_on_every_photo_and_cross_validates_honestly() {
    let engine = cpu_engine();
    let train_data = embed_folder(&engine, &clothing().join("train"));
    let test_data = embed_folder(&engine, &clothing().join("test"));
    assert_eq!((train_data.len(), test_data.len()), (300, 372));

    let trained = train(&train_data, TrainConfig::default(), |_| true).unwrap();
    assert!(!trained.stopped);
    assert_eq!(trained.photos_per_class, vec![30; 10], "every photo trains");
    let cv = cross_validate(&train_data, &TrainConfig::default(), |_, _| true).unwrap().unwrap();
    assert_eq!(cv.figures.folds, 5);
    assert_eq!(cv.figures.evaluation.confusion.iter().flatten().sum::<usize>(), 300, "every photo predicted once");

    let familiarity = Familiarity::fit(&train_data, 1);
    let model = trained.to_model(&engine.weights_sha256, Seeing { mirror: false, ..Seeing::default() }, Some(cv.figures.clone()), familiarity);
    let classifier = Classifier::new(Model::from_bytes(&model.to_bytes().unwrap()).unwrap());
    let evaluation = classifier.evaluate(&test_data).unwrap();
    let estimate = cv.figures.evaluation.accuracy;
    eprintln!(
        "clothing-small test accuracy: {:.1} %; cross-validated estimate: {}",
        evaluation.accuracy * 100.0,
        cv.figures.summary()
    );
    // The linear probe (scikit-learn, C = 1) reaches 80.6 % here.
    assert!(evaluation.accuracy >= 0.80, "test accuracy {:.3} < 0.80", evaluation.accuracy);
    assert_eq!(evaluation.confusion.iter().flatten().sum::<usize>(), 372);
    // The estimate's range holds the accuracy measured on photos it never saw.
    let (low, high) = cv.figures.accuracy_range;
    assert!(low <= evaluation.accuracy && evaluation.accuracy <= high, "{low} .. {high} vs {}", evaluation.accuracy);
    assert!((estimate - evaluation.accuracy).abs() < 0.1);

    // "None of these": few of its own kind of photo flagged, photos from elsewhere flagged.
    let judged = classifier.judge(&test_data.embeddings).unwrap().expect("300 photos give a familiarity score");
    let familiar = judged.iter().filter(|u| u.unfamiliar).count() as f32 / judged.len() as f32;
    let foreign = embed_files(&engine, &fixture_photos());
    let judged = classifier.judge(&foreign).unwrap().unwrap();
    let unfamiliar = judged.iter().filter(|u| u.unfamiliar).count();
    eprintln!("\"none of these\": {:.1} % of test photos, {unfamiliar} of {} fixture photos", familiar * 100.0, judged.len());
    assert!(familiar <= 0.05, "{familiar} of the test photos flagged");
    assert!(unfamiliar >= judged.len() - 1, "{unfamiliar} of {} photos from elsewhere flagged", judged.len());
}

fn fixture_photos() -> Vec<std::path::PathBuf> {
    ["bird.bmp", "cat.bmp", "grace_hopper.bmp", "parrot.jpg", "sunflower.bmp"]
        .iter()
        .map(|f| crate::util::fixtures().join("images").join(f))
        .collect()
}

fn embed_files(engine: &Engine, files: &[std::path::PathBuf]) -> Vec<f32> {
    let photos: Vec<Vec<f32>> = files.iter().map(|p| Preprocess::default().apply(decode_file(p).unwrap().rgba().unwrap())).collect();
    pollster::block_on(engine.embed(&photos)).unwrap()
}
