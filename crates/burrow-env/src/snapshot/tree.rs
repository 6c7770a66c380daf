//! A snapshot's folders in memory, each with its tree id once computed, so
//! that a change re-hashes only the folders on its way to the root.

use std::collections::BTreeMap;

use super::{object_id, Entry, TreeObject};
use crate::env::{EnvError, EnvResult};

/// One folder: its files, its sub-folders, and its tree id (`None`: changed
/// since it was computed). A folder without files below it is never kept, as
/// git keeps no empty trees.
#[derive(Debug, Default)]
pub struct Node {
    files: BTreeMap<String, Entry>,
    dirs: BTreeMap<String, Node>,
    id: Option<String>,
}

impl Node {
    /// The folders of `files` (paths with `/`), no id computed yet.
    pub fn from_files(files: &BTreeMap<String, Entry>) -> Self {
        let mut top = Node::default();
        for (path, entry) in files {
            top.insert(path, entry.clone());
        }
        top
    }

    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }

    /// Adds or replaces the file at `path`.
    pub fn insert(&mut self, path: &str, entry: Entry) {
        self.id = None;
        match path.split_once('/') {
            None => {
                self.dirs.remove(path);
                self.files.insert(path.to_string(), entry);
            }
            Some((dir, rest)) => {
                self.files.remove(dir);
                self.dirs.entry(dir.to_string()).or_default().insert(rest, entry);
            }
        }
    }

    /// Removes the file or the whole folder at `path`; returns whether
    /// anything was there.
    pub fn remove(&mut self, path: &str) -> bool {
        let removed = match path.split_once('/') {
            None => self.files.remove(path).is_some() | self.dirs.remove(path).is_some(),
            Some((dir, rest)) => match self.dirs.get_mut(dir) {
                Some(sub) => {
                    let removed = sub.remove(rest);
                    if sub.is_empty() {
                        self.dirs.remove(dir);
                    }
                    removed
                }
                None => false,
            },
        };
        if removed {
            self.id = None;
        }
        removed
    }

    /// The tree id of this folder, computing those that changed; each tree
    /// computed now goes to `out` (to be stored unless it is).
    pub fn hash(&mut self, out: &mut Vec<TreeObject>) -> EnvResult<String> {
        if let Some(id) = &self.id {
            return Ok(id.clone());
        }
        // Git orders a tree's entries by name, a folder's name read as if it ended in `/`.
        let mut rows: Vec<(Vec<u8>, &str, String)> = Vec::with_capacity(self.files.len() + self.dirs.len());
        for (name, e) in &self.files {
            rows.push((name.as_bytes().to_vec(), e.mode, e.blob.clone()));
        }
        for (name, sub) in &mut self.dirs {
            let mut key = name.as_bytes().to_vec();
            key.push(b'/');
            rows.push((key, "40000", sub.hash(out)?));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut body = Vec::new();
        for (name, mode, id) in rows {
            let name = if mode == "40000" { &name[..name.len() - 1] } else { &name[..] };
            body.extend_from_slice(mode.as_bytes());
            body.push(b' ');
            body.extend_from_slice(name);
            body.push(0);
            body.extend_from_slice(&hex::decode(&id).map_err(|e| EnvError::Io(format!("a bad object id {id}: {e}")))?);
        }
        let id = object_id("tree", &body);
        out.push((id.clone(), body));
        self.id = Some(id.clone());
        Ok(id)
    }
}
