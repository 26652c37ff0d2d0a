//! The photo pipeline (feature `photo`): what the phone does to a camera picture before it is
//! stored and uploaded, and what the server does again to verify an upload.
//!
//! Decode JPEG or PNG within hard limits (pixels and memory, checked from the header before
//! anything is allocated, so a tiny file claiming 50,000 x 50,000 pixels is refused at once);
//! apply the EXIF orientation; resize to a long edge of 1,600 px; encode JPEG at quality 76
//! with no metadata (so no EXIF, and no GPS position of the phone, leaves the device in the
//! file); make a ~320 px thumbnail. The SHA-256 of the stored bytes is the photo's id.

use std::io::Cursor;

use fast_image_resize::images::Image;
use fast_image_resize::{PixelType, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::PhotoRef;

/// Hard limits on what is decoded.
#[derive(Clone, Debug)]
pub struct PhotoLimits {
    /// Largest input file.
    pub max_file_bytes: usize,
    /// Largest width or height.
    pub max_side: u32,
    /// Most pixels (width x height).
    pub max_pixels: u64,
    /// Most memory the decoder may allocate.
    pub max_alloc_bytes: u64,
}

impl Default for PhotoLimits {
    fn default() -> Self {
        PhotoLimits {
            max_file_bytes: 40 << 20,
            max_side: 12_000,
            // 50 MP covers today's phone cameras (a 200 MP sensor bins to 12 to 50 MP).
            max_pixels: 50_000_000,
            max_alloc_bytes: 256 << 20,
        }
    }
}

/// What to produce.
#[derive(Clone, Debug)]
pub struct PhotoOptions {
    /// Long edge of the stored picture.
    pub long_edge: u32,
    /// JPEG quality, 1 to 100.
    pub quality: u8,
    /// Long edge of the thumbnail.
    pub thumb_edge: u32,
    /// Text stamped into the bottom of the picture (水印): time, place, premises.
    pub watermark: Option<Watermark>,
}

impl Default for PhotoOptions {
    fn default() -> Self {
        PhotoOptions {
            long_edge: 1600,
            // About 80, and low enough that a typical 1,600 px photo stays under 300 KB
            // (measured on real photographs: 319 KB at 80, 275 KB at 75).
            quality: 76,
            thumb_edge: 320,
            watermark: None,
        }
    }
}

/// A watermark: lines of text drawn white on a darkened band at the bottom. The glyphs come
/// from a font the host app supplies (TrueType/OpenType, collections too; it must cover the
/// text, CJK included), or are drawn by the host itself to the [`WatermarkLayout`] (a browser
/// draws them with the phone's own fonts, so the app carries none).
#[derive(Clone)]
pub struct Watermark {
    glyphs: Glyphs,
    /// The lines, top to bottom.
    pub lines: Vec<String>,
}

#[derive(Clone)]
enum Glyphs {
    Font(std::sync::Arc<ab_glyph::FontVec>),
    /// Coverage (0 to 255) of each pixel of the band, row by row, as drawn for the layout.
    Drawn(WatermarkLayout, std::sync::Arc<Vec<u8>>),
}

impl std::fmt::Debug for Watermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watermark")
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

/// Where a watermark goes on a picture: a band across the bottom, `band_height` pixels high,
/// with the lines `line_height` apart from `pad` inside it, in text of `font_px`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct WatermarkLayout {
    /// The band's width: the picture's.
    pub width: u32,
    /// The band's height.
    pub band_height: u32,
    /// Text size (em) in pixels.
    pub font_px: f32,
    /// Distance between baselines.
    pub line_height: f32,
    /// Margin around the text.
    pub pad: f32,
}

impl WatermarkLayout {
    /// The layout of `lines` lines on a picture of `width` x `height`: text about 1/28 of the
    /// short side (at least 14 px), so it reads on the phone and on a printed notice alike.
    pub fn for_picture(width: u32, height: u32, lines: usize) -> Self {
        let font_px = (height.min(width) as f32 / 28.0).max(14.0);
        let line_height = font_px * 1.25;
        let pad = font_px * 0.5;
        let band_height = (line_height * lines as f32 + 2.0 * pad).min(height as f32) as u32;
        WatermarkLayout {
            width,
            band_height,
            font_px,
            line_height,
            pad,
        }
    }
}

