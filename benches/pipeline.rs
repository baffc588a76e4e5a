//! Pipeline benchmark: real pipelines on real footage, all in one run so their ratios compare.
//!
//!     cargo bench --bench pipeline              # scripts/bench.sh runs it (with --soak)
//!     cargo bench --bench pipeline -- --soak    # also 100,000 frames for memory growth
//!     cargo bench --bench pipeline -- --soak-only     # only those 100,000 frames
//!     FACEEMOTION_BASELINE_PLUGIN=/other/libgstfaceemotion.so cargo bench --bench pipeline
//!                                               # also an interleaved A/B against another build
//!     cargo bench --bench pipeline -- --small-faces   # only the store-camera-distance rows
//!     cargo bench --bench pipeline -- --visitors      # only the cost of visitor recognition
//!     cargo bench --bench pipeline -- --ab            # only the A/B (with FACEEMOTION_BASELINE_PLUGIN)
//!     FACEEMOTION_AB_RUNS=N ...                       # N pairs in each A/B (5; the visitor A/B 3N)
//!     cargo bench --bench pipeline -- --streams       # only the cameras-in-one-process table
//!     FACEEMOTION_STREAMS_EXTRA="tiles=1" ...         # that table with more element properties
//!
//! Footage: the six face-api.js group photos (npm @vladmandic/face-api 1.7.15, 3-5 faces each),
//! 60 frames each at 1920x1080 and 640x360, H.264, made here on first use. Each pipeline runs in
//! a child process (for its own peak memory) `RUNS` times; figures are medians over the runs of
//! frames per second, and over all frames of the per-frame latency added by the analysis element
//! (from its sink pad to its src pad). The floor is the time inside ONNX Runtime alone for the
//! same frames and faces.

mod common;

#[path = "../tests/common/footage.rs"]
mod footage;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

const RUNS: usize = 3;

fn bench_dir() -> PathBuf {
    root().join("target/bench")
}

/// Makes the clip from the group photos, letterboxed to `w`x`h`, 60 frames a photo.
fn make_clip(path: &Path, w: usize, h: usize, container: &str) {
    make_clip_at(path, w, h, container, 30, 60)
}

/// [`make_clip`] at `fps` frames/s with `per_photo` frames a photo.
fn make_clip_at(path: &Path, w: usize, h: usize, container: &str, fps: u32, per_photo: u32) {
    if path.is_file() {
        return;
    }
    gst::init().unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mux = if container == "mp4" {
        "mp4mux ! "
    } else {
        "video/x-h264,stream-format=byte-stream ! "
    };
    let mut desc = format!(
        "concat name=c ! videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=fast bitrate={} key-int-max=60 \
         ! video/x-h264,profile=high ! h264parse ! {mux} filesink location=\"{}\"",
        if w > 1000 { 6000 } else { 1500 },
        path.display()
    );
    for i in 1..=6 {
        let photo = root().join(format!("tests/data/face-api/sample{i}.jpg"));
        assert!(
            photo.is_file(),
            "run scripts/setup.sh --test first (fetches the face-api photos)"
        );
        desc += &format!(
            " filesrc location=\"{}\" ! jpegdec ! videoconvert ! videoscale add-borders=true \
             ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1,format=I420 ! imagefreeze num-buffers={per_photo} \
             ! video/x-raw,framerate={fps}/1 ! c.",
            photo.display()
        );
    }
    eprintln!("making {}", path.display());
    let p = gst::parse::launch(&desc).unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let msg = bus.timed_pop_filtered(gst::ClockTime::NONE, &[gst::MessageType::Eos, gst::MessageType::Error]);
    p.set_state(gst::State::Null).unwrap();
    if let Some(gst::MessageView::Error(e)) = msg.as_ref().map(|m| m.view()) {
        panic!("making {}: {}", path.display(), e.error());
    }
}

