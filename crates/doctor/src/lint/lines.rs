//! Byte offset → line number mapping, and line lookup inside YAML documents.
//!
//! `hcl-rs`'s own parser (`hcl::edit::parser`, re-exported from `hcl-edit`) keeps
//! byte spans on every block, attribute and expression, so Terraform locations
//! are exact: a span's start offset is mapped to a 1-based line with
//! [`LineIndex`]. `serde_yaml` does not expose spans on values, so YAML
//! locations are found textually: each document's text is kept, and the line
//! of a key (or of an env var name) is looked up in that text, taking
//! successive occurrences for successive lookups of the same key ([`YamlLines`]).
//! When a key cannot be found (flow style, anchors), the document's first line
//! is used.

use std::collections::HashMap;

/// Maps byte offsets of one source text to 1-based line numbers.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
    /// For generated text: the original line of each generated line.
    map: Option<Vec<u32>>,
}

impl LineIndex {
    pub(crate) fn new(src: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts, map: None }
    }

    /// Reports generated line `n` as `map[n - 1]` (text generated from another file).
    pub(crate) fn remapped(mut self, map: Vec<u32>) -> Self {
        self.map = Some(map);
        self
    }

    /// The 1-based line containing byte `offset`.
    pub(crate) fn line(&self, offset: usize) -> u32 {
        let idx = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        if let Some(line) = self.map.as_ref().and_then(|m| m.get(idx)) {
            return *line;
        }
        u32::try_from(idx + 1).unwrap_or(u32::MAX)
    }
}

/// Finds lines of keys inside one YAML document's text.
#[derive(Debug)]
pub(crate) struct YamlLines<'a> {
    lines: Vec<&'a str>,
    first_line: u32,
    used: HashMap<String, usize>,
}

impl<'a> YamlLines<'a> {
    /// `text` is the document's text, whose first line is line `first_line` of the file.
    pub(crate) fn new(text: &'a str, first_line: u32) -> Self {
        YamlLines {
            lines: text.lines().collect(),
            first_line,
            used: HashMap::new(),
        }
    }

    /// The first line of the document that holds content (not `---`, blank or a comment).
    pub(crate) fn start(&self) -> u32 {
        let idx = self
            .lines
            .iter()
            .position(|l| {
                let t = l.trim();
                !(t.is_empty() || t.starts_with('#') || t.starts_with("---"))
            })
            .unwrap_or(0);
        self.first_line + idx as u32
    }

    /// Line of the next unused occurrence of `key:` (also as `- key:`).
    pub(crate) fn next_key(&mut self, key: &str) -> u32 {
        let counter = format!("key:{key}");
        self.next_matching(&counter, |line| {
            let item = strip_item(line);
            // JSON manifests quote their keys.
            let (item, quoted) = match item.strip_prefix('"') {
                Some(rest) => (rest, true),
                None => (item, false),
            };
            item.strip_prefix(key).is_some_and(|rest| {
                let rest = if quoted {
                    match rest.strip_prefix('"') {
                        Some(r) => r,
                        None => return false,
                    }
                } else {
                    rest
                };
                rest.trim_start().starts_with(':')
            })
        })
    }

    /// Line of the next unused `name: <name>` entry (an env var, a container).
    pub(crate) fn next_name(&mut self, name: &str) -> u32 {
        let counter = format!("name:{name}");
        self.next_matching(&counter, |line| {
            let Some(rest) = strip_item(line).strip_prefix("name") else {
                return false;
            };
            let Some(value) = rest.trim_start().strip_prefix(':') else {
                return false;
            };
            let value = value.split(" #").next().unwrap_or("").trim();
            value.trim_matches(|c| c == '"' || c == '\'') == name
        })
    }

    fn next_matching(&mut self, counter: &str, pred: impl Fn(&str) -> bool) -> u32 {
        let nth = self.used.entry(counter.to_owned()).or_insert(0);
        let found = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| pred(l))
            .nth(*nth)
            .map(|(i, _)| i);
        match found {
            Some(i) => {
                *nth += 1;
                self.first_line + i as u32
            }
            None => self.start(),
        }
    }
}

/// Strips indentation and any leading `- ` sequence markers.
fn strip_item(line: &str) -> &str {
    let mut t = line.trim_start();
    while let Some(rest) = t.strip_prefix('-') {
        if rest.starts_with(' ') || rest.is_empty() {
            t = rest.trim_start();
        } else {
            break;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines() {
        let idx = LineIndex::new("a\nbc\n\nd");
        assert_eq!(idx.line(0), 1);
        assert_eq!(idx.line(1), 1);
        assert_eq!(idx.line(2), 2);
        assert_eq!(idx.line(5), 3);
        assert_eq!(idx.line(6), 4);
    }

    #[test]
    fn yaml_keys_and_names_are_found_in_order() {
        let text = "---\nkind: Pod\nspec:\n  hostNetwork: true\n  containers:\n  - name: a\n    env:\n    - name: \"X\"\n  - name: b\n    env:\n      - name: X # again\n";
        let mut lines = YamlLines::new(text, 10);
        assert_eq!(lines.start(), 11);
        assert_eq!(lines.next_key("hostNetwork"), 13);
        assert_eq!(lines.next_name("X"), 17);
        assert_eq!(lines.next_name("X"), 20);
        assert_eq!(lines.next_name("X"), 11, "falls back to the document start");
    }
}
