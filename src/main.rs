//! `fewshot`: the engine from the command line, sharing every line with the page.
//!
//! ```text
//! fewshot classify IMAGE...                         ImageNet top-5 of each photo
//! fewshot eval --train DIR --test DIR [--shots K] [--seed S] [--json]
//! fewshot train DIR -o MODEL                        train a head on DIR/<class>/<photos>
//! fewshot predict --model MODEL IMAGE...
//! fewshot bench                                     photos per second on cpu and gpu
//! common: --device cpu|gpu  --weights PATH  --framing crop|pad
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use fewshot::dataset::Dataset;
use fewshot::decode::{class_folders, decode_file};
use fewshot::device::{self, Compute};
use fewshot::model::Model;
use fewshot::predict::top_k;
use fewshot::preprocess::{Framing, Preprocess};
use fewshot::rng::Rng;
use fewshot::train::{train, TrainConfig};
use fewshot::{Classifier, Engine, Error, Result};
use indicatif::{ProgressBar, ProgressStyle};

const USAGE: &str = "usage:
  fewshot classify IMAGE...
  fewshot eval --train DIR --test DIR [--shots K] [--seed S] [--json]
  fewshot train DIR -o MODEL [--epochs N] [--hidden N]
  fewshot predict --model MODEL IMAGE...
  fewshot bench [--photos N]
options for every command:
  --device cpu|gpu   where the backbone runs (default: gpu if a hardware GPU exists, else cpu)
  --weights PATH     the MobileNetV2 .tflite file (default: $FEWSHOT_WEIGHTS, else the copy build.sh fetched)
  --framing crop|pad centre-crop photos (default) or pad them to a square";

/// Photos per backbone call.
const BATCH: usize = 16;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(Args::parse(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fewshot: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parsed command line: the command, its positional arguments and `--name value` options.
struct Args {
    command: String,
    positional: Vec<String>,
    options: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse(args: Vec<String>) -> Result<Args> {
        let mut it = args.into_iter();
        let command = it.next().ok_or_else(|| Error::BadConfig(format!("no command given\n{USAGE}")))?;
        let (mut positional, mut options) = (vec![], vec![]);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--json" | "--help" | "-h" => options.push((arg, None)),
                a if a.starts_with('-') => {
                    let value = it.next().ok_or_else(|| Error::BadConfig(format!("{a} needs a value")))?;
                    options.push((a.trim_start_matches('-').to_string(), Some(value)));
                }
                _ => positional.push(arg),
            }
        }
        Ok(Args { command, positional, options })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.options.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }

    fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>> {
        self.get(name)
            .map(|v| v.parse().map_err(|_| Error::BadConfig(format!("--{name} takes a number, not \"{v}\""))))
            .transpose()
    }

    fn check_known(&self, known: &[&str]) -> Result<()> {
        let common = ["device", "weights", "framing", "--help", "-h"];
        match self.options.iter().find(|(n, _)| !known.contains(&n.as_str()) && !common.contains(&n.as_str())) {
            Some((n, _)) => Err(Error::BadConfig(format!("unknown option {n} for {}\n{USAGE}", self.command))),
            None => Ok(()),
        }
    }
}

fn run(args: Result<Args>) -> Result<()> {
    let args = args?;
    if args.flag("--help") || args.flag("-h") || args.command == "help" || args.command == "--help" {
        println!("{USAGE}");
        return Ok(());
    }
    match args.command.as_str() {
        "classify" => {
            args.check_known(&[])?;
            classify(&args)
        }
        "eval" => {
            args.check_known(&["train", "test", "shots", "seed", "--json", "epochs", "hidden"])?;
            eval(&args)
        }
        "train" => {
            args.check_known(&["o", "output", "seed", "epochs", "hidden"])?;
            train_command(&args)
        }
        "predict" => {
            args.check_known(&["model"])?;
            predict(&args)
        }
        "bench" => {
            args.check_known(&["photos"])?;
            bench(&args)
        }
        other => Err(Error::BadConfig(format!("unknown command \"{other}\"\n{USAGE}"))),
    }
}

