//! Where the detector looks on each frame, so that faces far from the camera are found at
//! little extra cost.
//!
//! BlazeFace finds a face of about 13 of its 192 input pixels: the whole frame squeezed into
//! 192x192 shows a 1080p face of 130 pixels or more. Smaller faces are searched for in three
//! ways, each frame:
//!
//! - **Progressive scan.** At most one tile of a finer grid, chosen so that the smallest face to find
//!   (`min-face-size`, by default 3 % of the frame's height: 32 px at 1080p, 21 at 720p, 64 at
//!   4K) is 13 px in the tile's input. The first frame (and the first after a flush or a change
//!   of size) is searched in full.
//! - **Motion.** The whole frame's letterbox, which the whole-frame pass makes anyway, is
//!   compared with the previous frame's: a tile where something moves (outside the people
//!   already known, whose motion the tracker follows) is scanned next. It is also compared with
//!   the picture each tile had when last scanned: a tile that changed since (slowly, such as a
//!   person coming in slowly or beside a known one; or where a known person is or was, such as
//!   the trail of someone walking, on every frame) is scanned again at most every
//!   [`DIRTY_RESCAN_NS`]; after a tile where something moved, such a tile goes first. A tile that did not change is
//!   scanned again only every [`RESCAN_NS`], so a still scene without faces costs next to
//!   nothing more.
//! - **Cells.** Faces the tracker knows that the whole frame is too coarse for are looked for
//!   again where it expects them: a crop of 2.5 times the face, 96x96, four to a detector input
//!   (a 2x2 mosaic). That keeps small faces, and their ids, from frame to frame between scans.
//!   Where the detector runs on every frame, a face too small for the whole frame looked for in
//!   a cell is carried by the tracker on the next frame and looked for again on the one after: a
//!   face moves little in one frame, and the cells cost half.
//!
//! GStreamer-free: the analysis asks for a plan per detector frame and lays out the inputs.

use crate::face::BBox;
use crate::resample::RectF;

/// Detector input pixels a face needs to be found (measured on the group photos shrunk).
pub const FACE_INPUT_PX: f32 = 13.0;
/// The automatic smallest face, as a share of the frame's height (32 px at 1080p).
pub const AUTO_MIN_FACE: f32 = 32.0 / 1080.0;
/// The mosaic of known faces: cells per side of a detector input, and the crop around a face
/// (a multiple of its box's larger side).
pub const CELLS_PER_SIDE: usize = 2;
pub const CELL_CROP: f32 = 2.5;
/// At most this many mosaic inputs per frame; more faces than they hold are looked for again
/// in turn, those the detector saw least recently first.
pub const MAX_MOSAICS: usize = 2;
/// A known face is looked for again at most at this score: the cell confirms a face the
/// tracker already has, and a face in a 96 px cell scores lower than in a tile.
pub const CELL_THRESHOLD: f32 = 0.4;
/// A face found in a tile needs at least this score, whatever the threshold: a tile shows the
/// picture several times closer than the whole frame, where textures (a leather couch's folds,
/// a badge) look like a small face more often; with the threshold lowered for weak faces (0.5),
/// the group photos' tiles gave a false face at 0.56.
pub const TILE_THRESHOLD: f32 = 0.6;
/// A tile whose picture did not change is scanned again after this long (ns of running time),
/// for faces that came in without the motion being seen.
pub const RESCAN_NS: u64 = 10_000_000_000;
/// A tile whose picture changed since its scan, but where nothing but the known people moves
/// now, is scanned again at most this often (ns of running time).
pub const DIRTY_RESCAN_NS: u64 = 500_000_000;
/// Grey levels a letterbox pixel must change by to count as motion.
const MOTION_LEVEL: u16 = 8;
/// Columns of the finer grid at most (the tiles property's range).
pub const MAX_COLUMNS: u32 = 8;

/// How the element is asked to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Search {
    /// The progressive scan, motion and cells, down to `min-face-size` (or 3 % of the height).
    #[default]
    Auto,
    /// The whole frame only (faces of about 7 % of the frame's larger side and up).
    Whole,
    /// The whole frame and every tile of a grid of this many columns, on every frame.
    AllTiles(u32),
}

impl Search {
    /// From the `tiles` property: 0 auto, 1 the whole frame, N the N-column grid every frame.
    pub fn from_tiles(tiles: u32) -> Self {
        match tiles {
            0 => Search::Auto,
            1 => Search::Whole,
            n => Search::AllTiles(n.min(MAX_COLUMNS)),
        }
    }
}

