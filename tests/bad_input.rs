//! Bad input gets a clear error, never a panic.

use fewshot::backbone::tflite::{read_ops, Op};
use fewshot::backbone::Backbone;
use fewshot::dataset::Dataset;
use fewshot::decode::decode;
use fewshot::model::Model;
use fewshot::train::{TrainConfig, Trainer};
use fewshot::{device, Engine, Error};

use crate::util::weights;

fn weights_error(bytes: &[u8]) -> String {
    match Engine::new(bytes, device::cpu()) {
        Ok(_) => panic!("{} bytes of bad weights were accepted", bytes.len()),
        Err(e) => {
            assert!(matches!(e, Error::Weights(_)), "{e:?}");
            e.to_string()
        }
    }
}

#[test]
fn truncated_weights() {
    let w = weights();
    for len in [0, 7, 100, w.len() / 2, w.len() - 1] {
        let message = weights_error(&w[..len]);
        assert!(message.starts_with("weights file does not fit MobileNetV2"), "{message}");
    }
    assert!(weights_error(&w[..w.len() / 2]).contains("truncated"));
}

#[test]
fn garbage_weights() {
    let noise: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    assert!(weights_error(&noise).contains("TFL3"));
    let mut flipped = weights();
    // Corrupt the root table offset only: the identifier stays, the structure breaks.
    flipped[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
    weights_error(&flipped);
}

#[test]
fn a_different_network_names_what_does_not_fit() {
    // The real file's operators, changed into another network: one stride, then one layer less.
    let mut ops = read_ops(&weights()).unwrap();
    let convs: Vec<usize> = (0..ops.len()).filter(|&i| matches!(ops[i], Op::Conv(_))).collect();
    if let Op::Conv(c) = &mut ops[convs[4]] {
        c.stride = 1;
    }
    let message = Backbone::from_ops(&ops, &device::cpu()).unwrap_err().to_string();
    assert_eq!(
        message,
        "weights file does not fit MobileNetV2: block 1 (depthwise) should be a depthwise convolution of weights [1, 3, 3, 96], stride 2, ReLU6 and SAME padding; \
         the file has a depthwise convolution of weights [1, 3, 3, 96], stride 1, ReLU6, SAME padding and 96 biases"
    );
    ops.remove(convs[1]);
    let message = Backbone::from_ops(&ops, &device::cpu()).unwrap_err().to_string();
    assert!(message.contains("expected 53 convolutions and 10 residual additions, found 52 and 10"), "{message}");
}

#[test]
fn non_images_and_odd_sizes() {
    let err = |bytes: &[u8]| decode(bytes).unwrap_err().to_string();
    assert_eq!(err(b""), "not a readable image: the file is empty (0 bytes)");
    assert!(err(b"just some text, not a photo").starts_with("not a readable image"));
    assert!(err(&weights()[..4096]).starts_with("not a readable image"));

    // A 1x1 PNG is refused from its header: too small to embed.
    let mut png = vec![];
    image::RgbaImage::new(1, 1).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    assert_eq!(err(&png), "image is only 1x1 pixels; use a photo at least 16x16");

    // A real 10000x10000 PNG is refused from its header, before 400 MB are allocated.
    let mut big = vec![];
    image::GrayImage::new(10_000, 10_000).write_to(&mut std::io::Cursor::new(&mut big), image::ImageFormat::Png).unwrap();
    let message = err(&big);
    assert_eq!(message, "image is 10000x10000 pixels (100 megapixels); the limit is 64 megapixels: shrink it first");

    // A JPEG cut in its headers is an error; one cut in its pixel data decodes what is there
    // (as browsers do) — neither panics.
    let jpeg = std::fs::read(crate::util::fixtures().join("images/parrot.jpg")).unwrap();
    assert!(err(&jpeg[..200]).starts_with("not a readable image"));
    let _ = decode(&jpeg[..jpeg.len() / 3]);
}

#[test]
fn one_class_or_an_empty_class_cannot_train() {
    let e = [0.5f32; 1280];
    let mut one = Dataset::new(vec!["only".into()]);
    for _ in 0..5 {
        one.push(&e, 0).unwrap();
    }
    let message = Trainer::new(&one, TrainConfig::default()).err().unwrap().to_string();
    assert_eq!(message, "training needs photos in at least two classes; 1 class has photos");

    let mut empty = Dataset::new(vec!["cats".into(), "dogs".into(), "birds".into()]);
    for class in [0, 0, 1, 1] {
        empty.push(&e, class).unwrap();
    }
    let message = Trainer::new(&empty, TrainConfig::default()).err().unwrap().to_string();
    assert_eq!(message, "class \"birds\" has no photos; add some or remove the class");
}

#[test]
fn model_file_from_the_future_or_elsewhere() {
    // A minimal safetensors file claiming a newer Fewshot format.
    let header = r#"{"__metadata__":{"format":"fewshot-model","version":"4","info":"{}"}}"#;
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    let message = Model::from_bytes(&file).unwrap_err().to_string();
    assert_eq!(
        message,
        "cannot read this model file: it was written by a newer Fewshot (model format 4); this one reads format 3 and older: update Fewshot"
    );
    assert!(Model::from_bytes(b"").unwrap_err().to_string().contains("not a Fewshot model"));
    assert!(Model::from_bytes(&weights()).unwrap_err().to_string().contains("not a Fewshot model"));
}
