//! Nearest-neighbour upsampling by an integer factor (`nn.Upsample(None, s, 'nearest')`) and the
//! channel [`concat()`] used by the neck.

use burn::prelude::*;

/// Nearest upsampling: `[B, C, H, W]` → `[B, C, s·H, s·W]`, each pixel repeated `s×s` times.
pub fn upsample_nearest(x: Tensor<4>, s: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1]).expand([b, c, h, s, w, s]).reshape([b, c, h * s, w * s])
}

/// Concatenation along channels (`Concat(1)`): `[B, Cᵢ, H, W]…` → `[B, ΣCᵢ, H, W]`.
pub fn concat(xs: Vec<Tensor<4>>) -> Tensor<4> {
    Tensor::cat(xs, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, tensor4, to_vec};

    #[test]
    fn nearest_repeats_pixels() {
        let x = tensor4(vec![1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2]);
        let y = to_vec(upsample_nearest(x, 2));
        let want = [1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.];
        assert_close(&y, &want, 0.0);
    }

    #[test]
    fn concat_stacks_channels() {
        let a = tensor4(vec![1.0, 2.0], [1, 1, 1, 2]);
        let b = tensor4(vec![3.0, 4.0, 5.0, 6.0], [1, 2, 1, 2]);
        let y = concat(vec![a, b]);
        assert_eq!(y.dims(), [1, 3, 1, 2]);
        assert_close(&to_vec(y), &[1., 2., 3., 4., 5., 6.], 0.0);
    }
}
