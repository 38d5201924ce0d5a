//! The engine: the backbone on a device, turning preprocessed photos into embeddings, and a
//! trained [`Classifier`] turning embeddings into predictions. Shared by the CLI and the page.

use burn::prelude::*;
use sha2::{Digest, Sha256};

use crate::backbone::kernels::{Instructions, Network};
use crate::backbone::{pool, tflite, Backbone, EMBEDDING_DIM, FEATURE_SIDE, IMAGENET_CLASSES, KNOWN_SHA256};
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::evaluate::Evaluation;
use crate::familiar::Unfamiliarity;
use crate::head::scale_to_input_length;
use crate::matrix::{argmax_rows, softmax_rows};
use crate::model::{Model, ModelInfo};
use crate::predict::{top_k, Prediction};
use crate::preprocess::{Preprocess, INPUT_LEN, INPUT_SIDE};

/// The frozen backbone on its device.
pub struct Engine {
    backbone: Net,
    device: Device,
    /// sha256 of the weights file, hex.
    pub weights_sha256: String,
}

impl Engine {
    /// Load the backbone from the bytes of its `.tflite` file onto `device`.
    pub fn new(weights: &[u8], device: Device) -> Result<Self> {
        Self::build(weights, device, false)
    }

    /// The same with Burn's own operators on any device, the CPU included: what Fewshot ran
    /// before its kernels, kept to compare against (`fewshot bench`, the tests).
    pub fn new_on_burn(weights: &[u8], device: Device) -> Result<Self> {
        Self::build(weights, device, true)
    }

    /// On the CPU with Fewshot's kernels on `instructions` rather than the best this processor
    /// has: to compare them (the tests run the fixtures on each).
    pub fn new_on_instructions(weights: &[u8], instructions: Instructions) -> Result<Self> {
        let mut engine = Self::new(weights, crate::device::cpu())?;
        if let Net::Cpu(network) = &mut engine.backbone {
            network.use_instructions(instructions);
        }
        Ok(engine)
    }

    fn build(weights: &[u8], device: Device, burn: bool) -> Result<Self> {
        let ops = tflite::read_ops(weights)?;
        let backbone = if crate::device::is_cpu(&device) && !burn {
            Net::Cpu(Box::new(Network::from_ops(&ops)?))
        } else {
            Net::Burn(Box::new(Backbone::from_ops(&ops, &device)?))
        };
        Ok(Engine { backbone, device, weights_sha256: sha256_hex(weights) })
    }

    /// The instructions Fewshot's CPU kernels run on; none when the backbone runs on Burn.
    pub fn instructions(&self) -> Option<Instructions> {
        match &self.backbone {
            Net::Cpu(network) => Some(network.instructions()),
            Net::Burn(_) => None,
        }
    }

