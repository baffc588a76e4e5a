//! The bookkeeping of segment files: which indices a folder holds, where the next connection
//! goes on, and which segments opened as a stream ended and hold nothing.

use std::path::{Path, PathBuf};

/// The two copies, in the order the connection tracks their ends.
pub const KINDS: [&str; 2] = ["original", "annotated"];

/// The segments in `dir`: path, index and size.
pub fn segments(dir: &Path) -> Vec<(PathBuf, u32, u64)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".mp4")?;
            let (kind, n) = stem.rsplit_once('_')?;
            if !KINDS.contains(&kind) {
                return None;
            }
            Some((e.path(), n.parse::<u32>().ok()?, e.metadata().ok()?.len()))
        })
        .collect()
}

/// The lowest segment index above every segment with data in `dir`.
pub fn first_free_index(dir: &Path) -> u32 {
    segments(dir)
        .into_iter()
        .filter(|s| s.2 > 0)
        .map(|s| s.1 + 1)
        .max()
        .unwrap_or(0)
}

/// Removes the empty segments from index `from` on; returns their paths.
pub fn remove_empty(dir: &Path, from: u32) -> Vec<PathBuf> {
    segments(dir)
        .into_iter()
        .filter(|&(_, n, size)| n >= from && size == 0)
        .filter_map(|(path, ..)| std::fs::remove_file(&path).is_ok().then_some(path))
        .collect()
}

/// The location pattern of a copy's segments.
pub fn pattern(dir: &Path, kind: &str) -> String {
    dir.join(format!("{kind}_%05d.mp4")).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_goes_on_after_the_last_segment_with_data() {
        let dir = std::env::temp_dir().join(format!("faceemotion-segments-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(first_free_index(&dir), 0);
        for (name, data) in [
            ("original_00000.mp4", "x"),
            ("annotated_00003.mp4", "x"),
            ("original_00004.mp4", ""),
            ("other_00009.mp4", "x"),
            ("original_x.mp4", "x"),
        ] {
            std::fs::write(dir.join(name), data).unwrap();
        }
        assert_eq!(first_free_index(&dir), 4);
        assert_eq!(remove_empty(&dir, 4), vec![dir.join("original_00004.mp4")]);
        assert_eq!(segments(&dir).len(), 2);
        std::fs::remove_dir_all(&dir).ok();
    }
}
