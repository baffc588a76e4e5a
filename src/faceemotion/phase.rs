//! Detector phases of the `faceemotion` elements of one pipeline: with an inference interval,
//! elements analysing several cameras in one pipeline run their detector on different frames,
//! so that the load is even from frame to frame. An element takes the lowest phase free in its
//! pipeline, so one alone has phase 0 and its results do not depend on what else runs in the
//! process.

use std::collections::HashMap;
use std::sync::Mutex;

use gst::prelude::*;

/// Phases taken, per top-level pipeline (by the address of its object).
static TAKEN: Mutex<Option<HashMap<usize, Vec<bool>>>> = Mutex::new(None);

/// A phase held by an element until it is dropped.
pub struct Phase {
    pipeline: usize,
    pub index: u32,
}

/// The top-level bin `element` is in (itself when it is in none).
fn top(element: &gst::Element) -> usize {
    let mut obj: gst::Object = element.clone().upcast();
    while let Some(parent) = obj.parent() {
        obj = parent;
    }
    obj.as_ptr() as usize
}

impl Phase {
    /// The top-level pipeline this phase was taken in (by the address of its object).
    pub fn pipeline(&self) -> usize {
        self.pipeline
    }
}

pub fn take(element: &gst::Element) -> Phase {
    let pipeline = top(element);
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let slots = taken.get_or_insert_with(HashMap::new).entry(pipeline).or_default();
    let i = slots.iter().position(|used| !used).unwrap_or(slots.len());
    if i == slots.len() {
        slots.push(true);
    } else {
        slots[i] = true;
    }
    Phase {
        pipeline,
        index: i as u32,
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = taken.as_mut() {
            if let Some(slots) = map.get_mut(&self.pipeline) {
                if let Some(used) = slots.get_mut(self.index as usize) {
                    *used = false;
                }
                if slots.iter().all(|u| !u) {
                    map.remove(&self.pipeline);
                }
            }
        }
    }
}
