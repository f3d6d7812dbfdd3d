//! Boxes follow pixels: paint a solid rectangle of a unique colour on a grey image, augment, find
//! the painted pixels again, and check that the transformed box bounds them within a pixel or two.

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use yolo_compress_data::augment::{
    PerspectiveDraw, PerspectiveParams, apply_perspective, augment_hsv, box_candidates, flip_lr, flip_ud,
    letterbox_sample, mixup_with_ratio, mosaic, mosaic_border, mosaic_canvas, random_flips, random_perspective,
    resize_to_imgsz,
};
use yolo_compress_data::{LabeledBox, Sample};

const GREY: [u8; 3] = [100, 100, 100];
const PALETTE: [[u8; 3]; 4] = [[240, 30, 30], [30, 220, 40], [40, 60, 240], [230, 220, 30]];

/// A grey `w x h` image with filled rectangles `[x1, y1, x2, y2)` of the palette colours, class =
/// palette index.
fn painted(w: u32, h: u32, rects: &[(usize, [u32; 4])]) -> Sample {
    let mut image = RgbImage::from_pixel(w, h, Rgb(GREY));
    for &(c, [x1, y1, x2, y2]) in rects {
        for y in y1..y2 {
            for x in x1..x2 {
                image.put_pixel(x, y, Rgb(PALETTE[c]));
            }
        }
    }
    let boxes = rects.iter().map(|&(c, r)| LabeledBox { class_id: c, xyxy: r.map(|v| v as f32) }).collect();
    Sample { image, boxes }
}

/// Bounding box `[x1, y1, x2, y2]` (pixel edges) of the pixels within 40 of `colour` on every
/// channel (interpolated edge pixels that are mostly the colour count, half-blends do not), and
/// their number.
fn find(img: &RgbImage, colour: [u8; 3]) -> Option<([f32; 4], usize)> {
    let mut b = [u32::MAX, u32::MAX, 0, 0];
    let mut n = 0;
    for (x, y, p) in img.enumerate_pixels() {
        if p.0.iter().zip(colour).all(|(&a, c)| a.abs_diff(c) <= 40) {
            b = [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)];
            n += 1;
        }
    }
    (n > 0).then(|| (b.map(|v| v as f32), n))
}

fn assert_close(what: &str, boxed: [f32; 4], found: [f32; 4], tol: f32) {
    for k in 0..4 {
        assert!((boxed[k] - found[k]).abs() <= tol, "{what}: box {boxed:?} vs painted pixels {found:?}");
    }
}

/// Every box of `out` bounds the pixels of its class colour within `tol` px, and is tight (within
/// `tol`) unless it was clipped at the image border: a rotated rectangle cut by the border is
/// still bounded by its clipped corner box, but no longer fills it (ultralytics' corner boxes).
fn check_boxes(what: &str, out: &Sample, tol: f32) {
    let (w, h) = (out.image.width() as f32, out.image.height() as f32);
    for b in &out.boxes {
        let (found, _) = find(&out.image, PALETTE[b.class_id])
            .unwrap_or_else(|| panic!("{what}: box {:?} of class {} has no pixels", b.xyxy, b.class_id));
        let x = b.xyxy;
        let contains =
            found[0] >= x[0] - tol && found[1] >= x[1] - tol && found[2] <= x[2] + tol && found[3] <= x[3] + tol;
        assert!(contains, "{what}: box {x:?} does not bound painted pixels {found:?}");
        let clipped = x[0] <= 0.0 || x[1] <= 0.0 || x[2] >= w - 0.01 || x[3] >= h - 0.01;
        if !clipped {
            assert_close(what, x, found, tol);
        }
    }
}

