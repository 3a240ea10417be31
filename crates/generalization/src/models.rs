//! The models of the randomisation tests: Zhang et al.'s MLP 1×512 and MLP 3×512, and nn-core's LeNet as
//! the small CNN (the paper's small AlexNet and Inception are too slow for CPU runs of hundreds of epochs).
//!
//! Parameter counts (weights + biases of every layer):
//! * MLP with hidden widths `w₁ … w_L` on `d` inputs and `k` classes:
//!   `Σ_l (w_{l−1}·w_l + w_l) + w_L·k + k`, `w₀ = d`.
//!   Paper (CIFAR-10 centre-cropped to 28×28×3, `d = 2352`): 1×512 → 2352·512 + 512 + 512·10 + 10 =
//!   **1,209,866**; 3×512 → **1,735,178**. On MNIST (`d = 784`): 407,050 and 932,362.
//! * LeNet (`conv5×5·20 → pool2 → conv5×5·50 → pool2 → fc 500 → fc k`) on `c×h×w`, `s(x) = ⌊(⌊(x−4)/2⌋−4)/2⌋`:
//!   `(25c·20 + 20) + (500·50 + 50) + (50·s(h)·s(w)·500 + 500) + (500k + k)`; 431,080 on 28×28×1.
//!
//! ```
//! use generalization::models::ZhangModel;
//! use nn_core::models::InputSpec;
//!
//! let mnist = InputSpec::new(1, 28, 28, 10);
//! assert_eq!(ZhangModel::Mlp1x512.expected_parameters(mnist), 407_050);
//! assert_eq!(ZhangModel::Mlp1x512.paper_parameters(), Some(1_209_866));
//! ```

use nn_core::models::{InputSpec, ModelConfig, ModelKind};
use serde::{Deserialize, Serialize};

use crate::{GenError, Result};

/// The input of the paper's CIFAR-10 models: 28×28×3 after the centre crop, 10 classes.
pub const PAPER_INPUT: InputSpec = InputSpec {
    channels: 3,
    height: 28,
    width: 28,
    num_classes: 10,
};

/// A model of the randomisation tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ZhangModel {
    /// One hidden ReLU layer of 512 units.
    #[serde(rename = "mlp-1x512")]
    Mlp1x512,
    /// Three hidden ReLU layers of 512 units.
    #[serde(rename = "mlp-3x512")]
    Mlp3x512,
    /// nn-core's LeNet (the small CNN).
    Lenet,
}

/// The "none" columns of Zhang et al.'s Table 1 (CIFAR-10, no crop, no weight decay): train / test
/// accuracy in percent with true labels and with random labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PaperTable1 {
    /// Which model of the paper the numbers belong to.
    pub paper_model: &'static str,
    pub true_train: f64,
    pub true_test: f64,
    pub random_train: f64,
    pub random_test: f64,
}

impl ZhangModel {
    /// Every model, in report order.
    pub const ALL: [ZhangModel; 3] = [
        ZhangModel::Mlp1x512,
        ZhangModel::Mlp3x512,
        ZhangModel::Lenet,
    ];

    /// The CLI name: `mlp-1x512`, `mlp-3x512`, `lenet`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ZhangModel::Mlp1x512 => "mlp-1x512",
            ZhangModel::Mlp3x512 => "mlp-3x512",
            ZhangModel::Lenet => "lenet",
        }
    }

    /// A display name: `MLP 1×512`, `MLP 3×512`, `LeNet`.
    pub fn title(&self) -> &'static str {
        match self {
            ZhangModel::Mlp1x512 => "MLP 1×512",
            ZhangModel::Mlp3x512 => "MLP 3×512",
            ZhangModel::Lenet => "LeNet",
        }
    }

    /// Hidden widths of the MLPs (empty for LeNet).
    pub fn mlp_widths(&self) -> Vec<usize> {
        match self {
            ZhangModel::Mlp1x512 => vec![512],
            ZhangModel::Mlp3x512 => vec![512; 3],
            ZhangModel::Lenet => Vec::new(),
        }
    }

    /// The nn-core configuration for `input`.
    pub fn model_config(&self, input: InputSpec) -> ModelConfig {
        match self {
            ZhangModel::Mlp1x512 | ZhangModel::Mlp3x512 => ModelConfig {
                mlp_widths: self.mlp_widths(),
                ..ModelConfig::new(ModelKind::Mlp, input)
            },
            ZhangModel::Lenet => ModelConfig::new(ModelKind::Lenet, input),
        }
    }

    /// The parameter count by the formulas of the module header.
    pub fn expected_parameters(&self, input: InputSpec) -> usize {
        match self {
            ZhangModel::Lenet => lenet_parameter_count(input),
            _ => mlp_parameter_count(input.numel(), &self.mlp_widths(), input.num_classes),
        }
    }

    /// The parameter count the paper states (on [`PAPER_INPUT`]); `None` for LeNet (not in the paper).
    pub fn paper_parameters(&self) -> Option<usize> {
        match self {
            ZhangModel::Mlp1x512 => Some(1_209_866),
            ZhangModel::Mlp3x512 => Some(1_735_178),
            ZhangModel::Lenet => None,
        }
    }

    /// The paper's Table 1 numbers for this model; for LeNet those of the paper's closest model, the
    /// small AlexNet (also a two-convolution CNN with max-pooling and two hidden fully connected layers).
    pub fn paper_table1(&self) -> PaperTable1 {
        match self {
            ZhangModel::Mlp1x512 => PaperTable1 {
                paper_model: "MLP 1×512",
                true_train: 100.0,
                true_test: 50.51,
                random_train: 99.34,
                random_test: 10.61,
            },
            ZhangModel::Mlp3x512 => PaperTable1 {
                paper_model: "MLP 3×512",
                true_train: 100.0,
                true_test: 52.39,
                random_train: 100.0,
                random_test: 10.48,
            },
            ZhangModel::Lenet => PaperTable1 {
                paper_model: "small AlexNet",
                true_train: 100.0,
                true_test: 76.07,
                random_train: 99.82,
                random_test: 9.86,
            },
        }
    }
}

