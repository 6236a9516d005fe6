//! Colours: viridis (perceptually even, readable with colour-blindness) for the large heatmaps,
//! and one Okabe–Ito hue per head for the overview, whose lightness carries the value.

/// Viridis at `x` in [0, 1] (a published polynomial fit of the matplotlib map).
pub fn viridis(x: f32) -> [u8; 3] {
    const C: [[f32; 3]; 7] = [
        [0.277_727_33, 0.005_407_344_5, 0.334_099_8],
        [0.105_093_04, 1.404_613_5, 1.384_590_2],
        [-0.330_861_83, 0.214_847_56, 0.095_095_16],
        [-4.634_230_5, -5.799_101, -19.332_441],
        [6.228_27, 14.179_933, 56.690_55],
        [4.776_385, -13.745_146, -65.353_03],
        [-5.435_456, 4.645_852_6, 26.312_435],
    ];
    let t = x.clamp(0.0, 1.0);
    let mut rgb = [0u8; 3];
    for (k, out) in rgb.iter_mut().enumerate() {
        let v = C.iter().rev().fold(0f32, |acc, c| acc * t + c[k]);
        *out = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    }
    rgb
}

/// Okabe & Ito's colour-blind-safe set (yellow darkened so white-to-hue ramps stay visible).
const HUES: [[u8; 3]; 8] =
    [[0, 114, 178], [213, 94, 0], [0, 158, 115], [204, 121, 167], [86, 180, 233], [230, 159, 0], [160, 140, 20], [60, 60, 60]];

pub fn hue(head: usize) -> [u8; 3] {
    HUES[head % HUES.len()]
}

/// White at 0 through the head's hue at 0.7 to a darker hue at 1.
pub fn ramp(head: usize, x: f32) -> [u8; 3] {
    let c = hue(head);
    let t = x.clamp(0.0, 1.0);
    let mut out = [0u8; 3];
    for k in 0..3 {
        let v = c[k] as f32;
        out[k] = if t < 0.7 { 255.0 + (v - 255.0) * t / 0.7 } else { v * (1.0 - 0.5 * (t - 0.7) / 0.3) } as u8;
    }
    out
}

pub fn css(rgb: [u8; 3]) -> String {
    format!("rgb({},{},{})", rgb[0], rgb[1], rgb[2])
}