/// A dropped box's colour is (almost) gone: what is left fails the candidate test with some slack.
fn check_dropped(what: &str, out: &Sample, class: usize, original_area: f32, scale: f32) {
    if out.boxes.iter().any(|b| b.class_id == class) {
        return;
    }
    if let Some((f, n)) = find(&out.image, PALETTE[class]) {
        let (w, h) = (f[2] - f[0], f[3] - f[1]);
        let small = w <= 4.0 || h <= 4.0 || (n as f32) < 0.15 * original_area * scale * scale;
        assert!(small, "{what}: class {class} dropped but {n} px remain in {f:?}");
    }
}

#[test]
fn perspective_draws_move_boxes_with_pixels() {
    let sample = painted(160, 120, &[(0, [40, 30, 100, 70])]);
    let draws = [
        ("rotation 30", PerspectiveDraw { angle: 30.0, ..Default::default() }),
        ("rotation -75", PerspectiveDraw { angle: -75.0, ..Default::default() }),
        ("scale 0.6", PerspectiveDraw { scale: 0.6, ..Default::default() }),
        ("scale 1.4", PerspectiveDraw { scale: 1.4, ..Default::default() }),
        ("shear", PerspectiveDraw { shear_x: 8.0, shear_y: -6.0, ..Default::default() }),
        ("translate", PerspectiveDraw { translate_x: 0.38, translate_y: 0.61, ..Default::default() }),
        (
            "all affine",
            PerspectiveDraw {
                angle: 17.0,
                scale: 0.8,
                shear_x: -4.0,
                shear_y: 3.0,
                translate_x: 0.55,
                translate_y: 0.45,
                ..Default::default()
            },
        ),
        (
            "perspective",
            PerspectiveDraw {
                perspective_x: 0.0009,
                perspective_y: -0.0007,
                angle: 10.0,
                scale: 1.1,
                ..Default::default()
            },
        ),
    ];
    for (name, draw) in draws {
        for border in [(0, 0), (-20, -30), (15, 10)] {
            let out = apply_perspective(&sample, &draw, border);
            let want = ((160 + 2 * border.1) as u32, (120 + 2 * border.0) as u32);
            assert_eq!(out.image.dimensions(), want, "{name}");
            assert_eq!(out.boxes.len(), 1, "{name} {border:?}: box dropped");
            check_boxes(&format!("{name} border {border:?}"), &out, 1.5);
        }
    }
}

#[test]
fn rotated_small_square_is_bounded_by_its_corner_box() {
    // A 12 px square rotated by 45 degrees is a diamond; min/max of the rotated corners bounds it.
    let sample = painted(64, 64, &[(2, [26, 26, 38, 38])]);
    for angle in [45.0, 30.0, -60.0, 90.0] {
        let out = apply_perspective(&sample, &PerspectiveDraw { angle, ..Default::default() }, (0, 0));
        assert_eq!(out.boxes.len(), 1);
        check_boxes(&format!("square at {angle} deg"), &out, 1.5);
        let b = out.boxes[0].xyxy;
        if angle == 45.0 {
            // Diagonal 12 * sqrt(2) = 16.97 px.
            assert!(((b[2] - b[0]) - 16.97).abs() < 0.01 && ((b[3] - b[1]) - 16.97).abs() < 0.01, "{b:?}");
        }
    }
}

#[test]
fn random_perspective_keeps_or_drops_boxes_consistently() {
    let params = PerspectiveParams { degrees: 25.0, translate: 0.25, scale: 0.6, shear: 6.0, perspective: 0.0005 };
    let sample = painted(128, 96, &[(0, [10, 10, 50, 40]), (1, [70, 50, 120, 90]), (3, [100, 5, 108, 30])]);
    let mut kept = 0;
    for seed in 0..40 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (out, draw) = random_perspective(&sample, &params, (0, 0), &mut rng);
        check_boxes(&format!("seed {seed}"), &out, 2.0);
        for (class, area) in [(0, 1200.0), (1, 2000.0), (3, 200.0)] {
            check_dropped(&format!("seed {seed}"), &out, class, area, draw.scale as f32);
        }
        kept += out.boxes.len();
    }
    assert!(kept > 60, "most boxes survive moderate augmentation ({kept} of 120)");
}

