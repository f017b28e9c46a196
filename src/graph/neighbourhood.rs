//! Commit ancestry around a pull request, loaded into petgraph: which deployments
//! contain a commit (it is reachable from the deployment's SHA through parent links).

use std::collections::HashMap;

use petgraph::algo::has_path_connecting;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::store::{self, Db};

/// Child → parent edges reachable from some tips, to a bounded depth.
#[derive(Default)]
pub struct Ancestry {
    graph: DiGraph<String, ()>,
    index: HashMap<String, NodeIndex>,
}

impl Ancestry {
    fn node(&mut self, key: &str) -> NodeIndex {
        if let Some(i) = self.index.get(key) {
            return *i;
        }
        let i = self.graph.add_node(key.to_string());
        self.index.insert(key.to_string(), i);
        i
    }

    /// Loads the ancestry of every tip (commit keys `repo@sha`), `depth` parents deep.
    pub async fn load(db: &Db, tips: &[String], depth: u32) -> store::Result<Self> {
        let mut a = Ancestry::default();
        for tip in tips {
            a.node(tip);
            let edges = db.ancestry_edges(tip, depth).await?;
            for (child, parent) in edges {
                let (c, p) = (a.node(&child), a.node(&parent));
                if a.graph.find_edge(c, p).is_none() {
                    a.graph.add_edge(c, p, ());
                }
            }
        }
        Ok(a)
    }

    /// `tip` and every loaded ancestor of it.
    pub fn ancestors(&self, tip: &str) -> std::collections::HashSet<String> {
        let mut out = std::collections::HashSet::new();
        if let Some(start) = self.index.get(tip) {
            let mut dfs = petgraph::visit::Dfs::new(&self.graph, *start);
            while let Some(n) = dfs.next(&self.graph) {
                out.insert(self.graph[n].clone());
            }
        }
        out
    }

    /// Whether `commit` is `tip` or one of its loaded ancestors.
    pub fn contains(&self, tip: &str, commit: &str) -> bool {
        match (self.index.get(tip), self.index.get(commit)) {
            (Some(t), Some(c)) => has_path_connecting(&self.graph, *t, *c, None),
            _ => false,
        }
    }
}
