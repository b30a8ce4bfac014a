//! The lab's PNG: one bar panel per figure (stale entries, lost writes, write
//! p99, hit rate), one bar per strategy. Text uses DejaVu Sans from the system
//! (Debian package fonts-dejavu-core), registered at run time.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::run::Figures;
use crate::LabError;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn register_font() -> Result<(), LabError> {
    for p in FONT_PATHS {
        if let Ok(bytes) = std::fs::read(p) {
            // plotters keeps the font for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            return register_font_bytes(bytes);
        }
    }
    Err(LabError::Chart(format!(
        "no TrueType font found (looked at {}); install fonts-dejavu-core",
        FONT_PATHS.join(", ")
    )))
}

fn register_font_bytes(bytes: &'static [u8]) -> Result<(), LabError> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| LabError::Chart("font could not be loaded".into()))
}

pub fn draw(path: &Path, figures: &[Figures], subtitle: &str) -> Result<(), LabError> {
    register_font()?;
    let chart_err = |e: String| LabError::Chart(e);
    let root = BitMapBackend::new(path, (1400, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| chart_err(e.to_string()))?;
    let (title, body) = root.split_vertically(70);
    title
        .draw(&Text::new(
            format!("Strategy lab: same workload, same faults ({subtitle})"),
            (20, 15),
            ("sans-serif", 26).into_font(),
        ))
        .map_err(|e| chart_err(e.to_string()))?;
    let panels = body.split_evenly((2, 2));
    let names: Vec<String> = figures.iter().map(|f| f.strategy.clone()).collect();
    let series: [(&str, Vec<f64>, RGBColor); 4] = [
        (
            "stale cache entries (episodes, lower is better)",
            figures.iter().map(|f| f.stale() as f64).collect(),
            RGBColor(200, 60, 50),
        ),
        (
            "lost writes (lower is better)",
            figures.iter().map(|f| f.lost_writes as f64).collect(),
            RGBColor(150, 80, 160),
        ),
        (
            "write latency p99, ms (lower is better)",
            figures
                .iter()
                .map(|f| f.write_p99_us as f64 / 1000.0)
                .collect(),
            RGBColor(60, 110, 190),
        ),
        (
            "cache hit rate, % (higher is better)",
            figures.iter().map(|f| f.hit_rate() * 100.0).collect(),
            RGBColor(60, 150, 80),
        ),
    ];
    for (area, (caption, values, color)) in panels.iter().zip(series.iter()) {
        let max = values.iter().cloned().fold(0.0_f64, f64::max);
        let top = if max <= 0.0 { 1.0 } else { max * 1.15 };
        let mut chart = ChartBuilder::on(area)
            .caption(*caption, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (0..names.len().saturating_sub(1)).into_segmented(),
                0.0..top,
            )
            .map_err(|e| chart_err(e.to_string()))?;
        let labels = names.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_label_style(("sans-serif", 15))
            .y_label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| chart_err(e.to_string()))?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(color.filled())
                    .margin(18)
                    .data(values.iter().enumerate().map(|(i, v)| (i, *v))),
            )
            .map_err(|e| chart_err(e.to_string()))?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                Text::new(
                    if v.fract() == 0.0 {
                        format!("{v:.0}")
                    } else {
                        format!("{v:.2}")
                    },
                    (SegmentValue::CenterOf(i), *v + top * 0.02),
                    ("sans-serif", 15).into_font(),
                )
            }))
            .map_err(|e| chart_err(e.to_string()))?;
    }
    root.present().map_err(|e| chart_err(e.to_string()))?;
    Ok(())
}
