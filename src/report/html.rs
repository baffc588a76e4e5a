//! The report as one self-contained HTML page: numbers first, then the charts (inline SVG), then
//! the table of people. No scripts, no outside files: it opens anywhere, also offline.

use super::{charts, clock, Report, ReportError};
use crate::face::EMOTIONS;
use crate::face::EMOTION_COLOURS;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn rgb(i: usize) -> String {
    let [r, g, b] = EMOTION_COLOURS[i];
    format!("rgb({r},{g},{b})")
}

/// A bar of the emotion shares, as coloured segments.
fn share_bar(share: &[f64; 7]) -> String {
    let mut s = String::from("<div class=\"bar\">");
    for (i, v) in share.iter().enumerate() {
        if *v > 0.0 {
            s += &format!(
                "<span style=\"width:{:.1}%;background:{}\" title=\"{} {:.0}%\"></span>",
                v * 100.0,
                rgb(i),
                EMOTIONS[i],
                v * 100.0
            );
        }
    }
    s + "</div>"
}

pub fn page(r: &Report) -> Result<String, ReportError> {
    let [emotions, presence, stays, gender_age, hours, zones_chart] = charts::all_svg(r)?;
    let mut zone_rows = String::new();
    for (z, zone) in r.zones.iter().enumerate() {
        let t = r.zone_times(z);
        let mean = t.iter().sum::<f64>() / t.len().max(1) as f64;
        zone_rows += &format!(
            "<tr><td>{}</td><td>{}</td><td>{mean:.1} s</td><td>{:.1} s</td><td>{}</td></tr>\n",
            escape(&zone.name),
            zone.entered.len(),
            super::median(&t),
            zone.emotion_share()
                .as_ref()
                .map(share_bar)
                .unwrap_or_else(|| "-".into()),
        );
    }
    let zones_section = if r.zones.is_empty() {
        String::new()
    } else {
        format!(
            "<h2>Zones</h2>\n<table><thead><tr><th>zone</th><th>people who went in</th><th>mean time in it</th>\
             <th>median time in it</th><th>how they felt there</th></tr></thead>\n<tbody>\n{zone_rows}</tbody></table>\n\
             <div class=\"chart\">{zones_chart}</div>"
        )
    };
    let share = r.emotion_share();
    let title = match &r.source {
        Some(s) => format!("Faces in {}", escape(s)),
        None => "Faces in the recording".into(),
    };
    let gender = |g: &Option<String>, c: Option<f64>| match (g, c) {
        (Some(g), Some(c)) => format!("{} ({:.0}%)", escape(g), c * 100.0),
        (Some(g), None) => escape(g),
        _ => "-".into(),
    };
    let recognised = r.recognised();
    let visitors = r.visitors();
    let mut visitor_rows = String::new();
    for v in &visitors {
        visitor_rows += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            v.id.map(|i| format!("visitor {i}")).unwrap_or_else(|| "-".into()),
            v.visits,
            r.when(v.first),
            r.when(v.last),
            v.duration as f64 / 1e9,
            v.dominant().map(|i| EMOTIONS[i]).unwrap_or("-"),
            v.emotion_share.as_ref().map(share_bar).unwrap_or_default(),
            gender(&v.gender, v.gender_confidence),
            v.age.map(|a| format!("{a:.0}")).unwrap_or_else(|| "-".into()),
        );
    }
    let returning = visitors.iter().filter(|v| v.visits > 1).count();
    let per_visitor = visitors.iter().map(|v| v.duration as f64).sum::<f64>() / visitors.len().max(1) as f64 / 1e9;
    let mut rows = String::new();
    for p in &r.people {
        rows += &format!(
            "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            p.id,
            match (p.visitor, p.visit) {
                (Some(v), Some(n)) => format!("visitor {v}, visit {n}"),
                (Some(v), None) => format!("visitor {v}"),
                _ => "-".into(),
            },
            r.when(p.first),
            r.when(p.last),
            p.duration as f64 / 1e9,
            p.dominant().map(|i| EMOTIONS[i]).unwrap_or("-"),
            p.emotion_share.as_ref().map(share_bar).unwrap_or_default(),
            gender(&p.gender, p.gender_confidence),
            p.age.map(|a| format!("{a:.0}")).unwrap_or_else(|| "-".into()),
        );
    }
    let legend: String = (0..7)
        .map(|i| {
            format!(
                "<span class=\"key\"><i style=\"background:{}\"></i>{}</span>",
                rgb(i),
                EMOTIONS[i]
            )
        })
        .collect();
    let dominant = (0..7)
        .max_by(|&a, &b| share[a].total_cmp(&share[b]))
        .filter(|&i| share[i] > 0.0)
        .map(|i| format!("{} ({:.0}% of person-time)", EMOTIONS[i], share[i] * 100.0))
        .unwrap_or_else(|| "-".into());
    Ok(format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: "DejaVu Sans", sans-serif; margin: 24px auto; max-width: 1000px; color: #222; }}
h1 {{ font-size: 26px; margin-bottom: 4px; }}
.sub {{ color: #666; margin-top: 0; }}
.cards {{ display: flex; gap: 14px; margin: 18px 0; flex-wrap: wrap; }}
.card {{ background: #f4f6fa; border-radius: 8px; padding: 12px 18px; min-width: 150px; }}
.card b {{ display: block; font-size: 26px; }}
.chart {{ margin: 18px 0; }}
.chart svg {{ max-width: 100%; height: auto; }}
table {{ border-collapse: collapse; width: 100%; font-size: 14px; }}
th, td {{ text-align: left; padding: 5px 8px; border-bottom: 1px solid #e3e6ee; }}
th {{ background: #f4f6fa; }}
.bar {{ display: flex; width: 180px; height: 12px; border-radius: 3px; overflow: hidden; background: #eee; }}
.bar span {{ display: block; height: 100%; }}
.key {{ margin-right: 14px; font-size: 13px; }}
.key i {{ display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }}
</style></head><body>
<h1>{title}</h1>
<p class="sub">{span} of footage; {frames} frames with faces, {faces} faces seen. Made by faceemotion.</p>
<div class="cards">
{lead}
<div class="card"><b>{dominant}</b>most of the time</div>
</div>
<div class="chart">{emotions}</div>
<div class="chart">{presence}</div>
<div class="chart">{stays}</div>
<div class="chart">{gender_age}</div>
{hours}
{zones_section}
<p>{legend}</p>
{visitor_table}
<h2>{visits_title}</h2>
<table><thead><tr><th>track</th><th>who</th><th>first seen</th><th>last seen</th><th>time present</th><th>mostly</th><th>emotions</th><th>gender</th><th>age</th></tr></thead>
<tbody>
{rows}</tbody></table>
<p class="sub">{times} {who} Emotion, gender and age are what the models estimate, averaged over each person's time in view.</p>
</body></html>
"#,
        span = match (r.local_time(r.start), r.local_time(r.end)) {
            (Some(a), Some(b)) => format!("{} ({}-{})", clock(r.end - r.start), a.format("%-d %b %Y, %H:%M"), b.format("%H:%M")),
            _ => clock(r.end - r.start),
        },
        hours = if hours.is_empty() { String::new() } else { format!("<div class=\"chart\">{hours}</div>") },
        times = match r.wall {
            Some(_) => "Times are times of day, in this computer's time zone.",
            None => "Times are positions in the recording (minutes:seconds): the records do not say when it was made (faceemotion analyse --start gives it).",
        },
        frames = r.frames,
        faces = r.faces,
        lead = if recognised {
            format!(
                "<div class=\"card\"><b id=\"visitors\">{}</b>visitors</div>\n\
                 <div class=\"card\"><b id=\"visits\">{}</b>visits</div>\n\
                 <div class=\"card\"><b id=\"returning\">{returning}</b>came back</div>\n\
                 <div class=\"card\"><b>{per_visitor:.1} s</b>mean time per visitor</div>",
                visitors.len(),
                visitors.iter().map(|v| v.visits).sum::<u32>(),
            )
        } else {
            format!(
                "<div class=\"card\"><b id=\"people\">{}</b>people</div>\n\
                 <div class=\"card\"><b>{:.1} s</b>mean time present</div>\n\
                 <div class=\"card\"><b>{:.1} s</b>median time present</div>",
                r.people.len(),
                r.mean_presence(),
                r.median_presence(),
            )
        },
        visitor_table = if recognised {
            format!(
                "<h2>Visitors</h2>\n<table><thead><tr><th>visitor</th><th>visits</th><th>first seen</th><th>last seen</th>\
                 <th>time present</th><th>mostly</th><th>emotions</th><th>gender</th><th>age</th></tr></thead>\n<tbody>\n{visitor_rows}</tbody></table>"
            )
        } else {
            String::new()
        },
        visits_title = if recognised { "Visits" } else { "People" },
        who = if recognised {
            "A visit is one face track; a visitor is a person known again by their face when they come back within the element's reid-window (no face is kept after it)."
        } else {
            "A person is one face track: someone who leaves and comes back later counts again (visitor recognition was off)."
        },
    ))
}
