//! The delegation graph of an org's agents, checked when a configuration
//! is saved: an agent may not reach itself through its sub-agents, and no
//! chain of delegations through it may be deeper than the limit. (The
//! agent step refuses the same at run time, for graphs that changed since.)

use std::collections::{HashMap, HashSet};

/// Sub-agent levels allowed below a thread's own run unless the
/// `max_delegation_depth` variable says otherwise.
pub const DEFAULT_MAX_DEPTH: usize = 3;

/// One agent of the graph: its id, slug, and the sub-agent keys (slugs or
/// ids) its configurations name.
pub struct AgentNode {
    pub id: String,
    pub slug: String,
    pub subagents: Vec<String>,
}

/// Why giving agent `agent` (an id) the sub-agents `subagents` is refused,
/// if it is. Keys that name no agent are left to other checks.
pub fn delegation_problem(
    nodes: &[AgentNode],
    agent: &str,
    subagents: &[String],
    max_depth: usize,
) -> Option<String> {
    let ids: HashMap<&str, &str> = nodes
        .iter()
        .flat_map(|n| {
            [
                (n.id.as_str(), n.id.as_str()),
                (n.slug.as_str(), n.id.as_str()),
            ]
        })
        .collect();
    let slugs: HashMap<&str, &str> = nodes
        .iter()
        .map(|n| (n.id.as_str(), n.slug.as_str()))
        .collect();
    let edges: HashMap<&str, Vec<&str>> = nodes
        .iter()
        .map(|n| {
            let keys = if n.id == agent {
                subagents
            } else {
                &n.subagents
            };
            let targets = keys
                .iter()
                .filter_map(|k| ids.get(k.as_str()).copied())
                .collect();
            (n.id.as_str(), targets)
        })
        .collect();
    let name = |id: &str| slugs.get(id).copied().unwrap_or(id).to_string();
    if let Some(path) = path_back(&edges, agent) {
        let names: Vec<String> = path.iter().map(|id| name(id)).collect();
        return Some(format!("delegation may not loop: {}", names.join(" → ")));
    }
    let mut reverse: HashMap<&str, Vec<&str>> = HashMap::new();
    for (from, targets) in &edges {
        for to in targets {
            reverse.entry(to).or_default().push(from);
        }
    }
    // Paths longer than the limit need not be found in full.
    let cap = max_depth + 2;
    let mut up = longest(&reverse, agent, cap, &mut HashSet::new());
    up.reverse();
    let down = longest(&edges, agent, cap, &mut HashSet::new());
    let chain: Vec<&str> = up.into_iter().chain(down.into_iter().skip(1)).collect();
    let depth = chain.len() - 1;
    (depth > max_depth).then(|| {
        let names: Vec<String> = chain.iter().map(|id| name(id)).collect();
        format!(
            "delegation would be {depth} levels deep ({}); at most {max_depth} are allowed (max_delegation_depth)",
            names.join(" → ")
        )
    })
}

/// A path from `start` through its sub-agents back to itself, if any.
fn path_back<'a>(edges: &HashMap<&'a str, Vec<&'a str>>, start: &'a str) -> Option<Vec<&'a str>> {
    fn walk<'a>(
        edges: &HashMap<&'a str, Vec<&'a str>>,
        start: &'a str,
        at: &'a str,
        path: &mut Vec<&'a str>,
        seen: &mut HashSet<&'a str>,
    ) -> bool {
        for &next in edges.get(at).map(Vec::as_slice).unwrap_or_default() {
            path.push(next);
            if next == start || (seen.insert(next) && walk(edges, start, next, path, seen)) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = vec![start];
    walk(edges, start, start, &mut path, &mut HashSet::new()).then_some(path)
}

/// The longest simple path from `at` along `edges` (`at` first), of at
/// most `cap` agents.
fn longest<'a>(
    edges: &HashMap<&'a str, Vec<&'a str>>,
    at: &'a str,
    cap: usize,
    on_path: &mut HashSet<&'a str>,
) -> Vec<&'a str> {
    on_path.insert(at);
    let mut best = Vec::new();
    let next_steps = if cap > 1 {
        edges.get(at).map(Vec::as_slice).unwrap_or_default()
    } else {
        &[]
    };
    for &next in next_steps {
        if !on_path.contains(next) {
            let path = longest(edges, next, cap - 1, on_path);
            if path.len() > best.len() {
                best = path;
            }
        }
    }
    on_path.remove(at);
    best.insert(0, at);
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Vec<AgentNode> {
        edges
            .iter()
            .map(|(slug, subs)| AgentNode {
                id: format!("id-{slug}"),
                slug: slug.to_string(),
                subagents: subs.iter().map(|s| s.to_string()).collect(),
            })
            .collect()
    }

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn loops_through_slugs_or_ids_are_refused_with_their_path() {
        let g = graph(&[("a", &[]), ("b", &["c"]), ("c", &["id-a"])]);
        let why = delegation_problem(&g, "id-a", &keys(&["b"]), 3).unwrap();
        assert_eq!(why, "delegation may not loop: a → b → c → a");
        let why = delegation_problem(&g, "id-a", &keys(&["a"]), 3).unwrap();
        assert_eq!(why, "delegation may not loop: a → a");
        assert_eq!(delegation_problem(&g, "id-a", &keys(&["missing"]), 3), None);
    }

    #[test]
    fn depth_counts_the_chains_above_and_below() {
        // top → a, and a's new sub-agent b has c, which has d.
        let g = graph(&[
            ("top", &["a"]),
            ("a", &[]),
            ("b", &["c"]),
            ("c", &["d"]),
            ("d", &[]),
        ]);
        assert_eq!(delegation_problem(&g, "id-b", &keys(&["c"]), 3), None);
        let why = delegation_problem(&g, "id-a", &keys(&["b"]), 3).unwrap();
        assert_eq!(
            why,
            "delegation would be 4 levels deep (top → a → b → c → d); at most 3 are allowed (max_delegation_depth)"
        );
        assert_eq!(delegation_problem(&g, "id-a", &keys(&["b"]), 4), None);
        // Replacing the sub-agents drops the old edges.
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["d"]), ("d", &[])]);
        assert_eq!(delegation_problem(&g, "id-a", &keys(&["d"]), 1), None);
    }

    #[test]
    fn an_existing_loop_elsewhere_does_not_hang_the_check() {
        let g = graph(&[("a", &[]), ("x", &["y"]), ("y", &["x"])]);
        assert_eq!(delegation_problem(&g, "id-a", &keys(&["x"]), 3), None);
    }
}
