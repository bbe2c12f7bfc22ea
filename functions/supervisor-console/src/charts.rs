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
                    "{}{},{} ",
                    if pen_down { "L" } else { "M" },
                    fmt(x(i)),
                    fmt(y(*v))
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
            v.map(|v| {
                format!(
                    "<circle cx=\"{}\" cy=\"{}\" r=\"3\"/>",
                    fmt(x(i)),
                    fmt(y(v))
                )
            })
        })
        .collect();
    let first = points.first().map(|p| p.0.as_str()).unwrap_or("");
    let last = points.last().map(|p| p.0.as_str()).unwrap_or("");
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">\
<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" class=\"axis\"/>\
<text x=\"{pad}\" y=\"{t}\" class=\"tick\">{}</text><text x=\"{r}\" y=\"{t}\" class=\"tick\" text-anchor=\"end\">{}</text>\
<text x=\"2\" y=\"{top}\" class=\"tick\">{max}</text><text x=\"2\" y=\"{b}\" class=\"tick\">{min}</text>\
<path d=\"{path}\" class=\"line\"/><g class=\"dots\">{dots}</g></svg>",
        attr(label),
        esc(first),
        esc(last),
        w = fmt(WIDTH),
        h = fmt(HEIGHT),
        pad = fmt(PAD),
        b = fmt(HEIGHT - PAD),
        r = fmt(WIDTH - PAD),
        t = fmt(HEIGHT - 8.0),
        top = fmt(PAD + 4.0),
        max = fmt(max),
        min = fmt(min),
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
                "<text x=\"0\" y=\"{}\" class=\"tick\">{}</text>\
<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" class=\"bar\"/>\
<text x=\"{}\" y=\"{}\" class=\"tick\">{}</text>",
                fmt(y + 15.0),
                esc(name),
                fmt(label_width),
                fmt(y + 3.0),
                fmt((v / max) * span),
                fmt(row_height - 8.0),
                fmt(label_width + (v / max) * span + 6.0),
                fmt(y + 15.0),
                fmt(*v)
            )
        })
        .collect();
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">{body}</svg>",
        fmt(WIDTH),
        fmt(height),
        attr(label)
    )
}

/// A number as the charts and tables write it: to one decimal, none when
/// it is whole. In tenths as an integer, so the console carries none of
/// the float formatting machinery (a size budget: every component ≤ 1 MiB).
pub fn fmt(v: f64) -> String {
    let tenths = (v * 10.0).round() as i64;
    let sign = if tenths < 0 { "-" } else { "" };
    let (whole, tenth) = (tenths.abs() / 10, tenths.abs() % 10);
    match tenth {
        0 => format!("{sign}{whole}"),
        _ => format!("{sign}{whole}.{tenth}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_written_to_one_decimal() {
        let written: Vec<String> = [0.0, 12.0, 12.34, 12.35, -0.5, -3.0, 99.96]
            .iter()
            .map(|v| super::fmt(*v))
            .collect();
        assert_eq!(written, ["0", "12", "12.3", "12.4", "-0.5", "-3", "100"]);
    }
}
