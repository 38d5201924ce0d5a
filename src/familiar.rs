//! "None of these": how unlike every photo the head was trained on a new photo is, so that a
//! model of two classes does not call a tulip an ant or a bee.
//!
//! The score is the mean cosine distance from the photo's embedding to its [`NEIGHBOURS`]
//! nearest training photos. Its threshold is fitted on the project's own photos by
//! leave-one-out: each photo's score against the others, and the threshold at their
//! [`FAMILIAR_QUANTILE`] quantile, so that about 2.5 % of photos like the training ones are
//! flagged. Measured on clothing-small (README): with 2 to 30 photos a class, 1-3 % of its own
//! test photos flagged, 90-94 % of photos from elsewhere (the fixture photos and scikit-image's
//! samples). It tells "not like anything here", not "a kind of thing here that is missing": a
//! clothing class left out of training was flagged for under 1 % of its photos.
//!
//! Of the alternatives measured, this was best: centring the embeddings first flagged 45 % of
//! foreign photos, a distance to class means 10 %, a Mahalanobis distance with a shrunk
//! covariance could not be thresholded on the training photos themselves.
//!
//! The model file keeps each training photo's embedding, unit length and quantised to 8 bits
//! (1,280 bytes a photo; at most [`MAX_REFERENCES`], drawn evenly from the classes).

use serde::{Deserialize, Serialize};

use crate::backbone::EMBEDDING_DIM;
use crate::dataset::Dataset;
use crate::matrix::{matmul, Stored};
use crate::rng::Rng;

/// Nearest training photos the score averages over.
pub const NEIGHBOURS: usize = 3;
/// The share of the project's own photos (left out in turn) scored below the threshold.
pub const FAMILIAR_QUANTILE: f32 = 0.975;
/// The most training photos a model keeps for the score.
pub const MAX_REFERENCES: usize = 2000;
/// Fewer photos than this and the threshold means nothing: no score.
pub const MIN_PHOTOS: usize = 4;

/// The training photos' embeddings and the fitted threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Familiarity {
    /// `[n, 1280]`, each row of unit length.
    references: Vec<f32>,
    pub threshold: f32,
}

/// How unfamiliar a photo is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unfamiliarity {
    /// Mean cosine distance to the nearest training photos (0 = the same photo).
    pub score: f32,
    /// The score above which a photo is called unlike every class.
    pub threshold: f32,
    /// `score > threshold`: "none of these".
    pub unfamiliar: bool,
}

impl Familiarity {
    /// Fit on a dataset's photos (not its augmented variants); `None` with too few photos.
    pub fn fit(data: &Dataset, seed: u64) -> Option<Self> {
        study(data, seed).0
    }

    /// Rebuild from a model file's parts: quantised references and their scales.
    pub fn from_parts(quantised: &[u8], scales: &[f32], threshold: f32) -> Option<Self> {
        if quantised.len() != scales.len() * EMBEDDING_DIM || scales.is_empty() || !threshold.is_finite() {
            return None;
        }
        let references = quantised
            .chunks_exact(EMBEDDING_DIM)
            .zip(scales)
            .flat_map(|(row, &scale)| unit(&row.iter().map(|&q| q as f32 * scale).collect::<Vec<_>>()))
            .collect();
        Some(Familiarity { references, threshold })
    }

    /// The references quantised to 8 bits, one scale per row (embeddings are never negative:
    /// they are averages of ReLU6 outputs).
    pub fn to_parts(&self) -> (Vec<u8>, Vec<f32>) {
        let mut quantised = Vec::with_capacity(self.references.len());
        let mut scales = vec![];
        for row in self.references.chunks_exact(EMBEDDING_DIM) {
            let max = row.iter().fold(0.0f32, |m, &v| m.max(v)).max(f32::MIN_POSITIVE);
            scales.push(max / 255.0);
            quantised.extend(row.iter().map(|&v| (v.max(0.0) / max * 255.0).round() as u8));
        }
        (quantised, scales)
    }

    pub fn references(&self) -> usize {
        self.references.len() / EMBEDDING_DIM
    }

    /// Scores of `[n, 1280]` embeddings.
    pub fn judge(&self, embeddings: &[f32]) -> Vec<Unfamiliarity> {
        let n = embeddings.len() / EMBEDDING_DIM;
        let m = self.references();
        let queries: Vec<f32> = embeddings.chunks_exact(EMBEDDING_DIM).flat_map(unit).collect();
        let mut similarity = vec![0.0; n * m];
        matmul(&mut similarity, false, &queries, Stored::AsIs, &self.references, Stored::Transposed, n, EMBEDDING_DIM, m);
        similarity
            .chunks_exact(m)
            .map(|row| {
                let score = mean_distance_of_nearest(row.iter().copied());
                Unfamiliarity { score, threshold: self.threshold, unfamiliar: score > self.threshold }
            })
            .collect()
    }
}

