//! `fewshot`: the engine from the command line, sharing every line with the page. `fewshot
//! --help` lists the commands ([`COMMANDS`]) and the settings' options, written from the same
//! table as the page's controls (`fewshot::settings`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use fewshot::backbone::kernels::Instructions;
use fewshot::backbone::EMBEDDING_DIM;
use fewshot::dataset::Dataset;
use fewshot::export::Arithmetic;
use fewshot::decode::{class_folders, decode_file};
use fewshot::device::{self, Compute};
use fewshot::model::Model;
use fewshot::predict::top_k;
use fewshot::preprocess::{views, View, Seeing};
use fewshot::settings::{self, Scope, Settings};
use fewshot::rng::Rng;
use fewshot::learn::{Learned, Learning, Progress};
use fewshot::train::{train, TrainConfig};
use fewshot::validate::cross_validate;
use fewshot::{Classifier, Engine, Error, Result};
use indicatif::{ProgressBar, ProgressStyle};

/// The commands, with the options of each that are not settings.
const COMMANDS: &str = "usage:
  fewshot classify IMAGE...                       ImageNet top-5 of each photo
  fewshot eval --train DIR --test DIR [--shots K[,K...]] [--repeats R] [--foreign DIR] [--harder DIR] [--seed S] [--json]
  fewshot train DIR -o MODEL [--penalty P] [--seed S]   train a head on DIR/<class>/<photos>
  fewshot predict --model MODEL IMAGE...
  fewshot bench [--photos N]                      photos per second on cpu and gpu
  fewshot embed DIR -o FILE.json                  every view's embedding of DIR/<class>/<photos>
  fewshot export MODEL --format tflite -o FILE.tflite [--arithmetic float|quantized]   a standalone .tflite file (LiteRT)
  fewshot check-project PROJECT.zip...            a project ZIP checked as the page checks one before opening it
options for every command:
  --device cpu|gpu    where the backbone runs (default: gpu if a hardware GPU exists, else cpu)
  --weights PATH      the MobileNetV2 .tflite file (default: $FEWSHOT_WEIGHTS, else the copy build.sh fetched)";

/// The usage: the commands, then every setting's line from its row (`fewshot::settings`).
struct Usage;
const USAGE: Usage = Usage;

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines = |scope| settings::table().iter().filter(|s| s.scope == scope).map(|s| s.usage_line()).collect::<Vec<_>>().join("\n");
        write!(f, "{COMMANDS}\n{}\noptions for train and eval:\n{}", lines(Scope::Seeing), lines(Scope::Training))
    }
}

/// The options of settings of `scope` (`--zoom`, `--hidden`, …).
fn setting_flags(scope: Scope) -> Vec<&'static str> {
    settings::table().into_iter().filter(|s| s.scope == scope).map(|s| s.flag).collect()
}

/// Photos per backbone call.
const BATCH: usize = 16;

/// Exit status when some inputs failed (each named on stderr) and others worked.
const SOME_FAILED: u8 = 1;
/// Exit status when nothing worked: every input failed, or the command could not run.
const ALL_FAILED: u8 = 2;

fn main() -> ExitCode {
    quiet_gpu_driver();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(Args::parse(args)) {
        Ok(Done { failed: 0, .. }) => ExitCode::SUCCESS,
        Ok(Done { failed, total }) => {
            eprintln!("fewshot: {failed} of {total} photos failed (named above)");
            ExitCode::from(if failed == total { ALL_FAILED } else { SOME_FAILED })
        }
        Err(e) => {
            eprintln!("fewshot: {e}");
            ExitCode::from(ALL_FAILED)
        }
    }
}

/// What a command did with its inputs.
#[derive(Default)]
struct Done {
    /// Inputs (photos) that failed, each already named on stderr.
    failed: usize,
    total: usize,
}

/// Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" on every start when
/// the variable is missing (as in containers and CI): give them a private runtime folder
/// unless `FEWSHOT_DRIVER_NOISE` asks to see the driver's own messages.
fn quiet_gpu_driver() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() || std::env::var_os("FEWSHOT_DRIVER_NOISE").is_some() {
        return;
    }
    let dir = std::env::temp_dir().join("fewshot-runtime");
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        let made = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        if made.is_ok() || dir.is_dir() {
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
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
        let mut common = vec!["device", "weights", "--help", "-h"];
        common.extend(setting_flags(Scope::Seeing));
        if ["train", "eval"].contains(&self.command.as_str()) {
            common.extend(setting_flags(Scope::Training));
        }
        match self.options.iter().find(|(n, _)| !known.contains(&n.as_str()) && !common.contains(&n.as_str())) {
            Some((n, _)) => Err(Error::BadConfig(format!("unknown option {n} for {}\n{USAGE}", self.command))),
            None => Ok(()),
        }
    }
}

fn run(args: Result<Args>) -> Result<Done> {
    let args = args?;
    if args.flag("--help") || args.flag("-h") || args.command == "help" || args.command == "--help" {
        println!("{USAGE}");
        return Ok(Done::default());
    }
    match args.command.as_str() {
        "classify" => {
            args.check_known(&[])?;
            classify(&args)
        }
        "eval" => {
            args.check_known(&["train", "test", "shots", "repeats", "seed", "--json", "penalty", "foreign", "harder"])?;
            eval(&args).map(|()| Done::default())
        }
        "train" => {
            args.check_known(&["o", "output", "seed", "penalty"])?;
            train_command(&args).map(|()| Done::default())
        }
        "predict" => {
            args.check_known(&["model"])?;
            predict(&args)
        }
        "bench" => {
            args.check_known(&["photos"])?;
            bench(&args).map(|()| Done::default())
        }
        "embed" => {
            args.check_known(&["o", "output"])?;
            embed_command(&args).map(|()| Done::default())
        }
        "export" => {
            args.check_known(&["o", "output", "format", "arithmetic"])?;
            export_command(&args).map(|()| Done::default())
        }
        "check-project" => {
            args.check_known(&[])?;
            check_project(&args)
        }
        other => Err(Error::BadConfig(format!("unknown command \"{other}\"\n{USAGE}"))),
    }
}

/// Check project ZIPs as the page does before opening one: every field of its `project.json`
/// by the one schema (`fewshot::projectfile`), its model read, every file against its sha256.
fn check_project(args: &Args) -> Result<Done> {
    if args.positional.is_empty() {
        return Err(Error::BadConfig(format!("check-project needs a project .zip\n{USAGE}")));
    }
    let mut done = Done { failed: 0, total: args.positional.len() };
    for path in &args.positional {
        match check_project_zip(Path::new(path)) {
            Ok(summary) => println!("{path}\t{summary}"),
            Err(e) => {
                eprintln!("{path}: {e}");
                done.failed += 1;
            }
        }
    }
    Ok(done)
}

fn check_project_zip(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;
    use std::io::Read;
    let damaged = |why: String| Error::ProjectFile(why);
    let file = std::fs::File::open(path).map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| damaged(format!("it is not a readable ZIP file ({e})")))?;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| damaged(format!("it is a damaged ZIP file ({e})")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map_err(|e| damaged(format!("a file's name cannot be read ({e})")))?.to_string();
        let mut bytes = vec![];
        entry.read_to_end(&mut bytes).map_err(|e| damaged(format!("{name} cannot be read ({e})")))?;
        files.insert(name, bytes);
    }
    let json = files.remove("project.json").ok_or_else(|| damaged("it has no project.json: it is not a Fewshot project".into()))?;
    let json = String::from_utf8(json).map_err(|_| damaged("its project.json is not text".into()))?;
    let sizes: BTreeMap<String, u64> = files.iter().map(|(name, bytes)| (name.clone(), bytes.len() as u64)).collect();
    // What check() needs from outside the text (the model's bytes), and the checksums it checked
    // the shape of, from one read of it.
    let claimed: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    let model_bytes = claimed["model"]["file"].as_str().and_then(|f| files.get(f)).map(Vec::as_slice);
    let checked = fewshot::projectfile::check(&json, &sizes, model_bytes)?;
    let sums: BTreeMap<String, String> = serde_json::from_value(claimed["checksums"].clone()).unwrap_or_default();
    for (name, bytes) in &files {
        if name == "MODEL_CARD.md" {
            continue;
        }
        let sum: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
        if sums.get(name) != Some(&sum) {
            return Err(damaged(format!("{name} does not match its checksum")));
        }
    }
    let photos: usize = checked.classes.iter().map(|c| c.photos.len()).sum();
    Ok(format!(
        "a Fewshot project: {} classes, {photos} photos, {}",
        checked.classes.len(),
        checked.model.as_ref().map_or("no model".to_string(), |m| format!("a model of {}", m.labels.join(", ")))
    ))
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

