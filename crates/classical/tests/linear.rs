//! classical::linear against scikit-learn 1.9.1 (fixtures written by `benches/peers/linear.py fixtures`)
//! and against properties that can be checked by hand.
//!
//! `synthetic.npz` holds a generated 240 × 16 four-class set and sklearn's results on it; `digits.npz`
//! holds sklearn's results on the digits split (train_test_split(test_size=0.25, random_state=0)) but
//! not the digits: the tests that use it read `$MATHNN_DATA/sklearn-digits/digits.csv.gz` and are
//! ignored by default (`cargo test -p classical --test linear -- --ignored`).

use std::error::Error;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use classical::linear::{
    LinearError, LinearSvc, LinearSvcParams, LinearSvcSolver, LogisticRegression,
    LogisticRegressionParams, LogisticStop, Standardizer,
};
use ndarray::{Array1, Array2, ArrayView2, Axis, array, s};
use ndarray_npy::NpzReader;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type TestResult = Result<(), Box<dyn Error>>;

fn fixture(name: &str) -> Result<NpzReader<File>, Box<dyn Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/linear")
        .join(name);
    Ok(NpzReader::new(File::open(path)?)?)
}

fn read2(r: &mut NpzReader<File>, name: &str) -> Result<Array2<f64>, Box<dyn Error>> {
    Ok(r.by_name(name)?)
}

fn read1(r: &mut NpzReader<File>, name: &str) -> Result<Array1<f64>, Box<dyn Error>> {
    Ok(r.by_name(name)?)
}

fn read_labels(r: &mut NpzReader<File>, name: &str) -> Result<Vec<usize>, Box<dyn Error>> {
    let a: Array1<i16> = r.by_name(name)?;
    Ok(a.iter()
        .map(|&v| usize::try_from(v))
        .collect::<Result<_, _>>()?)
}

fn read_scalar(r: &mut NpzReader<File>, name: &str) -> Result<f64, Box<dyn Error>> {
    Ok(read1(r, name)?[0])
}

/// max |a − b| / max |b|.
fn rel_diff(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b.iter())
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn rel_diff1(a: &[f64], b: &[f64]) -> f64 {
    let av = ArrayView2::from_shape((1, a.len()), a).expect("row");
    let bv = ArrayView2::from_shape((1, b.len()), b).expect("row");
    rel_diff(av, bv)
}

