//! Head training on real photos: clothing-small, train → test, with the default settings.

use std::path::Path;

use fewshot::dataset::Dataset;
use fewshot::decode::{class_folders, decode_file};
use fewshot::model::Model;
use fewshot::preprocess::Preprocess;
use fewshot::train::{train, TrainConfig};
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
fn clothing_small_reaches_78_percent_with_defaults() {
    let engine = cpu_engine();
    let train_data = embed_folder(&engine, &clothing().join("train"));
    let test_data = embed_folder(&engine, &clothing().join("test"));
    assert_eq!((train_data.len(), test_data.len()), (300, 372));

    let mut epochs = 0;
    let trained = train(train_data.clone(), TrainConfig::default(), |_| {
        epochs += 1;
        true
    })
    .unwrap();
    assert_eq!(epochs, 50);
    let held_out = trained.held_out.clone().expect("30 photos a class give a held-out split");
    assert_eq!(held_out.confusion.iter().flatten().sum::<usize>(), 10 * 5, "15 % of 30 = 5 per class");

    let model = Model::new(&trained, &engine.weights_sha256, Preprocess::default());
    assert_eq!(model.info.photos_per_class, vec![30; 10]);
    let classifier = Classifier::new(Model::from_bytes(&model.to_bytes().unwrap()).unwrap());
    let evaluation = classifier.evaluate(&test_data).unwrap();
    eprintln!("clothing-small test accuracy: {:.1} %", evaluation.accuracy * 100.0);
    assert!(evaluation.accuracy >= 0.78, "test accuracy {:.3} < 0.78", evaluation.accuracy);
    assert_eq!(evaluation.confusion.iter().flatten().sum::<usize>(), 372);
}
