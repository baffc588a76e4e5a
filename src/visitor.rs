//! Visitors, not face tracks: a stream's gallery of the people seen in the last `reid-window`
//! seconds, each kept as the descriptors of their latest visits, so that a person who turned
//! away, or walked behind someone, for longer than the track timeout is known again.
//!
//! A track gets its visitor when it counts as a person: the descriptor of that view is compared
//! with every visitor not on the frame at that moment (one person is not two faces at once), and
//! the closest below the threshold is the one it is; otherwise it is a new visitor. Later, better
//! views of the track (larger, more frontal) are averaged into its descriptor and kept for the
//! visitor's next return.
//!
//! Privacy: the descriptors live here and nowhere else (no metadata, message, record or file
//! carries them); a visitor is forgotten once the window has passed since their last visit, and
//! the whole gallery at a flush and at the end of the stream.

use std::collections::HashMap;

use crate::descriptor;
use crate::face::BBox;
use crate::person::Evidence;

/// Visitors a gallery holds at most: the oldest gone are forgotten first. Each takes at most
/// [`VIEWS_PER_VISITOR`] descriptors of a kilobyte (1024 values in 8 bits).
pub const MAX_VISITORS: usize = 2000;

/// Descriptors kept per visitor: one per visit (the average of that visit's views), the latest.
pub const VIEWS_PER_VISITOR: usize = 4;

/// Views of one track averaged into its descriptor.
pub const VIEWS_PER_TRACK: u32 = 3;

/// Time between two views of a track: views a frame apart are the same picture twice.
pub const VIEW_SPACING_NS: u64 = 1_000_000_000;

/// A later view of a track is another picture of the face only if the face moved or changed
/// size by this share of its side since the last view, or the view is this much better: a
/// person standing still gives the same picture a second later, and its descriptor adds nothing.
pub const NEW_VIEW_SHARE: f32 = 0.1;

/// One view of a face: where it is, and what it is worth for a descriptor
/// ([`descriptor::view_quality`]).
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub bbox: BBox,
    pub quality: f32,
}

impl View {
    /// A detected face's view.
    pub fn of(d: &crate::face::Detection) -> Self {
        Self {
            bbox: d.bbox,
            quality: descriptor::view_quality(d),
        }
    }

    fn side(&self) -> f32 {
        self.bbox.side()
    }

    /// Whether this view shows the face otherwise than `then` did (see [`NEW_VIEW_SHARE`]).
    fn differs_from(&self, then: &View) -> bool {
        let (a, b) = (self.bbox.as_array(), then.bbox.as_array());
        let limit = NEW_VIEW_SHARE * then.side().max(1.0);
        a.iter().zip(b).any(|(x, y)| (x - y).abs() >= limit) || self.quality >= then.quality * (1.0 + NEW_VIEW_SHARE)
    }
}

/// Faces smaller than this (larger side, pixels) give no descriptor: below it the descriptors
/// of one person scatter as far as those of two (models/README.md).
pub const MIN_SIDE: f32 = 40.0;

/// What the gallery is asked to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReidSettings {
    /// How long (running time, ns) a visitor is remembered after their last visit; 0: no
    /// recognition at all.
    pub window: u64,
    /// Cosine distance below which two descriptors are one person.
    pub threshold: f32,
}

/// The default threshold, from the table of same-person and different-person distances in the
/// README.
pub const DEFAULT_THRESHOLD: f32 = 0.30;
pub const DEFAULT_WINDOW_NS: u64 = 600 * 1_000_000_000;

impl Default for ReidSettings {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW_NS,
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

impl ReidSettings {
    pub fn is_on(&self) -> bool {
        self.window > 0
    }
}

/// A descriptor in 8 bits: `values[i] * scale` is the original. A visitor's four take 4 KB.
#[derive(Clone)]
struct Stored {
    scale: f32,
    values: Box<[i8]>,
    /// The track (visit) it was averaged from, so that a better view of the same visit
    /// replaces it rather than crowding the visitor's other visits out.
    track: u64,
}

// A descriptor is never printed, not even in a debug log.
impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stored {{ track: {}, {} values }}", self.track, self.values.len())
    }
}

