//! Device selection: CPU always; CUDA when built with the `cuda` feature and asked for.

use candle_core::Device;

use crate::{NnError, Result};

/// Which device to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DeviceChoice {
    /// The CPU (the default, and the only choice without the `cuda` feature).
    #[default]
    Cpu,
    /// CUDA device with this ordinal (needs the `cuda` feature).
    Cuda(usize),
}

impl std::str::FromStr for DeviceChoice {
    type Err = NnError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => Ok(DeviceChoice::Cuda(i)),
                _ => Err(NnError::invalid(
                    "device",
                    format!("expected cpu, cuda or cuda:N, got `{s}`"),
                )),
            },
        }
    }
}

/// Opens the chosen device; asking for CUDA in a build without the `cuda` feature is a clear error.
pub fn open_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(i) => Ok(Device::new_cuda(i)?),
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda(_) => Err(NnError::invalid(
            "device",
            "this build has no CUDA support; rebuild with `--features cuda` (needs the CUDA toolkit)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!(
            "cuda:1".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(1)
        );
        assert!(
            "gpu"
                .parse::<DeviceChoice>()
                .unwrap_err()
                .to_string()
                .contains("device")
        );
    }
}
