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
    crate::apply_sets(&fe, &args.sets)?;
    let publish = analysis.by_name("publish").ok_or("no faceemotionpublish")?;
    publish.set_property("file-path", results.to_str().ok_or("the output path is not UTF-8")?);
    publish.set_property("source", args.input.file_name().and_then(|n| n.to_str()).unwrap_or(""));
    if let Some(out) = analysis.by_name("out") {
        out.set_property("location", video.to_str().ok_or("the output path is not UTF-8")?);
    }
    // The first video stream goes to the analysis; anything else (audio) is played out.
    let sink_pad = analysis.static_pad("sink").ok_or("no sink pad")?;
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
    let outcome = play(&pipeline, &fe);
    pipeline.set_state(gst::State::Null).map_err(|e| e.to_string())?;
    if let Err(e) = outcome {
        // Half-written outputs would pass for results.
        let _ = std::fs::remove_file(&video);
        let _ = std::fs::remove_file(&results);
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

/// Plays the pipeline to its end with progress; an error message on failure.
fn play(pipeline: &gst::Pipeline, fe: &gst::Element) -> Result<(), String> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| first_error(pipeline).unwrap_or_else(|| "the pipeline could not start".into()))?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut progress = Progress::new("analyse");
    let frames = || fe.property::<gst::Structure>("stats").get::<u64>("frames").unwrap_or(0);
    loop {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) {
            match msg.view() {
                gst::MessageView::Eos(_) => break,
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

fn first_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    while let Some(m) = bus.pop() {
        if let gst::MessageView::Error(e) = m.view() {
            return Some(e.error().to_string());
        }
    }
    None
}
