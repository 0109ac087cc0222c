//! `[feeders]`: CSV files whose rows feed iterations, read and parsed when the plan is built so
//! that a shard only hands rows out.
//!
//! Each column becomes a variable `feeder.column`, set before any step. It refuses what cannot
//! be a variable name; it never reads a file at run time.

use toml::Spanned;

use crate::plan::checker::Checker;
use crate::plan::journey::scope::Variables;
use crate::plan::journey::{FeedMode, Feeder, Row};
use crate::plan::template;
use crate::scenario::{FeederSpec, ScenarioSpec, Source};

/// Each feeder read, its columns given slots in `vars`.
pub(super) fn compile_feeders(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    source: &Source,
    vars: &mut Variables,
) -> Vec<Feeder> {
    let mut feeders = Vec::new();
    for (name, f) in &spec.feeders {
        if !template::is_identifier(name) {
            c.error(
                &f.span(),
                format!("feeder name `{name}` must be an identifier"),
            );
            continue;
        }
        let Some((columns, rows)) = load_feeder(c, f, source) else {
            continue;
        };
        let mode = match f.get_ref().mode.as_deref() {
            None | Some("sequential") => FeedMode::Sequential,
            Some("random") => FeedMode::Random,
            Some("unique") => FeedMode::Unique,
            Some(other) => {
                c.error(
                    &f.span(),
                    format!("feeder mode `{other}`: use \"sequential\", \"random\" or \"unique\""),
                );
                FeedMode::Sequential
            }
        };
        let slots = columns
            .into_iter()
            .map(|col| vars.set_before_steps(format!("{name}.{col}")))
            .collect();
        feeders.push(Feeder {
            name: name.clone(),
            mode,
            slots,
            rows,
        });
    }
    feeders
}

/// Most rows a feeder may hold.
const MAX_FEEDER_ROWS: usize = 10_000_000;

/// Reads a feeder's CSV: (column names, rows of cell bytes).
fn load_feeder(
    c: &mut Checker<'_>,
    f: &Spanned<FeederSpec>,
    source: &Source,
) -> Option<(Vec<String>, Vec<Row>)> {
    let spec = f.get_ref();
    let bytes = match source.read_file(&spec.file) {
        Ok(b) => b,
        Err(e) => {
            c.error(&f.span(), format!("feeder: {e}"));
            return None;
        }
    };
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
    let columns: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
        Err(e) => {
            c.error(&f.span(), format!("feeder `{}`: {e}", spec.file));
            return None;
        }
    };
    if let Some(bad) = columns.iter().find(|col| !template::is_identifier(col)) {
        c.error(
            &f.span(),
            format!(
                "feeder `{}`: column `{bad}` must be an identifier (it becomes a variable)",
                spec.file
            ),
        );
        return None;
    }
    let mut rows = Vec::new();
    for record in reader.byte_records() {
        match record {
            Ok(r) => rows.push(r.iter().map(<[u8]>::to_vec).collect()),
            Err(e) => {
                c.error(&f.span(), format!("feeder `{}`: {e}", spec.file));
                return None;
            }
        }
        if rows.len() > MAX_FEEDER_ROWS {
            c.error(
                &f.span(),
                format!(
                    "feeder `{}` has more than {MAX_FEEDER_ROWS} rows",
                    spec.file
                ),
            );
            return None;
        }
    }
    if rows.is_empty() {
        c.error(&f.span(), format!("feeder `{}` has no rows", spec.file));
        return None;
    }
    Some((columns, rows))
}
