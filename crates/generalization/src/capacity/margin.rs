//! A norm-based capacity measure beside the parameter count: the **spectrally-normalised margin
//! complexity** of Bartlett, Foster and Telgarsky ("Spectrally-normalized margin bounds for neural
//! networks", NeurIPS 2017). Their Theorem 1.1 bounds the test error of a network `F_A` by its training
//! margin loss at margin γ plus, up to logarithms,
//!
//! ```text
//!   ‖X‖_F · R_A / (γ · n),      R_A = (∏ᵢ ρᵢ ‖Aᵢ‖_σ) · (Σᵢ ‖Aᵢᵀ − Mᵢᵀ‖_{2,1}^{2/3} / ‖Aᵢ‖_σ^{2/3})^{3/2}
//! ```
//!
//! with `‖·‖_σ` the spectral norm, `‖B‖_{2,1}` the sum of the Euclidean norms of the columns of `B` (so
//! `‖Aᵀ‖_{2,1}` sums the norms of `A`'s rows, one per output unit), `ρᵢ = 1` for ReLU, `Mᵢ` reference
//! matrices, `‖X‖_F = (Σⱼ ‖xⱼ‖²)^{1/2}` over the n training inputs and the multiclass margin
//! `f(x)_y − max_{j≠y} f(x)_j`. [`margin_complexity`] returns `‖X‖_F · R_A / (γ · n)` with γ a low quantile
//! of the training margins (default the 10th percentile), the quantity whose growth with label noise is
//! compared with the measured generalisation gap. It is a measure, not a bound: the logarithmic factors
//! and the margin-loss term are left out.
//!
//! **Biases.** The bound is stated for bias-free layers. A ReLU network with biases is exactly the bias-free
//! network on `x̂ = (x, 1)` with augmented matrices `Âᵢ = [[Wᵢ, bᵢ], [0, 1]]` (the last one `[W_L, b_L]`):
//! ReLU keeps the constant 1. The spectral norms are those of `Âᵢ`, `‖X̂‖_F² = ‖X‖_F² + n`, and the
//! reference matrix of each hidden layer carries the same pass-through 1, so that only learned parameters
//! enter the (2, 1) term. With [`Reference::Zero`] the other entries of `Mᵢ` are 0; with
//! [`Reference::Layers`] they are given (e.g. the initial weights).
//!
//! ```
//! use generalization::capacity::margin::{spectral_complexity, DenseLayer, Reference};
//! use ndarray::array;
//!
//! // One layer: R_A is the (2,1) norm of Aᵀ, the sum of the row norms of A = diag(3, 4): 7.
//! let a = DenseLayer { weight: array![[3.0, 0.0], [0.0, 4.0]], bias: None };
//! let s = spectral_complexity(&[a], &Reference::Zero).unwrap();
//! assert!((s.spectral_norms[0] - 4.0).abs() < 1e-12);
//! assert!((s.complexity - 7.0).abs() < 1e-12);
//! ```

use candle_nn::VarMap;
use faer::Mat;
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use serde::{Deserialize, Serialize};

use crate::{GenError, Result};

/// One fully connected layer `x ↦ W x + b`, `W` of shape `outputs × inputs`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseLayer {
    /// `outputs × inputs`.
    pub weight: Array2<f64>,
    /// `outputs` values, or none.
    pub bias: Option<Array1<f64>>,
}

impl DenseLayer {
    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        self.weight.nrows()
    }

    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.weight.ncols()
    }
}

/// The reference matrices `Mᵢ` of the (2, 1) term.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Reference {
    /// `Mᵢ = 0` (with the pass-through 1 of the bias augmentation).
    #[default]
    Zero,
    /// `Mᵢ` = these layers (same shapes as the network's), e.g. the weights at initialisation.
    Layers(Vec<DenseLayer>),
}

/// The parts of `R_A`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectralComplexity {
    /// `‖Âᵢ‖_σ` per layer (augmented when the layer has a bias).
    pub spectral_norms: Vec<f64>,
    /// `‖Âᵢᵀ − M̂ᵢᵀ‖_{2,1}` per layer.
    pub l21_norms: Vec<f64>,
    /// `∏ᵢ ‖Âᵢ‖_σ`, the network's Lipschitz constant bound (ReLU: ρᵢ = 1).
    pub lipschitz: f64,
    /// `R_A`.
    pub complexity: f64,
}