impl std::fmt::Display for ZhangModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ZhangModel {
    type Err = GenError;

    fn from_str(s: &str) -> Result<Self> {
        ZhangModel::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                GenError::invalid(
                    "model",
                    format!("unknown model `{s}`; expected mlp-1x512, mlp-3x512 or lenet"),
                )
            })
    }
}

/// Parameters of an MLP with `input_dim` inputs, hidden `widths` and `classes` outputs:
/// `Σ_l (w_{l−1}·w_l + w_l) + w_L·classes + classes` with `w₀ = input_dim`.
pub fn mlp_parameter_count(input_dim: usize, widths: &[usize], classes: usize) -> usize {
    let mut fan_in = input_dim;
    let mut total = 0;
    for &w in widths {
        total += fan_in * w + w;
        fan_in = w;
    }
    total + fan_in * classes + classes
}

/// Parameters of nn-core's LeNet on `input` (see the module header); 0 when the image is too small.
pub fn lenet_parameter_count(input: InputSpec) -> usize {
    let side = |s: usize| (s.saturating_sub(4) / 2).saturating_sub(4) / 2;
    let (h, w) = (side(input.height), side(input.width));
    if h == 0 || w == 0 {
        return 0;
    }
    (25 * input.channels * 20 + 20)
        + (25 * 20 * 50 + 50)
        + (50 * h * w * 500 + 500)
        + (500 * input.num_classes + input.num_classes)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use candle_nn::VarMap;
    use nn_core::models::{SeededVarMap, build_model, parameter_count};

    use super::*;

    fn built(model: ZhangModel, input: InputSpec) -> usize {
        let varmap = VarMap::new();
        let vb = SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu);
        build_model(&model.model_config(input), vb).unwrap();
        parameter_count(&varmap)
    }

    #[test]
    fn paper_parameter_counts_on_cifar_crops() {
        // The paper's numbers hold for 28×28×3 (the centre crop), not for the raw 32×32×3 images.
        assert_eq!(
            mlp_parameter_count(2352, &[512], 10),
            2352 * 512 + 512 + 512 * 10 + 10
        );
        for m in [ZhangModel::Mlp1x512, ZhangModel::Mlp3x512] {
            let paper = m.paper_parameters().unwrap();
            assert_eq!(m.expected_parameters(PAPER_INPUT), paper, "{m}");
            assert_eq!(built(m, PAPER_INPUT), paper, "{m} built by nn-core");
        }
        assert_eq!(built(ZhangModel::Mlp1x512, PAPER_INPUT), 1_209_866);
        assert_eq!(built(ZhangModel::Mlp3x512, PAPER_INPUT), 1_735_178);
        // On uncropped 32×32×3 the same MLPs would have 1,578,506 and 2,103,818 parameters.
        let uncropped = InputSpec::new(3, 32, 32, 10);
        assert_eq!(
            ZhangModel::Mlp1x512.expected_parameters(uncropped),
            1_578_506
        );
        assert_eq!(
            ZhangModel::Mlp3x512.expected_parameters(uncropped),
            2_103_818
        );
    }

    #[test]
    fn formulas_match_the_built_models_on_our_inputs() {
        let mnist = InputSpec::new(1, 28, 28, 10);
        assert_eq!(ZhangModel::Mlp1x512.expected_parameters(mnist), 407_050);
        assert_eq!(ZhangModel::Mlp3x512.expected_parameters(mnist), 932_362);
        assert_eq!(ZhangModel::Lenet.expected_parameters(mnist), 431_080);
        for input in [
            mnist,
            InputSpec::new(3, 32, 32, 10),
            InputSpec::new(1, 20, 24, 3),
        ] {
            for m in ZhangModel::ALL {
                assert_eq!(
                    built(m, input),
                    m.expected_parameters(input),
                    "{m} on {input:?}"
                );
            }
        }
        assert_eq!(lenet_parameter_count(InputSpec::new(1, 12, 12, 10)), 0);
    }

    #[test]
    fn names_round_trip() {
        for m in ZhangModel::ALL {
            assert_eq!(m.as_str().parse::<ZhangModel>().unwrap(), m);
        }
        let err = "mlp".parse::<ZhangModel>().unwrap_err().to_string();
        assert!(err.contains("mlp-1x512"), "{err}");
    }
}
