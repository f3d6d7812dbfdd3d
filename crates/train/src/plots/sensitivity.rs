//! `sensitivity.png`: the pruning sensitivity of a model's layers (or groups of layers), drawn in the
//! style of the other plots. Each group was pruned alone at a sweep of ratios and the model evaluated;
//! every group becomes one line of the metric against the pruning ratio, starting at the unpruned
//! baseline (ratio 0). The groups that lose the most at the largest ratio are drawn in colour and named
//! in a legend outside the axes on the right, the others are thin grey lines, and a dashed line marks
//! the baseline.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::font::{TextSpec, draw_text, text_width};
use super::{Axes, Canvas, DrawResult, class_color, padded_range, plot_error, render_png, truncate_to_width};
use crate::error::TrainError;

/// Size of the sensitivity plot in pixels.
pub const SENSITIVITY_SIZE: (u32, u32) = (1000, 600);

/// The frame of the axes, `(x0, y0, x1, y1)` in pixels; the legend lies right of it.
pub const SENSITIVITY_AXES: (i32, i32, i32, i32) = (76, 44, 660, 530);

/// How many of the most sensitive groups are drawn in colour ([`class_color`] of their rank) and named.
pub const MAX_HIGHLIGHTED: usize = 8;

/// Colour of the groups that are not highlighted.
pub const OTHER_COLOR: RGBColor = RGBColor(176, 176, 176);

/// Colour of the dashed baseline.
pub const BASELINE_COLOR: RGBColor = RGBColor(0, 0, 0);

/// Font size of the legend.
const LEGEND_SIZE: f64 = 13.0;

/// One legend entry: text, colour, line width, dashed.
type LegendEntry = (String, RGBColor, u32, bool);

