//! The footage report: from the JSON records `faceemotionpublish` writes, who was there, for how
//! long and how they felt, per person and over the recording; a CSV, an HTML page with charts
//! and a PNG of the main chart. GStreamer-free.

mod charts;
mod html;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::face::EMOTIONS;
use crate::schema::Record;

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} line {line} is not a faceemotion record: {reason}")]
    Record { path: PathBuf, line: usize, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("the font for the charts ({path}) is missing: run scripts/setup.sh (Debian fonts-dejavu-core) or set FACEEMOTION_FONT to a TrueType file")]
    Font { path: PathBuf },
    #[error("drawing a chart failed: {0}")]
    Chart(String),
}

/// One visit of the recording (a face track), from its end.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: u64,
    /// The visitor it was, and which of their visits, when the element recognised visitors.
    pub visitor: Option<u64>,
    pub visit: Option<u32>,
    /// Stream time of the first and last frame they were seen on (ns).
    pub first: u64,
    pub last: u64,
    /// Time present (ns).
    pub duration: u64,
    pub frames: u64,
    /// Share of their time in each emotion, in the FER order of [`EMOTIONS`].
    pub emotion_share: Option<[f64; 7]>,
    pub gender: Option<String>,
    pub gender_confidence: Option<f64>,
    pub age: Option<f64>,
    /// Seconds in each zone (the zones set then; none without zones).
    pub zones: BTreeMap<String, f64>,
}

impl Person {
    pub fn dominant(&self) -> Option<usize> {
        let s = self.emotion_share?;
        (0..7).max_by(|&a, &b| s[a].total_cmp(&s[b]))
    }
}

/// One visitor: their visits added up.
#[derive(Debug, Clone, PartialEq)]
pub struct Visitor {
    /// `None` for a visit of a recording without recognition (each its own visitor).
    pub id: Option<u64>,
    pub visits: u32,
    /// Stream time of their first and last frame (ns), and their time present, the visits'
    /// added up.
    pub first: u64,
    pub last: u64,
    pub duration: u64,
    /// Share of their time in each emotion, over all visits.
    pub emotion_share: Option<[f64; 7]>,
    /// As their last visit ended: it built on the ones before.
    pub gender: Option<String>,
    pub gender_confidence: Option<f64>,
    pub age: Option<f64>,
    /// Seconds in each zone, the visits' added up.
    pub zones: BTreeMap<String, f64>,
}

impl Visitor {
    pub fn dominant(&self) -> Option<usize> {
        let s = self.emotion_share?;
        (0..7).max_by(|&a, &b| s[a].total_cmp(&s[b]))
    }
}

/// One zone over the recording: who went in, how long they stayed, how they felt there, and
/// how many were in it over time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZoneReport {
    pub name: String,
    /// Tracks that entered (visitors, when they were recognised).
    pub entered: std::collections::BTreeSet<u64>,
    /// Faces seen in the zone per emotion (every frame of every face): the share of the time
    /// spent there in each.
    pub emotions: [u64; 7],
    /// Most faces in the zone on one frame, per stretch of the timeline.
    pub timeline: Vec<u32>,
}

impl ZoneReport {
    pub fn emotion_share(&self) -> Option<[f64; 7]> {
        let total: u64 = self.emotions.iter().sum();
        (total > 0).then(|| self.emotions.map(|e| e as f64 / total as f64))
    }
}

/// Faces seen per emotion in one stretch of the recording.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bin {
    pub start: u64,
    pub counts: [u64; 7],
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub source: Option<String>,
    /// Stream time of the first and last record (ns).
    pub start: u64,
    pub end: u64,
    pub frames: u64,
    pub faces: u64,
    pub people: Vec<Person>,
    /// The emotions of the faces over the recording, in equal stretches.
    pub timeline: Vec<Bin>,
    pub bin_ns: u64,
    /// Unix time (ns) minus stream time, when the records carry the time of day (`utc`).
    pub wall: Option<i128>,
    /// The zones, in the order the records first name them.
    pub zones: Vec<ZoneReport>,
}

fn emotion_index(label: &str) -> Option<usize> {
    EMOTIONS.iter().position(|e| *e == label)
}

/// Stretches the timeline is cut into.
const BINS: u64 = 60;