#[test]
fn flips_are_exact() {
    let sample = painted(90, 70, &[(0, [5, 10, 30, 22]), (1, [60, 40, 89, 70])]);
    let lr = flip_lr(sample.clone());
    assert_eq!(lr.boxes[0].xyxy, [60.0, 10.0, 85.0, 22.0]);
    check_boxes("fliplr", &lr, 0.0);
    let ud = flip_ud(sample.clone());
    assert_eq!(ud.boxes[1].xyxy, [60.0, 0.0, 89.0, 30.0]);
    check_boxes("flipud", &ud, 0.0);
    // Flipping twice is the identity.
    assert_eq!(flip_lr(flip_lr(sample.clone())), sample);
    // Probabilities 0 and 1.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (both, flags) = random_flips(sample.clone(), 1.0, 1.0, &mut rng);
    assert_eq!(flags, (true, true));
    check_boxes("both flips", &both, 0.0);
    let (none, flags) = random_flips(sample.clone(), 0.0, 0.0, &mut rng);
    assert_eq!((flags, none), ((false, false), sample));
}

#[test]
fn resize_and_letterbox_map_boxes() {
    let sample = painted(300, 150, &[(0, [40, 20, 170, 90]), (2, [250, 100, 290, 140])]);
    let (resized, hw0) = resize_to_imgsz(&sample, 64).unwrap();
    assert_eq!(hw0, (150, 300));
    assert_eq!(resized.image.dimensions(), (64, 32));
    check_boxes("resize 64", &resized, 1.0);
    // ceil: 333 x 500 at 640 -> (640, ceil(426.24) = 427).
    let odd = painted(500, 333, &[(1, [100, 100, 300, 200])]);
    let (r, _) = resize_to_imgsz(&odd, 640).unwrap();
    assert_eq!(r.image.dimensions(), (640, 427));
    check_boxes("resize up", &r, 1.0);
    for (shape, scale_up) in [((128, 128), true), ((64, 96), true), ((640, 640), false), ((640, 640), true)] {
        let (boxed, info) = letterbox_sample(&sample, shape, scale_up).unwrap();
        assert_eq!((boxed.image.height(), boxed.image.width()), shape);
        check_boxes(&format!("letterbox {shape:?}"), &boxed, 1.0);
        let back = info.unletterbox_box(boxed.boxes[0].xyxy);
        assert_close("unletterbox", back, sample.boxes[0].xyxy, 0.01);
    }
}

/// Four tiles, each a different size with one rectangle of its own colour (class = tile).
fn tiles() -> [Sample; 4] {
    [
        painted(64, 48, &[(0, [10, 8, 40, 30])]),
        painted(50, 64, &[(1, [5, 20, 45, 50])]),
        painted(64, 64, &[(2, [30, 30, 60, 60])]),
        painted(40, 30, &[(3, [4, 4, 30, 26])]),
    ]
}

#[test]
fn mosaic_canvas_places_boxes_with_pixels() {
    let tiles = tiles();
    for center in [(64, 64), (40, 90), (95, 33), (32, 32)] {
        let canvas = mosaic_canvas(&tiles, 64, center);
        assert_eq!(canvas.image.dimensions(), (128, 128));
        // Boxes are only clipped to the canvas (ultralytics): drop those cut to nothing.
        let visible = Sample {
            image: canvas.image.clone(),
            boxes: canvas.boxes.iter().filter(|b| b.size().0 > 0.0 && b.size().1 > 0.0).copied().collect(),
        };
        check_boxes(&format!("canvas centre {center:?}"), &visible, 0.0);
    }
}

