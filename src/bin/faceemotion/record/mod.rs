//! `faceemotion record`: a camera's H.264 or H.265 stream kept as it comes (no re-encoding),
//! with its audio, and the analysed copy beside it, both cut into time-limited MP4 segments;
//! when the camera drops (an error, or no data for a while) the source is torn down and
//! connected again with back-off, and the segment numbering goes on.
//!
//! Each connection is a pipeline of its own (`pipeline.rs` makes it). A drop ends it cleanly:
//! an EOS goes into every branch so that every segment file is finished (its index written) and
//! plays to its end; then the next connection starts its segments after the last one written
//! (`segments.rs`). `watchdog.rs` tells a camera that went quiet.

mod pipeline;
mod segments;
mod watchdog;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use pipeline::{Stream, TailSettings, Video};
use watchdog::Watchdog;

#[derive(clap::Args)]
pub struct Args {
    /// The camera: an rtsp:// URL; or an H.264 or H.265 file (MP4, MKV ...) to record as if it
    /// were one.
    source: String,
    /// Folder for the segments (original_NNNNN.mp4, annotated_NNNNN.mp4) and record.log.
    #[arg(long, default_value = "recording")]
    out: PathBuf,
    /// Length of each segment, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    segment: u64,
    /// Blur every face in the analysed copy (faceemotion blur=gaussian): the copy that may leave
    /// the premises.
    #[arg(long)]
    anonymise: bool,
    /// No data from the camera for this many seconds counts as a drop.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    stall_timeout: u64,
    /// The longest wait between two reconnection attempts, in seconds (waits start at 1 s and
    /// double).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    max_backoff: u64,
    /// Stop after this many seconds (default: at Ctrl-C, or at the end of a file).
    #[arg(long)]
    duration: Option<u64>,
    /// A faceemotion property for the analysed copy (repeatable), e.g. --set blur-strength=0.4
    #[arg(long = "set", value_name = "PROPERTY=VALUE", value_parser = crate::parse_set)]
    sets: Vec<(String, String)>,
}

/// The record's own log: what happened when, on stderr and in record.log.
struct Log {
    file: Option<std::fs::File>,
    started: Instant,
}