/// Margin-normalised spectral complexity of a network on its training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarginComplexity {
    /// `R_A` and its parts.
    pub spectral: SpectralComplexity,
    /// The quantile of the training margins used as γ.
    pub quantile: f64,
    /// γ: that quantile of `f(x)_y − max_{j≠y} f(x)_j` over the training set.
    pub margin: f64,
    /// Fraction of training points with margin ≤ 0 (misclassified or tied).
    pub non_positive_fraction: f64,
    /// `‖X̂‖_F`, the Frobenius norm of the (bias-augmented) training inputs.
    pub data_norm: f64,
    /// Training points `n`.
    pub samples: usize,
    /// `‖X̂‖_F · R_A / (γ · n)`; `None` when γ ≤ 0 (more than the quantile's share of the training points
    /// is misclassified or tied), where the measure is undefined.
    pub normalized: Option<f64>,
}

/// Options of [`margin_complexity`].
#[derive(Debug, Clone)]
pub struct MarginParams {
    /// Quantile of the training margins taken as γ, in `[0, 1)` (default 0.1; numpy's linear
    /// interpolation between order statistics).
    pub quantile: f64,
    /// Reference matrices (default zero).
    pub reference: Reference,
}

impl Default for MarginParams {
    fn default() -> Self {
        Self {
            quantile: 0.1,
            reference: Reference::Zero,
        }
    }
}

/// The dense layers of an nn-core MLP (`fc1`, `fc2`, …, `out`; weights `outputs × inputs`) as f64.
pub fn mlp_layers(varmap: &VarMap) -> Result<Vec<DenseLayer>> {
    let vars = varmap.data().lock().map_err(|_| {
        GenError::invalid("varmap", "the parameter map's lock was poisoned by a panic")
    })?;
    let matrix = |name: &str| -> Result<Option<Array2<f64>>> {
        let Some(var) = vars.get(name) else {
            return Ok(None);
        };
        let t = var.as_tensor();
        let (rows, cols) = t.dims2().map_err(|_| {
            GenError::invalid(
                "varmap",
                format!("`{name}` has shape {:?}, expected a matrix", t.dims()),
            )
        })?;
        let values = t
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        Ok(Some(
            Array2::from_shape_vec((rows, cols), values).expect("rows·cols values"),
        ))
    };
    let vector = |name: &str| -> Result<Option<Array1<f64>>> {
        let Some(var) = vars.get(name) else {
            return Ok(None);
        };
        let values = var
            .as_tensor()
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        Ok(Some(Array1::from(values)))
    };
    let mut layers = Vec::new();
    let mut names: Vec<String> = (1..)
        .map(|i| format!("fc{i}"))
        .take_while(|n| vars.contains_key(&format!("{n}.weight")))
        .collect();
    names.push("out".into());
    for name in names {
        let weight = matrix(&format!("{name}.weight"))?.ok_or_else(|| {
            GenError::invalid(
                "varmap",
                format!("no `{name}.weight`: the margin complexity is computed for nn-core's MLPs (fc1 … out)"),
            )
        })?;
        let bias = vector(&format!("{name}.bias"))?;
        layers.push(DenseLayer { weight, bias });
    }
    let used = |n: &String| {
        let layer = n.rsplit_once('.').map_or(n.as_str(), |(l, _)| l);
        layer == "out"
            || (layer.starts_with("fc")
                && layer[2..]
                    .parse::<usize>()
                    .is_ok_and(|i| i >= 1 && i < layers.len()))
    };
    if let Some(other) = vars.keys().filter(|n| !used(n)).min() {
        return Err(GenError::invalid(
            "varmap",
            format!(
                "`{other}` is not a layer of an MLP (fc1 … out): the margin complexity is computed for nn-core's MLPs"
            ),
        ));
    }
    check_layers(&layers)?;
    Ok(layers)
}

