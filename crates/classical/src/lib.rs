//! Classical computer vision: histogram-of-oriented-gradients (HOG) features, the pre-deep-learning
//! baseline the talk contrasts with learned features (Dalal & Triggs 2005; as scikit-image 0.26 computes it),
//! and the linear classifiers trained on such features (multinomial logistic regression, linear SVM).

pub mod features;
pub mod hog;
pub mod linear;