/// The smallest face to search for in a `width` x `height` frame: `min_face` pixels, or 3 % of
/// the height when 0.
pub fn min_face(min_face: u32, height: usize) -> f32 {
    match min_face {
        0 => (height as f32 * AUTO_MIN_FACE).max(1.0),
        n => n as f32,
    }
}

/// The smallest face the whole-frame pass sees, in frame pixels.
pub fn whole_frame_reach(width: usize, height: usize, input: usize) -> f32 {
    FACE_INPUT_PX * width.max(height) as f32 / input as f32
}

/// Columns of the grid that shows a face of `face` pixels at [`FACE_INPUT_PX`] (tiles overlap
/// by a quarter); 1 when the whole frame already does.
pub fn columns_for(width: usize, height: usize, input: usize, face: f32) -> u32 {
    if face >= whole_frame_reach(width, height, input) {
        return 1;
    }
    let cols = (1.25 * width as f32 * FACE_INPUT_PX / (input as f32 * face)).round() as u32;
    cols.clamp(2, MAX_COLUMNS)
}

/// The tiles of a grid of `cols` columns and as many rows as keep them about square,
/// overlapping by a quarter so that a face cut by one tile's edge is whole in its neighbour.
pub fn grid_into(width: usize, height: usize, cols: u32, out: &mut Vec<RectF>) {
    out.clear();
    if cols <= 1 {
        return;
    }
    let (w, h) = (width as f32, height as f32);
    let cols = cols as usize;
    let rows = ((cols as f32 * h / w).round() as usize).max(1);
    let tw = (w / cols as f32 * 1.25).min(w);
    let th = (h / rows as f32 * 1.25).min(h);
    let side = tw.max(th);
    let pos = |i: usize, n: usize, total: f32, t: f32| {
        if n == 1 {
            (total - t) / 2.0
        } else {
            i as f32 * (total - t) / (n - 1) as f32
        }
    };
    for r in 0..rows {
        for c in 0..cols {
            let (cx, cy) = (pos(c, cols, w, tw) + tw / 2.0, pos(r, rows, h, th) + th / 2.0);
            out.push(RectF {
                x: cx - side / 2.0,
                y: cy - side / 2.0,
                w: side,
                h: side,
            });
        }
    }
}

/// The square around a known face that its cell shows.
pub fn cell_crop(b: &BBox) -> RectF {
    crate::resample::crop_region(b, CELL_CROP)
}

/// What one detector frame looks at besides the whole frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Tiles, each a detector input of its own.
    pub tiles: Vec<RectF>,
    /// Crops around known faces, [`CELLS_PER_SIDE`]² to an input.
    pub cells: Vec<RectF>,
}

/// How a tile's picture changed since it was last scanned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Change {
    #[default]
    None,
    /// Changed, but not from the previous frame to this one: slowly, or where a known person
    /// was (their trail). Scanned at most every [`DIRTY_RESCAN_NS`].
    Since,
    /// Something other than the known people moves there now: scanned next.
    Moving,
}

/// A stream's progressive scan: which tiles were scanned when, where the picture changed.
#[derive(Debug, Clone, Default)]
pub struct Scanner {
    /// The grid, for the frame size and column count it was made for.
    grid: Vec<RectF>,
    key: (usize, usize, u32),
    /// Running time each tile was last scanned; `None`: not since the start or a reset.
    scanned: Vec<Option<u64>>,
    /// How each tile's picture changed since it was last scanned.
    dirty: Vec<Change>,
    /// The whole-frame letterbox (grey) as each tile showed it when last scanned, to see what
    /// changed since (however slowly: a person coming in slowly changes little from one frame
    /// to the next); the previous frame's, to see what moves now; and this frame's.
    reference: Vec<u8>,
    prev: Vec<u8>,
    grey: Vec<u8>,
    /// Letterbox pixels of the known faces, whose own changes (an expression, a turn of the
    /// head) do not count; and around the known people, where motion from one frame to the
    /// next is theirs (see [`near_rect`]).
    own: Vec<bool>,
    near: Vec<bool>,
    /// Whether the latest tile scanned was one where something moved: the next one that
    /// changed since its scan, or is due again, goes first, so that a tile where something
    /// moves on every frame (a screen, leaves in the wind) does not keep the others waiting.
    moved_last: bool,
    /// The letterbox's size, and the frame rectangle it shows.
    size: usize,
    shown: RectF,
    /// Track ids looked for in cells on the previous detector frame, and on this one.
    celled: Vec<u64>,
    celling: Vec<u64>,
}