impl Report {
    /// Reads a JSON-lines file of records (a JSON array file too).
    pub fn read(path: &Path) -> Result<Self, ReportError> {
        let read_err = |e: std::io::Error| ReportError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let bad = |line: usize, e: serde_json::Error| ReportError::Record {
            path: path.to_path_buf(),
            line,
            reason: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let mut first = String::new();
        reader.read_line(&mut first).map_err(read_err)?;
        let mut records: Vec<Record> = Vec::new();
        if first.trim_start().starts_with('[') {
            // A JSON array (file-format=json): read it whole, then each element as a record.
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut reader, &mut rest).map_err(read_err)?;
            let all: Vec<serde_json::Value> = serde_json::from_str(&(first + &rest)).map_err(|e| bad(e.line(), e))?;
            for (i, v) in all.into_iter().enumerate() {
                records.push(serde_json::from_value(v).map_err(|e| bad(i + 1, e))?);
            }
            return Ok(Self::from_records(records));
        }
        let mut parse = |n: usize, l: &str| -> Result<(), ReportError> {
            if !l.trim().is_empty() {
                records.push(serde_json::from_str(l).map_err(|e| bad(n, e))?);
            }
            Ok(())
        };
        parse(1, &first)?;
        for (n, l) in reader.lines().enumerate() {
            parse(n + 2, &l.map_err(read_err)?)?;
        }
        Ok(Self::from_records(records))
    }

    fn from_records(records: Vec<Record>) -> Self {
        let mut r = Report::default();
        let (mut start, mut end) = (u64::MAX, 0u64);
        for l in &records {
            if let Some(t) = l.timestamp {
                start = start.min(t);
                end = end.max(t);
                if r.wall.is_none() {
                    let unix = l.utc.as_deref().and_then(crate::schema::parse_utc);
                    r.wall = unix.map(|u| u as i128 - t as i128);
                }
            }
            if r.source.is_none() {
                r.source = l.source.clone();
            }
        }
        if start == u64::MAX {
            start = 0;
        }
        let span = end.saturating_sub(start).max(1);
        r.bin_ns = span.div_ceil(BINS).max(1);
        let nbins = (span / r.bin_ns + 1) as usize;
        r.timeline = (0..nbins)
            .map(|i| Bin {
                start: start + i as u64 * r.bin_ns,
                counts: [0; 7],
            })
            .collect();
        r.start = start;
        r.end = end;
        // Each person as last heard of: the `left` event, else the latest `appeared`.
        let mut people: BTreeMap<u64, (bool, Person)> = BTreeMap::new();
        let mut in_zone = Vec::new();
        for l in records {
            if let Some(objects) = l.objects {
                r.frames += 1;
                r.faces += objects.len() as u64;
                let bin = ((l.timestamp.unwrap_or(start) - start) / r.bin_ns) as usize;
                let bin = bin.min(nbins - 1);
                in_zone.iter_mut().for_each(|n| *n = 0u32);
                for o in objects {
                    let emotion = o.classifications.get(crate::schema::param::EMOTION);
                    let emotion = emotion.and_then(|e| emotion_index(&e.label));
                    if let Some(e) = emotion {
                        r.timeline[bin].counts[e] += 1;
                    }
                    for name in o.zones.iter().flatten() {
                        let z = r.zone_index(name, nbins);
                        in_zone.resize(r.zones.len(), 0);
                        in_zone[z] += 1;
                        if let Some(e) = emotion {
                            r.zones[z].emotions[e] += 1;
                        }
                    }
                }
                for (z, &n) in in_zone.iter().enumerate() {
                    let t = &mut r.zones[z].timeline[bin];
                    *t = (*t).max(n);
                }
            }
            if let Some(e) = l.event {
                if let (Some(zone), "zone-entered") = (&e.zone, e.kind.as_str()) {
                    let z = r.zone_index(zone, nbins);
                    r.zones[z].entered.insert(e.visitor.unwrap_or(e.id));
                    continue;
                }
                if e.kind.starts_with("zone-") {
                    continue;
                }
                for name in e.zones.iter().flat_map(|z| z.keys()) {
                    r.zone_index(name, nbins);
                }
                let left = e.kind == "left";
                let share = e.emotion_share.map(|m| {
                    let mut s = [0.0; 7];
                    for (k, v) in m {
                        if let Some(i) = emotion_index(&k) {
                            s[i] = v;
                        }
                    }
                    s
                });
                let p = Person {
                    id: e.id,
                    visitor: e.visitor,
                    visit: e.visit,
                    first: e.first,
                    last: e.last,
                    duration: e.duration,
                    frames: e.frames,
                    emotion_share: share,
                    gender: e.gender,
                    gender_confidence: e.gender_confidence,
                    age: e.age,
                    zones: e.zones.unwrap_or_default(),
                };
                match people.get(&e.id) {
                    Some((true, _)) if !left => {}
                    _ => {
                        people.insert(e.id, (left, p));
                    }
                }
            }
        }
        r.people = people.into_values().map(|(_, p)| p).collect();
        r.people.sort_by_key(|p| (p.first, p.id));
        r
    }

