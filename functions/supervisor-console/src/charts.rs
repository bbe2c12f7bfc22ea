//! Charts as inline SVG, drawn on the server: no JavaScript, no fonts to load.
//! Every chart is an image with a text alternative, and the page puts the
//! numbers beside it in a table (screen readers read the table).

use html_escape::{encode_double_quoted_attribute as attr, encode_text as esc};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const PAD: f64 = 28.0;

/// A line over the points (`None`: no value that day, a gap), on a `min..max` scale.
pub fn line(label: &str, points: &[(String, Option<f64>)], (min, max): (f64, f64)) -> String {
    let n = points.len().max(2) as f64 - 1.0;
    let x = |i: usize| PAD + i as f64 * (WIDTH - 2.0 * PAD) / n;
    let y =
        |v: f64| HEIGHT - PAD - ((v - min) / (max - min)).clamp(0.0, 1.0) * (HEIGHT - 2.0 * PAD);
    let mut path = String::new();
    let mut pen_down = false;
    for (i, (_, v)) in points.iter().enumerate() {
        match v {
            Some(v) => {
                path.push_str(&format!(
                    "{}{:.1},{:.1} ",
                    if pen_down { "L" } else { "M" },
                    x(i),
                    y(*v)
                ));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let dots: String = points
        .iter()
        .enumerate()
        .filter_map(|(i, (_, v))| {
            v.map(|v| format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"/>", x(i), y(v)))
        })
        .collect();
    let first = points.first().map(|p| p.0.as_str()).unwrap_or("");
    let last = points.last().map(|p| p.0.as_str()).unwrap_or("");
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">\
<line x1=\"{PAD}\" y1=\"{b:.1}\" x2=\"{r:.1}\" y2=\"{b:.1}\" class=\"axis\"/>\
<text x=\"{PAD}\" y=\"{t:.1}\" class=\"tick\">{}</text><text x=\"{r:.1}\" y=\"{t:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>\
<text x=\"2\" y=\"{top:.1}\" class=\"tick\">{max}</text><text x=\"2\" y=\"{b:.1}\" class=\"tick\">{min}</text>\
<path d=\"{path}\" class=\"line\"/><g class=\"dots\">{dots}</g></svg>",
        attr(label),
        esc(first),
        esc(last),
        b = HEIGHT - PAD,
        r = WIDTH - PAD,
        t = HEIGHT - 8.0,
        top = PAD + 4.0,
    )
}

/// Horizontal bars, one per label, scaled to the largest value.
pub fn bars(label: &str, rows: &[(String, f64)]) -> String {
    let row_height = 24.0;
    let height = row_height * rows.len().max(1) as f64 + 8.0;
    let max = rows.iter().map(|r| r.1).fold(0.0_f64, f64::max).max(1.0);
    let label_width = 140.0;
    let span = WIDTH - label_width - 60.0;
    let body: String = rows
        .iter()
        .enumerate()
        .map(|(i, (name, v))| {
            let y = 4.0 + i as f64 * row_height;
            format!(
                "<text x=\"0\" y=\"{:.1}\" class=\"tick\">{}</text>\
<rect x=\"{label_width}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" class=\"bar\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\">{}</text>",
                y + 15.0,
                esc(name),
                y + 3.0,
                (v / max) * span,
                row_height - 8.0,
                label_width + (v / max) * span + 6.0,
                y + 15.0,
                fmt(*v)
            )
        })
        .collect();
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height:.1}\" role=\"img\" aria-label=\"{}\">{body}</svg>",
        attr(label)
    )
}

/// A number as the charts and tables write it.
pub fn fmt(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
