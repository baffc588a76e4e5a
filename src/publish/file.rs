//! Records to a file or standard output, as JSON lines or one JSON array.

use std::io::Write;

use super::{PublishError, PublishStats};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// One record per line; a file is opened for appending (as gvametapublish does).
    JsonLines,
    /// One JSON array of records, closed when the output finishes; a file is rewritten.
    Json,
}

pub struct FileOutput {
    out: std::io::BufWriter<Box<dyn Write + Send>>,
    path: String,
    format: FileFormat,
    stats: PublishStats,
    finished: bool,
}

impl FileOutput {
    /// Opens `path` (empty or `-`: standard output). An error names the path and the cause.
    pub fn open(path: &str, format: FileFormat) -> Result<Self, PublishError> {
        let stdout = path.is_empty() || path == "-";
        let fail = |reason: String| PublishError::File {
            path: if stdout { "standard output".into() } else { path.into() },
            reason,
        };
        let sink: Box<dyn Write + Send> = if stdout {
            Box::new(std::io::stdout())
        } else {
            if std::path::Path::new(path).is_dir() {
                return Err(fail("it is a directory; give a file name".into()));
            }
            let mut o = std::fs::OpenOptions::new();
            match format {
                FileFormat::JsonLines => o.append(true).create(true),
                FileFormat::Json => o.write(true).create(true).truncate(true),
            };
            Box::new(o.open(path).map_err(|e| fail(e.to_string()))?)
        };
        let mut f = Self {
            out: std::io::BufWriter::new(sink),
            path: if stdout { "standard output".into() } else { path.into() },
            format,
            stats: PublishStats::default(),
            finished: false,
        };
        if format == FileFormat::Json {
            f.write(b"[").map_err(fail)?;
        }
        Ok(f)
    }

    fn write(&mut self, b: &[u8]) -> Result<(), String> {
        self.out.write_all(b).map_err(|e| e.to_string())
    }

    pub fn send(&mut self, record: &str) -> Result<(), PublishError> {
        self.stats.sent += 1;
        let sep: &[u8] = match (self.format, self.stats.published) {
            (FileFormat::Json, 0) => b"\n",
            (FileFormat::Json, _) => b",\n",
            (FileFormat::JsonLines, _) => b"",
        };
        let written = self
            .write(sep)
            .and_then(|_| self.write(record.as_bytes()))
            .and_then(|_| {
                if self.format == FileFormat::JsonLines {
                    self.write(b"\n")
                } else {
                    Ok(())
                }
            })
            // A line at a time, so that `tail -f` and a crash both see whole records.
            .and_then(|_| self.out.flush().map_err(|e| e.to_string()));
        match written {
            Ok(()) => {
                self.stats.published += 1;
                Ok(())
            }
            Err(reason) => {
                self.stats.dropped += 1;
                Err(PublishError::File {
                    path: self.path.clone(),
                    reason,
                })
            }
        }
    }

    pub fn stats(&self) -> PublishStats {
        self.stats
    }

    pub fn finish(&mut self) -> Result<PublishStats, PublishError> {
        if !self.finished {
            self.finished = true;
            let end: &[u8] = if self.format == FileFormat::Json { b"\n]\n" } else { b"" };
            self.write(end)
                .and_then(|_| self.out.flush().map_err(|e| e.to_string()))
                .map_err(|reason| PublishError::File {
                    path: self.path.clone(),
                    reason,
                })?;
        }
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_one_valid_array_and_json_lines_append() {
        let dir = std::env::temp_dir().join(format!("faceemotion-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.json");
        let mut f = FileOutput::open(p.to_str().unwrap(), FileFormat::Json).unwrap();
        for i in 0..3 {
            f.send(&format!("{{\"n\":{i}}}")).unwrap();
        }
        f.finish().unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 3);
        let empty = dir.join("empty.json");
        FileOutput::open(empty.to_str().unwrap(), FileFormat::Json)
            .unwrap()
            .finish()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&empty).unwrap()).unwrap();
        assert!(v.as_array().unwrap().is_empty());

        let l = dir.join("a.jsonl");
        for _ in 0..2 {
            let mut f = FileOutput::open(l.to_str().unwrap(), FileFormat::JsonLines).unwrap();
            f.send("{}").unwrap();
            f.finish().unwrap();
        }
        assert_eq!(std::fs::read_to_string(&l).unwrap(), "{}\n{}\n");
        let e = FileOutput::open(dir.to_str().unwrap(), FileFormat::JsonLines)
            .err()
            .unwrap();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let e = FileOutput::open("/nonexistent/dir/out.jsonl", FileFormat::JsonLines)
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/dir/out.jsonl"), "{e}");
        std::fs::remove_dir_all(dir).ok();
    }
}
