//! Seeded corruptions of a training set: the randomisation tests of Zhang et al. (ICLR 2017, §2.1).
//!
//! | [`Corruption`] | what happens to the training set |
//! |---|---|
//! | `TrueLabels` | nothing |
//! | `PartialLabels { p }` | independently with probability `p`, label `yᵢ` is replaced by a class drawn uniformly from all `k` classes (it may equal `yᵢ`), so the expected fraction of *changed* labels is `p·(1 − 1/k)` |
//! | `RandomLabels` | `PartialLabels { p: 1 }`: every label uniform and independent of the image |
//! | `ShuffledPixels` | one random permutation of the `H·W` pixel positions, the same for every image (train **and** test, as in the paper) |
//! | `RandomPixels` | a different random permutation of the pixel positions for each training image |
//! | `Gaussian` | every training pixel i.i.d. `N(μ_c, σ_c²)`, with `μ_c`, `σ_c²` the mean and (population) variance of channel `c` over the whole training set |
//!
//! Labels are drawn **once** (fixed across epochs). The test set always keeps its true labels; its images
//! are untouched except under `ShuffledPixels`, where the paper applies the same permutation to the test
//! images (otherwise the condition would test on images of another distribution). Permutations act on
//! pixel positions, identically on every channel, so each image keeps its multiset of values per channel.
//!
//! Label corruption is *nested* across `p`: for each image `i` the generator draws `uᵢ ~ U(0,1)` and
//! `rᵢ ~ U{0..k−1}` whatever `p` is, and the label becomes `rᵢ` when `uᵢ < p`. With the same seed, the
//! images corrupted at `p = 0.2` are a subset of those corrupted at `p = 0.4`, and `p = 1` equals
//! `RandomLabels`.
//!
//! Gaussian images are **not** in `[0, 1]` (e.g. MNIST: μ ≈ 0.13, σ ≈ 0.31, so about a third of the
//! values are negative). nn-core's `Dataset` documents `[0, 1]` but `Dataset::new` does not check the
//! range and nothing downstream depends on it, so the Gaussian set is built through `Dataset::new` as
//! every other one; it is not clipped, as clipping would change the mean and variance.
//!
//! ```
//! use generalization::corrupt::{corrupt, Corruption};
//! use nn_core::data::generated::generated_train_test;
//!
//! let data = generated_train_test(200, 50, 0).unwrap();
//! let c = corrupt(&data.train, &data.test, Corruption::PartialLabels { p: 0.5 }, 7).unwrap();
//! assert_eq!(c.train.len(), 200);
//! // About p·(1 − 1/k) = 45% of the labels change; the test labels never do.
//! assert!((c.summary.fraction_labels_changed - 0.45).abs() < 0.15);
//! assert_eq!(c.test.labels_vec().unwrap(), data.test.labels_vec().unwrap());
//! ```

use candle_core::{Device, Tensor};
use nn_core::data::{Dataset, permutation};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::{GenError, Result};

/// One condition of the randomisation tests (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Corruption {
    /// The data unchanged.
    TrueLabels,
    /// Each label replaced, with probability `p ∈ [0, 1]`, by a uniformly random class.
    PartialLabels { p: f64 },
    /// Every label uniformly random (`p = 1`).
    RandomLabels,
    /// One fixed permutation of pixel positions for all images (train and test).
    ShuffledPixels,
    /// A new permutation of pixel positions for each training image.
    RandomPixels,
    /// I.i.d. Gaussian pixels with the training set's per-channel mean and variance.
    Gaussian,
}

/// Seed streams derived from the user's seed, so that different corruptions do not share random numbers
/// with each other or with the weight initialisation.
const LABEL_STREAM: u64 = 1;
const SHUFFLE_STREAM: u64 = 2;
const RANDOM_PIXEL_STREAM: u64 = 3;
const GAUSSIAN_STREAM: u64 = 4;

/// A seed for `stream` derived from `seed` (SplitMix64 finaliser of `seed + stream·φ`).
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    use nn_core::seed::{GOLDEN_GAMMA, mix64};
    mix64(seed.wrapping_add(stream.wrapping_mul(GOLDEN_GAMMA)))
}

