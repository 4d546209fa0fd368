//! Reads provider files into apps: parse each with serde, validate it, then check what spans
//! files (duplicate keys). Errors name the file and the key path even when serde found them,
//! so nobody has to count TOML lines to find a typo.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::error::{CatalogError, Problem};
use super::raw::RawApp;
use super::types::App;
use super::validate;

/// Every app of `sources` (file name, contents), sorted by name; or every problem found.
pub(super) fn load<N, C>(sources: impl IntoIterator<Item = (N, C)>) -> Result<Vec<App>, CatalogError>
where
    N: AsRef<str>,
    C: AsRef<str>,
{
    let mut problems = Vec::new();
    let mut apps: Vec<(String, App)> = Vec::new();
    for (name, contents) in sources {
        let (name, contents) = (name.as_ref(), contents.as_ref());
        let file = format!("providers/{name}");
        let Some(stem) = name.strip_suffix(".toml") else {
            problems.push(Problem {
                file,
                field: "(file name)".to_owned(),
                message: "a provider file's name ends in .toml".to_owned(),
            });
            continue;
        };
        match toml::from_str::<RawApp>(contents) {
            Ok(raw) => {
                if let Some(app) = validate::app(&file, stem, raw, &mut problems) {
                    apps.push((file, app));
                }
            }
            Err(error) => problems.push(parse_problem(file, contents, &error)),
        }
    }
    let mut first_file: HashMap<&str, &str> = HashMap::new();
    for (file, app) in &apps {
        match first_file.entry(&app.key) {
            Entry::Occupied(first) => problems.push(Problem {
                file: file.clone(),
                field: "key".to_owned(),
                message: format!("`{}` is already the key of {}", app.key, first.get()),
            }),
            Entry::Vacant(slot) => {
                slot.insert(file);
            }
        }
    }
    if !problems.is_empty() {
        return Err(CatalogError::new(problems));
    }
    let mut apps: Vec<App> = apps.into_iter().map(|(_, app)| app).collect();
    apps.sort_by(|a, b| (a.name.to_lowercase(), &a.key).cmp(&(b.name.to_lowercase(), &b.key)));
    Ok(apps)
}

/// A serde or syntax error, located: the key path when the span names one, else the line.
fn parse_problem(file: String, source: &str, error: &toml::de::Error) -> Problem {
    let message = error.message().trim();
    let located = error.span().and_then(|span| locate(source, &span));
    let missing = message.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`'));
    let (field, message) = match (missing, located) {
        (Some(name), Some(table)) => (format!("{table}.{name}"), "is required".to_owned()),
        (Some(name), None) => (name.to_owned(), "is required".to_owned()),
        (None, Some(path)) => (path, message.to_owned()),
        (None, None) => (line_of(source, error.span()), message.to_owned()),
    };
    Problem { file, field, message }
}

fn line_of(source: &str, span: Option<Range<usize>>) -> String {
    match span.and_then(|span| source.get(..span.start)) {
        Some(before) => format!("line {}", before.matches('\n').count() + 1),
        None => "(file)".to_owned(),
    }
}

/// The key path (`oauth.token_url`, `fields[1]`) of the smallest key or value around `span`.
fn locate(source: &str, span: &Range<usize>) -> Option<String> {
    let document = DeTable::parse(source).ok()?;
    let mut best = None;
    visit_table(document.get_ref(), "", span, &mut best);
    best.map(|(_, path)| path)
}

/// The best candidate so far: its span's length and its path.
type Best = Option<(usize, String)>;

fn visit_table(table: &DeTable<'_>, prefix: &str, span: &Range<usize>, best: &mut Best) {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let path = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
        consider(key.span(), &path, span, best);
        consider(value.span(), &path, span, best);
        visit_value(value.get_ref(), &path, span, best);
    }
}

fn visit_value(value: &DeValue<'_>, path: &str, span: &Range<usize>, best: &mut Best) {
    match value {
        DeValue::Table(table) => visit_table(table, path, span, best),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let path = format!("{path}[{index}]");
                consider(item.span(), &path, span, best);
                visit_value(item.get_ref(), &path, span, best);
            }
        }
        _ => {}
    }
}

/// Keeps `path` if its span holds `span` and is no larger than the best so far; on a tie the
/// later, deeper path wins (an array of tables and its item share the header's span).
fn consider(candidate: Range<usize>, path: &str, span: &Range<usize>, best: &mut Best) {
    let holds = candidate.start <= span.start && span.end <= candidate.end;
    if holds && best.as_ref().is_none_or(|(len, _)| candidate.len() <= *len) {
        *best = Some((candidate.len(), path.to_owned()));
    }
}
