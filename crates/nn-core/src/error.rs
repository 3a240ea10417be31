//! The one error type of `nn-core`. Every variant names the file, argument or tensor involved and what
//! was expected, so that the CLI can print it as a single line.

use std::path::PathBuf;

/// Errors of `nn-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NnError {
    /// A tensor operation failed inside candle.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A data file exists but its content is not what its format requires.
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },

    /// A data set could not be found in any of the places searched.
    #[error("data set `{dataset}` not found; looked in: {searched}. {hint}")]
    DataNotFound {
        dataset: String,
        searched: String,
        hint: String,
    },

    /// A download failed or its checksum did not match; nothing was kept.
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },

    /// An argument is outside its valid range or of the wrong kind.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument { name: String, reason: String },

    /// Two tensors (or a tensor and a model) do not fit together.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        context: String,
        expected: String,
        got: String,
    },

    /// The training loss became NaN or infinite.
    #[error(
        "training diverged: loss is {loss} at epoch {epoch}, step {step}; lower the learning rate or check the data"
    )]
    Diverged {
        loss: f64,
        epoch: usize,
        step: usize,
    },

    /// A checkpoint is missing, incomplete or does not match the model.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
}

/// Result alias of `nn-core`.
pub type Result<T> = std::result::Result<T, NnError>;

impl NnError {
    /// An [`NnError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NnError::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`NnError::BadFile`] for `path`.
    pub fn bad_file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        NnError::BadFile {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An [`NnError::InvalidArgument`].
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        NnError::InvalidArgument {
            name: name.into(),
            reason: reason.into(),
        }
    }
}