impl Stored {
    fn new(d: &[f32], track: u64) -> Self {
        let mut s = Self {
            scale: 1.0,
            values: vec![0; d.len()].into_boxed_slice(),
            track,
        };
        s.write(d, track);
        s
    }

    /// Stores `d` in place of what was here (in its room, when the size is the same).
    fn write(&mut self, d: &[f32], track: u64) {
        let max = d.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        self.scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        if self.values.len() != d.len() {
            self.values = vec![0; d.len()].into_boxed_slice();
        }
        for (q, x) in self.values.iter_mut().zip(d) {
            *q = (x / self.scale).round().clamp(-127.0, 127.0) as i8;
        }
        self.track = track;
    }

    fn distance(&self, d: &[f32]) -> f32 {
        let dot: f32 = self.values.iter().zip(d).map(|(&q, x)| q as f32 * x).sum();
        1.0 - dot * self.scale
    }
}

#[derive(Debug)]
struct Visitor {
    id: u64,
    visits: u32,
    /// Tracks of this visitor not ended yet: an open visitor is never forgotten.
    open: u32,
    /// Running time (ns) of the end of their latest visit, or of its start while open.
    last_seen: u64,
    views: Vec<Stored>,
    /// Gender and age answers of their ended visits.
    evidence: Evidence,
}

/// Who a track is: its visitor, which visit of theirs it is (1, 2, ...), and the earlier visits'
/// evidence to start the person's estimates from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Identity {
    pub visitor: u64,
    pub visit: u32,
    /// Distance to the visitor's closest descriptor, when they were recognised.
    pub distance: Option<f32>,
    pub prior: Evidence,
    /// Recognised while their last visit was still open: that visit goes on.
    pub continued: bool,
}

impl Identity {
    pub fn returning(&self) -> bool {
        self.visit > 1
    }
}

/// The visitors of one stream.
#[derive(Debug)]
pub struct Gallery {
    visitors: Vec<Visitor>,
    next_id: u64,
    capacity: usize,
    /// Visitors forgotten to make room (not for their window), since the start.
    evicted: u64,
}

impl Default for Gallery {
    fn default() -> Self {
        Self::with_capacity(MAX_VISITORS)
    }
}