fn agreement(a: &[usize], b: &[usize]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

fn tight_logistic(c: f64, fit_intercept: bool) -> LogisticRegressionParams {
    LogisticRegressionParams {
        c,
        max_iter: 10_000,
        tol: 1e-10,
        fit_intercept,
    }
}

fn tight_svc(c: f64) -> LinearSvcParams {
    LinearSvcParams {
        c,
        tol: 1e-8,
        max_iter: 100_000,
        solver: LinearSvcSolver::Dual,
        ..LinearSvcParams::default()
    }
}

/// The synthetic set, standardised by us, with its labels.
struct Synthetic {
    xs: Array2<f64>,
    y: Vec<usize>,
    r: NpzReader<File>,
}

fn synthetic() -> Result<Synthetic, Box<dyn Error>> {
    let mut r = fixture("synthetic.npz")?;
    let x = read2(&mut r, "x")?;
    let y = read_labels(&mut r, "y")?;
    let xs = Standardizer::fit(x.view())?.transform(x.view())?;
    Ok(Synthetic { xs, y, r })
}

/// Rows of the synthetic set with labels 0 and 1 (sklearn's binary fixtures).
fn binary_subset(xs: &Array2<f64>, y: &[usize]) -> (Array2<f64>, Vec<usize>) {
    let keep: Vec<usize> = (0..y.len()).filter(|&i| y[i] < 2).collect();
    (
        xs.select(Axis(0), &keep),
        keep.iter().map(|&i| y[i]).collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Standardizer
// ---------------------------------------------------------------------------------------------

#[test]
fn standardizer_matches_sklearn_standard_scaler() -> TestResult {
    let mut r = fixture("synthetic.npz")?;
    let x = read2(&mut r, "x")?;
    let (s, xs) = Standardizer::fit_transform(x.view())?;
    let want = read2(&mut r, "xs")?;
    let (mean, var, scale) = (
        read1(&mut r, "scaler_mean")?,
        read1(&mut r, "scaler_var")?,
        read1(&mut r, "scaler_scale")?,
    );
    for j in 0..x.ncols() {
        assert!(
            (s.mean()[j] - mean[j]).abs() <= 1e-12 * mean[j].abs().max(1.0),
            "mean {j}"
        );
        assert!(
            (s.var()[j] - var[j]).abs() <= 1e-12 * var[j].abs().max(1e-300),
            "var {j}"
        );
        assert!(
            (s.scale()[j] - scale[j]).abs() <= 1e-12 * scale[j],
            "scale {j}"
        );
    }
    // Column 5 is constant: scale 1 (only centred), as sklearn.
    assert_eq!(s.scale()[5], 1.0);
    assert_eq!(scale[5], 1.0);
    let worst = xs
        .iter()
        .zip(want.iter())
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst <= 1e-12,
        "transform differs from sklearn by {worst:e}"
    );
    assert_eq!(s.n_features(), 16);
    assert_eq!(s.n_samples(), 240);
    Ok(())
}

#[test]
fn standardizer_handles_views_and_checks_input() -> TestResult {
    let x = array![[1.0, 10.0], [2.0, 10.0], [3.0, 10.0], [6.0, 10.0]];
    let s = Standardizer::fit(x.view())?;
    // A transposed (non-standard-layout) view of the same data gives the same result.
    let xt = x.t().to_owned();
    let s2 = Standardizer::fit(xt.t())?;
    assert_eq!(s, s2);
    assert_eq!(s.mean().to_vec(), vec![3.0, 10.0]);
    assert_eq!(s.scale()[1], 1.0);
    assert!((s.scale()[0] - 3.5f64.sqrt()).abs() < 1e-15);
    let t = s.transform(array![[3.0, 11.0]].view())?;
    assert_eq!(t, array![[0.0, 1.0]]);
    assert_eq!(
        s.transform(array![[1.0, 2.0, 3.0]].view()),
        Err(LinearError::FeatureCountMismatch {
            expected: 2,
            found: 3
        })
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Logistic regression against scikit-learn
// ---------------------------------------------------------------------------------------------

/// Fits `params` on (x, y) and compares with sklearn's `prefix_*` arrays: coefficients and intercepts
/// to `coef_tol` relative, the objective (ours no larger than sklearn's beyond rounding), predictions.
fn check_logistic(
    r: &mut NpzReader<File>,
    prefix: &str,
    params: LogisticRegressionParams,
    x: ArrayView2<'_, f64>,
    y: &[usize],
    coef_tol: f64,
) -> Result<LogisticRegression, Box<dyn Error>> {
    let m = params.fit(x, y)?;
    assert!(m.converged(), "{prefix}: {:?}", m.stop_reason());
    let coef = read2(r, &format!("{prefix}_coef"))?;
    let intercept = read1(r, &format!("{prefix}_intercept"))?;
    let objective = read_scalar(r, &format!("{prefix}_objective"))?;
    let dc = rel_diff(m.coef(), coef.view());
    let di = rel_diff1(
        m.intercept().as_slice().ok_or("layout")?,
        intercept.as_slice().ok_or("layout")?,
    );
    let ours = m.objective(x, y)?;
    println!(
        "{prefix}: n_iter {} ({:?}), coef rel diff {dc:.2e}, intercept rel diff {di:.2e}, \
         objective ours {ours:.12} sklearn {objective:.12}",
        m.n_iter(),
        m.stop_reason()
    );
    assert!(dc <= coef_tol, "{prefix}: coefficients differ by {dc:e}");
    if params.fit_intercept {
        assert!(di <= coef_tol, "{prefix}: intercepts differ by {di:e}");
    } else {
        assert!(m.intercept().iter().all(|&b| b == 0.0));
    }
    assert!(
        ours <= objective + 1e-9 * objective.abs(),
        "{prefix}: objective {ours} > sklearn's {objective}"
    );
    Ok(m)
}

#[test]
fn logistic_multinomial_matches_sklearn_on_synthetic() -> TestResult {
    let Synthetic { xs, y, mut r } = synthetic()?;
    let m = check_logistic(&mut r, "lr", tight_logistic(1.0, true), xs.view(), &y, 1e-5)?;
    let pred = read_labels(&mut r, "lr_train_pred")?;
    assert_eq!(m.predict(xs.view())?, pred);
    assert_eq!(m.n_classes(), 4);
    assert_eq!(m.coef().dim(), (4, 16));
    Ok(())
}

#[test]
fn logistic_without_intercept_matches_sklearn_on_synthetic() -> TestResult {
    let Synthetic { xs, y, mut r } = synthetic()?;
    let m = check_logistic(
        &mut r,
        "lr_noint",
        tight_logistic(0.05, false),
        xs.view(),
        &y,
        1e-5,
    )?;
    assert_eq!(
        m.predict(xs.view())?,
        read_labels(&mut r, "lr_noint_train_pred")?
    );
    Ok(())
}

#[test]
fn logistic_binomial_matches_sklearn_on_synthetic() -> TestResult {
    let Synthetic { xs, y, mut r } = synthetic()?;
    let (xb, yb) = binary_subset(&xs, &y);
    let m = check_logistic(
        &mut r,
        "lrbin",
        tight_logistic(0.3, true),
        xb.view(),
        &yb,
        1e-5,
    )?;
    assert_eq!(
        m.coef().nrows(),
        1,
        "two classes: one coefficient row, as sklearn"
    );
    assert_eq!(m.decision_function(xb.view())?.ncols(), 1);
    assert_eq!(m.predict_proba(xb.view())?.ncols(), 2);
    assert_eq!(
        m.predict(xb.view())?,
        read_labels(&mut r, "lrbin_train_pred")?
    );
    Ok(())
}

#[test]
fn logistic_defaults_agree_with_sklearn_defaults_on_synthetic() -> TestResult {
    // tol = 1e-4 on the scaled gradient stops both well before the optimum, at different points;
    // predictions still agree, and both objectives are close to the optimum's.
    let Synthetic { xs, y, mut r } = synthetic()?;
    let m = LogisticRegressionParams::default().fit(xs.view(), &y)?;
    let theirs = read_scalar(&mut r, "lr_default_objective")?;
    let optimum = read_scalar(&mut r, "lr_objective")?;
    let ours = m.objective(xs.view(), &y)?;
    println!(
        "defaults: ours {ours} in {} iterations ({:?}), sklearn {theirs}, optimum {optimum}",
        m.n_iter(),
        m.stop_reason()
    );
    assert!(ours >= optimum - 1e-9 * optimum);
    assert!((ours - optimum) / optimum < 1e-3);
    let pred = m.predict(xs.view())?;
    assert!(agreement(&pred, &read_labels(&mut r, "lr_default_train_pred")?) >= 0.99);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Linear SVM against scikit-learn
// ---------------------------------------------------------------------------------------------

/// Fits and compares with sklearn's `prefix_*` arrays: per-problem primal objectives (ours no larger
/// beyond `obj_tol` relative), weights to `coef_tol` relative, and (dual solver) the duality gap of our
/// solution.
fn check_svc(
    r: &mut NpzReader<File>,
    prefix: &str,
    params: LinearSvcParams,
    x: ArrayView2<'_, f64>,
    y: &[usize],
    obj_tol: f64,
    coef_tol: f64,
) -> Result<LinearSvc, Box<dyn Error>> {
    let m = params.fit(x, y)?;
    assert!(m.converged(), "{prefix}: n_iter {:?}", m.n_iter());
    let coef = read2(r, &format!("{prefix}_coef"))?;
    let primal = read1(r, &format!("{prefix}_primal"))?;
    let n_iter: Array1<i64> = r.by_name(&format!("{prefix}_n_iter"))?;
    let ours = m.primal_objectives(x, y)?;
    let dc = rel_diff(m.coef(), coef.view());
    println!(
        "{prefix} ({:?}): n_iter {:?} (sklearn {n_iter}), coef rel diff {dc:.2e}, primal ours {ours:?} \
         sklearn {primal}, dual {:?}",
        m.solver(),
        m.n_iter(),
        m.dual_objectives()
    );
    for (j, (&o, &t)) in ours.iter().zip(primal.iter()).enumerate() {
        assert!(
            o <= t * (1.0 + obj_tol),
            "{prefix}[{j}]: primal {o} > sklearn's {t}"
        );
        if let Some(dual) = m.dual_objectives() {
            // Weak duality: primal ≥ −dual, with equality at the optimum.
            let gap = o + dual[j];
            assert!(
                gap >= -1e-9 * o && gap <= obj_tol * o,
                "{prefix}[{j}]: duality gap {gap}"
            );
        }
    }
    assert!(dc <= coef_tol, "{prefix}: weights differ by {dc:e}");
    Ok(m)
}

#[test]
fn linear_svc_matches_sklearn_on_synthetic() -> TestResult {
    let Synthetic { xs, y, mut r } = synthetic()?;
    let m = check_svc(&mut r, "svc", tight_svc(1.0), xs.view(), &y, 1e-6, 1e-3)?;
    let pred = m.predict(xs.view())?;
    let theirs = read_labels(&mut r, "svc_train_pred")?;
    let (a, b) = (agreement(&pred, &y), agreement(&theirs, &y));
    println!("svc train accuracy ours {a:.4} sklearn {b:.4}");
    assert!((a - b).abs() <= 0.005);
    Ok(())
}

#[test]
fn linear_svc_binary_matches_sklearn_on_synthetic() -> TestResult {
    let Synthetic { xs, y, mut r } = synthetic()?;
    let (xb, yb) = binary_subset(&xs, &y);
    let m = check_svc(&mut r, "svcbin", tight_svc(0.3), xb.view(), &yb, 1e-6, 1e-3)?;
    assert_eq!(m.coef().nrows(), 1);
    assert_eq!(
        m.predict(xb.view())?,
        read_labels(&mut r, "svcbin_train_pred")?
    );
    Ok(())
}

#[test]
fn linear_svc_primal_defaults_follow_sklearn_trust_region_newton() -> TestResult {
    // sklearn's defaults pick its primal solver (TRON) here (n > d), as ours do. TRON is deterministic:
    // with the same tolerance both take the same Newton steps and stop at the same iterate, up to
    // rounding.
    let Synthetic { xs, y, mut r } = synthetic()?;
    let m = check_svc(
        &mut r,
        "svcp",
        LinearSvcParams::default(),
        xs.view(),
        &y,
        1e-12,
        1e-6,
    )?;
    assert_eq!(m.solver(), LinearSvcSolver::Primal);
    assert!(m.dual_objectives().is_none());
    let theirs: Array1<i64> = r.by_name("svcp_n_iter")?;
    assert_eq!(m.n_iter().iter().max().copied(), Some(theirs[0] as usize));
    assert_eq!(
        m.predict(xs.view())?,
        read_labels(&mut r, "svcp_train_pred")?
    );
    let (xb, yb) = binary_subset(&xs, &y);
    let params = LinearSvcParams {
        c: 0.3,
        ..LinearSvcParams::default()
    };
    let m = check_svc(&mut r, "svcpbin", params, xb.view(), &yb, 1e-12, 1e-6)?;
    assert_eq!(
        m.predict(xb.view())?,
        read_labels(&mut r, "svcpbin_train_pred")?
    );
    Ok(())
}

#[test]
fn linear_svc_primal_and_dual_reach_the_same_optimum() -> TestResult {
    let Synthetic { xs, y, .. } = synthetic()?;
    let dual = tight_svc(1.0).fit(xs.view(), &y)?;
    let primal = LinearSvcParams {
        tol: 1e-10,
        solver: LinearSvcSolver::Primal,
        ..LinearSvcParams::default()
    }
    .fit(xs.view(), &y)?;
    let (a, b) = (
        dual.primal_objectives(xs.view(), &y)?,
        primal.primal_objectives(xs.view(), &y)?,
    );
    let worst = rel_diff1(&a, &b);
    let dc = rel_diff(primal.coef(), dual.coef());
    println!("primal vs dual: objective rel diff {worst:.2e}, weights rel diff {dc:.2e}");
    assert!(worst <= 1e-9 && dc <= 1e-4);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Digits (needs MATHNN_DATA)
// ---------------------------------------------------------------------------------------------

/// The digits (1,797 × 64 pixel counts 0..16 and labels) from `$MATHNN_DATA`, or `None` with a message.
type Labelled = (Array2<f64>, Vec<usize>);

fn digits() -> Result<Option<Labelled>, Box<dyn Error>> {
    let Some(dir) = std::env::var_os("MATHNN_DATA") else {
        eprintln!("skipped: set MATHNN_DATA (e.g. /work/shared/data) to run the digits comparison");
        return Ok(None);
    };
    let path = PathBuf::from(dir).join("sklearn-digits/digits.csv.gz");
    if !path.exists() {
        eprintln!("skipped: {} not found", path.display());
        return Ok(None);
    }
    let reader = BufReader::new(flate2::read::GzDecoder::new(File::open(&path)?));
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut n = 0;
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Vec<f64> = line
            .split(',')
            .map(|t| t.trim().parse::<f64>())
            .collect::<Result<_, _>>()?;
        if v.len() != 65 {
            return Err(format!("digits row {n} has {} fields", v.len()).into());
        }
        x.extend_from_slice(&v[..64]);
        y.push(v[64] as usize);
        n += 1;
    }
    Ok(Some((Array2::from_shape_vec((n, 64), x)?, y)))
}

struct DigitsSplit {
    xtr: Array2<f64>,
    ytr: Vec<usize>,
    xte: Array2<f64>,
    yte: Vec<usize>,
    r: NpzReader<File>,
}

fn digits_split() -> Result<Option<DigitsSplit>, Box<dyn Error>> {
    let Some((x, y)) = digits()? else {
        return Ok(None);
    };
    let mut r = fixture("digits.npz")?;
    let tr = read_labels(&mut r, "train_idx")?;
    let te = read_labels(&mut r, "test_idx")?;
    let s = Standardizer::fit(x.select(Axis(0), &tr).view())?;
    let mean = read1(&mut r, "scaler_mean")?;
    let scale = read1(&mut r, "scaler_scale")?;
    for j in 0..64 {
        assert!((s.mean()[j] - mean[j]).abs() <= 1e-12 * mean[j].abs().max(1.0));
        assert!((s.scale()[j] - scale[j]).abs() <= 1e-12 * scale[j]);
    }
    Ok(Some(DigitsSplit {
        xtr: s.transform(x.select(Axis(0), &tr).view())?,
        ytr: tr.iter().map(|&i| y[i]).collect(),
        xte: s.transform(x.select(Axis(0), &te).view())?,
        yte: te.iter().map(|&i| y[i]).collect(),
        r,
    }))
}

#[test]
#[ignore = "needs MATHNN_DATA"]
fn logistic_matches_sklearn_on_digits() -> TestResult {
    let Some(DigitsSplit {
        xtr,
        ytr,
        xte,
        yte,
        mut r,
    }) = digits_split()?
    else {
        return Ok(());
    };
    assert_eq!(xtr.nrows(), 1347);
    let m = check_logistic(
        &mut r,
        "lr",
        tight_logistic(1.0, true),
        xtr.view(),
        &ytr,
        1e-4,
    )?;
    let theirs = read_labels(&mut r, "lr_test_pred")?;
    let pred = m.predict(xte.view())?;
    let (a, b) = (agreement(&pred, &yte), agreement(&theirs, &yte));
    println!("digits logistic (tight) test accuracy ours {a:.4} sklearn {b:.4}");
    assert!((a - b).abs() <= 0.005);
    assert!(agreement(&pred, &theirs) >= 0.995);
    let p = m.predict_proba(xte.view())?;
    let want = read2(&mut r, "lr_test_proba")?;
    let dp = p
        .iter()
        .zip(want.iter())
        .fold(0.0f64, |mx, (a, b)| mx.max((a - b).abs()));
    println!("digits logistic (tight) max |Δ proba| {dp:.2e}");
    assert!(dp <= 1e-4);

    // Defaults (tol 1e-4, 100 iterations): both stop early; the accuracies still agree.
    let m = LogisticRegressionParams::default().fit(xtr.view(), &ytr)?;
    let theirs = read_labels(&mut r, "lr_default_test_pred")?;
    let (a, b) = (m.score(xte.view(), &yte)?, agreement(&theirs, &yte));
    println!(
        "digits logistic (defaults) test accuracy ours {a:.4} ({} iterations) sklearn {b:.4}; \
         objective ours {} sklearn {}",
        m.n_iter(),
        m.objective(xtr.view(), &ytr)?,
        read_scalar(&mut r, "lr_default_objective")?
    );
    assert!((a - b).abs() <= 0.005);
    Ok(())
}

#[test]
#[ignore = "needs MATHNN_DATA"]
fn linear_svc_matches_sklearn_on_digits() -> TestResult {
    let Some(DigitsSplit {
        xtr,
        ytr,
        xte,
        yte,
        mut r,
    }) = digits_split()?
    else {
        return Ok(());
    };
    let m = check_svc(&mut r, "svc", tight_svc(1.0), xtr.view(), &ytr, 1e-6, 1e-2)?;
    let theirs = read_labels(&mut r, "svc_test_pred")?;
    let (a, b) = (m.score(xte.view(), &yte)?, agreement(&theirs, &yte));
    println!("digits svc (tight) test accuracy ours {a:.4} sklearn {b:.4}");
    assert!((a - b).abs() <= 0.005);

    // Defaults (n > d: both pick the primal Newton solver). The trust region shrinks to tiny steps
    // here and the solvers take hundreds of Newton steps; both follow the same trajectory for the
    // first dozens of steps (checked by hand with liblinear's verbose log), then rounding differences
    // (different summation orders) send them to different stopping points near the optimum.
    let m = LinearSvcParams::default().fit(xtr.view(), &ytr)?;
    assert_eq!(m.solver(), LinearSvcSolver::Primal);
    assert!(m.converged());
    let ours = m.primal_objectives(xtr.view(), &ytr)?;
    let primal = read1(&mut r, "svc_default_primal")?;
    let optimum = read1(&mut r, "svc_primal")?;
    for j in 0..10 {
        let (o, t, best) = (ours[j], primal[j], optimum[j]);
        assert!(o >= best * (1.0 - 1e-12), "below the optimum?");
        assert!(
            (o - best) / best <= 1e-4,
            "class {j}: {o} vs optimum {best} (sklearn {t})"
        );
    }
    let theirs = read_labels(&mut r, "svc_default_test_pred")?;
    let pred = m.predict(xte.view())?;
    let (a, b) = (agreement(&pred, &yte), agreement(&theirs, &yte));
    println!(
        "digits svc (primal, defaults) n_iter {:?}: test accuracy ours {a:.4} sklearn {b:.4}, \
         predictions agree {:.4}",
        m.n_iter(),
        agreement(&pred, &theirs)
    );
    assert!((a - b).abs() <= 0.005);
    assert!(agreement(&pred, &theirs) >= 0.99);
    // The dual solver with the defaults: 1,000 passes and tol 1e-4 (sklearn's stops at max_iter here
    // too, at another point, since its random order differs); the accuracies still agree.
    let m = LinearSvcParams {
        solver: LinearSvcSolver::Dual,
        ..LinearSvcParams::default()
    }
    .fit(xtr.view(), &ytr)?;
    let theirs = read_labels(&mut r, "svc_dual_default_test_pred")?;
    let (a, b) = (m.score(xte.view(), &yte)?, agreement(&theirs, &yte));
    println!(
        "digits svc (dual, defaults) test accuracy ours {a:.4} (n_iter {:?}) sklearn {b:.4}",
        m.n_iter()
    );
    assert!((a - b).abs() <= 0.005);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn random_problem(n: usize, d: usize, k: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, d), |_| rng.random_range(-2.0..2.0));
    let mut y: Vec<usize> = (0..n).map(|_| rng.random_range(0..k)).collect();
    // Every class present.
    for (c, label) in y.iter_mut().take(k).enumerate() {
        *label = c;
    }
    (x, y)
}

#[test]
fn logistic_gradient_matches_central_differences() -> TestResult {
    for (k, rows, fit_intercept, c) in [(4, 4, true, 0.7), (2, 1, true, 2.0), (3, 3, false, 0.1)] {
        let (x, y) = random_problem(37, 5, k, 11 + k as u64);
        let mut rng = StdRng::seed_from_u64(5);
        let coef = Array2::from_shape_fn((rows, 5), |_| rng.random_range(-1.0..1.0));
        let intercept = Array1::from_shape_fn(rows, |_| rng.random_range(-1.0..1.0));
        let params = LogisticRegressionParams {
            c,
            fit_intercept,
            ..LogisticRegressionParams::default()
        };
        let (f, gc, gi) =
            params.objective_and_gradient(x.view(), &y, coef.view(), intercept.view())?;
        assert!(f.is_finite() && f > 0.0);
        let h = 1e-5;
        let mut worst: f64 = 0.0;
        for idx in 0..rows * 5 + rows {
            let (mut cp, mut cm) = (coef.clone(), coef.clone());
            let (mut ip, mut im) = (intercept.clone(), intercept.clone());
            let analytic = if idx < rows * 5 {
                let (i, j) = (idx / 5, idx % 5);
                cp[[i, j]] += h;
                cm[[i, j]] -= h;
                gc[[i, j]]
            } else {
                let i = idx - rows * 5;
                ip[i] += h;
                im[i] -= h;
                gi[i]
            };
            let (fp, _, _) = params.objective_and_gradient(x.view(), &y, cp.view(), ip.view())?;
            let (fm, _, _) = params.objective_and_gradient(x.view(), &y, cm.view(), im.view())?;
            let numeric = (fp - fm) / (2.0 * h);
            worst = worst.max((numeric - analytic).abs() / analytic.abs().max(1.0));
        }
        println!("k={k} rows={rows} intercept={fit_intercept}: worst FD rel error {worst:.2e}");
        assert!(worst <= 1e-7, "gradient mismatch {worst:e}");
        if !fit_intercept {
            assert!(gi.iter().all(|&g| g == 0.0));
        }
    }
    Ok(())
}

#[test]
fn logistic_objective_at_zero_is_c_n_log_k() -> TestResult {
    let (x, y) = random_problem(50, 3, 5, 1);
    let params = LogisticRegressionParams {
        c: 0.5,
        ..LogisticRegressionParams::default()
    };
    let (f, _, gi) = params.objective_and_gradient(
        x.view(),
        &y,
        Array2::zeros((5, 3)).view(),
        Array1::zeros(5).view(),
    )?;
    assert!((f - 0.5 * 50.0 * 5f64.ln()).abs() < 1e-12);
    // ∂/∂b_k = C·Σᵢ (1/K − [yᵢ = k]).
    for (k, g) in gi.iter().enumerate() {
        let count = y.iter().filter(|&&c| c == k).count() as f64;
        assert!((g - 0.5 * (50.0 / 5.0 - count)).abs() < 1e-12);
    }
    Ok(())
}

#[test]
fn predict_proba_rows_sum_to_one_and_agree_with_predict() -> TestResult {
    for k in [2, 3, 6] {
        let (x, y) = random_problem(120, 4, k, k as u64);
        let m = LogisticRegressionParams::default().fit(x.view(), &y)?;
        let p = m.predict_proba(x.view())?;
        assert_eq!(p.dim(), (120, k));
        let pred = m.predict(x.view())?;
        for (i, row) in p.rows().into_iter().enumerate() {
            assert!((row.sum() - 1.0).abs() <= 1e-12);
            assert!(row.iter().all(|&v| (0.0..=1.0).contains(&v)));
            let best = (0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            assert_eq!(pred[i], best);
        }
    }
    Ok(())
}

#[test]
fn separable_toy_set_is_classified_perfectly() -> TestResult {
    // Three well-separated clusters, and a two-class version.
    let mut rng = StdRng::seed_from_u64(3);
    let centres = [[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]];
    let mut x = Array2::zeros((90, 2));
    let mut y = Vec::new();
    for i in 0..90 {
        let c = i % 3;
        x[[i, 0]] = centres[c][0] + rng.random_range(-1.0..1.0);
        x[[i, 1]] = centres[c][1] + rng.random_range(-1.0..1.0);
        y.push(c);
    }
    let lr = LogisticRegressionParams::default().fit(x.view(), &y)?;
    assert_eq!(lr.predict(x.view())?, y);
    assert_eq!(lr.score(x.view(), &y)?, 1.0);
    let svm = LinearSvcParams::default().fit(x.view(), &y)?;
    assert_eq!(svm.predict(x.view())?, y);
    assert!(svm.converged());
    let keep: Vec<usize> = (0..90).filter(|&i| y[i] < 2).collect();
    let (xb, yb) = (
        x.select(Axis(0), &keep),
        keep.iter().map(|&i| y[i]).collect::<Vec<_>>(),
    );
    assert_eq!(
        LogisticRegressionParams::default()
            .fit(xb.view(), &yb)?
            .predict(xb.view())?,
        yb
    );
    assert_eq!(
        LinearSvcParams::default()
            .fit(xb.view(), &yb)?
            .predict(xb.view())?,
        yb
    );
    Ok(())
}

#[test]
fn fits_are_deterministic_and_independent_of_thread_count() -> TestResult {
    let (x, y) = random_problem(700, 12, 4, 9);
    // 700 rows: three row tasks, so the parallel reductions are exercised.
    let fit_both = || -> Result<(LogisticRegression, LinearSvc, LinearSvc), LinearError> {
        Ok((
            LogisticRegressionParams::default().fit(x.view(), &y)?,
            LinearSvcParams {
                seed: 42,
                solver: LinearSvcSolver::Dual,
                ..LinearSvcParams::default()
            }
            .fit(x.view(), &y)?,
            LinearSvcParams::default().fit(x.view(), &y)?,
        ))
    };
    let mut runs = Vec::new();
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        runs.push(pool.install(fit_both)?);
    }
    assert_eq!(runs[0].2.solver(), LinearSvcSolver::Primal);
    for (lr, svm, primal) in &runs[1..] {
        assert_eq!(
            lr, &runs[0].0,
            "logistic regression differs across thread counts"
        );
        assert_eq!(
            svm, &runs[0].1,
            "dual linear SVM differs across thread counts"
        );
        assert_eq!(
            primal, &runs[0].2,
            "primal linear SVM differs across thread counts"
        );
    }
    assert_eq!(&fit_both()?.1, &runs[0].1, "same seed, same weights");
    // A different seed visits the samples in another order: another point within the tolerance.
    let other = LinearSvcParams {
        seed: 43,
        solver: LinearSvcSolver::Dual,
        ..LinearSvcParams::default()
    }
    .fit(x.view(), &y)?;
    assert_ne!(other.coef(), runs[0].1.coef());
    assert!(rel_diff(other.coef(), runs[0].1.coef()) < 1e-2);
    Ok(())
}

#[test]
fn logistic_stops_on_the_documented_tests() -> TestResult {
    let (x, y) = random_problem(200, 6, 3, 4);
    let m = LogisticRegressionParams {
        tol: 1e-6,
        max_iter: 1000,
        ..LogisticRegressionParams::default()
    }
    .fit(x.view(), &y)?;
    assert!(m.converged());
    if m.stop_reason() == LogisticStop::Gradient {
        assert!(m.final_gradient_max() <= 1e-6);
    }
    let m = LogisticRegressionParams {
        tol: 0.0,
        max_iter: 3,
        ..LogisticRegressionParams::default()
    }
    .fit(x.view(), &y)?;
    assert_eq!(m.stop_reason(), LogisticStop::MaxIter);
    assert_eq!(m.n_iter(), 3);
    assert!(!m.converged());
    Ok(())
}

#[test]
fn non_standard_layout_input_gives_the_same_model() -> TestResult {
    let (x, y) = random_problem(80, 5, 3, 2);
    let xf = x.t().to_owned();
    let a = LogisticRegressionParams::default().fit(x.view(), &y)?;
    let b = LogisticRegressionParams::default().fit(xf.t(), &y)?;
    assert_eq!(a, b);
    let a = LinearSvcParams::default().fit(x.view(), &y)?;
    let b = LinearSvcParams::default().fit(xf.t(), &y)?;
    assert_eq!(a, b);
    // Prediction on a strided view (every other row).
    let every_other = x.slice(s![..;2, ..]);
    assert_eq!(
        a.predict(every_other)?,
        a.predict(every_other.to_owned().view())?
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn every_error_variant_is_returned_for_its_bad_input() -> TestResult {
    let x = array![[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]];
    let y = [0, 1, 2, 1];
    let lr = LogisticRegressionParams::default();
    let svc = LinearSvcParams::default();

    // EmptyInput
    let empty = Array2::<f64>::zeros((0, 2));
    assert_eq!(
        lr.fit(empty.view(), &[]),
        Err(LinearError::EmptyInput {
            n_samples: 0,
            n_features: 2
        })
    );
    assert!(matches!(
        svc.fit(Array2::<f64>::zeros((3, 0)).view(), &[0, 1, 0]),
        Err(LinearError::EmptyInput { .. })
    ));
    assert!(matches!(
        Standardizer::fit(empty.view()),
        Err(LinearError::EmptyInput { .. })
    ));

    // LabelCountMismatch
    assert_eq!(
        lr.fit(x.view(), &[0, 1, 2]),
        Err(LinearError::LabelCountMismatch {
            n_samples: 4,
            n_labels: 3
        })
    );
    assert!(matches!(
        svc.fit(x.view(), &[0, 1, 0, 1, 0]),
        Err(LinearError::LabelCountMismatch { .. })
    ));

    // NonFinite, with its position
    let mut bad = x.clone();
    bad[[2, 1]] = f64::NAN;
    match lr.fit(bad.view(), &y) {
        Err(LinearError::NonFinite {
            row: 2,
            col: 1,
            value,
        }) => assert!(value.is_nan()),
        other => panic!("expected NonFinite, got {other:?}"),
    }
    bad[[2, 1]] = f64::INFINITY;
    assert!(matches!(
        svc.fit(bad.view(), &y),
        Err(LinearError::NonFinite { row: 2, col: 1, .. })
    ));
    assert!(matches!(
        Standardizer::fit(bad.view()),
        Err(LinearError::NonFinite { row: 2, col: 1, .. })
    ));

    // TooFewClasses
    assert_eq!(
        lr.fit(x.view(), &[0, 0, 0, 0]),
        Err(LinearError::TooFewClasses { n_classes: 1 })
    );
    assert!(matches!(
        svc.fit(x.view(), &[0, 0, 0, 0]),
        Err(LinearError::TooFewClasses { .. })
    ));

    // EmptyClass: a label above a missing one, and a huge label
    assert_eq!(
        lr.fit(x.view(), &[0, 2, 2, 0]),
        Err(LinearError::EmptyClass {
            class: 1,
            n_classes: 3
        })
    );
    assert_eq!(
        svc.fit(x.view(), &[0, 1, usize::MAX, 0]),
        Err(LinearError::EmptyClass {
            class: 2,
            n_classes: usize::MAX
        })
    );

    // InvalidParameter, naming the field
    for (p, name) in [
        (LogisticRegressionParams { c: 0.0, ..lr }, "c"),
        (
            LogisticRegressionParams {
                c: f64::INFINITY,
                ..lr
            },
            "c",
        ),
        (LogisticRegressionParams { max_iter: 0, ..lr }, "max_iter"),
        (LogisticRegressionParams { tol: -1.0, ..lr }, "tol"),
        (
            LogisticRegressionParams {
                tol: f64::NAN,
                ..lr
            },
            "tol",
        ),
    ] {
        match p.fit(x.view(), &y) {
            Err(LinearError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("expected InvalidParameter {name}, got {other:?}"),
        }
    }
    for (p, name) in [
        (LinearSvcParams { c: -1.0, ..svc }, "c"),
        (LinearSvcParams { tol: 0.0, ..svc }, "tol"),
        (LinearSvcParams { max_iter: 0, ..svc }, "max_iter"),
        (
            LinearSvcParams {
                intercept_scaling: 0.0,
                ..svc
            },
            "intercept_scaling",
        ),
    ] {
        assert!(p.validate().is_err());
        match p.fit(x.view(), &y) {
            Err(LinearError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("expected InvalidParameter {name}, got {other:?}"),
        }
    }
    assert!(lr.validate().is_ok() && svc.validate().is_ok());

    // FeatureCountMismatch on prediction
    let m = lr.fit(x.view(), &y)?;
    let s = svc.fit(x.view(), &y)?;
    let wide = Array2::<f64>::zeros((2, 3));
    let want = Err(LinearError::FeatureCountMismatch {
        expected: 2,
        found: 3,
    });
    assert_eq!(m.predict(wide.view()), want);
    assert_eq!(
        m.predict_proba(wide.view()).map(|_| ()),
        want.clone().map(|_: Vec<usize>| ())
    );
    assert_eq!(
        m.decision_function(wide.view()).map(|_| ()),
        want.clone().map(|_: Vec<usize>| ())
    );
    assert_eq!(s.predict(wide.view()), want);
    assert!(matches!(
        m.objective(wide.view(), &[0, 1]),
        Err(LinearError::FeatureCountMismatch { .. })
    ));
    assert!(matches!(
        s.primal_objectives(wide.view(), &[0, 1]),
        Err(LinearError::FeatureCountMismatch { .. })
    ));

    // LabelOutOfRange when evaluating
    assert_eq!(
        m.objective(x.view(), &[0, 1, 3, 1]),
        Err(LinearError::LabelOutOfRange {
            index: 2,
            label: 3,
            n_classes: 3
        })
    );
    assert!(matches!(
        s.primal_objectives(x.view(), &[0, 7, 1, 1]),
        Err(LinearError::LabelOutOfRange {
            index: 1,
            label: 7,
            ..
        })
    ));
    assert!(matches!(
        m.score(x.view(), &[0, 1]),
        Err(LinearError::LabelCountMismatch { .. })
    ));

    // ShapeMismatch for hand-given coefficients
    assert_eq!(
        lr.objective_and_gradient(
            x.view(),
            &y,
            Array2::zeros((3, 5)).view(),
            Array1::zeros(3).view()
        )
        .map(|_| ()),
        Err(LinearError::ShapeMismatch {
            name: "coef",
            expected: [3, 2],
            found: [3, 5]
        })
    );
    assert_eq!(
        lr.objective_and_gradient(
            x.view(),
            &y,
            Array2::zeros((3, 2)).view(),
            Array1::zeros(2).view()
        )
        .map(|_| ()),
        Err(LinearError::ShapeMismatch {
            name: "intercept",
            expected: [3, 1],
            found: [2, 1]
        })
    );
    // Messages carry the payloads.
    let e = LinearError::NonFinite {
        row: 4,
        col: 7,
        value: f64::NAN,
    };
    assert!(e.to_string().contains("row 4") && e.to_string().contains("column 7"));
    Ok(())
}
