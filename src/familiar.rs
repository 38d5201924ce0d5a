//! "None of these": how unlike every photo the head was trained on a new photo is, so that a
//! model of two classes does not call a tulip an ant or a bee.
//!
//! The score of a view is the mean cosine distance from its embedding to its [`NEIGHBOURS`]
//! nearest training photos; a photo's score is its best view's (the lowest of the views it is
//! embedded in: as framed, mirrored, closer). Its threshold is fitted on the project's own
//! photos by leave-one-out, scored the same way: each photo's views against the other photos,
//! and the threshold at the [`FAMILIAR_QUANTILE`] quantile of those scores.
//!
//! Why the best view, and that quantile (`tests/probe/familiar.py`, README "None of these"):
//! new photos a person takes sit further from the training photos than those do from each other
//! (other light, another crop, a background), so a threshold at the 97.5th percentile of the
//! first view's leave-one-out scores, as before, flagged 10-12 % of clothing-small's test photos
//! changed that way (`tests/probe/harder.py`), and 12-15 % of a person's ants and bees. A photo's
//! closer view or mirror image often finds the training photos where its first view does not,
//! while a photo from elsewhere is far from them in every view: scored by the best view and
//! thresholded at the 99th percentile, 2.5-4.9 % of those changed photos are flagged and 91-94 %
//! of photos from elsewhere, from 5 to 30 photos a class. Margins added to the threshold (grown
//! as photos get fewer), thresholds per class, on cross-validation folds or on the views alone,
//! and a local density ratio all gave up more of the photos from elsewhere for the same gain.
//!
//! Flagged photos of the person's own kind fall just above the line (95 % of them within
//! [`NEAR_LINE`] times the threshold), photos from elsewhere well above it (about half at more
//! than 1.2 times): a score in that band is "probably none of these" (`near_line`), said with the
//! closest class, not as a bare verdict.
//!
//! It tells "not like anything here", not "a kind of thing here that is missing": a clothing
//! class left out of training was flagged for under 1 % of its photos.
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
pub const FAMILIAR_QUANTILE: f32 = 0.99;
/// A flagged photo whose score is at most this many times the threshold is near the line:
/// "probably none of these".
pub const NEAR_LINE: f32 = 1.1;
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
    /// Flagged, but within [`NEAR_LINE`] of the threshold, where a few photos of the person's
    /// own kind fall too: "probably none of these".
    pub near_line: bool,
}

impl Unfamiliarity {
    fn of(score: f32, threshold: f32) -> Self {
        let unfamiliar = score > threshold;
        Unfamiliarity { score, threshold, unfamiliar, near_line: unfamiliar && score <= threshold * NEAR_LINE }
    }
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

