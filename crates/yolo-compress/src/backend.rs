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
    /// Several devices were named (data-parallel training).
    #[error(
        "`{0}` names several devices: data-parallel training is not available. It would use Burn's own \
         DDP (DistributedContext + all-reduce of gradients), which Burn 0.22.1 implements only on its CUDA \
         backend (NCCL); flex, wgpu and vulkan have no collective operations. Use one device."
    )]
    MultiDevice(String),
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
    if name.contains(',') {
        return Err(BackendError::MultiDevice(name.to_string()));
    }
    let (kind, index) = name.split_once(':').unwrap_or((name, "0"));
    let index: usize = index.parse().map_err(|_| BackendError::Unknown(name.to_string()))?;
    let device = match kind {
        "cpu" | "flex" => compiled::flex(),
        "ndarray" => compiled::ndarray(),
        "wgpu" => compiled::wgpu(),
        "vulkan" => compiled::vulkan(),
        "cuda" => compiled::cuda(index),
        _ => return Err(BackendError::Unknown(name.to_string())),
    };
    device.map_err(|feature| BackendError::NotCompiled { name: name.to_string(), feature })
}

/// One constructor per backend; `Err(feature)` when that feature is not compiled in.
mod compiled {
    use burn::prelude::Device;

    macro_rules! backend {
        ($name:ident, $feature:literal, $make:expr) => {
            #[cfg(feature = $feature)]
            #[allow(deprecated)] // ndarray is deprecated upstream but still offered
            pub fn $name() -> Result<Device, &'static str> {
                Ok($make)
            }
            #[cfg(not(feature = $feature))]
            pub fn $name() -> Result<Device, &'static str> {
                Err($feature)
            }
        };
    }

    backend!(flex, "flex", Device::flex());
    backend!(ndarray, "ndarray", Device::ndarray());
    backend!(wgpu, "wgpu", Device::wgpu(Default::default()));
    backend!(vulkan, "vulkan", Device::vulkan(Default::default()));

    #[cfg(feature = "cuda")]
    pub fn cuda(index: usize) -> Result<Device, &'static str> {
        Ok(Device::cuda(index))
    }
    #[cfg(not(feature = "cuda"))]
    pub fn cuda(_index: usize) -> Result<Device, &'static str> {
        Err("cuda")
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
        let multi = device_from_name("cuda:0,cuda:1").unwrap_err().to_string();
        assert!(multi.contains("several devices") && multi.contains("NCCL"), "{multi}");
        assert!(device_from_name("cpu").is_ok());
        assert!(compiled_backends().contains(&"cpu"));
    }
}