    /// Whether the weights are the published MobileNetV2 file; a warning, not an error, since
    /// a file of the same architecture works.
    pub fn weights_warning(&self) -> Option<String> {
        (self.weights_sha256 != KNOWN_SHA256).then(|| {
            format!(
                "the weights file's sha256 is {}, not the published {KNOWN_SHA256}: embeddings will differ from other Fewshot installs",
                self.weights_sha256
            )
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Embeddings of preprocessed photos (each `[3, 224, 224]`, see [`crate::preprocess`]),
    /// one after the other in a `[n * 1280]` vector. On a GPU, reads back once, asynchronously.
    pub async fn embed(&self, photos: &[Vec<f32>]) -> Result<Vec<f32>> {
        check_photos(photos)?;
        match &self.backbone {
            Net::Cpu(net) => Ok(on_cores(photos, |photo| Network::pool(&net.feature_map(photo))).concat()),
            Net::Burn(backbone) => read(backbone.embed(self.input(photos))).await,
        }
    }

    /// Embeddings `[n * 1280]` and last feature maps `[n * 1280 * 7 * 7]` (channel-major) of
    /// preprocessed photos: the maps give [`Classifier::heatmap`].
    pub async fn embed_with_maps(&self, photos: &[Vec<f32>]) -> Result<(Vec<f32>, Vec<f32>)> {
        check_photos(photos)?;
        match &self.backbone {
            Net::Cpu(net) => {
                let (mut embeddings, mut maps) = (Vec::new(), Vec::new());
                for map in on_cores(photos, |photo| net.feature_map(photo)) {
                    embeddings.extend(Network::pool(&map));
                    // Pixel-major to channel-major.
                    let regions = map.height * map.width;
                    let values = map.values();
                    maps.extend((0..map.channels).flat_map(|c| (0..regions).map(move |r| values[r * map.channels + c])));
                }
                Ok((embeddings, maps))
            }
            Net::Burn(backbone) => {
                let map = backbone.feature_map(self.input(photos));
                let embeddings = pool(map.clone());
                Ok((read(embeddings).await?, read(map).await?))
            }
        }
    }

    /// The backbone's own ImageNet probabilities, `[n * 1001]`.
    pub async fn imagenet(&self, photos: &[Vec<f32>]) -> Result<Vec<f32>> {
        let mut probabilities = match &self.backbone {
            Net::Cpu(net) => net.imagenet_logits(&self.embed(photos).await?),
            Net::Burn(backbone) => {
                check_photos(photos)?;
                read(backbone.imagenet_logits(backbone.embed(self.input(photos)))).await?
            }
        };
        softmax_rows(&mut probabilities, IMAGENET_CLASSES);
        Ok(probabilities)
    }

    /// Run one photo through the backbone so that shaders are compiled before the first real
    /// photo arrives.
    pub async fn warm_up(&self) -> Result<()> {
        self.embed(&[vec![0.0; INPUT_LEN]]).await.map(|_| ())
    }

    /// Checked photos as one tensor on the device.
    ///
    /// # Shapes
    ///   - Output [n, 3, 224, 224]
    fn input(&self, photos: &[Vec<f32>]) -> Tensor<4> {
        let flat: Vec<f32> = photos.concat();
        Tensor::from_data(TensorData::new(flat, [photos.len(), 3, INPUT_SIDE, INPUT_SIDE]), &self.device)
    }
}

/// How the backbone runs: Fewshot's own kernels on the CPU ([`crate::backbone::kernels`]),
/// or Burn's operators (on a GPU; on the CPU only to compare, see [`Engine::new_on_burn`]).
enum Net {
    Cpu(Box<Network>),
    Burn(Box<Backbone>),
}

fn check_photos(photos: &[Vec<f32>]) -> Result<()> {
    if photos.is_empty() || photos.iter().any(|p| p.len() != INPUT_LEN) {
        return Err(Error::BadConfig(format!("expected 1 or more preprocessed photos of {INPUT_LEN} values")));
    }
    Ok(())
}

/// `work` on each photo, in order; natively the photos are dealt across the machine's cores
/// (in the browser, each worker of the page's pool is one core).
fn on_cores<T: Send>(photos: &[Vec<f32>], work: impl Fn(&[f32]) -> T + Sync) -> Vec<T> {
    #[cfg(not(target_family = "wasm"))]
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(photos.len());
        if cores > 1 {
            let share = photos.len().div_ceil(cores);
            return std::thread::scope(|scope| {
                let work = &work;
                let handles: Vec<_> = photos
                    .chunks(share)
                    .map(|chunk| scope.spawn(move || chunk.iter().map(|p| work(p)).collect::<Vec<T>>()))
                    .collect();
                handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
            });
        }
    }
    photos.iter().map(|p| work(p)).collect()
}

/// Read a tensor back to the CPU without blocking (the only way that works on WebGPU).
async fn read<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    let data = tensor.into_data_async().await.map_err(|e| Error::Gpu(format!("reading results back failed: {e:?}")))?;
    data.try_into_vec::<f32>().map_err(|e| Error::Gpu(format!("unexpected result type: {e:?}")))
}

/// Hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A trained head with its labels, ready to predict: a small matrix product on the CPU.
pub struct Classifier {
    pub model: Model,
}

impl Classifier {
    pub fn new(model: Model) -> Self {
        Classifier { model }
    }

