//! Key details' "Usage, last 30 days" (SPEC §10): a server-rendered SVG bar chart, one bar
//! per UTC day with accepted presentations and refusals stacked by reason, its legend, and the
//! same numbers as a table. Drawn here as numbers for `templates/keys/usage_chart.html`; the
//! colours are CSS custom properties (`--chart-*` in `static/app.css`), so both themes apply.

use chrono::{TimeZone, Utc};

use crate::service::key_auth::usage::Outcome;
use crate::service::keys::usage::Usage;

/// How many days the chart shows (today included).
pub const DAYS: i64 = 30;
/// The SVG's coordinate space: 10 units per day, 100 high (it stretches to its box).
const SLOT: f64 = 10.0;
const BAR: f64 = 7.0;
const HEIGHT: f64 = 100.0;
/// The days that carry a date under the axis (the first, every week, the last).
const TICKS: [usize; 5] = [0, 7, 14, 21, 29];
// (Day 14 is `days / 2 - 1` for 30 days: the tick kept on a phone.)

/// One stacked piece of a bar.
pub struct Segment {
    pub class: &'static str,
    pub y: String,
    pub height: String,
}

/// One day's bar.
pub struct Bar {
    pub x: String,
    pub width: String,
    /// The day's numbers, as a tooltip.
    pub title: String,
    pub segments: Vec<Segment>,
}

/// A legend entry: the colour's class, what it is and its total over the window.
pub struct LegendItem {
    pub class: &'static str,
    pub label: &'static str,
    pub total: String,
}

/// A day under the axis: its date on tick days, else empty.
pub struct Tick {
    pub label: String,
    pub class: &'static str,
}

/// A day in the table.
pub struct Row {
    pub day: String,
    pub accepted: String,
    /// One cell per refusal column.
    pub refused: Vec<String>,
    pub refused_total: String,
}

