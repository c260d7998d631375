//! `export`, `import` and `copy`: moving sessions between stores and files, keeping
//! every byte and every piece of metadata, safe to run again.

mod line;
pub(crate) mod progress;
mod put;
mod tally;

use std::io::{BufRead, BufWriter, Write as _};
use std::path::Path;

use bot_sessions::{Namespace, Page, Record, SessionKey, StoreError};
use futures_util::StreamExt as _;
use futures_util::stream;

use crate::error::{CliError, CliResult};
use crate::store::{self, Opened};
use crate::util;
use line::Line;
use progress::Progress;
use tally::Tally;

/// Writes in flight at once (the server backends pipeline them; SQLite batches them
/// into one transaction).
const IN_FLIGHT: usize = 64;

async fn scan(src: &Opened, ns: &Namespace, cursor: Option<&str>) -> CliResult<Page> {
    src.store.scan(ns, cursor, util::PAGE, src.now()).await.map_err(|e| src.err(&e))
}

/// Visits every live record of `namespaces`, page by page, fetching the next page while
/// `each` works on the current one.
async fn walk<F, Fut>(src: &Opened, namespaces: &[Namespace], mut each: F) -> CliResult
where
    F: FnMut(Vec<(SessionKey, Record)>) -> Fut,
    Fut: std::future::Future<Output = CliResult>,
{
    for ns in namespaces {
        let mut page = scan(src, ns, None).await?;
        loop {
            let items = std::mem::take(&mut page.items);
            let next = page.next.take();
            let fetch = async {
                match &next {
                    Some(cursor) => scan(src, ns, Some(cursor)).await.map(Some),
                    None => Ok(None),
                }
            };
            let (fetched, done) = tokio::join!(fetch, each(items));
            done?;
            match fetched? {
                Some(p) => page = p,
                None => break,
            }
        }
    }
    Ok(())
}

