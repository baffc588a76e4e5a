//! `faceemotion record`: a camera's H.264 stream kept as it comes (no re-encoding) and the
//! analysed copy beside it, both cut into time-limited MP4 segments; when the camera drops (an
//! error, or no data for a while) the source is torn down and connected again with back-off,
//! and the segment numbering goes on.
//!
//! Each connection is a pipeline of its own. A drop ends it cleanly: an EOS goes into both
//! branches so that every segment file is finished (its index written) and plays to its end;
//! then the next connection starts its segments after the last one written.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

#[derive(clap::Args)]
pub struct Args {
    /// The camera: an rtsp:// URL; or an H.264 file (MP4, MKV ...) to record as if it were one.
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
                "{} is a directory: give an rtsp:// URL or an H.264 video file",
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
    let mut next_index = first_free_index(&args.out);
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

/// The segments in `dir`: path, index and size.
fn segments(dir: &Path) -> Vec<(PathBuf, u32, u64)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".mp4")?;
            let (kind, n) = stem.rsplit_once('_')?;
            if kind != "original" && kind != "annotated" {
                return None;
            }
            Some((e.path(), n.parse::<u32>().ok()?, e.metadata().ok()?.len()))
        })
        .collect()
}

/// The lowest segment index above every segment with data in `dir`.
fn first_free_index(dir: &Path) -> u32 {
    segments(dir)
        .into_iter()
        .filter(|s| s.2 > 0)
        .map(|s| s.1 + 1)
        .max()
        .unwrap_or(0)
}

fn remove_empty_segments(dir: &Path, from: u32, log: &mut Log) {
    for (path, n, size) in segments(dir) {
        if n >= from && size == 0 && std::fs::remove_file(&path).is_ok() {
            log.say(&format!("removed {} (no data reached it)", path.display()));
        }
    }
}

