//! Splitting a weight matrix into row chunks that each fit one storage binding (WebGPU's
//! default is 128 MiB, and a buffer may hold at most 256 MiB), so large embeddings load.

use std::ops::Range;

use crate::error::{Error, Result};

/// Consecutive row ranges covering `0..rows` of a `[rows, cols]` f32 matrix, each at most
/// `max_bytes` long and at most `max_rows` rows, all of equal length except the last.
pub fn split_rows(rows: usize, cols: usize, max_bytes: u64, max_rows: usize) -> Result<Vec<Range<usize>>> {
    let row_bytes = cols as u64 * 4;
    if row_bytes == 0 || rows == 0 {
        return Err(Error::Gpu(format!("cannot split an empty [{rows}, {cols}] matrix")));
    }
    let fit = (max_bytes / row_bytes).min(max_rows as u64) as usize;
    if fit == 0 {
        return Err(Error::Gpu(format!("a row of {row_bytes} bytes does not fit a storage binding of {max_bytes} bytes")));
    }
    Ok((0..rows).step_by(fit).map(|r| r..(r + fit).min(rows)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_rows_in_order_within_limits() {
        for (rows, cols, max, max_rows) in [(512, 64, 4096, 1000), (32000, 768, 128 << 20, 1 << 18), (7, 3, 24, 5), (10, 1, 4, 3)]
        {
            let parts = split_rows(rows, cols, max, max_rows).unwrap();
            assert_eq!(parts.first().unwrap().start, 0);
            assert_eq!(parts.last().unwrap().end, rows);
            for w in parts.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
            for p in &parts {
                assert!(!p.is_empty() && p.len() <= max_rows && (p.len() * cols * 4) as u64 <= max);
            }
        }
        assert_eq!(split_rows(512, 64, 4096, 1000).unwrap().len(), 32);
        assert_eq!(split_rows(32000, 768, 128 << 20, 1 << 18).unwrap().len(), 1);
    }

    #[test]
    fn a_row_larger_than_the_limit_is_an_error() {
        assert!(matches!(split_rows(4, 100, 399, 10), Err(Error::Gpu(_))));
        assert!(split_rows(4, 100, 400, 10).is_ok());
    }
}
