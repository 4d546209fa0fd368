//! Embeds the app catalog: lists `providers/*.toml` and writes `$OUT_DIR/providers.rs`, which
//! `src/catalog` includes, so the binary carries its catalog and needs no files beside it.
//! Validation happens at start (and in the catalog's tests), not here.

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

fn main() -> Result<(), Box<dyn Error>> {
    let providers = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("providers");
    // A directory makes Cargo rerun this script when a file is added or removed.
    println!("cargo:rerun-if-changed={}", providers.display());

    let mut files = Vec::new();
    let entries =
        fs::read_dir(&providers).map_err(|error| format!("cannot list {}: {error}", providers.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();

    let mut out = String::from(
        "/// Every `providers/*.toml` file as (file name, contents), sorted by file name.\n\
         pub static EMBEDDED: &[(&str, &str)] = &[\n",
    );
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_name().and_then(|name| name.to_str());
        let (Some(name), Some(full)) = (name, path.to_str()) else {
            return Err(format!("{}: the path is not UTF-8", path.display()).into());
        };
        writeln!(out, "    ({name:?}, include_str!({full:?})),")?;
    }
    out.push_str("];\n");

    fs::write(PathBuf::from(env::var("OUT_DIR")?).join("providers.rs"), out)?;
    Ok(())
}
