//! CART decision trees (classifier and regressor) on the histogram machinery of [`super::gbdt`]:
//! one tree fitted to the raw target by squared error, which for a 0/1 target is exactly the
//! Gini-impurity criterion; leaves predict the mean (the event rate for a classifier). Missing
//! values go to the side that fits better.

use serde::{Deserialize, Serialize};

use super::gbdt::{grow, BinMapper, Binned, GrowParams, Tree};
use super::{check_binary, check_xy, invalid, Matrix, ModelResult, Predictor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreeTask {
    Classification,
    Regression,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TreeParams {
    pub task: TreeTask,
    pub max_depth: usize,
    pub min_samples_leaf: usize,
    /// 0 = unlimited.
    pub max_leaves: usize,
    pub max_bin: usize,
}

impl Default for TreeParams {
    fn default() -> Self {
        TreeParams {
            task: TreeTask::Classification,
            max_depth: 6,
            min_samples_leaf: 50,
            max_leaves: 0,
            max_bin: 255,
        }
    }
}

impl TreeParams {
    pub fn new(task: TreeTask) -> Self {
        TreeParams {
            task,
            ..Self::default()
        }
    }
    pub fn max_depth(mut self, d: usize) -> Self {
        self.max_depth = d;
        self
    }
    pub fn min_samples_leaf(mut self, n: usize) -> Self {
        self.min_samples_leaf = n;
        self
    }

    pub fn validate(&self) -> ModelResult<()> {
        if !(1..=64).contains(&self.max_depth) {
            return Err(invalid("max_depth", self.max_depth, "an integer in 1..=64"));
        }
        if self.min_samples_leaf == 0 {
            return Err(invalid(
                "min_samples_leaf",
                self.min_samples_leaf,
                "an integer >= 1",
            ));
        }
        if self.max_leaves == 1 {
            return Err(invalid(
                "max_leaves",
                self.max_leaves,
                "0 (unlimited) or an integer >= 2",
            ));
        }
        if !(2..=255).contains(&self.max_bin) {
            return Err(invalid("max_bin", self.max_bin, "an integer in 2..=255"));
        }
        Ok(())
    }

    pub fn fit(&self, x: &Matrix, y: &[f64], weights: Option<&[f64]>) -> ModelResult<TreeModel> {
        self.validate()?;
        check_xy(x, y, weights)?;
        if self.task == TreeTask::Classification {
            check_binary(y)?;
        }
        let mapper = BinMapper::fit(x, self.max_bin);
        let codes = mapper.transform(x);
        let data = Binned {
            codes: &codes,
            p: x.cols,
            mapper: &mapper,
        };
        let w: Vec<f64> = weights.map_or_else(|| vec![1.0; x.rows], |w| w.to_vec());
        let g: Vec<f64> = y.iter().zip(&w).map(|(y, w)| -y * w).collect();
        let gp = GrowParams {
            max_leaves: if self.max_leaves == 0 {
                usize::MAX
            } else {
                self.max_leaves
            },
            max_depth: self.max_depth,
            min_leaf: self.min_samples_leaf,
            min_hessian: 0.0,
            lambda: 0.0,
            min_gain: 1e-12,
        };
        let mut rows: Vec<u32> = (0..x.rows as u32).collect();
        let mut gains = vec![0.0; x.cols];
        let (tree, _) = grow(&data, &mut rows, &g, &w, &gp, &mut gains);
        Ok(TreeModel {
            task: self.task,
            tree,
            gain: gains,
            n_features: x.cols,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeModel {
    pub task: TreeTask,
    pub tree: Tree,
    pub gain: Vec<f64>,
    pub n_features: usize,
}

impl Predictor for TreeModel {
    fn predict(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .map(|i| self.tree.predict_row(x.row(i)))
            .collect()
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn importance(&self) -> Option<Vec<f64>> {
        Some(self.gain.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_function_is_found() {
        let x = Matrix::from_columns(&[(0..200).map(|i| i as f64).collect()]);
        let y: Vec<f64> = (0..200).map(|i| if i >= 120 { 1.0 } else { 0.0 }).collect();
        let m = TreeParams::new(TreeTask::Classification)
            .min_samples_leaf(5)
            .fit(&x, &y, None)
            .unwrap();
        let p = m.predict(&x);
        assert_eq!(p, y);
        assert_eq!(m.tree.n_leaves(), 2);
        assert!((m.tree.nodes[0].threshold - 119.5).abs() < 1e-9);
    }

    #[test]
    fn regressor_limits_depth() {
        let x = Matrix::from_columns(&[(0..256).map(|i| i as f64).collect()]);
        let y: Vec<f64> = (0..256).map(|i| i as f64).collect();
        let m = TreeParams::new(TreeTask::Regression)
            .max_depth(3)
            .min_samples_leaf(1)
            .fit(&x, &y, None)
            .unwrap();
        assert_eq!(m.tree.n_leaves(), 8);
        assert!(TreeParams::new(TreeTask::Regression)
            .max_depth(0)
            .validate()
            .is_err());
    }
}