/// The weights file: `--weights`, `$FEWSHOT_WEIGHTS`, the copy `build.sh` fetched, or the one in
/// `../shared` beside the checkout.
fn weights_path(args: &Args) -> Result<PathBuf> {
    if let Some(p) = args.get("weights") {
        return Ok(p.into());
    }
    if let Ok(p) = std::env::var("FEWSHOT_WEIGHTS") {
        return Ok(p.into());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        root.join("www/weights/mobilenet_v2_1.0_224_quant.tflite"),
        root.join("../shared/weights/mobilenet_v2_1.0_224_quant.tflite"),
    ];
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        Error::Io("no weights file found: run ./build.sh weights, set FEWSHOT_WEIGHTS, or pass --weights PATH".into())
    })
}

/// Load the backbone on the device asked for, or the best one; say which on stderr.
fn engine(args: &Args) -> Result<Engine> {
    let compute = match args.get("device") {
        Some("cpu") => Compute::Cpu,
        Some("gpu") => Compute::Gpu,
        Some(other) => return Err(Error::BadConfig(format!("--device takes cpu or gpu, not \"{other}\""))),
        None => match device::native_adapter() {
            Some((name, true)) => {
                eprintln!("using gpu: {name}");
                Compute::Gpu
            }
            Some((name, false)) => {
                eprintln!("using cpu: the only GPU adapter, {name}, emulates a GPU on the CPU and is slower (--device gpu uses it anyway)");
                Compute::Cpu
            }
            None => {
                eprintln!("using cpu: no GPU adapter found");
                Compute::Cpu
            }
        },
    };
    let device = match compute {
        Compute::Cpu => device::cpu(),
        Compute::Gpu => pollster::block_on(device::gpu())?,
    };
    let path = weights_path(args)?;
    let bytes = std::fs::read(&path).map_err(|e| Error::Io(format!("cannot read the weights {}: {e}", path.display())))?;
    let engine = Engine::new(&bytes, device)?;
    if let Some(warning) = engine.weights_warning() {
        eprintln!("warning: {warning}");
    }
    Ok(engine)
}

fn preprocess_options(args: &Args) -> Result<Preprocess> {
    let framing = match args.get("framing") {
        None | Some("crop") => Framing::Crop,
        Some("pad") => Framing::Pad,
        Some(other) => return Err(Error::BadConfig(format!("--framing takes crop or pad, not \"{other}\""))),
    };
    Ok(Preprocess { framing, ..Default::default() })
}

fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} [{elapsed_precise}, {eta} left]").expect("valid template"),
    );
    bar.set_message(what.to_string());
    bar
}

