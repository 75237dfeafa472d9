//! Spin's HTTP routing rules: exact routes beat wildcards, the longest
//! wildcard prefix wins, `:name` segments capture, private routes never match
//! from outside.

use crate::manifest::{HttpTrigger, RouteDecl};

/// One routable entry of the application.
#[derive(Debug, Clone)]
pub struct Route {
    /// The route as written in the manifest (`/api/...`).
    pub raw: String,
    /// Component that serves it.
    pub component: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// The result of matching a path.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteMatch {
    pub component: String,
    /// The route as written in the manifest.
    pub matched_route: String,
    /// The route without its trailing `/...`.
    pub component_route: String,
    /// The part of the path after the matched prefix (empty for exact routes).
    pub path_info: String,
    /// Captured `:name` segments in order.
    pub params: Vec<(String, String)>,
}

/// The routing table built from `[[trigger.http]]`.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Builds a router; private routes are left out (they are reachable only
    /// through `http://<component>.spin.internal`).
    pub fn new(triggers: &[HttpTrigger]) -> anyhow::Result<Self> {
        let mut routes = Vec::new();
        for t in triggers {
            let RouteDecl::Path(raw) = &t.route else {
                continue;
            };
            routes.push(Route::parse(raw, &t.component)?);
        }
        // Most specific first: exact before wildcard, then longer prefixes,
        // then fewer parameters.
        routes.sort_by_key(|r| {
            let params = r
                .segments
                .iter()
                .filter(|s| matches!(s, Segment::Param(_)))
                .count();
            (r.wildcard, std::cmp::Reverse(r.segments.len()), params)
        });
        for pair in routes.windows(2) {
            if pair[0].segments == pair[1].segments && pair[0].wildcard == pair[1].wildcard {
                anyhow::bail!(
                    "duplicate route `{}` for components `{}` and `{}`",
                    pair[0].raw,
                    pair[0].component,
                    pair[1].component
                );
            }
        }
        Ok(Self { routes })
    }

    /// Finds the component for `path` (without query string).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let parts: Vec<&str> = split(path);
        self.routes.iter().find_map(|r| r.matches(&parts))
    }
}

impl Route {
    fn parse(raw: &str, component: &str) -> anyhow::Result<Self> {
        if !raw.starts_with('/') {
            anyhow::bail!("route `{raw}` must start with `/`");
        }
        let (prefix, wildcard) = match raw.strip_suffix("/...") {
            Some(p) => (p, true),
            None if raw == "/..." => ("", true),
            None => (raw, false),
        };
        let segments = split(prefix)
            .into_iter()
            .map(|s| match s.strip_prefix(':') {
                Some(name) => Segment::Param(name.to_string()),
                None => Segment::Literal(s.to_string()),
            })
            .collect();
        Ok(Self {
            raw: raw.to_string(),
            component: component.to_string(),
            segments,
            wildcard,
        })
    }

    fn matches(&self, parts: &[&str]) -> Option<RouteMatch> {
        if parts.len() < self.segments.len()
            || (!self.wildcard && parts.len() != self.segments.len())
        {
            return None;
        }
        let mut params = Vec::new();
        for (seg, part) in self.segments.iter().zip(parts) {
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), (*part).to_string())),
            }
        }
        let rest = &parts[self.segments.len()..];
        let path_info = if self.wildcard && !rest.is_empty() {
            format!("/{}", rest.join("/"))
        } else {
            String::new()
        };
        let component_route = self
            .raw
            .strip_suffix("/...")
            .unwrap_or(&self.raw)
            .to_string();
        Some(RouteMatch {
            component: self.component.clone(),
            matched_route: self.raw.clone(),
            component_route,
            path_info,
            params,
        })
    }
}

fn split(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let triggers: Vec<HttpTrigger> = routes
            .iter()
            .map(|(r, c)| HttpTrigger {
                route: RouteDecl::Path(r.to_string()),
                component: c.to_string(),
                id: None,
                executor: None,
            })
            .collect();
        Router::new(&triggers).unwrap()
    }

    #[test]
    fn exact_route_beats_wildcard() {
        let r = router(&[("/api/...", "wild"), ("/api/health", "exact")]);
        assert_eq!(r.route("/api/health").unwrap().component, "exact");
        assert_eq!(r.route("/api/other").unwrap().component, "wild");
    }

    #[test]
    fn longest_wildcard_prefix_wins_and_sets_path_info() {
        let r = router(&[("/...", "root"), ("/api/...", "api"), ("/api/v1/...", "v1")]);
        let m = r.route("/api/v1/orgs/x").unwrap();
        assert_eq!(m.component, "v1");
        assert_eq!(m.path_info, "/orgs/x");
        assert_eq!(m.component_route, "/api/v1");
        assert_eq!(r.route("/api/v2").unwrap().component, "api");
        assert_eq!(r.route("/").unwrap().component, "root");
        assert_eq!(r.route("/api").unwrap().path_info, "");
    }

    #[test]
    fn named_segments_capture() {
        let r = router(&[("/users/:id/...", "u")]);
        let m = r.route("/users/42/posts").unwrap();
        assert_eq!(m.params, vec![("id".to_string(), "42".to_string())]);
        assert_eq!(m.path_info, "/posts");
    }

    #[test]
    fn no_match_is_none_and_duplicates_are_rejected() {
        let r = router(&[("/a", "a")]);
        assert!(r.route("/b").is_none());
        assert!(r.route("/a/b").is_none());
        let dup = vec![
            HttpTrigger {
                route: RouteDecl::Path("/x".into()),
                component: "a".into(),
                id: None,
                executor: None,
            };
            2
        ];
        assert!(Router::new(&dup).is_err());
    }
}
