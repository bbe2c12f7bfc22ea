//! Spin's HTTP route matching.
//!
//! A route is exact (`/cart`), has single-segment wildcards (`/users/:id/edit`),
//! and/or ends in a trailing wildcard (`/users/...`, which also matches `/users`).
//! When several routes match, the most specific wins: segments are compared left
//! to right (a literal beats `:name`, which beats the trailing wildcard), and on a
//! tie the route with more segments wins.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    raw: String,
    segments: Vec<Segment>,
    trailing_wildcard: bool,
}

/// The result of matching a path: what Spin puts in its `spin-*` request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The route as written in the manifest (`spin-raw-component-route`, `spin-matched-route`).
    pub raw_route: String,
    /// The route without its trailing `/...` (`spin-component-route`).
    pub component_route: String,
    /// The part of the path after the matched prefix (`spin-path-info`).
    pub path_info: String,
    /// `:name` captures (`spin-path-match-<name>`, `_` written as `-`).
    pub params: BTreeMap<String, String>,
}

impl Route {
    pub fn parse(raw: &str) -> Result<Route> {
        if !raw.starts_with('/') {
            bail!("route `{raw}` must start with `/`");
        }
        let (body, trailing_wildcard) = match raw.strip_suffix("/...") {
            Some(b) => (b, true),
            None if raw == "/..." => ("", true),
            None => (raw, false),
        };
        let mut segments = Vec::new();
        for seg in body.split('/').filter(|s| !s.is_empty()) {
            if seg == "..." {
                bail!("route `{raw}`: `...` is only allowed at the end");
            }
            segments.push(match seg.strip_prefix(':') {
                Some("") => bail!("route `{raw}`: `:` needs a name"),
                Some(name) => Segment::Param(name.to_string()),
                None => Segment::Literal(seg.to_string()),
            });
        }
        Ok(Route {
            raw: raw.to_string(),
            segments,
            trailing_wildcard,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn matches(&self, path: &str) -> Option<RouteMatch> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() < self.segments.len()
            || (!self.trailing_wildcard && parts.len() != self.segments.len())
        {
            return None;
        }
        let mut params = BTreeMap::new();
        for (seg, part) in self.segments.iter().zip(&parts) {
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    params.insert(name.clone(), part.to_string());
                }
            }
        }
        let rest = &parts[self.segments.len()..];
        let path_info = if rest.is_empty() {
            String::new()
        } else {
            format!("/{}", rest.join("/"))
        };
        let component_route = self
            .raw
            .strip_suffix("/...")
            .unwrap_or(&self.raw)
            .to_string();
        Some(RouteMatch {
            raw_route: self.raw.clone(),
            component_route,
            path_info,
            params,
        })
    }

    /// Orders routes so that the more specific one is `Greater`.
    fn specificity(&self, other: &Route) -> Ordering {
        let rank = |s: Option<&Segment>, wild: bool| match s {
            Some(Segment::Literal(_)) => 3,
            Some(Segment::Param(_)) => 2,
            None if wild => 1,
            None => 0,
        };
        let n = self.segments.len().max(other.segments.len());
        for i in 0..n {
            let a = rank(self.segments.get(i), self.trailing_wildcard);
            let b = rank(other.segments.get(i), other.trailing_wildcard);
            if a != b {
                return a.cmp(&b);
            }
        }
        // Same shape up to here: an exact route beats a trailing wildcard.
        other.trailing_wildcard.cmp(&self.trailing_wildcard)
    }
}

/// All public routes of the app, each with the component it serves.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<(Route, String)>,
}

impl Router {
    pub fn new(routes: Vec<(Route, String)>) -> Router {
        Router { routes }
    }

    /// The component that serves `path`, and the match details.
    pub fn route(&self, path: &str) -> Option<(&str, RouteMatch)> {
        let mut best: Option<(&Route, &str, RouteMatch)> = None;
        for (route, component) in &self.routes {
            if let Some(m) = route.matches(path) {
                let better = match &best {
                    None => true,
                    Some((b, _, _)) => route.specificity(b) == Ordering::Greater,
                };
                if better {
                    best = Some((route, component, m));
                }
            }
        }
        best.map(|(_, c, m)| (c, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        Router::new(
            routes
                .iter()
                .map(|(r, c)| (Route::parse(r).unwrap(), c.to_string()))
                .collect(),
        )
    }

    #[test]
    fn exact_and_wildcards() {
        let r = router(&[
            ("/cart", "cart"),
            ("/cart/checkout", "checkout"),
            ("/users/...", "users"),
        ]);
        assert_eq!(r.route("/cart").unwrap().0, "cart");
        assert_eq!(r.route("/cart/checkout").unwrap().0, "checkout");
        assert!(r.route("/cart/other").is_none());
        let (c, m) = r.route("/users/1/edit").unwrap();
        assert_eq!(c, "users");
        assert_eq!(m.path_info, "/1/edit");
        assert_eq!(m.component_route, "/users");
        assert_eq!(r.route("/users").unwrap().1.path_info, "");
    }

    #[test]
    fn most_specific_wins() {
        let r = router(&[
            ("/...", "root"),
            ("/callbacks/:task_id", "escalator"),
            ("/callbacks/:task_id/window", "window"),
            ("/callbacks/:task_id/outcome", "escalator"),
            ("/callbacks/queue", "literal"),
        ]);
        let (c, m) = r.route("/callbacks/t1/window").unwrap();
        assert_eq!(c, "window");
        assert_eq!(m.params["task_id"], "t1");
        assert_eq!(r.route("/callbacks/t1").unwrap().0, "escalator");
        assert_eq!(r.route("/callbacks/queue").unwrap().0, "literal");
        assert_eq!(r.route("/callbacks/t1/other").unwrap().0, "root");
        assert_eq!(r.route("/").unwrap().0, "root");
    }

    #[test]
    fn exact_beats_wildcard_of_same_prefix() {
        let r = router(&[("/a/...", "wild"), ("/a", "exact")]);
        assert_eq!(r.route("/a").unwrap().0, "exact");
        assert_eq!(r.route("/a/b").unwrap().0, "wild");
    }

    #[test]
    fn rejects_bad_routes() {
        assert!(Route::parse("cart").is_err());
        assert!(Route::parse("/a/.../b").is_err());
        assert!(Route::parse("/a/:").is_err());
    }
}