impl Scanner {
    /// Starts over: the next frame is searched in full (a flush, a new picture size).
    pub fn reset(&mut self) {
        self.scanned.iter_mut().for_each(|s| *s = None);
        self.reference.clear();
        self.celled.clear();
    }

    /// Takes the whole-frame letterbox of this frame (`size` x `size` RGB, showing the frame
    /// rectangle `shown`) and marks the tiles where something other than the `known` faces and
    /// the people around them moves, and those whose picture changed since they were last
    /// scanned (outside the known faces).
    pub fn observe(&mut self, rgb: &[u8], size: usize, shown: RectF, known: &[BBox]) {
        std::mem::swap(&mut self.prev, &mut self.grey);
        self.grey.clear();
        self.grey.extend(
            rgb.chunks_exact(3)
                .map(|p| ((p[0] as u16 + 2 * p[1] as u16 + p[2] as u16) / 4) as u8),
        );
        let comparable = self.reference.len() == self.grey.len()
            && self.prev.len() == self.grey.len()
            && self.size == size
            && self.shown == shown;
        (self.size, self.shown) = (size, shown);
        if !comparable {
            self.reference.clone_from(&self.grey);
            return;
        }
        if !self.grid.is_empty() {
            let px = |r: &RectF| letterbox_px(r, size, shown);
            for (mask, around) in [
                (&mut self.own, own_rect as fn(&BBox) -> RectF),
                (&mut self.near, near_rect),
            ] {
                mask.clear();
                mask.resize(size * size, false);
                for b in known {
                    let (x0, y0, x1, y1) = px(&around(b));
                    for y in y0..y1.min(size) {
                        mask[y * size + x0.min(size)..y * size + x1.min(size)].fill(true);
                    }
                }
            }
            let grey = &self.grey;
            let differs = |tile: &RectF, then: &[u8], faces: &[bool]| {
                let (x0, y0, x1, y1) = px(tile);
                (y0..y1.min(size)).any(|y| {
                    let r = y * size + x0.min(size)..y * size + x1.min(size);
                    grey[r.clone()]
                        .iter()
                        .zip(&then[r.clone()])
                        .zip(&faces[r])
                        .any(|((&a, &b), &face)| !face && (a as u16).abs_diff(b as u16) >= MOTION_LEVEL)
                })
            };
            for (tile, dirty) in self.grid.iter().zip(self.dirty.iter_mut()) {
                if *dirty == Change::Moving {
                    continue;
                }
                if differs(tile, &self.prev, &self.near) {
                    *dirty = Change::Moving;
                } else if *dirty == Change::None && differs(tile, &self.reference, &self.own) {
                    *dirty = Change::Since;
                }
            }
        }
    }

    /// The picture of tile `i` as this frame shows it becomes its reference.
    fn remember(&mut self, i: usize) {
        if self.reference.len() != self.grey.len() || self.size == 0 {
            return;
        }
        let size = self.size;
        let (x0, y0, x1, y1) = letterbox_px(&self.grid[i], size, self.shown);
        for y in y0..y1.min(size) {
            let r = y * size + x0.min(size)..y * size + x1.min(size);
            self.reference[r.clone()].copy_from_slice(&self.grey[r]);
        }
    }

    /// The tiles to scan on this frame (at `now`, running time), into `out`.
    pub fn tiles_into(&mut self, width: usize, height: usize, cols: u32, all: bool, now: u64, out: &mut Vec<RectF>) {
        out.clear();
        if self.key != (width, height, cols) {
            self.key = (width, height, cols);
            grid_into(width, height, cols, &mut self.grid);
            self.scanned.clear();
            self.scanned.resize(self.grid.len(), None);
            self.dirty.clear();
            self.dirty.resize(self.grid.len(), Change::None);
        }
        if self.grid.is_empty() {
            return;
        }
        let full = all || self.scanned.iter().all(Option::is_none);
        let pick = if full {
            None
        } else {
            // A tile where something moves, the longest unscanned first; else one that changed
            // since its scan a while ago; else one not scanned for long. Right after a tile
            // where something moved, the others first.
            let since = |i: usize, gap: u64| self.scanned[i].is_none_or(|t| now.saturating_sub(t) >= gap);
            let oldest = |cands: &mut dyn Iterator<Item = usize>| cands.min_by_key(|&i| self.scanned[i]);
            let n = self.grid.len();
            let moving = oldest(&mut (0..n).filter(|&i| self.dirty[i] == Change::Moving));
            let due = oldest(&mut (0..n).filter(|&i| self.dirty[i] == Change::Since && since(i, DIRTY_RESCAN_NS)))
                .or_else(|| oldest(&mut (0..n).filter(|&i| since(i, RESCAN_NS))));
            let pick = if self.moved_last {
                due.or(moving)
            } else {
                moving.or(due)
            };
            self.moved_last = pick.is_some() && pick == moving;
            pick
        };
        for i in 0..self.grid.len() {
            if full || pick == Some(i) {
                out.push(self.grid[i]);
                self.scanned[i] = Some(now);
                self.dirty[i] = Change::None;
                self.remember(i);
            }
        }
    }
}