impl Corruption {
    /// Checks `p ∈ [0, 1]` (NaN rejected).
    pub fn validate(&self) -> Result<()> {
        if let Corruption::PartialLabels { p } = *self
            && !(0.0..=1.0).contains(&p)
        {
            return Err(GenError::invalid(
                "p",
                format!("label-corruption probability must be in [0, 1], got {p}"),
            ));
        }
        Ok(())
    }

    /// A short name for files and reports: `true-labels`, `labels-p0.4`, `random-labels`,
    /// `shuffled-pixels`, `random-pixels`, `gaussian`. [`str::parse`] reads it back.
    pub fn name(&self) -> String {
        match self {
            Corruption::TrueLabels => "true-labels".into(),
            Corruption::PartialLabels { p } => format!("labels-p{p}"),
            Corruption::RandomLabels => "random-labels".into(),
            Corruption::ShuffledPixels => "shuffled-pixels".into(),
            Corruption::RandomPixels => "random-pixels".into(),
            Corruption::Gaussian => "gaussian".into(),
        }
    }

    /// The label-corruption level `p` of the label family (`TrueLabels` 0, `RandomLabels` 1); `None` for
    /// the pixel corruptions.
    pub fn label_level(&self) -> Option<f64> {
        match *self {
            Corruption::TrueLabels => Some(0.0),
            Corruption::PartialLabels { p } => Some(p),
            Corruption::RandomLabels => Some(1.0),
            _ => None,
        }
    }

