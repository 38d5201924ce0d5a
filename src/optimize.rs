//! L-BFGS (Nocedal 1980; Nocedal and Wright, "Numerical Optimization", algorithm 7.4) with a
//! backtracking line search: full-batch minimisation of the head's smooth loss. For a softmax
//! regression with an L2 penalty the loss is strictly convex, and L-BFGS reaches its minimum in
//! tens of steps where mini-batch SGD needs thousands of noisy ones; it is also what
//! scikit-learn's `LogisticRegression` uses, so that the two can be compared like for like.
//!
//! One [`Lbfgs::step`] is one line search along one direction, so that a caller can report
//! progress and stop between steps; one [`Lbfgs::advance`] is one evaluation of the function
//! (a step is one or more), for a caller that must answer sooner than a step takes.

use crate::matrix::dot;

/// Pairs of (step, gradient change) kept for the inverse-Hessian estimate.
const MEMORY: usize = 10;
/// Armijo's sufficient-decrease constant.
const ARMIJO: f64 = 1e-4;
/// Line-search halvings before a step is given up as no progress.
const MAX_HALVINGS: usize = 30;

/// A smooth function to minimise: writes the gradient at `x` into `gradient` and returns the
/// value.
pub trait Objective {
    fn evaluate(&mut self, x: &[f32], gradient: &mut [f32]) -> f64;
}

/// Why minimisation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Converged {
    /// Not yet.
    No,
    /// The gradient is (nearly) zero.
    Gradient,
    /// The value stopped decreasing.
    Value,
}

/// What one [`Lbfgs::advance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// Tried a point the line search did not accept: it goes on at the next call.
    Searching,
    /// Ended a step: moved to a better point.
    Stepped,
    /// Nothing to do: converged (or no better point along the direction).
    Done,
}

/// A line search under way: the direction, the slope along it, the step size to try next and
/// how many times it was halved.
struct Search {
    direction: Vec<f32>,
    slope: f64,
    t: f64,
    halvings: usize,
}

/// The optimiser's state between steps.
pub struct Lbfgs {
    pub x: Vec<f32>,
    pub value: f64,
    gradient: Vec<f32>,
    history: Vec<(Vec<f32>, Vec<f32>, f64)>,
    /// Stop when the largest gradient component is below this.
    gradient_tolerance: f64,
    pub converged: Converged,
    search: Option<Search>,
}

impl Lbfgs {
    /// Start at `x`, evaluating the objective there once.
    pub fn new(objective: &mut impl Objective, x: Vec<f32>, gradient_tolerance: f64) -> Self {
        let mut gradient = vec![0.0; x.len()];
        let value = objective.evaluate(&x, &mut gradient);
        let mut state = Lbfgs { x, value, gradient, history: vec![], gradient_tolerance, converged: Converged::No, search: None };
        state.check_gradient();
        state
    }

    fn check_gradient(&mut self) {
        let largest = self.gradient.iter().fold(0.0f32, |m, g| m.max(g.abs())) as f64;
        if largest <= self.gradient_tolerance || !largest.is_finite() {
            self.converged = Converged::Gradient;
        }
    }

    /// One line search along the L-BFGS direction. Returns `false` once converged.
    pub fn step(&mut self, objective: &mut impl Objective) -> bool {
        loop {
            match self.advance(objective) {
                Advance::Searching => continue,
                Advance::Stepped => return self.converged == Converged::No,
                Advance::Done => return false,
            }
        }
    }

    /// The line search's next trial point, evaluated once (a new search starts when none is
    /// under way).
    pub fn advance(&mut self, objective: &mut impl Objective) -> Advance {
        if self.converged != Converged::No {
            return Advance::Done;
        }
        let mut search = match self.search.take() {
            Some(search) => search,
            None => self.new_search(),
        };
        let t = search.t;
        let trial: Vec<f32> = self.x.iter().zip(&search.direction).map(|(x0, d)| x0 + (t as f32) * d).collect();
        let mut trial_gradient = vec![0.0; self.x.len()];
        let value = objective.evaluate(&trial, &mut trial_gradient);
        if value.is_finite() && value <= self.value + ARMIJO * t * search.slope {
            let s: Vec<f32> = trial.iter().zip(&self.x).map(|(a, b)| a - b).collect();
            let y: Vec<f32> = trial_gradient.iter().zip(&self.gradient).map(|(a, b)| a - b).collect();
            let sy = dot(&s, &y);
            // Keep the pair only where it says the function curves upward (always true for
            // a convex loss; not always for a hidden layer).
            if sy > 1e-12 {
                if self.history.len() == MEMORY {
                    self.history.remove(0);
                }
                self.history.push((s, y, sy));
            }
            let decrease = self.value - value;
            self.x = trial;
            self.gradient = trial_gradient;
            self.value = value;
            self.check_gradient();
            if self.converged == Converged::No && decrease <= 1e-10 * self.value.abs().max(1.0) {
                self.converged = Converged::Value;
            }
            return Advance::Stepped;
        }
        search.t *= 0.5;
        search.halvings += 1;
        if search.halvings == MAX_HALVINGS {
            // No progress along this direction: as converged as it gets, where it was.
            self.converged = Converged::Value;
            return Advance::Done;
        }
        self.search = Some(search);
        Advance::Searching
    }