impl Log {
    fn say(&mut self, msg: &str) {
        let line = format!("[record {:8.1} s] {msg}", self.started.elapsed().as_secs_f64());
        eprintln!("{line}");
        if let Some(f) = self.file.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    /// The file ended (not a camera): the recording is complete.
    Finished,
    /// Ctrl-C or the duration is up.
    Stopped,
    /// The camera dropped: reconnect.
    Dropped(String),
    /// Something that reconnecting will not cure.
    Fatal(String),
}

pub fn run(args: Args) -> Result<(), String> {
    let live = args.source.starts_with("rtsp://") || args.source.starts_with("rtsps://");
    if !live {
        let p = Path::new(&args.source);
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            return Err(format!(
                "{} is a directory: give an rtsp:// URL or an H.264 or H.265 video file",
                p.display()
            ));
        }
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot make {}: {e}", args.out.display()))?;
    let mut log = Log {
        file: std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(args.out.join("record.log"))
            .ok(),
        started: Instant::now(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C, while the segments are being closed, ends the program at once.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }
    let deadline = args.duration.map(|d| Instant::now() + Duration::from_secs(d));
    // Segments continue after the highest index already in the folder.
    let mut next_index = segments::first_free_index(&args.out);
    let mut backoff = Duration::from_secs(1);
    let mut drops = 0u32;
    log.say(&format!(
        "{} -> {} (original_*.mp4 as it comes, annotated_*.mp4 analysed{}), {} s segments, from index {next_index}",
        args.source,
        args.out.display(),
        if args.anonymise { " and anonymised" } else { "" },
        args.segment
    ));
    loop {
        let (end, written, got_data) = connection(&args, live, next_index, &stop, deadline, &mut log)?;
        next_index = next_index.max(written);
        match end {
            End::Finished => {
                log.say("the file ended: recording complete");
                return Ok(());
            }
            End::Stopped => {
                log.say("stopped");
                return Ok(());
            }
            End::Fatal(e) => return Err(e),
            End::Dropped(why) => {
                drops += 1;
                if got_data {
                    backoff = Duration::from_secs(1);
                }
                log.say(&format!(
                    "camera dropped ({why}); reconnecting in {} s (drop {drops}), segments go on from {next_index}",
                    backoff.as_secs()
                ));
                let until = Instant::now() + backoff;
                while Instant::now() < until {
                    if stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
                        log.say("stopped while waiting to reconnect");
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                backoff = (backoff * 2).min(Duration::from_secs(args.max_backoff));
            }
        }
    }
}

fn element(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("GStreamer element {factory} is missing: run scripts/setup.sh"))
}

/// The source of a connection: the element whose pads are the camera's (or file's) streams.
fn source(args: &Args, live: bool, pipeline: &gst::Pipeline) -> Result<gst::Element, String> {
    if live {
        let src = element("rtspsrc")?;
        src.set_property("location", &args.source);
        src.set_property("latency", 200u32);
        src.set_property_from_str("protocols", "tcp");
        // A stalled TCP connection is noticed by the watchdog, not after rtspsrc's 20 s.
        src.set_property("tcp-timeout", 5_000_000u64);
        src.set_property("teardown-timeout", 100_000_000u64);
        // The camera's own clock (RTCP sender reports) gives each frame its time of day.
        src.set_property("add-reference-timestamp-meta", true);
        pipeline.add(&src).map_err(|e| e.to_string())?;
        Ok(src)
    } else {
        let src = element("filesrc")?;
        src.set_property("location", &args.source);
        let parse = element("parsebin")?;
        pipeline.add_many([&src, &parse]).map_err(|e| e.to_string())?;
        src.link(&parse).map_err(|e| e.to_string())?;
        Ok(parse)
    }
}

/// The streams a source has shown, their pads held (blocked) until the tail is built.
#[derive(Default)]
struct Found {
    video: Option<(Video, gst::Pad, gst::PadProbeId)>,
    audio: Option<(pipeline::Audio, gst::Pad, gst::PadProbeId)>,
    /// Streams that cannot be kept, and whether one of them is video.
    others: Vec<String>,
    other_video: Option<String>,
    /// Pads the source has shown, kept or not.
    pads: usize,
}

impl Found {
    /// Whether every stream of a collection of `expected` has shown its pad.
    fn all_of(&self, expected: Option<usize>) -> bool {
        expected.is_some_and(|n| n > 0 && self.pads >= n)
    }
}

/// The element message that says the source has shown every stream: a camera's `rtspsrc` says
/// so (`no-more-pads`); a file's `parsebin` does not, but lists its streams in a stream
/// collection first, and they are all there once as many pads have come.
const STREAMS_FOUND: &str = "faceemotion-record-streams";

fn watch_streams(src: &gst::Element, live: bool, found: &Arc<Mutex<Found>>) {
    let f = found.clone();
    src.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let Some(s) = caps.structure(0) else { return };
        let stream = if live {
            pipeline::rtp_stream(s)
        } else {
            pipeline::parsed_stream(s)
        };
        let mut found = f.lock().unwrap_or_else(|e| e.into_inner());
        found.pads += 1;
        let block = |pad: &gst::Pad| pad.add_probe(gst::PadProbeType::BLOCK_DOWNSTREAM, |_, _| gst::PadProbeReturn::Ok);
        match stream {
            Stream::Video(v) if found.video.is_none() => {
                if let Some(id) = block(pad) {
                    found.video = Some((v, pad.clone(), id));
                }
            }
            Stream::Audio(a) if found.audio.is_none() => {
                if let Some(id) = block(pad) {
                    found.audio = Some((a, pad.clone(), id));
                }
            }
            Stream::Other { what, video } => {
                if video {
                    found.other_video.get_or_insert(what.clone());
                }
                found.others.push(what);
            }
            // A second video or audio stream: the first of each is kept.
            Stream::Video(v) => found.others.push(v.name().to_string()),
            Stream::Audio(a) => found.others.push(a.name),
        }
    });
    src.connect_no_more_pads(|src| {
        let s = gst::Structure::new_empty(STREAMS_FOUND);
        let _ = src.post_message(gst::message::Element::builder(s).src(src).build());
    });
}

