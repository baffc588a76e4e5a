//! The report's charts, drawn with plotters: SVG for the page, PNG for the main chart.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Report, ReportError};
use crate::face::EMOTIONS;
use crate::face::EMOTION_COLOURS;

const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const FONT_ENV: &str = "FACEEMOTION_FONT";

/// Registers the font the charts' text is measured and drawn with (once per process).
pub fn fonts() -> Result<(), ReportError> {
    static DONE: OnceLock<Result<(), std::path::PathBuf>> = OnceLock::new();
    DONE.get_or_init(|| {
        let path = std::env::var_os(FONT_ENV)
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| DEFAULT_FONT.into());
        let bytes = std::fs::read(&path).map_err(|_| path.clone())?;
        // plotters keeps fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| path.clone())?;
        plotters::style::register_font("sans-serif", FontStyle::Bold, bytes).map_err(|_| path)
    })
    .clone()
    .map_err(|path| ReportError::Font { path })
}

/// Colours of the charts that are not about emotion, none of them an emotion's colour, so that
/// a colour keeps one meaning on the page.
const COUNT: RGBColor = RGBColor(70, 84, 104);
const FEMALE: RGBColor = RGBColor(128, 64, 112);
const MALE: RGBColor = RGBColor(38, 70, 92);
const UNKNOWN: RGBColor = RGBColor(140, 140, 140);
/// Zones' lines: greys and slates, none an emotion's colour.
const ZONES: [RGBColor; 6] = [
    RGBColor(70, 84, 104),
    RGBColor(150, 150, 150),
    RGBColor(20, 20, 20),
    RGBColor(110, 90, 70),
    RGBColor(90, 120, 120),
    RGBColor(170, 130, 160),
];

fn colour(i: usize) -> RGBColor {
    let [r, g, b] = EMOTION_COLOURS[i];
    RGBColor(r, g, b)
}

fn chart_err<E: std::fmt::Debug>(e: E) -> ReportError {
    ReportError::Chart(format!("{e:?}"))
}

/// Seconds, or minutes for long recordings, for the time axis; with the time of day known,
/// the axis shows it.
fn time_unit(r: &Report) -> (f64, &'static str) {
    match (r.wall, (r.end - r.start) as f64 > 180e9) {
        (Some(_), _) => (1e9, "time of day"),
        (None, true) => (60e9, "minutes"),
        (None, false) => (1e9, "seconds"),
    }
}

/// The label of a point of the time axis (in `unit`s from the start).
fn time_label(r: &Report, x: f64, unit: f64) -> String {
    let ts = r.start + (x * unit) as u64;
    match r.local_time(ts) {
        Some(t) if r.end - r.start > 3_600_000_000_000 => t.format("%H:%M").to_string(),
        Some(t) => t.format("%H:%M:%S").to_string(),
        None => format!("{x:.0}"),
    }
}

/// People present in each hour of the day, when the records tell the time of day.
fn hours<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, hours: &[u32; 24]) -> Result<(), ReportError> {
    root.fill(&WHITE).map_err(chart_err)?;
    let top = hours.iter().copied().max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(root)
        .caption("People by hour of the day", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((0u32..24u32).into_segmented(), 0u32..top + 1)
        .map_err(chart_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(24)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(h) => format!("{h:02}"),
            _ => String::new(),
        })
        .x_desc("hour (local time)")
        .y_desc("people present")
        .draw()
        .map_err(chart_err)?;
    chart
        .draw_series(hours.iter().enumerate().map(|(h, &n)| {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(h as u32), 0),
                    (SegmentValue::Exact(h as u32 + 1), n),
                ],
                COUNT.filled(),
            );
            bar.set_margin(0, 0, 3, 3);
            bar
        }))
        .map_err(chart_err)?;
    Ok(())
}