    pub fn info(&self) -> &ModelInfo {
        &self.model.info
    }

    /// The views of a photo this model averages over: embed each, in this order.
    pub fn views(&self) -> Vec<Preprocess> {
        let info = &self.model.info;
        if info.views.is_empty() {
            vec![info.preprocess]
        } else {
            info.views.clone()
        }
    }

    /// All classes with their probabilities, most likely first, for one photo from the
    /// embeddings of one or more of its [`Classifier::views`] (`[v * 1280]`, averaged).
    pub fn predict(&self, views: &[f32]) -> Result<Vec<Prediction>> {
        let p = self.probabilities(views)?;
        let labels = &self.model.info.labels;
        let k = labels.len();
        let v = p.len() / k;
        let mean: Vec<f32> = (0..k).map(|c| p.chunks_exact(k).map(|row| row[c]).sum::<f32>() / v as f32).collect();
        Ok(top_k(&mean, labels, k))
    }

    /// Accuracy, per-class figures and confusion on labelled embeddings whose labels are this
    /// model's; each photo's variants (its other views) are averaged in, as in [`Classifier::predict`].
    pub fn evaluate(&self, data: &Dataset) -> Result<Evaluation> {
        if data.labels != self.model.info.labels {
            return Err(Error::BadConfig("the test photos' classes differ from the model's".into()));
        }
        let k = data.labels.len();
        let mut sums = self.probabilities(&data.embeddings)?;
        let mut counts = vec![1.0f32; data.len()];
        if !data.variant_of.is_empty() {
            let extra = self.probabilities(&data.variants)?;
            for (row, &of) in extra.chunks_exact(k).zip(&data.variant_of) {
                sums[of * k..(of + 1) * k].iter_mut().zip(row).for_each(|(s, p)| *s += p);
                counts[of] += 1.0;
            }
        }
        sums.chunks_exact_mut(k).zip(&counts).for_each(|(row, &n)| row.iter_mut().for_each(|p| *p /= n));
        let predicted = argmax_rows(&sums, k);
        Ok(Evaluation::new(&data.labels, &data.targets, &predicted))
    }

    /// For each photo of `[n * views * 1280]` embeddings (each photo's views one after the
    /// other, the first as framed), how unlike the training photos it is ("none of these", by
    /// its best view: [`crate::familiar`]); `None` for a model without the training photos'
    /// fingerprints.
    pub fn judge(&self, embeddings: &[f32], views: usize) -> Result<Option<Vec<Unfamiliarity>>> {
        check_embeddings(embeddings)?;
        if views == 0 || embeddings.len() % (views * EMBEDDING_DIM) != 0 {
            return Err(Error::BadConfig(format!("{} values are not whole photos of {views} views", embeddings.len())));
        }
        Ok(self.model.familiarity.as_ref().map(|f| f.judge(embeddings, views)))
    }

    /// Where in the photo the head saw `class`: its logit for each of the 7x7 regions of a
    /// last feature map (`[1280 * 49]`, channel-major, from [`Engine::embed_with_maps`]),
    /// scaled to [0, 1], row by row from the top left. For a softmax regression this is the
    /// class-activation map (Zhou et al. 2016): the head's weights applied to each region.
    pub fn heatmap(&self, map: &[f32], class: usize) -> Result<Vec<f32>> {
        let regions = FEATURE_SIDE * FEATURE_SIDE;
        if map.len() != EMBEDDING_DIM * regions {
            return Err(Error::BadConfig(format!("a feature map has {} values, not {}", map.len(), EMBEDDING_DIM * regions)));
        }
        let k = self.model.info.labels.len();
        if class >= k {
            return Err(Error::BadConfig(format!("class {class} but the model has {k}")));
        }
        let mut by_region = vec![0.0; regions * EMBEDDING_DIM];
        for (c, channel) in map.chunks_exact(regions).enumerate() {
            for (r, &v) in channel.iter().enumerate() {
                by_region[r * EMBEDDING_DIM + c] = v;
            }
        }
        let logits = self.model.head.logits(&by_region);
        let heat: Vec<f32> = logits.chunks_exact(k).map(|row| row[class]).collect();
        let (low, high) = heat.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        let span = (high - low).max(1e-6);
        Ok(heat.iter().map(|v| (v - low) / span).collect())
    }