/// The chart, its legend and its table.
pub struct UsageChart {
    /// Nothing was presented in the window.
    pub empty: bool,
    /// "1,234 accepted, 12 refused in the last 30 days (Oct 25 to Nov 23, UTC)".
    pub summary: String,
    /// The first day, "Oct 25".
    pub first_day: String,
    pub y_max: String,
    /// The middle gridline's value when it is a whole number; empty otherwise.
    pub y_mid: String,
    pub bars: Vec<Bar>,
    pub legend: Vec<LegendItem>,
    pub ticks: Vec<Tick>,
    /// The refusal reasons that happened (the table's columns).
    pub columns: Vec<&'static str>,
    /// Days with any presentation, newest first.
    pub rows: Vec<Row>,
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `n` (the axis's top).
fn nice_ceiling(n: i64) -> i64 {
    let mut step = 1i64;
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= n {
                return step.saturating_mul(m);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// The CSS class of an outcome's colour.
pub fn class_of(o: Outcome) -> &'static str {
    match o {
        Outcome::Accepted => "usage-accepted",
        Outcome::WrongSecret => "usage-wrong-secret",
        Outcome::Inactive => "usage-inactive",
        Outcome::Expired => "usage-expired",
        Outcome::Locked => "usage-locked",
        Outcome::OwnerDisabled => "usage-owner-disabled",
        Outcome::ForbiddenNetwork => "usage-forbidden-network",
        Outcome::RateLimited => "usage-rate-limited",
    }
}

fn day_label(start: i64, format: &str) -> String {
    Utc.timestamp_opt(start, 0)
        .single()
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

fn units(v: f64) -> String {
    format!("{v:.2}")
}

impl UsageChart {
    /// The chart of a key's usage by day.
    pub fn of(usage: &Usage) -> Self {
        let total = usage.total();
        let refused_total = total.refused_total();
        let reasons: Vec<Outcome> = Outcome::ALL
            .into_iter()
            .skip(1)
            .filter(|o| total.refused.contains_key(o))
            .collect();
        let days = usage.buckets.len();
        let first_day = usage
            .buckets
            .first()
            .map(|b| day_label(b.start, "%b %-d"))
            .unwrap_or_default();
        let last_day = usage
            .buckets
            .last()
            .map(|b| day_label(b.start, "%b %-d"))
            .unwrap_or_default();
        let summary = format!(
            "{} accepted, {} refused in the last {days} days ({first_day} to {last_day}, UTC)",
            grouped(total.accepted),
            grouped(refused_total),
        );
        let highest = usage
            .buckets
            .iter()
            .map(|b| b.accepted + b.refused_total())
            .max()
            .unwrap_or(0);
        let top = nice_ceiling(highest.max(1));
        let scale = HEIGHT / top as f64;
        let bars = usage
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut segments = Vec::new();
                let mut y = HEIGHT;
                let pieces = std::iter::once((Outcome::Accepted, b.accepted)).chain(
                    reasons
                        .iter()
                        .map(|o| (*o, b.refused.get(o).copied().unwrap_or(0))),
                );
                let mut words = Vec::new();
                for (o, n) in pieces {
                    if n == 0 {
                        continue;
                    }
                    // A day with a handful beside a busy one stays visible: at least one unit.
                    let h = (n as f64 * scale).max(1.0).min(y);
                    y -= h;
                    segments.push(Segment {
                        class: class_of(o),
                        y: units(y),
                        height: units(h),
                    });
                    words.push(format!("{} {}", grouped(n), o.label().to_lowercase()));
                }
                let day = day_label(b.start, "%a %b %-d");
                Bar {
                    x: units(i as f64 * SLOT + (SLOT - BAR) / 2.0),
                    width: units(BAR),
                    title: if words.is_empty() {
                        format!("{day}: none")
                    } else {
                        format!("{day}: {}", words.join(", "))
                    },
                    segments,
                }
            })
            .collect();
        let mut legend = vec![LegendItem {
            class: class_of(Outcome::Accepted),
            label: Outcome::Accepted.label(),
            total: grouped(total.accepted),
        }];
        legend.extend(reasons.iter().map(|o| LegendItem {
            class: class_of(*o),
            label: o.label(),
            total: grouped(total.refused[o]),
        }));
        let ticks = (0..days)
            .map(|i| Tick {
                label: if TICKS.contains(&i) || i + 1 == days {
                    day_label(usage.buckets[i].start, "%b %-d")
                } else {
                    String::new()
                },
                // On a phone only the first, middle and last dates fit.
                class: if i == 0 {
                    "tick tick-start"
                } else if i + 1 == days {
                    "tick tick-end"
                } else if i == days / 2 - 1 {
                    "tick"
                } else {
                    "tick tick-minor"
                },
            })
            .collect();
        let rows = usage
            .buckets
            .iter()
            .rev()
            .filter(|b| b.accepted + b.refused_total() > 0)
            .map(|b| Row {
                day: day_label(b.start, "%Y-%m-%d"),
                accepted: grouped(b.accepted),
                refused: reasons
                    .iter()
                    .map(|o| grouped(b.refused.get(o).copied().unwrap_or(0)))
                    .collect(),
                refused_total: grouped(b.refused_total()),
            })
            .collect();
        UsageChart {
            empty: total.accepted + refused_total == 0,
            summary,
            first_day,
            y_max: grouped(top),
            y_mid: if top % 2 == 0 {
                grouped(top / 2)
            } else {
                String::new()
            },
            bars,
            legend,
            ticks,
            columns: reasons.iter().map(|o| o.label()).collect(),
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::service::keys::usage::{Bucket, Granularity};

    #[test]
    fn numbers_are_grouped_and_axes_round_up() {
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(999), "999");
        assert_eq!(
            [1, 3, 5, 7, 11, 250, 1001].map(nice_ceiling),
            [1, 5, 5, 10, 20, 500, 2000]
        );
    }

    #[test]
    fn bars_stack_accepted_under_refusals_and_fill_the_height_at_the_top() {
        let day = 86_400;
        let mut buckets: Vec<Bucket> = (0..30)
            .map(|i| Bucket {
                start: i * day,
                ..Bucket::default()
            })
            .collect();
        buckets[29].accepted = 3;
        buckets[29].refused = BTreeMap::from([(Outcome::WrongSecret, 2)]);
        let usage = Usage {
            key_id: "AK".into(),
            granularity: Granularity::Day,
            from: 0,
            to: 30 * day,
            buckets,
        };
        let chart = UsageChart::of(&usage);
        assert_eq!(chart.y_max, "5");
        let bar = &chart.bars[29];
        assert_eq!(
            bar.segments
                .iter()
                .map(|s| (s.class, s.y.as_str(), s.height.as_str()))
                .collect::<Vec<_>>(),
            [
                ("usage-accepted", "40.00", "60.00"),
                ("usage-wrong-secret", "0.00", "40.00")
            ]
        );
        assert_eq!(chart.rows.len(), 1);
        assert_eq!(chart.columns, ["Wrong secret"]);
        assert!(
            chart
                .summary
                .starts_with("3 accepted, 2 refused in the last 30 days")
        );
    }
}