#[test]
fn mosaic_crop_follows_pixels() {
    let tiles = tiles();
    let border = mosaic_border(64);
    assert_eq!(border, -32);
    let draws = [
        PerspectiveDraw::default(),
        PerspectiveDraw { scale: 0.6, translate_x: 0.42, translate_y: 0.57, ..Default::default() },
        PerspectiveDraw { scale: 1.3, angle: 12.0, ..Default::default() },
    ];
    for (i, draw) in draws.iter().enumerate() {
        let canvas = mosaic_canvas(&tiles, 64, (60, 70));
        let out = apply_perspective(&canvas, draw, (border, border));
        assert_eq!(out.image.dimensions(), (64, 64));
        check_boxes(&format!("mosaic draw {i}"), &out, 1.5);
        for class in 0..4 {
            let area = [660.0, 1200.0, 900.0, 572.0][class];
            check_dropped(&format!("mosaic draw {i}"), &out, class, area, draw.scale as f32);
        }
    }
    // The full random mosaic with ultralytics' default geometry.
    let params = PerspectiveParams { degrees: 0.0, translate: 0.1, scale: 0.5, shear: 0.0, perspective: 0.0 };
    let mut boxes = 0;
    for seed in 0..30 {
        let out = mosaic(&tiles, 64, &params, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(out.image.dimensions(), (64, 64));
        check_boxes(&format!("mosaic seed {seed}"), &out, 1.5);
        boxes += out.boxes.len();
    }
    assert!(boxes >= 30, "mosaics keep boxes ({boxes} in 30)");
}

#[test]
fn mixup_blends_pixels_and_concatenates_boxes() {
    let a = painted(48, 32, &[(0, [4, 4, 20, 16])]);
    let b = painted(48, 32, &[(1, [30, 10, 44, 28])]);
    let out = mixup_with_ratio(&a, &b, 0.6).unwrap();
    assert_eq!(out.boxes, vec![a.boxes[0], b.boxes[0]]);
    // Inside a's box only: trunc(240 * 0.6 + 100 * 0.4) = 184, trunc(30 * 0.6 + 100 * 0.4) = 58.
    assert_eq!(out.image.get_pixel(10, 10).0, [184, 58, 58]);
    // Inside b's box only: trunc(100 * 0.6 + 30 * 0.4) = 72, trunc(100 * 0.6 + 220 * 0.4) = 148,
    // trunc(100 * 0.6 + 40 * 0.4) = 76.
    assert_eq!(out.image.get_pixel(35, 20).0, [72, 148, 76]);
    assert!(mixup_with_ratio(&a, &painted(40, 32, &[]), 0.5).is_err());
}

#[test]
fn hsv_with_zero_gains_is_the_identity_and_draws_nothing() {
    let sample = painted(40, 30, &[(0, [5, 5, 20, 20])]);
    let mut img = sample.image.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    assert_eq!(augment_hsv(&mut img, [0.0, 0.0, 0.0], &mut rng), None);
    assert_eq!(img, sample.image);
    assert_eq!(rng.random::<u64>(), ChaCha8Rng::seed_from_u64(3).random::<u64>());
    // Non-zero gains change colours but not where they are.
    let gains = augment_hsv(&mut img, [0.015, 0.7, 0.4], &mut rng).unwrap();
    assert!(gains.iter().zip([0.015, 0.7, 0.4]).all(|(r, g)| (r - 1.0f64).abs() <= g));
    assert_eq!(img.get_pixel(0, 0).0[0], img.get_pixel(39, 29).0[0]);
}

#[test]
fn box_candidates_by_hand() {
    let before = [10.0, 10.0, 30.0, 30.0]; // 20 x 20 = 400 px
    assert!(box_candidates(before, [0.0, 0.0, 20.0, 20.0]));
    assert!(!box_candidates(before, [0.0, 0.0, 2.0, 30.0]), "width 2 is not > 2");
    assert!(!box_candidates(before, [0.0, 0.0, 6.0, 6.0]), "36 / 400 = 9 % of the area");
    assert!(box_candidates(before, [0.0, 0.0, 6.5, 6.5]), "42.25 / 400 = 10.6 %");
    assert!(!box_candidates([0.0, 0.0, 400.0, 4.0], [0.0, 0.0, 400.0, 3.9]), "aspect ratio 102.6");
}
