//! [`Dataset`]: images `[N, C, H, W]` f32 in `[0, 1]`, labels `[N]` u32, class names; subsets, splits,
//! shuffles and a seeded mini-batch iterator.

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::{NnError, Result};

/// Where a data set's numbers came from; reports label results made from generated data as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Provenance {
    /// Read from real data files.
    Real,
    /// Made by [`crate::data::generated`]: not a real data set.
    Generated,
}

impl Provenance {
    /// `"real data"` or `"generated data"`: how reports label numbers made from such data.
    pub fn label(self) -> &'static str {
        match self {
            Provenance::Real => "real data",
            Provenance::Generated => "generated data",
        }
    }
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// An order-sensitive hash of tensors' shapes and values: FNV-1a over the dimensions and the f32 bits
/// of every value, as 16 hex digits. Exact (no sums that a change could cancel); about 0.1 s for MNIST.
pub fn fingerprint_tensors(tensors: &[&Tensor]) -> Result<String> {
    const FNV_PRIME: u64 = 0x100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in tensors {
        for d in t.dims() {
            h = (h ^ *d as u64).wrapping_mul(FNV_PRIME);
        }
        for v in t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()? {
            h = (h ^ u64::from(v.to_bits())).wrapping_mul(FNV_PRIME);
        }
    }
    Ok(format!("{h:016x}"))
}

/// A labelled image data set held in memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// `[N, C, H, W]`, f32, values in `[0, 1]`.
    pub images: Tensor,
    /// `[N]`, u32, each `< classes.len()`.
    pub labels: Tensor,
    /// Class names, indexed by label.
    pub classes: Vec<String>,
    /// A short name for reports, e.g. `mnist/train`.
    pub name: String,
    /// Real or generated.
    pub provenance: Provenance,
}