/// Decode, preprocess and embed photo files in batches; `[n * 1280]`.
fn embed_files(engine: &Engine, options: Preprocess, files: &[PathBuf], what: &str) -> Result<Vec<f32>> {
    let bar = progress(files.len(), what);
    let mut embeddings = Vec::with_capacity(files.len() * 1280);
    for chunk in files.chunks(BATCH) {
        let photos = chunk
            .iter()
            .map(|path| {
                let photo = decode_file(path)?;
                let rgba = photo.rgba().map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
                Ok(options.apply(rgba))
            })
            .collect::<Result<Vec<_>>>()?;
        embeddings.extend(pollster::block_on(engine.embed(&photos))?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(embeddings)
}

fn images(args: &Args) -> Result<Vec<PathBuf>> {
    if args.positional.is_empty() {
        return Err(Error::BadConfig(format!("no image given\n{USAGE}")));
    }
    Ok(args.positional.iter().map(PathBuf::from).collect())
}

fn classify(args: &Args) -> Result<()> {
    let files = images(args)?;
    let engine = engine(args)?;
    let labels = fewshot::backbone::imagenet_labels();
    let options = preprocess_options(args)?;
    for path in files {
        let photo = decode_file(&path).and_then(|p| Ok(options.apply(p.rgba()?)));
        let photo = match photo {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                continue;
            }
        };
        let probabilities = pollster::block_on(engine.imagenet(&[photo]))?;
        let top: Vec<String> = top_k(&probabilities, &labels, 5)
            .iter()
            .map(|p| format!("{} {:.3}", p.label, p.probability))
            .collect();
        println!("{}\t{}", path.display(), top.join(" | "));
    }
    Ok(())
}

/// Embeddings of a folder of class folders; `shots` keeps that many random photos per class.
fn embed_folder(engine: &Engine, options: Preprocess, dir: &Path, shots: Option<usize>, seed: u64) -> Result<Dataset> {
    let (labels, mut files) = class_folders(dir)?;
    if let Some(k) = shots {
        let mut rng = Rng::new(seed);
        let mut kept = vec![];
        for class in 0..labels.len() {
            let mut members: Vec<_> = files.iter().filter(|(_, c)| *c == class).cloned().collect();
            rng.shuffle(&mut members);
            kept.extend(members.into_iter().take(k));
        }
        files = kept;
    }
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let embeddings = embed_files(engine, options, &paths, &format!("embedding {}", dir.display()))?;
    let mut data = Dataset::new(labels);
    for (i, (_, class)) in files.iter().enumerate() {
        data.push(&embeddings[i * 1280..(i + 1) * 1280], *class)?;
    }
    Ok(data)
}

fn train_config(args: &Args) -> Result<TrainConfig> {
    let mut config = TrainConfig::default();
    if let Some(seed) = args.number("seed")? {
        config.seed = seed;
    }
    if let Some(epochs) = args.number("epochs")? {
        config.epochs = epochs;
    }
    if let Some(hidden) = args.number("hidden")? {
        config.hidden_units = hidden;
    }
    Ok(config)
}

/// Train a head on a dataset exactly as the page does, with a progress bar.
fn train_head(data: Dataset, config: TrainConfig, options: Preprocess, sha256: &str) -> Result<Model> {
    let bar = progress(config.epochs, "training");
    let trained = train(data, config, |report| {
        bar.set_position(report.epoch as u64);
        true
    })?;
    bar.finish_and_clear();
    Ok(Model::new(&trained, sha256, options))
}

fn eval(args: &Args) -> Result<()> {
    let train_dir = args.get("train").ok_or_else(|| Error::BadConfig(format!("eval needs --train DIR\n{USAGE}")))?;
    let test_dir = args.get("test").ok_or_else(|| Error::BadConfig(format!("eval needs --test DIR\n{USAGE}")))?;
    let config = train_config(args)?;
    let shots: Option<usize> = args.number("shots")?;
    let options = preprocess_options(args)?;
    let engine = engine(args)?;
    let started = Instant::now();
    let train_data = embed_folder(&engine, options, Path::new(train_dir), shots, config.seed)?;
    let test_data = embed_folder(&engine, options, Path::new(test_dir), None, config.seed)?;
    let embed_seconds = started.elapsed().as_secs_f64();
    if test_data.labels != train_data.labels {
        return Err(Error::BadConfig(format!(
            "the class folders differ: train has {:?}, test has {:?}",
            train_data.labels, test_data.labels
        )));
    }
    let started = Instant::now();
    let train_photos = train_data.len();
    let model = train_head(train_data, config, options, &engine.weights_sha256)?;
    let train_seconds = started.elapsed().as_secs_f64();
    let evaluation = Classifier::new(model).evaluate(&test_data)?;
    if args.flag("--json") {
        let out = serde_json::json!({
            "accuracy": evaluation.accuracy,
            "per_class": evaluation.per_class,
            "confusion": evaluation.confusion,
            "labels": test_data.labels,
            "train_photos": train_photos,
            "test_photos": test_data.len(),
            "embed_seconds": embed_seconds,
            "train_seconds": train_seconds,
        });
        println!("{out}");
    } else {
        println!(
            "trained on {train_photos} photos, tested on {} ({embed_seconds:.1} s embedding, {train_seconds:.2} s training)\n",
            test_data.len()
        );
        print!("{}", evaluation.to_table());
    }
    Ok(())
}

fn train_command(args: &Args) -> Result<()> {
    let dir = args.positional.first().ok_or_else(|| Error::BadConfig(format!("train needs a folder\n{USAGE}")))?;
    let output = args
        .get("o")
        .or(args.get("output"))
        .ok_or_else(|| Error::BadConfig(format!("train needs -o MODEL\n{USAGE}")))?;
    let config = train_config(args)?;
    let options = preprocess_options(args)?;
    let engine = engine(args)?;
    let data = embed_folder(&engine, options, Path::new(dir), None, config.seed)?;
    let model = train_head(data, config, options, &engine.weights_sha256)?;
    std::fs::write(output, model.to_bytes()?).map_err(|e| Error::Io(format!("cannot write {output}: {e}")))?;
    match &model.info.held_out {
        Some(e) => eprintln!("held-out accuracy {:.1} %; model written to {output}", e.accuracy * 100.0),
        None => eprintln!("model written to {output} (too few photos per class for a held-out check)"),
    }
    Ok(())
}

fn predict(args: &Args) -> Result<()> {
    let path = args.get("model").ok_or_else(|| Error::BadConfig(format!("predict needs --model MODEL\n{USAGE}")))?;
    let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("cannot read {path}: {e}")))?;
    let classifier = Classifier::new(Model::from_bytes(&bytes)?);
    let files = images(args)?;
    let engine = engine(args)?;
    if classifier.info().backbone_sha256 != engine.weights_sha256 {
        eprintln!("warning: the model was trained on embeddings of another backbone file; predictions may be wrong");
    }
    let options = classifier.info().preprocess;
    for path in files {
        let embedding = embed_files(&engine, options, std::slice::from_ref(&path), "embedding")?;
        let predictions = &classifier.predict(&embedding)?[0];
        let shown: Vec<String> = predictions.iter().map(|p| format!("{} {:.3}", p.label, p.probability)).collect();
        println!("{}\t{}", path.display(), shown.join(" | "));
    }
    Ok(())
}