/// Cosine similarity from which two photos count as nearly the same photo. A photo and its
/// own mirror image measured 0.91 to 0.98 (median 0.955) on clothing-small, two different
/// photos at most 0.90.
pub const DUPLICATE_SIMILARITY: f32 = 0.97;
/// The most near-duplicate pairs reported.
pub const MAX_DUPLICATES: usize = 100;
/// Projects up to this many photos are searched for near-duplicates: the search compares every
/// pair (n² x 1,280 multiply-adds: 2,000 photos take about a second in the browser, 10,000 took
/// ten), the same comparison that fits the familiarity threshold, so it is done once for both.
pub const MAX_DUPLICATE_SEARCH: usize = MAX_REFERENCES;

/// What a study finds: the fingerprints for "none of these" (when there are photos enough)
/// and the pairs of photos that are nearly the same photo.
pub type Studied = (Option<Familiarity>, Vec<(usize, usize)>);

/// What a project's photos say about themselves, from one comparison of every photo (every
/// reference, above [`MAX_REFERENCES`]) with every other: how unfamiliar new photos are
/// (`None` with fewer than [`MIN_PHOTOS`]), and the pairs of photos `(i, j)`, `i < j`, that are
/// nearly the same photo (re-saved, resized, a burst: in one class they count twice, in two
/// classes they contradict each other), not searched above [`MAX_DUPLICATE_SEARCH`] photos.
pub fn study(data: &Dataset, seed: u64) -> Studied {
    study_on(data, seed, MAX_REFERENCES)
}

/// [`study`] on at most `max_references` photos: below all of them, no duplicates are searched.
pub fn study_on(data: &Dataset, seed: u64, max_references: usize) -> Studied {
    let mut study = Study::new(data, seed, max_references);
    while study.step() {}
    study.finish(data)
}

/// Rows of the comparison a [`Study::step`] does: on 2,000 photos, a step is an eighth of it.
pub const STUDY_ROWS: usize = 250;

/// [`study`] a block of rows at a time, so that the page's worker can answer a stop between
/// two (the whole of 2,000 photos is 0.15 s natively, more in the browser).
pub struct Study {
    /// The references' unit embeddings, `[n, 1280]`.
    references: Vec<f32>,
    n: usize,
    /// Rows compared so far.
    done: usize,
    search_duplicates: bool,
    duplicates: Vec<(usize, usize)>,
    /// Each reference's leave-one-out score.
    scores: Vec<f32>,
}

impl Study {
    pub fn new(data: &Dataset, seed: u64, max_references: usize) -> Self {
        let chosen = references(data, seed, max_references.clamp(MIN_PHOTOS, MAX_REFERENCES));
        let n = chosen.len();
        Study {
            references: chosen.iter().flat_map(|&i| unit(data.embedding(i))).collect(),
            n,
            done: 0,
            search_duplicates: n == data.len() && n <= MAX_DUPLICATE_SEARCH,
            duplicates: vec![],
            scores: Vec::with_capacity(n),
        }
    }

    /// Compare the next [`STUDY_ROWS`] references with all of them; `false` once all are done.
    pub fn step(&mut self) -> bool {
        let (n, start) = (self.n, self.done);
        if start >= n {
            return false;
        }
        let rows = STUDY_ROWS.min(n - start);
        let block = &self.references[start * EMBEDDING_DIM..(start + rows) * EMBEDDING_DIM];
        let mut similarity = vec![0.0; rows * n];
        matmul(&mut similarity, false, block, Stored::AsIs, &self.references, Stored::Transposed, rows, EMBEDDING_DIM, n);
        for (r, row) in similarity.chunks_exact(n).enumerate() {
            let i = start + r;
            if self.search_duplicates {
                for (j, &s) in row.iter().enumerate().skip(i + 1) {
                    if s >= DUPLICATE_SIMILARITY && self.duplicates.len() < MAX_DUPLICATES {
                        self.duplicates.push((i, j));
                    }
                }
            }
            // Leave-one-out: the reference's score against the others.
            let others = row.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, &s)| s);
            self.scores.push(mean_distance_of_nearest(others));
        }
        self.done += rows;
        self.done < n
    }

    /// What was found, once every row is compared (the rest is compared now if not).
    pub fn finish(mut self, data: &Dataset) -> Studied {
        while self.step() {}
        if data.len() < MIN_PHOTOS {
            return (None, self.duplicates);
        }
        self.scores.sort_by(f32::total_cmp);
        let threshold = quantile(&self.scores, FAMILIAR_QUANTILE);
        (Some(Familiarity { references: self.references, threshold }), self.duplicates)
    }
}