/// Builds the tail for the streams found, links the held pads to it and lets them go.
fn attach_tail(
    args: &Args,
    live: bool,
    pipeline: &gst::Pipeline,
    found: &Mutex<Found>,
    start_index: u32,
    watchdog: &Watchdog,
    log: &mut Log,
) -> Result<gst::Bin, End> {
    let mut found = found.lock().unwrap_or_else(|e| e.into_inner());
    let Some((video, vpad, vprobe)) = found.video.take() else {
        let what = found.other_video.clone();
        return Err(End::Fatal(match what {
            Some(codec) => format!(
                "{} is {codec}, not H.264 or H.265: the original stream is kept without re-encoding, which needs \
                 one of them (set the camera to H.264 or H.265, or analyse the file with `faceemotion analyse`)",
                args.source
            ),
            None => format!("{} has no video stream", args.source),
        }));
    };
    let audio = found.audio.take();
    let settings = TailSettings {
        dir: &args.out,
        segment_ns: args.segment * 1_000_000_000,
        start_index,
    };
    let built = pipeline::tail(video, audio.as_ref().map(|a| &a.0), live, &settings).and_then(|bin| {
        let fe = bin.by_name("fe").ok_or("no faceemotion")?;
        if args.anonymise {
            fe.set_property_from_str("blur", "gaussian");
        }
        crate::apply_sets(&fe, &args.sets)?;
        pipeline.add(&bin).map_err(|e| e.to_string())?;
        Ok(bin)
    });
    let bin = built.map_err(End::Fatal)?;
    let w = watchdog.clone();
    let video_in = bin
        .static_pad("video")
        .ok_or_else(|| End::Fatal("no video input".into()))?;
    video_in.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        w.data();
        gst::PadProbeReturn::Ok
    });
    if bin.sync_state_with_parent().is_err() {
        return Err(End::Fatal("the recording branches could not start".into()));
    }
    watchdog.rearm();
    let mut streams = format!("{} video kept as it comes", video.name());
    let link = vpad
        .link(&video_in)
        .map_err(|e| End::Fatal(format!("linking the video: {e:?}")));
    vpad.remove_probe(vprobe);
    link?;
    if let Some((a, pad, probe)) = audio {
        if let Some(audio_in) = bin.static_pad("audio") {
            if pad.link(&audio_in).is_ok() {
                streams += &match a.transcoded {
                    true => format!(", {} audio as AAC (MP4 cannot carry {})", a.name, a.name),
                    false => format!(", {} audio as it comes", a.name),
                };
            }
        }
        pad.remove_probe(probe);
    }
    if !found.others.is_empty() {
        streams += &format!("; not kept: {}", found.others.join(", "));
    }
    log.say(&streams);
    Ok(bin)
}

/// One connection: builds the pipeline, records until the stream ends, drops or is stopped,
/// and closes every segment. Returns why it ended, the next free segment index, and whether any
/// data came.
fn connection(
    args: &Args,
    live: bool,
    start_index: u32,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    log: &mut Log,
) -> Result<(End, u32, bool), String> {
    let pipeline = gst::Pipeline::new();
    let src = source(args, live, &pipeline)?;
    let found = Arc::new(Mutex::new(Found::default()));
    watch_streams(&src, live, &found);
    let watchdog = Watchdog::new();
    let bus = pipeline.bus().ok_or("no bus")?;
    if pipeline.set_state(gst::State::Playing).is_err() {
        let why = drain_error(&bus).unwrap_or_else(|| "the source could not start".into());
        let _ = pipeline.set_state(gst::State::Null);
        return Ok((
            if live { End::Dropped(why) } else { End::Fatal(why) },
            start_index,
            false,
        ));
    }
    let mut tail: Option<gst::Bin> = None;
    // Streams in the source's stream collection once it has told, and whether it said that
    // every pad has come.
    let (mut expected, mut all_shown) = (None, false);
    let mut eos = [false, false];
    // Why the connection is ending, once known; the branches are then being closed.
    let mut ending: Option<(End, Instant)> = None;
    // How long the closing branches may go without analysing a frame before the last segments
    // are given up. Counted from the last progress, not from the end: the analysed branch can
    // be seconds of video behind the original one (its queue holds 5 s), and a slow machine
    // takes longer than that to catch up.
    let close_wait = Duration::from_secs(20);
    let mut analysed = None;
    let stall = Duration::from_secs(args.stall_timeout);
    let begin_end = |ending: &mut Option<(End, Instant)>, end: End, tail: &Option<gst::Bin>, log: &mut Log| {
        if ending.is_none() {
            *ending = Some((end, Instant::now()));
            if let Some(t) = tail {
                log.say("closing the segments");
                pipeline::close(t);
            }
        }
    };
    loop {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            if let Some(inner) = forwarded(&msg) {
                // Only the file sinks' EOS matters here; everything else also comes unwrapped.
                if let Some(i) = branch_ended(&msg, &inner) {
                    eos[i] = true;
                    if ending.is_none() {
                        ending = Some((end_of_data(live), Instant::now()));
                    }
                }
            } else {
                let from = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
                match msg.view() {
                    gst::MessageView::Element(e) => match e.structure() {
                        Some(s) if s.name() == STREAMS_FOUND => all_shown = true,
                        Some(s) if s.name() == "splitmuxsink-fragment-opened" => {
                            if let Ok(loc) = s.get::<String>("location") {
                                log.say(&format!("segment {loc}"));
                            }
                        }
                        _ => {}
                    },
                    gst::MessageView::StreamCollection(c) if msg.src() == Some(src.upcast_ref()) => {
                        expected = Some(c.stream_collection().len());
                    }
                    // The pipeline's own EOS: every branch is done.
                    gst::MessageView::Eos(_) => {
                        eos = [true, true];
                        if ending.is_none() {
                            ending = Some((end_of_data(live), Instant::now()));
                        }
                    }
                    gst::MessageView::Error(e) => {
                        let why = format!("{} ({})", e.error(), from);
                        let end = if live { End::Dropped(why) } else { End::Fatal(why) };
                        if tail.is_none() || !watchdog.got_data() {
                            // Nothing came on this connection: no segment to finish.
                            ending.get_or_insert((end, Instant::now()));
                            break;
                        }
                        begin_end(&mut ending, end, &tail, log);
                    }
                    _ => {}
                }
            }
        }
        if eos == [true, true] {
            break;
        }
        let all_found = || all_shown || found.lock().unwrap_or_else(|e| e.into_inner()).all_of(expected);
        if tail.is_none() && ending.is_none() && all_found() {
            match attach_tail(args, live, &pipeline, &found, start_index, &watchdog, log) {
                Ok(bin) => tail = Some(bin),
                Err(end) => {
                    ending = Some((end, Instant::now()));
                    break;
                }
            }
        }
        if ending.is_none() {
            let stopped = stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d);
            if stopped {
                begin_end(&mut ending, End::Stopped, &tail, log);
            } else if watchdog.stalled(stall) {
                let end = End::Dropped(format!("no data for {} s", args.stall_timeout));
                begin_end(&mut ending, end, &tail, log);
            }
        }
        if let Some((_, since)) = &mut ending {
            let Some(t) = &tail else { break };
            let frames = t
                .by_name("fe")
                .and_then(|fe| fe.property::<gst::Structure>("stats").get::<u64>("frames").ok());
            if frames.is_some() && frames != analysed {
                analysed = frames;
                *since = Instant::now();
            }
            if since.elapsed() > close_wait {
                log.say("the segments did not close in time: the last ones may be incomplete");
                break;
            }
        }
    }
    let got_data = watchdog.got_data();
    let _ = pipeline.set_state(gst::State::Null);
    // A segment opened as the stream ended holds nothing: it is not a recording.
    for path in segments::remove_empty(&args.out, start_index) {
        log.say(&format!("removed {} (no data reached it)", path.display()));
    }
    let next_index = segments::first_free_index(&args.out).max(start_index);
    let end = ending.map(|(e, _)| e).unwrap_or(End::Finished);
    if let End::Fatal(_) = end {
        return Ok((end, next_index, got_data));
    }
    if !got_data && !live {
        return Ok((
            End::Fatal(format!("{} has no H.264 or H.265 video", args.source)),
            next_index,
            false,
        ));
    }
    Ok((end, next_index, got_data))
}

