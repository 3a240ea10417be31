//! Finding, downloading and verifying the real data sets.
//!
//! A data set lives in `<root>/<subdir>/` (for example `../shared/data/mnist/`), where `<root>` is, in
//! order of preference, the `--data-dir` given on the command line, `$MATHNN_DATA`, or the cache
//! (`$MATHNN_CACHE`, else `$XDG_CACHE_HOME/mathnn`, else `$HOME/.cache/mathnn`). Downloads go through a
//! temporary file in the destination directory that is renamed into place only after its SHA-256
//! matches; a file that fails the check is deleted, never used.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{NnError, Result};

/// The data sets `mathnn` knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DatasetName {
    /// MNIST handwritten digits, 28×28 grey, 60k train + 10k test.
    Mnist,
    /// Fashion-MNIST clothing, 28×28 grey, 60k train + 10k test.
    FashionMnist,
    /// 370 Oxford-IIIT Pet photos, cats vs dogs, 32×32 RGB.
    Pets32,
    /// 370 Oxford-IIIT Pet photos, cats vs dogs, 64×64 RGB.
    Pets64,
    /// Synthetic digit-like glyphs made in memory (see [`crate::data::generated`]).
    Generated,
}

/// A file of a data set with its size and checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name, also its name on the mirrors.
    pub name: &'static str,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: &'static str,
    /// Size in bytes.
    pub bytes: u64,
}

const MNIST_FILES: &[RemoteFile] = &[
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        bytes: 9_912_422,
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        bytes: 28_881,
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        bytes: 1_648_877,
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        bytes: 4_542,
    },
];

const FASHION_FILES: &[RemoteFile] = &[
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        bytes: 26_421_880,
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        bytes: 29_515,
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        bytes: 4_422_102,
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        bytes: 5_148,
    },
];

const PETS32_FILES: &[RemoteFile] = &[RemoteFile {
    name: "oxford_pets_370_32x32.bin",
    sha256: "51eead1875c67a998f0a9527fc0b62b9a5b1e6b6b39d842c5ad7a4e2c55237b1",
    bytes: 1_137_380,
}];

const PETS64_FILES: &[RemoteFile] = &[RemoteFile {
    name: "oxford_pets_370_64x64.bin",
    sha256: "0d761617d17676781ba9f40a73cc760edf92777da09198b454d02a3db93019fe",
    bytes: 4_547_300,
}];

impl DatasetName {
    /// Every data set, in a fixed order.
    pub const ALL: [DatasetName; 5] = [
        DatasetName::Mnist,
        DatasetName::FashionMnist,
        DatasetName::Pets32,
        DatasetName::Pets64,
        DatasetName::Generated,
    ];

    /// The name used on the command line: `mnist`, `fashion-mnist`, `pets32`, `pets64`, `generated`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Pets32 => "pets32",
            DatasetName::Pets64 => "pets64",
            DatasetName::Generated => "generated",
        }
    }

    /// The files the data set needs, with sizes and SHA-256 (none for `generated`).
    pub fn files(self) -> &'static [RemoteFile] {
        match self {
            DatasetName::Mnist => MNIST_FILES,
            DatasetName::FashionMnist => FASHION_FILES,
            DatasetName::Pets32 => PETS32_FILES,
            DatasetName::Pets64 => PETS64_FILES,
            DatasetName::Generated => &[],
        }
    }

    /// The directory under a data root that holds the files: `mnist`, `fashion-mnist`, `oxford-pets`
    /// (`generated` for the generated set, which has no files).
    pub fn subdir(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Pets32 | DatasetName::Pets64 => "oxford-pets",
            DatasetName::Generated => "generated",
        }
    }

    /// True when the data set is read from files (everything but `generated`).
    pub fn has_files(self) -> bool {
        !self.files().is_empty()
    }

    /// True when [`default_mirrors`] knows where to download the data set.
    pub fn is_downloadable(self) -> bool {
        !default_mirrors(self).is_empty()
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = NnError;

    /// Parses a command-line name (case-insensitive; `_` is accepted for `-`).
    fn from_str(s: &str) -> Result<Self> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        DatasetName::ALL
            .into_iter()
            .find(|d| d.as_str() == norm)
            .ok_or_else(|| {
                let valid: Vec<&str> = DatasetName::ALL.iter().map(|d| d.as_str()).collect();
                NnError::invalid(
                    "dataset",
                    format!("unknown data set `{s}`; valid names: {}", valid.join(", ")),
                )
            })
    }
}

