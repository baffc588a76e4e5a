//! `faceemotion analyse`: recordings in, for each the annotated video, the records and the
//! report out. Several files are analysed at once in one process, a pipeline each, sharing the
//! models and the inference pool.

use std::path::{Path, PathBuf};

use gst::prelude::*;

use crate::progress::Progress;

#[derive(clap::Args)]
pub struct Args {
    /// Any file GStreamer's decodebin plays (MP4, MKV, AVI, MOV, WebM ...); several are analysed
    /// at once, sharing the models.
    #[arg(required = true)]
    input: Vec<PathBuf>,
    /// Folder for the outputs; default: out/<input name>. With several files, a folder per file
    /// inside it (out/<input name> by default).
    #[arg(long)]
    out: Option<PathBuf>,
    /// A faceemotion property, as on a gst-launch line (repeatable), e.g. --set threshold=0.7
    #[arg(long = "set", value_name = "PROPERTY=VALUE", value_parser = crate::parse_set)]
    sets: Vec<(String, String)>,
    /// Blur every face in the annotated video (faceemotion blur=gaussian).
    #[arg(long)]
    anonymise: bool,
    /// Skip the annotated video: records and report only (faster).
    #[arg(long)]
    no_video: bool,
    /// The time of day the recording started, e.g. 2026-12-01T09:00:00 (local time) or
    /// 2026-12-01T08:00:00Z; default: the file's creation date, if it has one. Records then
    /// carry each frame's time of day, and the report clock times and a chart by hour.
    #[arg(long, value_parser = parse_start)]
    start: Option<String>,
    /// Zones from a file, one per line: `name:x,y x,y x,y ...` with x and y fractions of the
    /// frame (0..1), e.g. `till:0.6,0.5 1,0.5 1,1 0.6,1`; blank lines and lines starting with #
    /// are passed over. The report then has time and emotions per zone.
    #[arg(long, value_name = "FILE", value_parser = read_zones)]
    zones: Option<String>,
}

/// A zones file as the `zones` property takes it; errors name the file and the line.
fn read_zones(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the zones file {path}: {e}"))?;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        gstfaceemotion::zone::parse(line).map_err(|e| format!("{path} line {}: {e}", n + 1))?;
        lines.push(line);
    }
    let all = lines.join(";");
    gstfaceemotion::zone::parse(&all).map_err(|e| format!("{path}: {e}"))?;
    Ok(all)
}

fn parse_start(s: &str) -> Result<String, String> {
    gstfaceemotion::schema::parse_time_of_day(s)
        .map(|_| s.to_string())
        .ok_or_else(|| format!("{s:?} is not a time of day: give 2026-12-01T09:00:00 (local time) or RFC 3339"))
}

fn check_input(p: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if meta.is_dir() {
        return Err(format!("{} is a directory: give a video file", p.display()));
    }
    std::fs::File::open(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    Ok(())
}

/// One file's analysis: its pipeline and where its outputs go.
struct Job {
    input: PathBuf,
    dir: PathBuf,
    made_dir: bool,
    results: PathBuf,
    video: PathBuf,
    pipeline: gst::Pipeline,
    fe: gst::Element,
    publish: gst::Element,
    /// Video decoders decodebin looked for and did not find (missing-plugin messages).
    missing: Vec<String>,
    /// `None` while it runs; then its outcome.
    outcome: Option<Result<(), String>>,
}

/// Where each input's outputs go: `out` for one file, `out/<name>` for several (names made
/// unique), `out/<name>` by default.
fn out_dirs(inputs: &[PathBuf], out: Option<&Path>) -> Vec<PathBuf> {
    let stem = |p: &Path| p.file_stem().and_then(|s| s.to_str()).unwrap_or("video").to_string();
    if let (Some(out), [_]) = (out, inputs) {
        return vec![out.to_path_buf()];
    }
    let base = out.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("out"));
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    inputs
        .iter()
        .map(|p| {
            let name = stem(p);
            let n = seen.entry(name.clone()).or_default();
            *n += 1;
            base.join(if *n == 1 { name } else { format!("{name}-{n}") })
        })
        .collect()
}

