//! The one error type of `tensor-decomp`. Every variant names the argument, file or shape involved and
//! what was expected, so that the CLI can print it as a single line.

use std::path::PathBuf;

/// Errors of `tensor-decomp`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TdError {
    /// An argument is outside its valid range or of the wrong kind.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument { name: String, reason: String },

    /// Two tensors (or a tensor and a decomposition) do not fit together.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        context: String,
        expected: String,
        got: String,
    },

    /// A tensor holds NaN or ±∞.
    #[error("`{name}` has a non-finite entry {value} at flat index {index}")]
    NonFinite {
        name: String,
        index: usize,
        value: f64,
    },

    /// A dense linear-algebra kernel (SVD, QR, Cholesky) failed.
    #[error("{op} failed: {reason}")]
    LinAlg { op: String, reason: String },

    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file exists but its content is not what its format requires.
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },

    /// A tensor operation failed inside candle (networks only).
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),

    /// An error from nn-core (networks only).
    #[error(transparent)]
    Nn(#[from] nn_core::NnError),
}

/// Result alias of `tensor-decomp`.
pub type Result<T> = std::result::Result<T, TdError>;

impl TdError {
    /// A [`TdError::InvalidArgument`].
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        TdError::InvalidArgument {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// A [`TdError::Shape`].
    pub fn shape(
        context: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        TdError::Shape {
            context: context.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }

    /// A [`TdError::BadFile`].
    pub fn bad_file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        TdError::BadFile {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
