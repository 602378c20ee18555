//! PNG plots of a `fjord bench` run: `throughput.png` (MB/s and records/s
//! over time) and `latency.png` (publish latency percentiles over time and the
//! whole-run percentiles).
//!
//! Text goes through plotters' `ab_glyph` support with DejaVu Sans embedded,
//! so plotting works on hosts without fontconfig or any installed font.
//!
//! Every number from a results file is treated as untrusted: a run can end
//! with no intervals, all zeros, or NaN from a division by a zero-length
//! window, and a plot of a broken run is still worth more than an error.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{BenchResult, Interval, Percentiles, Workload};

/// Pixel size of each PNG.
pub const PLOT_SIZE: (u32, u32) = (1200, 800);

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("plot output: {0}")]
    Io(#[from] std::io::Error),
    #[error("registering the embedded plot font: {0}")]
    Font(String),
    #[error("drawing {}: {message}", file.display())]
    Draw { file: PathBuf, message: String },
}

/// Writes `throughput.png` and `latency.png` into `dir` (created if missing)
/// and returns their paths.
pub fn write_plots(result: &BenchResult, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    register_fonts()?;
    std::fs::create_dir_all(dir)?;
    let throughput = dir.join("throughput.png");
    render(&throughput, |root| draw_throughput(root, result))?;
    let latency = dir.join("latency.png");
    render(&latency, |root| draw_latency(root, result))?;
    Ok(vec![throughput, latency])
}

type Root<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawError = DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>;
type DrawResult = Result<(), DrawError>;
type Chart<'a, 'b, Y> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

const FONT: &str = "sans-serif";
const HEADER_PX: i32 = 84;
const LEGEND_PX: i32 = 200;
/// Beyond this many points per line the markers merge into a smear.
const MAX_MARKED_POINTS: usize = 90;
/// Larger magnitudes are corrupt input, and would overflow range arithmetic.
const MAX_ABS: f64 = 1e15;

const PUBLISH: RGBColor = RGBColor(31, 119, 180);
const CONSUME: RGBColor = RGBColor(255, 127, 14);
const END_TO_END: RGBColor = RGBColor(148, 103, 189);
const P50: RGBColor = RGBColor(44, 160, 44);
const P99: RGBColor = RGBColor(255, 127, 14);
const P99_9: RGBColor = RGBColor(214, 39, 40);
const WARMUP: RGBColor = RGBColor(200, 200, 200);
const GRID: RGBColor = RGBColor(235, 235, 235);
const NOTE: RGBColor = RGBColor(90, 90, 90);

/// plotters keeps fonts in a process-wide table, so registering once serves
/// every later plot; the outcome is kept so a bad font fails every call alike.
fn register_fonts() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let faces = [(FontStyle::Normal, dejavu::sans::regular(), "regular"), (FontStyle::Bold, dejavu::sans::bold(), "bold")];
            for (style, bytes, name) in faces {
                plotters::style::register_font(FONT, style, bytes).map_err(|_| format!("DejaVu Sans {name} is not a usable font"))?;
            }
            Ok(())
        })
        .clone()
        .map_err(PlotError::Font)
}