fn vm_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// In the child: runs one pipeline, times the element named `probe` (sink to src pad), and
/// prints `frames seconds latency_ms,... peak_kib rss_samples_kib,...`.
fn child(desc: &str, probe_in: Option<&str>, probe_out: Option<&str>) {
    gst::init().unwrap();
    // FACEEMOTION_BENCH_PLUGIN: another build of the plugin, for A/B runs against it.
    let plugin = std::env::var_os("FACEEMOTION_BENCH_PLUGIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/release/libgstfaceemotion.so"));
    gst::Plugin::load_file(&plugin).unwrap_or_else(|e| panic!("{}: {e}", plugin.display()));
    let pipeline = gst::parse::launch(desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let starts: Arc<Mutex<std::collections::VecDeque<Instant>>> = Default::default();
    let lat: Arc<Mutex<Vec<Duration>>> = Default::default();
    let rss: Arc<Mutex<Vec<u64>>> = Default::default();
    let frames = Arc::new(Mutex::new(0usize));
    if let (Some(i), Some(o)) = (probe_in, probe_out) {
        let (pin, pout) = (pipeline.by_name(i).unwrap(), pipeline.by_name(o).unwrap());
        let s = starts.clone();
        pin.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                s.lock().unwrap().push_back(Instant::now());
                gst::PadProbeReturn::Ok
            });
        let (s, l, r, f) = (starts.clone(), lat.clone(), rss.clone(), frames.clone());
        pout.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if let Some(t) = s.lock().unwrap().pop_front() {
                    l.lock().unwrap().push(t.elapsed());
                }
                let mut f = f.lock().unwrap();
                *f += 1;
                if *f % 500 == 0 {
                    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
                    let mut r = r.lock().unwrap();
                    r.push(vm_kib("VmRSS:"));
                    r.push(vm_kib("Threads:"));
                    r.push(fds);
                }
                gst::PadProbeReturn::Ok
            });
    }
    // Throughput is timed from a prerolled pipeline: loading models and opening the decoder
    // happen once per stream, not per frame (the soak below shows the long-run rate).
    pipeline.set_state(gst::State::Paused).unwrap();
    let _ = pipeline.state(gst::ClockTime::NONE);
    let before = *frames.lock().unwrap();
    let t = Instant::now();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(gst::ClockTime::NONE, &[gst::MessageType::Eos, gst::MessageType::Error]);
    let secs = t.elapsed().as_secs_f64();
    if let Some(gst::MessageView::Error(e)) = msg.as_ref().map(|m| m.view()) {
        panic!("{desc}: {} {:?}", e.error(), e.debug());
    }
    // The element's own account: time in the element and, of that, inside ONNX Runtime.
    let stats = pipeline
        .by_name("fe")
        .filter(|e| e.find_property("stats").is_some())
        .map(|e| e.property::<gst::Structure>("stats"))
        .map(|s| {
            format!(
                "{}:{}:{}:{}",
                s.get::<u64>("processing-time").unwrap(),
                s.get::<u64>("model-time").unwrap(),
                s.get::<u64>("detector-runs").unwrap_or(0),
                s.get::<u64>("faces-described").unwrap_or(0)
            )
        })
        .unwrap_or_else(|| "0:0:0:0".into());
    pipeline.set_state(gst::State::Null).unwrap();
    let mut n = *frames.lock().unwrap();
    if probe_in.is_none() {
        n = 0;
    }
    let lat: Vec<String> = lat
        .lock()
        .unwrap()
        .iter()
        .map(|d| format!("{:.3}", d.as_secs_f64() * 1e3))
        .collect();
    let rss: Vec<String> = rss.lock().unwrap().iter().map(|v| v.to_string()).collect();
    println!(
        "RESULT {n} {secs:.4} {} {} {} {stats} {before}",
        lat.join(","),
        vm_kib("VmHWM:"),
        rss.join(",")
    );
}

struct Run {
    /// Nanoseconds in the element and inside ONNX Runtime, and the detector's runs, from its
    /// `stats` property.
    element_ns: u64,
    model_ns: u64,
    detector_runs: u64,
    faces_described: u64,
    frames: usize,
    /// Frames through the element before the clock started (prerolling).
    before: usize,
    secs: f64,
    lat: Vec<Duration>,
    peak_kib: u64,
    rss: Vec<u64>,
}

fn run_child(desc: &str, probe: Option<(&str, &str)>) -> Run {
    run_child_with(desc, probe, None)
}

/// [`run_child`] with another build of the plugin.
fn run_child_with(desc: &str, probe: Option<(&str, &str)>, plugin: Option<&Path>) -> Run {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    if let Some(p) = plugin {
        cmd.env("FACEEMOTION_BENCH_PLUGIN", p);
    }
    cmd.arg("--child").arg(desc);
    if let Some((i, o)) = probe {
        cmd.arg(i).arg(o);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("RESULT ")).unwrap_or_else(|| {
        panic!("{desc}: no result\n{}", String::from_utf8_lossy(&out.stderr));
    });
    let f: Vec<&str> = line.split(' ').collect();
    let parse_list = |s: &str| {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(|x| x.parse::<f64>().unwrap())
            .collect::<Vec<_>>()
    };
    let account: Vec<u64> = f
        .get(6)
        .map(|s| s.split(':').map(|v| v.parse().unwrap_or(0)).collect())
        .unwrap_or_default();
    let at = |i: usize| account.get(i).copied().unwrap_or(0);
    Run {
        element_ns: at(0),
        model_ns: at(1),
        detector_runs: at(2),
        faces_described: at(3),
        frames: f[1].parse().unwrap(),
        before: f.get(7).and_then(|v| v.parse().ok()).unwrap_or(0),
        secs: f[2].parse().unwrap(),
        lat: parse_list(f.get(3).copied().unwrap_or(""))
            .into_iter()
            .map(|ms| Duration::from_secs_f64(ms / 1e3))
            .collect(),
        peak_kib: f.get(4).and_then(|v| v.parse().ok()).unwrap_or(0),
        rss: parse_list(f.get(5).copied().unwrap_or(""))
            .into_iter()
            .map(|v| v as u64)
            .collect(),
    }
}

struct Case {
    name: &'static str,
    desc: String,
    probe: Option<(&'static str, &'static str)>,
}

