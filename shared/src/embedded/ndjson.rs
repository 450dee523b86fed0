//! Newline-delimited JSON files as event and dead-letter sinks.
//!
//! Every `send` / `put` serializes its whole batch into one buffer, appends it with a single
//! write to a file opened in append mode, then flushes and calls `sync_data` before returning:
//! once it returns `Ok`, the lines are on disk and the poller may commit its cursor. Writes of
//! one sink are serialized by a tokio mutex and run on the blocking pool.
//!
//! Several sink values (or processes) may append to the same file: with `O_APPEND` each
//! single write lands whole at the end of the file on local file systems, so lines from
//! different writers do not interleave.
//!
//! If a write fails part-way (a full disk, a crash), the file may end with a partial line. The
//! sink fences it: the next write starts with a newline, so the damage stays confined to one
//! unparsable line and the first new event is never glued onto it. The sink remembers a failed
//! write in memory, and on open it checks the file's last byte, so a partial line left by a
//! crashed or killed process is fenced too. The events of the partial line are re-sent by the
//! poller, which did not commit its cursor (delivery is at least once). The fence is never
//! repaired by truncating: another writer may be appending to the same file. Error messages
//! carry the I/O error kind, never content.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::store::{DeadLetter, DeadLetterSink, Envelope, EventSink, SinkError};

/// An append-only NDJSON file, synced on every append.
#[derive(Debug)]
struct AppendFile {
    path: PathBuf,
    state: Arc<Mutex<FileState>>,
    lines: AtomicU64,
}

#[derive(Debug)]
struct FileState {
    file: File,
    /// A previous write failed part-way: the file may end mid-line.
    needs_newline: bool,
}

impl AppendFile {
    fn open(path: &Path) -> Result<Self, SinkError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| io_error("creating directory", &e))?;
        }
        let existed = path.exists();
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| io_error("opening", &e))?;
        if !existed {
            sync_parent(path)?;
        }
        let needs_newline = ends_mid_line(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            state: Arc::new(Mutex::new(FileState {
                file,
                needs_newline,
            })),
            lines: AtomicU64::new(0),
        })
    }

    /// Appends one line per item, durably.
    async fn append<T: Serialize>(&self, items: impl Iterator<Item = T>) -> Result<(), SinkError> {
        let mut buf = Vec::new();
        let mut count = 0u64;
        for item in items {
            // Compact serde_json never emits a raw newline: strings escape it.
            serde_json::to_writer(&mut buf, &item)
                .map_err(|_| SinkError::Backend("a record could not be serialized".to_string()))?;
            buf.push(b'\n');
            count += 1;
        }
        if buf.is_empty() {
            return Ok(());
        }
        let mut state = Arc::clone(&self.state).lock_owned().await;
        tokio::task::spawn_blocking(move || {
            if state.needs_newline {
                buf.insert(0, b'\n');
            }
            let result = write_synced(&mut state.file, &buf);
            state.needs_newline = result.is_err();
            result
        })
        .await
        .map_err(|_| SinkError::Backend("ndjson write task failed".to_string()))?
        .map_err(|e| io_error("appending to", &e))?;
        self.lines.fetch_add(count, Ordering::Relaxed);
        Ok(())
    }
}

/// Whether the file at `path` is non-empty and does not end with a newline (a partial last
/// line left by an interrupted write).
fn ends_mid_line(path: &Path) -> Result<bool, SinkError> {
    let mut f = File::open(path).map_err(|e| io_error("reading the end of", &e))?;
    let len = f
        .metadata()
        .map_err(|e| io_error("reading the end of", &e))?
        .len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1))
        .and_then(|_| f.read_exact(&mut last))
        .map_err(|e| io_error("reading the end of", &e))?;
    Ok(last[0] != b'\n')
}

fn write_synced(file: &mut File, buf: &[u8]) -> std::io::Result<()> {
    file.write_all(buf)?;
    file.flush()?;
    file.sync_data()
}

/// Makes a newly created file's directory entry durable.
#[cfg(unix)]
fn sync_parent(path: &Path) -> Result<(), SinkError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("syncing directory of", &e))
}

#[cfg(not(unix))]
fn sync_parent(_path: &Path) -> Result<(), SinkError> {
    Ok(())
}

fn io_error(op: &str, e: &std::io::Error) -> SinkError {
    SinkError::Backend(format!("{op} ndjson file: {}", e.kind()))
}

/// Events as NDJSON: each event of each envelope becomes one line (the OCSF event as is).
#[derive(Debug)]
pub struct NdjsonSink {
    file: AppendFile,
}