fn render(path: &Path, draw: impl FnOnce(&Root<'_>) -> DrawResult) -> Result<(), PlotError> {
    let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
    // present() explicitly: dropping the backend also writes the file but
    // swallows the error.
    draw(&root).and_then(|()| root.present()).map_err(|e| PlotError::Draw { file: path.to_path_buf(), message: e.to_string() })
}

// ---------------------------------------------------------------------------
// throughput.png

fn draw_throughput(root: &Root<'_>, r: &BenchResult) -> DrawResult {
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(HEADER_PX);
    draw_header(
        &header,
        &format!("fjord bench: throughput — {}", r.workload.bootstrap_servers),
        &[describe_workload(&r.workload), describe_throughput(r)],
    )?;
    let (top, bottom) = body.split_vertically(body.dim_in_pixel().1 as i32 / 2);

    let intervals = timeline(&r.intervals);
    let time = TimeAxis::new(&intervals);
    let consumed = r.workload.consumers > 0 || r.summary.consume.records > 0 || r.intervals.iter().any(|i| i.consume_records_per_s > 0.0);
    // Averages only mean something over a measured window that saw records.
    let measured = r.intervals.iter().any(|i| !i.warmup);
    let s = &r.summary;

    let mut mb = vec![Series::line("publish", PUBLISH, &intervals, |i| Some(i.publish_mb_per_s))];
    let mut rec = vec![Series::line("publish", PUBLISH, &intervals, |i| Some(i.publish_records_per_s))];
    let mut mb_means = vec![];
    let mut rec_means = vec![];
    if measured && s.publish.records > 0 {
        let mb = fmt_sig3(s.publish.mb_per_s);
        mb_means.push(Mean::new("publish", PUBLISH, s.publish.mb_per_s, mb + " MB/s"));
        let rec = fmt_count(s.publish.records_per_s);
        rec_means.push(Mean::new("publish", PUBLISH, s.publish.records_per_s, rec + " rec/s"));
    }
    if consumed {
        mb.push(Series::line("consume", CONSUME, &intervals, |i| Some(i.consume_mb_per_s)));
        rec.push(Series::line("consume", CONSUME, &intervals, |i| Some(i.consume_records_per_s)));
        if measured && s.consume.records > 0 {
            let mb = fmt_sig3(s.consume.mb_per_s);
            mb_means.push(Mean::new("consume", CONSUME, s.consume.mb_per_s, mb + " MB/s"));
            let rec = fmt_count(s.consume.records_per_s);
            rec_means.push(Mean::new("consume", CONSUME, s.consume.records_per_s, rec + " rec/s"));
        }
    }

    draw_rate_panel(&top, "throughput (MB/s of keys and values, MB = 2^20 bytes)", "MB/s", &time, &mb, &mb_means, fmt_sig3)?;
    draw_rate_panel(&bottom, "records per second", "records/s", &time, &rec, &rec_means, fmt_count)
}

fn describe_throughput(r: &BenchResult) -> String {
    let s = &r.summary;
    let mut parts = vec![format!("measured {} s after {} s warm-up", fmt_sig3(s.duration_s), fmt_sig3(r.workload.warmup_s))];
    parts.push(format!("publish {} MB/s, {} rec/s", fmt_sig3(s.publish.mb_per_s), fmt_count(s.publish.records_per_s)));
    if r.workload.consumers > 0 || s.consume.records > 0 {
        parts.push(format!("consume {} MB/s, {} rec/s", fmt_sig3(s.consume.mb_per_s), fmt_count(s.consume.records_per_s)));
    }
    parts.push(format!("{} publish errors", s.publish_errors));
    parts.join("  ·  ")
}

/// A measured-window average, drawn as a dashed line over the measured part.
struct Mean {
    label: String,
    color: RGBColor,
    value: f64,
}

impl Mean {
    fn new(what: &str, color: RGBColor, value: f64, shown: String) -> Self {
        Mean { label: format!("{what} average\n{shown}"), color, value }
    }
}

fn draw_rate_panel(
    area: &Root<'_>,
    caption: &str,
    y_desc: &str,
    time: &TimeAxis,
    series: &[Series],
    means: &[Mean],
    fmt: fn(f64) -> String,
) -> DrawResult {
    let (area, side) = split_legend(area);
    let means: Vec<&Mean> = means.iter().filter(|m| sane(m.value)).collect();
    let (y0, y1) = linear_range(series.iter().flat_map(|s| s.points.iter().flatten().map(|p| p.1)).chain(means.iter().map(|m| m.value)));
    let (x0, x1) = time.range;
    let mut chart = ChartBuilder::on(&area)
        .caption(caption, (FONT, 17))
        .margin(8)
        .x_label_area_size(44)
        .y_label_area_size(78)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc(y_desc)
        .x_label_formatter(&|v| fmt_sig(*v, 4))
        .y_label_formatter(&|v| fmt(*v))
        .light_line_style(GRID)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .draw()?;

    let mut legend = Legend::new();
    draw_warmup(&mut chart, time, (y0, y1), &mut legend)?;
    for s in series {
        draw_series(&mut chart, s, |y| y, &mut legend)?;
    }
    let start = time.measure_start.unwrap_or(x0);
    for m in means {
        chart.draw_series(DashedLineSeries::new([(start, m.value), (x1, m.value)], 8, 6, m.color.mix(0.8).stroke_width(1)))?;
        legend.push((m.label.clone(), Mark::Dashed(m.color)));
    }
    if time.empty {
        draw_note(&chart, "no intervals recorded")?;
    }
    draw_legend(&side, &chart, &legend)
}

// ---------------------------------------------------------------------------
// latency.png

fn draw_latency(root: &Root<'_>, r: &BenchResult) -> DrawResult {
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(HEADER_PX);
    let s = &r.summary;
    draw_header(
        &header,
        &format!("fjord bench: latency — {}", r.workload.bootstrap_servers),
        &[describe_workload(&r.workload), describe_latency(&s.publish_latency_ms, &s.end_to_end_latency_ms)],
    )?;
    let (top, bottom) = body.split_vertically(body.dim_in_pixel().1 as i32 * 11 / 20);
    draw_latency_over_time(&top, r)?;
    draw_latency_summary(&bottom, r)
}

fn describe_latency(publish: &Percentiles, e2e: &Percentiles) -> String {
    let one = |name: &str, p: &Percentiles| {
        if p.count == 0 {
            format!("{name}: no samples")
        } else {
            format!(
                "{name} p50 {} / p99 {} / max {} ms (n={})",
                fmt_sig3(p.p50),
                fmt_sig3(p.p99),
                fmt_sig3(p.max),
                fmt_count(p.count as f64)
            )
        }
    };
    format!("{}  ·  {}", one("publish", publish), one("end-to-end", e2e))
}

fn draw_latency_over_time(area: &Root<'_>, r: &BenchResult) -> DrawResult {
    let (area, side) = split_legend(area);
    let intervals = timeline(&r.intervals);
    let time = TimeAxis::new(&intervals);
    let mut series = vec![
        Series::line("publish p50", P50, &intervals, |i| sampled(&i.publish_latency_ms).map(|p| p.p50)),
        Series::line("publish p99", P99, &intervals, |i| sampled(&i.publish_latency_ms).map(|p| p.p99)),
        Series::line("publish p99.9", P99_9, &intervals, |i| sampled(&i.publish_latency_ms).map(|p| p.p99_9)),
    ];
    let e2e = Series::line("end-to-end p99", END_TO_END, &intervals, |i| sampled(&i.end_to_end_latency_ms).map(|p| p.p99));
    if e2e.has_points() {
        series.push(e2e.dashed());
    }
    let any = series.iter().any(Series::has_points);

    let (y0, y1) = log_range(series.iter().flat_map(|s| s.points.iter().flatten().map(|p| p.1)));
    let (x0, x1) = time.range;
    let mut chart = ChartBuilder::on(&area)
        .caption("latency per interval (ms, log scale)", (FONT, 17))
        .margin(8)
        .x_label_area_size(44)
        .y_label_area_size(78)
        .build_cartesian_2d(x0..x1, (y0..y1).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("ms")
        .x_label_formatter(&|v| fmt_sig(*v, 4))
        .y_label_formatter(&|v| fmt_sig3(*v))
        .light_line_style(GRID)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .draw()?;

    let mut legend = Legend::new();
    draw_warmup(&mut chart, &time, (y0, y1), &mut legend)?;
    // Zero sits at minus infinity on a log axis; pin it to the floor instead.
    for s in &series {
        draw_series(&mut chart, s, |y| y.clamp(y0, y1), &mut legend)?;
    }
    if time.empty {
        draw_note(&chart, "no intervals recorded")?;
    } else if !any {
        draw_note(&chart, "no samples")?;
    }
    draw_legend(&side, &chart, &legend)
}

const SUMMARY_LABELS: [&str; 5] = ["p50", "p95", "p99", "p99.9", "max"];

fn draw_latency_summary(area: &Root<'_>, r: &BenchResult) -> DrawResult {
    let (area, side) = split_legend(area);
    let s = &r.summary;
    let candidates =
        [("publish", "send → ack", PUBLISH, &s.publish_latency_ms), ("end-to-end", "send → consume", END_TO_END, &s.end_to_end_latency_ms)];
    let present: Vec<_> = candidates.iter().filter(|c| c.3.count > 0).collect();

    let values = |p: &Percentiles| [p.p50, p.p95, p.p99, p.p99_9, p.max];
    let (y0, y1) = log_range(present.iter().flat_map(|c| values(c.3)));
    let mut chart = ChartBuilder::on(&area)
        .caption("whole measured window (ms, log scale)", (FONT, 17))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(78)
        .build_cartesian_2d(Categories(SUMMARY_LABELS.len()), (y0..y1).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("ms")
        .x_label_formatter(&|v| {
            let i = v.round();
            SUMMARY_LABELS.get(i.max(0.0) as usize).filter(|_| i >= 0.0).map_or_else(String::new, |l| (*l).to_string())
        })
        .y_label_formatter(&|v| fmt_sig3(*v))
        .light_line_style(GRID)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()?;

    let group = 0.7;
    let width = group / present.len().max(1) as f64;
    let value_style = TextStyle::from((FONT, 12).into_font()).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (k, &&(_, _, color, p)) in present.iter().enumerate() {
        // (left, right, value); zero and below sit on the floor of the log axis.
        let bars: Vec<(f64, f64, f64)> = values(p)
            .into_iter()
            .enumerate()
            .filter(|&(_, v)| sane(v))
            .map(|(i, v)| {
                let left = i as f64 - group / 2.0 + k as f64 * width;
                (left, left + width * 0.92, v)
            })
            .collect();
        let top = |v: f64| v.clamp(y0, y1);
        chart.draw_series(bars.iter().map(|&(l, r, v)| Rectangle::new([(l, y0), (r, top(v))], color.filled())))?;
        chart.draw_series(bars.iter().map(|&(l, r, v)| Text::new(fmt_sig3(v), ((l + r) / 2.0, top(v)), value_style.clone())))?;
    }

    let mut legend = Legend::new();
    for &(name, what, color, p) in &candidates {
        if p.count > 0 {
            let n = fmt_count(p.count as f64);
            legend.push((format!("{name}\n{what}, n={n}"), Mark::Block(color)));
        } else if name == "end-to-end" && r.workload.consumers == 0 {
            legend.push((format!("{name}: no samples\n(no consumers)"), Mark::Blank));
        } else {
            legend.push((format!("{name}: no samples"), Mark::Blank));
        }
    }
    if present.is_empty() {
        draw_note(&chart, "no samples")?;
    }
    draw_legend(&side, &chart, &legend)
}

// ---------------------------------------------------------------------------
// Shared pieces

/// One line, `None` where an interval has nothing to show so that the line
/// breaks there instead of bridging the gap.
struct Series {
    label: String,
    color: RGBColor,
    dashed: bool,
    points: Vec<Option<(f64, f64)>>,
}

impl Series {
    fn line(label: &str, color: RGBColor, intervals: &[&Interval], value: impl Fn(&Interval) -> Option<f64>) -> Self {
        let points = intervals
            .iter()
            .map(|i| {
                let y = value(i)?;
                sane(y).then_some((i.t_s, y))
            })
            .collect();
        Series { label: label.to_string(), color, dashed: false, points }
    }

    fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }

    fn has_points(&self) -> bool {
        self.points.iter().any(Option::is_some)
    }

    fn segments(&self) -> Vec<Vec<(f64, f64)>> {
        let mut out: Vec<Vec<(f64, f64)>> = vec![];
        let mut current = vec![];
        for p in &self.points {
            match p {
                Some(p) => current.push(*p),
                None if !current.is_empty() => out.push(std::mem::take(&mut current)),
                None => {}
            }
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    }
}

fn draw_series<'a, 'b: 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, 'b, Y>,
    s: &Series,
    fit: impl Fn(f64) -> f64,
    legend: &mut Legend,
) -> DrawResult {
    let total = s.points.iter().flatten().count();
    let style = s.color.stroke_width(2);
    for seg in s.segments() {
        let seg: Vec<(f64, f64)> = seg.into_iter().map(|(x, y)| (x, fit(y))).collect();
        // A lone point has no line to show it, so it always gets a marker.
        let marker = if total <= MAX_MARKED_POINTS || seg.len() == 1 { 3 } else { 0 };
        if s.dashed {
            if marker > 0 {
                chart.draw_series(seg.iter().map(|&p| Circle::new(p, marker, style.filled())))?;
            }
            chart.draw_series(DashedLineSeries::new(seg, 10, 5, style))?;
        } else {
            chart.draw_series(LineSeries::new(seg, style).point_size(marker))?;
        }
    }
    if total > 0 {
        let mark = if s.dashed { Mark::Dashed(s.color) } else { Mark::Line(s.color) };
        legend.push((s.label.clone(), mark));
    }
    Ok(())
}

fn sampled(p: &Percentiles) -> Option<&Percentiles> {
    (p.count > 0).then_some(p)
}

/// An x axis of `n` categories at 0..n, ticked at each category only:
/// plotters' own f64 axis picks round ticks, which may fall between bars.
struct Categories(usize);

impl Ranged for Categories {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(self.range()).map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, _: H) -> Vec<f64> {
        (0..self.0).map(|i| i as f64).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        -0.5..self.0 as f64 - 0.5
    }
}

/// Intervals with a usable time, in time order: a hand-edited or merged
/// results file need not keep either.
fn timeline(intervals: &[Interval]) -> Vec<&Interval> {
    let mut v: Vec<&Interval> = intervals.iter().filter(|i| sane(i.t_s)).collect();
    v.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    v
}

/// Timing shared by the panels that plot intervals.
struct TimeAxis {
    range: (f64, f64),
    /// Warm-up stretches as (start, end) seconds; an interval covers the
    /// time from the previous interval's end to its own `t_s`.
    warmup: Vec<(f64, f64)>,
    /// Where the measured window begins, if warm-up precedes measured intervals.
    measure_start: Option<f64>,
    empty: bool,
}

impl TimeAxis {
    /// `intervals` as [`timeline`] returns them.
    fn new(intervals: &[&Interval]) -> Self {
        let lo = intervals.first().map_or(0.0, |i| i.t_s.min(0.0));
        let hi = intervals.last().map_or(lo, |i| i.t_s.max(lo));
        // The last interval ends exactly at `hi`; a little room keeps its
        // marker from being cut in half by the frame.
        let range = if hi - lo > 1e-9 { (lo, hi + (hi - lo) * 0.015) } else { (lo, lo + 1.0) };

        let mut warmup: Vec<(f64, f64)> = vec![];
        let mut measure_start = None;
        let mut prev = lo;
        for i in intervals {
            if i.warmup && i.t_s > prev {
                match warmup.last_mut() {
                    Some(last) if (last.1 - prev).abs() < 1e-9 => last.1 = i.t_s,
                    _ => warmup.push((prev, i.t_s)),
                }
            } else if !i.warmup && measure_start.is_none() && !warmup.is_empty() {
                measure_start = Some(prev);
            }
            prev = i.t_s;
        }
        TimeAxis { range, warmup, measure_start, empty: intervals.is_empty() }
    }
}

fn draw_warmup<'a, 'b: 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, 'b, Y>,
    time: &TimeAxis,
    (y0, y1): (f64, f64),
    legend: &mut Legend,
) -> DrawResult {
    if time.warmup.is_empty() {
        return Ok(());
    }
    // Translucent so the grid still shows through.
    chart.draw_series(time.warmup.iter().map(|&(a, b)| Rectangle::new([(a, y0), (b, y1)], WARMUP.mix(0.45).filled())))?;
    if let Some(t) = time.measure_start {
        chart.draw_series(DashedLineSeries::new([(t, y0), (t, y1)], 6, 4, NOTE.stroke_width(1)))?;
    }
    legend.push(("warm-up (excluded\nfrom the averages)".to_string(), Mark::Block(WARMUP)));
    Ok(())
}