/// Time inside ONNX Runtime per frame for the clip's frames, every face classified.
fn floor(clip: &Path) -> (Vec<Duration>, Vec<Duration>) {
    use gstfaceemotion::analysis::{Analyzer, ModelConfig, Params};
    use gstfaceemotion::image::{ImageView, PixelFormat, YuvMatrix};
    use gstfaceemotion::runtime::default_model_path;
    gst::init().unwrap();
    let mut analyzer = Analyzer::new(ModelConfig {
        detector: default_model_path(gstfaceemotion::runtime::FULL_RANGE_MODEL),
        emotion: vec![default_model_path(gstfaceemotion::runtime::EMOTION_MODEL)],
        gender: vec![default_model_path(gstfaceemotion::runtime::GENDER_MODEL)],
        descriptor: None,
        threads: 0,
        ort_library: None,
        group: String::new(),
    })
    .unwrap();
    let params = Params::default();
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! video/x-raw,format=I420 ! appsink name=sink sync=false",
        clip.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let (mut model, mut core) = (Vec::new(), Vec::new());
    while let Ok(sample) = sink.pull_sample() {
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let frame = gst_video::VideoFrame::from_buffer_readable(sample.buffer_owned().unwrap(), &info).unwrap();
        use gst_video::prelude::*;
        let planes: Vec<&[u8]> = (0..3).map(|i| frame.plane_data(i).unwrap()).collect();
        let strides: Vec<usize> = frame.plane_stride().iter().map(|&s| s as usize).collect();
        let img = ImageView::new(
            PixelFormat::I420,
            info.width() as usize,
            info.height() as usize,
            &planes,
            &strides,
            YuvMatrix::BT709,
        )
        .unwrap();
        analyzer.take_model_time();
        let t = Instant::now();
        analyzer.analyze(&img, &params).unwrap();
        core.push(t.elapsed());
        model.push(analyzer.take_model_time());
    }
    p.set_state(gst::State::Null).unwrap();
    (model, core)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if args.get(1).map(String::as_str) == Some("--child-streams") {
        return child_streams(
            &args[2],
            args[3].parse().unwrap(),
            args[4] == "1",
            Sink::from_arg(&args[5]),
        );
    }
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(
            &args[2],
            args.get(3).map(String::as_str),
            args.get(4).map(String::as_str),
        );
    }
    let soak = args.iter().any(|a| a == "--soak");
    assert!(
        root().join("target/release/libgstfaceemotion.so").is_file(),
        "build the plugin first: cargo build --release"
    );
    let dir = bench_dir();
    let hd = dir.join("faces-1080p.mp4");
    let sd = dir.join("faces-360p.mp4");
    let es = dir.join("faces-1080p.h264");
    make_clip(&hd, 1920, 1080, "mp4");
    make_clip(&sd, 640, 360, "mp4");
    if args.iter().any(|a| a == "--small-faces") {
        return small_faces(&dir, &hd);
    }
    if args.iter().any(|a| a == "--ab") {
        return ab_baseline(&hd);
    }
    if args.iter().any(|a| a == "--visitors") {
        return visitors(&hd);
    }
    let cams = dir.join("faces-1080p-25fps.mp4");
    make_clip_at(&cams, 1920, 1080, "mp4", 25, 50);
    if args.iter().any(|a| a == "--streams") {
        return streams(&cams);
    }
    if soak {
        make_clip(&es, 1920, 1080, "h264");
    }
    if args.iter().any(|a| a == "--soak-only") {
        make_clip(&es, 1920, 1080, "h264");
        return soak_run(&es);
    }
    let decode = |clip: &Path| {
        format!(
            "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 name=dec",
            clip.display()
        )
    };
    let cases = vec![
        Case {
            name: "decode only, 1080p",
            desc: format!("{} ! fakesink sync=false", decode(&hd)),
            probe: None,
        },
        Case {
            name: "decode + faceemotion, 1080p, every face every frame, gender and age tapered",
            desc: format!("{} ! queue ! faceemotion name=fe ! fakesink sync=false", decode(&hd)),
            probe: Some(("fe", "fe")),
        },
        Case {
            name: "decode + faceemotion + faceemotionpublish (file, JSON lines), 1080p, every face every frame, gender and age tapered",
            desc: format!(
                "{} ! queue ! faceemotion name=fe ! faceemotionpublish file-path=\"{}\" ! fakesink sync=false",
                decode(&hd),
                dir.join("records.jsonl").display()
            ),
            probe: Some(("fe", "fe")),
        },
        Case {
            name: "decode + faceemotion pipelining=off (as with a live source), 1080p, every face every frame, gender and age tapered",
            desc: format!("{} ! queue ! faceemotion name=fe pipelining=off ! fakesink sync=false", decode(&hd)),
            probe: Some(("fe", "fe")),
        },
        Case {
            name: "decode + faceemotion gender-interval=1 (gender and age of every face every frame too), 1080p",
            desc: format!("{} ! queue ! faceemotion name=fe gender-interval=1 ! fakesink sync=false", decode(&hd)),
            probe: Some(("fe", "fe")),
        },
        Case {
            name: "decode + faceemotion with the fp32 age/gender network, 1080p, every face every frame, gender and age tapered",
            desc: format!(
                "{} ! queue ! faceemotion name=fe gender-model=\"{}\" ! fakesink sync=false",
                decode(&hd),
                root().join("models/faceapi_age_gender.onnx").display()
            ),
            probe: Some(("fe", "fe")),
        },
        Case {
            name: "decode + faceemotion inference-interval=3 reclassify-interval=3, 1080p",
            desc: format!(
                "{} ! queue ! faceemotion name=fe inference-interval=3 reclassify-interval=3 ! fakesink sync=false",
                decode(&hd)
            ),
            probe: Some(("fe", "fe")),
        },
        Case {
            name: "decode + faceemotion gender-interval=30, 1080p, emotion of every face every frame",
            desc: format!("{} ! queue ! faceemotion name=fe gender-interval=30 ! fakesink sync=false", decode(&hd)),
            probe: Some(("fe", "fe")),
        },
        Case {
            name: "decode + faceemotion inference-interval=3 reclassify-interval=3 gender-interval=30, 1080p",
            desc: format!(
                "{} ! queue ! faceemotion name=fe inference-interval=3 reclassify-interval=3 gender-interval=30 ! fakesink sync=false",
                decode(&hd)
            ),
            probe: Some(("fe", "fe")),
        },
        Case {
            name: "decode + videoconvert + facedetect (Haar, detection only), 1080p",
            desc: format!(
                "{} ! queue ! videoconvert name=cv ! facedetect name=fd display=false ! fakesink sync=false",
                decode(&hd)
            ),
            probe: Some(("cv", "fd")),
        },
        Case {
            name: "decode only, 360p",
            desc: format!("{} ! fakesink sync=false", decode(&sd)),
            probe: None,
        },
        Case {
            name: "decode + faceemotion, 360p, every face every frame, gender and age tapered",
            desc: format!("{} ! queue ! faceemotion name=fe ! fakesink sync=false", decode(&sd)),
            probe: Some(("fe", "fe")),
        },
    ];

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap().trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("Machine: {cores} cores, {cpu}. Clip: 360 frames (6 photos x 60), 3-5 faces a frame. {RUNS} runs each.\n");
    println!("| pipeline | frames/s (median) | added latency median / p99 (ms) | peak memory (MiB) |");
    println!("|---|---|---|---|");
    let mut fps_of = std::collections::HashMap::new();
    let mut lat_of = std::collections::HashMap::new();
    let mut floor_of = std::collections::HashMap::new();
    for case in &cases {
        let mut fps = Vec::new();
        let mut lats = Vec::new();
        let mut peak = 0;
        let mut ratios = Vec::new();
        let total_frames = 360.0;
        for _ in 0..RUNS {
            let _ = std::fs::remove_file(dir.join("records.jsonl"));
            let r = run_child(&case.desc, case.probe);
            if case.probe.is_some() {
                assert_eq!(r.frames, 360, "{}", case.name);
            }
            let _ = r.frames;
            fps.push((total_frames - r.before as f64) / r.secs);
            lats.extend(r.lat);
            peak = peak.max(r.peak_kib);
            if r.model_ns > 0 {
                ratios.push((r.element_ns as f64 / 360.0 / 1e6, r.model_ns as f64 / 360.0 / 1e6));
            }
        }
        fps.sort_by(|a, b| a.total_cmp(b));
        let fps = fps[fps.len() / 2];
        let (med, p99) = stats_ms(&mut lats);
        let lat = if case.probe.is_some() {
            format!("{med:.1} / {p99:.1}")
        } else {
            "-".into()
        };
        println!("| {} | {fps:.1} | {lat} | {:.0} |", case.name, peak as f64 / 1024.0);
        fps_of.insert(case.name, fps);
        lat_of.insert(case.name, med);
        ratios.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
        if let Some(&(el, m)) = ratios.get(ratios.len() / 2) {
            floor_of.insert(case.name, (el, m));
        }
    }
    let fd = fps_of[cases.iter().find(|c| c.name.contains("facedetect")).unwrap().name];
    println!("\nfaceemotion vs facedetect throughput:");
    for case in cases
        .iter()
        .filter(|c| c.name.contains("faceemotion") && c.name.contains("1080p"))
    {
        println!("- {}: {:.1}x", case.name, fps_of[case.name] / fd);
    }

    let plain = fps_of["decode + faceemotion, 1080p, every face every frame, gender and age tapered"];
    let publish = fps_of["decode + faceemotion + faceemotionpublish (file, JSON lines), 1080p, every face every frame, gender and age tapered"];
    println!(
        "\nfaceemotionpublish (file, JSON lines) on the every-frame pipeline: {:+.1} % time per frame",
        (plain / publish - 1.0) * 100.0
    );
    for case in &cases {
        if let Some((el, m)) = floor_of.get(case.name) {
            println!(
                "{}: per frame {el:.2} ms of work in the element (all its threads, waiting excluded), {m:.2} ms of it inside ONNX Runtime (the floor): {:.2}x",
                case.name,
                el / m
            );
        }
    }
    let (mut model, mut core) = floor(&hd);
    let (m_med, m_p99) = stats_ms(&mut model);
    let (c_med, _) = stats_ms(&mut core);
    let el = lat_of[cases.iter().find(|c| c.name.contains("pipelining=off")).unwrap().name];
    println!(
        "Same frames through the core alone (no GStreamer), measured after the pipelines: inside ONNX Runtime median \
         {m_med:.2} ms, p99 {m_p99:.2} ms; whole analysis {c_med:.2} ms (element latency with pipelining=off above: {el:.2} ms, {:.2}x)",
        el / m_med
    );

    small_faces(&dir, &hd);
    visitors(&hd);
    streams(&cams);

    ab_baseline(&hd);

    if soak {
        soak_run(&es);
    }
}

