//! The latency PNG: every sample over time (left) and the latency distribution as
//! a cumulative curve with p50/p99/p99.9 marked (right). Text uses DejaVu Sans from
//! the system (Debian package fonts-dejavu-core).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::latency::Latency;
use crate::BenchError;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn register_font() -> Result<(), BenchError> {
    for p in FONT_PATHS {
        if let Ok(bytes) = std::fs::read(p) {
            // plotters keeps the font for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            return plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| BenchError::Run("font could not be loaded".into()));
        }
    }
    Err(BenchError::Run(format!(
        "no TrueType font found (looked at {}); install fonts-dejavu-core",
        FONT_PATHS.join(", ")
    )))
}

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Run(format!("plot: {e}"))
}

pub fn draw(path: &Path, lat: &Latency, rate: u64) -> Result<(), BenchError> {
    register_font()?;
    let p = lat.percentiles();
    let root = BitMapBackend::new(path, (1400, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (title, body) = root.split_vertically(50);
    title
        .draw(&Text::new(
            format!(
                "vset: PostgreSQL COMMIT → visible in Redis, {rate} writes/s, one relay  (p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms)",
                p.p50, p.p99, p.p999
            ),
            (20, 12),
            ("sans-serif", 22).into_font(),
        ))
        .map_err(err)?;
    let (left, right) = body.split_horizontally(800);
    let y_max = (p.max * 1.1).max(1.0);
    let t_max = lat.samples.iter().map(|s| s.0).fold(1.0, f64::max);

    let mut chart = ChartBuilder::on(&left)
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .caption("every write", ("sans-serif", 18))
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds into the run")
        .y_desc("latency (ms)")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(
            lat.samples
                .iter()
                .map(|(t, l)| Circle::new((*t, *l), 1, RGBColor(60, 110, 190).filled())),
        )
        .map_err(err)?;

    let mut sorted: Vec<f64> = lat.samples.iter().map(|s| s.1).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len().max(1) as f64;
    let mut cdf = ChartBuilder::on(&right)
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .caption("share of writes visible within x ms", ("sans-serif", 18))
        .build_cartesian_2d(0.0..y_max, 0.0..100.0)
        .map_err(err)?;
    cdf.configure_mesh()
        .x_desc("latency (ms)")
        .y_desc("% of writes")
        .draw()
        .map_err(err)?;
    cdf.draw_series(LineSeries::new(
        sorted
            .iter()
            .enumerate()
            .map(|(i, l)| (*l, (i + 1) as f64 * 100.0 / n)),
        RGBColor(60, 110, 190).stroke_width(2),
    ))
    .map_err(err)?;
    for (label, v, color) in [
        ("p50", p.p50, RGBColor(60, 150, 80)),
        ("p99", p.p99, RGBColor(220, 140, 30)),
        ("p99.9", p.p999, RGBColor(200, 60, 50)),
    ] {
        cdf.draw_series(LineSeries::new(
            vec![(v, 0.0), (v, 100.0)],
            color.stroke_width(1),
        ))
        .map_err(err)?
        .label(format!("{label} {v:.2} ms"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    cdf.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