/// Puts `items` into `dst`, many at a time, counting each outcome.
async fn put_all(
    dst: &Opened,
    items: Vec<(SessionKey, Record)>,
    force: bool,
    tally: &mut Tally,
    progress: &mut Progress,
) -> CliResult {
    let target = dst.store.as_ref();
    let mut results = stream::iter(items)
        .map(|(key, record)| async move {
            let outcome = put::put(target, &key, &record, force).await;
            (key, outcome)
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some((key, outcome)) = results.next().await {
        match outcome {
            Ok(o) => tally.add(&key, &o),
            Err(StoreError::Conflict { .. }) => tally.contended(&key),
            Err(e) => return Err(dst.err(&e)),
        }
        progress.add(1);
    }
    Ok(())
}

/// The exit of a transfer that skipped records it was not allowed to replace.
fn refused(tally: &Tally, to: &str) -> CliResult {
    if tally.newer + tally.contended > 0 {
        return Err(CliError::Failed(format!(
            "{} sessions were not written to {to} (newer or changing there; see above)",
            tally.newer + tally.contended
        )));
    }
    Ok(())
}

/// `export [--namespace NS] [-o FILE]`.
pub async fn export(src: &Opened, namespace: Option<&str>, output: Option<&Path>) -> CliResult {
    let namespaces = util::namespaces(src, namespace).await?;
    let dest = output.map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    let io = |e: std::io::Error| CliError::Failed(format!("cannot write {dest}: {e}"));
    let sink: Box<dyn std::io::Write> = match output {
        Some(path) => Box::new(std::fs::File::create(path).map_err(io)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let mut progress = Progress::new("export", None);
    let mut n = 0u64;
    walk(src, &namespaces, |items| {
        let mut result = Ok(());
        for (key, record) in &items {
            let written = serde_json::to_writer(&mut out, &Line::of(key, record))
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            if let Err(e) = written {
                result = Err(io(e));
                break;
            }
        }
        n += items.len() as u64;
        progress.add(items.len() as u64);
        std::future::ready(result)
    })
    .await?;
    out.flush().map_err(io)?;
    let secs = progress.finish().as_secs_f64();
    eprintln!("exported {n} sessions from {} to {dest} in {secs:.1}s", src.name);
    Ok(())
}

/// The longest import line read (16 MiB: a value of 12 MiB, base64, and its metadata;
/// sessions are limited to 1 MiB by default). A longer line is refused by its number
/// and skipped without being held in memory.
pub const MAX_LINE: usize = 16 << 20;

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// A line (without its newline) is in the buffer.
    Line,
    /// A line longer than [`MAX_LINE`]: skipped to its end, the buffer holds nothing of use.
    TooLong,
    /// The end of the input.
    End,
}

/// Reads the next line into `buf`, holding at most [`MAX_LINE`] + 1 bytes of it.
fn read_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<LineRead> {
    buf.clear();
    let limit = MAX_LINE as u64 + 1;
    let read = std::io::Read::take(&mut *reader, limit).read_until(b'\n', buf)?;
    if read == 0 {
        return Ok(LineRead::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(LineRead::Line);
    }
    if buf.len() <= MAX_LINE {
        // The last line, without a newline.
        return Ok(LineRead::Line);
    }
    // Too long: drop what was read and skip to the end of the line.
    buf.clear();
    buf.shrink_to(1 << 16);
    loop {
        let (found, used) = {
            let available = reader.fill_buf()?;
            match available.iter().position(|&b| b == b'\n') {
                Some(i) => (true, i + 1),
                None => (false, available.len()),
            }
        };
        reader.consume(used);
        if found || used == 0 {
            return Ok(LineRead::TooLong);
        }
    }
}

/// How many lines are parsed before their records are written.
const CHUNK: usize = 1000;

/// `import [FILE] [--force]`.
pub async fn import(dst: &Opened, file: Option<&Path>, force: bool, as_json: bool) -> CliResult {
    let (source, mut reader): (String, Box<dyn BufRead>) = match file.filter(|p| *p != Path::new("-")) {
        Some(path) => {
            let f = std::fs::File::open(path)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
            (path.display().to_string(), Box::new(std::io::BufReader::with_capacity(1 << 16, f)))
        }
        None => ("stdin".to_owned(), Box::new(std::io::stdin().lock())),
    };
    let mut tally = Tally::default();
    let mut progress = Progress::new("import", None);
    let (mut number, mut bad) = (0u64, 0u64);
    let mut buf = Vec::new();
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut eof = false;
        while chunk.len() < CHUNK {
            let read = read_line(&mut reader, &mut buf)
                .map_err(|e| CliError::Failed(format!("cannot read {source} after line {number}: {e}")))?;
            let whole = match read {
                LineRead::End => {
                    eof = true;
                    break;
                }
                LineRead::Line => true,
                LineRead::TooLong => false,
            };
            number += 1;
            if !whole {
                bad += 1;
                eprintln!("{source}: line {number}: longer than {MAX_LINE} bytes; nothing of this line was imported");
                continue;
            }
            let text = buf.trim_ascii();
            if text.is_empty() {
                continue;
            }
            match Line::parse(text, dst.now()) {
                Ok(item) => chunk.push(item),
                Err(why) => {
                    bad += 1;
                    eprintln!("{source}: line {number}: {why}; nothing of this line was imported");
                }
            }
        }
        if let Err(e) = put_all(dst, chunk, force, &mut tally, &mut progress).await {
            tally.report("imported", &dst.name, progress.finish().as_secs_f64(), as_json);
            return Err(e);
        }
        if eof {
            break;
        }
    }
    tally.report("imported", &dst.name, progress.finish().as_secs_f64(), as_json);
    if bad > 0 {
        return Err(CliError::Usage(format!(
            "{bad} bad line{} in {source} (reported above, not imported); {} sessions went in",
            if bad == 1 { "" } else { "s" },
            tally.written
        )));
    }
    refused(&tally, &dst.name)
}

/// `copy --to URL [--namespace NS] [--force]`.
pub async fn copy(src: &Opened, to: &str, namespace: Option<&str>, force: bool, as_json: bool) -> CliResult {
    let dst = store::open(Some(to)).await?;
    let namespaces = util::namespaces(src, namespace).await?;
    let mut total = 0u64;
    for ns in &namespaces {
        total += src.store.count(Some(ns), src.now()).await.map_err(|e| src.err(&e))?;
    }
    let mut tally = Tally::default();
    let mut progress = Progress::new("copy", Some(total));
    let walked = async {
        for ns in &namespaces {
            let mut page = scan(src, ns, None).await?;
            loop {
                let items = std::mem::take(&mut page.items);
                let next = page.next.take();
                let fetch = async {
                    match &next {
                        Some(cursor) => scan(src, ns, Some(cursor)).await.map(Some),
                        None => Ok(None),
                    }
                };
                // The next page is read while this one is written.
                let (fetched, done) = tokio::join!(fetch, put_all(&dst, items, force, &mut tally, &mut progress));
                done?;
                match fetched? {
                    Some(p) => page = p,
                    None => break,
                }
            }
        }
        Ok::<(), CliError>(())
    }
    .await;
    tally.report("copied", &dst.name, progress.finish().as_secs_f64(), as_json);
    walked?;
    refused(&tally, &dst.name)
}