/// Shapes chain (`inputs` of each layer = `outputs` of the one before), biases match, values finite.
fn check_layers(layers: &[DenseLayer]) -> Result<()> {
    if layers.is_empty() {
        return Err(GenError::invalid(
            "layers",
            "a network needs at least one layer",
        ));
    }
    for (i, l) in layers.iter().enumerate() {
        if l.outputs() == 0 || l.inputs() == 0 {
            return Err(GenError::invalid(
                "layers",
                format!(
                    "layer {i} has an empty weight {}×{}",
                    l.outputs(),
                    l.inputs()
                ),
            ));
        }
        if i > 0 && l.inputs() != layers[i - 1].outputs() {
            return Err(GenError::invalid(
                "layers",
                format!(
                    "layer {i} takes {} inputs but layer {} has {} outputs",
                    l.inputs(),
                    i - 1,
                    layers[i - 1].outputs()
                ),
            ));
        }
        if let Some(b) = &l.bias
            && b.len() != l.outputs()
        {
            return Err(GenError::invalid(
                "layers",
                format!(
                    "layer {i} has {} outputs but {} biases",
                    l.outputs(),
                    b.len()
                ),
            ));
        }
        let finite = l
            .weight
            .iter()
            .chain(l.bias.iter().flatten())
            .all(|v| v.is_finite());
        if !finite {
            return Err(GenError::invalid(
                "layers",
                format!("layer {i} has a non-finite weight or bias"),
            ));
        }
    }
    Ok(())
}

/// Whether the bias augmentation is in force: any layer has a bias.
fn augmented(layers: &[DenseLayer]) -> bool {
    layers.iter().any(|l| l.bias.is_some())
}

/// `Âᵢ` (or `Aᵢ` when no layer has a bias); the last layer gets no pass-through row.
fn augmented_matrix(layer: &DenseLayer, augment: bool, last: bool) -> Array2<f64> {
    if !augment {
        return layer.weight.clone();
    }
    let (o, i) = (layer.outputs(), layer.inputs());
    let rows = if last { o } else { o + 1 };
    let mut a = Array2::zeros((rows, i + 1));
    a.slice_mut(s![..o, ..i]).assign(&layer.weight);
    if let Some(b) = &layer.bias {
        a.slice_mut(s![..o, i]).assign(b);
    }
    if !last {
        a[(o, i)] = 1.0;
    }
    a
}

/// The largest singular value.
fn spectral_norm(a: &Array2<f64>) -> Result<f64> {
    let m = Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)]);
    let s = m.singular_values().map_err(|e| {
        GenError::invalid("layers", format!("singular values did not converge: {e:?}"))
    })?;
    Ok(s.first().copied().unwrap_or(0.0))
}

/// `R_A` of `layers` (ReLU between them, ρᵢ = 1) against `reference`.
pub fn spectral_complexity(
    layers: &[DenseLayer],
    reference: &Reference,
) -> Result<SpectralComplexity> {
    check_layers(layers)?;
    let augment = augmented(layers);
    if let Reference::Layers(refs) = reference {
        check_layers(refs)?;
        let same = refs.len() == layers.len()
            && refs.iter().zip(layers).all(|(r, l)| {
                r.weight.dim() == l.weight.dim() && r.bias.is_some() == l.bias.is_some()
            });
        if !same {
            return Err(GenError::invalid(
                "reference",
                "the reference layers must have the network's shapes (and biases where it has them)",
            ));
        }
    }
    let last = layers.len() - 1;
    let mut spectral_norms = Vec::with_capacity(layers.len());
    let mut l21_norms = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let a = augmented_matrix(layer, augment, i == last);
        spectral_norms.push(spectral_norm(&a)?);
        let mut diff = a;
        match reference {
            Reference::Zero => {
                if augment && i != last {
                    // The pass-through 1 is part of the reference: it is not a learned parameter.
                    let (r, c) = (diff.nrows() - 1, diff.ncols() - 1);
                    diff[(r, c)] = 0.0;
                }
            }
            Reference::Layers(refs) => diff -= &augmented_matrix(&refs[i], augment, i == last),
        }
        // ‖(Â − M̂)ᵀ‖_{2,1}: the sum of the Euclidean norms of the rows of Â − M̂.
        l21_norms.push(diff.rows().into_iter().map(|r| r.dot(&r).sqrt()).sum());
    }
    let lipschitz: f64 = spectral_norms.iter().product();
    let sum: f64 = l21_norms
        .iter()
        .zip(&spectral_norms)
        .map(|(l21, s): (&f64, &f64)| (l21 / s).powf(2.0 / 3.0))
        .sum();
    Ok(SpectralComplexity {
        complexity: lipschitz * sum.powf(1.5),
        spectral_norms,
        l21_norms,
        lipschitz,
    })
}