/// Base URLs that serve the files of `name` (each ends with `/`); empty for data sets that cannot be
/// downloaded (the pets files and `generated`).
pub fn default_mirrors(name: DatasetName) -> Vec<String> {
    let urls: &[&str] = match name {
        DatasetName::Mnist => &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        DatasetName::FashionMnist => {
            &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
        }
        DatasetName::Pets32 | DatasetName::Pets64 | DatasetName::Generated => &[],
    };
    urls.iter().map(|u| u.to_string()).collect()
}

/// The environment variable that replaces the public mirrors (comma-separated base URLs; `{name}` in a
/// URL is replaced by the data set's folder name, e.g. `mnist`): a local mirror, or a test server.
pub const MIRROR_VAR: &str = "MATHNN_MIRROR";

/// The mirrors to fetch `name` from: those of `$MATHNN_MIRROR` when it is set, else [`default_mirrors`].
pub fn mirrors(name: DatasetName) -> Vec<String> {
    match std::env::var(MIRROR_VAR) {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|u| u.trim().replace("{name}", name.subdir()))
            .filter(|u| !u.is_empty())
            .collect(),
        _ => default_mirrors(name),
    }
}

/// Where to look for data sets; see [`DataLocator::locate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataLocator {
    /// `--data-dir` from the command line; when given it must exist.
    pub data_dir: Option<PathBuf>,
    /// `$MATHNN_DATA`.
    pub env_dir: Option<PathBuf>,
    /// The download cache: `$MATHNN_CACHE`, else `$XDG_CACHE_HOME/mathnn`, else `$HOME/.cache/mathnn`.
    pub cache_dir: Option<PathBuf>,
}

/// The value of environment variable `key` as a path, if set and non-empty.
fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl DataLocator {
    /// A locator with `data_dir` (from `--data-dir`) and the other places from the environment.
    pub fn from_env(data_dir: Option<PathBuf>) -> Self {
        let cache_dir = env_path("MATHNN_CACHE")
            .or_else(|| env_path("XDG_CACHE_HOME").map(|p| p.join("mathnn")))
            .or_else(|| env_path("HOME").map(|p| p.join(".cache").join("mathnn")));
        DataLocator {
            data_dir,
            env_dir: env_path("MATHNN_DATA"),
            cache_dir,
        }
    }

    /// The roots to search, in order, each with where it came from.
    fn roots(&self) -> Vec<(&'static str, &Path)> {
        [
            ("--data-dir", &self.data_dir),
            ("MATHNN_DATA", &self.env_dir),
            ("cache", &self.cache_dir),
        ]
        .into_iter()
        .filter_map(|(what, p)| p.as_deref().map(|p| (what, p)))
        .collect()
    }

    /// The directory `<root>/<subdir>/` that holds every file of `name`, searching `--data-dir`, then
    /// `$MATHNN_DATA`, then the cache. Only presence is checked here; [`verify`] checks contents.
    ///
    /// An explicit `data_dir` that does not exist is an error. When nothing is found the
    /// [`NnError::DataNotFound`] lists every place searched and what was missing there.
    pub fn locate(&self, name: DatasetName) -> Result<PathBuf> {
        if !name.has_files() {
            return Err(NnError::invalid(
                "dataset",
                format!("`{name}` is made in memory and has no files to locate"),
            ));
        }
        if let Some(dir) = &self.data_dir
            && !dir.is_dir()
        {
            let what = if dir.exists() {
                "is not a directory"
            } else {
                "does not exist"
            };
            return Err(NnError::invalid(
                "--data-dir",
                format!("{} {what}", dir.display()),
            ));
        }
        let mut searched = Vec::new();
        for (what, root) in self.roots() {
            let dir = root.join(name.subdir());
            let missing: Vec<&str> = name
                .files()
                .iter()
                .filter(|f| !dir.join(f.name).is_file())
                .map(|f| f.name)
                .collect();
            if missing.is_empty() {
                return Ok(dir);
            }
            let why = if !dir.is_dir() {
                "no such directory".to_string()
            } else {
                format!("missing {}", missing.join(", "))
            };
            searched.push(format!("{} ({what}: {why})", dir.display()));
        }
        let searched = if searched.is_empty() {
            "nowhere (no --data-dir, MATHNN_DATA, MATHNN_CACHE, XDG_CACHE_HOME or HOME)".to_string()
        } else {
            searched.join("; ")
        };
        let hint = if name.is_downloadable() {
            format!("run `mathnn data fetch {name}` or pass --data-dir / set MATHNN_DATA")
        } else {
            format!(
                "pass --data-dir / set MATHNN_DATA to a folder holding {}/ (e.g. ../shared/data); \
                 these files are not downloadable",
                name.subdir()
            )
        };
        Err(NnError::DataNotFound {
            dataset: name.to_string(),
            searched,
            hint,
        })
    }
}