impl Watermark {
    /// Loads the font (the first face of a collection) and checks it covers every character.
    pub fn new(font_bytes: Vec<u8>, lines: Vec<String>) -> Result<Watermark> {
        let font = ab_glyph::FontVec::try_from_vec_and_index(font_bytes, 0)
            .map_err(|e| bad(format!("watermark font does not load: {e}")))?;
        Watermark {
            glyphs: Glyphs::Font(std::sync::Arc::new(font)),
            lines: Vec::new(),
        }
        .with_lines(lines)
    }

    /// The lines as the host drew them for `layout` (see [`Prepared::watermark_layout`]):
    /// the coverage of each pixel of the band, row by row.
    pub fn drawn(lines: Vec<String>, layout: WatermarkLayout, coverage: Vec<u8>) -> Result<Self> {
        let want = layout.width as usize * layout.band_height as usize;
        if coverage.len() != want {
            return Err(bad(format!(
                "the watermark was drawn as {} pixels; its {} x {} band has {want}",
                coverage.len(),
                layout.width,
                layout.band_height
            )));
        }
        Ok(Watermark {
            glyphs: Glyphs::Drawn(layout, std::sync::Arc::new(coverage)),
            lines,
        })
    }

    /// The same font with other lines (checked the same way).
    pub fn with_lines(&self, lines: Vec<String>) -> Result<Watermark> {
        use ab_glyph::Font;
        if let Glyphs::Font(font) = &self.glyphs
            && let Some(c) = lines
                .iter()
                .flat_map(|l| l.chars())
                .find(|c| !c.is_whitespace() && font.glyph_id(*c).0 == 0)
        {
            return Err(bad(format!("the watermark font has no glyph for {c:?}")));
        }
        Ok(Watermark {
            glyphs: self.glyphs.clone(),
            lines,
        })
    }

    /// Draws the lines onto an RGB picture.
    fn stamp(&self, img: &mut Image<'_>) -> Result<()> {
        use ab_glyph::{Font, ScaleFont, point};
        let (w, h) = (img.width(), img.height());
        let layout = WatermarkLayout::for_picture(w, h, self.lines.len());
        let band = layout.band_height;
        let top = h - band;
        // White over the pixel at (x, y), by coverage.
        let lighten = |buf: &mut [u8], x: u32, y: u32, coverage: f32| {
            let i = ((y * w + x) * 3) as usize;
            for c in &mut buf[i..i + 3] {
                *c = (f32::from(*c) + (255.0 - f32::from(*c)) * coverage.min(1.0)) as u8;
            }
        };
        if let Glyphs::Drawn(drawn, _) = &self.glyphs
            && *drawn != layout
        {
            return Err(bad(format!(
                "the watermark was drawn for a {} x {} band; this picture's is {} x {band}",
                drawn.width, drawn.band_height, w
            )));
        }
        let buf = img.buffer_mut();
        // Darken the band so white text reads on any picture.
        for y in top..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                for c in &mut buf[i..i + 3] {
                    *c = (u16::from(*c) * 2 / 5) as u8;
                }
            }
        }
        match &self.glyphs {
            Glyphs::Drawn(_, coverage) => {
                for (i, &a) in coverage.iter().enumerate() {
                    if a > 0 {
                        let (x, y) = (i as u32 % w, top + i as u32 / w);
                        lighten(buf, x, y, f32::from(a) / 255.0);
                    }
                }
            }
            Glyphs::Font(font) => {
                let size = layout.font_px;
                let scaled = font.as_scaled(size);
                for (n, line) in self.lines.iter().enumerate() {
                    let baseline =
                        top as f32 + layout.pad + layout.line_height * n as f32 + scaled.ascent();
                    let mut x = layout.pad;
                    for c in line.chars() {
                        let id = font.glyph_id(c);
                        let glyph = id.with_scale_and_position(size, point(x, baseline));
                        x += scaled.h_advance(id);
                        let Some(outline) = font.outline_glyph(glyph) else {
                            continue;
                        };
                        let b = outline.px_bounds();
                        outline.draw(|gx, gy, coverage| {
                            let (px, py) = (
                                b.min.x as i64 + i64::from(gx),
                                b.min.y as i64 + i64::from(gy),
                            );
                            if px >= 0 && py >= 0 && px < i64::from(w) && py < i64::from(h) {
                                lighten(buf, px as u32, py as u32, coverage);
                            }
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// A processed photo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessedPhoto {
    /// The stored JPEG.
    pub jpeg: Vec<u8>,
    /// Its thumbnail (JPEG).
    pub thumbnail: Vec<u8>,
    /// Reference: SHA-256 of `jpeg`, size and dimensions.
    pub reference: PhotoRef,
}

fn bad(message: impl Into<String>) -> Error {
    Error::invalid("photo", message)
}

/// Checks a picture's size against the limits, from its header.
fn check_size(w: u32, h: u32, limits: &PhotoLimits) -> Result<()> {
    if w == 0 || h == 0 || w > limits.max_side || h > limits.max_side {
        return Err(bad(format!(
            "{w} x {h} pixels is over the limit of {} per side",
            limits.max_side
        )));
    }
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(bad(format!(
            "{w} x {h} pixels is over the limit of {} pixels",
            limits.max_pixels
        )));
    }
    Ok(())
}

/// A JPEG decoded straight to the smallest 1/8, 1/4, 1/2 or full scale that still has a long
/// edge of at least `long_edge` (the IDCT does the first shrink, as libvips' shrink-on-load
/// does: a 12-megapixel photo for a 1,600 px result is decoded at 2000 x 1500).
fn decode_jpeg_scaled(bytes: &[u8], limits: &PhotoLimits, long_edge: u32) -> Result<DynamicImage> {
    let damaged = |e: jpeg_decoder::Error| bad(format!("picture data is damaged: {e}"));
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    d.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc_bytes).unwrap_or(usize::MAX));
    d.read_info().map_err(damaged)?;
    let info = d.info().ok_or_else(|| bad("not a readable picture"))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    check_size(w, h, limits)?;
    let scale = f64::from(long_edge) / f64::from(w.max(h));
    if scale < 1.0 {
        let want = |n: u32| {
            (f64::from(n) * scale)
                .ceil()
                .clamp(1.0, f64::from(u16::MAX)) as u16
        };
        d.scale(want(w), want(h)).map_err(damaged)?;
    }
    let pixels = d.decode().map_err(damaged)?;
    let info = d.info().ok_or_else(|| bad("not a readable picture"))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let mut img = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
        }
        jpeg_decoder::PixelFormat::L8 => {
            image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8)
        }
        other => return Err(bad(format!("unsupported JPEG colour format {other:?}"))),
    }
    .ok_or_else(|| bad("picture data is damaged: short pixel data"))?;
    let orientation = d
        .exif_data()
        .and_then(image::metadata::Orientation::from_exif_chunk)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    img.apply_orientation(orientation);
    Ok(img)
}