impl Dataset {
    /// Checks shapes, dtypes and label range, then builds the data set.
    pub fn new(
        images: Tensor,
        labels: Tensor,
        classes: Vec<String>,
        name: impl Into<String>,
        provenance: Provenance,
    ) -> Result<Self> {
        let name = name.into();
        let dims = images.dims();
        if dims.len() != 4 {
            return Err(NnError::Shape {
                context: format!("images of data set `{name}`"),
                expected: "[N, C, H, W]".into(),
                got: format!("{dims:?}"),
            });
        }
        if labels.dims() != [dims[0]] {
            return Err(NnError::Shape {
                context: format!("labels of data set `{name}`"),
                expected: format!("[{}] (one per image)", dims[0]),
                got: format!("{:?}", labels.dims()),
            });
        }
        let images = images.to_dtype(DType::F32)?;
        let labels = labels.to_dtype(DType::U32)?;
        if classes.is_empty() {
            return Err(NnError::invalid(
                "classes",
                format!("data set `{name}` has no classes"),
            ));
        }
        if dims[0] > 0 {
            let max = labels.max(0)?.to_scalar::<u32>()? as usize;
            if max >= classes.len() {
                return Err(NnError::invalid(
                    "labels",
                    format!(
                        "data set `{name}` has label {max} but only {} classes",
                        classes.len()
                    ),
                ));
            }
        }
        Ok(Self {
            images,
            labels,
            classes,
            name,
            provenance,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.dims()[0]
    }

    /// True when the data set holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(C, H, W)` of one image.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        let d = self.images.dims();
        (d[1], d[2], d[3])
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// What checkpoints record of the data they were trained on: name, size, image shape, classes and
    /// a hash of every pixel and label ([`fingerprint_tensors`]), so a run resumes only on the very same
    /// data (a changed pixel, a relabelled image or a reordering changes it).
    pub fn fingerprint(&self) -> Result<String> {
        let (c, h, w) = self.image_shape();
        let labels = self.labels.to_dtype(DType::F32)?;
        Ok(format!(
            "{} ({} images of {c}×{h}×{w}, {} classes, content {})",
            self.name,
            self.len(),
            self.num_classes(),
            fingerprint_tensors(&[&self.images, &labels])?
        ))
    }

    /// Labels as a vector.
    pub fn labels_vec(&self) -> Result<Vec<u32>> {
        Ok(self.labels.to_vec1::<u32>()?)
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(NnError::invalid(
                "indices",
                format!(
                    "index {bad} out of range for data set `{}` of {} images",
                    self.name,
                    self.len()
                ),
            ));
        }
        let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let idx = Tensor::from_vec(idx, indices.len(), self.images.device())?;
        Ok(Dataset {
            images: self.images.index_select(&idx, 0)?,
            labels: self.labels.index_select(&idx, 0)?,
            classes: self.classes.clone(),
            name: self.name.clone(),
            provenance: self.provenance,
        })
    }

    /// The first `n` images (all of them when `n >= len`).
    pub fn take(&self, n: usize) -> Result<Dataset> {
        let n = n.min(self.len());
        Ok(Dataset {
            images: self.images.narrow(0, 0, n)?,
            labels: self.labels.narrow(0, 0, n)?,
            ..self.clone()
        })
    }

    /// A seeded random permutation of the data set.
    pub fn shuffle(&self, seed: u64) -> Result<Dataset> {
        self.subset(&permutation(self.len(), seed))
    }

    /// Splits into `(first, second)` after a seeded shuffle, `first` holding `round(fraction · N)` images.
    /// Stratified: each class is split in the same proportion.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..=1.0).contains(&fraction) || fraction.is_nan() {
            return Err(NnError::invalid(
                "fraction",
                format!("must be in [0, 1], got {fraction}"),
            ));
        }
        let labels = self.labels_vec()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut first, mut second) = (Vec::new(), Vec::new());
        for class in 0..self.num_classes() as u32 {
            let mut members: Vec<usize> = labels
                .iter()
                .enumerate()
                .filter(|(_, l)| **l == class)
                .map(|(i, _)| i)
                .collect();
            members.shuffle(&mut rng);
            let k = (fraction * members.len() as f64).round() as usize;
            first.extend_from_slice(&members[..k]);
            second.extend_from_slice(&members[k..]);
        }
        first.shuffle(&mut rng);
        second.shuffle(&mut rng);
        Ok((self.subset(&first)?, self.subset(&second)?))
    }

    /// Moves the tensors to `device`.
    pub fn to_device(&self, device: &Device) -> Result<Dataset> {
        Ok(Dataset {
            images: self.images.to_device(device)?,
            labels: self.labels.to_device(device)?,
            ..self.clone()
        })
    }

    /// Mini-batches of `batch_size` (the last one may be smaller). With `Some(seed)` the order is a seeded
    /// permutation, otherwise the stored order.
    pub fn batches(&self, batch_size: usize, seed: Option<u64>) -> Result<Batches<'_>> {
        if batch_size == 0 {
            return Err(NnError::invalid("batch_size", "must be at least 1"));
        }
        let order = seed.map(|s| permutation(self.len(), s));
        Ok(Batches {
            data: self,
            batch_size,
            order,
            pos: 0,
        })
    }
}

/// A seeded permutation of `0..n`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed));
    idx
}

/// Iterator over `(images, labels)` mini-batches; see [`Dataset::batches`].
pub struct Batches<'a> {
    data: &'a Dataset,
    batch_size: usize,
    order: Option<Vec<usize>>,
    pos: usize,
}

impl Batches<'_> {
    /// Number of batches in total.
    pub fn num_batches(&self) -> usize {
        self.data.len().div_ceil(self.batch_size)
    }
}