#[derive(Clone, Copy)]
enum Mark {
    Line(RGBColor),
    Dashed(RGBColor),
    Block(RGBColor),
    Blank,
}

/// Entries as (text, mark); a `\n` in the text continues the entry on a
/// second line.
type Legend = Vec<(String, Mark)>;

/// Splits a panel into the chart and a legend column to its right: inside
/// the chart a legend hides data wherever the lines happen to run.
fn split_legend<'a>(area: &Root<'a>) -> (Root<'a>, Root<'a>) {
    let w = area.dim_in_pixel().0 as i32;
    area.split_horizontally((w - LEGEND_PX).max(w / 2))
}

fn draw_legend<X: Ranged, Y: Ranged>(
    side: &Root<'_>,
    chart: &ChartContext<'_, BitMapBackend<'_>, Cartesian2d<X, Y>>,
    legend: &Legend,
) -> DrawResult {
    // Align the first entry with the top of the plotting area.
    let mut y = chart.plotting_area().get_pixel_range().1.start - side.get_pixel_range().1.start + 8;
    let style = TextStyle::from((FONT, 13).into_font()).color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    let max_w = side.dim_in_pixel().0.saturating_sub(40);
    for (text, mark) in legend {
        match *mark {
            Mark::Line(c) => side.draw(&PathElement::new(vec![(4, y), (26, y)], c.stroke_width(2)))?,
            Mark::Dashed(c) => side.draw(&DashedPathElement::new(vec![(4, y), (26, y)], 5, 3, c.stroke_width(2)))?,
            Mark::Block(c) => side.draw(&Rectangle::new([(7, y - 6), (23, y + 6)], c.filled()))?,
            Mark::Blank => {}
        }
        for line in text.lines() {
            let line = fit_text(side, line, &style, max_w)?;
            side.draw(&Text::new(line, (32, y), style.clone()))?;
            y += 17;
        }
        y += 6;
    }
    Ok(())
}

