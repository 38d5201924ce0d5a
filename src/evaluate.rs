//! How well a head does on labelled photos: accuracy, per-class precision and recall, and the
//! confusion matrix (rows: the true class, columns: the predicted one), and the cross-validated
//! figures a model file keeps, with their 95 % ranges.

use serde::{Deserialize, Serialize};

/// Figures of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassFigures {
    pub label: String,
    /// Of the photos predicted as this class, the fraction that are (0 when none were).
    pub precision: f32,
    /// Of the photos of this class, the fraction predicted as it (0 when there are none).
    pub recall: f32,
    /// Photos of this class.
    pub support: usize,
}

/// Accuracy, per-class figures and the confusion matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub accuracy: f32,
    pub per_class: Vec<ClassFigures>,
    /// `confusion[actual][predicted]` = number of photos.
    pub confusion: Vec<Vec<usize>>,
}

impl Evaluation {
    /// Compare predicted with actual class indices.
    pub fn new(labels: &[String], actual: &[usize], predicted: &[usize]) -> Self {
        let k = labels.len();
        let mut confusion = vec![vec![0usize; k]; k];
        for (&a, &p) in actual.iter().zip(predicted) {
            confusion[a][p] += 1;
        }
        let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
        let per_class = (0..k)
            .map(|c| {
                let support: usize = confusion[c].iter().sum();
                let predicted_as: usize = (0..k).map(|a| confusion[a][c]).sum();
                let ratio = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f32 / d as f32 };
                ClassFigures {
                    label: labels[c].clone(),
                    precision: ratio(confusion[c][c], predicted_as),
                    recall: ratio(confusion[c][c], support),
                    support,
                }
            })
            .collect();
        Evaluation { accuracy: correct as f32 / actual.len().max(1) as f32, per_class, confusion }
    }

    /// A table for a terminal: per-class figures, then the confusion matrix.
    pub fn to_table(&self) -> String {
        let width = self.per_class.iter().map(|c| c.label.chars().count()).max().unwrap_or(5).max(5);
        let mut out = format!("accuracy {:.1} %\n\n{:width$}  precision  recall  photos\n", self.accuracy * 100.0, "class");
        for c in &self.per_class {
            out += &format!("{:width$}  {:>9.3}  {:>6.3}  {:>6}\n", c.label, c.precision, c.recall, c.support);
        }
        out += "\nconfusion (rows: true class, columns: predicted, in the order above)\n";
        for (c, row) in self.confusion.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|n| format!("{n:>4}")).collect();
            out += &format!("{:width$} {}\n", self.per_class[c].label, cells.join(""));
        }
        out
    }
}

/// Cross-validated figures of a head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Validated {
    pub folds: usize,
    pub photos: usize,
    /// Accuracy, per-class precision and recall, and the confusion matrix, all cross-validated.
    pub evaluation: Evaluation,
    /// 95 % range of the accuracy: (low, high).
    pub accuracy_range: (f32, f32),
    /// 95 % range of each class's recall.
    pub recall_ranges: Vec<(f32, f32)>,
}

/// Wilson's 95 % score interval for `right` successes out of `n`.
pub fn wilson(right: usize, n: usize) -> (f32, f32) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_964f64;
    let (n, p) = (n as f64, right as f64 / n as f64);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    (((centre - half).max(0.0)) as f32, ((centre + half).min(1.0)) as f32)
}

impl Validated {
    /// "about 91 % (likely 86 to 95 %), cross-validated on 120 photos (5 folds)".
    pub fn summary(&self) -> String {
        let how = if self.folds == self.photos { "leaving each out in turn".to_string() } else { format!("{} folds", self.folds) };
        format!(
            "about {:.0} % (likely {:.0} to {:.0} %), cross-validated on {} photos ({how})",
            self.evaluation.accuracy * 100.0,
            self.accuracy_range.0 * 100.0,
            self.accuracy_range.1 * 100.0,
            self.photos
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_from_a_known_confusion() {
        let labels = vec!["cat".to_string(), "dog".to_string()];
        // 3 cats: 2 right, 1 called dog; 1 dog: right.
        let e = Evaluation::new(&labels, &[0, 0, 0, 1], &[0, 0, 1, 1]);
        assert_eq!(e.accuracy, 0.75);
        assert_eq!(e.confusion, vec![vec![2, 1], vec![0, 1]]);
        assert_eq!(e.per_class[0].recall, 2.0 / 3.0);
        assert_eq!(e.per_class[0].precision, 1.0);
        assert_eq!(e.per_class[1].precision, 0.5);
        assert!(e.to_table().contains("accuracy 75.0 %"));
    }

    #[test]
    fn wilson_is_honest_about_small_samples() {
        let (low, high) = wilson(4, 4);
        assert!((low - 0.51).abs() < 0.01 && high == 1.0, "{low} {high}");
        let (low, high) = wilson(90, 100);
        assert!((low - 0.826).abs() < 0.01 && (high - 0.945).abs() < 0.01, "{low} {high}");
    }
}
