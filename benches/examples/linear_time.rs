//! Logistic regression and linear SVM fit times and test accuracy on MNIST HOG features, against
//! scikit-learn on the very same (standardised) matrices, for interleaved A/B runs:
//!
//! ```text
//! MATHNN_DATA=../shared/data cargo run --release -p benches --example linear_time -- write 10000 2000 /tmp/mnist-hog
//! cargo run --release -p benches --example linear_time -- fit /tmp/mnist-hog 3
//! OPENBLAS_NUM_THREADS=1 python3 benches/peers/linear.py time --features /tmp/mnist-hog/xtr.npy \
//!     --labels /tmp/mnist-hog/ytr.npy --test-features /tmp/mnist-hog/xte.npy --test-labels /tmp/mnist-hog/yte.npy \
//!     --cases lr_default,svc_default --repeat 3
//! ```
//! `write` takes the first N training and M test images of MNIST, computes HOG (9 orientations, 4×4-pixel
//! cells, 2×2 blocks, L2-Hys: 1,296 values) and standardises with the training statistics. `fit` reports the
//! best of R fits of each model (scikit-learn's defaults: C = 1; the SVM's `Auto` solver is the primal
//! Newton method when samples outnumber features, as sklearn's `dual="auto"`). One rayon thread unless
//! `RAYON_NUM_THREADS` says otherwise.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use classical::features::{hog_features, labels};
use classical::hog::HogParams;
use classical::linear::{LinearSvcParams, LogisticRegressionParams, Standardizer};
use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use nn_core::data::{DataLocator, DatasetName, load_dataset};

fn write(n_train: usize, n_test: usize, dir: &Path) -> Result<()> {
    let data = load_dataset(DatasetName::Mnist, &DataLocator::from_env(None))
        .context("MNIST (set MATHNN_DATA)")?;
    let (train, test) = (data.train.take(n_train)?, data.test.take(n_test)?);
    let params = HogParams {
        pixels_per_cell: (4, 4),
        cells_per_block: (2, 2),
        ..HogParams::default()
    };
    let (xtr, xte) = (
        hog_features(&train, &params, None)?,
        hog_features(&test, &params, None)?,
    );
    let (scaler, xtr) = Standardizer::fit_transform(xtr.view())?;
    let xte = scaler.transform(xte.view())?;
    std::fs::create_dir_all(dir)?;
    let labels_i64 =
        |v: Vec<usize>| Array1::from(v.into_iter().map(|l| l as i64).collect::<Vec<_>>());
    xtr.write_npy(std::fs::File::create(dir.join("xtr.npy"))?)?;
    xte.write_npy(std::fs::File::create(dir.join("xte.npy"))?)?;
    labels_i64(labels(&train)?).write_npy(std::fs::File::create(dir.join("ytr.npy"))?)?;
    labels_i64(labels(&test)?).write_npy(std::fs::File::create(dir.join("yte.npy"))?)?;
    println!(
        "wrote {} ({} × {} train, {} test)",
        dir.display(),
        xtr.nrows(),
        xtr.ncols(),
        xte.nrows()
    );
    Ok(())
}

fn fit(dir: &Path, repeat: usize) -> Result<()> {
    let read_x = |name: &str| -> Result<Array2<f64>> {
        Ok(Array2::read_npy(std::fs::File::open(dir.join(name))?)?)
    };
    let read_y = |name: &str| -> Result<Vec<usize>> {
        Ok(
            Array1::<i64>::read_npy(std::fs::File::open(dir.join(name))?)?
                .iter()
                .map(|&l| l as usize)
                .collect(),
        )
    };
    let (xtr, xte, ytr, yte) = (
        read_x("xtr.npy")?,
        read_x("xte.npy")?,
        read_y("ytr.npy")?,
        read_y("yte.npy")?,
    );
    let accuracy = |p: Vec<usize>| {
        p.iter().zip(&yte).filter(|(a, b)| a == b).count() as f64 / yte.len() as f64
    };
    let mut best = [f64::INFINITY; 2];
    let mut acc = [0.0; 2];
    for _ in 0..repeat {
        let t = Instant::now();
        let lr = LogisticRegressionParams::default().fit(xtr.view(), &ytr)?;
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        acc[0] = accuracy(lr.predict(xte.view())?);
        let t = Instant::now();
        let svm = LinearSvcParams::default().fit(xtr.view(), &ytr)?;
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        acc[1] = accuracy(svm.predict(xte.view())?);
    }
    println!(
        "mathnn lr_default: {:.3} s, test accuracy {:.4}",
        best[0], acc[0]
    );
    println!(
        "mathnn svc_default: {:.3} s, test accuracy {:.4}",
        best[1], acc[1]
    );
    Ok(())
}

fn main() -> Result<()> {
    benches::global_pool_one_thread_by_default()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["write", n, m, dir] => write(n.parse()?, m.parse()?, Path::new(dir)),
        ["fit", dir, repeat] => fit(Path::new(dir), repeat.parse()?),
        _ => bail!("usage: linear_time write N_TRAIN N_TEST DIR | linear_time fit DIR REPEAT"),
    }
}