    /// The index of zone `name`, added (with an empty timeline of `bins`) when new.
    fn zone_index(&mut self, name: &str, bins: usize) -> usize {
        match self.zones.iter().position(|z| z.name == name) {
            Some(i) => i,
            None => {
                self.zones.push(ZoneReport {
                    name: name.to_string(),
                    timeline: vec![0; bins],
                    ..Default::default()
                });
                self.zones.len() - 1
            }
        }
    }

    /// Seconds each person (visitor, when recognised) spent in zone `z`, for those who entered it.
    pub fn zone_times(&self, z: usize) -> Vec<f64> {
        let name = &self.zones[z].name;
        self.visitors()
            .iter()
            .filter_map(|v| v.zones.get(name).copied().filter(|&s| s > 0.0))
            .collect()
    }

    /// The time of day of stream time `ts`, in this machine's time zone, when known.
    pub fn local_time(&self, ts: u64) -> Option<chrono::DateTime<chrono::Local>> {
        let unix = i64::try_from(ts as i128 + self.wall?).ok()?;
        Some(chrono::DateTime::from_timestamp_nanos(unix).with_timezone(&chrono::Local))
    }

    /// Stream time `ts` as the report shows it: the time of day (`09:14:03`) when known, else
    /// the position in the recording (`m:ss.s`).
    pub fn when(&self, ts: u64) -> String {
        match self.local_time(ts) {
            Some(t) => t.format("%H:%M:%S").to_string(),
            None => clock(ts),
        }
    }

    /// People present during each hour of the day (local time), when the time of day is known:
    /// someone there from 9:50 to 10:10 counts in both hours.
    pub fn by_hour(&self) -> Option<[u32; 24]> {
        use chrono::Timelike;
        self.wall?;
        let mut hours = [0u32; 24];
        for p in &self.people {
            let (Some(a), Some(b)) = (self.local_time(p.first), self.local_time(p.first + p.duration)) else {
                continue;
            };
            let mut seen = [false; 24];
            let mut t = a;
            while t <= b {
                seen[t.hour() as usize] = true;
                t += chrono::Duration::minutes(60 - t.minute() as i64);
            }
            seen[b.hour() as usize] = true;
            for (h, s) in hours.iter_mut().zip(seen) {
                *h += s as u32;
            }
        }
        Some(hours)
    }

    /// The hour of the day with the most people, and how many.
    pub fn busiest_hour(&self) -> Option<(usize, u32)> {
        let hours = self.by_hour()?;
        (0..24)
            .max_by_key(|&h| (hours[h], std::cmp::Reverse(h)))
            .filter(|&h| hours[h] > 0)
            .map(|h| (h, hours[h]))
    }