fn build(args: &Args, input: &Path, dir: &Path) -> Result<Job, String> {
    check_input(input)?;
    let made_dir = !dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    let results = dir.join("results.jsonl");
    let video = dir.join("annotated.mp4");
    // Records are appended (as gvametapublish does): start from an empty file.
    for f in [&results, &video] {
        if f.exists() {
            std::fs::remove_file(f).map_err(|e| format!("cannot replace {}: {e}", f.display()))?;
        }
    }
    let pipeline = gst::Pipeline::new();
    let make = |factory: &str, name: &str| {
        gst::ElementFactory::make(factory)
            .name(name)
            .build()
            .map_err(|_| format!("GStreamer element {factory} is missing: run scripts/setup.sh"))
    };
    let src = make("filesrc", "src")?;
    src.set_property("location", input.to_str().ok_or("the input path is not UTF-8")?);
    let decode = make("decodebin", "decode")?;
    let tail = if args.no_video {
        "videoconvert ! faceemotion name=fe draw=false ! faceemotionpublish name=publish ! fakesink sync=false"
            .to_string()
    } else {
        "videoconvert ! faceemotion name=fe ! faceemotionpublish name=publish ! videoconvert \
         ! x264enc speed-preset=veryfast ! h264parse ! mp4mux ! filesink name=out"
            .to_string()
    };
    let analysis = gst::parse::bin_from_description(&tail, true).map_err(|e| format!("pipeline: {e}"))?;
    pipeline
        .add_many([&src, &decode, analysis.upcast_ref()])
        .map_err(|e| e.to_string())?;
    src.link(&decode).map_err(|e| e.to_string())?;
    let fe = analysis.by_name("fe").ok_or("no faceemotion")?;
    if args.anonymise {
        fe.set_property_from_str("blur", "gaussian");
    }
    if let Some(start) = &args.start {
        fe.set_property("wall-clock-start", start);
    }
    if let Some(zones) = &args.zones {
        fe.set_property("zones", zones);
    }
    crate::apply_sets(&fe, &args.sets)?;
    let publish = analysis.by_name("publish").ok_or("no faceemotionpublish")?;
    publish.set_property("file-path", results.to_str().ok_or("the output path is not UTF-8")?);
    publish.set_property("source", input.file_name().and_then(|n| n.to_str()).unwrap_or(""));
    if let Some(out) = analysis.by_name("out") {
        out.set_property("location", video.to_str().ok_or("the output path is not UTF-8")?);
    }
    // The first video stream goes to the analysis; anything else (audio) is played out.
    let sink_pad = analysis.static_pad("sink").ok_or("no sink pad")?;
    // A file without a decodable video stream would never end: the analysis would wait for
    // data forever. Once decodebin has found every stream, say so on the bus.
    {
        let sink_pad = sink_pad.clone();
        decode.connect_no_more_pads(move |d| {
            if !sink_pad.is_linked() {
                let s = gst::Structure::new_empty(NO_VIDEO);
                let _ = d.post_message(gst::message::Element::builder(s).src(d).build());
            }
        });
    }
    let weak = pipeline.downgrade();
    decode.connect_pad_added(move |_, pad| {
        let is_video = pad
            .current_caps()
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or(false);
        if is_video && !sink_pad.is_linked() {
            let _ = pad.link(&sink_pad);
        } else if let Some(p) = weak.upgrade() {
            if let Ok(sink) = gst::ElementFactory::make("fakesink").property("sync", false).build() {
                let _ = p.add(&sink);
                let _ = sink.sync_state_with_parent();
                if let Some(s) = sink.static_pad("sink") {
                    let _ = pad.link(&s);
                }
            }
        }
    });
    Ok(Job {
        input: input.to_path_buf(),
        dir: dir.to_path_buf(),
        made_dir,
        results,
        video,
        pipeline,
        fe,
        publish,
        missing: Vec::new(),
        outcome: None,
    })
}

pub fn run(args: Args) -> Result<(), String> {
    let dirs = out_dirs(&args.input, args.out.as_deref());
    let mut jobs = Vec::new();
    for (input, dir) in args.input.iter().zip(&dirs) {
        match build(&args, input, dir) {
            Ok(j) => jobs.push(j),
            // A file that cannot even be opened fails alone when there are others.
            Err(e) if args.input.len() > 1 => eprintln!("faceemotion: {}: {e}", input.display()),
            Err(e) => return Err(e),
        }
    }
    for j in &jobs {
        eprintln!(
            "[analyse] {} -> {}",
            j.input.display(),
            if args.no_video {
                j.results.display().to_string()
            } else {
                format!("{} + {}", j.video.display(), j.results.display())
            }
        );
    }
    play(&mut jobs);
    let mut failed = args.input.len() - jobs.len();
    let several = args.input.len() > 1;
    for j in &mut jobs {
        j.pipeline.set_state(gst::State::Null).map_err(|e| e.to_string())?;
        let outcome = j.outcome.take().unwrap_or(Ok(()));
        if let Err(e) = outcome {
            // Half-written outputs would pass for results; a folder made for them goes too.
            let _ = std::fs::remove_file(&j.video);
            let _ = std::fs::remove_file(&j.results);
            if j.made_dir {
                let _ = std::fs::remove_dir(&j.dir);
            }
            if !several {
                return Err(e);
            }
            eprintln!("faceemotion: {}: {e}", j.input.display());
            failed += 1;
            continue;
        }
        let stats = j.publish.property::<gst::Structure>("stats");
        if stats.get::<u64>("dropped").unwrap_or(0) > 0 {
            eprintln!("[analyse] warning: {}: {stats}", j.input.display());
        }
        let r = gstfaceemotion::report::Report::read(&j.results).map_err(|e| e.to_string())?;
        let files = r.write(&j.dir).map_err(|e| e.to_string())?;
        if several {
            println!("{}: {}", j.input.display(), r.summary());
        } else {
            println!("{}", r.summary());
        }
        if !args.no_video {
            println!("wrote {}", j.video.display());
        }
        println!("wrote {}", j.results.display());
        for f in files {
            println!("wrote {}", f.display());
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} of {} files could not be analysed", args.input.len())),
    }
}

