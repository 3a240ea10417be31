//! The one error type of `gan-eval`. Every variant names the argument, file or shape involved and what was
//! expected, so that the CLI can print it as a single line.

use std::path::PathBuf;

/// Errors of `gan-eval`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GanEvalError {
    /// An argument is outside its valid range or of the wrong kind.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument { name: String, reason: String },

    /// Two inputs do not fit together, or an input has the wrong shape.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        context: String,
        expected: String,
        got: String,
    },

    /// An input holds NaN or ±∞.
    #[error("`{name}` holds a non-finite value ({value}) at row {row}, column {col}")]
    NonFinite {
        name: String,
        row: usize,
        col: usize,
        value: f64,
    },

    /// A dense linear-algebra routine failed (did not converge).
    #[error("{routine} failed: {reason}")]
    Linalg { routine: String, reason: String },

    /// A weights file is missing a tensor or holds one of the wrong shape.
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },

    /// A tensor operation failed inside candle.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),

    /// An error of `nn-core` (data, models, training).
    #[error(transparent)]
    Nn(#[from] nn_core::NnError),
}

/// Result alias of `gan-eval`.
pub type Result<T> = std::result::Result<T, GanEvalError>;

impl GanEvalError {
    /// An [`GanEvalError::InvalidArgument`].
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        GanEvalError::InvalidArgument {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// A [`GanEvalError::Shape`].
    pub fn shape(
        context: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        GanEvalError::Shape {
            context: context.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }
}