/// The photos a model keeps for the score: all of them, or `max` drawn evenly from the
/// classes (shuffled, then taken round-robin by class).
fn references(data: &Dataset, seed: u64, max: usize) -> Vec<usize> {
    let mut chosen: Vec<usize> = (0..data.len()).collect();
    if chosen.len() > max {
        Rng::new(seed).shuffle(&mut chosen);
        let mut by_class: Vec<Vec<usize>> = vec![vec![]; data.labels.len()];
        chosen.iter().for_each(|&i| by_class[data.targets[i]].push(i));
        chosen.clear();
        let mut round = 0;
        while chosen.len() < max {
            by_class.iter().filter_map(|members| members.get(round)).for_each(|&i| chosen.push(i));
            round += 1;
        }
        chosen.truncate(max);
    }
    chosen
}

/// `v / |v|` (zero stays zero).
fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| if norm > 0.0 { x / norm } else { 0.0 }).collect()
}

/// Mean of `1 - similarity` over the [`NEIGHBOURS`] largest similarities.
fn mean_distance_of_nearest(similarities: impl Iterator<Item = f32>) -> f32 {
    let mut best = [f32::NEG_INFINITY; NEIGHBOURS];
    for s in similarities {
        if s > best[NEIGHBOURS - 1] {
            best[NEIGHBOURS - 1] = s;
            best.sort_by(|a, b| b.total_cmp(a));
        }
    }
    let found: Vec<f32> = best.into_iter().filter(|s| s.is_finite()).collect();
    1.0 - found.iter().sum::<f32>() / found.len().max(1) as f32
}

/// The `q` quantile of sorted values, interpolated linearly (numpy's default).
fn quantile(sorted: &[f32], q: f32) -> f32 {
    let at = q * (sorted.len() - 1) as f32;
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (at - low as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::tests::clusters;

    #[test]
    fn photos_far_from_every_class_are_flagged_and_near_ones_not() {
        let data = clusters(20, 1);
        let familiarity = Familiarity::fit(&data, 1).unwrap();
        // Fresh photos of the same clusters: few flagged.
        let same = clusters(20, 2);
        let flagged = familiarity.judge(&same.embeddings).iter().filter(|u| u.unfamiliar).count();
        assert!(flagged <= 3, "{flagged} of 60 familiar photos flagged");
        // A photo whose features sit where no class has them: flagged.
        let mut rng = Rng::new(5);
        let foreign: Vec<f32> = (0..4 * EMBEDDING_DIM).map(|d| if d % 7 == 0 { 5.0 + rng.next_f32() } else { 0.0 }).collect();
        assert!(familiarity.judge(&foreign).iter().all(|u| u.unfamiliar));
        // Too few photos: no score.
        assert!(Familiarity::fit(&clusters(1, 1), 1).is_none());
    }

    #[test]
    fn quantised_parts_give_the_same_answers() {
        let data = clusters(10, 3);
        let familiarity = Familiarity::fit(&data, 1).unwrap();
        let (q, scales) = familiarity.to_parts();
        let back = Familiarity::from_parts(&q, &scales, familiarity.threshold).unwrap();
        let test = clusters(5, 4);
        for (a, b) in familiarity.judge(&test.embeddings).iter().zip(back.judge(&test.embeddings)) {
            assert!((a.score - b.score).abs() < 2e-3, "{} vs {}", a.score, b.score);
        }
        assert!(Familiarity::from_parts(&q[1..], &scales, 0.1).is_none());
    }

    #[test]
    fn many_photos_are_thinned_evenly_across_classes() {
        let mut data = Dataset::new(vec!["a".into(), "b".into()]);
        let e = vec![1.0; EMBEDDING_DIM];
        for i in 0..MAX_REFERENCES + 500 {
            data.push(&e, usize::from(i % 5 == 0)).unwrap();
        }
        assert_eq!(Familiarity::fit(&data, 1).unwrap().references(), MAX_REFERENCES);
    }

    #[test]
    fn near_duplicates_are_found_in_and_across_classes() {
        let mut data = clusters(5, 6);
        let copy: Vec<f32> = data.embedding(2).iter().map(|v| v * 1.01 + 0.001).collect();
        data.push(&copy, 1).unwrap(); // photo 2 (class 0) again, in class 1
        assert_eq!(study(&data, 1).1, vec![(2, 15)]);
    }

    #[test]
    fn quantile_interpolates() {
        assert_eq!(quantile(&[0.0, 1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert!((quantile(&[0.0, 10.0], 0.975) - 9.75).abs() < 1e-6);
    }
}
