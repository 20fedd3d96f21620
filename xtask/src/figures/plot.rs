//! Charts (plotters, PNG + SVG with the embedded DejaVu Sans) and image sheets (PNG).

use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

/// Register the embedded font once (plotters' ab_glyph backend has no system fonts).
pub fn init_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        // registration fails only on an invalid font file, which the test suite would catch
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// How one series is drawn.
#[derive(Debug, Clone)]
#[allow(dead_code)] // every kind is offered to the figures; not all of them use every kind yet
pub enum Kind {
    /// Connected line.
    Line,
    /// Markers.
    Points,
    /// Line with markers.
    LinePoints,
    /// Independent segments `(x0, y0) → (x1, y1)`, given as consecutive point pairs, with a small
    /// arrow head at the end.
    Arrows,
    /// Vertical bars from 0, one per point (x = bar centre), of the given width.
    Bars(f64),
}

/// A named series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label (empty: no legend entry).
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Drawing kind.
    pub kind: Kind,
    /// Colour index into the palette.
    pub color: usize,
}

impl Series {
    /// A series.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, kind: Kind, color: usize) -> Self {
        Self { label: label.into(), points, kind, color }
    }
}

/// A 2-D chart.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// x label.
    pub x_label: String,
    /// y label.
    pub y_label: String,
    /// Series.
    pub series: Vec<Series>,
    /// Fixed x range (otherwise from the data).
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range (otherwise from the data).
    pub y_range: Option<(f64, f64)>,
    /// Equal scales on both axes.
    pub equal_aspect: bool,
}

pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];

fn ranges(c: &Chart) -> ((f64, f64), (f64, f64)) {
    let pts = c.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in pts {
        if x.is_finite() && y.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if c.series.iter().any(|s| matches!(s.kind, Kind::Bars(_))) {
        y0 = y0.min(0.0);
        let w =
            c.series.iter().filter_map(|s| if let Kind::Bars(w) = s.kind { Some(w) } else { None }).fold(0.0, f64::max);
        x0 -= w;
        x1 += w;
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = |a: f64, b: f64| {
        let d = if b > a { 0.05 * (b - a) } else { 0.5 };
        (a - d, b + d)
    };
    let (mut xr, mut yr) = (pad(x0, x1), pad(y0, y1));
    if c.equal_aspect {
        let (cx, cy) = (0.5 * (xr.0 + xr.1), 0.5 * (yr.0 + yr.1));
        let h = 0.5 * (xr.1 - xr.0).max(yr.1 - yr.0);
        xr = (cx - h, cx + h);
        yr = (cy - h, cy + h);
    }
    (c.x_range.unwrap_or(xr), c.y_range.unwrap_or(yr))
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, plotters::coord::Shift>, c: &Chart) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let ((x0, x1), (y0, y1)) = ranges(c);
    let mut chart = ChartBuilder::on(&root)
        .caption(&c.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| e.to_string())?;
    let mut legend = false;
    for s in &c.series {
        let col = PALETTE[s.color % PALETTE.len()];
        let style = ShapeStyle::from(&col).stroke_width(2);
        let anno = match &s.kind {
            Kind::Line => chart.draw_series(LineSeries::new(s.points.clone(), style)).map_err(|e| e.to_string())?,
            Kind::Points => chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, ShapeStyle::from(&col).filled())))
                .map_err(|e| e.to_string())?,
            Kind::LinePoints => {
                chart.draw_series(LineSeries::new(s.points.clone(), style)).map_err(|e| e.to_string())?;
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, ShapeStyle::from(&col).filled())))
                    .map_err(|e| e.to_string())?
            }
            Kind::Arrows => {
                let segs: Vec<((f64, f64), (f64, f64))> =
                    s.points.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0], c[1])).collect();
                chart
                    .draw_series(segs.iter().map(|&(a, b)| {
                        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
                        let len = (dx * dx + dy * dy).sqrt();
                        if len == 0.0 {
                            return PathElement::new(vec![a, b], ShapeStyle::from(&col).stroke_width(1));
                        }
                        let (ux, uy, hl) = (dx / len, dy / len, 0.3 * len);
                        let (c, s) = (0.906, 0.423); // ±25°
                        let h1 = (b.0 - hl * (ux * c - uy * s), b.1 - hl * (uy * c + ux * s));
                        let h2 = (b.0 - hl * (ux * c + uy * s), b.1 - hl * (uy * c - ux * s));
                        PathElement::new(vec![a, b, h1, b, h2], ShapeStyle::from(&col).stroke_width(1))
                    }))
                    .map_err(|e| e.to_string())?
            }
            Kind::Bars(w) => chart
                .draw_series(s.points.iter().map(|&(x, y)| {
                    Rectangle::new([(x - w / 2.0, 0.0), (x + w / 2.0, y)], ShapeStyle::from(&col.mix(0.7)).filled())
                }))
                .map_err(|e| e.to_string())?,
        };
        if !s.label.is_empty() {
            legend = true;
            anno.label(s.label.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 14, y + 4)], ShapeStyle::from(&col).filled()));
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Render a chart to `stem.png` and `stem.svg`.
pub fn render(c: &Chart, stem: &Path, size: (u32, u32)) -> Result<(), String> {
    init_font();
    let mut buf = vec![255u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        draw(root, c)?;
    }
    latent_datasets::write_png_rgb8(stem.with_extension("png"), size.0 as usize, size.1 as usize, &buf)
        .map_err(|e| e.to_string())?;
    let svg_path = stem.with_extension("svg");
    {
        let root = SVGBackend::new(&svg_path, size).into_drawing_area();
        draw(root, c)?;
    }
    Ok(())
}

