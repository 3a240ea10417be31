//! Tensor-train (TT) and CP decompositions, and the TT-vs-CP expressivity analysis of recurrent versus
//! shallow networks (Khrulkov, Novikov, Oseledets, "Expressive power of recurrent neural networks",
//! ICLR 2018; Cohen, Sharir, Shashua 2016).
//!
//! Planned contents (issue 3): `TensorTrain` with `tt_svd`, rounding and arithmetic without forming the
//! full tensor; `cp_als`; matricizations and `matrix_rank` with numpy's tolerance; random TT tensors and the
//! odd/even-matricization CP-rank lower bound; TT- and CP-networks on nn-core.
//! Nothing is implemented yet.
