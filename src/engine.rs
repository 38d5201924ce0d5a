//! The engine: the backbone on a device, turning preprocessed photos into embeddings (and
//! feature maps, and its own ImageNet probabilities). Shared by the CLI and the page; what a
//! trained head makes of the embeddings is [`crate::classifier`]'s.

use burn::prelude::*;
use sha2::{Digest, Sha256};

use crate::backbone::kernels::{Instructions, Network};
use crate::backbone::{pool, tflite, Backbone, IMAGENET_CLASSES, KNOWN_SHA256};
use crate::error::{Error, Result};
use crate::matrix::softmax_rows;
use crate::preprocess::{INPUT_LEN, INPUT_SIDE};

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
    /// preprocessed photos: the maps give [`crate::classifier::Classifier::heatmap`].
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
