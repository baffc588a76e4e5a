//! Zones: named polygons of the frame (the till, the door), which faces enter and leave, and
//! how long each person spends in each.
//!
//! A face is in a zone when the centre of its box is inside the polygon (a face has no feet, so
//! not the bottom-centre point that person detectors use). It counts as having entered (or
//! left) once it has been inside (or outside) for `inertia` frames in a row, so that a box
//! jittering on an edge does not flap; the event then carries the first of those frames.
//!
//! GStreamer-free: the element parses the `zones` property with [`parse`] and the stream keeps
//! a [`Presence`] of its tracks.

use std::collections::HashMap;
use std::sync::Arc;

use crate::face::{Face, FrameTime};

/// Zones a set may have: a face's zones are a bit set, and a person's times a fixed array.
pub const MAX_ZONES: usize = 32;

/// Frames a face must be inside (outside) before it has entered (left), as Frigate's default.
pub const DEFAULT_INERTIA: u32 = 3;

/// A zone: its name and polygon, in fractions of the frame (0..1).
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub name: Arc<str>,
    pub points: Vec<(f32, f32)>,
    /// The polygon's bounding box, to pass over most faces with four comparisons.
    bounds: (f32, f32, f32, f32),
}

impl Zone {
    /// Whether the point (fractions of the frame) is inside (even-odd rule; a point on the
    /// boundary may go either way, as with any such test).
    pub fn contains(&self, x: f32, y: f32) -> bool {
        let (x0, y0, x1, y1) = self.bounds;
        if !(x >= x0 && x <= x1 && y >= y0 && y <= y1) {
            return false;
        }
        let mut inside = false;
        let n = self.points.len();
        let mut j = n - 1;
        for i in 0..n {
            let (xi, yi) = self.points[i];
            let (xj, yj) = self.points[j];
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    }
}

/// The zones of a stream, as the `zones` property gives them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZoneSet {
    pub zones: Vec<Zone>,
}

impl ZoneSet {
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn name(&self, i: usize) -> Option<&str> {
        self.zones.get(i).map(|z| &*z.name)
    }

    /// The zones the centre of `face`'s box is in on a `width` x `height` frame, as bits.
    pub fn containing(&self, face: &Face, width: f32, height: f32) -> u32 {
        let (cx, cy) = face.bbox().center();
        let (x, y) = (cx / width.max(1.0), cy / height.max(1.0));
        let mut bits = 0;
        for (i, z) in self.zones.iter().enumerate() {
            if z.contains(x, y) {
                bits |= 1 << i;
            }
        }
        bits
    }
}

/// What is wrong with a `zones` string: where (the zone, by number and name when it has one,
/// and the character position in the string) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("zones: {zone}, at character {position}: {reason}")]
pub struct ZoneError {
    /// "zone 2 (door)" or "zone 2".
    pub zone: String,
    /// Character position (from 1) in the whole string.
    pub position: usize,
    pub reason: String,
}

