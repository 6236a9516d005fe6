//! What the page's charts draw of a long series: a run of tens of thousands of steps drawn point
//! by point at every step froze the page, so a line keeps a bounded number of its points.

use std::borrow::Cow;

/// At most `2 · buckets + 1` of `points` (in step order): each of `buckets` runs of consecutive
/// points keeps its lowest and highest, in their order, so a spike stays visible; the last point
/// is always kept.
pub fn thin(points: &[(f64, f64)], buckets: usize) -> Cow<'_, [(f64, f64)]> {
    if points.len() <= 2 * buckets {
        return points.into();
    }
    let size = points.len().div_ceil(buckets);
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(2 * buckets + 1);
    let by_y = |a: &&(f64, f64), b: &&(f64, f64)| a.1.total_cmp(&b.1);
    for run in points.chunks(size) {
        let (Some(&lo), Some(&hi)) = (run.iter().min_by(by_y), run.iter().max_by(by_y)) else { continue };
        for p in if lo.0 <= hi.0 { [lo, hi] } else { [hi, lo] } {
            if out.last() != Some(&p) {
                out.push(p);
            }
        }
    }
    if let Some(&last) = points.last() {
        if out.last() != Some(&last) {
            out.push(last);
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::thin;

    #[test]
    fn thinning_keeps_each_runs_extremes_and_the_last_point() {
        let short: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, i as f64)).collect();
        assert_eq!(&*thin(&short, 5), &short[..], "short series are drawn whole");
        // 1,000 points of a slow fall with one spike at step 437.
        let long: Vec<(f64, f64)> =
            (0..1000).map(|i| (i as f64, if i == 437 { 50.0 } else { 10.0 - i as f64 / 100.0 })).collect();
        let t = thin(&long, 100);
        assert!(t.len() <= 201, "{}", t.len());
        assert!(t.contains(&(437.0, 50.0)), "the spike is kept");
        assert_eq!(t.first(), Some(&(0.0, 10.0)));
        assert_eq!(t.last(), long.last());
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "in step order");
        assert!(t.iter().all(|p| long.contains(p)), "only points of the series");
    }
}
