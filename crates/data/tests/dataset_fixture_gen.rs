//! Writes the committed fixture `tests/fixtures/datasets/corrupt/`: a tiny YOLO dataset with one
//! deliberately broken file per problem that verification must report. Run it again only to
//! change the fixture:
//!
//! ```text
//! cargo test -p yolo-compress-data --test dataset_fixture_gen -- --ignored
//! ```

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageFormat, Rgb, RgbImage};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets/corrupt")
}

/// A grey `w × h` image with a solid red rectangle `[x1, y1, x2, y2)`.
fn picture(w: u32, h: u32, rect: [u32; 4]) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        if x >= rect[0] && x < rect[2] && y >= rect[1] && y < rect[3] { Rgb([220, 30, 30]) } else { Rgb([90, 90, 90]) }
    })
}

fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, format).unwrap();
    buf.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// A valid-looking PNG whose header claims `w × h` pixels (one tiny IDAT).
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

fn write(path: PathBuf, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
#[ignore = "regenerates the committed fixture"]
fn regenerate_corrupt_fixture() {
    let root = root();
    let _ = std::fs::remove_dir_all(&root);
    let img = |split: &str, name: &str| root.join("images").join(split).join(name);
    let lbl = |split: &str, name: &str| root.join("labels").join(split).join(name);
    write(
        root.join("data.yaml"),
        "# A tiny dataset with deliberately broken files (see crates/data/tests/dataset_verify.rs).\n\
         path: .\ntrain: images/train\nval: images/val\nnames: [box, bar, dot]\n",
    );

    // Usable images. good.jpg: a 48x32 image with the rectangle [12, 8, 36, 24) → class 0.
    write(img("train", "good.jpg"), encode(&picture(48, 32, [12, 8, 36, 24]), ImageFormat::Jpeg));
    write(lbl("train", "good.txt"), "0 0.5 0.5 0.5 0.5\n2 0.1 0.1 0.1 0.125\n");
    write(img("train", "dupes.png"), encode(&picture(40, 40, [0, 0, 20, 20]), ImageFormat::Png));
    write(lbl("train", "dupes.txt"), "1 0.25 0.25 0.5 0.5\n1 0.25 0.25 0.5 0.5\n");
    write(img("train", "background.png"), encode(&picture(32, 32, [0, 0, 0, 0]), ImageFormat::Png));
    write(img("train", "empty.bmp"), encode(&picture(16, 24, [0, 0, 0, 0]), ImageFormat::Bmp));
    write(lbl("train", "empty.txt"), "");
    write(img("train", "polygon.webp"), encode(&picture(50, 20, [10, 5, 30, 15]), ImageFormat::WebP));
    write(lbl("train", "polygon.txt"), "2 0.2 0.25 0.6 0.25 0.6 0.75 0.2 0.75\n");

    // Broken images.
    let noisy = RgbImage::from_fn(96, 96, |x, y| Rgb([(x * 37 + y * 11) as u8, (x * y) as u8, (x ^ y) as u8]));
    let full = encode(&noisy, ImageFormat::Jpeg);
    write(img("train", "truncated.jpg"), &full[..full.len() * 3 / 5]);
    write(lbl("train", "truncated.txt"), "0 0.5 0.5 0.2 0.2\n");
    write(img("train", "text.jpg"), "this is not a JPEG\n");
    write(img("train", "zero.png"), "");
    write(img("train", "bomb.png"), png_claiming(100_000, 100_000));

    // Broken labels (each on an otherwise fine image).
    let fine = encode(&picture(20, 20, [5, 5, 15, 15]), ImageFormat::Png);
    for (name, label) in [
        ("fields4", "0 0.5 0.5 0.5\n"),
        ("nan", "0 0.5 nan 0.5 0.5\n"),
        ("class99", "0 0.5 0.5 0.5 0.5\n99 0.5 0.5 0.5 0.5\n"),
        ("coords15", "1 1.5 0.5 0.2 0.2\n"),
        ("negsize", "1 0.5 0.5 -0.2 0.2\n"),
    ] {
        write(img("train", &format!("{name}.png")), &fine);
        write(lbl("train", &format!("{name}.txt")), label);
    }

    // val: two clean images.
    write(img("val", "v1.jpg"), encode(&picture(32, 48, [0, 0, 16, 24]), ImageFormat::Jpeg));
    write(lbl("val", "v1.txt"), "0 0.25 0.25 0.5 0.5\n");
    write(img("val", "v2.png"), encode(&picture(32, 32, [8, 8, 24, 24]), ImageFormat::Png));
    write(lbl("val", "v2.txt"), "1 0.5 0.5 0.5 0.5\n");
}