fn element(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("GStreamer element {factory} is missing: run scripts/setup.sh"))
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
    let seg_ns = args.segment * 1_000_000_000;
    let out = |kind: &str| args.out.join(format!("{kind}_%05d.mp4")).display().to_string();
    let tail = format!(
        "h264parse config-interval=-1 name=parse ! tee name=t \
         t. ! queue name=qo ! splitmuxsink name=original location=\"{orig}\" max-size-time={seg_ns} start-index={start_index} \
         t. ! queue name=qa max-size-time=5000000000 max-size-bytes=0 max-size-buffers=0 ! avdec_h264 ! videoconvert \
            ! faceemotion name=fe ! videoconvert ! x264enc speed-preset=veryfast tune=zerolatency key-int-max=60 \
            ! h264parse ! splitmuxsink name=annotated send-keyframe-requests=true location=\"{ann}\" max-size-time={seg_ns} \
              start-index={start_index}",
        orig = out("original").replace('"', "\\\""),
        ann = out("annotated").replace('"', "\\\""),
    );
    let bin = gst::parse::bin_from_description(&tail, false).map_err(|e| format!("pipeline: {e}"))?;
    let parse_sink = bin
        .by_name("parse")
        .and_then(|p| p.static_pad("sink"))
        .ok_or("no parser")?;
    let ghost = gst::GhostPad::with_target(&parse_sink).map_err(|e| e.to_string())?;
    bin.add_pad(&ghost).map_err(|e| e.to_string())?;
    // Each branch's end is its file sink's last EOS, which the splitmuxsink forwards (wrapped)
    // to the bus. Its own EOS, and the pipeline's, are GstBin's collected EOS, which GStreamer
    // 1.22 can lose: see `branch_ended`.
    for name in SINKS {
        bin.by_name(name)
            .ok_or("no splitmuxsink")?
            .set_property("message-forward", true);
    }
    let fe = bin.by_name("fe").ok_or("no faceemotion")?;
    if args.anonymise {
        fe.set_property_from_str("blur", "gaussian");
    }
    crate::apply_sets(&fe, &args.sets)?;
    let parse = bin.static_pad("sink").ok_or("no sink pad")?;
    pipeline.add(&bin).map_err(|e| e.to_string())?;

    // The source part, which reports what it delivers.
    let not_h264: Arc<Mutex<Option<String>>> = Default::default();
    let (src, demux): (gst::Element, gst::Element) = if live {
        let src = element("rtspsrc")?;
        src.set_property("location", &args.source);
        src.set_property("latency", 200u32);
        src.set_property_from_str("protocols", "tcp");
        // A stalled TCP connection is noticed by the watchdog below, not after rtspsrc's 20 s.
        src.set_property("tcp-timeout", 5_000_000u64);
        src.set_property("teardown-timeout", 100_000_000u64);
        let depay = element("rtph264depay")?;
        (src, depay)
    } else {
        let src = element("filesrc")?;
        src.set_property("location", &args.source);
        (src, element("parsebin")?)
    };
    pipeline.add_many([&src, &demux]).map_err(|e| e.to_string())?;
    if live {
        let depay_sink = demux.static_pad("sink").ok_or("no depayloader pad")?;
        let bad = not_h264.clone();
        src.connect_pad_added(move |_, pad| {
            let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
            let s = caps.as_ref().and_then(|c| c.structure(0).map(|s| s.to_owned()));
            let media = s.as_ref().and_then(|s| s.get::<String>("media").ok());
            let encoding = s.as_ref().and_then(|s| s.get::<String>("encoding-name").ok());
            match (media.as_deref(), encoding.as_deref()) {
                (Some("video"), Some("H264")) if !depay_sink.is_linked() => {
                    let _ = pad.link(&depay_sink);
                }
                (Some("video"), Some(other)) => *bad.lock().unwrap() = Some(other.to_string()),
                _ => {}
            }
        });
        demux.link(&bin).map_err(|e| e.to_string())?;
    } else {
        src.link(&demux).map_err(|e| e.to_string())?;
        let bad = not_h264.clone();
        demux.connect_pad_added(move |_, pad| {
            let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
            let name = caps
                .as_ref()
                .and_then(|c| c.structure(0).map(|s| s.name().to_string()))
                .unwrap_or_default();
            if name == "video/x-h264" && !parse.is_linked() {
                let _ = pad.link(&parse);
            } else if name.starts_with("video/") {
                *bad.lock().unwrap() = Some(name);
            }
        });
    }

    // The watchdog's view of the stream: when data last came, and how much.
    let last_data = Arc::new(AtomicU64::new(0));
    let buffers = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    {
        let (last, n) = (last_data.clone(), buffers.clone());
        bin.static_pad("sink")
            .ok_or("no sink pad")?
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                last.store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
                n.fetch_add(1, Ordering::SeqCst);
                gst::PadProbeReturn::Ok
            });
    }

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
    let mut eos = [false, false];
    // Why the connection is ending, once known; the branches are then being closed.
    let mut ending: Option<(End, Instant)> = None;
    let close_wait = Duration::from_secs(20);
    loop {
        let msg = bus.timed_pop(gst::ClockTime::from_mseconds(100));
        if let Some(msg) = msg {
            if let Some(inner) = forwarded(&msg) {
                // Only the file sinks' EOS matters here; everything else also comes unwrapped.
                if let Some(i) = branch_ended(&msg, &inner) {
                    eos[i] = true;
                    if ending.is_none() {
                        ending = Some((end_of_data(live), Instant::now()));
                    }
                }
                if eos == [true, true] {
                    break;
                }
                continue;
            }
            let from = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
            match msg.view() {
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure() {
                        if s.name() == "splitmuxsink-fragment-opened" {
                            if let Ok(loc) = s.get::<String>("location") {
                                log.say(&format!("segment {loc}"));
                            }
                        }
                    }
                }
                gst::MessageView::Eos(_) => {
                    // The pipeline's own EOS: both branches are done.
                    eos = [true, true];
                    if ending.is_none() {
                        ending = Some((end_of_data(live), Instant::now()));
                    }
                }
                gst::MessageView::Error(e) => {
                    let why = format!("{} ({})", e.error(), from);
                    if let Some(codec) = not_h264.lock().unwrap().clone() {
                        let _ = pipeline.set_state(gst::State::Null);
                        return Ok((
                            End::Fatal(format!(
                                "{} is {codec}, not H.264: the original stream is kept without re-encoding, which \
                                 needs H.264 (set the camera to H.264, or analyse the file with `faceemotion analyse`)",
                                args.source
                            )),
                            start_index,
                            false,
                        ));
                    }
                    if ending.is_none() {
                        let end = if live { End::Dropped(why) } else { End::Fatal(why) };
                        if buffers.load(Ordering::SeqCst) == 0 {
                            // Nothing came on this connection: no segment to finish.
                            ending = Some((end, Instant::now()));
                            break;
                        }
                        ending = Some((end, Instant::now()));
                        close_branches(&bin, log);
                    }
                }
                _ => {}
            }
        }
        if eos == [true, true] {
            break;
        }
        if ending.is_none() {
            let quiet = started.elapsed().as_millis() as u64 - last_data.load(Ordering::SeqCst);
            let stall = Duration::from_secs(args.stall_timeout).as_millis() as u64;
            let stopped = stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d);
            if stopped {
                ending = Some((End::Stopped, Instant::now()));
                close_branches(&bin, log);
            } else if quiet > stall && started.elapsed() > Duration::from_secs(args.stall_timeout) {
                ending = Some((
                    End::Dropped(format!("no data for {} s", args.stall_timeout)),
                    Instant::now(),
                ));
                close_branches(&bin, log);
            }
        }
        if let Some((_, since)) = &ending {
            if since.elapsed() > close_wait {
                log.say("the segments did not close in time: the last ones may be incomplete");
                break;
            }
        }
    }
    let got_data = buffers.load(Ordering::SeqCst) > 0;
    let _ = pipeline.set_state(gst::State::Null);
    // A segment opened as the stream ended holds nothing: it is not a recording.
    remove_empty_segments(&args.out, start_index, log);
    let next_index = first_free_index(&args.out).max(start_index);
    let end = ending.map(|(e, _)| e).unwrap_or(End::Finished);
    if let End::Fatal(_) = end {
        return Ok((end, next_index, got_data));
    }
    if !got_data && !live {
        return Ok((
            End::Fatal(format!("{} has no H.264 video", args.source)),
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

/// Sends an end into both branches, so that each splitmuxsink finishes its segment.
fn close_branches(bin: &gst::Bin, log: &mut Log) {
    log.say("closing the segments");
    if let Some(tee) = bin.by_name("t") {
        if let Some(pad) = tee.static_pad("sink") {
            // The source's thread may be gone or blocked; the event goes in from here.
            let _ = pad.send_event(gst::event::Eos::new());
        }
    }
}

/// The two splitmuxsinks, in the order of `eos` in `connection`.
const SINKS: [&str; 2] = ["original", "annotated"];

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
    SINKS.iter().position(|s| by == *s)
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
