//! Conversion of an RGB image to the planar float layout the network takes.

use image::RgbImage;

/// Converts an RGB image to a planar `[3, H, W]` `f32` buffer (row-major, channels R, G, B) with
/// values in `0..=1` (each byte divided by 255), the network input of one image.
pub fn image_to_chw(img: &RgbImage) -> Vec<f32> {
    let mut out = vec![0.0f32; 3 * img.width() as usize * img.height() as usize];
    image_to_chw_into(img, &mut out);
    out
}

/// [`image_to_chw`] into an existing slice of exactly `3 · H · W` values (e.g. one image of a batch
/// buffer).
///
/// # Panics
/// If `out` is shorter than `3 · H · W`.
pub fn image_to_chw_into(img: &RgbImage, out: &mut [f32]) {
    let plane = img.width() as usize * img.height() as usize;
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in img.pixels().enumerate() {
        r[i] = f32::from(px[0]) / 255.0;
        g[i] = f32::from(px[1]) / 255.0;
        b[i] = f32::from(px[2]) / 255.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn planar_rgb_in_unit_range() {
        // 2 x 1 image: pixel (0,0) = (255, 0, 51), pixel (1,0) = (0, 255, 102).
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, Rgb([255, 0, 51]));
        img.put_pixel(1, 0, Rgb([0, 255, 102]));
        let chw = image_to_chw(&img);
        assert_eq!(chw, vec![1.0, 0.0, 0.0, 1.0, 0.2, 0.4]);
    }

    #[test]
    fn layout_is_channel_row_column() {
        let img = RgbImage::from_fn(3, 2, |x, y| Rgb([(10 * y + x) as u8, 100, 200]));
        let chw = image_to_chw(&img);
        assert_eq!(chw.len(), 3 * 2 * 3);
        // Channel 0, row 1, column 2 sits at index 0 * 6 + 1 * 3 + 2.
        assert_eq!(chw[5], 12.0 / 255.0);
        assert!(chw[6..12].iter().all(|&v| v == 100.0 / 255.0));
        assert!(chw[12..].iter().all(|&v| v == 200.0 / 255.0));
    }
}