/// The network's outputs on the rows of `x` (`n × inputs`): ReLU after every layer but the last, in f64.
pub fn forward(layers: &[DenseLayer], x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
    check_layers(layers)?;
    if x.ncols() != layers[0].inputs() {
        return Err(GenError::invalid(
            "inputs",
            format!(
                "{} columns, the first layer takes {}",
                x.ncols(),
                layers[0].inputs()
            ),
        ));
    }
    let last = layers.len() - 1;
    let mut h = x.to_owned();
    for (i, layer) in layers.iter().enumerate() {
        h = h.dot(&layer.weight.t());
        if let Some(b) = &layer.bias {
            h += b;
        }
        if i != last {
            h.mapv_inplace(|v| v.max(0.0));
        }
    }
    Ok(h)
}

/// Multiclass margins `f(x)_y − max_{j≠y} f(x)_j`, one per row of `outputs` (at least two columns).
pub fn multiclass_margins(outputs: ArrayView2<'_, f64>, labels: &[usize]) -> Result<Vec<f64>> {
    super::check_labels("outputs", outputs.nrows(), labels, outputs.ncols())?;
    if outputs.ncols() < 2 {
        return Err(GenError::invalid(
            "outputs",
            "margins need at least two classes",
        ));
    }
    Ok(outputs
        .axis_iter(Axis(0))
        .zip(labels)
        .map(|(row, &y)| {
            let other = row
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != y)
                .map(|(_, v)| *v)
                .fold(f64::NEG_INFINITY, f64::max);
            row[y] - other
        })
        .collect())
}

/// numpy's default quantile (linear interpolation between the order statistics) of non-empty `values`.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (pos - lo as f64) * (v[hi] - v[lo])
}