impl Scanner {
    /// The crops of the known faces to look for again (`refind`: track id and expected box, most
    /// urgent first) into `cells`, at most `most`; the ids not looked for on this frame into
    /// `unlooked`: those beyond what the cells hold and, with `alternate`, those smaller than
    /// `reach` (that the whole frame does not see) looked for on the previous detector frame.
    /// Faces the whole frame sees too are looked for on every frame: their box is the finer
    /// input's when that is much surer, and a box that changed input every other frame would
    /// jump.
    pub fn cells_into(
        &mut self,
        refind: &[(u64, BBox)],
        most: usize,
        alternate: Option<f32>,
        cells: &mut Vec<RectF>,
        unlooked: &mut Vec<u64>,
    ) {
        cells.clear();
        self.celling.clear();
        for &(id, b) in refind {
            let waits = alternate.is_some_and(|reach| b.side() < reach) && self.celled.contains(&id);
            if cells.len() < most && !waits {
                cells.push(cell_crop(&b));
                self.celling.push(id);
            } else {
                unlooked.push(id);
            }
        }
        std::mem::swap(&mut self.celled, &mut self.celling);
    }
}

/// The letterbox pixels (x0, y0, x1, y1, clamped to the letterbox) of frame rectangle `r`, for a
/// `size` letterbox showing the frame rectangle `shown`.
fn letterbox_px(r: &RectF, size: usize, shown: RectF) -> (usize, usize, usize, usize) {
    let to_px = |x: f32, origin: f32, extent: f32| ((x - origin) / extent * size as f32).clamp(0.0, size as f32);
    (
        to_px(r.x, shown.x, shown.w) as usize,
        to_px(r.y, shown.y, shown.h) as usize,
        to_px(r.x + r.w, shown.x, shown.w).ceil() as usize,
        to_px(r.y + r.h, shown.y, shown.h).ceil() as usize,
    )
}

/// Where a known person's own motion shows in the letterbox: the face and, around and below
/// it, the head and the body that move with it (the tracker follows them; a scan would only
/// find the same face again).
fn padded_rect(b: &BBox) -> RectF {
    let s = b.side();
    RectF {
        x: b.x1 - 1.5 * s,
        y: b.y1 - s,
        w: b.width() + 3.0 * s,
        h: b.height() + 5.0 * s,
    }
}

/// A known face and a little around it: its own changes are the tracker's business.
fn own_rect(b: &BBox) -> RectF {
    let s = b.side();
    RectF {
        x: b.x1 - 0.5 * s,
        y: b.y1 - 0.5 * s,
        w: b.width() + s,
        h: b.height() + s,
    }
}

