//! The photo pipeline on the shared EXIF-orientation test set and on bad input.

#![cfg(feature = "photo")]
#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::path::Path;

use image::GenericImageView;
use xuncha_core::photo::{PhotoLimits, PhotoOptions, process, samples};

const SET: &str = "../../shared/testdata/exif-orientation";

fn read(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(SET);
    std::fs::read(dir.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (is ../shared beside the project?)"))
}

fn small() -> PhotoOptions {
    PhotoOptions {
        long_edge: 240,
        ..PhotoOptions::default()
    }
}

/// Mean absolute difference per channel, 0..255.
fn mean_error(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

#[test]
fn every_orientation_comes_out_upright_with_the_same_pixels() {
    for (shape, size) in [("Landscape", (240, 160)), ("Portrait", (160, 240))] {
        let reference = process(
            &read(&format!("{shape}_0.jpg")),
            &small(),
            &PhotoLimits::default(),
        )
        .unwrap();
        let upright = image::load_from_memory(&reference.jpeg).unwrap().to_rgb8();
        assert_eq!(upright.dimensions(), size);
        for n in 1..=8 {
            let out = process(
                &read(&format!("{shape}_{n}.jpg")),
                &small(),
                &PhotoLimits::default(),
            )
            .unwrap();
            let img = image::load_from_memory(&out.jpeg).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), size, "{shape}_{n}");
            let err = mean_error(&img, &upright);
            assert!(err < 4.0, "{shape}_{n}: mean error {err:.2}");
        }
        // A wrongly oriented result is far off, so the threshold means something.
        let flipped = image::imageops::flip_horizontal(&upright);
        assert!(mean_error(&flipped, &upright) > 15.0);
    }
}

#[test]
fn stored_photos_are_resized_stripped_of_exif_and_named_by_their_hash() {
    let input = read("Landscape_6.jpg");
    assert!(
        input.windows(6).any(|w| w == b"Exif\0\0"),
        "the input has EXIF"
    );
    let out = process(&input, &PhotoOptions::default(), &PhotoLimits::default()).unwrap();
    let img = image::load_from_memory(&out.jpeg).unwrap();
    assert_eq!(img.dimensions(), (1600, 1067));
    assert_eq!((out.reference.width, out.reference.height), (1600, 1067));
    assert!(
        !out.jpeg.windows(6).any(|w| w == b"Exif\0\0"),
        "no EXIF in the stored file"
    );
    let thumb = image::load_from_memory(&out.thumbnail).unwrap();
    assert_eq!(thumb.dimensions(), (320, 213));
    use sha2::Digest;
    assert_eq!(
        out.reference.sha256,
        hex::encode(sha2::Sha256::digest(&out.jpeg))
    );
    assert_eq!(out.reference.bytes as usize, out.jpeg.len());
    // This test picture is a sharp, detailed landscape (351 KB at 1800 x 1200 to begin with);
    // typical stored sizes are measured by the photo benchmark.
    assert!(out.jpeg.len() < input.len(), "{} bytes", out.jpeg.len());
    // A small picture is not enlarged.
    let tiny = process(
        &out.thumbnail,
        &PhotoOptions::default(),
        &PhotoLimits::default(),
    )
    .unwrap();
    assert_eq!((tiny.reference.width, tiny.reference.height), (320, 213));
}

#[test]
fn bad_pictures_are_refused_with_a_clear_error() {
    let good = read("Portrait_3.jpg");
    let limits = PhotoLimits::default();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated JPEG",
            good[..good.len() / 3].to_vec(),
            "truncated",
        ),
        (
            "random bytes",
            samples::random_bytes(5000),
            "not a JPEG or PNG",
        ),
        ("decompression bomb", samples::bomb_png(), "over the limit"),
        ("empty", Vec::new(), "not a JPEG or PNG"),
    ];
    for (what, bytes, expected) in cases {
        let err = process(&bytes, &PhotoOptions::default(), &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{what}: {err}");
    }
    let tight = PhotoLimits {
        max_file_bytes: 1000,
        ..PhotoLimits::default()
    };
    let err = process(&good, &PhotoOptions::default(), &tight)
        .unwrap_err()
        .to_string();
    assert!(err.contains("over the limit of 1000"), "{err}");
}

const CJK_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";
const LATIN_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn font(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!("{path}: {e} (.ci/run installs fonts-wqy-microhei and fonts-dejavu-core)")
    })
}

