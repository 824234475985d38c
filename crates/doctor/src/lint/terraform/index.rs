//! A cross-file index of the resources and data sources of one configuration.

use super::file::{Item, TfFile};

/// Every resource and data block of a set of files.
pub(super) struct Index<'a> {
    pub(super) items: Vec<Item<'a>>,
}

impl<'a> Index<'a> {
    pub(super) fn new(files: &'a [TfFile]) -> Self {
        let mut items = Vec::new();
        for file in files {
            for b in file.body.blocks() {
                let data = match b.ident.value().as_str() {
                    "resource" => false,
                    "data" => true,
                    _ => continue,
                };
                if let [rtype, name, ..] = b.labels.as_slice() {
                    items.push(Item {
                        file,
                        data,
                        rtype: rtype.as_str(),
                        name: name.as_str(),
                        block: b,
                    });
                }
            }
        }
        Index { items }
    }

    pub(super) fn resources(&self, rtype: &'a str) -> impl Iterator<Item = Item<'a>> + '_ {
        self.items
            .iter()
            .filter(move |i| !i.data && i.rtype == rtype)
            .copied()
    }

    pub(super) fn find(&self, data: bool, rtype: &str, name: &str) -> Option<Item<'a>> {
        self.items
            .iter()
            .find(|i| i.data == data && i.rtype == rtype && i.name == name)
            .copied()
    }
}