    /// The visitors: the visits of each added up, in the order they first came. Without
    /// recognition every visit is a visitor of its own.
    pub fn visitors(&self) -> Vec<Visitor> {
        let mut out: Vec<Visitor> = Vec::new();
        let mut weighted: Vec<[f64; 7]> = Vec::new();
        for p in &self.people {
            let at = p.visitor.and_then(|v| out.iter().position(|o| o.id == Some(v)));
            let i = match at {
                Some(i) => i,
                None => {
                    out.push(Visitor {
                        id: p.visitor,
                        visits: 0,
                        first: p.first,
                        last: p.last,
                        duration: 0,
                        emotion_share: None,
                        gender: None,
                        gender_confidence: None,
                        age: None,
                        zones: BTreeMap::new(),
                    });
                    weighted.push([0.0; 7]);
                    out.len() - 1
                }
            };
            let v = &mut out[i];
            // Two tracks of one visit (the tracker lost the face, the gallery knew it again
            // before the visit ended) carry the same visit number: a visit, not a track.
            v.visits = match p.visit {
                Some(n) => v.visits.max(n),
                None => v.visits + 1,
            };
            v.first = v.first.min(p.first);
            v.last = v.last.max(p.last);
            v.duration += p.duration;
            for (z, s) in &p.zones {
                *v.zones.entry(z.clone()).or_default() += s;
            }
            if let Some(s) = p.emotion_share {
                for (w, x) in weighted[i].iter_mut().zip(s) {
                    *w += x * p.duration.max(1) as f64;
                }
            }
            // People are in the order they came: the later visit's estimate is the latest.
            if p.gender.is_some() {
                (v.gender, v.gender_confidence) = (p.gender.clone(), p.gender_confidence);
            }
            if p.age.is_some() {
                v.age = p.age;
            }
        }
        for (v, w) in out.iter_mut().zip(weighted) {
            let sum: f64 = w.iter().sum();
            v.emotion_share = (sum > 0.0).then(|| w.map(|x| x / sum));
        }
        out
    }

    /// Whether the records carry visitors (the element recognised people).
    pub fn recognised(&self) -> bool {
        self.people.iter().any(|p| p.visitor.is_some())
    }

    pub fn mean_presence(&self) -> f64 {
        if self.people.is_empty() {
            return 0.0;
        }
        self.people.iter().map(|p| p.duration as f64).sum::<f64>() / self.people.len() as f64 / 1e9
    }

    pub fn median_presence(&self) -> f64 {
        let mut d: Vec<u64> = self.people.iter().map(|p| p.duration).collect();
        d.sort_unstable();
        match d.len() {
            0 => 0.0,
            n if n % 2 == 1 => d[n / 2] as f64 / 1e9,
            n => (d[n / 2 - 1] + d[n / 2]) as f64 / 2e9,
        }
    }

    /// Share of all person-time in each emotion.
    pub fn emotion_share(&self) -> [f64; 7] {
        let mut total = [0.0; 7];
        for p in &self.people {
            if let Some(s) = p.emotion_share {
                for (t, v) in total.iter_mut().zip(s) {
                    *t += v * p.duration as f64;
                }
            }
        }
        let sum: f64 = total.iter().sum();
        if sum > 0.0 {
            total.map(|t| t / sum)
        } else {
            total
        }
    }