/// Decodes `bytes` (JPEG or PNG) within `limits` and turns it upright. A JPEG may come out
/// already shrunk, as long as its long edge stays at least `long_edge` (`u32::MAX`: full size).
pub fn decode_upright(bytes: &[u8], limits: &PhotoLimits, long_edge: u32) -> Result<DynamicImage> {
    if bytes.len() > limits.max_file_bytes {
        return Err(bad(format!(
            "file of {} bytes is over the limit of {}",
            bytes.len(),
            limits.max_file_bytes
        )));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    match reader.format() {
        Some(image::ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            return Err(bad("picture data is damaged: the JPEG is truncated"));
        }
        Some(image::ImageFormat::Jpeg) => return decode_jpeg_scaled(bytes, limits, long_edge),
        Some(image::ImageFormat::Png) => {}
        _ => return Err(bad("not a JPEG or PNG picture")),
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| bad(format!("not a readable picture: {e}")))?;
    let (w, h) = decoder.dimensions();
    check_size(w, h, limits)?;
    let mut alloc = Limits::default();
    alloc.max_image_width = Some(limits.max_side);
    alloc.max_image_height = Some(limits.max_side);
    alloc.max_alloc = Some(limits.max_alloc_bytes);
    decoder
        .set_limits(alloc)
        .map_err(|e| bad(format!("over the memory limit: {e}")))?;
    let orientation = decoder
        .orientation()
        .map_err(|e| bad(format!("bad orientation data: {e}")))?;
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| bad(format!("picture data is damaged: {e}")))?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Whether a JPEG ends its last scan with an end-of-image marker. Decoders fill a cut-off
/// picture with grey rather than fail, so a half-uploaded photo would pass for a real one.
/// Entropy-coded data never contains `FF D9` (0xFF bytes are stuffed), so the marker after
/// the last start-of-scan is the real end; data some phones append after it is allowed.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    last_scan.is_some_and(|sos| bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// Scales `img` (RGB) so its long edge is at most `long_edge`.
fn fit(img: &DynamicImage, long_edge: u32) -> Result<Image<'static>> {
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    let scale = f64::from(long_edge) / f64::from(w.max(h));
    let (tw, th) = if scale < 1.0 {
        (
            ((f64::from(w) * scale).round() as u32).max(1),
            ((f64::from(h) * scale).round() as u32).max(1),
        )
    } else {
        (w, h)
    };
    let src = Image::from_vec_u8(w, h, rgb.into_raw(), PixelType::U8x3)
        .map_err(|e| bad(format!("resize: {e}")))?;
    if (tw, th) == (w, h) {
        return Ok(src);
    }
    let mut dst = Image::new(tw, th, PixelType::U8x3);
    Resizer::new()
        .resize(&src, &mut dst, &ResizeOptions::default())
        .map_err(|e| bad(format!("resize: {e}")))?;
    Ok(dst)
}