/// The spectrally-normalised margin complexity of `layers` on the training set `x` (`n × inputs`, one
/// row per image) with the labels it was trained on.
pub fn margin_complexity(
    layers: &[DenseLayer],
    x: ArrayView2<'_, f64>,
    labels: &[usize],
    params: &MarginParams,
) -> Result<MarginComplexity> {
    if !(params.quantile >= 0.0 && params.quantile < 1.0) {
        return Err(GenError::invalid(
            "quantile",
            format!("{}: expected a value in [0, 1)", params.quantile),
        ));
    }
    let classes = layers.last().map_or(0, DenseLayer::outputs);
    super::check_data("training set", x, labels, classes)?;
    let outputs = forward(layers, x)?;
    let margins = multiclass_margins(outputs.view(), labels)?;
    let spectral = spectral_complexity(layers, &params.reference)?;
    let n = x.nrows();
    let squares: f64 = x.iter().map(|v| v * v).sum();
    let data_norm = if augmented(layers) {
        (squares + n as f64).sqrt()
    } else {
        squares.sqrt()
    };
    let margin = quantile(&margins, params.quantile);
    let normalized = (margin > 0.0).then(|| data_norm * spectral.complexity / (margin * n as f64));
    Ok(MarginComplexity {
        non_positive_fraction: margins.iter().filter(|m| **m <= 0.0).count() as f64 / n as f64,
        spectral,
        quantile: params.quantile,
        margin,
        data_norm,
        samples: n,
        normalized,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn layer(weight: Array2<f64>, bias: Option<Array1<f64>>) -> DenseLayer {
        DenseLayer { weight, bias }
    }

    #[test]
    fn two_layers_without_biases_match_the_hand_worked_value() -> Result<()> {
        // A1 = diag(3, 4): ‖A1‖σ = 4, ‖A1ᵀ‖₂,₁ = 7. A2 = [1 1]: ‖A2‖σ = √2, ‖A2ᵀ‖₂,₁ = √2.
        let layers = [
            layer(array![[3.0, 0.0], [0.0, 4.0]], None),
            layer(array![[1.0, 1.0]], None),
        ];
        let s = spectral_complexity(&layers, &Reference::Zero)?;
        let expected = 4.0 * 2f64.sqrt() * ((7.0f64 / 4.0).powf(2.0 / 3.0) + 1.0).powf(1.5);
        assert!(
            (s.complexity - expected).abs() < 1e-12 * expected,
            "{} vs {expected}",
            s.complexity
        );
        assert!((s.lipschitz - 4.0 * 2f64.sqrt()).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn rebalancing_relu_layers_changes_neither_complexity_nor_margins() -> Result<()> {
        // ReLU is positively homogeneous: (c·A1, A2/c) computes the same function, and R_A is invariant.
        let a1 = array![[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]];
        let a2 = array![[1.0, -2.0], [0.5, 1.0], [-1.0, 0.3]];
        let x = array![
            [0.1, 0.9, 0.4],
            [0.7, 0.2, 0.5],
            [0.3, 0.3, 0.9],
            [1.0, 0.0, 0.2]
        ];
        let base = [layer(a1.clone(), None), layer(a2.clone(), None)];
        let scaled = [layer(&a1 * 8.0, None), layer(&a2 / 8.0, None)];
        // Labels the network gets right, so that every margin is positive and the measure finite.
        let y: Vec<usize> = forward(&base, x.view())?
            .rows()
            .into_iter()
            .map(|r| (0..3).max_by(|&i, &j| r[i].total_cmp(&r[j])).unwrap())
            .collect();
        let p = MarginParams::default();
        let (m1, m2) = (
            margin_complexity(&base, x.view(), &y, &p)?,
            margin_complexity(&scaled, x.view(), &y, &p)?,
        );
        let rel = |a: f64, b: f64| (a - b).abs() / a.abs();
        assert!(rel(m1.spectral.complexity, m2.spectral.complexity) < 1e-12);
        assert!(rel(m1.margin, m2.margin) < 1e-12);
        let value = |m: &MarginComplexity| m.normalized.expect("positive margins");
        assert!(rel(value(&m1), value(&m2)) < 1e-12);
        // Doubling only the last layer doubles the margins and R_A: the ratio stays.
        let doubled = [layer(a1, None), layer(&a2 * 2.0, None)];
        let m3 = margin_complexity(&doubled, x.view(), &y, &p)?;
        assert!(m1.margin > 0.0);
        assert!(rel(2.0 * m1.margin, m3.margin) < 1e-12 && rel(value(&m1), value(&m3)) < 1e-12);
        Ok(())
    }

    #[test]
    fn biases_are_an_augmented_bias_free_network() -> Result<()> {
        let w1 = array![[1.0, -1.0], [0.5, 2.0]];
        let b1 = array![0.25, -0.5];
        let w2 = array![[1.0, 1.0], [-1.0, 0.5]];
        let b2 = array![0.1, -0.2];
        let with = [
            layer(w1.clone(), Some(b1.clone())),
            layer(w2.clone(), Some(b2.clone())),
        ];
        // The same network written without biases on x̂ = (x, 1).
        let a1 = array![[1.0, -1.0, 0.25], [0.5, 2.0, -0.5], [0.0, 0.0, 1.0]];
        let a2 = array![[1.0, 1.0, 0.1], [-1.0, 0.5, -0.2]];
        let x = array![[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]];
        let xh = array![[0.2, 0.8, 1.0], [0.9, 0.1, 1.0], [0.5, 0.5, 1.0]];
        let (f, fh) = (
            forward(&with, x.view())?,
            forward(
                &[layer(a1.clone(), None), layer(a2.clone(), None)],
                xh.view(),
            )?,
        );
        assert!((&f - &fh).iter().all(|d| d.abs() < 1e-15));
        let s = spectral_complexity(&with, &Reference::Zero)?;
        assert!((s.spectral_norms[0] - spectral_norm(&a1)?).abs() < 1e-14);
        // The pass-through row is in the reference: the (2,1) term counts only w1's rows with b1.
        let rows =
            |m: &Array2<f64>| -> f64 { m.rows().into_iter().map(|r| r.dot(&r).sqrt()).sum() };
        assert!((s.l21_norms[0] - rows(&a1.slice(s![..2, ..]).to_owned())).abs() < 1e-14);
        assert!((s.l21_norms[1] - rows(&a2)).abs() < 1e-14);
        // Against the layers themselves as the reference the (2,1) terms vanish.
        let own = spectral_complexity(&with, &Reference::Layers(with.to_vec()))?;
        assert!(own.l21_norms.iter().all(|v| *v == 0.0) && own.complexity == 0.0);
        Ok(())
    }

    #[test]
    fn mlp_layers_read_an_nn_core_mlp_exactly() -> Result<()> {
        use candle_core::{DType, Device, Tensor};
        use nn_core::models::{InputSpec, ModelConfig, ModelKind, SeededVarMap, build_model};
        let varmap = VarMap::new();
        let vb = SeededVarMap::var_builder(&varmap, 3, DType::F32, &Device::Cpu);
        let config = ModelConfig {
            mlp_widths: vec![16, 8],
            ..ModelConfig::new(ModelKind::Mlp, InputSpec::new(1, 4, 5, 3))
        };
        let net = build_model(&config, vb)?;
        let layers = mlp_layers(&varmap)?;
        let shapes: Vec<_> = layers.iter().map(|l| l.weight.dim()).collect();
        assert_eq!(shapes, vec![(16, 20), (8, 16), (3, 8)]);
        assert!(layers.iter().all(|l| l.bias.is_some()));
        let x: Vec<f32> = (0..6 * 20)
            .map(|i| ((i * 37) % 101) as f32 / 100.0)
            .collect();
        let logits = net
            .forward_t(
                &Tensor::from_vec(x.clone(), (6, 1, 4, 5), &Device::Cpu)?,
                false,
            )?
            .to_dtype(DType::F64)?
            .to_vec2::<f64>()?;
        let xs = Array2::from_shape_vec((6, 20), x.iter().map(|v| f64::from(*v)).collect())
            .expect("6·20 values");
        let ours = forward(&layers, xs.view())?;
        for (i, row) in logits.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                assert!(
                    (ours[(i, j)] - v).abs() < 1e-5,
                    "({i}, {j}): {} vs {v}",
                    ours[(i, j)]
                );
            }
        }
        // LeNet has no `fc1 … out` chain of matrices: refused with the reason.
        let lenet = VarMap::new();
        let vb = SeededVarMap::var_builder(&lenet, 0, DType::F32, &Device::Cpu);
        build_model(
            &ModelConfig::new(ModelKind::Lenet, InputSpec::new(1, 28, 28, 10)),
            vb,
        )?;
        let err = mlp_layers(&lenet).unwrap_err().to_string();
        assert!(err.contains("MLP"), "{err}");
        Ok(())
    }

    #[test]
    fn margins_and_quantiles_by_hand() -> Result<()> {
        let out = array![[2.0, 1.0, -1.0], [0.0, 3.0, 1.0], [1.0, 1.0, 0.5]];
        let m = multiclass_margins(out.view(), &[0, 2, 1])?;
        assert_eq!(m, vec![1.0, -2.0, 0.0]);
        assert_eq!(quantile(&[3.0, 1.0, 2.0, 4.0], 0.0), 1.0);
        assert!((quantile(&[3.0, 1.0, 2.0, 4.0], 0.1) - 1.3).abs() < 1e-15);
        assert!((quantile(&[3.0, 1.0, 2.0, 4.0], 0.5) - 2.5).abs() < 1e-15);
        Ok(())
    }

    #[test]
    fn bad_inputs_are_named() {
        let l = [
            layer(array![[1.0, 0.0]], None),
            layer(array![[1.0], [2.0]], None),
        ];
        let err = spectral_complexity(
            &[l[0].clone(), layer(array![[1.0, 2.0]], None)],
            &Reference::Zero,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("layer 1 takes 2 inputs but layer 0 has 1 outputs"),
            "{err}"
        );
        let x = array![[0.5, 0.5]];
        let err = margin_complexity(&l, x.view(), &[5], &MarginParams::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("label 5"), "{err}");
        let q = MarginParams {
            quantile: 1.0,
            ..MarginParams::default()
        };
        let err = margin_complexity(&l, x.view(), &[0], &q)
            .unwrap_err()
            .to_string();
        assert!(err.contains("quantile"), "{err}");
        let nan = [layer(array![[f64::NAN, 0.0]], None)];
        assert!(
            spectral_complexity(&nan, &Reference::Zero)
                .unwrap_err()
                .to_string()
                .contains("non-finite")
        );
    }
}