    /// The per-person table as CSV (quoted where a field needs it, as RFC 4180 says).
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> = [
            "id",
            "visitor",
            "first_seen_s",
            "last_seen_s",
            "time_present_s",
            "frames",
            "dominant_emotion",
        ]
        .map(String::from)
        .to_vec();
        header.extend(EMOTIONS.map(|e| format!("{e}_share")));
        header.extend(["gender", "gender_confidence", "age", "first_seen_utc", "last_seen_utc"].map(String::from));
        header.extend(self.zones.iter().map(|z| format!("zone_{}_s", z.name)));
        let _ = w.write_record(&header);
        let opt = |v: Option<f64>, digits: usize| v.map(|v| format!("{v:.digits$}")).unwrap_or_default();
        for p in &self.people {
            let mut row = vec![
                p.id.to_string(),
                p.visitor.map(|v| v.to_string()).unwrap_or_default(),
                format!("{:.3}", p.first as f64 / 1e9),
                format!("{:.3}", p.last as f64 / 1e9),
                format!("{:.3}", p.duration as f64 / 1e9),
                p.frames.to_string(),
                p.dominant().map(|i| EMOTIONS[i]).unwrap_or("").to_string(),
            ];
            row.extend((0..7).map(|i| opt(p.emotion_share.map(|sh| sh[i]), 3)));
            row.push(p.gender.clone().unwrap_or_default());
            row.push(opt(p.gender_confidence, 3));
            row.push(opt(p.age, 1));
            let utc = |ts: u64| {
                self.wall
                    .and_then(|w| u64::try_from(ts as i128 + w).ok())
                    .map(crate::schema::utc)
            };
            row.push(utc(p.first).unwrap_or_default());
            row.push(utc(p.last).unwrap_or_default());
            for z in &self.zones {
                row.push(format!("{:.3}", p.zones.get(&z.name).copied().unwrap_or(0.0)));
            }
            let _ = w.write_record(&row);
        }
        // Writing into memory cannot fail.
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// The per-visitor table as CSV: one row per visitor, their visits added up.
    pub fn visitors_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> = [
            "visitor",
            "visits",
            "first_seen_s",
            "last_seen_s",
            "time_present_s",
            "dominant_emotion",
        ]
        .map(String::from)
        .to_vec();
        header.extend(EMOTIONS.map(|e| format!("{e}_share")));
        header.extend(["gender", "gender_confidence", "age", "first_seen_utc", "last_seen_utc"].map(String::from));
        header.extend(self.zones.iter().map(|z| format!("zone_{}_s", z.name)));
        let _ = w.write_record(&header);
        let opt = |v: Option<f64>, digits: usize| v.map(|v| format!("{v:.digits$}")).unwrap_or_default();
        let utc = |ts: u64| {
            self.wall
                .and_then(|w| u64::try_from(ts as i128 + w).ok())
                .map(crate::schema::utc)
                .unwrap_or_default()
        };
        for v in self.visitors() {
            let mut row = vec![
                v.id.map(|i| i.to_string()).unwrap_or_default(),
                v.visits.to_string(),
                format!("{:.3}", v.first as f64 / 1e9),
                format!("{:.3}", v.last as f64 / 1e9),
                format!("{:.3}", v.duration as f64 / 1e9),
                v.dominant().map(|i| EMOTIONS[i]).unwrap_or("").to_string(),
            ];
            row.extend((0..7).map(|i| opt(v.emotion_share.map(|sh| sh[i]), 3)));
            row.push(v.gender.clone().unwrap_or_default());
            row.push(opt(v.gender_confidence, 3));
            row.push(opt(v.age, 1));
            row.push(utc(v.first));
            row.push(utc(v.last));
            for z in &self.zones {
                row.push(format!("{:.3}", v.zones.get(&z.name).copied().unwrap_or(0.0)));
            }
            let _ = w.write_record(&row);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// Writes `people.csv` (one row per visit), `visitors.csv`, `report.html` and `emotions.png`
    /// into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
        std::fs::create_dir_all(dir).map_err(|e| ReportError::Write {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        charts::fonts()?;
        let put = |name: &str, data: &[u8]| -> Result<PathBuf, ReportError> {
            let p = dir.join(name);
            std::fs::write(&p, data).map_err(|e| ReportError::Write {
                path: p.clone(),
                reason: e.to_string(),
            })?;
            Ok(p)
        };
        let csv = put("people.csv", self.csv().as_bytes())?;
        let visitors = put("visitors.csv", self.visitors_csv().as_bytes())?;
        let html = put("report.html", html::page(self)?.as_bytes())?;
        let png = dir.join("emotions.png");
        charts::emotion_timeline_png(self, &png)?;
        Ok(vec![csv, visitors, html, png])
    }

    /// A few lines a terminal can show.
    pub fn summary(&self) -> String {
        let share = self.emotion_share();
        let mut top: Vec<(usize, f64)> = share.iter().copied().enumerate().filter(|(_, v)| *v > 0.0).collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = top
            .iter()
            .take(3)
            .map(|(i, v)| format!("{} {:.0}%", EMOTIONS[*i], v * 100.0))
            .collect();
        let busiest = self
            .busiest_hour()
            .map(|(h, n)| {
                format!(
                    "; busiest hour {h:02}:00-{:02}:00 ({})",
                    (h + 1) % 24,
                    counted(n as usize, "person", "people")
                )
            })
            .unwrap_or_default();
        let emotions = if top.is_empty() { "none".into() } else { top.join(", ") };
        let zones: Vec<String> = (0..self.zones.len())
            .map(|z| {
                let t = self.zone_times(z);
                let mean = t.iter().sum::<f64>() / t.len().max(1) as f64;
                format!(
                    "{} {} in, mean {mean:.1} s",
                    self.zones[z].name,
                    self.zones[z].entered.len()
                )
            })
            .collect();
        let busiest = if zones.is_empty() {
            busiest
        } else {
            format!("{busiest}; zones: {}", zones.join(", "))
        };
        let footage = (self.end - self.start) as f64 / 1e9;
        if self.recognised() {
            let visitors = self.visitors();
            let returning = visitors.iter().filter(|v| v.visits > 1).count();
            let mean = visitors.iter().map(|v| v.duration as f64).sum::<f64>() / visitors.len().max(1) as f64 / 1e9;
            let n = counted;
            return format!(
                "{} ({returning} came back) in {} over {footage:.1} s of footage ({} frames with faces); \
                 time per visitor mean {mean:.1} s, per visit mean {:.1} s, median {:.1} s; emotions of all \
                 person-time: {emotions}{busiest}",
                n(visitors.len(), "visitor", "visitors"),
                n(visitors.iter().map(|v| v.visits as usize).sum(), "visit", "visits"),
                self.frames,
                self.mean_presence(),
                self.median_presence(),
            );
        }
        format!(
            "{} over {footage:.1} s of footage ({} frames with faces); time present mean {:.1} s, median {:.1} s; \
             emotions of all person-time: {emotions}{busiest}",
            counted(self.people.len(), "person", "people"),
            self.frames,
            self.mean_presence(),
            self.median_presence(),
        )
    }
}

/// `k` and the noun for that many.
fn counted(k: usize, one: &str, many: &str) -> String {
    format!("{k} {}", if k == 1 { one } else { many })
}

/// The median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut d = v.to_vec();
    d.sort_by(|a, b| a.total_cmp(b));
    match d.len() {
        0 => 0.0,
        n if n % 2 == 1 => d[n / 2],
        n => (d[n / 2 - 1] + d[n / 2]) / 2.0,
    }
}

/// Seconds as `m:ss.s`.
pub fn clock(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    format!("{}:{:04.1}", (s / 60.0).floor() as u64, s % 60.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<Record> {
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn people_come_from_their_last_event_and_totals_add_up() {
        let r = Report::from_records(lines(
            r#"{"objects":[{"emotion":{"label":"happy"}}],"timestamp":0}
{"event":{"type":"appeared","id":1,"first":0,"last":0,"duration":0,"frames":1},"timestamp":0}
{"objects":[{"emotion":{"label":"happy"}},{"emotion":{"label":"sad"}}],"timestamp":1000000000}
{"event":{"type":"appeared","id":2,"first":1000000000,"duration":0,"frames":1},"timestamp":1000000000}
{"event":{"type":"left","id":1,"first":0,"last":1000000000,"duration":2000000000,"frames":2,"emotion_share":{"happy":1.0},"gender":"female","age":30.0},"timestamp":1000000000}
{"event":{"type":"left","id":2,"first":1000000000,"last":1000000000,"duration":1000000000,"frames":1,"emotion_share":{"sad":0.5,"neutral":0.5},"gender":"male"},"timestamp":1000000000}"#,
        ));
        assert_eq!((r.frames, r.faces), (2, 3));
        assert_eq!(r.people.len(), 2);
        assert_eq!(r.people[0].dominant(), Some(3));
        assert_eq!(r.mean_presence(), 1.5);
        assert_eq!(r.median_presence(), 1.5);
        let share = r.emotion_share();
        assert!((share[3] - 2.0 / 3.0).abs() < 1e-9 && (share[4] - 1.0 / 6.0).abs() < 1e-9);
        let csv = r.csv();
        assert_eq!(csv.lines().count(), 3);
        assert!(
            csv.lines().nth(1).unwrap().starts_with("1,,0.000,1.000,2.000,2,happy,"),
            "{csv}"
        );
        let counted: u64 = r.timeline.iter().map(|b| b.counts.iter().sum::<u64>()).sum();
        assert_eq!(counted, 3);
        assert!(r.summary().starts_with("2 people"));
    }

    #[test]
    fn one_person_is_not_one_people() {
        let r = Report::from_records(lines(
            r#"{"objects":[],"timestamp":0,"utc":"2026-12-01T09:50:00.000Z"}
{"event":{"type":"left","id":1,"first":0,"last":1000000000,"duration":1000000000,"frames":2},"timestamp":1000000000}"#,
        ));
        let summary = r.summary();
        assert!(summary.starts_with("1 person over"), "{summary}");
        assert!(summary.ends_with("(1 person)"), "{summary}");
    }

    #[test]
    fn with_the_time_of_day_people_have_clock_times_and_hours() {
        // 09:50:00Z to 10:10:00Z for one person, 10:30 for another.
        let r = Report::from_records(lines(
            r#"{"objects":[],"timestamp":0,"utc":"2026-12-01T09:50:00.000Z"}
{"event":{"type":"left","id":1,"first":0,"last":1200000000000,"duration":1200000000000,"frames":2},"timestamp":1200000000000}
{"event":{"type":"left","id":2,"first":2400000000000,"last":2400000000000,"duration":1000000000,"frames":1},"timestamp":2400000000000}"#,
        ));
        assert_eq!(r.wall, Some(1_796_118_600_000_000_000));
        let csv = r.csv();
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .ends_with(",2026-12-01T09:50:00.000Z,2026-12-01T10:10:00.000Z"),
            "{csv}"
        );
        let hours = r.by_hour().unwrap();
        assert_eq!(
            hours.iter().sum::<u32>(),
            3,
            "the first in two hours, the second in one: {hours:?}"
        );
        let local = |ts| r.local_time(ts).unwrap();
        use chrono::Timelike;
        assert_eq!(hours[local(0).hour() as usize], 1);
        assert_eq!(hours[local(2_400_000_000_000).hour() as usize], 2);
        assert_eq!(r.busiest_hour().map(|b| b.1), Some(2));
        assert!(r.summary().contains("busiest hour"));
        assert!(r.summary().ends_with("(2 people)"), "{}", r.summary());
        assert_eq!(r.when(0), local(0).format("%H:%M:%S").to_string());
        // Without it: positions in the recording.
        let plain = Report::from_records(lines(r#"{"objects":[],"timestamp":0}"#));
        assert!(plain.by_hour().is_none() && plain.when(61_500_000_000) == "1:01.5");
    }

    #[test]
    fn visits_of_one_visitor_add_up() {
        let r = Report::from_records(lines(
            r#"{"event":{"type":"left","id":1,"first":0,"last":1000000000,"duration":2000000000,"frames":2,"emotion_share":{"happy":1.0},"gender":"female","age":30.0,"visitor":1,"visit":1,"returning":false},"timestamp":1000000000}
{"event":{"type":"left","id":2,"first":1000000000,"last":2000000000,"duration":1000000000,"frames":1,"emotion_share":{"sad":1.0},"gender":"male","visitor":2,"visit":1,"returning":false},"timestamp":2000000000}
{"event":{"type":"left","id":4,"first":2500000000,"last":3000000000,"duration":500000000,"frames":1,"emotion_share":{"sad":1.0},"gender":"male","visitor":2,"visit":1,"returning":false},"timestamp":3000000000}
{"event":{"type":"left","id":3,"first":5000000000,"last":6000000000,"duration":2000000000,"frames":2,"emotion_share":{"sad":1.0},"gender":"female","age":32.0,"visitor":1,"visit":2,"returning":true},"timestamp":6000000000}"#,
        ));
        assert!(r.recognised());
        let v = r.visitors();
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[0].id, v[0].visits, v[0].first, v[0].last, v[0].duration),
            (Some(1), 2, 0, 6_000_000_000, 4_000_000_000)
        );
        let share = v[0].emotion_share.unwrap();
        assert!((share[3] - 0.5).abs() < 1e-9 && (share[4] - 0.5).abs() < 1e-9);
        assert_eq!((v[0].gender.as_deref(), v[0].age), (Some("female"), Some(32.0)));
        // Visitor 2's one visit in two tracks is one visit.
        assert_eq!((v[1].visits, v[1].duration), (1, 1_500_000_000));
        let csv = r.visitors_csv();
        assert_eq!(csv.lines().count(), 3);
        assert!(
            csv.lines().nth(1).unwrap().starts_with("1,2,0.000,6.000,4.000,"),
            "{csv}"
        );
        assert!(
            r.csv().lines().nth(4).unwrap().starts_with("3,1,"),
            "people.csv names the visitor"
        );
        assert!(
            r.summary().starts_with("2 visitors (1 came back) in 3 visits"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn csv_quotes_what_would_break_a_row() {
        let r = Report::from_records(lines(
            r#"{"event":{"type":"left","id":1,"first":0,"last":1,"duration":1,"frames":1,"gender":"fe,\"male\""},"timestamp":1}"#,
        ));
        let csv = r.csv();
        let mut rows = csv::Reader::from_reader(csv.as_bytes());
        let row = rows.records().next().unwrap().unwrap();
        assert_eq!(row.len(), 19, "{csv}");
        assert_eq!(&row[14], "fe,\"male\"");
    }
}
