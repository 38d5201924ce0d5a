//! MobileNetV2 on the CPU: the kernels of this folder, layer after layer, on the instructions
//! the network was given (the best this processor has unless told otherwise).

use wide::bytemuck;

use super::{Depthwise, Instructions, Map, Pointwise, Simd, Stem};
use crate::backbone::tflite::Op;
use crate::backbone::{checked_convolutions, EMBEDDING_DIM, FEATURE_SIDE, IMAGENET_CLASSES};
use crate::error::Result;
use crate::preprocess::INPUT_SIDE;

/// Expand 1x1 (optional) → depthwise 3x3 → project 1x1, plus the input where shapes allow.
struct Block {
    expand: Option<Pointwise>,
    depthwise: Depthwise,
    project: Pointwise,
    residual: bool,
}

impl Block {
    fn run(&self, simd: Simd, x: &Map) -> Map {
        let expanded;
        let hidden = match &self.expand {
            Some(expand) => {
                let mut map = Map::new(x.height, x.width, expand.outputs);
                expand.run(simd, x.values(), x.pixels(), None, bytemuck::cast_slice_mut(&mut map.data));
                expanded = map;
                &expanded
            }
            None => x,
        };
        let y = self.depthwise.run(simd, hidden);
        let mut out = Map::new(y.height, y.width, self.project.outputs);
        let residual = self.residual.then(|| x.values());
        self.project.run(simd, y.values(), y.pixels(), residual, bytemuck::cast_slice_mut(&mut out.data));
        out
    }
}

/// MobileNetV2 on the CPU.
pub struct Network {
    stem: Stem,
    blocks: Vec<Block>,
    features: Pointwise,
    classifier: Pointwise,
    simd: Simd,
}

impl Network {
    /// From the operators of a TFLite graph, each checked against MobileNetV2 1.0.
    pub fn from_ops(ops: &[Op]) -> Result<Self> {
        let (convs, blocks) = checked_convolutions(ops)?;
        let mut convs = convs.iter();
        let mut next = || *convs.next().expect("checked against the architecture");
        let stem = Stem::from_op(next());
        let blocks = blocks
            .iter()
            .map(|&(expands, residual)| {
                let expand = expands.then(|| Pointwise::from_op(next()));
                let depthwise = Depthwise::from_op(next());
                let project = Pointwise::from_op(next());
                Block { expand, depthwise, project, residual }
            })
            .collect();
        let features = Pointwise::from_op(next());
        let classifier = Pointwise::from_op(next());
        Ok(Network { stem, blocks, features, classifier, simd: Simd::best() })
    }

    /// Run on other instructions than the best (to compare them: `fewshot bench`, the tests).
    pub fn use_instructions(&mut self, instructions: Instructions) {
        self.simd = instructions.0;
    }

    /// The instructions its kernels run on.
    pub fn instructions(&self) -> Instructions {
        Instructions(self.simd)
    }

    /// The last feature map of one photo (`[3, 224, 224]`, channel-major, as preprocessed):
    /// `7 x 7` pixels of 1280 values.
    pub fn feature_map(&self, photo: &[f32]) -> Map {
        let plane = INPUT_SIDE * INPUT_SIDE;
        let mut rgb = vec![0.0; 3 * plane];
        for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
            for (c, v) in px.iter_mut().enumerate() {
                *v = photo[c * plane + i];
            }
        }
        let mut x = self.stem.run(self.simd, &rgb, INPUT_SIDE);
        for block in &self.blocks {
            x = block.run(self.simd, &x);
        }
        let mut map = Map::new(x.height, x.width, self.features.outputs);
        self.features.run(self.simd, x.values(), x.pixels(), None, bytemuck::cast_slice_mut(&mut map.data));
        assert_eq!((map.height, map.width), (FEATURE_SIDE, FEATURE_SIDE));
        map
    }

    /// The average of a feature map's pixels: the embedding.
    pub fn pool(map: &Map) -> Vec<f32> {
        let mut sum = vec![0.0f32; map.channels];
        for pixel in map.values().chunks_exact(map.channels) {
            sum.iter_mut().zip(pixel).for_each(|(s, v)| *s += v);
        }
        let n = map.pixels() as f32;
        sum.iter_mut().for_each(|s| *s /= n);
        sum
    }

    /// The backbone's ImageNet logits `[n * 1001]` for embeddings `[n * 1280]`.
    pub fn imagenet_logits(&self, embeddings: &[f32]) -> Vec<f32> {
        let n = embeddings.len() / EMBEDDING_DIM;
        let mut out = vec![0.0; n * IMAGENET_CLASSES];
        self.classifier.run(self.simd, embeddings, n, None, &mut out);
        out
    }
}
