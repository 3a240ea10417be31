//! Classical computer vision: histogram-of-oriented-gradients (HOG) features, the pre-deep-learning
//! baseline the talk contrasts with learned features (Dalal & Triggs 2005; as scikit-image 0.26 computes it).
//!
//! Nothing is implemented yet.