impl Gallery {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            visitors: Vec::new(),
            next_id: 1,
            capacity: capacity.max(1),
            evicted: 0,
        }
    }

    /// Visitors remembered now.
    pub fn len(&self) -> usize {
        self.visitors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.visitors.is_empty()
    }

    /// Descriptors held now, all visitors together.
    pub fn descriptors(&self) -> usize {
        self.visitors.iter().map(|v| v.views.len()).sum()
    }

    /// Visitors forgotten early to keep within the capacity.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Forgets every visitor (a flush, the end of the stream, or a new descriptor model whose
    /// descriptors the old ones cannot be compared with). Ids keep counting.
    pub fn clear(&mut self) {
        self.visitors.clear();
    }

    /// Forgets the visitors whose window has passed at running time `now`.
    pub fn prune(&mut self, now: u64, window: u64) {
        self.visitors
            .retain(|v| v.open > 0 || now.saturating_sub(v.last_seen) <= window);
    }

    /// Who track `track`, counting as a person at running time `now` with `descriptor` (none
    /// when the face was too small or the model gave none), is: the closest visitor below the
    /// threshold among those not in `present` (visitors on the frame now), else a new one.
    pub fn identify(
        &mut self,
        track: u64,
        descriptor: Option<&[f32]>,
        now: u64,
        settings: &ReidSettings,
        present: &[u64],
    ) -> Identity {
        self.prune(now, settings.window);
        let best = descriptor.and_then(|d| {
            self.visitors
                .iter()
                .enumerate()
                .filter(|(_, v)| !present.contains(&v.id))
                .filter_map(|(i, v)| {
                    let closest = v.views.iter().map(|s| s.distance(d)).reduce(f32::min)?;
                    Some((closest, i))
                })
                .min_by(|a, b| a.0.total_cmp(&b.0))
        });
        let identity = match best {
            Some((distance, i)) if distance < settings.threshold => {
                let v = &mut self.visitors[i];
                // Still open (their track missed, not ended: the tracker lost a face it will
                // soon give up on): the same visit goes on under a new track, not a return.
                let continued = v.open > 0;
                if !continued {
                    v.visits += 1;
                }
                v.open += 1;
                v.last_seen = v.last_seen.max(now);
                Identity {
                    visitor: v.id,
                    visit: v.visits,
                    distance: Some(distance),
                    prior: v.evidence,
                    continued,
                }
            }
            _ => {
                if self.visitors.len() >= self.capacity {
                    self.evict();
                }
                let id = self.next_id;
                self.next_id += 1;
                self.visitors.push(Visitor {
                    id,
                    visits: 1,
                    open: 1,
                    last_seen: now,
                    views: Vec::new(),
                    evidence: Evidence::default(),
                });
                Identity {
                    visitor: id,
                    visit: 1,
                    distance: None,
                    prior: Evidence::default(),
                    continued: false,
                }
            }
        };
        if let Some(d) = descriptor {
            self.keep(identity.visitor, track, d);
        }
        identity
    }

    /// Keeps `descriptor` (track `track`'s, averaged over its views so far) for the visitor:
    /// in place of the one that track gave before, else as its latest visit's.
    pub fn keep(&mut self, visitor: u64, track: u64, descriptor: &[f32]) {
        let Some(v) = self.visitors.iter_mut().find(|v| v.id == visitor) else {
            return;
        };
        // In the room of the one it replaces, so that a visitor's views cost nothing once made.
        if let Some(s) = v.views.iter_mut().find(|s| s.track == track) {
            s.write(descriptor, track);
        } else if v.views.len() >= VIEWS_PER_VISITOR {
            let mut oldest = v.views.remove(0);
            oldest.write(descriptor, track);
            v.views.push(oldest);
        } else {
            v.views.push(Stored::new(descriptor, track));
        }
    }

    /// A visit of `visitor` ended at running time `now`, with the track's own gender and age
    /// evidence.
    pub fn ended(&mut self, visitor: u64, now: u64, evidence: &Evidence) {
        if let Some(v) = self.visitors.iter_mut().find(|v| v.id == visitor) {
            v.open = v.open.saturating_sub(1);
            v.last_seen = v.last_seen.max(now);
            v.evidence.add(evidence);
        }
    }

    /// Forgets every visitor's gender and age evidence (the gender model changed).
    pub fn forget_evidence(&mut self) {
        for v in &mut self.visitors {
            v.evidence = Evidence::default();
        }
    }

    /// Makes room: the visitor gone longest first (one still present only if all are).
    fn evict(&mut self) {
        let oldest = |open: bool| {
            self.visitors
                .iter()
                .enumerate()
                .filter(|(_, v)| (v.open > 0) == open)
                .min_by_key(|(_, v)| v.last_seen)
                .map(|(i, _)| i)
        };
        if let Some(i) = oldest(false).or_else(|| oldest(true)) {
            self.visitors.swap_remove(i);
            self.evicted += 1;
        }
    }
}

/// What a stream knows of each of its tracks' visits: who the track is and its views so far.
pub struct TrackVisit {
    pub identity: Identity,
    /// Views averaged into `sum`, when the latest was taken and where, and the best one's
    /// quality.
    views: u32,
    last_view: u64,
    last: View,
    best_quality: f32,
    sum: Vec<f32>,
}

impl std::fmt::Debug for TrackVisit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrackVisit {{ {:?}, {} views }}", self.identity, self.views)
    }
}

/// The tracks' visits of one stream, beside its gallery.
#[derive(Debug, Default)]
pub struct Visits {
    pub gallery: Gallery,
    tracks: HashMap<u64, TrackVisit>,
    /// A descriptor being averaged, kept to reuse.
    mean: Vec<f32>,
    /// Sums of ended tracks, for the next tracks.
    spare: Vec<Vec<f32>>,
}

