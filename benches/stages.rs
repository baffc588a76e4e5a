//! Stage benchmark of the GStreamer-free core: preprocessing from each pixel format and size,
//! the detector, crop + batched classification for 1, 4 and 16 faces, and drawing.
//!
//!     cargo bench --bench stages            (scripts/bench.sh runs it with the pipeline benchmark)
//!     cargo bench --bench stages -- --preprocessing    (letterbox and crop tables only)
//!
//! Prints medians in milliseconds. Needs the face-api photos (`scripts/setup.sh --test`).

mod common;

use common::*;
use gstfaceemotion::analysis::{Analyzer, ModelConfig, Params};
use gstfaceemotion::detector::letterbox_region;
use gstfaceemotion::draw::Painter;
use gstfaceemotion::face::Face;
use gstfaceemotion::image::{ImageView, ImageViewMut, PixelFormat, YuvMatrix};
use gstfaceemotion::resample::{Border, Resampler};
use gstfaceemotion::runtime::default_model_path;

const SIZES: [(usize, usize); 4] = [(640, 360), (1280, 720), (1920, 1080), (3840, 2160)];

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::var_os("CV_THREADS1").is_some() {
        opencv::core::set_num_threads(1).unwrap();
    }
    let photo = root().join("tests/data/face-api/sample5.jpg");
    assert!(
        photo.is_file(),
        "run scripts/setup.sh --test first (fetches the face-api photos)"
    );

    println!(
        "## Preprocessing: letterbox + area resize to the detector's 192x192 RGB, from each format (ms, median)\n"
    );
    print!("| format |");
    for (w, h) in SIZES {
        print!(" {w}x{h} |");
    }
    println!("\n|---|---|---|---|---|");
    let mut resampler = Resampler::new();
    let mut out = vec![0u8; 192 * 192 * 3];
    for f in PixelFormat::ALL {
        print!("| {} |", f.name());
        for (w, h) in SIZES {
            let data = decode_packed(&photo, f.name(), w, h);
            let img = ImageView::packed(f, w, h, &data).unwrap();
            let region = letterbox_region(w, h);
            let n = if w > 2000 { 30 } else { 100 };
            let ms = median_ms(n, || {
                resampler
                    .resample(&img, region, 192, 192, Border::Black, &mut out)
                    .unwrap();
            });
            print!(" {ms:.3} |");
        }
        println!();
    }

    // The classifiers' crop: a square around a face, to 112x112 RGB. Below 112 it is an
    // enlargement (bilinear), above it an area reduction; chroma of 4:2:0 is half the side.
    const CROPS: [usize; 4] = [96, 150, 300, 500];
    println!("\n## Face crop to the classifiers' 112x112 RGB, from a 1920x1080 frame (ms per face, median)\n");
    print!("| format |");
    for s in CROPS {
        print!(" side {s} |");
    }
    println!("\n|---|---|---|---|---|");
    let mut crop = vec![0u8; 112 * 112 * 3];
    for f in PixelFormat::ALL {
        print!("| {} |", f.name());
        let data = decode_packed(&photo, f.name(), 1920, 1080);
        let img = ImageView::packed(f, 1920, 1080, &data).unwrap();
        for s in CROPS {
            let region = gstfaceemotion::resample::RectF {
                x: 801.0,
                y: 403.0,
                w: s as f32,
                h: s as f32,
            };
            let ms = median_ms(300, || {
                resampler
                    .resample(&img, region, 112, 112, Border::Replicate, &mut crop)
                    .unwrap();
            });
            print!(" {ms:.3} |");
        }
        println!();
    }
    // The same grey crops through OpenCV's resize, which our reduction equals to the bit.
    print!("| GRAY8 with OpenCV's resize (before) |");
    {
        use opencv::core::{Mat, Rect, Size, CV_8UC1};
        use opencv::prelude::*;
        let data = decode_packed(&photo, "GRAY8", 1920, 1080);
        let full = Mat::from_slice(&data).unwrap();
        let full = full.reshape(1, 1080).unwrap();
        let mut small = Mat::new_rows_cols_with_default(112, 112, CV_8UC1, 0.into()).unwrap();
        for s in CROPS {
            let part = Mat::roi(&full, Rect::new(801, 403, s as i32, s as i32)).unwrap();
            let ms = median_ms(300, || {
                opencv::imgproc::resize(
                    &part,
                    &mut small,
                    Size::new(112, 112),
                    0.0,
                    0.0,
                    opencv::imgproc::INTER_AREA,
                )
                .unwrap();
            });
            print!(" {ms:.3} |");
        }
    }
    println!();
    if std::env::args().any(|a| a == "--preprocessing") {
        return;
    }

    let config = ModelConfig {
        detector: default_model_path(gstfaceemotion::runtime::FULL_RANGE_MODEL),
        emotion: vec![default_model_path(gstfaceemotion::runtime::EMOTION_MODEL)],
        gender: vec![default_model_path(gstfaceemotion::runtime::GENDER_MODEL)],
        descriptor: None,
        threads: 0,
        ort_library: None,
        group: String::new(),
    };
    let mut analyzer = Analyzer::new(config).expect("models");
    let params = Params::default();
    let (w, h) = (1920, 1080);
    let data = decode_packed(&photo, "I420", w, h);
    let img = ImageView::packed(PixelFormat::I420, w, h, &data).unwrap();

    println!("\n## Models on a 1920x1080 I420 frame (ms, median; threads=0)\n");
    println!("| stage | total | inside ONNX Runtime |\n|---|---|---|");
    // The whole frame alone (what a frame of only big faces costs once the first search is
    // done), then the still-frame search: the whole frame and every tile of the grid that
    // reaches min-face-size (what a first frame, or `analyse` on a photo, costs).
    let whole = Params {
        search: gstfaceemotion::scan::Search::Whole,
        ..params
    };
    for (name, p, runs) in [
        (
            "detector (full range), the whole frame, preprocessing included",
            &whole,
            50,
        ),
        (
            "detector (full range), still-frame search (whole frame and every tile), preprocessing included",
            &params,
            15,
        ),
    ] {
        let mut model = Vec::new();
        let mut detector_runs = 0;
        let total = median_ms(runs, || {
            analyzer.take_model_time();
            analyzer.take_detector_runs();
            analyzer.detect(&img, p).unwrap();
            detector_runs = analyzer.take_detector_runs();
            model.push(analyzer.take_model_time());
        });
        println!(
            "| {name}: {detector_runs} detector run(s) | {total:.2} | {:.2} |",
            stats_ms(&mut model).0
        );
    }

    let dets = analyzer.detect(&img, &params).unwrap();
    assert_eq!(dets.len(), 5, "sample5 has five faces");
    // The shipped INT8 age/gender network, then the fp32 one it was made from, for comparison.
    let fp32 = Analyzer::new(ModelConfig {
        gender: vec![default_model_path("faceapi_age_gender.onnx")],
        ..analyzer.config().clone()
    })
    .expect("models");
    let model = |f: &str| default_model_path(f);
    let emotion_ensemble = Analyzer::new(ModelConfig {
        emotion: vec![
            model(gstfaceemotion::runtime::EMOTION_MODEL),
            model("faceapi_expression.onnx"),
        ],
        ..analyzer.config().clone()
    })
    .expect("models");
    let gender_ensemble = Analyzer::new(ModelConfig {
        gender: vec![model(gstfaceemotion::runtime::GENDER_MODEL), model("hm_gender.onnx")],
        ..analyzer.config().clone()
    })
    .expect("models");
    for (label, a) in [
        ("", &mut analyzer),
        (" (fp32 age/gender)", &mut { fp32 }),
        (" (emotion ensemble: mini-Xception + face-api.js expression)", &mut {
            emotion_ensemble
        }),
        (" (gender ensemble: face-api.js + human-models)", &mut {
            gender_ensemble
        }),
    ] {
        for n in [1, 4, 16] {
            let faces: Vec<Face> = (0..n).map(|i| Face::new(dets[i % dets.len()])).collect();
            let mut model = Vec::new();
            let mut answers = Vec::new();
            let total = median_ms(30, || {
                a.take_model_time();
                a.classify(&img, &faces, None, None, &params, &mut answers).unwrap();
                model.push(a.take_model_time());
            });
            println!(
                "| crop + emotion + gender{label}, {n} face(s) in one batch | {total:.2} | {:.2} |",
                stats_ms(&mut model).0
            );
        }
    }

    // The face descriptor of visitor recognition, shipped INT8 and the fp32 network it was made
    // from: it runs a few times per person, not per frame.
    for (label, file) in [
        ("INT8, the default", gstfaceemotion::runtime::DESCRIPTOR_MODEL),
        ("fp32", "hm_faceres.onnx"),
    ] {
        let mut a = Analyzer::new(ModelConfig {
            descriptor: Some(default_model_path(file)),
            ..analyzer.config().clone()
        })
        .expect("models");
        for n in [1, 4] {
            let faces: Vec<_> = (0..n).map(|i| dets[i % dets.len()]).collect();
            let mut model = Vec::new();
            let total = median_ms(20, || {
                a.take_model_time();
                a.describe(&img, faces.iter()).unwrap();
                model.push(a.take_model_time());
            });
            println!(
                "| crop (eye-levelled) + face descriptor ({label}), {n} face(s) in one batch | {total:.2} | {:.2} |",
                stats_ms(&mut model).0
            );
        }
    }

    // Zones: 64 faces and 16 zones of 8 points each, against the whole analysis of this frame.
    {
        use gstfaceemotion::zone::{parse, Presence};
        let text: Vec<String> = (0..16)
            .map(|z| {
                let (cx, cy) = (0.125 + 0.25 * (z % 4) as f32, 0.125 + 0.25 * (z / 4) as f32);
                let pts: Vec<String> = (0..8)
                    .map(|k| {
                        let a = k as f32 * std::f32::consts::TAU / 8.0;
                        format!("{:.4},{:.4}", cx + 0.12 * a.cos(), cy + 0.12 * a.sin())
                    })
                    .collect();
                format!("z{z}:{}", pts.join(" "))
            })
            .collect();
        let set = std::sync::Arc::new(parse(&text.join(";")).expect("zones"));
        let mut faces: Vec<Face> = (0..64)
            .map(|i| {
                let mut f = Face::new(dets[i % dets.len()]);
                let (dx, dy) = ((i % 8) as f32 * 230.0, (i / 8) as f32 * 130.0);
                f.detection.bbox = gstfaceemotion::face::BBox {
                    x1: dx,
                    y1: dy,
                    x2: dx + 60.0,
                    y2: dy + 60.0,
                };
                f.id = i as u64 + 1;
                f
            })
            .collect();
        let mut presence = Presence::default();
        let mut changes = Vec::new();
        presence.replace(set.clone(), &mut changes);
        let mut k = 0u64;
        let zones_ms = median_ms(200, || {
            k += 1;
            let t = gstfaceemotion::face::FrameTime {
                ts: k * 33_000_000,
                clock: k * 33_000_000,
                duration: 33_000_000,
            };
            changes.clear();
            presence.update(&mut faces, 1920.0, 1080.0, t, 3, &mut changes);
        });
        let mut data = decode_packed(&photo, "I420", w, h);
        let mut painter = Painter::new();
        let outlines_ms = median_ms(50, || {
            let mut img = packed_mut(PixelFormat::I420, w, h, &mut data);
            painter.draw_with_zones(&mut img, &[], Some(&set)).unwrap();
        });
        // The frame those faces make: the detector on the whole frame and the classifiers on
        // its 64 faces, one batch each.
        let whole = Params {
            search: gstfaceemotion::scan::Search::Whole,
            ..params
        };
        let mut answers = Vec::new();
        let frame_ms = median_ms(10, || {
            analyzer.detect(&img, &whole).unwrap();
            analyzer
                .classify(&img, &faces, None, None, &params, &mut answers)
                .unwrap();
        });
        println!(
            "\n## Zones: 64 faces, 16 zones of 8 points, 1920x1080\n\n| stage | ms | share of the frame's analysis (detector and classifiers on its 64 faces: {frame_ms:.2} ms) |\n|---|---|---|\n\
             | which zone each face is in, with inertia | {zones_ms:.4} | {:.2} % |\n\
             | drawing the 16 outlines and names (draw-zones) | {outlines_ms:.3} | {:.2} % |",
            zones_ms / frame_ms * 100.0,
            outlines_ms / frame_ms * 100.0
        );
    }

    println!("\n## Privacy masks on 5 faces, 1920x1080 (ms, median; strength 0.3, padding 0.25)\n");
    println!("| format | gaussian | pixelate | solid |\n|---|---|---|---|");
    let boxes: Vec<gstfaceemotion::face::BBox> = dets.iter().map(|d| d.bbox).collect();
    let mut masker = gstfaceemotion::mask::Masker::new();
    for f in [
        PixelFormat::I420,
        PixelFormat::Nv12,
        PixelFormat::Yuy2,
        PixelFormat::Bgrx,
    ] {
        let mut data = decode_packed(&photo, f.name(), w, h);
        let fresh = data.clone();
        print!("| {} |", f.name());
        for kind in [
            gstfaceemotion::mask::MaskKind::Gaussian,
            gstfaceemotion::mask::MaskKind::Pixelate,
            gstfaceemotion::mask::MaskKind::Solid,
        ] {
            let style = gstfaceemotion::mask::MaskStyle {
                kind,
                ..Default::default()
            };
            let ms = median_ms(50, || {
                data.copy_from_slice(&fresh);
                let mut img = packed_mut(f, w, h, &mut data);
                masker.mask(&mut img, &boxes, &style);
            });
            // The copy back to the unmasked frame is part of the timing: subtract it.
            let copy = median_ms(50, || data.copy_from_slice(&fresh));
            print!(" {:.3} |", (ms - copy).max(0.0));
        }
        println!();
    }

    println!("\n## Drawing 5 faces (ms, median)\n");
    println!("| format | 1920x1080 |\n|---|---|");
    let faces = analyzer.analyze(&img, &params).unwrap();
    let mut painter = Painter::new();
    for f in [
        PixelFormat::I420,
        PixelFormat::Nv12,
        PixelFormat::Yuy2,
        PixelFormat::Bgrx,
        PixelFormat::Rgb,
    ] {
        let mut data = decode_packed(&photo, f.name(), w, h);
        let mut img = packed_mut(f, w, h, &mut data);
        let ms = median_ms(100, || painter.draw(&mut img, &faces).unwrap());
        println!("| {} | {ms:.3} |", f.name());
    }
}

/// A writable view of a tightly packed frame.
fn packed_mut(f: PixelFormat, w: usize, h: usize, data: &mut [u8]) -> ImageViewMut<'_> {
    let mut planes = Vec::new();
    let mut strides = Vec::new();
    let mut rest = data;
    for p in 0..f.n_planes() {
        let (row, rows) = f.plane_size(p, w, h);
        let (a, b) = rest.split_at_mut(row * rows);
        planes.push(a);
        strides.push(row);
        rest = b;
    }
    ImageViewMut::new(f, w, h, planes, &strides, YuvMatrix::BT709).unwrap()
}
