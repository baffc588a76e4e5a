//! One loaded copy of each model per process: every `faceemotion` that uses the same model file
//! (the same bytes on disk) in the same sharing group shares it, as DL Streamer's
//! `model-instance-id` does.
//!
//! `ort`'s `Session::run` takes `&mut self`, so a shared model is a small pool of sessions made
//! from the same bytes with their weights prepacked once (`PrepackedWeights`): a run leases a
//! session, and a session is made only when every one is busy. The inference pool
//! (`pool.rs`) runs at most one model run per worker, so a model has at most as many sessions
//! as the pool has workers, however many streams share it.
//!
//! The registry holds its models weakly: a model no element uses any more is unloaded.

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use crate::runtime::{check_model_path, Model, ModelError, ModelRole};

/// What makes two loads the same model: its role and what it was read for (the wrapper type),
/// the file (its canonical path and, so that a file replaced on disk is read again, its size,
/// modification time and inode), and the sharing group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    role: ModelRole,
    kind: std::any::TypeId,
    path: PathBuf,
    identity: (u64, i64, i64, u64),
    group: String,
}

fn identity(path: &Path) -> (PathBuf, (u64, i64, i64, u64)) {
    use std::os::unix::fs::MetadataExt;
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let id = std::fs::metadata(&canonical).map_or((0, 0, 0, 0), |m| (m.len(), m.mtime(), m.mtime_nsec(), m.ino()));
    (canonical, id)
}

/// A model shared by every element that loads it: what its wrapper learnt at load (`info`),
/// and its sessions.
pub struct Shared<T> {
    pub info: T,
    pub path: PathBuf,
    pub role: ModelRole,
    source: crate::runtime::Source,
    idle: Mutex<Vec<Model>>,
}

impl<T> Shared<T> {
    /// A session to run, made if none is idle; it goes back when the lease is dropped.
    pub fn lease(&self) -> Result<Lease<'_, T>, ModelError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let model = match idle {
            Some(m) => m,
            None => self.source.session(self.role, &self.path)?,
        };
        Ok(Lease {
            shared: self,
            model: Some(model),
        })
    }

    /// Sessions made so far (for the tests).
    pub fn sessions(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

pub struct Lease<'a, T> {
    shared: &'a Shared<T>,
    model: Option<Model>,
}

impl<T> std::ops::Deref for Lease<'_, T> {
    type Target = Model;
    fn deref(&self) -> &Model {
        self.model.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T> std::ops::DerefMut for Lease<'_, T> {
    fn deref_mut(&mut self) -> &mut Model {
        self.model.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<T> Drop for Lease<'_, T> {
    fn drop(&mut self) {
        // A session dropped by a panic in the middle of a run may be half way through it:
        // let it go rather than lend it to the next run.
        if std::thread::panicking() {
            return;
        }
        if let Some(m) = self.model.take() {
            self.shared.idle.lock().unwrap_or_else(|e| e.into_inner()).push(m);
        }
    }
}

static MODELS: Mutex<Option<HashMap<Key, Weak<dyn Any + Send + Sync>>>> = Mutex::new(None);

/// The shared model of `role` at `path` in sharing `group` ("" for every element), loaded by
/// `load` (which checks the model on its first session and says what the wrapper needs to
/// know) unless a live one exists. Loads are one at a time, so that two elements starting
/// together load a model once.
pub fn get<T: Send + Sync + 'static>(
    role: ModelRole,
    path: &Path,
    group: &str,
    ort_library: Option<&str>,
    load: impl FnOnce(&mut Model) -> Result<T, ModelError>,
) -> Result<Arc<Shared<T>>, ModelError> {
    check_model_path(role, path)?;
    let (canonical, id) = identity(path);
    let key = Key {
        role,
        kind: std::any::TypeId::of::<T>(),
        path: canonical,
        identity: id,
        group: group.to_string(),
    };
    let mut models = MODELS.lock().unwrap_or_else(|e| e.into_inner());
    let models = models.get_or_insert_with(HashMap::new);
    models.retain(|_, w| w.strong_count() > 0);
    if let Some(shared) = models.get(&key).and_then(Weak::upgrade) {
        if let Ok(shared) = shared.downcast::<Shared<T>>() {
            return Ok(shared);
        }
    }
    let (source, mut first) = crate::runtime::Source::open(role, path, ort_library)?;
    let info = load(&mut first)?;
    source.learn(&first);
    let shared = Arc::new(Shared {
        info,
        path: path.to_path_buf(),
        role,
        source,
        idle: Mutex::new(vec![first]),
    });
    let any: Arc<dyn Any + Send + Sync> = shared.clone();
    models.insert(key, Arc::downgrade(&any));
    Ok(shared)
}

/// Models loaded now, for the tests and the benchmark.
pub fn loaded() -> usize {
    MODELS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or(0, |m| m.values().filter(|w| w.strong_count() > 0).count())
}
