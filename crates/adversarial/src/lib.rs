//! Adversarial examples and defences: FGSM, PGD, DeepFool, universal adversarial perturbations
//! (Moosavi-Dezfooli et al., CVPR 2017), universal perturbations from (p,q)-singular vectors of hidden-layer
//! Jacobians (Khrulkov & Oseledets, CVPR 2018), and input-transform / noise-training defences.
//!
//! Planned contents (issue 6), built on `nn-core` models with named activations. Nothing is implemented yet.