/// A centred message over the plotting area, for panels with nothing to plot.
fn draw_note<X: Ranged, Y: Ranged>(chart: &ChartContext<'_, BitMapBackend<'_>, Cartesian2d<X, Y>>, text: &str) -> DrawResult {
    let area = chart.plotting_area().strip_coord_spec();
    let (w, h) = area.dim_in_pixel();
    let style = TextStyle::from((FONT, 22).into_font()).color(&NOTE).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(text.to_string(), (w as i32 / 2, h as i32 / 2), style))
}

fn draw_header(area: &Root<'_>, title: &str, lines: &[String]) -> DrawResult {
    let (w, _) = area.dim_in_pixel();
    let max_w = w.saturating_sub(40);
    let title_style = TextStyle::from(FontDesc::new(FontFamily::SansSerif, 22.0, FontStyle::Bold)).color(&BLACK);
    let title = fit_text(area, title, &title_style, max_w)?;
    area.draw(&Text::new(title, (20, 10), title_style))?;
    let line_style = TextStyle::from((FONT, 15).into_font()).color(&RGBColor(50, 50, 50));
    for (n, line) in lines.iter().enumerate() {
        let line = fit_text(area, line, &line_style, max_w)?;
        area.draw(&Text::new(line, (20, 42 + 20 * n as i32), line_style.clone()))?;
    }
    Ok(())
}

