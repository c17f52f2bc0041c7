//! Reading an import file row by row, in bounded memory: CSV with a header row, or JSON
//! Lines (one object per line), in UTF-8 or GBK. A row comes out as the values of the columns
//! the mapping reads, or as the reason it cannot be read.

use anyhow::{Context, bail};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// From the mapping's `format`, else from the file's extension.
    pub fn choose(given: Option<&str>, path: &Path) -> anyhow::Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match given.unwrap_or(ext).to_ascii_lowercase().as_str() {
            "csv" | "txt" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json" => Ok(Format::Jsonl),
            other => {
                bail!("cannot tell the format of {other:?}: give format = \"csv\" or \"jsonl\"")
            }
        }
    }
}

/// One data row: its number (the line it starts on) and its values, or why it is unreadable.
pub struct Row {
    pub number: u64,
    pub values: Result<HashMap<String, String>, String>,
}

/// Counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `path` decoded from `encoding` (`utf-8` or `gbk`) into UTF-8; a byte that does not
/// decode becomes U+FFFD, which the row check reports.
fn decoded(
    path: &Path,
    encoding: &str,
    read: Arc<AtomicU64>,
) -> anyhow::Result<impl Read + Send + 'static + use<>> {
    let encoding = match encoding.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" => encoding_rs::UTF_8,
        "gbk" | "gb2312" | "gb18030" | "cp936" => encoding_rs::GB18030,
        other => bail!("encoding {other:?} is not supported: give utf-8 or gbk"),
    };
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding))
        .build(Counting { inner: file, read }))
}

/// The rows of `path`, reading the `columns` the mapping names. A JSON array (of tags)
/// becomes its items joined with `list_separator`, the mapping's tag separator.
pub fn rows(
    path: &Path,
    format: Format,
    encoding: &str,
    delimiter: Option<char>,
    columns: Vec<String>,
    list_separator: &str,
    read: Arc<AtomicU64>,
) -> anyhow::Result<Box<dyn Iterator<Item = Row> + Send>> {
    let input = decoded(path, encoding, read)?;
    match format {
        Format::Csv => csv_rows(input, delimiter, columns),
        Format::Jsonl => Ok(Box::new(json_rows(input, columns, list_separator.into()))),
    }
}

fn csv_rows(
    input: impl Read + Send + 'static,
    delimiter: Option<char>,
    columns: Vec<String>,
) -> anyhow::Result<Box<dyn Iterator<Item = Row> + Send>> {
    let delimiter = match delimiter {
        None => b',',
        Some(c) if c.is_ascii() => c as u8,
        Some(c) => bail!("the delimiter {c:?} is not a single ASCII character"),
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(input);
    let header = reader.headers().context("reading the header row")?.clone();
    let position: HashMap<&str, usize> = header
        .iter()
        .enumerate()
        .map(|(i, name)| (name.trim(), i))
        .collect();
    let missing: Vec<&String> = columns
        .iter()
        .filter(|c| !position.contains_key(c.as_str()))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the file has no column {}; its columns are: {}",
            missing
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            header.iter().collect::<Vec<_>>().join(", ")
        );
    }
    let wanted: Vec<(String, usize)> = columns
        .iter()
        .map(|c| (c.clone(), position[c.as_str()]))
        .collect();
    let width = header.len();
    // Numbers only grow, even for a record the reader could not place: a checkpoint saves the
    // last number handled, and a resumed import skips every row up to it.
    let mut last = 1u64;
    Ok(Box::new(reader.into_records().map(move |record| {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let number = e.position().map_or(last + 1, |p| p.line()).max(last + 1);
                last = number;
                return Row {
                    number,
                    values: Err(format!("unreadable CSV: {e}")),
                };
            }
        };
        let number = record.position().map_or(last + 1, |p| p.line()).max(last + 1);
        let spanned: u64 = record.iter().map(|f| f.matches('\n').count() as u64).sum();
        last = number + spanned;
        let values = if spanned > 0 {
            Err(format!(
                "a quoted field runs on over lines {} to {}: broken quoting (those lines were \
                 read into this row and are not imported)",
                number + 1,
                number + spanned
            ))
        } else if record.len() != width {
            Err(format!(
                "{} fields where the header has {width} (a missing or extra delimiter, or broken quoting)",
                record.len()
            ))
        } else {
            Ok(wanted
                .iter()
                .map(|(c, i)| (c.clone(), record.get(*i).unwrap_or("").to_string()))
                .collect())
        };
        Row { number, values }
    })))
}

fn json_rows(
    input: impl Read + Send + 'static,
    columns: Vec<String>,
    separator: String,
) -> impl Iterator<Item = Row> {
    BufReader::new(input)
        .lines()
        .enumerate()
        .filter_map(move |(i, line)| {
            let number = i as u64 + 1;
            let line = match line {
                Ok(l) if l.trim().is_empty() => return None,
                Ok(l) => l,
                Err(e) => {
                    return Some(Row {
                        number,
                        values: Err(format!("unreadable line: {e}")),
                    });
                }
            };
            let values =
                match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line) {
                    Err(e) => Err(format!("not a JSON object: {e}")),
                    Ok(object) => Ok(columns
                        .iter()
                        .filter_map(|c| Some((c.clone(), json_text(object.get(c)?, &separator)?)))
                        .collect()),
                };
            Some(Row { number, values })
        })
}

/// A JSON value as the text a CSV cell would hold; arrays (of tags) joined with `separator`.
fn json_text(value: &serde_json::Value, separator: &str) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|item| json_text(item, separator))
                .collect::<Vec<_>>()
                .join(separator),
        ),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(bytes: &[u8], ext: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn all(path: &Path, format: Format, encoding: &str) -> Vec<Row> {
        let columns = vec!["id".to_string(), "name".to_string()];
        rows(path, format, encoding, None, columns, ",", Arc::default())
            .unwrap()
            .collect()
    }

    #[test]
    fn gbk_csv_is_decoded_and_short_rows_are_reported() {
        let (gbk, _, _) = encoding_rs::GBK.encode("id,name\nA1,王小明\nA2\n");
        let f = file(&gbk, ".csv");
        let rows = all(f.path(), Format::Csv, "gbk");
        assert_eq!(rows[0].values.as_ref().unwrap()["name"], "王小明");
        assert_eq!(rows[0].number, 2);
        assert!(rows[1].values.as_ref().unwrap_err().contains("1 fields"));
    }

    #[test]
    fn a_missing_column_stops_the_import_before_it_starts() {
        let f = file(b"id,nom\nA1,x\n", ".csv");
        let columns = vec!["id".to_string(), "name".to_string()];
        let err = rows(
            f.path(),
            Format::Csv,
            "utf-8",
            None,
            columns,
            ",",
            Arc::default(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("\"name\""), "{err}");
    }

    #[test]
    fn json_lines_skip_blank_lines_and_report_broken_ones() {
        let f = file(
            b"{\"id\":\"A1\",\"name\":\"x\"}\n\n{broken\n{\"id\":7}\n",
            ".jsonl",
        );
        let rows = all(f.path(), Format::Jsonl, "utf-8");
        assert_eq!(rows.len(), 3);
        assert!(rows[1].values.is_err());
        assert_eq!(rows[1].number, 3);
        assert_eq!(rows[2].values.as_ref().unwrap()["id"], "7");
    }
}
