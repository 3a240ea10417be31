//! Metrics for generative models: Inception Score, Fréchet Inception Distance, Kernel Inception Distance
//! and the Geometry Score (Khrulkov & Oseledets, "Geometry Score: A Method For Comparing Generative
//! Adversarial Networks", ICML 2018).
//!
//! Planned contents (issue 4): `FrechetStats` and an exact symmetric-route `fid`, `inception_score`,
//! `kid`, relative living times of witness complexes and `geometry_score`, feature extractors.
//! Nothing is implemented yet.
