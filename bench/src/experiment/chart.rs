//! The chart: throughput vs data-set/DRAM ratio (one line per
//! configuration) over a p99 latency panel, lost keys and OOM kills marked.
//! Drawn twice with plotters: SVG, and PNG with text rendered by ab_glyph
//! from the DejaVu Sans font shipped in `bench/assets` (no fontconfig needed).

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::config::ConfigKind;
use super::report::Row;

/// The font shipped with the crate (DejaVu Sans, see `assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn ensure_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        register_font(FAMILY, FontStyle::Normal, FONT)
            .and_then(|_| register_font(FAMILY, FontStyle::Bold, FONT))
            .map_err(|_| "the shipped font could not be loaded".to_string())
    })
    .clone()
}

/// Colour of a configuration's line.
pub fn color(c: ConfigKind) -> RGBColor {
    match c {
        ConfigKind::AmberPmem => RGBColor(230, 130, 0),
        ConfigKind::AmberDisk => RGBColor(140, 80, 20),
        ConfigKind::RedisOom => RGBColor(200, 30, 30),
        ConfigKind::RedisNoeviction => RGBColor(30, 90, 200),
        ConfigKind::RedisLru => RGBColor(130, 60, 180),
        ConfigKind::RedisSwap => RGBColor(20, 150, 140),
        ConfigKind::RedisDram => RGBColor(120, 120, 120),
        ConfigKind::AmberDram => RGBColor(240, 190, 90),
    }
}

/// What to draw: the rows of one key distribution, and the title lines.
pub struct ChartInput<'a> {
    /// Rows of one distribution (skipped rows are ignored).
    pub rows: &'a [&'a Row],
    /// First title line.
    pub title: String,
    /// Second title line (machine and parameters).
    pub subtitle: String,
}

/// Writes `<stem>.svg` and `<stem>.png`.
pub fn write_chart(input: &ChartInput<'_>, stem: &Path) -> Result<(), String> {
    ensure_font()?;
    let size = (1400u32, 1050u32);
    // Not with_extension: stems like `chart-zipf0.99` contain dots.
    let svg = std::path::PathBuf::from(format!("{}.svg", stem.display()));
    let png = std::path::PathBuf::from(format!("{}.png", stem.display()));
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        draw(&root, input)?;
        root.present().map_err(|e| format!("svg: {e:?}"))?;
    }
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw(&root, input)?;
        root.present().map_err(|e| format!("png: {e:?}"))?;
    }
    Ok(())
}

/// Grid values 1, 2, 5, 10, 20, 50... inside `lo..hi`.
fn one_two_five(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 10f64.powf(lo.max(1e-6).log10().floor());
    // Bounded: at most 40 decades.
    for _ in 0..40 {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
        decade *= 10.0;
        if decade > hi {
            break;
        }
    }
    out
}

