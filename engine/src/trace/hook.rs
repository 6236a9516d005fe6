//! Points of the CPU forward pass where a caller reads or changes the activations: the trace
//! records through them, and the experiments (knock-outs, steering, patching) change them.

/// Called by `cpu::forward_adapted` for each layer in this order: `attention` per head, `heads`,
/// `attention_out`, `mlp_out`, `resid`. Every method does nothing unless implemented.
pub trait Hook {
    /// The post-softmax attention of head `h` at this position, `[pos + 1]`.
    fn attention(&mut self, _l: usize, _h: usize, _att: &[f32]) {}
    /// The heads' outputs side by side, `[q_dim]` (head h at `h·head_size`), before the output
    /// projection (and before a LoRA adapter's o_proj term, which reads them too).
    fn heads(&mut self, _l: usize, _pos: usize, _o: &mut [f32]) {}
    /// The attention block's output `[dim]` (wo·heads), before it is added to the residual.
    fn attention_out(&mut self, _l: usize, _pos: usize, _y: &mut [f32]) {}
    /// The MLP block's output `[dim]` (w2·…), before it is added to the residual.
    fn mlp_out(&mut self, _l: usize, _pos: usize, _y: &mut [f32]) {}
    /// The residual stream after layer `l` (after the MLP's add).
    fn resid(&mut self, _l: usize, _pos: usize, _x: &mut [f32]) {}
}

/// Two optional hooks as one, the first called first at every point (so a recorder second
/// sees what an edit first changed); `None` when both are missing.
pub(crate) fn both<'a>(a: Option<&'a mut dyn Hook>, b: Option<&'a mut dyn Hook>) -> Option<Both<'a>> {
    if a.is_none() && b.is_none() {
        return None;
    }
    Some(Both(a, b))
}

pub(crate) struct Both<'a>(Option<&'a mut dyn Hook>, Option<&'a mut dyn Hook>);

impl Hook for Both<'_> {
    fn attention(&mut self, l: usize, h: usize, att: &[f32]) {
        self.0.iter_mut().chain(self.1.iter_mut()).for_each(|k| k.attention(l, h, att));
    }
    fn heads(&mut self, l: usize, pos: usize, o: &mut [f32]) {
        self.0.iter_mut().chain(self.1.iter_mut()).for_each(|k| k.heads(l, pos, o));
    }
    fn attention_out(&mut self, l: usize, pos: usize, y: &mut [f32]) {
        self.0.iter_mut().chain(self.1.iter_mut()).for_each(|k| k.attention_out(l, pos, y));
    }
    fn mlp_out(&mut self, l: usize, pos: usize, y: &mut [f32]) {
        self.0.iter_mut().chain(self.1.iter_mut()).for_each(|k| k.mlp_out(l, pos, y));
    }
    fn resid(&mut self, l: usize, pos: usize, x: &mut [f32]) {
        self.0.iter_mut().chain(self.1.iter_mut()).for_each(|k| k.resid(l, pos, x));
    }
}
