//! [`QConv`]: a convolution with optional BatchNorm and activation whose weights can be fake-quantized
//! per output channel, with BN folded the way integer inference runs it.
//!
//! Shapes: `[B, c_in, H, W]` → `[B, c_out, H', W']`.
//!
//! BN handling (Jacob et al., CVPR 2018, §3.2; Krishnamoorthi 2018, "Quantizing deep convolutional
//! networks for efficient inference", §3.2 — the scheme PyTorch's `ConvBn2d` implements):
//! - inference, PTQ and QAT with frozen BN: `w' = w·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)` from the
//!   running statistics; the conv runs with `fq(w')` and `b'` (what an int8 engine executes);
//! - QAT before the BN freeze: `y = BN_batch(conv(x, fq(w·γ/σ_run)) · σ_run/γ)`: the quantized
//!   weight is the folded one, and the batch statistics still normalise (and update the running
//!   ones) during training.

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid, silu};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use serde::{Deserialize, Serialize};

use super::fake::fake_quant_weight;

/// Activation after a conv.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    /// None.
    Identity,
    /// SiLU (YOLOv5's `Conv`).
    Silu,
    /// ReLU (squeeze-excite reduce).
    Relu,
    /// Logistic sigmoid (squeeze-excite gate).
    Sigmoid,
}

impl Act {
    /// Applies the activation.
    pub fn apply(self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Act::Identity => x,
            Act::Silu => silu(x),
            Act::Relu => relu(x),
            Act::Sigmoid => sigmoid(x),
        }
    }
}

/// A conv (+ BN) (+ activation) with optional per-channel int8 weight fake quantization.
#[derive(Module, Debug)]
pub struct QConv {
    /// The convolution (bias present for Detect / squeeze-excite convs and folded convs).
    pub conv: Conv2d,
    /// BatchNorm, folded at inference; `None` once [`QConv::fold`] ran or for convs without BN.
    pub bn: Option<BatchNorm>,
    /// Activation.
    #[module(skip)]
    pub act: Act,
    /// State-dict style name (`model.2.m.0.cv1`, `model.24.m.1`).
    #[module(skip)]
    pub name: String,
    /// Whether the weights are fake-quantized.
    #[module(skip)]
    pub quantized: bool,
    /// QAT: BN uses (and updates) batch statistics until frozen; frozen = running statistics, folded.
    #[module(skip)]
    pub bn_frozen: bool,
}

impl QConv {
    /// Wraps a conv, its BN and its activation (weights unquantized until enabled).
    pub fn new(conv: Conv2d, bn: Option<BatchNorm>, act: Act, name: String) -> Self {
        QConv { conv, bn, act, name, quantized: false, bn_frozen: true }
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.conv.weight.dims()[0]
    }

    /// `(kernel, stride, groups)`.
    pub fn geometry(&self) -> (usize, usize, usize) {
        (self.conv.kernel_size[0], self.conv.stride[0], self.conv.groups)
    }

    fn options(&self, h: usize, w: usize) -> ConvOptions<2> {
        let ((t, b), (l, r)) = match self.conv.padding {
            PaddingConfig2d::Explicit(t, l, b, r) => ((t, b), (l, r)),
            PaddingConfig2d::Valid => ((0, 0), (0, 0)),
            PaddingConfig2d::Same => {
                let ph = (self.conv.kernel_size[0] - 1) * self.conv.dilation[0];
                let pw = (self.conv.kernel_size[1] - 1) * self.conv.dilation[1];
                let _ = (h, w);
                ((ph / 2, ph - ph / 2), (pw / 2, pw - pw / 2))
            }
        };
        ConvOptions::new_with_padding(self.conv.stride, [(t, b), (l, r)], self.conv.dilation, self.conv.groups)
    }

    /// Per-channel BN factor `γ/√(σ²_run+ε)` and shift `β − μ_run·γ/√(σ²_run+ε)` (`None` without BN).
    fn bn_affine(&self) -> Option<(Tensor<1>, Tensor<1>)> {
        let bn = self.bn.as_ref()?;
        // `value_sync`: Burn keeps the last training update pending until the next one, and after
        // the BN freeze there is no next one.
        let scale = bn.gamma.val() / (bn.running_var.value_sync() + bn.epsilon).sqrt();
        let shift = bn.beta.val() - bn.running_mean.value_sync() * scale.clone();
        Some((scale, shift))
    }

    /// The weight and bias an inference engine runs: BN folded with the running statistics
    /// (`[c_out, c_in/g, k, k]`, `[c_out]`), before weight quantization.
    pub fn folded(&self) -> (Tensor<4>, Tensor<1>) {
        let w = self.conv.weight.val();
        let co = self.out_channels();
        let bias = self.conv.bias.as_ref().map(Param::val);
        match self.bn_affine() {
            Some((scale, shift)) => {
                let b = match bias {
                    Some(b) => shift + b * scale.clone(),
                    None => shift,
                };
                (w * scale.reshape([co, 1, 1, 1]), b)
            }
            None => {
                let device = w.device();
                (w, bias.unwrap_or_else(|| Tensor::zeros([co], &device)))
            }
        }
    }

