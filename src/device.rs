//! Where the backbone runs: Burn's `flex` CPU device, or a GPU through wgpu (Vulkan, Metal or
//! DX12 natively, WebGPU in the browser). The head always trains on the CPU (see `train`).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which kind of device to run the backbone on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compute {
    Cpu,
    Gpu,
}

impl std::fmt::Display for Compute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compute::Cpu => "cpu",
            Compute::Gpu => "gpu",
        })
    }
}

/// The pure-Rust CPU device; works everywhere, wasm included.
pub fn cpu() -> Device {
    Device::flex()
}

/// Whether `device` is the CPU device (the backbone then runs on Fewshot's own kernels).
pub fn is_cpu(device: &Device) -> bool {
    *device == cpu()
}

/// The default wgpu adapter, initialised asynchronously (required in the browser).
pub async fn gpu() -> Result<Device> {
    Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| Error::Gpu(format!("no usable GPU adapter: {e}")))
}

/// Natively: the name of wgpu's preferred adapter and whether it is a real GPU (not a CPU
/// emulation such as Mesa's lavapipe, which is slower than the `flex` CPU device).
#[cfg(not(target_family = "wasm"))]
pub fn native_adapter() -> Option<(String, bool)> {
    use burn::tensor::wgpu::wgpu;
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = wgpu::Backends::PRIMARY;
    let instance = wgpu::Instance::new(descriptor);
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    let infos: Vec<_> = adapters.iter().map(|a| a.get_info()).collect();
    let best = infos
        .iter()
        .find(|i| matches!(i.device_type, wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu))
        .or(infos.first())?;
    let hardware = !matches!(best.device_type, wgpu::DeviceType::Cpu | wgpu::DeviceType::Other);
    Some((format!("{} ({:?})", best.name, best.backend), hardware))
}