fn encode(img: &Image<'_>, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity((img.width() * img.height() / 4) as usize);
    let (w, h) = (
        u16::try_from(img.width()).map_err(|_| bad("too wide to encode"))?,
        u16::try_from(img.height()).map_err(|_| bad("too tall to encode"))?,
    );
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    // 4:2:0 chroma, as cameras do (stated, so a change of the encoder's default cannot grow files).
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder
        .encode(img.buffer(), w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| bad(format!("encode: {e}")))?;
    Ok(out)
}

/// The whole pipeline: decode, orient, resize, watermark, encode, thumbnail.
pub fn process(
    bytes: &[u8],
    options: &PhotoOptions,
    limits: &PhotoLimits,
) -> Result<ProcessedPhoto> {
    prepare(bytes, options, limits)?.finish(options)
}

/// A picture decoded within limits, upright and scaled to its stored size: the first half of
/// [`process`], for a host that draws the watermark itself and so needs the size first.
pub struct Prepared(Image<'static>);

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prepared({} x {})", self.0.width(), self.0.height())
    }
}

/// Decodes, orients and scales `bytes` (see [`process`]).
pub fn prepare(bytes: &[u8], options: &PhotoOptions, limits: &PhotoLimits) -> Result<Prepared> {
    let upright = decode_upright(bytes, limits, options.long_edge)?;
    Ok(Prepared(fit(&upright, options.long_edge)?))
}

impl Prepared {
    /// Where `lines` lines of watermark go on this picture.
    pub fn watermark_layout(&self, lines: usize) -> WatermarkLayout {
        WatermarkLayout::for_picture(self.0.width(), self.0.height(), lines)
    }

    /// Stamps the watermark (if any), encodes and makes the thumbnail.
    pub fn finish(self, options: &PhotoOptions) -> Result<ProcessedPhoto> {
        let mut stored = self.0;
        if let Some(mark) = &options.watermark {
            mark.stamp(&mut stored)?;
        }
        let jpeg = encode(&stored, options.quality)?;
        let thumb_source = DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(stored.width(), stored.height(), stored.buffer().to_vec())
                .ok_or_else(|| bad("thumbnail buffer"))?,
        );
        let thumbnail = encode(&fit(&thumb_source, options.thumb_edge)?, options.quality)?;
        let reference = PhotoRef {
            sha256: hex::encode(Sha256::digest(&jpeg)),
            bytes: jpeg.len() as u64,
            width: stored.width(),
            height: stored.height(),
        };
        Ok(ProcessedPhoto {
            jpeg,
            thumbnail,
            reference,
        })
    }
}

/// An uploaded photo that decoded within limits, with the thumbnail the server keeps of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPhoto {
    /// Width in pixels, as stored.
    pub width: u32,
    /// Height in pixels, as stored.
    pub height: u32,
    /// Its thumbnail (JPEG).
    pub thumbnail: Vec<u8>,
}

/// What the server does to an upload before it becomes visible: the whole picture must
/// decode within `limits` (every scan is read, so a damaged or cut-off file fails); the decode
/// shrinks on load to the thumbnail's size, so verifying costs little memory.
pub fn verify(bytes: &[u8], options: &PhotoOptions, limits: &PhotoLimits) -> Result<VerifiedPhoto> {
    check_pipeline_jpeg(bytes)?;
    let small = decode_upright(bytes, limits, options.thumb_edge)?;
    let (width, height) = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(format!("cannot read: {e}")))?
        .into_dimensions()
        .map_err(|e| bad(format!("not a readable picture: {e}")))?;
    let thumbnail = encode(&fit(&small, options.thumb_edge)?, options.quality)?;
    Ok(VerifiedPhoto {
        width,
        height,
        thumbnail,
    })
}