/// Parses `name:x,y x,y x,y ...;name2:...` (coordinates as fractions of the frame, 0..1).
/// Blank text is no zones.
pub fn parse(text: &str) -> Result<ZoneSet, ZoneError> {
    let mut zones: Vec<Zone> = Vec::new();
    let mut offset = 0;
    let parts: Vec<&str> = text.split(';').collect();
    for (k, part) in parts.iter().enumerate() {
        let start = offset;
        offset += part.chars().count() + 1;
        if part.trim().is_empty() {
            // A trailing `;` (or a blank string) is no zone; an empty one between two is.
            if k + 1 == parts.len() || parts.iter().all(|p| p.trim().is_empty()) {
                continue;
            }
        }
        let number = zones.len() + 1;
        let err = |name: &str, at: usize, reason: String| ZoneError {
            zone: if name.is_empty() {
                format!("zone {number}")
            } else {
                format!("zone {number} ({name})")
            },
            position: start + at + 1,
            reason,
        };
        let Some(colon) = part.find(':') else {
            return Err(err(
                "",
                0,
                format!(
                    "{:?} has no ':' between the name and the points (name:x,y x,y x,y)",
                    part.trim()
                ),
            ));
        };
        let name = part[..colon].trim();
        if name.is_empty() {
            return Err(err("", 0, "the zone has no name before ':'".into()));
        }
        // Names become field names of the left event's `zones` structure, CSV columns
        // (zone_<name>_s) and JSON keys: a letter, then letters, digits, '_', '.' or '-'.
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(err(
                name,
                0,
                format!("the name {name:?} must start with a letter (a-z, A-Z)"),
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(err(
                name,
                0,
                format!("the name may not hold {c:?} (letters, digits, '_', '.' and '-' only)"),
            ));
        }
        if zones.iter().any(|z| &*z.name == name) {
            return Err(err(name, 0, format!("the name {name:?} is given to two zones")));
        }
        let body = &part[colon + 1..];
        let body_at = part[..colon + 1].chars().count();
        let mut points = Vec::new();
        let mut pos = body_at;
        // Points apart by any white space (a tab or a line break in a file of zones too).
        for token in body.split(char::is_whitespace) {
            let at = pos;
            pos += token.chars().count() + 1;
            if token.is_empty() {
                continue;
            }
            let p = points.len() + 1;
            let Some((xs, ys)) = token.split_once(',') else {
                return Err(err(name, at, format!("point {p} {token:?} is not x,y")));
            };
            let coord = |s: &str, axis: &str| -> Result<f32, ZoneError> {
                let v: f32 = s
                    .parse()
                    .map_err(|_| err(name, at, format!("point {p}: {axis} {s:?} is not a number")))?;
                if !v.is_finite() || !(0.0..=1.0).contains(&v) {
                    return Err(err(
                        name,
                        at,
                        format!("point {p}: {axis} {s} is outside 0..1 (coordinates are fractions of the frame)"),
                    ));
                }
                Ok(v)
            };
            points.push((coord(xs, "x")?, coord(ys, "y")?));
        }
        if points.len() < 3 {
            return Err(err(
                name,
                body_at,
                format!("{} point(s); a zone needs at least 3", points.len()),
            ));
        }
        let area = shoelace(&points);
        if area.abs() < 1e-9 {
            return Err(err(
                name,
                body_at,
                "the polygon has no area (its points are on one line)".into(),
            ));
        }
        if let Some((a, b)) = crossing(&points) {
            return Err(err(
                name,
                body_at,
                format!("edges {a} and {b} cross: give the points in order around the zone"),
            ));
        }
        if zones.len() >= MAX_ZONES {
            return Err(err(name, 0, format!("at most {MAX_ZONES} zones")));
        }
        let bounds = points.iter().fold((1.0f32, 1.0f32, 0.0f32, 0.0f32), |b, &(x, y)| {
            (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y))
        });
        zones.push(Zone {
            name: name.into(),
            points,
            bounds,
        });
    }
    Ok(ZoneSet { zones })
}

/// Twice the signed area.
fn shoelace(p: &[(f32, f32)]) -> f64 {
    let n = p.len();
    (0..n)
        .map(|i| {
            let (a, b) = (p[i], p[(i + 1) % n]);
            a.0 as f64 * b.1 as f64 - b.0 as f64 * a.1 as f64
        })
        .sum()
}

/// Two edges (numbered from 1, edge k from point k to the next) that cross, if any: such a
/// "polygon" is two zones folded into one and its inside is not what its author meant.
fn crossing(p: &[(f32, f32)]) -> Option<(usize, usize)> {
    let n = p.len();
    let orient = |a: (f32, f32), b: (f32, f32), c: (f32, f32)| {
        let v = (b.0 as f64 - a.0 as f64) * (c.1 as f64 - a.1 as f64)
            - (b.1 as f64 - a.1 as f64) * (c.0 as f64 - a.0 as f64);
        if v > 1e-12 {
            1
        } else if v < -1e-12 {
            -1
        } else {
            0
        }
    };
    for i in 0..n {
        for j in i + 1..n {
            // Neighbouring edges share a point and do not count.
            if j == i + 1 || (i == 0 && j == n - 1) {
                continue;
            }
            let (a, b, c, d) = (p[i], p[(i + 1) % n], p[j], p[(j + 1) % n]);
            let (o1, o2, o3, o4) = (orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b));
            if o1 * o2 < 0 && o3 * o4 < 0 {
                return Some((i + 1, j + 1));
            }
        }
    }
    None
}

/// A face entering or leaving a zone.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneChange {
    pub zone: Arc<str>,
    pub entered: bool,
    /// The first frame inside (entered) or outside (exited): stream and running time.
    pub ts: u64,
    pub clock: u64,
    /// On exit, how long (ns) the stay lasted.
    pub stay: Option<u64>,
}