/// Share of the faces in each emotion over the recording, stacked.
fn emotions<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), ReportError> {
    root.fill(&WHITE).map_err(chart_err)?;
    let (unit, name) = time_unit(r);
    let t = |ns: u64| (ns - r.start) as f64 / unit;
    let x_end = t(r.end.max(r.start + r.bin_ns)).max(1e-3);
    let (area, legend) = root.split_horizontally(root.dim_in_pixel().0.saturating_sub(150));
    let mut chart = ChartBuilder::on(&area)
        .caption("How people felt over the recording", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..x_end, 0f64..100f64)
        .map_err(chart_err)?;
    chart
        .configure_mesh()
        .x_desc(format!("time ({name})"))
        .x_label_formatter(&|x| time_label(r, *x, unit))
        .y_desc("share of faces (%)")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(chart_err)?;
    // Cumulative shares per stretch, emotion by emotion.
    let mut lower = vec![0.0f64; r.timeline.len()];
    for e in 0..7 {
        let mut upper = lower.clone();
        for (i, b) in r.timeline.iter().enumerate() {
            let n: u64 = b.counts.iter().sum();
            if n > 0 {
                upper[i] += 100.0 * b.counts[e] as f64 / n as f64;
            }
        }
        for (i, b) in r.timeline.iter().enumerate() {
            if upper[i] > lower[i] {
                let (x0, x1) = (t(b.start), t(b.start + r.bin_ns).min(x_end));
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, lower[i]), (x1, upper[i])],
                        colour(e).filled(),
                    )))
                    .map_err(chart_err)?;
            }
        }
        lower = upper;
    }
    for (k, e) in EMOTIONS.iter().enumerate() {
        let y = 50 + k as i32 * 26;
        legend
            .draw(&Rectangle::new([(10, y), (28, y + 16)], colour(k).filled()))
            .map_err(chart_err)?;
        legend
            .draw(&Text::new(*e, (34, y), ("sans-serif", 16)))
            .map_err(chart_err)?;
    }
    Ok(())
}

/// Who was there when: a bar per visit, coloured by its dominant emotion, named by its visitor
/// when they were recognised (a visitor who came back has a bar per visit).
fn presence<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), ReportError> {
    root.fill(&WHITE).map_err(chart_err)?;
    let (unit, name) = time_unit(r);
    let t = |ns: u64| (ns.saturating_sub(r.start)) as f64 / unit;
    let n = r.people.len().max(1) as f64;
    let x_end = t(r.end.max(r.start + r.bin_ns)).max(1e-3);
    let mut chart = ChartBuilder::on(root)
        .caption("Who was there", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_end, 0f64..n)
        .map_err(chart_err)?;
    let names: Vec<String> = r
        .people
        .iter()
        .map(|p| match p.visitor {
            Some(v) => format!("visitor {v}"),
            None => format!("#{}", p.id),
        })
        .collect();
    chart
        .configure_mesh()
        .x_desc(format!("time ({name})"))
        .x_label_formatter(&|x| time_label(r, *x, unit))
        .y_desc(if r.recognised() { "visit" } else { "person" })
        .y_labels(r.people.len().min(25))
        .y_label_formatter(&|y| names.get(*y as usize).cloned().unwrap_or_default())
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(chart_err)?;
    for (i, p) in r.people.iter().enumerate() {
        let c = p.dominant().map(colour).unwrap_or(RGBColor(150, 150, 150));
        let (x0, x1) = (t(p.first), t(p.first + p.duration).max(t(p.first) + x_end / 400.0));
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, i as f64 + 0.15), (x1, i as f64 + 0.85)],
                c.filled(),
            )))
            .map_err(chart_err)?;
    }
    Ok(())
}

/// How long people stayed: each visitor's visits added up.
fn stays<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), ReportError> {
    root.fill(&WHITE).map_err(chart_err)?;
    let secs: Vec<f64> = r.visitors().iter().map(|v| v.duration as f64 / 1e9).collect();
    let max = secs.iter().copied().fold(1.0f64, f64::max);
    let bins = 12usize;
    let width = max / bins as f64;
    let mut counts = vec![0u32; bins];
    for s in &secs {
        counts[((s / width) as usize).min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(root)
        .caption("How long people stayed", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..max, 0u32..top + 1)
        .map_err(chart_err)?;
    chart
        .configure_mesh()
        .x_desc(if r.recognised() {
            "time present, all visits (seconds)"
        } else {
            "time present (seconds)"
        })
        .y_desc("people")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(chart_err)?;
    chart
        .draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let x0 = i as f64 * width;
            Rectangle::new([(x0, 0), (x0 + width * 0.9, c)], COUNT.filled())
        }))
        .map_err(chart_err)?;
    Ok(())
}

