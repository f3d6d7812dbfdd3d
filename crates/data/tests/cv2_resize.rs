//! `resize_bilinear` against `cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)`, byte for
//! byte, on the cases stored in `fixtures/cv2_resize.bin` (written by
//! `benches/peers/make_resize_fixture.py`, which also documents the file layout).

use image::RgbImage;
use yolo_compress_data::resize::resize_bilinear;
use yolo_compress_data::{LetterboxConfig, letterbox};

const FIXTURE: &[u8] = include_bytes!("fixtures/cv2_resize.bin");

/// Little-endian reader over the fixture bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let out = self.buf.get(self.pos..self.pos + n).expect("fixture truncated");
        self.pos += n;
        out
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes(2).try_into().unwrap())
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes(4).try_into().unwrap())
    }

    fn image(&mut self, width: u32, height: u32) -> RgbImage {
        let data = self.bytes(width as usize * height as usize * 3).to_vec();
        RgbImage::from_raw(width, height, data).unwrap()
    }
}

#[test]
fn matches_cv2_resize_byte_for_byte() {
    let mut r = Reader { buf: FIXTURE, pos: 0 };
    assert_eq!(r.bytes(8), b"CV2RSZ1\0", "bad magic");
    let n_version = r.u16() as usize;
    let version = std::str::from_utf8(r.bytes(n_version)).unwrap().to_owned();
    let n_images = r.u32();
    let (mut cases, mut failures) = (0, Vec::new());
    for _ in 0..n_images {
        let (sw, sh, n_targets) = (r.u32(), r.u32(), r.u32());
        let src = r.image(sw, sh);
        for _ in 0..n_targets {
            let (dw, dh) = (r.u32(), r.u32());
            let want = r.image(dw, dh);
            let got = resize_bilinear(&src, dw, dh).unwrap();
            assert_eq!(got.dimensions(), (dw, dh));
            let diff = got.as_raw().iter().zip(want.as_raw()).filter(|(a, b)| a != b).count();
            if diff > 0 {
                failures.push(format!("{sw}x{sh} -> {dw}x{dh}: {diff} of {} bytes differ", want.as_raw().len()));
            }
            cases += 1;
        }
    }
    assert_eq!(r.pos, FIXTURE.len(), "trailing bytes in the fixture");
    assert!(cases >= 30, "only {cases} cases");
    assert!(failures.is_empty(), "{version}: {} of {cases} cases differ:\n{}", failures.len(), failures.join("\n"));
    println!("{cases} cases from {n_images} images match ({version})");
}

/// The two scene fixtures of the `yolo-compress` crate: the centre of each `*_letterboxed_320.png`
/// (written from ultralytics' `letterbox`, i.e. from `cv2.resize`) must equal our resize of the
/// original, the border must be the grey padding, and our `letterbox` must give the whole image.
#[test]
fn scene_fixtures_match_the_cv2_letterbox() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../yolo-compress/tests/fixtures");
    for (name, (w, h)) in [("scene_a", (320, 213)), ("scene_b", (230, 320))] {
        let (src_path, ref_path) = (dir.join(format!("{name}.png")), dir.join(format!("{name}_letterboxed_320.png")));
        if !src_path.exists() || !ref_path.exists() {
            eprintln!("skipping {name}: {} not found", dir.display());
            continue;
        }
        let src = image::open(&src_path).unwrap().to_rgb8();
        let reference = image::open(&ref_path).unwrap().to_rgb8();
        let got = resize_bilinear(&src, w, h).unwrap();
        let (rw, rh) = reference.dimensions();
        // ultralytics: top = round(dh / 2 - 0.1), left = round(dw / 2 - 0.1).
        let top = ((f64::from(rh - h) / 2.0 - 0.1).round_ties_even()) as u32;
        let left = ((f64::from(rw - w) / 2.0 - 0.1).round_ties_even()) as u32;
        let mut diff = 0;
        for (x, y, p) in reference.enumerate_pixels() {
            let inside = (left..left + w).contains(&x) && (top..top + h).contains(&y);
            let want = if inside { *got.get_pixel(x - left, y - top) } else { image::Rgb([114; 3]) };
            diff += p.0.iter().zip(want.0).filter(|(a, b)| **a != *b).count();
        }
        assert_eq!(diff, 0, "{name}: {diff} values differ from the cv2 letterbox");
        // The same through `letterbox` itself (detect.py's settings: 320, auto, stride 32).
        let (boxed, _) = letterbox(&src, &LetterboxConfig::new((320, 320))).unwrap();
        assert_eq!(boxed.dimensions(), reference.dimensions(), "{name}: letterboxed shape");
        let diff = boxed.as_raw().iter().zip(reference.as_raw()).filter(|(a, b)| a != b).count();
        assert_eq!(diff, 0, "{name}: letterbox() differs from ultralytics' in {diff} values");
    }
}
