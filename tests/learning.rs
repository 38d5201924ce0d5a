//! Head training on real photos: clothing-small, train → test, with the default settings.

use std::path::Path;

use fewshot::dataset::Dataset;
use fewshot::familiar::Familiarity;
use fewshot::decode::{class_folders, decode_file};
use fewshot::learn::model_of;
use fewshot::model::Model;
use fewshot::preprocess::{View, Seeing};
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
            .map(|(p, _)| View::default().apply(decode_file(p).unwrap().rgba().unwrap()))
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
    let cv = cross_validate(&train_data, &TrainConfig::default(), None, |_, _| true).unwrap().unwrap();
    assert_eq!(cv.figures.folds, 5);
    assert_eq!(cv.figures.evaluation.confusion.iter().flatten().sum::<usize>(), 300, "every photo predicted once");

    let familiarity = Familiarity::fit(&train_data, 1);
    let model = model_of(&trained, &engine.weights_sha256, Seeing { mirror: false, zoom: false, ..Seeing::default() }, Some(cv.figures.clone()), familiarity);
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
    let judged = classifier.judge(&test_data.embeddings, 1).unwrap().expect("300 photos give a familiarity score");
    let familiar = judged.iter().filter(|u| u.unfamiliar).count() as f32 / judged.len() as f32;
    let foreign = embed_files(&engine, &fixture_photos());
    let judged = classifier.judge(&foreign, 1).unwrap().unwrap();
    let unfamiliar = judged.iter().filter(|u| u.unfamiliar).count();
    eprintln!("\"none of these\": {:.1} % of test photos, {unfamiliar} of {} fixture photos", familiar * 100.0, judged.len());
    assert!(familiar <= 0.05, "{familiar} of the test photos flagged");
    assert!(unfamiliar >= judged.len() - 1, "{unfamiliar} of {} photos from elsewhere flagged", judged.len());

    let hat = train_data.labels.iter().position(|l| l == "hat").unwrap();
    hat_in_a_corner_is_seen_there(&engine, &classifier, hat);
}

/// The heatmap on a real photo: a test hat, shrunk into the top-left quarter of a white
/// square, is seen (hottest) in that quarter.
fn hat_in_a_corner_is_seen_there(engine: &Engine, classifier: &Classifier, hat_class: usize) {
    let mut hats: Vec<_> = std::fs::read_dir(clothing().join("test/hat")).unwrap().map(|e| e.unwrap().path()).collect();
    hats.sort();
    let hat = decode_file(&hats[0]).unwrap();
    let side = 448u32;
    let mut canvas = vec![255u8; (side * side * 4) as usize];
    let half = side / 2;
    for y in 0..half {
        for x in 0..half {
            let sx = (x as u64 * hat.width as u64 / half as u64) as u32;
            let sy = (y as u64 * hat.height as u64 / half as u64) as u32;
            let from = ((sy * hat.width + sx) * 4) as usize;
            let to = ((y * side + x) * 4) as usize;
            canvas[to..to + 4].copy_from_slice(&hat.pixels[from..from + 4]);
        }
    }
    let photo = View::default().apply(fewshot::preprocess::Rgba::new(&canvas, side, side).unwrap());
    let (_, map) = pollster::block_on(engine.embed_with_maps(&[photo])).unwrap();
    let heat = classifier.heatmap(&map, hat_class).unwrap();
    let peak = heat.iter().enumerate().fold(0, |best, (i, &v)| if v > heat[best] { i } else { best });
    let (row, column) = (peak / 7, peak % 7);
    eprintln!("hat in the top-left quarter: the heatmap peaks at row {row}, column {column}");
    assert!(row <= 3 && column <= 3, "peak at row {row}, column {column}");
}

fn fixture_photos() -> Vec<std::path::PathBuf> {
    ["bird.bmp", "cat.bmp", "grace_hopper.bmp", "parrot.jpg", "sunflower.bmp"]
        .iter()
        .map(|f| crate::util::fixtures().join("images").join(f))
        .collect()
}

fn embed_files(engine: &Engine, files: &[std::path::PathBuf]) -> Vec<f32> {
    let photos: Vec<Vec<f32>> = files.iter().map(|p| View::default().apply(decode_file(p).unwrap().rgba().unwrap())).collect();
    pollster::block_on(engine.embed(&photos)).unwrap()
}