/// Around a known person, where motion from one frame to the next is theirs: [`padded_rect`]
/// and beyond it, four faces to each side in all (arms, a bag, a coat, and a box that is only
/// where the tracker expected the face). A new face coming in there is still seen, as a change since the tile's scan (only
/// the known faces themselves are left out of that).
fn near_rect(b: &BBox) -> RectF {
    let s = b.side();
    let p = padded_rect(b);
    RectF {
        x: p.x - 2.5 * s,
        y: p.y - s,
        w: p.w + 5.0 * s,
        h: p.h + s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_shows_the_smallest_face_at_its_input_size() {
        for (w, h) in [(1920, 1080), (1280, 720), (3840, 2160)] {
            let face = min_face(0, h);
            let cols = columns_for(w, h, 192, face);
            assert_eq!(cols, 5, "{w}x{h}");
            let mut grid = Vec::new();
            grid_into(w, h, cols, &mut grid);
            assert_eq!(grid.len(), 15);
            let side = grid[0].w;
            let in_input = face * 192.0 / side;
            assert!(
                (12.0..=14.0).contains(&in_input),
                "{w}x{h}: a {face} px face is {in_input} px in a tile"
            );
            // Every pixel is in some tile.
            for (x, y) in [
                (0.0, 0.0),
                (w as f32 - 1.0, h as f32 - 1.0),
                (w as f32 / 2.0, h as f32 / 3.0),
            ] {
                assert!(grid
                    .iter()
                    .any(|r| x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h));
            }
        }
        // Faces the whole frame sees need no grid; a tiny minimum is held to the widest grid.
        assert_eq!(columns_for(1920, 1080, 192, 200.0), 1);
        assert_eq!(columns_for(1920, 1080, 192, 4.0), MAX_COLUMNS);
    }

    #[test]
    fn a_tile_moving_on_every_frame_does_not_keep_the_others_waiting() {
        let mut s = Scanner::default();
        let mut tiles = Vec::new();
        let mut pic = vec![100u8; 192 * 192 * 3];
        s.observe(&pic, 192, whole(192), &[]);
        s.tiles_into(1920, 1080, 5, false, 0, &mut tiles);
        let mut slow_seen = false;
        for k in 1..=12u64 {
            // A screen at the bottom right flickers on every frame; the top left brightens
            // slowly.
            for y in 140..150 {
                for x in 180..190 {
                    pic[(y * 192 + x) * 3..][..3].fill(if k % 2 == 0 { 100 } else { 200 });
                }
            }
            for y in 60..80 {
                for x in 20..40 {
                    pic[(y * 192 + x) * 3..][..3].iter_mut().for_each(|v| *v += 2);
                }
            }
            s.observe(&pic, 192, whole(192), &[]);
            s.tiles_into(1920, 1080, 5, false, k * DIRTY_RESCAN_NS, &mut tiles);
            assert_eq!(tiles.len(), 1, "frame {k}");
            slow_seen |= tiles[0].x < 100.0 && tiles[0].y < 300.0;
        }
        assert!(slow_seen, "the slowly changing tile was scanned");
    }

    #[test]
    fn a_face_in_a_cell_waits_a_frame_where_the_detector_runs_on_every_frame() {
        let b = |x: f32| BBox {
            x1: x,
            y1: 100.0,
            x2: x + 30.0,
            y2: 130.0,
        };
        let refind = [(1, b(0.0)), (2, b(100.0)), (3, b(200.0))];
        let mut s = Scanner::default();
        let (mut cells, mut unlooked) = (Vec::new(), Vec::new());
        let mut look = |s: &mut Scanner, alternate: bool| {
            unlooked.clear();
            s.cells_into(&refind, 2, alternate.then_some(40.0), &mut cells, &mut unlooked);
            (cells.len(), unlooked.clone())
        };
        // Two cells: faces 1 and 2, then 3 (1 and 2 wait), then 1 and 2 again.
        assert_eq!(look(&mut s, true), (2, vec![3]));
        assert_eq!(look(&mut s, true), (1, vec![1, 2]));
        assert_eq!(look(&mut s, true), (2, vec![3]));
        // At a longer detector interval no face waits.
        assert_eq!(look(&mut s, false), (2, vec![3]));
        assert_eq!(look(&mut s, false), (2, vec![3]));
        // A reset forgets who waits.
        look(&mut s, true);
        s.reset();
        assert_eq!(look(&mut s, true), (2, vec![3]));
        // Faces the whole frame sees too (30 px against a reach of 20) never wait.
        let mut s = Scanner::default();
        for _ in 0..3 {
            unlooked.clear();
            s.cells_into(&refind, 2, Some(20.0), &mut cells, &mut unlooked);
            assert_eq!((cells.len(), &unlooked[..]), (2, &[3][..]));
        }
    }

    /// What a 1080p frame's 192 letterbox shows.
    fn whole(_size: usize) -> RectF {
        RectF {
            x: 0.0,
            y: -420.0,
            w: 1920.0,
            h: 1920.0,
        }
    }

    #[test]
    fn the_first_frame_is_scanned_in_full_then_one_tile_a_frame_where_needed() {
        let mut s = Scanner::default();
        let mut tiles = Vec::new();
        let still = vec![100u8; 192 * 192 * 3];
        s.observe(&still, 192, whole(192), &[]);
        s.tiles_into(1920, 1080, 5, false, 0, &mut tiles);
        assert_eq!(tiles.len(), 15, "first frame: every tile");
        // A still picture: nothing more until the rescan time.
        let frame = 40_000_000;
        for k in 1..15 {
            s.observe(&still, 192, whole(192), &[]);
            s.tiles_into(1920, 1080, 5, false, k * frame, &mut tiles);
            assert!(tiles.is_empty(), "frame {k}: {tiles:?}");
        }
        // Something moves at the bottom right: that tile is next.
        let mut moved = still.clone();
        for y in 140..150 {
            for x in 180..190 {
                moved[(y * 192 + x) * 3..][..3].fill(200);
            }
        }
        s.observe(&moved, 192, whole(192), &[]);
        s.tiles_into(1920, 1080, 5, false, 15 * frame, &mut tiles);
        assert_eq!(tiles.len(), 1);
        let t = tiles[0];
        // Letterbox pixel (185, 145) is frame pixel (1850, 1030).
        assert!(
            t.x <= 1850.0 && t.x + t.w > 1850.0 && t.y <= 1030.0 && t.y + t.h > 1030.0,
            "{t:?}"
        );
        // A known person walks on from there: where they were differs from the tile's scan, but
        // nothing else moves, so the tile waits (a person walking changes the same tile every
        // frame).
        let person = BBox {
            x1: 1750.0,
            y1: 950.0,
            x2: 1950.0,
            y2: 1120.0,
        };
        let mut s3 = s.clone();
        s3.observe(&still, 192, whole(192), &[person]);
        s3.tiles_into(1920, 1080, 5, false, 16 * frame, &mut tiles);
        assert!(tiles.is_empty(), "{tiles:?}");
        s3.observe(&still, 192, whole(192), &[]);
        s3.tiles_into(1920, 1080, 5, false, 17 * frame, &mut tiles);
        assert!(tiles.is_empty(), "the trail waits: {tiles:?}");
        s3.observe(&still, 192, whole(192), &[]);
        s3.tiles_into(1920, 1080, 5, false, 15 * frame + DIRTY_RESCAN_NS, &mut tiles);
        assert_eq!(tiles, [t], "then it is scanned again");
        // The same change inside a known face's box is the tracker's business, not a scan's.
        let mut s2 = s.clone();
        s2.observe(&still, 192, whole(192), &[person]);
        s2.tiles_into(1920, 1080, 5, false, 30 * frame, &mut tiles);
        assert!(tiles.is_empty(), "{tiles:?}");
        // After the rescan time every tile comes again, one a frame.
        let later = RESCAN_NS + 16 * frame;
        s.observe(&moved, 192, whole(192), &[]);
        let mut seen = Vec::new();
        for k in 0..15 {
            s.tiles_into(1920, 1080, 5, false, later + k * frame, &mut tiles);
            assert_eq!(tiles.len(), 1, "rescan frame {k}");
            seen.push(tiles[0]);
        }
        let mut grid = Vec::new();
        grid_into(1920, 1080, 5, &mut grid);
        assert!(grid.iter().all(|g| seen.contains(g)), "every tile rescanned");
        // A change too slow to see from one frame to the next is seen against the picture the
        // tile had when scanned: two grey levels a frame (letterbox pixels 20-40, 60-80: the
        // frame's top left), over four frames.
        let mut slow = moved.clone();
        let mut t0 = later + 15 * frame;
        s.observe(&slow, 192, whole(192), &[]);
        s.tiles_into(1920, 1080, 5, false, t0, &mut tiles);
        assert!(tiles.is_empty(), "{tiles:?}");
        let mut found = false;
        for k in 1..=5 {
            for y in 60..80 {
                for x in 20..40 {
                    slow[(y * 192 + x) * 3..][..3].iter_mut().for_each(|v| *v += 2);
                }
            }
            t0 += DIRTY_RESCAN_NS;
            s.observe(&slow, 192, whole(192), &[]);
            s.tiles_into(1920, 1080, 5, false, t0, &mut tiles);
            if !tiles.is_empty() {
                assert!(k >= 4, "frame {k}: {tiles:?}");
                found = true;
                break;
            }
        }
        assert!(found, "a slow change is scanned");
        // A reset (a flush) searches in full again.
        s.reset();
        s.tiles_into(1920, 1080, 5, false, later + 20 * frame, &mut tiles);
        assert_eq!(tiles.len(), 15);
    }
}