    /// The folded weight as the engine sees it (fake-quantized when [`QConv::quantized`]).
    pub fn effective_weight(&self) -> Tensor<4> {
        let (w, _) = self.folded();
        if self.quantized { fake_quant_weight(w) } else { w }
    }

    /// Replaces conv + BN by the folded conv with a bias (running statistics), as PTQ and int8
    /// export store it. A no-op without BN.
    pub fn fold(self) -> Self {
        if self.bn.is_none() {
            return self;
        }
        let (w, b) = self.folded();
        let mut conv = self.conv;
        conv.weight = Param::initialized(conv.weight.id, w.detach());
        conv.bias = Some(Param::from_tensor(b.detach()));
        QConv { conv, bn: None, ..self }
    }

    /// Forward pass (see the module docs for the BN scheme); the input is used as given (the
    /// caller fake-quantizes activations).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let opts = self.options(h, w);
        let co = self.out_channels();
        let batch_bn = x.device().is_autodiff() && !self.bn_frozen;
        let y = match (&self.bn, batch_bn) {
            (Some(bn), true) => {
                let (scale, _) = self.bn_affine().expect("bn present");
                let scale = scale.clone().mask_fill(scale.abs().lower_elem(1e-12), 1e-12);
                let mut wq = self.conv.weight.val() * scale.clone().reshape([co, 1, 1, 1]);
                if self.quantized {
                    wq = fake_quant_weight(wq);
                }
                let mut y = conv2d(x, wq, None, opts) / scale.reshape([1, co, 1, 1]);
                if let Some(b) = &self.conv.bias {
                    y = y + b.val().reshape([1, co, 1, 1]);
                }
                bn.forward(y)
            }
            _ => {
                let (w, b) = self.folded();
                let w = if self.quantized { fake_quant_weight(w) } else { w };
                conv2d(x, w, Some(b), opts)
            }
        };
        self.act.apply(y)
    }

    /// thop MACs for an `(h, w)` input; returns the output size too.
    pub fn macs(&self, h: usize, w: usize) -> (f64, (usize, usize)) {
        let [co, cig, kh, kw] = self.conv.weight.dims();
        let o = self.options(h, w);
        let ho = (h + o.padding[0].0 + o.padding[0].1 - kh) / o.stride[0] + 1;
        let wo = (w + o.padding[1].0 + o.padding[1].1 - kw) / o.stride[1] + 1;
        ((co * ho * wo * cig * kh * kw) as f64, (ho, wo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yolo_compress_model::blocks::ConvConfig;

    fn randomize_bn(conv: &mut yolo_compress_model::blocks::Conv, device: &Device) {
        let bn = conv.bn.as_mut().unwrap();
        let c = bn.gamma.dims()[0];
        let v = |f: &dyn Fn(usize) -> f32| {
            Tensor::<1>::from_data(TensorData::new((0..c).map(f).collect::<Vec<f32>>(), [c]), device)
        };
        bn.gamma = Param::from_tensor(v(&|i| 0.5 + 0.1 * i as f32));
        bn.beta = Param::from_tensor(v(&|i| 0.05 * i as f32 - 0.2));
        bn.running_mean = burn::module::RunningState::new(v(&|i| 0.02 * i as f32));
        bn.running_var = burn::module::RunningState::new(v(&|i| 0.5 + 0.3 * i as f32));
    }

    #[test]
    fn unquantized_qconv_equals_the_model_conv() {
        let device = Device::flex();
        let mut c = ConvConfig::new(4, 6).with_k(3).with_s(2).init(&device);
        randomize_bn(&mut c, &device);
        let x = Tensor::<4>::random([2, 4, 9, 9], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let want = c.forward(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        let q = QConv::new(c.conv.clone(), c.bn.clone(), Act::Silu, "t".into());
        let got = q.forward(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        let folded = q.fold().forward(x).into_data().try_to_vec::<f32>().unwrap();
        for ((a, b), f) in want.iter().zip(&got).zip(&folded) {
            assert!((a - b).abs() < 1e-5 && (a - f).abs() < 1e-5, "{a} {b} {f}");
        }
    }

    #[test]
    fn qat_unfrozen_bn_uses_batch_statistics() {
        // With unfrozen BN on an autodiff device the output is normalised per batch: every channel
        // of the pre-activation has mean β and std ≈ |γ| over the batch, whatever the running stats.
        let device = Device::flex().autodiff();
        let mut c = ConvConfig::new(3, 4).with_k(1).with_act(false).init(&device);
        randomize_bn(&mut c, &device);
        let mut q = QConv::new(c.conv.clone(), c.bn.clone(), Act::Identity, "t".into());
        q.bn_frozen = false;
        q.quantized = true;
        let x = Tensor::<4>::random([4, 3, 5, 5], burn::tensor::Distribution::Normal(1.0, 2.0), &device);
        let y = q.forward(x);
        let mean = y.clone().mean_dims(&[0, 2, 3]).into_data().try_to_vec::<f32>().unwrap();
        for (i, m) in mean.iter().enumerate() {
            assert!((m - (0.05 * i as f32 - 0.2)).abs() < 1e-4, "channel {i} mean {m}");
        }
    }
}
