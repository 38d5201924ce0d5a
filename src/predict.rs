//! Turn a head's logits into what a person reads: every class with its probability, most
//! likely first.

use serde::{Deserialize, Serialize};

/// One class and how likely the photo is to be of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub label: String,
    /// Index of the class.
    pub class: usize,
    pub probability: f32,
}

/// The `k` most probable classes, most probable first (ties keep class order).
pub fn top_k(probabilities: &[f32], labels: &[String], k: usize) -> Vec<Prediction> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|class| Prediction {
            label: labels.get(class).cloned().unwrap_or_else(|| format!("class {class}")),
            class,
            probability: probabilities[class],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_sorted_and_sums_to_one() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut p = vec![1.0, 3.0, 2.0];
        crate::matrix::softmax_rows(&mut p, 3);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let top = top_k(&p, &labels, 2);
        assert_eq!(top.iter().map(|p| p.label.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        assert!(top[0].probability > top[1].probability);
    }
}
