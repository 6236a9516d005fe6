//! The logit lens on demand: the last inspection's residuals stay in the worker (`Kept`), and
//! the page asks for the positions it shows. Its cost is a classifier matmul per layer and
//! position (stories110M: 0.6 GFLOP a position), far too much for a whole long text at once.

use tinylm_engine::trace::{lens_at, lens_flops, Inspection, LensHead};
use tinylm_engine::Config;

use super::super::bridge::{now_ms, post, yield_now};
use super::super::cancel::Cancel;
use super::super::session::Session;
use crate::protocol::inspect::{nearest, InspectNews, LensColumn, LENS_BUDGET_FLOPS};
use crate::protocol::FromWorker;

/// Lens columns are sent at most this often while the page waits for them.
const POST_MS: f64 = 50.0;

/// The residuals of the last inspection (its attention and logits went to the page), kept for
/// the logit lens at positions the page asks for later.
pub struct Kept {
    pub id: u64,
    pub model: u32,
    pub ins: Inspection,
}

/// The lens column at `pos`.
pub fn column(head: &LensHead, ins: &Inspection, pos: usize) -> Result<LensColumn, String> {
    lens_at(head, ins, pos).map(|tops| LensColumn { pos, tops }).map_err(|e| e.to_string())
}

/// The positions whose lens comes with the inspection: all of them within `LENS_BUDGET_FLOPS`,
/// else as many as fit (at least one), nearest `around` first.
pub fn up_front(c: &Config, n: usize, around: usize) -> Vec<usize> {
    let fit = (LENS_BUDGET_FLOPS / lens_flops(c, 1)) as usize;
    nearest(around.min(n.saturating_sub(1)), n).take(fit.clamp(1, n.max(1))).collect()
}

/// Answers `InspectCtl::Lens` (request `seq`): columns in the order asked, sent in small
/// batches, ending early when a newer request cancels this one (it asks again for what is
/// still missing).
pub async fn on_demand(s: &Session, kept: &Option<Kept>, id: u64, seq: u64, positions: Vec<usize>, superseded: &Cancel) {
    let Some(kept) = kept.as_ref().filter(|k| k.id == id) else { return };
    let Ok((stored, active)) = s.active() else { return };
    if active.id != kept.model {
        return;
    }
    let head = stored.model.lens_head();
    let mut columns = Vec::new();
    let mut last = now_ms();
    for &pos in positions.iter().filter(|&&p| p < kept.ins.len()) {
        match column(&head, &kept.ins, pos) {
            Ok(c) => columns.push(c),
            Err(e) => return web_sys::console::error_1(&e.into()),
        }
        if now_ms() - last >= POST_MS {
            send(kept.id, &mut columns);
            last = now_ms();
        }
        yield_now().await;
        if superseded.is_cancelled(seq) {
            break;
        }
    }
    send(kept.id, &mut columns);
}

fn send(id: u64, columns: &mut Vec<LensColumn>) {
    if !columns.is_empty() {
        post(&FromWorker::InspectNews(InspectNews::Lens { id, columns: std::mem::take(columns) }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinylm_engine::randmodel::named_shape;

    #[test]
    fn the_budget_decides_what_comes_up_front() {
        let (small, _) = named_shape("tiny64").unwrap();
        assert_eq!(up_front(&small, 256, 10).len(), 256);
        // stories110M: 0.59 GFLOP a position, so 6 positions fit in 4 GFLOP.
        let (big, _) = named_shape("s110m").unwrap();
        assert_eq!(up_front(&big, 400, 100), [100, 99, 101, 98, 102, 97]);
        assert_eq!(up_front(&big, 1, 0), [0]);
    }
}
