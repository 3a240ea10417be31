//! The one error type of `generalization`. Every variant names the argument, data set or file involved.

/// Errors of `generalization`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenError {
    /// An error from `nn-core` (data, models, optimiser, checkpoints, divergence).
    #[error(transparent)]
    Nn(#[from] nn_core::NnError),

    /// A tensor operation failed inside candle.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),

    /// An argument is outside its valid range or of the wrong kind.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument { name: String, reason: String },

    /// A data set cannot be used as asked (empty, non-finite, wrong shape).
    #[error("data set `{dataset}`: {reason}")]
    BadData { dataset: String, reason: String },
}

/// Result alias of `generalization`.
pub type Result<T> = std::result::Result<T, GenError>;

impl GenError {
    /// A [`GenError::InvalidArgument`].
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        GenError::InvalidArgument {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// A [`GenError::BadData`].
    pub fn bad_data(dataset: impl Into<String>, reason: impl Into<String>) -> Self {
        GenError::BadData {
            dataset: dataset.into(),
            reason: reason.into(),
        }
    }
}
