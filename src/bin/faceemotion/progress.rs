//! Progress of a pipeline over a file: a bar on a terminal (percent, frames/s, time left), plain
//! lines otherwise (logs, CI).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    what: String,
}

impl Progress {
    pub fn new(what: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(1000);
            b.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {percent:>3}% {prefix} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_message(what.to_string());
            b
        });
        Self {
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
            what: what.into(),
        }
    }

    /// `position` and `duration` in ns of the input (duration unknown: 0); `frames` done.
    pub fn update(&mut self, position: u64, duration: u64, frames: u64) {
        let fps = frames as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let fraction = if duration > 0 {
            (position as f64 / duration as f64).clamp(0.0, 1.0)
        } else {
            0.0
        };
        match &self.bar {
            Some(b) => {
                b.set_position((fraction * 1000.0) as u64);
                b.set_prefix(format!("{frames} frames, {fps:.1} frames/s"));
            }
            None if self.last_line.elapsed() >= Duration::from_secs(2) => {
                self.last_line = Instant::now();
                let left = if fraction > 0.0 {
                    let total = self.started.elapsed().as_secs_f64() / fraction;
                    format!(
                        ", {:.0} s left",
                        (total - self.started.elapsed().as_secs_f64()).max(0.0)
                    )
                } else {
                    String::new()
                };
                eprintln!(
                    "[{}] {:.0}% ({frames} frames, {fps:.1} frames/s{left})",
                    self.what,
                    fraction * 100.0
                );
            }
            None => {}
        }
    }

    pub fn finish(&mut self, frames: u64) {
        let secs = self.started.elapsed().as_secs_f64();
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        eprintln!(
            "[{}] done: {frames} frames in {secs:.1} s ({:.1} frames/s)",
            self.what,
            frames as f64 / secs.max(1e-3)
        );
    }
}
