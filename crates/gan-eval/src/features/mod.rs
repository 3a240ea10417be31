//! Feature extractors on candle: a trainable domain classifier ([`DomainClassifier`]) and pytorch-fid's
//! FID-Inception-v3 ([`FidInceptionV3`]).

pub mod domain;
pub mod inception;

pub use domain::{DomainClassifier, DomainOutputs};
pub use inception::{FidInceptionV3, InceptionInput, InceptionOutputs};
