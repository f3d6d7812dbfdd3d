//! Stride-1 "same" max pooling shared by [`super::sppf`] and [`super::spp`].

use burn::prelude::*;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;

/// `k×k` max pool, stride 1, padding `k/2` (output size = input size). `[B, C, H, W]` → same.
pub fn max_pool_same(x: Tensor<4>, k: usize) -> Tensor<4> {
    let p = k / 2;
    max_pool2d(x, MaxPoolOptions::new([k, k]).with_stride([1, 1]).with_padding([p, p]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, tensor4, to_vec};

    /// Padding acts as −∞: a negative image keeps its own border maxima.
    #[test]
    fn same_pool_hand_computed() {
        let x = tensor4(vec![-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -9.0], [1, 1, 3, 3]);
        let y = to_vec(max_pool_same(x, 3));
        assert_close(&y, &[-1.0, -1.0, -2.0, -1.0, -1.0, -2.0, -4.0, -4.0, -5.0], 0.0);
    }
}