/// Time (ns) a person spent in each zone of the set they were timed against, by zone index.
/// The set travels with the times: the names stay those the times were taken under, whatever
/// the `zones` property is by the time the event is written out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZoneTimes {
    pub ns: [u64; MAX_ZONES],
    pub set: Option<Arc<ZoneSet>>,
}

impl ZoneTimes {
    /// Each zone's name and time.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        let zones = self.set.as_deref().map_or(&[][..], |s| &s.zones[..]);
        zones.iter().zip(self.ns).map(|(z, ns)| (&*z.name, ns))
    }

    pub fn is_empty(&self) -> bool {
        self.set.as_ref().is_none_or(|s| s.is_empty())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct InZone {
    inside: bool,
    /// Frames in a row seen on the other side, and the first of them.
    run: u32,
    run_from: FrameTime,
    /// When the current stay began (valid while inside).
    since: FrameTime,
}

#[derive(Debug, Clone, Copy)]
struct TrackZones {
    zones: [InZone; MAX_ZONES],
    times: [u64; MAX_ZONES],
    /// The last frame the face was seen on: a stay still open at the track's end ends with it.
    last: FrameTime,
}

impl Default for TrackZones {
    fn default() -> Self {
        Self {
            zones: [InZone::default(); MAX_ZONES],
            times: [0; MAX_ZONES],
            last: FrameTime::default(),
        }
    }
}

/// Which zones each track of a stream is in, and how long it was in each.
#[derive(Debug, Default)]
pub struct Presence {
    set: Arc<ZoneSet>,
    tracks: HashMap<u64, TrackZones>,
    /// Tracks not seen on the frame being updated (scratch).
    gone: Vec<u64>,
}

impl Presence {
    pub fn set(&self) -> &Arc<ZoneSet> {
        &self.set
    }

    /// New zones: stays in zones that are gone (by name) end at `now`, with an exit in `out`
    /// (track id, change); zones kept by name keep their stays and times.
    pub fn replace(&mut self, set: Arc<ZoneSet>, out: &mut Vec<(u64, ZoneChange)>) {
        if Arc::ptr_eq(&set, &self.set) {
            return;
        }
        let old = std::mem::replace(&mut self.set, set);
        for (&id, t) in self.tracks.iter_mut() {
            let mut next = TrackZones {
                last: t.last,
                ..TrackZones::default()
            };
            for (i, z) in old.zones.iter().enumerate() {
                match self.set.zones.iter().position(|n| n.name == z.name) {
                    Some(k) => {
                        next.zones[k] = t.zones[i];
                        next.times[k] = t.times[i];
                    }
                    None if t.zones[i].inside => {
                        let end = t.last.clock + t.last.duration;
                        let stay = end.saturating_sub(t.zones[i].since.clock);
                        out.push((
                            id,
                            ZoneChange {
                                zone: z.name.clone(),
                                entered: false,
                                ts: t.last.ts,
                                clock: t.last.clock,
                                stay: Some(stay),
                            },
                        ));
                    }
                    None => {}
                }
            }
            *t = next;
        }
    }

    /// A frame's faces (those reported: seen, or carried between detector runs), on a `width`
    /// x `height` frame at `now`: each face's zones are set, and each entry or exit that the
    /// inertia lets through goes to `out`. Faces not on the frame keep their zones.
    pub fn update(
        &mut self,
        faces: &mut [Face],
        width: f32,
        height: f32,
        now: FrameTime,
        inertia: u32,
        out: &mut Vec<(u64, ZoneChange)>,
    ) {
        let n = self.set.len();
        if n == 0 {
            for f in faces.iter_mut() {
                f.zones = 0;
            }
            return;
        }
        let inertia = inertia.max(1);
        for f in faces.iter_mut() {
            if f.id == 0 {
                continue;
            }
            let observed = self.set.containing(f, width, height);
            let t = self.tracks.entry(f.id).or_default();
            t.last = now;
            let mut bits = 0;
            for (i, z) in t.zones.iter_mut().enumerate().take(n) {
                let seen_inside = observed & (1 << i) != 0;
                if seen_inside == z.inside {
                    z.run = 0;
                } else {
                    if z.run == 0 {
                        z.run_from = now;
                    }
                    z.run += 1;
                    if z.run >= inertia {
                        z.inside = seen_inside;
                        z.run = 0;
                        let at = z.run_from;
                        let stay = if seen_inside {
                            z.since = at;
                            None
                        } else {
                            let s = at.clock.saturating_sub(z.since.clock);
                            t.times[i] += s;
                            Some(s)
                        };
                        out.push((
                            f.id,
                            ZoneChange {
                                zone: self.set.zones[i].name.clone(),
                                entered: seen_inside,
                                ts: at.ts,
                                clock: at.clock,
                                stay,
                            },
                        ));
                    }
                }
                if z.inside {
                    bits |= 1 << i;
                }
            }
            f.zones = bits;
        }
    }

    /// Track `id` ended: its open stays end with the end of its last frame (exits in `out`,
    /// stamped with that frame, as the track's `left` event is), and its time in each zone is
    /// returned.
    pub fn end(&mut self, id: u64, out: &mut Vec<(u64, ZoneChange)>) -> ZoneTimes {
        let mut times = ZoneTimes {
            set: Some(self.set.clone()),
            ..ZoneTimes::default()
        };
        let Some(mut t) = self.tracks.remove(&id) else {
            return times;
        };
        let end = t.last.clock + t.last.duration;
        for (i, z) in t.zones.iter().enumerate().take(self.set.len()) {
            if z.inside {
                let stay = end.saturating_sub(z.since.clock);
                t.times[i] += stay;
                out.push((
                    id,
                    ZoneChange {
                        zone: self.set.zones[i].name.clone(),
                        entered: false,
                        ts: t.last.ts,
                        clock: t.last.clock,
                        stay: Some(stay),
                    },
                ));
            }
        }
        times.ns = t.times;
        times
    }

    /// Ids of the tracks followed (for ending those the tracker no longer has).
    pub fn tracks_into(&mut self, out: &mut Vec<u64>) {
        out.clear();
        out.extend(self.tracks.keys().copied());
    }

    /// Scratch list of ids, lent for [`tracks_into`](Self::tracks_into).
    pub fn take_scratch(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.gone)
    }

    pub fn give_scratch(&mut self, v: Vec<u64>) {
        self.gone = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::{BBox, Detection};

    fn face(id: u64, cx: f32, cy: f32) -> Face {
        let mut f = Face::new(Detection {
            bbox: BBox {
                x1: cx - 10.0,
                y1: cy - 10.0,
                x2: cx + 10.0,
                y2: cy + 10.0,
            },
            score: 0.9,
            ..Default::default()
        });
        f.id = id;
        f
    }

    fn at(k: u64) -> FrameTime {
        FrameTime {
            ts: k * 40_000_000,
            clock: k * 40_000_000,
            duration: 40_000_000,
        }
    }

    #[test]
    fn parses_the_documented_example_and_tests_points() {
        let z = parse("till:0.6,0.5 1,0.5 1,1 0.6,1;door:0,0 0.2,0 0.2,1 0,1").unwrap();
        assert_eq!(z.len(), 2);
        assert_eq!(z.name(0), Some("till"));
        assert!(z.zones[0].contains(0.8, 0.75) && !z.zones[0].contains(0.5, 0.75));
        assert!(z.zones[1].contains(0.1, 0.5) && !z.zones[1].contains(0.3, 0.5));
        // A concave zone (an L): its notch is outside.
        let l = parse("l:0,0 0.5,0 0.5,0.5 1,0.5 1,1 0,1").unwrap();
        assert!(l.zones[0].contains(0.25, 0.25) && l.zones[0].contains(0.75, 0.75));
        assert!(!l.zones[0].contains(0.75, 0.25));
        assert!(parse("").unwrap().is_empty() && parse("  ").unwrap().is_empty());
        assert_eq!(parse("a:0,0 1,0 1,1;").unwrap().len(), 1, "a trailing ';'");
    }

    #[test]
    fn bad_zones_name_the_zone_and_the_position() {
        let e = |s: &str| parse(s).unwrap_err().to_string();
        let msg = e("till:0.6,0.5 1,0.5 1,1;door:0,0 0.2,x 0.2,1");
        assert!(
            msg.contains("zone 2 (door)") && msg.contains("y \"x\" is not a number"),
            "{msg}"
        );
        assert!(msg.contains("at character 33"), "{msg}");
        assert!(e("a:0,0 1,0").contains("2 point(s); a zone needs at least 3"));
        assert!(e("a:0,0 1.5,0 1,1").contains("x 1.5 is outside 0..1"));
        assert!(e("a:0,0 NaN,0 1,1").contains("outside 0..1") || e("a:0,0 NaN,0 1,1").contains("not a number"));
        assert!(e("a:0,0 1,0 1,1;a:0,0 1,0 0,1").contains("given to two zones"));
        assert!(e("a:0,0 0.5,0.5 1,1").contains("no area"));
        assert!(e("a:0,0 1,1 1,0.2 0,1").contains("edges 1 and 3 cross"));
        assert!(e("0,0 1,0 1,1").contains("no ':'"));
        assert!(e(":0,0 1,0 1,1").contains("no name"));
        assert!(e("a:0,0 1,0 1,1;;b:0,0 1,0 1,1").contains("zone 2"));
        assert!(e("a:0;0 1,0 1,1").contains("zone"));
        assert!(e("2nd:0,0 1,0 1,1").contains("must start with a letter"));
        assert!(e("till one:0,0 1,0 1,1").contains("may not hold ' '"));
        assert!(e("caisse-é:0,0 1,0 1,1").contains("may not hold 'é'"));
        // Any white space between points; names with '_', '.' and '-'.
        let z = parse("till_2.a-b:0,0\t1,0\n1,1").unwrap();
        assert_eq!((z.name(0), z.zones[0].points.len()), (Some("till_2.a-b"), 3));
    }

    #[test]
    fn inertia_holds_back_a_face_on_the_edge_and_events_carry_the_first_frame() {
        let mut p = Presence::default();
        let mut out = Vec::new();
        p.replace(Arc::new(parse("left:0,0 0.5,0 0.5,1 0,1").unwrap()), &mut out);
        // On a 100x100 frame the edge is x = 50: a face jittering 49/51 never settles.
        for k in 0..20 {
            let x = if k % 2 == 0 { 49.0 } else { 51.0 };
            p.update(&mut [face(1, x, 50.0)], 100.0, 100.0, at(k), 3, &mut out);
        }
        assert!(out.is_empty(), "flapped: {out:?}");
        // Inside for good from frame 20: entered at frame 20, known at frame 22.
        for k in 20..30 {
            let mut f = [face(1, 30.0, 50.0)];
            p.update(&mut f, 100.0, 100.0, at(k), 3, &mut out);
            assert_eq!(f[0].zones, if k >= 22 { 1 } else { 0 }, "frame {k}");
        }
        assert_eq!(out.len(), 1);
        assert!(out[0].1.entered && out[0].1.ts == at(20).ts);
        // Out from frame 30, for three frames: exited at frame 30 after 10 frames inside.
        for k in 30..33 {
            p.update(&mut [face(1, 80.0, 50.0)], 100.0, 100.0, at(k), 3, &mut out);
        }
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[1].1.entered, out[1].1.ts, out[1].1.stay),
            (false, at(30).ts, Some(10 * 40_000_000))
        );
        let times = p.end(1, &mut out);
        assert_eq!(times.ns[0], 10 * 40_000_000);
        assert_eq!(out.len(), 2, "nothing open at the end");
    }

    #[test]
    fn a_track_that_ends_inside_exits_and_zones_replaced_keep_their_names() {
        let mut p = Presence::default();
        let mut out = Vec::new();
        p.replace(
            Arc::new(parse("a:0,0 1,0 1,1 0,1;b:0,0 0.5,0 0.5,0.5").unwrap()),
            &mut out,
        );
        for k in 0..5 {
            p.update(&mut [face(7, 20.0, 10.0)], 100.0, 100.0, at(k), 1, &mut out);
        }
        assert_eq!(out.len(), 2, "in both: {out:?}");
        // b goes, a stays (named the same, another shape); the stay in b ends now.
        p.replace(Arc::new(parse("c:0,0 0.1,0 0.1,0.1;a:0,0 1,0 1,1").unwrap()), &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(
            (&*out[2].1.zone, out[2].1.entered, out[2].1.stay),
            ("b", false, Some(5 * 40_000_000))
        );
        p.update(&mut [face(7, 90.0, 20.0)], 100.0, 100.0, at(5), 1, &mut out);
        let times = p.end(7, &mut out);
        let names: Vec<&str> = times.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["c", "a"], "the times name the set they were taken under");
        assert_eq!(
            times.ns[1],
            6 * 40_000_000,
            "a, kept across the change, until the end of the last frame"
        );
        assert_eq!(out.last().map(|c| (&*c.1.zone, c.1.entered)), Some(("a", false)));
    }
}