/// 100,000 frames of 1080p through the default element: memory, threads and open files over
/// time.
fn soak_run(es: &Path) {
    let loops = SOAK_FRAMES.div_ceil(360);
    let desc = format!(
        "multifilesrc location=\"{}\" loop=true num-buffers={loops} ! h264parse ! avdec_h264 ! queue ! faceemotion name=fe ! fakesink sync=false",
        es.display()
    );
    let r = run_child(&desc, Some(("fe", "fe")));
    // Samples every 500 frames (RSS KiB, threads, open files); skip the first two (warm-up),
    // fit a line through the rest.
    let samples: Vec<(f64, u64, u64)> = r
        .rss
        .chunks_exact(3)
        .map(|c| (c[0] as f64 / 1024.0, c[1], c[2]))
        .collect();
    let mib: Vec<f64> = samples.iter().skip(2).map(|s| s.0).collect();
    let n = mib.len() as f64;
    let xs: Vec<f64> = (0..mib.len()).map(|i| (i as f64 + 3.0) * 500.0).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, mib.iter().sum::<f64>() / n);
    let slope = xs.iter().zip(&mib).map(|(x, y)| (x - mx) * (y - my)).sum::<f64>()
        / xs.iter().map(|x| (x - mx).powi(2)).sum::<f64>();
    let (lo, hi) = mib
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    let threads: std::collections::BTreeSet<u64> = samples.iter().skip(2).map(|s| s.1).collect();
    let fds: std::collections::BTreeSet<u64> = samples.iter().skip(2).map(|s| s.2).collect();
    println!(
        "\nSoak: {} frames at 1080p in {:.0} s ({:.1} frames/s); RSS from frame 1500 on between {lo:.0} and {hi:.0} MiB, \
         trend {:+.3} MiB per 10,000 frames (least squares); peak {:.0} MiB; threads {threads:?}; open files {fds:?}",
        r.frames,
        r.secs,
        r.frames as f64 / r.secs,
        slope * 10_000.0,
        r.peak_kib as f64 / 1024.0
    );
    let series: Vec<String> = samples.iter().step_by(10).map(|v| format!("{:.0}", v.0)).collect();
    println!("RSS every 5,000 frames (MiB): {}", series.join(" "));
}

