//! [`SampleScorer`]: every metric of one image set against a fixed reference set, computed with one
//! domain classifier — FID on its penultimate features and on its logits, KID, the Inception Score of its
//! class probabilities, and the Geometry Score on pixels. A GAN experiment scores each checkpoint's
//! samples, and a few fixed sets (held-out data, noise, broken generators), with it; the reference
//! statistics are computed once.
//!
//! ```
//! use candle_core::Device;
//! use gan_eval::features::DomainClassifier;
//! use gan_eval::gs::GsConfig;
//! use gan_eval::scorer::{SampleScorer, ScorerParams, uniform_noise_images};
//! use nn_core::models::{InputSpec, ModelConfig, ModelKind};
//!
//! let config = ModelConfig { mlp_widths: vec![16], ..ModelConfig::new(ModelKind::Mlp, InputSpec::new(1, 28, 28, 10)) };
//! let clf = DomainClassifier::new(&config, 0, &Device::Cpu)?; // untrained: fine for an example
//! let reference = uniform_noise_images(40, 1)?;
//! let defaults = ScorerParams::default();
//! let gs = GsConfig { landmarks: 16, n_draws: 4, ..defaults.gs };
//! let params = ScorerParams { kid_subsets: 2, kid_subset_size: 20, gs_points: 40, gs, ..defaults };
//! let scorer = SampleScorer::new(clf, &reference, params, None)?;
//! let same = scorer.score("the reference itself", None, &reference, None)?;
//! assert!(same.fid.abs() < 1e-6 && same.gs == 0.0);
//! # Ok::<(), gan_eval::GanEvalError>(())
//! ```

use candle_core::{Device, Tensor};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::features::DomainClassifier;
use nn_core::progress::Progress;

use crate::gs::{GsConfig, mean_rlt_with_progress};
use crate::{FrechetStats, Result, fid, geometry_score, inception_score, kid, stream_seed};

/// Every score of one image set against the reference set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub name: String,
    /// Generator iteration (GAN checkpoints only).
    pub iteration: Option<usize>,
    /// FID on the classifier's penultimate features.
    pub fid: f64,
    /// FID on the classifier's logits.
    pub fid_logits: f64,
    pub kid: f64,
    pub kid_std: f64,
    pub is_mean: f64,
    pub is_std: f64,
    /// Geometry Score on pixels (×1, not ×10³); NaN where undefined (see `gs_undefined`).
    pub gs: f64,
    /// Images scored.
    pub n: usize,
    /// Why the Geometry Score is undefined (e.g. every point identical: the witness complex has no scale).
    #[serde(skip)]
    pub gs_undefined: Option<String>,
    /// The set's mean relative living times on pixels, the curve the Geometry Score compares (empty where
    /// `gs_undefined`). Not serialised: it is `gs.i_max` numbers per set.
    #[serde(skip)]
    pub mrlt: Vec<f64>,
}

/// How a [`SampleScorer`] computes each metric.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorerParams {
    /// KID: number of subsets (default 100) of `kid_subset_size` (default 1,000) images, drawn with
    /// `kid_seed` (default 0).
    pub kid_subsets: usize,
    pub kid_subset_size: usize,
    pub kid_seed: u64,
    /// Inception Score splits (default 10).
    pub is_splits: usize,
    /// Geometry Score: the first `gs_points` images of each set (default 1,000) as pixel vectors, with
    /// `gs` (default: 64 landmarks, γ = 1/128, i_max = 100, 100 draws, seed 0 — the Geometry Score
    /// paper's MNIST setting).
    pub gs_points: usize,
    pub gs: GsConfig,
    /// Images per classifier forward pass (default 500).
    pub batch_size: usize,
}

impl Default for ScorerParams {
    fn default() -> Self {
        Self {
            kid_subsets: 100,
            kid_subset_size: 1000,
            kid_seed: 0,
            is_splits: 10,
            gs_points: 1000,
            gs: GsConfig {
                landmarks: 64,
                gamma: Some(1.0 / 128.0),
                i_max: 100,
                n_draws: 100,
                seed: 0,
            },
            batch_size: 500,
        }
    }
}

/// Scores image sets against one reference set with one domain classifier.
pub struct SampleScorer {
    clf: DomainClassifier,
    params: ScorerParams,
    ref_features: Array2<f64>,
    ref_stats: FrechetStats,
    ref_logit_stats: FrechetStats,
    ref_mrlt: Vec<f64>,
    ref_is: (f64, f64),
}

