//! Edits that keep a TOML file as a person wrote it: comments, blank lines, key order and the
//! comment after a value all survive (toml_edit's document model keeps them as decor).

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Key, Value};

use crate::error::Error;
use crate::schema::{Board, is_board_name};

pub fn read(file: &Path) -> Result<DocumentMut, Error> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, "read", e))?;
    text.parse().map_err(|e: toml_edit::TomlError| {
        Error::new(file, "", format!("is not valid TOML: {}", e.to_string().trim_end()))
    })
}

/// Writes through a temporary file and a rename, so an interrupted edit leaves the old file.
pub fn write(file: &Path, doc: &DocumentMut) -> Result<(), Error> {
    let tmp = file.with_extension("toml.tmp");
    std::fs::write(&tmp, doc.to_string()).map_err(|e| Error::io(&tmp, "write", e))?;
    std::fs::rename(&tmp, file).map_err(|e| Error::io(file, "replace", e))
}

/// `Cross.toml` has no schema here; every other file is a board and must stay valid.
fn is_board_file(file: &Path) -> bool {
    file.file_name().is_none_or(|n| n != "Cross.toml")
}

/// Sets `dotted` (e.g. `limits.memory_max`, `target."armv7-unknown-linux-musleabihf".image`) to
/// `raw`. An existing string stays a string (`512M` needs no quotes); anything else is read as
/// a TOML value of the same type. Missing tables are created.
pub fn set(file: &Path, doc: &mut DocumentMut, dotted: &str, raw: &str) -> Result<(), Error> {
    let keys = Key::parse(dotted)
        .map_err(|_| Error::new(file, dotted, "expected a dotted TOML key such as limits.memory_max"))?;
    let Some((last, parents)) = keys.split_last() else {
        return Err(Error::new(file, dotted, "expected a dotted TOML key such as limits.memory_max"));
    };
    let mut table = doc.as_table_mut() as &mut dyn toml_edit::TableLike;
    for (i, key) in parents.iter().enumerate() {
        let here = keys.iter().take(i + 1).map(|k| k.to_string()).collect::<Vec<_>>().join(".");
        let item = table.entry(key.get()).or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        table =
            item.as_table_like_mut().ok_or_else(|| Error::new(file, &here, "expected a table here, found a value"))?;
    }
    let old = table.get(last.get()).and_then(Item::as_value).cloned();
    if table.get(last.get()).is_some() && old.is_none() {
        return Err(Error::new(file, dotted, "is a table; expected the key of a value"));
    }
    let mut new = new_value(old.as_ref(), raw).map_err(|m| Error::new(file, dotted, m))?;
    if let Some(old) = &old {
        // The space before the value and the comment after it belong to the line, not the value.
        *new.decor_mut() = old.decor().clone();
    }
    // Replace the item in place: `insert` would also replace the key, and with it the comment
    // lines above it, which toml_edit keeps as the key's decor.
    match table.get_mut(last.get()) {
        Some(item) => *item = Item::Value(new),
        None => {
            table.insert(last.get(), Item::Value(new));
        }
    }
    if is_board_file(file) {
        Board::from_document(file, doc)?;
    }
    Ok(())
}

fn new_value(old: Option<&Value>, raw: &str) -> Result<Value, String> {
    match old {
        Some(Value::String(_)) => Ok(Value::from(raw)),
        Some(old) => match raw.parse::<Value>() {
            Ok(v) if v.type_name() == old.type_name() => Ok(v),
            Ok(v) => Err(format!("expected {} like the current value, found {}", old.type_name(), v.type_name())),
            Err(_) => Err(format!("expected {} like the current value, found {raw:?}", old.type_name())),
        },
        // A new key: a TOML literal if it is one, else a string.
        None => Ok(raw.parse::<Value>().unwrap_or_else(|_| Value::from(raw))),
    }
}

/// `board new <name> --from <file>`: a copy with its comments, next to the original.
pub fn new_board(from: &Path, name: &str) -> Result<PathBuf, Error> {
    if !is_board_name(name) {
        return Err(Error::new(
            from,
            "name",
            format!("expected 1 to 64 letters, digits, '_' or '-' for the new board, found {name:?}"),
        ));
    }
    let mut doc = read(from)?;
    Board::from_document(from, &doc)?;
    // `set` checks the result as a board named after its new file.
    let out = from.with_file_name(format!("{name}.toml"));
    if out.exists() {
        return Err(Error::new(&out, "", "already exists; edit it with `board set` or choose another name"));
    }
    set(&out, &mut doc, "name", name)?;
    write(&out, &doc)?;
    Ok(out)
}

#[cfg(test)]
#[path = "edit_tests.rs"]
mod tests;