    /// A line search along the L-BFGS direction from the current point.
    fn new_search(&mut self) -> Search {
        let direction = self.direction();
        let slope = dot(&self.gradient, &direction);
        let (direction, slope) = if slope < 0.0 {
            (direction, slope)
        } else {
            // Not a descent direction (rounding in a flat region): forget and go downhill.
            self.history.clear();
            let d: Vec<f32> = self.gradient.iter().map(|g| -g).collect();
            let s = dot(&self.gradient, &d);
            (d, s)
        };
        // The first step has no curvature estimate: scale it to a unit move.
        let t = if self.history.is_empty() { 1.0 / dot(&direction, &direction).sqrt().max(1e-12) } else { 1.0 };
        Search { direction, slope, t, halvings: 0 }
    }

    /// `-H g` by the two-loop recursion.
    fn direction(&self) -> Vec<f32> {
        let mut q: Vec<f64> = self.gradient.iter().map(|&g| g as f64).collect();
        let mut alphas = Vec::with_capacity(self.history.len());
        for (s, y, sy) in self.history.iter().rev() {
            let alpha = s.iter().zip(&q).map(|(&a, b)| a as f64 * b).sum::<f64>() / sy;
            q.iter_mut().zip(y).for_each(|(q, &y)| *q -= alpha * y as f64);
            alphas.push(alpha);
        }
        if let Some((_, y, sy)) = self.history.last() {
            let gamma = sy / dot(y, y).max(1e-30);
            q.iter_mut().for_each(|q| *q *= gamma);
        }
        for ((s, y, sy), alpha) in self.history.iter().zip(alphas.into_iter().rev()) {
            let beta = y.iter().zip(&q).map(|(&a, b)| a as f64 * b).sum::<f64>() / sy;
            q.iter_mut().zip(s).for_each(|(q, &s)| *q += (alpha - beta) * s as f64);
        }
        q.into_iter().map(|v| -v as f32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock's banana: minimum 0 at (1, 1), a classic hard case.
    struct Rosenbrock;

    impl Objective for Rosenbrock {
        fn evaluate(&mut self, x: &[f32], g: &mut [f32]) -> f64 {
            let (a, b) = (x[0] as f64, x[1] as f64);
            g[0] = (-2.0 * (1.0 - a) - 400.0 * a * (b - a * a)) as f32;
            g[1] = (200.0 * (b - a * a)) as f32;
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        }
    }

    #[test]
    fn finds_the_minimum_of_rosenbrock() {
        let mut f = Rosenbrock;
        let mut opt = Lbfgs::new(&mut f, vec![-1.2, 1.0], 1e-4);
        let mut steps = 0;
        while opt.step(&mut f) && steps < 500 {
            steps += 1;
        }
        assert!((opt.x[0] - 1.0).abs() < 1e-2 && (opt.x[1] - 1.0).abs() < 2e-2, "{:?} after {steps} steps", opt.x);
        assert!(steps < 200, "{steps} steps");
    }

    #[test]
    fn one_evaluation_at_a_time_walks_the_same_path_as_whole_steps() {
        let mut f = Rosenbrock;
        let mut whole = Lbfgs::new(&mut f, vec![-1.2, 1.0], 1e-4);
        let mut piecewise = Lbfgs::new(&mut f, vec![-1.2, 1.0], 1e-4);
        let mut searching = 0;
        for _ in 0..60 {
            whole.step(&mut f);
            while piecewise.advance(&mut f) == Advance::Searching {
                searching += 1;
            }
            assert_eq!(whole.x, piecewise.x);
        }
        assert!(searching > 0, "some steps took more than one evaluation");
    }
}