/// What decodebin says once it has found every stream and none is video it can decode.
const NO_VIDEO: &str = "faceemotion-analyse-no-video";
/// Plays every pipeline to its end with one progress line over them all; each job's outcome.
fn play(jobs: &mut [Job]) {
    for j in jobs.iter_mut() {
        if j.pipeline.set_state(gst::State::Playing).is_err() {
            j.outcome = Some(Err(
                first_error(&j.pipeline).unwrap_or_else(|| "the pipeline could not start".into())
            ));
        }
    }
    let mut progress = Progress::new("analyse");
    let frames = |jobs: &[Job]| -> u64 {
        jobs.iter()
            .map(|j| {
                j.fe.property::<gst::Structure>("stats")
                    .get::<u64>("frames")
                    .unwrap_or(0)
            })
            .sum()
    };
    while jobs.iter().any(|j| j.outcome.is_none()) {
        let mut idle = true;
        for j in jobs.iter_mut().filter(|j| j.outcome.is_none()) {
            let Some(bus) = j.pipeline.bus() else {
                j.outcome = Some(Err("no bus".into()));
                continue;
            };
            while let Some(msg) = bus.pop() {
                idle = false;
                if let Some(outcome) = handle(&msg, &j.input, &mut j.missing) {
                    j.outcome = Some(outcome);
                    break;
                }
            }
        }
        if idle {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let (mut pos, mut dur) = (0, 0);
        for j in jobs.iter() {
            pos += j
                .pipeline
                .query_position::<gst::ClockTime>()
                .map_or(0, |p| p.nseconds());
            dur += j
                .pipeline
                .query_duration::<gst::ClockTime>()
                .map_or(0, |d| d.nseconds());
        }
        progress.update(pos, dur, frames(jobs));
    }
    progress.finish(frames(jobs));
}

/// What a bus message means for a job: its end (`Some`), or nothing yet.
fn handle(msg: &gst::Message, input: &Path, missing: &mut Vec<String>) -> Option<Result<(), String>> {
    match msg.view() {
        gst::MessageView::Element(e) => match e.structure() {
            Some(s) if s.name() == "missing-plugin" => {
                let caps = s.get::<gst::Caps>("detail").ok();
                let video = caps
                    .as_ref()
                    .and_then(|c| c.structure(0))
                    .is_some_and(|c| c.name().starts_with("video/"));
                if video {
                    let name = s.get::<String>("name").ok();
                    missing.push(name.unwrap_or_else(|| format!("decoder for {}", caps.unwrap())));
                }
                None
            }
            Some(s) if s.name() == NO_VIDEO => Some(Err(no_video(input, missing))),
            _ => None,
        },
        gst::MessageView::Eos(_) => Some(Ok(())),
        // decodebin gives up itself when no stream at all can be decoded.
        gst::MessageView::Error(_) if !missing.is_empty() => Some(Err(no_video(input, missing))),
        gst::MessageView::Error(e) => Some(Err(format!(
            "{}{}",
            e.error(),
            e.debug().map(|d| format!(" ({d})")).unwrap_or_default()
        ))),
        gst::MessageView::Warning(w) => {
            eprintln!("[analyse] warning: {}: {}", input.display(), w.error());
            None
        }
        _ => None,
    }
}

/// Why a file has nothing to analyse: no video stream, or none this machine can decode.
fn no_video(input: &Path, missing: &[String]) -> String {
    if missing.is_empty() {
        return format!("no video stream in {}", input.display());
    }
    format!(
        "no video stream in {} that this machine can decode: the {} is not installed (most decoders are \
         in Debian's gstreamer1.0-libav, -plugins-good, -bad and -ugly, which scripts/setup.sh installs)",
        input.display(),
        missing.join(", ")
    )
}

fn first_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    while let Some(m) = bus.pop() {
        if let gst::MessageView::Error(e) = m.view() {
            return Some(e.error().to_string());
        }
    }
    None
}