/// Faces at store-camera distance: what the default search (tiles=0: whole frame, a tile in
/// turn, cells around known small faces) costs against the whole frame alone (tiles=1, the
/// previous default), interleaved on each clip.
fn small_faces(dir: &Path, bench_clip: &Path) {
    let walking = dir.join("walking-small-face-1080p.mp4");
    if !walking.is_file() {
        eprintln!("making {}", walking.display());
        footage::write_walking_clip(
            &root().join("tests/data/astronaut-pan.mp4"),
            &root().join("tests/data/coffee.png"),
            &walking,
        );
    }
    let still = dir.join("still-kitchen-1080p.mp4");
    if !still.is_file() {
        eprintln!("making {}", still.display());
        let mut f = footage::Frame::new(1920, 1080);
        f.paste(
            &footage::picture(&root().join("tests/data/coffee.png"), 1920, 1080),
            1920,
            1080,
            0,
            0,
        );
        footage::write_still_clip(&f, 180, &still);
    }
    let grid = dir.join("small-grid-1080p.mp4");
    if !grid.is_file() {
        eprintln!("making {}", grid.display());
        let photos: Vec<PathBuf> = (1..=6)
            .map(|i| root().join(format!("tests/data/face-api/sample{i}.jpg")))
            .collect();
        footage::write_still_clip(&footage::grid_frame(&photos, 1920, 1080, 0.6), 180, &grid);
    }
    let clips: [(&str, &Path, f64); 4] = [
        ("bench clip (3-5 faces of 100-200 px, 360 frames)", bench_clip, 360.0),
        ("a 40 px face walking across a kitchen (180 frames)", &walking, 180.0),
        (
            "the six photos shrunk into a 3x2 grid, faces 32-53 px, still (180 frames)",
            &grid,
            180.0,
        ),
        ("a still kitchen, no face, no motion (180 frames)", &still, 180.0),
    ];
    println!(
        "\nFaces at store-camera distance, 1080p, every face every frame: the default search (tiles=0) against the \
         whole frame alone (tiles=1, the previous default), interleaved, {} pairs; ms per frame of element work \
         (median), frames/s (median), detector runs per frame:",
        ab_runs()
    );
    println!("\n| clip | tiles=1: ms / frames/s / runs | default: ms / frames/s / runs | time per frame |");
    println!("|---|---|---|---|");
    for (name, clip, frames) in clips {
        let desc = |tiles: &str| {
            format!(
                "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! queue ! faceemotion name=fe {tiles} ! fakesink sync=false",
                clip.display()
            )
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..ab_runs() {
            for (tiles, out) in [("tiles=1", &mut a), ("", &mut b)] {
                let r = run_child(&desc(tiles), Some(("fe", "fe")));
                out.push((
                    r.element_ns as f64 / frames / 1e6,
                    (frames - r.before as f64) / r.secs,
                    r.detector_runs as f64 / frames,
                ));
            }
        }
        let med = |v: &mut Vec<(f64, f64, f64)>, k: usize| {
            let mut x: Vec<f64> = v.iter().map(|t| [t.0, t.1, t.2][k]).collect();
            x.sort_by(|p, q| p.total_cmp(q));
            x[x.len() / 2]
        };
        let (am, af, ar) = (med(&mut a, 0), med(&mut a, 1), med(&mut a, 2));
        let (bm, bf, br) = (med(&mut b, 0), med(&mut b, 1), med(&mut b, 2));
        println!(
            "| {name} | {am:.2} / {af:.1} / {ar:.2} | {bm:.2} / {bf:.1} / {br:.2} | {:.2}x |",
            bm / am
        );
    }
}

/// What visitor recognition costs: the bench clip (3-5 people a photo, each photo two seconds,
/// so every person appears, is described and leaves) with recognition off (reid-window=0,
/// today's element) and on (the default), interleaved.
fn visitors(bench_clip: &Path) {
    let desc = |extra: &str| {
        format!(
            "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! queue ! faceemotion name=fe {extra} ! fakesink sync=false",
            bench_clip.display()
        )
    };
    let (mut off, mut on, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    let mut described = 0;
    // The effect is a percent or two, within the spread of 5 pairs on two shared cores.
    let pairs = 3 * ab_runs();
    for _ in 0..pairs {
        let a = run_child(&desc("reid-window=0"), Some(("fe", "fe")));
        let b = run_child(&desc(""), Some(("fe", "fe")));
        described = b.faces_described;
        let (am, bm) = (a.element_ns as f64 / 360.0 / 1e6, b.element_ns as f64 / 360.0 / 1e6);
        off.push((am, (360.0 - a.before as f64) / a.secs));
        on.push((bm, (360.0 - b.before as f64) / b.secs));
        ratio.push(bm / am);
    }
    let med = |v: &[f64]| {
        let mut x = v.to_vec();
        x.sort_by(|p, q| p.total_cmp(q));
        x[x.len() / 2]
    };
    let col = |v: &[(f64, f64)], k: usize| med(&v.iter().map(|t| if k == 0 { t.0 } else { t.1 }).collect::<Vec<_>>());
    println!(
        "\nVisitor recognition, 1080p bench clip, every face every frame, interleaved, {} pairs (medians): \
         reid-window=0 {:.2} ms per frame of element work, {:.1} frames/s; default (recognition on) {:.2} ms, {:.1} \
         frames/s; time per frame {:+.1} % (median of the pairs' ratios); {} faces described in the 360 frames",
        pairs,
        col(&off, 0),
        col(&off, 1),
        col(&on, 0),
        col(&on, 1),
        (med(&ratio) - 1.0) * 100.0,
        described
    );
}

/// CPU time of this process so far (user + system), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces), counted from state (field 3).
    let rest = stat.rsplit_once(") ").map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// The sinks of the streams benchmark.
#[derive(Clone, Copy, PartialEq)]
enum Sink {
    /// As fast as the frames come (`sync=false`).
    AsFast,
    /// In time (`sync=true`), reporting nothing upstream (fakesink's default).
    InTime,
    /// In time, reporting lateness upstream (`qos=true`, as video sinks do by default).
    InTimeQos,
}

impl Sink {
    fn arg(self) -> &'static str {
        match self {
            Sink::AsFast => "fast",
            Sink::InTime => "sync",
            Sink::InTimeQos => "qos",
        }
    }

    fn from_arg(a: &str) -> Self {
        match a {
            "fast" => Sink::AsFast,
            "sync" => Sink::InTime,
            "qos" => Sink::InTimeQos,
            _ => panic!("no such sink mode: {a}"),
        }
    }

    fn props(self) -> &'static str {
        match self {
            Sink::AsFast => "sync=false",
            Sink::InTime => "sync=true",
            Sink::InTimeQos => "sync=true qos=true",
        }
    }
}