/// The settings the options give, each read by its row (`fewshot::settings`).
fn settings(args: &Args) -> Result<Settings> {
    Settings::from_flags(|flag| args.get(flag))
}

fn seeing(args: &Args) -> Result<Seeing> {
    Ok(settings(args)?.seeing())
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
fn embed_files(engine: &Engine, options: View, files: &[PathBuf], what: &str) -> Result<Vec<f32>> {
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

/// The files of a folder (not its subfolders), sorted by name.
fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Io(format!("cannot read {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    Ok(files)
}

fn images(args: &Args) -> Result<Vec<PathBuf>> {
    if args.positional.is_empty() {
        return Err(Error::BadConfig(format!("no image given\n{USAGE}")));
    }
    Ok(args.positional.iter().map(PathBuf::from).collect())
}

fn classify(args: &Args) -> Result<Done> {
    let files = images(args)?;
    let engine = engine(args)?;
    let labels = fewshot::backbone::imagenet_labels();
    let options = views(seeing(args)?)[0];
    let mut done = Done { failed: 0, total: files.len() };
    for path in files {
        let photo = decode_file(&path).and_then(|p| Ok(options.apply(p.rgba()?)));
        let photo = match photo {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                done.failed += 1;
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
    Ok(done)
}

/// Embeddings of a folder of class folders: each photo in its first view, the other views as
/// its variants.
fn embed_folder(engine: &Engine, views: &[View], dir: &Path) -> Result<Dataset> {
    let (labels, files) = class_folders(dir)?;
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let mut data = Dataset::new(labels);
    let embeddings = embed_files(engine, views[0], &paths, &format!("embedding {}", dir.display()))?;
    for (i, (_, class)) in files.iter().enumerate() {
        data.push(&embeddings[i * EMBEDDING_DIM..(i + 1) * EMBEDDING_DIM], *class)?;
    }
    for &view in &views[1..] {
        let embeddings = embed_files(engine, view, &paths, &format!("embedding {} (another view)", dir.display()))?;
        for i in 0..files.len() {
            data.push_variant(&embeddings[i * EMBEDDING_DIM..(i + 1) * EMBEDDING_DIM], i)?;
        }
    }
    Ok(data)
}

/// Write the embeddings of a folder of class folders, each photo's and its mirror image's, as
/// JSON: `{ labels, photos: [{ file, class, embedding, mirrored }] }`. For analysis outside
/// Fewshot (the linear-probe comparison in `tests/probe/probe.py`).
fn embed_command(args: &Args) -> Result<()> {
    let dir = args.positional.first().ok_or_else(|| Error::BadConfig(format!("embed needs a folder\n{USAGE}")))?;
    let out = args.get("o").or(args.get("output")).ok_or_else(|| Error::BadConfig(format!("embed needs -o FILE\n{USAGE}")))?;
    // Every view the page learns (as framed, its mirror image, the closer view and its mirror,
    // as --mirror and --zoom say), as the backbone gives them (a Dataset would scale them as the
    // head reads them): "embedding" is the first, "views" all of them in that order.
    let every_view = views(seeing(args)?);
    let engine = engine(args)?;
    let (labels, files) = class_folders(Path::new(dir))?;
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let embedded: Vec<Vec<f32>> = every_view
        .iter()
        .enumerate()
        .map(|(v, &view)| embed_files(&engine, view, &paths, &format!("embedding {dir} (view {} of {})", v + 1, every_view.len())))
        .collect::<Result<_>>()?;
    let row = |all: &[f32], i: usize| all[i * EMBEDDING_DIM..(i + 1) * EMBEDDING_DIM].to_vec();
    let photos: Vec<serde_json::Value> = files
        .iter()
        .enumerate()
        .map(|(i, (path, class))| {
            let views: Vec<Vec<f32>> = embedded.iter().map(|all| row(all, i)).collect();
            serde_json::json!({ "file": path.display().to_string(), "class": class, "embedding": views[0], "views": views })
        })
        .collect();
    let json = serde_json::json!({ "labels": labels, "photos": photos });
    std::fs::write(out, json.to_string()).map_err(|e| Error::Io(format!("cannot write {out}: {e}")))?;
    eprintln!("wrote {} photos' embeddings to {out}", files.len());
    Ok(())
}

fn train_config(args: &Args) -> Result<TrainConfig> {
    let mut config = settings(args)?.train_config();
    if let Some(seed) = args.number("seed")? {
        config.seed = seed;
    }
    if let Some(penalty) = args.number("penalty")? {
        config.penalty = Some(penalty);
    }
    config.check()?;
    Ok(config)
}

/// Learn from `data` exactly as the page does (train, cross-validate, study), with a progress bar.
fn learn(data: &Dataset, config: &TrainConfig, seeing: Seeing, backbone_sha256: &str) -> Result<Learned> {
    let bar = progress(config.max_steps, "training");
    let learned = Learning::new(data.clone(), config.clone(), seeing, backbone_sha256)?.run(|p| {
        match *p {
            Progress::Training(ref step) => bar.set_position(step.step as u64),
            Progress::Validating { fold, folds } => {
                bar.set_message("cross-validating");
                bar.set_length(folds as u64);
                bar.set_position(fold as u64);
            }
            Progress::Searching => {}
        }
        true
    })?;
    bar.finish_and_clear();
    Ok(learned)
}

/// `count` photos of each class of `data`, drawn at random (all of a class that has fewer),
/// and their indices in `data`.
fn draw(data: &Dataset, count: usize, seed: u64) -> Result<(Dataset, Vec<usize>)> {
    let mut rng = Rng::new(seed);
    let mut chosen = vec![];
    for class in 0..data.labels.len() {
        let mut members: Vec<usize> = (0..data.len()).filter(|&i| data.targets[i] == class).collect();
        rng.shuffle(&mut members);
        chosen.extend(members.into_iter().take(count));
    }
    Ok((data.subset(&chosen)?, chosen))
}

fn mean_and_sd(values: &[f32]) -> (f32, f32) {
    let n = values.len().max(1) as f32;
    let mean = values.iter().sum::<f32>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / (n - 1.0).max(1.0);
    (mean, variance.sqrt())
}

/// Train on `--train`, test on `--test`; with `--shots K[,K...]`, on K random photos a class,
/// `--repeats R` times each, reporting mean ± standard deviation.
fn eval(args: &Args) -> Result<()> {
    let train_dir = args.get("train").ok_or_else(|| Error::BadConfig(format!("eval needs --train DIR\n{USAGE}")))?;
    let test_dir = args.get("test").ok_or_else(|| Error::BadConfig(format!("eval needs --test DIR\n{USAGE}")))?;
    let config = train_config(args)?;
    let shots: Vec<Option<usize>> = match args.get("shots") {
        None => vec![None],
        Some(list) => list
            .split(',')
            .map(|k| match k.trim().parse::<usize>() {
                Ok(k) if k > 0 => Ok(Some(k)),
                _ => Err(Error::BadConfig(format!("--shots takes photos per class, such as 10 or 1,5,10, not \"{list}\""))),
            })
            .collect::<Result<_>>()?,
    };
    let repeats: usize = args.number("repeats")?.unwrap_or(1);
    if repeats == 0 || repeats > 1000 {
        return Err(Error::BadConfig(format!("--repeats must be between 1 and 1000, not {repeats}")));
    }
    let seeing = seeing(args)?;
    let views = views(seeing);
    let engine = engine(args)?;
    let started = Instant::now();
    let all_train = embed_folder(&engine, &views, Path::new(train_dir))?;
    let test_data = embed_folder(&engine, &views, Path::new(test_dir))?;
    // Photos from elsewhere, in every view a prediction uses (flagged by the best, as the page does).
    let foreign = match args.get("foreign") {
        Some(dir) => {
            let paths = images_in(Path::new(dir))?;
            let embedded = views.iter().map(|&v| embed_files(&engine, v, &paths, "embedding foreign photos")).collect::<Result<Vec<_>>>()?;
            Some((0..paths.len()).flat_map(|i| embedded.iter().flat_map(move |e| e[i * EMBEDDING_DIM..(i + 1) * EMBEDDING_DIM].iter().copied())).collect::<Vec<f32>>())
        }
        None => None,
    };
    let harder = match args.get("harder") {
        Some(dir) => Some(embed_folder(&engine, &views, Path::new(dir))?),
        None => None,
    };
    let embed_seconds = started.elapsed().as_secs_f64();
    if test_data.labels != all_train.labels {
        return Err(Error::BadConfig(format!(
            "the class folders differ: train has {:?}, test has {:?}",
            all_train.labels, test_data.labels
        )));
    }
    let whole_photos = |data: &Dataset| data.photos_with_views().ok_or_else(|| Error::Internal("photos embedded in different numbers of views".into()));
    let (test_views, _) = whole_photos(&test_data)?;
    let harder_views = harder.as_ref().map(whole_photos).transpose()?;
    let mut results = vec![];
    let mut last = None;
    for &k in &shots {
        let mut accuracies = vec![];
        let mut estimates = vec![];
        let (mut familiar_flagged, mut unfamiliar_flagged, mut harder_flagged) = (vec![], vec![], vec![]);
        let mut draws = vec![];
        let mut learn_seconds = 0.0;
        for r in 0..repeats {
            let seed = config.seed.wrapping_add(r as u64);
            let (data, chosen) = match k {
                Some(k) => draw(&all_train, k, seed)?,
                None => (all_train.clone(), (0..all_train.len()).collect()),
            };
            draws.push(chosen);
            let started = Instant::now();
            let learned = learn(&data, &TrainConfig { seed, ..config.clone() }, seeing, &engine.weights_sha256)?;
            learn_seconds += started.elapsed().as_secs_f64();
            let classifier = Classifier::new(learned.model);
            let evaluation = classifier.evaluate(&test_data)?;
            accuracies.push(evaluation.accuracy);
            let flagged = |embeddings: &[f32]| -> Result<Option<f32>> {
                Ok(classifier.judge(embeddings, views.len())?.map(|j| j.iter().filter(|u| u.unfamiliar).count() as f32 / j.len() as f32))
            };
            familiar_flagged.extend(flagged(&test_views)?);
            if let Some(foreign) = &foreign {
                unfamiliar_flagged.extend(flagged(foreign)?);
            }
            if let Some((harder, _)) = &harder_views {
                harder_flagged.extend(flagged(harder)?);
            }
            estimates.push(classifier.model.info.validation.as_ref().map(|v| v.evaluation.accuracy));
            last = Some((data.len(), evaluation, classifier.model));
        }
        let (mean, sd) = mean_and_sd(&accuracies);
        let (_, evaluation, model) = last.as_ref().expect("at least one repeat");
        let label = k.map_or("all photos".to_string(), |k| format!("{k} a class"));
        let (familiar, _) = mean_and_sd(&familiar_flagged);
        let (unfamiliar, _) = mean_and_sd(&unfamiliar_flagged);
        let (harder_share, _) = mean_and_sd(&harder_flagged);
        if !args.flag("--json") {
            println!(
                "{label:>12}: test accuracy {:.1} % ± {:.1} over {repeats} draw{} ({:.2} s learning each: train, cross-validate, study){}",
                mean * 100.0,
                sd * 100.0,
                if repeats == 1 { "" } else { "s" },
                learn_seconds / repeats as f64,
                model.info.validation.as_ref().map_or(String::new(), |v| format!("; the page would say {}", v.summary())),
            );
            println!(
                "{:>12}  \"none of these\" flagged {:.1} % of the test photos{}{}",
                "",
                familiar * 100.0,
                if harder.is_some() { format!(", {:.1} % of the --harder photos", harder_share * 100.0) } else { String::new() },
                if foreign.is_some() { format!(", {:.1} % of the --foreign photos", unfamiliar * 100.0) } else { String::new() }
            );
        }
        results.push(serde_json::json!({
            "shots": k, "accuracies": accuracies, "mean": mean, "sd": sd,
            "cross_validated": estimates, "learn_seconds": learn_seconds / repeats as f64,
            "last_per_class": evaluation.per_class,
            "familiar_flagged": familiar, "unfamiliar_flagged": foreign.as_ref().map(|_| unfamiliar),
            "familiar_flagged_hard": harder.as_ref().map(|_| harder_share),
            "draws": draws,
        }));
    }
    let (train_photos, evaluation, _) = last.expect("at least one run");
    if args.flag("--json") {
        let out = serde_json::json!({
            "accuracy": results.last().map(|r| r["mean"].clone()),
            "results": results,
            "per_class": evaluation.per_class,
            "confusion": evaluation.confusion,
            "labels": test_data.labels,
            "train_photos": train_photos,
            "test_photos": test_data.len(),
            "embed_seconds": embed_seconds,
        });
        println!("{out}");
    } else if shots.len() == 1 && repeats == 1 {
        println!("\ntrained on {train_photos} photos, tested on {} ({embed_seconds:.1} s embedding)\n", test_data.len());
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
    let seeing = seeing(args)?;
    let engine = engine(args)?;
    let data = embed_folder(&engine, &views(seeing), Path::new(dir))?;
    let Learned { model, validation, duplicates, .. } = learn(&data, &config, seeing, &engine.weights_sha256)?;
    for &i in validation.iter().flat_map(|cv| &cv.suspicious) {
        let cv = validation.as_ref().expect("suspicious photos come from a validation");
        eprintln!(
            "check photo {} of \"{}\": the other photos say it looks like \"{}\" ({:.0} %)",
            i + 1,
            data.labels[data.targets[i]],
            data.labels[cv.predictions[i]],
            cv.confidence[i] * 100.0
        );
    }
    for (i, j) in duplicates {
        eprintln!(
            "photos {} (\"{}\") and {} (\"{}\") are nearly the same photo",
            i + 1,
            data.labels[data.targets[i]],
            j + 1,
            data.labels[data.targets[j]]
        );
    }
    std::fs::write(output, model.to_bytes()?).map_err(|e| Error::Io(format!("cannot write {output}: {e}")))?;
    match &model.info.validation {
        Some(v) => eprintln!("accuracy on new photos: {}; model written to {output}", v.summary()),
        None => eprintln!("model written to {output} (give every class 2 photos or more to estimate its accuracy)"),
    }
    Ok(())
}

fn predict(args: &Args) -> Result<Done> {
    let path = args.get("model").ok_or_else(|| Error::BadConfig(format!("predict needs --model MODEL\n{USAGE}")))?;
    let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("cannot read {path}: {e}")))?;
    let classifier = Classifier::new(Model::from_bytes(&bytes)?);
    let files = images(args)?;
    let engine = engine(args)?;
    if classifier.info().backbone_sha256 != engine.weights_sha256 {
        eprintln!("warning: the model was trained on embeddings of another backbone file; predictions may be wrong");
    }
    let views = classifier.views();
    let mut done = Done { failed: 0, total: files.len() };
    for path in files {
        let embedded: Result<Vec<Vec<f32>>> = views.iter().map(|&v| embed_files(&engine, v, std::slice::from_ref(&path), "embedding")).collect();
        let embedding = match embedded {
            Ok(e) => e.concat(),
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                done.failed += 1;
                continue;
            }
        };
        let predictions = &classifier.predict(&embedding)?;
        let shown: Vec<String> = predictions.iter().map(|p| format!("{} {:.3}", p.label, p.probability)).collect();
        let verdict = match classifier.judge(&embedding, views.len())? {
            Some(j) if j[0].near_line => "\tprobably none of these (unlike every class, but near the line)",
            Some(j) if j[0].unfamiliar => "\tnone of these (unlike every class)",
            _ => "",
        };
        println!("{}\t{}{verdict}", path.display(), shown.join(" | "));
    }
    Ok(done)
}

/// The model as a file another runtime reads: for now TFLite, with the backbone it was trained on.
fn export_command(args: &Args) -> Result<()> {
    let [model_path] = args.positional.as_slice() else {
        return Err(Error::BadConfig(format!("export needs one MODEL file\n{USAGE}")));
    };
    let output = args.get("o").or(args.get("output")).ok_or_else(|| Error::BadConfig(format!("export needs -o FILE\n{USAGE}")))?;
    match args.get("format") {
        Some("tflite") => {}
        Some(other) => return Err(Error::BadConfig(format!("--format takes tflite, not \"{other}\""))),
        None => return Err(Error::BadConfig(format!("export needs --format tflite\n{USAGE}"))),
    }
    let bytes = std::fs::read(model_path).map_err(|e| Error::Io(format!("cannot read {model_path}: {e}")))?;
    let classifier = Classifier::new(Model::from_bytes(&bytes)?);
    let path = weights_path(args)?;
    let weights = std::fs::read(&path).map_err(|e| Error::Io(format!("cannot read the weights {}: {e}", path.display())))?;
    let arithmetic = Arithmetic::parse(args.get("arithmetic").unwrap_or("float"))?;
    let file = fewshot::export::tflite(&weights, &classifier, arithmetic)?;
    std::fs::write(output, &file).map_err(|e| Error::Io(format!("cannot write {output}: {e}")))?;
    eprintln!("wrote {output} ({:.1} MB): input uint8 [1, 224, 224, 3], output the probabilities of {}", file.len() as f64 / 1e6, classifier.info().labels.join(", "));
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
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The kernels on the best instructions this processor has, then on the portable ones (the
    // browser's kind of SIMD) where they differ.
    let mut kinds = Instructions::available();
    let best = kinds.pop().expect("the portable instructions are always there");
    let mut engines = vec![(format!("cpu: Fewshot's kernels, {} ({cores} cores at batch 16)", best.name()), Engine::new(&bytes, device::cpu())?)];
    if let Some(&portable) = kinds.first() {
        engines.push((format!("cpu: Fewshot's kernels, {} (128 bits, as in the browser)", portable.name()), Engine::new_on_instructions(&bytes, portable)?));
    }
    engines.push(("cpu: Burn's flex operators (before the kernels)".to_string(), Engine::new_on_burn(&bytes, device::cpu())?));
    match device::native_adapter() {
        Some((name, _)) => match pollster::block_on(device::gpu()) {
            Ok(d) => engines.push((format!("gpu: {name}"), Engine::new(&bytes, d)?)),
            Err(e) => eprintln!("gpu skipped: {e}"),
        },
        None => eprintln!("gpu skipped: no adapter"),
    }
    if let Ok(only) = std::env::var("FEWSHOT_BENCH_ONLY") {
        engines.retain(|(name, _)| name.contains(&only));
    }
    println!("{:<64} {:>10} {:>12} {:>12}", "device", "first (s)", "batch 1/s", "batch 16/s");
    for (name, engine) in engines {
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
        println!("{name:<64} {first:>10.2} {:>12.1} {:>12.1}", rates[0], rates[1]);
    }
    // The head: synthetic embeddings of 10 classes, trained to convergence, then
    // cross-validated, as the page does (the browser bench measures the same in wasm).
    println!("\n{:<64} {:>10} {:>12} {:>12}", "head, 10 classes", "steps", "train (s)", "+ check (s)");
    for n in [100, 1000, 10_000] {
        let mut data = Dataset::new((0..10).map(|c| format!("c{c}")).collect());
        for i in 0..n {
            let e: Vec<f32> = (0..EMBEDDING_DIM).map(|d| rng.next_f32() + if d % 10 == i % 10 { 0.5 } else { 0.0 }).collect();
            data.push(&e, i % 10)?;
        }
        let started = Instant::now();
        let trained = train(&data, TrainConfig::default(), |_| true)?;
        let training = started.elapsed().as_secs_f64();
        let started = Instant::now();
        cross_validate(&data, &TrainConfig::default(), Some(&trained.weights), |_, _| true)?;
        let checking = started.elapsed().as_secs_f64();
        println!("{:<64} {:>10} {training:>12.3} {checking:>12.3}", format!("{n} embeddings"), trained.history.len());
    }
    Ok(())
}