#[test]
fn a_watermark_with_chinese_text_is_stamped_into_the_bottom_band() {
    use xuncha_core::photo::Watermark;
    let input = read("Landscape_0.jpg");
    let lines = vec![
        "2026-11-23 10:41".to_owned(),
        "31.23040, 121.47370 幸福路1号".to_owned(),
        "老王面馆".to_owned(),
    ];
    let mark = Watermark::new(font(CJK_FONT), lines.clone()).unwrap();
    let plain = process(&input, &PhotoOptions::default(), &PhotoLimits::default()).unwrap();
    let options = PhotoOptions {
        watermark: Some(mark),
        ..PhotoOptions::default()
    };
    let stamped = process(&input, &options, &PhotoLimits::default()).unwrap();
    assert_ne!(plain.reference.sha256, stamped.reference.sha256);
    let (a, b) = (
        image::load_from_memory(&plain.jpeg).unwrap().to_rgb8(),
        image::load_from_memory(&stamped.jpeg).unwrap().to_rgb8(),
    );
    let (w, h) = a.dimensions();
    let rows = |img: &image::RgbImage, from: u32, to: u32| {
        image::imageops::crop_imm(img, 0, from, w, to - from).to_image()
    };
    // The top of the picture is untouched; the band at the bottom is darkened and carries
    // bright text, so it differs a lot.
    assert!(mean_error(&rows(&a, 0, h * 6 / 10), &rows(&b, 0, h * 6 / 10)) < 1.0);
    let band = (h - h / 7, h);
    assert!(mean_error(&rows(&a, band.0, band.1), &rows(&b, band.0, band.1)) > 20.0);
    let bright = rows(&b, band.0, band.1)
        .pixels()
        .filter(|p| p.0.iter().all(|c| *c > 200))
        .count();
    assert!(bright > 2_000, "the text is drawn: {bright} bright pixels");

    // A font that cannot show the Chinese text is refused up front, not drawn as boxes.
    let Err(err) = Watermark::new(font(LATIN_FONT), lines) else {
        panic!("a Latin-only font was accepted for Chinese text");
    };
    assert!(err.to_string().contains("no glyph for '幸'"), "{err}");
    assert!(Watermark::new(b"not a font".to_vec(), vec![]).is_err());
}

#[test]
fn a_watermark_drawn_by_the_host_is_stamped_where_its_layout_says() {
    use xuncha_core::photo::{Watermark, WatermarkLayout, prepare};
    let input = read("Portrait_6.jpg");
    let lines = vec!["2026-11-23 10:41".to_owned(), "老王面馆".to_owned()];
    let prepared = prepare(&input, &PhotoOptions::default(), &PhotoLimits::default()).unwrap();
    let layout = prepared.watermark_layout(lines.len());
    // The browser draws text with the phone's fonts; here a block stands for the glyphs: full
    // coverage in the band's left half, nothing elsewhere.
    let (w, band) = (layout.width, layout.band_height);
    let coverage: Vec<u8> = (0..w * band)
        .map(|i| if i % w < w / 2 { 255 } else { 0 })
        .collect();
    let mark = Watermark::drawn(lines.clone(), layout, coverage.clone()).unwrap();
    let options = PhotoOptions {
        watermark: Some(mark),
        ..PhotoOptions::default()
    };
    let stamped = prepared.finish(&options).unwrap();
    let plain = process(&input, &PhotoOptions::default(), &PhotoLimits::default()).unwrap();
    let (a, b) = (
        image::load_from_memory(&plain.jpeg).unwrap().to_rgb8(),
        image::load_from_memory(&stamped.jpeg).unwrap().to_rgb8(),
    );
    let h = a.height();
    assert_eq!(
        (a.width(), b.height()),
        (w, h),
        "upright portrait, as process makes it"
    );
    let luma = |img: &image::RgbImage, x: u32, y: u32| {
        img.get_pixel(x, y)
            .0
            .iter()
            .map(|c| u32::from(*c))
            .sum::<u32>()
            / 3
    };
    let y = h - band / 2;
    assert!(luma(&b, w / 4, y) > 240, "the drawn text is white");
    assert!(
        luma(&b, w * 3 / 4, y) * 2 < luma(&a, w * 3 / 4, y).max(40),
        "the rest of the band is darkened"
    );
    assert!(
        mean_error(
            &image::imageops::crop_imm(&a, 0, 0, w, h - band - 8).to_image(),
            &image::imageops::crop_imm(&b, 0, 0, w, h - band - 8).to_image()
        ) < 1.0
    );

    // Drawn for another size, or with the wrong number of pixels: refused, not smeared.
    let other = WatermarkLayout::for_picture(w + 10, h, lines.len());
    let wrong = Watermark::drawn(
        lines.clone(),
        other,
        vec![0; (other.width * other.band_height) as usize],
    )
    .unwrap();
    let prepared = prepare(&input, &PhotoOptions::default(), &PhotoLimits::default()).unwrap();
    let err = prepared
        .finish(&PhotoOptions {
            watermark: Some(wrong),
            ..PhotoOptions::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("drawn for a"), "{err}");
    assert!(Watermark::drawn(lines, layout, coverage[1..].to_vec()).is_err());
}

#[test]
fn the_server_takes_only_the_pipelines_jpegs_without_metadata() {
    use xuncha_core::photo::{check_pipeline_jpeg, verify};
    let limits = PhotoLimits::default();
    // What the pipeline makes passes, watermark or not.
    for name in ["Landscape_5.jpg", "Portrait_1.jpg"] {
        let made = process(&read(name), &small(), &limits).unwrap();
        check_pipeline_jpeg(&made.jpeg).unwrap();
        verify(&made.jpeg, &PhotoOptions::default(), &limits).unwrap();
    }
    // A camera's file (EXIF with the place and the phone), a PNG, or a JPEG with a comment
    // is refused: the server would serve it as it came.
    let camera = read("Landscape_5.jpg");
    let err = verify(&camera, &PhotoOptions::default(), &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("metadata"), "{err}");
    let png = {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbImage::new(8, 8)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    assert!(check_pipeline_jpeg(&png).is_err());
    let made = process(&read("Portrait_1.jpg"), &small(), &limits).unwrap();
    let mut commented = made.jpeg[..2].to_vec();
    commented.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x07, b'h', b'e', b'l', b'l', b'o']);
    commented.extend_from_slice(&made.jpeg[2..]);
    assert!(check_pipeline_jpeg(&commented).is_err());
}