/// Cuts `text` to fit `max_w` pixels, so a long broker list cannot run off
/// the image and hide what follows it.
fn fit_text(area: &Root<'_>, text: &str, style: &TextStyle<'_>, max_w: u32) -> Result<String, DrawError> {
    if area.estimate_text_size(text, style)?.0 <= max_w {
        return Ok(text.to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    let (mut lo, mut hi) = (0, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().chain(['…'].iter()).collect();
        if area.estimate_text_size(&candidate, style)?.0 <= max_w {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(chars[..lo].iter().chain(['…'].iter()).collect())
}

fn describe_workload(w: &Workload) -> String {
    let topics = match w.topics.as_slice() {
        [one] => format!("topic {one}"),
        many => format!("{} topics", many.len()),
    };
    let acks = match w.acks {
        -1 => "all".to_string(),
        n => n.to_string(),
    };
    let compression = if w.compression.is_empty() { "none" } else { w.compression.as_str() };
    let rate = if w.target_rate == 0 { "max rate".to_string() } else { format!("{} rec/s target", fmt_count(w.target_rate as f64)) };
    let bound = match (w.duration_s, w.records) {
        (Some(d), _) => format!("{} s", fmt_sig3(d)),
        (None, Some(n)) => format!("{} records", fmt_count(n as f64)),
        (None, None) => "unbounded".to_string(),
    };
    format!(
        "{topics} × {} partitions (RF {})  ·  {} B records  ·  {} producers, {} consumers  ·  \
         acks={acks}  ·  compression {compression}  ·  batch {} B, linger {} ms  ·  {rate}  ·  {bound}",
        w.partitions_per_topic, w.replication_factor, w.record_size, w.producers, w.consumers, w.batch_size, w.linger_ms,
    )
}

/// Finite and of a magnitude a bench can produce.
fn sane(v: f64) -> bool {
    v.is_finite() && v.abs() <= MAX_ABS
}

/// A linear axis range holding every sane value and zero, with headroom above
/// and never empty.
fn linear_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| sane(*v)).fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi - lo < 1e-9 { (lo, lo + 1.0) } else { (lo, hi + (hi - lo) * 0.1) }
}

/// A log axis range in whole decades around the positive sane values, with
/// headroom above for value labels and the legend.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| sane(*v) && *v >= 1e-6).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo > hi {
        (0.1, 100.0)
    } else {
        let lo = 10f64.powf(lo.log10().floor());
        (lo, 10f64.powf((hi * 1.5).log10().ceil()).max(lo * 10.0))
    };
    // plotters finds decade ticks by repeated multiplication, so a tick that
    // lands exactly on an end can round to just outside it and vanish.
    (lo * (1.0 - 1e-9), hi * (1.0 + 1e-9))
}