/// The check of one file by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileStatus {
    /// File name.
    pub name: String,
    /// True when the file exists with the expected size and SHA-256.
    pub ok: bool,
    /// `ok`, or what is wrong.
    pub reason: String,
}

/// The photos of `skimage-photos/` (scikit-image 0.26's `skimage/data/`, unchanged) used by the deep image
/// prior, with their sizes and SHA-256 as scikit-image's data registry lists them.
pub const SKIMAGE_PHOTOS: &[RemoteFile] = &[
    RemoteFile {
        name: "astronaut.png",
        sha256: "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        bytes: 791_555,
    },
    RemoteFile {
        name: "camera.png",
        sha256: "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
        bytes: 139_512,
    },
];

/// scikit-learn's "digits" (`sklearn-digits/digits.csv.gz`, from the scikit-learn 1.9.1 wheel): 1,797
/// 8×8 images of pixel counts 0..16 and their labels.
pub const SKLEARN_DIGITS: RemoteFile = RemoteFile {
    name: "digits.csv.gz",
    sha256: "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
    bytes: 57_523,
};

impl DataLocator {
    /// `<root>/skimage-photos/<name>` for one of [`SKIMAGE_PHOTOS`], from the first root (`--data-dir`,
    /// `$MATHNN_DATA`, the cache) that has it with the right size and SHA-256. A file with the wrong
    /// contents is an error naming it; no file anywhere is [`NnError::DataNotFound`].
    pub fn locate_photo(&self, name: &str) -> Result<PathBuf> {
        let Some(file) = SKIMAGE_PHOTOS.iter().find(|f| f.name == name) else {
            let known: Vec<&str> = SKIMAGE_PHOTOS.iter().map(|f| f.name).collect();
            return Err(NnError::invalid(
                "photo",
                format!("unknown photo `{name}`; known: {}", known.join(", ")),
            ));
        };
        self.locate_checked(
            "skimage-photos",
            file,
            "scikit-image's",
            "put scikit-image's data photos in <data dir>/skimage-photos/ (see shared/data/README.md)",
        )
    }

    /// `<root>/sklearn-digits/digits.csv.gz` ([`SKLEARN_DIGITS`]), checked as [`DataLocator::locate_photo`]
    /// checks photos.
    pub fn locate_sklearn_digits(&self) -> Result<PathBuf> {
        self.locate_checked(
            "sklearn-digits",
            &SKLEARN_DIGITS,
            "scikit-learn's",
            "put scikit-learn's digits.csv.gz in <data dir>/sklearn-digits/ (see shared/data/README.md)",
        )
    }

    /// `<root>/<subdir>/<file>` from the first root that has it, with its size and SHA-256 checked.
    fn locate_checked(
        &self,
        subdir: &str,
        file: &RemoteFile,
        owner: &str,
        hint: &str,
    ) -> Result<PathBuf> {
        let name = file.name;
        let mut searched = Vec::new();
        for (what, root) in self.roots() {
            let path = root.join(subdir).join(name);
            if !path.is_file() {
                searched.push(format!("{what} {}", path.display()));
                continue;
            }
            let bytes = std::fs::metadata(&path)
                .map_err(|e| NnError::io(&path, e))?
                .len();
            if bytes != file.bytes || sha256_file(&path)? != file.sha256 {
                return Err(NnError::bad_file(
                    &path,
                    format!(
                        "is not {owner} {name} ({bytes} bytes; expected {} bytes with SHA-256 {})",
                        file.bytes, file.sha256
                    ),
                ));
            }
            return Ok(path);
        }
        Err(NnError::DataNotFound {
            dataset: format!("{subdir}/{name}"),
            searched: if searched.is_empty() {
                "nowhere (no --data-dir, MATHNN_DATA or cache)".into()
            } else {
                searched.join("; ")
            },
            hint: hint.into(),
        })
    }
}