impl Visits {
    pub fn get(&self, track: u64) -> Option<&TrackVisit> {
        self.tracks.get(&track)
    }

    /// Whether track `track`, now seen as `view`, is due for another view at running time
    /// `now`: identified, fewer views than [`VIEWS_PER_TRACK`], the last a while ago, this one
    /// at least as good and another picture of the face than the last view described (any, while
    /// the track has none: its first face was too small, or the model gave no answer).
    pub fn view_due(&self, track: u64, view: &View, now: u64) -> bool {
        let Some(t) = self.tracks.get(&track) else {
            return false;
        };
        view.side() >= MIN_SIDE
            && t.views < VIEWS_PER_TRACK
            && now.saturating_sub(t.last_view) >= VIEW_SPACING_NS
            && view.quality >= t.best_quality
            && (t.views == 0 || view.differs_from(&t.last))
    }

    /// Track `track` counts as a person at `now`: identifies it from its first view.
    pub fn begin(
        &mut self,
        track: u64,
        descriptor: Option<&[f32]>,
        view: View,
        now: u64,
        settings: &ReidSettings,
        present: &[u64],
    ) -> Identity {
        let identity = self.gallery.identify(track, descriptor, now, settings, present);
        let mut sum = self.spare.pop().unwrap_or_default();
        sum.clear();
        let views = match descriptor {
            Some(d) => {
                sum.extend_from_slice(d);
                1
            }
            None => 0,
        };
        self.tracks.insert(
            track,
            TrackVisit {
                identity,
                views,
                last_view: now,
                last: view,
                best_quality: if views > 0 { view.quality } else { 0.0 },
                sum,
            },
        );
        identity
    }

    /// Another view of track `track`: averaged into its descriptor, which the visitor keeps.
    pub fn add_view(&mut self, track: u64, descriptor: &[f32], view: View, now: u64) {
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        if t.sum.len() != descriptor.len() {
            t.sum.clear();
            t.sum.resize(descriptor.len(), 0.0);
            t.views = 0;
        }
        for (s, d) in t.sum.iter_mut().zip(descriptor) {
            *s += d;
        }
        t.views += 1;
        t.last_view = now;
        t.last = view;
        t.best_quality = t.best_quality.max(view.quality);
        self.mean.clear();
        self.mean.extend_from_slice(&t.sum);
        if descriptor::normalise(&mut self.mean) {
            self.gallery.keep(t.identity.visitor, track, &self.mean);
        }
        self.mean.iter_mut().for_each(|x| *x = 0.0);
    }

    /// Track `track` ended at `now`: its visitor's visit is over. Returns who it was.
    pub fn end(&mut self, track: u64, now: u64, evidence: &Evidence) -> Option<Identity> {
        let t = self.tracks.remove(&track)?;
        self.gallery.ended(t.identity.visitor, now, evidence);
        let mut sum = t.sum;
        sum.iter_mut().for_each(|x| *x = 0.0);
        self.spare.push(sum);
        Some(t.identity)
    }

    /// Forgets every descriptor, the gallery's and the tracks' (the descriptor model changed:
    /// the old ones cannot be compared with the new); visitors and visits stay.
    pub fn forget_descriptors(&mut self) {
        for v in &mut self.gallery.visitors {
            v.views.clear();
        }
        for t in self.tracks.values_mut() {
            t.sum.iter_mut().for_each(|x| *x = 0.0);
            t.sum.clear();
            t.views = 0;
            t.best_quality = 0.0;
        }
        self.wipe_scratch();
    }

    /// Tracks with a visit now.
    pub fn open(&self) -> usize {
        self.tracks.len()
    }

    /// Forgets the gallery and every track's visit (see [`Gallery::clear`]).
    pub fn clear(&mut self) {
        self.gallery.clear();
        self.spare.extend(self.tracks.drain().map(|(_, t)| t.sum));
        self.wipe_scratch();
    }

