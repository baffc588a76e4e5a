//! `faceemotion analyse`: a recording in, the annotated video, the records and the report out.

use std::path::{Path, PathBuf};

use gst::prelude::*;

use crate::progress::Progress;

#[derive(clap::Args)]
pub struct Args {
    /// Any file GStreamer's decodebin plays (MP4, MKV, AVI, MOV, WebM ...).
    input: PathBuf,
    /// Folder for the outputs; default: out/<input name>.
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

pub fn run(args: Args) -> Result<(), String> {
    check_input(&args.input)?;
    let stem = args
        .input
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("video")
        .to_string();
    let dir = args.out.clone().unwrap_or_else(|| PathBuf::from("out").join(&stem));
    let made_dir = !dir.exists();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
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
    src.set_property("location", args.input.to_str().ok_or("the input path is not UTF-8")?);
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
    crate::apply_sets(&fe, &args.sets)?;
    let publish = analysis.by_name("publish").ok_or("no faceemotionpublish")?;
    publish.set_property("file-path", results.to_str().ok_or("the output path is not UTF-8")?);
    publish.set_property("source", args.input.file_name().and_then(|n| n.to_str()).unwrap_or(""));
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

    eprintln!(
        "[analyse] {} -> {}",
        args.input.display(),
        if args.no_video {
            results.display().to_string()
        } else {
            format!("{} + {}", video.display(), results.display())
        }
    );
    let outcome = play(&pipeline, &fe, &args.input);
    pipeline.set_state(gst::State::Null).map_err(|e| e.to_string())?;
    if let Err(e) = outcome {
        // Half-written outputs would pass for results; a folder made for them goes too.
        let _ = std::fs::remove_file(&video);
        let _ = std::fs::remove_file(&results);
        if made_dir {
            let _ = std::fs::remove_dir(&dir);
        }
        return Err(e);
    }
    let stats = publish.property::<gst::Structure>("stats");
    if stats.get::<u64>("dropped").unwrap_or(0) > 0 {
        eprintln!("[analyse] warning: {stats}");
    }
    let r = gstfaceemotion::report::Report::read(&results).map_err(|e| e.to_string())?;
    let files = r.write(&dir).map_err(|e| e.to_string())?;
    println!("{}", r.summary());
    if !args.no_video {
        println!("wrote {}", video.display());
    }
    println!("wrote {}", results.display());
    for f in files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

/// What decodebin says once it has found every stream and none is video it can decode.
const NO_VIDEO: &str = "faceemotion-analyse-no-video";

/// Plays the pipeline to its end with progress; an error message on failure.
fn play(pipeline: &gst::Pipeline, fe: &gst::Element, input: &Path) -> Result<(), String> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| first_error(pipeline).unwrap_or_else(|| "the pipeline could not start".into()))?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut progress = Progress::new("analyse");
    let frames = || fe.property::<gst::Structure>("stats").get::<u64>("frames").unwrap_or(0);
    // Video decoders decodebin looked for and did not find (missing-plugin messages).
    let mut missing: Vec<String> = Vec::new();
    loop {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) {
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
                    }
                    Some(s) if s.name() == NO_VIDEO => return Err(no_video(input, &missing)),
                    _ => {}
                },
                gst::MessageView::Eos(_) => break,
                // decodebin gives up itself when no stream at all can be decoded.
                gst::MessageView::Error(_) if !missing.is_empty() => return Err(no_video(input, &missing)),
                gst::MessageView::Error(e) => {
                    return Err(format!(
                        "{}{}",
                        e.error(),
                        e.debug().map(|d| format!(" ({d})")).unwrap_or_default()
                    ))
                }
                gst::MessageView::Warning(w) => eprintln!("[analyse] warning: {}", w.error()),
                _ => {}
            }
        }
        let pos = pipeline.query_position::<gst::ClockTime>().map_or(0, |p| p.nseconds());
        let dur = pipeline.query_duration::<gst::ClockTime>().map_or(0, |d| d.nseconds());
        progress.update(pos, dur, frames());
    }
    progress.finish(frames());
    Ok(())
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
