//! PNG reading (all colour types), writing, label maps and image folders.

mod common;

use common::TempDir;
use latent_datasets::{
    DatasetError, GrayImage, LabelImage, data_file, decode_png, list_images, load_image_folder, png_size, read_png,
    read_png_labels, write_png_gray8, write_png_gray8_bytes, write_png_labels16, write_png_rgb8,
};
use std::path::Path;

/// Encode with the `png` crate directly, for colour types the crate does not write.
fn encode(
    path: &Path,
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    palette: Option<&[u8]>,
    trns: Option<&[u8]>,
    data: &[u8],
) {
    let f = std::fs::File::create(path).unwrap();
    let mut e = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    e.set_color(color);
    e.set_depth(depth);
    if let Some(p) = palette {
        e.set_palette(p.to_vec());
    }
    if let Some(t) = trns {
        e.set_trns(t.to_vec());
    }
    let mut wr = e.write_header().unwrap();
    wr.write_image_data(data).unwrap();
    wr.finish().unwrap();
}

#[test]
fn gray8_round_trip_is_exact() {
    let dir = TempDir::new("png_gray8");
    let img = GrayImage::from_fn(37, 11, |x, y| ((x * 7 + y * 13) % 256) as f32 / 255.0);
    let p = dir.join("g.png");
    write_png_gray8(&p, &img).unwrap();
    assert_eq!(read_png(&p).unwrap(), img);
    assert_eq!(png_size(&p).unwrap(), (37, 11));
    // out-of-range values are clamped, NaN becomes 0
    let odd = GrayImage::new(3, 1, vec![-1.0, 2.0, f32::NAN]).unwrap();
    write_png_gray8(&p, &odd).unwrap();
    assert_eq!(read_png(&p).unwrap().data, vec![0.0, 1.0, 0.0]);
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(decode_png(&bytes, "mem.png").unwrap().data, vec![0.0, 1.0, 0.0]);
}

#[test]
fn rgb_and_rgba_use_rec601_luma() {
    let dir = TempDir::new("png_rgb");
    let rgb = [255u8, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30];
    let p = dir.join("rgb.png");
    write_png_rgb8(&p, 2, 2, &rgb).unwrap();
    let g = read_png(&p).unwrap();
    let expect = [0.299f32, 0.587, 0.114, (0.299 * 10.0 + 0.587 * 20.0 + 0.114 * 30.0) / 255.0];
    for (a, b) in g.data.iter().zip(expect) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    let p = dir.join("rgba.png");
    encode(&p, 1, 1, png::ColorType::Rgba, png::BitDepth::Eight, None, None, &[0, 255, 0, 7]);
    assert!((read_png(&p).unwrap().data[0] - 0.587).abs() < 1e-6);
    let p = dir.join("rgb16.png");
    encode(&p, 1, 1, png::ColorType::Rgb, png::BitDepth::Sixteen, None, None, &[0xFF, 0xFF, 0, 0, 0, 0]);
    assert!((read_png(&p).unwrap().data[0] - 0.299).abs() < 1e-6);
    assert!(matches!(write_png_rgb8(&p, 2, 2, &rgb[..11]), Err(DatasetError::InvalidParameter { .. })));
}