/// In the child: `n` cameras, each the clip through a single-threaded decoder and (with
/// `analysis`) faceemotion, in one pipeline; prints
/// `STREAMS seconds cpu_seconds peak_kib threads frames lat_median_ms,... lat_p99_ms,...
/// frames_at_sinks skipped`.
fn child_streams(clip: &str, n: usize, analysis: bool, sink: Sink) {
    gst::init().unwrap();
    let plugin = root().join("target/release/libgstfaceemotion.so");
    gst::Plugin::load_file(&plugin).unwrap_or_else(|e| panic!("{}: {e}", plugin.display()));
    let branches: Vec<String> = (0..n)
        .map(|i| {
            let fe = if analysis {
                format!(
                    "! faceemotion name=fe{i} inference-interval=3 reclassify-interval=3 gender-interval=30 {} ",
                    streams_extra()
                )
            } else {
                String::new()
            };
            format!(
                "filesrc location=\"{clip}\" ! qtdemux ! h264parse ! avdec_h264 max-threads=1 {fe}! fakesink name=sink{i} {}",
                sink.props()
            )
        })
        .collect();
    let pipeline = gst::parse::launch(&branches.join(" "))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let lat: Vec<Arc<Mutex<Vec<Duration>>>> = (0..n).map(|_| Default::default()).collect();
    let frames = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let shown = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for i in 0..n {
        let s = shown.clone();
        pipeline
            .by_name(&format!("sink{i}"))
            .unwrap()
            .static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                s.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
    }
    for (i, l) in lat.iter().enumerate() {
        let Some(fe) = pipeline.by_name(&format!("fe{i}")) else {
            continue;
        };
        let starts: Arc<Mutex<std::collections::VecDeque<Instant>>> = Default::default();
        let s = starts.clone();
        fe.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                s.lock().unwrap().push_back(Instant::now());
                gst::PadProbeReturn::Ok
            });
        let (l, f) = (l.clone(), frames.clone());
        fe.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if let Some(t) = starts.lock().unwrap().pop_front() {
                    l.lock().unwrap().push(t.elapsed());
                }
                f.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
    }
    pipeline.set_state(gst::State::Paused).unwrap();
    let _ = pipeline.state(gst::ClockTime::NONE);
    let (t, cpu) = (Instant::now(), cpu_seconds());
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::NONE, &[gst::MessageType::Eos, gst::MessageType::Error]);
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    if let Some(gst::MessageView::Error(e)) = msg.as_ref().map(|m| m.view()) {
        panic!("{} {:?}", e.error(), e.debug());
    }
    let threads = vm_kib("Threads:");
    let skipped: u64 = (0..n)
        .filter_map(|i| pipeline.by_name(&format!("fe{i}")))
        .map(|fe| {
            fe.property::<gst::Structure>("stats")
                .get::<u64>("skipped")
                .unwrap_or(0)
        })
        .sum();
    pipeline.set_state(gst::State::Null).unwrap();
    let (mut med, mut p99) = (Vec::new(), Vec::new());
    for l in &lat {
        let mut v = l.lock().unwrap().clone();
        if !v.is_empty() {
            let (m, p) = stats_ms(&mut v);
            med.push(format!("{m:.2}"));
            p99.push(format!("{p:.2}"));
        }
    }
    println!(
        "STREAMS {secs:.4} {cpu:.3} {} {threads} {} {} {} {} {skipped}",
        vm_kib("VmHWM:"),
        frames.load(std::sync::atomic::Ordering::Relaxed),
        if med.is_empty() { "-".into() } else { med.join(",") },
        if p99.is_empty() { "-".into() } else { p99.join(",") },
        shown.load(std::sync::atomic::Ordering::Relaxed),
    );
}

