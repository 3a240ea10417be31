//! Tensor-train (TT) and CP decompositions, and the TT-vs-CP expressivity of recurrent versus shallow
//! networks (Khrulkov, Novikov, Oseledets, "Expressive power of recurrent neural networks", ICLR 2018;
//! Cohen, Sharir, Shashua, COLT 2016; Oseledets, "Tensor-train decomposition", SISC 2011).
//!
//! * [`TensorTrain`]: TT-SVD with `‖A − TT‖_F ≤ ε‖A‖_F`, rounding, `add`, `hadamard`, `scale`, `dot`,
//!   `norm`, element access — none of them forms the full tensor.
//! * [`cp`]: CP tensors, CP-ALS (seeded random, given or SVD start; error history), `cp_to_tt`.
//! * [`unfold`]: matricizations for any split and `matrix_rank` with numpy's tolerance.
//! * [`expressivity`]: random TT tensors (independent or shared cores), the odd/even-matricization
//!   CP-rank lower bound, the balanced rank, Theorem 1's `q^{d/2}` and the proof's construction.
//! * [`nets`]: TT (recurrent, bilinear cell) and CP (shallow, product pooling) networks on candle over a
//!   learned patch feature map, trainable with `nn_core::train`.
//!
//! Conventions: dense tensors are `ndarray::ArrayD<f64>` read in C order (last index fastest); TT cores
//! are `[r_{k-1}, n_k, r_k]` with `r_0 = r_d = 1`; CP factors are `n_k × R`. Linear algebra is faer
//! (thread count: `faer::set_global_parallelism`).
//!
//! ```
//! use ndarray::{ArrayD, IxDyn};
//! use tensor_decomp::{cp::cp_to_tt, cp::CpTensor, TensorTrain};
//!
//! // 1/(1 + i + j + k + l) on a 6^4 grid: TT-SVD with ε = 1e-6 meets the accuracy with small ranks.
//! let a = ArrayD::from_shape_fn(IxDyn(&[6, 6, 6, 6]), |x| {
//!     1.0 / (1.0 + (x[0] + x[1] + x[2] + x[3]) as f64)
//! });
//! let (tt, report) = TensorTrain::tt_svd_report(&a, 1e-6, None)?;
//! assert!(report.rel_error <= 1e-6 && tt.ranks().iter().all(|&r| r <= 6));
//!
//! // A CP tensor of rank 3 is a TT of ranks ≤ 3.
//! let f = |n| ndarray::Array2::from_shape_fn((n, 3), |(i, j)| (i as f64 + 1.0).powi(j as i32));
//! let cp = CpTensor::new(vec![1.0, -2.0, 0.5], vec![f(4), f(5), f(6)])?;
//! assert!(cp_to_tt(&cp).ranks().iter().all(|&r| r <= 3));
//! # Ok::<(), tensor_decomp::TdError>(())
//! ```

pub mod cp;
pub mod dense;
pub mod error;
pub mod expressivity;
pub mod io;
pub mod linalg;
pub mod nets;
pub mod tt;
pub mod unfold;

pub use error::{Result, TdError};
pub use tt::{TensorTrain, Truncation};