#[test]
fn gray16_gray_alpha_palette_and_low_bit_depths() {
    let dir = TempDir::new("png_kinds");
    // 16-bit gray through the label writer: values scale by 65535
    let p = dir.join("g16.png");
    write_png_labels16(&p, &LabelImage::new(3, 1, vec![0, 32768, 65535]).unwrap()).unwrap();
    let g = read_png(&p).unwrap();
    assert_eq!(g.data[0], 0.0);
    assert!((g.data[1] - 32768.0 / 65535.0).abs() < 1e-7);
    assert_eq!(g.data[2], 1.0);
    assert_eq!(read_png_labels(&p).unwrap().data, vec![0, 32768, 65535]);
    // gray + alpha keeps the gray channel
    let p = dir.join("ga.png");
    encode(&p, 2, 1, png::ColorType::GrayscaleAlpha, png::BitDepth::Eight, None, None, &[51, 0, 204, 255]);
    assert_eq!(read_png(&p).unwrap().data, vec![0.2, 0.8]);
    // palette is expanded to RGB then luma
    let p = dir.join("pal.png");
    let palette = [0u8, 0, 0, 255, 255, 255, 255, 0, 0];
    encode(&p, 3, 1, png::ColorType::Indexed, png::BitDepth::Eight, Some(&palette), None, &[1, 0, 2]);
    let g = read_png(&p).unwrap();
    assert!((g.data[0] - 1.0).abs() < 1e-6 && g.data[1] == 0.0 && (g.data[2] - 0.299).abs() < 1e-6);
    // as labels, palette images give their indices
    assert_eq!(read_png_labels(&p).unwrap().data, vec![1, 0, 2]);
    // palette with transparency → RGBA → luma
    let p = dir.join("pal_trns.png");
    encode(&p, 1, 1, png::ColorType::Indexed, png::BitDepth::Eight, Some(&palette), Some(&[0, 128]), &[1]);
    assert!((read_png(&p).unwrap().data[0] - 1.0).abs() < 1e-6);
    // 1-bit and 4-bit gray: intensities scale to [0,1], labels keep raw values
    let p = dir.join("g1.png");
    encode(&p, 10, 1, png::ColorType::Grayscale, png::BitDepth::One, None, None, &[0b1010_0000, 0b0100_0000]);
    assert_eq!(read_png(&p).unwrap().data, vec![1., 0., 1., 0., 0., 0., 0., 0., 0., 1.]);
    assert_eq!(read_png_labels(&p).unwrap().data, vec![1, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
    let p = dir.join("g4.png");
    encode(&p, 3, 1, png::ColorType::Grayscale, png::BitDepth::Four, None, None, &[0x3F, 0x70]);
    assert_eq!(read_png_labels(&p).unwrap().data, vec![3, 15, 7]);
    assert_eq!(read_png(&p).unwrap().data, vec![0.2, 1.0, 7.0 / 15.0]);
    // colour images are not label maps
    let p = dir.join("rgb.png");
    write_png_rgb8(&p, 1, 1, &[1, 2, 3]).unwrap();
    assert!(matches!(read_png_labels(&p), Err(DatasetError::Unsupported { .. })));
}

#[test]
fn corrupt_png_is_typed() {
    let dir = TempDir::new("png_bad");
    let img = GrayImage::from_fn(16, 16, |x, y| (x ^ y) as f32 / 15.0);
    let p = dir.join("ok.png");
    write_png_gray8(&p, &img).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let e = decode_png(&bytes[..bytes.len() / 2], "half.png").unwrap_err();
    assert!(matches!(e, DatasetError::Truncated { .. } | DatasetError::Format { .. }), "{e}");
    assert!(e.to_string().contains("half.png"));
    assert!(matches!(decode_png(b"GIF89a not a png at all", "gif.png"), Err(DatasetError::Format { .. })));
    assert!(matches!(
        decode_png(&bytes[..4], "tiny.png"),
        Err(DatasetError::Truncated { .. } | DatasetError::Format { .. })
    ));
    assert!(matches!(read_png(dir.join("absent.png")), Err(DatasetError::Io { .. })));
    assert!(matches!(
        write_png_gray8_bytes(dir.join("x.png"), 2, 2, &[0; 3]),
        Err(DatasetError::InvalidParameter { .. })
    ));
    assert!(matches!(
        write_png_labels16(dir.join("x.png"), &LabelImage::new(1, 1, vec![70_000]).unwrap()),
        Err(DatasetError::InvalidParameter { .. })
    ));
}

#[test]
fn folders_list_sorted_pngs_only() {
    let dir = TempDir::new("png_dir");
    for name in ["b.png", "a.PNG", "c.png"] {
        write_png_gray8_bytes(dir.join(name), 1, 1, &[9]).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "x").unwrap();
    std::fs::create_dir(dir.join("sub.png")).unwrap();
    let names: Vec<String> = list_images(dir.path())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.PNG", "b.png", "c.png"]);
    assert!(matches!(list_images(dir.join("missing")), Err(DatasetError::Missing { .. })));
}

#[test]
fn repository_images_load_with_their_manifest_sizes() {
    let imgs = load_image_folder(data_file("natural-gray").unwrap()).unwrap();
    assert_eq!(imgs.len(), 17);
    let size = |name: &str| {
        let (_, i) = imgs.iter().find(|(p, _)| p.file_name().unwrap() == name).unwrap();
        (i.width, i.height)
    };
    assert_eq!(size("sporco_kodim23.png"), (768, 512));
    assert_eq!(size("sklearn_china.png"), (640, 427));
    assert_eq!(size("skimage_chelsea.png"), (451, 300));
    assert_eq!(size("scipy_face.png"), (1024, 768));
    for (p, i) in &imgs {
        assert_eq!(i.data.len(), i.width * i.height);
        assert!(i.data.iter().all(|v| (0.0..=1.0).contains(v)), "{}", p.display());
    }
    let l = read_png_labels(data_file("cells/dsb2018_instances.png").unwrap()).unwrap();
    assert_eq!((l.width, l.height, l.max_label()), (512, 512, 125));
}

#[test]
fn lying_header_is_too_large_without_allocating() {
    // a valid 1x1 PNG whose IHDR is rewritten (with a correct CRC) to claim 60000 x 60000 RGBA
    let dir = TempDir::new("png_huge");
    let p = dir.join("ok.png");
    write_png_rgb8(&p, 1, 1, &[1, 2, 3]).unwrap();
    let mut b = std::fs::read(&p).unwrap();
    // signature (8) + length (4) + "IHDR" (4), then width, height
    b[16..20].copy_from_slice(&60_000u32.to_be_bytes());
    b[20..24].copy_from_slice(&60_000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&b[12..29]);
    b[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    let e = decode_png(&b, "huge.png").unwrap_err();
    assert!(matches!(e, DatasetError::TooLarge { claimed: 10_800_000_000, .. }), "{e}");
    let big = dir.join("huge.png");
    std::fs::write(&big, &b).unwrap();
    assert!(matches!(read_png(&big), Err(DatasetError::TooLarge { .. })));
    assert!(matches!(
        read_png_labels(&big),
        Err(DatasetError::TooLarge { .. }) | Err(DatasetError::Unsupported { .. })
    ));
    assert_eq!(png_size(&big).unwrap(), (60_000, 60_000));
}
