//! Paths to the shared weights, fixtures and photos, and small helpers.

use std::path::PathBuf;

use fewshot::device;
use fewshot::Engine;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn shared() -> PathBuf {
    repo().join("../shared")
}

/// `$FEWSHOT_WEIGHTS`, the copy `build.sh` fetched, or `../shared/weights`.
pub fn weights_path() -> PathBuf {
    let name = "mobilenet_v2_1.0_224_quant.tflite";
    let candidates = [
        std::env::var("FEWSHOT_WEIGHTS").map(PathBuf::from).unwrap_or_default(),
        repo().join("www/weights").join(name),
        shared().join("weights").join(name),
    ];
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("no weights file: run ./build.sh weights, or set FEWSHOT_WEIGHTS to {name}")
    })
}

pub fn weights() -> Vec<u8> {
    std::fs::read(weights_path()).expect("weights readable")
}

pub fn cpu_engine() -> Engine {
    Engine::new(&weights(), device::cpu()).expect("the real weights load")
}

pub fn fixtures() -> PathBuf {
    shared().join("fixtures")
}

pub fn clothing() -> PathBuf {
    shared().join("datasets/clothing-small")
}

pub fn read_f32(path: PathBuf) -> Vec<f32> {
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A fresh empty folder under the target directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = repo().join("target/test-tmp").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