/// Properties added to every faceemotion of the streams benchmark (`FACEEMOTION_STREAMS_EXTRA`,
/// such as `tiles=1`), to give its table with something other than the defaults.
fn streams_extra() -> String {
    std::env::var("FACEEMOTION_STREAMS_EXTRA").unwrap_or_default()
}

struct StreamsRun {
    secs: f64,
    cpu: f64,
    peak_mib: f64,
    threads: u64,
    lat_med: Vec<f64>,
    lat_p99: Vec<f64>,
    /// Frames that reached the sinks, and frames only tracked.
    shown: u64,
    skipped: u64,
}

fn run_streams(clip: &Path, n: usize, analysis: bool, sink: Sink) -> StreamsRun {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--child-streams")
        .arg(clip)
        .arg(n.to_string())
        .arg(if analysis { "1" } else { "0" })
        .arg(sink.arg())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("STREAMS "))
        .unwrap_or_else(|| panic!("{n} streams: no result\n{}", String::from_utf8_lossy(&out.stderr)));
    let f: Vec<&str> = line.split(' ').collect();
    let list = |s: &str| -> Vec<f64> { s.split(',').filter_map(|v| v.parse().ok()).collect() };
    StreamsRun {
        secs: f[1].parse().unwrap(),
        cpu: f[2].parse().unwrap(),
        peak_mib: f[3].parse::<f64>().unwrap() / 1024.0,
        threads: f[4].parse().unwrap(),
        lat_med: list(f[6]),
        lat_p99: list(f[7]),
        shown: f[8].parse().unwrap(),
        skipped: f[9].parse().unwrap(),
    }
}

