//! Choosing a compute device by name, for binaries and tests (library code only takes a `&Device`).

use burn::prelude::*;

/// A device name that is unknown or whose backend was not compiled in.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend exists but this binary was built without its Cargo feature.
    #[error(
        "device `{name}` needs the `{feature}` cargo feature of yolo-compress (rebuild with `--features {feature}`)"
    )]
    NotCompiled {
        /// Requested device.
        name: String,
        /// Feature to enable.
        feature: &'static str,
    },
    /// Unknown device name.
    #[error("unknown device `{0}` (expected cpu, vulkan, wgpu, ndarray or cuda[:N])")]
    Unknown(String),
}

/// Backends compiled into this build, by device name.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "flex") {
        v.push("cpu");
    }
    if cfg!(feature = "ndarray") {
        v.push("ndarray");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "vulkan") {
        v.push("vulkan");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

/// Resolves `cpu` (the default pure-Rust `flex` backend), `ndarray`, `wgpu`, `vulkan` or `cuda[:N]`.
pub fn device_from_name(name: &str) -> Result<Device, BackendError> {
    let missing = |feature| Err(BackendError::NotCompiled { name: name.to_string(), feature });
    let (kind, index) = name.split_once(':').unwrap_or((name, "0"));
    let index: usize = index.parse().map_err(|_| BackendError::Unknown(name.to_string()))?;
    match kind {
        "cpu" | "flex" => {
            #[cfg(feature = "flex")]
            return Ok(Device::flex());
            #[cfg(not(feature = "flex"))]
            return missing("flex");
        }
        "ndarray" => {
            #[cfg(feature = "ndarray")]
            return Ok(Device::ndarray());
            #[cfg(not(feature = "ndarray"))]
            return missing("ndarray");
        }
        "wgpu" => {
            #[cfg(feature = "wgpu")]
            return Ok(Device::wgpu(Default::default()));
            #[cfg(not(feature = "wgpu"))]
            return missing("wgpu");
        }
        "vulkan" => {
            #[cfg(feature = "vulkan")]
            return Ok(Device::vulkan(Default::default()));
            #[cfg(not(feature = "vulkan"))]
            return missing("vulkan");
        }
        "cuda" => {
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(index));
            #[cfg(not(feature = "cuda"))]
            {
                let _ = index;
                return missing("cuda");
            }
        }
        _ => Err(BackendError::Unknown(name.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(not(feature = "cuda"))]
    fn cuda_is_never_in_default_builds_and_errors_name_the_feature() {
        let err = device_from_name("cuda").unwrap_err().to_string();
        assert!(err.contains("`cuda` cargo feature"), "{err}");
        assert!(matches!(device_from_name("tpu"), Err(BackendError::Unknown(_))));
        assert!(device_from_name("cpu").is_ok());
        assert!(compiled_backends().contains(&"cpu"));
    }
}