fn short(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 10_000 {
        format!("{:.0}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

type Series = (ConfigKind, Vec<(f64, f64, &'static str, u64, u64, u64)>);

fn series(rows: &[&Row]) -> Vec<Series> {
    ConfigKind::ALL
        .into_iter()
        .filter_map(|c| {
            let mut pts: Vec<_> = rows
                .iter()
                .filter(|r| r.config == c.name() && r.ran())
                .map(|r| {
                    let flag = if r.status == "oom-killed" {
                        "OOM-killed"
                    } else if r.status != "ok" {
                        "failed"
                    } else {
                        ""
                    };
                    (
                        r.ratio.max(1e-6).log2(),
                        r.ops_per_sec,
                        flag,
                        r.lost_keys,
                        r.errors + r.load_errors,
                        (r.p99_ms * 1000.0) as u64,
                    )
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (!pts.is_empty()).then_some((c, pts))
        })
        .collect()
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    input: &ChartInput<'_>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| format!("chart: {x:?}");
    root.fill(&WHITE).map_err(e)?;
    let (head, body) = root.split_vertically(95);
    head.draw(&Text::new(
        input.title.clone(),
        (25, 12),
        (FAMILY, 30).into_font().style(FontStyle::Bold),
    ))
    .map_err(e)?;
    head.draw(&Text::new(
        input.subtitle.clone(),
        (25, 52),
        (FAMILY, 17).into_font(),
    ))
    .map_err(e)?;
    let (top, bottom) = body.split_vertically(560);
    let all = series(input.rows);
    let xs: Vec<f64> = all
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .collect();
    let xmin = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let xmax = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (xmin, xmax) = if xmin.is_finite() {
        (xmin - 0.3, xmax + 0.45)
    } else {
        (-2.3, 3.4)
    };
    let ymax = all
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(1.0f64, f64::max)
        * 1.45; // headroom so the legend sits above the lines
    let xfmt = |x: &f64| {
        let r = 2f64.powf(*x);
        if (r - r.round()).abs() < 0.01 {
            format!("{}x", r.round())
        } else {
            format!("{}x", (r * 100.0).round() / 100.0)
        }
    };

    // Throughput panel.
    {
        let mut chart = ChartBuilder::on(&top)
            .margin_left(20)
            .margin_right(30)
            .margin_top(10)
            .x_label_area_size(50)
            .y_label_area_size(100)
            .caption("Throughput (successful operations only)", (FAMILY, 22))
            .build_cartesian_2d(xmin..xmax, 0f64..ymax)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&xfmt)
            .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
            .x_desc("data-set size / DRAM budget (log scale)")
            .y_desc("throughput (ops/s)")
            .label_style((FAMILY, 17))
            .axis_desc_style((FAMILY, 19))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(e)?;
        for (idx, (cfg, pts)) in all.iter().enumerate() {
            let col = color(*cfg);
            // Stagger labels by line so labels of nearby points do not overlap.
            let dy = -22 - 15 * (idx as i32 % 3);
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|p| (p.0, p.1)),
                    col.stroke_width(3),
                ))
                .map_err(e)?
                .label(cfg.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 28, y)], col.stroke_width(4))
                });
            chart
                .draw_series(pts.iter().map(|p| Circle::new((p.0, p.1), 5, col.filled())))
                .map_err(e)?;
            // Lost keys: a red cross and the count; OOM kills and errors: a label.
            for p in pts {
                let mut labels = Vec::new();
                if !p.2.is_empty() {
                    labels.push(p.2.to_string());
                }
                if p.3 > 0 {
                    labels.push(format!("lost {}", short(p.3)));
                }
                if p.4 > 0 && p.2.is_empty() {
                    labels.push(format!("{} err", short(p.4)));
                }
                if p.3 > 0 {
                    chart
                        .draw_series(std::iter::once(Cross::new(
                            (p.0, p.1),
                            9,
                            RED.stroke_width(3),
                        )))
                        .map_err(e)?;
                }
                if !labels.is_empty() {
                    chart
                        .draw_series(std::iter::once(
                            EmptyElement::at((p.0, p.1))
                                + Text::new(
                                    labels.join(", "),
                                    (8, dy),
                                    (FAMILY, 14).into_font().color(&col),
                                ),
                        ))
                        .map_err(e)?;
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FAMILY, 17))
            .draw()
            .map_err(e)?;
    }

    // p99 latency panel (log scale).
    {
        let lat: Vec<f64> = all
            .iter()
            .flat_map(|(_, p)| p.iter().filter(|q| q.5 > 0).map(|q| q.5 as f64 / 1000.0))
            .collect();
        let lo = lat.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = lat.iter().copied().fold(0.0f64, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > 0.0 {
            (lo / 2.0, hi * 2.0)
        } else {
            (0.1, 10.0)
        };
        let mut chart = ChartBuilder::on(&bottom)
            .margin_left(20)
            .margin_right(30)
            .margin_top(10)
            .margin_bottom(10)
            .x_label_area_size(50)
            .y_label_area_size(100)
            .caption("p99 latency", (FAMILY, 22))
            .build_cartesian_2d(
                xmin..xmax,
                (lo..hi).log_scale().with_key_points(one_two_five(lo, hi)),
            )
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(12)
            .x_label_formatter(&xfmt)
            .y_label_formatter(&|y| {
                if *y >= 1.0 {
                    format!("{y:.0}")
                } else {
                    format!("{y}")
                }
            })
            .x_desc("data-set size / DRAM budget (log scale)")
            .y_desc("p99 latency (ms, log scale)")
            .label_style((FAMILY, 17))
            .axis_desc_style((FAMILY, 19))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(e)?;
        for (cfg, pts) in &all {
            let col = color(*cfg);
            let p99: Vec<(f64, f64)> = pts
                .iter()
                .filter(|q| q.5 > 0)
                .map(|q| (q.0, q.5 as f64 / 1000.0))
                .collect();
            chart
                .draw_series(LineSeries::new(p99.iter().copied(), col.stroke_width(3)))
                .map_err(e)?;
            chart
                .draw_series(p99.iter().map(|p| Circle::new(*p, 5, col.filled())))
                .map_err(e)?;
        }
    }
    Ok(())
}