/// Data ran out on its own: a file ends; a camera that ends its stream has dropped.
fn end_of_data(live: bool) -> End {
    if live {
        End::Dropped("the camera ended the stream".into())
    } else {
        End::Finished
    }
}

/// Which branch a forwarded message says has finished: the EOS of the file sink inside one of
/// the splitmuxsinks. splitmuxsink drops its sink's EOS at the end of each segment but the last,
/// so this one means the branch's last segment is written.
///
/// The EOS that a bin posts once all its sinks have (GstBin's collected EOS, which a
/// splitmuxsink and the pipeline both post) is not relied on: in GStreamer 1.22 a bin whose
/// READY->PAUSED state message is still being posted when it is set to PLAYING records that it
/// has not reached PLAYING (`gst_bin_post_message` sets `posted_playing` after posting), and then
/// never posts its EOS. `splitmuxsink async-handling=true` in the old gst-launch line opened
/// that window (the pipeline no longer waits for the splitmuxsinks before PLAYING), and its runs
/// now and then never ended; see pipelines/surveillance-record-hang.md.
fn branch_ended(msg: &gst::Message, inner: &gst::Message) -> Option<usize> {
    if !matches!(inner.view(), gst::MessageView::Eos(_)) {
        return None;
    }
    let by = msg.src()?.name();
    segments::KINDS.iter().position(|s| by == *s)
}

/// The message a bin forwarded (message-forward), if it is one.
fn forwarded(msg: &gst::Message) -> Option<gst::Message> {
    let gst::MessageView::Element(e) = msg.view() else {
        return None;
    };
    let s = e.structure()?;
    if s.name() != "GstBinForwarded" {
        return None;
    }
    s.get::<gst::Message>("message").ok()
}

fn drain_error(bus: &gst::Bus) -> Option<String> {
    while let Some(m) = bus.pop() {
        if let gst::MessageView::Error(e) = m.view() {
            return Some(e.error().to_string());
        }
    }
    None
}
