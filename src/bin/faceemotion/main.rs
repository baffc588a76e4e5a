//! `faceemotion`: the plugin's command-line program.
//!
//!     faceemotion analyse shop.mp4 --out out/shop     annotated MP4, JSON lines, CSV, HTML report
//!     faceemotion report out/shop/results.jsonl       the report again, from the records
//!     faceemotion record rtsp://camera/stream --out rec --anonymise
//!
//! It registers the plugin's elements in-process, so it needs no GST_PLUGIN_PATH.

mod analyse;
mod progress;
mod record;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "faceemotion",
    version,
    about = "Faces, emotions, gender and age in video: analyse recordings, report on them, record cameras"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse a recording: writes DIR/annotated.mp4, DIR/results.jsonl (one JSON record per
    /// frame and per person appearing or leaving), DIR/people.csv (a row per visit),
    /// DIR/visitors.csv (a row per visitor, their visits added up), DIR/report.html and
    /// DIR/emotions.png.
    Analyse(analyse::Args),
    /// Make the report (people.csv, visitors.csv, report.html, emotions.png) from a results file.
    Report {
        /// The JSON records (faceemotionpublish's json-lines or json output).
        results: PathBuf,
        /// Where to write the report; default: beside the results.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Record a camera (RTSP) or an H.264 file: the original stream kept without re-encoding
    /// and the analysed copy beside it, both in segments; reconnects when the camera drops.
    Record(record::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let started = gst::init()
        .map_err(|e| e.to_string())
        .and_then(|_| gstfaceemotion::plugin_register_static().map_err(|e| e.to_string()));
    if let Err(e) = started {
        eprintln!("faceemotion: GStreamer could not start: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Analyse(args) => analyse::run(args),
        Command::Report { results, out } => report(&results, out),
        Command::Record(args) => record::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faceemotion: {e}");
            ExitCode::from(1)
        }
    }
}

fn report(results: &std::path::Path, out: Option<PathBuf>) -> Result<(), String> {
    let dir = out.unwrap_or_else(|| results.parent().map(PathBuf::from).unwrap_or_default());
    let started = std::time::Instant::now();
    let r = gstfaceemotion::report::Report::read(results).map_err(|e| e.to_string())?;
    let files = r.write(&dir).map_err(|e| e.to_string())?;
    println!("{}", r.summary());
    for f in files {
        println!("wrote {}", f.display());
    }
    eprintln!("report made in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `name=value` pairs for element properties, as on a gst-launch line.
pub fn parse_set(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("--set {s}: expected property=value, e.g. --set threshold=0.7"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// Sets `name=value` properties on an element, each checked: an unknown property or a bad value
/// is an error that names it.
pub fn apply_sets(element: &gst::Element, sets: &[(String, String)]) -> Result<(), String> {
    use gst::prelude::*;
    for (k, v) in sets {
        let pspec = element
            .find_property(k)
            .ok_or_else(|| format!("faceemotion has no property {k:?} (gst-inspect-1.0 faceemotion lists them)"))?;
        let value = glib::Value::deserialize_with_pspec(v, &pspec)
            .map_err(|_| format!("{k}={v}: not a valid {} value", pspec.value_type().name()))?;
        if let Some((lo, hi)) = range(&pspec) {
            let x = value
                .get::<u32>()
                .map(f64::from)
                .or_else(|_| value.get::<i32>().map(f64::from))
                .or_else(|_| value.get::<i64>().map(|x| x as f64))
                .or_else(|_| value.get::<f64>());
            if x.is_ok_and(|x| x < lo || x > hi) {
                return Err(format!("{k}={v}: out of range ({lo} to {hi})"));
            }
        }
        element.set_property_from_value(k, &value);
    }
    Ok(())
}

/// The range of a numeric property.
fn range(p: &glib::ParamSpec) -> Option<(f64, f64)> {
    if let Some(p) = p.downcast_ref::<glib::ParamSpecUInt>() {
        return Some((p.minimum() as f64, p.maximum() as f64));
    }
    if let Some(p) = p.downcast_ref::<glib::ParamSpecInt>() {
        return Some((p.minimum() as f64, p.maximum() as f64));
    }
    if let Some(p) = p.downcast_ref::<glib::ParamSpecInt64>() {
        return Some((p.minimum() as f64, p.maximum() as f64));
    }
    p.downcast_ref::<glib::ParamSpecDouble>()
        .map(|p| (p.minimum(), p.maximum()))
}

use gst::glib;