impl NdjsonSink {
    /// Opens `path` for appending (e.g. `out/events.ndjson`), creating it and its parent
    /// directories if needed. Blocking: call it at startup.
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        Ok(Self {
            file: AppendFile::open(path)?,
        })
    }

    /// The file this sink appends to.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Events written durably by this value since it was opened.
    pub fn events_written(&self) -> u64 {
        self.file.lines.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl EventSink for NdjsonSink {
    async fn send(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        self.file
            .append(envelopes.iter().flat_map(|e| e.events.iter()))
            .await
    }
}

/// Dead letters as NDJSON: one [`DeadLetter`] per line (e.g. `out/dead-letters.ndjson`).
#[derive(Debug)]
pub struct NdjsonDeadLetters {
    file: AppendFile,
}

impl NdjsonDeadLetters {
    /// Opens `path` for appending, creating it and its parent directories if needed.
    /// Blocking: call it at startup.
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        Ok(Self {
            file: AppendFile::open(path)?,
        })
    }

    /// The file this sink appends to.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Dead letters written durably by this value since it was opened.
    pub fn letters_written(&self) -> u64 {
        self.file.lines.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl DeadLetterSink for NdjsonDeadLetters {
    async fn put(&self, letters: &[DeadLetter]) -> Result<(), SinkError> {
        self.file.append(letters.iter()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Stream;
    use serde_json::json;

    fn envelope(events: Vec<serde_json::Value>) -> Envelope {
        Envelope {
            envelope_version: 1,
            ocsf_version: "1.8.0".into(),
            tenant_id: "t1".into(),
            stream: Stream::Signins,
            events,
        }
    }

    fn read_lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn appends_across_instances_on_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out").join("events.ndjson");
        let a = NdjsonSink::open(&path).unwrap();
        let b = NdjsonSink::open(&path).unwrap();
        a.send(&[
            envelope(vec![json!({"n": 1}), json!({"n": 2, "s": "line\nbreak"})]),
            envelope(vec![json!({"n": 3})]),
        ])
        .await
        .unwrap();
        b.send(&[envelope(vec![json!({"n": 4})])]).await.unwrap();
        a.send(&[envelope(vec![])]).await.unwrap();
        drop(a);
        let c = NdjsonSink::open(&path).unwrap();
        c.send(&[envelope(vec![json!({"n": 5})])]).await.unwrap();
        assert_eq!(
            read_lines(&path),
            vec![
                json!({"n": 1}),
                json!({"n": 2, "s": "line\nbreak"}),
                json!({"n": 3}),
                json!({"n": 4}),
                json!({"n": 5}),
            ]
        );
        assert_eq!(b.events_written(), 1);
        assert_eq!(c.events_written(), 1);
        assert_eq!(c.path(), path.as_path());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_do_not_interleave_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let sinks = [
            Arc::new(NdjsonSink::open(&path).unwrap()),
            Arc::new(NdjsonSink::open(&path).unwrap()),
        ];
        let mut tasks = Vec::new();
        for w in 0..4usize {
            let sink = Arc::clone(&sinks[w % 2]);
            tasks.push(tokio::spawn(async move {
                for i in 0..25usize {
                    let events = (0..20)
                        .map(|j| json!({"w": w, "i": i, "j": j, "pad": "x".repeat(500)}))
                        .collect();
                    sink.send(&[envelope(events)]).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let lines = read_lines(&path);
        assert_eq!(lines.len(), 4 * 25 * 20);
        assert_eq!(sinks[0].events_written() + sinks[1].events_written(), 2000);
    }

    #[tokio::test]
    async fn dead_letters_are_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead-letters.ndjson");
        let d = NdjsonDeadLetters::open(&path).unwrap();
        let letter = DeadLetter {
            tenant_id: "t1".into(),
            stream: Stream::DirectoryAudits,
            reason: "missing activityDateTime".into(),
            record: json!({"id": "r1"}),
            at: chrono::DateTime::UNIX_EPOCH,
        };
        d.put(std::slice::from_ref(&letter)).await.unwrap();
        d.put(&[letter.clone(), letter.clone()]).await.unwrap();
        let back: Vec<DeadLetter> = read_lines(&path)
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect();
        assert_eq!(back, vec![letter.clone(), letter.clone(), letter]);
        assert_eq!(d.letters_written(), 3);
    }

    #[tokio::test]
    async fn a_partial_line_left_by_a_crash_is_fenced_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        // A previous process died (or the disk filled up) in the middle of its second line.
        std::fs::write(&path, b"{\"n\":1}\n{\"n\":2,\"s\":\"trunc").unwrap();
        let sink = NdjsonSink::open(&path).unwrap();
        sink.send(&[envelope(vec![json!({"n": 3}), json!({"n": 4})])])
            .await
            .unwrap();
        sink.send(&[envelope(vec![json!({"n": 5})])]).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text:?}");
        assert_eq!(
            lines[1], "{\"n\":2,\"s\":\"trunc",
            "the torn line stays on its own"
        );
        let parsed: Vec<serde_json::Value> = lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert_eq!(
            parsed,
            vec![
                json!({"n": 1}),
                json!({"n": 3}),
                json!({"n": 4}),
                json!({"n": 5})
            ],
            "every new event is a complete line"
        );
        assert!(text.ends_with('\n'));
        // The dead-letter file shares the fence.
        let dl_path = dir.path().join("dead-letters.ndjson");
        std::fs::write(&dl_path, b"{\"tenant_id\":\"t").unwrap();
        let d = NdjsonDeadLetters::open(&dl_path).unwrap();
        let letter = DeadLetter {
            tenant_id: "t1".into(),
            stream: Stream::Signins,
            reason: "r".into(),
            record: json!({}),
            at: chrono::DateTime::UNIX_EPOCH,
        };
        d.put(std::slice::from_ref(&letter)).await.unwrap();
        let text = std::fs::read_to_string(&dl_path).unwrap();
        let back: DeadLetter = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(back, letter);
    }

    #[tokio::test]
    async fn complete_and_empty_files_get_no_extra_newline() {
        let dir = tempfile::tempdir().unwrap();
        for (name, before) in [("empty.ndjson", ""), ("whole.ndjson", "{\"n\":1}\n")] {
            let path = dir.path().join(name);
            std::fs::write(&path, before).unwrap();
            let sink = NdjsonSink::open(&path).unwrap();
            sink.send(&[envelope(vec![json!({"n": 2})])]).await.unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text, format!("{before}{{\"n\":2}}\n"), "{name}");
        }
    }

    #[test]
    fn open_fails_cleanly_when_parent_is_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, b"x").unwrap();
        let err = NdjsonSink::open(&blocker.join("events.ndjson")).unwrap_err();
        assert!(matches!(err, SinkError::Backend(_)));
    }
}
