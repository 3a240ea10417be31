//! The one error type of `adversarial`. Every variant names the argument, layer, file or tensor involved
//! and what was expected, so that the CLI can print it as a single line.

use std::path::PathBuf;

/// Errors of `adversarial`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdvError {
    /// An error from `nn-core` (data, models, training, gradients).
    #[error(transparent)]
    Nn(#[from] nn_core::NnError),

    /// A tensor operation failed inside candle.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),

    /// An argument is outside its valid range or of the wrong kind.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument { name: String, reason: String },

    /// A layer name that the network does not have.
    #[error("network has no layer `{layer}`; valid layers are: {valid}")]
    UnknownLayer { layer: String, valid: String },

    /// Two tensors (or a tensor and a model) do not fit together.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        context: String,
        expected: String,
        got: String,
    },

    /// A weights file lacks tensors or holds tensors of the wrong shape.
    #[error("weights {path}: {reason}")]
    Weights { path: PathBuf, reason: String },
}

/// Result alias of `adversarial`.
pub type Result<T> = std::result::Result<T, AdvError>;

impl AdvError {
    /// An [`AdvError::InvalidArgument`].
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        AdvError::InvalidArgument {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// An [`AdvError::Shape`].
    pub fn shape(
        context: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        AdvError::Shape {
            context: context.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }
}

/// Checks that `value` is finite and `>= 0`, naming `name` otherwise.
pub(crate) fn check_nonneg(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(AdvError::invalid(
            name,
            format!("must be a finite number >= 0, got {value}"),
        ))
    }
}

/// Checks that `value` is at least 1, naming `name` otherwise.
pub(crate) fn check_at_least_one(name: &str, value: usize) -> Result<()> {
    if value >= 1 {
        Ok(())
    } else {
        Err(AdvError::invalid(name, "must be at least 1, got 0"))
    }
}
