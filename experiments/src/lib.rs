//! The `experiments` crate: the `mathnn` command line ([`cli`]), the experiments of `mathnn reproduce`
//! ([`reproduce`]), their reports and figures ([`report`]), and the plumbing both share ([`common`]).
//! Libraries compute; this crate prints, plots and writes files.
//!
//! Dependency rule: `cli` may use `runs`, `reproduce`, `report` and `common`; `reproduce` uses `runs`,
//! `report` and `common` and never `cli`. `runs` holds the run drivers both need (a classifier's run
//! directory, the GAN and deep-image-prior loops).

pub mod cli;
pub mod common;
pub mod report;
pub mod reproduce;
pub mod runs;
