//! An external sort for report rows: rows are buffered up to a memory budget, sorted, spilled to
//! temporary run files, and merged back in order, so memory does not grow with the number of rows.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};

/// One row to sort: its order key and its bytes (the report sorts outcome records as JSON).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortRow {
    /// Order: file, processing time, message id.
    pub key: (String, String, String),
    /// The row's bytes.
    pub body: Vec<u8>,
}

impl SortRow {
    /// Heap bytes held, allocation slack included, plus the row's own size.
    fn size(&self) -> usize {
        self.key.0.capacity()
            + self.key.1.capacity()
            + self.key.2.capacity()
            + self.body.capacity()
            + 2 * std::mem::size_of::<Self>()
    }

    fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        for part in [
            self.key.0.as_bytes(),
            self.key.1.as_bytes(),
            self.key.2.as_bytes(),
            &self.body,
        ] {
            w.write_all(&(part.len() as u32).to_le_bytes())?;
            w.write_all(part)?;
        }
        Ok(())
    }

    fn read_from(r: &mut impl Read) -> io::Result<Option<Self>> {
        let mut parts: Vec<Vec<u8>> = Vec::with_capacity(4);
        for i in 0..4 {
            let mut len = [0u8; 4];
            match r.read_exact(&mut len) {
                Err(e) if i == 0 && e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                other => other?,
            }
            let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
            r.read_exact(&mut buf)?;
            parts.push(buf);
        }
        let text = |b: Vec<u8>| {
            String::from_utf8(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        };
        let body = parts.pop().unwrap_or_default();
        let k2 = text(parts.pop().unwrap_or_default())?;
        let k1 = text(parts.pop().unwrap_or_default())?;
        let k0 = text(parts.pop().unwrap_or_default())?;
        Ok(Some(Self {
            key: (k0, k1, k2),
            body,
        }))
    }
}

/// Sorts rows within a memory budget, spilling sorted runs to temporary files.
pub struct ExternalSorter {
    budget: usize,
    buffered: Vec<SortRow>,
    buffered_bytes: usize,
    runs: Vec<File>,
    /// Rows added.
    pub rows: u64,
}

impl ExternalSorter {
    /// A sorter that holds at most about `budget` bytes of rows in memory.
    pub fn new(budget: usize) -> Self {
        Self {
            budget: budget.max(1 << 20),
            buffered: Vec::new(),
            buffered_bytes: 0,
            runs: Vec::new(),
            rows: 0,
        }
    }

    /// Adds a row; may spill a run.
    pub fn push(&mut self, row: SortRow) -> io::Result<()> {
        self.buffered_bytes += row.size();
        self.buffered.push(row);
        self.rows += 1;
        if self.buffered_bytes >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.buffered.sort_unstable();
        let mut file = tempfile::tempfile()?;
        {
            let mut w = BufWriter::with_capacity(1 << 20, &mut file);
            for row in self.buffered.drain(..) {
                row.write_to(&mut w)?;
            }
            w.flush()?;
        }
        io::Seek::rewind(&mut file)?;
        self.runs.push(file);
        self.buffered_bytes = 0;
        Ok(())
    }

    /// Runs spilled so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Every row, in order.
    pub fn finish(mut self) -> io::Result<Merged> {
        if !self.runs.is_empty() && !self.buffered.is_empty() {
            // Spilled once already: spill the rest too, so the merge holds only read buffers.
            self.spill()?;
        }
        self.buffered.sort_unstable();
        let mut readers: Vec<BufReader<File>> = self
            .runs
            .drain(..)
            .map(|f| BufReader::with_capacity(256 * 1024, f))
            .collect();
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(row) = SortRow::read_from(r)? {
                heap.push(Reverse((row, i)));
            }
        }
        let memory = std::mem::take(&mut self.buffered).into_iter();
        Ok(Merged {
            readers,
            heap,
            memory: memory.peekable(),
        })
    }
}

/// The merged, ordered rows.
pub struct Merged {
    readers: Vec<BufReader<File>>,
    heap: BinaryHeap<Reverse<(SortRow, usize)>>,
    memory: std::iter::Peekable<std::vec::IntoIter<SortRow>>,
}

impl Iterator for Merged {
    type Item = io::Result<SortRow>;

    fn next(&mut self) -> Option<Self::Item> {
        let from_memory = match (self.memory.peek(), self.heap.peek()) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(m), Some(Reverse((h, _)))) => m <= h,
        };
        if from_memory {
            return self.memory.next().map(Ok);
        }
        let Reverse((row, i)) = self.heap.pop()?;
        match SortRow::read_from(&mut self.readers[i]) {
            Ok(Some(next)) => self.heap.push(Reverse((next, i))),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        Some(Ok(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn spilled_runs_merge_in_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut s = ExternalSorter::new(1 << 20);
        let mut expected = Vec::new();
        for i in 0..40_000u32 {
            let row = SortRow {
                key: (
                    format!("k{:05}", rng.random_range(0..5000)),
                    format!("t{i:06}"),
                    String::new(),
                ),
                body: vec![b'x'; 40 + (i % 8) as usize],
            };
            expected.push(row.clone());
            s.push(row).unwrap();
        }
        assert!(s.runs() >= 3, "the test must spill");
        expected.sort();
        let got: Vec<SortRow> = s.finish().unwrap().map(Result::unwrap).collect();
        assert_eq!(got, expected);
    }
}