impl Iterator for Batches<'_> {
    type Item = Result<(Tensor, Tensor)>;

    fn next(&mut self) -> Option<Self::Item> {
        let n = self.data.len();
        if self.pos >= n {
            return None;
        }
        let end = (self.pos + self.batch_size).min(n);
        let start = self.pos;
        self.pos = end;
        let batch = || -> Result<(Tensor, Tensor)> {
            match &self.order {
                None => Ok((
                    self.data.images.narrow(0, start, end - start)?,
                    self.data.labels.narrow(0, start, end - start)?,
                )),
                Some(order) => {
                    let idx: Vec<u32> = order[start..end].iter().map(|&i| i as u32).collect();
                    let idx = Tensor::from_vec(idx, end - start, self.data.images.device())?;
                    Ok((
                        self.data.images.index_select(&idx, 0)?,
                        self.data.labels.index_select(&idx, 0)?,
                    ))
                }
            }
        };
        Some(batch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Dataset {
        let images = Tensor::arange(0f32, (n * 4) as f32, &Device::Cpu)
            .unwrap()
            .reshape((n, 1, 2, 2))
            .unwrap()
            .affine(1.0 / (n * 4) as f64, 0.0)
            .unwrap();
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        let labels = Tensor::from_vec(labels, n, &Device::Cpu).unwrap();
        Dataset::new(
            images,
            labels,
            vec!["a".into(), "b".into(), "c".into()],
            "toy",
            Provenance::Generated,
        )
        .unwrap()
    }

    #[test]
    fn the_fingerprint_changes_with_any_pixel_label_or_order() -> Result<()> {
        let d = toy(6);
        let base = d.fingerprint()?;
        assert_eq!(base, toy(6).fingerprint()?);
        assert!(
            base.starts_with("toy (6 images of 1×2×2, 3 classes, content "),
            "{base}"
        );
        // One pixel nudged by one f32 ulp.
        let mut pixels = d.images.flatten_all()?.to_vec1::<f32>()?;
        pixels[13] = f32::from_bits(pixels[13].to_bits() + 1);
        let nudged = Dataset {
            images: Tensor::from_vec(pixels, (6, 1, 2, 2), &Device::Cpu)?,
            ..d.clone()
        };
        // One label changed; two images swapped (labels with them).
        let mut labels = d.labels_vec()?;
        labels[4] = (labels[4] + 1) % 3;
        let relabelled = Dataset {
            labels: Tensor::from_vec(labels, 6, &Device::Cpu)?,
            ..d.clone()
        };
        let swapped = d.subset(&[1, 0, 2, 3, 4, 5])?;
        for other in [nudged, relabelled, swapped] {
            assert_ne!(other.fingerprint()?, base);
        }
        Ok(())
    }

    #[test]
    fn batches_cover_every_index_once() {
        let d = toy(10);
        let mut seen = Vec::new();
        for b in d.batches(3, Some(7)).unwrap() {
            let (x, _) = b.unwrap();
            let first = x
                .flatten_from(1)
                .unwrap()
                .get_on_dim(1, 0)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            seen.extend(first.iter().map(|v| (v * 40.0 / 4.0).round() as usize));
        }
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(d.batches(3, None).unwrap().num_batches(), 4);
    }

    #[test]
    fn same_seed_same_order_and_split_is_stratified() {
        let d = toy(30);
        assert_eq!(permutation(30, 1), permutation(30, 1));
        assert_ne!(permutation(30, 1), permutation(30, 2));
        let (a, b) = d.split(0.8, 3).unwrap();
        assert_eq!(a.len(), 24);
        assert_eq!(b.len(), 6);
        let la = a.labels_vec().unwrap();
        for c in 0..3 {
            assert_eq!(la.iter().filter(|&&l| l == c).count(), 8);
        }
    }

    #[test]
    fn bad_labels_are_rejected() {
        let images = Tensor::zeros((2, 1, 2, 2), DType::F32, &Device::Cpu).unwrap();
        let labels = Tensor::new(&[0u32, 5], &Device::Cpu).unwrap();
        let err = Dataset::new(
            images.clone(),
            labels,
            vec!["a".into()],
            "x",
            Provenance::Real,
        )
        .unwrap_err();
        assert!(err.to_string().contains("label 5"), "{err}");
        let labels = Tensor::new(&[0u32], &Device::Cpu).unwrap();
        let err =
            Dataset::new(images, labels, vec!["a".into()], "x", Provenance::Real).unwrap_err();
        assert!(err.to_string().contains("one per image"), "{err}");
    }
}