/// `v` to `sig` significant digits, trailing zeros dropped.
fn fmt_sig(v: f64, sig: i32) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (sig - 1 - magnitude).clamp(0, 9) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

fn fmt_sig3(v: f64) -> String {
    fmt_sig(v, 3)
}

/// Counts and rates with k/M/G suffixes, so axis labels stay narrow.
fn fmt_count(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{}G", fmt_sig3(v / 1e9))
    } else if a >= 1e6 {
        format!("{}M", fmt_sig3(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", fmt_sig3(v / 1e3))
    } else {
        fmt_sig(v, 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Summary, Throughput};

    fn percentiles(base: f64, count: u64) -> Percentiles {
        Percentiles { count, mean: base * 1.2, p50: base, p95: base * 2.5, p99: base * 4.0, p99_9: base * 9.0, max: base * 20.0 }
    }

    fn workload(consumers: usize) -> Workload {
        Workload {
            bootstrap_servers: "127.0.0.1:9092".to_string(),
            topics: vec!["bench".to_string()],
            partitions_per_topic: 12,
            replication_factor: 3,
            record_size: 1024,
            producers: 4,
            consumers,
            target_rate: 0,
            acks: -1,
            compression: "lz4".to_string(),
            batch_size: 16384,
            linger_ms: 5,
            warmup_s: 5.0,
            duration_s: Some(30.0),
            records: None,
        }
    }

    /// Five warm-up seconds ramping up, then thirty steady ones with a dip.
    fn synthetic() -> BenchResult {
        let intervals = (1..=35)
            .map(|t| {
                let t = f64::from(t);
                let ramp = (t / 5.0).min(1.0);
                let wobble = 1.0 + 0.05 * (t * 1.7).sin() - if t == 20.0 { 0.4 } else { 0.0 };
                let mb = 95.0 * ramp * wobble;
                let rec = mb * 1024.0;
                Interval {
                    t_s: t,
                    warmup: t <= 5.0,
                    publish_records_per_s: rec,
                    publish_mb_per_s: mb,
                    consume_records_per_s: rec * 0.98,
                    consume_mb_per_s: mb * 0.98,
                    publish_latency_ms: percentiles(2.0 + (t * 0.9).cos(), 90_000),
                    end_to_end_latency_ms: percentiles(3.0 + (t * 0.7).sin(), 88_000),
                    publish_errors: 0,
                }
            })
            .collect();
        BenchResult {
            tool: "fjord bench test".to_string(),
            workload: workload(2),
            started_at_unix_s: 1_700_000_000.0,
            summary: Summary {
                duration_s: 30.0,
                publish: Throughput { records: 2_900_000, bytes: 2_900_000 * 1024, records_per_s: 96_000.0, mb_per_s: 93.75 },
                consume: Throughput { records: 2_850_000, bytes: 2_850_000 * 1024, records_per_s: 95_000.0, mb_per_s: 92.8 },
                publish_latency_ms: percentiles(2.1, 2_900_000),
                end_to_end_latency_ms: percentiles(3.2, 2_850_000),
                publish_errors: 0,
            },
            intervals,
        }
    }

    fn empty() -> BenchResult {
        BenchResult { tool: String::new(), workload: workload(0), started_at_unix_s: 0.0, summary: Summary::default(), intervals: vec![] }
    }

    /// Checks the PNG structure by hand (signature, IHDR size, chunks up to
    /// IEND) and returns (width, height).
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "no PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let mut at = 8;
        let mut last = [0u8; 4];
        while at + 8 <= bytes.len() {
            last.copy_from_slice(&bytes[at + 4..at + 8]);
            at += 12 + be(at) as usize;
        }
        assert_eq!(at, bytes.len(), "chunk lengths do not add up");
        assert_eq!(&last, b"IEND");
        (be(16), be(20))
    }

    fn check_files(paths: &[PathBuf], dir: &Path) {
        assert_eq!(paths, &[dir.join("throughput.png"), dir.join("latency.png")]);
        // A blank image of the same size is the floor a real plot must clear.
        let blank = dir.join("blank.png");
        {
            let root = BitMapBackend::new(&blank, PLOT_SIZE).into_drawing_area();
            root.fill(&WHITE).unwrap();
            root.present().unwrap();
        }
        let blank_len = std::fs::metadata(&blank).unwrap().len();
        for p in paths {
            let bytes = std::fs::read(p).unwrap();
            assert_eq!(png_size(&bytes), PLOT_SIZE, "{}", p.display());
            assert!(bytes.len() as u64 > 3 * blank_len, "{} is {} bytes, a blank image {blank_len}", p.display(), bytes.len());
        }
    }

    /// Draws into memory to look at pixels, which the PNG files would need a
    /// decoder for.
    fn pixels(draw: fn(&Root<'_>, &BenchResult) -> DrawResult, r: &BenchResult) -> Vec<u8> {
        register_fonts().unwrap();
        let (w, h) = PLOT_SIZE;
        let mut buf = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, PLOT_SIZE).into_drawing_area();
            draw(&root, r).unwrap();
            root.present().unwrap();
        }
        buf
    }

    fn count(buf: &[u8], c: RGBColor) -> usize {
        buf.chunks_exact(3).filter(|p| p == &[c.0, c.1, c.2]).count()
    }

    fn distinct(buf: &[u8]) -> usize {
        let mut seen: Vec<[u8; 3]> = buf.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    #[test]
    fn writes_both_plots() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/plots");
        let paths = write_plots(&synthetic(), &out).unwrap();
        check_files(&paths, &out);
    }

    #[test]
    fn plots_show_the_series() {
        let r = synthetic();
        let t = pixels(draw_throughput, &r);
        assert!(distinct(&t) > 20, "throughput looks flat");
        assert!(count(&t, PUBLISH) > 500, "publish line missing");
        assert!(count(&t, CONSUME) > 500, "consume line missing");
        let l = pixels(draw_latency, &r);
        assert!(distinct(&l) > 20, "latency looks flat");
        for c in [P50, P99, P99_9, PUBLISH, END_TO_END] {
            assert!(count(&l, c) > 100, "{c:?} missing from latency");
        }
    }

    #[test]
    fn empty_run_still_plots() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_plots(&empty(), dir.path()).unwrap();
        check_files(&paths, dir.path());
        let l = pixels(draw_latency, &empty());
        assert_eq!(count(&l, PUBLISH), 0);
    }

    #[test]
    fn zero_counts_and_no_consumers() {
        let mut r = synthetic();
        r.workload.consumers = 0;
        r.summary.consume = Throughput::default();
        r.summary.end_to_end_latency_ms = Percentiles::default();
        for i in &mut r.intervals {
            i.consume_mb_per_s = 0.0;
            i.consume_records_per_s = 0.0;
            i.end_to_end_latency_ms = Percentiles::default();
        }
        r.intervals[10].publish_latency_ms.count = 0;
        let l = pixels(draw_latency, &r);
        assert_eq!(count(&l, END_TO_END), 0);
        assert!(count(&l, P50) > 100);
        let t = pixels(draw_throughput, &r);
        assert_eq!(count(&t, CONSUME), 0);
    }

    #[test]
    fn hostile_values_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut one = synthetic();
        one.intervals.truncate(1);
        let mut zeros = empty();
        zeros.intervals = (1..=3)
            .map(|t| Interval {
                t_s: f64::from(t),
                publish_latency_ms: Percentiles { count: 5, ..Percentiles::default() },
                ..Interval::default()
            })
            .collect();
        zeros.summary.publish_latency_ms.count = 5;
        let mut nasty = synthetic();
        for (n, i) in nasty.intervals.iter_mut().enumerate() {
            let bad = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -5.0, 1e300][n % 5];
            match n % 4 {
                0 => i.t_s = bad,
                1 => i.publish_mb_per_s = bad,
                2 => i.publish_latency_ms.p99 = bad,
                _ => i.consume_records_per_s = bad,
            }
        }
        nasty.summary.publish_latency_ms.p99_9 = f64::NAN;
        nasty.summary.end_to_end_latency_ms.max = f64::INFINITY;
        nasty.summary.duration_s = f64::NAN;
        nasty.workload.bootstrap_servers = "broker-with-a-long-name.example:9092,".repeat(20);
        let mut backwards = synthetic();
        backwards.intervals.reverse();
        let mut all_warmup = synthetic();
        for i in &mut all_warmup.intervals {
            i.warmup = true;
        }
        for (name, r) in [("one", one), ("zeros", zeros), ("nasty", nasty), ("backwards", backwards), ("all_warmup", all_warmup)] {
            let out = dir.path().join(name);
            let paths = write_plots(&r, &out).unwrap();
            check_files(&paths, &out);
        }
    }

    #[test]
    fn ranges_are_never_empty() {
        assert_eq!(linear_range(std::iter::empty()), (0.0, 1.0));
        assert_eq!(linear_range([0.0, 0.0].into_iter()), (0.0, 1.0));
        assert_eq!(linear_range([f64::NAN, f64::INFINITY].into_iter()), (0.0, 1.0));
        assert_eq!(linear_range([-2.0].into_iter()), (-2.0, 0.2));
        let near = |(lo, hi): (f64, f64), want: (f64, f64)| {
            assert!((lo / want.0 - 1.0).abs() < 1e-6, "{lo}..{hi}");
            assert!((hi / want.1 - 1.0).abs() < 1e-6, "{lo}..{hi}");
        };
        near(log_range(std::iter::empty()), (0.1, 100.0));
        near(log_range([0.0, -1.0, f64::NAN].into_iter()), (0.1, 100.0));
        near(log_range([0.35, 42.0].into_iter()), (0.1, 100.0));
        let (lo, hi) = log_range([5.0].into_iter());
        assert!(lo < 5.0 && hi > 5.0, "{lo}..{hi}");
    }

    #[test]
    fn warmup_spans_merge_and_mark_the_start() {
        let r = synthetic();
        let time = TimeAxis::new(&timeline(&r.intervals));
        assert_eq!(time.range.0, 0.0);
        assert!(time.range.1 > 35.0 && time.range.1 < 36.0, "{:?}", time.range);
        assert_eq!(time.warmup, vec![(0.0, 5.0)]);
        assert_eq!(time.measure_start, Some(5.0));
        assert!(TimeAxis::new(&[]).warmup.is_empty());
        let mut shuffled = r.intervals.clone();
        shuffled.reverse();
        shuffled[3].t_s = f64::NAN;
        let time = TimeAxis::new(&timeline(&shuffled));
        assert_eq!(time.warmup, vec![(0.0, 5.0)]);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_sig3(93.75), "93.8");
        assert_eq!(fmt_sig3(0.010000000000000002), "0.01");
        assert_eq!(fmt_sig3(1000.0), "1000");
        assert_eq!(fmt_sig3(0.0), "0");
        assert_eq!(fmt_sig3(f64::NAN), "n/a");
        assert_eq!(fmt_count(96_000.0), "96k");
        assert_eq!(fmt_count(2_900_000.0), "2.9M");
        assert_eq!(fmt_count(1234.0), "1234");
    }

    #[test]
    fn long_text_is_cut_to_fit() {
        register_fonts().unwrap();
        let mut buf = vec![0u8; 300 * 40 * 3];
        let root = BitMapBackend::with_buffer(&mut buf, (300, 40)).into_drawing_area();
        let style = TextStyle::from((FONT, 15).into_font());
        let long = "x".repeat(500);
        let cut = fit_text(&root, &long, &style, 200).unwrap();
        assert!(cut.ends_with('…') && cut.len() < long.len());
        assert!(root.estimate_text_size(&cut, &style).unwrap().0 <= 200);
        assert_eq!(fit_text(&root, "short", &style, 200).unwrap(), "short");
    }
}
