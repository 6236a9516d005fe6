//! Heatmaps drawn into a canvas as one `ImageData`: thousands of cells cost one call, so a
//! 512-token context draws in milliseconds. Cells above the diagonal (the causal mask) are hatched.

use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

/// What to draw: an `n × n` row-major matrix, values divided by `max`, coloured by `colour`.
pub struct Heat<'a> {
    pub m: &'a [f32],
    pub n: usize,
    pub max: f32,
    /// Rows from here on are faded (playback has not reached them).
    pub visible: usize,
    /// Pixels per cell; 0 fits the matrix into `target` pixels (max-pooled when smaller).
    pub cell: usize,
    pub target: usize,
}

/// Pixels per cell for a large heatmap of about `target` pixels.
pub fn cell_for(n: usize, target: usize) -> usize {
    (target / n.max(1)).max(1)
}

pub fn draw(canvas: &HtmlCanvasElement, heat: &Heat, colour: &dyn Fn(f32) -> [u8; 3]) {
    let (px, per) = if heat.cell > 0 { (heat.n * heat.cell, 0) } else { (heat.n.min(heat.target).max(1), 1) };
    let mut buf = vec![0u8; px * px * 4];
    for y in 0..px {
        for x in 0..px {
            let rgb = pixel(heat, x, y, px, per, colour);
            let i = (y * px + x) * 4;
            buf[i..i + 3].copy_from_slice(&rgb);
            buf[i + 3] = 255;
        }
    }
    canvas.set_width(px as u32);
    canvas.set_height(px as u32);
    let Some(ctx) = context(canvas) else { return };
    if let Ok(img) = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&buf), px as u32, px as u32) {
        let _ = ctx.put_image_data(&img, 0.0, 0.0);
    }
    if heat.cell >= 24 && heat.n <= 24 {
        label_cells(&ctx, heat);
    }
}

/// The colour of pixel (x, y): one cell, or the max over the block of cells it covers.
fn pixel(heat: &Heat, x: usize, y: usize, px: usize, per: usize, colour: &dyn Fn(f32) -> [u8; 3]) -> [u8; 3] {
    let n = heat.n;
    let (t0, t1, s0, s1) = if per == 0 {
        let (t, s) = (y / heat.cell, x / heat.cell);
        (t, t + 1, s, s + 1)
    } else {
        (y * n / px, ((y + 1) * n / px).max(y * n / px + 1), x * n / px, ((x + 1) * n / px).max(x * n / px + 1))
    };
    if s0 > t1 - 1 {
        return hatch(x, y);
    }
    let mut v = 0f32;
    for t in t0..t1 {
        for s in s0..s1.min(t + 1) {
            v = v.max(heat.m[t * n + s]);
        }
    }
    let rgb = colour(v / heat.max);
    if t0 >= heat.visible {
        return rgb.map(|c| ((c as u16 + 3 * 240) / 4) as u8);
    }
    rgb
}

/// The causal mask: a query never sees later keys.
fn hatch(x: usize, y: usize) -> [u8; 3] {
    if (x + y).is_multiple_of(6) {
        [200, 200, 205]
    } else {
        [240, 240, 243]
    }
}

/// Exact percentages in the cells when they are large enough to read.
fn label_cells(ctx: &CanvasRenderingContext2d, heat: &Heat) {
    let c = heat.cell as f64;
    ctx.set_font(&format!("{}px system-ui, sans-serif", (c * 0.36).round()));
    ctx.set_text_align("center");
    ctx.set_text_baseline("middle");
    for t in 0..heat.n {
        for s in 0..=t {
            let v = heat.m[t * heat.n + s];
            let light = v / heat.max > 0.6;
            ctx.set_fill_style_str(if light { "#000" } else { "#fff" });
            let _ = ctx.fill_text(&format!("{:.0}", v * 100.0), (s as f64 + 0.5) * c, (t as f64 + 0.5) * c);
        }
    }
}

fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten()?.dyn_into().ok()
}

/// The cell under a pointer at `(x, y)` CSS pixels inside a canvas drawn for `n` cells.
pub fn cell_at(canvas: &HtmlCanvasElement, x: i32, y: i32, n: usize) -> Option<(usize, usize)> {
    let (w, h) = (canvas.client_width().max(1) as usize, canvas.client_height().max(1) as usize);
    let (x, y) = (x.max(0) as usize, y.max(0) as usize);
    let (t, s) = (y * n / h, x * n / w);
    (t < n && s < n).then_some((t, s))
}
