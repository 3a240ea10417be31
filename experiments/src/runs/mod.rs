//! Run drivers shared by the command line and the experiments: each takes typed configuration (never clap
//! arguments), owns a run directory and resumes it.

pub mod capacity;
pub mod classifier;
pub mod dip;