/// Draws the pruning sensitivity plot to `out`: `labels[i]` names group `i` (e.g. "model.2.cv1 (L2)"),
/// `values[i][j]` is the metric (e.g. mAP50-95) with only group `i` pruned at `ratios[j]`, `baseline`
/// the metric of the unpruned model and `metric` the label of the y axis.
///
/// Every group is a line of the metric against the pruning ratio, with the point (0, `baseline`) put in
/// front. The [`MAX_HIGHLIGHTED`] groups with the largest drop at the largest ratio are drawn in the
/// colours of [`class_color`] (the most sensitive first) and named in the legend with their change
/// at that ratio; the others are thin grey lines ([`OTHER_COLOR`]). A dashed horizontal line marks the
/// baseline. The PNG is [`SENSITIVITY_SIZE`], written atomically.
///
/// There must be at least one group and one ratio, one row of `values` per label and one value per
/// ratio in each row; ratios must lie in 0..=1 and all values (and `baseline`) be finite. Otherwise,
/// or when the PNG cannot be drawn or written, this gives [`TrainError::Plot`] for `out`.
pub fn plot_sensitivity(
    labels: &[String],
    ratios: &[f64],
    values: &[Vec<f64>],
    baseline: f64,
    metric: &str,
    out: &Path,
) -> Result<(), TrainError> {
    check_inputs(labels, ratios, values, baseline, out)?;
    let last = largest_ratio(ratios);
    let order = most_sensitive(values, baseline, last);
    let highlighted = &order[..order.len().min(MAX_HIGHLIGHTED)];

    let lines: Vec<Vec<(f64, f64)>> = values.iter().map(|row| line_points(ratios, row, baseline)).collect();
    let x = padded_range(std::iter::once(0.0).chain(ratios.iter().copied()));
    let y = padded_range(std::iter::once(baseline).chain(values.iter().flatten().copied()));

    let legend = legend_entries(labels, values, baseline, highlighted, last);
    let others = labels.len() - highlighted.len();
    render_png(out, SENSITIVITY_SIZE, |root| {
        let axes = Axes {
            rect: SENSITIVITY_AXES,
            x,
            y,
            title: "Pruning sensitivity",
            xlabel: "pruning ratio",
            ylabel: metric,
            x_ticks: true,
            title_size: 20.0,
            tick_size: 13.0,
        };
        let mut chart = axes.draw(root)?;
        if others > 0 {
            let rest = (0..labels.len()).filter(|i| !highlighted.contains(i));
            for i in rest {
                chart.draw_series(LineSeries::new(lines[i].iter().copied(), OTHER_COLOR.stroke_width(1)))?;
            }
        }
        chart.draw_series(DashedLineSeries::new(
            [(x.0, baseline), (x.1, baseline)],
            6,
            4,
            BASELINE_COLOR.stroke_width(1),
        ))?;
        // The most sensitive group last, on top.
        for (rank, &i) in highlighted.iter().enumerate().rev() {
            let color = class_color(rank);
            chart.draw_series(LineSeries::new(lines[i].iter().copied(), color.stroke_width(2)))?;
            chart.draw_series(lines[i].iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        let header = legend_header(ratios[last]);
        draw_legend(root, (SENSITIVITY_AXES.2 + 16, SENSITIVITY_AXES.1), &header, &legend, others)
    })
}

/// Checks the shapes and values of the inputs of [`plot_sensitivity`].
fn check_inputs(
    labels: &[String],
    ratios: &[f64],
    values: &[Vec<f64>],
    baseline: f64,
    out: &Path,
) -> Result<(), TrainError> {
    if labels.is_empty() {
        return Err(plot_error(out, "no groups to plot (labels is empty)"));
    }
    if ratios.is_empty() {
        return Err(plot_error(out, "no pruning ratios to plot (ratios is empty)"));
    }
    if values.len() != labels.len() {
        return Err(plot_error(out, format!("{} rows of values for {} labels", values.len(), labels.len())));
    }
    if let Some((j, r)) = ratios.iter().enumerate().find(|(_, r)| !(0.0..=1.0).contains(*r)) {
        return Err(plot_error(out, format!("ratio {j} is {r}, pruning ratios must lie in 0..=1")));
    }
    if !baseline.is_finite() {
        return Err(plot_error(out, format!("the baseline is {baseline}, expected a finite value")));
    }
    for (i, row) in values.iter().enumerate() {
        if row.len() != ratios.len() {
            return Err(plot_error(
                out,
                format!("group {i} ('{}') has {} values for {} ratios", labels[i], row.len(), ratios.len()),
            ));
        }
        if let Some((j, v)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(plot_error(
                out,
                format!(
                    "group {i} ('{}') at ratio {}: the value is {v}, expected a finite value",
                    labels[i], ratios[j]
                ),
            ));
        }
    }
    Ok(())
}

/// Index of the largest ratio (the first one if it repeats); `ratios` is not empty.
fn largest_ratio(ratios: &[f64]) -> usize {
    ratios.iter().enumerate().fold(0, |best, (j, r)| if *r > ratios[best] { j } else { best })
}

/// The groups ordered from the largest drop `baseline - values[i][last]` to the smallest, ties by index.
fn most_sensitive(values: &[Vec<f64>], baseline: f64, last: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| (baseline - values[b][last]).total_cmp(&(baseline - values[a][last])).then(a.cmp(&b)));
    order
}

/// The line of one group: (0, `baseline`) then `(ratios[j], row[j])`, sorted by ratio.
fn line_points(ratios: &[f64], row: &[f64], baseline: f64) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> =
        std::iter::once((0.0, baseline)).chain(ratios.iter().copied().zip(row.iter().copied())).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// The first line of the legend: what the numbers after the names are.
fn legend_header(ratio: f64) -> String {
    format!("Most sensitive (change at ratio {ratio:.2})")
}

/// The legend entries of the highlighted groups, "label -0.123" (the change at the largest ratio), the
/// labels cut to fit the legend, and the baseline.
fn legend_entries(
    labels: &[String],
    values: &[Vec<f64>],
    baseline: f64,
    highlighted: &[usize],
    last: usize,
) -> Vec<LegendEntry> {
    let max_px = f64::from(SENSITIVITY_SIZE.0) - f64::from(SENSITIVITY_AXES.2 + 16) - 56.0 - 8.0;
    let mut entries: Vec<LegendEntry> = highlighted
        .iter()
        .enumerate()
        .map(|(rank, &i)| {
            let change = format!(" {:+.3}", values[i][last] - baseline);
            let label = truncate_to_width(&labels[i], LEGEND_SIZE, max_px - text_width(&change, LEGEND_SIZE));
            (label + &change, class_color(rank), 2, false)
        })
        .collect();
    entries.push((format!("baseline {baseline:.3}"), BASELINE_COLOR, 1, true));
    entries
}

/// A matplotlib-like legend box with its top left corner at `at`: a header line, then a line sample and
/// the text per entry, and a grey entry for the `others` groups that are not named.
fn draw_legend(root: &Canvas<'_>, at: (i32, i32), header: &str, entries: &[LegendEntry], others: usize) -> DrawResult {
    let row = 20;
    let mut all: Vec<LegendEntry> = entries.to_vec();
    if others > 0 {
        let s = if others == 1 { "" } else { "s" };
        all.push((format!("{others} other group{s}"), OTHER_COLOR, 1, false));
    }
    let widest =
        all.iter().map(|e| text_width(&e.0, LEGEND_SIZE) + 46.0).fold(text_width(header, LEGEND_SIZE), f64::max);
    let (left, top) = at;
    let right = (left + 10 + widest.ceil() as i32).min(SENSITIVITY_SIZE.0 as i32 - 4);
    let bottom = top + row * (all.len() as i32 + 1) + 10;
    root.draw(&Rectangle::new([(left, top), (right, bottom)], RGBColor(204, 204, 204).stroke_width(1)))?;
    let spec = TextSpec::new(LEGEND_SIZE).anchor(HPos::Left, VPos::Center);
    draw_text(root, header, (left + 8, top + 5 + row / 2), spec)?;
    for (k, (text, color, width, dashed)) in all.iter().enumerate() {
        let y = top + 5 + row * (k as i32 + 1) + row / 2;
        let style = color.stroke_width(*width);
        if *dashed {
            root.draw(&PathElement::new(vec![(left + 8, y), (left + 17, y)], style))?;
            root.draw(&PathElement::new(vec![(left + 22, y), (left + 31, y)], style))?;
            root.draw(&PathElement::new(vec![(left + 36, y), (left + 38, y)], style))?;
        } else {
            root.draw(&PathElement::new(vec![(left + 8, y), (left + 38, y)], style))?;
        }
        draw_text(root, text, (left + 46, y), spec)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` groups over `ratios`: group `i` loses `0.02 * i * r` at ratio `r`, except `worst` which
    /// loses `0.5 * r`.
    fn sweep(n: usize, ratios: &[f64], baseline: f64, worst: usize) -> (Vec<String>, Vec<Vec<f64>>) {
        let labels = (0..n).map(|i| format!("model.{i}.cv1 (L{i})")).collect();
        let values = (0..n)
            .map(|i| {
                let rate = if i == worst { 0.5 } else { 0.02 * i as f64 };
                ratios.iter().map(|r| baseline - rate * r).collect()
            })
            .collect();
        (labels, values)
    }

    #[test]
    fn ranks_by_the_drop_at_the_largest_ratio() {
        let ratios = [0.75, 0.25, 0.5];
        assert_eq!(largest_ratio(&ratios), 0);
        // At 0.75: drops 0.1, 0.3, 0.0, 0.3 (tie broken by index).
        let values = vec![vec![0.4, 0.0, 0.0], vec![0.2, 0.5, 0.5], vec![0.5, 0.1, 0.1], vec![0.2, 0.5, 0.5]];
        assert_eq!(most_sensitive(&values, 0.5, 0), vec![1, 3, 0, 2]);
        // The line starts at the baseline and follows the ratios in order.
        let line = line_points(&ratios, &values[0], 0.5);
        assert_eq!(line, vec![(0.0, 0.5), (0.25, 0.0), (0.5, 0.0), (0.75, 0.4)]);
        assert_eq!(legend_header(ratios[largest_ratio(&ratios)]), "Most sensitive (change at ratio 0.75)");
    }

    #[test]
    fn writes_a_png_with_the_most_sensitive_group_in_colour() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sub").join("sensitivity.png");
        let ratios = [0.25, 0.5, 0.75];
        let (labels, values) = sweep(12, &ratios, 0.6, 3);
        plot_sensitivity(&labels, &ratios, &values, 0.6, "mAP50-95", &out).unwrap();

        let bytes = std::fs::read(&out).unwrap();
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), SENSITIVITY_SIZE);
        let mut counts = std::collections::HashMap::new();
        for p in img.pixels() {
            *counts.entry(p.0).or_insert(0usize) += 1;
        }
        let visible = counts.values().filter(|&&c| c >= 20).count();
        assert!(visible >= 6, "only {visible} colours cover 20 pixels or more");
        // No temporary file left next to it.
        let names: Vec<_> = std::fs::read_dir(out.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);

        let (x0, y0, x1, y1) = SENSITIVITY_AXES;
        let inside = |c: RGBColor| {
            let mut ys = Vec::new();
            for y in y0 as u32..y1 as u32 {
                for x in x0 as u32..x1 as u32 {
                    if img.get_pixel(x, y).0 == [c.0, c.1, c.2] {
                        ys.push(y as i32);
                    }
                }
            }
            ys
        };
        // The most sensitive group (3, dropping to 0.225) in the first colour reaches the bottom of the
        // axes; the least sensitive ones are grey; the second colour exists too.
        let first = inside(class_color(0));
        assert!(first.len() > 200, "{} pixels of the first colour", first.len());
        let lowest = first.iter().copied().max().unwrap();
        assert!(lowest > y1 - (y1 - y0) / 8, "the worst line ends at y {lowest}");
        assert!(inside(OTHER_COLOR).len() > 100);
        assert!(inside(class_color(1)).len() > 100);
        // The legend (right of the axes) holds the colour samples.
        let legend_red = (0..y1 as u32)
            .flat_map(|y| (x1 as u32..SENSITIVITY_SIZE.0).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 == [class_color(0).0, class_color(0).1, class_color(0).2])
            .count();
        assert!(legend_red >= 30, "{legend_red} red pixels in the legend");
    }

    #[test]
    fn invalid_inputs_are_plot_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("bad.png");
        let ratios = [0.25, 0.5];
        let (labels, values) = sweep(3, &ratios, 0.5, 0);
        let short_row = vec![values[0].clone(), vec![0.4], values[2].clone()];
        let nan_row = vec![values[0].clone(), vec![0.4, f64::NAN], values[2].clone()];
        let bad = [
            plot_sensitivity(&labels, &ratios, &values[..2], 0.5, "mAP", &out),
            plot_sensitivity(&labels, &ratios, &short_row, 0.5, "mAP", &out),
            plot_sensitivity(&labels, &ratios, &nan_row, 0.5, "mAP", &out),
            plot_sensitivity(&labels, &ratios, &values, f64::INFINITY, "mAP", &out),
            plot_sensitivity(&labels, &[0.25, 1.5], &values, 0.5, "mAP", &out),
            plot_sensitivity(&labels, &[], &[vec![], vec![], vec![]], 0.5, "mAP", &out),
            plot_sensitivity(&[], &[], &[], 0.5, "mAP", &out),
        ];
        for err in bad {
            let err = err.unwrap_err();
            assert!(matches!(err, TrainError::Plot { ref path, .. } if *path == out), "{err:?}");
            assert!(err.to_string().contains("bad.png"), "{err}");
        }
        let err = plot_sensitivity(&labels, &ratios, &short_row, 0.5, "mAP", &out).unwrap_err().to_string();
        assert!(err.contains("model.1.cv1 (L1)") && err.contains("1 values for 2 ratios"), "{err}");
        assert!(!out.exists());
    }
}
