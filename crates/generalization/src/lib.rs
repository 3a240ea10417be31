//! Generalisation experiments: memorisation of random labels (Zhang et al., "Understanding deep learning
//! requires rethinking generalization", ICLR 2017) and the deep image prior (Ulyanov et al., CVPR 2018).
//!
//! Planned contents (issue 5): seeded label/pixel corruptions of an `nn_core::data::Dataset` and a
//! fit-until-memorised runner. Nothing is implemented yet.
