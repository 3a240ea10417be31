//! Data sets: IDX (MNIST, Fashion-MNIST), CIFAR-style binaries (Oxford-IIIT Pet cats vs dogs), image files,
//! locating and downloading data, and a generated fallback.
//!
//! The usual entry point is [`load_dataset`] with a [`DataLocator`]:
//!
//! ```no_run
//! use nn_core::data::{DataLocator, DatasetName, load_dataset};
//!
//! let locator = DataLocator::from_env(None);
//! let data = load_dataset("mnist".parse::<DatasetName>()?, &locator)?;
//! assert_eq!(data.train.len(), 60_000);
//! # Ok::<(), nn_core::NnError>(())
//! ```

pub mod cifar;
pub mod dataset;
#[cfg(feature = "download")]
pub mod download;
pub mod generated;
pub mod idx;
pub mod image_io;
pub mod load;
pub mod locate;

pub use cifar::load_cifar_binary;
pub use dataset::{Batches, Dataset, Provenance, fingerprint_tensors, permutation};
pub use generated::{generated_digits, generated_train_test};
pub use idx::{IdxImages, load_idx_dataset, read_idx_images, read_idx_labels};
pub use image_io::{load_image, load_photo_center_crop, save_image, save_image_grid};
pub use load::{TrainTest, load_dataset, load_sklearn_digits};
pub use locate::{
    DataLocator, DatasetName, FileStatus, MIRROR_VAR, RemoteFile, SKIMAGE_PHOTOS, SKLEARN_DIGITS,
    default_mirrors, fetch, fetch_files, mirrors, verify,
};