/// Lower-case hex SHA-256 of a file, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| NnError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = f.read(&mut buf).map_err(|e| NnError::io(path, e))?;
        if k == 0 {
            break;
        }
        hasher.update(&buf[..k]);
    }
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks one file of `dir` against its expected size and SHA-256.
pub(crate) fn check_file(dir: &Path, file: &RemoteFile) -> Result<FileStatus> {
    let path = dir.join(file.name);
    let status = |ok: bool, reason: String| FileStatus {
        name: file.name.to_string(),
        ok,
        reason,
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Ok(status(false, "not a regular file".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(status(false, "missing".into()));
        }
        Err(e) => return Err(NnError::io(&path, e)),
    };
    if meta.len() != file.bytes {
        return Ok(status(
            false,
            format!("size is {} bytes, expected {}", meta.len(), file.bytes),
        ));
    }
    let actual = sha256_file(&path)?;
    if actual != file.sha256 {
        return Ok(status(
            false,
            format!("sha256 mismatch: expected {}, found {actual}", file.sha256),
        ));
    }
    Ok(status(true, "ok".into()))
}

/// Checks every file of `name` in `dir` (the data set's own directory, as returned by
/// [`DataLocator::locate`]) for presence, size and SHA-256. `generated` has no files: empty list.
pub fn verify(dir: &Path, name: DatasetName) -> Result<Vec<FileStatus>> {
    if name.has_files() && !dir.is_dir() {
        return Err(NnError::invalid(
            "dir",
            format!("{} is not a directory (data set `{name}`)", dir.display()),
        ));
    }
    name.files().iter().map(|f| check_file(dir, f)).collect()
}

/// Downloads the files of `name` that are missing or invalid into `<dest_root>/<subdir>/`, trying
/// `mirrors` in order (pass [`default_mirrors`] for the usual ones), and returns that directory.
///
/// Data sets without mirrors (the pets files) can only be fetched from mirrors given explicitly;
/// `generated` needs no download. `progress` counts the bytes of each download (see [`fetch_files`]).
pub fn fetch(
    name: DatasetName,
    dest_root: &Path,
    mirrors: &[String],
    progress: Option<&dyn crate::progress::Progress>,
) -> Result<PathBuf> {
    if !name.has_files() {
        return Err(NnError::invalid(
            "dataset",
            format!("`{name}` is made in memory; there is nothing to fetch"),
        ));
    }
    if mirrors.is_empty() {
        let reason = if name.is_downloadable() {
            "no mirror given".to_string()
        } else {
            format!(
                "`{name}` is not downloadable (no public mirror serves these files); copy {}/ from \
                 ../shared/data and pass --data-dir / set MATHNN_DATA",
                name.subdir()
            )
        };
        return Err(NnError::invalid("mirrors", reason));
    }
    let dir = dest_root.join(name.subdir());
    fetch_files(name.files(), &dir, mirrors, progress)?;
    Ok(dir)
}

#[cfg(feature = "download")]
pub use crate::data::download::fetch_files;

/// Without the `download` feature nothing can be fetched: the error says how to provide the files.
#[cfg(not(feature = "download"))]
pub fn fetch_files(
    files: &[RemoteFile],
    dest_dir: &Path,
    _mirrors: &[String],
    _progress: Option<&dyn crate::progress::Progress>,
) -> Result<()> {
    Err(NnError::invalid(
        "download",
        format!(
            "this build of nn-core has no `download` feature; copy {} into {} (or pass --data-dir)",
            files.iter().map(|f| f.name).collect::<Vec<_>>().join(", "),
            dest_dir.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_unknown_lists_valid() {
        for d in DatasetName::ALL {
            assert_eq!(d.as_str().parse::<DatasetName>().unwrap(), d);
            assert_eq!(d.to_string(), d.as_str());
        }
        assert_eq!(
            "Fashion_MNIST".parse::<DatasetName>().unwrap(),
            DatasetName::FashionMnist
        );
        let err = "cifar10".parse::<DatasetName>().unwrap_err().to_string();
        assert!(
            err.contains("`cifar10`")
                && err.contains("mnist, fashion-mnist, pets32, pets64, generated"),
            "{err}"
        );
    }

    #[test]
    fn file_tables_are_well_formed() {
        for d in DatasetName::ALL {
            for f in d.files() {
                assert_eq!(f.sha256.len(), 64, "{}", f.name);
                assert!(
                    f.sha256
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                );
                assert!(f.bytes > 0);
            }
        }
        assert_eq!(DatasetName::Mnist.files().len(), 4);
        assert!(DatasetName::Generated.files().is_empty());
        assert!(!DatasetName::Pets64.is_downloadable());
        assert!(DatasetName::Mnist.is_downloadable());
    }

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