/// An RGB image under construction.
#[derive(Debug, Clone)]
pub struct Canvas {
    /// Width in pixels.
    pub w: usize,
    /// Height in pixels.
    pub h: usize,
    /// RGB bytes, row-major.
    pub rgb: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with one colour.
    pub fn new(w: usize, h: usize, fill: [u8; 3]) -> Self {
        Self { w, h, rgb: fill.iter().copied().cycle().take(w * h * 3).collect() }
    }
    /// Set one pixel (ignored outside).
    pub fn put(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.w && y < self.h {
            let k = 3 * (y * self.w + x);
            self.rgb[k..k + 3].copy_from_slice(&c);
        }
    }
    /// Paste a grayscale tile (values mapped by `map` to 0..=255), scaled up by `zoom`.
    pub fn gray_tile(
        &mut self,
        x0: usize,
        y0: usize,
        tw: usize,
        th: usize,
        v: &[f32],
        zoom: usize,
        map: &dyn Fn(f32) -> u8,
    ) {
        for y in 0..th * zoom {
            for x in 0..tw * zoom {
                let g = map(v[(y / zoom) * tw + x / zoom]);
                self.put(x0 + x, y0 + y, [g, g, g]);
            }
        }
    }
    /// Paste an RGB tile scaled by `zoom`.
    pub fn rgb_tile(&mut self, x0: usize, y0: usize, tw: usize, th: usize, v: &[[u8; 3]], zoom: usize) {
        for y in 0..th * zoom {
            for x in 0..tw * zoom {
                self.put(x0 + x, y0 + y, v[(y / zoom) * tw + x / zoom]);
            }
        }
    }
    /// Draw text with the embedded font (through plotters on the buffer).
    pub fn text(&mut self, x: i32, y: i32, s: &str, size: f64) -> Result<(), String> {
        init_font();
        let root = BitMapBackend::with_buffer(&mut self.rgb, (self.w as u32, self.h as u32)).into_drawing_area();
        root.draw(&Text::new(s.to_string(), (x, y), ("sans-serif", size).into_font().color(&BLACK)))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    }
    /// Write as PNG.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        latent_datasets::write_png_rgb8(path, self.w, self.h, &self.rgb).map_err(|e| e.to_string())
    }
}

/// Linear map of `[lo, hi]` to 0..=255.
pub fn linear(lo: f32, hi: f32) -> impl Fn(f32) -> u8 {
    move |v| {
        let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        (t.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// Symmetric map of `[-a, a]` to 0..=255 (zero is mid-gray), for filters and atoms.
pub fn symmetric(a: f32) -> impl Fn(f32) -> u8 {
    linear(-a.max(1e-12), a.max(1e-12))
}

/// A grid of equally sized grayscale tiles, each normalised on its own (`per_tile`) or all with
/// one map, with a 1-pixel gap.
pub fn tile_sheet(
    tiles: &[Vec<f32>],
    tw: usize,
    th: usize,
    cols: usize,
    zoom: usize,
    per_tile_symmetric: bool,
) -> Canvas {
    let cols = cols.max(1);
    let rows = tiles.len().div_ceil(cols).max(1);
    let gap = 1;
    let mut c = Canvas::new(cols * (tw * zoom + gap) + gap, rows * (th * zoom + gap) + gap, [40, 40, 40]);
    let (lo, hi) = tiles.iter().flatten().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    for (i, t) in tiles.iter().enumerate() {
        let (r, q) = (i / cols, i % cols);
        let (x0, y0) = (gap + q * (tw * zoom + gap), gap + r * (th * zoom + gap));
        if per_tile_symmetric {
            let a = t.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            c.gray_tile(x0, y0, tw, th, t, zoom, &symmetric(a));
        } else {
            c.gray_tile(x0, y0, tw, th, t, zoom, &linear(lo, hi));
        }
    }
    c
}

/// The "jet"-like colormap used for heat maps: t in [0, 1] → RGB.
#[allow(dead_code)] // for the anomaly heat maps
pub fn heat(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let r = (1.5 - (4.0 * t - 3.0).abs()).clamp(0.0, 1.0);
    let g = (1.5 - (4.0 * t - 2.0).abs()).clamp(0.0, 1.0);
    let b = (1.5 - (4.0 * t - 1.0).abs()).clamp(0.0, 1.0);
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}