    /// The label-corruption sweep of Figure 1b/c: `TrueLabels`, `PartialLabels` at each interior level,
    /// `RandomLabels` (levels 0 and 1 map to the named conditions).
    pub fn label_sweep(levels: &[f64]) -> Vec<Corruption> {
        levels
            .iter()
            .map(|&p| {
                if p == 0.0 {
                    Corruption::TrueLabels
                } else if p == 1.0 {
                    Corruption::RandomLabels
                } else {
                    Corruption::PartialLabels { p }
                }
            })
            .collect()
    }
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::str::FromStr for Corruption {
    type Err = GenError;

    /// Accepts the [`Corruption::name`]s, plus `true`, `random` and `p<level>`/`labels:<level>`.
    fn from_str(s: &str) -> Result<Self> {
        let c = match s {
            "true-labels" | "true" => Corruption::TrueLabels,
            "random-labels" | "random" => Corruption::RandomLabels,
            "shuffled-pixels" => Corruption::ShuffledPixels,
            "random-pixels" => Corruption::RandomPixels,
            "gaussian" => Corruption::Gaussian,
            _ => {
                let level = s
                    .strip_prefix("labels-p")
                    .or_else(|| s.strip_prefix("labels:"))
                    .or_else(|| s.strip_prefix('p'))
                    .ok_or_else(|| {
                        GenError::invalid(
                            "corruption",
                            format!(
                                "unknown corruption `{s}`; expected true-labels, labels-p<P> (P in [0, 1]), random-labels, shuffled-pixels, random-pixels or gaussian"
                            ),
                        )
                    })?;
                let p: f64 = level.parse().map_err(|_| {
                    GenError::invalid(
                        "corruption",
                        format!("`{s}`: `{level}` is not a number in [0, 1]"),
                    )
                })?;
                Corruption::PartialLabels { p }
            }
        };
        c.validate()?;
        Ok(c)
    }
}

/// Labels with each entry replaced, with probability `p`, by a uniform class of `0..num_classes`.
///
/// For every `i` both `uᵢ ~ U(0,1)` and `rᵢ ~ U{0..k−1}` are drawn, so the corrupted sets are nested in
/// `p` for a fixed seed. Expected fraction changed: `p·(1 − 1/k)`.
pub fn corrupt_labels(labels: &[u32], num_classes: usize, p: f64, seed: u64) -> Result<Vec<u32>> {
    Corruption::PartialLabels { p }.validate()?;
    if num_classes < 2 {
        return Err(GenError::invalid(
            "num_classes",
            format!("need at least 2 classes, got {num_classes}"),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    Ok(labels
        .iter()
        .map(|&y| {
            let u: f64 = rng.random();
            let r = rng.random_range(0..num_classes as u32);
            if u < p { r } else { y }
        })
        .collect())
}

/// Applies `perm` (a permutation of `0..h·w`) to every channel of every image of `pixels`
/// (`[n, c, h·w]` row-major): `out[i, ch, j] = pixels[i, ch, perm[j]]`.
pub fn permute_pixels(pixels: &[f32], channels: usize, perm: &[usize]) -> Result<Vec<f32>> {
    check_permutation(perm)?;
    let plane = perm.len();
    check_layout(pixels, channels, plane)?;
    let mut out = Vec::with_capacity(pixels.len());
    for image_plane in pixels.chunks_exact(plane) {
        out.extend(perm.iter().map(|&j| image_plane[j]));
    }
    Ok(out)
}

/// Each image of `pixels` (`[n, c, h·w]`) with its own seeded permutation of the `h·w` positions (the
/// same for all channels of that image).
pub fn random_pixels(pixels: &[f32], channels: usize, plane: usize, seed: u64) -> Result<Vec<f32>> {
    let image = check_layout(pixels, channels, plane)?;
    let mut out = Vec::with_capacity(pixels.len());
    for (i, img) in pixels.chunks_exact(image).enumerate() {
        let perm = permutation(plane, derive_seed(seed, i as u64));
        for ch in img.chunks_exact(plane) {
            out.extend(perm.iter().map(|&j| ch[j]));
        }
    }
    Ok(out)
}

/// Mean and standard deviation of one channel over a whole data set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    /// `μ = (1/M) Σ x`.
    pub mean: f64,
    /// `σ = √((1/M) Σ (x − μ)²)` (population).
    pub std: f64,
}

/// Per-channel mean and population standard deviation of `pixels` (`[n, c, h·w]`), accumulated in f64.
pub fn channel_stats(pixels: &[f32], channels: usize, plane: usize) -> Result<Vec<ChannelStats>> {
    let image = check_layout(pixels, channels, plane)?;
    if pixels.is_empty() {
        return Err(GenError::invalid(
            "pixels",
            "no images to take statistics of",
        ));
    }
    let count = (pixels.len() / image * plane) as f64;
    let mut sums = vec![(0.0f64, 0.0f64); channels];
    for img in pixels.chunks_exact(image) {
        for (ch, values) in img.chunks_exact(plane).enumerate() {
            for &v in values {
                sums[ch].0 += v as f64;
            }
        }
    }
    let means: Vec<f64> = sums.iter().map(|s| s.0 / count).collect();
    for img in pixels.chunks_exact(image) {
        for (ch, values) in img.chunks_exact(plane).enumerate() {
            for &v in values {
                sums[ch].1 += (v as f64 - means[ch]).powi(2);
            }
        }
    }
    let stats: Vec<ChannelStats> = means
        .iter()
        .zip(&sums)
        .map(|(&mean, s)| ChannelStats {
            mean,
            std: (s.1 / count).sqrt(),
        })
        .collect();
    if stats
        .iter()
        .any(|s| !s.mean.is_finite() || !s.std.is_finite())
    {
        return Err(GenError::invalid(
            "pixels",
            "images contain NaN or infinite values",
        ));
    }
    Ok(stats)
}

/// `n` images of `[c, h·w]` with i.i.d. `N(μ_c, σ_c²)` pixels, `stats` giving `(μ_c, σ_c)` per channel.
pub fn gaussian_pixels(
    n: usize,
    plane: usize,
    stats: &[ChannelStats],
    seed: u64,
) -> Result<Vec<f32>> {
    let normals = stats
        .iter()
        .map(|s| {
            Normal::new(s.mean, s.std).map_err(|e| {
                GenError::invalid(
                    "stats",
                    format!("bad Gaussian N({}, {}²): {e}", s.mean, s.std),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n * stats.len() * plane);
    for _ in 0..n {
        for normal in &normals {
            out.extend((0..plane).map(|_| normal.sample(&mut rng) as f32));
        }
    }
    Ok(out)
}

/// Checks that `pixels` holds whole images of `channels × plane` values; returns the image size.
fn check_layout(pixels: &[f32], channels: usize, plane: usize) -> Result<usize> {
    let image = channels * plane;
    if image == 0 || !pixels.len().is_multiple_of(image) {
        return Err(GenError::invalid(
            "pixels",
            format!(
                "length {} is not a multiple of channels·h·w = {channels}·{plane}",
                pixels.len()
            ),
        ));
    }
    Ok(image)
}

fn check_permutation(perm: &[usize]) -> Result<()> {
    let mut seen = vec![false; perm.len()];
    for &j in perm {
        if j >= perm.len() || std::mem::replace(&mut seen[j], true) {
            return Err(GenError::invalid(
                "perm",
                format!("not a permutation of 0..{}", perm.len()),
            ));
        }
    }
    Ok(())
}

/// What [`corrupt`] did, for reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorruptionSummary {
    pub corruption: Corruption,
    pub seed: u64,
    pub train_images: usize,
    pub test_images: usize,
    pub num_classes: usize,
    /// Training labels that differ from the true ones.
    pub labels_changed: usize,
    /// `labels_changed / train_images`.
    pub fraction_labels_changed: f64,
    /// `p·(1 − 1/k)` for the label family, 0 for the pixel corruptions.
    pub expected_fraction_changed: f64,
    /// True when the test images were permuted as well (`ShuffledPixels` only).
    pub test_images_permuted: bool,
    /// Per-channel `(μ, σ)` of the training set used by `Gaussian`.
    pub gaussian_stats: Option<Vec<ChannelStats>>,
}

/// A corrupted training set, the matching test set and a summary.
#[derive(Debug, Clone)]
pub struct Corrupted {
    pub train: Dataset,
    pub test: Dataset,
    pub summary: CorruptionSummary,
}

/// The images' pixels on the host, flattened.
pub(crate) fn pixels_of(d: &Dataset) -> Result<Vec<f32>> {
    Ok(d.images
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

fn with_images(d: &Dataset, pixels: Vec<f32>, suffix: &str) -> Result<Dataset> {
    let (c, h, w) = d.image_shape();
    let images =
        Tensor::from_vec(pixels, (d.len(), c, h, w), &Device::Cpu)?.to_device(d.images.device())?;
    Ok(Dataset::new(
        images,
        d.labels.clone(),
        d.classes.clone(),
        format!("{}[{suffix}]", d.name),
        d.provenance,
    )?)
}

/// Applies `corruption` to `train` with `seed`; `test` keeps its true labels (and, except for
/// `ShuffledPixels`, its images). The corrupted set is named `<train name>[<corruption name>]`.
pub fn corrupt(
    train: &Dataset,
    test: &Dataset,
    corruption: Corruption,
    seed: u64,
) -> Result<Corrupted> {
    corruption.validate()?;
    if train.is_empty() {
        return Err(GenError::bad_data(&train.name, "the training set is empty"));
    }
    if train.image_shape() != test.image_shape() || train.num_classes() != test.num_classes() {
        return Err(GenError::bad_data(
            &test.name,
            format!(
                "test images {:?} with {} classes do not match the training set's {:?} with {} classes",
                test.image_shape(),
                test.num_classes(),
                train.image_shape(),
                train.num_classes()
            ),
        ));
    }
    let k = train.num_classes();
    let (c, h, w) = train.image_shape();
    let plane = h * w;
    let name = corruption.name();
    let mut test_out = test.clone();
    let mut gaussian_stats = None;
    let train_out = match corruption {
        Corruption::TrueLabels => train.clone(),
        Corruption::PartialLabels { .. } | Corruption::RandomLabels => {
            let p = corruption.label_level().unwrap_or(1.0);
            let labels =
                corrupt_labels(&train.labels_vec()?, k, p, derive_seed(seed, LABEL_STREAM))?;
            let labels = Tensor::from_vec(labels, train.len(), train.labels.device())?;
            Dataset::new(
                train.images.clone(),
                labels,
                train.classes.clone(),
                format!("{}[{name}]", train.name),
                train.provenance,
            )?
        }
        Corruption::ShuffledPixels => {
            let perm = permutation(plane, derive_seed(seed, SHUFFLE_STREAM));
            test_out = with_images(test, permute_pixels(&pixels_of(test)?, c, &perm)?, &name)?;
            with_images(train, permute_pixels(&pixels_of(train)?, c, &perm)?, &name)?
        }
        Corruption::RandomPixels => {
            let pixels = random_pixels(
                &pixels_of(train)?,
                c,
                plane,
                derive_seed(seed, RANDOM_PIXEL_STREAM),
            )?;
            with_images(train, pixels, &name)?
        }
        Corruption::Gaussian => {
            let stats = channel_stats(&pixels_of(train)?, c, plane)?;
            let pixels = gaussian_pixels(
                train.len(),
                plane,
                &stats,
                derive_seed(seed, GAUSSIAN_STREAM),
            )?;
            gaussian_stats = Some(stats);
            with_images(train, pixels, &name)?
        }
    };
    let changed = train
        .labels_vec()?
        .iter()
        .zip(train_out.labels_vec()?)
        .filter(|(a, b)| **a != *b)
        .count();
    let summary = CorruptionSummary {
        corruption,
        seed,
        train_images: train.len(),
        test_images: test.len(),
        num_classes: k,
        labels_changed: changed,
        fraction_labels_changed: changed as f64 / train.len() as f64,
        expected_fraction_changed: corruption
            .label_level()
            .map_or(0.0, |p| p * (1.0 - 1.0 / k as f64)),
        test_images_permuted: corruption == Corruption::ShuffledPixels,
        gaussian_stats,
    };
    Ok(Corrupted {
        train: train_out,
        test: test_out,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use nn_core::data::Provenance;

    use super::*;

    /// `n` images of 1×4×4 (or `c` channels) with distinct values, labels `i % k`.
    fn toy(n: usize, c: usize, k: usize) -> Dataset {
        let len = n * c * 16;
        let pixels: Vec<f32> = (0..len).map(|i| i as f32 / len as f32).collect();
        let images = Tensor::from_vec(pixels, (n, c, 4, 4), &Device::Cpu).unwrap();
        let labels: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
        let labels = Tensor::from_vec(labels, n, &Device::Cpu).unwrap();
        let classes = (0..k).map(|i| i.to_string()).collect();
        Dataset::new(images, labels, classes, "toy", Provenance::Generated).unwrap()
    }

    fn pixels(d: &Dataset) -> Vec<f32> {
        pixels_of(d).unwrap()
    }

    #[test]
    fn changed_fraction_is_p_times_one_minus_one_over_k() {
        // n = 20,000 labels: the changed fraction is Binomial/n with sd ≤ 0.0036; allow 4 sd.
        let n = 20_000;
        let labels: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
        for (p, k) in [(0.2, 10), (0.6, 10), (1.0, 10), (0.5, 2)] {
            let labels: Vec<u32> = labels.iter().map(|&y| y % k as u32).collect();
            let out = corrupt_labels(&labels, k, p, 3).unwrap();
            let changed = labels.iter().zip(&out).filter(|(a, b)| a != b).count();
            let frac = changed as f64 / n as f64;
            let expect = p * (1.0 - 1.0 / k as f64);
            assert!(
                (frac - expect).abs() < 0.015,
                "p={p}, k={k}: {frac} vs {expect}"
            );
            assert!(out.iter().all(|&y| (y as usize) < k));
        }
        // p = 0 changes nothing; under p = 1 each class keeps ≈ 1/k of its own members.
        assert_eq!(corrupt_labels(&labels, 10, 0.0, 3).unwrap(), labels);
        let all = corrupt_labels(&labels, 10, 1.0, 3).unwrap();
        let mut counts = [0usize; 10];
        for &y in &all {
            counts[y as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (1_800..2_200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn label_corruption_is_seeded_and_nested_in_p() {
        let labels: Vec<u32> = (0..2_000).map(|i| (i % 10) as u32).collect();
        let a = corrupt_labels(&labels, 10, 0.3, 5).unwrap();
        assert_eq!(a, corrupt_labels(&labels, 10, 0.3, 5).unwrap());
        assert_ne!(a, corrupt_labels(&labels, 10, 0.3, 6).unwrap());
        let b = corrupt_labels(&labels, 10, 0.6, 5).unwrap();
        // Every label changed at p = 0.3 is changed the same way at p = 0.6.
        for i in 0..labels.len() {
            if a[i] != labels[i] {
                assert_eq!(a[i], b[i], "image {i}");
            }
        }
        // Random labels are exactly p = 1 on the same seed.
        let d = toy(200, 1, 10);
        let r = corrupt(&d, &d, Corruption::RandomLabels, 9).unwrap();
        let p1 = corrupt(&d, &d, Corruption::PartialLabels { p: 1.0 }, 9).unwrap();
        assert_eq!(
            r.train.labels_vec().unwrap(),
            p1.train.labels_vec().unwrap()
        );
    }

    #[test]
    fn shuffled_pixels_keep_each_images_multiset_and_share_one_permutation() {
        let d = toy(6, 2, 3);
        let test = toy(4, 2, 3);
        let c = corrupt(&d, &test, Corruption::ShuffledPixels, 1).unwrap();
        let (before, after) = (pixels(&d), pixels(&c.train));
        assert_ne!(before, after);
        for (x, y) in before.chunks(16).zip(after.chunks(16)) {
            let (mut x, mut y) = (x.to_vec(), y.to_vec());
            x.sort_by(f32::total_cmp);
            y.sort_by(f32::total_cmp);
            assert_eq!(x, y, "each channel plane keeps its values");
        }
        // One permutation: the position map is the same in every plane, train and test.
        let map = |b: &[f32], a: &[f32]| -> Vec<usize> {
            a.iter()
                .map(|v| b.iter().position(|u| u == v).unwrap())
                .collect()
        };
        let first = map(&before[..16], &after[..16]);
        for (x, y) in before.chunks(16).zip(after.chunks(16)) {
            assert_eq!(map(x, y), first);
        }
        let (tb, ta) = (pixels(&test), pixels(&c.test));
        assert_eq!(map(&tb[..16], &ta[..16]), first);
        assert!(c.summary.test_images_permuted);
        assert_eq!(c.train.labels_vec().unwrap(), d.labels_vec().unwrap());
        assert_eq!(c.test.labels_vec().unwrap(), test.labels_vec().unwrap());
    }

    #[test]
    fn random_pixels_use_a_new_permutation_per_image() {
        let d = toy(8, 1, 2);
        let c = corrupt(&d, &d, Corruption::RandomPixels, 4).unwrap();
        let (before, after) = (pixels(&d), pixels(&c.train));
        let mut maps = Vec::new();
        for (x, y) in before.chunks(16).zip(after.chunks(16)) {
            let (mut xs, mut ys) = (x.to_vec(), y.to_vec());
            xs.sort_by(f32::total_cmp);
            ys.sort_by(f32::total_cmp);
            assert_eq!(xs, ys);
            maps.push(
                y.iter()
                    .map(|v| x.iter().position(|u| u == v).unwrap())
                    .collect::<Vec<_>>(),
            );
        }
        maps.sort();
        maps.dedup();
        assert_eq!(maps.len(), 8, "eight images, eight different permutations");
        // The test set is untouched.
        assert_eq!(pixels(&c.test), before);
        assert!(!c.summary.test_images_permuted);
    }

    #[test]
    fn gaussian_inputs_match_the_training_moments() {
        // Two channels with different moments: channel 0 values i/len, channel 1 doubled and shifted.
        let n = 400;
        let plane = 16;
        let mut px = Vec::new();
        for i in 0..n {
            for j in 0..plane {
                let v = ((i * plane + j) % 97) as f32 / 97.0;
                px.push(v);
            }
            for j in 0..plane {
                px.push(0.5 + 0.2 * (((i + j) % 5) as f32 - 2.0));
            }
        }
        let images = Tensor::from_vec(px.clone(), (n, 2, 4, 4), &Device::Cpu).unwrap();
        let labels = Tensor::zeros(n, candle_core::DType::U32, &Device::Cpu).unwrap();
        let d = Dataset::new(
            images,
            labels,
            vec!["a".into(), "b".into()],
            "two-channel",
            Provenance::Generated,
        )
        .unwrap();
        let c = corrupt(&d, &d, Corruption::Gaussian, 2).unwrap();
        let want = channel_stats(&px, 2, plane).unwrap();
        // Channel 1 takes values 0.1, 0.3, 0.5, 0.7, 0.9 equally often: μ = 0.5, σ² = 0.08.
        assert!((want[1].mean - 0.5).abs() < 1e-6);
        assert!((want[1].std - 0.08f64.sqrt()).abs() < 1e-6);
        assert_eq!(c.summary.gaussian_stats.as_deref(), Some(&want[..]));
        let got = channel_stats(&pixels(&c.train), 2, plane).unwrap();
        for (g, w) in got.iter().zip(&want) {
            // 6,400 samples per channel: sd of the mean ≈ σ/80.
            assert!(
                (g.mean - w.mean).abs() < 4.0 * w.std / 80.0,
                "{g:?} vs {w:?}"
            );
            assert!((g.std / w.std - 1.0).abs() < 0.05, "{g:?} vs {w:?}");
        }
        assert_eq!(pixels(&c.test), px, "test images untouched");
        assert_eq!(c.summary.labels_changed, 0);
    }

    #[test]
    fn test_set_is_untouched_and_train_shapes_kept() {
        let train = toy(50, 1, 5);
        let test = toy(20, 1, 5);
        for corruption in [
            Corruption::TrueLabels,
            Corruption::PartialLabels { p: 0.4 },
            Corruption::RandomLabels,
            Corruption::RandomPixels,
            Corruption::Gaussian,
        ] {
            let c = corrupt(&train, &test, corruption, 11).unwrap();
            assert_eq!(pixels(&c.test), pixels(&test), "{corruption}");
            assert_eq!(
                c.test.labels_vec().unwrap(),
                test.labels_vec().unwrap(),
                "{corruption}"
            );
            assert_eq!(c.train.images.dims(), train.images.dims());
            assert_eq!(c.train.provenance, train.provenance);
            // Same seed, same corrupted set.
            let again = corrupt(&train, &test, corruption, 11).unwrap();
            assert_eq!(pixels(&again.train), pixels(&c.train));
            assert_eq!(
                again.train.labels_vec().unwrap(),
                c.train.labels_vec().unwrap()
            );
        }
        let c = corrupt(&train, &test, Corruption::TrueLabels, 0).unwrap();
        assert_eq!(c.train.name, "toy");
        let c = corrupt(&train, &test, Corruption::RandomLabels, 0).unwrap();
        assert_eq!(c.train.name, "toy[random-labels]");
        assert!((c.summary.expected_fraction_changed - 0.8).abs() < 1e-12);
    }

    #[test]
    fn names_parse_back_and_bad_input_is_rejected() {
        for c in [
            Corruption::TrueLabels,
            Corruption::PartialLabels { p: 0.4 },
            Corruption::RandomLabels,
            Corruption::ShuffledPixels,
            Corruption::RandomPixels,
            Corruption::Gaussian,
        ] {
            assert_eq!(c.name().parse::<Corruption>().unwrap(), c);
        }
        assert_eq!(
            "p0.2".parse::<Corruption>().unwrap(),
            Corruption::PartialLabels { p: 0.2 }
        );
        for bad in ["p1.5", "labels-pNaN", "labels-p-0.1", "noise"] {
            let err = bad.parse::<Corruption>().unwrap_err().to_string();
            assert!(
                err.contains("corruption") || err.contains("`p`"),
                "{bad}: {err}"
            );
        }
        assert!(corrupt_labels(&[0, 1], 10, f64::NAN, 0).is_err());
        assert!(corrupt_labels(&[0, 1], 1, 0.5, 0).is_err());
        assert!(permute_pixels(&[0.0; 8], 1, &[0, 0, 1, 2]).is_err());
        let nan = vec![f32::NAN; 16];
        let err = channel_stats(&nan, 1, 16).unwrap_err().to_string();
        assert!(err.contains("NaN"), "{err}");
        // Mismatched test set.
        let err = corrupt(&toy(4, 1, 3), &toy(4, 2, 3), Corruption::TrueLabels, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("do not match"), "{err}");
        assert_eq!(
            Corruption::label_sweep(&[0.0, 0.5, 1.0]),
            vec![
                Corruption::TrueLabels,
                Corruption::PartialLabels { p: 0.5 },
                Corruption::RandomLabels
            ]
        );
    }
}