/// Photos per second of the backbone at batch 1 and 16 on the cpu and on the gpu adapter.
fn bench(args: &Args) -> Result<()> {
    let photos: usize = args.number("photos")?.unwrap_or(32);
    let path = weights_path(args)?;
    let bytes = std::fs::read(&path).map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
    let mut rng = Rng::new(1);
    let input: Vec<Vec<f32>> =
        (0..16).map(|_| (0..fewshot::preprocess::INPUT_LEN).map(|_| rng.next_f32() * 2.0 - 1.0).collect()).collect();
    let mut devices = vec![("cpu (flex)".to_string(), device::cpu())];
    match device::native_adapter() {
        Some((name, _)) => match pollster::block_on(device::gpu()) {
            Ok(d) => devices.push((format!("gpu: {name}"), d)),
            Err(e) => eprintln!("gpu skipped: {e}"),
        },
        None => eprintln!("gpu skipped: no adapter"),
    }
    println!("{:<50} {:>10} {:>12} {:>12}", "device", "first (s)", "batch 1/s", "batch 16/s");
    for (name, device) in devices {
        let engine = Engine::new(&bytes, device)?;
        let started = Instant::now();
        pollster::block_on(engine.warm_up())?;
        let first = started.elapsed().as_secs_f64();
        let mut rates = vec![];
        for batch in [1, 16] {
            let started = Instant::now();
            let mut done = 0;
            while done < photos {
                pollster::block_on(engine.embed(&input[..batch]))?;
                done += batch;
            }
            rates.push(done as f64 / started.elapsed().as_secs_f64());
        }
        println!("{name:<50} {first:>10.2} {:>12.1} {:>12.1}", rates[0], rates[1]);
    }
    Ok(())
}