    /// Scores of photos given as `[n * views * 1280]` embeddings: each photo's `views` views one
    /// after the other (any number of views, the first as framed), each photo scored by its best.
    pub fn judge(&self, photos: &[f32], views: usize) -> Vec<Unfamiliarity> {
        let m = self.references();
        let rows = photos.len() / EMBEDDING_DIM;
        let queries: Vec<f32> = photos.chunks_exact(EMBEDDING_DIM).flat_map(unit).collect();
        let mut similarity = vec![0.0; rows * m];
        matmul(&mut similarity, false, &queries, Stored::AsIs, &self.references, Stored::Transposed, rows, EMBEDDING_DIM, m);
        let per_view: Vec<f32> = similarity.chunks_exact(m).map(|row| mean_distance_of_nearest(row.iter().copied())).collect();
        per_view
            .chunks(views.max(1))
            .map(|photo| Unfamiliarity::of(photo.iter().copied().fold(f32::INFINITY, f32::min), self.threshold))
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
/// two (the whole of 2,000 photos in four views each is about 0.6 s natively, more in the
/// browser).
pub struct Study {
    /// The references' unit embeddings (their first views), `[n, 1280]`.
    references: Vec<f32>,
    n: usize,
    /// Every view of every reference, unit length, `[rows, 1280]`, and the reference each is of.
    queries: Vec<f32>,
    owner: Vec<usize>,
    /// Query rows compared so far.
    done: usize,
    search_duplicates: bool,
    duplicates: Vec<(usize, usize)>,
    /// Each reference's leave-one-out score: its best view's, against the other references.
    scores: Vec<f32>,
}

impl Study {
    pub fn new(data: &Dataset, seed: u64, max_references: usize) -> Self {
        let chosen = references(data, seed, max_references.clamp(MIN_PHOTOS, MAX_REFERENCES));
        let n = chosen.len();
        let variants = data.variants_by_photo();
        let (mut queries, mut owner) = (vec![], vec![]);
        for (r, &i) in chosen.iter().enumerate() {
            queries.extend(unit(data.embedding(i)));
            owner.push(r);
            for &v in &variants[i] {
                queries.extend(unit(data.variant(v)));
                owner.push(r);
            }
        }
        Study {
            references: chosen.iter().flat_map(|&i| unit(data.embedding(i))).collect(),
            n,
            queries,
            owner,
            done: 0,
            search_duplicates: n == data.len() && n <= MAX_DUPLICATE_SEARCH,
            duplicates: vec![],
            scores: vec![f32::INFINITY; n],
        }
    }

    /// Compare the next [`STUDY_ROWS`] views with every reference; `false` once all are done.
    pub fn step(&mut self) -> bool {
        let (n, start, total) = (self.n, self.done, self.owner.len());
        if start >= total {
            return false;
        }
        let rows = STUDY_ROWS.min(total - start);
        let block = &self.queries[start * EMBEDDING_DIM..(start + rows) * EMBEDDING_DIM];
        let mut similarity = vec![0.0; rows * n];
        matmul(&mut similarity, false, block, Stored::AsIs, &self.references, Stored::Transposed, rows, EMBEDDING_DIM, n);
        for (r, row) in similarity.chunks_exact(n).enumerate() {
            let q = start + r;
            let i = self.owner[q];
            // A reference's first view is the first of its rows: near-duplicates are photos.
            if self.search_duplicates && (q == 0 || self.owner[q - 1] != i) {
                for (j, &s) in row.iter().enumerate().skip(i + 1) {
                    if s >= DUPLICATE_SIMILARITY && self.duplicates.len() < MAX_DUPLICATES {
                        self.duplicates.push((i, j));
                    }
                }
            }
            // Leave-one-out: the view against the other references.
            let others = row.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, &s)| s);
            self.scores[i] = self.scores[i].min(mean_distance_of_nearest(others));
        }
        self.done += rows;
        self.done < total
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
        let flagged = familiarity.judge(&same.embeddings, 1).iter().filter(|u| u.unfamiliar).count();
        assert!(flagged <= 3, "{flagged} of 60 familiar photos flagged");
        // A photo whose features sit where no class has them: flagged.
        let mut rng = Rng::new(5);
        let foreign: Vec<f32> = (0..4 * EMBEDDING_DIM).map(|d| if d % 7 == 0 { 5.0 + rng.next_f32() } else { 0.0 }).collect();
        assert!(familiarity.judge(&foreign, 1).iter().all(|u| u.unfamiliar && !u.near_line));
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
        for (a, b) in familiarity.judge(&test.embeddings, 1).iter().zip(back.judge(&test.embeddings, 1)) {
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
    fn a_photo_counts_by_its_best_view() {
        let data = clusters(10, 7);
        let familiarity = Familiarity::fit(&data, 1).unwrap();
        let mut rng = Rng::new(9);
        let far: Vec<f32> = (0..EMBEDDING_DIM).map(|d| if d % 5 == 0 { 5.0 + rng.next_f32() } else { 0.0 }).collect();
        let near = data.embedding(3).to_vec();
        // One photo in two views: far as framed, near in the other; and the other way round.
        let photos: Vec<f32> = [&far, &near, &near, &far].into_iter().flatten().copied().collect();
        let verdicts = familiarity.judge(&photos, 2);
        assert_eq!(verdicts.len(), 2);
        let near_alone = familiarity.judge(&near, 1)[0].score;
        assert!(verdicts.iter().all(|u| !u.unfamiliar && u.score == near_alone), "{verdicts:?}");
        assert!(familiarity.judge(&far, 1)[0].unfamiliar);
    }

    #[test]
    fn near_the_line_is_said() {
        let u = Unfamiliarity::of(1.05, 1.0);
        assert!(u.unfamiliar && u.near_line);
        let u = Unfamiliarity::of(1.5, 1.0);
        assert!(u.unfamiliar && !u.near_line);
        assert!(!Unfamiliarity::of(0.9, 1.0).near_line);
    }

    #[test]
    fn quantile_interpolates() {
        assert_eq!(quantile(&[0.0, 1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert!((quantile(&[0.0, 10.0], 0.975) - 9.75).abs() < 1e-6);
    }
}