/// Sixteen cameras on one small box: N streams of the 1080p 25 frames/s clip (300 frames each)
/// in one process, at inference-interval=3 reclassify-interval=3 gender-interval=30, against
/// decoding alone; then 16 with sync=true sinks, which must keep real time.
fn streams(clip: &Path) {
    println!(
        "\nCameras in one process: N streams of a 1080p 25 frames/s clip (300 frames, 3-5 faces a frame), \
         single-threaded decoding, faceemotion inference-interval=3 reclassify-interval=3 gender-interval=30, \
         fakesink sync=false; median of {RUNS} runs (memory: the largest){}:\n",
        match streams_extra() {
            e if e.is_empty() => String::new(),
            e => format!("; with {e}"),
        }
    );
    println!(
        "| N | decode only: frames/s, CPU s, peak MiB | with faceemotion: frames/s, CPU s, peak MiB, threads | time against decode only | analysis memory per stream | per-stream latency median / p99 of the medians (ms), worst p99 |"
    );
    println!("|---|---|---|---|---|---|");
    let frames = 300.0;
    let mut base_peak = None;
    for n in [1usize, 2, 4, 8, 16] {
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let (mut ds, mut dc, mut dp) = (Vec::new(), Vec::new(), 0.0f64);
        let (mut fs, mut fc, mut fp, mut ft) = (Vec::new(), Vec::new(), 0.0f64, 0u64);
        let mut lats = Vec::new();
        for _ in 0..RUNS {
            let d = run_streams(clip, n, false, Sink::AsFast);
            let a = run_streams(clip, n, true, Sink::AsFast);
            ds.push(d.secs);
            dc.push(d.cpu);
            dp = dp.max(d.peak_mib);
            fs.push(a.secs);
            fc.push(a.cpu);
            fp = fp.max(a.peak_mib);
            ft = ft.max(a.threads);
            lats.push((a.lat_med, a.lat_p99));
        }
        let (d_secs, a_secs) = (med(&mut ds), med(&mut fs));
        let per_stream = (fp - dp) / n as f64;
        let base = *base_peak.get_or_insert(fp - dp);
        let extra = if n > 1 {
            format!(
                "{:.1} MiB ({:.1} per added stream)",
                per_stream,
                (fp - dp - base) / (n - 1) as f64
            )
        } else {
            format!("{per_stream:.1} MiB")
        };
        let mid = lats.len() / 2;
        let (m, p) = &mut lats[mid];
        let worst = p.iter().copied().fold(0.0, f64::max);
        let (mm, pm) = (med(&mut m.clone()), med(&mut p.clone()));
        println!(
            "| {n} | {:.0}, {:.1}, {dp:.0} | {:.0}, {:.1}, {fp:.0}, {ft} | {:.2}x | {extra} | {mm:.1} / {pm:.1}, {worst:.1} |",
            n as f64 * frames / d_secs,
            med(&mut dc),
            n as f64 * frames / a_secs,
            med(&mut fc),
            a_secs / d_secs
        );
    }
    // Played in time: fakesink keeps to the clock but tells upstream nothing (its default);
    // with qos=true it reports its lateness, as video sinks do by default, and the elements
    // catch up on it. Decoding alone beside each: what the streams cost without analysis.
    println!();
    for sink in [Sink::InTime, Sink::InTimeQos] {
        let d = run_streams(clip, 16, false, sink);
        let a = run_streams(clip, 16, true, sink);
        let mut m = a.lat_med.clone();
        m.sort_by(|x, y| x.total_cmp(y));
        println!(
            "16 streams, fakesink {}: 12 s of video in {:.1} s (decode only {:.1} s, {} of 4800 frames shown); \
             with faceemotion {} of 4800 frames shown, {} only tracked ({:.1} % analysed); \
             per-stream latency median {:.1} ms, worst p99 {:.1} ms",
            sink.props(),
            a.secs,
            d.secs,
            d.shown,
            a.shown,
            a.skipped,
            100.0 * a.shown.saturating_sub(a.skipped) as f64 / a.shown.max(1) as f64,
            m.get(m.len() / 2).copied().unwrap_or(f64::NAN),
            a.lat_p99.iter().copied().fold(0.0, f64::max)
        );
    }
}

/// With FACEEMOTION_BASELINE_PLUGIN: an A/B against another build of the plugin.
fn ab_baseline(hd: &Path) {
    if let Some(base) = std::env::var_os("FACEEMOTION_BASELINE_PLUGIN") {
        // A/B against another build, interleaved (old, new, old, new, ...) so that the machine's
        // drift hits both alike. The same age/gender file for both: the code is compared.
        let base = PathBuf::from(base);
        let gender = root().join("models").join(gstfaceemotion::runtime::GENDER_MODEL);
        println!(
            "\nA/B against {} (interleaved, {} pairs, frames/s and ms per frame of element work):",
            base.display(),
            ab_runs()
        );
        for (name, extra) in [
            ("every face every frame, pipelining", ""),
            ("every face every frame, pipelining=off", "pipelining=off"),
        ] {
            let desc = format!(
                "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 name=dec ! queue ! faceemotion name=fe {extra} gender-model=\"{}\" ! fakesink sync=false",
                hd.display(),
                gender.display()
            );
            let (mut old_fps, mut new_fps, mut old_ms, mut new_ms) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..ab_runs() {
                let o = run_child_with(&desc, Some(("fe", "fe")), Some(&base));
                let n = run_child(&desc, Some(("fe", "fe")));
                old_fps.push((360.0 - o.before as f64) / o.secs);
                new_fps.push((360.0 - n.before as f64) / n.secs);
                old_ms.push(o.element_ns as f64 / 360.0 / 1e6);
                new_ms.push(n.element_ns as f64 / 360.0 / 1e6);
            }
            let med = |v: &mut Vec<f64>| {
                v.sort_by(|a, b| a.total_cmp(b));
                v[v.len() / 2]
            };
            let (of, nf, om, nm) = (med(&mut old_fps), med(&mut new_fps), med(&mut old_ms), med(&mut new_ms));
            println!(
                "- {name}: before {of:.1} frames/s, {om:.2} ms; now {nf:.1} frames/s, {nm:.2} ms: {:+.1} % time per frame",
                (nm / om - 1.0) * 100.0
            );
        }
    }
}

/// Frames of the soak.
const SOAK_FRAMES: usize = 100_000;
/// Pairs of the A/B comparisons: 5, or `FACEEMOTION_AB_RUNS` (more pairs for a small effect
/// on noisy cores).
fn ab_runs() -> usize {
    std::env::var("FACEEMOTION_AB_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5)
}
