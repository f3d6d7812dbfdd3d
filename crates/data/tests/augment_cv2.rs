//! The colour and warp kernels of the augmentation against OpenCV.
//!
//! The checksums are FNV-1a 64 over the RGB bytes of OpenCV's output on the same synthetic
//! images, computed with `opencv-python-headless` 5.0.0 on x86-64 exactly as ultralytics calls it
//! (`augment_hsv`'s `cvtColor`/`LUT`/`cvtColor`; `cv2.warpAffine`/`cv2.warpPerspective` with
//! `borderValue=(114, 114, 114)` on the matrix given here).

use image::{Rgb, RgbImage};
use yolo_compress_data::augment::{Mat3, apply_hsv_gains, hsv_to_rgb, rgb_to_hsv, warp_affine, warp_perspective};

/// A deterministic test card: `(37x + 11y, 13x + 71y + 50, 7xy + 3) mod 256`.
fn card(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([((x * 37 + y * 11) % 256) as u8, ((x * 13 + y * 71 + 50) % 256) as u8, ((x * y * 7 + 3) % 256) as u8])
    })
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[test]
fn hsv_gains_match_opencv() {
    for (gains, want) in [
        ([1.01, 1.5, 0.6], 0xcc7f_95ea_09fe_6701u64),
        ([0.99, 0.4, 1.3], 0xdf96_2cd8_03c5_beb0),
        // Unit gains still quantise through OpenCV's HSV.
        ([1.0, 1.0, 1.0], 0x55dd_8dcd_e2d1_8b65),
    ] {
        let mut img = card(64, 16);
        apply_hsv_gains(&mut img, gains);
        assert_eq!(fnv1a(img.as_raw()), want, "gains {gains:?}");
    }
}

#[test]
fn hsv_pixel_by_hand() {
    // RGB (218, 72, 108): v = 218 (red is the max), diff = 146.
    // s = (146 * round(255 * 4096 / 218) + 2048) >> 12 = (146 * 4791 + 2048) >> 12 = 171.
    // h = (-36 * round(180 * 4096 / 876) + 2048) >> 12 = (-36 * 842 + 2048) >> 12 = -7 -> 173.
    assert_eq!(rgb_to_hsv([218, 72, 108]), [173, 171, 218]);
    // Gains (1.01, 1.5, 0.6): h = trunc(174.73 % 180) = 174, s = clip(256.5) = 255, v = trunc(130.8) = 130.
    // Back: sector 5, f = 0.8, s = 1: r = v, g = 0, b = v * (1 - f) = 0.10196 -> 25.99 *truncated* to 25.
    assert_eq!(hsv_to_rgb([174, 255, 130]), [130, 0, 25]);
    let mut img = RgbImage::from_pixel(1, 1, Rgb([218, 72, 108]));
    apply_hsv_gains(&mut img, [1.01, 1.5, 0.6]);
    assert_eq!(img.get_pixel(0, 0).0, [130, 0, 25]);
    // The same pixel inside the OpenCV test card (row 3, column 5).
    let mut card = card(64, 16);
    assert_eq!(card.get_pixel(5, 3).0, [218, 72, 108]);
    apply_hsv_gains(&mut card, [1.01, 1.5, 0.6]);
    assert_eq!(card.get_pixel(5, 3).0, [130, 0, 25]);
}

#[test]
fn warps_match_opencv() {
    // M = T @ S @ R @ P @ C for a 50x40 card into 48x44 (ultralytics' composition), from numpy.
    // (what, matrix, checksum, pixel (24, 22), pixel (0, 0)).
    type Case = (&'static str, Mat3, u64, [u8; 3], [u8; 3]);
    let cases: [Case; 3] = [
        (
            "affine: 12 deg, scale 0.8, shear (5, -3) deg",
            [
                [0.7679661478181959, 0.2347908137096393, -2.294969969647685],
                [-0.20733938750660236, 0.7738011285848518, 13.907462115968025],
                [0.0, 0.0, 1.0],
            ],
            0xacaa_8f70_1607_1d20,
            [211, 175, 105],
            [114, 114, 114],
        ),
        (
            "affine: -33 deg, scale 1.3",
            [
                [1.0902717383290512, -0.7080307455195353, 10.903821452164426],
                [0.7080307455195353, 1.0902717383290512, -17.506203404569405],
                [0.0, 0.0, 1.0],
            ],
            0x803c_9eea_e031_6d60,
            [121, 3, 175],
            [186, 156, 36],
        ),
        (
            "perspective (0.0008, -0.0005), 7 deg, scale 1.1, shear (2, 1) deg",
            [
                [1.1070874184313764, 0.15970280065418893, -5.911241473868184],
                [-0.09845482447239527, 1.0838007278375401, 1.465356055059079],
                [0.0008, -0.0005, 0.99],
            ],
            0x8a7b_6e2c_d20e_8964,
            [94, 67, 188],
            [127, 115, 98],
        ),
    ];
    let src = card(50, 40);
    for (name, m, want, centre, corner) in cases {
        let out = if m[2] == [0.0, 0.0, 1.0] {
            warp_affine(&src, &m, 48, 44, 114)
        } else {
            warp_perspective(&src, &m, 48, 44, 114)
        };
        assert_eq!(out.dimensions(), (48, 44));
        assert_eq!(out.get_pixel(24, 22).0, centre, "{name}");
        assert_eq!(out.get_pixel(0, 0).0, corner, "{name}");
        assert_eq!(fnv1a(out.as_raw()), want, "{name}");
    }
}
