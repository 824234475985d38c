//! Import cycles: strongly connected components (Tarjan), each with one
//! shortest cycle through it as an example.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::paths::ModPath;

type Edges = BTreeMap<ModPath, BTreeSet<ModPath>>;

/// The strongly connected components of two or more modules, each sorted,
/// in sorted order.
pub(super) fn components(edges: &Edges) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        edges: &'a Edges,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let Some((w, _)) = s.edges.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found.sort();
    s.found
}

/// A shortest cycle from the component's first module back to it, inside
/// the component (first module repeated at the end).
pub(super) fn example_cycle(edges: &Edges, component: &[ModPath]) -> Vec<ModPath> {
    let members: BTreeSet<&ModPath> = component.iter().collect();
    let start = &component[0];
    let mut came_from: BTreeMap<&ModPath, &ModPath> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for next in edges.get(at).into_iter().flatten() {
            if next == start {
                let mut path = vec![start.clone()];
                let mut back = at;
                while back != start {
                    path.push(back.clone());
                    back = came_from[back];
                }
                path.push(start.clone());
                path.reverse();
                return path;
            }
            if members.contains(next) && !came_from.contains_key(next) {
                came_from.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    // Unreachable for a strongly connected component; show its members.
    component.to_vec()
}