    /// Softmax probabilities `[n * classes]`.
    pub fn probabilities(&self, embeddings: &[f32]) -> Result<Vec<f32>> {
        check_embeddings(embeddings)?;
        let mut p = if self.model.info.scaled_input {
            let mut scaled = embeddings.to_vec();
            scale_to_input_length(&mut scaled);
            self.model.head.logits(&scaled)
        } else {
            self.model.head.logits(embeddings)
        };
        softmax_rows(&mut p, self.model.info.labels.len());
        Ok(p)
    }
}

/// Embeddings a caller hands in: one or more rows of 1,280 finite numbers.
fn check_embeddings(embeddings: &[f32]) -> Result<()> {
    if embeddings.is_empty() || !embeddings.len().is_multiple_of(EMBEDDING_DIM) {
        return Err(Error::BadConfig(format!("embeddings must be a multiple of {EMBEDDING_DIM} values")));
    }
    if embeddings.iter().any(|v| !v.is_finite()) {
        return Err(Error::BadConfig("an embedding holds a value that is not a finite number".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::{HeadShape, HeadWeights};
    use crate::model::ModelInfo;
    use crate::preprocess::Preprocess;
    use crate::rng::Rng;

    #[test]
    fn the_heatmap_peaks_where_the_class_features_are() {
        // Class 1 is "channel 0 is high"; the map has channel 0 high in region row 2, column 5.
        let shape = HeadShape { classes: 2, hidden: 0 };
        let mut head = HeadWeights::init(shape, &mut Rng::new(1));
        head.layers[0].0[1] = 1.0; // weight [input 0, class 1]
        let info = ModelInfo {
            labels: vec!["a".into(), "b".into()],
            backbone_sha256: String::new(),
            preprocess: Preprocess::default(),
            views: vec![],
            hidden_units: 0,
            scaled_input: true,
            unfamiliar_threshold: None,
            validation: None,
            penalty: 0.0,
            photos_per_class: vec![1, 1],
            created_unix_ms: 0,
        };
        let classifier = Classifier::new(Model { info, head, familiarity: None });
        let regions = FEATURE_SIDE * FEATURE_SIDE;
        let mut map = vec![0.1; EMBEDDING_DIM * regions];
        map[2 * FEATURE_SIDE + 5] = 3.0; // channel 0, region (2, 5)
        let heat = classifier.heatmap(&map, 1).unwrap();
        assert_eq!(heat.len(), 49);
        let peak = heat.iter().enumerate().fold(0, |best, (i, &v)| if v > heat[best] { i } else { best });
        assert_eq!(peak, 2 * FEATURE_SIDE + 5);
        assert_eq!(heat[peak], 1.0);
        assert!(classifier.heatmap(&map[1..], 1).is_err());
        assert!(classifier.heatmap(&map, 2).is_err());
    }

    #[test]
    fn a_model_of_scaled_input_answers_the_same_for_any_length_and_an_older_one_does_not() {
        let mut model = crate::model::tests::model(0);
        let mut rng = Rng::new(5);
        model.head.layers[0].0.iter_mut().for_each(|w| *w = rng.next_f32() - 0.5);
        let x: Vec<f32> = (0..EMBEDDING_DIM).map(|i| ((i * 7919) % 13) as f32 / 13.0).collect();
        let longer: Vec<f32> = x.iter().map(|v| v * 3.0).collect();
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| (p - q).abs() < 1e-5);
        let scaled = Classifier::new(model.clone());
        assert!(close(&scaled.probabilities(&x).unwrap(), &scaled.probabilities(&longer).unwrap()));
        model.info.scaled_input = false;
        let older = Classifier::new(model);
        assert!(!close(&older.probabilities(&x).unwrap(), &older.probabilities(&longer).unwrap()));
    }
}