impl SampleScorer {
    /// Computes the reference statistics of `reference` (`[N, C, H, W]`, the classifier's input) with
    /// `clf` (trained by the caller); `progress` counts the reference's Geometry Score draws.
    pub fn new(
        clf: DomainClassifier,
        reference: &Tensor,
        params: ScorerParams,
        progress: Option<&dyn Progress>,
    ) -> Result<Self> {
        let out = clf.extract(reference, params.batch_size)?;
        let pixels = pixel_rows(reference, params.gs_points)?;
        let ref_mrlt = mean_rlt_with_progress(pixels.view(), &params.gs, progress)?.mrlt;
        let is = inception_score(out.probs.view(), params.is_splits)?;
        Ok(Self {
            ref_stats: FrechetStats::from_features(out.features.view())?,
            ref_logit_stats: FrechetStats::from_features(out.logits.view())?,
            ref_features: out.features,
            ref_mrlt,
            ref_is: (is.mean, is.std),
            clf,
            params,
        })
    }

    /// The Inception Score (mean, standard deviation) of the reference set itself.
    pub fn reference_is(&self) -> (f64, f64) {
        self.ref_is
    }

    /// The reference set's mean relative living times on pixels.
    pub fn reference_mrlt(&self) -> &[f64] {
        &self.ref_mrlt
    }

    /// The settings.
    pub fn params(&self) -> &ScorerParams {
        &self.params
    }

    /// Scores `images` (same layout as the reference). The Geometry Score of a set whose MRLT cannot be
    /// computed (all points identical) is NaN with the reason in `gs_undefined`; every other failure is an
    /// error. `progress` counts the Geometry Score draws.
    pub fn score(
        &self,
        name: &str,
        iteration: Option<usize>,
        images: &Tensor,
        progress: Option<&dyn Progress>,
    ) -> Result<Scores> {
        let p = &self.params;
        let out = self.clf.extract(images, p.batch_size)?;
        let k = kid(
            out.features.view(),
            self.ref_features.view(),
            p.kid_subsets,
            p.kid_subset_size,
            p.kid_seed,
        )?;
        let is = inception_score(out.probs.view(), p.is_splits)?;
        let pixels = pixel_rows(images, p.gs_points)?;
        let (gs, gs_undefined, mrlt) = match mean_rlt_with_progress(pixels.view(), &p.gs, progress)
        {
            Ok(m) => (geometry_score(&m.mrlt, &self.ref_mrlt)?, None, m.mrlt),
            Err(e) => (f64::NAN, Some(e.to_string()), Vec::new()),
        };
        Ok(Scores {
            name: name.to_string(),
            iteration,
            fid: fid(
                &FrechetStats::from_features(out.features.view())?,
                &self.ref_stats,
            )?,
            fid_logits: fid(
                &FrechetStats::from_features(out.logits.view())?,
                &self.ref_logit_stats,
            )?,
            kid: k.kid,
            kid_std: k.std,
            is_mean: is.mean,
            is_std: is.std,
            gs,
            n: images.dims()[0],
            gs_undefined,
            mrlt,
        })
    }
}

/// The first `n` images (all, if fewer) as rows of f64 pixel values: the point cloud the Geometry Score
/// of an image set is computed on.
pub fn pixel_rows(images: &Tensor, n: usize) -> Result<Array2<f64>> {
    let n = n.min(images.dims().first().copied().unwrap_or(0));
    if n == 0 {
        return Err(crate::GanEvalError::invalid(
            "images",
            "no images to take pixels from",
        ));
    }
    let v = images.narrow(0, 0, n)?.flatten_all()?.to_vec1::<f32>()?;
    let per_image = v.len() / n;
    Ok(
        Array2::from_shape_vec((n, per_image), v.into_iter().map(f64::from).collect())
            .expect("n rows of len / n values"),
    )
}