/// Gender split and ages: a bar per gender, and an age histogram split by gender; a visitor
/// counts once, however many times they came.
fn gender_age<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), ReportError> {
    root.fill(&WHITE).map_err(chart_err)?;
    let visitors = r.visitors();
    let (left, right) = root.split_horizontally(root.dim_in_pixel().0 / 3);
    let genders = ["female", "male", "unknown"];
    let colours = [FEMALE, MALE, UNKNOWN];
    let which = |g: &Option<String>| match g.as_deref() {
        Some("female") => 0,
        Some("male") => 1,
        _ => 2,
    };
    let mut counts = [0u32; 3];
    for p in &visitors {
        counts[which(&p.gender)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(&left)
        .caption("Gender", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d((0u32..2u32).into_segmented(), 0u32..top + 1)
        .map_err(chart_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => genders.get(*i as usize).copied().unwrap_or("").to_string(),
            _ => String::new(),
        })
        .y_desc("people")
        .draw()
        .map_err(chart_err)?;
    chart
        .draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i as u32), 0),
                    (SegmentValue::Exact(i as u32 + 1), c),
                ],
                colours[i].filled(),
            );
            bar.set_margin(0, 0, 8, 8);
            bar
        }))
        .map_err(chart_err)?;

    let decade = |a: f64| ((a / 10.0) as usize).min(8);
    let mut ages = [[0u32; 9]; 3];
    for p in &visitors {
        if let Some(a) = p.age {
            ages[which(&p.gender)][decade(a)] += 1;
        }
    }
    let top = (0..9)
        .map(|d| ages.iter().map(|g| g[d]).sum::<u32>())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(&right)
        .caption("Age", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d((0u32..8u32).into_segmented(), 0u32..top + 1)
        .map_err(chart_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(d) if *d < 8 => format!("{}-{}", d * 10, d * 10 + 9),
            SegmentValue::CenterOf(_) => "80+".into(),
            _ => String::new(),
        })
        .y_desc("people")
        .draw()
        .map_err(chart_err)?;
    for d in 0..9u32 {
        let mut base = 0;
        for (g, c) in colours.iter().enumerate() {
            let n = ages[g][d as usize];
            if n == 0 {
                continue;
            }
            let mut bar = Rectangle::new(
                [(SegmentValue::Exact(d), base), (SegmentValue::Exact(d + 1), base + n)],
                c.filled(),
            );
            bar.set_margin(0, 0, 4, 4);
            chart.draw_series(std::iter::once(bar)).map_err(chart_err)?;
            base += n;
        }
    }
    Ok(())
}

fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), ReportError>,
) -> Result<String, ReportError> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        draw(&root)?;
        root.present().map_err(chart_err)?;
    }
    Ok(s)
}

/// How many people were in each zone over the recording: the most on one frame per stretch.
fn zones<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), ReportError> {
    root.fill(&WHITE).map_err(chart_err)?;
    let (unit, name) = time_unit(r);
    let t = |ns: u64| (ns.saturating_sub(r.start)) as f64 / unit;
    let x_end = t(r.end.max(r.start + r.bin_ns)).max(1e-3);
    let top = r
        .zones
        .iter()
        .flat_map(|z| z.timeline.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(root)
        .caption("People in each zone", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..x_end, 0u32..top + 1)
        .map_err(chart_err)?;
    chart
        .configure_mesh()
        .x_desc(format!("time ({name})"))
        .x_label_formatter(&|x| time_label(r, *x, unit))
        .y_desc("people in the zone")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(chart_err)?;
    for (k, z) in r.zones.iter().enumerate() {
        let c = ZONES[k % ZONES.len()];
        let points = z.timeline.iter().enumerate().flat_map(|(i, &n)| {
            let x0 = t(r.start + i as u64 * r.bin_ns);
            [(x0, n), ((x0 + r.bin_ns as f64 / unit).min(x_end), n)]
        });
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(3)))
            .map_err(chart_err)?
            .label(z.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(chart_err)?;
    Ok(())
}

/// The page's charts, as SVG texts: emotions over time, who was there, stays, gender and age,
/// people by hour of the day (empty when the time of day is not known), and people in each
/// zone (empty without zones).
pub fn all_svg(r: &Report) -> Result<[String; 6], ReportError> {
    let people_height = (120 + 18 * r.people.len().min(60)) as u32;
    Ok([
        svg((960, 380), |a| emotions(a, r))?,
        svg((960, people_height.max(260)), |a| presence(a, r))?,
        svg((960, 320), |a| stays(a, r))?,
        svg((960, 320), |a| gender_age(a, r))?,
        match r.by_hour() {
            Some(h) => svg((960, 300), |a| hours(a, &h))?,
            None => String::new(),
        },
        if r.zones.is_empty() {
            String::new()
        } else {
            svg((960, 320), |a| zones(a, r))?
        },
    ])
}

/// The main chart (emotions over the recording) as a PNG.
pub fn emotion_timeline_png(r: &Report, path: &Path) -> Result<(), ReportError> {
    let root = BitMapBackend::new(path, (1200, 480)).into_drawing_area();
    emotions(&root, r)?;
    root.present().map_err(|e| ReportError::Write {
        path: path.to_path_buf(),
        reason: format!("{e:?}"),
    })
}