    /// Zeroes the descriptors kept only as room to reuse, so that none outlives its visitor.
    fn wipe_scratch(&mut self) {
        for s in &mut self.spare {
            s.iter_mut().for_each(|x| *x = 0.0);
        }
        self.mean.iter_mut().for_each(|x| *x = 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// A unit vector from a seed (a xorshift), unlike any other seed's: at 256 values two
    /// random directions are 0.06 apart in cosine (one standard deviation), far from any
    /// threshold, and the 10,000 of the bound test compare quickly.
    fn random_unit(seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut v: Vec<f32> = (0..256)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        descriptor::normalise(&mut v);
        v
    }

    /// `base` moved by `amount` towards another direction: the same person, another view.
    fn near(base: &[f32], seed: u64, amount: f32) -> Vec<f32> {
        let other = random_unit(seed);
        let mut v: Vec<f32> = base.iter().zip(&other).map(|(a, b)| a + amount * b).collect();
        descriptor::normalise(&mut v);
        v
    }

    fn settings() -> ReidSettings {
        ReidSettings {
            window: 600 * S,
            threshold: DEFAULT_THRESHOLD,
        }
    }

    #[test]
    fn eight_bits_keep_the_distance() {
        for seed in 1..20 {
            let a = random_unit(seed);
            let b = near(&a, seed + 100, 0.7);
            let exact = descriptor::distance(&a, &b);
            let stored = Stored::new(&a, 0).distance(&b);
            assert!((exact - stored).abs() < 0.01, "{exact} {stored}");
        }
    }

    #[test]
    fn a_returning_visitor_is_known_and_strangers_are_not() {
        let mut g = Gallery::default();
        let s = settings();
        let alice = random_unit(1);
        let bob = random_unit(2);
        let first = g.identify(1, Some(&alice), 0, &s, &[]);
        assert_eq!((first.visitor, first.visit, first.returning()), (1, 1, false));
        g.ended(1, 5 * S, &Evidence::default());
        let b = g.identify(2, Some(&bob), 6 * S, &s, &[]);
        assert_eq!((b.visitor, b.visit), (2, 1));
        g.ended(2, 8 * S, &Evidence::default());
        let again = g.identify(3, Some(&near(&alice, 50, 0.5)), 12 * S, &s, &[]);
        assert_eq!((again.visitor, again.visit, again.returning()), (1, 2, true));
        assert!(again.distance.unwrap() < s.threshold);
    }

    #[test]
    fn a_visitor_on_the_frame_is_not_a_second_face_of_it() {
        let mut g = Gallery::default();
        let s = settings();
        let alice = random_unit(1);
        let a = g.identify(1, Some(&alice), 0, &s, &[]);
        // The same descriptor on another face of the same frame: not her.
        let twin = g.identify(2, Some(&alice), 0, &s, &[a.visitor]);
        assert_ne!(twin.visitor, a.visitor);
        // Once she is off the frame (her track missed but not ended), a new track is her, in
        // the same visit: the tracker lost her, she did not leave.
        let back = g.identify(3, Some(&alice), S, &s, &[twin.visitor]);
        assert_eq!((back.visitor, back.visit, back.continued), (a.visitor, 1, true));
        // Once that visit has ended, she is back: her second visit.
        g.ended(a.visitor, 2 * S, &Evidence::default());
        g.ended(a.visitor, 2 * S, &Evidence::default());
        let again = g.identify(4, Some(&alice), 3 * S, &s, &[]);
        assert_eq!((again.visitor, again.visit, again.returning()), (a.visitor, 2, true));
    }

    #[test]
    fn visitors_are_forgotten_after_the_window_unless_present() {
        let mut g = Gallery::default();
        let s = ReidSettings {
            window: 10 * S,
            threshold: DEFAULT_THRESHOLD,
        };
        let alice = random_unit(1);
        let bob = random_unit(2);
        g.identify(1, Some(&alice), 0, &s, &[]);
        g.ended(1, S, &Evidence::default());
        // Bob stays (open) past the window.
        g.identify(2, Some(&bob), 0, &s, &[]);
        let later = g.identify(3, Some(&alice), 12 * S, &s, &[]);
        assert_eq!(later.visit, 1, "after the window she is a new visitor");
        assert_ne!(later.visitor, 1);
        assert_eq!(g.len(), 2, "Bob, still present, and the new visitor");
        g.clear();
        assert!(g.is_empty());
        let after_clear = g.identify(4, Some(&bob), 13 * S, &s, &[]);
        assert_eq!(after_clear.visitor, 4, "ids keep counting");
    }

    #[test]
    fn the_gallery_stays_bounded_under_ten_thousand_strangers() {
        let mut g = Gallery::default();
        let s = settings();
        let mut ids = std::collections::HashSet::new();
        for k in 0..10_000u64 {
            let now = k * S / 10;
            let d = random_unit(k + 1);
            let id = g.identify(k, Some(&d), now, &s, &[]);
            assert_eq!(id.visit, 1, "stranger {k} taken for visitor {}", id.visitor);
            ids.insert(id.visitor);
            g.ended(id.visitor, now, &Evidence::default());
            assert!(g.len() <= MAX_VISITORS);
            assert!(g.descriptors() <= MAX_VISITORS * VIEWS_PER_VISITOR);
        }
        assert_eq!(ids.len(), 10_000);
        assert_eq!(g.len(), MAX_VISITORS);
        assert_eq!(g.evicted(), 10_000 - MAX_VISITORS as u64);
        // The oldest went first: the latest visitor is still known, the first is not.
        let last = random_unit(10_000);
        assert!(g.identify(20_000, Some(&last), 1000 * S, &s, &[]).returning());
        let first = random_unit(1);
        assert!(!g.identify(20_001, Some(&first), 1000 * S, &s, &[]).returning());
    }

    /// A face of side `side` at `x`, of quality `quality`.
    fn view(x: f32, side: f32, quality: f32) -> View {
        View {
            bbox: BBox {
                x1: x,
                y1: 0.0,
                x2: x + side,
                y2: side,
            },
            quality,
        }
    }

    #[test]
    fn a_visit_keeps_one_descriptor_and_a_visitor_their_latest_visits() {
        let mut v = Visits::default();
        let s = settings();
        let alice = random_unit(1);
        let id = v.begin(10, Some(&alice), view(0.0, 100.0, 100.0), 0, &s, &[]);
        assert!(!v.view_due(10, &view(0.0, 100.0, 120.0), S / 2), "too soon");
        assert!(v.view_due(10, &view(0.0, 100.0, 120.0), S), "better");
        assert!(v.view_due(10, &view(20.0, 100.0, 100.0), S), "as good, elsewhere");
        assert!(!v.view_due(10, &view(3.0, 100.0, 100.0), S), "the same picture again");
        assert!(!v.view_due(10, &view(0.0, 30.0, 120.0), S), "too small");
        assert!(!v.view_due(10, &view(20.0, 100.0, 50.0), S), "worse than the first");
        // A track without a descriptor yet (its first face too small) takes the next view
        // however like the first it is.
        v.begin(20, None, view(0.0, 38.0, 38.0), 0, &s, &[]);
        assert!(v.view_due(20, &view(1.0, 41.0, 40.0), S));
        v.add_view(10, &near(&alice, 7, 0.3), view(0.0, 100.0, 120.0), S);
        assert_eq!(
            v.gallery.descriptors(),
            1,
            "the visit's average replaces its first view"
        );
        v.end(10, 2 * S, &Evidence::default());
        for (k, track) in (11..17).enumerate() {
            let now = (10 + 10 * k as u64) * S;
            let again = v.begin(
                track,
                Some(&near(&alice, track, 0.3)),
                view(0.0, 100.0, 100.0),
                now,
                &s,
                &[],
            );
            assert_eq!(again.visitor, id.visitor);
            v.end(track, now + S, &Evidence::default());
        }
        assert_eq!(v.gallery.descriptors(), VIEWS_PER_VISITOR);
        assert!(v.get(10).is_none());
    }
}
