//! Report benchmark: the footage report over a synthetic hour of records (108,000 frames at 30
//! frames/s, 5 people on every frame, records the size faceemotionpublish writes, people coming
//! and going), from reading the JSON lines to the CSV, HTML and PNG.
//!
//!     cargo bench --bench report

use std::io::Write;
use std::time::Instant;

const FRAMES: u64 = 108_000;
const PEOPLE_AT_ONCE: u64 = 5;
/// Each person stays this many frames (1 minute), then another comes.
const STAY: u64 = 1800;

fn object(id: u64, emotion: &str, label_id: u32) -> String {
    let probs = gstfaceemotion::face::EMOTIONS
        .iter()
        .map(|e| format!("\"{e}\":{}", if *e == emotion { 0.91 } else { 0.015 }))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "{{\"age\":{{\"label\":\"33\",\"model\":{{\"name\":\"faceapi_age_gender_int8\"}},\"years\":33.1}},\
         \"detection\":{{\"bounding_box\":{{\"x_max\":0.54,\"x_min\":0.33,\"y_max\":0.58,\"y_min\":0.21}},\"confidence\":0.95,\"label\":\"face\",\"label_id\":0}},\
         \"emotion\":{{\"confidence\":0.91,\"label\":\"{emotion}\",\"label_id\":{label_id},\"model\":{{\"name\":\"emotion_minixception_fer\"}},\"probabilities\":{{{probs}}}}},\
         \"emotion-raw\":{{\"confidence\":0.91,\"label\":\"{emotion}\",\"label_id\":{label_id},\"model\":{{\"name\":\"emotion_minixception_fer\"}},\"probabilities\":{{{probs}}}}},\
         \"gender\":{{\"confidence\":0.83,\"label\":\"female\",\"label_id\":1,\"model\":{{\"name\":\"faceapi_age_gender_int8\"}}}},\
         \"h\":132,\"id\":{id},\"region_id\":{id},\"roi_type\":\"face\",\"w\":133,\"x\":216,\"y\":79}}"
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench/report");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hour.jsonl");
    let t = Instant::now();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let ns = |frame: u64| frame * 1_000_000_000 / 30;
        for frame in 0..FRAMES {
            // Slot k holds person k + 5 * (frame / STAY): people change every minute.
            let objects: Vec<String> = (0..PEOPLE_AT_ONCE)
                .map(|k| {
                    let id = 1 + k + PEOPLE_AT_ONCE * (frame / STAY);
                    let e = ((frame / 90 + k) % 7) as usize;
                    object(id, gstfaceemotion::face::EMOTIONS[e], e as u32)
                })
                .collect();
            writeln!(
                f,
                "{{\"objects\":[{}],\"resolution\":{{\"height\":1080,\"width\":1920}},\"source\":\"hour\",\"timestamp\":{}}}",
                objects.join(","),
                ns(frame)
            )
            .unwrap();
            if frame % STAY == STAY - 1 {
                for k in 0..PEOPLE_AT_ONCE {
                    let id = 1 + k + PEOPLE_AT_ONCE * (frame / STAY);
                    writeln!(
                        f,
                        "{{\"event\":{{\"type\":\"left\",\"id\":{id},\"first\":{},\"last\":{},\"duration\":{},\"frames\":{STAY},\
                         \"emotion\":\"happy\",\"emotion_share\":{{\"happy\":0.5,\"neutral\":0.3,\"sad\":0.2}},\"gender\":\"female\",\
                         \"gender_confidence\":0.8,\"age\":{}}},\"source\":\"hour\",\"timestamp\":{}}}",
                        ns(frame + 1 - STAY),
                        ns(frame),
                        ns(STAY),
                        20 + id % 50,
                        ns(frame)
                    )
                    .unwrap();
                }
            }
        }
    }
    let size = std::fs::metadata(&path).unwrap().len();
    eprintln!(
        "made {} ({:.0} MB) in {:.1} s",
        path.display(),
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let r = gstfaceemotion::report::Report::read(&path).unwrap();
        let read = t.elapsed().as_secs_f64();
        r.write(&dir).unwrap();
        let all = t.elapsed().as_secs_f64();
        assert_eq!(r.frames, FRAMES);
        assert_eq!(r.people.len() as u64, FRAMES / STAY * PEOPLE_AT_ONCE);
        times.push((all, read));
    }
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (all, read) = times[1];
    println!(
        "Report over one hour of records ({FRAMES} frames, {PEOPLE_AT_ONCE} people a frame, {:.0} MB of JSON lines): \
         {all:.2} s (median of 3), of which reading {read:.2} s",
        size as f64 / 1e6
    );
    std::fs::remove_file(&path).ok();
}