/// `n` 28×28 single-channel images of i.i.d. uniform [0, 1) pixels, a function of `seed` alone (the noise
/// ceiling of MNIST-like comparisons).
pub fn uniform_noise_images(n: usize, seed: u64) -> Result<Tensor> {
    let v: Vec<f32> = (0..(n * 784) as u64)
        .map(|i| ((stream_seed(seed, i) >> 11) as f64 * 2f64.powi(-53)) as f32)
        .collect();
    Ok(Tensor::from_vec(v, (n, 1, 28, 28), &Device::Cpu)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nn_core::models::{InputSpec, ModelConfig, ModelKind};

    /// (total announced, draws counted).
    #[derive(Default)]
    struct Draws(std::sync::Mutex<(u64, u64)>);

    impl Progress for Draws {
        fn start(&self, total: u64, _done: u64) {
            self.0.lock().unwrap().0 = total;
        }
        fn advance(&self, n: u64) {
            self.0.lock().unwrap().1 += n;
        }
    }

    fn scorer(reference: &Tensor) -> SampleScorer {
        let config = ModelConfig {
            mlp_widths: vec![32],
            ..ModelConfig::new(ModelKind::Mlp, InputSpec::new(1, 28, 28, 10))
        };
        let clf = DomainClassifier::new(&config, 3, &Device::Cpu).unwrap();
        let params = ScorerParams {
            kid_subsets: 4,
            kid_subset_size: 30,
            gs_points: 60,
            gs: GsConfig {
                n_draws: 8,
                landmarks: 16,
                ..ScorerParams::default().gs
            },
            ..ScorerParams::default()
        };
        SampleScorer::new(clf, reference, params, None).unwrap()
    }

    #[test]
    fn scores_match_the_metrics_computed_directly() {
        let reference = uniform_noise_images(60, 1).unwrap();
        let other = (uniform_noise_images(60, 2).unwrap() * 0.5).unwrap();
        let s = scorer(&reference);
        let draws = Draws::default();
        let got = s
            .score("half-bright noise", Some(7), &other, Some(&draws))
            .unwrap();
        assert_eq!(
            *draws.0.lock().unwrap(),
            (8, 8),
            "announced and counted draws"
        );
        // The same numbers from the metric functions themselves.
        let (a, b) = (
            s.clf.extract(&other, 500).unwrap(),
            s.clf.extract(&reference, 500).unwrap(),
        );
        let fa = FrechetStats::from_features(a.features.view()).unwrap();
        let fb = FrechetStats::from_features(b.features.view()).unwrap();
        assert_eq!(got.fid, fid(&fa, &fb).unwrap());
        let k = kid(a.features.view(), b.features.view(), 4, 30, 0).unwrap();
        assert_eq!((got.kid, got.kid_std), (k.kid, k.std));
        let is = inception_score(a.probs.view(), 10).unwrap();
        assert_eq!((got.is_mean, got.is_std), (is.mean, is.std));
        let gs_cfg = &s.params().gs;
        let m1 = mean_rlt_with_progress(pixel_rows(&other, 60).unwrap().view(), gs_cfg, None);
        let m2 = mean_rlt_with_progress(pixel_rows(&reference, 60).unwrap().view(), gs_cfg, None);
        let (m1, m2) = (m1.unwrap().mrlt, m2.unwrap().mrlt);
        assert_eq!(got.gs, geometry_score(&m1, &m2).unwrap());
        assert_eq!(
            (got.mrlt.as_slice(), s.reference_mrlt()),
            (&m1[..], &m2[..])
        );
        assert_eq!(m1.len(), gs_cfg.i_max);
        assert_eq!(
            (got.iteration, got.n, got.gs_undefined),
            (Some(7), 60, None)
        );
        assert!(got.fid > 0.0);
        // The reference against itself: FID 0 up to rounding, GS exactly 0.
        let same = s.score("itself", None, &reference, None).unwrap();
        assert!(same.fid.abs() < 1e-9 && same.gs == 0.0, "{same:?}");
    }

    #[test]
    fn identical_images_have_an_undefined_geometry_score_not_an_error() {
        let reference = uniform_noise_images(60, 1).unwrap();
        let s = scorer(&reference);
        let one = reference
            .narrow(0, 0, 1)
            .unwrap()
            .repeat((60, 1, 1, 1))
            .unwrap();
        let got = s.score("one image", None, &one, None).unwrap();
        assert!(got.gs.is_nan());
        assert!(got.gs_undefined.is_some() && got.mrlt.is_empty());
        assert!(got.fid.is_finite());
    }

    #[test]
    fn noise_and_pixel_rows_are_seeded_and_shaped() {
        let a = uniform_noise_images(3, 5).unwrap();
        assert_eq!(a.dims(), &[3, 1, 28, 28]);
        let v = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|&x| (0.0..1.0).contains(&x)));
        assert_eq!(
            v,
            uniform_noise_images(3, 5)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        );
        assert_ne!(
            v,
            uniform_noise_images(3, 6)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        );
        let rows = pixel_rows(&a, 2).unwrap();
        assert_eq!(rows.dim(), (2, 784));
        assert_eq!(rows[[1, 5]], f64::from(v[784 + 5]));
        assert_eq!(pixel_rows(&a, 10).unwrap().dim(), (3, 784));
    }
}
