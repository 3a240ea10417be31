//! `mathnn fid`, `inception-score`, `kid`, `gs` and `rlt`: the gan-eval metrics on `.npy` feature files
//! (N × D, f32 or f64, C or Fortran order). `--json` prints exactly the keys documented per command.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use gan_eval::gs::{GsConfig, mean_rlt_with_progress, relative_living_times};
use gan_eval::stats_file::{UNKNOWN_SAMPLE_COUNT, read_stats_npz, write_stats_npz};
use gan_eval::{
    FidRoute, FrechetStats, fid_from_features, fid_with_route, geometry_score, inception_score, kid,
};
use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyError, read_npy};
use serde_json::json;

use crate::common::{Bar, progress_bar};
use crate::common::{choice, count, ensure_memory};

/// Arguments of `mathnn fid`.
#[derive(Args, Debug)]
pub struct FidArgs {
    /// First set: a feature matrix (.npy, N × D) or FID statistics (.npz with `mu` and `sigma`, as
    /// `mathnn fid-stats` and pytorch-fid's `--save-stats` write them).
    pub a: PathBuf,
    /// Second set: features (.npy, M × D) or statistics (.npz).
    pub b: PathBuf,
    /// cholesky (eigenvalues of Lᵀ Σ_b L; falls back to eigen-sqrt when Σ_a is singular) or eigen-sqrt
    /// (eigenvalues of Σ_a^{1/2} Σ_b Σ_a^{1/2}).
    #[arg(long, default_value = "cholesky", value_parser = choice(&FidRoute::ALL))]
    pub route: FidRoute,
    /// Print `{"fid": x}`.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `mathnn fid-stats`.
#[derive(Args, Debug)]
pub struct FidStatsArgs {
    /// Feature matrix (.npy, N × D, f32 or f64; N ≥ 2).
    pub features: PathBuf,
    /// Where to write the statistics (.npz: `mu`, `sigma` in f64 and `n`; pytorch-fid reads it).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `mathnn inception-score`.
#[derive(Args, Debug)]
pub struct InceptionScoreArgs {
    /// Class probabilities (.npy, N × C, rows summing to 1).
    pub probs: PathBuf,
    /// Number of contiguous splits (the original protocol: 10).
    #[arg(value_parser = count::<1, 100_000>, long, default_value_t = 10)]
    pub splits: usize,
    /// Print `{"mean": m, "std": s}`.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `mathnn kid`.
#[derive(Args, Debug)]
pub struct KidArgs {
    /// First feature matrix (.npy, N × D).
    pub a: PathBuf,
    /// Second feature matrix (.npy, M × D).
    pub b: PathBuf,
    /// Number of random subsets.
    #[arg(value_parser = count::<1, 100_000>, long, default_value_t = 100)]
    pub subsets: usize,
    /// Subset size (capped at min(N, M)).
    #[arg(value_parser = count::<1, 10_000_000>, long, default_value_t = 1000)]
    pub subset_size: usize,
    /// Seed of the subsets.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print `{"kid": m, "std": s}`.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `mathnn gs`.
#[derive(Args, Debug)]
pub struct GsArgs {
    /// Point cloud A (.npy, N × D).
    pub a: PathBuf,
    /// Optional point cloud B (.npy, M × D): then the Geometry Score of A and B is printed too.
    pub b: Option<PathBuf>,
    /// Landmarks per draw (L_0), drawn with replacement.
    #[arg(value_parser = count::<1, 100_000>, long, default_value_t = 64)]
    pub landmarks: usize,
    /// Relaxation γ (α_max = γ · max witness–landmark distance); default N/640000 as the reference.
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Number of RLT entries.
    #[arg(value_parser = count::<1, 10_000>, long, default_value_t = 100)]
    pub i_max: usize,
    /// Number of landmark draws.
    #[arg(value_parser = count::<1, 10_000_000>, long, default_value_t = 1000)]
    pub n: usize,
    /// Seed of the landmark draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print `{"mrlt_a": [...], "mrlt_b": [...], "gs": x}`.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `mathnn rlt`.
#[derive(Args, Debug)]
pub struct RltArgs {
    /// Point cloud (.npy, N × D).
    pub points: PathBuf,
    /// Landmark row indices (.npy, 1-D integers; repeats allowed).
    #[arg(long)]
    pub landmark_indices: PathBuf,
    /// Relaxation γ.
    #[arg(long)]
    pub gamma: f64,
    /// Number of RLT entries.
    #[arg(value_parser = count::<1, 10_000>, long, default_value_t = 100)]
    pub i_max: usize,
    /// Print `{"rlt": [...], "alpha_max": a, "bars": [[b, d], ...]}`.
    #[arg(long)]
    pub json: bool,
}

/// Reads an N × D matrix of f64 or f32 (C or Fortran order) as f64.
pub fn read_matrix(path: &Path) -> Result<Array2<f64>> {
    Ok(tensor_decomp::io::read_npy_matrix(path)?)
}

fn npy_error(path: &Path, e: ReadNpyError) -> anyhow::Error {
    match e {
        ReadNpyError::WrongNdim(_, got) => {
            anyhow::anyhow!("{}: expected a 1-D array, found {got}-D", path.display())
        }
        e => anyhow::anyhow!("{}: cannot read .npy: {e}", path.display()),
    }
}

/// Reads 1-D landmark indices stored as any integer dtype, or as floats holding whole numbers.
pub fn read_indices(path: &Path) -> Result<Vec<usize>> {
    fn conv<T: Copy + TryInto<i64>>(a: Array1<T>) -> Option<Vec<i64>> {
        a.iter().map(|v| (*v).try_into().ok()).collect()
    }
    macro_rules! try_int {
        ($t:ty) => {
            match read_npy::<_, Array1<$t>>(path) {
                Ok(a) => conv(a),
                Err(ReadNpyError::WrongDescriptor(_)) => None,
                Err(e) => return Err(npy_error(path, e)),
            }
        };
    }
    let mut values = try_int!(i64);
    if values.is_none() {
        values = try_int!(i32);
    }
    if values.is_none() {
        values = try_int!(u32);
    }
    if values.is_none() {
        values = try_int!(u64);
    }
    if values.is_none() {
        values = try_int!(u16);
    }
    if values.is_none() {
        values = try_int!(u8);
    }
    let values = match values {
        Some(v) => v,
        None => {
            let f: Array1<f64> = match read_npy::<_, Array1<f64>>(path) {
                Ok(a) => a,
                Err(ReadNpyError::WrongDescriptor(_)) => read_npy::<_, Array1<f32>>(path)
                    .map_err(|e| npy_error(path, e))?
                    .mapv(f64::from),
                Err(e) => return Err(npy_error(path, e)),
            };
            if let Some(v) = f.iter().find(|v| v.fract() != 0.0 || !v.is_finite()) {
                bail!(
                    "{}: landmark index {v} is not a whole number",
                    path.display()
                );
            }
            f.iter().map(|v| *v as i64).collect()
        }
    };
    values
        .into_iter()
        .map(|v| {
            usize::try_from(v)
                .with_context(|| format!("{}: landmark index {v} is negative", path.display()))
        })
        .collect()
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// Bytes of the FID statistics route in dimension d: two d × d covariances and the eigensolver's d × d
/// work matrices (about six in all), f64; `None` when it overflows.
fn covariance_bytes(d: usize) -> Option<u64> {
    (d as u64).checked_mul(d as u64)?.checked_mul(6 * 8)
}

/// One side of `mathnn fid`: features, or statistics read from an `.npz` file.
enum FidInput {
    Features(Array2<f64>),
    Stats(FrechetStats),
}

impl FidInput {
    /// `.npz` files are statistics, anything else a feature matrix.
    fn read(path: &Path) -> Result<Self> {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("npz"))
        {
            Ok(FidInput::Stats(read_stats_npz(path)?))
        } else {
            Ok(FidInput::Features(read_matrix(path)?))
        }
    }

    fn dim(&self) -> usize {
        match self {
            FidInput::Features(x) => x.ncols(),
            FidInput::Stats(s) => s.dim(),
        }
    }

    fn describe(&self) -> String {
        match self {
            FidInput::Features(x) => format!("{} samples", x.nrows()),
            FidInput::Stats(s) if s.n == UNKNOWN_SAMPLE_COUNT => "statistics".into(),
            FidInput::Stats(s) => format!("statistics of {} samples", s.n),
        }
    }

    /// The statistics (computed from features, after the memory check).
    fn into_stats(self, path: &Path) -> Result<FrechetStats> {
        match self {
            FidInput::Stats(s) => Ok(s),
            FidInput::Features(x) => {
                ensure_memory("the feature covariances", covariance_bytes(x.ncols()))?;
                FrechetStats::from_features(x.view()).with_context(|| path.display().to_string())
            }
        }
    }
}

/// `mathnn fid`.
pub fn run_fid(args: FidArgs) -> Result<()> {
    // The two sides are read, and their statistics computed, side by side: reading and centring are
    // single-threaded, and the covariance products share the pool.
    let (a, b) = rayon::join(|| FidInput::read(&args.a), || FidInput::read(&args.b));
    let (a, b) = (a?, b?);
    if a.dim() != b.dim() {
        bail!(
            "{} has dimension {}, {} has {}: FID compares sets of the same features",
            args.a.display(),
            a.dim(),
            args.b.display(),
            b.dim()
        );
    }
    let (d, described) = (a.dim(), (a.describe(), b.describe()));
    let v = match (a, b) {
        // Both sets have at most d samples: exact from the n × n Gram matrices, no d × d covariance.
        (FidInput::Features(x), FidInput::Features(y)) if x.nrows() <= d && y.nrows() <= d => {
            fid_from_features(x.view(), y.view())?
        }
        (a, b) => {
            let (a, b) = rayon::join(|| a.into_stats(&args.a), || b.into_stats(&args.b));
            fid_with_route(&a?, &b?, args.route)?
        }
    };
    if args.json {
        print_json(&json!({ "fid": v }))
    } else {
        println!(
            "FID = {v:.6}  ({} vs {}, dimension {d})",
            described.0, described.1
        );
        Ok(())
    }
}

/// `mathnn fid-stats`.
pub fn run_fid_stats(args: FidStatsArgs) -> Result<()> {
    if !args
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"))
    {
        bail!(
            "--out {}: expected a .npz file name (pytorch-fid's statistics format)",
            args.out.display()
        );
    }
    let stats = FidInput::Features(read_matrix(&args.features)?).into_stats(&args.features)?;
    write_stats_npz(&stats, &args.out)?;
    println!(
        "wrote {}: mean and covariance of {} samples, dimension {}",
        args.out.display(),
        stats.n,
        stats.dim()
    );
    Ok(())
}

/// `mathnn inception-score`.
pub fn run_inception_score(args: InceptionScoreArgs) -> Result<()> {
    let p = read_matrix(&args.probs)?;
    let is =
        inception_score(p.view(), args.splits).with_context(|| args.probs.display().to_string())?;
    if args.json {
        print_json(&json!({ "mean": is.mean, "std": is.std }))
    } else {
        println!(
            "IS = {:.4} ± {:.4}  ({} samples, {} splits)",
            is.mean, is.std, is.n, args.splits
        );
        Ok(())
    }
}

/// `mathnn kid`.
pub fn run_kid(args: KidArgs) -> Result<()> {
    let a = read_matrix(&args.a)?;
    let b = read_matrix(&args.b)?;
    let r = kid(
        a.view(),
        b.view(),
        args.subsets,
        args.subset_size,
        args.seed,
    )?;
    if args.json {
        print_json(&json!({ "kid": r.kid, "std": r.std }))
    } else {
        println!(
            "KID = {:.6} ± {:.6}  ({} subsets of {}; ×1000: {:.3})",
            r.kid,
            r.std,
            r.subsets,
            r.subset_size,
            1000.0 * r.kid
        );
        Ok(())
    }
}

/// `mathnn gs`.
pub fn run_gs(args: GsArgs) -> Result<()> {
    let config = GsConfig {
        landmarks: args.landmarks,
        gamma: args.gamma,
        i_max: args.i_max,
        n_draws: args.n,
        seed: args.seed,
    };
    let mut files = vec![args.a.clone()];
    files.extend(args.b.clone());
    let mut mrlts = Vec::new();
    for path in &files {
        let x = read_matrix(path)?;
        let bar = progress_bar(args.quiet || args.json, &format!("gs {}", path.display()));
        let m = mean_rlt_with_progress(x.view(), &config, Some(&Bar(bar.clone())))
            .with_context(|| path.display().to_string())?;
        bar.finish_and_clear();
        mrlts.push(m);
    }
    let gs = match mrlts.as_slice() {
        [a, b] => Some(geometry_score(&a.mrlt, &b.mrlt)?),
        _ => None,
    };
    if args.json {
        let mut v = json!({ "mrlt_a": mrlts[0].mrlt });
        if let (Some(b), Some(g)) = (mrlts.get(1), gs) {
            v["mrlt_b"] = json!(b.mrlt);
            v["gs"] = json!(g);
        }
        return print_json(&v);
    }
    for (name, m) in ["A", "B"].iter().zip(&mrlts) {
        let shown: Vec<String> = m.mrlt.iter().take(6).map(|v| format!("{v:.3}")).collect();
        println!(
            "MRLT {name} (γ = {:.6}, {} draws of {} landmarks): [{} …]",
            m.gamma,
            m.n_draws,
            m.landmarks,
            shown.join(", ")
        );
    }
    if let Some(g) = gs {
        println!("GS = {g:.6}  (×1000: {:.3})", 1000.0 * g);
    }
    Ok(())
}

/// `mathnn rlt`.
pub fn run_rlt(args: RltArgs) -> Result<()> {
    let x = read_matrix(&args.points)?;
    let idx = read_indices(&args.landmark_indices)?;
    let r = relative_living_times(x.view(), &idx, args.gamma, args.i_max)
        .with_context(|| args.points.display().to_string())?;
    if args.json {
        print_json(&json!({ "rlt": r.rlt, "alpha_max": r.alpha_max, "bars": r.bars }))
    } else {
        println!(
            "α_max = {:.6}; {} edges, {} triangles; {} H1 bar(s) ({} essential)",
            r.alpha_max,
            r.edges,
            r.triangles,
            r.bars.len(),
            r.essential.iter().filter(|e| **e).count()
        );
        for b in &r.bars {
            println!("  [{:.6}, {:.6})", b[0], b[1]);
        }
        let shown: Vec<String> = r.rlt.iter().take(6).map(|v| format!("{v:.4}")).collect();
        println!("RLT = [{} …]", shown.join(", "));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use ndarray_npy::write_npy;

    #[test]
    fn indices_are_whole_numbers_of_any_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let pi = dir.path().join("ai.npy");
        write_npy(&pi, &array![[1i64, 2]]).unwrap();
        assert!(read_indices(&pi).is_err());
        let idx = dir.path().join("idx.npy");
        write_npy(&idx, &array![0i64, 3, 3]).unwrap();
        assert_eq!(read_indices(&idx).unwrap(), vec![0, 3, 3]);
        let idxf = dir.path().join("idxf.npy");
        write_npy(&idxf, &array![1.0f64, 2.5]).unwrap();
        assert!(
            read_indices(&idxf)
                .unwrap_err()
                .to_string()
                .contains("whole number")
        );
    }
}