/// Whether the bytes are what [`process`] makes: a baseline JPEG whose headers carry no
/// metadata (no EXIF, XMP, ICC profile or comment: the place and device of a picture must not
/// travel in it, and a file is served as the JPEG it claims to be). The photo's hash is its
/// identity, so the server cannot strip metadata itself: it refuses the file instead.
pub fn check_pipeline_jpeg(bytes: &[u8]) -> Result<()> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(bad("not a JPEG made by the app's photo pipeline"));
    }
    let mut at = 2;
    loop {
        let (Some(&0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
            return Err(bad("a damaged JPEG header"));
        };
        match marker {
            // Padding before a marker.
            0xFF => {
                at += 1;
                continue;
            }
            // Start of scan: the headers are over.
            0xDA => return Ok(()),
            // APP1..APP15 (EXIF, XMP, ICC, Adobe, ...) and comments carry metadata.
            0xE1..=0xEF | 0xFE => {
                return Err(bad(
                    "the JPEG carries metadata (EXIF, XMP, ICC or a comment); send the app's processed photo",
                ));
            }
            // Segments without a length.
            0x01 | 0xD0..=0xD7 => {
                at += 2;
                continue;
            }
            _ => {}
        }
        let len = match (bytes.get(at + 2), bytes.get(at + 3)) {
            (Some(&hi), Some(&lo)) => usize::from(hi) << 8 | usize::from(lo),
            _ => return Err(bad("a damaged JPEG header")),
        };
        if len < 2 {
            return Err(bad("a damaged JPEG header"));
        }
        at += 2 + len;
    }
}

/// Where a phone keeps its photos: `{sha256}.jpg` and `{sha256}.thumb.jpg` in one directory.
#[derive(Clone, Debug)]
pub struct PhotoDir(pub std::path::PathBuf);

impl PhotoDir {
    /// Saves a processed photo. Saving the same photo again is a no-op.
    pub fn save(&self, photo: &ProcessedPhoto) -> Result<PhotoRef> {
        let sha = &photo.reference.sha256;
        self.put(&self.full(sha), &photo.jpeg)?;
        self.put(&self.thumbnail(sha), &photo.thumbnail)?;
        Ok(photo.reference.clone())
    }

    /// Writes `bytes` at `path` in this directory unless it is there already (to a temporary
    /// name, then renamed, so a crash never leaves a half-written file under a photo's id).
    pub fn put(&self, path: &std::path::Path, bytes: &[u8]) -> Result<()> {
        let io =
            |e: std::io::Error| Error::invalid("photo", format!("cannot store the photo: {e}"));
        if path.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.0).map_err(io)?;
        let tmp = path.with_extension("part");
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// The stored picture or its thumbnail.
    pub fn path(&self, sha256: &str, thumbnail: bool) -> std::path::PathBuf {
        if thumbnail {
            self.thumbnail(sha256)
        } else {
            self.full(sha256)
        }
    }

    /// The stored picture of a photo id.
    pub fn full(&self, sha256: &str) -> std::path::PathBuf {
        self.0.join(format!("{sha256}.jpg"))
    }

    /// The thumbnail of a photo id.
    pub fn thumbnail(&self, sha256: &str) -> std::path::PathBuf {
        self.0.join(format!("{sha256}.thumb.jpg"))
    }
}

/// Pictures that must be refused, for tests of every layer that takes photos.
pub mod samples {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for b in bytes {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
        out
    }

    /// `n` bytes of noise (deterministic), which no decoder takes for a picture.
    pub fn random_bytes(n: u32) -> Vec<u8> {
        (0..n)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    /// A 60-byte PNG that claims 50,000 x 50,000 pixels (7.5 GB decoded).
    pub fn bomb_png() -> Vec<u8> {
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&50_000u32.to_be_bytes());
        ihdr.extend_from_slice(&50_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &ihdr));
        png.extend(chunk(
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        ));
        png.extend(chunk(b"IEND", &[]));
        png
    }
}
